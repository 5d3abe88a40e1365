// The overlay over an IPv6 underlay: two simulated nodes with vfplane data planes and a
// node on the kernel's vxlan device, no peer MAC in any config. The data planes find
// each other and the kernel node by neighbour discovery (they solicit, and answer the
// kernel's solicitations for their VTEPs): the kernel is the peer that proves the ND
// frames right, since it ignores a solicitation or advertisement that fails RFC 4861's
// checks (hop limit, checksum, options). The underlay bridge snoops MLD with a querier
// and floods no unregistered multicast to the vfplane nodes' ports, so a solicitation
// for a vfplane VTEP reaches it only after its data plane reported the group: the Linux
// bridge's snooping is the peer that proves the MLD reports right.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { Topology } from '../../src/demo/topology.js';
import { solicitedNodeMac } from '../../src/dataplane/daemon.js';
import { vfplane } from '../helpers/cli.js';

const prefix = `v${(process.pid % 46656).toString(36)}`;

describePrivileged('VXLAN overlay over an IPv6 underlay', { netns: true, commands: ['ping', '/usr/lib/cni/static'] }, () => {
  let topo: Topology;

  beforeAll(async () => {
    topo = new Topology({
      prefix,
      workDir: mkdtempSync(join(tmpdir(), 'vfplane-overlay6-')),
      nodes: [{ name: 'a', vtep: '2001:db8::1' }, { name: 'b', vtep: '2001:db8::2' }],
      kernelNode: { vtep: '2001:db8::9', vni: 100, ip: '10.100.0.9/24' },
      snooping: true,
    });
    try {
      await topo.up();
      await topo.addPod({ name: 'a1', node: 'a', vni: 100, ip: '10.100.0.1/24' });
      await topo.addPod({ name: 'b1', node: 'b', vni: 100, ip: '10.100.0.2/24' });
    } catch (e) {
      const extra = topo.logLines().join('\n');
      await topo.down();
      throw new Error(`${(e as Error).message}\n${extra}`);
    }
  }, 120_000);

  afterAll(async () => {
    const problems = await topo?.down();
    expect(problems ?? []).toEqual([]);
  }, 60_000);

  const misc = async (node: string) =>
    ((await topo.control(node, { op: 'stats' })).counters as { misc: Record<string, number> }).misc;

  it('no peer MAC is configured', () => {
    for (const n of topo.nodes.values()) {
      const cfg = JSON.parse(readFileSync(n.config, 'utf8')) as { peers: { vtep: string; mac?: string }[] };
      expect(cfg.peers.length).toBe(2);
      for (const p of cfg.peers) expect(p.mac).toBeUndefined();
    }
  });

  it('pods on two vfplane nodes reach each other, the peers resolved by neighbour discovery', async () => {
    const r = topo.ping('a1', '10.100.0.2', 5);
    expect(r.received, JSON.stringify(r)).toBeGreaterThanOrEqual(3); // the first ones wait for ND
    for (const node of ['a', 'b']) {
      const m = await misc(node);
      expect(m.ndSolicits, node).toBeGreaterThan(0);
      expect(m.neighLearned, node).toBeGreaterThan(0);
    }
    // Status names the MAC ND gave for the other node's VTEP (IPv6 addresses compared in
    // canonical form), and what went to it.
    const other = topo.nodes.get('b')!;
    const bMac = readFileSync(`/sys/class/net/${other.sim.pfs[0]!.netdev}/address`, 'utf8').trim();
    const peers = ((await topo.control('a', { op: 'status' })) as { peers: { vtep: string; state: string; underlayMac: string | null; encapPkts: number }[] }).peers;
    expect(peers.find((p) => p.vtep === '2001:db8::2')).toMatchObject({ state: 'resolved', underlayMac: bMac });
    expect(peers.find((p) => p.vtep === '2001:db8::2')!.encapPkts).toBeGreaterThan(0);
    // No IPv4 header to speak of, and the UDP checksum always on (helper-87).
    const human = vfplane(['dataplane', 'status', '--socket', topo.nodes.get('a')!.socket]).stdout;
    expect(human).toMatch(/^outer checksums: UDP \(always, over IPv6\) by the CPU$/m);
  });

  it('the kernel vxlan node resolves our VTEP by ND and talks to the pods', async () => {
    // The kernel may already know node a's MAC from one of a's own solicitations (their
    // source link-layer option): forget it, so that it must solicit, and a must advertise.
    spawnSync('ip', ['-n', topo.kernelNs, '-6', 'neigh', 'flush', 'to', '2001:db8::1']);
    const before = await misc('a');
    // Up to 6 s: on a loaded host the kernel may need its ND retry (1 s apart).
    const k = spawnSync('ip', ['netns', 'exec', topo.kernelNs, 'ping', '-c', '4', '-i', '0.2', '-w', '6', '10.100.0.1'], { encoding: 'utf8' }).stdout;
    expect(k).toMatch(/[1-4] received/);
    // The kernel's neighbour entry for node a's VTEP holds the MAC our advertisement gave.
    const neigh = execFileSync('ip', ['-n', topo.kernelNs, '-6', 'neigh', 'show', '2001:db8::1'], { encoding: 'utf8' });
    const uplinkMac = execFileSync('cat', [`/sys/class/net/${topo.nodes.get('a')!.sim.pfs[0]!.netdev}/address`], { encoding: 'utf8' }).trim();
    expect(neigh).toContain(`lladdr ${uplinkMac}`);
    const after = await misc('a');
    expect(after.ndAdverts! - before.ndAdverts!).toBeGreaterThan(0);
    expect(topo.ping('b1', '10.100.0.9', 3).ok).toBe(true);
  });

  it("the uplink receives its VTEP's solicited-node group while the data plane runs", async () => {
    const up = topo.nodes.get('a')!.sim.pfs[0]!.netdev;
    const show = () => execFileSync('ip', ['maddr', 'show', 'dev', up], { encoding: 'utf8' });
    expect(solicitedNodeMac('2001:db8::1')).toBe('33:33:ff:00:00:01');
    expect(show()).toContain('link  33:33:ff:00:00:01');
    await topo.stopDaemon(topo.nodes.get('a')!);
    expect(show()).not.toContain('33:33:ff:00:00:01');
    await topo.startDaemon(topo.nodes.get('a')!);
    expect(show()).toContain('link  33:33:ff:00:00:01');
  });

  it('reports its solicited-node group by MLD, which the snooping bridge learns on its port', async () => {
    const mdb = () => execFileSync('bridge', ['-n', topo.underlay, 'mdb', 'show'], { encoding: 'utf8' });
    for (const [node, group] of [['a', 'ff02::1:ff00:1'], ['b', 'ff02::1:ff00:2']] as const) {
      const port = topo.nodes.get(node)!.sim.pfs[0]!.uplinkPeer;
      expect(mdb()).toMatch(new RegExp(`port ${port} grp ${group} `));
      expect((await misc(node)).mldReports).toBeGreaterThan(0);
    }
  });
});
