// Text in messages: lists with a few named and the rest counted; arguments in commands
// a message gives to run.

/** The first `max` of `xs`, then how many more: "a, b, c, d, and 3 more". */
export function listSome(xs: readonly string[], max = 4): string {
  return `${xs.slice(0, max).join(', ')}${xs.length > max ? `, and ${xs.length - max} more` : ''}`;
}

/** An argument as a POSIX shell reads it back: as it is when it holds only characters the
 *  shell leaves alone, else single-quoted. For commands a message gives or a file holds. */
export function shellArg(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}
