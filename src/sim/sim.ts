// The simulated SR-IOV NIC: a sysfs-shaped tree under a root directory plus real veth
// netdevs (one pair per PF uplink, one per VF: the VF netdev and its representor).
// Discovery, driver binding, VF settings and moving VF netdevs into pod namespaces then
// run against it exactly as against /sys, because this kernel has no SR-IOV of its own.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { whyUntrusted } from '../util/trust.js';
import { ipBatch, links, netnsAdd, netnsDel, netnsList } from '../net/ip.js';
import { getProfile } from '../sriov/profile.js';
import { pciFromRid, pciRid } from '../sriov/pci.js';
import { Sysfs } from '../sriov/sysfs.js';
import { conflict, invalid, notFound } from '../util/errors.js';
import { makingPath, manifestPath, readManifest, vfRepresentor, type SimManifest, type SimPf } from './manifest.js';
import { hostNetdevsLikeNic, simKernel, VFIO_DRIVER } from './kernel.js';

export const DEFAULT_SIM_ROOT = '/run/vfplane/sim';
export const DEFAULT_SIM_PREFIX = 'vfsim';
const PCI_BUS = '0000:5e';
const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/;

/**
 * The line rate of the part the simulator impersonates (a profile's first PCI ID is the
 * family's typical part; a profile lists every speed the family ships in).
 */
const TYPICAL_SPEED_MBPS: Record<string, number> = { x710: 10_000, e810: 25_000, cx5: 25_000, cx6dx: 100_000 };

export interface SimOptions {
  profile: string;
  pfs: number;
  vfs: number;
  root?: string;
  prefix?: string;
  /** false: build only the tree (no veths, no root needed); used by unprivileged tests and the alloc bench. */
  netdevs?: boolean;
  numaNode?: number;
  /** Queues of each PF's uplink veth (both ends), 1–16, default 1: a real PF spreads
   *  received flows over many (RSS); two let several data-plane workers receive. */
  uplinkQueues?: number;
}

function hex4(id: string): [string, string] {
  const [v, d] = id.split(':') as [string, string];
  return [v, d];
}

