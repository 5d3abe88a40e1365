/* The FDB: a bucketized cuckoo hash of (VNI, MAC) → VTEP index, a refcounted VTEP table,
 * per-VNI flood lists, learning and budgeted ageing. Inserts search for a displacement
 * path before moving anything, so a failed insert leaves the table exactly as it was. */
#include "core/fdb.h"
#include "core/hashkey.h"

#include <errno.h>
#include <string.h>

#define WAYS 4
/* An entry's tag: VNI bits 16–23, then flags. PRESENT is part of the match so that an
 * all-zero (empty) slot can never match the all-zero key (VNI 0, MAC 00:…:00). */
#define TAG_VNI_HI 0x00ffu
#define TAG_PRESENT 0x0100u
#define TAG_STATIC 0x0200u
#define TAG_LEARNED 0x0400u
#define TAG_MATCH (TAG_VNI_HI | TAG_PRESENT)

#define VNI_MAX 0xffffffu
#define CAPACITY_MAX (1u << 24)
/* Buckets are sized for this load at the requested capacity (in tenths of a slot per
 * entry: 4 slots / 0.9 load); (2,4)-cuckoo fills to ~97% before paths get long. */
#define SLOTS_PER_10_ENTRIES 11
#define BFS_MAX 1024
#define BFS_ROOT 0xffffu

typedef struct fdb_entry {
    uint64_t key;   /* MAC (48 bits, as loaded from memory) | VNI bits 0–15 << 48 */
    uint16_t tag;
    uint16_t vtep;
    uint32_t stamp;
} fdb_entry;

typedef struct fdb_bucket {
    fdb_entry e[WAYS];
} VFP_ALIGNED(VFP_CACHE_LINE) fdb_bucket;

_Static_assert(sizeof(fdb_entry) == 16, "an entry is 16 bytes");
_Static_assert(sizeof(fdb_bucket) == VFP_CACHE_LINE, "a bucket is one cache line");

typedef struct fdb_flood {
    uint32_t vni1;  /* VNI + 1; 0 = empty slot */
    uint32_t n, cap;
    uint16_t *idx;
} fdb_flood;

typedef struct bfs_node {
    uint32_t bucket;
    uint16_t parent; /* node index, or BFS_ROOT */
    uint8_t slot;    /* the parent's slot whose entry would move into `bucket` */
} bfs_node;

struct vfp_fdb {
    fdb_bucket *buckets;
    uint32_t n_buckets;
    uint32_t count;
    uint32_t capacity;
    uint64_t seed;

    vfp_addr *vteps;     /* index → address */
    uint32_t *vtep_refs; /* entries and flood lists that use the index */
    uint16_t *vtep_free; /* stack of released indexes */
    uint16_t *vtep_slots;/* address → index, linear probing, VFP_FDB_NO_VTEP = empty */
    uint32_t vtep_cap, vtep_mask, vtep_count, vtep_nfree, vtep_next;

    fdb_flood *flood;    /* VNI → list, linear probing; grown on the control path */
    uint32_t flood_mask, flood_count;

    bfs_node *bfs;
    vfp_alloc a;
    size_t mem;

    vfp_learn_hook hook; /* see vfp_fdb__set_learn_hook */
    void *hook_arg;
    uint32_t version;    /* see vfp_fdb__version */
    /* Learned entries per VNI, when a per-VNI limit is set (vfp_fdb__set_vni_limit):
     * VNI → count, linear probing, backward-shift deletion; VC_SLOTS slots, made on the
     * control path. NULL: nothing counted, no limit. */
    struct vni_count *vc;
    uint32_t vc_used, vni_limit;
    struct fdb_hint *hints; /* learn_bulk's slot hints */
    uint32_t n_hints, hint_shift; /* a power of two; 64 - its log2 */
};

typedef struct vni_count {
    uint32_t vni1; /* VNI + 1; 0 = empty slot */
    uint32_t n;    /* learned entries of the VNI */
} vni_count;
/* VNIs that learn at once: past 3/4 of the slots a new VNI learns nothing (counted as
 * limited) until one of the others has no learned entry left. */
#define VC_SLOTS 16384u
#define VC_MAX_USED (VC_SLOTS / 4 * 3)

/* Where learn_bulk last found a key: the slot (bucket × WAYS + way) to look at first,
 * before hashing. Only a hint: an entry moved by a cuckoo insert, or removed, no longer
 * matches at that slot, and the key is then looked up as usual. Direct-mapped. */
#define HINT_BITS_MAX 12 /* 4096 hints, 64 KiB; fewer for a smaller table (one per entry) */
#define NO_SLOT 0xffffffffu
typedef struct fdb_hint {
    uint64_t key;
    uint32_t slot;
    uint16_t tm;
    uint16_t pad;
} fdb_hint;

static inline uint32_t hint_of(uint64_t key, uint32_t shift) { return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> shift); }

/* ------------------------------------------------------------------ helpers */

static void *fdb_alloc(vfp_fdb *f, size_t size, size_t align) {
    void *p = f->a.alloc(f->a.ctx, size, align);
    if (p) f->mem += size;
    return p;
}

static void fdb_free(vfp_fdb *f, void *p, size_t size) {
    if (!p) return;
    f->a.free(f->a.ctx, p, size);
    f->mem -= size;
}


static inline void mac_out(uint64_t key, uint8_t *m) {
    uint32_t lo = (uint32_t)key;
    uint16_t hi = (uint16_t)(key >> 32);
    memcpy(m, &lo, 4);
    memcpy(m + 4, &hi, 2);
}

static inline uint64_t make_key(uint32_t vni, const uint8_t *mac) {
    return vfp_mac48(mac) | (uint64_t)(vni & 0xffff) << 48;
}
static inline uint16_t make_tag(uint32_t vni) { return (uint16_t)((vni >> 16) | TAG_PRESENT); }
static inline uint32_t entry_vni(const fdb_entry *e) {
    return (uint32_t)(e->key >> 48) | (uint32_t)(e->tag & TAG_VNI_HI) << 16;
}

