// The overlay on one I/O backend: two simulated nodes, pods a1 and b1 on VNI 100, ping
// and TCP between them, and what the data plane says about its ports. DPDK's cases run
// alone (overlay-dpdk.test.ts: hugepages are the host's), the others beside other files
// (overlay-backends.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { Topology, type TopologyOptions } from '../../src/demo/topology.js';
import { vfplane } from './cli.js';

type Backend = NonNullable<TopologyOptions['backend']>;

/** Brings TOPO up with pods a1 (node a) and b1 (node b) on VNI 100, checks that a ping
 *  and an iperf3 run (STREAMS TCP streams for SECONDS, at least MINBYTES received) cross
 *  between them, then runs MORE; the nodes' logs join any failure, and the teardown must
 *  leave nothing behind. */
export async function podsTalk(topo: Topology, iperf: { port: number; seconds: number; streams: number; minBytes: number }, more: () => Promise<void>): Promise<void> {
  try {
    await topo.up();
    await topo.addPod({ name: 'a1', node: 'a', vni: 100, ip: '10.100.0.1/24' });
    await topo.addPod({ name: 'b1', node: 'b', vni: 100, ip: '10.100.0.2/24' });
    const p = topo.ping('a1', '10.100.0.2', 5);
    expect(p.received, JSON.stringify(p)).toBeGreaterThanOrEqual(4);
    const srv = topo.exec('b1', ['iperf3', '-s', '-1', '-D', '-p', String(iperf.port)]);
    expect(srv.code, `iperf3 server: ${srv.stdout}${srv.stderr}`).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const r = topo.exec('a1', ['iperf3', '-c', '10.100.0.2', '-p', String(iperf.port), '-t', String(iperf.seconds),
      ...(iperf.streams > 1 ? ['-P', String(iperf.streams)] : []), '-J'], 30_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes).toBeGreaterThan(iperf.minBytes);
    await more();
  } catch (e) {
    const logs = topo.logLines().join('\n');
    throw new Error(`${(e as Error).message}\n${logs}`);
  } finally {
    expect(await topo.down()).toEqual([]);
  }
}

/** One worker a node, BACKEND's uplinks: ping and TCP, and the status of the uplink and the
 *  representor (kinds, drops by reason, buffers, mode, checksums, offload tier, the claimed
 *  netdev's GRO and forwarding). */
