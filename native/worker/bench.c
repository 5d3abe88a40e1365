/* The benchmark loops: a worker thread builds its ports and tables itself (so memory is
 * first touched, and cached, where it runs), runs a warmup, then times the loop. Not
 * core code: threads, affinity and clocks live here. */
#include "worker/bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "core/fdb.h"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Runs fn(arg) on a new thread, pinned when cpu ≥ 0; returns fn's result or -errno. */
static int run_on_thread(int cpu, void *(*fn)(void *), void *arg, int *rc) {
    pthread_attr_t attr;
    pthread_t th;
    int e = pthread_attr_init(&attr);
    if (e) return -e;
    if (cpu >= 0) {
        if (cpu >= CPU_SETSIZE) {
            pthread_attr_destroy(&attr);
            return -EINVAL;
        }
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        e = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        if (e) {
            pthread_attr_destroy(&attr);
            return -e;
        }
    }
    e = pthread_create(&th, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (e) return -e; /* EINVAL here usually means the CPU is not online */
    /* The worker writes *rc and the result struct with plain stores; pthread_join
     * synchronises-with the thread's exit, so they are visible here without atomics. */
    pthread_join(th, NULL);
    return *rc;
}

/* ------------------------------------------------------------------ packet loops */

struct pkt_job {
    int decap;
    const vfp_tunnel_cfg *tc;
    uint32_t vni;
    const vfp_bench_opts *o;
    const vfp_alloc *a;
    vfp_bench_result *r;
    int rc;
};

struct loop {
    vfp_port *gen, *sink;
    vfp_tunnel *t;
    uint32_t vni;
    vfp_decap_ctx *dc;
    uint32_t burst;
    vfp_stats st;
};

static uint64_t loop_run(struct loop *l, uint64_t packets, int decap) {
    vfp_pkt *pk[VFP_MAX_BURST], *out[VFP_MAX_BURST], *drop[VFP_MAX_BURST];
    uint64_t done = 0, ok_total = 0;
    while (done < packets) {
        uint16_t want = (uint16_t)(packets - done < l->burst ? packets - done : l->burst);
        uint16_t n = vfp_port__rx_burst(l->gen, 0, pk, want);
        uint16_t ok = decap ? vfp_vxlan__decap_burst(l->dc, pk, n, &l->st)
                            : vfp_vxlan__encap_burst(l->t, l->vni, pk, n, &l->st);
        if (VFP_LIKELY(ok == n)) {
            uint16_t sent = vfp_port__tx_burst(l->sink, 0, pk, n);
            vfp_port__free_burst(l->gen, pk + sent, (uint16_t)(n - sent));
        } else {
            uint16_t no = 0, nd = 0;
            for (uint16_t i = 0; i < n; i++) {
                if (pk[i]->reason == VFP_OK) out[no++] = pk[i];
                else drop[nd++] = pk[i];
            }
            uint16_t sent = vfp_port__tx_burst(l->sink, 0, out, no);
            vfp_port__free_burst(l->gen, out + sent, (uint16_t)(no - sent));
            vfp_port__free_burst(l->gen, drop, nd);
        }
        done += n;
        ok_total += ok;
        if (VFP_UNLIKELY(n == 0)) break; /* a generator never runs dry; be safe anyway */
    }
    return ok_total;
}

static void *pkt_job_main(void *arg) {
    struct pkt_job *j = (struct pkt_job *)arg;
    const vfp_bench_opts *o = j->o;
    const vfp_alloc *a = j->a;
    struct loop l;
    vfp_tunnel *t = NULL;
    vfp_fdb *fdb = NULL;
    vfp_mem_frame *outer = NULL;
    uint8_t *outer_buf = NULL;
    size_t outer_bytes = 0;
    vfp_decap_ctx *dc = NULL;
    int rc;
    memset(&l, 0, sizeof l);
    l.burst = o->burst;
    l.vni = j->vni;

    t = (vfp_tunnel *)a->alloc(a->ctx, sizeof *t, VFP_CACHE_LINE);
    if (!t) { rc = -ENOMEM; goto out; }
    rc = vfp_tunnel__init(t, j->tc);
    if (rc) goto out;
    l.t = t;

    const vfp_mem_frame *gen_frames = o->frames;
    uint32_t headroom = o->headroom;
    if (j->decap) {
        /* Build the outer frames once with the engine itself: one slot per inner frame
         * with room for the header in front. */
        uint32_t max_len = 0;
        for (uint32_t i = 0; i < o->n_frames; i++)
            if (o->frames[i].len > max_len) max_len = o->frames[i].len;
        size_t slot = (128 + max_len + 63) & ~(size_t)63;
        outer_bytes = (size_t)o->n_frames * slot;
        outer_buf = (uint8_t *)a->alloc(a->ctx, outer_bytes, VFP_CACHE_LINE);
        outer = (vfp_mem_frame *)a->alloc(a->ctx, o->n_frames * sizeof *outer, 8);
        if (!outer_buf || !outer) { rc = -ENOMEM; goto out; }
        for (uint32_t i = 0; i < o->n_frames; i++) {
            vfp_pkt p;
            memset(&p, 0, sizeof p);
            p.data = outer_buf + i * slot + 128;
            p.len = o->frames[i].len;
            p.headroom = 128;
            memcpy(p.data, o->frames[i].bytes, p.len);
            vfp_pkt *pp = &p;
            if (vfp_vxlan__encap_burst(t, j->vni, &pp, 1, NULL) != 1) { rc = -EINVAL; goto out; }
            outer[i].bytes = p.data;
            outer[i].len = p.len;
        }
        gen_frames = outer;
        dc = (vfp_decap_ctx *)a->alloc(a->ctx, sizeof *dc, VFP_CACHE_LINE);
        if (!dc) { rc = -ENOMEM; goto out; }
        memset(dc, 0, sizeof *dc);
        dc->dst_port = j->tc->dst_port;
        dc->now = 1;
        if (o->learn) {
            rc = vfp_fdb__create(&fdb, o->n_frames + 1024, a);
            if (rc) goto out;
            dc->learn_fdb = fdb;
        }
        l.dc = dc;
    }

    /* Ring: enough that a burst never wraps onto itself, and a whole number of
     * passes over the frames (the generator rounds up). */
    rc = vfp_mem_port__create_gen(&l.gen, gen_frames, o->n_frames, o->burst * 2, headroom, a);
    if (rc) goto out;
    rc = vfp_mem_port__create_sink(&l.sink, a);
    if (rc) goto out;

    if (o->warmup) loop_run(&l, o->warmup, j->decap);
    memset(&l.st, 0, sizeof l.st);
    uint64_t rx0 = l.gen->rx_bytes, tx0 = l.sink->tx_bytes;
    if (dc) dc->now = 2; /* timed learning refreshes what warmup created */
    uint64_t t0 = now_ns();
    uint64_t ok = loop_run(&l, o->packets, j->decap);
    uint64_t t1 = now_ns();

    vfp_bench_result *r = j->r;
    memset(r, 0, sizeof *r);
    r->packets = o->packets;
    r->ok = ok;
    r->ns = t1 - t0;
    r->bytes_in = l.gen->rx_bytes - rx0;
    r->bytes_out = l.sink->tx_bytes - tx0;
    r->cpu = sched_getcpu();
    r->stats = l.st;
    rc = 0;
out:
    if (l.gen) vfp_port__close(l.gen);
    if (l.sink) vfp_port__close(l.sink);
    if (fdb) vfp_fdb__destroy(fdb);
    if (dc) a->free(a->ctx, dc, sizeof *dc);
    if (outer) a->free(a->ctx, outer, o->n_frames * sizeof *outer);
    if (outer_buf) a->free(a->ctx, outer_buf, outer_bytes);
    if (t) a->free(a->ctx, t, sizeof *t);
    j->rc = rc;
    return NULL;
}

static int pkt_bench(int decap, const vfp_tunnel_cfg *t, uint32_t vni, const vfp_bench_opts *o,
                     const vfp_alloc *a, vfp_bench_result *r) {
    if (!t || !o || !a || !r || !o->frames || !o->n_frames || vni > 0xffffff) return -EINVAL;
    if (o->burst < 1 || o->burst > VFP_MAX_BURST || o->headroom > 4096) return -EINVAL;
    for (uint32_t i = 0; i < o->n_frames; i++)
        if (!o->frames[i].bytes || o->frames[i].len > 65535) return -EINVAL;
    struct pkt_job j = {decap, t, vni, o, a, r, 0};
    return run_on_thread(o->cpu, pkt_job_main, &j, &j.rc);
}

int vfp_bench__encap(const vfp_tunnel_cfg *t, uint32_t vni, const vfp_bench_opts *o,
                     const vfp_alloc *a, vfp_bench_result *r) {
    return pkt_bench(0, t, vni, o, a, r);
}

int vfp_bench__decap(const vfp_tunnel_cfg *t, uint32_t vni, const vfp_bench_opts *o,
                     const vfp_alloc *a, vfp_bench_result *r) {
    return pkt_bench(1, t, vni, o, a, r);
}

/* ------------------------------------------------------------------ FDB lookups */

/* Key i of the table, computed rather than stored: a stored key array of 1M entries
 * would itself miss the cache on random picks and charge the big table for it. The
 * 32-bit permutation makes MACs distinct, so the E keys are distinct. */
static inline uint32_t perm32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

struct fdb_keygen {
    uint32_t salt;
    uint8_t b1;
};

static inline void fdb_key(const struct fdb_keygen *g, uint32_t i, uint32_t *vni, uint8_t *mac) {
    uint32_t p = perm32(i + g->salt);
    /* 02:b1:p3:p2:p1:p0 — unicast, locally administered; one 8-byte store into the
     * caller's 8-byte slot rather than six byte stores. */
    uint8_t m[8] = {0x02, g->b1, (uint8_t)(p >> 24), (uint8_t)(p >> 16), (uint8_t)(p >> 8), (uint8_t)p, 0, 0};
    memcpy(mac, m, 6);
    *vni = 1 + ((p >> 7) & 0xfff);
}

static inline void fdb_vtep(uint32_t i, uint32_t vteps, vfp_addr *a) {
    uint32_t k = i % vteps;
    memset(a, 0, sizeof *a);
    a->family = 4;
    a->bytes[0] = 10;
    a->bytes[1] = (uint8_t)(k >> 16);
    a->bytes[2] = (uint8_t)(k >> 8);
    a->bytes[3] = (uint8_t)k;
}

static inline uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

struct fdb_job {
    const vfp_bench_fdb_opts *o;
    const vfp_alloc *a;
    vfp_bench_fdb_result *r;
    int rc;
};

/* One timed loop: `count` uniformly random keys in bursts; with do_lookup = 0 only the
 * keys are made, which measures what the loop costs besides the lookups. */
static uint64_t fdb_loop(const vfp_fdb *f, const struct fdb_keygen *g, uint32_t entries,
                         uint64_t count, uint32_t burst, uint64_t *rng, int do_lookup,
                         uint64_t *hits) {
    uint32_t vnis[VFP_MAX_BURST];
    uint8_t macbuf[VFP_MAX_BURST][8];
    const uint8_t *macs[VFP_MAX_BURST];
    uint16_t idx[VFP_MAX_BURST];
    uint64_t h = 0, sink = 0;
    for (uint32_t i = 0; i < burst; i++) macs[i] = macbuf[i];
    for (uint64_t done = 0; done < count;) {
        uint32_t n = count - done < burst ? (uint32_t)(count - done) : burst;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = (uint32_t)(((xorshift(rng) >> 32) * entries) >> 32);
            fdb_key(g, k, &vnis[i], macbuf[i]);
        }
        if (do_lookup) {
            vfp_fdb__lookup_bulk(f, vnis, macs, (uint16_t)n, idx);
            for (uint32_t i = 0; i < n; i++) h += idx[i] != VFP_FDB_NO_VTEP;
        } else {
            /* Consume the keys so the compiler cannot drop their computation. */
            for (uint32_t i = 0; i < n; i++) sink += vnis[i] + macbuf[i][5];
        }
        done += n;
    }
    *hits = do_lookup ? h : sink;
    return count;
}

