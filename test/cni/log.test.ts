// vfplane-cni's logFile is rotated as sriov-cni's cni-log rotates its own (100 MB, five
// backups): a node's pods come and go for months, and the file grew without end
// (helper-68: ~800 bytes a pod at info). On real files.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, LOG_BACKUPS } from '../../src/cni/log.js';

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
