// Batches of link, address, route and sysctl changes inside a network namespace. The
// native addon does them in-process over rtnetlink on a thread that alone enters the
// namespace (one call instead of a chain of `nsenter ip …` processes, which is most of
// a CNI ADD's cost); iproute2 is the fallback when the addon is not built.
import { writeFileSync } from 'node:fs';
import { invalid, systemError, type VfpError } from '../util/errors.js';
import { runSync, syncFailure } from '../util/spawn.js';
import { isGroupMac } from '../util/addr.js';
import type { RawNetOp } from '../dataplane/addon-types.js';
import { addrsIn, hostNetnsPath, ip, ipIn, linkIn, link, sysctlIn, type IpAddrInfo, type IpLink } from './ip.js';

export type NetOp =
  | { op: 'get'; name: string }
  /** Down (up: false) first. Without `netns`: rename, MAC, MTU, up (up: true), in that
   *  order. With `netns`: one request moves the link and gives it the new name, MAC, MTU
   *  and up state there (the new name needs to be free there only; when it is not, the
   *  request fails with the link moved under its own name). */
  | { op: 'set'; name: string; up?: boolean; newName?: string; mac?: string; mtu?: number; netns?: string }
  | { op: 'addr'; name: string; address: string; nodad?: boolean } // address in CIDR form
  | { op: 'route'; name: string; dst: string; gw?: string; existOk?: boolean } // dst in CIDR form; existOk: a route to dst already there is no error
  | { op: 'sysctl'; path: string; value: string; optional?: boolean } // path under /proc/sys
  /** A multicast MAC on the link's receive filter (`ip maddr`); leaving one that is not
   *  there is not an error. */
  | { op: 'maddr'; name: string; mac: string; join: boolean };

export interface LinkInfo {
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
  /** Up with carrier (IFF_RUNNING, `LOWER_UP` in `ip link`): frames can go. */
  running?: boolean;
  /** The netdev's own name: the one asked for may be an altname of it. */
  name?: string;
}

type Runner = (netns: string | null, ops: RawNetOp[]) => Promise<(LinkInfo | null)[]>;
let native: Runner | null | undefined;

async function nativeRunner(): Promise<Runner | null> {
  if (native !== undefined) return native;
  if (process.env.VFPLANE_NETOPS === 'iproute2') return (native = null);
  try {
    const { loadAddon } = await import('../dataplane/native.js');
    const a = loadAddon();
    // Off the JS thread, so a server keeps answering other calls while a netdev moves.
    native = typeof a.netopsRunAsync === 'function' ? (ns, ops) => a.netopsRunAsync(ns, ops) : null;
  } catch {
    native = null;
  }
  return native;
}

function cidr(s: string): { addr: string; prefix: number } {
  const i = s.indexOf('/');
  if (i < 0) return { addr: s, prefix: s.includes(':') ? 128 : 32 };
  return { addr: s.slice(0, i), prefix: Number(s.slice(i + 1)) };
}

function toRaw(o: NetOp): RawNetOp {
  switch (o.op) {
    case 'get':
      return { kind: 0, name: o.name };
    case 'set':
      return {
        kind: 1, name: o.name, up: o.up === undefined ? -1 : o.up ? 1 : 0,
        ...(o.newName ? { newName: o.newName } : {}), ...(o.mac ? { mac: o.mac } : {}),
        ...(o.mtu ? { mtu: o.mtu } : {}), ...(o.netns ? { netnsPath: o.netns } : {}),
      };
    case 'addr': {
      const c = cidr(o.address);
      return { kind: 2, name: o.name, addr: c.addr, prefix: c.prefix, nodad: !!o.nodad };
    }
    case 'route': {
      const c = cidr(o.dst);
      return { kind: 3, name: o.name, addr: c.addr, prefix: c.prefix, ...(o.gw ? { gw: o.gw } : {}), optional: !!o.existOk };
    }
    case 'sysctl':
      return { kind: 4, path: o.path, value: o.value, optional: !!o.optional };
    case 'maddr':
      return { kind: 5, name: o.name, mac: o.mac, up: o.join ? 1 : 0 };
  }
}

