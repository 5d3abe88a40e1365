// Glue between `vfplane bench` flags and the benchmark runners.
import os from 'node:os';
import { resolveTunnel } from '../packet/config.js';
import { RuntimeError, UsageError } from '../cli/errors.js';
import { accessSync, constants, existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { IO_MAX_INNER_FRAME } from './io-topo.js';
import { printJson } from '../cli/output.js';
import { runMemoryBench, type MemoryBenchOptions } from './memory.js';
import { buildReport, renderReport } from './report.js';
import type { Spread } from './dataplane.js';

/** The flags of `vfplane bench`: the runner's options as the CLI spells them. */
export interface BenchFlags
  extends Pick<MemoryBenchOptions, 'sizes' | 'burst' | 'engines' | 'ops' | 'trials' | 'cpu' | 'fdbSizes' | 'vni'> {
  backend: 'memory' | 'afxdp' | 'dpdk' | 'afpacket';
  /** Milliseconds per trial (the runner takes seconds). */
  duration: number;
  fdb: boolean;
  learn: boolean;
  ipv6: boolean;
  json: boolean;
  chart?: string;
  kernel: boolean;
  null: boolean;
  onlyNull: boolean;
  gen: 'xdp-live' | 'afxdp' | 'afpacket';
  pings: number;
  pci?: string;
  iface?: string;
}

/** The flags that only one kind of bench reads (by their option keys), with how the
 *  user spells them: given to the other kind, they are refused, not ignored unsaid. */
const IO_ONLY: Record<string, string> = { chart: '--chart', pings: '--pings', gen: '--gen', kernel: '--no-kernel', null: '--no-null' };
const MEMORY_ONLY: Record<string, string> = { engines: '--engines', burst: '--burst', ipv6: '--ipv6', learn: '--no-learn', fdbSizes: '--fdb-sizes', fdb: '--no-fdb' };

/** Flags of the veth topology that a real NIC's bench (--pci, --iface) and the net_null
 *  comparison alone (--only-null) do not read. */
const NIC_UNREAD: Record<string, string> = { ops: '--ops', gen: '--gen', pings: '--pings', onlyNull: '--only-null' };
const ONLY_NULL_UNREAD: Record<string, string> = { sizes: '--sizes', ops: '--ops', gen: '--gen', pings: '--pings', chart: '--chart' };
/** Given, those flags still agree with what those benches do (and are taken): no pings
 *  (`--pings 0`, as older bench commands wrote it), encap only, 64 B frames. Skipping
 *  what they never run (--no-kernel, --no-null) is taken too. */
const agrees = (f: BenchFlags, key: string): boolean =>
  (key === 'pings' && f.pings === 0) || (key === 'ops' && f.ops.every((x) => x === 'encap')) || (key === 'sizes' && f.sizes.every((x) => x === 64));

/** --chart is written after the run: checked before it, so a run of minutes is not lost
 *  to a path that cannot be written. */
function checkChart(file: string): void {
  if (!/\.svg$/i.test(file)) throw new UsageError(`--chart ${file}: the chart is SVG; give a file name ending in .svg`);
  const abs = resolve(file);
  if (existsSync(abs) && statSync(abs).isDirectory()) throw new UsageError(`--chart ${file} is a directory; name a file`);
  const dir = dirname(abs);
  if (!existsSync(dir)) throw new UsageError(`--chart ${file}: directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`--chart ${file}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new RuntimeError(`--chart ${file}: directory ${dir} is not writable by this user`);
  }
}

export async function runBench(f: BenchFlags, given: (key: string) => boolean = () => false): Promise<void> {
  const cores = os.availableParallelism();
  const nic = !!(f.pci || f.iface);
  const wrong = Object.entries(f.backend === 'memory' ? IO_ONLY : MEMORY_ONLY).filter(([k]) => given(k)).map(([, flag]) => flag);
  const are = (l: string[]) => `${l.join(', ')} ${l.length > 1 ? 'are' : 'is'}`;
  if (wrong.length) {
    throw new UsageError(f.backend === 'memory'
      ? `${are(wrong)} for the I/O backends (--backend afxdp, afpacket or dpdk); the memory bench does not read ${wrong.length > 1 ? 'them' : 'it'}`
      : `${are(wrong)} for the memory bench (--backend memory); --backend ${f.backend} does not read ${wrong.length > 1 ? 'them' : 'it'}`);
  }
  if (nic && given('chart')) throw new UsageError(`--chart is drawn for the simulated topology only; a real NIC's bench (--${f.pci ? 'pci' : 'iface'}) prints its figures, no chart`);
  f.sizes = [...new Set(f.sizes)]; // --sizes 64,64 is one size
  if (f.backend !== 'memory' && !nic) {
    const big = f.sizes.filter((x) => typeof x === 'number' && x > IO_MAX_INNER_FRAME);
    if (big.length) {
      throw new UsageError(`--sizes ${big.join(',')}: the I/O bench's pods and overlay have MTU 1500, so an inner frame is ${IO_MAX_INNER_FRAME} B at most (1500 plus its Ethernet header); larger frames are for the memory bench (--backend memory)`);
    }
    if (!f.onlyNull) checkChart(f.chart ?? `vfplane-bench-${f.backend}.svg`);
  }
  if (f.cpu !== undefined && f.cpu >= cores) {
    throw new UsageError(`--cpu ${f.cpu} is out of range: this machine has CPUs 0–${cores - 1}`);
  }
  if (f.pci && f.backend !== 'dpdk') throw new UsageError(`--pci ${f.pci} needs --backend dpdk (a VF bound to vfio-pci is a DPDK port)`);
  if (f.iface && f.backend !== 'afxdp') throw new UsageError(`--iface ${f.iface} needs --backend afxdp`);
  if (f.onlyNull && (f.backend !== 'dpdk' || !f.null)) throw new UsageError('--only-null needs --backend dpdk (and not --no-null)');
  // The I/O benches that do not run the veth topology read fewer flags still.
  const unread = (flags: Record<string, string>) => Object.entries(flags).filter(([k]) => given(k) && !agrees(f, k)).map(([, flag]) => flag);
  if (f.backend !== 'memory' && nic) {
    const l = unread(NIC_UNREAD);
    if (l.length) throw new UsageError(`${are(l)} for the simulated veth topology; a real NIC's bench (--${f.pci ? 'pci' : 'iface'}) measures encap with its own traffic and does not read ${l.length > 1 ? 'them' : 'it'}`);
  }
  if (f.onlyNull) {
    const l = unread(ONLY_NULL_UNREAD);
    if (l.length) throw new UsageError(`${are(l)} for the simulated veth topology; --only-null runs the net_null comparison alone (64 B frames, encap) and does not read ${l.length > 1 ? 'them' : 'it'}`);
  }
  if (f.backend !== 'memory') return runIo(f, cores, given);
  const cpu = f.cpu ?? cores - 1;
  const tunnel = resolveTunnel(f.ipv6
    ? { local: '2001:db8::1', remote: '2001:db8::2' }
    : { local: '192.0.2.1', remote: '192.0.2.2' });
  const say = (m: string) => process.stderr.write(m + '\n');
  if (!f.json) say(`vfplane bench: memory backend, ${f.sizes.length} size${f.sizes.length === 1 ? '' : 's'} × ${f.engines.join('+')} × ${f.ops.join('+')}`);
  const result = await runMemoryBench({
    sizes: f.sizes, burst: f.burst, engines: [...new Set(f.engines)], ops: [...new Set(f.ops)],
    duration: f.duration / 1000, trials: f.trials, cpu, fdbSizes: f.fdb ? f.fdbSizes : [], tunnel, vni: f.vni,
    learn: f.learn, onProgress: say,
  });
  const report = buildReport(result, tunnel, {
    burst: f.burst, trials: f.trials, duration: f.duration / 1000 /* seconds */, durationMs: f.duration /* as --duration takes it */, cpu, underlay: f.ipv6 ? 'IPv6' : 'IPv4',
    vni: f.vni, learn: f.learn, command: `vfplane ${process.argv.slice(2).join(' ')}`.trim(),
  });
  if (f.json) printJson(report);
  else process.stdout.write(renderReport(report));
}

async function runIo(f: BenchFlags, cores: number, given: (key: string) => boolean): Promise<void> {
  if (process.getuid?.() !== 0) throw new RuntimeError(`--backend ${f.backend} builds network namespaces and attaches XDP programs: run it as root`);
  const say = (m: string) => process.stderr.write(m + '\n');
  const dutCpu = f.cpu ?? cores - 1;
  const genCpu = cores > 1 ? (dutCpu === 0 ? 1 : 0) : 0;
  const command = `vfplane ${process.argv.slice(2).join(' ')}`.trim();
  if (f.pci || f.iface) {
    const { runNicBench } = await import('./io-nic.js');
    const r = await runNicBench({ backend: f.backend as 'dpdk' | 'afxdp', pci: f.pci, iface: f.iface, sizes: f.sizes, vni: f.vni, cpu: dutCpu, durationMs: f.duration, trials: f.trials, onProgress: f.json ? undefined : say });
    if (f.json) printJson({ ...r, command });
    else {
      const lines = [`${f.backend} encap on ${f.pci ?? f.iface} (${f.trials === 1 ? 'one trial' : `median of ${f.trials} trials`}, ${f.duration} ms each):`];
      for (const c of r.cells as { size: unknown; mpps: number; trialsMpps: number[] }[]) lines.push(`  ${String(c.size).padStart(5)} B  ${c.mpps.toFixed(2)} Mpps  (trials ${c.trialsMpps.map((x) => x.toFixed(2)).join(', ')})`);
      lines.push(`command: ${command}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return;
  }
  const { runIoBench, liveFramesRefused } = await import('./io.js');
  const { buildIoReport, renderIoReport, ioChartSvg } = await import('./io-report.js');
  // The default generator needs the kernel's live frames, which some kernels refuse even
  // to root: then the AF_XDP one, said; asked for by name, a clear refusal.
  let genFallback: string | undefined;
  if (f.gen === 'xdp-live' && !f.onlyNull) {
    const why = liveFramesRefused();
    if (why && given('gen')) throw new RuntimeError(`--gen xdp-live: this kernel refuses to transmit BPF_PROG_RUN live frames (${why}); use --gen afxdp or --gen afpacket`);
    if (why) {
      genFallback = `this kernel refuses BPF_PROG_RUN live frames: ${why}`;
      f.gen = 'afxdp';
      say(`vfplane bench: the generator is afxdp, not xdp-live (${genFallback}); --gen afpacket is the other choice`);
    }
  }
  if (!f.json) say(`vfplane bench: ${f.backend} backend, ${f.sizes.length} size${f.sizes.length === 1 ? '' : 's'} × ${f.ops.join('+')}, DUT on CPU ${dutCpu}, generator on CPU ${genCpu}`);
  const r = await runIoBench({
    backend: f.backend as 'afpacket' | 'afxdp' | 'dpdk', sizes: f.sizes, ops: [...new Set(f.ops)], durationMs: f.duration,
    trials: f.trials, vni: f.vni, dutCpu, genCpu, genBackend: f.gen, ...(genFallback ? { genFallback } : {}), pings: f.pings, kernel: f.kernel,
    nullCompare: f.null, onlyNull: f.onlyNull, onProgress: f.json ? undefined : say,
  });
  const chart = resolve(f.chart ?? `vfplane-bench-${f.backend}.svg`);
  const rep = buildIoReport(r, command, r.cells.length ? chart : null);
  // The figures first: a chart that cannot be written after all (checkChart cannot try
  // every path) must not take a run of minutes with it.
  if (f.json) printJson(rep);
  else process.stdout.write(renderIoReport(rep));
  if (!r.cells.length) return;
  try {
    writeFileSync(chart, ioChartSvg(r.cells, `${f.backend}: Mpps vs inner frame size (${r.machine.cores} cores, ${r.machine.date.slice(0, 10)})`));
  } catch (e) {
    throw new RuntimeError(`--chart ${f.chart ?? chart}: the chart could not be written (${(e as Error).message}); the figures are printed above`);
  }
}

/** `vfplane bench dataplane`: checks the flags, runs, prints. */
export async function runDataplaneCli(f: { ops: ('encap' | 'decap')[]; dests: number[]; fdbSizes: number[]; duration: number; trials: number; cpu?: number; vni: number; learn: boolean; spread: Spread; json: boolean }): Promise<void> {
  const cores = os.availableParallelism();
  if (f.cpu !== undefined && f.cpu >= cores) throw new UsageError(`--cpu ${f.cpu} is out of range: this machine has CPUs 0–${cores - 1}`);
  const dests = [...new Set(f.dests)].sort((a, b) => a - b);
  const sizes = [...new Set(f.fdbSizes)].sort((a, b) => a - b);
  const most = dests.at(-1)!;
  // Learned senders need no static entry: only destinations do.
  const small = f.learn && !f.ops.includes('encap') ? [] : sizes.filter((s) => s < most);
  if (small.length) throw new UsageError(`--fdb-sizes ${small.join(',')}: smaller than --dests ${most}; every remote MAC must have an FDB entry, so give FDB sizes of at least ${most}`);
  const { runDataplaneBench, renderDataplane } = await import('./dataplane.js');
  const say = (m: string) => process.stderr.write(m + '\n');
  const r = await runDataplaneBench({ ops: [...new Set(f.ops)], dests, fdbSizes: sizes, durationMs: f.duration, trials: f.trials, cpu: f.cpu ?? cores - 1, vni: f.vni, learn: f.learn, spread: f.spread, onProgress: f.json ? undefined : say });
  const command = `vfplane ${process.argv.slice(2).join(' ')}`.trim();
  if (f.json) printJson({ ...r, command });
  else process.stdout.write(await renderDataplane(r, command));
}
