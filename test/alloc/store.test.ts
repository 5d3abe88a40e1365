// The allocation store in one process: allocate, release, ownership checks, history,
// state directory and schema handling. Real SQLite files in temp directories.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AllocStore, DB_FILE, LOCK_FILE, SCHEMA_VERSION, type Owner } from '../../src/alloc/store.js';
import { syntheticVfs } from '../../src/bench/alloc.js';
import { describeOwner, ownerAlive } from '../../src/alloc/owner.js';
import type { VfInfo } from '../../src/sriov/types.js';
import { VfpError } from '../../src/util/errors.js';
import { thrown } from '../helpers/thrown.js';
import { describePrivileged } from '../helpers/privileged.js';
import { asSchema1, schemaOf } from '../helpers/store.js';

let dir: string;
let store: AllocStore;
const vfs: VfInfo[] = syntheticVfs(4); // 0000:5e:02.0, 02.1 on PF 00.0; 02.2, 02.3 on PF 00.1
const web0: Owner = { namespace: 'default', name: 'web-0', uid: 'a1b2c3d4-0000-4000-8000-000000000001', containerId: '4f2a9c1e77d0b3aa', ifname: 'net1' };
const web1: Owner = { namespace: 'default', name: 'web-1', containerId: '9b0c11aa22d3', ifname: 'net1' };