export function createSim(o: SimOptions): SimManifest {
  const profile = getProfile(o.profile);
  const root = path.resolve(o.root ?? DEFAULT_SIM_ROOT);
  const prefix = o.prefix ?? DEFAULT_SIM_PREFIX;
  const netdevs = o.netdevs ?? true;
  if (!PREFIX_RE.test(prefix)) {
    throw invalid(`--prefix ${JSON.stringify(prefix)} is not usable: 1–8 characters, a lower-case letter then letters or digits (netdev names are <prefix>f<pf>v<vf>, at most 15 characters)`);
  }
  if (!Number.isInteger(o.pfs) || o.pfs < 1 || o.pfs > 8) {
    throw invalid(`--pfs ${o.pfs} is out of range: a simulated card has 1–8 PFs (PCI functions 0–7)`);
  }
  // A card of the family has no more ports than this: a 4-PF ConnectX-6 Dx would test
  // what no host can have.
  const maxPorts = profile.limits.maxPortsPerDevice;
  if (maxPorts !== undefined && o.pfs > maxPorts) {
    throw invalid(`--pfs ${o.pfs} is more than profile ${profile.name} allows: a card of the family has at most ${maxPorts} port${maxPorts === 1 ? '' : 's'} (PFs) per device, per ${profile.sources['limits.maxPortsPerDevice'] ?? 'its hw-profile'}; give --pfs 1–${maxPorts}, or another --profile`);
  }
  const totalVfs = Math.min(profile.limits.maxVfsPerPf, Math.floor(profile.limits.maxVfsPerDevice / o.pfs));
  if (!Number.isInteger(o.vfs) || o.vfs < 0 || o.vfs > totalVfs) {
    throw invalid(`--vfs ${o.vfs} is out of range for profile ${profile.name} with ${o.pfs} PF(s): 0–${totalVfs} VFs per PF`);
  }
  const nq = o.uplinkQueues ?? 1;
  if (!Number.isInteger(nq) || nq < 1 || nq > 16) throw invalid(`--uplink-queues ${nq} is out of range: 1–16 queues per PF uplink`);
  // The tree goes in ROOT or a new directory: ROOT, or the nearest path above it that
  // exists, must be a directory (else mkdir/readdir fail with a bare ENOTDIR).
  let at = root;
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  if (!fs.statSync(at).isDirectory()) {
    throw conflict(`--root ${root}: ${at === root ? 'it' : at} is not a directory; the simulator builds its tree in an empty or new directory`);
  }
  if (fs.existsSync(manifestPath(root))) {
    throw conflict(`a simulated NIC already exists at ${root}; run \`vfplane sim destroy --root ${root}\` first or pick another --root`);
  }
  // Inside another simulator's tree, this one would be taken for part of that node, and
  // removed (its tree, not its netdevs) with it by that one's destroy.
  for (let up = path.dirname(root); ; up = path.dirname(up)) {
    if (fs.existsSync(manifestPath(up))) throw conflict(`--root ${root} is inside the simulated NIC at ${up}; give a --root outside it`);
    if (path.dirname(up) === up) break;
  }
  if (fs.existsSync(root) && fs.readdirSync(root).length > 0) {
    throw conflict(`--root ${root} is not empty; the simulator builds its tree in an empty or new directory`);
  }
  const park = netdevs ? `${prefix}-park` : null;
  if (netdevs) {
    const clash = links().find((l) => new RegExp(`^${prefix}f\\d`).test(l.ifname));
    if (clash) throw conflict(`netdev ${clash.ifname} already uses the prefix ${prefix}; pick another --prefix or destroy the simulator that owns it`);
    if (netnsList().includes(park!)) throw conflict(`network namespace ${park} already exists; pick another --prefix or destroy the simulator that owns it`);
  }

  const typical = TYPICAL_SPEED_MBPS[profile.name];
  const speed = typical !== undefined && profile.lineRateMbps.includes(typical) ? typical : Math.max(...profile.lineRateMbps);
  const [pfVendor, pfDevice] = hex4(profile.pf.ids[0]!);
  const [vfVendor, vfDevice] = hex4(profile.vf.ids[0]!);
  const pfs: SimPf[] = [];
  const { domain, rid } = pciRid(`${PCI_BUS}:00.0`);
  for (let i = 0; i < o.pfs; i++) {
    pfs.push({
      index: i,
      pci: pciFromRid(domain, rid + i),
      netdev: `${prefix}f${i}`,
      uplinkPeer: `${prefix}f${i}u`,
      totalVfs,
      // VFs of PF i start after those of PF i-1, 16 functions past the card (routing IDs).
      vfOffset: 16 + i * totalVfs - i,
      vfStride: 1,
      iommuGroup: 10 + i,
      vfIommuBase: 100 + i * 300,
    });
  }
  const m: SimManifest = {
    version: 1,
    root,
    devRoot: path.join(root, 'vfplane-dev'),
    stateDir: path.join(root, 'vfplane-sim-state'),
    profile: profile.name,
    prefix,
    netdevs,
    parkNetns: park,
    pciBus: PCI_BUS,
    pfVendor,
    pfDevice,
    vfVendor,
    vfDevice,
    pfDriver: profile.pf.driver,
    vfDriver: profile.vf.driver,
    linkSpeedMbps: speed,
    numaNode: o.numaNode ?? 0,
    pfs,
    createdAt: new Date().toISOString(),
    bootId: randomUUID(),
  };

  // vfplane-cni takes a simulated tree as a node's sysfs only where it is root's alone
  // (cni/paths.ts): built only there. A missing ROOT in a directory others may write
  // (/tmp) is made here, exclusively, so nobody else's directory is taken for it.
  let made = false;
  if (!fs.existsSync(root) && fs.existsSync(path.dirname(root))) {
    fs.mkdirSync(root, { mode: 0o755 });
    made = true;
  }
  const untrusted = whyUntrusted(root, 'directory', true);
  if (untrusted) {
    if (made) fs.rmdirSync(root);
    throw conflict(`--root ${root}: ${untrusted}; a simulated NIC's tree is a node's sysfs to whoever names it, so it is built only where nobody but root could have made or change it: give a --root in a directory only root may write (or a new directory in /tmp)`);
  }

  try {
    // First, what is about to be made: a create killed from here on is destroyed from it.
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(makingPath(root), JSON.stringify(m, null, 2) + '\n');
    buildTree(m);
    if (netdevs) {
      // Said even for 1: a veth made without a count gets one queue pair per possible CPU.
      const queues = ['numtxqueues', String(nq), 'numrxqueues', String(nq)];
      netnsAdd(park!);
      ipBatch(pfs.flatMap((pf) => [
        ['link', 'add', pf.netdev, ...queues, 'type', 'veth', 'peer', 'name', pf.uplinkPeer, ...queues],
        ['link', 'set', pf.netdev, 'up'],
        ['link', 'set', pf.uplinkPeer, 'up'],
      ]));
      hostNetdevsLikeNic(pfs.map((pf) => pf.netdev));
    }
    const sysfs = new Sysfs(root, simKernel(root, { unfinished: true }));
    for (const pf of pfs) {
      // Attach the PF driver (which gives the PF its netdev), then create the VFs through
      // sriov_numvfs, the same write an operator would make.
      sysfs.write('bus/pci/drivers_probe', pf.pci);
      if (o.vfs > 0) sysfs.write(`bus/pci/devices/${pf.pci}/sriov_numvfs`, String(o.vfs));
    }
    // The manifest is the marker: from here on the tree answers as a kernel would (and
    // what a create killed before this made is destroyed from the making manifest).
    fs.renameSync(makingPath(root), manifestPath(root));
  } catch (err) {
    try {
      destroyParts(m);
    } catch {
      // the original error says more than a failed cleanup
    }
    throw err;
  }
  return m;
}

