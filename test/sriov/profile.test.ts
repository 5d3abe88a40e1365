// hw-profiles: every shipped profile validates and carries the IDs discovery depends on;
// broken profiles are rejected with the file, the field and what is wrong.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_PROFILES_DIR, factPaths, clearProfileCache, getProfile, jsonErrorOffset, loadProfiles, matchPf, matchVf,
  revalidateProfiles, vfCandidates,
} from '../../src/sriov/profile.js';
import { VfpError } from '../../src/util/errors.js';

const SHIPPED = ['cx5', 'cx6dx', 'e810', 'sim', 'virtio', 'x710'];

function rawProfile(name: string): Record<string, any> {
  return JSON.parse(readFileSync(join(DEFAULT_PROFILES_DIR, `${name}.json`), 'utf8'));
}

/** Loads dir (none: the shipped profiles and $VFPLANE_PROFILES_DIR) and returns the
 *  error it throws (the test fails if it does not throw). */
function loadError(dir?: string): VfpError {
  clearProfileCache();
  try {
    loadProfiles(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(VfpError);
    return err as VfpError;
  }
  throw new Error(`loading ${dir ?? 'the profiles'} did not fail`);
}

describe('a long-running process (vfplane cni serve) and edited profiles', () => {
  it('revalidateProfiles forgets a directory whose files changed, and only then', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfplane-prof-reval-'));
    try {
      const p = rawProfile('x710');
      p.vfSettings.minTxRate = true;
      writeFileSync(join(dir, 'x710.json'), JSON.stringify(p));
      clearProfileCache();
      expect(getProfile('x710', dir).vfSettings!.minTxRate).toBe(true);
      p.vfSettings.minTxRate = false;
      p.description += ' (edited)';
      writeFileSync(join(dir, 'x710.json'), JSON.stringify(p));
      expect(getProfile('x710', dir).vfSettings!.minTxRate).toBe(true); // cached
      revalidateProfiles();
      expect(getProfile('x710', dir).vfSettings!.minTxRate).toBe(false);
      const again = loadProfiles(dir);
      revalidateProfiles(); // nothing changed: the same list
      expect(loadProfiles(dir)).toBe(again);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      clearProfileCache();
    }
  });
});

