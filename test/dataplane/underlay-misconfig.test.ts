// Underlay settings that disagree between nodes, against real kernel vxlan peers: the
// frames were dropped under a name that pointed elsewhere (a zero IPv6 UDP checksum
// counted as a bad one) and `status` said nothing. Now each has its drop reason and its
// warning, naming both settings.
import { spawnSync } from 'node:child_process';
import { beforeAll, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { kernelPeer } from '../helpers/kernel-peer.js';
import type { Netns } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';

type Status = { udpZeroChecksum?: { frames: number; secondsAgo: number } };
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
