/* The data plane: ports, worker threads that poll them, and the configuration the
 * workers forward by (docs/dataplane.md). Pods' frames arrive on representor ports and
 * leave VXLAN-encapsulated on the uplink; the uplink's VXLAN frames are decapsulated and
 * switched to the representors of their VNI. The control thread builds an immutable
 * configuration and publishes it (an epoch); workers switch at a burst boundary and the
 * control thread frees the old one once every worker has moved on. Workers never block
 * on the control thread. Counters live in one block per worker that TypeScript maps. */
#ifndef VFP_WORKER_DP_H
#define VFP_WORKER_DP_H

#include "core/fdb.h"
#include "core/vxlan.h"
#include "io/port.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VFP_DP_MAX_PORTS 1024    /* the uplink and the representors: two 256-VF E810s and more */
#define VFP_DP_MAX_VNIS 1024     /* VNIs with counters; also the most VNIs one node serves */
#define VFP_DP_MAX_PEERS 1024    /* remote VTEPs: a node per peer, every other node of a 1025-node cluster */
#define VFP_DP_MAX_WORKERS 16
#define VFP_DP_NO_PORT 0xffffu

/* Drop reasons of the data plane, on top of the engine's (enum vfp_reason). */
enum vfp_dp_drop {
    VFP_DP_D_NO_ATTACHMENT = 0, /* a frame on a port that is neither the uplink nor attached */
    VFP_DP_D_NO_PEER,           /* the FDB names a VTEP that is not a configured peer */
    VFP_DP_D_NEIGH_UNRESOLVED,  /* the peer's MAC on the underlay is not known yet (ARP/NS sent) */
    VFP_DP_D_NO_LOCAL_PORT,     /* a decapsulated frame for a VNI with no local port */
    VFP_DP_D_HAIRPIN,           /* a frame addressed to the port it came from */
    VFP_DP_D_TX_FULL,           /* the output port took no more */
    VFP_DP_D_NO_BUFFER,         /* no scratch buffer for a flood copy or an ARP/ND frame */
    VFP_DP_D_ARP_OTHER,         /* ARP on the uplink not for our VTEP */
    VFP_DP_D_SPOOFED,           /* a pod frame whose source MAC is not its attachment's */
    VFP_DP_D_ND_OTHER,          /* ICMPv6 on the uplink that is neither valid ND nor an MLD query */
    VFP_DP_D_HANDOFF_FULL,      /* for a queue another worker owns: its ring was full, or the frame too big for a slot */
    VFP_DP_D_HANDOFF_STALE,     /* handed over in one configuration epoch, taken in another */
    VFP_DP_D_BAD_SRC_MAC,       /* a decapsulated frame whose source MAC is a group or all-zero address */
    VFP_DP_D_STATIC_ELSEWHERE,  /* a decapsulated frame from a MAC a static FDB entry puts behind another VTEP */
    VFP_DP_D_NO_DESTINATION,    /* a pod's flooded frame with no other local pod and no remote VTEP to go to */
    VFP_DP_D_OTHER_HOST,        /* an IP frame on the uplink to another host's unicast MAC (the kernel's PACKET_OTHERHOST) */
    VFP_DP_D_REASM_TIMEOUT,     /* a fragmented VXLAN packet not whole within 30 s, or put out by a newer one (per datagram) */
    VFP_DP_D_REASM_OVERLAP,     /* a fragmented VXLAN packet with overlapping fragments (RFC 5722; per datagram) */
    VFP_DP_D_REASM_INVALID,     /* a fragment whose offsets or lengths cannot be (a middle one not a multiple of 8 bytes,
                                 * past the end the last one set), or a datagram bigger than a scratch buffer */
    VFP_DP_D_REASM_FULL,        /* a new fragmented datagram while every reassembly slot holds one younger than 100 ms */
    VFP_DP_D_FLOOD_LIMITED,     /* a pod's frame to flood (broadcast, multicast, unknown unicast) over its flood rate (flood_pps) */
    VFP_DP_D__COUNT
};
const char *vfp_dp_drop__name(unsigned d);

typedef struct vfp_dp_port_stats {
    uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, drops;
    uint64_t errors;            /* errors its receive fds reported (ENETDOWN: the netdev went down or away) */
    uint64_t pad[2];
} vfp_dp_port_stats;

