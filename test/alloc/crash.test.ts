// A process killed inside an allocation leaves nothing behind: no row, no lock, and the
// next allocation gets the VF. The child runs the built store and blocks inside its
// IMMEDIATE transaction, after the INSERT, through the VFPLANE_TEST_PAUSE_IN_TXN hook.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { AllocStore, DB_FILE, PAUSE_ENV } from '../../src/alloc/store.js';
import { syntheticVfs } from '../../src/bench/alloc.js';
import { VfpError } from '../../src/util/errors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STORE_JS = pathToFileURL(path.join(ROOT, 'dist/alloc/store.js')).href;
const vfs = syntheticVfs(4);

beforeAll(() => {
  const src = path.join(ROOT, 'src/alloc/store.ts');
  const out = path.join(ROOT, 'dist/alloc/store.js');
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
    throw new Error('dist/alloc/store.js is missing or older than src/alloc/store.ts: run npm run build first');
  }
});

let dir: string;
let stateDir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-crash-'));
  stateDir = path.join(dir, 'state');
  AllocStore.open(stateDir).close();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A child that allocates `loops` times (releasing in between) and prints each VF. */
function child(loops: number, env: Record<string, string> = {}): ChildProcess {
  const code = `
    import { AllocStore } from ${JSON.stringify(STORE_JS)};
    const vfs = ${JSON.stringify(vfs)};
    const s = AllocStore.open(${JSON.stringify(stateDir)});
    for (let i = 0; i < ${loops}; i++) {
      const a = s.allocate({ candidates: vfs, owner: { containerId: 'doomed-' + i, ifname: 'net1' } });
      process.stdout.write(a.pci + '\\n');
      if (i + 1 < ${loops}) s.release(a.pci, { id: a.id });
    }
    s.close();`;
  return spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

async function waitFor(file: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a new store', () => {
  it('8 processes opening a state directory with no store at once: one store, made whole before anyone sees it; 8 VFs, one each', async () => {
    const fresh = path.join(dir, 'fresh');
    const eight = syntheticVfs(8);
    const code = `
      import { AllocStore } from ${JSON.stringify(STORE_JS)};
      const s = AllocStore.open(${JSON.stringify(fresh)});
      const a = s.allocate({ candidates: ${JSON.stringify(eight)}, owner: { containerId: 'c' + process.pid, ifname: 'net1' } });
      process.stdout.write(a.pci + '\\n');
      s.close();`;
    const kids = Array.from({ length: 8 }, () => spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const results = await Promise.all(kids.map(async (c) => {
      let out = '', err = '';
      c.stdout!.on('data', (d) => { out += d; });
      c.stderr!.on('data', (d) => { err += d; });
      const [exit] = await once(c, 'close');
      return { exit, out: out.trim(), err };
    }));
    for (const r of results) expect(r.exit, r.err).toBe(0);
    expect(new Set(results.map((r) => r.out)).size).toBe(8);
    expect(fs.readdirSync(fresh).filter((f) => f.endsWith('.new'))).toEqual([]);
  });
});

describe('crash safety', () => {
  it('a store in the making that a killed process left (by name, untouched for 10 minutes) is removed by the next opener; a fresh one is not', () => {
    const st = path.join(dir, 'left');
    fs.mkdirSync(st);
    const stale = `.${DB_FILE}.4242.0badcafe.new`, young = `.${DB_FILE}.4343.00c0ffee.new`, other = `.${DB_FILE}.x.new`;
    for (const n of [stale, young]) new Database(path.join(st, n)).exec('CREATE TABLE half(x)').close();
    fs.writeFileSync(path.join(st, `${stale}-journal`), '');
    fs.writeFileSync(path.join(st, other), 'not a store in the making');
    const ago = new Date(Date.now() - 11 * 60_000);
    for (const n of [stale, `${stale}-journal`, other]) fs.utimesSync(path.join(st, n), ago, ago);
    AllocStore.open(st).close();
    expect(fs.readdirSync(st).filter((f) => f.includes('.new')).sort()).toEqual([other, young].sort());
  });

  it('a process SIGKILLed after its INSERT, before COMMIT, leaves no row and no lock', async () => {
    const go = path.join(dir, 'go');
    const c = child(1, { [PAUSE_ENV]: go });
    let stderr = '';
    c.stderr!.on('data', (d) => { stderr += d; });
    await waitFor(`${go}.in-txn`);

    // While it sits in its transaction: its row is invisible and the write lock is held.
    const s = AllocStore.open(stateDir, { busyTimeoutMs: 100 });
    try {
      expect(s.get(vfs[0]!.pci)).toBeUndefined();
      let busy: unknown;
      try {
        s.allocate({ candidates: vfs, owner: { containerId: 'next', ifname: 'net1' } });
      } catch (e) {
        busy = e;
      }
      expect(busy).toBeInstanceOf(VfpError);
      expect((busy as VfpError).kind).toBe('unavailable');
      expect((busy as VfpError).message).toContain('is busy');
    } finally {
      s.close();
    }

    c.kill('SIGKILL');
    const [code, signal] = (await once(c, 'exit')) as [number | null, string | null];
    expect(signal, stderr).toBe('SIGKILL');
    expect(code).toBeNull();

    const after = AllocStore.open(stateDir, { busyTimeoutMs: 200 });
    try {
      expect(after.list()).toEqual([]);
      expect(after.history(10)).toEqual([]);
      expect(after.integrityCheck()).toEqual(['ok']);
      const t0 = Date.now();
      const a = after.allocate({ candidates: vfs, owner: { containerId: 'next', ifname: 'net1' } });
      expect(a.pci).toBe(vfs[0]!.pci); // the VF the dead process was taking
      expect(Date.now() - t0).toBeLessThan(200); // no lock left behind
    } finally {
      after.close();
    }
  });

  it('the same process let through commits (so the pause really sits after the INSERT)', async () => {
    const go = path.join(dir, 'go');
    const c = child(1, { [PAUSE_ENV]: go });
    await waitFor(`${go}.in-txn`);
    fs.writeFileSync(go, '');
    const [code] = (await once(c, 'exit')) as [number | null];
    expect(code).toBe(0);
    const s = AllocStore.open(stateDir);
    try {
      expect(s.get(vfs[0]!.pci)?.owner).toEqual({ containerId: 'doomed-0', ifname: 'net1' });
    } finally {
      s.close();
    }
  });

  it('processes killed at random moments of an alloc/release loop leave a consistent store', async () => {
    for (let round = 0; round < 5; round++) {
      const c = child(100_000);
      // Let it get going, then kill it wherever it is.
      await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
      c.kill('SIGKILL');
      await once(c, 'exit');
      const s = AllocStore.open(stateDir, { busyTimeoutMs: 200 });
      try {
        expect(s.integrityCheck()).toEqual(['ok']);
        // At most the one allocation it had committed and not yet released.
        const rows = s.list();
        expect(rows.length).toBeLessThanOrEqual(1);
        const h = s.history(2);
        if (rows.length === 1) expect(h.at(-1)).toMatchObject({ op: 'alloc', pci: rows[0]!.pci, allocId: rows[0]!.id });
        else expect(h.at(-1)?.op).toBe('release');
        for (const r of rows) s.release(r.pci, { force: true, reason: 'test cleanup' });
        expect(s.allocate({ candidates: vfs, owner: { containerId: `after-${round}`, ifname: 'net1' } }).pci).toBe(vfs[0]!.pci);
        s.releaseOwner({ containerId: `after-${round}` });
      } finally {
        s.close();
      }
    }
  });
});
