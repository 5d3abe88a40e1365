#!/usr/bin/env node
// After tsc: replaces dist/util/z.js (a re-export of what vfplane uses of zod) with those
// exports bundled alone by esbuild, tree-shaken. zod's package loads ~850 KB of modules
// (every locale, JSON Schema) in ~85 ms; the bundle is ~190 KB and loads in ~20, for
// every CLI and CNI call. Same exports, same zod code: src/util/z.ts says why.
import { buildSync } from 'esbuild';
import { renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = fileURLToPath(new URL('../dist/util/z.js', import.meta.url));
const tmp = `${file}.bundle`;
try {
  buildSync({ entryPoints: [file], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: tmp, logLevel: 'error', legalComments: 'none' });
} catch (e) {
  process.stderr.write(`vfplane build: bundling zod into dist/util/z.js failed (${e.message}); npm ci installs esbuild, then npm run build\n`);
  process.exit(1);
}
renameSync(tmp, file);
