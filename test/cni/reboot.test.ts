// A node after a reboot, on the simulated NIC: the allocation store and the IPAM leases
// survive (they are on disk), the pods' namespaces do not, and the NIC may come back with
// fewer VFs (a changed sriov_numvfs policy). Whichever cleanup comes first, the runtime's
// DEL for a lost sandbox (CNI_NETNS empty), its CNI GC, or the operator's `vfplane gc`,
// must release the VFs and the addresses, and a new pod must be told why a VF is held.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns } from '../helpers/netns.js';
import { dropAllSims, makeSim, sweepStaleSims } from '../helpers/sim.js';
import { createSim, destroySim } from '../../src/sim/sim.js';
import { ROOT, vfplane } from '../helpers/cli.js';
import { openSysfs } from '../../src/sriov/sysfs.js';
import type { SimManifest } from '../../src/sim/manifest.js';
import { AllocStore } from '../../src/alloc/store.js';

const PLUGIN = join(ROOT, 'bin', 'vfplane-cni.js');
const REF = '/usr/lib/cni';

describePrivileged('after a reboot: dead pods\' VFs and addresses come back', { netns: true, commands: [`${REF}/host-local`] }, () => {
  let m: SimManifest;
  let state: string;
  let ipamDir: string;
  const pods: Netns[] = [];

  const conf = (extra: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0', name: 'rbnet', type: 'vfplane-cni', sysfsRoot: m.root, stateDir: state,
    ipam: { type: 'host-local', subnet: '10.57.0.0/24', dataDir: ipamDir }, ...extra,
  });
  const cni = (command: string, c: unknown, cid: string, netns: string) => {
    const env: Record<string, string> = { ...process.env as Record<string, string>, CNI_COMMAND: command, CNI_PATH: REF, CNI_CONTAINERID: cid, CNI_NETNS: netns, CNI_IFNAME: 'net1',
      CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-${cid}` };
    const r = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(c), env, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? -1, out: r.stdout.trim() ? JSON.parse(r.stdout) : null };
  };
  const cli = (args: string[]) => vfplane([...args, '--sysfs-root', m.root, '--state-dir', state]);
  const leases = () => (existsSync(join(ipamDir, 'rbnet')) ? readdirSync(join(ipamDir, 'rbnet')).filter((f) => /^\d/.test(f)).sort() : []);
  const allocated = () => JSON.parse(cli(['vf', 'list', '--allocated', '--json']).stdout) as { pci: string; gone?: boolean; allocation: { owner: { containerId: string } } }[];
  /** Pods c0..c3 on VFs 02.0..02.3 (kernel mode), each with an address. */
  const podsUp = () => {
    for (let i = 0; i < 4; i++) {
      const p = Netns.create(`rb${i}`);
      pods.push(p);
      const r = cni('ADD', conf({ deviceID: `0000:5e:02.${i}` }), `c${i}`, p.path);
      expect(r.code, JSON.stringify(r.out)).toBe(0);
    }
    expect(leases()).toHaveLength(4);
  };
  /** The reboot: every pod's namespace gone (Linux returns the VF netdevs to the host),
   *  and the NIC made anew with `vfs` VFs. */
  const reboot = async (vfs: number, o: { cli?: boolean } = {}) => {
    for (const p of pods.splice(0)) p.destroy();
    // The kernel deletes a namespace's veths a moment after `ip netns del` returns; the
    // simulator puts the VFs back (as Linux returns physical netdevs) once they are gone.
    const reps = [0, 1, 2, 3].map((i) => `/sys/class/net/${m.prefix}f0r${i}`);
    for (let t = 0; t < 500 && reps.some((r) => existsSync(r)); t++) await new Promise((r) => setTimeout(r, 10));
    const sysfs = await openSysfs(m.root);
    sysfs.write('bus/pci/devices/0000:5e:00.0/sriov_numvfs', '0');
    if (!o.cli) return void sysfs.write('bus/pci/devices/0000:5e:00.0/sriov_numvfs', String(vfs));
    // As an operator (or the boot's SR-IOV policy) makes them: told which come back held.
    const r = cli(['pf', 'set-numvfs', `${m.prefix}f0`, String(vfs)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/note: VF 0000:5e:02\.0 is made again, and still held by pod default\/pod-c0 .*vfplane gc/);
  };

  beforeAll(() => {
    sweepStaleSims();
    m = makeSim({ profile: 'x710', pfs: 1, vfs: 4 });
    state = mkdtempSync(join(tmpdir(), 'vfplane-rb-state-'));
    ipamDir = mkdtempSync(join(tmpdir(), 'vfplane-rb-ipam-'));
  });
  afterAll(() => {
    for (const p of pods) p.destroy();
    dropAllSims();
    for (const d of [state, ipamDir]) rmSync(d, { recursive: true, force: true });
  });

  it('with fewer VFs: vf list shows the vanished ones still held; their DEL and gc release them and their addresses', async () => {
    podsUp();
    await reboot(2);
    // 02.2 and 02.3 no longer exist, and are still held.
    const held = allocated();
    expect(held.map((r) => [r.pci, !!r.gone])).toEqual([['0000:5e:02.0', false], ['0000:5e:02.1', false], ['0000:5e:02.2', true], ['0000:5e:02.3', true]]);
    expect(cli(['vf', 'list', '--allocated']).stdout).toMatch(/0000:5e:02\.2, 0000:5e:02\.3: no longer on this node.*vfplane gc/);
    // Read against a tree that is not the store's (the simulated NIC's root not given):
    // the store keeps that node's VFs, and says which root it is, rather than read every
    // VF as gone (or another tree's VFs of the same addresses as these).
    const empty = mkdtempSync(join(tmpdir(), 'vfplane-rb-empty-'));
    try {
      const elsewhere = vfplane(['vf', 'list', '--allocated', '--sysfs-root', empty, '--state-dir', state]);
      expect(elsewhere.code, elsewhere.stderr).toBe(2);
      expect(elsewhere.stderr).toContain(`holds 4 VFs (0000:5e:02.0, …) of the node whose sysfs root is ${realpathSync(m.root)}, and this one's is ${realpathSync(empty)}`);
      expect(elsewhere.stderr).toContain(`or use --sysfs-root ${realpathSync(m.root)}`);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    // The runtime's DEL for the lost sandbox (no netns, as containerd sends it): done.
    const del = cni('DEL', conf({ deviceID: '0000:5e:02.2' }), 'c2', '');
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    expect(allocated().map((r) => r.pci)).not.toContain('0000:5e:02.2');
    expect(leases()).toHaveLength(3);
    // The operator releasing one by hand: its dead pod's address goes with it.
    const rel = cli(['vf', 'release', '0000:5e:02.0', '--force']);
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout).toMatch(/IPAM host-local: address released/);
    expect(leases()).toHaveLength(2);
    // The operator's gc for the rest: every VF released, the vanished one too, and every
    // address with it (no runtime call carries the network config for those).
    const gc = cli(['gc']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/VF 0000:5e:02\.3 no longer exists; nothing to restore/);
    expect(gc.stdout).toMatch(/IPAM host-local: address released/);
    expect(allocated()).toEqual([]);
    expect(leases()).toEqual([]);
    // A second gc, and CNI GC, have nothing left to do.
    expect(cli(['gc']).code).toBe(0);
  });

  it('with the VFs back: a new pod asking for a dead pod\'s VF is told it is gone and who releases it; CNI GC frees VFs and addresses', async () => {
    await reboot(4);
    podsUp();
    await reboot(4, { cli: true });
    const p = Netns.create('rbnew');
    pods.push(p);
    const before = leases();
    const add = cni('ADD', conf({ deviceID: '0000:5e:02.0' }), 'n0', p.path);
    expect(add.code).toBe(1);
    expect(add.out).toMatchObject({ code: 11, msg: expect.stringMatching(/still held by pod default\/pod-c0.*network namespace \S+ no longer exists but its DEL has not run.*vfplane gc/) });
    expect(leases()).toEqual(before);
    // The runtime's GC (no valid attachments left of this network) releases all four.
    const gcConf = { ...conf(), cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] };
    const env: Record<string, string> = { ...process.env as Record<string, string>, CNI_COMMAND: 'GC', CNI_PATH: REF };
    const gc = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(gcConf), env, encoding: 'utf8', timeout: 60_000 });
    expect(gc.status, gc.stdout).toBe(0);
    expect(allocated()).toEqual([]);
    expect(leases()).toEqual([]);
    const again = cni('ADD', conf({ deviceID: '0000:5e:02.0' }), 'n0', p.path);
    expect(again.code, JSON.stringify(again.out)).toBe(0);
    expect(cni('DEL', conf({ deviceID: '0000:5e:02.0' }), 'n0', p.path).code).toBe(0);
    expect(leases()).toEqual([]);
  });

  // What an allocation recorded as the VF's original state belongs to a VF instance the
  // reboot ended: the VF at that address now is as the boot (and its policy) made it.
  it('a real reboot (the NIC made anew): DEL and gc leave the VFs as the boot made them, not as they were before it', async () => {
    const vfio = cli(['vf', 'bind', '0000:5e:02.3', '--driver', 'vfio-pci']);
    expect(vfio.code, vfio.stderr).toBe(0);
    const pd = Netns.create('rbd');
    const pk = Netns.create('rbk');
    pods.push(pd, pk);
    expect(cni('ADD', conf({ deviceID: '0000:5e:02.3', vlan: 7 }), 'd3', pd.path).code).toBe(0);
    expect(cni('ADD', conf({ deviceID: '0000:5e:02.0', vlan: 5 }), 'k0', pk.path).code).toBe(0);
    // The reboot: pods gone, the NIC made anew (every VF on iavf, no VLAN), then the boot's
    // policy gives VF 02.0 VLAN 9.
    for (const p of pods.splice(0)) p.destroy();
    // (k0's VF pair goes with its namespace, a moment after `ip netns del`.)
    for (let t = 0; t < 500 && existsSync(`/sys/class/net/${m.prefix}f0r0`); t++) await new Promise((r) => setTimeout(r, 10));
    destroySim(m.root);
    m = createSim({ profile: 'x710', pfs: 1, vfs: 4, prefix: m.prefix, root: m.root });
    expect(cli(['vf', 'config', '0000:5e:02.0', '--vlan', '9', '--force']).code).toBe(0);
    const show = (pci: string) => JSON.parse(cli(['vf', 'show', pci, '--json']).stdout) as { driver: string; settings: { vlan: number }; allocation: unknown };
    expect(show('0000:5e:02.3').driver).toBe('iavf');
    // The lost sandbox's DEL: released, and not bound back to vfio-pci.
    const del = cni('DEL', conf({ deviceID: '0000:5e:02.3', vlan: 7 }), 'd3', '');
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    expect(show('0000:5e:02.3')).toMatchObject({ driver: 'iavf', settings: { vlan: 0 }, allocation: null });
    // gc: released, VLAN 9 (the boot's) kept rather than the pre-reboot 0.
    const gc = cli(['gc']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/VF 0000:5e:02\.0 was allocated before this boot .*left as the boot made it/);
    expect(show('0000:5e:02.0')).toMatchObject({ driver: 'iavf', settings: { vlan: 9 }, allocation: null });
    expect(leases()).toEqual([]);
  });

  // The wall clock stepped forward after the ADD (a VM whose clock NTP corrects once its
  // pods run): the boot time read from the clock (btime; the simulator's creation time
  // here) moves past the allocation, which then looked older than the boot, and DEL left
  // the pod's VLAN and trust on the VF for the next pod. The boot's id does not move.
  it('a wall-clock step after the ADD does not make its allocation look older than the boot: DEL still puts the VF back', async () => {
    const p = Netns.create('rbclk');
    pods.push(p);
    expect(cni('ADD', conf({ deviceID: '0000:5e:02.1', vlan: 11, trust: 'on' }), 'clk1', p.path).code).toBe(0);
    const manifest = join(m.root, 'vfplane-sim.json');
    const before = readFileSync(manifest, 'utf8');
    const j = JSON.parse(before) as { createdAt: string; bootId?: string };
    expect(j.bootId).toMatch(/^[0-9a-f-]{36}$/);
    writeFileSync(manifest, JSON.stringify({ ...j, createdAt: new Date(Date.now() + 5 * 60_000).toISOString() }, null, 2));
    try {
      const del = cni('DEL', conf({ deviceID: '0000:5e:02.1', vlan: 11, trust: 'on' }), 'clk1', p.path);
      expect(del.code, JSON.stringify(del.out)).toBe(0);
      const vf = JSON.parse(cli(['vf', 'show', '0000:5e:02.1', '--json']).stdout) as { settings: { vlan: number; trust: boolean }; allocation: unknown; netdev: string };
      expect(vf).toMatchObject({ settings: { vlan: 0, trust: false }, allocation: null, netdev: `${m.prefix}f0v1` });
    } finally {
      writeFileSync(manifest, before);
    }
  });

  // A simulated NIC destroyed under its pods (`sim destroy` before their DELs): its sysfs
  // root is gone, and the pods' DELs must still release the VFs and their addresses
  // rather than fail for ever. ADD against the missing root is a config error.
  it('sim destroy under live pods warns which VFs are held; their DELs still release VFs and addresses', async () => {
    const pz = Netns.create('rbz');
    const py = Netns.create('rby');
    pods.push(pz, py);
    expect(cni('ADD', conf({ deviceID: '0000:5e:02.0' }), 'z0', pz.path).code).toBe(0);
    expect(cni('ADD', conf({ deviceID: '0000:5e:02.1' }), 'z1', py.path).code).toBe(0);
    expect(leases()).toHaveLength(2);
    const d = vfplane(['sim', 'destroy', '--root', m.root, '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(new RegExp(`note: 2 of its VFs were still held: 0000:5e:02\\.0 \\(pod default/pod-z0 .*store ${state}\\), 0000:5e:02\\.1 .*CNI DEL still releases each`));
    expect((JSON.parse(d.stdout) as { stillHeld: unknown[] }).stillHeld).toHaveLength(2);
    expect(existsSync(m.root)).toBe(false);
    const held = () => { const s = AllocStore.open(state); try { return s.list().map((a) => a.pci); } finally { s.close(); } };
    expect(held()).toEqual(['0000:5e:02.0', '0000:5e:02.1']);
    // A new pod's ADD: the config names a tree that is not there.
    const add = cni('ADD', conf({ deviceID: '0000:5e:02.2' }), 'z2', py.path);
    expect(add.code).toBe(1);
    expect(add.out).toMatchObject({ code: 7, msg: `sysfsRoot ${m.root} does not exist`, details: expect.stringMatching(/leave sysfsRoot out .*vfplane sim create/) });
    // The DELs: one with its pod's namespace still there, one for a lost sandbox; both
    // twice (DEL is idempotent).
    for (let i = 0; i < 2; i++) {
      const a = cni('DEL', conf({ deviceID: '0000:5e:02.0' }), 'z0', pz.path);
      expect(a.code, JSON.stringify(a.out)).toBe(0);
      const b = cni('DEL', conf({ deviceID: '0000:5e:02.1' }), 'z1', '');
      expect(b.code, JSON.stringify(b.out)).toBe(0);
    }
    expect(held()).toEqual([]);
    expect(leases()).toEqual([]);
  });
});
