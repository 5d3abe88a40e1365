// The reason table and CRC-32C / flow hash of the native engine against the contract
// (docs/vxlan-engine.md §3.3–3.4, §6) and a bitwise CRC-32C oracle.
import { describe, expect, it } from 'vitest';
import { REASONS } from '../../src/packet/reasons.js';
import { addon, concat, crc32cRef, ether, hex, ipv4, ipv6, u16, udp, v6 } from './helpers.js';

describe('reason table', () => {
  it('equals src/packet/reasons.ts name for name', () => {
    expect(addon.reasonNames()).toEqual([...REASONS]);
  });

  it('lays out stats as nine counters then one drop counter per reason', () => {
    const layout = addon.statsLayout();
    expect(layout.slice(0, 9)).toEqual([
      'encapPkts', 'encapBytes', 'decapPkts', 'decapBytes', 'learnNew', 'learnMoved', 'learnRefresh', 'learnFull', 'learnLimited',
    ]);
    expect(layout.slice(9)).toEqual(REASONS.map((r) => `drop.${r}`));
  });
});

describe('CRC-32C', () => {
  const check = new TextEncoder().encode('123456789');

  it('has the standard check value 0xE3069283, in both implementations', () => {
    expect(crc32cRef(check)).toBe(0xe3069283);
    expect(addon.crc32c(check)).toBe(0xe3069283);
    expect(addon.crc32c(check, 'sw')).toBe(0xe3069283);
    if (addon.cpuFeatures().sse42) expect(addon.crc32c(check, 'hw')).toBe(0xe3069283);
  });

  it('matches the bitwise oracle on random buffers of every length 0–300', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let n = 0; n <= 300; n++) {
      const b = Uint8Array.from({ length: n }, rnd);
      const want = crc32cRef(b);
      expect(addon.crc32c(b, 'sw')).toBe(want);
      if (addon.cpuFeatures().sse42) expect(addon.crc32c(b, 'hw')).toBe(want);
    }
  });

  it('reports which implementation the packet path uses', () => {
    const f = addon.cpuFeatures();
    expect(f.crc32c).toBe(f.sse42 ? 'sse4.2' : 'table');
  });
});