static inline uint64_t key_hash(const vfp_fdb *f, uint64_t key, uint16_t tag) {
    return vfp_mix64(key ^ f->seed ^ (uint64_t)(tag & TAG_VNI_HI) * 0x9e3779b97f4a7c15ull);
}

/* Lemire's multiply-shift range reduction: any bucket count, no division. */
static inline uint32_t reduce(uint32_t h, uint32_t n) { return (uint32_t)(((uint64_t)h * n) >> 32); }

static inline void buckets_of(const vfp_fdb *f, uint64_t h, uint32_t *b1, uint32_t *b2) {
    const uint32_t n = f->n_buckets;
    uint32_t x = reduce((uint32_t)h, n), y = reduce((uint32_t)(h >> 32), n);
    if (y == x) y = x + 1 == n ? 0 : x + 1; /* two distinct choices, always */
    *b1 = x;
    *b2 = y;
}

static inline int bucket_free_slot(const fdb_bucket *b) {
    for (int w = 0; w < WAYS; w++)
        if (!(b->e[w].tag & TAG_PRESENT)) return w;
    return -1;
}

/* Which ways of a bucket hold the key, as a bit mask, computed without a branch: with
 * random keys the matching way is random, and a mispredicted branch per lookup would
 * cost more than the whole compare. */
static inline uint32_t bucket_match(const fdb_bucket *b, uint64_t key, uint16_t tm) {
    uint32_t m = 0;
    for (int w = 0; w < WAYS; w++)
        m |= (uint32_t)((b->e[w].key == key) & ((b->e[w].tag & TAG_MATCH) == tm)) << w;
    return m;
}

static inline int bucket_find(const fdb_bucket *b, uint64_t key, uint16_t tm) {
    const uint32_t m = bucket_match(b, key, tm);
    return m ? __builtin_ctz(m) : -1;
}

/* The VTEP of the matching way, or VFP_FDB_NO_VTEP (all ones) when m == 0: then way 0
 * is read and ORed away. Arithmetic, not `m ? v : VFP_FDB_NO_VTEP`, which gcc compiles
 * to a branch: it mispredicts on every key that lives in its secondary (a quarter of
 * them), and in a table bigger than the caches it resolves only when the bucket's line
 * arrives, so each mispredict also throws away the loads issued after it. */
static inline uint16_t match_vtep(const fdb_bucket *b, uint32_t m) {
    return (uint16_t)(b->e[__builtin_ctz(m | 1u << WAYS) & (WAYS - 1)].vtep | (0u - (uint32_t)(m == 0)));
}

/* A key and where it may live: what every single-key operation starts from. */
typedef struct fdb_loc {
    uint64_t key;
    uint16_t tm;
    uint32_t b1, b2;
} fdb_loc;

static inline fdb_loc locate(const vfp_fdb *f, uint32_t vni, const uint8_t *mac) {
    fdb_loc l = {make_key(vni, mac), make_tag(vni), 0, 0};
    buckets_of(f, key_hash(f, l.key, l.tm), &l.b1, &l.b2);
    return l;
}

static fdb_entry *fdb_find(const vfp_fdb *f, uint64_t key, uint16_t tm, uint32_t b1, uint32_t b2) {
    int w = bucket_find(&f->buckets[b1], key, tm);
    if (w >= 0) return &f->buckets[b1].e[w];
    w = bucket_find(&f->buckets[b2], key, tm);
    return w >= 0 ? &f->buckets[b2].e[w] : NULL;
}

static int norm_addr(vfp_addr *out, const vfp_addr *in) {
    if (!in || (in->family != 4 && in->family != 6)) return -EINVAL;
    memset(out, 0, sizeof *out);
    out->family = in->family;
    memcpy(out->bytes, in->bytes, in->family == 4 ? 4 : 16);
    return 0;
}


/* Backward-shift deletion in a linear-probing table: after emptying slot i, the entry at
 * j (home k) may stay only if k lies cyclically in (i, j]; otherwise it moves to i. */
static inline int probe_stays(uint32_t i, uint32_t j, uint32_t k) {
    return i <= j ? (i < k && k <= j) : (i < k || k <= j);
}

/* ------------------------------------------------------------------ VTEP table */

static inline uint32_t vtep_home(const vfp_fdb *f, const vfp_addr *a) {
    uint64_t x, y;
    memcpy(&x, a->bytes, 8);
    memcpy(&y, a->bytes + 8, 8);
    return (uint32_t)vfp_mix64(x ^ vfp_mix64(y ^ a->family)) & f->vtep_mask;
}

/* Takes a reference on the VTEP for a (normalised), adding it when new. NO_VTEP when
 * the VTEP table is full. */
static uint16_t vtep_acquire(vfp_fdb *f, const vfp_addr *a) {
    uint32_t i = vtep_home(f, a);
    for (;; i = (i + 1) & f->vtep_mask) {
        uint16_t v = f->vtep_slots[i];
        if (v == VFP_FDB_NO_VTEP) break;
        if (vfp_addr__eq(&f->vteps[v], a)) {
            f->vtep_refs[v]++;
            return v;
        }
    }
    if (f->vtep_count == f->vtep_cap) return VFP_FDB_NO_VTEP;
    uint16_t idx = f->vtep_nfree ? f->vtep_free[--f->vtep_nfree] : (uint16_t)f->vtep_next++;
    f->vteps[idx] = *a;
    f->vtep_refs[idx] = 1;
    f->vtep_slots[i] = idx;
    f->vtep_count++;
    return idx;
}

