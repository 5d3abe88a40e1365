// Simulated NICs for tests: each gets a root under the temp dir named after this
// process and a netdev prefix no other test process uses, and is destroyed after the
// suite, on exit, and (if its process died) by the next run's sweep.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSim, destroySimIfMade, type SimOptions } from '../../src/sim/sim.js';
import type { SimManifest } from '../../src/sim/manifest.js';
import { pidAlive } from '../../src/util/proc.js';

const TAG = 'vfpsim-';
let counter = 0;
const live = new Set<string>();

/** A netdev prefix unique to this process and call: 't' + pid in base 36 + a counter. */
export function simPrefix(): string {
  // VFPLANE_TEST_SIM_PREFIX: a run that must keep its netdevs under a prefix of its own.
  const own = process.env.VFPLANE_TEST_SIM_PREFIX;
  if (own) return `${own}${(counter++).toString(36)}`.slice(0, 8);
  return `t${(process.pid % 1_679_616).toString(36)}${(counter++).toString(36)}`.slice(0, 8);
}

/** A fresh root directory, removed with the simulators (even if none was built in it). */
export function simRoot(): string {
  const root = mkdtempSync(join(tmpdir(), `${TAG}${process.pid}-`));
  live.add(root);
  return root;
}

export function makeSim(o: Partial<SimOptions> = {}): SimManifest {
  const root = o.root ?? simRoot();
  live.add(root);
  return createSim({ profile: 'x710', pfs: 1, vfs: 4, prefix: simPrefix(), ...o, root });
}

export function dropSim(root: string): void {
  live.delete(root);
  destroySimIfMade(root);
  rmSync(root, { recursive: true, force: true });
}

/** Destroys simulators left by test processes that no longer exist. */
export function sweepStaleSims(): void {
  for (const d of readdirSync(tmpdir())) {
    const m = new RegExp(`^${TAG}(\\d+)-`).exec(d);
    if (m && !pidAlive(Number(m[1]))) {
      try {
        dropSim(join(tmpdir(), d));
      } catch {
        // best effort: a broken leftover must not fail this run
      }
    }
  }
}

export function dropAllSims(): void {
  for (const r of [...live]) {
    try {
      dropSim(r);
    } catch {
      // keep going: the others must still be removed
    }
  }
}

process.on('exit', dropAllSims);
