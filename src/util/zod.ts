// How a zod failure reads in an error message, for every file and request validated
// with zod at the edge (the data plane's config and control requests, the simulator's
// manifest).
import type * as z from './z.js';
import { withGuesses } from './typo.js';

/** The first problem of a zod failure, as "field: message (got value)"; a problem with
 *  the input as a whole is named WHOLE ('' names nothing: the caller has named it). */
export function zodMessage(err: z.ZodError, input: unknown, whole = 'config', schema?: z.ZodType): string {
  return issueMessage(err.issues[0]!, input, whole, schema);
}

/** Every problem of a zod failure (up to `max`, then how many more), each as zodMessage
 *  words it, joined by "; ": a config file with three mistakes is fixed in one pass.
 *  With the schema, an unknown field is answered with the fields its object has, and the
 *  nearest of them when the unknown one looks like a typo of it. */
export function zodMessages(err: z.ZodError, input: unknown, whole = 'config', max = 5, schema?: z.ZodType): string {
  const all = err.issues.map((i) => issueMessage(i, input, whole, schema));
  const unique = [...new Set(all)];
  return unique.slice(0, max).join('; ') + (unique.length > max ? `; and ${unique.length - max} more` : '');
}

function issueMessage(i: z.core.$ZodIssue, input: unknown, whole: string, schema?: z.ZodType): string {
  const path = i.path.join('.');
  const where = path || whole;
  const known = i.code === 'unrecognized_keys' && schema ? fieldsAt(schema, i.path) : null;
  if (i.code === 'unrecognized_keys' && known) {
    if (!known.length) return `${where ? `${where}: ` : ''}unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}: ${where || 'it'} takes no fields`;
    return `${where ? `${where}: ` : ''}unknown field${i.keys.length > 1 ? 's' : ''} ${withGuesses(i.keys, known)}; ${where || 'the top level'} has ${known.join(', ')}`;
  }
  let got: unknown = input;
  for (const k of i.path) got = got && typeof got === 'object' ? (got as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
  // An unknown key is named by the message; the object around it (the whole file, at the
  // top level) says nothing more.
  const shown = got === undefined || i.code === 'unrecognized_keys' ? '' : ` (got ${JSON.stringify(got)?.slice(0, 80)})`;
  // A required field left out: zod's own words ("Invalid input: expected array, received
  // undefined") say it backwards; a schema's own message (what the field is) stands.
  if (i.code === 'invalid_type' && got === undefined && i.message.startsWith('Invalid input')) {
    const what = i.expected === 'array' ? 'list' : i.expected;
    return `${where ? `${where}: ` : ''}missing (${/^[aeiou]/.test(what) ? 'an' : 'a'} ${what} is required here)`;
  }
  return `${where ? `${where}: ` : ''}${i.message}${shown}`;
}

/** The fields of the object schema at `path` inside `schema`, or null when the path does
 *  not lead to one (a union, a pipe: the caller's message stands then). Read from the
 *  schemas' definitions, so that this module needs no zod at run time. */
export function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | null {
  type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType };
  const def = (s: z.ZodType) => (s as unknown as { def: Def }).def;
  const bare = (s: z.ZodType) => {
    while (['optional', 'default', 'nullable', 'prefault', 'readonly'].includes(def(s).type) && def(s).innerType) s = def(s).innerType!;
    return s;
  };
  let s = bare(schema);
  for (const k of path) {
    const d = def(s);
    if (d.type === 'array' && typeof k === 'number' && d.element) s = bare(d.element);
    else if (d.type === 'object' && typeof k === 'string' && d.shape && k in d.shape) s = bare(d.shape[k]!);
    else return null;
  }
  const d = def(s);
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : null;
}
