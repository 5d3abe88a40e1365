/* The data plane's workers and configuration epochs (see dp.h). Not core code: threads,
 * clocks, poll() and eventfds live here; the packet work itself is the core's encap,
 * decap and FDB. Each worker owns its learned FDB, its underlay neighbour table, its
 * scratch buffers and its counters, so the packet path takes no lock. */
#include "worker/dp.h"

#include "core/csum.h"
#include "core/hashkey.h"
#include "core/icmp.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

static const char *const drop_names[VFP_DP_D__COUNT] = {
    "no_attachment", "no_peer", "neigh_unresolved", "no_local_port", "hairpin",
    "tx_full", "no_buffer", "arp_other", "spoofed", "nd_other", "handoff_full", "handoff_stale",
    "bad_src_mac", "static_elsewhere", "no_destination", "other_host", "reasm_timeout", "reasm_overlap",
    "reasm_invalid", "reasm_full", "flood_limited",
};
_Static_assert(sizeof drop_names / sizeof drop_names[0] == VFP_DP_D__COUNT, "a name for every drop reason");

const char *vfp_dp_drop__name(unsigned d) { return d < VFP_DP_D__COUNT ? drop_names[d] : NULL; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}


/* An address as text, for commit errors: they name values, not list positions. */
static const char *addr_str(const vfp_addr *a, char *buf, size_t len) {
    if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->bytes, buf, (socklen_t)len)) snprintf(buf, len, "?");
    return buf;
}

/* A MAC as text, for the same errors. */
static const char *mac_str(const uint8_t *m, char buf[18]) {
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

static uint32_t addr_hash(const vfp_addr *a) {
    uint32_t h = 2166136261u ^ a->family;
    for (int i = 0; i < (a->family == 4 ? 4 : 16); i++) h = (h ^ a->bytes[i]) * 16777619u;
    return h ^ (h >> 15);
}

static uint32_t vmac_hash(uint32_t vni, const uint8_t *mac) {
    return (uint32_t)vfp_mix64(vfp_mac48(mac) ^ (uint64_t)vni << 48);
}

static inline uint32_t vni_hash(uint32_t vni) { return vni * 0x9e3779b1u >> 7; }

static uint32_t pow2_at_least(uint32_t n) {
    uint32_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

#define NONE16 0xffffu

/* ------------------------------------------------------------ configuration */

typedef struct cfg_peer {
    vfp_addr addr;
    vfp_addr nh;          /* whose MAC the underlay frames go to: a gateway, or addr itself */
    vfp_tunnel tun;       /* dst MAC filled when mac_known; workers patch their copy */
    uint8_t mac_known;
    uint16_t slot;        /* its counters in the workers' stats (kept across epochs) */
} cfg_peer;

typedef struct cfg_vni {
    uint32_t vni;
    uint16_t slot;        /* counters slot */
    uint16_t n_local, n_flood;
    uint32_t local_off, flood_off; /* into cfg.local_ports / cfg.flood_peers */
} cfg_vni;

typedef struct cfg_mac {  /* (vni, mac) → local port */
    uint32_t vni;         /* vni + 1; 0 = empty */
    uint8_t mac[6];
    uint16_t port;
} cfg_mac;

typedef struct cfg_att {
    uint8_t active;
    uint8_t mac[6];
    uint32_t vni;
    uint16_t vni_idx;     /* into cfg.vnis */
} cfg_att;

typedef struct rxq { uint16_t port, queue; } rxq;

typedef struct dp_cfg {
    uint64_t epoch;
    size_t bytes;          /* the whole allocation: cfg and every table after it */
    uint16_t uplink;
    uint8_t uplink_mac[6];
    uint64_t uplink_mac48; /* the same, as vfp_mac48 reads a destination */
    vfp_addr local;
    uint8_t learn, anti_spoof, icmp_too_big;
    uint32_t age_seconds;
    int16_t vlan;          /* underlay VLAN for ARP, -1 untagged */
    vfp_decap_ctx decap;   /* learn_fdb/now are set per worker on a copy */
    vfp_vni_set vni_set;
    uint32_t n_peers;
    cfg_peer *peers;
    uint32_t peer_mask;
    uint16_t *peer_hash;   /* addr → peer index, open addressing */
    uint32_t n_vnis;
    cfg_vni *vnis;
    uint32_t vni_mask;
    uint16_t *vni_hash;    /* vni → index into vnis */
    uint16_t *local_ports;
    uint16_t *flood_peers;
    uint32_t mac_mask;
    cfg_mac *macs;
    cfg_att att[VFP_DP_MAX_PORTS];
    vfp_fdb *fdb;          /* static entries: sf->fdb, or NULL */
    struct sfdb *sf;       /* shared with the other epochs built from the same entries */
    uint16_t *fdb_peer;    /* static FDB VTEP index → peer index; owned by the cfg */
    uint32_t fdb_vteps;
    uint16_t n_rxq[VFP_DP_MAX_WORKERS];
    rxq *rxqs[VFP_DP_MAX_WORKERS];
    vfp_port *ports[VFP_DP_MAX_PORTS]; /* polled/sent-to ports of this epoch */
} dp_cfg;

static int peer_find(const dp_cfg *c, const vfp_addr *a) {
    if (!c->n_peers) return -1;
    for (uint32_t i = addr_hash(a) & c->peer_mask;; i = (i + 1) & c->peer_mask) {
        uint16_t p = c->peer_hash[i];
        if (p == NONE16) return -1;
        if (vfp_addr__eq(&c->peers[p].addr, a)) return p;
    }
}

static const cfg_vni *vni_find(const dp_cfg *c, uint32_t vni) {
    if (!c->n_vnis) return NULL;
    for (uint32_t i = vni_hash(vni) & c->vni_mask;; i = (i + 1) & c->vni_mask) {
        uint16_t v = c->vni_hash[i];
        if (v == NONE16) return NULL;
        if (c->vnis[v].vni == vni) return &c->vnis[v];
    }
}

static uint16_t mac_find(const dp_cfg *c, uint32_t vni, const uint8_t *mac) {
    if (!c->macs) return NONE16;
    for (uint32_t i = vmac_hash(vni, mac) & c->mac_mask;; i = (i + 1) & c->mac_mask) {
        const cfg_mac *m = &c->macs[i];
        if (!m->vni) return NONE16;
        if (m->vni == vni + 1 && !memcmp(m->mac, mac, 6)) return m->port;
    }
}

/* ------------------------------------------------------------ scratch pool */

typedef struct pool {
    vfp_port port;        /* owner of its packets: free_burst returns them here */
    vfp_pkt *descs;
    uint8_t *bufs;
    uint32_t *stack;
    uint32_t n_free, n, buf_size, headroom;
} pool;

static void pool_free_burst(vfp_port *p, vfp_pkt **pkts, uint16_t n) {
    pool *pl = (pool *)p;
    for (uint16_t i = 0; i < n; i++) pl->stack[pl->n_free++] = (uint32_t)(pkts[i] - pl->descs);
}
static uint16_t pool_rx(vfp_port *p, uint16_t q, vfp_pkt **k, uint16_t n) { (void)p, (void)q, (void)k, (void)n; return 0; }
static void pool_close(vfp_port *p) { (void)p; }
static const struct vfp_port_ops pool_ops = { .name = "scratch", .rx_burst = pool_rx, .tx_burst = pool_rx,
                                              .free_burst = pool_free_burst, .close = pool_close };

static vfp_pkt *pool_get(pool *pl) {
    if (!pl->n_free) return NULL;
    uint32_t i = pl->stack[--pl->n_free];
    vfp_pkt *d = &pl->descs[i];
    d->data = pl->bufs + (size_t)i * pl->buf_size + pl->headroom;
    d->headroom = pl->headroom;
    d->len = 0;
    d->owner = &pl->port;
    d->tx_ol = 0;
    return d;
}

static vfp_pkt *pool_clone(pool *pl, const vfp_pkt *src) {
    if (src->len > pl->buf_size - pl->headroom) return NULL;
    vfp_pkt *d = pool_get(pl);
    if (!d) return NULL;
    memcpy(d->data, src->data, src->len);
    d->len = src->len;
    d->port = src->port;
    d->tx_ol = src->tx_ol;
    d->l2_len = src->l2_len;
    d->l3_len = src->l3_len;
    return d;
}

/* ------------------------------------------------------------ workers */

#define TXQ_MAX 64

typedef struct txq {
    uint16_t n;
    vfp_pkt *pk[TXQ_MAX];
} txq;

typedef struct neigh {
    vfp_addr addr;
    uint8_t mac[6];
    uint8_t valid;
    uint16_t pmtu;          /* the path MTU to this peer a router told us (0: none) */
    uint64_t pmtu_until_ns; /* until when it holds (PMTU_EXPIRES_NS after it was told) */
    uint64_t last_req_ns;
    uint64_t confirmed_ns;  /* when its MAC was last heard from it (ARP/ND from the address) */
    uint8_t probes;         /* requests sent since it went stale, unanswered */
} neigh;

/* How long a learned underlay MAC is trusted without hearing from its owner
 * (opts.neigh_reachable_ms, 30 s as Linux's base_reachable_time); then it is asked again while still used: NEIGH_UCAST_PROBES
 * unicast requests to the MAC it had (Linux's ucast_solicit), a second apart, then
 * broadcast ones (a NIC replaced, a router failed over to another MAC), until one
 * answers. Frames keep going to the MAC it had meanwhile: a peer that is only quiet
 * loses nothing. */
#define NEIGH_REACHABLE_NS ((uint64_t)w->dp->o.neigh_reachable_ms * 1000000ull) /* in a worker's functions */
#define NEIGH_UCAST_PROBES 3

/* A VXLAN packet to our VTEP that came in fragments (a router on a smaller hop split it:
 * the tunnel's df unset, the kernel's default), being put together again in a scratch
 * buffer: the payload at the buffer's data, the first fragment's Ethernet and IP headers
 * in the headroom before it. Each 8-byte unit held is a bit, so an overlap is seen
 * (RFC 5722: the whole datagram dropped, as Linux drops IPv4 ones too) and a repeated
 * fragment (a duplicate on the wire: the same bytes again) is only a repeat. Only
 * fragments from peers are taken: anyone else on the underlay could fill the slots
 * (helper-73: 110k spoofed first fragments a second cut a peer's jumbo traffic by 70%). */
#define REASM_SLOTS 64
#define REASM_MAX 9216                    /* payload bytes: a jumbo underlay's packet */
#define REASM_TIMEOUT_NS 30000000000ull   /* Linux's ipfrag_time */
/* Every slot busy: the oldest makes room only once it has waited this long (a datagram's
 * fragments follow each other within microseconds); a newer one is refused (reasm_full)
 * rather than each new datagram putting out one still coming, which with more datagrams
 * interleaved than slots completed none (helper-73: 0 of 24 with 16 slots). */
#define REASM_EVICT_NS 100000000ull
typedef struct reasm {
    vfp_pkt *buf;         /* NULL: a free slot */
    uint64_t start_ns;
    uint64_t seq;         /* the order slots were taken in (one burst's share a start_ns) */
    uint32_t id;
    uint8_t family, ce;   /* ce: a fragment came marked CE (RFC 3168 §5.3) */
    uint8_t src[16], dst[16];
    uint16_t hdr_len;     /* the first fragment's header bytes before the payload (0: not here yet) */
    uint32_t total;       /* the payload's length, once the last fragment came (0: not yet) */
    uint32_t have;        /* payload bytes held */
    uint64_t units[(REASM_MAX / 8 + 63) / 64];
} reasm;

struct vfp_dp;
struct lring;
struct hring;

/* The destination cache of from_pod: (source port, destination MAC) → what
 * resolve_dests decided, for the destinations a pod keeps sending to across bursts. An
 * entry holds while its gen is the worker's, which moves on whenever an answer may
 * have: a new epoch, or a change to the learned FDB (vfp_fdb__version). Direct-mapped,
 * one 16-byte entry per slot, 8,192 slots (128 KiB; the source cache's 256 KiB): with
 * 4,096, a tenth of 1,000 random MACs cycled shared a slot with another and missed
 * every time round. Four-way sets of 4,096 (one line a set) held 2,000 of them and were
 * faster up to there, but slower from 3,000 on (29 ns a packet against 26, 35 against
 * 27 at 5,000): which way holds a key is unpredictable, and the mispredictions cost more
 * than the misses saved. Doubling the slots kept the branch and gained at every size
 * measured (docs/notes.md, the twenty-third session). */
#define DCACHE_BITS 13
#define DCACHE_SIZE (1u << DCACHE_BITS) /* entries, in each cache */
#define DCACHE_SKIP 16
typedef struct dcache_e {
    uint64_t key;  /* MAC (48 bits, vfp_mac48) | source port << 48 */
    uint32_t gen;  /* 0: never valid */
    uint8_t kind;  /* UC_* */
    uint8_t pad;
    uint16_t val;  /* the peer (UC_PEER) or the local port (UC_LOCAL, UC_HAIRPIN) */
} dcache_e;
_Static_assert(sizeof(dcache_e) == 16, "a destination cache entry is 16 bytes");

static inline uint32_t dcache_slot(uint64_t key) { return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - DCACHE_BITS)); }

/* The source cache of from_uplink: (VNI slot, inner source MAC) → what the burst's
 * passes would otherwise work out again for a source a peer keeps sending from: the
 * config FDB's answer (a static entry's VTEP index, or none), valid for the epoch, and
 * whether learning it again would change nothing (learned from that peer this second,
 * the learned FDB unchanged since). */
typedef struct scache_e {
    uint64_t key;  /* MAC (48 bits, vfp_mac48) | VNI slot << 48 */
    uint32_t gen;  /* the epoch's; 0: never valid */
    uint16_t sidx; /* the config FDB's answer */
    int16_t lpeer; /* learned from this peer (-1: not known) … */
    uint32_t lsec; /* … in this second … */
    uint32_t lver; /* … and the learned FDB's version since */
    uint64_t pad;
} scache_e;
_Static_assert(sizeof(scache_e) == 32, "a source cache entry is 32 bytes");

/* Ends every entry of a cache of DCACHE_SIZE entries at once: the next gen. */
static void cache_next_gen(void *cache, size_t entry, uint32_t *gen) {
    if (++*gen == 0) { /* wrapped: entries of an old gen 1, 2… could match again */
        memset(cache, 0, entry * DCACHE_SIZE);
        *gen = 1;
    }
}

typedef struct worker {
    struct vfp_dp *dp;
    uint16_t idx;
    int cpu;
    pthread_t th;
    int started;
    int wake_fd;
    /* The idle poll's timeout, ms: idle_sleep_us at first, doubled by each poll that
     * times out with nothing to do, up to IDLE_POLL_MAX; back to the start on any work.
     * Frames wake the poll through the ports' fds, a commit, a stop or a handoff through
     * wake_fd: the timeout only paces the timers (ARP/ND retries, MLD reports, ageing),
     * and each timeout costs a pass over every port, which hundreds of representors made
     * 17% of a core on an idle node. */
    int idle_poll_ms;
    _Atomic uint64_t seen_epoch;
    _Atomic int exited;
    const dp_cfg *cfg;
    vfp_dp_worker_stats *st;
    vfp_fdb *learned;
    dcache_e *dcache;
    uint32_t dc_gen;
    uint32_t dc_lver;       /* the learned FDB's version the entries of dc_gen were made at */
    uint64_t dc_epoch;      /* the epoch they were made in */
    uint16_t dc_skip;       /* pod bursts left that bypass the cache (it was missing) */
    /* The source cache (scache_e): an entry holds while sc_gen is the one made in the
     * current epoch (the config FDB and the peers are the epoch's, immutable); its
     * learning half also while the learned FDB's version is the one it names. Same
     * bypass as the destination cache. */
    scache_e *scache;
    uint32_t sc_gen;
    uint64_t sc_epoch;
    uint16_t sc_skip;
    uint32_t age_cursor;
    /* The ICMP too-big replies' rate limit (encap_refused): a token bucket per source
     * port (pod), so one pod sending too big a packet over and over cannot use up the
     * replies its neighbours' path MTU discovery needs. icmp_ns 0: a full bucket. */
    uint32_t icmp_tokens[VFP_DP_MAX_PORTS];
    uint64_t icmp_ns[VFP_DP_MAX_PORTS]; /* when each bucket last gained its tokens */
    /* Storm control (opts.flood_pps): the frames each pod may flood, the same way. */
    uint32_t flood_tokens[VFP_DP_MAX_PORTS];
    uint64_t flood_ns[VFP_DP_MAX_PORTS];
    uint64_t next_age_ns;
    uint64_t next_neigh_ns; /* when peer MACs other workers learned are next looked at */
    uint64_t next_mld_ns;  /* when worker 0 next reports its solicited-node group (0: now) */
    uint64_t last_mld_ns;
    uint64_t rng;          /* splitmix64 state: an MLD answer's random delay */
    pool pool;
    /* per-epoch working copies */
    vfp_tunnel tun[VFP_DP_MAX_PEERS];
    uint8_t resolved[VFP_DP_MAX_PEERS];
    uint64_t stale_at[VFP_DP_MAX_PEERS]; /* when a peer's learned MAC is to be asked again (UINT64_MAX: configured) */
    /* Gratuitous ARP / unsolicited NA for our VTEP (worker 0): at start and when the
     * VTEP or the uplink's MAC changes, twice a second apart (RFC 5227's announcements). */
    uint64_t next_announce_ns;
    uint8_t announces_left;
    uint8_t announced_mac[6];
    vfp_addr announced;
    neigh nb[2 * VFP_DP_MAX_PEERS];
    txq tx[VFP_DP_MAX_PORTS];
    uint16_t tx_dirty[VFP_DP_MAX_PORTS];
    uint16_t n_dirty;
    /* learned-FDB dump requests (control → worker) */
    _Atomic(vfp_fdb_entry_info *) dump_buf;
    uint32_t dump_cap;
    _Atomic int32_t dump_n; /* -1 while pending */
    /* A request for one key (vfp_dp__learned_get) rather than the whole table. */
    uint8_t dump_by_key;
    uint32_t dump_vni;
    uint8_t dump_mac[6];
    _Atomic int sleeping;   /* in poll(): producers of handoffs wake it */
    /* Drop capture (vfp_dp__drops_arm): records land in drops[drop_wr % RING] while
     * drop_wr < drop_want. drop_wr is written by the worker only, with release after the
     * record, so a reader that acquires it reads whole records; drop_want by the control
     * thread only, after drops (made at the first arming: a data plane never asked costs
     * no memory for it) and drop_mask. */
    vfp_dp_drop_rec *drops;
    _Atomic uint64_t drop_wr;
    _Atomic uint64_t drop_want;
    _Atomic uint64_t drop_mask; /* the reasons recorded (vfp_dp_drop__bit); 0: all */
    uint64_t reasm_seq;
    reasm rs[REASM_SLOTS]; /* fragmented VXLAN packets being put together (cold: last) */
} worker;

struct vfp_dp {
    vfp_alloc a;
    vfp_dp_opts o;
    uint16_t n_workers;
    worker *w;
    vfp_dp_worker_stats *stats;
    _Atomic(dp_cfg *) cur;
    _Atomic int stop;
    /* When worker 0 answers an MLD query (0: no answer pending). Any worker that receives
     * a query may bring it forward, never back; relaxed: it orders nothing else. */
    _Atomic uint64_t mld_due_ns;
    int stopped;
    uint64_t epoch;
    /* control-thread state */
    vfp_port *ports[VFP_DP_MAX_PORTS];
    char names[VFP_DP_MAX_PORTS][32];
    uint8_t removing[VFP_DP_MAX_PORTS];
    uint32_t vni_slot_of[VFP_DP_MAX_VNIS]; /* slot → vni + 1 (0 free) */
    pthread_mutex_t ctl;                   /* serialises control calls */
    struct lring *lrings;                  /* n_workers² learn rings (from × to), NULL for one worker */
    /* handoffs from × to, made by port_add (release) before a port needs them */
    _Atomic(struct hring *) hrings[VFP_DP_MAX_WORKERS][VFP_DP_MAX_WORKERS];
    /* Ports closing on threads of their own (ops->close_async), joined when done or on stop. */
    pthread_mutex_t closers_mu;
    pthread_t closer[VFP_DP_MAX_PORTS];
    struct closer_arg { struct vfp_dp *dp; vfp_port *p; int slot; } closer_arg[VFP_DP_MAX_PORTS];
    uint8_t closer_used[VFP_DP_MAX_PORTS];
    _Atomic uint8_t closer_done[VFP_DP_MAX_PORTS];
    uint64_t drop_since[VFP_DP_MAX_WORKERS]; /* each worker's drop_wr at the last arming */
    /* The static FDB last built, for the next commit with the same entries to share (no
     * reference of its own: cleared when the last epoch holding it is freed). */
    struct sfdb *sfdb_last;
    uint64_t sfdb_builds;
};

/* The longest an idle worker sleeps in poll before its timers run again, ms. */
#define IDLE_POLL_MAX 16

static void wake(worker *w) {
    uint64_t one = 1;
    if (w->wake_fd >= 0) (void)!write(w->wake_fd, &one, sizeof one);
}

static void count_port_drop(worker *w, uint16_t port, unsigned reason, uint64_t n) {
    w->st->drops[reason] += n;
    if (port < VFP_DP_MAX_PORTS) w->st->ports[port].drops += n;
}

/* ---- drop capture (vfp_dp__drops_arm) */

#define DROP_RX 0
#define DROP_TX 1
#define DROP_DECAP 2 /* received on the uplink and decapsulated: p is the inner frame */

_Static_assert(VFP_DP_D__COUNT <= 32 && VFP_R__COUNT <= 32, "a drop reason's bit fits its half of the mask");

static void drop_record(worker *w, uint16_t port, const vfp_pkt *p, unsigned reason, uint8_t dir) {
    const uint64_t mask = atomic_load_explicit(&w->drop_mask, memory_order_relaxed);
    if (mask && !(mask & vfp_dp_drop__bit(reason))) return;
    const uint64_t wr = atomic_load_explicit(&w->drop_wr, memory_order_relaxed);
    vfp_dp_drop_rec *d = &w->drops[wr % VFP_DP_DROP_RING];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    d->unix_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    d->len = p->len;
    d->port = port;
    d->reason = (uint16_t)reason;
    d->worker = w->idx;
    d->dir = dir;
    d->decap = dir == DROP_DECAP;
    if (d->decap) {
        d->dir = DROP_RX;
        d->vni = p->vni;
        d->vtep_family = p->vtep_family;
        memcpy(d->vtep, p->vtep, 16);
    }
    d->head_len = (uint16_t)(p->len < VFP_DP_DROP_HEAD ? p->len : VFP_DP_DROP_HEAD);
    memcpy(d->head, p->data, d->head_len);
    /* Release: a reader that sees wr + 1 sees the record whole. */
    atomic_store_explicit(&w->drop_wr, wr + 1, memory_order_release);
}

/* Whether the capture wants more records from this worker. Acquire pairs with the
 * arming's release: a worker that sees the new want sees its ring and mask (a plain
 * load on x86). */
static inline int drops_armed(worker *w) {
    return atomic_load_explicit(&w->drop_wr, memory_order_relaxed) < atomic_load_explicit(&w->drop_want, memory_order_acquire);
}

/* Called for every frame dropped by its own reason (the counters are kept where they
 * were): records it while the capture is armed. These helpers are out of line and cold,
 * and the packet loops do not call them from their drop branches (from_pod collects its
 * drops, from_uplink notes them before its second pass): a call there, never taken,
 * still cost every frame ~1 ns (bench dataplane, 32 and 1000 remote MACs). */
static VFP_COLD void drop_note(worker *w, uint16_t port, const vfp_pkt *p, unsigned reason, uint8_t dir) {
    if (VFP_UNLIKELY(drops_armed(w))) drop_record(w, port, p, reason, dir);
}

/* The frame leaves the data plane here: noted, then given back. */
static VFP_COLD void drop_free(worker *w, uint16_t port, vfp_pkt *p, unsigned reason, uint8_t dir) {
    drop_note(w, port, p, reason, dir);
    vfp_pkt__free_burst(&p, 1);
}

/* A burst's dropped frames, each with its reason, collected by the caller's loop:
 * noted, then given back. */
