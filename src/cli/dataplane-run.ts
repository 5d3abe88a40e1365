// The work behind `vfplane dataplane …`: the daemon in the foreground, and the client
// side of its control socket with human tables or --json.
import Table from 'cli-table3';
import { listTable } from './table.js';
import { formatVniRanges, loadConfig, reloadSummary, socketPath } from '../dataplane/config.js';
import { request } from '../dataplane/control.js';
import { statusWarnings, type StatusReply, type StatusWarning } from './dataplane-warnings.js';
import { countsText, printJson } from './output.js';

interface ClientOpts {
  socket?: string;
  stateDir?: string;
  json?: boolean;
}

/** The socket a client asks: --socket, else the environment's (checked as the daemon
 *  checks it), else the one under the state directory. */
async function sock(o: ClientOpts): Promise<string> {
  return o.socket ?? (await envPath('VFPLANE_DATAPLANE_SOCKET')) ?? socketPath({ stateDir: o.stateDir ?? (await envPath('VFPLANE_STATE_DIR')) ?? '/var/lib/vfplane' });
}

/** How often the running data plane checks that its uplink is still there. */
const UPLINK_CHECK_MS = 2000;

/** An absolute path from the environment, or undefined when unset or empty. */
async function envPath(name: string): Promise<string | undefined> {
  const v = process.env[name];
  if (!v) return undefined;
  if (!v.startsWith('/')) {
    const { invalid } = await import('../util/errors.js');
    throw invalid(`${name}=${JSON.stringify(v)} is not an absolute path; set it to one, or unset it`);
  }
  return v;
}