typedef struct vfp_dp_vni_stats {
    uint64_t vni;               /* the VNI this slot counts (0: unused) */
    uint64_t encap_pkts, encap_bytes, decap_pkts, decap_bytes;
    uint64_t flood_pkts;        /* copies made by flooding (local and head-end) */
    uint64_t local_pkts;        /* switched between two local ports */
    uint64_t drops;
} vfp_dp_vni_stats;

/* What one worker knows of one peer VTEP, by the peer's index in the current epoch.
 * The slot names its peer (family and address), so a reader can tell which peer a
 * slot counts for; a slot that gets another peer after a configuration change starts
 * from zero. */
typedef struct vfp_dp_peer_stats {
    uint64_t family;            /* 4 or 6; 0: no peer at this index */
    uint8_t addr[16];           /* the peer's VTEP (IPv4 in the first 4 bytes) */
    uint64_t encap_pkts, encap_bytes;
    uint64_t requests;          /* ARP requests / neighbour solicitations sent for its MAC */
    uint64_t mac;               /* its underlay MAC in bytes 0–5 (memory order), byte 6: 1 resolved
                                 * (learned from ARP/ND), 2 configured, 0 not known yet */
    uint64_t resolved_ns;       /* CLOCK_MONOTONIC when the MAC was learned (0: never) */
    uint64_t pmtu;              /* the path MTU a router reported to this worker (0: none) */
    uint64_t pmtu_until_ns;     /* CLOCK_MONOTONIC until when it holds */
    uint64_t confirmed_ns;      /* CLOCK_MONOTONIC when the learned MAC was last heard from the peer (ARP/ND) */
    uint64_t decap_pkts, decap_bytes; /* VXLAN frames from it decapsulated (inner bytes), whatever became of them */
    uint64_t rx_ns;             /* CLOCK_MONOTONIC of a burst with the last of them (0: none yet) */
    uint64_t flood_pkts;        /* of encap_pkts, the flood copies (broadcast, multicast, unknown
                                 * unicast: head-end replication), which the peer owes no answer */
    /* Underlay settings that disagree with the peer's (status names them): its VXLAN
     * frames to a UDP port not ours (dropped as not_vxlan_port), the last such port and
     * when; ICMP / ICMPv6 port unreachable from it quoting our VXLAN packet (nothing of
     * its listens on our port; dropped as not_udp / nd_other), and when the last came. */
    uint64_t wrong_port_pkts, wrong_port, wrong_port_ns;
    uint64_t port_unreach, port_unreach_ns;
    /* Its VXLAN frames to our port and MAC but another IP address than our VTEP (dropped
     * as not_local): one of the two nodes has the wrong VTEP address (uplink.vtep, its
     * peers). How many, the last such address (family, then 16 bytes) and when. */
    uint64_t not_local_pkts, not_local_family;
    uint8_t not_local_addr[16];
    uint64_t not_local_ns;
} vfp_dp_peer_stats;

/* One worker's counters. Written only by that worker; readers sum across workers and
 * tolerate a torn read of a counter that is being incremented (64-bit aligned stores
 * are atomic on every target we build for). */
