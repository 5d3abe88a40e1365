// Decapsulation by the TS model against docs/vxlan-engine.md §4: good frames in their
// variants (outer VLAN/QinQ, IPv4 options, padding, reserved bits), one test per reason in
// contract order, pairs of defects that must name the earlier reason, and learning.
import { describe, expect, it } from 'vitest';
import { burstFromFrames, cloneBurst, packetBytes, type Burst } from '../../src/packet/burst.js';
import { resolveDecap, resolveTunnel, type DecapSpec, type TunnelSpec } from '../../src/packet/config.js';
import { ipv4HeaderChecksum } from '../../src/packet/csum.js';
import { FdbModel } from '../../src/packet/fdb-model.js';
import { tsEngine } from '../../src/packet/model.js';
import { Reason, reasonName, type ReasonName } from '../../src/packet/reasons.js';
import { formatIp } from '../../src/util/addr.js';
import { bytes, innerUdp4, ip } from './frames.js';
import { nativeEngine } from '../../src/dataplane/native.js';

// Base frames come from our own encap, which the scapy known-answer tests hold to an
// independent implementation; each test below breaks one field (or two).
const V4: TunnelSpec = { local: '10.0.0.1', remote: '10.0.0.2', udpCsum: true };
const V6: TunnelSpec = { local: 'fd00:1::1', remote: 'fd00:1::2' };
const INNER = innerUdp4(20, { macSrc: '52:54:00:00:00:0a' });

function encap(spec: TunnelSpec, inner = INNER, vni = 1000): Uint8Array {
  const b = burstFromFrames([inner]);
  expect(tsEngine.encap(tsEngine.createTunnel(resolveTunnel(spec)), vni, b)).toBe(1);
  return packetBytes(b, 0);
}

const base4 = () => encap(V4);
const base6 = () => encap(V6);
const put16 = (f: Uint8Array, o: number, v: number) => {
  f[o] = v >> 8;
  f[o + 1] = v & 0xff;
};
const fixIp = (f: Uint8Array, l3 = 14) => put16(f, l3 + 10, ipv4HeaderChecksum(f, l3, (f[l3]! & 0x0f) * 4));

// IPv4 base: IP 14, UDP 34, VXLAN 42, inner 50. IPv6 base: IP 14, UDP 54, VXLAN 62, inner 70.
function decapOne(frame: Uint8Array, spec: DecapSpec = {}): { reason: ReasonName | string; b: Burst; before: Burst } {
  const b = burstFromFrames([frame]);
  b.vni[0] = 0xabcdef;
  b.vtepFamily[0] = 9;
  b.vtep.fill(0xee);
  const before = cloneBurst(b);
  const ok = tsEngine.decap(tsEngine.createDecap(resolveDecap(spec)), b);
  expect(ok).toBe(b.reason[0] === 0 ? 1 : 0);
  return { reason: reasonName(b.reason[0]!), b, before };
}

function expectDrop(frame: Uint8Array, reason: ReasonName, spec: DecapSpec = {}): void {
  const { reason: got, b, before } = decapOne(frame, spec);
  expect(got).toBe(reason);
  expect(Buffer.from(b.buf).equals(before.buf)).toBe(true);
  expect([b.off[0], b.len[0], b.room[0]]).toEqual([before.off[0], before.len[0], before.room[0]]);
  expect([b.vni[0], b.vtepFamily[0], ...b.vtep.subarray(0, 16)]).toEqual(new Array(18).fill(0));
}

function expectOk(frame: Uint8Array, spec: DecapSpec = {}, inner = INNER, vni = 1000): Burst {
  const { reason, b } = decapOne(frame, spec);
  expect(reason).toBe('ok');
  expect([...packetBytes(b, 0)]).toEqual([...inner]);
  expect(b.vni[0]).toBe(vni);
  return b;
}

