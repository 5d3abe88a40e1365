// `vfplane bench dataplane`: one worker on memory ports as destinations spread and the
// FDB grows. The figures are the bench's business; here, that it runs as a user runs it,
// reports every cell, and refuses an FDB too small for its destinations.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { decapFrames, destFrames, destOrder, entryMac } from '../../src/bench/dataplane.js';

const run = (args: string[]) => spawnSync(process.execPath, [BIN, 'bench', 'dataplane', ...args], { encoding: 'utf8', timeout: 120_000 });

describe('vfplane bench dataplane', () => {
  it('measures every (destinations, FDB size) cell, through the worker to the uplink', () => {
    const r = run(['--dests', '1,32', '--fdb-sizes', '64,4096', '--trials', '1', '--duration', '50', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.cells.map((c: { op: string; dests: number; fdbEntries: number }) => `${c.op} ${c.dests}/${c.fdbEntries}`)).toEqual([
      'encap 1/64', 'encap 32/64', 'decap 1/64', 'decap 32/64', 'encap 1/4096', 'encap 32/4096', 'decap 1/4096', 'decap 32/4096']);
    for (const c of j.cells) {
      expect(c.mpps).toBeGreaterThan(0.1); // the bench itself refuses a run that flooded or dropped
      expect(c.nsPerPacket).toBeCloseTo(1e3 / c.mpps, 6);
      // One or 32 remote MACs stay in the worker's cache (direct-mapped: one pair of these
      // 32 destinations shares a slot, and misses every time round).
      expect(c.cacheHitRate).toBeLessThan(1);
      expect(c.cacheHitRate).toBeGreaterThan(c.dests === 1 ? 0.99 : 0.9);
    }
    expect(j.growth.map((g: { op: string; dests: number }) => `${g.op} ${g.dests}`)).toEqual(['encap 1', 'encap 32', 'decap 1', 'decap 32']);
    expect(j.command).toBe('vfplane bench dataplane --dests 1,32 --fdb-sizes 64,4096 --trials 1 --duration 50 --json');
  });

  it('prints a table for humans, with the command', () => {
    const r = run(['--dests', '4', '--fdb-sizes', '16', '--trials', '1', '--duration', '20']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/│ op\s+│ remote MACs\s+│ FDB 16: Mpps \(ns\/pkt, cache hits\)\s+│ ns\/pkt growth\s+│/);
    expect(r.stdout).toMatch(/│ encap\s+│ 4 destinations\s+│ [\d.]+ \([\d.]+, (99|100)\.\d%\)/);
    expect(r.stdout).toMatch(/│ decap\s+│ 4 sources\s+│ [\d.]+ \([\d.]+, (99|100)\.\d%\)/);
    expect(r.stdout).toMatch(/command: vfplane bench dataplane --dests 4 --fdb-sizes 16/);
  });

  it('--learn: decap learns every sender (the bench refuses a run that did not), and needs no static entry for them', () => {
    const r = run(['--ops', 'decap', '--learn', '--dests', '1,300', '--fdb-sizes', '16', '--trials', '1', '--duration', '50', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.learn).toBe(true);
    expect(j.what).toMatch(/static-entry check of the inner source, learning it, local MAC → the pod/);
    expect(j.cells.map((c: { op: string; dests: number }) => `${c.op} ${c.dests}`)).toEqual(['decap 1', 'decap 300']);
    for (const c of j.cells) expect(c.mpps).toBeGreaterThan(0.1);
    // Encap still sends to static entries: those must exist.
    const both = run(['--learn', '--dests', '300', '--fdb-sizes', '16']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--fdb-sizes 16: smaller than --dests 300/);
  });

  it('--spread zipf: a few remote MACs take most frames, every one is sent to (and learned) at least once', () => {
    const order = destOrder(1000, 'zipf');
    const counts = new Array<number>(1000).fill(0);
    for (const k of order) counts[k]!++;
    expect(order.length).toBeGreaterThan(16000);
    expect(Math.min(...counts)).toBe(2); // 16384 / H(1000) / 1000, rounded
    const tail = destOrder(8000, 'zipf'); // there, most of the 8000 would round to none
    expect(new Set(tail).size).toBe(8000);
    expect(counts[0]! / counts[9]!).toBeCloseTo(10, 0); // 1/k
    expect(counts.slice(0, 10).reduce((a, b) => a + b, 0) / order.length).toBeGreaterThan(0.35);
    expect(order.slice(0, 8)).not.toEqual([0, 0, 0, 0, 0, 0, 0, 0]); // shuffled, not bunched
    expect(destOrder(1000, 'zipf')).toEqual(order); // the same frames every run
    expect(destOrder(3, 'cycle')).toEqual(Array.from({ length: 258 }, (_, j) => j % 3));
    const r = run(['--spread', 'zipf', '--learn', '--ops', 'decap', '--dests', '500', '--fdb-sizes', '16', '--trials', '1', '--duration', '50', '--json']);
    expect(r.status, r.stderr).toBe(0); // the bench refuses a run that did not learn all 500
    const j = JSON.parse(r.stdout);
    expect(j.spread).toBe('zipf');
    expect(j.cells[0].mpps).toBeGreaterThan(0.1);
    const bad = run(['--spread', 'uniform']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--spread/);
    expect(bad.stderr).toMatch(/uniform/);
  });

  it('refuses an FDB smaller than the destinations, naming both, before it starts', () => {
    const r = run(['--dests', '1,100', '--fdb-sizes', '50,1000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--fdb-sizes 50: smaller than --dests 100; every remote MAC must have an FDB entry, so give FDB sizes of at least 100/);
    expect(r.stdout).toBe('');
  });

  it('decap frames: VXLAN from the peer to our VTEP, VNI as asked, inner frame from FDB entry j mod dests to the pod', () => {
    const f = decapFrames(3, 4242);
    expect(f.length % 3).toBe(0);
    f.forEach((x, j) => {
      expect([...x.subarray(26, 34)]).toEqual([192, 0, 2, 2, 192, 0, 2, 1]); // outer IPv4 source, destination
      expect((x[46]! << 16) | (x[47]! << 8) | x[48]!).toBe(4242);
      expect([...x.subarray(50 + 6, 50 + 12)]).toEqual([...entryMac(j % 3)]);
      expect([...x.subarray(50, 56)]).toEqual([0x02, 0, 0, 0, 0, 0xfd]);
    });
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
