// Small process helpers shared by the simulator's lock, the allocation store and the
// benchmark workers: is a process alive, and a synchronous sleep.

/** True when PID exists (EPERM: it exists but is not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const cell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for MS milliseconds (for code that is synchronous by design). */
export function sleepSync(ms: number): void {
  Atomics.wait(cell, 0, 0, ms);
}
