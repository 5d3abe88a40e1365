// Underlay settings that disagree between nodes, against real kernel vxlan peers: the
// frames were dropped under a name that pointed elsewhere (a zero IPv6 UDP checksum
// counted as a bad one) or one that did not say whose (not_vxlan_port, not_udp for the
// peer's port unreachable), and `status` said nothing. Now each has its drop reason and its
// warning, naming both settings.
import { spawnSync } from 'node:child_process';
import { beforeAll, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { kernelPeer } from '../helpers/kernel-peer.js';
import type { Netns } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

type Status = {
  udpZeroChecksum?: { frames: number; secondsAgo: number };
  peers: { vtep: string; wrongPort?: { port: number; frames: number; secondsAgo: number }; portUnreachable?: { frames: number; secondsAgo: number } }[];
};
type Stats = { counters: { drops: Record<string, number> } };

// RFC 6935/6936 let an IPv6 tunnel leave its UDP checksums out, by configuration (Linux:
// udp6zerocsumtx); a node verifying them (tunnel.verifyUdpCsum) refuses those frames.
describePrivileged('an IPv6 peer that sends zero UDP checksums to a node that verifies them', { netns: true, commands: ['ping'] }, () => {
  const k = kernelPeer('h84z', { v: 6, vxlanArgs: ['udp6zerocsumtx'] });
  const { up, pu, rep, repp } = k;
  let u: Netns, p: Netns, q: Netns;
  beforeAll(() => {
    ({ u, p, q } = k);
  });

  it('drops them as udp_zero_checksum (not udp_bad_checksum), and status says which settings disagree', async () => {
    const dp = await dataplaneOn(u, up, k.dir, { uplink: { ifname: up, netns: u.path, vtep: '2001:db8:1::1' }, peers: [{ vtep: '2001:db8:1::2', mac: p.mac(pu) }], tunnel: { verifyUdpCsum: true }, cpus: [0] });
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      p.ip(['-6', 'neigh', 'replace', '2001:db8:1::1', 'lladdr', u.mac(up), 'nud', 'permanent', 'dev', pu]);
      const stats = async () => ((await request(dp.socket, { op: 'stats' })) as unknown as Stats).counters.drops;
      let drops: Record<string, number> = {};
      for (let i = 0; i < 20 && !(drops.udp_zero_checksum ?? 0); i++) {
        spawnSync('ip', ['netns', 'exec', p.name, 'ping', '-n', '-c', '1', '-W', '1', '10.9.0.1']);
        drops = await stats();
      }
      expect(drops.udp_zero_checksum ?? 0, JSON.stringify(drops)).toBeGreaterThan(0);
      expect(drops.udp_bad_checksum ?? 0).toBe(0);
      const st = (await request(dp.socket, { op: 'status' })) as unknown as Status;
      expect(st.udpZeroChecksum?.frames).toBeGreaterThan(0);
      const human = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(human.stdout + human.stderr).toMatch(/IPv6 VXLAN frame\(s\) with UDP checksum 0 were dropped \(udp_zero_checksum\) .*tunnel\.verifyUdpCsum.*udp6zerocsumtx/);
    } finally {
      await dp.stop();
    }
  }, 40_000);
});

