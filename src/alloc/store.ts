// The VF allocation store: which VF belongs to which pod interface, since when, and what
// the VF looked like before (so it can be restored). One SQLite file shared by every
// vfplane process on the node (CNI plugin invocations, the CLI, the daemon).
//
// Safety rests on SQLite, not on our logic: every change runs in an IMMEDIATE
// transaction (the write lock is taken before the first read, so two allocators cannot
// both see a VF as free), the VF's PCI address is the primary key (a second row for it
// cannot exist even if the selection were wrong), and a process killed mid-transaction
// leaves only an uncommitted WAL tail that the next opener discards.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { parsePci } from '../sriov/pci.js';
import { bootIdAt } from '../sriov/sysfs.js';
import type { VfInfo } from '../sriov/types.js';
import { conflict, invalid, notFound, systemError, unavailable, VfpError } from '../util/errors.js';
import { sleepSync } from '../util/proc.js';
import { loadAddon } from '../dataplane/addon.js';
import type { RawAddon } from '../dataplane/addon-types.js';
import { NODE_LOCK, otherStores, register, registryDir } from './registry.js';
import { describeOwner, IDENTIFYING, isIdentifying, netnsIdOf, OWNER_FIELDS, ownerMatches, parseOwner, pidStart, type Owner } from './owner.js';
import { makeDirs } from '../util/fs.js';
import { shellArg } from '../util/text.js';
import { waitLock, type Held, type Lock } from '../util/lock.js';
import { replyTimeoutMs } from '../dataplane/reply-timeout.js';

export type { Owner } from './owner.js';

export interface Allocation {
  id: number; // never reused, so a stale id cannot release a later allocation of the same VF
  pci: string;
  pf: string;
  vfIndex: number;
  pool: string | null;
  owner: Owner;
  createdAt: string; // ISO 8601
  original: VfInfo; // the VF as the caller saw it before taking it, for restore
  /** The node's boot it was made in (Sysfs.bootId), when known: kept in the original
   *  state's record (no column of its own, so older plugins read the store as it is). */
  bootId?: string;
  /** What the holder did with it (the CNI plugin: mode, interface, VXLAN); null until set. */
  attachment: Record<string, unknown> | null;
}

export interface HistoryEntry {
  seq: number;
  at: string;
  op: 'alloc' | 'release';
  pci: string;
  allocId: number | null;
  pool: string | null;
  owner: Owner;
  reason?: string;
}

/** Bytes an unprivileged writer may still use on DIR's filesystem, or null if unknown. */
function freeBytes(dir: string): number | null {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

export interface ReleaseWho {
  /** Every field given must equal the recorded owner's. */
  owner?: Partial<Owner>;
  /** The allocation id, as allocate returned it. */
  id?: number;
  /** Release whoever holds it. */
  force?: boolean;
  /** Recorded in the history (default: "forced" with force, else none). */
  reason?: string;
  /** Only check that this release would be allowed, and return the allocation: the VF is
   *  put back first, then released by id (a VF marked free must be as it was). */
  check?: boolean;
}

export interface OpenOptions {
  /** How long to wait for another process's transaction before giving up as 'unavailable'. */
  busyTimeoutMs?: number;
  /** History rows kept (older ones are pruned on every write). */
  historyKeep?: number;
  /** Queue writers on an flock of `alloc.lock` (default on when the addon is built). */
  writerQueue?: boolean;
  /** The sysfs root of the node whose VFs this store allocates: its registry of stores
   *  (see registry.ts) keeps other stores of the node from taking the same VFs. */
  sysfsRoot?: string;
  /** Only reads: the store must exist, every write is refused, and an older schema is
   *  read as it is, not migrated. A look with a newer vfplane (`vf list`, a data plane's
   *  start) during an upgrade then leaves the store to the older one still writing it,
   *  which refuses a store migrated past it. */
  readOnly?: boolean;
}

/** A VF held in another store of the node. */
export interface HeldElsewhere {
  pci: string;
  dir: string;
  owner: Owner;
  since: string;
}

export const LOCK_FILE = 'alloc.lock';

/** How long a releaser waits for another one of the same VF (AllocStore.putBackLock): a
 *  put-back takes well under a second, unless its data plane is slow to answer the
 *  detach (up to the control socket's reply timeout). */
export function putBackWaitMs(): number {
  return replyTimeoutMs() + 10_000;
}
const ETIMEDOUT = os.constants.errno.ETIMEDOUT;

/** The addon's flock calls, or null when it is not built (SQLite's busy handler alone). */
function writerLock(file: string): { fd: number; take(ms: number, shared?: boolean): number; give(): void; close(): void } | null {
  let a: RawAddon;
  try {
    a = loadAddon();
  } catch {
    return null;
  }
  if (typeof a.lockOpen !== 'function') return null;
  const fd = a.lockOpen(file);
  return { fd, take: (ms, shared) => a.lockTake(fd, ms, shared === true), give: () => a.lockGive(fd), close: () => fs.closeSync(fd) };
}

export const DEFAULT_STATE_DIR = '/var/lib/vfplane';
export const DB_FILE = 'alloc.db';
export const SCHEMA_VERSION = 3;
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
export const DEFAULT_HISTORY_KEEP = 10_000;
/** Test hook: a file path; allocate() blocks inside its transaction until that file exists. */
export const PAUSE_ENV = 'VFPLANE_TEST_PAUSE_IN_TXN';
/** Test hook: a file path, written (with the pid) as a write is about to wait for the
 *  store's lock: a test then knows this process is queued behind another's transaction. */
export const MARK_WRITE_ENV = 'VFPLANE_TEST_MARK_WRITE';
/** Test hook: a file path; vfplane-cni's ADD blocks once its allocation is committed (and
 *  marked as adding), before it touches the VF, until that file exists. */
export const PAUSE_ADD_ENV = 'VFPLANE_TEST_PAUSE_ADD';

/** A node's name in the store: its sysfs root's real path (as given when it is gone). */
function nodeOf(sysfsRoot: string): string {
  try {
    return fs.realpathSync(path.resolve(sysfsRoot));
  } catch {
    return path.resolve(sysfsRoot);
  }
}

/** The store's files are their owner's alone (root's): they hold each pod's IPAM config,
 *  which may carry credentials, and who holds which VF. A store made before they were
 *  (0644, readable by any user under a 0755 state directory) is narrowed when opened to
 *  write; a file another user owns is left as it is. */
function ownerOnly(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      const st = fs.statSync(f);
      if (st.mode & 0o077 && st.uid === process.getuid?.()) fs.chmodSync(f, st.mode & 0o700);
    } catch {
      // not there (no -wal yet), or not ours to change
    }
  }
}

export function defaultStateDir(): string {
  return process.env.VFPLANE_STATE_DIR || DEFAULT_STATE_DIR;
}

const SCHEMA_V1 = `
CREATE TABLE allocations (
  pci          TEXT PRIMARY KEY NOT NULL,
  id           INTEGER NOT NULL UNIQUE,
  pf           TEXT NOT NULL,
  vf_index     INTEGER NOT NULL,
  pool         TEXT,
  ns           TEXT,
  pod          TEXT,
  uid          TEXT,
  container_id TEXT,
  ifname       TEXT,
  netns        TEXT,
  pid          INTEGER,
  pid_start    TEXT,
  network      TEXT,
  created_at   TEXT NOT NULL,
  original     TEXT NOT NULL,
  attachment   TEXT
);
-- One VF per pod interface: a retried CNI ADD finds its VF instead of taking a second.
CREATE UNIQUE INDEX allocations_container_if ON allocations(container_id, ifname)
  WHERE container_id IS NOT NULL AND ifname IS NOT NULL;
CREATE INDEX allocations_pod ON allocations(ns, pod);
CREATE INDEX allocations_uid ON allocations(uid);
-- Append-only log. AUTOINCREMENT so seq never repeats after pruning: it doubles as the
-- allocation id of 'alloc' rows (whose alloc_id stays NULL); 'release' rows name theirs.
CREATE TABLE history (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  at       TEXT NOT NULL,
  op       TEXT NOT NULL CHECK (op IN ('alloc', 'release')),
  pci      TEXT NOT NULL,
  alloc_id INTEGER,
  pool     TEXT,
  owner    TEXT NOT NULL,
  reason   TEXT
);
`;

