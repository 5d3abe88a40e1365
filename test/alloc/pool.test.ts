// Pool selectors: parsing (vfplane's format and the SR-IOV device plugin's), the error
// messages (file, field path, value, reason), matching, and VF ranges against a NIC.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSelectorAgainst, loadPools, matchVf, parsePfName, parsePoolSelector, poolVfs, vfCountsByPf, whyNoMatch } from '../../src/alloc/pool.js';
import { syntheticVfs } from '../../src/bench/alloc.js';
import type { VfInfo } from '../../src/sriov/types.js';
import { VfpError } from '../../src/util/errors.js';
import { thrown } from '../helpers/thrown.js';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-pool-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, value: unknown): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
  return f;
}

const err = (fn: () => unknown) => thrown(VfpError, fn);

// 8 VFs: vfpbf0 (PF 0000:5e:00.0) VFs 0–3, vfpbf1 (PF 0000:5e:00.1) VFs 0–3.
const vfs: VfInfo[] = syntheticVfs(8);
const vf = (pf: number, i: number) => vfs[pf * 4 + i]!;
const names = (sel: Parameters<typeof matchVf>[1]) => poolVfs(vfs, sel).map((v) => `${v.pfNetdev}#${v.index}`);

describe('parsePoolSelector', () => {
  it('accepts every field and normalises IDs and addresses', () => {
    expect(parsePoolSelector({
      vendors: ['8086', '0x15B3'], devices: ['154C'], drivers: ['iavf', 'vfio-pci'],
      pfNames: ['ens1f0', 'ens1f1#0-3', 'ens2f0#0,2,5-7'], rootDevices: ['0000:3B:00.0'], numaNodes: [0, '1'],
      pciAddresses: ['0000:3b:02.1'],
    }, 'x')).toEqual({
      vendors: ['8086', '15b3'], devices: ['154c'], drivers: ['iavf', 'vfio-pci'],
      pfNames: ['ens1f0', 'ens1f1#0-3', 'ens2f0#0,2,5-7'], rootDevices: ['0000:3b:00.0'], numaNodes: [0, 1],
      pciAddresses: ['0000:3b:02.1'],
    });
    expect(parsePoolSelector({ vendors: [], drivers: ['iavf'] }, 'x')).toEqual({ drivers: ['iavf'] });
  });

  it('names the place, the field, the value and the problem', () => {
    const cases: [unknown, string][] = [
      [{ pfNames: ['ens1f0#9-3'] }, 'sel: pfNames[0]: "ens1f0#9-3": range end before start'],
      [{ pfNames: ['ens1f0#'] }, 'sel: pfNames[0]: "ens1f0#": nothing after #'],
      [{ pfNames: ['ens1f0#1,x'] }, 'sel: pfNames[0]: "ens1f0#1,x": "x" is not a VF index or range'],
      [{ pfNames: ['bad name#1'] }, 'sel: pfNames[0]: "bad name#1": PF name "bad name" is not a Linux interface name'],
      [{ vendors: ['8086', 'intel'] }, 'sel: vendors[1]: "intel": expected 4 hex digits'],
      [{ rootDevices: ['3b:00.0'] }, 'sel: rootDevices[0]: "3b:00.0": not a PF PCI address'],
      [{ numaNodes: [-1] }, 'sel: numaNodes[0]: -1: expected a NUMA node number ≥ 0'],
      [{ drivers: 'iavf' }, 'sel: drivers: "iavf": expected a list'],
      [{ pfName: ['ens1f0'] }, 'sel: unknown field "pfName" (known: vendors, devices, drivers, pfNames, rootDevices, pciAddresses, numaNodes, isRdma, anyOf)'],
    ];
    for (const [value, msg] of cases) {
      const e = err(() => parsePoolSelector(value, 'sel'));
      expect(e.kind).toBe('invalid');
      expect(e.message).toContain(msg);
    }
  });
});

