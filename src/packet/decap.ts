// VXLAN decapsulation of a burst, in place (docs/vxlan-engine.md §4): the checks of §4.2 in
// their exact order, each failing one naming its reason, then the data offset moved to the
// inner frame, and optionally the inner source MAC learned into an FdbModel (§5).
import type { Burst } from './burst.js';
import type { Decap } from './config.js';
import { fold, pseudoSum4, pseudoSum6, sum16 } from './csum.js';
import type { FdbModel } from './fdb-model.js';
import { Reason } from './reasons.js';

export interface DecapState {
  readonly decap: Decap;
  readonly vnis: Set<number> | null;
  /** Whether `locals` was given at all: then a destination of either family must match. */
  readonly localsGiven: boolean;
  /** IPv4 locals as 32-bit numbers, IPv6 locals as 16 bytes each, end to end. */
  readonly locals4: Uint32Array;
  readonly locals6: Uint8Array;
  /** Learning store; null when this context does not learn. */
  fdb: FdbModel | null;
  /** The clock learning stamps with, read once per burst (seconds). */
  now: () => number;
}

export function prepareDecap(d: Decap, learn?: { fdb: FdbModel; now?: number | (() => number) }): DecapState {
  const l4s = (d.locals ?? []).filter((a) => a.family === 4);
  const l6s = (d.locals ?? []).filter((a) => a.family === 6);
  const locals4 = new Uint32Array(l4s.length);
  l4s.forEach((a, i) => (locals4[i] = ((a.bytes[0]! << 24) | (a.bytes[1]! << 16) | (a.bytes[2]! << 8) | a.bytes[3]!) >>> 0));
  const locals6 = new Uint8Array(16 * l6s.length);
  l6s.forEach((a, i) => locals6.set(a.bytes, 16 * i));
  const now = learn?.now;
  return {
    decap: d,
    vnis: d.vnis && d.vnis.length > 0 ? new Set(d.vnis) : null,
    localsGiven: d.locals !== null && d.locals.length > 0,
    locals4,
    locals6,
    fdb: learn?.fdb ?? null,
    now: typeof now === 'function' ? now : typeof now === 'number' ? () => now : () => Math.floor(Date.now() / 1000),
  };
}

const R_ETH_TRUNCATED = Reason.eth_truncated;
const R_NOT_IP = Reason.not_ip;
const R_IP_TRUNCATED = Reason.ip_truncated;
const R_IP_BAD_VERSION = Reason.ip_bad_version;
const R_IP_BAD_IHL = Reason.ip_bad_ihl;
const R_IP_BAD_CHECKSUM = Reason.ip_bad_checksum;
const R_IP_BAD_LENGTH = Reason.ip_bad_length;
const R_IP_FRAGMENT = Reason.ip_fragment;
const R_NOT_LOCAL = Reason.not_local;
const R_NOT_UDP = Reason.not_udp;
const R_UDP_BAD_LENGTH = Reason.udp_bad_length;
const R_NOT_VXLAN_PORT = Reason.not_vxlan_port;
const R_UDP_BAD_CHECKSUM = Reason.udp_bad_checksum;
const R_VXLAN_TRUNCATED = Reason.vxlan_truncated;
const R_VXLAN_BAD_FLAGS = Reason.vxlan_bad_flags;
const R_VNI_UNKNOWN = Reason.vni_unknown;
const R_INNER_TRUNCATED = Reason.inner_truncated;
const R_INNER_VLAN = Reason.inner_vlan;
const R_CE_NOT_ECT = Reason.ce_not_ect;
const R_UDP_ZERO_CHECKSUM = Reason.udp_zero_checksum;

/**
 * What `check` found for a packet that passed, relative to its data offset. One
 * module-level record: the engine is synchronous and never re-entered.
 */
const res = { l4: 0, innerLen: 0, vni: 0, family: 4 as 4 | 6, src: 0 };

