// Which known name a misspelt one most likely meant, for errors and warnings that answer
// an unknown field or option with "did you mean …?".

/**
 * The known name closest to `name` (case aside), if it is a likely typo of it: within
 * `maxEdits` edits (default: two, or 40% of its letters for a longer name: "vtpe" →
 * "vtep", "ageSecs" → "ageSeconds"), or one is the other's start. Null otherwise.
 */
export function likelyTypo(name: string, known: readonly string[], maxEdits?: number): string | null {
  const a = name.toLowerCase();
  let best: string | null = null, bestD = Infinity;
  for (const k of known) {
    const b = k.toLowerCase();
    const d = b.startsWith(a) || a.startsWith(b) ? Math.abs(a.length - b.length) / 4 : editDistance(a, b);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== null && bestD <= (maxEdits ?? Math.max(2, Math.ceil(a.length * 0.4))) ? best : null;
}

/** Unknown names, quoted, each with the known one it likely meant:
 *  `"vnii" (did you mean "vni"?), "colour"`. No guesses without a known list. */
export function withGuesses(names: readonly string[], known: readonly string[] | null): string {
  return names.map((k) => {
    const near = known && likelyTypo(k, known);
    return `${JSON.stringify(k)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}`;
  }).join(', ');
}

/** Edit distance counting an insertion, a deletion, a substitution or a swap of two
 *  neighbouring letters ("vxaln" → "vxlan") as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
