// The FDB of docs/vxlan-engine.md §5 as plain Maps: (VNI, inner MAC) → remote VTEP, with
// static entries, learning stamped by the caller's clock, ageing, per-VNI flood lists and
// resolve. It is the TS engine's learning store and the model the native FDB is held to.
import { formatIp, formatMac, parseIp, parseMac, type IpAddr } from '../util/addr.js';

export type LearnResult =
  /** The source MAC has the group bit set, or is all zero: never learned. */
  | 'ignored'
  /** A static entry holds the key: learning never overwrites it. */
  | 'static'
  | 'new'
  /** Same VTEP as before: only the stamp moved. */
  | 'refreshed'
  /** The MAC was learned behind another VTEP and now points at this one. */
  | 'moved';

export interface FdbEntry {
  vni: number;
  /** Six bytes. */
  mac: Uint8Array;
  vtep: IpAddr;
  isStatic: boolean;
  /** `now` of the last learn (seconds); 0 for static entries. */
  stamp: number;
}

export type Resolution =
  | { kind: 'unicast'; vtep: IpAddr }
  /** Group destination or no entry: head-end replication to the VNI's flood list. */
  | { kind: 'flood'; vteps: IpAddr[] };

interface Slot {
  vni: number;
  mac: number;
  family: 4 | 6;
  /** 16 bytes; an IPv4 VTEP uses the first 4 and leaves the rest zero. */
  vtep: Uint8Array;
  isStatic: boolean;
  stamp: number;
}

type MacInput = Uint8Array | string;
type VtepInput = IpAddr | string;

const TWO32 = 0x100000000;

/** A MAC as a 48-bit integer: exact in a double and usable as a Map key. */
function macAt(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 8) | buf[off + 1]!) * TWO32 +
    (((buf[off + 2]! << 24) | (buf[off + 3]! << 16) | (buf[off + 4]! << 8) | buf[off + 5]!) >>> 0);
}

