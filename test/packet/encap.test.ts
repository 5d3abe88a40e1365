// Encapsulation by the TS model against docs/vxlan-engine.md §3: outer header fields,
// TOS/DF inherit, the per-tunnel IPv4 ID counter, the §3.1 drops (which must leave every
// byte alone) and the UDP source port formula over many flows.
import { describe, expect, it } from 'vitest';
import { burstFromFrames, cloneBurst, packetBytes } from '../../src/packet/burst.js';
import { outerHeaderLength, resolveTunnel, type TunnelSpec } from '../../src/packet/config.js';
import { crc32c } from '../../src/packet/crc32c.js';
import { fold, ipv4HeaderValid, pseudoSum4, pseudoSum6, sum16 } from '../../src/packet/csum.js';
import { flowKey } from '../../src/packet/flow.js';
import { tsEngine } from '../../src/packet/model.js';
import { Reason } from '../../src/packet/reasons.js';
import { arp, eth, innerUdp4, ipv6, udp } from './frames.js';

const V4: TunnelSpec = { local: '10.0.0.1', remote: '10.0.0.2' };
const V6: TunnelSpec = { local: 'fd00:1::1', remote: 'fd00:1::2' };

function encapOne(spec: TunnelSpec, inner: Uint8Array, vni = 7) {
  const h = tsEngine.createTunnel(resolveTunnel(spec));
  const b = burstFromFrames([inner]);
  const n = tsEngine.encap(h, vni, b);
  return { n, out: packetBytes(b, 0), b, h };
}

const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

/** TOS and flags+offset of the outer IPv4 header (no outer VLAN). */
const outer4 = (o: Uint8Array) => ({ tos: o[15]!, frag: u16(o, 20), id: u16(o, 18) });
/** Traffic class of the outer IPv6 header (no outer VLAN). */
const tc6 = (o: Uint8Array) => ((o[14]! & 0x0f) << 4) | (o[15]! >> 4);

const v6Inner = (tc: number) => eth(0x86dd, ipv6(udp(1, 2), { tc }));

