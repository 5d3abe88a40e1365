// Prepares what DPDK's EAL needs before vfp_dpdk__init: 2 MiB hugepages reserved, a
// hugetlbfs mounted (our own under the state dir when the host has none), and the EAL
// argument list. Without hugepages it falls back to --no-huge with a warning. The
// returned cleanup() undoes exactly what was done here and removes the EAL runtime dir.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { invalid, systemError } from '../util/errors.js';

export const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';
export const HUGEPAGE_KB = 2048;
export const DEFAULT_PMD_DIR = '/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0';

export interface DpdkEnvOptions {
  /** EAL lcore list (-l), e.g. "1" or "0-1". The first one is the main lcore. */
  cores: string;
  /** Directory where our hugetlbfs is mounted if the host has none (<stateDir>/hugepages). */
  stateDir: string;
  /** 2 MiB hugepages wanted in total (default 256 = 512 MiB); 0 asks for --no-huge. */
  hugepages?: number;
  /** PCI addresses to allow (-a); none → --no-pci. */
  pci?: string[];
  /** vdev devargs the EAL creates at start (--vdev); ports may also hot-plug them later. */
  vdevs?: string[];
  /** PMD directory to load (-d); by default the EAL loads its built-in RTE_EAL_PMD_PATH. */
  pmdDir?: string;
  /** --file-prefix, unique per EAL instance (default vfplane-<pid>). */
  filePrefix?: string;
  /** Memory for the --no-huge fallback, MiB (default 512). */
  noHugeMemMb?: number;
  /** Where warnings go (default: stderr). */
  warn?: (msg: string) => void;
}

export interface DpdkEnv {
  /** EAL arguments without a program name, for vfp_dpdk__init / VFP_DPDK_EAL. */
  args: string[];
  /** The hugetlbfs directory in use, or null in the --no-huge fallback. */
  hugeDir: string | null;
  filePrefix: string;
  warnings: string[];
  /** Undoes what prepare did: unmounts our hugetlbfs, restores nr_hugepages, removes the
   *  EAL runtime dir and this prefix's hugepage files. Call after the EAL's process is
   *  done (a busy mount is detached lazily). Idempotent. */
  cleanup: () => void;
}

export interface HugetlbMount {
  dir: string;
  pagesizeKb: number;
}

/** hugetlbfs mounts from /proc/mounts text; a mount without pagesize= uses the default size. */
export function parseHugetlbMounts(procMounts: string, defaultKb = HUGEPAGE_KB): HugetlbMount[] {
  const out: HugetlbMount[] = [];
  for (const line of procMounts.split('\n')) {
    const f = line.split(' ');
    if (f.length < 4 || f[2] !== 'hugetlbfs') continue;
    // /proc/mounts escapes spaces and tabs in paths as octal.
    const dir = f[1]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const m = /(?:^|,)pagesize=(\d+)([KMG])?/.exec(f[3]!);
    const kb = m ? Number(m[1]) * ({ K: 1, M: 1024, G: 1024 * 1024 }[m[2] ?? 'K'] ?? 1) : defaultKb;
    out.push({ dir, pagesizeKb: kb });
  }
  return out;
}

/** HugePages_Free from /proc/meminfo text. */
export function parseHugepagesFree(meminfo: string): number {
  const m = /^HugePages_Free:\s+(\d+)/m.exec(meminfo);
  return m ? Number(m[1]) : 0;
}

export interface HugePlanInput {
  want: number;
  nrHugepages: number;
  isRoot: boolean;
  mounts: HugetlbMount[];
  stateDir: string;
}

export interface HugePlan {
  /** Write this to nr_hugepages first (root and too few reserved), else undefined. */
  raiseTo?: number;
  /** Mount a hugetlbfs here (none of 2 MiB pages exists), else undefined. */
  mountAt?: string;
  /** The directory for --huge-dir (an existing mount or mountAt); null → --no-huge. */
  hugeDir: string | null;
  /** Why the plan is the --no-huge fallback. */
  fallback?: string;
}

/** Decides what to change, from the current state only (no side effects). */
export function planHugepages(i: HugePlanInput): HugePlan {
  if (i.want <= 0) return { hugeDir: null, fallback: 'hugepages: 0 asked' };
  const existing = i.mounts.find((m) => m.pagesizeKb === HUGEPAGE_KB);
  const raiseTo = i.nrHugepages < i.want ? i.want : undefined;
  if (!i.isRoot && (raiseTo !== undefined || !existing)) {
    const why = raiseTo !== undefined
      ? `${i.nrHugepages} of ${i.want} 2 MiB hugepages reserved and not root to raise ${NR_HUGEPAGES}`
      : 'no hugetlbfs of 2 MiB pages is mounted and not root to mount one';
    return { hugeDir: null, fallback: why };
  }
  if (existing) return { raiseTo, hugeDir: existing.dir };
  const mountAt = join(i.stateDir, 'hugepages');
  return { raiseTo, mountAt, hugeDir: mountAt };
}

export interface EalArgsInput {
  cores: string;
  filePrefix: string;
  hugeDir: string | null;
  pci?: string[];
  vdevs?: string[];
  pmdDir?: string;
  noHugeMemMb?: number;
}

