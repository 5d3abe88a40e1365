// Parsers for CLI flag values. Each validates once, at the edge, and throws a
// UsageError naming the flag, the value and the allowed range (exit 2).
import { parseIp, parseMac } from '../util/addr.js';
import { VNI_MAX } from '../packet/config.js';
import { UsageError } from './errors.js';
import { NODE_NAME } from '../util/names.js';
import { parseIfname, parsePci } from '../sriov/pci.js';
import { VfpError } from '../util/errors.js';

/** The domain parsers (sriov/pci.ts) throw VfpError 'invalid'; at the CLI that is a UsageError. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof VfpError && err.kind === 'invalid') throw new UsageError(err.message);
    throw err;
  }
}

/** A Linux interface name, checked as the pf/vf commands check one. */
export const ifnameFlag = (flag: string) => (value: string): string => usage(() => parseIfname(value, flag));

/** A PCI address DDDD:BB:DD.F, returned lower-case. */
export const pciFlag = (flag: string) => (value: string): string => usage(() => parsePci(value, flag));

/** A VF as the vf commands name one: its PCI address, or PF#N (PF by netdev or address,
 *  N its index; resolved against sysfs by the command, which knows the root). */
export const vfFlag = (flag: string) => (value: string): string => {
  const hash = value.lastIndexOf('#');
  if (hash > 0 && /^\d{1,4}$/.test(value.slice(hash + 1))) {
    const pf = value.slice(0, hash);
    usage(() => (pf.includes(':') ? parsePci(pf, flag) : parseIfname(pf, flag)));
    return value;
  }
  try {
    return pciFlag(flag)(value);
  } catch (e) {
    // The help offers both forms: so does the refusal, after what was wrong with the address.
    throw new UsageError(`${(e as Error).message}; or name the VF as PF#N (a PF's netdev or address, # and the VF's index, such as ens1f0#0)`);
  }
};

/** A network namespace file, such as /run/netns/NAME: absolute, no ".." steps. */
export function netnsFlag(flag: string) {
  return (value: string): string => {
    if (!value.startsWith('/') || value.split('/').includes('..') || value.includes('\0') || value.length > 4096) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is not a network namespace file: expected an absolute path without "..", such as /run/netns/NAME`);
    }
    return value;
  };
}

export function intFlag(flag: string, min: number, max: number, expected = `an integer in ${min}–${max}`) {
  return (value: string): number => checkedInt(flag, value, min, max, expected);
}

/** An integer in min–max, or a UsageError naming `what` (the flag, or "FLAG item" for one
 *  item of a list) and the value, and saying what was `expected`. */
function checkedInt(what: string, value: string, min: number, max: number, expected: string): number {
  // "abc" or "0x10" is no number at all, "-1" or "70000" one out of range: said apart.
  if (!/^[+-]?\d+$/.test(value.trim())) throw new UsageError(`${what} ${JSON.stringify(value)} is not a whole number: expected ${expected}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${what} ${JSON.stringify(value)} is out of range: expected ${expected}`);
  }
  return n;
}

/** A file or directory path. An empty one would silently mean the current directory
 *  (path.resolve('') is the cwd), so it is refused; leaving the flag out gives its default. */
export function pathFlag(flag: string) {
  return (value: string): string => {
    if (value.trim() === '') throw new UsageError(`${flag} ${JSON.stringify(value)} is empty: give a file or directory path (an empty one would mean the current directory)`);
    if (value.includes('\0')) throw new UsageError(`${flag} ${JSON.stringify(value)} contains a NUL byte, which no path can hold`);
    return value;
  };
}

/** A data-plane node name (the config's `node`). */
export function nodeFlag(flag: string) {
  return (value: string): string => {
    if (!NODE_NAME.test(value)) throw new UsageError(`${flag} ${JSON.stringify(value)} is not a node name: expected 1–63 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    return value;
  };
}

export const vniFlag = (flag = '--vni') => intFlag(flag, 0, VNI_MAX);
export const portFlag = (flag: string) => intFlag(flag, 1, 65535);

/** The items of one comma-separated value; none at all (",", "") is a usage error: these
 *  lists are filters, and an empty filter would silently accept everything. */
