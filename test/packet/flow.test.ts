// The inner parse and flow key of docs/vxlan-engine.md §3.4 case by case (VLAN skipping,
// IPv4/IPv6 detection, fragments, which protocols contribute ports), and the §3.3 mapping
// from flow hash to UDP source port at its edges.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/packet/crc32c.js';
import { flowHash, flowKey, newInnerInfo, parseInner, srcPortFromHash } from '../../src/packet/flow.js';
import { arp, bytes, eth, innerUdp4, ip, ipv4, ipv6, mac, udp } from './frames.js';

const L2 = bytes(mac('52:54:00:00:00:02'), mac('52:54:00:00:00:01'));
const parse = (f: Uint8Array) => parseInner(f, 0, f.length, newInnerInfo());

describe('inner parse and flow key (§3.4)', () => {
  it('IPv4 UDP: MACs, addresses, ports, protocol', () => {
    const f = innerUdp4(4, { sport: 0x1234, dport: 0x5678, src: '10.0.0.1', dst: '10.0.0.2' });
    expect([...flowKey(f)]).toEqual([...L2, ...ip('10.0.0.1'), ...ip('10.0.0.2'), 0x12, 0x34, 0x56, 0x78, 17]);
    expect(parse(f)).toMatchObject({ kind: 4, l3: 14, l4: 34, proto: 17, frag: false, ports: true });
  });

  it('IPv6 TCP: 32 address bytes, ports, next header', () => {
    const f = eth(0x86dd, ipv6(bytes([0, 80, 1, 187], new Uint8Array(16)), { src: 'fd00::a', dst: 'fd00::b', nh: 6 }));
    expect([...flowKey(f)]).toEqual([...L2, ...ip('fd00::a'), ...ip('fd00::b'), 0, 80, 1, 187, 6]);
  });

  it('skips one or two VLAN tags (0x8100, 0x88a8), and the tags are not in the key', () => {
    const plain = innerUdp4(4);
    const one = innerUdp4(4, { tags: [[0x8100, 5]] });
    const two = innerUdp4(4, { tags: [[0x88a8, 5], [0x8100, 6]] });
    expect(parse(one).l3).toBe(18);
    expect(parse(two).l3).toBe(22);
    expect([...flowKey(one)]).toEqual([...flowKey(plain)]);
    expect([...flowKey(two)]).toEqual([...flowKey(plain)]);
  });

  it('a third tag is not skipped: the frame is not IP and the key is the MACs alone', () => {
    const f = innerUdp4(4, { tags: [[0x8100, 1], [0x8100, 2], [0x8100, 3]] });
    expect(parse(f)).toMatchObject({ kind: 0, l3: 22 });
    expect([...flowKey(f)]).toEqual([...L2]);
  });

  it('a VLAN tag cut short ends the skip', () => {
    const f = bytes(L2, [0x81, 0x00, 0x00]);
    expect(parse(f)).toMatchObject({ kind: 0, l3: 14 });
  });

  it('non-IP frames (ARP) key on the MACs alone', () => {
    const a = arp();
    expect([...flowKey(a)]).toEqual([...a.subarray(0, 12)]);
    expect(parse(a)).toMatchObject({ kind: 0, tos: 0, df: false });
  });

  it('a bad or short IPv4 header makes the frame not IP', () => {
    const good = innerUdp4(4);
    const v6nibble = good.slice();
    v6nibble[14] = 0x65;
    expect(parse(v6nibble).kind).toBe(0);
    const ihl4 = good.slice();
    ihl4[14] = 0x44;
    expect(parse(ihl4).kind).toBe(0);
    const ihlPast = good.slice(0, 14 + 24);
    ihlPast[14] = 0x47; // 28-byte header in a 24-byte remainder
    expect(parse(ihlPast).kind).toBe(0);
    expect(parse(good.slice(0, 33)).kind).toBe(0);
    expect(parse(good.slice(0, 34)).kind).toBe(4);
  });

  it('IPv4 options move l4', () => {
    const f = eth(0x0800, ipv4(udp(7, 9), { ihl: 6 }));
    expect(parse(f)).toMatchObject({ kind: 4, l4: 38, ports: true });
    expect([...flowKey(f)].slice(-5)).toEqual([0, 7, 0, 9, 17]);
  });

  it('fragments (MF or offset) leave the ports out; DF alone does not', () => {
    for (const [frag, isFrag] of [[0x2000, true], [0x0001, true], [0x1fff, true], [0x4000, false], [0x8000, false]] as const) {
      const f = innerUdp4(4, { frag });
      expect(parse(f).frag, `frag word ${frag.toString(16)}`).toBe(isFrag);
      expect(flowKey(f).length).toBe(isFrag ? 21 : 25);
    }
  });

  it('ports only for TCP, UDP, SCTP and only when 4 bytes are there', () => {
    for (const [proto, withPorts] of [[6, true], [17, true], [132, true], [1, false], [47, false]] as const) {
      const f = eth(0x0800, ipv4(bytes([1, 2, 3, 4, 5]), { proto }));
      expect(flowKey(f).length, `proto ${proto}`).toBe(withPorts ? 25 : 21);
      expect(flowKey(f)[flowKey(f).length - 1]).toBe(proto);
    }
    const short = eth(0x0800, ipv4(bytes([1, 2, 3]), { proto: 17 }));
    expect(flowKey(short).length).toBe(21);
  });

  it('IPv6 is never a fragment, extension headers are not walked', () => {
    const f = eth(0x86dd, ipv6(bytes([17, 0, 0, 0, 0, 0, 0, 1], udp(1, 2)), { nh: 44 }));
    expect(parse(f)).toMatchObject({ kind: 6, proto: 44, frag: false, ports: false });
    expect(flowKey(f).length).toBe(12 + 32 + 1);
  });

  it('reports the TOS / traffic class and DF that inherit takes', () => {
    expect(parse(innerUdp4(4, { tos: 0xb8, frag: 0x4000 }))).toMatchObject({ tos: 0xb8, df: true });
    expect(parse(innerUdp4(4, { tos: 0x2e }))).toMatchObject({ tos: 0x2e, df: false });
    expect(parse(eth(0x86dd, ipv6(udp(1, 2), { tc: 0xa5 })))).toMatchObject({ tos: 0xa5, df: true });
    expect(parse(innerUdp4(4, { tos: 0x10, tags: [[0x8100, 3]] }))).toMatchObject({ tos: 0x10 });
  });

  it('flowHash is CRC-32C of flowKey, read straight out of the arena', () => {
    const frames = [innerUdp4(4), arp(), eth(0x86dd, ipv6(udp(5, 6), { tc: 3 })), innerUdp4(0, { frag: 0x2000, tags: [[0x8100, 9]] })];
    for (const f of frames) {
      const arena = bytes(new Uint8Array(37), f, new Uint8Array(5));
      const info = parseInner(arena, 37, f.length, newInnerInfo());
      expect(flowHash(arena, 37, info)).toBe(crc32c(flowKey(f)));
    }
  });
});

describe('UDP source port from the flow hash (§3.3)', () => {
  it('maps the hash range onto the port range, ends included', () => {
    expect(srcPortFromHash(0, 49152, 65535)).toBe(49152);
    expect(srcPortFromHash(0xffffffff, 49152, 65535)).toBe(65535);
    expect(srcPortFromHash(0x80000000, 49152, 65535)).toBe(49152 + 8192);
    expect(srcPortFromHash(0xffffffff, 1, 65535)).toBe(65535);
    expect(srcPortFromHash(0, 1, 65535)).toBe(1);
    expect(srcPortFromHash(0xffffffff, 1234, 1234)).toBe(1234);
    // floor(h · span / 2^32) for a span that does not divide 2^32
    expect(srcPortFromHash(0xe3069283, 1000, 1002)).toBe(1000 + Math.floor((0xe3069283 * 3) / 2 ** 32));
    expect(srcPortFromHash(0x55555555, 0, 2)).toBe(0);
    expect(srcPortFromHash(0x55555556, 0, 2)).toBe(1);
  });
});
