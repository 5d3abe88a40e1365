// Limits on JSON taken from outside (control requests, CNI configurations): a value
// nested thousands deep parses, but then overflows the stack of whatever walks it
// recursively (zod, JSON.stringify), which answers "Maximum call stack size exceeded".

/** Whether a parsed JSON value nests objects or arrays more than `max` deep (walked
 *  without recursion). */
export function nestedDeeperThan(v: unknown, max: number): boolean {
  const todo: [unknown, number][] = [[v, 1]];
  while (todo.length) {
    const [x, d] = todo.pop()!;
    if (!x || typeof x !== 'object') continue;
    if (d > max) return true;
    for (const y of Object.values(x)) if (y && typeof y === 'object') todo.push([y, d + 1]);
  }
  return false;
}

/** JSON.parse's error without the input it quotes (V8 gives the first bytes: `Unexpected
 *  token 'r', "root:*:202"... is not valid JSON`): a file's content is not repeated in
 *  an error message, which may end up in a log. */
export function jsonParseError(err: unknown): string {
  return String((err as Error)?.message ?? err).replace(/, ".*?"(\.\.\.)? is not valid JSON$/s, '');
}
