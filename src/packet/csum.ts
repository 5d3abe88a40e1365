// Internet checksums (RFC 1071) over byte ranges of a packet buffer, and the pieces the
// engines combine: IPv4 header checksum and the UDP pseudo-header sums (RFC 768, RFC 8200
// §8.1). Sums are kept unfolded while they are built so ranges can be chained cheaply.

/**
 * Adds the 16-bit big-endian words of `buf[off, off+len)` to `acc` and returns the
 * unfolded sum. An odd trailing byte counts as if followed by a zero byte, so only the
 * last range of a chain may have an odd length. Callers fold before the sum nears 2^53;
 * a 64 KiB packet adds less than 2^31.
 */
export function sum16(buf: Uint8Array, off: number, len: number, acc = 0): number {
  let s = acc;
  const end = off + (len & ~1);
  let i = off;
  // Two words per step: fewer loop iterations on the inner frame, which dominates.
  for (; i + 4 <= end; i += 4) {
    s += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!);
  }
  if (i < end) s += (buf[i]! << 8) | buf[i + 1]!;
  if (len & 1) s += buf[off + len - 1]! << 8;
  return s;
}

/** Folds an unfolded sum to 16 bits with end-around carry (the ones' complement sum). */
export function fold(sum: number): number {
  let s = sum;
  // `& 0xffff` is exact for any safe integer (ToInt32 keeps the low 32 bits), the high
  // part needs division because `>>>` would drop bits above 2^32.
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum field value for a range: the complement of its ones' complement sum. */
export function checksum(buf: Uint8Array, off: number, len: number): number {
  return ~fold(sum16(buf, off, len)) & 0xffff;
}

/**
 * IPv4 header checksum for the header at `off` of `hlen` bytes, computed as if the
 * checksum field (bytes 10–11) were zero, whatever it holds now.
 */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number, hlen = 20): number {
  const s = sum16(buf, off, 10) + sum16(buf, off + 12, hlen - 12);
  return ~fold(s) & 0xffff;
}

/** True when the IPv4 header at `off` of `hlen` bytes carries a correct checksum. */
export function ipv4HeaderValid(buf: Uint8Array, off: number, hlen: number): boolean {
  return fold(sum16(buf, off, hlen)) === 0xffff;
}

/**
 * Unfolded IPv4 pseudo-header sum: source and destination (4 bytes each, at `srcOff`,
 * `dstOff`), a zero byte, the protocol, and the upper-layer length.
 */
export function pseudoSum4(buf: Uint8Array, srcOff: number, dstOff: number, proto: number, len: number): number {
  return sum16(buf, srcOff, 4) + sum16(buf, dstOff, 4) + proto + len;
}

/**
 * Unfolded IPv6 pseudo-header sum (RFC 8200 §8.1): source and destination (16 bytes
 * each), the 32-bit upper-layer length, three zero bytes and the next header.
 */
export function pseudoSum6(buf: Uint8Array, srcOff: number, dstOff: number, proto: number, len: number): number {
  return sum16(buf, srcOff, 16) + sum16(buf, dstOff, 16) + Math.floor(len / 0x10000) + (len & 0xffff) + proto;
}
