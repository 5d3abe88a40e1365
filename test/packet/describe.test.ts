// The one-line frame descriptions `vfplane dataplane drops` prints, held to what
// Wireshark's dissector reads from the same frames: addresses, VLAN, ports, ARP, ICMP
// types and a VXLAN frame's VNI and inner frame. Then what it says of frames that are not
// whole or not sane, which no dissector is asked about.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFrame } from '../../src/packet/describe.js';
import { arpRequest, icmpEcho, udp4, udp6, vxlan4, writePcap } from '../helpers/frames.js';
import { describePrivileged } from '../helpers/privileged.js';

const v6 = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const A = '02:aa:00:00:00:01', B = '02:bb:00:00:00:02';
const inner = udp4({ dstMac: '02:00:00:00:00:09', srcMac: '02:00:00:00:00:08', src: '10.9.0.2', dst: '10.9.0.1', sport: 7000, dport: 7001, payload: new Uint8Array(20) });
const vxlan = (vni: number, dport = 4789) => vxlan4({ dstMac: B, srcMac: A, src: '192.0.2.2', dst: '192.0.2.1', vni, inner, dport });
const frames = [
  icmpEcho({ dstMac: B, srcMac: A, src: '10.0.0.1', dst: '10.0.0.2', id: 1, seq: 9 }),
  udp4({ dstMac: B, srcMac: A, src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 9, payload: new Uint8Array(100), vlan: 300 }),
  arpRequest({ srcMac: A, srcIp: '10.0.0.1', targetIp: '10.0.0.2' }),
  udp6({ dstMac: B, srcMac: A, src: v6('fd00000000000000000000000000000a'), dst: v6('fd00000000000000000000000000000b'), sport: 7, dport: 8, payload: new Uint8Array(33) }),
  vxlan(4242),
  vxlan(77, 8472),
  // helper-87: an MLDv2 report (behind hop-by-hop options with a router alert), and an
  // IPv6 fragment, were described by their first next header only.
  ipv6Ext('fe800000000000000000000000000001', 'ff020000000000000000000000000016', 0, [0x3a, 0, 0x05, 0x02, 0, 0, 0x01, 0x00], [143, 0, 0, 0, 0, 0, 0, 0]),
  ipv6Ext('fd00000000000000000000000000000a', 'fd00000000000000000000000000000b', 44, [0x11, 0, 0x05, 0xa9, 0, 0, 0x12, 0x34], new Array(24).fill(0)),
];

/** An IPv6 frame A → B whose first next header is NH: the extension header EXT, then BODY
 *  (checksums left 0: only the dissection is compared). */
function ipv6Ext(src: string, dst: string, nh: number, ext: number[], body: number[]): Uint8Array {
  const ip = new Uint8Array(40 + ext.length + body.length);
  ip[0] = 0x60;
  ip[4] = (ext.length + body.length) >> 8;
  ip[5] = (ext.length + body.length) & 0xff;
  ip[6] = nh;
  ip[7] = 1;
  ip.set(v6(src), 8);
  ip.set(v6(dst), 24);
  ip.set(ext, 40);
  ip.set(body, 40 + ext.length);
  const fr = new Uint8Array(14 + ip.length);
  fr.set(Buffer.from(B.replaceAll(':', ''), 'hex'), 0);
  fr.set(Buffer.from(A.replaceAll(':', ''), 'hex'), 6);
  fr[12] = 0x86;
  fr[13] = 0xdd;
  fr.set(ip, 14);
  return fr;
}

const FIELDS = ['eth.src', 'eth.dst', 'vlan.id', 'arp.opcode', 'arp.src.hw_mac', 'arp.src.proto_ipv4', 'arp.dst.proto_ipv4', 'ip.src', 'ip.dst',
  'ipv6.src', 'ipv6.dst', 'udp.srcport', 'udp.dstport', 'icmp.type', 'vxlan.vni', 'ipv6.hopopts', 'icmpv6.type', 'ipv6.fraghdr.offset', 'ipv6.fraghdr.more', 'ipv6.fraghdr.nxt'];