typedef struct vfp_dp_worker_stats {
    vfp_stats engine;
    uint64_t drops[VFP_DP_D__COUNT];
    uint64_t loops, busy_loops, idle_sleeps, epoch;
    uint64_t arp_replies, arp_requests, neigh_learned, aged;
    int64_t cpu;                /* the CPU the worker runs on */
    uint64_t nd_solicits;       /* neighbour solicitations sent (IPv6 peers) */
    uint64_t nd_adverts;        /* neighbour advertisements sent (for our VTEP) */
    uint64_t mld_reports;       /* MLDv2 reports sent for our VTEP's solicited-node group */
    uint64_t mld_queries;       /* MLD queries received for it (general or for the group) */
    uint64_t vtep_conflicts;    /* ARP/ND frames from another MAC claiming our VTEP's address */
    uint64_t vtep_conflict_mac; /* the last such MAC: its 6 bytes first, in wire order */
    uint64_t vtep_conflict_ns;  /* CLOCK_MONOTONIC of the last such frame (0: none) */
    uint64_t learn_shared;      /* learned entries (new, moved, refreshed) sent to the other workers */
    uint64_t learn_share_lost;  /* of those, dropped on a full ring (the next refresh repeats them) */
    uint64_t learn_synced;      /* entries the other workers learned, applied to this one's FDB */
    uint64_t handed_off;        /* frames for a port queue another worker owns, passed to it */
    uint64_t learn_not_peer;    /* decapsulated frames from a VTEP that is not a peer: delivered, not learned */
    uint64_t learned_entries;   /* a gauge, not a counter: entries in this worker's learned FDB,
                                 * as of its last ageing pass (ten a second) */
    /* The distinct destinations of pod bursts, by how from_pod found where they go: its
     * destination cache, the tables (then cached), the tables with the cache bypassed. */
    uint64_t dest_cache_hits, dest_cache_misses, dest_cache_bypassed;
    /* The distinct inner sources of decapsulated bursts, by how from_uplink found what
     * each needs (its static entry, whether learning it again would change anything):
     * its source cache, the tables (then cached), the tables with the cache bypassed.
     * None with neither static entries nor learning. */
    uint64_t src_cache_hits, src_cache_misses, src_cache_bypassed;
    /* Pods' packets too big for the tunnel (dropped as mtu_exceeded) answered with an ICMP
     * "fragmentation needed" / "packet too big"; and those not answered because the
     * worker's rate limit was spent. */
    uint64_t icmp_too_big, icmp_too_big_limited;
    uint64_t echo_replies;      /* ICMP / ICMPv6 echo requests to our VTEP, answered (ping the VTEP) */
    uint64_t pmtu_learned;      /* path MTUs to peers a router on the underlay told us (ICMP frag needed / packet too big) */
    uint64_t reasm_fragments;   /* fragments of VXLAN packets to our VTEP taken in for reassembly */
    uint64_t reasm_datagrams;   /* VXLAN packets made whole again from them, then decapsulated */
    uint64_t neigh_probes;      /* unicast ARP requests / solicitations re-checking a learned peer MAC gone stale */
    uint64_t announcements;     /* gratuitous ARPs / unsolicited neighbour advertisements for our VTEP */
    /* The last VTEP a decapsulated frame came from that is not a peer (learn_not_peer): a
     * node renumbered, or one missing from the peers. Family 0: none yet. */
    uint64_t not_peer_family;
    uint8_t not_peer_addr[16];
    uint64_t not_peer_ns;       /* CLOCK_MONOTONIC when */
    /* Inner sources from the underlay that are a local pod's MAC on their VNI: two hosts
     * have one MAC (the local pod keeps getting the frames to it). Checked as the learned
     * FDB takes a source in (a peer's frame, learning on: a new entry, a move, a refresh,
     * once a second an entry at most). The last one's MAC (its 6 bytes first, in wire
     * order), VNI, the VTEP it came from and when (0: none yet). */
    uint64_t dup_local_macs;
    uint64_t dup_local_mac;
    uint64_t dup_local_vni;
    uint64_t dup_local_family;
    uint8_t dup_local_addr[16];
    uint64_t dup_local_ns;
    vfp_dp_port_stats ports[VFP_DP_MAX_PORTS];
    vfp_dp_vni_stats vnis[VFP_DP_MAX_VNIS];
    vfp_dp_peer_stats peers[VFP_DP_MAX_PEERS];
} VFP_ALIGNED(VFP_CACHE_LINE) vfp_dp_worker_stats;

typedef struct vfp_dp vfp_dp;

typedef struct vfp_dp_opts {
    uint16_t n_workers;          /* 1..VFP_DP_MAX_WORKERS */
    const int *cpus;             /* per worker, -1 = not pinned; NULL = none pinned */
    uint16_t burst;              /* 1..VFP_MAX_BURST, default 32 */
    uint32_t idle_spins;         /* empty polls before sleeping in poll(); 0 = never sleep */
    uint32_t idle_sleep_us;      /* poll() timeout when idle, default 1000 */
    uint32_t learn_capacity;     /* learned FDB entries per worker, default 65536 */
    uint32_t learn_per_vni;      /* learned entries one VNI may hold, 0 = no cap (vfp_fdb__set_vni_limit) */
    uint32_t neigh_reachable_ms; /* a learned peer MAC not heard from for this long is asked again; default 30000 */
    uint32_t flood_pps;          /* frames to flood each pod (attached port) may send a second, in bursts of as many, per worker; 0 = no limit */
    uint32_t scratch_bufs;       /* flood-copy buffers per worker, default 1024 */
    uint32_t scratch_buf_size;   /* bytes each, default 9216 + headroom */
    uint32_t headroom;           /* headroom of scratch buffers, default 256 */
    void (*thread_init)(void);   /* called first on every worker thread (DPDK registration) */
    void (*thread_fini)(void);   /* called last on every worker thread */
} vfp_dp_opts;

