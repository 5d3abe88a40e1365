// What a long command (the demo, the benches) must undo when it is interrupted: SIGINT
// (Ctrl-C) or SIGTERM (timeout, systemd, a CI runner) runs every registered cleanup,
// newest first (each awaited), then exits 130 or 143. A `finally` never runs then: the
// signal's default action ends the process first. A second signal lets them finish; a
// third exits at once.
import { readFileSync } from 'node:fs';
import { sleepSync } from './proc.js';

type Cleanup = (sig: NodeJS.Signals) => void | Promise<void>;
const cleanups = new Set<Cleanup>();
let hooked = false;
let signalled: NodeJS.Signals | null = null;
let repeats = 0; // signals after the first

/** Registers a cleanup; returns the function that unregisters it. */
export function onInterrupt(fn: Cleanup): () => void {
  hook();
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

/**
 * After a step failed: the signal it failed of, or null. Ctrl-C reaches the whole process
 * group, so a child (a plugin, ping, iperf3) dies of it or cuts its work short, and the
 * step it served fails before this process's own handler has run (a synchronous child
 * holds the event loop; the handler waits for it). A pending signal's handler runs in
 * the event loop's next turns, which this yields to. The CLI asks before reporting an
 * error, so an interrupt is not reported as the failure it caused.
 */
export async function interrupted(): Promise<NodeJS.Signals | null> {
  for (let i = 0; i < 2 && !signalled; i++) await new Promise((r) => setImmediate(r));
  return signalled;
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      // A second signal while the cleanups run is most often the same interrupt twice
      // (`timeout` signals the child and then its group; Ctrl-C pressed again): they go on,
      // and say so. A third leaves what is not undone yet, and exits at once.
      if (signalled) {
        if (++repeats >= 2) {
          process.stderr.write(`${sig} again: exiting without finishing the cleanup; what it had not undone yet is left (vfplane demo sweeps a demo's leftovers at its next start)\n`);
          process.exit(code);
        }
        process.stderr.write(`${sig}: still cleaning up; a third signal exits at once, leaving what is not undone\n`);
        return;
      }
      signalled = sig;
      process.stderr.write(`\n${sig}: cleaning up\n`);
      void (async () => {
        for (const f of [...cleanups].reverse()) {
          try {
            await f(sig);
          } catch (e) {
            process.stderr.write(`cleanup: ${(e as Error).message}\n`);
          }
        }
        process.exit(code);
      })();
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
