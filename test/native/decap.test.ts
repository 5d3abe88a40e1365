// Native decapsulation against docs/vxlan-engine.md §4: round trips, each malformed
// outer frame with its exact reason, the order of the checks when several apply, what
// a drop leaves alone, learning, and counters.
import { describe, expect, it } from 'vitest';
import { Reason, type ReasonName } from '../../src/packet/reasons.js';
import type { RawDecapCfg } from '../../src/dataplane/addon-types.js';
import {
  addon, burstOf, concat, encapOne, ether, hex, innerUdp4, ipv4, ipv6, mac, packet, toHex, tunnel, u16, udp,
  udpChecksum, v6, vxlanHdr,
  STATS_HEAD,
} from './helpers.js';

const cfg = (over: Partial<RawDecapCfg> = {}): RawDecapCfg => ({
  dstPort: 4789, vnis: null, locals: null, verifyUdpCsum: false, dropInnerVlan: false, ...over,
});

const INNER = innerUdp4(9);
const SRC4 = Uint8Array.of(192, 0, 2, 1), DST4 = Uint8Array.of(198, 51, 100, 2);
const SRC6 = v6('2001:db8::1'), DST6 = v6('2001:db8::2');

interface OuterOpts {
  vni?: number;
  flags?: number;
  inner?: Uint8Array;
  dport?: number;
  udpLen?: number;
  csum?: 'none' | 'good' | 'bad';
  tags?: number[];
  ip4?: Parameters<typeof ipv4>[1];
  ip6?: Parameters<typeof ipv6>[1];
  family?: 4 | 6;
  trailer?: number; // Ethernet padding after the IP packet
}

/** An outer VXLAN frame built by hand from the contract, not by the engine. */
function outer(o: OuterOpts = {}): Uint8Array {
  const inner = o.inner ?? INNER;
  const fam = o.family ?? 4;
  const vx = concat(vxlanHdr(o.vni ?? 100, o.flags ?? 0x08), inner);
  let dg = udp(51000, o.dport ?? 4789, vx, o.udpLen);
  const src = fam === 4 ? (o.ip4?.src ?? SRC4) : (o.ip6?.src ?? SRC6);
  const dst = fam === 4 ? (o.ip4?.dst ?? DST4) : (o.ip6?.dst ?? DST6);
  if (o.csum === 'good' || o.csum === 'bad') {
    const c = udpChecksum(src, dst, dg);
    dg = concat(dg.slice(0, 6), u16(o.csum === 'good' ? c : c ^ 0x1111), dg.slice(8));
  }
  const ip = fam === 4 ? ipv4(dg, { src, dst, ...o.ip4 }) : ipv6(dg, { src, dst, ...o.ip6 });
  return concat(ether({ vlans: o.tags, type: fam === 4 ? 0x0800 : 0x86dd, payload: ip }), new Uint8Array(o.trailer ?? 0));
}

function decap(frames: Uint8Array[], c: RawDecapCfg = cfg()) {
  const b = burstOf(frames);
  const d = addon.decapCreate(c);
  const ok = addon.decap(d, b);
  return { b, ok, d };
}

function reasonOf(frame: Uint8Array, c?: RawDecapCfg): ReasonName {
  const { b } = decap([frame], c);
  return (addon.reasonNames()[b.reason[0]!] ?? 'unknown') as ReasonName;
}

