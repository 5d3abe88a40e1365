// Glue between `vfplane bench` flags and the benchmark runners.
import os from 'node:os';
import { resolveTunnel } from '../packet/config.js';
import { UsageError } from '../cli/errors.js';
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
}

export async function runBench(f: BenchFlags): Promise<void> {
  if (f.backend !== 'memory') {
    throw new UsageError(`--backend ${f.backend} is not available in this version: the I/O backends come with the data plane; use --backend memory`);
  }
  const cores = os.availableParallelism();
  if (f.cpu !== undefined && f.cpu >= cores) {
    throw new UsageError(`--cpu ${f.cpu} is out of range: this machine has CPUs 0–${cores - 1}`);
  }
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
