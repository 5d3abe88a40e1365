// Prepares what DPDK's EAL needs before vfp_dpdk__init: 2 MiB hugepages reserved, a
// hugetlbfs mounted (our own under the state dir when the host has none), and the EAL
// argument list. Without hugepages it falls back to --no-huge with a warning. The
// returned cleanup() undoes exactly what was done here and removes the EAL runtime dir.
// With a journal file, what is about to change is written there first, so a process
// killed before its cleanup (SIGKILL, the OOM killer) is undone by recoverDpdkEnv at the
// next start or by `vfplane dataplane unclaim`, instead of being taken for the host's.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as z from '../util/z.js';
import { invalid, systemError } from '../util/errors.js';
import { makeDirs } from '../util/fs.js';

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
  /** Where what is said without a warning goes (default: nowhere). */
  info?: (msg: string) => void;
  /** A file to record what changes before it changes (see recoverDpdkEnv); removed by
   *  cleanup. The caller holds a lock that makes it the file's only writer. */
  journal?: string;
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
  /** Of those, free (HugePages_Free); all of them when not given. */
  free?: number;
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
  /** The fallback is for want of root (which the advice then names). */
  needsRoot?: true;
}

/** Decides what to change, from the current state only (no side effects). */
export function planHugepages(i: HugePlanInput): HugePlan {
  if (i.want <= 0) return { hugeDir: null, fallback: 'hugepages: 0 asked' };
  const existing = i.mounts.find((m) => m.pagesizeKb === HUGEPAGE_KB);
  // Pages others hold (another DPDK process, files in a hugetlbfs) are not this run's:
  // it raises the count by what it lacks of free ones.
  const free = i.free ?? i.nrHugepages;
  const raiseTo = free < i.want ? i.nrHugepages + (i.want - free) : undefined;
  if (!i.isRoot && (raiseTo !== undefined || !existing)) {
    const why = raiseTo !== undefined
      ? `${i.nrHugepages} 2 MiB hugepages reserved, ${free} of them free, ${i.want} wanted, and not root to raise ${NR_HUGEPAGES}`
      : 'no hugetlbfs of 2 MiB pages is mounted and not root to mount one';
    return { hugeDir: null, fallback: why, needsRoot: true };
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
  const say = (m: string) => { warnings.push(m); warn(m); };

  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const nr = Number(readFileSync(NR_HUGEPAGES, 'utf8').trim());
  const freeNow = parseHugepagesFree(meminfo);
  // More than the host has: the kernel would take what it can (its page cache, every
  // free page) before giving up, under the pods' feet. Only what is to be reserved
  // counts: pages reserved at boot (a DPDK node's way) are no new demand.
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  const more = Math.max(0, want - freeNow);
  if (memKb && more * HUGEPAGE_KB > memKb / 2) {
    const gib = (kb: number) => `${(kb / 1048576).toFixed(1)} GiB`;
    throw invalid(`dpdk.hugepages ${want} would reserve ${more} more 2 MiB pages (${gib(more * HUGEPAGE_KB)}; ${freeNow} of the ${nr} reserved are free), more than half of this host's memory (${gib(memKb)}); ask for fewer (the default, 256, is 512 MiB), or reserve them at boot (hugepages= on the kernel command line)`);
  }
  const plan = planHugepages({
    want, nrHugepages: nr, free: freeNow, isRoot, stateDir: o.stateDir,
    mounts: parseHugetlbMounts(readFileSync('/proc/mounts', 'utf8')),
  });
  let hugeDir = plan.hugeDir;
  let fallback = plan.fallback;
  // The arguments are checked before the host changes (pages reserved, a mount made).
  buildEalArgs({ cores: o.cores, filePrefix, hugeDir, pci: o.pci, vdevs: o.vdevs, pmdDir: o.pmdDir, noHugeMemMb: o.noHugeMemMb });
  // What may change, before it does: pages raised, a mount made, the EAL's runtime dir
  // (made even without hugepages). Its undo (undoDpdkEnv) checks what did: the same
  // record serves cleanup, a failure half-way, and a later start after a kill. A failed
  // journal write stops here, with nothing changed.
  const record: DpdkEnvRecord = {
    pid: process.pid, filePrefix, runtimeDir: ealRuntimeDir(filePrefix, isRoot), hugeDir,
    nrHugepages: nr, raisedTo: hugeDir && plan.raiseTo !== undefined ? plan.raiseTo : null,
    mount: hugeDir && plan.mountAt ? { dir: plan.mountAt, made: !existsSync(plan.mountAt) } : null,
    since: new Date().toISOString(),
  };
  if (o.journal) writeEnvJournal(o.journal, record);
  const undo = () => {
    undoDpdkEnv(record, 'this run');
    if (o.journal) rmSync(o.journal, { force: true }); // last: an undo cut short leaves the record
  };
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
      // The kernel reserves what it can and sets nr_hugepages to that: the record says
      // what it is now, so that the undo (here, at the stop, or after a kill) finds its
      // own value there and gives them back.
      const got = Number(readFileSync(NR_HUGEPAGES, 'utf8').trim());
      if (got !== plan.raiseTo) {
        record.raisedTo = got;
        if (o.journal) writeEnvJournal(o.journal, record);
      }
      const free = parseHugepagesFree(readFileSync('/proc/meminfo', 'utf8'));
      if (free < want) {
        // Not enough for this run: what it did get is the host's memory again, now.
        undoDpdkEnv(record, 'this run');
        record.raisedTo = null;
        if (o.journal) writeEnvJournal(o.journal, record);
        fallback = `the kernel could reserve only ${got - nr} of the ${plan.raiseTo - nr} more 2 MiB hugepages asked (${free} free of the ${want} wanted; memory short or fragmented), and they were given back. ` +
          `Ask for fewer (dpdk.hugepages: ${want} now), or reserve them at boot, before memory fragments (hugepages=${want} on the kernel command line)`;
        hugeDir = null;
      }
    }
    if (hugeDir && plan.mountAt) {
      const dir = plan.mountAt;
      const made = !existsSync(dir);
      makeDirs(dir);
      try {
        execFileSync('mount', ['-t', 'hugetlbfs', '-o', `pagesize=2M`, 'nodev', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) {
        if (made) rmdirSync(dir);
        throw systemError(`mounting a hugetlbfs at ${dir} failed: ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e)}`);
      }
    }
  } catch (e) {
    undo();
    throw e;
  }
  if (!hugeDir && want === 0) {
    // Asked for: said, not warned of.
    (o.info ?? (() => {}))(`DPDK runs without hugepages (--no-huge -m ${o.noHugeMemMb ?? 512}), as dpdk.hugepages: 0 asks: about half the packet rate, and no physical addresses for VF drivers (a vdev uplink only)`);
  } else if (!hugeDir) {
    say(`DPDK runs without hugepages (--no-huge -m ${o.noHugeMemMb ?? 512}): ${fallback}. ` +
      'Expect about half the packet rate and no physical addresses for VF drivers' +
      (plan.needsRoot ? `; fix: as root, echo ${want} > ${NR_HUGEPAGES} and mount -t hugetlbfs -o pagesize=2M nodev DIR` : ''));
  }
  const args = buildEalArgs({
    cores: o.cores, filePrefix, hugeDir, pci: o.pci, vdevs: o.vdevs, pmdDir: o.pmdDir, noHugeMemMb: o.noHugeMemMb,
  });
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    undo();
  };
  return { args, hugeDir, filePrefix, warnings, cleanup };
}

