// Errors of the domain modules (sriov, sim, alloc, net), independent of how they are
// reported: the CLI turns `kind` into an exit code, the CNI plugin into a spec error code.
// Every message names the value that failed and what to do about it.
export type ErrorKind =
  | 'invalid' // the input is malformed: a usage error at the CLI (exit 2)
  | 'bad-file' // a file given as input is malformed (a pool file, a hw-profile): bad input, not a usage error (exit 1)
  | 'not-found' // the thing named does not exist (an unknown PCI address, PF, pool)
  | 'conflict' // the request contradicts the current state (not your VF, numvfs busy)
  | 'unavailable' // nothing free right now; retrying later may succeed
  | 'system'; // the kernel, a tool or the store failed

export class VfpError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'VfpError';
  }
}

export const invalid = (msg: string, details?: Record<string, unknown>) => new VfpError('invalid', msg, details);
export const badFile = (msg: string, details?: Record<string, unknown>) => new VfpError('bad-file', msg, details);
export const notFound = (msg: string, details?: Record<string, unknown>) => new VfpError('not-found', msg, details);
export const conflict = (msg: string, details?: Record<string, unknown>) => new VfpError('conflict', msg, details);
export const unavailable = (msg: string, details?: Record<string, unknown>) => new VfpError('unavailable', msg, details);
export const systemError = (msg: string, details?: Record<string, unknown>) => new VfpError('system', msg, details);
