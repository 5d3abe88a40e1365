// Device-info files (k8snetworkplumbingwg/device-info-spec 1.1.0): how a DPDK pod learns
// which VF it got. Multus reads the file after ADD into the pod's network-status
// annotation, and deletes it after DEL. The path comes from the CNIDeviceInfoFile
// capability when the config declares it; otherwise it follows Multus's own naming.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPci } from '../sriov/pci.js';
import { CniError, ERR } from './spec.js';
import { makeDirs } from '../util/fs.js';

export const DEVINFO_VERSION = '1.1.0';
/** device-info-spec §4.2; the NAD client's baseDevInfoPath + "cni". */
export const DEFAULT_DEVINFO_DIR = '/var/run/k8s.cni.cncf.io/devinfo/cni';

/** The JSON of a device-info file (the NAD client's v1.DeviceInfo). */
export interface DeviceInfo {
  type: 'pci' | 'vdpa' | 'vhost-user' | 'memif';
  version: string;
  pci?: {
    'pci-address': string;
    'vhost-net'?: string;
    'rdma-device'?: string;
    'pf-pci-address'?: string;
    'representor-device'?: string;
  };
  'vhost-user'?: { mode: 'client' | 'server'; path: string };
  [key: string]: unknown;
}

/** What a VF attachment knows about its device. */
export interface PciDevInfo {
  pci: string; // the VF
  pfPci?: string; // its PF
  representor?: string; // switchdev representor netdev
  rdmaDevice?: string;
  vhostNet?: string; // /dev/vhost-net, for a virtio-user exception path
}

/**
 * Multus's file name for an attachment: `<network>-<containerID>_<ifname>` with every "/"
 * made "-" (multus pkg/types/conf.go delegateRuntimeConfig; NAD client GetCNIDeviceInfoPath).
 * Under Multus the network is "<namespace>/<nad-name>"; a bare config name stands alone.
 */
export function deviceInfoFileName(network: string, containerId: string, ifname: string): string {
  return `${network}-${containerId}_${ifname}`.replaceAll('/', '-');
}

function checkPath(p: unknown, what: string): string {
  if (typeof p !== 'string' || !path.isAbsolute(p) || p.includes('\0') || p.split('/').includes('..') || p.endsWith('/') || p.length > 4096) {
    throw new CniError(ERR.INVALID_CONFIG, `${what} ${JSON.stringify(p)} is not usable: expected an absolute file path without ".."`, `like ${DEFAULT_DEVINFO_DIR}/net1-4f2a…_net1`);
  }
  return path.normalize(p);
}

/** Where device-info files live (device-info-spec §4.2: the device plugin's under dp/,
 *  the CNI's under cni/), as /var/run or /run (one directory through a symlink), and
 *  VFPLANE_DEVINFO_ROOT from the plugin's own environment (tests; a node with another
 *  layout). */
function devinfoRoots(): string[] {
  const extra = process.env.VFPLANE_DEVINFO_ROOT;
  return ['/var/run/k8s.cni.cncf.io/devinfo/', '/run/k8s.cni.cncf.io/devinfo/', ...(extra && path.isAbsolute(extra) ? [path.normalize(`${extra}/`)] : [])];
}

/**
 * Where this attachment's device-info file goes: runtimeConfig.CNIDeviceInfoFile when the
 * runtime passed one (the capability must be declared in the config), else `dir` (the
 * spec's directory) + Multus's file name for (conf.name, CNI_CONTAINERID, CNI_IFNAME).
 * The path given must be under the device-info directory: a network config is written
 * by whoever may make a NetworkAttachmentDefinition in a namespace, and the plugin,
 * running as root, replaces that file on ADD and removes it on DEL.
 */
export function deviceInfoPath(
  conf: { name: string; runtimeConfig?: { CNIDeviceInfoFile?: unknown } },
  env: { containerId?: string; ifname?: string },
  dir: string = DEFAULT_DEVINFO_DIR,
): string {
  const given = conf.runtimeConfig?.CNIDeviceInfoFile;
  if (given !== undefined && given !== '') {
    const p = checkPath(given, 'runtimeConfig.CNIDeviceInfoFile');
    const roots = devinfoRoots();
    if (!roots.some((r) => p.startsWith(r) && p.length > r.length)) {
      throw new CniError(ERR.INVALID_CONFIG, `runtimeConfig.CNIDeviceInfoFile ${JSON.stringify(p)} is outside ${roots[0]}, where device-info files live: the plugin replaces that file on ADD and removes it on DEL, so it takes no other`,
        `Multus passes ${DEFAULT_DEVINFO_DIR}/<network>-<container>_<ifname>; leave runtimeConfig out of the network config`);
    }
    return p;
  }
  if (!env.containerId || !env.ifname) {
    throw new CniError(ERR.INVALID_ENV, 'CNI_CONTAINERID and CNI_IFNAME are needed to name the device-info file');
  }
  return checkPath(path.join(dir, deviceInfoFileName(conf.name, env.containerId, env.ifname)), 'device-info path');
}

