// `vfplane doctor` reports the build and the host as they are: the backends the build
// recorded, sockets the kernel really opens, and the NICs under a sysfs root.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { release } from 'node:os';
import { installedPlugin, rdmaNetnsCheck, tcxCheck } from '../../src/cli/doctor-run.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, vfplane, vfplaneAsync } from '../helpers/cli.js';
import { dropSim, makeSim } from '../helpers/sim.js';
import type { SimManifest } from '../../src/sim/manifest.js';

describe('vfplane doctor', () => {
  let m: SimManifest;
  beforeAll(() => {
    m = makeSim({ profile: 'e810', pfs: 1, vfs: 2, netdevs: false });
  });
  afterAll(() => dropSim(m.root));

  it('says which backends this build has, as the build recorded them', () => {
    const r = vfplane(['doctor', '--json', '--sysfs-root', m.root]);
    expect(r.code, r.stderr).toBe(0);
    const checks = JSON.parse(r.stdout).checks as { area: string; name: string; status: string; detail: string; fix?: string }[];
    const features = JSON.parse(readFileSync(join(ROOT, 'build/Release/features.json'), 'utf8')) as Record<string, { built: boolean }>;
    for (const [name, f] of Object.entries(features)) {
      expect(checks.find((c) => c.name === `${name} backend`)?.status, name).toBe(f.built ? 'ok' : 'missing');
    }
    expect(checks.find((c) => c.name === 'native addon')?.status).toBe('ok');
    for (const c of checks.filter((c) => c.status !== 'ok')) expect(c.fix, c.name).toBeTruthy();
    // the simulated E810: its profile and the tier it allows
    const pf = checks.find((c) => c.area === 'nic');
    expect(pf).toMatchObject({ status: 'ok', name: expect.stringContaining('0000:5e:00.0') });
    // (E810 is tier 2: VNI steering and checksum offload, no hardware encap)
    expect(pf!.detail).toMatch(/8086:159b ice, 2\/256 VFs, profile e810, tier 2: VNI steering and checksum offload, software encap as the profile allows; simulated, its veth uplink offloads nothing, so a data plane on it runs at tier 3 \(software\)/);
    // No netdevs, so no representors: what the vxlan mode then lacks.
    expect(pf!.detail).toContain('; no VF representors: vfplane-cni\'s vxlan mode needs the eswitch in switchdev mode (devlink dev eswitch set pci/0000:5e:00.0 mode switchdev, where the family has it)');
  });

  it('a simulated NIC\'s representors are the simulator\'s where the family has no switchdev mode (X710): said so, a real one has none', () => {
    const x = makeSim({ profile: 'x710', pfs: 1, vfs: 2 });
    const c = makeSim({ profile: 'cx6dx', pfs: 1, vfs: 2 });
    try {
      const nic = (root: string) => (JSON.parse(vfplane(['doctor', '--json', '--sysfs-root', root]).stdout).checks as { area: string; detail: string }[]).find((k) => k.area === 'nic')!.detail;
      expect(nic(x.root)).toMatch(/; representors for 2\/2 VFs \(vxlan mode possible; made by the simulator: a real x710 has no switchdev mode, so no representors and no vxlan mode\)$/);
      expect(nic(c.root)).toMatch(/; representors for 2\/2 VFs \(vxlan mode possible\)$/);
      // What DPDK needs follows the NICs (helper-101): vfio-pci and an IOMMU for X710,
      // the RDMA stack (not vfio) for a ConnectX-only node.
      type C = { area: string; name: string; status: string; detail: string; fix?: string };
      const all = (root: string) => JSON.parse(vfplane(['doctor', '--json', '--sysfs-root', root]).stdout).checks as C[];
      const [onX, onC] = [all(x.root), all(c.root)];
      const by = (cs: C[], name: string) => cs.find((k) => k.name === name);
      expect(by(onX, 'RDMA (mlx5 DPDK)')).toBeUndefined();
      for (const name of ['vfio-pci', 'IOMMU']) {
        expect(by(onC, name)!.status, name).toBe('ok');
        if (by(onX, name)!.status === 'warn') expect(by(onC, name)!.detail, name).toMatch(/; not needed here: this node's NICs \(cx6dx\) run DPDK on their kernel driver \(bifurcated\)$/);
      }
      const rdma = by(onC, 'RDMA (mlx5 DPDK)')!;
      expect(rdma.detail).toMatch(/^DPDK's mlx5_eth PMD \(cx6dx\) reaches a VF through its RDMA device/);
      if (existsSync('/sys/module/mlx5_ib') && existsSync('/sys/module/ib_uverbs') && existsSync('/dev/infiniband')) expect(['ok', 'warn']).toContain(rdma.status);
      else expect([rdma.status, rdma.fix]).toEqual(['warn', expect.stringMatching(/modprobe mlx5_ib ib_uverbs|loads no modules/)]);
      // The RDMA subsystem's netns mode, read with `rdma system show`, or said to be
      // unknown (here: the tool or the kernel's RDMA netlink may be absent).
      expect(by(onX, 'RDMA netns mode')).toBeUndefined();
      const netns = by(onC, 'RDMA netns mode')!;
      expect(netns).toBeDefined();
      const here = spawnSync('rdma', ['system', 'show'], { encoding: 'utf8' });
      const mode = here.status === 0 ? /\bnetns (shared|exclusive)\b/.exec(here.stdout)?.[1] : undefined;
      if (mode === 'shared') expect(netns).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^netns shared/) });
      else if (mode === 'exclusive') expect(netns).toMatchObject({ status: 'warn', fix: expect.stringContaining('rdma CNI plugin') });
      else expect(netns).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^cannot tell whether the RDMA subsystem is in shared or exclusive netns mode \(cx6dx: /) });
    } finally {
      dropSim(x.root);
      dropSim(c.root);
    }
  });

  it('reads the RDMA netns mode from `rdma system show`, and says when it cannot tell', () => {
    const shared = rdmaNetnsCheck({ stdout: 'netns shared copy-on-fork on\n' }, 'cx5');
    expect(shared).toMatchObject({ name: 'RDMA netns mode', status: 'ok', detail: expect.stringMatching(/^netns shared \(the kernel's default\)/) });
    expect(shared.fix).toBeUndefined();
    const excl = rdmaNetnsCheck({ stdout: 'netns exclusive copy-on-fork on\n' }, 'cx5, cx6dx');
    expect(excl).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^netns exclusive: .*vfplane-cni moves the VF's netdev, not its RDMA device/) });
    expect(excl.fix).toMatch(/rdma CNI plugin .*deploy\/README\.md, ConnectX and DPDK.*rdma system set netns shared/);
    const noTool = rdmaNetnsCheck({ missing: true }, 'cx5');
    expect(noTool).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^cannot tell .*: no `rdma` tool here \(iproute2\)$/) });
    const noKernel = rdmaNetnsCheck({ failed: 'Failed to open NETLINK_RDMA socket' }, 'cx5');
    expect(noKernel).toMatchObject({ status: 'warn', detail: expect.stringContaining('`rdma system show` failed (Failed to open NETLINK_RDMA socket): this kernel\'s RDMA subsystem (ib_core) is absent or not loaded') });
    expect(noKernel.fix).toMatch(/^load the RDMA stack \(modprobe mlx5_ib ib_uverbs/);
    expect(rdmaNetnsCheck({ failed: 'x' }, 'cx5', false).fix).toMatch(/^this kernel loads no modules/);
    expect(rdmaNetnsCheck({ stdout: 'copy-on-fork on\n' }, 'cx5').detail).toMatch(/^cannot tell .*printed no netns mode/);
  });

  it('its vfio-pci fix fits the kernel: modprobe where modules load, a built-in driver where none do', () => {
    const r = vfplane(['doctor', '--json', '--sysfs-root', m.root]);
    const c = (JSON.parse(r.stdout).checks as { name: string; status: string; fix?: string }[]).find((x) => x.name === 'vfio-pci')!;
    if (c.status === 'ok') return; // loaded here: no fix to give
    if (existsSync('/proc/modules')) expect(c.fix).toBe('modprobe vfio-pci');
    else expect(c.fix).toMatch(/^this kernel loads no modules \(no \/proc\/modules\): use one built with CONFIG_VFIO_PCI=y/);
  });

  it('a CNI server socket that nothing answers on (a file left behind) is not reported as listening', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-doctor-'));
    try {
      const stale = join(dir, 'cni.sock');
      writeFileSync(stale, '');
      const r = vfplane(['doctor', '--json', '--sysfs-root', m.root, '--socket', stale]);
      const c = (JSON.parse(r.stdout).checks as { name: string; status: string; detail: string }[]).find((x) => x.name === 'vfplane cni serve');
      expect(c).toMatchObject({ status: 'warn', detail: expect.stringContaining(`no server answers on ${stale} (a file left by one that stopped?)`) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a CNI server that accepts but does not answer (stopped, hung) is reported missing, one that answers ok', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-doctor-hung-'));
    const mute = createServer(() => undefined); // accepts, reads nothing, answers nothing
    await new Promise<void>((r) => mute.listen(join(dir, 'mute.sock'), r));
    const { serveCni } = await import('../../src/cni/server.js');
    const srv = await serveCni(join(dir, 'cni.sock'), () => undefined);
    try {
      const check = async (sock: string) => {
        const r = await vfplaneAsync(['doctor', '--json', '--sysfs-root', m.root, '--socket', sock]);
        return (JSON.parse(r.stdout).checks as { name: string; status: string; detail: string; fix?: string }[]).find((x) => x.name === 'vfplane cni serve');
      };
      expect(await check(join(dir, 'mute.sock'))).toMatchObject({
        status: 'missing', detail: expect.stringContaining('but gave no answer to a VERSION call within 2000 ms: stopped or hung'),
        fix: expect.stringContaining(`restart \`vfplane cni serve --socket ${join(dir, 'mute.sock')}\``),
      });
      expect(await check(srv.socket)).toMatchObject({ status: 'ok', detail: `answering on ${srv.socket}` });
    } finally {
      mute.close();
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says whether AF_PACKET ports can keep the host stack off their netdevs (tcx, Linux 6.6)', () => {
    expect(tcxCheck('6.18.0-1-amd64').status).toBe('ok');
    expect(tcxCheck('6.6.0').status).toBe('ok');
    const old = tcxCheck('6.1.0-28-amd64');
    expect(old.status).toBe('warn');
    expect(old.detail).toContain('6.1.0-28-amd64');
    expect(old.fix).toMatch(/6\.6.*afxdp/);
    const r = vfplane(['doctor', '--json', '--sysfs-root', m.root]);
    const c = (JSON.parse(r.stdout).checks as { name: string; status: string }[]).find((x) => x.name === 'tcx (AF_PACKET stack drop)');
    expect(c?.status).toBe(tcxCheck(release()).status);
  });

  it('on a root without SR-IOV NICs, says how to get a simulated one', () => {
    const r = vfplane(['doctor', '--json', '--sysfs-root', join(m.root, 'bus')]);
    const nic = JSON.parse(r.stdout).checks.find((c: any) => c.area === 'nic');
    expect(nic).toMatchObject({ status: 'warn', fix: expect.stringContaining('vfplane sim create') });
  });

  it('a sysfs root that is missing or no directory is one failing check; the others still run, and it exits 1', () => {
    for (const [root, why] of [[join(m.root, 'no-such'), 'does not exist'], [join(m.root, 'vfplane-sim.json'), 'is not a directory']] as const) {
      const r = vfplane(['doctor', '--json', '--sysfs-root', root]);
      expect(r.code, r.stderr).toBe(1);
      const checks = JSON.parse(r.stdout).checks as { area: string; name: string; status: string; detail: string }[];
      expect(checks.filter((c) => c.area === 'nic')).toEqual([expect.objectContaining({ name: 'sysfs root', status: 'missing', detail: `sysfs root ${root} ${why}` })]);
      expect(checks.some((c) => c.area === 'build' && c.name === 'native addon')).toBe(true);
      // pf list reads a file there as an error too, not as a node without NICs.
      const pf = vfplane(['pf', 'list', '--sysfs-root', root]);
      expect(pf.code).not.toBe(0);
      expect(pf.stderr).toContain(`sysfs root ${root} ${why}`);
    }
  });

  // helper-106: a plugin installed with `cni install --socket S` forwards to S, so a server
  // there is the one that counts; doctor looked at /run/vfplane/cni.sock all the same.
  it('looks for the CNI server where the installed shim forwards, unless --socket says', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-doctor-'));
    try {
      const sock = join(dir, 'cni.sock');
      expect(vfplane(['cni', 'install', '--dir', dir, '--socket', sock]).code).toBe(0);
      const serve = (args: string[]) => {
        const r = vfplane(['doctor', '--json', '--cni-dir', dir, ...args]);
        return (JSON.parse(r.stdout).checks as { name: string; detail: string; fix?: string }[]).find((c) => c.name === 'vfplane cni serve')!;
      };
      const c = serve([]);
      expect(c.detail).toContain(`on ${sock}:`);
      expect(c.fix).toContain(`vfplane cni serve --socket ${sock}`);
      expect(serve(['--socket', join(dir, 'other.sock')]).detail).toContain(`on ${join(dir, 'other.sock')}:`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks the installed plugin: present, and the paths its .shim file names exist', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-doctor-'));
    try {
      const file = join(dir, 'vfplane-cni');
      expect(installedPlugin(file)).toMatchObject({ status: 'warn', fix: `vfplane cni install --dir ${dir}` });
      expect(vfplane(['cni', 'install', '--dir', dir, '--socket', join(dir, 'cni.sock')]).code).toBe(0);
      expect(installedPlugin(file)).toMatchObject({ status: 'ok', detail: expect.stringContaining(`server socket ${join(dir, 'cni.sock')}`) });
      // An install whose Node has gone (an upgrade moved it): every pod would fail.
      const shim = readFileSync(`${file}.shim`, 'utf8').replace(/^node=.*$/m, 'node=/opt/vfplane/gone/node');
      writeFileSync(`${file}.shim`, shim);
      const c = installedPlugin(file);
      expect(c).toMatchObject({ status: 'missing', fix: `vfplane cni install --dir ${dir}` });
      expect(c.detail).toContain('node /opt/vfplane/gone/node');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('judges the .shim\'s paths as the host sees them: in a mount namespace of its own (a container) they are looked up under /proc/1/root', () => {
    if (process.getuid?.() !== 0) {
      expect(process.env.CI, 'CI runs as root').toBeFalsy();
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-doctor-ns-'));
    try {
      const hidden = join(dir, 'tree');
      mkdirSync(hidden);
      writeFileSync(join(hidden, 'node'), '');
      writeFileSync(join(hidden, 'plugin.js'), '');
      writeFileSync(join(dir, 'vfplane-cni'), '');
      writeFileSync(join(dir, 'vfplane-cni.shim'), `socket=${join(dir, 'cni.sock')}\nnode=${join(hidden, 'node')}\nplugin=${join(hidden, 'plugin.js')}\n`);
      // A new mount namespace where the tree is covered by an empty tmpfs, as a container
      // lacks the host's /opt/vfplane/<version>. The host's view is this test process's
      // (init's /proc/1/root, what the DaemonSet's container reads, is closed to root in
      // this sandbox).
      const js = `import('${join(ROOT, 'dist/cli/doctor-run.js')}').then((m) => console.log(JSON.stringify([m.installedPlugin(${JSON.stringify(join(dir, 'vfplane-cni'))}, ${process.pid}), m.installedPlugin(${JSON.stringify(join(dir, 'vfplane-cni'))}, 'self')])))`;
      const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs none ${hidden} && ls -A ${hidden} | wc -l && ${process.execPath} -e "${js.replaceAll('"', '\\"')}"`], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const [count, line] = r.stdout.trim().split('\n');
      expect(count).toBe('0'); // the container's view has no tree
      const [viaHost, ownView] = JSON.parse(line!);
      expect(viaHost).toMatchObject({ status: 'ok' });
      expect(ownView).toMatchObject({ status: 'missing' }); // what it said before, from the container's view alone
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
