// A peer's underlay MAC changes under a running data plane (a NIC replaced, a router
// failed over): the workers learned a MAC once and used it for ever, while status said
// "resolved" (helper-71). Now a learned MAC not heard from for neighReachableSeconds is
// asked again while used (unicast to the MAC it had, then broadcast), and a data plane
// announces its VTEP when it starts (gratuitous ARP), so peers that knew another MAC for
// it take the new one at once. Real peer: the kernel, whose neighbour table is read back.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { kernelPeer, until } from '../helpers/kernel-peer.js';
import { capture, ifname, Netns, scratchDir, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

describePrivileged('underlay neighbours that change', { netns: true, commands: ['ping'] }, () => {
  const k = kernelPeer('nbc');
  const { up, pu, rep, repp } = k;
  const tmp = { dir: k.dir };
  let u: Netns, p: Netns, q: Netns;
  beforeAll(() => {
    ({ u, p, q } = k);
  });

  const ping = () => k.podPing();
  const peerEntry = () => p.ip(['neigh', 'show', '192.0.2.1', 'dev', pu]);
  // A state directory of each test's own: a data plane restores the last one's attachments.
  const sub = (name: string) => {
    const d = join(tmp.dir, name);
    mkdirSync(d);
    return d;
  };

  it('a peer whose MAC changed is found again while traffic goes to it', async () => {
    // The peer never asks for us (a permanent entry): only our asking can find its new MAC.
    p.ip(['neigh', 'replace', '192.0.2.1', 'lladdr', u.mac(up), 'nud', 'permanent', 'dev', pu]);
    const dp = await dataplaneOn(u, up, sub('probe'), { peers: [{ vtep: '192.0.2.2' }], neighReachableSeconds: 1, cpus: [0] });
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across').toBe(true);
      // A new MAC flushes the kernel's neighbour table (its permanent entries too): put
      // back at once, before any frame needs it, so the peer never asks.
      // In one `ip -batch`, so that no frame of the kernel's falls between the two.
      spawnSync('ip', ['-n', p.name, '-batch', '-'], { input: `link set ${pu} address 02:71:00:00:0b:03\nneigh replace 192.0.2.1 lladdr ${u.mac(up)} nud permanent dev ${pu}\n` });
      expect(p.ip(['neigh', 'show', '192.0.2.1', 'dev', pu])).toMatch(/PERMANENT/);
      // Past 1 s unheard: three unicast probes to the old MAC (lost), then a broadcast
      // request the peer answers from its new one.
      expect(await until(() => ping().status === 0, 15_000), 'ping across again, to the new MAC').toBe(true);
      const st = (await request(dp.socket, { op: 'status' })) as unknown as { peers: { underlayMac: string; heardSecondsAgo?: number }[] };
      expect(st.peers[0]!.underlayMac).toBe('02:71:00:00:0b:03');
      expect(st.peers[0]!.heardSecondsAgo).toBeLessThan(15);
      const misc = ((await request(dp.socket, { op: 'stats' })) as unknown as { counters: { misc: Record<string, number> } }).counters.misc;
      expect(misc.neighProbes, 'probes sent').toBeGreaterThanOrEqual(4);
    } finally {
      await dp.stop();
      p.ip(['neigh', 'del', '192.0.2.1', 'dev', pu]);
    }
  }, 40_000);

  it('frames sent while the uplink is down are dropped then, not sent seconds late when it comes back', async () => {
    const dp = await dataplaneOn(u, up, sub('down'), { peers: [{ vtep: '192.0.2.2', mac: p.mac(pu) }], cpus: [0] });
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across').toBe(true);
      // 20 pings 0.2 s apart; the uplink set down for 1.5 s of them.
      const run = spawn('ip', ['netns', 'exec', q.name, 'ping', '-n', '-i', '0.2', '-c', '20', '-W', '3', '10.9.0.2']);
      let out = '';
      run.stdout.on('data', (d) => { out += d; });
      const done = new Promise((res) => run.on('close', res));
      await new Promise((res) => setTimeout(res, 1000));
      u.ip(['link', 'set', up, 'down']);
      await new Promise((res) => setTimeout(res, 1500));
      u.ip(['link', 'set', up, 'up']);
      await done;
      const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
      expect(rtts.length, out).toBeGreaterThan(5);
      expect(Math.max(...rtts), `no reply waited for the link: ${out}`).toBeLessThan(500);
      const ports = ((await request(dp.socket, { op: 'status' })) as unknown as { ports: { name: string; drops?: Record<string, number> }[] }).ports;
      expect(ports.find((x) => x.name === 'uplink')?.drops?.tx_link_down, JSON.stringify(ports)).toBeGreaterThan(0);
    } finally {
      await dp.stop();
      u.ip(['link', 'set', up, 'up']);
    }
  }, 40_000);

  // AF_PACKET with the qdisc bypassed: a device without carrier refuses a frame, the
  // kernel frees it and the send says ENOBUFS (one frame a send), which read as "busy,
  // sent later": counted as sent. Counted as the device's drops now (helper-73).
  it('afpacket: frames the uplink refuses while it has no carrier are counted as lost', async () => {
    const dp = await dataplaneOn(u, up, sub('nocarrier'), { peers: [{ vtep: '192.0.2.2', mac: p.mac(pu) }], cpus: [0] });
    const drops = async () => {
      const ports = ((await request(dp.socket, { op: 'status' })) as unknown as { ports: { name: string; drops?: Record<string, number> }[] }).ports;
      return ports.find((x) => x.name === 'uplink')!.drops!;
    };
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across').toBe(true);
      const before = (await drops()).tx_device_drops!;
      p.ip(['link', 'set', pu, 'down']);
      spawnSync('ip', ['netns', 'exec', q.name, 'ping', '-n', '-i', '0.2', '-c', '6', '-W', '1', '10.9.0.2']);
      p.ip(['link', 'set', pu, 'up']);
      expect((await drops()).tx_device_drops! - before, JSON.stringify(await drops())).toBeGreaterThanOrEqual(4);
      expect(await until(() => ping().status === 0, 5000), 'ping across again').toBe(true);
    } finally {
      await dp.stop();
      p.ip(['link', 'set', pu, 'up']);
    }
  }, 30_000);

  // AF_XDP: the kernel drops what a device without carrier is given (EBUSY, one frame a
  // send) and refuses a device down (ENETDOWN) leaving the ring queued. Both counted as
  // lost (tx_device_drops, tx_link_down), not as sent; none goes out late when the link
  // is back (helper-73).
  it('afxdp: frames sent while the uplink has no carrier, or is down, are counted as lost and none goes late', async () => {
    const dp = await dataplaneOn(u, up, sub('down-xdp'), { backend: 'afxdp', peers: [{ vtep: '192.0.2.2', mac: p.mac(pu) }], cpus: [0] });
    const lost = async (what: 'no carrier' | 'admin down' = 'admin down') => {
      const ports = ((await request(dp.socket, { op: 'status' })) as unknown as { ports: { name: string; drops?: Record<string, number> }[] }).ports;
      return ports.find((x) => x.name === 'uplink')?.drops?.[what === 'no carrier' ? 'tx_device_drops' : 'tx_link_down'];
    };
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across').toBe(true);
      expect([await lost('no carrier'), await lost('admin down')]).toEqual([0, 0]);
      for (const [what, down, back] of [
        ['no carrier', () => p.ip(['link', 'set', pu, 'down']), () => p.ip(['link', 'set', pu, 'up'])],
        ['admin down', () => u.ip(['link', 'set', up, 'down']), () => u.ip(['link', 'set', up, 'up'])],
      ] as const) {
        const before = (await lost(what))!;
        // 20 pings 0.2 s apart; the link away for 1.5 s of them.
        const run = spawn('ip', ['netns', 'exec', q.name, 'ping', '-n', '-i', '0.2', '-c', '20', '-W', '3', '10.9.0.2']);
        let out = '';
        run.stdout.on('data', (d) => { out += d; });
        const done = new Promise((res) => run.on('close', res));
        await new Promise((res) => setTimeout(res, 1000));
        down();
        await new Promise((res) => setTimeout(res, 1500));
        back();
        await done;
        const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
        expect(rtts.length, `${what}: ${out}`).toBeGreaterThan(5);
        // What was already in the tx ring when the device went down (one ping: the kernel
        // took nothing, and a published ring entry cannot be taken back) goes when it is
        // up again; nothing after it does (before: every ping of the 1.5 s).
        const late = rtts.filter((t) => t > 500).length;
        expect(late, `${what}: replies that waited for the link: ${out}`).toBeLessThanOrEqual(what === 'admin down' ? 1 : 0);
        // About one a ping while away (7 or so), give or take the edges.
        expect((await lost(what))! - before, what).toBeGreaterThanOrEqual(3);
      }
    } finally {
      await dp.stop();
      u.ip(['link', 'set', up, 'up']);
      p.ip(['link', 'set', pu, 'up']);
    }
  }, 40_000);

  // A node renumbered, or missing from the peers: its frames were delivered and its MACs
  // not learned, and only `stats --json` had a count (helper-71). Status names it now.
  it('names a VTEP whose frames come in but which is not a peer', async () => {
    const dp = await dataplaneOn(u, up, sub('notpeer'), { peers: [{ vtep: '192.0.2.9', mac: '02:00:00:00:09:09' }], cpus: [0] });
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      p.ip(['neigh', 'replace', '192.0.2.1', 'lladdr', u.mac(up), 'nud', 'permanent', 'dev', pu]);
      spawnSync('ip', ['netns', 'exec', p.name, 'ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', '10.9.0.1']);
      type NP = { notPeer?: { vtep: string; frames: number; secondsAgo: number } };
      const st = (await request(dp.socket, { op: 'status' })) as unknown as NP;
      expect(st.notPeer).toMatchObject({ vtep: '192.0.2.2' });
      expect(st.notPeer!.frames).toBeGreaterThan(0);
      const human = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(human.stdout + human.stderr).toMatch(/frames from VTEP 192\.0\.2\.2, which is not a peer of this node, came in \d+ s ago .*`vfplane dataplane peer add 192\.0\.2\.2`/);
      // Once it is a peer again, no warning asks to add it (helper-83: it stood 10 minutes).
      await request(dp.socket, { op: 'peer-add', vtep: '192.0.2.2', mac: p.mac(pu) });
      expect(((await request(dp.socket, { op: 'status' })) as unknown as NP).notPeer).toBeUndefined();
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).not.toMatch(/which is not a peer of this node/);
    } finally {
      await dp.stop();
      p.ip(['neigh', 'del', '192.0.2.1', 'dev', pu]);
    }
  }, 30_000);

  // A peer whose way back broke (its vxlan down, a filter, a list without this node)
  // showed nothing: its MAC stays known and encap goes on. Status counts what came from
  // each peer, when the last frame did, and says when one is sent to but silent.
  it('counts what each peer sent (every VXLAN frame of its on the wire, no more) and says when one goes silent while sent to', async () => {
    const dp = await dataplaneOn(u, up, sub('oneway'), { peers: [{ vtep: '192.0.2.2', mac: p.mac(pu) }], neighReachableSeconds: 1, cpus: [0] });
    type PS = { peers: { vtep: string; decapPkts: number; decapBytes: number; lastFrameSecondsAgo?: number; unansweredSeconds?: number }[] };
    const peer = async () => ((await request(dp.socket, { op: 'status' })) as unknown as PS).peers[0]!;
    const oneWay = /peer 192\.0\.2\.2: this node has sent to it for \d+ s and no VXLAN frame came back \(the last \d+ s ago\): the way back is broken/;
    let pinger: ReturnType<typeof spawn> | null = null;
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across').toBe(true);
      // Every VXLAN frame the peer put on the wire to us, and no more, was decapsulated as
      // the peer's: a capture on our uplink is the witness (vx0's IPv6 off, so it sends
      // nothing of its own accord in the window).
      p.sysctl('net.ipv6.conf.vx0.disable_ipv6', '1');
      await new Promise((res) => setTimeout(res, 300));
      const cap = capture(u, up, { count: 10_000, timeoutS: 3, incoming: true, udpDport: 4789 });
      await cap.ready;
      const a = (await peer()).decapPkts;
      for (let i = 0; i < 5; i++) ping();
      const wire = (await cap.done).length;
      const c = await peer();
      expect(wire).toBeGreaterThanOrEqual(5);
      expect(c.decapPkts - a).toBe(wire);
      expect(c.decapBytes).toBeGreaterThan(c.decapPkts * 60);
      expect(c.lastFrameSecondsAgo).toBeLessThanOrEqual(5);
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).not.toMatch(oneWay);
      // The peer stops answering: its vxlan device down. We go on sending to it.
      p.ip(['link', 'set', 'vx0', 'down']);
      pinger = spawn('ip', ['netns', 'exec', q.name, 'ping', '-n', '-i', '0.2', '-W', '1', '10.9.0.2'], { stdio: 'ignore' });
      const said = () => oneWay.test(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout);
      expect(await until(said, 10_000), 'the one-way warning').toBe(true);
      const quiet = await peer();
      expect(quiet.decapPkts).toBe(c.decapPkts);
      expect(quiet.unansweredSeconds).toBeGreaterThanOrEqual(2);
      // Back: frames from it again, and the warning goes.
      p.ip(['link', 'set', 'vx0', 'up']);
      expect(await until(() => !said(), 10_000), 'the warning gone once the peer answers').toBe(true);
      expect((await peer()).decapPkts).toBeGreaterThan(c.decapPkts);
    } finally {
      pinger?.kill();
      p.ip(['link', 'set', 'vx0', 'up']);
      p.sysctl('net.ipv6.conf.vx0.disable_ipv6', '0');
      await dp.stop();
    }
  }, 40_000);

  // A pod's ARP for an address no node has goes to every peer as a flood copy; a healthy
  // peer answers none of them. That was taken for a broken way back (helper-83): the
  // warning named a node that was fine. Only unicast sent to a peer awaits an answer; a
  // filter that drops the peer's VXLAN towards us is still found.
  it('a peer that got only flood copies is not taken for one whose way back broke; one whose answers a filter drops is', async () => {
    const dp = await dataplaneOn(u, up, sub('h83flood'), { peers: [{ vtep: '192.0.2.2', mac: p.mac(pu) }], neighReachableSeconds: 1, cpus: [0] });
    type PS = { peers: { vtep: string; encapPkts: number; floodPkts: number; decapPkts: number; unansweredSeconds?: number }[] };
    const peer = async () => ((await request(dp.socket, { op: 'status' })) as unknown as PS).peers[0]!;
    const oneWay = /peer 192\.0\.2\.2: this node has sent to it for \d+ s and no VXLAN frame came back/;
    const said = () => oneWay.test(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout);
    const pingers: ReturnType<typeof spawn>[] = [];
    const pinger = (to: string) => pingers.push(spawn('ip', ['netns', 'exec', q.name, 'ping', '-n', '-i', '0.2', '-W', '1', to], { stdio: 'ignore' }));
    let filtered = false;
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across').toBe(true);
      // vx0 sends nothing of its own accord (no IPv6, no ARP probe for the pod it knows).
      p.sysctl('net.ipv6.conf.vx0.disable_ipv6', '1');
      p.ip(['neigh', 'replace', '10.9.0.1', 'lladdr', q.mac(repp), 'nud', 'permanent', 'dev', 'vx0']);
      await new Promise((res) => setTimeout(res, 300));
      const a = await peer();
      // ARP requests for 10.9.0.77, which no node has: broadcasts, flooded to the peer.
      pinger('10.9.0.77');
      await new Promise((res) => setTimeout(res, 7000)); // past 2 s (twice neighReachableSeconds) and 3 beats
      const b = await peer();
      expect(said(), 'no one-way warning for a peer that got only floods').toBe(false);
      expect(b.unansweredSeconds).toBeUndefined();
      expect(b.decapPkts, 'the peer answered none').toBe(a.decapPkts);
      expect(b.floodPkts - a.floodPkts, 'flood copies sent to the peer').toBeGreaterThanOrEqual(3);
      expect(b.encapPkts - a.encapPkts, 'nothing but flood copies').toBe(b.floodPkts - a.floodPkts);
      pingers.pop()!.kill();
      // Its VXLAN towards us dropped by a filter on the peer: unicast pings go, their
      // answers never come back. The warning, as before.
      expect(await until(() => ping().status === 0, 5000), 'ping across again').toBe(true);
      spawnSync('ip', ['netns', 'exec', p.name, 'iptables', '-A', 'OUTPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP'], { stdio: 'inherit' });
      filtered = true;
      pinger('10.9.0.2');
      expect(await until(said, 10_000), 'the one-way warning for a peer whose answers are dropped').toBe(true);
      const c = await peer();
      expect(c.encapPkts - c.floodPkts, 'unicast sent').toBeGreaterThan(b.encapPkts - b.floodPkts);
      expect(c.unansweredSeconds).toBeGreaterThanOrEqual(2);
    } finally {
      for (const x of pingers) x.kill();
      if (filtered) spawnSync('ip', ['netns', 'exec', p.name, 'iptables', '-D', 'OUTPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP']);
      p.sysctl('net.ipv6.conf.vx0.disable_ipv6', '0');
      spawnSync('ip', ['-n', p.name, 'neigh', 'del', '10.9.0.1', 'dev', 'vx0']);
      await dp.stop();
    }
  }, 45_000);

  // A peer that was resolved and then stopped answering ARP (down, its address gone)
  // showed only "not heard from for 110 s (asked again ...)" in the table, no warning
  // (helper-83). Said now, with the count of requests it left unanswered.
  it('warns when a resolved peer stops answering ARP, and stops once it answers again', async () => {
    const dp = await dataplaneOn(u, up, sub('h83gone'), { peers: [{ vtep: '192.0.2.2' }], neighReachableSeconds: 1, cpus: [0] });
    const gone = /peer 192\.0\.2\.2 has not answered (\d+) ARP requests in \d+ s \(last heard \d+ s ago\): it is down or no longer has that address/;
    const status = () => vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
    let pinger: ReturnType<typeof spawn> | null = null;
    let removed = false;
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across').toBe(true);
      pinger = spawn('ip', ['netns', 'exec', q.name, 'ping', '-n', '-i', '0.2', '-W', '1', '10.9.0.2'], { stdio: 'ignore' });
      // Answering: probed past 1 s unheard, it answers the first unicast probe.
      await new Promise((res) => setTimeout(res, 4000));
      expect(status()).not.toMatch(gone);
      p.ip(['addr', 'del', '192.0.2.2/24', 'dev', pu]);
      removed = true;
      expect(await until(() => gone.test(status()), 15_000), 'the warning for a peer that no longer answers').toBe(true);
      const out = status();
      expect(Number(gone.exec(out)![1])).toBeGreaterThan(3);
      expect(out, 'not also taken for a broken way back').not.toMatch(/peer 192\.0\.2\.2: this node has sent to it/);
      p.ip(['addr', 'add', '192.0.2.2/24', 'dev', pu]);
      removed = false;
      expect(await until(() => !gone.test(status()), 10_000), 'the warning gone once it answers').toBe(true);
    } finally {
      pinger?.kill();
      if (removed) p.ip(['addr', 'add', '192.0.2.2/24', 'dev', pu]);
      await dp.stop();
    }
  }, 45_000);

  it('a data plane that starts on another MAC announces it: the peer takes it before any traffic', async () => {
    // The peer knows us at an old MAC (reachable, as after traffic).
    p.ip(['neigh', 'replace', '192.0.2.1', 'lladdr', '02:71:00:00:0a:01', 'nud', 'reachable', 'dev', pu]);
    u.ip(['link', 'set', up, 'address', '02:71:00:00:0a:02']);
    const dp = await dataplaneOn(u, up, sub('announce'), { peers: [{ vtep: '192.0.2.2' }], cpus: [0] });
    try {
      expect(await until(() => peerEntry().includes('02:71:00:00:0a:02'), 3000), `the peer's entry: ${peerEntry()}`).toBe(true);
      const misc = ((await request(dp.socket, { op: 'stats' })) as unknown as { counters: { misc: Record<string, number> } }).counters.misc;
      expect(misc.announcements).toBeGreaterThanOrEqual(1);
    } finally {
      await dp.stop();
    }
  }, 30_000);
});

