// Two simulated Kubernetes nodes joined by an underlay, each with its own vfplane data
// plane, and pods that get VFs through vfplane-cni exactly as under Multus. Optionally a
// third node that runs the kernel's vxlan device instead of vfplane. Used by
// `vfplane demo` and the overlay end-to-end tests; everything it makes carries the
// prefix and is removed by down(), also after a failure half-way through up(). A process
// killed before down() (SIGKILL, a closed pipe) leaves it all: the next topology to come
// up on the host sweeps it (sweepDeadTopologies).
//
//   pod netns ─VF veth─ representor ─┐                       ┌─ representor ─VF veth─ pod netns
//                           node A data plane ─ uplink ─┐ ┌─ uplink ─ node B data plane
//                                                  underlay netns: bridge ── kernel node (vxlan)
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isIP } from 'node:net';
import { createSim, destroySimIfMade } from '../sim/sim.js';
import type { SimManifest } from '../sim/manifest.js';
import { openSysfs } from '../sriov/sysfs.js';
import { listVfs } from '../sriov/discover.js';
import { request } from '../dataplane/control.js';
import { packageRoot } from '../dataplane/native.js';
import { spawnDataplane } from '../dataplane/spawn.js';
import { sweepNetdevLocks } from '../dataplane/claims.js';
import { systemError } from '../util/errors.js';
import { ip, link, netnsAdd, netnsDel, netnsList } from '../net/ip.js';
import { pidAlive, sleepSync } from '../util/proc.js';

export interface NodeSpec {
  name: string; // one letter or word; part of netdev names
  vtep: string;
}

export interface PodSpec {
  name: string;
  node: string;
  vni: number;
  ip: string; // with prefix length, e.g. 10.100.0.1/24
  namespace?: string; // the pod's Kubernetes namespace (K8S_POD_NAMESPACE); default "default"
  mtu?: number; // the CNI config's "mtu"; without it the pod gets what the overlay carries
  cniVersion?: string; // the network's; default 1.0.0
  stateDir?: string; // the network's own stateDir (its allocation store), its vxlan.socket the node's data plane; default the node's
}

export interface TopologyOptions {
  prefix: string; // ≤ 6 characters: netdev names are prefix + node + "f0r12"
  workDir: string;
  backend?: 'afpacket' | 'afxdp' | 'dpdk';
  nodes?: NodeSpec[];
  kernelNode?: { vtep: string; vni: number; ip: string } | null;
  vfsPerNode?: number;
  /** Queues of each node's uplink (the simulated PF's veth); default 1. */
  uplinkQueues?: number;
  log?: (msg: string) => void;
  /** Extra settings for every node's data-plane config. */
  dataplane?: Record<string, unknown>;
  /** The underlay bridge snoops MLD with its own querier and sends multicast to a node's
   *  port only for groups that node reported, as a switch that drops unregistered
   *  multicast does: an IPv6 VTEP is reachable only if its data plane speaks MLD. */
  snooping?: boolean;
  /** The underlay's MTU (every node's uplink and the bridge; default 9000, a jumbo
   *  underlay, so that pods at 1500 fit with the 50 bytes of outer headers). */
  underlayMtu?: number;
}

export interface Node {
  spec: NodeSpec;
  sim: SimManifest;
  root: string;
  stateDir: string;
  socket: string;
  config: string;
  proc: ChildProcess | null;
  stderr: string[];
  metricsPort: number | null;
}