export async function oneWorker(backend: Exclude<Backend, 'afpacket'>): Promise<void> {
  const topo = new Topology({ prefix: `${backend[1]}${(process.pid % 46656).toString(36)}`, workDir: mkdtempSync(join(tmpdir(), `vfplane-${backend}-`)), backend });
  await podsTalk(topo, { port: 5202, seconds: 1, streams: 1, minBytes: 500_000 }, async () => {
    const st = (await topo.control('a', { op: 'status' })) as {
      backend: string; uplink: { mode?: string; why?: string; outerChecksums: { ipv4: string; udp: string }; offload: { tier: number; allowed: number | null; why: string } }; ports: { name: string; kind: string; queues: number; ringBytes: number; drops: Record<string, number> }[];
    };
    expect(st.backend).toBe(backend);
    // A vdev over a netdev takes that netdev's MTU as the underlay's (a DPDK port's own
    // is not it); without one the daemon would say it checks none.
    if (backend === 'dpdk') {
      expect(topo.logLines().join('\n')).toMatch(/\[a\] .*uplink net_af_packet port \d+: .*, underlay MTU 9000 \(\S+'s\)$/m);
      expect(topo.logLines().join('\n')).not.toMatch(/no tunnel\.mtu/);
    }
    // The uplink's backend reports its own drops by reason (a busy moment may leave the
    // DPDK pool dry for a copy: tx_nombuf counts those, so values are not pinned to 0).
    const up = st.ports.find((x) => x.name === 'uplink')!;
    expect(up.kind).toBe(backend);
    expect(up.queues).toBe(1); // the simulator's veths have one queue each
    expect(Object.keys(up.drops).sort()).toEqual(backend === 'afxdp'
      ? ['rx_fill_empty', 'rx_oversize', 'rx_ring_full', 'tx_device_drops', 'tx_link_down', 'tx_oversize']
      : ['rx_errors', 'rx_missed', 'rx_multiseg', 'rx_no_mbuf', 'tx_errors', 'tx_nombuf', 'tx_too_big']);
    for (const v of Object.values(up.drops)) expect(Number.isInteger(v) && v >= 0).toBe(true);
    // The pod's representor: AF_XDP on both (DPDK reaches kernel netdevs through it).
    const rep = st.ports.find((x) => x.name !== 'uplink')!;
    expect(rep.kind).toBe('afxdp');
    expect(up.drops.tx_oversize ?? up.drops.tx_too_big).toBe(0); // no frame here is larger than a buffer
    // What each port holds in buffers: the representor its 1024 UMEM frames of 4 KiB,
    // the uplink its 4096 (AF_XDP) or its mbuf pool (DPDK: thousands of ~2.3 KiB mbufs).
    expect(rep.ringBytes).toBe(1024 * 4096);
    expect(up.ringBytes).toBeGreaterThan(backend === 'afxdp' ? 4096 * 4096 - 1 : 4 << 20);
    // As an operator reads it: the mode's reason beside the mode, not the checksums.
    const human = vfplane(['dataplane', 'status', '--socket', topo.nodes.get('a')!.socket]).stdout;
    if (backend === 'afxdp') {
      expect(st.uplink.mode).toMatch(/native|skb/);
      expect(st.uplink.why).toMatch(/no hw-profile matches/);
      expect(human).toMatch(/^uplink mode: .*no hw-profile matches/m);
      expect(human).toMatch(/^outer checksums: IPv4 header by the CPU, UDP \(when on\) by the CPU$/m);
    } else {
      expect(st.uplink.why).toMatch(/virtual device/);
    }
    // No device fills checksums here: net_af_xdp has no tx offload, AF_XDP none at all.
    expect(st.uplink.outerChecksums).toEqual({ ipv4: 'software', udp: 'software' });
    expect(st.uplink.offload).toEqual({ tier: 3, allowed: null, why: expect.stringMatching(/no hw-profile matches the uplink/) });
    // The uplink netdev (under the DPDK vdev too) is claimed: the simulator gives it GRO
    // on, as a NIC has; the data plane switches it off while it runs.
    const pfDev = topo.nodes.get('a')!.sim.pfs[0]!.netdev;
    expect(/^generic-receive-offload: (on|off)/m.exec(execFileSync('ethtool', ['-k', pfDev], { encoding: 'utf8' }))![1]).toBe('off');
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${pfDev}/forwarding`, 'utf8').trim()).toBe('0');
    if (backend === 'dpdk') {
      // The device's own losses (rte_eth_stats) are the port's drops too: frames the
      // net_af_packet PMD could not send while its netdev was down are its oerrors.
      const txErrors = async () => ((await topo.control('a', { op: 'status' })) as typeof st).ports.find((x) => x.name === 'uplink')!.drops.tx_errors!;
      const before = await txErrors();
      execFileSync('ip', ['link', 'set', pfDev, 'down']);
      try {
        topo.ping('a1', '10.100.0.2', 3);
      } finally {
        execFileSync('ip', ['link', 'set', pfDev, 'up']);
      }
      expect(await txErrors() - before).toBeGreaterThan(0);
    }
  });
}

/**
 * Two workers per node through the daemon and the CNI plugin: each node's uplink (the
 * simulated PF) has two queues, so both workers receive from the underlay; the pods'
 * representors have one, so a worker without a queue there hands its frames over, and
 * what one learns the other knows. Four TCP streams spread over both queues.
 * With afpacket, the uplink's queues are sockets in a PACKET_FANOUT group, one per
 * worker, whatever the netdev's own queues. With dpdk, the uplink's vdev (net_af_packet on
 * the one-queue veth) has one queue pair: the second worker receives nothing from the
 * underlay and hands what it sends there to the first.
 */
export async function twoWorkers(backend: Backend): Promise<void> {
  const topo = new Topology({
    prefix: `w${backend[1]}${(process.pid % 46656).toString(36)}`, workDir: mkdtempSync(join(tmpdir(), 'vfplane-workers-')), backend,
    uplinkQueues: backend === 'afxdp' ? 2 : 1, dataplane: { workers: 2, cpus: [0, 1] },
  });
  await podsTalk(topo, { port: 5203, seconds: 2, streams: 4, minBytes: 1_000_000 }, async () => {
    for (const node of ['a', 'b']) {
      const st = (await topo.control(node, { op: 'status' })) as { workers: { cpu: number }[]; ports: { name: string; queues: number }[] };
      expect(st.workers, node).toHaveLength(2);
      expect(st.ports.find((x) => x.name === 'uplink')?.queues, node).toBe(backend === 'dpdk' ? 1 : 2);
      expect(st.ports.filter((x) => x.name !== 'uplink').every((x) => x.queues === 1), node).toBe(true);
      if (backend === 'dpdk') expect(topo.nodes.get(node)!.stderr.join('\n')).toContain('1 queue pair(s) for 2 workers (the device has no more): worker 1 receives nothing from the underlay');
    }
  });
}
