// Who holds a VF: the pod interface an allocation belongs to, how to check it, how to
// name it in a message, and whether it still exists (for garbage collection). Owners
// come from the CNI runtime or the operator and are validated here, once.
import * as fs from 'node:fs';
import { parseIfname } from '../sriov/pci.js';
import { invalid } from '../util/errors.js';

export interface Owner {
  namespace?: string; // pod namespace (K8S_POD_NAMESPACE)
  name?: string; // pod name (K8S_POD_NAME)
  uid?: string; // pod UID (K8S_POD_UID)
  containerId?: string; // CNI_CONTAINERID
  ifname?: string; // CNI_IFNAME, the interface name inside the pod
  netns?: string; // CNI_NETNS, a path; gone once the sandbox is torn down
  netnsId?: string; // that namespace's identity at the allocation (device:inode on nsfs), against a new one made at the same path
  pid?: number; // a process whose life bounds the allocation (operator tools, benchmarks)
  pidStart?: string; // that process's start time (field 22 of /proc/PID/stat), against PID reuse
  network?: string; // the CNI network (config name) the attachment belongs to; scopes CNI GC
}

export const OWNER_FIELDS = ['namespace', 'name', 'uid', 'containerId', 'ifname', 'netns', 'netnsId', 'pid', 'pidStart', 'network'] as const;
export type OwnerField = (typeof OWNER_FIELDS)[number];

/** What identifies an owner on its own; ifname, netns, netnsId and pidStart only narrow one down. */
export const IDENTIFYING = 'namespace+name, uid, containerId or pid';

// Kubernetes names and UIDs, CNI container IDs (the spec allows alphanumerics, _ . -).
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;
const UID_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;
const CONTAINER_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;

function str(where: string, field: string, v: unknown, re: RegExp, hint: string): string {
  if (typeof v !== 'string' || !re.test(v)) {
    throw invalid(`${where}: ${field} ${JSON.stringify(v)} is not valid: ${hint}`, { field, value: v });
  }
  return v;
}

/**
 * Checks each given field and returns a clean copy (unknown fields are refused). With
 * `partial`, an owner pattern for matching; otherwise it must identify someone.
 */
export function parseOwner(value: unknown, where = 'owner', partial = false): Owner {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`${where} must be an object with some of the fields ${OWNER_FIELDS.join(', ')}`);
  }
  const o: Owner = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    switch (k) {
      case 'namespace':
      case 'name':
        o[k] = str(where, k, v, NAME_RE, 'a Kubernetes name (letters, digits, . _ -, at most 253)');
        break;
      case 'uid':
        o.uid = str(where, k, v, UID_RE, 'a Kubernetes UID such as 3f2a9c1e-8d1b-4b0e-9f65-0c7e2a1d4b11');
        break;
      case 'containerId':
        o.containerId = str(where, k, v, CONTAINER_RE, 'letters, digits, _ . - (the CNI container ID)');
        break;
      case 'ifname':
        o.ifname = parseIfname(v, `${where}: ifname`);
        break;
      case 'netns':
        // ".." would let a recorded path name another file than it seems to (gc judges
        // the owner by that file), and no runtime passes one.
        if (typeof v !== 'string' || !v.startsWith('/') || v.split('/').includes('..') || v.includes('\0') || v.length > 4096) {
          throw invalid(`${where}: netns ${JSON.stringify(v)} is not valid: an absolute path without "..", such as /var/run/netns/cni-1234`, { field: k, value: v });
        }
        o.netns = v;
        break;
      case 'netnsId':
        o.netnsId = str(where, k, v, /^[0-9]{1,20}:[0-9]{1,20}(:[0-9]{1,24})?$/, 'DEVICE:INODE[:CTIME_NS] of the namespace file, as stat gives them');
        break;
      case 'pid':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4194304) {
          throw invalid(`${where}: pid ${JSON.stringify(v)} is not valid: a process ID, 1–4194304`, { field: k, value: v });
        }
        o.pid = v;
        break;
      case 'pidStart':
        o.pidStart = str(where, k, v, /^[0-9]{1,20}$/, 'clock ticks since boot, as in field 22 of /proc/PID/stat');
        break;
      case 'network':
        if (typeof v !== 'string' || v.length === 0 || v.length > 253 || /[\0\n]/.test(v)) {
          throw invalid(`${where}: network ${JSON.stringify(v)} is not valid: the CNI network name, 1–253 characters`, { field: k, value: v });
        }
        o.network = v;
        break;
      default:
        throw invalid(`${where}: unknown field ${JSON.stringify(k)}; an owner has ${OWNER_FIELDS.join(', ')}`, { field: k });
    }
  }
  if (!partial && !isIdentifying(o)) {
    throw invalid(`${where} does not identify anyone: give ${IDENTIFYING} (ifname, netns, netnsId and pidStart may be added)`, { owner: o });
  }
  return o;
}

export function isIdentifying(o: Partial<Owner>): boolean {
  return (o.namespace !== undefined && o.name !== undefined) || o.uid !== undefined || o.containerId !== undefined || o.pid !== undefined;
}

/** True when every field given in `pattern` equals the recorded one. */
export function ownerMatches(recorded: Owner, pattern: Partial<Owner>): boolean {
  for (const f of OWNER_FIELDS) {
    const want = pattern[f];
    if (want !== undefined && recorded[f] !== want) return false;
  }
  return true;
}

