/* Run-to-completion benchmark loops over memory ports (rx_burst → encap|decap →
 * tx_burst) and an FDB bulk-lookup benchmark, each on its own thread, optionally
 * pinned to one CPU, timed with CLOCK_MONOTONIC. The calling thread waits. */
#ifndef VFP_WORKER_BENCH_H
#define VFP_WORKER_BENCH_H

#include "core/vxlan.h"
#include "io/memory.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vfp_bench_opts {
    const vfp_mem_frame *frames; /* inner frames, replayed in order */
    uint32_t n_frames;
    uint32_t burst;              /* 1..VFP_MAX_BURST */
    uint64_t packets;            /* timed packets */
    uint64_t warmup;             /* untimed packets first */
    int cpu;                     /* pin to this CPU; -1: leave it to the scheduler */
    uint32_t headroom;           /* generator headroom; ≥ the outer header for encap */
    int learn;                   /* decap: learn into an FDB (entries refreshed after warmup) */
} vfp_bench_opts;

typedef struct vfp_bench_result {
    uint64_t packets;    /* packets through the engine in the timed run */
    uint64_t ok;         /* not dropped */
    uint64_t ns;         /* timed run */
    uint64_t bytes_in;   /* bytes received from the generator */
    uint64_t bytes_out;  /* bytes sent to the sink */
    int cpu;             /* the CPU the loop ended on */
    vfp_stats stats;     /* engine counters for the timed run only */
} vfp_bench_result;

/* Encapsulates the frames with tunnel t / vni. -EINVAL, -ENOMEM, or a pinning -errno. */
int vfp_bench__encap(const vfp_tunnel_cfg *t, uint32_t vni, const vfp_bench_opts *o,
                     const vfp_alloc *a, vfp_bench_result *r);
/* Decapsulates the frames after encapsulating them once with t / vni at setup; with
 * o->learn every packet learns its inner source MAC into an FDB. */
int vfp_bench__decap(const vfp_tunnel_cfg *t, uint32_t vni, const vfp_bench_opts *o,
                     const vfp_alloc *a, vfp_bench_result *r);

typedef struct vfp_bench_fdb_opts {
    uint32_t entries;    /* table filled with this many random (VNI, unicast MAC) keys */
    uint32_t vteps;      /* distinct VTEPs the entries point at (1..65535) */
    uint64_t lookups;    /* timed lookups, uniformly random inserted keys */
    uint32_t burst;      /* keys per lookup_bulk call, 1..VFP_MAX_BURST */
    uint64_t seed;
    int cpu;
} vfp_bench_fdb_opts;

typedef struct vfp_bench_fdb_result {
    uint64_t lookups, hits;
    uint64_t ns;          /* timed lookups, key generation included */
    uint64_t keygen_ns;   /* the same loop generating keys without looking them up */
    uint64_t insert_ns;   /* filling the table */
    uint64_t verified, wrong; /* an untimed pass checking returned VTEP addresses */
    size_t mem_bytes;
    uint32_t slots, primary;  /* table slots; entries in their primary bucket */
    int cpu;
} vfp_bench_fdb_result;

int vfp_bench__fdb(const vfp_bench_fdb_opts *o, const vfp_alloc *a, vfp_bench_fdb_result *r);

#ifdef __cplusplus
}
#endif
#endif
