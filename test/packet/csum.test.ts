// CRC-32C and Internet checksum primitives against published values: the CRC-32C check
// value and RFC 3720 vectors, RFC 1071's worked example, a well-known IPv4 header, and
// UDP checksums scapy computed for IPv4 and IPv6 pseudo-headers.
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cFinal, crc32cUpdate, CRC32C_INIT } from '../../src/packet/crc32c.js';
import { checksum, fold, ipv4HeaderChecksum, ipv4HeaderValid, pseudoSum4, pseudoSum6, sum16 } from '../../src/packet/csum.js';
import { bytes, ip } from './frames.js';

const ascii = (s: string) => new TextEncoder().encode(s);
const h = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

describe('crc32c', () => {
  it('has the standard check value', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
  });

  it('matches published CRC-32C vectors (RFC 3720 B.4)', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('hashes in pieces the same as in one go, and honours offsets', () => {
    const data = ascii('xx123456789yy');
    expect(crc32c(data, 2, 9)).toBe(0xe3069283);
    const c = crc32cUpdate(crc32cUpdate(CRC32C_INIT, data, 2, 4), data, 6, 5);
    expect(crc32cFinal(c)).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });
});

describe('internet checksum (RFC 1071)', () => {
  it('sums the RFC 1071 §3 example to 0xddf2', () => {
    const d = h('00 01 f2 03 f4 f5 f6 f7');
    expect(fold(sum16(d, 0, d.length))).toBe(0xddf2);
    expect(checksum(d, 0, d.length)).toBe(0x220d);
  });

  it('is byte-order independent: swapped input gives the swapped sum (RFC 1071 §2 B)', () => {
    const d = h('01 00 03 f2 f5 f4 f7 f6');
    expect(fold(sum16(d, 0, d.length))).toBe(0xf2dd);
  });

  it('pads an odd trailing byte with zero', () => {
    expect(fold(sum16(h('00 01 f2'), 0, 3))).toBe(0xf201);
    expect(fold(sum16(h('ff ff ff ff ff'), 1, 3))).toBe(fold(0xffff + 0xff00));
  });

  it('chains ranges and folds with end-around carry, also above 2^32', () => {
    const d = h('00 01 f2 03 f4 f5 f6 f7');
    expect(fold(sum16(d, 4, 4, sum16(d, 0, 4)))).toBe(0xddf2);
    expect(fold(0x1fffe)).toBe(0xffff);
    expect(fold(0x10000)).toBe(1);
    expect(fold(0x1_0000_0000 * 3 + 5)).toBe(8);
  });

  it('computes the checksum of a well-known IPv4 header as 0xb861', () => {
    const hdr = h('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
    expect(ipv4HeaderChecksum(hdr, 0, 20)).toBe(0xb861);
    expect(ipv4HeaderValid(hdr, 0, 20)).toBe(true);
    hdr[10] = 0;
    hdr[11] = 0;
    expect(ipv4HeaderChecksum(hdr, 0, 20)).toBe(0xb861);
    expect(ipv4HeaderValid(hdr, 0, 20)).toBe(false);
  });

  // Expected values from scapy 2.5: IP(src, dst)/UDP(sport=1, dport=2)/payload.
  it('gives scapy’s IPv4 UDP checksum through the RFC 768 pseudo-header', () => {
    const u = h('0001 0002 000b 0000 616263');
    const addrs = bytes(ip('10.0.0.1'), ip('10.0.0.2'));
    expect(checksum(u, 0, u.length)).not.toBe(0x2770);
    const c = ~fold(sum16(u, 0, u.length, pseudoSum4(addrs, 0, 4, 17, u.length))) & 0xffff;
    expect(c).toBe(0x2770);
  });

  it('gives scapy’s IPv6 UDP checksum through the RFC 8200 §8.1 pseudo-header', () => {
    const u = h('0001 0002 000c 0000 61626364');
    const addrs = bytes(ip('2001:db8::1'), ip('2001:db8::2'));
    const c = ~fold(sum16(u, 0, u.length, pseudoSum6(addrs, 0, 16, 17, u.length))) & 0xffff;
    expect(c).toBe(0xdf97);
    u[6] = 0xdf;
    u[7] = 0x97;
    expect(fold(sum16(u, 0, u.length, pseudoSum6(addrs, 0, 16, 17, u.length)))).toBe(0xffff);
  });
});
