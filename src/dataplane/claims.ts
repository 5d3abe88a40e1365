// The kernel netdevs the data plane takes over (its uplink, the VFs' representors): what
// it changes on them, and what it gives back. The original values go to a journal in the
// state directory *before* anything changes, and leave it when they are given back. A
// daemon killed while it holds netdevs (SIGKILL, the OOM killer, a crash) therefore does
// not lose them: its next start claims them again with the values recorded by the first
// claim (not the ones it finds, which are its own changes), and gives back the netdevs it
// no longer uses (an uplink changed in the config, an attachment dropped meanwhile).
import { netnsId } from '../net/ip.js';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from '../util/z.js';
import { conflict, systemError } from '../util/errors.js';
import { runDir } from '../util/run-dir.js';
import { tryLock } from '../util/lock.js';
import { DataPlane } from './dp.js';
import { dpdkEnvJournal } from './dpdk-env.js';
import { readSysctl } from '../net/ip.js';
import { runSync } from '../util/spawn.js';
import { RX_AGG_ALL, linkAddrs, netRun, rxAggNames, rxAggregation, type NetOp } from '../net/netops.js';

const recordSchema = z.object({
  ifname: z.string(),
  netns: z.string().optional(),
  ifindex: z.number().int(), // the netdev's at the claim: a netdev of that name made since is another one
  forwarding: z.string().nullable(),
  disableIpv6: z.string().nullable(),
  multicast: z.string().nullable(), // a group joined on the link for the data plane
  rxAgg: z.number().int(), // receive aggregation features (RX_AGG bits) that were on, to switch back on
  // A DPDK vdev's netdev only (its PMD sets promiscuous mode by SIOCSIFFLAGS, which
  // outlives a killed process): whether it was promiscuous before the claim.
  promisc: z.boolean().optional(),
  // Whether it was administratively up before the claim (which brings it up): one that
  // was down goes down again. Absent in journals of older versions: left up.
  up: z.boolean().optional(),
  // Its MTU before the data plane raised it to its pod's (a representor below the pod
  // interface's MTU drops the pod's larger frames): given back. Absent: not changed.
  mtu: z.number().int().optional(),
  since: z.string(), // when it was first claimed (ISO time), for the log
});
export type ClaimRecord = z.infer<typeof recordSchema>;

/** What the daemon changed on a netdev it took over, to give it back. */
export interface Claim extends ClaimRecord {
  note?: string; // what the claim changed or could not, for the log
}

const key = (ifname: string, netns?: string) => `${netns ?? ''}\n${ifname}`;

/** The lock a running data plane holds on its node's state (`dataplane-<node>.lock` in
 *  the state directory), from before it changes anything until it has given everything
 *  back: a second daemon for the same node and state directory is refused before it
 *  touches a netdev (it would otherwise claim the first one's netdevs, fail at the
 *  control socket, and give them back under the first one's feet), and `vfplane
 *  dataplane unclaim` knows whether the journal's owner still runs. The kernel drops a
 *  dead process's lock. When another process holds it: its pid (read from the file,
 *  when known). */
export function tryNodeLock(stateDir: string, node: string, waitMs = 0): { release(): void } | { heldBy: number | null } {
  const l = tryLock(join(stateDir, `dataplane-${node}.lock`), waitMs, 'the state directory');
  return 'heldBy' in l ? { heldBy: l.heldBy } : l;
}

/** Where the netdev locks are (runDir): one directory for the host, not a state
 *  directory, so that data planes of different nodes or state directories see each
 *  other's. */
export { runDir };

/** The lock a data plane holds on each netdev it claims, for as long as it holds it:
 *  `<runDir>/netdev-<netns inode>-<ifindex>.lock` (the netdev itself, whatever its name
 *  and whichever path names its namespace). The node lock covers one node and state
 *  directory only; two data planes on one netdev would both answer ARP for their VTEPs
 *  and each take the other's changes (disable_ipv6=1…) for the settings to give back. */
