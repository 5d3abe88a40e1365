// `vfplane bench alloc`: many processes allocating and releasing VFs against one store
// at once. Measures per-operation latency and throughput, and checks, independently of
// the store, that no VF was ever held by two processes at the same moment.
import { onInterrupt } from '../util/interrupt.js';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { AllocStore } from '../alloc/store.js';
import type { PoolSelector } from '../alloc/pool.js';
import type { VfInfo } from '../sriov/types.js';
import { summarize } from './stats.js';
import { invalid, systemError } from '../util/errors.js';

export interface AllocBenchOptions {
  procs: number; // worker processes
  cycles: number; // alloc+release cycles per worker
  vfs: number; // VFs in the simulated NIC (split over 2 PFs when even)
  /** Where the bench's own store goes (a fresh subdirectory, removed afterwards); default: the temp dir. */
  stateDir?: string;
  json?: boolean;
  /** Skip the simulated NIC and use generated VfInfo objects. */
  synthetic?: boolean;
  /** Keep the bench directory (store, holders, sim tree) for inspection. */
  keep?: boolean;
  /** Print nothing (for tests); the result is returned either way. */
  quiet?: boolean;
  /** The worker script (default: dist/bench/alloc-worker.js). */
  workerPath?: string;
  /** Writers queue on the store's flock (default true); false: SQLite's busy handler alone. */
  writerQueue?: boolean;
}

/** What each worker is told (argv[2], JSON). */
export interface WorkerConfig {
  worker: number;
  cycles: number;
  storeDir: string;
  holdersDir: string;
  pool: string;
  selector: PoolSelector;
  /** Discover the candidates from this simulated sysfs tree ... */
  simRoot: string | null;
  /** ... or generate this many. */
  synthetic: number | null;
  writerQueue: boolean;
}

/** What each worker reports (last line on stdout, JSON). */
export interface WorkerResult {
  worker: number;
  candidates: number;
  allocNs: number[];
  releaseNs: number[];
  retries: number; // 'unavailable': every matching VF was held at that moment
  busy: number; // 'unavailable': the store stayed locked past its busy timeout
  doubles: number; // holder file already present: another process held the same VF
  doublePcis: string[];
  lostReleases: number; // own allocation gone or someone else's at release time
  lostPcis: string[];
}

export interface OpStats {
  count: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  meanUs: number;
}

export interface AllocBenchResult {
  procs: number;
  cycles: number;
  vfs: number;
  candidates: number;
  source: 'sim' | 'synthetic';
  doubleAllocations: number;
  doublePcis: string[];
  /** Releases that found the allocation gone or replaced (a broken store; must be 0). */
  lostReleases: number;
  lostDetails: string[];
  wallMs: number;
  ops: number; // alloc + release operations
  opsPerSec: number;
  cyclesPerSec: number;
  alloc: OpStats;
  release: OpStats;
  retries: number;
  busy: number;
  leftoverAllocations: number;
  integrity: string;
  historyRows: number;
  benchDir: string | null; // kept only with keep
  /** Writers queued on the store's flock (false: --no-writer-queue, SQLite's busy handler alone). */
  writerQueue: boolean;
  ok: boolean;
}

export const BENCH_POOL = 'bench';

/** VfInfo objects shaped like the x710 simulator's: for tests and when the simulator is absent. */
export function syntheticVfs(n: number, pfs = n >= 2 && n % 2 === 0 ? 2 : 1): VfInfo[] {
  const out: VfInfo[] = [];
  const perPf = Math.ceil(n / pfs);
  for (let i = 0; i < n; i++) {
    const p = Math.floor(i / perPf);
    const j = i % perPf;
    const fn = 0x10 + p * perPf + j; // VFs after the PFs' functions, as sriov_offset places them
    const pci = `0000:5e:${((fn >> 3) & 0x1f).toString(16).padStart(2, '0')}.${fn & 7}`;
    out.push({
      pci, pf: `0000:5e:00.${p}`, pfNetdev: `vfpbf${p}`, index: j,
      vendor: '8086', device: '154c', driver: 'iavf', netdev: `vfpbf${p}v${j}`,
      mac: `02:00:00:00:${p.toString(16).padStart(2, '0')}:${j.toString(16).padStart(2, '0')}`, mtu: 1500,
      iommuGroup: 100 + i, vfioDevice: null, numaNode: 0,
      settings: {
        mac: '00:00:00:00:00:00', vlan: 0, qos: 0, vlanProto: '802.1Q', spoofchk: true, trust: false,
        linkState: 'auto', minTxRate: 0, maxTxRate: 0,
      },
    });
  }
  return out;
}

function defaultWorkerPath(): string {
  // Next to this file once built; from the TS sources (vitest) use the build's copy.
  const here = fileURLToPath(new URL('./alloc-worker.js', import.meta.url));
  if (fs.existsSync(here)) return here;
  return fileURLToPath(new URL('../../dist/bench/alloc-worker.js', import.meta.url));
}

