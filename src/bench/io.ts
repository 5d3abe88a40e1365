// `vfplane bench --backend afpacket|afxdp|dpdk`: our data plane and the kernel's vxlan
// device, each as the DUT of the same veth topology (io-topo.ts), fed by the same
// generator and counted by the same sink (vfp-pktgen), with the same pinning, in one
// run. Encap: G sends inner frames, S counts the VXLAN frames the DUT sends. Decap: S
// sends VXLAN frames, G counts the inner frames. Latency: ping from G to a kernel vxlan
// VTEP in S, through the DUT's encap and decap. With dpdk also: our encap between two
// net_null ports against dpdk-testpmd io forwarding on the same core.
import { onInterrupt, stopChildSync } from '../util/interrupt.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { outerHeaderLength, resolveTunnel } from '../packet/config.js';
import { parseIp, parseMac } from '../util/addr.js';
import { averageSize, benchFrames, sizePattern, vxlanFrames, type SizeSpec } from './frames.js';
import { ADDR, Topology, sweepStaleTopologies } from './io-topo.js';
import { benchDpdkJournal, dropBenchDpdkDir, recoverBenchDpdk } from './dpdk-journal.js';
import { LineChild, sleep } from './io-proc.js';
import { median } from './memory.js';
import { summarize } from './stats.js';

export type IoBackend = 'afpacket' | 'afxdp' | 'dpdk';
export type IoOp = 'encap' | 'decap';

export interface IoBenchOptions {
  backend: IoBackend;
  sizes: SizeSpec[];
  ops: IoOp[];
  /** Milliseconds per measurement window. */
  durationMs: number;
  trials: number;
  vni: number;
  dutCpu: number;
  genCpu: number;
  /** The generator's transmit path (same for both DUTs). */
  genBackend: 'xdp-live' | 'afxdp' | 'afpacket';
  /** Why genBackend is not the default xdp-live (the kernel refused live frames). */
  genFallback?: string;
  pings: number;
  kernel: boolean;
  /** dpdk only: the net_null comparison with dpdk-testpmd. */
  nullCompare: boolean;
  /** dpdk only: run just the net_null comparison (no veth topology, no DUT cells). */
  onlyNull?: boolean;
  onProgress?: (msg: string) => void;
}

export interface IoCell {
  dut: string;
  op: IoOp;
  size: SizeSpec;
  avgInnerBytes: number;
  /** Mean L2 bytes (no FCS) of the frames the sink counted: outer for encap, inner for decap. */
  sinkFrameBytes: number;
  /** How many frames of each L2 length the sink counted over the same span (length →
   *  frames; 16383 stands for "that long or longer"): a frame that is not what the
   *  generator sent, through the DUT, shows up here by its length. */
  sinkFrameLengths: Record<string, number>;
  /** Of those, frames whose length is none the generator's frames have after the DUT
   *  (a frame of a DUT's own, or a bug): they are counted in mpps and sinkFrameBytes. */
  sinkStrayFrames: number;
  /** What the generator handed over in the window(s) `mpps` is from: the median window
   *  by sink rate (the two middle ones, averaged, for an even count), so the two are
   *  rates over the same time and compare. */
  offeredMpps: number;
  mpps: number;
  /** Of the frames the sink counted, L2 bytes without FCS, preamble or gap. */
  gbps: number;
  trialsMpps: number[];
  /** What the generator handed over in each window of trialsMpps. */
  trialsOfferedMpps: number[];
}

/** The median window of `sink` (the two middle ones for an even count) and the mean of
 *  each series over it: a cell's sink and offered rates from the same window(s). Taking
 *  each median on its own, or the offered rate over the whole span, let a cell read a
 *  sink rate above what was offered in any one window. */
export function medianWindow(sink: number[], offered: number[]): { mpps: number; offeredMpps: number } {
  if (sink.length === 0) return { mpps: 0, offeredMpps: 0 };
  const order = sink.map((_, i) => i).sort((a, b) => sink[a]! - sink[b]!);
  const mid = order.length % 2 ? [order[(order.length - 1) / 2]!] : [order[order.length / 2 - 1]!, order[order.length / 2]!];
  const mean = (xs: number[]) => mid.reduce((a, i) => a + (xs[i] ?? 0), 0) / mid.length;
  return { mpps: mean(sink), offeredMpps: mean(offered) };
}