describe('decap of valid frames', () => {
  it('round-trips the engine’s own IPv4 and IPv6 encapsulation', () => {
    for (const spec of [{}, { vlan: 7, udpCsum: true }, { local: 'fd00::1', remote: 'fd00::2' }, { local: 'fd00::1', remote: 'fd00::2', vlan: 0 }]) {
      const t = tunnel(spec);
      const frames = [INNER, innerUdp4(1, 1500), innerUdp4(2, 9000), ether({ type: 0x0806, payload: new Uint8Array(28) })];
      const outers = frames.map((f) => encapOne(t, 0xfedcba, f));
      const { b, ok } = decap(outers, cfg({ verifyUdpCsum: true }));
      expect(ok).toBe(frames.length);
      frames.forEach((f, i) => {
        expect(toHex(packet(b, i))).toBe(toHex(f));
        expect(b.vni[i]).toBe(0xfedcba);
        expect(b.vtepFamily[i]).toBe(t.local.length === 4 ? 4 : 6);
        const want = new Uint8Array(16);
        want.set(t.local);
        expect(toHex(b.vtep.slice(16 * i, 16 * i + 16))).toBe(toHex(want));
      });
    }
  });

  it('moves off to the inner frame and grows room by the outer header', () => {
    const f = outer({ tags: [0x8100] });
    const { b } = decap([f]);
    expect(b.reason[0]).toBe(Reason.ok);
    expect(b.off[0]).toBe(128 + 14 + 4 + 20 + 8 + 8);
    expect(b.room[0]).toBe(128 + 54);
    expect(b.len[0]).toBe(INNER.length);
  });

  it('skips up to two outer tags (802.1ad then 802.1Q)', () => {
    expect(reasonOf(outer({ tags: [0x88a8, 0x8100] }))).toBe('ok');
  });

  it('honours IPv4 options (IHL > 5)', () => {
    const { b } = decap([outer({ ip4: { options: hex('01010101 01010100') } })]);
    expect(b.reason[0]).toBe(Reason.ok);
    expect(toHex(packet(b, 0))).toBe(toHex(INNER));
  });

  it('leaves Ethernet padding and bytes past the UDP length out of the inner frame', () => {
    const { b } = decap([outer({ trailer: 6 })]);
    expect(toHex(packet(b, 0))).toBe(toHex(INNER));
    // a UDP length shorter than the IP payload: the inner frame ends where UDP says
    const f = outer({ udpLen: 8 + 8 + 60 });
    const r = decap([f]);
    expect(r.b.reason[0]).toBe(Reason.ok);
    expect(r.b.len[0]).toBe(60);
    expect(toHex(packet(r.b, 0))).toBe(toHex(INNER.slice(0, 60)));
  });

  it('ignores VXLAN flag bits other than I, and the reserved fields', () => {
    expect(reasonOf(outer({ flags: 0xff }))).toBe('ok');
  });

  it('accepts listed VNIs and local addresses', () => {
    expect(reasonOf(outer({ vni: 5 }), cfg({ vnis: Uint32Array.of(4, 5, 6) }))).toBe('ok');
    expect(reasonOf(outer(), cfg({ locals: [Uint8Array.of(10, 9, 9, 9), DST4] }))).toBe('ok');
    expect(reasonOf(outer({ family: 6 }), cfg({ locals: [DST4, DST6] }))).toBe('ok');
  });

  it('checks the UDP checksum only when asked, accepts 0 on IPv4', () => {
    expect(reasonOf(outer({ csum: 'bad' }))).toBe('ok');
    expect(reasonOf(outer({ csum: 'good' }), cfg({ verifyUdpCsum: true }))).toBe('ok');
    expect(reasonOf(outer({ csum: 'none' }), cfg({ verifyUdpCsum: true }))).toBe('ok');
    expect(reasonOf(outer({ family: 6, csum: 'good' }), cfg({ verifyUdpCsum: true }))).toBe('ok');
  });

  it('lets inner VLAN tags through unless dropInnerVlan', () => {
    const tagged = ether({ vlans: [0x8100], payload: new Uint8Array(46) });
    expect(reasonOf(outer({ inner: tagged }))).toBe('ok');
    expect(reasonOf(outer({ inner: tagged }), cfg({ dropInnerVlan: true }))).toBe('inner_vlan');
    const qinq = ether({ vlans: [0x88a8], payload: new Uint8Array(46) });
    expect(reasonOf(outer({ inner: qinq }), cfg({ dropInnerVlan: true }))).toBe('inner_vlan');
  });
});

