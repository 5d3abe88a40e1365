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
import { startDataplane, vfplane } from '../helpers/cli.js';
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

  const MiB = 1 << 20;
  // What status says each representor port holds: AF_PACKET 4 MiB of rx ring (16 blocks
  // of 256 KiB) plus 512 tx slots, each a 1500-byte frame and its header rounded up, in
  // 64 KiB blocks; AF_XDP 1024 UMEM frames of 4 KiB.
  const tx = (slots: number) => [slots * 1514, slots * 2048 + 65536] as const;
  const cases = [
    { backend: 'afpacket', conf: {}, rx: 4 * MiB, tx: tx(512) },
    { backend: 'afxdp', conf: {}, rx: 4 * MiB, tx: [0, 0] },
    { backend: 'afpacket', conf: { afpacket: { representorRxRingMiB: 2, representorTxFrames: 128 } }, rx: 2 * MiB, tx: tx(128) },
  ] as const;
  for (const [k, { backend, conf, rx, tx: [txMin, txMax] }] of cases.entries()) {
    it(`${backend}${k === 2 ? ' with smaller representor rings' : ''}: each attached VF adds its representor's ring, a few MiB, not the uplink's`, async () => {
      const socket = join(dir, `${backend}${k}.sock`);
      const config = join(dir, `${backend}${k}.json`);
      writeFileSync(config, JSON.stringify({ node: `mem-${backend}`, backend, uplink: { ifname: up, netns: `/run/netns/${n.name}`, vtep: '192.0.2.1' }, stateDir: join(dir, `${backend}${k}`), socket, ...conf }));
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
        const st = await request(socket, { op: 'status' }) as { ports: { name: string; ringBytes?: number }[] };
        const held = reps.map((r) => st.ports.find((p) => p.name === r)?.ringBytes ?? 0);
        for (const b of held) expect(b - rx).toBeGreaterThanOrEqual(txMin), expect(b - rx).toBeLessThanOrEqual(txMax);
        // The operator's view: a buffers column per port and the total.
        const human = vfplane(['dataplane', 'status', '--socket', socket]);
        expect(human.code, human.stderr).toBe(0);
        expect(human.stdout).toMatch(new RegExp(`${reps[0]}\\s.*\\s${(held[0]! / MiB).toFixed(1)} MiB\\s`));
        expect(human.stdout).toMatch(/port buffers: \d+\.\d MiB in all/);
        // What it holds (the uplink and every representor), a line per kind of thing it
        // gives back, not a line per netdev; a long list is counted, its ends named.
        const holds = human.stdout.split('\n').filter((l) => l.startsWith('holds '));
        expect(holds.length, holds.join('\n')).toBeLessThan(REPS);
        const named = (l: string) => {
          const many = /^holds (\d+) netdevs \(.*; --json lists them\): gives back /.exec(l);
          return many ? Number(many[1]) : l.slice('holds '.length, l.indexOf(': ')).split(', ').length;
        };
        expect(holds.reduce((n, l) => n + named(l), 0), holds.join('\n')).toBe(REPS + 1);
        // The figure status gives is what the kernel charges the process, within the
        // bookkeeping around it (measured 5.0 and 4.3 MiB RSS a VF with the defaults;
        // 16.8–19.7 when representors had the uplink's sizes).
        expect(Math.abs(per - held[0]! / MiB)).toBeLessThan(1.5);
      } finally {
        await dp.stop();
        d = null;
      }
    });
  }
});
