// The work behind `vfplane pf|vf|gc`: discovery, actions and the allocation store,
// printed as tables for people or as JSON for programs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Table from 'cli-table3';
import { listTable } from './table.js';
import { AllocStore, DB_FILE, defaultStateDir, heldInAnotherStore, putBackWaitMs, type Allocation, type HeldElsewhere } from '../alloc/store.js';
import { describeOwner, ownerAlive, parseOwner, pidStart, type Owner } from '../alloc/owner.js';
import { allocatedBeforeBoot, netdevHome, restoreVf, stepText, type PutBackStep } from '../alloc/put-back.js';
import type { IpamRecord } from '../cni/ipam.js';
import { checkSelectorAgainst, exhaustedBesides, findPool, isUnusable, loadPools, notHandedOver, poolVfs, poolView, treeOnlyFix, unboundFix, unusableFixFor, vfIsBifurcated, vfCountsByPf, whyNoMatch, whyUnusable } from '../alloc/pool.js';
import { bindVf, configVf, setNumVfs, type VfConfig } from '../sriov/actions.js';
import { listPfs, listVfs, resolvePf, resolveVf, findRepresentor, pfEswitch, vfOfRepresentor } from '../sriov/discover.js';
import { defaultSysfsRoot, openSysfs, type Sysfs } from '../sriov/sysfs.js';
import type { VfInfo } from '../sriov/types.js';
import { badFile, conflict, invalid, notFound, systemError, unavailable, VfpError } from '../util/errors.js';
import { heldText } from '../util/lock.js';
import { dropDeviceInfo, lexists, type DeviceInfoStep } from '../cni/devinfo.js';
import { printJson, progress } from './output.js';

interface Common {
  sysfsRoot?: string;
  stateDir?: string;
  json?: boolean;
}

const sysfsOf = (o: Common) => openSysfs(o.sysfsRoot);
const stateDirOf = (o: Common) => path.resolve(o.stateDir ?? defaultStateDir());

/** The store, opened (and created) for commands that change it. */
function storeRw(o: Common): AllocStore {
  return AllocStore.open(stateDirOf(o), { sysfsRoot: o.sysfsRoot ?? defaultSysfsRoot() });
}

/** The store for commands that only read: no store yet means nothing is allocated. One
 *  that cannot be reached (the state directory is a file, or not readable by this user)
 *  is an error: read as "nothing allocated", vf config would skip its holder check. */
function storeRo(o: Common): AllocStore | undefined {
  return storeExists(o) ? AllocStore.open(stateDirOf(o), { sysfsRoot: o.sysfsRoot ?? defaultSysfsRoot() }) : undefined;
}

/** The store for commands that only look (vf list, vf show): read as it is, never
 *  migrated or written, so a look with a newer vfplane during an upgrade leaves the
 *  store to the older one still writing it. */
function storeLook(o: Common): AllocStore | undefined {
  return storeExists(o) ? AllocStore.open(stateDirOf(o), { sysfsRoot: o.sysfsRoot ?? defaultSysfsRoot(), readOnly: true }) : undefined;
}

/** Whether the store exists; an error when that cannot be told. */
function storeExists(o: Common): boolean {
  const dir = stateDirOf(o);
  const db = path.join(dir, DB_FILE);
  try {
    fs.statSync(db);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    const why = code === 'ENOTDIR' ? `${dir} is not a directory` : code === 'EACCES' ? `this user may not read ${dir}` : `${code ?? (e as Error).message}`;
    throw systemError(`cannot read the allocation store ${db}: ${why}; give the state directory (--state-dir, $VFPLANE_STATE_DIR) ${code === 'EACCES' ? 'and run as a user that may read it (root)' : 'that holds the store'}`);
  }
}

/** Runs `fn`, a change to VFs that checks their holders, while no allocation or release
 *  can happen: a `vf alloc` or CNI ADD between the check and the change would get a VF
 *  changed under it. The store is made if there is none (an allocator may be making it). */
function withHolders<T>(o: Common, what: string, fn: (holder: (pci: string) => string | undefined) => T): T {
  storeExists(o); // a state directory that cannot be read is an error, not "nobody holds it"
  // A dry pass first: the actions check their input before they ask for a holder, and
  // change nothing before it. Refused input (or nothing to do) then never makes a store
  // or a state directory; only a change that needs the holders opens one. One that never
  // asks (VFs made on a PF that had none: nobody can hold them yet) is done by this pass.
  const ask = Symbol('holders');
  try {
    return fn(() => { throw ask; });
  } catch (e) {
    if (e !== ask) throw e;
  }
  const store = storeRw(o);
  try {
    return store.exclusive(what, () => fn(holderOf(store)));
  } finally {
    store.close();
  }
}

function holderOf(store: AllocStore | undefined) {
  return (pci: string): string | undefined => {
    const a = store?.get(pci);
    if (a) return describeOwner(a.owner);
    const other = store?.heldElsewhere(pci);
    return other ? `${describeOwner(other.owner)} in another allocation store of this node, ${other.dir}` : undefined;
  };
}

/** An operator's VF reference: an address or PF#N as resolveVf takes them, or the VF's
 *  own netdev name (ens1f0v3: what `ip link` shows), which is turned into its address.
 *  (vfplane-cni's deviceID stays an address: it is not read here.) A PF's netdev where a
 *  VF is wanted is named as such. */
function vfRef(sysfs: Sysfs, ref: string, o?: Common): string {
  // Addresses, PF#N and what is no interface name at all (a path) are resolveVf's to judge.
  if (ref.includes('#') || ref.includes(':') || !/^[A-Za-z0-9_.@-]{1,15}$/.test(ref) || ref === '.' || ref === '..') return ref;
  const vfs = listVfs(sysfs);
  const vf = vfs.find((v) => v.netdev === ref);
  if (vf) return vf.pci;
  const pf = listPfs(sysfs).find((p) => p.netdev === ref);
  if (pf) throw invalid(`${ref} is a PF's netdev (${pf.pci}), not a VF: name one of its VFs as ${ref}#N, by its address, or by its own netdev`);
  // A representor is the VF's port on the NIC's switch, not the VF: said, with the VF.
  const of = vfOfRepresentor(sysfs, ref, vfs);
  if (of) throw invalid(`${ref} is the representor of VF ${of.pci} (its port on the NIC's switch, not the VF's netdev): name the VF as ${of.pci}${of.netdev ? ` or ${of.netdev}` : ''}`);
  // Its netdev is in a pod (renamed there, eth0 or net1): the store recorded the name it
  // had on the host when it was allocated, the one the operator knows it by.
  if (o) {
    const store = storeLook(o);
    try {
      const held = store?.list().find((a) => a.original.netdev === ref && vfs.some((v) => v.pci === a.pci && v.netdev === null));
      if (held) return held.pci;
    } finally {
      store?.close();
    }
  }
  throw notFound(`no VF has the netdev ${JSON.stringify(ref)} in this namespace; name the VF by its PCI address (DDDD:BB:DD.F), as PF#N (${listPfs(sysfs)[0]?.netdev ?? 'ens1f0'}#0), or by its netdev (vfplane vf list shows them)`);
}

const yn = (b: boolean | undefined) => (b === undefined ? '' : b ? 'on' : 'off');
const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));

