// VXLAN encapsulation of a burst, in place (docs/vxlan-engine.md §3). The outer header is
// built once per tunnel as a template with its constant checksum parts pre-summed; each
// packet copies the template into its headroom and patches lengths, ID, TOS/DF, port, VNI.
import type { Burst } from './burst.js';
import { outerHeaderLength, type Tunnel } from './config.js';
import { fold, sum16 } from './csum.js';
import { flowHash, newInnerInfo, parseInner } from './flow.js';
import { Reason } from './reasons.js';

/** Per-tunnel state: the template, where its fields sit, and the IPv4 ID counter. */
export interface EncapState {
  readonly tunnel: Tunnel;
  readonly template: Uint8Array;
  /** Outer header length: the bytes prepended to each packet. */
  readonly hdrLen: number;
  readonly ipOff: number;
  readonly udpOff: number;
  /** Unfolded sum of the constant words of the IPv4 header (not TOS, lengths, ID, flags). */
  readonly ipConstSum: number;
  /** Unfolded sum of the constant UDP checksum inputs: pseudo-header addresses and protocol, destination port, VXLAN flags word. */
  readonly udpConstSum: number;
  /** Next IPv4 identification value (16 bits); advances only for packets encapsulated. */
  nextId: number;
}

const R_INNER_TRUNCATED = Reason.inner_truncated;
const R_NO_HEADROOM = Reason.no_headroom;
const R_TOO_BIG = Reason.too_big;
const R_MTU_EXCEEDED = Reason.mtu_exceeded;

export function prepareTunnel(t: Tunnel): EncapState {
  const hdrLen = outerHeaderLength(t);
  const tpl = new Uint8Array(hdrLen);
  tpl.set(t.dstMac, 0);
  tpl.set(t.srcMac, 6);
  let p = 12;
  if (t.vlan !== null) {
    const tci = (t.vlanPcp << 13) | t.vlan;
    tpl[12] = 0x81;
    tpl[13] = 0x00;
    tpl[14] = tci >> 8;
    tpl[15] = tci & 0xff;
    p = 16;
  }
  const ipOff = p + 2;
  let udpOff: number;
  let ipConstSum = 0;
  if (t.family === 4) {
    tpl[p] = 0x08;
    tpl[p + 1] = 0x00;
    tpl[ipOff] = 0x45;
    tpl[ipOff + 8] = t.ttl;
    tpl[ipOff + 9] = 17;
    tpl.set(t.local, ipOff + 12);
    tpl.set(t.remote, ipOff + 16);
    udpOff = ipOff + 20;
    // Version/IHL byte, TTL/protocol word and both addresses: everything per-packet
    // fields leave alone.
    ipConstSum = (0x45 << 8) + ((t.ttl << 8) | 17) + sum16(tpl, ipOff + 12, 8);
  } else {
    tpl[p] = 0x86;
    tpl[p + 1] = 0xdd;
    tpl[ipOff] = 0x60;
    tpl[ipOff + 6] = 17;
    tpl[ipOff + 7] = t.ttl;
    tpl.set(t.local, ipOff + 8);
    tpl.set(t.remote, ipOff + 24);
    udpOff = ipOff + 40;
  }
  tpl[udpOff + 2] = t.dstPort >> 8;
  tpl[udpOff + 3] = t.dstPort & 0xff;
  tpl[udpOff + 8] = 0x08;
  const addrSum = t.family === 4 ? sum16(tpl, ipOff + 12, 8) : sum16(tpl, ipOff + 8, 32);
  const udpConstSum = addrSum + 17 + t.dstPort + 0x0800;
  return { tunnel: t, template: tpl, hdrLen, ipOff, udpOff, ipConstSum, udpConstSum, nextId: t.ipId & 0xffff };
}

// One scratch record for the inner parse: the engine is synchronous, so it is never
// shared between two calls in flight.
const info = newInnerInfo();

/**
 * Encapsulates packets [0, b.count) under `vni`. Packets that pass move their data
 * offset back by the outer header length (headroom shrinks by as much); dropped packets
 * keep their bytes and offsets and get a reason. Returns the number encapsulated.
 */
