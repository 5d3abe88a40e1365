// Discovery of SR-IOV PFs and their VFs through sysfs (any root: /sys or a simulator's
// tree). sysfs gives the topology (virtfnN/physfn, drivers, IOMMU groups); netlink gives
// what only it knows (a netdev's live MAC and MTU, PF-side VF settings).
import * as fs from 'node:fs';
import { vfioKey, vfioUsers, type VfioUser } from './vfio-users.js';
import type { IpLink } from '../net/ip.js';
import { conflict, invalid, notFound } from '../util/errors.js';
import { isPci, parseIfname, parsePci } from './pci.js';
import { getProfile, loadProfiles, matchPf, runningTier, tierNeedsSwitchdev } from './profile.js';
import type { Sysfs } from './sysfs.js';
import type { HwProfile, PfInfo, VfInfo } from './types.js';
import { applyVfSettings, CLI_WORDS, limitsWho, minTxRateRefusal, readPfVfSetting, readPfVfSettings, type VfSettingLimits } from './vf-settings.js';
import type { VfSettings } from './types.js';

const hexId = (s: string | undefined) => (s ?? '').replace(/^0x/, '').toLowerCase().padStart(4, '0');

/**
 * Live attributes of host-namespace netdevs, read from this host's own /sys/class/net
 * (whatever the sysfs root: simulated VFs are real veths). A netdev that is not there
 * is in another namespace, as on real sysfs, where the device's net/ dir would be empty.
 */
class LinkCache {
  private readonly seen = new Map<string, IpLink | undefined>();
  private vfio: Map<string, VfioUser> | undefined;
  /** Who has a VFIO group device open, from one scan of /proc per discovery. */
  vfioUser(device: string): VfioUser | undefined {
    this.vfio ??= vfioUsers();
    const key = this.vfio.size ? vfioKey(device) : null;
    return key === null ? undefined : this.vfio.get(key);
  }
  get(name: string): IpLink | undefined {
    if (this.seen.has(name)) return this.seen.get(name);
    let l: IpLink | undefined;
    if (/^[A-Za-z0-9_.@-]{1,15}$/.test(name) && name !== '.' && name !== '..') {
      try {
        const dir = `/sys/class/net/${name}`;
        const ifindex = Number(fs.readFileSync(`${dir}/ifindex`, 'utf8'));
        l = { ifindex, ifname: name, address: fs.readFileSync(`${dir}/address`, 'utf8').trim(), mtu: Number(fs.readFileSync(`${dir}/mtu`, 'utf8')) };
      } catch {
        l = undefined;
      }
    }
    this.seen.set(name, l);
    return l;
  }
}

function devPath(pci: string): string {
  return `bus/pci/devices/${pci}`;
}

/** A PCI device's RDMA device (infiniband/ under it, as the device plugin's rdmamap reads
 *  it), or undefined. */
function rdmaDeviceOf(sysfs: Sysfs, pci: string): string | undefined {
  return sysfs.list(`${devPath(pci)}/infiniband`)[0];
}

/** The netdev of a PCI device, when it has one in this network namespace. */
function netdevOf(sysfs: Sysfs, pci: string, cache: LinkCache): IpLink | undefined {
  const dir = `${devPath(pci)}/net`;
  for (const name of sysfs.list(dir)) {
    // A switchdev PF's device also carries its VFs' representors: not the PF's netdev.
    if (isVfPort(sysfs, `${dir}/${name}`)) continue;
    const l = cache.get(name);
    if (l) return l;
  }
  return undefined;
}

/** A switchdev VF representor's port name (phys_port_name, from its devlink port):
 *  "pf0vf3", "c1pf0vf3" on a SmartNIC's external host controller, "pf0vfr3" from older
 *  ice, or "3" (the VF index alone) from older mlx5. Null for anything else (a PF's
 *  "p0", an uplink's "pf0"). */
export function parseVfPortName(s: string): { pf: number | null; vf: number } | null {
  const m = /^(?:c\d+)?pf(\d+)vfr?(\d+)$/.exec(s);
  if (m) return { pf: Number(m[1]), vf: Number(m[2]) };
  return /^\d+$/.test(s) ? { pf: null, vf: Number(s) } : null;
}

