// Discovery and address checks on a tree-only simulated NIC (no netdevs, no root
// needed): topology, profiles, the forms a VF can be named in, and the refusals.
import { readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thrown } from '../helpers/thrown.js';
import { VfpError } from '../../src/util/errors.js';
import { describePrivileged } from '../helpers/privileged.js';
import { dropSim, makeSim } from '../helpers/sim.js';
import { openSysfs, Sysfs } from '../../src/sriov/sysfs.js';
import { listPfs, listVfs, resolvePf, resolveVf, vfRefs, pfEswitch } from '../../src/sriov/discover.js';
import { freeInPool, poolView, type PoolSelector } from '../../src/alloc/pool.js';
import { bindVf, setNumVfs } from '../../src/sriov/actions.js';
import { tcFlowerOnlyTier1, withOperatorProfile } from '../helpers/profiles.js';
import { isPci, parsePci, pciFromRid, pciRid } from '../../src/sriov/pci.js';
import type { SimManifest } from '../../src/sim/manifest.js';

describe('PCI addresses', () => {
  it('accepts DDDD:BB:DD.F only, and canonicalises case', () => {
    expect(parsePci('0000:3B:02.1')).toBe('0000:3b:02.1');
    for (const bad of ['0000:3b:02', '3b:02.1', '0000:3b:02.8', '0000:3b:20.0', '0000:3b:02.1 ', '../0000:3b:02.1', '0000:3b:02.1/..', '', 'x'.repeat(300)]) {
      expect(isPci(bad), bad).toBe(false);
      expect(() => parsePci(bad), bad).toThrow(/malformed/);
    }
    // A field out of range is named.
    expect(() => parsePci('0000:3b:02.8')).toThrow(/its function 8 is above 7/);
    expect(() => parsePci('0000:3B:20.0')).toThrow(/its device 20 is above 1f/);
    expect(parsePci('0000:3B:1F.7')).toBe('0000:3b:1f.7');
  });
  it('routing IDs round-trip (VF address arithmetic)', () => {
    const { domain, rid } = pciRid('0000:5e:00.1');
    expect(pciFromRid(domain, rid + 79)).toBe('0000:5e:0a.0');
    expect(pciFromRid(domain, 0x5eff + 1)).toBe('0000:5f:00.0');
  });
});

