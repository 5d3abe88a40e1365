// How a zod failure reads in an error message, for every file and request validated
// with zod at the edge (the data plane's config and control requests, the simulator's
// manifest).
import type { z } from 'zod';

/** The first problem of a zod failure, as "field: message (got value)"; a problem with
 *  the input as a whole is named WHOLE ('' names nothing: the caller has named it). */
export function zodMessage(err: z.ZodError, input: unknown, whole = 'config'): string {
  const i = err.issues[0]!;
  const path = i.path.join('.');
  let got: unknown = input;
  for (const k of i.path) got = got && typeof got === 'object' ? (got as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
  // An unknown key is named by the message; the object around it (the whole file, at the
  // top level) says nothing more.
  const shown = got === undefined || i.code === 'unrecognized_keys' ? '' : ` (got ${JSON.stringify(got)?.slice(0, 80)})`;
  const where = path || whole;
  return `${where ? `${where}: ` : ''}${i.message}${shown}`;
}
