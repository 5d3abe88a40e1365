// How a zod failure reads in an error message, for every file and request validated
// with zod at the edge (the data plane's config and control requests, the simulator's
// manifest).
import type { z } from 'zod';

/** The first problem of a zod failure, as "field: message (got value)"; a problem with
 *  the input as a whole is named WHOLE ('' names nothing: the caller has named it). */
export function zodMessage(err: z.ZodError, input: unknown, whole = 'config'): string {
  return issueMessage(err.issues[0]!, input, whole);
}

/** Every problem of a zod failure (up to `max`, then how many more), each as zodMessage
 *  words it, joined by "; ": a config file with three mistakes is fixed in one pass. */
export function zodMessages(err: z.ZodError, input: unknown, whole = 'config', max = 5): string {
  const all = err.issues.map((i) => issueMessage(i, input, whole));
  const unique = [...new Set(all)];
  return unique.slice(0, max).join('; ') + (unique.length > max ? `; and ${unique.length - max} more` : '');
}

function issueMessage(i: z.core.$ZodIssue, input: unknown, whole: string): string {
  const path = i.path.join('.');
  let got: unknown = input;
  for (const k of i.path) got = got && typeof got === 'object' ? (got as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
  // An unknown key is named by the message; the object around it (the whole file, at the
  // top level) says nothing more.
  const shown = got === undefined || i.code === 'unrecognized_keys' ? '' : ` (got ${JSON.stringify(got)?.slice(0, 80)})`;
  const where = path || whole;
  return `${where ? `${where}: ` : ''}${i.message}${shown}`;
}