static void vtep_release(vfp_fdb *f, uint16_t idx) {
    if (--f->vtep_refs[idx]) return;
    uint32_t i = vtep_home(f, &f->vteps[idx]);
    while (f->vtep_slots[i] != idx) i = (i + 1) & f->vtep_mask;
    /* Backward-shift deletion: no tombstones, so probes stay as short as at insert. */
    f->vtep_slots[i] = VFP_FDB_NO_VTEP;
    for (uint32_t j = (i + 1) & f->vtep_mask; f->vtep_slots[j] != VFP_FDB_NO_VTEP;
         j = (j + 1) & f->vtep_mask) {
        if (!probe_stays(i, j, vtep_home(f, &f->vteps[f->vtep_slots[j]]))) {
            f->vtep_slots[i] = f->vtep_slots[j];
            f->vtep_slots[j] = VFP_FDB_NO_VTEP;
            i = j;
        }
    }
    memset(&f->vteps[idx], 0, sizeof f->vteps[idx]);
    f->vtep_free[f->vtep_nfree++] = idx;
    f->vtep_count--;
}

/* ------------------------------------------------------------------ create / destroy */

int vfp_fdb__create(vfp_fdb **out, uint32_t capacity, const vfp_alloc *a) {
    if (!out || !a || !a->alloc || !a->free) return -EINVAL;
    if (capacity == 0 || capacity > CAPACITY_MAX) return -EINVAL;
    *out = NULL;
    vfp_fdb *f = (vfp_fdb *)a->alloc(a->ctx, sizeof *f, VFP_CACHE_LINE);
    if (!f) return -ENOMEM;
    memset(f, 0, sizeof *f);
    f->a = *a;
    f->mem = sizeof *f;
    f->capacity = capacity;

    uint64_t slots = ((uint64_t)capacity * SLOTS_PER_10_ENTRIES + 9) / 10;
    uint32_t nb = (uint32_t)((slots + WAYS - 1) / WAYS);
    f->n_buckets = nb < 2 ? 2 : nb;
    f->vtep_cap = capacity + 1024u < VFP_FDB_MAX_VTEPS ? capacity + 1024u : VFP_FDB_MAX_VTEPS;
    uint32_t vslots = 16;
    while (vslots < 2 * f->vtep_cap) vslots <<= 1;
    f->vtep_mask = vslots - 1;

    f->buckets = (fdb_bucket *)fdb_alloc(f, (size_t)f->n_buckets * sizeof(fdb_bucket), VFP_CACHE_LINE);
    f->vteps = (vfp_addr *)fdb_alloc(f, (size_t)f->vtep_cap * sizeof(vfp_addr), 8);
    f->vtep_refs = (uint32_t *)fdb_alloc(f, (size_t)f->vtep_cap * sizeof(uint32_t), 8);
    f->vtep_free = (uint16_t *)fdb_alloc(f, (size_t)f->vtep_cap * sizeof(uint16_t), 8);
    f->vtep_slots = (uint16_t *)fdb_alloc(f, (size_t)vslots * sizeof(uint16_t), VFP_CACHE_LINE);
    f->bfs = (bfs_node *)fdb_alloc(f, BFS_MAX * sizeof(bfs_node), 8);
    uint32_t hb = 6;
    while (hb < HINT_BITS_MAX && (1u << hb) < capacity) hb++;
    f->n_hints = 1u << hb;
    f->hint_shift = 64 - hb;
    f->hints = (fdb_hint *)fdb_alloc(f, (size_t)f->n_hints * sizeof(fdb_hint), VFP_CACHE_LINE);
    if (!f->buckets || !f->vteps || !f->vtep_refs || !f->vtep_free || !f->vtep_slots || !f->bfs || !f->hints) {
        vfp_fdb__destroy(f);
        return -ENOMEM;
    }
    /* The allocator zeroes, which makes every bucket empty; the VTEP slots use 0xffff. */
    memset(f->vtep_slots, 0xff, (size_t)vslots * sizeof(uint16_t));
    /* A per-table seed from where the table landed (ASLR): the core may not make
     * syscalls, and this is enough that learned MACs cannot be chosen to collide. */
    f->seed = vfp_mix64((uint64_t)(uintptr_t)f ^ vfp_mix64((uint64_t)(uintptr_t)f->buckets));
    *out = f;
    return 0;
}

void vfp_fdb__destroy(vfp_fdb *f) {
    if (!f) return;
    if (f->flood) {
        for (uint32_t i = 0; i <= f->flood_mask; i++)
            if (f->flood[i].vni1) fdb_free(f, f->flood[i].idx, f->flood[i].cap * sizeof(uint16_t));
        fdb_free(f, f->flood, (size_t)(f->flood_mask + 1) * sizeof(fdb_flood));
    }
    if (f->vc) fdb_free(f, f->vc, VC_SLOTS * sizeof(vni_count));
    fdb_free(f, f->hints, (size_t)f->n_hints * sizeof(fdb_hint));
    fdb_free(f, f->bfs, BFS_MAX * sizeof(bfs_node));
    fdb_free(f, f->vtep_slots, (size_t)(f->vtep_mask + 1) * sizeof(uint16_t));
    fdb_free(f, f->vtep_free, (size_t)f->vtep_cap * sizeof(uint16_t));
    fdb_free(f, f->vtep_refs, (size_t)f->vtep_cap * sizeof(uint32_t));
    fdb_free(f, f->vteps, (size_t)f->vtep_cap * sizeof(vfp_addr));
    fdb_free(f, f->buckets, (size_t)f->n_buckets * sizeof(fdb_bucket));
    vfp_alloc a = f->a;
    a.free(a.ctx, f, sizeof *f);
}

uint32_t vfp_fdb__version(const vfp_fdb *f) { return f->version; }
uint32_t vfp_fdb__count(const vfp_fdb *f) { return f->count; }
uint32_t vfp_fdb__capacity(const vfp_fdb *f) { return f->capacity; }
uint32_t vfp_fdb__slots(const vfp_fdb *f) { return f->n_buckets * WAYS; }
size_t vfp_fdb__mem_bytes(const vfp_fdb *f) { return f->mem; }
uint32_t vfp_fdb__vtep_count(const vfp_fdb *f) { return f->vtep_count; }

