// Tunnel and decap settings: their defaults, their validation, and the resolved form
// (addresses as bytes) that both engines take. docs/vxlan-engine.md §2 and §4.1.
import { groupMacOf, parseIp, parseMac, type IpAddr } from '../util/addr.js';

export type DfMode = 'set' | 'unset' | 'inherit';

/** Tunnel settings as a user writes them (config file, CLI flags). */
export interface TunnelSpec {
  local: string;
  remote: string;
  srcMac?: string;
  dstMac?: string;
  vlan?: number | null;
  vlanPcp?: number;
  dstPort?: number;
  srcPortMin?: number;
  srcPortMax?: number;
  ttl?: number;
  tos?: number | 'inherit';
  df?: DfMode;
  udpCsum?: boolean;
  mtu?: number;
  ipId?: number;
}

/** A validated tunnel, ready for an engine. */
export interface Tunnel {
  family: 4 | 6;
  local: Uint8Array;
  remote: Uint8Array;
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  vlan: number | null;
  vlanPcp: number;
  dstPort: number;
  srcPortMin: number;
  srcPortMax: number;
  ttl: number;
  tos: number | 'inherit';
  df: DfMode;
  udpCsum: boolean;
  mtu: number;
  ipId: number;
}

export interface DecapSpec {
  dstPort?: number;
  vnis?: readonly number[] | null;
  locals?: readonly string[] | null;
  verifyUdpCsum?: boolean;
  dropInnerVlan?: boolean;
}

export interface Decap {
  dstPort: number;
  /** null: every VNI is accepted. */
  vnis: number[] | null;
  /** null: any outer destination address is accepted. */
  locals: IpAddr[] | null;
  verifyUdpCsum: boolean;
  dropInnerVlan: boolean;
}

export const VNI_MAX = 0xffffff;
export const VXLAN_PORT = 4789;
export const DEFAULT_SRC_MAC = '02:00:00:00:00:01';
export const DEFAULT_DST_MAC = '02:00:00:00:00:02';

/** A setting that is out of range or malformed; `field` names the setting. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`${field} ${JSON.stringify(value)} is invalid: expected ${expected}`);
    this.name = 'ConfigError';
  }
}

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(field, v, `an integer in ${min}–${max}`);
  }
  return v;
}

function mac(field: string, v: unknown): Uint8Array {
  const m = typeof v === 'string' ? parseMac(v) : null;
  if (!m) throw new ConfigError(field, v, 'a MAC address like 02:00:00:00:00:01');
  return m;
}

function ip(field: string, v: unknown): IpAddr {
  const a = typeof v === 'string' ? parseIp(v) : null;
  if (!a) throw new ConfigError(field, v, 'an IPv4 or IPv6 address');
  return a;
}

export function validateVni(v: unknown, field = 'vni'): number {
  return int(field, v, 0, VNI_MAX);
}

/** Why an address cannot be a packet's source (group or unspecified), or null if it can. */
function notUnicastIp(a: IpAddr): string | null {
  const b = a.bytes;
  if (b.every((x) => x === 0)) return 'the unspecified address';
  if (a.family === 4) {
    if (b[0]! >= 224 && b[0]! <= 239) return 'a multicast address';
    if (b.every((x) => x === 255)) return 'the broadcast address';
    return null;
  }
  return b[0] === 0xff ? 'a multicast address' : null;
}

/** Why an address is no packet's destination (unspecified, IPv4 limited broadcast), or null. */
function notDestination(a: IpAddr): string | null {
  if (a.bytes.every((x) => x === 0)) return 'the unspecified address';
  if (a.family === 4 && a.bytes.every((x) => x === 255)) return 'the broadcast address';
  return null;
}

function sourceMac(field: string, v: unknown): Uint8Array {
  const m = mac(field, v);
  if (m[0]! & 1) throw new ConfigError(field, v, 'a unicast MAC (first octet even): a group MAC cannot send');
  if (m.every((x) => x === 0)) throw new ConfigError(field, v, 'a unicast MAC, not 00:00:00:00:00:00');
  return m;
}

