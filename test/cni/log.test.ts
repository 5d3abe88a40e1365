// vfplane-cni's logFile is rotated as sriov-cni's cni-log rotates its own (100 MB, five
// backups): a node's pods come and go for months, and the file grew without end
// (helper-68: ~800 bytes a pod at info). On real files.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, LOG_BACKUPS } from '../../src/cni/log.js';
import { describePrivileged } from '../helpers/privileged.js';

describe('the plugin\'s log file', () => {
  it('is moved to .1 (older ones on to .5, the oldest dropped) once it reaches its size, and a call that had it open writes on into the backup', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-log-'));
    try {
      const file = join(dir, 'cni.log');
      const call = (n: number, msg: string) => {
        const log = createLogger({ file, maxBytes: 1000, level: 'info' });
        for (let i = 0; i < n; i++) log.info(`${msg} ${i}`);
        log.close();
      };
      call(6, 'first'); // ~550 bytes (a line is ~90)
      // A call that opened the file before another rotated it writes on into the backup.
      const early = createLogger({ file, maxBytes: 1000, level: 'info' });
      early.info('early call, first line');
      call(6, 'more'); // over 1000 now: rotated when the next call opens it
      expect(readdirSync(dir)).toEqual(['cni.log']);
      call(1, 'second');
      early.info('early call, second line');
      early.close();
      expect(readdirSync(dir).sort()).toEqual(['cni.log', 'cni.log.1']);
      expect(readFileSync(file, 'utf8')).toContain('"msg":"second 0"');
      const backup = readFileSync(`${file}.1`, 'utf8');
      expect(backup).toContain('"msg":"first 0"');
      expect(backup).toContain('"msg":"early call, second line"');
      expect(backup).not.toContain('"msg":"second 0"');
      // Eight more rotations: five backups kept, the newest in .1.
      for (let r = 0; r < 8; r++) call(12, `round${r}`);
      call(1, 'last');
      expect(readdirSync(dir).sort()).toEqual(['cni.log', ...Array.from({ length: LOG_BACKUPS }, (_, i) => `cni.log.${i + 1}`)]);
      expect(readFileSync(`${file}.1`, 'utf8')).toContain('"msg":"round7 0"');
      expect(readFileSync(`${file}.5`, 'utf8')).toContain('"msg":"round3 0"');
      expect(existsSync(`${file}.6`)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A network config may name any file in a log directory, and the plugin runs as root:
  // it appended to (and at its size rotated away) the host's own logs there (helper-70).
  it('is only ever a file of the plugin\'s own: another log there is neither appended to nor rotated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-log-'));
    try {
      const syslog = join(dir, 'syslog');
      const before = 'Dec  6 21:00:01 node1 kernel: [ 1.0] Linux version 6.18\n'.repeat(20);
      writeFileSync(syslog, before);
      const lines: string[] = [];
      const log = createLogger({ file: syslog, maxBytes: 100, level: 'info', stderr: (l) => lines.push(l) });
      log.info('from a pod');
      log.close();
      expect(readFileSync(syslog, 'utf8')).toBe(before);
      expect(readdirSync(dir)).toEqual(['syslog']);
      expect(lines[0]).toMatch(/cannot open logFile .*syslog: it is not a log file vfplane-cni made/);
      expect(lines[1]).toContain('"msg":"from a pod"');
      // Its own, and an empty one (new), are written to.
      const own = join(dir, 'cni.log');
      writeFileSync(own, '');
      for (const n of [1, 2]) {
        const l = createLogger({ file: own, level: 'info', stderr: () => { throw new Error('to stderr'); } });
        l.info(`line ${n}`);
        l.close();
      }
      expect(readFileSync(own, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
      expect(statSync(own).size).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// A storage-failure walkthrough: on a full filesystem a line was cut at the page boundary
// and the next call's first line, once there was room, was appended onto the fragment.
describePrivileged('the plugin\'s log file on a full filesystem', { root: true, commands: ['mount', 'umount'] }, () => {
  it('holds only whole lines: a short write is taken back and said once, the rest go to stderr; a later call ends a line a killed one left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-cni-log-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    try {
      const file = join(dir, 'cni.log');
      // The log gets one page of the 16: it fills it, then finds no more.
      writeFileSync(join(dir, 'filler'), Buffer.alloc(15 * 4096));
      const err: string[] = [];
      const log = createLogger({ file, level: 'info', stderr: (l) => err.push(l) });
      for (let i = 0; i < 40; i++) log.info(`line ${i} ${'x'.repeat(200)}`);
      log.close();
      const text = readFileSync(file, 'utf8');
      expect(text.length).toBeGreaterThan(0);
      expect(text.endsWith('\n'), 'no half line at the end').toBe(true);
      const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string });
      expect(err[0]).toMatch(/"level":"error","msg":"cannot write to logFile .*cni\.log: \d+ of \d+ bytes written: no space left on its filesystem; logging to stderr"/);
      expect(err.filter((l) => l.includes('cannot write to logFile'))).toHaveLength(1);
      // Every line once: in the file, or (after the notice) on stderr, in order.
      const all = [...lines.map((l) => l.msg), ...err.slice(1).map((l) => (JSON.parse(l) as { msg: string }).msg)];
      expect(all).toEqual(Array.from({ length: 40 }, (_, i) => `line ${i} ${'x'.repeat(200)}`));
      expect(lines.length).toBeLessThan(40);
      // Room again; a call killed mid-line left a fragment: the next call's line stands alone.
      rmSync(join(dir, 'filler'));
      appendFileSync(file, '{"time":"2026-12-07T10:00:00.000Z","level":"debug",');
      const next = createLogger({ file, level: 'info', stderr: () => { throw new Error('to stderr'); } });
      next.info('after');
      next.close();
      const after = readFileSync(file, 'utf8').split('\n');
      expect(after.at(-3)).toBe('{"time":"2026-12-07T10:00:00.000Z","level":"debug",');
      expect(JSON.parse(after.at(-2)!)).toMatchObject({ msg: 'after' });
      expect(after.at(-1)).toBe('');
    } finally {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