/** Inserts VLAN tags after the MACs. */
const tagged = (f: Uint8Array, tags: [number, number][]) =>
  bytes(f.subarray(0, 12), tags.flatMap(([t, v]) => [t >> 8, t & 0xff, v >> 8, v & 0xff]), f.subarray(12));

describe('decap: a good frame', () => {
  it('moves the window to the inner frame and records VNI and source VTEP (IPv4)', () => {
    const f = base4();
    const b = expectOk(f);
    expect(b.off[0]).toBe(128 + 50);
    expect(b.room[0]).toBe(128 + 50);
    expect(b.len[0]).toBe(INNER.length);
    expect(b.vtepFamily[0]).toBe(4);
    expect([...b.vtep.subarray(0, 16)]).toEqual([...ip('10.0.0.1'), ...new Array(12).fill(0)]);
  });

  it('IPv6, with the UDP checksum verified and the local address matched', () => {
    const b = expectOk(base6(), { verifyUdpCsum: true, locals: ['10.0.0.2', 'fd00:1::2'] });
    expect(b.off[0]).toBe(128 + 70);
    expect(b.vtepFamily[0]).toBe(6);
    expect(formatIp(6, b.vtep, 0)).toBe('fd00:1::1');
  });

  it('outer 802.1Q and QinQ tags', () => {
    expectOk(tagged(base4(), [[0x8100, 5]]));
    expectOk(tagged(base6(), [[0x88a8, 5], [0x8100, 6]]), { verifyUdpCsum: true });
    expectOk(tagged(base4(), [[0x8100, 5], [0x8100, 6]]));
  });

  it('outer IPv4 options', () => {
    const f = base4();
    const g = bytes(f.subarray(0, 34), [0x94, 0x04, 0, 0], f.subarray(34));
    g[14] = 0x46;
    put16(g, 16, ((f[16]! << 8) | f[17]!) + 4);
    fixIp(g);
    const b = expectOk(g, { verifyUdpCsum: true });
    expect(b.off[0]).toBe(128 + 54);
  });

  it('Ethernet padding after the IP packet is not part of the inner frame', () => {
    const b = expectOk(bytes(base4(), new Uint8Array(20).fill(0xaa)), { verifyUdpCsum: true });
    expect(b.len[0]).toBe(INNER.length);
    expectOk(bytes(base6(), new Uint8Array(7)), { verifyUdpCsum: true });
  });

  it('ignores reserved VXLAN flag bits and reserved fields', () => {
    const f = base4();
    f.fill(0xff, 42, 46);
    f[49] = 0xff;
    expectOk(f);
    const g = base4();
    g[42] = 0x08;
    expectOk(g);
  });

  it('DF and the reserved IP flag do not make a fragment; a zero IPv4 UDP checksum passes verification', () => {
    const f = base4();
    f[20] = 0xc0;
    put16(f, 40, 0);
    fixIp(f);
    expectOk(f, { verifyUdpCsum: true });
  });

  it('accepts a listed VNI and a non-default port', () => {
    expectOk(encap(V4, INNER, 77), { vnis: [5, 77] }, INNER, 77);
    expectOk(encap({ ...V4, dstPort: 8472 }), { dstPort: 8472 });
  });

  it('keeps inner VLAN frames unless told to drop them', () => {
    const inner = innerUdp4(4, { tags: [[0x8100, 3]] });
    expectOk(encap(V4, inner), {}, inner);
  });
});

