// `vfplane sim destroy` removes the directory and the netdevs a simulator's manifest
// names, so it first checks the manifest: a copied or edited one is refused, and
// nothing is removed. Each refusal names the manifest, the field and what it must be.
// Trees only (no netdevs), so no root is needed.
import { cpSync, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

  /** A copy of A's tree, its manifest changed by EDIT (or replaced by what it returns). */
  function copyOfA(edit: (m: any, b: string) => unknown): string {
    const b = simRoot();
    copies.push(b);
    cpSync(a.root, b, { recursive: true, verbatimSymlinks: true });
    const mf = join(b, 'vfplane-sim.json');
    const m = JSON.parse(readFileSync(mf, 'utf8'));
    const other = edit(m, b);
    writeFileSync(mf, JSON.stringify(other === undefined ? m : other));
    return b;
  }

  /** The copy's paths made its own, so the check gets past root, devRoot and stateDir. */
  const own = (m: any, b: string) => Object.assign(m, { root: b, devRoot: join(b, 'vfplane-dev'), stateDir: join(b, 'vfplane-sim-state') });
  /** … and a simulator with netdevs, so that their names are checked against the prefix. */
  const ownWithNetdevs = (m: any, b: string) => Object.assign(own(m, b), { netdevs: true, parkNetns: `${m.prefix}-park` });

  // [what, edit, the problem the message names: "field: what it must be (got value)"]
  const cases: [string, (m: any, b: string) => unknown, (b: string) => string][] = [
    ['a plain copy', () => {}, (b) => `root: expected ${b}, the tree the manifest is in (compared by realpath) (got ${JSON.stringify(a.root)})`],
    ['a relative root', (m, b) => { own(m, b); m.root = 'vfplane-sim'; }, () => 'root: expected an absolute path (the tree the manifest is in) (got "vfplane-sim")'],
    ['root edited, devRoot still the original', (m, b) => { m.root = b; },
      (b) => `devRoot: expected ${b}/vfplane-dev (inside root) (got ${JSON.stringify(`${a.root}/vfplane-dev`)})`],
    ['root and devRoot edited, stateDir still the original', (m, b) => { own(m, b); m.stateDir = a.stateDir; },
      (b) => `stateDir: expected ${b}/vfplane-sim-state (inside root) (got ${JSON.stringify(a.stateDir)})`],
    ['a park netns of another name', (m, b) => { ownWithNetdevs(m, b); m.parkNetns = 'default'; },
      () => `parkNetns: expected "${a.prefix}-park" (the prefix's) (got "default")`],
    ['a park netns without netdevs', (m, b) => { own(m, b); m.parkNetns = `${m.prefix}-park`; },
      () => `parkNetns: expected null (no netdevs, no namespace) (got "${a.prefix}-park")`],
    ['a prefix no simulator could have', (m, b) => { own(m, b); m.prefix = 'Eth'; },
      () => 'prefix: expected 1–8 lower-case letters and digits starting with a letter (the netdev prefix) (got "Eth")'],
    ['a PF netdev without the prefix', (m, b) => { ownWithNetdevs(m, b); m.pfs[0].netdev = 'eth0'; },
      () => `pfs.0.netdev: expected "${a.prefix}f0" (netdevs carry the prefix) (got "eth0")`],
    ['an uplink peer without the prefix', (m, b) => { ownWithNetdevs(m, b); m.pfs[0].uplinkPeer = 'eth1'; },
      () => `pfs.0.uplinkPeer: expected "${a.prefix}f0u" (netdevs carry the prefix) (got "eth1")`],
    ['a PF out of its place', (m, b) => { own(m, b); m.pfs[0].index = 1; }, () => 'pfs.0.index: expected 0 (its place in pfs) (got 1)'],
    ['a PF on another bus', (m, b) => { own(m, b); m.pfs[0].pci = '0000:5f:00.0'; },
      () => 'pfs.0.pci: expected a PCI address on bus 0000:5e (pciBus) (got "0000:5f:00.0")'],
    ['a VF count out of range', (m, b) => { own(m, b); m.pfs[0].totalVfs = 1e9; },
      () => 'pfs.0.totalVfs: expected an integer in 0–256 (sriov_totalvfs) (got 1000000000)'],
    ['no PF list', (m, b) => { own(m, b); delete m.pfs; }, () => 'pfs: expected a list of 1–8 PFs'],
    ['netdevs as a string', (m, b) => { own(m, b); m.netdevs = 'yes'; },
      () => 'netdevs: expected true or false (whether the simulator made netdevs) (got "yes")'],
    ['a NUMA node as a string', (m, b) => { own(m, b); m.numaNode = '0'; },
      () => 'numaNode: expected an integer in -1–1023 (-1: none) (got "0")'],
    ['another version', (m, b) => { own(m, b); m.version = 2; }, () => 'version: expected 1, the only manifest version (got 2)'],
    ['a list for a manifest', () => [], () => 'the manifest: expected a JSON object (got [])'],
  ];

  for (const [what, edit, problem] of cases) {
    it(`refuses ${what} and removes nothing`, () => {
      const b = copyOfA(edit);
      const msg = `${join(b, 'vfplane-sim.json')} cannot be trusted: ${problem(b)}; nothing was changed. ` +
        `A copied or edited tree is no simulator: remove it with \`rm -r ${b}\` (any netdevs belong to the simulator that made them)`;
      const r = vfplane(['sim', 'destroy', '--root', b]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toBe(`vfplane: ${msg}\n`);
      const j = vfplane(['sim', 'destroy', '--root', b, '--json']);
      expect(j.code).toBe(1);
      expect(JSON.parse(j.stdout).error).toMatchObject({ kind: 'conflict', message: msg });
      expect(existsSync(join(a.root, 'vfplane-sim.json'))).toBe(true);
      expect(existsSync(join(b, 'vfplane-sim.json'))).toBe(true);
    });
  }

  it('shows a manifest as written, and one that names its tree through a symlink', () => {
    const shown = vfplane(['sim', 'show', '--root', a.root, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual(JSON.parse(readFileSync(join(a.root, 'vfplane-sim.json'), 'utf8')));

    const via = join(simRoot(), 'tree');
    const b = copyOfA((m) => { own(m, via); });
    symlinkSync(b, via);
    const r = vfplane(['sim', 'show', '--root', b, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ root: via, devRoot: join(via, 'vfplane-dev'), prefix: a.prefix });
  });

  it('still destroys a simulator through another spelling of its root', () => {
    const r = vfplane(['sim', 'destroy', '--root', `${a.root}/./`]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(a.root)).toBe(false);
  });
});
