// Test helpers for the native engine: independent oracles (bitwise CRC-32C, RFC 1071
// sums) and frame builders, written from docs/vxlan-engine.md rather than from the C,
// so a test fails when the engine and the contract disagree.
import { allocBurst, burstFromFrames, type Burst } from '../../src/packet/burst.js';
import { resolveTunnel, type TunnelSpec } from '../../src/packet/config.js';
import { loadAddon, rawTunnelCfg } from '../../src/dataplane/native.js';
import type { RawAddon, RawTunnelCfg } from '../../src/dataplane/addon-types.js';

export const addon: RawAddon = loadAddon();

/** CRC-32C one bit at a time, straight from the definition. */
export function crc32cRef(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** The 16-bit ones' complement sum (not complemented), zero-padding an odd tail. */
export function onesSum(...parts: Uint8Array[]): number {
  let s = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) s += (p[i]! << 8) | (i + 1 < p.length ? p[i + 1]! : 0);
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((h) => parseInt(h, 16)));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
export const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
export const u16 = (v: number): Uint8Array => Uint8Array.of(v >> 8, v & 0xff);
export const mac = (s: string): Uint8Array => Uint8Array.from(s.split(':').map((h) => parseInt(h, 16)));

export function tunnel(spec: Partial<TunnelSpec> = {}): RawTunnelCfg {
  return rawTunnelCfg(resolveTunnel({ local: '192.0.2.1', remote: '198.51.100.2', ...spec }));
}

export interface InnerOpts {
  dst?: string;
  src?: string;
  vlans?: number[]; // TPIDs of inner tags, outermost first
  type?: number;
  payload?: Uint8Array;
}

/** An Ethernet frame: MACs, optional tags, type, payload. */
export function ether(o: InnerOpts = {}): Uint8Array {
  const tags = (o.vlans ?? []).map((tpid, i) => concat(u16(tpid), u16(10 + i)));
  return concat(mac(o.dst ?? '52:54:00:00:00:02'), mac(o.src ?? '52:54:00:00:00:01'), ...tags, u16(o.type ?? 0x0800), o.payload ?? new Uint8Array(0));
}

export interface Ip4Opts {
  src?: Uint8Array;
  dst?: Uint8Array;
  proto?: number;
  tos?: number;
  flags?: number; // flags + fragment offset word
  id?: number;
  ttl?: number;
  options?: Uint8Array;
  totalLength?: number;
  version?: number;
  ihl?: number;
  badChecksum?: boolean;
}

export function ipv4(payload: Uint8Array, o: Ip4Opts = {}): Uint8Array {
  const opt = o.options ?? new Uint8Array(0);
  const hl = 20 + opt.length;
  const h = new Uint8Array(hl);
  h[0] = ((o.version ?? 4) << 4) | (o.ihl ?? hl / 4);
  h[1] = o.tos ?? 0;
  h.set(u16(o.totalLength ?? hl + payload.length), 2);
  h.set(u16(o.id ?? 0), 4);
  h.set(u16(o.flags ?? 0), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto ?? 17;
  h.set(o.src ?? Uint8Array.of(10, 0, 0, 1), 12);
  h.set(o.dst ?? Uint8Array.of(10, 0, 0, 2), 16);
  h.set(opt, 20);
  const c = ~onesSum(h) & 0xffff;
  h.set(u16(o.badChecksum ? c ^ 0x0101 : c), 10);
  return concat(h, payload);
}

export interface Ip6Opts {
  src?: Uint8Array;
  dst?: Uint8Array;
  next?: number;
  tc?: number;
  payloadLength?: number;
  version?: number;
}

export function ipv6(payload: Uint8Array, o: Ip6Opts = {}): Uint8Array {
  const h = new Uint8Array(40);
  const tc = o.tc ?? 0;
  h[0] = ((o.version ?? 6) << 4) | (tc >> 4);
  h[1] = (tc & 0xf) << 4;
  h.set(u16(o.payloadLength ?? payload.length), 4);
  h[6] = o.next ?? 17;
  h[7] = 64;
  h.set(o.src ?? v6('2001:db8::1'), 8);
  h.set(o.dst ?? v6('2001:db8::2'), 24);
  return concat(h, payload);
}

export function v6(s: string): Uint8Array {
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Uint8Array.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

export function udp(sport: number, dport: number, payload: Uint8Array, length?: number, csum = 0): Uint8Array {
  return concat(u16(sport), u16(dport), u16(length ?? 8 + payload.length), u16(csum), payload);
}

export function vxlanHdr(vni: number, flags = 0x08): Uint8Array {
  return Uint8Array.of(flags, 0, 0, 0, (vni >> 16) & 0xff, (vni >> 8) & 0xff, vni & 0xff, 0);
}

/** The UDP checksum field value for a UDP datagram between src and dst (4 or 16 bytes). */
export function udpChecksum(src: Uint8Array, dst: Uint8Array, dgram: Uint8Array): number {
  const z = dgram.slice();
  z[6] = 0;
  z[7] = 0;
  const pseudo = concat(src, dst, Uint8Array.of(0, 17), u16(dgram.length));
  const c = ~onesSum(pseudo, z) & 0xffff;
  return c === 0 ? 0xffff : c;
}

/** A simple inner IPv4/UDP frame for flow-dependent tests. */
export function innerUdp4(flow: number, size = 64): Uint8Array {
  const payload = new Uint8Array(Math.max(0, size - 14 - 20 - 8));
  return ether({
    src: `52:54:00:00:${((flow >> 8) & 0xff).toString(16).padStart(2, '0')}:${(flow & 0xff).toString(16).padStart(2, '0')}`,
    payload: ipv4(udp(1000 + (flow & 0x7fff), 5001, payload), { src: Uint8Array.of(10, 1, (flow >> 8) & 0xff, flow & 0xff) }),
  });
}

/** A burst of frames with the given headroom each. */
export function burstOf(frames: Uint8Array[], headroom = 128): Burst {
  return burstFromFrames(frames, headroom);
}

export function emptyBurst(n: number): Burst {
  return allocBurst(n, 64);
}

export function packet(b: Burst, i: number): Uint8Array {
  return b.buf.slice(b.off[i]!, b.off[i]! + b.len[i]!);
}

export function encapOne(cfg: RawTunnelCfg, vni: number, frame: Uint8Array): Uint8Array {
  const b = burstOf([frame]);
  const t = addon.tunnelCreate(cfg);
  if (addon.encap(t, vni, b) !== 1) throw new Error(`encap dropped the frame: reason ${b.reason[0]}`);
  return packet(b, 0);
}

/** Where the drop counters start in a stats view: after the counters the layout names first. */
export const STATS_HEAD = (addon.statsLayout() as string[]).findIndex((n) => n.startsWith('drop.'));