describe('decap of malformed frames: each reason (§4.2)', () => {
  const v4 = outer();
  const cases: [string, Uint8Array, ReasonName, RawDecapCfg?][] = [
    ['13 bytes', v4.slice(0, 13), 'eth_truncated'],
    ['a VLAN tag cut short', concat(v4.slice(0, 12), u16(0x8100), hex('00')), 'eth_truncated'],
    ['a second tag cut short', concat(v4.slice(0, 12), u16(0x8100), hex('0001 88a8 00')), 'eth_truncated'],
    ['ARP', ether({ type: 0x0806, payload: new Uint8Array(28) }), 'not_ip'],
    ['three tags', outer({ tags: [0x8100, 0x8100, 0x8100] }), 'not_ip'],
    ['14 bytes of IPv4 type', ether({ type: 0x0800 }), 'ip_truncated'],
    ['19 bytes of IPv4 header', v4.slice(0, 14 + 19), 'ip_truncated'],
    ['IPv4 version 5', outer({ ip4: { version: 5 } }), 'ip_bad_version'],
    ['IPv4 IHL 4', outer({ ip4: { ihl: 4 } }), 'ip_bad_ihl'],
    ['IPv4 IHL 15 past the end', ether({ payload: ipv4(new Uint8Array(30), { ihl: 15 }) }), 'ip_truncated'],
    ['IPv4 checksum wrong', outer({ ip4: { badChecksum: true } }), 'ip_bad_checksum'],
    ['IPv4 total length below the header', outer({ ip4: { totalLength: 19 } }), 'ip_bad_length'],
    ['IPv4 total length past the frame', outer({ ip4: { totalLength: 20 + 8 + 8 + INNER.length + 1 } }), 'ip_bad_length'],
    ['IPv4 MF set', outer({ ip4: { flags: 0x2000 } }), 'ip_fragment'],
    ['IPv4 fragment offset', outer({ ip4: { flags: 0x0001 } }), 'ip_fragment'],
    ['IPv4 to another address', outer(), 'not_local', cfg({ locals: [Uint8Array.of(10, 0, 0, 9)] })],
    ['IPv4 TCP', outer({ ip4: { proto: 6 } }), 'not_udp'],
    ['39 bytes of IPv6 header', outer({ family: 6 }).slice(0, 14 + 39), 'ip_truncated'],
    ['IPv6 version 4', outer({ family: 6, ip6: { version: 4 } }), 'ip_bad_version'],
    ['IPv6 payload length past the frame', outer({ family: 6, ip6: { payloadLength: 8 + 8 + INNER.length + 1 } }), 'ip_bad_length'],
    ['IPv6 to another address', outer({ family: 6 }), 'not_local', cfg({ locals: [v6('fd00::9')] })],
    ['IPv6 to an IPv4 local only', outer({ family: 6 }), 'not_local', cfg({ locals: [DST4] })],
    ['IPv6 next header TCP', outer({ family: 6, ip6: { next: 6 } }), 'not_udp'],
    ['IPv4 payload of 7 bytes', ether({ payload: ipv4(udp(1, 4789, new Uint8Array(0)).slice(0, 7)) }), 'udp_bad_length'],
    ['IPv6 payload of 7 bytes', ether({ type: 0x86dd, payload: ipv6(udp(1, 4789, new Uint8Array(0)).slice(0, 7)) }), 'udp_bad_length'],
    ['UDP port 4790', outer({ dport: 4790 }), 'not_vxlan_port'],
    ['port 8472 when 8472 is not configured', outer({ dport: 8472 }), 'not_vxlan_port'],
    ['UDP length 7', outer({ udpLen: 7 }), 'udp_bad_length'],
    ['UDP length past the IP payload', outer({ udpLen: 8 + 8 + INNER.length + 1 }), 'udp_bad_length'],
    ['UDP checksum wrong (verified)', outer({ csum: 'bad' }), 'udp_bad_checksum', cfg({ verifyUdpCsum: true })],
    ['IPv6 UDP checksum wrong (verified)', outer({ family: 6, csum: 'bad' }), 'udp_bad_checksum', cfg({ verifyUdpCsum: true })],
    ['IPv6 UDP checksum zero (verified)', outer({ family: 6, csum: 'none' }), 'udp_zero_checksum', cfg({ verifyUdpCsum: true })],
    ['UDP length 15', outer({ udpLen: 15 }), 'vxlan_truncated'],
    ['UDP length 8', outer({ udpLen: 8 }), 'vxlan_truncated'],
    ['VXLAN flags without I', outer({ flags: 0xf7 }), 'vxlan_bad_flags'],
    ['VNI not listed', outer({ vni: 7 }), 'vni_unknown', cfg({ vnis: Uint32Array.of(4, 5, 6) })],
    ['inner frame of 13 bytes', outer({ udpLen: 16 + 13 }), 'inner_truncated'],
    ['inner frame of 0 bytes', outer({ udpLen: 16 }), 'inner_truncated'],
    ['inner VLAN', outer({ inner: ether({ vlans: [0x8100], payload: new Uint8Array(46) }) }), 'inner_vlan', cfg({ dropInnerVlan: true })],
  ];
  for (const [name, frame, reason, c] of cases) {
    it(`${name} → ${reason}`, () => {
      expect(reasonOf(frame, c)).toBe(reason);
    });
  }
  it('port 8472 when configured', () => {
    expect(reasonOf(outer({ dport: 8472 }), cfg({ dstPort: 8472 }))).toBe('ok');
  });
});