/** Whether the netdev at sysfs dir DIR is a VF's representor: a VF port name, and (the
 *  bare-number form, which says less) a switch id. */
function isVfPort(sysfs: Sysfs, dir: string): { pf: number | null; vf: number } | null {
  const p = parseVfPortName(sysfs.tryRead(`${dir}/phys_port_name`) ?? '');
  if (p && p.pf === null && !sysfs.tryRead(`${dir}/phys_switch_id`)) return null;
  return p;
}

/**
 * The representor netdevs of PF's VFs, by VF index, as the kernel names them: in
 * switchdev mode the PF's driver (mlx5, ice) makes a netdev per VF under the PF's PCI
 * device, whose phys_port_name says which VF it stands for ("pf<N>vf<I>", N the PF's PCI
 * function) and whose phys_switch_id is the PF's. Empty for a PF in legacy mode, or a
 * family without switchdev. The simulated NIC lays its representors out the same way.
 */
export function pfRepresentors(sysfs: Sysfs, pfPci: string): Map<number, string> {
  const dir = `${devPath(pfPci)}/net`;
  const fn = Number(pfPci.slice(pfPci.lastIndexOf('.') + 1));
  const ports = sysfs.list(dir).map((name) => ({ name, vf: isVfPort(sysfs, `${dir}/${name}`), sw: sysfs.tryRead(`${dir}/${name}/phys_switch_id`) }));
  // The PF's own switch id (its uplink port's): representors of another switch are not its.
  const own = ports.find((p) => !p.vf && p.sw)?.sw;
  const out = new Map<number, string>();
  for (const p of ports) {
    if (p.vf && (p.vf.pf === null || p.vf.pf === fn) && (!own || p.sw === own) && !out.has(p.vf.vf)) out.set(p.vf.vf, p.name);
  }
  return out;
}

/** What a simulated PF of a family without switchdev (X710, virtio) says of the
 *  representors the simulator made for it anyway, so that the overlay runs on any family
 *  (doctor and pf list alike). */
export function simRepresentorsNote(family: string): string {
  return `made by the simulator: a real ${family} has no switchdev mode, so no representors and no vxlan mode`;
}

export interface PfEswitch {
  eswitch: 'legacy' | 'switchdev' | null;
  representors: number;
  /** Why the mode is not what the representors alone would say (a family without
   *  switchdev; a simulated PF without VFs). */
  eswitchNote?: string;
}

/**
 * A PF's eswitch mode as sysfs shows it, and how many of its VFs have a representor.
 * A family whose hw-profile has no switchdev (i40e has no eswitch modes at all) is
 * legacy whatever its netdevs look like: the simulator makes representors for every
 * family, and they are its own, not the family's. Otherwise representors are what
 * switchdev mode makes (one per VF, under the PF's device), so a PF with VFs and none of
 * them is in legacy mode. Without VFs, a PF netdev with no switch id is legacy (mlx5 and
 * ice both give one in switchdev mode), but a switch id says nothing (ice reports its
 * devlink port's in either mode): null, as when there is no netdev to read; a simulated
 * PF says what it does with VFs (representors with netdevs, none tree-only). `devlink
 * dev eswitch show pci/PF` has the last word. FAMILY: the PF's profile, when the caller
 * has it (else found by pf.profile).
 */
export function pfEswitch(sysfs: Sysfs, pf: Pick<PfInfo, 'pci' | 'netdev' | 'numVfs' | 'profile'>, family?: HwProfile | null): PfEswitch {
  const representors = [...pfRepresentors(sysfs, pf.pci).keys()].filter((i) => i < pf.numVfs).length;
  if (family === undefined) {
    try {
      family = pf.profile ? getProfile(pf.profile) : null;
    } catch {
      family = null; // a profile that no longer loads is said where it is loaded
    }
  }
  if (family && !family.offloads.switchdev) {
    const note = representors === 0 ? undefined
      : sysfs.isSim ? `the representors are ${simRepresentorsNote(family.name)} (here vfplane-cni's vxlan mode runs on them)`
      : `the ${family.name} family has no switchdev mode, yet ${representors} VF port netdev(s) look like representors`;
    return { eswitch: 'legacy', representors, ...(note ? { eswitchNote: note } : {}) };
  }
  if (representors > 0) return { eswitch: 'switchdev', representors };
  if (pf.numVfs > 0) return { eswitch: 'legacy', representors };
  if (sysfs.isSim && family) {
    return sysfs.treeOnly
      ? { eswitch: 'legacy', representors, eswitchNote: 'simulated without netdevs: its VFs get no representors' }
      : { eswitch: 'switchdev', representors, eswitchNote: 'simulated: each VF made gets a representor, as in switchdev mode' };
  }
  if (pf.netdev && !sysfs.tryRead(`${devPath(pf.pci)}/net/${pf.netdev}/phys_switch_id`)) return { eswitch: 'legacy', representors };
  return { eswitch: null, representors };
}

