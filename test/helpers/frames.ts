// Inner frames for tests, built by hand from the protocol layouts (independent of the
// code under test), and a minimal pcap encoder for test inputs.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';

export function csum16(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const put16 = (b: Uint8Array, o: number, v: number) => { b[o] = v >> 8; b[o + 1] = v & 0xff; };
export const macBytes = (m: string) => Uint8Array.from(m.split(':').map((h) => parseInt(h, 16)));
export const ip4Bytes = (a: string) => Uint8Array.from(a.split('.').map(Number));
/** n distinct unicast MACs 02:<tag>:00:00:hh:ll (n ≤ 65536), for tests that spread
 *  traffic over many stations. */
export const macSeq = (tag: number, n: number): string[] =>
  Array.from({ length: n }, (_, k) => `02:${tag.toString(16).padStart(2, '0')}:00:00:${((k >> 8) & 0xff).toString(16).padStart(2, '0')}:${(k & 0xff).toString(16).padStart(2, '0')}`);

function eth(dst: string, src: string, type: number, payload: Uint8Array, vlan?: number): Uint8Array {
  const tag = vlan === undefined ? 0 : 4;
  const f = new Uint8Array(14 + tag + payload.length);
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  if (vlan !== undefined) {
    put16(f, 12, 0x8100);
    put16(f, 14, vlan);
  }
  put16(f, 12 + tag, type);
  f.set(payload, 14 + tag);
  return f;
}

function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, opts: { tos?: number; df?: boolean; id?: number } = {}): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[1] = opts.tos ?? 0;
  put16(p, 2, p.length);
  put16(p, 4, opts.id ?? 0x1234);
  put16(p, 6, opts.df ? 0x4000 : 0);
  p[8] = 64;
  p[9] = proto;
  p.set(ip4Bytes(src), 12);
  p.set(ip4Bytes(dst), 16);
  put16(p, 10, csum16(p, 0, 20));
  p.set(payload, 20);
  return p;
}

export function icmpEcho(o: { dstMac: string; srcMac: string; src: string; dst: string; id: number; seq: number; payloadLen?: number; vlan?: number; reply?: boolean; tos?: number; df?: boolean }): Uint8Array {
  const icmp = new Uint8Array(8 + (o.payloadLen ?? 56));
  icmp[0] = o.reply ? 0 : 8;
  put16(icmp, 4, o.id);
  put16(icmp, 6, o.seq);
  for (let i = 8; i < icmp.length; i++) icmp[i] = (i * 7 + o.seq) & 0xff;
  put16(icmp, 2, csum16(icmp));
  return eth(o.dstMac, o.srcMac, 0x0800, ipv4(o.src, o.dst, 1, icmp, { tos: o.tos, df: o.df }), o.vlan);
}

export function udp4(o: { dstMac: string; srcMac: string; src: string; dst: string; sport: number; dport: number; payload: Uint8Array; vlan?: number; tos?: number; df?: boolean }): Uint8Array {
  const u = new Uint8Array(8 + o.payload.length);
  put16(u, 0, o.sport);
  put16(u, 2, o.dport);
  put16(u, 4, u.length);
  u.set(o.payload, 8);
  return eth(o.dstMac, o.srcMac, 0x0800, ipv4(o.src, o.dst, 17, u, { tos: o.tos, df: o.df }), o.vlan);
}

/** A VXLAN frame over IPv4: `inner` in VNI `vni` (I flag set), UDP from port 50000 to
 *  4789 unless told. */
export function vxlan4(o: { dstMac: string; srcMac: string; src: string; dst: string; vni: number; inner: Uint8Array; sport?: number; dport?: number }): Uint8Array {
  const payload = new Uint8Array(8 + o.inner.length);
  payload.set([0x08, 0, 0, 0, o.vni >> 16, (o.vni >> 8) & 0xff, o.vni & 0xff, 0]);
  payload.set(o.inner, 8);
  return udp4({ dstMac: o.dstMac, srcMac: o.srcMac, src: o.src, dst: o.dst, sport: o.sport ?? 50000, dport: o.dport ?? 4789, payload });
}

