// Differential test: the native engine and the TypeScript reference model, written
// independently from the same contract (docs/vxlan-engine.md), must turn the same random
// input into byte-identical output and the same drop reasons. Seeds are fixed so a
// failure is reproducible; the failing seed and packet are printed.
import { describe, expect, it } from 'vitest';
import { allocBurst, cloneBurst, type Burst } from '../../src/packet/burst.js';
import { resolveDecap, resolveTunnel, type DecapSpec, type TunnelSpec } from '../../src/packet/config.js';
import type { VxlanEngine } from '../../src/packet/engine.js';
import { REASONS } from '../../src/packet/reasons.js';
import { nativeEngine } from '../../src/dataplane/native.js';
import { tsEngine } from '../../src/packet/model.js';
import { mulberry32 } from '../../src/util/rand.js';

/** Seeded picks of test cases (src/util/rand.ts). */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const chance = (p: number) => next() < p;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(0, 255));
  return { next, int, pick, chance, bytes };
}
type Rng = ReturnType<typeof rng>;

const put16 = (b: Uint8Array, o: number, v: number) => { b[o] = (v >> 8) & 0xff; b[o + 1] = v & 0xff; };

/** A random inner frame: 14–9000 bytes, maybe VLAN/QinQ-tagged, IPv4/IPv6/ARP/other. */
function innerFrame(r: Rng): Uint8Array {
  if (r.chance(0.02)) return r.bytes(r.int(0, 13)); // shorter than an Ethernet header
  const kind = r.pick(['ipv4', 'ipv4', 'ipv6', 'ipv6', 'arp', 'other', 'runt'] as const);
  const tags = r.pick([0, 0, 0, 1, 2]);
  const l3 = 14 + tags * 4;
  const len = kind === 'runt' ? r.int(14, l3 + 24) : r.chance(0.1) ? r.int(1000, 9000) : r.int(Math.max(14, l3), 300);
  const f = r.bytes(len);
  if (r.chance(0.2)) f[0]! |= 1; // group destination
  let o = 12;
  for (let t = 0; t < tags && o + 4 <= len; t++, o += 4) put16(f, o, t === 0 && tags === 2 ? 0x88a8 : 0x8100);
  if (o + 2 > len) return f;
  const type = { ipv4: 0x0800, ipv6: 0x86dd, arp: 0x0806, other: r.int(0, 0xffff), runt: r.pick([0x0800, 0x86dd]) }[kind];
  put16(f, o, type);
  const ip = o + 2;
  if (type === 0x0800 && ip < len) {
    f[ip] = r.chance(0.9) ? 0x40 | r.pick([5, 5, 5, 6, 15, 4, 3]) : r.int(0, 255);
    if (ip + 10 < len) f[ip + 9] = r.pick([6, 17, 132, 1, 47, r.int(0, 255)]);
    if (ip + 7 < len) {
      const frag = r.pick([0, 0, 0x4000, 0x2000, 0x0010, 0x2010]);
      put16(f, ip + 6, frag);
    }
  } else if (type === 0x86dd && ip < len) {
    f[ip] = r.chance(0.9) ? 0x60 | (f[ip]! & 0x0f) : r.int(0, 255);
    if (ip + 7 < len) f[ip + 6] = r.pick([6, 17, 132, 58, 0, 44]);
  }
  return f;
}