/** The same batch through iproute2 (and sysctl), one process per change. */
function viaIproute2(netns: string | null, ops: NetOp[]): (LinkInfo | null)[] {
  const out: (LinkInfo | null)[] = [];
  for (const o of ops) {
    try {
      out.push(oneViaIproute2(netns, o));
    } catch (e) {
      // Named as the native path names a failure: the op, then the tool's own reason.
      const why = ((e as VfpError).details?.stderr as string | undefined) ?? (e as Error).message;
      throw systemError(`${describe(o)}${netns ? ` in ${netns}` : ''}: ${why}`, { op: o, ...((e as VfpError).details ?? {}) });
    }
  }
  return out;
}

function oneViaIproute2(netns: string | null, o: NetOp): LinkInfo | null {
  const run = (args: string[]) => (netns ? ipIn(netns, args) : ip(args));
  switch (o.op) {
    case 'get': {
      const l = netns ? linkIn(netns, o.name) : link(o.name);
      return l ? { ifindex: l.ifindex, mac: l.address ?? '', mtu: l.mtu ?? 0, up: (l.flags ?? []).includes('UP'), running: (l.flags ?? []).includes('LOWER_UP'), ...(l.ifname ? { name: l.ifname } : {}) } : null;
    }
    case 'set': {
      let name = o.name;
      if (o.up === false) run(['link', 'set', 'dev', name, 'down']);
      if (o.netns) {
        // iproute2 sends these as one request too.
        run(['link', 'set', 'dev', name, 'netns', o.netns, ...(o.newName ? ['name', o.newName] : []), ...(o.mac ? ['address', o.mac] : []),
          ...(o.mtu ? ['mtu', String(o.mtu)] : []), ...(o.up === true ? ['up'] : [])]);
        return null;
      }
      if (o.newName) {
        run(['link', 'set', 'dev', name, 'name', o.newName]);
        name = o.newName;
      }
      if (o.mac) run(['link', 'set', 'dev', name, 'address', o.mac]);
      if (o.mtu) run(['link', 'set', 'dev', name, 'mtu', String(o.mtu)]);
      if (o.up === true) run(['link', 'set', 'dev', name, 'up']);
      return null;
    }
    case 'addr':
      run(['addr', 'add', o.address, 'dev', o.name, ...(o.nodad ? ['nodad'] : [])]);
      return null;
    case 'route':
      try {
        run(['route', 'add', o.dst, ...(o.gw ? ['via', o.gw] : []), 'dev', o.name]);
      } catch (err) {
        if (!o.existOk || !/File exists/.test(String((err as Error).message))) throw err;
      }
      return null;
    case 'sysctl': {
      try {
        if (netns) sysctlIn(netns, o.path.replaceAll('/', '.'), o.value);
        else writeFileSync(`/proc/sys/${o.path}`, o.value);
      } catch (err) {
        if (!o.optional) throw err;
      }
      return null;
    }
    case 'maddr': {
      // The kernel takes any address here; a unicast one is refused as natively.
      if (!isGroupMac(o.mac)) throw systemError('Invalid argument (not a multicast MAC)', { errno: 'EINVAL' });
      try {
        run(['maddr', o.join ? 'add' : 'del', o.mac, 'dev', o.name]);
      } catch (err) {
        if (o.join) throw err;
      }
      return null;
    }
  }
}

/**
 * Runs OPS in order inside the namespace at NETNS (null: this process's). Stops at the
 * first failure, throwing a system error that names the op; earlier ops stay done.
 */
export async function netRun(netns: string | null, ops: NetOp[]): Promise<(LinkInfo | null)[]> {
  const run = await nativeRunner();
  if (!run) return viaIproute2(netns, ops);
  try {
    return await run(netns, ops.map(toRaw));
  } catch (err) {
    const e = err as Error & { code?: string; index?: number };
    const op = e.index !== undefined && e.index >= 0 ? ops[e.index] : undefined;
    throw systemError(`${op ? `${describe(op)}` : 'netlink'}${netns ? ` in ${netns}` : ''}: ${e.message.replace(/^op \d+: /, '')}`, { errno: e.code, op });
  }
}

