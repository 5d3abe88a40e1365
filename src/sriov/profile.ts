// hw-profiles: what each NIC family can do, one JSON file per family, each fact with the
// source that states it. This module validates them (with zod) and matches PCI
// vendor:device IDs to a family. Nearly every command reads them, and building the schema
// and validating six files is ~25 ms of a ~300 ms `vf list` or CNI ADD: the build
// validates the shipped files (scripts/validate-profiles.mjs writes their text and what
// validation made of each next to dist/sriov/profile.js), and a file whose text is one of
// those is taken as validated. Any other (an operator's, an edited one) is validated here.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from '../util/z.js';
import { badFile, invalid, notFound } from '../util/errors.js';
import type { HwProfile, OffloadTier } from './types.js';

/** The package's hw-profiles/. This file runs as dist/sriov/profile.js, or as src/sriov/profile.ts under vitest; both are two levels below the root. */
export const DEFAULT_PROFILES_DIR = fileURLToPath(new URL('../../hw-profiles/', import.meta.url));

const PCI_ID_RE = /^[0-9a-f]{4}:[0-9a-f]{4}$/;
// A source is a URL, a kernel or DPDK tree path (linux:…, dpdk:…) or a path in this
// repository, optionally followed by a note after whitespace.
const SOURCE_RE = /^(https:\/\/\S+|(linux|dpdk):[^\s/]\S*|[A-Za-z0-9_][\w.#-]*\/[\w./#-]*)(\s+\S.*)?$/s;

/** The schema, the fact paths and the optional sections, built on first use. */
function makeSchema() {
  // Every check on a field carries the same message, so an error reads
  // "limits.maxVfsPerPf: expected a positive integer, got "64"" whatever failed.
  const e = (msg: string) => ({ error: msg });
  const POS_INT = 'expected a positive integer';
  const posInt = () => z.number(e(POS_INT)).int(e(POS_INT)).positive(e(POS_INT));
  const BOOL = 'expected true or false';
  const bool = () => z.boolean(e(BOOL));
  const ID = 'expected a PCI ID "vvvv:dddd" in lower-case hex, like "8086:1572"';
  const ids = () =>
    z.array(z.string(e(ID)).regex(PCI_ID_RE, e(ID)), e('expected a non-empty array of PCI IDs like "8086:1572"'))
      .min(1, e('expected a non-empty array of PCI IDs like "8086:1572"'));
  const DRIVER = 'expected a kernel driver name as in /sys/bus/pci/drivers, like "i40e"';
  const driver = () => z.string(e(DRIVER)).regex(/^[A-Za-z0-9_.-]+$/, e(DRIVER));
  const SOURCE = 'expected a URL (https://…), linux:PATH, dpdk:PATH or a repository path, optionally followed by a note';
  const schema = z.strictObject({
    name: z.string(e('expected the file stem')).regex(/^[a-z0-9][a-z0-9_-]*$/, e('expected lower-case letters, digits, "_" or "-" (the file stem)')),
    description: z.string(e('expected a non-empty string')).trim().min(1, e('expected a non-empty string')),
    pf: z.strictObject({ ids: ids(), driver: driver(), afxdpZeroCopy: bool() }, e('expected an object {ids, driver, afxdpZeroCopy}')),
    vf: z.strictObject({ ids: ids(), driver: driver(), afxdpZeroCopy: bool() }, e('expected an object {ids, driver, afxdpZeroCopy}')),
    dpdk: z.strictObject({
      pmd: z.string(e('expected a DPDK driver name, like "net_iavf"')).regex(/^[a-z0-9_]+$/, e('expected a DPDK driver name, like "net_iavf"')),
      vfNeedsVfio: bool(),
      bifurcated: bool(),
    }, e('expected an object {pmd, vfNeedsVfio, bifurcated}')),
    limits: z.strictObject({
      maxVfsPerPf: posInt(),
      maxVfsPerDevice: posInt(),
      queuesPerVfDefault: posInt(),
      queuesPerVfMax: posInt(),
      maxPortsPerDevice: posInt().optional(), // only where a source states it
    }, e('expected an object {maxVfsPerPf, maxVfsPerDevice, queuesPerVfDefault, queuesPerVfMax, maxPortsPerDevice?}')),
    lineRateMbps: z.array(
      z.number(e('expected a port speed in Mbit/s (a positive integer)')).int(e('expected a port speed in Mbit/s (a positive integer)'))
        .positive(e('expected a port speed in Mbit/s (a positive integer)')),
      e('expected a non-empty array of port speeds in Mbit/s'),
    ).min(1, e('expected a non-empty array of port speeds in Mbit/s')),
    offloads: z.strictObject({
      outerIpv4Csum: bool(),
      outerUdpCsum: bool(),
      innerCsum: bool(),
      tso: bool(),
      innerRss: bool(),
      vniSteering: bool(),
      rteFlowEncapDecap: bool(),
      tcFlowerEncapDecap: bool(),
      switchdev: bool(),
    }, e('expected an object of offload flags')),
    vfSettings: z.strictObject({
      minTxRate: bool(),
      vlanProto8021ad: bool(),
      maxTxRateUpToLinkSpeed: bool(),
      minTxRateSumUpToLinkSpeed: bool(),
    }, e('expected an object {minTxRate, vlanProto8021ad, maxTxRateUpToLinkSpeed, minTxRateSumUpToLinkSpeed}')).optional(),
    tier: z.literal([1, 2, 3], e('expected tier 1, 2 or 3')),
    sources: z.record(
      z.string(),
      z.string(e(SOURCE)).regex(SOURCE_RE, e(SOURCE)),
      e('expected an object mapping field paths to sources'),
    ),
  });
  // Field paths that state a fact and so need an entry in `sources`: every field except
  // name, description and sources.
  const factPaths: readonly string[] = Object.entries(schema.shape).flatMap(([key, s]) => {
    if (key === 'name' || key === 'description' || key === 'sources') return [];
    const inner = s instanceof z.ZodOptional ? s.unwrap() : s;
    return inner instanceof z.ZodObject ? Object.keys(inner.shape).map((sub) => `${key}.${sub}`) : [key];
  });
  // Fact sections a profile may leave out (then their facts need no source).
  const optionalSections = new Set(Object.entries(schema.shape).filter(([, s]) => s instanceof z.ZodOptional).map(([k]) => k));
  return { schema, factPaths, optionalSections };
}

let built: ReturnType<typeof makeSchema> | undefined;
const schema = () => (built ??= makeSchema());
type Raw = z.infer<ReturnType<typeof makeSchema>['schema']>;

// The schema must describe HwProfile exactly (file is set by the loader, never by the JSON).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaIsHwProfile: Same<Raw, Omit<HwProfile, 'file'>> = true;
void schemaIsHwProfile;

/** Field paths that state a fact and so need an entry in `sources`: every field except name, description and sources. */
export function factPaths(): readonly string[] {
  return schema().factPaths;
}

export interface ProfileIssue {
  file: string; // as shown: relative to the working directory when inside it
  path: string; // field path, e.g. limits.maxVfsPerPf ('' for the whole file)
  message: string;
}


/** Checks one field cannot express alone. Run only once the shape is right. */
function crossChecks(p: Raw): Omit<ProfileIssue, 'file'>[] {
  const out: Omit<ProfileIssue, 'file'>[] = [];
  const dup = (list: readonly (string | number)[]) => list.filter((v, i) => list.indexOf(v) !== i);
  for (const side of ['pf', 'vf'] as const) {
    for (const d of new Set(dup(p[side].ids))) out.push({ path: `${side}.ids`, message: `"${d}" is listed twice` });
  }
  for (const d of new Set(dup(p.lineRateMbps))) out.push({ path: 'lineRateMbps', message: `${d} is listed twice` });
  if (p.limits.queuesPerVfDefault > p.limits.queuesPerVfMax) {
    out.push({ path: 'limits.queuesPerVfDefault', message: `expected at most queuesPerVfMax (${p.limits.queuesPerVfMax}), got ${p.limits.queuesPerVfDefault}` });
  }
  if (p.limits.maxVfsPerPf > p.limits.maxVfsPerDevice) {
    out.push({ path: 'limits.maxVfsPerPf', message: `expected at most maxVfsPerDevice (${p.limits.maxVfsPerDevice}), got ${p.limits.maxVfsPerPf}` });
  }
  const { factPaths: FACT_PATHS, optionalSections } = schema();
  for (const path of FACT_PATHS) {
    const section = path.split('.')[0]!;
    if (optionalSections.has(section) && (p as Record<string, unknown>)[section] === undefined) continue;
    // An optional fact left out (limits.maxPortsPerDevice where no source states it) needs none.
    if (path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], p) === undefined) continue;
    if (!(path in p.sources)) {
      out.push({ path: 'sources', message: `missing a source for "${path}": every fact needs the URL or path that states it` });
    }
  }
  for (const key of Object.keys(p.sources)) {
    if (!FACT_PATHS.includes(key)) {
      out.push({ path: 'sources', message: `"${key}" is not a fact field; expected one of ${FACT_PATHS.join(', ')}` });
    }
  }
  return out;
}

function fmtPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) {
    if (typeof k === 'number') s += `[${k}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(k))) s += (s ? '.' : '') + String(k);
    else s += `[${JSON.stringify(String(k))}]`;
  }
  return s;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'but the field is missing';
  const s = JSON.stringify(v);
  return `got ${s.length > 60 ? s.slice(0, 57) + '…' : s}`;
}

/** Fields of earlier profile files and what replaced them, for an operator's own profile. */
const RENAMED: Record<string, string> = {
  afxdpZeroCopy: 'unknown field: it became pf.afxdpZeroCopy and vf.afxdpZeroCopy (the PF and the VF drivers differ: i40e and ice have AF_XDP zero-copy, iavf has not)',
  'offloads.outerCsum': 'unknown field: it became offloads.outerIpv4Csum and offloads.outerUdpCsum (X710 and mlx5 offload the outer IPv4 checksum only)',
};

function schemaIssues(data: unknown, issues: readonly z.core.$ZodIssue[]): Omit<ProfileIssue, 'file'>[] {
  return issues.flatMap((i) => {
    if (i.code === 'unrecognized_keys') {
      const parent = fmtPath(i.path);
      return i.keys.map((k) => {
        const path = parent ? `${parent}.${k}` : k;
        return { path, message: k === 'file' && !parent ? 'unknown field (the loader sets file; remove it)' : RENAMED[path] ?? 'unknown field' };
      });
    }
    return [{ path: fmtPath(i.path), message: `${i.message}, ${describe(valueAt(data, i.path))}` }];
  });
}

/**
 * Offset of the first syntax error in text that JSON.parse rejected. V8 names a position
 * for some errors and not for others ("Unexpected token '}', ..."), so find it ourselves.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const lit = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const str = () => {
    i++; // the opening quote
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          i++;
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i, i + 4))) fail();
          i += 3;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') return void i++;
        fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') return void i++;
        fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (at) {
    if (typeof at === 'number') return at;
    throw at;
  }
  return text.length;
}

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(pos, text.length)));
  const line = before.split('\n').length;
  return { line, column: pos - (before.lastIndexOf('\n') + 1) + 1 };
}

function displayPath(file: string): string {
  // From / (a runtime's working directory), "work/x.json" reads as a broken absolute path.
  if (process.cwd() === '/') return file;
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/** Next to this module in dist/, written by scripts/validate-profiles.mjs at build. */
export const VALIDATED_FILE = './hw-profiles.validated.json';

/** This module's file as the list of validated profiles records it: a hash of its bytes
 *  (not its mtime: a copy, `cp -p` or an image layer, may keep that to the second only,
 *  or round it). node:crypto is loaded by the allocation store anyway. */
export function moduleStamp(): string {
  return createHash('sha256').update(readFileSync(fileURLToPath(import.meta.url))).digest('hex');
}

/** The build's validated shipped profiles, by their text: none under vitest (which runs
 *  src/), when the build failed (it leaves no list), or when this module is not the one
 *  the list was made with (a `tsc` alone since): every file is validated then. */
let validatedByText: Map<string, Omit<HwProfile, 'file'>> | undefined;
function validated(): Map<string, Omit<HwProfile, 'file'>> {
  if (validatedByText) return validatedByText;
  validatedByText = new Map();
  try {
    const built = JSON.parse(readFileSync(new URL(VALIDATED_FILE, import.meta.url), 'utf8')) as {
      module: string;
      profiles: { text: string; profile: Omit<HwProfile, 'file'> }[];
    };
    if (built.module === moduleStamp()) for (const v of built.profiles) validatedByText.set(v.text, v.profile);
  } catch {
    // not built, or unreadable: every file is validated
  }
  return validatedByText;
}

/** Validates one profile's text (or finds it among the build's); returns the profile or
 *  the list of what is wrong. */
export function parseProfile(text: string, file: string): { profile: HwProfile } | { issues: ProfileIssue[] } {
  const stem = basename(file, '.json');
  const known = validated().get(text);
  if (known && known.name === stem) return { profile: { ...structuredClone(known), file } };
  const shown = displayPath(file);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
    const { line, column } = lineCol(text, jsonErrorOffset(text));
    return { issues: [{ file: shown, path: '', message: `invalid JSON at line ${line} column ${column} (${msg})` }] };
  }
  const r = schema().schema.safeParse(data);
  if (!r.success) return { issues: schemaIssues(data, r.error.issues).map((i) => ({ file: shown, ...i })) };
  const issues = crossChecks(r.data).map((i) => ({ file: shown, ...i }));
  if (r.data.name !== stem) issues.unshift({ file: shown, path: 'name', message: `expected "${stem}" (the file stem), got ${JSON.stringify(r.data.name)}` });
  if (issues.length) return { issues };
  return { profile: { ...r.data, file } };
}

/** A broken profile is bad input, not a bad command line (kind 'bad-file', exit 1 at the
 *  CLI); `fix` says what to do besides mending the file, for where it was read from. */
function issuesError(issues: ProfileIssue[], dir: string, fix: string) {
  const lines = issues.map((i) => `${i.file}: ${i.path ? i.path + ': ' : ''}${i.message}`);
  return badFile(
    `${issues.length === 1 ? 'a hw-profile is invalid' : `${issues.length} problems in the hw-profiles`} (${fix}):\n  ` +
      lines.join('\n  '),
    { dir, issues },
  );
}

const MAX_PROFILE_BYTES = 1 << 20;

// Per directory list: its profiles, and what its files looked like when they were read
// (names, sizes, mtimes).
const cache = new Map<string, { profiles: HwProfile[]; sig: string }>();

/** Forgets loaded profiles (tests, or after the files changed). */
export function clearProfileCache(): void {
  cache.clear();
}

function signatureOf(dirs: string[]): string {
  return dirs.map((d) => {
    try {
      const abs = resolve(d);
      return readdirSync(abs).filter((n) => n.endsWith('.json')).sort().map((n) => {
        const st = statSync(join(abs, n));
        return `${n}:${st.size}:${st.mtimeMs}`;
      }).join('/');
    } catch (e) {
      return `!${(e as NodeJS.ErrnoException).code}`;
    }
  }).join('\n');
}

/** For a long-running process (vfplane cni serve): forgets the profiles loaded from
 *  directories whose files changed since, so that an edited profile counts from the next
 *  call on, as it does for a plugin run standalone. A few stats per directory. */
export function revalidateProfiles(): void {
  for (const [key, c] of [...cache]) if (c.sig !== signatureOf(key.split('\n'))) cache.delete(key);
}

/** The operator's own hw-profiles directory (env VFPLANE_PROFILES_DIR), or null. */
const extraProfilesDir = (): string | null => process.env.VFPLANE_PROFILES_DIR || null;

/**
 * Loads and validates every *.json in dir, sorted by name. Without dir: the shipped
 * profiles, plus those in $VFPLANE_PROFILES_DIR, where a profile of a shipped one's name
 * replaces it and any other adds a NIC family (an 82599, say). Throws a VfpError naming
 * each file, field and problem (kind 'bad-file'), or 'not-found' when a directory cannot
 * be read or (dir given) holds no profiles. Results are cached per directory list.
 */
export function loadProfiles(dir?: string): HwProfile[] {
  const extra = dir === undefined ? extraProfilesDir() : null;
  const dirs = dir !== undefined ? [dir] : [DEFAULT_PROFILES_DIR, ...(extra ? [extra] : [])];
  const key = dirs.map((d) => resolve(d)).join('\n');
  const hit = cache.get(key);
  if (hit) return hit.profiles;
  const sig = signatureOf(key.split('\n')); // before the reads: a change meanwhile is seen next time
  const byName = new Map<string, HwProfile>();
  const issues: ProfileIssue[] = [];
  for (const d of dirs) {
    const abs = resolve(d);
    const fix = d === extra ? 'check VFPLANE_PROFILES_DIR' : 'pass --profiles-dir DIR with the profile JSON files';
    let names: string[];
    let all: string[];
    try {
      all = readdirSync(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw notFound(`cannot read the hw-profiles directory ${d} (${code}); ${fix}`, { dir: d });
    }
    names = all.filter((n) => n.endsWith('.json')).sort();
    // x710.JSON would be skipped unsaid, its NIC then matched by no profile (or a shipped one).
    const misnamed = all.filter((x) => /\.json$/i.test(x) && !x.endsWith('.json')).sort();
    for (const n of misnamed) {
      issues.push({ file: displayPath(join(abs, n)), path: '', message: `is not read: hw-profiles end in .json, in lower case; rename it to ${n.slice(0, -5)}.json` });
    }
    if (names.length === 0 && !misnamed.length && d !== extra) throw notFound(`no hw-profiles (*.json) in ${d}; ${fix}`, { dir: d });
    for (const n of names) {
      const file = join(abs, n);
      let text: string;
      try {
        // A hw-profile is a few KiB: anything much larger is some other file, read by
        // every vfplane command (and CNI call) if let through.
        const size = statSync(file).size;
        if (size > MAX_PROFILE_BYTES) {
          issues.push({ file: displayPath(file), path: '', message: `is ${size} bytes, and a hw-profile is a few KiB (at most ${MAX_PROFILE_BYTES}): not a hw-profile; move it out of the directory` });
          continue;
        }
        text = readFileSync(file, 'utf8');
      } catch (err) {
        issues.push({ file: displayPath(file), path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? err}` });
        continue;
      }
      let r: ReturnType<typeof parseProfile>;
      try {
        r = parseProfile(text, file);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        // (The syntax-error finder and the value quoting recurse: thousands of nested
        // brackets exhaust the stack.)
        issues.push({ file: displayPath(file), path: '', message: 'is nested too deeply to read: a hw-profile is an object a few levels deep' });
        continue;
      }
      if ('issues' in r) issues.push(...r.issues);
      else byName.set(r.profile.name, r.profile); // a later directory's profile of the same name replaces it
    }
  }
  // (By code unit: the first localeCompare of a process loads ICU's collator, ~8 ms.)
  const profiles = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // A PF ID names one family; VF IDs may be shared (8086:1889 is x710's and e810's).
  // The shipped profiles claim their IDs first: a clash is then named in the operator's
  // file, which is the one to fix, whatever the names' order.
  const pfOwner = new Map<string, HwProfile>();
  const shipped = (p: HwProfile) => resolve(p.file!).startsWith(resolve(DEFAULT_PROFILES_DIR) + sep);
  for (const p of [...profiles].sort((a, b) => Number(shipped(b)) - Number(shipped(a)))) {
    for (const id of p.pf.ids) {
      const other = pfOwner.get(id);
      if (other) {
        issues.push({ file: displayPath(p.file!), path: 'pf.ids', message: `"${id}" is also a PF ID of ${other.name} (${displayPath(other.file!)}); a PF ID must name one family` });
      } else pfOwner.set(id, p);
    }
  }
  if (issues.length) {
    // Every command reads the operator's directory (pf list, sim create, the data plane),
    // and only `profile` takes --profiles-dir: the way out names what was read.
    const inExtra = extra !== null && issues.some((i) => resolve(i.file).startsWith(resolve(extra) + sep));
    const fix = dir !== undefined ? 'fix the file, or point --profiles-dir elsewhere'
      : inExtra ? `fix the file, or point VFPLANE_PROFILES_DIR (${extra}) elsewhere or unset it`
        : 'fix the file';
    throw issuesError(issues, dirs.join(' and '), fix);
  }
  cache.set(key, { profiles, sig });
  return profiles;
}

