// sysfs, read and written through one configurable root (default /sys) so that the
// simulated NIC can stand in for the kernel. Paths are relative to the root and are
// checked before use: no absolute paths, no `..`, nothing that leaves the root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalid, notFound, systemError, VfpError } from '../util/errors.js';
import type { VfSettings } from './types.js';

/**
 * The simulator's hook: what a real kernel does behind sysfs and netlink for SR-IOV,
 * which this kernel (without SR-IOV) cannot.
 */
export interface SysfsKernel {
  readonly kind: 'sim';
  /** Returns true when it handled the write (it throws an errno-coded Error when the kernel would fail). */
  write(sysfs: Sysfs, rel: string, value: string): boolean;
  /** The simulator's devfs root (vfio group nodes); /dev on a real host. */
  readonly devRoot: string;
  /** PF-side settings of VF INDEX, as netlink's IFLA_VF_INFO would report them. */
  vfSettings(pfPci: string, index: number): VfSettings;
  /** Changes PF-side settings of VF INDEX, as `ip link set PF vf N …` would. */
  setVfSettings(pfPci: string, index: number, change: Partial<VfSettings>): VfSettings;
  /** When the simulated NIC was made (its "boot"), in ms since the epoch. */
  readonly bootedAt: number;
  /** Which making of the simulated NIC this is (its "boot_id"): simBootId. */
  readonly bootId: string;
  /** False for a simulator made with --no-netdevs: its kernel-bound VFs have none. */
  readonly hasNetdevs: boolean;
}

/** Marker the simulator leaves at the top of a tree it built (see src/sim). */
export const SIM_MARKER = 'vfplane-sim.json';
/** A simulator still being made (sim/manifest.ts, makingPath). */
export const SIM_MAKING_MARKER = 'vfplane-sim.making.json';

export const DEFAULT_SYSFS_ROOT = '/sys';

export function defaultSysfsRoot(): string {
  return process.env.VFPLANE_SYSFS_ROOT || DEFAULT_SYSFS_ROOT;
}

