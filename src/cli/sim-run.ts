// The work behind `vfplane sim create|destroy|show`.
import { createSim, destroySim, readManifest } from '../sim/sim.js';
import type { SimManifest } from '../sim/manifest.js';
import { printJson } from './output.js';

function describe(m: SimManifest): string {
  const lines = [
    `simulated ${m.profile} NIC at ${m.root}: ${m.pfs.length} PF(s), ${m.pfs[0]?.totalVfs ?? 0} VFs max each`,
  ];
  for (const pf of m.pfs) {
    lines.push(`  PF ${pf.pci}  ${m.netdevs ? `netdev ${pf.netdev} (underlay end ${pf.uplinkPeer})` : 'no netdevs'}`);
  }
  if (m.netdevs) lines.push(`  VF netdevs ${m.prefix}f<pf>v<vf>, representors ${m.prefix}f<pf>r<vf>; unbound VF netdevs wait in netns ${m.parkNetns}`);
  lines.push(`use it with: --sysfs-root ${m.root}   (or export VFPLANE_SYSFS_ROOT=${m.root})`);
  return lines.join('\n');
}

export async function simCreate(o: { profile: string; pfs: number; vfs: number; uplinkQueues?: number; root: string; sysfsRoot?: string; prefix: string; netdevs: boolean; json?: boolean }): Promise<void> {
  const m = createSim({ profile: o.profile, pfs: o.pfs, vfs: o.vfs, root: o.sysfsRoot ?? o.root, prefix: o.prefix, netdevs: o.netdevs, ...(o.uplinkQueues ? { uplinkQueues: o.uplinkQueues } : {}) });
  if (o.json) return printJson(m);
  console.log(describe(m));
}

export async function simDestroy(o: { root: string; sysfsRoot?: string; json?: boolean }): Promise<void> {
  const m = destroySim(o.sysfsRoot ?? o.root);
  if (o.json) return printJson({ destroyed: m.root, prefix: m.prefix, pfs: m.pfs.map((p) => p.pci) });
  console.log(`removed the simulated NIC at ${m.root} (netdevs ${m.prefix}f*, netns ${m.parkNetns ?? '-'})`);
}

export async function simShow(o: { root: string; sysfsRoot?: string; json?: boolean }): Promise<void> {
  const m = readManifest(o.sysfsRoot ?? o.root);
  if (o.json) return printJson(m);
  console.log(describe(m));
}