// A kernel peer made with dstport 8472 (the kernel's default when none is given) beside
// a node on 4789: its VXLAN comes to 8472 (not_vxlan_port) and its host answers ours to
// 4789 with ICMP port unreachable.
describePrivileged('a kernel peer on UDP 8472 beside a node on 4789', { netns: true, commands: ['ping'] }, () => {
  const k = kernelPeer('h84p', { dstPort: 8472 });
  const { up, pu, rep, repp } = k;
  let u: Netns, p: Netns, q: Netns;
  beforeAll(() => {
    ({ u, p, q } = k);
  });

  it('status names the peer and both ports, from its frames and from its port unreachable; the header, the start log and the metrics say it', async () => {
    const dp = await dataplaneOn(u, up, k.dir, { peers: [{ vtep: '192.0.2.2', mac: p.mac(pu) }], cpus: [0], metrics: '127.0.0.1:0' });
    try {
      expect(dp.log()).toMatch(/VTEP 192\.0\.2\.1, VXLAN on UDP 4789, 1 peer\(s\)/);
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      p.ip(['neigh', 'replace', '192.0.2.1', 'lladdr', u.mac(up), 'nud', 'permanent', 'dev', pu]);
      const peer = async () => ((await request(dp.socket, { op: 'status' })) as unknown as Status).peers.find((x) => x.vtep === '192.0.2.2')!;
      let st = await peer();
      for (let i = 0; i < 20 && !(st.wrongPort && st.portUnreachable); i++) {
        spawnSync('ip', ['netns', 'exec', p.name, 'ping', '-n', '-c', '1', '-W', '1', '10.9.0.1']); // its VXLAN to our 8472
        k.podPing(); // ours to its 4789
        st = await peer();
      }
      expect(st.wrongPort, JSON.stringify(st)).toMatchObject({ port: 8472 });
      expect((st as { sentElsewhere?: unknown }).sentElsewhere, 'sent to this VTEP: not sent elsewhere').toBeUndefined();
      expect(st.wrongPort!.frames).toBeGreaterThan(0);
      expect(st.portUnreachable?.frames, JSON.stringify(st)).toBeGreaterThan(0);
      const human = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      const out = human.stdout + human.stderr;
      expect(out).toMatch(/VTEP 192\.0\.2\.1 \(VXLAN on UDP 4789\)/);
      expect(out).toMatch(/warning: peer 192\.0\.2\.2 sends VXLAN to UDP 8472; this node listens on 4789 \(dstPort\): give every node the same dstPort \(Linux's vxlan device uses 8472 when created without dstport\)/);
      // For alerts: the same counts, per peer.
      const text = await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text();
      const m = (name: string) => Number(new RegExp(`^${name}\\{node="edge",peer="192\\.0\\.2\\.2"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? -1);
      expect(m('vfplane_peer_wrong_port_packets_total')).toBeGreaterThanOrEqual(st.wrongPort!.frames);
      expect(m('vfplane_peer_port_unreachable_total')).toBeGreaterThanOrEqual(st.portUnreachable!.frames);
    } finally {
      await dp.stop();
      p.ip(['neigh', 'del', '192.0.2.1', 'dev', pu]);
    }
  }, 60_000);
});

// The same over IPv6: the peer's port unreachable is ICMPv6 (type 1 code 4).
describePrivileged('an IPv6 kernel peer on UDP 8472 beside a node on 4789', { netns: true, commands: ['ping'] }, () => {
  const k = kernelPeer('h84v', { v: 6, dstPort: 8472 });
  const { up, pu, rep, repp } = k;
  let u: Netns, p: Netns, q: Netns;
  beforeAll(() => {
    ({ u, p, q } = k);
  });

  it('status names the peer and both ports, from its frames and from its ICMPv6 port unreachable', async () => {
    const dp = await dataplaneOn(u, up, k.dir, { uplink: { ifname: up, netns: u.path, vtep: '2001:db8:1::1' }, peers: [{ vtep: '2001:db8:1::2', mac: p.mac(pu) }], cpus: [0] });
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      p.ip(['-6', 'neigh', 'replace', '2001:db8:1::1', 'lladdr', u.mac(up), 'nud', 'permanent', 'dev', pu]);
      const peer = async () => ((await request(dp.socket, { op: 'status' })) as unknown as Status).peers.find((x) => x.vtep === '2001:db8:1::2')!;
      let st = await peer();
      for (let i = 0; i < 20 && !(st.wrongPort && st.portUnreachable); i++) {
        spawnSync('ip', ['netns', 'exec', p.name, 'ping', '-n', '-c', '1', '-W', '1', '10.9.0.1']);
        k.podPing();
        st = await peer();
      }
      expect(st.wrongPort, JSON.stringify(st)).toMatchObject({ port: 8472 });
      expect((st as { sentElsewhere?: unknown }).sentElsewhere, 'sent to this VTEP: not sent elsewhere').toBeUndefined();
      expect(st.portUnreachable?.frames, JSON.stringify(st)).toBeGreaterThan(0);
      const human = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(human.stdout + human.stderr).toMatch(/warning: peer 2001:db8:1::2 sends VXLAN to UDP 8472; this node listens on 4789 \(dstPort\)/);
    } finally {
      await dp.stop();
    }
  }, 60_000);
});

// A node whose uplink.vtep is not the address its peers send to (renumbered, a typo):
// their VXLAN reaches its MAC and port and is dropped as not_local, which said nothing
// of whose or where to (helper-80). Status names the peer, both addresses and the two
// places one may be wrong; a metric counts it.
describePrivileged('a kernel peer sending to another address than the node\'s VTEP', { netns: true, commands: ['ping'] }, () => {
  const k = kernelPeer('h38w');
  const { up, pu, rep, repp } = k;
  let u: Netns, p: Netns, q: Netns;
  beforeAll(() => {
    ({ u, p, q } = k);
  });

  it('status names the peer and both addresses', async () => {
    const dp = await dataplaneOn(u, up, k.dir, { uplink: { ifname: up, netns: u.path, vtep: '192.0.2.11' }, peers: [{ vtep: '192.0.2.2', mac: p.mac(pu) }], cpus: [0], metrics: '127.0.0.1:0' });
    type St = { peers: { vtep: string; sentElsewhere?: { to: string; frames: number } }[] };
    try {
      await request(dp.socket, { op: 'attach', representor: rep, vni: 100, mac: q.mac(repp) });
      // The peer's vx0 sends to 192.0.2.1, which it resolves to this node's MAC.
      p.ip(['neigh', 'replace', '192.0.2.1', 'lladdr', u.mac(up), 'nud', 'permanent', 'dev', pu]);
      const peer = async () => ((await request(dp.socket, { op: 'status' })) as unknown as St).peers.find((x) => x.vtep === '192.0.2.2')!;
      let st = await peer();
      for (let i = 0; i < 20 && !st.sentElsewhere; i++) {
        spawnSync('ip', ['netns', 'exec', p.name, 'ping', '-n', '-c', '1', '-W', '1', '10.9.0.1']);
        st = await peer();
      }
      expect(st.sentElsewhere, JSON.stringify(st)).toMatchObject({ to: '192.0.2.1' });
      expect(st.sentElsewhere!.frames).toBeGreaterThan(0);
      const human = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(human.stdout).toMatch(/warning: peer 192\.0\.2\.2 sends VXLAN to 192\.0\.2\.1, not to this node's VTEP 192\.0\.2\.11 \(uplink\.vtep\): \d+ frame\(s\) dropped \(not_local\), the last \d+ s ago\. One of the two nodes has the wrong address: this node's uplink\.vtep .*, or the peer's entry for this node/);
      const text = await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text();
      expect(Number(/^vfplane_peer_wrong_vtep_packets_total\{node="edge",peer="192\.0\.2\.2"\} (\d+)$/m.exec(text)?.[1] ?? -1)).toBeGreaterThanOrEqual(st.sentElsewhere!.frames);
    } finally {
      await dp.stop();
      p.ip(['neigh', 'del', '192.0.2.1', 'dev', pu]);
    }
  }, 60_000);
});