export async function dpRun(o: { config: string; metrics?: string; socket?: string; stateDir?: string; json?: boolean }): Promise<void> {
  // The state directory and socket the clients and vfplane-cni find through the same
  // environment, when the config file does not name them (flags > file > environment).
  const fallback = { stateDir: await envPath('VFPLANE_STATE_DIR'), socket: await envPath('VFPLANE_DATAPLANE_SOCKET') };
  const read = () => {
    const cfg = loadConfig(o.config, fallback);
    if (o.metrics) cfg.metrics = o.metrics;
    if (o.socket) cfg.socket = o.socket;
    if (o.stateDir) cfg.stateDir = o.stateDir;
    return cfg;
  };
  const { Daemon } = await import('../dataplane/daemon.js');
  const d = new Daemon(read(), undefined, { reread: read });
  // SIGHUP reloads the config file, as `vfplane dataplane reload` does over the socket.
  // Every signal is handled from the start: one that arrives while the daemon starts
  // must not kill it with its default action, which would leave the netdevs it has
  // claimed so far claimed. SIGHUP is ignored then (and said so); SIGTERM/SIGINT stop it
  // as soon as it has started. A second SIGTERM/SIGINT forces the exit.
  let started = false;
  process.on('SIGHUP', () => {
    if (!started) return d.log.warn('SIGHUP while starting: ignored; send it again once the data plane runs');
    d.reloadInTurn().catch((e: Error) => d.log.warn(`SIGHUP: config not reloaded: ${e.message}`));
  });
  let stopping: string | null = null;
  let wake: (() => void) | null = null;
  const onStop = (sig: NodeJS.Signals) => {
    if (stopping) {
      d.log.warn(`${sig} again: exiting at once; what the data plane holds stays claimed until its next start or \`vfplane dataplane unclaim\``);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    stopping = sig;
    if (started) d.log.info(`${sig}: draining and stopping`);
    else d.log.info(`${sig} while starting: stopping once started`);
    wake?.();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  await d.start();
  started = true;
  // An uplink deleted (or made again) under the data plane leaves it bound to nothing,
  // every frame lost without a word. It stops then and exits 1, so that its supervisor
  // (the DaemonSet) starts it again on the uplink that is there.
  // The control socket's file is checked on the same beat: removed, it is made again.
  // So are vfplane-cni's attachments: one whose VF was released without a detach reaching
  // this data plane is detached.
  const watch = setInterval(() => {
    d.keepSocket().catch((e: Error) => d.log.warn(`control socket ${d.socket} was removed and could not be made again: ${e.message}`));
    d.dropReleased().catch((e: Error) => d.log.warn(`could not check the attachments against the allocation store: ${e.message}`));
    d.followUplink().catch((e: Error) => d.log.warn(`could not follow the uplink's MTU, link and MAC: ${e.message}`));
    d.watchLearning();
    void d.uplinkLost().then((why) => {
      if (!why || stopping) return;
      d.log.error(`uplink ${why}: nothing reaches the overlay through it; stopping (exit 1) so that the data plane is started again on the uplink that is there`);
      process.exitCode = 1;
      stopping = 'uplink lost';
      wake?.();
    });
  }, UPLINK_CHECK_MS);
  watch.unref();
  if (!stopping) {
    if (o.json) process.stdout.write(JSON.stringify({ ready: true, socket: d.socket, metricsPort: d.metricsPort, pid: process.pid }) + '\n');
    await new Promise<void>((resolve) => { wake = resolve; });
  }
  clearInterval(watch);
  await d.stop(200);
  const c = d.counters();
  // Why it stopped, and its exit status: a supervisor's line reader tells a signal's clean
  // stop from the uplink lost (exit 1) without the log.
  if (o.json) process.stdout.write(JSON.stringify({ stopped: true, reason: stopping ?? 'stopped', exitCode: typeof process.exitCode === 'number' ? process.exitCode : 0, encapPkts: Number(c.engine.encapPkts ?? 0n), decapPkts: Number(c.engine.decapPkts ?? 0n) }) + '\n');
  d.log.info(`stopped: ${c.engine.encapPkts ?? 0n} encapsulated, ${c.engine.decapPkts ?? 0n} decapsulated`);
}

/** Where the workers run: the CPUs they are pinned to, "unpinned" for one that is not
 *  (cpu -1: the scheduler moves it, so no CPU is its). */
function workersWhere(ws: { cpu: number }[]): string {
  if (ws.length && ws.every((w) => w.cpu < 0)) return 'unpinned (cpus: -1 or not set)';
  return `on CPU ${ws.map((w) => (w.cpu < 0 ? 'unpinned' : String(w.cpu))).join(',')}`;
}

/** Whose an attachment is: the pod vfplane-cni attached (its container when the runtime
 *  gave no pod name) and its interface, or "-" for the operator's (config, `dataplane attach`). */
function podOf(o?: Record<string, string>): string {
  if (!o?.containerId) return '-';
  const who = o.podNamespace && o.podName ? `${o.podNamespace}/${o.podName}` : `container ${o.containerId.slice(0, 12)}`;
  return o.ifname ? `${who} (${o.ifname})` : who;
}

export async function dpStatus(o: ClientOpts): Promise<void> {
  const r = await request(await sock(o), { op: 'status' });
  if (o.json) return printJson(strip(r));
  const s = r as unknown as StatusReply;
  const warnings = statusWarnings(s);
  const warn = (about: StatusWarning['about']) => {
    for (const w of warnings) if (w.about === about) console.log(`warning: ${w.text}`);
  };
  const zc = (s.uplink as { zerocopy?: boolean }).zerocopy;
  console.log(`node ${s.node}: ${s.backend} backend, uplink ${s.uplink.name}${s.uplink.mode ? ` (${s.uplink.mode}${zc === true ? ', zero-copy' : zc === false ? ', copy' : ''})` : ''}, VTEP ${s.uplink.vtep}${s.uplink.vlan != null ? ` on underlay VLAN ${s.uplink.vlan}` : ''}${s.dstPort ? ` (VXLAN on UDP ${s.dstPort})` : ''}, epoch ${s.epoch}, ${s.workers.length} worker(s) ${workersWhere(s.workers)}`);
  // uplink.why explains the AF_XDP mode chosen (afxdp), or the tx offloads (dpdk): each
  // beside what it explains.
  const pl = s.polling;
  if (pl) console.log(`polling: bursts of ${pl.burst} frames, ${pl.idleSpins ? `sleeping after ${pl.idleSpins} empty polls (idleSpins)` : 'never sleeping (idleSpins 0: busy-poll)'}; storm control: ${pl.floodPps ? `${pl.floodPps} flooded frames a second a pod (floodPps)` : 'off (floodPps)'}`);
  const why = s.uplink.why;
  if (why && s.backend === 'afxdp') console.log(`uplink mode: ${why}`);
  warn('uplink');
  const ot = s.uplink.offload;
  if (ot) console.log(`offload tier ${ot.tier}${ot.allowed !== null ? ` (the hw-profile allows ${ot.allowed})` : ''}: ${ot.why}`);
  const oc = s.uplink.outerChecksums;
  // Over an IPv6 underlay there is no IPv4 header, and the UDP checksum is always on.
  const by = (x: string) => (x === 'device' ? 'NIC' : 'CPU');
  if (oc) console.log(`outer checksums: ${s.uplink.vtep.includes(':') ? `UDP (always, over IPv6) by the ${by(oc.udp)}` : `IPv4 header by the ${by(oc.ipv4)}, UDP (when on) by the ${by(oc.udp)}`}${why && s.backend !== 'afxdp' ? ` (${why})` : ''}`);
  const tenants = (r as { tenants?: { namespaces: string[]; vnis: string }[] }).tenants ?? [];
  console.log(`tenants: ${tenants.length ? tenants.map((t) => `${t.namespaces.join(', ')} → VNI ${t.vnis}`).join('; ') : 'none (any namespace may use any VNI)'}`);
  const lr = s.learning;
  if (s.uplink.mtu) console.log(`MTU: underlay ${s.uplink.mtu}, so pods' packets of up to ${s.uplink.overlayMtu} bytes cross the overlay`);
  if (s.uplink.link) console.log(`uplink link: ${s.uplink.link === 'up' ? 'up' : s.uplink.link === 'down' ? 'DOWN' : 'NO CARRIER'}${s.uplink.linkSecondsAgo !== undefined ? ` for ${s.uplink.linkSecondsAgo} s` : ''}${s.uplink.linkDowns ? `; down ${s.uplink.linkDowns} time(s) since the start` : ''}; MAC ${s.uplink.mac}`);
  if (lr) console.log(`learned FDB: ${lr.entries} of ${lr.capacity} entries a worker (learnCapacity)${lr.perVni ? `, at most ${lr.perVni} a VNI (learnPerVni)` : ''}${lr.on ? '' : '; learning is off'}`);
  warn('learning');
  if (!s.peers.length) console.log('peers: none');
  else {
    // Why a remote node is unreachable is most often here: a peer whose MAC nobody answered for.
    const pe = listTable(['peer VTEP', 'underlay MAC', 'state', 'ARP/ND requests', 'encap pkts', 'decap pkts', 'last frame from it']);
    for (const p of s.peers) {
      pe.push([
        p.vtep, (p.underlayMac ?? '-') + (p.via ? ` (gateway ${p.via})` : ''),
        (p.state === 'resolved'
          ? `resolved${p.resolvedSecondsAgo !== undefined ? ` ${p.resolvedSecondsAgo} s ago` : ''}` +
            (p.heardSecondsAgo !== undefined && p.heardSecondsAgo !== p.resolvedSecondsAgo
              ? p.heardSecondsAgo > (s.neighReachableSeconds ?? 30) + 3 ? `; not heard from for ${p.heardSecondsAgo} s (asked again while traffic goes to it)` : `; heard ${p.heardSecondsAgo} s ago`
              : '')
          : p.state === 'unresolved' ? 'UNRESOLVED (no ARP/ND answer)' : p.state ?? '-') +
          (p.pathMtu ? `; path MTU ${p.pathMtu} (a router's)` : ''),
        p.requests ?? 0, p.encapPkts ?? 0, p.decapPkts ?? '-',
        p.decapPkts === undefined ? '-' : p.lastFrameSecondsAgo === undefined ? 'never' : `${p.lastFrameSecondsAgo} s ago`,
      ]);
    }
    console.log(pe.toString());
  }
  warn('peers');
  // Where broadcast and unknown unicast go (head-end replication): a VNI's own list, or
  // every peer.
  // A data plane from before flood lists were reported says nothing of them: that is
  // not "none set".
  const floods = (r as { floods?: { vni: number; vteps: string[] }[] }).floods;
  if (!floods) console.log('flood lists: not reported by this data plane (a vfplane older than this CLI); its config file says which VNIs have one');
  else console.log(`flood lists: ${floodListsText(floods)}${floods.length ? '; other VNIs' : 'none set; every VNI'} → every peer`);
  const t = listTable(['representor', 'VF', 'VNI', 'MAC', 'pod', 'netdev']);
  for (const a of s.attachments) t.push([a.representor, a.pci ?? '-', a.vni, a.mac, podOf(a.owner), a.representorState ?? '-']);
  console.log(s.attachments.length ? t.toString() : 'no attachments');
  warn('attachments');
  // What each port's backend reports of its own pressure and drops.
  // "host stack": whether the kernel also gets what the port receives (AF_PACKET; AF_XDP
  // and DPDK take the frames away from it anyway). "buffers": the rings, UMEM or mbuf
  // pool the port holds, so an operator sees what each attached VF costs.
  const pt = listTable(['port', 'backend', 'queues', 'buffers', 'tx ring full', 'rx no buffer', 'backend drops', 'host stack']);
  let total = 0;
  for (const p of s.ports ?? []) {
    const d = countsText(p.drops);
    const stack = p.stackDrop === undefined ? '-' : p.stackDrop ? 'gets nothing' : `gets a copy (${p.stackDropNote ?? 'not asked'})`;
    total += p.ringBytes ?? 0;
    pt.push([p.name, p.kind ?? '-', p.queues ?? '-', p.ringBytes === undefined ? '-' : mib(p.ringBytes), p.txFull ?? '-', p.rxNombuf ?? '-', d || 'none', stack]);
  }
  if (s.ports?.length) console.log(pt.toString());
  if (total) console.log(`port buffers: ${mib(total)} in all`);
  // A sender that leaves its checksums to the device (a veth pod with tx offload on):
  // finished in software, which costs a pass over each such frame.
  for (const p of s.ports ?? []) {
    if (p.csumFinished || p.csumLeft) {
      console.log(`${p.name}: ${p.csumFinished ?? 0} frame(s) arrived with their TCP/UDP checksum left to the device (tx checksum offload on the sender's end), finished here${p.csumLeft ? `; ${p.csumLeft} could not be (not TCP/UDP over IPv4/IPv6) and went as they were` : ''}; \`ethtool -K <the pod's interface> tx off\` saves the pass`);
    }
  }
  // One line per different thing given back, naming its netdevs: a node with hundreds of
  // representors holds them all alike, and a line each buried the rest of the status.
  const held = (r as { held?: { netdev: string; netns?: string; givesBack: string[] }[] }).held ?? [];
  const alike = new Map<string, string[]>();
  for (const h of held) {
    const what = h.givesBack.length ? `gives back ${h.givesBack.join(', ')} when released` : 'changed nothing that needs giving back';
    alike.set(what, [...(alike.get(what) ?? []), `${h.netdev}${h.netns ? ` (in ${h.netns})` : ''}`]);
  }
  for (const [what, netdevs] of alike) {
    const names = netdevs.length > 8 ? `${netdevs.length} netdevs (${netdevs.slice(0, 4).join(', ')}, …, ${netdevs.at(-1)}; --json lists them)` : netdevs.join(', ');
    console.log(`holds ${names}: ${what}`);
  }
}

type Counters = {
  drops: Record<string, number>;
  ports: { name: string; rxPkts: number; txPkts: number; rxBytes: number; txBytes: number; drops: number; errors?: number }[];
  vnis: { vni: number; encapPkts: number; decapPkts: number; floodPkts: number; localPkts: number; drops: number }[];
  engine: Record<string, number>;
  peers?: { vtep: string; state: string; encapPkts: number; encapBytes: number; decapPkts?: number; decapBytes?: number }[];
  misc?: Record<string, number>;
  workers?: { cpu: number; loops: number; busyLoops: number; learnedEntries: number }[];
};

export async function dpStats(o: ClientOpts & { interval?: number }): Promise<void> {
  const r1 = await request(await sock(o), { op: 'stats' });
  const first = r1.counters as Counters;
  let portDrops = (r1.portDrops ?? {}) as Record<string, Record<string, number>>;
  let rates: Map<string, number> | null = null;
  let peerRates: Map<string, { pps: number; mbps: number }> | null = null;
  let dropRates: Record<string, number> | null = null;
  // Share of each worker's polls that found work: over the interval, or since start.
  let busy = (first.workers ?? []).map((w) => (w.loops ? w.busyLoops / w.loops : 0));
  if (o.interval) {
    await new Promise((r) => setTimeout(r, o.interval));
    const r2 = await request(await sock(o), { op: 'stats' });
    const second = r2.counters as Counters;
    portDrops = (r2.portDrops ?? {}) as Record<string, Record<string, number>>;
    rates = new Map();
    for (const p of second.ports) {
      const a = first.ports.find((x) => x.name === p.name);
      rates.set(p.name, ((p.rxPkts - (a?.rxPkts ?? 0)) * 1000) / o.interval);
    }
    peerRates = new Map();
    for (const p of second.peers ?? []) {
      const a = first.peers?.find((x) => x.vtep === p.vtep);
      peerRates.set(p.vtep, {
        pps: ((p.encapPkts - (a?.encapPkts ?? 0)) * 1000) / o.interval,
        mbps: ((p.encapBytes - (a?.encapBytes ?? 0)) * 8) / 1000 / o.interval,
      });
    }
    dropRates = Object.fromEntries(Object.entries(second.drops).map(([k, v]) => [k, ((v - (first.drops[k] ?? 0)) * 1000) / o.interval!]));
    busy = (second.workers ?? []).map((w, i) => {
      const a = first.workers?.[i];
      const loops = w.loops - (a?.loops ?? 0);
      return loops > 0 ? (w.busyLoops - (a?.busyLoops ?? 0)) / loops : 0;
    });
    if (o.json) return printJson({ counters: second, portDrops, rxPps: Object.fromEntries(rates), peerEncap: Object.fromEntries(peerRates), dropsPerSec: dropRates });
    Object.assign(first, second);
  }
  if (o.json) return printJson({ counters: first, portDrops });
  // "port drops": lost by the port's backend before the workers saw them (a full ring…).
  const own = (name: string) => countsText(portDrops[name]) || 0;
  // Whose each port is: the uplink, or an attachment's VNI and pod (absent from older data planes).
  const owners = (r1.ports ?? null) as Record<string, { uplink?: true; vni?: number; owner?: Record<string, string> }> | null;
  const whose = (name: string) => {
    const w = owners?.[name];
    return !w ? '-' : w.uplink ? 'uplink' : `VNI ${w.vni}, ${podOf(w.owner)}`;
  };
  const t = listTable(['port', ...(owners ? ['for'] : []), 'rx pkts', 'tx pkts', 'rx bytes', 'tx bytes', 'drops', 'port drops', ...(rates ? ['rx pps'] : [])]);
  for (const p of first.ports) t.push([p.name, ...(owners ? [whose(p.name)] : []), p.rxPkts, p.txPkts, p.rxBytes, p.txBytes, p.drops, own(p.name), ...(rates ? [Math.round(rates.get(p.name) ?? 0)] : [])]);
  console.log(t.toString());
  for (const p of first.ports.filter((x) => x.errors)) {
    console.log(`note: ${p.name} reported ${p.errors} socket error(s): its netdev went down (or was deleted) while the data plane read it; \`vfplane dataplane status\` says whether it is still there`);
  }
  const v = listTable(['VNI', 'encap', 'decap', 'flooded', 'local', 'drops']);
  for (const x of first.vnis) v.push([x.vni, x.encapPkts, x.decapPkts, x.floodPkts, x.localPkts, x.drops]);
  console.log(v.toString());
  if (first.peers?.length) {
    // What went to each remote node: the overlay's traffic matrix from this side.
    const pt = listTable(['peer VTEP', 'MAC state', 'encap pkts', 'encap bytes', 'decap pkts', 'decap bytes', ...(peerRates ? ['encap pps', 'encap Mbit/s'] : [])]);
    for (const p of first.peers) {
      const r = peerRates?.get(p.vtep);
      pt.push([p.vtep, p.state, p.encapPkts, p.encapBytes, p.decapPkts ?? '-', p.decapBytes ?? '-', ...(peerRates ? [Math.round(r?.pps ?? 0), (r?.mbps ?? 0).toFixed(1)] : [])]);
    }
    console.log(pt.toString());
  }
  const dropList = Object.entries(first.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}${dropRates ? ` (${Math.round(dropRates[k] ?? 0)}/s)` : ''}`);
  console.log(`drops: ${dropList.join(', ') || 'none'}${dropList.length ? ' (which frames: `vfplane dataplane drops [--reason R]`)' : ''}`);
  if (first.workers?.length) {
    // A worker busy in every poll is at its limit; idle ones sleep in poll() (idleSpins).
    console.log(`workers: ${first.workers.map((w, i) => `${w.cpu < 0 ? `worker ${i} unpinned` : `CPU ${w.cpu}`} ${(100 * (busy[i] ?? 0)).toFixed(0)}% of polls busy`).join(', ')}${o.interval ? ` (over ${o.interval} ms)` : ' (since start; --interval for now)'}`);
  }
  const dc = first.misc ?? {};
  const tb = dc.icmpTooBig ?? 0, tbl = dc.icmpTooBigLimited ?? 0;
  if (tb + tbl > 0) {
    // Pods whose MTU is over what the underlay carries: their path MTU discovery is told.
    console.log(`ICMP too big: ${tb} sent to pods whose packets were over the overlay's MTU${tbl ? `, ${tbl} not sent (over the workers' ICMP rate limit)` : ''}`);
  }
  const hit = dc.destCacheHits ?? 0, miss = dc.destCacheMisses ?? 0, bypassed = dc.destCacheBypassed ?? 0;
  if (hit + miss + bypassed > 0) {
    // Pods spreading over more hosts than a worker's cache holds show as bypassed.
    console.log(`destination cache: ${hit} hits, ${miss} misses${bypassed ? `, ${bypassed} resolved with it bypassed (pods sending to more destinations than it holds)` : ''}`
      + ` — ${((100 * hit) / (hit + miss + bypassed)).toFixed(1)}% of pod bursts' destinations answered from it`);
  }
  const sh = dc.srcCacheHits ?? 0, sm = dc.srcCacheMisses ?? 0, sb = dc.srcCacheBypassed ?? 0;
  if (sh + sm + sb > 0) {
    // What a decapsulated frame's source needs (the check against the static entries,
    // learning) is kept per source: none of it with neither static entries nor learning.
    console.log(`source cache: ${sh} hits, ${sm} misses${sb ? `, ${sb} with it bypassed (peers sending from more MACs than it holds)` : ''}`
      + ` — ${((100 * sh) / (sh + sm + sb)).toFixed(1)}% of decapsulated bursts' sources answered from it`);
  }
}

