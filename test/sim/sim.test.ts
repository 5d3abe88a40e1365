// The simulated SR-IOV NIC against the kernel it stands in for: real veth netdevs, a
// sysfs-shaped tree whose writes succeed and fail as Linux's do, and a destroy that
// removes exactly what was made.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { existsSync, mkdirSync, readdirSync, readlinkSync, readFileSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged.js';
import { dropAllSims, dropSim, makeSim, simPrefix, simRoot, sweepStaleSims } from '../helpers/sim.js';
import { Netns } from '../helpers/netns.js';
import { createSim, destroySim } from '../../src/sim/sim.js';
import { openSysfs, type Sysfs } from '../../src/sriov/sysfs.js';
import { listPfs, listVfs, resolveVf, findRepresentor } from '../../src/sriov/discover.js';
import { bindVf, configVf, setNumVfs } from '../../src/sriov/actions.js';
import { readPfVfSetting } from '../../src/sriov/vf-settings.js';
import { ROOT } from '../helpers/cli.js';
import type { SimManifest } from '../../src/sim/manifest.js';
import { VfpError } from '../../src/util/errors.js';

const ipj = (args: string[]) => JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' })) as any[];
const linkNames = () => ipj(['link', 'show']).map((l) => l.ifname as string);
const hasLink = (n: string) => linkNames().includes(n);

/** Runs FN and returns the errno the (simulated) kernel answered with. */
function errnoOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as VfpError).details?.errno as string | undefined;
  }
  return undefined;
}

