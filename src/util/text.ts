// Lists in messages: a few named, the rest counted.

/** The first `max` of `xs`, then how many more: "a, b, c, d, and 3 more". */
export function listSome(xs: readonly string[], max = 4): string {
  return `${xs.slice(0, max).join(', ')}${xs.length > max ? `, and ${xs.length - max} more` : ''}`;
}
