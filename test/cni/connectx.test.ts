// ConnectX VFs (mlx5, bifurcated): DPDK's mlx5 PMD runs on a VF that stays on mlx5_core,
// its netdev in the pod, opened by its PCI address and RDMA device. The pod learns both
// from the device-info file the runtime asks for (the CNIDeviceInfoFile capability), and
// the device plugin's usual resource for such VFs selects them with isRdma (helper-101:
// no file was written, and a pools file with isRdma was refused whole).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { Netns } from '../helpers/netns.js';
import { dropAllSims, makeSim, sweepStaleSims } from '../helpers/sim.js';
import { ROOT, vfplane } from '../helpers/cli.js';
import type { SimManifest } from '../../src/sim/manifest.js';

const PLUGIN = join(ROOT, 'bin', 'vfplane-cni.js');
const REF = '/usr/lib/cni';

describePrivileged('vfplane-cni on a simulated ConnectX-6 Dx', { netns: true, commands: [`${REF}/host-local`] }, () => {
  let m: SimManifest;
  let dir: string;
  let state: string;
  let devroot: string;
  const pods: Netns[] = [];

  const conf = (over: Record<string, unknown> = {}) => ({
    cniVersion: '1.1.0', name: 'mlx', type: 'vfplane-cni', sysfsRoot: m.root, stateDir: state,
    capabilities: { CNIDeviceInfoFile: true }, ipam: { type: 'host-local', subnet: '10.62.0.0/24', dataDir: join(dir, 'ipam') }, ...over,
  });
  const run = (command: string, c: unknown, e: { containerId?: string; netns?: string; ifname?: string } = {}) => {
    const env: Record<string, string> = { ...process.env as Record<string, string>, CNI_COMMAND: command, CNI_PATH: REF, VFPLANE_DEVINFO_ROOT: devroot };
    for (const k of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS']) delete env[k];
    if (e.containerId) env.CNI_CONTAINERID = e.containerId;
    if (e.netns) env.CNI_NETNS = e.netns;
    if (e.ifname) env.CNI_IFNAME = e.ifname;
    const r = spawnSync(process.execPath, [PLUGIN], { input: JSON.stringify(c), env, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout.trim() ? JSON.parse(r.stdout) : null, stderr: r.stderr };
  };
  const vfp = (args: string[]) => {
    const r = vfplane([...args, '--sysfs-root', m.root, '--state-dir', state, '--json']);
    return { code: r.code, out: r.stdout.trim() ? JSON.parse(r.stdout) : null, stderr: r.stderr };
  };
  const pod = (tag: string) => {
    const p = Netns.create(tag);
    pods.push(p);
    return { p, e: { containerId: `${tag}0001`, netns: `/run/netns/${p.name}`, ifname: 'net1' } };
  };

  beforeAll(() => {
    sweepStaleSims();
    m = makeSim({ profile: 'cx6dx', pfs: 1, vfs: 3 });
    dir = mkdtempSync(join(tmpdir(), 'vfplane-cx-'));
    state = join(dir, 'state');
    devroot = join(dir, 'devinfo');
  });
  afterAll(() => {
    for (const p of pods) p.destroy();
    dropAllSims();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a VF on mlx5_core, as a DPDK pod gets one: its netdev in the pod and the device-info file asked for (PCI address, PF, RDMA device); CHECK holds it to the file; DEL removes it', () => {
    const vf = vfp(['vf', 'show', '0000:5e:02.0']).out as { driver: string; rdmaDevice?: string };
    expect(vf).toMatchObject({ driver: 'mlx5_core', rdmaDevice: expect.stringMatching(/^mlx5_\d+$/) });
    const { p, e } = pod('cxdpdk');
    const file = join(devroot, 'cni', 'default-mlx-cxdpdk0001_net1');
    const c = conf({ deviceID: '0000:5e:02.0', runtimeConfig: { CNIDeviceInfoFile: file } });
    const add = run('ADD', c, e);
    expect(add.code, JSON.stringify(add.out) + add.stderr).toBe(0);
    expect(add.out.interfaces).toEqual([expect.objectContaining({ name: 'net1', sandbox: e.netns, pciID: '0000:5e:02.0' })]);
    expect(p.ip(['-br', 'link', 'show', 'net1'])).toContain('net1');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      type: 'pci', version: '1.1.0',
      pci: { 'pci-address': '0000:5e:02.0', 'pf-pci-address': '0000:5e:00.0', 'rdma-device': vf.rdmaDevice },
    });
    expect(run('CHECK', { ...c, prevResult: add.out }, e).code).toBe(0);
    rmSync(file);
    const chk = run('CHECK', { ...c, prevResult: add.out }, e);
    expect(chk.out).toMatchObject({ code: 5, msg: `device-info file ${file} is missing` });
    writeFileSync(file, '{}');
    const del = run('DEL', c, e);
    expect(del.code, JSON.stringify(del.out)).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(vfp(['vf', 'show', '0000:5e:02.0']).out).toMatchObject({ allocation: null, netdev: expect.any(String) });
  });

  it('without the capability a kernel VF gets no device-info file, as before', () => {
    const { e } = pod('cxplain');
    const c = conf({ deviceID: '0000:5e:02.1' });
    delete (c as { capabilities?: unknown }).capabilities;
    expect(run('ADD', c, e).code).toBe(0);
    expect(existsSync(join(devroot, 'cni', `default-mlx-${e.containerId}_net1`))).toBe(false);
    expect(existsSync(join(devroot, 'cni', `mlx-${e.containerId}_net1`))).toBe(false);
    expect(existsSync(`/var/run/k8s.cni.cncf.io/devinfo/cni/mlx-${e.containerId}_net1`)).toBe(false);
    expect(run('DEL', c, e).code).toBe(0);
  });

  it('the device plugin\'s isRdma: true selects the VFs with an RDMA device (not one rebound to vfio-pci)', () => {
    const pools = join(dir, 'sriovdp.json');
    writeFileSync(pools, JSON.stringify({ resourceList: [{ resourceName: 'mlnx_rdma', selectors: { vendors: ['15b3'], isRdma: true } }] }));
    const bound = vfp(['vf', 'bind', '0000:5e:02.2', '--driver', 'vfio-pci', '--force']);
    expect(bound.code, bound.stderr).toBe(0);
    try {
      expect(vfp(['vf', 'show', '0000:5e:02.2']).out.rdmaDevice).toBeUndefined();
      const got: string[] = [];
      for (const owner of ['ns/a', 'ns/b']) {
        const a = vfp(['vf', 'alloc', '--pool', 'mlnx_rdma', '--pools', pools, '--owner', owner]);
        expect(a.code, a.stderr).toBe(0);
        got.push(a.out.pci);
      }
      expect(got.sort()).toEqual(['0000:5e:02.0', '0000:5e:02.1']);
      const full = vfp(['vf', 'alloc', '--pool', 'mlnx_rdma', '--pools', pools, '--owner', 'ns/c']);
      expect(full.code).toBe(1);
      expect(full.out.error.message).toMatch(/^no free VF in pool "mlnx_rdma": 2 VFs match, all allocated/);
      for (const owner of ['ns/a', 'ns/b']) expect(vfp(['vf', 'release', '--owner', owner]).code).toBe(0);
      // Handed to a pod so all the same (its operator forced it), but said.
      const { e } = pod('cxvfio');
      const add = run('ADD', conf({ deviceID: '0000:5e:02.2', ipam: undefined }), e);
      expect(add.code, JSON.stringify(add.out)).toBe(0);
      const warned = add.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warning').map((l) => l.msg);
      expect(warned).toContainEqual(expect.stringMatching(/^VF 0000:5e:02\.2 is a cx6dx VF bound to vfio-pci: DPDK's mlx5_eth PMD cannot use it so .*vfplane vf bind 0000:5e:02\.2 --driver kernel/));
      expect(run('DEL', conf({ deviceID: '0000:5e:02.2', ipam: undefined }), e).code).toBe(0);
    } finally {
      vfp(['vf', 'bind', '0000:5e:02.2', '--driver', 'kernel', '--force']);
    }
  });

  // helper-103: gc and vf release left the file behind, and so did a pool network's DEL
  // that came after them (it dropped one only when the config named a deviceID).
  it('a pod gone without DEL: vfplane gc puts its VF back and removes its device-info file; a later DEL of a pool network removes its own', () => {
    const { p, e } = pod('cxgone');
    const file = join(devroot, 'cni', `default-mlx-${e.containerId}_net1`);
    const c = conf({ deviceID: '0000:5e:02.1', ipam: undefined, runtimeConfig: { CNIDeviceInfoFile: file } });
    expect(run('ADD', c, e).code).toBe(0);
    expect(existsSync(file)).toBe(true);
    p.destroy();
    const gc = vfp(['gc']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.out.find((r: { pci: string }) => r.pci === '0000:5e:02.1')).toMatchObject({ released: true, putBack: expect.arrayContaining([{ step: 'device-info', file, removed: true }]) });
    expect(vfp(['vf', 'show', '0000:5e:02.1']).out).toMatchObject({ allocation: null });
    expect(existsSync(file)).toBe(false);
    // A DEL with no allocation left (gc took it) still removes the file it is told of.
    const q = pod('cxpool');
    const pools = join(dir, 'own-pools.json');
    writeFileSync(pools, JSON.stringify({ pools: [{ name: 'rdma', selector: { isRdma: true } }] }));
    const qfile = join(devroot, 'cni', `default-mlx-${q.e.containerId}_net1`);
    const pc = conf({ pool: 'rdma', poolsFile: pools, ipam: undefined, runtimeConfig: { CNIDeviceInfoFile: qfile } });
    expect(run('ADD', pc, q.e).code).toBe(0);
    q.p.destroy();
    expect(vfp(['gc']).code).toBe(0);
    writeFileSync(qfile, '{}'); // as Multus may have copied the device plugin's there
    expect(run('DEL', pc, q.e).code).toBe(0);
    expect(existsSync(qfile)).toBe(false);
  });
});