export function resolveTunnel(s: TunnelSpec): Tunnel {
  const local = ip('local', s.local);
  // The outer source: a group or unspecified address there is refused by every receiver.
  const why = notUnicastIp(local);
  if (why) throw new ConfigError('local', s.local, `a unicast address to send from (this is ${why})`);
  const remote = ip('remote', s.remote);
  if (local.family !== remote.family) {
    throw new ConfigError('remote', s.remote, `an IPv${local.family} address, the same family as local ${s.local}`);
  }
  // A multicast group is a VXLAN destination (RFC 7348 §4.2); these never are.
  const nowhere = notDestination(remote);
  if (nowhere) throw new ConfigError('remote', s.remote, `a unicast or multicast VTEP address (this is ${nowhere})`);
  const srcPortMin = int('srcPortMin', s.srcPortMin ?? 49152, 1, 65535);
  const srcPortMax = int('srcPortMax', s.srcPortMax ?? 65535, 1, 65535);
  if (srcPortMin > srcPortMax) {
    throw new ConfigError('srcPortMax', srcPortMax, `a port ≥ srcPortMin (${srcPortMin})`);
  }
  const tos = s.tos ?? 0;
  if (tos !== 'inherit') int('tos', tos, 0, 255);
  const df = s.df ?? 'unset';
  if (df !== 'set' && df !== 'unset' && df !== 'inherit') {
    throw new ConfigError('df', df, 'one of set, unset, inherit');
  }
  const mtu = s.mtu ?? 0;
  if (mtu !== 0) int('mtu', mtu, 68, 65535);
  else int('mtu', mtu, 0, 0);
  if (s.udpCsum !== undefined && typeof s.udpCsum !== 'boolean') {
    throw new ConfigError('udpCsum', s.udpCsum, 'true or false');
  }
  return {
    family: local.family,
    local: local.bytes,
    remote: remote.bytes,
    srcMac: sourceMac('srcMac', s.srcMac ?? DEFAULT_SRC_MAC),
    // Not given: a multicast remote (a VXLAN group) goes to its group MAC, as a kernel
    // would send it; a unicast one to the default next hop.
    dstMac: s.dstMac !== undefined ? mac('dstMac', s.dstMac) : groupMacOf(remote) ?? mac('dstMac', DEFAULT_DST_MAC),
    vlan: s.vlan === undefined || s.vlan === null ? null : int('vlan', s.vlan, 0, 4094),
    vlanPcp: int('vlanPcp', s.vlanPcp ?? 0, 0, 7),
    dstPort: int('dstPort', s.dstPort ?? VXLAN_PORT, 1, 65535),
    srcPortMin,
    srcPortMax,
    ttl: int('ttl', s.ttl ?? 64, 1, 255),
    tos,
    df,
    udpCsum: s.udpCsum ?? false,
    mtu,
    ipId: int('ipId', s.ipId ?? 0, 0, 65535),
  };
}

export function resolveDecap(s: DecapSpec = {}): Decap {
  const vnis = s.vnis && s.vnis.length > 0 ? [...new Set(s.vnis.map((v) => validateVni(v, 'vnis')))] : null;
  const locals = s.locals && s.locals.length > 0 ? s.locals.map((a) => {
    const addr = ip('locals', a);
    const nowhere = notDestination(addr);
    if (nowhere) throw new ConfigError('locals', a, `an address packets are sent to (this is ${nowhere}, so every packet would be dropped as not local)`);
    return addr;
  }) : null;
  for (const k of ['verifyUdpCsum', 'dropInnerVlan'] as const) {
    if (s[k] !== undefined && typeof s[k] !== 'boolean') throw new ConfigError(k, s[k], 'true or false');
  }
  return {
    dstPort: int('dstPort', s.dstPort ?? VXLAN_PORT, 1, 65535),
    vnis,
    locals,
    verifyUdpCsum: s.verifyUdpCsum ?? false,
    dropInnerVlan: s.dropInnerVlan ?? false,
  };
}

/** Outer header length for a tunnel: Ethernet [+VLAN] + IP + UDP + VXLAN. */
export function outerHeaderLength(t: Pick<Tunnel, 'family' | 'vlan'>): number {
  return 14 + (t.vlan === null ? 0 : 4) + (t.family === 4 ? 20 : 40) + 8 + 8;
}