/** Runs the §4.2 checks on `buf[o, o+n)`; returns 0 and fills `res`, or a reason. */
function check(s: DecapState, buf: Uint8Array, o: number, n: number): number {
  if (n < 14) return R_ETH_TRUNCATED;
  let type = (buf[o + 12]! << 8) | buf[o + 13]!;
  let l3 = 14;
  for (let tags = 0; (type === 0x8100 || type === 0x88a8) && tags < 2; tags++) {
    if (l3 + 4 > n) return R_ETH_TRUNCATED;
    type = (buf[o + l3 + 2]! << 8) | buf[o + l3 + 3]!;
    l3 += 4;
  }
  const p = o + l3;
  let l4: number;
  let avail: number;
  let family: 4 | 6;
  if (type === 0x0800) {
    if (l3 + 20 > n) return R_IP_TRUNCATED;
    const vihl = buf[p]!;
    if (vihl >> 4 !== 4) return R_IP_BAD_VERSION;
    const hl = (vihl & 0x0f) * 4;
    if (hl < 20) return R_IP_BAD_IHL;
    if (l3 + hl > n) return R_IP_TRUNCATED;
    if (fold(sum16(buf, p, hl)) !== 0xffff) return R_IP_BAD_CHECKSUM;
    const total = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (total < hl || l3 + total > n) return R_IP_BAD_LENGTH;
    if ((((buf[p + 6]! << 8) | buf[p + 7]!) & 0x3fff) !== 0) return R_IP_FRAGMENT;
    if (s.localsGiven) {
      const dst = ((buf[p + 16]! << 24) | (buf[p + 17]! << 16) | (buf[p + 18]! << 8) | buf[p + 19]!) >>> 0;
      const ls = s.locals4;
      let hit = false;
      for (let k = 0; k < ls.length; k++) if (ls[k] === dst) { hit = true; break; }
      if (!hit) return R_NOT_LOCAL;
    }
    if (buf[p + 9] !== 17) return R_NOT_UDP;
    l4 = l3 + hl;
    avail = total - hl;
    family = 4;
  } else if (type === 0x86dd) {
    if (l3 + 40 > n) return R_IP_TRUNCATED;
    if (buf[p]! >> 4 !== 6) return R_IP_BAD_VERSION;
    const plen = (buf[p + 4]! << 8) | buf[p + 5]!;
    if (l3 + 40 + plen > n) return R_IP_BAD_LENGTH;
    if (s.localsGiven && !hasLocal6(s.locals6, buf, p + 24)) return R_NOT_LOCAL;
    if (buf[p + 6] !== 17) return R_NOT_UDP;
    l4 = l3 + 40;
    avail = plen;
    family = 6;
  } else {
    return R_NOT_IP;
  }

  if (avail < 8) return R_UDP_BAD_LENGTH;
  const u = o + l4;
  if (((buf[u + 2]! << 8) | buf[u + 3]!) !== s.decap.dstPort) return R_NOT_VXLAN_PORT;
  const ulen = (buf[u + 4]! << 8) | buf[u + 5]!;
  if (ulen < 8 || ulen > avail) return R_UDP_BAD_LENGTH;
  if (s.decap.verifyUdpCsum) {
    const c = (buf[u + 6]! << 8) | buf[u + 7]!;
    if (c === 0) {
      // Left out on purpose (RFC 6935/6936, Linux's udp6zerocsumtx), not wrong: its own reason.
      if (family === 6) return R_UDP_ZERO_CHECKSUM;
    } else {
      const ph = family === 4 ? pseudoSum4(buf, p + 12, p + 16, 17, ulen) : pseudoSum6(buf, p + 8, p + 24, 17, ulen);
      if (fold(sum16(buf, u, ulen, ph)) !== 0xffff) return R_UDP_BAD_CHECKSUM;
    }
  }
  if (ulen < 16) return R_VXLAN_TRUNCATED;
  if ((buf[u + 8]! & 0x08) === 0) return R_VXLAN_BAD_FLAGS;
  const vni = (buf[u + 12]! << 16) | (buf[u + 13]! << 8) | buf[u + 14]!;
  if (s.vnis !== null && !s.vnis.has(vni)) return R_VNI_UNKNOWN;
  const innerLen = ulen - 16;
  if (innerLen < 14) return R_INNER_TRUNCATED;
  if (s.decap.dropInnerVlan) {
    const it = (buf[u + 28]! << 8) | buf[u + 29]!;
    if (it === 0x8100 || it === 0x88a8) return R_INNER_VLAN;
  }
  // RFC 6040 §4.2: an outer CE mark is carried into the inner IP header; an inner IP
  // packet that is not ECN-capable (Not-ECT) cannot carry it and is dropped.
  const outerEcn = family === 4 ? buf[p + 1]! & 3 : (buf[p + 1]! >> 4) & 3;
  if (outerEcn === 3 && !markCe(buf, u + 16, innerLen)) return R_CE_NOT_ECT;
  res.l4 = l4;
  res.innerLen = innerLen;
  res.vni = vni;
  res.family = family;
  res.src = family === 4 ? l3 + 12 : l3 + 8;
  return 0;
}

