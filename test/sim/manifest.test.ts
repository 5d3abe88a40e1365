// `vfplane sim destroy` removes the directory and the netdevs a simulator's manifest
// names, so it first checks the manifest: a copied or edited one is refused, and
// nothing is removed. Trees only (no netdevs), so no root is needed.
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vfplane } from '../helpers/cli.js';
import { dropAllSims, makeSim, simRoot, sweepStaleSims } from '../helpers/sim.js';
import type { SimManifest } from '../../src/sim/manifest.js';

describe('sim destroy trusts only a manifest that belongs to its root', () => {
  let a: SimManifest;
  const copies: string[] = [];

  beforeAll(() => {
    sweepStaleSims();
    a = makeSim({ netdevs: false });
  });
  afterAll(() => {
    for (const c of copies) rmSync(c, { recursive: true, force: true });
    dropAllSims();
  });

  /** A copy of A's tree, its manifest changed by EDIT. */
  function copyOfA(edit: (m: any, b: string) => void): string {
    const b = simRoot();
    copies.push(b);
    cpSync(a.root, b, { recursive: true, verbatimSymlinks: true });
    const mf = join(b, 'vfplane-sim.json');
    const m = JSON.parse(readFileSync(mf, 'utf8'));
    edit(m, b);
    writeFileSync(mf, JSON.stringify(m));
    return b;
  }

  const cases: [string, (m: any, b: string) => void, RegExp][] = [
    ['a plain copy', () => {}, /names root .* not /],
    ['root edited, devRoot still the original', (m, b) => { m.root = b; }, /devRoot/],
    ['a PF netdev without the prefix', (m, b) => {
      Object.assign(m, { root: b, devRoot: join(b, 'vfplane-dev'), stateDir: join(b, 'vfplane-sim-state'), netdevs: true, parkNetns: `${m.prefix}-park` });
      m.pfs[0].netdev = 'eth0';
    }, /pfs\[0\]\.netdev "eth0" is not/],
    ['a park netns of another name', (m, b) => {
      Object.assign(m, { root: b, devRoot: join(b, 'vfplane-dev'), stateDir: join(b, 'vfplane-sim-state'), netdevs: true, parkNetns: 'default' });
    }, /parkNetns "default"/],
    ['a representor count out of range', (m, b) => {
      Object.assign(m, { root: b, devRoot: join(b, 'vfplane-dev'), stateDir: join(b, 'vfplane-sim-state') });
      m.pfs[0].totalVfs = 1e9;
    }, /totalVfs/],
    ['no PF list', (m, b) => {
      Object.assign(m, { root: b, devRoot: join(b, 'vfplane-dev'), stateDir: join(b, 'vfplane-sim-state') });
      delete m.pfs;
    }, /pfs is not a list/],
  ];

  for (const [what, edit, msg] of cases) {
    it(`refuses ${what} and removes nothing`, () => {
      const b = copyOfA(edit);
      const r = vfplane(['sim', 'destroy', '--root', b]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).toMatch(/cannot be trusted.*nothing was changed/);
      const j = vfplane(['sim', 'destroy', '--root', b, '--json']);
      expect(j.code).toBe(1);
      expect(JSON.parse(j.stdout).error.message).toMatch(msg);
      expect(existsSync(join(a.root, 'vfplane-sim.json'))).toBe(true);
      expect(existsSync(join(b, 'vfplane-sim.json'))).toBe(true);
    });
  }

  it('still destroys a simulator through another spelling of its root', () => {
    const r = vfplane(['sim', 'destroy', '--root', `${a.root}/./`]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(a.root)).toBe(false);
  });
});