function table(head: string[], rows: (string | number)[][]): string {
  const t = listTable(head);
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

// --- pf ----------------------------------------------------------------------------

export async function pfList(o: Common): Promise<void> {
  const sysfs = await sysfsOf(o);
  // The eswitch mode (what vxlan mode's representors need) read here, not in listPfs:
  // the CNI lists PFs on every ADD and has no use for it.
  const pfs = listPfs(sysfs).map((p) => ({ ...p, ...pfEswitch(sysfs, p) }));
  if (o.json) return printJson(pfs);
  if (pfs.length === 0) {
    console.log(`no SR-IOV capable PFs under ${sysfs.root} (a simulated NIC: vfplane sim create, then --sysfs-root)`);
    return;
  }
  console.log(table(
    ['PF', 'netdev', 'driver', 'id', 'profile', 'tier', 'eswitch', 'VFs', 'reps', 'speed', 'NUMA'],
    pfs.map((p) => [p.pci, dash(p.netdev), dash(p.driver), `${p.vendor}:${p.device}`, dash(p.profile), `${dash(p.tier)}${p.tierNote ? ' *' : ''}`, `${dash(p.eswitch)}${p.eswitchNote ? ' †' : ''}`, `${p.numVfs}/${p.totalVfs}`,
      p.representors, p.linkSpeedMbps ? `${p.linkSpeedMbps / 1000}G` : '-', p.numaNode]),
  ));
  // What the tier column cannot hold: why a PF runs below what its family allows.
  for (const p of pfs.filter((x) => x.tierNote)) console.log(`* ${p.netdev ?? p.pci}: ${p.tierNote}`);
  // ...and why its eswitch mode is not what its representors alone would say.
  for (const p of pfs.filter((x) => x.eswitchNote)) console.log(`† ${p.netdev ?? p.pci}: ${p.eswitch ?? 'eswitch mode unknown'}: ${p.eswitchNote}`);
}

/** The attachments a data plane answering on this state directory's socket has for VFs
 *  of PF `pf` that no store holds (made by hand: a pod's VF is allocated, and refused
 *  first). None when no data plane answers: it is asked, not required. */
async function handAttachmentsOn(o: Common, sysfs: Sysfs, pfRef: string): Promise<{ representor: string; pci: string; vni: number }[]> {
  let pf;
  try {
    pf = resolvePf(sysfs, pfRef);
  } catch {
    return []; // setNumVfs says what is wrong with it
  }
  if (pf.numVfs === 0) return [];
  const { localSocketPath, request } = await import('../dataplane/control.js');
  const socket = localSocketPath(stateDirOf(o));
  let st: Record<string, unknown>;
  try {
    st = await request(socket, { op: 'status' }, 2000);
  } catch {
    return [];
  }
  const vfs = new Set(listVfs(sysfs, { pf: pf.pci }).map((v) => v.pci));
  const atts = (st.attachments ?? []) as { representor: string; pci?: string; vni: number; owner?: { containerId?: string } }[];
  return atts.filter((a) => a.pci && vfs.has(a.pci) && !a.owner?.containerId).map((a) => ({ representor: a.representor, pci: a.pci!, vni: a.vni }));
}

export async function pfSetNumVfs(o: Common & { force?: boolean }, pfRef: string, n: number): Promise<void> {
  const sysfs = await sysfsOf(o);
  // Changing the count destroys every VF of the PF: one the data plane forwards for by hand
  // (no allocation guards it) is refused without --force, and said with it.
  const hand = await handAttachmentsOn(o, sysfs, pfRef);
  const handText = hand.map((a) => `${a.pci} (representor ${a.representor}, VNI ${a.vni})`).join(', ');
  if (hand.length && !o.force) {
    throw conflict(`the data plane forwards for VFs of ${pfRef} attached by hand: ${handText}; changing the VF count destroys every VF: detach them first (vfplane dataplane detach --representor R), or pass --force`);
  }
  const r = withHolders(o, `set-numvfs ${pfRef}`, (holder) => setNumVfs(sysfs, pfRef, n, { force: o.force, holder }));
  if (r.changed && hand.length) {
    progress(o, `warning: the data plane forwarded for ${handText}, attached by hand; those VFs are gone: \`vfplane dataplane detach --representor R\` takes each off the overlay`);
  }
  // VFs made again at addresses the store still holds (an allocation whose VF went with a
  // lower count, or with a reboot, and whose DEL never came): held, not free.
  if (r.changed && r.after > 0) {
    const store = storeLook(o);
    const back = store ? store.list().filter((a) => a.pf === r.pf && a.vfIndex < r.after) : [];
    store?.close();
    for (const a of back) progress(o, `note: VF ${a.pci} is made again, and still held by ${describeOwner(a.owner)} (allocated ${a.createdAt}, before it was removed); its DEL, CNI GC or \`vfplane gc\` releases it`);
  }
  if (o.json) return printJson(r);
  console.log(r.changed ? `${pfRef} (${r.pf}): ${r.before} → ${r.after} VFs` : `${pfRef} (${r.pf}) already has ${r.after} VFs; nothing changed`);
}

// --- vf ----------------------------------------------------------------------------

interface VfRow extends VfInfo {
  allocation: Allocation | null;
  heldElsewhere?: HeldElsewhere;
  /** Allocated, but no device has its address now: shown as it was when allocated. */
  gone?: true;
  /** Gone with its PF: no device has the PF's address under this sysfs root either. */
  pfGone?: true;
  /** Held by nobody, yet not to be given (pool.ts notHandedOver's words). */
  unusable?: string;
  fix?: string; // what to do about it (as vf show says)
}

export async function vfList(o: Common & { pf?: string; free?: boolean; allocated?: boolean }): Promise<void> {
  if (o.free && o.allocated) throw invalid('--free and --allocated exclude each other; pass one');
  const sysfs = await sysfsOf(o);
  const rows = vfListRows(sysfs, o);
  if (o.json) return printJson(rows);
  printVfList(sysfs, rows);
}

/** The rows `vf list` prints (its --json), read from the tree and the store as they are. */
export function vfListRows(sysfs: Sysfs, o: Common & { pf?: string; free?: boolean; allocated?: boolean }): VfRow[] {
  const store = storeLook(o);
  // Held in another store of the node (another state directory): neither free nor this
  // store's to release.
  const elsewhere = store ? store.allHeldElsewhere() : AllocStore.heldByOthers(o.sysfsRoot ?? defaultSysfsRoot(), stateDirOf(o));
  const vfs = listVfs(sysfs, { pf: o.pf });
  let rows: VfRow[] = vfs.map((v) => {
    const other = elsewhere.get(v.pci);
    return { ...v, allocation: store?.get(v.pci) ?? null, ...(other ? { heldElsewhere: other } : {}) };
  });
  // Allocations of VFs that no longer exist (their PF has fewer VFs since, or a reboot
  // made fewer): still held, and listed as the VF was when it was allocated, so that an
  // operator sees what their DEL or gc will release.
  if (store) {
    const listed = new Set(vfs.map((v) => v.pci));
    const pf = o.pf ? resolvePf(sysfs, o.pf).pci : null;
    for (const a of store.list()) {
      if (listed.has(a.pci) || (pf && a.pf !== pf)) continue;
      rows.push({ ...a.original, allocation: a, gone: true, ...(sysfs.exists(`bus/pci/devices/${a.pf}`) ? {} : { pfGone: true as const }) });
    }
  }
  store?.close();
  // Nobody's, but not to be given either (`vf alloc` and pools refuse it): its netdev is
  // in another namespace, it has no driver, or a process outside vfplane has its VFIO
  // group open. Not listed as free; said why (`unusable` in --json).
  for (const r of rows) {
    if (r.allocation || r.heldElsewhere || r.gone || !isUnusable(r, () => false)) continue;
    r.unusable = notHandedOver(r);
    r.fix = unusableFixFor(r, sysfs.treeOnly);
  }
  if (o.free) rows = rows.filter((r) => !r.allocation && !r.heldElsewhere && !r.unusable);
  if (o.allocated) rows = rows.filter((r) => r.allocation || r.heldElsewhere);
  return rows;
}

function printVfList(sysfs: Sysfs, rows: VfRow[]): void {
  if (rows.length === 0) {
    console.log('no VFs match');
    return;
  }
  console.log(table(
    ['VF', 'PF', '#', 'driver', 'netdev', 'MAC', 'VLAN', 'spoofchk', 'trust', 'link', 'holder', 'VXLAN'],
    rows.map((r) => [r.gone ? `${r.pci} (gone)` : r.pci, dash(r.pfNetdev ?? r.pf), r.index, dash(r.driver), r.netdev ?? (r.vfioDevice ? `- (vfio ${path.basename(r.vfioDevice)})` : '-'), dash(r.mac),
      r.settings?.vlan ? `${r.settings.vlan}${r.settings.qos ? `/${r.settings.qos}` : ''}` : '-',
      yn(r.settings?.spoofchk), yn(r.settings?.trust), dash(r.settings?.linkState),
      r.allocation ? describeOwner(r.allocation.owner) : r.heldElsewhere ? `${describeOwner(r.heldElsewhere.owner)} (store ${r.heldElsewhere.dir})`
        : r.vfioOpenBy ? `in use: process ${r.vfioOpenBy.pid} (${r.vfioOpenBy.comm})` : r.unusable ? `not free: ${!r.driver ? 'no driver' : sysfs.treeOnly ? 'no netdevs (sim --no-netdevs)' : 'its netdev is not here'}` : 'free',
      overlayOf(r.allocation?.attachment) ?? '-']),
  ));
  const fewer = rows.filter((r) => r.gone && !r.pfGone);
  if (fewer.length) {
    console.log(`${fewer.map((r) => r.pci).join(', ')}: no longer on this node (as allocated: the PF has fewer VFs now); still held until their DEL, CNI GC or \`vfplane gc\` releases them`);
  }
  // No PF either: most often the store was filled against another sysfs root (a
  // simulated NIC) than the one this command reads.
  const noPf = rows.filter((r) => r.pfGone);
  if (noPf.length) {
    const pfs = [...new Set(noPf.map((r) => r.pf))].join(', ');
    console.log(`${noPf.map((r) => r.pci).join(', ')}: their PF ${pfs} is not under sysfs root ${sysfs.root} either. ` +
      `If the store was filled against another tree (a simulated NIC), pass its --sysfs-root (or set VFPLANE_SYSFS_ROOT); ` +
      `if the NIC is really gone, they stay held until their DEL, CNI GC or \`vfplane gc\` releases them`);
  }
}

export async function vfShow(o: Common, ref: string): Promise<void> {
  const sysfs = await sysfsOf(o);
  const shown = vfShowView(sysfs, o, ref);
  if (o.json) return printJson(shown);
  printVfShow(sysfs, shown);
}

/** What `vf show --json` prints, read from the tree and the store as they are. */
export function vfShowView(sysfs: Sysfs, o: Common, ref: string) {
  const vf = resolveVf(sysfs, vfRef(sysfs, ref, o));
  const store = storeLook(o);
  const allocation = store?.get(vf.pci) ?? null;
  const history = store ? store.history(1000).filter((h) => h.pci === vf.pci).slice(-10) : [];
  // Held in another store of the node (another state directory): not free for this one.
  // With no store here yet, the node's other stores are still asked (as vf list does).
  const heldElsewhere = allocation ? null
    : (store ? store.heldElsewhere(vf.pci) : AllocStore.heldByOthers(o.sysfsRoot ?? defaultSysfsRoot(), stateDirOf(o)).get(vf.pci)) ?? null;
  store?.close();
  // Its switchdev representor (what the data plane forwards for): none in legacy mode.
  const representor = findRepresentor(sysfs, vf) ?? null;
  // Why nobody can be given it, when nobody holds it (as vf list's `unusable`): a script
  // reading only `allocation: null` took it for free (helper-103).
  const unusable = !allocation && !heldElsewhere && isUnusable(vf, () => false) ? { unusable: notHandedOver(vf), fix: unusableFixFor(vf, sysfs.treeOnly) } : {};
  return { ...vf, representor, allocation, ...(heldElsewhere ? { heldElsewhere } : {}), ...unusable, history };
}

function printVfShow(sysfs: Sysfs, vf: ReturnType<typeof vfShowView>): void {
  const { representor, allocation, heldElsewhere, history } = vf;
  const s = vf.settings;
  const kv: [string, string][] = [
    ['VF', `${vf.pci} (virtfn${vf.index} of ${vf.pfNetdev ?? '-'} ${vf.pf})`],
    ['id', `${vf.vendor}:${vf.device}`],
    ['driver', dash(vf.driver)],
    ['netdev', vf.netdev ? `${vf.netdev} ${dash(vf.mac)} mtu ${dash(vf.mtu)}` : '- (none in the host namespace)'],
    ['IOMMU group', dash(vf.iommuGroup)],
    ['vfio device', vf.vfioDevice ? `${vf.vfioDevice}${vf.vfioOpenBy ? ` (open in process ${vf.vfioOpenBy.pid}, ${vf.vfioOpenBy.comm})` : ''}` : '-'],
    ['NUMA node', String(vf.numaNode)],
    ...(vf.rdmaDevice ? [['RDMA device', vf.rdmaDevice] as [string, string]] : []),
    ['representor', representor ?? '- (none: the PF is not in switchdev mode, or its family has none)'],
  ];
  if (s) {
    kv.push(['admin MAC', s.mac], ['VLAN', s.vlan ? `${s.vlan} qos ${s.qos} ${s.vlanProto}` : 'none'], ['spoofchk', yn(s.spoofchk)],
      ['trust', yn(s.trust)], ['link state', s.linkState], ['tx rate', `min ${s.minTxRate || '-'} max ${s.maxTxRate || '-'} Mbit/s`]);
  }
  kv.push(['holder', allocation ? `${describeOwner(allocation.owner)} since ${allocation.createdAt} (allocation ${allocation.id}${allocation.pool ? `, pool ${allocation.pool}` : ''})`
    : heldElsewhere ? `${describeOwner(heldElsewhere.owner)} since ${heldElsewhere.since}, in another allocation store of this node: ${heldElsewhere.dir}`
    : vf.vfioOpenBy ? `none in vfplane, but in use: its VFIO group is open in process ${vf.vfioOpenBy.pid} (${vf.vfioOpenBy.comm})`
    : isUnusable(vf, () => false) ? `none in vfplane, but not free: it ${notHandedOver(vf)}; ${unusableFixFor(vf, sysfs.treeOnly)}` : 'free']);
  const ov = overlayOf(allocation?.attachment);
  if (ov) {
    const att = allocation!.attachment as { representor?: string; dataplane?: string };
    kv.push(['VXLAN', `${ov}${att.representor ? ` through representor ${att.representor}` : ''}${att.dataplane ? ` (data plane ${att.dataplane})` : ''}`]);
  }
  const t = new Table({ style: { head: [], border: [] } });
  for (const [k, v] of kv) t.push({ [k]: v });
  console.log(t.toString());
  if (history.length) {
    console.log('recent history:');
    for (const h of history) console.log(`  ${h.at} ${h.op} ${describeOwner(h.owner)}${h.reason ? ` (${h.reason})` : ''}`);
  }
}

interface OwnerFlags {
  owner?: string;
  podUid?: string;
  containerId?: string;
  ifname?: string;
  netns?: string;
  pid?: number;
}

function ownerFrom(o: OwnerFlags, partial: boolean): Owner | undefined {
  const raw: Record<string, unknown> = {};
  if (o.owner !== undefined) {
    const m = /^([^/]+)\/([^/]+)$/.exec(o.owner);
    if (!m) throw invalid(`--owner ${JSON.stringify(o.owner)} is not namespace/name (like default/web-0)`);
    raw.namespace = m[1];
    raw.name = m[2];
  }
  if (o.podUid !== undefined) raw.uid = o.podUid;
  if (o.containerId !== undefined) raw.containerId = o.containerId;
  if (o.ifname !== undefined) raw.ifname = o.ifname;
  if (o.netns !== undefined) {
    raw.netns = o.netns;
    // An allocation's netns must be one now: gc takes a path that is not for a pod gone,
    // and would release the VF at its next run.
    if (!partial && ownerAlive({ netns: o.netns } as Owner) !== 'alive') {
      // A path to nothing names no namespace (exit 1); a file that is no namespace is the
      // wrong kind of value (a usage error).
      const absent = !fs.existsSync(o.netns);
      throw (absent ? notFound : invalid)(`--netns ${o.netns} is not a network namespace (${absent ? 'no such file' : 'not a file on nsfs'}); give the pod's, such as /run/netns/NAME or /proc/PID/ns/net`);
    }
  }
  if (o.pid !== undefined) {
    raw.pid = o.pid;
    if (!partial) {
      const start = pidStart(o.pid);
      if (!start) throw notFound(`--pid ${o.pid}: no such process; give a running process whose life the VF follows`);
      raw.pidStart = start;
    }
  }
  if (Object.keys(raw).length === 0) return undefined;
  return parseOwner(raw, 'owner', partial);
}

export async function vfAlloc(o: Common & OwnerFlags & { pool?: string; pci?: string; pools?: string }): Promise<void> {
  if (!!o.pool === !!o.pci) throw invalid('pass exactly one of --pool NAME or --pci VF');
  if (o.pci && o.pools) throw invalid('--pools names the file --pool looks in; with --pci no pool is read: drop one of them');
  const owner = ownerFrom(o, false);
  if (!owner) throw invalid('vf alloc needs an owner: --owner NS/NAME, --pod-uid, --container-id or --pid (plus --ifname, --netns)');
  const sysfs = await sysfsOf(o);
  const started = new Date().toISOString();
  let a: Allocation;
  if (o.pci) {
    const vf = resolveVf(sysfs, vfRef(sysfs, o.pci));
    // Another store's VF is refused first, before this one is made or entered in the
    // node's registry (allocatePci checks again, under the node's lock).
    const other = AllocStore.heldByOthers(o.sysfsRoot ?? defaultSysfsRoot(), stateDirOf(o)).get(vf.pci);
    if (other) throw heldInAnotherStore(vf.pci, other);
    // As a pool (and vfplane-cni) refuses it: a VF with no driver, or whose netdev is
    // not in the host namespace while no allocation explains it, is nobody's to give.
    // The store is read only for a VF that cannot be handed over.
    const heldOnNode = (pci: string): boolean => {
      const ro = storeRo(o);
      try {
        return ro?.heldOnNode().has(pci) ?? false;
      } finally {
        ro?.close();
      }
    };
    if (isUnusable(vf, heldOnNode)) {
      throw conflict(vf.vfioOpenBy
        ? `VF ${vf.pci} ${notHandedOver(vf)}, and no allocation explains it (a DPDK pod another CNI gave it to, a data plane, testpmd): stop that process, or pick another VF`
        : vf.driver && sysfs.treeOnly
        ? `VF ${vf.pci} is bound to ${vf.driver} and has no netdev: ${treeOnlyFix(vf.pci, vfIsBifurcated(vf))}`
        : vf.driver
        ? `VF ${vf.pci} is bound to ${vf.driver} but its netdev is not in the host namespace, and no allocation explains it: someone else has it (a pod's namespace?); find who, or take it back: \`vfplane vf bind ${vf.pci} --driver kernel --force\` rebinds it, which destroys its netdev there and makes a new one in this namespace`
        : `VF ${vf.pci} is bound to no driver, so it cannot be handed over; ${unboundFix(vf.pci, vfIsBifurcated(vf))}`, { pci: vf.pci, driver: vf.driver });
    }
    const store = storeRw(o);
    try {
      a = store.allocatePci({ vf, owner });
    } finally {
      store.close();
    }
  } else {
    const file = path.resolve(o.pools ?? path.join(stateDirOf(o), 'pools.json'));
    if (!fs.existsSync(file)) throw notFound(`no pool definitions at ${file}; write one (see README, "Pools") or pass --pools FILE`);
    const pool = findPool(fromPoolFile(file, () => loadPools(file)), o.pool!, file);
    const vfs = listVfs(sysfs);
    fromPoolFile(file, () => checkSelectorAgainst(pool.selector, vfCountsByPf(vfs), `${file}: pool ${pool.name}`), false);
    if (poolVfs(vfs, pool.selector).length === 0) throw unavailable(`no VF on this node matches pool ${JSON.stringify(pool.name)} (${file}): ${whyNoMatch(vfs, pool.selector)}`, { reason: 'empty', pool: pool.name });
    // As vfplane-cni does: a VF whose netdev is in another namespace with no allocation to
    // explain it (or bound to no driver) is someone else's, whatever the store says. The
    // refusal is made before a store is.
    let unusable: VfInfo[] = [];
    const view = (held: ReadonlySet<string>) => {
      const v = poolView(vfs, pool.selector, held);
      unusable = v.unusable;
      if (v.candidates.length === 0) throw unavailable(whyUnusable(pool.name, v.unusable, sysfs.treeOnly), { reason: 'unusable', pool: pool.name, matched: v.matched.length });
      return v.candidates;
    };
    const ro = storeRo(o);
    try {
      view(ro?.heldOnNode() ?? new Set());
    } finally {
      ro?.close();
    }
    const store = storeRw(o);
    try {
      a = store.allocate({ candidates: view(store.heldOnNode()), owner, pool: pool.name });
    } catch (e) {
      // The store counts the VFs it was offered; the pool's unusable ones are said too.
      throw e instanceof VfpError ? exhaustedBesides(e, pool.name, unusable, sysfs.treeOnly) : e;
    } finally {
      store.close();
    }
  }
  // The same pod interface asking again gets its allocation back (as a retried CNI ADD
  // does): said so, not as a new allocation.
  const again = a.createdAt < started;
  if (o.json) return printJson(again ? { ...a, existing: true } : a);
  console.log(again
    ? `${describeOwner(a.owner)} already holds ${a.pci} (virtfn${a.vfIndex} of ${a.original.pfNetdev ?? a.pf}) since ${a.createdAt}; allocation ${a.id}, unchanged`
    : `allocated ${a.pci} (virtfn${a.vfIndex} of ${a.original.pfNetdev ?? a.pf}) to ${describeOwner(a.owner)}; allocation ${a.id}`);
}

/** A pool file's mistakes are bad input, not a bad command line: exit 1, naming the file
 *  and the way out (`fix`: the message does not say one yet). loadPools says a malformed
 *  file is one (kind 'bad-file'); a range this node's VFs contradict (checkSelectorAgainst,
 *  'invalid' wherever the selector came from) is one here, where it came from the file. */
function fromPoolFile<T>(file: string, fn: () => T, fix = true): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof VfpError && (err.kind === 'invalid' || err.kind === 'bad-file')) {
      throw badFile(fix ? `${err.message}; fix ${file}, or pass --pools with another file` : err.message, { ...err.details, file });
    }
    throw err;
  }
}

