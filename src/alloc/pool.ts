// Pools: named selectors over the node's VFs, in the spirit of the SR-IOV network device
// plugin's resource selectors (and read from its config file as well as from ours).
// Every given field must match; within a field any listed value may match.
import * as fs from 'node:fs';
import * as z from '../util/z.js';
import { parsePci, parseIfname, USERSPACE_DRIVERS } from '../sriov/pci.js';
import type { VfInfo } from '../sriov/types.js';
import { bifurcatedVf, loadProfiles, vfCandidates } from '../sriov/profile.js';
import type { VfPlace, VfRef } from '../sriov/discover.js';
import { badFile, invalid, notFound, systemError, VfpError } from '../util/errors.js';
import { jsonParseError } from '../util/json.js';
import { fieldsAt } from '../util/zod.js';

export interface PoolSelector {
  vendors?: string[]; // PCI vendor IDs, "8086"
  devices?: string[]; // PCI device IDs of the VF, "154c"
  drivers?: string[]; // bound driver, "iavf", "vfio-pci"
  pfNames?: string[]; // "ens1f0", "ens1f0#0-3", "ens1f0#0,2,5-7"
  rootDevices?: string[]; // PF PCI addresses, "0000:3b:00.0", "0000:3b:00.0#0-3"
  pciAddresses?: string[]; // VF PCI addresses (as the device plugin allows)
  numaNodes?: number[];
  isRdma?: boolean; // only VFs with an RDMA device (the device plugin's isRdma; false: any)
  /**
   * Alternatives, any of which may match (besides the fields above, which still apply).
   * The device plugin's newer config gives `selectors` as an array: each element
   * selects devices and the resource is their union, so that becomes anyOf.
   */
  anyOf?: PoolSelector[];
  /**
   * The device plugin's config gives a device to the first resource that selects it: a
   * resource's VFs are those none of the resources before it select. Their selectors,
   * with their names (for why a pool came out empty).
   */
  notIn?: { pool: string; selector: PoolSelector }[];
}

export interface Pool {
  name: string;
  selector: PoolSelector;
}

export const SELECTOR_FIELDS = ['vendors', 'devices', 'drivers', 'pfNames', 'rootDevices', 'pciAddresses', 'numaNodes'] as const;
/** Every field a selector may have: the lists, and isRdma. */
const SELECTOR_KEYS = [...SELECTOR_FIELDS, 'isRdma'] as const;

// ---------------------------------------------------------------------------------------
// pfNames entries

export interface PfNameSpec {
  pf: string;
  /** Inclusive VF index ranges; null when every VF of the PF is meant. */
  ranges: [number, number][] | null;
}

const MAX_VF_INDEX = 4095;

/** Parses `ens1f0`, `ens1f0#3`, `ens1f0#0-3`, `ens1f0#0,2,5-7`; the error text is what follows the value. */
function pfNameSpec(s: string): PfNameSpec | string {
  const hash = s.indexOf('#');
  const pf = hash < 0 ? s : s.slice(0, hash);
  try {
    parseIfname(pf);
  } catch {
    return `PF name ${JSON.stringify(pf)} is not a Linux interface name`;
  }
  if (hash < 0) return { pf, ranges: null };
  const ranges = vfRanges(s.slice(hash + 1));
  return typeof ranges === 'string' ? ranges : { pf, ranges };
}

/** The VF index ranges after a `#` (`3`, `0-3`, `0,2,5-7`); the error text when malformed. */
function vfRanges(rest: string): [number, number][] | string {
  if (rest === '') return 'nothing after #: expected VF indices like 0-3 or 0,2,5-7';
  const ranges: [number, number][] = [];
  for (const part of rest.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!m) return `${JSON.stringify(part)} is not a VF index or range (like 3 or 0-7)`;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return 'range end before start';
    if (b > MAX_VF_INDEX) return `VF index ${b} is beyond ${MAX_VF_INDEX}`;
    ranges.push([a, b]);
  }
  return ranges;
}

/** A rootDevices entry: the PF's address (lower case) and, after a `#` as the device
 *  plugin allows, the VF indices meant (null: all). */
function rootDeviceSpec(s: string): { pf: string; ranges: [number, number][] | null } | string {
  const hash = s.indexOf('#');
  const pf = (hash < 0 ? s : s.slice(0, hash)).toLowerCase();
  try {
    parsePci(pf);
  } catch {
    return 'not a PF PCI address: expected DDDD:BB:DD.F, like 0000:3b:00.0, optionally with VF indices after a # (0000:3b:00.0#0-3)';
  }
  if (hash < 0) return { pf, ranges: null };
  const ranges = vfRanges(s.slice(hash + 1));
  return typeof ranges === 'string' ? ranges : { pf, ranges };
}

