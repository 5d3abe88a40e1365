// Child processes started by the addon's posix_spawn (native/addon/proc.cc, through
// src/util/spawn.ts): what goes in and comes out, exit statuses and signals, timeouts
// that kill the whole process group, programs that cannot start, and the synchronous
// runner iproute2 goes through.
import { closeSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runProgram, runSync, runViaNode, syncFailure } from '../../src/util/spawn.js';
import { ip } from '../../src/net/ip.js';

const pidAlive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readStatus(pid));
function readStatus(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
}

// The same contract twice: the addon's posix_spawn, and Node's spawn, which runProgram
// falls back to where the addon cannot load (the CNI plugin's fallback on a host without
// the addon's libraries: its IPAM delegation must still work).
describe.each([['posix_spawn', runProgram], ['Node spawn, without the addon', runViaNode]] as const)('runProgram (%s, async)', (_, runProgram) => {
  it('passes stdin through, collects stdout and stderr, and gives the exit status', async () => {
    const chunks: string[] = [];
    const r = await runProgram('/bin/sh', {
      argv: ['sh', '-c', 'cat; echo oops >&2; exit 3'], env: { PATH: '/usr/bin:/bin' }, stdin: 'hello\n',
      onStderr: (c) => chunks.push(String(c)),
    });
    expect(r).toMatchObject({ status: 3, signal: null, stdout: 'hello\n', stderr: 'oops\n', timedOut: false, truncated: false });
    expect(chunks.join('')).toBe('oops\n');
  });

  it('gives the child exactly the environment asked for, and default signal handling', async () => {
    const env = await runProgram('/usr/bin/env', { env: { ONLY: 'this' } });
    expect(env.stdout).toBe('ONLY=this\n');
    // Node ignores SIGPIPE (13); the child must not inherit that.
    const ign = await runProgram('/bin/grep', { argv: ['grep', 'SigIgn', '/proc/self/status'], env: {} });
    const mask = BigInt(`0x${/SigIgn:\s+([0-9a-f]+)/.exec(ign.stdout)![1]}`);
    expect(mask & (1n << 12n)).toBe(0n);
  });

  it('names the signal that ended a child', async () => {
    const r = await runProgram('/bin/sh', { argv: ['sh', '-c', 'kill -TERM $$'], env: {} });
    expect(r).toMatchObject({ status: null, signal: 'SIGTERM' });
  });

  it('kills the whole process group on timeout', async () => {
    const r = await runProgram('/bin/sh', { argv: ['sh', '-c', 'sleep 30 & echo $!; wait'], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    const grandchild = Number(r.stdout.trim());
    expect(grandchild).toBeGreaterThan(1);
    await new Promise((res) => setTimeout(res, 100));
    expect(pidAlive(grandchild)).toBe(false);
  });

  it('cuts output at the cap and says so', async () => {
    const r = await runProgram('/bin/sh', { argv: ['sh', '-c', 'head -c 100000 /dev/zero'], env: { PATH: '/usr/bin:/bin' }, maxStdout: 1000 });
    expect(r.stdout.length).toBe(1000);
    expect(r.truncated).toBe(true);
  });

  it('rejects with the errno code when the program cannot start', async () => {
    await expect(runProgram('/nonexistent/plugin', { env: {} })).rejects.toMatchObject({ code: 'ENOENT' });
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-proc-'));
    try {
      writeFileSync(join(dir, 'plugin'), '#!/bin/sh\n', { mode: 0o644 });
      await expect(runProgram(join(dir, 'plugin'), { env: {} })).rejects.toMatchObject({ code: 'EACCES' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runSync (posix_spawn, blocking)', () => {
  it('searches PATH, feeds stdin, returns output and status', () => {
    const r = runSync('sh', ['-c', 'cat; echo err >&2; exit 4'], 'in\n');
    expect(r).toMatchObject({ status: 4, stdout: 'in\n', stderr: 'err\n', timedOut: false });
    expect(syncFailure(r)).toBe('err');
    expect(syncFailure(runSync('true', []))).toBe('');
  });

  it('feeds input larger than a pipe buffer while reading output', () => {
    const big = 'x'.repeat(1 << 20);
    const r = runSync('cat', [], big);
    expect(r.stdout.length).toBe(big.length);
  });

  it('kills a program that runs past the timeout', () => {
    const t0 = Date.now();
    const r = runSync('sleep', ['10'], '', 200);
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(syncFailure(r)).toBe('timed out');
  });

  it('reports a program that does not exist', () => {
    const r = runSync('vfplane-no-such-program', []);
    expect(r.error?.code).toBe('ENOENT');
  });

  it('is what src/net/ip.ts runs iproute2 with: output, and errors with the kernel message', () => {
    expect(JSON.parse(ip(['-j', 'link', 'show', 'dev', 'lo']))[0].ifname).toBe('lo');
    expect(() => ip(['link', 'show', 'dev', 'vfpnosuch0'])).toThrow(/ip link show dev vfpnosuch0: Device "vfpnosuch0" does not exist/);
  });
});

describe('lockTake (flock with a timeout)', () => {
  it('shares a shared lock, and keeps an exclusive one out until the last shared one goes', async () => {
    const { loadAddon } = await import('../../src/dataplane/addon.js');
    const a = loadAddon();
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-lock-'));
    const fds = [0, 1, 2, 3].map(() => a.lockOpen(join(dir, 'l')));
    try {
      const EWOULDBLOCK = -11;
      expect(a.lockTake(fds[0]!, 0, true)).toBe(0);
      expect(a.lockTake(fds[1]!, 0, true)).toBe(0);
      expect(a.lockTake(fds[2]!, 0)).toBe(EWOULDBLOCK);
      a.lockGive(fds[0]!);
      expect(a.lockTake(fds[2]!, 50)).toBeLessThan(0); // -ETIMEDOUT: one shared holder is left
      a.lockGive(fds[1]!);
      // (Another open file: the timed-out take's waiter may still be letting go of its own.)
      expect(a.lockTake(fds[3]!, 1000)).toBe(0);
      expect(a.lockTake(fds[0]!, 0, true)).toBe(EWOULDBLOCK); // and it keeps shared ones out
    } finally {
      for (const fd of fds) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
