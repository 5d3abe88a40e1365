// What an operator (or the CNI plugin) changes on a NIC: the number of VFs, which driver
// a VF is bound to, and its PF-side settings. Every action checks its input and the
// current state first, so a refused request changes nothing, and turns the kernel's
// errno into a sentence that says what to do.
import { ip, link } from '../net/ip.js';
import { conflict, invalid, notFound, systemError, VfpError } from '../util/errors.js';
import { applyVfSettingsSaid, listVfs, resolvePf, resolveVf, vfSettingLimits } from './discover.js';
import { USERSPACE_DRIVERS } from './pci.js';
import { bifurcatedVf, getProfile, loadProfiles, matchVf } from './profile.js';
import type { Sysfs } from './sysfs.js';
import type { PfInfo, VfInfo, VfSettings } from './types.js';
import { checkMtu, checkSettings, MTU_RANGE, settingsDiff } from './vf-settings.js';

export const VFIO = 'vfio-pci';

/** Who holds a VF, as the allocation store reports it (kept abstract to avoid a cycle). */
export type HolderLookup = (pci: string) => string | undefined;

function errnoOf(err: unknown): string | undefined {
  return err instanceof VfpError ? (err.details?.errno as string | undefined) : undefined;
}

export interface NumVfsResult {
  pf: string;
  before: number;
  after: number;
  changed: boolean;
}

/**
 * Sets sriov_numvfs. The kernel changes a nonzero count only through 0, which destroys
 * every VF; that happens only with `force`, and never while a VF is allocated.
 */
export function setNumVfs(sysfs: Sysfs, pfRef: string, n: number, o: { force?: boolean; holder?: HolderLookup } = {}): NumVfsResult {
  const pf = resolvePf(sysfs, pfRef);
  if (!Number.isInteger(n) || n < 0) throw invalid(`number of VFs ${JSON.stringify(n)} must be a whole number ≥ 0`);
  if (n > pf.totalVfs) {
    // The count is well-formed; this PF cannot have that many (exit 1, not a usage error).
    throw conflict(`PF ${pfRef} supports at most ${pf.totalVfs} VFs (sriov_totalvfs); ${n} is above it`);
  }
  if (n === pf.numVfs) return { pf: pf.pci, before: n, after: n, changed: false };
  if (!pf.driver) throw conflict(`PF ${pfRef} has no driver bound; bind its driver (${pf.profile ? getProfile(pf.profile).pf.driver : 'the NIC driver'}) before creating VFs`);
  const vfs = pf.numVfs > 0 ? listVfs(sysfs, { pf: pf.pci }) : [];
  if (n < pf.numVfs || pf.numVfs > 0) {
    const held = vfs.map((v) => [v.pci, o.holder?.(v.pci)] as const).filter(([, h]) => h);
    if (held.length > 0) {
      throw conflict(
        `PF ${pfRef} has allocated VFs (${held.map(([p, h]) => `${p} → ${h}`).join(', ')}); ` +
          'changing the VF count destroys every VF: release them first',
      );
    }
  }
  if (pf.numVfs > 0 && !o.force) {
    // Netdevs of VFs no allocation explains, in other namespaces: pods of another CNI
    // (sriov-cni beside vfplane during a migration), or moved by hand. As `vf bind`
    // refuses to destroy one, so does this, without --force.
    const away = vfs.filter((v) => netdevElsewhere(sysfs, v));
    if (away.length) {
      throw conflict(
        `PF ${pfRef} has VFs whose netdevs are in other network namespaces, held by no allocation here (another CNI's pods? moved by hand?): ${away.map((v) => v.pci).join(', ')}; ` +
          'changing the VF count destroys them there. Find who uses them (`vfplane vf show PCI`), or pass --force',
      );
    }
    // VFs a DPDK application has open through their VFIO group (helper-88).
    const open = vfs.filter((v) => v.vfioOpenBy);
    if (open.length) {
      throw conflict(
        `PF ${pfRef} has VFs whose VFIO groups are open in processes outside vfplane (DPDK applications): ${open.map((v) => `${v.pci} in ${v.vfioOpenBy!.pid} (${v.vfioOpenBy!.comm})`).join(', ')}; ` +
          'changing the VF count pulls them from under those processes. Stop them first, or pass --force',
      );
    }
  }
  if (pf.numVfs > 0 && n > 0 && !o.force) {
    throw conflict(
      `PF ${pfRef} already has ${pf.numVfs} VFs; the kernel changes a nonzero count only through 0, which destroys them all. ` +
        `Run \`vfplane pf set-numvfs ${pfRef} 0\` first, or pass --force to do both`,
    );
  }
  const attr = `bus/pci/devices/${pf.pci}/sriov_numvfs`;
  try {
    if (pf.numVfs > 0 && n > 0) sysfs.write(attr, '0');
    sysfs.write(attr, String(n));
  } catch (err) {
    const errno = errnoOf(err);
    const why: Record<string, string> = {
      ERANGE: `${n} is above sriov_totalvfs (${pf.totalVfs})`,
      EBUSY: 'VFs already exist; set 0 first',
      ENOENT: 'the PF has no driver, or its driver cannot create VFs through sysfs',
      ENOMEM: 'the kernel could not allocate resources for the VFs (check the BIOS SR-IOV setting and the PCI bus numbers)',
    };
    throw systemError(`setting ${pf.pci} sriov_numvfs to ${n} failed: ${why[errno ?? ''] ?? (err as Error).message}`, { errno });
  }
  const after = sysfs.readInt(attr) ?? n;
  return { pf: pf.pci, before: pf.numVfs, after, changed: true };
}