describe('shipped hw-profiles', () => {
  it('all load and validate, sorted by name, each from its own file', () => {
    clearProfileCache();
    const ps = loadProfiles();
    expect(ps.map((p) => p.name)).toEqual(SHIPPED);
    for (const p of ps) expect(p.file).toBe(join(DEFAULT_PROFILES_DIR, `${p.name}.json`));
  });

  it('cite a source for every fact field and for nothing else', () => {
    expect(factPaths()).toEqual(expect.arrayContaining([
      'pf.ids', 'vf.ids', 'pf.driver', 'vf.driver', 'dpdk.pmd', 'dpdk.vfNeedsVfio', 'limits.maxVfsPerPf',
      'limits.maxVfsPerDevice', 'limits.queuesPerVfDefault', 'limits.queuesPerVfMax', 'lineRateMbps',
      'offloads.rteFlowEncapDecap', 'offloads.tcFlowerEncapDecap', 'offloads.switchdev', 'pf.afxdpZeroCopy', 'vf.afxdpZeroCopy',
      'offloads.outerIpv4Csum', 'offloads.outerUdpCsum', 'tier',
    ]));
    expect(factPaths()).not.toContain('name');
    expect(factPaths()).not.toContain('sources');
    // every fact a profile states (limits.maxPortsPerDevice only where a source states it)
    const stated = (p: object) => factPaths().filter((f) => f.split('.').reduce<any>((v, k) => v?.[k], p) !== undefined);
    for (const p of loadProfiles()) expect(Object.keys(p.sources).sort(), p.name).toEqual(stated(p).sort());
    expect(loadProfiles().filter((p) => p.limits.maxPortsPerDevice).map((p) => [p.name, p.limits.maxPortsPerDevice]))
      .toEqual([['cx5', 2], ['cx6dx', 2], ['e810', 8], ['sim', 8], ['x710', 4]]);
  });

  it('carry the PCI IDs discovery depends on', () => {
    expect(getProfile('x710').vf.ids).toEqual(expect.arrayContaining(['8086:154c', '8086:1889']));
    expect(getProfile('x710').pf.ids).toEqual(expect.arrayContaining(['8086:1572', '8086:1583', '8086:158b']));
    expect(getProfile('e810').vf.ids).toContain('8086:1889');
    expect(getProfile('e810').pf.ids).toEqual(expect.arrayContaining(['8086:1592', '8086:159b']));
    expect(getProfile('cx5').pf.ids).toContain('15b3:1017');
    expect(getProfile('cx5').vf.ids).toContain('15b3:1018');
    expect(getProfile('cx6dx').pf.ids).toEqual(['15b3:101d']);
    expect(getProfile('cx6dx').vf.ids).toEqual(['15b3:101e']);
    // The first ID is the typical part, which the simulator copies when impersonating.
    expect(loadProfiles().map((p) => [p.name, p.pf.ids[0], p.vf.ids[0]])).toEqual([
      ['cx5', '15b3:1017', '15b3:1018'], ['cx6dx', '15b3:101d', '15b3:101e'], ['e810', '8086:159b', '8086:1889'],
      ['sim', 'ffff:0001', 'ffff:0002'], ['virtio', '1af4:1041', '1af4:1041'], ['x710', '8086:1572', '8086:154c'],
    ]);
  });

  it('state the offload tiers of DESIGN.md', () => {
    const tier = Object.fromEntries(loadProfiles().map((p) => [p.name, p.tier]));
    expect(tier).toEqual({ cx5: 1, cx6dx: 1, e810: 2, x710: 2, virtio: 3, sim: 3 });
    // Only mlx5 has rte_flow VXLAN_ENCAP/DECAP. E810's switchdev mode offloads tc flower
    // rules that match VXLAN fields and redirect, but no encap/decap action (ice_tc_lib.c).
    expect(loadProfiles().filter((p) => p.offloads.rteFlowEncapDecap).map((p) => p.name)).toEqual(['cx5', 'cx6dx']);
    expect(getProfile('e810').offloads).toMatchObject({ tcFlowerEncapDecap: false, switchdev: true, vniSteering: true });
    expect(getProfile('cx5').dpdk).toEqual({ pmd: 'mlx5_eth', vfNeedsVfio: false, bifurcated: true });
    expect(getProfile('x710').limits).toEqual({ maxVfsPerPf: 64, maxVfsPerDevice: 128, queuesPerVfDefault: 4, queuesPerVfMax: 16, maxPortsPerDevice: 4 });
    expect(getProfile('e810').limits.maxVfsPerDevice).toBe(256);
    expect(getProfile('sim')).toMatchObject({ tier: 3, pf: { driver: 'vfplane_sim', afxdpZeroCopy: false }, vf: { driver: 'vfplane_simvf', afxdpZeroCopy: false } });
  });

  it('getProfile names the known profiles when asked for an unknown one', () => {
    expect(() => getProfile('x999')).toThrow(/no hw-profile named "x999"; known profiles: cx5, cx6dx, e810, sim, virtio, x710/);
    try {
      getProfile('x999');
    } catch (err) {
      expect((err as VfpError).kind).toBe('not-found');
    }
  });

  it('are cached per directory', () => {
    clearProfileCache();
    expect(loadProfiles()).toBe(loadProfiles(DEFAULT_PROFILES_DIR));
  });
});

