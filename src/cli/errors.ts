// Errors the CLI knows how to report: a UsageError (bad flag or argument, exit 2) and
// a RuntimeError (the work failed, exit 1). Both carry a message that says what failed,
// with which value, and what to do.
import type { ErrorKind } from '../util/errors.js';

export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `kind` is what --json's error.kind says, as a VfpError's: 'system' unless the site
 *  knows better (a file missing is 'not-found', one malformed 'bad-file'). */
export class RuntimeError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly details?: Record<string, unknown>,
    readonly kind: Exclude<ErrorKind, 'invalid'> = 'system',
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}
