// A lock taken whose pid note cannot be written (a full state directory: ENOSPC on the
// write after the flock is taken) must not stay held by this process: in `vfplane cni
// serve` the leaked descriptor kept the VF's put-back lock until the server restarted,
// every DEL of it failing with code 11 ("being put back by another process") and every GC
// leaving it (helper-100). A full tmpfs: creating the (empty) lock file and taking the
// flock succeed, writing the holder's pid fails.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { tryLock } from '../../src/util/lock.js';

describePrivileged('a lock on a full filesystem', { root: true }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfplane-lockfull-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'vfplane-lockfull', dir]);
    try {
      writeFileSync(join(dir, 'filler'), Buffer.alloc(1 << 20));
    } catch {
      // ENOSPC: full now
    }
  });
  afterAll(() => {
    execFileSync('umount', ['-l', dir]); // lazily: a leaked descriptor keeps it busy
    rmSync(dir, { recursive: true, force: true });
  });

  it('is not left held when its holder note cannot be written', () => {
    const path = join(dir, 'putback-0000:5e:02.0.lock');
    let first: ReturnType<typeof tryLock> | undefined;
    try {
      first = tryLock(path, 0, dir, 'first', true);
    } catch {
      // refused: fine, as long as nothing stays locked
    }
    if (first && 'release' in first) first.release();
    const second = tryLock(path, 0, dir, 'second', true);
    expect('release' in second, JSON.stringify(second)).toBe(true);
    if ('release' in second) second.release();
  });
});
