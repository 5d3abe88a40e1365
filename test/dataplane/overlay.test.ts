// The overlay end to end on the simulated NIC: two nodes, each with its own data-plane
// daemon (a real process), pods given VFs by vfplane-cni with vxlan, and a third node that
// uses the kernel's vxlan device. Real namespaces, real frames, real ping and iperf3.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { Topology } from '../../src/demo/topology.js';
import { request } from '../../src/dataplane/control.js';
import { ROOT, vfplane } from '../helpers/cli.js';
import { simKernel } from '../../src/sim/kernel.js';
import { Sysfs } from '../../src/sriov/sysfs.js';
import { vfListRows, vfShowView } from '../../src/cli/sriov-run.js';

const prefix = `o${(process.pid % 46656).toString(36)}`;

/** What `vfplane vf show|list --json` prints for a node, read in this process by the same
 *  code (the tree opened as the CLI opens it, the store read as it is on disk): state the
 *  tests look at, without a Node process per look. Where the CLI is what a test is about
 *  (its tables, gc, release), it runs. */
const look = (node: { sim: { root: string }; stateDir: string }, args: ['vf', 'show', string] | ['vf', 'list', '--free' | '--allocated']): any => {
  const o = { sysfsRoot: node.sim.root, stateDir: node.stateDir, json: true };
  const sysfs = new Sysfs(node.sim.root, simKernel(node.sim.root));
  return JSON.parse(JSON.stringify(args[1] === 'show' ? vfShowView(sysfs, o, args[2]) : vfListRows(sysfs, { ...o, free: args[2] === '--free', allocated: args[2] === '--allocated' })));
};

