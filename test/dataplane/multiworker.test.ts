// Two workers on two-queue AF_XDP ports (veths with two queues each): worker w polls and
// sends on queue w of every port, so no queue is ever touched by two threads. Frames
// sent into the pod veth from both CPUs land on both rx queues (AF_PACKET bypassing the
// qdisc, rawsock's --by-cpu, picks tx queue CPU % queues; veth delivers to the peer's
// queue of that index); every one must come out of the uplink encapsulated, once,
// intact, and both workers must have carried some.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataPlane } from '../../src/dataplane/dp.js';
import { resolveTunnel } from '../../src/packet/config.js';
import { parseIp, parseMac } from '../../src/util/addr.js';
import { arpReply, udp4 } from '../helpers/frames.js';
import { capture, ifname, Netns } from '../helpers/netns.js';
import { backendBuilt } from '../helpers/features.js';
import { describePrivileged } from '../helpers/privileged.js';

const RAWSOCK = fileURLToPath(new URL('../helpers/rawsock.py', import.meta.url));
const hasAfxdp = backendBuilt('afxdp');

/** The configuration every case here commits: the pod port attached on VNI 100, the
 *  uplink toward one peer VTEP (192.0.2.2, at peerMac); no static FDB, no flood list. */
function commitOverlay(dp: DataPlane, o: { pod: number; up: number; podMac: string; upMac: string; peerMac: string; learn: boolean }): void {
  dp.commit({
    uplink: o.up, uplinkMac: parseMac(o.upMac)!,
    tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
    peers: [{ vtep: parseIp('192.0.2.2')!.bytes, mac: parseMac(o.peerMac)! }],
    atts: [{ port: o.pod, vni: 100, mac: parseMac(o.podMac)! }],
    fdb: [], floods: [], extraVnis: [], learn: o.learn, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
  });
}

/** INNER as the peer VTEP sends it on VNI 100: VXLAN in UDP from 192.0.2.2:SPORT. */
function fromPeer(inner: Uint8Array, o: { upMac: string; peerMac: string; sport: number }): Uint8Array {
  const payload = new Uint8Array(8 + inner.length);
  payload.set([0x08, 0, 0, 0, 0, 0, 100, 0]);
  payload.set(inner, 8);
  return udp4({ dstMac: o.upMac, srcMac: o.peerMac, src: '192.0.2.2', dst: '192.0.2.1', sport: o.sport, dport: 4789, payload });
}

/** Generator G —veth— DUT D —veth— sink S, each veth with `queues` queues (1: the
 *  kernel's default), IPv6 off and up; `tag` prefixes the names. */
function gds(tag: string, queues: number) {
  const t = {
    g: Netns.create(`${tag}g`), d: Netns.create(`${tag}d`), s: Netns.create(`${tag}s`),
    gi: ifname(`${tag}g`), dg: ifname(`${tag}d`), ds: ifname(`${tag}e`), si: ifname(`${tag}s`),
  };
  const q = queues > 1 ? ['numtxqueues', String(queues), 'numrxqueues', String(queues)] : [];
  execFileSync('ip', ['link', 'add', t.gi, 'netns', t.g.name, ...q, 'type', 'veth', 'peer', 'name', t.dg, 'netns', t.d.name, ...q]);
  execFileSync('ip', ['link', 'add', t.ds, 'netns', t.d.name, ...q, 'type', 'veth', 'peer', 'name', t.si, 'netns', t.s.name, ...q]);
  for (const [ns, l] of [[t.g, t.gi], [t.d, t.dg], [t.d, t.ds], [t.s, t.si]] as const) {
    ns.sysctl(`net.ipv6.conf.${l}.disable_ipv6`, '1');
    ns.ip(['link', 'set', l, 'up']);
  }
  return t;
}

