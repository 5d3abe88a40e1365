// Turns benchmark results into what an operator reads: throughput tables, the cores a
// link speed would need at each frame size (from measured ns/packet), and the targets.
import Table from 'cli-table3';
import { outerHeaderLength, type Tunnel } from '../packet/config.js';
import { IMIX_LABEL, type SizeSpec } from './frames.js';
import type { Cell, FdbCell, MemoryBenchResult } from './memory.js';

export const LINK_GBPS = [10, 25, 40, 100] as const;
/** Per frame on the wire beyond the frame itself: preamble+SFD 8, FCS 4, inter-frame gap 12. */
const WIRE_EXTRA = 24;

export interface BudgetRow {
  op: string;
  size: SizeSpec;
  nsPerPacket: number;
  /** Underlay frame bytes on the wire per packet, with preamble, FCS and gap. */
  wireBytes: number;
  lineRateMpps: Record<string, number>;
  cores: Record<string, number>;
}

export interface Target {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
}

export interface BenchReport extends MemoryBenchResult {
  backend: 'memory';
  settings: Record<string, unknown>;
  ratios: { op: string; size: SizeSpec; nativeOverTs: number }[];
  fdbGrowth: { from: number; to: number; ratio: number } | null;
  budget: BudgetRow[];
  targets: Target[];
}

export function buildReport(r: MemoryBenchResult, tunnel: Tunnel, settings: Record<string, unknown>): BenchReport {
  const overhead = outerHeaderLength(tunnel);
  const find = (op: string, engine: string, size: SizeSpec) =>
    r.cells.find((c) => c.op === op && c.engine === engine && c.size === size);

  const ratios: BenchReport['ratios'] = [];
  for (const c of r.cells.filter((c) => c.engine === 'native')) {
    const ts = find(c.op, 'ts', c.size);
    if (ts) ratios.push({ op: c.op, size: c.size, nativeOverTs: c.mpps / ts.mpps });
  }

  const budget: BudgetRow[] = r.cells.filter((c) => c.engine === 'native').map((c) => {
    const wireBytes = c.avgInnerBytes + overhead + WIRE_EXTRA;
    const lineRateMpps: Record<string, number> = {};
    const cores: Record<string, number> = {};
    for (const g of LINK_GBPS) {
      const pps = (g * 1e9) / (wireBytes * 8);
      lineRateMpps[`${g}G`] = pps / 1e6;
      cores[`${g}G`] = (pps * c.nsPerPacket) / 1e9;
    }
    return { op: c.op, size: c.size, nsPerPacket: c.nsPerPacket, wireBytes, lineRateMpps, cores };
  });

  const sorted = [...r.fdb].sort((a, b) => a.entries - b.entries);
  const fdbGrowth = sorted.length >= 2
    ? { from: sorted[0]!.entries, to: sorted.at(-1)!.entries, ratio: sorted.at(-1)!.nsPerLookup / sorted[0]!.nsPerLookup }
    : null;

  const targets: Target[] = [];
  const burst = settings.burst;
  for (const op of ['encap', 'decap'] as const) {
    const n = find(op, 'native', 64);
    if (n && burst === 32) {
      const mode = op === 'decap' ? (settings.learn === false ? ' (no learning)' : ' (learning)') : '';
      targets.push({ name: `native ${op}${mode} 64 B, burst 32`, target: '≥ 30 Mpps', measured: `${n.mpps.toFixed(1)} Mpps`, pass: n.mpps >= 30 });
    }
    const ratio = ratios.find((x) => x.op === op && x.size === 64);
    // Defined at burst 32, as the Mpps target: another --burst is measured and shown only.
    if (ratio && burst === 32) {
      targets.push({ name: `native/TS ${op} 64 B`, target: '≥ 20×', measured: `${ratio.nativeOverTs.toFixed(1)}×`, pass: ratio.nativeOverTs >= 20 });
    }
  }
  // The issue's target is defined from 1k to 1M entries: judged there only (other
  // --fdb-sizes are measured and shown, not held to it).
  const at = (n: number) => r.fdb.find((x) => x.entries === n);
  const k1 = at(1000), m1 = at(1_000_000);
  if (k1 && m1 && burst === 32) { // lookups go in bursts of --burst: judged at the default
    const g = m1.nsPerLookup / k1.nsPerLookup;
    targets.push({ name: 'FDB lookup 1k → 1M entries', target: '≤ +25%', measured: `${fmtPct(g - 1)}`, pass: g <= 1.25 });
  }
  return { ...r, backend: 'memory', settings, ratios, fdbGrowth, budget, targets };
}

const fmtSize = (s: SizeSpec) => (s === 'imix' ? 'imix' : `${s} B`);
const fmtCount = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));
const range = (xs: number[]) => (xs.length > 1 ? `[${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]` : '');
const fmtPct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