describe('decap check order when several faults apply', () => {
  const cases: [string, Uint8Array, ReasonName, RawDecapCfg?][] = [
    ['truncated tag beats everything', concat(outer().slice(0, 12), u16(0x8100)), 'eth_truncated'],
    ['bad version before bad IHL', outer({ ip4: { version: 5, ihl: 4 } }), 'ip_bad_version'],
    ['bad checksum before bad length and fragment', outer({ ip4: { badChecksum: true, totalLength: 9999, flags: 0x2000 } }), 'ip_bad_checksum'],
    ['bad length before fragment', outer({ ip4: { totalLength: 9999, flags: 0x2000 } }), 'ip_bad_length'],
    ['fragment before not_local and not_udp', outer({ ip4: { flags: 0x2000, proto: 6 } }), 'ip_fragment', cfg({ locals: [Uint8Array.of(1, 1, 1, 1)] })],
    ['not_local before not_udp', outer({ ip4: { proto: 6 } }), 'not_local', cfg({ locals: [Uint8Array.of(1, 1, 1, 1)] })],
    ['IPv6 bad length before not_local', outer({ family: 6, ip6: { payloadLength: 9999 } }), 'ip_bad_length', cfg({ locals: [v6('fd00::9')] })],
    ['wrong port before bad UDP length', outer({ dport: 1, udpLen: 3 }), 'not_vxlan_port'],
    ['bad UDP length before bad checksum', outer({ udpLen: 3, csum: 'bad' }), 'udp_bad_length', cfg({ verifyUdpCsum: true })],
    ['bad checksum before short VXLAN', outer({ udpLen: 12, csum: 'bad' }), 'udp_bad_checksum', cfg({ verifyUdpCsum: true })],
    ['short VXLAN before bad flags', outer({ udpLen: 12, flags: 0 }), 'vxlan_truncated'],
    ['bad flags before unknown VNI', outer({ flags: 0, vni: 9 }), 'vxlan_bad_flags', cfg({ vnis: Uint32Array.of(1) })],
    ['unknown VNI before short inner frame', outer({ vni: 9, udpLen: 20 }), 'vni_unknown', cfg({ vnis: Uint32Array.of(1) })],
    ['short inner frame before inner VLAN', outer({ udpLen: 16 + 13, inner: ether({ vlans: [0x8100], payload: new Uint8Array(46) }) }), 'inner_truncated', cfg({ dropInnerVlan: true })],
  ];
  for (const [name, frame, reason, c] of cases) {
    it(`${name} → ${reason}`, () => {
      expect(reasonOf(frame, c)).toBe(reason);
    });
  }
});

describe('what a decap drop leaves alone, and what it clears', () => {
  it('keeps bytes, off, len and room of dropped packets, and zeroes their VNI and VTEP', () => {
    const frames = [outer({ ip4: { badChecksum: true } }), outer({ vni: 3 }), outer({ dport: 1 })];
    const b = burstOf(frames);
    b.vni.fill(0xdead);
    b.vtepFamily.fill(9);
    b.vtep.fill(0xee);
    const before = { buf: b.buf.slice(), off: b.off.slice(), len: b.len.slice(), room: b.room.slice() };
    const ok = addon.decap(addon.decapCreate(cfg()), b);
    expect(ok).toBe(1);
    expect([...b.reason]).toEqual([Reason.ip_bad_checksum, Reason.ok, Reason.not_vxlan_port]);
    for (const i of [0, 2]) {
      expect(b.off[i]).toBe(before.off[i]);
      expect(b.len[i]).toBe(before.len[i]);
      expect(b.room[i]).toBe(before.room[i]);
      expect(b.vni[i]).toBe(0);
      expect(b.vtepFamily[i]).toBe(0);
      expect(b.vtep.slice(16 * i, 16 * i + 16).every((x) => x === 0)).toBe(true);
    }
    expect(toHex(b.buf)).toBe(toHex(before.buf)); // decap never writes packet bytes
    expect(b.vni[1]).toBe(3);
  });
});

