// What a running data plane's `status` reply says is wrong, as sentences that name the
// cause and what to do: `vfplane dataplane status` prints each beside the part of its
// report it is about, `vfplane doctor` lists them as its data plane's warnings.
import { listSome } from '../util/text.js';

/** The parts of the `status` reply the warnings (and the human status) read. */
export interface StatusReply {
  node: string;
  backend: string;
  epoch: number;
  /** The UDP port this node's VXLAN goes to and is taken on. */
  dstPort?: number;
  uplink: {
    name: string; vtep: string; mode?: string; why?: string;
    /** The 802.1Q tag of the underlay frames (uplink.vlan); absent or null: untagged. */
    vlan?: number | null;
    outerChecksums?: { ipv4: string; udp: string };
    offload?: { tier: number; allowed: number | null; why: string };
    vtepConflict?: { frames: number; mac: string; secondsAgo: number };
    mtu?: number; overlayMtu?: number;
    link?: 'up' | 'down' | 'no-carrier'; linkSecondsAgo?: number; linkDowns?: number; mac?: string;
  };
  notPeer?: { vtep: string; frames: number; secondsAgo: number };
  /** A MAC of a pod attached here that also came from behind a peer on its VNI: the last. */
  duplicateMac?: { mac: string; vni: number; representor: string; vtep: string; times: number; secondsAgo: number };
  /** Frames dropped as static_elsewhere since the start, and when the count last grew. */
  staticElsewhere?: { frames: number; secondsAgo: number };
  /** Frames dropped as no_destination since the start, and when the count last grew. */
  noDestination?: { frames: number; secondsAgo: number };
  floods?: { vni: number; vteps: string[] }[];
  /** Pods' frames dropped as spoofed since the start, and when the count last grew. */
  spoofed?: { frames: number; secondsAgo: number };
  /** IPv6 VXLAN frames dropped as udp_zero_checksum, and since when none more. */
  udpZeroChecksum?: { frames: number; secondsAgo: number };
  neighReachableSeconds?: number;
  uptimeSeconds?: number;
  peers: {
    vtep: string; mac?: string; state?: string; underlayMac?: string | null; resolvedSecondsAgo?: number; heardSecondsAgo?: number; via?: string; requests?: number; encapPkts?: number; pathMtu?: number;
    /** For how long every 2 s beat found frames sent to it and none from it; absent: not so. */
    unansweredSeconds?: number;
    decapPkts?: number;
    /** A resolved peer: the ARP/ND requests sent for it since its MAC was last heard from. */
    unansweredRequests?: number;
    /** Since a frame from it was last decapsulated; absent: never (or a data plane older than this CLI). */
    lastFrameSecondsAgo?: number;
    /** Its VXLAN frames to another UDP port than dstPort (dropped as not_vxlan_port): the last port. */
    wrongPort?: { port: number; frames: number; secondsAgo: number };
    /** ICMP port unreachable from it for this node's VXLAN packets. */
    portUnreachable?: { frames: number; secondsAgo: number };
    /** Its VXLAN frames to this node's MAC and port but another address than its VTEP. */
    sentElsewhere?: { to: string; frames: number; secondsAgo: number };
  }[];
  attachments: {
    representor: string; pci?: string; vni: number; mac: string; owner?: Record<string, string>; representorState?: string; why?: string; ownerGone?: boolean; podMtu?: number;
    /** Frames its pod's interface refused (tx_device_drops), and when the count last grew. */
    refused?: { frames: number; secondsAgo: number };
    /** Frames from its pod longer than its port takes (rx_truncated, rx_oversize), the MTU its port was opened for, when the count last grew. */
    truncated?: { frames: number; secondsAgo: number; portMtu?: number };
  }[];
  /** Pods' frames over the overlay's MTU since the start (mtu_exceeded), and the ICMP too big sent for them. */
  mtuExceeded?: { frames: number; icmpTooBig: number; icmpTooBigLimited: number };
  workers: { cpu: number; epoch: number }[];
  /** How the workers poll, and each pod's flood limit (null: none); absent from older data planes. */
  polling?: { burst: number; idleSpins: number; floodPps: number | null };
  ports?: { name: string; kind?: string; queues?: number; ringBytes?: number; txFull?: number; rxNombuf?: number; drops?: Record<string, number>; stackDrop?: boolean; stackDropNote?: string; csumFinished?: number; csumLeft?: number }[];
  learning?: {
    on: boolean; capacity: number; entries: number; full: number; fullSecondsAgo?: number; perVni?: number; limited?: number; limitedSecondsAgo?: number;
    /** learnMoved since the start, and over the last minute or so (absent: none moved). */
    moved?: number; movedLately?: { moves: number; seconds: number };
  };
  /** Present while changes made (a pod's detach, the beat's) are not in the state file. */
  stateFile?: { path: string; unsavedSince: string; unsavedSeconds: number; why: string };
}

