// What an attached VF costs the data plane in memory: its representor's rings (AF_PACKET)
// or UMEM (AF_XDP). The DaemonSet's memory limit is sized from it (docs/dataplane.md,
// Memory): when representors had the uplink's 16 MiB rings, 1 GiB held ~45 pods and the
// OOM killer ended the data plane past that. A real daemon, real representor veths,
// the kernel's RSS figure.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDataplane } from '../helpers/cli.js';
import { ifname, Netns, vethPair } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';

const REPS = 8;

describePrivileged('memory per attached VF', { netns: true }, () => {
  let n: Netns, m: Netns;
  const up = ifname('mu'), upPeer = ifname('mp');
  const reps = Array.from({ length: REPS }, (_, i) => ifname(`mr${i}`));
  const dir = mkdtempSync(join(tmpdir(), 'vfplane-mem-'));
  let d: ChildProcess | null = null;

  beforeAll(() => {
    n = Netns.create('mmn');
    m = Netns.create('mmm');
    vethPair(n, up, m, upPeer);
    // Representors in the daemon's namespace (as a switchdev NIC's are), peers elsewhere.
    for (const r of reps) spawnSync('ip', ['link', 'add', r, 'type', 'veth', 'peer', 'name', `${r}p`, 'netns', m.name]);
  });

  afterAll(() => {
    d?.kill('SIGKILL');
    for (const r of reps) spawnSync('ip', ['link', 'del', r]);
    n?.destroy();
    m?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

  for (const backend of ['afpacket', 'afxdp'] as const) {
    it(`${backend}: each attached VF adds its representor's ring, a few MiB, not the uplink's`, async () => {
      const socket = join(dir, `${backend}.sock`);
      const config = join(dir, `${backend}.json`);
      writeFileSync(config, JSON.stringify({ node: `mem-${backend}`, backend, uplink: { ifname: up, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir: join(dir, backend), socket }));
      const dp = await startDataplane(config, `the ${backend} data plane`);
      d = dp.proc;
      expect(dp.log()).toContain(`control socket ${socket}`);
      try {
        const before = rssKiB(d.pid!);
        for (const [i, r] of reps.entries()) {
          await request(socket, { op: 'attach', representor: r, vni: 100, mac: `02:00:00:00:0a:${(16 + i).toString(16)}` });
        }
        const per = (rssKiB(d.pid!) - before) / REPS / 1024;
        console.log(`${backend}: ${per.toFixed(1)} MiB of RSS per attached VF (${REPS} representors)`);
        // Measured 5.0 (AF_PACKET) and 4.3 MiB (AF_XDP) a VF; 16.8–19.7 with the uplink's sizes.
        expect(per).toBeGreaterThan(2); // the rings are really there (mapped and touched)
        expect(per).toBeLessThan(8);
      } finally {
        await dp.stop();
        d = null;
      }
    });
  }
});
