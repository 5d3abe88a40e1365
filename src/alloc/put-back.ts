// An allocated VF put back as it was before its holder had it: its netdev home under its
// own name, MAC and MTU, its driver and its PF-side settings. What CNI DEL does for its
// attachment, and what the operator's gc and `vf release` do for an allocation whose pod
// is gone (or is being forced out).
import * as fs from 'node:fs';
import type { Allocation } from './store.js';
import { VfpError } from '../util/errors.js';
import { podNetns } from './owner.js';
import { hostNetnsPath, ip } from '../net/ip.js';
import { linkByIndex, linkList, netRun, type PodLink } from '../net/netops.js';
import { bindVf } from '../sriov/actions.js';
import { presentVf, resolveVf, vfSettingLimits } from '../sriov/discover.js';
import type { Sysfs } from '../sriov/sysfs.js';
import type { VfInfo, VfSettings } from '../sriov/types.js';
import { applyVfSettings, minTxRateRefusal, othersMinTxRate, settingsDiff } from '../sriov/vf-settings.js';

/** Puts a VF netdev back in the host namespace under its own name, MAC and MTU, from the
 *  pod's namespace NETNS: only when that is the pod's own (podNetns, against NETNS_ID,
 *  the identity recorded at the allocation), since a netdev of that name anywhere else is
 *  not the VF's. `dry` (gc --dry-run): only whether it would, from reading the pod's
 *  namespace; nothing changed. */
export async function returnNetdev(netns: string, netnsId: string | undefined, ifname: string, original: VfInfo, { dry = false, ifindex }: { dry?: boolean; ifindex?: number } = {}): Promise<boolean> {
  if (!original.netdev || !podNetns(netns, netnsId)) return false;
  try {
    return await bringHome(netns, ifname, original, original.netdev, dry, ifindex);
  } catch (e) {
    // The namespace was deleted meanwhile (the pod went while its DEL ran): Linux returns
    // a physical netdev to the host by itself, as when it had gone before. (Whichever read
    // or move met it, netlink's ENOENT or iproute2's failure to enter it.)
    if (!fs.existsSync(netns)) return false;
    throw e;
  }
}

async function bringHome(netns: string, ifname: string, original: VfInfo, own: string, dry: boolean, ifindex?: number): Promise<boolean> {
  // The pod's links, with details, read once. With the index the netdev had in the pod
  // once ADD was done (it keeps it while it stays there), the one under it, whatever the
  // pod named it (helper-89 swapped two VFs' names, and a DEL by name took the other VF's
  // netdev home as this one's and marked this one free while its netdev stayed in the
  // pod). Without (a record from before it), the one under the pod's name, or under its
  // own if an ADD stopped between move and rename.
  const links = await linkList(netns);
  const l = ifindex !== undefined ? links.find((x) => x.ifindex === ifindex)
    : links.find((x) => x.ifname === ifname) ?? links.find((x) => x.ifname === own);
  // A name, and an index, are the pod's to give too (helper-93: the VF moved to another
  // namespace, a veth made with its index, and that veth taken home as the VF; helper-94:
  // a record from before the index, two VFs' names swapped, the other VF's netdev taken
  // home as this one's): the netdev must be a VF's, and on a NIC this VF's. Not taken,
  // the VF stays held and DEL fails until it is back.
  if (!l || !(await looksLikeVf(l, original.pci))) return false;
  const name = l.ifname;
  if (dry) return true;
  await netRun(netns, [{
    op: 'set', name, up: false, ...(name !== own ? { newName: own } : {}),
    ...(original.mac ? { mac: original.mac } : {}), ...(original.mtu ? { mtu: original.mtu } : {}), netns: hostNetnsPath(),
  }]);
  return true;
}

/**
 * Whether the pod's link L can be VF PCI's netdev, from what a pod cannot set: a PCI
 * function's netdev names its device (parentdev), which must be PCI; a netdev with no
 * device is the simulator's VF only as a veth whose peer (its representor) is in the
 * host's namespace, the peer's own peer being this one. A pod cannot put a link's peer
 * there. (Which VF's, the simulator cannot tell: its VFs are veths whose names say which;
 * a pod from before the index was recorded that swapped two VFs' names can still mislead
 * DEL there, not on a NIC.)
 */
