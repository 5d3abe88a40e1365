// The daemon's static FDB entries (the config's, then the control socket's), by VNI and
// MAC, in the order they came. A node may carry 100k of them, and every change of the
// data plane (an attach, a peer, an entry) commits them all to the workers: so lookups
// go by key, and the entries go to the addon packed, made once per entry and put
// together once per change of the table (helper-78: every control request took seconds
// at 100k entries, by comparing each entry with every other and re-parsing them all).
import { fdbKey, type fdbSchema } from './config.js';
import { FDB_RECORD_BYTES, packFdbEntry } from './dp.js';
import { parseIp, parseMac } from '../util/addr.js';
import type * as z from '../util/z.js';

export type FdbEntry = z.infer<typeof fdbSchema>;

/** Each entry's packed record, made once: entries are never changed, only replaced. */
const records = new WeakMap<FdbEntry, Uint8Array>();
function recordOf(f: FdbEntry): Uint8Array {
  let r = records.get(f);
  if (!r) records.set(f, (r = packFdbEntry(f.vni, parseMac(f.mac)!, parseIp(f.vtep)!.bytes)));
  return r;
}

export class StaticFdb {
  private readonly byKey: Map<string, FdbEntry>;
  /** The packed records of every entry in order, in a buffer with room to append: a new
   *  key adds one record (a control request adding one entry beside 100k packed them all
   *  again); a replace or delete packs anew at the next packed(). null: not packed. */
  private buf: Uint8Array | null = null;
  private view: Uint8Array | null = null;
  /** valuesExcept's last answer, kept up to date by set and delete while asked with the
   *  same set (the daemon's state file: what the socket added beside the config, written
   *  at every change; filtering 100k entries took ~20 ms a request). */
  private except: { keys: Set<string>; out: Map<string, FdbEntry> } | null = null;

  constructor(entries: Iterable<FdbEntry> = []) {
    this.byKey = new Map();
    for (const f of entries) this.byKey.set(fdbKey(f), f);
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: { vni: number; mac: string }): FdbEntry | undefined {
    return this.byKey.get(fdbKey(key));
  }

  has(key: { vni: number; mac: string }): boolean {
    return this.byKey.has(fdbKey(key));
  }

  /** Adds or replaces the entry for its VNI and MAC; a replaced one moves to the end. */
  set(f: FdbEntry): void {
    const k = fdbKey(f);
    const replaced = this.byKey.delete(k);
    this.byKey.set(k, f);
    this.view = null;
    if (this.except && !this.except.keys.has(k)) this.except.out.delete(k), this.except.out.set(k, f);
    if (replaced || !this.buf) {
      this.buf = null;
      return;
    }
    const end = this.byKey.size * FDB_RECORD_BYTES;
    if (end > this.buf.length) {
      const grown = new Uint8Array(Math.max(end, 2 * this.buf.length));
      grown.set(this.buf.subarray(0, end - FDB_RECORD_BYTES));
      this.buf = grown;
    }
    this.buf.set(recordOf(f), end - FDB_RECORD_BYTES);
  }

  delete(key: { vni: number; mac: string }): boolean {
    const k = fdbKey(key);
    const gone = this.byKey.delete(k);
    if (gone) this.buf = this.view = null;
    this.except?.out.delete(k);
    return gone;
  }

  values(): FdbEntry[] {
    return [...this.byKey.values()];
  }

  /** The entries whose key (fdbKey) is not in `keys`, in order. `keys` must not change
   *  while this table is asked with it again (the daemon's are memoized and never are). */
  valuesExcept(keys: Set<string>): FdbEntry[] {
    if (this.except?.keys !== keys) {
      const out = new Map<string, FdbEntry>();
      for (const [k, f] of this.byKey) if (!keys.has(k)) out.set(k, f);
      this.except = { keys, out };
    }
    return [...this.except.out.values()];
  }

  /** A copy to change while this one stays as it was (to put back); packed anew. */
  clone(): StaticFdb {
    const c = new StaticFdb();
    for (const [k, f] of this.byKey) c.byKey.set(k, f);
    return c;
  }

  /** Every entry packed for DpSpec.fdb, in order; the same buffer until the next change. */
  packed(): Uint8Array {
    if (this.view) return this.view;
    if (!this.buf) {
      this.buf = new Uint8Array(this.byKey.size * FDB_RECORD_BYTES);
      let o = 0;
      for (const f of this.byKey.values()) {
        this.buf.set(recordOf(f), o);
        o += FDB_RECORD_BYTES;
      }
    }
    return (this.view = this.buf.subarray(0, this.byKey.size * FDB_RECORD_BYTES));
  }
}