static VFP_COLD void drop_free_list(worker *w, uint16_t port, vfp_pkt **pk, const uint16_t *reason, uint16_t n) {
    for (uint16_t i = 0; i < n; i++) drop_note(w, port, pk[i], reason[i], DROP_RX);
    vfp_pkt__free_burst(pk, n);
}

static VFP_COLD void drop_note_burst(worker *w, uint16_t port, vfp_pkt *const *pk, uint16_t n, unsigned reason,
                                     uint8_t dir) {
    if (VFP_UNLIKELY(drops_armed(w)))
        for (uint16_t i = 0; i < n; i++) drop_note(w, port, pk[i], reason, dir);
}

/* A burst from a port no attachment has (yet, or any more): counted, noted, given back. */
static VFP_COLD void drop_unattached(worker *w, uint16_t port, vfp_pkt **pk, uint16_t n) {
    count_port_drop(w, port, VFP_DP_D_NO_ATTACHMENT, n);
    drop_note_burst(w, port, pk, n, VFP_DP_D_NO_ATTACHMENT, DROP_RX);
    vfp_pkt__free_burst(pk, n);
}

static inline void tx_push(worker *w, uint16_t port, vfp_pkt *p);
static uint16_t handoff(worker *w, uint16_t port, uint16_t to, vfp_pkt **pk, uint16_t n);

static void tx_flush_port(worker *w, uint16_t port) {
    txq *q = &w->tx[port];
    if (!q->n) return;
    vfp_port *dst = w->cfg->ports[port];
    if (dst && VFP_UNLIKELY(w->idx >= dst->n_queues)) {
        /* The port has fewer queues than there are workers, and none is this worker's:
         * the worker that owns queue idx % n_queues sends a copy of each frame (and
         * counts them as the port's); the originals are ours to free. */
        uint16_t taken = handoff(w, port, (uint16_t)(w->idx % dst->n_queues), q->pk, q->n);
        w->st->handed_off += taken;
        if (taken < q->n) {
            count_port_drop(w, port, VFP_DP_D_HANDOFF_FULL, (uint64_t)(q->n - taken));
            drop_note_burst(w, port, q->pk + taken, (uint16_t)(q->n - taken), VFP_DP_D_HANDOFF_FULL, DROP_TX);
        }
        vfp_pkt__free_burst(q->pk, q->n);
        q->n = 0;
        return;
    }
    uint16_t sent = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < q->n; i++) bytes += q->pk[i]->len;
    if (dst) sent = vfp_port__tx_burst(dst, w->idx, q->pk, q->n);
    if (sent < q->n) {
        uint64_t unsent = 0;
        for (uint16_t i = sent; i < q->n; i++) unsent += q->pk[i]->len;
        bytes -= unsent;
        count_port_drop(w, port, VFP_DP_D_TX_FULL, (uint64_t)(q->n - sent));
        drop_note_burst(w, port, q->pk + sent, (uint16_t)(q->n - sent), VFP_DP_D_TX_FULL, DROP_TX);
        vfp_pkt__free_burst(q->pk + sent, (uint16_t)(q->n - sent));
    }
    w->st->ports[port].tx_pkts += sent;
    w->st->ports[port].tx_bytes += bytes;
    q->n = 0;
}

static void tx_flush_all(worker *w) {
    for (uint16_t i = 0; i < w->n_dirty; i++) tx_flush_port(w, w->tx_dirty[i]);
    w->n_dirty = 0;
}

/* Queues pkts on port, in runs that fill the queue (a full one is sent first); returns
 * their bytes. A flushed queue stays on the dirty list, an empty one joins it. */
static inline uint64_t tx_push_burst(worker *w, uint16_t port, vfp_pkt **pkts, uint16_t n) {
    txq *q = &w->tx[port];
    uint64_t bytes = 0;
    for (uint16_t k = 0; k < n;) {
        if (q->n == TXQ_MAX) tx_flush_port(w, port);
        else if (!q->n) w->tx_dirty[w->n_dirty++] = port;
        uint16_t run = (uint16_t)(n - k < TXQ_MAX - q->n ? n - k : TXQ_MAX - q->n);
        for (uint16_t j = 0; j < run; j++) {
            bytes += pkts[k + j]->len;
            q->pk[q->n + j] = pkts[k + j];
        }
        q->n = (uint16_t)(q->n + run);
        k = (uint16_t)(k + run);
    }
    return bytes;
}

static inline void tx_push(worker *w, uint16_t port, vfp_pkt *p) { (void)tx_push_burst(w, port, &p, 1); }

/* ---- underlay neighbours (ARP for IPv4, neighbour discovery for IPv6) */

static neigh *neigh_slot(worker *w, const vfp_addr *a, int create) {
    uint32_t mask = 2 * VFP_DP_MAX_PEERS - 1;
    for (uint32_t i = addr_hash(a) & mask, k = 0; k <= mask; i = (i + 1) & mask, k++) {
        neigh *n = &w->nb[i];
        if (n->addr.family && vfp_addr__eq(&n->addr, a)) return n;
        if (!n->addr.family) {
            if (!create) return NULL;
            n->addr = *a;
            return n;
        }
    }
    return NULL;
}

static size_t eth_hdr(uint8_t *d, const uint8_t *dst, const uint8_t *src, int vlan, uint16_t type) {
    memcpy(d, dst, 6);
    memcpy(d + 6, src, 6);
    size_t o = 12;
    if (vlan >= 0) {
        d[o] = 0x81, d[o + 1] = 0x00, d[o + 2] = (uint8_t)(vlan >> 8), d[o + 3] = (uint8_t)vlan;
        o += 4;
    }
    d[o] = (uint8_t)(type >> 8), d[o + 1] = (uint8_t)type;
    return o + 2;
}

static const uint8_t BCAST_MAC[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t ALL_NODES[16] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }; /* ff02::1 */
static const uint8_t ALL_NODES_MAC[6] = { 0x33, 0x33, 0, 0, 0, 1 };

/* An ARP request from our VTEP for `target` (our own address: an RFC 5227 announcement)
 * to `dst` (broadcast, or the MAC a stale entry had). Returns the frame length. */
static uint32_t arp_request(const dp_cfg *c, uint8_t *d, const uint8_t *dst, const uint8_t *target) {
    static const uint8_t hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 }; /* Ethernet, IPv4, 6, 4, request */
    size_t o = eth_hdr(d, dst, c->uplink_mac, c->vlan, 0x0806);
    memcpy(d + o, hdr, 8);
    memcpy(d + o + 8, c->uplink_mac, 6);
    memcpy(d + o + 14, c->local.bytes, 4);
    memset(d + o + 18, 0, 6);
    memcpy(d + o + 24, target, 4);
    return (uint32_t)(o + 28);
}

/* A scratch frame for a neighbour request, with the rate limit of one a second per
 * peer; NULL when none is due or there is no buffer. */
static vfp_pkt *neigh_frame(worker *w, const vfp_addr *a, uint64_t now) {
    neigh *n = neigh_slot(w, a, 1);
    if (!n || (n->last_req_ns && now - n->last_req_ns < 1000000000ull)) return NULL;
    vfp_pkt *p = pool_get(&w->pool);
    if (!p) {
        w->st->drops[VFP_DP_D_NO_BUFFER]++;
        return NULL;
    }
    n->last_req_ns = now;
    return p;
}

static void pad_min(vfp_pkt *p) {
    if (p->len < 60) {
        memset(p->data + p->len, 0, 60 - p->len);
        p->len = 60;
    }
}

/* An IPv6 header for an ND message (hop limit 255, RFC 4861 §7.1) and the ICMPv6
 * message after it: type, the 4 flag/reserved bytes, the target and one link-layer
 * address option (type opt, our MAC). Returns the frame length. */
static size_t nd_message(const dp_cfg *c, uint8_t *d, size_t l3, const uint8_t *dst_ip, uint8_t type,
                         uint8_t flags, const uint8_t *target, uint8_t opt) {
    uint8_t *ip = d + l3, *m = ip + 40;
    const uint32_t len = 32; /* 24-byte NS/NA + 8-byte option */
    memset(ip, 0, 40);
    ip[0] = 0x60;
    ip[5] = (uint8_t)len;
    ip[6] = 58;
    ip[7] = 255;
    memcpy(ip + 8, c->local.bytes, 16);
    memcpy(ip + 24, dst_ip, 16);
    memset(m, 0, len);
    m[0] = type;
    m[4] = flags;
    memcpy(m + 8, target, 16);
    m[24] = opt;
    m[25] = 1; /* in units of 8 bytes */
    memcpy(m + 26, c->uplink_mac, 6);
    const uint16_t cs = vfp_icmp6__csum(ip + 8, ip + 24, m, len);
    memcpy(m + 2, &cs, 2);
    return l3 + 40 + len;
}

/* The solicited-node multicast group of an IPv6 address, ff02::1:ffXX:XXXX (RFC 4291
 * §2.7.1): where neighbour solicitations for it go, and what MLD reports for our VTEP. */
static void solicited_node(const uint8_t *a, uint8_t out[16]) {
    static const uint8_t pfx[13] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff };
    memcpy(out, pfx, 13);
    memcpy(out + 13, a + 13, 3);
}

/* Records in the peer's stats slot which MAC encap uses for it and where it came from
 * (state 1 learned, 2 configured, 0 unknown): one 8-byte store, so a reader never sees
 * half a MAC. */
static void peer_mac_note(vfp_dp_peer_stats *ps, const uint8_t *mac, uint8_t state, uint64_t at_ns) {
    uint8_t b[8] = { 0 };
    if (mac) memcpy(b, mac, 6);
    b[6] = state;
    uint64_t v;
    memcpy(&v, b, 8);
    /* Other workers read these (neigh_from_others): the time first, then the MAC with
     * release, so a reader that sees the MAC sees its time. */
    __atomic_store_n(&ps->resolved_ns, at_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&ps->mac, v, __ATOMIC_RELEASE);
}

/* A peer's MAC another worker learned. ARP and ND replies reach whichever worker the
 * uplink's queues give them to (RSS, PACKET_FANOUT's flow hash), which need not be the
 * one that asked: without this, a worker whose replies always land elsewhere would ask
 * for ever and drop its pods' frames as neigh_unresolved. Reads the other workers'
 * published peer slots and adopts the newest learned MAC newer than ours (a peer whose
 * MAC moved is relearned by the worker that gets its replies). 1 if adopted. */
static int neigh_from_others(worker *w, int peer) {
    const dp_cfg *c = w->cfg;
    if (c->peers[peer].mac_known || w->dp->n_workers < 2) return 0;
    const uint32_t slot = c->peers[peer].slot;
    const vfp_addr *a = &c->peers[peer].addr;
    vfp_dp_peer_stats *mine = &w->st->peers[slot];
    uint64_t best_ns = w->resolved[peer] ? mine->resolved_ns : 0, best = 0;
    for (uint16_t k = 0; k < w->dp->n_workers; k++) {
        if (k == w->idx) continue;
        const vfp_dp_peer_stats *o = &w->dp->w[k].st->peers[slot];
        uint64_t m = __atomic_load_n(&o->mac, __ATOMIC_ACQUIRE);
        uint8_t b[8];
        memcpy(b, &m, 8);
        if (b[6] != 1) continue; /* learned, not configured or unknown */
        uint64_t t = __atomic_load_n(&o->resolved_ns, __ATOMIC_RELAXED);
        if (t <= best_ns) continue;
        /* The slot must still name this peer (another epoch may have given it away). */
        if (o->family != a->family || memcmp(o->addr, a->bytes, 16)) continue;
        if (__atomic_load_n(&o->mac, __ATOMIC_ACQUIRE) != m) continue; /* changed meanwhile */
        best_ns = t, best = m;
    }
    if (!best) {
        /* The same MAC heard from again by another worker (the answer to a probe reaches
         * whichever the uplink's queues give it to): confirmed here too. */
        if (!w->resolved[peer]) return 0;
        uint64_t seen = __atomic_load_n(&mine->confirmed_ns, __ATOMIC_RELAXED);
        const uint64_t own = __atomic_load_n(&mine->mac, __ATOMIC_RELAXED);
        for (uint16_t k = 0; k < w->dp->n_workers; k++) {
            const vfp_dp_peer_stats *o = &w->dp->w[k].st->peers[slot];
            if (k == w->idx || __atomic_load_n(&o->mac, __ATOMIC_ACQUIRE) != own) continue;
            const uint64_t t = __atomic_load_n(&o->confirmed_ns, __ATOMIC_RELAXED);
            if (t > seen && o->family == a->family && !memcmp(o->addr, a->bytes, 16)) seen = t;
        }
        if (seen > __atomic_load_n(&mine->confirmed_ns, __ATOMIC_RELAXED)) {
            neigh *n = neigh_slot(w, &c->peers[peer].nh, 1);
            if (n) n->confirmed_ns = seen, n->probes = 0;
            __atomic_store_n(&mine->confirmed_ns, seen, __ATOMIC_RELAXED);
            w->stale_at[peer] = seen + NEIGH_REACHABLE_NS;
        }
        return 0;
    }
    uint8_t b[8];
    memcpy(b, &best, 8);
    neigh *n = neigh_slot(w, &c->peers[peer].nh, 1);
    if (n) memcpy(n->mac, b, 6), n->valid = 1, n->confirmed_ns = best_ns, n->probes = 0;
    memcpy(w->tun[peer].tmpl, b, 6); /* the template starts with the outer dst MAC */
    w->resolved[peer] = 1;
    w->stale_at[peer] = best_ns + NEIGH_REACHABLE_NS;
    peer_mac_note(mine, b, 1, best_ns);
    __atomic_store_n(&mine->confirmed_ns, best_ns, __ATOMIC_RELAXED);
    return 1;
}

/* Asks the underlay for a peer's MAC: an ARP request (IPv4) or a neighbour solicitation
 * (IPv6), to everyone (the target's solicited-node multicast group, RFC 4861 §7.2.2) or,
 * `to` given, to the MAC it had (a probe of a stale entry: RFC 4861 §7.3.3's unicast
 * solicitation, Linux's unicast ARP probe). */
static void neigh_send(worker *w, int peer, uint64_t now, const uint8_t *to) {
    const dp_cfg *c = w->cfg;
    const vfp_addr *a = &c->peers[peer].nh; /* the peer, or the gateway toward it */
    if (a->family != c->local.family || c->uplink == VFP_DP_NO_PORT) return;
    vfp_pkt *p = neigh_frame(w, a, now);
    if (!p) return;
    w->st->peers[c->peers[peer].slot].requests++;
    uint8_t *d = p->data;
    if (a->family == 4) {
        p->len = arp_request(c, d, to ? to : BCAST_MAC, a->bytes);
        w->st->arp_requests++;
    } else {
        /* The solicited-node group, and its MAC 33:33:ff:XX:XX:XX (RFC 2464 §7); a probe
         * goes to the address itself. */
        uint8_t sn[16];
        solicited_node(a->bytes, sn);
        const uint8_t mac[6] = { 0x33, 0x33, 0xff, a->bytes[13], a->bytes[14], a->bytes[15] };
        size_t l3 = eth_hdr(d, to ? to : mac, c->uplink_mac, c->vlan, 0x86dd);
        p->len = (uint32_t)nd_message(c, d, l3, to ? a->bytes : sn, 135, 0, a->bytes, 1);
        w->st->nd_solicits++;
    }
    pad_min(p);
    tx_push(w, c->uplink, p);
}

/* A peer whose learned MAC has not been heard from for NEIGH_REACHABLE_NS, still in use:
 * asked again, a second apart, first at the MAC it had, then everyone. */
static VFP_COLD void neigh_probe(worker *w, int peer, uint64_t now) {
    neigh *n = neigh_slot(w, &w->cfg->peers[peer].nh, 1);
    if (!n || !n->valid || (n->last_req_ns && now - n->last_req_ns < 1000000000ull)) return;
    const int unicast = n->probes < NEIGH_UCAST_PROBES;
    if (n->probes < 255) n->probes++;
    w->st->neigh_probes++;
    neigh_send(w, peer, now, unicast ? n->mac : NULL);
}

/* Our VTEP and MAC told to the underlay (worker 0, from the worker loop): a gratuitous
 * ARP (an RFC 5227 announcement: a request with our address as sender and target) or an
 * unsolicited neighbour advertisement to all nodes with the override flag (RFC 4861
 * §7.2.6). Peers that learned another MAC for our VTEP (a data plane restarted on another
 * NIC) take this one at once, rather than when their entry goes stale. */
static VFP_COLD void announce(worker *w) {
    const dp_cfg *c = w->cfg;
    vfp_pkt *p = pool_get(&w->pool);
    if (!p) {
        w->st->drops[VFP_DP_D_NO_BUFFER]++;
        return;
    }
    uint8_t *d = p->data;
    if (c->local.family == 4) {
        p->len = arp_request(c, d, BCAST_MAC, c->local.bytes); /* asking for our own address */
    } else {
        size_t l3 = eth_hdr(d, ALL_NODES_MAC, c->uplink_mac, c->vlan, 0x86dd);
        p->len = (uint32_t)nd_message(c, d, l3, ALL_NODES, 136, 0x20, c->local.bytes, 2);
    }
    pad_min(p);
    w->st->announcements++;
    tx_push(w, c->uplink, p);
}

/* A peer's underlay MAC, from an ARP or ND message: kept in the neighbour table, and
 * patched into the peer's tunnel template unless the configuration names the MAC. */
static void neigh_learn(worker *w, const vfp_addr *a, const uint8_t *mac) {
    const dp_cfg *c = w->cfg;
    /* Only a peer's next hop (the peer itself, or the gateway toward it): the table is
     * bounded by the configuration. */
    uint32_t first = 0;
    while (first < c->n_peers && !vfp_addr__eq(&c->peers[first].nh, a)) first++;
    if (first == c->n_peers) return;
    /* A group or all-zero address is no station's: one spoofed ARP or ND message would
     * otherwise send the peer's tunnel traffic to every host of the underlay. */
    if (!vfp_mac__learnable(mac)) return;
    neigh *n = neigh_slot(w, a, 1);
    if (!n) return;
    const uint64_t now = now_ns();
    if (!n->valid || memcmp(n->mac, mac, 6)) {
        memcpy(n->mac, mac, 6);
        n->valid = 1;
        w->st->neigh_learned++;
    }
    n->confirmed_ns = now;
    n->probes = 0;
    /* Every peer behind it (one, unless it is a gateway). */
    for (uint32_t peer = first; peer < c->n_peers; peer++) {
        if (c->peers[peer].mac_known || !vfp_addr__eq(&c->peers[peer].nh, a)) continue;
        vfp_dp_peer_stats *ps = &w->st->peers[c->peers[peer].slot];
        if (!w->resolved[peer] || memcmp(w->tun[peer].tmpl, mac, 6) || !ps->resolved_ns)
            peer_mac_note(ps, mac, 1, now);
        __atomic_store_n(&ps->confirmed_ns, now, __ATOMIC_RELAXED);
        memcpy(w->tun[peer].tmpl, mac, 6); /* the template starts with the outer dst MAC */
        w->resolved[peer] = 1;
        w->stale_at[peer] = now + NEIGH_REACHABLE_NS;
    }
}

/* Another host claims our VTEP's address on the underlay (its ARP, or its neighbour
 * discovery, from a MAC that is not the uplink's): two nodes configured with one VTEP, or
 * the address also on a host's interface. Peers' neighbour caches then flap between the
 * two and their frames for us go astray, which nothing else would show: counted, with the
 * MAC and when, for `dataplane status` to name. */
static VFP_COLD void vtep_conflict(worker *w, const uint8_t *mac, uint64_t now) {
    uint64_t m = 0;
    memcpy(&m, mac, 6); /* in wire order, as a peer's MAC word (peer_mac_note) */
    w->st->vtep_conflict_mac = m;
    w->st->vtep_conflict_ns = now;
    w->st->vtep_conflicts++;
}

/* Handles an ARP frame on the uplink: answers requests for our VTEP, learns peers'
 * MACs from requests and replies, notes another host's claim to the VTEP. Consumes p.
 * This and the ND and hop-by-hop handlers below are cold: the underlay's control frames
 * are few, and inlined into the worker's loop they cost decapsulated frames ~0.6 ns each
 * in code layout (bench dataplane --ops decap --dests 1, alternated builds, when a
 * callee of theirs changed). */
static VFP_COLD void uplink_arp(worker *w, vfp_pkt *p, size_t l3, uint64_t now) {
    const dp_cfg *c = w->cfg;
    uint8_t *d = p->data, *arp = d + l3;
    if (p->len < l3 + 28 || arp[0] != 0 || arp[1] != 1 || arp[2] != 8 || arp[3] != 0 || arp[4] != 6 ||
        arp[5] != 4 || c->local.family != 4) {
        w->st->drops[VFP_DP_D_ARP_OTHER]++;
        drop_free(w, c->uplink, p, VFP_DP_D_ARP_OTHER, DROP_RX);
        return;
    }
    uint16_t op = (uint16_t)(arp[6] << 8 | arp[7]);
    /* From our address, or an RFC 5227 probe for it (a request from 0.0.0.0): another host
     * about to take it, which our reply below turns away, as the DAD probe in uplink_nd. */
    static const uint8_t unspec4[4];
    if (memcmp(arp + 8, c->uplink_mac, 6) &&
        (!memcmp(arp + 14, c->local.bytes, 4) || (op == 1 && !memcmp(arp + 14, unspec4, 4) && !memcmp(arp + 24, c->local.bytes, 4))))
        vtep_conflict(w, arp + 8, now);
    vfp_addr spa4 = { .family = 4 };
    memcpy(spa4.bytes, arp + 14, 4);
    neigh_learn(w, &spa4, arp + 8);
    if (op == 1 && !memcmp(arp + 24, c->local.bytes, 4) && vfp_mac__learnable(arp + 8)) {
        /* Turn the request into the reply in place: to the asker, from us (an asker with
         * a group address is none: no reply broadcast on its word). */
        uint8_t sha[6], spa[4];
        memcpy(sha, arp + 8, 6);
        memcpy(spa, arp + 14, 4);
        memcpy(d, sha, 6);
        memcpy(d + 6, c->uplink_mac, 6);
        arp[7] = 2;
        memcpy(arp + 8, c->uplink_mac, 6);
        memcpy(arp + 14, c->local.bytes, 4);
        memcpy(arp + 18, sha, 6);
        memcpy(arp + 24, spa, 4);
        w->st->arp_replies++;
        tx_push(w, c->uplink, p);
        return;
    }
    if (op != 2) {
        w->st->drops[VFP_DP_D_ARP_OTHER]++;
        drop_note(w, c->uplink, p, VFP_DP_D_ARP_OTHER, DROP_RX);
    }
    vfp_pkt__free_burst(&p, 1);
}

/* An echo request turned into its reply in place: Ethernet addresses to the asker from
 * us, source and destination (ALEN bytes each) swapped, the message's type set to TYPE
 * (its checksum following, RFC 1624), LEN bytes long (Ethernet padding beyond the
 * minimum dropped). */
static void echo_reply(worker *w, vfp_pkt *p, uint8_t *src, uint8_t *dst, size_t alen, uint8_t *m, uint8_t type, uint32_t len) {
    uint8_t *d = p->data, a[16];
    memcpy(d, d + 6, 6);
    memcpy(d + 6, w->cfg->uplink_mac, 6);
    memcpy(a, src, alen);
    memcpy(src, dst, alen);
    memcpy(dst, a, alen);
    const uint16_t was = (uint16_t)(m[0] << 8 | m[1]);
    m[0] = type;
    const uint16_t mc = vfp_csum__update16((uint16_t)(m[2] << 8 | m[3]), was, (uint16_t)(m[0] << 8 | m[1]));
    m[2] = (uint8_t)(mc >> 8);
    m[3] = (uint8_t)mc;
    /* Padded toward the minimum only within what arrived: past a frame that came short
     * (a veth delivers them unpadded) is not ours to write (in an AF_PACKET TPACKET_V3
     * block, the next frame's header). A device pads a short frame as it sends it. */
    const uint32_t room = p->len < 60 ? p->len : 60;
    if (len < room) memset(p->data + len, 0, room - len);
    p->len = len < room ? room : len;
}

