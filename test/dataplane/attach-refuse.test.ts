// What `dataplane attach` must never take as a representor: a loopback device (the data
// plane would switch IPv6 off on it and drop the stack's copy of its frames, cutting the
// namespace off from itself), and the data plane's own uplink (its detach would give back
// the uplink's claim under the running uplink). Refused with the reason, nothing changes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describePrivileged('dataplane attach refuses loopback and the uplink', { root: true, commands: ['ping'] }, () => {
  let n: Netns;
  const up = ifname('u'), upp = ifname('v');
  const d = scratchDir('att');

  beforeAll(() => {
    n = Netns.create('att');
    vethIn(n, up, upp);
  });
  afterAll(() => {
    n?.destroy();
    d.remove();
  });

  it('refuses lo and the uplink netdev, changing nothing on either', async () => {
    const dp = await dataplaneOn(n, up, d.dir);
    try {
      const journal = () => readFileSync(join(dp.stateDir, 'claims-edge.json'), 'utf8');
      const before = journal();
      expect(n.readSysctl(`net.ipv6.conf.${up}.disable_ipv6`)).toBe('1'); // the uplink's claim

      const lo = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', 'lo', '--vni', '100', '--mac', '02:00:00:00:0a:01', '--netns', n.path]);
      expect(lo.code, lo.stderr).toBe(2);
      expect(lo.stderr).toMatch(/representor lo .*is a loopback device.*give the VF's representor/);
      expect(n.readSysctl('net.ipv6.conf.lo.disable_ipv6')).toBe('0');
      expect(n.exec('ping', ['-c', '1', '-W', '2', '127.0.0.1'])).toMatch(/1 received/);

      const self = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', up, '--vni', '100', '--mac', '02:00:00:00:0a:02', '--netns', n.path]);
      expect(self.code, self.stderr).toBe(2);
      expect(self.stderr).toContain(`representor ${up} in ${n.path} is this data plane's uplink`);
      const det = vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', up]);
      expect(det.code, det.stderr).toBe(0);
      expect(det.stdout).toMatch(/nothing was attached/);
      // The uplink keeps its claim: IPv6 off, and the journal still lists it.
      expect(n.readSysctl(`net.ipv6.conf.${up}.disable_ipv6`)).toBe('1');
      expect(journal()).toBe(before);
      const st = (await request(dp.socket, { op: 'status' })) as { attachments: unknown[]; held: { netdev: string }[] };
      expect(st.attachments).toEqual([]);
      expect(st.held.map((h) => h.netdev)).toEqual([up]);
    } finally {
      await dp.stop();
    }
  });
});