/** The description tshark's fields call for, in describeFrame's words. */
function fromTshark(f: Record<string, string[]>): string {
  const l2 = (i: number) => `${f['eth.src']![i]} > ${f['eth.dst']![i]}`;
  const l3 = (i: number) => (f['ip.src']?.[i] ? `IPv4 ${f['ip.src'][i]} > ${f['ip.dst']![i]}` : `IPv6 ${f['ipv6.src']![i]} > ${f['ipv6.dst']![i]}`);
  if (f['arp.opcode']) return `${l2(0)}, ARP who-has ${f['arp.dst.proto_ipv4']![0]} tell ${f['arp.src.proto_ipv4']![0]} (${f['arp.src.hw_mac']![0]})`;
  const vlan = f['vlan.id'] ? `, VLAN ${f['vlan.id'][0]}` : '';
  if (f['icmp.type']) return `${l2(0)}${vlan}, ${l3(0)} ICMP ${f['icmp.type'][0] === '8' ? 'echo request' : '?'}`;
  if (f['ipv6.hopopts'] && f['icmpv6.type']) return `${l2(0)}, ${l3(0)} hop-by-hop options, ICMPv6 ${f['icmpv6.type'][0] === '143' ? 'MLDv2 report' : '?'}`;
  if (f['ipv6.fraghdr.offset']) return `${l2(0)}, ${l3(0)} fragment (offset ${Number(f['ipv6.fraghdr.offset'][0]) * 8}${/^(1|True)$/i.test(f['ipv6.fraghdr.more']![0]!) ? ', more' : ''}) proto ${f['ipv6.fraghdr.nxt']![0]}`;
  const udp = (i: number) => `UDP ${f['udp.srcport']![i]} > ${f['udp.dstport']![i]}`;
  const outer = `${l2(0)}${vlan}, ${l3(0)} ${udp(0)}`;
  return f['vxlan.vni'] ? `${outer}, VXLAN VNI ${f['vxlan.vni'][0]}: ${l2(1)}, ${l3(1)} ${udp(1)}` : outer;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfplane-describe-'));
  writePcap(join(dir, 'in.pcap'), frames);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describePrivileged('frame descriptions against tshark', { commands: ['tshark'] }, () => {
  it('says what Wireshark reads: MACs, VLAN, ARP, IPv4/IPv6, ports, ICMP, VXLAN (4789, and 8472 when told) with its inner frame', () => {
    const out = execFileSync('tshark', ['-r', join(dir, 'in.pcap'), '-d', 'udp.port==8472,vxlan', '-T', 'fields', ...FIELDS.flatMap((x) => ['-e', x]),
      '-E', 'separator=\t', '-E', 'aggregator=|', '-E', 'occurrence=a'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.trimEnd().split('\n');
    expect(rows).toHaveLength(frames.length);
    rows.forEach((row, i) => {
      const cols = row.split('\t');
      const f = Object.fromEntries(FIELDS.map((k, j) => [k, cols[j] ? cols[j]!.split('|') : undefined]).filter(([, v]) => v)) as Record<string, string[]>;
      expect(describeFrame(frames[i]!, frames[i]!.length, [4789, 8472]), `frame ${i}`).toBe(fromTshark(f));
    });
  });
});

describe('frame descriptions of what is cut short or insane', () => {
  it('says where the bytes run out or a header makes no sense, instead of guessing', () => {
    const u = frames[1]!;
    expect(describeFrame(u.subarray(0, 10), 10)).toBe('10 bytes, shorter than an Ethernet header');
    expect(describeFrame(u.subarray(0, 30), u.length)).toBe(`${A} > ${B}, VLAN 300, IPv4 (cut short)`);
    const bad = Uint8Array.from(frames[0]!);
    bad[14] = 0x65; // version 6 in an IPv4 ethertype
    expect(describeFrame(bad)).toBe(`${A} > ${B}, IPv4 ethertype, IP version 6`);
    bad[14] = 0x43; // IHL 3
    expect(describeFrame(bad)).toBe(`${A} > ${B}, IPv4, header length 12 (under 20)`);
    // Port 8472 is VXLAN only when told; one level deep only.
    expect(describeFrame(frames[5]!)).toBe(`${A} > ${B}, IPv4 192.0.2.2 > 192.0.2.1 UDP 50000 > 8472`);
    expect(describeFrame(vxlan(5).subarray(0, 46))).toBe(`${A} > ${B}, IPv4 192.0.2.2 > 192.0.2.1 UDP 50000 > 4789, VXLAN (cut short)`);
    expect(describeFrame(vxlan(5).subarray(0, 60))).toBe(`${A} > ${B}, IPv4 192.0.2.2 > 192.0.2.1 UDP 50000 > 4789, VXLAN VNI 5: 10 bytes, shorter than an Ethernet header`);
    const noI = vxlan(5);
    noI[42] = 0;
    expect(describeFrame(noI)).toMatch(/VXLAN VNI 5 \(I flag clear\): 02:00:00:00:00:08 > 02:00:00:00:00:09/);
    const lldp = Uint8Array.from(u.subarray(0, 60));
    lldp.set([0x88, 0xcc], 12);
    expect(describeFrame(lldp, 60)).toBe(`${A} > ${B}, ethertype 0x88cc, 60 bytes`);
  });
});