/* A unicast destination MAC that is not the uplink's (d holds at least 14 bytes). */
static inline int other_host(const dp_cfg *c, const uint8_t *d) {
    return !(d[0] & 1) && vfp_mac48(d) != c->uplink_mac48;
}

/* An ICMP echo request to our VTEP (the first thing an engineer tries on the underlay:
 * ping the VTEP): turned into the reply in place, to the asker, as the host's stack
 * would answer if it still had the uplink. 1 when answered (p consumed); 0 for anything
 * else, which goes on to decap (and is counted there, not_udp, as before). Cold, as the
 * ARP handler. */
static VFP_COLD int uplink_echo4(worker *w, vfp_pkt *p, size_t l3) {
    const dp_cfg *c = w->cfg;
    uint8_t *d = p->data, *ip = d + l3;
    if (c->local.family != 4 || memcmp(ip + 16, c->local.bytes, 4) || (ip[0] >> 4) != 4) return 0;
    const uint32_t hl = 4u * (ip[0] & 0x0f), tot = (uint32_t)(ip[2] << 8 | ip[3]);
    if (hl < 20 || tot < hl + 8 || l3 + tot > p->len || !vfp_csum__ipv4_ok(ip, hl)) return 0;
    if ((ip[6] << 8 | ip[7]) & 0x3fff) return 0; /* a fragment: not reassembled here */
    uint8_t *m = ip + hl;
    if (m[0] != 8 || m[1] != 0 || vfp_csum__fold(vfp_csum__partial(m, tot - hl, 0)) != 0xffff) return 0;
    if (!vfp_icmp__host4(ip + 12) || !vfp_mac__learnable(d + 6)) return 0; /* no reply to a source that is no host */
    ip[8] = 64;
    /* The request's IP options are not echoed (RFC 1122 §3.2.2.6 allows it; echoed as
     * they came, a source route would not be reversed as it asks): the message moves up
     * behind a plain 20-byte header. */
    uint32_t rtot = tot;
    if (hl > 20) {
        memmove(ip + 20, m, tot - hl);
        m = ip + 20;
        rtot = tot - (hl - 20);
        ip[0] = 0x45;
        ip[2] = (uint8_t)(rtot >> 8);
        ip[3] = (uint8_t)rtot;
    }
    echo_reply(w, p, ip + 12, ip + 16, 4, m, 0x00, (uint32_t)(l3 + rtot));
    ip[10] = ip[11] = 0;
    const uint16_t hc = (uint16_t)~vfp_csum__fold(vfp_csum__partial(ip, 20, 0));
    memcpy(ip + 10, &hc, 2);
    w->st->echo_replies++;
    tx_push(w, c->uplink, p);
    return 1;
}

/* The same for ICMPv6 (RFC 4443 §4.2), from uplink_nd: 1 when answered (p consumed). */
static VFP_COLD int uplink_echo6(worker *w, vfp_pkt *p, size_t l3, uint32_t plen) {
    const dp_cfg *c = w->cfg;
    uint8_t *d = p->data, *ip = d + l3, *m = ip + 40;
    if (c->local.family != 6 || plen < 8 || memcmp(ip + 24, c->local.bytes, 16) || !vfp_icmp__host6(ip + 8) || !vfp_mac__learnable(d + 6)) return 0;
    if (m[0] != 128 || m[1] != 0 || vfp_icmp6__csum(ip + 8, ip + 24, m, plen) != 0) return 0;
    if (other_host(c, d)) { /* as from_uplink drops an IPv4 one */
        w->st->drops[VFP_DP_D_OTHER_HOST]++;
        drop_free(w, c->uplink, p, VFP_DP_D_OTHER_HOST, DROP_RX);
        return 1;
    }
    ip[7] = 64;
    /* The pseudo-header's sum is the same with the addresses swapped. */
    echo_reply(w, p, ip + 8, ip + 24, 16, m, 129, (uint32_t)(l3 + 40 + plen));
    w->st->echo_replies++;
    tx_push(w, c->uplink, p);
    return 1;
}

/* The link-layer address option of type `type` among an ND message's options, or NULL
 * (RFC 4861 §4.6.1); options with a zero length make the whole message invalid. */
static const uint8_t *nd_lladdr(const uint8_t *o, uint32_t len, uint8_t type, int *bad) {
    const uint8_t *found = NULL;
    while (len >= 2) {
        uint32_t ol = (uint32_t)o[1] * 8;
        if (!ol || ol > len) {
            *bad = 1;
            return NULL;
        }
        if (o[0] == type && ol >= 8 && !found) found = o + 2;
        o += ol;
        len -= ol;
    }
    return found;
}

/* ---- the underlay's path MTU (RFC 1191, RFC 8201) */

/* A path MTU a router reported holds this long, as the kernel's (net.ipv4.route.
 * mtu_expires, 600 s); then the tunnel's own MTU is tried again. */
#define PMTU_EXPIRES_NS (600ull * 1000000000ull)

/* The path MTU to peer `peer` (index in this epoch) a router reported: the encap check,
 * and the ICMP too big it answers pods with, use it from the next packet on, as the
 * kernel's vxlan uses its route's MTU. Only lower than the tunnel's own MTU (none is
 * raised), and no lower than the protocol's floor. 1 when taken. */
static int pmtu_note(worker *w, int peer, const vfp_addr *a, uint32_t mtu, uint64_t now) {
    const dp_cfg *c = w->cfg;
    const uint32_t base = c->peers[peer].tun.mtu, floor = a->family == 4 ? 552 : 1280;
    if (mtu < floor) mtu = floor;
    if (base && mtu >= base) return 0;
    neigh *n = neigh_slot(w, a, 1);
    if (!n) return 0;
    n->pmtu = (uint16_t)mtu;
    n->pmtu_until_ns = now + PMTU_EXPIRES_NS;
    w->tun[peer].mtu = (uint16_t)mtu;
    w->st->pmtu_learned++;
    /* Published for the other workers (pmtu_from_others): the router's message reaches
     * whichever worker the uplink's queues give it to, not the one whose packet it was. */
    vfp_dp_peer_stats *ps = &w->st->peers[c->peers[peer].slot];
    __atomic_store_n(&ps->pmtu_until_ns, n->pmtu_until_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&ps->pmtu, (uint64_t)mtu, __ATOMIC_RELEASE);
    return 1;
}

/* Path MTUs the other workers were told (once a second): the lowest that still holds,
 * when lower than this worker's own for the peer. Not published again: only the worker
 * a router told publishes, and its expiry ends it for all. */
static void pmtu_from_others(worker *w, uint64_t now) {
    const dp_cfg *c = w->cfg;
    for (uint32_t i = 0; i < c->n_peers; i++) {
        const uint32_t slot = c->peers[i].slot;
        const vfp_addr *a = &c->peers[i].addr;
        for (uint16_t k = 0; k < w->dp->n_workers; k++) {
            if (k == w->idx) continue;
            const vfp_dp_peer_stats *o = &w->dp->w[k].st->peers[slot];
            const uint64_t m = __atomic_load_n(&o->pmtu, __ATOMIC_ACQUIRE);
            if (!m) continue;
            const uint64_t until = __atomic_load_n(&o->pmtu_until_ns, __ATOMIC_RELAXED);
            if (until <= now || o->family != a->family || memcmp(o->addr, a->bytes, 16)) continue;
            const uint32_t base = c->peers[i].tun.mtu;
            if (base && m >= base) continue;
            neigh *n = neigh_slot(w, a, 1);
            if (!n || (n->pmtu && n->pmtu <= m)) continue;
            n->pmtu = (uint16_t)m;
            n->pmtu_until_ns = until;
            w->tun[i].mtu = (uint16_t)m;
        }
    }
}

/* What both families check of the quoted packet past its IP header: UDP to our VXLAN
 * port (`udp`, the quoted UDP header), to one of our peers (`dst`, the quoted
 * destination); then the path MTU is noted (`mtu` 0: none given) and p consumed. 1 when
 * it was one of ours. */
static int pmtu_quote(worker *w, vfp_pkt *p, const uint8_t *udp, const uint8_t *dst, uint8_t family, uint32_t mtu, uint64_t now) {
    const dp_cfg *c = w->cfg;
    if ((uint16_t)(udp[2] << 8 | udp[3]) != c->decap.dst_port) return 0;
    vfp_addr a;
    memset(&a, 0, sizeof a);
    a.family = family;
    memcpy(a.bytes, dst, family == 4 ? 4 : 16);
    const int peer = peer_find(c, &a);
    if (peer < 0) return 0;
    if (mtu) (void)pmtu_note(w, peer, &a, mtu, now);
    vfp_pkt__free_burst(&p, 1);
    return 1;
}

/* The quote of an ICMP error (type, code) to our VTEP, whole (its header and ICMP
 * checksums right, not a fragment), that quotes a UDP packet from our VTEP: the quoted
 * IPv4 header (its length in *qhl, with room for the UDP header after it), or NULL. What
 * uplink_pmtu4 and uplink_unreach4 go on. */
static VFP_COLD const uint8_t *icmp4_quote(const dp_cfg *c, const vfp_pkt *p, size_t l3, uint8_t type, uint8_t code, uint32_t *qhl) {
    const uint8_t *ip = p->data + l3;
    if (c->local.family != 4 || memcmp(ip + 16, c->local.bytes, 4) || (ip[0] >> 4) != 4) return NULL;
    const uint32_t hl = 4u * (ip[0] & 0x0f), tot = (uint32_t)(ip[2] << 8 | ip[3]);
    if (hl < 20 || tot < hl + 8 + 20 + 8 || l3 + tot > p->len || !vfp_csum__ipv4_ok(ip, hl)) return NULL;
    if ((ip[6] << 8 | ip[7]) & 0x3fff) return NULL;
    const uint8_t *m = ip + hl, *q = m + 8;
    if (m[0] != type || m[1] != code || vfp_csum__fold(vfp_csum__partial(m, tot - hl, 0)) != 0xffff) return NULL;
    const uint32_t h = 4u * (q[0] & 0x0f);
    if ((q[0] >> 4) != 4 || h < 20 || tot < hl + 8 + h + 8 || q[9] != 17 || memcmp(q + 12, c->local.bytes, 4)) return NULL;
    *qhl = h;
    return q;
}

/* The same for ICMPv6 (plen: the IPv6 payload length, within the frame): the quoted IPv6
 * header (a UDP header after it), or NULL. */
static VFP_COLD const uint8_t *icmp6_quote(const dp_cfg *c, const vfp_pkt *p, size_t l3, uint32_t plen, uint8_t type, uint8_t code) {
    const uint8_t *ip = p->data + l3, *m = ip + 40, *q = m + 8;
    if (c->local.family != 6 || plen < 8 + 40 + 8 || memcmp(ip + 24, c->local.bytes, 16)) return NULL;
    if (m[0] != type || m[1] != code || vfp_icmp6__csum(ip + 8, ip + 24, m, plen) != 0) return NULL;
    if ((q[0] >> 4) != 6 || q[6] != 17 || memcmp(q + 8, c->local.bytes, 16)) return NULL;
    return q;
}

/* An ICMP "fragmentation needed" (type 3 code 4) to our VTEP that quotes one of our
 * VXLAN packets (from our VTEP, UDP to our port) to a peer: that peer's path MTU. The
 * quote is checked as Linux checks it (icmp_unreach → udp_err finds the socket by the
 * quoted addresses and ports): a message quoting anything else, or a peer that is not
 * one, changes nothing. 1 when it was one (p consumed); 0 for anything else. */
static VFP_COLD int uplink_pmtu4(worker *w, vfp_pkt *p, size_t l3, uint64_t now) {
    uint32_t qhl;
    const uint8_t *q = icmp4_quote(w->cfg, p, l3, 3, 4, &qhl);
    if (!q) return 0;
    /* No next-hop MTU (0: a router older than RFC 1191): nothing to go on. */
    return pmtu_quote(w, p, q + qhl, q + 16, 4, (uint32_t)(q[-2] << 8 | q[-1]), now);
}

/* A port unreachable that quotes our VXLAN packet to peer `from`: that peer's count. */
static VFP_COLD void count_port_unreach(worker *w, const dp_cfg *c, const uint8_t *udp, const vfp_addr *from, uint64_t now) {
    if ((uint16_t)(udp[2] << 8 | udp[3]) != c->decap.dst_port) return;
    const int peer = peer_find(c, from);
    if (peer < 0) return;
    vfp_dp_peer_stats *ps = &w->st->peers[c->peers[peer].slot];
    ps->port_unreach++;
    ps->port_unreach_ns = now;
}

/* An ICMP "port unreachable" (type 3 code 3) to our VTEP quoting one of our VXLAN packets
 * (from our VTEP, UDP to our port) to a peer: nothing of the peer's listens on our port
 * (its vxlan made with another dstport, or gone). Counted for that peer, for `status`;
 * the frame goes on to decap, which drops it as not_udp. */
static VFP_COLD void uplink_unreach4(worker *w, const vfp_pkt *p, size_t l3, uint64_t now) {
    uint32_t qhl;
    const uint8_t *q = icmp4_quote(w->cfg, p, l3, 3, 3, &qhl);
    if (!q) return;
    vfp_addr a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    memcpy(a.bytes, q + 16, 4);
    count_port_unreach(w, w->cfg, q + qhl, &a, now);
}

/* The same for an ICMPv6 "port unreachable" (type 1 code 4): from uplink_nd, which then
 * drops it as nd_other. */
static VFP_COLD void uplink_unreach6(worker *w, const vfp_pkt *p, size_t l3, uint32_t plen, uint64_t now) {
    const uint8_t *q = icmp6_quote(w->cfg, p, l3, plen, 1, 4);
    if (!q) return;
    vfp_addr a = { .family = 6 };
    memcpy(a.bytes, q + 24, 16);
    count_port_unreach(w, w->cfg, q + 40, &a, now);
}

/* The same for an ICMPv6 "packet too big" (type 2) to our VTEP: from uplink_nd. */
static VFP_COLD int uplink_pmtu6(worker *w, vfp_pkt *p, size_t l3, uint32_t plen, uint64_t now) {
    const uint8_t *q = icmp6_quote(w->cfg, p, l3, plen, 2, 0);
    if (!q) return 0;
    const uint8_t *m = q - 8;
    const uint32_t mtu = (uint32_t)m[4] << 24 | (uint32_t)m[5] << 16 | (uint32_t)m[6] << 8 | m[7];
    return pmtu_quote(w, p, q + 40, q + 24, 6, mtu > 65535 ? 65535 : mtu, now);
}

/* ------------------------------------------------ fragmented VXLAN packets */

static VFP_COLD void reasm_drop(worker *w, reasm *r, unsigned reason) {
    count_port_drop(w, w->cfg->uplink, reason, 1);
    vfp_pkt__free_burst(&r->buf, 1);
    r->buf = NULL;
}

/* Datagrams that were not whole within their time give their buffers back. */
static VFP_COLD void reasm_expire(worker *w, uint64_t now) {
    for (unsigned i = 0; i < REASM_SLOTS; i++)
        if (w->rs[i].buf && now - w->rs[i].start_ns > REASM_TIMEOUT_NS) reasm_drop(w, &w->rs[i], VFP_DP_D_REASM_TIMEOUT);
}

/* Sets units [a, b) of r; returns how many of them were set already. */
static unsigned reasm_mark(reasm *r, uint32_t a, uint32_t b) {
    unsigned had = 0;
    for (uint32_t u = a; u < b; u++) {
        const uint64_t bit = 1ull << (u & 63);
        had += (r->units[u >> 6] & bit) != 0;
        r->units[u >> 6] |= bit;
    }
    return had;
}

/* One fragment of the datagram (family, src, dst, id): `len` payload bytes at offset
 * `off` (`pl`), `more` unless it is the last, `ce` if it came marked CE; `hdr` (`hdr_len`
 * bytes: Ethernet and the IP header without the fragment's own) when it is the first.
 * Returns the whole packet (a scratch buffer; its IP header is the caller's to fix, with
 * *ce_out whether any fragment was marked CE) when this fragment completed it, else NULL.
 * The fragment's own buffer stays the caller's. */
static VFP_COLD vfp_pkt *reasm_add(worker *w, uint8_t family, const uint8_t *src, const uint8_t *dst, uint32_t id,
                                   const uint8_t *hdr, uint32_t hdr_len, const uint8_t *pl, uint32_t off, uint32_t len,
                                   int more, int ce, uint8_t *ce_out, uint64_t now) {
    const unsigned alen = family == 4 ? 4 : 16;
    reasm *r = NULL, *free_r = NULL, *oldest = NULL;
    for (unsigned i = 0; i < REASM_SLOTS; i++) {
        reasm *x = &w->rs[i];
        if (x->buf && now - x->start_ns > REASM_TIMEOUT_NS) reasm_drop(w, x, VFP_DP_D_REASM_TIMEOUT);
        if (!x->buf) {
            if (!free_r) free_r = x;
            continue;
        }
        if (x->family == family && x->id == id && !memcmp(x->src, src, alen) && !memcmp(x->dst, dst, alen)) {
            r = x;
            break;
        }
        if (!oldest || x->seq < oldest->seq) oldest = x;
    }
    if (!r) {
        /* Every slot busy: the oldest makes room once it has waited REASM_EVICT_NS. */
        if (!free_r && now - oldest->start_ns < REASM_EVICT_NS) {
            count_port_drop(w, w->cfg->uplink, VFP_DP_D_REASM_FULL, 1);
            return NULL;
        }
        if (!free_r) reasm_drop(w, oldest, VFP_DP_D_REASM_TIMEOUT), free_r = oldest;
        vfp_pkt *b = pool_get(&w->pool);
        if (!b) {
            count_port_drop(w, w->cfg->uplink, VFP_DP_D_NO_BUFFER, 1);
            return NULL;
        }
        r = free_r;
        memset(r, 0, sizeof *r);
        r->buf = b;
        r->start_ns = now;
        r->seq = ++w->reasm_seq;
        r->family = family;
        r->id = id;
        memcpy(r->src, src, alen);
        memcpy(r->dst, dst, alen);
    }
    w->st->reasm_fragments++;
    const uint32_t cap = w->pool.buf_size - w->pool.headroom < REASM_MAX ? w->pool.buf_size - w->pool.headroom : REASM_MAX;
    const uint32_t end = off + len;
    /* A middle fragment ends on an 8-byte boundary; none goes past the last one's end;
     * the last one says where the end is once. */
    if ((more && (!len || (len & 7))) || end > cap || (r->total && end > r->total) || (!more && r->total && end != r->total)) {
        reasm_drop(w, r, VFP_DP_D_REASM_INVALID);
        return NULL;
    }
    if (!more && !r->total) {
        /* Nothing held may lie past the end it names. */
        for (uint32_t u = (end + 7) >> 3; u < REASM_MAX / 8; u++)
            if (r->units[u >> 6] & (1ull << (u & 63))) {
                reasm_drop(w, r, VFP_DP_D_REASM_INVALID);
                return NULL;
            }
        r->total = end;
    }
    if (len) {
        const uint32_t a = off >> 3, b = (end + 7) >> 3;
        const unsigned had = reasm_mark(r, a, b);
        /* A repeat: bytes held already, the same again (a duplicate on the wire). Other
         * bytes where some are held: an overlap. */
        if (had == b - a && !memcmp(r->buf->data + off, pl, len)) return NULL;
        if (had) {
            reasm_drop(w, r, VFP_DP_D_REASM_OVERLAP);
            return NULL;
        }
        memcpy(r->buf->data + off, pl, len);
        r->have += len;
    }
    if (off == 0) {
        memcpy(r->buf->data - hdr_len, hdr, hdr_len);
        r->hdr_len = (uint16_t)hdr_len;
    }
    r->ce |= (uint8_t)ce;
    if (!r->hdr_len || !r->total || r->have != r->total) return NULL;
    vfp_pkt *b = r->buf;
    r->buf = NULL;
    b->data -= r->hdr_len;
    b->headroom -= r->hdr_len;
    b->len = r->hdr_len + r->total;
    b->port = w->cfg->uplink;
    w->st->reasm_datagrams++;
    *ce_out = r->ce;
    return b;
}

/* Where the IP header of a frame starts: after one 802.1Q tag, if there is one (as
 * from_uplink reads it). */
static size_t l3_of(const uint8_t *d) { return d[12] == 0x81 && d[13] == 0x00 ? 18 : 14; }

/* An IPv4 fragment (from from_uplink: offset or MF set) of a UDP packet to our VTEP,
 * taken for reassembly: NULL when held (or dropped: counted), the whole packet when it
 * was the last one missing, its header made a whole packet's; p itself, untouched, when
 * it is not one of ours (decap drops it, ip_fragment). */
static VFP_COLD vfp_pkt *uplink_frag4(worker *w, vfp_pkt *p, size_t l3, uint64_t now) {
    const dp_cfg *c = w->cfg;
    const uint8_t *ip = p->data + l3;
    const uint32_t hl = 4u * (ip[0] & 0x0f), tot = (uint32_t)(ip[2] << 8 | ip[3]);
    if ((ip[0] >> 4) != 4 || hl < 20 || tot < hl || l3 + tot > p->len || ip[9] != 17 || c->local.family != 4 ||
        memcmp(ip + 16, c->local.bytes, 4) || !vfp_csum__ipv4_ok(ip, hl))
        return p;
    vfp_addr from = { .family = 4 };
    memcpy(from.bytes, ip + 12, 4);
    if (peer_find(c, &from) < 0) return p; /* only a peer's (decap drops it: ip_fragment) */
    const uint32_t fo = (uint32_t)(ip[6] << 8 | ip[7]);
    uint8_t ce = 0;
    vfp_pkt *whole = reasm_add(w, 4, ip + 12, ip + 16, (uint32_t)(ip[4] << 8 | ip[5]), p->data, (uint32_t)(l3 + hl), ip + hl,
                               (fo & 0x1fff) * 8u, tot - hl, (fo & 0x2000) != 0, (ip[1] & 3) == 3, &ce, now);
    vfp_pkt__free_burst(&p, 1);
    if (!whole) return NULL;
    uint8_t *wip = whole->data + l3_of(whole->data);
    const uint32_t wtot = whole->len - (uint32_t)(wip - whole->data);
    wip[2] = (uint8_t)(wtot >> 8);
    wip[3] = (uint8_t)wtot;
    wip[6] &= 0x40; /* DF stays; the offset and MF go */
    wip[7] = 0;
    if (ce && (wip[1] & 3)) wip[1] |= 3;
    wip[10] = wip[11] = 0;
    const uint16_t hc = (uint16_t)~vfp_csum__fold(vfp_csum__partial(wip, 4u * (wip[0] & 0x0f), 0));
    memcpy(wip + 10, &hc, 2);
    return whole;
}

/* An IPv4 frame on the uplink that is ICMP or a fragment (from from_uplink): an echo to
 * our VTEP or a router's PMTU message is consumed (NULL); a fragment of a UDP packet to
 * us goes to reassembly (NULL, or the whole packet); anything else is p, for decap to
 * drop with its reason. */
static VFP_COLD vfp_pkt *uplink_ip4_other(worker *w, vfp_pkt *p, size_t l3, uint64_t now) {
    const uint8_t *d = p->data;
    if (d[l3 + 9] == 1 && p->len >= l3 + 28) {
        if (uplink_echo4(w, p, l3) || uplink_pmtu4(w, p, l3, now)) return NULL;
        uplink_unreach4(w, p, l3, now);
    }
    if ((d[l3 + 6] & 0x3f) | d[l3 + 7]) return uplink_frag4(w, p, l3, now);
    return p;
}