/** What a release did for a VF, step by step, as data (`vf release --json`, `gc --json`;
 *  gc --dry-run's steps carry `dry: true`: the ones the real gc would take, see
 *  putBackPlan); the tables word each step with releaseText. */
type ReleaseStep =
  | PutBackStep
  | { step: 'overlay'; detached: true; dry?: true; note?: string } // dry: its data plane answers, and would be asked to; note: what its answer added
  | { step: 'overlay'; detached: false; why: string; dry?: true } // the data plane's answer, or why none came (dry: why none would)
  | { step: 'held-elsewhere'; owner: Owner; store: string } // another store holds it now: not put back
  | { step: 'released-meanwhile'; by: string | null } // vf release: another releaser (by: its recorded reason) did it while this one waited
  | DeviceInfoStep // the attachment's device-info file (Multus's), as its DEL removes it
  | { step: 'ipam'; type: string; released: true; dry?: true }
  | { step: 'ipam'; released: false; why: 'pod-alive' | 'not-recorded' };

function releaseText(s: ReleaseStep, pci: string): string {
  switch (s.step) {
    case 'overlay': return s.detached ? (s.dry ? 'would take it off the overlay' : `taken off the overlay${s.note ? ` (${s.note})` : ''}`) : s.why;
    case 'held-elsewhere': return `not put back: ${describeOwner(s.owner)} holds it now, in the store ${s.store}`;
    case 'released-meanwhile': return `put back and released meanwhile by ${s.by ? `"${s.by}"` : 'another releaser'}; nothing done here`;
    case 'device-info': return s.dry ? `would remove device-info file ${s.file}` : s.removed ? `device-info file ${s.file} removed` : s.why === 'gone already' ? `device-info file ${s.file} was gone already` : s.why!;
    case 'ipam':
      if (s.released) return s.dry ? 'would free its IPAM lease' : `IPAM ${s.type}: address released`;
      return s.why === 'pod-alive' ? 'IPAM: the pod keeps its address until its DEL'
        : 'IPAM: no config recorded (an ADD by an older vfplane); only the sandbox\'s DEL frees its address now';
    default: return stepText(s, pci);
  }
}