describe('discovery on a tree-only simulated NIC', () => {
  let m: SimManifest;
  let sysfs: Sysfs;
  beforeAll(async () => {
    m = makeSim({ profile: 'cx6dx', pfs: 2, vfs: 3, netdevs: false });
    sysfs = await openSysfs(m.root);
  });
  afterAll(() => dropSim(m.root));

  it('finds the PFs with their profile, tier and VF counts, and no netdevs', () => {
    const pfs = listPfs(sysfs);
    expect(pfs).toHaveLength(2);
    expect(pfs[0]).toMatchObject({ vendor: '15b3', device: '101d', driver: 'mlx5_core', profile: 'cx6dx', tier: 1, numVfs: 3, netdev: null });
    const vfs = listVfs(sysfs);
    expect(vfs.map((v) => v.index)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(vfs[0]).toMatchObject({ device: '101e', driver: 'mlx5_core', netdev: null, settings: { spoofchk: true, vlan: 0 } });
  });

  it('names a VF by address or as PF#INDEX, and says what exists when it is wrong', () => {
    const vf = listVfs(sysfs)[4]!;
    expect(resolveVf(sysfs, `${m.pfs[1]!.pci}#1`).pci).toBe(vf.pci);
    expect(resolveVf(sysfs, vf.pci.toUpperCase()).index).toBe(1);
    expect(() => resolveVf(sysfs, `${m.pfs[1]!.pci}#3`)).toThrow(/out of range .* 3 VF\(s\), indexes 0–2/);
    // an index this PF lacks is a fact of the host (exit 1); one that is no number, a usage error
    expect(thrown(VfpError, () => resolveVf(sysfs, `${m.pfs[1]!.pci}#3`)).kind).toBe('not-found');
    expect(thrown(VfpError, () => resolveVf(sysfs, `${m.pfs[1]!.pci}#x`))).toMatchObject({ kind: 'invalid', message: expect.stringMatching(/VF index "x" .* is malformed/) });
    expect(() => resolveVf(sysfs, m.pfs[0]!.pci)).toThrow(/not a VF/);
    expect(() => resolvePf(sysfs, 'ens9f9')).toThrow(/no SR-IOV PF "ens9f9".*PFs here: 0000:5e:00\.0, 0000:5e:00\.1/);
    // A VF's address where a PF's is wanted: its PF is named.
    const e = thrown(VfpError, () => resolvePf(sysfs, vf.pci));
    expect(e.kind).toBe('invalid');
    expect(e.message).toBe(`${vf.pci} is a VF, not a PF: give its PF, ${m.pfs[1]!.pci}`); // (this tree has no netdevs)
  });

  it('keeps every path inside the root', () => {
    for (const rel of ['../etc/passwd', '/etc/passwd', 'bus/../../x', './bus']) {
      expect(() => sysfs.read(rel), rel).toThrow(/refusing sysfs path/);
      expect(() => sysfs.write(rel, '1'), rel).toThrow(/refusing sysfs path/);
    }
  });

  it('binds and renumbers VFs without netdevs (a DPDK-only node)', () => {
    const vf = listVfs(sysfs)[0]!;
    // mlx5's DPDK PMD is bifurcated (the profile says so): vfio-pci only when forced.
    expect(thrown(VfpError, () => bindVf(sysfs, vf.pci, 'vfio-pci'))).toMatchObject({
      kind: 'conflict', message: `VF ${vf.pci} is a cx6dx VF: DPDK's mlx5_eth PMD runs on it bound to mlx5_core (a bifurcated driver) and cannot use it bound to vfio-pci; leave it on mlx5_core (a pod's DPDK opens it through its netdev), or pass --force`,
    });
    expect(listVfs(sysfs)[0]!.driver).toBe('mlx5_core');
    expect(bindVf(sysfs, vf.pci, 'vfio-pci', { force: true })).toMatchObject({ after: 'vfio-pci', vfioDevice: `${m.devRoot}/vfio/${vf.iommuGroup}` });
    setNumVfs(sysfs, m.pfs[1]!.pci, 0);
    setNumVfs(sysfs, m.pfs[1]!.pci, 5);
    expect(listVfs(sysfs, { pf: m.pfs[1]!.pci })).toHaveLength(5);
    expect(listVfs(sysfs)[0]!.driver).toBe('vfio-pci');
  });

  it('a virtfn link that leads to no VF of its PF (the PF itself, a device gone) names no VF, and binding through it changes nothing', async () => {
    const own = makeSim({ profile: 'sim', pfs: 1, vfs: 3, netdevs: false });
    try {
      const sys = await openSysfs(own.root);
      const pfDir = join(own.root, 'bus', 'pci', 'devices', own.pfs[0]!.pci);
      const real = realpathSync(pfDir);
      for (const [to, what] of [['../' + own.pfs[0]!.pci, `leads to ${own.pfs[0]!.pci}, which is not a VF of it`], ['../0000:5e:09.7', 'leads to 0000:5e:09.7, which is not a VF of it']] as const) {
        rmSync(join(real, 'virtfn1'));
        symlinkSync(to, join(real, 'virtfn1'));
        expect(listVfs(sys).map((v) => v.index), to).toEqual([0, 2]);
        const driverBefore = readlinkSync(join(real, 'driver'));
        expect(thrown(VfpError, () => bindVf(sys, `${own.pfs[0]!.pci}#1`, 'vfio-pci'))).toMatchObject({ kind: 'not-found', message: expect.stringContaining(what) });
        expect(readlinkSync(join(real, 'driver'))).toBe(driverBefore);
        expect(readFileSync(join(real, 'driver_override'), 'utf8').trim()).not.toBe('vfio-pci');
      }
    } finally {
      dropSim(own.root);
    }
  });

  it('names the boot: the kernel\'s boot_id for /sys, the simulator\'s own for its tree, none for another tree', async () => {
    expect(new Sysfs('/sys').bootId()).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(sysfs.bootId()).toBe(JSON.parse(readFileSync(join(m.root, 'vfplane-sim.json'), 'utf8')).bootId);
    expect(new Sysfs('/nonexistent-vfplane').bootId()).toBeNull();
  });

  it('reads an empty or missing tree as no PFs, and a missing root as a clear error', async () => {
    expect(listPfs(new Sysfs('/nonexistent-vfplane'))).toEqual([]);
    await expect(openSysfs('/nonexistent-vfplane')).rejects.toThrow(/sysfs root \/nonexistent-vfplane does not exist/);
  });
});

// A family whose hardware encap/decap works through tc flower only is tier 1 with its
// eswitch in switchdev mode, where the PF's netdev has a switch id, and tier 2 in legacy
// mode. No shipped profile is such a family (E810's tc flower matches and redirects
// only), so an operator's profile makes one.
describePrivileged('discovery: the tier a PF allows as it runs', { netns: true }, () => {
  it('reports the shipped E810 as tier 2 in either eswitch mode', async () => {
    const m = makeSim({ profile: 'e810', pfs: 1, vfs: 0 });
    try {
      const pf = listPfs(await openSysfs(m.root))[0]!;
      expect(pf).toMatchObject({ profile: 'e810', tier: 2 });
      expect(pf.tierNote).toBeUndefined();
      const devDir = realpathSync(join(m.root, 'bus/pci/devices', pf.pci));
      writeFileSync(join(devDir, 'net', pf.netdev!, 'phys_switch_id'), '00112233\n');
      expect(listPfs(await openSysfs(m.root))[0]).toMatchObject({ tier: 2 });
    } finally {
      dropSim(m.root);
    }
  });

  it('reads a tc-flower-only tier-1 family\'s eswitch mode from its representors, not from a switch id (ice has one in legacy mode too)', async () => {
    await withOperatorProfile('e810', tcFlowerOnlyTier1, async () => {
      const m = makeSim({ profile: 'e810', pfs: 1, vfs: 2 });
      try {
        // the simulator gives each VF a representor, as switchdev mode does: tier 1
        expect(listPfs(await openSysfs(m.root))[0]).toMatchObject({ profile: 'e810', tier: 1 });
        const pf = listPfs(await openSysfs(m.root))[0]!;
        const devDir = realpathSync(join(m.root, 'bus/pci/devices', pf.pci));
        // legacy mode as ice lays it out: VFs without representors, and a switch id on
        // the PF netdev all the same (was: tier 1, for the switch id)
        for (const n of readdirSync(join(devDir, 'net'))) if (n !== pf.netdev) rmSync(join(devDir, 'net', n), { recursive: true });
        writeFileSync(join(devDir, 'net', pf.netdev!, 'phys_switch_id'), '00112233\n');
        const legacy = listPfs(await openSysfs(m.root))[0]!;
        expect(legacy).toMatchObject({ tier: 2, tierNote: expect.stringContaining('switchdev') });
        expect(pfEswitch(await openSysfs(m.root), legacy)).toMatchObject({ eswitch: 'legacy', representors: 0 });
      } finally {
        dropSim(m.root);
      }
    });
  });

  it('says the same eswitch mode for a simulated E810 PF with VFs and without', async () => {
    const m = makeSim({ profile: 'e810', pfs: 1, vfs: 0 });
    try {
      const sysfs = await openSysfs(m.root);
      const pf = listPfs(sysfs)[0]!;
      // was: legacy (a veth PF netdev has no switch id), and switchdev once it had VFs
      expect(pfEswitch(sysfs, pf)).toMatchObject({ eswitch: 'switchdev', representors: 0 });
      setNumVfs(sysfs, pf.pci, 2);
      expect(pfEswitch(await openSysfs(m.root), listPfs(await openSysfs(m.root))[0]!)).toEqual({ eswitch: 'switchdev', representors: 2 });
    } finally {
      dropSim(m.root);
    }
    const t = makeSim({ profile: 'e810', pfs: 1, vfs: 0, netdevs: false });
    try {
      const sysfs = await openSysfs(t.root);
      // tree-only: no representors with VFs, so legacy without them too
      expect(pfEswitch(sysfs, listPfs(sysfs)[0]!)).toMatchObject({ eswitch: 'legacy' });
    } finally {
      dropSim(t.root);
    }
  });
});

// A pool ADD walks the node's VFs lazily (vfRefs, freeInPool) instead of reading every
// one in full (listVfs, poolView): it must take the VFs the full read would offer, in the
// same order, and read in full only those.
describe('a pool walk reads only what it takes', () => {
  let m: SimManifest;
  let sysfs: Sysfs;
  beforeAll(async () => {
    m = makeSim({ profile: 'x710', pfs: 2, vfs: 24, netdevs: false });
    sysfs = await openSysfs(m.root);
    // Tree-only: a kernel-bound VF has no netdev (unusable); a vfio-pci one is given as
    // DPDK. Every third VF stays on iavf; one virtfn link leads nowhere.
    for (const v of listVfs(sysfs)) if (v.index % 3 !== 1) bindVf(sysfs, v.pci, 'vfio-pci');
    const real = realpathSync(join(m.root, 'bus', 'pci', 'devices', m.pfs[1]!.pci));
    rmSync(join(real, 'virtfn5'));
    symlinkSync('../0000:5e:1f.7', join(real, 'virtfn5'));
  });
  afterAll(() => dropSim(m.root));

  it('a VfRef reads as listVfs reads the VF, and a damaged link is no VF', () => {
    const refs = vfRefs(sysfs);
    const vfs = listVfs(sysfs);
    expect(refs).toHaveLength(48);
    expect(refs.filter((r) => !r.present).map((r) => `${r.pf}#${r.index}`)).toEqual([`${m.pfs[1]!.pci}#5`]);
    expect(refs.filter((r) => r.present).map((r) => r.info())).toEqual(vfs);
    for (const [i, r] of refs.filter((x) => x.present).entries()) {
      expect({ pci: r.pci, pf: r.pf, pfNetdev: r.pfNetdev, index: r.index, vendor: r.vendor, device: r.device, driver: r.driver, numaNode: r.numaNode })
        .toEqual({ pci: vfs[i]!.pci, pf: vfs[i]!.pf, pfNetdev: vfs[i]!.pfNetdev, index: vfs[i]!.index, vendor: vfs[i]!.vendor, device: vfs[i]!.device, driver: vfs[i]!.driver, numaNode: vfs[i]!.numaNode });
    }
  });

  it('offers the VFs poolView offers, in its order, for any selector and held set', () => {
    const vfs = listVfs(sysfs);
    const [pf0, pf1] = [m.pfs[0]!.pci, m.pfs[1]!.pci];
    const selectors: PoolSelector[] = [
      { rootDevices: [pf0] }, { rootDevices: [pf1] }, { drivers: ['vfio-pci'] }, { drivers: ['iavf'] }, { vendors: ['8086'], numaNodes: [0] },
      { devices: ['154c'] }, { pciAddresses: [vfs[30]!.pci, vfs[3]!.pci, '0000:5e:1f.7'] }, { anyOf: [{ rootDevices: [pf1] }, { drivers: ['iavf'] }] },
      { numaNodes: [1] },
    ];
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let nonEmpty = 0;
    for (let trial = 0; trial < 200; trial++) {
      const sel = selectors[trial % selectors.length]!;
      const held = new Set(vfs.filter(() => rnd() < 0.6).map((v) => v.pci));
      const want = 1 + Math.floor(rnd() * 5);
      const full = poolView(vfs, sel, held).candidates.filter((v) => !held.has(v.pci)).slice(0, want);
      const lazy = freeInPool(vfRefs(sysfs), sel, held, want);
      expect(lazy, `${JSON.stringify(sel)} want ${want}`).toEqual(full);
      if (lazy.length) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(100);
  });

  it('reads in full only the VFs it offers, and of the others no more than the selector asks', async () => {
    const reads: string[] = [];
    class Counting extends Sysfs {
      override linkName(rel: string) { reads.push(rel); return super.linkName(rel); }
      override tryRead(rel: string) { reads.push(rel); return super.tryRead(rel); }
      override list(rel: string) { reads.push(rel); return super.list(rel); }
    }
    const counted = new Counting(sysfs.root, sysfs.kernel);
    const vfs = listVfs(sysfs).filter((v) => v.pf === m.pfs[0]!.pci && v.driver === 'vfio-pci');
    const held = new Set(vfs.slice(0, 5).map((v) => v.pci));
    const got = freeInPool(vfRefs(counted), { rootDevices: [m.pfs[0]!.pci] }, held, 3);
    expect(got.map((v) => v.pci)).toEqual(vfs.slice(5, 8).map((v) => v.pci));
    const of = (attr: string) => new Set(reads.filter((r) => r.endsWith(`/${attr}`)).map((r) => r.split('/')[3]));
    // In full (its IOMMU group, its netdev dir): the three taken, and the kernel-bound VFs
    // met on the way, found unusable.
    const metKernel = listVfs(sysfs).filter((v) => v.pf === m.pfs[0]!.pci && v.index <= vfs[7]!.index && v.driver === 'iavf').map((v) => v.pci);
    expect([...of('iommu_group')].sort()).toEqual([...got.map((v) => v.pci), ...metKernel].sort());
    // The other PF's VFs: not one link followed (the selector names the PF).
    expect(reads.filter((r) => r.startsWith(`bus/pci/devices/${m.pfs[1]!.pci}/virtfn`))).toEqual([]);
    // Nor any VF of this PF past the last one taken.
    expect([...of('physfn')].filter((pci) => pci! > got[2]!.pci)).toEqual([]);
  });
});