function tunnelSpec(r: Rng): TunnelSpec {
  const v6 = r.chance(0.4);
  const lo = r.int(1, 65535);
  const hi = r.chance(0.5) ? 65535 : r.int(lo, 65535);
  return {
    local: v6 ? `2001:db8::${r.int(1, 0xffff).toString(16)}` : `10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`,
    remote: v6 ? `2001:db8:${r.int(1, 0xffff).toString(16)}::1` : `192.0.2.${r.int(1, 254)}`,
    srcMac: '02:11:22:33:44:55',
    dstMac: `0${r.pick([0, 2, 4])}:aa:bb:cc:dd:${r.int(0, 255).toString(16).padStart(2, '0')}`,
    vlan: r.chance(0.3) ? r.int(0, 4094) : null,
    vlanPcp: r.int(0, 7),
    dstPort: r.pick([4789, 8472, r.int(1, 65535)]),
    srcPortMin: r.chance(0.5) ? 49152 : lo,
    srcPortMax: r.chance(0.5) ? 65535 : Math.max(hi, r.chance(0.5) ? 49152 : lo),
    ttl: r.int(1, 255),
    tos: r.chance(0.4) ? 'inherit' : r.int(0, 255),
    df: r.pick(['set', 'unset', 'inherit'] as const),
    udpCsum: r.chance(0.5),
    mtu: r.chance(0.2) ? r.int(68, 9100) : 0,
    ipId: r.int(0, 65535),
  };
}

function fixSpec(s: TunnelSpec): TunnelSpec {
  if (s.srcPortMin! > s.srcPortMax!) s.srcPortMax = s.srcPortMin;
  return s;
}

/** Lays frames into a burst with random headroom (sometimes too little). */
function burstOf(r: Rng, frames: Uint8Array[], need: number): Burst {
  const rooms = frames.map(() => (r.chance(0.1) ? r.int(0, need) : need + r.int(0, 64)));
  const total = frames.reduce((a, f, i) => a + rooms[i]! + f.length + 64, 64);
  const b = allocBurst(frames.length, total);
  b.buf.set(r.bytes(Math.min(total, 4096))); // junk in the headroom must not matter
  let pos = r.int(0, 63);
  frames.forEach((f, i) => {
    b.off[i] = pos + rooms[i]!;
    b.len[i] = f.length;
    b.room[i] = rooms[i]!;
    b.buf.set(f, b.off[i]!);
    pos += rooms[i]! + f.length + r.int(0, 63);
  });
  b.count = frames.length;
  return b;
}

function explain(b: Burst, i: number): string {
  return `packet ${i}: off ${b.off[i]} len ${b.len[i]} room ${b.room[i]} reason ${REASONS[b.reason[i]!]}`;
}

function expectSame(n: Burst, t: Burst, what: string, decap: boolean): void {
  for (let i = 0; i < n.count; i++) {
    const ctx = `${what}\n native ${explain(n, i)}\n ts     ${explain(t, i)}`;
    expect(REASONS[n.reason[i]!], ctx).toBe(REASONS[t.reason[i]!]);
    expect(n.off[i], ctx).toBe(t.off[i]);
    expect(n.len[i], ctx).toBe(t.len[i]);
    expect(n.room[i], ctx).toBe(t.room[i]);
    if (decap) {
      expect(n.vni[i], ctx).toBe(t.vni[i]);
      expect(n.vtepFamily[i], ctx).toBe(t.vtepFamily[i]);
      const fam = 16; // all 16 bytes: IPv4 leaves the rest zero, drops zero everything
      expect(Buffer.from(n.vtep.subarray(i * 16, i * 16 + fam)).toString('hex'), ctx)
        .toBe(Buffer.from(t.vtep.subarray(i * 16, i * 16 + fam)).toString('hex'));
    }
  }
  // The whole arena, not only the packets: neither engine may write anywhere else.
  if (!Buffer.from(n.buf).equals(Buffer.from(t.buf))) {
    let k = 0;
    while (n.buf[k] === t.buf[k]) k++;
    const at = [...Array(n.count).keys()].find((i) => k >= n.off[i]! - n.room[i]! && k < n.off[i]! + n.len[i]!);
    expect.fail(`${what}: arenas differ first at byte ${k} (${at === undefined ? "outside every packet" : explain(n, at)}) ` +
      `native ${n.buf[k]} ts ${t.buf[k]}`);
  }
}

function run(engine: VxlanEngine, op: 'encap' | 'decap', handle: any, vni: number, b: Burst): number {
  return op === 'encap' ? engine.encap(handle, vni, b) : engine.decap(handle, b);
}