describe('decap: each reason, in contract order (§4.2)', () => {
  it('1. eth_truncated: shorter than 14 bytes', () => {
    expectDrop(base4().subarray(0, 13), 'eth_truncated');
    expectDrop(new Uint8Array(0), 'eth_truncated');
  });

  it('2. eth_truncated: a VLAN tag cut short (first or second)', () => {
    expectDrop(tagged(base4(), [[0x8100, 1]]).subarray(0, 17), 'eth_truncated');
    expectDrop(tagged(base4(), [[0x88a8, 1], [0x8100, 2]]).subarray(0, 21), 'eth_truncated');
  });

  it('3. not_ip: ARP, or a third VLAN tag', () => {
    const f = base4();
    put16(f, 12, 0x0806);
    expectDrop(f, 'not_ip');
    expectDrop(tagged(base4(), [[0x8100, 1], [0x8100, 2], [0x8100, 3]]), 'not_ip');
  });

  it('4.1 ip_truncated: IPv4 header cut short', () => {
    expectDrop(base4().subarray(0, 33), 'ip_truncated');
  });

  it('4.2 ip_bad_version', () => {
    const f = base4();
    f[14] = 0x65;
    fixIp(f);
    expectDrop(f, 'ip_bad_version');
  });

  it('4.3 ip_bad_ihl', () => {
    const f = base4();
    f[14] = 0x44;
    expectDrop(f, 'ip_bad_ihl');
  });

  it('4.4 ip_truncated: IHL past the frame', () => {
    const f = encap(V4, INNER.subarray(0, 14)); // 64 bytes, IHL 15 needs 74
    f[14] = 0x4f;
    expectDrop(f, 'ip_truncated');
  });

  it('4.5 ip_bad_checksum', () => {
    const f = base4();
    f[24] = f[24]! ^ 1;
    expectDrop(f, 'ip_bad_checksum');
  });

  it('4.6 ip_bad_length: total length past the frame, or below the header', () => {
    const f = base4();
    put16(f, 16, f.length - 14 + 1);
    fixIp(f);
    expectDrop(f, 'ip_bad_length');
    const g = base4();
    put16(g, 16, 19);
    fixIp(g);
    expectDrop(g, 'ip_bad_length');
  });

  it('4.7 ip_fragment: MF, or any fragment offset', () => {
    for (const w of [0x2000, 0x0001, 0x4000 | 0x1000]) {
      const f = base4();
      put16(f, 20, w);
      fixIp(f);
      expectDrop(f, 'ip_fragment');
    }
  });

  it('4.8 not_local: destination not among the locals (IPv6 locals do not count)', () => {
    expectDrop(base4(), 'not_local', { locals: ['10.0.0.3'] });
    expectDrop(base4(), 'not_local', { locals: ['::ffff:10.0.0.2'] });
  });

  it('4.9 not_udp', () => {
    const f = base4();
    f[23] = 6;
    fixIp(f);
    expectDrop(f, 'not_udp');
  });

  it('5.1 ip_truncated: IPv6 header cut short', () => {
    expectDrop(base6().subarray(0, 53), 'ip_truncated');
  });

  it('5.2 ip_bad_version: IPv6 EtherType with version 4', () => {
    const f = base6();
    f[14] = 0x40;
    expectDrop(f, 'ip_bad_version');
  });

  it('5.3 ip_bad_length: payload length past the frame', () => {
    const f = base6();
    put16(f, 18, f.length - 54 + 1);
    expectDrop(f, 'ip_bad_length');
  });

  it('5.4 not_local', () => {
    expectDrop(base6(), 'not_local', { locals: ['fd00:1::3', '10.0.0.2'] });
  });

  it('5.5 not_udp: next header is not walked', () => {
    const f = base6();
    f[20] = 44;
    expectDrop(f, 'not_udp');
  });

  it('6. udp_bad_length: less than a UDP header in the IP payload', () => {
    const f = base4();
    put16(f, 16, 20 + 7);
    fixIp(f);
    expectDrop(f, 'udp_bad_length');
    const g = base6();
    put16(g, 18, 7);
    expectDrop(g, 'udp_bad_length');
  });

  it('7. not_vxlan_port', () => {
    const f = base4();
    put16(f, 36, 4790);
    expectDrop(f, 'not_vxlan_port');
    expectDrop(base4(), 'not_vxlan_port', { dstPort: 8472 });
  });

  it('8. udp_bad_length: UDP length below 8 or past the IP payload', () => {
    const f = base4();
    put16(f, 38, 7);
    expectDrop(f, 'udp_bad_length');
    const g = base4();
    put16(g, 38, g.length - 34 + 1);
    expectDrop(g, 'udp_bad_length');
  });

  it('9. udp_bad_checksum when verifying a wrong sum; udp_zero_checksum for zero on IPv6 (left out, not wrong)', () => {
    const f = base4();
    f[60] = f[60]! ^ 0x40;
    expectDrop(f, 'udp_bad_checksum', { verifyUdpCsum: true });
    const g = base6();
    g[80] = g[80]! ^ 1;
    expectDrop(g, 'udp_bad_checksum', { verifyUdpCsum: true });
    const z = base6();
    put16(z, 60, 0);
    expectDrop(z, 'udp_zero_checksum', { verifyUdpCsum: true });
    // not verifying: both pass
    expectOk(f, {}, f.subarray(50));
    expectOk(z, {}, z.subarray(70));
  });

  it('10. vxlan_truncated: UDP length below 16', () => {
    const f = base4();
    put16(f, 38, 15);
    expectDrop(f, 'vxlan_truncated');
  });

  it('11. vxlan_bad_flags: no I bit', () => {
    const f = base4();
    f[42] = 0xf7;
    expectDrop(f, 'vxlan_bad_flags');
  });

  it('12. vni_unknown', () => {
    expectDrop(base4(), 'vni_unknown', { vnis: [1, 2, 1001] });
  });

  it('13. inner_truncated: inner frame below 14 bytes', () => {
    const f = base4();
    put16(f, 38, 16 + 13);
    expectDrop(f, 'inner_truncated');
    const g = base4();
    put16(g, 38, 16);
    expectDrop(g, 'inner_truncated');
  });

  it('14. inner_vlan when dropInnerVlan (0x8100 and 0x88a8)', () => {
    for (const tpid of [0x8100, 0x88a8]) {
      expectDrop(encap(V4, innerUdp4(4, { tags: [[tpid, 3]] })), 'inner_vlan', { dropInnerVlan: true });
    }
  });
});

