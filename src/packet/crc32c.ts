// CRC-32C (Castagnoli), the hash behind the VXLAN UDP source port (docs/vxlan-engine.md
// §3.3). Table-driven, one byte per step; the state form lets a flow key be hashed in
// pieces straight out of the packet without being copied together first.

/** Reflected form of the Castagnoli polynomial 0x1EDC6F41. */
const POLY = 0x82f63b78;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Initial register value; pass it to the first `crc32cUpdate`. */
export const CRC32C_INIT = 0xffffffff;

/** Runs `buf[off, off+len)` through the register `crc` and returns the new register. */
export function crc32cUpdate(crc: number, buf: Uint8Array, off: number, len: number): number {
  let c = crc;
  const end = off + len;
  for (let i = off; i < end; i++) c = TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/** Runs one byte through the register. */
export function crc32cByte(crc: number, byte: number): number {
  return TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
}

/** The CRC value from a register: final XOR, as an unsigned 32-bit number. */
export function crc32cFinal(crc: number): number {
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-32C of `buf[off, off+len)`. */
export function crc32c(buf: Uint8Array, off = 0, len = buf.length - off): number {
  return crc32cFinal(crc32cUpdate(CRC32C_INIT, buf, off, len));
}
