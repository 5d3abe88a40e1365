// What vf list / vf show / a pool's error advise for a kernel-bound VF of a simulator made
// without netdevs: binding it to vfio-pci, except for a family whose DPDK PMD is
// bifurcated (cx5), which `vf bind --driver vfio-pci` refuses (helper-106).
import { describe, expect, it } from 'vitest';
import { unusableFix, unusableFixFor } from '../../src/alloc/pool.js';
import type { VfInfo } from '../../src/sriov/types.js';

const vf = (pci: string, vendor: string, device: string, driver: string): VfInfo => ({
  pci, pf: '0000:5e:00.0', pfNetdev: null, index: 0, vendor, device, driver, netdev: null, mac: null, mtu: null,
  iommuGroup: 100, vfioDevice: null, numaNode: 0, settings: null,
});

describe('advice for a VF of a simulator without netdevs', () => {
  it('an iavf VF: bind it to vfio-pci', () => {
    expect(unusableFixFor(vf('0000:5e:02.0', '8086', '154c', 'iavf'), true)).toContain('`vfplane vf bind 0000:5e:02.0 --driver vfio-pci`');
  });
  it('a cx5 VF: not vfio-pci, which vf bind refuses for it', () => {
    const fix = unusableFixFor(vf('0000:5e:02.0', '15b3', '1018', 'mlx5_core'), true);
    expect(fix).not.toContain('--driver vfio-pci`) to allocate');
    expect(fix).toContain('its family is bifurcated');
    expect(fix).toContain('make the simulator again with netdevs');
    expect(unusableFix([vf('0000:5e:02.0', '15b3', '1018', 'mlx5_core'), vf('0000:5e:02.1', '15b3', '1018', 'mlx5_core')], true)).toContain('its family is bifurcated');
  });
});