describe('decap: a frame bad in two ways gets the earlier reason', () => {
  const cases: [string, () => Uint8Array, ReasonName, DecapSpec?][] = [
    ['bad version + bad checksum', () => { const f = base4(); f[14] = 0x65; return f; }, 'ip_bad_version'],
    ['bad IHL + bad checksum', () => { const f = base4(); f[14] = 0x43; return f; }, 'ip_bad_ihl'],
    ['bad checksum + fragment', () => { const f = base4(); put16(f, 20, 0x2000); return f; }, 'ip_bad_checksum'],
    ['bad length + fragment', () => { const f = base4(); put16(f, 16, 10); put16(f, 20, 0x2000); fixIp(f); return f; }, 'ip_bad_length'],
    ['fragment + not local', () => { const f = base4(); put16(f, 20, 1); fixIp(f); return f; }, 'ip_fragment', { locals: ['1.1.1.1'] }],
    ['not local + not UDP', () => { const f = base4(); f[23] = 1; fixIp(f); return f; }, 'not_local', { locals: ['1.1.1.1'] }],
    ['not UDP + wrong port', () => { const f = base4(); f[23] = 6; fixIp(f); put16(f, 36, 80); return f; }, 'not_udp'],
    ['short IP payload + wrong port', () => { const f = base4(); put16(f, 16, 27); fixIp(f); put16(f, 36, 80); return f; }, 'udp_bad_length'],
    ['wrong port + bad UDP length', () => { const f = base4(); put16(f, 36, 80); put16(f, 38, 3); return f; }, 'not_vxlan_port'],
    ['bad UDP length + bad checksum', () => { const f = base4(); put16(f, 38, 9999); return f; }, 'udp_bad_length', { verifyUdpCsum: true }],
    ['bad checksum + VXLAN truncated', () => { const f = base4(); put16(f, 38, 12); return f; }, 'udp_bad_checksum', { verifyUdpCsum: true }],
    ['VXLAN truncated + bad flags', () => { const f = base4(); put16(f, 38, 12); f[42] = 0; return f; }, 'vxlan_truncated'],
    ['bad flags + unknown VNI', () => { const f = base4(); f[42] = 0; return f; }, 'vxlan_bad_flags', { vnis: [1] }],
    ['unknown VNI + inner truncated', () => { const f = base4(); put16(f, 38, 20); return f; }, 'vni_unknown', { vnis: [1] }],
    ['inner truncated + inner VLAN', () => { const f = encap(V4, innerUdp4(4, { tags: [[0x8100, 3]] })); put16(f, 38, 16 + 13); return f; }, 'inner_truncated', { dropInnerVlan: true }],
    ['IPv6 bad version + bad length', () => { const f = base6(); f[14] = 0x70; put16(f, 18, 9999); return f; }, 'ip_bad_version'],
    ['IPv6 bad length + not local', () => { const f = base6(); put16(f, 18, 9999); return f; }, 'ip_bad_length', { locals: ['::1'] }],
    ['IPv6 not local + not UDP', () => { const f = base6(); f[20] = 6; return f; }, 'not_local', { locals: ['::1'] }],
  ];
  for (const [name, make, reason, spec] of cases) {
    it(`${name} → ${reason}`, () => expectDrop(make(), reason, spec));
  }
});