/** A --pci given as PF#N, as the vf commands take it: its address, read from sysfs. */
async function vfAddress(ref: string | undefined, root: string | undefined): Promise<string | undefined> {
  if (!ref?.includes('#')) return ref;
  const [{ openSysfs }, { resolveVf }] = await Promise.all([import('../sriov/sysfs.js'), import('../sriov/discover.js')]);
  return resolveVf(await openSysfs(root), ref).pci;
}

export async function dpAttach(o: ClientOpts & { representor: string; vni: number; mac: string; pci?: string; netns?: string; sysfsRoot?: string }): Promise<void> {
  o = { ...o, pci: await vfAddress(o.pci, o.sysfsRoot) };
  const pci = o.netns ? o.pci : await checkRepresentor(o.representor, o.pci, o.sysfsRoot);
  const r = await request(await sock(o), { op: 'attach', representor: o.representor, vni: o.vni, mac: o.mac, ...(pci ? { pci } : {}), ...(o.netns ? { netns: o.netns } : {}) });
  // Warnings go to stderr with --json too: stdout keeps its one JSON document.
  if (o.json) printJson(strip(r));
  else console.log(`attached ${o.representor}${pci && !o.pci ? ` (VF ${pci})` : ''} to VNI ${o.vni} (epoch ${r.epoch})`);
  if (pci) await warnUnallocated(pci, o.sysfsRoot);
  lasts(r);
}

