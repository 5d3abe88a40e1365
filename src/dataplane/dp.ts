// The typed façade over the native data plane (native/worker/dp.h): ports, a committed
// configuration (an epoch the workers switch to at a burst boundary) and counters read
// in place from the workers' memory. The daemon (daemon.ts) decides what to commit.
import { loadAddon, rawTunnelCfg } from './native.js';
import type { Tunnel } from '../packet/config.js';
import { REASONS } from '../packet/reasons.js';
import { formatIp, formatMac } from '../util/addr.js';
import { VfpError } from '../util/errors.js';

export type Backend = 'afpacket' | 'afxdp' | 'dpdk' | 'memory-gen' | 'memory-sink';

export interface DpOptions {
  workers?: number;
  cpus?: number[];
  burst?: number;
  /** Empty polls before a worker sleeps in poll(); 0 = always spin (DPDK style). */
  idleSpins?: number;
  idleSleepUs?: number;
  learnCapacity?: number;
  /** Learned entries one VNI may hold in a worker's table (unset: no cap but the table's). */
  learnPerVni?: number;
  /** A learned peer MAC not heard from (ARP/ND) for this long is asked again while used
   *  (default 30000, Linux's base_reachable_time). */
  neighReachableMs?: number;
  /** Frames to flood each pod may send a second, in bursts of as many, per worker (unset
   *  or 0: no limit); the rest are dropped as flood_limited. */
  floodPps?: number;
  scratchBufs?: number;
  headroom?: number;
}

export interface PortInfo {
  slot: number;
  backend: Backend;
  queues: number;
  mode?: 'native' | 'skb';
  zerocopy?: boolean;
  needWakeup?: boolean;
  driver?: string;
  portId?: number;
  mac?: Uint8Array;
  txOffloads?: number;
  headroom?: number;
  /** afxdp: UMEM frames of each queue. */
  frames?: number;
  notice?: string;
  mbufs?: number;
  /** dpdk: each queue's descriptors, as the device adjusted those asked for. */
  rxDesc?: number;
  txDesc?: number;
  /** afxdp, dpdk: the largest frame the port carries (a UMEM frame less its headroom; an
   *  mbuf's room or the device's limit), Ethernet header included. */
  maxFrame?: number;
  /** dpdk: the port's MTU as DPDK has it. */
  mtu?: number;
}

export interface PeerSpec {
  vtep: Uint8Array;
  /** The peer's MAC on the underlay; without it the workers resolve it by ARP. */
  mac?: Uint8Array | null;
  /** The next hop toward it on the underlay (a gateway), whose MAC the workers resolve
   *  instead of the peer's; none: the peer is on the uplink's link. */
  via?: Uint8Array | null;
}

/** Bytes of a static FDB entry in a packed DpSpec.fdb: the VNI (u32, little-endian), the
 *  MAC, the address family (4 or 6), a zero byte, the VTEP (16 bytes, IPv4 in the first
 *  4). native/addon/dp.cc reads the same. */
export const FDB_RECORD_BYTES = 28;

/** One static FDB entry as a packed record (see FDB_RECORD_BYTES). */
export function packFdbEntry(vni: number, mac: Uint8Array, vtep: Uint8Array): Uint8Array {
  const r = new Uint8Array(FDB_RECORD_BYTES);
  new DataView(r.buffer).setUint32(0, vni, true);
  r.set(mac, 4);
  r[10] = vtep.length === 4 ? 4 : 6;
  r.set(vtep, 12);
  return r;
}

/** A list of static entries packed one record after another. */
export function packFdb(list: readonly { vni: number; mac: Uint8Array; vtep: Uint8Array }[]): Uint8Array {
  const out = new Uint8Array(list.length * FDB_RECORD_BYTES);
  list.forEach((f, i) => out.set(packFdbEntry(f.vni, f.mac, f.vtep), i * FDB_RECORD_BYTES));
  return out;
}

