// Directory creation for paths that come from users' configs and flags.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * `mkdir -p DIR`. Not `fs.mkdirSync(dir, { recursive: true })`: on Node 20 that loops for
 * ever when a filesystem refuses a new directory with ENOENT while its parent exists
 * (procfs: a stateDir of /proc/x). Here each missing level is made once, and the first
 * refusal is thrown with its errno (ENOENT, EACCES, ENOTDIR, EROFS…).
 */
export function makeDirs(dir: string, mode?: number): void {
  const missing: string[] = [];
  for (let p = path.resolve(dir); ; ) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.push(p);
      const up = path.dirname(p);
      if (up === p) break;
      p = up;
      continue;
    }
    if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${p}'`), { code: 'ENOTDIR', path: p });
    break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, mode === undefined ? undefined : { mode });
    } catch (e) {
      // Made meanwhile by another process: fine if it is a directory.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw e;
    }
  }
}