/** The kernel driver a VF of this PF normally uses (from its hw-profile, or what it had). */
export function kernelVfDriver(vf: VfInfo, pf: PfInfo): string {
  // The simulator takes its IDs and drivers from a profile, so this holds there too.
  const p = matchVf(vf.vendor, vf.device, loadProfiles(), pf.profile ?? undefined);
  if (p) return p.vf.driver;
  throw notFound(`no hw-profile knows VF ${vf.pci} (${vf.vendor}:${vf.device}), so its kernel driver is unknown; bind it by name with --driver NAME`);
}

export interface BindResult {
  pci: string;
  before: string | null;
  after: string | null;
  changed: boolean;
  netdev: string | null;
  vfioDevice: string | null;
  /** Unchanged, and bound to a kernel driver whose netdev is in another namespace (a
   *  pod's?): what --force would take back. */
  netdevElsewhere?: boolean;
}

/** Whether a VF's netdev is in another namespace: a VF bound to a kernel driver always
 *  has one, so when the host cannot see it, it is elsewhere; a tree-only simulator has
 *  none at all (Sysfs.treeOnly). */
function netdevElsewhere(sysfs: Sysfs, vf: VfInfo): boolean {
  return vf.netdev === null && !!vf.driver && !USERSPACE_DRIVERS.has(vf.driver) && !sysfs.treeOnly;
}

/**
 * Binds a VF to vfio-pci (for DPDK) or back to its kernel driver, the way the kernel
 * wants it: driver_override, unbind from the current driver, drivers_probe.
 * An allocated VF, or one whose netdev has left the host namespace, is not touched
 * without `force`: unbinding destroys its netdev wherever it is.
 */
export function bindVf(sysfs: Sysfs, ref: string, target: 'vfio-pci' | 'kernel' | string, o: { force?: boolean; holder?: HolderLookup } = {}): BindResult {
  const vf = resolveVf(sysfs, ref);
  const pf = resolvePf(sysfs, vf.pf);
  const driver = target === 'kernel' ? kernelVfDriver(vf, pf) : target;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(driver)) throw invalid(`driver ${JSON.stringify(target)} is not a driver name`);
  const result = (after: VfInfo, changed: boolean): BindResult => ({
    pci: vf.pci, before: vf.driver, after: after.driver, changed, netdev: after.netdev, vfioDevice: after.vfioDevice,
  });
  const elsewhere = netdevElsewhere(sysfs, vf);
  // Bound already: nothing to do, unless forced while its netdev is elsewhere; rebinding
  // then takes the VF back (its netdev there goes, a new one comes up in this namespace).
  if (vf.driver === driver && !(o.force && elsewhere)) return elsewhere ? { ...result(vf, false), netdevElsewhere: true } : result(vf, false);
  if (!sysfs.exists(`bus/pci/drivers/${driver}`)) {
    throw notFound(
      `driver ${driver} is not loaded under ${sysfs.root}/bus/pci/drivers` + (driver === VFIO ? '; load it with `modprobe vfio-pci` (and enable the IOMMU: intel_iommu=on or amd_iommu=on)' : ''),
    );
  }
  // A bifurcated NIC's DPDK PMD (mlx5) drives the VF through its kernel driver: bound to
  // vfio-pci, DPDK cannot use it at all (the hw-profile says which families are so).
  if (driver === VFIO && !o.force) {
    const p = bifurcatedVf(vf.vendor, vf.device, loadProfiles(), pf.profile ?? undefined);
    if (p) {
      throw conflict(`VF ${vf.pci} is a ${p.name} VF: DPDK's ${p.dpdk.pmd} PMD runs on it bound to ${p.vf.driver} (a bifurcated driver) and cannot use it bound to vfio-pci; leave it on ${p.vf.driver} (a pod's DPDK opens it through its netdev), or pass --force`);
    }
  }
  const holder = o.holder?.(vf.pci);
  if (holder && !o.force) throw conflict(`VF ${vf.pci} is allocated to ${holder}; release it first, or pass --force to rebind it under its owner`);
  if (elsewhere && !o.force) {
    throw conflict(
      `VF ${vf.pci} is bound to ${vf.driver} but its netdev is not in the host namespace (moved into a pod?); ` +
        'unbinding would destroy it there. Pass --force if that is what you want',
    );
  }
  // Unbinding vfio-pci under an open group waits for the application to let go, or
  // pulls the device from under it (helper-88).
  if (vf.vfioOpenBy && !o.force) {
    throw conflict(`VF ${vf.pci} is bound to ${vf.driver} and its VFIO group ${vf.vfioDevice} is open in process ${vf.vfioOpenBy.pid} (${vf.vfioOpenBy.comm}), a DPDK application; rebinding would pull the VF from under it. Stop it first, or pass --force`);
  }
  const dev = `bus/pci/devices/${vf.pci}`;
  try {
    sysfs.write(`${dev}/driver_override`, driver);
    if (vf.driver) sysfs.write(`bus/pci/drivers/${vf.driver}/unbind`, vf.pci);
    sysfs.write('bus/pci/drivers_probe', vf.pci);
    // A kernel driver matches by ID; clearing the override keeps future probes ordinary.
    if (driver !== VFIO) sysfs.write(`${dev}/driver_override`, '\n');
  } catch (err) {
    throw systemError(`binding VF ${vf.pci} to ${driver} failed: ${(err as Error).message}`, { errno: errnoOf(err) });
  }
  const after = resolveVf(sysfs, vf.pci);
  if (after.driver !== driver) {
    throw systemError(`VF ${vf.pci} did not bind to ${driver} (it is ${after.driver ? `bound to ${after.driver}` : 'unbound'}); see dmesg`);
  }
  return result(after, true);
}