/** The profile called name, or a not-found error listing the known names. */
export function getProfile(name: string, dir?: string): HwProfile {
  // No profile has another shape (they are file stems): a path is a usage error, not a search.
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) {
    throw invalid(`${JSON.stringify(name)} is not a hw-profile name: expected lower-case letters, digits, "_" or "-" (\`vfplane profile list\` lists them)`, { name });
  }
  const profiles = loadProfiles(dir);
  const p = profiles.find((x) => x.name === name);
  if (!p) {
    throw notFound(`no hw-profile named ${JSON.stringify(name)}; known profiles: ${profiles.map((x) => x.name).join(', ')}`, {
      name, known: profiles.map((x) => x.name),
    });
  }
  return p;
}

/** "8086", "0x8086\n" (as sysfs has it) or "8086" upper-case → "8086:1572"; null when
 *  either is not 4 hex digits (a damaged sysfs file: that device matches no profile, and
 *  every other device is still read). */
function pciId(vendor: string, device: string): string | null {
  const h = (x: string) => String(x).trim().toLowerCase().replace(/^0x/, '');
  const v = h(vendor), d = h(device);
  return /^[0-9a-f]{4}$/.test(v) && /^[0-9a-f]{4}$/.test(d) ? `${v}:${d}` : null;
}