describe('loadPools', () => {
  it('reads vfplane pools files', () => {
    const f = write('pools.json', { pools: [
      { name: 'fast', selector: { pfNames: ['vfpbf0#0-1'] } },
      { name: 'rest', selector: { drivers: ['iavf'], anyOf: [{ pfNames: ['vfpbf0#2-3'] }, { rootDevices: ['0000:5e:00.1'] }] } },
    ] });
    const pools = loadPools(f);
    expect(pools.map((p) => p.name)).toEqual(['fast', 'rest']);
    expect(names(pools[0]!.selector)).toEqual(['vfpbf0#0', 'vfpbf0#1']);
    expect(names(pools[1]!.selector)).toEqual(['vfpbf0#2', 'vfpbf0#3', 'vfpbf1#0', 'vfpbf1#1', 'vfpbf1#2', 'vfpbf1#3']);
  });

  it('says which file, pool and field is wrong', () => {
    const f = write('pools-bad.json', { pools: [{ name: 'a', selector: { drivers: ['iavf'] } }, { name: 'b', selector: { pfNames: ['ens1f0#9-3'] } }] });
    expect(err(() => loadPools(f)).message).toBe(`${f}: pools[1].selector.pfNames[0]: "ens1f0#9-3": range end before start`);
    // A mistake in the file is bad input in a file (exit 1 at the CLI), not a bad command.
    expect(err(() => loadPools(f)).kind).toBe('bad-file');
    expect(err(() => loadPools(write('broken-kind.json', '{'))).kind).toBe('bad-file');
    const dup = write('pools-dup.json', { pools: [{ name: 'a', selector: { drivers: ['iavf'] } }, { name: 'a', selector: { drivers: ['iavf'] } }] });
    expect(err(() => loadPools(dup)).message).toContain('pool name "a" appears twice');
    const missing = write('pools-noname.json', { pools: [{ selector: { drivers: ['iavf'] } }] });
    // A selector with no criteria is refused, not read as "any VF" (a typo'd pool).
    const empty = write('pools-empty.json', { pools: [{ name: 'a', selector: {} }, { name: 'b', selector: { anyOf: [{ drivers: ['iavf'] }, {}] } }] });
    expect(err(() => loadPools(empty)).message.split('; ')).toEqual([
      expect.stringMatching(/^.*pools-empty\.json: pools\[0\]\.selector: {}: a selector with no criteria would take any VF of the node: name at least one/),
      expect.stringMatching(/pools\[1\]\.selector\.anyOf\[1\]: {}: an alternative with no criteria would take any VF of the node/),
    ]);
    expect(err(() => loadPools(missing)).message).toBe(`${missing}: pools[0].name: missing: expected a pool name`);
    // An unknown field is shown with the fields of the object it sits in.
    const unknown = write('pools-unknown.json', { pools: [{ name: 'a', selector: { bogusField: [1] } }, { name: 'b', selector: { anyOf: [{ x: 1 }] }, extra: 1 }], top: 1 });
    expect(err(() => loadPools(unknown)).message.split('; ')).toEqual([
      `${unknown}: pools[0].selector: unknown field "bogusField" (known: vendors, devices, drivers, pfNames, rootDevices, pciAddresses, numaNodes, isRdma, anyOf)`,
      `${unknown}: pools[1].selector.anyOf[0]: unknown field "x" (known: vendors, devices, drivers, pfNames, rootDevices, pciAddresses, numaNodes, isRdma)`,
      `${unknown}: pools[1]: unknown field "extra" (known: name, selector)`,
      `${unknown}: unknown field "top" (known: pools)`,
    ]);
    expect(err(() => loadPools(write('broken.json', '{"pools": ['))).message).toContain('broken.json: not valid JSON');
    // A file that is no JSON at all (the wrong path: a shadow file, a key) is not quoted.
    const secret = err(() => loadPools(write('secret', 'root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\n'))).message;
    expect(secret).toMatch(/secret: not valid JSON: Unexpected token/);
    expect(secret).not.toContain('saltsalt');
    expect(err(() => loadPools(write('other.json', { foo: 1 }))).message).toContain('or the SR-IOV network device plugin\'s config');
    const absent = err(() => loadPools(path.join(dir, 'absent.json')));
    expect(absent.kind).toBe('not-found');
    expect(absent.message).toContain('absent.json does not exist');
  });

  it('reads the SR-IOV network device plugin config, with one selector object or a list of them', () => {
    const f = write('sriovdp.json', { resourceList: [
      { resourceName: 'intel_sriov_netdevice', resourcePrefix: 'intel.com', selectors: { vendors: ['8086'], devices: ['154c'], drivers: ['iavf'], pfNames: ['vfpbf1#2-3'], linkTypes: ['ether'], isRdma: false } },
      { resourceName: 'union', deviceType: 'netDevice', selectors: [{ pfNames: ['vfpbf0#0'] }, { pciAddresses: [vf(1, 0).pci] }] },
    ] });
    const pools = loadPools(f);
    expect(pools[0]).toEqual({ name: 'intel_sriov_netdevice', selector: { vendors: ['8086'], devices: ['154c'], drivers: ['iavf'], pfNames: ['vfpbf1#2-3'] } });
    expect(names(pools[0]!.selector)).toEqual(['vfpbf1#2', 'vfpbf1#3']);
    // A list of selectors is their union.
    expect(pools[1]!.selector.anyOf).toHaveLength(2);
    expect(names(pools[1]!.selector)).toEqual(['vfpbf0#0', 'vfpbf1#0']);
  });

  // helper-86: a migrating user's file, specific resources first and a catch-all last,
  // gave the reserved VFs to the catch-all too: the device plugin gives a device to the
  // first resource that selects it ("Cannot add device ... Already allocated").
  it('gives each VF to the first resource that selects it, as the device plugin does', () => {
    const f = write('sriovdp-overlap.json', { resourceList: [
      { resourceName: 'reserved', selectors: { pfNames: ['vfpbf1#1-2'] } },
      { resourceName: 'general', selectors: { vendors: ['8086'], drivers: ['iavf'] } },
      { resourceName: 'shadowed', selectors: [{ pfNames: ['vfpbf1#1'] }, { pciAddresses: [vf(1, 2).pci] }] },
    ] });
    const [reserved, general, shadowed] = loadPools(f);
    expect(names(reserved!.selector)).toEqual(['vfpbf1#1', 'vfpbf1#2']);
    expect(names(general!.selector)).toEqual(['vfpbf0#0', 'vfpbf0#1', 'vfpbf0#2', 'vfpbf0#3', 'vfpbf1#0', 'vfpbf1#3']);
    expect(names(shadowed!.selector)).toEqual([]);
    expect(whyNoMatch(vfs, shadowed!.selector)).toBe('the 2 VFs it selects are selected first by resource "reserved", earlier in the file: as the SR-IOV device plugin does, a device goes to the first resource that selects it (narrow the earlier selector, or put this resource first)');
    // vfplane's own pools may overlap, as they always could.
    const own = loadPools(write('own-overlap.json', { pools: [{ name: 'a', selector: { pfNames: ['vfpbf1#1-2'] } }, { name: 'b', selector: { drivers: ['iavf'] } }] }));
    expect(names(own[1]!.selector)).toHaveLength(8);
  });

  // helper-86: the sriov-network-operator's generated config spells fields as Go
  // structs do ("IsRdma", "NeedVhostNet"), which the device plugin's decoder takes in
  // any case; vfplane refused the file.
  it('reads field names in any case and null as unset, as the device plugin\'s Go decoder does', () => {
    const f = write('sriovdp-operator.json', { ResourceList: [{
      ResourceName: 'enp', SelectorObjs: null, selectors: { Vendors: ['8086'], devices: ['154c'], PfNames: ['vfpbf0#0-3'], rootDevices: null, IsRdma: false, NeedVhostNet: false },
    }] });
    const [enp] = loadPools(f);
    expect(enp).toEqual({ name: 'enp', selector: { vendors: ['8086'], devices: ['154c'], pfNames: ['vfpbf0#0-3'] } });
    const twice = write('sriovdp-twice.json', { resourceList: [{ resourceName: 'x', selectors: { pfNames: ['vfpbf0'], PfNames: ['vfpbf1'] } }] });
    expect(err(() => loadPools(twice)).message).toBe(`${twice}: resourceList[0].selectors.pfNames and PfNames name one field (the device plugin reads field names in any case): keep pfNames`);
    // isRdma: true, in whatever case, selects (helper-101: the device plugin's usual
    // ConnectX resource was refused, and with it the whole file).
    expect(loadPools(write('sriovdp-rdma2.json', { resourceList: [{ resourceName: 'r', selectors: { IsRdma: true, vendors: ['15b3'] } }] }))[0]!.selector).toEqual({ vendors: ['15b3'], isRdma: true });
  });

  // helper-86: the device plugin documents "rootDevices": ["0000:86:00.0#0-1,3,4"].
  it('takes VF indices after a # in rootDevices, as in pfNames', () => {
    const [r] = loadPools(write('sriovdp-root.json', { resourceList: [{ resourceName: 'r', selectors: { rootDevices: ['0000:5E:00.1#0,2-3', '0000:5e:00.0#1'] } }] }));
    expect(names(r!.selector)).toEqual(['vfpbf0#1', 'vfpbf1#0', 'vfpbf1#2', 'vfpbf1#3']);
    expect(names(parsePoolSelector({ rootDevices: ['0000:5e:00.0'] }, 'x'))).toHaveLength(4);
    expect(err(() => parsePoolSelector({ rootDevices: ['0000:5e:00.0#3-1'] }, 'sel')).message).toBe('sel: rootDevices[0]: "0000:5e:00.0#3-1": range end before start');
  });

  it('refuses device plugin selectors it cannot evaluate rather than widening the pool', () => {
    const f = write('sriovdp-ddp.json', { resourceList: [{ resourceName: 'ddp', selectors: { vendors: ['8086'], ddpProfiles: ['GTP'] } }] });
    expect(err(() => loadPools(f)).message).toBe(
      `${f}: resourceList[0].selectors.ddpProfiles: ["GTP"]: vfplane does not support this device plugin selector (it supports vendors, devices, drivers, pfNames, rootDevices, pciAddresses, numaNodes, isRdma); remove it or write a vfplane pools file`,
    );
    const g = write('sriovdp-accel.json', { resourceList: [{ resourceName: 'fpga', deviceType: 'accelerator', selectors: {} }] });
    expect(err(() => loadPools(g)).message).toContain('resourceList[0].deviceType: "accelerator": vfplane allocates netDevice resources only');
    const cased = write('sriovdp-cased.json', { resourceList: [{ resourceName: 'n', deviceType: 'NetDevice', selectors: { drivers: ['iavf'] } }] });
    expect(err(() => loadPools(cased)).message).toBe(`${cased}: resourceList[0].deviceType: "NetDevice": expected "netDevice", spelled so (values are case-sensitive, as the device plugin reads them)`);
    const h = write('sriovdp-range.json', { resourceList: [{ resourceName: 'r', selectors: [{ pfNames: ['p0#4-2'] }] }] });
    expect(err(() => loadPools(h)).message).toBe(`${h}: resourceList[0].selectors[0].pfNames[0]: "p0#4-2": range end before start`);
  });
});