export interface LinkAddrs extends LinkInfo {
  addrs: IpAddrInfo[];
  /** Addresses past the first 16, not listed. */
  more: number;
}

/**
 * A link and its addresses (both families) in the namespace at NETNS (null: this
 * process's), or null when there is no such link. Natively from ioctls and one
 * RTM_GETADDR dump per family, none of which waits for the RTNL lock: iproute2's
 * `ip link show` and `ip addr show dev` do (they ask for the link by request, and an
 * AF_UNSPEC dump goes through rtnetlink's locked dump-all), so while another netdev
 * moves between namespaces (tens of milliseconds under RTNL) they wait for it.
 */
export async function linkAddrs(netns: string | null, name: string): Promise<LinkAddrs | null> {
  const run = await nativeRunner();
  if (run) {
    try {
      const [r] = (await run(netns, [{ kind: 6, name }])) as unknown as (LinkAddrs | null)[];
      return r ?? null;
    } catch (err) {
      const e = err as Error & { code?: string };
      throw systemError(`reading link ${name} and its addresses${netns ? ` in ${netns}` : ''}: ${e.message.replace(/^op \d+: /, '')}`, { errno: e.code });
    }
  }
  const l = netns ? linkIn(netns, name) : link(name);
  if (!l) return null;
  return {
    ifindex: l.ifindex, mac: l.address ?? '', mtu: l.mtu ?? 0, up: (l.flags ?? []).includes('UP'), running: (l.flags ?? []).includes('LOWER_UP'),
    ...(l.ifname ? { name: l.ifname } : {}), addrs: addrsIn(netns ?? hostNetnsPath(), name), more: 0,
  };
}

/** A link as `ip -d -j link show` gives it, the fields that tell a VF's netdev (or the
 *  simulator's veth) from another: its device (`parentdev`, a PCI function's address),
 *  its kind, and for a link whose peer or lower link is in another namespace that link's
 *  index there (`link_index`) and the namespace's id here (`link_netnsid`). */
export interface PodLink { ifindex: number; ifname: string; parentdev?: string; link_index?: number; link_netnsid?: number; linkinfo?: { info_kind?: string } }

const podLinkOf = (l: PodLink): PodLink => ({
  ifindex: l.ifindex, ifname: l.ifname, ...(l.parentdev ? { parentdev: l.parentdev } : {}),
  ...(l.link_index !== undefined ? { link_index: l.link_index } : {}), ...(l.link_netnsid !== undefined ? { link_netnsid: l.link_netnsid } : {}),
  ...(l.linkinfo?.info_kind ? { linkinfo: { info_kind: l.linkinfo.info_kind } } : {}),
});

function linksViaIproute2(netns: string | null): PodLink[] {
  return (JSON.parse(netns ? ipIn(netns, ['-d', '-j', 'link', 'show']) : ip(['-d', '-j', 'link', 'show'])) as PodLink[]).map(podLinkOf);
}

/**
 * The links of the namespace at NETNS (null: this process's), as PodLink. Natively one
 * RTM_GETLINK dump on netops' thread (no `nsenter ip` process, ~8 ms from a large
 * server); through iproute2 without the addon, or when there are more links than the
 * native op returns (64).
 */
export async function linkList(netns: string | null): Promise<PodLink[]> {
  const run = await nativeRunner();
  if (run) {
    let r: { links: PodLink[]; more: number } | null | undefined;
    try {
      [r] = (await run(netns, [{ kind: 8 }])) as unknown as ({ links: PodLink[]; more: number } | null)[];
    } catch (err) {
      const e = err as Error & { code?: string };
      throw systemError(`reading the links${netns ? ` in ${netns}` : ''}: ${e.message.replace(/^op \d+: /, '')}`, { errno: e.code });
    }
    if (r && r.more === 0) return r.links;
  }
  return linksViaIproute2(netns);
}

/** The link of index IFINDEX in the namespace at NETNS (null: this process's), or null
 *  when there is none. Natively one RTM_GETLINK for that index. */