export async function vfRelease(o: Common & OwnerFlags & { force?: boolean; restore?: boolean }, ref?: string): Promise<void> {
  const pattern = ownerFrom(o, true);
  if (!ref && !pattern) throw invalid('vf release needs a VF, or an owner to release by (--owner NS/NAME, --container-id, --pod-uid, --pid)');
  const sysfs = await sysfsOf(o);
  // The VF named and the store, before anything is made: no store means nothing is
  // allocated, and a refused release must not leave a new state directory behind.
  const exists = storeExists(o);
  let pci: string | undefined;
  if (ref) {
    try {
      pci = resolveVf(sysfs, vfRef(sysfs, ref, o)).pci;
    } catch (err) {
      // A VF that has vanished (numvfs lowered) can still be released by address.
      const held = exists && /^[0-9a-fA-F]{4}:/.test(ref) ? storeRo(o) : undefined;
      const known = held?.get(ref.toLowerCase());
      held?.close();
      if (!known) throw err;
      pci = ref.toLowerCase();
    }
  }
  const nothing = () => {
    if (!pci) return notFound(`no VF is allocated to ${describeOwner(pattern!)}`);
    // `vf list` shows VFs other stores of the node hold: say where this one is held.
    const other = AllocStore.heldByOthers(o.sysfsRoot ?? defaultSysfsRoot(), stateDirOf(o)).get(pci);
    return other
      ? notFound(`VF ${pci} is not allocated in the store of ${path.resolve(stateDirOf(o))}: another allocation store of this node holds it (${describeOwner(other.owner)}, in ${other.dir}); release it there: vfplane vf release ${pci} --state-dir ${other.dir}`, { pci, heldElsewhere: other })
      : notFound(`VF ${pci} is not allocated; \`vfplane vf list --allocated\` shows what is`, { pci });
  };
  if (!exists) throw nothing();
  const store = storeRw(o);
  // What may be released, checked first; each VF is then put back as it was (overlay,
  // driver, settings, MTU) and only then released, by its allocation id: a VF marked
  // free must be clean, and one whose restore fails stays allocated for the next try.
  let toRelease: Allocation[];
  // --json: these records as they are; a failure's error carries them and the failures.
  const out: { pci: string; owner: Owner; id: number; putBack: ReleaseStep[] }[] = [];
  const failed: string[] = [];
  const failures: { pci: string; owner: Owner; id: number; failure: 'put-back' | 'not-recorded' | 'ipam'; error?: string }[] = [];
  try {
    if (pci) {
      if (!pattern && !o.force) {
        const a = store.get(pci);
        if (a) throw conflict(`VF ${pci} is held by ${describeOwner(a.owner)}; say who you are (--owner, --container-id, ...) or pass --force`);
        throw nothing(); // free: no owner to ask for
      }
      if (!store.get(pci)) throw nothing();
      toRelease = [store.release(pci, { owner: pattern, force: o.force, reason: 'cli', check: true })];
    } else {
      toRelease = store.findOwner(pattern!);
      if (toRelease.length === 0) throw nothing();
    }
    const hung = new Map<string, Error>(); // data planes that did not answer a detach in time
    for (const a of toRelease) {
      const who = { pci: a.pci, owner: a.owner, id: a.id };
      let steps: ReleaseStep[] | null;
      try {
        steps = await putBackAndRelease(store, sysfs, a, o.force ? 'cli (forced)' : 'cli', o.restore !== false, hung);
      } catch (err) {
        // A netdev not home: --no-restore is the way to release it as it is.
        const asIs = o.restore !== false && err instanceof VfpError && err.details?.reason === 'netdev-not-home' ? ' (or release it as it is, its netdev left where it is: --no-restore)' : '';
        failed.push(`VF ${a.pci} (${describeOwner(a.owner)}) stays allocated: ${notReleased(err, `release it again${asIs}`)}`);
        failures.push({ ...who, failure: err instanceof ReleaseNotRecorded ? 'not-recorded' : 'put-back', error: (err as Error).message });
        continue;
      }
      if (steps === null) {
        // Its pod's DEL (or the runtime's GC) put it back and released it while this waited
        // for the put-back lock: what was asked is done (it may be another pod's VF by now,
        // and is not touched).
        const last = a.owner.containerId && a.owner.ifname ? store.lastRelease(a.owner.containerId, a.owner.ifname) : undefined;
        out.push({ ...who, putBack: [{ step: 'released-meanwhile', by: last?.allocId === a.id ? last.reason ?? null : null }] });
        continue;
      }
      // A pod whose sandbox is gone may never send the DEL that frees its address: free it
      // as gc does. A live pod keeps it (it still uses the address) until its DEL.
      if ((a.attachment as { ipam?: unknown } | null)?.ipam) {
        if (ownerAlive(a.owner) === 'gone') {
          const lease = await releaseLease(a);
          if (lease.step) steps.push(lease.step);
          if (lease.failed) {
            failed.push(lease.failed.message);
            failures.push({ ...who, failure: 'ipam', error: lease.failed.error });
          }
        } else steps.push({ step: 'ipam', released: false, why: 'pod-alive' });
      }
      out.push({ ...who, putBack: steps });
    }
  } finally {
    store.close();
  }
  if (o.json && !failed.length) return printJson(out);
  if (out.length) console.log(table(['released', 'from', 'allocation', 'put back'], out.map((r) => [r.pci, describeOwner(r.owner), r.id, r.putBack.map((s) => releaseText(s, r.pci)).join('\n') || '-'])));
  if (failed.length) throw systemError(failed.join('; '), { released: out, failed: failures });
}

