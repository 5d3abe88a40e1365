// zod as the built CLI loads it: dist/util/z.js is the exports of src/util/z.ts bundled
// alone (scripts/bundle-zod.mjs), so that a command does not load zod's whole package.
// It must be the same zod, say the same things, and be the only one the code loads.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as real from 'zod';
import { ROOT } from '../helpers/cli.js';

const built = join(ROOT, 'dist', 'util', 'z.js');

describe('the zod the built CLI loads', () => {
  it('is one self-contained file, a fraction of the package, exporting what src/util/z.ts names', async () => {
    const text = readFileSync(built, 'utf8');
    expect(text).not.toMatch(/from\s*["']zod|require\(["']zod|import\(["']zod/); // nothing of the package left to load
    expect(statSync(built).size).toBeLessThan(400_000);
    const z = await import(pathToFileURL(built).href);
    const src = await import('../../src/util/z.js');
    expect(Object.keys(z).sort()).toEqual(Object.keys(src).sort());
    for (const k of Object.keys(z)) expect(typeof z[k], k).toBe(typeof (real as Record<string, unknown>)[k]);
  });

  it('says what zod says: the same issues and messages for the same input', async () => {
    const z = await import(pathToFileURL(built).href);
    const make = (m: typeof real) => m.strictObject({
      name: m.string().regex(/^[a-z]+$/),
      n: m.number().int().min(1).max(9),
      kind: m.enum(['a', 'b']),
      list: m.array(m.boolean()).min(1),
      any: m.union([m.literal(1), m.string()]),
    });
    for (const input of [
      { name: 'ok', n: 3, kind: 'a', list: [true], any: 1 },
      { name: 'NO', n: 0, kind: 'c', list: [], any: 2, extra: 1 },
      { name: 5, n: 1.5, kind: null, list: ['x'] },
      'not an object',
    ]) {
      const a = make(z as typeof real).safeParse(input);
      const b = make(real).safeParse(input);
      expect(a.success).toBe(b.success);
      if (!a.success && !b.success) expect(a.error.issues).toEqual(b.error.issues);
    }
  });

  it('is the only zod the code loads: no module but src/util/z.ts imports a value from the package', () => {
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
    const offenders = files(join(ROOT, 'src'))
      .filter((f) => !f.endsWith(join('util', 'z.ts')))
      .filter((f) => /^\s*(import|export)\s+(?!type\b)[^;]*from\s+'zod'/m.test(readFileSync(f, 'utf8')) || /import\('zod'\)/.test(readFileSync(f, 'utf8')));
    expect(offenders, "import * as z from '../util/z.js' instead").toEqual([]);
  });
});
