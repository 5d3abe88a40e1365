// The allocation stores of one node, known to each other. Who holds a VF is recorded in a
// store, and a store is a directory: the CNI config's `stateDir` and the CLI's
// `--state-dir` may name different ones, and two stores on one node would each see a VF
// as free and hand it to two pods. A store registers its directory here when it
// allocates; an allocation (under the node's lock, see AllocStore) skips the VFs another
// registered store holds, and putting a released VF back leaves alone one that another
// store now holds.
//
// One registry per node, found from the sysfs root: for the host's /sys it is under the
// run directory (a reboot clears it; stores register again at their next allocation, and
// every allocation made before the reboot is stale anyway); a simulated NIC keeps its
// own inside its tree (its nodes are separate, and `sim destroy` takes it away). Any
// other sysfs root (a test fixture) has none.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SIM_MARKER } from '../sriov/sysfs.js';
import { runDir } from '../util/run-dir.js';
import { systemError } from '../util/errors.js';
import { makeDirs } from '../util/fs.js';

export const SIM_REGISTRY = 'vfplane-stores';
const ENTRY = /^[0-9a-f]{16}\.store$/;
export const NODE_LOCK = 'alloc-node.lock';

/** The registry of the node whose sysfs is at `sysfsRoot`, or null (not a node's). */
export function registryDir(sysfsRoot: string): string | null {
  let abs: string;
  try {
    abs = fs.realpathSync(path.resolve(sysfsRoot));
  } catch {
    return null;
  }
  if (abs === '/sys') return path.join(runDir(), 'stores');
  if (fs.existsSync(path.join(abs, SIM_MARKER))) return path.join(abs, SIM_REGISTRY);
  return null;
}

const entryOf = (storeDir: string) => `${crypto.createHash('sha256').update(storeDir).digest('hex').slice(0, 16)}.store`;

/** Makes the registry directory (for its lock) and enters `storeDir` in it; idempotent. */
export function register(reg: string, storeDir: string): void {
  const file = path.join(reg, entryOf(storeDir));
  try {
    makeDirs(reg, 0o700);
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === `${storeDir}\n`) return;
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${storeDir}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch (e) {
    throw systemError(`cannot enter the allocation store ${storeDir} in the node's registry of stores ${reg}: ${(e as Error).message}; ` +
      'the registry is how stores with different state directories keep from handing one VF to two pods: make it writable (run as root)', { reg, storeDir });
  }
}

/** Every store directory the registry lists whose store file exists; only read. */
export function registeredStores(reg: string, dbFile: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(reg);
  } catch {
    return [];
  }
  return names.filter((n) => ENTRY.test(n)).flatMap((n) => {
    try {
      const dir = fs.readFileSync(path.join(reg, n), 'utf8').trim();
      return path.isAbsolute(dir) && fs.existsSync(path.join(dir, dbFile)) ? [dir] : [];
    } catch {
      return []; // removed meanwhile
    }
  });
}

/** The other stores in the registry whose store file still exists; entries of stores that
 *  are gone are removed. */
export function otherStores(reg: string, storeDir: string, dbFile: string): { dir: string; entry: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(reg);
  } catch {
    return [];
  }
  const out: { dir: string; entry: string }[] = [];
  for (const n of names) {
    if (!ENTRY.test(n)) continue;
    const entry = path.join(reg, n);
    let dir: string;
    try {
      dir = fs.readFileSync(entry, 'utf8').trim();
    } catch {
      continue; // removed meanwhile
    }
    if (dir === storeDir) continue;
    if (!path.isAbsolute(dir) || !fs.existsSync(path.join(dir, dbFile))) {
      fs.rmSync(entry, { force: true });
      continue;
    }
    out.push({ dir, entry });
  }
  return out;
}