export interface LatencyCell {
  dut: string;
  sent: number;
  received: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export interface NullCompare {
  oursMpps: number;
  testpmdMpps: number;
  ratio: number;
  trialsOurs: number[];
  trialsTestpmd: number[];
  mbufs: number;
  cpu: number;
  frameBytes: number;
}

export interface IoBenchResult {
  backend: IoBackend;
  machine: { cpu: string; cores: number; node: string; kernel: string; date: string };
  settings: Record<string, unknown>;
  duts: string[];
  cells: IoCell[];
  latency: LatencyCell[];
  nullCompare: NullCompare | null;
  notes: string[];
}

export const KERNEL_DUT = 'kernel-vxlan';
export const oursDut = (b: IoBackend) => `vfplane-${b}`;

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

/** build/Release/<name>, found from src/bench or dist/bench. */
export function nativeTool(name: string): string {
  for (const p of ['../../build/Release/', '../../../build/Release/']) {
    const f = here(p + name);
    if (existsSync(f)) return f;
  }
  throw new Error(`${name} is not built (build/Release/${name} is missing); run npm run build:native`);
}

/** Whether this kernel lets us transmit BPF_PROG_RUN live frames (the xdp-live
 *  generator): null when it does, else its reason. Some refuse even root (EPERM, seen on a
 *  6.18 build; EINVAL before 5.18). Asked of vfp-pktgen, which sends nothing to ask. */
export function liveFramesRefused(): string | null {
  const r = spawnSync(nativeTool('vfp-pktgen'), ['probe-live'], { encoding: 'utf8', timeout: 10_000 });
  let j: { liveFrames?: boolean; error?: string } = {};
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    // no answer: said below
  }
  if (j.liveFrames === true) return null;
  return j.error ?? (r.stderr.trim() || `vfp-pktgen probe-live exited ${r.status ?? r.signal}`);
}

const FLOWS = 200; // < 253, so no flow's source MAC equals one of the topology's

/** The tunnel S → D of the decap generator's frames: the topology's underlay, whose
 *  outer headers (outerHeaderLength) the DUT adds on encap and strips on decap. */
const genTunnel = () => resolveTunnel({ local: ADDR.vtepS, remote: ADDR.vtepD, srcMac: ADDR.sMac, dstMac: ADDR.dsMac });

/** The generator's frames for one op and size: inner frames for encap, VXLAN frames
 *  (built with the TS model, S → D) for decap. */
export function ioFrames(op: IoOp, size: SizeSpec, vni: number): Uint8Array[] {
  const inner = benchFrames(sizePattern(size), FLOWS);
  if (op === 'encap') return inner;
  const g = parseMac(ADDR.gMac)!;
  for (const f of inner) f.set(g, 0);
  return vxlanFrames(inner, genTunnel(), vni);
}

/** [u16 big-endian length][bytes]... as vfp-pktgen reads it. */
export function frameFile(frames: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const h = Buffer.alloc(2);
    h.writeUInt16BE(f.length);
    parts.push(h, Buffer.from(f));
  }
  return Buffer.concat(parts);
}

/** Rates between consecutive marks of a counter: Mpps per window. */
export function windowRates(marks: { t_ns: number; pkts: number }[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < marks.length; i++) {
    const dt = marks[i]!.t_ns - marks[i - 1]!.t_ns;
    out.push(dt > 0 ? ((marks[i]!.pkts - marks[i - 1]!.pkts) / dt) * 1e3 : 0);
  }
  return out;
}

/** Nearest-rank RTT percentiles from ping output lines ("time=0.071 ms"), skipping the
 *  first `warm` replies (ARP, cold caches). */
export function parsePing(out: string, warm = 5): number[] {
  const rtts: number[] = [];
  for (const m of out.matchAll(/time=([\d.]+) ms/g)) rtts.push(Number(m[1]) * 1000);
  return rtts.slice(Math.min(warm, Math.max(0, rtts.length - 1)));
}

/** testpmd's periodic port statistics: the Tx-pps of port `port` in each report. */
export function parseTestpmdTxPps(out: string, port: number): number[] {
  const res: number[] = [];
  const re = /statistics for port\s+(\d+)\s+#+([\s\S]*?)#{20,}/g;
  for (const m of out.matchAll(re)) {
    if (Number(m[1]) !== port) continue;
    const tx = /Tx-pps:\s+(\d+)/.exec(m[2]!);
    if (tx) res.push(Number(tx[1]));
  }
  return res;
}

