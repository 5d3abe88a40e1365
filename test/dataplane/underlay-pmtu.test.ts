// A routed underlay with a smaller hop: the router's ICMP "fragmentation needed" to our
// VTEP was dropped (not_udp) and the pod was never told, so its large packets were lost
// for good while the kernel's vxlan, on the same path, learns its route's MTU and carries
// on (helper-69). The data plane takes the path MTU a router reports for a peer now, and
// tells pods what the overlay carries to it. Real kernel objects: a router namespace
// forwarding between a 1500 and a 1400 link, a kernel vxlan peer behind it, a pod on a
// representor veth, ping's own report of the ICMP it got.
import { expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn } from '../helpers/cli.js';
import { kernelPeer } from '../helpers/kernel-peer.js';
import { describePrivileged } from '../helpers/privileged.js';

const FAMILIES = [
  { v: 4, overhead: 50, workers: 1 },
  { v: 6, overhead: 70, workers: 1 },
  // Two workers: the router's message reaches whichever the uplink's fanout gives it to,
  // which need not be the one sending the pod's packets: the workers share what they learn.
  { v: 4, overhead: 50, workers: 2 },
] as const;

for (const f of FAMILIES) {
  describePrivileged(`the underlay's path MTU, from a router (IPv${f.v} underlay, ${f.workers} worker${f.workers > 1 ? 's' : ''})`, { netns: true, commands: ['ping'] }, () => {
    // The peer's link carries 1400: the router tells our VTEP so.
    const k = kernelPeer(`pm${f.v}${f.workers}`, { v: f.v, routed: true, peerLinkMtu: 1400 });

    it(`a router's ${f.v === 4 ? '"fragmentation needed"' : '"packet too big"'} for a peer lowers what the overlay carries to it, and the pod is told`, async () => {
      const dp = await dataplaneOn(k.u, k.up, k.dir, { uplink: { ifname: k.up, netns: k.u.path, vtep: k.vtep }, peers: [{ vtep: k.peer, mac: k.r.mac(k.ru) }], tunnel: { df: 'inherit' }, workers: f.workers, cpus: f.workers > 1 ? [0, 1] : [0] });
      const ping = (args: string[]) => k.ping(k.q, '10.9.0.2', args);
      try {
        await request(dp.socket, { op: 'attach', representor: k.rep, vni: 100, mac: k.q.mac(k.repp) });
        let small = ping([]);
        for (let i = 0; i < 5 && small.status !== 0; i++) small = ping([]); // the router and the peer resolve us first
        expect(small.status, 'a small ping crosses the router').toBe(0);
        // 1400 bytes of ICMP: an inner packet of 1428, an outer one over the router's 1400
        // link. The router answers our VTEP: the path to the peer carries 1400.
        expect(ping(['-M', 'do', '-s', '1400']).status).not.toBe(0);
        type Stats = { counters: { misc: Record<string, number>; drops: Record<string, number> } };
        let st: Stats | null = null;
        for (let i = 0; i < 50; i++) {
          st = (await request(dp.socket, { op: 'stats' })) as unknown as Stats;
          if (st.counters.misc.pmtuLearned) break;
          await new Promise((res) => setTimeout(res, 20));
        }
        expect(st!.counters.misc.pmtuLearned, JSON.stringify(st!.counters.drops)).toBe(1);
        expect(st!.counters.drops.not_udp ?? 0).toBe(0);
        const peer = ((await request(dp.socket, { op: 'status' })) as unknown as { peers: { vtep: string; pathMtu?: number }[] }).peers[0];
        expect(peer).toMatchObject({ vtep: k.peer, pathMtu: 1400 });
        // The pod is told what crosses now: 1400 less the outer headers.
        const carried = 1400 - f.overhead;
        // Two workers: the one sending may learn it from the other, within a second.
        let told = ping(['-M', 'do', '-s', '1400']);
        for (let i = 0; i < 10 && !/[Ff]rag needed/.test(told.stdout + told.stderr); i++) {
          await new Promise((res) => setTimeout(res, 200));
          told = ping(['-M', 'do', '-s', '1400']);
        }
        expect(told.stdout + told.stderr).toMatch(new RegExp(`[Ff]rag needed and DF set \\(mtu = ${carried}\\)`));
        expect(ping(['-M', 'do', '-s', String(carried - 28)]).status, 'a packet of that MTU crosses').toBe(0);
      } finally {
        await dp.stop();
      }
    }, 30_000);
  });
}
