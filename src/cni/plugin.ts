// The CNI commands of vfplane-cni, one function each: ADD gives a pod a VF (its netdev
// moved into the pod for a kernel-driver VF; a device-info file for a DPDK VF), DEL
// gives it back exactly as it was, CHECK verifies, GC releases what the runtime no longer
// knows, STATUS says whether an ADD could succeed. Every ADD step has an undo, run in
// reverse when a later step fails. The allocation store is the per-VF lock: only the
// holder of a VF's allocation touches it, so a stale DEL can never reset a VF that has
// since gone to another pod.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AllocStore, DB_FILE, defaultStateDir, PAUSE_ADD_ENV, pauseForTest, putBackWaitMs, type Allocation } from '../alloc/store.js';
import { describeOwner, ownerAlive, parseOwner, pidStart, podNetns, type Owner } from '../alloc/owner.js';
import { exhaustedBesides, findPool, freeInPool, handOverMode, loadPools, matchVf, notHandedOver, poolView, unusableFix, USERSPACE_DRIVERS, whyNoMatch, whyUnusable } from '../alloc/pool.js';
import { addrsIn, ipIn, linkIn, netnsId, routesIn } from '../net/ip.js';
import { netRun, type NetOp } from '../net/netops.js';
import { allocatedBeforeBoot, netdevHome, restoreDriverAndSettings, restoreVf, returnNetdev, stepText, tidyReturnedNetdev } from '../alloc/put-back.js';
import { applyVfSettingsSaid, listVfs, resolveVf, findRepresentor, vfRefs, vfSettingLimits } from '../sriov/discover.js';
import { bifurcatedVf, loadProfiles } from '../sriov/profile.js';
import { defaultSysfsRoot, openSysfs, SIM_MARKER, vanishedSysfs, type Sysfs } from '../sriov/sysfs.js';
import type { HwProfile, VfInfo, VfSettings } from '../sriov/types.js';
import { checkMtu, checkSettings, CONFIG_WORDS, minTxRateRefusal, settingsDiff, vfConfigFlags } from '../sriov/vf-settings.js';
import { canonCidr, formatIp, parseIp } from '../util/addr.js';
import { inParallel } from '../util/parallel.js';
import { heldText, type Lock } from '../util/lock.js';
import { conflict, invalid, notFound, unavailable, VfpError } from '../util/errors.js';
import { CniError, ERR } from './spec.js';
import type { CniContext } from './main.js';
import type { Logger } from './log.js';
import type { CniDns, CniResult } from './result.js';
import type { NetConf, VxlanConf } from './conf.js';
import { execIpam, findPlugin, ipamDelFor as ipamDelForHolder, type IpamCommand, type IpamRecord } from './ipam.js';
import { deviceInfoPath, dropDeviceInfo, removeDeviceInfo, writeDeviceInfo } from './devinfo.js';
import { refusedPaths, sysfsRootRefusal } from './paths.js';
import { detachFromOverlay, isRefusal, overlayAttachRequest, request as dataplaneRequest, socketPath } from '../dataplane/control.js';

type Mode = 'kernel' | 'dpdk';

/** What ADD did, kept with the allocation so DEL, CHECK and GC know what to undo, beyond
 *  the owner (container, interface, netns and network are there). */
type Attachment = {
  mode: Mode;
  phase?: 'adding'; // set while ADD is under way; absent once it finished
  mac: string | null; // the pod interface's MAC, for the data plane's FDB
  deviceInfoFile: string | null;
  vxlan: VxlanConf | null;
  representor?: string; // the port the data plane forwards for, when vxlan is set
  dataplane?: string; // the data plane's control socket the attachment was made on
  /** What the attach said of the pod's MTU (the configured one, or that it follows the
   *  overlay's), so that a data plane rebuilding its attachments from here says it too. */
  podMtu?: number;
  mtuAuto?: boolean;
  ipam?: IpamRecord; // for `vfplane gc`, which has no network config, to release the lease
  /** The IPAM plugin ADD ran (pid and start time, /proc/PID/stat), while ADD is under
   *  way: an ADD killed meanwhile leaves it running, and the lease it takes after a DEL
   *  released nothing would stay; that DEL waits for it first (orphanIpam). */
  ipamPid?: { pid: number; start: string };
  /** The routes this ADD configured (its IPAM result's), "dst via gw" canonical: CHECK
   *  holds the pod to these, not to routes other plugins of a chain put in the result. */
  routes?: string[];
  /** A kernel VF's netdev's index in the pod's namespace once ADD was done: DEL brings
   *  home the netdev with this index, whatever the pod renamed it to, and never another
   *  the pod gave its name. */
  podIfindex?: number;
  /** The addresses ADD returned for this interface, canonical: a DPDK VF's live in its
   *  application, not on an interface, so CHECK holds prevResult to these. */
  ips?: string[];
};

/** A route as CHECK and ADD's record compare it. */
const routeKey = (r: { dst: string; gw?: string }) => `${canonCidr(r.dst)}${r.gw ? ` via ${r.gw}` : ''}`;

/**
 * Handles kept between calls by `vfplane cni serve` (see keepHandles): opening the store
 * (SQLite, WAL, schema check) and a simulator's sysfs costs milliseconds per call. Each
 * is keyed by the identity of its file, so a state directory or simulator made anew at
 * the same path gets fresh handles; a replaced store closes when its last call is done.
 */
let serving = false;
const keptSysfs = new Map<string, { id: string; sysfs: Sysfs }>();
interface KeptStore { key: string; id: string; store: AllocStore; users: number }
const keptStores = new Map<string, KeptStore>(); // by state directory and sysfs root: the current handle
const storeUsers = new Map<AllocStore, KeptStore>(); // every kept handle a call still uses

/** Keeps store and sysfs handles open between calls (on), or lets them all go (off). */
export function keepHandles(on: boolean): void {
  for (const k of keptStores.values()) if (!k.users) k.store.close();
  keptStores.clear();
  keptSysfs.clear();
  serving = on;
}

