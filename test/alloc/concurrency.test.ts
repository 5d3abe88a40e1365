// Many processes, one store: nobody ever holds a VF another process holds. Checked
// twice, without trusting the store: O_EXCL holder files while the workers run, and the
// history log afterwards (per VF, alloc and release must alternate). Runs the built
// worker (dist/bench/alloc-worker.js), as `vfplane bench alloc` does.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { runAllocBench } from '../../src/bench/alloc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Child processes run the build; a stale one would test old code. */
function requireBuilt(srcs: string[]): void {
  for (const s of srcs) {
    const src = path.join(ROOT, 'src', s);
    const out = path.join(ROOT, 'dist', s.replace(/\.ts$/, '.js'));
    if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
      throw new Error(`dist/${s.replace(/\.ts$/, '.js')} is missing or older than src/${s}: run npm run build first`);
    }
  }
}

beforeAll(() => requireBuilt(['alloc/store.ts', 'alloc/pool.ts', 'alloc/owner.ts', 'bench/alloc.ts', 'bench/alloc-worker.ts']));

describe('concurrent allocation', () => {
  it('6 processes × 300 cycles on 4 VFs: no VF held twice, nothing left, file sound', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-conc-'));
    try {
      const procs = 6;
      const cycles = 300;
      const r = await runAllocBench({ procs, cycles, vfs: 4, quiet: true, keep: true, stateDir: parent });
      expect(r.doubleAllocations).toBe(0);
      expect(r.alloc.count).toBe(procs * cycles);
      expect(r.release.count).toBe(procs * cycles);
      expect(r.leftoverAllocations).toBe(0);
      expect(r.integrity).toBe('ok');
      // More processes than VFs: some found every VF held and retried.
      expect(r.retries).toBeGreaterThan(0);
      expect(r.busy).toBe(0);

      const db = new Database(path.join(r.benchDir!, 'store', 'alloc.db'), { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(db.prepare('SELECT count(*) FROM allocations').pluck().get()).toBe(0);
        const log = db.prepare('SELECT op, pci, owner FROM history ORDER BY seq').all() as { op: string; pci: string; owner: string }[];
        expect(log).toHaveLength(2 * procs * cycles);
        const holder = new Map<string, string>();
        for (const e of log) {
          if (e.op === 'alloc') {
            expect(holder.has(e.pci), `${e.pci} allocated to ${e.owner} while ${holder.get(e.pci)} held it`).toBe(false);
            holder.set(e.pci, e.owner);
          } else {
            expect(holder.get(e.pci)).toBe(e.owner);
            holder.delete(e.pci);
          }
        }
        expect(holder.size).toBe(0);
      } finally {
        db.close();
      }
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  it('runs the bench as the CLI will (simulated NIC when available) and reports the figures', async () => {
    const r = await runAllocBench({ procs: 3, cycles: 50, vfs: 4, quiet: true });
    expect(r.ok).toBe(true);
    expect(r.candidates).toBe(4);
    expect(r.opsPerSec).toBeGreaterThan(0);
    expect(r.alloc.p50Us).toBeGreaterThan(0);
    expect(r.alloc.p99Us).toBeGreaterThanOrEqual(r.alloc.p50Us);
    expect(r.alloc.maxUs).toBeGreaterThanOrEqual(r.alloc.p99Us);
    expect(r.benchDir).toBeNull();
  });
});