/**
 * What sysfs says of the netdev about to be attached, before the data plane is asked:
 * a VF's own netdev is not its representor (the pod's side, not the host's); with --pci
 * the VF must be there and its representor, when known, this one (the data plane would
 * otherwise forward for the wrong VF); without it, the VF this representor stands for,
 * if any, so that the attachment names its VF as one made with --pci does (`detach
 * --pci`, status, and `pf set-numvfs` guarding it). Read through --sysfs-root, so that
 * a simulated NIC's VFs are checked as a real NIC's are; the data plane checks the
 * first again through /sys. Only in the data plane's own namespace (sysfs shows this
 * one's netdevs). Returns the VF's PCI address to attach with.
 */
async function checkRepresentor(rep: string, pci: string | undefined, root: string | undefined): Promise<string | undefined> {
  const [{ openSysfs }, { findRepresentor, listVfs, vfOfRepresentor }, { invalid }, { ownNetdevRefusal }] = await Promise.all([
    import('../sriov/sysfs.js'), import('../sriov/discover.js'), import('../util/errors.js'), import('../dataplane/uplink-profile.js'),
  ]);
  const sysfs = await openSysfs(root);
  let vfs: ReturnType<typeof listVfs>;
  try {
    vfs = listVfs(sysfs);
  } catch {
    return pci; // a tree that cannot be read through: the data plane's own checks stand
  }
  const own = vfs.find((v) => v.netdev === rep);
  if (own) {
    throw invalid(ownNetdevRefusal(`--representor ${rep}`, { vf: own.pci, pf: own.pf }, findRepresentor(sysfs, own)));
  }
  if (pci) {
    const vf = vfs.find((v) => v.pci === pci);
    if (!vf) throw invalid(`--pci ${pci} is not a VF under ${sysfs.root} (\`vfplane vf list\` lists them; a simulated NIC's are under its --sysfs-root); give the VF ${rep} stands for, or leave --pci out`);
    const r = findRepresentor(sysfs, vf);
    if (r !== undefined && r !== rep) throw invalid(`--representor ${rep} is not the representor of VF ${vf.pci} (${r} is); give --representor ${r}, or the --pci of the VF ${rep} stands for`);
    return pci;
  }
  return vfOfRepresentor(sysfs, rep, vfs)?.pci;
}