export interface DpSpec {
  uplink: number;
  uplinkMac: Uint8Array;
  tunnel: Tunnel;
  peers: PeerSpec[];
  atts: { port: number; vni: number; mac: Uint8Array }[];
  /** The static entries, or the same packed by packFdbEntry (one record after another):
   *  a node's 100k entries then cross into the addon as one buffer. */
  fdb: { vni: number; mac: Uint8Array; vtep: Uint8Array }[] | Uint8Array;
  floods: { vni: number; vteps: Uint8Array[] }[];
  extraVnis: number[];
  learn: boolean;
  antiSpoof: boolean;
  /** Answer a pod's packet too big for the tunnel with ICMP fragmentation needed (IPv4
   *  with DF) or packet too big (IPv6), sent back to the pod (native/core/icmp.h). */
  icmpTooBig: boolean;
  /** Decap verifies a nonzero outer UDP checksum, and drops IPv6 with a zero one. */
  verifyUdpCsum: boolean;
  ageSeconds?: number;
}

interface RawLayout {
  workerWords: number;
  engine: number;
  engineDrops: number;
  drops: number;
  dropNames: string[];
  fields: Record<string, number>;
  ports: number;
  portWords: number;
  portFields: string[];
  vnis: number;
  vniWords: number;
  vniFields: string[];
  peers: number;
  peerWords: number;
  /** vfp_dp_peer_stats' words by name, in order (addrHi, addrLo: the 16 address bytes). */
  peerFields: string[];
  maxPeers: number;
  maxPorts: number;
  maxVnis: number;
}

/** A port's backend counters (dpPortCounters): the port's own totals, and the frames the
 *  backend itself dropped by its reason (rx_truncated, tx_oversize, rx_multiseg…). */
export interface BackendCounters {
  rxPkts: number;
  txPkts: number;
  txFull: number;
  rxNombuf: number;
  kind: string;
  /** rx/tx queue pairs the port polls and sends on (AF_XDP: every rx queue of the netdev). */
  queues: number;
  drops: Record<string, number>;
  /** Buffer memory the port holds: AF_PACKET rx and tx rings, AF_XDP UMEM, DPDK mbuf
   *  pool; every queue's. Absent for the memory backend. */
  ringBytes?: number;
  /** AF_PACKET: received frames whose sender left the TCP/UDP checksum to the device
   *  (a veth with tx checksum offload), finished by the port; and those it could not. */
  csumFinished?: number;
  csumLeft?: number;
  /** afpacket: whether the host stack's copy of received frames is dropped (stackDrop). */
  stackDrop?: boolean;
  /** afpacket: why not, when stackDrop was asked for. */
  stackDropNote?: string;
  /** memory-sink: calls on a queue from a thread other than the first that used it
   *  (port.h: one thread per queue); anything but 0 is a data plane bug. */
  foreignCalls?: number;
}

/** A frame a worker dropped while the capture was armed (DataPlane.armDrops). */
export interface RawDrop {
  /** When, in ms since the epoch (CLOCK_REALTIME). */
  unixMs: number;
  worker: number;
  /** The port slot it came in on (dir rx) or was to leave by (dir tx); null: none. */
  port: number | null;
  dir: 'rx' | 'tx';
  /** The counter it was counted under: a data-plane drop ("spoofed") or an engine one ("vni_unknown"). */
  reason: string;
  /** The frame's length; head holds its first bytes (up to DROP_HEAD_BYTES). */
  len: number;
  /** Dropped after decap (a frame from the underlay, then no local pod, a bad source,
   *  a static entry elsewhere…): head is the inner frame, and this is what it came in. */
  decap: { vni: number; vtep: Uint8Array } | null;
  head: Uint8Array;
}

/** The most drops each worker records per arming, and how much of each frame. */
export const DROPS_PER_WORKER_MAX = 255;
export const DROP_HEAD_BYTES = 128;