const vfp_addr *vfp_fdb__vtep(const vfp_fdb *f, uint16_t idx) {
    return idx < f->vtep_next && f->vtep_refs[idx] ? &f->vteps[idx] : NULL;
}

/* ------------------------------------------------------------------ insert */

static inline int on_path(const bfs_node *q, uint32_t k, uint32_t bucket) {
    for (; k != BFS_ROOT; k = q[k].parent)
        if (q[k].bucket == bucket) return 1;
    return 0;
}

/* Places a new entry (its key absent) in b1 or b2, displacing others along the
 * shortest path breadth-first search finds. Nothing moves until a whole path to a
 * free slot is known; -ENOSPC otherwise, with the table untouched. */
static int fdb_insert(vfp_fdb *f, uint32_t b1, uint32_t b2, const fdb_entry *ne) {
    fdb_bucket *B = f->buckets;
    for (int k = 0; k < 2; k++) {
        fdb_bucket *bk = &B[k ? b2 : b1];
        const int w = bucket_free_slot(bk);
        if (w >= 0) {
            bk->e[w] = *ne;
            f->count++;
            f->version++;
            return 0;
        }
    }

    bfs_node *q = f->bfs;
    uint32_t head = 0, tail = 0;
    q[tail++] = (bfs_node){b1, BFS_ROOT, 0};
    q[tail++] = (bfs_node){b2, BFS_ROOT, 0};
    while (head < tail) {
        const uint32_t ni = head++;
        const uint32_t nb = q[ni].bucket;
        for (int s = 0; s < WAYS; s++) {
            const fdb_entry *e = &B[nb].e[s];
            uint32_t x, y;
            buckets_of(f, key_hash(f, e->key, e->tag), &x, &y);
            const uint32_t alt = nb == x ? y : x;
            /* A bucket already on this path only leads back the way we came, so skip
             * it and spend the node budget on new buckets. (Correctness does not rest
             * on this: BFS returns a shortest path, which never uses one slot twice,
             * so each move below reads an entry before anything overwrites it.) */
            if (on_path(q, ni, alt)) continue;
            const int fw = bucket_free_slot(&B[alt]);
            if (fw >= 0) {
                /* Move from the free end back to the root: each entry is copied to its
                 * new slot before its old slot is overwritten, so a key is findable at
                 * every step (what a concurrent reader will need once epochs exist). */
                uint32_t db = alt, k = ni;
                int dw = fw, sw = s;
                for (;;) {
                    B[db].e[dw] = B[q[k].bucket].e[sw];
                    db = q[k].bucket;
                    dw = sw;
                    if (q[k].parent == BFS_ROOT) break;
                    sw = q[k].slot;
                    k = q[k].parent;
                }
                B[db].e[dw] = *ne;
                f->count++;
                f->version++;
                return 0;
            }
            if (tail < BFS_MAX) q[tail++] = (bfs_node){alt, (uint16_t)ni, (uint8_t)s};
        }
    }
    return -ENOSPC;
}

/* Points e at VTEP a (normalised), taking the new reference before dropping the old. */
static int entry_set_vtep(vfp_fdb *f, fdb_entry *e, const vfp_addr *a) {
    if (vfp_addr__eq(&f->vteps[e->vtep], a)) return 0;
    uint16_t idx = vtep_acquire(f, a);
    if (idx == VFP_FDB_NO_VTEP) return -ENOSPC;
    vtep_release(f, e->vtep);
    e->vtep = idx;
    f->version++;
    return 0;
}

/* The public view of an entry (get, walk). */
static void entry_info(const vfp_fdb *f, const fdb_entry *e, vfp_fdb_entry_info *out) {
    out->vni = entry_vni(e);
    mac_out(e->key, out->mac);
    out->flags = e->tag & TAG_STATIC ? VFP_FDB_STATIC : VFP_FDB_LEARNED;
    out->stamp = e->stamp;
    out->vtep = f->vteps[e->vtep];
}

static inline uint32_t vc_home(uint32_t vni) { return (uint32_t)vfp_mix64(vni) & (VC_SLOTS - 1); }

/* The VNI's slot, or NULL when it has none. */
static vni_count *vc_find(const vfp_fdb *f, uint32_t vni) {
    for (uint32_t i = vc_home(vni);; i = (i + 1) & (VC_SLOTS - 1)) {
        if (f->vc[i].vni1 == vni + 1) return &f->vc[i];
        if (!f->vc[i].vni1) return NULL;
    }
}

/* Room for one more learned entry of the VNI under the limit (its slot, made when new),
 * or NULL. */
static vni_count *vc_room(vfp_fdb *f, uint32_t vni) {
    vni_count *c = vc_find(f, vni);
    if (c) return c->n < f->vni_limit ? c : NULL;
    if (f->vc_used >= VC_MAX_USED || f->vni_limit == 0) return NULL;
    uint32_t i = vc_home(vni);
    while (f->vc[i].vni1) i = (i + 1) & (VC_SLOTS - 1);
    f->vc[i].vni1 = vni + 1;
    f->vc[i].n = 0;
    f->vc_used++;
    return &f->vc[i];
}

/* Gives a VNI's slot back (backward shift: the entries after it move up where their
 * probe allows, so no search stops early at the hole). */
static void vc_free(vfp_fdb *f, vni_count *c) {
    uint32_t i = (uint32_t)(c - f->vc);
    for (uint32_t j = (i + 1) & (VC_SLOTS - 1); f->vc[j].vni1; j = (j + 1) & (VC_SLOTS - 1)) {
        const uint32_t h = vc_home(f->vc[j].vni1 - 1);
        /* j's entry may fill the hole at i unless its home lies cyclically in (i, j]. */
        if (i <= j ? (h > i && h <= j) : (h > i || h <= j)) continue;
        f->vc[i] = f->vc[j];
        i = j;
    }
    f->vc[i].vni1 = 0;
    f->vc[i].n = 0;
    f->vc_used--;
}