// A routed underlay: the peer's VTEP on another subnet, behind a router on the uplink's
// link (a leaf–spine fabric). The workers ARPed for the peer itself, which no one
// answers there (helper-71); with uplink.gateway they resolve the router and send the
// peer's frames to it, and find it again when it changes its MAC (a failover).
describePrivileged('a routed underlay (uplink.gateway)', { netns: true, commands: ['ping'] }, () => {
  const k = kernelPeer('nbg', { routed: true });
  const { up, ru, rep, repp } = k;
  const tmp = { dir: k.dir };
  let u: Netns, r: Netns, q: Netns;
  beforeAll(() => {
    ({ u, r, q } = k);
  });

  const ping = () => k.podPing();

  it('reaches a peer on another subnet through the gateway, and follows the gateway to a new MAC', async () => {
    const dp = await dataplaneOn(u, up, tmp.dir, {
      uplink: { ifname: up, netns: u.path, vtep: '192.0.2.1', gateway: '192.0.2.254', prefixLength: 24 },
      peers: [{ vtep: '198.51.100.2' }], neighReachableSeconds: 1, cpus: [0],
    });
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      expect(await until(() => ping().status === 0, 5000), 'ping across the router').toBe(true);
      type Peer = { vtep: string; via?: string; underlayMac: string; state: string };
      const peer = async () => ((await request(dp.socket, { op: 'status' })) as unknown as { peers: Peer[] }).peers[0]!;
      expect(await peer()).toMatchObject({ vtep: '198.51.100.2', via: '192.0.2.254', underlayMac: r.mac(ru), state: 'resolved' });
      // The router fails over to another MAC and tells no one (no gratuitous ARP).
      r.ip(['link', 'set', ru, 'address', '02:71:00:00:0c:05']);
      r.ip(['neigh', 'replace', '192.0.2.1', 'lladdr', u.mac(up), 'nud', 'permanent', 'dev', ru]);
      expect(await until(() => ping().status === 0, 15_000), 'ping across again, through the new MAC').toBe(true);
      expect((await peer()).underlayMac).toBe('02:71:00:00:0c:05');
    } finally {
      await dp.stop();
    }
  }, 40_000);

  it('refuses a gateway that cannot be one, naming the fix', async () => {
    const { parseConfig } = await import('../../src/dataplane/config.js');
    const base = { uplink: { ifname: 'x', vtep: '192.0.2.1' } };
    expect(() => parseConfig({ uplink: { ...base.uplink, gateway: '2001:db8::1' } }, 'dp.yaml')).toThrow(/uplink\.gateway is not of the VTEP's family/);
    expect(() => parseConfig({ uplink: { ...base.uplink, gateway: '192.0.2.1' } }, 'dp.yaml')).toThrow(/uplink\.gateway is our own VTEP/);
    expect(() => parseConfig({ uplink: { ...base.uplink, prefixLength: 24 } }, 'dp.yaml')).toThrow(/give the gateway too/);
    expect(() => parseConfig({ uplink: { ...base.uplink, gateway: '192.0.2.254', prefixLength: 33 } }, 'dp.yaml')).toThrow(/at most 32 for IPv4/);
    // Not on the link, the subnet's own addresses, scoped or IPv4-mapped (helper-73).
    for (const gateway of ['10.0.0.1', '192.0.2.0', '192.0.2.255']) {
      expect(() => parseConfig({ uplink: { ...base.uplink, gateway, prefixLength: 24 } }, 'dp.yaml'), gateway).toThrow(/uplink\.gateway is not on the uplink's subnet .* or is that subnet's network or broadcast address/);
    }
    const v6 = { ifname: 'x', vtep: '2001:db8:1::1' };
    expect(() => parseConfig({ uplink: { ...v6, gateway: 'fe80::1%eth0' } }, 'dp.yaml')).toThrow(/without a %zone/);
    expect(() => parseConfig({ uplink: { ...v6, gateway: '::ffff:192.0.2.254' } }, 'dp.yaml')).toThrow(/IPv4-mapped/);
    // What is fine: a host of the subnet, a link-local router with any prefix, no prefix.
    for (const u of [{ ...base.uplink, gateway: '192.0.2.254', prefixLength: 24 }, { ...v6, gateway: 'fe80::1', prefixLength: 64 }, { ...base.uplink, gateway: '10.0.0.1' }]) {
      expect(() => parseConfig({ uplink: u }, 'dp.yaml'), JSON.stringify(u)).not.toThrow();
    }
  });
});