function fileId(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.dev}:${st.ino}:${st.birthtimeMs}`;
  } catch {
    return '';
  }
}

const storeDirOf = (ctx: CniContext) => path.resolve(ctx.conf.stateDir ?? defaultStateDir());

/** The sysfs tree and the allocation store the config names. With `goneOk` (DEL, GC), a
 *  sysfs root that no longer exists (a simulated NIC destroyed under its pods: /sys never
 *  goes) is read as a node whose VFs are all gone: what is held there is released, its
 *  IPAM leases too, and nothing is put back. Without it, the error stands. */
async function openAll(ctx: CniContext, goneOk = false, readOnly = false): Promise<{ sysfs: Sysfs; store: AllocStore }> {
  const root = path.resolve(ctx.conf.sysfsRoot ?? defaultSysfsRoot());
  const dir = storeDirOf(ctx);
  if (!fs.existsSync(root)) {
    if (goneOk && root !== path.resolve(defaultSysfsRoot())) {
      ctx.log.info(`sysfs root ${root} is gone (a simulated NIC destroyed?): every VF held there is gone with it; releasing without putting anything back`);
      return { sysfs: vanishedSysfs(root), store: AllocStore.open(dir, { sysfsRoot: root }) };
    }
    throw new CniError(ERR.INVALID_CONFIG, `sysfsRoot ${root} does not exist`,
      'leave sysfsRoot out of the network config (the host\'s /sys), or name a tree made by `vfplane sim create`');
  }
  // Checked again where it is opened: one absent at the config's check and renamed in
  // since was never checked (refusedPaths skips a missing one: a destroyed simulator).
  if (ctx.conf.sysfsRoot) {
    const why = sysfsRootRefusal(root);
    if (why) throw new CniError(ERR.INVALID_CONFIG, why);
  }
  // CHECK only reads: it opens an existing store to read only, so it works on a store
  // whose filesystem is read-only or full (a missing one is made, and found empty).
  const ro = readOnly && fs.existsSync(path.join(dir, DB_FILE));
  if (!serving) return { sysfs: await openSysfs(root), store: AllocStore.open(dir, { sysfsRoot: root, ...(ro ? { readOnly: true } : {}) }) };
  const sysId = fileId(path.join(root, SIM_MARKER));
  let s = keptSysfs.get(root);
  if (!s || s.id !== sysId) keptSysfs.set(root, (s = { id: sysId, sysfs: await openSysfs(root) }));
  // Kept per store and node: the store knows its node's registry of stores.
  const key = `${dir}\u0000${root}`;
  let t = keptStores.get(key);
  if (!t || !t.id || t.id !== fileId(path.join(dir, DB_FILE))) {
    if (t && !t.users) t.store.close();
    const store = AllocStore.open(dir, { sysfsRoot: root });
    keptStores.set(key, (t = { key, id: fileId(path.join(dir, DB_FILE)), store, users: 0 }));
  }
  t.users++;
  storeUsers.set(t.store, t);
  return { sysfs: s.sysfs, store: t.store };
}

/** Done with a store from openAll: closed unless the server keeps it as the current one. */
function done(store: AllocStore): void {
  const t = storeUsers.get(store);
  if (!t) return store.close();
  if (--t.users > 0) return;
  storeUsers.delete(store);
  if (keptStores.get(t.key) !== t) store.close();
}

function ownerOf(ctx: CniContext): Owner {
  const a = ctx.env.args;
  return parseOwner({
    namespace: a.K8S_POD_NAMESPACE,
    name: a.K8S_POD_NAME,
    uid: a.K8S_POD_UID,
    containerId: ctx.env.containerId,
    ifname: ctx.env.ifname,
    netns: ctx.env.netns,
    network: ctx.conf.name,
  }, 'CNI_ARGS/CNI_CONTAINERID');
}

/** The PF-side settings the config asks for. */
function requestedSettings(ctx: CniContext): Partial<VfSettings> {
  const c = ctx.conf;
  const s: Partial<VfSettings> = {};
  if (c.vlan !== undefined) s.vlan = c.vlan;
  if (c.vlanQoS !== undefined) s.qos = c.vlanQoS;
  if (c.vlanProto !== undefined) s.vlanProto = c.vlanProto;
  if (ctx.conf.effective.mac !== undefined) s.mac = ctx.conf.effective.mac;
  if (c.spoofchk !== undefined) s.spoofchk = c.spoofchk === 'on';
  if (c.trust !== undefined) s.trust = c.trust === 'on';
  if (c.link_state !== undefined) s.linkState = c.link_state;
  if (c.min_tx_rate !== undefined) s.minTxRate = c.min_tx_rate;
  if (c.max_tx_rate !== undefined) s.maxTxRate = c.max_tx_rate;
  return s;
}

function withCode(err: VfpError, code: number): VfpError {
  return new VfpError(err.kind, err.message, { ...err.details, cniCode: code });
}

/**
 * Finds the VF for this ADD (the deviceID the device plugin chose, or one from the pool)
 * and, once READY resolves, allocates it; returns the allocation and the VF as read
 * before it.
 */
async function takeVf(ctx: CniContext, sysfs: Sysfs, store: AllocStore, owner: Owner, ready: Promise<unknown>): Promise<{ allocation: Allocation; vf: VfInfo }> {
  const deviceID = ctx.conf.effective.deviceID;
  if (deviceID) {
    let vf: VfInfo;
    try {
      vf = resolveVf(sysfs, deviceID);
    } catch (err) {
      if (err instanceof VfpError) throw withCode(new VfpError(err.kind, `deviceID ${deviceID}: ${err.message}`, err.details), ERR.INVALID_CONFIG);
      throw err;
    }
    // The pool is for calls without a deviceID; a network that names one and gets a VF
    // outside it most likely pairs it with the wrong device plugin resource (helper-86).
    if (ctx.conf.pool) poolMismatch(ctx, vf);
    /** The VF is another attachment's: try again once its DEL has run. */
    const stillHeld = (holder: Owner) => {
      // A holder whose sandbox is gone (a reboot; a runtime that lost it) may never send
      // its DEL: say so, and who can release it instead.
      const gone = ownerAlive(holder) === 'gone';
      return withCode(unavailable(`deviceID ${deviceID}: VF ${vf.pci} is still held by ${describeOwner(holder)}; ` +
        (gone ? `its pod's network namespace${holder.netns ? ` ${holder.netns}` : ''} no longer exists but its DEL has not run: retry once it has, or release it with \`vfplane gc\` (the runtime's CNI GC does too)`
          : 'retry once its DEL has run'), { holder, ...(gone ? { holderGone: true } : {}) }), ERR.TRY_AGAIN);
    };
    const holder = store.get(vf.pci);
    if (holder && !(holder.owner.containerId === owner.containerId && holder.owner.ifname === owner.ifname)) throw stillHeld(holder.owner);
    // A VF made a moment ago (sriov_numvfs just written) has no driver, then no netdev,
    // until the kernel's probe is done: give it a second before calling it unusable.
    // Likewise one going away and coming back (a count changed through 0).
    if (!handOverMode(vf) && !vf.vfioOpenBy) ctx.log.info(`VF ${vf.pci} has ${vf.driver ? 'no netdev in the host namespace' : 'no driver'} yet; waiting up to 1 s (a VF just made is still being probed)`);
    for (const until = Date.now() + 1000; !handOverMode(vf) && !vf.vfioOpenBy && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        vf = resolveVf(sysfs, deviceID);
      } catch (err) {
        if (Date.now() >= until && err instanceof VfpError) throw withCode(new VfpError(err.kind, `deviceID ${deviceID}: ${err.message}`, err.details), ERR.INVALID_CONFIG);
      }
    }
    if (vf.vfioOpenBy) throw withCode(conflict(`deviceID ${deviceID}: VF ${vf.pci} ${notHandedOver(vf)}; the device plugin handed out a VF that is in use`), ERR.TRY_AGAIN);
    if (!handOverMode(vf)) {
      throw withCode(conflict(`deviceID ${deviceID}: VF ${vf.pci} is ${vf.driver ? `bound to ${vf.driver} but has no netdev in the host namespace (in use elsewhere?)` : 'bound to no driver'}; bind it with \`vfplane vf bind ${vf.pci} --driver kernel|vfio-pci\``), ERR.INVALID_CONFIG);
    }
    await ready;
    try {
      return { allocation: store.allocatePci({ vf, owner, fresh: true }), vf };
    } catch (err) {
      // Another ADD took it between the check above and now: the same answer as the check
      // (the store's own words advise an operator, not a runtime).
      const d = err instanceof VfpError ? err.details : undefined;
      if (err instanceof VfpError && err.kind === 'conflict' && d?.reason !== 'interface-taken' && d?.id !== undefined && d.holder) throw stillHeld(d.holder as Owner);
      throw interfaceTakenCode(err);
    }
  }
  if (!ctx.conf.pool) {
    throw withCode(invalid('no deviceID (top level or runtimeConfig.deviceID, as Multus passes it) and no pool to allocate from: set one of them'), ERR.INVALID_CONFIG);
  }
  const { file, pool } = confPool(ctx.conf, ctx.log);
  // First a few free VFs, found reading only what the selector asks of each VF and each
  // candidate in full (not every VF of the node: ~0.2 ms a VF). Another ADD may take them
  // meanwhile: the store then refuses them all, and the walk goes on from what it holds
  // now (eight times at most). Nothing free at all: the whole list below, for the answer
  // that says why.
  const refs = vfRefs(sysfs);
  // A min_tx_rate a VF's PF has no room left for (a family whose driver keeps its VFs'
  // guarantees within the link: ice) would be refused after the VF was taken, on every
  // retry, while another PF had room (helper-104): such VFs are passed over.
  const noRoom = minRateRoom(sysfs, ctx.conf.min_tx_rate ?? 0);
  for (let round = 0; round < 8; round++) {
    const free = freeInPool(refs, pool.selector, store.heldOnNode(), 4);
    const few = free.filter((v) => noRoom(v) === null);
    if (few.length === 0) break;
    await ready;
    try {
      const allocation = store.allocate({ candidates: few, owner, pool: pool.name, fresh: true });
      return { allocation, vf: few.find((v) => v.pci === allocation.pci)! };
    } catch (err) {
      if (err instanceof VfpError && err.kind === 'unavailable' && err.details?.reason === 'exhausted') continue;
      throw interfaceTakenCode(err);
    }
  }
  // Candidates: VFs that can be handed over (a kernel VF's netdev must be in the host
  // namespace), and the held ones, whose netdevs are in their pods: the store skips those
  // and, when nothing is left, says who holds what.
  const vfs = listVfs(sysfs);
  const { matched, unusable, candidates } = poolView(vfs, pool.selector, store.heldOnNode());
  await ready;
  if (matched.length === 0) {
    throw withCode(unavailable(`no VF on this node matches pool ${JSON.stringify(pool.name)} (${file}): ${whyNoMatch(vfs, pool.selector)}`, { reason: 'empty', pool: pool.name }), ERR.TRY_AGAIN);
  }
  if (candidates.length === 0 && matched.length > 0) {
    // VFs match the selector but none can be handed over: say why, VF by VF.
    throw withCode(unavailable(whyUnusable(pool.name, unusable), { reason: 'unusable', pool: pool.name, matched: matched.length }), ERR.TRY_AGAIN);
  }
  const held = store.heldOnNode();
  const full = candidates.filter((v) => !held.has(v.pci) && noRoom(v) !== null);
  try {
    const roomy = candidates.filter((v) => !full.includes(v));
    const allocation = store.allocate({ candidates: roomy, owner, pool: pool.name, fresh: true });
    return { allocation, vf: roomy.find((v) => v.pci === allocation.pci)! };
  } catch (err) {
    // The pool's VFs that match but cannot be given are said too (helper-98: "6 VFs
    // match, all allocated" of a pool with a seventh whose netdev is elsewhere), and the
    // free ones whose PF has no room for the min_tx_rate asked.
    if (err instanceof VfpError && err.kind === 'unavailable') {
      let e = exhaustedBesides(err, pool.name, unusable, sysfs.treeOnly);
      if (full.length) {
        const pfs = [...new Set(full.map((v) => v.pfNetdev ?? v.pf))].join(', ');
        const those = `${full.length} free VF${full.length === 1 ? '' : 's'} ${full.length === 1 ? 'is' : 'are'} on ${pfs}, whose VFs' guarantees leave no room for min_tx_rate ${ctx.conf.min_tx_rate}: ${noRoom(full[0]!)}`;
        e = new VfpError(e.kind, err.details?.reason === 'empty'
          ? `no VF of pool ${JSON.stringify(pool.name)} can take min_tx_rate ${ctx.conf.min_tx_rate} now: its ${those}`
          : `${e.message}; besides, ${those}`, { ...e.details, noRoom: full.length });
      }
      throw withCode(e, ERR.TRY_AGAIN);
    }
    throw interfaceTakenCode(err);
  }
}

/** For a min_tx_rate RATE (0: none): why a VF's PF cannot take it now (its family keeps
 *  the VFs' guarantees within the link, and the others' leave less than RATE), or null.
 *  Each PF read once. */
function minRateRoom(sysfs: Sysfs, rate: number): (vf: VfInfo) => string | null {
  if (rate <= 0) return () => null;
  const limits = new Map<string, ReturnType<typeof vfSettingLimits> | null>();
  return (vf) => {
    if (!limits.has(vf.pf)) {
      try {
        limits.set(vf.pf, vfSettingLimits(sysfs, vf.pf));
      } catch {
        limits.set(vf.pf, null); // said, if it matters, by the check at the write
      }
    }
    const l = limits.get(vf.pf);
    return l ? minTxRateRefusal(l, vf.settings?.minTxRate ?? 0, rate, CONFIG_WORDS)?.reason ?? null : null;
  };
}

/** A ConnectX VF bound to vfio-pci (`vf bind --force`) is handed over as asked, but said:
 *  DPDK's mlx5 PMD is bifurcated and cannot use it so (helper-101). */
function warnBifurcatedOnVfio(ctx: CniContext, vf: VfInfo): void {
  let p: HwProfile | null;
  try {
    p = bifurcatedVf(vf.vendor, vf.device, loadProfiles());
  } catch {
    return; // a broken profile directory is said where profiles are the subject
  }
  if (!p) return;
  ctx.log.warning(`VF ${vf.pci} is a ${p.name} VF bound to vfio-pci: DPDK's ${p.dpdk.pmd} PMD cannot use it so (it runs on ${p.vf.driver}, bifurcated); the pod gets it as asked. Bind it back (vfplane vf bind ${vf.pci} --driver kernel) and give ConnectX DPDK pods a kernel-mode network with the CNIDeviceInfoFile capability (deploy/README.md, ConnectX and DPDK)`);
}

/** The store's refusal of a second allocation for this pod interface (an ADD before this
 *  one, finished or still running): as the check at ADD's start answers it, code 7. */
function interfaceTakenCode(err: unknown): unknown {
  if (!(err instanceof VfpError) || err.details?.reason !== 'interface-taken') return err;
  return new VfpError(err.kind, `${err.message}; run DEL for this attachment first`, { ...err.details, cniCode: ERR.INVALID_CONFIG });
}

/** Undoes an attachment: netdev home, settings back, device-info gone, off the overlay,
 *  as `vfplane gc` and `vf release` do it (alloc/put-back.ts), each step logged. A data
 *  plane that did not answer the detach fails it (the VF stays held, the runtime retries),
 *  after the rest is done. Idempotent. */
