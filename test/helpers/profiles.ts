// An operator's hw-profile for a test: a shipped profile changed by `change`, written to
// a temporary $VFPLANE_PROFILES_DIR (where a profile of a shipped one's name replaces it)
// for the duration of `fn`, the profile cache cleared on the way in and out.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearProfileCache } from '../../src/sriov/profile.js';
import type { HwProfile } from '../../src/sriov/types.js';
import { ROOT } from './cli.js';

export async function withOperatorProfile<T>(name: string, change: (p: HwProfile) => void, fn: () => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'vfp-prof-'));
  const p = JSON.parse(readFileSync(join(ROOT, 'hw-profiles', `${name}.json`), 'utf8')) as HwProfile;
  change(p);
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(p));
  const before = process.env.VFPLANE_PROFILES_DIR;
  process.env.VFPLANE_PROFILES_DIR = dir;
  clearProfileCache();
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.VFPLANE_PROFILES_DIR;
    else process.env.VFPLANE_PROFILES_DIR = before;
    clearProfileCache();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A family whose hardware encap/decap works through tc flower only (tier 1 in switchdev
 *  mode): no shipped profile is one, so tests make the E810 one. */
export const tcFlowerOnlyTier1 = (p: HwProfile): void => {
  p.tier = 1;
  p.offloads.tcFlowerEncapDecap = true;
};