// The uplink's own link and MAC while the data plane runs: a link down (or without
// carrier) lost every frame with nothing said, and a new MAC on the netdev was never
// used (helper-71).
describePrivileged('the uplink netdev changing under the data plane', { netns: true, commands: ['ping'] }, () => {
  let u: Netns, p: Netns;
  const up = ifname('lu'), pu = ifname('lp');
  const tmp = scratchDir('uplinkchg');

  beforeAll(() => {
    u = Netns.create('ulu');
    p = Netns.create('ulp');
    vethPair(u, up, p, pu);
    p.ip(['addr', 'add', '192.0.2.2/24', 'dev', pu]);
    p.ip(['link', 'set', pu, 'up']);
  });
  afterAll(() => {
    for (const n of [u, p]) n?.destroy();
    tmp.remove();
  });

  it('says when the link is down or without carrier, and takes a new MAC into use and announces it', async () => {
    const dp = await dataplaneOn(u, up, tmp.dir, { peers: [{ vtep: '192.0.2.2' }], cpus: [0], metrics: '127.0.0.1:0' });
    const metric = async (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'm').exec(await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text())?.[1]);
    type Up = { link?: string; linkDowns?: number; mac?: string };
    const uplink = async () => ((await request(dp.socket, { op: 'status' })) as unknown as { uplink: Up }).uplink;
    const until = async (ok: (x: Up) => boolean) => {
      let x = await uplink();
      for (let i = 0; i < 60 && !ok(x); i++) await new Promise((res) => setTimeout(res, 100)), (x = await uplink());
      return x;
    };
    try {
      expect(await uplink()).toMatchObject({ link: 'up', linkDowns: 0, mac: u.mac(up) });
      p.ip(['link', 'set', pu, 'down']); // the far end: our side loses carrier
      expect(await until((x) => x.link === 'no-carrier')).toMatchObject({ link: 'no-carrier', linkDowns: 1 });
      const status = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(status.stdout).toMatch(/uplink link: NO CARRIER/);
      expect(status.stdout + status.stderr).toMatch(/is up without carrier since \d+ s ago: every frame for the underlay is lost/);
      expect(await metric('vfplane_uplink_up')).toBe(0);
      expect(await metric('vfplane_uplink_down_total')).toBe(1);
      p.ip(['link', 'set', pu, 'up']);
      expect(await until((x) => x.link === 'up')).toMatchObject({ link: 'up', linkDowns: 1 });
      expect(await metric('vfplane_uplink_up')).toBe(1);
      // A new MAC: status, and the peer hears it announced.
      u.ip(['link', 'set', up, 'address', '02:71:00:00:0d:01']);
      p.ip(['neigh', 'replace', '192.0.2.1', 'lladdr', '02:71:00:00:0d:00', 'nud', 'reachable', 'dev', pu]);
      expect((await until((x) => x.mac === '02:71:00:00:0d:01')).mac).toBe('02:71:00:00:0d:01');
      let entry = '';
      for (let i = 0; i < 30 && !entry.includes('02:71:00:00:0d:01'); i++) {
        await new Promise((res) => setTimeout(res, 100));
        entry = p.ip(['neigh', 'show', '192.0.2.1', 'dev', pu]);
      }
      expect(entry).toContain('02:71:00:00:0d:01');
    } finally {
      await dp.stop();
    }
  }, 40_000);
});