/* One learned entry of the VNI fewer; a VNI left with none gives its slot back. */
static void vc_drop(vfp_fdb *f, uint32_t vni) {
    vni_count *c = vc_find(f, vni);
    if (c && !--c->n) vc_free(f, c);
}

static void entry_remove(vfp_fdb *f, fdb_entry *e) {
    if (f->vc && (e->tag & TAG_LEARNED)) vc_drop(f, entry_vni(e));
    vtep_release(f, e->vtep);
    memset(e, 0, sizeof *e);
    f->count--;
    f->version++;
}

/* ------------------------------------------------------------------ control path */

int vfp_fdb__add_static(vfp_fdb *f, uint32_t vni, const uint8_t mac[6], const vfp_addr *vtep) {
    vfp_addr a;
    if (!f || !mac || vni > VNI_MAX || norm_addr(&a, vtep)) return -EINVAL;
    if (mac[0] & 1) return -EINVAL; /* group destinations always flood (§5) */
    const fdb_loc l = locate(f, vni, mac);
    fdb_entry *e = fdb_find(f, l.key, l.tm, l.b1, l.b2);
    if (e) {
        if (entry_set_vtep(f, e, &a)) return -ENOSPC;
        if (f->vc && (e->tag & TAG_LEARNED)) vc_drop(f, vni);
        e->tag = (uint16_t)(l.tm | TAG_STATIC);
        e->stamp = 0;
        return 0;
    }
    uint16_t idx = vtep_acquire(f, &a);
    if (idx == VFP_FDB_NO_VTEP) return -ENOSPC;
    fdb_entry ne = {l.key, (uint16_t)(l.tm | TAG_STATIC), idx, 0};
    int r = fdb_insert(f, l.b1, l.b2, &ne);
    if (r < 0) vtep_release(f, idx);
    return r;
}

int vfp_fdb__del(vfp_fdb *f, uint32_t vni, const uint8_t mac[6]) {
    if (!f || !mac || vni > VNI_MAX) return -EINVAL;
    const fdb_loc l = locate(f, vni, mac);
    fdb_entry *e = fdb_find(f, l.key, l.tm, l.b1, l.b2);
    if (!e) return -ENOENT;
    entry_remove(f, e);
    return 0;
}

/* learn with the key already hashed; a is normalised. */
__attribute__((noinline)) static int learn_one(vfp_fdb *f, uint64_t key, uint16_t tm, uint32_t b1, uint32_t b2,
                     const vfp_addr *a, uint32_t now) {
    fdb_entry *e = fdb_find(f, key, tm, b1, b2);
    if (VFP_LIKELY(e != NULL)) {
        if (e->tag & TAG_STATIC) return VFP_LEARN_STATIC;
        if (VFP_LIKELY(vfp_addr__eq(&f->vteps[e->vtep], a))) {
            e->stamp = now;
            return VFP_LEARN_REFRESH;
        }
        if (entry_set_vtep(f, e, a)) return -ENOSPC;
        e->stamp = now;
        return VFP_LEARN_MOVED;
    }
    /* A new MAC: at most capacity entries (the slots are rounded up past it). */
    if (VFP_UNLIKELY(f->count >= f->capacity)) return -ENOSPC;
    vni_count *vc = NULL;
    if (VFP_UNLIKELY(f->vc != NULL)) {
        vc = vc_room(f, (uint32_t)(key >> 48) | (uint32_t)(tm & TAG_VNI_HI) << 16);
        if (!vc) return -EDQUOT;
    }
    uint16_t idx = vtep_acquire(f, a);
    if (idx == VFP_FDB_NO_VTEP) {
        if (vc && !vc->n) vc_free(f, vc);
        return -ENOSPC;
    }
    fdb_entry ne = {key, (uint16_t)(tm | TAG_LEARNED), idx, now};
    int r = fdb_insert(f, b1, b2, &ne);
    if (r < 0) {
        vtep_release(f, idx);
        if (vc && !vc->n) vc_free(f, vc);
        return r;
    }
    if (vc) vc->n++;
    return VFP_LEARN_NEW;
}

int vfp_fdb__learn(vfp_fdb *f, uint32_t vni, const uint8_t mac[6], const vfp_addr *vtep,
                   uint32_t now) {
    vfp_addr a;
    if (!f || !mac || vni > VNI_MAX || norm_addr(&a, vtep)) return -EINVAL;
    if (!vfp_mac__learnable(mac)) return VFP_LEARN_IGNORED;
    const fdb_loc l = locate(f, vni, mac);
    return learn_one(f, l.key, l.tm, l.b1, l.b2, &a, now);
}

static int count_learned(const vfp_fdb_entry_info *e, void *arg) {
    vfp_fdb *f = (vfp_fdb *)arg;
    if (e->flags & VFP_FDB_LEARNED) {
        vni_count *c = vc_find(f, e->vni);
        if (!c) {
            uint32_t i = vc_home(e->vni);
            while (f->vc[i].vni1) i = (i + 1) & (VC_SLOTS - 1);
            c = &f->vc[i];
            c->vni1 = e->vni + 1;
            f->vc_used++;
        }
        c->n++;
    }
    return f->vc_used >= VC_SLOTS - 1; /* a full table stops the walk (never, in use) */
}