async function detach(sysfs: Sysfs, a: Allocation, netns: string | undefined, log?: (m: string, warning?: boolean) => void): Promise<void> {
  const att = a.attachment as Attachment | null;
  // The overlay detach (the data plane closes the representor's port) and the move home
  // each wait for the kernel's grace periods; they touch different netdevs, so they run
  // at once.
  const offOverlay = detachFromOverlay(att, a.pci, log);
  const beforeBoot = allocatedBeforeBoot(sysfs, a); // once, for every put-back step below
  const [o, h] = await Promise.allSettled([offOverlay, netdevHome(sysfs, a, beforeBoot, { netns })]);
  if (h.status === 'rejected') throw h.reason;
  // Driver and PF-side settings; a VF rebound under its pod gets a new netdev, named and
  // addressed as its own then. Also when the data plane did not answer the detach: the
  // settings are the VF's, not the data plane's, and a VF left with its pod's VLAN and
  // trust would carry them to whoever holds it next.
  for (const s of [...h.value, ...restoreVf(sysfs, a, { beforeBoot })]) log?.(`VF ${a.pci}: ${stepText(s, a.pci)}`, s.step === 'min-tx-rate-capped');
  if (att?.deviceInfoFile) dropDeviceInfoSaid(att.deviceInfoFile, (m) => log?.(m, true));
  if (o.status === 'rejected') throw o.reason;
}

/** dropDeviceInfo, a file it could not remove said through LOG. */
function dropDeviceInfoSaid(file: string, log: (m: string) => void): void {
  const s = dropDeviceInfo(file);
  if (!s.removed && s.why !== 'gone already') log(s.why!);
}

/** DEL with no attachment record to go by: the device-info file the config names (its
 *  deviceID's, or the CNIDeviceInfoFile the runtime passed) is dropped all the same: a
 *  DPDK ADD that failed half-way may have written it, or gc released the VF before. */
function dropNamedDeviceInfo(ctx: CniContext): void {
  const { conf, env } = ctx;
  if (conf.effective.deviceID || conf.runtimeConfig?.CNIDeviceInfoFile) dropDeviceInfoSaid(deviceInfoPath(conf, env), (m) => ctx.log.warning(`DEL: ${m}`));
}

/** The smallest MTU an IPv6 link may have (RFC 8200 §5; the kernel's IPV6_MIN_MTU). */
const IPV6_MIN_MTU = 1280;

/**
 * Addresses, then link up (the kernel then announces them: arp_notify sends a gratuitous
 * ARP, ndisc_notify an unsolicited NA), then routes: one batch inside the pod.
 */
/** Configures the pod's interface; its index in the pod's namespace. */
async function configureInterface(netns: string, ifname: string, r: CniResult, mtu?: number): Promise<number | undefined> {
  const v6 = (a: string) => a.includes(':');
  const ops: NetOp[] = [];
  // nodad: the address is ours by IPAM, and usable (and announced) at once.
  for (const a of r.ips ?? []) ops.push({ op: 'addr', name: ifname, address: a.address, nodad: v6(a.address) });
  ops.push({ op: 'sysctl', path: `net/ipv4/conf/${ifname}/arp_notify`, value: '1' });
  ops.push({ op: 'sysctl', path: `net/ipv6/conf/${ifname}/ndisc_notify`, value: '1', optional: true }); // IPv6 may be off in the pod
  ops.push({ op: 'set', name: ifname, up: true, ...(mtu ? { mtu } : {}) });
  const extended: typeof r.routes = [];
  for (const rt of r.routes ?? []) {
    const gw = rt.gw ?? (r.ips ?? []).find((a) => a.gateway && v6(a.address) === v6(rt.dst))?.gateway;
    if (rt.mtu || rt.advmss || rt.priority || rt.table !== undefined || rt.scope !== undefined) extended.push({ ...rt, ...(gw ? { gw } : {}) });
    else ops.push({ op: 'route', name: ifname, dst: rt.dst, ...(gw ? { gw } : {}), existOk: true });
  }
  ops.push({ op: 'get', name: ifname });
  const ifindex = (await netRun(netns, ops)).at(-1)?.ifindex;
  // The CNI 1.1.0 route fields (mtu, advmss, priority, table, scope), as the reference
  // plugins' ipam.ConfigureIface applies them, go through iproute2: the netlink batch
  // carries none of them.
  // A route the pod has already (a second interface of the same network) is skipped: the
  // first one wins, as in the reference plugins' ipam.ConfigureIface.
  for (const rt of extended) {
    try {
      ipIn(netns, ['route', 'add', rt.dst, ...(rt.gw ? ['via', rt.gw] : []), 'dev', ifname,
      ...(rt.mtu ? ['mtu', String(rt.mtu)] : []), ...(rt.advmss ? ['advmss', String(rt.advmss)] : []),
      ...(rt.priority ? ['metric', String(rt.priority)] : []), ...(rt.table !== undefined ? ['table', String(rt.table)] : []),
      ...(rt.scope !== undefined ? ['scope', String(rt.scope)] : [])]);
    } catch (err) {
      if (!/File exists/.test(String((err as Error).message))) throw err;
    }
  }
  return ifindex;
}

/** The network's pool (its `pool`, from `poolsFile`, by default pools.json in the state
 *  directory), for ADD and STATUS alike: a missing file names the config key that points
 *  at it. */
function confPool(conf: NetConf, log: Logger): { file: string; pool: ReturnType<typeof findPool> } {
  const file = path.resolve(conf.poolsFile ?? path.join(conf.stateDir ?? defaultStateDir(), 'pools.json'));
  if (!fs.existsSync(file)) throw withCode(notFound(`pool ${JSON.stringify(conf.pool)}: no pool definitions at ${file}; write them there, or set poolsFile in the network configuration to where they are`), ERR.INVALID_CONFIG);
  let pools: ReturnType<typeof loadPools>;
  try {
    pools = loadPools(file);
  } catch (e) {
    // What is wrong in the file quotes it (a byte, a value): a network config may name any
    // root-owned file, so a file not everyone may read is not quoted back in the error
    // (which reaches the pod's events); its owner reads why with the CLI.
    if (e instanceof VfpError && e.kind === 'bad-file' && !worldReadable(file)) {
      log.error((e as Error).message);
      throw new CniError(ERR.INVALID_CONFIG, `poolsFile ${file} is not a valid pool file; what is wrong is in the plugin's log (its logFile, or the runtime's log), not here: not everyone may read the file`,
        'a pool file is JSON: {"pools":[{"name":"fast","selector":{"drivers":["iavf"]}}]}');
    }
    throw e;
  }
  return { file, pool: findPool(pools, conf.pool!, file) };
}

/** Warns (the plugin's log) when the deviceID's VF is not in the pool the network also
 *  names: the ADD goes on with the device plugin's choice, as sriov-cni's would. */
function poolMismatch(ctx: CniContext, vf: VfInfo): void {
  try {
    const { file, pool } = confPool(ctx.conf, ctx.log);
    if (!matchVf(vf, pool.selector)) ctx.log.warning(`deviceID ${vf.pci} is not in pool ${JSON.stringify(pool.name)} (${file}), which this network also names: the VF the device plugin chose is used (a pool is for calls without a deviceID); if the two should agree, the network's resource (k8s.v1.cni.cncf.io/resourceName) and the pool select different VFs`);
  } catch (e) {
    ctx.log.warning(`pool ${JSON.stringify(ctx.conf.pool)} was not checked against deviceID ${vf.pci}: ${(e as Error).message}`);
  }
}

function worldReadable(file: string): boolean {
  try {
    return (fs.statSync(file).mode & 0o004) !== 0;
  } catch {
    return false;
  }
}

/** ADD, CHECK, STATUS and GC do not act on a config that names paths only root should
 *  control but others do (paths.ts): refused before anything is read or changed. */
function refuseUntrustedPaths(ctx: CniContext): void {
  const refused = refusedPaths(ctx.conf);
  if (refused.length) throw new CniError(ERR.INVALID_CONFIG, refused.map((r) => r.why).join('; '));
}