export function arpRequest(o: { srcMac: string; srcIp: string; targetIp: string }): Uint8Array {
  return arp(1, 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', o);
}

/** An ARP reply from srcMac/srcIp to dstMac/targetIp. */
export function arpReply(o: { dstMac: string; srcMac: string; srcIp: string; targetIp: string }): Uint8Array {
  return arp(2, o.dstMac, o.dstMac, o);
}

function arp(op: 1 | 2, dstMac: string, targetMac: string, o: { srcMac: string; srcIp: string; targetIp: string }): Uint8Array {
  const a = new Uint8Array(28);
  put16(a, 0, 1);
  put16(a, 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  put16(a, 6, op);
  a.set(macBytes(o.srcMac), 8);
  a.set(ip4Bytes(o.srcIp), 14);
  a.set(macBytes(targetMac), 18);
  a.set(ip4Bytes(o.targetIp), 24);
  return eth(dstMac, o.srcMac, 0x0806, a);
}

/** IPv6 UDP with a correct checksum; addresses as 16-byte arrays. */
export function udp6(o: { dstMac: string; srcMac: string; src: Uint8Array; dst: Uint8Array; sport: number; dport: number; payload: Uint8Array; tc?: number }): Uint8Array {
  const u = new Uint8Array(8 + o.payload.length);
  put16(u, 0, o.sport);
  put16(u, 2, o.dport);
  put16(u, 4, u.length);
  u.set(o.payload, 8);
  const pseudo = new Uint8Array(40 + u.length);
  pseudo.set(o.src, 0);
  pseudo.set(o.dst, 16);
  put16(pseudo, 34, u.length);
  pseudo[39] = 17;
  pseudo.set(u, 40);
  put16(u, 6, csum16(pseudo) || 0xffff);
  const ip = new Uint8Array(40 + u.length);
  const tc = o.tc ?? 0;
  ip[0] = 0x60 | (tc >> 4);
  ip[1] = (tc & 0xf) << 4;
  put16(ip, 4, u.length);
  ip[6] = 17;
  ip[7] = 64;
  ip.set(o.src, 8);
  ip.set(o.dst, 24);
  ip.set(u, 40);
  return eth(o.dstMac, o.srcMac, 0x86dd, ip);
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A classic little-endian µs pcap's global header, Ethernet linktype. */
function pcapHeader(): Buffer {
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(1, 20);
  return gh;
}

/** Writes a classic little-endian µs pcap with Ethernet linktype. */
export function writePcap(path: string, frames: Uint8Array[]): void {
  const parts: Buffer[] = [pcapHeader()];
  frames.forEach((f, i) => {
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(1_700_000_000 + i, 0);
    rh.writeUInt32LE(i * 1000, 4);
    rh.writeUInt32LE(f.length, 8);
    rh.writeUInt32LE(f.length, 12);
    parts.push(rh, Buffer.from(f));
  });
  writeFileSync(path, Buffer.concat(parts));
}

/** The same with `n` copies of one frame (n a multiple of 10,000), written in large
 *  pieces: fast at 100+ MB. */
export function writeRepeatedPcap(path: string, frame: Uint8Array, n: number): void {
  const rec = Buffer.alloc(16 + frame.length);
  rec.writeUInt32LE(1_700_000_000, 0);
  rec.writeUInt32LE(frame.length, 8);
  rec.writeUInt32LE(frame.length, 12);
  rec.set(frame, 16);
  const piece = Buffer.concat(Array.from({ length: 10_000 }, () => rec));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, pcapHeader());
    for (let i = 0; i < n; i += 10_000) writeSync(fd, piece);
  } finally {
    closeSync(fd);
  }
}

/** Reads the frames of a classic pcap (any endianness), for checking outputs. */
export function readPcapFrames(buf: Buffer): Uint8Array[] {
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const out: Uint8Array[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const cap = u32(o + 8);
    out.push(new Uint8Array(buf.subarray(o + 16, o + 16 + cap)));
    o += 16 + cap;
  }
  return out;
}
