// The typed façade over the native addon: a lazy loader that says exactly why the addon
// failed to load and what to do, the native VxlanEngine, the FDB, and benchmark wrappers.
// Importing this module loads nothing; the addon is opened on first use.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Burst } from '../packet/burst.js';
import { DEFAULT_HEADROOM, MAX_BURST } from '../packet/burst.js';
import { outerHeaderLength, type Decap, type Tunnel } from '../packet/config.js';
import type { DecapHandle, TunnelHandle, VxlanEngine } from '../packet/engine.js';
import { REASONS, type ReasonName } from '../packet/reasons.js';
import { formatIp, formatMac, parseIp, parseMac, type IpAddr } from '../util/addr.js';
import { benchFrames, DEFAULT_FLOWS } from '../bench/frames.js';
import { checkInt } from '../util/check.js';
import type { RawAddr, RawDecapCfg, RawFdb, RawHandle, RawTunnelCfg } from './addon-types.js';

// ------------------------------------------------------------------------- loading

export { addonPath, explainLoadError, loadAddon, NativeLoadError, packageRoot } from './addon.js';
import { loadAddon, NativeLoadError, packageRoot } from './addon.js';

export interface BackendFeature {
  built: boolean;
  reason?: string;
  fix?: string;
  versions?: Record<string, string>;
}

/** Which I/O backends the build included (build/Release/features.json, written by
 *  scripts/build-native.mjs), without loading the addon. */
export function nativeFeatures(): Record<string, BackendFeature> {
  const p = join(packageRoot(), 'build', 'Release', 'features.json');
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (err) {
    throw new NativeLoadError(
      `cannot read ${p}: the native addon has not been built.\n  fix: run \`npm run build:native\``,
      p,
      'run `npm run build:native`',
      { cause: err },
    );
  }
  return JSON.parse(text) as Record<string, BackendFeature>;
}

/** CPU features the engine uses, and which CRC-32C implementation it picked. */
export function cpuFeatures(): { sse42: boolean; avx2: boolean; crc32c: 'sse4.2' | 'table' } {
  return loadAddon().cpuFeatures();
}

// ------------------------------------------------------------------------- arguments

const VNI_MAX = 0xffffff;
const U32_MAX = 0xffffffff;

export type MacInput = string | Uint8Array;
export type IpInput = string | IpAddr | Uint8Array;

function macBytes(name: string, v: MacInput): Uint8Array {
  if (typeof v === 'string') {
    const m = parseMac(v);
    if (!m) throw new TypeError(`${name} ${JSON.stringify(v)} is not a MAC address like 02:00:00:00:00:01`);
    return m;
  }
  if (v instanceof Uint8Array && v.length === 6) return v;
  throw new TypeError(`${name} must be a MAC address string or 6 bytes`);
}

function ipBytes(name: string, v: IpInput): RawAddr {
  if (typeof v === 'string') {
    const a = parseIp(v);
    if (!a) throw new TypeError(`${name} ${JSON.stringify(v)} is not an IPv4 or IPv6 address`);
    return a.bytes;
  }
  if (v instanceof Uint8Array) {
    if (v.length === 4 || v.length === 16) return v;
    throw new TypeError(`${name} must be 4 (IPv4) or 16 (IPv6) bytes, not ${v.length}`);
  }
  if (v && typeof v === 'object' && v.bytes instanceof Uint8Array && v.bytes.length === (v.family === 4 ? 4 : 16)) {
    return v.bytes;
  }
  throw new TypeError(`${name} must be an IP address string, an IpAddr or 4/16 bytes`);
}

function ipString(b: RawAddr): string {
  return formatIp(b.length === 4 ? 4 : 6, b);
}

// ------------------------------------------------------------------------- engine

