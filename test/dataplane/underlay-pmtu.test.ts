// A routed underlay with a smaller hop: the router's ICMP "fragmentation needed" to our
// VTEP was dropped (not_udp) and the pod was never told, so its large packets were lost
// for good while the kernel's vxlan, on the same path, learns its route's MTU and carries
// on (helper-69). The data plane takes the path MTU a router reports for a peer now, and
// tells pods what the overlay carries to it. Real kernel objects: a router namespace
// forwarding between a 1500 and a 1400 link, a kernel vxlan peer behind it, a pod on a
// representor veth, ping's own report of the ICMP it got.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn } from '../helpers/cli.js';
import { ifname, Netns, scratchDir, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

const FAMILIES = [
  { v: 4, vtep: '192.0.2.1', ru: '192.0.2.254/24', rp: '198.51.100.254/24', pr: '198.51.100.2/24', peer: '198.51.100.2', gw: '198.51.100.254', overhead: 50, workers: 1 },
  { v: 6, vtep: '2001:db8:1::1', ru: '2001:db8:1::fe/64', rp: '2001:db8:2::fe/64', pr: '2001:db8:2::2/64', peer: '2001:db8:2::2', gw: '2001:db8:2::fe', overhead: 70, workers: 1 },
  // Two workers: the router's message reaches whichever the uplink's fanout gives it to,
  // which need not be the one sending the pod's packets: the workers share what they learn.
  { v: 4, vtep: '192.0.2.1', ru: '192.0.2.254/24', rp: '198.51.100.254/24', pr: '198.51.100.2/24', peer: '198.51.100.2', gw: '198.51.100.254', overhead: 50, workers: 2 },
] as const;

for (const f of FAMILIES) {
  describePrivileged(`the underlay's path MTU, from a router (IPv${f.v} underlay, ${f.workers} worker${f.workers > 1 ? 's' : ''})`, { netns: true, commands: ['ping'] }, () => {
    let u: Netns, r: Netns, p: Netns, q: Netns;
    const up = ifname('pu'), ru = ifname('pr'), rp = ifname('pq'), pr = ifname('pp'), rep = ifname('pe'), repp = ifname('pf');
    const tmp = scratchDir(`pmtu${f.v}w${f.workers}`);
    const addr = (n: Netns, cidr: string, dev: string) => n.ip(['addr', 'add', cidr, 'dev', dev, ...(f.v === 6 ? ['nodad'] : [])]);

    beforeAll(() => {
      u = Netns.create('pmu');
      r = Netns.create('pmr');
      p = Netns.create('pmp');
      q = Netns.create('pmq');
      vethPair(u, up, r, ru);
      vethPair(r, rp, p, pr);
      r.sysctl(f.v === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', '1');
      addr(r, f.ru, ru);
      addr(r, f.rp, rp);
      r.ip(['link', 'set', rp, 'mtu', '1400']);
      p.ip(['link', 'set', pr, 'mtu', '1400']);
      for (const [n, l] of [[r, ru], [r, rp], [p, pr]] as const) n.ip(['link', 'set', l, 'up']);
      addr(p, f.pr, pr);
      p.ip([...(f.v === 6 ? ['-6'] : []), 'route', 'add', 'default', 'via', f.gw]);
      // The peer: the kernel's vxlan, its pod at 10.9.0.2.
      p.ip(['link', 'add', 'vx0', 'type', 'vxlan', 'id', '100', 'local', f.peer, 'remote', f.vtep, 'dstport', '4789', 'dev', pr]);
      p.ip(['addr', 'add', '10.9.0.2/24', 'dev', 'vx0']);
      p.ip(['link', 'set', 'vx0', 'up']);
      // Our pod, behind a representor in the host namespace.
      spawnSync('ip', ['link', 'add', rep, 'type', 'veth', 'peer', 'name', repp, 'netns', q.name]);
      q.sysctl('net.ipv6.conf.all.disable_ipv6', '1');
      q.ip(['addr', 'add', '10.9.0.1/24', 'dev', repp]);
      q.ip(['link', 'set', repp, 'up']);
    });
    afterAll(() => {
      spawnSync('ip', ['link', 'del', rep]);
      for (const n of [u, r, p, q]) n?.destroy();
      tmp.remove();
    });

    it(`a router's ${f.v === 4 ? '"fragmentation needed"' : '"packet too big"'} for a peer lowers what the overlay carries to it, and the pod is told`, async () => {
      const routerMac = r.mac(ru);
      const dp = await dataplaneOn(u, up, tmp.dir, { uplink: { ifname: up, netns: u.path, vtep: f.vtep }, peers: [{ vtep: f.peer, mac: routerMac }], tunnel: { df: 'inherit' }, workers: f.workers, cpus: f.workers > 1 ? [0, 1] : [0] });
      const ping = (args: string[]) => spawnSync('ip', ['netns', 'exec', q.name, 'ping', '-n', '-c', '1', '-W', '1', ...args, '10.9.0.2'], { encoding: 'utf8' });
      try {
        await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
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
        expect(peer).toMatchObject({ vtep: f.peer, pathMtu: 1400 });
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
