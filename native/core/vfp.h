/* vfplane core: the types every part of the engine shares. The core is C11 with no
 * Node, no syscalls and no allocation on the packet path; memory it needs on the
 * control path comes from the caller through vfp_alloc. Functions return 0 or -errno. */
#ifndef VFP_CORE_VFP_H
#define VFP_CORE_VFP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VFP_CACHE_LINE 64
#define VFP_MAX_BURST 256

/* The fast paths for the common frame (constant offsets) have a general twin that must
 * give the same result for every input. Building with -DVFP_NO_FAST_PATHS makes this 1
 * and folds the fast paths away, so that native/test/sweep.c can compare the two builds
 * (vfp-core-sweep and vfp-core-sweep-general) over edge cases. One switch, one spelling:
 * test VFP_NO_FAST in code, never the -D name. */
#ifdef VFP_NO_FAST_PATHS
#define VFP_NO_FAST 1
#else
#define VFP_NO_FAST 0
#endif

#if defined(__GNUC__)
#define VFP_LIKELY(x) __builtin_expect(!!(x), 1)
#define VFP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VFP_ALIGNED(n) __attribute__((aligned(n)))
#define VFP_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define VFP_PREFETCHW(p) __builtin_prefetch((p), 1, 3)
/* A function only slow paths call: kept out of line, away from the hot code. */
#define VFP_COLD __attribute__((cold, noinline))
#else
#define VFP_LIKELY(x) (x)
#define VFP_UNLIKELY(x) (x)
#define VFP_ALIGNED(n)
#define VFP_PREFETCH(p) ((void)(p))
#define VFP_PREFETCHW(p) ((void)(p))
#define VFP_COLD
#endif

/* Big-endian (wire order) 16-bit header fields. The store is one swapped 16-bit store,
 * not two byte stores the compiler reassembles with shifts. */
static inline uint16_t vfp_rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void vfp_wr16(uint8_t *p, uint16_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    memcpy(p, &v, 2);
}

/* The EtherType of an Ethernet frame F (LEN ≥ 14 bytes) past up to two VLAN tags
 * (802.1Q, 802.1ad), and in *L3 where what it types begins. A tag cut short ends the
 * walk: its own TPID is returned, which no caller takes for IP. */
static inline uint16_t vfp_eth__type(const uint8_t *f, uint32_t len, uint32_t *l3) {
    uint32_t o = 14;
    uint16_t type = vfp_rd16(f + 12);
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8) && o + 4 <= len; tags++) {
        type = vfp_rd16(f + o + 2);
        o += 4;
    }
    *l3 = o;
    return type;
}

/* Drop reasons: docs/vxlan-engine.md §6. The numbers are part of the contract with the
 * TypeScript model (src/packet/reasons.ts). */
enum vfp_reason {
    VFP_OK = 0,
    VFP_R_INNER_TRUNCATED,
    VFP_R_NO_HEADROOM,
    VFP_R_TOO_BIG,
    VFP_R_MTU_EXCEEDED,
    VFP_R_ETH_TRUNCATED,
    VFP_R_NOT_IP,
    VFP_R_IP_TRUNCATED,
    VFP_R_IP_BAD_VERSION,
    VFP_R_IP_BAD_IHL,
    VFP_R_IP_BAD_CHECKSUM,
    VFP_R_IP_BAD_LENGTH,
    VFP_R_IP_FRAGMENT,
    VFP_R_NOT_LOCAL,
    VFP_R_NOT_UDP,
    VFP_R_UDP_BAD_LENGTH,
    VFP_R_NOT_VXLAN_PORT,
    VFP_R_UDP_BAD_CHECKSUM,
    VFP_R_VXLAN_TRUNCATED,
    VFP_R_VXLAN_BAD_FLAGS,
    VFP_R_VNI_UNKNOWN,
    VFP_R_INNER_VLAN,
    VFP_R_CE_NOT_ECT,
    VFP_R_UDP_ZERO_CHECKSUM, /* IPv6 UDP checksum 0 while verifying (RFC 6935/6936: allowed only by configuration) */
    VFP_R__COUNT
};

/* The name of a reason ("ip_bad_checksum"), or NULL past the end. */
const char *vfp_reason__name(unsigned reason);

