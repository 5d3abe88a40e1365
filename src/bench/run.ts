// Glue between `vfplane bench` flags and the benchmark runners.
import os from 'node:os';
import { resolveTunnel } from '../packet/config.js';
import { RuntimeError, UsageError } from '../cli/errors.js';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { printJson } from '../cli/output.js';
import { runMemoryBench, type MemoryBenchOptions } from './memory.js';
import { buildReport, renderReport } from './report.js';

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

export async function runBench(f: BenchFlags): Promise<void> {
  const cores = os.availableParallelism();
  if (f.cpu !== undefined && f.cpu >= cores) {
    throw new UsageError(`--cpu ${f.cpu} is out of range: this machine has CPUs 0–${cores - 1}`);
  }
  if (f.pci && f.backend !== 'dpdk') throw new UsageError(`--pci ${f.pci} needs --backend dpdk (a VF bound to vfio-pci is a DPDK port)`);
  if (f.iface && f.backend !== 'afxdp') throw new UsageError(`--iface ${f.iface} needs --backend afxdp`);
  if (f.onlyNull && (f.backend !== 'dpdk' || !f.null)) throw new UsageError('--only-null needs --backend dpdk (and not --no-null)');
  if (f.backend !== 'memory') return runIo(f, cores);
  const cpu = f.cpu ?? cores - 1;
  const tunnel = resolveTunnel(f.ipv6
    ? { local: '2001:db8::1', remote: '2001:db8::2' }
    : { local: '192.0.2.1', remote: '192.0.2.2' });
  const say = (m: string) => process.stderr.write(m + '\n');
  if (!f.json) say(`vfplane bench: memory backend, ${f.sizes.length} sizes × ${f.engines.join('+')} × ${f.ops.join('+')}`);
  const result = await runMemoryBench({
    sizes: f.sizes, burst: f.burst, engines: [...new Set(f.engines)], ops: [...new Set(f.ops)],
    duration: f.duration / 1000, trials: f.trials, cpu, fdbSizes: f.fdb ? f.fdbSizes : [], tunnel, vni: f.vni,
    learn: f.learn, onProgress: say,
  });
  const report = buildReport(result, tunnel, {
    burst: f.burst, trials: f.trials, duration: `${f.duration / 1000}`, cpu, underlay: f.ipv6 ? 'IPv6' : 'IPv4',
    vni: f.vni, learn: f.learn, command: `vfplane ${process.argv.slice(2).join(' ')}`.trim(),
  });
  if (f.json) printJson(report);
  else process.stdout.write(renderReport(report));
}

async function runIo(f: BenchFlags, cores: number): Promise<void> {
  if (process.getuid?.() !== 0) throw new RuntimeError(`--backend ${f.backend} builds network namespaces and attaches XDP programs: run it as root`);
  const say = (m: string) => process.stderr.write(m + '\n');
  const dutCpu = f.cpu ?? cores - 1;
  const genCpu = cores > 1 ? (dutCpu === 0 ? 1 : 0) : 0;
  const command = `vfplane ${process.argv.slice(2).join(' ')}`.trim();
  if (f.pci || f.iface) {
    const { runNicBench } = await import('./io-nic.js');
    const r = await runNicBench({ backend: f.backend as 'dpdk' | 'afxdp', pci: f.pci, iface: f.iface, sizes: f.sizes, vni: f.vni, cpu: dutCpu, durationMs: f.duration, trials: f.trials, onProgress: f.json ? undefined : say });
    if (f.json) printJson({ ...r, command });
    else process.stdout.write(JSON.stringify({ ...r, command }, null, 2) + '\n');
    return;
  }
  const { runIoBench } = await import('./io.js');
  const { buildIoReport, renderIoReport, ioChartSvg } = await import('./io-report.js');
  if (!f.json) say(`vfplane bench: ${f.backend} backend, ${f.sizes.length} sizes × ${f.ops.join('+')}, DUT on CPU ${dutCpu}, generator on CPU ${genCpu}`);
  const r = await runIoBench({
    backend: f.backend as 'afpacket' | 'afxdp' | 'dpdk', sizes: f.sizes, ops: [...new Set(f.ops)], durationMs: f.duration,
    trials: f.trials, vni: f.vni, dutCpu, genCpu, genBackend: f.gen, pings: f.pings, kernel: f.kernel,
    nullCompare: f.null, onlyNull: f.onlyNull, onProgress: f.json ? undefined : say,
  });
  const chart = resolve(f.chart ?? `vfplane-bench-${f.backend}.svg`);
  if (r.cells.length) writeFileSync(chart, ioChartSvg(r.cells, `${f.backend}: Mpps vs inner frame size (${r.machine.cores} cores, ${r.machine.date.slice(0, 10)})`));
  const rep = buildIoReport(r, command, r.cells.length ? chart : null);
  if (f.json) printJson(rep);
  else process.stdout.write(renderIoReport(rep));
}