/** The representor netdev of VF INDEX of PF (pfRepresentors), or undefined. */
export function findRepresentor(sysfs: Sysfs, vf: { pf: string; index: number }): string | undefined {
  return pfRepresentors(sysfs, vf.pf).get(vf.index);
}

/** The VF among VFS whose representor is the netdev REP (findRepresentor turned round),
 *  or undefined: each PF's representors read once. */
export function vfOfRepresentor(sysfs: Sysfs, rep: string, vfs: readonly VfInfo[]): VfInfo | undefined {
  const reps = new Map<string, Map<number, string>>();
  return vfs.find((v) => {
    if (!reps.has(v.pf)) reps.set(v.pf, pfRepresentors(sysfs, v.pf));
    return reps.get(v.pf)!.get(v.index) === rep;
  });
}

export interface Discovery {
  pfs: PfInfo[];
  vfs: VfInfo[];
}

function pfInfo(sysfs: Sysfs, pci: string, profiles: HwProfile[], cache: LinkCache): PfInfo {
  const d = devPath(pci);
  const vendor = hexId(sysfs.tryRead(`${d}/vendor`));
  const device = hexId(sysfs.tryRead(`${d}/device`));
  const nd = netdevOf(sysfs, pci, cache);
  const speed = nd ? sysfs.readInt(`${d}/net/${nd.ifname}/speed`) : undefined;
  const profile = matchPf(vendor, device, profiles) ?? null;
  const numVfs = sysfs.readInt(`${d}/sriov_numvfs`) ?? 0;
  return {
    pci,
    netdev: nd?.ifname ?? null,
    driver: sysfs.linkName(`${d}/driver`) ?? null,
    vendor,
    device,
    numaNode: sysfs.readInt(`${d}/numa_node`) ?? -1,
    totalVfs: sysfs.readInt(`${d}/sriov_totalvfs`) ?? 0,
    numVfs,
    linkSpeedMbps: speed !== undefined && speed > 0 ? speed : null,
    profile: profile?.name ?? null,
    ...pfTier(sysfs, profile, { pci, netdev: nd?.ifname ?? null, numVfs }),
  };
}

/** The tier the PF allows as it runs (runningTier: its eswitch mode, pfEswitch, read only
 *  for a family whose tier depends on it). */
function pfTier(sysfs: Sysfs, profile: HwProfile | null, pf: Pick<PfInfo, 'pci' | 'netdev' | 'numVfs'>): Pick<PfInfo, 'tier' | 'tierNote'> {
  if (!profile) return { tier: null };
  if (!tierNeedsSwitchdev(profile)) return { tier: profile.tier };
  const mode = pfEswitch(sysfs, { ...pf, profile: profile.name }, profile).eswitch;
  const t = runningTier(profile, mode === 'switchdev');
  const set = `devlink dev eswitch set pci/${pf.pci} mode switchdev`;
  const note = mode === null
    ? `the ${profile.name} family's tier 1 needs its eswitch in switchdev mode, which sysfs cannot tell on a PF without VFs (devlink dev eswitch show pci/${pf.pci}; ${set})`
    : `the ${profile.name} family's tier 1 needs its eswitch in switchdev mode: ${set}`;
  return { tier: t.tier, ...(t.legacy ? { tierNote: note } : {}) };
}

/** The PCI address of the VF at virtfnINDEX of PF, or undefined when that link is
 *  missing or odd. */
