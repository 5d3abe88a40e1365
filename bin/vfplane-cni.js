#!/usr/bin/env node
// vfplane-cni entry point, run by the container runtime (or Multus) per pod: runs the
// compiled plugin, or answers with a CNI error object saying how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cni/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  // stdout is the runtime's channel: a CNI error there, the hint on stderr too.
  const msg = 'vfplane-cni is not built (dist/cni/main.js is missing); run ./scripts/setup, or npm run build';
  process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', code: 999, msg }, null, 4) + '\n');
  process.stderr.write(`vfplane-cni: ${msg}\n`);
  process.exit(1);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.env);