const specCache = new Map<string, PfNameSpec>();

/** The parsed form of one pfNames entry (entries are validated by parsePoolSelector). */
export function parsePfName(s: string): PfNameSpec {
  let spec = specCache.get(s);
  if (!spec) {
    const r = pfNameSpec(s);
    if (typeof r === 'string') throw invalid(`pfNames entry ${JSON.stringify(s)}: ${r}`, { value: s });
    spec = r;
    if (specCache.size < 10_000) specCache.set(s, spec);
  }
  return spec;
}

// ---------------------------------------------------------------------------------------
// Parsing

const hexId = (what: string) =>
  z.string({ error: `expected a string of 4 hex digits (${what})` })
    .regex(/^(0x)?[0-9a-fA-F]{4}$/, `expected 4 hex digits (${what})`)
    .transform((s) => s.replace(/^0x/, '').toLowerCase());

const list = <T extends z.ZodType>(item: T) => z.array(item, { error: 'expected a list' });

const baseFields = {
  vendors: list(hexId('a PCI vendor ID, like 8086')).optional(),
  devices: list(hexId('a PCI device ID, like 154c')).optional(),
  drivers: list(z.string({ error: 'expected a driver name' }).regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a driver name, like iavf or vfio-pci')).optional(),
  pfNames: list(
    z.string({ error: 'expected a PF name, like ens1f0 or ens1f0#0-3' }).superRefine((s, ctx) => {
      const r = pfNameSpec(s);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    }),
  ).optional(),
  rootDevices: list(
    z.string({ error: 'expected a PF PCI address' }).superRefine((s, ctx) => {
      const r = rootDeviceSpec(s);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    }).transform((s) => s.toLowerCase()),
  ).optional(),
  pciAddresses: list(z.string({ error: 'expected a VF PCI address' }).superRefine(pciRefine('VF PCI address')).transform((s) => s.toLowerCase())).optional(),
  // The device plugin spells numbers as strings in places; take both.
  numaNodes: list(
    z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: 'expected a NUMA node number, like 0' })
      .pipe(z.number().int('expected a whole NUMA node number').min(0, 'expected a NUMA node number ≥ 0').max(1023, 'expected a NUMA node number ≤ 1023')),
  ).optional(),
  isRdma: z.boolean({ error: 'expected true or false' }).optional(),
};

