// One process of `vfplane bench alloc` (started by src/bench/alloc.ts, config in argv[2]):
// sets up, says {"ready":true}, waits for "go" on stdin, then allocates and releases in a
// loop and prints {"result":…}. Holder files created with O_EXCL catch a VF held twice
// without trusting the store under test.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { matchVf } from '../alloc/pool.js';
import { AllocStore } from '../alloc/store.js';
import type { VfInfo } from '../sriov/types.js';
import { VfpError } from '../util/errors.js';
import { sleepSync } from '../util/proc.js';
import { syntheticVfs, type WorkerConfig, type WorkerResult } from './alloc.js';


/** Resolves once written: the result can be megabytes and stdout is a pipe. */
function send(msg: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(msg) + '\n', () => resolve()));
}

async function candidatesFor(cfg: WorkerConfig): Promise<VfInfo[]> {
  let all: VfInfo[];
  if (cfg.simRoot !== null) {
    const { openSysfs } = await import('../sriov/sysfs.js');
    const { listVfs } = await import('../sriov/discover.js');
    all = listVfs(await openSysfs(cfg.simRoot));
  } else {
    all = syntheticVfs(cfg.synthetic ?? 0);
  }
  return all.filter((vf) => matchVf(vf, cfg.selector));
}

function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.once('data', () => resolve());
    process.stdin.once('end', () => resolve());
  });
}

/** Retries while the store says 'unavailable' (all held, or busy); other errors end the run. */
function withRetry<T>(fn: () => T, counts: { retries: number; busy: number }): { value: T; ns: number } {
  for (;;) {
    const t0 = process.hrtime.bigint();
    try {
      const value = fn();
      return { value, ns: Number(process.hrtime.bigint() - t0) };
    } catch (e) {
      if (!(e instanceof VfpError && e.kind === 'unavailable')) throw e;
      if (e.details?.reason === 'busy') counts.busy++;
      else counts.retries++;
      sleepSync(1);
    }
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '') as WorkerConfig;
  // On a simulated NIC the store has its node's registry of stores, as the CLI's and
  // vfplane-cni's have: each allocation also takes the node's lock.
  const store = AllocStore.open(cfg.storeDir, { writerQueue: cfg.writerQueue, ...(cfg.simRoot !== null ? { sysfsRoot: cfg.simRoot } : {}) });
  const candidates = await candidatesFor(cfg);
  if (candidates.length === 0) throw new Error(`no VF matches the bench pool ${JSON.stringify(cfg.selector)}`);
  await send({ ready: true });
  await waitForGo();

  const counts = { retries: 0, busy: 0 };
  const allocNs: number[] = [];
  const releaseNs: number[] = [];
  let doubles = 0;
  let lostReleases = 0;
  const lostPcis: string[] = [];
  const doublePcis: string[] = [];
  for (let c = 0; c < cfg.cycles; c++) {
    const owner = { namespace: 'vfplane-bench', name: `worker-${cfg.worker}`, containerId: `bench-${cfg.worker}-${c}`, ifname: 'net1' };
    const a = withRetry(() => store.allocate({ candidates, owner, pool: cfg.pool }), counts);
    allocNs.push(a.ns);
    const holder = path.join(cfg.holdersDir, a.value.pci);
    let mine = false;
    try {
      fs.closeSync(fs.openSync(holder, 'wx'));
      mine = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      doubles++;
      doublePcis.push(a.value.pci);
    }
    // Unlink before releasing: once released, another process may rightly take the VF.
    if (mine) fs.unlinkSync(holder);
    try {
      const r = withRetry(() => store.release(a.value.pci, { id: a.value.id }), counts);
      releaseNs.push(r.ns);
    } catch (e) {
      // Our allocation vanished or was replaced: only a broken store does that. Count it
      // and go on, so the report shows the damage instead of one worker's stack trace.
      if (!(e instanceof VfpError && (e.kind === 'conflict' || e.kind === 'not-found'))) throw e;
      lostReleases++;
      if (lostPcis.length < 20) lostPcis.push(`${a.value.pci}: ${e.message}`);
    }
  }
  store.close();
  const result: WorkerResult = { worker: cfg.worker, candidates: candidates.length, allocNs, releaseNs, ...counts, doubles, doublePcis, lostReleases, lostPcis };
  await send({ result });
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    await send({ error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  },
);