interface Row {
  pci: string;
  id: number;
  pf: string;
  vf_index: number;
  pool: string | null;
  ns: string | null;
  pod: string | null;
  uid: string | null;
  container_id: string | null;
  ifname: string | null;
  netns: string | null;
  pid: number | null;
  pid_start: string | null;
  netns_id: string | null;
  network: string | null;
  created_at: string;
  original: string;
  attachment: string | null;
}

interface HistoryRow {
  seq: number;
  at: string;
  op: 'alloc' | 'release';
  pci: string;
  alloc_id: number | null;
  pool: string | null;
  owner: string;
  reason: string | null;
}

const COLUMN: Record<(typeof OWNER_FIELDS)[number], string> = {
  namespace: 'ns', name: 'pod', uid: 'uid', containerId: 'container_id', ifname: 'ifname', netns: 'netns', netnsId: 'netns_id', pid: 'pid', pidStart: 'pid_start', network: 'network',
};

function ownerOf(r: Row): Owner {
  const o: Owner = {};
  if (r.ns !== null) o.namespace = r.ns;
  if (r.pod !== null) o.name = r.pod;
  if (r.uid !== null) o.uid = r.uid;
  if (r.container_id !== null) o.containerId = r.container_id;
  if (r.ifname !== null) o.ifname = r.ifname;
  if (r.netns !== null) o.netns = r.netns;
  if (r.netns_id != null) o.netnsId = r.netns_id; // a store of schema 1 read as it is (another store of the node) has no such column
  if (r.pid !== null) o.pid = r.pid;
  if (r.pid_start !== null) o.pidStart = r.pid_start;
  if (r.network !== null) o.network = r.network;
  return o;
}

function checkVf(vf: VfInfo, where: string): VfInfo {
  if (typeof vf !== 'object' || vf === null) throw invalid(`${where} must be a VF description (as \`vfplane vf list --json\` prints)`);
  const pci = parsePci(vf.pci, `${where}: VF PCI address`);
  const pf = parsePci(vf.pf, `${where}: PF PCI address`);
  if (!Number.isInteger(vf.index) || vf.index < 0) throw invalid(`${where}: VF index ${JSON.stringify(vf.index)} of ${pci} is not a whole number ≥ 0`);
  return { ...vf, pci, pf };
}

function checkPool(pool: unknown): string | null {
  if (pool === undefined || pool === null) return null;
  if (typeof pool !== 'string' || pool.length === 0 || pool.length > 256) throw invalid(`pool name ${JSON.stringify(pool)} is not valid: a non-empty string`);
  return pool;
}

const sameInterface = (a: Owner, b: Owner) =>
  a.containerId !== undefined && a.ifname !== undefined && a.containerId === b.containerId && a.ifname === b.ifname;

/**
 * A fresh allocation refused because the same pod interface already holds a VF: an
 * earlier ADD that finished, or one still running (two ADDs at once for one interface,
 * which the CNI spec forbids runtimes; answering the second with the first's VF let its
 * undo release a VF the first was handing over).
 */
function interfaceTaken(owner: Owner, mine: Row): VfpError {
  return conflict(`${describeOwner(owner)} already holds VF ${mine.pci} as ${owner.ifname} (allocation ${mine.id}, since ${mine.created_at}): an earlier ADD, or one still running`, {
    pci: mine.pci, holder: ownerOf(mine), id: mine.id, reason: 'interface-taken',
  });
}

/** Blocks the calling thread until `file` exists (at most a minute); announces itself in `file`.in-txn. */
export function pauseForTest(file: string): void {
  fs.writeFileSync(`${file}.in-txn`, String(process.pid));
  const until = Date.now() + 60_000;
  while (!fs.existsSync(file) && Date.now() < until) sleepSync(5);
}