function pciRefine(what: string) {
  return (s: string, ctx: z.RefinementCtx) => {
    try {
      parsePci(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a ${what}: expected DDDD:BB:DD.F, like 0000:3b:00.0` });
    }
  };
}

const plainSelector = z.strictObject(baseFields);
const selectorSchema = z.strictObject({ ...baseFields, anyOf: list(plainSelector).min(1, 'expected at least one alternative').optional() });

const poolsFileSchema = z.strictObject({
  pools: list(
    z.strictObject({
      name: z.string({ error: 'expected a pool name' }).regex(/^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,127}$/, 'expected a pool name: letters, digits, _ . / -'),
      selector: selectorSchema,
    }),
  ),
});

// The device plugin's selector fields that vfplane cannot evaluate. Ignoring one would
// quietly widen the pool, so they are refused unless they select nothing (false, []).
const DP_UNSUPPORTED = ['linkTypes', 'ddpProfiles', 'needVhostNet', 'vdpaType', 'pKeys', 'acpiIndexes', 'auxTypes'];

const dpSelector = z
  .looseObject(baseFields)
  .superRefine((obj, ctx) => {
    for (const [k, v] of Object.entries(obj)) {
      if (k in baseFields) continue;
      if (!DP_UNSUPPORTED.includes(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `unknown selector field (known: ${SELECTOR_KEYS.join(', ')})`, input: v });
        continue;
      }
      if (v === false || v === '' || (Array.isArray(v) && v.length === 0)) continue;
      // Every VF vfplane handles is Ethernet, so linkTypes naming ether selects them all.
      if (k === 'linkTypes' && Array.isArray(v) && v.some((t) => typeof t === 'string' && t.toLowerCase() === 'ether')) continue;
      ctx.addIssue({
        code: 'custom', path: [k], input: v,
        message: `vfplane does not support this device plugin selector (it supports ${SELECTOR_KEYS.join(', ')}); remove it or write a vfplane pools file`,
      });
    }
  })
  .transform((obj) => {
    const out: Record<string, unknown> = {};
    for (const k of SELECTOR_KEYS) if (obj[k] !== undefined) out[k] = obj[k];
    return out as PoolSelector;
  });

const dpFileSchema = z.looseObject({
  resourceList: list(
    // Item-level fields (resourcePrefix, excludeTopology, additionalInfo, ...) do not
    // change which VFs are chosen, so unknown ones are let through.
    z.looseObject({
      resourceName: z.string({ error: 'expected a resource name' }).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'expected a resource name: letters, digits, _ . -'),
      deviceType: z.literal('netDevice', {
        // Field names match in any case; values do not, for the device plugin either.
        error: (i) => (typeof i.input === 'string' && i.input.toLowerCase() === 'netdevice'
          ? 'expected "netDevice", spelled so (values are case-sensitive, as the device plugin reads them)'
          : 'vfplane allocates netDevice resources only (not accelerator or auxNetDevice)'),
      }).optional(),
      // Checked afterwards with the schema its shape calls for (a union would hide why
      // the object failed behind "matches neither").
      selectors: z.union([z.looseObject({}), z.array(z.unknown())], { error: 'expected a selector object or a list of them' }),
    }),
  ),
});

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** One line per problem: `where: path: "value": message`, or `where: path: unknown field "x" (…)`. */
function zodMessage(where: string, err: z.ZodError, known: readonly string[], prefix: readonly PropertyKey[], schema?: z.ZodType): string {
  const lines = err.issues.map((i) => {
    const path = formatPath([...prefix, ...i.path]);
    const at = path ? `${where}: ${path}` : where;
    if (i.code === 'unrecognized_keys') {
      // The fields of the object the unknown one sits in, not of the file's top level.
      const here = (schema && fieldsAt(schema, i.path)) ?? known;
      return `${at}: unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => JSON.stringify(k)).join(', ')} (known: ${here.join(', ')})`;
    }
    if (i.input === undefined) return `${at}: missing: ${i.message}`;
    const shown = JSON.stringify(i.input);
    return `${at}: ${shown !== undefined && shown.length <= 80 ? shown : typeof i.input}: ${i.message}`;
  });
  return lines.join('; ');
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, where: string, known: readonly string[], prefix: readonly PropertyKey[] = []): T {
  const r = schema.safeParse(value, { reportInput: true });
  if (!r.success) {
    throw invalid(zodMessage(where, r.error, known, prefix, schema), {
      issues: r.error.issues.map((i) => ({ path: formatPath([...prefix, ...i.path]), message: i.message })),
    });
  }
  return r.data;
}

/** Drops empty lists (the device plugin reads an empty list as "any") and undefined fields. */
function normalize(sel: PoolSelector): PoolSelector {
  const out: PoolSelector = {};
  for (const k of SELECTOR_FIELDS) {
    const v = sel[k];
    if (v !== undefined && v.length > 0) (out as Record<string, unknown>)[k] = [...new Set(v as unknown[])];
  }
  if (sel.isRdma) out.isRdma = true; // false selects any VF, as the device plugin reads it
  if (sel.anyOf) out.anyOf = sel.anyOf.map(normalize);
  if (sel.notIn?.length) out.notIn = sel.notIn.map((n) => ({ pool: n.pool, selector: normalize(n.selector) }));
  return out;
}

export function parsePoolSelector(value: unknown, where: string): PoolSelector {
  return normalize(parseWith(selectorSchema, value, where, [...SELECTOR_KEYS, 'anyOf']) as PoolSelector);
}

/** Pools from a JSON file in vfplane's format or the SR-IOV network device plugin's. */
/** The largest pool file read: thousands of pools fit; /dev/zero does not. */
export const MAX_POOL_FILE = 1 << 20;

export function loadPools(file: string): Pool[] {
  let text: string;
  try {
    text = readRegularFile(file, MAX_POOL_FILE);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw notFound(`pool file ${file} does not exist; write one ({"pools":[{"name":"fast","selector":{"drivers":["iavf"]}}]}) or pass another path`, { file });
    throw systemError(`cannot read pool file ${file}: ${(e as Error).message}`, { file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw badFile(`${file}: not valid JSON: ${jsonParseError(e)}`, { file });
  }
  // What the file says wrong is bad input in a file (kind 'bad-file': exit 1 at the CLI,
  // INVALID_CONFIG for vfplane-cni), as a hw-profile's or a data-plane config's is.
  try {
    return parsePools(json, file);
  } catch (e) {
    if (e instanceof VfpError && e.kind === 'invalid') throw badFile(e.message, { ...e.details, file });
    throw e;
  }
}

/** A regular file's text, at most MAX bytes (a path a network config named: a FIFO
 *  would block the call, a device like /dev/zero would fill memory). Symlinks are
 *  followed: a ConfigMap's files are symlinks. */
function readRegularFile(file: string, max: number): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > max) throw new Error(`${st.size} bytes, over the ${max} a pool file may have`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const got = fs.readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

const DP_TOP_FIELDS = ['resourceList'];
const DP_ITEM_FIELDS = ['resourceName', 'resourcePrefix', 'deviceType', 'excludeTopology', 'selectors', 'additionalInfo'];

/**
 * The device plugin's config as its Go decoder reads it: field names in any case
 * ("IsRdma", "PfNames", as the sriov-network-operator has written them) are the known
 * fields, and null is unset. One field in two spellings is refused, as vfplane-cni
 * refuses it in a network config: which one counts is not obvious.
 */
function goFields(json: object, where: string): unknown {
  const fold = (obj: unknown, known: readonly string[], path: string): unknown => {
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return obj;
    const byLower = new Map(known.map((k) => [k.toLowerCase(), k]));
    const out: Record<string, unknown> = {};
    const from = new Map<string, string>();
    for (const [k, v] of Object.entries(obj)) {
      const as = byLower.get(k.toLowerCase()) ?? k;
      const had = from.get(as);
      if (had !== undefined) throw invalid(`${where}: ${path}${had} and ${k} name one field (the device plugin reads field names in any case): keep ${as}`);
      from.set(as, k);
      if (v !== null) out[as] = v;
    }
    return out;
  };
  const top = fold(json, DP_TOP_FIELDS, '') as Record<string, unknown>;
  if (Array.isArray(top.resourceList)) {
    top.resourceList = top.resourceList.map((item, i) => {
      const at = `resourceList[${i}].`;
      const r = fold(item, DP_ITEM_FIELDS, at) as Record<string, unknown>;
      if (typeof r !== 'object' || r === null) return r;
      const known = [...SELECTOR_KEYS, ...DP_UNSUPPORTED];
      if (Array.isArray(r.selectors)) r.selectors = r.selectors.map((x, j) => fold(x, known, `${at}selectors[${j}].`));
      else if (r.selectors !== undefined) r.selectors = fold(r.selectors, known, `${at}selectors.`);
      return r;
    });
  }
  return top;
}

/** The body of loadPools, for configs that arrive some other way than a file (CNI config, tests). */
export function parsePools(json: unknown, where: string): Pool[] {
  let pools: Pool[];
  if (typeof json === 'object' && json !== null && 'pools' in json) {
    const f = parseWith(poolsFileSchema, json, where, ['pools']);
    // No criterion at all would take any VF of the node: said, not assumed (the device
    // plugin's own config keeps its meaning, where an empty selector takes every device).
    const empty = (x: object) => Object.entries(x).every(([k, v]) => v === undefined || (k === 'isRdma' && v === false));
    const bad = f.pools.flatMap((p, i) => [
      ...(empty(p.selector) ? [`pools[${i}].selector: {}: a selector with no criteria would take any VF of the node: name at least one (vendors, devices, drivers, pfNames, rootDevices, pciAddresses, numaNodes, isRdma), e.g. {"drivers":["iavf"]}`] : []),
      ...(p.selector.anyOf ?? []).flatMap((alt, j) => (empty(alt) ? [`pools[${i}].selector.anyOf[${j}]: {}: an alternative with no criteria would take any VF of the node: name at least one, or drop it`] : [])),
    ]);
    if (bad.length) throw invalid(bad.map((b) => `${where}: ${b}`).join('; '), { file: where });
    pools = f.pools.map((p) => ({ name: p.name, selector: normalize(p.selector as PoolSelector) }));
  } else if (typeof json === 'object' && json !== null && !Array.isArray(json) && Object.keys(json).some((k) => k.toLowerCase() === 'resourcelist')) {
    const f = parseWith(dpFileSchema, goFields(json, where), where, [...SELECTOR_KEYS, ...DP_UNSUPPORTED]);
    const known = [...SELECTOR_KEYS, ...DP_UNSUPPORTED];
    const plain: Pool[] = f.resourceList.map((r, i) => {
      const at = ['resourceList', i, 'selectors'];
      const sels = Array.isArray(r.selectors)
        ? parseWith(list(dpSelector).min(1, 'expected at least one selector object'), r.selectors, where, known, at)
        : [parseWith(dpSelector, r.selectors, where, known, at)];
      const selector: PoolSelector = sels.length === 1 ? sels[0]! : { anyOf: sels };
      return { name: r.resourceName, selector: normalize(selector) };
    });
    // The device plugin gives each device to the first resource that selects it
    // (specific resources first, a catch-all last): so does a pool read from its file.
    pools = plain.map((p, i) => (i === 0 ? p : { name: p.name, selector: { ...p.selector, notIn: plain.slice(0, i).map((e) => ({ pool: e.name, selector: e.selector })) } }));
  } else {
    throw invalid(
      `${where}: expected vfplane's pools file {"pools":[{"name":…,"selector":{…}}]} or the SR-IOV network device plugin's config {"resourceList":[…]}`,
    );
  }
  const seen = new Map<string, number>();
  pools.forEach((p, i) => {
    const prev = seen.get(p.name);
    if (prev !== undefined) throw invalid(`${where}: pool name ${JSON.stringify(p.name)} appears twice (entries ${prev} and ${i}); pool names must be unique`);
    seen.set(p.name, i);
  });
  return pools;
}

export function findPool(pools: Pool[], name: string, where = 'the pool file'): Pool {
  const p = pools.find((x) => x.name === name);
  if (!p) throw notFound(`no pool named ${JSON.stringify(name)} in ${where}; it has ${pools.map((x) => JSON.stringify(x.name)).join(', ') || 'no pools'}`);
  return p;
}

// ---------------------------------------------------------------------------------------
// Matching

function inRanges(i: number, ranges: [number, number][]): boolean {
  for (const [a, b] of ranges) if (i >= a && i <= b) return true;
  return false;
}

function matchFields(vf: VfPlace, sel: PoolSelector): boolean {
  if (sel.vendors && !sel.vendors.includes(vf.vendor.toLowerCase())) return false;
  if (sel.devices && !sel.devices.includes(vf.device.toLowerCase())) return false;
  if (sel.drivers && (vf.driver === null || !sel.drivers.includes(vf.driver))) return false;
  if (sel.rootDevices) {
    const pf = vf.pf.toLowerCase();
    const ok = sel.rootDevices.some((s) => {
      const spec = rootDeviceSpec(s);
      return typeof spec !== 'string' && spec.pf === pf && (spec.ranges === null || inRanges(vf.index, spec.ranges));
    });
    if (!ok) return false;
  }
  if (sel.pciAddresses && !sel.pciAddresses.includes(vf.pci.toLowerCase())) return false;
  if (sel.numaNodes && !sel.numaNodes.includes(vf.numaNode)) return false;
  if (sel.isRdma && !vf.rdmaDevice) return false;
  if (sel.pfNames) {
    if (vf.pfNetdev === null) return false;
    const ok = sel.pfNames.some((s) => {
      const spec = parsePfName(s);
      return spec.pf === vf.pfNetdev && (spec.ranges === null || inRanges(vf.index, spec.ranges));
    });
    if (!ok) return false;
  }
  return true;
}

export function matchVf(vf: VfPlace, sel: PoolSelector): boolean {
  if (!matchFields(vf, sel)) return false;
  if (sel.anyOf !== undefined && !sel.anyOf.some((alt) => matchVf(vf, alt))) return false;
  return sel.notIn === undefined || !sel.notIn.some((n) => matchVf(vf, n.selector));
}

/**
 * Why no VF of this node matches a selector: the criteria that no VF here meets, each
 * with what the node has instead (a config shared by nodes with other NICs, a PF renamed,
 * VFs bound to another driver); or, when each criterion alone is met, that no VF meets
 * them all. For a selector with anyOf, its fields are judged and the alternatives named.
 */
export function whyNoMatch(vfs: readonly VfInfo[], sel: PoolSelector): string {
  if (vfs.length === 0) return 'this node has no VFs; create them with `vfplane pf set-numvfs PF N`';
  const uniq = (xs: (string | number | null)[]) => [...new Set(xs.map((x) => (x === null ? 'none' : String(x))))].sort().join(', ');
  const have: Record<(typeof SELECTOR_FIELDS)[number], () => string> = {
    vendors: () => `VFs here have vendor ${uniq(vfs.map((v) => v.vendor.toLowerCase()))}`,
    devices: () => `VFs here have device ID ${uniq(vfs.map((v) => v.device.toLowerCase()))}`,
    drivers: () => `VFs here are bound to ${uniq(vfs.map((v) => v.driver))}`,
    pfNames: () => `this node's PFs with VFs are ${uniq(vfs.map((v) => v.pfNetdev))}`,
    rootDevices: () => `this node's PFs with VFs are ${uniq(vfs.map((v) => v.pf))}`,
    pciAddresses: () => `no VF here has any of those addresses (${vfs.length} VFs, ${vfs[0]!.pci} first)`,
    numaNodes: () => `VFs here are on NUMA node ${uniq(vfs.map((v) => v.numaNode))}`,
  };
  const unmet: string[] = [];
  for (const f of SELECTOR_FIELDS) {
    if (sel[f] === undefined) continue;
    if (vfs.some((vf) => matchFields(vf, { [f]: sel[f] } as PoolSelector))) continue;
    unmet.push(`${f} ${JSON.stringify(sel[f])} matches none: ${have[f]()}`);
  }
  if (sel.isRdma && !vfs.some((vf) => vf.rdmaDevice)) {
    unmet.push('isRdma true matches none: no VF here has an RDMA device (infiniband/ under its PCI device: a ConnectX VF on mlx5_core has one once mlx5_ib is loaded)');
  }
  if (unmet.length) return unmet.join('; ');
  if (sel.anyOf && vfs.filter((vf) => matchFields(vf, sel)).length > 0 && !vfs.some((vf) => matchVf(vf, { ...sel, notIn: undefined }))) {
    return `no VF that the other criteria select matches any of its ${sel.anyOf.length} anyOf alternatives`;
  }
  const selected = vfs.filter((vf) => matchVf(vf, { ...sel, notIn: undefined }));
  if (selected.length && sel.notIn) {
    const first = [...new Set(selected.flatMap((vf) => sel.notIn!.filter((n) => matchVf(vf, n.selector)).slice(0, 1).map((n) => n.pool)))];
    return `the ${selected.length} VF${selected.length === 1 ? '' : 's'} it selects ${selected.length === 1 ? 'is' : 'are'} selected first by ${first.length === 1 ? 'resource' : 'resources'} ${first.map((p) => JSON.stringify(p)).join(', ')}, earlier in the file: as the SR-IOV device plugin does, a device goes to the first resource that selects it (narrow the earlier selector, or put this resource first)`;
  }
  return `each criterion matches some VF here, but no VF matches them all (${vfs.length} VFs; see \`vfplane vf list\`)`;
}