function vfPci(sysfs: Sysfs, pf: PfInfo, index: number): string | undefined {
  const pci = sysfs.linkName(`${devPath(pf.pci)}/virtfn${index}`);
  if (!pci || !isPci(pci)) return undefined;
  // The kernel links both ways; a virtfn link to a device that does not name this PF as
  // its physfn (dangling, or to the PF itself in a damaged tree) leads to no VF of it:
  // acting on it would bind or configure some other device.
  if (sysfs.linkName(`${devPath(pci)}/physfn`) !== pf.pci) return undefined;
  return pci;
}

// A VF's attributes, one read each: VfInfo takes them all, a VfRef when a selector asks.
const vfVendor = (sysfs: Sysfs, pci: string) => hexId(sysfs.tryRead(`${devPath(pci)}/vendor`));
const vfDevice = (sysfs: Sysfs, pci: string) => hexId(sysfs.tryRead(`${devPath(pci)}/device`));
const vfDriver = (sysfs: Sysfs, pci: string) => sysfs.linkName(`${devPath(pci)}/driver`) ?? null;
const vfNuma = (sysfs: Sysfs, pci: string, pf: PfInfo) => sysfs.readInt(`${devPath(pci)}/numa_node`) ?? pf.numaNode;

/** The VF at virtfnINDEX of PF, or undefined when that link is missing or odd. */
function vfInfo(sysfs: Sysfs, pf: PfInfo, index: number, cache: LinkCache, settings: (index: number) => VfInfo['settings']): VfInfo | undefined {
  const pci = vfPci(sysfs, pf, index);
  return pci === undefined ? undefined : vfInfoAt(sysfs, pf, index, pci, cache, settings);
}

function vfInfoAt(sysfs: Sysfs, pf: PfInfo, index: number, pci: string, cache: LinkCache, settings: (index: number) => VfInfo['settings']): VfInfo {
  const driver = vfDriver(sysfs, pci);
  const nd = netdevOf(sysfs, pci, cache);
  const group = sysfs.linkName(`${devPath(pci)}/iommu_group`);
  const iommuGroup = group !== undefined && /^\d+$/.test(group) ? Number(group) : null;
  const vfioDevice = driver === 'vfio-pci' && iommuGroup !== null ? `${sysfs.devRoot}/vfio/${iommuGroup}` : null;
  const rdma = rdmaDeviceOf(sysfs, pci);
  return {
    pci,
    pf: pf.pci,
    pfNetdev: pf.netdev,
    index,
    vendor: vfVendor(sysfs, pci),
    device: vfDevice(sysfs, pci),
    driver,
    netdev: nd?.ifname ?? null,
    mac: nd?.address ?? null,
    mtu: nd?.mtu ?? null,
    iommuGroup,
    vfioDevice,
    ...(vfioDevice ? { vfioOpenBy: cache.vfioUser(vfioDevice) ?? null } : {}),
    numaNode: vfNuma(sysfs, pci, pf),
    settings: settings(index),
    ...(rdma ? { rdmaDevice: rdma } : {}),
  };
}

/** What a pool's selector looks at (pool.ts matchVf): a VfInfo has it, and so a VfRef. */
export type VfPlace = Pick<VfInfo, 'pci' | 'pf' | 'pfNetdev' | 'index' | 'vendor' | 'device' | 'driver' | 'numaNode' | 'rdmaDevice'>;

/**
 * A VF of the node read as little as a question about it needs: its PF and index at once;
 * its address, IDs, driver and NUMA node when first asked; the whole VfInfo (its netdev's
 * live attributes, the PF-side settings: the dear part) only from info(). A pool ADD
 * walks these and reads in full only the VFs it may take, where listVfs reads every VF
 * of the node.
 */
export class VfRef implements VfPlace {
  private address: string | null | undefined;
  private memo: { vendor?: string; device?: string; driver?: string | null; numaNode?: number; rdmaDevice?: string | null } = {};
  private full: VfInfo | undefined;

  constructor(
    private readonly sysfs: Sysfs,
    private readonly pfInfo: PfInfo,
    readonly index: number,
    private readonly cache: LinkCache,
  ) {}