function prepare(db: Database.Database) {
  let insert: Database.Statement | undefined;
  return {
    get: db.prepare<[string], Row>('SELECT * FROM allocations WHERE pci = ?'),
    byInterface: db.prepare<[string, string], Row>('SELECT * FROM allocations WHERE container_id = ? AND ifname = ?'),
    heldPcis: db.prepare<[], string>('SELECT pci FROM allocations').pluck(),
    list: db.prepare<[], Row>('SELECT * FROM allocations ORDER BY pf, vf_index, pci'),
    // Made at first use: it names the columns of the current schema, which a store
    // opened read-only at an older one lacks (and never inserts into).
    get insert(): Database.Statement {
      return (insert ??= db.prepare(
        `INSERT INTO allocations (pci, id, pf, vf_index, pool, ns, pod, uid, container_id, ifname, netns, netns_id, pid, pid_start, network, created_at, original, node)
         VALUES (@pci, @id, @pf, @vf_index, @pool, @ns, @pod, @uid, @container_id, @ifname, @netns, @netns_id, @pid, @pid_start, @network, @created_at, @original, @node)`,
      ));
    },
    setAttachment: db.prepare<[string | null, number]>('UPDATE allocations SET attachment = ? WHERE id = ?'),
    setOriginal: db.prepare<[string, number]>('UPDATE allocations SET original = ? WHERE id = ?'),
    delete: db.prepare<[string]>('DELETE FROM allocations WHERE pci = ?'),
    log: db.prepare<[string, string, string, number | null, string | null, string, string | null]>(
      'INSERT INTO history (at, op, pci, alloc_id, pool, owner, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    prune: db.prepare<[number]>('DELETE FROM history WHERE seq <= ?'),
    lastSeq: db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'history'"),
    // AUTOINCREMENT takes the next id above this row's seq: ids stay unique and rising.
    bumpSeq: db.prepare("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'history'"),
    startSeq: db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('history', 1)"),
    // An 'alloc' row's own seq is its allocation id (see insert()).
    lastRelease: db.prepare<[string, string], HistoryRow>(
      `SELECT seq, at, op, pci, alloc_id, pool, owner, reason FROM history
       WHERE op = 'release' AND json_extract(owner, '$.containerId') = ? AND json_extract(owner, '$.ifname') = ?
       ORDER BY seq DESC LIMIT 1`,
    ),
    history: db.prepare<[number], HistoryRow>(
      `SELECT seq, at, op, pci, CASE op WHEN 'alloc' THEN seq ELSE alloc_id END AS alloc_id, pool, owner, reason
       FROM history ORDER BY seq DESC LIMIT ?`,
    ),
  };
}

/** The refusal of a VF that another store of the node holds (for a caller that checks
 *  before it makes a store, too). */
export function heldInAnotherStore(pci: string, other: HeldElsewhere): VfpError {
  return conflict(
    `VF ${pci} is allocated to ${describeOwner(other.owner)} since ${other.since} in another allocation store of this node, ${other.dir}: ` +
      `two stores would hand one VF to two pods; give every vfplane command and CNI config on the node one state directory (--state-dir ${other.dir}, "stateDir" in the CNI config), or choose another VF`,
    { pci, holder: other.owner, store: other.dir },
  );
}

export class AllocStore {
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly ownerQueries = new Map<string, Database.Statement<unknown[], Row>>();
  private closed = false;
  /** Opened with readOnly: writes refused. */
  private readOnly = false;
  /** The schema the store is read at: SCHEMA_VERSION, or an older one read only. */
  private schema = SCHEMA_VERSION;

  private constructor(
    private readonly db: Database.Database,
    readonly dir: string,
    readonly file: string,
    private readonly busyTimeoutMs: number,
    private readonly historyKeep: number,
    private readonly pauseFile: string | undefined,
    private lock: ReturnType<typeof writerLock>,
  ) {
    this.stmt = prepare(db);
  }

  /** Opens (creating if needed) `alloc.db` under stateDir (default $VFPLANE_STATE_DIR or /var/lib/vfplane). */
  static open(stateDir?: string, opts: OpenOptions = {}): AllocStore {
    const dir = path.resolve(stateDir ?? defaultStateDir());
    const file = path.join(dir, DB_FILE);
    const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    const hint = 'pass --state-dir DIR (or set VFPLANE_STATE_DIR) to keep vfplane state elsewhere';
    try {
      // Only the owner may read who holds what and rewrite it.
      makeDirs(dir, 0o700);
    } catch (e) {
      throw systemError(`cannot create the state directory ${dir}: ${(e as Error).message}; ${hint}`, { dir });
    }
    AllocStore.sweepMakings(dir);
    let db: Database.Database;
    let schema = SCHEMA_VERSION;
    let whole = true; // made whole (or found): an empty file is then a damaged store
    if (opts.readOnly && !fs.existsSync(file)) throw notFound(`no allocation store ${file}: nothing is allocated there; ${hint}`, { file });
    try {
      if (opts.readOnly) {
        // A read-only connection: a look needs no write access to the store (a read-only
        // mount, a full filesystem), except for the WAL index (see readOnlyDb).
        db = AllocStore.readOnlyDb(file, busyTimeoutMs);
      } else {
        if (!fs.existsSync(file)) whole = AllocStore.create(dir, file);
        db = new Database(file);
      }
    } catch (e) {
      const t = AllocStore.translate(e, file, busyTimeoutMs, opts.readOnly ? 'opening it' : 'creating it'); // SQLite's, said plainly
      if (t !== e || e instanceof VfpError) throw t;
      throw systemError(`cannot open the allocation store ${file}: ${(e as Error).message}; check that the directory is writable by this user, or ${hint}`, { file });
    }
    if (!opts.readOnly) ownerOnly(file);
    if (whole && fs.statSync(file).size === 0) {
      db.close();
      // Never a store being made (see create): one truncated by a crash of its
      // filesystem or a stray `>`. Taken for a new store, every VF would look free.
      throw systemError(`the allocation store ${file} is empty (0 bytes), so vfplane cannot read it; ${AllocStore.moveAside(file)}`, { file });
    }
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      // Read only: the mode is the file's (and a copy read into memory has none).
      const mode = opts.readOnly ? 'wal' : db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') {
        throw systemError(`the allocation store ${file} cannot use write-ahead logging (journal mode stays "${mode}"); its filesystem probably lacks shared memory support (NFS?): ${hint}`, { file });
      }
      // With WAL, NORMAL syncs at checkpoints, not at every commit. A crashed process
      // loses nothing (committed frames are in the WAL in the OS page cache) and the
      // file is never corrupted; only a power loss can drop the last commits, and after
      // one every pod on the node is restarted and its VFs re-allocated anyway.
      db.pragma('synchronous = NORMAL');
      schema = AllocStore.migrate(db, file, opts.readOnly === true);
    } catch (e) {
      db.close();
      throw AllocStore.translate(e, file, busyTimeoutMs, 'opening');
    }
    const pause = process.env[PAUSE_ENV] || undefined;
    let lock: ReturnType<typeof writerLock> = null;
    if (opts.writerQueue !== false) {
      try {
        lock = writerLock(path.join(dir, LOCK_FILE));
      } catch {
        lock = null; // a lock file that cannot be opened: SQLite's own locking still holds
      }
    }
    let store: AllocStore;
    try {
      // Preparing the statements reads the schema: a damaged page there fails here.
      store = new AllocStore(db, dir, file, busyTimeoutMs, opts.historyKeep ?? DEFAULT_HISTORY_KEEP, pause, lock);
    } catch (e) {
      db.close();
      lock?.close();
      throw AllocStore.translate(e, file, busyTimeoutMs, 'opening');
    }
    store.readOnly = opts.readOnly === true;
    store.schema = schema;
    store.registry = opts.sysfsRoot === undefined ? null : registryDir(opts.sysfsRoot);
    if (opts.sysfsRoot !== undefined) {
      store.node = nodeOf(opts.sysfsRoot);
      try {
        // The first read of the allocations table: a store damaged past its first pages
        // (a torn write, a bad disk block) is found here.
        store.refuseOtherNodes(file);
      } catch (e) {
        store.close();
        throw AllocStore.translate(e, file, busyTimeoutMs, 'opening');
      }
    }
    return store;
  }

  /**
   * The store opened to read only. SQLite reads a WAL-mode file through its WAL index,
   * the -shm file, which it makes when nobody has the store open: on a read-only or full
   * filesystem it cannot, and even a look would fail. Then, when the -wal is absent or
   * empty, alloc.db alone holds every committed change, and a copy of it read into
   * memory is the store (nobody is writing it: every writer has the -shm open). SQLite's
   * own way, an immutable=1 URI, is not open to us: better-sqlite3 is built without URI
   * filenames (SQLITE_USE_URI=0) and passes no SQLITE_OPEN_URI. A -wal with something
   * in it may hold committed changes that only SQLite's recovery, which needs the -shm,
   * can read: a copy of alloc.db alone would miss them, so that store cannot be read.
   */
  private static readOnlyDb(file: string, busyTimeoutMs: number): Database.Database {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    let first: unknown;
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      db.pragma('user_version', { simple: true }); // a read: the WAL index is needed here
      return db;
    } catch (e) {
      db.close();
      first = e;
    }
    const code = String((first as { code?: unknown }).code ?? '');
    // The WAL index could not be made (CANTOPEN: no file; IOERR_SHM*: no room for it).
    if (!(code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_FULL')) throw first;
    const dir = path.dirname(file);
    let wal = 0;
    try {
      wal = fs.statSync(`${file}-wal`).size;
    } catch {
      // no -wal: alloc.db is the whole store
    }
    const roFs = (() => {
      try {
        fs.accessSync(dir, fs.constants.W_OK);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'EROFS';
      }
    })();
    const free = freeBytes(dir);
    const why = roFs ? `the filesystem holding ${dir} is mounted read-only`
      : free !== null && free < 1 << 20 ? `the filesystem holding ${dir} is full (${Math.floor(free / 1024)} KiB free)`
      : `SQLite says ${(first as Error).message} (${code})`;
    if (wal > 0) {
      throw systemError(
        `the allocation store ${file} cannot be read: its write-ahead log ${file}-wal holds ${wal} bytes that may be committed allocations and releases not yet in ${file}, ` +
          `and SQLite reads them only through its WAL index ${file}-shm, which it cannot make: ${why}. ` +
          `${roFs ? 'Make that filesystem writable' : 'Free some space there'} and retry; never delete ${file}-wal, and do not read a copy of ${file} without it`,
        { file, code, wal },
      );
    }
    let copy: Buffer;
    try {
      copy = fs.readFileSync(file);
    } catch {
      throw first; // the file itself cannot be read: said as SQLite said it
    }
    // Bytes 18 and 19 of the header say WAL mode; in memory there is no WAL to read, and
    // SQLite refuses a WAL-mode image there. 1 is the rollback journal's (file format 1).
    if (copy.length >= 20 && copy[18] === 2 && copy[19] === 2) {
      copy[18] = 1;
      copy[19] = 1;
    }
    return new Database(copy, { readonly: true });
  }

  /** What to do with a store that cannot be read: the exact commands, and what is lost. */
  private static moveAside(file: string): string {
    const dir = path.dirname(file);
    const aside = path.join(dir, `damaged-${new Date().toISOString().replace(/[-:]|\.\d+/g, '')}`);
    // Quoted for the shell (a state directory may hold a space); the three files by name,
    // those that are there (no alloc.db.bak an operator made).
    const d = shellArg(dir), a = shellArg(aside), base = path.basename(file);
    return `move it aside with its -wal and -shm (a -wal left behind would be read into the new store): ` +
      `\`mkdir ${a} && for f in ${base} ${base}-wal ${base}-shm; do [ ! -e ${d}/"$f" ] || mv ${d}/"$f" ${a}/; done\`; the next vfplane command makes an empty store. ` +
      `What it recorded is lost: every VF then looks free, those still in pods too, and no VF is put back as it was. ` +
      `Before allocating again, find the VFs pods hold: \`vfplane vf list\` shows no netdev for a VF moved into a pod (or bound to vfio-pci), ` +
      `and \`ip -all netns exec ip -br link\` lists the pods' interfaces; record each with \`vfplane vf alloc --pci PCI --owner NS/NAME --ifname IF\`, or re-create those pods`;
  }

  /** The node (sysfs root) this store is opened for; null: not said (its allocations
   *  then record none). */
  private node: string | null = null;

  /** A store holding VFs of another node is not this node's: its PCI addresses would be
   *  read as this node's VFs (listed as held, released, put back onto another NIC's
   *  netdevs). Allocations from before schema 3 carry no node and are taken as this one's. */
  private refuseOtherNodes(file: string): void {
    if (this.schema < 3) return; // read as it is, from before nodes were recorded
    const other = this.db.prepare<[string], { node: string; n: number; pci: string }>(
      'SELECT node, COUNT(*) AS n, MIN(pci) AS pci FROM allocations WHERE node IS NOT NULL AND node != ? GROUP BY node ORDER BY n DESC LIMIT 1',
    ).get(this.node!);
    if (!other) return;
    throw invalid(`the allocation store ${file} holds ${other.n} VF${other.n === 1 ? '' : 's'} (${other.pci}${other.n > 1 ? ', …' : ''}) of the node whose sysfs root is ${other.node}, ` +
      `and this one's is ${this.node}: a store keeps one node's VFs (PCI addresses repeat across nodes; every simulated NIC has bus 5e). ` +
      `Give --state-dir (VFPLANE_STATE_DIR, a CNI config's stateDir) a directory of its own for ${this.node}, or use --sysfs-root ${other.node}`,
    { file, node: this.node, otherNode: other.node, held: other.n, cniCode: 7 });
  }

  /** The node's registry of stores (registry.ts); null: none (no sysfs root given, or a
   *  root that is no node's). */
  private registry: string | null = null;

  /** Runs an allocation under the node's allocation lock, taken before this store's own
   *  (every allocator takes them in that order; nobody waits for a store's lock while
   *  holding the node's, since another store is only read), with this store registered.
   *  `elsewhere` says which of some VFs another store of the node holds.
   *  The lock is shared while no other store is registered (the usual node: one store,
   *  whose own lock orders its allocators), exclusive otherwise. A store registers before
   *  it looks for others, and looks under the lock: of two stores starting at once, at
   *  least one sees the other and waits, exclusively, for its allocation to commit. */
  private acrossNode<T>(what: string, fn: (elsewhere: (pcis: string[]) => Map<string, HeldElsewhere>) => T): T {
    this.checkOpen();
    const reg = this.registry;
    if (!reg) return fn(() => new Map());
    register(reg, this.dir);
    const file = path.join(reg, NODE_LOCK);
    let lock: ReturnType<typeof writerLock>;
    try {
      lock = writerLock(file);
    } catch (e) {
      throw systemError(`cannot open the node's allocation lock ${file}: ${(e as Error).message}; run as root`, { file });
    }
    const busy = () => unavailable(`the node's allocation lock ${file} is busy: another process has held it for more than ${this.busyTimeoutMs / 1000} s, so ${what} gave up; retry`,
      { reason: 'busy', file });
    let took = lock ? lock.take(this.busyTimeoutMs, true) : -1;
    try {
      if (took === -ETIMEDOUT) throw busy();
      if (took === 0 && otherStores(reg, this.dir, DB_FILE).length > 0) {
        lock!.give();
        took = lock!.take(this.busyTimeoutMs);
        if (took === -ETIMEDOUT) throw busy();
      }
      return fn((pcis) => this.elsewhere(reg, pcis));
    } finally {
      if (took === 0) lock!.give();
      lock?.close();
    }
  }

  /** `pcis` null: every VF the other stores hold. */
  private elsewhere(reg: string, pcis: string[] | null): Map<string, HeldElsewhere> {
    return AllocStore.heldInRegistry(reg, this.dir, pcis);
  }

  /** What the stores of the node at `sysfsRoot` other than the one in `stateDir` hold
   *  (for a reader whose own store does not exist yet). */
  static heldByOthers(sysfsRoot: string, stateDir: string): Map<string, HeldElsewhere> {
    const reg = registryDir(sysfsRoot);
    return reg ? AllocStore.heldInRegistry(reg, path.resolve(stateDir), null) : new Map();
  }

  /** Every VF any store of the node at `sysfsRoot` holds (what `sim destroy` warns of). */
  static heldAt(sysfsRoot: string): HeldElsewhere[] {
    const reg = registryDir(sysfsRoot);
    return reg ? [...AllocStore.heldInRegistry(reg, '', null).values()] : [];
  }

  private static heldInRegistry(reg: string, self: string, pcis: string[] | null): Map<string, HeldElsewhere> {
    const out = new Map<string, HeldElsewhere>();
    if (pcis?.length === 0) return out;
    for (const { dir, entry } of otherStores(reg, self, DB_FILE)) {
      for (const h of AllocStore.heldIn(dir, entry, pcis)) if (!out.has(h.pci)) out.set(h.pci, h);
    }
    return out;
  }

  /** Another store of this node that holds the VF, if any: a VF released here that one
   *  of them has taken since (possible only across a reboot, when the stores registered
   *  anew) must not be put back under its new pod. */
  heldElsewhere(pci: string): HeldElsewhere | undefined {
    this.checkOpen();
    return this.registry ? this.elsewhere(this.registry, [pci]).get(pci) : undefined;
  }

  /** Every VF another store of this node holds, by PCI address. */
  allHeldElsewhere(): Map<string, HeldElsewhere> {
    this.checkOpen();
    return this.registry ? this.elsewhere(this.registry, null) : new Map();
  }

  /** The PCI addresses of the VFs held by someone, in this store or another of the node:
   *  what a pool view must not take for free VFs (or for VFs nobody can explain). */
  heldOnNode(): Set<string> {
    const held = this.heldPcis();
    for (const pci of this.allHeldElsewhere().keys()) held.add(pci);
    return held;
  }

  private static heldIn(dir: string, entry: string, pcis: string[] | null): HeldElsewhere[] {
    const file = path.join(dir, DB_FILE);
    let db: Database.Database | undefined;
    try {
      // Read only: a SELECT. A read-only connection reads a store whose WAL index exists
      // (someone has it open); one nobody has open needs its index made, read-write.
      try {
        db = new Database(file, { fileMustExist: true, readonly: true });
        db.pragma('busy_timeout = 2000');
        db.prepare('SELECT 1 FROM allocations LIMIT 1').all();
      } catch {
        db?.close();
        db = new Database(file, { fileMustExist: true });
        db.pragma('busy_timeout = 2000');
      }
      const rows = (pcis === null
        ? db.prepare('SELECT * FROM allocations').all()
        : db.prepare(`SELECT * FROM allocations WHERE pci IN (${pcis.map(() => '?').join(',')})`).all(...pcis)) as Row[];
      return rows.map((r) => ({ pci: r.pci, dir, owner: ownerOf(r), since: r.created_at }));
    } catch (e) {
      // Full (its WAL index could not be made): not damaged, and not to be removed.
      const code = (e as { code?: string }).code ?? '';
      const free = freeBytes(dir);
      if (code === 'SQLITE_FULL' || (code.startsWith('SQLITE_IOERR') && free !== null && free < 1 << 20)) {
        throw systemError(`cannot read the allocation store ${file}, which this node's registry of stores lists (${entry}): the filesystem holding ${dir} is full ` +
          `(${free === null ? 'no' : Math.floor(free / 1024)} KiB free), and reading a store needs room for its WAL index; free some space there (until then no VF of this node is allocated or released: which ones that store holds cannot be known)`, { file, entry, code });
      }
      throw systemError(`cannot read the allocation store ${file}, which this node's registry of stores lists (${entry}): ${(e as Error).message}; ` +
        `repair it, or remove ${entry} if that store is no longer used`, { file, entry });
    } finally {
      db?.close();
    }
  }

  /** Removes stores in the making (see create) that a killed process left: one takes
   *  milliseconds to make, so a file of that name untouched for ten minutes is nobody's.
   *  By age, not by pid: the maker may live in another pid namespace. */
  private static sweepMakings(dir: string): void {
    const making = new RegExp(`^\\.${DB_FILE.replace('.', '\\.')}\\.\\d+\\.[0-9a-f]{8}\\.new(-wal|-shm|-journal)?$`);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    const old = Date.now() - 10 * 60_000;
    for (const n of names) {
      if (!making.test(n)) continue;
      const f = path.join(dir, n);
      try {
        if (fs.lstatSync(f).mtimeMs < old) fs.rmSync(f, { force: true });
      } catch {
        // gone meanwhile, or not ours to remove: the store is fine either way
      }
    }
  }

  /** Makes a store whole under a temporary name and links it into place, so that no
   *  process ever opens a store half made (SQLite makes an empty file first, and a
   *  reader then would take it for a new store). A store another process linked first
   *  wins. False where the filesystem has no hard links: the file is then left for
   *  SQLite to make in place, as before. */
  private static create(dir: string, file: string): boolean {
    // pid and a random part: processes in different pid namespaces (a container and the
    // host) may share a pid, and must not remove each other's store in the making.
    const tmp = path.join(dir, `.${DB_FILE}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.new`);
    const gone = () => { for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true }); };
    gone();
    try {
      const db = new Database(tmp);
      try {
        fs.chmodSync(tmp, 0o600); // before the WAL: SQLite gives its -wal and -shm the store's mode
        db.pragma('journal_mode = WAL'); // recorded in the file: every opener gets it
        AllocStore.migrate(db, tmp, false);
      } finally {
        db.close(); // checkpoints: the whole store is in tmp now
      }
      try {
        fs.linkSync(tmp, file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return true; // another process made it first
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return false;
        throw e;
      }
      return true;
    } finally {
      gone();
    }
  }

  /** Brings the store to SCHEMA_VERSION (a newer one is refused); with `readOnly`, only
   *  checks. Returns the schema the store is read at. */
  private static migrate(db: Database.Database, file: string, readOnly: boolean): number {
    const check = (v: number) => {
      if (v > SCHEMA_VERSION) {
        throw systemError(
          `the allocation store ${file} has schema version ${v}, newer than this vfplane knows (${SCHEMA_VERSION}); ` +
            'a newer vfplane wrote it: upgrade vfplane on this node, or point --state-dir elsewhere',
          { file, version: v, known: SCHEMA_VERSION },
        );
      }
    };
    // A plain read first: opening an up-to-date store must not wait for the write lock.
    const seen = db.pragma('user_version', { simple: true }) as number;
    check(seen);
    if (seen === SCHEMA_VERSION || readOnly) return seen;
    db.transaction(() => {
      // Again under the lock: another process may have migrated meanwhile.
      const v = db.pragma('user_version', { simple: true }) as number;
      check(v);
      if (v === 0) db.exec(SCHEMA_V1);
      // 2: the owner's netns identity (netnsId), beside its path.
      if (v < 2) db.exec('ALTER TABLE allocations ADD COLUMN netns_id TEXT');
      // 3: the node (its sysfs root, real path) whose VF each allocation is: PCI addresses
      // repeat across nodes (every simulated NIC has bus 5e), so one store keeps one node's.
      if (v < 3) db.exec('ALTER TABLE allocations ADD COLUMN node TEXT');
      // Later versions add their steps here: if (v < 4) { ... }
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
    return SCHEMA_VERSION;
  }

  /** Turns SQLite's errors into VfpErrors that say what to do. */
  private static translate(e: unknown, file: string, busyTimeoutMs: number, what: string): unknown {
    if (e instanceof VfpError) return e;
    const code = (e as { code?: unknown }).code;
    const msg = e instanceof Error ? e.message : String(e);
    if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return e;
    if (code.startsWith('SQLITE_BUSY')) {
      return unavailable(
        `the allocation store ${file} is busy: another process has held its lock for more than ${busyTimeoutMs / 1000} s, so ${what} gave up; retry`,
        { reason: 'busy', file },
      );
    }
    // CANTOPEN is also a path that is no file: a directory (or other non-file) there (an
    // I/O error to a read-only connection).
    if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR')) {
      let kind: string | null = null;
      try {
        const st = fs.statSync(file);
        if (!st.isFile()) kind = st.isDirectory() ? 'a directory' : 'not a regular file';
      } catch {
        // not there, or unreadable: the read-only advice below
      }
      if (kind) return systemError(`the allocation store ${file} is ${kind}, not a database file; move it away (vfplane makes the store afresh), or pass --state-dir`, { file, code });
    }
    if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_CANTOPEN')) {
      // Root is refused only by the file or its filesystem: a read-only mount, chattr +i.
      const fix = process.getuid?.() === 0
        ? `the file or its directory is read-only to root too (a read-only mount, or \`chattr +i\`: lsattr ${path.dirname(file)}); make it writable, or pass --state-dir`
        : 'run as a user that owns it (root), or pass --state-dir';
      return systemError(`the allocation store ${file} cannot be written (${msg}); ${fix}`, { file, code });
    }
    // A full filesystem shows as SQLITE_FULL, or as an I/O error on the WAL's shared
    // memory file (SQLITE_IOERR_SHMSIZE) before that.
    const free = freeBytes(path.dirname(file));
    if (code === 'SQLITE_FULL' || (code.startsWith('SQLITE_IOERR') && free !== null && free < 1 << 20)) {
      return systemError(`the allocation store ${file} cannot grow: the filesystem holding ${path.dirname(file)} is full (${free === null ? 'no' : Math.floor(free / 1024)} KiB free); free some space and retry`, { file, code });
    }
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
      return systemError(`the allocation store ${file} is damaged (${msg}), and vfplane cannot repair it; ${AllocStore.moveAside(file)}`, { file, code });
    }
    if (code.startsWith('SQLITE_CONSTRAINT')) {
      return conflict(`the allocation store ${file} refused the change: ${msg} (another process took the VF or interface first); retry`, { file, code });
    }
    return systemError(`the allocation store ${file} failed while ${what}: ${msg}`, { file, code });
  }

  private checkOpen(): void {
    if (this.closed) throw systemError(`the allocation store ${this.file} is closed`);
  }

  /**
   * Runs fn in an IMMEDIATE transaction: the write lock first, then reads that cannot go
   * stale. (A deferred transaction that reads and then writes can be refused with BUSY
   * at once, without waiting, when another writer got in between.) SQLite's busy handler
   * waits for the lock; a JS retry loop with shorter sleeps was tried and measured no
   * better on 8 processes / 2 cores: waking waiters steal CPU from the lock holder.
   */
  private write<T>(what: string, fn: () => T): T {
    this.checkOpen();
    if (this.readOnly) throw systemError(`the allocation store ${this.file} was opened to read only, so ${what} cannot change it`);
    // Writers queue on an flock first (the kernel wakes the next one when the holder lets
    // go, or dies), so that SQLite's busy handler, which sleeps in growing steps, rarely
    // has to wait. The flock only orders writers; SQLite's lock is what keeps them apart.
    const mark = process.env[MARK_WRITE_ENV];
    if (mark) fs.writeFileSync(mark, String(process.pid));
    const took = this.lock ? this.lock.take(this.busyTimeoutMs) : -1;
    if (took === -ETIMEDOUT) {
      // The abandoned wait still gets the lock when its holder lets go, for this open file
      // (flock locks belong to it), and lets it go at once: a later take on the same file
      // could succeed just before that and lose its lock. The next write opens its own.
      const old = this.lock!;
      try {
        this.lock = writerLock(path.join(this.dir, LOCK_FILE));
      } catch {
        this.lock = null; // SQLite's own locking still holds
      }
      old.close();
      throw unavailable(`the allocation store ${this.file} is busy: another process has held its lock for more than ${this.busyTimeoutMs / 1000} s, so ${what} gave up; retry`,
        { reason: 'busy', file: this.file });
    }
    try {
      return this.db.transaction(fn).immediate();
    } catch (e) {
      throw AllocStore.translate(e, this.file, this.busyTimeoutMs, what);
    } finally {
      if (took === 0) this.lock!.give();
    }
  }

  /** Runs fn while no other process can allocate or release (the store's write lock,
   *  in an IMMEDIATE transaction): for a change to VFs that checks who holds them first,
   *  which an allocation between the check and the change would escape (its VF changed
   *  under it, and the change recorded as its original state). fn may read the store
   *  (get, list) but must be quick: writers wait for it, up to their busy timeout. */
  exclusive<T>(what: string, fn: () => T): T {
    return this.write(what, () => {
      const r = fn();
      // Not an allocation or release, yet a VF snapshot read before it is stale: the
      // history sequence moves on, so an allocation that read it before (CNI ADD's
      // snapshot check, see lastSeq) reads the VF again instead of recording settings
      // this change replaced as the VF's original state, for its DEL to put back.
      if (this.stmt.bumpSeq.run().changes === 0) this.stmt.startSeq.run();
      return r;
    });
  }

  private read<T>(what: string, fn: () => T): T {
    this.checkOpen();
    try {
      return fn();
    } catch (e) {
      throw AllocStore.translate(e, this.file, this.busyTimeoutMs, what);
    }
  }

  private toAllocation(r: Row): Allocation {
    let original: VfInfo;
    let bootId: unknown;
    try {
      ({ bootId, ...original } = JSON.parse(r.original) as VfInfo & { bootId?: unknown });
    } catch {
      throw systemError(`the allocation store ${this.file} holds an unreadable original state for VF ${r.pci}; release it with --force and check the VF by hand`, { pci: r.pci });
    }
    let attachment: Record<string, unknown> | null = null;
    if (r.attachment !== null) {
      try {
        attachment = JSON.parse(r.attachment) as Record<string, unknown>;
      } catch {
        throw systemError(`the allocation store ${this.file} holds an unreadable attachment record for VF ${r.pci}; release it with --force and check the VF by hand`, { pci: r.pci });
      }
    }
    return { id: r.id, pci: r.pci, pf: r.pf, vfIndex: r.vf_index, pool: r.pool, owner: ownerOf(r), createdAt: r.created_at, original, attachment, ...(typeof bootId === 'string' ? { bootId } : {}) };
  }

  /** VF's original state as recorded, with the node's boot id beside it (Allocation.bootId). */
  private originalRecord(full: VfInfo): { json: string; bootId?: string } {
    // Who had its VFIO group open is a fact of the moment, not a setting to restore.
    const { vfioOpenBy: _, ...vf } = full;
    const bootId = this.node ? bootIdAt(this.node) : null;
    return bootId ? { json: JSON.stringify({ ...vf, bootId }), bootId } : { json: JSON.stringify(vf) };
  }

  private log(op: 'alloc' | 'release', pci: string, allocId: number | null, pool: string | null, owner: Owner, reason: string | null): number {
    const at = new Date().toISOString();
    // Fields in one fixed order, so equal owners are equal strings in the log.
    const o = JSON.stringify(owner, [...OWNER_FIELDS]);
    const seq = Number(this.stmt.log.run(at, op, pci, allocId, pool, o, reason).lastInsertRowid);
    if (seq > this.historyKeep) this.stmt.prune.run(seq - this.historyKeep);
    return seq;
  }

  private insert(vf: VfInfo, owner: Owner, pool: string | null): Allocation {
    const createdAt = new Date().toISOString();
    const rec = this.originalRecord(vf);
    // The 'alloc' history row's seq is the allocation id: monotonic, never reused.
    const id = this.log('alloc', vf.pci, null, pool, owner, null);
    this.stmt.insert.run({
      pci: vf.pci, id, pf: vf.pf, vf_index: vf.index, pool,
      ns: owner.namespace ?? null, pod: owner.name ?? null, uid: owner.uid ?? null, container_id: owner.containerId ?? null,
      ifname: owner.ifname ?? null, netns: owner.netns ?? null, netns_id: owner.netnsId ?? null, pid: owner.pid ?? null, pid_start: owner.pidStart ?? null,
      network: owner.network ?? null, created_at: createdAt, original: rec.json, node: this.node,
    });
    if (this.pauseFile) pauseForTest(this.pauseFile);
    return { id, pci: vf.pci, pf: vf.pf, vfIndex: vf.index, pool, owner, createdAt, original: vf, attachment: null, ...(rec.bootId ? { bootId: rec.bootId } : {}) };
  }

  private static prepareOwner(o: Owner): Owner {
    const owner = parseOwner(o, 'owner');
    // Record the start time with the pid so a recycled PID does not look like the owner.
    if (owner.pid !== undefined && owner.pidStart === undefined) {
      const s = pidStart(owner.pid);
      if (s !== undefined) owner.pidStart = s;
    }
    // And the netns's identity with its path, so a namespace made again at that path
    // (`ip netns del x; ip netns add x`) does not look like the owner's to gc.
    if (owner.netns !== undefined && owner.netnsId === undefined) {
      const id = netnsIdOf(owner.netns);
      if (id !== undefined) owner.netnsId = id;
    }
    return owner;
  }

  /**
   * Takes the first free VF among `candidates`, in their order. The same pod interface
   * (containerId and ifname) asking again gets its existing allocation back, unless
   * `fresh` is set: then it is refused (see interfaceTaken), in the same transaction.
   */
  allocate(req: { candidates: VfInfo[]; owner: Owner; pool?: string; fresh?: boolean }): Allocation {
    const owner = AllocStore.prepareOwner(req.owner);
    const pool = checkPool(req.pool);
    if (!Array.isArray(req.candidates)) throw invalid('allocate: candidates must be a list of VFs');
    const seen = new Set<string>();
    const candidates: VfInfo[] = [];
    req.candidates.forEach((vf, i) => {
      const c = checkVf(vf, `candidates[${i}]`);
      if (!seen.has(c.pci)) {
        seen.add(c.pci);
        candidates.push(c);
      }
    });
    const inPool = pool === null ? '' : ` in pool ${JSON.stringify(pool)}`;
    return this.acrossNode('allocating a VF', (elsewhere) => {
      const other = elsewhere(candidates.map((c) => c.pci));
      return this.write('allocating a VF', () => {
        if (owner.containerId !== undefined && owner.ifname !== undefined) {
          const mine = this.stmt.byInterface.get(owner.containerId, owner.ifname);
          if (mine) {
            if (req.fresh) throw interfaceTaken(owner, mine);
            if (seen.has(mine.pci)) return this.toAllocation(mine);
            throw conflict(
              `${describeOwner(owner)} already holds VF ${mine.pci}${mine.pool ? ` (pool ${JSON.stringify(mine.pool)})` : ''}, which is not among the VFs${inPool}; ` +
                `release it first (vfplane vf release ${mine.pci})`,
              { pci: mine.pci, holder: ownerOf(mine) },
            );
          }
        }
        const held = new Set(this.stmt.heldPcis.all());
        const free = candidates.find((c) => !held.has(c.pci) && !other.has(c.pci));
        if (free) return this.insert(free, owner, pool);
        if (candidates.length === 0) {
          throw unavailable(
            pool === null ? 'no VF to allocate: the candidate list is empty' : `no VF matches pool ${JSON.stringify(pool)} on this node; compare its selector with \`vfplane vf list\``,
            { reason: 'empty', pool },
          );
        }
        const shown = candidates.slice(0, 3).map((c) => {
          const r = this.stmt.get.get(c.pci);
          const o = other.get(c.pci);
          return `${c.pci} to ${r ? describeOwner(ownerOf(r)) : o ? `${describeOwner(o.owner)} in the store ${o.dir}` : '?'}`;
        });
        if (candidates.length > 3) shown.push(`${candidates.length - 3} more`);
        const n = candidates.length;
        const stores = [...new Set([...other.values()].map((o) => o.dir))];
        throw unavailable(
          `no free VF${inPool}: ${n} VF${n === 1 ? '' : 's'} match, all allocated (${shown.join(', ')}); ` +
            (stores.length ? `${other.size} of them in another allocation store of this node (${stores.join(', ')}), which this one (${this.dir}) cannot release: give every vfplane command and CNI config on the node one state directory; ` : '') +
            'retry when one is released, release a stale one (vfplane vf list --allocated; vfplane gc), or create more VFs',
          { reason: 'exhausted', pool, candidates: n, ...(stores.length ? { otherStores: stores } : {}) },
        );
      });
    });
  }

  /** Takes one VF by its PCI address; if someone else holds it, a 'conflict' naming them.
   *  `fresh`: as for allocate. */
  allocatePci(req: { vf: VfInfo; owner: Owner; pool?: string; fresh?: boolean }): Allocation {
    const owner = AllocStore.prepareOwner(req.owner);
    const pool = checkPool(req.pool);
    const vf = checkVf(req.vf, 'vf');
    return this.acrossNode('allocating a VF', (elsewhere) => {
      const other = elsewhere([vf.pci]).get(vf.pci);
      return this.write('allocating a VF', () => {
        const cur = this.stmt.get.get(vf.pci);
        if (!cur && other) throw heldInAnotherStore(vf.pci, other);
        if (cur) {
          const holder = ownerOf(cur);
          if (sameInterface(owner, holder)) {
            if (req.fresh) throw interfaceTaken(owner, cur);
            return this.toAllocation(cur);
          }
          throw conflict(
            `VF ${vf.pci} is allocated to ${describeOwner(holder)} since ${cur.created_at}; choose another VF, or release this one first (\`vfplane gc\` if its holder is gone, \`vfplane vf release ${vf.pci} --force\` to take it from a live one)`,
            { pci: vf.pci, holder, id: cur.id },
          );
        }
        if (owner.containerId !== undefined && owner.ifname !== undefined) {
          const mine = this.stmt.byInterface.get(owner.containerId, owner.ifname);
          if (mine) {
            if (req.fresh) throw interfaceTaken(owner, mine);
            throw conflict(`${describeOwner(owner)} already holds VF ${mine.pci}; release it before taking ${vf.pci}`, { pci: mine.pci });
          }
        }
        return this.insert(vf, owner, pool);
      });
    });
  }

  /**
   * Releases one VF. The caller proves it is the holder with owner fields and/or the
   * allocation id, or passes force.
   */
  release(pci: string, who: ReleaseWho): Allocation {
    const addr = parsePci(pci, 'VF PCI address');
    const pattern = who.owner ? parseOwner(who.owner, 'owner', true) : {};
    const hasOwner = Object.keys(pattern).length > 0;
    if (who.id !== undefined && (!Number.isInteger(who.id) || who.id < 1)) throw invalid(`allocation id ${JSON.stringify(who.id)} is not valid: a whole number ≥ 1`);
    if (!who.force && !hasOwner && who.id === undefined) {
      throw invalid(`releasing VF ${addr} needs its owner (some of ${OWNER_FIELDS.join(', ')}) or its allocation id, or --force`);
    }
    return this.write('releasing a VF', () => {
      const cur = this.stmt.get.get(addr);
      if (!cur) throw notFound(`VF ${addr} is not allocated; \`vfplane vf list --allocated\` shows what is`, { pci: addr });
      const a = this.toAllocation(cur);
      if (!who.force) {
        // ifname or netns match many pods' VFs; as for releaseOwner, someone must be named.
        if (hasOwner && !isIdentifying(pattern)) {
          throw conflict(`VF ${addr} is allocated to ${describeOwner(a.owner)}; the owner fields given (${Object.keys(pattern).join(', ')}) do not say whose VF this is: ` +
            `add ${IDENTIFYING}, or pass --force to release it anyway`, { pci: addr, holder: a.owner, id: a.id });
        }
        if (hasOwner && !ownerMatches(a.owner, pattern)) {
          throw conflict(`VF ${addr} is allocated to ${describeOwner(a.owner)}, not to ${describeOwner(pattern)}; pass --force to release it anyway`, {
            pci: addr, holder: a.owner, id: a.id,
          });
        }
        if (who.id !== undefined && who.id !== a.id) {
          throw conflict(`VF ${addr} is allocation ${a.id} (${describeOwner(a.owner)}), not allocation ${who.id}; pass --force to release it anyway`, {
            pci: addr, holder: a.owner, id: a.id,
          });
        }
      }
      if (who.check) return a;
      this.stmt.delete.run(addr);
      this.log('release', addr, a.id, a.pool, a.owner, who.reason ?? (who.force ? 'forced' : null));
      return a;
    });
  }

  /**
   * Releases allocation `id` of VF `pci` after `putBack` (which restores the VF and must be
   * quick and synchronous) ran on it, both while no other process can allocate: a VF
   * released meanwhile and given to another pod is left alone (null, putBack not run),
   * where a restore from an old snapshot would overwrite the new pod's settings.
   */
  releaseWith<T>(pci: string, id: number, reason: string, putBack: (a: Allocation) => T): T | null {
    const addr = parsePci(pci, 'VF PCI address');
    return this.write('releasing a VF', () => {
      const cur = this.stmt.get.get(addr);
      if (!cur || cur.id !== id) return null;
      const a = this.toAllocation(cur);
      const r = putBack(a);
      this.stmt.delete.run(addr);
      this.log('release', addr, a.id, a.pool, a.owner, reason);
      return r;
    });
  }

  /** Releases every VF whose owner matches all the given fields (none held: an empty list). */
  /** The allocations releaseOwner would release, without releasing them. */
  findOwner(owner: Partial<Owner>): Allocation[] {
    return this.releaseOwner(owner, undefined, true);
  }

  releaseOwner(owner: Partial<Owner>, reason?: string, check = false): Allocation[] {
    const pattern = parseOwner(owner, 'owner', true);
    if (!isIdentifying(pattern)) {
      throw invalid(`releasing by owner needs ${IDENTIFYING} (got ${Object.keys(pattern).join(', ') || 'nothing'}), so that no one else's VF matches`);
    }
    const fields = OWNER_FIELDS.filter((f) => pattern[f] !== undefined);
    const key = fields.join(',');
    return this.write('releasing VFs', () => {
      // Prepared in here: preparing reads the schema, whose errors write() says plainly.
      let query = this.ownerQueries.get(key);
      if (!query) {
        query = this.db.prepare<unknown[], Row>(`SELECT * FROM allocations WHERE ${fields.map((f) => `${COLUMN[f]} = ?`).join(' AND ')} ORDER BY pci`);
        this.ownerQueries.set(key, query);
      }
      const rows = query.all(...fields.map((f) => pattern[f]));
      return rows.map((r) => {
        const a = this.toAllocation(r);
        if (check) return a;
        this.stmt.delete.run(a.pci);
        this.log('release', a.pci, a.id, a.pool, a.owner, reason ?? null);
        return a;
      });
    });
  }

  /**
   * The newest history sequence number (0 on a new store). Every allocation and release
   * takes the next one, and an allocation's id is its own: an allocation whose id is
   * lastSeq() + 1, read before, proves that no VF was allocated, released or changed
   * under exclusive() in between (so a VF snapshot taken in between is still true).
   */
  lastSeq(): number {
    return this.read('reading the history sequence', () => this.stmt.lastSeq.get()?.seq ?? 0);
  }

  get(pci: string): Allocation | undefined {
    const addr = parsePci(pci, 'VF PCI address');
    return this.read('reading an allocation', () => {
      const r = this.stmt.get.get(addr);
      return r ? this.toAllocation(r) : undefined;
    });
  }

  /**
   * The right to put VF `pci` back (off the overlay, its netdev home, its driver and
   * settings restored) and release it, held by one releaser at a time: a pod's CNI DEL,
   * the runtime's CNI GC, `vfplane gc`, `vf release`. Two at once each met the other's
   * half-done work (the netdev already gone from the pod: "No such device") and one
   * reported a failure, or both undid what the other had just restored. An flock on
   * `putback-<pci>.lock` in the state directory, removed as it is let go; the kernel
   * lets a killed holder's go. Waits up to waitMs (polled, so a holder in this process,
   * another request of a CNI server, can finish; `onWait` told who it waits for), then
   * says who holds it. Where no lock
   * can be had (the addon not built, a state directory that cannot be written, something
   * other than a regular file at its path), the put-back goes on unlocked, as before the
   * lock, with `unlocked` saying why for the caller's log: a releaser that failed there
   * would leave a pod's DEL failing until someone mends the directory.
   */
  async putBackLock(pci: string, about: string, waitMs = putBackWaitMs(), onWait?: (h: Held) => void): Promise<(Lock & { unlocked?: string }) | Held> {
    const addr = parsePci(pci, 'VF PCI address');
    const file = path.join(this.dir, `putback-${addr}.lock`);
    try {
      return await waitLock(file, waitMs, this.dir, about, true, onWait);
    } catch (e) {
      // Something other than a regular file there (lockOpen neither follows a symlink nor
      // takes a directory): not a lock vfplane made, and the way out is to remove it.
      let odd = false;
      try {
        odd = !fs.lstatSync(file).isFile();
      } catch {
        // nothing there: the directory itself is the trouble
      }
      return {
        release: () => {},
        unlocked: `VF ${addr} is put back without its put-back lock (${(e as Error).message}): another releaser of it (a DEL, GC, vfplane gc) is not kept out meanwhile` +
          (odd ? `; remove ${file}, which is not a lock file vfplane made` : ''),
      };
    }
  }

  /** The allocation of one pod interface (CNI container ID + interface name), if any. */
  findInterface(containerId: string, ifname: string): Allocation | undefined {
    return this.read('reading an allocation', () => {
      const r = this.stmt.byInterface.get(containerId, ifname);
      return r ? this.toAllocation(r) : undefined;
    });
  }

  /**
   * Records what the holder did with its VF (JSON). Only allocation ID may be changed: a
   * holder whose allocation was released and given away cannot write over the new one.
   */
  setAttachment(id: number, attachment: Record<string, unknown> | null): void {
    this.write('recording an attachment', () => {
      const n = this.stmt.setAttachment.run(attachment === null ? null : JSON.stringify(attachment), id).changes;
      if (n !== 1) throw notFound(`allocation ${id} no longer exists; it was released`, { id });
    });
  }

  /**
   * Records ATTACHMENT for allocation ID unless `clash` finds, among the other
   * allocations, one it must not sit beside (a MAC another VF of the PF holds): that one
   * is returned and nothing is written. The look and the write are one transaction, so
   * two holders doing this at once cannot both miss each other.
   */
  setAttachmentUnless(id: number, attachment: Record<string, unknown>, clash: (other: Allocation) => boolean): Allocation | null {
    return this.write('recording an attachment', () => {
      const other = this.stmt.list.all().map((r) => this.toAllocation(r)).find((o) => o.id !== id && clash(o));
      if (other) return other;
      const n = this.stmt.setAttachment.run(JSON.stringify(attachment), id).changes;
      if (n !== 1) throw notFound(`allocation ${id} no longer exists; it was released`, { id });
      return null;
    });
  }

  /**
   * Replaces the recorded original state of allocation ID: a holder that read the VF
   * before taking it (when the previous holder may still have been restoring it) records
   * what it finds once the VF is its own.
   */
  setOriginal(id: number, vf: VfInfo): void {
    this.write('recording the original state', () => {
      const n = this.stmt.setOriginal.run(this.originalRecord(vf).json, id).changes;
      if (n !== 1) throw notFound(`allocation ${id} no longer exists; it was released`, { id });
    });
  }

  list(): Allocation[] {
    return this.read('listing allocations', () => this.stmt.list.all().map((r) => this.toAllocation(r)));
  }

  /** The PCI addresses of the VFs held by someone. */
  heldPcis(): Set<string> {
    return new Set(this.list().map((a) => a.pci));
  }

  /** The last `limit` history entries, oldest first. */
  history(limit = 100): HistoryEntry[] {
    if (!Number.isInteger(limit) || limit < 1) throw invalid(`history limit ${JSON.stringify(limit)} is not valid: a whole number ≥ 1`);
    return this.read('reading the history', () =>
      this.stmt.history.all(limit).reverse().map((h) => {
        const e: HistoryEntry = { seq: h.seq, at: h.at, op: h.op, pci: h.pci, allocId: h.alloc_id, pool: h.pool, owner: JSON.parse(h.owner) as Owner };
        if (h.reason !== null) e.reason = h.reason;
        return e;
      }),
    );
  }

  /** The last release of one pod interface's VF in the kept history, if any. */
  lastRelease(containerId: string, ifname: string): HistoryEntry | undefined {
    return this.read('reading the history', () => {
      const h = this.stmt.lastRelease.get(containerId, ifname);
      if (!h) return undefined;
      const e: HistoryEntry = { seq: h.seq, at: h.at, op: h.op, pci: h.pci, allocId: h.alloc_id, pool: h.pool, owner: JSON.parse(h.owner) as Owner };
      if (h.reason !== null) e.reason = h.reason;
      return e;
    });
  }

  /** SQLite's own consistency check: ['ok'] when the file is sound. */
  integrityCheck(): string[] {
    return this.read('checking integrity', () => this.db.pragma('integrity_check', { simple: false }) as { integrity_check: string }[]).map((r) => r.integrity_check);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
    this.lock?.close();
  }
}