/** The EAL argument list (no program name). */
export function buildEalArgs(i: EalArgsInput): string[] {
  if (!/^\d+([-,]\d+)*$/.test(i.cores)) throw invalid(`EAL cores "${i.cores}" is not a core list like 1 or 0-1 or 1,3`);
  if (!/^[A-Za-z0-9_.-]+$/.test(i.filePrefix)) throw invalid(`EAL file prefix "${i.filePrefix}" may hold only letters, digits, _ . -`);
  const a = ['-l', i.cores, '-n', '1', '--file-prefix', i.filePrefix, '--proc-type', 'primary'];
  // --huge-unlink: the EAL unlinks its hugepage files once mapped, so nothing is left in
  // a shared hugetlbfs when the process dies.
  if (i.hugeDir) a.push('--huge-dir', i.hugeDir, '--huge-unlink');
  else a.push('--no-huge', '-m', String(i.noHugeMemMb ?? 512));
  const pci = i.pci ?? [];
  if (pci.length === 0) a.push('--no-pci');
  for (const p of pci) a.push('-a', p);
  for (const v of i.vdevs ?? []) a.push('--vdev', v);
  if (i.pmdDir) a.push('-d', i.pmdDir);
  // EAL arguments are passed split on spaces (VFP_DPDK_EAL, vfp-io-fwd's eal=).
  for (const x of a) if (/\s/.test(x)) throw invalid(`EAL argument "${x}" holds whitespace`);
  return a;
}

/** The EAL's runtime directory for a file prefix (/var/run/dpdk/<prefix> as root). */
export function ealRuntimeDir(filePrefix: string, isRoot = process.getuid?.() === 0): string {
  const base = isRoot ? '/var/run' : (process.env.XDG_RUNTIME_DIR ?? '/tmp');
  return join(base, 'dpdk', filePrefix);
}

/** Reserves hugepages, mounts a hugetlbfs if needed and builds the EAL arguments. */
export function prepareDpdkEnv(o: DpdkEnvOptions): DpdkEnv {
  const warn = o.warn ?? ((m: string) => process.stderr.write(`vfplane: warning: ${m}\n`));
  const filePrefix = o.filePrefix ?? `vfplane-${process.pid}`;
  const want = o.hugepages ?? 256;
  const isRoot = process.getuid?.() === 0;
  const warnings: string[] = [];
  const undo: (() => void)[] = [];
  const say = (m: string) => { warnings.push(m); warn(m); };

  const nr = Number(readFileSync(NR_HUGEPAGES, 'utf8').trim());
  const plan = planHugepages({
    want, nrHugepages: nr, isRoot, stateDir: o.stateDir,
    mounts: parseHugetlbMounts(readFileSync('/proc/mounts', 'utf8')),
  });
  let hugeDir = plan.hugeDir;
  let fallback = plan.fallback;
  // The arguments are checked before the host changes (pages reserved, a mount made).
  buildEalArgs({ cores: o.cores, filePrefix, hugeDir, pci: o.pci, vdevs: o.vdevs, pmdDir: o.pmdDir, noHugeMemMb: o.noHugeMemMb });
  try {
    if (hugeDir && plan.raiseTo === undefined) {
      // Enough reserved, but others may hold them (another DPDK process, files in a
      // hugetlbfs): the EAL would fail with a bare "Permission denied".
      const free = parseHugepagesFree(readFileSync('/proc/meminfo', 'utf8'));
      if (free < want) {
        fallback = `${nr} 2 MiB hugepages are reserved but only ${free} are free (${want} wanted): other processes or hugetlbfs files hold the rest`;
        hugeDir = null;
      }
    }
    if (hugeDir && plan.raiseTo !== undefined) {
      writeFileSync(NR_HUGEPAGES, String(plan.raiseTo));
      // Giving back what we reserved: the kernel keeps pages still in use.
      undo.push(() => writeFileSync(NR_HUGEPAGES, String(nr)));
      const free = parseHugepagesFree(readFileSync('/proc/meminfo', 'utf8'));
      if (free < want) {
        fallback = `asked the kernel for ${want} 2 MiB hugepages, only ${free} are free (memory fragmented or short)`;
        hugeDir = null;
      }
    }
    if (hugeDir && plan.mountAt) {
      const dir = plan.mountAt;
      const made = !existsSync(dir);
      mkdirSync(dir, { recursive: true });
      try {
        execFileSync('mount', ['-t', 'hugetlbfs', '-o', `pagesize=2M`, 'nodev', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) {
        if (made) rmdirSync(dir);
        throw systemError(`mounting a hugetlbfs at ${dir} failed: ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e)}`);
      }
      undo.push(() => {
        try {
          execFileSync('umount', [dir], { stdio: 'ignore' });
        } catch {
          // Still mapped by a live EAL: detach now, the kernel frees it when unmapped.
          execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
        }
        if (made) rmSync(dir, { recursive: true, force: true });
      });
    }
  } catch (e) {
    for (const u of undo.reverse()) try { u(); } catch { /* best effort */ }
    throw e;
  }
  if (!hugeDir) {
    say(`DPDK runs without hugepages (--no-huge -m ${o.noHugeMemMb ?? 512}): ${fallback}. ` +
      'Expect about half the packet rate and no physical addresses for VF drivers; fix: as root, ' +
      `echo ${want} > ${NR_HUGEPAGES} and mount -t hugetlbfs -o pagesize=2M nodev DIR`);
  }
  const args = buildEalArgs({
    cores: o.cores, filePrefix, hugeDir, pci: o.pci, vdevs: o.vdevs, pmdDir: o.pmdDir, noHugeMemMb: o.noHugeMemMb,
  });
  const runtime = ealRuntimeDir(filePrefix, isRoot);
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    // Files of this prefix only (<prefix>map_N), should the EAL have died before unlinking.
    if (hugeDir) {
      try {
        for (const f of readdirSync(hugeDir)) if (f.startsWith(`${filePrefix}map_`)) rmSync(join(hugeDir, f), { force: true });
      } catch { /* gone with the mount */ }
    }
    rmSync(runtime, { recursive: true, force: true });
    for (const u of undo.reverse()) try { u(); } catch { /* best effort: keep undoing the rest */ }
  };
  return { args, hugeDir, filePrefix, warnings, cleanup };
}
