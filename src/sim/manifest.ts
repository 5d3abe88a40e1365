// What a simulated NIC is made of: written by `vfplane sim create` at the top of the
// tree, read by the simulated kernel and by `vfplane sim destroy` (which removes what
// is listed here and nothing else).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SIM_MARKER } from '../sriov/sysfs.js';
import { conflict, notFound, systemError } from '../util/errors.js';

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

/** Reads the manifest of the simulator at ROOT and checks it before anything trusts it:
 *  `sim destroy` removes the directory and the netdevs it names, so a copied or edited
 *  manifest must not point it at another simulator's tree or at the host's links. */
export function readManifest(root: string): SimManifest {
  const abs = path.resolve(root);
  const p = manifestPath(abs);
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch {
    throw notFound(`no simulated NIC at ${abs} (${SIM_MARKER} is missing); create one with \`vfplane sim create\``);
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw systemError(`${p} is not valid JSON (${(err as Error).message}); remove the directory and the links by hand or recreate the simulator`);
  }
  const bad = manifestProblem(m, abs);
  if (bad) {
    throw conflict(`${p} cannot be trusted: ${bad}; nothing was changed. A copied or edited tree is no simulator: ` +
      `remove it with \`rm -r ${abs}\` (any netdevs belong to the simulator that made them)`, { manifest: p, root: abs });
  }
  return m as SimManifest;
}

const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/;
const PCI_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max: number) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

function realpathOr(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

/** What is wrong with a manifest read from the tree at ROOT, or undefined if nothing. */
function manifestProblem(m: unknown, root: string): string | undefined {
  if (!isObj(m)) return 'it is not a JSON object';
  if (m.version !== 1) return `version ${JSON.stringify(m.version)} is not 1`;
  for (const k of ['root', 'devRoot', 'stateDir', 'profile', 'prefix', 'pciBus', 'pfVendor', 'pfDevice', 'vfVendor', 'vfDevice', 'pfDriver', 'vfDriver', 'createdAt'] as const) {
    if (typeof m[k] !== 'string') return `${k} is not a string`;
  }
  if (typeof m.netdevs !== 'boolean') return 'netdevs is not true or false';
  const mroot = m.root as string;
  if (!path.isAbsolute(mroot)) return `root ${JSON.stringify(mroot)} is not an absolute path`;
  const real = realpathOr(root);
  if (realpathOr(mroot) !== real) return `it names root ${mroot}, not ${root}`;
  if (m.devRoot !== path.join(mroot, 'vfplane-dev')) return `devRoot ${JSON.stringify(m.devRoot)} is not ${path.join(mroot, 'vfplane-dev')}`;
  if (m.stateDir !== path.join(mroot, 'vfplane-sim-state')) return `stateDir ${JSON.stringify(m.stateDir)} is not ${path.join(mroot, 'vfplane-sim-state')}`;
  const prefix = m.prefix as string;
  if (!PREFIX_RE.test(prefix)) return `prefix ${JSON.stringify(prefix)} is not 1–8 lower-case letters and digits starting with a letter`;
  const park = m.netdevs ? `${prefix}-park` : null;
  if (m.parkNetns !== park) return `parkNetns ${JSON.stringify(m.parkNetns)} is not ${JSON.stringify(park)} (the prefix's)`;
  if (!/^[0-9a-f]{4}:[0-9a-f]{2}$/.test(m.pciBus as string)) return `pciBus ${JSON.stringify(m.pciBus)} is not DDDD:BB`;
  if (!isInt(m.linkSpeedMbps, 1, 10_000_000)) return 'linkSpeedMbps is not a positive integer';
  if (!isInt(m.numaNode, -1, 1023)) return 'numaNode is not an integer in -1–1023';
  if (!Array.isArray(m.pfs) || m.pfs.length < 1 || m.pfs.length > 8) return 'pfs is not a list of 1–8 PFs';
  for (const [i, pf] of m.pfs.entries()) {
    if (!isObj(pf)) return `pfs[${i}] is not an object`;
    if (pf.index !== i) return `pfs[${i}].index is ${JSON.stringify(pf.index)}, not ${i}`;
    if (typeof pf.pci !== 'string' || !PCI_RE.test(pf.pci) || !pf.pci.startsWith(`${m.pciBus}:`)) return `pfs[${i}].pci ${JSON.stringify(pf.pci)} is not a PCI address on bus ${m.pciBus}`;
    if (pf.netdev !== `${prefix}f${i}`) return `pfs[${i}].netdev ${JSON.stringify(pf.netdev)} is not ${prefix}f${i} (netdevs carry the prefix)`;
    if (pf.uplinkPeer !== `${prefix}f${i}u`) return `pfs[${i}].uplinkPeer ${JSON.stringify(pf.uplinkPeer)} is not ${prefix}f${i}u (netdevs carry the prefix)`;
    for (const [k, min, max] of [['totalVfs', 0, 256], ['vfOffset', 1, 65535], ['vfStride', 1, 256], ['iommuGroup', 0, 1_000_000], ['vfIommuBase', 0, 1_000_000]] as const) {
      if (!isInt(pf[k], min, max)) return `pfs[${i}].${k} is not an integer in ${min}–${max}`;
    }
  }
  return undefined;
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