describe('matchVf', () => {
  it('ANDs the given fields and ORs within each', () => {
    expect(names({})).toHaveLength(8);
    expect(names({ vendors: ['8086'], devices: ['154c', '1889'] })).toHaveLength(8);
    expect(names({ vendors: ['15b3'] })).toEqual([]);
    expect(names({ drivers: ['vfio-pci'] })).toEqual([]);
    expect(names({ pfNames: ['vfpbf0#0,3', 'vfpbf1#1'] })).toEqual(['vfpbf0#0', 'vfpbf0#3', 'vfpbf1#1']);
    expect(names({ pfNames: ['vfpbf0'], rootDevices: ['0000:5e:00.1'] })).toEqual([]);
    expect(names({ rootDevices: ['0000:5e:00.1'], numaNodes: [0] })).toHaveLength(4);
    expect(names({ numaNodes: [1] })).toEqual([]);
    expect(matchVf({ ...vf(0, 0), driver: null }, { drivers: ['iavf'] })).toBe(false);
    expect(matchVf({ ...vf(0, 0), pfNetdev: null }, { pfNames: ['vfpbf0'] })).toBe(false);
    expect(parsePfName('ens1f0#0,2,5-7')).toEqual({ pf: 'ens1f0', ranges: [[0, 0], [2, 2], [5, 7]] });
  });
});