interface RawDp {
  dpCreate(o: DpOptions): unknown;
  dpStop(h: unknown, drainMs?: number): void;
  dpPortOpen(h: unknown, backend: string, opts: Record<string, unknown>, name: string): PortInfo;
  /** afpacket and afxdp only: opened on a thread of its own (native/addon/dp.cc). */
  dpPortOpenAsync(h: unknown, backend: string, opts: Record<string, unknown>, name: string): Promise<PortInfo>;
  dpPortRemove(h: unknown, slot: number): void;
  dpPortCounters(h: unknown, slot: number): BackendCounters | null;
  dpCommit(h: unknown, spec: unknown, timeoutMs?: number): { epoch: number; staticFdbBuilds: number; warning?: string };
  dpStats(h: unknown): { buffer: ArrayBuffer; workers: number };
  dpStatsLayout(): RawLayout;
  dpLearned(h: unknown, cap: number, timeoutMs?: number): { vni: number; mac: Uint8Array; vtep: Uint8Array; stamp: number }[];
  dpLearnedGet(h: unknown, vni: number, mac: Uint8Array, timeoutMs?: number): { vni: number; mac: Uint8Array; vtep: Uint8Array; stamp: number }[];
  dpDropsArm(h: unknown, perWorker: number, reasons?: string[]): void;
  dpDropsRead(h: unknown): RawDrop[];
  dpdkInit?(args: string[]): void;
  afxdpClearStale?(ifname: string, netns: string | null): { rc: number; message: string };
  statsLayout(): string[];
}

function raw(): RawDp {
  return loadAddon() as unknown as RawDp;
}

/** A port's counters before anything moved (the workers keep no entry until then). */
export const noPortCounters = (): PortCounters => ({ rxPkts: 0n, rxBytes: 0n, txPkts: 0n, txBytes: 0n, drops: 0n, errors: 0n });
/** A VNI's counters before anything moved. */
export const noVniCounters = (vni: number): VniCounters => ({ vni, encapPkts: 0n, encapBytes: 0n, decapPkts: 0n, decapBytes: 0n, floodPkts: 0n, localPkts: 0n, drops: 0n });

export interface PortCounters {
  rxPkts: bigint;
  rxBytes: bigint;
  txPkts: bigint;
  txBytes: bigint;
  drops: bigint;
  /** Errors the port's receive sockets reported (ENETDOWN when its netdev went down or
   *  was deleted); the worker reads and counts them. */
  errors: bigint;
}

export interface VniCounters {
  vni: number;
  encapPkts: bigint;
  encapBytes: bigint;
  decapPkts: bigint;
  decapBytes: bigint;
  floodPkts: bigint;
  localPkts: bigint;
  drops: bigint;
}

/** What the workers know of a peer VTEP: what they encapsulated to it, how often they
 *  asked for its MAC, and the MAC they use. */
export interface PeerCounters {
  vtep: string;
  encapPkts: bigint;
  encapBytes: bigint;
  /** Of encapPkts, the flood copies (broadcast, multicast, unknown unicast: head-end
   *  replication); the rest were sent to it for a MAC behind it. */
  floodPkts: bigint;
  /** ARP requests / neighbour solicitations sent for its MAC. */
  requests: bigint;
  /** The underlay MAC encap sends to; null until known. */
  mac: string | null;
  /** configured: in the config; resolved: learned by ARP/ND; unresolved: asked, no answer yet. */
  state: 'configured' | 'resolved' | 'unresolved';
  /** When it was learned, in the clock of process.hrtime.bigint() (0n: never). */
  resolvedNs: bigint;
  /** When a worker last heard the learned MAC from the peer (its ARP/ND), same clock (0n:
   *  never). Past 30 s the workers ask again while sending to it (unicast, then broadcast). */
  confirmedNs: bigint;
  /** The lowest path MTU a router reported to a worker that still holds (ICMP frag
   *  needed / packet too big); undefined: none. */
  pathMtu?: number;
  /** VXLAN frames from it decapsulated, and their inner bytes. */
  decapPkts: bigint;
  decapBytes: bigint;
  /** When a worker last decapsulated a frame from it, same clock (0n: never). */
  lastFrameNs: bigint;
  /** Its VXLAN frames to a UDP port not ours (dropped as not_vxlan_port), the last such
   *  port (0: none) and when, same clock (0n: never). */
  wrongPortPkts: bigint;
  wrongPort: number;
  wrongPortNs: bigint;
  /** ICMP port unreachable from it quoting our VXLAN packets (nothing of its listens on
   *  our port), and when the last came, same clock (0n: never). */
  portUnreach: bigint;
  portUnreachNs: bigint;
  /** Its VXLAN frames to our port and MAC but another address than our VTEP (dropped as
   *  not_local), the last such address ('' none) and when, same clock (0n: never). */
  notLocalPkts: bigint;
  notLocalTo: string;
  notLocalNs: bigint;
}