function tryNetdevLock(ifname: string, ifindex: number, netns: string | undefined, about: string): { release(): void } | { heldBy: number | null; about: string } {
  let ino: string;
  try {
    ino = netnsId(netns).split(':')[1]!;
  } catch (e) {
    throw systemError(`cannot read the network namespace ${netns ?? 'of this process'} of ${ifname}: ${(e as Error).message}; does it (still) exist?`);
  }
  const dir = runDir();
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw systemError(`cannot make ${dir}, where data planes lock the netdevs they take (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); run as root, or set VFPLANE_RUN_DIR to a directory every data plane of this host uses`);
  }
  return tryLock(join(dir, `netdev-${ino}-${ifindex}.lock`), 0, dir, about, true);
}

/** Removes the netdev lock files nobody holds. A data plane killed while it held netdevs
 *  leaves its files (the kernel drops the locks, not the files), and one whose netdev is
 *  gone would stay until reboot. Each is taken and removed as a holder removes it when it
 *  lets go, so a data plane taking it meanwhile is not fooled (tryLock checks that its
 *  file is still the one at the path). Returns how many went. */
export function sweepNetdevLocks(): number {
  const dir = runDir();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0; // none made yet
  }
  let n = 0;
  for (const f of names) {
    if (!/^netdev-\d+-\d+\.lock$/.test(f)) continue;
    try {
      const l = tryLock(join(dir, f), 0, dir, '', true);
      if ('heldBy' in l) continue; // a live data plane's
      l.release();
      n++;
    } catch {
      // not ours to judge (permissions): left as it is
    }
  }
  return n;
}

/** The refusal of a netdev another data plane (or this one) holds. */
function heldElsewhere(ifname: string, netns: string | undefined, h: { heldBy: number | null; about: string }): Error {
  const where = `netdev ${ifname}${netns ? ` in ${netns}` : ''}`;
  if (h.heldBy === process.pid) return conflict(`${where} is already taken by this data plane (as its uplink or an attached representor); one netdev serves once`);
  const who = [h.heldBy ? `pid ${h.heldBy}` : null, h.about || null].filter(Boolean).join(', ');
  return conflict(`${where} is taken by another data plane${who ? ` (${who})` : ''}: two on one netdev would both answer for it and each take the other's changes for its settings; stop that one first, or give this one another netdev`);
}

/** Netdev locks of the claims this process holds (not in the record: not journaled). */
const netdevLocks = new WeakMap<ClaimRecord, { release(): void }>();

/** tryNodeLock, or the refusal a second daemon gets. It waits a moment first: `vfplane
 *  doctor` and `dataplane unclaim` take the lock briefly to see whether a data plane
 *  runs, and a daemon starting just then must not take them for one. */
export function nodeLock(stateDir: string, node: string): { release(): void } {
  const l = tryNodeLock(stateDir, node, 2000);
  if ('heldBy' in l) {
    throw conflict(`a data plane for node ${node} already runs with the state directory ${stateDir}${l.heldBy ? ` (pid ${l.heldBy})` : ''}; stop it first, or give this one another node name or stateDir`);
  }
  return l;
}

/** The claims journals in a state directory (or node's alone), each with whether its
 *  data plane runs: `heldBy` (its pid, or null when unknown) when it does, else `lock`,
 *  the node lock taken for the caller (who releases it; while held, no data plane of
 *  that node can start). What `vfplane dataplane unclaim` and `vfplane doctor` read. */
export function stateJournals(stateDir: string, node?: string): { node: string; journal: ClaimJournal; dpdkEnv: string; running: boolean; heldBy: number | null; lock: { release(): void } | null }[] {
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch {
    return [];
  }
  // A node's netdevs (claims-) and, for a DPDK run, its hugepages and mount (dpdk-env-).
  const nodes = [...new Set(names.map((f) => /^(?:claims|dpdk-env)-(.+)\.json$/.exec(f)?.[1]))].filter((n): n is string => !!n && (node === undefined || n === node)).sort();
  const out: ReturnType<typeof stateJournals> = [];
  try {
    for (const n of nodes) {
      const l = tryNodeLock(stateDir, n);
      const running = 'heldBy' in l;
      out.push({ node: n, journal: new ClaimJournal(stateDir, n), dpdkEnv: dpdkEnvJournal(stateDir, n), running, heldBy: running ? l.heldBy : null, lock: running ? null : l });
    }
  } catch (e) {
    for (const x of out) x.lock?.release();
    throw e;
  }
  return out;
}

