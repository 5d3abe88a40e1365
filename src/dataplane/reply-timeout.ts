// How long a client of the data plane's control socket waits for a reply: its own module,
// so that the CLI and the CNI plugin check the setting when they start, before anything
// else (control.ts, which asks, is loaded only by the commands that ask).
import { invalid } from '../util/errors.js';

/** The wait unless a caller says otherwise. */
export const REPLY_MS = 10_000;

/** REPLY_MS, or VFPLANE_CONTROL_TIMEOUT_MS (milliseconds, 1–600000) from the
 *  environment: a node whose data plane answers slowly under load, or a test of one that
 *  never answers. A caller's shorter wait (a status probe) stays the shorter. Throws an
 *  'invalid' VfpError naming a value that is no such number. */
export function replyTimeoutMs(shorter?: number): number {
  const raw = process.env.VFPLANE_CONTROL_TIMEOUT_MS;
  let ms = REPLY_MS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!/^[0-9]+$/.test(raw) || n < 1 || n > 600_000) throw invalid(`VFPLANE_CONTROL_TIMEOUT_MS=${JSON.stringify(raw)} is not a number of milliseconds from 1 to 600000; set it to one, or unset it for ${REPLY_MS}`);
    ms = n;
  }
  return shorter === undefined ? ms : Math.min(shorter, ms);
}
