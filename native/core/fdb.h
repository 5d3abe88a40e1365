/* The FDB: (VNI, MAC) → remote VTEP, with static entries, learning, ageing and per-VNI
 * flood lists (docs/vxlan-engine.md §5). A bucketized cuckoo hash: each bucket is one
 * cache line of four 16-byte entries, each key has two candidate buckets, and bulk
 * lookups prefetch so that a large table costs little more than a small one.
 * Not thread-safe: one writer, and readers on the same thread (epochs come later). */
#ifndef VFP_CORE_FDB_H
#define VFP_CORE_FDB_H

#include "vfp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VFP_FDB_MAX_VTEPS 65535u
#define VFP_FDB_NO_VTEP 0xffffu

typedef struct vfp_fdb vfp_fdb;

enum vfp_fdb_flags { VFP_FDB_STATIC = 1, VFP_FDB_LEARNED = 2 };

enum vfp_learn_result {
    VFP_LEARN_NEW = 1,      /* a new entry */
    VFP_LEARN_REFRESH = 2,  /* same VTEP, stamp updated */
    VFP_LEARN_MOVED = 3,    /* learned entry moved to another VTEP */
    VFP_LEARN_STATIC = 4,   /* a static entry exists: left alone */
    VFP_LEARN_IGNORED = 5,  /* group (multicast/broadcast) or all-zero source MAC */
};

/* A source MAC learning takes: unicast (bit 0 of the first byte clear) and not all
 * zero, what the kernel calls is_valid_ether_addr. */
static inline int vfp_mac__learnable(const uint8_t mac[6]) {
    return !(mac[0] & 1) && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) != 0;
}

typedef struct vfp_fdb_entry_info {
    uint32_t vni;
    uint8_t mac[6];
    uint8_t flags;          /* enum vfp_fdb_flags */
    uint32_t stamp;         /* learned: last seen, seconds */
    vfp_addr vtep;
} vfp_fdb_entry_info;

/* capacity: the entries the table must hold (1..16M). Buckets are sized so that this
 * many entries sit at ≤ 90% of the slots, where a cuckoo insert practically never
 * fails. Learning stops at capacity: a new MAC learned while the table holds capacity
 * entries is -ENOSPC (a worker's learnCapacity is what it holds, not the slots rounded
 * up). A static entry may go past it while an insert still finds a displacement path
 * (up to vfp_fdb__slots), after which inserts fail with -ENOSPC. The VTEP table holds
 * min(capacity + 1024, 65535) addresses. -EINVAL, -ENOMEM. */
int vfp_fdb__create(vfp_fdb **out, uint32_t capacity, const vfp_alloc *a);
void vfp_fdb__destroy(vfp_fdb *f);

uint32_t vfp_fdb__count(const vfp_fdb *f);
/* Changes (wrapping) whenever a lookup's answer may have: an entry added, removed or
 * pointed at another VTEP; not when a learned entry's stamp is refreshed. What a cache
 * of answers in front of the table checks to know it still holds. */
uint32_t vfp_fdb__version(const vfp_fdb *f);
uint32_t vfp_fdb__capacity(const vfp_fdb *f);   /* as passed to create */
uint32_t vfp_fdb__slots(const vfp_fdb *f);      /* buckets × 4: the hard limit */
uint32_t vfp_fdb__vtep_count(const vfp_fdb *f); /* distinct VTEPs in use */
size_t vfp_fdb__mem_bytes(const vfp_fdb *f);
/* Entries that sit in their primary bucket (one cache line per lookup). O(slots). */
uint32_t vfp_fdb__primary_count(const vfp_fdb *f);

/* Adds or replaces a static entry. -ENOSPC when full (table or VTEPs), -EINVAL (also
 * for a group MAC: group destinations always resolve to the flood list). */
int vfp_fdb__add_static(vfp_fdb *f, uint32_t vni, const uint8_t mac[6], const vfp_addr *vtep);
/* Removes an entry, static or learned. -ENOENT when absent. */
int vfp_fdb__del(vfp_fdb *f, uint32_t vni, const uint8_t mac[6]);
/* Learns mac → vtep: a vfp_learn_result, -ENOSPC when the table is full, or -EDQUOT
 * when the VNI holds its limit of learned entries (vfp_fdb__set_vni_limit). */
int vfp_fdb__learn(vfp_fdb *f, uint32_t vni, const uint8_t mac[6], const vfp_addr *vtep,
                   uint32_t now);