/** VFs in a pool, in discovery order (the order allocation tries them). */
export function poolVfs(vfs: readonly VfInfo[], sel: PoolSelector): VfInfo[] {
  return vfs.filter((vf) => matchVf(vf, sel));
}

/** Drivers that leave a VF without a netdev, for userspace (DPDK) I/O (sriov/pci.ts). */
export { USERSPACE_DRIVERS };

/**
 * How a VF can be handed to a pod: its netdev moved ('kernel', so the netdev must be in
 * the host namespace), or its PCI device given to userspace ('dpdk'); null when neither
 * (no driver, or the netdev is somewhere else).
 */
export function handOverMode(vf: VfInfo): 'kernel' | 'dpdk' | null {
  // A userspace-bound VF whose VFIO group a process has open is that process's.
  if (vf.driver && USERSPACE_DRIVERS.has(vf.driver)) return vf.vfioOpenBy ? null : 'dpdk';
  if (vf.driver && vf.netdev) return 'kernel';
  return null;
}

/**
 * Whether a VF is nobody's to give: it cannot be handed over (no driver, or its netdev is
 * not in the host namespace) and no allocation explains that. `isHeld` says whether the
 * allocation store gives a PCI address to someone; it is asked only about a VF that
 * cannot be handed over.
 */
export function isUnusable(vf: VfInfo, isHeld: (pci: string) => boolean): boolean {
  return handOverMode(vf) === null && !isHeld(vf.pci);
}