/** The claims journal of one daemon (one node name) in its state directory. Written with
 *  a rename, so a kill leaves the old list or the new one; not fsynced: a machine that
 *  loses power also loses the netdev settings the journal would restore. */
export class ClaimJournal {
  private readonly path: string;
  /** Who holds this journal's netdevs, as their locks say it. */
  readonly about: string;
  private readonly recs = new Map<string, ClaimRecord>();
  /** A journal that could not be read (the reason), or null. It is then started afresh. */
  readonly unreadable: string | null = null;

  constructor(stateDir: string, node: string) {
    this.path = join(stateDir, `claims-${node}.json`);
    this.about = `node ${node}, state directory ${stateDir}`;
    if (!existsSync(this.path)) return;
    try {
      const list = z.array(recordSchema).parse(JSON.parse(readFileSync(this.path, 'utf8')));
      for (const r of list) this.recs.set(key(r.ifname, r.netns), r);
    } catch (e) {
      this.unreadable = `${this.path}: ${(e as Error).message.split('\n')[0]}`;
    }
  }

  /** Copies the journal aside (`.unrestored-<time>`) before a start writes over it: an
   *  unreadable one is the only record of the settings its netdevs had. The copy's path,
   *  or why there is none. */
  keepAside(): string {
    const to = `${this.path}.unrestored-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      copyFileSync(this.path, to);
      return to;
    } catch (e) {
      return `(not copied: ${(e as Error).message})`;
    }
  }

  find(ifname: string, netns?: string): ClaimRecord | undefined {
    return this.recs.get(key(ifname, netns));
  }

  list(): ClaimRecord[] {
    return [...this.recs.values()];
  }

  /** Records a claim; throws (and records nothing) when the file cannot be written, so
   *  the caller changes nothing either. */
  put(r: ClaimRecord): void {
    const { ifname, netns, ifindex, forwarding, disableIpv6, multicast, rxAgg, promisc, up, mtu, since } = r;
    const k = key(ifname, netns);
    const before = this.recs.get(k);
    this.recs.set(k, { ifname, ...(netns ? { netns } : {}), ifindex, forwarding, disableIpv6, multicast, rxAgg, ...(promisc !== undefined ? { promisc } : {}), ...(up !== undefined ? { up } : {}), ...(mtu !== undefined ? { mtu } : {}), since });
    try {
      this.save();
    } catch (e) {
      if (before) this.recs.set(k, before);
      else this.recs.delete(k);
      throw e;
    }
  }

  /** Forgets a netdev given back. A file that cannot be written keeps it: the next start
   *  gives it back once more (the same values), which is harmless. */
  drop(r: { ifname: string; netns?: string }): void {
    if (!this.recs.delete(key(r.ifname, r.netns))) return;
    try {
      this.save();
    } catch {
      // see above
    }
  }

  private save(): void {
    try {
      if (!this.recs.size) return rmSync(this.path, { force: true }); // nothing held: no journal
      const tmp = `${this.path}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.list(), null, 2) + '\n', { mode: 0o600 });
      renameSync(tmp, this.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw systemError(`cannot write the claims journal ${this.path} (${code}): the data plane records there what it changes on a netdev before changing it; make the state directory writable (and not full)`);
    }
  }
}

/** (Callers first read the link with linkAddrs and refuse a netdev the host uses.)
 *  A netdev the data plane forwards for must not be forwarded by the kernel too: no IPv4
 *  forwarding off it (so the kernel never routes a pod's frame elsewhere) and no IPv6 (no
 *  link-local chatter into the pod), and no receive aggregation. It is brought up. What
 *  it was goes to the journal first, unless the journal already holds this very netdev
 *  (same ifindex) from a run that did not give it back: then that record stands.
 *  With `multicast`, the link also receives that group: an IPv6 uplink's solicited-node
 *  group, which the kernel no longer joins for it (its IPv6 is off, and the data plane,
 *  not the kernel, answers for the VTEP). */