describePrivileged('VXLAN overlay between two simulated nodes', { netns: true, commands: ['iperf3', 'ping', '/usr/lib/cni/static', '/usr/lib/cni/tuning'] }, () => {
  let topo: Topology;
  const logs: string[] = [];

  beforeAll(async () => {
    topo = new Topology({
      prefix,
      workDir: mkdtempSync(join(tmpdir(), 'vfplane-overlay-')),
      kernelNode: { vtep: '192.0.2.9', vni: 100, ip: '10.100.0.9/24' },
      log: (m) => logs.push(m),
      // Pods of namespace "default" (what Topology's CNI_ARGS say) may use VNIs 100 and 200.
      dataplane: { metrics: '127.0.0.1:0', tenants: [{ namespaces: ['default'], vnis: '100,200' }] },
    });
    try {
      await topo.up();
      await topo.addPod({ name: 'a1', node: 'a', vni: 100, ip: '10.100.0.1/24' });
      await topo.addPod({ name: 'b1', node: 'b', vni: 100, ip: '10.100.0.2/24' });
      await topo.addPod({ name: 'b2', node: 'b', vni: 200, ip: '10.100.0.3/24' });
      await topo.addPod({ name: 'a2', node: 'a', vni: 100, ip: '10.100.0.4/24' });
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

  it('pods on VNI 100 reach each other across nodes (ping)', () => {
    const r = topo.ping('a1', '10.100.0.2', 5);
    expect(r.received, JSON.stringify(r)).toBeGreaterThanOrEqual(4); // the first may wait for ARP
    expect(topo.ping('b1', '10.100.0.1', 3).ok).toBe(true);
  });

  it('pods on one node on the same VNI are switched locally', async () => {
    const before = (await topo.control('a', { op: 'stats' })).counters as { vnis: { vni: number; localPkts: number }[] };
    expect(topo.ping('a1', '10.100.0.4', 3).ok).toBe(true);
    const after = (await topo.control('a', { op: 'stats' })).counters as { vnis: { vni: number; localPkts: number }[] };
    const local = (c: typeof after) => c.vnis.find((v) => v.vni === 100)?.localPkts ?? 0;
    expect(local(after) - local(before)).toBeGreaterThanOrEqual(6);
  });

  it('TCP works across nodes (iperf3)', () => {
    const server = topo.exec('b1', ['iperf3', '-s', '-1', '-D', '-p', '5201']);
    expect(server.code).toBe(0);
    let r = topo.exec('a1', ['iperf3', '-c', '10.100.0.2', '-p', '5201', '-t', '2', '-J'], 30_000);
    for (let i = 0; i < 10 && r.code !== 0 && /connect/.test(r.stdout + r.stderr); i++) {
      r = topo.exec('a1', ['iperf3', '-c', '10.100.0.2', '-p', '5201', '-t', '2', '-J'], 30_000);
    }
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
    expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
  }, 60_000);

  it('a pod on VNI 200 cannot reach VNI 100', async () => {
    // Both ways at once: each waits out its -W for replies that must not come.
    const [from200, to200] = await Promise.all([topo.pingAsync('b2', '10.100.0.1', 2), topo.pingAsync('a1', '10.100.0.3', 2)]);
    expect(from200.received).toBe(0);
    expect(to200.received).toBe(0);
  });

  it('broadcast is flooded by head-end replication, and remote MACs are learned', async () => {
    const a1 = topo.pods.get('a1')!;
    const b1 = topo.pods.get('b1')!;
    const fdbB = (await topo.control('b', { op: 'fdb-list' })) as { learned: { vni: number; mac: string; vtep: string }[] };
    expect(fdbB.learned).toContainEqual(expect.objectContaining({ vni: 100, mac: a1.mac, vtep: '192.0.2.1' }));
    const fdbA = (await topo.control('a', { op: 'fdb-list' })) as { learned: { vni: number; mac: string; vtep: string }[] };
    expect(fdbA.learned).toContainEqual(expect.objectContaining({ vni: 100, mac: b1.mac, vtep: '192.0.2.2' }));
    const st = (await topo.control('a', { op: 'stats' })).counters as { vnis: { vni: number; floodPkts: number; encapPkts: number }[]; misc: Record<string, number> };
    const v100 = st.vnis.find((v) => v.vni === 100)!;
    // ARP requests from a1 went to both peers (node b and the kernel node) and to a2.
    expect(v100.floodPkts).toBeGreaterThanOrEqual(3);
    expect(st.misc.arpReplies! + st.misc.neighLearned!).toBeGreaterThan(0);
  });

  // `explain` answers from the same tables the workers use; its verdicts are checked
  // against what the overlay does (b1 is reached by ping, learned; a1 is local).
  it('explains where a frame goes: learned peer, local pod, flood, hairpin, spoofed', async () => {
    const a1 = topo.pods.get('a1')!, b1 = topo.pods.get('b1')!;
    expect(topo.ping('a1', '10.100.0.2', 2).received).toBeGreaterThanOrEqual(1);
    const sock = topo.nodes.get('a')!.socket;
    const st = (await request(sock, { op: 'status' })) as { attachments: { representor: string; mac: string; vni: number }[] };
    const rep = st.attachments.find((x) => x.mac === a1.mac)!.representor;
    const ex = (q: Record<string, unknown>) => request(sock, { op: 'explain', ...q }) as Promise<Record<string, any>>;
    const toB1 = await ex({ vni: 100, mac: b1.mac });
    expect(toB1).toMatchObject({ verdict: 'encap', source: 'learned', vtep: '192.0.2.2', peer: { peer: true, state: 'resolved' } });
    expect(toB1.steps.join('\n')).toMatch(new RegExp(`${b1.mac} was learned on VNI 100 from frames VTEP 192\\.0\\.2\\.2 sent, the last \\d+ s ago`));
    expect(await ex({ vni: 100, mac: a1.mac })).toMatchObject({ verdict: 'local', representor: rep });
    expect(await ex({ vni: 100, mac: a1.mac, from: rep })).toMatchObject({ verdict: 'drop', reason: 'hairpin' });
    expect(await ex({ vni: 100, mac: b1.mac, from: rep, src: '02:00:00:00:66:66' })).toMatchObject({ verdict: 'drop', reason: 'spoofed' });
    const bc = await ex({ vni: 100, mac: 'ff:ff:ff:ff:ff:ff', from: rep });
    // Every other pod of node a on VNI 100 gets a copy, the sender none.
    expect(bc).toMatchObject({ verdict: 'flood', localPorts: st.attachments.filter((x) => x.vni === 100 && x.representor !== rep).map((x) => x.representor) });
    expect(bc.peers.map((p: { vtep: string }) => p.vtep).sort()).toEqual(['192.0.2.2', '192.0.2.9']);
    expect((await ex({ vni: 100, mac: '02:00:00:00:99:99' })).verdict).toBe('flood');
    // The other way: what a peer sends on VNI 100 for a1 reaches a1; on VNI 4321 nothing.
    expect(await ex({ vni: 100, mac: a1.mac, from: 'uplink' })).toMatchObject({ verdict: 'local', representor: rep });
    expect(await ex({ vni: 4321, mac: a1.mac, from: 'uplink' })).toMatchObject({ verdict: 'drop', reason: 'vni_unknown' });
    expect((await ex({ vni: 100, mac: 'ff:ff:ff:ff:ff:ff', from: 'uplink' })).localPorts).toContain(rep);
    expect((await ex({ vni: 4321, mac: b1.mac })).steps[0]).toMatch(/no pod on this node is attached to VNI 4321/);
    await expect(ex({ vni: 100, mac: b1.mac, from: 'vfpnosuch0' })).rejects.toThrow(/no attachment on representor vfpnosuch0/);
    const r = vfplane(['dataplane', 'explain', '--socket', sock, '--vni', '100', '--mac', b1.mac]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^VNI 100, to ${b1.mac}: encapsulated to 192\\.0\\.2\\.2 \\(learned FDB entry\\)$`, 'm'));
    expect(r.stdout).toMatch(/^ {2}- 192\.0\.2\.2 via ([0-9a-f]{2}:){5}[0-9a-f]{2} \(resolved\)$/m);
    const bad = vfplane(['dataplane', 'explain', '--socket', sock, '--vni', '100', '--mac', 'zz']);
    expect(bad.code).toBe(2);
  });

  it('interoperates with a node that uses the kernel vxlan device', () => {
    const r = topo.ping('a1', '10.100.0.9', 4);
    expect(r.received, JSON.stringify(r)).toBeGreaterThanOrEqual(3);
    const k = topo.exec(topo.kernelNs, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.100.0.2']);
    expect(k.code, k.stdout).toBe(0);
  });

  // The first thing to look at when a remote node is unreachable: whether its VTEP's MAC
  // is known. Node b's is (its data plane answers ARP for 192.0.2.2); a peer that nobody
  // answers for is shown unresolved, with the requests sent for it.
  it('status and metrics say which peers are resolved, by what MAC, and what went to each', async () => {
    const sock = topo.nodes.get('a')!.socket;
    const bUplinkMac = readFileSync(`/sys/class/net/${topo.nodes.get('b')!.sim.pfs[0]!.netdev}/address`, 'utf8').trim();
    type Peer = { vtep: string; state: string; underlayMac: string | null; requests: number; encapPkts: number };
    const peers = async () => ((await request(sock, { op: 'status' })) as { peers: Peer[] }).peers;
    const b = (await peers()).find((p) => p.vtep === '192.0.2.2')!;
    expect(b).toMatchObject({ state: 'resolved', underlayMac: bUplinkMac });
    expect(b.encapPkts).toBeGreaterThan(0);
    expect(b.requests).toBeGreaterThanOrEqual(1);
    await request(sock, { op: 'peer-add', vtep: '192.0.2.77' });
    try {
      // Each new epoch asks for every unresolved peer's MAC.
      await new Promise((r) => setTimeout(r, 300));
      const ghost = (await peers()).find((p) => p.vtep === '192.0.2.77')!;
      expect(ghost).toMatchObject({ state: 'unresolved', underlayMac: null, encapPkts: 0 });
      expect(ghost.requests).toBeGreaterThanOrEqual(1);
      const r = vfplane(['dataplane', 'status', '--socket', sock]);
      expect(r.stdout).toMatch(/│ 192\.0\.2\.77\s+│ -\s+│ UNRESOLVED \(no ARP\/ND answer/);
      expect(r.stdout).toMatch(/^warning: peer 192\.0\.2\.77 has not answered [1-9]\d* ARP\/ND request\(s\): .* give its MAC in the config \(peers\[\]\.mac\)$/m);
      // doctor lists what status warns of; the resolved peer is no warning.
      const doc = JSON.parse(vfplane(['doctor', '--json'], { env: { VFPLANE_DATAPLANE_SOCKET: sock } }).stdout) as { checks: { name: string; status: string; detail: string }[] };
      const peerChecks = doc.checks.filter((c) => c.name === 'data plane peers');
      expect(peerChecks).toHaveLength(1);
      expect(peerChecks[0]).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^peer 192\.0\.2\.77 has not answered/) });
      expect(r.stdout).toMatch(new RegExp(`│ 192\\.0\\.2\\.2\\s+│ ${bUplinkMac}\\s+│ resolved \\d+ s ago`));
      // stats: what went to each peer, and with --interval at what rate.
      const sr = vfplane(['dataplane', 'stats', '--socket', sock, '--interval', '300']);
      expect(sr.code, sr.stderr).toBe(0);
      // And what came from each (node B's answers: decapsulated here as that peer's).
      expect(sr.stdout).toMatch(/│ peer VTEP\s+│ MAC state\s+│ encap pkts\s+│ encap bytes\s+│ decap pkts\s+│ decap bytes\s+│ encap pps\s+│ encap Mbit\/s\s+│/);
      expect(sr.stdout).toMatch(/│ 192\.0\.2\.2\s+│ resolved\s+│ [1-9]\d*\s+│ [1-9]\d*\s+│ [1-9]\d*\s+│ [1-9]\d*\s+│ \d+\s+│ [\d.]+\s+│/);
      expect(sr.stdout).toMatch(/│ 192\.0\.2\.77\s+│ unresolved\s+│ 0\s+│ 0\s+│ 0\s+│ 0\s+│ 0\s+│ 0\.0\s+│/);
      // Each port's own drops (its backend's: a full ring…) beside the workers' counters.
      expect(sr.stdout).toMatch(/│ port\s+│ for\s+│ rx pkts\s+│ tx pkts\s+│ rx bytes\s+│ tx bytes\s+│ drops\s+│ port drops\s+│ rx pps\s+│/);
      // Whose each port is, as status says it (a pod with several networks has several).
      expect(sr.stdout).toMatch(/│ uplink\s+│ uplink\s+│/);
      expect(sr.stdout).toMatch(/│ \S+\s+│ VNI 100, default\/a1 \(eth0\)\s+│ [1-9]/);
      // The pods' pings went through the workers' destination cache: said, with its share.
      expect(sr.stdout).toMatch(/^destination cache: [1-9]\d* hits, [1-9]\d* misses — [\d.]+% of pod bursts' destinations answered from it$/m);
      expect(sr.stdout).toMatch(/^source cache: \d+ hits, [1-9]\d* misses — [\d.]+% of decapsulated bursts' sources answered from it$/m);
      const sj = JSON.parse(vfplane(['dataplane', 'stats', '--socket', sock, '--json']).stdout) as { counters: { ports: { name: string }[] }; portDrops: Record<string, Record<string, number>> };
      expect(Object.keys(sj.portDrops).sort()).toEqual(sj.counters.ports.map((p) => p.name).sort());
      expect(sj.portDrops.uplink).toHaveProperty('rx_kernel_drops');
      const text = await (await fetch(`http://127.0.0.1:${topo.nodes.get('a')!.metricsPort!}/metrics`)).text();
      expect(text).toMatch(/^vfplane_peer_resolved\{node="a",peer="192\.0\.2\.77"\} 0$/m);
      expect(text).toMatch(/^vfplane_peer_resolved\{node="a",peer="192\.0\.2\.2"\} 1$/m);
      expect(Number(/^vfplane_peer_encap_packets_total\{node="a",peer="192\.0\.2\.2"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
      // What came back from it: node B's answers, decapsulated here as that peer's.
      expect(Number(/^vfplane_peer_decap_packets_total\{node="a",peer="192\.0\.2\.2"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
      expect(text).toMatch(/^vfplane_peer_decap_packets_total\{node="a",peer="192\.0\.2\.77"\} 0$/m);
    } finally {
      await request(sock, { op: 'peer-del', vtep: '192.0.2.77' });
    }
    expect((await peers()).map((p) => p.vtep)).not.toContain('192.0.2.77');
  });

  it('serves Prometheus metrics', async () => {
    const port = topo.nodes.get('a')!.metricsPort!;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/^# TYPE vfplane_vni_encap_packets_total counter$/m);
    const m = /^vfplane_vni_encap_packets_total\{node="a",vni="100"\} (\d+)$/m.exec(text);
    expect(Number(m?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^vfplane_port_rx_packets_total\{node="a",port="uplink"\} \d+$/m);
    expect(text).toMatch(/^vfplane_config_epoch\{node="a"\} \d+$/m);
    expect(text).toMatch(/^vfplane_port_tx_full_total\{node="a",port="uplink"\} \d+$/m);
    // One worker here: nothing to share between workers, and nothing lost.
    expect(text).toMatch(/^vfplane_fdb_learn_shared_total\{node="a",what="sent"\} 0$/m);
    // b's pods, learned from the pings above; of the default capacity
    expect(Number(/^vfplane_fdb_learned_entries\{node="a",worker="0"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^vfplane_fdb_learn_capacity\{node="a"\} 65536$/m);
    expect(text).toMatch(/^vfplane_fdb_learn_shared_total\{node="a",what="lost"\} 0$/m);
    expect(Number(/^vfplane_dest_cache_lookups_total\{node="a",result="miss"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^vfplane_dest_cache_lookups_total\{node="a",result="hit"\} \d+$/m);
    expect(text).toMatch(/^vfplane_dest_cache_lookups_total\{node="a",result="bypassed"\} 0$/m);
    // A learning overlay: the sources b's pods send from go through the source cache
    // (learned once a second each, not once a frame).
    expect(Number(/^vfplane_src_cache_lookups_total\{node="a",result="miss"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^vfplane_src_cache_lookups_total\{node="a",result="hit"\} \d+$/m);
    expect(text).toMatch(/^vfplane_src_cache_lookups_total\{node="a",result="bypassed"\} 0$/m);
    // The AF_PACKET uplink's own drops, by reason, including the kernel ring's.
    for (const reason of ['rx_truncated', 'rx_kernel_drops', 'tx_oversize', 'tx_kick_errors']) {
      expect(text).toMatch(new RegExp(`^vfplane_port_backend_drops_total\\{node="a",port="uplink",reason="${reason}"\\} \\d+$`, 'm'));
    }
  });

  it('vfplane dataplane status shows the uplink, the attachments and each port\'s backend', () => {
    const r = vfplane(['dataplane', 'status', '--socket', topo.nodes.get('a')!.socket]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^node a: afpacket backend, uplink \S+ .*VTEP 192\.0\.2\.1/m);
    expect(r.stdout).toMatch(/│ 10?0\s+│ 02:/); // an attachment row: VNI, MAC
    // and whose it is: the pod (namespace/name, from CNI_ARGS) and its interface
    expect(r.stdout).toMatch(new RegExp(`│ 100\\s+│ ${topo.pods.get('a1')!.mac}\\s+│ default/a1 \\(eth0\\)\\s+│ ok\\s+│`));
    expect(r.stdout).toMatch(/^outer checksums: IPv4 header by the CPU, UDP \(when on\) by the CPU/m);
    // The simulator's uplink is a veth: no hw-profile, so software only (DESIGN.md's tier 3).
    expect(r.stdout).toMatch(/^offload tier 3: no hw-profile matches the uplink/m);
    expect(r.stdout).toMatch(/^tenants: default → VNI 100,200$/m);
    const row = r.stdout.split('\n').find((l) => /│ uplink\s+│/.test(l));
    expect(row, r.stdout).toMatch(/│ uplink\s+│ afpacket\s+│ 1\s+│ \d+\.\d MiB\s+│ \d+\s+│ \d+\s+│ (none|[a-z_]+ \d+)\s+│ gets nothing\s+│/);
  });

  it('answers bad control requests with errors and keeps forwarding meanwhile', async () => {
    const sock = topo.nodes.get('a')!.socket;
    // A steady ping runs across the overlay while the daemon is fed bad requests.
    const { spawn } = await import('node:child_process');
    const pinger = spawn('ip', ['netns', 'exec', topo.pods.get('a1')!.netns, 'ping', '-c', '60', '-i', '0.05', '-W', '1', '10.100.0.2'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let pingOut = '';
    pinger.stdout.setEncoding('utf8');
    pinger.stdout.on('data', (d: string) => (pingOut += d));
    const pingDone = new Promise<void>((r) => pinger.once('exit', () => r()));
    const bad = async (req: Record<string, unknown>) => request(sock, req).then(() => 'accepted', (e: Error) => e.message);
    expect(await bad({ op: 'attach', representor: 'nosuchrep0', vni: 100, mac: '02:00:00:00:99:01' })).toMatch(/nosuchrep0 does not exist/);
    const a1 = topo.pods.get('a1')!;
    const status = (await request(sock, { op: 'status' })) as { attachments: { representor: string; vni: number; mac: string }[] };
    const mine = status.attachments.find((x) => x.mac === a1.mac)!;
    expect(await bad({ op: 'attach', representor: mine.representor, vni: 100, mac: a1.mac })).toMatch(/already attached/);
    expect(await bad({ op: 'attach', representor: 'x', vni: 16_777_216, mac: '02:00:00:00:99:01' })).toMatch(/vni/i);
    expect(await bad({ op: 'frobnicate' })).toMatch(/unknown op/);
    // Requests without arguments refuse an unknown field as the others do (a reload with
    // one does not reload).
    for (const op of ['status', 'stats', 'reload', 'fdb-list', 'drops']) {
      expect(await bad({ op, force: true }), op).toMatch(new RegExp(`^${op}: unknown field "force": it takes no fields$`));
    }
    expect(await bad({ op: 'fdb-add', vni: 100, mac: 'zz', vtep: '192.0.2.2' })).toMatch(/mac/i);
    // Peers: a remote unicast VTEP, never this node's own, a group or no address.
    const peerVteps = async () => ((await request(sock, { op: 'status' })) as { peers: { vtep: string }[] }).peers.map((p) => p.vtep);
    const peersBefore = await peerVteps();
    expect(await bad({ op: 'peer-add', vtep: '192.0.2.1' })).toMatch(/^192\.0\.2\.1 is this node's own VTEP \(uplink\.vtep\); a node is not its own peer/);
    for (const vtep of ['224.0.0.5', '255.255.255.255', '0.0.0.0']) {
      expect(await bad({ op: 'peer-add', vtep }), vtep).toMatch(/expected a unicast address as a peer VTEP, not a multicast, broadcast or unspecified one/);
    }
    expect(await bad({ op: 'peer-add', vtep: '192.0.2.77', mac: '01:00:5e:00:00:05' })).toMatch(/expected the peer's unicast MAC on the underlay/);
    expect(await bad({ op: 'flood-set', vni: 100, vteps: ['192.0.2.2', '192.0.2.78'] })).toBe("VTEP 192.0.2.78 is not a peer; add it first: `vfplane dataplane peer add 192.0.2.78` (op peer-add), or leave it out of VNI 100's flood list");
    // A pod's MAC is a station's: broadcast would be spoofable as its source, and flooded.
    expect(await bad({ op: 'attach', representor: 'nosuchrep0', vni: 100, mac: 'ff:ff:ff:ff:ff:ff' })).toMatch(/expected the pod interface's unicast MAC/);
    expect(await bad({ op: 'fdb-add', vni: 100, mac: '00:00:00:00:00:00', vtep: '192.0.2.2' })).toMatch(/expected a pod's unicast MAC/);
    expect(await peerVteps()).toEqual(peersBefore); // (their counters move with the ping)
    // A raw malformed line on its own connection gets an error reply too.
    const { createConnection } = await import('node:net');
    const reply = await new Promise<string>((resolve) => {
      const s = createConnection(sock, () => s.write('{not json\n'));
      s.setEncoding('utf8');
      s.on('data', (d: string) => (s.destroy(), resolve(d)));
    });
    expect(JSON.parse(reply)).toMatchObject({ ok: false, error: { kind: 'invalid' } });
    await pingDone;
    expect(pingOut).toMatch(/60 packets transmitted, 60 received/);
    expect((await request(sock, { op: 'status' })).epoch).toBeGreaterThan(0);
  }, 60_000);

  // A network config whose stateDir is not the data plane's (its vxlan.socket names the
  // data plane) keeps the allocations in another store: the data plane must ask that one
  // whether the pod holds the VF, at attach and on its 2 s beat, not its own (which has
  // allocations of its own here and does not list this VF).
  it('a pod whose network keeps its allocations in another state directory is attached, and stays attached', async () => {
    const b = topo.nodes.get('b')!;
    const other = mkdtempSync(join(tmpdir(), 'vfplane-otherstore-'));
    const ns = `${prefix}-os`;
    execFileSync('ip', ['netns', 'add', ns]);
    const free = (look(b, ['vf', 'list', '--free']) as { pci: string }[])[0]!.pci;
    const conf = {
      cniVersion: '1.0.0', name: 'overlay-100', type: 'vfplane-cni', deviceID: free, sysfsRoot: b.sim.root, stateDir: other,
      vxlan: { vni: 100, socket: b.socket }, ipam: { type: 'static', addresses: [{ address: '10.100.0.31/24' }] },
    };
    const cni = (cmd: string) => spawnSync(process.execPath, [join(ROOT, 'bin', 'vfplane-cni.js')], {
      input: JSON.stringify(conf), encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, CNI_COMMAND: cmd, CNI_CONTAINERID: 'otherstore-ctr', CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', CNI_ARGS: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=os' },
    });
    const attached = async () => ((await topo.control('b', { op: 'status' })) as { attachments: { pci: string }[] }).attachments.some((x) => x.pci === free);
    try {
      const add = cni('ADD');
      expect(add.status, add.stdout).toBe(0);
      expect(await attached()).toBe(true);
      await new Promise((r) => setTimeout(r, 2500)); // the data plane's beat has looked
      expect(await attached()).toBe(true);
      expect(b.stderr.join('\n')).not.toMatch(new RegExp(`detaching \\S+ \\(VF ${free.replaceAll('.', '\\.')}`));
      const del = cni('DEL');
      expect(del.status, del.stdout).toBe(0);
      expect(await attached()).toBe(false);
    } finally {
      cni('DEL');
      spawnSync('ip', ['netns', 'del', ns]);
      rmSync(other, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses a pod of a namespace the tenants do not open the VNI to, and takes nothing', async () => {
    const b = topo.nodes.get('b')!;
    const allocated = () => (look(b, ['vf', 'list', '--allocated']) as unknown[]).length;
    const st0 = (await topo.control('b', { op: 'status' })) as { attachments: unknown[] };
    const held = allocated();
    const refused = await topo.addPod({ name: 'x1', node: 'b', vni: 100, ip: '10.100.0.7/24', namespace: 'team-x' }).then(() => '', (e: Error) => e.message);
    expect(refused).toMatch(/VNI 100 is not open to pods of Kubernetes namespace team-x \(no tenants entry lists it, so it may use no VNI\); add an entry for it under tenants/);
    expect(refused).toMatch(/"code": 7,/); // CNI's invalid network configuration
    const st1 = (await topo.control('b', { op: 'status' })) as { attachments: unknown[] };
    expect(st1.attachments).toHaveLength(st0.attachments.length);
    expect(allocated()).toBe(held); // the VF went back to the pool
    expect(topo.ping('a1', '10.100.0.2', 2).received).toBeGreaterThanOrEqual(1); // the others carry on
  }, 60_000);

  it('reloads its config file live (reload, SIGHUP), and refuses what needs a restart or breaks tenancy', async () => {
    const a = topo.nodes.get('a')!;
    const original = readFileSync(a.config, 'utf8');
    const cfg = JSON.parse(original) as Record<string, any>;
    const peers = async () => ((await request(a.socket, { op: 'status' })) as { peers: { vtep: string }[]; epoch: number });
    const before = await peers();
    try {
      writeFileSync(a.config, JSON.stringify({ ...cfg, peers: [...cfg.peers, { vtep: '192.0.2.66' }], ageSeconds: 120 }));
      const r = vfplane(['dataplane', 'reload', '--socket', a.socket]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^reloaded: peers, ageSeconds changed \(epoch \d+\)$/m);
      const after = await peers();
      expect(after.peers.map((p) => p.vtep)).toEqual([...before.peers.map((p) => p.vtep), '192.0.2.66']);
      expect(after.epoch).toBeGreaterThan(before.epoch);
      expect(topo.ping('a1', '10.100.0.2', 2).received).toBeGreaterThanOrEqual(1); // traffic never stopped
      // What takes a restart is named, and nothing changes.
      writeFileSync(a.config, JSON.stringify({ ...cfg, uplink: { ...cfg.uplink, vtep: '192.0.2.50' } }));
      const bad = vfplane(['dataplane', 'reload', '--socket', a.socket]);
      expect(bad.code).toBe(1); // a conflict with what runs, not a bad command line
      expect(bad.stderr).toMatch(/the config changes uplink\.vtep, which takes a restart .*nothing was changed/); // the field, not its object
      writeFileSync(a.config, JSON.stringify({ ...cfg, uplink: { ...cfg.uplink, vlan: 7 }, tunnel: { ttl: 9 } }));
      expect(vfplane(['dataplane', 'reload', '--socket', a.socket]).stderr).toMatch(/the config changes uplink\.vlan, tunnel\.ttl, which take a restart/);
      expect((await peers()).peers.map((p) => p.vtep)).toContain('192.0.2.66');
      // Tenants that would shut out attached pods (a1 on VNI 100) are refused.
      writeFileSync(a.config, JSON.stringify({ ...cfg, tenants: [{ namespaces: ['default'], vnis: '200' }] }));
      const ten = vfplane(['dataplane', 'reload', '--socket', a.socket]);
      expect(ten.code).toBe(1);
      expect(ten.stderr).toMatch(/the new tenants would not admit \S+ \(VNI 100, namespace default\)/);
    } finally {
      writeFileSync(a.config, original);
    }
    // SIGHUP: the original file again, so the added peer goes.
    a.proc!.kill('SIGHUP');
    for (let i = 0; i < 40 && (await peers()).peers.some((p) => p.vtep === '192.0.2.66'); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await peers()).peers.map((p) => p.vtep)).toEqual(before.peers.map((p) => p.vtep));
    expect(a.stderr.join('\n')).toMatch(/reloaded the config: peers, ageSeconds changed/);
  });

  /** CNI STATUS of an overlay network on node `n`, as a runtime calls it. */
  const cniStatus = (node: string) => {
    const n = topo.nodes.get(node)!;
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'vfplane-cni.js')], {
      input: JSON.stringify({ cniVersion: '1.1.0', name: 'overlay-100', type: 'vfplane-cni', sysfsRoot: n.sim.root, stateDir: n.stateDir, vxlan: { vni: 100 } }),
      env: { ...process.env, CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }, encoding: 'utf8',
    });
    return { code: r.status, out: r.stdout ? (JSON.parse(r.stdout) as { code: number; msg: string; details: string }) : null };
  };

  it('restores its attachments after a restart, and forgets a VF deleted meanwhile', async () => {
    const a = topo.nodes.get('a')!;
    expect(cniStatus('a')).toEqual({ code: 0, out: null });
    await topo.stopDaemon(a);
    // Without its data plane an overlay network is not ready: STATUS says so (code 50).
    const down = cniStatus('a');
    expect(down.code).toBe(1);
    expect(down.out).toMatchObject({ code: 50, msg: expect.stringMatching(/no data plane answers on .*dataplane\.sock: pods on VXLAN 100 cannot be attached/), details: expect.stringContaining('vfplane dataplane run') });
    await topo.delPod('a2'); // CNI DEL while the data plane is down: still succeeds
    await topo.startDaemon(a);
    expect(cniStatus('a').code).toBe(0);
    const st = (await topo.control('a', { op: 'status' })) as { attachments: { mac: string }[] };
    expect(st.attachments.map((x) => x.mac)).toEqual([topo.pods.get('a1')!.mac]);
    expect(topo.ping('a1', '10.100.0.2', 4).received).toBeGreaterThanOrEqual(3);
    expect(a.stderr.join('\n')).toMatch(/dropping attachment .* released while the data plane was down/);
  }, 60_000);

  // A network with a stateDir of its own (its allocation store there) attached through
  // this data plane's socket: at a restart the store asked about its VF is the one its
  // ADD named, not the data plane's. It was dropped as "released while down". With the
  // state file lost too, the node's registry of stores names that store (helper-81: the
  // pod stayed off the overlay, the log saying its attachment came back from the store).
  it('restores an attachment whose VF is held in another allocation store, also with its state file lost', async () => {
    const a = topo.nodes.get('a')!;
    const own = mkdtempSync(join(tmpdir(), 'vfplane-ownstore-'));
    try {
      const pod = await topo.addPod({ name: 's1', node: 'a', vni: 100, ip: '10.100.0.31/24', stateDir: own });
      await topo.stopDaemon(a);
      await topo.startDaemon(a); // its stderr: this start's lines
      const st = (await topo.control('a', { op: 'status' })) as { attachments: { mac: string }[] };
      expect(st.attachments.map((x) => x.mac)).toContain(pod.mac);
      expect(a.stderr.join('\n')).not.toMatch(new RegExp(`dropping attachment \\S+ \\(VF ${pod.pci.replace(/\./g, '\\.')}`));
      expect(topo.ping('s1', '10.100.0.2', 4).received).toBeGreaterThanOrEqual(3);
      await topo.stopDaemon(a);
      for (const f of readdirSync(a.stateDir).filter((x) => /^dataplane-.*\.json$/.test(x))) rmSync(join(a.stateDir, f));
      await topo.startDaemon(a);
      const again = (await topo.control('a', { op: 'status' })) as { attachments: { mac: string; owner?: Record<string, string> }[] };
      expect(again.attachments.find((x) => x.mac === pod.mac)?.owner?.store).toBe(own);
      expect(a.stderr.join('\n')).toMatch(new RegExp(`re-attached \\S+ \\(VF ${pod.pci.replace(/\./g, '\\.')}, VNI 100\\) from the allocation store: no readable state file`));
      expect(topo.ping('s1', '10.100.0.2', 4).received).toBeGreaterThanOrEqual(3);
    } finally {
      await topo.delPod('s1');
      rmSync(own, { recursive: true, force: true });
    }
  }, 60_000);

  // A pod may be given a MAC by its request (Multus runtimeConfig.mac): one that a pod on
  // another node has on that VNI takes that pod's traffic from this node's pods (the local
  // table is asked first). helper-67 found it silent: the attach says so now.
  it('an attachment with a MAC another node\'s pod has on its VNI is told so', async () => {
    const b1 = topo.pods.get('b1')!;
    expect(topo.ping('a1', '10.100.0.2', 2).received).toBeGreaterThanOrEqual(1); // b1's MAC learned on a
    const rep = `${prefix}mq`, peer = `${prefix}mr`;
    execFileSync('ip', ['link', 'add', rep, 'type', 'veth', 'peer', 'name', peer]);
    try {
      const r = (await topo.control('a', { op: 'attach', representor: rep, vni: 100, mac: b1.mac })) as { note?: string };
      expect(r.note).toContain(`MAC ${b1.mac} on VNI 100 is a pod's behind VTEP 192.0.2.2: this node's pods' frames to it go to ${rep} from now on`);
      await topo.control('a', { op: 'detach', representor: rep });
      // A MAC nobody else has: no such note.
      const ok = (await topo.control('a', { op: 'attach', representor: rep, vni: 100, mac: '02:00:00:00:0e:01' })) as { note?: string };
      expect(ok.note ?? '').not.toContain('behind VTEP');
      await topo.control('a', { op: 'detach', representor: rep });
    } finally {
      execFileSync('ip', ['link', 'del', rep]);
    }
  });

  // A representor missing when the data plane starts (the VFs not made yet after a
  // reboot, or one away for a moment) is not forgotten: status lists the attachment as
  // waiting, and the daemon's beat attaches it once the representor exists.
  it('keeps an attachment whose representor is missing at a restart as waiting, and attaches it once the representor is back', async () => {
    const a = topo.nodes.get('a')!;
    const sock = a.socket;
    type St = { attachments: { representor: string; mac: string; representorState: string; why?: string }[] };
    const before = ((await request(sock, { op: 'status' })) as St).attachments.find((x) => x.mac === topo.pods.get('a1')!.mac)!;
    const rep = before.representor;
    const away = `${rep.slice(0, 11)}away`;
    await topo.stopDaemon(a);
    execFileSync('ip', ['link', 'set', rep, 'down']);
    execFileSync('ip', ['link', 'set', rep, 'name', away]);
    try {
      await topo.startDaemon(a);
      const w = ((await request(sock, { op: 'status' })) as St).attachments.find((x) => x.representor === rep);
      expect(w).toMatchObject({ representorState: 'waiting', mac: before.mac, why: expect.stringMatching(/does not exist/) });
      expect(a.stderr.join('\n')).toMatch(new RegExp(`attachment ${rep} \\(VNI 100\\) waits: representor ${rep} .*does not exist`));
      expect(vfplane(['dataplane', 'status', '--socket', sock]).stdout).toMatch(new RegExp(`^warning: ${rep} \\(VF \\S+\\) was not attached at this start`, 'm'));
      const file = readdirSync(a.stateDir).find((f) => /^dataplane-.*\.json$/.test(f))!;
      expect(readFileSync(join(a.stateDir, file), 'utf8')).toContain(`"representor": "${rep}"`);
    } finally {
      execFileSync('ip', ['link', 'set', away, 'name', rep]);
      execFileSync('ip', ['link', 'set', rep, 'up']);
    }
    let state = '';
    for (let i = 0; i < 100 && state !== 'ok'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = ((await request(sock, { op: 'status' })) as St).attachments.find((x) => x.representor === rep)?.representorState ?? '';
    }
    expect(state).toBe('ok');
    expect(a.stderr.join('\n')).toMatch(new RegExp(`attached the waiting attachment ${rep}`));
    expect(topo.ping('a1', '10.100.0.2', 4).received).toBeGreaterThanOrEqual(3);
    expect(topo.check('a1')).toEqual({ ok: true, output: '' });
  }, 60_000);

  // vfplane-cni records each overlay attachment in the allocation store; a daemon whose
  // state file is lost rebuilds them from there, rather than leaving the pods cut off.
  it('rebuilds its attachments from the allocation store when its state file is lost', async () => {
    const a = topo.nodes.get('a')!;
    await topo.stopDaemon(a);
    const files = readdirSync(a.stateDir).filter((f) => /^dataplane-.*\.json$/.test(f));
    expect(files.length).toBe(1);
    rmSync(join(a.stateDir, files[0]!));
    await topo.startDaemon(a);
    const st = (await topo.control('a', { op: 'status' })) as { attachments: { mac: string; owner?: Record<string, string> }[] };
    expect(st.attachments.map((x) => x.mac)).toEqual([topo.pods.get('a1')!.mac]);
    expect(st.attachments[0]!.owner?.containerId).toBeTruthy();
    expect(topo.ping('a1', '10.100.0.2', 4).received).toBeGreaterThanOrEqual(3);
    expect(a.stderr.join('\n')).toMatch(/re-attached \S+ \(VF \S+, VNI 100\) from the allocation store: no readable state file/);
    expect(existsSync(join(a.stateDir, files[0]!))).toBe(true); // written again
  }, 60_000);

  // A data plane killed while it answers a DEL's detach (or one turning connections away)
  // closes the connection without a reply. The DEL still finishes: once the VF is
  // released, the data plane detaches it itself (its beat, or its next start).
  // An ADD meeting it then gets "try again" (11), as with no data plane at all.
  it('CNI DEL finishes, and ADD is told to try again (11), when the data plane closes the connection without answering', async () => {
    const pod = await topo.addPod({ name: 'r1', node: 'b', vni: 100, ip: '10.100.0.21/24' });
    const b = topo.nodes.get('b')!;
    await topo.stopDaemon(b, 'SIGKILL');
    rmSync(b.socket, { force: true });
    // In a process of its own: the DEL below blocks this one.
    const rude = spawn(process.execPath, ['-e', `require('node:net').createServer((c) => { process.stdout.write('asked\\n'); c.destroy(); }).listen(${JSON.stringify(b.socket)}, () => process.stdout.write('ready\\n'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    rude.stdout!.on('data', (d) => (said += d));
    for (let i = 0; i < 200 && !said.includes('ready'); i++) await new Promise((r) => setTimeout(r, 25));
    try {
      const held = () => (look(b, ['vf', 'list', '--allocated']) as unknown[]).length;
      const before = held();
      const refused = await topo.addPod({ name: 'r2', node: 'b', vni: 100, ip: '10.100.0.22/24' }).then(() => '', (e: Error) => e.message);
      expect(refused).toMatch(/"code": 11,/);
      expect(refused).toMatch(/closed the connection without answering attach/);
      expect(held()).toBe(before); // the ADD undid itself
      await topo.delPod('r1'); // throws if the DEL fails
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      rude.kill('SIGKILL');
      rmSync(b.socket, { force: true });
    }
    expect(said).toContain('asked');
    expect(look(b, ['vf', 'show', pod.pci]).allocation).toBeNull();
    await topo.startDaemon(b);
    const st = (await topo.control('b', { op: 'status' })) as { attachments: { pci: string }[] };
    expect(st.attachments.map((x) => x.pci)).not.toContain(pod.pci);
  }, 60_000);

  it('CNI CHECK fails when the data plane no longer forwards for the VF', async () => {
    expect(topo.check('b1')).toEqual({ ok: true, output: '' });
    const st = (await topo.control('b', { op: 'status' })) as { attachments: { representor: string; vni: number; mac: string; pci: string }[] };
    const att = st.attachments.find((x) => x.mac === topo.pods.get('b1')!.mac)!;
    await topo.control('b', { op: 'detach', representor: att.representor });
    const c = topo.check('b1');
    expect(c.ok).toBe(false);
    expect(c.output).toMatch(/does not forward for VF .* on VXLAN 100/);
    await topo.control('b', { op: 'attach', representor: att.representor, vni: att.vni, mac: att.mac, pci: att.pci });
    expect(topo.check('b1').ok).toBe(true);
  }, 60_000);

  // The reference tuning plugin chained after vfplane-cni, with a mac: the interface and
  // the chain's result take it, the data plane keeps the attach's, and drops the pod's
  // frames as spoofed. CHECK says so; tuning's DEL gives the MAC back and all is well.
  it('CNI CHECK fails when a chained tuning changed the pod\'s MAC, whose frames the data plane drops as spoofed', async () => {
    const a1 = topo.pods.get('a1')!;
    const netns = `/run/netns/${a1.netns}`;
    const env = (cmd: string) => ({ ...process.env, CNI_COMMAND: cmd, CNI_CONTAINERID: a1.containerId, CNI_NETNS: netns, CNI_IFNAME: a1.ifname, CNI_PATH: '/usr/lib/cni' });
    const tuningConf = { cniVersion: '1.0.0', name: 'overlay-100', type: 'tuning', mac: '02:00:00:00:bb:70' };
    const added = a1.result;
    const t = spawnSync('/usr/lib/cni/tuning', [], { input: JSON.stringify({ ...tuningConf, prevResult: added }), env: env('ADD'), encoding: 'utf8' });
    expect(t.status, t.stdout + t.stderr).toBe(0);
    try {
      a1.result = JSON.parse(t.stdout);
      const spoofed = async () => ((await topo.control('a', { op: 'stats' })) as { counters: { drops: Record<string, number> } }).counters.drops.spoofed ?? 0;
      const before = await spoofed();
      expect(topo.ping('a1', '10.100.0.2', 2).received).toBe(0);
      expect(await spoofed()).toBeGreaterThan(before);
      const c = topo.check('a1');
      expect(c.ok).toBe(false);
      expect(c.output).toContain(`carries VF ${a1.pci} on VXLAN 100 with MAC ${a1.mac.toLowerCase()}, but interface ${a1.ifname} has MAC 02:00:00:00:bb:70: every frame from it is dropped as spoofed`);
    } finally {
      const d = spawnSync('/usr/lib/cni/tuning', [], { input: JSON.stringify({ ...tuningConf, prevResult: a1.result }), env: env('DEL'), encoding: 'utf8' });
      a1.result = added;
      expect(d.status, d.stdout + d.stderr).toBe(0);
    }
    expect(topo.check('a1')).toEqual({ ok: true, output: '' });
    expect(topo.ping('a1', '10.100.0.2', 3).received).toBeGreaterThanOrEqual(1);
  }, 60_000);

  // A representor can vanish under an attachment (its VF deleted, or its pod's netns
  // removed without a DEL, which takes the VF's veth pair with it here): the port's
  // sockets then see nothing. Status and CNI CHECK say so; DEL still cleans up.
  // A pod's namespace removed without a CNI DEL: `vfplane gc` releases its VF, and must
  // take it off the overlay too, or the VF's next pod is refused (its representor still
  // attached) until the data plane restarts.
  it('vfplane gc (and vf release) take a VF off the overlay, and its next pod attaches', async () => {
    const pod = await topo.addPod({ name: 'g1', node: 'b', vni: 100, ip: '10.100.0.9/24' });
    const b = topo.nodes.get('b')!;
    const st = async () => ((await topo.control('b', { op: 'status' })) as { attachments: { pci: string; mac: string }[] }).attachments;
    expect((await st()).map((x) => x.pci)).toContain(pod.pci);
    // The operator's VF list says which VF is on which VNI.
    const list = vfplane(['vf', 'list', '--sysfs-root', b.sim.root, '--state-dir', b.stateDir]).stdout;
    expect(list.split('\n').find((l) => l.includes(pod.pci))).toMatch(/pod default\/g1 .*│ VNI 100\s+│/);
    expect(vfplane(['vf', 'show', pod.pci, '--sysfs-root', b.sim.root, '--state-dir', b.stateDir]).stdout).toMatch(/VXLAN\s+│ VNI 100 through representor \S+ \(data plane .*dataplane\.sock\)/);
    execFileSync('ip', ['netns', 'del', pod.netns]);
    topo.pods.delete('g1');
    // Until then status says the pod is gone while its VF stays on the overlay.
    const orphan = ((await topo.control('b', { op: 'status' })) as { attachments: { pci: string; representor: string; ownerGone?: boolean }[] }).attachments.find((x) => x.pci === pod.pci)!;
    expect(orphan.ownerGone).toBe(true);
    expect(vfplane(['dataplane', 'status', '--socket', b.socket]).stdout).toMatch(new RegExp(`^warning: the pods of ${orphan.representor} are gone .*vfplane gc`, 'm'));
    // Its netdev came home by itself (the simulator puts it back when its tree is opened),
    // here with another MTU: gc gives it its own back.
    const on = ['--sysfs-root', b.sim.root, '--state-dir', b.stateDir];
    const own = look(b, ['vf', 'show', pod.pci]).netdev as string;
    execFileSync('ip', ['link', 'set', own, 'mtu', '1400']);
    // A dry run first: every step the real gc takes, `dry: true`, and nothing done.
    const dryRun = vfplane(['gc', '--dry-run', ...on, '--json']);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    const dry = (JSON.parse(dryRun.stdout) as { pci: string; putBack: { step: string; dry?: true }[] }[]).find((x) => x.pci === pod.pci)!;
    expect(dry).toMatchObject({ state: 'gone', released: false });
    expect(dry).not.toHaveProperty('failure');
    expect(dry.putBack).toEqual(expect.arrayContaining([
      { step: 'overlay', detached: true, dry: true },
      { step: 'netdev-tidied', netdev: own, restored: { mtu: 1500 }, dry: true },
      { step: 'ipam', type: 'static', released: true, dry: true },
    ]));
    expect(dry.putBack.every((x) => x.dry)).toBe(true);
    const dryText = vfplane(['gc', '--dry-run', ...on]);
    expect(dryText.stdout).toMatch(new RegExp(`│ ${pod.pci.replace(/\./g, '\\.')} │ pod default/g1 .*│ would release \\(owner gone\\) +│ would take it off the overlay`));
    expect(dryText.stdout).toContain(`netdev ${own}: would restore mtu 1500`);
    expect((await st()).map((x) => x.pci)).toContain(pod.pci); // still on the overlay
    expect(execFileSync('ip', ['-o', 'link', 'show', own], { encoding: 'utf8' })).toMatch(/ mtu 1400 /);
    expect(look(b, ['vf', 'show', pod.pci]).allocation).toMatchObject({ owner: { name: 'g1' } });
    // The real gc takes exactly those steps.
    const r = vfplane(['gc', ...on, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const real = (JSON.parse(r.stdout) as { pci: string }[]).find((x) => x.pci === pod.pci)!;
    expect(real).toMatchObject({ state: 'gone', released: true, putBack: dry.putBack.map(({ dry: _, ...x }) => x) });
    expect(real).toMatchObject({ putBack: expect.arrayContaining([{ step: 'overlay', detached: true }, { step: 'ipam', type: 'static', released: true }]) });
    expect(execFileSync('ip', ['-o', 'link', 'show', own], { encoding: 'utf8' })).toMatch(/ mtu 1500 /);
    expect((await st()).map((x) => x.pci)).not.toContain(pod.pci);
    // The next pod on that VF joins the overlay (another VNI, as a VF's next owner may).
    const next = await topo.addPod({ name: 'g2', node: 'b', vni: 200, ip: '10.200.0.9/24' }); // the lowest free VF: g1's
    expect(next.pci).toBe(pod.pci);
    expect((await st()).find((x) => x.pci === pod.pci)?.mac).toBe(next.mac);
    // An operator's `vf release --force` takes it off the overlay too.
    const rel = vfplane(['vf', 'release', pod.pci, '--force', '--sysfs-root', b.sim.root, '--state-dir', b.stateDir]);
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout).toMatch(new RegExp(`│ ${pod.pci.replace(/\./g, '\\.')} │ pod default/g2 .*│ \\d+ +│ taken off the overlay`));
    expect(rel.stdout).toContain('taken off the overlay');
    expect((await st()).map((x) => x.pci)).not.toContain(pod.pci);
    await topo.delPod('g2'); // DEL after the release: nothing left to do, and no error
  }, 60_000);

  // A release that never reached the data plane (its socket unreachable then) leaves an
  // attachment for a VF nobody holds: on its 2 s beat the data plane finds it by the
  // allocation store and detaches it itself. The VF's next pod then attaches as usual.
  it('a VF whose release missed the data plane is detached by the data plane itself, and joins the overlay with its next pod', async () => {
    const pod = await topo.addPod({ name: 'h1', node: 'b', vni: 100, ip: '10.100.0.10/24' });
    const b = topo.nodes.get('b')!;
    const st = async () => ((await topo.control('b', { op: 'status' })) as { attachments: { pci: string; mac: string; vni: number }[] }).attachments;
    // The socket out of reach for the release: a plain file in its place (a missing one
    // the data plane would make again within 2 s).
    renameSync(b.socket, `${b.socket}.away`);
    writeFileSync(b.socket, '');
    try {
      const rel = vfplane(['vf', 'release', pod.pci, '--force', '--sysfs-root', b.sim.root, '--state-dir', b.stateDir]);
      expect(rel.code, rel.stderr).toBe(0);
      expect(rel.stdout).toContain('data plane not running');
    } finally {
      renameSync(`${b.socket}.away`, b.socket);
    }
    for (let i = 0; i < 60 && (await st()).some((x) => x.pci === pod.pci); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await st()).map((x) => x.pci)).not.toContain(pod.pci);
    expect(b.stderr.join('\n')).toMatch(new RegExp(`detaching \\S+ \\(VF ${pod.pci.replace(/\./g, '\\.')}, VNI 100\\): the allocation store no longer gives the VF to container ${pod.containerId} \\(eth0\\); its release did not reach this data plane`));
    execFileSync('ip', ['netns', 'del', pod.netns]);
    topo.pods.delete('h1');
    const next = await topo.addPod({ name: 'h2', node: 'b', vni: 200, ip: '10.200.0.10/24' }); // the lowest free VF: h1's
    expect(next.pci).toBe(pod.pci);
    expect((await st()).filter((x) => x.pci === pod.pci)).toEqual([expect.objectContaining({ mac: next.mac, vni: 200 })]);
    await topo.delPod('h2');
  }, 60_000);

  it('status flags an attachment whose representor is gone or replaced; DEL still detaches it', async () => {
    await topo.addPod({ name: 'x2', node: 'b', vni: 100, ip: '10.100.0.8/24' });
    const b = topo.nodes.get('b')!;
    const st = async () => ((await topo.control('b', { op: 'status' })) as { attachments: { representor: string; mac: string; representorState: string }[] }).attachments;
    const mine = (await st()).find((x) => x.mac === topo.pods.get('x2')!.mac)!;
    expect(mine.representorState).toBe('ok');
    execFileSync('ip', ['link', 'del', mine.representor]);
    expect((await st()).find((x) => x.representor === mine.representor)!.representorState).toBe('gone');
    const metrics = await (await fetch(`http://127.0.0.1:${b.metricsPort!}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^vfplane_attachment_representor_ok\\{node="b",representor="${mine.representor}",vni="100"\\} 0$`, 'm'));
    expect(metrics).toMatch(/^vfplane_attachment_representor_ok\{node="b",representor="\S+",vni="200"\} 1$/m);
    const text = vfplane(['dataplane', 'status', '--socket', b.socket]).stdout;
    expect(text).toMatch(new RegExp(`^warning: representor ${mine.representor} \\(VF \\S+\\) is gone: its pod no longer reaches the overlay`, 'm'));
    // Opening the simulated tree puts the VF back (as the kernel returns a VF's netdev),
    // with a new representor of the same name: not the netdev the port is bound to.
    vfplane(['vf', 'list', '--sysfs-root', b.sim.root, '--state-dir', b.stateDir]);
    expect((await st()).find((x) => x.representor === mine.representor)!.representorState).toBe('replaced');
    // CHECK fails too (first on the pod's interface, which went with the pair).
    expect(topo.check('x2')).toMatchObject({ ok: false, output: expect.stringMatching(/interface eth0 is missing/) });
    await topo.delPod('x2');
    expect((await st()).map((x) => x.representor)).not.toContain(mine.representor);
  }, 60_000);

  it('CNI DEL takes the VF off the overlay, and gives the representor its GRO back', async () => {
    // The simulator's representors start with GRO on, as a real NIC's do; the data plane
    // switches it off while it owns one (merged frames would not fit its AF_PACKET ring:
    // without that, the iperf3 test above carries ~60 KB in 2 s).
    const gro = (dev: string) => /^generic-receive-offload: (on|off)/m.exec(execFileSync('ethtool', ['-k', dev], { encoding: 'utf8' }))![1];
    const st0 = (await topo.control('b', { op: 'status' })) as { attachments: { representor: string; vni: number }[] };
    const rep = st0.attachments.find((a) => a.vni === 100)!.representor;
    expect(gro(rep)).toBe('off');
    await topo.delPod('b1');
    const st = (await topo.control('b', { op: 'status' })) as { attachments: unknown[] };
    expect(st.attachments).toHaveLength(1); // b2 remains
    expect(topo.ping('a1', '10.100.0.2', 2).received).toBe(0);
    expect(gro(rep)).toBe('on');
  }, 60_000);

  // An ADD that gave up waiting for its attach (10 s) undoes itself and releases the VF,
  // while its attach may still be queued in a hung data plane. Run later, it would put a
  // VF on the VNI that its next pod (of any network) then gets: refused.
  it('refuses an attach for a VF its pod does not hold (an ADD undone meanwhile), and attaches nothing', async () => {
    const a = topo.nodes.get('a')!;
    const free = (look(a, ['vf', 'list', '--free']) as { pci: string }[])[0]!;
    const rep = (look(a, ['vf', 'show', free.pci]) as { representor: string }).representor;
    const req = { op: 'attach', representor: rep, pci: free.pci, vni: 100, mac: '02:aa:00:00:00:61', owner: { containerId: 'undone0001', ifname: 'eth0', podNamespace: 'default' } };
    await expect(topo.control('a', req)).rejects.toThrow(/^VF \S+ is not allocated to container undone0001 \(eth0\) in the allocation store under \S+: the ADD that asked for this attachment was undone .*nothing attached$/);
    const st = (await topo.control('a', { op: 'status' })) as { attachments: { pci?: string }[] };
    expect(st.attachments.map((x) => x.pci)).not.toContain(free.pci);
  }, 60_000);

  /** An ADD on node a whose IPAM waits until `release()` or cleanup (30 s at most; the attach is
   *  done by then), run as the runtime runs it, without waiting; and the same network's
   *  other commands. (A fixed 4 s IPAM was not always longer than the ADD's way to its
   *  attach on a loaded host.) */
  const slowAdd = async (tag: string, ip: string) => {
    const a = topo.nodes.get('a')!;
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-slowipam-'));
    const go = join(dir, 'go');
    writeFileSync(join(dir, 'slowstatic'), `#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then i=0; while [ ! -e ${go} ] && [ -d ${dir} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; fi\nexec /usr/lib/cni/static\n`, { mode: 0o755 });
    const netns = `${prefix}-${tag}`;
    execFileSync('ip', ['netns', 'add', netns]);
    const cleanup = () => {
      spawnSync('ip', ['netns', 'del', netns]);
      rmSync(dir, { recursive: true, force: true });
    };
    const pci = (look(a, ['vf', 'list', '--free']) as { pci: string }[])[0]!.pci;
    const conf = { cniVersion: '1.0.0', name: 'overlay-100', type: 'vfplane-cni', deviceID: pci, sysfsRoot: a.sim.root, stateDir: a.stateDir, vxlan: { vni: 100 }, ipam: { type: 'slowstatic', addresses: [{ address: ip }] } };
    const env = (cmd: string) => ({ ...process.env, CNI_COMMAND: cmd, CNI_CONTAINERID: `${prefix}-${tag}-ctr`, CNI_NETNS: `/run/netns/${netns}`, CNI_IFNAME: 'eth0', CNI_PATH: `${dir}:/usr/lib/cni`, CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${tag}` });
    const bin = join(ROOT, 'bin', 'vfplane-cni.js');
    const child = spawn(process.execPath, [bin], { env: env('ADD'), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stdin.end(JSON.stringify(conf));
    const added = new Promise<{ code: number | null; out: string }>((r) => child.once('exit', (code) => r({ code, out })));
    const run = (cmd: string, extra: Record<string, unknown> = {}) => spawnSync(process.execPath, [bin], { input: JSON.stringify({ ...conf, ...extra }), env: env(cmd), encoding: 'utf8', timeout: 30_000 });
    const attached = async () => ((await topo.control('a', { op: 'status' })) as { attachments: { pci?: string }[] }).attachments.some((x) => x.pci === pci);
    try {
      for (let i = 0; i < 400 && !(await attached()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await attached(), 'attached while IPAM still runs').toBe(true);
    } catch (e) {
      child.kill('SIGKILL');
      cleanup();
      throw e;
    }
    const release = () => writeFileSync(go, '');
    return { a, pci, child, added, run, attached, release, cleanup };
  };

  it('a DEL after its ADD was killed mid-way (the runtime timed out) takes the VF off the overlay', async () => {
    const s = await slowAdd('kil', '10.100.0.61/24');
    try {
      s.child.kill('SIGKILL');
      await s.added;
      const del = s.run('DEL');
      expect(del.status, del.stdout + del.stderr).toBe(0);
      // The killed ADD's IPAM plugin, hung here, ran on: DEL gave it its grace, then
      // stopped it, so that no lease it takes outlives the DEL.
      expect(del.stderr).toMatch(/the IPAM plugin pid \d+ still runs after 5 s: stopped/);
      // DEL itself detached it (not the data plane's own check, on its next beat)
      expect(await s.attached()).toBe(false);
      expect(s.a.stderr.join('\n')).not.toMatch(/its release did not reach this data plane/);
      expect(look(s.a, ['vf', 'show', s.pci]).allocation).toBeNull();
    } finally {
      s.cleanup();
    }
  }, 60_000);

  it('a data plane restarted while an ADD is under way keeps the attachment that ADD then reports', async () => {
    const s = await slowAdd('rst', '10.100.0.62/24');
    try {
      await topo.stopDaemon(s.a);
      await topo.startDaemon(s.a);
      s.release(); // the ADD's IPAM ends only now, with the new data plane up
      const r = await s.added;
      expect(r.code, r.out).toBe(0);
      expect(await s.attached()).toBe(true);
      expect(s.a.stderr.join('\n')).not.toMatch(/dropping attachment/);
      const chk = s.run('CHECK', { prevResult: JSON.parse(r.out) });
      expect(chk.status, chk.stdout).toBe(0);
      expect(s.run('DEL').status).toBe(0);
      expect(await s.attached()).toBe(false);
    } finally {
      s.cleanup();
    }
  }, 60_000);
});