int vfp_fdb__set_vni_limit(vfp_fdb *f, uint32_t per_vni) {
    if (!f) return -EINVAL;
    if (per_vni == 0) {
        if (f->vc) fdb_free(f, f->vc, VC_SLOTS * sizeof(vni_count));
        f->vc = NULL;
        f->vc_used = 0;
        f->vni_limit = 0;
        return 0;
    }
    if (!f->vc) {
        f->vc = (vni_count *)fdb_alloc(f, VC_SLOTS * sizeof(vni_count), VFP_CACHE_LINE);
        if (!f->vc) return -ENOMEM;
        f->vc_used = 0;
        /* What the table already learned counts (none, as the data plane sets it). */
        vfp_fdb__walk(f, count_learned, f);
    }
    f->vni_limit = per_vni;
    return 0;
}

uint32_t vfp_fdb__vni_limit(const vfp_fdb *f) { return f ? f->vni_limit : 0; }

uint32_t vfp_fdb__learned_in(const vfp_fdb *f, uint32_t vni) {
    if (!f || !f->vc || vni > VNI_MAX) return 0;
    const vni_count *c = vc_find(f, vni);
    return c ? c->n : 0;
}

void vfp_fdb__set_learn_hook(vfp_fdb *f, vfp_learn_hook fn, void *arg) {
    if (!f) return;
    f->hook = fn;
    f->hook_arg = arg;
}

static void fire_hook(const vfp_fdb *f, uint32_t vni, const uint8_t *mac, uint8_t family, const uint8_t *vtep, int r) {
    vfp_addr a;
    a.family = family;
    memcpy(a.bytes, vtep, 16);
    f->hook(f->hook_arg, vni, mac, &a, r);
}

static inline void count_learn(vfp_stats *st, int r) {
    if (!st) return;
    switch (r) {
    case VFP_LEARN_NEW: st->learn_new++; break;
    case VFP_LEARN_REFRESH: st->learn_refresh++; break;
    case VFP_LEARN_MOVED: st->learn_moved++; break;
    case -ENOSPC: st->learn_full++; break;
    case -EDQUOT: st->learn_limited++; break;
    default: break;
    }
}

uint16_t vfp_fdb__learn_bulk(vfp_fdb *f, const uint32_t *vnis, const uint8_t *const *macs,
                             const uint8_t *families, const uint8_t *const *vteps, uint16_t n,
                             uint32_t now, vfp_stats *st) {
    uint64_t keys[VFP_MAX_BURST];
    uint32_t b1[VFP_MAX_BURST], b2[VFP_MAX_BURST], hs[VFP_MAX_BURST];
    fdb_bucket *B = f->buckets;
    fdb_hint *H = f->hints;
    if (n > VFP_MAX_BURST) n = VFP_MAX_BURST;
    for (uint16_t i = 0; i < n; i++) {
        keys[i] = make_key(vnis[i], macs[i]);
        const fdb_hint *h = &H[hint_of(keys[i], f->hint_shift)];
        if (h->key == keys[i] && h->tm == make_tag(vnis[i])) {
            /* Where it was last time: that entry's line only, no hash. */
            hs[i] = h->slot;
            VFP_PREFETCHW(&B[h->slot / WAYS]);
            continue;
        }
        hs[i] = NO_SLOT;
        buckets_of(f, key_hash(f, keys[i], make_tag(vnis[i])), &b1[i], &b2[i]);
        /* Both buckets, as lookup_bulk does: a quarter of the entries live in their
         * secondary, and fetching it only after the primary missed is a second memory
         * round trip for the burst when the table is bigger than the caches. */
        VFP_PREFETCHW(&B[b1[i]]);
        VFP_PREFETCHW(&B[b2[i]]);
    }
    /* One-entry "last" cache: a burst is often one flow, and repeating its learn
     * would only rewrite the same stamp. */
    int last = -1, last_r = 0;
    uint64_t refreshed = 0;
    uint16_t learned = 0; /* entries now learned at their VTEP, stamped now */
    for (uint16_t i = 0; i < n; i++) {
        if (!vfp_mac__learnable(macs[i])) continue; /* group or zero source MAC: nothing to learn */
        const uint16_t tm = make_tag(vnis[i]);
        if (last >= 0 && keys[i] == keys[last] && tm == make_tag(vnis[last]) &&
            families[i] == families[last] && memcmp(vteps[i], vteps[last], 16) == 0) {
            count_learn(st, last_r == VFP_LEARN_STATIC ? VFP_LEARN_STATIC : VFP_LEARN_REFRESH);
            learned += last_r != VFP_LEARN_STATIC;
            continue;
        }
        /* The common case inline: a learned entry that already points at this VTEP,
         * compared straight from the packet (decap zero-pads IPv4 addresses). */
        fdb_entry *e = NULL;
        int hashed = hs[i] == NO_SLOT;
        if (!hashed) {
            fdb_entry *c = &B[hs[i] / WAYS].e[hs[i] % WAYS];
            if (c->key == keys[i] && (c->tag & TAG_MATCH) == tm) {
                e = c;
            } else { /* moved or gone */
                buckets_of(f, key_hash(f, keys[i], tm), &b1[i], &b2[i]);
                hashed = 1;
            }
        }
        if (!e) {
            fdb_bucket *bk = &B[b1[i]];
            uint32_t m = bucket_match(bk, keys[i], tm);
            if (!m) {
                bk = &B[b2[i]];
                m = bucket_match(bk, keys[i], tm);
            }
            if (m) {
                const uint32_t way = (uint32_t)__builtin_ctz(m);
                e = &bk->e[way];
                fdb_hint *h = &H[hint_of(keys[i], f->hint_shift)];
                h->key = keys[i];
                h->tm = tm;
                h->slot = (uint32_t)(bk - B) * WAYS + way;
            }
        }
        if (VFP_LIKELY(e != NULL)) {
            const vfp_addr *cur = &f->vteps[e->vtep];
            if (VFP_LIKELY((e->tag & TAG_LEARNED) && cur->family == families[i] &&
                           memcmp(cur->bytes, vteps[i], 16) == 0)) {
                /* Skip the store when unchanged: a line that is only read can stay
                 * shared once several workers learn into one table. */
                if (e->stamp != now) {
                    e->stamp = now;
                    if (VFP_UNLIKELY(f->hook != NULL))
                        fire_hook(f, vnis[i], macs[i], families[i], vteps[i], VFP_LEARN_REFRESH);
                }
                refreshed++;
                learned++;
                last = i;
                last_r = VFP_LEARN_REFRESH;
                continue;
            }
        }
        if (!hashed) buckets_of(f, key_hash(f, keys[i], tm), &b1[i], &b2[i]);
        vfp_addr a;
        a.family = families[i];
        memcpy(a.bytes, vteps[i], 16);
        int r = learn_one(f, keys[i], tm, b1[i], b2[i], &a, now);
        count_learn(st, r);
        if (VFP_UNLIKELY(f->hook != NULL) && (r == VFP_LEARN_NEW || r == VFP_LEARN_MOVED))
            f->hook(f->hook_arg, vnis[i], macs[i], &a, r);
        if (r > 0) {
            last = i;
            last_r = r;
            learned += r != VFP_LEARN_STATIC;
        } else {
            last = -1;
        }
    }
    if (st) st->learn_refresh += refreshed;
    return learned;
}

