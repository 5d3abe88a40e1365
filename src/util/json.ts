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

/** The first key that appears twice in one object of `text`, a JSON text JSON.parse
 *  took (which keeps the last of the two, unsaid); null: none does. */
export function duplicateJsonKey(text: string): string | null {
  // In valid JSON every quote outside a string opens one, so strings are whole tokens
  // here and the brackets and commas left are the structure's.
  const token = /"(?:[^"\\]|\\.)*"|[{}[\],:]/g;
  const open: (Set<string> | null)[] = []; // per open object its keys; null per array
  let wantKey = false;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    const t = m[0];
    if (t === '{') (open.push(new Set()), (wantKey = true));
    else if (t === '[') (open.push(null), (wantKey = false));
    else if (t === '}' || t === ']') (open.pop(), (wantKey = false));
    else if (t === ',') wantKey = open[open.length - 1] != null;
    else if (t === ':') wantKey = false;
    else if (wantKey) {
      const keys = open[open.length - 1]!;
      const k = JSON.parse(t) as string; // "\u0061" and "a" are one key
      if (keys.has(k)) return k;
      keys.add(k);
      wantKey = false;
    }
  }
  return null;
}
