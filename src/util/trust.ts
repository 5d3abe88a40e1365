// Whether a path is root's alone: for paths that come from someone else's config (a
// network config, which a namespace's user writes, acted on by the plugin as root) and
// trees others will trust (a simulated NIC's sysfs). The rule, as OpenSSH's and sudo's
// checks of their own files: every directory on the way, and the entry itself, belong to
// root (or this process's user) and no one else may write them (group root aside); a
// directory others may write (/tmp) is passed only when its sticky bit is set and the
// entry in it exists and is root's, so nobody else made it and nobody else can replace
// it; a symlink is followed where root made it, and where it leads is held to the rule.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type EntryKind = 'directory' | 'regular file' | 'socket';

const euid = process.geteuid?.() ?? 0;
const ownersOk = (st: fs.Stats) => st.uid === 0 || st.uid === euid;
/** Writable by someone other than the owner: any user, or a group other than root's. */
const othersWrite = (st: fs.Stats) => (st.mode & 0o002) !== 0 || ((st.mode & 0o020) !== 0 && st.gid !== 0);
const sticky = (st: fs.Stats) => (st.mode & fs.constants.S_IFMT) === fs.constants.S_IFDIR && (st.mode & 0o1000) !== 0;
const modeOf = (st: fs.Stats) => (st.mode & 0o7777).toString(8).padStart(4, '0');

function isKind(st: fs.Stats, kind: EntryKind): boolean {
  if (kind === 'directory') return st.isDirectory();
  if (kind === 'regular file') return st.isFile();
  return st.isSocket();
}

/**
 * Why `p` is not a path only root controls, or null when it is. With `missingOk`, the
 * path (or its tail) may not exist yet — the plugin makes it — and then the part that
 * exists is checked, and the first missing entry must not be in a directory others write.
 */
export function whyUntrusted(p: string, kind: EntryKind, missingOk = false, hops = 0): string | null {
  if (hops > 16) return `${p}: too many levels of symbolic links`;
  const parts = path.normalize(p).split('/').filter(Boolean);
  // /proc's links (/proc/PID/root, /proc/PID/cwd, /proc/self/fd/N) lead into another
  // process's mount namespace or to an open file, not where their text says: a path
  // through them, or a symlink that leads there, is never root's alone (helper-70).
  if (parts[0] === 'proc') return `${p} goes through /proc, whose links lead into other processes' views of the filesystem`;
  let cur = '/';
  let st = fs.lstatSync('/');
  if (!ownersOk(st)) return `/ belongs to uid ${st.uid}`;
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(cur, parts[i]!);
    let nst: fs.Stats;
    try {
      nst = fs.lstatSync(next);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && missingOk) {
        return othersWrite(st) ? `${next} does not exist and ${cur} may be written by others (mode ${modeOf(st)}): someone else could make it first` : null;
      }
      return `${next}: ${code ?? (e as Error).message}`;
    }
    if (!ownersOk(nst)) return `${next} belongs to uid ${nst.uid}, not root`;
    if (nst.isSymbolicLink()) {
      const target = path.resolve(cur, fs.readlinkSync(next));
      return whyUntrusted(path.join(target, ...parts.slice(i + 1)), kind, missingOk, hops + 1);
    }
    const last = i === parts.length - 1;
    if (othersWrite(nst) && (last || !sticky(nst))) return `${next} may be written by others than root (mode ${modeOf(nst)})`;
    if (!last && !nst.isDirectory()) return `${next} is not a directory`;
    cur = next;
    st = nst;
  }
  if (parts.length === 0 && kind !== 'directory') return '/ is a directory';
  if (!isKind(st, kind)) return `${cur} is not a ${kind}`;
  return null;
}