/** The profile whose pf.ids contain vendor:device, or null. */
export function matchPf(vendor: string, device: string, profiles: readonly HwProfile[]): HwProfile | null {
  const id = pciId(vendor, device);
  return id === null ? null : profiles.find((p) => p.pf.ids.includes(id)) ?? null;
}

/** Every profile whose vf.ids contain vendor:device (more than one for shared VF IDs). */
export function vfCandidates(vendor: string, device: string, profiles: readonly HwProfile[]): HwProfile[] {
  const id = pciId(vendor, device);
  return id === null ? [] : profiles.filter((p) => p.vf.ids.includes(id));
}

/**
 * The family of a VF whose DPDK PMD is bifurcated (mlx5: it runs on the kernel driver, and
 * a VF bound to vfio-pci is one it cannot use), or null. A shared VF ID (ConnectX
 * generations share 15b3:101e) counts when every family that lists it is so, or when the
 * PF's profile (pfProfileName) is.
 */
export function bifurcatedVf(vendor: string, device: string, profiles: readonly HwProfile[], pfProfileName?: string): HwProfile | null {
  const c = vfCandidates(vendor, device, profiles);
  const fams = c.filter((p) => p.name === pfProfileName).slice(0, 1);
  const among = fams.length ? fams : c;
  return among.length && among.every((p) => p.dpdk.bifurcated && !p.dpdk.vfNeedsVfio) ? among[0]! : null;
}

