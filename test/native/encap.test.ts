// Native encapsulation against docs/vxlan-engine.md §3: known-answer vectors derived
// independently of the C code, every outer field by offset, checksums, the source port,
// TOS/DF inheritance, the IPv4 ID counter, the drop checks in order, and counters.
import { describe, expect, it } from 'vitest';
import { allocBurst } from '../../src/packet/burst.js';
import { Reason } from '../../src/packet/reasons.js';
import {
  addon, be16, burstOf, concat, crc32cRef, encapOne, ether, hex, innerUdp4, ipv4, ipv6, onesSum, packet, toHex,
  tunnel, udp, udpChecksum, v6,
  STATS_HEAD,
} from './helpers.js';

// Known answers, derived from the contract with an independent implementation (bitwise
// CRC-32C, RFC 1071 sums in Python) and checked field by field in the comments.
//
// Vector A: IPv4 tunnel 192.0.2.1 → 198.51.100.2, VLAN 100 PCP 5, UDP checksum on,
// ipId 0x1234, VNI 0x123456; inner IPv4 UDP 10.0.0.1:1234 → 10.0.0.2:5678 (55 bytes).
//   flow key = 525400000002 525400000001 | 0a000001 0a000002 | 04d2 162e | 11
//   CRC-32C = 0x7f2870bb → port = 49152 + floor(0x7f2870bb * 16384 / 2^32) = 57290 (0xdfca)
//   IPv4 sum: 4500+005b+1234+0000+4011+c000+0201+c633+6402 = 0x283d6 → 0x83d8 → ~ = 0x7c27
const innerA = hex('52540000000252540000000108004500002900014000401126c10a0000010a00000204d2162e0015000068656c6c6f2c2076786c616e21');
const hdrA = hex(
  '020000000002 020000000001 8100 a064 0800' + // Ethernet, TCI = 5 << 13 | 100
    '45 00 005b 1234 0000 40 11 7c27 c0000201 c6336402' + // IPv4: total length 36 + 55 = 91
    'dfca 12b5 0047 8964' + // UDP: 57290 → 4789, length 16 + 55, checksum
    '08000000 12345600', // VXLAN
);
const cfgA = () => tunnel({ vlan: 100, vlanPcp: 5, udpCsum: true, ipId: 0x1234 });

// Vector B: IPv6 tunnel 2001:db8::1 → 2001:db8::2, ports 1000–1999 → 8472, hop limit 9,
// TOS inherit; inner IPv6 TCP fd00::1:443 → fd00::2:50000, traffic class 0xb8 (74 bytes).
//   flow key = MACs | fd00::1 fd00::2 | 01bb c350 | 06 → CRC-32C 0x0f467f30
//   port = 1000 + floor(0x0f467f30 * 1000 / 2^32) = 1059 (0x0423)
const innerB = hex('52540000000452540000000386dd6b81234500140640fd000000000000000000000000000001fd00000000000000000000000000000201bbc3500000000100000000501003e800000000');
const hdrB = hex(
  '020000000022 020000000011 86dd' +
    '6b800000 005a 11 09 20010db8000000000000000000000001 20010db8000000000000000000000002' + // TC 0xb8 inherited, flow label 0, payload 16 + 74
    '0423 2118 005a 9bd8' + // UDP: 1059 → 8472, checksum always on IPv6
    '08000000 00000700',
);
const cfgB = () =>
  tunnel({
    local: '2001:db8::1', remote: '2001:db8::2', srcMac: '02:00:00:00:00:11', dstMac: '02:00:00:00:00:22',
    srcPortMin: 1000, srcPortMax: 1999, dstPort: 8472, ttl: 9, tos: 'inherit', df: 'inherit',
  });

describe.each(['hw', 'sw'] as const)('encap known answers (%s CRC)', (impl) => {
  const run = (fn: () => void) => () => {
    if (impl === 'hw' && !addon.cpuFeatures().sse42) return;
    addon.crcSelect(impl);
    try {
      fn();
    } finally {
      addon.crcSelect('auto');
    }
  };

  it('vector A: IPv4 + VLAN + UDP checksum', run(() => {
    const out = encapOne(cfgA(), 0x123456, innerA);
    expect(toHex(out.slice(0, 54))).toBe(toHex(hdrA));
    expect(toHex(out.slice(54))).toBe(toHex(innerA));
  }));

  it('vector B: IPv6, inherited traffic class', run(() => {
    const out = encapOne(cfgB(), 7, innerB);
    expect(toHex(out.slice(0, 70))).toBe(toHex(hdrB));
    expect(toHex(out.slice(70))).toBe(toHex(innerB));
  }));
});

