// One releaser of a VF at a time: a pod's CNI DEL, the runtime's CNI GC and `vfplane gc`
// each put a VF back (netdev home, settings restored) before releasing it, and two at once
// met each other's half-done work (helper-98: GC beside the pods' own DELs reported
// "stays allocated, not put back: … No such device"). Each takes the VF's put-back lock
// (an flock in the state directory) first. The pause that makes the race deterministic is
// an IPAM plugin whose DEL is slow: the releaser holds the lock while it waits for it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns } from '../helpers/netns.js';
import { dropAllSims, makeSim, sweepStaleSims } from '../helpers/sim.js';
import { ROOT } from '../helpers/cli.js';
import type { SimManifest } from '../../src/sim/manifest.js';
import { simKernel } from '../../src/sim/kernel.js';
import { Sysfs } from '../../src/sriov/sysfs.js';
import { vfShowView } from '../../src/cli/sriov-run.js';

const PLUGIN = join(ROOT, 'bin', 'vfplane-cni.js');
const REF = '/usr/lib/cni';

describePrivileged('the put-back lock: one releaser of a VF at a time', { netns: true, commands: [`${REF}/host-local`] }, () => {
  let m: SimManifest;
  let dir: string; // state, IPAM data, the slow IPAM plugin
  let state: string;
  const pods: Netns[] = [];

  // host-local, whose DEL announces itself (a file per call) and then, while the test
  // holds it (`hold()` until `let go`), waits: the releaser keeps its put-back lock
  // meanwhile. (Asked twice by a 1.1.0 DEL: Debian's refuses 1.1.0, then 1.0.0.) Held
  // only where a test races two releasers: a fixed 1.5 s sleep on every DEL made the
  // others wait for nothing, and a GC slower than it could see the DEL's second call.
  const slowIpam = () => join(dir, 'bin', 'slowdel');
  const holdFile = () => join(dir, 'hold');
  const hold = () => writeFileSync(holdFile(), '');
  const letGo = () => rmSync(holdFile(), { force: true });
  const delStarted = () => readdirSync(join(dir, 'marks')).length;
  const conf = (over: Record<string, unknown> = {}) => ({
    cniVersion: '1.1.0', name: 'pbnet', type: 'vfplane-cni', sysfsRoot: m.root, stateDir: state, logLevel: 'info',
    ipam: { type: 'slowdel', subnet: '10.61.0.0/24', dataDir: join(dir, 'ipam') }, ...over,
  });
  const env = (command: string, e: { containerId?: string; netns?: string; ifname?: string } = {}) => {
    const out: Record<string, string> = { ...process.env as Record<string, string>, CNI_COMMAND: command, CNI_PATH: `${join(dir, 'bin')}:${REF}` };
    for (const k of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS']) delete out[k];
    if (e.containerId) out.CNI_CONTAINERID = e.containerId;
    if (e.netns) out.CNI_NETNS = e.netns;
    if (e.ifname) out.CNI_IFNAME = e.ifname;
    return out;
  };
  const run = (command: string, c: unknown, e = {}) => spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(c), env: env(command, e), encoding: 'utf8', timeout: 60_000 });
  const start = (command: string, c: unknown, e = {}) => {
    const child = spawn(process.execPath, [PLUGIN], { env: env(command, e), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.stdin.end(JSON.stringify(c));
    const done = new Promise<{ code: number | null; signal: string | null; out: string; err: string; at: number }>((r) => child.once('close', (code, signal) => r({ code, signal, out, err, at: Date.now() })));
    return { child, done, err: () => err };
  };
  const waitFor = async (what: () => boolean, label: string) => {
    for (let i = 0; i < 1000 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!what()) throw new Error(`timed out waiting for ${label}`);
  };
  const info = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string }).map((l) => `${l.level}: ${l.msg}`);
  /** Who holds VF `pci`, as `vfplane vf show --json` says, read in this process by the
   *  same code (the tree opened as the CLI opens it, the store as it is on disk) without
   *  a Node process per look: the CLI is not what this file is about. */
  const holder = (pci: string) => {
    const shown = JSON.parse(JSON.stringify(vfShowView(new Sysfs(m.root, simKernel(m.root)), { sysfsRoot: m.root, stateDir: state, json: true }, pci)));
    return (shown as { allocation: { owner: { containerId?: string } } | null }).allocation?.owner.containerId ?? null;
  };
  const leases = () => (existsSync(join(dir, 'ipam', 'pbnet')) ? readdirSync(join(dir, 'ipam', 'pbnet')).filter((f) => /^\d/.test(f)) : []);
  const homeAsBefore = (vf: string) => {
    const l = JSON.parse(spawnSync('ip', ['-j', 'link', 'show', 'dev', vf], { encoding: 'utf8' }).stdout || '[]') as { ifname: string }[];
    return l.length === 1;
  };
  /** A pod with VF `pci` (virtfn `vf` of PF 0): its namespace and CNI environment. */
  const addPod = (tag: string, pci: string) => {
    const p = Netns.create(tag);
    pods.push(p);
    const e = { containerId: `${tag}0001`, netns: `/run/netns/${p.name}`, ifname: 'net1' };
    const r = run('ADD', conf({ deviceID: pci }), e);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(holder(pci)).toBe(e.containerId);
    return e;
  };

  beforeAll(() => {
    sweepStaleSims();
    m = makeSim({ profile: 'x710', pfs: 1, vfs: 4 });
    dir = mkdtempSync(join(tmpdir(), 'vfplane-putback-'));
    state = join(dir, 'state');
    for (const d of ['bin', 'marks', 'ipam']) spawnSync('mkdir', ['-p', join(dir, d)]);
    writeFileSync(slowIpam(), `#!/bin/sh\nif [ "$CNI_COMMAND" = DEL ]; then touch ${join(dir, 'marks')}/$$; i=0; while [ -e ${holdFile()} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; fi\nexec ${REF}/host-local\n`, { mode: 0o755 });
  });
  afterAll(() => {
    letGo();
    for (const p of pods) p.destroy();
    dropAllSims();
    rmSync(dir, { recursive: true, force: true });
  });

  it('CNI GC leaves a VF its DEL is putting back to that DEL (no failure, nothing released under it); the DEL finishes the release', async () => {
    const pci = '0000:5e:02.0';
    const e = addPod('pbgc', pci);
    const marks = delStarted();
    hold();
    const del = start('DEL', conf({ deviceID: pci }), e);
    // The DEL has brought the netdev home and holds the put-back while its IPAM DEL runs.
    await waitFor(() => delStarted() > marks, 'the DEL to reach its IPAM DEL');
    const gc = run('GC', conf({ 'cni.dev/valid-attachments': [] }));
    expect(gc.status, gc.stdout + gc.stderr).toBe(0);
    expect(info(gc.stderr)).toContainEqual(expect.stringMatching(new RegExp(`^info: GC: VF ${pci.replace(/\./g, '\\.')} of .*pbgc0001.* is being put back by CNI DEL of .*pbgc0001.* \\(pid \\d+\\); left to it$`)));
    // GC's own IPAM DEL would have run (and been held): it did not start one.
    expect(delStarted()).toBe(marks + 1);
    // Still the pod's, until the DEL releases it.
    expect(holder(pci)).toBe(e.containerId);
    letGo();
    const d = await del.done;
    expect(d.code, d.out + d.err).toBe(0);
    expect(holder(pci)).toBeNull();
    expect(leases()).toEqual([]);
    expect(homeAsBefore(`${m.prefix}f0v0`)).toBe(true);
  }, 60_000);

  it('a DEL waits for CNI GC putting its VF back, then succeeds with nothing left to give back', async () => {
    const pci = '0000:5e:02.1';
    const e = addPod('pbdel', pci);
    const marks = delStarted();
    hold();
    const gc = start('GC', conf({ 'cni.dev/valid-attachments': [] }));
    await waitFor(() => delStarted() > marks, 'GC to reach its IPAM DEL');
    const del = start('DEL', conf({ deviceID: pci }), e);
    // GC holds the put-back while the DEL starts and finds it held, and says it waits.
    await waitFor(() => del.err().includes('waiting for it'), 'the DEL to wait for GC');
    expect(info(del.err())).toContainEqual(expect.stringMatching(new RegExp(`^info: DEL: VF ${pci.replace(/\./g, '\\.')} is being put back by CNI GC \\(pid \\d+\\): waiting for it$`)));
    letGo();
    const [g, d] = await Promise.all([gc.done, del.done]);
    expect(g.code, g.out + g.err).toBe(0);
    expect(d.code, d.out + d.err).toBe(0);
    // The DEL returned only once GC had released the VF, and said so.
    expect(d.at).toBeGreaterThanOrEqual(g.at - 50);
    expect(info(d.err)).toContainEqual(`info: DEL: VF ${pci} of container ${e.containerId} net1 was put back and released meanwhile (CNI GC)`);
    expect(holder(pci)).toBeNull();
    expect(leases()).toEqual([]);
    expect(homeAsBefore(`${m.prefix}f0v1`)).toBe(true);
  }, 60_000);

  // Before: `vf release --force` that lost the race to the pod's own DEL exited 1,
  // "released by someone else meanwhile", for a release that was done.
  it('vf release --force beside the pod\'s DEL waits for it, then says the DEL released it: exit 0, nothing touched', async () => {
    const pci = '0000:5e:02.1'; // the test above released it
    const e = addPod('pbrel', pci);
    const marks = delStarted();
    hold();
    const del = start('DEL', conf({ deviceID: pci }), e);
    await waitFor(() => delStarted() > marks, 'the DEL to reach its IPAM DEL');
    // The release starts while the DEL holds the put-back, and says it waits for it.
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'vfplane.js'), 'vf', 'release', pci, '--force', '--json', '--sysfs-root', m.root, '--state-dir', state], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const relDone = new Promise<number | null>((r) => child.once('close', r));
    await waitFor(() => stderr.includes('waiting'), 'the release to wait for the DEL');
    expect(stderr).toMatch(new RegExp(`^VF ${pci.replace(/\./g, '\\.')} is being put back by CNI DEL of .*pbrel0001.* \\(pid \\d+\\): waiting for it \\(up to \\d+ s\\)$`, 'm'));
    letGo();
    const rel = { code: await relDone, stdout, stderr };
    expect(rel.code, rel.stderr).toBe(0);
    expect(JSON.parse(rel.stdout)).toEqual([{ pci, owner: expect.objectContaining({ containerId: e.containerId }), id: expect.any(Number), putBack: [{ step: 'released-meanwhile', by: 'CNI DEL' }] }]);
    const d = await del.done;
    expect(d.code, d.out + d.err).toBe(0);
    expect(holder(pci)).toBeNull();
    expect(leases()).toEqual([]);
    expect(homeAsBefore(`${m.prefix}f0v1`)).toBe(true);
  }, 60_000);

  // helper-100: the lock file was opened through a symlink (the holder's note truncated
  // what it named) and, a directory there, the lock was off without a word.
  it('a lock path that is a symlink or a directory is neither followed nor taken for a lock: the DEL goes on, warning to remove it', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep me\n');
    for (const [tag, make] of [['pblink', (f: string) => symlinkSync(victim, f)], ['pbdir', (f: string) => mkdirSync(f)]] as const) {
      const pci = '0000:5e:02.3';
      const e = addPod(tag, pci);
      const file = join(state, `putback-${pci}.lock`);
      rmSync(file, { recursive: true, force: true });
      make(file);
      const del = run('DEL', conf({ deviceID: pci }), e);
      expect(del.status, del.stdout + del.stderr).toBe(0);
      expect(info(del.stderr)).toContainEqual(expect.stringMatching(new RegExp(`^warning: DEL: VF ${pci.replace(/\./g, '\\.')} is put back without its put-back lock \\(.*\\): another releaser .*; remove ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, which is not a lock file vfplane made$`)));
      expect(holder(pci)).toBeNull();
      rmSync(file, { recursive: true, force: true });
    }
    expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
  }, 60_000);

  it('a DEL killed while it holds the put-back does not hold it: the retried DEL finishes at once', async () => {
    const pci = '0000:5e:02.2';
    const e = addPod('pbkill', pci);
    const marks = delStarted();
    hold();
    const del = start('DEL', conf({ deviceID: pci }), e);
    await waitFor(() => delStarted() > marks, 'the DEL to reach its IPAM DEL');
    del.child.kill('SIGKILL');
    expect((await del.done).signal).toBe('SIGKILL');
    letGo(); // its IPAM plugin, orphaned, goes on as it did after its sleep
    expect(holder(pci)).toBe(e.containerId); // killed before its release
    // A lock that outlived its holder would keep this DEL waiting, then refuse it (code 11).
    const again = run('DEL', conf({ deviceID: pci }), e);
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(holder(pci)).toBeNull();
    expect(leases()).toEqual([]);
    // The lock file went with the release.
    expect(readdirSync(state).filter((f) => f.startsWith('putback-'))).toEqual([]);
  }, 60_000);
});