function buildTree(m: SimManifest): void {
  const mk = (rel: string) => fs.mkdirSync(path.join(m.root, rel), { recursive: true });
  const put = (rel: string, v: string) => fs.writeFileSync(path.join(m.root, rel), v + '\n');
  const sym = (target: string, rel: string) => fs.symlinkSync(target, path.join(m.root, rel));
  mk('');
  for (const d of ['bus/pci/devices', 'class/net', 'kernel/iommu_groups', `devices/pci${m.pciBus}`]) mk(d);
  for (const drv of new Set([m.pfDriver, m.vfDriver, VFIO_DRIVER])) {
    mk(`bus/pci/drivers/${drv}`);
    for (const f of ['bind', 'unbind', 'new_id', 'remove_id']) put(`bus/pci/drivers/${drv}/${f}`, '');
  }
  put('bus/pci/drivers_probe', '');
  put('bus/pci/drivers_autoprobe', '1');
  fs.mkdirSync(m.devRoot, { recursive: true });
  fs.mkdirSync(path.join(m.stateDir, 'vf'), { recursive: true });
  for (const pf of m.pfs) {
    const dir = `devices/pci${m.pciBus}/${pf.pci}`;
    mk(dir);
    put(`${dir}/vendor`, `0x${m.pfVendor}`);
    put(`${dir}/device`, `0x${m.pfDevice}`);
    put(`${dir}/class`, '0x020000');
    put(`${dir}/numa_node`, String(m.numaNode));
    put(`${dir}/driver_override`, '(null)');
    put(`${dir}/sriov_totalvfs`, String(pf.totalVfs));
    put(`${dir}/sriov_numvfs`, '0');
    put(`${dir}/sriov_offset`, String(pf.vfOffset));
    put(`${dir}/sriov_stride`, String(pf.vfStride));
    put(`${dir}/sriov_vf_device`, m.vfDevice);
    put(`${dir}/sriov_drivers_autoprobe`, '1');
    sym(`../../../devices/pci${m.pciBus}/${pf.pci}`, `bus/pci/devices/${pf.pci}`);
    const g = `kernel/iommu_groups/${pf.iommuGroup}`;
    mk(`${g}/devices`);
    sym(`../../../../devices/pci${m.pciBus}/${pf.pci}`, `${g}/devices/${pf.pci}`);
    sym(`../../../kernel/iommu_groups/${pf.iommuGroup}`, `${dir}/iommu_group`);
  }
}

