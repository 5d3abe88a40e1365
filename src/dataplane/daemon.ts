// The data-plane daemon: owns one native DataPlane, its uplink and one port per attached
// VF representor. Everything it forwards by (peers, FDB, flood lists, attachments) is a
// model here; every change rebuilds the spec and commits it as a new epoch, so workers
// never stop. Changes made over the control socket persist in the state directory and
// come back on restart. Bad requests get an error reply and change nothing.
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import * as z from '../util/z.js';
import { DataPlane, DROPS_PER_WORKER_MAX, type DpOptions, LEARNED_LIST_MAX, noPortCounters, noVniCounters, type Backend, type BackendCounters, type DpCounters, type DpSpec, type PeerCounters, type PortInfo } from './dp.js';
import { ControlServer, overlayAttachRequest, probe, refuseNonSocket, trySocketPath, type OverlayConf } from './control.js';
import { attachSchema, dropVtep, fdbKey, fdbSchema, MAX_PEERS, MAX_VNIS, PEERS_FIX, VNIS_FIX, formatVniRanges, macString, metricsAddr, peerSchema, podBackendOf, reloadSummary, socketPath, tenancyRefusal, UPLINK_PORT_NAME, uplinkNameRefusal, vniNumber, ipString, zodMessage, type AttachRequest, type DaemonConfig } from './config.js';
import { resolveTunnel } from '../packet/config.js';
import { describeFrame } from '../packet/describe.js';
import { withGuesses } from '../util/typo.js';
import { inParallel } from '../util/parallel.js';
import { canonCidr, formatIp, formatMac, groupMacOf, isGroupMac, isStationMac, parseIp, parseMac } from '../util/addr.js';
import { conflict, invalid, notFound, systemError, VfpError } from '../util/errors.js';
import { netnsId } from '../net/ip.js';
import { linkAddrs, LOOPBACK_IFINDEX, netRun, refuseHostNetdev, refuseStackedNetdev, type LinkAddrs } from '../net/netops.js';
import { ClaimJournal, claimNetdev, givesBack, nodeLock, releaseLeftovers, releaseNetdev, runDir, sweepNetdevLocks, type Claim } from './claims.js';
import { AllocStore, DB_FILE } from '../alloc/store.js';
import { registeredStores, registryDir } from '../alloc/registry.js';
import { ownerAlive } from '../alloc/owner.js';
import { afXdpVdevWarning, afxdpChoice, dpdkChoice, netdevProfile, offloadTier, outerChecksums, ownNetdevRefusal, vdevNetdev, vfOfNetdev, type UplinkChoice } from './uplink-profile.js';
import { loadAddon } from './addon.js';
import { dpdkEnvJournal, prepareDpdkEnv, recoverDpdkEnv, type DpdkEnv } from './dpdk-env.js';
import { makeDirs } from '../util/fs.js';
import { StaticFdb, type FdbEntry } from './static-fdb.js';
import { listSome } from '../util/text.js';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const stderrLogger = (node: string): Logger => {
  const line = (lvl: string, msg: string) => process.stderr.write(`${new Date().toISOString()} ${lvl} dataplane[${node}] ${msg}\n`);
  return { info: (m) => line('info', m), warn: (m) => line('warn', m), error: (m) => line('error', m) };
};

interface Attached extends AttachRequest {
  slot: number;
  portInfo: PortInfo;
  claimed: Claim | null;
  ifindex: number; // the representor's when attached: its port's sockets are bound to it
}

interface PersistedState {
  version: 1;
  attachments: AttachRequest[];
  peers: z.infer<typeof peerSchema>[];
  fdb: z.infer<typeof fdbSchema>[];
  floods: { vni: number; flood: string[] }[];
}

/** The state file's entries, each as the socket's schema reads it: an entry the socket
 *  would refuse (one an older vfplane took) is dropped alone, said, and the rest stands. */
const STATE_ENTRIES = {
  attachments: attachSchema,
  peers: peerSchema,
  fdb: fdbSchema,
  floods: z.strictObject({ vni: vniNumber, flood: z.array(ipString('a flood VTEP')) }),
} as const;
const stateSchema = z.object({
  version: z.literal(1, { error: 'expected version 1' }),
  attachments: z.array(STATE_ENTRIES.attachments).default([]),
  peers: z.array(STATE_ENTRIES.peers).default([]),
  fdb: z.array(STATE_ENTRIES.fdb).default([]),
  floods: z.array(STATE_ENTRIES.floods).default([]),
});

/** Whether an attachment's representor is still the netdev its port was opened on:
 *  `gone` (deleted: the VF went away, or its pod's namespace did without a CNI DEL),
 *  `replaced` (a netdev of that name with another ifindex, which the port's sockets do
 *  not see), `ok`, `down` (set down since: its port carries nothing until it is up),
 *  `no-carrier` (up, but the pod's side of the VF is down), or `unknown` (in another
 *  namespace than the daemon's). Gone or replaced means the pod no longer reaches the
 *  overlay until DEL/GC detaches it; down until it is brought up. */
function representorState(a: { representor: string; netns?: string; ifindex: number }): 'ok' | 'down' | 'no-carrier' | 'gone' | 'replaced' | 'unknown' {
  if (a.netns) return 'unknown';
  let now: number;
  try {
    now = Number(readFileSync(`/sys/class/net/${a.representor}/ifindex`, 'utf8'));
  } catch {
    return 'gone';
  }
  if (now !== a.ifindex) return 'replaced';
  // The same netdev, but set down since the attach (`ip link set … down`: its port neither
  // receives nor sends, the pod is cut off while the table said "ok"), or up without a
  // carrier (the pod's interface, or the VF's link, is down). helper-109.
  try {
    if ((Number(readFileSync(`/sys/class/net/${a.representor}/flags`, 'utf8')) & 1) === 0) return 'down';
    if (readFileSync(`/sys/class/net/${a.representor}/carrier`, 'utf8').trim() === '0') return 'no-carrier';
  } catch {
    // gone between the reads, or carrier unreadable: the next look says
  }
  return 'ok';
}

/** The counters status warns of while they grow, not for the daemon's life: the learned
 *  table turning MACs away (engine), and drops that name a misconfiguration (drops). */
const GREW_WATCHED = [['learnFull', 'engine'], ['learnLimited', 'engine'], ['static_elsewhere', 'drops'], ['spoofed', 'drops'], ['udp_zero_checksum', 'drops'], ['no_destination', 'drops']] as const;

/** How far back status looks for learned MACs moving between VTEPs (learnMoved). */
const MOVED_WINDOW_MS = 60_000;

/** The last VTEP that is not a peer whose frames came in (learnNotPeer), for `status`;
 *  none once it is a peer again (`peer add`, a reload): its frames are learned now, and
 *  the warning would have the operator add a peer that is there. */
function notPeerStatus(k: DpCounters, peers: { vtep: string }[]): { notPeer?: { vtep: string; frames: number; secondsAgo: number } } {
  if (!k.notPeer || peers.some((p) => canonIp(p.vtep) === canonIp(k.notPeer!.vtep))) return {};
  const ago = Number((process.hrtime.bigint() - k.notPeer.atNs) / 1_000_000_000n);
  return { notPeer: { vtep: k.notPeer.vtep, frames: Number(k.misc.learnNotPeer ?? 0n), secondsAgo: Math.max(0, ago) } };
}

/** `{duplicateMac}` while a MAC of a pod attached here also comes from behind a peer on
 *  its VNI (dupLocalMacs): the last such MAC, its VNI and representor, the VTEP, how long
 *  ago. Two hosts have one MAC; what is sent to it reaches the local pod only. None once
 *  no attachment here has that MAC on that VNI (the pod left, or took another MAC). */
function dupLocalStatus(k: DpCounters, atts: readonly { representor: string; vni: number; mac: string }[]): { duplicateMac?: { mac: string; vni: number; representor: string; vtep: string; times: number; secondsAgo: number } } {
  const d = k.dupLocal;
  const a = d && atts.find((x) => x.vni === d.vni && x.mac.toLowerCase() === d.mac);
  if (!d || !a) return {};
  const ago = Number((process.hrtime.bigint() - d.atNs) / 1_000_000_000n); // CLOCK_MONOTONIC, as the workers' stamps
  return { duplicateMac: { mac: d.mac, vni: d.vni, representor: a.representor, vtep: d.vtep, times: Number(k.misc.dupLocalMacs ?? 0n), secondsAgo: Math.max(0, ago) } };
}

/** `{vtepConflict}` once another host claimed our VTEP's address on the underlay (its
 *  ARP or ND from a MAC not the uplink's): how many frames, the last one's MAC, how long
 *  ago. Peers may then send this node's traffic to that host. */
function vtepConflictStatus(k: DpCounters): { vtepConflict?: { frames: number; mac: string; secondsAgo: number } } {
  const n = Number(k.misc.vtepConflicts ?? 0n);
  if (!n || !k.vtepConflict) return {};
  const ago = Number((process.hrtime.bigint() - k.vtepConflict.atNs) / 1_000_000_000n); // CLOCK_MONOTONIC, as the workers' stamps
  return { vtepConflict: { frames: n, mac: k.vtepConflict.mac, secondsAgo: Math.max(0, ago) } };
}

/** `{ownerGone: true}` for a pod's attachment whose network namespace no longer exists
 *  (the pod went without a DEL: after a reboot, say), which only its DEL, CNI GC or
 *  `vfplane gc` (releasing the VF) takes off the overlay. */
function ownerGone(a: AttachRequest): { ownerGone?: true } {
  const ns = a.owner?.netns;
  return ns && ownerAlive({ netns: ns }) === 'gone' ? { ownerGone: true } : {};
}

/** A CPU list in the kernel's form ("0-3,6"). */
function formatCpuList(cpus: number[]): string {
  const s = [...cpus].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j + 1;
  }
  return out.join(',') || 'none';
}

/** The online CPUs (/sys/devices/system/cpu/online, "0-3,6"), or null if unreadable. */
function onlineCpus(): Set<number> | null {
  let text: string;
  try {
    text = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  } catch {
    return null;
  }
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return out;
}

/** The MAC of an IPv6 address's solicited-node multicast group (RFC 4291 §2.7.1:
 *  ff02::1:ff and the address's last 3 bytes): where neighbour solicitations for it are sent. */
export function solicitedNodeMac(addr: string): string {
  const group = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, ...ipBytes(addr).slice(13, 16));
  return formatMac(groupMacOf({ family: 6, bytes: group })!);
}

const mac = (s: string) => parseMac(s)!;
const ipBytes = (s: string) => parseIp(s)!.bytes;
/** The largest MTU native XDP takes on a veth with 4 KiB pages (the kernel's veth_xdp_set:
 *  a page less XDP_PACKET_HEADROOM and skb_shared_info, less the Ethernet header). */
const AFXDP_VETH_MAX_MTU = 3506;
/** Attachments a start restores at once (their ports' opens overlap their kernel waits). */
const RESTORE_PARALLEL = 16;
/** Refused control requests logged per op in a window (logRefusal). */
const REFUSALS_LOGGED = 20, REFUSAL_WINDOW_MS = 10_000;
/** An address as the workers name it (RFC 5952 for IPv6), whatever form the config used. */
const canonIp = (s: string) => { const a = parseIp(s)!; return formatIp(a.family, a.bytes); };
/** The keys of a config's static entries, made once per config (a reload makes a new
 *  one): each change asks of every entry whether the config declares it. */
const declaredFdb = new WeakMap<readonly FdbEntry[], Set<string>>();
function fdbKeys(list: readonly FdbEntry[]): Set<string> {
  let keys = declaredFdb.get(list);
  if (!keys) declaredFdb.set(list, (keys = new Set(list.map(fdbKey))));
  return keys;
}


/** What a request without arguments takes: nothing (an unknown field is refused, as for
 *  every other request; `op` and `id` are the envelope's). */
const NO_ARGS = z.strictObject({});
/** What names a static FDB entry in fdb-del. */
const FDB_KEY = z.strictObject({ vni: vniNumber, mac: macString('the inner (pod) MAC') });
/** Entries one fdb-add or fdb-del may carry: the control socket's 1 MiB request line holds
 *  ~15k; a node's whole table goes through the config file and a reload. */
const FDB_BATCH_MAX = 10_000;
const fdbBatch = <T extends z.ZodType>(entry: T) =>
  z.array(entry, { error: 'expected a list of entries' }).min(1, 'expected at least one entry').max(FDB_BATCH_MAX, `expected at most ${FDB_BATCH_MAX} entries a request; send more in several, or put them in the config file and reload`);
/** Refuses a batch that names one entry twice (which of the two would win?). */
function refuseRepeats(keys: { vni: number; mac: string }[]): void {
  const seen = new Map<string, number>();
  keys.forEach((k, i) => {
    const first = seen.get(fdbKey(k));
    if (first !== undefined) throw invalid(`entries.${i} names ${k.mac} on VNI ${k.vni} again (also entries.${first}); give each entry once`);
    seen.set(fdbKey(k), i);
  });
}

/** tunnel.mtu above the uplink netdev's MTU: encap would pass frames the uplink cannot
 *  send (dropped as tx_oversize, no ICMP too big to the pod). It is for an uplink whose
 *  MTU no netdev says (a DPDK PCI port), or to go below the netdev's. */
function refuseTunnelMtu(tunnelMtu: number, uplinkMtu: number, ifname: string): void {
  if (tunnelMtu && uplinkMtu && tunnelMtu > uplinkMtu) {
    throw invalid(`tunnel.mtu ${tunnelMtu} is above the MTU of the uplink ${ifname} (${uplinkMtu}): outer packets between the two would be dropped by the uplink, with no ICMP too big to the pod; give tunnel.mtu 0 (the uplink's) or at most ${uplinkMtu}, or raise ${ifname}'s MTU`);
  }
}

/** Thrown by attachReserved when the representor was named by an altname: attachNow
 *  makes the attachment again under the netdev's own name (`own`). */
class AltName extends Error {
  constructor(readonly own: string) {
    super(`an altname of ${own}`);
  }
}

/** A network namespace's identity (two paths may name one), or its path once it is gone. */
function netnsKey(netns?: string): string {
  try {
    return netnsId(netns);
  } catch {
    return `path:${netns}`;
  }
}

export class Daemon {
  readonly log: Logger;
  private dp: DataPlane | null = null;
  private uplink: PortInfo | null = null;
  private uplinkMac: Uint8Array = new Uint8Array(6);
  private uplinkMtu = 0; // 0: unknown (DPDK) — no MTU check on encap
  private netdevMtuAtStart = 0; // the uplink netdev's MTU when its port opened (AF_PACKET slots are sized from it)
  private netdevMtu = 0; // the uplink netdev's MTU as last read (followMtu)
  // The uplink netdev's link as last read (followLink): up, down (admin) or without
  // carrier, since when (ms, monotonic), and how often it went down.
  private link: { state: 'up' | 'down' | 'no-carrier'; sinceMs: number; downs: number } = { state: 'up', sinceMs: 0, downs: 0 };
  private stateRewrite = false; // the state file had what this start dropped: rewritten once restored
  /** Counters whose warnings are about now, not the daemon's life (GREW_WATCHED): each
   *  one's value as the beat and status last saw it, and when it last grew
   *  (CLOCK_MONOTONIC ms; absent: it never has). */
  private grew = new Map<string, { n: bigint; at: number }>();
  /** A change made while the state file could not be written (a pod's detach, the beat's
   *  own): since when (Date.now()) and why. The beat writes the file again until it can. */
  private unsaved: { since: number; why: string } | null = null;
  /** learnMoved as the beat and status saw it over the last MOVED_WINDOW_MS (CLOCK_MONOTONIC
   *  ms), oldest first: how many learned MACs moved to another VTEP lately. */
  private movedSeen: { atMs: number; moved: bigint }[] = [];
  /** Each attachment's pod MTU as its attach left it (the request's, else the
   *  representor's; with vfplane-cni's mtuAuto, no more than the overlay's then): status
   *  holds it against the underlay's MTU as it is now, which may have gone down since. */
  private podMtus = new Map<string, number>();
  /** Each representor's MTU when its port was opened, which sized its ring slots: frames
   *  of a pod whose MTU was raised since are lost at the port (rx_truncated, rx_oversize). */
  private portMtus = new Map<string, number>();
  private uplinkClaim: Claim | null = null;
  /** The uplink's kernel netdev (none for a DPDK PCI uplink): never a representor too. */
  private uplinkNetdev: { ifindex: number; netns: string } | null = null;
  private uplinkWatch: { ifname: string; netns?: string; ifindex: number } | null = null;
  private choice: UplinkChoice | null = null;
  private dpdkEnv: DpdkEnv | null = null;
  private control: ControlServer | null = null;
  private metricsServer: Server | null = null;
  private readonly atts = new Map<string, Attached>(); // by representor
  /** By peer VTEP: its counts at the last beat (encap: the unicast frames sent to it, flood
   *  copies not counted), and since when (Date.now()) frames went to it with none back (0:
   *  not so). */
  private readonly peerAnswer = new Map<string, { encap: bigint; decap: bigint; since: number }>();
  /** By peer VTEP: when its learned MAC was last heard from (the workers' confirmedNs, or
   *  resolvedNs), and its ARP/ND request count then; the requests sent since went
   *  unanswered (status's warning for a peer that stopped answering). */
  private readonly peerHeard = new Map<string, { heardNs: bigint; requests: bigint }>();
  /** Attachments under way (attachNow past its checks), by representor: the request, and
   *  a promise settled when it is done either way. */
  private readonly attaching = new Map<string, { req: AttachRequest; done: Promise<void> }>();
  /** Attachments a start could not restore because their representor did not exist (the
   *  VFs not made yet after a reboot, or a representor away for a moment): still wanted,
   *  kept in the state file and in status, attached by the beat once the representor is
   *  there, dropped once the allocation store no longer gives the VF to their pod (DEL,
   *  GC, gc) or by a detach. By representor. */
  private readonly waiting = new Map<string, { req: AttachRequest; why: string }>();
  private peers: z.infer<typeof peerSchema>[] = [];
  /** Representor and MTUs whose MTU advice was logged (see attachNow). */
  private readonly mtuWarned = new Set<string>();
  /** Static FDB entries: the config's, then the socket's. */
  private fdb = new StaticFdb();
  private floods = new Map<number, string[]>();
  private epoch = 0;
  private readonly started = Date.now();
  private queue: Promise<unknown> = Promise.resolve();
  readonly socket: string;
  private readonly statePath: string;
  /** The netdevs this daemon (or a run of it killed before it gave them back) holds. */
  private readonly claims: ClaimJournal;
  private lock: { release(): void } | null = null;

  /** `reload` reads the config file again through this (with the command line's
   *  overrides applied); absent, the daemon has no file to reload. */
  private readonly reread?: () => DaemonConfig;

  constructor(public cfg: DaemonConfig, log?: Logger, opts: { reread?: () => DaemonConfig } = {}) {
    this.reread = opts.reread;
    this.log = log ?? stderrLogger(cfg.node);
    this.socket = socketPath(cfg);
    this.statePath = join(cfg.stateDir, `dataplane-${cfg.node}.json`);
    this.claims = new ClaimJournal(cfg.stateDir, cfg.node);
  }

  get podBackend(): Backend {
    // Representors are kernel netdevs (also in the simulator): DPDK reaches the uplink
    // (a VF or vdev), the pods' representors go through AF_XDP (or AF_PACKET).
    return podBackendOf(this.cfg);
  }

  private portOpts(ifname: string, netns: string | undefined, role: 'uplink' | 'representor'): Record<string, unknown> {
    const o: Record<string, unknown> = { ifname, ...(netns ? { netns } : {}) };
    const rep = role === 'representor';
    // AF_XDP binds every rx queue the netdev has (queues 0): a queue without a socket
    // passes its frames to the host stack, so flows the NIC or a veth peer spread over
    // more queues than workers would bypass the data plane. Queue q goes to worker
    // q % workers; workers without a queue on the netdev hand their frames to one that
    // has (native/worker/dp.c, handoff). A representor carries one pod's traffic: its
    // rings and UMEM are smaller than the uplink's, since every attached VF pays them
    // (docs/dataplane.md, Memory).
    const x = this.cfg.afxdp, p = this.cfg.afpacket;
    if (this.podBackend === 'afxdp') Object.assign(o, { mode: x.mode, copy: x.copy, queues: 0, frames: rep ? x.representorFrames : x.frames });
    // The netdev is the data plane's: the host stack gets no copy of what arrives on it.
    // Ring blocks are 256 KiB.
    else Object.assign(o, { ring: p.ring, stackDrop: 1, blocks: 4 * (rep ? p.representorRxRingMiB : p.rxRingMiB), txFrames: rep ? p.representorTxFrames : p.txFrames });
    return o;
  }