export async function cmdAdd(ctx: CniContext): Promise<CniResult> {
  refuseUntrustedPaths(ctx);
  const { env, conf } = ctx;
  // A device-info path the runtime gives is checked before anything is taken (it was
  // checked where the file is written, after the allocation and the VF's settings, which
  // were then undone: helper-86).
  if (conf.runtimeConfig?.CNIDeviceInfoFile) deviceInfoPath(conf, env);
  const netns = env.netns!;
  const ifname = env.ifname!;
  try {
    fs.statSync(netns);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CniError(ERR.UNKNOWN_CONTAINER, `CNI_NETNS ${netns} does not exist`, 'the runtime must create the pod network namespace before ADD');
    throw new CniError(ERR.IO, `CNI_NETNS ${netns} cannot be read: ${code ?? (e as Error).message}`, code === 'EACCES' ? 'vfplane-cni runs as root, as the runtime runs CNI plugins' : 'is it a network namespace the runtime made?');
  }
  // The plugin's own namespace (the host's) as the pod's: the VF's netdev would be renamed
  // and configured in place, on the host (the Go library refuses it the same way).
  if (netnsId(netns) === netnsId()) {
    throw new CniError(ERR.INVALID_NETNS, `CNI_NETNS ${netns} is the plugin's own network namespace, not a pod's`, 'give the pod sandbox\'s network namespace');
  }
  // The name check runs on the netlink thread while this one opens the store and reads
  // the VF; it is awaited before anything is allocated.
  const nameFree = netRun(netns, [{ op: 'get', name: ifname }]).then(([l]) => {
    if (l) throw new CniError(ERR.INVALID_ENV, `CNI_IFNAME ${ifname} is already taken in ${netns}`, 'pick another interface name for this attachment');
  });
  nameFree.catch(() => undefined); // awaited below; this only keeps it from counting as unhandled
  const ph = ctx.phases;
  let sysfs: Sysfs;
  let store: AllocStore;
  try {
    ({ sysfs, store } = await openAll(ctx));
  } catch (err) {
    await nameFree; // its error first, as if it had run first
    throw err;
  }
  ph.mark('open');
  const owner = ownerOf(ctx);
  const wanted = requestedSettings(ctx);
  const earlier = store.findInterface(env.containerId!, ifname);
  if (earlier) {
    done(store);
    await nameFree;
    throw new CniError(ERR.INVALID_CONFIG, `container ${env.containerId} already has VF ${earlier.pci} as ${ifname} (an earlier ADD)`, 'run DEL for this attachment first');
  }
  const undo: (() => void | Promise<void>)[] = [];
  // An undo that could not put the netdev back leaves the VF held: releasing it would
  // hand the next pod a VF whose netdev is stranded. DEL (or gc) finishes the job.
  let stranded = false;
  let a: Allocation | undefined;
  let seen: VfInfo | undefined; // the VF as this ADD found it, once it is ours
  let ipamErr: unknown; // what the IPAM ADD failed with, if it did
  try {
    // The sequence before the VF is read: if our allocation directly follows it, nobody
    // held the VF between that read and ours (see lastSeq).
    const seq = store.lastSeq();
    const taken = await takeVf(ctx, sysfs, store, owner, nameFree).catch(async (err: unknown) => {
      await nameFree; // a taken name is reported first, as if it had been checked first
      throw err;
    });
    a = taken.allocation;
    const allocation = a;
    undo.push(() => {
      if (stranded) {
        ctx.log.error(`VF ${allocation.pci} stays allocated to ${describeOwner(owner)}: its netdev could not be brought back; DEL will retry`);
        return;
      }
      store.release(allocation.pci, { id: allocation.id, reason: 'ADD failed' });
    });
    ctx.log.info(`allocated VF ${a.pci} to ${describeOwner(owner)}`);
    // The snapshot must show the VF as no holder left it half-way: read it again now that
    // it is ours, unless the store proves no allocation or release came in between (a
    // previous holder's DEL restores before it releases).
    let vf = taken.vf;
    if (a.id !== seq + 1) {
      vf = resolveVf(sysfs, a.pci);
      store.setOriginal(a.id, vf);
      a.original = vf;
    }
    seen = vf;
    const mode = handOverMode(vf);
    if (!mode) throw conflict(`VF ${vf.pci} changed under us: it is ${vf.driver ?? 'unbound'} with no netdev in the host namespace`);
    if (mode === 'dpdk' && vf.driver === 'vfio-pci') warnBifurcatedOnVfio(ctx, vf);
    // Recorded before anything moves, so a DEL after a crash knows where to look.
    // The IPAM config, for an operator's gc once the pod is gone (see IpamRecord).
    const ipamRec: Pick<Attachment, 'ipam'> = conf.ipam
      ? { ipam: { netconf: { cniVersion: conf.cniVersion, name: conf.name, ipam: conf.ipam as IpamRecord['netconf']['ipam'] }, path: env.path } }
      : {};
    // One MAC on two VFs of one PF, off the overlay: the NIC's embedded switch delivers a
    // MAC to one VF, and the other pod's interface looks up but hears nothing (a network
    // with a fixed "mac" given to two pods: a Deployment's replicas; or a "mac" that is
    // another VF's own). On the overlay the representors carry each VF's frames, not the
    // switch's MAC table, and the data plane refuses a MAC twice on one VNI. The pod's MAC
    // is recorded with the check, in one transaction, so that two ADDs at once cannot
    // both pass it (helper-93), and every record of this ADD keeps it. Code 11, as the
    // overlay's refusal: a pod re-made with its MAC may come before its old DEL, and the
    // retry then succeeds.
    // The pod's MAC: what the config sets, else what the VF has (a kernel VF's netdev; a
    // DPDK VF's PF-side setting, when it has one). The result and the records say it.
    const podMac = (conf.effective.mac ?? (mode === 'kernel' ? vf.mac : vf.settings && vf.settings.mac !== '00:00:00:00:00:00' ? vf.settings.mac : null))?.toLowerCase() ?? null;
    const macRec = !conf.vxlan && podMac ? { mac: podMac } : {};
    const other = store.setAttachmentUnless(a.id, { mode, phase: 'adding', ...macRec, ...ipamRec }, (o) => {
      const att = o.attachment as { mac?: string | null; vxlan?: unknown } | null;
      return !!podMac && !conf.vxlan && o.original.pf === vf.pf && !att?.vxlan && att?.mac?.toLowerCase() === podMac;
    });
    if (other) {
      throw new CniError(ERR.TRY_AGAIN, `MAC ${podMac} is already VF ${other.pci}'s, on the same PF ${vf.pfNetdev ?? vf.pf}, held by ${describeOwner(other.owner)}: the NIC's switch delivers a MAC to one VF only`,
        `give each pod interface its own MAC (a network with a fixed "mac" serves one pod: leave mac out, or give it per pod in runtimeConfig.mac or CNI_ARGS MAC=)${conf.effective.mac ? '' : `; this VF's own MAC is ${podMac}: give this one a mac`}; if that pod is going away, this ADD succeeds once its DEL has run`);
    }
    ph.mark('allocate');
    if (process.env[PAUSE_ADD_ENV]) pauseForTest(process.env[PAUSE_ADD_ENV]);

    // The MTU against the VF netdev's own range (its driver's), before anything changes
    // (out of it: 'invalid', code 7; an `ip` that fails: code 5, as toCniError maps them).
    if (conf.mtu !== undefined && mode === 'kernel') checkMtu(conf.mtu, vf.netdev!, `VF ${vf.pci}'s netdev ${vf.netdev}`);
    // PF-side settings, checked against the VF's current ones before any is applied; the
    // undo goes first, since one netlink request may fail half-way through its attributes.
    if (Object.keys(wanted).length > 0) {
      if (!vf.settings) throw withCode(notFound(`PF ${vf.pf} does not report VF settings, so ${Object.keys(wanted).join(', ')} cannot be set`), ERR.INVALID_CONFIG);
      const checked = checkSettings(wanted, vf.settings, vfSettingLimits(sysfs, vf.pf), CONFIG_WORDS);
      undo.push(() => void restoreDriverAndSettings(sysfs, allocation, { beforeBoot: allocatedBeforeBoot(sysfs, allocation) }));
      applyVfSettingsSaid(sysfs, vf, checked, vf.settings, CONFIG_WORDS);
    }
    ph.mark('vfSettings');

    // The netdev moves while IPAM runs: moving a netdev between namespaces is the slowest
    // step of all (the kernel waits for RCU grace periods), and the IPAM plugin is another
    // process. One request moves it and, in the pod, renames it and sets MAC and MTU.
    let mac: string | null = null;
    let mtu: number | null = null;
    let deviceInfoFile: string | null = null;
    let moved: Promise<unknown> = Promise.resolve();
    if (mode === 'kernel') {
      const dev = vf.netdev!;
      // No separate "down": moving closes the device, and each close waits for an RCU grace period.
      moved = netRun(null, [{ op: 'set', name: dev, newName: ifname, ...(conf.effective.mac ? { mac: conf.effective.mac } : {}), ...(conf.mtu ? { mtu: conf.mtu } : {}), netns }]);
      moved.catch(() => undefined); // awaited below; this only keeps it from counting as unhandled
      undo.push(async () => {
        await moved.catch(() => undefined);
        try {
          // Home from the pod; or, when the netdev came back by itself (the pod's namespace
          // went meanwhile: Linux returns it under the name it had there), its own name,
          // MAC and MTU set again, as a DEL does.
          if (!(await returnNetdev(netns, allocation.owner.netnsId, ifname, allocation.original))) {
            await tidyReturnedNetdev(sysfs, allocation, allocatedBeforeBoot(sysfs, allocation));
          }
        } catch (err) {
          stranded = fs.existsSync(netns);
          throw err;
        }
      });
      // What the request set, or what the netdev had: a move keeps both.
      mac = podMac;
      mtu = conf.mtu ?? vf.mtu;
    } else {
      mac = podMac;
    }
    // A DPDK VF's device-info file, always: it is how the pod learns its PCI address. A
    // kernel VF's when the runtime asks for one (the CNIDeviceInfoFile capability): a
    // ConnectX VF stays on mlx5_core, its netdev in the pod, and DPDK's mlx5 PMD in the
    // pod opens it by its PCI address and RDMA device, which the file gives (helper-101).
    if (mode !== 'kernel' || conf.runtimeConfig?.CNIDeviceInfoFile) {
      deviceInfoFile = deviceInfoPath(conf, env);
      writeDeviceInfo(deviceInfoFile, { pci: vf.pci, pfPci: vf.pf, representor: findRepresentor(sysfs, vf), ...(vf.rdmaDevice ? { rdmaDevice: vf.rdmaDevice } : {}) });
      const f = deviceInfoFile;
      undo.push(() => removeDeviceInfo(f));
    }
    let ipamP: Promise<CniResult> = Promise.resolve({});
    let ipamPidRec: Pick<Attachment, 'ipamPid'> = {};
    const id = a.id;
    if (conf.ipam) {
      ipamP = ipam(ctx, 'ADD', (pid) => {
        const start = pidStart(pid);
        if (start === undefined) return; // done already
        ipamPidRec = { ipamPid: { pid, start } };
        try {
          store.setAttachment(id, { mode, phase: 'adding', ...macRec, ...ipamRec, ...ipamPidRec });
        } catch {
          // The record is for a DEL after a crash; the ADD goes on without it.
        }
      });
      ipamP.catch((e: unknown) => (ipamErr = e));
      undo.push(async () => {
        // DEL even when ADD failed: a plugin killed on timeout may have reserved already,
        // and IPAM DEL is idempotent.
        await ipamP.catch(() => undefined);
        await ipam(ctx, 'DEL');
      });
    }
    // The overlay attach runs alongside the move too: the data plane opens a port on the
    // VF's representor (its socket rings and its stack drop each wait for an RCU grace
    // period), which needs nothing from the pod side. Frames it forwards before the
    // pod's addresses are set are dropped by the pod's kernel, as on any link coming up.
    let representor: string | undefined;
    let dataplane: string | undefined;
    let attached: Promise<unknown> = Promise.resolve();
    // With no "mtu" in the config, a kernel VF on the overlay takes the MTU the overlay
    // carries when its own is over it (as flannel gives its pods the underlay's less
    // VXLAN's 50 bytes): the data plane knows the underlay and says it in its reply.
    const mtuAuto = mode === 'kernel' && conf.mtu === undefined && !!conf.vxlan;
    let mtuSaid: { podMtu?: number; mtuAuto?: boolean } = {};
    if (conf.vxlan) {
      const x = conf.vxlan;
      representor = findRepresentor(sysfs, vf);
      if (!representor) {
        throw new CniError(ERR.INVALID_CONFIG, `VF ${vf.pci} has no representor netdev, so it cannot join VXLAN ${x.vni}`, `vxlan needs the PF's eswitch in switchdev mode, which gives each VF a representor (devlink dev eswitch set pci/${vf.pf} mode switchdev; mlx5, or ice on E810); a PF in legacy mode, or a family without switchdev (X710), has none`);
      }
      if (!mac) throw new CniError(ERR.INVALID_CONFIG, `VF ${vf.pci} has no MAC to register on VXLAN ${x.vni}`, 'give mac in the config (or runtimeConfig.mac)');
      if (x.group) throw new CniError(ERR.INVALID_CONFIG, `vxlan.group ${x.group}: vfplane's data plane replicates broadcast to its peers itself and does not join multicast groups`, 'remove group; list the peers in the data-plane config (or give vxlan.remote)');
      dataplane = socketPath({ socket: x.socket, stateDir: conf.stateDir ?? defaultStateDir() });
      const sock = dataplane;
      const rep = representor;
      const podMtu = conf.mtu ?? vf.mtu ?? undefined;
      mtuSaid = mtuAuto ? { mtuAuto } : podMtu ? { podMtu } : {};
      // Recorded before the request goes: a DEL or GC after this ADD was killed knows
      // which data plane to detach the VF from, and a data plane restarted meanwhile
      // finds the attachment still wanted.
      store.setAttachment(a.id, { mode, phase: 'adding', mac, deviceInfoFile, vxlan: x, representor: rep, dataplane: sock, ...mtuSaid, ...ipamRec, ...ipamPidRec } satisfies Attachment);
      const req = overlayAttachRequest({
        representor: rep, pci: vf.pci, mac, vxlan: x, mtu: mtuSaid.podMtu, mtuAuto: mtuSaid.mtuAuto,
        // The store that holds the VF: the data plane asks it (not its own state
        // directory's) whether the pod still holds the VF.
        owner: { containerId: env.containerId!, ifname, netns, network: conf.name, podNamespace: env.args.K8S_POD_NAMESPACE, podName: env.args.K8S_POD_NAME, store: path.resolve(conf.stateDir ?? defaultStateDir()) },
      });
      attached = dataplaneRequest(sock, req).catch((e: unknown) => {
        // A data plane older than this plugin (a node half-way through an upgrade) refuses
        // mtuAuto as an unknown field: asked again without it, the pod keeps its VF's
        // MTU, as that data plane's own plugin would have left it.
        if (!req.mtuAuto || !olderDataplane(e, 'mtuAuto')) throw e;
        const { mtuAuto: _, ...older } = req;
        ctx.log.warning(`the data plane at ${sock} is older than this vfplane-cni (it does not take mtuAuto): the pod keeps its VF's MTU instead of the overlay's; upgrade the data plane`);
        return dataplaneRequest(sock, older);
      }).catch((e: unknown) => {
        // A data plane stopping (or restarting) under the request: try again, as when
        // none runs.
        throw e instanceof VfpError && e.details?.closedEarly ? withCode(e, ERR.TRY_AGAIN) : e;
      });
      attached.catch(() => undefined); // awaited below
      undo.push(async () => {
        // What was attached is detached, and so is what may have been: an attach that timed
        // out or lost its connection may still run there (the data plane also refuses or
        // drops it once the VF is released). A refusal, or no data plane, left nothing.
        const maybe = await attached.then(() => true, (e: unknown) => !(isRefusal(e) || (e instanceof VfpError && e.kind === 'unavailable')));
        if (maybe) await dataplaneRequest(sock, { op: 'detach', representor: rep });
      });
    }
    ph.mark('start');
    await moved;
    ph.mark('move');
    const got = await ipamP;
    ph.mark('ipamWait');
    let lowerMtu: number | undefined;
    if (mtuAuto) {
      const r = (await attached) as { overlayMtu?: unknown } | undefined;
      if (typeof r?.overlayMtu === 'number' && mtu && mtu > r.overlayMtu) mtu = lowerMtu = r.overlayMtu;
      ph.mark('overlay'); // the wait for the data plane, charged where it was before
    }
    // IPv6 needs links of 1280 bytes at least (RFC 8200 §5): Linux takes IPv6 off an
    // interface set below that, its addresses with it, and the ADD reported addresses
    // the pod did not have (helper-87: an overlay on a small underlay).
    const v6 = (got.ips ?? []).find((i) => i.address.includes(':'));
    if (mode === 'kernel' && v6 && mtu && mtu < IPV6_MIN_MTU) {
      throw new CniError(ERR.INVALID_CONFIG, `${ifname} would have MTU ${mtu}${lowerMtu ? ', what the overlay carries here,' : ''} under IPv6's minimum of ${IPV6_MIN_MTU} (RFC 8200), and IPAM gave it ${v6.address}: Linux takes IPv6 off such an interface`,
        lowerMtu ? 'raise the underlay\'s MTU (the overlay carries it less 50 bytes over IPv4, 70 over IPv6), or give this network IPv4 addresses only' : `set mtu to ${IPV6_MIN_MTU} or more, or give this network IPv4 addresses only`);
    }
    // Chained after another plugin, this one adds its interface to the result it was
    // given (spec: pass prevResult through, or modify it); its addresses point at it.
    const prev = conf.prevResult;
    const index = prev?.interfaces?.length ?? 0;
    const mine: CniResult = {
      interfaces: [{ name: ifname, ...(mac ? { mac } : {}), ...(mtu ? { mtu } : {}), sandbox: netns, pciID: vf.pci }],
      ips: (got.ips ?? []).map((i) => ({ ...i, interface: index })),
      routes: got.routes ?? [],
    };
    const podIfindex = mode === 'kernel' ? await configureInterface(netns, ifname, mine, lowerMtu) : undefined;
    ph.mark('addresses');
    const dns = mergeDns(prev?.dns, conf.dns, got.dns);
    const result: CniResult = {
      interfaces: [...(prev?.interfaces ?? []), ...mine.interfaces!],
      ips: [...(prev?.ips ?? []), ...mine.ips!],
      routes: [...(prev?.routes ?? []), ...mine.routes!],
      ...(dns ? { dns } : {}),
    };
    // What the data plane advises about this attachment (the pod's MTU over what the
    // underlay carries) goes in this plugin's log as a warning.
    const reply = await attached;
    if (reply && typeof (reply as { note?: unknown }).note === 'string') ctx.log.warning(`data plane: ${(reply as { note: string }).note}`);

    const att: Attachment = { mode, mac, deviceInfoFile, vxlan: conf.vxlan ?? null, ...(representor ? { representor, dataplane, ...mtuSaid } : {}), ...ipamRec, routes: mine.routes!.map(routeKey), ips: mine.ips!.map((i) => canonAddr(i.address)), ...(podIfindex !== undefined ? { podIfindex } : {}) };
    ph.mark('overlay');
    store.setAttachment(a.id, att);
    ph.mark('record');
    ctx.log.info(`ADD done: VF ${vf.pci} as ${ifname} (${mode}) in ${netns}`);
    return result;
  } catch (caught) {
    // Read before the undo (which may put the driver back): a step that failed because
    // the VF changed under this ADD (rebound, or re-made by sriov_numvfs) says so.
    let err = seen ? changedUnder(caught, sysfs, seen) : caught;
    if (ipamErr !== undefined && caught === ipamErr) err = withStaleLeases(ctx, store, caught);
    ctx.log.error(`ADD failed, undoing ${undo.length} step(s): ${(err as Error).message}`);
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (e) {
        ctx.log.error(`undo step failed: ${(e as Error).message}`);
      }
    }
    throw err;
  } finally {
    done(store);
  }
}