/* The configuration, as the control thread describes it. */
typedef struct vfp_dp_peer_spec {
    vfp_addr vtep;
    uint8_t mac[6];              /* next-hop MAC on the underlay when mac_known */
    uint8_t mac_known;           /* else the worker resolves it: ARP (IPv4), neighbour discovery (IPv6) */
    vfp_addr via;                /* the next hop toward it (a gateway: its MAC is the one resolved); family 0: the peer itself */
} vfp_dp_peer_spec;

typedef struct vfp_dp_att_spec {
    uint16_t port;               /* a port slot */
    uint32_t vni;
    uint8_t mac[6];              /* the pod interface's MAC */
} vfp_dp_att_spec;

typedef struct vfp_dp_fdb_spec {
    uint32_t vni;
    uint8_t mac[6];
    vfp_addr vtep;               /* must be a peer */
} vfp_dp_fdb_spec;

typedef struct vfp_dp_flood_spec {
    uint32_t vni;
    uint32_t n;                  /* 0: flood to no peer */
    const vfp_addr *vteps;       /* each must be a peer */
} vfp_dp_flood_spec;

typedef struct vfp_dp_spec {
    uint16_t uplink;             /* port slot, or VFP_DP_NO_PORT (no overlay: local switching only) */
    uint8_t uplink_mac[6];
    vfp_tunnel_cfg tunnel;       /* template for every peer: local = our VTEP; remote, macs ignored */
    const vfp_dp_peer_spec *peers;
    uint32_t n_peers;
    const vfp_dp_att_spec *atts;
    uint32_t n_atts;
    const vfp_dp_fdb_spec *fdb;
    uint32_t n_fdb;
    const vfp_dp_flood_spec *floods; /* VNIs not listed flood to every peer */
    uint32_t n_floods;
    const uint32_t *extra_vnis;  /* VNIs accepted on decap without a local port (counted) */
    uint32_t n_extra_vnis;
    uint8_t learn;               /* learn inner source MAC → outer source VTEP on decap */
    uint8_t anti_spoof;          /* drop pod frames whose source MAC is not the attachment's */
    uint8_t icmp_too_big;        /* answer a pod's packet too big for the tunnel with ICMP (core/icmp.h) */
    uint8_t verify_udp_csum;     /* decap: verify a nonzero outer UDP checksum; IPv6 with 0 dropped */
    uint32_t age_seconds;        /* learned entries age out after this (default 300) */
} vfp_dp_spec;

/* Creates the data plane and starts its workers (idle until the first commit). */
int vfp_dp__create(vfp_dp **out, const vfp_dp_opts *o, const vfp_alloc *a, char *err, size_t errlen);
/* Stops the workers after draining (they keep polling for up to drain_ms while packets
 * still arrive and flush what they queued), then closes every port. The counters stay
 * readable until destroy. Idempotent. */
void vfp_dp__stop(vfp_dp *dp, uint32_t drain_ms);
/* Stops (if not yet) and frees everything, counters included. */
void vfp_dp__destroy(vfp_dp *dp, uint32_t drain_ms);

/* Hands a port to the data plane; it is polled from the next commit on. The name is
 * for messages. -ENOSPC, -EINVAL (a port with fewer queues than workers). */
int vfp_dp__port_add(vfp_dp *dp, vfp_port *p, const char *name, uint16_t *slot, char *err, size_t errlen);
/* Takes a port out: the next commit stops polling it and then closes it. -ENOENT. */
int vfp_dp__port_remove(vfp_dp *dp, uint16_t slot);
vfp_port *vfp_dp__port(vfp_dp *dp, uint16_t slot);

/* Builds a configuration from s, publishes it and waits (up to timeout_ms) until every
 * worker runs on it; ports removed before it are closed then. Returns the new epoch
 * (> 0) or -errno with err filled; on error nothing changes. */
