// The network configuration on stdin: decoded (code 6), version-checked (code 1) and
// validated (code 7, naming the field and the value), then reduced to the values the
// commands act on. Unknown top-level keys are accepted, as CNI configs carry extras
// (Multus adds pciBusID, runtimes add theirs); our own nested objects are strict.
// This module loads zod, so main imports it only after VERSION has been ruled out.
import * as z from '../util/z.js';
import { likelyTypo, withGuesses } from '../util/typo.js';
import { fieldsAt } from '../util/zod.js';
import { isIP } from 'node:net';
import { isPci } from '../sriov/pci.js';
import { parseMac } from '../util/addr.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { MAX_TX_RATE } from '../sriov/types.js';
import { parsePrevResult, type CniResult, type CniDns } from './result.js';
import { CniError, ERR, isSupportedVersion, SUPPORTED_VERSIONS, type CniArgs, type CniVersion } from './spec.js';
import { jsonParseError, nestedDeeperThan } from '../util/json.js';

export interface VxlanConf {
  vni: number; // 0–16777215
  group?: string; // multicast group for BUM traffic
  remote?: string; // a single remote VTEP (unicast)
  local?: string; // local VTEP address
  port?: number; // UDP destination port (IANA 4789)
  dev?: string; // underlay interface
  ttl?: number;
  learning?: boolean;
  socket?: string; // the data plane's control socket; <stateDir>/dataplane.sock by default
}

export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** Top-level deviceID, as Multus injects it from the device plugin's allocation. */
  deviceID?: string;
  runtimeConfig: { deviceID?: string; mac?: string; CNIDeviceInfoFile?: string; [key: string]: unknown };
  pool?: string;
  vlan?: number;
  vlanQoS?: number;
  vlanProto?: '802.1Q' | '802.1ad';
  mac?: string;
  spoofchk?: 'on' | 'off';
  trust?: 'on' | 'off';
  link_state?: 'auto' | 'enable' | 'disable';
  min_tx_rate?: number; // Mbit/s, 0 = no limit
  max_tx_rate?: number;
  mtu?: number;
  ipam?: { type: string; [key: string]: unknown };
  dns?: CniDns;
  logLevel?: LogLevel;
  logFile?: string;
  vxlan?: VxlanConf;
  sysfsRoot?: string;
  stateDir?: string;
  poolsFile?: string;
  args?: Record<string, unknown>;
  /** The runtime's prevResult (CHECK, DEL, chained ADD), parsed. */
  prevResult?: CniResult;
  /** GC: the attachments the runtime still knows. Spec 1.1.0's text names the key
   *  cni.dev/attachments; the spec's master and libcni (which sends both) name it
   *  cni.dev/valid-attachments. Both are read: an attachment listed in either is kept.
   *  null is an empty list (libcni sends its nil slice so); neither key, no GC at all. */
  'cni.dev/valid-attachments'?: ValidAttachment[] | null;
  'cni.dev/attachments'?: ValidAttachment[] | null;
  /** Why a prevResult given to DEL was set aside: DEL is best-effort and needs none. */
  prevResultIgnored?: string;
  /** Fields spelled in another case ("vlanQos"), read as ours as Go's JSON decoder (and
   *  so sriov-cni) reads them (logged as a warning). */
  recased?: { field: string; as: string }[];
  /** DEL, GC: what ADD would refuse in settings they do not act on, set aside (logged). */
  setAside?: string[];
  /** Unknown top-level fields that look like a typo of one of ours (logged as a warning). */
  nearMisses?: { field: string; meant: string }[];
  capabilities?: Record<string, boolean>;
  /**
   * What to act on. deviceID: top-level deviceID, else runtimeConfig.deviceID (Multus sets
   * both to the same address; its own rule is "ResourceMap over RuntimeConfig").
   * mac: runtimeConfig.mac > CNI_ARGS MAC > mac, as sriov-cni does (cmdAdd: CNI_ARGS MAC
   * overrides the config's, then "RuntimeConfig takes preference than envArgs").
   */
  effective: { deviceID?: string; mac?: string };
}