/**
 * RFC 6040 §4.2 for an outer header marked CE: the inner frame at F (LEN bytes), after up
 * to two VLAN tags, if it is IPv4 or IPv6 and ECN-capable (ECT(0) or ECT(1)), is marked
 * CE (an IPv4 header checksum updated per RFC 1624: HC' = ~(~HC + ~m + m')); one already
 * CE stays so; a frame that is not IP is left as it is. False for an IP packet that is
 * Not-ECT, or whose header is too short or of the wrong version to tell.
 */
function markCe(buf: Uint8Array, f: number, len: number): boolean {
  let l3 = 14;
  let type = (buf[f + 12]! << 8) | buf[f + 13]!;
  for (let tags = 0; tags < 2 && (type === 0x8100 || type === 0x88a8); tags++) {
    if (l3 + 4 > len) return true;
    type = (buf[f + l3 + 2]! << 8) | buf[f + l3 + 3]!;
    l3 += 4;
  }
  const ip = f + l3;
  if (type === 0x0800) {
    if (l3 + 20 > len || buf[ip]! >> 4 !== 4) return false;
    const ecn = buf[ip + 1]! & 3;
    if (ecn === 0) return false;
    if (ecn === 3) return true;
    const old = (buf[ip]! << 8) | buf[ip + 1]!;
    const hc = (buf[ip + 10]! << 8) | buf[ip + 11]!;
    let sum = (~hc & 0xffff) + (~old & 0xffff) + (old | 3);
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    const c = ~sum & 0xffff;
    buf[ip + 1] = buf[ip + 1]! | 3;
    buf[ip + 10] = c >> 8;
    buf[ip + 11] = c & 0xff;
    return true;
  }
  if (type === 0x86dd) {
    if (l3 + 40 > len || buf[ip]! >> 4 !== 6) return false;
    if (((buf[ip + 1]! >> 4) & 3) === 0) return false;
    buf[ip + 1] = buf[ip + 1]! | 0x30;
    return true;
  }
  return true;
}

function hasLocal6(ls: Uint8Array, buf: Uint8Array, a: number): boolean {
  for (let k = 0; k < ls.length; k += 16) {
    let j = 0;
    while (j < 16 && ls[k + j] === buf[a + j]) j++;
    if (j === 16) return true;
  }
  return false;
}

/**
 * Decapsulates packets [0, b.count). A packet that passes has its data offset moved to
 * the inner frame (headroom grows by as much), its length set to the inner length, and
 * vni/vtepFamily/vtep filled; a dropped one keeps its bytes and offsets, gets a reason,
 * and has vni/vtepFamily/vtep zeroed so no stale result survives. Returns the number
 * decapsulated.
 */
export function decapBurst(s: DecapState, b: Burst): number {
  const buf = b.buf;
  const { off, len, room, reason, vni, vtepFamily, vtep } = b;
  const fdb = s.fdb;
  const now = fdb ? s.now() : 0;
  let ok = 0;
  for (let i = 0; i < b.count; i++) {
    const o = off[i]!;
    const r = check(s, buf, o, len[i]!);
    const v = i * 16;
    reason[i] = r;
    if (r !== 0) {
      vni[i] = 0;
      vtepFamily[i] = 0;
      vtep.fill(0, v, v + 16);
      continue;
    }
    const strip = res.l4 + 16;
    const src = o + res.src;
    off[i] = o + strip;
    len[i] = res.innerLen;
    room[i] = room[i]! + strip;
    vni[i] = res.vni;
    vtepFamily[i] = res.family;
    if (res.family === 4) {
      vtep[v] = buf[src]!;
      vtep[v + 1] = buf[src + 1]!;
      vtep[v + 2] = buf[src + 2]!;
      vtep[v + 3] = buf[src + 3]!;
      vtep.fill(0, v + 4, v + 16);
    } else {
      for (let k = 0; k < 16; k++) vtep[v + k] = buf[src + k]!;
    }
    if (fdb) fdb.learn(res.vni, buf, o + strip + 6, res.family, buf, src, now);
    ok++;
  }
  return ok;
}