describePrivileged('simulated SR-IOV NIC', { netns: true }, () => {
  let m: SimManifest;
  let sysfs: Sysfs;

  beforeAll(async () => {
    sweepStaleSims();
    m = makeSim({ profile: 'x710', pfs: 2, vfs: 4 });
    sysfs = await openSysfs(m.root);
  });
  afterAll(() => dropAllSims());

  it('builds a sysfs-shaped tree that discovery reads like /sys', () => {
    const pfs = listPfs(sysfs);
    expect(pfs.map((p) => p.pci)).toEqual(['0000:5e:00.0', '0000:5e:00.1']);
    expect(pfs[0]).toMatchObject({ driver: 'i40e', vendor: '8086', profile: 'x710', numVfs: 4, netdev: `${m.prefix}f0`, tier: 2 });
    expect(pfs[0]!.totalVfs).toBe(m.pfs[0]!.totalVfs);
    // virtfn/physfn links point at each other, as in drivers/pci/iov.c
    const vf0 = readlinkSync(join(m.root, 'bus/pci/devices/0000:5e:00.0/virtfn0'));
    expect(vf0).toBe('../0000:5e:02.0');
    expect(readlinkSync(join(m.root, 'bus/pci/devices/0000:5e:02.0/physfn'))).toBe('../0000:5e:00.0');
    const vfs = listVfs(sysfs);
    expect(vfs).toHaveLength(8);
    // PF 1's VFs follow PF 0's: offset and stride as the tree reports them
    const off1 = Number(readFileSync(join(m.root, 'bus/pci/devices/0000:5e:00.1/sriov_offset'), 'utf8'));
    expect(vfs[4]!.pf).toBe('0000:5e:00.1');
    expect(parseInt(vfs[4]!.pci.slice(8, 10), 16) * 8 + Number(vfs[4]!.pci.slice(-1))).toBe(1 + off1);
    expect(vfs[0]).toMatchObject({ driver: 'iavf', device: '154c', netdev: `${m.prefix}f0v0`, index: 0, vfioDevice: null });
    expect(new Set(vfs.map((v) => v.iommuGroup)).size).toBe(8);
  });

  it('gives every VF a real veth netdev whose representor is its peer', () => {
    const vf = ipj(['link', 'show', 'dev', `${m.prefix}f0v1`])[0];
    const rep = ipj(['link', 'show', 'dev', `${m.prefix}f0r1`])[0];
    // in one namespace, iproute2 names a veth's peer in `link`
    expect(vf.link).toBe(`${m.prefix}f0r1`);
    expect(rep.link).toBe(`${m.prefix}f0v1`);
    expect(rep.flags).toContain('UP');
    expect(listVfs(sysfs)[1]!.mac).toBe(vf.address);
    // Laid out as a switchdev PF's driver does (under the PF's device, named by port), so
    // that vfplane-cni finds it as it would on a NIC; the PF's netdev is still the PF's.
    expect(readFileSync(join(m.root, `bus/pci/devices/0000:5e:00.0/net/${m.prefix}f0r1/phys_port_name`), 'utf8').trim()).toBe('pf0vf1');
    expect(findRepresentor(sysfs, { pf: '0000:5e:00.1', index: 3 })).toBe(`${m.prefix}f1r3`);
    expect(listPfs(sysfs).map((p) => p.netdev)).toEqual([`${m.prefix}f0`, `${m.prefix}f1`]);
  });

  it('refuses sriov_numvfs writes the way the kernel does', () => {
    const attr = 'bus/pci/devices/0000:5e:00.0/sriov_numvfs';
    expect(errnoOf(() => sysfs.write(attr, String(m.pfs[0]!.totalVfs + 1)))).toBe('ERANGE');
    expect(errnoOf(() => sysfs.write(attr, '2'))).toBe('EBUSY'); // 4 → 2 must go through 0
    expect(errnoOf(() => sysfs.write(attr, 'lots'))).toBe('EINVAL');
    expect(errnoOf(() => sysfs.write('bus/pci/devices/0000:5e:00.0/sriov_totalvfs', '1'))).toBe('EACCES');
    expect(sysfs.read(attr)).toBe('4');
    expect(listVfs(sysfs, { pf: '0000:5e:00.0' })).toHaveLength(4);
  });

  // The kernel's count write is all or nothing. A name already taken is said before
  // anything is made; a write killed part-way (its tree and some pairs made, the count
  // not yet written) is undone at the next open, as if it had never begun.
  it('a VF count write meets a netdev name already taken: refused naming it, nothing made; a half-made write is undone at the next open', async () => {
    const pfName = `${m.prefix}f1`;
    setNumVfs(sysfs, pfName, 0, { force: true });
    const blocker = `${m.prefix}f1r2`;
    execFileSync('ip', ['link', 'add', blocker, 'type', 'veth', 'peer', 'name', `${m.prefix}zz`]);
    try {
      const e = (() => { try { setNumVfs(sysfs, pfName, 4); } catch (x) { return x as VfpError; } throw new Error('no refusal'); })();
      expect(e.message).toContain(`netdev ${blocker} already exists (on the host), and the simulator names VF 2's representor so: remove it (ip link del ${blocker})`);
      expect(linkNames().filter((n) => n.startsWith(`${m.prefix}f1`)).sort()).toEqual([pfName, blocker, `${m.prefix}f1u`].sort());
      expect(existsSync(join(m.root, 'bus/pci/devices/0000:5e:00.1/virtfn0'))).toBe(false);
      expect(sysfs.read('bus/pci/devices/0000:5e:00.1/sriov_numvfs')).toBe('0');
    } finally {
      execFileSync('ip', ['link', 'del', blocker]);
    }
    setNumVfs(sysfs, pfName, 4);
    // As a write killed between its tree and its count leaves it: VFs past sriov_numvfs.
    writeFileSync(join(realpathSync(join(m.root, 'bus/pci/devices/0000:5e:00.1')), 'sriov_numvfs'), '1\n');
    expect(hasLink(`${m.prefix}f1r3`)).toBe(true);
    const again = await openSysfs(m.root);
    expect(linkNames().filter((n) => n.startsWith(`${m.prefix}f1r`))).toEqual([`${m.prefix}f1r0`]);
    expect(existsSync(join(m.root, 'bus/pci/devices/0000:5e:00.1/virtfn1'))).toBe(false);
    expect(listVfs(again, { pf: pfName }).map((v) => v.index)).toEqual([0]);
    setNumVfs(again, pfName, 0);
    setNumVfs(again, pfName, 4);
    expect(listVfs(again, { pf: pfName })).toHaveLength(4);
  });

  it('its park namespace deleted by hand is made again at the next open, with the VF netdevs that waited there', async () => {
    const vf = `${m.prefix}f0#1`;
    bindVf(sysfs, vf, 'vfio-pci', { force: true });
    execFileSync('ip', ['netns', 'del', m.parkNetns!]);
    // The kernel tears a deleted namespace's veths down afterwards, in its own work queue:
    // the next open comes once that is done (under load, an open at once still saw the
    // representor whose peer was going, and the teardown then took it).
    for (const until = Date.now() + 10_000; hasLink(`${m.prefix}f0r1`) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    expect(hasLink(`${m.prefix}f0r1`)).toBe(false);
    const again = await openSysfs(m.root);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(m.parkNetns!);
    expect(hasLink(`${m.prefix}f0r1`)).toBe(true);
    // Made again as sim create makes them: the representor with GRO on, the VF's veth
    // with tx offloads off (in one pass for all that were made: it was a pass each).
    expect(execFileSync('ethtool', ['-k', `${m.prefix}f0r1`], { encoding: 'utf8' })).toMatch(/^generic-receive-offload: on/m);
    expect(execFileSync('ip', ['netns', 'exec', m.parkNetns!, 'ethtool', '-k', `${m.prefix}f0v1`], { encoding: 'utf8' })).toMatch(/^tx-checksumming: off/m);
    bindVf(again, vf, 'kernel');
    expect(resolveVf(again, vf).netdev).toBe(`${m.prefix}f0v1`);
  });

  it('changes the VF count through 0 and makes or removes the netdevs', () => {
    expect(() => setNumVfs(sysfs, `${m.prefix}f1`, 2)).toThrow(/only through 0.*--force/);
    setNumVfs(sysfs, `${m.prefix}f1`, 2, { force: true });
    expect(listVfs(sysfs, { pf: `${m.prefix}f1` }).map((v) => v.netdev)).toEqual([`${m.prefix}f1v0`, `${m.prefix}f1v1`]);
    expect(hasLink(`${m.prefix}f1r3`)).toBe(false);
    setNumVfs(sysfs, `${m.prefix}f1`, 0);
    expect(linkNames().filter((n) => n.startsWith(`${m.prefix}f1`)).sort()).toEqual([`${m.prefix}f1`, `${m.prefix}f1u`]);
    expect(findRepresentor(sysfs, { pf: '0000:5e:00.1', index: 0 })).toBeUndefined();
    expect(existsSync(join(m.root, 'bus/pci/devices/0000:5e:00.1/virtfn0'))).toBe(false);
    setNumVfs(sysfs, `${m.prefix}f1`, 4);
    expect(listVfs(sysfs, { pf: `${m.prefix}f1` })).toHaveLength(4);
  });

  it('binds a VF to vfio-pci and back: the netdev leaves the host and returns with its MAC', () => {
    const before = resolveVf(sysfs, `${m.prefix}f0#2`);
    const r = bindVf(sysfs, before.pci, 'vfio-pci');
    expect(r).toMatchObject({ before: 'iavf', after: 'vfio-pci', changed: true, netdev: null });
    expect(r.vfioDevice).toBe(join(m.devRoot, 'vfio', String(before.iommuGroup)));
    expect(existsSync(r.vfioDevice!)).toBe(true);
    expect(hasLink(before.netdev!)).toBe(false);
    // the kernel's own errors on a bound device: bind again → EBUSY, wrong driver → ENODEV
    expect(errnoOf(() => sysfs.write('bus/pci/drivers/vfio-pci/bind', before.pci))).toBe('EBUSY');
    expect(errnoOf(() => sysfs.write('bus/pci/drivers/iavf/unbind', before.pci))).toBe('ENODEV');
    const back = bindVf(sysfs, before.pci, 'kernel');
    expect(back).toMatchObject({ before: 'vfio-pci', after: 'iavf', netdev: before.netdev });
    expect(existsSync(r.vfioDevice!)).toBe(false);
    expect(resolveVf(sysfs, before.pci).mac).toBe(before.mac);
    expect(sysfs.read(`bus/pci/devices/${before.pci}/driver_override`)).toBe('(null)');
  });

  it('applies VF settings; link-state disable takes the carrier away for real', () => {
    const ref = `${m.prefix}f0#3`;
    const r = configVf(sysfs, ref, { mac: '02:11:22:33:44:55', vlan: 100, qos: 3, trust: true, spoofchk: false, linkState: 'disable', maxTxRate: 1000, mtu: 9000 });
    expect(r.settings).toMatchObject({ mac: '02:11:22:33:44:55', vlan: 100, qos: 3, trust: true, spoofchk: false, linkState: 'disable', maxTxRate: 1000 });
    const vf = ipj(['link', 'show', 'dev', `${m.prefix}f0v3`])[0];
    expect(vf.address).toBe('02:11:22:33:44:55');
    expect(vf.mtu).toBe(9000);
    execFileSync('ip', ['link', 'set', `${m.prefix}f0v3`, 'up']);
    expect(ipj(['link', 'show', 'dev', `${m.prefix}f0v3`])[0].flags).toContain('NO-CARRIER');
    configVf(sysfs, ref, { linkState: 'auto' });
    expect(ipj(['link', 'show', 'dev', `${m.prefix}f0v3`])[0].flags).not.toContain('NO-CARRIER');
    // refused before anything changes
    expect(() => configVf(sysfs, ref, { qos: 2, vlan: 0 })).toThrow(/qos 2 needs a VLAN/);
    expect(() => configVf(sysfs, ref, { minTxRate: 2000 })).toThrow(/min-tx-rate 2000 is above max-tx-rate 1000/);
    expect(resolveVf(sysfs, ref).settings).toMatchObject({ vlan: 100, qos: 3, minTxRate: 0 });
  });

  it('answers VF settings its family\'s driver refuses with that driver\'s errno (an X710: i40e)', () => {
    // Below every check above it, as the kernel would: no minimum rate, no 802.1ad, no
    // max rate above the link (10000 Mbit/s for the simulated X710).
    const k = sysfs.kernel!;
    const pf = m.pfs[0]!.pci;
    const before = k.vfSettings(pf, 1);
    const errno = (f: () => unknown) => { try { f(); return 'no error'; } catch (e) { return (e as NodeJS.ErrnoException).code; } };
    expect(errno(() => k.setVfSettings(pf, 1, { minTxRate: 100 }))).toBe('EINVAL');
    expect(errno(() => k.setVfSettings(pf, 1, { vlan: 5, vlanProto: '802.1ad' }))).toBe('EPROTONOSUPPORT');
    // i40e looks at the protocol before the VLAN id, as `vf config` does: VLAN 0 is no way round
    expect(errno(() => k.setVfSettings(pf, 1, { vlan: 0, vlanProto: '802.1ad' }))).toBe('EPROTONOSUPPORT');
    expect(errno(() => k.setVfSettings(pf, 1, { maxTxRate: 10001 }))).toBe('EINVAL');
    expect(k.vfSettings(pf, 1)).toEqual(before);
    expect(errno(() => k.setVfSettings(pf, 1, { maxTxRate: 10000 }))).toBe('no error');
    k.setVfSettings(pf, 1, { maxTxRate: before.maxTxRate });
    // The operator's check says the same first, naming the driver (exit 1: this NIC's limit).
    expect(() => configVf(sysfs, `${m.prefix}f0#1`, { minTxRate: 100 })).toThrow(/min-tx-rate 100: the x710 family's PF driver \(i40e\) has no minimum rate for VFs/);
  });

  it('an E810 (ice) refuses a min rate that oversubscribes the link with EINVAL, and vf config says so first', async () => {
    // ice_min_tx_rate_oversubscribed: every VF's min_tx_rate, this VF's new one in place
    // of its old, against the link (25000 Mbit/s for the simulated E810).
    // With netdevs: vfplane reads the link speed from the PF's netdev, as on a host.
    const t = makeSim({ profile: 'e810', pfs: 1, vfs: 3 });
    try {
      const sysfs = await openSysfs(t.root);
      const k = sysfs.kernel!;
      const pf = t.pfs[0]!.pci;
      const errno = (f: () => unknown) => { try { f(); return 'no error'; } catch (e) { return (e as NodeJS.ErrnoException).code; } };
      expect(t.linkSpeedMbps).toBe(25_000);
      expect(errno(() => k.setVfSettings(pf, 0, { minTxRate: 30_000 }))).toBe('EINVAL');
      expect(errno(() => k.setVfSettings(pf, 0, { minTxRate: 20_000 }))).toBe('no error');
      expect(errno(() => k.setVfSettings(pf, 0, { minTxRate: 25_000 }))).toBe('no error'); // its own old rate is replaced
      expect(errno(() => k.setVfSettings(pf, 0, { minTxRate: 20_000 }))).toBe('no error');
      expect(errno(() => k.setVfSettings(pf, 1, { minTxRate: 5001 }))).toBe('EINVAL');
      expect(k.vfSettings(pf, 1).minTxRate).toBe(0);
      expect(errno(() => k.setVfSettings(pf, 1, { minTxRate: 5000 }))).toBe('no error');
      expect(errno(() => k.setVfSettings(pf, 1, { minTxRate: 0 }))).toBe('no error');
      // vf config refuses first, naming the value, the sum, the link speed and the fix
      const before = k.vfSettings(pf, 2);
      expect(() => configVf(sysfs, `${pf}#2`, { minTxRate: 6000 })).toThrow("min-tx-rate 6000 would oversubscribe the PF's link: with the 20000 Mbit/s its other VFs are guaranteed, the min-tx-rates of its VFs would sum to 26000 Mbit/s, above its link speed, 25000 Mbit/s; the e810 family's PF driver (ice) refuses that (EINVAL); give at most 5000, or lower the other VFs' min-tx-rate first");
      expect(k.vfSettings(pf, 2)).toEqual(before);
      expect(configVf(sysfs, `${pf}#2`, { minTxRate: 5000 }).settings).toMatchObject({ minTxRate: 5000 });
    } finally {
      dropSim(t.root);
    }
  });

  it('VLAN 0 takes the VLAN protocol back to 802.1Q and the priority to 0, as iproute2 and the kernel do', async () => {
    const t = createSim({ profile: 'sim', pfs: 1, vfs: 2, root: simRoot(), prefix: simPrefix(), netdevs: false });
    try {
      const k = (await openSysfs(t.root)).kernel!;
      const pf = t.pfs[0]!.pci;
      expect(k.setVfSettings(pf, 0, { vlan: 7, qos: 3, vlanProto: '802.1ad' })).toMatchObject({ vlan: 7, qos: 3, vlanProto: '802.1ad' });
      expect(k.setVfSettings(pf, 0, { vlan: 0 })).toMatchObject({ vlan: 0, qos: 0, vlanProto: '802.1Q' });
      expect(k.vfSettings(pf, 0)).toMatchObject({ vlan: 0, qos: 0, vlanProto: '802.1Q' });
    } finally {
      destroySim(t.root);
    }
  });

  it('a VF netdev moved into a pod namespace is out of the host view, and is not unbound without force', () => {
    const pod = Netns.create('pod');
    try {
      const vf = resolveVf(sysfs, `${m.prefix}f1#0`);
      execFileSync('ip', ['link', 'set', vf.netdev!, 'netns', pod.name]);
      pod.ip(['link', 'set', vf.netdev!, 'name', 'net1']);
      expect(resolveVf(sysfs, vf.pci).netdev).toBeNull();
      expect(() => bindVf(sysfs, vf.pci, 'vfio-pci')).toThrow(/not in the host namespace/);
      // Its MTU is the pod's: vf config says where to set it, and changes nothing.
      expect(() => configVf(sysfs, vf.pci, { mtu: 1400 })).toThrow(`VF ${vf.pci} has no netdev in the host namespace (driver iavf); its netdev is in another network namespace, most likely that of the pod holding it (\`vfplane vf show ${vf.pci}\` names it): set the MTU there (the pod network's mtu), or release the VF first`);
      expect(pod.ip(['-j', 'link', 'show', 'net1'])).not.toContain('"mtu":1400');
      // Nor are the PF's VFs destroyed under it (another CNI's pod, say) without force.
      const count = sysfs.read('bus/pci/devices/0000:5e:00.1/sriov_numvfs');
      expect(() => setNumVfs(sysfs, `${m.prefix}f1`, 0)).toThrow(`PF ${m.prefix}f1 has VFs whose netdevs are in other network namespaces, held by no allocation here (another CNI's pods? moved by hand?): ${vf.pci}; changing the VF count destroys them there. Find who uses them (\`vfplane vf show PCI\`), or pass --force`);
      expect(sysfs.read('bus/pci/devices/0000:5e:00.1/sriov_numvfs')).toBe(count);
      expect(pod.ip(['-br', 'link'])).toContain('net1');
      // with force, as the kernel would: the pod loses the netdev
      bindVf(sysfs, vf.pci, 'vfio-pci', { force: true });
      expect(pod.ip(['-j', 'link', 'show'])).not.toContain('net1');
      expect(() => configVf(sysfs, vf.pci, { mtu: 1400 })).toThrow(`VF ${vf.pci} has no netdev in the host namespace (driver vfio-pci); it has no netdev to set an MTU on (bound to vfio-pci: the MTU is the DPDK application's)`);
      bindVf(sysfs, vf.pci, 'kernel');
      expect(resolveVf(sysfs, vf.pci).netdev).toBe(vf.netdev);
    } finally {
      pod.destroy();
    }
  });

  // The simulator's lock serialises its kernel (numvfs, binds, VF settings) across
  // processes: vfplane-cni calls, the CLI and the data plane at once.
  it('its lock: many writers at once all get through; a lock left with no pid or by a dead pid is taken over', async () => {
    const ref = `${m.prefix}f1#2`;
    const lock = join(m.stateDir, 'lock');
    // Left by a holder killed between making the lock and writing its pid (an older
    // vfplane made it so), or by hand: once it is 5 s old, the next writer takes it over.
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), '');
    const old = new Date(Date.now() - 10_000);
    utimesSync(lock, old, old);
    let t = Date.now();
    configVf(sysfs, ref, { trust: true });
    expect(Date.now() - t).toBeLessThan(5_000);
    // A dead holder's lock is taken over at once.
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), '999999999');
    t = Date.now();
    configVf(sysfs, ref, { trust: false });
    expect(Date.now() - t).toBeLessThan(5_000);
    // A pid the kernel has since given to another (live) process: the start time differs.
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), `${process.pid} 1`);
    t = Date.now();
    configVf(sysfs, ref, { trust: true });
    expect(Date.now() - t).toBeLessThan(5_000);
    configVf(sysfs, ref, { trust: false });
    // Six processes changing VF settings and binding at once: every write gets through
    // (the lock used to let a waiter re-create the pid file of a lock being let go, so
    // its holder failed with ENOTEMPTY, the waiter with ENOENT, and the lock stayed with
    // an empty pid file that nobody took over: every later write waited 30 s and failed).
    const script = (i: number) => `
      const { openSysfs } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/sriov/sysfs.js')).href)});
      const { configVf } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/sriov/actions.js')).href)});
      const sysfs = await openSysfs(${JSON.stringify(m.root)});
      for (let k = 0; k < 40; k++) configVf(sysfs, ${JSON.stringify(`${m.prefix}f1#`)} + ${i % 4}, { vlan: 1 + (k % 2), trust: k % 2 === 0 });
      configVf(sysfs, ${JSON.stringify(`${m.prefix}f1#`)} + ${i % 4}, { vlan: 0, trust: false });`;
    const runs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script(i)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (d) => (err += d));
      c.on('exit', (code) => resolve({ code, err }));
    })));
    for (const r of runs) expect(r.code, r.err).toBe(0);
    expect(readdirSync(m.stateDir).filter((f) => f.startsWith('lock'))).toEqual([]);
    for (let i = 0; i < 4; i++) expect(resolveVf(sysfs, `${m.prefix}f1#${i}`).settings).toMatchObject({ vlan: 0, trust: false });
  }, 120_000);

  it('reports no settings for a VF its PF no longer has, as netlink leaves it out', () => {
    expect(readPfVfSetting(sysfs, '0000:5e:00.1', `${m.prefix}f1`, 1)).toMatchObject({ vlan: 0 });
    expect(readPfVfSetting(sysfs, '0000:5e:00.1', `${m.prefix}f1`, 63)).toBeNull();
  });

  it('refuses a second simulator on the same prefix or root, changing nothing', () => {
    expect(() => createSim({ profile: 'x710', pfs: 1, vfs: 1, root: simRoot(), prefix: m.prefix })).toThrow(/already uses the prefix/);
    expect(() => createSim({ profile: 'x710', pfs: 1, vfs: 1, root: m.root, prefix: simPrefix() })).toThrow(/already exists/);
    expect(() => createSim({ profile: 'x710', pfs: 1, vfs: 999, root: simRoot(), prefix: simPrefix() })).toThrow(/--vfs 999 is out of range/);
    // Nor inside another one's tree (its destroy would take the inner tree, not its netdevs).
    const inner = join(m.root, 'inner', 'nic');
    const p = simPrefix();
    expect(() => createSim({ profile: 'sim', pfs: 1, vfs: 1, root: inner, prefix: p })).toThrow(`--root ${inner} is inside the simulated NIC at ${m.root}; give a --root outside it`);
    expect(existsSync(join(m.root, 'inner'))).toBe(false);
    expect(linkNames().filter((l) => l.startsWith(p))).toEqual([]);
  });

  // A PF uplink with several queues (as a real PF has, for RSS): both veth ends get them,
  // as the kernel lists them in /sys/class/net/<dev>/queues.
  it('gives PF uplinks the queues asked for, and refuses a count out of range', () => {
    const q = makeSim({ pfs: 1, vfs: 1, uplinkQueues: 4 });
    try {
      const pf = q.pfs[0]!;
      for (const dev of [pf.netdev, pf.uplinkPeer]) {
        const rx = execFileSync('ls', [`/sys/class/net/${dev}/queues`], { encoding: 'utf8' }).split('\n').filter((x) => x.startsWith('rx-'));
        expect(rx.sort(), dev).toEqual(['rx-0', 'rx-1', 'rx-2', 'rx-3']);
      }
      // The VFs keep one (a representor often has one).
      const vf = execFileSync('ls', [`/sys/class/net/${q.prefix}f0v0/queues`], { encoding: 'utf8' }).split('\n').filter((x) => x.startsWith('rx-'));
      expect(vf).toEqual(['rx-0']);
      // Made with their counts said: a veth made without one gets a queue pair per
      // possible CPU (ip -d shows them), which the default of 1 and the profile deny.
      const queues = (dev: string) => { const l = ipj(['-d', 'link', 'show', 'dev', dev])[0]; return [l.num_tx_queues, l.num_rx_queues]; };
      expect(queues(`${q.prefix}f0r0`)).toEqual([1, 1]);
      expect(queues(`${q.prefix}f0v0`)).toEqual([1, 1]);
      expect(queues(m.pfs[0]!.netdev)).toEqual([1, 1]);
      expect(queues(m.pfs[0]!.uplinkPeer)).toEqual([1, 1]);
    } finally {
      dropSim(q.root);
    }
    expect(() => createSim({ profile: 'x710', pfs: 1, vfs: 1, root: simRoot(), prefix: simPrefix(), uplinkQueues: 17 })).toThrow(/--uplink-queues 17 is out of range: 1–16/);
    expect(linkNames().filter((n) => n.startsWith(m.prefix)).length).toBeGreaterThan(0); // the first simulator is untouched
  });

  it('destroy removes everything it made and nothing else', () => {
    const other = makeSim({ pfs: 1, vfs: 2 });
    const bystander = `${other.prefix}g0`; // shares the prefix but is not the simulator's
    execFileSync('ip', ['link', 'add', bystander, 'type', 'veth', 'peer', 'name', `${other.prefix}g1`]);
    destroySim(other.root);
    const left = linkNames().filter((n) => n.startsWith(other.prefix));
    expect(left.sort()).toEqual([bystander, `${other.prefix}g1`]);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`${other.prefix}-park`);
    expect(existsSync(other.root)).toBe(false);
    execFileSync('ip', ['link', 'del', bystander]);
    dropSim(other.root);
    // the first simulator is untouched
    expect(listVfs(sysfs)).toHaveLength(8);
    expect(hasLink(`${m.prefix}f0v0`)).toBe(true);
  });

  it('destroy --prefix checks the prefix; with the tree gone it lists what that prefix left, and the commands that remove it', () => {
    const lost = makeSim({ pfs: 1, vfs: 2 });
    const p = lost.prefix;
    try {
      expect(() => destroySim(lost.root, 'zz9')).toThrow(/has the prefix \w+, not zz9; drop --prefix/);
      expect(hasLink(`${p}f0`)).toBe(true); // refused: nothing removed
      rmSync(lost.root, { recursive: true, force: true }); // the tree lost (by hand, a reboot of /tmp…)
      let err: VfpError | null = null;
      try {
        destroySim(lost.root, p);
      } catch (e) {
        err = e as VfpError;
      }
      expect(err?.message).toMatch(new RegExp(`no simulated NIC at .*Netdevs of prefix ${p} are still on this host \\(.*${p}f0r1.*netns ${p}-park\\)`));
      expect(hasLink(`${p}f0`)).toBe(true); // listed, not removed: vfplane cannot tell whose they are
      // The commands it gives remove all of it.
      const cmds = /remove them with: (.*)$/.exec(err!.message)![1]!.split('; ');
      for (const c of cmds) execFileSync(c.split(' ')[0]!, c.split(' ').slice(1));
      expect(linkNames().filter((n) => new RegExp(`^${p}f\\d`).test(n))).toEqual([]);
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`${p}-park`);
    } finally {
      dropSim(lost.root);
    }
  });

  it('destroy of a simulator made through a symlinked root removes the tree, not only the link', () => {
    const real = simRoot();
    mkdirSync(real, { recursive: true });
    const via = `${real}-link`;
    symlinkSync(real, via);
    try {
      const s = createSim({ profile: 'x710', pfs: 1, vfs: 2, root: via, prefix: simPrefix(), netdevs: false });
      expect(existsSync(join(real, 'vfplane-sim.json'))).toBe(true);
      destroySim(s.root);
      expect(existsSync(real)).toBe(false);
    } finally {
      rmSync(via, { force: true });
      rmSync(real, { recursive: true, force: true });
    }
  });

  // SIGKILL cannot be caught: what a create killed half-way made (tree, netdevs, park
  // namespace) is listed in its making manifest; nothing else takes the tree for a NIC,
  // and destroy removes it all.
  it('a sim create SIGKILLed half-way is refused as unfinished by other commands, and sim destroy removes what it made', async () => {
    const root = simRoot();
    const p = simPrefix();
    const c = spawn(process.execPath, [join(ROOT, 'bin/vfplane.js'), 'sim', 'create', '--pfs', '8', '--vfs', '16', '--root', root, '--prefix', p], { stdio: 'ignore' });
    const done = new Promise((res) => c.on('close', res));
    for (let i = 0; i < 1000 && linkNames().filter((n) => n.startsWith(p)).length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    c.kill('SIGKILL');
    await done;
    try {
      expect(existsSync(join(root, 'vfplane-sim.json')), 'killed before it finished').toBe(false);
      expect(existsSync(join(root, 'vfplane-sim.making.json'))).toBe(true);
      expect(linkNames().filter((n) => n.startsWith(p)).length).toBeGreaterThanOrEqual(4);
      const unfinished = `the simulated NIC at ${root} was never finished: a \`vfplane sim create\` stopped before its end (killed?); remove what it made with \`vfplane sim destroy --root ${root}\``;
      await expect(openSysfs(root)).rejects.toThrow(unfinished);
      const list = spawnSync(process.execPath, [join(ROOT, 'bin/vfplane.js'), 'pf', 'list', '--sysfs-root', root], { encoding: 'utf8' });
      expect([list.status, list.stderr.trim()]).toEqual([1, `vfplane: ${unfinished}`]);
      const d = spawnSync(process.execPath, [join(ROOT, 'bin/vfplane.js'), 'sim', 'destroy', '--root', root], { encoding: 'utf8' });
      expect(d.status, d.stderr).toBe(0);
      expect(existsSync(root)).toBe(false);
      expect(linkNames().filter((n) => n.startsWith(p))).toEqual([]);
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`${p}-park`);
    } finally {
      if (existsSync(root)) spawnSync(process.execPath, [join(ROOT, 'bin/vfplane.js'), 'sim', 'destroy', '--root', root]);
    }
  });

  // Interrupted while it builds: SIGINT to vfplane alone (the build runs to its end, then
  // the handler undoes it), and to its process group as Ctrl-C sends it (the `ip` and
  // ethtool children die and the build fails part-way). Either way nothing is left, and
  // the same create then succeeds.
  for (const group of [false, true]) {
    it(`sim create interrupted while it builds (SIGINT to ${group ? 'its process group' : 'vfplane alone'}) removes what it made and exits 130`, async () => {
      const root = simRoot();
      const p = simPrefix();
      const c = spawn(process.execPath, [join(ROOT, 'bin/vfplane.js'), 'sim', 'create', '--profile', 'x710', '--pfs', '2', '--vfs', '32', '--root', root, '--prefix', p], { detached: group, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      c.stderr.on('data', (d) => (err += d));
      const done = new Promise<number | null>((res) => c.on('close', (code) => res(code)));
      // The tree's first directories appear as the build starts.
      for (let i = 0; i < 500 && !existsSync(join(root, 'bus')); i++) await new Promise((r) => setTimeout(r, 5));
      expect(existsSync(join(root, 'bus'))).toBe(true);
      process.kill(group ? -c.pid! : c.pid!, 'SIGINT');
      expect(await done).toBe(130);
      expect(err).toContain('SIGINT: cleaning up');
      expect(err).not.toContain('is ethtool installed');
      expect(existsSync(join(root, 'vfplane-sim.json'))).toBe(false);
      expect(linkNames().filter((n) => n.startsWith(p))).toEqual([]);
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`${p}-park`);
      const again = createSim({ profile: 'x710', pfs: 1, vfs: 1, root, prefix: p });
      expect(listVfs(await openSysfs(again.root))).toHaveLength(1);
      dropSim(root);
    });
  }

  // A tree-only simulator (no netdevs): what the CLI says about netdevs is about that.
  it('a simulator without netdevs: vf config --mtu and sim destroy say it has none', () => {
    const s = makeSim({ pfs: 1, vfs: 1, netdevs: false });
    const run = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/vfplane.js'), ...args, '--sysfs-root', s.root], { encoding: 'utf8' });
    try {
      const mtu = run(['vf', 'config', '0000:5e:02.0', '--mtu', '2000', '--state-dir', join(s.root, '..', 'state')]);
      expect(mtu.status).toBe(1);
      expect(mtu.stderr).toContain('this simulated NIC was made without netdevs (`sim create --no-netdevs`), so there is no MTU to set');
      // vf alloc says the same, and the way that works (not a --force bind that does nothing).
      const state = join(s.root, '..', 'state-alloc');
      // vf list and vf show say why it is not free in the same terms (helper-98: "its
      // netdev is not here", and advice for VFs whose netdevs are elsewhere).
      expect(run(['vf', 'list', '--state-dir', state]).stdout).toMatch(/│ not free: no netdevs \(sim --no-netdevs\) +│/);
      expect(run(['vf', 'show', '0000:5e:02.0', '--state-dir', state]).stdout).toContain('none in vfplane, but not free: it is bound to iavf with no netdev in the host namespace; this simulated NIC was made without netdevs (`sim create --no-netdevs`), so a VF bound to a kernel driver has none to hand over: bind it to vfio-pci (`vfplane vf bind 0000:5e:02.0 --driver vfio-pci`)');
      const alloc = run(['vf', 'alloc', '--pci', '0000:5e:02.0', '--owner', 'ns/p', '--state-dir', state]);
      expect([alloc.status, alloc.stderr.trim()]).toEqual([1, 'vfplane: VF 0000:5e:02.0 is bound to iavf and has no netdev: this simulated NIC was made without netdevs (`sim create --no-netdevs`), so a VF bound to a kernel driver has none to hand over: bind it to vfio-pci (`vfplane vf bind 0000:5e:02.0 --driver vfio-pci`) to allocate it, or make the simulator with netdevs']);
      expect(run(['vf', 'bind', '0000:5e:02.0', '--driver', 'vfio-pci', '--state-dir', state]).status).toBe(0);
      expect(run(['vf', 'alloc', '--pci', '0000:5e:02.0', '--owner', 'ns/p', '--state-dir', state]).status).toBe(0);
      rmSync(state, { recursive: true, force: true });
      expect(run(['sim', 'destroy', '--prefix', s.prefix]).stdout).toContain(`removed the simulated NIC at ${s.root} (a tree without netdevs)`);
    } finally {
      dropSim(s.root);
    }
  });

  // A ConnectX VF is DPDK's on mlx5_core (bifurcated), and binding it to vfio-pci is
  // refused without --force: on a tree-only simulator of that family the way that works
  // is a simulator with netdevs (was: bind it to vfio-pci).
  it('a ConnectX simulator without netdevs: the advice is to make it with netdevs, not to bind vfio-pci', () => {
    const s = makeSim({ profile: 'cx5', pfs: 1, vfs: 2, netdevs: false });
    const run = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/vfplane.js'), ...args, '--sysfs-root', s.root], { encoding: 'utf8' });
    const state = join(s.root, '..', 'state-cx5');
    try {
      const remake = 'make the simulator again with netdevs (`vfplane sim destroy`, then `vfplane sim create` without --no-netdevs)';
      const list = JSON.parse(run(['vf', 'list', '--state-dir', state, '--json']).stdout);
      expect(list.map((v: any) => v.fix)).toEqual([expect.stringContaining(remake), expect.stringContaining(remake)]);
      for (const v of list) expect(v.fix).not.toContain('--driver vfio-pci');
      const show = run(['vf', 'show', '0000:5e:02.0', '--state-dir', state]).stdout;
      expect(show).toContain('its family is bifurcated');
      expect(show).not.toContain('--driver vfio-pci');
      const pools = join(s.root, '..', 'pools-cx5.json');
      writeFileSync(pools, JSON.stringify({ pools: [{ name: 'mlx', selector: { vendors: ['15b3'] } }] }));
      const alloc = run(['vf', 'alloc', '--pool', 'mlx', '--pools', pools, '--owner', 'ns/p', '--state-dir', state]);
      expect(alloc.status).toBe(1);
      expect(alloc.stderr).toContain(`none usable: 0000:5e:02.0 is bound to mlx5_core with no netdev in the host namespace; 0000:5e:02.1 is bound to mlx5_core with no netdev in the host namespace; this simulated NIC was made without netdevs`);
      expect(alloc.stderr).toContain(remake);
      expect(alloc.stderr).not.toContain('vfio-pci`)');
      // by address, the same (it advised vfio-pci: helper-106)
      const byPci = run(['vf', 'alloc', '--pci', '0000:5e:02.1', '--owner', 'ns/p', '--state-dir', state]);
      expect(byPci.status).toBe(1);
      expect(byPci.stderr).toContain(`VF 0000:5e:02.1 is bound to mlx5_core and has no netdev: this simulated NIC was made without netdevs`);
      expect(byPci.stderr).toContain(remake);
      expect(byPci.stderr).not.toContain('vfio-pci`)');
      rmSync(pools, { force: true });
    } finally {
      rmSync(state, { recursive: true, force: true });
      dropSim(s.root);
    }
  });

  it('sim show and destroy find the simulator through VFPLANE_SYSFS_ROOT, as sim create says to export it', () => {
    const s = makeSim({ pfs: 1, vfs: 1 });
    const env = { ...process.env, VFPLANE_SYSFS_ROOT: s.root };
    const cli = (args: string[]) => execFileSync(process.execPath, [join(ROOT, 'bin/vfplane.js'), ...args], { encoding: 'utf8', env });
    try {
      expect(cli(['sim', 'show', '--json'])).toContain(`"prefix": "${s.prefix}"`);
      expect(cli(['sim', 'destroy', '--prefix', s.prefix])).toContain(`removed the simulated NIC at ${s.root}`);
      expect(hasLink(`${s.prefix}f0`)).toBe(false);
    } finally {
      dropSim(s.root);
    }
  });
});