export interface VfConfig extends Partial<VfSettings> {
  mtu?: number;
}

export interface ConfigResult {
  pci: string;
  /** What was asked and differed from before. */
  changed: (keyof VfConfig)[];
  /** What was asked and already so. */
  unchanged: (keyof VfConfig)[];
  settings: VfSettings | null;
  mtu: number | null;
}

/** Changes PF-side settings and the VF netdev's MTU; checks everything before changing anything. */
export function configVf(sysfs: Sysfs, ref: string, c: VfConfig, o: { force?: boolean; holder?: HolderLookup } = {}): ConfigResult {
  const vf = resolveVf(sysfs, ref);
  const { mtu, ...settingsChange } = c;
  const current = vf.settings;
  if (Object.keys(settingsChange).length > 0 && !current) {
    throw notFound(`PF ${vf.pf} does not report VF settings (no PF netdev in this namespace?); cannot change ${Object.keys(settingsChange).join(', ')}`);
  }
  const checked = current ? checkSettings(settingsChange, current, Object.keys(settingsChange).length ? vfSettingLimits(sysfs, vf.pf) : null) : {};
  if (mtu !== undefined) {
    if (!Number.isInteger(mtu) || mtu < MTU_RANGE.min || mtu > MTU_RANGE.max) throw invalid(`mtu ${mtu} is out of range: ${MTU_RANGE.min}–${MTU_RANGE.max}`);
    if (!vf.netdev) {
      // Bound to a kernel driver, its netdev is elsewhere: most often in the pod that holds
      // it, whose MTU it is; bound to vfio-pci (or nothing), it has none at all.
      // (A tree-only simulator has no netdevs at all, even for a kernel-bound VF.)
      const kernel = !!vf.driver && !USERSPACE_DRIVERS.has(vf.driver);
      const where = kernel && sysfs.treeOnly
        ? 'this simulated NIC was made without netdevs (`sim create --no-netdevs`), so there is no MTU to set'
        : kernel
        ? `its netdev is in another network namespace, most likely that of the pod holding it (\`vfplane vf show ${vf.pci}\` names it): set the MTU there (the pod network's mtu), or release the VF first`
        : `it has no netdev to set an MTU on (${vf.driver ? `bound to ${vf.driver}: the MTU is the DPDK application's` : 'no driver bound'})`;
      throw conflict(`VF ${vf.pci} has no netdev in the host namespace (${vf.driver ? `driver ${vf.driver}` : 'no driver'}); ${where}`);
    }
  }
  if (mtu !== undefined && vf.netdev) checkMtu(mtu, vf.netdev);
  // A pod's VF is the pod's: a changed MAC, VLAN or link state breaks it under its owner.
  const holder = o.holder?.(vf.pci);
  if (holder && !o.force) throw conflict(`VF ${vf.pci} is allocated to ${holder}; release it first, or pass --force to change it under its owner`);
  if (current) applyVfSettingsSaid(sysfs, vf, checked, current);
  if (mtu !== undefined && vf.netdev) ip(['link', 'set', 'dev', vf.netdev, 'mtu', String(mtu)]);
  const after = resolveVf(sysfs, vf.pci);
  // What was asked, split by whether it differed from what the VF had (vf.mtu: before).
  const differs = current ? settingsDiff(current, checked) : checked;
  const asked: (keyof VfConfig)[] = [...(Object.keys(checked) as (keyof VfConfig)[]), ...(mtu !== undefined ? (['mtu'] as const) : [])];
  const changed = (k: keyof VfConfig) => (k === 'mtu' ? vf.mtu !== mtu : k in differs);
  return {
    pci: vf.pci,
    changed: asked.filter(changed),
    unchanged: asked.filter((k) => !changed(k)),
    settings: after.settings,
    mtu: after.netdev ? link(after.netdev)?.mtu ?? null : null,
  };
}
