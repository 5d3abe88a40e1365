// Another host with this node's VTEP address on the underlay (two nodes configured alike,
// or the address also on a host's interface): the workers see its ARP or neighbour
// discovery claim the address from a MAC not the uplink's, and `dataplane status`, its
// JSON and the metrics name it. The other host is a real kernel on the uplink's veth
// peer: over IPv4 its own ARP, and iputils' arping probing for the address before taking
// it (RFC 5227), which our reply turns away; over IPv6 its duplicate address detection,
// which our advertisement defeats (the kernel marks the address dadfailed and does not
// use it).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { pastAnnouncements, uplinkNetns } from '../helpers/underlay.js';

type Conflict = { frames: number; mac: string; secondsAgo: number };

describePrivileged('another host claiming our VTEP address', { netns: true, commands: ['ping', 'arping'] }, () => {
  const e = uplinkNetns('vtepc');
  const { up, upp, d } = e;

  const conflict = async (socket: string) =>
    ((await request(socket, { op: 'status' })) as { uplink: { vtepConflict?: Conflict } }).uplink.vtepConflict;
  /** Polls status until it names a conflict (at most 8 s). */
  async function untilConflict(socket: string): Promise<Conflict | undefined> {
    for (let i = 0; i < 80; i++) {
      const c = await conflict(socket);
      if (c) return c;
      await new Promise((r) => setTimeout(r, 100));
    }
    return undefined;
  }
  const mac = (dev: string) => (JSON.parse(e.n.ip(['-j', 'link', 'show', dev])) as { address: string }[])[0]!.address;

  it('IPv4: the kernel ARPing from our address is named by status, its warning and the metrics; our own ARP is not', async () => {
    e.n.ip(['link', 'set', upp, 'up']);
    const dir = join(d.dir, 'v4');
    mkdirSync(dir);
    // No peer MAC: the workers ARP for the peer themselves, which is no conflict.
    const dp = await dataplaneOn(e.n, up, dir, { metrics: '127.0.0.1:0', peers: [{ vtep: '192.0.2.2' }] });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(await conflict(dp.socket)).toBeUndefined();
      const calm = JSON.parse(vfplane(['doctor', '--json'], { env: { VFPLANE_DATAPLANE_SOCKET: dp.socket } }).stdout) as { checks: { area: string; name: string; status: string }[] };
      expect(calm.checks.filter((c) => c.area === 'dataplane' && c.status !== 'ok').map((c) => c.name)).not.toContain('data plane uplink');
      // The host on the underlay takes 192.0.2.1 too, and asks for the peer from it.
      e.n.ip(['addr', 'add', '192.0.2.1/24', 'dev', upp]);
      spawnSync('ip', ['netns', 'exec', e.n.name, 'ping', '-c', '2', '-W', '1', '192.0.2.2']);
      const c = await untilConflict(dp.socket);
      expect(c, dp.log()).toMatchObject({ mac: mac(upp) });
      expect(c!.frames).toBeGreaterThanOrEqual(1);
      expect(c!.secondsAgo).toBeLessThan(30);
      const metrics = await (await fetch(`http://127.0.0.1:${dp.metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/^vfplane_vtep_conflict_frames_total\{node="edge"\} [1-9]\d*$/m);
      const h = vfplane(['dataplane', 'status', '--socket', dp.socket]);
      expect(h.stdout).toContain(`warning: another host (MAC ${mac(upp)}) claims VTEP address 192.0.2.1 on the underlay`);
      // `vfplane doctor` says it too, among the running data plane's checks.
      const doc = JSON.parse(vfplane(['doctor', '--json'], { env: { VFPLANE_DATAPLANE_SOCKET: dp.socket } }).stdout) as { checks: { area: string; name: string; status: string; detail: string }[] };
      expect(doc.checks).toContainEqual({ area: 'dataplane', name: 'data plane uplink', status: 'warn', detail: expect.stringContaining(`another host (MAC ${mac(upp)}) claims VTEP address 192.0.2.1`) });
    } finally {
      await dp.stop();
      e.n.ip(['addr', 'flush', 'dev', upp]);
    }
  });

  it('IPv4: a host probing for our address before taking it (RFC 5227, arping -D) is answered, and named', async () => {
    e.n.ip(['link', 'set', upp, 'up']);
    const dir = join(d.dir, 'probe');
    mkdirSync(dir);
    const dp = await dataplaneOn(e.n, up, dir, { peers: [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }] });
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect(await conflict(dp.socket)).toBeUndefined();
      // Probes from 0.0.0.0 (no address on the interface): exit 1 and a reply when the
      // address is taken, which tells the prober not to use it.
      const r = spawnSync('ip', ['netns', 'exec', e.n.name, 'arping', '-D', '-I', upp, '-c', '2', '-w', '3', '192.0.2.1'], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/Unicast reply from 192\.0\.2\.1 \[/i);
      const c = await untilConflict(dp.socket);
      expect(c, dp.log()).toMatchObject({ mac: mac(upp) });
      expect(c!.frames).toBeGreaterThanOrEqual(1);
    } finally {
      await dp.stop();
    }
  });

  it('IPv6: a kernel taking our address fails duplicate address detection against us, and status names it', async () => {
    e.n.ip(['link', 'set', upp, 'up']);
    e.n.exec('sysctl', ['-qw', `net.ipv6.conf.${upp}.disable_ipv6=0`, `net.ipv6.conf.${upp}.accept_dad=1`]);
    const dir = join(d.dir, 'v6');
    mkdirSync(dir);
    const dp = await dataplaneOn(e.n, up, dir, {
      uplink: { ifname: up, netns: e.n.path, vtep: '2001:db8::1' },
      peers: [{ vtep: '2001:db8::2', mac: '02:bb:00:00:00:02' }],
    });
    try {
      // Past the data plane's two announcements of its VTEP (unsolicited advertisements
      // at start and a second later): one that reaches the kernel during its duplicate
      // address detection fails it at once, before the kernel says anything of its own.
      await pastAnnouncements(dp.socket);
      expect(await conflict(dp.socket)).toBeUndefined();
      e.n.ip(['-6', 'addr', 'add', '2001:db8::1/64', 'dev', upp]);
      const c = await untilConflict(dp.socket);
      expect(c, dp.log()).toMatchObject({ mac: mac(upp) });
      // The kernel heard our advertisement for the address during its probe: it gives it up.
      let show = '';
      for (let i = 0; i < 50 && !/dadfailed/.test(show); i++) {
        show = execFileSync('ip', ['-n', e.n.name, '-6', 'addr', 'show', 'dev', upp], { encoding: 'utf8' });
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(show).toMatch(/2001:db8::1\/64 scope global .*dadfailed/);
    } finally {
      await dp.stop();
      e.n.ip(['-6', 'addr', 'flush', 'dev', upp]);
    }
  });
});
