// Two data planes on one netdev would both answer ARP for their VTEPs, and the second
// would record the first one's changes (disable_ipv6=1…) as the settings to give back.
// The node lock covers one node name and state directory; a lock per netdev, in one run
// directory for the host, refuses the second whatever its node and state directory,
// while a restart of the same daemon still reclaims its own netdevs from its journal.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { startDataplane, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns, ifname, vethIn, scratchDir } from '../helpers/netns.js';

describePrivileged('a netdev two data planes claim', { netns: true, commands: ['sysctl'] }, () => {
  let ns: Netns;
  const u1 = ifname('u'), p1 = ifname('p'), u2 = ifname('v'), p2 = ifname('q'), rep = ifname('r'), vf = ifname('f');
  const tmp = scratchDir('lock');
  const dir = tmp.dir;
  const runDir = join(dir, 'run');
  const saved = process.env.VFPLANE_RUN_DIR;

  beforeAll(() => {
    ns = Netns.create('lock');
    for (const [a, b] of [[u1, p1], [u2, p2], [rep, vf]] as const) vethIn(ns, a, b);
    // The daemons inherit it: their locks go to a directory of this test's own.
    process.env.VFPLANE_RUN_DIR = runDir;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.VFPLANE_RUN_DIR;
    else process.env.VFPLANE_RUN_DIR = saved;
    ns?.destroy();
    tmp.remove();
  });

  const locks = () => readdirSync(runDir).filter((f) => f.startsWith('netdev-'));
  const disableIpv6 = (dev: string) => ns.readSysctl(`net.ipv6.conf.${dev}.disable_ipv6`);
  const config = (node: string, uplink: string) => {
    const file = join(dir, `${node}.json`);
    const stateDir = join(dir, `state-${node}`);
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(file, JSON.stringify({ node, backend: 'afpacket', uplink: { ifname: uplink, netns: ns.path, vtep: '192.0.2.1' }, stateDir, socket: join(dir, `${node}.sock`) }));
    return { file, stateDir, socket: join(dir, `${node}.sock`), journal: join(stateDir, `claims-${node}.json`) };
  };

  it('refuses an uplink another data plane (another node and state directory) holds, naming it and its pid, and changes nothing', async () => {
    const one = config('one', u1), two = config('two', u1);
    const a = await startDataplane(one.file, 'data plane one');
    try {
      expect(disableIpv6(u1)).toBe('1');
      const r = vfplane(['dataplane', 'run', '--config', two.file], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`netdev ${u1} in ${ns.path} is taken by another data plane (pid ${a.proc.pid}, node one, state directory ${one.stateDir})`);
      expect(r.stderr).toContain('stop that one first, or give this one another netdev');
      expect(existsSync(two.journal)).toBe(false); // it recorded nothing
      expect(disableIpv6(u1)).toBe('1'); // and gave nothing back under the first one
      expect((await request(one.socket, { op: 'status' })).uplink).toBeTruthy();
    } finally {
      await a.stop();
    }
    expect(disableIpv6(u1)).toBe('0'); // the first one gave back the host's setting
    // Once the first has let go, the second may take it.
    const b = await startDataplane(two.file, 'data plane two');
    expect(disableIpv6(u1)).toBe('1');
    expect(locks()).toHaveLength(1);
    await b.stop();
    expect(disableIpv6(u1)).toBe('0');
    expect(locks()).toEqual([]); // a lock let go is removed: they do not pile up
  });

  it('refuses to attach a representor another data plane holds, and the holder keeps it', async () => {
    const one = config('one', u1), two = config('two', u2);
    const a = await startDataplane(one.file, 'data plane one');
    const b = await startDataplane(two.file, 'data plane two');
    try {
      const att = { op: 'attach', representor: rep, netns: ns.path, vni: 100, mac: '02:00:00:00:01:01' };
      await request(one.socket, att);
      const e = await request(two.socket, { ...att, mac: '02:00:00:00:01:02' }).then(() => null, (x: Error) => x);
      expect(e?.message).toContain(`netdev ${rep} in ${ns.path} is taken by another data plane (pid ${a.proc.pid}, node one`);
      expect((await request(two.socket, { op: 'status' })).attachments).toEqual([]);
      expect(disableIpv6(rep)).toBe('1');
    } finally {
      await b.stop();
      expect(disableIpv6(rep)).toBe('1'); // the second gave back nothing of the first's
      await a.stop();
    }
    expect(disableIpv6(rep)).toBe('0');
  });

  it('a restart of a killed data plane still reclaims its own uplink from its journal', async () => {
    const one = config('one', u1);
    const a = await startDataplane(one.file, 'data plane one');
    await a.stop('SIGKILL');
    expect(disableIpv6(u1)).toBe('1');
    const again = await startDataplane(one.file, 'data plane one, again');
    expect(again.log()).toMatch(new RegExp(`uplink ${u1}: held since \\S+ by a run that did not give it back`));
    await again.stop();
    expect(disableIpv6(u1)).toBe('0');
    expect(locks()).toEqual([]); // the killed run's too
  });

  it('a start removes lock files nobody holds (killed data planes\' netdevs long gone), not one a live holder has', async () => {
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'netdev-4026531999-99999.lock'), '12345\nnode gone, state directory /nowhere\n');
    const held = join(runDir, 'netdev-4026531999-99998.lock');
    writeFileSync(held, '');
    // Another process holds that one (util-linux flock, the same flock(2) lock).
    const holder = spawn('flock', ['--exclusive', held, 'sleep', '30'], { stdio: 'ignore', detached: true });
    try {
      for (let i = 0; i < 100 && spawnSync('flock', ['--nonblock', held, 'true']).status === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const one = config('sweep', u1);
      const d = await startDataplane(one.file, 'data plane sweep');
      try {
        expect(d.log()).toContain(`removed 1 netdev lock file(s) in ${runDir} that no data plane holds`);
        expect(existsSync(join(runDir, 'netdev-4026531999-99999.lock'))).toBe(false);
        expect(existsSync(held)).toBe(true);
      } finally {
        await d.stop();
      }
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
  });
});