export function opStats(ns: number[]): OpStats {
  const { count, p50, p99, max, mean } = summarize(ns);
  return { count, p50Us: p50 / 1e3, p99Us: p99 / 1e3, maxUs: max / 1e3, meanUs: mean / 1e3 };
}

function checkInt(flag: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw invalid(`${flag} ${v} is out of range: ${min}–${max}`);
}

/** Builds the simulated NIC (tree only); null plus the reason when the simulator cannot be used. */
async function buildSim(root: string, vfs: number): Promise<VfInfo[]> {
  const { createSim } = await import('../sim/sim.js');
  const { openSysfs } = await import('../sriov/sysfs.js');
  const { listVfs } = await import('../sriov/discover.js');
  const pfs = vfs >= 2 && vfs % 2 === 0 ? 2 : 1;
  // Tree only: the store is what is measured, and no root is needed.
  createSim({ profile: 'x710', pfs, vfs: vfs / pfs, root, prefix: 'vfpb', netdevs: false });
  return listVfs(await openSysfs(root));
}

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  done: Promise<WorkerResult>;
}

function startWorker(script: string, cfg: WorkerConfig): Worker {
  const child = spawn(process.execPath, [script, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const lines = createInterface({ input: child.stdout! });
  let onReady!: () => void;
  const ready = new Promise<void>((res) => { onReady = res; });
  let result: WorkerResult | undefined;
  let error: string | undefined;
  lines.on('line', (line) => {
    let msg: { ready?: boolean; result?: WorkerResult; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.ready) onReady();
    if (msg.result) result = msg.result;
    if (msg.error) error = msg.error;
  });
  const done = new Promise<WorkerResult>((res, rej) => {
    child.on('error', (e) => rej(systemError(`cannot start bench worker ${script}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (result && code === 0) return res(result);
      const why = error ?? (stderr.trim() || `exit ${code ?? signal}`);
      rej(systemError(`bench worker ${cfg.worker} failed: ${why}`));
    });
  });
  // A worker that dies during setup must not leave the parent waiting for "ready".
  done.catch(() => onReady());
  return { child, ready, done };
}

export async function runAllocBench(opts: AllocBenchOptions): Promise<AllocBenchResult> {
  checkInt('--procs', opts.procs, 1, 256);
  checkInt('--cycles', opts.cycles, 1, 100_000);
  checkInt('--vfs', opts.vfs, 1, 1024);
  const say = (m: string) => { if (!opts.quiet && !opts.json) process.stderr.write(m + '\n'); };
  const script = opts.workerPath ?? defaultWorkerPath();
  if (!fs.existsSync(script)) throw systemError(`bench worker ${script} is missing; run npm run build`);

  const parent = path.resolve(opts.stateDir ?? os.tmpdir());
  let benchDir: string;
  // The parent must exist: the bench makes its own directory in it and removes only that
  // (a typo'd --state-dir would otherwise leave a tree of new directories behind).
  if (!fs.existsSync(parent)) throw invalid(`--state-dir ${parent} does not exist; give an existing directory for the bench's throw-away store (default: the temp dir)`);
  if (!fs.statSync(parent).isDirectory()) throw invalid(`--state-dir ${parent} is not a directory`);
  try {
    // A fresh directory: the bench never touches a real alloc.db in --state-dir.
    benchDir = fs.mkdtempSync(path.join(parent, 'vfplane-bench-'));
  } catch (e) {
    throw systemError(`cannot create a bench directory under ${parent}: ${(e as Error).message}; pass --state-dir DIR`);
  }
  const storeDir = path.join(benchDir, 'store');
  const holdersDir = path.join(benchDir, 'holders');
  const simRoot = path.join(benchDir, 'sim');
  fs.mkdirSync(holdersDir);

  const workers: Worker[] = [];
  // Interrupted (the finally below never runs then): the workers go, and the bench's
  // simulated NIC and directory with them.
  const sim = opts.synthetic ? null : await import('../sim/sim.js');
  const off = onInterrupt(() => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    if (opts.keep) return;
    sim?.destroySimIfMade(simRoot);
    fs.rmSync(benchDir, { recursive: true, force: true });
  });
  try {
    let candidates: VfInfo[];
    let source: 'sim' | 'synthetic' = 'synthetic';
    if (opts.synthetic) {
      candidates = syntheticVfs(opts.vfs);
    } else {
      candidates = await buildSim(simRoot, opts.vfs);
      source = 'sim';
    }
    // A pool over the NIC's PFs, so every worker goes through selector matching.
    const selector: PoolSelector = { rootDevices: [...new Set(candidates.map((v) => v.pf))] };
    // Create the schema before the workers race to.
    AllocStore.open(storeDir).close();

    say(`vfplane bench alloc: ${opts.procs} processes × ${opts.cycles} cycles over ${candidates.length} VFs (${source}), ` +
      `writers ${opts.writerQueue !== false ? 'queued on the store\'s flock' : 'waiting in SQLite\'s busy handler only'}`);
    for (let i = 0; i < opts.procs; i++) {
      workers.push(startWorker(script, {
        worker: i, cycles: opts.cycles, storeDir, holdersDir, pool: BENCH_POOL, selector,
        simRoot: source === 'sim' ? simRoot : null, synthetic: source === 'sim' ? null : opts.vfs,
        writerQueue: opts.writerQueue !== false,
      }));
    }
    await Promise.all(workers.map((w) => w.ready));
    const t0 = process.hrtime.bigint();
    for (const w of workers) w.child.stdin!.end('go\n');
    const results = await Promise.all(workers.map((w) => w.done));
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;

    const store = AllocStore.open(storeDir);
    let leftover: number, integrity: string, historyRows: number;
    try {
      leftover = store.list().length;
      integrity = store.integrityCheck().join('; ');
      historyRows = store.history(1_000_000).length;
    } finally {
      store.close();
    }
    const allocNs = results.flatMap((r) => r.allocNs);
    const releaseNs = results.flatMap((r) => r.releaseNs);
    const doubles = results.reduce((a, r) => a + r.doubles, 0);
    const ops = allocNs.length + releaseNs.length;
    const lostReleases = results.reduce((a, r) => a + r.lostReleases, 0);
    const res: AllocBenchResult = {
      procs: opts.procs, cycles: opts.cycles, vfs: opts.vfs, candidates: results[0]?.candidates ?? 0, source,
      doubleAllocations: doubles,
      doublePcis: [...new Set(results.flatMap((r) => r.doublePcis))],
      lostReleases,
      lostDetails: results.flatMap((r) => r.lostPcis).slice(0, 20),
      wallMs, ops, opsPerSec: ops / (wallMs / 1e3), cyclesPerSec: allocNs.length / (wallMs / 1e3),
      alloc: opStats(allocNs), release: opStats(releaseNs),
      retries: results.reduce((a, r) => a + r.retries, 0),
      busy: results.reduce((a, r) => a + r.busy, 0),
      leftoverAllocations: leftover, integrity, historyRows,
      benchDir: opts.keep ? benchDir : null,
      writerQueue: opts.writerQueue !== false,
      ok: doubles === 0 && lostReleases === 0 && leftover === 0 && integrity === 'ok',
    };
    if (!opts.quiet) {
      if (opts.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      else process.stdout.write(renderAllocBench(res));
    }
    // A double allocation (or a store left inconsistent) is what this bench exists to rule out.
    if (!res.ok) process.exitCode = 1;
    return res;
  } finally {
    off();
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.allSettled(workers.map((w) => w.done));
    if (!opts.keep) {
      await import('../sim/sim.js').then((m) => m.destroySimIfMade(simRoot)).catch(() => undefined);
      fs.rmSync(benchDir, { recursive: true, force: true });
    }
  }
}

const us = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`);

export function renderAllocBench(r: AllocBenchResult): string {
  const t = new Table({ head: ['operation', 'count', 'p50', 'p99', 'max', 'mean'], style: { head: [], border: [] } });
  for (const [name, s] of [['alloc', r.alloc], ['release', r.release]] as const) {
    t.push([name, String(s.count), us(s.p50Us), us(s.p99Us), us(s.maxUs), us(s.meanUs)]);
  }
  const lines = [
    `${r.procs} processes × ${r.cycles} alloc/release cycles, ${r.candidates} VFs (${r.source === 'sim' ? 'simulated x710' : 'generated'}), ` +
      `writers ${r.writerQueue ? 'queued on the store\'s flock' : 'in SQLite\'s busy handler only (--no-writer-queue)'}`,
    t.toString(),
    `wall time      ${(r.wallMs / 1000).toFixed(2)} s`,
    `throughput     ${r.opsPerSec.toFixed(0)} ops/s (${r.cyclesPerSec.toFixed(0)} cycles/s)`,
    `retries        ${r.retries} (every VF held at that moment)${r.busy ? `, ${r.busy} store-busy timeouts` : ''}`,
    `double allocs  ${r.doubleAllocations}${r.doubleAllocations ? `  FAIL: ${r.doublePcis.join(', ')}` : '  (checked with O_EXCL holder files)'}`,
    ...(r.lostReleases ? [`lost releases  ${r.lostReleases}  FAIL: ${r.lostDetails[0]}`] : []),
    `store after    ${r.leftoverAllocations} allocations left, integrity ${r.integrity}, ${r.historyRows} history rows`,
  ];
  if (r.benchDir) lines.push(`kept           ${r.benchDir}`);
  return lines.join('\n') + '\n';
}