const envRecord = z.object({
  pid: z.number().int(),
  filePrefix: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  runtimeDir: z.string().startsWith('/'),
  /** The hugetlbfs the EAL was given (the host's or ours), for files of its prefix. */
  hugeDir: z.string().startsWith('/').nullable(),
  /** nr_hugepages before, and what it was raised to (null: not raised). */
  nrHugepages: z.number().int().nonnegative(),
  raisedTo: z.number().int().positive().nullable(),
  /** Our hugetlbfs mount, and whether its directory was made for it. */
  mount: z.object({ dir: z.string().startsWith('/'), made: z.boolean() }).nullable(),
  since: z.string(),
});
export type DpdkEnvRecord = z.infer<typeof envRecord>;

/** The journal file of a data plane's DPDK host changes, in its state directory. */
export const dpdkEnvJournal = (stateDir: string, node: string): string => join(stateDir, `dpdk-env-${node}.json`);

function writeEnvJournal(path: string, r: DpdkEnvRecord): void {
  try {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(r, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw systemError(`cannot write ${path} (${code}): the data plane records there the hugepages and mount it is about to change, to give them back should it be killed; make the state directory writable (and not full)`);
  }
}

/** The record a process killed before its cleanup left in `journal`: null when none;
 *  `{ unreadable }` when the file cannot be used. */
export function readDpdkEnvJournal(journal: string): DpdkEnvRecord | { unreadable: string } | null {
  if (!existsSync(journal)) return null;
  try {
    return envRecord.parse(JSON.parse(readFileSync(journal, 'utf8')));
  } catch (e) {
    return { unreadable: `${journal}: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** What a left record still holds on this host, in words (for doctor), or [] when
 *  nothing of it is left. */
export function dpdkLeftovers(r: DpdkEnvRecord): string[] {
  const out: string[] = [];
  const nr = Number(readFileSync(NR_HUGEPAGES, 'utf8').trim());
  if (r.raisedTo !== null && nr === r.raisedTo && nr !== r.nrHugepages) out.push(`${r.raisedTo - r.nrHugepages} hugepages reserved (nr_hugepages ${r.nrHugepages} → ${r.raisedTo})`);
  if (r.mount && isHugetlbMounted(r.mount.dir)) out.push(`a hugetlbfs mounted at ${r.mount.dir}`);
  if (existsSync(r.runtimeDir)) out.push(`the EAL runtime directory ${r.runtimeDir}`);
  return out;
}

const isHugetlbMounted = (dir: string): boolean => parseHugetlbMounts(readFileSync('/proc/mounts', 'utf8')).some((m) => m.dir === dir);

/** Undoes what a DPDK process recorded in `journal` and did not undo itself (it was
 *  killed): files of its prefix, its EAL runtime dir, our hugetlbfs mount, and the
 *  hugepages it reserved (only while nr_hugepages is still what it set: a value changed
 *  since is someone else's). Removes the journal. The caller holds the lock that
 *  process held (so it is dead). Returns what was done, for the log. */
export function recoverDpdkEnv(journal: string): string[] {
  const r = readDpdkEnvJournal(journal);
  if (!r) return [];
  if ('unreadable' in r) {
    rmSync(journal, { force: true });
    return [`removed the unreadable DPDK journal ${r.unreadable}: hugepages or a mount a killed run left stay as they are`];
  }
  const out = undoDpdkEnv(r, `a DPDK run (pid ${r.pid}, since ${r.since}) that did not stop cleanly`);
  rmSync(journal, { force: true });
  return out;
}

/** Undoes what a record names and is still there, and says what it did (WHO names the
 *  run): files of its prefix (should the EAL have died before unlinking them), its EAL
 *  runtime dir, our hugetlbfs mount (detached lazily if still mapped), and the hugepages
 *  it reserved, only while nr_hugepages is still what it set (a value changed since is
 *  someone else's; the kernel keeps pages still in use). Failures are said, not thrown. */
function undoDpdkEnv(r: DpdkEnvRecord, who: string): string[] {
  const out: string[] = [];
  if (r.hugeDir && existsSync(r.hugeDir)) {
    try {
      for (const f of readdirSync(r.hugeDir)) if (f.startsWith(`${r.filePrefix}map_`)) rmSync(join(r.hugeDir, f), { force: true });
    } catch { /* not ours to list */ }
  }
  if (existsSync(r.runtimeDir)) {
    try {
      rmSync(r.runtimeDir, { recursive: true, force: true });
      out.push(`removed the EAL runtime directory ${r.runtimeDir} of ${who}`);
      // And /var/run/dpdk once no other prefix is in it (the EAL makes it again).
      try {
        rmdirSync(dirname(r.runtimeDir));
      } catch { /* another DPDK process's prefixes are there */ }
    } catch (e) {
      out.push(`could not remove the EAL runtime directory ${r.runtimeDir} of ${who} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  // Failures here are said, not thrown: the record goes either way (what it names stays
  // as it is, as without a journal), and the start goes on.
  if (r.mount && isHugetlbMounted(r.mount.dir)) {
    try {
      try {
        execFileSync('umount', [r.mount.dir], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', r.mount.dir], { stdio: 'ignore' }); // still mapped by someone: detach
      }
      if (r.mount.made) rmSync(r.mount.dir, { recursive: true, force: true });
      out.push(`unmounted the hugetlbfs at ${r.mount.dir} that ${who} mounted`);
    } catch (e) {
      out.push(`could not unmount the hugetlbfs at ${r.mount.dir} that ${who} mounted (${(e as Error).message.split('\n')[0]}); as root: umount ${r.mount.dir}`);
    }
  }
  if (r.raisedTo !== null) {
    const nr = Number(readFileSync(NR_HUGEPAGES, 'utf8').trim());
    if (nr === r.raisedTo && nr !== r.nrHugepages) {
      try {
        writeFileSync(NR_HUGEPAGES, String(r.nrHugepages));
        out.push(`gave back the hugepages ${who} reserved (nr_hugepages ${r.raisedTo} → ${r.nrHugepages})`);
      } catch (e) {
        out.push(`could not give back the hugepages ${who} reserved (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); as root: echo ${r.nrHugepages} > ${NR_HUGEPAGES}`);
      }
    } else if (nr !== r.nrHugepages) {
      out.push(`left nr_hugepages at ${nr}: ${who} raised it from ${r.nrHugepages} to ${r.raisedTo}, and it has changed since`);
    }
  }
  return out;
}