describePrivileged('two workers on two-queue AF_XDP ports', { netns: true, commands: ['taskset'] }, () => {
  let g: Netns, d: Netns, s: Netns;
  let gi: string, dg: string, ds: string, si: string;

  beforeAll(() => {
    if (!hasAfxdp) throw new Error('the afxdp backend is not built: apt-get install libxdp-dev libbpf-dev, then npm run build:native');
    ({ g, d, s, gi, dg, ds, si } = gds('mw', 2));
  });

  afterAll(() => {
    for (const ns of [g, d, s]) ns?.destroy();
  });

  /** A data plane of `workers` workers whose two AF_XDP ports bind `queues` queues
   *  (0: every rx queue the netdev has); 40 frames sent into the pod veth from each CPU.
   *  Returns the inner frames that came out of the uplink, the frames sent, the ports'
   *  queue counts and the per-worker counters. */
  async function run(workers: number, queues: number, timeoutS: number) {
    const podMac = g.mac(gi);
    const peerMac = s.mac(si);
    const dp = new DataPlane({ workers, cpus: workers === 2 ? [0, 1] : [1] });
    try {
      const netns = `/run/netns/${d.name}`;
      const xo = { netns, queues, mode: 'native', copy: 'copy' };
      const pod = dp.openPort('afxdp', { ifname: dg, ...xo }, 'pod');
      const up = dp.openPort('afxdp', { ifname: ds, ...xo }, 'uplink');
      commitOverlay(dp, { pod: pod.slot, up: up.slot, podMac, upMac: d.mac(ds), peerMac, learn: false });
      // 2 × 40 frames, each with its own UDP source port so that every one is told apart.
      const frames = (cpu: number) => Array.from({ length: 40 }, (_, i) => udp4({
        dstMac: '02:00:00:00:99:99', srcMac: podMac, src: '10.9.0.1', dst: '10.9.0.2',
        sport: 20000 + cpu * 100 + i, dport: 7000, payload: new TextEncoder().encode(`cpu ${cpu} frame ${i}`),
      }));
      const cap = capture(s, si, { count: 80, timeoutS, incoming: true, udpDport: 4789 });
      await cap.ready;
      const sent = [0, 1].map((cpu) => frames(cpu));
      for (const cpu of [0, 1]) {
        execFileSync('ip', ['netns', 'exec', g.name, 'taskset', '-c', String(cpu), '/usr/bin/python3', RAWSOCK, 'send', gi, '--by-cpu'],
          { input: sent[cpu]!.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n' });
      }
      const got = await cap.done;
      for (const f of got) expect((f[46]! << 16) | (f[47]! << 8) | f[48]!).toBe(100);
      // The inner frame follows 14 + 20 + 8 + 8 bytes of outer headers.
      return {
        inner: got.map((f) => Buffer.from(f.subarray(50)).toString('hex')).sort(),
        want: sent.flat().map((f) => Buffer.from(f).toString('hex')).sort(),
        podQueues: pod.queues, upQueues: up.queues, podFrames: pod.frames, counters: dp.counters(),
      };
    } finally {
      dp.stop();
    }
  }

  it('every frame is encapsulated once and intact, and both workers carry some', async () => {
    const r = await run(2, 2, 8);
    expect(r.podQueues).toBe(2);
    expect(r.inner).toEqual(r.want);
    expect(r.counters.perWorker.length).toBe(2);
    for (const w of r.counters.perWorker) expect(w.busyLoops, `worker on CPU ${w.cpu}`).toBeGreaterThan(0n);
  });

  // What the daemon opens (queues 0): every rx queue of the netdev, all polled by the
  // one worker. Bound to queue 0 alone, the frames that land on queue 1 go to the host
  // stack instead: that loss is why.
  it('one worker binds every rx queue of the netdev, and no frame bypasses it', async () => {
    const r = await run(1, 0, 8);
    expect([r.podQueues, r.upQueues]).toEqual([2, 2]);
    // The port's 4096 frames shared out over its queues (at least 1024 a queue), not 4096 each.
    expect(r.podFrames).toBe(2048);
    expect(r.inner).toEqual(r.want);
  });

  it('(why) one worker bound to queue 0 alone misses what lands on queue 1', async () => {
    const r = await run(1, 1, 3);
    expect(r.podQueues).toBe(1);
    expect(r.podFrames).toBe(4096);
    expect(r.inner.length).toBeLessThan(r.want.length);
  });

  // Learning with two workers: the underlay's frames from a remote pod land on uplink
  // queue 1 (sent from CPU 1), so worker 1 decapsulates them and learns the remote MAC.
  // The local pod's replies leave from CPU 0, onto pod queue 0: worker 0 encapsulates
  // them, and must know the MAC too. There is no static entry and no flood list, so
  // without the learned entry shared between workers every reply would be dropped.
  it('what one worker learns, the other encapsulates with: replies on another queue go unicast', async () => {
    const podMac = g.mac(gi), peerMac = s.mac(si), upMac = d.mac(ds);
    const remoteMac = '02:00:00:00:77:01';
    const dp = new DataPlane({ workers: 2, cpus: [0, 1] });
    try {
      const xo = { netns: `/run/netns/${d.name}`, queues: 0, mode: 'native', copy: 'copy' };
      const pod = dp.openPort('afxdp', { ifname: dg, ...xo }, 'pod');
      const up = dp.openPort('afxdp', { ifname: ds, ...xo }, 'uplink');
      commitOverlay(dp, { pod: pod.slot, up: up.slot, podMac, upMac, peerMac, learn: true });
      const fromRemote = Array.from({ length: 8 }, (_, i) => fromPeer(
        udp4({ dstMac: podMac, srcMac: remoteMac, src: '10.9.0.2', dst: '10.9.0.1', sport: 7000, dport: 30000 + i, payload: new TextEncoder().encode(`from remote ${i}`) }),
        { upMac, peerMac, sport: 50000 + i }));
      const atPod = capture(g, gi, { count: 8, timeoutS: 5, incoming: true });
      await atPod.ready;
      execFileSync('ip', ['netns', 'exec', s.name, 'taskset', '-c', '1', '/usr/bin/python3', RAWSOCK, 'send', si, '--by-cpu'],
        { input: fromRemote.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n' });
      expect((await atPod.done).length, 'decapsulated to the pod').toBe(8);
      const replies = Array.from({ length: 40 }, (_, i) => udp4({
        dstMac: remoteMac, srcMac: podMac, src: '10.9.0.1', dst: '10.9.0.2', sport: 30000 + i, dport: 7000, payload: new TextEncoder().encode(`reply ${i}`),
      }));
      const atPeer = capture(s, si, { count: 40, timeoutS: 5, incoming: true, udpDport: 4789 });
      await atPeer.ready;
      execFileSync('ip', ['netns', 'exec', g.name, 'taskset', '-c', '0', '/usr/bin/python3', RAWSOCK, 'send', gi, '--by-cpu'],
        { input: replies.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n' });
      const got = await atPeer.done;
      expect(got.map((f) => Buffer.from(f.subarray(50)).toString('hex')).sort()).toEqual(replies.map((f) => Buffer.from(f).toString('hex')).sort());
      const c = dp.counters();
      // Which worker did what, from its own counters: worker 1 learned and shared, worker 0 applied.
      expect(c.misc.learnShared, 'entries shared').toBeGreaterThanOrEqual(1n);
      expect(c.misc.learnSynced, 'entries applied by the other worker').toBeGreaterThanOrEqual(1n);
      expect(c.misc.learnShareLost).toBe(0n);
      // The learned table lists the remote MAC once, not once per worker.
      expect(dp.learned().filter((e) => e.mac === remoteMac)).toEqual([expect.objectContaining({ vni: 100, vtep: '192.0.2.2' })]);
    } finally {
      dp.stop();
    }
  });

  // ARP replies reach whichever worker the uplink's queues give them to. Here the reply
  // lands on uplink queue 1 (sent from CPU 1): worker 1 resolves the peer. The pod's
  // frames come in on pod queue 0: worker 0 never hears from the peer itself, and without
  // the MAC worker 1 published it would ask for ever and drop them as neigh_unresolved.
  it('a peer MAC one worker resolved by ARP is used by the other: the reply on queue 1, the pod\'s frames on queue 0', async () => {
    const podMac = g.mac(gi), peerMac = s.mac(si), upMac = d.mac(ds);
    const dp = new DataPlane({ workers: 2, cpus: [0, 1] });
    try {
      const xo = { netns: `/run/netns/${d.name}`, queues: 0, mode: 'native', copy: 'copy' };
      const pod = dp.openPort('afxdp', { ifname: dg, ...xo }, 'pod');
      const up = dp.openPort('afxdp', { ifname: ds, ...xo }, 'uplink');
      expect([pod.queues, up.queues]).toEqual([2, 2]);
      dp.commit({
        uplink: up.slot, uplinkMac: parseMac(upMac)!,
        tunnel: resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' }),
        peers: [{ vtep: parseIp('192.0.2.2')!.bytes, mac: null }],
        atts: [{ port: pod.slot, vni: 100, mac: parseMac(podMac)! }],
        fdb: [], floods: [], extraVnis: [], learn: false, antiSpoof: true, icmpTooBig: false, verifyUdpCsum: false,
      });
      // The sink namespace has no address: nobody answers the workers' requests but this.
      const reply = arpReply({ dstMac: upMac, srcMac: peerMac, srcIp: '192.0.2.2', targetIp: '192.0.2.1' });
      execFileSync('ip', ['netns', 'exec', s.name, 'taskset', '-c', '1', '/usr/bin/python3', RAWSOCK, 'send', si, '--by-cpu'],
        { input: Buffer.from(reply).toString('hex') + '\n' });
      for (let i = 0; i < 100 && dp.counters().peers.get('192.0.2.2')?.state !== 'resolved'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(dp.counters().peers.get('192.0.2.2')).toMatchObject({ state: 'resolved', mac: peerMac });
      const frames = Array.from({ length: 40 }, (_, i) => udp4({
        dstMac: '02:00:00:00:99:98', srcMac: podMac, src: '10.9.0.1', dst: '10.9.0.2', sport: 21000 + i, dport: 7000, payload: new TextEncoder().encode(`queue 0 frame ${i}`),
      }));
      const atPeer = capture(s, si, { count: 40, timeoutS: 5, incoming: true, udpDport: 4789 });
      await atPeer.ready;
      execFileSync('ip', ['netns', 'exec', g.name, 'taskset', '-c', '0', '/usr/bin/python3', RAWSOCK, 'send', gi, '--by-cpu'],
        { input: frames.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n' });
      const got = await atPeer.done;
      for (const f of got) expect(Buffer.from(f.subarray(0, 6)).toString('hex').match(/../g)!.join(':')).toBe(peerMac);
      expect(got.map((f) => Buffer.from(f.subarray(50)).toString('hex')).sort()).toEqual(frames.map((f) => Buffer.from(f).toString('hex')).sort());
      const c = dp.counters();
      expect(c.drops.neigh_unresolved ?? 0n, 'frames dropped for want of the MAC').toBe(0n);
      expect(c.misc.neighLearned, 'one worker heard the reply').toBe(1n);
    } finally {
      dp.stop();
    }
  });

  // A pod port with one queue under two workers (a switchdev representor often has one):
  // worker 1 has no queue of its own there, so what it decapsulates for the pod goes to
  // worker 0, which owns queue 0, and leaves from there. Frames arrive on both uplink
  // queues (sent from both CPUs); every one must reach the pod, once and intact.
  it('a one-queue pod port under two workers: the worker without a queue there hands its frames over', async () => {
    const h = Netns.create('mwh');
    const hi = ifname('mh'), dh = ifname('mi');
    try {
      execFileSync('ip', ['link', 'add', hi, 'netns', h.name, 'type', 'veth', 'peer', 'name', dh, 'netns', d.name]);
      for (const [ns, l] of [[h, hi], [d, dh]] as const) {
        ns.sysctl(`net.ipv6.conf.${l}.disable_ipv6`, '1');
        ns.ip(['link', 'set', l, 'up']);
      }
      const podMac = h.mac(hi), peerMac = s.mac(si), upMac = d.mac(ds);
      const dp = new DataPlane({ workers: 2, cpus: [0, 1] });
      try {
        const netns = `/run/netns/${d.name}`;
        const pod = dp.openPort('afxdp', { ifname: dh, netns, queues: 0, mode: 'native', copy: 'copy' }, 'pod');
        const up = dp.openPort('afxdp', { ifname: ds, netns, queues: 0, mode: 'native', copy: 'copy' }, 'uplink');
        expect([pod.queues, up.queues]).toEqual([1, 2]);
        commitOverlay(dp, { pod: pod.slot, up: up.slot, podMac, upMac, peerMac, learn: false });
        const frames = (cpu: number) => Array.from({ length: 40 }, (_, i) => {
          const inner = udp4({ dstMac: podMac, srcMac: '02:00:00:00:77:02', src: '10.9.0.2', dst: '10.9.0.1', sport: 7000 + cpu, dport: 30000 + i, payload: new TextEncoder().encode(`cpu ${cpu} frame ${i}`) });
          return { inner, outer: fromPeer(inner, { upMac, peerMac, sport: 50000 + cpu * 100 + i }) };
        });
        const sent = [0, 1].map((cpu) => frames(cpu));
        const atPod = capture(h, hi, { count: 80, timeoutS: 8, incoming: true });
        await atPod.ready;
        for (const cpu of [0, 1]) {
          execFileSync('ip', ['netns', 'exec', s.name, 'taskset', '-c', String(cpu), '/usr/bin/python3', RAWSOCK, 'send', si, '--by-cpu'],
            { input: sent[cpu]!.map((f) => Buffer.from(f.outer).toString('hex')).join('\n') + '\n' });
        }
        const got = await atPod.done;
        expect(got.map((f) => Buffer.from(f).toString('hex')).sort()).toEqual(sent.flat().map((f) => Buffer.from(f.inner).toString('hex')).sort());
        const c = dp.counters();
        // Worker 1 decapsulated the frames that came in on uplink queue 1 and handed them over.
        expect(c.misc.handedOff, 'frames handed to the queue owner').toBeGreaterThan(0n);
        expect(c.drops.handoff_full ?? 0n).toBe(0n);
        expect(c.drops.handoff_stale ?? 0n).toBe(0n);
        expect(c.perWorker.every((w) => w.busyLoops > 0n)).toBe(true);
        expect(c.ports.get(pod.slot)?.txPkts).toBe(80n);
      } finally {
        dp.stop();
      }
    } finally {
      h.destroy();
    }
  });
});

// The AF_PACKET backend's queues are sockets, not NIC queues: `queues: 2` opens two rx
// sockets in a PACKET_FANOUT group, and the kernel hands each frame to one of them by
// its flow hash, so a one-queue veth feeds two workers. Every frame must still come
// through once (no copy from a socket outside the group, none lost), both ways.
describePrivileged('two workers on two-queue AF_PACKET ports (PACKET_FANOUT)', { netns: true }, () => {
  let g: Netns, d: Netns, s: Netns;
  let gi: string, dg: string, ds: string, si: string;

  // One-queue veths: an AF_PACKET port's queues are its fanout sockets, not the netdev's.
  beforeAll(() => {
    ({ g, d, s, gi, dg, ds, si } = gds('af', 1));
  });

  afterAll(() => {
    for (const ns of [g, d, s]) ns?.destroy();
  });

  it('spreads flows over both workers, and every frame is encapsulated and decapsulated once', async () => {
    const podMac = g.mac(gi), peerMac = s.mac(si), upMac = d.mac(ds);
    const remoteMac = '02:00:00:00:77:03';
    const dp = new DataPlane({ workers: 2, cpus: [0, 1] });
    try {
      const ao = { netns: `/run/netns/${d.name}`, queues: 2, ring: 2 };
      const pod = dp.openPort('afpacket', { ifname: dg, ...ao }, 'pod');
      const up = dp.openPort('afpacket', { ifname: ds, ...ao }, 'uplink');
      expect([pod.queues, up.queues]).toEqual([2, 2]);
      commitOverlay(dp, { pod: pod.slot, up: up.slot, podMac, upMac, peerMac, learn: true });
      // Encap: 80 flows (source ports) from the pod to a remote MAC, flooded to the peer
      // until learned; the peer has no flood list here, so learn it first (decap below
      // runs first). Decap: 80 flows from the peer to the pod.
      const toPod = Array.from({ length: 80 }, (_, i) => {
        const inner = udp4({ dstMac: podMac, srcMac: remoteMac, src: '10.9.0.2', dst: '10.9.0.1', sport: 7000, dport: 30000 + i, payload: new TextEncoder().encode(`to pod ${i}`) });
        return { inner, outer: fromPeer(inner, { upMac, peerMac, sport: 50000 + i }) };
      });
      const atPod = capture(g, gi, { count: 80, timeoutS: 8, incoming: true });
      await atPod.ready;
      execFileSync('ip', ['netns', 'exec', s.name, '/usr/bin/python3', RAWSOCK, 'send', si],
        { input: toPod.map((f) => Buffer.from(f.outer).toString('hex')).join('\n') + '\n' });
      const gotPod = await atPod.done;
      expect(gotPod.map((f) => Buffer.from(f).toString('hex')).sort()).toEqual(toPod.map((f) => Buffer.from(f.inner).toString('hex')).sort());
      const afterDecap = dp.counters().perWorker.map((w) => w.busyLoops);

      const fromPod = Array.from({ length: 80 }, (_, i) => udp4({
        dstMac: remoteMac, srcMac: podMac, src: '10.9.0.1', dst: '10.9.0.2', sport: 30000 + i, dport: 7000, payload: new TextEncoder().encode(`from pod ${i}`),
      }));
      const atPeer = capture(s, si, { count: 80, timeoutS: 8, incoming: true, udpDport: 4789 });
      await atPeer.ready;
      execFileSync('ip', ['netns', 'exec', g.name, '/usr/bin/python3', RAWSOCK, 'send', gi],
        { input: fromPod.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n' });
      const gotPeer = await atPeer.done;
      expect(gotPeer.map((f) => Buffer.from(f.subarray(50)).toString('hex')).sort()).toEqual(fromPod.map((f) => Buffer.from(f).toString('hex')).sort());
      // 80 flows in, a flow hash picks the socket: both workers received (2^-79 odds otherwise).
      for (const [w, n] of afterDecap.entries()) expect(n, `worker ${w} during decap`).toBeGreaterThan(0n);
      // Nothing was dropped anywhere on the way.
      expect(dp.counters().drops).toEqual(Object.fromEntries(Object.keys(dp.counters().drops).map((k) => [k, 0n])));
    } finally {
      dp.stop();
    }
  });
});