describe('encap outer header, field by field', () => {
  it('IPv4 with VLAN: every field at its offset; both checksums verify', () => {
    const inner = innerUdp4(7, 301); // odd length: the UDP sum pads a zero byte
    const cfg = tunnel({
      srcMac: '02:aa:bb:cc:dd:01', dstMac: '02:aa:bb:cc:dd:02', vlan: 4094, vlanPcp: 7, ttl: 17, tos: 0x2e,
      df: 'set', udpCsum: true, ipId: 999, dstPort: 4790, srcPortMin: 40000, srcPortMax: 40999,
    });
    const o = encapOne(cfg, 0xabcdef, inner);
    expect(o.length).toBe(54 + 301);
    expect(toHex(o.slice(0, 6))).toBe('02aabbccdd02');
    expect(toHex(o.slice(6, 12))).toBe('02aabbccdd01');
    expect(be16(o, 12)).toBe(0x8100);
    expect(be16(o, 14)).toBe((7 << 13) | 4094);
    expect(be16(o, 16)).toBe(0x0800);
    const ip = 18;
    expect(o[ip]).toBe(0x45);
    expect(o[ip + 1]).toBe(0x2c); // the DSCP of tos 0x2e; the ECN field is the inner packet's (Not-ECT)
    expect(be16(o, ip + 2)).toBe(36 + 301);
    expect(be16(o, ip + 4)).toBe(999);
    expect(be16(o, ip + 6)).toBe(0x4000);
    expect(o[ip + 8]).toBe(17);
    expect(o[ip + 9]).toBe(17);
    expect(onesSum(o.slice(ip, ip + 20))).toBe(0xffff);
    expect(toHex(o.slice(ip + 12, ip + 20))).toBe('c0000201c6336402');
    const u = ip + 20;
    const sport = be16(o, u);
    expect(sport).toBeGreaterThanOrEqual(40000);
    expect(sport).toBeLessThanOrEqual(40999);
    expect(be16(o, u + 2)).toBe(4790);
    expect(be16(o, u + 4)).toBe(16 + 301);
    expect(be16(o, u + 6)).toBe(udpChecksum(o.slice(ip + 12, ip + 16), o.slice(ip + 16, ip + 20), o.slice(u)));
    expect(toHex(o.slice(u + 8, u + 16))).toBe('08000000abcdef00');
    expect(toHex(o.slice(u + 16))).toBe(toHex(inner));
  });

  it('IPv4 without VLAN and with udpCsum off: checksum 0, DF clear by default', () => {
    const o = encapOne(tunnel(), 1, innerUdp4(1));
    expect(be16(o, 12)).toBe(0x0800);
    expect(be16(o, 14 + 6)).toBe(0);
    expect(onesSum(o.slice(14, 34))).toBe(0xffff);
    expect(be16(o, 34 + 6)).toBe(0);
  });

  it('IPv6: version, traffic class, flow label 0, payload length, hop limit; UDP checksum even with udpCsum off', () => {
    const inner = innerUdp4(3, 1001);
    const cfg = tunnel({ local: 'fd00::a', remote: 'fd00::b', tos: 0x5c, ttl: 200, udpCsum: false, vlan: 0 });
    const o = encapOne(cfg, 42, inner);
    expect(be16(o, 12)).toBe(0x8100);
    expect(be16(o, 14)).toBe(0); // VID 0: priority-tagged
    expect(be16(o, 16)).toBe(0x86dd);
    const ip = 18;
    expect(o[ip]! >> 4).toBe(6);
    expect(((o[ip]! & 0xf) << 4) | (o[ip + 1]! >> 4)).toBe(0x5c);
    expect(((o[ip + 1]! & 0xf) << 16) | be16(o, ip + 2)).toBe(0);
    expect(be16(o, ip + 4)).toBe(16 + 1001);
    expect(o[ip + 6]).toBe(17);
    expect(o[ip + 7]).toBe(200);
    expect(toHex(o.slice(ip + 8, ip + 24))).toBe(toHex(v6('fd00::a')));
    expect(toHex(o.slice(ip + 24, ip + 40))).toBe(toHex(v6('fd00::b')));
    const u = ip + 40;
    const c = be16(o, u + 6);
    expect(c).not.toBe(0);
    expect(c).toBe(udpChecksum(o.slice(ip + 8, ip + 24), o.slice(ip + 24, ip + 40), o.slice(u)));
  });

  it('IPv6 ignores df', () => {
    for (const df of ['set', 'unset', 'inherit'] as const) {
      const o = encapOne(tunnel({ local: 'fd00::a', remote: 'fd00::b', df }), 1, innerUdp4(1));
      expect(o.length).toBe(70 + 64);
    }
  });
});