  get pf(): string {
    return this.pfInfo.pci;
  }
  get pfNetdev(): string | null {
    return this.pfInfo.netdev;
  }
  /** Whether a VF is there: its virtfn link leads to a device that names the PF back
   *  (listVfs leaves out the others). */
  get present(): boolean {
    if (this.address === undefined) this.address = vfPci(this.sysfs, this.pfInfo, this.index) ?? null;
    return this.address !== null;
  }
  /** Its PCI address; '' when none is there (present). */
  get pci(): string {
    return this.present ? this.address! : '';
  }
  // A ref with no VF there matches no selector that asks for these.
  get vendor(): string {
    return (this.memo.vendor ??= this.present ? vfVendor(this.sysfs, this.pci) : '');
  }
  get device(): string {
    return (this.memo.device ??= this.present ? vfDevice(this.sysfs, this.pci) : '');
  }
  get driver(): string | null {
    if (!('driver' in this.memo)) this.memo.driver = this.present ? vfDriver(this.sysfs, this.pci) : null;
    return this.memo.driver!;
  }
  get numaNode(): number {
    return (this.memo.numaNode ??= this.present ? vfNuma(this.sysfs, this.pci, this.pfInfo) : -1);
  }
  get rdmaDevice(): string | undefined {
    if (!('rdmaDevice' in this.memo)) this.memo.rdmaDevice = (this.present ? rdmaDeviceOf(this.sysfs, this.pci) : undefined) ?? null;
    return this.memo.rdmaDevice ?? undefined;
  }
  /** The VF in full, read once; undefined when none is there. */
  info(): VfInfo | undefined {
    if (!this.present) return undefined;
    this.full ??= vfInfoAt(this.sysfs, this.pfInfo, this.index, this.pci, this.cache, (i) => readPfVfSetting(this.sysfs, this.pfInfo.pci, this.pfInfo.netdev, i));
    return this.full;
  }
}

/** The node's VFs (listVfs' order) as VfRefs: each PF's virtfn links listed, none read.
 *  A damaged link gives a ref that is not `present`. */
export function vfRefs(sysfs: Sysfs): VfRef[] {
  const cache = new LinkCache();
  return listPfs(sysfs, cache).flatMap((pf) => vfIndexes(sysfs, pf).map((index) => new VfRef(sysfs, pf, index, cache)));
}