describe('checkSelectorAgainst', () => {
  it('refuses VF ranges beyond the PF, naming the entry and the PF\'s VF count', () => {
    const counts = vfCountsByPf(vfs);
    expect(counts.get('vfpbf0')).toBe(4);
    checkSelectorAgainst({ pfNames: ['vfpbf0#0-3', 'vfpbf1', 'elsewhere#0-99'] }, counts);
    const e = err(() => checkSelectorAgainst({ pfNames: ['vfpbf0#1', 'vfpbf1#2-5'] }, counts, 'pools.json: pool "fast"'));
    expect(e.kind).toBe('invalid');
    expect(e.message).toBe('pools.json: pool "fast": pfNames[1]: "vfpbf1#2-5": VF index out of range: vfpbf1 has 4 VFs (indices 0–3); fix the range or create more VFs');
    expect(err(() => checkSelectorAgainst({ anyOf: [{ pfNames: ['p#1'] }] }, { p: 0 })).message).toContain('anyOf[0].pfNames[0]: "p#1": VF index out of range: p has no VFs');
    // rootDevices ranges too (helper-88: past the PF's VFs they gave a smaller pool).
    expect(err(() => checkSelectorAgainst({ rootDevices: ['0000:5e:00.1#2-5'] }, counts, 'f.json: pool "r"')).message).toBe('f.json: pool "r": rootDevices[0]: "0000:5e:00.1#2-5": VF index out of range: PF 0000:5e:00.1 has 4 VFs (indices 0–3); fix the range or create more VFs');
    checkSelectorAgainst({ rootDevices: ['0000:5e:00.1#0-3', '0000:3b:00.0#0-99'] }, counts);
    // VF lists work as well as counts.
    expect(() => checkSelectorAgainst({ pfNames: ['vfpbf0#4'] }, new Map([['vfpbf0', vfs.slice(0, 4)]]))).toThrow(/VF index out of range/);
  });
});