describe('decap learning (§5)', () => {
  const withSrc = (src: string, vtep: Uint8Array, vni = 100) =>
    outer({ vni, inner: ether({ src, payload: new Uint8Array(46) }), ip4: { src: vtep } });

  it('learns unicast inner source MACs against the outer source, refreshes and moves them', () => {
    const fdb = addon.fdbCreate(1024);
    const d = addon.decapCreate(cfg(), fdb);
    addon.decapSetNow(d, 1000);
    const vA = Uint8Array.of(10, 0, 0, 1), vB = Uint8Array.of(10, 0, 0, 2);
    const b = burstOf([
      withSrc('52:54:00:00:00:01', vA),
      withSrc('52:54:00:00:00:01', vA), // same flow again in the burst
      withSrc('52:54:00:00:00:02', vA, 200),
      withSrc('01:00:5e:00:00:01', vA), // group source: not learned
      withSrc('00:00:00:00:00:00', vA), // no station's address: not learned either
    ]);
    expect(addon.decap(d, b)).toBe(5);
    expect(fdb.count()).toBe(2);
    expect(fdb.get(100, mac('00:00:00:00:00:00'))).toBeNull();
    expect(fdb.get(100, mac('52:54:00:00:00:01'))).toMatchObject({ flags: 2, stamp: 1000, vtep: vA });
    expect(fdb.get(200, mac('52:54:00:00:00:02'))).toMatchObject({ flags: 2, stamp: 1000, vtep: vA });
    expect(fdb.get(100, mac('01:00:5e:00:00:01'))).toBeNull();
    const s = addon.stats(d);
    expect([s[4], s[5], s[6], s[7]]).toEqual([2n, 0n, 1n, 0n]); // new, moved, refresh, full

    addon.decapSetNow(d, 1005);
    const b2 = burstOf([withSrc('52:54:00:00:00:01', vB), withSrc('52:54:00:00:00:02', vA, 200)]);
    addon.decap(d, b2);
    expect(fdb.get(100, mac('52:54:00:00:00:01'))).toMatchObject({ stamp: 1005, vtep: vB });
    expect(fdb.get(200, mac('52:54:00:00:00:02'))).toMatchObject({ stamp: 1005, vtep: vA });
    expect([s[4], s[5], s[6], s[7]]).toEqual([2n, 1n, 2n, 0n]);
  });

  // learn_bulk remembers where it last found each key (a slot hint, native/core/fdb.c)
  // and looks there before hashing; a hint must never outlive its entry's slot.
  it('moves an entry whose slot it remembers, and relearns one aged out from under its hint', () => {
    const fdb = addon.fdbCreate(1024);
    const d = addon.decapCreate(cfg(), fdb);
    const vA = Uint8Array.of(10, 0, 0, 1), vB = Uint8Array.of(10, 0, 0, 2);
    const m = '52:54:00:00:00:31';
    for (const [now, v] of [[1000, vA], [1001, vA], [1002, vB], [1003, vB]] as const) {
      addon.decapSetNow(d, now);
      addon.decap(d, burstOf([withSrc(m, v)]));
      expect(fdb.get(100, mac(m))).toMatchObject({ flags: 2, stamp: now, vtep: v });
    }
    const s = addon.stats(d);
    expect([s[4], s[5], s[6]]).toEqual([1n, 1n, 2n]); // new, moved, refresh
    expect(fdb.age(2000, 60, 1 << 20)).toBe(1);
    addon.decapSetNow(d, 2001);
    addon.decap(d, burstOf([withSrc(m, vA)]));
    expect(fdb.get(100, mac(m))).toMatchObject({ stamp: 2001, vtep: vA });
    expect(addon.stats(d)[4]).toBe(2n); // new again
  });

  it('agrees with a model through bursts that fill a small table (entries displaced under their hints)', () => {
    const fdb = addon.fdbCreate(256);
    const d = addon.decapCreate(cfg(), fdb);
    const vteps = [Uint8Array.of(10, 0, 0, 1), Uint8Array.of(10, 0, 0, 2), Uint8Array.of(10, 0, 0, 3)];
    const macOf = (k: number) => `52:54:00:00:${(k >> 8).toString(16).padStart(2, '0')}:${(k & 0xff).toString(16).padStart(2, '0')}`;
    const model = new Map<number, number>();
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    for (let round = 0; round < 300; round++) {
      addon.decapSetNow(d, 5000 + round);
      const frames = [];
      for (let j = 0; j < 32; j++) {
        // Keys first seen in order up to 230 (≈ 90% of the slots, so inserts displace),
        // then any of them again: refreshed, or moved to another VTEP.
        const k = rnd(Math.min(230, 8 + round));
        const v = rnd(3);
        model.set(k, v);
        frames.push(withSrc(macOf(k), vteps[v]!));
      }
      addon.decap(d, burstOf(frames));
      for (const [k, v] of model) expect(fdb.get(100, mac(macOf(k)))?.vtep, `round ${round}, key ${k}`).toEqual(vteps[v]);
    }
    expect(fdb.count()).toBe(model.size);
    expect(addon.stats(d)[7]).toBe(0n); // never full
  });

  it('leaves static entries alone', () => {
    const fdb = addon.fdbCreate(16);
    fdb.addStatic(100, mac('52:54:00:00:00:01'), Uint8Array.of(10, 9, 9, 9));
    const d = addon.decapCreate(cfg(), fdb);
    addon.decapSetNow(d, 50);
    addon.decap(d, burstOf([withSrc('52:54:00:00:00:01', Uint8Array.of(10, 0, 0, 1))]));
    expect(fdb.get(100, mac('52:54:00:00:00:01'))).toMatchObject({ flags: 1, stamp: 0, vtep: Uint8Array.of(10, 9, 9, 9) });
  });

  it('tells an IPv4 VTEP from an IPv6 one with the same leading bytes', () => {
    const fdb = addon.fdbCreate(16);
    const d = addon.decapCreate(cfg(), fdb);
    const inner = ether({ src: '52:54:00:00:00:08', payload: new Uint8Array(46) });
    addon.decap(d, burstOf([outer({ inner, ip4: { src: Uint8Array.of(10, 0, 0, 1) } })]));
    addon.decap(d, burstOf([outer({ family: 6, inner, ip6: { src: v6('a00:1::') } })]));
    expect(fdb.get(100, mac('52:54:00:00:00:08'))?.vtep).toEqual(v6('a00:1::'));
    expect(addon.stats(d)[5]).toBe(1n); // moved
  });

  it('learns IPv6 VTEPs', () => {
    const fdb = addon.fdbCreate(16);
    const d = addon.decapCreate(cfg(), fdb);
    const f = outer({ family: 6, inner: ether({ src: '52:54:00:00:00:07', payload: new Uint8Array(46) }) });
    addon.decap(d, burstOf([f]));
    expect(fdb.get(100, mac('52:54:00:00:00:07'))?.vtep).toEqual(SRC6);
  });

  it('counts learn_full when the table has no room, and still decapsulates', () => {
    const fdb = addon.fdbCreate(1);
    const d = addon.decapCreate(cfg(), fdb);
    const frames = Array.from({ length: 64 }, (_, i) =>
      withSrc(`52:54:00:00:01:${i.toString(16).padStart(2, '0')}`, Uint8Array.of(10, 0, 0, 1)));
    const b = burstOf(frames);
    expect(addon.decap(d, b)).toBe(64);
    const s = addon.stats(d);
    expect(Number(s[4])).toBe(fdb.count());
    expect(Number(s[4]!) + Number(s[7]!)).toBe(64);
    expect(s[7]).toBeGreaterThan(0n);
  });

  it('keeps learning into an FDB whose JS object was closed', () => {
    const fdb = addon.fdbCreate(16);
    const d = addon.decapCreate(cfg(), fdb);
    fdb.close();
    expect(() => fdb.count()).toThrow(/closed/);
    expect(addon.decap(d, burstOf([withSrc('52:54:00:00:00:01', SRC4)]))).toBe(1);
    expect(addon.stats(d)[4]).toBe(1n);
  });
});

describe('decap counters', () => {
  it('counts packets, inner bytes and each drop reason', () => {
    const { d } = decap([outer(), outer({ dport: 1 }), outer({ ip4: { proto: 6 } }), outer()]);
    const s = addon.stats(d);
    expect(s[2]).toBe(2n);
    expect(s[3]).toBe(BigInt(2 * INNER.length));
    expect(s[STATS_HEAD + Reason.not_vxlan_port]).toBe(1n);
    expect(s[STATS_HEAD + Reason.not_udp]).toBe(1n);
    expect(s[0]).toBe(0n);
  });
});