int64_t vfp_dp__commit(vfp_dp *dp, const vfp_dp_spec *s, uint32_t timeout_ms, char *err, size_t errlen);

/* Static FDB tables built so far: a commit listing the entries of the last one built, in
 * the same order, shares it instead. Call between commits (the control thread). */
uint64_t vfp_dp__static_fdb_builds(const vfp_dp *dp);

/* The counters block: n_workers × vfp_dp_worker_stats, valid until destroy. */
vfp_dp_worker_stats *vfp_dp__stats(vfp_dp *dp, uint16_t *n_workers);
/* The VNI a counter slot belongs to is stats.vnis[slot].vni. */

/* Copies up to cap learned FDB entries (from every worker) into out; returns how many,
 * or -ETIMEDOUT when a worker did not answer within timeout_ms. */
int vfp_dp__learned(vfp_dp *dp, vfp_fdb_entry_info *out, uint32_t cap, uint32_t timeout_ms);
/* The learned entry for (vni, mac) in each worker's table that has one: out holds room for
 * one per worker; returns how many were found, or -ETIMEDOUT. A lookup, not a walk: what
 * `explain` asks, however big the tables are. */
int vfp_dp__learned_get(vfp_dp *dp, uint32_t vni, const uint8_t mac[6], vfp_fdb_entry_info *out,
                        uint32_t timeout_ms);

/* Drop capture, for `vfplane dataplane drops`: while armed, each worker records the
 * frames it drops (when, on which port, why, and their first bytes), up to `per_worker`
 * of them from the arming on. Disarmed (the default), a drop
 * costs one relaxed load more and nothing else does. */
#define VFP_DP_DROP_RING 256
#define VFP_DP_DROP_HEAD 128
#define VFP_DP_DROP_ENGINE 0x100 /* reason = this | an engine reason (vfp_reason, vxlan.h) */

typedef struct vfp_dp_drop_rec {
    int64_t unix_ns;             /* CLOCK_REALTIME when it was dropped */
    uint32_t len;                /* the frame's length (head holds its first head_len bytes) */
    uint16_t port;               /* the port slot it came from or was going to; VFP_DP_NO_PORT: none */
    uint16_t reason;             /* a VFP_DP_D_* reason, or VFP_DP_DROP_ENGINE | a VFP_R_* one */
    uint16_t worker;
    uint16_t head_len;
    uint8_t dir;                 /* 0: received on port, 1: was to be sent on it */
    uint8_t decap;               /* 1: dropped after decap (head is the inner frame; vni and vtep say
                                    what it came in) */
    uint8_t vtep_family;         /* with decap: 4 or 6 */
    uint8_t pad;
    uint32_t vni;                /* with decap */
    uint8_t vtep[16];            /* with decap: the outer source address (IPv4 in the first 4 bytes) */
    uint8_t head[VFP_DP_DROP_HEAD];
} vfp_dp_drop_rec;

/* Arms every worker to record its next per_worker drops (at most VFP_DP_DROP_RING - 1;
 * 0 disarms) of the reasons in `reasons` (0: every reason), forgetting what an earlier
 * arming recorded. */
int vfp_dp__drops_arm(vfp_dp *dp, uint32_t per_worker, uint64_t reasons);
/* A reason's bit in drops_arm's `reasons`: VFP_DP_D_* reasons are bits 0–31, engine
 * reasons (VFP_DP_DROP_ENGINE | r) bits 32–63. */
static inline uint64_t vfp_dp_drop__bit(unsigned reason) {
    return reason & VFP_DP_DROP_ENGINE ? 1ull << (32 + (reason & 31)) : 1ull << (reason & 31);
}
/* Copies what the workers recorded since the last arming into out (worker by worker,
 * oldest first): returns how many, at most cap. Recording goes on while armed; a later
 * call returns those recorded meanwhile too. */
int vfp_dp__drops_read(vfp_dp *dp, vfp_dp_drop_rec *out, uint32_t cap);
/* A drop record's reason as its counter name ("spoofed", "vni_unknown"…), NULL if none. */
const char *vfp_dp_drop__reason_name(unsigned reason);

#ifdef __cplusplus
}
#endif
#endif