describe('encap: outer header (§3.2)', () => {
  it('lays out Ethernet, IPv4, UDP and VXLAN and moves the packet window', () => {
    const inner = innerUdp4(20);
    const { n, out, b } = encapOne({ ...V4, ttl: 33 }, inner, 0x123456);
    expect(n).toBe(1);
    expect(b.reason[0]).toBe(0);
    expect(b.off[0]).toBe(128 - 50);
    expect(b.room[0]).toBe(128 - 50);
    expect(out.length).toBe(inner.length + 50);
    expect([...out.subarray(0, 14)]).toEqual([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    expect(out[14]).toBe(0x45);
    expect(u16(out, 16)).toBe(36 + inner.length);
    expect(out[22]).toBe(33);
    expect(out[23]).toBe(17);
    expect(ipv4HeaderValid(out, 14, 20)).toBe(true);
    expect(u16(out, 36)).toBe(4789);
    expect(u16(out, 38)).toBe(16 + inner.length);
    expect(u16(out, 40)).toBe(0); // udpCsum off by default on IPv4
    expect([...out.subarray(42, 50)]).toEqual([0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    expect([...out.subarray(50)]).toEqual([...inner]);
  });

  it('IPv6 outer: version/class/label, payload length, next header, hop limit, and a UDP checksum that verifies', () => {
    const inner = innerUdp4(21);
    const { out } = encapOne({ ...V6, ttl: 5, tos: 0xa5 }, inner);
    expect(out.length).toBe(inner.length + 70);
    expect(u16(out, 12)).toBe(0x86dd);
    // Traffic class 0xa4: tos 0xa5's DSCP, the ECN field the inner packet's (Not-ECT).
    expect([...out.subarray(14, 18)]).toEqual([0x6a, 0x40, 0, 0]);
    expect(u16(out, 18)).toBe(16 + inner.length);
    expect(out[20]).toBe(17);
    expect(out[21]).toBe(5);
    const c = u16(out, 54 + 6);
    expect(c).not.toBe(0);
    expect(fold(sum16(out, 54, out.length - 54, pseudoSum6(out, 22, 38, 17, 16 + inner.length)))).toBe(0xffff);
  });

  it('IPv4 UDP checksum when udpCsum is on verifies over the odd-length inner frame', () => {
    const inner = innerUdp4(21);
    expect(inner.length % 2).toBe(1);
    const { out } = encapOne({ ...V4, udpCsum: true }, inner);
    expect(u16(out, 40)).not.toBe(0);
    expect(fold(sum16(out, 34, out.length - 34, pseudoSum4(out, 26, 30, 17, 16 + inner.length)))).toBe(0xffff);
  });

  it('a UDP checksum that computes to 0x0000 is sent as 0xFFFF (IPv4 with udpCsum, IPv6)', () => {
    for (const [spec, udpOff] of [[{ ...V4, udpCsum: true }, 34], [V6, 54]] as const) {
      const inner = innerUdp4(20);
      const first = encapOne(spec, inner).out;
      const s = ~u16(first, udpOff + 6) & 0xffff; // the sum the checksum complemented
      // Bend the last inner word (not part of the flow key, so the port stays) so the
      // sum becomes 0xFFFF, whose complement is 0.
      const w = u16(inner, inner.length - 2);
      const x = w + (0xffff - s);
      const w2 = (x & 0xffff) + (x >>> 16);
      inner[inner.length - 2] = w2 >> 8;
      inner[inner.length - 1] = w2 & 0xff;
      const out = encapOne(spec, inner).out;
      expect(u16(out, udpOff), 'same source port').toBe(u16(first, udpOff));
      expect(u16(out, udpOff + 6)).toBe(0xffff);
    }
  });

  it('outer VLAN tag carries PCP and VID; VID 0 is priority tagging', () => {
    const { out } = encapOne({ ...V4, vlan: 4094, vlanPcp: 7 }, innerUdp4());
    expect([...out.subarray(12, 18)]).toEqual([0x81, 0x00, 0xef, 0xfe, 0x08, 0x00]);
    const p = encapOne({ ...V6, vlan: 0, vlanPcp: 3 }, innerUdp4()).out;
    expect([...p.subarray(12, 18)]).toEqual([0x81, 0x00, 0x60, 0x00, 0x86, 0xdd]);
  });
});

describe('encap: TOS and DF (§3.2)', () => {
  const inherit: TunnelSpec = { ...V4, tos: 'inherit', df: 'inherit' };

  it('inherit from inner IPv4: its TOS, and DF only when it has DF', () => {
    expect(outer4(encapOne(inherit, innerUdp4(4, { tos: 0xb8, frag: 0x4000 })).out)).toMatchObject({ tos: 0xb8, frag: 0x4000 });
    expect(outer4(encapOne(inherit, innerUdp4(4, { tos: 0x2e })).out)).toMatchObject({ tos: 0x2e, frag: 0 });
    expect(outer4(encapOne(inherit, innerUdp4(4, { tos: 0x2e, frag: 0x2000 })).out)).toMatchObject({ frag: 0 });
  });

  it('inherit from inner IPv6: traffic class, and DF set', () => {
    expect(outer4(encapOne(inherit, v6Inner(0x5a)).out)).toMatchObject({ tos: 0x5a, frag: 0x4000 });
    expect(tc6(encapOne({ ...V6, tos: 'inherit' }, v6Inner(0xc3)).out)).toBe(0xc3);
    expect(tc6(encapOne({ ...V6, tos: 'inherit' }, innerUdp4(4, { tos: 0x11 })).out)).toBe(0x11);
  });

  it('inherit from ARP or any non-IP frame: TOS 0 and no DF', () => {
    expect(outer4(encapOne(inherit, arp()).out)).toMatchObject({ tos: 0, frag: 0 });
    expect(tc6(encapOne({ ...V6, tos: 'inherit' }, arp()).out)).toBe(0);
  });

  it('inherit looks past inner VLAN tags', () => {
    const tagged = innerUdp4(4, { tos: 0x68, frag: 0x4000, tags: [[0x8100, 12]] });
    expect(outer4(encapOne(inherit, tagged).out)).toMatchObject({ tos: 0x68, frag: 0x4000 });
    const qinq = eth(0x86dd, ipv6(udp(1, 2), { tc: 0x44 }), { tags: [[0x88a8, 1], [0x8100, 2]] });
    expect(outer4(encapOne(inherit, qinq).out)).toMatchObject({ tos: 0x44, frag: 0x4000 });
  });

  it('a fixed TOS gives the DSCP and the inner ECN field goes with it (RFC 6040 §4.1); df set/unset are fixed', () => {
    const inner = innerUdp4(4, { tos: 0xff, frag: 0x4000 });
    expect(outer4(encapOne({ ...V4, tos: 0x20 }, inner).out)).toMatchObject({ tos: 0x23, frag: 0 });
    for (const ecn of [0, 1, 2, 3]) {
      expect(outer4(encapOne({ ...V4, tos: 0xb8 | 3 }, innerUdp4(4, { tos: 0x10 | ecn })).out).tos, `inner ECN ${ecn}`).toBe(0xb8 | ecn);
      expect(tc6(encapOne({ ...V6, tos: 0x28 }, innerUdp4(4, { tos: ecn })).out), `IPv6 outer, inner ECN ${ecn}`).toBe(0x28 | ecn);
    }
    // Not IP: Not-ECT, whatever ECN bits the configured TOS had.
    expect(outer4(encapOne({ ...V4, tos: 0x23, df: 'set' }, arp()).out)).toMatchObject({ tos: 0x20, frag: 0x4000 });
  });

  it('DF is ignored on IPv6: set, unset and inherit give the same bytes', () => {
    const inner = innerUdp4(4, { frag: 0x4000 });
    const a = encapOne({ ...V6, df: 'set' }, inner).out;
    expect(encapOne({ ...V6, df: 'unset' }, inner).out).toEqual(a);
    expect(encapOne({ ...V6, df: 'inherit' }, inner).out).toEqual(a);
  });
});

describe('encap: IPv4 identification counter', () => {
  it('starts at ipId, advances per packet encapsulated, wraps, persists across calls', () => {
    const h = tsEngine.createTunnel(resolveTunnel({ ...V4, ipId: 65534 }));
    const b = burstFromFrames([innerUdp4(), innerUdp4(), innerUdp4()]);
    expect(tsEngine.encap(h, 1, b)).toBe(3);
    expect([0, 1, 2].map((i) => outer4(packetBytes(b, i)).id)).toEqual([65534, 65535, 0]);
    expect(h.nextId).toBe(1);
    const b2 = burstFromFrames([innerUdp4()]);
    tsEngine.encap(h, 1, b2);
    expect(outer4(packetBytes(b2, 0)).id).toBe(1);
    expect(h.nextId).toBe(2);
  });

  it('dropped packets do not take a value', () => {
    const h = tsEngine.createTunnel(resolveTunnel({ ...V4, ipId: 100 }));
    const b = burstFromFrames([innerUdp4(), new Uint8Array(10), innerUdp4(), innerUdp4()]);
    b.room[2] = 10;
    expect(tsEngine.encap(h, 1, b)).toBe(2);
    expect([...b.reason.subarray(0, 4)]).toEqual([0, Reason.inner_truncated, Reason.no_headroom, 0]);
    expect(outer4(packetBytes(b, 0)).id).toBe(100);
    expect(outer4(packetBytes(b, 3)).id).toBe(101);
    expect(h.nextId).toBe(102);
  });

  it('each tunnel keeps its own counter', () => {
    const t = resolveTunnel({ ...V4, ipId: 9 });
    const h1 = tsEngine.createTunnel(t);
    const h2 = tsEngine.createTunnel(t);
    tsEngine.encap(h1, 1, burstFromFrames([innerUdp4(), innerUdp4()]));
    const b = burstFromFrames([innerUdp4()]);
    tsEngine.encap(h2, 1, b);
    expect(outer4(packetBytes(b, 0)).id).toBe(9);
    expect(h1.nextId).toBe(11);
  });
});

describe('encap: drops (§3.1) leave bytes untouched', () => {
  function dropsUntouched(spec: TunnelSpec, frames: Uint8Array[], prep: (b: ReturnType<typeof burstFromFrames>) => void, reasons: number[]) {
    const h = tsEngine.createTunnel(resolveTunnel(spec));
    const b = burstFromFrames(frames);
    prep(b);
    const before = cloneBurst(b);
    expect(tsEngine.encap(h, 1, b)).toBe(0);
    expect([...b.reason.subarray(0, frames.length)]).toEqual(reasons);
    // Buffer.equals: a deep toEqual over a 64 KiB arena is needlessly slow
    expect(Buffer.from(b.buf).equals(before.buf)).toBe(true);
    expect(b.off).toEqual(before.off);
    expect(b.len).toEqual(before.len);
    expect(b.room).toEqual(before.room);
    expect(h.nextId).toBe(0);
  }

  it('inner_truncated below 14 bytes, also with no headroom', () => {
    dropsUntouched(V4, [new Uint8Array(13), new Uint8Array(0), new Uint8Array(5)], (b) => (b.room[2] = 0), [1, 1, 1]);
  });

  it('no_headroom one byte short of the outer header, IPv4 and VLAN+IPv6', () => {
    dropsUntouched(V4, [innerUdp4()], (b) => (b.room[0] = 49), [Reason.no_headroom]);
    const spec6 = { ...V6, vlan: 5 };
    expect(outerHeaderLength(resolveTunnel(spec6))).toBe(74);
    dropsUntouched(spec6, [innerUdp4()], (b) => (b.room[0] = 73), [Reason.no_headroom]);
  });

  it('too_big past 65535 on either family, before mtu; no_headroom comes first', () => {
    dropsUntouched({ ...V4, mtu: 1500 }, [new Uint8Array(65500)], () => {}, [Reason.too_big]);
    dropsUntouched(V6, [new Uint8Array(65520)], () => {}, [Reason.too_big]);
    dropsUntouched(V4, [new Uint8Array(65500)], (b) => (b.room[0] = 0), [Reason.no_headroom]);
  });

  it('mtu_exceeded one byte over; IPv6 counts the 40-byte header', () => {
    dropsUntouched({ ...V4, mtu: 1500 }, [new Uint8Array(1465)], () => {}, [Reason.mtu_exceeded]);
    dropsUntouched({ ...V6, mtu: 1500 }, [new Uint8Array(1445)], () => {}, [Reason.mtu_exceeded]);
  });

  it('exactly at the limits passes', () => {
    expect(encapOne({ ...V4, mtu: 1500 }, innerUdp4(1464 - 42)).n).toBe(1);
    expect(encapOne({ ...V6, mtu: 1500 }, innerUdp4(1444 - 42)).n).toBe(1);
    expect(encapOne(V4, new Uint8Array(65499)).n).toBe(1);
    expect(encapOne(V6, new Uint8Array(65519)).n).toBe(1);
    const b = burstFromFrames([innerUdp4()], 50);
    expect(tsEngine.encap(tsEngine.createTunnel(resolveTunnel(V4)), 1, b)).toBe(1);
    expect(b.room[0]).toBe(0);
  });

  it('a mixed burst counts only the packets encapsulated', () => {
    const h = tsEngine.createTunnel(resolveTunnel({ ...V4, mtu: 200 }));
    const b = burstFromFrames([innerUdp4(), new Uint8Array(300), arp(), new Uint8Array(3)]);
    expect(tsEngine.encap(h, 1, b)).toBe(2);
    expect([...b.reason.subarray(0, 4)]).toEqual([0, Reason.mtu_exceeded, 0, Reason.inner_truncated]);
  });

  it('rejects a VNI outside 24 bits and handles from another engine', () => {
    const h = tsEngine.createTunnel(resolveTunnel(V4));
    expect(() => tsEngine.encap(h, 1 << 24, burstFromFrames([innerUdp4()]))).toThrow(/VNI 16777216/);
    expect(() => tsEngine.encap(h, -1, burstFromFrames([innerUdp4()]))).toThrow(RangeError);
    expect(() => tsEngine.encap({ tunnel: h.tunnel }, 1, burstFromFrames([innerUdp4()]))).toThrow(/not created by the ts engine/);
  });
});

describe('encap: UDP source port (§3.3)', () => {
  // A deterministic spread of flows: different MACs, addresses, ports, families.
  const flows = Array.from({ length: 200 }, (_, i) =>
    i % 3 === 2
      ? eth(0x86dd, ipv6(udp(i, 443), { src: `fd00::${i + 1}` }), { macSrc: `52:54:00:00:01:${(i & 0xff).toString(16).padStart(2, '0')}` })
      : innerUdp4(i % 17, { sport: 1000 + i, dport: 53, src: `10.${i & 0xff}.0.1` }),
  );

  function ports(spec: TunnelSpec): number[] {
    const b = burstFromFrames(flows);
    expect(tsEngine.encap(tsEngine.createTunnel(resolveTunnel(spec)), 1, b)).toBe(flows.length);
    return flows.map((_, i) => u16(packetBytes(b, i), spec.local.includes(':') ? 54 : 34));
  }

  it('follows min + floor(crc32c(key) · span / 2^32) for the default range', () => {
    const got = ports(V4);
    flows.forEach((f, i) => expect(got[i]).toBe(49152 + Math.floor((crc32c(flowKey(f)) * 16384) / 2 ** 32)));
    expect(new Set(got).size).toBeGreaterThan(150);
  });

  it('min = max gives that port for every flow', () => {
    expect(new Set(ports({ ...V6, srcPortMin: 4000, srcPortMax: 4000 }))).toEqual(new Set([4000]));
  });

  it('the full range 1–65535 stays inside it and follows the formula', () => {
    const got = ports({ ...V4, srcPortMin: 1, srcPortMax: 65535 });
    flows.forEach((f, i) => {
      expect(got[i]).toBe(1 + Math.floor((crc32c(flowKey(f)) * 65535) / 2 ** 32));
      expect(got[i]).toBeGreaterThanOrEqual(1);
      expect(got[i]).toBeLessThanOrEqual(65535);
    });
  });

  it('a small range spreads over every port in it', () => {
    const got = ports({ ...V4, srcPortMin: 10, srcPortMax: 13 });
    expect(new Set(got)).toEqual(new Set([10, 11, 12, 13]));
  });
});