describe('decap: bursts and learning', () => {
  it('a mixed burst decapsulates the good packets and counts them', () => {
    const bad = base4();
    bad[42] = 0;
    const b = burstFromFrames([base4(), bad, base6(), new Uint8Array(5)]);
    expect(tsEngine.decap(tsEngine.createDecap(resolveDecap()), b)).toBe(2);
    expect([...b.reason.subarray(0, 4)]).toEqual([0, Reason.vxlan_bad_flags, 0, Reason.eth_truncated]);
    expect([...b.vtepFamily.subarray(0, 4)]).toEqual([4, 0, 6, 0]);
  });

  it('learns inner source MAC → outer source VTEP for good packets only, stamped with now', () => {
    const fdb = new FdbModel();
    let clock = 500;
    const d = tsEngine.createDecap(resolveDecap(), { fdb, now: () => clock });
    const group = innerUdp4(4, { macSrc: '01:00:5e:00:00:01' });
    const zero = innerUdp4(4, { macSrc: '00:00:00:00:00:00' });
    const other = innerUdp4(4, { macSrc: '52:54:00:00:00:0b' });
    const bad = encap(V4, other);
    bad[42] = 0;
    expect(tsEngine.decap(d, burstFromFrames([base4(), encap(V6, group), encap(V6, zero), bad]))).toBe(3);
    expect(fdb.entries().map((e) => [e.vni, formatIp(e.vtep.family, e.vtep.bytes), e.stamp, e.isStatic])).toEqual([
      [1000, '10.0.0.1', 500, false],
    ]);
    clock = 600;
    tsEngine.decap(d, burstFromFrames([base6()]));
    const e = fdb.lookup(1000, '52:54:00:00:00:0a')!;
    expect([formatIp(e.vtep.family, e.vtep.bytes), e.stamp]).toEqual(['fd00:1::1', 600]);
  });

  it('a fixed now and no learning store both work', () => {
    const fdb = new FdbModel();
    tsEngine.decap(tsEngine.createDecap(resolveDecap(), { fdb, now: 42 }), burstFromFrames([base4()]));
    expect(fdb.entries()[0]!.stamp).toBe(42);
    expect(tsEngine.createDecap(resolveDecap()).fdb).toBeNull();
  });
});

