// What status and explain say of the learned and static FDB on a running data plane fed
// real VXLAN frames on its uplink (helper-83): MACs that keep moving between VTEPs, a
// static entry naming the wrong VTEP, a MAC learned from a VTEP that is a peer no more.
import { expect, it } from 'vitest';
import { request } from '../../src/dataplane/control.js';
import { dataplaneOn, vfplane } from '../helpers/cli.js';
import { describePrivileged } from '../helpers/privileged.js';
import { inject } from '../helpers/netns.js';
import { fromVtep, POD, uplinkNetns } from '../helpers/underlay.js';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';

describePrivileged('status on the learned FDB, on a running data plane', { netns: true }, () => {
  const e = uplinkNetns('h83l');
  const { up, rep, d, send } = e;
  const peers = [{ vtep: '192.0.2.2', mac: '02:bb:00:00:00:02' }, { vtep: '192.0.2.3', mac: '02:bb:00:00:00:03' }];
  const start = async (name: string, extra: Record<string, unknown> = {}) => {
    const dir = join(d.dir, name); // its own state: each test attaches the same representor
    mkdirSync(dir);
    const dp = await dataplaneOn(e.n, up, dir, { peers, ...extra });
    const a = vfplane(['dataplane', 'attach', '--socket', dp.socket, '--representor', rep, '--vni', '100', '--mac', POD, '--netns', e.n.path]);
    expect(a.code, a.stderr).toBe(0);
    return dp;
  };
  const engine = async (socket: string) => ((await request(socket, { op: 'stats' })).counters as { engine: Record<string, number> }).engine;

  // learnCapacity 16 with 100 MACs from the underlay: status said "20 of 16 entries a
  // worker" (the table's slots, rounded up from 16, were the limit, not learnCapacity).
  it('learns at most learnCapacity MACs, and status says so', async () => {
    const dp = await start('capacity', { learnCapacity: 16 });
    try {
      const macs = Array.from({ length: 100 }, (_, i) => `02:00:00:84:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
      for (let k = 0; k < macs.length; k += 10) send(macs.slice(k, k + 10).map((m) => fromVtep('192.0.2.2', m)));
      const full = async () => (await engine(dp.socket)).learnFull ?? 0;
      for (let i = 0; i < 100 && (await full()) < 84; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 250)); // the gauge is as of the worker's last ageing pass (ten a second)
      const lr = (await request(dp.socket, { op: 'status' })).learning as { entries: number; capacity: number };
      expect(lr).toMatchObject({ entries: 16, capacity: 16 });
      expect(await full()).toBe(84);
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).toMatch(/^learned FDB: 16 of 16 entries a worker \(learnCapacity\)/m);
    } finally {
      await dp.stop();
    }
  }, 30_000);

  // learnMoved rising showed only in stats --json and the metrics (helper-83: 21 in 10 s).
  it('warns when learned MACs keep moving between VTEPs, not for a MAC that moved once', async () => {
    const dp = await start('moves');
    const moving = /^warning: learned MACs keep moving between VTEPs: (\d+) moves in the last \d+ s \(learnMoved: \d+ since the start\): two hosts on the overlay use one MAC .*, or a loop/m;
    try {
      const S = '02:00:00:00:83:01';
      // Moved once (a pod that moved to another node): no warning.
      send([fromVtep('192.0.2.2', S)]);
      send([fromVtep('192.0.2.3', S)]);
      for (let i = 0; i < 50 && !(await engine(dp.socket)).learnMoved; i++) await new Promise((r) => setTimeout(r, 20));
      expect((await engine(dp.socket)).learnMoved).toBe(1);
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).not.toMatch(moving);
      // Two hosts sending from one MAC, each through its own VTEP.
      for (let i = 0; i < 12; i++) send([fromVtep('192.0.2.2', S), fromVtep('192.0.2.3', S)]);
      for (let i = 0; i < 50 && ((await engine(dp.socket)).learnMoved ?? 0) < 20; i++) await new Promise((r) => setTimeout(r, 20));
      const st = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      expect(st).toMatch(moving);
      expect(Number(moving.exec(st)![1])).toBeGreaterThanOrEqual(20);
      const lr = (await request(dp.socket, { op: 'status' })).learning as { moved: number; movedLately: { moves: number; seconds: number } };
      expect(lr.moved).toBeGreaterThanOrEqual(21);
      expect(lr.movedLately.moves).toBeGreaterThanOrEqual(20);
    } finally {
      await dp.stop();
    }
  }, 30_000);

  // A static entry pointing at the wrong VTEP drops the real host's frames as
  // static_elsewhere, which only the counters showed (helper-83).
  it('warns of frames dropped because a static entry names another VTEP, with how to find and fix it', async () => {
    const S = '02:00:00:00:83:02';
    const dp = await start('elsewhere', { fdb: [{ vni: 100, mac: S, vtep: '192.0.2.2' }] });
    const said = /^warning: (\d+) frame\(s\) from the underlay dropped since the start, the last \d+ s ago \(static_elsewhere\): their inner source MAC has a static FDB entry naming another VTEP .*`vfplane dataplane drops --reason static_elsewhere`.*`vfplane dataplane explain --from uplink .*`vfplane dataplane fdb del` and `fdb add`/m;
    try {
      send([fromVtep('192.0.2.2', S)]); // from the VTEP its entry names: delivered
      await new Promise((r) => setTimeout(r, 200));
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).not.toMatch(/static_elsewhere/);
      send([fromVtep('192.0.2.3', S), fromVtep('192.0.2.3', S), fromVtep('192.0.2.3', S)]);
      const drops = async () => ((await request(dp.socket, { op: 'stats' })).counters as { drops: Record<string, number> }).drops.static_elsewhere ?? 0;
      for (let i = 0; i < 50 && (await drops()) < 3; i++) await new Promise((r) => setTimeout(r, 20));
      const st = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      expect(st).toMatch(said);
      expect(Number(said.exec(st)![1])).toBe(3);
      expect((await request(dp.socket, { op: 'status' })).staticElsewhere).toMatchObject({ frames: 3 });
    } finally {
      await dp.stop();
    }
  }, 30_000);

  // A pod that changed its MAC has every frame dropped as spoofed, which only the
  // counters showed (a troubleshooting walkthrough, helper-80).
  it('warns of pods\' frames dropped as spoofed, naming the fix; not for the pod\'s own MAC', async () => {
    e.n.ip(['link', 'set', e.repp, 'address', POD]); // the pod's own kernel frames (IPv6 DAD, RS) are its MAC's
    const dp = await start('spoofed');
    const said = /^warning: (\d+) frame\(s\) from pods dropped since the start, the last \d+ s ago \(spoofed\): a pod sent from a MAC other than the one it was attached with \(antiSpoof\).*`vfplane dataplane drops --reason spoofed`.*attach it with the MAC it uses/m;
    const frame = (src: string) => Uint8Array.from([...Buffer.from(`ffffffffffff${src.replaceAll(':', '')}0800`, 'hex'), 0x45, ...new Array(45).fill(0)]);
    try {
      inject(e.n, e.repp, [frame(POD)]);
      await new Promise((r) => setTimeout(r, 200));
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).not.toMatch(said);
      expect((await request(dp.socket, { op: 'status' })).spoofed).toBeUndefined();
      inject(e.n, e.repp, [frame('02:00:00:00:83:09'), frame('02:00:00:00:83:09')]);
      const drops = async () => ((await request(dp.socket, { op: 'stats' })).counters as { drops: Record<string, number> }).drops.spoofed ?? 0;
      for (let i = 0; i < 50 && (await drops()) < 2; i++) await new Promise((r) => setTimeout(r, 20));
      const st = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      expect(st).toMatch(said);
      expect(Number(said.exec(st)![1])).toBe(2);
      expect((await request(dp.socket, { op: 'status' })).spoofed).toMatchObject({ frames: 2 });
    } finally {
      await dp.stop();
    }
  }, 30_000);

  // explain for a MAC learned from a VTEP since removed said it floods "until it is
  // learned again", which it cannot be from that VTEP while it is not a peer (helper-83).
  it('explain says a MAC learned from a VTEP that is no longer a peer is not learned again from it', async () => {
    const X = '02:00:00:00:83:03';
    const dp = await start('gonepeer');
    type X = { verdict: string; source?: string; vtep?: string; steps: string[] };
    const explain = async () => (await request(dp.socket, { op: 'explain', vni: 100, mac: X })) as unknown as X;
    try {
      send([fromVtep('192.0.2.3', X)]);
      for (let i = 0; i < 50 && (await explain()).verdict !== 'encap'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await explain()).toMatchObject({ verdict: 'encap', source: 'learned', vtep: '192.0.2.3' });
      await request(dp.socket, { op: 'peer-del', vtep: '192.0.2.3' });
      const x = await explain();
      expect(x.verdict).toBe('flood');
      const text = x.steps.join('\n');
      expect(text).toMatch(/192\.0\.2\.3 is no longer a peer, so that entry is not used: 02:00:00:00:83:03 is flooded as unknown unicast\. Frames from 02:00:00:00:83:03 through 192\.0\.2\.3 do not learn it again while that VTEP is not a peer: add it back \(`vfplane dataplane peer add 192\.0\.2\.3`\) or wait until the entry ages out \(ageSeconds \d+\)/);
      expect(text).not.toMatch(/until it is learned again/);
      // As said: its frames through 192.0.2.3 change nothing, one through a peer moves it.
      send([fromVtep('192.0.2.3', X)]);
      await new Promise((r) => setTimeout(r, 200));
      expect((await explain()).verdict).toBe('flood');
      send([fromVtep('192.0.2.2', X)]);
      for (let i = 0; i < 50 && (await explain()).verdict !== 'encap'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await explain()).toMatchObject({ verdict: 'encap', source: 'learned', vtep: '192.0.2.2' });
    } finally {
      await dp.stop();
    }
  }, 30_000);

  // A remote host sending from a local pod's MAC (a MAC set by hand in two network
  // configs, a cloned VM) showed nowhere: the local pod kept its traffic, the other host
  // lost its replies, and nothing said why.
  it('warns of a pod\'s MAC that also comes from behind a peer on its VNI, naming both', async () => {
    const dp = await start('duplocal');
    const said = /^warning: MAC (\S+) of the pod on (\S+) \(VNI 100\) also sends from behind peer 192\.0\.2\.2, the last \d+ s ago \((\d+) time\(s\) since the start\): two hosts have one MAC\..*Give one of them another MAC/m;
    const times = async () => Number(((await request(dp.socket, { op: 'stats' })).counters as { misc: Record<string, number> }).misc.dupLocalMacs ?? 0);
    try {
      send([fromVtep('192.0.2.2', '02:00:00:00:83:04')]); // another MAC: learned, nothing said
      await new Promise((r) => setTimeout(r, 200));
      expect(await times()).toBe(0);
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).not.toMatch(/two hosts have one MAC/);
      send([fromVtep('192.0.2.2', POD)]);
      for (let i = 0; i < 50 && !(await times()); i++) await new Promise((r) => setTimeout(r, 20));
      const st = vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout;
      expect(st).toMatch(said);
      expect(said.exec(st)!.slice(1, 3)).toEqual([POD, rep]);
      expect((await request(dp.socket, { op: 'status' })).duplicateMac).toMatchObject({ mac: POD, vni: 100, representor: rep, vtep: '192.0.2.2', times: 1 });
      // The local pod still gets what is sent to its MAC.
      const x = (await request(dp.socket, { op: 'explain', vni: 100, mac: POD })) as unknown as { verdict: string; steps: string[] };
      expect(x.verdict).toBe('local');
      expect(x.steps.join('\n')).toMatch(/also learned on VNI 100 from frames VTEP 192\.0\.2\.2 sent: a host there has this pod's MAC too \(two hosts with one MAC\)/);
      // Once the pod is detached, its MAC is no one's here: nothing to warn of.
      expect(vfplane(['dataplane', 'detach', '--socket', dp.socket, '--representor', rep]).code).toBe(0);
      expect(vfplane(['dataplane', 'status', '--socket', dp.socket]).stdout).not.toMatch(/two hosts have one MAC/);
      expect((await request(dp.socket, { op: 'status' })).duplicateMac).toBeUndefined();
    } finally {
      await dp.stop();
    }
  }, 30_000);
});