describe('whyNoMatch', () => {
  it('names each criterion no VF here meets, with what the node has', () => {
    expect(whyNoMatch(vfs, { pfNames: ['ens9f0'], numaNodes: [3] })).toBe(
      `pfNames ["ens9f0"] matches none: this node's PFs with VFs are vfpbf0, vfpbf1; numaNodes [3] matches none: VFs here are on NUMA node ${vf(0, 0).numaNode}`);
    expect(whyNoMatch(vfs, { rootDevices: ['0000:3b:00.0'] })).toBe("rootDevices [\"0000:3b:00.0\"] matches none: this node's PFs with VFs are 0000:5e:00.0, 0000:5e:00.1");
    expect(whyNoMatch([], { drivers: ['iavf'] })).toBe('this node has no VFs; create them with `vfplane pf set-numvfs PF N`');
  });

  it('says so when each criterion matches some VF and none matches all', () => {
    const sel = { pfNames: ['vfpbf0#0-1'], pciAddresses: [vf(1, 2).pci] };
    expect(poolVfs(vfs, sel)).toEqual([]);
    expect(whyNoMatch(vfs, sel)).toBe('each criterion matches some VF here, but no VF matches them all (8 VFs; see `vfplane vf list`)');
    const alt = { pfNames: ['vfpbf0'], anyOf: [{ pciAddresses: [vf(1, 0).pci] }] };
    expect(poolVfs(vfs, alt)).toEqual([]);
    expect(whyNoMatch(vfs, alt)).toBe('no VF that the other criteria select matches any of its 1 anyOf alternatives');
  });
});