/* The same for IPv6: a fragment header (44) right after the fixed header, over UDP. */
static VFP_COLD vfp_pkt *uplink_frag6(worker *w, vfp_pkt *p, size_t l3, uint64_t now) {
    const dp_cfg *c = w->cfg;
    const uint8_t *ip = p->data + l3, *fh = ip + 40;
    const uint32_t plen = (uint32_t)(ip[4] << 8 | ip[5]);
    if ((ip[0] >> 4) != 6 || plen < 8 || l3 + 40 + plen > p->len || fh[0] != 17 || c->local.family != 6 ||
        memcmp(ip + 24, c->local.bytes, 16))
        return p;
    vfp_addr from = { .family = 6 };
    memcpy(from.bytes, ip + 8, 16);
    if (peer_find(c, &from) < 0) return p; /* only a peer's (decap drops it) */
    const uint32_t fo = (uint32_t)(fh[2] << 8 | fh[3]);
    const uint32_t id = (uint32_t)fh[4] << 24 | (uint32_t)fh[5] << 16 | (uint32_t)fh[6] << 8 | fh[7];
    uint8_t ce = 0;
    vfp_pkt *whole = reasm_add(w, 6, ip + 8, ip + 24, id, p->data, (uint32_t)(l3 + 40), fh + 8, fo & 0xfff8, plen - 8,
                               fo & 1, ((ip[1] >> 4) & 3) == 3, &ce, now);
    vfp_pkt__free_burst(&p, 1);
    if (!whole) return NULL;
    uint8_t *wip = whole->data + l3_of(whole->data);
    const uint32_t wplen = whole->len - (uint32_t)(wip - whole->data) - 40;
    wip[4] = (uint8_t)(wplen >> 8);
    wip[5] = (uint8_t)wplen;
    wip[6] = 17;
    if (ce && ((wip[1] >> 4) & 3)) wip[1] |= 0x30;
    return whole;
}

/* Path MTUs that have held their time go: the tunnel's own MTU is tried again. */
static void pmtu_expire(worker *w, uint64_t now) {
    const dp_cfg *c = w->cfg;
    for (uint32_t i = 0; i < c->n_peers; i++) {
        neigh *n = neigh_slot(w, &c->peers[i].addr, 0);
        if (!n || !n->pmtu || now < n->pmtu_until_ns) continue;
        n->pmtu = 0;
        w->tun[i].mtu = c->peers[i].tun.mtu;
        __atomic_store_n(&w->st->peers[c->peers[i].slot].pmtu, 0, __ATOMIC_RELEASE);
    }
}

/* Handles an ICMPv6 frame on the uplink (IPv6 header at l3, no extension header):
 * answers a neighbour solicitation for our VTEP, learns peers' MACs from solicitations
 * and advertisements (RFC 4861 §7.1 validity checks first), notes another host's claim
 * to the VTEP. Consumes p. */
static VFP_COLD void uplink_nd(worker *w, vfp_pkt *p, size_t l3, uint64_t now) {
    const dp_cfg *c = w->cfg;
    const uint8_t *d = p->data, *ip = d + l3, *m = ip + 40;
    const uint32_t plen = p->len >= l3 + 40 ? (uint32_t)(ip[4] << 8 | ip[5]) : 0;
    if (plen >= 8 && p->len >= l3 + 40 + plen && m[0] == 128 && uplink_echo6(w, p, l3, plen)) return;
    if (plen >= 8 && p->len >= l3 + 40 + plen && m[0] == 2 && uplink_pmtu6(w, p, l3, plen, now)) return;
    if (plen >= 8 && p->len >= l3 + 40 + plen && m[0] == 1) uplink_unreach6(w, p, l3, plen, now);
    int bad = c->local.family != 6 || !plen || p->len < l3 + 40 + plen || plen < 24 || ip[7] != 255 ||
              m[1] != 0 || (m[0] != 135 && m[0] != 136) || vfp_icmp6__csum(ip + 8, ip + 24, m, plen) != 0 ||
              m[8] == 0xff; /* the target is never multicast */
    if (!bad) {
        static const uint8_t unspec[16];
        const uint8_t *target = m + 8;
        const int from_unspec = !memcmp(ip + 8, unspec, 16);
        vfp_addr t = { .family = 6 }, s = { .family = 6 };
        memcpy(t.bytes, target, 16);
        memcpy(s.bytes, ip + 8, 16);
        const uint8_t *ll = nd_lladdr(m + 24, plen - 24, m[0] == 135 ? 1 : 2, &bad);
        if (!bad && m[0] == 135 && from_unspec && ll) bad = 1; /* DAD carries no source address option */
        /* Our address from another MAC: a solicitation sent from it, an advertisement for
         * it, or a duplicate address detection probe for it (another host about to take
         * it; our advertisement below makes a kernel give it up, "dadfailed"). */
        const uint8_t *who = ll ? ll : d + 6;
        if (!bad && memcmp(who, c->uplink_mac, 6) &&
            (m[0] == 135 ? !memcmp(ip + 8, c->local.bytes, 16) || (from_unspec && !memcmp(target, c->local.bytes, 16))
                         : !memcmp(target, c->local.bytes, 16)))
            vtep_conflict(w, who, now);
        if (!bad && m[0] == 135) {
            if (ll && !from_unspec) neigh_learn(w, &s, ll);
            /* Answered to the asker's MAC, unless that is a group address (no station's:
             * a reply there would go to every host on its word). */
            if (!memcmp(target, c->local.bytes, 16) && (from_unspec || vfp_mac__learnable(d + 6))) {
                vfp_pkt *r = pool_get(&w->pool);
                if (!r) {
                    w->st->drops[VFP_DP_D_NO_BUFFER]++;
                } else {
                    /* Solicited: to the asker, S and O set. Duplicate address detection
                     * (unspecified source): to all nodes, S clear (§7.2.4). */
                    size_t rl3 = eth_hdr(r->data, from_unspec ? ALL_NODES_MAC : d + 6, c->uplink_mac, c->vlan, 0x86dd);
                    r->len = (uint32_t)nd_message(c, r->data, rl3, from_unspec ? ALL_NODES : ip + 8, 136,
                                                  from_unspec ? 0x20 : 0x60, c->local.bytes, 2);
                    pad_min(r);
                    w->st->nd_adverts++;
                    tx_push(w, c->uplink, r);
                }
            }
        } else if (!bad) {
            if (ll) {
                neigh_learn(w, &t, ll);
            } else if (m[4] & 0x40) {
                /* Solicited, without the target's link-layer address: the answer Linux
                 * gives a unicast solicitation (our probe; RFC 4861 §7.2.4 lets it leave
                 * the option out). The MAC it was asked at stands, confirmed. */
                const neigh *n = neigh_slot(w, &t, 0);
                if (n && n->valid && !memcmp(n->mac, d + 6, 6)) {
                    uint8_t mac[6];
                    memcpy(mac, n->mac, 6);
                    neigh_learn(w, &t, mac);
                }
            }
        }
        if (!bad) {
            vfp_pkt__free_burst(&p, 1);
            return;
        }
    }
    w->st->drops[VFP_DP_D_ND_OTHER]++;
    drop_free(w, c->uplink, p, VFP_DP_D_ND_OTHER, DROP_RX);
}

/* ---- MLD (IPv6 underlay): the solicited-node group of our VTEP */

/* The uplink's link-local address, from its MAC (modified EUI-64, RFC 4291 §2.5.1 and
 * appendix A): the source MLD messages need (RFC 3810 §5.2.13). */
static void link_local(const uint8_t *mac, uint8_t *out) {
    static const uint8_t pfx[8] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0 };
    memcpy(out, pfx, 8);
    out[8] = mac[0] ^ 0x02, out[9] = mac[1], out[10] = mac[2], out[11] = 0xff;
    out[12] = 0xfe, out[13] = mac[3], out[14] = mac[4], out[15] = mac[5];
}

/* Whether this worker reports for the node: worker 0, on an IPv6 underlay with an uplink. */
static inline int mld_speaker(const worker *w) {
    return w->idx == 0 && w->cfg->local.family == 6 && w->cfg->uplink != VFP_DP_NO_PORT;
}

/* An MLDv2 report (RFC 3810 §5.2) with one record: the VTEP's solicited-node group in
 * EXCLUDE mode with no sources, i.e. "I listen". Record type 4 (change to exclude) when
 * unsolicited, 2 (is exclude) in answer to a query. Snooping switches learn from it that
 * solicitations for our VTEP must reach this port. Worker 0 sends it for the node. */
static VFP_COLD void mld_report(worker *w, uint8_t record_type, uint64_t now) {
    const dp_cfg *c = w->cfg;
    if (!mld_speaker(w)) return;
    vfp_pkt *p = pool_get(&w->pool);
    if (!p) {
        w->st->drops[VFP_DP_D_NO_BUFFER]++;
        return;
    }
    w->last_mld_ns = now;
    static const uint8_t all_mld_routers[16] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16 };
    static const uint8_t mac[6] = { 0x33, 0x33, 0, 0, 0, 0x16 };
    uint8_t *d = p->data;
    size_t l3 = eth_hdr(d, mac, c->uplink_mac, c->vlan, 0x86dd);
    uint8_t *ip = d + l3, *hbh = ip + 40, *m = hbh + 8;
    const uint32_t len = 8 + 20; /* header + one record without sources */
    memset(ip, 0, 40 + 8 + len);
    ip[0] = 0x60;
    ip[5] = (uint8_t)(8 + len);
    ip[6] = 0;   /* hop-by-hop options */
    ip[7] = 1;   /* link-local scope */
    link_local(c->uplink_mac, ip + 8);
    memcpy(ip + 24, all_mld_routers, 16);
    hbh[0] = 58; /* then ICMPv6 */
    hbh[1] = 0;  /* 8 bytes */
    hbh[2] = 5, hbh[3] = 2, hbh[4] = 0, hbh[5] = 0; /* router alert: MLD (RFC 2711) */
    hbh[6] = 1, hbh[7] = 0;                         /* PadN */
    m[0] = 143;
    m[7] = 1;    /* one record */
    m[8] = record_type;
    solicited_node(c->local.bytes, m + 12);
    const uint16_t cs = vfp_icmp6__csum(ip + 8, ip + 24, m, len);
    memcpy(m + 2, &cs, 2);
    p->len = (uint32_t)(l3 + 40 + 8 + len);
    pad_min(p);
    w->st->mld_reports++;
    tx_push(w, c->uplink, p);
}