  /** The uplink's kernel netdev (a netdev uplink, or the one a DPDK vdev sits on): read,
   *  refused if it carries the host's addresses, claimed (an IPv6 VTEP's solicited-node
   *  group joined on it). `what` names it in the refusal; `missing` is the error when it
   *  does not exist. */
  private async takeUplinkNetdev(ifname: string, netns: string | undefined, what: string, missing: string, promisc = false): Promise<LinkAddrs> {
    const l = await linkAddrs(netns ?? null, ifname);
    if (!l) throw notFound(missing);
    refuseHostNetdev(l, what);
    refuseStackedNetdev(netns ?? null, ifname, what);
    refuseTunnelMtu(this.cfg.tunnel.mtu, l.mtu, ifname);
    this.uplinkNetdev = { ifindex: l.ifindex, netns: netnsId(netns) };
    this.uplinkWatch = { ifname, ...(netns ? { netns } : {}), ifindex: l.ifindex };
    const vtep = this.cfg.uplink.vtep;
    this.uplinkClaim = await claimNetdev(this.claims, ifname, l.ifindex, netns, isIP(vtep) === 6 ? solicitedNodeMac(vtep) : undefined, { promisc, wasUp: l.up });
    if (this.uplinkClaim.note) this.log.info(`uplink ${ifname}: ${this.uplinkClaim.note}`);
    return l;
  }

  /** Listens again on the control socket when its file was removed under the daemon
   *  (CNI ADD/DEL and the CLI would otherwise never reach it again), and says so. */
  async keepSocket(): Promise<void> {
    if (await this.control?.relistenIfGone()) this.log.warn(`control socket ${this.socket} was removed while the data plane ran; listening on it again`);
  }

  /** Null while the uplink's netdev is the one the data plane opened; else why not
   *  (deleted, its namespace gone, or a new netdev of that name: the sockets and XDP
   *  program stay on the old one, so nothing reaches the overlay any more). */
  async uplinkLost(): Promise<string | null> {
    const u = this.uplinkWatch;
    if (!u) return null;
    const where = u.netns ? ` in ${u.netns}` : '';
    let l: LinkAddrs | null;
    try {
      l = await linkAddrs(u.netns ?? null, u.ifname);
    } catch (e) {
      return `${u.ifname}${where} cannot be read: ${(e as Error).message}`;
    }
    if (!l) return `${u.ifname}${where} was deleted`;
    if (l.ifindex !== u.ifindex) return `${u.ifname}${where} is another netdev now (ifindex ${l.ifindex}, was ${u.ifindex})`;
    return null;
  }

  /** The uplink netdev as it is now, on the 2 s beat: read once, for its MTU and its link
   *  and MAC (followMtu, followLink). */
  followUplink(): Promise<void> {
    return this.serialized(async () => {
      const u = this.uplinkWatch;
      if (!u || !this.dp || !this.uplink) return;
      const l = await linkAddrs(u.netns ?? null, u.ifname).catch(() => null);
      if (!l || l.ifindex !== u.ifindex) return; // gone or replaced: uplinkLost says so
      this.followLink(u.ifname, l);
      this.followMtu(u.ifname, l);
    });
  }

  /**
   * The uplink netdev's MTU changed under the running data plane (an operator's `ip link
   * set mtu`): the underlay MTU the overlay counts on (the engine's mtu_exceeded check,
   * ICMP too big to pods, the advice at attach) follows it in a new epoch, as the
   * kernel's vxlan reads its route's MTU per packet. It was read once at the start: a
   * lowered MTU lost the pods' larger frames at the uplink with nothing said, a raised
   * one kept pods told the old (helper-69). A raise goes no higher than what the uplink's
   * port carries (an AF_PACKET port's slots are sized from the MTU it opened with: more
   * takes a restart). tunnel.mtu, when the config sets it, stands.
   */
  private followMtu(ifname: string, l: LinkAddrs): void {
    if (this.cfg.tunnel.mtu || !l.mtu || l.mtu === this.netdevMtu || !this.uplink) return;
    const was = this.uplinkMtu;
    this.netdevMtu = l.mtu;
    const cap = this.uplink.backend === 'afpacket' && l.mtu > this.netdevMtuAtStart ? this.netdevMtuAtStart : l.mtu;
    this.uplinkMtu = cap;
    this.clampUplinkMtu();
    const more = cap < l.mtu ? `; its AF_PACKET port was opened for ${this.netdevMtuAtStart}: restart the data plane to carry ${l.mtu}` : '';
    if (this.uplinkMtu === was) {
      if (more) this.log.warn(`uplink ${ifname}: MTU ${l.mtu} now (was read as ${was})${more}`);
      return;
    }
    this.commit();
    const overhead = this.overlayOverhead();
    this.log.warn(`uplink ${ifname}: MTU ${l.mtu} now; the underlay MTU the overlay counts on goes from ${was} to ${this.uplinkMtu}, so it carries pods' packets of up to ${this.uplinkMtu - overhead} bytes (epoch ${this.epoch})${more}. ` +
      `Pods set up for more are told by ICMP too big${this.cfg.icmpTooBig ? '' : ' (off: icmpTooBig)'}; their interfaces keep the MTU their ADD gave them`);
    this.saveState();
  }

  /**
   * The uplink netdev's link and MAC. A link down (`ip link set down`) or without carrier
   * (a cable, a switch port) loses every frame the workers send, and said nothing
   * (helper-71): each change is logged, `status` shows it (uplink.link, with a warning
   * while down) and the metric vfplane_uplink_up. A new MAC on the netdev (the config
   * names none) goes into a new epoch: ARP/ND answers and the tunnel's frames carry it,
   * and worker 0 announces it, where it had kept the start's (a real NIC's filter drops
   * frames to the old one).
   */
  private followLink(ifname: string, l: LinkAddrs): void {
    const state = !l.up ? 'down' : l.running === false ? 'no-carrier' : 'up';
    const nowMs = Number(process.hrtime.bigint() / 1_000_000n);
    if (state !== this.link.state) {
      const was = this.link;
      this.link = { state, sinceMs: nowMs, downs: was.downs + (state !== 'up' && was.state === 'up' ? 1 : 0) };
      if (state === 'up') this.log.info(`uplink ${ifname} is up again after ${Math.round((nowMs - was.sinceMs) / 1000)} s ${was.state === 'down' ? 'down' : 'without carrier'}`);
      else this.log.warn(`uplink ${ifname} is ${state === 'down' ? 'down (set down on the host: ip link set up brings it back)' : 'up without carrier (the cable, the peer or the switch port)'}: every frame for the underlay is lost until it comes back`);
    }
    if (!this.cfg.uplink.mac && l.mac && l.mac !== formatMac(this.uplinkMac)) {
      const was = formatMac(this.uplinkMac);
      this.uplinkMac = mac(l.mac);
      this.commit();
      this.log.warn(`uplink ${ifname}: MAC ${l.mac} now (was ${was}); the workers answer ARP/ND and send with it from epoch ${this.epoch}, and announce it to the underlay`);
    }
  }

  /** What the outer headers take of the underlay's MTU: Ethernet inside, IP, UDP and
   *  VXLAN (50 over IPv4, 70 over IPv6), as the kernel's vxlan reckons it. */
  private overlayOverhead(): number {
    return isIP(this.cfg.uplink.vtep) === 6 ? 70 : 50;
  }

  /** Notes which watched counters grew since last seen (grew), and learnMoved's window. */
  private noteLearning(engine: Record<string, bigint>, drops: Record<string, bigint>): void {
    const now = Number(process.hrtime.bigint() / 1_000_000n);
    for (const [key, from] of GREW_WATCHED) {
      const n = (from === 'engine' ? engine : drops)[key] ?? 0n;
      const had = this.grew.get(key);
      if (n > (had?.n ?? 0n)) this.grew.set(key, { n, at: now });
    }
    // Frames a pod's interface refused (its port's tx_device_drops: over its MTU, or it is
    // down), per representor (helper-88: pods of one VNI with different MTUs lost the
    // larger frames between them, said nowhere but in the port's counters).
    for (const a of this.atts.values()) {
      const drops = this.dp?.backendCounters(a.slot)?.drops;
      const n = BigInt(drops?.tx_device_drops ?? 0);
      const key = `refused:${a.representor}`;
      const had = this.grew.get(key);
      if (n > (had?.n ?? 0n)) this.grew.set(key, { n, at: now });
      // Frames from the pod longer than its port's ring slots (sized from the MTU at the
      // attach): a pod whose MTU was raised since loses them, said nowhere but in stats's
      // port drops (helper-109).
      const t = BigInt(drops?.rx_truncated ?? 0) + BigInt(drops?.rx_oversize ?? 0);
      const tkey = `truncated:${a.representor}`;
      const thad = this.grew.get(tkey);
      if (t > (thad?.n ?? 0n)) this.grew.set(tkey, { n: t, at: now });
    }
    const m = this.movedSeen;
    m.push({ atMs: now, moved: engine.learnMoved ?? 0n });
    while (m.length > 1 && m[0]!.atMs < now - MOVED_WINDOW_MS) m.shift();
  }

  /** The learned MACs that moved to another VTEP in the window movedSeen holds (from its
   *  oldest sample to now), for status; none when none did. */
  private movedLately(): { moved?: number; movedLately?: { moves: number; seconds: number } } {
    const m = this.movedSeen, last = m[m.length - 1];
    if (!last || !last.moved) return {};
    const moves = Number(last.moved - m[0]!.moved);
    return { moved: Number(last.moved), ...(moves > 0 ? { movedLately: { moves, seconds: Math.max(1, Math.round((last.atMs - m[0]!.atMs) / 1000)) } } : {}) };
  }

  /** On the 2 s beat: the learned table's fill (noteLearning), and each peer's answer:
   *  since when every beat found frames sent to it and none from it (status's one-way
   *  warning). A beat that sent it nothing, or got a frame from it, starts that over.
   *  Only unicast counts as sent: a peer that got nothing but flood copies (a pod's ARP
   *  for an address no node has, head-end replicated to every peer) owes no answer. */
  watchLearning(): void {
    if (!this.dp) return;
    const k = this.dp.counters();
    this.noteLearning(k.engine as Record<string, bigint>, k.drops);
    const now = Date.now();
    for (const [vtep, p] of k.peers) {
      this.noteHeard(vtep, p);
      const had = this.peerAnswer.get(vtep);
      const unicast = p.encapPkts - p.floodPkts;
      const sent = had !== undefined && unicast > had.encap, heard = had === undefined || p.decapPkts > had.decap;
      this.peerAnswer.set(vtep, { encap: unicast, decap: p.decapPkts, since: sent && !heard ? had!.since || now : 0 });
    }
  }

  /** The ARP/ND requests sent for a peer since its MAC was last heard from (on the beat
   *  and on status): a learned MAC heard again, or learned anew, starts the count over.
   *  Seen up to one beat late, the count may miss a request sent in between. */
  private noteHeard(vtep: string, p: PeerCounters): bigint {
    const heardNs = p.confirmedNs > p.resolvedNs ? p.confirmedNs : p.resolvedNs;
    const had = this.peerHeard.get(vtep);
    if (!had || had.heardNs !== heardNs || p.requests < had.requests) {
      this.peerHeard.set(vtep, { heardNs, requests: p.requests });
      return 0n;
    }
    return p.requests - had.requests;
  }

  /** Says once per port when the host stack keeps its copy of an AF_PACKET port's frames. */
  private noteStackDrop(slot: number, name: string): void {
    const n = this.dp!.backendCounters(slot)?.stackDropNote;
    if (n) this.log.warn(`${name}: the host stack still receives every frame (${n}); it routes and answers them on the worker's CPU too`);
  }