const err = (fn: () => unknown) => thrown(VfpError, fn);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-alloc-'));
  store = AllocStore.open(path.join(dir, 'state'));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('AllocStore', () => {
  it('creates the state directory 0700 with a WAL-mode, versioned database', () => {
    const st = fs.statSync(path.join(dir, 'state'));
    expect(st.mode & 0o777).toBe(0o700);
    const db = new Database(path.join(dir, 'state', DB_FILE), { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
  });

  // Its files hold each pod's IPAM config (credentials, for some IPAM plugins) and who
  // holds which VF: the owner's alone, in whatever directory (a DaemonSet's hostPath is
  // 0755). A store made 0644 before is narrowed when next opened to write.
  it('keeps its files to their owner (0600), and narrows an older store\'s', () => {
    const file = path.join(dir, 'state', DB_FILE);
    store.allocate({ candidates: vfs, owner: web0 }); // a write: the -wal and -shm exist
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(fs.statSync(f).mode & 0o777, f).toBe(0o600);
    store.close(); // the last connection: -wal and -shm go
    fs.chmodSync(file, 0o644);
    store = AllocStore.open(path.join(dir, 'state'));
    store.allocate({ candidates: vfs, owner: web1 });
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(fs.statSync(f).mode & 0o777, f).toBe(0o600);
  });

  it('allocates the first free candidate in order and records owner, time, pool and original state', () => {
    const before = Date.now();
    const a = store.allocate({ candidates: vfs, owner: web0, pool: 'fast' });
    expect(a.pci).toBe(vfs[0]!.pci);
    expect(a.pf).toBe(vfs[0]!.pf);
    expect(a.vfIndex).toBe(0);
    expect(a.pool).toBe('fast');
    expect(a.owner).toEqual(web0);
    expect(Date.parse(a.createdAt)).toBeGreaterThanOrEqual(before - 1);
    expect(a.original).toEqual(vfs[0]);
    const b = store.allocate({ candidates: vfs, owner: web1, pool: 'fast' });
    expect(b.pci).toBe(vfs[1]!.pci);
    expect(b.id).toBeGreaterThan(a.id);
    expect(store.get(a.pci)).toEqual(a);
    expect(store.list().map((x) => x.pci)).toEqual([vfs[0]!.pci, vfs[1]!.pci]);
    // Candidate order decides, not address order.
    const c = store.allocate({ candidates: [...vfs].reverse(), owner: { containerId: 'c3', ifname: 'net1' } });
    expect(c.pci).toBe(vfs[3]!.pci);
  });

  it('gives a retried ADD (same containerId and ifname) its existing allocation back', () => {
    const a = store.allocate({ candidates: vfs, owner: web0 });
    const again = store.allocate({ candidates: vfs, owner: web0 });
    expect(again).toEqual(a);
    expect(store.list()).toHaveLength(1);
    // Another interface of the same container is another allocation.
    const net2 = store.allocate({ candidates: vfs, owner: { ...web0, ifname: 'net2' } });
    expect(net2.pci).not.toBe(a.pci);
    // The same interface asking from a pool that does not contain its VF: a conflict.
    const e = err(() => store.allocate({ candidates: vfs.slice(2), owner: web0, pool: 'slow' }));
    expect(e.kind).toBe('conflict');
    expect(e.message).toContain(`already holds VF ${a.pci}`);
    expect(e.message).toContain('pool "slow"');
  });

  it('says which pool is exhausted, how many VFs match and who holds them', () => {
    const two = vfs.slice(0, 2);
    store.allocate({ candidates: two, owner: web0, pool: 'fast' });
    store.allocate({ candidates: two, owner: web1, pool: 'fast' });
    const e = err(() => store.allocate({ candidates: two, owner: { containerId: 'x', ifname: 'net1' }, pool: 'fast' }));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(/^no free VF in pool "fast": 2 VFs match, all allocated \(/);
    expect(e.message).toContain(`${two[0]!.pci} to pod default/web-0 (container 4f2a9c1e77d0…, net1)`);
    expect(e.details?.reason).toBe('exhausted');
    const empty = err(() => store.allocate({ candidates: [], owner: { containerId: 'y', ifname: 'net1' }, pool: 'none' }));
    expect(empty.kind).toBe('unavailable');
    expect(empty.message).toContain('no VF matches pool "none"');
  });

  it('allocates by PCI address, and names the holder when it is taken', () => {
    const a = store.allocatePci({ vf: vfs[2]!, owner: web0 });
    expect(a.pci).toBe(vfs[2]!.pci);
    expect(store.allocatePci({ vf: vfs[2]!, owner: web0 })).toEqual(a); // retry
    const e = err(() => store.allocatePci({ vf: vfs[2]!, owner: web1 }));
    expect(e.kind).toBe('conflict');
    expect(e.message).toContain(`VF ${vfs[2]!.pci} is allocated to pod default/web-0 (container 4f2a9c1e77d0…, net1) since `);
    expect(e.message).toContain(`choose another VF, or release this one first (\`vfplane gc\` if its holder is gone, \`vfplane vf release ${vfs[2]!.pci} --force\` to take it from a live one)`);
    // The first-free search skips it.
    expect(store.allocate({ candidates: vfs.slice(2), owner: web1 }).pci).toBe(vfs[3]!.pci);
  });

  it('refuses a release by someone else, unless forced', () => {
    const a = store.allocate({ candidates: vfs, owner: web0 });
    const e = err(() => store.release(a.pci, { owner: { namespace: 'default', name: 'web-1' } }));
    expect(e.kind).toBe('conflict');
    expect(e.message).toBe(
      `VF ${a.pci} is allocated to pod default/web-0 (container 4f2a9c1e77d0…, net1), not to pod default/web-1; pass --force to release it anyway`,
    );
    const byId = err(() => store.release(a.pci, { id: a.id + 100 }));
    expect(byId.kind).toBe('conflict');
    expect(byId.message).toContain(`is allocation ${a.id}`);
    const nobody = err(() => store.release(a.pci, {}));
    expect(nobody.kind).toBe('invalid');
    expect(nobody.message).toContain('needs its owner');
    expect(store.get(a.pci)).toBeDefined();

    const forced = store.release(a.pci, { force: true, owner: { containerId: 'someone-else' } });
    expect(forced).toEqual(a);
    expect(store.get(a.pci)).toBeUndefined();
    expect(store.history(1)[0]).toMatchObject({ op: 'release', pci: a.pci, reason: 'forced', allocId: a.id });
  });

  it('refuses a release by address whose owner fields name no one (ifname, netns), even if they match', () => {
    const a = store.allocate({ candidates: vfs, owner: { ...web0, netns: '/var/run/netns/cni-web0' } });
    for (const weak of [{ ifname: 'net1' }, { netns: '/var/run/netns/cni-web0' }, { ifname: 'net1', netns: '/x' }] as Partial<Owner>[]) {
      const e = err(() => store.release(a.pci, { owner: weak }));
      expect(e.kind).toBe('conflict');
      expect(e.message).toContain(`VF ${a.pci} is allocated to pod default/web-0 (container 4f2a9c1e77d0…, net1); the owner fields given (${Object.keys(weak).join(', ')}) do not say whose VF this is`);
      expect(e.message).toContain('namespace+name, uid, containerId or pid');
      expect(e.message).not.toContain('nobody');
    }
    expect(store.get(a.pci)).toEqual(a);
    // with someone named, the narrowing fields still count
    expect(err(() => store.release(a.pci, { owner: { containerId: web0.containerId!, ifname: 'net2' } })).message).toContain('not to container 4f2a9c1e77d0…, net2');
    expect(store.release(a.pci, { owner: { uid: web0.uid!, ifname: 'net1' } }).id).toBe(a.id);
  });

  it('names an owner pattern of netns alone by its netns, not as nobody', () => {
    expect(describeOwner({ netns: '/x' })).toBe('netns /x');
    expect(describeOwner({})).toBe('nobody');
  });

  it('releases by owner fields or id; a second release is not-found', () => {
    const a = store.allocate({ candidates: vfs, owner: web0 });
    expect(store.release(a.pci, { owner: { containerId: web0.containerId!, ifname: 'net1' } }).id).toBe(a.id);
    const e = err(() => store.release(a.pci, { id: a.id }));
    expect(e.kind).toBe('not-found');
    expect(e.message).toContain(`VF ${a.pci} is not allocated`);
    const b = store.allocate({ candidates: vfs, owner: web0 });
    expect(b.id).toBeGreaterThan(a.id); // ids are never reused
    expect(store.release(b.pci.toUpperCase(), { id: b.id }).pci).toBe(b.pci);
    expect(err(() => store.release('0000:5e:2.0', { force: true })).kind).toBe('invalid');
  });

  it('releases everything an owner holds, matching only the given fields', () => {
    store.allocate({ candidates: vfs, owner: web0 });
    store.allocate({ candidates: vfs, owner: { ...web0, ifname: 'net2' } });
    store.allocate({ candidates: vfs, owner: web1 });
    const released = store.releaseOwner({ containerId: web0.containerId! }, 'pod deleted');
    expect(released.map((a) => a.owner.ifname).sort()).toEqual(['net1', 'net2']);
    expect(store.list().map((a) => a.owner.name)).toEqual(['web-1']);
    expect(store.releaseOwner({ containerId: web0.containerId! })).toEqual([]); // idempotent
    expect(store.releaseOwner({ namespace: 'default', name: 'web-1' })).toHaveLength(1);
    const e = err(() => store.releaseOwner({ ifname: 'net1' }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toContain('namespace+name, uid, containerId or pid');
    expect(store.history(2).map((h) => h.reason)).toEqual(['pod deleted', undefined]);
  });

  it('validates owners and says which fields identify one', () => {
    const e = err(() => store.allocate({ candidates: vfs, owner: { ifname: 'net1' } }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toContain('does not identify anyone: give namespace+name, uid, containerId or pid');
    expect(err(() => store.allocate({ candidates: vfs, owner: { containerId: 'a b' } })).message).toContain('containerId "a b" is not valid');
    expect(err(() => store.allocate({ candidates: vfs, owner: { containerId: 'c', ifname: 'way-too-long-name0' } })).message).toContain('not a valid Linux interface name');
    expect(err(() => store.allocate({ candidates: vfs, owner: { pod: 'x' } as unknown as Owner })).message).toContain('unknown field "pod"');
    expect(err(() => store.allocate({ candidates: [{ ...vfs[0]!, pci: 'nope' }], owner: web0 })).message).toContain('candidates[0]: VF PCI address "nope" is malformed');
  });

  it('records the pid start time with a pid, against PID reuse', () => {
    const a = store.allocate({ candidates: vfs, owner: { pid: process.pid } });
    expect(a.owner.pidStart).toMatch(/^\d+$/);
  });

  it('keeps an append-only history, pruned to the last N rows', () => {
    store.close();
    store = AllocStore.open(path.join(dir, 'state'), { historyKeep: 5 });
    for (let i = 0; i < 4; i++) {
      const a = store.allocate({ candidates: vfs, owner: { containerId: `c${i}`, ifname: 'net1' } });
      store.release(a.pci, { id: a.id });
    }
    const h = store.history(100);
    expect(h).toHaveLength(5);
    expect(h.map((x) => x.op)).toEqual(['release', 'alloc', 'release', 'alloc', 'release']);
    expect(h.at(-1)).toMatchObject({ op: 'release', owner: { containerId: 'c3', ifname: 'net1' } });
    expect(h[1]!.allocId).toBe(h[2]!.allocId);
    expect(h[1]!.seq).toBe(h[1]!.allocId);
    expect(store.history(2)).toEqual(h.slice(3));
  });

  it('lastSeq: an allocation that directly follows it proves nothing was allocated or released in between', () => {
    expect(store.lastSeq()).toBe(0);
    let seq = store.lastSeq();
    const a = store.allocatePci({ vf: vfs[0]!, owner: web0 });
    expect(a.id).toBe(seq + 1);
    // Another connection (another plugin process) allocates and releases meanwhile.
    seq = store.lastSeq();
    const other = AllocStore.open(path.join(dir, 'state'));
    const o = other.allocatePci({ vf: vfs[1]!, owner: web1 });
    other.release(o.pci, { id: o.id });
    other.close();
    const b = store.allocatePci({ vf: vfs[1]!, owner: { containerId: 'c9', ifname: 'net1' } });
    expect(b.id).toBe(seq + 3);
    expect(store.lastSeq()).toBe(b.id);
    // Pruning keeps the sequence going: ids never repeat.
    store.close();
    store = AllocStore.open(path.join(dir, 'state'), { historyKeep: 1 });
    store.release(b.pci, { id: b.id });
    expect(store.lastSeq()).toBe(b.id + 1);
  });

  it('lastSeq moves on with a change made under exclusive() (vf config, bind), from a new store too, and not with a refused one', () => {
    // A `vf config` between a CNI ADD's VF snapshot and its allocation: the ADD must see
    // that something happened, or it records the replaced settings as the VF's original.
    expect(store.lastSeq()).toBe(0);
    store.exclusive('vf config', () => undefined);
    expect(store.lastSeq()).toBe(1);
    expect(() => store.exclusive('vf config', () => { throw new Error('refused'); })).toThrow('refused');
    expect(store.lastSeq()).toBe(1);
    const a = store.allocatePci({ vf: vfs[0]!, owner: web0 });
    expect(a.id).toBe(2);
    store.exclusive('vf bind', () => undefined);
    expect(store.lastSeq()).toBe(3);
    expect(store.allocatePci({ vf: vfs[1]!, owner: web1 }).id).toBe(4);
  });

  it('survives reopening', () => {
    const a = store.allocate({ candidates: vfs, owner: web0 });
    store.close();
    store = AllocStore.open(path.join(dir, 'state'));
    expect(store.get(a.pci)).toEqual(a);
  });

  it('takes a schema-1 store (no netns identity) up to the current schema, its allocations intact', () => {
    const a = store.allocate({ candidates: vfs, owner: { ...web0, netns: '/run/netns/vfp-gone-ns' } });
    store.close();
    // As vfplane of schema 1 left it: no netns_id column (nor schema 3's node).
    asSchema1(path.join(dir, 'state', DB_FILE));
    store = AllocStore.open(path.join(dir, 'state'));
    expect(store.get(a.pci)).toEqual(a);
    expect(schemaOf(path.join(dir, 'state', DB_FILE))).toBe(SCHEMA_VERSION);
  });

  it('opened read-only, reads a schema-1 store as it is (no migration) and refuses every write; a store that is not there is not made', () => {
    const a = store.allocate({ candidates: vfs, owner: { ...web0, netns: '/run/netns/vfp-gone-ns' } });
    store.close();
    asSchema1(path.join(dir, 'state', DB_FILE));
    const version = () => schemaOf(path.join(dir, 'state', DB_FILE));
    store = AllocStore.open(path.join(dir, 'state'), { readOnly: true, sysfsRoot: dir });
    expect(store.get(a.pci)).toEqual(a);
    expect(store.list().map((x) => x.pci)).toEqual([a.pci]);
    const w = err(() => store.release(a.pci, { owner: web0 }));
    expect(w.message).toBe(`the allocation store ${path.join(dir, 'state', DB_FILE)} was opened to read only, so releasing a VF cannot change it`);
    expect(version()).toBe(1);
    expect(store.get(a.pci)).toEqual(a);
    store.close();
    const none = err(() => AllocStore.open(path.join(dir, 'none'), { readOnly: true }));
    expect([none.kind, none.message]).toEqual(['not-found', expect.stringContaining(`no allocation store ${path.join(dir, 'none', DB_FILE)}: nothing is allocated there`)]);
    expect(fs.existsSync(path.join(dir, 'none', DB_FILE))).toBe(false);
    // A writer takes it up to the current schema, as before.
    store = AllocStore.open(path.join(dir, 'state'));
    expect(version()).toBe(SCHEMA_VERSION);
  });

  it('records the identity of the owner\'s netns beside its path (a namespace made again there is another one)', () => {
    const ns = '/proc/self/ns/net';
    const a = store.allocate({ candidates: vfs, owner: { ...web0, netns: ns } });
    const st = fs.statSync(ns, { bigint: true });
    expect(a.owner.netnsId).toBe(`${st.dev}:${st.ino}`);
    expect(store.get(a.pci)!.owner.netnsId).toBe(`${st.dev}:${st.ino}`);
    expect(ownerAlive(a.owner)).toBe('alive');
    expect(ownerAlive({ ...a.owner, netnsId: '1:2' })).toBe('gone');
    // A record with a ctime after them (kept for a while) is judged on device and inode:
    // the ctime of an nsfs inode no mount holds changes from one look to the next.
    expect(ownerAlive({ ...a.owner, netnsId: `${st.dev}:${st.ino}:1` })).toBe('alive');
  });

  it('keeps one node\'s VFs: opened for another sysfs root while it holds VFs, it is refused; once they are released, not', () => {
    store.close();
    const nodeA = path.join(dir, 'nodeA'), nodeB = path.join(dir, 'nodeB');
    fs.mkdirSync(nodeA);
    fs.mkdirSync(nodeB);
    fs.symlinkSync(nodeA, path.join(dir, 'linkA'));
    store = AllocStore.open(path.join(dir, 'state'), { sysfsRoot: nodeA });
    const a = store.allocate({ candidates: vfs, owner: web0 });
    store.close();
    // The same node by another path to it, and without a node said (older callers): taken.
    store = AllocStore.open(path.join(dir, 'state'), { sysfsRoot: path.join(dir, 'linkA') });
    store.close();
    store = AllocStore.open(path.join(dir, 'state'));
    expect(store.get(a.pci)!.id).toBe(a.id);
    store.close();
    const e = err(() => AllocStore.open(path.join(dir, 'state'), { sysfsRoot: nodeB }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toContain(`holds 1 VF (${a.pci}) of the node whose sysfs root is ${nodeA}, and this one's is ${nodeB}`);
    expect(e.message).toContain(`Give --state-dir (VFPLANE_STATE_DIR, a CNI config's stateDir) a directory of its own for ${nodeB}, or use --sysfs-root ${nodeA}`);
    expect(e.details).toMatchObject({ cniCode: 7, held: 1 });
    store = AllocStore.open(path.join(dir, 'state'), { sysfsRoot: nodeA });
    store.release(a.pci, { owner: web0 });
    store.close();
    store = AllocStore.open(path.join(dir, 'state'), { sysfsRoot: nodeB });
    expect(store.allocate({ candidates: vfs, owner: web1 }).pci).toBe(vfs[0]!.pci);
  });

  it('refuses a store written by a newer vfplane', () => {
    store.close();
    const db = new Database(path.join(dir, 'state', DB_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const e = err(() => AllocStore.open(path.join(dir, 'state')));
    expect(e.kind).toBe('system');
    expect(e.message).toContain(`schema version ${SCHEMA_VERSION + 1}, newer than this vfplane knows (${SCHEMA_VERSION})`);
    store = AllocStore.open(path.join(dir, 'other'));
  });

  it('says when the database file is not a database', () => {
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, DB_FILE), 'this is not sqlite, just some text that is long enough to have a header'.repeat(20));
    const e = err(() => AllocStore.open(bad));
    expect(e.kind).toBe('system');
    expect(e.message).toContain(`the allocation store ${path.join(bad, DB_FILE)} is damaged`);
    expect(e.message).toContain('move it aside');
  });

  it('names a store damaged past its first pages as damaged, on every open and later read, and its advice works (pasted, in a directory with a space)', () => {
    const state = path.join(dir, 'torn store');
    const sysfs = path.join(dir, 'sysfs'); // no node's: no registry of stores
    fs.mkdirSync(sysfs);
    const s = AllocStore.open(state, { sysfsRoot: sysfs });
    const many = syntheticVfs(64);
    for (let i = 0; i < 40; i++) s.allocate({ candidates: many, owner: { namespace: 'ns', name: `p${i}`, containerId: `c${i}`, ifname: 'net1', network: 'n'.repeat(200) } });
    s.close();
    const file = path.join(state, DB_FILE);
    expect(fs.statSync(file).size).toBeGreaterThan(9 * 4096);
    // Pages 2 to 9 overwritten, the header page left whole: a torn write, a bad block.
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(8 * 4096, 0xa5), 0, 8 * 4096, 4096);
    fs.closeSync(fd);
    const before = fs.readFileSync(file);
    const damaged = (e: VfpError) => {
      expect(e.kind).toBe('system');
      expect(e.message).toContain(`the allocation store ${file} is damaged (database disk image is malformed), and vfplane cannot repair it; move it aside`);
      const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      const q = `'${esc(state)}'`; // shell-quoted: the directory has a space
      const aside = `'${esc(state)}/damaged-\\d{8}T\\d{6}Z'`;
      expect(e.message).toMatch(new RegExp(`move it aside with its -wal and -shm .*: \`mkdir ${aside} && for f in alloc\\.db alloc\\.db-wal alloc\\.db-shm; do \\[ ! -e ${q}/"\\$f" \\] \\|\\| mv ${q}/"\\$f" ${aside}/; done\`; the next vfplane command makes an empty store`));
      expect(e.message).toContain('ip -all netns exec ip -br link');
      return e;
    };
    damaged(err(() => AllocStore.open(state, { sysfsRoot: sysfs })));
    damaged(err(() => AllocStore.open(state, { sysfsRoot: sysfs, readOnly: true })));
    const late = AllocStore.open(state); // no node: nothing read at open
    try {
      damaged(err(() => late.list()));
      damaged(err(() => late.allocate({ candidates: many, owner: web0 })));
      damaged(err(() => late.releaseOwner({ namespace: 'ns', name: 'p1' })));
    } finally {
      late.close();
    }
    expect(fs.readFileSync(file).equals(before)).toBe(true); // refused, not rewritten
    // The advice, run as given, leaves a store that works, and the damaged one kept.
    const cmd = /`(mkdir [^`]+)`/.exec(damaged(err(() => AllocStore.open(state, { sysfsRoot: sysfs }))).message)![1]!;
    fs.writeFileSync(`${file}.bak`, 'an operator\'s copy'); // not taken along
    expect(spawnSync('sh', ['-c', cmd], { stdio: 'inherit', cwd: dir }).status).toBe(0);
    const aside = fs.readdirSync(state).find((f) => f.startsWith('damaged-'))!;
    expect(fs.readdirSync(path.join(state, aside)).filter((f) => f.startsWith(DB_FILE))).toEqual(expect.arrayContaining([DB_FILE]));
    expect(fs.readdirSync(path.join(state, aside))).not.toContain(`${DB_FILE}.bak`);
    expect(fs.readdirSync(dir)).not.toContain('torn'); // the space did not split the path
    const fresh = AllocStore.open(state, { sysfsRoot: sysfs });
    expect(fresh.list()).toEqual([]);
    fresh.close();
  });

  it('refuses a store cut to zero bytes instead of taking it for a new one (every VF would look free), and leaves it as it is', () => {
    const cut = path.join(dir, 'cut');
    fs.mkdirSync(cut);
    fs.writeFileSync(path.join(cut, DB_FILE), '');
    const e = err(() => AllocStore.open(cut));
    expect(e.kind).toBe('system');
    expect(e.message).toContain(`the allocation store ${path.join(cut, DB_FILE)} is empty (0 bytes), so vfplane cannot read it; move it aside with its -wal and -shm`);
    expect(e.message).toContain(`for f in ${DB_FILE} ${DB_FILE}-wal ${DB_FILE}-shm; do [ ! -e ${cut}/"$f" ] || mv ${cut}/"$f" `);
    expect(fs.statSync(path.join(cut, DB_FILE)).size).toBe(0);
    expect(fs.readdirSync(cut)).toEqual([DB_FILE]); // no WAL, no lock, no temp file
    // A new store is made whole before it appears under its name.
    const fresh = AllocStore.open(path.join(dir, 'fresh'));
    fresh.close();
    expect(fs.statSync(path.join(dir, 'fresh', DB_FILE)).size).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(dir, 'fresh')).filter((f) => f.endsWith('.new'))).toEqual([]);
  });

  it('says which state directory cannot be created and what to pass instead', () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    const e = err(() => AllocStore.open(path.join(file, 'sub')));
    expect(e.kind).toBe('system');
    expect(e.message).toContain(`cannot create the state directory ${path.join(file, 'sub')}`);
    expect(e.message).toContain('--state-dir');
  });

  it('takes VFPLANE_STATE_DIR as the default directory', () => {
    const old = process.env.VFPLANE_STATE_DIR;
    process.env.VFPLANE_STATE_DIR = path.join(dir, 'env');
    try {
      const s = AllocStore.open();
      expect(s.file).toBe(path.join(dir, 'env', DB_FILE));
      s.close();
    } finally {
      if (old === undefined) delete process.env.VFPLANE_STATE_DIR;
      else process.env.VFPLANE_STATE_DIR = old;
    }
  });

  it('turns a lock held past the busy timeout into "unavailable: busy, retry"', () => {
    const other = new Database(path.join(dir, 'state', DB_FILE));
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    const impatient = AllocStore.open(path.join(dir, 'state'), { busyTimeoutMs: 50 });
    try {
      const e = err(() => impatient.allocate({ candidates: vfs, owner: web0 }));
      expect(e.kind).toBe('unavailable');
      expect(e.message).toMatch(/allocation store .*alloc\.db is busy: .*; retry$/);
      expect(e.details?.reason).toBe('busy');
      // Readers are not blocked by a writer in WAL mode.
      expect(impatient.list()).toEqual([]);
    } finally {
      other.exec('ROLLBACK');
      other.close();
      impatient.close();
    }
    expect(store.allocate({ candidates: vfs, owner: web0 }).pci).toBe(vfs[0]!.pci);
  });

  it('queues writers on alloc.lock: a holder past the busy timeout gives "busy, retry"; a dead holder frees it', async () => {
    const lockFile = path.join(dir, 'state', LOCK_FILE);
    expect(fs.existsSync(lockFile)).toBe(true);
    // Another process holds the writer queue (util-linux flock, the same flock(2) lock).
    const holder = spawn('flock', ['--exclusive', '--close', lockFile, 'sleep', '30'], { stdio: 'ignore', detached: true });
    try {
      for (let i = 0; i < 100 && spawnSync('flock', ['--nonblock', lockFile, 'true']).status === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const impatient = AllocStore.open(path.join(dir, 'state'), { busyTimeoutMs: 200 });
      try {
        const t0 = Date.now();
        const e = err(() => impatient.allocate({ candidates: vfs, owner: web0 }));
        expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
        expect(e.kind).toBe('unavailable');
        expect(e.message).toMatch(/alloc\.db is busy: .*; retry$/);
        expect(impatient.list()).toEqual([]); // nothing was written
      } finally {
        process.kill(-holder.pid!, 'SIGKILL'); // flock and its sleep
        await new Promise((r) => holder.once('exit', r));
      }
      // The kernel dropped the dead holder's lock: the next writer goes straight in, the
      // one that gave up too (on a lock file it opened again).
      const t0 = Date.now();
      expect(impatient.allocate({ candidates: vfs, owner: web0 }).pci).toBe(vfs[0]!.pci);
      expect(store.allocate({ candidates: vfs, owner: { ...web0, containerId: 'c2' } }).pci).toBe(vfs[1]!.pci);
      expect(Date.now() - t0).toBeLessThan(1000);
      impatient.close();
    } finally {
      if (holder.exitCode === null && holder.signalCode === null) process.kill(-holder.pid!, 'SIGKILL');
    }
  });

  it('refuses a second row for the same VF at the database level', () => {
    store.allocate({ candidates: vfs, owner: web0 });
    const db = new Database(path.join(dir, 'state', DB_FILE));
    expect(() =>
      db.prepare(`INSERT INTO allocations (pci, id, pf, vf_index, created_at, original) VALUES (?, 999, 'x', 0, 'now', '{}')`).run(vfs[0]!.pci),
    ).toThrow(/UNIQUE constraint failed: allocations.pci/);
    db.close();
    expect(store.integrityCheck()).toEqual(['ok']);
  });
});

describePrivileged('AllocStore on a filesystem that is full or read-only', { commands: ['mount', 'chattr'] }, () => {
  let mnt: string;
  beforeEach(() => {
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'vfplane-full-'));
    spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
  });
  afterEach(() => {
    spawnSync('chattr', ['-R', '-i', mnt]);
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('a full filesystem is named as such, with how much is free, not as a disk I/O error', () => {
    const dir = path.join(mnt, 'state');
    const s = AllocStore.open(dir);
    s.close();
    // Fill what is left (tmpfs: ENOSPC at the end).
    spawnSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'fill')}`, 'bs=4k'], { stdio: 'ignore' });
    for (const f of fs.readdirSync(dir)) if (f !== DB_FILE) fs.rmSync(path.join(dir, f), { force: true }); // the WAL's -shm must be made again
    const e = thrown(VfpError, () => {
      const t = AllocStore.open(dir);
      try {
        t.allocate({ candidates: syntheticVfs(1), owner: { namespace: 'ns', name: 'p' } });
      } finally {
        t.close();
      }
    });
    expect(e.message).toMatch(new RegExp(`the filesystem holding ${dir} is full \\(\\d+ KiB free\\); free some space and retry`));
  });

  /** A store of `n` allocations in `state`, made and closed (no -wal, no -shm left). */
  const filled = (state: string, n: number) => {
    const s = AllocStore.open(state);
    for (let i = 0; i < n; i++) s.allocate({ candidates: syntheticVfs(8), owner: { namespace: 'ns', name: `p${i}` } });
    s.close();
  };
  const remount = (how: 'ro' | 'rw') => expect(spawnSync('mount', ['-o', `remount,${how}`, mnt]).status).toBe(0);

  it('a store on a read-only filesystem is read by a read-only open, and every write is refused, changing nothing', () => {
    const state = path.join(mnt, 'state');
    filled(state, 2);
    expect(fs.readdirSync(state).sort()).toEqual([DB_FILE, LOCK_FILE]);
    const before = fs.readFileSync(path.join(state, DB_FILE));
    remount('ro');
    const ro = AllocStore.open(state, { readOnly: true });
    try {
      expect(ro.list().map((a) => a.owner.name)).toEqual(['p0', 'p1']);
      expect(ro.integrityCheck()).toEqual(['ok']);
      expect(err(() => ro.release(ro.list()[0]!.pci, { force: true })).message).toBe(`the allocation store ${path.join(state, DB_FILE)} was opened to read only, so releasing a VF cannot change it`);
    } finally {
      ro.close();
    }
    const e = err(() => AllocStore.open(state));
    expect(e.message).toContain(`the allocation store ${path.join(state, DB_FILE)} cannot be written`);
    expect(e.message).toContain('make it writable');
    remount('rw');
    expect(fs.readFileSync(path.join(state, DB_FILE)).equals(before)).toBe(true);
  });

  it('a read-only open of a store whose -wal holds changes, where no -shm can be made, says so rather than missing them', () => {
    const state = path.join(mnt, 'state');
    filled(state, 1);
    // A copy taken while a writer holds it open: its -wal holds the second allocation,
    // committed and not yet in alloc.db (as after a kill), and there is no -shm.
    const live = AllocStore.open(state);
    live.allocate({ candidates: syntheticVfs(8), owner: { namespace: 'ns', name: 'in-wal' } });
    const copy = path.join(mnt, 'copy');
    fs.mkdirSync(copy, { mode: 0o700 });
    for (const f of [DB_FILE, `${DB_FILE}-wal`]) fs.copyFileSync(path.join(state, f), path.join(copy, f));
    live.close();
    const file = path.join(copy, DB_FILE);
    expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(0);
    remount('ro');
    const e = err(() => AllocStore.open(copy, { readOnly: true }));
    expect(e.message).toBe(`the allocation store ${file} cannot be read: its write-ahead log ${file}-wal holds ${fs.statSync(`${file}-wal`).size} bytes that may be committed allocations and releases not yet in ${file}, ` +
      `and SQLite reads them only through its WAL index ${file}-shm, which it cannot make: the filesystem holding ${copy} is mounted read-only. ` +
      `Make that filesystem writable and retry; never delete ${file}-wal, and do not read a copy of ${file} without it`);
    remount('rw');
    // What it would have missed: the -wal's allocation.
    const rw = AllocStore.open(copy, { readOnly: true });
    expect(rw.list().map((a) => a.owner.name)).toEqual(['p0', 'in-wal']);
    rw.close();
  });

  it('a read-only open reads a store on a full filesystem', () => {
    const state = path.join(mnt, 'state');
    filled(state, 2);
    spawnSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'fill')}`, 'bs=4k'], { stdio: 'ignore' });
    expect(fs.statfsSync(mnt).bavail).toBe(0);
    const ro = AllocStore.open(state, { readOnly: true });
    try {
      expect(ro.list().map((a) => a.owner.name)).toEqual(['p0', 'p1']);
    } finally {
      ro.close();
    }
    expect(err(() => AllocStore.open(state).allocate({ candidates: syntheticVfs(8), owner: { namespace: 'ns', name: 'p9' } })).message).toContain('is full');
  });
});