export interface Pod {
  spec: PodSpec;
  netns: string; // name under /run/netns
  ifname: string;
  pci: string;
  mac: string;
  containerId: string;
  result: Record<string, unknown>;
}

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 60_000 });
  if (r.status !== 0) throw systemError(`${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout;
}
const readMac = (ifname: string) => link(ifname)?.address ?? '';
const dropNetns = (name: string) => {
  try {
    netnsDel(name);
  } catch {
    // already gone
  }
};
const quiet = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });

/** A process that has not finished exiting: alive, or a zombie leader whose other
 *  threads are still exiting (the files, and with them the locks, go with the last
 *  thread; a zombie with none left holds nothing). */
function exiting(pid: number): boolean {
  try {
    if (!/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return true;
    return readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return false; // gone
  }
}

/** Written into a topology's work directory before anything is made: whose it is, and
 *  the prefix of everything it makes. */
const MANIFEST = 'topology.json';

/**
 * Removes what topologies of processes that no longer exist left behind, for work
 * directories directly under `under` (the temp directory by default): their data-plane
 * daemons (found by the work directory in their command line), their simulated NICs,
 * every namespace named with their prefix, and the directory. Returns the directories
 * swept.
 */
export function sweepDeadTopologies(under = tmpdir()): string[] {
  const swept: string[] = [];
  const killed: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(under);
  } catch {
    return swept;
  }
  // A work directory is a temp directory of its own, or one inside such (a test's).
  const dirs = entries.flatMap((d) => {
    const top = join(under, d);
    try {
      return [top, ...readdirSync(top).map((x) => join(top, x))];
    } catch {
      return [top];
    }
  });
  for (const dir of dirs) {
    let m: { pid: number; prefix: string };
    try {
      m = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as { pid: number; prefix: string };
    } catch {
      continue; // not a topology's (or being written)
    }
    if (!Number.isInteger(m.pid) || typeof m.prefix !== 'string' || !m.prefix || pidAlive(m.pid)) continue;
    for (const pid of processesNaming(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // gone meanwhile
      }
    }
    for (const n of readdirSync(dir).filter((x) => x.startsWith('node-'))) {
      try {
        destroySimIfMade(join(dir, n, 'sys'));
      } catch {
        // best effort: what it could not remove stays named with the prefix
      }
    }
    for (const name of netnsList()) if (name.startsWith(`${m.prefix}-`)) dropNetns(name);
    rmSync(dir, { recursive: true, force: true });
    swept.push(dir);
  }
  // The daemons killed above leave the lock files of the netdevs they held (the kernel
  // drops the locks, not the files): removed once nobody holds them. A SIGKILL is
  // delivered, not awaited: a daemon still exiting holds its locks, so its exit is
  // waited for first (a few seconds at most; a zombie whose threads are all gone holds
  // nothing).
  const deadline = Date.now() + 5000;
  while (killed.some(exiting) && Date.now() < deadline) sleepSync(20);
  if (swept.length) sweepNetdevLocks();
  return swept;
}

/** Processes whose command line names something under `dir`. */
function processesNaming(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith(`${dir}/`))) out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export class Topology {
  readonly nodes = new Map<string, Node>();
  readonly pods = new Map<string, Pod>();
  readonly underlay: string;
  readonly kernelNs: string;
  private readonly underlayMtu: string;
  private readonly o: Required<Omit<TopologyOptions, 'kernelNode' | 'dataplane' | 'snooping' | 'uplinkQueues' | 'underlayMtu'>> & Pick<TopologyOptions, 'kernelNode' | 'dataplane' | 'snooping' | 'uplinkQueues'>;
  private readonly made = { netns: new Set<string>(), sims: new Set<string>() };

  constructor(o: TopologyOptions) {
    this.o = {
      backend: 'afpacket',
      nodes: [{ name: 'a', vtep: '192.0.2.1' }, { name: 'b', vtep: '192.0.2.2' }],
      vfsPerNode: 4,
      log: () => undefined,
      ...o,
    };
    this.underlay = `${o.prefix}-ul`;
    this.kernelNs = `${o.prefix}-k`;
    this.underlayMtu = String(o.underlayMtu ?? 9000);
  }

  private netnsAdd(name: string): void {
    // Recorded first: a Ctrl-C reaches `ip netns add` too (the whole process group), and
    // one killed after it made the namespace fails here having made it (down() deletes a
    // recorded name that does not exist without a word).
    this.made.netns.add(name);
    netnsAdd(name);
    ip(['link', 'set', 'lo', 'up'], name);
  }

  /** Builds the underlay, the nodes' simulated NICs, their data planes and the kernel node. */
  async up(): Promise<void> {
    const { prefix, workDir, log } = this.o;
    sweepDeadTopologies();
    mkdirSync(workDir, { recursive: true });
    writeFileSync(join(workDir, MANIFEST), JSON.stringify({ pid: process.pid, prefix }));
    this.netnsAdd(this.underlay);
    ip(['link', 'add', 'br0', 'type', 'bridge', ...(this.o.snooping ? ['mcast_snooping', '1'] : [])], this.underlay);
    // The bridge forwards multicast by its table only once a querier is active, and its
    // own querier waits one query response interval when switched on (10 s by default),
    // so that listeners can report first: 1 s here. The interval must be set before the
    // querier is switched on, hence two commands.
    // The querier needs the bridge's link-local address at once, not after DAD.
    if (this.o.snooping) {
      ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_query_response_interval', '100'], this.underlay);
      ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_querier', '1'], this.underlay);
      run('ip', ['netns', 'exec', this.underlay, 'sysctl', '-qw', 'net.ipv6.conf.br0.accept_dad=0']);
    }
    ip(['link', 'set', 'br0', 'up'], this.underlay);
    const peers = this.o.nodes.map((n) => n.vtep);
    if (this.o.kernelNode) peers.push(this.o.kernelNode.vtep);
    for (const spec of this.o.nodes) {
      const root = join(workDir, `node-${spec.name}`);
      const stateDir = join(root, 'state');
      mkdirSync(stateDir, { recursive: true });
      // Recorded first, as netnsAdd does: down() destroys what was made there, if anything.
      const simRoot = resolve(root, 'sys');
      this.made.sims.add(simRoot);
      const sim = createSim({ profile: 'sim', pfs: 1, vfs: this.o.vfsPerNode, root: simRoot, prefix: `${prefix}${spec.name}`, ...(this.o.uplinkQueues ? { uplinkQueues: this.o.uplinkQueues } : {}) });
      const pf = sim.pfs[0]!;
      // The PF's underlay end joins the underlay bridge; the PF netdev itself is the uplink.
      // A jumbo underlay, as VXLAN deployments use: pods keep MTU 1500 and the 50 bytes of
      // outer headers still fit (unless underlayMtu says otherwise).
      ip(['link', 'set', pf.netdev, 'mtu', this.underlayMtu]);
      ip(['link', 'set', pf.uplinkPeer, 'netns', this.underlay]);
      ip(['link', 'set', pf.uplinkPeer, 'mtu', this.underlayMtu, 'master', 'br0', 'up'], this.underlay);
      if (this.o.snooping) run('bridge', ['-n', this.underlay, 'link', 'set', 'dev', pf.uplinkPeer, 'mcast_flood', 'off']);
      const socket = join(stateDir, 'dataplane.sock');
      const config = join(root, 'dataplane.json');
      writeFileSync(config, JSON.stringify({
        node: spec.name,
        backend: this.o.backend,
        // DPDK reaches the simulated PF through its AF_PACKET PMD (a vdev on the netdev);
        // without hugepages (--no-huge) so a test leaves the host's pages alone.
        ...(this.o.backend === 'dpdk'
          ? { uplink: { dev: `net_af_packet${spec.name.charCodeAt(0)},iface=${pf.netdev}`, vtep: spec.vtep, mac: readMac(pf.netdev) }, dpdk: { hugepages: 0 }, cpus: [0] }
          : { uplink: { ifname: pf.netdev, vtep: spec.vtep } }),
        peers: peers.filter((p) => p !== spec.vtep).map((vtep) => ({ vtep })),
        stateDir,
        sysfsRoot: sim.root, // the node's: its registry lists the pods' allocation stores
        socket,
        ...(this.o.dataplane ?? {}),
      }, null, 2));
      const node: Node = { spec, sim, root, stateDir, socket, config, proc: null, stderr: [], metricsPort: null };
      this.nodes.set(spec.name, node);
      log(`node ${spec.name}: simulated ${sim.profile} NIC ${pf.pci} (${this.o.vfsPerNode} VFs), uplink ${pf.netdev}, VTEP ${spec.vtep}`);
    }
    if (this.o.kernelNode) this.kernelUp(this.o.kernelNode);
    for (const n of this.nodes.values()) await this.startDaemon(n);
  }

  private kernelUp(k: { vtep: string; vni: number; ip: string }): void {
    const ns = this.kernelNs;
    this.netnsAdd(ns);
    const a = `${this.o.prefix}k0`;
    const b = `${this.o.prefix}k1`;
    ip(['link', 'add', a, 'netns', ns, 'type', 'veth', 'peer', 'name', b, 'netns', this.underlay]);
    ip(['link', 'set', b, 'mtu', this.underlayMtu, 'master', 'br0', 'up'], this.underlay);
    // An IPv6 VTEP skips duplicate address detection, which would hold it back a second.
    ip(['addr', 'add', isIP(k.vtep) === 6 ? `${k.vtep}/64` : `${k.vtep}/24`, 'dev', a, ...(isIP(k.vtep) === 6 ? ['nodad'] : [])], ns);
    ip(['link', 'set', a, 'mtu', this.underlayMtu, 'up'], ns);
    // Like a NIC, the kernel node's port finishes checksums and segments itself, so its
    // frames on the (veth) underlay are what a wire would carry.
    quiet('ip', ['netns', 'exec', ns, 'ethtool', '-K', a, 'tx', 'off']);
    ip(['link', 'add', 'vx0', 'mtu', '1500', 'type', 'vxlan', 'id', String(k.vni), 'dstport', '4789', 'local', k.vtep, 'dev', a], ns);
    // Head-end replication to every vfplane node: the all-zeros FDB entry, once per VTEP.
    for (const n of this.o.nodes) run('bridge', ['-n', ns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', n.vtep]);
    ip(['addr', 'add', k.ip, 'dev', 'vx0'], ns);
    ip(['link', 'set', 'vx0', 'up'], ns);
    this.o.log(`kernel node: vxlan device vx0 (VNI ${k.vni}) in netns ${ns}, VTEP ${k.vtep}, ${k.ip}`);
  }

  async startDaemon(n: Node): Promise<void> {
    n.stderr = [];
    const { proc, ready } = await spawnDataplane(n.config, `the data plane of node ${n.spec.name}`, n.stderr);
    n.proc = proc;
    n.metricsPort = ready.metricsPort;
    this.o.log(`node ${n.spec.name}: data plane running (pid ${proc.pid}), control socket ${n.socket}`);
  }

  async stopDaemon(n: Node, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = n.proc;
    if (!p || p.exitCode !== null) return;
    const done = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(t);
    n.proc = null;
  }

  /** A pod on a node: its own netns, a VF through vfplane-cni ADD with vxlan. */
  async addPod(spec: PodSpec): Promise<Pod> {
    const n = this.nodes.get(spec.node);
    if (!n) throw systemError(`no node ${spec.node}`);
    const netns = `${this.o.prefix}-${spec.name}`;
    this.netnsAdd(netns);
    const used = new Set([...this.pods.values()].filter((p) => p.spec.node === spec.node).map((p) => p.pci));
    const sysfs = await openSysfs(n.sim.root);
    const vf = listVfs(sysfs).find((v) => !used.has(v.pci));
    if (!vf) throw systemError(`node ${spec.node} has no free VF for pod ${spec.name}`);
    const containerId = `${this.o.prefix}-${spec.name}-ctr`;
    const r = this.cni('ADD', n, spec, netns, containerId, vf.pci);
    const iface = (r.interfaces as { name: string; mac: string }[])[0]!;
    const pod: Pod = { spec, netns, ifname: 'eth0', pci: vf.pci, mac: iface.mac, containerId, result: r };
    this.pods.set(spec.name, pod);
    this.o.log(`pod ${spec.name} on node ${spec.node}: VF ${vf.pci} as eth0 ${iface.mac}, ${spec.ip}, VNI ${spec.vni}`);
    return pod;
  }

  async delPod(name: string): Promise<void> {
    const p = this.pods.get(name);
    if (!p) return;
    const n = this.nodes.get(p.spec.node)!;
    this.cni('DEL', n, p.spec, p.netns, p.containerId, p.pci);
    this.pods.delete(name);
    dropNetns(p.netns);
    this.made.netns.delete(p.netns);
  }

  /** CNI CHECK of a pod's attachment, as a runtime runs it (with the ADD result). */
  check(name: string): { ok: boolean; output: string } {
    const p = this.pods.get(name)!;
    try {
      this.cni('CHECK', this.nodes.get(p.spec.node)!, p.spec, p.netns, p.containerId, p.pci, p.result);
      return { ok: true, output: '' };
    } catch (e) {
      return { ok: false, output: (e as Error).message };
    }
  }

  private cni(cmd: 'ADD' | 'DEL' | 'CHECK', n: Node, spec: PodSpec, netns: string, containerId: string, pci: string, prevResult?: Record<string, unknown>): Record<string, unknown> {
    const conf = {
      cniVersion: spec.cniVersion ?? '1.0.0',
      name: `overlay-${spec.vni}`,
      type: 'vfplane-cni',
      deviceID: pci,
      sysfsRoot: n.sim.root,
      stateDir: spec.stateDir ?? n.stateDir,
      vxlan: { vni: spec.vni, ...(spec.stateDir ? { socket: n.socket } : {}) },
      ...(spec.mtu ? { mtu: spec.mtu } : {}),
      ipam: { type: 'static', addresses: [{ address: spec.ip }] },
      ...(prevResult ? { prevResult } : {}),
    };
    const bin = join(packageRoot(), 'bin', 'vfplane-cni.js');
    const r = spawnSync(process.execPath, [bin], {
      input: JSON.stringify(conf),
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        ...process.env,
        CNI_COMMAND: cmd,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: `/run/netns/${netns}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni',
        CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=${spec.namespace ?? 'default'};K8S_POD_NAME=${spec.name}`,
      },
    });
    if (r.status !== 0) throw systemError(`vfplane-cni ${cmd} for pod ${spec.name} failed: ${r.stdout || r.stderr}`);
    return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
  }

  /** Runs a command inside a pod's netns. */
  exec(pod: string, cmd: string[], timeoutMs = 30_000): { code: number; stdout: string; stderr: string } {
    const p = this.pods.get(pod);
    const ns = p ? p.netns : pod;
    const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: timeoutMs });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  ping(from: string, to: string, count = 3): { ok: boolean; received: number; rtts: number[] } {
    const r = this.exec(from, pingArgs(to, count));
    return pingResult(r.code, r.stdout);
  }

  /** ping() without blocking: several run at once (a check that must get no reply waits
   *  out its -W, and need not wait for the others'). */
  pingAsync(from: string, to: string, count = 3): Promise<{ ok: boolean; received: number; rtts: number[] }> {
    const p = this.pods.get(from);
    return new Promise((res) => {
      execFile('ip', ['netns', 'exec', p ? p.netns : from, ...pingArgs(to, count)], { encoding: 'utf8', timeout: 30_000 }, (err, stdout) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        res(pingResult(code, stdout ?? ''));
      });
    });
  }

  async control(node: string, req: Record<string, unknown>): Promise<Record<string, unknown>> {
    return request(this.nodes.get(node)!.socket, req);
  }

  /** Every node's data-plane log lines so far, each marked with its node ("[a] …"); the
   *  last LAST of each node's when given. For a failure's report. */
  logLines(last?: number): string[] {
    return [...this.nodes.values()].flatMap((n) => (last === undefined ? n.stderr : n.stderr.slice(-last)).map((l) => `[${n.spec.name}] ${l}`));
  }

  /** Removes everything, in an order that never strands a netdev: pods (CNI DEL while
   *  the data planes run), data planes, simulators, namespaces. Never throws. */
  async down(): Promise<string[]> {
    const problems: string[] = [];
    // Each step is tried twice: a Ctrl-C reaches the whole process group, and a child it
    // kills (a CNI DEL, an `ip`) fails the first try; the second runs after it.
    const twice = async (step: () => unknown): Promise<boolean> => {
      for (let attempt = 1; ; attempt++) {
        try {
          await step();
          return true;
        } catch (e) {
          if (attempt < 2) continue;
          problems.push((e as Error).message);
          return false;
        }
      }
    };
    for (const name of [...this.pods.keys()]) await twice(() => this.delPod(name));
    for (const n of this.nodes.values()) {
      try {
        await this.stopDaemon(n);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    let simsLeft = false;
    for (const root of this.made.sims) if (!(await twice(() => destroySimIfMade(root)))) simsLeft = true;
    for (const ns of this.made.netns) dropNetns(ns);
    this.made.netns.clear();
    this.made.sims.clear();
    // What could not be removed stays listed in the work directory (topology.json), for
    // the next demo's sweep (sweepDeadTopologies) to find; only a clean teardown removes it.
    if (!simsLeft) {
      try {
        rmSync(this.o.workDir, { recursive: true, force: true });
      } catch {
        // leftovers in a temp dir are harmless
      }
    }
    return problems;
  }
}

const pingArgs = (to: string, count: number) => ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to];

function pingResult(code: number, stdout: string): { ok: boolean; received: number; rtts: number[] } {
  const m = /(\d+) received/.exec(stdout);
  const rtts = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((x) => Number(x[1]));
  return { ok: code === 0, received: m ? Number(m[1]) : 0, rtts };
}
