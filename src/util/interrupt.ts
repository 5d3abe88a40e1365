// What a long command (the demo, the benches) must undo when it is interrupted: SIGINT
// (Ctrl-C) or SIGTERM (timeout, systemd, a CI runner) runs every registered cleanup,
// newest first, then exits 130 or 143. A `finally` never runs then: the signal's
// default action ends the process first. A second signal exits at once.
import { readFileSync } from 'node:fs';
import { sleepSync } from './proc.js';

const cleanups = new Set<() => void>();
let hooked = false;

/** Registers a synchronous cleanup; returns the function that unregisters it. */
export function onInterrupt(fn: () => void): () => void {
  hook();
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  let fired = false;
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      if (fired) process.exit(code);
      fired = true;
      process.stderr.write(`\n${sig}: cleaning up\n`);
      for (const f of [...cleanups].reverse()) {
        try {
          f();
        } catch (e) {
          process.stderr.write(`cleanup: ${(e as Error).message}\n`);
        }
      }
      process.exit(code);
    });
  }
}

/** Sends SIGTERM to a child and waits (synchronously, up to ms) for it to go, then
 *  SIGKILL: for cleanups of children that give things back when they stop. */
export function stopChildSync(pid: number | undefined, ms = 5000): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let t = 0; t < ms && running(pid); t += 20) sleepSync(20);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Whether PID still runs: gone, or a zombie (exited; this event loop, blocked in a
 *  cleanup, cannot reap it) counts as stopped. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
