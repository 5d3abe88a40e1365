// `vfplane bench dataplane`: the whole path of one worker on memory ports, as the remote
// MACs in play spread out and the FDB grows. Encap: a pod's frames through the attachment
// lookup, FDB resolve, peer and encap to the uplink. Decap: a peer's VXLAN frames from
// the uplink through decap, the static-entry check of each inner source, and delivery
// to the pod. The engine bench (`vfplane bench`) times encap, decap and FDB lookups
// apart; this is what a worker does with them together.
import type { DataPlane } from '../dataplane/dp.js';
import { resolveTunnel } from '../packet/config.js';
import { parseIp, parseMac } from '../util/addr.js';
import { mulberry32 } from '../util/rand.js';
import { benchFrames, vxlanFrames } from './frames.js';
import { sleep } from './io-proc.js';
import { median, type Op } from './memory.js';

export interface DataplaneBenchOptions {
  ops: Op[];
  /** Distinct remote MACs the frames cycle through: the pod's destinations (encap), the
   *  peer's senders (decap). */
  dests: number[];
  /** Static FDB entries of the data plane's config (each ≥ the largest dests). */
  fdbSizes: number[];
  durationMs: number;
  trials: number;
  cpu: number;
  vni: number;
  /** Decap learns the peer's senders (the static entries are then other MACs), as on an
   *  overlay without a controller; encap is unchanged. */
  learn?: boolean;
  /** How the frames spread over the remote MACs (default cycle). */
  spread?: Spread;
  onProgress?: (m: string) => void;
}

export interface DataplaneCell {
  op: Op;
  dests: number;
  fdbEntries: number;
  mpps: number;
  nsPerPacket: number;
  trialsMpps: number[];
  /** The share of the worker's cache lookups that hit, over the whole run (warm-up
   *  included): the destination cache (encap) or the source cache (decap); bypassed
   *  lookups count as not hit. */
  cacheHitRate: number;
}

export interface DataplaneBenchResult {
  what: string;
  cpu: number;
  /** Whether decap learned its senders (--learn) instead of finding them static. */
  learn: boolean;
  spread: Spread;
  frameBytes: number;
  cells: DataplaneCell[];
  /** Per op and dests: ns/packet at the largest FDB over the smallest, minus 1. */
  growth: { op: Op; dests: number; fromEntries: number; toEntries: number; growth: number }[];
}

const VTEP_LOCAL = '192.0.2.1';
const VTEP_PEER = '192.0.2.2';
const POD_MAC = '02:00:00:00:00:fd';
const PEER_MAC = '02:00:00:00:02:01';
const UPLINK_MAC = '02:00:00:00:01:02';

/** With --learn, decap's static entries start here: none of them is a sender. */
const OTHERS = 1 << 28;

/** The MAC of FDB entry k (destinations are entries 0 … dests-1): 02:01 and k multiplied
 *  by an odd constant mod 2^32, so distinct k give distinct MACs spread as a node's random
 *  ones are (sequential MACs fall into a hash table's slots unrealistically evenly, which
 *  hid the direct-mapped destination cache's collisions). */