/** The raw config the addon takes for a resolved tunnel. */
export function rawTunnelCfg(t: Tunnel): RawTunnelCfg {
  const alen = t.family === 4 ? 4 : 16;
  if (t.local.length !== alen || t.remote.length !== alen) {
    throw new TypeError(`tunnel.local and tunnel.remote must be IPv${t.family} (${alen} bytes)`);
  }
  return {
    local: t.local,
    remote: t.remote,
    srcMac: t.srcMac,
    dstMac: t.dstMac,
    vlan: t.vlan ?? -1,
    vlanPcp: t.vlanPcp,
    dstPort: t.dstPort,
    srcPortMin: t.srcPortMin,
    srcPortMax: t.srcPortMax,
    ttl: t.ttl,
    tos: t.tos === 'inherit' ? 256 : t.tos,
    df: t.df === 'set' ? 1 : t.df === 'inherit' ? 2 : 0,
    udpCsum: t.udpCsum,
    mtu: t.mtu,
    ipId: t.ipId,
  };
}

export function rawDecapCfg(d: Decap): RawDecapCfg {
  return {
    dstPort: d.dstPort,
    vnis: d.vnis && d.vnis.length ? Uint32Array.from(d.vnis) : null,
    locals: d.locals && d.locals.length ? d.locals.map((a) => a.bytes) : null,
    verifyUdpCsum: d.verifyUdpCsum,
    dropInnerVlan: d.dropInnerVlan,
  };
}

export class NativeTunnelHandle implements TunnelHandle {
  /** @internal */
  constructor(
    readonly tunnel: Tunnel,
    readonly raw: RawHandle,
  ) {}
  /** The IPv4 identification the next encapsulated packet gets. */
  get nextIpId(): number {
    return loadAddon().tunnelIpId(this.raw);
  }
}

export class NativeDecapHandle implements DecapHandle {
  /** @internal */
  constructor(
    readonly decap: Decap,
    readonly raw: RawHandle,
    readonly fdb: NativeFdb | null,
  ) {}
  /** The time (seconds) stamped on entries learned from now on. */
  setNow(now: number): void {
    loadAddon().decapSetNow(this.raw, checkInt('now', now, 0, U32_MAX));
  }
}

export interface DecapOptions {
  /** Learn inner source MAC → outer source VTEP into this FDB (docs/vxlan-engine.md §5). */
  fdb?: NativeFdb;
  /** Seconds stamped on learned entries; change it with handle.setNow(). */
  now?: number;
}

export type StatsField =
  | 'encapPkts'
  | 'encapBytes'
  | 'decapPkts'
  | 'decapBytes'
  | 'learnNew'
  | 'learnMoved'
  | 'learnRefresh'
  | 'learnFull'
  | 'learnLimited';

export interface EngineStats extends Record<StatsField, bigint> {
  drops: Record<ReasonName, bigint>;
}

export interface NativeEngine extends VxlanEngine {
  readonly name: 'native';
  createTunnel(t: Tunnel): NativeTunnelHandle;
  createDecap(d: Decap, opts?: DecapOptions): NativeDecapHandle;
  /** The handle's live counters, zero copy: the same BigUint64Array every call. */
  statsView(h: TunnelHandle | DecapHandle): BigUint64Array;
  /** A snapshot of the handle's counters with names. */
  stats(h: TunnelHandle | DecapHandle): EngineStats;
}

function rawOf(h: TunnelHandle | DecapHandle): RawHandle {
  if (h instanceof NativeTunnelHandle || h instanceof NativeDecapHandle) return h.raw;
  throw new TypeError('handle was not created by the native engine');
}



