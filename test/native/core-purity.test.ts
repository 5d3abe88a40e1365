// native/core promises no Node, no syscalls and no allocation: the engine's objects may
// call only each other and a few pure libc routines. The linker's view of what they need
// (nm -u) is the proof; a stray malloc, clock_gettime or write would show up here.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';

const OBJ = join(ROOT, 'build', 'Release', 'obj.target', 'vfplane_native', 'native', 'core');
const PURE_LIBC = new Set(['memcpy', 'memmove', 'memset', 'memcmp']);
// cpuid-based dispatch (__builtin_cpu_supports) and position-independent code.
const TOOLCHAIN = new Set(['__cpu_model', '__cpu_indicator_init', '_GLOBAL_OFFSET_TABLE_']);

describePrivileged('native/core purity', { commands: ['nm'] }, () => {
  it('the core objects exist (built by npm run build:native)', () => {
    expect(existsSync(OBJ), OBJ).toBe(true);
  });

  const objects = existsSync(OBJ) ? readdirSync(OBJ).filter((f) => f.endsWith('.o')) : [];
  const defined = new Set<string>();
  for (const o of objects) {
    const out = execFileSync('nm', ['--defined-only', join(OBJ, o)], { encoding: 'utf8' });
    for (const line of out.split('\n')) {
      const name = line.trim().split(/\s+/)[2];
      if (name) defined.add(name);
    }
  }
  describe.each(objects)('%s', (o) => {
    it('needs nothing beyond the core, pure libc string routines and cpuid dispatch', () => {
      const undef = execFileSync('nm', ['-u', join(OBJ, o)], { encoding: 'utf8' })
        .split('\n').map((l) => l.trim().split(/\s+/).at(-1)!).filter(Boolean);
      const foreign = undef.filter((s) => !defined.has(s) && !PURE_LIBC.has(s) && !TOOLCHAIN.has(s));
      expect(foreign).toEqual([]);
    });
  });
});