/** A VF attached by hand that no allocation store holds is free for the next pod: the
 *  device plugin may give it to one, whose CNI ADD then replaces this attachment. Said
 *  on stderr with the way to keep it (what the stores say is advisory here: one that
 *  cannot be read says nothing). */
async function warnUnallocated(pci: string, root: string | undefined): Promise<void> {
  const [{ AllocStore }, { defaultSysfsRoot }] = await Promise.all([import('../alloc/store.js'), import('../sriov/sysfs.js')]);
  let held: boolean;
  try {
    held = AllocStore.heldAt(root ?? defaultSysfsRoot()).some((h) => h.pci === pci);
  } catch {
    return;
  }
  if (!held) {
    console.error(`warning: VF ${pci} is not allocated (\`vfplane vf list\` shows it free): a pod may be given it, and its CNI ADD then replaces this attachment; \`vfplane vf alloc --pci ${pci} --owner NS/NAME\` keeps it yours`);
  }
}

export async function dpDetach(o: ClientOpts & { representor?: string; pci?: string; sysfsRoot?: string }): Promise<void> {
  if (!o.representor && !o.pci) {
    const { UsageError } = await import('./errors.js');
    throw new UsageError('give --representor IFNAME or --pci ADDR');
  }
  o = { ...o, pci: await vfAddress(o.pci, o.sysfsRoot) };
  const r = await request(await sock(o), { op: 'detach', ...(o.representor ? { representor: o.representor } : {}), ...(o.pci ? { pci: o.pci } : {}) });
  if (o.json) printJson(strip(r));
  else console.log(r.removed ? `detached (epoch ${r.epoch})` : 'nothing was attached there');
  lasts(r);
}

