// The one place that changes links, addresses and network namespaces. It runs iproute2
// with argv arrays (never a shell string) and turns its failures into errors that carry
// the command and the kernel's message.
import { readFileSync, statSync } from 'node:fs';
import { systemError } from '../util/errors.js';
import { runSync, syncFailure } from '../util/spawn.js';

export interface IpLink {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu?: number;
  /** With `-d`: the MTU range the driver takes (0: no limit given). */
  min_mtu?: number;
  max_mtu?: number;
  operstate?: string;
  flags?: string[];
  link?: string | null; // a veth's peer name, when the peer is in the same namespace
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
  vfinfo_list?: IpVfInfo[];
}

/** One entry of `ip -d -j link show` vfinfo_list (PF-side VF settings). */
export interface IpVfInfo {
  vf: number;
  address?: string;
  mac?: string;
  vlan_list?: { vlan?: number; qos?: number; protocol?: string }[];
  rate?: { max_tx?: number; min_tx?: number };
  spoofchk?: boolean;
  link_state?: string;
  trust?: boolean;
}

export class IpError extends Error {}

const NO_IP = 'the `ip` command (iproute2) is not installed; run ./scripts/setup or apt-get install iproute2';

// iproute2 starts through runSync: posix_spawn when the addon is built, since Node's
// execFileSync forks this process first (7–25 ms of page-table copying for a large,
// long-running one: the CNI server, the data-plane daemon) on every call.
function run(args: string[], input?: string): string {
  const r = runSync('ip', args, input ?? '');
  if (r.error?.code === 'ENOENT') throw systemError(NO_IP);
  const why = syncFailure(r);
  if (why) throw systemError(`ip ${args.join(' ')}: ${why}`, { args, stderr: why });
  return r.stdout;
}

const nsArgs = (netns?: string) => (netns ? ['-n', netns] : []);

export function ip(args: string[], netns?: string): string {
  return run([...nsArgs(netns), ...args]);
}

/** Runs many commands in one iproute2 process (`ip -batch -`); stops at the first failure. */
export function ipBatch(lines: string[][], netns?: string): void {
  if (lines.length === 0) return;
  for (const l of lines) {
    for (const w of l) {
      // -batch splits on whitespace and treats # and quotes specially; our words never need them.
      if (!/^[A-Za-z0-9_.:@/-]+$/.test(w)) throw systemError(`refusing to batch the ip argument ${JSON.stringify(w)}`);
    }
  }
  run([...nsArgs(netns), '-batch', '-'], lines.map((l) => l.join(' ')).join('\n') + '\n');
}

export function links(netns?: string, details = false): IpLink[] {
  return JSON.parse(run([...nsArgs(netns), ...(details ? ['-d'] : []), '-j', 'link', 'show'])) as IpLink[];
}

export function link(name: string, netns?: string, details = false): IpLink | undefined {
  try {
    const out = run([...nsArgs(netns), ...(details ? ['-d'] : []), '-j', 'link', 'show', 'dev', name]);
    return (JSON.parse(out) as IpLink[])[0];
  } catch (err) {
    const stderr = String((err as { details?: { stderr?: string } }).details?.stderr ?? '');
    if (/does not exist|Cannot find device/.test(stderr)) return undefined;
    throw err;
  }
}

export function netnsList(): string[] {
  const out = run(['-j', 'netns', 'list']).trim();
  if (!out) return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

export function netnsAdd(name: string): void {
  run(['netns', 'add', name]);
}

export function netnsDel(name: string): void {
  run(['netns', 'del', name]);
}

// --- network namespaces named by path (CNI_NETNS) ----------------------------------
// `ip -n` only takes names under /run/netns; a CNI runtime passes any path
// (/var/run/netns/cni-…, /proc/PID/ns/net), so commands inside run through nsenter.

function nsenter(netnsPath: string, cmd: string[]): string {
  const r = runSync('nsenter', [`--net=${netnsPath}`, ...cmd]);
  const why = syncFailure(r);
  if (why) throw systemError(`in ${netnsPath}: ${cmd.join(' ')}: ${why}`, { netns: netnsPath, args: cmd, stderr: why });
  return r.stdout;
}

/** A network namespace's identity, "dev:inode" of its nsfs file: two paths may name one
 *  namespace (/run/netns/x, /var/run/netns/x, /proc/PID/ns/net), and no path means the
 *  one this process runs in. Throws when the path does not exist. */
export function netnsId(netnsPath?: string): string {
  const st = statSync(netnsPath ?? '/proc/self/ns/net');
  return `${st.dev}:${st.ino}`;
}

/** Runs `ip ARGS` inside the network namespace at NETNS_PATH. */
export function ipIn(netnsPath: string, args: string[]): string {
  return nsenter(netnsPath, ['ip', ...args]);
}

export function linkIn(netnsPath: string, name: string): IpLink | undefined {
  try {
    return (JSON.parse(ipIn(netnsPath, ['-j', 'link', 'show', 'dev', name])) as IpLink[])[0];
  } catch (err) {
    const stderr = String((err as { details?: { stderr?: string } }).details?.stderr ?? '');
    if (/does not exist|Cannot find device/.test(stderr)) return undefined;
    throw err;
  }
}

export interface IpAddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope?: string;
}

export function addrsIn(netnsPath: string, dev: string): IpAddrInfo[] {
  const j = JSON.parse(ipIn(netnsPath, ['-j', 'addr', 'show', 'dev', dev])) as { addr_info?: IpAddrInfo[] }[];
  return j[0]?.addr_info ?? [];
}

export interface IpRouteInfo {
  dst: string; // as ip prints it: "default", "10.98.0.0/16", "10.99.0.7"
  gateway?: string;
  dev?: string;
  table?: string;
  family: 4 | 6;
}

/** Every IPv4 and IPv6 route of every table in NETNS_PATH. */
export function routesIn(netnsPath: string): IpRouteInfo[] {
  const out: IpRouteInfo[] = [];
  for (const family of [4, 6] as const) {
    const j = JSON.parse(ipIn(netnsPath, [`-${family}`, '-j', 'route', 'show', 'table', 'all']) || '[]') as Omit<IpRouteInfo, 'family'>[];
    for (const r of j) out.push({ ...r, family });
  }
  return out;
}

/** Sets a per-namespace sysctl (net.*) inside NETNS_PATH. */
export function sysctlIn(netnsPath: string, key: string, value: string): void {
  if (!/^net\.[A-Za-z0-9_.\-/]+$/.test(key) || !/^[0-9A-Za-z_-]+$/.test(value)) throw systemError(`refusing sysctl ${key}=${value}`);
  nsenter(netnsPath, ['sysctl', '-qw', `${key}=${value}`]);
}

/** A sysctl under /proc/sys (PATH like net/ipv4/conf/eth0/forwarding) in NETNS_PATH
 *  (null: this process's), or null when it does not exist there. */
export function readSysctl(netnsPath: string | null, path: string): string | null {
  if (!/^net\/[A-Za-z0-9_.\-/]+$/.test(path) || path.split('/').includes('..')) throw systemError(`refusing to read sysctl ${path}`);
  try {
    return (netnsPath ? nsenter(netnsPath, ['cat', `/proc/sys/${path}`]) : readFileSync(`/proc/sys/${path}`, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** The path of this process's own network namespace, to move a netdev back to it. */
export function hostNetnsPath(): string {
  return `/proc/${process.pid}/ns/net`;
}
