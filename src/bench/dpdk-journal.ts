// The benches' DPDK runs (dpdk-testpmd for the net_null comparison, the DPDK DUT child)
// reserve hugepages and mount a hugetlbfs, and give them back when they stop. Killed
// outright (SIGKILL, an OOM kill), they cannot: each writes what it is about to change
// to a journal here first (dpdk-env.ts), and the next bench gives back what a dead run
// left, as a data plane's next start does with its own journal.
import { readdirSync, rmdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readDpdkEnvJournal, recoverDpdkEnv } from '../dataplane/dpdk-env.js';
import { makeDirs } from '../util/fs.js';
import { pidAlive } from '../util/proc.js';
import { runDir } from '../util/run-dir.js';

const dir = () => join(runDir(), 'bench-dpdk');

/** The journal of one DPDK run of this process (`what`: testpmd, dut), its directory made. */
export function benchDpdkJournal(what: string, pid = process.pid): string {
  makeDirs(dir(), 0o700);
  return join(dir(), `${what}-${pid}.json`);
}

/** Removes the journal directory once no journal is left in it (the run directory is
 *  left as it was found). */
export function dropBenchDpdkDir(): void {
  try {
    rmdirSync(dir());
  } catch {
    // another run's journal is there, or it is gone
  }
}

/** Gives back what bench DPDK runs whose process is gone left (their journals say what),
 *  and the empty state directory a run's mount was made in; says what it did. */
export function recoverBenchDpdk(): string[] {
  let names: string[];
  try {
    names = readdirSync(dir()).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const file = join(dir(), n);
    const r = readDpdkEnvJournal(file);
    if (r && 'pid' in r && pidAlive(r.pid)) continue; // a bench running now
    out.push(...recoverDpdkEnv(file));
    // /tmp/vfplane-bench-<pid>/hugepages: its parent, our own, goes once empty.
    const parent = r && 'mount' in r && r.mount ? dirname(r.mount.dir) : null;
    if (parent && /^vfplane-bench-\d+$/.test(basename(parent))) {
      try {
        rmdirSync(parent);
      } catch {
        // not empty, or gone
      }
    }
  }
  dropBenchDpdkDir();
  return out;
}