static void *fdb_job_main(void *arg) {
    struct fdb_job *j = (struct fdb_job *)arg;
    const vfp_bench_fdb_opts *o = j->o;
    vfp_bench_fdb_result *r = j->r;
    vfp_fdb *f = NULL;
    int rc = vfp_fdb__create(&f, o->entries, j->a);
    if (rc) {
        j->rc = rc;
        return NULL;
    }
    uint64_t rng = o->seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    struct fdb_keygen g = {(uint32_t)xorshift(&rng), (uint8_t)xorshift(&rng)};
    memset(r, 0, sizeof *r);

    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < o->entries; i++) {
        uint32_t vni;
        uint8_t mac[6];
        vfp_addr a;
        fdb_key(&g, i, &vni, mac);
        fdb_vtep(i, o->vteps, &a);
        rc = vfp_fdb__add_static(f, vni, mac, &a);
        if (rc) goto out;
    }
    r->insert_ns = now_ns() - t0;
    if (vfp_fdb__count(f) != o->entries) { rc = -EEXIST; goto out; }

    /* Warm the caches and TLB as a steady-state worker would have them. */
    uint64_t h;
    uint64_t warm = o->lookups < 1000000 ? o->lookups : 1000000;
    fdb_loop(f, &g, o->entries, warm, o->burst, &rng, 1, &h);

    t0 = now_ns();
    fdb_loop(f, &g, o->entries, o->lookups, o->burst, &rng, 1, &r->hits);
    r->ns = now_ns() - t0;
    r->lookups = o->lookups;

    t0 = now_ns();
    fdb_loop(f, &g, o->entries, o->lookups, o->burst, &rng, 0, &h);
    r->keygen_ns = now_ns() - t0;

    /* Untimed: the index a lookup returns must name the VTEP the key was added with. */
    for (uint32_t s = 0; s < 65536 && s < o->entries * 4u; s++) {
        uint32_t k = (uint32_t)(((xorshift(&rng) >> 32) * o->entries) >> 32);
        uint32_t vni;
        uint8_t mac[6];
        const uint8_t *mp = mac;
        uint16_t idx;
        vfp_addr want;
        fdb_key(&g, k, &vni, mac);
        fdb_vtep(k, o->vteps, &want);
        vfp_fdb__lookup_bulk(f, &vni, &mp, 1, &idx);
        const vfp_addr *got = vfp_fdb__vtep(f, idx);
        r->verified++;
        if (!got || memcmp(got, &want, sizeof want) != 0) r->wrong++;
    }
    r->mem_bytes = vfp_fdb__mem_bytes(f);
    r->slots = vfp_fdb__slots(f);
    r->primary = vfp_fdb__primary_count(f);
    r->cpu = sched_getcpu();
    rc = 0;
out:
    vfp_fdb__destroy(f);
    j->rc = rc;
    return NULL;
}

int vfp_bench__fdb(const vfp_bench_fdb_opts *o, const vfp_alloc *a, vfp_bench_fdb_result *r) {
    if (!o || !a || !r || o->entries < 1 || o->entries > (1u << 24)) return -EINVAL;
    if (o->burst < 1 || o->burst > VFP_MAX_BURST || o->vteps < 1 || o->vteps > 65535) return -EINVAL;
    struct fdb_job j = {o, a, r, 0};
    return run_on_thread(o->cpu, fdb_job_main, &j, &j.rc);
}