export async function dpOp(op: string, args: Record<string, unknown>, o: ClientOpts): Promise<void> {
  const r = await request(await sock(o), { op, ...args });
  if (o.json) printJson(strip(r));
  else console.log(`${op}: done (epoch ${r.epoch})`);
  if (typeof r.macDropped === 'string') console.error(`note: peer ${args.vtep as string} had the underlay MAC ${r.macDropped}, set by hand; without --mac it is resolved by ARP/ND now (give --mac to keep one)`);
  for (const f of (r.floodsTrimmed as { vni: number; left: number }[] | undefined) ?? []) {
    console.error(f.left
      ? `note: peer ${args.vtep as string} was taken out of VNI ${f.vni}'s flood list (${f.left} VTEP(s) left)`
      : `warning: peer ${args.vtep as string} was the last VTEP of VNI ${f.vni}'s flood list: its broadcast, multicast and unknown unicast reach no other node now; \`vfplane dataplane flood set --vni ${f.vni} VTEP…\` names others, --all-peers floods to every peer`);
  }
  lasts(r);
}

/** fdb add|del --file: the file's entries in one request, one change. The daemon checks
 *  each entry (its errors name entries.N); here only that the file is a list and the
 *  request fits the socket's line. */
export async function dpFdbFile(op: 'fdb-add' | 'fdb-del', file: string, o: ClientOpts): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const { parseYamlOrJson } = await import('../dataplane/config.js');
  const { MAX_LINE } = await import('../dataplane/control.js');
  const { badFile, notFound } = await import('../util/errors.js');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw notFound(`cannot read --file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let entries: unknown;
  try {
    entries = parseYamlOrJson(text);
  } catch (e) {
    throw badFile(`--file ${file} is not valid YAML or JSON: ${(e as Error).message}`);
  }
  const shape = op === 'fdb-add' ? '{vni, mac, vtep}' : '{vni, mac}';
  if (!Array.isArray(entries) || !entries.length) throw badFile(`--file ${file}: expected a list of entries ${shape}, at least one`);
  const line = JSON.stringify({ op, entries }).length + 1;
  if (line > MAX_LINE) throw badFile(`--file ${file}: ${entries.length} entries make a request of ${line} bytes, more than the ${MAX_LINE} the control socket takes; split the file, or put the entries in the config file and reload`);
  const { VfpError } = await import('../util/errors.js');
  // What the daemon refuses as malformed came from the file: bad input in a file (exit 1).
  const r = await request(await sock(o), { op, entries }).catch((e: unknown) => {
    throw e instanceof VfpError && e.kind === 'invalid' ? badFile(`--file ${file}: ${e.message}`, e.details) : e;
  });
  if (o.json) printJson(strip(r));
  else console.log(op === 'fdb-add' ? `fdb-add: ${r.added as number} added, ${r.replaced as number} replaced (epoch ${r.epoch})` : `fdb-del: ${r.deleted as number} deleted (epoch ${r.epoch})`);
  lasts(r);
}

/** A change to what the config file declares is undone by the next restart or reload:
 *  the daemon's note says so, and so does the CLI (on stderr, beside the result). */
function lasts(r: Record<string, unknown>): void {
  if (typeof r.note === 'string') console.error(`warning: ${r.note}`);
}

export async function dpReload(o: ClientOpts): Promise<void> {
  const r = await request(await sock(o), { op: 'reload' });
  if (o.json) return printJson(strip(r));
  console.log(`reloaded: ${reloadSummary(r.changed as string[], (r.undone as string[] | undefined) ?? [])} (epoch ${r.epoch as number})`);
}

/** Gives back what killed data planes left claimed (their claims journals), refusing
 *  all of it if one of them runs. */
export async function dpUnclaim(o: { node?: string; stateDir?: string; json?: boolean }): Promise<void> {
  const { releaseLeftovers, stateJournals } = await import('../dataplane/claims.js');
  const { recoverDpdkEnv } = await import('../dataplane/dpdk-env.js');
  const { conflict, invalid } = await import('../util/errors.js');
  const dir = o.stateDir ?? (process.env.VFPLANE_STATE_DIR || '/var/lib/vfplane');
  // Every journal's lock first: a running data plane's netdevs are its own, and then
  // nothing changes.
  const journals = stateJournals(dir, o.node);
  const out: { node: string; released: string[] }[] = [];
  try {
    const live = journals.find((x) => x.running);
    if (live) throw conflict(`the data plane for node ${live.node} runs${live.heldBy ? ` (pid ${live.heldBy})` : ''}: its netdevs are in use, and it gives them back when it stops (SIGTERM)`);
    const bad = journals.find((x) => x.journal.unreadable);
    if (bad) throw invalid(`cannot read the claims journal ${bad.journal.unreadable}; what it held keeps what the killed run set (remove the file to go on without it)`);
    for (const { node, journal, dpdkEnv } of journals) out.push({ node, released: [...await releaseLeftovers(journal, { unclaim: true }), ...recoverDpdkEnv(dpdkEnv)] });
  } finally {
    for (const x of journals) x.lock?.release();
  }
  if (o.json) return printJson({ stateDir: dir, nodes: out });
  const what = o.node ? `node ${o.node}` : 'any node';
  if (!out.some((x) => x.released.length)) return console.log(`nothing held by a stopped data plane of ${what} in ${dir}`);
  for (const x of out) for (const m of x.released) console.log(`node ${x.node}: ${m}`);
}

export async function dpExplain(o: ClientOpts & { vni: number; mac: string; from?: string; src?: string; vtep?: string }): Promise<void> {
  if (o.vtep && o.from !== 'uplink') {
    const { UsageError } = await import('./errors.js');
    throw new UsageError(`--vtep ${o.vtep} names the VTEP a frame came from: it goes with --from uplink`);
  }
  const r = await request(await sock(o), {
    op: 'explain', vni: o.vni, mac: o.mac, ...(o.from ? { from: o.from } : {}), ...(o.src ? { src: o.src } : {}), ...(o.vtep ? { vtep: o.vtep } : {}),
  });
  if (o.json) return printJson(strip(r));
  const e = r as unknown as {
    verdict: string; reason?: string; representor?: string; vtep?: string; source?: string; steps: string[];
    peer?: { note: string }; localPorts?: string[]; peers?: { note: string }[];
  };
  const head = e.verdict === 'local' ? `switched locally to ${e.representor}`
    : e.verdict === 'encap' ? `encapsulated to ${e.vtep} (${e.source} FDB entry)`
    : e.verdict === 'flood' ? `flooded: ${e.localPorts?.length ?? 0} local pod(s), ${e.peers?.length ?? 0} remote VTEP(s)`
    : `dropped (${e.reason})`;
  console.log(`VNI ${o.vni}, to ${typeof r.mac === 'string' ? r.mac : o.mac}${o.from ? `, from ${o.from}` : ''}: ${head}`);
  for (const s of e.steps) console.log(`  - ${s}`);
  if (e.peer) console.log(`  - ${e.peer.note}`);
  if (e.localPorts?.length) console.log(`  - local copies: ${e.localPorts.join(', ')}`);
  for (const p of e.peers ?? []) console.log(`  - copy to ${p.note}`);
}

interface Drop { time: string; worker: number; port: string | null; dir: 'rx' | 'tx'; reason: string; len: number; decap?: { vni: number; vtep: string }; summary: string; frame: string }

/** Arms the workers' drop capture, reads it until `count` frames came or `wait` ms
 *  passed, then stops it (a capture left running costs nothing, but a forgotten one
 *  would surprise the next reader) and prints what came, oldest first. */
export async function dpDrops(o: ClientOpts & { count: number; wait: number; reason?: string[] }): Promise<void> {
  const s = await sock(o);
  await request(s, { op: 'drops-arm', count: o.count, ...(o.reason ? { reasons: o.reason } : {}) });
  const t0 = Date.now();
  let drops: Drop[] = [];
  try {
    for (;;) {
      drops = (await request(s, { op: 'drops' })).drops as Drop[];
      const left = t0 + o.wait - Date.now();
      if (drops.length >= o.count || left <= 0) break;
      await new Promise((r) => setTimeout(r, Math.min(100, left)));
    }
  } finally {
    await request(s, { op: 'drops-arm', count: 0 }).catch(() => undefined);
  }
  drops = drops.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0)).slice(0, o.count); // ISO times
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (o.json) return printJson({ drops, seconds: Number(secs) });
  const what = o.reason ? ` for ${o.reason.join(', ')}` : '';
  if (!drops.length) {
    console.log(`no frame was dropped${what} in ${secs} s (\`vfplane dataplane stats\` counts every drop by reason since the start)`);
    return;
  }
  // Rules between rows here: a frame's hex wraps over several lines.
  const t = new Table({ head: ['time', 'port', 'dir', 'reason', 'bytes', 'frame'], style: { head: [], border: [] }, wordWrap: true, colWidths: [14, 16, 5, 18, 7, 70] });
  for (const d of drops) t.push([d.time.slice(11, 23), d.port ?? '-', d.dir, d.reason, d.len, d.summary]);
  console.log(t.toString());
  console.log(`${drops.length} frame(s) dropped${what} in ${secs} s${drops.length >= o.count ? ` (stopped at --count ${o.count})` : ''}; --json has each frame's first bytes`);
}