int vfp_fdb__get(const vfp_fdb *f, uint32_t vni, const uint8_t mac[6], vfp_fdb_entry_info *out) {
    if (!f || !mac || vni > VNI_MAX) return -EINVAL;
    const fdb_loc l = locate(f, vni, mac);
    const fdb_entry *e = fdb_find(f, l.key, l.tm, l.b1, l.b2);
    if (!e) return -ENOENT;
    if (out) entry_info(f, e, out);
    return 0;
}

/* ------------------------------------------------------------------ bulk lookup */

void vfp_fdb__lookup_bulk(const vfp_fdb *f, const uint32_t *vnis, const uint8_t *const *macs,
                          uint16_t n, uint16_t *vtep_idx) {
    uint64_t keys[VFP_MAX_BURST];
    uint16_t tms[VFP_MAX_BURST];
    uint32_t b1[VFP_MAX_BURST], b2[VFP_MAX_BURST];
    uint16_t miss[VFP_MAX_BURST];
    const fdb_bucket *B = f->buckets;
    if (n > VFP_MAX_BURST) n = VFP_MAX_BURST;

    /* Stage 1: hash every key and prefetch both its buckets, so the cache misses
     * overlap one another instead of queueing behind each compare. The secondary is
     * fetched with the primary rather than after a primary miss: about a quarter of the
     * keys live there at 90% load, so a burst of 32 almost always has one, and waiting
     * for it was a second memory round trip per burst (on a 1M-entry table, ~1.5 ns a
     * lookup more on a quiet host and ~3 ns when neighbours load the memory). */
    for (uint16_t i = 0; i < n; i++) {
        keys[i] = make_key(vnis[i], macs[i]);
        tms[i] = make_tag(vnis[i]);
        buckets_of(f, key_hash(f, keys[i], tms[i]), &b1[i], &b2[i]);
        VFP_PREFETCH(&B[b1[i]]);
        VFP_PREFETCH(&B[b2[i]]);
    }
    /* Stage 2: compare primaries; a key not there goes on the miss list. */
    uint16_t nm = 0;
    for (uint16_t i = 0; i < n; i++) {
        const uint32_t m = bucket_match(&B[b1[i]], keys[i], tms[i]);
        vtep_idx[i] = match_vtep(&B[b1[i]], m);
        miss[nm] = i;
        nm = (uint16_t)(nm + (m == 0));
    }
    /* Stage 3: compare secondaries. */
    for (uint16_t j = 0; j < nm; j++) {
        const uint16_t i = miss[j];
        vtep_idx[i] = match_vtep(&B[b2[i]], bucket_match(&B[b2[i]], keys[i], tms[i]));
    }
}

/* ------------------------------------------------------------------ ageing */

uint32_t vfp_fdb__age(vfp_fdb *f, uint32_t now, uint32_t max_age, uint32_t *cursor,
                      uint32_t budget) {
    uint32_t c = *cursor < f->n_buckets ? *cursor : 0;
    uint32_t removed = 0;
    if (budget > f->n_buckets) budget = f->n_buckets;
    for (uint32_t i = 0; i < budget; i++) {
        fdb_bucket *b = &f->buckets[c];
        for (int w = 0; w < WAYS; w++) {
            fdb_entry *e = &b->e[w];
            /* Only a stamp in the past can be too old: a clock that stepped back
             * must not age out everything learned since. */
            if ((e->tag & TAG_LEARNED) && now > e->stamp && now - e->stamp > max_age) {
                entry_remove(f, e);
                removed++;
            }
        }
        c = c + 1 == f->n_buckets ? 0 : c + 1;
    }
    *cursor = c;
    return removed;
}

/* ------------------------------------------------------------------ flood lists */

static inline uint32_t flood_home(uint32_t vni, uint32_t mask) {
    return (uint32_t)vfp_mix64(vni) & mask;
}

static fdb_flood *flood_find(const vfp_fdb *f, uint32_t vni) {
    if (!f->flood) return NULL;
    for (uint32_t i = flood_home(vni, f->flood_mask);; i = (i + 1) & f->flood_mask) {
        if (f->flood[i].vni1 == vni + 1) return &f->flood[i];
        if (!f->flood[i].vni1) return NULL;
    }
}

static fdb_flood *flood_slot_for(vfp_fdb *f, uint32_t vni) {
    uint32_t i = flood_home(vni, f->flood_mask);
    while (f->flood[i].vni1 && f->flood[i].vni1 != vni + 1) i = (i + 1) & f->flood_mask;
    return &f->flood[i];
}

/* Makes sure one more VNI fits at ≤ 3/4 load; the only step of flood_set that can fail
 * with -ENOMEM, and it runs before anything visible changes. */