// IPv6: Linux answers a unicast solicitation (our probe) with an advertisement that has
// no target link-layer address option (RFC 4861 §7.2.4 lets it): the workers ignored
// it, so every cycle went three unicast probes and then a multicast solicitation, for
// every IPv6 peer (helper-73). Such an answer confirms the MAC it was asked at.
describePrivileged('probing an IPv6 peer that is still there', { netns: true, commands: ['ping'] }, () => {
  const k = kernelPeer('nb6', { v: 6 });
  const { up, pu, rep, repp } = k;
  const tmp = { dir: k.dir };
  let u: Netns, p: Netns, q: Netns;
  beforeAll(() => {
    ({ u, p, q } = k);
  });

  it('is confirmed by its answer to a unicast probe: no multicast solicitation while it answers', async () => {
    const dp = await dataplaneOn(u, up, tmp.dir, { uplink: { ifname: up, netns: u.path, vtep: '2001:db8:1::1' }, peers: [{ vtep: '2001:db8:1::2' }], neighReachableSeconds: 1, cpus: [0] });
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      const ping1 = () => k.podPing().status === 0;
      let ok = ping1();
      for (let i = 0; i < 10 && !ok; i++) ok = ping1();
      expect(ok, 'ping across').toBe(true);
      // Pinged for 4 s, with neighReachableSeconds 1 (its least): asked again about every
      // second while used, so several unicast probes fall in the window.
      const cap = capture(p, pu, { count: 100_000, timeoutS: 5 });
      await cap.ready;
      const run = spawnSync('ip', ['netns', 'exec', q.name, 'ping', '-n', '-i', '0.2', '-c', '20', '-W', '1', '10.9.0.2'], { encoding: 'utf8' });
      expect(run.stdout).toMatch(/ 0% packet loss/);
      const frames = await cap.done;
      const ours = frames.filter((f) => Buffer.from(f.subarray(6, 12)).toString('hex') === u.mac(up).replace(/:/g, '') && f[12] === 0x86 && f[13] === 0xdd && f[20] === 58 && f[54] === 135);
      const multicast = ours.filter((f) => f[0] === 0x33 && f[1] === 0x33);
      expect(ours.length - multicast.length, 'unicast probes').toBeGreaterThanOrEqual(2);
      expect(multicast.length, 'multicast solicitations').toBe(0);
    } finally {
      await dp.stop();
    }
  }, 40_000);
});
