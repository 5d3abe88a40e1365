// `vfplane bench dataplane`: one worker on memory ports as destinations spread and the
// FDB grows. The figures are the bench's business; here, that it runs as a user runs it,
// reports every cell, and refuses an FDB too small for its destinations.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { destFrames, entryMac } from '../../src/bench/dataplane.js';

const run = (args: string[]) => spawnSync(process.execPath, [BIN, 'bench', 'dataplane', ...args], { encoding: 'utf8', timeout: 120_000 });

describe('vfplane bench dataplane', () => {
  it('measures every (destinations, FDB size) cell, through the worker to the uplink', () => {
    const r = run(['--dests', '1,32', '--fdb-sizes', '64,4096', '--trials', '1', '--duration', '50', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.cells.map((c: { dests: number; fdbEntries: number }) => [c.dests, c.fdbEntries])).toEqual([[1, 64], [32, 64], [1, 4096], [32, 4096]]);
    for (const c of j.cells) {
      expect(c.mpps).toBeGreaterThan(0.1); // the bench itself refuses a run that flooded or dropped
      expect(c.nsPerPacket).toBeCloseTo(1e3 / c.mpps, 6);
    }
    expect(j.growth.map((g: { dests: number }) => g.dests)).toEqual([1, 32]);
    expect(j.command).toBe('vfplane bench dataplane --dests 1,32 --fdb-sizes 64,4096 --trials 1 --duration 50 --json');
  });

  it('prints a table for humans, with the command', () => {
    const r = run(['--dests', '4', '--fdb-sizes', '16', '--trials', '1', '--duration', '20']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/destinations .* FDB 16: Mpps \(ns\/pkt\)/);
    expect(r.stdout).toMatch(/command: vfplane bench dataplane --dests 4 --fdb-sizes 16/);
  });

  it('refuses an FDB smaller than the destinations, naming both, before it starts', () => {
    const r = run(['--dests', '1,100', '--fdb-sizes', '50,1000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--fdb-sizes 50: smaller than --dests 100; every destination must have an FDB entry, so give FDB sizes of at least 100/);
    expect(r.stdout).toBe('');
  });

  it('sends frame j to FDB entry j mod dests, a whole number of cycles', () => {
    for (const d of [1, 3, 256, 300]) {
      const f = destFrames(d);
      expect(f.length % d).toBe(0);
      expect(f.length).toBeGreaterThanOrEqual(256);
      f.forEach((x, j) => expect([...x.subarray(0, 6)]).toEqual([...entryMac(j % d)]));
    }
  });
});
