// One line saying what a frame is, as tcpdump -e would (MACs, VLAN, ARP, IPv4/IPv6,
// UDP/TCP ports, ICMP type, and a VXLAN frame's inner frame), for the frames
// `vfplane dataplane drops` shows. It reads what it is given (a frame's first bytes may
// be all there is) and says where that runs out or a header makes no sense, rather than
// guessing: the frames it describes are often the malformed ones.
import { formatIp, formatMac } from '../util/addr.js';

const be16 = (f: Uint8Array, o: number) => (f[o]! << 8) | f[o + 1]!;

const ICMP6: Record<number, string> = {
  1: 'destination unreachable', 2: 'packet too big', 3: 'time exceeded', 128: 'echo request', 129: 'echo reply',
  130: 'MLD query', 131: 'MLD report', 133: 'router solicitation', 134: 'router advertisement',
  135: 'neighbour solicitation', 136: 'neighbour advertisement', 143: 'MLDv2 report',
};
const ICMP4: Record<number, string> = { 0: 'echo reply', 3: 'destination unreachable', 8: 'echo request', 11: 'time exceeded' };

/**
 * Describes frame `f` (perhaps only its first bytes: `len` is the whole frame's length).
 * A UDP datagram to one of `vxlanPorts` is read as VXLAN and its inner frame described
 * too, one level deep.
 */
export function describeFrame(f: Uint8Array, len = f.length, vxlanPorts: readonly number[] = [4789], depth = 0): string {
  if (f.length < 14) return `${len} bytes, shorter than an Ethernet header`;
  const parts = [`${formatMac(f, 6)} > ${formatMac(f, 0)}`];
  let o = 12;
  let type = be16(f, o);
  for (let tags = 0; (type === 0x8100 || type === 0x88a8) && tags < 2; tags++) {
    if (f.length < o + 6) return `${parts.join(', ')}, VLAN (cut short)`;
    parts.push(`VLAN ${be16(f, o + 2) & 0xfff}`);
    o += 4;
    type = be16(f, o);
  }
  o += 2;
  const rest = (s: string) => `${parts.join(', ')}, ${s}`;
  if (type === 0x0806) {
    if (f.length < o + 28) return rest('ARP (cut short)');
    const op = be16(f, o + 6);
    if (be16(f, o) !== 1 || be16(f, o + 2) !== 0x0800 || f[o + 4] !== 6 || f[o + 5] !== 4) return rest(`ARP, not Ethernet/IPv4 (op ${op})`);
    const sha = formatMac(f, o + 8), spa = formatIp(4, f, o + 14), tpa = formatIp(4, f, o + 24);
    return rest(op === 1 ? `ARP who-has ${tpa} tell ${spa} (${sha})` : op === 2 ? `ARP reply ${spa} is-at ${sha}` : `ARP op ${op}`);
  }
  if (type === 0x0800) return rest(ipv4(f, o, vxlanPorts, depth));
  if (type === 0x86dd) return rest(ipv6(f, o, vxlanPorts, depth));
  return rest(`ethertype 0x${type.toString(16).padStart(4, '0')}, ${len} bytes`);
}

function ipv4(f: Uint8Array, o: number, vx: readonly number[], depth: number): string {
  if (f.length < o + 20) return 'IPv4 (cut short)';
  const ver = f[o]! >> 4, ihl = (f[o]! & 15) * 4;
  if (ver !== 4) return `IPv4 ethertype, IP version ${ver}`;
  if (ihl < 20) return `IPv4, header length ${ihl} (under 20)`;
  const src = formatIp(4, f, o + 12), dst = formatIp(4, f, o + 16);
  const frag = be16(f, o + 6);
  const head = `IPv4 ${src} > ${dst}`;
  if (frag & 0x1fff || frag & 0x2000) return `${head} fragment (offset ${(frag & 0x1fff) * 8}${frag & 0x2000 ? ', more' : ''}) proto ${f[o + 9]}`;
  return `${head} ${l4(f, o + ihl, f[o + 9]!, false, vx, depth)}`;
}

function ipv6(f: Uint8Array, o: number, vx: readonly number[], depth: number): string {
  if (f.length < o + 40) return 'IPv6 (cut short)';
  if (f[o]! >> 4 !== 6) return `IPv6 ethertype, IP version ${f[o]! >> 4}`;
  const head = `IPv6 ${formatIp(6, f, o + 8)} > ${formatIp(6, f, o + 24)}`;
  // The extension headers, named, down to the upper layer (an MLD report sits behind a
  // hop-by-hop header; a fragment says where it lies and what it carries, as an IPv4
  // one does).
  let nh = f[o + 6]!, off = o + 40;
  const ext: string[] = [];
  for (let i = 0; EXT6[nh] !== undefined; i++) {
    if (f.length < off + 8 || i === 8) return `${head} ${[...ext, `${EXT6[nh]} (cut short)`].join(', ')}`;
    if (nh === 44) {
      const fo = be16(f, off + 2);
      return `${head} ${[...ext, `fragment (offset ${fo & 0xfff8}${fo & 1 ? ', more' : ''}) proto ${f[off]}`].join(', ')}`;
    }
    ext.push(EXT6[nh]!);
    const len = nh === 51 ? (f[off + 1]! + 2) * 4 : (f[off + 1]! + 1) * 8;
    nh = f[off]!;
    off += len;
  }
  return `${head} ${[...ext, l4(f, off, nh, true, vx, depth)].join(', ')}`;
}

/** IPv6 extension headers describe walks past, by next-header value. */
const EXT6: Record<number, string> = { 0: 'hop-by-hop options', 43: 'routing header', 44: 'fragment', 51: 'AH', 60: 'destination options' };

function l4(f: Uint8Array, o: number, proto: number, v6: boolean, vx: readonly number[], depth: number): string {
  if (proto === 17 || proto === 6) {
    const name = proto === 17 ? 'UDP' : 'TCP';
    if (f.length < o + 4) return `${name} (cut short)`;
    const sport = be16(f, o), dport = be16(f, o + 2);
    const ports = `${name} ${sport} > ${dport}`;
    if (proto !== 17 || !vx.includes(dport) || depth > 0) return ports;
    if (f.length < o + 16) return `${ports}, VXLAN (cut short)`;
    const v = o + 8;
    const vni = (f[v + 4]! << 16) | (f[v + 5]! << 8) | f[v + 6]!;
    const flags = (f[v]! & 0x08) ? '' : ' (I flag clear)';
    const inner = f.subarray(v + 8);
    return `${ports}, VXLAN VNI ${vni}${flags}: ${inner.length ? describeFrame(inner, inner.length, vx, depth + 1) : 'inner frame cut off'}`;
  }
  if (proto === (v6 ? 58 : 1)) {
    if (f.length < o + 1) return `ICMP${v6 ? 'v6' : ''} (cut short)`;
    const t = f[o]!;
    return `ICMP${v6 ? 'v6' : ''} ${(v6 ? ICMP6 : ICMP4)[t] ?? `type ${t}`}`;
  }
  return `proto ${proto}`;
}
