// The data-plane daemon's configuration file (YAML or JSON) and the values the control
// socket takes, validated once at the edge with zod: every error names the field, the
// value and what is expected.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import * as z from '../util/z.js';
import { badFile, invalid, notFound, VfpError } from '../util/errors.js';
import { canonCidr, formatIp, formatMac, isStationMac, parseIp, parseMac } from '../util/addr.js';
import { NODE_NAME } from '../util/names.js';
import { zodMessages } from '../util/zod.js';
import { duplicateJsonKey } from '../util/json.js';
import { nativeFeatures } from './native.js';

export const IFNAME_RE = /^[A-Za-z0-9_.@-]{1,15}$/;
const ifname = (what: string) =>
  z.string({ error: `expected an interface name (${what})` }).regex(IFNAME_RE, `expected a Linux interface name (${what}): 1–15 of A–Z a–z 0–9 _ . - @`);
// Addresses leave the edge in one canonical text (IPv6 as RFC 5952, MACs lower-case with
// colons), so everything past it compares texts: 2001:DB8:0::12 is the peer 2001:db8::12.
export const ipString = (what: string) =>
  z.string({ error: `expected an IP address (${what})` }).refine((s) => isIP(s) !== 0, `expected an IPv4 or IPv6 address (${what})`)
    // A zone would be dropped by the canonical form below, unsaid: the uplink is the link.
    .refine((s) => !s.includes('%'), `expected an address without a %zone (${what}): the data plane's link is its uplink; give the address alone`)
    .transform((s) => { const a = parseIp(s)!; return formatIp(a.family, a.bytes); });
export const macString = (what: string) =>
  z.string({ error: `expected a MAC address (${what})` }).refine((s) => parseMac(s) !== null, `expected a MAC address like 02:00:00:00:00:01 (${what})`)
    .transform((s) => formatMac(parseMac(s)!));
/** Whether an address (canonical text) can be a VTEP: not multicast, the IPv4 limited
 *  broadcast, nor unspecified. */
function isUnicast(s: string): boolean {
  const a = parseIp(s);
  if (!a) return false;
  const b = a.bytes;
  if (b.every((x) => x === 0)) return false;
  if (a.family === 4) return !(b[0]! >= 224 && b[0]! <= 239) && s !== '255.255.255.255';
  return b[0] !== 0xff;
}

/** HOST:PORT for the Prometheus endpoint, or :PORT for every address (IPv4 and IPv6, as
 *  other exporters' `:9100`); port 0 takes any free one. */
export const metricsAddr = z.string()
  // abort: a malformed address gets this one message, not the next checks' too.
  .regex(/^(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost)?:\d{1,5}$/, { error: 'expected HOST:PORT, e.g. 127.0.0.1:9465, or :PORT for every address', abort: true })
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'the port is 0–65535 (0: any free one), e.g. 127.0.0.1:9465')
  // The host is an address the daemon listens on: a numeric one must parse (1.2.3.4.5.6
  // would otherwise reach the listen call and fail there, after the uplink was claimed).
  .refine((s) => { const h = s.slice(0, s.lastIndexOf(':')).replace(/^\[|\]$/g, ''); return h === '' || h === 'localhost' || isIP(h) !== 0; }, 'expected an IPv4 address, [IPv6] or localhost before the port, e.g. 127.0.0.1:9465 or [::1]:9465');

export const vniNumber = z.number({ error: 'expected a VNI (0–16777215)' }).int('expected a whole VNI').min(0, 'a VNI is 0–16777215').max(16_777_215, 'a VNI is 0–16777215 (24 bits)');
const absPath = (what: string) => z.string({ error: `expected a path (${what})` }).refine((s) => s.startsWith('/') && !s.split('/').includes('..'), `expected an absolute path without .. (${what})`);

export const peerSchema = z.strictObject({
  vtep: ipString('the peer VTEP').refine(isUnicast, 'expected a unicast address as a peer VTEP, not a multicast, broadcast or unspecified one (head-end replication sends a copy to each peer; list every remote VTEP by its own address)'),
  mac: macString("the peer's MAC on the underlay; resolved by ARP (IPv4) or neighbour discovery (IPv6) when left out")
    .refine(isStationMac, "expected the peer's unicast MAC on the underlay, not a group or all-zero one (leave mac out to resolve it)").optional(),
});

export const fdbSchema = z.strictObject({
  vni: vniNumber,
  mac: macString('the inner (pod) MAC').refine(isStationMac, 'expected a pod\'s unicast MAC: a group (broadcast, multicast) or all-zero MAC is no station\'s, and group frames are flooded'),
  vtep: ipString('the VTEP behind that MAC'),
});
/** Peers a data plane holds (VFP_DP_MAX_PEERS), and VNIs it serves, attached or flood-listed
 *  (VFP_DP_MAX_VNIS less the slot for VNIs past them); the addon's stats layout says the same. */
