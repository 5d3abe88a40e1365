// The CNI protocol as vfplane-cni speaks it: supported spec versions, the well-known
// error codes, the error type every command failure becomes, and the CNI_* environment
// checked once, at the edge. No heavy imports: the VERSION path loads only this file.
// Source: CNI SPEC.md, spec-v1.1.0 (containernetworking/cni), and pkg/skel for which
// variables each command requires.
import { VfpError } from '../util/errors.js';
import { parseIfname } from '../sriov/pci.js';
import { parseMac } from '../util/addr.js';

/** Spec versions this plugin accepts in cniVersion, oldest first (VERSION lists them). */
// 0.3.x: what many SR-IOV NetworkAttachmentDefinitions still say (sriov-cni's examples);
// its results have the 0.4.0 shape, and it has no CHECK.
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const NEWEST_VERSION: CniVersion = '1.1.0';

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** a ≥ b for dotted versions ("1.1.0" ≥ "1.0.0"); non-numeric parts count as 0. */
export function versionAtLeast(a: string, b: string): boolean {
  const pa = a.split('.').map((x) => parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

/**
 * Error codes. 1–7 and 11 are the spec's table; 50 and 51 are defined for STATUS only;
 * 8 (ErrInvalidNetNS) and 999 (ErrInternal) are the Go library's, which runtimes and the
 * reference plugins use (999 is what skel turns any untyped error into). 100+ is ours.
 */
export const ERR = {
  INCOMPATIBLE_VERSION: 1, // cniVersion not supported
  UNSUPPORTED_FIELD: 2, // a config field this plugin does not support (message: key and value)
  UNKNOWN_CONTAINER: 3, // container unknown: the runtime need not clean up (no DEL)
  INVALID_ENV: 4, // a CNI_* variable missing or invalid (message names it)
  IO: 5, // I/O failure
  DECODE: 6, // failed to decode content (JSON)
  INVALID_CONFIG: 7, // invalid network config
  INVALID_NETNS: 8, // (Go library) CNI_NETNS is the plugin's own netns
  TRY_AGAIN: 11, // transient: the runtime should retry later
  NOT_AVAILABLE: 50, // STATUS: cannot service ADD
  LIMITED_CONNECTIVITY: 51, // STATUS: cannot service ADD, and existing pods may suffer
  INTERNAL: 999, // a bug or an error nobody classified
} as const;

/** A failure as the CNI runtime sees it: printed as {cniVersion, code, msg, details}. */
export class CniError extends Error {
  readonly details: string | undefined;
  constructor(
    readonly code: number,
    msg: string,
    details?: string,
  ) {
    super(msg);
    this.name = 'CniError';
    // The spec's details is a string; '' means none.
    this.details = details ? details : undefined;
  }
}

/**
 * Maps any thrown value to a CniError. A VfpError's `details.cniCode` (a number) wins, and
 * `details.cniDetails` (a string) becomes the details; otherwise by kind:
 *
 *   kind          code  why
 *   invalid        7    the config (or a value derived from it) is malformed. CNI_* variables
 *                       are checked in parseEnv, which raises 4 itself.
 *   bad-file       7    a file the config names is malformed (its pool file, a hw-profile).
 *   not-found      7    the config names something absent (a deviceID that is no VF, an
 *                       unknown pool). A vanished container is 3: the thrower says so with
 *                       cniCode, since only it knows the missing thing is the container.
 *   conflict      11    the request contradicts current state, typically a VF still held by
 *                       a pod whose DEL has not run yet (kubelet reuses devices before it
 *                       tears down); that clears by itself, so "try again later". Conflicts
 *                       that will not clear (interface name taken) pass cniCode.
 *   unavailable   11    nothing free now, retry may succeed; under STATUS 50 (cannot serve ADD).
 *   system         5    the kernel, a tool or the store failed: the spec's I/O failure is the
 *                       nearest code (the reference plugins would say 999); under STATUS 50.
 *   (not a VfpError) 999  a bug: ErrInternal, as skel reports untyped errors.
 */
export function toCniError(err: unknown, command?: string): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof VfpError) {
    const d = err.details ?? {};
    const details = typeof d.cniDetails === 'string' ? d.cniDetails : undefined;
    if (typeof d.cniCode === 'number' && Number.isInteger(d.cniCode) && d.cniCode >= 0) return new CniError(d.cniCode, err.message, details);
    const status = command === 'STATUS';
    switch (err.kind) {
      case 'invalid':
      case 'bad-file':
      case 'not-found':
        return new CniError(ERR.INVALID_CONFIG, err.message, details);
      case 'conflict':
        return new CniError(ERR.TRY_AGAIN, err.message, details);
      case 'unavailable':
        return new CniError(status ? ERR.NOT_AVAILABLE : ERR.TRY_AGAIN, err.message, details);
      case 'system':
        return new CniError(status ? ERR.NOT_AVAILABLE : ERR.IO, err.message, details);
    }
  }
  if (err instanceof Error) {
    // Keep a bug's location: the first stack frame goes into details.
    const at = err.stack?.split('\n').find((l) => l.trim().startsWith('at '))?.trim();
    return new CniError(ERR.INTERNAL, `internal error: ${err.message}`, at);
  }
  return new CniError(ERR.INTERNAL, `internal error: ${String(err)}`);
}

