// `vfplane doctor` reports the build and the host as they are: the backends the build
// recorded, sockets the kernel really opens, and the NICs under a sysfs root.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, vfplane } from '../helpers/cli.js';
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
    expect(pf!.detail).toMatch(/8086:159b ice, 2\/256 VFs, profile e810, tier 1.*\(simulated\)/);
  });

  it('on a root without SR-IOV NICs, says how to get a simulated one', () => {
    const r = vfplane(['doctor', '--json', '--sysfs-root', join(m.root, 'bus')]);
    const nic = JSON.parse(r.stdout).checks.find((c: any) => c.area === 'nic');
    expect(nic).toMatchObject({ status: 'warn', fix: expect.stringContaining('vfplane sim create') });
  });
});