static uint64_t rng_next(worker *w) {
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* RFC 3810 §6.2: a query is answered after a random delay within its Maximum Response
 * Delay (§5.1.3: the code in ms, or a floating-point form from 32768 on), unless an
 * answer is due sooner already. The query may come in on any worker's queue; worker 0
 * sends the answer (mld_due). */
static void mld_schedule(worker *w, const uint8_t *m, uint64_t now) {
    const uint32_t code = vfp_rd16(m + 4);
    const uint64_t mrd_ms = code < 32768 ? code : (uint64_t)((code & 0x0fff) | 0x1000) << (((code >> 12) & 7) + 3);
    const uint64_t span = mrd_ms * 1000000ull;
    uint64_t due = now + (span ? rng_next(w) % (span + 1) : 0);
    if (!due) due = 1;
    uint64_t cur = atomic_load_explicit(&w->dp->mld_due_ns, memory_order_relaxed);
    while ((!cur || due < cur) &&
           !atomic_compare_exchange_weak_explicit(&w->dp->mld_due_ns, &cur, due, memory_order_relaxed, memory_order_relaxed)) {
    }
    w->st->mld_queries++;
}

/* Worker 0, with a query's answer pending: sends it once its time came and at least
 * MLD_ANSWER_GAP_NS passed since the last report (a flood of queries is answered ten
 * times a second at most). Out of line: the poll loop only tests that one is pending. */
#define MLD_ANSWER_GAP_NS 100000000ull
static VFP_COLD void mld_answer(worker *w, uint64_t now) {
    const uint64_t due = atomic_load_explicit(&w->dp->mld_due_ns, memory_order_relaxed);
    if (!mld_speaker(w) || !due || now < due || (w->last_mld_ns && now - w->last_mld_ns < MLD_ANSWER_GAP_NS)) return;
    atomic_store_explicit(&w->dp->mld_due_ns, 0, memory_order_relaxed);
    mld_report(w, 2, now);
}

/* An IPv6 frame with a hop-by-hop header on the uplink: an MLD query (general, or for
 * our group) schedules a report (mld_schedule); anything else is not for the data plane
 * (other hosts' reports, say) and dropped as nd_other. Consumes p. */
static VFP_COLD void uplink_hbh(worker *w, vfp_pkt *p, size_t l3, uint64_t now) {
    const dp_cfg *c = w->cfg;
    const uint8_t *ip = p->data + l3, *hbh = ip + 40;
    const uint32_t plen = (uint32_t)(ip[4] << 8 | ip[5]);
    const uint32_t hl = p->len >= l3 + 48 ? ((uint32_t)hbh[1] + 1) * 8 : 0;
    const uint8_t *m = hbh + hl;
    int query = c->local.family == 6 && hl && hbh[0] == 58 && p->len >= l3 + 40 + plen && plen >= hl + 24 &&
                m[0] == 130 && ip[7] == 1 && vfp_icmp6__csum(ip + 8, ip + 24, m, plen - hl) == 0;
    if (query) {
        static const uint8_t any[16];
        uint8_t group[16];
        solicited_node(c->local.bytes, group);
        if (!memcmp(m + 8, any, 16) || !memcmp(m + 8, group, 16)) mld_schedule(w, m, now);
        vfp_pkt__free_burst(&p, 1);
        return;
    }
    w->st->drops[VFP_DP_D_ND_OTHER]++;
    drop_free(w, c->uplink, p, VFP_DP_D_ND_OTHER, DROP_RX);
}

/* ---- epoch adoption */

/* The neighbour table keeps the peers of this epoch only: it holds twice the most peers
 * there can be, so live ones always fit, but entries of peers removed since were kept
 * for good, and after 512 distinct peers in a data plane's life a new one found no
 * slot (no ARP/ND request sent, its replies ignored: unresolved for ever). The kept
 * ones are put back, so no probe chain is broken by a hole. */
static void neigh_prune(worker *w, const dp_cfg *c) {
    neigh keep[2 * VFP_DP_MAX_PEERS];
    uint32_t nk = 0, stale = 0;
    for (uint32_t i = 0; i < 2 * VFP_DP_MAX_PEERS; i++) {
        if (!w->nb[i].addr.family) continue;
        int mine = peer_find(c, &w->nb[i].addr) >= 0;
        for (uint32_t k = 0; !mine && k < c->n_peers; k++) mine = vfp_addr__eq(&c->peers[k].nh, &w->nb[i].addr);
        if (mine) keep[nk++] = w->nb[i];
        else stale++;
    }
    if (!stale) return;
    memset(w->nb, 0, sizeof w->nb);
    for (uint32_t k = 0; k < nk; k++) {
        neigh *n = neigh_slot(w, &keep[k].addr, 1);
        if (n) *n = keep[k];
    }
}

static void adopt(worker *w, const dp_cfg *c) {
    tx_flush_all(w); /* queued packets were routed by the old epoch's ports */
    w->cfg = c;
    neigh_prune(w, c);
    uint64_t now = now_ns();
    /* Slots no peer of this epoch counts in are cleared, so readers see only live peers. */
    uint8_t live[VFP_DP_MAX_PEERS] = { 0 };
    for (uint32_t i = 0; i < c->n_peers; i++) live[c->peers[i].slot] = 1;
    for (uint32_t s = 0; s < VFP_DP_MAX_PEERS; s++)
        if (!live[s] && w->st->peers[s].family) memset(&w->st->peers[s], 0, sizeof w->st->peers[s]);
    for (uint32_t i = 0; i < c->n_peers; i++) {
        vfp_dp_peer_stats *ps = &w->st->peers[c->peers[i].slot];
        const vfp_addr *a = &c->peers[i].addr;
        if (ps->family != a->family || memcmp(ps->addr, a->bytes, 16)) {
            /* A slot newly given to this peer: its counters start from zero. A peer
             * keeps its slot while it stays configured, whatever its index. */
            memset(ps, 0, sizeof *ps);
            memcpy(ps->addr, a->bytes, 16);
            ps->family = a->family;
        }
        w->tun[i] = c->peers[i].tun;
        /* A path MTU a router told us for this peer stays with it across epochs. */
        const neigh *pn = neigh_slot(w, a, 0);
        if (pn && pn->pmtu && (!w->tun[i].mtu || pn->pmtu < w->tun[i].mtu)) w->tun[i].mtu = pn->pmtu;
        w->resolved[i] = c->peers[i].mac_known;
        w->stale_at[i] = UINT64_MAX;
        if (w->resolved[i]) {
            peer_mac_note(ps, w->tun[i].tmpl, 2, 0);
        } else {
            neigh *n = neigh_slot(w, &c->peers[i].nh, 0);
            if (n && n->valid) {
                memcpy(w->tun[i].tmpl, n->mac, 6);
                w->resolved[i] = 1;
                if (!n->confirmed_ns) n->confirmed_ns = now;
                w->stale_at[i] = n->confirmed_ns + NEIGH_REACHABLE_NS;
                peer_mac_note(ps, n->mac, 1, ps->resolved_ns ? ps->resolved_ns : now);
                __atomic_store_n(&ps->confirmed_ns, n->confirmed_ns, __ATOMIC_RELAXED);
            } else {
                peer_mac_note(ps, NULL, 0, 0);
                if (!neigh_from_others(w, (int)i)) neigh_send(w, (int)i, now, NULL);
            }
        }
    }
    /* Worker 0 announces the VTEP when it or the uplink's MAC is new. */
    if (w->idx == 0 && c->uplink != VFP_DP_NO_PORT && (c->local.family == 4 || c->local.family == 6) &&
        (!vfp_addr__eq(&w->announced, &c->local) || memcmp(w->announced_mac, c->uplink_mac, 6))) {
        w->announced = c->local;
        memcpy(w->announced_mac, c->uplink_mac, 6);
        w->announces_left = 2;
        w->next_announce_ns = now;
    }
    w->st->epoch = c->epoch;
    /* Release: once the control thread sees this epoch it may free the previous cfg, so
     * every read of the old one (above, in the previous loop pass) happens before. */
    atomic_store_explicit(&w->seen_epoch, c->epoch, memory_order_release);
}

/* ---- forwarding */

static int is_group(const uint8_t *mac) { return mac[0] & 1; }

/* ICMP errors to each pod at most ICMP_RATE a second per worker, in bursts of up to
 * ICMP_BURST: Linux's own defaults for the ICMP it sends (net.ipv4.icmp_msgs_per_sec,
 * icmp_msgs_burst), per pod rather than for all (one bucket for every pod let one pod's
 * flood of too-big packets starve the others' PMTU replies: Linux exempts frag-needed
 * from its limits altogether). A pod sending too big a packet over and over learns the
 * MTU from the first reply; the limit keeps a flood of them from costing a worker more
 * than that. */
#define ICMP_RATE 1000u
#define ICMP_BURST 50u

/* Takes a token from a bucket gaining RATE a second up to BURST (at 0: full). */
static int bucket_take(uint32_t *tokens, uint64_t *at, uint64_t now, uint32_t rate, uint32_t burst) {
    const uint64_t per = 1000000000ull / rate;
    if (!*at || now - *at >= per) {
        const uint64_t add = *at ? (now - *at) / per : burst;
        if (add >= burst || *tokens + add >= burst) {
            *tokens = burst;
            *at = now;
        } else {
            *tokens += (uint32_t)add;
            *at += add * per;
        }
    }
    if (!*tokens) return 0;
    (*tokens)--;
    return 1;
}

static int icmp_allowed(worker *w, uint16_t port, uint64_t now) {
    return bucket_take(&w->icmp_tokens[port], &w->icmp_ns[port], now, ICMP_RATE, ICMP_BURST);
}

/* Storm control (from_pod, when flood_pps is set): a pod (attached port) floods at most
 * flood_pps frames a second, in bursts of as many; the rest are dropped (flood_limited)
 * before any copy is made, so one pod's broadcast storm is not multiplied by every peer
 * and pod of its VNI. */
static int flood_allowed(worker *w, uint16_t port, uint64_t now) {
    const uint32_t pps = w->dp->o.flood_pps;
    return bucket_take(&w->flood_tokens[port], &w->flood_ns[port], now, pps, pps);
}

/* A frame encap refused leaves the data plane as a drop (counted by the engine, noted for
 * the capture), and is given back; unless it was too big for the tunnel and its sender
 * may be told so (core/icmp.h: IPv4 with DF, IPv6), as a Linux router or the kernel's
 * vxlan device on a bridge would tell it: then its buffer carries the ICMP error back to
 * the pod it came from. Flood copies (the scratch pool's) are not answered: the original,
 * sent to one of the targets, is. */
static VFP_COLD void encap_refused(worker *w, vfp_pkt *p, const vfp_tunnel *t, uint64_t now) {
    const uint16_t port = p->port;
    drop_note(w, port, p, VFP_DP_DROP_ENGINE | p->reason, DROP_RX);
    if (p->reason == VFP_R_MTU_EXCEEDED && w->cfg->icmp_too_big && p->owner != &w->pool.port &&
        port < VFP_DP_MAX_PORTS && w->cfg->att[port].active && vfp_icmp__too_big(p, vfp_tunnel__max_inner(t))) {
        if (icmp_allowed(w, port, now)) {
            w->st->icmp_too_big++;
            tx_push(w, port, p);
            return;
        }
        w->st->icmp_too_big_limited++;
    }
    vfp_pkt__free_burst(&p, 1);
}

/* In from_pod's list of frames to encapsulate, a peer index with this bit is a flood
 * copy for that peer: grouped apart from the unicast frames to it (a group is one kind,
 * and frames to one destination MAC are all of one kind, so none overtakes another of
 * its destination), counted also as the peer's flood_pkts. Above any peer index. */
#define ENC_FLOOD 0x4000
_Static_assert(VFP_DP_MAX_PEERS <= ENC_FLOOD, "peer indexes must stay below ENC_FLOOD");

/* Encapsulates one peer's packets (grp may be the caller's array: encap works in place)
 * and queues them on the uplink; the VNI counters are summed per group, not per packet.
 * pr may carry ENC_FLOOD: the group is flood copies. */
static void encap_group(worker *w, const cfg_vni *v, int pr, vfp_pkt **grp, uint16_t g, uint64_t now) {
    const int flood = pr & ENC_FLOOD;
    pr &= ~ENC_FLOOD;
    vfp_dp_vni_stats *vs = &w->st->vnis[v->slot];
    if (VFP_UNLIKELY(!w->resolved[pr]) && !neigh_from_others(w, pr)) {
        neigh_send(w, pr, now, NULL);
        w->st->drops[VFP_DP_D_NEIGH_UNRESOLVED] += g;
        vs->drops += g;
        for (uint16_t k = 0; k < g; k++) drop_note(w, grp[k]->port, grp[k], VFP_DP_D_NEIGH_UNRESOLVED, DROP_RX);
        vfp_pkt__free_burst(grp, g);
        return;
    }
    if (VFP_UNLIKELY(now >= w->stale_at[pr])) neigh_probe(w, pr, now);
    const uint16_t up = w->cfg->uplink;
    uint16_t ok = vfp_vxlan__encap_burst(&w->tun[pr], v->vni, grp, g, &w->st->engine);
    uint64_t bytes = 0;
    if (VFP_LIKELY(ok == g)) {
        bytes = tx_push_burst(w, up, grp, g); /* all encapsulated: the group in one go */
    } else {
        for (uint16_t k = 0; k < g; k++) {
            if (grp[k]->reason == VFP_OK) {
                bytes += grp[k]->len;
                tx_push(w, up, grp[k]);
            } else {
                encap_refused(w, grp[k], &w->tun[pr], now);
            }
        }
    }
    vs->encap_pkts += ok;
    vs->encap_bytes += bytes;
    vs->drops += (uint64_t)(g - ok);
    vfp_dp_peer_stats *ps = &w->st->peers[w->cfg->peers[pr].slot];
    ps->encap_pkts += ok;
    ps->encap_bytes += bytes;
    if (flood) ps->flood_pkts += ok;
}

/* Encapsulates pkts (all of one VNI) for their peers and queues them on the uplink. */
static void encap_to_peers(worker *w, const cfg_vni *v, vfp_pkt **pk, const int16_t *peer, uint16_t n,
                           uint64_t now) {
    /* The common case (every packet to one peer: one remote pod, or a gateway) needs no
     * grouping at all. */
    uint16_t same = 1;
    while (same < n && peer[same] == peer[0]) same++;
    if (same == n) {
        encap_group(w, v, peer[0], pk, n, now);
        return;
    }
    vfp_pkt *grp[VFP_MAX_BURST];
    uint8_t done[VFP_MAX_BURST * 2];
    memset(done, 0, n);
    for (uint16_t i = 0; i < n; i++) {
        if (done[i]) continue;
        int pr = peer[i];
        uint16_t g = 0;
        for (uint16_t j = i; j < n; j++)
            if (!done[j] && peer[j] == pr) grp[g++] = pk[j], done[j] = 1;
        encap_group(w, v, pr, grp, g, now);
    }
}

/* Where a unicast destination of a pod's frame goes. */
enum { UC_LOCAL, UC_HAIRPIN, UC_PEER, UC_NO_PEER, UC_FLOOD };

/* Per packet of a pod burst, before its destination is known: not unicast-routable. */
enum { PK_TRUNC = 0xffff, PK_SPOOF = 0xfffe, PK_GROUP = 0xfffd };

/* The verdicts of the burst's distinct unicast destinations the destination cache did
 * not have (todo, indexes into dmac): a local pod, else the FDB. The FDB lookups go
 * through lookup_bulk, config FDB then learned, so that their cache misses overlap:
 * resolving one destination at a time waited for each bucket in turn, a memory round
 * trip per destination on an FDB bigger than the caches. The order (a local pod, the
 * config FDB, the learned FDB, else flood) is what `dataplane explain` follows
 * (Daemon.explain, src/dataplane/daemon.ts): a change here changes it there. */
static void resolve_dests(worker *w, const dp_cfg *c, uint32_t vni, uint16_t port, const uint8_t *const *dmac,
                          const uint16_t *todo, uint16_t nt, uint8_t *kind, int16_t *pr, uint16_t *lp) {
    uint32_t vnis[VFP_MAX_BURST];
    const uint8_t *qmac[VFP_MAX_BURST];
    uint16_t q[VFP_MAX_BURST], idx[VFP_MAX_BURST];
    uint16_t nq = 0;
    for (uint16_t t = 0; t < nt; t++) {
        const uint16_t u = todo[t];
        lp[u] = mac_find(c, vni, dmac[u]);
        pr[u] = -1;
        if (lp[u] == port) kind[u] = UC_HAIRPIN;
        else if (lp[u] != NONE16) kind[u] = UC_LOCAL;
        else if (c->uplink == VFP_DP_NO_PORT) kind[u] = UC_FLOOD;
        else {
            kind[u] = UC_FLOOD;
            vnis[nq] = vni;
            qmac[nq] = dmac[u];
            q[nq++] = u;
        }
    }
    if (!nq) return;
    uint16_t nl = 0;
    if (c->fdb) {
        vfp_fdb__lookup_bulk(c->fdb, vnis, qmac, nq, idx);
        for (uint16_t j = 0; j < nq; j++) {
            const uint16_t u = q[j], x = idx[j];
            if (x == VFP_FDB_NO_VTEP) {
                qmac[nl] = qmac[j];
                q[nl++] = u;
            } else if (x < c->fdb_vteps) {
                if (c->fdb_peer[x] == NONE16) kind[u] = UC_NO_PEER;
                else kind[u] = UC_PEER, pr[u] = (int16_t)c->fdb_peer[x];
            }
            /* else: a config entry whose VTEP is past the config's peers floods, and the
             * learned FDB is not asked. */
        }
    } else {
        nl = nq;
    }
    if (!nl || !w->learned) return;
    vfp_fdb__lookup_bulk(w->learned, vnis, qmac, nl, idx);
    for (uint16_t j = 0; j < nl; j++) {
        if (idx[j] == VFP_FDB_NO_VTEP) continue;
        /* Learned from a VTEP that is no longer a peer (removed since): flooded, as if
         * unknown, until the MAC is learned again or the entry ages out. */
        const vfp_addr *a = vfp_fdb__vtep(w->learned, idx[j]);
        const int r = a ? peer_find(c, a) : -1;
        if (r >= 0) kind[q[j]] = UC_PEER, pr[q[j]] = (int16_t)r;
    }
}

/* Frames from a pod (a representor port): local switching, or encap to peers. */
static void from_pod(worker *w, uint16_t port, vfp_pkt **pk, uint16_t n, uint64_t now) {
    const dp_cfg *c = w->cfg;
    const cfg_att *at = &c->att[port];
    const cfg_vni *v = &c->vnis[at->vni_idx];
    vfp_dp_vni_stats *vs = &w->st->vnis[v->slot];
    vfp_pkt *enc[VFP_MAX_BURST * 2];
    int16_t encp[VFP_MAX_BURST * 2];
    uint16_t ne = 0;
    vfp_pkt *drp[VFP_MAX_BURST]; /* dropped, given back after the loop */
    uint16_t drr[VFP_MAX_BURST], nd = 0;
    /* Counters are summed over the burst and stored once at the end. */
    uint64_t n_drops = 0, n_local = 0, n_flood = 0, n_trunc = 0, n_spoof = 0, n_hairpin = 0, n_nopeer = 0, n_nodest = 0,
             n_nobuf = 0, n_flimited = 0;
    /* Pass 1: each packet's destination slot (or why it has none), the distinct unicast
     * destinations in dmac. */
    uint16_t dest[VFP_MAX_BURST];
    const uint8_t *dmac[VFP_MAX_BURST];
    uint8_t kind[VFP_MAX_BURST];
    int16_t pr[VFP_MAX_BURST];
    uint16_t lport[VFP_MAX_BURST];
    uint16_t todo[VFP_MAX_BURST];
    uint16_t nu = 0, nt = 0, special = 0;
    uint64_t last = ~0ull; /* not a 48-bit key: matches nothing */
    /* The destination cache holds while the epoch and the learned FDB are those its
     * entries were made with; else every entry goes at once (a new gen). The learned FDB
     * changes only in from_uplink, ageing and sharing, never during this call. */
    const uint32_t lver = w->learned ? vfp_fdb__version(w->learned) : 0;
    if (VFP_UNLIKELY(w->dc_epoch != c->epoch || w->dc_lver != lver)) {
        w->dc_epoch = c->epoch;
        w->dc_lver = lver;
        cache_next_gen(w->dcache, sizeof(dcache_e), &w->dc_gen);
    }
    const uint32_t gen = w->dc_gen;
    const uint64_t pkey = (uint64_t)port << 48;
    /* A pod spreading over more destinations than the cache holds misses every time,
     * and the lookups and fills then cost more than they save: after a burst of mostly
     * misses, the next DCACHE_SKIP bursts resolve without it, and the one after tries
     * it again (and fills it, should the traffic have narrowed meanwhile). */
    const int use_dc = w->dc_skip == 0;
    if (!use_dc) w->dc_skip--;
    uint16_t hits = 0;
    for (uint16_t i = 0; i < n; i++) {
        const vfp_pkt *p = pk[i];
        if (VFP_UNLIKELY(p->len < 14)) {
            dest[i] = PK_TRUNC;
            special++;
            continue;
        }
        const uint8_t *dst = p->data;
        if (c->anti_spoof && memcmp(dst + 6, at->mac, 6)) {
            dest[i] = PK_SPOOF;
            special++;
            continue;
        }
        if (is_group(dst)) {
            dest[i] = PK_GROUP;
            special++;
            continue;
        }
        const uint64_t key = vfp_mac48(dst);
        if (key != last) {
            last = key;
            const dcache_e *e = &w->dcache[dcache_slot(key | pkey)];
            if (use_dc && e->key == (key | pkey) && e->gen == gen) {
                kind[nu] = e->kind;
                pr[nu] = (int16_t)e->val;
                lport[nu] = e->val;
                hits++;
            } else {
                todo[nt++] = nu;
            }
            dmac[nu++] = dst;
        }
        dest[i] = (uint16_t)(nu - 1);
    }
    if (use_dc) {
        w->st->dest_cache_hits += hits;
        w->st->dest_cache_misses += nt;
        if (nu >= 8 && hits * 8 < nu) w->dc_skip = DCACHE_SKIP;
    } else {
        w->st->dest_cache_bypassed += nt;
    }
    if (nt) {
        resolve_dests(w, c, at->vni, port, dmac, todo, nt, kind, pr, lport);
        for (uint16_t t = 0; use_dc && t < nt; t++) {
            const uint16_t u = todo[t];
            const uint64_t k = vfp_mac48(dmac[u]) | pkey;
            dcache_e *e = &w->dcache[dcache_slot(k)];
            e->key = k;
            e->gen = gen;
            e->kind = kind[u];
            e->val = kind[u] == UC_PEER ? (uint16_t)pr[u] : lport[u];
        }
    }
    /* The common burst: one remote destination (a peer pod, the gateway), every frame
     * unicast to it. */
    if (nu == 1 && !special && kind[0] == UC_PEER) {
        encap_group(w, v, pr[0], pk, n, now);
        return;
    }
    for (uint16_t i = 0; i < n; i++) {
        vfp_pkt *p = pk[i];
        const uint16_t d = dest[i];
        if (VFP_UNLIKELY(d == PK_TRUNC)) {
            n_trunc++;
            n_drops++;
            drp[nd] = p, drr[nd++] = VFP_DP_DROP_ENGINE | VFP_R_INNER_TRUNCATED;
            continue;
        }
        if (VFP_UNLIKELY(d == PK_SPOOF)) {
            n_spoof++;
            n_drops++;
            drp[nd] = p, drr[nd++] = VFP_DP_D_SPOOFED;
            continue;
        }
        if (d != PK_GROUP) {
            const uint8_t k = kind[d];
            if (VFP_LIKELY(k == UC_PEER)) {
                enc[ne] = p, encp[ne++] = pr[d];
                if (ne >= VFP_MAX_BURST) encap_to_peers(w, v, enc, encp, ne, now), ne = 0;
                continue;
            }
            if (k == UC_LOCAL) {
                n_local++;
                tx_push(w, lport[d], p);
                continue;
            }
            if (k == UC_HAIRPIN) {
                n_hairpin++;
                n_drops++;
                drp[nd] = p, drr[nd++] = VFP_DP_D_HAIRPIN;
                continue;
            }
            if (k == UC_NO_PEER) {
                n_nopeer++;
                n_drops++;
                drp[nd] = p, drr[nd++] = VFP_DP_D_NO_PEER;
                continue;
            }
        }
        /* Broadcast, multicast, unknown unicast: every other local port of the VNI and
         * every flood peer (head-end replication). The original goes to the last. */
        uint16_t targets = (uint16_t)(v->n_local - 1 + (c->uplink != VFP_DP_NO_PORT ? v->n_flood : 0));
        if (!targets) {
            /* The VNI's only local pod, and no remote VTEP to flood to. */
            n_nodest++;
            n_drops++;
            drp[nd] = p, drr[nd++] = VFP_DP_D_NO_DESTINATION;
            continue;
        }
        if (VFP_UNLIKELY(w->dp->o.flood_pps) && !flood_allowed(w, port, now)) {
            n_flimited++;
            n_drops++;
            drp[nd] = p, drr[nd++] = VFP_DP_D_FLOOD_LIMITED;
            continue;
        }
        uint16_t made = 0;
        for (uint16_t k = 0; k < v->n_local; k++) {
            uint16_t lp = c->local_ports[v->local_off + k];
            if (lp == port) continue;
            vfp_pkt *q = ++made == targets ? p : pool_clone(&w->pool, p);
            if (!q) {
                n_nobuf++;
                continue;
            }
            n_flood++;
            tx_push(w, lp, q);
        }
        if (c->uplink != VFP_DP_NO_PORT)
            for (uint16_t k = 0; k < v->n_flood; k++) {
                vfp_pkt *q = ++made == targets ? p : pool_clone(&w->pool, p);
                if (!q) {
                    n_nobuf++;
                    continue;
                }
                n_flood++;
                enc[ne] = q, encp[ne++] = (int16_t)(c->flood_peers[v->flood_off + k] | ENC_FLOOD);
                if (ne >= VFP_MAX_BURST) encap_to_peers(w, v, enc, encp, ne, now), ne = 0;
            }
    }
    if (ne) encap_to_peers(w, v, enc, encp, ne, now);
    if (VFP_UNLIKELY(nd)) drop_free_list(w, port, drp, drr, nd);
    vs->drops += n_drops;
    vs->local_pkts += n_local;
    vs->flood_pkts += n_flood;
    if (VFP_UNLIKELY(n_trunc | n_spoof | n_hairpin | n_nopeer | n_nobuf | n_nodest | n_flimited)) {
        if (n_flimited) count_port_drop(w, port, VFP_DP_D_FLOOD_LIMITED, n_flimited);
        w->st->engine.drops[VFP_R_INNER_TRUNCATED] += n_trunc;
        w->st->drops[VFP_DP_D_NO_DESTINATION] += n_nodest;
        if (n_spoof) count_port_drop(w, port, VFP_DP_D_SPOOFED, n_spoof);
        if (n_hairpin) count_port_drop(w, port, VFP_DP_D_HAIRPIN, n_hairpin);
        w->st->drops[VFP_DP_D_NO_PEER] += n_nopeer;
        w->st->drops[VFP_DP_D_NO_BUFFER] += n_nobuf;
    }
}

/* What from_uplink's first pass makes of each frame. */
enum { UP_OK = 0, UP_BAD, UP_NO_LOCAL, UP_BAD_SRC };

/* For the drop capture: the frames from_uplink's second pass is about to drop, by its
 * rules (the static-elsewhere one written again here: a change to either changes both),
 * noted before it runs. The pass itself stays as it was: a call on its drop branches,
 * however unlikely, cost every decapsulated frame ~1 ns. */
static VFP_COLD void note_uplink_drops(worker *w, const dp_cfg *c, vfp_pkt *const *vx, const uint8_t *state,
                                       const uint16_t *skey, const uint16_t *u_idx, uint16_t nv) {
    for (uint16_t i = 0; i < nv; i++) {
        const vfp_pkt *p = vx[i];
        if (state[i] == UP_BAD) drop_note(w, c->uplink, p, VFP_DP_DROP_ENGINE | p->reason, DROP_RX);
        else if (state[i] == UP_NO_LOCAL) drop_note(w, c->uplink, p, VFP_DP_D_NO_LOCAL_PORT, DROP_DECAP);
        else if (state[i] == UP_BAD_SRC) drop_note(w, c->uplink, p, VFP_DP_D_BAD_SRC_MAC, DROP_DECAP);
        else if (u_idx[skey[i]] != VFP_FDB_NO_VTEP) {
            vfp_addr from;
            from.family = p->vtep_family;
            memcpy(from.bytes, p->vtep, 16);
            const vfp_addr *sa = vfp_fdb__vtep(c->fdb, u_idx[skey[i]]);
            if (sa && !vfp_addr__eq(sa, &from)) drop_note(w, c->uplink, p, VFP_DP_D_STATIC_ELSEWHERE, DROP_DECAP);
        }
    }
}

/* The VTEP a frame came from that is not a peer, for `status` to name (once a second at
 * most: the time last, with release, so a reader that sees it sees the address). */
static VFP_COLD void note_not_peer(worker *w, const vfp_addr *a, uint64_t now) {
    __atomic_store_n(&w->st->not_peer_family, 0, __ATOMIC_RELAXED);
    memcpy(w->st->not_peer_addr, a->bytes, 16);
    __atomic_store_n(&w->st->not_peer_family, (uint64_t)a->family, __ATOMIC_RELAXED);
    __atomic_store_n(&w->st->not_peer_ns, now, __ATOMIC_RELEASE);
}

/* A source from a peer that is a local pod's MAC on its VNI (dup_local_macs): counted,
 * and the last one kept for `status` to name (its time last, with release, as
 * note_not_peer). The frame goes on as any other: delivered, and learned. */
static VFP_COLD void note_dup_local(worker *w, const uint8_t *mac, uint32_t vni, const vfp_addr *from, uint64_t now) {
    w->st->dup_local_macs++;
    __atomic_store_n(&w->st->dup_local_ns, 0, __ATOMIC_RELAXED);
    uint64_t m = 0;
    memcpy(&m, mac, 6);
    w->st->dup_local_mac = m;
    w->st->dup_local_vni = vni;
    w->st->dup_local_family = from->family;
    memcpy(w->st->dup_local_addr, from->bytes, 16);
    __atomic_store_n(&w->st->dup_local_ns, now, __ATOMIC_RELEASE);
}

/* The outer addresses, UDP header and UDP bytes (as the IP header counts them) of a
 * frame decap dropped after checking its IP header (lengths, the IPv4 checksum) and
 * before its UDP checks: 0 when it is not UDP over IPv4 or IPv6. For the drop branches
 * below, which count a peer's VXLAN that went astray. */
static int outer_udp(const vfp_pkt *p, vfp_addr *src, vfp_addr *dst, const uint8_t **udp, uint32_t *avail) {
    uint32_t l3;
    const uint8_t *ip = p->data;
    const uint16_t type = vfp_eth__type(ip, p->len, &l3);
    ip += l3;
    memset(src, 0, sizeof *src);
    memset(dst, 0, sizeof *dst);
    if (type == 0x0800) {
        const uint32_t hl = 4u * (ip[0] & 0x0f);
        if (ip[9] != 17) return 0;
        *avail = (uint32_t)vfp_rd16(ip + 2) - hl; /* decap: hl ≤ total length, within the frame */
        *udp = ip + hl;
        src->family = dst->family = 4;
        memcpy(src->bytes, ip + 12, 4);
        memcpy(dst->bytes, ip + 16, 4);
    } else if (type == 0x86dd) {
        if (ip[6] != 17) return 0;
        *avail = vfp_rd16(ip + 4); /* decap: within the frame */
        *udp = ip + 40;
        src->family = dst->family = 6;
        memcpy(src->bytes, ip + 8, 16);
        memcpy(dst->bytes, ip + 24, 16);
    } else {
        return 0;
    }
    return 1;
}

/* A frame decap dropped as not_vxlan_port: when it is a VXLAN frame (I flag, room for
 * the header) from a peer, to another UDP port than ours, the peer's settings disagree
 * with ours (Linux's vxlan uses 8472 when made without dstport): counted for the peer
 * with the port, for `status` to name both. Cold: a drop branch. */
static VFP_COLD void note_wrong_port(worker *w, const dp_cfg *c, const vfp_pkt *p, uint64_t now) {
    vfp_addr src, dst;
    const uint8_t *udp;
    uint32_t avail;
    if (!outer_udp(p, &src, &dst, &udp, &avail) || avail < 16) return;
    const uint32_t ulen = vfp_rd16(udp + 4);
    if (ulen < 16 || ulen > avail || !(udp[8] & 0x08)) return;
    const int peer = peer_find(c, &src);
    if (peer < 0) return;
    vfp_dp_peer_stats *ps = &w->st->peers[c->peers[peer].slot];
    ps->wrong_port_pkts++;
    ps->wrong_port = vfp_rd16(udp + 2);
    ps->wrong_port_ns = now;
}

/* A frame decap dropped as not_local (to our MAC, not our VTEP address): one from a
 * peer's VXLAN to our port counts for that peer with the address it was sent to (one of
 * the two nodes has the wrong VTEP address). Cold: a drop branch. */
static VFP_COLD void note_not_local(worker *w, const dp_cfg *c, const vfp_pkt *p, uint64_t now) {
    vfp_addr src, dst;
    const uint8_t *udp;
    uint32_t avail;
    if (!outer_udp(p, &src, &dst, &udp, &avail) || avail < 16) return;
    if (vfp_rd16(udp + 2) != c->decap.dst_port || !(udp[8] & 0x08)) return;
    const int peer = peer_find(c, &src);
    if (peer < 0) return;
    vfp_dp_peer_stats *ps = &w->st->peers[c->peers[peer].slot];
    ps->not_local_pkts++;
    ps->not_local_family = dst.family;
    memcpy(ps->not_local_addr, dst.bytes, 16);
    ps->not_local_ns = now;
}

/* Frames from the underlay: ARP for our VTEP, else decap and switch to local ports. */
static void from_uplink(worker *w, vfp_pkt **pk, uint16_t n, uint64_t now, uint32_t now_s) {
    const dp_cfg *c = w->cfg;
    vfp_pkt *vx[VFP_MAX_BURST];
    uint16_t nv = 0;
    for (uint16_t i = 0; i < n; i++) {
        vfp_pkt *p = pk[i];
        const uint8_t *d = p->data;
        size_t l3 = 14;
        uint16_t et = p->len >= 14 ? (uint16_t)(d[12] << 8 | d[13]) : 0;
        if (et == 0x8100 && p->len >= 18) et = (uint16_t)(d[16] << 8 | d[17]), l3 = 18;
        if (et == 0x0806) uplink_arp(w, p, l3, now);
        else if (et == 0x86dd && p->len >= l3 + 40 && d[l3 + 6] == 58) uplink_nd(w, p, l3, now);
        else if (et == 0x86dd && p->len >= l3 + 40 && d[l3 + 6] == 0) uplink_hbh(w, p, l3, now);
        /* A unicast frame to another host's MAC is not ours, whatever its IP destination
         * (a peer with a stale neighbour entry for our VTEP, a switch flooding unknown
         * unicast): the kernel's IP input drops it (PACKET_OTHERHOST), and so do we,
         * before decap or an echo reply. ARP and ND above see every frame, as the kernel's
         * see broadcasts and their multicast groups: a peer's MAC and a claim on our
         * VTEP's address are worth knowing from any of them. */
        else if (VFP_UNLIKELY(p->len >= 14 && other_host(c, d))) {
            w->st->drops[VFP_DP_D_OTHER_HOST]++;
            drop_free(w, c->uplink, p, VFP_DP_D_OTHER_HOST, DROP_RX);
        }
        /* IPv4: ICMP (an echo to our VTEP, a router's PMTU message) and fragments (put
         * together first, as the kernel's IP input does before its vxlan socket sees
         * them) leave the common path on one test of the header. */
        else if (et == 0x0800 && p->len >= l3 + 20) {
            if (VFP_UNLIKELY(d[l3 + 9] == 1 || ((d[l3 + 6] & 0x3f) | d[l3 + 7]))) {
                if ((p = uplink_ip4_other(w, p, l3, now))) vx[nv++] = p;
            } else {
                vx[nv++] = p;
            }
        }
        else if (VFP_UNLIKELY(et == 0x86dd && p->len >= l3 + 48 && d[l3 + 6] == 44)) {
            if ((p = uplink_frag6(w, p, l3, now))) vx[nv++] = p;
        }
        else vx[nv++] = p;
    }
    if (!nv) return;
    vfp_decap_ctx dc = c->decap;
    /* The engine only decapsulates here: what is learned is decided below, per frame,
     * from what the engine alone cannot know (static entries, peers, local ports). */
    dc.learn_fdb = NULL;
    dc.now = now_s;
    vfp_vxlan__decap_burst(&dc, vx, nv, &w->st->engine);
    /* What to learn, copied out of the frames (a frame may be sent, and its buffer
     * reused, before the burst's learning is done). */
    vfp_fdb *lf = c->learn ? w->learned : NULL;
    uint32_t l_vni[VFP_MAX_BURST];
    uint8_t l_macb[VFP_MAX_BURST][6], l_vtepb[VFP_MAX_BURST][16], l_fam[VFP_MAX_BURST];
    const uint8_t *l_mac[VFP_MAX_BURST], *l_vtep[VFP_MAX_BURST];
    uint16_t l_u[VFP_MAX_BURST]; /* each one's distinct source (its cache key: u_key) */
    int16_t l_peer[VFP_MAX_BURST];
    uint16_t nl = 0;
    /* A frame with the source and VTEP of the last one queued to learn, or whose source
     * the cache says was learned from that peer this second with the learned FDB
     * unchanged since, is a refresh that would change nothing: counted as the FDB would
     * count it, not queued. A burst of one flow learns once, a source once a second. */
    uint16_t l_last_key = NONE16;
    uint64_t l_repeats = 0;
    const uint32_t lver = lf ? vfp_fdb__version(lf) : 0;
    uint32_t l_seq = 0; /* rx_seq (below) at the last frame that reached learning */
    /* Pass 1: what each frame is (dropped, and why, or its VNI), and the burst's
     * distinct inner sources (consecutive repeats folded), whose static entries are then
     * looked up together: one source at a time, each waited for its buckets in turn, a
     * memory round trip per frame on a static FDB bigger than the caches. */
    uint8_t state[VFP_MAX_BURST];
    const cfg_vni *vof[VFP_MAX_BURST];
    uint16_t skey[VFP_MAX_BURST];
    uint16_t u_idx[VFP_MAX_BURST]; /* per distinct source: the static entry's VTEP, or none */
    uint64_t u_key[VFP_MAX_BURST]; /* and its source cache key */
    uint16_t nu = 0;
    /* The distinct sources the source cache did not have, looked up together. */
    uint32_t t_vni[VFP_MAX_BURST];
    const uint8_t *t_src[VFP_MAX_BURST];
    uint16_t t_u[VFP_MAX_BURST], t_idx[VFP_MAX_BURST];
    uint16_t nt = 0, hits = 0, misses = 0;
    /* Only a config with static entries has anything to check, and one that learns
     * anything to learn: with neither, no cache. */
    const int check = c->fdb_vteps != 0;
    const int cached = check || lf;
    if (cached && VFP_UNLIKELY(w->sc_epoch != c->epoch)) {
        w->sc_epoch = c->epoch;
        cache_next_gen(w->scache, sizeof(scache_e), &w->sc_gen);
    }
    const uint32_t sgen = w->sc_gen;
    const int use_sc = cached && w->sc_skip == 0;
    if (cached && !use_sc) w->sc_skip--;
    uint32_t last_vni = UINT32_MAX, last_src_vni = UINT32_MAX;
    const cfg_vni *last_v = NULL;
    uint64_t last_src = ~0ull;
    for (uint16_t i = 0; i < nv; i++) {
        const vfp_pkt *p = vx[i];
        if (p->reason != VFP_OK) {
            state[i] = UP_BAD;
            continue;
        }
        if (p->vni != last_vni) {
            last_vni = p->vni;
            last_v = vni_find(c, p->vni);
        }
        const cfg_vni *v = last_v;
        vof[i] = v;
        if (!v || !v->n_local) {
            state[i] = UP_NO_LOCAL;
            continue;
        }
        /* A group or all-zero source is no station's address: a bridge never forwards
         * it (the kernel's vxlan and bridge drop it too). */
        const uint8_t *src = p->data + 6;
        if (VFP_UNLIKELY(!vfp_mac__learnable(src))) {
            state[i] = UP_BAD_SRC;
            continue;
        }
        state[i] = UP_OK;
        const uint64_t k = vfp_mac48(src);
        if (k != last_src || p->vni != last_src_vni) {
            last_src = k;
            last_src_vni = p->vni;
            u_idx[nu] = VFP_FDB_NO_VTEP;
            const uint64_t key = k | (uint64_t)v->slot << 48;
            u_key[nu] = key;
            if (use_sc) {
                scache_e *e = &w->scache[dcache_slot(key)];
                if (e->key == key && e->gen == sgen) {
                    u_idx[nu] = e->sidx;
                    hits++;
                } else if (check) { /* cached once its answer is known, below */
                    t_vni[nt] = p->vni;
                    t_src[nt] = src;
                    t_u[nt++] = nu;
                } else { /* no static entries: the answer is none */
                    *e = (scache_e){ .key = key, .gen = sgen, .sidx = VFP_FDB_NO_VTEP, .lpeer = -1 };
                    misses++;
                }
            } else if (check) { /* bypassed: every distinct source to the lookup, in order */
                t_vni[nt] = p->vni;
                t_src[nt++] = src;
            }
            nu++;
        }
        skey[i] = (uint16_t)(nu - 1);
    }
    if (use_sc) {
        w->st->src_cache_hits += hits;
        w->st->src_cache_misses += nt + misses;
        if (nu >= 8 && hits * 8 < nu) w->sc_skip = DCACHE_SKIP;
        if (nt) {
            vfp_fdb__lookup_bulk(c->fdb, t_vni, t_src, nt, t_idx);
            for (uint16_t t = 0; t < nt; t++) {
                const uint64_t key = u_key[t_u[t]];
                u_idx[t_u[t]] = t_idx[t];
                w->scache[dcache_slot(key)] = (scache_e){ .key = key, .gen = sgen, .sidx = t_idx[t], .lpeer = -1 };
            }
        }
    } else if (cached) {
        w->st->src_cache_bypassed += nu;
        if (nt) vfp_fdb__lookup_bulk(c->fdb, t_vni, t_src, nt, u_idx); /* nt == nu: in place */
    }
    if (VFP_UNLIKELY(drops_armed(w))) note_uplink_drops(w, c, vx, state, skey, u_idx, nv);
    /* Pass 2: drop, check, learn, deliver. Consecutive frames to the same pod share its
     * port lookup. */
    uint64_t last_dst = ~0ull;
    uint32_t last_dst_vni = UINT32_MAX;
    uint16_t last_lp = NONE16;
    /* The outer source of the last frame (compared as two words: an IPv4 VTEP's 4 bytes
     * in the first; kept as an address for the cold checks), its peer (index, counters;
     * learning asks it too), how many sources came so far (learning's "same source"),
     * and what came from it since, added to the counters when the source changes and
     * after the loop. */
    uint64_t rx_a = 0, rx_b = 0;
    uint8_t rx_fam = 0;
    vfp_addr rx_from = {0, {0}};
    int rx_peer = -1;
    uint32_t rx_seq = 0;
    vfp_dp_peer_stats *rx_ps = NULL;
    uint64_t rx_n = 0, rx_bytes = 0;
    for (uint16_t i = 0; i < nv; i++) {
        vfp_pkt *p = vx[i];
        if (state[i] == UP_BAD) {
            if (VFP_UNLIKELY(p->reason == VFP_R_NOT_VXLAN_PORT)) note_wrong_port(w, c, p, now);
            else if (VFP_UNLIKELY(p->reason == VFP_R_NOT_LOCAL)) note_not_local(w, c, p, now);
            vfp_pkt__free_burst(&p, 1);
            continue;
        }
        const cfg_vni *v = vof[i];
        if (state[i] == UP_NO_LOCAL) {
            w->st->drops[VFP_DP_D_NO_LOCAL_PORT]++;
            if (v) w->st->vnis[v->slot].drops++;
            vfp_pkt__free_burst(&p, 1);
            continue;
        }
        vfp_dp_vni_stats *vs = &w->st->vnis[v->slot];
        if (state[i] == UP_BAD_SRC) {
            w->st->drops[VFP_DP_D_BAD_SRC_MAC]++;
            vs->drops++;
            vfp_pkt__free_burst(&p, 1);
            continue;
        }
        const uint8_t *src = p->data + 6;
        /* Per peer: what came from it, and when (a peer gone quiet shows in status). Its
         * peer is looked up when the outer source changes; the time is the burst's. */
        uint64_t va, vb = 0;
        if (p->vtep_family == 4) {
            uint32_t v4;
            memcpy(&v4, p->vtep, 4);
            va = v4;
        } else {
            memcpy(&va, p->vtep, 8);
            memcpy(&vb, p->vtep + 8, 8);
        }
        if (VFP_UNLIKELY(va != rx_a || vb != rx_b || p->vtep_family != rx_fam)) {
            if (rx_ps) rx_ps->decap_pkts += rx_n, rx_ps->decap_bytes += rx_bytes;
            rx_n = rx_bytes = 0;
            rx_a = va, rx_b = vb, rx_fam = p->vtep_family;
            rx_from.family = p->vtep_family;
            memcpy(rx_from.bytes, p->vtep, 16);
            rx_peer = peer_find(c, &rx_from);
            rx_seq++;
            rx_ps = rx_peer >= 0 ? &w->st->peers[c->peers[rx_peer].slot] : NULL;
            if (rx_ps) rx_ps->rx_ns = now;
        }
        rx_n++;
        rx_bytes += p->len;
        const uint16_t sidx = u_idx[skey[i]];
        if (sidx != VFP_FDB_NO_VTEP) {
            /* A static entry puts this MAC behind another VTEP: the frame is not
             * believed, and nothing is learned (the kernel: "don't migrate static
             * entries, drop packets"). note_uplink_drops has this rule too. */
            const vfp_addr *sa = vfp_fdb__vtep(c->fdb, sidx);
            if (sa && !vfp_addr__eq(sa, &rx_from)) {
                w->st->drops[VFP_DP_D_STATIC_ELSEWHERE]++;
                vs->drops++;
                vfp_pkt__free_burst(&p, 1);
                continue;
            }
        } else if (lf) {
            /* Learned only from a peer: an entry for any other VTEP could not be sent
             * to, and one stray packet would cut the MAC off until it aged. */
            /* The same source as the last frame that got here: no other came between
             * (one that came and went between counts as a change: learned again, a
             * no-op). Its peer is rx_peer, found when the source changed. */
            const int same_from = rx_seq == l_seq;
            l_seq = rx_seq;
            const int last_peer = rx_peer;
            const uint16_t u = skey[i];
            scache_e *e = use_sc ? &w->scache[dcache_slot(u_key[u])] : NULL;
            if (e && (e->key != u_key[u] || e->gen != sgen)) e = NULL;
            if (last_peer >= 0 && same_from && u == l_last_key) {
                l_repeats++;
            } else if (last_peer >= 0 && e && e->lpeer == last_peer && e->lsec == now_s && e->lver == lver) {
                l_repeats++;
                l_last_key = u;
            } else if (last_peer >= 0) {
                /* What the cache says of this source no longer holds once this is
                 * learned (it may move it): not for the rest of the burst either. */
                if (e) e->lpeer = -1;
                l_last_key = u;
                l_u[nl] = u;
                l_peer[nl] = (int16_t)last_peer;
                l_vni[nl] = p->vni;
                memcpy(l_macb[nl], src, 6);
                memcpy(l_vtepb[nl], p->vtep, 16);
                l_fam[nl] = p->vtep_family;
                l_mac[nl] = l_macb[nl];
                l_vtep[nl] = l_vtepb[nl];
                nl++;
            } else {
                w->st->learn_not_peer++;
                if (VFP_UNLIKELY(w->st->not_peer_ns + 1000000000ull <= now)) note_not_peer(w, &rx_from, now);
            }
        }
        vs->decap_pkts++;
        vs->decap_bytes += p->len;
        const uint8_t *dst = p->data;
        uint16_t lp = NONE16;
        if (!is_group(dst)) {
            const uint64_t dk = vfp_mac48(dst);
            if (dk != last_dst || p->vni != last_dst_vni) {
                last_dst = dk;
                last_dst_vni = p->vni;
                last_lp = mac_find(c, p->vni, dst);
            }
            lp = last_lp;
        }
        if (lp != NONE16) {
            tx_push(w, lp, p);
            continue;
        }
        for (uint16_t k = 0; k < v->n_local; k++) {
            vfp_pkt *q = k + 1 == v->n_local ? p : pool_clone(&w->pool, p);
            if (!q) {
                w->st->drops[VFP_DP_D_NO_BUFFER]++;
                continue;
            }
            vs->flood_pkts++; /* every frame flooding sends, as from_pod counts them */
            tx_push(w, c->local_ports[v->local_off + k], q);
        }
    }
    if (rx_ps) rx_ps->decap_pkts += rx_n, rx_ps->decap_bytes += rx_bytes;
    /* Each one now in the learned FDB at its peer, stamped this second (unless one could
     * not be learned: a full table, …), so until the FDB changes or the second ends,
     * learning it again from that peer is a no-op. */
    if (nl && vfp_fdb__learn_bulk(lf, l_vni, l_mac, l_fam, l_vtep, nl, now_s, &w->st->engine) == nl && use_sc) {
        const uint32_t v = vfp_fdb__version(lf);
        for (uint16_t j = 0; j < nl; j++) {
            const uint64_t key = u_key[l_u[j]];
            scache_e *e = &w->scache[dcache_slot(key)];
            if (e->key != key || e->gen != sgen) continue; /* evicted by another of the burst */
            e->lpeer = l_peer[j];
            e->lsec = now_s;
            e->lver = v;
        }
    }
    w->st->engine.learn_refresh += l_repeats;
}

/* ------------------------------------------------ learning shared between workers */

/* Each worker learns into an FDB of its own: no lock on the packet path. What one
 * learns (a new entry, a move, and once a second an active entry's refresh) goes to
 * every other worker through a single-producer, single-consumer ring per (from, to)
 * pair, applied at the top of the receiver's next loop. Without it a flow whose decap
 * lands on one worker's queue and whose replies leave through another's is unknown to
 * the second (flooded, or dropped where the VNI has no flood list), and a copy there
 * would age out. A full ring drops the event, counted; the next refresh repeats it. */
#define LRING_SIZE 1024u

typedef struct learn_ev {
    uint32_t vni;
    uint8_t mac[6];
    uint8_t family;
    uint8_t vtep[16];
} learn_ev;

typedef struct lring {
    _Atomic uint32_t head; /* the producer's */
    uint8_t pad0[VFP_CACHE_LINE - sizeof(uint32_t)];
    _Atomic uint32_t tail; /* the consumer's */
    uint8_t pad1[VFP_CACHE_LINE - sizeof(uint32_t)];
    learn_ev ev[LRING_SIZE];
} VFP_ALIGNED(VFP_CACHE_LINE) lring;

static inline lring *lring_of(struct vfp_dp *dp, uint16_t from, uint16_t to);

/* The learned FDB's hook (vfp_fdb__set_learn_hook): runs on the learning worker, for a
 * new entry, a move, or a refresh that advances the stamp (once a second an entry at
 * most): a source that is a local pod's MAC on its VNI is noted there (two hosts with
 * one MAC), at that rate and off the per-frame path; and with other workers, what was
 * learned is sent to them. */
static void on_learn(void *arg, uint32_t vni, const uint8_t mac[6], const vfp_addr *vtep, int result) {
    worker *w = (worker *)arg;
    (void)result;
    if (VFP_UNLIKELY(mac_find(w->cfg, vni, mac) != NONE16)) note_dup_local(w, mac, vni, vtep, now_ns());
    if (!w->dp->lrings) return;
    for (uint16_t to = 0; to < w->dp->n_workers; to++) {
        if (to == w->idx) continue;
        lring *r = lring_of(w->dp, w->idx, to);
        const uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        if (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= LRING_SIZE) {
            w->st->learn_share_lost++;
            continue;
        }
        learn_ev *e = &r->ev[h & (LRING_SIZE - 1)];
        e->vni = vni;
        memcpy(e->mac, mac, 6);
        e->family = vtep->family;
        memcpy(e->vtep, vtep->bytes, 16);
        /* Release: the event's bytes are visible before the consumer sees head move. */
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
        w->st->learn_shared++;
    }
}

/* Applies what the other workers learned to this worker's FDB (vfp_fdb__learn, which
 * fires no hook: nothing is sent back). */
static void apply_shared(worker *w, uint32_t now_s) {
    uint64_t n = 0;
    for (uint16_t from = 0; from < w->dp->n_workers; from++) {
        if (from == w->idx) continue;
        lring *r = lring_of(w->dp, from, w->idx);
        uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        const uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t == h) continue;
        for (; t != h; t++) {
            const learn_ev *e = &r->ev[t & (LRING_SIZE - 1)];
            vfp_addr a;
            a.family = e->family;
            memcpy(a.bytes, e->vtep, 16);
            (void)vfp_fdb__learn(w->learned, e->vni, e->mac, &a, now_s);
            n++;
        }
        /* Release: the slots are read before the producer may reuse them. */
        atomic_store_explicit(&r->tail, t, memory_order_release);
    }
    w->st->learn_synced += n;
}

