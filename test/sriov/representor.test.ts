// Finding a VF's representor as the kernel lays switchdev out: netdevs under the PF's PCI
// device, each naming its VF in phys_port_name and carrying the PF's phys_switch_id. The
// trees here are written by hand in the shapes mlx5 and ice give (devlink port names,
// older mlx5's bare VF index, older ice's "vfr"), since this machine has no such NIC; the
// simulated NIC's own layout is checked through vfplane-cni's overlay tests.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseVfPortName, findRepresentor, pfEswitch } from '../../src/sriov/discover.js';
import { Sysfs } from '../../src/sriov/sysfs.js';

const root = mkdtempSync(join(tmpdir(), 'vfplane-reps-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A PF's device dir with netdevs: name → [phys_port_name, phys_switch_id] (undefined: absent, as when the driver has no such op). */
function pf(pci: string, netdevs: Record<string, [string | undefined, string | undefined]>): void {
  for (const [name, [port, sw]] of Object.entries(netdevs)) {
    const d = join(root, 'bus/pci/devices', pci, 'net', name);
    mkdirSync(d, { recursive: true });
    if (port !== undefined) writeFileSync(join(d, 'phys_port_name'), `${port}\n`);
    if (sw !== undefined) writeFileSync(join(d, 'phys_switch_id'), `${sw}\n`);
  }
}

describe('VF representors', () => {
  it('parses the port names drivers give', () => {
    expect(parseVfPortName('pf0vf3')).toEqual({ pf: 0, vf: 3 });
    expect(parseVfPortName('c1pf1vf12')).toEqual({ pf: 1, vf: 12 });
    expect(parseVfPortName('pf0vfr7')).toEqual({ pf: 0, vf: 7 });
    expect(parseVfPortName('5')).toEqual({ pf: null, vf: 5 });
    for (const other of ['p0', 'pf0', 'p0s1', 'pf0sf3', '', 'vf3']) expect(parseVfPortName(other), other).toBeNull();
  });

  it('finds a VF\'s representor among its PF\'s switchdev ports, by VF index and PF function, on its switch', () => {
    const sysfs = new Sysfs(root);
    // mlx5 in switchdev mode, second port (PCI function 1): its uplink port and three VF
    // representors, one renamed by udev; a representor naming function 0's VF 2 (another
    // PF's numbering) and one of another switch.
    pf('0000:3b:00.1', {
      enp59s0f1np1: ['p1', '00154d130d2f'],
      enp59s0f1npf1vf0: ['pf1vf0', '00154d130d2f'],
      eth7: ['pf1vf2', '00154d130d2f'],
      enp59s0f1npf0vf2: ['pf0vf2', '00154d130d2f'],
      stray: ['pf1vf1', 'ffffffffffff'],
    });
    expect(findRepresentor(sysfs, { pf: '0000:3b:00.1', index: 0 })).toBe('enp59s0f1npf1vf0');
    expect(findRepresentor(sysfs, { pf: '0000:3b:00.1', index: 2 })).toBe('eth7');
    expect(findRepresentor(sysfs, { pf: '0000:3b:00.1', index: 1 })).toBeUndefined(); // only another switch's
    expect(findRepresentor(sysfs, { pf: '0000:3b:00.1', index: 3 })).toBeUndefined();
    // Older mlx5: the VF index alone, on a switch port.
    pf('0000:5e:00.0', { ens1f0: ['p0', 'aa'], ens1f0_2: ['2', 'aa'] });
    expect(findRepresentor(sysfs, { pf: '0000:5e:00.0', index: 2 })).toBe('ens1f0_2');
    // Older ice.
    pf('0000:af:00.0', { ens2f0: [undefined, '3c'], ens2f0vfr4: ['pf0vfr4', '3c'] });
    expect(findRepresentor(sysfs, { pf: '0000:af:00.0', index: 4 })).toBe('ens2f0vfr4');
  });

  it('finds none on a PF in legacy mode, or one whose netdev only looks like a port number', () => {
    const sysfs = new Sysfs(root);
    pf('0000:18:00.0', { ens3f0: [undefined, undefined] }); // i40e: no switchdev ops at all
    expect(findRepresentor(sysfs, { pf: '0000:18:00.0', index: 0 })).toBeUndefined();
    pf('0000:19:00.0', { ens4f0: ['0', undefined] }); // a bare number without a switch: not a representor
    expect(findRepresentor(sysfs, { pf: '0000:19:00.0', index: 0 })).toBeUndefined();
    expect(findRepresentor(sysfs, { pf: '0000:99:00.0', index: 0 })).toBeUndefined(); // no such PF
  });

  it('tells a PF\'s eswitch mode (pf list): representors are switchdev; VFs without any, or no switch id, legacy; else unknown', () => {
    const sysfs = new Sysfs(root);
    pf('0000:3c:00.0', { ens5f0np0: ['p0', 'bb'], ens5f0npf0vf0: ['pf0vf0', 'bb'], ens5f0npf0vf1: ['pf0vf1', 'bb'] });
    expect(pfEswitch(sysfs, { profile: null, pci: '0000:3c:00.0', netdev: 'ens5f0np0', numVfs: 2 })).toEqual({ eswitch: 'switchdev', representors: 2 });
    // a representor of a VF index the PF no longer has is not counted
    expect(pfEswitch(sysfs, { profile: null, pci: '0000:3c:00.0', netdev: 'ens5f0np0', numVfs: 1 })).toEqual({ eswitch: 'switchdev', representors: 1 });
    // ice in legacy mode: a switch id (its devlink port's) and VFs, but no representors
    pf('0000:3d:00.0', { ens6f0: [undefined, 'cc'] });
    expect(pfEswitch(sysfs, { profile: null, pci: '0000:3d:00.0', netdev: 'ens6f0', numVfs: 4 })).toEqual({ eswitch: 'legacy', representors: 0 });
    // ...and without VFs: a switch id alone does not say which mode
    expect(pfEswitch(sysfs, { profile: null, pci: '0000:3d:00.0', netdev: 'ens6f0', numVfs: 0 })).toEqual({ eswitch: null, representors: 0 });
    // mlx5 (or i40e) without a switch id: legacy, VFs or not
    expect(pfEswitch(sysfs, { profile: null, pci: '0000:18:00.0', netdev: 'ens3f0', numVfs: 0 })).toEqual({ eswitch: 'legacy', representors: 0 });
    // no netdev and no VFs: nothing to read
    expect(pfEswitch(sysfs, { profile: null, pci: '0000:3e:00.0', netdev: null, numVfs: 0 })).toEqual({ eswitch: null, representors: 0 });
  });

  it('says legacy for a family without switchdev (X710) whatever its netdevs look like, and says why when they look like representors', () => {
    const sysfs = new Sysfs(root);
    // representor-shaped netdevs under an X710 PF (as the simulator lays them out): the
    // family has no eswitch modes, so they are no switchdev (was: switchdev)
    pf('0000:3f:00.0', { ens7f0: [undefined, undefined], ens7f0r0: ['pf0vf0', undefined], ens7f0r1: ['pf0vf1', undefined] });
    const x = pfEswitch(sysfs, { profile: 'x710', pci: '0000:3f:00.0', netdev: 'ens7f0', numVfs: 2 });
    expect(x).toMatchObject({ eswitch: 'legacy', representors: 2 });
    expect(x.eswitchNote).toContain('the x710 family has no switchdev mode');
    expect(pfEswitch(sysfs, { profile: 'x710', pci: '0000:3f:00.0', netdev: 'ens7f0', numVfs: 0 })).toEqual({ eswitch: 'legacy', representors: 0 });
    // the same netdevs under a family with switchdev are representors
    expect(pfEswitch(sysfs, { profile: 'cx5', pci: '0000:3f:00.0', netdev: 'ens7f0', numVfs: 2 })).toEqual({ eswitch: 'switchdev', representors: 2 });
  });
});