export async function linkByIndex(netns: string | null, ifindex: number): Promise<PodLink | null> {
  const run = await nativeRunner();
  if (run) {
    try {
      const [r] = (await run(netns, [{ kind: 8, ifindex }])) as unknown as ({ links: PodLink[] } | null)[];
      return r?.links.find((l) => l.ifindex === ifindex) ?? null;
    } catch (err) {
      const e = err as Error & { code?: string };
      throw systemError(`reading link ${ifindex}${netns ? ` in ${netns}` : ''}: ${e.message.replace(/^op \d+: /, '')}`, { errno: e.code });
    }
  }
  return linksViaIproute2(netns).find((l) => l.ifindex === ifindex) ?? null;
}

/** Receive aggregation features (enum vfp_rx_agg, native/net/netops.h), by the names
 *  the kernel and `ethtool -k` give them. */
export const RX_AGG = {
  'rx-gro': 1 << 0,
  'rx-lro': 1 << 1,
  'rx-gro-hw': 1 << 2,
  'rx-gro-list': 1 << 3,
  'rx-udp-gro-forwarding': 1 << 4,
} as const;
export const RX_AGG_ALL = 0x1f;

/** The RX_AGG names of a bit set, for messages. */
export function rxAggNames(bits: number): string[] {
  return Object.entries(RX_AGG).filter(([, b]) => bits & b).map(([n]) => n);
}

/**
 * Reads, and with `clear`/`set` changes, the receive aggregation features of link NAME
 * in the namespace at NETNS (null: this process's), as `ethtool -K` does. Returns what
 * was requested before the change (`agg`, to give back later) and the features the
 * device cannot change (`fixed`, left as they are). A data plane reading frames off a
 * netdev must not have them merged: GRO hands AF_PACKET a 64 KiB frame for a TCP burst.
 */
export async function rxAggregation(netns: string | null, name: string, change: { clear?: number; set?: number } = {}): Promise<{ agg: number; fixed: number }> {
  const run = await nativeRunner();
  if (run) {
    try {
      const [r] = (await run(netns, [{ kind: 7, name, aggClear: change.clear ?? 0, aggSet: change.set ?? 0 }])) as unknown as { agg: number; aggFixed: number }[];
      return { agg: r!.agg, fixed: r!.aggFixed };
    } catch (err) {
      const e = err as Error & { code?: string };
      throw systemError(`${change.clear || change.set ? 'changing' : 'reading'} the receive aggregation (GRO, LRO) of ${name}${netns ? ` in ${netns}` : ''}: ${e.message.replace(/^op \d+: /, '')}`, { errno: e.code });
    }
  }
  // Without the addon: ethtool, in the namespace.
  const eth = (args: string[]) => {
    const r = runSync(netns ? 'nsenter' : 'ethtool', netns ? [`--net=${netns}`, 'ethtool', ...args] : args);
    const why = syncFailure(r);
    if (why) {
      throw systemError(`${change.clear || change.set ? 'changing' : 'reading'} the receive aggregation (GRO, LRO) of ${name}${netns ? ` in ${netns}` : ''}: ethtool ${args.join(' ')}: ${why.replace(/\s*\n\s*/g, '; ')}`, { errno: r.error?.code });
    }
    return r.stdout;
  };
  const feats = new Map<string, { on: boolean; fixed: boolean }>();
  for (const line of eth(['-k', name]).split('\n')) {
    const m = /^\s*([a-z0-9-]+): (on|off)( \[fixed\])?/.exec(line);
    if (m) feats.set(m[1]!, { on: m[2] === 'on', fixed: !!m[3] });
  }
  // ethtool -k prints two of them under their long names.
  const alias: Record<string, string> = { 'rx-gro': 'generic-receive-offload', 'rx-lro': 'large-receive-offload' };
  let agg = 0, fixed = 0;
  const args: string[] = [];
  for (const [n, bit] of Object.entries(RX_AGG)) {
    const f = feats.get(alias[n] ?? n);
    if (!f || f.fixed) {
      fixed |= bit;
      if (f?.on) agg |= bit;
      continue;
    }
    if (f.on) agg |= bit;
    const want = (change.set ?? 0) & bit ? true : (change.clear ?? 0) & bit ? false : null;
    if (want !== null && want !== f.on) args.push(n, want ? 'on' : 'off');
  }
  if (args.length) eth(['-K', name, ...args]);
  return { agg, fixed };
}

