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
import { dropSim, makeSim } from '../helpers/sim.js';

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

// The CLI checks the netdev against sysfs (--sysfs-root: here a simulated NIC's tree)
// before it asks the data plane: a VF's own netdev is the pod's side, and with --pci the
// VF's representor is known. The socket names no data plane, so a refusal that names the
// netdev proves nothing was asked; a right pair gets as far as the socket.
describePrivileged('dataplane attach checks the representor against sysfs first', { root: true }, () => {
  it("refuses a VF's own netdev, and another VF's representor for --pci, naming the right one", () => {
    const m = makeSim({ profile: 'x710', pfs: 1, vfs: 2 });
    const d = scratchDir('attsim');
    try {
      const p = m.prefix;
      const sock = join(d.dir, 'none.sock');
      const att = (rep: string, extra: string[] = []) =>
        vfplane(['dataplane', 'attach', '--socket', sock, '--sysfs-root', m.root, '--representor', rep, '--vni', '100', '--mac', '02:00:00:00:0c:01', ...extra]);
      const own = att(`${p}f0v0`);
      expect(own.code, own.stderr).toBe(2);
      expect(own.stderr).toContain(`--representor ${p}f0v0 is VF 0000:5e:02.0's own netdev (a VF of PF 0000:5e:00.0), not its representor; give --representor ${p}f0r0`);
      const other = att(`${p}f0r1`, ['--pci', '0000:5e:02.0']);
      expect(other.code, other.stderr).toBe(2);
      expect(other.stderr).toContain(`--representor ${p}f0r1 is not the representor of VF 0000:5e:02.0 (${p}f0r0 is)`);
      // The right pair passes the check and reaches the socket (no data plane there).
      const right = att(`${p}f0r0`, ['--pci', '0000:5e:02.0']);
      expect(right.code).not.toBe(0);
      expect(right.stderr).not.toMatch(/--representor/);
      expect(right.stderr).toContain(sock);
      // An unknown VF is left to the data plane (its own messages), as before.
      const unknown = att(`${p}f0r0`, ['--pci', '0000:5e:0f.0']);
      expect(unknown.stderr).not.toMatch(/--representor/);
    } finally {
      dropSim(m.root);
      d.remove();
    }
  });
});
