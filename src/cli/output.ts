// How commands speak: with --json, only JSON on stdout; otherwise human text on stdout
// and progress on stderr. Errors go to stderr (and, with --json, as a JSON object on
// stdout too) with exit 1 for runtime failures and 2 for usage errors.
import { UsageError, RuntimeError } from './errors.js';
import { VfpError } from '../util/errors.js';

export interface OutputOpts {
  json?: boolean;
}

export function printJson(value: unknown, to: NodeJS.WriteStream = process.stdout, oneLine = false): void {
  to.write(JSON.stringify(value, null, oneLine ? undefined : 2) + '\n');
}

/** Named counts as people read them, "rx_kernel_drops 3, truncated 1", zeros left out;
 *  "" when none. */
export function countsText(counts: Record<string, number> | undefined): string {
  return Object.entries(counts ?? {}).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
}

export function progress(opts: OutputOpts, msg: string): void {
  if (process.stderr.isTTY || !opts.json) process.stderr.write(msg + '\n');
}

/** (`jsonTo`: where the JSON error goes; stderr when stdout carries a command's data,
 *  as `pcap … --out -` does.) */
export function reportError(err: unknown, json: boolean, jsonTo: NodeJS.WriteStream = process.stdout, oneLine = false): number {
  // A malformed value is a usage error wherever it was caught; anything else is a failure,
  // a malformed file (kind 'bad-file') included: bad input, not a bad command line.
  const exitCode = err instanceof UsageError || (err instanceof VfpError && err.kind === 'invalid') ? 2 : 1;
  const message = err instanceof Error ? err.message : String(err);
  const details = err instanceof RuntimeError || err instanceof VfpError ? err.details : undefined;
  // A usage error is kind 'invalid' as a VfpError of that kind is: scripts branch on kind.
  // Every error has one: what no site classified is the system's ('system').
  const kind = err instanceof VfpError || err instanceof RuntimeError ? err.kind : err instanceof UsageError ? 'invalid' : 'system';
  if (json) printJson({ error: { message, exitCode, kind, ...(details ? { details } : {}) } }, jsonTo, oneLine);
  process.stderr.write(`vfplane: ${message}\n`);
  if (exitCode === 1 && process.env.VFPLANE_DEBUG && err instanceof Error && err.stack) {
    process.stderr.write(err.stack + '\n');
  }
  return exitCode;
}

export { shellArg } from '../util/text.js';