/* The packet-path form used by decap: learns (vnis[i], macs[i]) → (families[i],
 * vteps[i], 16 bytes, IPv4 zero-padded) for i in [0, n), n ≤ VFP_MAX_BURST, hashing and
 * prefetching every key first. Results are counted into st (learn_*) when not NULL.
 * Returns how many of the n are now learned entries at their VTEP stamped `now` (new,
 * moved or refreshed): n unless some were ignored, static or did not fit. */
uint16_t vfp_fdb__learn_bulk(vfp_fdb *f, const uint32_t *vnis, const uint8_t *const *macs,
                             const uint8_t *families, const uint8_t *const *vteps, uint16_t n,
                             uint32_t now, vfp_stats *st);

/* Caps the learned entries of each VNI at per_vni (0: no cap, the default), so that one
 * VNI's sources (a tenant's pod sending from random MACs) cannot take the whole table
 * from the others: a new MAC of a VNI at its cap is not learned (-EDQUOT, counted as
 * learn_limited; its frames still go through) until one of the VNI's entries ages out.
 * Entries already learned are counted when the cap is first set. Control path:
 * -ENOMEM, -EINVAL. Tracks up to 12288 VNIs learning at once; past that a new VNI
 * learns nothing until another has no learned entry left. */
int vfp_fdb__set_vni_limit(vfp_fdb *f, uint32_t per_vni);
uint32_t vfp_fdb__vni_limit(const vfp_fdb *f);
/* Learned entries of the VNI, as counted for the cap (0 without one). */
uint32_t vfp_fdb__learned_in(const vfp_fdb *f, uint32_t vni);

/* Called by vfp_fdb__learn_bulk (the packet path only, never vfp_fdb__learn) when it
 * learns a new entry (VFP_LEARN_NEW), moves one to another VTEP (VFP_LEARN_MOVED), or
 * refreshes one whose stamp then advances (VFP_LEARN_REFRESH, at most once a second per
 * entry): what a worker shares with the others, whose copies would otherwise miss it or
 * age it out. NULL: none. */
typedef void (*vfp_learn_hook)(void *arg, uint32_t vni, const uint8_t mac[6], const vfp_addr *vtep, int result);
void vfp_fdb__set_learn_hook(vfp_fdb *f, vfp_learn_hook fn, void *arg);

/* Single lookup: 0 and *out filled, or -ENOENT. */
int vfp_fdb__get(const vfp_fdb *f, uint32_t vni, const uint8_t mac[6], vfp_fdb_entry_info *out);

/* Bulk lookup, the packet-path form: for i in [0, n), vtep_idx[i] is the VTEP index of
 * (vnis[i], macs[i]) or VFP_FDB_NO_VTEP on a miss. n ≤ VFP_MAX_BURST. */
void vfp_fdb__lookup_bulk(const vfp_fdb *f, const uint32_t *vnis, const uint8_t *const *macs,
                          uint16_t n, uint16_t *vtep_idx);
/* The address of a VTEP index returned by lookup_bulk; NULL for an unused index. */
const vfp_addr *vfp_fdb__vtep(const vfp_fdb *f, uint16_t idx);

/* Ageing scan: visits up to `budget` buckets from *cursor, removes learned entries with
 * now > stamp and now - stamp > max_age, advances *cursor (wrapping). Returns the number
 * removed. A VTEP whose last entry (or flood list) goes away is freed. */
uint32_t vfp_fdb__age(vfp_fdb *f, uint32_t now, uint32_t max_age, uint32_t *cursor,
                      uint32_t budget);

/* Flood lists (head-end replication). set replaces the VNI's list (n = 0 clears it);
 * a VTEP listed twice is kept once, in first-seen order. On -ENOSPC (VTEP table full)
 * or -ENOMEM the old list stays. */
int vfp_fdb__flood_set(vfp_fdb *f, uint32_t vni, const vfp_addr *vteps, uint32_t n);
/* The VTEP indexes of a VNI's flood list; *n = 0 when it has none. */
void vfp_fdb__flood_get(const vfp_fdb *f, uint32_t vni, const uint16_t **idx, uint32_t *n);

/* Where a frame for (vni, dst_mac) goes: returns 1 with *vtep_idx for a unicast hit,
 * or 0 with the flood list for group MACs and misses. */
int vfp_fdb__resolve(const vfp_fdb *f, uint32_t vni, const uint8_t dst_mac[6],
                     uint16_t *vtep_idx, const uint16_t **flood, uint32_t *n_flood);

/* Walks every entry (control path: listing, dumps). Stops when fn returns non-zero. */
void vfp_fdb__walk(const vfp_fdb *f, int (*fn)(const vfp_fdb_entry_info *e, void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