export async function vfConfig(o: Common & VfConfig & { vlanProto?: '802.1Q' | '802.1ad'; force?: boolean }, ref: string): Promise<void> {
  const change: VfConfig = {};
  for (const k of ['mac', 'vlan', 'qos', 'vlanProto', 'trust', 'spoofchk', 'linkState', 'minTxRate', 'maxTxRate', 'mtu'] as const) {
    if (o[k] !== undefined) (change as Record<string, unknown>)[k] = o[k];
  }
  if (Object.keys(change).length === 0) throw invalid('nothing to change: pass at least one of --mac --vlan --qos --vlan-proto --trust --spoofchk --link-state --min-tx-rate --max-tx-rate --mtu');
  const sysfs = await sysfsOf(o);
  const vf = vfRef(sysfs, ref, o);
  let heldBy: string | undefined;
  const r = withHolders(o, `vf config ${ref}`, (holder) => configVf(sysfs, vf, change, { force: o.force, holder: (pci) => (heldBy = holder(pci)) }));
  // Forced under a holder: lasting only as long as the holder does.
  const note = heldBy && r.changed.length ? `VF ${r.pci} is allocated to ${heldBy}: its release (the pod's CNI DEL, gc or vf release) puts back the settings the VF had when it was allocated, so this change lasts until then` : undefined;
  if (o.json) return printJson(note ? { ...r, note } : r);
  const already = r.unchanged.length ? `; already so: ${r.unchanged.join(', ')}` : '';
  console.log(`${r.pci}: ${r.changed.length ? `set ${r.changed.join(', ')}` : 'nothing changed'}${already}`);
  if (note) console.error(`note: ${note}`);
}