export function entryMac(k: number): Uint8Array {
  const x = Math.imul(k, 0x9e3779b1) >>> 0;
  return Uint8Array.of(0x02, 0x01, (x >>> 24) & 0xff, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
}

/** How the frames spread over the remote MACs: `cycle`, each in turn; `zipf`, entry k
 *  (from 0) in proportion to 1/(k+1), as traffic is when a few hosts take most of it. */
export type Spread = 'cycle' | 'zipf';

/** Frames a Zipf spread aims at; every remote MAC gets at least one. */
const ZIPF_FRAMES = 16384;

/** The FDB entry of each frame: `cycle`, j mod dests over a whole number of cycles of at
 *  least 256 frames; `zipf`, entry k in max(1, round(c/(k+1))) frames for c making about
 *  ZIPF_FRAMES in all, shuffled with a fixed seed (the same frames every run). */
export function destOrder(dests: number, spread: Spread = 'cycle'): number[] {
  if (spread === 'cycle') {
    const n = dests >= 256 ? dests : Math.ceil(256 / dests) * dests;
    return Array.from({ length: n }, (_, j) => j % dests);
  }
  let h = 0;
  for (let k = 1; k <= dests; k++) h += 1 / k;
  const order: number[] = [];
  for (let k = 0; k < dests; k++) {
    const c = Math.max(1, Math.round(ZIPF_FRAMES / h / (k + 1)));
    for (let i = 0; i < c; i++) order.push(k);
  }
  const rand = mulberry32(0x5eed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** 64-byte IPv4/UDP frames over 256 flows, frame j to the destination MAC of FDB entry
 *  destOrder(dests, spread)[j]. */
export function destFrames(dests: number, spread: Spread = 'cycle'): Uint8Array[] {
  const base = benchFrames([64], 256);
  return destOrder(dests, spread).map((k, j) => {
    const f = Uint8Array.from(base[j % base.length]!);
    f.set(entryMac(k), 0);
    return f;
  });
}

/** The peer's VXLAN frames for decap (built with the TS model, peer → us): 64-byte inner
 *  frames to the pod from the FDB entries destFrames picks. */
export function decapFrames(dests: number, vni: number, spread: Spread = 'cycle'): Uint8Array[] {
  const inner = destFrames(dests, spread);
  const pod = parseMac(POD_MAC)!;
  for (const f of inner) {
    f.copyWithin(6, 0, 6); // the entry's MAC is the source
    f.set(pod, 0);
  }
  return vxlanFrames(inner, resolveTunnel({ local: VTEP_PEER, remote: VTEP_LOCAL, srcMac: PEER_MAC, dstMac: UPLINK_MAC }), vni);
}

/** Mpps a running data plane's port sends, per window: after `warmMs`, `trials` windows
 *  of `durationMs` each, from its tx counter. */
export async function portTxRates(dp: DataPlane, slot: number, warmMs: number, trials: number, durationMs: number): Promise<number[]> {
  const mark = () => ({ t: Number(process.hrtime.bigint()), n: Number(dp.counters().ports.get(slot)?.txPkts ?? 0n) });
  await sleep(warmMs);
  const out: number[] = [];
  let a = mark();
  for (let t = 0; t < trials; t++) {
    await sleep(durationMs);
    const b = mark();
    out.push(((b.n - a.n) / (b.t - a.t)) * 1e3);
    a = b;
  }
  return out;
}

export async function runDataplaneBench(o: DataplaneBenchOptions): Promise<DataplaneBenchResult> {
  const { DataPlane } = await import('../dataplane/dp.js');
  const say = o.onProgress ?? (() => {});
  const spread = o.spread ?? 'cycle';
  const vtep = parseIp(VTEP_PEER)!.bytes;
  const cells: DataplaneCell[] = [];
  const fdbSizes = [...o.fdbSizes].sort((a, b) => a - b);
  for (const entries of fdbSizes) {
    // One FDB per size, built once and shared by its destination rows.
    const fdb = Array.from({ length: entries }, (_, k) => ({ vni: o.vni, mac: entryMac(k), vtep }));
    let others: typeof fdb | undefined;
    for (const op of o.ops) for (const dests of o.dests) {
      const learning = !!o.learn && op === 'decap';
      say(`  ${op}: ${dests} ${op === 'encap' ? 'destination' : `${learning ? 'learned ' : ''}source`}${dests === 1 ? '' : 's'}, FDB ${entries} entries …`);
      if (learning) others ??= Array.from({ length: entries }, (_, k) => ({ vni: o.vni, mac: entryMac(OTHERS + k), vtep }));
      // Room for every sender, with the slack a hash table wants.
      const dp = new DataPlane({ workers: 1, cpus: [o.cpu], idleSpins: 0, ...(learning ? { learnCapacity: Math.max(65536, 2 * dests) } : {}) });
      let trials: number[] = [];
      let cacheHitRate = 0;
      try {
        const enc = op === 'encap';
        const pod = dp.openPort(enc ? 'memory-gen' : 'memory-sink', enc ? { frames: destFrames(dests, spread) } : {}, 'pod');
        const up = dp.openPort(enc ? 'memory-sink' : 'memory-gen', enc ? {} : { frames: decapFrames(dests, o.vni, spread) }, 'uplink');
        const out = enc ? up : pod;
        dp.commit({
          uplink: up.slot, uplinkMac: parseMac(UPLINK_MAC)!, tunnel: resolveTunnel({ local: VTEP_LOCAL, remote: VTEP_PEER }),
          peers: [{ vtep, mac: parseMac(PEER_MAC)! }], atts: [{ port: pod.slot, vni: o.vni, mac: parseMac(POD_MAC)! }],
          fdb: learning ? others! : fdb, floods: [], extraVnis: [], learn: learning, antiSpoof: false, icmpTooBig: false, verifyUdpCsum: false,
        }, 60_000);
        // 200 ms warm: the remote MACs' buckets and the pool in cache.
        trials = await portTxRates(dp, out.slot, 200, o.trials, o.durationMs);
        dp.stop();
        // A window in which nothing went out is no rate (its ns/packet was ∞, the growth
        // too): the worker did not run then.
        const idle = trials.filter((t) => !(t > 0)).length;
        if (idle) {
          throw new Error(`bench dataplane: ${idle} of ${trials.length} windows of ${o.durationMs} ms forwarded nothing (${op}, ${dests} MACs, FDB ${entries}): the worker on CPU ${o.cpu} did not run then (the host starved it?); run again, with a longer --duration or another --cpu`);
        }
        // The figure is honest only if every frame went where it should, unicast: a flood
        // (a destination the FDB missed) or a drop (a source a static entry puts
        // elsewhere…) means the bench measured something else.
        const c = dp.counters();
        const cache = enc ? 'dest' : 'src';
        const count = (k: 'Hits' | 'Misses' | 'Bypassed') => Number(c.misc[`${cache}Cache${k}`] ?? 0n);
        const lookups = count('Hits') + count('Misses') + count('Bypassed');
        cacheHitRate = lookups > 0 ? count('Hits') / lookups : 0;
        const v = c.vnis.get(o.vni);
        const done = enc ? v?.encapPkts : v?.decapPkts;
        if (!v || v.floodPkts !== 0n || v.drops !== 0n || !done) {
          throw new Error(`bench dataplane: ${op} of ${dests} remote MACs over ${entries} FDB entries did not go out as unicast `
            + `(${op} ${done ?? 0n}, flood ${v?.floodPkts ?? 0n}, drops ${v?.drops ?? 0n}): a bug in the bench or the data plane`);
        }
        // Learning: each sender learned once, then refreshed; none left out.
        if (learning && (c.engine.learnNew !== BigInt(dests) || (c.engine.learnFull ?? 0n) !== 0n)) {
          throw new Error(`bench dataplane: decap of ${dests} senders learned ${c.engine.learnNew ?? 0n} new entries `
            + `(full ${c.engine.learnFull ?? 0n}): a bug in the bench or the data plane`);
        }
      } finally {
        dp.stop();
      }
      const mpps = median(trials);
      cells.push({ op, dests, fdbEntries: entries, mpps, nsPerPacket: 1e3 / mpps, trialsMpps: trials, cacheHitRate });
    }
  }
  const growth = o.ops.flatMap((op) => o.dests.map((d) => {
    const row = cells.filter((c) => c.op === op && c.dests === d);
    const lo = row[0]!, hi = row.at(-1)!;
    return { op, dests: d, fromEntries: lo.fdbEntries, toEntries: hi.fdbEntries, growth: hi.nsPerPacket / lo.nsPerPacket - 1 };
  }));
  return {
    what: `one worker on memory ports. encap: a pod port's frames → attachment, FDB, peer, encap → the uplink; decap: a peer's VXLAN frames on the uplink → decap, static-entry check of the inner source, ${o.learn ? 'learning it, ' : ''}local MAC → the pod. Packets per second the far port sent`,
    cpu: o.cpu, learn: !!o.learn, spread, frameBytes: 64, cells, growth,
  };
}

/** The human report: Mpps and ns/packet per (destinations, FDB size), and the growth. */
export async function renderDataplane(r: DataplaneBenchResult, command: string): Promise<string> {
  const { default: Table } = await import('cli-table3');
  const sizes = [...new Set(r.cells.map((c) => c.fdbEntries))];
  const t = new Table({ head: ['op', 'remote MACs', ...sizes.map((s) => `FDB ${s}: Mpps (ns/pkt, cache hits)`), 'ns/pkt growth'], style: { head: [], border: [] } });
  for (const g of r.growth) {
    const row = sizes.map((s) => {
      const c = r.cells.find((x) => x.op === g.op && x.dests === g.dests && x.fdbEntries === s)!;
      return `${c.mpps.toFixed(2)} (${c.nsPerPacket.toFixed(1)}, ${(c.cacheHitRate * 100).toFixed(1)}%)`;
    });
    t.push([g.op, `${g.dests} ${g.op === 'encap' ? 'destination' : 'source'}${g.dests === 1 ? '' : 's'}`, ...row, sizes.length > 1 ? `${g.growth >= 0 ? '+' : ''}${(g.growth * 100).toFixed(1)}%` : '–']);
  }
  return [
    `vfplane bench dataplane: ${r.what}`,
    `worker on CPU ${r.cpu}, ${r.frameBytes} B IPv4/UDP inner frames, ${r.spread === 'zipf'
      ? 'spread over the remote MACs as Zipf (MAC k in proportion to 1/k, shuffled)' : 'cycling over the remote MACs'}; ${r.learn
      ? 'encap: the destinations are static FDB entries (behind the one peer) among the FDB\'s; decap: the senders are learned (the FDB\'s static entries are other MACs, each sender checked against them first)'
      : 'the remote MACs are static FDB entries (behind the one peer) among the FDB\'s; learning off'}`,
    t.toString(),
    'cache hits: of the worker\'s destination (encap) or source (decap) cache lookups over the run, bypassed ones counted as misses',
    `command: ${command}`,
    '',
  ].join('\n');
}