/** Damage an outer frame in a way that exercises one of the decap checks. */
function corrupt(r: Rng, f: Uint8Array): Uint8Array {
  const g = f.slice();
  const vlan = g[12] === 0x81 && g[13] === 0x00 ? 4 : 0;
  const ip = 14 + vlan;
  const v4 = g[ip]! >> 4 === 4;
  const l4 = ip + (v4 ? (g[ip]! & 0x0f) * 4 : 40);
  // Most damage to the IPv4 header comes with a recomputed checksum, so the checks
  // after the checksum (length, fragment, protocol) are reached too.
  const refresh = () => {
    if (!v4 || r.chance(0.3) || ip + 20 > g.length) return;
    const ihl = Math.max(5, g[ip]! & 0x0f) * 4;
    if (ip + ihl > g.length) return;
    put16(g, ip + 10, 0);
    let sum = 0;
    for (let k = ip; k < ip + ihl; k += 2) sum += (g[k]! << 8) | g[k + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    put16(g, ip + 10, ~sum & 0xffff);
  };
  switch (r.int(0, 16)) {
    case 0: return g.subarray(0, r.int(0, Math.min(g.length, l4 + 20)));     // truncation
    case 1: g[ip]! ^= 0xf0; break;                                            // version
    case 2: if (v4) g[ip] = 0x40 | r.int(0, 4); break;                        // IHL
    case 3: g[ip + r.int(1, 19)]! ^= 1 << r.int(0, 7); break;                 // header bits / checksum
    case 4: if (v4) put16(g, ip + 6, r.pick([0x2000, 0x0001, 0x3fff])); else g[ip + 6] = 44; refresh(); break; // fragment
    case 5: g[v4 ? ip + 9 : ip + 6] = r.pick([6, 1, 0]); refresh(); break;    // not UDP
    case 6: put16(g, l4 + 2, r.int(0, 65535)); break;                         // port
    case 7: put16(g, l4 + 4, r.pick([0, 7, 8, 15, 16, 17, 0xffff])); break;   // UDP length
    case 8: g[l4 + 6]! ^= 0x55; break;                                        // UDP checksum
    case 9: g[l4 + 8] = r.int(0, 255); break;                                 // VXLAN flags
    case 10: g[l4 + 9 + r.int(0, 2)] = r.int(0, 255); g[l4 + 15] = r.int(0, 255); break; // reserved bits
    case 11: put16(g, 12, r.pick([0x0806, 0x88a8, 0x8100, 0x1234])); break;   // EtherType
    case 12: put16(g, v4 ? ip + 2 : ip + 4, r.int(0, 65535)); refresh(); break; // IP length
    case 13: return Uint8Array.from([...g, ...r.bytes(r.int(1, 40))]);       // trailing padding
    case 14: put16(g, l4 + 4, 16 + r.int(0, 13)); break;                      // inner too short
    case 15: if (v4) { g[ip + 1] = g[ip + 1]! | 3; refresh(); } else g[ip + 1] = g[ip + 1]! | 0x30; break; // outer CE (RFC 6040)
    case 16: put16(g, l4 + 6, 0); break;                                      // no UDP checksum (IPv6: refused when verified)
  }
  return g;
}

const native = nativeEngine();

describe('native engine ≡ TS model', () => {
  it('encap: random tunnels, frames 14–9000 B, VLAN, IPv4/IPv6/ARP inner, random VNIs and headroom', () => {
    const reasonsSeen = new Set<string>();
    for (let seed = 1; seed <= 150; seed++) {
      const r = rng(seed);
      const tunnel = resolveTunnel(fixSpec(tunnelSpec(r)));
      const nh = native.createTunnel(tunnel);
      const th = tsEngine.createTunnel(tunnel);
      const need = 14 + (tunnel.vlan === null ? 0 : 4) + (tunnel.family === 4 ? 20 : 40) + 16;
      // Several bursts through the same tunnel: the IPv4 ID counter must advance alike.
      for (let k = 0; k < 3; k++) {
        const frames = Array.from({ length: r.int(1, 64) }, () => innerFrame(r));
        if (r.chance(0.05)) frames.push(new Uint8Array(65500 - 8 * r.int(0, 1)));
        const vni = r.chance(0.1) ? r.pick([0, 0xffffff]) : r.int(0, 0xffffff);
        const b = burstOf(r, frames, need);
        const nb = cloneBurst(b);
        const tb = cloneBurst(b);
        const nOk = run(native, 'encap', nh, vni, nb);
        const tOk = run(tsEngine, 'encap', th, vni, tb);
        expectSame(nb, tb, `seed ${seed} burst ${k} vni ${vni}`, false);
        expect(nOk).toBe(tOk);
        for (let i = 0; i < nb.count; i++) reasonsSeen.add(REASONS[nb.reason[i]!]!);
      }
    }
    expect([...reasonsSeen].sort()).toEqual(['inner_truncated', 'mtu_exceeded', 'no_headroom', 'ok', 'too_big']);
  });

  it('decap: valid and damaged outer frames, random VNI sets, locals, checksum verification', () => {
    const reasonsSeen = new Set<string>();
    for (let seed = 1000; seed <= 1150; seed++) {
      const r = rng(seed);
      const spec = fixSpec(tunnelSpec(r));
      spec.mtu = 0;
      const tunnel = resolveTunnel(spec);
      const need = 14 + (tunnel.vlan === null ? 0 : 4) + (tunnel.family === 4 ? 20 : 40) + 16;
      const frames = Array.from({ length: r.int(1, 48) }, () => innerFrame(r));
      const vnis = Array.from({ length: r.int(1, 3) }, () => r.int(0, 0xffffff));
      // Encapsulate with the TS model (either would do: encap equivalence is tested above).
      const eh = tsEngine.createTunnel(tunnel);
      const outers: Uint8Array[] = [];
      for (let i = 0; i < frames.length; i++) {
        const one = burstOf(r, [frames[i]!], need);
        one.room[0] = Math.max(one.room[0]!, need);
        one.off[0] = Math.max(one.off[0]!, need);
        one.buf.set(frames[i]!, one.off[0]!);
        tsEngine.encap(eh, r.pick(vnis), one);
        const f = one.buf.slice(one.off[0]!, one.off[0]! + one.len[0]!);
        outers.push(r.chance(0.5) ? corrupt(r, f) : f);
      }
      const dspec: DecapSpec = {
        dstPort: r.chance(0.9) ? tunnel.dstPort : r.int(1, 65535),
        vnis: r.chance(0.3) ? null : r.chance(0.8) ? vnis : [r.int(0, 0xffffff)],
        locals: r.chance(0.6) ? null : r.chance(0.8) ? [spec.remote] : ['203.0.113.1', '2001:db8:ffff::1'],
        verifyUdpCsum: r.chance(0.5),
        dropInnerVlan: r.chance(0.3),
      };
      const decap = resolveDecap(dspec);
      const b = burstOf(r, outers, 0);
      const nb = cloneBurst(b);
      const tb = cloneBurst(b);
      const nOk = native.decap(native.createDecap(decap), nb);
      const tOk = tsEngine.decap(tsEngine.createDecap(decap), tb);
      expectSame(nb, tb, `seed ${seed} decap ${JSON.stringify(dspec)}`, true);
      expect(nOk).toBe(tOk);
      for (let i = 0; i < nb.count; i++) reasonsSeen.add(REASONS[nb.reason[i]!]!);
    }
    // The random damage must actually reach the checks, or this test proves little.
    const decapReasons = REASONS.filter((x) => !['inner_truncated', 'no_headroom', 'too_big', 'mtu_exceeded'].includes(x));
    const missed = decapReasons.filter((x) => !reasonsSeen.has(x));
    expect(missed, `decap reasons never produced: ${missed.join(', ')}`).toEqual([]);
  });
});