/** An errno-coded error, as fs calls on real sysfs throw them. */
export function errnoError(code: string, message: string): NodeJS.ErrnoException {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export class Sysfs {
  readonly root: string;

  constructor(
    root: string,
    readonly kernel: SysfsKernel | null = null,
  ) {
    this.root = path.resolve(root);
  }

  get isSim(): boolean {
    return this.kernel !== null;
  }

  /** A simulated NIC made without netdevs (`sim create --no-netdevs`): a VF bound to a
   *  kernel driver has no netdev anywhere, by design, and cannot be handed to a pod. */
  get treeOnly(): boolean {
    return this.kernel !== null && !this.kernel.hasNetdevs;
  }

  get devRoot(): string {
    return this.kernel?.devRoot ?? '/dev';
  }

  /**
   * When the NICs under this root came to be, in ms since the epoch: the host's boot
   * (/proc/stat btime) for /sys, the simulator's creation for a simulated tree (making one
   * anew is its reboot); null for any other tree. A VF allocated before it is another
   * instance than the one there now, whatever its address.
   */
  bootedAt(): number | null {
    if (this.kernel) return this.kernel.bootedAt;
    if (this.root !== DEFAULT_SYSFS_ROOT) return null;
    try {
      const m = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
      return m ? Number(m[1]) * 1000 : null;
    } catch {
      return null;
    }
  }

  /** Which boot of the node this is, as a name that a change of the wall clock does not
   *  move (bootedAt does: btime is now minus the time since boot): the kernel's boot_id
   *  for /sys, the simulator's for its tree (bootIdAt), null for any other tree. */
  bootId(): string | null {
    return this.kernel ? this.kernel.bootId : bootIdAt(this.root);
  }

  /** Absolute path of REL under the root; refuses anything that could leave it. */
  abs(rel: string): string {
    if (path.isAbsolute(rel) || rel.split('/').some((s) => s === '..' || s === '.')) {
      throw invalid(`refusing sysfs path ${JSON.stringify(rel)}: it must be relative to the sysfs root, without . or ..`);
    }
    const p = path.join(this.root, rel);
    if (p !== this.root && !p.startsWith(this.root + path.sep)) {
      throw invalid(`refusing sysfs path ${JSON.stringify(rel)}: it leaves ${this.root}`);
    }
    return p;
  }

  exists(rel: string): boolean {
    return fs.existsSync(this.abs(rel));
  }

  read(rel: string): string {
    const p = this.abs(rel);
    try {
      return fs.readFileSync(p, 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw notFound(`${p} does not exist`);
      throw systemError(`cannot read ${p}: ${(err as Error).message}`);
    }
  }

  tryRead(rel: string): string | undefined {
    try {
      return fs.readFileSync(this.abs(rel), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  readInt(rel: string): number | undefined {
    const s = this.tryRead(rel);
    if (s === undefined) return undefined;
    const n = Number.parseInt(s, s.startsWith('0x') ? 16 : 10);
    return Number.isFinite(n) ? n : undefined;
  }

  /** Entries of a directory, sorted; [] when it does not exist. */
  list(rel: string): string[] {
    try {
      return fs.readdirSync(this.abs(rel)).sort();
    } catch {
      return [];
    }
  }

  /** The last component of a symlink's target (a driver name, a PCI address, a group). */
  linkName(rel: string): string | undefined {
    try {
      return path.basename(fs.readlinkSync(this.abs(rel)));
    } catch {
      return undefined;
    }
  }

  /**
   * Writes an attribute. On real sysfs the kernel acts on it and may refuse with an
   * errno; the simulator does the same through its hook. Errors keep the errno in
   * `details.errno` so callers can explain them.
   */
  write(rel: string, value: string): void {
    const p = this.abs(rel);
    try {
      if (this.kernel?.write(this, rel, value)) return;
      fs.writeFileSync(p, value);
    } catch (err) {
      if (err instanceof VfpError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw systemError(`writing ${JSON.stringify(value)} to ${p} failed: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' '), {
        errno: e.code,
        path: p,
        value,
      });
    }
  }
}

/** A simulated NIC's boot id: the one `sim create` drew, or (a tree made before it drew
 *  one) its creation time. */
export function simBootId(m: { bootId?: string | undefined; createdAt: string }): string {
  return m.bootId ?? `sim:${m.createdAt}`;
}

/** The boot id (Sysfs.bootId) of the node whose sysfs root is ROOT, read without opening
 *  it: /proc/sys/kernel/random/boot_id for /sys, the simulator's for a tree it made,
 *  null otherwise (or when it cannot be read). */
export function bootIdAt(root: string): string | null {
  const abs = path.resolve(root);
  try {
    if (abs === DEFAULT_SYSFS_ROOT) return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    const m = JSON.parse(fs.readFileSync(path.join(abs, SIM_MARKER), 'utf8')) as { bootId?: unknown; createdAt?: unknown };
    if (typeof m.createdAt !== 'string') return null;
    return simBootId({ bootId: typeof m.bootId === 'string' ? m.bootId : undefined, createdAt: m.createdAt });
  } catch {
    return null;
  }
}

let simLoader: ((root: string) => SysfsKernel) | undefined;

/** The simulator registers itself here (src/sim/kernel.ts) to avoid an import cycle. */
export function registerSimKernel(load: (root: string) => SysfsKernel): void {
  simLoader = load;
}

/** A sysfs tree that no longer exists (a destroyed simulated NIC): every read finds
 *  nothing, so no VF is present and nothing is put back. Only for giving back what was
 *  held there; openSysfs refuses a missing root. */
export function vanishedSysfs(root: string): Sysfs {
  return new Sysfs(path.resolve(root));
}

/**
 * Opens the sysfs tree at ROOT. A tree built by `vfplane sim create` carries a marker
 * file; its kernel behaviour (sriov_numvfs, driver binding) then comes from the simulator.
 */
export async function openSysfs(root: string = defaultSysfsRoot()): Promise<Sysfs> {
  const abs = path.resolve(root);
  if (!fs.existsSync(abs)) {
    throw notFound(`sysfs root ${abs} does not exist; pass --sysfs-root (or set VFPLANE_SYSFS_ROOT) to /sys or to a tree made by \`vfplane sim create\``);
  }
  // A file there would read as a node with no NICs at all.
  if (!fs.statSync(abs).isDirectory()) {
    throw invalid(`sysfs root ${abs} is not a directory; pass --sysfs-root (or set VFPLANE_SYSFS_ROOT) to /sys or to a tree made by \`vfplane sim create\``);
  }
  if (fs.existsSync(path.join(abs, SIM_MARKER))) {
    if (!simLoader) await import('../sim/kernel.js');
    return new Sysfs(abs, simLoader!(abs));
  }
  // A simulator whose create was killed half-way: no kernel answers for that tree.
  if (fs.existsSync(path.join(abs, SIM_MAKING_MARKER))) {
    throw notFound(`the simulated NIC at ${abs} was never finished: a \`vfplane sim create\` stopped before its end (killed?); remove what it made with \`vfplane sim destroy --root ${abs}\``, { root: abs, unfinished: true });
  }
  return new Sysfs(abs);
}