// RFC 6040 §4.2, as Linux's vxlan_rcv applies it (INET_ECN_decapsulate): an outer CE mark
// reaches an ECN-capable inner IP packet; a Not-ECT one cannot carry it and is dropped;
// any other outer ECN value leaves the inner packet alone. Both engines, one table.
describe('decap: ECN (RFC 6040)', () => {
  const engines = [['TS model', tsEngine], ['native', nativeEngine()]] as const;
  /** FRAME (our encap) with its outer ECN field set to ECN (the IPv4 checksum kept right). */
  const withOuterEcn = (f: Uint8Array, v6: boolean, ecn: number) => {
    const g = f.slice();
    if (v6) g[15] = (g[15]! & 0xcf) | (ecn << 4);
    else {
      g[15] = (g[15]! & 0xfc) | ecn;
      fixIp(g);
    }
    return g;
  };
  const run = (eng: (typeof engines)[number][1], frame: Uint8Array) => {
    const b = burstFromFrames([frame]);
    eng.decap(eng.createDecap(resolveDecap({})), b);
    return { reason: reasonName(b.reason[0]!), inner: packetBytes(b, 0) };
  };
  for (const [name, eng] of engines) {
    for (const v6 of [false, true]) {
      it(`${name}, ${v6 ? 'IPv6' : 'IPv4'} outer: every outer × inner ECN pair of an IPv4 inner packet`, () => {
        for (let outer = 0; outer < 4; outer++) {
          for (let inner = 0; inner < 4; inner++) {
            const innerFrame = innerUdp4(20, { tos: 0xb8 | inner });
            fixIp(innerFrame); // a header checksum that verifies, to be kept so
            const { reason, inner: got } = run(eng, withOuterEcn(encap(v6 ? V6 : V4, innerFrame), v6, outer));
            const at = `outer ${outer}, inner ${inner}`;
            if (outer === 3 && inner === 0) {
              expect(reason, at).toBe('ce_not_ect');
              continue;
            }
            expect(reason, at).toBe('ok');
            const want = innerFrame.slice();
            if (outer === 3) {
              want[15] = 0xb8 | 3;
              fixIp(want); // the engines update the checksum incrementally: it must equal a full one
            }
            expect([...got], at).toEqual([...want]);
          }
        }
      });
    }
    it(`${name}: an IPv6 inner packet (behind a VLAN tag too) is marked CE; ARP passes; a runt IPv4 header cannot carry the mark`, () => {
      const six = bytes(innerUdp4(20).subarray(0, 12), [0x86, 0xdd], ip6Header(0x2e));
      const { reason, inner } = run(eng, withOuterEcn(encap(V4, six), false, 3));
      expect(reason).toBe('ok');
      expect((inner[14]! & 0x0f) << 4 | inner[15]! >> 4).toBe(0x2f);
      const tagged6 = bytes(innerUdp4(20).subarray(0, 12), [0x81, 0x00, 0, 7, 0x86, 0xdd], ip6Header(0x01));
      const t = run(eng, withOuterEcn(encap(V4, tagged6), false, 3));
      expect(t.reason).toBe('ok');
      expect((t.inner[18]! & 0x0f) << 4 | t.inner[19]! >> 4).toBe(0x03);
      const notEct6 = bytes(innerUdp4(20).subarray(0, 12), [0x86, 0xdd], ip6Header(0x00));
      expect(run(eng, withOuterEcn(encap(V4, notEct6), false, 3)).reason).toBe('ce_not_ect');
      const arpFrame = bytes(innerUdp4(20).subarray(0, 12), [0x08, 0x06], new Uint8Array(28));
      const a = run(eng, withOuterEcn(encap(V4, arpFrame), false, 3));
      expect([a.reason, [...a.inner]]).toEqual(['ok', [...arpFrame]]);
      const runt = bytes(innerUdp4(20).subarray(0, 12), [0x08, 0x00], [0x45, 0x02, 0, 0]);
      expect(run(eng, withOuterEcn(encap(V4, runt), false, 3)).reason).toBe('ce_not_ect');
    });
  }
});

/** A bare IPv6 header (no payload) with traffic class TC. */
function ip6Header(tc: number): Uint8Array {
  const h = new Uint8Array(40);
  h[0] = 0x60 | (tc >> 4);
  h[1] = (tc & 0x0f) << 4;
  h[6] = 59; // no next header
  h[7] = 64;
  return h;
}