/** The native VXLAN engine (src/packet/engine.ts); the addon loads on first use. */
export function nativeEngine(): NativeEngine {
  const addon = loadAddon();
  return {
    name: 'native',
    createTunnel(t: Tunnel): NativeTunnelHandle {
      return new NativeTunnelHandle(t, addon.tunnelCreate(rawTunnelCfg(t)));
    },
    encap(h: TunnelHandle, vni: number, b: Burst): number {
      if (!(h instanceof NativeTunnelHandle)) throw new TypeError('tunnel handle was not created by the native engine');
      return addon.encap(h.raw, checkInt('vni', vni, 0, VNI_MAX), b);
    },
    createDecap(d: Decap, opts: DecapOptions = {}): NativeDecapHandle {
      if (opts.fdb !== undefined && !(opts.fdb instanceof NativeFdb)) throw new TypeError('opts.fdb must be a NativeFdb');
      const raw = addon.decapCreate(rawDecapCfg(d), opts.fdb ? opts.fdb.raw : null);
      const h = new NativeDecapHandle(d, raw, opts.fdb ?? null);
      if (opts.now !== undefined) h.setNow(opts.now);
      return h;
    },
    decap(h: DecapHandle, b: Burst): number {
      if (!(h instanceof NativeDecapHandle)) throw new TypeError('decap handle was not created by the native engine');
      return addon.decap(h.raw, b);
    },
    statsView(h: TunnelHandle | DecapHandle): BigUint64Array {
      return addon.stats(rawOf(h));
    },
    stats(h: TunnelHandle | DecapHandle): EngineStats {
      const v = addon.stats(rawOf(h));
      const names = addon.statsLayout();
      // The counters before the first drop reason (the layout says how many there are).
      const STAT_HEAD = names.findIndex((n) => n.startsWith('drop.'));
      const out: Record<string, bigint> = {};
      for (let i = 0; i < STAT_HEAD; i++) out[names[i]!] = v[i]!;
      const drops = {} as Record<ReasonName, bigint>;
      REASONS.forEach((r, i) => (drops[r] = v[STAT_HEAD + i]!));
      return { ...(out as Record<StatsField, bigint>), drops };
    },
  };
}

// ------------------------------------------------------------------------- FDB

export type LearnResult = 'new' | 'refresh' | 'moved' | 'static' | 'ignored' | 'full' | 'limited';
const LEARN_RESULTS: Record<number, LearnResult> = { 1: 'new', 2: 'refresh', 3: 'moved', 4: 'static', 5: 'ignored' };
const ENOSPC = -28;
const EDQUOT = -122;

export interface FdbEntry {
  vni: number;
  /** Lower-case, colon-separated. */
  mac: string;
  type: 'static' | 'learned';
  /** Learned entries: the `now` of the last learn (seconds); static entries: 0. */
  stamp: number;
  /** The remote VTEP, formatted (IPv6 per RFC 5952). */
  vtep: string;
}

export type FdbResolution = { vtep: string } | { flood: string[] };

/** The table is full (no slot on any displacement path, or no free VTEP index). */
export class FdbFullError extends Error {
  readonly code = 'ENOSPC';
  constructor(message: string) {
    super(message);
    this.name = 'FdbFullError';
  }
}

/**
 * The native FDB: (VNI, MAC) → VTEP, docs/vxlan-engine.md §5.
 *
 * Inputs: VNIs are integers 0–16777215; MACs are strings ("02:00:00:00:00:01") or 6
 * bytes; VTEPs are address strings, IpAddr objects or 4/16 bytes. Outputs use strings.
 * Bad inputs throw TypeError or RangeError naming the argument.
 */
export class NativeFdb {
  /** @internal */
  readonly raw: RawFdb;

  /** capacity: the entries the table is sized to hold (1–16777216). */
  constructor(capacity: number) {
    this.raw = loadAddon().fdbCreate(checkInt('capacity', capacity, 1, 1 << 24));
  }

  /** Adds or replaces a static entry; FdbFullError when full. A group MAC is refused
   *  (RangeError): group destinations always resolve to the flood list. */
  addStatic(vni: number, mac: MacInput, vtep: IpInput): void {
    const m = macBytes('mac', mac);
    if (m[0]! & 1) {
      throw new RangeError(`mac ${formatMac(m)} is a group address: static entries must be unicast (group MACs always flood)`);
    }
    const rc = this.raw.addStatic(checkInt('vni', vni, 0, VNI_MAX), m, ipBytes('vtep', vtep));
    if (rc === ENOSPC) throw new FdbFullError(`FDB full: cannot add VNI ${vni} MAC ${typeof mac === 'string' ? mac : formatMac(mac)}`);
    if (rc !== 0) throw new Error(`addStatic failed with errno ${-rc}`);
  }