/** Removes what the manifest lists: VF and PF veth pairs, the park namespace, the tree. */
function destroyParts(m: SimManifest): void {
  if (m.netdevs) {
    // One listing, not one `ip` per possible VF (256 of them for some profiles): a
    // teardown is short, and so is its window for a Ctrl-C to cut an `ip` short.
    const here = new Set(links().map((l) => l.ifname));
    const lines: string[][] = [];
    for (const pf of m.pfs) {
      for (let j = 0; j < pf.totalVfs; j++) {
        const rep = vfRepresentor(m, pf.index, j);
        if (here.has(rep)) lines.push(['link', 'del', rep]);
      }
      if (here.has(pf.netdev)) lines.push(['link', 'del', pf.netdev]);
      else if (here.has(pf.uplinkPeer)) lines.push(['link', 'del', pf.uplinkPeer]);
    }
    ipBatch(lines);
    if (m.parkNetns && netnsList().includes(m.parkNetns)) {
      // A PF netdev parked by an unbound PF driver goes with its namespace.
      netnsDel(m.parkNetns);
    }
  }
  // The tree itself: a root given through a symlink would otherwise lose only the link
  // (readManifest made sure the manifest's root and the one asked for are this tree).
  let tree = m.root;
  try {
    tree = fs.realpathSync(m.root);
  } catch {
    // gone already
  }
  fs.rmSync(tree, { recursive: true, force: true });
}

/** Removes the simulated NIC at ROOT (checked against PREFIX, as simAt does); its manifest. */
export function destroySim(root: string = DEFAULT_SIM_ROOT, prefix?: string): SimManifest {
  return removeSim(simAt(root, prefix, { unfinished: true }));
}

/** destroySim for a teardown: the simulated NIC at ROOT if one was made there (its
 *  manifest is there), else nothing, and null. A command that records ROOT before
 *  createSim (so that a start cut short is undone too) tears down with this. */
export function destroySimIfMade(root: string): SimManifest | null {
  return fs.existsSync(manifestPath(root)) || fs.existsSync(makingPath(root)) ? destroySim(root) : null;
}

/** Removes the simulated NIC whose manifest the caller has read already (simAt), for one
 *  that reads it before anything goes; the manifest. */
export function removeSim(m: SimManifest): SimManifest {
  destroyParts(m);
  return m;
}

/** The manifest at ROOT, checked against the --prefix the caller gave (if any). With no
 *  manifest there, the refusal lists what a simulator of that prefix left on the host
 *  (its tree removed by hand, say) and the commands that remove it: vfplane cannot tell
 *  those netdevs from another simulator's without the manifest, so it does not. */
export function simAt(root: string, prefix?: string, o: { unfinished?: boolean } = {}): SimManifest {
  if (prefix !== undefined && !PREFIX_RE.test(prefix)) {
    throw invalid(`--prefix ${JSON.stringify(prefix)} is not a simulator prefix: 1–8 characters, a lower-case letter then letters or digits`);
  }
  let m: SimManifest;
  try {
    m = readManifest(root, { unfinished: o.unfinished });
  } catch (e) {
    // A manifest that is there but cannot be trusted says so itself.
    if (prefix === undefined || fs.existsSync(manifestPath(path.resolve(root))) || fs.existsSync(makingPath(path.resolve(root)))) throw e;
    const names = links().map((l) => l.ifname).filter((n) => new RegExp(`^${prefix}f\\d+(?:[vr]\\d+|u)?$`).test(n));
    const park = netnsList().includes(`${prefix}-park`) ? `${prefix}-park` : null;
    if (!names.length && !park) throw e;
    // One end of each veth pair (the other goes with it): a PF's netdev (its underlay
    // end follows), a representor (its VF netdev follows); a lone end as itself. The
    // namespace last: VF netdevs parked there go with it.
    const pairOf = (n: string) => (/u$/.test(n) ? n.slice(0, -1) : /v\d+$/.test(n) ? n.replace(/v(\d+)$/, 'r$1') : null);
    const cmds = [...names.filter((n) => { const o = pairOf(n); return !o || !names.includes(o); }).map((n) => `ip link del ${n}`), ...(park ? [`ip netns del ${park}`] : [])];
    throw notFound(`${(e as Error).message}. Netdevs of prefix ${prefix} are still on this host (${[...names, ...(park ? [`netns ${park}`] : [])].join(', ')}): if they are that simulator's and no other runs with this prefix, remove them with: ${cmds.join('; ')}`, { prefix, netdevs: names, netns: park });
  }
  if (prefix !== undefined && m.prefix !== prefix) {
    throw conflict(`the simulated NIC at ${m.root} has the prefix ${m.prefix}, not ${prefix}; drop --prefix, or give the --root of the simulator with prefix ${prefix}`, { root: m.root, prefix: m.prefix });
  }
  return m;
}

export { readManifest } from './manifest.js';
export type { SimManifest } from './manifest.js';
