// The I/O benchmark's simulated topology: generator netns G —veth— DUT netns D —veth—
// sink netns S, under a name prefix unique to this process (vb<pid base 36>), and the
// two DUT configurations of D (the kernel's bridge + vxlan device, or nothing: our data
// plane opens D's veths itself). Everything made here is deleted on teardown, on exit
// and on SIGINT/SIGTERM; leftovers of dead bench processes are swept at start.
import { onInterrupt } from '../util/interrupt.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { pidAlive } from '../util/proc.js';

export const TOPO_PREFIX = 'vb';

/** The name prefix of this process's objects: vb + pid in base 36 (≤ 6 chars, so a
 *  link name prefix + 3 stays within IFNAMSIZ). */
export function topoPrefix(pid = process.pid): string {
  return `${TOPO_PREFIX}${pid.toString(36)}`;
}

/** The pid a topology name belongs to, or null when it is not one of ours. */
export function topoOwner(name: string): number | null {
  const m = /^vb([0-9a-z]+)[gds]$/.exec(name);
  return m ? parseInt(m[1]!, 36) : null;
}

export interface TopoNames {
  prefix: string;
  nsG: string; nsD: string; nsS: string;
  /** G's veth, D's veth toward G (the pod port), D's veth toward S (the uplink), S's veth. */
  g: string; dg: string; ds: string; s: string;
}

export function topoNames(prefix = topoPrefix()): TopoNames {
  return {
    prefix, nsG: `${prefix}g`, nsD: `${prefix}d`, nsS: `${prefix}s`,
    g: `${prefix}g0`, dg: `${prefix}dg`, ds: `${prefix}ds`, s: `${prefix}s0`,
  };
}

/** Fixed addresses of the topology. MACs are locally administered and fixed so frames
 *  can be built before the links exist. */
export const ADDR = {
  gMac: '02:00:00:00:00:fd',      // G's interface, the pod's MAC (the attachment)
  remoteMac: '02:00:00:00:00:fe', // the inner destination of encap traffic (behind S)
  dgMac: '02:00:00:00:01:01',
  dsMac: '02:00:00:00:01:02',
  sMac: '02:00:00:00:02:01',
  vtepD: '192.0.2.1',
  vtepS: '192.0.2.2',
  overlayG: '10.99.0.1',
  overlayS: '10.99.0.2',
  underlayMtu: 1600,
} as const;

/** The largest inner frame the topology carries: G's and the overlay's MTU is 1500. */
export const IO_MAX_INNER_FRAME = 1514;