/* ------------------------------------------------ frames for another worker's queue */

/* Worker w sends on queue w of each port. A port with fewer queues than workers (a
 * switchdev representor often has one) has no queue for workers ≥ n_queues: their frames
 * for it go to the worker that owns queue w % n_queues, through a single-producer,
 * single-consumer ring of frame-sized slots per (from, to) pair, made when such a port
 * is added. The producer copies each frame into a slot (and frees its own original);
 * the owner sends it from there on its own queue, and a slot is released when the
 * owner's port is done with it (in any order; the ring's tail follows the released
 * run). A frame published in one configuration epoch and taken in another is dropped:
 * its port slot may name another port by then. */
#define HO_SLOTS 128u
#define HO_HEADROOM 256u

typedef struct ho_hdr {
    uint64_t epoch;
    uint16_t port;
    uint8_t tx_ol, l2_len, l3_len;
    uint32_t len;
} ho_hdr;

typedef struct hring {
    _Atomic uint32_t head; /* the producer's */
    uint8_t pad0[VFP_CACHE_LINE - sizeof(uint32_t)];
    _Atomic uint32_t tail; /* the consumer's: slots before it are free again */
    uint8_t pad1[VFP_CACHE_LINE - sizeof(uint32_t)];
    vfp_port port;         /* owns the consumer's descriptors: free_burst releases slots */
    uint32_t cons;         /* consumer: next slot to take */
    uint32_t slot_size;
    uint8_t *slots;        /* HO_SLOTS × slot_size: header, headroom, frame */
    uint8_t released[HO_SLOTS];
    vfp_pkt descs[HO_SLOTS];
} hring;

static inline ho_hdr *ho_slot(hring *r, uint32_t i) { return (ho_hdr *)(r->slots + (size_t)(i % HO_SLOTS) * r->slot_size); }

static void ho_free_burst(vfp_port *p, vfp_pkt **pkts, uint16_t n) {
    hring *r = (hring *)((uint8_t *)p - offsetof(hring, port));
    for (uint16_t i = 0; i < n; i++) r->released[pkts[i] - r->descs] = 1;
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (t != r->cons && r->released[t % HO_SLOTS]) r->released[t++ % HO_SLOTS] = 0;
    /* Release: the slots' bytes are read before the producer may write them again. */
    atomic_store_explicit(&r->tail, t, memory_order_release);
}
static uint16_t ho_none(vfp_port *p, uint16_t q, vfp_pkt **k, uint16_t n) { (void)p, (void)q, (void)k, (void)n; return 0; }
static void ho_close(vfp_port *p) { (void)p; }
static const struct vfp_port_ops ho_ops = { .name = "handoff", .rx_burst = ho_none, .tx_burst = ho_none,
                                            .free_burst = ho_free_burst, .close = ho_close };

/* Copies pk[0..n) for `port` into the ring to worker `to`; returns how many it took (a
 * prefix: a full ring, or a frame too big for a slot, ends the run). Wakes `to` if it
 * sleeps. */
static uint16_t handoff(worker *w, uint16_t port, uint16_t to, vfp_pkt **pk, uint16_t n) {
    hring *r = atomic_load_explicit(&w->dp->hrings[w->idx][to], memory_order_acquire);
    if (!r) return 0;
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    const uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    const uint32_t room = r->slot_size - (uint32_t)sizeof(ho_hdr) - HO_HEADROOM;
    uint16_t k = 0;
    for (; k < n && h - t < HO_SLOTS && pk[k]->len <= room; k++, h++) {
        ho_hdr *s = ho_slot(r, h);
        s->epoch = w->cfg->epoch;
        s->port = port;
        s->tx_ol = pk[k]->tx_ol;
        s->l2_len = pk[k]->l2_len;
        s->l3_len = pk[k]->l3_len;
        s->len = pk[k]->len;
        memcpy((uint8_t *)(s + 1) + HO_HEADROOM, pk[k]->data, pk[k]->len);
    }
    if (k) {
        /* seq_cst pairs with the owner's sleeping flag: either it sees the new head
         * before it sleeps, or this sees it asleep and wakes it. */
        atomic_store_explicit(&r->head, h, memory_order_seq_cst);
        worker *o = &w->dp->w[to];
        if (atomic_load_explicit(&o->sleeping, memory_order_seq_cst)) wake(o);
    }
    return k;
}

/* A frame handed over in another epoch: counted, noted, given back to its ring. */
static VFP_COLD void drop_stale_handoff(worker *w, vfp_port *ring, vfp_pkt *d) {
    count_port_drop(w, d->port, VFP_DP_D_HANDOFF_STALE, 1);
    drop_note(w, d->port, d, VFP_DP_D_HANDOFF_STALE, DROP_TX);
    ho_free_burst(ring, &d, 1);
}

/* The owner's side: queues what other workers handed over on this worker's tx queues
 * (sent with the next flush). Returns how many frames it took. */
static uint32_t take_handoffs(worker *w) {
    uint32_t got = 0;
    for (uint16_t from = 0; from < w->dp->n_workers; from++) {
        hring *r = atomic_load_explicit(&w->dp->hrings[from][w->idx], memory_order_acquire);
        if (!r) continue;
        const uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
        while (r->cons != h) {
            const uint32_t i = r->cons++;
            ho_hdr *s = ho_slot(r, i);
            vfp_pkt *d = &r->descs[i % HO_SLOTS];
            d->data = (uint8_t *)(s + 1) + HO_HEADROOM;
            d->len = s->len;
            d->headroom = HO_HEADROOM;
            d->reason = 0;
            d->port = s->port;
            d->tx_ol = s->tx_ol;
            d->l2_len = s->l2_len;
            d->l3_len = s->l3_len;
            /* The port may have changed since (another epoch): drop rather than guess. */
            if (s->epoch != w->cfg->epoch || !w->cfg->ports[s->port]) {
                drop_stale_handoff(w, &r->port, d);
                continue;
            }
            tx_push(w, s->port, d);
            got++;
        }
    }
    return got;
}

typedef struct dump_ctx { vfp_fdb_entry_info *out; uint32_t n, cap; } dump_ctx;

static int dump_one(const vfp_fdb_entry_info *e, void *a) {
    dump_ctx *dc = a;
    if (dc->n >= dc->cap) return 1;
    dc->out[dc->n++] = *e;
    return 0;
}