describe('matching PCI IDs', () => {
  const ps = () => loadProfiles();

  it('matches PFs by vendor:device, accepting sysfs spelling', () => {
    expect(matchPf('8086', '1572', ps())?.name).toBe('x710');
    expect(matchPf('0x8086\n', '0x159B', ps())?.name).toBe('e810');
    expect(matchPf('15b3', '101d', ps())?.name).toBe('cx6dx');
    expect(matchPf('1af4', '1041', ps())?.name).toBe('virtio');
    expect(matchPf('8086', '10fb', ps())).toBeNull(); // 82599: no profile
    expect(matchPf('8086', '154c', ps())).toBeNull(); // a VF ID is not a PF ID
    // A damaged ID file matches nothing (and stops nothing else from being read).
    expect(matchPf('808', '1572', ps())).toBeNull();
    expect(matchPf('zzzz', '1572', ps())).toBeNull();
    expect(vfCandidates('8086', '18x9', ps())).toEqual([]);
  });

  it('prefers the PF profile for a VF ID that several families share', () => {
    expect(vfCandidates('8086', '1889', ps()).map((p) => p.name)).toEqual(['e810', 'x710']);
    expect(matchVf('8086', '1889', ps(), 'x710')?.name).toBe('x710');
    expect(matchVf('8086', '1889', ps(), 'e810')?.name).toBe('e810');
    // Without the PF the shared ID decides nothing.
    expect(matchVf('8086', '1889', ps())).toBeNull();
    expect(matchVf('8086', '1889', ps(), 'cx5')).toBeNull();
  });

  it('matches an unshared VF ID with or without the PF', () => {
    expect(matchVf('8086', '154c', ps())?.name).toBe('x710');
    expect(matchVf('15b3', '1018', ps())?.name).toBe('cx5');
    expect(matchVf('15b3', '101e', ps(), 'cx6dx')?.name).toBe('cx6dx');
    expect(matchVf('15b3', '1018', ps(), 'x710')?.name).toBe('cx5');
    expect(matchVf('dead', 'beef', ps())).toBeNull();
  });
});