// ---------------------------------------------------------------------------------------
// Decoding

const MAX_CONF_DEPTH = 64;

/** The stdin text as a JSON object; code 6 with the line and column of a syntax error. */
export async function decodeConf(text: string): Promise<Record<string, unknown>> {
  if (text.trim() === '') throw new CniError(ERR.DECODE, 'no network configuration on stdin: expected a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // The offset finder lives with the hw-profile loader; loaded only on this error path.
    const { jsonErrorOffset } = await import('../sriov/profile.js');
    const pos = jsonErrorOffset(text);
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    const column = pos - (before.lastIndexOf('\n') + 1) + 1;
    throw new CniError(ERR.DECODE, `network configuration is not valid JSON: at line ${line} column ${column} (offset ${pos}): ${jsonParseError(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CniError(ERR.DECODE, `network configuration must be a JSON object, got ${Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value}`);
  }
  // Walked recursively later (its schema, the log): thousands of levels overflow the stack.
  if (nestedDeeperThan(value, MAX_CONF_DEPTH)) throw new CniError(ERR.DECODE, `network configuration nests deeper than ${MAX_CONF_DEPTH} levels; no CNI configuration does`);
  return value as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------
// The schema. Each check on a field carries one message, so an error reads
// `vlan: expected an integer 0–4094, got "12"` whatever failed.

const int = (lo: number, hi: number, unit = '') => {
  const msg = `expected an integer ${lo}–${hi}${unit}`;
  return z.int({ error: msg }).min(lo, msg).max(hi, msg);
};
// The kernel's bound (IFLA_VF_RATE is 32-bit Mbit/s); the PF's link speed is checked at
// ADD, where the VF is known.
const rate = () => {
  const msg = `expected a whole number of Mbit/s, 0–${MAX_TX_RATE} (0 = no limit)`;
  return z.int({ error: msg }).min(0, msg).max(MAX_TX_RATE, msg);
};
const onOff = () => z.enum(['on', 'off'], { error: 'expected "on" or "off"' });
const absPath = (what: string) =>
  z.string({ error: `expected an absolute path (${what})` }).refine(
    (s) => s.startsWith('/') && !s.includes('\0') && !s.split('/').includes('..') && s.length <= 4096,
    `expected an absolute path without ".." (${what})`,
  );
const pci = (what: string) =>
  z.string({ error: `expected a PCI address DDDD:BB:DD.F like 0000:3b:02.1 (${what})` })
    .refine(isPci, `expected a PCI address DDDD:BB:DD.F like 0000:3b:02.1 (${what})`)
    .transform((s) => s.toLowerCase());
const macField = () =>
  z.string({ error: 'expected a MAC address like 02:00:00:00:00:01' }).transform((s, ctx) => {
    const m = canonicalMac(s);
    if (typeof m !== 'string' || m.startsWith('!')) {
      ctx.addIssue({ code: 'custom', message: m === null ? 'expected a MAC address like 02:00:00:00:00:01' : m.slice(1), input: s });
      return z.NEVER;
    }
    return m;
  });
const ipAddr = (what: string) => z.string({ error: `expected an IP address (${what})` }).refine((s) => isIP(s) !== 0, `expected an IP address (${what})`);
const strList = (what: string) => z.array(z.string({ error: `expected a string (${what})` }), { error: `expected a list of strings (${what})` });

const vxlanSchema = z.strictObject({
  vni: int(0, 16_777_215, ' (the 24-bit VXLAN network identifier)'),
  group: ipAddr('a multicast group').refine(isMulticast, 'expected a multicast address (224.0.0.0/4 or ff00::/8)').optional(),
  remote: ipAddr('the remote VTEP').optional(),
  local: ipAddr('the local VTEP').optional(),
  port: int(1, 65535, ' (UDP port; VXLAN is 4789)').optional(),
  dev: z.string({ error: 'expected an interface name' }).regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'expected a Linux interface name (1–15 of A–Z a–z 0–9 _ . - @)').optional(),
  ttl: int(1, 255).optional(),
  learning: z.boolean({ error: 'expected true or false' }).optional(),
  socket: absPath("the data plane's control socket").optional(),
}).refine((v) => !(v.group && v.remote), { message: 'give either group (multicast) or remote (unicast), not both', path: ['group'] });

// SPEC.md: the network name starts with an alphanumeric character, then alphanumerics,
// _ . -; it must not contain characters disallowed in file paths.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// SPEC.md: type and ipam.type name a binary and "must not contain characters disallowed in
// file paths (e.g. / or \)".
const PLUGIN_NAME_RE = /^[A-Za-z0-9_.+-]{1,255}$/;
const pluginName = (what: string) =>
  z.string({ error: `expected a plugin name (${what})` }).refine(
    (s) => PLUGIN_NAME_RE.test(s) && s !== '.' && s !== '..',
    `expected a plain file name (${what}): letters, digits, _ . + -, no "/"`,
  );

const LEVEL_MSG = `expected one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`;

const schema = z.looseObject({
  cniVersion: z.string(),
  name: z.string({ error: 'expected the network name' }).regex(NAME_RE, 'expected a network name: a letter or digit, then letters, digits, _ . -'),
  type: pluginName('the plugin binary, "vfplane-cni"'),
  deviceID: pci('the VF the device plugin allocated').optional(),
  runtimeConfig: z.looseObject({
    deviceID: pci('the VF the device plugin allocated').optional(),
    mac: macField().optional(),
    CNIDeviceInfoFile: absPath('the device-info file Multus names').optional(),
  }, { error: 'expected an object' }).optional(),
  pool: z.string({ error: 'expected a pool name' }).regex(/^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,127}$/, 'expected a pool name: letters, digits, _ . / -').optional(),
  vlan: int(0, 4094).optional(),
  vlanQoS: int(0, 7).optional(),
  vlanProto: z.string({ error: 'expected "802.1Q" or "802.1ad"' })
    .transform((s, ctx) => {
      const l = s.toLowerCase();
      if (l === '802.1q') return '802.1Q' as const;
      if (l === '802.1ad') return '802.1ad' as const;
      ctx.addIssue({ code: 'custom', message: 'expected "802.1Q" or "802.1ad"', input: s });
      return z.NEVER;
    }).optional(),
  mac: macField().optional(),
  spoofchk: onOff().optional(),
  trust: onOff().optional(),
  link_state: z.enum(['auto', 'enable', 'disable'], { error: 'expected "auto", "enable" or "disable"' }).optional(),
  min_tx_rate: rate().optional(),
  max_tx_rate: rate().optional(),
  // Any netdev's range here; the VF's own (its driver's) is checked at ADD, where the VF is known.
  mtu: int(68, 65535).optional(),
  // `"ipam": {}` is no IPAM, as in sriov-cni: the sriov-network-operator writes exactly
  // that for a network without one. An object with other fields and no type still needs it.
  ipam: z.preprocess(
    (v) => (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).every((k) => k === 'type') && !(v as { type?: unknown }).type ? undefined : v),
    z.looseObject({ type: pluginName('the IPAM plugin binary, like host-local') }, { error: 'expected an object with a type' }).optional(),
  ),
  dns: z.looseObject({
    nameservers: strList('nameservers').optional(),
    domain: z.string({ error: 'expected a string' }).optional(),
    search: strList('search domains').optional(),
    options: strList('resolver options').optional(),
  }, { error: 'expected an object' }).optional(),
  // In any case, and "warn" for "warning", as sriov-cni's logger reads it.
  logLevel: z.string({ error: LEVEL_MSG }).transform((s, ctx) => {
    const l = s.toLowerCase() === 'warn' ? 'warning' : s.toLowerCase();
    if ((LOG_LEVELS as readonly string[]).includes(l)) return l as LogLevel;
    ctx.addIssue({ code: 'custom', message: LEVEL_MSG, input: s });
    return z.NEVER;
  }).optional(),
  logFile: absPath('a file the plugin appends to').optional(),
  vxlan: vxlanSchema.optional(),
  sysfsRoot: absPath('the sysfs tree; /sys unless simulated').optional(),
  stateDir: absPath('the allocation store, /var/lib/vfplane by default').optional(),
  poolsFile: absPath('the pool definitions').optional(),
  args: z.looseObject({}, { error: 'expected an object' }).optional(),
  prevResult: z.looseObject({}, { error: 'expected a result object' }).optional(),
  'cni.dev/valid-attachments': attachmentList().nullable().optional(),
  'cni.dev/attachments': attachmentList().nullable().optional(),
  capabilities: z.record(z.string(), z.boolean({ error: 'expected true or false' }), { error: 'expected an object of booleans' }).optional(),
});

/** The top-level fields a near miss is matched against: the plugin's own settings, not
 *  the runtime's (cniVersion, name, type, args, prevResult, capabilities, cni.dev/…). */
const RUNTIME_FIELDS = new Set(['cniVersion', 'name', 'type', 'args', 'prevResult', 'capabilities']);
const TOP_FIELDS = Object.keys(schema.shape).filter((k) => !RUNTIME_FIELDS.has(k) && !k.startsWith('cni.dev/'));
/** Every top-level field by its lower-case name. */
const BY_LOWER = new Map(Object.keys(schema.shape).map((k) => [k.toLowerCase(), k]));

function attachmentList() {
  return z.array(
    z.looseObject({
      containerID: z.string({ error: 'expected the container ID' }).min(1, 'expected the container ID'),
      ifname: z.string({ error: 'expected the interface name' }).min(1, 'expected the interface name'),
    }, { error: 'expected {containerID, ifname}' }),
    { error: 'expected a list of {containerID, ifname}' },
  );
}

/** Settings DEL and GC do not act on: they undo what ADD recorded with the allocation.
 *  A value there that ADD would refuse (the network's config edited since the pod's ADD,
 *  a value sriov-cni took) is set aside, so the pod's DEL still gives its VF back instead
 *  of failing on every retry while the pod hangs in Terminating. */
const NOT_FOR_UNDO = new Set(['pool', 'vlan', 'vlanQoS', 'vlanProto', 'mac', 'spoofchk', 'trust', 'link_state', 'min_tx_rate', 'max_tx_rate', 'mtu', 'dns', 'logLevel', 'logFile', 'vxlan']);

// Generated configs spell "unset" as "" (Go's omitempty in reverse); take it so.
const EMPTY_IS_UNSET = ['deviceID', 'mac', 'pool', 'vlanProto', 'spoofchk', 'trust', 'link_state', 'logLevel', 'logFile', 'sysfsRoot', 'stateDir', 'poolsFile'];
const EMPTY_IS_UNSET_RC = ['deviceID', 'mac', 'CNIDeviceInfoFile'];

function isMulticast(s: string): boolean {
  if (isIP(s) === 4) return Number(s.split('.')[0]) >= 224 && Number(s.split('.')[0]) <= 239;
  return s.toLowerCase().startsWith('ff');
}

/** Canonical lower-case MAC, null when malformed, or "!reason" when it cannot be a VF's. */
function canonicalMac(s: string): string | null {
  const b = parseMac(s);
  if (!b) return null;
  if (b[0]! & 1) return '!expected a unicast MAC (the first octet is odd: multicast)';
  if (b.every((x) => x === 0)) return '!expected a MAC other than 00:00:00:00:00:00';
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function shown(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? typeof v : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function issueText(i: z.core.$ZodIssue): string {
  const path = formatPath(i.path);
  const at = path || 'network configuration';
  if (i.code === 'unrecognized_keys') {
    // Our own nested objects are strict (vxlan): the fields the object has, from its schema.
    const known = fieldsAt(schema, i.path);
    return `${at}: unknown field${i.keys.length > 1 ? 's' : ''} ${withGuesses(i.keys, known)}${known ? ` (known: ${known.join(', ')})` : ''}`;
  }
  if (i.input === undefined) return `${at}: missing: ${i.message}`;
  return `${at}: ${i.message}, got ${shown(i.input)}`;
}

function invalidConf(msg: string, details?: string): CniError {
  return new CniError(ERR.INVALID_CONFIG, msg, details);
}

/**
 * Validates a decoded config. `args` are the parsed CNI_ARGS (for MAC precedence).
 * Codes: 1 for an unsupported or missing cniVersion, 7 for everything else (a cniVersion
 * that is no string included).
 */
export function loadConf(raw: Record<string, unknown>, args: CniArgs = {}, command?: string): NetConf {
  const v = raw.cniVersion;
  if (v === undefined || v === '') {
    throw new CniError(ERR.INCOMPATIBLE_VERSION, `network configuration has no cniVersion (which means 0.1.0); vfplane-cni supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  // A version of the wrong type is a malformed config (7), not a version this plugin
  // lacks (1): `"cniVersion": 1` names no version at all.
  if (typeof v !== 'string') {
    throw invalidConf(`cniVersion ${shown(v)} is not a version: expected a string such as "1.0.0"`);
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(ERR.INCOMPATIBLE_VERSION, `cniVersion ${shown(v)} is not supported; vfplane-cni supports ${SUPPORTED_VERSIONS.join(', ')}`, `set "cniVersion": "1.0.0" (or another supported version) in the network configuration`);
  }
  if (raw.type === undefined && Array.isArray(raw.plugins)) {
    throw invalidConf('this is a configuration list ("plugins"); a plugin is given one of its entries, with "type": "vfplane-cni"');
  }

  const undo = command === 'DEL' || command === 'GC';
  const input: Record<string, unknown> = { ...raw };
  // A field in another case is ours, as Go's JSON decoder matches names (sriov-cni's
  // configs work so: "vlanQos", "spoofChk"); given in two spellings, ADD cannot tell
  // which one was meant.
  const recased: { field: string; as: string }[] = [];
  for (const k of Object.keys(input)) {
    if (k in schema.shape) continue;
    const as = BY_LOWER.get(k.toLowerCase());
    if (!as) continue;
    if (as in input) {
      if (!undo) throw invalidConf(`${k} and ${as} are both given, and name one field (field names match in any case, as a Go plugin such as sriov-cni reads them): keep ${as}`);
      delete input[k];
      continue;
    }
    input[as] = input[k];
    delete input[k];
    recased.push({ field: k, as });
  }
  // null is unset, as Go reads it into an optional field (generated configs write it);
  // GC's attachment lists keep theirs (null there is an empty list).
  for (const k of Object.keys(input)) if (input[k] === null && k in schema.shape && !k.startsWith('cni.dev/')) delete input[k];
  for (const k of EMPTY_IS_UNSET) if (input[k] === '') delete input[k];
  if (typeof input.runtimeConfig === 'object' && input.runtimeConfig !== null && !Array.isArray(input.runtimeConfig)) {
    const rc = { ...(input.runtimeConfig as Record<string, unknown>) };
    for (const k of EMPTY_IS_UNSET_RC) if (rc[k] === '' || rc[k] === null) delete rc[k];
    input.runtimeConfig = rc;
  }

  let r = schema.safeParse(input, { reportInput: true });
  const setAside: string[] = [];
  if (!r.success && undo) {
    const aside = (i: z.core.$ZodIssue) => NOT_FOR_UNDO.has(String(i.path[0])) || (i.path[0] === 'runtimeConfig' && i.path[1] === 'mac');
    if (r.error.issues.every(aside)) {
      for (const i of r.error.issues) {
        setAside.push(issueText(i));
        if (i.path[0] === 'runtimeConfig') delete (input.runtimeConfig as Record<string, unknown>).mac;
        else delete input[String(i.path[0])];
      }
      r = schema.safeParse(input, { reportInput: true });
    }
  }
  if (!r.success) {
    const lines = r.error.issues.map(issueText);
    throw invalidConf(lines.join('; '));
  }
  const d = r.data;

  // Cross-field rules, as sriov-cni's LoadConf has them; not DEL's or GC's to judge (they
  // act on no setting).
  if (!undo) crossFieldRules(d);

  let prevResult: CniResult | undefined;
  let prevResultIgnored: string | undefined;
  if (d.prevResult !== undefined) {
    try {
      prevResult = parsePrevResult(d.prevResult, v);
    } catch (err) {
      // DEL must finish whatever the cached result looks like: it finds the VF by
      // container and interface, not through prevResult.
      if (command !== 'DEL') throw err;
      prevResultIgnored = (err as Error).message;
    }
  }

  const rc = (d.runtimeConfig ?? {}) as NetConf['runtimeConfig'];
  const conf = { ...d, cniVersion: v, runtimeConfig: rc } as unknown as NetConf;
  if (prevResult) conf.prevResult = prevResult;
  else delete conf.prevResult;
  if (prevResultIgnored) conf.prevResultIgnored = prevResultIgnored;
  // Unknown top-level fields are ignored, as every CNI plugin does (Multus and runtimes
  // add their own); one that is a near miss of ours ("vxaln", "deviceId") is most likely
  // a typo whose setting is silently lost, which the log then says.
  if (recased.length) conf.recased = recased;
  if (setAside.length) conf.setAside = setAside;
  const nearMisses = Object.keys(raw).flatMap((k) => {
    if (k in schema.shape || BY_LOWER.has(k.toLowerCase())) return [];
    const near = likelyTypo(k, TOP_FIELDS, 2);
    return near && raw[near] === undefined ? [{ field: k, meant: near }] : [];
  });
  if (nearMisses.length) conf.nearMisses = nearMisses;
  conf.effective = {};
  const deviceID = d.deviceID ?? rc.deviceID;
  if (deviceID !== undefined) conf.effective.deviceID = deviceID;
  const mac = rc.mac ?? args.MAC ?? d.mac;
  if (mac !== undefined) conf.effective.mac = mac;
  return conf;
}

/** The rules between settings, as sriov-cni's LoadConf has them. */
function crossFieldRules(d: { vlan?: number; vlanQoS?: number; vlanProto?: string; min_tx_rate?: number; max_tx_rate?: number }): void {
  if (d.vlan === undefined) {
    if (d.vlanQoS !== undefined) throw invalidConf(`vlanQoS: needs vlan: set vlan (1–4094) to use vlanQoS ${d.vlanQoS}`);
    if (d.vlanProto !== undefined) throw invalidConf(`vlanProto: needs vlan: set vlan (1–4094) to use vlanProto ${d.vlanProto}`);
  } else {
    if (d.vlan === 0 && d.vlanQoS !== undefined && d.vlanQoS !== 0) throw invalidConf(`vlanQoS: ${d.vlanQoS} needs a non-zero vlan (vlan is 0)`);
    if (d.vlan === 0 && d.vlanProto === '802.1ad') throw invalidConf('vlanProto: "802.1ad" needs a non-zero vlan (vlan is 0)');
  }
  if (d.min_tx_rate !== undefined && d.max_tx_rate !== undefined && d.max_tx_rate > 0 && d.min_tx_rate > d.max_tx_rate) {
    throw invalidConf(`min_tx_rate: ${d.min_tx_rate} is above max_tx_rate ${d.max_tx_rate}`);
  }
}

/** decodeConf + loadConf. */
export async function parseConf(text: string, args: CniArgs = {}): Promise<NetConf> {
  return loadConf(await decodeConf(text), args);
}
