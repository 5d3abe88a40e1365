// What a simulated NIC is made of: written by `vfplane sim create` at the top of the
// tree, read by the simulated kernel and by `vfplane sim destroy` (which removes what
// is listed here and nothing else).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as z from '../util/z.js';
import { SIM_MAKING_MARKER, SIM_MARKER } from '../sriov/sysfs.js';
import { conflict, notFound, systemError } from '../util/errors.js';
import { jsonParseError } from '../util/json.js';
import { zodMessage } from '../util/zod.js';

const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/;
const PCI_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;
const text = (what: string) => z.string({ error: `expected a string (${what})` });
const int = (min: number, max: number, what: string) => {
  const e = `expected an integer in ${min}–${max} (${what})`;
  return z.number({ error: e }).int(e).min(min, e).max(max, e);
};

const pfSchema = z.object({
  index: int(0, 7, "the PF's place in pfs"),
  pci: text('a PCI address').regex(PCI_RE, 'expected a PCI address DDDD:BB:DD.F in lower-case hex'),
  netdev: text("the PF's uplink netdev"), // the host end of a veth
  uplinkPeer: text('the underlay end of the uplink veth'),
  totalVfs: int(0, 256, 'sriov_totalvfs'),
  vfOffset: int(1, 65535, 'sriov_offset'),
  vfStride: int(1, 256, 'sriov_stride'),
  iommuGroup: int(0, 1_000_000, "the PF's IOMMU group"),
  vfIommuBase: int(0, 1_000_000, "the first VF's IOMMU group"),
}, { error: 'expected a PF (an object)' });
export type SimPf = z.infer<typeof pfSchema>;

// The fields in the order `sim create` writes them (and `sim show --json` prints them).
const manifestSchema = z.object({
  version: z.literal(1, { error: 'expected 1, the only manifest version' }),
  root: text('the absolute path of the tree').refine((s) => path.isAbsolute(s), 'expected an absolute path (the tree the manifest is in)'),
  devRoot: text('<root>/vfplane-dev'),
  stateDir: text('<root>/vfplane-sim-state'),
  profile: text('a hw-profile name'),
  prefix: text('the netdev prefix').regex(PREFIX_RE, 'expected 1–8 lower-case letters and digits starting with a letter (the netdev prefix)'),
  netdevs: z.boolean({ error: 'expected true or false (whether the simulator made netdevs)' }),
  // Where VF netdevs wait while no kernel driver is bound.
  parkNetns: text('a network namespace name, or null without netdevs').nullable(),
  pciBus: text('the PCI bus').regex(/^[0-9a-f]{4}:[0-9a-f]{2}$/, 'expected a PCI bus DDDD:BB in lower-case hex, e.g. 0000:5e'),
  pfVendor: text('the PF vendor ID'),
  pfDevice: text('the PF device ID'),
  vfVendor: text('the VF vendor ID'),
  vfDevice: text('the VF device ID'),
  pfDriver: text('the PF driver'),
  vfDriver: text('the VF driver'),
  linkSpeedMbps: int(1, 10_000_000, 'Mb/s'),
  numaNode: int(-1, 1023, '-1: none'),
  pfs: z.array(pfSchema, { error: 'expected a list of 1–8 PFs' }).min(1, 'expected a list of 1–8 PFs').max(8, 'expected a list of 1–8 PFs'),
  createdAt: text('an ISO time'),
  // Which making of the NIC this is (as the kernel's boot_id): what an allocation records
  // to know whether it is from before this "boot", whatever the clock did since.
  bootId: text('a random id').optional(),
}, { error: 'expected a JSON object' });
export type SimManifest = z.infer<typeof manifestSchema>;

export function manifestPath(root: string): string {
  return path.join(root, SIM_MARKER);
}

/** The manifest of a simulator still being made: written before anything else, renamed
 *  to the manifest once the tree answers as a kernel would. A `sim create` killed
 *  (SIGKILL) half-way leaves it, and `sim destroy` removes what it lists. */