export interface DpCounters {
  /** Engine counters (encap/decap/learn) summed over workers. */
  engine: Record<string, bigint>;
  /** Every drop reason with a non-zero count: engine reasons and data-plane reasons. */
  drops: Record<string, bigint>;
  misc: Record<string, bigint>;
  ports: Map<number, PortCounters>;
  vnis: Map<number, VniCounters>;
  perWorker: { cpu: number; loops: bigint; busyLoops: bigint; epoch: bigint; learnedEntries: number }[];
  /** By VTEP address, the peers of the current configuration. */
  peers: Map<string, PeerCounters>;
  /** The last ARP/ND frame from another MAC claiming our VTEP's address (misc.vtepConflicts
   *  counts them all): that MAC, and when (CLOCK_MONOTONIC ns); null when none came. */
  vtepConflict: { mac: string; atNs: bigint } | null;
  /** The last VTEP a decapsulated frame came from that is not a peer (misc.learnNotPeer
   *  counts such frames while learning is on), and when; null when none came. */
  notPeer: { vtep: string; atNs: bigint } | null;
  /** The last source from a peer that was a local pod's MAC on its VNI (dupLocalMacs
   *  counts them): two hosts with one MAC. Its VNI and the VTEP it came from. */
  dupLocal: { mac: string; vni: number; vtep: string; atNs: bigint } | null;
}

/** The peer counters dp.ts reads, as native/addon/dp.cc names vfp_dp_peer_stats' words. */
const PEER_FIELDS = ['family', 'addrHi', 'encapPkts', 'encapBytes', 'requests', 'mac', 'resolvedNs', 'pmtu', 'pmtuUntilNs', 'confirmedNs', 'decapPkts', 'decapBytes', 'rxNs', 'floodPkts', 'wrongPortPkts', 'wrongPort', 'wrongPortNs', 'portUnreach', 'portUnreachNs', 'notLocalPkts', 'notLocalFamily', 'notLocalHi', 'notLocalNs'] as const;
type PeerField = (typeof PEER_FIELDS)[number];

/** Where each of PEER_FIELDS is; an addon whose layout lacks one is not this build's. */
function peerFieldsAt(names: string[], words: number): Record<PeerField, number> {
  if (names.length !== words) throw new VfpError('unavailable', `the native addon names ${names.length} peer counters for ${words} words: its layout is inconsistent; rebuild it (npm run build:native)`);
  const at = {} as Record<PeerField, number>;
  for (const f of PEER_FIELDS) {
    const i = names.indexOf(f);
    if (i < 0) throw new VfpError('unavailable', `the native addon's peer counters have no ${f}: it is not this vfplane's build; rebuild it (npm run build:native)`);
    at[f] = i;
  }
  return at;
}

/** Worker fields that are not counters: per worker (cpu, learnedEntries: every worker
 *  holds every learned entry) or the last of something (vtepConflict). */
const NOT_SUMMED = new Set(['cpu', 'learnedEntries', 'vtepConflictMac', 'vtepConflictNs', 'notPeerFamily', 'notPeerAddr', 'notPeerNs', 'dupLocalMac', 'dupLocalVni', 'dupLocalFamily', 'dupLocalAddr', 'dupLocalNs']);

/** The most learned entries a listing reads by default: a walk of a worker's table holds
 *  up its packets while it runs (explain looks one MAC up instead: learnedGet). */
export const LEARNED_LIST_MAX = 65536;

