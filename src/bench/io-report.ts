// The I/O benchmark's report: ours-over-kernel ratios per op and size, the issue's
// targets, a human table, and an SVG chart of Mpps against frame size (hand-written
// SVG: one polyline per DUT and op, no dependency).
import Table from 'cli-table3';
import { IMIX_LABEL, type SizeSpec } from './frames.js';
import { KERNEL_DUT, type IoBenchResult, type IoCell } from './io.js';

export interface IoRatio {
  op: string;
  size: SizeSpec;
  dut: string;
  oursMpps: number;
  kernelMpps: number;
  ratio: number;
  /** Both DUTs forwarded (nearly) all that was offered: the generator set the rate, so
   *  the ratio says how much generator CPU each DUT's path costs, not DUT capacity. */
  generatorBound: boolean;
}

/** A DUT "kept up" when the sink counted at least 97% of what the generator offered. */
const keptUp = (c: IoCell) => c.offeredMpps > 0 && c.mpps >= 0.97 * c.offeredMpps;

export interface IoTarget {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
}

export interface IoReport extends IoBenchResult {
  ratios: IoRatio[];
  targets: IoTarget[];
  chart: string | null;
  command: string;
}

const fmtSize = (s: SizeSpec) => (s === 'imix' ? 'imix' : `${s} B`);

export function ioRatios(cells: IoCell[]): IoRatio[] {
  const out: IoRatio[] = [];
  for (const c of cells) {
    if (c.dut === KERNEL_DUT) continue;
    const k = cells.find((x) => x.dut === KERNEL_DUT && x.op === c.op && x.size === c.size);
    if (k) out.push({ op: c.op, size: c.size, dut: c.dut, oursMpps: c.mpps, kernelMpps: k.mpps, ratio: k.mpps > 0 ? c.mpps / k.mpps : Infinity, generatorBound: keptUp(c) && keptUp(k) });
  }
  return out;
}

export function ioTargets(r: IoBenchResult, ratios: IoRatio[]): IoTarget[] {
  const t: IoTarget[] = [];
  if (r.backend !== 'afpacket') {
    for (const op of ['encap', 'decap']) {
      const rs = ratios.filter((x) => x.op === op);
      if (!rs.length) continue;
      const worst = rs.reduce((a, b) => (b.ratio < a.ratio ? b : a));
      const bound = rs.filter((x) => x.generatorBound).length;
      // A DUT that forwarded nothing is a broken cell, not a ratio (x / 0 read as ∞ passed).
      const dead = rs.filter((x) => !(x.kernelMpps > 0) || !(x.oursMpps > 0));
      if (dead.length) {
        t.push({
          name: `${rs[0]!.dut} ${op} pps vs kernel vxlan, every size`, target: '≥ 2×',
          measured: `no comparison: ${dead.map((x) => `${x.kernelMpps > 0 ? x.dut : 'the kernel vxlan DUT'} forwarded nothing at ${fmtSize(x.size)}`).join('; ')}`, pass: false,
        });
        continue;
      }
      t.push({
        name: `${rs[0]!.dut} ${op} pps vs kernel vxlan, every size (worst: ${fmtSize(worst.size)})` +
          (bound ? `; ${bound} of ${rs.length} sizes generator-bound (both DUTs kept up): inconclusive there` : ''),
        target: '≥ 2×', measured: `${worst.ratio.toFixed(2)}×`, pass: worst.ratio >= 2,
      });
    }
  }
  if (r.nullCompare) {
    const n = r.nullCompare;
    t.push({ name: 'DPDK encap net_null vs dpdk-testpmd io, same core', target: '≥ 0.7×', measured: `${n.ratio.toFixed(2)}× (${n.oursMpps.toFixed(2)} / ${n.testpmdMpps.toFixed(2)} Mpps)`, pass: n.ratio >= 0.7 });
  }
  return t;
}