/**
 * A pool's VFs on this node: those its selector matches, and of them the ones nobody can
 * be given (isUnusable) and the number free to allocate. `held` is the PCI addresses the
 * allocation store gives to someone.
 */
export function poolView(vfs: readonly VfInfo[], selector: PoolSelector, held: ReadonlySet<string>): { matched: VfInfo[]; unusable: VfInfo[]; candidates: VfInfo[]; free: number } {
  const matched = poolVfs(vfs, selector);
  const unusable = matched.filter((v) => isUnusable(v, (pci) => held.has(pci)));
  const candidates = matched.filter((v) => !unusable.includes(v));
  return { matched, unusable, candidates, free: candidates.filter((v) => !held.has(v.pci)).length };
}

/**
 * Up to WANT VFs of a pool that can be given now (matched, nobody's in HELD, handed over
 * as poolView's candidates are), in discovery order, the order allocation tries them:
 * what a pool ADD allocates from. Only those are read in full; the others as far as the
 * selector and HELD need (vfRefs). Empty when none is free now: poolView over the whole
 * list then says why.
 */
export function freeInPool(refs: readonly VfRef[], selector: PoolSelector, held: ReadonlySet<string>, want: number): VfInfo[] {
  const out: VfInfo[] = [];
  for (const ref of refs) {
    if (out.length >= want) break;
    // The selector first: a pfNames range decides from what is known without a read.
    if (!matchVf(ref, selector) || !ref.present || held.has(ref.pci)) continue;
    const vf = ref.info();
    if (vf && handOverMode(vf) !== null) out.push(vf);
  }
  return out;
}

