// Fragmented VXLAN packets from the underlay. With the tunnel's df unset (the kernel's
// default, and ours) a router whose next hop is smaller than the packet splits it, and
// says nothing to the sender. The kernel's vxlan receives such packets whole, because its
// IP input reassembles before the socket sees them; the data plane dropped every fragment
// (ip_fragment) and the pod never saw the packet (helper-69). Real peers: a router
// namespace whose route toward our VTEP carries 1400, a kernel vxlan peer behind it, ping
// in both pods to say whether the packet crossed, each way.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn } from '../helpers/cli.js';
import { kernelPeer } from '../helpers/kernel-peer.js';
import { ifname, inject, Netns, scratchDir, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { SYSTEM_PYTHON, scapyMissing } from '../helpers/scapy.js';

type Stats = { counters: { misc: Record<string, number>; drops: Record<string, number> } };

// Two workers on the uplink's fanout too: every fragment of a packet must reach the same
// one (the kernel's flow hash of a fragment is its addresses alone).
for (const workers of [1, 2]) {
  describePrivileged(`VXLAN packets a router fragmented, from a kernel vxlan peer (${workers} worker${workers > 1 ? 's' : ''})`, { netns: true, commands: ['ping'] }, () => {
    const k = kernelPeer(`fr${workers}`, { routed: true });
    // The hop toward our VTEP carries 1400: the router splits bigger packets (DF unset).
    beforeAll(() => k.r.ip(['route', 'replace', '192.0.2.0/24', 'dev', k.ru, 'mtu', '1400']));

    it('a packet the peer sent in fragments reaches the pod whole, and its answer goes back', async () => {
      const { p, q } = k;
      const dp = await dataplaneOn(k.u, k.up, k.dir, { uplink: { ifname: k.up, netns: k.u.path, vtep: k.vtep }, peers: [{ vtep: k.peer, mac: k.r.mac(k.ru) }], workers, cpus: workers > 1 ? [0, 1] : [0] });
      // -M dont: the inner packet without DF (with DF, as the outer packet's DF is unset,
      // the same: the router is silent either way).
      const ping = (from: Netns, to: string, size: number) => k.ping(from, to, ['-M', 'dont', '-s', String(size)]);
      try {
        await request(dp.socket, { op: 'attach', representor: k.rep, vni: 100, mac: q.mac(k.repp) });
        let small = ping(p, '10.9.0.1', 56);
        for (let i = 0; i < 5 && small.status !== 0; i++) small = ping(p, '10.9.0.1', 56);
        expect(small.status, 'a small ping crosses').toBe(0);
        // 1400 bytes of ICMP: an inner frame of 1442, a VXLAN packet of 1478 that the
        // router sends on as two fragments.
        const stats = async () => (await request(dp.socket, { op: 'stats' })) as unknown as Stats;
        for (let i = 0; i < 4; i++) {
          const big = ping(p, '10.9.0.1', 1400);
          const st = await stats();
          expect(big.status, `${big.stdout}\ndrops ${JSON.stringify(st.counters.drops)}`).toBe(0);
        }
        // And our pod's own big ping, whose request the peer takes whole and whose reply
        // comes back in pieces.
        expect(ping(q, '10.9.0.2', 1400).status).toBe(0);
        const st = await stats();
        expect(st.counters.misc.reasmDatagrams, 'put together from fragments').toBeGreaterThanOrEqual(5);
        expect(st.counters.misc.reasmFragments).toBeGreaterThanOrEqual(2 * (st.counters.misc.reasmDatagrams ?? 0));
        for (const d of ['ip_fragment', 'reasm_timeout', 'reasm_overlap', 'reasm_invalid']) expect(st.counters.drops[d] ?? 0, d).toBe(0);
      } finally {
        await dp.stop();
      }
    }, 30_000);
  });
}

// Fragments as another sender may make them (scapy's encoder), over both underlays: IPv6
// routers never fragment, its senders do (RFC 8200 §4.5), and some VTEPs do. In order,
// backwards with a fragment repeated (a duplicate on the wire is only a repeat), and two
// that cannot be put together: fragments that overlap (RFC 5722: the whole datagram
// dropped: also one inside bytes held already, unless it repeats them) and a middle
// fragment whose length is not a multiple of 8. Only a peer's are taken (anyone on the
// underlay could fill the slots otherwise), and more datagrams interleaved than there are
// slots complete as many as there are slots, not none (helper-73).
const CASES = ['in order', 'backwards, one repeated', 'overlapping', 'a middle one of 500 bytes', 'inside bytes held, other bytes',
  'inside bytes held, the same bytes', 'from a host that is not a peer', '24 datagrams interleaved', '80 datagrams interleaved'] as const;
const V = [
  { v: 4, vtep: '192.0.2.1', peer: '192.0.2.2' },
  { v: 6, vtep: '2001:db8:1::1', peer: '2001:db8:1::2' },
] as const;

function fragments(v: 4 | 6, src: string, dst: string, dmac: string, smac: string, podMac: string, stranger: string): Record<(typeof CASES)[number], string[]> {
  const py = `
import json
from scapy.all import Ether, IP, IPv6, IPv6ExtHdrFragment, UDP, Raw, raw
from scapy.layers.vxlan import VXLAN
inner = Ether(dst='${podMac}', src='02:aa:00:00:00:09') / IP(src='10.9.0.9', dst='10.9.0.1') / UDP(sport=7, dport=9) / Raw(bytes(range(256)) * 5)
whole = raw((IP(src='${src}', dst='${dst}') if ${v} == 4 else IPv6(src='${src}', dst='${dst}')) / UDP(sport=49152, dport=4789) / VXLAN(vni=100) / inner)
pl = whole[20:] if ${v} == 4 else whole[40:]
def frag(ident, off, data, more, src='${src}'):
    e = Ether(dst='${dmac}', src='${smac}')
    if ${v} == 4:
        return raw(e / IP(src=src, dst='${dst}', id=ident, proto=17, flags='MF' if more else 0, frag=off // 8) / Raw(data)).hex()
    return raw(e / IPv6(src=src, dst='${dst}') / IPv6ExtHdrFragment(nh=17, offset=off // 8, m=1 if more else 0, id=ident) / Raw(data)).hex()
def cut(ident, bounds, src='${src}'):
    return [frag(ident, a, pl[a:b], b < len(pl), src) for a, b in bounds]
def interleaved(first, count):
    firsts = [cut(first + k, [(0, 512), (512, n)]) for k in range(count)]
    return [f[0] for f in firsts] + [f[1] for f in firsts]
n = len(pl)
three = [(0, 512), (512, 1024), (1024, n)]
back = cut(2, three)[::-1]
print(json.dumps({
  'in order': cut(1, three),
  'backwards, one repeated': back[:2] + back[1:],
  'overlapping': cut(3, [(0, 512), (504, 1024), (1024, n)]),
  'a middle one of 500 bytes': cut(4, [(0, 512), (512, 1012), (1012, n)]),
  'inside bytes held, other bytes': cut(5, [(0, 512)]) + [frag(5, 8, bytes(8), True)] + cut(5, [(512, 1024), (1024, n)]),
  'inside bytes held, the same bytes': cut(6, [(0, 512)]) + [frag(6, 8, pl[8:16], True)] + cut(6, [(512, 1024), (1024, n)]),
  'from a host that is not a peer': cut(7, three, '${stranger}'),
  '24 datagrams interleaved': interleaved(100, 24),
  '80 datagrams interleaved': interleaved(200, 80),
}))
`;
  return JSON.parse(execFileSync(SYSTEM_PYTHON, ['-c', py], { encoding: 'utf8' })) as Record<(typeof CASES)[number], string[]>;
}

for (const f of V) {
  describePrivileged(`fragments of VXLAN packets as another sender makes them (IPv${f.v} underlay)`, { netns: true, commands: [SYSTEM_PYTHON] }, () => {
    let u: Netns, p: Netns, q: Netns;
    const up = ifname('gu'), pu = ifname('gp'), rep = ifname('ge'), repp = ifname('gf');
    const tmp = scratchDir(`fragx${f.v}`);

    beforeAll(() => {
      u = Netns.create('fxu');
      p = Netns.create('fxp');
      q = Netns.create('fxq');
      vethPair(u, up, p, pu);
      p.sysctl('net.ipv6.conf.all.disable_ipv6', '1');
      p.ip(['link', 'set', pu, 'up']);
      spawnSync('ip', ['link', 'add', rep, 'type', 'veth', 'peer', 'name', repp, 'netns', q.name]);
      q.sysctl('net.ipv6.conf.all.disable_ipv6', '1');
      q.ip(['addr', 'add', '10.9.0.1/24', 'dev', repp]);
      q.ip(['link', 'set', repp, 'up']);
    });
    afterAll(() => {
      spawnSync('ip', ['link', 'del', rep]);
      for (const n of [u, p, q]) n?.destroy();
      tmp.remove();
    });

    it.skipIf(scapyMissing() !== null && !process.env.CI)('puts together what can be, in any order, and drops the whole of what cannot', async () => {
      const dp = await dataplaneOn(u, up, tmp.dir, { uplink: { ifname: up, netns: u.path, vtep: f.vtep }, peers: [{ vtep: f.peer, mac: p.mac(pu) }], cpus: [0] });
      const received = () => Number(q.exec('cat', [`/sys/class/net/${repp}/statistics/rx_packets`]).trim());
      const stats = async () => ((await request(dp.socket, { op: 'stats' })) as unknown as Stats).counters;
      try {
        await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
        const frames = fragments(f.v, f.peer, f.vtep, u.mac(up), p.mac(pu), q.mac(repp), f.v === 4 ? '192.0.2.66' : '2001:db8:1::66');
        // What the pod gets, and the drop each case is counted under (how many).
        const want: Record<(typeof CASES)[number], readonly [number, string | null, number]> = {
          'in order': [1, null, 0], 'backwards, one repeated': [1, null, 0], overlapping: [0, 'reasm_overlap', 1],
          'a middle one of 500 bytes': [0, 'reasm_invalid', 1], 'inside bytes held, other bytes': [0, 'reasm_overlap', 1],
          // Left to decap, which drops any fragment: IPv4's as ip_fragment, IPv6's (a
          // fragment header where UDP would be) as not_udp.
          'inside bytes held, the same bytes': [1, null, 0], 'from a host that is not a peer': [0, f.v === 4 ? 'ip_fragment' : 'not_udp', 3],
          '24 datagrams interleaved': [24, null, 0],
          // 64 slots: the first 64 complete; the first fragments of the other 16 are
          // refused (their second ones find the slots the 64 freed, and wait there).
          '80 datagrams interleaved': [64, 'reasm_full', 16],
        };
        for (const c of CASES) {
          const before = { rx: received(), st: await stats() };
          inject(p, pu, frames[c].map((h) => Uint8Array.from(Buffer.from(h, 'hex'))));
          const [n, drop, dropped] = want[c];
          const d = (x: Stats['counters'], k: string) => (x.drops[k] ?? 0) - (before.st.drops[k] ?? 0);
          const seen = (x: Stats['counters']) => (x.misc.reasmFragments ?? 0) - (before.st.misc.reasmFragments ?? 0) + d(x, 'ip_fragment') + d(x, 'not_udp') + d(x, 'reasm_full');
          let st = await stats();
          for (let i = 0; i < 100 && seen(st) < frames[c].length; i++) {
            await new Promise((res) => setTimeout(res, 20));
            st = await stats();
          }
          await new Promise((res) => setTimeout(res, 100));
          st = await stats();
          expect(received() - before.rx, `${c}: frames the pod got`).toBe(n);
          expect((st.misc.reasmDatagrams ?? 0) - (before.st.misc.reasmDatagrams ?? 0), `${c}: put together`).toBe(n);
          // The three datagrams dropped above left their later fragments in slots of
          // their own (they wait for the rest, as in the kernel): the 80 put them out,
          // being older than 100 ms, as timed out.
          const leftovers = c === '80 datagrams interleaved' ? 3 : 0;
          for (const k of ['reasm_overlap', 'reasm_invalid', 'reasm_full', 'reasm_timeout', 'ip_fragment', 'not_udp']) expect(d(st, k), `${c}: ${k}`).toBe(k === drop ? dropped : k === 'reasm_timeout' ? leftovers : 0);
        }
      } finally {
        await dp.stop();
      }
    }, 60_000);
  });
}
