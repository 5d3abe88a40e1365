// The inner-frame parse of docs/vxlan-engine.md §3.4: VLAN skipping, inner IPv4/IPv6
// detection, and the flow key that feeds the UDP source port hash, plus the TOS and DF
// values that `inherit` takes. The engine calls it once per packet on a reused record.
import { CRC32C_INIT, crc32cByte, crc32cFinal, crc32cUpdate } from './crc32c.js';

/** Inner network layer as the parse decides it: 0 = not IP, 4 = IPv4, 6 = IPv6. */
export type InnerKind = 0 | 4 | 6;

/** Result of `parseInner`. Offsets are relative to the start of the inner frame. */
export interface InnerInfo {
  kind: InnerKind;
  /** Offset of the network header (after up to two VLAN tags). */
  l3: number;
  /** Offset of the transport header (meaningful when kind ≠ 0). */
  l4: number;
  /** IPv4 protocol or IPv6 next header (kind ≠ 0). */
  proto: number;
  /** IPv4 with MF set or a non-zero fragment offset. */
  frag: boolean;
  /** Whether the L4 ports take part in the flow key. */
  ports: boolean;
  /** Inner IPv4 TOS or IPv6 traffic class; 0 when not IP. What `tos: inherit` takes. */
  tos: number;
  /** Inner IPv4 with DF set, or inner IPv6. What `df: inherit` takes. */
  df: boolean;
}

export function newInnerInfo(): InnerInfo {
  return { kind: 0, l3: 14, l4: 0, proto: 0, frag: false, ports: false, tos: 0, df: false };
}

/**
 * Parses the inner frame `buf[off, off+n)` into `out`. The caller guarantees n ≥ 14
 * (encap drops shorter frames before it gets here).
 */
export function parseInner(buf: Uint8Array, off: number, n: number, out: InnerInfo): InnerInfo {
  let type = (buf[off + 12]! << 8) | buf[off + 13]!;
  let l3 = 14;
  for (let tags = 0; (type === 0x8100 || type === 0x88a8) && tags < 2 && l3 + 4 <= n; tags++) {
    type = (buf[off + l3 + 2]! << 8) | buf[off + l3 + 3]!;
    l3 += 4;
  }
  out.l3 = l3;
  out.kind = 0;
  out.l4 = 0;
  out.proto = 0;
  out.frag = false;
  out.ports = false;
  out.tos = 0;
  out.df = false;
  const p = off + l3;
  if (type === 0x0800 && l3 + 20 <= n && buf[p]! >> 4 === 4) {
    const hl = (buf[p]! & 0x0f) * 4;
    if (hl >= 20 && l3 + hl <= n) {
      const fo = (buf[p + 6]! << 8) | buf[p + 7]!;
      out.kind = 4;
      out.l4 = l3 + hl;
      out.proto = buf[p + 9]!;
      out.frag = (fo & 0x3fff) !== 0; // MF (0x2000) or any offset bit
      out.tos = buf[p + 1]!;
      out.df = (fo & 0x4000) !== 0;
    }
  } else if (type === 0x86dd && l3 + 40 <= n && buf[p]! >> 4 === 6) {
    out.kind = 6;
    out.l4 = l3 + 40;
    out.proto = buf[p + 6]!;
    out.tos = ((buf[p]! & 0x0f) << 4) | (buf[p + 1]! >> 4);
    out.df = true;
  }
  if (out.kind !== 0) {
    const pr = out.proto;
    out.ports = (pr === 6 || pr === 17 || pr === 132) && !out.frag && out.l4 + 4 <= n;
  }
  return out;
}

/** CRC-32C of the flow key of a parsed inner frame, hashed in place piece by piece. */
export function flowHash(buf: Uint8Array, off: number, info: InnerInfo): number {
  let c = crc32cUpdate(CRC32C_INIT, buf, off, 12);
  if (info.kind === 4) c = crc32cUpdate(c, buf, off + info.l3 + 12, 8);
  else if (info.kind === 6) c = crc32cUpdate(c, buf, off + info.l3 + 8, 32);
  if (info.kind !== 0) {
    if (info.ports) c = crc32cUpdate(c, buf, off + info.l4, 4);
    c = crc32cByte(c, info.proto);
  }
  return crc32cFinal(c);
}

/** The flow key bytes of an inner frame (≥ 14 bytes), for tests and diagnostics. */
export function flowKey(frame: Uint8Array): Uint8Array {
  const info = parseInner(frame, 0, frame.length, newInnerInfo());
  const parts: number[] = [...frame.subarray(0, 12)];
  if (info.kind === 4) parts.push(...frame.subarray(info.l3 + 12, info.l3 + 20));
  else if (info.kind === 6) parts.push(...frame.subarray(info.l3 + 8, info.l3 + 40));
  if (info.kind !== 0) {
    if (info.ports) parts.push(...frame.subarray(info.l4, info.l4 + 4));
    parts.push(info.proto);
  }
  return Uint8Array.from(parts);
}

/** UDP source port from a flow hash: min + floor(h · span / 2^32), exact in doubles. */
export function srcPortFromHash(h: number, min: number, max: number): number {
  // h < 2^32 and span ≤ 2^16, so the product stays below 2^48 and is exact.
  return min + Math.floor((h * (max - min + 1)) / 0x100000000);
}