function listItems(flag: string, value: string, what: string, repeatable = false): string[] {
  const all = value.split(',').map((s) => s.trim());
  const items = all.filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${flag} ${JSON.stringify(value)} is empty: expected one or more ${what}, comma-separated${repeatable ? ' or repeated' : ''}`);
  // "100,,200" or "100,": a typo there would otherwise be dropped unsaid.
  if (items.length !== all.length) throw new UsageError(`${flag} ${JSON.stringify(value)} has an empty item: expected ${what} separated by single commas`);
  return items;
}

/** Repeatable / comma-separated VNIs: --vni 100 --vni 200,300 */
export function vniListFlag(flag = '--vni') {
  const one = vniFlag(flag);
  return allowRepeats((value: string, prev: number[] | undefined): number[] => [...(prev ?? []), ...listItems(flag, value, 'VNIs', true).map(one)]);
}

export function ipFlag(flag: string) {
  return (value: string): string => {
    if (!parseIp(value)) throw new UsageError(`${flag} ${JSON.stringify(value)} is not an IPv4 or IPv6 address`);
    return value.trim();
  };
}

export function ipListFlag(flag: string) {
  const one = ipFlag(flag);
  return allowRepeats((value: string, prev: string[] | undefined): string[] => [...(prev ?? []), ...listItems(flag, value, 'addresses').map(one)]);
}

export function macFlag(flag: string) {
  return (value: string): string => {
    if (!parseMac(value)) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is not a MAC address: expected six hex bytes like 02:00:00:00:00:01`);
    }
    return value.trim();
  };
}

export function choiceFlag<T extends string>(flag: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is not one of: ${choices.join(', ')}`);
    }
    return value as T;
  };
}

export function tosFlag(flag = '--tos') {
  const n = intFlag(flag, 0, 255);
  return (value: string): number | 'inherit' => {
    if (value === 'inherit') return 'inherit';
    try {
      return n(value);
    } catch (e) {
      throw new UsageError(`${(e as Error).message} or "inherit"`);
    }
  };
}

/** "MIN-MAX" with 1 ≤ MIN ≤ MAX ≤ 65535 */
export function portRangeFlag(flag: string) {
  return (value: string): [number, number] => {
    const m = /^(\d+)-(\d+)$/.exec(value.trim());
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2]) : NaN;
    if (!(lo >= 1 && hi <= 65535 && lo <= hi)) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is invalid: expected MIN-MAX with 1 ≤ MIN ≤ MAX ≤ 65535, e.g. 49152-65535`);
    }
    return [lo, hi];
  };
}

/** Lists a list flag's parser made: a repeat adds to these, not to a default. */
const givenLists = new WeakSet<unknown[]>();

/** Parsers of flags that may be given more than once (lists that add up); every other
 *  flag with a value is refused when given twice (main.ts, refuseRepeats). */
const repeatableParsers = new WeakSet<object>();
export function allowRepeats<F extends (...a: never[]) => unknown>(parse: F): F {
  repeatableParsers.add(parse);
  return parse;
}
export const isRepeatable = (parse: unknown): boolean => typeof parse === 'function' && repeatableParsers.has(parse);

/** A list flag that may be repeated (`--sizes 64 --sizes 128`): the lists add up.
 *  commander hands the parser the option's default as the previous value of a first use;
 *  that one is replaced, not added to. */
function repeatable<T>(parse: (value: string) => T[]) {
  return allowRepeats((value: string, previous?: unknown): T[] => {
    const items = parse(value);
    const all = Array.isArray(previous) && givenLists.has(previous) ? [...(previous as T[]), ...items] : items;
    givenLists.add(all);
    return all;
  });
}

/** Comma-separated list of integers in a range: "64,128,imix" allows the given words too. */
export function intListFlag(flag: string, min: number, max: number, words: readonly string[] = []) {
  const expected = `integers in ${min}–${max}${words.length ? ` or ${words.join(', ')}` : ''}`;
  return repeatable((value) =>
    listItems(flag, value, expected, true).map((s) => (words.includes(s) ? s : checkedInt(`${flag} item`, s, min, max, expected))));
}

/** Comma-separated list of words from a set: "native,ts". */
export function choiceListFlag<T extends string>(flag: string, choices: readonly T[]) {
  const one = choiceFlag(flag, choices);
  return repeatable((value) => listItems(flag, value, `of ${choices.join(', ')}`, true).map(one));
}