describe('a UDP checksum that computes to zero', () => {
  it('is sent as 0xFFFF (IPv4 and IPv6), and decap with verification accepts it', () => {
    for (const spec of [{ udpCsum: true }, { local: 'fd00::1', remote: 'fd00::2' }]) {
      const cfg = tunnel(spec);
      const l4 = spec.local ? 14 + 40 : 14 + 20;
      // The payload does not change the source port, so choose its last word to make
      // the ones' complement sum 0xFFFF, whose complement is 0.
      const frame = innerUdp4(5, 80);
      const c = be16(encapOne(cfg, 3, frame), l4 + 6);
      frame[78] = c >> 8;
      frame[79] = c & 0xff;
      const o = encapOne(cfg, 3, frame);
      expect(be16(o, l4 + 6)).toBe(0xffff);
      const b = burstOf([o]);
      const d = addon.decapCreate({ dstPort: 4789, vnis: null, locals: null, verifyUdpCsum: true, dropInnerVlan: false });
      expect(addon.decap(d, b)).toBe(1);
    }
  });
});

describe('UDP source port (§3.3)', () => {
  const portOf = (cfg: ReturnType<typeof tunnel>, frame: Uint8Array) => be16(encapOne(cfg, 1, frame), 34);

  it('equals min + floor(crc * span / 2^32) of the flow key', () => {
    const cfg = tunnel({ srcPortMin: 1, srcPortMax: 65535 });
    for (let f = 0; f < 50; f++) {
      const frame = innerUdp4(f * 7919);
      const key = concat(frame.slice(0, 12), frame.slice(26, 34), frame.slice(34, 38), Uint8Array.of(17));
      const h = crc32cRef(key);
      expect(portOf(cfg, frame)).toBe(1 + Math.floor((h * 65535) / 2 ** 32));
    }
  });

  it('is stable per flow and spreads across flows', () => {
    const cfg = tunnel();
    const ports = new Set<number>();
    for (let f = 0; f < 200; f++) {
      const a = portOf(cfg, innerUdp4(f));
      expect(portOf(cfg, innerUdp4(f, 900))).toBe(a); // same flow, another size
      expect(a).toBeGreaterThanOrEqual(49152);
      ports.add(a);
    }
    expect(ports.size).toBeGreaterThan(150);
  });

  it('stays in a one- and two-port range', () => {
    for (let f = 0; f < 40; f++) {
      expect(portOf(tunnel({ srcPortMin: 5000, srcPortMax: 5000 }), innerUdp4(f))).toBe(5000);
      expect([7000, 7001]).toContain(portOf(tunnel({ srcPortMin: 7000, srcPortMax: 7001 }), innerUdp4(f)));
    }
  });
});

describe('TOS and DF inheritance (§3.2)', () => {
  const v4tcp = (tos: number, flags: number) => ether({ payload: ipv4(new Uint8Array(20), { proto: 6, tos, flags }) });
  const v6udp = (tc: number) => ether({ type: 0x86dd, payload: ipv6(udp(1, 2, new Uint8Array(8)), { tc }) });
  const arp = ether({ type: 0x0806, payload: new Uint8Array(28) });
  const inherit = tunnel({ tos: 'inherit', df: 'inherit' });
  const outer = (f: Uint8Array) => {
    const o = encapOne(inherit, 5, f);
    expect(onesSum(o.slice(14, 34))).toBe(0xffff); // the patched header still sums right
    return { tos: o[15], flags: be16(o, 20) };
  };

  it('takes the inner IPv4 TOS and DF bit', () => {
    expect(outer(v4tcp(0xb8, 0x4000))).toEqual({ tos: 0xb8, flags: 0x4000 });
    expect(outer(v4tcp(0x03, 0))).toEqual({ tos: 0x03, flags: 0 });
  });

  it('takes the inner IPv6 traffic class, and sets DF for IPv6', () => {
    expect(outer(v6udp(0xa4))).toEqual({ tos: 0xa4, flags: 0x4000 });
  });

  it('uses 0 and no DF for frames that are not IP', () => {
    expect(outer(arp)).toEqual({ tos: 0, flags: 0 });
  });

  it('df set sets DF whatever the inner frame; a fixed TOS ignores the inner one', () => {
    const o = encapOne(tunnel({ df: 'set', tos: 0x10 }), 5, arp);
    expect(be16(o, 20)).toBe(0x4000);
    const o2 = encapOne(tunnel({ df: 'unset', tos: 0x10 }), 5, v4tcp(0xb8, 0x4000));
    expect(be16(o2, 20)).toBe(0);
    expect(o2[15]).toBe(0x10);
  });

  it('inherits the traffic class into an IPv6 outer header', () => {
    const o = encapOne(tunnel({ local: 'fd00::a', remote: 'fd00::b', tos: 'inherit' }), 5, v4tcp(0x48, 0));
    expect(((o[14]! & 0xf) << 4) | (o[15]! >> 4)).toBe(0x48);
  });
});