export function encapBurst(s: EncapState, vni: number, b: Burst): number {
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) {
    throw new RangeError(`VNI ${vni} is outside 0–16777215`);
  }
  const t = s.tunnel;
  const v4 = t.family === 4;
  const H = s.hdrLen;
  const ipOff = s.ipOff;
  const udpOff = s.udpOff;
  const tpl = s.template;
  const mtu = t.mtu;
  const tosInherit = t.tos === 'inherit';
  const tosFixed = tosInherit ? 0 : (t.tos as number);
  const dfSet = t.df === 'set';
  const dfInherit = t.df === 'inherit';
  const udpCsum = !v4 || t.udpCsum;
  const pmin = t.srcPortMin;
  const span = t.srcPortMax - t.srcPortMin + 1;
  const vniHi = vni >>> 16;
  const vniMid = (vni >>> 8) & 0xff;
  const vniLo = vni & 0xff;
  // The VXLAN VNI words as the checksum sees them: bytes 4–5 and 6–7 of the header.
  const vniSum = ((vniHi << 8) | vniMid) + (vniLo << 8);
  const buf = b.buf;
  const { off, len, room, reason } = b;
  let ok = 0;
  let id = s.nextId;

  for (let i = 0; i < b.count; i++) {
    const n = len[i]!;
    if (n < 14) {
      reason[i] = R_INNER_TRUNCATED;
      continue;
    }
    if (room[i]! < H) {
      reason[i] = R_NO_HEADROOM;
      continue;
    }
    const udpLen = 16 + n;
    const ipLen = v4 ? 20 + udpLen : udpLen; // IPv4 total length, IPv6 payload length
    if (ipLen > 0xffff) {
      reason[i] = R_TOO_BIG;
      continue;
    }
    if (mtu !== 0 && (v4 ? ipLen : 40 + ipLen) > mtu) {
      reason[i] = R_MTU_EXCEEDED;
      continue;
    }

    const o = off[i]!;
    parseInner(buf, o, n, info);
    const h = flowHash(buf, o, info);
    // h < 2^32, span ≤ 2^16: the product is exact in a double.
    const sport = pmin + Math.floor((h * span) / 0x100000000);
    // A fixed TOS gives the DSCP; the ECN field is the inner packet's (RFC 6040 §4.1,
    // normal mode: copied, CE included; Not-ECT for a frame that is not IP).
    const tos = tosInherit ? info.tos : (tosFixed & 0xfc) | (info.tos & 3);

    const d = o - H;
    buf.set(tpl, d);
    const ip = d + ipOff;
    if (v4) {
      const frag = dfSet || (dfInherit && info.df) ? 0x4000 : 0;
      buf[ip + 1] = tos;
      buf[ip + 2] = ipLen >> 8;
      buf[ip + 3] = ipLen & 0xff;
      buf[ip + 4] = id >> 8;
      buf[ip + 5] = id & 0xff;
      buf[ip + 6] = frag >> 8;
      const ipSum = ~fold(s.ipConstSum + tos + ipLen + id + frag) & 0xffff;
      buf[ip + 10] = ipSum >> 8;
      buf[ip + 11] = ipSum & 0xff;
    } else {
      buf[ip] = 0x60 | (tos >> 4);
      buf[ip + 1] = (tos & 0x0f) << 4;
      buf[ip + 4] = ipLen >> 8;
      buf[ip + 5] = ipLen & 0xff;
    }
    id = (id + 1) & 0xffff;

    const u = d + udpOff;
    buf[u] = sport >> 8;
    buf[u + 1] = sport & 0xff;
    buf[u + 4] = udpLen >> 8;
    buf[u + 5] = udpLen & 0xff;
    buf[u + 12] = vniHi;
    buf[u + 13] = vniMid;
    buf[u + 14] = vniLo;
    if (udpCsum) {
      // Pseudo-header length and UDP length field are the same value, hence twice.
      let c = ~fold(sum16(buf, o, n, s.udpConstSum + udpLen + udpLen + sport + vniSum)) & 0xffff;
      if (c === 0) c = 0xffff;
      buf[u + 6] = c >> 8;
      buf[u + 7] = c & 0xff;
    }

    off[i] = d;
    len[i] = n + H;
    room[i] = room[i]! - H;
    reason[i] = 0;
    ok++;
  }
  s.nextId = id;
  return ok;
}