interface Dut {
  name: string;
  up(): Promise<void>;
  down(): Promise<void>;
}

function kernelDut(topo: Topology, vni: number): Dut {
  return { name: KERNEL_DUT, up: async () => topo.kernelUp(vni), down: async () => topo.kernelDown() };
}

function peerSpec(vni: number) {
  return {
    vni, vtepLocal: ADDR.vtepD, peer: { vtep: ADDR.vtepS, mac: ADDR.sMac }, podMac: ADDR.gMac, fdbMac: ADDR.remoteMac,
  };
}

/** Our data plane on D's veths, in this process (afpacket, afxdp). */
function oursInProcess(topo: Topology, o: IoBenchOptions): Dut {
  let dp: import('../dataplane/dp.js').DataPlane | null = null;
  return {
    name: oursDut(o.backend),
    async up() {
      const { DataPlane } = await import('../dataplane/dp.js');
      dp = new DataPlane({ workers: 1, cpus: [o.dutCpu], idleSpins: 0 });
      const netns = topo.netnsPath(topo.n.nsD);
      // The daemon's defaults: native XDP; AF_PACKET with TPACKET_V2 rx (no block timer).
      const extra = o.backend === 'afxdp' ? { mode: 'native', copy: 'auto' } : { ring: 2, stackDrop: 1 };
      const pod = dp.openPort(o.backend as 'afpacket' | 'afxdp', { ifname: topo.n.dg, netns, ...extra }, 'pod');
      const up = dp.openPort(o.backend as 'afpacket' | 'afxdp', { ifname: topo.n.ds, netns, ...extra }, 'uplink');
      const s = peerSpec(o.vni);
      const vtep = parseIp(s.peer.vtep)!.bytes;
      dp.commit({
        uplink: up.slot, uplinkMac: parseMac(ADDR.dsMac)!,
        tunnel: resolveTunnel({ local: s.vtepLocal, remote: s.peer.vtep }),
        peers: [{ vtep, mac: parseMac(s.peer.mac)! }],
        atts: [{ port: pod.slot, vni: o.vni, mac: parseMac(s.podMac)! }],
        fdb: [{ vni: o.vni, mac: parseMac(s.fdbMac)!, vtep }],
        floods: [], extraVnis: [], learn: false, antiSpoof: false, icmpTooBig: false, verifyUdpCsum: false,
      });
    },
    async down() {
      dp?.stop();
      dp = null;
    },
  };
}

/** The DPDK DUT child; `pin`: the CPU its threads start on (the worker moves itself to
 *  its own CPU), so Node's threads keep off the worker's CPU as testpmd's main lcore does. */
function nodeChild(what: string, ns: string | null, cfg: object, pin?: number): LineChild {
  const js = here('./io-dpdk-child.js');
  if (!existsSync(js)) throw new Error(`${js} is missing: the DPDK DUT runs from the compiled CLI (npm run build)`);
  const argv = [...(pin === undefined ? [] : ['taskset', '-c', String(pin)]), process.execPath, js, JSON.stringify(cfg)];
  return ns ? new LineChild(what, 'ip', ['netns', 'exec', ns, ...argv]) : new LineChild(what, argv[0]!, argv.slice(1));
}

/** Our data plane with DPDK ports (net_af_xdp vdevs on D's veths), in a child in D. */
function oursDpdkVeth(topo: Topology, o: IoBenchOptions): Dut {
  let child: LineChild | null = null;
  return {
    name: oursDut('dpdk'),
    async up() {
      child = nodeChild('the DPDK DUT', topo.n.nsD, {
        cpu: o.dutCpu, ...peerSpec(o.vni), uplinkMac: ADDR.dsMac,
        pod: `net_af_xdp0,iface=${topo.n.dg},start_queue=0,queue_count=1`,
        uplink: `net_af_xdp1,iface=${topo.n.ds},start_queue=0,queue_count=1`,
      });
      await child.next(60000);
    },
    async down() {
      await child?.close();
      child = null;
    },
  };
}

/** A mark of the sink (vfp-pktgen sink): its totals and its per-length counts so far. */
interface SinkMark {
  t_ns: number;
  pkts: number;
  bytes: number;
  lens?: Record<string, number>;
}