async function looksLikeVf(l: PodLink, pci: string): Promise<boolean> {
  if (l.parentdev) return l.parentdev === pci;
  if (l.linkinfo?.info_kind !== 'veth' || l.link_netnsid === undefined || l.link_index === undefined) return false;
  // The peer, by its index in the host's namespace (this process's): one RTM_GETLINK.
  const peer = await linkByIndex(null, l.link_index);
  return !!peer && peer.linkinfo?.info_kind === 'veth' && peer.link_index === l.ifindex && peer.link_netnsid !== undefined;
}

/**
 * Whether allocation A was made before the NICs under SYSFS came to be (the node booted
 * since, or the simulator was made anew): its recorded state is that of a VF instance
 * that no longer exists. The VF now at its address is as this boot (and whatever policy
 * ran at boot: an SR-IOV config daemon, a device plugin's driver binding) made it, and
 * putting the old driver, settings or name back would override that.
 */
export function allocatedBeforeBoot(sysfs: Sysfs, a: Allocation): boolean {
  // By the boot's id when both are known: the wall clock may have been stepped since the
  // allocation (a VM whose clock NTP corrected after its pods started), and boot time
  // read from it (btime) moves with it, making this boot's allocations look older.
  const now = sysfs.bootId();
  if (a.bootId !== undefined && now !== null) return a.bootId !== now;
  const booted = sysfs.bootedAt();
  return booted !== null && Date.parse(a.createdAt) < booted;
}

const BEFORE_BOOT = 'allocated before this boot (or before the NIC was made anew): left as the boot made it';

/**
 * One thing a put-back did (or, `dry`, would do), as data: what `vf release --json`
 * and `gc --json` report; `gc --dry-run` gives the steps the real gc would take, each
 * `dry: true`, decided by reading only. stepText words it for the tables.
 */
export type PutBackStep =
  | { step: 'vf-gone' } // the VF no longer exists: nothing to restore
  | { step: 'before-boot' } // allocated before this boot: left as the boot made it
  | { step: 'driver'; driver: string; dry?: true } // rebound to its driver
  | { step: 'settings'; settings: Partial<VfSettings>; dry?: true } // PF-side settings restored to these values
  | { step: 'mtu'; mtu: number; dry?: true }
  | { step: 'netdev-home'; netdev: string; from: string; dry?: true } // brought back from the pod's namespace
  | { step: 'netdev-tidied'; netdev: string; restored: NetdevRestored; dry?: true } // came back by itself; these restored
  | { step: 'min-tx-rate-capped'; wanted: number; set: number; why: string; dry?: true }; // its old guarantee no longer fits the link: as much as does

/** What tidyReturnedNetdev set again on a returned netdev. */
export interface NetdevRestored { name?: string; mac?: string; mtu?: number }

/** A step as the tables say it (the words these notes always had). */
export function stepText(s: PutBackStep, pci: string): string {
  const would = (done: string, dry?: true) => (dry ? `would ${done}` : done === 'rebind' ? 'rebound' : 'restored');
  switch (s.step) {
    case 'vf-gone': return `VF ${pci} no longer exists; nothing to restore`;
    case 'before-boot': return `VF ${pci} was ${BEFORE_BOOT}`;
    case 'driver': return `${would('rebind', s.dry)} to ${s.driver}`;
    case 'settings': return `${would('restore', s.dry)} ${Object.keys(s.settings).join(', ')}`;
    case 'mtu': return `${would('restore', s.dry)} mtu ${s.mtu}`;
    case 'netdev-home': return s.dry ? `would bring netdev ${s.netdev} back from ${s.from}` : `netdev ${s.netdev} brought back from ${s.from}`;
    case 'netdev-tidied': return `netdev ${s.netdev}: ${would('restore', s.dry)} ${restoredText(s.restored).join(', ')}`;
    case 'min-tx-rate-capped': return `min-tx-rate ${s.dry ? 'would be ' : ''}${s.set}, not the ${s.wanted} it had: ${s.why}`;
  }
}