  async start(): Promise<void> {
    const c = this.cfg;
    // --metrics overrides the config after it was checked: checked here, before anything
    // is claimed, rather than failing to listen once everything is.
    const m = c.metrics === undefined ? null : metricsAddr.safeParse(c.metrics);
    if (m && !m.success) throw invalid(`metrics: ${m.error.issues[0]!.message} (got ${JSON.stringify(c.metrics)})`);
    // A CPU this host does not have (or has offline) would fail the workers' pinning, or
    // the EAL's -l, half-way through the start.
    const online = onlineCpus();
    const absent = (c.cpus ?? []).filter((x) => x >= 0 && online && !online.has(x));
    if (absent.length) throw invalid(`cpus: CPU ${absent.join(', ')} is not online on this host (online: ${[...online!].join(',')}); pin the workers to online CPUs, or -1 for not pinned`);
    // Online is not enough: a container's cpuset (Kubernetes' CPU limit or its CPU
    // manager) fences its threads in, and the pinning would fail with EINVAL.
    const pinned = (c.cpus ?? []).filter((x) => x >= 0);
    if (pinned.length) {
      const usable = new Set(loadAddon().cpusUsable());
      const fenced = pinned.filter((x) => !usable.has(x));
      if (fenced.length) throw invalid(`cpus: CPU ${fenced.join(', ')} is online but outside this process's cpuset (usable here: ${formatCpuList([...usable])}), which a container's CPU limit or a cgroup's cpuset.cpus sets; pin the workers to usable CPUs, give the container those CPUs, or -1 for not pinned`);
    }
    // Taken as written, but said (helper-90: accepted without a word).
    const twice = [...new Set(pinned.filter((x, i) => pinned.indexOf(x) !== i))];
    if (twice.length) this.log.warn(`cpus: CPU ${twice.join(', ')} is given to more than one worker: workers on one CPU take turns (each polls part of the time, and a frame waits for its worker's turn); give each worker a CPU of its own, or run fewer workers`);
    if (c.learnPerVni !== undefined && c.learnPerVni >= c.learnCapacity) this.log.warn(`learnPerVni ${c.learnPerVni} is not under learnCapacity ${c.learnCapacity}: no VNI is held to a share of the learned table; set it under learnCapacity (its share for one VNI) or leave it out`);
    // A DPDK vdev's netdev is known (and one vfplane cannot claim refused) before the
    // EAL reserves hugepages for it.
    const under = c.backend === 'dpdk' ? vdevNetdev(c.uplink.dev!) : null;
    makeDirs(c.stateDir, 0o700); // root's: the allocation store and state files, whatever the umask
    // Before anything changes: one daemon per node and state directory, and none on a
    // socket another one answers on (ControlServer.listen checks again, at the end).
    refuseNonSocket(this.socket); // a path that names a file is refused, not unlinked at the end
    this.lock = nodeLock(c.stateDir, c.node);
    if (existsSync(this.socket) && (await probe(this.socket))) {
      this.lock.release();
      this.lock = null;
      throw conflict(`a data plane already listens on ${this.socket}; stop it first or give another socket`);
    }
    try {
      await trySocketPath(this.socket); // one it cannot listen on, refused before anything is claimed
    } catch (e) {
      this.lock.release();
      this.lock = null;
      throw e;
    }
    if (this.claims.unreadable) this.log.warn(`ignoring the unreadable claims journal ${this.claims.unreadable}: netdevs a killed run held keep what it set; the file as it was is kept as ${this.claims.keepAside()} (it holds their settings from before that run, to set back by hand)`);
    try {
      // The metrics address is bound before anything is claimed (helper-90: a port in use
      // failed the start only once the uplink had been claimed and given back); until
      // the ports are open it answers 503.
      if (c.metrics) await this.startMetrics(c.metrics);
      // What a DPDK run of this node that was killed left (hugepages, its mount, the
      // EAL's runtime dir) is given back first, whatever this run's backend: else it
      // would be taken for the host's own and kept.
      for (const m of recoverDpdkEnv(dpdkEnvJournal(c.stateDir, c.node))) this.log.info(m);
      const swept = sweepNetdevLocks();
      if (swept) this.log.info(`removed ${swept} netdev lock file(s) in ${runDir()} that no data plane holds (left by data planes that were killed)`);
      if (c.backend === 'dpdk') {
        // The EAL first: workers created after it register with it (mempool caches).
        const dev = c.uplink.dev!;
        const isPci = /^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(dev);
        this.dpdkEnv = prepareDpdkEnv({
          // The EAL's main lcore: the first worker's CPU, or 0 when it is not pinned (-1).
          cores: String(Math.max(c.cpus?.[0] ?? 0, 0)), stateDir: c.stateDir, hugepages: c.dpdk.hugepages,
          ...(isPci ? { pci: [dev] } : {}), filePrefix: `vfplane-${c.node}-${process.pid}`, warn: (m) => this.log.warn(m), info: (m) => this.log.info(m),
          journal: dpdkEnvJournal(c.stateDir, c.node),
        });
        const eal = [...this.dpdkEnv.args, ...c.dpdk.eal];
        this.log.info(`EAL arguments: ${eal.join(' ')}`);
        try {
          DataPlane.dpdkInit(eal);
        } catch (e) {
          // The EAL prints its usage for an argument it does not know: the one to look at
          // is most likely the config's own.
          if (!c.dpdk.eal.length) throw e;
          throw new VfpError((e as VfpError).kind ?? 'system', `${(e as Error).message}; dpdk.eal added ${c.dpdk.eal.join(' ')} to vfplane's own arguments: check those first (the EAL's lines above name what it refused)`);
        }
      }
      this.dp = new DataPlane(dpOptionsOf(c));
      // The uplink.
      if (c.backend === 'dpdk') {
        this.choice = dpdkChoice(c.uplink.dev!);
        const partial = afXdpVdevWarning(c.uplink.dev!);
        if (partial) this.log.warn(`uplink: ${partial}`);
        // A vdev on a kernel netdev takes that netdev as an AF_XDP or AF_PACKET uplink
        // would: the host's own interface is refused, and the netdev is claimed.
        const vdev = c.uplink.dev!.split(',')[0];
        // Its MTU is the underlay's, as for those uplinks (a DPDK port's own is not).
        if (under) this.uplinkMtu = (await this.takeUplinkNetdev(under, undefined, `uplink ${under} (under ${vdev})`, `the uplink ${vdev} sits on ${under}, which does not exist; check iface= in uplink.dev`, true)).mtu;
        this.netdevMtuAtStart = this.netdevMtu = this.uplinkMtu;
        const d = c.dpdk;
        this.uplink = this.dp.openPort('dpdk', {
          // A device with fewer queue pairs than workers opens with what it has; the
          // workers without one hand their frames over, as on AF_XDP and representors.
          dev: c.uplink.dev, txOffloads: this.choice.dpdkTxOffloads!.bits, queues: c.workers, fewerQueuesOk: true,
          ...(d.mbufs ? { mbufs: d.mbufs } : {}), ...(d.mbufDataSize ? { mbufDataSize: d.mbufDataSize } : {}),
          ...(d.rxDesc ? { rxDesc: d.rxDesc } : {}), ...(d.txDesc ? { txDesc: d.txDesc } : {}),
        }, 'uplink');
        // The descriptors as the device took them (it rounds dpdk.rxDesc/txDesc to its limits).
        const desc = this.uplink.rxDesc ? ` of ${this.uplink.rxDesc} rx and ${this.uplink.txDesc} tx descriptors${(d.rxDesc && d.rxDesc !== this.uplink.rxDesc) || (d.txDesc && d.txDesc !== this.uplink.txDesc) ? ` (dpdk.rxDesc/txDesc ${d.rxDesc ?? 'default'}/${d.txDesc ?? 'default'}, adjusted by the device)` : ''}` : '';
        this.log.info(`uplink ${this.uplink.driver ?? 'dpdk'} port ${this.uplink.portId}: ${this.uplink.mbufs} mbufs, ${this.uplink.queues} queue(s)${desc}${this.uplinkMtu ? `, underlay MTU ${this.uplinkMtu} (${under}'s)` : ''}`);
        if (this.uplink.queues < c.workers) {
          this.log.info(`uplink ${c.uplink.dev}: ${this.uplink.queues} queue pair(s) for ${c.workers} workers (the device has no more): ${this.uplink.queues === c.workers - 1 ? `worker ${this.uplink.queues}` : `workers ${this.uplink.queues}–${c.workers - 1}`} receive${this.uplink.queues === c.workers - 1 ? 's' : ''} nothing from the underlay and hand what they send to it to a queue's owner (a copy per frame); for a queue per worker, give the device more (net_af_packet: qpairs=${c.workers}, net_af_xdp: queue_count=${c.workers}, a VF: more queues) or run ${this.uplink.queues} worker(s)`);
        }
        if (this.uplink.mac && !c.uplink.mac) this.uplinkMac = this.uplink.mac;
        this.log.info(`uplink offloads: ${this.choice.dpdkTxOffloads!.why}; enabled on the device: 0x${(this.uplink.txOffloads ?? 0).toString(16)}`);
        // A DPDK port's MTU is what the application configured, not what the underlay
        // carries, so without a netdev under it only the config can say the latter.
        if (!c.tunnel.mtu && !this.uplinkMtu) this.log.info(`uplink ${c.uplink.dev}: no tunnel.mtu, so encap checks no MTU with a DPDK uplink: a frame over the underlay's is the NIC's or the network's to drop, and a pod over it is not told (icmpTooBig); set tunnel.mtu to the underlay's MTU for both`);
      } else {
        const ifn = c.uplink.ifname!;
        const l = await this.takeUplinkNetdev(ifn, c.uplink.netns, `uplink ${ifn}`, `the uplink ${ifn} does not exist${c.uplink.netns ? ` in ${c.uplink.netns}` : ''}; check uplink.ifname in the config`);
        this.uplinkMac = mac(c.uplink.mac ?? l.mac);
        this.uplinkMtu = l.mtu;
        this.netdevMtuAtStart = this.netdevMtu = l.mtu;
        const opts = this.portOpts(ifn, c.uplink.netns, 'uplink');
        if (c.backend === 'afxdp') {
          this.choice = c.uplink.netns ? { profile: null, driver: null, afxdp: { ...c.afxdp, why: 'uplink in another namespace: the config\'s mode and copy' } } : afxdpChoice(ifn, c.afxdp);
          Object.assign(opts, { mode: this.choice.afxdp!.mode, copy: this.choice.afxdp!.copy });
          this.log.info(`uplink AF_XDP: ${this.choice.afxdp!.why}`);
        } else if (!c.uplink.netns) {
          const { hw: _, fn: __, ...base } = netdevProfile(ifn);
          this.choice = base;
        }
        // An AF_PACKET uplink gets a queue (a socket in one fanout group) per worker, so
        // every worker receives from the underlay; representors keep one queue each, and
        // workers without it hand their frames to its owner.
        if (c.backend === 'afpacket') Object.assign(opts, { queues: c.workers });
        this.uplink = this.dp.openPort(c.backend, opts, `uplink ${ifn}`);
        this.noteStackDrop(this.uplink.slot, `uplink ${ifn}`);
        if ((this.uplink as { notice?: string }).notice) this.log.info(`uplink: ${(this.uplink as { notice?: string }).notice}`);
        if (this.uplink.backend === 'afxdp' && this.uplink.queues > c.workers) {
          // Every rx queue is bound (none may bypass the data plane), each with its own UMEM.
          this.log.info(`uplink ${ifn}: ${this.uplink.queues} rx queues bound for ${c.workers} worker(s), each with a UMEM of its own; to match the workers, \`ethtool -L ${ifn} combined ${c.workers}\` (\`rx ${c.workers}\` on a veth) before starting`);
        }
      }
      this.clampUplinkMtu();
      if (c.uplink.mac) this.uplinkMac = mac(c.uplink.mac);
      this.peers = [...c.peers];
      this.fdb = new StaticFdb(c.fdb);
      for (const v of c.vnis) this.floods.set(v.vni, v.flood);
      this.commit();
      const t = this.tier();
      this.log.info(`offload tier ${t.tier}${t.allowed !== null ? ` (the hw-profile allows ${t.allowed})` : ''}: ${t.why}`);
      this.log.info(`uplink ${c.uplink.ifname ?? c.uplink.dev} (${this.uplink.backend}${this.uplink.mode ? `, ${this.uplink.mode} mode` : ''}${this.uplink.zerocopy === false ? ', copy' : ''}), VTEP ${c.uplink.vtep}, VXLAN on UDP ${c.dstPort}, ${this.peers.length} peer(s)`);
      // The socket listens before anything is restored, and the restore is the first of
      // its serialized jobs: a CNI DEL (or ADD) arriving meanwhile waits behind it rather
      // than meeting ECONNREFUSED, which it would take for a data plane that is down and
      // forgets released VFs when it starts (this one has already read the store).
      this.control = new ControlServer(this.socket, (req) => this.serialized(() => this.handleLogged(req)));
      await this.control.listen();
      await this.serialized(() => this.restoreAttachments());
      // The address bound: a port 0 in the config is one the kernel chose.
      const host = c.metrics ? c.metrics.slice(0, c.metrics.lastIndexOf(':')) : '';
      const port = this.metricsPort ?? (c.metrics ? c.metrics.slice(c.metrics.lastIndexOf(':') + 1) : '');
      const served = !c.metrics ? '' : host ? `, metrics on http://${host}:${port}/metrics` : `, metrics on every address, port ${port} (http://ADDRESS:${port}/metrics)`;
      this.log.info(`control socket ${this.socket}${served}`);
    } catch (e) {
      await this.stop(0);
      throw e;
    }
  }

  /** The config's representors named by an altname, by that name: the netdev's own name
   *  (restoreAttachments), for telling the config's attachments from the socket's. */
  private readonly configOwnNames = new Map<string, string>();

  /** The attachment a detach names by an altname of its representor (looked up in each
   *  namespace attachments are in), or undefined. */
  private async attachedByAltname(name: string): Promise<Attached | undefined> {
    const nss = new Map<string, string | undefined>();
    for (const a of this.atts.values()) nss.set(a.netns ?? '', a.netns);
    for (const ns of nss.values()) {
      const [l] = await netRun(ns ?? null, [{ op: 'get', name }]).catch(() => [null]);
      const att = l?.name && l.name !== name ? this.atts.get(l.name) : undefined;
      if (att && (att.netns ?? '') === (ns ?? '')) return att;
    }
    return undefined;
  }

  /** Whether the config file declares the attachment of representor REP (by its name or
   *  by an altname of it). */
  private fromConfig(rep: string): boolean {
    return this.cfg.attachments.some((x) => x.representor === rep || this.configOwnNames.get(x.representor) === rep);
  }

  /**
   * A function giving each of LIST (config or state-file attachments) under its netdev's
   * own name when it names an altname, looked up now (one request per namespace); a
   * representor that is not there (yet) or a namespace that cannot be read keeps its name.
   */
  private async ownNames(list: AttachRequest[]): Promise<(a: AttachRequest) => AttachRequest> {
    const k = (netns: string | undefined, rep: string) => `${netns ?? ''}\u0000${rep}`;
    const own = new Map<string, string>();
    const byNs = new Map<string | undefined, Set<string>>();
    for (const a of list) byNs.set(a.netns, (byNs.get(a.netns) ?? new Set()).add(a.representor));
    await Promise.all([...byNs].map(async ([ns, reps]) => {
      const names = [...reps];
      const got = await netRun(ns ?? null, names.map((name) => ({ op: 'get' as const, name }))).catch(() => []);
      names.forEach((n, i) => {
        const l = got[i];
        if (l?.name && l.name !== n) own.set(k(ns, n), l.name);
      });
    }));
    for (const a of this.cfg.attachments) {
      const n = own.get(k(a.netns, a.representor));
      if (n) this.configOwnNames.set(a.representor, n);
    }
    return (a) => {
      const n = own.get(k(a.netns, a.representor));
      if (!n) return a;
      this.log.info(`attachment ${a.representor}${a.netns ? ` in ${a.netns}` : ''}: an altname of ${n}, which it is attached as`);
      return { ...a, representor: n };
    };
  }

  /** Attachments at start: the config's, then the ones made over the socket before a
   *  restart, then the allocation store's that neither has (a lost state file). */
  private async restoreAttachments(): Promise<void> {
    const c = this.cfg;
    const restored = this.loadState();
    // A representor named by an altname goes by the netdev's own name from the start, so
    // that two names of one netdev clash in the list's order, as one name twice does.
    const named = await this.ownNames([...c.attachments, ...(restored?.attachments ?? [])]);
    const configAtts = c.attachments.map(named);
    const restoredAtts = (restored?.attachments ?? []).map(named);
    // The config's attachments are the operator's: the store is asked about the restored
    // ones only (and about what nothing restores).
    // The stores to ask: this data plane's, those the restored attachments name, and every
    // store of the node (a network's own stateDir, which only a lost state file named).
    const nodeStores = registeredStores(registryDir(c.sysfsRoot) ?? '', DB_FILE);
    const { stale, missing } = reconcileWithStore(c.stateDir, this.socket, restoredAtts, configAtts, nodeStores, (a) => this.storeOf(a),
      (dir) => this.storeUnreadable(dir, 'the state file alone says which of its VFs\' attachments come back (none is rebuilt from it, and none is dropped as DELed)'));
    let back = 0;
    // Several at once: a port's open and a claim's settings wait for RCU grace periods in
    // the kernel, which overlap when many wait together (255 attachments: 6.2 s one after
    // another). They start in the list's order, and one that clashes with another under
    // way waits for it (attachNow), so the outcome is the one-after-another one.
    const all = [...configAtts, ...restoredAtts, ...missing];
    const waits = new Map<AttachRequest, string>(); // not-found: why
    const restore = async (a: AttachRequest): Promise<void> => {
      if (stale.has(a)) {
        this.log.info(`dropping attachment ${a.representor} (VF ${a.pci}, VNI ${a.vni}): the VF was released while the data plane was down (the allocation store no longer gives it to this attachment)`);
        return;
      }
      const fromStore = missing.includes(a);
      try {
        await this.attachNow(a);
        if (restoredAtts.includes(a)) back++;
        if (fromStore) this.log.warn(`re-attached ${a.representor} (VF ${a.pci}, VNI ${a.vni}) from the allocation store: ${restored ? 'the state file did not have it' : `no readable state file ${this.statePath}`}`);
      } catch (e) {
        // A representor deleted while its attach ran fails there (a socket's bind, a
        // sysctl) rather than at the lookup: it waits, as one missing from the start.
        const gone = !(e instanceof VfpError && e.kind === 'not-found') && (await linkAddrs(a.netns ?? null, a.representor).catch(() => undefined)) === null;
        if (((e instanceof VfpError && e.kind === 'not-found') || gone) && !this.atts.has(a.representor)) {
          const why = gone ? `representor ${a.representor} is gone (it went while being attached: ${(e as Error).message})` : (e as Error).message;
          waits.set(a, why);
          this.log.warn(`attachment ${a.representor} (VNI ${a.vni}) waits${fromStore ? ' (from the allocation store)' : ''}: ${why}; it is attached once the representor exists, or dropped by its DEL (CNI GC, vfplane gc)`);
          return;
        }
        this.log.warn(`attachment ${a.representor} (VNI ${a.vni}) not restored${fromStore ? ' (from the allocation store)' : ''}: ${(e as Error).message}`);
      }
    };
    await inParallel(all, RESTORE_PARALLEL, restore);
    // In the list's order, as one after another left them: the attachments (status and
    // the state file list them so, and the file's order decides the next start's
    // clashes), and the waiting ones, the last for a representor.
    const rank = new Map<string, number>();
    all.forEach((a, i) => { if (!rank.has(a.representor)) rank.set(a.representor, i); });
    const made = [...this.atts.entries()].sort(([x], [y]) => (rank.get(x) ?? Infinity) - (rank.get(y) ?? Infinity));
    this.atts.clear();
    for (const [r, a] of made) this.atts.set(r, a);
    for (const a of all) {
      const why = waits.get(a);
      if (why !== undefined && !this.atts.has(a.representor)) this.waiting.set(a.representor, { req: a, why });
    }
    // What the state file says from now on: without what was dropped, with what was rebuilt.
    // (Waiting ones count as kept only when it is the restored request that waits: a
    // config's attachment waiting does not stand for a restored one dropped.)
    const keptWaiting = restoredAtts.filter((a) => this.waiting.get(a.representor)?.req === a).length;
    if (missing.length || back + keptWaiting < restoredAtts.length || this.stateRewrite) this.saveState();
    this.stateRewrite = false;
    // Netdevs a run killed before it gave them back, which this one does not use.
    for (const m of await releaseLeftovers(this.claims, { held: [this.uplinkClaim, ...[...this.atts.values()].map((a) => a.claimed)] })) this.log.info(m);
    if (restored) this.log.info(`restored ${back} of ${restoredAtts.length} attachment(s)${this.waiting.size ? ` (${this.waiting.size} waiting for their representor)` : ''}, ${restored.peers.length} peer(s), ${restored.fdb.length} FDB entr(ies) from ${this.statePath}`);
  }

  /** Of attachments vfplane-cni asked for (each names the VF and its owner), those the
   *  allocation store no longer gives to that container and interface, read in one go.
   *  An ADD that timed out waiting for this daemon, or was killed, is undone and its VF
   *  released, while its attach may still be queued here or already done: attached then,
   *  a VF handed to another pod (of another network, even) would be on this VNI. A
   *  missing or unreadable store proves nothing (none); a request without an owner (the
   *  operator's) is never one. */
  private notHeld<T extends { pci?: string | undefined; owner?: Record<string, string> | undefined }>(list: T[]): T[] {
    const owned = list.filter((a) => a.pci && a.owner?.containerId);
    if (owned.length === 0) return [];
    // Each attachment is checked in the store that holds its VF (vfplane-cni names it).
    const byStore = new Map<string, T[]>();
    for (const a of owned) {
      const dir = this.storeOf(a);
      const group = byStore.get(dir);
      if (group) group.push(a);
      else byStore.set(dir, [a]);
    }
    return [...byStore].flatMap(([dir, group]) => readStore(dir, [] as T[], (store) => group.filter((a) => {
      const cur = store.get(a.pci!);
      return !cur || cur.owner.containerId !== a.owner!.containerId || (a.owner!.ifname !== undefined && cur.owner.ifname !== a.owner!.ifname);
    }), this.storeUnreadable(dir, 'no attachment of its VFs is checked against it')));
  }

  /** The allocation store an attachment's VF is held in: the one its vfplane-cni named
   *  (its network config's stateDir), else this data plane's state directory. */
  private storeOf(a: { owner?: Record<string, string> | undefined }): string {
    const s = a.owner?.store;
    return s && s.startsWith('/') && !s.split('/').includes('..') ? s : this.cfg.stateDir;
  }

  /** Detaches vfplane-cni's attachments whose VF the allocation store no longer gives to
   *  their pod: a DEL or GC that released the VF without reaching this daemon (it was
   *  down, hung, or starting), or an ADD undone after its attach went through. Run on the
   *  daemon's 2 s beat, behind the control requests. */
  dropReleased(): Promise<void> {
    return this.serialized(async () => {
      if (!this.dp) return;
      const gone = this.notHeld([...this.atts.values()]);
      for (const a of gone) {
        this.log.warn(`detaching ${a.representor} (VF ${a.pci}, VNI ${a.vni}): the allocation store no longer gives the VF to container ${a.owner!.containerId} (${a.owner!.ifname ?? '?'}); its release did not reach this data plane`);
        await this.detachNow({ representor: a.representor });
      }
      if (gone.length + (await this.retryWaiting()) > 0) this.saveOrKeep('the attachments the beat changed');
      else if (this.unsaved) this.saveOrKeep();
    });
  }

  /** saveState for a change already made (one that must not wait on this node's state
   *  directory): a file that cannot be written is said once, shown in status, and written
   *  on a later beat; until then a restart starts from the file as it was. */
  private saveOrKeep(what?: string, without?: string): string | null {
    try {
      this.saveState(without);
      return null;
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      const note = `the state file ${this.statePath} cannot be written (${why}): ${what ?? 'changes'} made, and kept in the file once it can be written (the data plane keeps trying); a restart before then starts from the file as it was. Make the state directory writable (and not full)`;
      if (!this.unsaved) {
        this.unsaved = { since: Date.now(), why };
        this.log.warn(note);
      }
      return note;
    }
  }

  /** The waiting attachments: dropped once their VF is released, attached once their
   *  representor exists. How many changed. */
  private async retryWaiting(): Promise<number> {
    let changed = 0;
    const released = new Set(this.notHeld([...this.waiting.values()].map((w) => w.req)));
    for (const [rep, w] of [...this.waiting]) {
      const a = w.req;
      if (released.has(a)) {
        this.waiting.delete(rep);
        changed++;
        this.log.info(`dropping the waiting attachment ${rep} (VF ${a.pci}, VNI ${a.vni}): the allocation store no longer gives the VF to container ${a.owner!.containerId}`);
        continue;
      }
      if (!(await linkAddrs(a.netns ?? null, rep).catch(() => null))) continue;
      try {
        await this.attachNow(a);
        this.log.info(`attached the waiting attachment ${rep}${a.pci ? ` (VF ${a.pci})` : ''}: its representor exists now`);
      } catch (e) {
        if (e instanceof VfpError && e.kind === 'not-found') continue; // gone again meanwhile: it waits on
        this.log.warn(`the waiting attachment ${rep} (VNI ${a.vni}) cannot be attached now that its representor exists: ${(e as Error).message}; dropped`);
      }
      this.waiting.delete(rep);
      changed++;
    }
    return changed;
  }

  /** Control requests run one at a time: each builds on the model the last one left. */
  private serialized<T>(fn: () => T | Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** The gateway a peer's frames go to (its MAC resolved instead of the peer's): with
   *  uplink.gateway, a peer outside uplink.prefixLength of our VTEP; null: on the link. */
  private nextHop(vtep: string): Uint8Array | null {
    const u = this.cfg.uplink;
    if (!u.gateway) return null;
    const bits = u.prefixLength ?? (isIP(u.vtep) === 6 ? 128 : 32);
    return canonCidr(`${vtep}/${bits}`) === canonCidr(`${u.vtep}/${bits}`) ? null : ipBytes(u.gateway);
  }

  private spec(): DpSpec {
    const c = this.cfg;
    const peers = this.peers.map((p) => ({ vtep: ipBytes(p.vtep), mac: p.mac ? mac(p.mac) : null, via: this.nextHop(p.vtep) }));
    const tunnel = resolveTunnel({
      local: c.uplink.vtep,
      remote: c.uplink.vtep, // per peer in the native build
      vlan: c.uplink.vlan ?? null,
      dstPort: c.dstPort,
      ttl: c.tunnel.ttl,
      tos: c.tunnel.tos,
      df: c.tunnel.df,
      udpCsum: c.tunnel.udpCsum,
      srcPortMin: c.tunnel.srcPortMin,
      srcPortMax: c.tunnel.srcPortMax,
      // Outer packets longer than the uplink's MTU would be dropped by the device (or the
      // kernel) without a word; the engine drops them itself and counts mtu_exceeded.
      mtu: c.tunnel.mtu || this.uplinkMtu,
    });
    const floods = new Map(this.floods);
    const list = [...this.atts.values()];
    for (const a of list) {
      if (a.remote) {
        const f = floods.get(a.vni) ?? this.peers.map((p) => p.vtep);
        if (!f.includes(a.remote)) floods.set(a.vni, [...f, a.remote]);
      }
    }
    return {
      uplink: this.uplink!.slot,
      uplinkMac: this.uplinkMac,
      tunnel,
      peers,
      atts: list.map((a) => ({ port: a.slot, vni: a.vni, mac: mac(a.mac) })),
      fdb: this.fdb.packed(),
      floods: [...floods].map(([vni, v]) => ({ vni, vteps: v.map(ipBytes) })),
      extraVnis: [],
      learn: c.learn,
      antiSpoof: c.antiSpoof,
      verifyUdpCsum: c.tunnel.verifyUdpCsum,
      icmpTooBig: c.icmpTooBig,
      ageSeconds: c.ageSeconds,
    };
  }

  private commit(): void {
    const s = this.spec();
    // The data plane's limits, said with the way out (the addon's refusal has neither),
    // and how much of it the control socket added: a reload of a file within the limits
    // may still go past them with those (helper-79).
    if (s.peers.length > MAX_PEERS) {
      const cfg = new Set(this.cfg.peers.map((p) => p.vtep));
      const added = this.peers.filter((p) => !cfg.has(p.vtep)).map((p) => p.vtep);
      throw conflict(`${s.peers.length} peers is more than the ${MAX_PEERS} a data plane supports${added.length ? ` (${added.length} of them added over the control socket, not in the config file: ${listSome(added)}; \`vfplane dataplane peer del VTEP\` takes one away)` : ''}; ${PEERS_FIX}; nothing was changed`);
    }
    const vnis = new Set([...s.atts.map((a) => a.vni), ...s.floods.map((f) => f.vni)]);
    if (vnis.size > MAX_VNIS) {
      const cfg = new Set(this.cfg.vnis.map((v) => v.vni));
      const added = [...this.floods.keys()].filter((v) => !cfg.has(v)).map(String);
      throw conflict(`that makes ${vnis.size} VNIs attached or with a flood list, more than the ${MAX_VNIS} a data plane serves${added.length ? ` (flood lists set over the control socket, not in the config file, for ${added.length} of them: VNI ${listSome(added)})` : ''}; ${VNIS_FIX}; nothing was changed`);
    }
    this.epoch = this.dp!.commit(s);
  }

  /** Runs a model change: commits it and writes the state file, or puts the model back
   *  (committed again, when the new one already ran) and throws. */
  private change(apply: () => void, revert: () => void): void {
    apply();
    try {
      this.commit();
    } catch (e) {
      revert();
      throw e;
    }
    try {
      this.saveState();
    } catch (e) {
      revert();
      this.recommit();
      throw this.unsavedError(e);
    }
  }

  /** A port opened for an attachment that was then not made: out of the data plane and
   *  closed now (a commit), not at the next change — an AF_XDP socket left bound would
   *  keep the queue busy for the next attach of that netdev (helper-75). */
  private closePort(slot: number): void {
    this.dp!.removePort(slot);
    try {
      this.commit();
    } catch {
      // the old configuration is still the running one; the next commit closes it
    }
  }

  /** Commits the model put back after a change the state file could not keep. */
  private recommit(): void {
    try {
      this.commit();
    } catch (e) {
      this.log.error(`could not go back to the previous configuration: ${(e as Error).message}`);
    }
  }

  /** A change not made because the state file could not keep it: it would have run until
   *  the next restart, then vanished, while the command said it failed. */
  private unsavedError(e: unknown): VfpError {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return systemError(`nothing was changed: the state file ${this.statePath} cannot be written (${why}), and a change it does not keep would be lost at the next restart; make the state directory writable (and not full)`);
  }

  /** attachNow, and the MTU advice for the reply (the request's client should see it,
   *  not only the daemon's log), and the largest pod MTU the overlay carries when the
   *  underlay's MTU is known. */
  /** A representor's port. One detached a moment ago (a pod's DEL, then the next pod's
   *  ADD on the same VF) may still have its AF_XDP socket closing (the kernel releases it
   *  a grace period later, often later in SKB mode): its queue reads busy until then, and
   *  the attach failed (helper-70: 63 of 200 immediate re-attaches). Tried again for up
   *  to a second; a queue another AF_XDP user holds stays refused, with its error. */
  private async openRepresentorPort(representor: string, netns: string | undefined): Promise<PortInfo> {
    for (const until = Date.now() + 1000; ;) {
      try {
        return await this.dp!.openPortAsync(this.podBackend, this.portOpts(representor, netns, 'representor'), representor);
      } catch (e) {
        if (!/Device or resource busy/.test((e as Error).message) || Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /**
   * The underlay MTU the overlay counts on (pods told it by ICMP too big, their MTU
   * advice, the engine's mtu_exceeded check) is what the uplink's port carries, not only
   * the netdev's: an AF_XDP UMEM frame holds at most 4096 bytes less its headroom (no
   * multi-buffer), a DPDK port an mbuf's room (no scatter) or the device's limit. A 9000
   * underlay taken at its word lost every frame between the two, unsaid (helper-69).
   */
  private clampUplinkMtu(): void {
    const c = this.cfg;
    const mf = this.uplink?.maxFrame;
    if (!mf || !this.uplinkMtu) return;
    const carried = mf - 14 - (c.uplink.vlan !== undefined ? 4 : 0);
    if (carried >= this.uplinkMtu) return;
    const fix = this.uplink!.backend === 'afxdp'
      ? 'AF_XDP frames are one UMEM frame (4096 bytes at most); for a jumbo underlay use backend afpacket, or DPDK with dpdk.mbufDataSize above the frame'
      : 'raise dpdk.mbufDataSize (and, on a net_af_packet vdev, its framesz=) above the frame';
    this.log.warn(`uplink ${c.uplink.ifname ?? c.uplink.dev}: its ${this.uplink!.backend} port carries frames of at most ${mf} bytes, so the underlay MTU taken is ${carried}, not the netdev's ${this.uplinkMtu}: pods are told (and checked against) ${carried}; ${fix}`);
    this.uplinkMtu = carried;
    if (c.tunnel.mtu && c.tunnel.mtu > carried) {
      this.log.warn(`tunnel.mtu ${c.tunnel.mtu} is above the ${carried} the uplink's port carries: outer frames between the two are dropped by the port (tx_too_big, tx_oversize) with no ICMP too big to the pod; give tunnel.mtu ${carried} or less`);
    }
  }

  private async attachNow(raw: AttachRequest): Promise<Attached & { mtuWarning?: string; macWarning?: string; overlayMtu?: number }> {
    // (Its schema refuses the name too; a start's altname lookup may have given it since.)
    if (raw.representor === UPLINK_PORT_NAME) throw invalid(`${uplinkNameRefusal(raw.representor, '', raw.netns)}; nothing attached`);
    const a = attachSchema.parse(raw);
    if (a.port && a.port !== this.cfg.dstPort) {
      throw invalid(`the attachment asks for VXLAN port ${a.port}, but this data plane uses ${this.cfg.dstPort}; drop vxlan.port or set dstPort in the data-plane config`);
    }
    const c = this.cfg;
    const disagree = (field: string, asked: unknown, have: unknown, fix: string) => {
      throw invalid(`vxlan.${field} ${JSON.stringify(asked)} disagrees with this data plane (${JSON.stringify(have)}); ${fix}`);
    };
    if (a.local && a.local !== c.uplink.vtep) disagree('local', a.local, c.uplink.vtep, 'drop vxlan.local or fix uplink.vtep');
    if (a.ttl && a.ttl !== c.tunnel.ttl) disagree('ttl', a.ttl, c.tunnel.ttl, 'drop vxlan.ttl or set tunnel.ttl in the data-plane config');
    if (a.learning !== undefined && a.learning !== c.learn) disagree('learning', a.learning, c.learn, 'drop vxlan.learning or set learn in the data-plane config');
    if (a.dev && a.dev !== (c.uplink.ifname ?? c.uplink.dev)) disagree('dev', a.dev, c.uplink.ifname ?? c.uplink.dev, 'drop vxlan.dev or fix uplink.ifname');
    if (a.remote && isIP(a.remote) !== isIP(this.cfg.uplink.vtep)) throw invalid(`vxlan.remote ${a.remote} is not the same IP family as this node's VTEP ${this.cfg.uplink.vtep}`);
    // Tenancy first, before anything is touched. The owner is what vfplane-cni sends;
    // the operator's attachments carry none.
    if (a.owner) {
      const why = tenancyRefusal(c, a.owner.podNamespace, a.vni);
      if (why) throw invalid(why);
    }
    const refusal = () => conflict(`VF ${a.pci} is not allocated to container ${a.owner!.containerId}${a.owner!.ifname ? ` (${a.owner!.ifname})` : ''} in the allocation store under ${this.storeOf(a)}: the ADD that asked for this attachment was undone (it timed out or was killed) or the VF was released; nothing attached`);
    if (this.notHeld([a]).length) throw refusal();
    // An attachment of this VF (or representor) whose pod no longer holds the VF is stale:
    // its release missed us (the data plane was busy failing, or something released the
    // VF without detaching). The allocation store says who holds the VF now; when that is
    // the pod asking, the old attachment goes rather than refusing the new pod.
    for (const old of [...this.atts.values()].filter((o) => o.representor === a.representor || (a.pci && o.pci === a.pci))) {
      if (this.staleFor(old, a)) {
        this.log.warn(`replacing the attachment of ${old.representor} (VF ${old.pci}, VNI ${old.vni}, container ${old.owner?.containerId ?? '?'}): the allocation store gives the VF to container ${a.owner!.containerId} now`);
        await this.detachNow({ representor: old.representor });
      }
    }
    // An attachment being made (a start restores several at once) that this one would
    // clash with is waited for, then everything is checked again: as one after another,
    // the earlier one's outcome decides (attached: this one is refused; waiting for its
    // representor, or refused: this one goes ahead). The checks and the reservation run
    // without a pause between them.
    const clash = (o: AttachRequest) => o.representor === a.representor || (o.vni === a.vni && o.mac.toLowerCase() === a.mac.toLowerCase()) || (!!a.pci && o.pci === a.pci);
    const under = [...this.attaching.values()].find((x) => clash(x.req));
    if (under) {
      await under.done;
      return this.attachNow(raw);
    }
    const same = this.atts.get(a.representor);
    if (same) throw conflict(`representor ${a.representor} is already attached (VNI ${same.vni}, MAC ${same.mac}${same.pci ? `, VF ${same.pci}` : ''}); detach it first`);
    for (const o of this.atts.values()) {
      if (o.vni === a.vni && o.mac.toLowerCase() === a.mac.toLowerCase()) {
        throw conflict(`MAC ${a.mac} is already attached on VNI ${a.vni} through ${o.representor}; each pod interface needs its own MAC`);
      }
      if (a.pci && o.pci === a.pci) throw conflict(`VF ${a.pci} is already attached through ${o.representor}`);
    }
    const work = this.attachReserved(a, refusal);
    this.attaching.set(a.representor, { req: a, done: work.then(() => undefined, () => undefined) });
    let own: string;
    try {
      return await work;
    } catch (e) {
      if (!(e instanceof AltName)) throw e;
      own = e.own;
    } finally {
      this.attaching.delete(a.representor);
    }
    if (own === UPLINK_PORT_NAME) throw invalid(uplinkNameRefusal(own, ` (named by its altname ${a.representor}${a.netns ? ` in ${a.netns}` : ''})`, a.netns) + '; nothing attached');
    this.log.info(`representor ${a.representor}${a.netns ? ` in ${a.netns}` : ''} is an altname of ${own}: attached as ${own}`);
    return this.attachNow({ ...raw, representor: own });
  }

  /** attachNow's work once its checks passed and the representor, MAC and VF are
   *  reserved (this.attaching). */
  private async attachReserved(a: AttachRequest, refusal: () => VfpError): Promise<Attached & { mtuWarning?: string; macWarning?: string; overlayMtu?: number }> {
    const c = this.cfg;
    // The link, its MTU and addresses without waiting for the RTNL lock, which the VF's
    // move into the pod (running alongside this attach) holds through its rcu_barrier().
    const l = await linkAddrs(a.netns ?? null, a.representor);
    if (!l) throw notFound(`representor ${a.representor}${a.pci ? ` of VF ${a.pci}` : ''} does not exist${a.netns ? ` in ${a.netns}` : ''}; is the VF (still) there?`);
    // Named by an altname: the sysctls, the claim and the port go by the netdev's own
    // name, and so does the attachment (attachNow makes it again under that name).
    if (l.name && l.name !== a.representor) throw new AltName(l.name);
    this.refuseNotRepresentor(a, l.ifindex);
    refuseHostNetdev(l, `representor ${a.representor}`);
    this.refuseSameNetdev(a, l.ifindex);
    if (a.remote && !this.peers.some((p) => p.vtep === a.remote)) {
      // Peers are every VNI's (flooded to, learned from): a pod's network config (an
      // attachment vfplane-cni asked for) adding one would hand that address every
      // tenant's floods and let it inject as a trusted VTEP. Only the operator adds peers.
      if (a.owner?.containerId) {
        throw invalid(`vxlan.remote ${a.remote} is not a peer of this data plane, and a pod's network configuration cannot add one (peers are shared by every VNI: each is flooded to and learned from); ` +
          `add it to the data plane's config (peers) or with \`vfplane dataplane peer-add ${a.remote}\`, or drop remote from the network configuration`);
      }
      this.checkPeerAddress(a.remote);
      this.peers.push({ vtep: a.remote });
    }
    // A pod's IP packet of its MTU becomes an outer IP packet 50 bytes larger (70 over
    // IPv6: inner Ethernet, VXLAN, UDP, outer IP), as the engine's mtu_exceeded check
    // counts it; an outer VLAN tag is L2 and costs no MTU. The representor's MTU stands
    // for the pod's when the request does not give it (vfplane-cni does).
    const overhead = this.overlayOverhead();
    const mtu = c.tunnel.mtu || this.uplinkMtu;
    const podMtu = a.mtu ?? l.mtu;
    const overlayMtu = mtu && mtu - overhead >= 68 ? mtu - overhead : undefined;
    let mtuNote = '';
    let mtuWarning: string | undefined;
    if (!a.mtuAuto && mtu && podMtu && podMtu + overhead > mtu) {
      const who = a.mtu ? `the pod interface of ${a.representor}${a.pci ? ` (VF ${a.pci})` : ''}` : a.representor;
      mtuWarning = `${who} has MTU ${podMtu}, which needs an underlay MTU of ${podMtu + overhead}; the uplink has ${mtu}, so the pod's larger frames are dropped (mtu_exceeded)${c.icmpTooBig ? ' and answered with ICMP too big, which TCP adapts to at the cost of a round trip a destination (IPv4 packets without DF are lost; IPv6 packets are never fragmented, so each is answered)' : ''}. Give the pod an MTU ≤ ${mtu - overhead} (CNI "mtu") or raise the underlay MTU`;
      // Logged once per representor and MTUs: pods come and go on the same VFs with the
      // same network config, and the advice does not change. Every reply carries it.
      const key = `${a.representor}\u0000${podMtu}\u0000${mtu}`;
      if (!this.mtuWarned.has(key)) {
        this.mtuWarned.add(key);
        this.log.warn(mtuWarning);
      }
      mtuNote = `; its MTU ${podMtu} is over the ${mtu - overhead} the underlay carries`;
    }
    // A MAC a pod behind another VTEP has on this VNI (learned from it, or a static FDB
    // entry): this node's pods' frames to it reach this pod from now on, as the local
    // table is asked first. Said, not refused: a pod moved here keeps its MAC, and the
    // entry ages out; a pod given its MAC by its request may have taken another's.
    const lk = mac(a.mac);
    const elsewhere = this.dp!.learnedGet(a.vni, lk)?.vtep ?? this.fdb.get(a)?.vtep;
    const macWarning = elsewhere
      ? `MAC ${a.mac} on VNI ${a.vni} is a pod's behind VTEP ${elsewhere}: this node's pods' frames to it go to ${a.representor} from now on; give this pod a MAC of its own, unless it is that pod, moved here`
      : undefined;
    if (macWarning) this.log.warn(macWarning);
    // The claim's changes (forwarding, IPv6, up) wait for RTNL while the move holds it;
    // the port's setup waits for grace periods. They run at once: the claim on netops'
    // thread, the port here.
    // A representor below its pod interface's MTU drops the pod's larger frames before
    // the data plane sees them (and the port's slots are sized from its MTU): raised to
    // the pod's first, and given back with the rest of the claim.
    // An AF_XDP port carries one UMEM frame whatever the MTU, and native XDP on a veth
    // refuses an MTU over 3506 (4 KiB pages), which would force the slower SKB mode: a
    // raise past that gains nothing and costs every frame (helper-70); the attach says
    // what the pod loses (below).
    let raisedFrom: number | undefined;
    const raiseTo = a.mtu && this.podBackend === 'afxdp' ? Math.min(a.mtu, AFXDP_VETH_MAX_MTU) : a.mtu;
    const raising = !!(raiseTo && l.mtu && raiseTo > l.mtu);
    // Claimed first: the journal has the netdev as it was (its MTU too, when it is to be
    // raised) before anything changes it, so a kill at any point leaves nothing the next
    // start does not give back (helper-74). A netdev another data plane holds is refused
    // here (claimNetdev throws at once), before its MTU is touched; the claim's settings
    // run alongside the raise and the port's open.
    const claiming = claimNetdev(this.claims, a.representor, l.ifindex, a.netns, undefined, { wasUp: l.up, ...(raising ? { wasMtu: l.mtu } : {}) });
    // Awaited below, after the port's open: a claim refused meanwhile must not count as a
    // rejection nobody handles, which ends the process.
    claiming.catch(() => undefined);
    if (raising) {
      try {
        await netRun(a.netns ?? null, [{ op: 'set', name: a.representor, mtu: raiseTo }]);
        raisedFrom = l.mtu;
        this.log.info(`${a.representor}: MTU ${l.mtu} raised to ${raiseTo === a.mtu ? `its pod interface's ${a.mtu}` : `${raiseTo} (its pod interface has ${a.mtu}; an AF_XDP port carries no more)`} (given back at detach)`);
      } catch (e) {
        const w = `representor ${a.representor} keeps MTU ${l.mtu}, below its pod interface's ${a.mtu} (${(e as Error).message}): the pod's frames over ${l.mtu} bytes are dropped before the data plane; give the pod an MTU ≤ ${l.mtu} (CNI "mtu")`;
        this.log.warn(w);
        mtuWarning = mtuWarning ? `${mtuWarning}; ${w}` : w;
      }
    }
    // The raised MTU back when no claim took it over (a released claim gives it back).
    const unraise = () => (raisedFrom === undefined ? undefined : netRun(a.netns ?? null, [{ op: 'set', name: a.representor, mtu: raisedFrom }]).catch(() => undefined));
    let port: PortInfo;
    try {
      port = await this.openRepresentorPort(a.representor, a.netns);
    } catch (e) {
      await claiming.then((c) => releaseNetdev(this.claims, c), unraise);
      throw e;
    }
    let claimed: Claim;
    try {
      claimed = await claiming;
    } catch (e) {
      this.closePort(port.slot);
      await unraise();
      throw e;
    }
    this.noteStackDrop(port.slot, a.representor);
    if (claimed.note) this.log.info(`${a.representor}: ${claimed.note}`);
    // A pod interface over what its representor's port carries (an AF_XDP port: one UMEM
    // frame) loses its larger frames there, before the engine: no ICMP too big is sent
    // for them (they are counted as the port's rx_oversize). Said, with the fix.
    if (port.maxFrame && podMtu && podMtu + 14 > port.maxFrame) {
      const w = `the pod interface of ${a.representor} has MTU ${podMtu}, but its ${port.backend} port carries frames of at most ${port.maxFrame} bytes: the pod's packets over ${port.maxFrame - 14} bytes are lost at the port (rx_oversize), and no ICMP too big tells it; give the pod an MTU ≤ ${port.maxFrame - 14} (CNI "mtu"), or use the afpacket backend for jumbo pods`;
      this.log.warn(w);
      mtuWarning = mtuWarning ? `${mtuWarning}; ${w}` : w;
    }
    // Released while the port was being opened: nothing may forward for it.
    if (this.notHeld([a]).length) {
      this.closePort(port.slot);
      await releaseNetdev(this.claims, claimed);
      throw refusal();
    }
    const att: Attached = { ...a, slot: port.slot, portInfo: port, claimed, ifindex: l.ifindex };
    this.atts.set(a.representor, att);
    // mtuAuto: vfplane-cni gives the pod the overlay's MTU when its own is over it.
    const podHas = podMtu && a.mtuAuto && overlayMtu ? Math.min(podMtu, overlayMtu) : podMtu;
    if (podHas) this.podMtus.set(a.representor, podHas);
    else this.podMtus.delete(a.representor);
    const opened = raisedFrom !== undefined ? raiseTo : l.mtu;
    if (opened) this.portMtus.set(a.representor, opened);
    else this.portMtus.delete(a.representor);
    try {
      this.commit();
    } catch (e) {
      this.atts.delete(a.representor);
      this.closePort(port.slot);
      await releaseNetdev(this.claims, claimed);
      throw e;
    }
    this.log.info(`attached ${a.representor}${a.pci ? ` (VF ${a.pci})` : ''} on VNI ${a.vni}, MAC ${a.mac}, epoch ${this.epoch}${mtuNote}`);
    // A copy: what this.atts holds stays as it is saved.
    return { ...att, ...(mtuWarning ? { mtuWarning } : {}), ...(macWarning ? { macWarning } : {}), ...(overlayMtu ? { overlayMtu } : {}) };
  }

  /** Every attachment with its representor's state: the active ones, then those waiting
   *  for their representor (with why), for status and metrics. */
  private attachmentList(): { a: AttachRequest | Attached; state: string; why?: string }[] {
    return [
      ...[...this.atts.values()].map((a) => ({ a, state: representorState(a) })),
      ...[...this.waiting.values()].map(({ req, why }) => ({ a: req, state: 'waiting', why })),
    ];
  }

  /** A new peer's address as peer-add and an operator's attach take it: unicast (the
   *  config's rule), of the VTEP's family, not this node's own VTEP. */
  private checkPeerAddress(vtep: string): void {
    const r = peerSchema.shape.vtep.safeParse(vtep);
    if (!r.success) throw invalid(`peer ${vtep}: ${r.error.issues[0]?.message ?? 'not a peer address'}`);
    if (isIP(vtep) !== isIP(this.cfg.uplink.vtep)) throw invalid(`peer ${vtep} is not the same IP family as this node's VTEP ${this.cfg.uplink.vtep}`);
    if (vtep === this.cfg.uplink.vtep) throw invalid(`${vtep} is this node's own VTEP (uplink.vtep); a node is not its own peer: give the address of a remote node's VTEP`);
  }

  /**
   * A netdev is one port: one attached under another name is refused naming both. An
   * altname never gets here (an attachment goes by the netdev's own name, and one under
   * way holds that name), but a netdev renamed since its attach does. Two ports on one
   * netdev would each take the other's frames (and the second XSK bind or claim fails,
   * with the first's program possibly taken for a stale one).
   */
  private refuseSameNetdev(a: AttachRequest, ifindex: number): void {
    const ns = netnsKey(a.netns);
    for (const o of this.atts.values()) {
      if (o.representor !== a.representor && o.ifindex === ifindex && netnsKey(o.netns) === ns) {
        throw conflict(`representor ${a.representor}${a.netns ? ` in ${a.netns}` : ''} is netdev ${ifindex}, already attached as ${o.representor} (VNI ${o.vni}, MAC ${o.mac}): a netdev takes one attachment (was it renamed?): detach ${o.representor} first`);
      }
    }
  }

  /** Netdevs that are no VF's representor, refused before anything changes: loopback
   *  (claimed, its IPv6 would go off and its frames past the stack: the namespace would
   *  lose 127.0.0.1 and ::1), and the uplink itself (one netdev, one claim: its detach
   *  would give back the running uplink's settings and drop it from the journal). */
  private refuseNotRepresentor(a: AttachRequest, ifindex: number): void {
    const where = a.netns ? ` in ${a.netns}` : '';
    if (ifindex === LOOPBACK_IFINDEX || a.representor === 'lo') {
      throw invalid(`representor ${a.representor}${where} is a loopback device, not a VF's representor: the data plane would take it over and cut the namespace off from itself; give the VF's representor netdev`);
    }
    const u = this.uplinkNetdev;
    if (u && u.ifindex === ifindex && u.netns === netnsId(a.netns)) {
      throw invalid(`representor ${a.representor}${where} is this data plane's uplink (ifindex ${ifindex}); give the VF's representor netdev`);
    }
    // A VF's own netdev carries the pod's traffic on the VF side: forwarding for it would
    // take the host end of nothing. (Known from this namespace's sysfs only.)
    const own = a.netns ? null : vfOfNetdev(a.representor);
    if (own) {
      throw invalid(ownNetdevRefusal(`representor ${a.representor}`, own));
    }
  }

  /** Whether `old` is an attachment for a VF the allocation store now gives to the pod
   *  making request `a` (another container): a DEL that never reached this daemon. */
  private staleFor(old: Attached, a: AttachRequest): boolean {
    const want = a.owner?.containerId;
    if (!want || !a.pci || old.pci !== a.pci || old.owner?.containerId === want) return false;
    // An unreadable store proves nothing: the conflict stands.
    return readStore(this.storeOf(a), false, (store) => store.get(a.pci!)?.owner.containerId === want,
      this.storeUnreadable(this.storeOf(a), `the attachment of ${old.representor} stands against ${a.representor}'s`));
  }

  /** Said once per store and message: an allocation store the data plane cannot read (a
   *  newer vfplane's, after a rollback; locked; damaged) is not silently taken for none. */
  private readonly storeSaid = new Set<string>();
  private storeUnreadable(dir: string, consequence: string): (why: string) => void {
    return (why) => {
      const key = `${dir}\u0000${why}`;
      if (this.storeSaid.has(key)) return;
      this.storeSaid.add(key);
      this.log.warn(`the allocation store in ${dir} could not be read: ${why}; ${consequence}`);
    };
  }

  private async detachNow(key: { representor?: string; pci?: string }): Promise<Attached | null> {
    let att: Attached | undefined;
    if (key.representor) att = this.atts.get(key.representor);
    else if (key.pci) att = [...this.atts.values()].find((a) => a.pci === key.pci);
    if (!att) return null;
    this.atts.delete(att.representor);
    this.podMtus.delete(att.representor);
    this.portMtus.delete(att.representor);
    this.grew.delete(`refused:${att.representor}`); // its port's counters go with it
    this.grew.delete(`truncated:${att.representor}`);
    this.dp!.removePort(att.slot);
    this.commit();
    await releaseNetdev(this.claims, att.claimed);
    this.log.info(`detached ${att.representor} (VNI ${att.vni}), epoch ${this.epoch}`);
    return att;
  }

  /** The reply's note when a socket change touches what the config file declares (by
   *  `what`, e.g. "peer 192.0.2.2"): the state file keeps only what the file does not
   *  declare, and a restart or reload applies the file again, so the change is undone
   *  then. Logged too. {} when the file declares nothing of it. */
  private declared(what: string | null): { note?: string } {
    if (!what) return {};
    const note = `the data-plane config declares ${what}: this change lasts until the data plane restarts or reloads its config (which apply the file again); change the config file to keep it`;
    this.log.warn(note);
    return { note };
  }

  /** fdb-add with `entries`: all of them in one change (one commit, one state-file write)
   *  or none; a controller syncing thousands of entries pays for one (helper-78: 10k
   *  single fdb-adds took 240 s). Each VTEP must be a peer; a key given twice is refused. */
  private fdbAddMany(entries: FdbEntry[]): Record<string, unknown> {
    refuseRepeats(entries);
    const peers = new Set(this.peers.map((p) => p.vtep));
    const stray = [...new Set(entries.map((f) => f.vtep).filter((v) => !peers.has(v)))];
    if (stray.length) throw notFound(`VTEP${stray.length > 1 ? 's' : ''} ${listSome(stray)} ${stray.length > 1 ? 'are' : 'is'} not a peer; add ${stray.length > 1 ? 'them' : 'it'} first (\`vfplane dataplane peer add\`, op peer-add); nothing was added`);
    const replaced = entries.filter((f) => this.fdb.has(f)).length;
    const prev = this.fdb.clone();
    this.change(() => entries.forEach((f) => this.fdb.set(f)), () => (this.fdb = prev));
    const declared = fdbKeys(this.cfg.fdb);
    const inFile = entries.filter((f) => declared.has(fdbKey(f)));
    const pods = new Set([...this.atts.values()].map((a) => fdbKey(a)));
    const ofPods = entries.filter((f) => pods.has(fdbKey(f)));
    const notes = [
      this.declared(inFile.length ? `the static entr${inFile.length > 1 ? 'ies' : 'y'} for ${listSome(inFile.map((f) => `${f.mac} on VNI ${f.vni}`))}` : null).note,
      ofPods.length ? `${listSome(ofPods.map((f) => `${f.mac} on VNI ${f.vni}`))} ${ofPods.length > 1 ? 'are MACs' : 'is the MAC'} of pods attached here: their frames go to those pods (local pods come before the FDB) until they are detached` : undefined,
    ].filter(Boolean);
    if (notes[1]) this.log.warn(notes[1]);
    return { epoch: this.epoch, added: entries.length - replaced, replaced, ...(notes.length ? { note: notes.join('; ') } : {}) };
  }

  /** fdb-del with `entries`: all of them in one change, or none when one is not there. */
  private fdbDelMany(keys: { vni: number; mac: string }[]): Record<string, unknown> {
    refuseRepeats(keys);
    const missing = keys.filter((k) => !this.fdb.has(k));
    if (missing.length) throw notFound(`no static FDB entr${missing.length > 1 ? 'ies' : 'y'} for ${listSome(missing.map((k) => `${k.mac} on VNI ${k.vni}`))}; nothing was deleted`);
    const prev = this.fdb.clone();
    this.change(() => keys.forEach((k) => this.fdb.delete(k)), () => (this.fdb = prev));
    const declared = fdbKeys(this.cfg.fdb);
    const inFile = keys.filter((k) => declared.has(fdbKey(k)));
    return { epoch: this.epoch, deleted: keys.length, ...this.declared(inFile.length ? `the static entr${inFile.length > 1 ? 'ies' : 'y'} for ${listSome(inFile.map((f) => `${f.mac} on VNI ${f.vni}`))}` : null) };
  }

  private parse<T>(schema: z.ZodType<T>, req: Record<string, unknown>): T {
    const { op: _op, id: _id, ...rest } = req;
    const r = schema.safeParse(rest);
    if (!r.success) throw invalid(`${String(req.op)}: ${zodMessage(r.error, rest, '', schema)}`); // a request, not the config
    return r.data;
  }

  /** Refusals logged per op: at most REFUSALS_LOGGED in a REFUSAL_WINDOW_MS window, then
   *  counted, and the count said with the next one logged: a client sending bad requests
   *  in a loop filled the log (helper-72: 460 lines in 20 s). */
  private refusals = new Map<string, { since: number; logged: number; unsaid: number }>();
  private logRefusal(op: string, line: string): void {
    const now = Date.now();
    let r = this.refusals.get(op);
    if (!r || now - r.since >= REFUSAL_WINDOW_MS) {
      const unsaid = r?.unsaid ?? 0;
      r = { since: now, logged: 0, unsaid };
      this.refusals.set(op, r);
    }
    if (r.logged >= REFUSALS_LOGGED) {
      r.unsaid++;
      return;
    }
    r.logged++;
    this.log.warn(r.unsaid ? `${line} (and ${r.unsaid} more ${op} request(s) refused before it, not logged)` : line);
    r.unsaid = 0;
  }

  /** handle(), with what a socket request changed (or was refused) in the log, as SIGHUP
   *  and attach/detach log theirs: an operator reading the log of a node sees every
   *  change to its peers, FDB and flood lists, and who refused what. */
  private async handleLogged(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const op = typeof req.op === 'string' ? req.op : '';
    const logged = ['peer-add', 'peer-del', 'fdb-add', 'fdb-del', 'flood-set', 'reload'].includes(op);
    // attach and detach log what they did themselves; a refusal only here (helper-79: a
    // CNI ADD refused at the VNI limit left nothing in the data plane's log).
    const refusalLogged = logged || op === 'attach' || op === 'detach';
    try {
      const r = await this.handle(req);
      if (logged && op !== 'reload') this.log.info(`control socket: ${op} ${requestSummary(req)}, epoch ${this.epoch}`); // reload logs its own
      return r;
    } catch (e) {
      if (refusalLogged) this.logRefusal(op, `control socket: ${op}${op === 'reload' ? '' : ` ${requestSummary(req)}`} refused: ${(e as Error).message}`);
      throw e;
    }
  }

  async handle(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    switch (req.op) {
      case 'status':
        this.parse(NO_ARGS, req);
        return this.status();
      case 'reload':
        this.parse(NO_ARGS, req);
        return this.reload();
      case 'stats': {
        this.parse(NO_ARGS, req);
        // Each port's own drops (what its backend lost before the workers saw it: a full
        // kernel ring, a truncated frame…), beside the workers' counters.
        const names = this.portNames();
        const portDrops = Object.fromEntries([...names].map(([slot, name]) => [name, this.dp!.backendCounters(slot)?.drops ?? {}]));
        // Whose each attached port is (a pod with several networks has several), as status
        // says it: stats alone named representors only (helper-89).
        const ports: Record<string, { uplink: true } | { vni: number; owner?: Record<string, string> }> = Object.fromEntries([...this.atts.values()].map((a) => [a.representor, { vni: a.vni, ...(a.owner ? { owner: a.owner } : {}) }]));
        const up = this.uplink ? names.get(this.uplink.slot) : undefined;
        if (up) ports[up] = { uplink: true };
        // Every drop reason, 0 until it counts (as vfplane_drops_total has): a script sees
        // the same keys from the start, not a key appearing with the first drop.
        const counters = countersJson(this.counters(), names);
        counters.drops = { ...Object.fromEntries(this.dp!.dropReasons().map((r) => [r, 0])), ...(counters.drops as Record<string, number>) };
        return { counters, portDrops, ports };
      }
      case 'attach': {
        const a = this.parse(attachSchema, req);
        const att = await this.attachNow(a);
        // It supersedes what waited for this representor or VF (a pod's ADD after a reboot).
        for (const [rep, w] of [...this.waiting]) if (rep === att.representor || (att.pci && w.req.pci === att.pci)) this.waiting.delete(rep);
        try {
          this.saveState();
        } catch (e) {
          await this.detachNow({ representor: att.representor });
          throw this.unsavedError(e);
        }
        const mine = this.fromConfig(att.representor);
        // As fdb-add's: what the client should hear besides "done" goes in the note.
        const note = [this.declared(mine ? `the attachment of ${att.representor}` : null).note, att.mtuWarning, att.macWarning].filter(Boolean).join('; ');
        return { attached: { representor: att.representor, vni: att.vni, mac: att.mac, slot: att.slot }, epoch: this.epoch, ...(att.overlayMtu ? { overlayMtu: att.overlayMtu } : {}), ...(note ? { note } : {}) };
      }
      case 'detach': {
        const k = this.parse(z.strictObject({ representor: z.string().optional(), pci: z.string().optional() })
          .refine((x) => x.representor || x.pci, 'give representor or pci'), req);
        const had = k.representor ? this.atts.get(k.representor) ?? await this.attachedByAltname(k.representor) : [...this.atts.values()].find((a) => a.pci === k.pci);
        if (had && k.representor) k.representor = had.representor;
        const waits = [...this.waiting].find(([rep, w]) => (k.representor ? rep === k.representor : w.req.pci === k.pci));
        if (!had && waits) {
          this.waiting.delete(waits[0]);
          try {
            this.saveState();
          } catch (e) {
            this.waiting.set(waits[0], waits[1]);
            throw this.unsavedError(e);
          }
          this.log.info(`dropped the waiting attachment ${waits[0]} (VNI ${waits[1].req.vni})`);
          return { removed: true, epoch: this.epoch };
        }
        if (!had) return { removed: false, epoch: this.epoch };
        // The state without it first: a detach the file cannot keep is not made (undoing it
        // would take a new claim, which the same state directory may refuse too). Save a
        // pod's (vfplane-cni's, its VF in a store): its CNI DEL, failed, would be retried
        // for ever with the pod's VF and address held; and a restart before the file is
        // written drops it again, its VF no longer held for its container (notHeld).
        let note: string | null = null;
        try {
          this.saveState(had.representor);
        } catch (e) {
          if (!(had.pci && had.owner?.containerId)) throw this.unsavedError(e);
          note = this.saveOrKeep(`the detach of ${had.representor}`, had.representor);
        }
        const att = await this.detachNow(k);
        const mine = this.fromConfig(had.representor);
        const declared = this.declared(mine ? `the attachment of ${had.representor}` : null);
        const notes = [note, declared.note].filter(Boolean);
        return { removed: !!att, epoch: this.epoch, ...(notes.length ? { note: notes.join('; ') } : {}) };
      }
      case 'peer-add': {
        const p = this.parse(peerSchema, req);
        this.checkPeerAddress(p.vtep);
        const i = this.peers.findIndex((x) => x.vtep === p.vtep);
        const prev = this.peers.slice();
        // An update replaces the peer: one given without a MAC drops the MAC it had, and
        // its underlay MAC is learnt by ARP/ND from then on. The reply says so.
        const macDropped = i >= 0 && prev[i]!.mac && !p.mac ? prev[i]!.mac : undefined;
        this.change(() => (i >= 0 ? (this.peers[i] = p) : this.peers.push(p)), () => (this.peers = prev));
        return { epoch: this.epoch, ...(macDropped ? { macDropped } : {}), ...this.declared(this.cfg.peers.some((x) => x.vtep === p.vtep) ? `peer ${p.vtep}` : null) };
      }
      case 'peer-del': {
        const p = this.parse(z.strictObject({ vtep: ipString('the peer VTEP') }), req);
        if (!this.peers.some((x) => x.vtep === p.vtep)) throw notFound(`${p.vtep} is not a peer`);
        const using = this.fdb.values().filter((f) => f.vtep === p.vtep);
        if (using.length) {
          const first = using[0]!;
          throw conflict(`${using.length} static FDB entr${using.length > 1 ? 'ies point' : 'y points'} at ${p.vtep} (${listSome(using.map((f) => `VNI ${f.vni} ${f.mac}`))}); ` +
            `delete ${using.length > 1 ? 'them' : 'it'} first (\`vfplane dataplane fdb del --vni ${first.vni} --mac ${first.mac}\`), or point ${using.length > 1 ? 'them' : 'it'} at another peer (\`fdb add\` replaces an entry); nothing was changed`);
        }
        const prev = this.peers.slice();
        const prevF = new Map(this.floods);
        // The peer leaves the flood lists that name it; the reply says which, and how many
        // VTEPs each still floods to (none: the VNI's floods reach no other node now).
        const floodsTrimmed = [...this.floods].filter(([, l]) => l.includes(p.vtep)).map(([vni, l]) => ({ vni, left: l.length - 1 }));
        this.change(() => {
          this.peers = this.peers.filter((x) => x.vtep !== p.vtep);
          for (const [v, l] of this.floods) this.floods.set(v, l.filter((x) => x !== p.vtep));
        }, () => ((this.peers = prev), (this.floods = prevF)));
        return { epoch: this.epoch, ...(floodsTrimmed.length ? { floodsTrimmed } : {}), ...this.declared(this.cfg.peers.some((x) => x.vtep === p.vtep) ? `peer ${p.vtep}` : null) };
      }
      case 'fdb-add': {
        if ('entries' in req) return this.fdbAddMany(this.parse(z.strictObject({ entries: fdbBatch(fdbSchema) }), req).entries);
        const f = this.parse(fdbSchema, req);
        if (!this.peers.some((p) => p.vtep === f.vtep)) throw notFound(`VTEP ${f.vtep} is not a peer; add it first: \`vfplane dataplane peer add ${f.vtep}\` (op peer-add)`);
        // A replaced entry moves to the end (as the newest); a failed change puts the
        // order back too. A new key needs no copy of the table to be undone.
        const prev = this.fdb.has(f) ? this.fdb.clone() : null;
        this.change(() => this.fdb.set(f), () => (prev ? (this.fdb = prev) : this.fdb.delete(f)));
        const decl = this.declared(fdbKeys(this.cfg.fdb).has(fdbKey(f)) ? `the static entry for ${f.mac} on VNI ${f.vni}` : null);
        // Local pods come before the FDB (from_pod): an entry for one of them is kept, and
        // sends nothing while the pod is here.
        const pod = [...this.atts.values()].find((a) => a.vni === f.vni && a.mac === f.mac);
        if (pod) {
          const note = `${f.mac} on VNI ${f.vni} is the MAC of the pod attached on ${pod.representor}: its frames go to that pod (local pods come before the FDB), not to ${f.vtep}, until it is detached`;
          this.log.warn(note);
          return { epoch: this.epoch, note: [decl.note, note].filter(Boolean).join('; ') };
        }
        return { epoch: this.epoch, ...decl };
      }
      case 'fdb-del': {
        if ('entries' in req) return this.fdbDelMany(this.parse(z.strictObject({ entries: fdbBatch(FDB_KEY) }), req).entries);
        const f = this.parse(FDB_KEY, req);
        if (!this.fdb.has(f)) throw notFound(`no static FDB entry for ${f.mac} on VNI ${f.vni}`);
        const prev = this.fdb.clone(); // the order, too, if the change fails
        this.change(() => this.fdb.delete(f), () => (this.fdb = prev));
        return { epoch: this.epoch, ...this.declared(fdbKeys(this.cfg.fdb).has(fdbKey(f)) ? `the static entry for ${f.mac} on VNI ${f.vni}` : null) };
      }
      case 'flood-set': {
        // vteps null: the VNI has no list of its own again, and every peer gets a copy.
        const f = this.parse(z.strictObject({ vni: vniNumber, vteps: z.array(ipString('a flood VTEP')).nullable() }), req);
        const stray = f.vteps?.find((v) => !this.peers.some((p) => p.vtep === v));
        if (stray) throw notFound(`VTEP ${stray} is not a peer; add it first: \`vfplane dataplane peer add ${stray}\` (op peer-add), or leave it out of VNI ${f.vni}'s flood list`);
        const prev = new Map(this.floods);
        this.change(() => (f.vteps ? this.floods.set(f.vni, f.vteps) : this.floods.delete(f.vni)), () => (this.floods = prev));
        return { epoch: this.epoch, ...this.declared(this.cfg.vnis.some((x) => x.vni === f.vni) ? `the flood list of VNI ${f.vni}` : null) };
      }
      case 'explain':
        return this.explain(this.parse(z.strictObject({
          vni: vniNumber, mac: macString('the destination MAC'), from: z.string().min(1).max(15).optional(), src: macString('the source MAC').optional(),
          // from: a representor (a pod's frame), or "uplink" (a frame a peer encapsulated,
          // from vtep)
          vtep: ipString('the sending VTEP').optional(),
        }), req));
      case 'drops-arm': {
        // Each worker records its next `count` dropped frames (0: stop). One capture at a
        // time: arming again forgets what the last one recorded.
        const q = this.parse(z.strictObject({
          count: z.number().int().min(0).max(DROPS_PER_WORKER_MAX), reasons: z.array(z.string().max(64)).max(64).optional(),
        }), req);
        const known = this.dp!.dropReasons();
        const stray = q.reasons?.find((r) => !known.includes(r));
        if (stray) throw invalid(`${withGuesses([stray], known)} is not a drop reason (\`vfplane dataplane drops --reason\`, op drops-arm); the reasons are ${known.join(', ')}`);
        this.dp!.armDrops(q.count, q.reasons);
        return { armed: q.count, workers: this.cfg.workers, ...(q.reasons?.length ? { reasons: q.reasons } : {}) };
      }
      case 'drops': {
        this.parse(NO_ARGS, req);
        const names = this.portNames();
        const vx = [this.cfg.dstPort];
        return {
          drops: this.dp!.drops().map((d) => {
            const decap = d.decap && { vni: d.decap.vni, vtep: formatIp(d.decap.vtep.length === 4 ? 4 : 6, d.decap.vtep) };
            return {
              time: new Date(d.unixMs).toISOString(), worker: d.worker,
              port: d.port === null ? null : names.get(d.port) ?? `slot ${d.port} (detached since)`, dir: d.dir, reason: d.reason,
              len: d.len, ...(decap ? { decap } : {}),
              // A decapsulated frame is described as it came: the tunnel, then the inner frame.
              summary: `${decap ? `VXLAN VNI ${decap.vni} from ${decap.vtep}: ` : ''}${describeFrame(d.head, d.len, vx)}`,
              frame: Buffer.from(d.head).toString('hex'),
            };
          }),
        };
      }
      case 'fdb-list': {
        this.parse(NO_ARGS, req);
        // The list stops at LEARNED_LIST_MAX entries (see there) and says so.
        const l = this.dp!.learnedList();
        // How long since each learned entry was last refreshed (a frame from its MAC through
        // its VTEP; it ages out ageSeconds after that): its stamp is the workers' clock,
        // which a script cannot read.
        return {
          static: this.fdb.values(),
          learned: l.entries.map((e) => ({ ...e, idleSeconds: secondsSince(e.stamp) })),
          ...(l.truncated ? { learnedTruncated: LEARNED_LIST_MAX } : {}),
          local: [...this.atts.values()].map((a) => ({ vni: a.vni, mac: a.mac, representor: a.representor })),
        };
      }
      default:
        throw invalid(`unknown op ${JSON.stringify(req.op)}; use status, stats, attach, detach, peer-add, peer-del, fdb-add, fdb-del, fdb-list, flood-set, explain, drops-arm, drops or reload`);
    }
  }

  private portNames(): Map<number, string> {
    const m = new Map<number, string>();
    if (this.uplink) m.set(this.uplink.slot, UPLINK_PORT_NAME);
    for (const a of this.atts.values()) m.set(a.slot, a.representor);
    return m;
  }

  /**
   * Applies the config file as it is now, without stopping traffic: peers, per-VNI
   * flood lists, static FDB entries, learn, ageSeconds, antiSpoof, icmpTooBig and tenants change in
   * one new epoch. What the control socket added at runtime (peers, entries, flood
   * lists not in the old file) stays. Anything else changed (the uplink, backend,
   * workers, tunnel…) takes a restart: the reload is refused, naming it, and nothing
   * changes; so it is when the new tenants would no longer admit an attached pod, or the
   * new peers leave a flood list or FDB entry without its VTEP.
   */
  /** reload() in turn with the control socket's requests (SIGHUP): an attach half-way
   *  through its awaits must not see the tenants or peers change under it. */
  reloadInTurn(): Promise<Record<string, unknown>> {
    return this.serialized(() => this.reload());
  }

  async reload(): Promise<Record<string, unknown>> {
    if (!this.reread) throw invalid('this data plane was started without a config file to reload');
    const next = this.reread();
    const old = this.cfg;
    const live = new Set(['peers', 'vnis', 'fdb', 'learn', 'ageSeconds', 'antiSpoof', 'icmpTooBig', 'tenants']);
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const keys = [...new Set([...Object.keys(old), ...Object.keys(next)])] as (keyof DaemonConfig)[];
    const fixed = keys.filter((k) => !live.has(k)).flatMap((k) => differs(old[k], next[k], k));
    // The file is fine; what runs contradicts it: a conflict (exit 1), not a bad request.
    if (fixed.length) {
      throw conflict(`the config changes ${fixed.join(', ')}, which ${fixed.length > 1 ? 'take' : 'takes'} a restart of the data plane (${fixed.includes('attachments') ? 'attachments change live through vfplane dataplane attach/detach; ' : ''}peers, vnis, fdb, learn, ageSeconds, antiSpoof, icmpTooBig and tenants reload live); nothing was changed`);
    }
    const refused = [...this.atts.values()].filter((a) => a.owner && tenancyRefusal(next, a.owner.podNamespace, a.vni));
    if (refused.length) {
      throw conflict(`the new tenants would not admit ${refused.map((a) => `${a.representor} (VNI ${a.vni}, namespace ${a.owner!.podNamespace ?? 'none'})`).join(', ')}; detach those pods first or keep their VNIs in tenants; nothing was changed`);
    }
    // Runtime additions: what is here but was not in the old file.
    const keepPeers = this.peers.filter((p) => !old.peers.some((x) => x.vtep === p.vtep) && !next.peers.some((x) => x.vtep === p.vtep));
    const inOld = fdbKeys(old.fdb), inNext = fdbKeys(next.fdb);
    const keepFdb = this.fdb.values().filter((f) => !inOld.has(fdbKey(f)) && !inNext.has(fdbKey(f)));
    const keepFloods = [...this.floods].filter(([v]) => !old.vnis.some((x) => x.vni === v) && !next.vnis.some((x) => x.vni === v));
    // What the socket added stays, so it must still name peers: a peer the file drops
    // takes nothing the socket made with it (the operator says which goes).
    const peersAfter = new Set([...next.peers, ...keepPeers].map((p) => p.vtep));
    const gone = (v: string) => !peersAfter.has(v);
    const lost = [...new Set([...keepFdb.map((f) => f.vtep), ...keepFloods.flatMap(([, l]) => l)].filter(gone))];
    if (lost.length) {
      const users = [
        ...keepFdb.filter((f) => gone(f.vtep)).map((f) => `the static entry for ${f.mac} on VNI ${f.vni} (added over the control socket) points at ${f.vtep}: \`vfplane dataplane fdb del --vni ${f.vni} --mac ${f.mac}\``),
        ...keepFloods.filter(([, l]) => l.some(gone)).map(([vni, l]) => `the flood list of VNI ${vni} (set over the control socket) names ${l.filter(gone).join(', ')}: \`vfplane dataplane flood set --vni ${vni} ${l.filter((v) => !gone(v)).join(' ') || '--none'}\``),
      ];
      throw conflict(`the config no longer has ${lost.join(', ')} among its peers, which runtime changes still use: ${users.join('; ')}; change those first, or keep the peer in the file; nothing was changed`);
    }
    const prev = { peers: this.peers, fdb: this.fdb, floods: this.floods, cfg: this.cfg };
    this.change(() => {
      this.peers = [...next.peers, ...keepPeers];
      this.fdb = new StaticFdb([...next.fdb, ...keepFdb]);
      this.floods = new Map([...next.vnis.map((v) => [v.vni, v.flood] as [number, string[]]), ...keepFloods]);
      this.cfg = next;
    }, () => {
      ({ peers: this.peers, fdb: this.fdb, floods: this.floods, cfg: this.cfg } = prev);
    });
    const changed = [...live].filter((k) => !same(old[k as keyof DaemonConfig], next[k as keyof DaemonConfig]));
    // The file may be as it was while what ran was not: a peer, entry or flood list the
    // socket changed after the file declared it goes back to the file's. That is a change
    // too (in any order: the lists are compared as sets).
    const asSet = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort().join('\n');
    const undone = ([
      ['peers', prev.peers, this.peers],
      ['fdb', prev.fdb.values(), this.fdb.values()],
      ['vnis', [...prev.floods], [...this.floods]],
    ] as [string, unknown[], unknown[]][]).filter(([k, a, b]) => !changed.includes(k) && asSet(a) !== asSet(b)).map(([k]) => k);
    this.log.info(`reloaded the config: ${reloadSummary(changed, undone)}, epoch ${this.epoch}`);
    return { changed, undone, epoch: this.epoch };
  }

  /**
   * Where a frame a pod sends on VNI to MAC goes, and why, in the order the workers
   * decide it (native/worker/dp.c, from_pod): the sender's own checks, local pods,
   * static then learned FDB entries, else head-end replication; and for each remote
   * VTEP whether its MAC is known. From the configuration and the workers' own tables
   * (learned entries, peer state) as they are now.
   */
  private explain(q: { vni: number; mac: string; from?: string; src?: string; vtep?: string }): Record<string, unknown> {
    const c = this.cfg;
    const dst = q.mac.toLowerCase();
    const steps: string[] = [];
    const peerState = new Map((this.peerStatus() as { vtep: string; state: string; underlayMac: string | null }[]).map((p) => [canonIp(p.vtep), p]));
    const peerLine = (vtep: string) => {
      const p = peerState.get(canonIp(vtep));
      if (!p) return { vtep, peer: false, note: `${vtep} is not a peer: frames for it are dropped (no_peer); add it with vfplane dataplane peer add` };
      return p.state === 'unresolved'
        ? { vtep, peer: true, state: p.state, note: `${vtep}: its MAC is not known yet, so frames for it are dropped (neigh_unresolved) until it answers ARP/ND` }
        : { vtep, peer: true, state: p.state, underlayMac: p.underlayMac, note: `${vtep} via ${p.underlayMac} (${p.state})` };
    };
    const local = [...this.atts.values()].filter((a) => a.vni === q.vni);
    // A pod of this node with that MAC on another VNI: the usual reason two pods do not
    // reach each other is that their networks name different VNIs, which "not a local
    // pod" would hide (helper-83). Not when a pod here has that MAC on this VNI too (one
    // pod on two VNIs, a VF on each): the frame reaches it, and the other VNI is beside the point.
    // Every such attachment is named (helper-93: one MAC on VNIs 100 and 200, asked on
    // 300, named the first only).
    const others = isGroupMac(dst) || local.some((a) => a.mac.toLowerCase() === dst) ? []
      : [...this.atts.values()].filter((a) => a.vni !== q.vni && a.mac.toLowerCase() === dst);
    const other = others[0];
    const where = others.map((a) => `representor ${a.representor}${a.pci ? `, VF ${a.pci}` : ''}, VNI ${a.vni}`).join('; ');
    const otherVni = other && {
      step: `${dst} is ${other.owner?.podName ? `pod ${other.owner.podNamespace ?? ''}${other.owner.podNamespace ? '/' : ''}${other.owner.podName} ` : 'a pod '}on this node (${where}), not on VNI ${q.vni}: pods on different VNIs never reach each other. Check the VNI of each pod's network (its vxlan.vni)`,
      extra: { otherVni: { vni: other.vni, representor: other.representor, ...(other.owner ? { owner: other.owner } : {}) } },
    };
    if (q.vtep && q.from !== 'uplink') throw invalid(`vtep ${q.vtep} is the VTEP a frame came from: it goes with from "uplink"`);
    if (q.from === 'uplink') return this.explainFromUnderlay(q.vni, dst, local, steps, q.src?.toLowerCase(), q.vtep, peerState, otherVni);
    const sender = q.from ? this.atts.get(q.from) : undefined;
    if (q.from && !sender) throw notFound(`no attachment on representor ${q.from}; see vfplane dataplane status`);
    if (sender && sender.vni !== q.vni) throw invalid(`representor ${q.from} is on VNI ${sender.vni}, not ${q.vni}: its frames go on VNI ${sender.vni}`);
    // As the underlay direction says it (explainFromUnderlay): a VNI with a flood list of
    // its own is served (decapsulated, then dropped with nowhere to go), one without is not.
    if (!local.length) steps.push(`no pod on this node is attached to VNI ${q.vni}: no pod here sends on it, and frames arriving for it from the underlay are dropped (${this.floods.has(q.vni) ? 'no_local_port' : 'vni_unknown'}); what follows is what a pod attached to it would meet`);
    const result = (verdict: string, extra: Record<string, unknown>) => ({ vni: q.vni, mac: dst, ...(q.from ? { from: q.from } : {}), verdict, ...extra, steps });
    if (sender && c.antiSpoof && q.src && q.src.toLowerCase() !== sender.mac.toLowerCase()) {
      steps.push(`anti-spoofing is on and ${q.from} may only send from ${sender.mac}, not ${q.src}`);
      return result('drop', { reason: 'spoofed' });
    }
    const flood = (why: string) => {
      const list = this.floods.get(q.vni);
      const remotes = list ?? this.peers.map((p) => p.vtep);
      for (const a of local) if (a.remote && !remotes.includes(a.remote)) remotes.push(a.remote);
      steps.push(why);
      steps.push(list ? `VNI ${q.vni} has a flood list: ${list.join(', ') || 'empty'}` : `VNI ${q.vni} has no flood list of its own: every peer gets a copy`);
      const ports = local.filter((a) => a.representor !== q.from).map((a) => a.representor);
      if (q.from && !ports.length && !remotes.length) {
        steps.push(`no other pod on this node is on VNI ${q.vni} and no remote VTEP gets its floods: the frame goes nowhere (no_destination)`);
        return result('drop', { reason: 'no_destination' });
      }
      if (q.from && this.cfg.floodPps) steps.push(`storm control: this pod floods at most ${this.cfg.floodPps} frames a second (floodPps); past it a frame to flood is dropped (flood_limited)`);
      return result('flood', { localPorts: ports, peers: remotes.map(peerLine) });
    };
    if (isGroupMac(dst)) return flood(`${dst} is a ${dst === 'ff:ff:ff:ff:ff:ff' ? 'broadcast' : 'multicast'} address: every other local pod on the VNI and the VNI's remote VTEPs get a copy (head-end replication)`);
    const here = local.find((a) => a.mac.toLowerCase() === dst);
    if (here) {
      if (here.representor === q.from) {
        steps.push(`${dst} is the sender's own MAC`);
        return result('drop', { reason: 'hairpin' });
      }
      steps.push(`${dst} is a pod on this node (representor ${here.representor}${here.pci ? `, VF ${here.pci}` : ''}): switched locally, never encapsulated`);
      // The same MAC from behind a peer (learned: a host there sends from it) is another
      // host with this MAC, which this node's pods never reach.
      const l = this.dp!.learnedGet(q.vni, mac(dst));
      if (l) steps.push(`${dst} was also learned on VNI ${q.vni} from frames VTEP ${l.vtep} sent: a host there has this pod's MAC too (two hosts with one MAC), and what is sent to ${dst} here reaches only the local pod. Give one of them another MAC`);
      return result('local', { representor: here.representor, ...(here.owner ? { owner: here.owner } : {}) });
    }
    // An FDB entry's VTEP: encapsulated if it is a peer whose MAC is known, else dropped
    // under the reason the workers count.
    const toVtep = (vtep: string, extra: Record<string, unknown>) => {
      const pl = peerLine(vtep);
      const reason = !pl.peer ? 'no_peer' : pl.state === 'unresolved' ? 'neigh_unresolved' : null;
      return result(reason ? 'drop' : 'encap', { vtep, ...extra, peer: pl, ...(reason ? { reason } : {}) });
    };
    const st = this.fdb.get({ vni: q.vni, mac: dst });
    if (st) {
      steps.push(`a static FDB entry sends ${dst} on VNI ${q.vni} to ${st.vtep}`);
      return toVtep(st.vtep, { source: 'static' });
    }
    // Learned entries are used, and age, also while learning is off (it stops only
    // new entries and refreshes).
    const l = this.dp!.learnedGet(q.vni, mac(dst));
    if (l) {
      const age = secondsSince(l.stamp);
      steps.push(`${dst} was learned on VNI ${q.vni} from frames VTEP ${l.vtep} sent, the last ${age} s ago (entries age out ${c.ageSeconds} s after their last frame${c.learn ? '' : '; learning is off, so it is not refreshed'})`);
      if (!peerState.has(canonIp(l.vtep))) {
        return flood(`${l.vtep} is no longer a peer, so that entry is not used: ${dst} is flooded as unknown unicast. Frames from ${dst} through ${l.vtep} do not learn it again while that VTEP is not a peer: add it back (\`vfplane dataplane peer add ${l.vtep}\`) or wait until the entry ages out (ageSeconds ${c.ageSeconds}); a frame from ${dst} through a peer moves the entry there at once`);
      }
      return toVtep(l.vtep, { source: 'learned', ageSeconds: age });
    }
    if (otherVni) {
      steps.push(otherVni.step);
      return { ...flood(`no static or learned FDB entry names ${dst} on VNI ${q.vni}: it is flooded as unknown unicast on VNI ${q.vni}, which never reaches that pod`), ...otherVni.extra };
    }
    // Known behind a peer, but on another VNI (helper-109: two pods on different nodes
    // whose networks name different VNIs; "not a local pod" named no reason).
    const remote = this.fdb.values().find((f) => f.vni !== q.vni && f.mac.toLowerCase() === dst);
    const learnedElsewhere = remote ? undefined : this.dp!.learnedList().entries.find((e) => e.vni !== q.vni && e.mac.toLowerCase() === dst);
    const there = remote ? { vni: remote.vni, vtep: remote.vtep, how: 'a static FDB entry puts it' } : learnedElsewhere ? { vni: learnedElsewhere.vni, vtep: learnedElsewhere.vtep, how: 'it was learned' } : undefined;
    if (there) {
      steps.push(`${dst} is not a local pod, and no static or learned FDB entry names it on VNI ${q.vni}; ${there.how} on VNI ${there.vni} behind VTEP ${there.vtep}, not on VNI ${q.vni}: pods on different VNIs never reach each other. Check the VNI of each pod's network (its vxlan.vni)`);
      return { ...flood(`it is flooded as unknown unicast on VNI ${q.vni}, which never reaches that host`), otherVni: { vni: there.vni, vtep: there.vtep } };
    }
    return flood(`${dst} is not a local pod, and no static or learned FDB entry names it on VNI ${q.vni}: unknown unicast is flooded`);
  }

  /** The other direction (native/worker/dp.c, from_uplink): a VXLAN frame from a peer
   *  on VNI, decapsulated, for MAC. */
  private explainFromUnderlay(vni: number, dst: string, local: Attached[], steps: string[], src: string | undefined, vtep: string | undefined,
    peers: Map<string, unknown>, otherVni?: { step: string; extra: Record<string, unknown> }): Record<string, unknown> {
    const result = (verdict: string, extra: Record<string, unknown>) => ({
      vni, mac: dst, from: 'uplink', ...(src ? { src } : {}), ...(vtep ? { vtep } : {}), verdict, ...extra, ...(otherVni ? otherVni.extra : {}), steps,
    });
    // Whatever the verdict on this VNI, a pod here with that MAC on another (and none on
    // this one: explain) is the answer.
    if (otherVni) steps.push(otherVni.step);
    if (!local.length && !this.floods.has(vni)) {
      steps.push(`VNI ${vni} is not served here (no pod attached to it, no flood list): the decap drops the frame (vni_unknown)`);
      return result('drop', { reason: 'vni_unknown' });
    }
    if (!local.length) {
      steps.push(`VNI ${vni} has a flood list here but no local pod: the frame is decapsulated and dropped (no_local_port)`);
      return result('drop', { reason: 'no_local_port' });
    }
    if (src && !isStationMac(src)) {
      steps.push(`${src} is ${src === '00:00:00:00:00:00' ? 'all zero' : 'a group address'}, no station's source address: the frame is dropped (bad_src_mac) and nothing is learned`);
      return result('drop', { reason: 'bad_src_mac' });
    }
    const st = src ? this.fdb.get({ vni, mac: src }) : undefined;
    if (st && vtep && canonIp(st.vtep) !== canonIp(vtep)) {
      steps.push(`a static FDB entry puts ${src} behind ${st.vtep}, not ${vtep}: the frame is dropped (static_elsewhere) and nothing is learned`);
      return result('drop', { reason: 'static_elsewhere' });
    }
    const who = src ?? 'the inner source MAC';
    if (st) steps.push(`${who} has a static FDB entry (to ${st.vtep}): nothing is learned`);
    else if (!this.cfg.learn) steps.push(`learning is off: ${who} is not learned`);
    else if (vtep && !peers.has(canonIp(vtep))) steps.push(`${vtep} is not a peer: ${who} is not learned (an entry for a VTEP that is not a peer could not be sent to), the frame is still delivered`);
    else steps.push(`such a frame has ${who} learned (or its entry refreshed) against ${vtep ?? 'the outer source VTEP, if that is a peer'} (entries age out after ${this.cfg.ageSeconds} s)`);
    const here = isGroupMac(dst) ? undefined : local.find((a) => a.mac.toLowerCase() === dst);
    if (here) {
      steps.push(`${dst} is a pod on this node (representor ${here.representor}${here.pci ? `, VF ${here.pci}` : ''})`);
      return result('local', { representor: here.representor, ...(here.owner ? { owner: here.owner } : {}) });
    }
    steps.push(isGroupMac(dst)
      ? `${dst} is a group address: every local pod on VNI ${vni} gets a copy`
      : `${dst} is no pod on this node${otherVni ? ` on VNI ${vni}` : ''}: unknown unicast from the underlay goes to every local pod on VNI ${vni}`);
    return result('flood', { localPorts: local.map((a) => a.representor), peers: [] });
  }

  /** The configured peers with what the workers know of them: the MAC encap sends to
   *  (configured, or learned by ARP/ND and when), the requests sent for it, and what
   *  went to each. */
  private peerStatus(): Record<string, unknown>[] {
    const known = this.dp!.counters().peers;
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, as the workers' stamps
    const unanswered = (vtep: string) => this.peerAnswer.get(vtep)?.since ?? 0;
    return this.peers.map((p) => {
      const k = known.get(canonIp(p.vtep));
      return {
        ...p,
        state: k?.state ?? 'unresolved',
        ...(this.nextHop(p.vtep) ? { via: this.cfg.uplink.gateway } : {}),
        underlayMac: k?.mac ?? null,
        ...(k?.state === 'resolved' && k.resolvedNs ? { resolvedSecondsAgo: Math.max(0, Math.round(Number(now - k.resolvedNs) / 1e9)) } : {}),
        ...(k?.state === 'resolved' && k.confirmedNs ? { heardSecondsAgo: Math.max(0, Math.round(Number(now - k.confirmedNs) / 1e9)) } : {}),
        requests: Number(k?.requests ?? 0n),
        // A learned MAC asked for again and not answered: the peer is down or moved.
        ...(k?.state === 'resolved' ? { unansweredRequests: Number(this.noteHeard(canonIp(p.vtep), k)) } : {}),
        encapPkts: Number(k?.encapPkts ?? 0n),
        encapBytes: Number(k?.encapBytes ?? 0n),
        floodPkts: Number(k?.floodPkts ?? 0n),
        ...(unanswered(canonIp(p.vtep)) ? { unansweredSeconds: Math.max(0, Math.round((Date.now() - unanswered(canonIp(p.vtep))) / 1000)) } : {}),
        decapPkts: Number(k?.decapPkts ?? 0n),
        decapBytes: Number(k?.decapBytes ?? 0n),
        ...(k?.lastFrameNs ? { lastFrameSecondsAgo: Math.max(0, Math.round(Number(now - k.lastFrameNs) / 1e9)) } : {}),
        ...(k?.pathMtu ? { pathMtu: k.pathMtu } : {}),
        // Its VXLAN frames to another UDP port than ours; ICMP port unreachable from it
        // for ours: a dstPort that differs between the nodes.
        ...(k?.wrongPortPkts ? { wrongPort: { port: k.wrongPort, frames: Number(k.wrongPortPkts), secondsAgo: Math.max(0, Math.round(Number(now - k.wrongPortNs) / 1e9)) } } : {}),
        ...(k?.portUnreach ? { portUnreachable: { frames: Number(k.portUnreach), secondsAgo: Math.max(0, Math.round(Number(now - k.portUnreachNs) / 1e9)) } } : {}),
        // Its VXLAN to our MAC and port but another address than our VTEP: one of the two
        // nodes has the wrong VTEP address.
        ...(k?.notLocalPkts ? { sentElsewhere: { to: k.notLocalTo, frames: Number(k.notLocalPkts), secondsAgo: Math.max(0, Math.round(Number(now - k.notLocalNs) / 1e9)) } } : {}),
      };
    });
  }

  /** The offload tier the data plane runs at, from what the uplink's device enabled. */
  private tier() {
    return offloadTier(this.cfg.backend, this.choice, this.uplink?.txOffloads ?? 0);
  }

  status(): Record<string, unknown> {
    const c = this.cfg;
    const counters = this.dp!.counters();
    this.noteLearning(counters.engine as Record<string, bigint>, counters.drops);
    const nowMs = Number(process.hrtime.bigint() / 1_000_000n);
    const ago = (ms: number) => Math.max(0, Math.round((nowMs - ms) / 1000));
    /** A watched counter that has grown: how many, and how long since it last did. */
    const lately = (key: string) => { const g = this.grew.get(key); return g ? { frames: Number(g.n), secondsAgo: ago(g.at) } : undefined; };
    const [elsewhere, spoofed, zeroCsum, noDest] = [lately('static_elsewhere'), lately('spoofed'), lately('udp_zero_checksum'), lately('no_destination')];
    const full = this.grew.get('learnFull'), limited = this.grew.get('learnLimited');
    const mtu = c.tunnel.mtu || this.uplinkMtu;
    const overhead = this.overlayOverhead();
    return {
      node: c.node,
      backend: c.backend,
      podBackend: this.podBackend,
      epoch: this.epoch,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      uplink: { name: c.uplink.ifname ?? c.uplink.dev, vtep: c.uplink.vtep, vlan: c.uplink.vlan ?? null, mode: this.uplink?.mode, zerocopy: this.uplink?.zerocopy, profile: this.choice?.profile ?? null, why: this.choice?.afxdp?.why ?? this.choice?.dpdkTxOffloads?.why, txOffloads: this.uplink?.txOffloads, outerChecksums: outerChecksums(this.uplink?.txOffloads ?? 0), offload: this.tier(), ...vtepConflictStatus(counters),
        // The underlay MTU encap checks against, and the pods' packets it carries.
        ...(mtu ? { mtu, overlayMtu: mtu - overhead } : {}),
        ...(this.uplinkWatch ? { link: this.link.state, ...(this.link.sinceMs ? { linkSecondsAgo: ago(this.link.sinceMs) } : {}), linkDowns: this.link.downs, mac: formatMac(this.uplinkMac) } : {}) },
      dstPort: c.dstPort,
      antiSpoof: c.antiSpoof,
      tenants: c.tenants.map((t) => ({ namespaces: t.namespaces, vnis: formatVniRanges(t.vnis) })),
      peers: this.peerStatus(),
      neighReachableSeconds: c.neighReachableSeconds,
      ...notPeerStatus(counters, this.peers),
      ...dupLocalStatus(counters, this.attachmentList().map(({ a }) => a)),
      ...(this.unsaved ? { stateFile: { path: this.statePath, unsavedSince: new Date(this.unsaved.since).toISOString(), unsavedSeconds: Math.round((Date.now() - this.unsaved.since) / 1000), why: this.unsaved.why } } : {}),
      // Frames from a MAC a static entry puts behind another VTEP (static_elsewhere): a
      // static entry that points at the wrong VTEP, or a MAC spoofed on the underlay.
      ...(elsewhere ? { staticElsewhere: elsewhere } : {}),
      // Frames that went nowhere (no_destination): with an empty flood list, a pod's ARP.
      ...(noDest ? { noDestination: noDest } : {}),
      // Pods' frames from a MAC not their attachment's (antiSpoof): a pod that changed its MAC.
      ...(spoofed ? { spoofed } : {}),
      // IPv6 VXLAN frames refused for a zero UDP checksum (verifyUdpCsum on, a peer that
      // leaves it out): how many, and when the count last grew.
      ...(zeroCsum ? { udpZeroChecksum: zeroCsum } : {}),
      // The VNIs with a flood list of their own (config or `flood set`); others flood to every peer.
      floods: [...this.floods].sort(([a], [b]) => a - b).map(([vni, vteps]) => ({ vni, vteps })),
      attachments: this.attachmentList().map(({ a, state, why }) => ({ representor: a.representor, pci: a.pci, vni: a.vni, mac: a.mac, owner: a.owner, representorState: state, ...(why ? { why } : {}), ...ownerGone(a), ...(this.podMtus.has(a.representor) ? { podMtu: this.podMtus.get(a.representor) } : {}),
        // Frames its pod's interface refused (tx_device_drops), and when the count last grew.
        ...(lately(`refused:${a.representor}`) ? { refused: lately(`refused:${a.representor}`) } : {}),
        // Frames from its pod longer than its port takes (rx_truncated, rx_oversize), the
        // MTU its port was opened for, and when the count last grew.
        ...(lately(`truncated:${a.representor}`) ? { truncated: { ...lately(`truncated:${a.representor}`)!, ...(this.portMtus.has(a.representor) ? { portMtu: this.portMtus.get(a.representor) } : {}) } } : {}) })),
      // Pods' frames over what the underlay carries: dropped, some answered with ICMP too big.
      mtuExceeded: { frames: Number(counters.drops.mtu_exceeded ?? 0n), icmpTooBig: Number(counters.misc.icmpTooBig ?? 0n), icmpTooBigLimited: Number(counters.misc.icmpTooBigLimited ?? 0n) },
      workers: counters.perWorker.map((w) => ({ cpu: w.cpu, epoch: Number(w.epoch) })),
      // How the workers poll, and the storm control: what a restart changes (reload cannot).
      polling: { burst: c.burst, idleSpins: c.idleSpins, floodPps: c.floodPps ?? null },
      // Whether the learned table has filled (since the start): new MACs then flood.
      learning: {
        on: c.learn, capacity: c.learnCapacity, entries: Math.max(0, ...counters.perWorker.map((w) => w.learnedEntries)),
        full: Number(counters.engine.learnFull ?? 0n),
        ...(full ? { fullSecondsAgo: ago(full.at) } : {}),
        ...(c.learnPerVni ? { perVni: c.learnPerVni, limited: Number(counters.engine.learnLimited ?? 0n) } : {}),
        ...(limited ? { limitedSecondsAgo: ago(limited.at) } : {}),
        // MACs moving between VTEPs (learnMoved) lately: two hosts with one MAC, or a loop.
        ...this.movedLately(),
      },
      ports: [...this.portNames()].map(([slot, name]) => ({ slot, name, ...(this.dp!.backendCounters(slot) ?? {}) })),
      // The host's netdevs the data plane changed, and what they get back when released.
      held: this.claims.list().map((r) => ({ netdev: r.ifname, ...(r.netns ? { netns: r.netns } : {}), since: r.since, givesBack: givesBack(r) })),
    };
  }

  /** The workers' counters, with a zero entry for each open port and each VNI served
   *  (attached or with a flood list) that has seen nothing yet: the workers keep only
   *  what moved, and an idle pod's port and VNI are still there, at 0 (as Prometheus
   *  alerting on absent() or rate() expects). */
  counters(): DpCounters {
    const c = this.dp!.counters();
    for (const slot of this.portNames().keys()) {
      if (!c.ports.has(slot)) c.ports.set(slot, noPortCounters());
    }
    for (const vni of new Set([...[...this.atts.values()].map((x) => x.vni), ...this.floods.keys()])) {
      if (!c.vnis.has(vni)) c.vnis.set(vni, noVniCounters(vni));
    }
    return c;
  }

  /** What the state file adds to the config's model, committed. An entry that is
   *  unusable (one the socket's schemas refuse now, a VTEP that is not a peer) is dropped
   *  alone; a file that is unusable as a whole (not JSON, another version, a commit the
   *  workers refuse) gives nothing: the model stays as the config made it. The log says
   *  which and why, and the file as it was is copied aside before it is rewritten. */
  private loadState(): PersistedState | null {
    if (!existsSync(this.statePath)) return null;
    // What is not restored is copied aside first: the file is rewritten from what this
    // run holds (at its start, when attachments are rebuilt, or at the next change).
    let kept = '';
    const keep = () => {
      // What is dropped is copied aside once: the file is then rewritten at the start, so
      // the next start neither warns again nor makes another copy (one a start, in a
      // crash loop, helper-68).
      this.stateRewrite = true;
      if (kept) return kept;
      kept = `${this.statePath}.unrestored-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      try {
        copyFileSync(this.statePath, kept);
      } catch (e) {
        kept = `(not copied: ${(e as Error).message})`;
      }
      return kept;
    };
    const ignore = (why: string) => {
      this.log.warn(`ignoring unreadable state ${this.statePath}: ${why}; none of it is restored (the config's peers, FDB and attachments stand, and vfplane-cni's attachments come back from the allocation store); the file as it was is kept as ${keep()}`);
      return null;
    };
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.statePath, 'utf8'));
    } catch (e) {
      return ignore((e as Error).message);
    }
    // Entry by entry: one the socket would refuse now (an older vfplane took it) costs
    // itself, not the peers and FDB around it.
    const drop = (what: string, why: string) => this.log.warn(`state ${this.statePath}: ${what} not restored: ${why}; the rest is (the file as it was is kept as ${keep()})`);
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      const o = { ...(raw as Record<string, unknown>) };
      for (const [key, schema] of Object.entries(STATE_ENTRIES)) {
        const list = o[key];
        if (!Array.isArray(list)) continue;
        o[key] = list.filter((entry, i) => {
          const e = (schema as z.ZodType).safeParse(entry);
          if (!e.success) drop(`${key}.${i} ${JSON.stringify(entry)}`, zodMessage(e.error, entry));
          return e.success;
        });
      }
      raw = o;
    }
    const r = stateSchema.safeParse(raw);
    if (!r.success) return ignore(zodMessage(r.error, raw));
    const s = r.data;

    // An older vfplane let the node's own VTEP in as a peer: not one (as in parseConfig).
    dropVtep(this.cfg.uplink.vtep, s, s.floods);
    const fam = isIP(this.cfg.uplink.vtep);
    s.peers = s.peers.filter((p) => isIP(p.vtep) === fam || (drop(`peer ${p.vtep}`, `not IPv${fam} like uplink.vtep ${this.cfg.uplink.vtep}`), false));
    // What does not fit the data plane's limits beside the config's costs itself too (the
    // config declares the node and comes first), not the whole file (helper-79: a peer
    // added over the socket past a config of 1024 lost every runtime change at restart).
    const peers = [...this.peers];
    const isPeer = new Set(peers.map((p) => canonIp(p.vtep)));
    s.peers = s.peers.filter((p) => {
      if (isPeer.has(canonIp(p.vtep))) return false;
      if (peers.length >= MAX_PEERS) return drop(`peer ${p.vtep}`, `the config's peers and those restored before it fill the ${MAX_PEERS} a data plane holds`), false;
      isPeer.add(canonIp(p.vtep));
      peers.push(p);
      return true;
    });
    s.fdb = s.fdb.filter((f) => isPeer.has(canonIp(f.vtep)) || (drop(`FDB entry VNI ${f.vni} MAC ${f.mac}`, `it points at VTEP ${f.vtep}, which is not a peer`), false));
    const fdb = this.fdb.clone();
    for (const f of s.fdb) if (!fdb.has(f)) fdb.set(f);
    const served = new Set([...this.floods.keys(), ...this.cfg.attachments.map((a) => a.vni)]);
    s.floods = s.floods.filter((f) => {
      const v = f.flood.find((x) => !isPeer.has(canonIp(x)));
      if (v) return drop(`the flood list of VNI ${f.vni}`, `it names VTEP ${v}, which is not a peer`), false;
      if (!served.has(f.vni) && served.size >= MAX_VNIS) return drop(`the flood list of VNI ${f.vni}`, `the config's VNIs and those restored before it fill the ${MAX_VNIS} a data plane serves`), false;
      served.add(f.vni);
      return true;
    });
    const prev = { peers: this.peers, fdb: this.fdb, floods: this.floods };
    this.peers = peers;
    this.fdb = fdb;
    // The config file declares the node: a VNI it gives a flood list keeps that one (as at
    // reload); the state file adds the lists made over the socket for other VNIs.
    this.floods = new Map([...s.floods.map((f) => [f.vni, f.flood] as [number, string[]]), ...this.floods]);
    try {
      this.commit();
    } catch (e) {
      ({ peers: this.peers, fdb: this.fdb, floods: this.floods } = prev);
      return ignore((e as Error).message);
    }
    return { version: 1, attachments: s.attachments, peers: s.peers, fdb: s.fdb, floods: s.floods };
  }

  /** Writes the model to the state file (`without` that representor's attachment, for a
   *  detach about to be made). */
  private saveState(without?: string): void {
    const cfgPeers = new Set(this.cfg.peers.map((p) => p.vtep));
    const s: PersistedState = {
      version: 1,
      attachments: [
        ...[...this.atts.values()].map(({ slot: _s, portInfo: _p, claimed: _c, ifindex: _i, ...a }) => a as AttachRequest),
        ...[...this.waiting.values()].map((w) => w.req),
      ].filter((a) => !this.fromConfig(a.representor) && a.representor !== without),
      peers: this.peers.filter((p) => !cfgPeers.has(p.vtep)),
      fdb: this.fdb.valuesExcept(fdbKeys(this.cfg.fdb)),
      floods: [...this.floods].filter(([v]) => !this.cfg.vnis.some((x) => x.vni === v)).map(([vni, flood]) => ({ vni, flood })),
    };
    const tmp = `${this.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.statePath); // atomic: a crash leaves the old state or the new, never half
    if (this.unsaved) {
      this.log.info(`the state file ${this.statePath} is written again (it could not be since ${new Date(this.unsaved.since).toISOString()}: ${this.unsaved.why})`);
      this.unsaved = null;
    }
  }

  private async startMetrics(addr: string): Promise<void> {
    const i = addr.lastIndexOf(':');
    const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(addr.slice(i + 1));
    const server = createServer((req, res) => {
      // The path alone: a query string (a scraper's params, a cache-buster) is ignored.
      // (Also an absolute-form target, http://host:port/metrics, which HTTP/1.1 allows.)
      let pathname = '';
      try {
        pathname = new URL(req.url ?? '', 'http://metrics.invalid').pathname;
      } catch {
        // unparsable: not /metrics
      }
      if (pathname !== '/metrics') {
        res.writeHead(404).end('see /metrics\n');
        return;
      }
      if (!this.dp || !this.uplink) {
        res.writeHead(503, { 'retry-after': '1' }).end('the data plane is starting\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      const names = this.portNames();
      const backend = new Map([...names.keys()].map((slot) => [slot, this.dp!.backendCounters(slot)] as const));
      const atts = this.attachmentList().map(({ a, state }) => ({ representor: a.representor, vni: a.vni, state }));
      res.end(prometheus({ node: this.cfg.node, counters: this.counters(), dropReasons: this.dp.dropReasons(), names, epoch: this.epoch, backend, atts, learnCapacity: this.cfg.learnCapacity, startedAt: this.started, ...(this.uplinkWatch ? { uplinkLink: { state: this.link.state, downs: this.link.downs } } : {}) }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new VfpError('system', `cannot serve metrics on ${addr}: ${e.message}${(e as NodeJS.ErrnoException).code === 'EADDRINUSE' ? '; another process listens there: give --metrics (or metrics in the config) a free address, or port 0 for one the kernel picks' : ''}`)));
      // :PORT (no host): every address, IPv6 and IPv4 (Node's `::` dual-stack, or 0.0.0.0
      // where the host has no IPv6).
      if (host === '') server.listen(port, () => resolve());
      else server.listen(port, host, () => resolve());
    });
    this.metricsServer = server;
  }

  get metricsPort(): number | null {
    const a = this.metricsServer?.address();
    return a && typeof a === 'object' ? a.port : null;
  }

  /** Graceful stop: no new requests, workers drain the queues, ports close, netdevs are
   *  given back. Attachments stay in the state file for the next start. */
  async stop(drainMs = 200): Promise<void> {
    await this.control?.close();
    this.control = null;
    if (this.metricsServer) await new Promise<void>((r) => this.metricsServer!.close(() => r()));
    this.metricsServer = null;
    this.dp?.stop(drainMs);
    // Each netdev's release said in the log, as its claim was at the start.
    const said = (m: string | null) => m && this.log.info(m);
    for (const a of this.atts.values()) said(await releaseNetdev(this.claims, a.claimed));
    said(await releaseNetdev(this.claims, this.uplinkClaim));
    this.uplinkClaim = null;
    this.dpdkEnv?.cleanup();
    this.dpdkEnv = null;
    this.lock?.release();
    this.lock = null;
  }
}

/** The allocation stores against the attachments this start restores from its state
 *  file (`list`; the config's are the operator's and only count as present): `stale` are
 *  restored ones of vfplane-cni's whose VF no longer carries that VXLAN attachment in the
 *  store that holds it (`storeOf`: the one the ADD named, the data plane's state directory
 *  by default; a CNI DEL ran while the daemon was down); `missing` are VFs a store shows
 *  attached through this daemon's socket that nothing restores (the state file was lost
 *  or unreadable), rebuilt from what vfplane-cni recorded, from the data plane's store,
 *  every store the restored attachments name and the node's (`nodeStores`, its registry).
 *  A store that is missing or unreadable proves nothing: the state file is then all there
 *  is for its VFs. */
function reconcileWithStore(stateDir: string, socket: string, list: AttachRequest[], fromConfig: AttachRequest[], nodeStores: string[], storeOf: (a: AttachRequest) => string, unreadable?: (dir: string) => (why: string) => void): { stale: Set<AttachRequest>; missing: AttachRequest[] } {
  const out = { stale: new Set<AttachRequest>(), missing: [] as AttachRequest[] };
  // Only vfplane-cni's (an owner with a container) are a pod's, which its DEL ends; one
  // made by hand (`dataplane attach`, with --pci or without) has no record in the store
  // to lose, allocated by hand (`vf alloc`) or not, and comes back as it was.
  const owned = list.filter((x) => x.pci && x.owner?.containerId);
  const have = new Set([...list, ...fromConfig].flatMap((a) => [a.representor, ...(a.pci ? [a.pci] : [])]));
  for (const dir of new Set([resolve(stateDir), ...owned.map((a) => resolve(storeOf(a))), ...nodeStores.map((d) => resolve(d))])) {
    readStore(dir, undefined, (store) => {
      for (const a of owned.filter((x) => resolve(storeOf(x)) === dir)) {
        const cur = store.get(a.pci!);
        const att = cur?.attachment as { vxlan?: { vni?: number } | null; representor?: string } | null | undefined;
        if (!cur || att?.vxlan?.vni !== a.vni || (att.representor && att.representor !== a.representor)) out.stale.add(a);
      }
      for (const al of store.list()) {
        const att = al.attachment as { mac?: string; representor?: string; dataplane?: string; vxlan?: Record<string, unknown> | null; podMtu?: unknown; mtuAuto?: unknown } | null;
        const x = att?.vxlan;
        if (!att || !x || typeof x.vni !== 'number' || !att.representor || !att.mac || !att.dataplane) continue;
        if (resolve(att.dataplane) !== resolve(socket) || have.has(att.representor) || have.has(al.pci)) continue;
        const o = al.owner;
        const { op: _op, ...req } = overlayAttachRequest({
          representor: att.representor, pci: al.pci, mac: att.mac, vxlan: x as unknown as OverlayConf,
          // What the ADD said of the pod's MTU (records older than that say nothing).
          mtu: typeof att.podMtu === 'number' ? att.podMtu : undefined, mtuAuto: att.mtuAuto === true ? true : undefined,
          owner: { containerId: o.containerId, ifname: o.ifname, netns: o.netns, network: o.network, podNamespace: o.namespace, podName: o.name, store: dir },
        });
        out.missing.push(req as AttachRequest);
        have.add(att.representor);
        have.add(al.pci);
      }
    }, unreadable?.(dir));
  }
  return out;
}

/** fn on the allocation store in stateDir (vfplane-cni's); `fallback` when there is no
 *  store or it cannot be read. */
function readStore<T>(stateDir: string, fallback: T, fn: (store: AllocStore) => T, unreadable?: (why: string) => void): T {
  if (!existsSync(join(stateDir, DB_FILE))) return fallback;
  let store: AllocStore | null = null;
  try {
    // Only read: a data plane starting during an upgrade does not migrate the store
    // from under the older plugin still writing it.
    store = AllocStore.open(stateDir, { readOnly: true });
    return fn(store);
  } catch (e) {
    unreadable?.((e as Error).message);
    return fallback;
  } finally {
    store?.close();
  }
}

/** What the data plane is created with, from the config: every value the schema lets
 *  through is one the addon takes (a test holds the schema's bounds to the addon's). */
export function dpOptionsOf(c: DaemonConfig): DpOptions {
  return { workers: c.workers, cpus: c.cpus, burst: c.burst, idleSpins: c.idleSpins, learnCapacity: c.learnCapacity, ...(c.learnPerVni ? { learnPerVni: c.learnPerVni } : {}), ...(c.floodPps ? { floodPps: c.floodPps } : {}), neighReachableMs: c.neighReachableSeconds * 1000 };
}

/** A worker's metric labels: its index, and the CPU it is pinned to; an unpinned worker
 *  (cpu -1) has no cpu label, which Prometheus reads as cpu="" (no CPU is its). */
function workerLabels(i: number, cpu: number): Record<string, string> {
  return cpu < 0 ? { worker: String(i) } : { worker: String(i), cpu: String(cpu) };
}

/** Counters as plain JSON: bigints become numbers (exact below 2^53). */
export function countersJson(c: DpCounters, names: Map<number, string>): Record<string, unknown> {
  const n = (x: bigint) => Number(x);
  const obj = (r: Record<string, bigint>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, n(v)]));
  return {
    engine: obj(c.engine),
    drops: obj(c.drops),
    misc: obj(c.misc),
    // Only open ports: a closed one's slot keeps its counters until a new port takes it.
    ports: [...c.ports].filter(([slot]) => names.has(slot)).map(([slot, p]) => ({ slot, name: names.get(slot)!, rxPkts: n(p.rxPkts), rxBytes: n(p.rxBytes), txPkts: n(p.txPkts), txBytes: n(p.txBytes), drops: n(p.drops), errors: n(p.errors) })),
    vnis: [...c.vnis.values()].map((v) => ({ vni: v.vni, encapPkts: n(v.encapPkts), encapBytes: n(v.encapBytes), decapPkts: n(v.decapPkts), decapBytes: n(v.decapBytes), floodPkts: n(v.floodPkts), localPkts: n(v.localPkts), drops: n(v.drops) })),
    workers: c.perWorker.map((w) => ({ cpu: w.cpu, loops: n(w.loops), busyLoops: n(w.busyLoops), epoch: n(w.epoch), learnedEntries: w.learnedEntries })),
    peers: [...c.peers.values()].map((p) => ({ vtep: p.vtep, state: p.state, mac: p.mac, requests: n(p.requests), encapPkts: n(p.encapPkts), encapBytes: n(p.encapBytes), floodPkts: n(p.floodPkts), decapPkts: n(p.decapPkts), decapBytes: n(p.decapBytes) })),
  };
}

/** What the metrics endpoint exposes: the counters, and what names and labels them. */
export interface MetricsInput {
  node: string;
  counters: DpCounters;
  /** Port slot → name, the open ports (others' counters are not shown). */
  names: Map<number, string>;
  epoch: number;
  /** Each port's backend counters (null: the backend keeps none). */
  backend?: Map<number, Pick<BackendCounters, 'txFull' | 'rxNombuf' | 'drops'> | null>;
  atts?: { representor: string; vni: number; state: string }[];
  learnCapacity?: number;
  /** Every drop reason (dropReasons()): each has its vfplane_drops_total series, 0 until it counts. */
  dropReasons?: string[];
  /** When the data plane started (ms since the epoch). */
  startedAt?: number;
  /** The uplink netdev's link as last read (none for a DPDK uplink). */
  uplinkLink?: { state: string; downs: number };
}

/** Whole seconds since a worker's stamp (CLOCK_MONOTONIC seconds, as process.hrtime). */
function secondsSince(stamp: number): number {
  return Math.max(0, Math.round(Number(process.hrtime.bigint() / 1_000_000_000n) - stamp));
}

/** The Prometheus text exposition of the counters. */
export function prometheus(m: MetricsInput): string {
  const { node, counters: c, names, epoch, backend = new Map(), atts = [], learnCapacity, uplinkLink } = m;
  const out: string[] = [];
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const metric = (name: string, help: string, type: 'counter' | 'gauge', rows: [Record<string, string>, bigint | number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) {
      const l = Object.entries({ node, ...labels }).map(([k, x]) => `${k}="${esc(x)}"`).join(',');
      out.push(`${name}{${l}} ${v}`);
    }
  };
  const ports = [...c.ports].filter(([s]) => names.has(s)); // open ports (see countersJson)
  metric('vfplane_port_rx_packets_total', 'Frames received on a data-plane port.', 'counter', ports.map(([s, p]) => [{ port: names.get(s)! }, p.rxPkts]));
  metric('vfplane_port_tx_packets_total', 'Frames a data-plane port took to send (those it then lost are in vfplane_port_backend_drops_total: tx_link_down, tx_device_drops, tx_errors).', 'counter', ports.map(([s, p]) => [{ port: names.get(s)! }, p.txPkts]));
  metric('vfplane_port_rx_bytes_total', 'Bytes received on a data-plane port.', 'counter', ports.map(([s, p]) => [{ port: names.get(s)! }, p.rxBytes]));
  metric('vfplane_port_tx_bytes_total', 'Bytes sent on a data-plane port.', 'counter', ports.map(([s, p]) => [{ port: names.get(s)! }, p.txBytes]));
  metric('vfplane_port_drops_total', 'Frames the workers dropped on account of a data-plane port (received on it, or queued to it: no attachment, a full tx ring, spoofed, hairpin, flood limit…); each is in vfplane_drops_total by reason too.', 'counter', ports.map(([s, p]) => [{ port: names.get(s)! }, p.drops]));
  metric('vfplane_port_errors_total', 'Errors a data-plane port\'s receive sockets reported (ENETDOWN: its netdev went down or away).', 'counter', ports.map(([s, p]) => [{ port: names.get(s)! }, p.errors]));
  // The backends' own signals of pressure: a full tx ring, no free rx buffer.
  const be = [...backend].filter((e): e is [number, Pick<BackendCounters, 'txFull' | 'rxNombuf' | 'drops'>] => e[1] !== null && names.has(e[0]));
  metric('vfplane_port_tx_full_total', 'Frames a port\'s tx ring could not take (dropped, and counted in vfplane_drops_total{reason="tx_full"} too).', 'counter', be.map(([s, b]) => [{ port: names.get(s)! }, b.txFull]));
  metric('vfplane_port_rx_nombuf_total', 'Receive passes an AF_PACKET port cut short while the worker held every buffer (nothing lost: the rest waits in the ring).', 'counter', be.map(([s, b]) => [{ port: names.get(s)! }, b.rxNombuf]));
  metric('vfplane_port_backend_drops_total', 'Frames a port\'s I/O backend or the kernel under it dropped, by reason (truncated, oversize, chained mbufs, an AF_XDP rx ring full or fill ring empty…).', 'counter',
    be.flatMap(([s, b]) => Object.entries(b.drops ?? {}).map(([reason, v]) => [{ port: names.get(s)!, reason }, v] as [Record<string, string>, number])));
  const vnis = [...c.vnis.values()];
  metric('vfplane_vni_encap_packets_total', 'Frames encapsulated, per VNI.', 'counter', vnis.map((v) => [{ vni: String(v.vni) }, v.encapPkts]));
  metric('vfplane_vni_encap_bytes_total', 'Bytes encapsulated, per VNI (outer frames).', 'counter', vnis.map((v) => [{ vni: String(v.vni) }, v.encapBytes]));
  metric('vfplane_vni_decap_packets_total', 'Frames decapsulated, per VNI.', 'counter', vnis.map((v) => [{ vni: String(v.vni) }, v.decapPkts]));
  metric('vfplane_vni_decap_bytes_total', 'Bytes decapsulated, per VNI (inner frames).', 'counter', vnis.map((v) => [{ vni: String(v.vni) }, v.decapBytes]));
  metric('vfplane_vni_flood_packets_total', 'Copies made by flooding, per VNI.', 'counter', vnis.map((v) => [{ vni: String(v.vni) }, v.floodPkts]));
  metric('vfplane_vni_local_packets_total', 'Frames switched between two local pods, per VNI.', 'counter', vnis.map((v) => [{ vni: String(v.vni) }, v.localPkts]));
  metric('vfplane_vni_drops_total', 'Frames of a VNI the workers dropped (each is in vfplane_drops_total by reason too).', 'counter', vnis.map((v) => [{ vni: String(v.vni) }, v.drops]));
  const peers = [...c.peers.values()];
  metric('vfplane_peer_encap_packets_total', 'Frames encapsulated to each peer VTEP.', 'counter', peers.map((p) => [{ peer: p.vtep }, p.encapPkts]));
  metric('vfplane_peer_flood_packets_total', 'Of the frames encapsulated to each peer VTEP, the flood copies (broadcast, multicast, unknown unicast).', 'counter', peers.map((p) => [{ peer: p.vtep }, p.floodPkts]));
  metric('vfplane_peer_encap_bytes_total', 'Bytes encapsulated to each peer VTEP (outer frames).', 'counter', peers.map((p) => [{ peer: p.vtep }, p.encapBytes]));
  metric('vfplane_peer_decap_packets_total', 'VXLAN frames from each peer VTEP decapsulated.', 'counter', peers.map((p) => [{ peer: p.vtep }, p.decapPkts]));
  metric('vfplane_peer_decap_bytes_total', 'Bytes decapsulated from each peer VTEP (inner frames).', 'counter', peers.map((p) => [{ peer: p.vtep }, p.decapBytes]));
  metric('vfplane_peer_wrong_port_packets_total', 'VXLAN frames from each peer VTEP to another UDP port than this node\'s dstPort (dropped as not_vxlan_port): the nodes disagree on the port.', 'counter', peers.map((p) => [{ peer: p.vtep }, p.wrongPortPkts]));
  metric('vfplane_peer_port_unreachable_total', 'ICMP port unreachable from each peer VTEP for this node\'s VXLAN packets: nothing there listens on dstPort.', 'counter', peers.map((p) => [{ peer: p.vtep }, p.portUnreach]));
  metric('vfplane_peer_wrong_vtep_packets_total', 'VXLAN frames from each peer VTEP to this node\'s MAC and port but another address than its VTEP (dropped as not_local): one of the two has the wrong VTEP address.', 'counter', peers.map((p) => [{ peer: p.vtep }, p.notLocalPkts]));
  metric('vfplane_peer_neighbour_requests_total', 'ARP requests / neighbour solicitations sent for each peer\'s MAC.', 'counter', peers.map((p) => [{ peer: p.vtep }, p.requests]));
  metric('vfplane_peer_resolved', 'Whether each peer\'s underlay MAC is known (1: configured or learned, 0: unresolved, its frames dropped as neigh_unresolved).', 'gauge', peers.map((p) => [{ peer: p.vtep }, p.state === 'unresolved' ? 0 : 1]));
  // Every reason from the start, at 0 (the workers count only what happened): increase()
  // and rate() need a series before the first drop to see it.
  const drops: Record<string, bigint> = { ...Object.fromEntries((m.dropReasons ?? []).map((r) => [r, 0n])), ...c.drops };
  metric('vfplane_drops_total', 'Frames dropped, by reason (every reason, from 0).', 'counter', Object.entries(drops).map(([r, v]) => [{ reason: r }, v]));
  metric('vfplane_fdb_learn_total', 'FDB learning events, by result.', 'counter',
    (['learnNew', 'learnMoved', 'learnRefresh', 'learnFull', 'learnLimited'] as const).map((k) => [{ result: k.slice(5).toLowerCase() }, c.engine[k] ?? 0n]));
  metric('vfplane_fdb_learned_entries', 'Entries in each worker\'s learned FDB (every worker holds every learned entry), of vfplane_fdb_learn_capacity.', 'gauge',
    c.perWorker.map((w, i) => [{ worker: String(i) }, w.learnedEntries]));
  if (learnCapacity !== undefined) metric('vfplane_fdb_learn_capacity', 'Entries a worker\'s learned FDB holds (learnCapacity); past it new MACs flood.', 'gauge', [[{}, learnCapacity]]);
  metric('vfplane_fdb_learn_shared_total', 'Learned entries passed between workers: sent, lost on a full ring (repeated by the next refresh), applied.', 'counter',
    ([['learnShared', 'sent'], ['learnShareLost', 'lost'], ['learnSynced', 'applied']] as const).map(([k, what]) => [{ what }, c.misc[k] ?? 0n]));
  metric('vfplane_dest_cache_lookups_total', 'Distinct destinations of pod bursts, by how the workers found where they go: hit (the destination cache), miss (the tables, then cached), bypassed (the tables, the cache off after a burst of mostly misses).', 'counter',
    ([['destCacheHits', 'hit'], ['destCacheMisses', 'miss'], ['destCacheBypassed', 'bypassed']] as const).map(([k, result]) => [{ result }, c.misc[k] ?? 0n]));
  metric('vfplane_src_cache_lookups_total', 'Distinct inner sources of decapsulated bursts, by how the workers found what each needs (its static FDB entry, whether learning it again would change anything): hit (the source cache), miss (the tables, then cached), bypassed (the tables, the cache off after a burst of mostly misses). None with neither static entries nor learning.', 'counter',
    ([['srcCacheHits', 'hit'], ['srcCacheMisses', 'miss'], ['srcCacheBypassed', 'bypassed']] as const).map(([k, result]) => [{ result }, c.misc[k] ?? 0n]));
  metric('vfplane_duplicate_mac_total', 'Times a source MAC from a peer was the MAC of a pod attached here, on its VNI (checked as the learned FDB takes a source in: once a second an entry at most): two hosts have one MAC. `dataplane status` names the last.', 'counter', [[{}, c.misc.dupLocalMacs ?? 0n]]);
  metric('vfplane_vtep_conflict_frames_total', 'ARP/ND frames from another MAC claiming this node\'s VTEP address on the underlay (two nodes with one VTEP address, say): `dataplane status` names the last MAC.', 'counter', [[{}, c.misc.vtepConflicts ?? 0n]]);
  metric('vfplane_icmp_too_big_total', 'Pods\' packets too big for the underlay (dropped as mtu_exceeded) answered with ICMP fragmentation needed / packet too big (sent), or not for the rate limit (limited).', 'counter',
    ([['icmpTooBig', 'sent'], ['icmpTooBigLimited', 'limited']] as const).map(([k, result]) => [{ result }, c.misc[k] ?? 0n]));
  if (uplinkLink) {
    metric('vfplane_uplink_up', 'Whether the uplink netdev is up with carrier (1); 0: down or without carrier, and every frame for the underlay is lost.', 'gauge', [[{}, uplinkLink.state === 'up' ? 1 : 0]]);
    metric('vfplane_uplink_down_total', 'Times the uplink netdev went down or lost carrier while the data plane ran (seen on its 2 s beat).', 'counter', [[{}, uplinkLink.downs]]);
  }
  metric('vfplane_pmtu_learned_total', 'Path MTUs to peers a router on the underlay reported to this node\'s VTEP (ICMP fragmentation needed / packet too big quoting a VXLAN packet of ours); each holds ten minutes.', 'counter', [[{}, c.misc.pmtuLearned ?? 0n]]);
  metric('vfplane_underlay_fragments_total', 'Fragments of VXLAN packets to this node\'s VTEP taken in for reassembly (a router on a smaller hop split packets sent with DF unset); the data plane puts them together as the kernel\'s IP input would.', 'counter', [[{}, c.misc.reasmFragments ?? 0n]]);
  metric('vfplane_underlay_reassembled_total', 'VXLAN packets made whole again from fragments, then decapsulated (reassembly failures are drops: reasm_timeout, reasm_overlap, reasm_invalid).', 'counter', [[{}, c.misc.reasmDatagrams ?? 0n]]);
  metric('vfplane_vtep_echo_replies_total', 'ICMP / ICMPv6 echo requests to this node\'s VTEP address answered by the workers (the uplink is theirs, not the host stack\'s).', 'counter', [[{}, c.misc.echoReplies ?? 0n]]);
  metric('vfplane_worker_busy_loops_total', 'Poll passes that moved packets, per worker.', 'counter', c.perWorker.map((w, i) => [workerLabels(i, w.cpu), w.busyLoops]));
  metric('vfplane_worker_loops_total', 'Poll passes, per worker.', 'counter', c.perWorker.map((w, i) => [workerLabels(i, w.cpu), w.loops]));
  metric('vfplane_config_epoch', 'The configuration epoch the workers run.', 'gauge', [[{}, epoch]]);
  // Every counter starts at 0 with the data plane: a restart shows here (as
  // process_start_time_seconds does for other exporters), and rate() copes with it.
  if (m.startedAt !== undefined) metric('vfplane_start_time_seconds', 'When this data plane started, in seconds since the epoch (its counters count from then).', 'gauge', [[{}, Math.floor(m.startedAt / 1000)]]);
  metric('vfplane_attachment_representor_ok', 'Whether each attachment\'s representor is still the netdev its port was opened on (0: gone or replaced, the pod is cut off the overlay until DEL/GC, set down, or waiting for it to exist after a restart; unknown in another namespace counts as 1).', 'gauge',
    atts.map((a) => [{ representor: a.representor, vni: String(a.vni) }, a.state === 'gone' || a.state === 'replaced' || a.state === 'waiting' || a.state === 'down' ? 0 : 1]));
  return out.join('\n') + '\n';
}

/** Where two config values differ, as the file's dotted paths (`uplink.vlan`, not
 *  `uplink`): objects are compared key by key, anything else as a whole. */
function differs(a: unknown, b: unknown, path: string): string[] {
  const obj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (!obj(a) || !obj(b)) return [path];
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => differs(a[k], b[k], `${path}.${k}`));
}

/** A change request in a few words, for the log (its values as sent: a refused one may
 *  hold anything, so each is cut short). */
function requestSummary(req: Record<string, unknown>): string {
  // Addresses as the daemon keeps them (canonical) where they parse; as sent otherwise.
  const v = (x: unknown) => {
    if (typeof x === 'string') {
      const m = parseMac(x);
      if (m) return formatMac(m);
      const a = parseIp(x);
      if (a) return formatIp(a.family, a.bytes);
    }
    return (typeof x === 'string' || typeof x === 'number' ? String(x) : JSON.stringify(x) ?? '?').slice(0, 64);
  };
  switch (req.op) {
    case 'peer-add': return `${v(req.vtep)}${req.mac !== undefined ? ` (MAC ${v(req.mac)})` : ''}`;
    case 'peer-del': return v(req.vtep);
    case 'fdb-add': return Array.isArray(req.entries) ? `${req.entries.length} entries` : `VNI ${v(req.vni)} ${v(req.mac)} → ${v(req.vtep)}`;
    case 'fdb-del': return Array.isArray(req.entries) ? `${req.entries.length} entries` : `VNI ${v(req.vni)} ${v(req.mac)}`;
    case 'attach': return `${v(req.representor)}${req.netns !== undefined ? ` in ${v(req.netns)}` : ''} on VNI ${v(req.vni)} (MAC ${v(req.mac)})`;
    case 'detach': return req.pci !== undefined ? `VF ${v(req.pci)}` : v(req.representor);
    case 'flood-set': return `VNI ${v(req.vni)} → ${req.vteps === null ? 'every peer' : Array.isArray(req.vteps) ? (req.vteps.length ? req.vteps.map(v).join(', ') : 'none') : v(req.vteps)}`;
    default: return '';
  }
}