describe('encap checks (§3.1) and what drops leave alone', () => {
  it('drops in the contract order and leaves dropped packets untouched', () => {
    const frames = [
      innerUdp4(1).slice(0, 13), // inner_truncated, even with headroom 0 below
      innerUdp4(2), // no_headroom
      innerUdp4(3), // ok: exactly enough headroom
      innerUdp4(4), // ok
    ];
    const b = burstOf(frames, 128);
    b.room[0] = 0;
    b.room[1] = 49;
    b.room[2] = 50;
    const before = b.buf.slice();
    const offs = b.off.slice(), lens = b.len.slice(), rooms = b.room.slice();
    const t = addon.tunnelCreate(tunnel());
    expect(addon.encap(t, 1, b)).toBe(2);
    expect([...b.reason]).toEqual([Reason.inner_truncated, Reason.no_headroom, Reason.ok, Reason.ok]);
    for (const i of [0, 1]) {
      expect(b.off[i]).toBe(offs[i]);
      expect(b.len[i]).toBe(lens[i]);
      expect(b.room[i]).toBe(rooms[i]);
      const s = offs[i]! - 128, e = offs[i]! + lens[i]!;
      expect(toHex(b.buf.slice(s, e))).toBe(toHex(before.slice(s, e)));
    }
    expect(b.off[2]).toBe(offs[2]! - 50);
    expect(b.len[2]).toBe(lens[2]! + 50);
    expect(b.room[2]).toBe(0);
  });

  it('too_big: IPv4 total length above 65535, IPv6 payload length above 65535', () => {
    const big = (n: number) => ether({ type: 0x88b5, payload: new Uint8Array(n - 14) });
    const b4 = burstOf([big(65499), big(65500)]);
    expect(addon.encap(addon.tunnelCreate(tunnel()), 1, b4)).toBe(1);
    expect([...b4.reason]).toEqual([Reason.ok, Reason.too_big]);
    expect(be16(packet(b4, 0), 16)).toBe(65535);
    const b6 = burstOf([big(65519), big(65520)]);
    expect(addon.encap(addon.tunnelCreate(tunnel({ local: 'fd00::1', remote: 'fd00::2' })), 1, b6)).toBe(1);
    expect([...b6.reason]).toEqual([Reason.ok, Reason.too_big]);
  });

  it('too_big comes before mtu_exceeded, and no_headroom before too_big', () => {
    const big = ether({ type: 0x88b5, payload: new Uint8Array(65600) });
    const b = burstOf([big, big]);
    b.room[1] = 10;
    addon.encap(addon.tunnelCreate(tunnel({ mtu: 1500 })), 1, b);
    expect([...b.reason]).toEqual([Reason.too_big, Reason.no_headroom]);
  });

  it('mtu_exceeded: the outer IP packet length against mtu', () => {
    const sized = (n: number) => ether({ type: 0x88b5, payload: new Uint8Array(n - 14) });
    const b4 = burstOf([sized(1464), sized(1465)]);
    addon.encap(addon.tunnelCreate(tunnel({ mtu: 1500 })), 1, b4);
    expect([...b4.reason]).toEqual([Reason.ok, Reason.mtu_exceeded]);
    const b6 = burstOf([sized(1444), sized(1445)]);
    addon.encap(addon.tunnelCreate(tunnel({ local: 'fd00::1', remote: 'fd00::2', mtu: 1500 })), 1, b6);
    expect([...b6.reason]).toEqual([Reason.ok, Reason.mtu_exceeded]);
    const small = burstOf([sized(32), sized(33)]); // the smallest mtu: 36 + 32 = 68
    addon.encap(addon.tunnelCreate(tunnel({ mtu: 68 })), 1, small);
    expect([...small.reason]).toEqual([Reason.ok, Reason.mtu_exceeded]);
  });
});