/** Learned entries as the workers report them, one per key: the latest stamp (and its VTEP). */
function latestPerKey(raw: { vni: number; mac: Uint8Array; vtep: Uint8Array; stamp: number }[]): { vni: number; mac: string; vtep: string; stamp: number }[] {
  const by = new Map<string, { vni: number; mac: string; vtep: string; stamp: number }>();
  for (const e of raw) {
    const x = { vni: e.vni, mac: formatMac(e.mac), vtep: formatIp(e.vtep.length === 4 ? 4 : 6, e.vtep), stamp: e.stamp };
    const k = `${x.vni}/${x.mac}`;
    const had = by.get(k);
    if (!had || x.stamp > had.stamp) by.set(k, x);
  }
  return [...by.values()];
}

/**
 * A native data plane. Methods throw VfpError with the native message on failure.
 *
 * Its lifetime is the object's: call stop() to end it; a DataPlane that nothing refers
 * to any more is also ended when the GC collects it (the finalizer stops the workers and
 * closes the ports, switching their stack drops off). Keep a reference for as long as
 * traffic should flow: a module's top-level `const` that no function uses is not one.
 */
export class DataPlane {
  private readonly h: unknown;
  private readonly r = raw();
  private view: BigUint64Array | null = null;
  private readonly layout: RawLayout;
  /** Each peer counter's word in a peer slot, from the addon's layout. */
  private readonly peerAt: Record<PeerField, number>;
  private readonly engineNames: string[];
  private stopped = false;
  /** Static FDB tables the native side built up to the last commit: one that lists the
   *  entries of the last table, in the same order, shares it (an attach beside 100k
   *  entries built them all again, 10–30 ms). */
  staticFdbBuilds = 0;

  constructor(o: DpOptions = {}) {
    this.layout = this.r.dpStatsLayout();
    this.peerAt = peerFieldsAt(this.layout.peerFields, this.layout.peerWords);
    this.engineNames = this.r.statsLayout();
    try {
      this.h = this.r.dpCreate(o);
    } catch (e) {
      throw new VfpError('system', `cannot start the data plane: ${(e as Error).message}`);
    }
  }

  static dpdkInit(args: string[]): void {
    const r = raw();
    if (!r.dpdkInit) throw new VfpError('unavailable', 'the dpdk backend is not built into this addon; run `vfplane doctor`');
    r.dpdkInit(args);
  }

  /** Detaches the XSK program a crashed run left on a netdev no port of this run opens
   *  (native/io/afxdp.h, vfp_afxdp__clear_stale): what was done or why the program
   *  stays, or null when nothing was attached or AF_XDP is not built. */
  static clearStaleXdp(ifname: string, netns: string | null): string | null {
    const r = raw();
    if (!r.afxdpClearStale) return null;
    const { rc, message } = r.afxdpClearStale(ifname, netns);
    return rc === 0 ? null : rc > 0 ? message : `XDP program left in place: ${message}`;
  }

  openPort(backend: Backend, opts: Record<string, unknown>, name: string): PortInfo {
    try {
      return this.r.dpPortOpen(this.h, backend, opts, name);
    } catch (e) {
      throw new VfpError('unavailable', (e as Error).message);
    }
  }

  /** openPort off the JS thread, for the kernel-netdev backends (afpacket, afxdp): their
   *  open waits for RCU grace periods (packet rings, XDP and tcx attaches), so many opened
   *  at once overlap those waits, and the JS thread serves meanwhile. Other backends open
   *  here, as openPort does. */
  async openPortAsync(backend: Backend, opts: Record<string, unknown>, name: string): Promise<PortInfo> {
    if (backend !== 'afpacket' && backend !== 'afxdp') return this.openPort(backend, opts, name);
    try {
      return await this.r.dpPortOpenAsync(this.h, backend, opts, name);
    } catch (e) {
      throw new VfpError('unavailable', (e as Error).message);
    }
  }

  removePort(slot: number): void {
    this.r.dpPortRemove(this.h, slot);
  }

  backendCounters(slot: number) {
    return this.r.dpPortCounters(this.h, slot);
  }

