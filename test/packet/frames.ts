// Small builders for test frames: Ethernet with optional VLAN tags, IPv4/IPv6 with UDP or
// raw payloads, ARP. Only what the packet tests need; checksums of inner headers do not
// matter to the engine, so they are left zero unless a test sets them.
import { parseIp, parseMac } from '../../src/util/addr.js';

export function bytes(...parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function mac(s: string): Uint8Array {
  const m = parseMac(s);
  if (!m) throw new Error(`bad MAC ${s}`);
  return m;
}

export function ip(s: string): Uint8Array {
  const a = parseIp(s);
  if (!a) throw new Error(`bad IP ${s}`);
  return a.bytes;
}

const be16 = (v: number) => [v >> 8, v & 0xff];

export interface EthOpts {
  macDst?: string;
  macSrc?: string;
  /** VLAN tags outermost first: [tpid, vid]. */
  tags?: [number, number][];
}

export function eth(type: number, payload: Uint8Array, o: EthOpts = {}): Uint8Array {
  const tags = (o.tags ?? []).flatMap(([tpid, vid]) => [...be16(tpid), ...be16(vid)]);
  return bytes(mac(o.macDst ?? '52:54:00:00:00:02'), mac(o.macSrc ?? '52:54:00:00:00:01'), tags, be16(type), payload);
}

export interface Ip4Opts {
  src?: string;
  dst?: string;
  tos?: number;
  /** flags+offset word: 0x4000 DF, 0x2000 MF, low 13 bits offset. */
  frag?: number;
  proto?: number;
  ihl?: number;
}

export function ipv4(payload: Uint8Array, o: Ip4Opts = {}): Uint8Array {
  const ihl = o.ihl ?? 5;
  const h = new Uint8Array(ihl * 4);
  h[0] = 0x40 | ihl;
  h[1] = o.tos ?? 0;
  h.set(be16(h.length + payload.length), 2);
  h.set(be16(o.frag ?? 0), 6);
  h[8] = 64;
  h[9] = o.proto ?? 17;
  h.set(ip(o.src ?? '192.168.0.1'), 12);
  h.set(ip(o.dst ?? '192.168.0.2'), 16);
  return bytes(h, payload);
}

export interface Ip6Opts {
  src?: string;
  dst?: string;
  tc?: number;
  nh?: number;
}

export function ipv6(payload: Uint8Array, o: Ip6Opts = {}): Uint8Array {
  const h = new Uint8Array(40);
  const tc = o.tc ?? 0;
  h[0] = 0x60 | (tc >> 4);
  h[1] = (tc & 0x0f) << 4;
  h.set(be16(payload.length), 4);
  h[6] = o.nh ?? 17;
  h[7] = 64;
  h.set(ip(o.src ?? 'fd00::1'), 8);
  h.set(ip(o.dst ?? 'fd00::2'), 24);
  return bytes(h, payload);
}

export function udp(sport: number, dport: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return bytes(be16(sport), be16(dport), be16(8 + payload.length), [0, 0], payload);
}

export function arp(): Uint8Array {
  return eth(0x0806, bytes([0, 1, 8, 0, 6, 4, 0, 1], mac('52:54:00:00:00:01'), ip('192.168.0.1'), new Uint8Array(6), ip('192.168.0.254')), {
    macDst: 'ff:ff:ff:ff:ff:ff',
  });
}

/** An inner IPv4/UDP frame with `payloadLen` payload bytes (total 42 + payloadLen). */
export function innerUdp4(payloadLen = 18, o: Ip4Opts & EthOpts & { sport?: number; dport?: number } = {}): Uint8Array {
  const pl = new Uint8Array(payloadLen).map((_, i) => (i * 7 + 3) & 0xff);
  return eth(0x0800, ipv4(udp(o.sport ?? 1000, o.dport ?? 2000, pl), o), o);
}