/** The frames of each length the sink counted between two of its marks. */
export function lengthsBetween(a: SinkMark, b: SinkMark): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [len, n] of Object.entries(b.lens ?? {})) {
    const d = n - (a.lens?.[len] ?? 0);
    if (d > 0) out[len] = d;
  }
  return out;
}

async function measure(topo: Topology, dut: string, op: IoOp, size: SizeSpec, o: IoBenchOptions, dir: string): Promise<IoCell> {
  const n = topo.n;
  const file = join(dir, `${op}-${size}.bin`);
  const frames = ioFrames(op, size, o.vni);
  writeFileSync(file, frameFile(frames));
  const [genNs, genIf, sinkNs, sinkIf] = op === 'encap' ? [n.nsG, n.g, n.nsS, n.s] : [n.nsS, n.s, n.nsG, n.g];
  const tool = nativeTool('vfp-pktgen');
  const pin = ['taskset', '-c', String(o.genCpu)];
  const sink = new LineChild('the sink (vfp-pktgen sink)', 'ip', ['netns', 'exec', sinkNs, ...pin, tool, 'sink', '--iface', sinkIf]);
  let gen: LineChild | null = null;
  try {
    await sink.next();
    gen = new LineChild('the generator (vfp-pktgen gen)', 'ip', ['netns', 'exec', genNs, ...pin, tool, 'gen', '--iface', genIf, '--backend', o.genBackend, '--frames', file]);
    await gen.next();
    await sleep(300); // warm-up: rings filled, caches and the bridge's FDB warm
    const gm: { t_ns: number; pkts: number }[] = [], sm: SinkMark[] = [];
    for (let t = 0; t <= o.trials; t++) {
      if (t) await sleep(o.durationMs);
      gm.push(await gen.mark<{ t_ns: number; pkts: number }>());
      sm.push(await sink.mark<SinkMark>());
    }
    const trials = windowRates(sm);
    // Each window's marks are taken together (the generator's, then the sink's).
    const offeredTrials = windowRates(gm);
    const { mpps, offeredMpps: offered } = medianWindow(trials, offeredTrials);
    const pk = sm.at(-1)!.pkts - sm[0]!.pkts;
    const bytes = sm.at(-1)!.bytes - sm[0]!.bytes;
    const frameBytes = pk > 0 ? bytes / pk : 0;
    const lengths = lengthsBetween(sm[0]!, sm.at(-1)!);
    // What the sink should see: the inner frames plus the outer headers (encap), or the
    // encapsulated frames without them (decap).
    const outer = outerHeaderLength(genTunnel());
    const expected = new Set(frames.map((f) => String(op === 'encap' ? f.length + outer : f.length - outer)));
    const stray = Object.entries(lengths).reduce((a, [len, k]) => (expected.has(len) ? a : a + k), 0);
    return {
      dut, op, size, avgInnerBytes: averageSize(size), sinkFrameBytes: frameBytes, sinkFrameLengths: lengths, sinkStrayFrames: stray, offeredMpps: offered, mpps,
      gbps: (mpps * 1e6 * frameBytes * 8) / 1e9, trialsMpps: trials, trialsOfferedMpps: offeredTrials,
    };
  } finally {
    await gen?.close();
    await sink.close();
  }
}

async function latency(topo: Topology, dut: string, o: IoBenchOptions): Promise<LatencyCell> {
  // Not spawnSync: a signal's handler must run while ping does (a blocked event loop
  // left a SIGTERM to this process unheard until ping was done, and a Ctrl-C that killed
  // ping reported its replies so far as the result), and ping's output grows with --pings
  // (about 70 bytes a reply) past any fixed buffer.
  const { spawn } = await import('node:child_process');
  const args = ['netns', 'exec', topo.n.nsG, 'taskset', '-c', String(o.genCpu), 'ping', '-n', '-c', String(o.pings + 5),
    '-i', '0.002', '-W', '1', ADDR.overlayS];
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const off = onInterrupt(() => stopChildSync(child.pid));
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  // 2 ms apart, and a lost one waits 1 s at most (-W 1) only at the end.
  const limitMs = 30_000 + (o.pings + 5) * 10;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, limitMs);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, sg) => resolve([c, sg]));
    });
    // ping exits 0 with any reply, 1 with none, 2 on an error.
    if (timedOut) throw new Error(`the latency ping (${o.pings} pings through ${dut}) did not finish in ${limitMs / 1000} s; lower --pings`);
    if (signal || (code !== 0 && code !== 1)) throw new Error(`the latency ping through ${dut} ${signal ? `was killed by ${signal}` : `failed (exit ${code})`}${err.trim() ? `: ${err.trim()}` : ''}`);
  } finally {
    clearTimeout(timer);
    off();
  }
  const rtts = parsePing(out);
  const s = summarize(rtts);
  return { dut, sent: o.pings, received: rtts.length, p50Us: s.p50, p99Us: s.p99, maxUs: s.max };
}

