// What a simulated NIC is made of: written by `vfplane sim create` at the top of the
// tree, read by the simulated kernel and by `vfplane sim destroy` (which removes what
// is listed here and nothing else).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SIM_MARKER } from '../sriov/sysfs.js';
import { notFound, systemError } from '../util/errors.js';

export interface SimPf {
  index: number;
  pci: string;
  netdev: string; // the PF's uplink netdev (host end of a veth)
  uplinkPeer: string; // the underlay end of that veth
  totalVfs: number;
  vfOffset: number;
  vfStride: number;
  iommuGroup: number;
  vfIommuBase: number;
}

export interface SimManifest {
  version: 1;
  root: string;
  devRoot: string;
  stateDir: string;
  profile: string;
  prefix: string;
  netdevs: boolean;
  parkNetns: string | null; // where VF netdevs wait while no kernel driver is bound
  pciBus: string; // "0000:5e"
  pfVendor: string;
  pfDevice: string;
  vfVendor: string;
  vfDevice: string;
  pfDriver: string;
  vfDriver: string;
  linkSpeedMbps: number;
  numaNode: number;
  pfs: SimPf[];
  createdAt: string;
}

export function manifestPath(root: string): string {
  return path.join(root, SIM_MARKER);
}

export function readManifest(root: string): SimManifest {
  const p = manifestPath(path.resolve(root));
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch {
    throw notFound(`no simulated NIC at ${path.resolve(root)} (${SIM_MARKER} is missing); create one with \`vfplane sim create\``);
  }
  try {
    return JSON.parse(text) as SimManifest;
  } catch (err) {
    throw systemError(`${p} is not valid JSON (${(err as Error).message}); remove the directory and the ${''}links by hand or recreate the simulator`);
  }
}

/** VF netdev names: <prefix>f<pf>v<vf>; the representor: <prefix>f<pf>r<vf>. */
export const vfNetdev = (m: SimManifest, pf: number, vf: number) => `${m.prefix}f${pf}v${vf}`;
export const vfRepresentor = (m: SimManifest, pf: number, vf: number) => `${m.prefix}f${pf}r${vf}`;

/** A stable, locally administered MAC for a VF netdev. */
export function vfMac(m: SimManifest, pf: number, vf: number): string {
  let h = 0x811c9dc5;
  for (const c of m.prefix) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  const b = [0x02, (h >>> 8) & 0xff, h & 0xff, pf & 0xff, (vf >> 8) & 0xff, vf & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}
