// Argument checks for programmatic APIs (the native façade, the bench generator): a
// TypeError for the wrong type, a RangeError for a value out of range, naming both.
export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`${name} must be an integer (got ${typeof v === 'number' ? v : typeof v})`);
  }
  if (v < min || v > max) throw new RangeError(`${name} ${v} is outside ${min}–${max}`);
  return v;
}