/** `pod default/web-0 (container 4f2a1b3c9d0e…, net1)` — what an operator recognises. */
export function describeOwner(o: Partial<Owner>): string {
  const head: string[] = [];
  if (o.namespace !== undefined || o.name !== undefined) head.push(`pod ${o.namespace ?? '?'}/${o.name ?? '?'}`);
  else if (o.uid !== undefined) head.push(`pod ${o.uid}`);
  else if (o.pid !== undefined) head.push(`process ${o.pid}`);
  const extra: string[] = [];
  if (o.containerId !== undefined) extra.push(`container ${o.containerId.length > 12 ? o.containerId.slice(0, 12) + '…' : o.containerId}`);
  if (o.ifname !== undefined) extra.push(o.ifname);
  if (o.pid !== undefined && head[0] !== `process ${o.pid}`) extra.push(`pid ${o.pid}`);
  if (head.length === 0 && extra.length === 0) {
    // A pattern of the fields that only narrow an owner down still names something.
    const rest = [o.netns !== undefined ? `netns ${o.netns}` : '', o.network !== undefined ? `network ${o.network}` : ''].filter(Boolean);
    return rest.length ? rest.join(', ') : 'nobody';
  }
  if (head.length === 0) return extra.join(', ');
  return extra.length ? `${head[0]} (${extra.join(', ')})` : head[0]!;
}

/** Start time of PID in clock ticks since boot (field 22 of /proc/PID/stat), or undefined
 *  if it is gone: exited, even if not yet reaped (a zombie, state Z or X, runs nothing). */
export function pidStart(pid: number): string | undefined {
  const f = statFields(pid);
  if (f?.[0] === 'Z' || f?.[0] === 'X') return undefined;
  return f?.[19];
}

/** Fields 3… of /proc/PID/stat; comm (field 2) may hold spaces and ')' so split after its last ')'. */
function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  return text.slice(close + 2).trim().split(' ');
}

/**
 * Whether the owner still exists: gone when its recorded netns path has vanished, or its
 * recorded process has exited (zombies included) or been replaced by another with the
 * same PID; unknown when neither a netns nor a pid was recorded, or they cannot be checked.
 */
const NSFS_MAGIC = 0x6e736673; // linux/magic.h

/** The identity of the network namespace at PATH (device:inode of its nsfs file), or
 *  undefined when PATH is no namespace (or cannot be read). The inode is the namespace's
 *  proc inum, which the kernel may hand to a namespace made once this one is freed (`ip
 *  netns del x; ip netns add x` can get the same one back), so a namespace made again
 *  at a path is told apart only when its inum differs. The ctime does not help: an nsfs
 *  inode no mount holds (/proc/PID/ns/net) is made anew, with a new ctime, at each look.
 *  Exact would be SO_NETNS_COOKIE, read from a socket made inside the namespace (setns:
 *  root and the addon). */
export function netnsIdOf(p: string): string | undefined {
  try {
    if (fs.statfsSync(p).type !== NSFS_MAGIC) return undefined;
    const st = fs.statSync(p, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Whether the namespace identity NOW (netnsIdOf) is the one RECORDED, on device and
 *  inode (a record with a third field, the ctime a build of 2026-12-06 kept, is judged
 *  on those two as well). */
export function sameNetns(recorded: string, now: string | undefined): boolean {
  if (now === undefined) return false;
  return recorded.split(':').slice(0, 2).join(':') === now.split(':').slice(0, 2).join(':');
}

/**
 * Whether the namespace at path P is the pod's own: a live namespace (nsfs; a path left
 * as a plain file by a half-done cleanup is none), never this process's (the host's,
 * where VF netdevs come home: ADD refuses it as a pod's), and the
 * one RECORDED at the allocation when that is known (a sandbox made since at the same
 * path, or a /proc/PID/ns/net whose PID is another process's now, is another's). What a
 * put-back may take a netdev out of: in any other namespace, a netdev under the pod's
 * interface name is someone else's.
 */
export function podNetns(p: string, recorded: string | undefined): boolean {
  const now = netnsIdOf(p);
  if (now === undefined) return false;
  const host = netnsIdOf('/proc/self/ns/net'); // where VF netdevs come home to
  if (host !== undefined && sameNetns(host, now)) return false;
  return recorded === undefined || sameNetns(recorded, now);
}

export function ownerAlive(o: Owner): 'alive' | 'gone' | 'unknown' {
  const verdicts: ('alive' | 'gone' | 'unknown')[] = [];
  if (o.netns !== undefined) {
    try {
      // A network namespace is a file on nsfs (a bind mount, or /proc/PID/ns/net): the
      // path left behind once it is unmounted (ip netns del half-done, a runtime's
      // cleanup) is a plain file, and the sandbox is gone.
      // A namespace made since at the same path (`ip netns del x; ip netns add x`, a
      // runtime reusing a name) is another sandbox: the owner's is gone.
      const ns = fs.statfsSync(o.netns).type === NSFS_MAGIC;
      verdicts.push(!ns ? 'gone' : o.netnsId !== undefined && !sameNetns(o.netnsId, netnsIdOf(o.netns)) ? 'gone' : 'alive');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // EACCES and the like say nothing about the sandbox; only absence is evidence.
      verdicts.push(code === 'ENOENT' || code === 'ENOTDIR' ? 'gone' : 'unknown');
    }
  }
  if (o.pid !== undefined) {
    const f = statFields(o.pid);
    if (!f) verdicts.push('gone');
    else if (f[0] === 'Z' || f[0] === 'X') verdicts.push('gone');
    else if (o.pidStart !== undefined && f[19] !== o.pidStart) verdicts.push('gone');
    else verdicts.push('alive');
  }
  if (verdicts.includes('gone')) return 'gone';
  if (verdicts.includes('alive')) return 'alive';
  return 'unknown';
}