/** Throws at once, not as a rejection, when another data plane holds the netdev: nothing
 *  is taken then and nothing changed, and a caller that goes on to change the netdev
 *  while the claim settles (an attach: its MTU, its port) knows before it does. When it
 *  returns, the journal already has the record (claimLocked writes it before its first
 *  pause). */
export function claimNetdev(journal: ClaimJournal, ifname: string, ifindex: number, netns?: string, multicast?: string, opts: { promisc?: boolean; wasUp?: boolean; wasMtu?: number } = {}): Promise<Claim> {
  const ns = netns ?? null;
  const notes: string[] = [];
  // First of all: no other data plane holds it (whatever its node and state directory).
  const lock = tryNetdevLock(ifname, ifindex, netns, journal.about);
  if ('heldBy' in lock) throw heldElsewhere(ifname, netns, lock);
  return claimLocked(journal, ifname, ifindex, netns, multicast, ns, notes, lock, opts).catch((e: unknown) => {
    lock.release();
    throw e;
  });
}

/** IFF_PROMISC of a netdev in this process's namespace (a user's setting or another
 *  holder's count: the flags do not tell them apart), or undefined when unreadable. */
function promiscuous(ifname: string): boolean | undefined {
  try {
    return (Number.parseInt(readFileSync(`/sys/class/net/${ifname}/flags`, 'utf8'), 16) & 0x100) !== 0;
  } catch {
    return undefined;
  }
}

async function claimLocked(journal: ClaimJournal, ifname: string, ifindex: number, netns: string | undefined, multicast: string | undefined, ns: string | null, notes: string[], lock: { release(): void }, opts: { promisc?: boolean; wasUp?: boolean; wasMtu?: number }): Promise<Claim> {
  const prev = journal.find(ifname, netns);
  let claim: Claim;
  if (prev && prev.ifindex === ifindex) {
    claim = { ...prev, multicast: multicast ?? null, ...(prev.mtu === undefined && opts.wasMtu !== undefined ? { mtu: opts.wasMtu } : {}) };
    notes.push(`held since ${prev.since} by a run that did not give it back: the settings recorded then are the ones given back`);
    if (prev.multicast !== claim.multicast || prev.mtu !== claim.mtu) journal.put(claim);
  } else {
    // In the journal before anything is changed, and before this function's first pause:
    // a caller that goes on to change the netdev (raise its MTU, open a port on it) once
    // claimNetdev is called has the record there if the process is killed meanwhile
    // (helper-74: with attaches restored 16 at once, kills left XDP programs and raised
    // MTUs that no journal named). Receive aggregation is read next, and recorded before
    // it is switched off.
    claim = {
      ifname, ...(netns ? { netns } : {}), ifindex,
      forwarding: readSysctl(ns, `net/ipv4/conf/${ifname}/forwarding`),
      disableIpv6: readSysctl(ns, `net/ipv6/conf/${ifname}/disable_ipv6`),
      multicast: multicast ?? null,
      rxAgg: 0,
      ...(opts.promisc && !netns ? { promisc: promiscuous(ifname) } : {}),
      ...(opts.wasUp !== undefined ? { up: opts.wasUp } : {}),
      ...(opts.wasMtu !== undefined ? { mtu: opts.wasMtu } : {}),
      since: new Date().toISOString(),
    };
    if (claim.promisc === undefined) delete claim.promisc;
    journal.put(claim);
    let rxAgg = 0;
    try {
      const r = await rxAggregation(ns, ifname);
      rxAgg = r.agg & ~r.fixed;
    } catch (e) {
      notes.push(`receive aggregation left as it is: ${(e as Error).message}`);
    }
    if (rxAgg) {
      try {
        journal.put({ ...claim, rxAgg });
        claim = { ...claim, rxAgg };
      } catch (e) {
        journal.drop(claim); // nothing was changed: nothing to give back
        throw e;
      }
    }
  }
  // Receive aggregation off: the data plane forwards frames as they arrive, and a frame
  // GRO (or the NIC's LRO / hardware GRO) merged is up to 64 KiB, which no AF_PACKET
  // ring slot (MTU-sized) holds: the port would drop every merged TCP burst as
  // truncated. Real NICs and switchdev representors have GRO on by default.
  const agg = claim.rxAgg
    ? rxAggregation(ns, ifname, { clear: RX_AGG_ALL }).then(
      () => { notes.push(`switched ${rxAggNames(claim.rxAgg).join(', ')} off (merged frames would not fit the data plane's buffers); back on when released`); },
      (e: Error) => { notes.push(`receive aggregation left on: ${e.message}`); },
    )
    : null;
  try {
    await Promise.all([agg, netRun(ns, [
      { op: 'sysctl', path: `net/ipv4/conf/${ifname}/forwarding`, value: '0' },
      { op: 'sysctl', path: `net/ipv6/conf/${ifname}/disable_ipv6`, value: '1', optional: true }, // IPv6 may be off
      ...(multicast ? [{ op: 'maddr' as const, name: ifname, mac: multicast, join: true }] : []),
      { op: 'set', name: ifname, up: true },
    ])]);
  } catch (e) {
    // All or nothing: what did change goes back, and the journal forgets the netdev.
    await agg; // settled either way (its failure is a note)
    await releaseNetdev(journal, claim);
    throw e;
  }
  if (notes.length) claim.note = notes.join('; ');
  netdevLocks.set(claim, lock);
  return claim;
}