const restoredText = (r: NetdevRestored): string[] =>
  [...(r.name ? [`name ${r.name}`] : []), ...(r.mac ? [`MAC ${r.mac}`] : []), ...(r.mtu ? [`mtu ${r.mtu}`] : [])];

/**
 * A VF netdev that came back to the host by itself (its pod's namespace was deleted:
 * Linux returns physical netdevs to the host namespace under the name they had) gets
 * its own name, MAC and MTU back. A VF that no longer exists has no netdev to tidy.
 * `beforeBoot` is allocatedBeforeBoot(sysfs, a), which a put-back reads once for all its steps.
 * `dry` (gc --dry-run): what would be set again, and nothing set.
 */
export async function tidyReturnedNetdev(sysfs: Sysfs, a: Allocation, beforeBoot: boolean, { dry = false }: { dry?: boolean } = {}): Promise<NetdevRestored | null> {
  const now = presentVf(sysfs, a.pci);
  const d = beforeBoot || !now ? null : netdevDiff(now, a.original);
  if (!d || !now?.netdev) return null;
  if (!dry) await netRun(null, [{ op: 'set', name: now.netdev, ...(d.name ? { up: false, newName: d.name } : {}), ...(d.mac ? { mac: d.mac } : {}), ...(d.mtu ? { mtu: d.mtu } : {}) }]);
  return d;
}

/** What a VF's host netdev needs set again to be as it was (WAS, the VF at allocation):
 *  its name, MAC and MTU; null when nothing (or when either has no netdev). */
export function netdevDiff(now: VfInfo, was: VfInfo): NetdevRestored | null {
  if (!now.netdev || !was.netdev) return null;
  const d: NetdevRestored = {
    ...(now.netdev !== was.netdev ? { name: was.netdev } : {}),
    ...(was.mac && now.mac !== was.mac ? { mac: was.mac } : {}),
    ...(was.mtu && now.mtu !== was.mtu ? { mtu: was.mtu } : {}),
  };
  return Object.keys(d).length ? d : null;
}

/**
 * A kernel VF's netdev back in the host namespace under its own name, MAC and MTU: from
 * its pod's namespace while that lives (NETNS, the runtime's path on a CNI DEL, else the
 * one the ADD recorded; only one that is the pod's own, see podNetns), or as Linux
 * returned it when the namespace went. What CNI DEL and GC, `vfplane gc` and `vf release`
 * do first. What was done; `beforeBoot` as for tidyReturnedNetdev. `dry` (gc --dry-run):
 * what would be done, the steps `dry: true`, from read-only checks; nothing moved or set.
 *
 * Throws (kind system, reason `netdev-not-home`, the VF to stay held) when the netdev is in
 * neither place: while the pod's namespace lives (renamed or moved inside the pod), or,
 * that namespace gone, when it has not come back within a second (the pod moved it on to
 * a namespace that lives). A VF marked free then would fail its next pod (no netdev to
 * hand over); once the netdev is back, a retry finishes.
 */