/** The spec's error object, keys in its order; details only when there are some. */
export function errorObject(e: CniError, cniVersion: string): Record<string, unknown> {
  return { cniVersion, code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) };
}

// ---------------------------------------------------------------------------------------
// The environment

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/**
 * CNI_ARGS, keyed as the runtime spells them. Kubelet (through the CRI runtime) and Multus
 * pass IgnoreUnknown=1|true and the K8S_POD_* keys; MAC is sriov-cni's per-attachment MAC.
 */
export interface CniArgs {
  IgnoreUnknown?: string;
  K8S_POD_NAMESPACE?: string;
  K8S_POD_NAME?: string;
  K8S_POD_UID?: string;
  K8S_POD_INFRA_CONTAINER_ID?: string;
  MAC?: string; // canonical lower-case aa:bb:cc:dd:ee:ff
  [key: string]: string | undefined;
}

export const KNOWN_ARGS = ['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_UID', 'K8S_POD_INFRA_CONTAINER_ID', 'MAC'] as const;

export interface CniEnv {
  command: CniCommand;
  /** Set (and valid) for ADD, DEL and CHECK. */
  containerId?: string;
  /** Set for ADD and CHECK; DEL may lack it (the sandbox may already be gone). */
  netns?: string;
  /** Set (and valid) for ADD, DEL and CHECK. */
  ifname?: string;
  args: CniArgs;
  /** CNI_PATH split on ':' (empty entries dropped); required by the spec for GC only. */
  path: string[];
  /** The environment as received, passed on to delegated (IPAM) plugins. */
  raw: Readonly<Record<string, string | undefined>>;
}

// Which variables each command needs (SPEC.md section 2 per command; pkg/skel agrees except
// that it also insists on CNI_PATH everywhere, which the spec makes optional but for GC).
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

// SPEC.md: "Must start with an alphanumeric character, optionally followed by any
// combination of one or more alphanumeric characters, underscore, dot or hyphen."
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Kubernetes object names (RFC 1123 subdomains, at most 253) and UIDs.
const K8S_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;
const K8S_UID_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

function envError(variable: string, problem: string, details?: string): CniError {
  return new CniError(ERR.INVALID_ENV, `${variable} ${problem}`, details);
}

/**
 * Parses `K=V;K=V`. Unknown keys are refused unless IgnoreUnknown is 1/true, as the Go
 * library's LoadArgs does; a value may contain '=' (Multus splits on the first one).
 */