/** The flags that point a vfplane command at the network's sysfs and allocation store,
 *  when its config names them (a simulator's tree, a store of its own): an advised
 *  command without them acts on /sys and /var/lib/vfplane (helper-109). */
const cliPaths = (ctx: CniContext) => `${ctx.conf.sysfsRoot ? ` --sysfs-root ${ctx.conf.sysfsRoot}` : ''}${ctx.conf.stateDir ? ` --state-dir ${ctx.conf.stateDir}` : ''}`;

/**
 * An IPAM ADD that failed (host-local's "no IP addresses available", a whereabouts pool
 * full) while allocations of this network whose pods are gone still hold their leases
 * (a reboot, a runtime that lost a sandbox, DELs that never ran): the plugin's own words
 * name only its range, so the way out is added to its details (helper-109: an exhausted
 * range said nothing of the two leases `vfplane gc` would free).
 */
function withStaleLeases(ctx: CniContext, store: AllocStore, err: unknown): unknown {
  let stale: Allocation[];
  try {
    stale = store.list().filter((x) => x.owner.network === ctx.conf.name && !!(x.attachment as Attachment | null)?.ipam && !(x.owner.containerId === ctx.env.containerId && x.owner.ifname === ctx.env.ifname) && ownerAlive(x.owner) === 'gone');
  } catch {
    return err;
  }
  if (!stale.length || !(err instanceof Error)) return err;
  const cmd = `vfplane gc${cliPaths(ctx)}`;
  const note = `${stale.length} allocation(s) of network ${ctx.conf.name} belong to pods that are gone and still hold their addresses (${listSomeOwners(stale)}): \`${cmd}\` releases them (\`--dry-run\` first shows what it would do)`;
  const code = err instanceof CniError ? err.code : err instanceof VfpError && typeof err.details?.cniCode === 'number' ? err.details.cniCode : ERR.IO;
  const had = err instanceof CniError ? err.details : undefined;
  return new CniError(code as number, err.message, had ? `${had}; ${note}` : note);
}

const listSomeOwners = (as: Allocation[]) => as.slice(0, 3).map((x) => `${describeOwner(x.owner)} with VF ${x.pci}`).join('; ') + (as.length > 3 ? `; ${as.length - 3} more` : '');

/**
 * A failure with no CNI code of its own (the kernel's "No such device", say) while the
 * VF's driver changed or the VF went away since ADD found it: named as that, code 11
 * (the next try meets the VF as it is now).
 */
function changedUnder(err: unknown, sysfs: Sysfs, seen: VfInfo): unknown {
  if (err instanceof CniError || (err instanceof VfpError && typeof err.details?.cniCode === 'number')) return err;
  let now: VfInfo | null;
  try {
    now = resolveVf(sysfs, seen.pci);
  } catch {
    now = null;
  }
  const what = now === null ? 'it is gone (its PF\'s VF count changed?)'
    : now.driver !== seen.driver ? `its driver went from ${seen.driver ?? 'none'} to ${now.driver ?? 'none'} (\`vfplane vf bind --force\`?)`
      : null;
  if (!what) return err;
  return new VfpError('conflict', `VF ${seen.pci} changed while this ADD ran: ${what}; the step that failed: ${(err as Error).message}`, { cniCode: ERR.TRY_AGAIN });
}

/** Runs the network's IPAM plugin for this call: its stderr goes to the call's stderr
 *  (the runtime's, also through `vfplane cni serve`), as the spec asks of delegation. */
function ipam(ctx: CniContext, command: 'ADD', onSpawn?: (pid: number) => void): Promise<CniResult>;
function ipam(ctx: CniContext, command: Exclude<IpamCommand, 'ADD'>): Promise<void>;
function ipam(ctx: CniContext, command: IpamCommand, onSpawn?: (pid: number) => void): Promise<CniResult | void> {
  const opts = { log: ctx.log, stderr: ctx.stderr, ...(onSpawn ? { onSpawn } : {}) };
  const type = ctx.conf.ipam!.type;
  return command === 'ADD' ? execIpam('ADD', ctx.raw, ctx.env, type, opts) : execIpam(command, ctx.raw, ctx.env, type, opts);
}

/** How long a DEL lets an IPAM ADD that a killed ADD left running finish on its own,
 *  before it stops it (a plugin hung, or slower than the pod's teardown can wait). */
const ORPHAN_IPAM_GRACE_MS = 5000;

/**
 * The IPAM ADD of allocation A's ADD, when that ADD was killed with it still running (its
 * record says so, and the same process still runs): its lease, taken after this DEL's
 * IPAM DEL, would stay for good. It gets ORPHAN_IPAM_GRACE_MS to finish, then its process
 * group (its own session, runProgram's setsid) is killed; either way the IPAM DEL that
 * follows releases whatever it took. Said in the log.
 */