/** What giving a netdev back will restore, for status: only what the claim changed. */
export function givesBack(r: ClaimRecord): string[] {
  const out: string[] = [];
  if (r.forwarding !== null && r.forwarding !== '0') out.push(`IPv4 forwarding ${r.forwarding}`);
  if (r.disableIpv6 === '0') out.push('IPv6 on');
  if (r.rxAgg) out.push(`${rxAggNames(r.rxAgg).join(', ')} on`);
  if (r.multicast) out.push(`leaves group ${r.multicast}`);
  if (r.promisc === false) out.push('promiscuous mode off');
  if (r.up === false) out.push('link down');
  if (r.mtu !== undefined) out.push(`MTU ${r.mtu}`);
  return out;
}

/** Whether the netdev a claim record names is still the one claimed: `same` (that name,
 *  the claim's ifindex), `other` (a netdev made since under its name: after a reboot, a
 *  VF count changed, an uplink made again; it has settings of its own) or `gone`. Only
 *  `same` has anything to give back. */
export async function claimedNow(r: ClaimRecord): Promise<'same' | 'other' | 'gone'> {
  const l = await linkAddrs(r.netns ?? null, r.ifname).catch(() => null);
  return !l ? 'gone' : l.ifindex === r.ifindex ? 'same' : 'other';
}

/** Gives a netdev back what its claim changed, and takes it off the journal (also when
 *  the netdev went away with its VF or namespace, and there is nothing to give back).
 *  Returns what it did, in words, for the log (null for no claim). */