export async function dpFdbList(o: ClientOpts): Promise<void> {
  const r = await request(await sock(o), { op: 'fdb-list' });
  if (o.json) return printJson(strip(r));
  const t = listTable(['VNI', 'MAC', 'where', 'kind']);
  for (const e of r.local as { vni: number; mac: string; representor: string }[]) t.push([e.vni, e.mac, e.representor, 'local']);
  for (const e of r.static as { vni: number; mac: string; vtep: string }[]) t.push([e.vni, e.mac, e.vtep, 'static']);
  for (const e of r.learned as { vni: number; mac: string; vtep: string; idleSeconds?: number }[]) t.push([e.vni, e.mac, e.vtep, e.idleSeconds === undefined ? 'learned' : `learned, last seen ${e.idleSeconds} s ago`]);
  console.log(t.toString());
  if (r.learnedTruncated) console.log(`(the first ${r.learnedTruncated} learned entries the workers hold; \`vfplane dataplane explain --vni N --mac M\` finds any one of them)`);
}

/** The VNIs' own flood lists for status: VNIs with the same list together, as ranges
 *  ("VNIs 1000-1999 → none"), and past FLOOD_GROUPS_SHOWN lists a count (a node may serve
 *  1023 VNIs: one line of 25 KB, helper-78). */
