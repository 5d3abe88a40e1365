// Runs the built vfplane CLI exactly as a user would: a child process, argv, exit code.
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/vfplane.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function vfplane(args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8', input: opts.input, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** vfplane() without blocking this process's event loop while the CLI runs (for tests
 *  whose own sockets or timers must keep going meanwhile). */
export function vfplaneAsync(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function vfplaneJson<T = any>(args: string[]): T {
  const r = vfplane([...args, '--json']);
  if (r.code !== 0) throw new Error(`vfplane ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** `vfplane dataplane run --config CONFIG` as a child, through the project's own
 *  spawnDataplane (ready on its JSON line), then until start's last log line (`control
 *  socket …`) has arrived on stderr too, so every line logged while starting is in
 *  `log()`. `stop(signal)` ends it and waits for it to close. */
export async function startDataplane(config: string, what = 'the data plane') {
  const { spawnDataplane } = await import('../../src/dataplane/spawn.js');
  const lines: string[] = [];
  const { proc, ready } = await spawnDataplane(config, what, lines);
  const log = () => lines.join('\n');
  for (let i = 0; i < 200 && !log().includes('control socket '); i++) await new Promise((r) => setTimeout(r, 10));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const closed = new Promise((r) => proc.once('close', r));
    proc.kill(signal);
    await closed;
  };
  return { proc, log, stop, metricsPort: ready.metricsPort };
}

/** A data plane (AF_PACKET) on an uplink veth in `ns`: writes its config in `dir` (node
 *  "edge"; `extra` fields merged in) and starts it. */
export async function dataplaneOn(ns: { path: string }, uplink: string, dir: string, extra: Record<string, unknown> = {}) {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const config = join(dir, 'dp.json');
  const socket = join(dir, 'dp.sock');
  const stateDir = join(dir, 'state');
  writeFileSync(config, JSON.stringify({ node: 'edge', backend: 'afpacket', uplink: { ifname: uplink, netns: ns.path, vtep: '192.0.2.1' }, stateDir, socket, ...extra }));
  const dp = await startDataplane(config, 'the data plane');
  return { ...dp, config, socket, stateDir };
}