describe('broken hw-profiles', () => {
  let root: string;
  let n = 0;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'vfplane-profiles-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A directory holding x710.json as shipped, changed by edit, saved as file. */
  function dirWith(edit: (p: Record<string, any>) => void, file = 'x710.json'): string {
    const dir = mkdtempSync(join(root, `case${n++}-`));
    const p = rawProfile('x710');
    edit(p);
    writeFileSync(join(dir, file), JSON.stringify(p, null, 2));
    return dir;
  }

  it('a field of an earlier profile format says what replaced it', () => {
    const dir = dirWith((p) => {
      p.afxdpZeroCopy = false;
      p.offloads.outerCsum = true;
    });
    const m = loadError(dir).message;
    expect(m).toMatch(/x710\.json: afxdpZeroCopy: unknown field: it became pf\.afxdpZeroCopy and vf\.afxdpZeroCopy/);
    expect(m).toMatch(/x710\.json: offloads\.outerCsum: unknown field: it became offloads\.outerIpv4Csum and offloads\.outerUdpCsum/);
  });

  it('a wrong type names the file, the field and the value', () => {
    const dir = dirWith((p) => { p.limits.maxVfsPerPf = '64'; });
    const err = loadError(dir);
    expect(err.kind).toBe('bad-file');
    expect(err.message).toContain(`${join(dir, 'x710.json')}: limits.maxVfsPerPf: expected a positive integer, got "64"`);
    expect(err.details).toMatchObject({ issues: [{ path: 'limits.maxVfsPerPf' }] });
  });

  it('an unknown field is an error, at any depth', () => {
    const err = loadError(dirWith((p) => { p.offloads.vxlanGpe = true; p.vendor = 'Intel'; }));
    expect(err.message).toMatch(/x710\.json: offloads\.vxlanGpe: unknown field/);
    expect(err.message).toMatch(/x710\.json: vendor: unknown field/);
  });

  it('a fact without a source is rejected, and so is a source for no fact', () => {
    const err = loadError(dirWith((p) => { delete p.sources['vf.ids']; p.sources['limits.maxVfs'] = 'https://example.org/'; }));
    expect(err.message).toMatch(/x710\.json: sources: missing a source for "vf\.ids"/);
    expect(err.message).toMatch(/x710\.json: sources: "limits\.maxVfs" is not a fact field/);
  });

  it('an optional fact (limits.maxPortsPerDevice) may be left out with its source, but not stated without one', () => {
    clearProfileCache();
    const left = dirWith((p) => { delete p.limits.maxPortsPerDevice; delete p.sources['limits.maxPortsPerDevice']; });
    expect(getProfile('x710', left).limits.maxPortsPerDevice).toBeUndefined();
    expect(loadError(dirWith((p) => { delete p.sources['limits.maxPortsPerDevice']; })).message).toMatch(/x710\.json: sources: missing a source for "limits\.maxPortsPerDevice"/);
    expect(loadError(dirWith((p) => { p.limits.maxPortsPerDevice = 0; })).message).toMatch(/x710\.json: limits\.maxPortsPerDevice: expected a positive integer, got 0/);
    clearProfileCache();
  });

  it('a source must be a URL or a path', () => {
    const err = loadError(dirWith((p) => { p.sources.tier = 'trust me'; p.sources['pf.ids'] = ''; }));
    expect(err.message).toMatch(/x710\.json: sources\["pf\.ids"\]: expected a URL .*, got ""/);
    expect(err.message).toMatch(/x710\.json: sources\.tier: expected a URL .*, got "trust me"/);
  });

  it('the name must be the file stem', () => {
    const err = loadError(dirWith(() => {}, 'i40e.json'));
    expect(err.message).toMatch(/i40e\.json: name: expected "i40e" \(the file stem\), got "x710"/);
  });

  it('malformed IDs, tiers and limits are named with their values', () => {
    const err = loadError(dirWith((p) => {
      p.vf.ids = ['8086:154C', '0x8086:1889'];
      p.tier = 4;
      p.limits.queuesPerVfDefault = 0;
      delete p.dpdk.vfNeedsVfio;
    }));
    expect(err.message).toMatch(/vf\.ids\[0\]: expected a PCI ID "vvvv:dddd" in lower-case hex, like "8086:1572", got "8086:154C"/);
    expect(err.message).toMatch(/vf\.ids\[1\]: expected a PCI ID .*, got "0x8086:1889"/);
    expect(err.message).toMatch(/tier: expected tier 1, 2 or 3, got 4/);
    expect(err.message).toMatch(/limits\.queuesPerVfDefault: expected a positive integer, got 0/);
    expect(err.message).toMatch(/dpdk\.vfNeedsVfio: expected true or false, but the field is missing/);
  });

  it('limits must be consistent with each other', () => {
    const err = loadError(dirWith((p) => { p.limits.queuesPerVfDefault = 32; p.limits.maxVfsPerPf = 256; }));
    expect(err.message).toMatch(/limits\.queuesPerVfDefault: expected at most queuesPerVfMax \(16\), got 32/);
    expect(err.message).toMatch(/limits\.maxVfsPerPf: expected at most maxVfsPerDevice \(128\), got 256/);
  });

  it('invalid JSON names the file, line and column', () => {
    const dir = mkdtempSync(join(root, 'json-'));
    writeFileSync(join(dir, 'x710.json'), '{\n  "name": "x710",\n  "tier": 2,,\n}\n');
    const err = loadError(dir);
    expect(err.kind).toBe('bad-file');
    expect(err.message).toMatch(/x710\.json: invalid JSON at line 3 column 13 \(/);
  });

  it('the JSON error position is found for every kind of syntax error', () => {
    const cases: [string, number][] = [
      ['{"a": }', 6], ['{"a": 1,}', 8], ['[1 2]', 3], ['{"a" 1}', 5], ['{"a": tru}', 9], ['"abc', 4],
      ['{"a": "\\x"}', 8], ['{"a": 01}', 7], ['', 0], ['{} x', 3], ['{"a": [1, {"b": null}]}', 23],
    ];
    for (const [text, at] of cases) expect([text, jsonErrorOffset(text)]).toEqual([text, at]);
    // Agrees with JSON.parse on mutations of a real profile: valid exactly when it parses.
    const base = readFileSync(join(DEFAULT_PROFILES_DIR, 'x710.json'), 'utf8');
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let k = 0; k < 500; k++) {
      const pos = rnd(base.length);
      const text = base.slice(0, pos) + ',:{}[]"\\ 1ex'[rnd(12)] + base.slice(pos + rnd(2));
      let parses = true;
      let atEnd = false;
      try {
        JSON.parse(text);
      } catch (e) {
        parses = false;
        // an error at the very end (a "[" put before the object) is at text.length too
        atEnd = new RegExp(`end of JSON input|position ${text.length}\\b`).test((e as Error).message);
      }
      if (atEnd) expect(jsonErrorOffset(text)).toBe(text.length);
      else expect([pos, jsonErrorOffset(text) === text.length]).toEqual([pos, parses]);
    }
  });

  it('a PF ID may name only one family', () => {
    const dir = dirWith(() => {});
    const copy = rawProfile('x710');
    copy.name = 'x710b';
    writeFileSync(join(dir, 'x710b.json'), JSON.stringify(copy));
    expect(loadError(dir).message).toMatch(/x710b\.json: pf\.ids: "8086:1572" is also a PF ID of x710 /);
  });

  it('reports every broken file at once, and caches nothing', () => {
    const dir = dirWith((p) => { p.tier = 0; });
    const cx5 = rawProfile('cx5');
    writeFileSync(join(dir, 'cx5.json'), JSON.stringify({ ...cx5, vf: { ...cx5.vf, afxdpZeroCopy: 'yes' } }));
    const err = loadError(dir);
    expect(err.message).toMatch(/^2 problems in the hw-profiles/);
    expect(err.message).toMatch(/cx5\.json: vf\.afxdpZeroCopy: expected true or false, got "yes"/);
    expect(err.message).toMatch(/x710\.json: tier: expected tier 1, 2 or 3, got 0/);
    expect(() => loadProfiles(dir)).toThrow(VfpError);
  });

  it('an empty or missing directory is not-found', () => {
    const empty = mkdtempSync(join(root, 'empty-'));
    expect(loadError(empty)).toMatchObject({ kind: 'not-found', message: expect.stringMatching(/no hw-profiles \(\*\.json\) in /) });
    expect(loadError(join(root, 'nope'))).toMatchObject({ kind: 'not-found', message: expect.stringMatching(/cannot read the hw-profiles directory .*ENOENT/) });
  });
});