export const MAX_PEERS = 1024;
export const MAX_VNIS = 1023;
export const PEERS_FIX = 'list the VTEPs of the nodes whose pods share a VNI with this node\'s, not every node (a VNI floods to its own list: vnis[].flood)';
export const VNIS_FIX = 'drop the flood lists of VNIs no pod on this node uses (from vnis[], or `vfplane dataplane flood set --vni N --all-peers`, which removes a VNI\'s own list)';

/** What names a static FDB entry: its VNI and (canonical) MAC. */
export const fdbKey = (f: { vni: number; mac: string }): string => `${f.vni}/${f.mac}`;

/** "100-199,250": VNIs and inclusive ranges, parsed to [lo, hi] pairs. */
const vniRanges = z.string({ error: 'expected VNIs and ranges, e.g. "100-199,250"' }).transform((s, ctx) => {
  const out: [number, number][] = [];
  for (const part of s.split(',').map((x) => x.trim())) {
    const m = /^(\d{1,8})(?:-(\d{1,8}))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN, hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo > hi || hi > 16_777_215) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not a VNI or a range of VNIs (0–16777215, low-high), in "${s}"` });
      return z.NEVER;
    }
    out.push([lo, hi]);
  }
  return out;
});

/** A Kubernetes namespace name (RFC 1123 label). */
const k8sNamespace = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'expected a Kubernetes namespace name (RFC 1123 label)');

/** The name `stats` and the metrics give the uplink's port (port="uplink", portDrops'
 *  key): a representor of that name would share it, and Prometheus refuses a scrape with
 *  two series of one name and labels. */
export const UPLINK_PORT_NAME = 'uplink';
export const uplinkNameRefusal = (rep: string, how = '', netns?: string) =>
  `representor ${JSON.stringify(rep)}${how}: "${UPLINK_PORT_NAME}" is the name stats and the metrics give the uplink's port (port="${UPLINK_PORT_NAME}"), so a representor cannot go by it; rename the netdev (${netns ? `nsenter --net=${netns} ` : ''}ip link set ${UPLINK_PORT_NAME} name OTHER) and attach it by the new name`;

export const attachSchema = z.strictObject({
  representor: ifname('the representor netdev of the VF'),
  vni: vniNumber,
  mac: macString("the pod interface's MAC").refine(isStationMac, 'expected the pod interface\'s unicast MAC, not a group (broadcast, multicast) or all-zero one'),
  pci: z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, 'expected a PCI address DDDD:BB:DD.F').optional(),
  netns: absPath('the netns of the representor; the daemon\'s own when left out').optional(),
  // The pod interface's MTU (vfplane-cni sends it), for the underlay MTU check; without
  // it the representor's stands in (on real NICs it stays 1500 whatever the pod's is).
  mtu: z.number().int().min(68).max(65535).optional(),
  // vfplane-cni with no "mtu" in its config: the pod interface takes the MTU the overlay
  // carries (the reply's overlayMtu) when its own is over it, so there is nothing to advise.
  mtuAuto: z.boolean().optional(),
  remote: ipString('a unicast VTEP to flood this VNI to').optional(),
  port: z.number().int().min(1).max(65535).optional(),
  // What a CNI config's vxlan block may also say; each must agree with this data plane.
  local: ipString('the local VTEP').optional(),
  ttl: z.number().int().min(1).max(255).optional(),
  learning: z.boolean().optional(),
  dev: z.string().optional(),
  owner: z.record(z.string(), z.string()).optional(),
}).superRefine((a, ctx) => {
  // On the object: the fix names the namespace the netdev is in.
  if (a.representor === UPLINK_PORT_NAME) ctx.addIssue({ code: 'custom', path: ['representor'], message: uplinkNameRefusal(a.representor, '', a.netns) });
});

/** A gateway with a prefix must be a host of the VTEP's subnet (not its network or, on
 *  IPv4, broadcast address); a link-local IPv6 one is on every link. */
function gatewayOnLink(u: { vtep: string; gateway?: string; prefixLength?: number }): boolean {
  if (!u.gateway || u.prefixLength === undefined) return true;
  const g = parseIp(u.gateway), v = parseIp(u.vtep);
  if (!g || !v || g.family !== v.family) return true; // said by the family check
  if (g.family === 6 && g.bytes[0] === 0xfe && (g.bytes[1]! & 0xc0) === 0x80) return true;
  const bits = u.prefixLength, max = g.family === 4 ? 32 : 128;
  if (bits > max) return true; // said by the length check
  if (canonCidr(`${u.gateway}/${bits}`) !== canonCidr(`${u.vtep}/${bits}`)) return false;
  if (g.family === 4 && bits <= 30) {
    const host = g.bytes.reduce((a, b) => a * 256 + b, 0) % 2 ** (32 - bits);
    if (host === 0 || host === 2 ** (32 - bits) - 1) return false;
  }
  return true;
}

/** DPDK's mbuf headroom (RTE_PKTMBUF_HEADROOM) and default data room (RTE_MBUF_DEFAULT_BUF_SIZE). */
const MBUF_HEADROOM = 128;
export const MBUF_DATA_DEFAULT = 2176;
/** The smallest data room that holds a frame the overlay carries: the headroom and an
 *  underlay packet of 118 bytes (tunnel.mtu's minimum) with Ethernet and VLAN headers. */
const MBUF_DATA_MIN = MBUF_HEADROOM + 14 + 4 + 118;

/** A net_af_packet vdev (uplink.dev "net_af_packet0,iface=X,framesz=N"): the frame room
 *  its rx queue needs in one mbuf, framesz (default 2048) less the 32 bytes of its
 *  TPACKET_V2 header it does not copy (DPDK's rte_eth_af_packet.c refuses the queue with
 *  "N bytes will not fit in mbuf"); null for another device. */
export function afPacketFrameRoom(dev: string | undefined): { framesz: number; room: number } | null {
  const [name, ...args] = (dev ?? '').split(',');
  if (!/^(net|eth)_af_packet\d*$/.test(name ?? '')) return null;
  const fs = args.map((a) => /^framesz=(\d+)$/.exec(a.trim())?.[1]).find((x) => x !== undefined);
  const framesz = fs ? Number(fs) : 2048;
  return { framesz, room: framesz - 32 };
}

export const configSchema = z.strictObject({
  node: z.string().regex(NODE_NAME, { error: 'expected a node name: 1–63 letters, digits, ".", "_" or "-", starting with a letter or digit (it names files in stateDir)' }).default('node'),
  backend: z.enum(['afpacket', 'afxdp', 'dpdk'], { error: 'expected afpacket, afxdp or dpdk' }).default('afpacket'),
  uplink: z.strictObject({
    ifname: ifname('the uplink netdev').optional(),
    dev: z.string().min(1).max(256).optional(),
    netns: absPath('the netns of the uplink').optional(),
    vtep: ipString('our VTEP address on the underlay').refine(isUnicast, 'expected a unicast address as our VTEP on the underlay, not a multicast, broadcast or unspecified one'),
    mac: macString('the uplink MAC; read from the netdev when left out').optional(),
    vlan: z.number().int().min(0).max(4094).optional(),
    /** A routed underlay: the router on the uplink's link toward peers not on it. Their
     *  frames go to its MAC (resolved by ARP/ND, asked again as any learned MAC). */
    gateway: ipString('the router on the uplink\'s link toward VTEPs on other subnets').refine(isUnicast, 'expected the gateway\'s unicast address').optional(),
    /** The uplink's subnet around the VTEP: peers inside it are on the link, the rest
     *  behind the gateway. Without it every peer is behind the gateway (a /32 or /128
     *  VTEP, as on a routed leaf–spine fabric). */
    prefixLength: z.number().int().min(0).max(128).optional(),
  }).refine((u) => u.ifname || u.dev, { message: 'give uplink.ifname (a netdev) or uplink.dev (a DPDK PCI address or vdev)' })
    .refine((u) => !u.gateway || isIP(u.gateway) === isIP(u.vtep), { message: 'uplink.gateway is not of the VTEP\'s family: give an IPv4 gateway with an IPv4 VTEP, an IPv6 one with an IPv6 VTEP', path: ['gateway'] })
    .refine((u) => !u.gateway || u.gateway !== u.vtep /* both canonical (ipString) */, { message: 'uplink.gateway is our own VTEP: give the address of the router on the uplink\'s link', path: ['gateway'] })
    .refine((u) => u.prefixLength === undefined || u.prefixLength <= (isIP(u.vtep) === 6 ? 128 : 32), { message: 'uplink.prefixLength is longer than the VTEP\'s address: at most 32 for IPv4, 128 for IPv6', path: ['prefixLength'] })
    .refine((u) => u.prefixLength === undefined || u.gateway, { message: 'uplink.prefixLength says which peers are on the link, which matters only with uplink.gateway: give the gateway too (or leave the prefix out)', path: ['prefixLength'] })
    .refine((u) => !u.gateway || !/^::ffff:/i.test(u.gateway), { message: 'uplink.gateway is an IPv4-mapped address: give the router\'s IPv4 address with an IPv4 VTEP, its IPv6 one with an IPv6 VTEP', path: ['gateway'] })
    .refine((u) => gatewayOnLink(u), { message: 'uplink.gateway is not on the uplink\'s subnet (uplink.prefixLength around the VTEP), or is that subnet\'s network or broadcast address: a router the workers resolve by ARP/ND must be on the link; give its address there, or the right prefixLength', path: ['gateway'] }),
  dstPort: z.number().int().min(1).max(65535).default(4789),
  peers: z.array(peerSchema).default([]),
  vnis: z.array(z.strictObject({ vni: vniNumber, flood: z.array(ipString('a flood VTEP')) })).default([]),
  /** Which Kubernetes namespaces may put pods on which VNIs. Empty (the default): any
   *  pod may join any VNI. Otherwise an attachment made by vfplane-cni is admitted only
   *  when its pod's namespace (K8S_POD_NAMESPACE, set by the runtime, not by the
   *  network's config) appears in an entry whose vnis include the VNI; the operator's
   *  own attachments (the config's, `vfplane dataplane attach`) are not checked. */
  tenants: z.array(z.strictObject({ namespaces: z.array(k8sNamespace).min(1), vnis: vniRanges })).default([]),
  fdb: z.array(fdbSchema).default([]),
  attachments: z.array(attachSchema).default([]),
  learn: z.boolean().default(true),
  ageSeconds: z.number().int().min(1).max(86400).default(300),
  /** Entries each worker's learned FDB holds (workers share what they learn, so each
   *  holds every entry): about 19 bytes an entry. Past it a new remote MAC is not
   *  learned (counted as learnFull) and frames to it flood as unknown unicast. */
  learnCapacity: z.number().int().min(16).max(16_777_216).default(65536),
  /** Learned entries one VNI may hold (unset: any number up to learnCapacity): one
   *  tenant's pod sending from ever new source MACs fills its own VNI's share, not the
   *  table every VNI learns into. Past it a new MAC of that VNI is not learned (counted as
   *  learnLimited; its frames still go through, and frames to it flood on that VNI). */
  learnPerVni: z.number().int().min(1).max(16_777_216).optional(),
  /** Storm control: the broadcast, multicast and unknown-unicast frames each pod may
   *  flood a second (in bursts of as many; per worker), before any copy is made. Past it
   *  a pod's frames to flood are dropped (flood_limited, counted on its port): one pod's
   *  storm is not multiplied by every peer and pod of its VNI. Unset: no limit. Takes a
   *  restart to change. */
  floodPps: z.number().int().min(1).max(100_000_000).optional(),
  /** How long a peer's underlay MAC learned by ARP/ND is used without hearing from the
   *  peer before the workers ask again, while sending to it: unicast to the MAC it had,
   *  three times a second apart, then broadcast (a NIC replaced, a router failed over to
   *  another MAC). Linux's base_reachable_time is 30 s. Configured `peers[].mac` are never
   *  asked. */
  neighReachableSeconds: z.number().int().min(1).max(3600).default(30),
  antiSpoof: z.boolean().default(true),
  /** A pod's packet too big for the underlay (its MTU over the uplink's less 50, 70 over
   *  IPv6) is dropped (mtu_exceeded) and answered with ICMP "fragmentation needed" (IPv4
   *  with DF) or "packet too big" (IPv6) carrying the MTU the overlay does carry, as a
   *  router or the kernel's vxlan device on a bridge answers: the pod's path MTU discovery
   *  then sends smaller packets instead of losing them. */
  icmpTooBig: z.boolean().default(true),
  workers: z.number().int().min(1).max(16).default(1),
  /** How the dpdk backend reaches the pods' representors (kernel netdevs): afxdp when the
   *  build has it (auto), else afpacket. The other backends use their own. */
  representors: z.enum(['auto', 'afxdp', 'afpacket']).default('auto'),
  cpus: z.array(z.number().int().min(-1).max(4095)).optional(),
  burst: z.number().int().min(1).max(256).default(32),
  /** Empty polls before a worker sleeps in poll(); 0 spins (lowest latency, a whole core). */
  /** At most 1e9: the addon's bound (a worker at 1e9 spins for seconds before it sleeps). */
  idleSpins: z.number().int().min(0).max(1_000_000_000, 'expected 0–1000000000 empty polls (0: always spin; the default 64 spins briefly, then sleeps in poll())').default(64),
  tunnel: z.strictObject({
    ttl: z.number().int().min(1).max(255).default(64),
    tos: z.union([z.number().int().min(0).max(255), z.literal('inherit')]).default('inherit'),
    df: z.enum(['set', 'unset', 'inherit']).default('unset'),
    udpCsum: z.boolean().default(false),
    /** Decap checks the outer UDP checksum when it is not 0 (RFC 7348 §4: MAY), and
     *  drops IPv6 packets with 0 (Linux's default, udp6zerocsumrx off; RFC 6936). Off:
     *  the Ethernet FCS and the NIC are trusted, as the RFC allows. */
    verifyUdpCsum: z.boolean().default(false),
    srcPortMin: z.number().int().min(1).max(65535).default(49152),
    srcPortMax: z.number().int().min(1).max(65535).default(65535),
    // 0: the uplink's. Else the underlay's MTU, which must carry at least a minimal
    // (68-byte) IPv4 packet of a pod with the 50 bytes VXLAN adds.
    mtu: z.number().int().max(65535).refine((m) => m === 0 || m >= 118, 'expected 0 (the uplink\'s MTU) or the underlay MTU, 118–65535: it carries a pod\'s IP packet (68 bytes at least) plus 50 bytes of VXLAN').default(0),
  }).prefault({}),
  afpacket: z.strictObject({
    /** 2: TPACKET_V2 rx, a frame is seen as soon as it lands (µs latency). 3: TPACKET_V3
     *  blocks, fewer wakeups, but a lone frame waits for its block's 1 ms retire timer. */
    ring: z.union([z.literal(2), z.literal(3)], { error: 'expected 2 (TPACKET_V2, per-frame rx) or 3 (TPACKET_V3, block rx)' }).default(2),
    /** Receive ring per uplink queue, and per representor (one pod's traffic), in MiB.
     *  Each attached VF costs its representor's ring plus about 1 MiB of tx ring. */
    rxRingMiB: z.number().int().min(1).max(1024).default(16),
    representorRxRingMiB: z.number().int().min(1).max(1024).default(4),
    /** Transmit ring slots (one frame each, up to the MTU) per uplink queue, and per
     *  representor: 512 slots of a 1500-byte MTU are about 1 MiB. Frames that find no
     *  free slot are dropped and counted (tx_full). */
    txFrames: z.number().int().min(64).max(65536).default(2048),
    representorTxFrames: z.number().int().min(64).max(65536).default(512),
  }).prefault({}),
  afxdp: z.strictObject({
    mode: z.enum(['auto', 'native', 'skb']).default('auto'),
    copy: z.enum(['auto', 'copy', 'zerocopy']).default('auto'),
    /** UMEM frames (4 KiB each) of the uplink, shared out over its queues (at least 1024
     *  a queue), and of each representor: 1024 frames is 4 MiB a pod. */
    frames: z.number().int().min(256).max(1 << 20).default(4096),
    representorFrames: z.number().int().min(256).max(1 << 20).default(1024),
  }).prefault({}),
  dpdk: z.strictObject({
    eal: z.array(z.string()).default([]),
    hugepages: z.number().int().min(0).default(256),
    /** mbufs in the uplink's pool; 0 sizes it from the queues and descriptors. */
    mbufs: z.number().int().min(0).max(1 << 24).default(0),
    /** Each mbuf's data room: 128 bytes of headroom (RTE_PKTMBUF_HEADROOM) and the frame
     *  (one mbuf per frame, no scatter). 0: DPDK's default, 2176 (a 2048-byte frame). */
    mbufDataSize: z.number().int().max(65535).refine((n) => n === 0 || n >= MBUF_DATA_MIN, `expected 0 (DPDK's default, ${MBUF_DATA_DEFAULT}) or ${MBUF_DATA_MIN}–65535: an mbuf holds 128 bytes of headroom and the frame, at least ${MBUF_DATA_MIN - MBUF_HEADROOM} bytes (an underlay MTU of 118 with Ethernet and VLAN headers)`).default(0),
    rxDesc: z.number().int().min(0).max(32768).default(0),
    txDesc: z.number().int().min(0).max(32768).default(0),
  }).prefault({}),
  stateDir: absPath('where the daemon keeps its state').default('/var/lib/vfplane'),
  /** The node's sysfs (a simulated NIC's tree on a test node): its registry lists the
   *  node's allocation stores, which a start whose state file is lost reads for the pods
   *  vfplane-cni attached through this data plane. */
  sysfsRoot: absPath('the node\'s sysfs').default('/sys'),
  socket: absPath('the control socket').optional(),
  metrics: metricsAddr.optional(),
}).superRefine((c, ctx) => {
  if (c.tunnel.mtu && c.tunnel.mtu < 1280 && isIP(c.uplink.vtep) === 6) {
    ctx.addIssue({ code: 'custom', path: ['tunnel', 'mtu'], message: `an IPv6 underlay has an MTU of 1280 at least (RFC 8200); give 0 (the uplink's) or 1280–65535` });
  }
  // The native side takes exactly one CPU (or -1) per worker.
  if (c.cpus && c.cpus.length !== c.workers) {
    ctx.addIssue({ code: 'custom', path: ['cpus'], message: `cpus needs one entry per worker (workers is ${c.workers}, cpus lists ${c.cpus.length}); list ${c.workers} CPUs (-1: not pinned) or change workers` });
  }
  // A net_af_packet uplink receives a whole frame into one mbuf: a data room it does not
  // fit was refused by the device at the rx queue, after the netdev was claimed.
  const afp = c.backend === 'dpdk' ? afPacketFrameRoom(c.uplink.dev) : null;
  const room = c.dpdk.mbufDataSize || MBUF_DATA_DEFAULT;
  if (afp && (!c.dpdk.mbufDataSize || c.dpdk.mbufDataSize >= MBUF_DATA_MIN) && room - MBUF_HEADROOM < afp.room) {
    const need = afp.room + MBUF_HEADROOM;
    ctx.addIssue({ code: 'custom', path: ['dpdk', 'mbufDataSize'], message: `${c.dpdk.mbufDataSize ? '' : `the default, ${MBUF_DATA_DEFAULT}, `}leaves ${room - MBUF_HEADROOM} bytes for the frame after the ${MBUF_HEADROOM}-byte headroom, but net_af_packet (framesz ${afp.framesz}) receives frames of up to ${afp.room} bytes into one mbuf; give ${need} or more${need <= MBUF_DATA_DEFAULT ? ` (or 0, the default ${MBUF_DATA_DEFAULT})` : ''}, or a smaller framesz= in uplink.dev` });
  }
  // The workers send a static entry's frames, and a flood list's copies, through the
  // peer's tunnel: a VTEP that is not a peer has none (the commit would fail after the
  // uplink was claimed).
  // Each peer, VNI and static entry once: a second would fail the commit after the uplink
  // was claimed (or silently win).
  const twice = <T>(list: T[], key: (x: T) => string, path: (i: number) => (string | number)[], what: (x: T, first: number) => string) => {
    const seen = new Map<string, number>();
    list.forEach((x, i) => {
      const k = key(x);
      const first = seen.get(k);
      if (first === undefined) seen.set(k, i);
      else ctx.addIssue({ code: 'custom', path: path(i), message: what(x, first) });
    });
  };
  twice(c.peers, (p) => p.vtep, (i) => ['peers', i, 'vtep'], (p, j) => `peer ${p.vtep} is listed twice (also peers.${j}); list each peer once`);
  twice(c.vnis, (v) => String(v.vni), (i) => ['vnis', i, 'vni'], (v, j) => `VNI ${v.vni} is listed twice (also vnis.${j}); give each VNI one entry`);
  twice(c.fdb, fdbKey, (i) => ['fdb', i], (f, j) => `the static entry for ${f.mac} on VNI ${f.vni} is listed twice (also fdb.${j}); keep one`);
  // An attachment's representor, its MAC on its VNI and its VF once: a second was only
  // refused at the start, in the log, the first kept.
  twice(c.attachments, (a) => `${a.netns ?? ''}\u0000${a.representor}`, (i) => ['attachments', i, 'representor'], (a, j) => `representor ${a.representor}${a.netns ? ` in ${a.netns}` : ''} is listed twice (also attachments.${j}); attach each representor once`);
  twice(c.attachments, (a) => `${a.vni}/${a.mac.toLowerCase()}`, (i) => ['attachments', i, 'mac'], (a, j) => `MAC ${a.mac} is attached twice on VNI ${a.vni} (also attachments.${j}); each pod interface needs its own MAC`);
  twice(c.attachments, (a) => a.pci ?? `\u0000${a.netns ?? ''}\u0000${a.representor}`, (i) => ['attachments', i, 'pci'], (a, j) => `VF ${a.pci} is attached twice (also attachments.${j}); a VF has one representor`);
  // What a data plane holds (native/worker/dp.h): refused here by field, before the
  // uplink is claimed, at the first entry past the limit (the daemon's commit checks the
  // same for what the control socket adds).
  if (c.peers.length > MAX_PEERS) {
    ctx.addIssue({ code: 'custom', path: ['peers', MAX_PEERS], message: `${c.peers.length} peers is more than the ${MAX_PEERS} a data plane supports; ${PEERS_FIX}` });
  }
  const served = new Set<number>();
  let past: (string | number)[] | null = null;
  for (const [key, list] of [['vnis', c.vnis], ['attachments', c.attachments]] as const) {
    list.forEach((x, i) => {
      if (!served.has(x.vni) && served.size === MAX_VNIS) past ??= [key, i, 'vni'];
      served.add(x.vni);
    });
  }
  if (past) {
    ctx.addIssue({ code: 'custom', path: past, message: `vnis and attachments name ${served.size} VNIs, more than the ${MAX_VNIS} a data plane serves; drop the flood lists of VNIs no pod on this node uses from vnis[], or spread the VNIs over more nodes` });
  }
  const peers = new Set(c.peers.map((p) => p.vtep));
  c.fdb.forEach((f, i) => {
    if (!peers.has(f.vtep)) ctx.addIssue({ code: 'custom', path: ['fdb', i, 'vtep'], message: `the static entry for ${f.mac} on VNI ${f.vni} points at VTEP ${f.vtep}, which is not among peers; add it to peers or fix the entry` });
  });
  c.vnis.forEach((v, i) => v.flood.forEach((vtep, j) => {
    if (!peers.has(vtep)) ctx.addIssue({ code: 'custom', path: ['vnis', i, 'flood', j], message: `the flood list of VNI ${v.vni} names VTEP ${vtep}, which is not among peers; add it to peers or drop it from the list` });
  }));
  // EAL options vfplane sets itself, from fields of this file: given again in dpdk.eal
  // they clash (the EAL refuses a second -l) or silently win (a --file-prefix whose
  // runtime files the data plane then never removes).
  c.dpdk.eal.forEach((a, i) => {
    // "--lcores=1@2", and a short option with its value attached ("-l2", "-l 2",
    // "-a0000:3b:00.0"), as the EAL's getopt takes them.
    const arg = a.trim();
    const opt = arg.startsWith('--') ? arg.split('=')[0]! : arg.slice(0, 2);
    const from = EAL_SET_BY_VFPLANE[opt];
    if (from) ctx.addIssue({ code: 'custom', path: ['dpdk', 'eal', i], message: `${opt} is set by vfplane (${from}); remove it from dpdk.eal` });
  });
});

/** EAL options the data plane sets, and the config field each comes from. */
const EAL_SET_BY_VFPLANE: Partial<Record<string, string>> = {
  '-l': 'from cpus', '--lcores': 'from cpus', '-c': 'from cpus', '--main-lcore': 'from cpus',
  '--file-prefix': 'one per node and process, removed at stop', '--proc-type': 'always primary',
  '--huge-dir': 'from dpdk.hugepages: a hugetlbfs it finds or mounts', '--no-huge': 'when no hugepages can be had; set dpdk.hugepages: 0 to ask for it',
  '-a': 'from uplink.dev', '--allow': 'from uplink.dev', '-b': 'from uplink.dev', '--block': 'from uplink.dev', '--no-pci': 'from uplink.dev',
  '--vdev': 'from uplink.dev', '-n': 'always 1 memory channel',
};

export type DaemonConfig = z.infer<typeof configSchema>;
export type AttachRequest = z.infer<typeof attachSchema>;

export function parseConfig(input: unknown, source = 'config'): DaemonConfig {
  const r = configSchema.safeParse(input);
  if (!r.success) throw invalid(`${source}: ${zodMessages(r.error, input, source === 'config' ? '' : 'config', 5, configSchema)}`);
  const c = r.data;
  if (c.tunnel.srcPortMin > c.tunnel.srcPortMax) throw invalid(`${source}: tunnel.srcPortMax ${c.tunnel.srcPortMax} is below srcPortMin ${c.tunnel.srcPortMin}`);
  if (c.backend === 'dpdk' && !c.uplink.dev) throw invalid(`${source}: the dpdk backend takes uplink.dev (a PCI address: a VF bound to vfio-pci, or a ConnectX VF or PF left on mlx5_core; or a vdev such as net_af_packet0,iface=X)`);
  if (c.backend !== 'dpdk' && !c.uplink.ifname) throw invalid(`${source}: the ${c.backend} backend takes uplink.ifname`);
  const fam = isIP(c.uplink.vtep);
  for (const p of c.peers) if (isIP(p.vtep) !== fam) throw invalid(`${source}: peer ${p.vtep} is not IPv${fam} like uplink.vtep ${c.uplink.vtep}`);
  // One config for every node (a DaemonSet's lists every node's VTEP): a node is not its
  // own peer, nor in its own flood lists, and a static entry for a MAC behind its own
  // VTEP is one of its pods (learned locally). (Addresses are canonical by now.)
  dropVtep(c.uplink.vtep, c, c.vnis);
  // Queue q of a port is received by worker q % workers. An AF_PACKET uplink opens a
  // queue per worker (sockets in a fanout group). Pod ports with fewer queues than
  // workers are fine: the workers without a queue there hand their frames to one that
  // has (native/worker/dp.c, handoff).
  if (c.backend !== 'dpdk' && c.representors !== 'auto' && c.representors !== c.backend) {
    throw invalid(`${source}: representors: ${c.representors} is for the dpdk backend; the ${c.backend} backend reaches representors itself (drop representors)`);
  }
  return c;
}

/** Takes VTEP (canonical, as the schemas leave addresses) out of a node's peers, static
 *  entries and flood lists: what a shared config, or an older state file, says of the node
 *  itself. */
export function dropVtep(vtep: string, x: { peers: { vtep: string }[]; fdb: { vtep: string }[] }, lists: { flood: string[] }[]): void {
  x.peers = x.peers.filter((p) => p.vtep !== vtep);
  x.fdb = x.fdb.filter((e) => e.vtep !== vtep);
  for (const l of lists) l.flood = l.flood.filter((v) => v !== vtep);
}

/** [lo, hi] pairs back in the config's form: "100-199,250". */
export function formatVniRanges(r: [number, number][]): string {
  return r.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
}

/** Why a pod in Kubernetes namespace NS may not join VNI, or null when it may (always,
 *  with no tenants configured). NS undefined: the request named no namespace. */
export function tenancyRefusal(c: Pick<DaemonConfig, 'tenants'>, ns: string | undefined, vni: number): string | null {
  if (c.tenants.length === 0) return null;
  if (ns === undefined) {
    return `VNI ${vni}: this data plane admits pods by Kubernetes namespace (tenants in its config), and the request names none (K8S_POD_NAMESPACE missing from CNI_ARGS); run the pod through a runtime that sets it, or attach as the operator with vfplane dataplane attach`;
  }
  const mine = c.tenants.filter((t) => t.namespaces.includes(ns));
  if (mine.some((t) => t.vnis.some(([lo, hi]) => vni >= lo && vni <= hi))) return null;
  const open = mine.map((t) => formatVniRanges(t.vnis)).join(',');
  return open
    ? `VNI ${vni} is not open to pods of Kubernetes namespace ${ns} (it may use ${open}); give the network a VNI of the namespace's, or add ${vni} to its entry under tenants in the data-plane config`
    : `VNI ${vni} is not open to pods of Kubernetes namespace ${ns} (no tenants entry lists it, so it may use no VNI); add an entry for it under tenants in the data-plane config (namespaces: [${ns}], vnis: "${vni}"), or run the pod in a namespace that has one`;
}

/** The backend of the pods' representor ports: the uplink's, except under dpdk, where
 *  representors are kernel netdevs reached through AF_XDP when the build has it. */
export function podBackendOf(c: Pick<DaemonConfig, 'backend' | 'representors'>): 'afpacket' | 'afxdp' {
  if (c.backend !== 'dpdk') return c.backend;
  if (c.representors !== 'auto') return c.representors;
  return nativeFeatures().afxdp?.built ? 'afxdp' : 'afpacket';
}

const FLOW_DEPTH_MAX = 64;
/** How deep `[` and `{` nest in a YAML or JSON text, outside double-quoted strings and
 *  comments (an estimate: a bracket in a single-quoted or plain scalar counts too). */
function flowDepth(text: string): number {
  let depth = 0, max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '[' || c === '{') {
      if (++depth > max) max = depth;
    } else if (c === ']' || c === '}') {
      depth--;
    }
  }
  return max;
}