async function orphanIpam(a: Allocation | undefined, log: Logger): Promise<void> {
  const rec = (a?.attachment as Attachment | null)?.ipamPid;
  if (!rec || (a?.attachment as Attachment).phase !== 'adding') return;
  const running = () => pidStart(rec.pid) === rec.start;
  const gone = async (ms: number) => {
    for (const until = Date.now() + ms; running() && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    return !running();
  };
  if (!running()) return;
  log.info(`the IPAM plugin of an ADD that did not finish (pid ${rec.pid}) still runs: waiting for it before releasing its address`);
  if (await gone(ORPHAN_IPAM_GRACE_MS)) return;
  log.warning(`the IPAM plugin pid ${rec.pid} still runs after ${ORPHAN_IPAM_GRACE_MS / 1000} s: stopped (SIGKILL to its process group); its address is released next`);
  try {
    if (running()) process.kill(-rec.pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  await gone(2000);
}

/** IPAM DEL for an attachment other than this call's (GC's stale ones). */
function ipamDelFor(ctx: CniContext, owner: Owner): Promise<void> {
  return ipamDelForHolder(ctx.raw, ctx.env.raw, ctx.env.path, ctx.conf.ipam!.type, owner, { log: ctx.log, stderr: ctx.stderr });
}

/** Whether two paths name the same network namespace (a runtime may write
 *  /var/run/netns/x where /run/netns/x was passed, or a /proc/PID/ns/net path). */
function sameNetns(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return netnsId(a) === netnsId(b);
  } catch {
    return false;
  }
}

/** An interface address as canonical text, keeping the host part ("10.99.0.7/24"). */
function canonAddr(s: string): string {
  const [addr, len] = s.split('/');
  const ip = parseIp(addr ?? '');
  return ip ? `${formatIp(ip.family, ip.bytes)}/${len ?? (ip.family === 4 ? 32 : 128)}` : s;
}

/** DNS settings from several sources, in order: lists are joined without repeats, the
 *  first domain wins. Undefined when none says anything. */
function mergeDns(...all: (CniDns | undefined)[]): CniDns | undefined {
  const out: CniDns = {};
  const join = (k: 'nameservers' | 'search' | 'options', v?: string[]) => {
    if (v?.length) out[k] = [...new Set([...(out[k] ?? []), ...v])];
  };
  for (const d of all) {
    if (!d) continue;
    join('nameservers', d.nameservers);
    join('search', d.search);
    join('options', d.options);
    if (d.domain && !out.domain) out.domain = d.domain;
  }
  return Object.keys(out).length ? out : undefined;
}


/** This network's VF for the call's container and interface (`a`), and whatever VF is
 *  held under them (`held`, maybe another network's). The spec keys a plugin's state by
 *  (network name, container, interface): another network's DEL or CHECK naming the same
 *  container and interface is not about this VF. */
function attachmentOf(ctx: CniContext, store: AllocStore): { held?: Allocation; a?: Allocation } {
  const held = store.findInterface(ctx.env.containerId!, ctx.env.ifname!);
  const ours = held && (held.owner.network === undefined || held.owner.network === ctx.conf.name);
  return { held, a: ours ? held : undefined };
}

/** A data plane's refusal of a request field it does not know (one from before the field:
 *  "Unrecognized key" from its schema, or its own "unknown field" wording). */
function olderDataplane(e: unknown, field: string): boolean {
  return isRefusal(e) && new RegExp(`(Unrecognized key|unknown field)s?:? [^;]*"${field}"`).test((e as Error).message);
}

export async function cmdDel(ctx: CniContext): Promise<void> {
  const { env, conf } = ctx;
  const ph = ctx.phases;
  // A store or sysfs tree ADD would have refused (paths.ts) is not read: whatever it says
  // is held is not given back. DEL still succeeds (the runtime retries a failed DEL for
  // ever, the pod stuck terminating) and releases what ADD makes before it touches either.
  const untrusted = refusedPaths(conf).filter((r) => r.field === 'stateDir' || r.field === 'sysfsRoot');
  if (untrusted.length) {
    ctx.log.warning(`DEL: not acting on the allocation store: ${untrusted.map((r) => r.why).join('; ')}`);
    dropNamedDeviceInfo(ctx);
    if (conf.ipam) await ipam(ctx, 'DEL');
    return;
  }
  // No store there: nothing was ever allocated in it, so no VF to give back, and none is
  // made (a DEL changes nothing it did not make). An address or device-info file from
  // an ADD that failed half-way, or under another stateDir, is still released.
  if (!fs.existsSync(path.join(storeDirOf(ctx), DB_FILE))) {
    ctx.log.info(`DEL: no allocation store in ${storeDirOf(ctx)} (stateDir): no VF held by container ${env.containerId} ${env.ifname}; nothing to give back`);
    dropNamedDeviceInfo(ctx);
    if (conf.ipam) await ipam(ctx, 'DEL');
    return;
  }
  const { sysfs, store } = await openAll(ctx, true);
  ph.mark('open');
  let lock: Lock | undefined;
  try {
    let { held, a } = attachmentOf(ctx, store);
    if (a) {
      // One releaser at a time (store.putBackLock): the runtime's GC or `vfplane gc` may be
      // putting this VF back now. Wait for it, then read again: finished, it leaves
      // nothing to give back but the address; failed, it leaves the VF to this DEL.
      const l = await store.putBackLock(a.pci, `CNI DEL of ${describeOwner(a.owner)}`, putBackWaitMs(),
        (h) => ctx.log.info(`DEL: VF ${a!.pci} is being put back by ${heldText(h)}: waiting for it`));
      if (!('release' in l)) {
        throw new CniError(ERR.TRY_AGAIN, `VF ${a.pci} of ${describeOwner(a.owner)} is being put back by ${heldText(l)}, still after ${putBackWaitMs() / 1000} s`,
          'it stays allocated until that finishes; DEL again (the runtime retries a failed DEL)');
      }
      lock = l;
      if (l.unlocked) ctx.log.warning(`DEL: ${l.unlocked}`);
      ph.mark('putBackLock');
      const before = a;
      ({ held, a } = attachmentOf(ctx, store));
      if (a && a.pci !== before.pci) {
        // Re-added meanwhile on another VF (a runtime that broke the spec's order): not
        // the VF this DEL holds the put-back of.
        throw new CniError(ERR.TRY_AGAIN, `container ${env.containerId} ${env.ifname} holds VF ${a.pci} now, not VF ${before.pci} it held when this DEL began`, 'DEL again');
      }
      if (!a) ctx.log.info(`DEL: VF ${before.pci} of container ${env.containerId} ${env.ifname} was put back and released meanwhile (${store.lastRelease(env.containerId!, env.ifname!)?.reason ?? 'by another releaser'})`);
    }
    if (held && !a) ctx.log.info(`DEL: VF ${held.pci} of container ${env.containerId} ${env.ifname} belongs to network ${held.owner.network}, not ${conf.name}; left alone`);
    // The netdev comes home, then IPAM releases the address; both before the VF is
    // released, so a failure of either leaves the VF ours for the retry. Not at once: a
    // netdev that cannot come home (renamed inside a pod that lives on) still carries the
    // address on the wire, which must stay leased until the retry brings it home.
    // A VF another store of the node has taken since (across a reboot) is its new pod's:
    // released here, not touched.
    const other = a ? store.heldElsewhere(a.pci) : undefined;
    if (a && other) ctx.log.info(`DEL: VF ${a.pci} is held by ${describeOwner(other.owner)} in the store ${other.dir} now; released here without putting it back`);
    const detached = a && !other
      ? detach(sysfs, a, env.netns && fs.existsSync(env.netns) ? env.netns : undefined, (m, warning) => (warning ? ctx.log.warning(`DEL: ${m}`) : ctx.log.info(`DEL: ${m}`)))
      : Promise.resolve();
    if (!a) {
      ctx.log.info(`DEL: no VF held by container ${env.containerId} ${env.ifname}; nothing to give back`);
      // A DPDK ADD may have written its device-info file before failing half-way.
      dropNamedDeviceInfo(ctx);
    }
    await detached;
    if (conf.ipam) {
      await orphanIpam(a, ctx.log);
      await ipam(ctx, 'DEL');
    }
    ph.mark('detachAndIpam');
    if (a) {
      try {
        store.release(a.pci, { id: a.id, reason: 'CNI DEL' });
      } catch (err) {
        // Released meanwhile by another DEL of the same attachment: that is the goal.
        if (!(err instanceof VfpError && (err.kind === 'not-found' || err.kind === 'conflict'))) throw err;
      }
      ph.mark('release');
      ctx.log.info(`DEL done: VF ${a.pci} released from ${describeOwner(a.owner)}`);
    }
  } finally {
    lock?.release();
    done(store);
  }
}

// The configuration's names for the PF-side settings, and how it writes their values.
const SETTING_NAMES = CONFIG_WORDS.name;
const shownSetting = (v: unknown) => (typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v));

/** CHECK of the PF-side settings: a VLAN, rate or trust changed on the PF breaks the
 *  pod's traffic while its interface looks the same. Those the config sets are held
 *  against it, as ADD applied them; the others (but the MAC, checked with the interface)
 *  against what the VF had when ADD took it, which nothing of ADD's changed (helper-109:
 *  a VLAN set on the PF for a network that asks none passed). */
function checkPfSide(ctx: CniContext, sysfs: Sysfs, a: Allocation): void {
  const wanted = requestedSettings(ctx);
  const was = a.original.settings;
  if (Object.keys(wanted).length === 0 && !was) return;
  const pci = a.pci;
  const vf = resolveVf(sysfs, pci);
  if (!vf.settings) {
    if (Object.keys(wanted).length === 0) return; // nothing asked: no settings to read is no drift said
    throw new CniError(ERR.IO, `PF ${vf.pf} no longer reports VF ${pci}'s settings, so ${Object.keys(wanted).map((k) => SETTING_NAMES[k as keyof VfSettings]).join(', ')} cannot be checked`, 'is the PF netdev still in the host namespace?');
  }
  // As ADD applied them (MAC spelled canonically; no VLAN clears the QoS).
  const asked = checkSettings(wanted, vf.settings, null, CONFIG_WORDS);
  const drift = settingsDiff(vf.settings, asked);
  const unasked: Partial<VfSettings> = {};
  if (was) {
    for (const k of Object.keys(was) as (keyof VfSettings)[]) {
      if (k !== 'mac' && !(k in asked) && vf.settings[k] !== was[k]) (unasked as Record<string, unknown>)[k] = was[k];
    }
  }
  const keys = Object.keys(drift) as (keyof VfSettings)[];
  const others = Object.keys(unasked) as (keyof VfSettings)[];
  if (keys.length === 0 && others.length === 0) return;
  const said = (ks: (keyof VfSettings)[], from: Partial<VfSettings>) => ks.map((k) => `${SETTING_NAMES[k]} ${shownSetting(from[k])}`).join(', ');
  const parts = [
    ...(keys.length ? [`where ADD set ${said(keys, drift)}`] : []),
    ...(others.length ? [`where it had ${said(others, unasked)} when ADD took it (the config sets no ${others.map((k) => SETTING_NAMES[k]).join(', ')})`] : []),
  ];
  throw new CniError(ERR.IO, `VF ${pci} has ${said([...keys, ...others], vf.settings)} on PF ${vf.pfNetdev ?? vf.pf}, ${parts.join('; and ')}`,
    `something changed it after ADD; run DEL and ADD again, or set it back with \`vfplane vf config ${pci} ${vfConfigFlags({ ...drift, ...unasked })} --force${cliPaths(ctx)}\``);
}

/** Who a release's recorded reason names, for a person. */
function releasedBy(reason: string | undefined): string {
  if (reason === 'cli (forced)') return '`vfplane vf release --force`';
  if (reason === 'cli') return '`vfplane vf release`';
  if (reason?.startsWith('gc')) return `\`vfplane gc\` (${reason})`;
  if (reason === 'CNI GC') return "the runtime's CNI GC (the attachment was not in its valid list)";
  return reason ? `"${reason}"` : 'an unrecorded release';
}

export async function cmdCheck(ctx: CniContext): Promise<void> {
  refuseUntrustedPaths(ctx);
  const { env, conf } = ctx;
  const { sysfs, store } = await openAll(ctx, false, true);
  try {
    const { held, a } = attachmentOf(ctx, store);
    if (!a) {
      // Taken away by the operator or gc (not by this attachment's DEL): say so, since
      // "run ADD first" would puzzle whoever sees a running pod.
      const gone = held ? undefined : store.lastRelease(env.containerId!, env.ifname!);
      if (gone && gone.reason !== 'CNI DEL' && gone.reason !== 'ADD failed') {
        throw new CniError(ERR.UNKNOWN_CONTAINER, `VF ${gone.pci} is no longer attached to container ${env.containerId} as ${env.ifname}: released at ${gone.at} by ${releasedBy(gone.reason)}`,
          'the pod lost this interface; re-create the pod (its DEL then ADD) to get a VF again');
      }
      throw new CniError(ERR.UNKNOWN_CONTAINER, `no VF is attached to container ${env.containerId} as ${env.ifname}${held ? ` on network ${conf.name} (it is ${held.owner.network}'s)` : ''}`, 'run ADD first');
    }
    const att = a.attachment as Attachment | null;
    // What to expect comes from prevResult (spec: CHECK "must consult the prevResult"):
    // this plugin's interface in it, the addresses that point at it, and the routes.
    const prev = conf.prevResult;
    if (!prev) {
      throw new CniError(ERR.INVALID_CONFIG, 'CHECK needs prevResult: the result ADD returned for this attachment', 'the runtime passes it; by hand, add "prevResult": <the ADD output> to the configuration');
    }
    const index = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifname && i.sandbox !== undefined && sameNetns(i.sandbox, env.netns!));
    if (index < 0) {
      const listed = (prev.interfaces ?? []).map((i) => `${i.name}${i.sandbox ? ` in ${i.sandbox}` : ''}`).join(', ') || 'none';
      throw new CniError(ERR.INVALID_CONFIG, `prevResult has no interface ${env.ifname} in ${env.netns}`, `it lists ${listed}; pass the result of this attachment's ADD`);
    }
    const want = prev.interfaces![index]!;
    checkPfSide(ctx, sysfs, a);
    let ifMac: string | undefined; // the pod interface's MAC now (a kernel VF's)
    if (!att || att.mode === 'kernel') {
      const l = linkIn(env.netns!, env.ifname!);
      if (!l) {
        // Renamed inside the pod (helper-109: "missing" sent the operator looking for a
        // VF that was there under another name): found by the MAC ADD reported.
        let renamed: string | undefined;
        try {
          if (want.mac) renamed = (JSON.parse(ipIn(env.netns!, ['-j', 'link', 'show'])) as { ifname: string; address?: string }[]).find((x) => x.address?.toLowerCase() === want.mac!.toLowerCase())?.ifname;
        } catch {
          // the namespace unreadable: said as missing
        }
        if (renamed) {
          throw new CniError(ERR.IO, `interface ${env.ifname} is missing from ${env.netns}: VF ${a.pci} is there as ${renamed} (MAC ${want.mac}), renamed inside the pod`,
            `the runtime and the pod's config know it as ${env.ifname}: rename it back (\`nsenter --net=${env.netns} ip link set ${renamed} down name ${env.ifname} up\`; its addresses stay, routes through it other than its subnet's need adding again) or re-create the pod; its DEL still finds and releases the VF`);
        }
        throw new CniError(ERR.IO, `interface ${env.ifname} is missing from ${env.netns}`, `VF ${a.pci} was attached there`);
      }
      ifMac = l.address?.toLowerCase();
      if (want.mac && l.address?.toLowerCase() !== want.mac.toLowerCase()) {
        throw new CniError(ERR.IO, `interface ${env.ifname} has MAC ${l.address}, not ${want.mac} as ADD reported`, '');
      }
      // Results before 1.1.0 carry no MTU, and a plugin chained after this one may have set
      // another (tuning's mtu), which the spec has CHECK allow: only a result's MTU binds.
      if (want.mtu && l.mtu !== want.mtu) throw new CniError(ERR.IO, `interface ${env.ifname} has MTU ${l.mtu}, not ${want.mtu}`, '');
      // The device-info file the runtime asked for (a ConnectX DPDK pod's way to its VF).
      if (att?.deviceInfoFile && !fs.existsSync(att.deviceInfoFile)) throw new CniError(ERR.IO, `device-info file ${att.deviceInfoFile} is missing`, 'run DEL and ADD again');
      const have = new Set(addrsIn(env.netns!, env.ifname!).map((x) => canonAddr(`${x.local}/${x.prefixlen}`)));
      for (const ipc of prev.ips ?? []) {
        if (ipc.interface !== index) continue;
        if (!have.has(canonAddr(ipc.address))) throw new CniError(ERR.IO, `interface ${env.ifname} lacks address ${ipc.address}`, `it has ${[...have].join(', ') || 'none'}`);
      }
      // Routes of the result are in the pod's namespace, whichever interface they use.
      // A route without a gateway may have got the address's (as ADD configures it).
      // Only the routes this plugin's ADD configured (recorded then): others in the result
      // are other plugins' to check. An attachment recorded before routes were (an older
      // vfplane) is held to every route of the result, as then.
      const routes = routesIn(env.netns!);
      const ours = att?.routes ? new Set(att.routes) : null;
      for (const rt of (prev.routes ?? []).filter((r) => !ours || ours.has(routeKey(r)))) {
        const fam = rt.dst.includes(':') ? 6 : 4;
        const dst = canonCidr(rt.dst);
        const table = rt.table !== undefined ? String(rt.table) : undefined;
        // A route the result puts in no table may have been moved to another by a plugin
        // chained after this one (sbr does): the spec has CHECK allow for that.
        const found = routes.some((r) => r.family === fam && canonCidr(r.dst, fam) === dst && (!rt.gw || r.gateway === rt.gw) &&
          (table === undefined || r.table === table || (table === '254' && r.table === 'main')));
        if (!found) throw new CniError(ERR.IO, `route to ${rt.dst}${rt.gw ? ` via ${rt.gw}` : ''} is missing from ${env.netns}`, 'ADD configured it; run DEL and ADD again');
      }
    } else {
      const vf = resolveVf(sysfs, a.pci);
      if (!vf.driver || !USERSPACE_DRIVERS.has(vf.driver)) throw new CniError(ERR.IO, `VF ${a.pci} is no longer bound to a userspace driver (it is ${vf.driver ?? 'unbound'})`, '');
      if (att.deviceInfoFile && !fs.existsSync(att.deviceInfoFile)) throw new CniError(ERR.IO, `device-info file ${att.deviceInfoFile} is missing`, '');
      // No netdev to look at: the result is held to what can be, the VF it names, the MAC
      // the PF gives the VF (what ADD reported), and the addresses ADD returned.
      if (want.pciID && want.pciID.toLowerCase() !== a.pci) {
        throw new CniError(ERR.IO, `prevResult's interface ${env.ifname} is VF ${want.pciID}, but VF ${a.pci} is attached to container ${env.containerId} as ${env.ifname}`, 'pass the result of this attachment\'s ADD');
      }
      if (want.mac) {
        if (!vf.settings) throw new CniError(ERR.IO, `PF ${vf.pf} no longer reports VF ${a.pci}'s settings, so its MAC ${want.mac} cannot be checked`, 'is the PF netdev still in the host namespace?');
        if (vf.settings.mac.toLowerCase() !== want.mac.toLowerCase()) {
          throw new CniError(ERR.IO, `VF ${a.pci} has MAC ${vf.settings.mac} on PF ${vf.pfNetdev ?? vf.pf}, not ${want.mac} as prevResult says`,
            `something changed it after ADD; run DEL and ADD again, or set it back with \`vfplane vf config ${a.pci} --mac ${want.mac} --force${cliPaths(ctx)}\``);
        }
      }
      if (att.ips) {
        const gave = new Set(att.ips);
        const listed = new Set<string>();
        for (const ipc of prev.ips ?? []) {
          if (ipc.interface !== index) continue;
          listed.add(canonAddr(ipc.address));
          if (gave.has(canonAddr(ipc.address))) continue;
          throw new CniError(ERR.IO, `prevResult gives ${env.ifname} address ${ipc.address}, which ADD did not: it gave VF ${a.pci} ${att.ips.join(', ') || 'none'}`, 'pass the result of this attachment\'s ADD');
        }
        // And the other way (helper-93: a prevResult with no addresses passed).
        const left = att.ips.filter((x) => !listed.has(x));
        if (left.length) throw new CniError(ERR.IO, `prevResult gives ${env.ifname} no address ${left.join(', ')}, which ADD gave VF ${a.pci}`, 'pass the result of this attachment\'s ADD');
      }
    }
    // The overlay: the node's data plane must still forward for this VF on its VNI.
    if (att?.vxlan && att.dataplane) {
      const st = (await dataplaneRequest(att.dataplane, { op: 'status' })) as { antiSpoof?: boolean; attachments?: { representor: string; vni: number; mac?: string; representorState?: string }[] };
      const mine = st.attachments?.find((x) => x.representor === att.representor);
      if (!mine || mine.vni !== att.vxlan.vni) {
        throw new CniError(ERR.IO, `the data plane at ${att.dataplane} does not forward for VF ${a.pci} on VXLAN ${att.vxlan.vni}`, mine ? `it has the VF on VNI ${mine.vni}` : 'run DEL and ADD again');
      }
      // Listed, but with no port on the representor the pod's frames come through.
      const cut = { gone: 'is gone', replaced: 'is a new netdev since the attach', waiting: 'did not exist when the data plane started' }[mine.representorState ?? ''];
      if (cut) throw new CniError(ERR.IO, `the data plane at ${att.dataplane} does not forward for VF ${a.pci}: its representor ${att.representor} ${cut}`, 'run DEL and ADD again');
      // Set down after the attach: the port carries nothing until it is up (helper-109).
      if (mine.representorState === 'down') throw new CniError(ERR.IO, `the data plane at ${att.dataplane} does not forward for VF ${a.pci}: its representor ${att.representor} is down`, `bring it up: \`ip link set ${att.representor} up\``);
      // A plugin chained after this one (tuning's mac) may have given the interface another
      // MAC: prevResult then carries the new one, but the data plane admits from the
      // representor only the MAC the attach registered, so the pod's every frame is dropped.
      if (ifMac && mine.mac && mine.mac.toLowerCase() !== ifMac) {
        // (A data plane older than the status field does not say: helper-94.)
        const flooded = `frames to it are not switched to it (the data plane knows the pod by ${mine.mac.toLowerCase()}), only flooded to it as unknown unicast`;
        const what = st.antiSpoof === false ? flooded
          : st.antiSpoof === true ? 'every frame from it is dropped as spoofed (antiSpoof)'
            : `every frame from it is dropped as spoofed if the data plane has antiSpoof on (its default; this one does not say), else ${flooded}`;
        throw new CniError(ERR.IO, `the data plane at ${att.dataplane} carries VF ${a.pci} on VXLAN ${att.vxlan.vni} with MAC ${mine.mac.toLowerCase()}, but interface ${env.ifname} has MAC ${ifMac}: ${what}`,
          `a plugin after vfplane-cni (tuning's mac?) changed it; set the MAC with vfplane-cni's own "mac" (or runtimeConfig.mac, or CNI_ARGS MAC=), not a later plugin, and re-create the pod (DEL, ADD)`);
      }
    }
    // The IPAM plugin checks its own state (host-local: the lease is still held). A DPDK
    // VF's addresses live in the application, not on an interface, so static (whose CHECK
    // looks for them on CNI_IFNAME) cannot check one: that plugin alone is left out.
    if (conf.ipam && (!att || att.mode === 'kernel' || conf.ipam.type !== 'static')) await ipam(ctx, 'CHECK');
  } finally {
    done(store);
  }
}

/** Stale attachments CNI GC puts back at once. */
const GC_CONCURRENCY = 8;

export async function cmdGc(ctx: CniContext): Promise<void> {
  refuseUntrustedPaths(ctx);
  const { conf } = ctx;
  // Without the list, every attachment of the network would look stale: refuse.
  if (conf['cni.dev/valid-attachments'] === undefined && conf['cni.dev/attachments'] === undefined) {
    throw new CniError(ERR.INVALID_CONFIG, 'GC needs "cni.dev/valid-attachments": the attachments of this network the runtime still has',
      'the runtime sends it; by hand, list the attachments to keep ([] releases every VF of this network)');
  }
  // Both spellings of the key (see NetConf): an attachment either lists is kept.
  const listedValid = [...(conf['cni.dev/valid-attachments'] ?? []), ...(conf['cni.dev/attachments'] ?? [])];
  const valid = new Set(listedValid.map((v) => `${v.containerID}\u0000${v.ifname}`));
  // GC goes on past a failure, releasing what it can, and reports the failures at the end.
  const failures: string[] = [];
  const { sysfs, store } = await openAll(ctx, true);
  try {
    // Each stale attachment is put back on its own, GC_CONCURRENCY at a time: one at a
    // time, a node full of them (a runtime's GC after a crash) took ~150 ms each, 17 s for
    // 110 (helper-96), past what a runtime waits. Each works on its own VF, as concurrent
    // DELs do; the shared store and sysfs are the server's, made for that.
    const releaseOne = async (listed: Allocation): Promise<void> => {
      // One releaser at a time (store.putBackLock): a VF its pod's DEL (or `vfplane gc`)
      // is putting back now is left to it, not waited for. Should it fail, the VF stays
      // allocated, and the next GC finds it again.
      const lock = await store.putBackLock(listed.pci, 'CNI GC', 0);
      if (!('release' in lock)) {
        ctx.log.info(`GC: VF ${listed.pci} of ${describeOwner(listed.owner)} is being put back by ${heldText(lock)}; left to it`);
        return;
      }
      if (lock.unlocked) ctx.log.warning(`GC: ${lock.unlocked}`);
      try {
        await releaseLocked(listed);
      } finally {
        lock.release();
      }
    };
    const releaseLocked = async (listed: Allocation): Promise<void> => {
      // Read it again: a DEL and a new ADD may have run since the list was taken.
      const a = store.get(listed.pci);
      if (!a || a.id !== listed.id) return;
      // An ADD under way (its pod's namespace lives) is not stale: the runtime lists only
      // finished attachments. Its ADD finishes it, or its DEL undoes it.
      const st = a.attachment as Attachment | null;
      if ((!st || st.phase === 'adding') && a.owner.netns && podNetns(a.owner.netns, a.owner.netnsId)) {
        ctx.log.info(`GC: VF ${a.pci} of ${describeOwner(a.owner)} is still being added; left to its ADD (or DEL)`);
        return;
      }
      ctx.log.info(`GC: releasing VF ${a.pci} of ${describeOwner(a.owner)} (not a valid attachment)`);
      const other = store.heldElsewhere(a.pci);
      if (other) ctx.log.info(`GC: VF ${a.pci} is held by ${describeOwner(other.owner)} in the store ${other.dir} now; not put back`);
      else {
        try {
          await detach(sysfs, a, a.owner.netns && fs.existsSync(a.owner.netns) ? a.owner.netns : undefined, (m, warning) => (warning ? ctx.log.warning(`GC: ${m}`) : ctx.log.info(`GC: ${m}`)));
        } catch (err) {
          // The pod's own DEL may have run meanwhile (a runtime cleaning up as it collects):
          // what failed here was its work done, not a failure (helper-98).
          const now = store.get(a.pci);
          if (!now || now.id !== a.id) {
            ctx.log.info(`GC: VF ${a.pci} of ${describeOwner(a.owner)} was released meanwhile (its DEL): nothing left to do`);
            return;
          }
          // Released half put back, the next pod would get it so (its predecessor's VLAN,
          // trust, rates, or a data plane still forwarding for it): it stays held, with
          // its address, for the next GC or `vfplane gc` to finish, as a failed DEL's does.
          ctx.log.error(`GC: could not put VF ${a.pci} back: ${(err as Error).message}; it stays allocated`);
          failures.push(`VF ${a.pci} (${describeOwner(a.owner)}) stays allocated, not put back: ${(err as Error).message}; the next GC (or vfplane gc) retries`);
          return;
        }
      }
      // What the attachment's DEL would have given back: an IPAM plugin that predates GC
      // (host-local up to 1.0.0) frees its lease only so.
      if (conf.ipam) {
        try {
          await orphanIpam(a, ctx.log);
          await ipamDelFor(ctx, a.owner);
        } catch (err) {
          ctx.log.error(`GC: IPAM DEL for ${describeOwner(a.owner)}: ${(err as Error).message}`);
          failures.push(`IPAM ${conf.ipam.type} kept the address of ${describeOwner(a.owner)}: ${(err as Error).message}`);
        }
      }
      try {
        store.release(a.pci, { id: a.id, reason: 'CNI GC' });
      } catch (err) {
        if (!(err instanceof VfpError && (err.kind === 'not-found' || err.kind === 'conflict'))) throw err;
      }
    };
    const stale = store.list().filter((l) => l.owner.network === conf.name && l.owner.containerId !== undefined && l.owner.ifname !== undefined
      && !valid.has(`${l.owner.containerId}\u0000${l.owner.ifname}`));
    // An unexpected error is thrown once every release has settled (the store is closed
    // after them, not under them).
    await inParallel(stale, GC_CONCURRENCY, releaseOne);
    let ipamErr: CniError | undefined;
    if (conf.ipam) {
      await ipam(ctx, 'GC').catch((err: unknown) => {
        ctx.log.error(`IPAM GC: ${(err as Error).message}`);
        if (err instanceof CniError) ipamErr = err;
        else failures.push(`IPAM GC: ${(err as Error).message}`);
      });
    }
    // The IPAM plugin's own error keeps its code (spec: a delegate's error is returned).
    if (ipamErr) {
      throw failures.length ? new CniError(ipamErr.code, ipamErr.message, [ipamErr.details, ...failures].filter(Boolean).join('; ')) : ipamErr;
    }
    if (failures.length) throw new CniError(ERR.IO, `GC finished with ${failures.length} failure(s): ${failures[0]}`, failures.slice(1).join('; ') || undefined);
  } finally {
    done(store);
  }
}

export async function cmdStatus(ctx: CniContext): Promise<void> {
  refuseUntrustedPaths(ctx);
  const { conf } = ctx;
  let sysfs: Sysfs;
  let store: AllocStore;
  try {
    ({ sysfs, store } = await openAll(ctx));
  } catch (err) {
    throw new CniError(ERR.NOT_AVAILABLE, `vfplane-cni cannot serve ADD: ${(err as Error).message}`, '');
  }
  try {
    const refs = vfRefs(sysfs);
    if (!refs.some((r) => r.present)) throw new CniError(ERR.NOT_AVAILABLE, `no VFs under ${sysfs.root}`, 'create VFs with `vfplane pf set-numvfs`');
    // A pool with a VF free is ready, the first one found says so (freeInPool); the whole
    // list is read only to say why none is.
    const { file, pool } = conf.pool ? confPool(conf, ctx.log) : { file: '', pool: undefined };
    if (pool && freeInPool(refs, pool.selector, store.heldOnNode(), 1).length === 0) {
      const vfs = listVfs(sysfs);
      const { matched, unusable, free } = poolView(vfs, pool.selector, store.heldOnNode());
      if (matched.length === 0) {
        throw new CniError(ERR.NOT_AVAILABLE, `no VF on this node matches pool ${JSON.stringify(conf.pool)}: ${whyNoMatch(vfs, pool.selector)}`, `compare the selector in ${file} with \`vfplane vf list\``);
      }
      if (free === 0) {
        const taken = matched.length - unusable.length;
        const inUse = unusable.filter((v) => v.vfioOpenBy).length;
        throw new CniError(ERR.NOT_AVAILABLE, `no free VF in pool ${JSON.stringify(conf.pool)}: ${matched.length} match, ${taken} allocated` +
          `${unusable.length > inUse ? `, ${unusable.length - inUse} unusable (no driver, or the netdev is outside the host namespace)` : ''}${inUse ? `, ${inUse} in use by processes outside vfplane (their VFIO groups are open)` : ''}`,
          unusable.length ? `${unusableFix(unusable)}; or wait for a release, or create more VFs` : 'wait for a release, or create more VFs');
      }
    }
    // An overlay network's ADD attaches the VF through the data plane: without one
    // answering, every ADD would fail, so the network is not ready.
    if (conf.vxlan) {
      const sock = socketPath({ socket: conf.vxlan.socket, stateDir: conf.stateDir ?? defaultStateDir() });
      const { probe } = await import('../dataplane/control.js');
      if (!fs.existsSync(sock) || !(await probe(sock))) {
        throw new CniError(ERR.NOT_AVAILABLE, `no data plane answers on ${sock}: pods on VXLAN ${conf.vxlan.vni} cannot be attached`, 'start it: `vfplane dataplane run --config FILE` (the DaemonSet\'s dataplane container)');
      }
    }
    // The spec sends STATUS on to the IPAM plugin; one that predates STATUS is skipped.
    // One that is not installed fails every ADD: not available (50), as above.
    if (conf.ipam) {
      try {
        findPlugin(conf.ipam.type, ctx.env.path);
      } catch (err) {
        if (err instanceof CniError && err.code === ERR.INVALID_CONFIG) throw new CniError(ERR.NOT_AVAILABLE, `vfplane-cni cannot serve ADD: ${err.message}`, err.details ?? '');
        throw err;
      }
      await ipam(ctx, 'STATUS');
    }
  } finally {
    done(store);
  }
}