describe('IPv4 identification (§3.2)', () => {
  it('starts at ipId, counts encapsulated packets only, wraps at 65536, continues across bursts', () => {
    const t = addon.tunnelCreate(tunnel({ ipId: 65534 }));
    const b = burstOf([innerUdp4(1), innerUdp4(2).slice(0, 10), innerUdp4(3), innerUdp4(4)]);
    expect(addon.encap(t, 1, b)).toBe(3);
    const ids = [0, 2, 3].map((i) => be16(packet(b, i), 18));
    expect(ids).toEqual([65534, 65535, 0]);
    expect(addon.tunnelIpId(t)).toBe(1);
    const b2 = burstOf([innerUdp4(5)]);
    addon.encap(t, 1, b2);
    expect(be16(packet(b2, 0), 18)).toBe(1);
  });

  it('keeps one counter per tunnel', () => {
    const t1 = addon.tunnelCreate(tunnel({ ipId: 10 }));
    const t2 = addon.tunnelCreate(tunnel({ ipId: 500 }));
    const run = (t: typeof t1) => {
      const b = burstOf([innerUdp4(1)]);
      addon.encap(t, 1, b);
      return be16(packet(b, 0), 18);
    };
    expect([run(t1), run(t2), run(t1), run(t2)]).toEqual([10, 500, 11, 501]);
  });
});

describe('encap bursts and counters', () => {
  it('encapsulates 256 packets of mixed sizes, each independently right', () => {
    const frames = Array.from({ length: 256 }, (_, i) => innerUdp4(i, 60 + ((i * 37) % 1400)));
    const b = burstOf(frames);
    const cfg = tunnel({ udpCsum: true });
    expect(addon.encap(addon.tunnelCreate(cfg), 77, b)).toBe(256);
    frames.forEach((f, i) => {
      const o = packet(b, i);
      const one = encapOne(cfg, 77, f);
      // identical except the IPv4 ID and the IP checksum that covers it
      expect(be16(o, 18)).toBe(i);
      expect(toHex(o.slice(34))).toBe(toHex(one.slice(34)));
      expect(onesSum(o.slice(14, 34))).toBe(0xffff);
    });
  });

  it('counts packets, outer bytes and drops per reason in the zero-copy stats view', () => {
    const t = addon.tunnelCreate(tunnel());
    const s = addon.stats(t);
    expect(addon.stats(t)).toBe(s); // the same array each time
    const b = burstOf([innerUdp4(1, 100), innerUdp4(2, 200), innerUdp4(3).slice(0, 5)]);
    addon.encap(t, 1, b);
    expect(s[0]).toBe(2n);
    expect(s[1]).toBe(BigInt(100 + 50 + 200 + 50));
    expect(s[STATS_HEAD + Reason.inner_truncated]).toBe(1n);
    const b2 = burstOf([innerUdp4(1)]);
    b2.room[0] = 0;
    addon.encap(t, 1, b2);
    expect(s[STATS_HEAD + Reason.no_headroom]).toBe(1n);
    expect(s[0]).toBe(2n);
  });

  it('takes more than 256 packets in one call, in chunks, with one ID sequence', () => {
    const n = 600;
    const frame = innerUdp4(1);
    const b = {
      buf: new Uint8Array(n * 256), count: n, off: new Uint32Array(n), len: new Uint32Array(n), room: new Uint32Array(n),
      reason: new Uint8Array(n), vni: new Uint32Array(n), vtepFamily: new Uint8Array(n), vtep: new Uint8Array(16 * n),
    };
    for (let i = 0; i < n; i++) {
      b.off[i] = i * 256 + 128;
      b.len[i] = frame.length;
      b.room[i] = 128;
      b.buf.set(frame, i * 256 + 128);
    }
    const t = addon.tunnelCreate(tunnel());
    expect(addon.encap(t, 1, b)).toBe(n);
    for (let i = 0; i < n; i++) expect(be16(b.buf, b.off[i]! + 18)).toBe(i);
    b.len[280] = 1 << 20; // a bad packet in the second chunk
    expect(() => addon.encap(t, 1, b)).toThrow(/burst packet 280/);
    expect(addon.tunnelIpId(t)).toBe(n + 256); // the first chunk had already run
  });

  it('accepts an empty burst', () => {
    const b = allocBurst(4, 64);
    expect(addon.encap(addon.tunnelCreate(tunnel()), 1, b)).toBe(0);
  });
});