export async function netdevHome(sysfs: Sysfs, a: Allocation, beforeBoot: boolean, { netns, dry = false }: { netns?: string | undefined; dry?: boolean } = {}): Promise<PutBackStep[]> {
  const netdev = a.original.netdev;
  const att = a.attachment as { mode?: string; podIfindex?: number } | null;
  if ((att?.mode ?? 'kernel') !== 'kernel' || !netdev) return [];
  const ifname = a.owner.ifname;
  const ns = [netns, a.owner.netns].find((p): p is string => !!p && podNetns(p, a.owner.netnsId));
  const isDry = dry ? { dry: true as const } : {};
  const ifindex = att?.podIfindex;
  if (ns && ifname && (await returnNetdev(ns, a.owner.netnsId, ifname, a.original, { dry, ...(ifindex !== undefined ? { ifindex } : {}) }))) {
    return [{ step: 'netdev-home', netdev, from: ns, ...isDry }];
  }
  const restored = await tidyReturnedNetdev(sysfs, a, beforeBoot, { dry });
  // Neither under the pod's name (its index, when the record has it) nor back. (A VF
  // rebound to another driver meanwhile, `vf bind --force`, has no netdev anywhere: it
  // gets its driver back from restoreVf, not a retry for ever. A VF that no longer exists
  // has nothing to bring back: restoreVf says so.)
  const now = presentVf(sysfs, a.pci);
  if (now && ns && podNetns(ns, a.owner.netnsId) && !now.netdev && now.driver === a.original.driver) {
    const where = ifindex !== undefined
      ? `is not in ${ns} (index ${ifindex} there is another netdev, or none), nor back on the host: did the pod move it to another namespace?`
      : `is not in ${ns} as ${ifname ?? 'its interface'}, nor back on the host: was it renamed inside the pod?`;
    const fix = ifindex !== undefined
      ? 'move it back into the pod, or delete the namespace it is in (Linux returns it to the host)'
      : `rename it back to ${ifname ?? 'its name'} in the pod, or delete the pod's network namespace`;
    throw new VfpError('system', `VF ${a.pci}'s netdev ${where}`, { reason: 'netdev-not-home', pci: a.pci, fix, cniDetails: `it stays allocated; ${fix}, and DEL again` });
  }
  // The pod's namespace is gone and the netdev is still not back (helper-108): the pod
  // moved it on to a namespace that lives (Linux returns a netdev only from the namespace
  // being deleted). Marked free, the VF would fail its next pod, its netdev kept the pod's
  // name and MAC. (Linux returns one from a namespace just deleted a moment later: a
  // short wait, and the next try finishes.)
  if (now && !ns && !beforeBoot && !now.netdev && now.driver === a.original.driver) {
    const back = dry ? null : await netdevBack(sysfs, a.pci);
    if (back) {
      const late = await tidyReturnedNetdev(sysfs, a, beforeBoot);
      return late ? [{ step: 'netdev-tidied', netdev, restored: late }] : [];
    }
    const fix = 'delete the namespace it is in (Linux returns it to the host), or move it back to the host';
    throw new VfpError('system', `VF ${a.pci}'s netdev is not back on the host, and its pod's namespace${a.owner.netns ? ` ${a.owner.netns}` : ''} is gone: did the pod move it to another namespace?`,
      { reason: 'netdev-not-home', pci: a.pci, fix, cniDetails: `it stays allocated; ${fix}, and DEL again` });
  }
  return restored ? [{ step: 'netdev-tidied', netdev, restored, ...isDry }] : [];
}

/** Whether VF PCI's netdev appears on the host within a moment (Linux returning it from a
 *  namespace being deleted). */
async function netdevBack(sysfs: Sysfs, pci: string): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (presentVf(sysfs, pci)?.netdev) return true;
  }
  return false;
}

/**
 * Everything but the netdev's way home (netdevHome, run before): the driver and PF-side
 * settings (restoreDriverAndSettings); a VF rebound here gets a new netdev, which gets
 * its own name, MAC and MTU back as netdevHome gives them to one that was there all
 * along; and the MTU of a netdev that stayed. Synchronous (`ip`): `vf release` and gc run
 * it holding the store's lock. `beforeBoot` as for tidyReturnedNetdev; `dry` as there.
 */