/** A device-info object for a PCI VF; addresses are checked and lower-cased. */
export function pciDeviceInfo(d: PciDevInfo): DeviceInfo {
  const addr = (v: string, what: string) => {
    if (!isPci(v)) throw new CniError(ERR.INVALID_CONFIG, `device-info ${what} ${JSON.stringify(v)} is not a PCI address like 0000:3b:02.1`);
    return v.toLowerCase();
  };
  const pci: NonNullable<DeviceInfo['pci']> = { 'pci-address': addr(d.pci, 'pci-address') };
  if (d.vhostNet) pci['vhost-net'] = d.vhostNet;
  if (d.rdmaDevice) pci['rdma-device'] = d.rdmaDevice;
  if (d.pfPci) pci['pf-pci-address'] = addr(d.pfPci, 'pf-pci-address');
  if (d.representor) pci['representor-device'] = d.representor;
  return { type: 'pci', version: DEVINFO_VERSION, pci };
}

/**
 * Writes the file atomically (a temporary file in the same directory, then rename), so
 * Multus never reads half a file; replaces one already there (Multus may have copied the
 * device plugin's file to this path; the spec lets the CNI plugin update it). The
 * directory is created (0755) when missing; the file is 0444, as the NAD client writes it.
 */
export function writeDeviceInfo(file: string, info: PciDevInfo | DeviceInfo): void {
  const target = checkPath(file, 'device-info path');
  const doc = 'type' in info ? info : pciDeviceInfo(info);
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  try {
    makeDirs(dir, 0o755);
    const fd = fs.openSync(tmp, 'wx', 0o444);
    try {
      fs.writeSync(fd, JSON.stringify(doc));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    throw new CniError(ERR.IO, `cannot write device-info file ${target}: ${(err as Error).message}`);
  }
}

/** The file's content, or null when there is none. */
export function readDeviceInfo(file: string): DeviceInfo | null {
  const target = checkPath(file, 'device-info path');
  let text: string;
  try {
    text = fs.readFileSync(target, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CniError(ERR.IO, `cannot read device-info file ${target}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as DeviceInfo;
  } catch (err) {
    throw new CniError(ERR.DECODE, `device-info file ${target} is not JSON: ${(err as Error).message}`);
  }
}

/** Removes the file; a file that is already gone is fine (DEL may run twice). */
export function removeDeviceInfo(file: string): void {
  const target = checkPath(file, 'device-info path');
  try {
    fs.unlinkSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CniError(ERR.IO, `cannot remove device-info file ${target}: ${(err as Error).message}`);
  }
}

/** What became of a released attachment's device-info file: a put-back step, as `vf
 *  release --json` and `gc --json` report it (dry: gc --dry-run's "would remove"). */
export type DeviceInfoStep = { step: 'device-info'; file: string; removed: boolean; why?: string; dry?: true };

/**
 * Removes a released attachment's device-info file, as its DEL does, for every releaser
 * (CNI DEL and GC, `vfplane gc`, `vf release`). One it cannot remove (a read-only or
 * broken filesystem) is said and left, not a failed release: the runtime would retry a
 * DEL for ever with the VF and its address held, for a file nothing reads once the pod is
 * gone, and the next ADD at that path replaces it whole (writeDeviceInfo renames over it).
 */
export function dropDeviceInfo(file: string): DeviceInfoStep {
  try {
    if (!lexists(file)) return { step: 'device-info', file, removed: false, why: 'gone already' };
    removeDeviceInfo(file);
    return { step: 'device-info', file, removed: true };
  } catch (e) {
    return { step: 'device-info', file, removed: false, why: `${(e as Error).message}; left in place (remove it once its filesystem is writable)` };
  }
}

/** Whether anything is at FILE, a dangling symlink included (existsSync follows it: a
 *  link whose target went was "gone already" and left, helper-108). */
export function lexists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}