const live = new Set<Topology>();
let hooked = false;
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => { for (const t of live) t.destroy(); });
  onInterrupt(() => { for (const t of live) t.destroy(); });
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err || (e as Error).message}`);
  }
}

/** Deletes namespaces of earlier bench processes that died without cleaning up. */
export function sweepStaleTopologies(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const gone: string[] = [];
  for (const line of (r.stdout ?? '').split('\n')) {
    const n = line.split(' ')[0]!;
    const pid = topoOwner(n);
    if (pid !== null && pid !== process.pid && !pidAlive(pid)) {
      spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      gone.push(n);
    }
  }
  return gone;
}

export class Topology {
  readonly n: TopoNames;
  private made: string[] = [];
  kernelDut = false;

  constructor(prefix = topoPrefix()) {
    this.n = topoNames(prefix);
  }

  ip(ns: string, args: string[]): string {
    return run('ip', ['-n', ns, ...args]);
  }

  sh(ns: string, cmd: string, args: string[]): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Builds the three namespaces and two veth pairs. dutCpu: RPS steers D's kernel
   *  receive processing to that CPU (both DUTs alike). napi: D's veths receive through
   *  NAPI (GRO on), as a NIC driver does; a live-frames generator needs it, since veth
   *  drops frames sent by ndo_xdp_xmit to a peer without NAPI (with an XDP program, as
   *  our AF_XDP DUT has, the veth runs NAPI anyway). */
  create(dutCpu: number, napi = false): void {
    hook();
    live.add(this);
    const n = this.n;
    for (const ns of [n.nsG, n.nsD, n.nsS]) {
      run('ip', ['netns', 'add', ns]);
      this.made.push(ns);
      this.ip(ns, ['link', 'set', 'lo', 'up']);
      // No IPv6 chatter (DAD, router solicitations) on the measured links.
      this.sh(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    run('ip', ['link', 'add', n.g, 'netns', n.nsG, 'address', ADDR.gMac, 'type', 'veth', 'peer', 'name', n.dg, 'netns', n.nsD, 'address', ADDR.dgMac]);
    run('ip', ['link', 'add', n.ds, 'netns', n.nsD, 'address', ADDR.dsMac, 'mtu', String(ADDR.underlayMtu), 'type', 'veth',
      'peer', 'name', n.s, 'netns', n.nsS, 'address', ADDR.sMac, 'mtu', String(ADDR.underlayMtu)]);
    for (const [ns, l] of [[n.nsG, n.g], [n.nsD, n.dg], [n.nsD, n.ds], [n.nsS, n.s]] as const) {
      this.ip(ns, ['link', 'set', l, 'up']);
    }
    const mask = (1n << BigInt(dutCpu)).toString(16);
    for (const l of [n.dg, n.ds]) this.sh(n.nsD, 'sh', ['-c', `echo ${mask} > /sys/class/net/${l}/queues/rx-0/rps_cpus`]);
    if (napi) for (const l of [n.dg, n.ds]) this.sh(n.nsD, 'ethtool', ['-K', l, 'gro', 'on']);
  }

  /** The kernel DUT: in D a bridge enslaving the pod-side veth and a vxlan device
   *  (nolearning, static default destination = S's VTEP), the underlay on the S side. */
  kernelUp(vni: number): void {
    const n = this.n, D = n.nsD;
    this.ip(D, ['addr', 'add', `${ADDR.vtepD}/24`, 'dev', n.ds]);
    this.ip(D, ['neigh', 'replace', ADDR.vtepS, 'lladdr', ADDR.sMac, 'dev', n.ds, 'nud', 'permanent']);
    // The kernel at its best: bridged frames skip the iptables hooks. With br_netfilter in
    // the kernel (built in here, loaded on most Kubernetes nodes) every bridged frame
    // otherwise runs the netfilter hooks even with empty tables: ~15% of the DUT's CPU.
    for (const k of ['iptables', 'ip6tables', 'arptables']) spawnSync('ip', ['netns', 'exec', D, 'sysctl', '-qw', `net.bridge.bridge-nf-call-${k}=0`], { stdio: 'ignore' });
    this.ip(D, ['link', 'add', 'br0', 'type', 'bridge']);
    this.ip(D, ['link', 'add', 'vx0', 'mtu', '1500', 'type', 'vxlan', 'id', String(vni), 'local', ADDR.vtepD,
      'remote', ADDR.vtepS, 'dstport', '4789', 'nolearning', 'dev', n.ds]);
    this.ip(D, ['link', 'set', 'vx0', 'master', 'br0']);
    this.ip(D, ['link', 'set', n.dg, 'master', 'br0']);
    for (const l of ['vx0', 'br0']) this.ip(D, ['link', 'set', l, 'up']);
    // Unicast both ways, as our data plane's static FDB and attachment do.
    this.sh(D, 'bridge', ['fdb', 'replace', ADDR.remoteMac, 'dev', 'vx0', 'master', 'static']);
    this.sh(D, 'bridge', ['fdb', 'replace', ADDR.gMac, 'dev', n.dg, 'master', 'static']);
    this.kernelDut = true;
  }

  kernelDown(): void {
    const n = this.n, D = n.nsD;
    spawnSync('ip', ['-n', D, 'link', 'del', 'vx0'], { stdio: 'ignore' });
    spawnSync('ip', ['-n', D, 'link', 'del', 'br0'], { stdio: 'ignore' });
    spawnSync('ip', ['-n', D, 'addr', 'flush', 'dev', n.ds], { stdio: 'ignore' });
    spawnSync('ip', ['-n', D, 'neigh', 'flush', 'dev', n.ds], { stdio: 'ignore' });
    this.kernelDut = false;
  }

  /** For latency: G gets an overlay address, S a kernel vxlan device as the far VTEP
   *  (it answers pings from G through the DUT's encap and decap). */
  reflectorUp(vni: number): void {
    const n = this.n;
    this.ip(n.nsG, ['addr', 'replace', `${ADDR.overlayG}/24`, 'dev', n.g]);
    this.ip(n.nsS, ['addr', 'replace', `${ADDR.vtepS}/24`, 'dev', n.s]);
    this.ip(n.nsS, ['neigh', 'replace', ADDR.vtepD, 'lladdr', ADDR.dsMac, 'dev', n.s, 'nud', 'permanent']);
    this.ip(n.nsS, ['link', 'add', 'vx0', 'type', 'vxlan', 'id', String(vni), 'local', ADDR.vtepS, 'remote', ADDR.vtepD,
      'dstport', '4789', 'nolearning', 'dev', n.s]);
    this.ip(n.nsS, ['addr', 'add', `${ADDR.overlayS}/24`, 'dev', 'vx0']);
    this.ip(n.nsS, ['link', 'set', 'vx0', 'up']);
  }

  reflectorDown(): void {
    const n = this.n;
    spawnSync('ip', ['-n', n.nsS, 'link', 'del', 'vx0'], { stdio: 'ignore' });
    spawnSync('ip', ['-n', n.nsS, 'addr', 'flush', 'dev', n.s], { stdio: 'ignore' });
    spawnSync('ip', ['-n', n.nsG, 'addr', 'flush', 'dev', n.g], { stdio: 'ignore' });
    spawnSync('ip', ['-n', n.nsG, 'neigh', 'flush', 'dev', n.g], { stdio: 'ignore' });
  }

  netnsPath(ns: string): string {
    return `/run/netns/${ns}`;
  }

  /** Deletes the namespaces (their veths go with them). Idempotent. */
  destroy(): void {
    for (const ns of this.made.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    this.made = [];
    live.delete(this);
  }
}
