// The memory bench's report: what it holds to issue 2's targets, from measured figures.
import { describe, expect, it } from 'vitest';
import { buildReport } from '../../src/bench/report.js';
import type { FdbCell, MemoryBenchResult } from '../../src/bench/memory.js';
import { resolveTunnel } from '../../src/packet/config.js';

const result = (fdb: [number, number][]): MemoryBenchResult => ({
  hostReference: { before: 1, after: 1 },
  machine: { cpu: 'x', cores: 2, node: 'v20', kernel: 'k', date: '2026-12-04T00:00:00Z' },
  cells: [],
  fdb: fdb.map(([entries, nsPerLookup]) => ({ entries, nsPerLookup }) as unknown as FdbCell),
});
const tunnel = resolveTunnel({ local: '192.0.2.1', remote: '192.0.2.2' });
const fdbTarget = (r: MemoryBenchResult) => buildReport(r, tunnel, { burst: 32 }).targets.filter((t) => t.name.startsWith('FDB'));

describe('the FDB growth target', () => {
  it('is judged from 1k to 1M entries, whatever else was measured', () => {
    expect(fdbTarget(result([[1000, 10], [100_000, 11], [1_000_000, 12], [4_000_000, 30]]))).toEqual([
      { name: 'FDB lookup 1k → 1M entries', target: '≤ +25%', measured: expect.stringMatching(/^\+20(\.0)?%$/), pass: true },
    ]);
  });

  it('is not judged at other sizes (500 → 2M once failed a target defined for 1k → 1M)', () => {
    expect(fdbTarget(result([[500, 10], [2_000_000, 30]]))).toEqual([]);
  });
});
