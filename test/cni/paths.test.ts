// The paths a network config names, taken by vfplane-cni (root) only where they are root's
// alone: a network config is written by whoever may make a NetworkAttachmentDefinition,
// and stateDir, sysfsRoot, poolsFile, vxlan.socket and logFile would otherwise let them
// forge the node's allocation store, name the host's netdevs as VFs, or make root write
// files anywhere. Run exactly as a runtime runs the plugin, on a simulated NIC with a real
// pod namespace and host-local IPAM; the other user is uid 65534 (nobody).
import { spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns } from '../helpers/netns.js';
import { dropSim, makeSim, simPrefix } from '../helpers/sim.js';
import { ROOT, vfplane } from '../helpers/cli.js';
import type { SimManifest } from '../../src/sim/manifest.js';

const PLUGIN = join(ROOT, 'bin', 'vfplane-cni.js');
const REF = '/usr/lib/cni';
const NOBODY = 65534;

describePrivileged('vfplane-cni takes the paths of a network config only where they are root\'s alone', { netns: true, commands: [`${REF}/host-local`] }, () => {
  let m: SimManifest;
  let work: string;
  let pod: Netns;

  const run = (command: string, conf: Record<string, unknown>, extra: Record<string, string> = {}) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CNI_') && k !== 'VFPLANE_CNI_LOG_DIRS') env[k] = v;
    Object.assign(env, { CNI_COMMAND: command, CNI_CONTAINERID: 'trust0001', CNI_NETNS: pod.path, CNI_IFNAME: 'net1', CNI_PATH: REF }, extra);
    const r = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(conf), env, encoding: 'utf8', timeout: 60_000 });
    let out: any = null;
    try {
      out = r.stdout.trim() ? JSON.parse(r.stdout) : null;
    } catch {
      out = r.stdout;
    }
    return { code: r.status ?? -1, out, stderr: r.stderr };
  };
  const ipamDir = () => join(work, 'ipam');
  const base = (over: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0', name: 'trustnet', type: 'vfplane-cni', deviceID: '0000:5e:02.0',
    sysfsRoot: m.root, stateDir: join(work, 'state'),
    ipam: { type: 'host-local', subnet: '10.57.0.0/24', dataDir: ipamDir() },
    ...over,
  });
  const vf0 = () => `${m.prefix}f0v0`;
  /** What a refused call must leave as it was: the VF's netdev on the host, no lease, the store. */
  const hostState = (stateDir = join(work, 'state')) => ({
    vfOnHost: spawnSync('ip', ['link', 'show', vf0()]).status === 0,
    podLinks: pod.ip(['-br', 'link']).trim().split('\n').length,
    leases: existsSync(join(ipamDir(), 'trustnet')) ? readdirSync(join(ipamDir(), 'trustnet')).filter((f) => /^\d/.test(f)) : [],
    store: existsSync(join(stateDir, 'alloc.db')),
  });

  beforeAll(() => {
    m = makeSim({ profile: 'x710', pfs: 1, vfs: 4 });
    work = mkdtempSync(join(tmpdir(), 'vfplane-trust-'));
    pod = Netns.create('trust');
  });
  afterAll(() => {
    pod?.destroy();
    if (m) dropSim(m.root);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ADD refuses a sysfs tree, store, pool file or socket someone other than root could have made or changed, and changes nothing', async () => {
    const before = hostState();
    const refused = (conf: Record<string, unknown>, msg: string, stateDir?: string) => {
      const r = run('ADD', conf);
      expect([r.code, r.out?.code], JSON.stringify(r.out)).toEqual([1, 7]);
      expect(r.out.msg).toContain(msg);
      expect(hostState(stateDir)).toEqual(before);
    };
    // A simulated tree handed to another user (it could now name eth0 as a VF's netdev).
    chownSync(m.root, NOBODY, NOBODY);
    try {
      refused(base(), `sysfsRoot ${m.root}: ${m.root} belongs to uid 65534, not root`);
    } finally {
      chownSync(m.root, 0, 0);
    }
    // Reached through another user's symlink.
    const link = join(work, 'sim-link');
    symlinkSync(m.root, link);
    lchownSync(link, NOBODY, NOBODY);
    refused(base({ sysfsRoot: link }), `${link} belongs to uid 65534, not root`);
    // A sysfs-shaped directory the simulator did not make.
    const plain = join(work, 'plain-sysfs');
    mkdirSync(join(plain, 'bus', 'pci', 'devices'), { recursive: true });
    refused(base({ sysfsRoot: plain }), `is not a tree \`vfplane sim create\` made`);

    // A store directory another user owns, and one in a directory anyone may write.
    const users = join(work, 'users-state');
    mkdirSync(users);
    chownSync(users, NOBODY, NOBODY);
    refused(base({ stateDir: users }), `stateDir ${users}: ${users} belongs to uid 65534, not root`, users);
    const open = join(work, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    refused(base({ stateDir: join(open, 's') }), `${open} may be written by others than root (mode 0777)`, join(open, 's'));

    // Pool definitions another user wrote.
    const pools = join(work, 'pools.json');
    writeFileSync(pools, JSON.stringify({ pools: [{ name: 'all', selector: { drivers: ['iavf'] } }] }));
    chownSync(pools, NOBODY, NOBODY);
    refused(base({ deviceID: undefined, pool: 'all', poolsFile: pools }), `poolsFile ${pools}: ${pools} belongs to uid 65534, not root`);

    // A data plane socket another user listens on.
    const sock = join(work, 'dp.sock');
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      chownSync(sock, NOBODY, NOBODY);
      refused(base({ vxlan: { vni: 100, socket: sock } }), `vxlan.socket ${sock}: ${sock} belongs to uid 65534, not root`);
    } finally {
      server.close();
    }

    // The same config with the paths root's: ADD goes through (the refusals were the paths).
    const ok = run('ADD', base());
    expect(ok.code, JSON.stringify(ok.out)).toBe(0);
    expect(run('DEL', base()).code).toBe(0);
    expect(hostState()).toEqual({ ...before, store: true });
  });

  it('DEL of a config whose store is no longer root\'s alone succeeds without acting on it; GC refuses it', () => {
    const stateDir = join(work, 'handed-over');
    const conf = base({ stateDir });
    const add = run('ADD', conf);
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    const db = readFileSync(join(stateDir, 'alloc.db'));
    chownSync(stateDir, NOBODY, NOBODY);
    try {
      const del = run('DEL', conf);
      expect(del.code, JSON.stringify(del.out)).toBe(0);
      expect(del.stderr).toContain(`DEL: not acting on the allocation store: stateDir ${stateDir}: ${stateDir} belongs to uid 65534`);
      // Not read, not written: the allocation stands (the operator's gc, or a DEL once the
      // directory is root's again, gives it back).
      expect(readFileSync(join(stateDir, 'alloc.db')).equals(db)).toBe(true);
      const gc = run('GC', { ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] });
      expect([gc.code, gc.out?.code]).toEqual([1, 7]);
      const held = vfplane(['vf', 'list', '--allocated', '--sysfs-root', m.root, '--state-dir', stateDir, '--json']);
      expect((JSON.parse(held.stdout) as { pci: string }[]).map((v) => v.pci)).toEqual(['0000:5e:02.0']);
    } finally {
      chownSync(stateDir, 0, 0);
    }
    const del = run('DEL', conf);
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    expect(JSON.parse(vfplane(['vf', 'list', '--allocated', '--sysfs-root', m.root, '--state-dir', stateDir, '--json']).stdout)).toEqual([]);
    expect(spawnSync('ip', ['link', 'show', vf0()]).status).toBe(0);
  });

  // Never made, and the pod is not failed for it (Ubuntu's /var/log is root:syslog 0775,
  // which the rule does not take as root's alone: refusing every ADD there was worse than
  // logging to stderr, helper-70): the lines go to stderr with a warning saying why.
  it('a logFile outside the log directories is never made: ADD and DEL go on, logging to stderr', () => {
    const stray = `/etc/vfplane-test-${process.pid}.log`;
    const add = run('ADD', base({ logFile: stray }));
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    expect(add.stderr).toContain(`logFile ${stray} is outside the log directories (/var/log)`);
    expect(existsSync(stray)).toBe(false);
    const del = run('DEL', base({ logFile: stray }));
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    expect(del.stderr).toContain(`logFile ${stray} is outside the log directories`);
    expect(existsSync(stray)).toBe(false);

    // A directory the node's operator lists (the runtime's environment) is a log directory;
    // a symlink in it that leads out is not.
    const logs = join(work, 'logs');
    mkdirSync(logs);
    const lines = join(logs, 'cni.log');
    const listed = { VFPLANE_CNI_LOG_DIRS: logs };
    const ok = run('ADD', base({ logFile: lines, logLevel: 'info' }), listed);
    expect(ok.code, JSON.stringify(ok.out)).toBe(0);
    expect(run('DEL', base({ logFile: lines, logLevel: 'info' }), listed).code).toBe(0);
    expect(readFileSync(lines, 'utf8')).toContain('"msg":"DEL done: VF 0000:5e:02.0 released');
    const out = join(work, 'elsewhere');
    mkdirSync(join(out, 'x', 'y'), { recursive: true });
    symlinkSync(out, join(logs, 'out'));
    const through = run('ADD', base({ logFile: join(logs, 'out', 'x.log') }), listed);
    expect(through.code, JSON.stringify(through.out)).toBe(0);
    expect(through.stderr).toContain(`leads out of the log directories (/var/log, ${logs}) to ${out}, through a symlink`);
    expect(existsSync(join(out, 'x.log'))).toBe(false);
    expect(run('DEL', base({ logFile: join(logs, 'out', 'x.log') }), listed).code).toBe(0);
    // A ".." after a symlink is the kernel's to resolve (against the link's target): a
    // config with one is refused, and the file it would lead to is not made either.
    symlinkSync(join(out, 'x', 'y'), join(logs, 'A'));
    const dotdot = run('ADD', base({ logFile: join(logs, 'A') + '/../../nologin' }), listed);
    expect([dotdot.code, dotdot.out?.code]).toEqual([1, 7]);
    expect(existsSync(join(out, 'nologin'))).toBe(false);
  });

  // Paths checked only when present were swapped in between the check and the use; paths
  // through /proc/PID/root lead into another mount namespace (helper-70).
  it('a sysfsRoot or poolsFile missing at the check, and paths through /proc, are refused', () => {
    const users = join(work, 'users-later');
    mkdirSync(users);
    chownSync(users, NOBODY, NOBODY);
    // A tree missing at the config's check is checked again where it is opened.
    const missingTree = run('ADD', base({ sysfsRoot: join(users, 'tree') }));
    expect([missingTree.code, missingTree.out?.code]).toEqual([1, 7]);
    expect(missingTree.out.msg).toBe(`sysfsRoot ${join(users, 'tree')} does not exist`);
    const missingPools = run('ADD', base({ deviceID: undefined, pool: 'all', poolsFile: join(users, 'pools.json') }));
    expect([missingPools.code, missingPools.out?.code]).toEqual([1, 7]);
    expect(missingPools.out.msg).toContain(`poolsFile ${join(users, 'pools.json')}: ${users} belongs to uid 65534, not root`);
    const pools = join(work, 'root-pools.json');
    writeFileSync(pools, JSON.stringify({ pools: [{ name: 'all', selector: { drivers: ['iavf'] } }] }));
    const viaProc = run('ADD', base({ deviceID: undefined, pool: 'all', poolsFile: `/proc/self/root${pools}` }));
    expect([viaProc.code, viaProc.out?.code]).toEqual([1, 7]);
    expect(viaProc.out.msg).toContain(`/proc/self/root${pools} goes through /proc`);
    expect(spawnSync('ip', ['link', 'show', vf0()]).status).toBe(0);
  });

  it('what is wrong in a pool file only root may read goes to the log, not into the error', () => {
    const pools = join(work, 'secret-pools.json');
    writeFileSync(pools, JSON.stringify({ pools: [{ name: 'all', selector: { drivers: 'TOPSECRET-4711' } }] }), { mode: 0o600 });
    const r = run('ADD', base({ deviceID: undefined, pool: 'all', poolsFile: pools }));
    expect([r.code, r.out?.code]).toEqual([1, 7]);
    expect(r.out.msg).toContain(`poolsFile ${pools} is not a valid pool file; what is wrong is in the plugin's log`);
    expect(JSON.stringify(r.out)).not.toContain('TOPSECRET');
    expect(r.stderr).toContain('TOPSECRET');
    // A file anyone may read is quoted as before: it tells nobody anything new.
    chmodSync(pools, 0o644);
    const open = run('ADD', base({ deviceID: undefined, pool: 'all', poolsFile: pools }));
    expect(open.out.msg).toBe(`${pools}: pools[0].selector.drivers: "TOPSECRET-4711": expected a list`);
  });

  it('sim create builds a tree only where it will be root\'s alone', () => {
    const prefix = simPrefix();
    const open = join(work, 'open-sim');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const r = vfplane(['sim', 'create', '--profile', 'x710', '--pfs', '1', '--vfs', '2', '--no-netdevs', '--root', join(open, 'sim'), '--prefix', prefix]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`--root ${join(open, 'sim')}: ${open} may be written by others than root (mode 0777)`);
    expect(readdirSync(open)).toEqual([]);
    const theirs = join(work, 'their-sim');
    mkdirSync(theirs);
    chownSync(theirs, NOBODY, NOBODY);
    const t = vfplane(['sim', 'create', '--profile', 'x710', '--pfs', '1', '--vfs', '2', '--no-netdevs', '--root', theirs, '--prefix', prefix]);
    expect(t.code, t.stderr).toBe(1);
    expect(t.stderr).toContain(`${theirs} belongs to uid 65534`);
    expect(readdirSync(theirs)).toEqual([]);
    // A new directory in /tmp (anyone may write there, the sticky bit keeps it the maker's)
    // is made by the create itself, so it is root's.
    const fresh = join(tmpdir(), `vfplane-trust-sim-${process.pid}`);
    try {
      const f = vfplane(['sim', 'create', '--profile', 'x710', '--pfs', '1', '--vfs', '2', '--no-netdevs', '--root', fresh, '--prefix', prefix]);
      expect(f.code, f.stderr).toBe(0);
      // What was made, not only what the family allows.
      expect(f.stdout).toMatch(new RegExp(`: 1 PF\\(s\\), 64 VFs max each\\n  PF [0-9a-f:.]+  2 VF\\(s\\)  no netdevs\\n`));
      expect(execFileSync('stat', ['-c', '%u %a', fresh], { encoding: 'utf8' }).trim()).toBe('0 755');
    } finally {
      vfplane(['sim', 'destroy', '--root', fresh]);
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
