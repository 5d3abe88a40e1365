#!/usr/bin/env node
// vfplane entry point: runs the compiled CLI, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('vfplane: not built (dist/cli/main.js is missing); run ./scripts/setup, or npm run build\n');
  process.exit(1);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv);
