// The work behind `vfplane demo` (see src/cli/demo.ts): topology up, traffic, a report
// of what happened (VFs, attachments, counters, Mpps), topology down — also on Ctrl-C,
// SIGTERM or a failure half-way.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { Topology } from './topology.js';
import { unavailable } from '../util/errors.js';
import { countsText, printJson } from '../cli/output.js';
import { interrupted, onInterrupt } from '../util/interrupt.js';

interface DemoOpts {
  backend: 'afpacket' | 'afxdp';
  seconds: number;
  kernelNode: boolean;
  underlay?: 'ipv4' | 'ipv6';
  keep: boolean;
  json: boolean;
}

const WORK_TAG = 'vfplane-demo-';
const TCP_FLOOR_GBPS = 0.05; // 50 Mbit/s

const demoPrefix = (pid: number) => `d${(pid % 1_679_616).toString(36)}`;

function need(cmds: string[]): void {
  if (process.getuid?.() !== 0) throw unavailable('vfplane demo builds network namespaces and veths: run it as root');
  for (const c of cmds) {
    if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', c]).status !== 0) {
      throw unavailable(`vfplane demo needs ${c}; run ./scripts/setup (or apt-get install ${c === 'ping' ? 'iputils-ping' : c})`);
    }
  }
}

export async function runDemo(o: DemoOpts): Promise<void> {
  need(['ip', 'iperf3', 'ping', 'ethtool']);
  // What a killed demo left (its simulators, namespaces, data planes) is swept by the
  // topology's up(), as any dead topology's.
  const say = (m: string) => {
    if (!o.json) process.stderr.write(`${m}\n`);
  };
  const workDir = join(tmpdir(), `${WORK_TAG}${process.pid}`);
  mkdirSync(workDir, { recursive: true });
  const topo = new Topology({
    prefix: demoPrefix(process.pid),
    workDir,
    backend: o.backend,
    // Documentation prefixes (RFC 5737, RFC 3849) for the underlay.
    nodes: ['a', 'b'].map((name, i) => ({ name, vtep: o.underlay === 'ipv6' ? `2001:db8::${i + 1}` : `192.0.2.${i + 1}` })),
    kernelNode: o.kernelNode ? { vtep: o.underlay === 'ipv6' ? '2001:db8::9' : '192.0.2.9', vni: 100, ip: '10.100.0.9/24' } : null,
    // An IPv6 underlay switch that snoops MLD, as many do: the nodes are reachable only
    // because their data planes report their VTEPs' solicited-node groups.
    snooping: o.underlay === 'ipv6',
    log: (m) => say(`  ${m}`),
  });
  let tearing: Promise<string[]> | null = null;
  // The iperf3 server in b1: started by `ip netns exec`, it would outlive the demo (and
  // keep b1's namespace alive) if only the topology were torn down.
  let iperfServer: ReturnType<typeof spawn> | null = null;
  const teardown = () => {
    iperfServer?.kill('SIGKILL');
    return (tearing ??= topo.down());
  };
  // Interrupted: the topology goes (its daemons awaited), then the process exits 130/143.
  const off = onInterrupt(async (sig) => {
    say(`\n${sig}: tearing the demo down`);
    await teardown();
  });
  const INTERRUPTED = new Error('interrupted');
  try {
    say(`vfplane demo: two simulated nodes, ${o.backend} data planes, VXLAN between them over an ${o.underlay === 'ipv6' ? 'IPv6' : 'IPv4'} underlay${o.underlay === 'ipv6' ? ' (a bridge that snoops MLD)' : ''}${o.kernelNode ? ', and a node on the kernel vxlan device' : ''}`);
    say('1. topology');
    await topo.up();
    say('2. pods get VFs through vfplane-cni (vxlan: {vni})');
    await topo.addPod({ name: 'a1', node: 'a', vni: 100, ip: '10.100.0.1/24' });
    await topo.addPod({ name: 'b1', node: 'b', vni: 100, ip: '10.100.0.2/24' });
    await topo.addPod({ name: 'a2', node: 'a', vni: 200, ip: '10.100.0.4/24' });
    await topo.addPod({ name: 'b2', node: 'b', vni: 200, ip: '10.100.0.3/24' });

    say('3. traffic');
    const checks: { what: string; expect: 'reach' | 'isolated'; received: number; sent: number; ok: boolean; rttMs?: number }[] = [];
    // The pings run at once (those that must get no reply each wait out ping's -W), and
    // are reported in order.
    const plan: [string, string, string, 'reach' | 'isolated'][] = [
      ['a1 → b1, VNI 100 across nodes', 'a1', '10.100.0.2', 'reach'],
      ['a2 → b2, VNI 200 across nodes', 'a2', '10.100.0.3', 'reach'],
      ['b2 (VNI 200) → a1 (VNI 100)', 'b2', '10.100.0.1', 'isolated'],
      ['a1 (VNI 100) → a2 (VNI 200), same node', 'a1', '10.100.0.4', 'isolated'],
      ...(o.kernelNode ? [['a1 → kernel node vx0 (VNI 100)', 'a1', '10.100.0.9', 'reach'] as [string, string, string, 'reach']] : []),
    ];
    const pings = await Promise.all(plan.map(([, from, to]) => topo.pingAsync(from, to, 4)));
    if (await interrupted()) throw INTERRUPTED; // a ping cut short by Ctrl-C counts nothing
    plan.forEach(([what, , , expect], i) => {
      const r = pings[i]!;
      const ok = expect === 'reach' ? r.received >= 3 : r.received === 0;
      const rtt = r.rtts.length ? r.rtts.slice(1).concat(r.rtts[0]!).sort((x, y) => x - y)[Math.floor(r.rtts.length / 2)] : undefined;
      checks.push({ what, expect, received: r.received, sent: 4, ok, ...(rtt !== undefined ? { rttMs: rtt } : {}) });
      say(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${r.received}/4 replies${expect === 'isolated' ? ' (must be 0)' : ''}`);
    });

    // TCP: one iperf3 stream a1 → b1.
    const server = spawn('ip', ['netns', 'exec', topo.pods.get('b1')!.netns, 'iperf3', '-s', '-p', '5201'], { stdio: 'ignore' });
    iperfServer = server;
    await new Promise((r) => setTimeout(r, 400));
    const tcp = topo.exec('a1', ['iperf3', '-c', '10.100.0.2', '-p', '5201', '-t', String(o.seconds), '-J'], (o.seconds + 20) * 1000);
    if (await interrupted()) throw INTERRUPTED;
    let tcpGbps: number | null = null;
    try {
      tcpGbps = (JSON.parse(tcp.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
    } catch {
      say(`  iperf3 TCP failed: ${(tcp.stdout + tcp.stderr).trim().slice(0, 300)}`);
    }
    // A floor far below what a healthy overlay carries here (0.5–2 Gbit/s), far above
    // what a broken one does (a data plane dropping merged or oversized frames leaves TCP
    // to its retransmission timer: kilobits).
    const tcpOk = tcpGbps !== null && tcpGbps >= TCP_FLOOR_GBPS;
    if (tcpGbps !== null) say(`  ${tcpOk ? 'ok  ' : 'FAIL'} TCP a1 → b1: ${tcpGbps.toFixed(2)} Gbit/s (iperf3, one stream; must be ≥ ${TCP_FLOOR_GBPS})`);
    // Small packets: UDP 64-byte payloads, unlimited rate; the data planes' own counters
    // say how many they encapsulated and decapsulated per second.
    const before = await nodeCounters(topo);
    const t0 = process.hrtime.bigint();
    const udp = topo.exec('a1', ['iperf3', '-c', '10.100.0.2', '-p', '5201', '-u', '-l', '64', '-b', '0', '-t', String(o.seconds), '-J'], (o.seconds + 20) * 1000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (await interrupted()) throw INTERRUPTED;
    const after = await nodeCounters(topo);
    server.kill();
    const encapMpps = (after.a!.encap - before.a!.encap) / secs / 1e6;
    const decapMpps = (after.b!.decap - before.b!.decap) / secs / 1e6;
    // What iperf3 handed to a1's interface, and what node a's representor ring could not
    // take (the kernel drops into a full ring when the worker is saturated): where the
    // frames that were not encapsulated went.
    let sent: number | null = null;
    try {
      sent = (JSON.parse(udp.stdout) as { end: { sum: { packets: number } } }).end.sum.packets;
    } catch {
      // an iperf3 without -J output: the line says less
    }
    const ringDrops = after.a!.ringDrops - before.a!.ringDrops;
    say(`  UDP 64 B a1 → b1: ${sent !== null ? `iperf3 sent ${(sent / secs / 1e6).toFixed(3)} Mpps; ` : ''}node a encapsulated ${encapMpps.toFixed(3)} Mpps, node b decapsulated ${decapMpps.toFixed(3)} Mpps` +
      `${ringDrops > 0 ? `; ${ringDrops} frames found node a's representor ring full (its worker saturated: generator, workers and softirqs share this machine's CPUs)` : ''}`);

    say('4. what the data planes did');
    const report: Record<string, unknown> = { backend: o.backend, checks, tcpGbps, tcpOk, udp64: { seconds: secs, sentPkts: sent, encapMpps, decapMpps, ringDropsNodeA: ringDrops }, nodes: {} };
    for (const name of topo.nodes.keys()) {
      const status = await topo.control(name, { op: 'status' });
      const stats = (await topo.control(name, { op: 'stats' })).counters as Record<string, unknown>;
      const fdb = await topo.control(name, { op: 'fdb-list' });
      (report.nodes as Record<string, unknown>)[name] = { status, counters: stats, fdb };
      if (!o.json) printNode(name, status, stats, fdb);
    }
    const failed: unknown[] = checks.filter((c) => !c.ok);
    if (!tcpOk) failed.push('tcp');
    // The verdict in the JSON too (its exit code says it as well): every check and TCP.
    if (o.json) printJson({ ok: failed.length === 0, failed: failed.length, ...report });
    else say(failed.length ? `\n${failed.length} check(s) failed` : '\nall checks passed');
    if (o.keep) {
      say('the topology stays up (--keep); press Ctrl-C to tear it down');
      await new Promise(() => undefined);
    }
    if (failed.length) process.exitCode = 1;
  } catch (e) {
    // Interrupted: the interrupt's cleanup tears down and exits; nothing failed to report.
    if (e === INTERRUPTED || (await interrupted())) return await new Promise<never>(() => undefined);
    const logs = topo.logLines(20).map((l) => `  ${l}`);
    if (logs.length) process.stderr.write(`data-plane logs:\n${logs.join('\n')}\n`);
    throw e;
  } finally {
    say('5. tearing down');
    const problems = await teardown();
    for (const p of problems) process.stderr.write(`teardown: ${p}\n`);
    // A signal during the teardown (its children blocked this loop) is heard now: the
    // interrupt's handler exits 130/143 (it was lost, and the demo exited 0).
    if (await interrupted()) await new Promise<never>(() => undefined);
    off();
    if (problems.length) {
      process.stderr.write('the teardown left the above; the next `vfplane demo` sweeps what it can find of it\n');
      process.exitCode = 1;
    }
  }
}

/** The ports' own drops (a full kernel ring, …), summed over a node's ports. */
const backendDrops = (ports: { drops?: Record<string, number> }[] | undefined) =>
  (ports ?? []).reduce((n, p) => n + Object.values(p.drops ?? {}).reduce((a, b) => a + b, 0), 0);

async function nodeCounters(topo: Topology): Promise<Record<string, { encap: number; decap: number; ringDrops: number }>> {
  const out: Record<string, { encap: number; decap: number; ringDrops: number }> = {};
  for (const n of topo.nodes.keys()) {
    const c = (await topo.control(n, { op: 'stats' })).counters as { engine: Record<string, number> };
    const st = (await topo.control(n, { op: 'status' })) as { ports?: { drops?: Record<string, number> }[] };
    out[n] = { encap: c.engine.encapPkts ?? 0, decap: c.engine.decapPkts ?? 0, ringDrops: backendDrops(st.ports) };
  }
  return out;
}

function printNode(name: string, status: Record<string, unknown>, c: Record<string, unknown>, fdb: Record<string, unknown>): void {
  const s = status as { backend: string; uplink: { name: string; vtep: string; mode?: string }; epoch: number; attachments: { representor: string; pci?: string; vni: number; mac: string; owner?: Record<string, string> }[] };
  console.log(`\nnode ${name}: ${s.backend} data plane on uplink ${s.uplink.name}${s.uplink.mode ? ` (${s.uplink.mode} XDP)` : ''}, VTEP ${s.uplink.vtep}, config epoch ${s.epoch}`);
  const att = new Table({ head: ['VF', 'representor', 'pod', 'VNI', 'MAC'], style: { head: [], border: [] } });
  for (const a of s.attachments) att.push([a.pci ?? '-', a.representor, a.owner?.containerId?.replace(/-ctr$/, '').replace(/^[^-]+-/, '') ?? '-', a.vni, a.mac]);
  console.log(att.toString());
  const cc = c as { ports: { name: string; rxPkts: number; txPkts: number; drops: number }[]; vnis: { vni: number; encapPkts: number; decapPkts: number; floodPkts: number; localPkts: number; drops: number }[]; drops: Record<string, number> };
  // "drops": what the data plane dropped (by reason, below); "port drops": what the
  // port's backend lost before the data plane saw it (a full kernel ring, …).
  const own = new Map(((status as { ports?: { name: string; drops?: Record<string, number> }[] }).ports ?? []).map((p) => [p.name, p.drops ?? {}]));
  const ports = new Table({ head: ['port', 'rx pkts', 'tx pkts', 'drops', 'port drops'], style: { head: [], border: [] } });
  for (const p of cc.ports) ports.push([p.name, p.rxPkts, p.txPkts, p.drops, countsText(own.get(p.name)) || 0]);
  const vnis = new Table({ head: ['VNI', 'encap', 'decap', 'flooded', 'local', 'drops'], style: { head: [], border: [] } });
  for (const v of cc.vnis) vnis.push([v.vni, v.encapPkts, v.decapPkts, v.floodPkts, v.localPkts, v.drops]);
  console.log(ports.toString());
  console.log(vnis.toString());
  console.log(`drops by reason: ${countsText(cc.drops) || 'none'}`);
  const learned = (fdb as { learned: { vni: number; mac: string; vtep: string }[] }).learned;
  console.log(`learned FDB: ${learned.length ? learned.map((e) => `${e.mac}@VNI${e.vni}→${e.vtep}`).join(', ') : 'empty'}`);
  const peers = (status as { peers?: { vtep: string; state: string; underlayMac: string | null; encapPkts: number }[] }).peers ?? [];
  console.log(`peers: ${peers.length ? peers.map((p) => `${p.vtep} ${p.state}${p.underlayMac ? ` (${p.underlayMac})` : ''}, ${p.encapPkts} frames encapsulated to it`).join('; ') : 'none'}`);
  const tier = (status as { uplink: { offload?: { tier: number; why: string } } }).uplink.offload;
  if (tier) console.log(`offload tier ${tier.tier}: ${tier.why}`);
}