/** Why a pool whose VFs all match can hand none over, VF by VF (three named at most). */
export function whyUnusable(pool: string, unusable: readonly VfInfo[], treeOnly = false): string {
  return `pool ${JSON.stringify(pool)}: ${unusable.length} VF${unusable.length === 1 ? '' : 's'} match${unusable.length === 1 ? 'es' : ''}, none usable: ${unusableList(unusable)}; ${unusableFix(unusable, treeOnly)}`;
}

/** The VFs isUnusable found, each with why (three named at most). */
export function unusableList(unusable: readonly VfInfo[]): string {
  const why = unusable.slice(0, 3).map((v) => `${v.pci} ${notHandedOver(v)}`);
  if (unusable.length > 3) why.push(`${unusable.length - 3} more`);
  return why.join('; ');
}

/** The store's "no free VF" for a pool, with the pool's VFs that match but cannot be
 *  given (the store counts only the candidates it was offered): a VF an operator expects
 *  free is said, and why not. The error itself when there are none. */
export function exhaustedBesides(e: VfpError, pool: string, unusable: readonly VfInfo[], treeOnly = false): VfpError {
  if (e.details?.reason !== 'exhausted' || unusable.length === 0) return e;
  const fix = unusable.length === 1 ? unusableFixFor(unusable[0]!, treeOnly) : unusableFix(unusable, treeOnly);
  return new VfpError(e.kind, `${e.message}; besides, ${unusable.length} more of pool ${JSON.stringify(pool)} cannot be given: ${unusableList(unusable)}; ${fix}`, { ...e.details, unusable: unusable.length });
}