/**
 * The profile of a VF. Some VF IDs are shared: 8086:1889 is both x710's and e810's, and
 * 15b3:101e is a VF ID for several ConnectX generations. So the PF's profile decides when it lists the ID.
 * Without it, a shared ID is ambiguous and null is returned; match the PF first
 * (matchPf) and pass its name.
 */
export function matchVf(vendor: string, device: string, profiles: readonly HwProfile[], pfProfileName?: string): HwProfile | null {
  const c = vfCandidates(vendor, device, profiles);
  if (pfProfileName !== undefined) {
    const viaPf = c.find((p) => p.name === pfProfileName);
    if (viaPf) return viaPf;
  }
  return c.length === 1 ? c[0]! : null;
}

/** Whether a family's tier depends on its eswitch mode: hardware encap through tc flower
 *  only (runningTier). */
export function tierNeedsSwitchdev(p: HwProfile): boolean {
  return p.tier === 1 && !p.offloads.rteFlowEncapDecap && p.offloads.tcFlowerEncapDecap;
}

/**
 * The highest offload tier a NIC of this family allows as it runs. Hardware encap that
 * works through tc flower only (no shipped family: E810's tc flower matches and redirects
 * but has no encap/decap action; an operator's profile may) needs the eswitch in switchdev
 * mode; rte_flow encap (mlx5) does not depend on it. `switchdev`: whether the PF's eswitch
 * is in switchdev mode as pfEswitch reads it (its VFs have representors). A switch id on
 * the PF netdev is no sign of it: ice reports one in legacy mode too. `legacy`: the tier
 * is below the family's for that.
 */
export function runningTier(p: HwProfile, switchdev: boolean): { tier: OffloadTier; legacy: boolean } {
  const legacy = tierNeedsSwitchdev(p) && !switchdev;
  return { tier: legacy ? 2 : p.tier, legacy };
}