/** `about` is the part of the report a warning belongs with. */
export interface StatusWarning {
  about: 'uplink' | 'learning' | 'peers' | 'attachments';
  text: string;
}

/** How long after the learned table last turned a MAC away its warning stands: twice the
 *  default ageSeconds, by when a burst's entries have aged out. */
const RECENT_S = 600;

/** How long a warning made of dropped frames stands after the last one (spoofed,
 *  static_elsewhere, a zero UDP checksum, a peer's wrong port or address): a fault fixed
 *  should not be chased for ten minutes more (helper-85), and one still there drops its
 *  next frame well within this. */
const DROPS_RECENT_S = 120;


/** Moves of learned MACs between VTEPs (in status's window, a minute) past which status
 *  warns: a pod that moves, or a MAC taken over once, makes one or two. */
const MOVES_WARN = 10;

/** The unicast probes the workers send a stale peer MAC before they broadcast
 *  (native/worker/dp.c, NEIGH_UCAST_PROBES). */
const UCAST_PROBES = 3;

/** An IPv6 address (the VTEP's family: ARP or ND). */
const isV6 = (a: string) => a.includes(':');

/** Past this many peers with the same trouble, one warning names a few and counts them. */
const GROUP_PAST = 8;

/** "pod NS/NAME" of an attachment whose owner names its pod, else ''. */
const podOf = (a: { owner?: Record<string, string> }) => (a.owner?.podName ? `pod ${a.owner.podNamespace ?? '?'}/${a.owner.podName}` : '');