/** Our encap from a net_null pod port to a net_null uplink (no rx) against testpmd io
 *  forwarding net_null0 → net_null1 (no rx), same core, same mbuf count. */
async function nullCompare(o: IoBenchOptions): Promise<NullCompare> {
  const say = o.onProgress ?? (() => {});
  const mbufs = 16384;
  const trialsOurs: number[] = [];
  const trialsTestpmd: number[] = [];
  for (let t = 0; t < o.trials; t++) {
    say(`  net_null: vfplane encap (trial ${t + 1}) …`);
    const c = nodeChild('the DPDK net_null DUT', null, {
      cpu: o.dutCpu, ...peerSpec(o.vni), fdbMac: '00:00:00:00:00:00', mbufs,
      pod: `net_null${t}0,size=64`, uplink: `net_null${t}1,no-rx=1`,
    }, o.genCpu);
    try {
      await c.next(60000);
      await sleep(300);
      const a = await c.mark<{ t_ns: number; upTx: number }>();
      await sleep(Math.max(o.durationMs, 1000));
      const b = await c.mark<{ t_ns: number; upTx: number }>();
      trialsOurs.push(((b.upTx - a.upTx) / (b.t_ns - a.t_ns)) * 1e3);
    } finally {
      await c.close();
    }
    say(`  net_null: dpdk-testpmd io (trial ${t + 1}) …`);
    trialsTestpmd.push(await testpmdTrial(o, mbufs, Math.max(o.durationMs, 1000)));
  }
  const ours = median(trialsOurs), tp = median(trialsTestpmd);
  return { oursMpps: ours, testpmdMpps: tp, ratio: ours / tp, trialsOurs, trialsTestpmd, mbufs, cpu: o.dutCpu, frameBytes: 64 };
}

