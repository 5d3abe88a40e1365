// The work behind `vfplane sim create|destroy|show`.
import { existsSync, readFileSync } from 'node:fs';
import { createSim, destroySimIfMade, removeSim, simAt } from '../sim/sim.js';
import { manifestPath } from '../sim/manifest.js';
import { interrupted, onInterrupt } from '../util/interrupt.js';
import * as path from 'node:path';
import { invalid } from '../util/errors.js';
import type { SimManifest } from '../sim/manifest.js';
import { printJson } from './output.js';
import { AllocStore, type HeldElsewhere } from '../alloc/store.js';
import { describeOwner } from '../alloc/owner.js';

/** A PF's VFs now (its sriov_numvfs in the tree), or '?' when it cannot be read. */
function numVfs(m: SimManifest, pci: string): string {
  try {
    return readFileSync(path.join(m.root, 'bus/pci/devices', pci, 'sriov_numvfs'), 'utf8').trim();
  } catch {
    return '?';
  }
}

function describe(m: SimManifest): string {
  const lines = [
    `simulated NIC (profile ${m.profile}) at ${m.root}: ${m.pfs.length} PF(s), ${m.pfs[0]?.totalVfs ?? 0} VFs max each`,
  ];
  for (const pf of m.pfs) {
    lines.push(`  PF ${pf.pci}  ${numVfs(m, pf.pci)} VF(s)  ${m.netdevs ? `netdev ${pf.netdev} (underlay end ${pf.uplinkPeer})` : 'no netdevs'}`);
  }
  if (m.netdevs) lines.push(`  VF netdevs ${m.prefix}f<pf>v<vf>, representors ${m.prefix}f<pf>r<vf>; unbound VF netdevs wait in netns ${m.parkNetns}`);
  lines.push(`use it with: --sysfs-root ${m.root}   (or export VFPLANE_SYSFS_ROOT=${m.root})`);
  return lines.join('\n');
}

/** The simulator's root: --root, or --sysfs-root (its other name); both, only if they agree. */
function rootOf(o: { root: string; sysfsRoot?: string }, rootGiven: boolean): string {
  if (o.sysfsRoot && rootGiven && path.resolve(o.root) !== path.resolve(o.sysfsRoot)) {
    throw invalid(`--root ${o.root} and --sysfs-root ${o.sysfsRoot} name different trees; they are two names for one: give one of them`);
  }
  return o.sysfsRoot ?? o.root;
}

export async function simCreate(o: { profile: string; pfs: number; vfs: number; uplinkQueues?: number; root: string; sysfsRoot?: string; prefix: string; netdevs: boolean; json?: boolean }, rootGiven = true): Promise<void> {
  const root = path.resolve(rootOf(o, rootGiven));
  // Ctrl-C or SIGTERM while the NIC is built undoes it: a half-built tree would read as
  // a whole NIC (its manifest written, some VFs missing) and block the next create. The
  // build is synchronous, so the signal's handler runs once it returns (or once the `ip`
  // child the group's Ctrl-C killed has made it fail and undo itself). A manifest that
  // was there before belongs to another simulator: createSim refuses it, and it stays.
  const ours = !existsSync(manifestPath(root));
  const off = onInterrupt(() => {
    if (ours && destroySimIfMade(root)) process.stderr.write(`removed the simulated NIC it was building at ${root}\n`);
  });
  const m = createSim({ profile: o.profile, pfs: o.pfs, vfs: o.vfs, root, prefix: o.prefix, netdevs: o.netdevs, ...(o.uplinkQueues ? { uplinkQueues: o.uplinkQueues } : {}) });
  if (await interrupted()) return new Promise<never>(() => undefined); // the cleanup exits
  off();
  if (o.json) return printJson(m);
  console.log(describe(m));
}

export async function simDestroy(o: { root: string; sysfsRoot?: string; prefix?: string; json?: boolean }, rootGiven = true): Promise<void> {
  const root = rootOf(o, rootGiven);
  const m = simAt(root, o.prefix, { unfinished: true }); // the right simulator (one a killed create left too), before anything is read or removed
  // Read before the tree (and its registry of stores) goes: VFs pods still hold.
  let held: HeldElsewhere[] = [];
  try {
    held = AllocStore.heldAt(root);
  } catch (e) {
    console.error(`warning: could not read which of its VFs allocation stores hold: ${(e as Error).message}`);
  }
  removeSim(m);
  const stillHeld = held.map((h) => ({ pci: h.pci, owner: h.owner, store: h.dir }));
  if (held.length > 0) {
    const list = held.map((h) => `${h.pci} (${describeOwner(h.owner)}, store ${h.dir})`).join(', ');
    const podless = held.filter((h) => !h.owner.containerId);
    console.error(`note: ${held.length} of its VFs were still held: ${list}. ` +
      (podless.length < held.length ? 'Their pods\' CNI DEL still releases each and its IPAM address (nothing is put back, the NIC being gone). ' : '') +
      (podless.length ? `Those held without a pod (${podless.map((h) => h.pci).join(', ')}) stay in their store: \`vfplane vf release\` needs the tree, so make the simulator again at ${m.root} and release them there. ` : '') +
      'Release VFs before `sim destroy` next time (delete the pods, `vfplane vf release`, or `vfplane gc`)');
  }
  if (o.json) return printJson({ destroyed: m.root, prefix: m.prefix, pfs: m.pfs.map((p) => p.pci), stillHeld });
  console.log(`removed the simulated NIC at ${m.root} (${m.netdevs ? `netdevs ${m.prefix}f*, netns ${m.parkNetns ?? '-'}` : 'a tree without netdevs'})`);
}

export async function simShow(o: { root: string; sysfsRoot?: string; prefix?: string; json?: boolean }, rootGiven = true): Promise<void> {
  const m = simAt(rootOf(o, rootGiven), o.prefix);
  if (o.json) return printJson(m);
  console.log(describe(m));
}