export function makingPath(root: string): string {
  return path.join(root, SIM_MAKING_MARKER);
}

/** Reads the manifest of the simulator at ROOT and checks it before anything trusts it:
 *  `sim destroy` removes the directory and the netdevs it names, so a copied or edited
 *  manifest must not point it at another simulator's tree or at the host's links. */
export function readManifest(root: string, o: { unfinished?: boolean } = {}): SimManifest {
  const abs = path.resolve(root);
  let p = manifestPath(abs);
  let raw: string;
  try {
    raw = fs.readFileSync(p, 'utf8');
  } catch {
    if (!fs.existsSync(makingPath(abs))) throw notFound(`no simulated NIC at ${abs} (${SIM_MARKER} is missing); create one with \`vfplane sim create\``);
    // Only its destroy reads an unfinished simulator: nothing else may take it for a NIC.
    if (!o.unfinished) {
      throw notFound(`the simulated NIC at ${abs} was never finished: a \`vfplane sim create\` stopped before its end (killed?); remove what it made with \`vfplane sim destroy --root ${abs}\``, { root: abs, unfinished: true });
    }
    p = makingPath(abs);
    try {
      raw = fs.readFileSync(p, 'utf8');
    } catch (e) {
      throw notFound(`cannot read ${p}: ${(e as Error).message}`);
    }
  }
  let m: unknown;
  try {
    m = JSON.parse(raw);
  } catch (err) {
    throw systemError(`${p} is not valid JSON (${jsonParseError(err)}); remove the directory and the links by hand or recreate the simulator`);
  }
  const r = manifestSchema.superRefine((v, ctx) => crossChecks(v, abs, ctx)).safeParse(m);
  if (!r.success) {
    throw conflict(`${p} cannot be trusted: ${zodMessage(r.error, m, 'the manifest')}; nothing was changed. A copied or edited tree is no simulator: ` +
      `remove it with \`rm -r ${abs}\` (any netdevs belong to the simulator that made them)`, { manifest: p, root: abs });
  }
  return r.data;
}

function realpathOr(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

/** What the fields must agree on: the manifest is the one of the tree at ROOT (by
 *  realpath, so another spelling of it is fine), the paths are inside it, and every
 *  netdev and namespace name is the prefix's. */
function crossChecks(m: SimManifest, root: string, ctx: z.RefinementCtx): void {
  const bad = (at: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path: at, message });
  if (realpathOr(m.root) !== realpathOr(root)) bad(['root'], `expected ${root}, the tree the manifest is in (compared by realpath)`);
  const devRoot = path.join(m.root, 'vfplane-dev');
  if (m.devRoot !== devRoot) bad(['devRoot'], `expected ${devRoot} (inside root)`);
  const stateDir = path.join(m.root, 'vfplane-sim-state');
  if (m.stateDir !== stateDir) bad(['stateDir'], `expected ${stateDir} (inside root)`);
  const park = m.netdevs ? `${m.prefix}-park` : null;
  if (m.parkNetns !== park) bad(['parkNetns'], `expected ${JSON.stringify(park)} (${m.netdevs ? "the prefix's" : 'no netdevs, no namespace'})`);
  for (const [i, pf] of m.pfs.entries()) {
    if (pf.index !== i) bad(['pfs', i, 'index'], `expected ${i} (its place in pfs)`);
    if (!pf.pci.startsWith(`${m.pciBus}:`)) bad(['pfs', i, 'pci'], `expected a PCI address on bus ${m.pciBus} (pciBus)`);
    if (pf.netdev !== `${m.prefix}f${i}`) bad(['pfs', i, 'netdev'], `expected "${m.prefix}f${i}" (netdevs carry the prefix)`);
    if (pf.uplinkPeer !== `${m.prefix}f${i}u`) bad(['pfs', i, 'uplinkPeer'], `expected "${m.prefix}f${i}u" (netdevs carry the prefix)`);
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
