// How commands speak: with --json, only JSON on stdout; otherwise human text on stdout
// and progress on stderr. Errors go to stderr (and, with --json, as a JSON object on
// stdout too) with exit 1 for runtime failures and 2 for usage errors.
import { UsageError, RuntimeError } from './errors.js';

export interface OutputOpts {
  json?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function progress(opts: OutputOpts, msg: string): void {
  if (process.stderr.isTTY || !opts.json) process.stderr.write(msg + '\n');
}

export function reportError(err: unknown, json: boolean): number {
  const exitCode = err instanceof UsageError ? 2 : 1;
  const message = err instanceof Error ? err.message : String(err);
  const details = err instanceof RuntimeError ? err.details : undefined;
  if (json) printJson({ error: { message, exitCode, ...(details ? { details } : {}) } });
  process.stderr.write(`vfplane: ${message}\n`);
  if (exitCode === 1 && process.env.VFPLANE_DEBUG && err instanceof Error && err.stack) {
    process.stderr.write(err.stack + '\n');
  }
  return exitCode;
}