export async function vfBind(o: Common & { driver: string; force?: boolean }, ref: string): Promise<void> {
  const sysfs = await sysfsOf(o);
  const vf = vfRef(sysfs, ref, o);
  const r = withHolders(o, `vf bind ${ref}`, (holder) => bindVf(sysfs, vf, o.driver, { force: o.force, holder }));
  if (o.json) return printJson(r);
  console.log(r.changed ? `${r.pci}: ${dash(r.before)} → ${r.after}${r.vfioDevice ? ` (${r.vfioDevice})` : r.netdev ? ` (netdev ${r.netdev})` : ''}`
    : `${r.pci} is already bound to ${r.after}${r.netdevElsewhere ? `; its netdev is not in this namespace (a pod's? \`vfplane vf show ${r.pci}\` says who holds the VF): --force takes it back (that netdev goes, a new one comes up here)` : ''}`);
}

/** "VNI N" when vfplane-cni put the VF on the overlay, else null. */
function overlayOf(att: Record<string, unknown> | null | undefined): string | null {
  const vni = (att?.vxlan as { vni?: number } | null | undefined)?.vni;
  return typeof vni === 'number' ? `VNI ${vni}` : null;
}

// --- gc ----------------------------------------------------------------------------

/**
 * What gc and `vf release` do for an allocation, as CNI DEL does for its attachment: off
 * the overlay, its netdev home under its own name, MAC and MTU, and (putBack) its driver
 * and settings restored, then released. The restore and release go by allocation id,
 * with allocations held off: null, and nothing touched, when a DEL released it meanwhile
 * (the VF may be another pod's now). What was done, for the output.
 */
async function putBackAndRelease(store: AllocStore, sysfs: Sysfs, a: Allocation, reason: string, putBack = true, hung?: Map<string, Error>): Promise<ReleaseStep[] | null> {
  // One releaser at a time (store.putBackLock): the pod's own CNI DEL, or the runtime's
  // GC, may be putting it back now. Waited for; then, most likely, released meanwhile.
  // A wait of up to putBackWaitMs with nothing said would look hung: said, on stderr.
  const lock = await store.putBackLock(a.pci, reason.startsWith('gc') ? 'vfplane gc' : 'vfplane vf release', putBackWaitMs(),
    (h) => console.error(`VF ${a.pci} is being put back by ${heldText(h)}: waiting for it (up to ${putBackWaitMs() / 1000} s)`));
  if (!('release' in lock)) throw conflict(`VF ${a.pci} is being put back by ${heldText(lock)}, still after ${putBackWaitMs() / 1000} s`);
  if (lock.unlocked) console.error(`warning: ${lock.unlocked}`);
  try {
    if (store.get(a.pci)?.id !== a.id) return null;
    const steps = await putBackLocked(store, sysfs, a, reason, putBack, hung);
    // The attachment's device-info file goes with it, as its DEL would have removed it
    // (helper-103: gc and vf release left a ConnectX or DPDK pod's file behind).
    const file = (a.attachment as { deviceInfoFile?: string | null } | null)?.deviceInfoFile;
    if (steps && file) steps.push(dropDeviceInfo(file));
    return steps;
  } finally {
    lock.release();
  }
}

async function putBackLocked(store: AllocStore, sysfs: Sysfs, a: Allocation, reason: string, putBack: boolean, hung?: Map<string, Error>): Promise<ReleaseStep[] | null> {
  // Taken since by another store of the node (across a reboot, before this one
  // registered again): released here, and left as its new holder has it.
  const other = store.heldElsewhere(a.pci);
  if (other) {
    return store.releaseWith(a.pci, a.id, reason, (): ReleaseStep[] => [{ step: 'held-elsewhere', owner: other.owner, store: other.dir }]);
  }
  const off = await offOverlay(a, hung);
  // Once for both put-back steps; `cur` below is allocation a (releaseWith goes by its id).
  const beforeBoot = putBack && allocatedBeforeBoot(sysfs, a);
  let home: ReleaseStep[] = [];
  if (putBack && store.get(a.pci)?.id === a.id) {
    home = await netdevHome(sysfs, a, beforeBoot);
  }
  let putBackDone = false;
  try {
    return store.releaseWith(a.pci, a.id, reason, (cur): ReleaseStep[] => {
      const steps = [...off, ...home, ...(putBack ? restoreVf(sysfs, cur, { beforeBoot }) : [])]; // in the order done
      putBackDone = true;
      return steps;
    });
  } catch (e) {
    throw putBackDone ? new ReleaseNotRecorded(e as Error) : e;
  }
}

/** The VF was put back, and then the store could not record its release (full, read-only):
 *  it stays allocated, to be released again once the store can be written. */
class ReleaseNotRecorded extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

/** Why a VF stays allocated after putBackAndRelease threw. */
function notReleased(err: unknown, then: string): string {
  if (err instanceof ReleaseNotRecorded) return `it was put back, but its release could not be recorded (${err.message}); ${then}`;
  // The put-back's own way out, where it has one (alloc/put-back.ts: a netdev not home).
  const fix = err instanceof VfpError && typeof err.details?.fix === 'string' ? `${err.details.fix}, and` : 'fix that and';
  return `putting it back failed (${(err as Error).message}); ${fix} ${then}`;
}

/** Takes a released (or to-be-released) VF off the data plane's overlay, as CNI DEL does:
 *  a data plane still forwarding for it would refuse the VF's next pod (its representor
 *  still attached). What happened, for the output. `hung`: the data planes that did not
 *  answer in time earlier in this command, not asked again (one wait per data plane, not
 *  one per VF on it). */
async function offOverlay(a: Allocation, hung?: Map<string, Error>): Promise<ReleaseStep[]> {
  const att = a.attachment as { vxlan?: unknown; dataplane?: string } | null;
  if (!att?.vxlan) return [];
  const notTaken = (e: Error): ReleaseStep[] => [{ step: 'overlay', detached: false, why: `not taken off the overlay (${e.message}); the data plane drops it at its next start` }];
  const known = att.dataplane ? hung?.get(att.dataplane) : undefined;
  if (known) return notTaken(known);
  // detachFromOverlay says, through `log`, why a data plane it could not ask will drop
  // the VF by itself (not running, or stopping while it answered).
  const why: string[] = [], notes: string[] = [];
  const { detachFromOverlay } = await import('../dataplane/control.js');
  return detachFromOverlay(a.attachment, a.pci, (m, warning) => (warning ? notes : why).push(m)).then(
    (): ReleaseStep[] => (why.length ? why.map((w) => ({ step: 'overlay', detached: false, why: w })) : [{ step: 'overlay', detached: true, ...(notes.length ? { note: notes.join('; ') } : {}) }]),
    (e: Error): ReleaseStep[] => {
      if (hung && att.dataplane && e instanceof VfpError && e.details?.timedOut) hung.set(att.dataplane, e);
      return notTaken(e);
    },
  );
}

/**
 * gc --dry-run: the steps putBackAndRelease would take for allocation A, each `dry: true`
 * and in the order it reports them, decided by reading only: no data plane request that
 * changes anything (its `status`, asked once per data plane), no netlink change, nothing
 * written to sysfs or the store. What cannot be told is in `cannotTell` (the record's
 * `cannot-tell` failure); the steps are still the ones the real run would report.
 */
async function putBackPlan(store: AllocStore, sysfs: Sysfs, a: Allocation, dataplanes: Map<string, Promise<Error | null>>): Promise<{ steps: ReleaseStep[]; cannotTell: string[]; refused?: string }> {
  // Taken since by another store: the real run leaves it as its new holder has it.
  const other = store.heldElsewhere(a.pci);
  if (other) return { steps: [{ step: 'held-elsewhere', owner: other.owner, store: other.dir }], cannotTell: [] };
  const cannotTell: string[] = [];
  const off = await offOverlayPlan(a, dataplanes, cannotTell);
  const beforeBoot = allocatedBeforeBoot(sysfs, a);
  let home: PutBackStep[] = [];
  try {
    home = await netdevHome(sysfs, a, beforeBoot, { dry: true });
  } catch (e) {
    // A netdev not home is told from reading: the real run refuses it, and the VF stays
    // allocated (helper-108: the dry run said "would release").
    if (e instanceof VfpError && e.details?.reason === 'netdev-not-home') return { steps: [], cannotTell, refused: e.message };
    cannotTell.push(`whether its netdev would be brought home: ${(e as Error).message}`);
  }
  let put: PutBackStep[] = [];
  try {
    put = restoreVf(sysfs, a, { beforeBoot, dry: true });
    // The real run brings the netdev home (its own MTU set again) before restore looks at
    // its MTU: no MTU step then, unless a rebind gives the VF another netdev first.
    if (home.length && !put.some((s) => s.step === 'driver')) put = put.filter((s) => s.step !== 'mtu');
  } catch (e) {
    cannotTell.push((e as Error).message);
  }
  const file = (a.attachment as { deviceInfoFile?: string | null } | null)?.deviceInfoFile;
  const devinfo: ReleaseStep[] = file && lexists(file) ? [{ step: 'device-info', file, removed: true, dry: true }] : [];
  return { steps: [...off, ...home, ...put, ...devinfo], cannotTell };
}

/** offOverlay's step, for gc --dry-run: the attachment's data plane asked for its
 *  `status` only (once per data plane), whether it answers. One that does not run would
 *  not be asked (as offOverlay says); one that cannot be reached otherwise (no answer in
 *  time, a closed connection, a refusal) leaves the outcome untold, said in `cannotTell`. */
async function offOverlayPlan(a: Allocation, dataplanes: Map<string, Promise<Error | null>>, cannotTell: string[]): Promise<ReleaseStep[]> {
  const att = a.attachment as { vxlan?: unknown; dataplane?: string } | null;
  if (!att?.vxlan) return [];
  // No data plane recorded: the real run asks none, and reports it taken off.
  if (!att.dataplane) return [{ step: 'overlay', detached: true, dry: true }];
  const sock = att.dataplane;
  if (!dataplanes.has(sock)) {
    const { request } = await import('../dataplane/control.js');
    dataplanes.set(sock, request(sock, { op: 'status' }, 5_000).then(() => null, (e: Error) => e));
  }
  const err = await dataplanes.get(sock)!;
  if (!err) return [{ step: 'overlay', detached: true, dry: true }];
  if (err instanceof VfpError && err.kind === 'unavailable') {
    const { notRunning } = await import('../dataplane/control.js');
    return [{ step: 'overlay', detached: false, why: notRunning(err, a.pci), dry: true }];
  }
  cannotTell.push(`whether the data plane at ${sock} would take it off the overlay: it did not answer status (${err.message})`);
  return [{ step: 'overlay', detached: false, why: `would ask the data plane at ${sock} to take it off the overlay`, dry: true }];
}

/**
 * IPAM DEL for a released attachment whose pod is gone, with the IPAM config its ADD
 * recorded (the runtime's DEL for that sandbox may never come after a reboot, and CNI GC
 * frees only leases of attachments still in the store). IPAM DEL is idempotent, so a DEL
 * that does come later does no harm. What happened, for the output; with `dry`, what
 * would happen (gc --dry-run), decided by the same tests.
 */
async function releaseLease(a: Allocation, { dry = false } = {}): Promise<{ step?: ReleaseStep; failed?: { message: string; error: string } }> {
  const att = a.attachment as { ipam?: IpamRecord; ips?: unknown } | null;
  if (!att?.ipam) {
    // No IPAM in the network (an ADD that records its addresses, `ips`, records its IPAM
    // too: helper-93 read "an older vfplane" for one without); else made by a vfplane that
    // did not record it, and a CNI attachment may have had one.
    if (att && Array.isArray(att.ips)) return {};
    return a.owner.network !== undefined && a.owner.containerId !== undefined
      ? { step: { step: 'ipam', released: false, why: 'not-recorded' } }
      : {};
  }
  const { findPlugin, ipamDelRecorded } = await import('../cni/ipam.js');
  const type = att.ipam.netconf?.ipam?.type ?? 'unknown';
  // --dry-run: what it would release, asking the IPAM plugin nothing; a plugin the real
  // run would not find where the ADD's CNI_PATH had it is its failure (helper-95).
  if (dry) {
    try {
      findPlugin(type, att.ipam.path ?? []);
    } catch (err) {
      const error = `would fail: ${(err as Error).message}`;
      return { failed: { error, message: `VF ${a.pci}: IPAM ${type} ${error}` } };
    }
    return { step: { step: 'ipam', type, released: true, dry: true } };
  }
  try {
    await ipamDelRecorded(att.ipam, a.owner);
    return { step: { step: 'ipam', type, released: true } };
  } catch (err) {
    const error = (err as Error).message;
    return { failed: { error, message: `VF ${a.pci} released, but IPAM ${type} kept the address of ${describeOwner(a.owner)} (${error}); ` +
      `the sandbox's DEL frees it, or remove the lease by hand (host-local: the file naming container ${a.owner.containerId} under its dataDir)` } };
  }
}

/**
 * One allocation and what gc did with it (or, --dry-run, would do), as `gc --json` gives
 * it: `putBack` the steps as data (dry ones `dry: true`: the overlay, driver, settings,
 * MTU, netdev and IPAM steps the real run would take, see putBackPlan), the table's words
 * come from releaseText. `failure`: putting it back failed (it stays allocated), or it was
 * put back and the store could not record the release (`not-recorded`: it stays allocated,
 * the next gc releases it), IPAM kept
 * the address of a VF released, or (--dry-run) part of what would be done cannot be told
 * (`error` says which, `; `-separated; the steps listed are still the real run's).
 */
interface GcRecord {
  pci: string;
  owner: Owner;
  state: 'alive' | 'gone' | 'unknown' | 'released meanwhile';
  released: boolean;
  putBack: ReleaseStep[];
  failure?: 'put-back' | 'not-recorded' | 'ipam' | 'cannot-tell';
  error?: string;
}

export async function gc(o: Common & { dryRun?: boolean }): Promise<void> {
  const sysfs = await sysfsOf(o);
  const store = storeRo(o);
  const failed: string[] = [];
  const out: GcRecord[] = [];
  const dataplanes = new Map<string, Promise<Error | null>>(); // --dry-run: each asked once
  const hung = new Map<string, Error>(); // data planes that did not answer a detach in time
  if (store) {
    try {
      for (const a of store.list()) {
        const state = ownerAlive(a.owner);
        const who = { pci: a.pci, owner: a.owner };
        if (state !== 'gone') {
          out.push({ ...who, state, released: false, putBack: [] });
          continue;
        }
        if (o.dryRun) {
          // What the real run would put back (it said "-" and then restored a VLAN).
          const { steps, cannotTell, refused } = await putBackPlan(store, sysfs, a, dataplanes);
          if (refused) {
            out.push({ ...who, state, released: false, putBack: [], failure: 'put-back', error: refused });
            continue;
          }
          const rec: GcRecord = { ...who, state, released: false, putBack: steps, ...(cannotTell.length ? { failure: 'cannot-tell' as const, error: cannotTell.join('; ') } : {}) };
          const lease = await releaseLease(a, { dry: true });
          if (lease.step) rec.putBack.push(lease.step);
          if (lease.failed) Object.assign(rec, rec.failure ? { error: `${rec.error}; ${lease.failed.error}` } : { failure: 'ipam', error: lease.failed.error });
          out.push(rec);
          continue;
        }
        // Put back first, then release: a VF marked free must be clean. One that cannot
        // be put back stays allocated (the next gc tries again); gc goes on with the rest.
        // The list is old by now (a data plane may have taken seconds to answer).
        let steps: ReleaseStep[] | null;
        try {
          steps = await putBackAndRelease(store, sysfs, a, 'gc: owner gone', true, hung);
        } catch (err) {
          failed.push(`VF ${a.pci} (${describeOwner(a.owner)}) stays allocated: ${notReleased(err, 'the next gc releases it')}`);
          out.push({ ...who, state, released: false, putBack: [], failure: err instanceof ReleaseNotRecorded ? 'not-recorded' : 'put-back', error: (err as Error).message });
          continue;
        }
        if (steps === null) {
          out.push({ ...who, state: 'released meanwhile', released: false, putBack: [] });
          continue;
        }
        // Its address too, as its DEL would have given it back: nothing else remembers
        // which container held the lease once the allocation is gone.
        const lease = await releaseLease(a);
        if (lease.step) steps.push(lease.step);
        if (lease.failed) failed.push(lease.failed.message);
        out.push({ ...who, state, released: true, putBack: steps, ...(lease.failed ? { failure: 'ipam' as const, error: lease.failed.error } : {}) });
      }
    } finally {
      store.close();
    }
  }
  if (o.json && !failed.length) return printJson(out);
  const gone = out.filter((r) => r.state === 'gone');
  // With --json and failures, the error's details carry the results: no table on stdout.
  if (!o.json && gone.length === 0) console.log(`gc: ${out.length} allocation(s), every owner alive or unknown; nothing to release`);
  else if (!o.json) {
    // Every allocation, and what gc did with it: the ones kept say why (owner alive, or
    // not known to be gone).
    const action = (r: (typeof out)[number]) =>
      r.state === 'released meanwhile' ? 'none: released meanwhile'
        : r.state === 'alive' ? 'kept (owner alive)'
          : r.state !== 'gone' ? 'kept (no sign the owner is gone)'
          : o.dryRun ? (r.failure === 'put-back' ? 'would stay allocated: put-back would fail' : 'would release (owner gone)')
            : r.released ? 'released (owner gone)' : 'stays allocated: put-back failed';
    // The words these steps always had; a dry run's plan that cannot be told says so first.
    const words = (r: GcRecord) => [...(r.failure === 'cannot-tell' ? [`cannot tell: ${r.error}`] : []), ...r.putBack.map((s) => releaseText(s, r.pci)),
      ...(o.dryRun && r.failure === 'ipam' ? [`its IPAM lease: ${r.error}`] : []), ...(o.dryRun && r.failure === 'put-back' ? [r.error!] : [])];
    console.log(table(['VF', 'owner', 'gc', 'put back'], out.map((r) => [r.pci, describeOwner(r.owner), action(r), words(r).join('\n') || '-'])));
    const n = out.filter((r) => r.released).length;
    console.log(o.dryRun ? `gc --dry-run: would release ${gone.filter((r) => r.failure !== 'put-back').length} of ${out.length} allocation(s)` : `gc: released ${n} of ${out.length} allocation(s)`);
  }
  if (failed.length) throw systemError(`gc: ${failed.join('; ')}`, { results: out });
}