  /** Publishes a configuration; returns its epoch once every worker runs on it. */
  commit(spec: DpSpec, timeoutMs = 2000): number {
    const rawSpec = {
      ...spec,
      tunnel: rawTunnelCfg(spec.tunnel),
      peers: spec.peers.map((p) => ({ vtep: p.vtep, mac: p.mac ?? null, via: p.via ?? null })),
      fdb: spec.fdb instanceof Uint8Array ? spec.fdb : packFdb(spec.fdb), // the addon takes records only
    };
    try {
      const r = this.r.dpCommit(this.h, rawSpec, timeoutMs);
      this.staticFdbBuilds = r.staticFdbBuilds;
      return r.epoch;
    } catch (e) {
      const m = (e as Error).message;
      throw new VfpError(/twice|attached/.test(m) ? 'conflict' : 'invalid', m);
    }
  }

  /** Every worker's learned entries. Workers share what they learn, so an entry is in
   *  each worker's table: listed once, with the latest stamp (and its VTEP). */
  learned(cap = LEARNED_LIST_MAX): { vni: number; mac: string; vtep: string; stamp: number }[] {
    return this.learnedList(cap).entries;
  }

  /** As learned(), and whether the workers held more than the `cap` entries read. One
   *  more is asked for, so that exactly `cap` is not taken for more. */
  learnedList(cap = LEARNED_LIST_MAX): { entries: { vni: number; mac: string; vtep: string; stamp: number }[]; truncated: boolean } {
    const raw = this.r.dpLearned(this.h, cap + 1, 1000);
    return { entries: latestPerKey(raw.slice(0, cap)), truncated: raw.length > cap };
  }

  /** The learned entry for (vni, mac), the latest any worker has; null when none has it.
   *  A lookup in each worker's table, however many entries they hold. */
  learnedGet(vni: number, mac: Uint8Array): { vni: number; mac: string; vtep: string; stamp: number } | null {
    return latestPerKey(this.r.dpLearnedGet(this.h, vni, mac, 1000))[0] ?? null;
  }

  /** Each worker records the next `perWorker` frames it drops (at most
   *  DROPS_PER_WORKER_MAX; 0 stops) for one of `reasons` (drop counter names, as
   *  counters() has them; none: any), forgetting what an earlier arming recorded. Until
   *  armed, and once the count is reached, a drop costs the workers nothing more. A
   *  name that is no drop reason is a RangeError. */
  armDrops(perWorker: number, reasons?: readonly string[]): void {
    this.r.dpDropsArm(this.h, perWorker, reasons?.length ? [...reasons] : undefined);
  }

  /** Every reason a frame can be dropped for: the engine's, then the data plane's. */
  dropReasons(): string[] {
    return [...REASONS.slice(1), ...this.layout.dropNames];
  }

  /** What the workers recorded since the last armDrops, worker by worker, oldest first. */
  drops(): RawDrop[] {
    return this.r.dpDropsRead(this.h);
  }

  private words(): { v: BigUint64Array; workers: number } {
    if (!this.view) {
      const s = this.r.dpStats(this.h);
      this.view = new BigUint64Array(s.buffer);
    }
    return { v: this.view, workers: this.view.length / this.layout.workerWords };
  }

