// Runs a program to completion with stdin given and stdout/stderr collected, started by
// the native addon's posix_spawn (native/addon/proc.cc) rather than Node's spawn, which
// forks: a fork copies the page tables of the whole Node process, 7–25 ms on the JS
// thread here, while posix_spawn costs well under a millisecond at any size. This is what
// a long-running server (`vfplane cni serve`) uses to exec IPAM plugins and iproute2; the
// runtime that calls CNI plugins (Go's os/exec) starts them the same cheap way.
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import { loadAddon } from '../dataplane/addon.js';
import type { RawAddon } from '../dataplane/addon-types.js';

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** stdout or stderr went over its cap and was cut there. */
  truncated: boolean;
}

export interface RunOptions {
  env: Record<string, string>;
  stdin?: string;
  /** SIGKILL the child's process group after this long (the child gets its own session). */
  timeoutMs?: number;
  maxStdout?: number;
  maxStderr?: number;
  /** Each stderr chunk as it arrives (the CNI spec passes a delegate's stderr through). */
  onStderr?: (chunk: Buffer) => void;
  /** argv[0] and the arguments; default [file]. */
  argv?: string[];
  /** Called with the child's pid once it runs. */
  onSpawn?: (pid: number) => void;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(os.constants.signals).map(([k, v]) => [v, k as NodeJS.Signals]));

/**
 * Starts FILE and resolves when it has exited and its output is read. Rejects (with the
 * errno in `code`, as Node's spawn does) only when it cannot be started.
 */
export function runProgram(file: string, o: RunOptions): Promise<RunResult> {
  let a: RawAddon;
  try {
    a = loadAddon();
  } catch {
    // No addon (not built, or a host without its libraries: the CNI plugin's fallback
    // outside the DaemonSet's container): Node's spawn does the same, at a fork's cost.
    return runViaNode(file, o);
  }
  const envList = Object.entries(o.env).map(([k, v]) => `${k}=${v}`);
  let child: { pid: number; stdin: number; stdout: number; stderr: number };
  try {
    child = a.procSpawn(file, o.argv ?? [file], envList, true);
  } catch (err) {
    return Promise.reject(err);
  }
  o.onSpawn?.(child.pid);
  return new Promise((resolve) => {
    let truncated = false;
    let timedOut = false;
    let open = 2;
    let reaped: { status: number | null; signal: number | null } | null = null;
    let pollTimer: NodeJS.Timeout | undefined;

    const stdin = new net.Socket({ fd: child.stdin, readable: false, writable: true });
    stdin.on('error', () => undefined); // a child that exits without reading: EPIPE, not our failure
    stdin.end(o.stdin ?? '');
    /** Reads fd to its end, keeping the first `max` bytes. */
    const reader = (fd: number, max: number, onData?: (c: Buffer) => void) => {
      const kept = capped(max, () => (truncated = true), onData);
      const s = new net.Socket({ fd, readable: true, writable: false });
      s.on('data', kept.add);
      s.on('error', () => undefined);
      s.on('close', () => {
        open--;
        if (open === 0) poll();
      });
      return { s, text: kept.text };
    };
    const outR = reader(child.stdout, o.maxStdout ?? 4 << 20);
    const errR = reader(child.stderr, o.maxStderr ?? 64 << 10, o.onStderr);

    const finish = () => {
      clearTimeout(killTimer);
      clearTimeout(pollTimer);
      const r = reaped!;
      resolve({
        status: r.status,
        signal: r.signal === null ? null : SIGNAL_NAMES.get(r.signal) ?? null,
        stdout: outR.text(),
        stderr: errR.text(),
        timedOut,
        truncated,
      });
    };
    // The child closes its pipes as it exits, so its status follows within microseconds;
    // one that closed them and runs on is polled at a growing interval. A child that has
    // exited while a grandchild still holds the pipes is finished by the last close.
    let wait = 0;
    function poll(): void {
      clearTimeout(pollTimer);
      try {
        reaped ??= a.procReap(child.pid);
      } catch {
        reaped = { status: null, signal: null }; // reaped by someone else: no status to give
      }
      if (reaped) {
        if (open === 0) finish();
        return;
      }
      wait = Math.min(50, Math.max(1, wait * 2));
      pollTimer = setTimeout(poll, wait);
    }
    const killTimer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      // A grandchild outside the group may hold the pipes: stop reading and just reap.
      outR.s.destroy();
      errR.s.destroy();
      poll();
    }, o.timeoutMs ?? 30_000);
  });
}

