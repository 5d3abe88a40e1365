#!/usr/bin/env node
// vfplane-cni entry point, run by the container runtime (or Multus) per pod: runs the
// compiled plugin, or answers with a CNI error object saying how to build it.
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cni/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  // stdout is the runtime's channel: a CNI error there, the hint on stderr too.
  const msg = 'vfplane-cni is not built (dist/cni/main.js is missing); run ./scripts/setup, or npm run build';
  process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', code: 999, msg }, null, 4) + '\n');
  process.stderr.write(`vfplane-cni: ${msg}\n`);
  process.exit(1);
}

// A signal (Ctrl-C, a service manager's SIGTERM) that lands while a command changes the
// host would stop it half-way: a VF moved but not configured, an address reserved and
// not given back, and for the last one, a success body on stdout with exit 130. Once the
// configuration has been read, the first signal lets the command finish (an ADD takes
// tens of milliseconds; when it fails it undoes itself) and its answer stands; a second
// stops it at once. Before that, nothing has changed and a signal stops it at once. A
// runtime's timeout kills with SIGKILL, which no handler sees: DEL and gc clean up then.
let inputRead = process.stdin.isTTY === true;
process.stdin.once('end', () => (inputRead = true));
let pending;
const onSignal = (sig) => {
  if (!inputRead || pending) process.exit(128 + constants.signals[sig]);
  pending = sig;
  const cmd = process.env.CNI_COMMAND ?? 'command';
  process.stderr.write(`vfplane-cni: ${sig}: finishing the ${cmd} under way, so that nothing is left half-done (send ${sig} again to stop at once)\n`);
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, onSignal);

const { main: run } = await import(main.href);
process.exitCode = await run(process.env);