// Checksums left for a device (DPDK tx offload): the IPv4 header checksum stays 0 and the
// UDP field holds the pseudo-header sum (addresses, protocol 17, UDP length; folded, not
// complemented), as the mbuf API asks. txFinish, what a port without the offload runs
// before sending, must then give exactly the frame encap computes in software.
describe('outer checksums left for the device (txOffload)', () => {
  const IP = 1, UDP = 2, V6 = 4;
  //   IPv4 pseudo sum: c000+0201+c633+6402+0011+0047 = 0x1ec8e → 0xec8f
  it('vector A: IPv4 header checksum 0, UDP field the pseudo-header sum; finished, vector A exactly', () => {
    const out = encapOne({ ...cfgA(), txOffload: IP | UDP }, 0x123456, innerA);
    const want = Uint8Array.from(hdrA);
    want.set([0, 0], 18 + 10);
    want.set([0xec, 0x8f], 18 + 20 + 6);
    expect(toHex(out.slice(0, 54))).toBe(toHex(want));
    expect(toHex(out.slice(54))).toBe(toHex(innerA));
    addon.txFinish(out, IP | UDP, 18, 20);
    expect(toHex(out.slice(0, 54))).toBe(toHex(hdrA));
  });

  //   IPv6 pseudo sum: 2001+0db8+0001 + 2001+0db8+0002 + 0011 + 005a = 0x5be0
  it('vector B: IPv6 has no header checksum to leave; the UDP field is seeded, and finishing gives vector B', () => {
    const out = encapOne({ ...cfgB(), txOffload: IP | UDP }, 7, innerB);
    const want = Uint8Array.from(hdrB);
    want.set([0x5b, 0xe0], 14 + 40 + 6);
    expect(toHex(out.slice(0, 70))).toBe(toHex(want));
    addon.txFinish(out, UDP | V6, 14, 40);
    expect(toHex(out.slice(0, 70))).toBe(toHex(hdrB));
  });

  it('leaves the UDP checksum 0 on IPv4 without udpCsum, offload or not', () => {
    const inner = innerUdp4(3);
    const off = encapOne({ ...tunnel(), txOffload: IP | UDP }, 9, inner);
    const sw = encapOne(tunnel(), 9, inner);
    expect(be16(off, 14 + 20 + 6)).toBe(0);
    expect(be16(off, 14 + 10)).toBe(0);
    addon.txFinish(off, IP, 14, 20);
    expect(toHex(off)).toBe(toHex(sw));
  });

  it('random frames, both families, tagged or not, UDP checksum on or off: offload + finish = software, byte for byte', () => {
    let seed = 0x5eed;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    for (let k = 0; k < 200; k++) {
      const v6fam = rnd(2) === 1, vlan = rnd(2) ? rnd(4095) : undefined, udpCsum = rnd(2) === 1;
      const spec = {
        ...(v6fam ? { local: '2001:db8::1', remote: '2001:db8::2' } : {}), ...(vlan !== undefined ? { vlan } : {}), udpCsum,
      };
      const payload = Uint8Array.from({ length: rnd(1500) }, () => rnd(256));
      const inner = rnd(2) ? innerUdp4(rnd(65536), 64 + rnd(1400)) : ether({ payload });
      const vni = rnd(1 << 24);
      const sw = encapOne(tunnel(spec), vni, inner);
      const off = encapOne({ ...tunnel(spec), txOffload: IP | UDP }, vni, inner);
      const ol = v6fam ? UDP | V6 : IP | (udpCsum ? UDP : 0);
      addon.txFinish(off, ol, vlan !== undefined ? 18 : 14, v6fam ? 40 : 20);
      expect(toHex(off), `frame ${k}: v6 ${v6fam} vlan ${vlan} udpCsum ${udpCsum} len ${inner.length}`).toBe(toHex(sw));
    }
  });

  it('refuses an offload bit it does not know, naming the field', () => {
    expect(() => addon.tunnelCreate({ ...tunnel(), txOffload: 4 })).toThrow(/cfg\.txOffload/);
    expect(() => addon.txFinish(new Uint8Array(20), IP, 14, 20)).toThrow(/no outer IP/);
  });
});