/** Whether VF's family is bifurcated (ConnectX: DPDK's mlx5 PMD runs on mlx5_core, and
 *  binding the VF to vfio-pci takes it from DPDK, refused without --force): true when
 *  every hw-profile its IDs match is, false when none is, null when they disagree or
 *  none matches (or the profiles do not load: said where they are loaded). */
export function vfIsBifurcated(v: Pick<VfInfo, 'vendor' | 'device'>): boolean | null {
  let profiles: ReturnType<typeof loadProfiles>;
  try {
    profiles = loadProfiles();
  } catch {
    return null; // a broken profile directory is said where profiles are the subject
  }
  const c = vfCandidates(v.vendor, v.device, profiles);
  if (c.length === 0) return null;
  return bifurcatedVf(v.vendor, v.device, profiles) ? true : c.some((p) => p.dpdk.bifurcated) ? null : false;
}

/** How to bind a VF with no driver, for its family: a bifurcated one's DPDK runs on its
 *  kernel driver, so vfio-pci is no way for it. */
export const unboundFix = (pci: string, bifurcated: boolean | null) =>
  bifurcated ? `bind it with \`vfplane vf bind ${pci} --driver kernel\` (DPDK too runs on its kernel driver, mlx5_core)` : `bind it with \`vfplane vf bind ${pci} --driver kernel|vfio-pci\``;

/** What to do about such VFs, for the kinds there are: advice for one kind is harmful
 *  for another (rebinding a VF a DPDK application has open pulls it from under it). */
export function unusableFix(unusable: readonly VfInfo[], treeOnly = false): string {
  if (treeOnly) {
    const kinds = [...new Set(unusable.filter((v) => v.driver && !USERSPACE_DRIVERS.has(v.driver)).map(vfIsBifurcated))];
    return treeOnlyFix('PCI', kinds.length === 1 ? kinds[0]! : null);
  }
  const fix: string[] = [];
  const unbound = unusable.filter((v) => !v.driver);
  if (unbound.length) fix.push(`${unboundFix('PCI', unbound.every((v) => vfIsBifurcated(v) === true)).replace(/^bind it/, 'bind one with no driver')}`);
  if (unusable.some((v) => v.driver && !v.vfioOpenBy)) fix.push('find who has the netdevs of those bound to a kernel driver, or take them back with `vfplane vf bind PCI --driver kernel --force` (their netdevs there go, new ones come up here)');
  if (unusable.some((v) => v.vfioOpenBy)) fix.push('those whose VFIO group a process has open are that process\'s: stop it (a DPDK application vfplane did not give them to), or let the pool select other VFs');
  return fix.join('; ');
}

/** unusableFix for one VF, named (`vf show`): the same advice, worded for it. */
export function unusableFixFor(v: VfInfo, treeOnly = false): string {
  if (treeOnly && v.driver && !USERSPACE_DRIVERS.has(v.driver)) return treeOnlyFix(v.pci, vfIsBifurcated(v));
  if (!v.driver) return unboundFix(v.pci, vfIsBifurcated(v));
  if (v.vfioOpenBy) return 'it is that process\'s: stop it (a DPDK application vfplane did not give it to), or use another VF';
  return `find who has its netdev, or take it back with \`vfplane vf bind ${v.pci} --driver kernel --force\` (its netdev there goes, a new one comes up here)`;
}

