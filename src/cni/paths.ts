// Where a network config may point the plugin. A network config is written by whoever
// may make a NetworkAttachmentDefinition in a namespace; the plugin runs as root. So:
// - stateDir, sysfsRoot, poolsFile and vxlan.socket are taken only where they are root's
//   alone (util/trust.ts). A store forged by a user (every VF "held"), a sysfs tree made
//   by one (naming the host's eth0 as a VF's netdev, which ADD would move into the pod),
//   a pool file or socket of theirs: refused. sysfsRoot must be /sys or a tree `vfplane
//   sim create` made.
// - logFile, which the plugin creates or appends to: under the log directories only,
//   /var/log and those the plugin's own environment lists in VFPLANE_CNI_LOG_DIRS (the
//   node's: the runtime runs plugins with its environment), and root's alone there.
//   Elsewhere a network config could make root create /etc/nologin, or append lines to
//   any root file.
// The defaults (/var/lib/vfplane, /sys, the state directory's pools.json and socket) are
// the node's own install and are not checked.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SIM_MARKER } from '../sriov/sysfs.js';
import { whyUntrusted } from '../util/trust.js';

/** The directories a logFile may be in: /var/log, and VFPLANE_CNI_LOG_DIRS (absolute
 *  directories, ":"-separated) from the plugin's own environment. */
export function logDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = (env.VFPLANE_CNI_LOG_DIRS ?? '').split(':').filter((d) => d.startsWith('/') && !d.split('/').includes('..'));
  return ['/var/log', ...extra].map((d) => path.normalize(d).replace(/\/+$/, '') || '/');
}

/** Why the plugin will not write `file` as its log, or null. */
export function whyNotLogFile(file: string, env: NodeJS.ProcessEnv = process.env): string | null {
  // Exactly the path that is opened: a ".." after a symlink is resolved by the kernel
  // against the symlink's target, not as path.normalize reads it.
  if (!path.isAbsolute(file) || file.split('/').includes('..') || file.includes('\0')) {
    return `logFile ${JSON.stringify(file)} is not an absolute path without "..": the plugin does not write it`;
  }
  const f = path.normalize(file);
  const dirs = logDirs(env);
  if (!dirs.some((d) => f.startsWith(d === '/' ? '/' : `${d}/`) && f.length > d.length + 1)) {
    return `logFile ${file} is outside the log directories (${dirs.join(', ')}): the plugin runs as root, and a network config may not make it create or append to files elsewhere; ` +
      'put it under /var/log (as /var/log/vfplane-cni.log), or have the node\'s operator list its directory in VFPLANE_CNI_LOG_DIRS in the runtime\'s environment';
  }
  // And where it really is: a symlink on the way (root's) may lead out of them.
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return p;
    }
  };
  const at = real(path.dirname(f));
  if (!dirs.map(real).some((d) => at === d || at.startsWith(d === '/' ? '/' : `${d}/`))) {
    return `logFile ${file} leads out of the log directories (${dirs.join(', ')}) to ${at}, through a symlink: put it in a log directory itself`;
  }
  const why = whyUntrusted(f, 'regular file', true);
  return why ? `logFile ${file} is not written: ${why}; use a file in a directory only root may write` : null;
}

/** Why a sysfs tree a network config names is not taken (null: /sys, or a simulated
 *  NIC's tree that is root's alone). Run where the tree is opened, just before. */
export function sysfsRootRefusal(root: string): string | null {
  let real: string;
  try {
    real = fs.realpathSync(root);
  } catch (e) {
    return `sysfsRoot ${root}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (real === '/sys') return null;
  const marker = path.join(root, SIM_MARKER);
  const why = whyUntrusted(root, 'directory') ?? (fs.existsSync(marker) ? whyUntrusted(marker, 'regular file') : `${root} is not a tree \`vfplane sim create\` made (no ${SIM_MARKER})`);
  return why ? `sysfsRoot ${root}: ${why}; the plugin moves and configures the netdevs a sysfs tree names: leave sysfsRoot out (the host's /sys), or name a simulated NIC made by \`vfplane sim create --root\` in a directory only root may write` : null;
}

export interface PathRefusal {
  field: string;
  why: string;
}

/**
 * The paths of a network config the plugin will not act on, each with why and the way
 * out. Only the paths the config names: the defaults are the node's install.
 */
export function refusedPaths(conf: { stateDir?: string; sysfsRoot?: string; poolsFile?: string; vxlan?: { socket?: string } }): PathRefusal[] {
  const out: PathRefusal[] = [];
  const rootOnly = 'a directory only root may write';
  if (conf.stateDir) {
    const why = whyUntrusted(conf.stateDir, 'directory', true);
    if (why) out.push({ field: 'stateDir', why: `stateDir ${conf.stateDir}: ${why}; an allocation store there could be forged or changed by someone other than root: use ${rootOnly}, like /var/lib/vfplane/<network>` });
  }
  // A sysfsRoot missing now is a simulated NIC destroyed under its pods (DEL releases
  // their VFs without reading it); one present is checked here, and again where the
  // tree is opened (sysfsRootRefusal), so that one renamed in between is not read
  // unchecked (helper-70 moved a host veth into a pod that way).
  if (conf.sysfsRoot && fs.existsSync(conf.sysfsRoot)) {
    const why = sysfsRootRefusal(conf.sysfsRoot);
    if (why) out.push({ field: 'sysfsRoot', why });
  }
  if (conf.poolsFile) {
    const why = whyUntrusted(conf.poolsFile, 'regular file', true);
    if (why) out.push({ field: 'poolsFile', why: `poolsFile ${conf.poolsFile}: ${why}; pool definitions decide which VFs a pod may take: keep them in ${rootOnly}, like /var/lib/vfplane/pools.json` });
  }
  if (conf.vxlan?.socket) {
    const why = whyUntrusted(conf.vxlan.socket, 'socket', true);
    if (why) out.push({ field: 'vxlan.socket', why: `vxlan.socket ${conf.vxlan.socket}: ${why}; the plugin sends the data plane the pod's attachment there: name the data plane's control socket (its stateDir's dataplane.sock), which only root may make` });
  }
  return out;
}