export function parseCniArgs(text: string | undefined): CniArgs {
  const args: CniArgs = {};
  if (!text) return args;
  const unknown: string[] = [];
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw envError('CNI_ARGS', `has the pair ${JSON.stringify(pair)}, which is not KEY=VALUE`, 'CNI_ARGS is KEY=VALUE pairs separated by ";"');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!(KNOWN_ARGS as readonly string[]).includes(key)) unknown.push(key);
    args[key] = value;
  }
  const ignore = (args.IgnoreUnknown ?? '').toLowerCase();
  if (args.IgnoreUnknown !== undefined && !['1', 'true', '0', 'false'].includes(ignore)) {
    throw envError('CNI_ARGS', `IgnoreUnknown=${JSON.stringify(args.IgnoreUnknown)} is not a boolean: use 1, true, 0 or false`);
  }
  if (unknown.length > 0 && ignore !== '1' && ignore !== 'true') {
    throw envError('CNI_ARGS', `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, `vfplane-cni knows ${KNOWN_ARGS.join(', ')}; add IgnoreUnknown=true to pass others`);
  }
  const check = (key: keyof CniArgs & string, re: RegExp, what: string) => {
    const v = args[key];
    if (v !== undefined && v !== '' && !re.test(v)) throw envError('CNI_ARGS', `${key}=${JSON.stringify(v)} is not ${what}`);
  };
  check('K8S_POD_NAMESPACE', K8S_NAME_RE, 'a Kubernetes namespace name');
  check('K8S_POD_NAME', K8S_NAME_RE, 'a Kubernetes pod name');
  check('K8S_POD_UID', K8S_UID_RE, 'a Kubernetes UID');
  check('K8S_POD_INFRA_CONTAINER_ID', CONTAINER_ID_RE, 'a container ID (letters, digits, _ . -)');
  // Empty values mean "not given" (kubelet passes K8S_POD_UID= on old runtimes).
  for (const k of Object.keys(args)) if (args[k] === '') delete args[k];
  if (args.MAC !== undefined) {
    const mac = parseMac(args.MAC);
    if (!mac) throw envError('CNI_ARGS', `MAC=${JSON.stringify(args.MAC)} is not a MAC address like 02:00:00:00:00:01`);
    if (mac[0]! & 1 || mac.every((b) => b === 0)) throw envError('CNI_ARGS', `MAC=${JSON.stringify(args.MAC)} cannot be a VF's address: it must be unicast and not all zeros`);
    args.MAC = Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
  }
  return args;
}

/**
 * Reads and checks the CNI_* variables. `command` overrides CNI_COMMAND (for callers that
 * already know it). Every problem is a CniError with code 4 naming the variable.
 */
export function parseEnv(env: NodeJS.ProcessEnv, command?: string): CniEnv {
  const cmd = command ?? env.CNI_COMMAND;
  if (!cmd) throw envError('CNI_COMMAND', 'is not set', `expected one of ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(cmd)) {
    throw envError('CNI_COMMAND', `${JSON.stringify(cmd)} is not a CNI command`, `expected one of ${COMMANDS.join(', ')}`);
  }
  const c = cmd as CniCommand;
  const missing = REQUIRED[c].filter((v) => !env[v]);
  if (missing.length > 0) {
    throw new CniError(ERR.INVALID_ENV, `required environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing for ${c}`);
  }
  const out: CniEnv = {
    command: c,
    args: {},
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
    raw: { ...env },
  };
  if (c === 'VERSION') return out;

  // Attachment parameters are checked whenever given, even where optional: a bad value
  // must not reach a path, a store key or a netlink request.
  const containerId = env.CNI_CONTAINERID;
  if (containerId) {
    if (!CONTAINER_ID_RE.test(containerId)) {
      throw envError('CNI_CONTAINERID', `${JSON.stringify(containerId)} is not valid: it must start with a letter or digit, then letters, digits, _ . -`);
    }
    out.containerId = containerId;
  }
  const ifname = env.CNI_IFNAME;
  if (ifname) {
    try {
      out.ifname = parseIfname(ifname, 'CNI_IFNAME');
    } catch (err) {
      throw new CniError(ERR.INVALID_ENV, (err as Error).message);
    }
  }
  const netns = env.CNI_NETNS;
  if (netns) {
    if (!netns.startsWith('/') || netns.includes('\0') || netns.length > 4096) {
      throw envError('CNI_NETNS', `${JSON.stringify(netns)} is not valid: expected an absolute path to a network namespace, like /var/run/netns/cni-1234`);
    }
    out.netns = netns;
  }
  // CNI_ARGS belongs to ADD, DEL and CHECK (one container's call); GC and STATUS take none,
  // and a stray one must not fail them.
  out.args = cmd === 'GC' || cmd === 'STATUS' ? {} : parseCniArgs(env.CNI_ARGS);
  return out;
}