/** A child's output as it arrives, keeping the first `max` bytes (`onCut` once it goes
 *  over) and passing every chunk to `onData`. */
function capped(max: number, onCut: () => void, onData?: (c: Buffer) => void): { add: (c: Buffer) => void; text: () => string } {
  const kept: Buffer[] = [];
  let len = 0;
  return {
    add: (c: Buffer) => {
      if (len + c.length > max) onCut();
      if (len < max) kept.push(c.subarray(0, max - len));
      len += c.length;
      onData?.(c);
    },
    text: () => Buffer.concat(kept).toString('utf8'),
  };
}

/** runProgram through Node's spawn: its own process group (for the timeout's SIGKILL),
 *  the same caps, stderr passing through, and rejection only when it cannot start. */
export function runViaNode(file: string, o: RunOptions): Promise<RunResult> {
  const argv = o.argv ?? [file];
  return new Promise((resolve, reject) => {
    const p = spawn(file, argv.slice(1), { argv0: argv[0], env: o.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    if (p.pid !== undefined) o.onSpawn?.(p.pid);
    let truncated = false;
    let timedOut = false;
    const cut = () => (truncated = true);
    const out = capped(o.maxStdout ?? 4 << 20, cut);
    const err = capped(o.maxStderr ?? 64 << 10, cut, o.onStderr);
    p.stdout!.on('data', out.add);
    p.stderr!.on('data', err.add);
    p.stdin!.on('error', () => undefined); // a child that exits without reading
    p.stdin!.end(o.stdin ?? '');
    const killTimer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, o.timeoutMs ?? 30_000);
    p.once('error', (e) => {
      clearTimeout(killTimer);
      reject(e);
    });
    p.once('close', (status, signal) => {
      clearTimeout(killTimer);
      resolve({ status, signal, stdout: out.text(), stderr: err.text(), timedOut, truncated });
    });
  });
}

export interface SyncResult {
  status: number | null;
  /** A signal number (native) or name (fallback); null when the program exited. */
  signal: number | string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the program could not be started (ENOENT, EACCES…). */
  error?: NodeJS.ErrnoException;
}

let nativeSync: RawAddon['procRunSync'] | null | undefined;

/**
 * Runs FILE (searched in PATH when it has no "/") with ARGS and this process's
 * environment, blocking until it exits or TIMEOUT_MS passes (then it is killed).
 * posix_spawn when the addon is built, else Node's spawnSync.
 */
export function runSync(file: string, args: string[], input = '', timeoutMs = 30_000): SyncResult {
  if (nativeSync === undefined) {
    try {
      const a = loadAddon();
      nativeSync = typeof a.procRunSync === 'function' ? a.procRunSync.bind(a) : null;
    } catch {
      nativeSync = null;
    }
  }
  if (nativeSync) {
    try {
      return nativeSync(file, [file, ...args], input, timeoutMs);
    } catch (err) {
      return { status: null, signal: null, stdout: '', stderr: '', timedOut: false, error: err as NodeJS.ErrnoException };
    }
  }
  const r = spawnSync(file, args, { encoding: 'utf8', input, timeout: timeoutMs });
  return {
    status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '',
    timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT',
    ...(r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT' ? { error: r.error as NodeJS.ErrnoException } : {}),
  };
}

/** Why a runSync result is not a success, in a few words ("" when it is one). */
export function syncFailure(r: SyncResult): string {
  if (r.error) return r.error.message;
  if (r.status === 0) return '';
  return r.stderr.trim() || (r.timedOut ? 'timed out' : r.signal !== null ? `killed by signal ${r.signal}` : `exit status ${r.status}`);
}