export function renderReport(rep: BenchReport): string {
  const out: string[] = [];
  const m = rep.machine;
  out.push(`vfplane bench — memory backend (engine only: frames stay in cache, no I/O)`);
  out.push(`${m.cpu}, ${m.cores} cores, Node ${m.node}, kernel ${m.kernel}`);
  const h = rep.hostReference;
  const drift = Math.abs(h.after - h.before) / Math.min(h.before, h.after);
  out.push(`host reference: ${h.before.toFixed(2)} ns/iteration before, ${h.after.toFixed(2)} after (lower is faster; ` +
    `compare runs only at similar values)` + (drift > 0.15 ? ' — WARNING: the host changed speed during the run' : ''));
  out.push(`burst ${rep.settings.burst}, ${rep.settings.trials === 1 ? 'one trial' : `median of ${rep.settings.trials} trials`} × ${rep.settings.duration} s, ` +
    `native pinned to CPU ${rep.settings.cpu ?? 'any'}; ` +
    (rep.settings.learn === false ? 'decap without learning' : 'decap learns source MACs into the FDB'));
  out.push('Mpps cells: median [slowest–fastest trial]. A wide range means a noisy host: compare ratios within one run.');
  if (rep.cells.some((c) => c.engine === 'native')) {
    out.push('Gb/s: L2 bytes (no FCS, preamble or gap) of the frames the engine puts out: outer VXLAN frames for encap, inner frames for decap (as the I/O bench counts them)');
  }
  if (rep.cells.some((c) => c.size === 'imix')) out.push(IMIX_LABEL);
  out.push('');

  const engines = [...new Set(rep.cells.map((c) => c.engine))];
  for (const op of [...new Set(rep.cells.map((c) => c.op))]) {
    const head = ['inner size'];
    for (const e of engines) head.push(`${e} Mpps`, `${e} ns/pkt`);
    if (engines.length > 1) head.push('native/ts');
    if (engines.includes('native')) head.push(`native Gb/s (${op === 'encap' ? 'outer' : 'inner'})`);
    const t = new Table({ head: [op, ...head.slice(1)].map((h, i) => (i === 0 ? `${op}: ${head[0]}` : h)), style: { head: [], border: [] } });
    for (const size of [...new Set(rep.cells.map((c) => c.size))]) {
      const row: string[] = [fmtSize(size)];
      let nat: Cell | undefined;
      for (const e of engines) {
        const c = rep.cells.find((x) => x.op === op && x.engine === e && x.size === size);
        if (e === 'native') nat = c;
        row.push(c ? `${c.mpps.toFixed(2)} ${range(c.trialsMpps)}` : '–', c ? c.nsPerPacket.toFixed(1) : '–');
      }
      if (engines.length > 1) {
        const r = rep.ratios.find((x) => x.op === op && x.size === size);
        row.push(r ? `${r.nativeOverTs.toFixed(1)}×` : '–');
      }
      if (engines.includes('native')) row.push(nat ? nat.gbps.toFixed(1) : '–');
      t.push(row);
    }
    out.push(t.toString());
  }

  if (rep.fdb.length) {
    const t = new Table({ head: ['FDB entries', 'ns/lookup', 'vs smallest', 'loop ns (keygen ns)', 'table MiB', 'insert ns/entry'], style: { head: [], border: [] } });
    const base = [...rep.fdb].sort((a, b) => a.entries - b.entries)[0]!;
    for (const f of rep.fdb as FdbCell[]) {
      t.push([fmtCount(f.entries), f.nsPerLookup.toFixed(2), fmtPct(f.nsPerLookup / base.nsPerLookup - 1),
        `${f.loopNsPerLookup.toFixed(1)} (${f.keygenNsPerLookup.toFixed(1)})`,
        (f.memBytes / 2 ** 20).toFixed(1), f.insertNsPerEntry.toFixed(0)]);
    }
    out.push('FDB bulk lookup, uniformly random keys among the entries (ns/lookup: the timed loop minus its key generation):');
    out.push(t.toString());
  }

  if (rep.budget.length) {
    out.push('Line-rate budget: cores needed at the measured native ns/packet (engine cost only; I/O is extra)');
    const t = new Table({ head: ['op', 'inner size', ...LINK_GBPS.map((g) => `${g} GbE`)], style: { head: [], border: [] } });
    for (const b of rep.budget) {
      t.push([b.op, fmtSize(b.size), ...LINK_GBPS.map((g) => `${b.cores[`${g}G`]!.toFixed(2)} (${b.lineRateMpps[`${g}G`]!.toFixed(2)} Mpps)`)]);
    }
    out.push(t.toString());
  }

  if (rep.targets.length) {
    out.push('Targets:');
    for (const t of rep.targets) out.push(`  ${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.measured} (target ${t.target})`);
  }
  return out.join('\n') + '\n';
}