  /** Removes an entry, static or learned; false when there was none. */
  del(vni: number, mac: MacInput): boolean {
    return this.raw.del(checkInt('vni', vni, 0, VNI_MAX), macBytes('mac', mac));
  }

  /** Learns mac → vtep at time `now` (seconds); 'full' when no room. */
  learn(vni: number, mac: MacInput, vtep: IpInput, now: number): LearnResult {
    const rc = this.raw.learn(
      checkInt('vni', vni, 0, VNI_MAX),
      macBytes('mac', mac),
      ipBytes('vtep', vtep),
      checkInt('now', now, 0, U32_MAX),
    );
    if (rc === ENOSPC) return 'full';
    if (rc === EDQUOT) return 'limited';
    const r = LEARN_RESULTS[rc];
    if (!r) throw new Error(`learn failed with errno ${-rc}`);
    return r;
  }

  get(vni: number, mac: MacInput): FdbEntry | null {
    const e = this.raw.get(checkInt('vni', vni, 0, VNI_MAX), macBytes('mac', mac));
    if (!e) return null;
    return { vni: e.vni, mac: formatMac(e.mac), type: e.flags === 1 ? 'static' : 'learned', stamp: e.stamp, vtep: ipString(e.vtep) };
  }

  /** Where a frame for (vni, dst MAC) goes: a unicast hit, or the VNI's flood list for
   *  group MACs and misses. */
  resolve(vni: number, mac: MacInput): FdbResolution {
    const r = this.raw.resolve(checkInt('vni', vni, 0, VNI_MAX), macBytes('mac', mac));
    return 'vtep' in r ? { vtep: ipString(r.vtep) } : { flood: r.flood.map(ipString) };
  }

  /** Bulk lookup (the packet-path form): macs holds 6 bytes per VNI; the result holds a
   *  VTEP index per key (resolve it with vtepAt) or 65535 for a miss. */
  lookup(vnis: Uint32Array, macs: Uint8Array, out = new Uint16Array(vnis.length)): Uint16Array {
    this.raw.lookup(vnis, macs, out);
    return out;
  }

  vtepAt(index: number): string | null {
    const a = this.raw.vtep(checkInt('index', index, 0, 0xffff));
    return a ? ipString(a) : null;
  }

  /**
   * Ageing scan: removes learned entries with now − stamp > maxAge from the next
   * `budget` buckets (default: the whole table) and returns how many it removed.
   * A worker calls it often with a small budget so it never stalls.
   */
  age(now: number, maxAge: number, budget?: number): number {
    return this.raw.age(
      checkInt('now', now, 0, U32_MAX),
      checkInt('maxAge', maxAge, 0, U32_MAX),
      budget === undefined ? Math.ceil(this.raw.slots() / 4) : checkInt('budget', budget, 0, U32_MAX),
    );
  }

  /** Replaces the VNI's flood list (an empty list clears it); duplicates kept once. */
  floodSet(vni: number, vteps: readonly IpInput[]): void {
    checkInt('vni', vni, 0, VNI_MAX);
    if (!Array.isArray(vteps)) throw new TypeError('vteps must be an array of addresses');
    const rc = this.raw.floodSet(vni, vteps.map((v, i) => ipBytes(`vteps[${i}]`, v)));
    if (rc === ENOSPC) throw new FdbFullError(`FDB full: no free VTEP index for the flood list of VNI ${vni}`);
    if (rc !== 0) throw new Error(`floodSet failed with errno ${-rc}`);
  }

  floodGet(vni: number): string[] {
    return this.raw.floodGet(checkInt('vni', vni, 0, VNI_MAX)).map(ipString);
  }