static void *worker_main(void *arg) {
    worker *w = (worker *)arg;
    vfp_dp *dp = w->dp;
    if (dp->o.thread_init) dp->o.thread_init();
    /* A name per worker (15 chars at most) tells them apart in top -H and
     * /proc/PID/task/TID/comm; DPDK's registration of a non-EAL thread keeps it. */
    char name[16];
    snprintf(name, sizeof name, "vfp-w%u", (unsigned)w->idx);
    pthread_setname_np(pthread_self(), name);
    /* The CPU only of a pinned worker: an unpinned one moves, and the CPU it started on
     * would read as a pin (-1: not pinned). */
    w->st->cpu = w->cpu >= 0 ? sched_getcpu() : -1;
    vfp_pkt *pk[VFP_MAX_BURST];
    uint32_t idle = 0;
    uint64_t drain_until = 0, now = 0;
    uint32_t since_clock = 0, busy = 0;
    for (;;) {
        int stopping = atomic_load_explicit(&dp->stop, memory_order_acquire);
        /* The clock read is a large part of a busy pass; while bursts keep coming, every
         * 16th pass reads it (a pass takes microseconds, so `now` lags by well under a
         * millisecond: learned stamps are in seconds, aging and ARP retries in 100 ms+). */
        if (!busy || stopping || ++since_clock >= 16) now = now_ns(), since_clock = 0;
        if (stopping && !drain_until) drain_until = now + (uint64_t)stopping * 1000000ull;
        /* Acquire pairs with the control thread's release store of a fully built cfg. */
        const dp_cfg *c = atomic_load_explicit(&dp->cur, memory_order_acquire);
        if (c != w->cfg && c) adopt(w, c);
        vfp_fdb_entry_info *dump = atomic_load_explicit(&w->dump_buf, memory_order_acquire);
        /* Claim the request first, so a control thread that gave up (and withdrew it)
         * never has its buffer written after it returned. */
        if (dump && atomic_compare_exchange_strong(&w->dump_buf, &dump, NULL)) {
            dump_ctx dc = { dump, 0, w->dump_cap };
            if (w->dump_by_key) dc.n = w->learned && vfp_fdb__get(w->learned, w->dump_vni, w->dump_mac, dump) == 0;
            else if (w->learned) vfp_fdb__walk(w->learned, dump_one, &dc);
            atomic_store_explicit(&w->dump_n, (int32_t)dc.n, memory_order_release);
        }
        uint32_t got = 0;
        if (c) {
            w->st->loops++;
            uint32_t now_s = (uint32_t)(now / 1000000000ull);
            if (dp->lrings && w->learned) apply_shared(w, now_s);
            if (dp->n_workers > 1) got += take_handoffs(w);
            for (uint16_t i = 0; i < c->n_rxq[w->idx]; i++) {
                rxq r = c->rxqs[w->idx][i];
                vfp_port *port = c->ports[r.port];
                uint16_t n = vfp_port__rx_burst(port, r.queue, pk, dp->o.burst);
                if (!n) continue;
                got += n;
                vfp_dp_port_stats *ps = &w->st->ports[r.port];
                uint64_t bytes = 0;
                for (uint16_t k = 0; k < n; k++) bytes += pk[k]->len, pk[k]->port = r.port;
                ps->rx_pkts += n;
                ps->rx_bytes += bytes;
                if (r.port == c->uplink) from_uplink(w, pk, n, now, now_s);
                else if (c->att[r.port].active) from_pod(w, r.port, pk, n, now);
                else {
                    drop_unattached(w, r.port, pk, n);
                }
            }
            tx_flush_all(w);
            /* A peer MAC that moved is relearned by the worker its replies reach: the
             * others take it from there, once a second. */
            if (dp->n_workers > 1 && now >= w->next_neigh_ns) {
                for (uint32_t i = 0; i < c->n_peers; i++) (void)neigh_from_others(w, (int)i);
                pmtu_from_others(w, now);
                w->next_neigh_ns = now + 1000000000ull;
            }
            /* Learned entries age also while learning is off: they are still used. */
            if (now >= w->next_age_ns) pmtu_expire(w, now), reasm_expire(w, now);
            if (w->learned && now >= w->next_age_ns) {
                w->st->aged += vfp_fdb__age(w->learned, now_s, c->age_seconds, &w->age_cursor, 4096);
                w->st->learned_entries = vfp_fdb__count(w->learned);
                w->next_age_ns = now + 100000000ull;
            }
            /* Unsolicited MLD reports: twice a second apart (RFC 3810's robustness), then
             * every minute, well inside a snooping switch's listener timeout (260 s by
             * default), also where no querier asks. */
            if (mld_speaker(w) && now >= w->next_mld_ns) {
                uint64_t sent = w->st->mld_reports;
                mld_report(w, sent ? 2 : 4, now);
                w->next_mld_ns = now + (sent < 1 ? 1000000000ull : 60000000000ull);
            }
            if (VFP_UNLIKELY(atomic_load_explicit(&dp->mld_due_ns, memory_order_relaxed))) mld_answer(w, now);
            if (VFP_UNLIKELY(w->announces_left) && now >= w->next_announce_ns) {
                announce(w);
                w->announces_left--;
                w->next_announce_ns = now + 1000000000ull;
            }
        }
        /* Draining ends at the deadline even if packets keep coming (a generator never
         * runs dry), or earlier once the ports are quiet. */
        if (stopping && (now >= drain_until || !got)) break;
        busy = got != 0;
        if (got) {
            w->st->busy_loops++;
            idle = 0;
            w->idle_poll_ms = 0;
            continue;
        }
        /* Each of this worker's own queues, never another's: a queue's rings and free
         * frames are its one worker's (not atomic). Queue 0 here, as it was, let a second
         * worker reap and refill the first's AF_XDP queue under it: its counts went wrong
         * and the data plane crashed (SIGSEGV in afxdp_tx) under TCP load. */
        if (c)
            for (uint16_t i = 0; i < c->n_rxq[w->idx]; i++)
                vfp_port__flush(c->ports[c->rxqs[w->idx][i].port], c->rxqs[w->idx][i].queue);
        if (dp->o.idle_spins && ++idle >= dp->o.idle_spins && !stopping) {
            struct pollfd fds[VFP_DP_MAX_PORTS + 1];
            uint16_t fport[VFP_DP_MAX_PORTS + 1];
            nfds_t nf = 0;
            fds[nf++] = (struct pollfd){ w->wake_fd, POLLIN, 0 };
            int all_fds = 1;
            if (c)
                for (uint16_t i = 0; i < c->n_rxq[w->idx] && nf < VFP_DP_MAX_PORTS + 1; i++) {
                    rxq r = c->rxqs[w->idx][i];
                    int fd = vfp_port__rx_fd(c->ports[r.port], r.queue);
                    if (fd < 0) all_fds = 0;
                    else fport[nf] = r.port, fds[nf++] = (struct pollfd){ fd, POLLIN, 0 };
                }
            /* A port without an fd (DPDK) must be polled: sleep briefly instead. Frames
             * other workers hand over wake it (seq_cst: see handoff()). */
            const int base = (int)(dp->o.idle_sleep_us / 1000 ? dp->o.idle_sleep_us / 1000 : 1);
            if (w->idle_poll_ms < base) w->idle_poll_ms = base;
            int timeout = all_fds ? w->idle_poll_ms : 0;
            atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
            int pending = 0;
            for (uint16_t f = 0; f < dp->n_workers && !pending; f++) {
                hring *r = atomic_load_explicit(&dp->hrings[f][w->idx], memory_order_acquire);
                pending = r && atomic_load_explicit(&r->head, memory_order_seq_cst) != r->cons;
            }
            if (pending) {
                /* go round again */
            } else if (all_fds) {
                if (poll(fds, nf, timeout) == 0 && w->idle_poll_ms < IDLE_POLL_MAX) w->idle_poll_ms *= 2;
            } else {
                struct timespec ts = { 0, 50000 };
                nanosleep(&ts, NULL);
            }
            atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
            if (fds[0].revents & POLLIN) {
                uint64_t v;
                (void)!read(w->wake_fd, &v, sizeof v);
            }
            /* A socket error (a netdev going down, or deleted, sets ENETDOWN on the
             * sockets bound to it) stays pending until read, and poll returns at once
             * while it does: read it, count it, sleep properly next time. */
            for (nfds_t k = 1; all_fds && !pending && k < nf; k++) {
                if (!(fds[k].revents & POLLERR)) continue;
                int e = 0;
                socklen_t el = sizeof e;
                (void)getsockopt(fds[k].fd, SOL_SOCKET, SO_ERROR, &e, &el);
                w->st->ports[fport[k]].errors++;
            }
            w->st->idle_sleeps++;
        }
    }
    /* Anything still queued goes out before the ports close. */
    tx_flush_all(w);
    if (dp->o.thread_fini) dp->o.thread_fini();
    atomic_store_explicit(&w->exited, 1, memory_order_release);
    return NULL;
}


/* ------------------------------------------------------------ control */

static void *xalloc(vfp_dp *dp, size_t size) { return dp->a.alloc(dp->a.ctx, size, VFP_CACHE_LINE); }

static inline lring *lring_of(vfp_dp *dp, uint16_t from, uint16_t to) { return &dp->lrings[from * dp->n_workers + to]; }
static void xfree(vfp_dp *dp, void *p, size_t size) { if (p) dp->a.free(dp->a.ctx, p, size); }

/* A static FDB and the entries it was built from. Epochs whose spec lists the same
 * entries in the same order share it: a commit that changes only attachments, peers or
 * flood lists skips the build (~100 ns an entry: 10–30 ms at 100k entries). Its table is
 * never written after the build, so sharing needs no more than the count of epochs
 * holding it, which only the control thread (under dp->ctl) and destroy touch. */
typedef struct sfdb {
    vfp_fdb *fdb;
    vfp_dp_fdb_spec *spec;
    uint32_t n;
    uint32_t refs;
} sfdb;

static void sfdb_put(vfp_dp *dp, sfdb *sf) {
    if (!sf || --sf->refs) return;
    if (dp->sfdb_last == sf) dp->sfdb_last = NULL;
    vfp_fdb__destroy(sf->fdb);
    xfree(dp, sf->spec, sizeof(vfp_dp_fdb_spec) * sf->n);
    xfree(dp, sf, sizeof *sf);
}

/* Field by field, as the table compares them: padding, and an IPv4 VTEP's unused bytes,
 * mean nothing. */
static int sfdb_same(const sfdb *sf, const vfp_dp_fdb_spec *e, uint32_t n) {
    if (!sf || sf->n != n) return 0;
    for (uint32_t i = 0; i < n; i++) {
        const vfp_dp_fdb_spec *a = &sf->spec[i], *b = &e[i];
        if (a->vni != b->vni || memcmp(a->mac, b->mac, 6) || !vfp_addr__eq(&a->vtep, &b->vtep)) return 0;
    }
    return 1;
}

static void cfg_free(vfp_dp *dp, dp_cfg *c) {
    if (!c) return;
    if (c->fdb_peer) xfree(dp, c->fdb_peer, sizeof(uint16_t) * (c->fdb_vteps + 1));
    sfdb_put(dp, c->sf);
    xfree(dp, c, c->bytes);
}

static void *fdb_alloc_fn(void *ctx, size_t size, size_t align) {
    vfp_dp *dp = ctx;
    return dp->a.alloc(dp->a.ctx, size, align);
}
static void fdb_free_fn(void *ctx, void *p, size_t size) {
    vfp_dp *dp = ctx;
    dp->a.free(dp->a.ctx, p, size);
}

int vfp_dp__create(vfp_dp **out, const vfp_dp_opts *o, const vfp_alloc *a, char *err, size_t errlen) {
    if (!out || !o || !a) return -EINVAL;
    if (o->n_workers < 1 || o->n_workers > VFP_DP_MAX_WORKERS) {
        snprintf(err, errlen, "workers %u is out of range: use 1..%u", o->n_workers, VFP_DP_MAX_WORKERS);
        return -EINVAL;
    }
    vfp_dp *dp = a->alloc(a->ctx, sizeof *dp, VFP_CACHE_LINE);
    if (!dp) return -ENOMEM;
    memset(dp, 0, sizeof *dp);
    dp->a = *a;
    dp->o = *o;
    if (!dp->o.burst || dp->o.burst > VFP_MAX_BURST) dp->o.burst = 32;
    if (!dp->o.idle_sleep_us) dp->o.idle_sleep_us = 1000;
    if (!dp->o.learn_capacity) dp->o.learn_capacity = 65536;
    if (!dp->o.scratch_bufs) dp->o.scratch_bufs = 1024;
    if (!dp->o.neigh_reachable_ms) dp->o.neigh_reachable_ms = 30000;
    if (!dp->o.headroom) dp->o.headroom = 256;
    if (!dp->o.scratch_buf_size) dp->o.scratch_buf_size = 9216 + dp->o.headroom;
    dp->o.cpus = NULL;
    dp->n_workers = o->n_workers;
    pthread_mutex_init(&dp->ctl, NULL);
    pthread_mutex_init(&dp->closers_mu, NULL);
    dp->stats = xalloc(dp, sizeof(vfp_dp_worker_stats) * dp->n_workers);
    dp->w = xalloc(dp, sizeof(worker) * dp->n_workers);
    if (dp->n_workers > 1) dp->lrings = xalloc(dp, sizeof(lring) * dp->n_workers * dp->n_workers);
    int rc = 0;
    if (!dp->stats || !dp->w || (dp->n_workers > 1 && !dp->lrings)) rc = -ENOMEM;
    vfp_alloc fa = { fdb_alloc_fn, fdb_free_fn, dp };
    for (uint16_t i = 0; !rc && i < dp->n_workers; i++) {
        worker *w = &dp->w[i];
        w->dp = dp;
        w->idx = i;
        w->rng = now_ns() ^ ((uint64_t)(i + 1) << 48);
        w->cpu = o->cpus ? o->cpus[i] : -1;
        w->st = &dp->stats[i];
        w->st->cpu = -1;
        w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->wake_fd < 0) rc = -errno;
        if (!rc) rc = vfp_fdb__create(&w->learned, dp->o.learn_capacity, &fa);
        if (!rc && dp->o.learn_per_vni) rc = vfp_fdb__set_vni_limit(w->learned, dp->o.learn_per_vni);
        if (!rc) {
            w->dcache = xalloc(dp, sizeof(dcache_e) * DCACHE_SIZE);
            w->scache = xalloc(dp, sizeof(scache_e) * DCACHE_SIZE);
            if (!w->dcache || !w->scache) {
                rc = -ENOMEM;
            } else {
                memset(w->dcache, 0, sizeof(dcache_e) * DCACHE_SIZE);
                memset(w->scache, 0, sizeof(scache_e) * DCACHE_SIZE);
            }
            /* No epoch: the first burst each way starts gen 1. */
            w->dc_gen = w->sc_gen = 0;
            w->dc_epoch = w->sc_epoch = UINT64_MAX;
        }
        if (!rc) vfp_fdb__set_learn_hook(w->learned, on_learn, w);
        pool *pl = &w->pool;
        pl->port.ops = &pool_ops;
        pl->port.n_queues = 1;
        pl->n = dp->o.scratch_bufs;
        pl->buf_size = (dp->o.scratch_buf_size + 63) & ~63u;
        pl->headroom = dp->o.headroom;
        pl->descs = xalloc(dp, sizeof(vfp_pkt) * pl->n);
        pl->bufs = xalloc(dp, (size_t)pl->buf_size * pl->n);
        pl->stack = xalloc(dp, sizeof(uint32_t) * pl->n);
        if (!rc && (!pl->descs || !pl->bufs || !pl->stack)) rc = -ENOMEM;
        if (!rc)
            for (uint32_t k = 0; k < pl->n; k++) pl->stack[k] = pl->n - 1 - k;
        pl->n_free = rc ? 0 : pl->n;
    }
    for (uint16_t i = 0; !rc && i < dp->n_workers; i++) {
        worker *w = &dp->w[i];
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (w->cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(w->cpu, &set);
            pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        }
        int e = pthread_create(&w->th, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (e) {
            snprintf(err, errlen, "cannot start worker %u on CPU %d: %s (is that CPU online, and in this process's cpuset?)", i, w->cpu,
                     strerror(e));
            rc = -e;
            break;
        }
        w->started = 1;
    }
    if (rc) {
        if (err && !err[0]) snprintf(err, errlen, "cannot create the data plane: %s", strerror(-rc));
        vfp_dp__destroy(dp, 0);
        return rc;
    }
    *out = dp;
    return 0;
}

/* ------------------------------------------------ closing ports in the background */

static void *closer_main(void *v) {
    const struct closer_arg a = *(const struct closer_arg *)v;
    vfp_port__close(a.p);
    atomic_store_explicit(&a.dp->closer_done[a.slot], 1, memory_order_release);
    return NULL;
}

static void *close_main(void *p) {
    vfp_port__close(p);
    return NULL;
}

/* Joins the closers that finished (all of them with `all`). */
static void reap_closers(vfp_dp *dp, int all) {
    pthread_mutex_lock(&dp->closers_mu);
    for (int i = 0; i < VFP_DP_MAX_PORTS; i++)
        if (dp->closer_used[i] && (all || atomic_load_explicit(&dp->closer_done[i], memory_order_acquire))) {
            pthread_join(dp->closer[i], NULL);
            dp->closer_used[i] = 0;
        }
    pthread_mutex_unlock(&dp->closers_mu);
}

/* Closes a port that left the data plane: on a thread of its own when its backend
 * allows (the caller, a CNI DEL say, then waits for none of its grace periods), else
 * here. */
static void close_removed(vfp_dp *dp, vfp_port *p) {
    if (p->ops->close_async) {
        reap_closers(dp, 0);
        pthread_mutex_lock(&dp->closers_mu);
        int slot = -1;
        for (int i = 0; i < VFP_DP_MAX_PORTS && slot < 0; i++)
            if (!dp->closer_used[i]) slot = i;
        if (slot >= 0) {
            dp->closer_arg[slot] = (struct closer_arg){ dp, p, slot };
            atomic_store_explicit(&dp->closer_done[slot], 0, memory_order_relaxed);
            if (!pthread_create(&dp->closer[slot], NULL, closer_main, &dp->closer_arg[slot])) {
                dp->closer_used[slot] = 1;
                pthread_mutex_unlock(&dp->closers_mu);
                return;
            }
        }
        pthread_mutex_unlock(&dp->closers_mu);
    }
    vfp_port__close(p);
}

void vfp_dp__stop(vfp_dp *dp, uint32_t drain_ms) {
    if (!dp || dp->stopped) return;
    dp->stopped = 1;
    atomic_store_explicit(&dp->stop, (int)(drain_ms ? drain_ms : 1), memory_order_release);
    for (uint16_t i = 0; dp->w && i < dp->n_workers; i++) {
        worker *w = &dp->w[i];
        if (w->started) {
            wake(w);
            pthread_join(w->th, NULL);
            w->started = 0;
        }
    }
    reap_closers(dp, 1);
    /* A port's close may wait for grace periods (a packet socket's release waits in
     * synchronize_net, ~10 ms each here; an XSK's too): the ports that allow it close on threads of
     * their own, STOP_BATCH at a time, so that a stop with hundreds of ports waits for a
     * few grace periods, not for hundreds one after another. */
    enum { STOP_BATCH = 64 };
    for (int i = 0; i < VFP_DP_MAX_PORTS;) {
        pthread_t th[STOP_BATCH];
        int n = 0;
        for (; i < VFP_DP_MAX_PORTS && n < STOP_BATCH; i++) {
            vfp_port *p = dp->ports[i];
            if (!p) continue;
            dp->ports[i] = NULL;
            if (!(p->ops->close_async || p->ops->close_parallel) || pthread_create(&th[n], NULL, close_main, p)) vfp_port__close(p);
            else n++;
        }
        for (int k = 0; k < n; k++) pthread_join(th[k], NULL);
    }
}

void vfp_dp__destroy(vfp_dp *dp, uint32_t drain_ms) {
    if (!dp) return;
    vfp_dp__stop(dp, drain_ms);
    for (uint16_t i = 0; dp->w && i < dp->n_workers; i++) {
        worker *w = &dp->w[i];
        if (w->wake_fd > 0) close(w->wake_fd);
        if (w->learned) vfp_fdb__destroy(w->learned);
        xfree(dp, w->dcache, sizeof(dcache_e) * DCACHE_SIZE);
        xfree(dp, w->scache, sizeof(scache_e) * DCACHE_SIZE);
        xfree(dp, w->drops, sizeof(vfp_dp_drop_rec) * VFP_DP_DROP_RING);
        xfree(dp, w->pool.descs, sizeof(vfp_pkt) * w->pool.n);
        xfree(dp, w->pool.bufs, (size_t)w->pool.buf_size * w->pool.n);
        xfree(dp, w->pool.stack, sizeof(uint32_t) * w->pool.n);
    }
    cfg_free(dp, atomic_load(&dp->cur));
    xfree(dp, dp->w, sizeof(worker) * dp->n_workers);
    xfree(dp, dp->lrings, sizeof(lring) * dp->n_workers * dp->n_workers);
    for (uint16_t i = 0; i < VFP_DP_MAX_WORKERS; i++)
        for (uint16_t j = 0; j < VFP_DP_MAX_WORKERS; j++) {
            hring *r = atomic_load_explicit(&dp->hrings[i][j], memory_order_relaxed);
            if (!r) continue;
            xfree(dp, r->slots, (size_t)r->slot_size * HO_SLOTS);
            xfree(dp, r, sizeof *r);
        }
    xfree(dp, dp->stats, sizeof(vfp_dp_worker_stats) * dp->n_workers);
    pthread_mutex_destroy(&dp->ctl);
    pthread_mutex_destroy(&dp->closers_mu);
    vfp_alloc a = dp->a;
    a.free(a.ctx, dp, sizeof *dp);
}

int vfp_dp__port_add(vfp_dp *dp, vfp_port *p, const char *name, uint16_t *slot, char *err, size_t errlen) {
    if (!dp || !p || !slot) return -EINVAL;
    if (p->n_queues < 1) p->n_queues = 1;
    if (dp->stopped) {
        snprintf(err, errlen, "the data plane is stopped");
        return -ESHUTDOWN;
    }
    pthread_mutex_lock(&dp->ctl);
    /* Fewer queues than workers: the workers without a queue of their own hand their
     * frames to one that has (handoff()); the rings are made before the port can appear
     * in a configuration, which publishes them to the workers. */
    for (uint16_t from = p->n_queues; from < dp->n_workers; from++) {
        const uint16_t to = (uint16_t)(from % p->n_queues);
        if (atomic_load_explicit(&dp->hrings[from][to], memory_order_relaxed)) continue;
        hring *r = xalloc(dp, sizeof *r);
        const uint32_t ss = (uint32_t)((sizeof(ho_hdr) + HO_HEADROOM + dp->o.scratch_buf_size + 63) & ~(size_t)63);
        uint8_t *slots = r ? xalloc(dp, (size_t)ss * HO_SLOTS) : NULL;
        if (!r || !slots) {
            xfree(dp, r, sizeof *r);
            pthread_mutex_unlock(&dp->ctl);
            snprintf(err, errlen, "out of memory for the handoff rings of port %s", name ? name : "?");
            return -ENOMEM;
        }
        r->slot_size = ss;
        r->slots = slots;
        r->port.ops = &ho_ops;
        r->port.n_queues = 1;
        for (uint32_t i = 0; i < HO_SLOTS; i++) r->descs[i].owner = &r->port;
        atomic_store_explicit(&dp->hrings[from][to], r, memory_order_release);
    }
    int rc = -ENOSPC;
    for (uint16_t i = 0; i < VFP_DP_MAX_PORTS; i++)
        if (!dp->ports[i]) {
            dp->ports[i] = p;
            dp->removing[i] = 0;
            snprintf(dp->names[i], sizeof dp->names[i], "%s", name ? name : "");
            for (uint16_t k = 0; k < dp->n_workers; k++)
                memset(&dp->stats[k].ports[i], 0, sizeof dp->stats[k].ports[i]);
            *slot = i;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&dp->ctl);
    if (rc) snprintf(err, errlen, "the data plane has no free port slot (%u in use)", VFP_DP_MAX_PORTS);
    return rc;
}

int vfp_dp__port_remove(vfp_dp *dp, uint16_t slot) {
    if (!dp || slot >= VFP_DP_MAX_PORTS) return -EINVAL;
    pthread_mutex_lock(&dp->ctl);
    int rc = dp->ports[slot] && !dp->removing[slot] ? 0 : -ENOENT;
    if (!rc) dp->removing[slot] = 1;
    pthread_mutex_unlock(&dp->ctl);
    return rc;
}

vfp_port *vfp_dp__port(vfp_dp *dp, uint16_t slot) {
    return dp && slot < VFP_DP_MAX_PORTS && !dp->removing[slot] ? dp->ports[slot] : NULL;
}

vfp_dp_worker_stats *vfp_dp__stats(vfp_dp *dp, uint16_t *n_workers) {
    if (n_workers) *n_workers = dp->n_workers;
    return dp->stats;
}

/* A VNI's counter slot: stable for the data plane's life, so counters survive epochs. */
/* Whether every running worker forwards by the published configuration (none is still on
 * an older one, as after a commit that timed out). */
static int workers_current(vfp_dp *dp) {
    for (uint16_t k = 0; k < dp->n_workers; k++)
        if (atomic_load_explicit(&dp->w[k].seen_epoch, memory_order_acquire) != dp->epoch &&
            !atomic_load_explicit(&dp->w[k].exited, memory_order_acquire))
            return 0;
    return 1;
}

/* The counter slot of a VNI: its own if it has one (a VNI keeps its counters while the
 * daemon runs, across detach and re-attach), else a free one. When none is free, a slot
 * whose VNI neither the published configuration nor the one being built (keep[0..n_keep))
 * serves is taken over and zeroed: no worker writes it, since every worker is on the
 * published configuration. Its VNI's counters end there, as a removed VNI's series
 * does; without this, a node that saw 1023 distinct VNIs could not attach another. */