async function testpmdTrial(o: IoBenchOptions, mbufs: number, ms: number): Promise<number> {
  const { prepareDpdkEnv } = await import('../dataplane/dpdk-env.js');
  const { spawn } = await import('node:child_process');
  const prefix = `vfpbtp${process.pid}`;
  const stateDir = join(os.tmpdir(), `vfplane-bench-${process.pid}`);
  const env = prepareDpdkEnv({
    cores: `${o.genCpu},${o.dutCpu}`, stateDir, hugepages: 256,
    filePrefix: prefix, vdevs: ['net_null0,size=64', 'net_null1,no-rx=1'], warn: () => {},
    journal: benchDpdkJournal('testpmd'), // for the next bench, should this one be killed
  });
  // Interrupted, the pages reserved and the hugetlbfs mounted for testpmd are given back
  // too (512 MiB stayed pinned otherwise): testpmd first, then its environment.
  let testpmd: number | undefined;
  const off = onInterrupt(() => {
    stopChildSync(testpmd);
    env.cleanup();
    dropBenchDpdkDir();
    rmSync(stateDir, { recursive: true, force: true });
  });
  try {
    const periods = Math.max(3, Math.round(ms / 1000) + 2);
    const p = spawn('dpdk-testpmd', [...env.args, '--', `--total-num-mbufs=${mbufs}`, '--forward-mode=io', '--auto-start',
      '--stats-period', '1', '--nb-cores=1', '--burst=32'], { stdio: ['pipe', 'pipe', 'pipe'] });
    testpmd = p.pid;
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number>((res) => p.on('exit', (c) => res(c ?? -1)));
    for (let i = 0; i < periods * 10 && parseTestpmdTxPps(out, 1).length < periods; i++) await sleep(200);
    p.kill('SIGINT');
    const killer = setTimeout(() => p.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(killer);
    const pps = parseTestpmdTxPps(out, 1).slice(1); // the first period includes start-up
    if (!pps.length) throw new Error(`dpdk-testpmd printed no port statistics: ${out.slice(-800)}`);
    return median(pps) / 1e6;
  } finally {
    off();
    env.cleanup();
    dropBenchDpdkDir();
    rmSync(stateDir, { recursive: true, force: true }); // our own temp dir: the mount point's parent
  }
}

/** The veth topology's cells: every DUT × op × size, and the latency through each DUT. */
async function vethCells(o: IoBenchOptions, cells: IoCell[], lat: LatencyCell[], duts: Dut[]): Promise<void> {
  const say = o.onProgress ?? (() => {});
  const dir = mkdtempSync(join(os.tmpdir(), 'vfplane-bench-'));
  // The frame files (tens of MiB at 1500 B) go on an interrupt too; the topology has
  // its own (io-topo.ts).
  const off = onInterrupt(() => rmSync(dir, { recursive: true, force: true }));
  const topo = new Topology();
  try {
    topo.create(o.dutCpu, o.genBackend === 'xdp-live');
    if (o.kernel) duts.push(kernelDut(topo, o.vni));
    duts.push(o.backend === 'dpdk' ? oursDpdkVeth(topo, o) : oursInProcess(topo, o));
    for (const d of duts) {
      say(`  DUT ${d.name}: up`);
      await d.up();
      try {
        for (const op of o.ops) {
          for (const size of o.sizes) {
            say(`  ${d.name} ${op} ${size === 'imix' ? 'imix' : `${size} B`} …`);
            cells.push(await measure(topo, d.name, op, size, o, dir));
          }
        }
        if (o.pings > 0) {
          say(`  ${d.name} latency (${o.pings} pings) …`);
          topo.reflectorUp(o.vni);
          try {
            lat.push(await latency(topo, d.name, o));
          } finally {
            topo.reflectorDown();
          }
        }
      } finally {
        await d.down();
      }
    }
  } finally {
    off();
    topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runIoBench(o: IoBenchOptions): Promise<IoBenchResult> {
  const say = o.onProgress ?? (() => {});
  const notes: string[] = [];
  const gone = sweepStaleTopologies();
  if (gone.length) say(`  removed stale namespaces of dead bench runs: ${gone.join(', ')}`);
  // Said under --json too (on stderr): the host changed.
  for (const m of recoverBenchDpdk()) (o.onProgress ?? ((x: string) => process.stderr.write(`${x}\n`)))(`  ${m}`);
  const cells: IoCell[] = [];
  const lat: LatencyCell[] = [];
  const duts: Dut[] = [];
  let nc: NullCompare | null = null;
  if (!o.onlyNull) await vethCells(o, cells, lat, duts);
  if (o.backend === 'dpdk' && o.nullCompare) nc = await nullCompare(o);
  notes.push(
    o.genBackend === 'xdp-live'
      ? `generator: vfp-pktgen xdp-live on CPU ${o.genCpu} (the kernel transmits the frames itself: BPF_PROG_RUN live frames, XDP_TX into G's veth; D's veths run NAPI, GRO on, for both DUTs; "offered" is what it handed to the veth); sink: an XDP program (native mode) that counts and drops`
      : `generator: vfp-pktgen ${o.genBackend} tx on CPU ${o.genCpu}${o.genFallback ? ` (not xdp-live, the default: ${o.genFallback})` : ''}; sink: an XDP program (native mode) that counts and drops`,
    `DUT CPU ${o.dutCpu}: our worker is pinned there; D's veths steer kernel receive work there (RPS) for both DUTs`,
    'with AF_XDP (and net_af_xdp) the XDP redirect into the socket runs in the veth NAPI of the sending CPU: RPS cannot move it',
    'the sink\'s XDP program runs in the softirq of the CPU that transmits into its veth (the DUT CPU for both DUTs)',
    'sizes are inner L2 frames without FCS; Gb/s counts the L2 bytes (no FCS, preamble or gap) of the frames the sink received: outer VXLAN frames for encap, inner frames for decap',
  );
  return {
    backend: o.backend,
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), node: process.version, kernel: os.release(), date: new Date().toISOString() },
    settings: {
      sizes: o.sizes, ops: o.ops, windowMs: o.durationMs, trials: o.trials, vni: o.vni, dutCpu: o.dutCpu, genCpu: o.genCpu,
      generator: o.genBackend, ...(o.genFallback ? { generatorFallback: o.genFallback } : {}), pings: o.pings, outerHeaderBytes: outerHeaderLength(genTunnel()),
    },
    duts: duts.map((d) => d.name),
    cells, latency: lat, nullCompare: nc, notes,
  };
}
