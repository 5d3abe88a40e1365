// File locks (flock, through the addon): the kernel lets a dead process's lock go, so a
// lock never outlives its holder, whatever killed it. Used for the data plane's node and
// netdev claims and for the put-back of a VF (one releaser at a time).
import { closeSync, fstatSync, ftruncateSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { loadAddon } from '../dataplane/addon.js';
import { systemError } from './errors.js';

export type Lock = { release(): void };
export type Held = { heldBy: number | null; about: string };

/** Who holds a lock, for a person: what it wrote, and its pid when known. */
export function heldText(h: Held): string {
  return `${h.about || 'another process'}${h.heldBy ? ` (pid ${h.heldBy})` : ''}`;
}

/** An flock on `path` (created), with this process's pid and `about` written to it once
 *  taken; or, when another process holds it, its pid and what it wrote (when known).
 *  `dir` names the directory in the error when the file cannot be made. With `remove`,
 *  the holder deletes the file as it lets go (the netdev locks, one per netdev ever
 *  claimed, would otherwise pile up): a lock taken on a file deleted meanwhile is then
 *  no lock, so the file must still be the one at `path` once locked, else it is tried
 *  again. */
export function tryLock(path: string, waitMs: number, dir: string, about = '', remove = false): Lock | Held {
  const a = loadAddon();
  for (;;) {
    let fd: number;
    try {
      fd = a.lockOpen(path);
    } catch (e) {
      throw systemError(`cannot open the lock file ${path}: ${(e as Error).message}; is ${dir} writable by this user?`);
    }
    const rc = a.lockTake(fd, waitMs);
    if (rc === -constants.errno.EWOULDBLOCK || rc === -constants.errno.ETIMEDOUT) {
      closeSync(fd);
      let text = '';
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        // let go (and removed) just now: who held it is unknown
      }
      const [first = '', ...rest] = text.split('\n');
      const pid = Number.parseInt(first, 10);
      return { heldBy: Number.isInteger(pid) && pid > 0 ? pid : null, about: rest.join(' ').trim() };
    }
    if (rc !== 0) {
      closeSync(fd);
      const name = Object.entries(constants.errno).find(([, v]) => v === -rc)?.[0] ?? `errno ${-rc}`;
      throw systemError(`cannot lock ${path}: ${name}; is ${dir} writable by this user?`);
    }
    if (remove && fstatSync(fd).ino !== (() => { try { return statSync(path).ino; } catch { return -1; } })()) {
      closeSync(fd); // its holder removed it while we waited for it
      continue;
    }
    // Who holds it, for a waiter's message: best effort. A note that cannot be written
    // (a full filesystem) must not leave the lock held with nothing to let it go.
    try {
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n${about ? `${about}\n` : ''}`, 0);
    } catch {
      // taken all the same; waiters say "another process"
    }
    let open = true;
    // Closing the only descriptor lets the lock go; the file goes first, still locked.
    return {
      release: () => {
        if (!open) return;
        open = false;
        if (remove) rmSync(path, { force: true });
        closeSync(fd);
      },
    };
  }
}

/** tryLock, waiting up to `waitMs` without blocking the event loop (a holder in this
 *  same process, another request of a server, can then finish): polled every 20 ms.
 *  `onWait`: told once, with who holds it, when it must wait. */
export async function waitLock(path: string, waitMs: number, dir: string, about = '', remove = false, onWait?: (h: Held) => void): Promise<Lock | Held> {
  const until = Date.now() + waitMs;
  for (let first = true; ; first = false) {
    const l = tryLock(path, 0, dir, about, remove);
    if ('release' in l || Date.now() >= until) return l;
    if (first) onWait?.(l);
    await new Promise((r) => setTimeout(r, 20));
  }
}