function macBytes(m: number): Uint8Array {
  const hi = Math.floor(m / TWO32);
  const lo = m % TWO32;
  return Uint8Array.of(hi >> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
}

function toMac(m: MacInput): Uint8Array {
  const b = typeof m === 'string' ? parseMac(m) : m;
  if (!b || b.length !== 6) throw new RangeError(`MAC ${String(m)} is not a MAC address like 02:00:00:00:00:01`);
  return b;
}

function toVtep(v: VtepInput): IpAddr {
  const a = typeof v === 'string' ? parseIp(v) : v;
  if (!a || (a.family === 4 ? a.bytes.length !== 4 : a.bytes.length !== 16)) {
    throw new RangeError(`VTEP ${typeof v === 'string' ? v : JSON.stringify(v)} is not an IPv4 or IPv6 address`);
  }
  return a;
}

function checkVni(vni: number): void {
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw new RangeError(`VNI ${vni} is outside 0–16777215`);
}

function sameVtep(s: Slot, family: number, buf: Uint8Array, off: number): boolean {
  if (s.family !== family) return false;
  const n = family === 4 ? 4 : 16;
  for (let i = 0; i < n; i++) if (s.vtep[i] !== buf[off + i]) return false;
  return true;
}

function slotVtep(s: Slot): IpAddr {
  return { family: s.family, bytes: s.vtep.slice(0, s.family === 4 ? 4 : 16) };
}

function vtepKey(a: IpAddr): string {
  return formatIp(a.family, a.bytes);
}

export class FdbModel {
  private readonly tables = new Map<number, Map<number, Slot>>();
  /** Learned slots in the order the ageing scan walks them. */
  private readonly learned = new Set<Slot>();
  private ageCursor: Iterator<Slot> | null = null;
  private readonly floods = new Map<number, IpAddr[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds or replaces a static entry; it replaces a learned entry for the same key. */
  addStatic(vni: number, mac: MacInput, vtep: VtepInput): void {
    checkVni(vni);
    const m = toMac(mac);
    if (m[0]! & 1) {
      throw new RangeError(`MAC ${formatMac(m)} has the group bit set: group destinations always flood, so an FDB entry for it would never be used`);
    }
    const a = toVtep(vtep);
    const key = macAt(m, 0);
    const t = this.table(vni);
    let s = t.get(key);
    if (!s) {
      s = { vni, mac: key, family: a.family, vtep: new Uint8Array(16), isStatic: true, stamp: 0 };
      t.set(key, s);
      this.count++;
    }
    this.learned.delete(s);
    s.isStatic = true;
    s.stamp = 0;
    s.family = a.family;
    s.vtep.fill(0);
    s.vtep.set(a.bytes);
  }

  /** Removes the entry for (vni, mac), static or learned. True when there was one. */
  remove(vni: number, mac: MacInput): boolean {
    const t = this.tables.get(vni);
    const key = macAt(toMac(mac), 0);
    const s = t?.get(key);
    if (!t || !s) return false;
    this.drop(t, s);
    return true;
  }

  /**
   * Learns the MAC at `buf[macOff, macOff+6)` behind the VTEP at `vbuf[vOff, …)` (4 or
   * 16 bytes by `family`) under `vni`, stamped `now`. Reads straight from the packet so
   * the decap loop allocates nothing unless the entry is new.
   */
  learn(vni: number, buf: Uint8Array, macOff: number, family: 4 | 6, vbuf: Uint8Array, vOff: number, now: number): LearnResult {
    if (buf[macOff]! & 1) return 'ignored';
    const key = macAt(buf, macOff);
    if (key === 0) return 'ignored';
    const t = this.table(vni);
    const s = t.get(key);
    const n = family === 4 ? 4 : 16;
    if (!s) {
      const vtep = new Uint8Array(16);
      vtep.set(vbuf.subarray(vOff, vOff + n));
      const ns: Slot = { vni, mac: key, family, vtep, isStatic: false, stamp: now };
      t.set(key, ns);
      this.learned.add(ns);
      this.count++;
      return 'new';
    }
    if (s.isStatic) return 'static';
    s.stamp = now;
    if (sameVtep(s, family, vbuf, vOff)) return 'refreshed';
    s.family = family;
    s.vtep.fill(0);
    for (let i = 0; i < n; i++) s.vtep[i] = vbuf[vOff + i]!;
    return 'moved';
  }

  /** Convenience form of `learn` for tests and the control plane. */
  learnFrom(vni: number, mac: MacInput, vtep: VtepInput, now: number): LearnResult {
    checkVni(vni);
    const a = toVtep(vtep);
    return this.learn(vni, toMac(mac), 0, a.family, a.bytes, 0, now);
  }

  /**
   * The ageing scan: removes learned entries with `now − stamp > maxAge`. It looks at no
   * more than `budget` learned entries per call and resumes where the last call stopped,
   * wrapping round, so a caller can spread a large table over many calls. Without a
   * budget it looks at every learned entry once. Returns the number removed.
   */
  age(now: number, maxAge: number, budget = Infinity): number {
    let removed = 0;
    let seen = 0;
    const total = this.learned.size;
    while (seen < budget && seen < total) {
      if (!this.ageCursor) this.ageCursor = this.learned.values();
      const r = this.ageCursor.next();
      if (r.done) {
        this.ageCursor = null;
        if (this.learned.size === 0) break;
        continue;
      }
      seen++;
      const s = r.value;
      if (now - s.stamp > maxAge) {
        const t = this.tables.get(s.vni);
        if (t) this.drop(t, s);
        removed++;
      }
    }
    return removed;
  }

  lookup(vni: number, mac: MacInput): FdbEntry | null {
    const s = this.tables.get(vni)?.get(macAt(toMac(mac), 0));
    return s ? entryOf(s) : null;
  }

  resolve(vni: number, mac: MacInput): Resolution {
    const m = toMac(mac);
    if (!(m[0]! & 1)) {
      const s = this.tables.get(vni)?.get(macAt(m, 0));
      if (s) return { kind: 'unicast', vtep: slotVtep(s) };
    }
    return { kind: 'flood', vteps: this.floodList(vni) };
  }

  /** Adds a VTEP to the VNI's flood list; false when it is already there. */
  floodAdd(vni: number, vtep: VtepInput): boolean {
    checkVni(vni);
    const a = toVtep(vtep);
    const list = this.floods.get(vni) ?? [];
    const k = vtepKey(a);
    if (list.some((x) => vtepKey(x) === k)) return false;
    list.push({ family: a.family, bytes: a.bytes.slice() });
    this.floods.set(vni, list);
    return true;
  }

  floodRemove(vni: number, vtep: VtepInput): boolean {
    const list = this.floods.get(vni);
    if (!list) return false;
    const k = vtepKey(toVtep(vtep));
    const i = list.findIndex((x) => vtepKey(x) === k);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.floods.delete(vni);
    return true;
  }

  /** The VNI's flood list in the order VTEPs were added (a copy). */
  floodList(vni: number): IpAddr[] {
    return (this.floods.get(vni) ?? []).map((a) => ({ family: a.family, bytes: a.bytes.slice() }));
  }

  /** Every entry, ordered by VNI then MAC, so two tables compare with one toEqual. */
  entries(): FdbEntry[] {
    const out: FdbEntry[] = [];
    for (const vni of [...this.tables.keys()].sort((a, b) => a - b)) {
      const t = this.tables.get(vni)!;
      for (const key of [...t.keys()].sort((a, b) => a - b)) out.push(entryOf(t.get(key)!));
    }
    return out;
  }

  clear(): void {
    this.tables.clear();
    this.learned.clear();
    this.floods.clear();
    this.ageCursor = null;
    this.count = 0;
  }

  private table(vni: number): Map<number, Slot> {
    let t = this.tables.get(vni);
    if (!t) {
      t = new Map();
      this.tables.set(vni, t);
    }
    return t;
  }

  private drop(t: Map<number, Slot>, s: Slot): void {
    t.delete(s.mac);
    if (t.size === 0) this.tables.delete(s.vni);
    this.learned.delete(s);
    this.count--;
  }
}

function entryOf(s: Slot): FdbEntry {
  return { vni: s.vni, mac: macBytes(s.mac), vtep: slotVtep(s), isStatic: s.isStatic, stamp: s.stamp };
}