/** A config's text as data. YAML is a superset of JSON, but its parser takes ~40× as long
 *  and ~20× the memory on JSON (a 100k-entry FDB: 4 s and 450 MB), so JSON goes to
 *  JSON.parse, unless it repeats a key: YAML refuses that, where JSON.parse would keep
 *  the last one unsaid. */
export function parseYamlOrJson(text: string): unknown {
  // The YAML parser recurses per nesting level: thousands deep, it overflows the stack,
  // and a second such parse in the same process aborted it (V8 out of memory in its
  // RegExp compiler; helper-79: a daemon reloading such a file died). No config nests
  // past a handful; refused before parsing.
  if (flowDepth(text) > FLOW_DEPTH_MAX) throw new Error(`it nests [ and { more than ${FLOW_DEPTH_MAX} deep; no config or entry list does`);
  if (/^\s*\{/.test(text)) {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      return parseYaml(text); // its error, with a line and column
    }
    if (duplicateJsonKey(text) === null) return data;
  }
  return parseYaml(text);
}

/** Reads and checks a data-plane config file. `fallback` fills top-level fields the file
 *  does not set (the environment's state directory and socket), before the check. */
export function loadConfig(path: string, fallback: { stateDir?: string; socket?: string } = {}): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const fix = code === 'ENOENT'
      ? 'no such file: write one (docs/dataplane.md, "Config file", has a full example), or give --config the path of yours'
      : code === 'EISDIR' ? 'it is a directory: give --config the config file in it'
      : code === 'EACCES' ? 'permission denied: run as root (the data plane needs it anyway), or fix the file\'s mode'
      : (e as Error).message;
    throw notFound(`cannot read the data-plane config ${path}: ${fix}`, { path, ...(code ? { code } : {}) });
  }
  let data: unknown;
  try {
    data = parseYamlOrJson(text);
  } catch (e) {
    throw badFile(`${path} is not valid YAML or JSON: ${(e as Error).message}`);
  }
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    const d = data as Record<string, unknown>;
    for (const [k, v] of Object.entries(fallback)) if (v !== undefined && d[k] === undefined) d[k] = v;
  }
  // What the file says is bad input in a file (kind 'bad-file', exit 1), as a pool file's
  // or a hw-profile's is; a bad command line is the usage error (exit 2).
  try {
    return parseConfig(data, path);
  } catch (e) {
    if (e instanceof VfpError && e.kind === 'invalid') throw badFile(e.message, e.details);
    throw e;
  }
}

export { socketPath } from './control.js';
export { zodMessage } from '../util/zod.js';

/** What a reload did, for the log and the CLI: the items the file changed, and those it
 *  set back to what it declares after the control socket had changed them. */
export function reloadSummary(changed: string[], undone: string[]): string {
  const parts = [changed.length ? `${changed.join(', ')} changed` : '', undone.length ? `${undone.join(', ')} set back to what the file declares (undoing control-socket changes)` : ''].filter(Boolean);
  return parts.length ? parts.join('; ') : 'nothing changed';
}