const FLOOD_GROUPS_SHOWN = 16;
function floodListsText(floods: { vni: number; vteps: string[] }[]): string {
  const byList = new Map<string, number[]>();
  for (const f of floods) {
    const k = f.vteps.length ? [...f.vteps].sort().join(', ') : 'none'; // a set: the order sends nothing elsewhere
    byList.set(k, [...(byList.get(k) ?? []), f.vni]);
  }
  const groups = [...byList].map(([list, vnis]) => {
    const sorted = [...vnis].sort((a, b) => a - b);
    const ranges: [number, number][] = [];
    for (const v of sorted) {
      const last = ranges[ranges.length - 1];
      if (last && v === last[1] + 1) last[1] = v;
      else ranges.push([v, v]);
    }
    return `${vnis.length > 1 ? 'VNIs' : 'VNI'} ${formatVniRanges(ranges)} → ${list}`;
  });
  const more = groups.length - FLOOD_GROUPS_SHOWN;
  return more > 0 ? `${groups.slice(0, FLOOD_GROUPS_SHOWN).join('; ')}; and ${more} more list(s) (\`vfplane dataplane status --json\` has them all)` : groups.join('; ');
}

function strip(r: Record<string, unknown>): Record<string, unknown> {
  const { ok: _ok, id: _id, ...rest } = r;
  return rest;
}

/** Bytes as MiB with one decimal ("4.0 MiB"). */
function mib(b: number): string {
  return `${(b / 1048576).toFixed(1)} MiB`;
}
