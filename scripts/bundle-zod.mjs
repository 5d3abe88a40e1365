#!/usr/bin/env node
// After tsc: replaces dist/util/z.js (a re-export of what vfplane uses of zod) with those
// exports bundled alone by esbuild, tree-shaken. zod's package loads ~850 KB of modules
// (every locale, JSON Schema) in ~85 ms; the bundle is ~190 KB and loads in ~20, for
// every CLI and CNI call. Same exports, same zod code: src/util/z.ts says why. A z.js
// that imports nothing from 'zod' is already the bundle (tsc is incremental and emits it
// again only when z.ts changed): left as it is, so a build repeated changes nothing.
import { readFileSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = fileURLToPath(new URL('../dist/util/z.js', import.meta.url));
if (/\bfrom\s*["']zod["']/.test(readFileSync(file, 'utf8'))) {
  const tmp = `${file}.bundle`;
  try {
    const { buildSync } = await import('esbuild');
    buildSync({ entryPoints: [file], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: tmp, logLevel: 'error', legalComments: 'none' });
  } catch (e) {
    process.stderr.write(`vfplane build: bundling zod into dist/util/z.js failed (${e.message}); npm ci installs esbuild (a dev dependency), then npm run build\n`);
    process.exit(1);
  }
  renameSync(tmp, file);
}
