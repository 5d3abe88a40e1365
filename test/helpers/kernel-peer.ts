// A kernel vxlan peer for a data plane under test, as the underlay suites build one: the
// data plane's uplink `up` in namespace `u`; the peer's netdev `pu` in namespace `p`,
// on the uplink's link or behind a router namespace `r` (forwarding between the data
// plane's subnet on `ru` and the peer's on `rp`); the peer's `vx0` (VNI 100, port 4789,
// 10.9.0.2/24); and a pod, namespace `q` at 10.9.0.1/24 (IPv6 off), behind a representor
// `rep` in the host namespace. For a describe block: made before its tests, gone after.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { ifname, Netns, scratchDir, vethPair } from './netns.js';

/** Addresses by family: our VTEP's subnet (the router's end of it), the peer's subnet
 *  behind the router, the peer on our link when there is no router. */
const ADDR = {
  4: { vtep: '192.0.2.1', ru: '192.0.2.254/24', gw: '192.0.2.254', rp: '198.51.100.254/24', routedPeer: '198.51.100.2', routedPeerCidr: '198.51.100.2/24', peerGw: '198.51.100.254', linkPeer: '192.0.2.2', linkPeerCidr: '192.0.2.2/24' },
  6: { vtep: '2001:db8:1::1', ru: '2001:db8:1::fe/64', gw: '2001:db8:1::fe', rp: '2001:db8:2::fe/64', routedPeer: '2001:db8:2::2', routedPeerCidr: '2001:db8:2::2/64', peerGw: '2001:db8:2::fe', linkPeer: '2001:db8:1::2', linkPeerCidr: '2001:db8:1::2/64' },
} as const;

export interface KernelPeerOptions {
  /** The underlay's family (4). */
  v?: 4 | 6;
  /** The peer behind a router (false: on the uplink's link). */
  routed?: boolean;
  /** The MTU of the link the peer is on (its netdev, and the router's end), set before
   *  vx0 is made (which takes its MTU from it). */
  peerLinkMtu?: number;
  /** The UDP port the peer's vx0 sends to and listens on (4789). */
  dstPort?: number;
  /** More `ip link add … type vxlan` settings for vx0 (udp6zerocsumtx, …). */
  vxlanArgs?: string[];
}

/** `tag`: a word distinct per suite (namespaces, directory; its first letter starts the
 *  interface names). */
export function kernelPeer(tag: string, o: KernelPeerOptions = {}) {
  const v = o.v ?? 4;
  const a = ADDR[v];
  const t = tag[0]!;
  let ns: { u: Netns; r: Netns | null; p: Netns; q: Netns } | undefined;
  const get = () => {
    if (!ns) throw new Error('kernelPeer: used before its beforeAll ran');
    return ns;
  };
  const dir = scratchDir(tag);
  const k = {
    up: ifname(`${t}u`), ru: ifname(`${t}r`), rp: ifname(`${t}s`), pu: ifname(`${t}p`), rep: ifname(`${t}e`), repp: ifname(`${t}f`),
    /** Our VTEP, the peer's, and the router's address on our link (routed only). */
    vtep: a.vtep as string,
    peer: (o.routed ? a.routedPeer : a.linkPeer) as string,
    gw: o.routed ? (a.gw as string) : undefined,
    dir: dir.dir,
    get u(): Netns { return get().u; },
    get r(): Netns { const r = get().r; if (!r) throw new Error('kernelPeer: no router without routed'); return r; },
    get p(): Netns { return get().p; },
    get q(): Netns { return get().q; },
    /** One ping from a namespace, its output (status 0: answered). */
    ping(from: Netns, to: string, args: string[] = []) {
      return spawnSync('ip', ['netns', 'exec', from.name, 'ping', '-n', '-c', '1', '-W', '1', ...args, to], { encoding: 'utf8' });
    },
    /** One ping from the pod to the peer's vx0 (10.9.0.2), across the overlay. */
    podPing(args: string[] = []) {
      return k.ping(get().q, '10.9.0.2', args);
    },
  };
  beforeAll(() => {
    const u = Netns.create(`${tag}u`), p = Netns.create(`${tag}p`), q = Netns.create(`${tag}q`);
    const r = o.routed ? Netns.create(`${tag}r`) : null;
    ns = { u, r, p, q };
    const addr = (n: Netns, cidr: string, dev: string) => n.ip(['addr', 'add', cidr, 'dev', dev, ...(v === 6 ? ['nodad'] : [])]);
    if (r) {
      vethPair(u, k.up, r, k.ru);
      vethPair(r, k.rp, p, k.pu);
      r.sysctl(v === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', '1');
      addr(r, a.ru, k.ru);
      addr(r, a.rp, k.rp);
      if (o.peerLinkMtu) r.ip(['link', 'set', k.rp, 'mtu', String(o.peerLinkMtu)]);
      for (const l of [k.ru, k.rp]) r.ip(['link', 'set', l, 'up']);
    } else {
      vethPair(u, k.up, p, k.pu);
    }
    if (o.peerLinkMtu) p.ip(['link', 'set', k.pu, 'mtu', String(o.peerLinkMtu)]);
    p.ip(['link', 'set', k.pu, 'up']);
    addr(p, r ? a.routedPeerCidr : a.linkPeerCidr, k.pu);
    if (r) p.ip([...(v === 6 ? ['-6'] : []), 'route', 'add', 'default', 'via', a.peerGw]);
    p.ip(['link', 'add', 'vx0', 'type', 'vxlan', 'id', '100', 'local', k.peer, 'remote', a.vtep, 'dstport', String(o.dstPort ?? 4789), ...(o.vxlanArgs ?? []), 'dev', k.pu]);
    p.ip(['addr', 'add', '10.9.0.2/24', 'dev', 'vx0']);
    p.ip(['link', 'set', 'vx0', 'up']);
    spawnSync('ip', ['link', 'add', k.rep, 'type', 'veth', 'peer', 'name', k.repp, 'netns', q.name]);
    q.sysctl('net.ipv6.conf.all.disable_ipv6', '1');
    q.ip(['addr', 'add', '10.9.0.1/24', 'dev', k.repp]);
    q.ip(['link', 'set', k.repp, 'up']);
  });
  afterAll(() => {
    spawnSync('ip', ['link', 'del', k.rep]);
    if (ns) for (const n of [ns.u, ns.r, ns.p, ns.q]) n?.destroy();
    dir.remove();
  });
  return k;
}

/** Whether `ok` holds within `ms`, asked every 100 ms (and once more at the end). */
export async function until(ok: () => boolean, ms: number): Promise<boolean> {
  for (const t = Date.now(); Date.now() - t < ms; await new Promise((res) => setTimeout(res, 100))) if (ok()) return true;
  return ok();
}