// An operator's NIC family that vfplane does not ship (an 82599, say), or a shipped
// family with facts of their own: VFPLANE_PROFILES_DIR adds to the shipped profiles, and
// a profile there of a shipped one's name replaces it. Validated the same way.
describe('VFPLANE_PROFILES_DIR', () => {
  let dir: string;
  const before = process.env.VFPLANE_PROFILES_DIR;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfplane-extra-profiles-'));
  });
  afterAll(() => {
    if (before === undefined) delete process.env.VFPLANE_PROFILES_DIR;
    else process.env.VFPLANE_PROFILES_DIR = before;
    clearProfileCache();
    rmSync(dir, { recursive: true, force: true });
  });
  const put = (file: string, edit: (p: Record<string, any>) => void) => {
    const p = rawProfile('x710');
    edit(p);
    writeFileSync(join(dir, file), JSON.stringify(p, null, 2));
  };

  it('adds a family and replaces a shipped one of the same name', () => {
    put('ixgbe.json', (p) => { p.name = 'ixgbe'; p.pf.ids = ['8086:10fb']; p.pf.driver = 'ixgbe'; p.vf.ids = ['8086:10ed']; });
    put('x710.json', (p) => { p.description = 'ours: firmware-limited'; });
    process.env.VFPLANE_PROFILES_DIR = dir;
    clearProfileCache();
    const ps = loadProfiles();
    expect(ps.map((p) => p.name)).toEqual([...SHIPPED, 'ixgbe'].sort());
    expect(matchPf('0x8086', '0x10fb', ps)?.name).toBe('ixgbe');
    expect(ps.find((p) => p.name === 'x710')).toMatchObject({ description: 'ours: firmware-limited', file: join(dir, 'x710.json') });
    // An explicit directory is that directory only.
    expect(loadProfiles(DEFAULT_PROFILES_DIR).find((p) => p.name === 'x710')!.file).toBe(join(DEFAULT_PROFILES_DIR, 'x710.json'));
  });

  it('refuses a PF ID that a shipped family already names, naming both files', () => {
    put('copycat.json', (p) => { p.name = 'copycat'; p.pf.ids = ['8086:1889', '8086:159b']; p.vf.ids = ['8086:1889']; });
    process.env.VFPLANE_PROFILES_DIR = dir;
    const err = loadError();
    expect(err).toBeInstanceOf(VfpError);
    expect((err as Error).message).toMatch(/(copycat|e810)\.json: pf\.ids: "8086:159b" is also a PF ID of (e810|copycat) \(.*\.json\)/);
    expect((err as Error).message).toContain('copycat');
    rmSync(join(dir, 'copycat.json'));
  });

  it('an unreadable directory is named with the variable to fix', () => {
    process.env.VFPLANE_PROFILES_DIR = join(dir, 'nope');
    clearProfileCache();
    expect(() => loadProfiles()).toThrow(/cannot read the hw-profiles directory .*nope \(ENOENT\); check VFPLANE_PROFILES_DIR/);
  });
});