  /** Sums every worker's counters, read in place (no copy of the block). */
  counters(): DpCounters {
    const L = this.layout;
    const { v, workers } = this.words();
    const engine: Record<string, bigint> = {};
    const drops: Record<string, bigint> = {};
    const misc: Record<string, bigint> = {};
    const ports = new Map<number, PortCounters>();
    const vnis = new Map<number, VniCounters>();
    const perWorker: DpCounters['perWorker'] = [];
    let vtepConflict: DpCounters['vtepConflict'] = null;
    let notPeer: DpCounters['notPeer'] = null;
    let dupLocal: DpCounters['dupLocal'] = null;
    const engineHead = this.engineNames.filter((n) => !n.startsWith('drop.'));
    for (let w = 0; w < workers; w++) {
      const b = w * L.workerWords;
      engineHead.forEach((n, i) => (engine[n] = (engine[n] ?? 0n) + v[b + L.engine + i]!));
      this.engineNames.slice(engineHead.length).forEach((n, i) => {
        const c = v[b + L.engineDrops + i]!;
        if (c) drops[n.slice(5)] = (drops[n.slice(5)] ?? 0n) + c;
      });
      L.dropNames.forEach((n, i) => {
        const c = v[b + L.drops + i]!;
        if (c) drops[n] = (drops[n] ?? 0n) + c;
      });
      // Counters sum over the workers (NOT_SUMMED: what does not); the last VTEP conflict
      // is the latest of any worker's.
      for (const [k, off] of Object.entries(L.fields)) if (!NOT_SUMMED.has(k)) misc[k] = (misc[k] ?? 0n) + v[b + off]!;
      const cNs = v[b + L.fields.vtepConflictNs!]!;
      if (cNs && (!vtepConflict || cNs > vtepConflict.atNs)) {
        // Its bytes in wire order, read as a peer's MAC word is (peerCounters).
        vtepConflict = { mac: formatMac(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), (b + L.fields.vtepConflictMac!) * 8), atNs: cNs };
      }
      const npNs = v[b + L.fields.notPeerNs!]!, npFam = Number(v[b + L.fields.notPeerFamily!]!);
      if (npNs && (npFam === 4 || npFam === 6) && (!notPeer || npNs > notPeer.atNs)) {
        notPeer = { vtep: formatIp(npFam, new Uint8Array(v.buffer, v.byteOffset, v.byteLength), (b + L.fields.notPeerAddr!) * 8), atNs: npNs };
      }
      const dlNs = v[b + L.fields.dupLocalNs!]!, dlFam = Number(v[b + L.fields.dupLocalFamily!]!);
      if (dlNs && (dlFam === 4 || dlFam === 6) && (!dupLocal || dlNs > dupLocal.atNs)) {
        const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        dupLocal = { mac: formatMac(bytes, (b + L.fields.dupLocalMac!) * 8), vni: Number(v[b + L.fields.dupLocalVni!]!), vtep: formatIp(dlFam, bytes, (b + L.fields.dupLocalAddr!) * 8), atNs: dlNs };
      }
      perWorker.push({
        cpu: Number(BigInt.asIntN(64, v[b + L.fields.cpu!]!)),
        loops: v[b + L.fields.loops!]!,
        busyLoops: v[b + L.fields.busyLoops!]!,
        epoch: v[b + L.fields.epoch!]!,
        learnedEntries: Number(v[b + L.fields.learnedEntries!]!),
      });
      for (let p = 0; p < L.maxPorts; p++) {
        const o = b + L.ports + p * L.portWords;
        if (!v[o] && !v[o + 2] && !v[o + 4] && !v[o + 5]) continue;
        const cur = ports.get(p) ?? noPortCounters();
        cur.rxPkts += v[o]!;
        cur.rxBytes += v[o + 1]!;
        cur.txPkts += v[o + 2]!;
        cur.txBytes += v[o + 3]!;
        cur.drops += v[o + 4]!;
        cur.errors += v[o + 5]!;
        ports.set(p, cur);
      }
      for (let s = 1; s < L.maxVnis; s++) {
        const o = b + L.vnis + s * L.vniWords;
        let any = false;
        for (let k = 1; k < L.vniWords; k++) if (v[o + k]) any = true;
        if (!any) continue;
        const vni = Number(v[o]);
        const cur = vnis.get(vni) ?? noVniCounters(vni);
        cur.encapPkts += v[o + 1]!;
        cur.encapBytes += v[o + 2]!;
        cur.decapPkts += v[o + 3]!;
        cur.decapBytes += v[o + 4]!;
        cur.floodPkts += v[o + 5]!;
        cur.localPkts += v[o + 6]!;
        cur.drops += v[o + 7]!;
        vnis.set(vni, cur);
      }
    }
    return { engine, drops, misc, ports, vnis, perWorker, peers: this.peerCounters(v, workers), vtepConflict, notPeer, dupLocal };
  }

  /** The peer slots of every worker, merged by address: counts summed; the MAC of the
   *  worker that knows it (configured over learned, the latest learned). */
  private peerCounters(v: BigUint64Array, workers: number): Map<string, PeerCounters> {
    const L = this.layout;
    const out = new Map<string, PeerCounters>();
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (let w = 0; w < workers; w++) {
      for (let i = 0; i < L.maxPeers; i++) {
        const o = w * L.workerWords + L.peers + i * L.peerWords;
        const fam = Number(v[o + this.peerAt.family]);
        if (fam !== 4 && fam !== 6) continue; // a free slot (a peer keeps its slot, wherever it is)
        const at = (f: PeerField) => o + this.peerAt[f];
        const vtep = formatIp(fam, bytes, at('addrHi') * 8);
        const st = Number((v[at('mac')]! >> 48n) & 0xffn);
        const cur = out.get(vtep) ?? { vtep, encapPkts: 0n, encapBytes: 0n, floodPkts: 0n, requests: 0n, mac: null, state: 'unresolved' as const, resolvedNs: 0n, confirmedNs: 0n, decapPkts: 0n, decapBytes: 0n, lastFrameNs: 0n, wrongPortPkts: 0n, wrongPort: 0, wrongPortNs: 0n, portUnreach: 0n, portUnreachNs: 0n, notLocalPkts: 0n, notLocalNs: 0n, notLocalTo: '' };
        cur.encapPkts += v[at('encapPkts')]!;
        cur.encapBytes += v[at('encapBytes')]!;
        cur.floodPkts += v[at('floodPkts')]!;
        cur.requests += v[at('requests')]!;
        cur.decapPkts += v[at('decapPkts')]!;
        cur.decapBytes += v[at('decapBytes')]!;
        if (v[at('rxNs')]! > cur.lastFrameNs) cur.lastFrameNs = v[at('rxNs')]!;
        cur.wrongPortPkts += v[at('wrongPortPkts')]!;
        if (v[at('wrongPortNs')]! > cur.wrongPortNs) cur.wrongPortNs = v[at('wrongPortNs')]!, cur.wrongPort = Number(v[at('wrongPort')]!);
        cur.portUnreach += v[at('portUnreach')]!;
        if (v[at('portUnreachNs')]! > cur.portUnreachNs) cur.portUnreachNs = v[at('portUnreachNs')]!;
        cur.notLocalPkts += v[at('notLocalPkts')]!;
        const nlFam = Number(v[at('notLocalFamily')]!);
        if (v[at('notLocalNs')]! > cur.notLocalNs && (nlFam === 4 || nlFam === 6)) cur.notLocalNs = v[at('notLocalNs')]!, cur.notLocalTo = formatIp(nlFam, bytes, at('notLocalHi') * 8);
        const resolvedNs = v[at('resolvedNs')]!;
        const pmtu = Number(v[at('pmtu')]!);
        if (pmtu && v[at('pmtuUntilNs')]! > process.hrtime.bigint() && (cur.pathMtu === undefined || pmtu < cur.pathMtu)) cur.pathMtu = pmtu;
        if (st === 2 || (st === 1 && cur.state !== 'configured' && resolvedNs >= cur.resolvedNs)) {
          cur.state = st === 2 ? 'configured' : 'resolved';
          cur.mac = formatMac(bytes, at('mac') * 8);
          cur.resolvedNs = st === 1 ? resolvedNs : 0n;
        }
        // Heard from: the latest of any worker's, for the MAC they know.
        const heard = v[at('confirmedNs')]!;
        if (st === 1 && cur.state === 'resolved' && cur.mac === formatMac(bytes, at('mac') * 8) && heard > cur.confirmedNs) cur.confirmedNs = heard;
        out.set(vtep, cur);
      }
    }
    return out;
  }

  /** Drains (workers keep forwarding for up to drainMs while packets arrive), stops the
   *  workers and closes every port. Counters stay readable. */
  stop(drainMs = 100): void {
    if (this.stopped) return;
    this.stopped = true;
    this.r.dpStop(this.h, drainMs);
  }

  get isStopped(): boolean {
    return this.stopped;
  }
}