  count(): number {
    return this.raw.count();
  }
  /** Caps each VNI's learned entries (0: no cap); a new MAC past it learns 'limited'. */
  setVniLimit(perVni: number): void {
    const rc = this.raw.setVniLimit(checkInt('perVni', perVni, 0, 1 << 24));
    if (rc !== 0) throw new Error(`setVniLimit failed with errno ${-rc}`);
  }
  /** The VNI's learned entries, as counted for the cap (0 without one). */
  learnedIn(vni: number): number {
    return this.raw.learnedIn(checkInt('vni', vni, 0, VNI_MAX));
  }
  /** The capacity the table was created for. */
  capacity(): number {
    return this.raw.capacity();
  }
  /** Slots (4 per bucket): the most entries the table can ever hold. */
  slots(): number {
    return this.raw.slots();
  }
  /** Distinct VTEPs referenced by entries and flood lists. */
  vtepCount(): number {
    return this.raw.vtepCount();
  }
  memBytes(): number {
    return this.raw.memBytes();
  }

  /** Every entry, in table order (not sorted). */
  entries(): FdbEntry[] {
    const c = this.raw.entries();
    const out: FdbEntry[] = new Array(c.count);
    for (let i = 0; i < c.count; i++) {
      const fam = c.family[i] === 4 ? 4 : 6;
      out[i] = {
        vni: c.vni[i]!,
        mac: formatMac(c.mac, i * 6),
        type: c.flags[i] === 1 ? 'static' : 'learned',
        stamp: c.stamp[i]!,
        vtep: formatIp(fam, c.vtep, i * 16),
      };
    }
    return out;
  }

  /** Frees the table now instead of at garbage collection. A decap context learning
   *  into it keeps the native table alive until it is collected itself. */
  close(): void {
    this.raw.close();
  }
}

// ------------------------------------------------------------------------- benchmarks

export interface PacketBenchOptions {
  tunnel: Tunnel;
  vni: number;
  /** Inner frame sizes, repeated in this order (e.g. an IMIX pattern). */
  frameSizes?: readonly number[];
  /** Or the inner frames themselves. */
  frames?: readonly Uint8Array[];
  /** Distinct flows (inner MACs, IPs, ports) in the generated frames; default 256. */
  flows?: number;
  /** Packets per burst, 1–256; default 32. */
  burst?: number;
  /** Timed packets. */
  packets: number;
  /** Untimed packets first; default min(packets, 1M). */
  warmup?: number;
  /** Pin the loop to this CPU. */
  cpu?: number;
  /** Generator headroom; default 128. */
  headroom?: number;
}

export interface DecapBenchOptions extends PacketBenchOptions {
  /** Learn into an FDB on every packet (the refresh path once warm); default true. */
  learn?: boolean;
}

export interface PacketBenchResult {
  packets: number;
  ns: number;
  mpps: number;
  nsPerPacket: number;
  /** Packets not dropped. */
  ok: number;
  bytesIn: number;
  bytesOut: number;
  /** The CPU the loop ended on. */
  cpu: number;
  drops: Record<string, number>;
}

export interface DecapBenchResult extends PacketBenchResult {
  learn: { new: number; refresh: number; moved: number; full: number };
}

function rawBenchArgs(o: PacketBenchOptions, learn?: boolean) {
  if (!o || typeof o !== 'object') throw new TypeError('options must be an object');
  const frames = o.frames ? [...o.frames] : benchFrames(o.frameSizes ?? [64], o.flows ?? DEFAULT_FLOWS);
  const headroom = checkInt('headroom', o.headroom ?? DEFAULT_HEADROOM, 0, 4096);
  if (headroom < outerHeaderLength(o.tunnel)) {
    throw new RangeError(`headroom ${headroom} is smaller than the outer header (${outerHeaderLength(o.tunnel)} bytes)`);
  }
  const packets = checkInt('packets', o.packets, 1, Number.MAX_SAFE_INTEGER);
  return {
    cfg: rawTunnelCfg(o.tunnel),
    vni: checkInt('vni', o.vni, 0, VNI_MAX),
    frames,
    opts: {
      burst: checkInt('burst', o.burst ?? 32, 1, MAX_BURST),
      packets,
      warmup: checkInt('warmup', o.warmup ?? Math.min(packets, 1_000_000), 0, Number.MAX_SAFE_INTEGER),
      cpu: checkInt('cpu', o.cpu ?? -1, -1, 1023),
      headroom,
      ...(learn === undefined ? {} : { learn }),
    },
  };
}