export function restoreVf(sysfs: Sysfs, a: Allocation, { beforeBoot, dry = false }: { beforeBoot: boolean; dry?: boolean }): PutBackStep[] {
  const { rebound, steps } = restoreDriverAndSettings(sysfs, a, { beforeBoot, dry });
  const now = beforeBoot ? null : presentVf(sysfs, a.pci);
  const was = a.original;
  const isDry = dry ? { dry: true as const } : {};
  const d = rebound && !dry && now ? netdevDiff(now, was) : null;
  if (d && now?.netdev) {
    if (d.name) ip(['link', 'set', 'dev', now.netdev, 'down']);
    ip(['link', 'set', 'dev', now.netdev, ...(d.name ? ['name', d.name] : []), ...(d.mac ? ['address', d.mac] : []), ...(d.mtu ? ['mtu', String(d.mtu)] : [])]);
    steps.push({ step: 'netdev-tidied', netdev: was.netdev!, restored: d });
  } else if (now && was.mtu !== null && now.netdev && now.mtu !== was.mtu) {
    if (!dry) ip(['link', 'set', 'dev', now.netdev, 'mtu', String(was.mtu)]);
    steps.push({ step: 'mtu', mtu: was.mtu, ...isDry });
  }
  return steps;
}

/** The min rate VF NOW may be given instead of WANTED when its family's driver would
 *  refuse WANTED for oversubscribing the link; null when WANTED fits (or no rule says). */
function fitMinTxRate(sysfs: Sysfs, now: VfInfo, wanted: number): { wanted: number; set: number; why: string } | null {
  const limits = vfSettingLimits(sysfs, now.pf);
  const own = now.settings?.minTxRate ?? 0;
  const others = othersMinTxRate(limits, own);
  if (others === null || !limits.linkSpeedMbps || !minTxRateRefusal(limits, own, wanted)) return null;
  const set = Math.max(0, limits.linkSpeedMbps - others);
  return { wanted, set, why: `the PF's other VFs are guaranteed ${others} of its ${limits.linkSpeedMbps} Mbit/s now, and its driver refuses a sum above the link` };
}

/**
 * The driver (someone may have rebound the VF under its holder: released on another one,
 * the pool's next ADD would take it in another mode) and the PF-side settings the VF had
 * when it was allocated. Synchronous, for a caller that holds the store's lock. What was
 * done; a VF that no longer exists has nothing to put back. `beforeBoot` as for
 * tidyReturnedNetdev.
 */
export function restoreDriverAndSettings(sysfs: Sysfs, a: Allocation, { beforeBoot, dry = false }: { beforeBoot: boolean; dry?: boolean }): { rebound: boolean; steps: PutBackStep[] } {
  let now = presentVf(sysfs, a.pci);
  if (!now) return { rebound: false, steps: [{ step: 'vf-gone' }] };
  if (beforeBoot) return { rebound: false, steps: [{ step: 'before-boot' }] };
  const was = a.original;
  const steps: PutBackStep[] = [];
  const rebound = !!was.driver && now.driver !== was.driver;
  // dry (gc --dry-run): what would be done, said so, and nothing done.
  const isDry = dry ? { dry: true as const } : {};
  if (rebound) {
    if (!dry) bindVf(sysfs, a.pci, was.driver!, { force: true });
    steps.push({ step: 'driver', driver: was.driver!, ...isDry });
    if (!dry) now = resolveVf(sysfs, a.pci);
  }
  if (was.settings && now.settings) {
    const diff = settingsDiff(now.settings, was.settings);
    // A guarantee the PF's other VFs have taken since (a family whose driver keeps the
    // VFs' min rates within the link: ice) cannot be given back whole: the driver refuses
    // the write, and a put-back that fails keeps the VF held, its pod's DEL failing for
    // ever (helper-104). As much as fits is put back, and said.
    if (diff.minTxRate !== undefined && diff.minTxRate > 0) {
      const capped = fitMinTxRate(sysfs, now, diff.minTxRate);
      if (capped) {
        if (capped.set === now.settings.minTxRate) delete diff.minTxRate;
        else diff.minTxRate = capped.set;
        steps.push({ step: 'min-tx-rate-capped', wanted: capped.wanted, set: capped.set, why: capped.why, ...isDry });
      }
    }
    if (Object.keys(diff).length) {
      if (!dry) applyVfSettings(sysfs, now.pf, now.pfNetdev, now.index, diff, now.settings);
      steps.push({ step: 'settings', settings: diff, ...isDry });
    }
  }
  return { rebound, steps };
}