static int flood_reserve(vfp_fdb *f) {
    if (f->flood && (f->flood_count + 1) * 4 <= (f->flood_mask + 1) * 3) return 0;
    uint32_t slots = f->flood ? (f->flood_mask + 1) * 2 : 16;
    fdb_flood *nt = (fdb_flood *)fdb_alloc(f, slots * sizeof(fdb_flood), 8);
    if (!nt) return -ENOMEM;
    fdb_flood *old = f->flood;
    uint32_t old_slots = old ? f->flood_mask + 1 : 0;
    f->flood = nt;
    f->flood_mask = slots - 1;
    for (uint32_t i = 0; i < old_slots; i++)
        if (old[i].vni1) *flood_slot_for(f, old[i].vni1 - 1) = old[i];
    fdb_free(f, old, old_slots * sizeof(fdb_flood));
    return 0;
}

static void flood_erase(vfp_fdb *f, fdb_flood *e) {
    uint32_t i = (uint32_t)(e - f->flood);
    f->flood[i] = (fdb_flood){0, 0, 0, NULL};
    for (uint32_t j = (i + 1) & f->flood_mask; f->flood[j].vni1; j = (j + 1) & f->flood_mask) {
        if (!probe_stays(i, j, flood_home(f->flood[j].vni1 - 1, f->flood_mask))) {
            f->flood[i] = f->flood[j];
            f->flood[j] = (fdb_flood){0, 0, 0, NULL};
            i = j;
        }
    }
    f->flood_count--;
}

int vfp_fdb__flood_set(vfp_fdb *f, uint32_t vni, const vfp_addr *vteps, uint32_t n) {
    if (!f || vni > VNI_MAX || (n && !vteps)) return -EINVAL;
    vfp_addr a;
    for (uint32_t i = 0; i < n; i++)
        if (norm_addr(&a, &vteps[i])) return -EINVAL;
    fdb_flood *cur = flood_find(f, vni);
    if (n == 0) {
        if (cur) {
            for (uint32_t i = 0; i < cur->n; i++) vtep_release(f, cur->idx[i]);
            fdb_free(f, cur->idx, cur->cap * sizeof(uint16_t));
            flood_erase(f, cur);
        }
        return 0;
    }
    if (n > f->vtep_cap) return -ENOSPC;
    uint16_t *arr = (uint16_t *)fdb_alloc(f, n * sizeof(uint16_t), 8);
    if (!arr) return -ENOMEM;
    if (!cur && flood_reserve(f)) {
        fdb_free(f, arr, n * sizeof(uint16_t));
        return -ENOMEM;
    }
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        norm_addr(&a, &vteps[i]);
        uint16_t idx = vtep_acquire(f, &a);
        if (idx == VFP_FDB_NO_VTEP) {
            while (m) vtep_release(f, arr[--m]);
            fdb_free(f, arr, n * sizeof(uint16_t));
            return -ENOSPC;
        }
        /* A VTEP listed twice would get every flooded frame twice; keep the first. */
        int dup = 0;
        for (uint32_t j = 0; j < m && !dup; j++) dup = arr[j] == idx;
        if (dup) vtep_release(f, idx);
        else arr[m++] = idx;
    }
    if (!cur) {
        cur = flood_slot_for(f, vni);
        *cur = (fdb_flood){vni + 1, 0, 0, NULL};
        f->flood_count++;
    }
    for (uint32_t i = 0; i < cur->n; i++) vtep_release(f, cur->idx[i]);
    fdb_free(f, cur->idx, cur->cap * sizeof(uint16_t));
    cur->idx = arr;
    cur->n = m;
    cur->cap = n;
    return 0;
}

void vfp_fdb__flood_get(const vfp_fdb *f, uint32_t vni, const uint16_t **idx, uint32_t *n) {
    const fdb_flood *e = vni <= VNI_MAX ? flood_find(f, vni) : NULL;
    *idx = e ? e->idx : NULL;
    *n = e ? e->n : 0;
}

int vfp_fdb__resolve(const vfp_fdb *f, uint32_t vni, const uint8_t dst_mac[6],
                     uint16_t *vtep_idx, const uint16_t **flood, uint32_t *n_flood) {
    if (!(dst_mac[0] & 1) && vni <= VNI_MAX) {
        const fdb_loc l = locate(f, vni, dst_mac);
        const fdb_entry *e = fdb_find(f, l.key, l.tm, l.b1, l.b2);
        if (e) {
            *vtep_idx = e->vtep;
            *flood = NULL;
            *n_flood = 0;
            return 1;
        }
    }
    *vtep_idx = VFP_FDB_NO_VTEP;
    vfp_fdb__flood_get(f, vni, flood, n_flood);
    return 0;
}

void vfp_fdb__walk(const vfp_fdb *f, int (*fn)(const vfp_fdb_entry_info *e, void *arg), void *arg) {
    for (uint32_t b = 0; b < f->n_buckets; b++) {
        for (int w = 0; w < WAYS; w++) {
            const fdb_entry *e = &f->buckets[b].e[w];
            if (!(e->tag & TAG_PRESENT)) continue;
            vfp_fdb_entry_info info;
            entry_info(f, e, &info);
            if (fn(&info, arg)) return;
        }
    }
}

/* Placement statistics for benchmarks and tests: how many entries sit in their
 * primary bucket (a lookup that finds them touches one cache line). */
uint32_t vfp_fdb__primary_count(const vfp_fdb *f) {
    uint32_t k = 0;
    for (uint32_t b = 0; b < f->n_buckets; b++) {
        for (int w = 0; w < WAYS; w++) {
            const fdb_entry *e = &f->buckets[b].e[w];
            if (!(e->tag & TAG_PRESENT)) continue;
            uint32_t x, y;
            buckets_of(f, key_hash(f, e->key, e->tag), &x, &y);
            k += x == b;
        }
    }
    return k;
}
