// Parsing and formatting of MAC and IP addresses into wire bytes. Validation happens
// here, once, at the edge; everything past it works on bytes.
import { isIPv4, isIPv6 } from 'node:net';

export interface IpAddr {
  family: 4 | 6;
  bytes: Uint8Array; // 4 or 16 bytes
}

const MAC_RE = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;

export function parseMac(s: string): Uint8Array | null {
  const m = MAC_RE.exec(s.trim());
  if (!m) return null;
  return Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((h) => parseInt(h!, 16)));
}

/** Whether a MAC in text form is a group (multicast or broadcast) address: the first
 *  octet's low bit. */
export function isGroupMac(s: string): boolean {
  return (parseInt(s.slice(0, 2), 16) & 1) === 1;
}

/** Whether a MAC in canonical text form can be a station's: not a group address and not
 *  all-zero, which no station sends from. */
export function isStationMac(s: string): boolean {
  return !isGroupMac(s) && s !== '00:00:00:00:00:00';
}

export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i]!.toString(16).padStart(2, '0'));
  return out.join(':');
}

/** The Ethernet group address a multicast IP is sent to (RFC 1112 §6.4: 01:00:5e and
 *  the low 23 bits; RFC 2464 §7: 33:33 and the last 4 bytes), or null for a unicast one. */
export function groupMacOf(a: IpAddr): Uint8Array | null {
  const b = a.bytes;
  if (a.family === 4) return b[0]! >= 224 && b[0]! <= 239 ? Uint8Array.of(0x01, 0x00, 0x5e, b[1]! & 0x7f, b[2]!, b[3]!) : null;
  return b[0] === 0xff ? Uint8Array.of(0x33, 0x33, b[12]!, b[13]!, b[14]!, b[15]!) : null;
}

export function parseIp(s: string): IpAddr | null {
  const t = s.trim();
  if (isIPv4(t)) return { family: 4, bytes: Uint8Array.from(t.split('.').map(Number)) };
  if (isIPv6(t)) return { family: 6, bytes: parseIpv6(t) };
  return null;
}

function parseIpv6(s: string): Uint8Array {
  // isIPv6 has validated the text; here we only lay it out. A trailing dotted quad
  // (::ffff:192.0.2.1) stands for the last two groups.
  let text = s.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const q = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function formatIp(family: 4 | 6, b: Uint8Array, off = 0): string {
  if (family === 4) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[off + i * 2]! << 8) | b[off + i * 2 + 1]!);
  // RFC 5952: compress the longest run (≥ 2) of zero groups, the first one on a tie.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** A CIDR as its network in canonical text ("10.98.0.7/16" → "10.98.0.0/16"); a bare
 *  address is a host route (/32, /128); "default" is 0.0.0.0/0 or ::/0 by `family`.
 *  null when malformed. */
export function canonCidr(s: string, family?: 4 | 6): string | null {
  if (s === 'default') return family === 6 ? '::/0' : family === 4 ? '0.0.0.0/0' : null;
  const [addr, len, extra] = s.split('/');
  if (extra !== undefined) return null;
  const ip = parseIp(addr ?? '');
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  const bits = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(bits >= 0 && bits <= max)) return null;
  const b = Uint8Array.from(ip.bytes);
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    b[i] = b[i]! & (0xff00 >> keep) & 0xff;
  }
  return `${formatIp(ip.family, b)}/${bits}`;
}