/* A packet as the engine sees it. I/O backends fill one per received frame; encap
 * moves `data` back into the headroom, decap moves it forward to the inner frame. */
typedef struct vfp_pkt {
    uint8_t *data;      /* first byte of the frame */
    uint32_t len;       /* frame length */
    uint32_t headroom;  /* writable bytes before data */
    uint32_t vni;       /* decap result */
    uint8_t reason;     /* enum vfp_reason, set by every burst function */
    uint8_t vtep_family;/* decap result: 4 or 6 */
    uint16_t port;      /* I/O: the port the frame came from or goes to */
    uint8_t vtep[16];   /* decap result: outer source address (IPv4 in the first 4) */
    void *opaque;       /* the backend's own handle (mbuf, UMEM address, ring slot) */
    struct vfp_port *owner; /* the port (or pool) the buffer returns to; set by rx */
    uint8_t tx_ol;      /* enum vfp_tx_offload: checksums left for the port; rx sets 0 */
    uint8_t l2_len;     /* with tx_ol: bytes before the outer IP header */
    uint8_t l3_len;     /* with tx_ol: outer IP header bytes (20 or 40) */
} vfp_pkt;

/* Outer checksums encap may leave for the device (DPDK tx offload). A packet carrying
 * one is finished by the port if the port offloads it, or in software on the way out
 * (vfp_pkt__tx_finish, called by vfp_port__tx_burst) otherwise: no port ever sends one
 * unfinished. */
enum vfp_tx_offload {
    VFP_TXO_IP_CSUM = 1u << 0,  /* IPv4 header checksum: written as 0 */
    VFP_TXO_UDP_CSUM = 1u << 1, /* UDP checksum: the field holds the pseudo-header sum */
    VFP_TXO_IPV6 = 1u << 2,     /* the outer header is IPv6 (what a device needs to know) */
    VFP_TXO__ALL = VFP_TXO_IP_CSUM | VFP_TXO_UDP_CSUM
};

/* Completes the outer checksums p->tx_ol names and `which` selects, in software, and
 * clears their bits: what a port without the offload does before sending (csum.c). */
void vfp_pkt__tx_finish(vfp_pkt *p, uint8_t which);

/* Set (once, never cleared) when a tunnel that leaves checksums to a device is made:
 * until then no packet carries tx_ol and the tx path skips looking (vxlan.c). Read with
 * __atomic_load_n(..., __ATOMIC_RELAXED). Defined in csum.c, beside the finish. */
extern int vfp_txo_seen;

/* An IPv4 or IPv6 address. IPv4 uses bytes[0..3]; the rest is zero. */
typedef struct vfp_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t bytes[16];
} vfp_addr;

/* Same family and address. Constant lengths, so that the compare is inlined (a length
 * chosen at run time made it a libc call on the packet path). Only the first 4 bytes of
 * an IPv4 address count, whatever the rest holds. */
static inline int vfp_addr__eq(const vfp_addr *a, const vfp_addr *b) {
    if (a->family != b->family) return 0;
    return a->family == 4 ? !memcmp(a->bytes, b->bytes, 4) : !memcmp(a->bytes, b->bytes, 16);
}

/* Control-path memory, provided by the caller. alloc returns zeroed memory aligned to
 * `align` (a power of two ≥ 8) or NULL. */
typedef struct vfp_alloc {
    void *(*alloc)(void *ctx, size_t size, size_t align);
    void (*free)(void *ctx, void *p, size_t size);
    void *ctx;
} vfp_alloc;

/* Counters of one worker (one core). Each worker owns one, so no atomics are needed on
 * the packet path; readers sum them. Cache-line aligned so workers never share a line. */
typedef struct vfp_stats {
    uint64_t encap_pkts, encap_bytes;   /* packets encapsulated, outer bytes out */
    uint64_t decap_pkts, decap_bytes;   /* packets decapsulated, inner bytes out */
    uint64_t learn_new, learn_moved, learn_refresh, learn_full, learn_limited;
    uint64_t drops[VFP_R__COUNT];
} VFP_ALIGNED(VFP_CACHE_LINE) vfp_stats;

#ifdef __cplusplus
}
#endif
#endif
