// Errors the CLI knows how to report: a UsageError (bad flag or argument, exit 2) and
// a RuntimeError (the work failed, exit 1). Both carry a message that says what failed,
// with which value, and what to do.
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class RuntimeError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}