export function statusWarnings(s: StatusReply): StatusWarning[] {
  const out: StatusWarning[] = [];
  const vc = s.uplink.vtepConflict;
  if (vc) out.push({ about: 'uplink', text: `another host (MAC ${vc.mac}) claims VTEP address ${s.uplink.vtep} on the underlay: ${vc.frames} ARP/ND frame(s) since the start, the last ${vc.secondsAgo} s ago; peers may send this node's traffic to it. Give one of the two another address (uplink.vtep), or take the address off that host` });
  const ln = s.uplink.link;
  if (ln && ln !== 'up') out.push({ about: 'uplink', text: `the uplink ${s.uplink.name} is ${ln === 'down' ? 'down (set down on the host)' : 'up without carrier'}${s.uplink.linkSecondsAgo !== undefined ? ` since ${s.uplink.linkSecondsAgo} s ago` : ''}: every frame for the underlay is lost. ${ln === 'down' ? `\`ip link set ${s.uplink.name} up\` brings it back` : 'Check the cable, the switch port or the peer end'}` });
  const lr = s.learning;
  // About now: a table that filled once and has room again (its entries aged) is no
  // reason to act. Said while the count grew in the last RECENT_S seconds.
  const recent = (secondsAgo: number | undefined) => secondsAgo === undefined || secondsAgo <= RECENT_S;
  const lately = (secondsAgo: number) => secondsAgo <= DROPS_RECENT_S;
  /** A peer whose VXLAN this node has decapsulated since `secondsAgo`: what went wrong
   *  with its frames then (a port, an address) is right again. */
  const heardSince = (p: { lastFrameSecondsAgo?: number }, secondsAgo: number) => p.lastFrameSecondsAgo !== undefined && p.lastFrameSecondsAgo < secondsAgo;
  if (lr?.full && recent(lr.fullSecondsAgo)) out.push({ about: 'learning', text: `the learned FDB is full (${lr.capacity} entries a worker): ${lr.full} frames from a MAC it had no room for since the start, the last ${lr.fullSecondsAgo ?? 0} s ago; frames to such MACs flood as unknown unicast. Raise learnCapacity in the config and restart the data plane` });
  if (lr?.limited && recent(lr.limitedSecondsAgo)) out.push({ about: 'learning', text: `a VNI reached its cap of learned MACs (learnPerVni: ${lr.perVni}): ${lr.limited} frames from a MAC it had no room for since the start, the last ${lr.limitedSecondsAgo ?? 0} s ago; frames to such MACs flood on their VNI. A VNI with that many remote MACs needs a higher learnPerVni (restart to change); else a pod there sends from ever new MACs (\`vfplane dataplane fdb list\` lists the learned entries)` });
  // An empty flood list on a VNI with pods here: their ARP requests reach no other node,
  // and a pod elsewhere is reached only through an FDB entry (helper-109: said only by
  // the "flood lists" line, while explain of the pod's MAC answered "encapsulated").
  const nd = s.noDestination;
  const emptyHere = (s.floods ?? []).filter((f) => f.vteps.length === 0 && s.attachments.some((a) => a.vni === f.vni)).map((f) => f.vni);
  if (nd && lately(nd.secondsAgo) && emptyHere.length) {
    const vnis = emptyHere.join(', ');
    out.push({ about: 'learning', text: `VNI ${vnis} ${emptyHere.length === 1 ? 'has an empty flood list' : 'have empty flood lists'} (\`flood set --none\`, or the config's floods) and pods here: their broadcasts, ARP requests among them, and unknown unicast reach no other node; ${nd.frames} frame(s) went nowhere since the start (no_destination, all VNIs), the last ${nd.secondsAgo} s ago. A pod on another node is reached only through an FDB entry${lr && !lr.on ? ', and learning is off, so only a static one' : ''}. ${emptyHere.map((v) => `\`vfplane dataplane flood set --vni ${v} --all-peers\``).join(', ')} floods to every peer again (or name the peers with pods on it)` });
  }
  const se = s.staticElsewhere;
  if (se && lately(se.secondsAgo)) out.push({ about: 'learning', text: `${se.frames} frame(s) from the underlay dropped since the start, the last ${se.secondsAgo} s ago (static_elsewhere): their inner source MAC has a static FDB entry naming another VTEP than the one they came from, so that host's pod does not reach this node. The static entry points at the wrong VTEP (the pod moved, a typo) or the MAC is spoofed: \`vfplane dataplane drops --reason static_elsewhere\` shows those frames (their VTEP and inner source), \`vfplane dataplane explain --from uplink --vni N --mac M --src MAC --vtep V\` explains one; \`vfplane dataplane fdb del\` and \`fdb add\` (and the config's fdb) set the entry right` });
  // A MAC moves when a frame from it comes from another VTEP than the one it was learned
  // from: now and then a pod that moved; many times a minute, two hosts that share a MAC
  // (or a loop), whose traffic then flaps between the nodes.
  const ml = lr?.movedLately;
  if (ml && ml.moves >= MOVES_WARN) out.push({ about: 'learning', text: `learned MACs keep moving between VTEPs: ${ml.moves} moves in the last ${ml.seconds} s (learnMoved: ${lr!.moved ?? ml.moves} since the start): two hosts on the overlay use one MAC (a cloned VM or pod spec, a MAC set by hand), or a loop on the underlay brings frames back through another VTEP; frames for such a MAC go to whichever node sent from it last. \`vfplane dataplane fdb list\` run twice shows which MACs change VTEP` });
  // A tagged underlay: requests go out on the VLAN only, and a peer (or switch port) off
  // it never sees them.
  const onVlan = s.uplink.vlan != null ? `; this node tags its underlay frames with VLAN ${s.uplink.vlan} (uplink.vlan): the peer must be on that VLAN` : '';
  // A peer asked and never answered: frames for it are dropped (neigh_unresolved).
  // Behind a gateway: one warning for the gateway, naming how many peers wait on it.
  const behind = new Map<string, string[]>();
  for (const p of s.peers.filter((x) => x.state === 'unresolved' && x.via)) behind.set(p.via!, [...(behind.get(p.via!) ?? []), p.vtep]);
  for (const [gw, vteps] of behind) {
    out.push({ about: 'peers', text: `the gateway ${gw} has not answered ARP/ND: its MAC is unknown, so frames for the ${vteps.length === 1 ? `peer ${vteps[0]}` : `${vteps.length} peers behind it (${vteps.slice(0, 3).join(', ')}${vteps.length > 3 ? ', …' : ''})`} are dropped (neigh_unresolved). Check that the router is up on the uplink's link with that address (uplink.gateway)${onVlan.replace('the peer', 'the router')}` });
  }
  // One warning a peer, or past GROUP_PAST of them one for all (helper-79: 1023 peers not
  // answered made 2070 lines of status).
  const unanswered = s.peers.filter((x) => x.state === 'unresolved' && !x.via);
  const check = `Check that the peer is up on the underlay with that address${onVlan}; a peer on another subnet, behind a router, needs uplink.gateway (and uplink.prefixLength for the peers that are on the link); or give its MAC in the config (peers[].mac)`;
  if (unanswered.length > GROUP_PAST) {
    out.push({ about: 'peers', text: `${unanswered.length} peers have not answered ARP/ND (${listSome(unanswered.map((p) => p.vtep))}; \`--json\` lists them): their MACs are unknown, so frames for them are dropped (neigh_unresolved). ${check}` });
  } else {
    for (const p of unanswered) {
      out.push({ about: 'peers', text: `peer ${p.vtep} has not answered ${p.requests ?? 0} ARP/ND request(s): its MAC is unknown, so frames for it are dropped (neigh_unresolved). ${check}` });
    }
  }
  // Resolved once, asked again (its MAC unheard for neighReachableSeconds while frames go
  // to it: three unicast probes, then broadcasts, a second apart) and silent: the peer is
  // down or lost its address, and frames go to a MAC nobody may have now. Past the
  // unicast probes, so that one answered late is not said.
  const ask = isV6(s.uplink.vtep) ? 'neighbour solicitations' : 'ARP requests';
  const gone = s.peers.filter((x) => x.state === 'resolved' && (x.unansweredRequests ?? 0) > UCAST_PROBES);
  const goneWhy = `it is down or no longer has that address, and frames for it still go to the MAC it had. Check the node (its uplink up, its VTEP address on it); a node renumbered needs its new VTEP among the peers`;
  if (gone.length > GROUP_PAST) {
    out.push({ about: 'peers', text: `${gone.length} peers have not answered ${ask} for their VTEPs (${listSome(gone.map((p) => p.vtep))}; \`--json\` lists them): ${goneWhy}` });
  } else {
    for (const p of gone) out.push({ about: 'peers', text: `peer ${p.vtep} has not answered ${p.unansweredRequests} ${ask}${p.heardSecondsAgo !== undefined ? ` in ${Math.max(0, p.heardSecondsAgo - (s.neighReachableSeconds ?? 30))} s (last heard ${p.heardSecondsAgo} s ago)` : ''}: ${goneWhy}` });
  }
  // Sent to, not answering: frames went to it for twice neighReachableSeconds (60 s by
  // default, by when a peer MAC that old has been asked for again) and none came back.
  const QUIET_S = 2 * (s.neighReachableSeconds ?? 30);
  const quiet = s.peers.filter((x) => x.state !== 'unresolved' && !gone.includes(x) && (x.unansweredSeconds ?? 0) >= QUIET_S);
  if (quiet.length > GROUP_PAST) {
    out.push({ about: 'peers', text: `${quiet.length} peers have been sent to for ${QUIET_S} s or more and no VXLAN frame came back from them (${listSome(quiet.map((p) => p.vtep))}; \`--json\` lists them): the way back is broken, or their pods never answer (one-way traffic). Check that those nodes have this node's VTEP ${s.uplink.vtep} among their peers, and that VXLAN UDP from them to this node is not filtered` });
  } else {
    for (const p of quiet) {
      out.push({ about: 'peers', text: `peer ${p.vtep}: this node has sent to it for ${p.unansweredSeconds} s and no VXLAN frame came back (${p.lastFrameSecondsAgo === undefined ? 'none since the start' : `the last ${p.lastFrameSecondsAgo} s ago`}): the way back is broken, or its pods never answer (one-way traffic). Check that the node at ${p.vtep} has this node's VTEP ${s.uplink.vtep} among its peers (a kernel vxlan device: in its FDB or as its remote), and that VXLAN UDP from it to this node is not filtered` });
    }
  }
  // A dstPort that differs between nodes: the peer's VXLAN comes to another port (its
  // frames are lost), or its host answers ours with port unreachable (ours are).
  const port = s.dstPort ?? 4789;
  const samePort = `give every node the same dstPort (Linux's vxlan device uses 8472 when created without dstport)`;
  for (const p of s.peers) {
    const wp = p.wrongPort, pu = p.portUnreachable;
    if (wp && lately(wp.secondsAgo) && !heardSince(p, wp.secondsAgo)) {
      out.push({ about: 'peers', text: `peer ${p.vtep} sends VXLAN to UDP ${wp.port}; this node listens on ${port} (dstPort): ${samePort}. ${wp.frames} frame(s) from it dropped (not_vxlan_port), the last ${wp.secondsAgo} s ago` });
    } else if (pu && lately(pu.secondsAgo) && !heardSince(p, pu.secondsAgo)) {
      out.push({ about: 'peers', text: `peer ${p.vtep} has nothing listening on UDP ${port}: its host answered this node's VXLAN with ${pu.frames} ICMP port unreachable, the last ${pu.secondsAgo} s ago. Its vxlan device uses another port, or is down: ${samePort}` });
    }
  }
  // Frames from a VTEP the config does not name: delivered, its MACs not learned.
  const np = s.notPeer;
  if (np && np.secondsAgo <= RECENT_S) out.push({ about: 'peers', text: `frames from VTEP ${np.vtep}, which is not a peer of this node, came in ${np.secondsAgo} s ago (${np.frames} from such VTEPs since the start): they reach the pods, but the MACs behind it are not learned, so the replies flood (or go nowhere on a VNI with a flood list) and never reach it unless it is a peer. A node renumbered, or one missing from the peers: add it (peers in the config, or \`vfplane dataplane peer add ${np.vtep}\`)` });
  // Two hosts with one MAC on a VNI: a pod here, and one behind a peer. The kernel's
  // bridge would flap between them; this node keeps sending to its own pod.
  const dm = s.duplicateMac;
  if (dm && lately(dm.secondsAgo)) out.push({ about: 'attachments', text: `MAC ${dm.mac} of the pod on ${dm.representor} (VNI ${dm.vni}) also sends from behind peer ${dm.vtep}, the last ${dm.secondsAgo} s ago (${dm.times} time(s) since the start): two hosts have one MAC. What this node's pods send to it reaches the local pod only, and the other node sends its own there. Give one of them another MAC (a MAC set in its network config, CNI_ARGS or runtimeConfig, or a cloned VM's); \`vfplane dataplane explain --vni ${dm.vni} --mac ${dm.mac}\` shows both` });
  // A peer that sends this node's VXLAN to another address than its VTEP (to its MAC: an
  // address it had, or the peer's entry for it is wrong): one of the two is misconfigured.
  for (const p of s.peers) {
    const se = p.sentElsewhere;
    if (se && lately(se.secondsAgo) && !heardSince(p, se.secondsAgo)) out.push({ about: 'peers', text: `peer ${p.vtep} sends VXLAN to ${se.to}, not to this node's VTEP ${s.uplink.vtep} (uplink.vtep): ${se.frames} frame(s) dropped (not_local), the last ${se.secondsAgo} s ago. One of the two nodes has the wrong address: this node's uplink.vtep (renumbered, a typo), or the peer's entry for this node (its peers list, its FDB)` });
  }
  // A peer that leaves IPv6 UDP checksums out (RFC 6935/6936 allow it for tunnels, by
  // configuration) against this node verifying them: every frame of it is lost.
  const zc = s.udpZeroChecksum;
  if (zc && lately(zc.secondsAgo)) out.push({ about: 'peers', text: `${zc.frames} IPv6 VXLAN frame(s) with UDP checksum 0 were dropped (udp_zero_checksum) since the start, the last ${zc.secondsAgo} s ago: this node verifies outer UDP checksums (tunnel.verifyUdpCsum) and a peer sends none (a kernel vxlan device made with udp6zerocsumtx). Turn one off: tunnel.verifyUdpCsum: false here, or make the peer's vxlan device without udp6zerocsumtx (\`vfplane dataplane drops\` shows which peer; Linux's own vxlan takes zero checksums only with udp6zerocsumrx)` });
  for (const a of s.attachments.filter((x) => x.representorState === 'gone' || x.representorState === 'replaced')) {
    // A pod's attachment goes with the pod (DEL, GC); the operator's (no owner) only
    // when the operator detaches it: gc knows nothing of it.
    const undo = a.owner?.containerId ? 'CNI DEL (or GC, vfplane gc) detaches it' : `it was attached by hand (config or \`dataplane attach\`), so \`vfplane dataplane detach --representor ${a.representor}\` detaches it`;
    out.push({ about: 'attachments', text: `representor ${a.representor}${a.pci ? ` (VF ${a.pci})` : ''} is ${a.representorState === 'gone' ? 'gone' : 'a new netdev now'}: ${a.owner?.containerId ? 'its pod no longer reaches' : 'it is off'} the overlay; ${undo}` });
  }
  // Set down since the attach: the port reads and sends nothing, the pod is cut off, and
  // nothing else says so (helper-109: the table said "ok").
  for (const a of s.attachments.filter((x) => !x.ownerGone && (x.representorState === 'down' || x.representorState === 'no-carrier'))) {
    const of = [a.pci ? `VF ${a.pci}` : '', podOf(a)].filter(Boolean).join(', ');
    const who = `representor ${a.representor}${of ? ` (${of})` : ''}`;
    out.push({ about: 'attachments', text: a.representorState === 'down'
      ? `${who} is down (set down since it was attached): nothing passes between its pod and the overlay. Bring it up: \`ip link set ${a.representor} up\`${a.pci ? `, or, if \`vfplane vf show ${a.pci}\` says link state disable, \`vfplane vf config ${a.pci} --link-state auto --force\`` : ''}`
      : `${who} has no carrier: the pod's side of it is down (its interface set down inside the pod, or the VF's link state disabled), so nothing passes. Bring the pod's interface up, or the VF's link (\`vfplane vf config ${a.pci ?? 'VF'} --link-state auto --force\`)` });
  }
  for (const a of s.attachments.filter((x) => x.representorState === 'waiting')) {
    const undo = a.owner?.containerId ? 'or dropped by its DEL (CNI GC, vfplane gc)' : `or dropped by \`vfplane dataplane detach --representor ${a.representor}\``;
    out.push({ about: 'attachments', text: `${a.representor}${a.pci ? ` (VF ${a.pci})` : ''} was not attached at this start (${a.why ?? 'its representor is missing'}); it is attached once the representor exists, ${undo}` });
  }
  const orphans = s.attachments.filter((x) => x.ownerGone);
  if (orphans.length) {
    out.push({ about: 'attachments', text: `the pods of ${orphans.map((a) => a.representor).join(', ')} are gone (their network namespaces no longer exist; a reboot?) while their VFs stay on the overlay: their DEL, the runtime's CNI GC or \`vfplane gc\` releases them` });
  }
  // Pods whose MTU is over what the overlay carries now (the underlay's MTU may have gone
  // down since their attach, which said so): their larger frames are dropped, the ones
  // with DF answered with ICMP too big; the others (most UDP) lost without a word.
  const om = s.uplink.overlayMtu;
  const over = om ? s.attachments.filter((a) => a.podMtu !== undefined && a.podMtu > om) : [];
  if (over.length) {
    const me = s.mtuExceeded;
    const seen = me ? `: ${me.frames} frame(s) dropped so far (mtu_exceeded, all pods), ${me.icmpTooBig} answered with ICMP too big${me.icmpTooBigLimited ? ` (${me.icmpTooBigLimited} not, for the rate limit)` : ''}` : '';
    const names = over.map((a) => `${a.representor}${podOf(a) ? ` (${podOf(a)})` : ''} MTU ${a.podMtu}`);
    out.push({ about: 'attachments', text: `${over.length === 1 ? 'a pod interface has an MTU' : `${over.length} pod interfaces have MTUs`} over the ${om} bytes the overlay carries (${listSome(names)})${seen}. Their packets over ${om} bytes are dropped; IPv4 ones with DF set, and every IPv6 one, are answered with ICMP too big (TCP adapts), IPv4 ones without DF (most UDP, \`ping -M dont\`) are lost without a word. Give the pods an MTU ≤ ${om} (CNI "mtu") or raise the underlay's MTU` });
  }
  // IPv6 needs links of 1280 bytes (RFC 8200 §5): on an overlay that carries less, pods
  // get no IPv6 (vfplane-cni refuses an IPv6 address at such an MTU; Linux takes IPv6
  // off an interface set under it), and under 1280 no packet too big is sent (RFC 8201),
  // so IPv6 packets between the two are lost without a word.
  if (om && om < 1280) {
    const need = s.uplink.mtu ? ` to ${1280 + (s.uplink.mtu - om)} or more` : '';
    out.push({ about: 'uplink', text: `the overlay carries packets of up to ${om} bytes, under IPv6's minimum link MTU of 1280 (RFC 8200): pods on it get no IPv6 (vfplane-cni refuses an IPv6 address on an interface under 1280), and IPv6 packets of ${om + 1}–1280 bytes are dropped without an ICMP packet too big. Raise the underlay's MTU${need}` });
  }
  // Frames a pod's own interface would not take: over its MTU (pods of one VNI with
  // different MTUs: the larger frames between them are lost, TCP's too once a path is
  // established with the larger MSS of the sender's side), or it is down.
  for (const a of s.attachments.filter((x) => x.refused && lately(x.refused.secondsAgo))) {
    const r = a.refused!;
    const pod = podOf(a) ? ` (${podOf(a)})` : '';
    out.push({ about: 'attachments', text: `the interface behind ${a.representor}${pod} refused ${r.frames} frame(s) sent to it since it was attached, the last ${r.secondsAgo} s ago (tx_device_drops): frames over its MTU came for it, from a pod of VNI ${a.vni} with a larger MTU or a host behind a peer, or it is down. Give the pods of VNI ${a.vni} one MTU (CNI "mtu", or none: the overlay's), or bring the interface up` });
  }
  // Frames from a pod longer than its port's ring slots, sized from the MTU at the attach:
  // the pod's MTU (and its representor's) raised since (helper-109: said only by stats's
  // port drops, while status claimed the overlay carries 8950 bytes).
  for (const a of s.attachments.filter((x) => x.truncated && lately(x.truncated.secondsAgo))) {
    const t = a.truncated!;
    const pod = podOf(a) ? ` (${podOf(a)})` : '';
    const ifn = a.owner?.ifname ?? 'IFACE';
    const back = t.portMtu
      ? `Set the pod's MTU back to ${t.portMtu} (in the pod: \`ip link set ${ifn} mtu ${t.portMtu}\`; and \`ip link set ${a.representor} mtu ${t.portMtu}\`)`
      : 'Set the pod\'s MTU back to what it was when it was attached';
    out.push({ about: 'attachments', text: `${t.frames} frame(s) from the pod behind ${a.representor}${pod} were longer than its port takes and were lost (rx_truncated), the last ${t.secondsAgo} s ago: the port's buffers were sized when it was attached${t.portMtu ? `, for MTU ${t.portMtu}` : ''}, and the pod's MTU was raised since. ${back}, or re-create the pod (DEL, ADD) with the MTU it needs (CNI "mtu") for a port sized for it` });
  }
  const sp = s.spoofed;
  if (sp && lately(sp.secondsAgo)) out.push({ about: 'attachments', text: `${sp.frames} frame(s) from pods dropped since the start, the last ${sp.secondsAgo} s ago (spoofed): a pod sent from a MAC other than the one it was attached with (antiSpoof), and its frames from that MAC do not reach the overlay: a MAC changed inside the pod (\`ip link set … address\`), or a bridge or VM in it. \`vfplane dataplane drops --reason spoofed\` shows the port and the MAC; give the pod its attached MAC back, or attach it with the MAC it uses (CNI "mac")` });
  const sf = s.stateFile;
  if (sf) out.push({ about: 'attachments', text: `the state file ${sf.path} cannot be written (${sf.why}) since ${sf.unsavedSeconds} s ago: what changed since is running but not in it, and a restart now would start from the file as it was (a pod detached since comes back, until its VF is found released). Make the state directory writable (and not full); the data plane writes the file as soon as it can` });
  return out;
}