// The flow key of §3.4, built by hand for each case.
describe('flow hash (§3.4 flow key)', () => {
  const dst = hex('525400000002'), srcm = hex('525400000001');
  const l2 = concat(dst, srcm);
  const a4 = hex('0a000001 0a000002'), a6 = concat(v6('2001:db8::1'), v6('2001:db8::2'));
  const ports = hex('04d2 162e'); // 1234 → 5678

  const cases: [string, Uint8Array, Uint8Array, { tos: number; df: boolean; ip: boolean }][] = [
    ['IPv4 UDP', ether({ payload: ipv4(udp(1234, 5678, new Uint8Array(4))) }), concat(l2, a4, ports, Uint8Array.of(17)), { tos: 0, df: false, ip: true }],
    ['IPv4 TCP with TOS and DF', ether({ payload: ipv4(concat(ports, new Uint8Array(16)), { proto: 6, tos: 0xb8, flags: 0x4000 }) }), concat(l2, a4, ports, Uint8Array.of(6)), { tos: 0xb8, df: true, ip: true }],
    ['IPv4 SCTP', ether({ payload: ipv4(concat(ports, new Uint8Array(8)), { proto: 132 }) }), concat(l2, a4, ports, Uint8Array.of(132)), { tos: 0, df: false, ip: true }],
    ['IPv4 ICMP: no ports', ether({ payload: ipv4(new Uint8Array(8), { proto: 1 }) }), concat(l2, a4, Uint8Array.of(1)), { tos: 0, df: false, ip: true }],
    ['IPv4 first fragment (MF): no ports', ether({ payload: ipv4(udp(1234, 5678, new Uint8Array(4)), { flags: 0x2000 }) }), concat(l2, a4, Uint8Array.of(17)), { tos: 0, df: false, ip: true }],
    ['IPv4 later fragment (offset): no ports', ether({ payload: ipv4(udp(1234, 5678, new Uint8Array(4)), { flags: 0x0010 }) }), concat(l2, a4, Uint8Array.of(17)), { tos: 0, df: false, ip: true }],
    ['IPv4 with options (IHL 6)', ether({ payload: ipv4(udp(1234, 5678, new Uint8Array(4)), { options: hex('01010101') }) }), concat(l2, a4, ports, Uint8Array.of(17)), { tos: 0, df: false, ip: true }],
    ['IPv4 UDP with ports cut short (l4 + 4 > n)', ether({ payload: ipv4(hex('04d216')) }), concat(l2, a4, Uint8Array.of(17)), { tos: 0, df: false, ip: true }],
    ['IPv4 header truncated: not IP', ether({ payload: ipv4(new Uint8Array(0)).slice(0, 19) }), l2, { tos: 0, df: false, ip: false }],
    ['IPv4 IHL 4: not IP', ether({ payload: ipv4(udp(1, 2, new Uint8Array(4)), { ihl: 4 }) }), l2, { tos: 0, df: false, ip: false }],
    ['IPv4 IHL past the end: not IP', ether({ payload: ipv4(new Uint8Array(0), { ihl: 15 }) }), l2, { tos: 0, df: false, ip: false }],
    ['version 6 in an 0x0800 frame: not IP', ether({ payload: ipv4(udp(1, 2, new Uint8Array(4)), { version: 6 }) }), l2, { tos: 0, df: false, ip: false }],
    ['IPv6 UDP with traffic class', ether({ type: 0x86dd, payload: ipv6(udp(1234, 5678, new Uint8Array(4)), { tc: 0xa4 }) }), concat(l2, a6, ports, Uint8Array.of(17)), { tos: 0xa4, df: true, ip: true }],
    ['IPv6 hop-by-hop first: extension headers not walked', ether({ type: 0x86dd, payload: ipv6(udp(1234, 5678, new Uint8Array(4)), { next: 0 }) }), concat(l2, a6, Uint8Array.of(0)), { tos: 0, df: true, ip: true }],
    ['one VLAN tag', ether({ vlans: [0x8100], payload: ipv4(udp(1234, 5678, new Uint8Array(4))) }), concat(l2, a4, ports, Uint8Array.of(17)), { tos: 0, df: false, ip: true }],
    ['QinQ (88a8 then 8100)', ether({ vlans: [0x88a8, 0x8100], payload: ipv4(udp(1234, 5678, new Uint8Array(4))) }), concat(l2, a4, ports, Uint8Array.of(17)), { tos: 0, df: false, ip: true }],
    ['three tags: the third is not skipped', ether({ vlans: [0x8100, 0x8100, 0x8100], payload: ipv4(udp(1234, 5678, new Uint8Array(4))) }), l2, { tos: 0, df: false, ip: false }],
    ['ARP', ether({ dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806, payload: new Uint8Array(28) }), concat(hex('ffffffffffff'), srcm), { tos: 0, df: false, ip: false }],
    ['14-byte frame', ether({ type: 0x0800 }), l2, { tos: 0, df: false, ip: false }],
    ['tag that does not fit: stays 0x8100', concat(l2, u16(0x8100), hex('0064')), l2, { tos: 0, df: false, ip: false }],
  ];

  for (const impl of ['hw', 'sw'] as const) {
    describe(`${impl} CRC`, () => {
      for (const [name, frame, key, meta] of cases) {
        it(name, () => {
          if (impl === 'hw' && !addon.cpuFeatures().sse42) return;
          addon.crcSelect(impl);
          try {
            const r = addon.flowHash(frame);
            expect(r.hash).toBe(crc32cRef(key));
            expect({ tos: r.tos, df: r.df, ip: r.ip }).toEqual(meta);
          } finally {
            addon.crcSelect('auto');
          }
        });
      }
    });
  }
});