/** Sizes on the x axis: numbers by value (log scale), imix last at its own tick. */
export function ioChartSvg(cells: IoCell[], title: string): string {
  const W = 760, H = 420, L = 64, R = 200, T = 40, B = 56;
  const sizes = [...new Set(cells.map((c) => c.size))];
  const nums = sizes.filter((s): s is number => s !== 'imix').sort((a, b) => a - b);
  const hasImix = sizes.includes('imix');
  const lmin = Math.log(nums[0] ?? 64), lmax = Math.log(nums.at(-1) ?? 1500);
  const plotW = W - L - R, plotH = H - T - B;
  const numW = hasImix ? plotW * 0.85 : plotW;
  const x = (s: SizeSpec) => (s === 'imix' ? L + plotW : L + (lmax > lmin ? ((Math.log(s) - lmin) / (lmax - lmin)) * numW : numW / 2));
  // Scaled to what is drawn (the measured rates), not the offered rate, which is not
  // plotted and would squeeze every point into the bottom of the chart.
  const maxY = Math.max(0.001, ...cells.map((c) => c.mpps));
  const step = niceStep(maxY / 5);
  const top = Math.ceil(maxY / step) * step;
  const y = (v: number) => T + plotH - (v / top) * plotH;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (let v = 0; v <= top + 1e-9; v += step) {
    o.push(`<line x1="${L}" x2="${L + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    o.push(`<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${+v.toFixed(3)}</text>`);
  }
  for (const s of sizes) {
    o.push(`<text x="${x(s).toFixed(1)}" y="${T + plotH + 18}" text-anchor="middle">${s === 'imix' ? 'imix' : s}</text>`);
  }
  o.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${T + plotH}" stroke="black"/>`);
  o.push(`<line x1="${L}" x2="${L + plotW}" y1="${T + plotH}" y2="${T + plotH}" stroke="black"/>`);
  o.push(`<text x="${L + plotW / 2}" y="${H - 14}" text-anchor="middle">inner frame size (B)</text>`);
  o.push(`<text transform="translate(16 ${T + plotH / 2}) rotate(-90)" text-anchor="middle">Mpps received by the sink</text>`);
  const series = [...new Set(cells.map((c) => `${c.dut} ${c.op}`))];
  series.forEach((name, i) => {
    const pts = cells.filter((c) => `${c.dut} ${c.op}` === name).sort((a, b) => x(a.size) - x(b.size));
    const color = colors[Math.floor(i / 2) % colors.length]!;
    const dash = name.endsWith('decap') ? ' stroke-dasharray="6 4"' : '';
    const numPts = pts.filter((p) => p.size !== 'imix');
    if (numPts.length > 1) o.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${numPts.map((p) => `${x(p.size).toFixed(1)},${y(p.mpps).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) o.push(`<circle cx="${x(p.size).toFixed(1)}" cy="${y(p.mpps).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${name} ${fmtSize(p.size)}: ${p.mpps.toFixed(3)} Mpps`)}</title></circle>`);
    const ly = T + 10 + i * 18;
    o.push(`<line x1="${L + plotW + 14}" x2="${L + plotW + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    o.push(`<text x="${L + plotW + 46}" y="${ly + 4}">${esc(name)}</text>`);
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

export function buildIoReport(r: IoBenchResult, command: string, chart: string | null): IoReport {
  const ratios = ioRatios(r.cells);
  return { ...r, ratios, targets: ioTargets(r, ratios), chart, command };
}

export function renderIoReport(rep: IoReport): string {
  const out: string[] = [];
  const m = rep.machine;
  out.push(`vfplane bench — ${rep.backend} backend on the veth topology G → D (DUT) → S`);
  out.push(`${m.cpu}, ${m.cores} cores, Node ${m.node}, kernel ${m.kernel}`);
  out.push(`${rep.settings.trials === 1 ? 'one window' : `median of ${rep.settings.trials} windows`} × ${rep.settings.windowMs} ms per cell; command: ${rep.command}`);
  for (const n of rep.notes) out.push(`  · ${n}`);
  if (rep.cells.some((c) => c.size === 'imix')) out.push(IMIX_LABEL);
  out.push('');
  for (const op of [...new Set(rep.cells.map((c) => c.op))]) {
    const head = [`${op}: inner size`];
    for (const d of rep.duts) head.push(`${d} Mpps`, `${d} Gb/s`, `offered`);
    if (rep.duts.length > 1) head.push('ours/kernel');
    const t = new Table({ head, style: { head: [], border: [] } });
    for (const size of [...new Set(rep.cells.map((c) => c.size))]) {
      const row = [fmtSize(size)];
      for (const d of rep.duts) {
        const c = rep.cells.find((x) => x.dut === d && x.op === op && x.size === size);
        row.push(c ? c.mpps.toFixed(3) : '–', c ? c.gbps.toFixed(2) : '–', c ? c.offeredMpps.toFixed(3) : '–');
      }
      if (rep.duts.length > 1) {
        const r = rep.ratios.find((x) => x.op === op && x.size === size);
        row.push(r ? `${r.ratio.toFixed(2)}×${r.generatorBound ? ' *' : ''}` : '–');
      }
      t.push(row);
    }
    out.push(t.toString());
  }
  if (rep.ratios.some((r) => r.generatorBound)) {
    out.push('* both DUTs forwarded what the generator offered: the generator set the rate, not the DUT. The ratio then\n' +
      '  reflects how much of the generator\'s CPU each DUT\'s receive path takes (veth delivers on the sending CPU),\n' +
      '  not how much either DUT could forward. Saturating the kernel needs a faster generator (more cores, real NICs).');
  }
  for (const c of rep.cells.filter((x) => x.sinkStrayFrames > 0)) {
    const lens = Object.entries(c.sinkFrameLengths).map(([len, k]) => `${k} × ${len} B`).join(', ');
    out.push(`${c.dut} ${c.op} ${fmtSize(c.size)}: ${c.sinkStrayFrames} of the sink's frames were not the generator's ` +
      `through the DUT (counted in its Mpps; frames by length: ${lens})`);
  }
  if (rep.latency.length) {
    const t = new Table({ head: ['latency (ping G → S, through encap and decap)', 'replies', 'p50 µs', 'p99 µs', 'max µs'], style: { head: [], border: [] } });
    for (const l of rep.latency) t.push([l.dut, `${l.received}/${l.sent}`, l.p50Us.toFixed(0), l.p99Us.toFixed(0), l.maxUs.toFixed(0)]);
    out.push(t.toString());
  }
  if (rep.nullCompare) {
    const n = rep.nullCompare;
    out.push(`net_null, CPU ${n.cpu}, ${n.mbufs} mbufs, ${n.frameBytes} B: vfplane encap ${n.oursMpps.toFixed(2)} Mpps ` +
      `[${n.trialsOurs.map((x) => x.toFixed(2)).join(', ')}] vs dpdk-testpmd io ${n.testpmdMpps.toFixed(2)} Mpps ` +
      `[${n.trialsTestpmd.map((x) => x.toFixed(2)).join(', ')}] → ${n.ratio.toFixed(2)}×`);
  }
  if (rep.chart) out.push(`chart: ${rep.chart}`);
  if (rep.targets.length) {
    out.push('Targets:');
    for (const t of rep.targets) out.push(`  ${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.measured} (target ${t.target})`);
  }
  return out.join('\n') + '\n';
}