function describe(o: NetOp): string {
  switch (o.op) {
    case 'get': return `reading link ${o.name}`;
    case 'set': return `changing link ${o.name}`;
    case 'addr': return `adding ${o.address} to ${o.name}`;
    case 'route': return `adding route ${o.dst}${o.gw ? ` via ${o.gw}` : ''} on ${o.name}`;
    case 'sysctl': return `writing ${o.path}`;
    case 'maddr': return `${o.join ? 'joining' : 'leaving'} multicast ${o.mac} on ${o.name}`;
  }
}

/** Kinds of link stacked on a netdev that carry their own traffic through it: taking
 *  the lower netdev cuts them off. (A veth names its peer the same way: not one.) */
const UPPER_KINDS = new Set(['vlan', 'macvlan', 'macvtap', 'ipvlan', 'ipvtap', 'vxlan', 'geneve', 'gre', 'gretap', 'ip6gre', 'ip6gretap', 'vrf']);

/**
 * The other half of refuseHostNetdev, for a netdev taken whole (an uplink, the bench's
 * --iface): one with no addresses of its own still carries the host's traffic when it is
 * a port of a bridge or bond (the management address sits on the master), or the lower
 * link of a VLAN or macvlan. Read with iproute2 (the master and the stacked links), once
 * at the start.
 */
export function refuseStackedNetdev(netns: string | null, name: string, what: string, who = 'the data plane'): void {
  const all = JSON.parse(netns ? ipIn(netns, ['-d', '-j', 'link', 'show']) : ip(['-d', '-j', 'link', 'show'])) as (IpLink & { master?: string; linkinfo?: { info_kind?: string; info_slave_kind?: string } })[];
  const me = all.find((l) => l.ifname === name);
  if (!me) return;
  if (me.master) {
    const kind = all.find((l) => l.ifname === me.master)?.linkinfo?.info_kind;
    throw invalid(`${what} is a port of ${kind ? `${kind} ` : ''}${me.master}: ${who} takes the whole netdev, and ${me.master}'s traffic through it would be lost; give ${who} a netdev of its own (a VF, or another port), or take it out of ${me.master} first (ip link set ${name} nomaster)`);
  }
  const uppers = all.filter((l) => l.link === name && l.ifname !== name && UPPER_KINDS.has(l.linkinfo?.info_kind ?? ''));
  if (uppers.length) {
    throw invalid(`${what} carries ${uppers.map((u) => `${u.linkinfo!.info_kind} ${u.ifname}`).join(', ')}: ${who} takes the whole netdev, and their traffic through it would be lost; give ${who} a netdev of its own (a VF, or another port), or remove them first`);
  }
}

/** Loopback is ifindex 1 in every namespace, whatever it is called. */
export const LOOPBACK_IFINDEX = 1;

/** The data plane (and the NIC bench) takes the whole netdev: its XDP program (afxdp) or stack drop
 *  (afpacket) leaves the host stack none of its frames. A netdev with addresses of its
 *  own is the host's (its management interface, say): refuse it rather than cut it off.
 *  So is loopback, whose addresses are host-scoped. */
export function refuseHostNetdev(l: LinkAddrs, what: string, who = 'the data plane'): void {
  if (l.ifindex === LOOPBACK_IFINDEX) {
    throw invalid(`${what} is the loopback device: ${who} takes the whole netdev and the namespace would lose 127.0.0.1 and ::1; give ${who} a netdev to the underlay (a PF or VF port, or a veth)`);
  }
  // Read by linkAddrs (an RTM_GETADDR dump), not getifaddrs (os.networkInterfaces):
  // libuv leaves out links without carrier, whose addresses are the host's all the same.
  const held = l.addrs.filter((a) => a.scope !== 'link' && a.scope !== 'host').map((a) => `${a.local}/${a.prefixlen}`);
  if (held.length) {
    throw invalid(`${what} carries ${held.join(', ')}: ${who} takes the whole netdev and the host would lose those addresses' traffic; give ${who} a netdev of its own (a VF, or another port) or remove the addresses`);
  }
}