/** The virtfnN indexes of a PF, ascending. */
function vfIndexes(sysfs: Sysfs, pf: PfInfo): number[] {
  const out: number[] = [];
  for (const entry of sysfs.list(devPath(pf.pci))) {
    const m = /^virtfn(\d+)$/.exec(entry);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

function vfInfos(sysfs: Sysfs, pf: PfInfo, cache: LinkCache): VfInfo[] {
  const settings = readPfVfSettings(sysfs, pf.pci, pf.netdev, pf.numVfs);
  const out: VfInfo[] = [];
  for (const index of vfIndexes(sysfs, pf)) {
    const vf = vfInfo(sysfs, pf, index, cache, (i) => settings.get(i) ?? null);
    if (vf) out.push(vf);
  }
  return out;
}

/** Every SR-IOV capable PF (a PCI device with sriov_totalvfs) under the root, each
 *  matched against PROFILES (default: the shipped ones and $VFPLANE_PROFILES_DIR's). */
export function listPfs(sysfs: Sysfs, cache = new LinkCache(), profiles: HwProfile[] = loadProfiles()): PfInfo[] {
  return sysfs
    .list('bus/pci/devices')
    .filter((pci) => isPci(pci) && sysfs.exists(`${devPath(pci)}/sriov_totalvfs`))
    .map((pci) => pfInfo(sysfs, pci, profiles, cache));
}

export function listVfs(sysfs: Sysfs, opts: { pf?: string } = {}): VfInfo[] {
  const cache = new LinkCache();
  const pfs = opts.pf ? [resolvePf(sysfs, opts.pf, cache)] : listPfs(sysfs, cache);
  return pfs.flatMap((pf) => vfInfos(sysfs, pf, cache));
}

export function discover(sysfs: Sysfs): Discovery {
  const cache = new LinkCache();
  const pfs = listPfs(sysfs, cache);
  return { pfs, vfs: pfs.flatMap((pf) => vfInfos(sysfs, pf, cache)) };
}

/** A PF named by PCI address or by netdev name. */
export function resolvePf(sysfs: Sysfs, ref: string, cache = new LinkCache()): PfInfo {
  const all = listPfs(sysfs, cache);
  let pf: PfInfo | undefined;
  if (/^[0-9a-fA-F]{4}:/.test(ref)) {
    const pci = parsePci(ref, 'PF address');
    pf = all.find((p) => p.pci === pci);
  } else {
    // A PCI address without its domain (lspci's "5e:00.0") is neither form: say which.
    if (/^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(ref)) {
      throw invalid(`PF ${JSON.stringify(ref)} lacks the PCI domain: name it by its full address, such as 0000:${ref.toLowerCase()}, or by its netdev`);
    }
    const name = parseIfname(ref, 'PF name');
    pf = all.find((p) => p.netdev === name);
  }
  if (!pf) {
    const known = all.map((p) => (p.netdev ? `${p.netdev} (${p.pci})` : p.pci)).join(', ') || 'none';
    // A VF's address where a PF's is wanted: name its PF.
    const parent = /^[0-9a-fA-F]{4}:/.test(ref) ? sysfs.linkName(`bus/pci/devices/${ref.toLowerCase()}/physfn`) : undefined;
    if (parent) {
      const of = all.find((p) => p.pci === parent);
      throw invalid(`${ref} is a VF, not a PF: give its PF, ${of?.netdev ? `${of.netdev} (${parent})` : parent}`);
    }
    // A VF's netdev where a PF's is wanted (ens1f0v1 for ens1f0): name its PF too.
    const vf = /^[0-9a-fA-F]{4}:/.test(ref) ? undefined : listVfs(sysfs).find((v) => v.netdev === ref);
    if (vf) throw invalid(`${ref} is the netdev of VF ${vf.pci}, not a PF: give its PF, ${vf.pfNetdev ? `${vf.pfNetdev} (${vf.pf})` : vf.pf}`);
    throw notFound(`no SR-IOV PF ${JSON.stringify(ref)} under ${sysfs.root}; PFs here: ${known}`);
  }
  return pf;
}

/** What VF settings the PF's driver takes (checkSettings' limits): from the PF's
 *  hw-profile and link speed. */
export function vfSettingLimits(sysfs: Sysfs, pfPci: string): VfSettingLimits {
  const pf = resolvePf(sysfs, pfPci);
  let caps: VfSettingLimits['caps'] = null;
  if (pf.profile) {
    try {
      caps = getProfile(pf.profile).vfSettings ?? null;
    } catch {
      caps = null; // a profile that matched a moment ago and no longer loads: the kernel decides
    }
  }
  // Only a family that sums the guarantees needs every VF's (one netlink dump on a real PF).
  const minTxRateSum = caps?.minTxRateSumUpToLinkSpeed
    ? [...readPfVfSettings(sysfs, pf.pci, pf.netdev, pf.numVfs).values()].reduce((a, s) => a + s.minTxRate, 0)
    : null;
  return { family: pf.profile, driver: pf.driver, linkSpeedMbps: pf.linkSpeedMbps, caps, minTxRateSum };
}

/**
 * applyVfSettings for VF `vf`, with a min rate the PF's driver refused (EINVAL) said in
 * vfplane's words: the check before the write passed, so another VF of the PF took the
 * room meanwhile (two ADDs at once: helper-104), or the link speed could not be read (a
 * link down; a tree-only simulator). The refusal is a conflict with CNI code 7, as the
 * check's own; any other failure is the write's.
 */
export function applyVfSettingsSaid(sysfs: Sysfs, vf: VfInfo, c: Partial<VfSettings>, current: VfSettings, words = CLI_WORDS): void {
  try {
    applyVfSettings(sysfs, vf.pf, vf.pfNetdev, vf.index, c, current);
  } catch (err) {
    const einval = (err as NodeJS.ErrnoException).code === 'EINVAL' || /Invalid argument/.test((err as Error).message);
    if (!einval || !c.minTxRate) throw err;
    const limits = vfSettingLimits(sysfs, vf.pf);
    if (limits.minTxRateSum == null) throw err;
    if (!limits.linkSpeedMbps) {
      throw conflict(`${limitsWho(limits)} refused VF ${vf.pci}'s ${words.name.minTxRate} ${c.minTxRate} (EINVAL): it keeps its VFs' guaranteed rates within the link, and PF ${vf.pfNetdev ?? vf.pf}'s link speed cannot be read (its link is down?)`, { cniCode: 7 });
    }
    const r = minTxRateRefusal(limits, current.minTxRate, c.minTxRate, words);
    if (!r) throw err;
    throw conflict(`VF ${vf.pci}: ${r.reason} (another VF of PF ${vf.pfNetdev ?? vf.pf} was given a guarantee meanwhile)`, { cniCode: 7 });
  }
}

/**
 * A VF named by PCI address (0000:5e:02.1) or as PF#INDEX (ens1f0#3, 0000:5e:00.0#3).
 * Errors say which form was expected and what exists.
 */
/**
 * The VF at a PCI address, or null when no device has that address any more: a VF a
 * lower sriov_numvfs (or a reboot that made fewer) removed. What its holder's DEL or gc
 * then has to put back is nothing. Any other failure (a device there that is not a VF)
 * is thrown, as resolveVf throws it.
 */
export function presentVf(sysfs: Sysfs, pci: string): VfInfo | null {
  if (!sysfs.exists(devPath(parsePci(pci, 'VF address')))) return null;
  return resolveVf(sysfs, pci);
}

export function resolveVf(sysfs: Sysfs, ref: string): VfInfo {
  const hash = ref.lastIndexOf('#');
  if (hash > 0) {
    const pfRef = ref.slice(0, hash);
    const idx = ref.slice(hash + 1);
    const cache = new LinkCache();
    const pf = resolvePf(sysfs, pfRef, cache);
    if (!/^\d+$/.test(idx)) throw invalid(`VF index ${JSON.stringify(idx)} of ${JSON.stringify(ref)} is malformed: expected PF#N with N a whole number, like ${pfRef}#0`);
    // A well-formed index this PF lacks is a fact of this host (exit 1), not a usage error.
    if (Number(idx) >= pf.numVfs) {
      throw notFound(
        `VF index ${JSON.stringify(idx)} is out of range for PF ${pfRef}: it has ${pf.numVfs} VF(s)` +
          (pf.numVfs > 0 ? `, indexes 0–${pf.numVfs - 1}` : `; create some with \`vfplane pf set-numvfs ${pfRef} N\``),
      );
    }
    const vf = vfInfo(sysfs, pf, Number(idx), cache, (i) => readPfVfSetting(sysfs, pf.pci, pf.netdev, i));
    if (!vf) {
      const to = sysfs.linkName(`${devPath(pf.pci)}/virtfn${idx}`);
      throw notFound(to
        ? `PF ${pfRef}: its virtfn${idx} link leads to ${to}, which is not a VF of it (no physfn link back to ${pf.pci}: a missing device, or a damaged tree under ${sysfs.root})`
        : `PF ${pfRef} has no virtfn${idx} link under ${sysfs.root}`);
    }
    return vf;
  }
  const pci = parsePci(ref, 'VF address');
  if (!sysfs.exists(devPath(pci))) {
    throw notFound(`no PCI device ${pci} under ${sysfs.root}; run \`vfplane vf list\` to see the VFs on this node`);
  }
  const physfn = sysfs.linkName(`${devPath(pci)}/physfn`);
  if (!physfn) throw invalid(`${pci} is not a VF (it has no physfn link); VF commands take a VF's address`);
  // Only this PF and this VF are read (in both forms): a CNI ADD resolves its deviceID
  // this way, on nodes with hundreds of VFs.
  if (!isPci(physfn) || !sysfs.exists(`${devPath(physfn)}/sriov_totalvfs`)) throw notFound(`VF ${pci}: its physfn ${physfn} is not an SR-IOV PF under ${sysfs.root}`);
  const cache = new LinkCache();
  const pf = pfInfo(sysfs, physfn, loadProfiles(), cache);
  const index = vfIndexes(sysfs, pf).find((i) => sysfs.linkName(`${devPath(pf.pci)}/virtfn${i}`) === pci);
  const vf = index === undefined ? undefined : vfInfo(sysfs, pf, index, cache, (i) => readPfVfSetting(sysfs, pf.pci, pf.netdev, i));
  if (!vf) throw notFound(`VF ${pci} is not listed by its PF ${physfn}`);
  return vf;
}