static int vni_slot_get(vfp_dp *dp, uint32_t vni, const uint32_t *keep, uint32_t n_keep) {
    int free_slot = -1;
    for (int i = 1; i < VFP_DP_MAX_VNIS; i++) { /* slot 0 stays unused: vni 0 reads as empty */
        if (dp->vni_slot_of[i] == vni + 1) return i;
        if (!dp->vni_slot_of[i] && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0 && workers_current(dp)) {
        const dp_cfg *cur = atomic_load_explicit(&dp->cur, memory_order_acquire);
        for (int i = 1; i < VFP_DP_MAX_VNIS && free_slot < 0; i++) {
            uint32_t v = dp->vni_slot_of[i] - 1, k = 0;
            if (cur && vni_find(cur, v)) continue;
            while (k < n_keep && keep[k] != v) k++;
            if (k == n_keep) free_slot = i;
        }
    }
    if (free_slot < 0) return -ENOSPC;
    dp->vni_slot_of[free_slot] = vni + 1;
    for (uint16_t k = 0; k < dp->n_workers; k++) {
        memset(&dp->stats[k].vnis[free_slot], 0, sizeof dp->stats[k].vnis[free_slot]);
        dp->stats[k].vnis[free_slot].vni = vni;
    }
    return free_slot;
}

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

static int64_t build(vfp_dp *dp, const vfp_dp_spec *s, dp_cfg **out, char *err, size_t errlen) {
    /* Validate first: nothing is allocated for a bad spec. */
    if (s->uplink != VFP_DP_NO_PORT && (s->uplink >= VFP_DP_MAX_PORTS || !vfp_dp__port(dp, s->uplink))) {
        snprintf(err, errlen, "uplink port slot %u is not a port of this data plane", s->uplink);
        return -EINVAL;
    }
    if (s->n_peers > VFP_DP_MAX_PEERS) {
        snprintf(err, errlen, "%u peers is more than the %u a data plane supports", s->n_peers, VFP_DP_MAX_PEERS);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < s->n_atts; i++) {
        const vfp_dp_att_spec *t = &s->atts[i];
        if (t->port >= VFP_DP_MAX_PORTS || !vfp_dp__port(dp, t->port) || t->port == s->uplink) {
            snprintf(err, errlen, "attachment %u names port slot %u, which is not a pod port", i, t->port);
            return -EINVAL;
        }
        if (t->vni > 0xffffff) {
            snprintf(err, errlen, "VNI %u is out of range: use 0..16777215", t->vni);
            return -EINVAL;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (s->atts[j].port == t->port) {
                snprintf(err, errlen, "port %s is attached twice", dp->names[t->port]);
                return -EEXIST;
            }
            if (s->atts[j].vni == t->vni && !memcmp(s->atts[j].mac, t->mac, 6)) {
                char mb[18];
                snprintf(err, errlen, "MAC %s is attached twice on VNI %u", mac_str(t->mac, mb), t->vni);
                return -EEXIST;
            }
        }
    }
    for (uint32_t i = 0; i < s->n_peers; i++)
        for (uint32_t j = 0; j < i; j++)
            if (vfp_addr__eq(&s->peers[i].vtep, &s->peers[j].vtep)) {
                char ab[INET6_ADDRSTRLEN];
                snprintf(err, errlen, "peer %s is listed twice", addr_str(&s->peers[i].vtep, ab, sizeof ab));
                return -EEXIST;
            }
    /* VNIs: every attached one, every flood-listed one and the extras. */
    uint32_t vlist[VFP_DP_MAX_VNIS];
    uint32_t nv = 0;
    uint32_t cand_n = s->n_atts + s->n_floods + s->n_extra_vnis;
    for (uint32_t i = 0; i < cand_n; i++) {
        uint32_t v = i < s->n_atts ? s->atts[i].vni
                   : i < s->n_atts + s->n_floods ? s->floods[i - s->n_atts].vni
                   : s->extra_vnis[i - s->n_atts - s->n_floods];
        if (v > 0xffffff) {
            snprintf(err, errlen, "VNI %u is out of range: use 0..16777215", v);
            return -EINVAL;
        }
        uint32_t k = 0;
        while (k < nv && vlist[k] != v) k++;
        if (k == nv) {
            if (nv == VFP_DP_MAX_VNIS - 1) {
                snprintf(err, errlen, "more than %u VNIs", VFP_DP_MAX_VNIS - 1);
                return -ENOSPC;
            }
            vlist[nv++] = v;
        }
    }
    /* Flood peer lists: explicit, else every peer. */
    uint32_t n_flood_total = 0;
    for (uint32_t k = 0; k < nv; k++) {
        uint32_t f = s->n_peers;
        for (uint32_t j = 0; j < s->n_floods; j++)
            if (s->floods[j].vni == vlist[k]) f = s->floods[j].n;
        n_flood_total += f;
    }
    uint32_t peer_slots = pow2_at_least(2 * s->n_peers);
    uint32_t vni_slots = pow2_at_least(2 * nv);
    uint32_t mac_slots = pow2_at_least(2 * s->n_atts);
    size_t off = ALIGN8(sizeof(dp_cfg));
    size_t o_peers = off; off = ALIGN8(off + sizeof(cfg_peer) * s->n_peers);
    size_t o_ph = off; off = ALIGN8(off + sizeof(uint16_t) * peer_slots);
    size_t o_vn = off; off = ALIGN8(off + sizeof(cfg_vni) * nv);
    size_t o_vh = off; off = ALIGN8(off + sizeof(uint16_t) * vni_slots);
    size_t o_lp = off; off = ALIGN8(off + sizeof(uint16_t) * (s->n_atts + 1));
    size_t o_fp = off; off = ALIGN8(off + sizeof(uint16_t) * (n_flood_total + 1));
    size_t o_mac = off; off = ALIGN8(off + sizeof(cfg_mac) * mac_slots);
    size_t o_vs = off; off = ALIGN8(off + vfp_vni_set__mem_size(nv + 1));
    size_t o_rx = off; off = ALIGN8(off + sizeof(rxq) * VFP_DP_MAX_PORTS * 4);
    size_t bytes = off;
    dp_cfg *c = xalloc(dp, bytes);
    if (!c) return -ENOMEM;
    memset(c, 0, bytes);
    uint8_t *base = (uint8_t *)c;
    c->bytes = bytes;
    c->uplink = s->uplink;
    memcpy(c->uplink_mac, s->uplink_mac, 6);
    c->uplink_mac48 = vfp_mac48(s->uplink_mac);
    c->local = s->tunnel.local;
    c->learn = s->learn;
    c->anti_spoof = s->anti_spoof;
    c->icmp_too_big = s->icmp_too_big;
    c->age_seconds = s->age_seconds ? s->age_seconds : 300;
    c->vlan = (int16_t)s->tunnel.vlan;
    c->peers = (cfg_peer *)(base + o_peers);
    c->peer_hash = (uint16_t *)(base + o_ph);
    c->vnis = (cfg_vni *)(base + o_vn);
    c->vni_hash = (uint16_t *)(base + o_vh);
    c->local_ports = (uint16_t *)(base + o_lp);
    c->flood_peers = (uint16_t *)(base + o_fp);
    c->macs = s->n_atts ? (cfg_mac *)(base + o_mac) : NULL;
    c->peer_mask = peer_slots - 1;
    c->vni_mask = vni_slots - 1;
    c->mac_mask = mac_slots - 1;
    memset(c->peer_hash, 0xff, sizeof(uint16_t) * peer_slots);
    memset(c->vni_hash, 0xff, sizeof(uint16_t) * vni_slots);
    int64_t rc = 0;
    /* Peers and their tunnels. Each keeps the stats slot it has in the running epoch (by
     * address); new ones take slots no peer of this spec keeps. */
    c->n_peers = s->n_peers;
    const dp_cfg *cur = atomic_load_explicit(&dp->cur, memory_order_acquire);
    uint8_t kept[VFP_DP_MAX_PEERS] = { 0 };
    int16_t slot_of[VFP_DP_MAX_PEERS];
    for (uint32_t i = 0; i < s->n_peers; i++) {
        const int had = cur ? peer_find(cur, &s->peers[i].vtep) : -1;
        slot_of[i] = had >= 0 && !kept[cur->peers[had].slot] ? (int16_t)cur->peers[had].slot : -1;
        if (slot_of[i] >= 0) kept[slot_of[i]] = 1;
    }
    for (uint32_t i = 0, k = 0; i < s->n_peers; i++) {
        if (slot_of[i] >= 0) continue;
        while (kept[k]) k++; /* n_peers ≤ VFP_DP_MAX_PEERS: a free slot exists */
        slot_of[i] = (int16_t)k, kept[k] = 1;
    }
    for (uint32_t i = 0; i < s->n_peers && !rc; i++) {
        cfg_peer *p = &c->peers[i];
        p->addr = s->peers[i].vtep;
        p->nh = s->peers[i].via.family ? s->peers[i].via : p->addr;
        p->mac_known = s->peers[i].mac_known;
        p->slot = (uint16_t)slot_of[i];
        vfp_tunnel_cfg tc = s->tunnel;
        tc.remote = p->addr;
        /* The checksums the uplink's device fills are left to it (DPDK tx offloads). */
        tc.tx_offload = s->uplink != VFP_DP_NO_PORT ? (uint8_t)(vfp_dp__port(dp, s->uplink)->tx_ol & VFP_TXO__ALL) : 0;
        memcpy(tc.src_mac, s->uplink_mac, 6);
        if (p->mac_known) memcpy(tc.dst_mac, s->peers[i].mac, 6);
        else memset(tc.dst_mac, 0, 6);
        if (vfp_tunnel__init(&p->tun, &tc)) {
            char ab[INET6_ADDRSTRLEN];
            snprintf(err, errlen, "the tunnel to peer %s is inconsistent (address family of local and remote "
                     "VTEP, VLAN, ports, TTL)", addr_str(&p->addr, ab, sizeof ab));
            rc = -EINVAL;
        }
        uint32_t h = addr_hash(&p->addr) & c->peer_mask;
        while (c->peer_hash[h] != NONE16) h = (h + 1) & c->peer_mask;
        c->peer_hash[h] = (uint16_t)i;
    }
    /* VNIs, their counter slots, local ports and flood peers. */
    vfp_vni_set__init(&c->vni_set, base + o_vs, nv + 1);
    uint32_t lp_off = 0, fp_off = 0;
    for (uint32_t k = 0; k < nv && !rc; k++) {
        cfg_vni *v = &c->vnis[k];
        v->vni = vlist[k];
        int slot = vni_slot_get(dp, v->vni, vlist, nv);
        if (slot < 0) {
            snprintf(err, errlen, "no free VNI counter slot for VNI %u", v->vni);
            rc = slot;
            break;
        }
        v->slot = (uint16_t)slot;
        vfp_vni_set__add(&c->vni_set, v->vni);
        v->local_off = lp_off;
        for (uint32_t i = 0; i < s->n_atts; i++)
            if (s->atts[i].vni == v->vni) c->local_ports[lp_off++] = s->atts[i].port, v->n_local++;
        v->flood_off = fp_off;
        int explicit_list = 0;
        for (uint32_t j = 0; j < s->n_floods && !rc; j++) {
            if (s->floods[j].vni != v->vni) continue;
            explicit_list = 1;
            for (uint32_t q = 0; q < s->floods[j].n; q++) {
                int p = peer_find(c, &s->floods[j].vteps[q]);
                if (p < 0) {
                    char ab[INET6_ADDRSTRLEN];
                    snprintf(err, errlen, "the flood list of VNI %u names VTEP %s, which is not a peer; add it to "
                             "peers first", v->vni, addr_str(&s->floods[j].vteps[q], ab, sizeof ab));
                    rc = -EINVAL;
                    break;
                }
                c->flood_peers[fp_off++] = (uint16_t)p, v->n_flood++;
            }
        }
        if (!explicit_list)
            for (uint32_t p = 0; p < s->n_peers; p++) c->flood_peers[fp_off++] = (uint16_t)p, v->n_flood++;
        uint32_t h = vni_hash(v->vni) & c->vni_mask;
        while (c->vni_hash[h] != NONE16) h = (h + 1) & c->vni_mask;
        c->vni_hash[h] = (uint16_t)k;
    }
    c->n_vnis = nv;
    /* Attachments and the local MAC table. */
    for (uint32_t i = 0; i < s->n_atts && !rc; i++) {
        const vfp_dp_att_spec *t = &s->atts[i];
        cfg_att *at = &c->att[t->port];
        at->active = 1;
        at->vni = t->vni;
        memcpy(at->mac, t->mac, 6);
        at->vni_idx = (uint16_t)(vni_find(c, t->vni) - c->vnis);
        uint32_t h = vmac_hash(t->vni, t->mac) & c->mac_mask;
        while (c->macs[h].vni) h = (h + 1) & c->mac_mask;
        c->macs[h].vni = t->vni + 1;
        memcpy(c->macs[h].mac, t->mac, 6);
        c->macs[h].port = t->port;
    }
    /* Static FDB. Every entry's VTEP must be a peer of this epoch, checked before the
     * table is built or shared. */
    for (uint32_t i = 0; i < s->n_fdb && !rc; i++) {
        const vfp_dp_fdb_spec *f = &s->fdb[i];
        if (peer_find(c, &f->vtep) >= 0) continue;
        char mb[18], ab[INET6_ADDRSTRLEN];
        snprintf(err, errlen, "the static entry for %s on VNI %u points at VTEP %s, which is not a peer; add "
                 "it to peers first", mac_str(f->mac, mb), f->vni, addr_str(&f->vtep, ab, sizeof ab));
        rc = -EINVAL;
    }
    /* The last table built when this spec lists the same entries, else a new one. */
    if (!rc && s->n_fdb) {
        sfdb *sf = sfdb_same(dp->sfdb_last, s->fdb, s->n_fdb) ? dp->sfdb_last : NULL;
        if (sf) {
            sf->refs++;
        } else if ((sf = xalloc(dp, sizeof *sf))) {
            sf->refs = 1;
            dp->sfdb_builds++;
            vfp_alloc fa = { fdb_alloc_fn, fdb_free_fn, dp };
            int e = vfp_fdb__create(&sf->fdb, s->n_fdb + 16, &fa);
            if (e) rc = e, snprintf(err, errlen, "cannot build the static FDB: %s", strerror(-e));
            for (uint32_t i = 0; i < s->n_fdb && !rc; i++) {
                const vfp_dp_fdb_spec *f = &s->fdb[i];
                e = vfp_fdb__add_static(sf->fdb, f->vni, f->mac, &f->vtep);
                if (e) {
                    char mb[18];
                    snprintf(err, errlen, "the static entry for %s on VNI %u is rejected: %s (a group MAC cannot be "
                             "static; VNI must be ≤ 16777215)", mac_str(f->mac, mb), f->vni, strerror(-e));
                    rc = e;
                }
            }
            /* Without its spec (no memory for the copy) it serves this epoch alone. */
            if (!rc && (sf->spec = xalloc(dp, sizeof(vfp_dp_fdb_spec) * s->n_fdb))) {
                memcpy(sf->spec, s->fdb, sizeof(vfp_dp_fdb_spec) * s->n_fdb);
                sf->n = s->n_fdb;
            }
        } else {
            rc = -ENOMEM, snprintf(err, errlen, "cannot build the static FDB: %s", strerror(ENOMEM));
        }
        if (sf) c->sf = sf, c->fdb = sf->fdb; /* cfg_free lets go of it, also on failure */
        if (!rc) {
            /* VTEP indexes are dense from 0; map each to its peer (of this epoch) once, here. */
            uint32_t max = 0;
            while (max < 65535 && vfp_fdb__vtep(c->fdb, (uint16_t)max)) max++;
            c->fdb_vteps = max;
            c->fdb_peer = xalloc(dp, sizeof(uint16_t) * (max + 1));
            if (!c->fdb_peer) rc = -ENOMEM;
            for (uint32_t i = 0; i < max && !rc; i++) {
                int p = peer_find(c, vfp_fdb__vtep(c->fdb, (uint16_t)i));
                c->fdb_peer[i] = p < 0 ? NONE16 : (uint16_t)p;
            }
        }
        if (!rc && sf->spec) dp->sfdb_last = sf;
    }
    /* Decap context: our VTEP, the VNIs served, the port. */
    c->decap.dst_port = s->tunnel.dst_port;
    c->decap.vnis = &c->vni_set;
    c->decap.n_locals = 1;
    c->decap.locals[0] = s->tunnel.local;
    c->decap.verify_udp_csum = s->verify_udp_csum;
    /* Ports of this epoch, and their queues spread over the workers. */
    rxq *rx = (rxq *)(base + o_rx);
    uint32_t nrx = 0;
    uint16_t wk = 0;
    for (uint16_t i = 0; i < VFP_DP_MAX_PORTS; i++) {
        vfp_port *p = vfp_dp__port(dp, i);
        if (!p) continue;
        c->ports[i] = p;
        for (uint16_t q = 0; q < p->n_queues && nrx < VFP_DP_MAX_PORTS * 4; q++) rx[nrx++] = (rxq){ i, q };
    }
    /* Queue q of every port goes to worker q % n, the worker that also sends on it
     * (tx_push_burst uses queue w->idx): one thread per queue, whatever the ports' queue
     * counts (a port with more queues than workers has its extra ones polled by the
     * worker of the same index). Each worker's share is contiguous. */
    rxq all[VFP_DP_MAX_PORTS * 4];
    memcpy(all, rx, sizeof(rxq) * nrx);
    uint32_t pos = 0;
    for (wk = 0; wk < dp->n_workers; wk++) {
        c->rxqs[wk] = rx + pos;
        for (uint32_t k = 0; k < nrx; k++)
            if (all[k].queue % dp->n_workers == wk) rx[pos++] = all[k];
        c->n_rxq[wk] = (uint16_t)(rx + pos - c->rxqs[wk]);
    }
    if (rc) {
        cfg_free(dp, c);
        return rc;
    }
    *out = c;
    return 0;
}

uint64_t vfp_dp__static_fdb_builds(const vfp_dp *dp) { return dp->sfdb_builds; }

int64_t vfp_dp__commit(vfp_dp *dp, const vfp_dp_spec *s, uint32_t timeout_ms, char *err, size_t errlen) {
    if (!dp || !s) return -EINVAL;
    if (dp->stopped) {
        snprintf(err, errlen, "the data plane is stopped");
        return -ESHUTDOWN;
    }
    pthread_mutex_lock(&dp->ctl);
    dp_cfg *c = NULL;
    int64_t rc = build(dp, s, &c, err, errlen);
    if (rc) {
        pthread_mutex_unlock(&dp->ctl);
        return rc;
    }
    c->epoch = ++dp->epoch;
    /* Release: the workers' acquire load sees the fully built cfg. */
    dp_cfg *old = atomic_exchange_explicit(&dp->cur, c, memory_order_acq_rel);
    for (uint16_t i = 0; i < dp->n_workers; i++) wake(&dp->w[i]);
    uint64_t deadline = now_ns() + (uint64_t)(timeout_ms ? timeout_ms : 2000) * 1000000ull;
    int late = 0;
    for (uint16_t i = 0; i < dp->n_workers; i++) {
        worker *w = &dp->w[i];
        while (atomic_load_explicit(&w->seen_epoch, memory_order_acquire) < c->epoch &&
               !atomic_load_explicit(&w->exited, memory_order_acquire)) {
            if (now_ns() > deadline) {
                late = 1;
                break;
            }
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
    }
    if (late) {
        /* A worker still may read the old cfg: leak it rather than free it under the
         * worker, and say so. Ports marked for removal stay open for the same reason. */
        snprintf(err, errlen, "epoch %llu published, but a worker did not switch within %u ms; the old "
                 "configuration is kept alive", (unsigned long long)c->epoch, timeout_ms);
        pthread_mutex_unlock(&dp->ctl);
        return (int64_t)c->epoch;
    }
    cfg_free(dp, old);
    for (int i = 0; i < VFP_DP_MAX_PORTS; i++)
        if (dp->removing[i] && dp->ports[i]) {
            close_removed(dp, dp->ports[i]);
            dp->ports[i] = NULL;
            dp->removing[i] = 0;
            dp->names[i][0] = 0;
        }
    pthread_mutex_unlock(&dp->ctl);
    return (int64_t)c->epoch;
}

/* Asks each worker in turn for its learned entries (key NULL: up to cap in all) or for
 * the one entry under (vni, key), written at out[total]. */
static int ask_learned(vfp_dp *dp, vfp_fdb_entry_info *out, uint32_t cap, uint32_t timeout_ms,
                       uint32_t vni, const uint8_t *key) {
    pthread_mutex_lock(&dp->ctl);
    uint32_t total = 0;
    int rc = 0;
    for (uint16_t i = 0; i < dp->n_workers && total < cap; i++) {
        worker *w = &dp->w[i];
        if (atomic_load(&w->exited)) continue;
        w->dump_by_key = key != NULL;
        if (key) {
            w->dump_vni = vni;
            memcpy(w->dump_mac, key, 6);
        }
        w->dump_cap = cap - total;
        atomic_store_explicit(&w->dump_n, -1, memory_order_relaxed);
        /* Release: dump_cap is visible before the worker sees the buffer. */
        atomic_store_explicit(&w->dump_buf, out + total, memory_order_release);
        wake(w);
        uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
        int32_t n;
        while ((n = atomic_load_explicit(&w->dump_n, memory_order_acquire)) < 0) {
            if (now_ns() > deadline) {
                /* Withdraw the request; if the worker took it meanwhile, wait it out. */
                vfp_fdb_entry_info *exp = out + total;
                if (atomic_compare_exchange_strong(&w->dump_buf, &exp, NULL)) {
                    rc = -ETIMEDOUT;
                    break;
                }
                /* The worker claimed it: it answers within one loop pass. */
            }
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
        if (rc) break;
        total += (uint32_t)n;
    }
    pthread_mutex_unlock(&dp->ctl);
    return rc ? rc : (int)total;
}

int vfp_dp__learned(vfp_dp *dp, vfp_fdb_entry_info *out, uint32_t cap, uint32_t timeout_ms) {
    return ask_learned(dp, out, cap, timeout_ms, 0, NULL);
}

int vfp_dp__learned_get(vfp_dp *dp, uint32_t vni, const uint8_t mac[6], vfp_fdb_entry_info *out,
                        uint32_t timeout_ms) {
    return ask_learned(dp, out, dp->n_workers, timeout_ms, vni, mac);
}

/* ---- drop capture */

int vfp_dp__drops_arm(vfp_dp *dp, uint32_t per_worker, uint64_t reasons) {
    if (!dp) return -EINVAL;
    /* A worker that read the previous want just before this store may add one record
     * more than asked: with at most RING - 1 asked, the records from since on never wrap
     * onto one another, so a reader never meets one being rewritten. */
    if (per_worker > VFP_DP_DROP_RING - 1) per_worker = VFP_DP_DROP_RING - 1;
    pthread_mutex_lock(&dp->ctl);
    for (uint16_t k = 0; per_worker && k < dp->n_workers; k++)
        if (!dp->w[k].drops && !(dp->w[k].drops = xalloc(dp, sizeof(vfp_dp_drop_rec) * VFP_DP_DROP_RING))) {
            pthread_mutex_unlock(&dp->ctl);
            return -ENOMEM;
        }
    for (uint16_t k = 0; k < dp->n_workers; k++) {
        worker *w = &dp->w[k];
        const uint64_t wr = atomic_load_explicit(&w->drop_wr, memory_order_acquire);
        dp->drop_since[k] = wr;
        /* The ring and the mask before the window (release): a worker that sees the new
         * want has the ring and filters by the new reasons (a record of the old ones in
         * between is one the last arming asked for). */
        atomic_store_explicit(&w->drop_mask, reasons, memory_order_relaxed);
        atomic_store_explicit(&w->drop_want, wr + per_worker, memory_order_release);
    }
    pthread_mutex_unlock(&dp->ctl);
    return 0;
}

int vfp_dp__drops_read(vfp_dp *dp, vfp_dp_drop_rec *out, uint32_t cap) {
    if (!dp || (!out && cap)) return -EINVAL;
    uint32_t n = 0;
    pthread_mutex_lock(&dp->ctl);
    for (uint16_t k = 0; k < dp->n_workers && n < cap; k++) {
        worker *w = &dp->w[k];
        /* Acquire pairs with the worker's release: the records below wr are whole. */
        const uint64_t wr = atomic_load_explicit(&w->drop_wr, memory_order_acquire);
        const uint64_t from = dp->drop_since[k];
        for (uint64_t i = from; w->drops && i < wr && n < cap; i++) out[n++] = w->drops[i % VFP_DP_DROP_RING];
    }
    pthread_mutex_unlock(&dp->ctl);
    return (int)n;
}

const char *vfp_dp_drop__reason_name(unsigned reason) {
    return reason & VFP_DP_DROP_ENGINE ? vfp_reason__name(reason & ~(unsigned)VFP_DP_DROP_ENGINE) : vfp_dp_drop__name(reason);
}