function packetResult(r: {
  packets: number;
  ns: number;
  ok: number;
  bytesIn: number;
  bytesOut: number;
  cpu: number;
  drops: Record<string, number>;
}): PacketBenchResult {
  return {
    packets: r.packets,
    ns: r.ns,
    mpps: r.ns > 0 ? (r.packets / r.ns) * 1e3 : 0,
    nsPerPacket: r.packets > 0 ? r.ns / r.packets : 0,
    ok: r.ok,
    bytesIn: r.bytesIn,
    bytesOut: r.bytesOut,
    cpu: r.cpu,
    drops: r.drops,
  };
}

/** Native encap, run to completion over memory ports: rx_burst → encap → tx_burst.
 *  Synchronous: the loop runs on its own (optionally pinned) thread while this waits. */
export function benchEncap(o: PacketBenchOptions): PacketBenchResult {
  const a = rawBenchArgs(o);
  return packetResult(loadAddon().benchEncap(a.cfg, a.vni, a.frames, a.opts));
}

/** Native decap of frames encapsulated once at setup, learning every inner source MAC
 *  into an FDB (after warmup: the refresh path). */
export function benchDecap(o: DecapBenchOptions): DecapBenchResult {
  const a = rawBenchArgs(o, o.learn ?? true);
  const r = loadAddon().benchDecap(a.cfg, a.vni, a.frames, a.opts);
  return {
    ...packetResult(r),
    learn: { new: r.learnNew, refresh: r.learnRefresh, moved: r.learnMoved, full: r.learnFull },
  };
}

export interface FdbBenchOptions {
  /** Entries in the table (random VNI, unicast MAC). */
  entries: number;
  /** Timed lookups of uniformly random inserted keys. */
  lookups: number;
  /** Keys per bulk lookup; default 32. */
  burst?: number;
  seed?: number;
  cpu?: number;
  /** Distinct VTEPs; default 64. */
  vteps?: number;
}

export interface FdbBenchResult {
  lookups: number;
  hits: number;
  ns: number;
  /** Timed loop per lookup, key generation included. */
  nsPerLookup: number;
  /** What generating the keys alone costs per lookup (same loop, no lookup). */
  keygenNsPerLookup: number;
  insertNsPerEntry: number;
  memBytes: number;
  slots: number;
  /** Fraction of entries in their primary bucket (one cache line per hit). */
  primaryFraction: number;
  /** An untimed pass checked this many returned VTEPs against the inserted ones. */
  verified: number;
  wrong: number;
  cpu: number;
}

/** Builds an FDB of `entries` keys (~64 VTEPs), then times bulk lookups. */
export function benchFdb(o: FdbBenchOptions): FdbBenchResult {
  if (!o || typeof o !== 'object') throw new TypeError('options must be an object');
  const entries = checkInt('entries', o.entries, 1, 1 << 24);
  const r = loadAddon().benchFdb({
    entries,
    lookups: checkInt('lookups', o.lookups, 1, Number.MAX_SAFE_INTEGER),
    burst: checkInt('burst', o.burst ?? 32, 1, MAX_BURST),
    seed: checkInt('seed', o.seed ?? 1, 0, Number.MAX_SAFE_INTEGER),
    cpu: checkInt('cpu', o.cpu ?? -1, -1, 1023),
    vteps: checkInt('vteps', o.vteps ?? 64, 1, 65535),
  });
  return {
    lookups: r.lookups,
    hits: r.hits,
    ns: r.ns,
    nsPerLookup: r.ns / r.lookups,
    keygenNsPerLookup: r.keygenNs / r.lookups,
    insertNsPerEntry: r.insertNs / entries,
    memBytes: r.memBytes,
    slots: r.slots,
    primaryFraction: r.primary / entries,
    verified: r.verified,
    wrong: r.wrong,
    cpu: r.cpu,
  };
}