export async function releaseNetdev(journal: ClaimJournal, c: ClaimRecord | null): Promise<string | null> {
  if (!c) return null;
  const who = `${c.ifname}${c.netns ? ` (in ${c.netns})` : ''}`;
  // Only to the netdev that was claimed: one made again under its name (an uplink
  // deleted and recreated while the data plane ran) has settings of its own.
  const now = await claimedNow(c);
  if (now !== 'same') {
    journal.drop(c);
    netdevLocks.get(c)?.release();
    netdevLocks.delete(c);
    return `${who} is ${now === 'gone' ? 'gone' : 'another netdev now'}: nothing to give back`;
  }
  const back = givesBack(c);
  let failed = false;
  const ops: NetOp[] = [];
  if (c.forwarding !== null) ops.push({ op: 'sysctl', path: `net/ipv4/conf/${c.ifname}/forwarding`, value: c.forwarding, optional: true });
  if (c.disableIpv6 !== null) ops.push({ op: 'sysctl', path: `net/ipv6/conf/${c.ifname}/disable_ipv6`, value: c.disableIpv6, optional: true });
  if (c.multicast) ops.push({ op: 'maddr', name: c.ifname, mac: c.multicast, join: false });
  if (c.up === false) ops.push({ op: 'set', name: c.ifname, up: false });
  if (c.mtu !== undefined) ops.push({ op: 'set', name: c.ifname, mtu: c.mtu });
  try {
    await Promise.all([netRun(c.netns ?? null, ops), c.rxAgg ? rxAggregation(c.netns ?? null, c.ifname, { set: c.rxAgg }) : null]);
    // A DPDK PMD switches it off when its port closes; one killed first did not. `promisc
    // off` drops only a user's setting (SIOCSIFFLAGS), not other holders' counts.
    if (c.promisc === false && !c.netns && promiscuous(c.ifname)) runSync('ip', ['link', 'set', 'dev', c.ifname, 'promisc', 'off']);
  } catch {
    failed = true; // the netdev went away with its VF or namespace: nothing to give back
  }
  journal.drop(c);
  netdevLocks.get(c)?.release(); // last: another data plane may take it now
  netdevLocks.delete(c);
  return failed ? `${who} went away while it was given back` : back.length ? `gave ${who} back ${back.join(', ')}` : `released ${who} (it had nothing to give back)`;
}

/** Whose leftovers releaseLeftovers gives back: a starting run's (`held`: what it has
 *  claimed itself, kept), or every one for the operator's `vfplane dataplane unclaim`
 *  (`unclaim`, with no data plane running). */
export type LeftoverOptions = { held: readonly (ClaimRecord | null)[]; unclaim?: never } | { unclaim: true; held?: never };

/** At start, once the uplink and the attachments are claimed: the journal's other
 *  netdevs were held by a run that did not stop cleanly and are not this run's. Each is
 *  given back if it is still the netdev that was claimed (same name and ifindex), and
 *  dropped from the journal either way. Returns what was done, for the log. */
export async function releaseLeftovers(journal: ClaimJournal, opts: LeftoverOptions): Promise<string[]> {
  const byStart = !opts.unclaim;
  const mine = new Set((opts.held ?? []).filter((c): c is ClaimRecord => !!c).map((c) => key(c.ifname, c.netns)));
  const out: string[] = [];
  for (const r of journal.list()) {
    if (mine.has(key(r.ifname, r.netns))) continue;
    const where = `${r.ifname}${r.netns ? ` in ${r.netns}` : ''}`;
    const now = await claimedNow(r);
    // Another data plane may have taken the netdev since the run that journaled it died:
    // it is that one's now, and what this journal recorded is no longer to give back.
    const lock = now === 'same' ? tryNetdevLock(r.ifname, r.ifindex, r.netns, journal.about) : null;
    if (lock && 'heldBy' in lock) {
      journal.drop(r);
      out.push(`forgot ${where}, claimed by a run that did not stop cleanly: another data plane holds it now (${[lock.heldBy ? `pid ${lock.heldBy}` : null, lock.about || null].filter(Boolean).join(', ') || 'unknown'}): it is that one's to give back`);
    } else if (lock) {
      netdevLocks.set(r, lock);
      await releaseNetdev(journal, r);
      out.push(`gave ${where} back the settings it had before ${r.since} (claimed by a run that did not stop cleanly${byStart ? ', and not used by this one' : ''})`);
      // An AF_XDP port's program outlives its process (libxdp attaches it by netlink).
      const xdp = DataPlane.clearStaleXdp(r.ifname, r.netns ?? null);
      if (xdp) out.push(`${where}: ${xdp}`);
    } else {
      journal.drop(r);
      out.push(`forgot ${where}, claimed by a run that did not stop cleanly: ${now === 'other' ? 'a different netdev has its name now' : 'it no longer exists'}`);
    }
  }
  return out;
}