/** Why handOverMode finds no way to hand a VF over, as the rest of a sentence about it. */
export function notHandedOver(v: VfInfo): string {
  if (v.vfioOpenBy) return `is bound to ${v.driver} and its VFIO group ${v.vfioDevice} is open in process ${v.vfioOpenBy.pid} (${v.vfioOpenBy.comm}): a DPDK application vfplane did not give it to uses it`;
  return v.driver ? `is bound to ${v.driver} with no netdev in the host namespace` : 'is bound to no driver';
}

/** What to do with a kernel-bound VF (PCI) of a simulated NIC made without netdevs. A
 *  bifurcated family's VF (ConnectX) is DPDK's only on its kernel driver, with a netdev
 *  (binding it to vfio-pci is refused without --force): only a simulator with netdevs
 *  makes it usable. BIFURCATED null: the family is not known (or the VFs named are of
 *  both kinds), both ways are said; not given: not bifurcated, as before families were told. */
export const treeOnlyFix = (pci = 'PCI', bifurcated: boolean | null = false) => {
  const why = 'this simulated NIC was made without netdevs (`sim create --no-netdevs`), so a VF bound to a kernel driver has none to hand over';
  const remake = 'make the simulator again with netdevs (`vfplane sim destroy`, then `vfplane sim create` without --no-netdevs)';
  const vfio = `bind it to vfio-pci (\`vfplane vf bind ${pci} --driver vfio-pci\`) to allocate it`;
  if (bifurcated === true) return `${why}, and its family is bifurcated (DPDK's mlx5 PMD runs on mlx5_core, through the VF's netdev and RDMA device; vfio-pci is no way for it): ${remake}`;
  if (bifurcated === false) return `${why}: ${vfio}, or make the simulator with netdevs`;
  return `${why}: ${vfio} (not a bifurcated family's VF, ConnectX on mlx5_core: DPDK runs on its kernel driver), or ${remake}`;
};

type VfCount = number | readonly Pick<VfInfo, 'index'>[];

/**
 * Refuses pfNames ranges that reach past the PF's VFs (a typo that would otherwise just
 * shrink the pool). `vfsByPf` maps PF netdev names to their VF count or their VFs; PFs
 * not on this node are not checked, since one config may serve nodes with other NICs.
 */
export function checkSelectorAgainst(sel: PoolSelector, vfsByPf: ReadonlyMap<string, VfCount> | Readonly<Record<string, VfCount>>, where = 'pool selector'): void {
  const lookup = (pf: string): VfCount | undefined =>
    vfsByPf instanceof Map ? vfsByPf.get(pf) : Object.hasOwn(vfsByPf, pf) ? (vfsByPf as Record<string, VfCount>)[pf] : undefined;
  const check = (s: PoolSelector, at: string) => {
    const ranged = (field: 'pfNames' | 'rootDevices', entry: string, i: number, spec: { pf: string; ranges: [number, number][] | null }) => {
      if (!spec.ranges) return;
      const c = lookup(spec.pf);
      if (c === undefined) return;
      const count = typeof c === 'number' ? c : c.reduce((m, v) => Math.max(m, v.index + 1), 0);
      const maxAsked = Math.max(...spec.ranges.map((r) => r[1]));
      if (maxAsked >= count) {
        const has = count === 0 ? 'has no VFs' : `has ${count} VF${count === 1 ? '' : 's'} (indices 0–${count - 1})`;
        throw invalid(`${where}: ${at}${field}[${i}]: ${JSON.stringify(entry)}: VF index out of range: ${field === 'rootDevices' ? 'PF ' : ''}${spec.pf} ${has}; fix the range or create more VFs`, {
          entry, pf: spec.pf, vfCount: count,
        });
      }
    };
    (s.pfNames ?? []).forEach((entry, i) => ranged('pfNames', entry, i, parsePfName(entry)));
    // A rootDevices range past the PF's VFs is the same typo (helper-88: it gave a smaller pool).
    (s.rootDevices ?? []).forEach((entry, i) => {
      const spec = rootDeviceSpec(entry);
      if (typeof spec !== 'string') ranged('rootDevices', entry, i, spec);
    });
    s.anyOf?.forEach((alt, j) => check(alt, `${at}anyOf[${j}].`));
  };
  check(sel, '');
}

/** PF netdev name, and PF PCI address, → VF count, from a VF list, for
 *  checkSelectorAgainst (a netdev name never has a ':', an address always). */
export function vfCountsByPf(vfs: readonly VfInfo[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const vf of vfs) {
    for (const k of [vf.pfNetdev, vf.pf.toLowerCase()]) if (k !== null) m.set(k, Math.max(m.get(k) ?? 0, vf.index + 1));
  }
  return m;
}
