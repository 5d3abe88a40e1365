/* The memory backend: a generator that replays frames it holds and a sink that counts.
 * Encap writes only into the headroom and decap only moves pointers, so the generator
 * never copies a frame per packet: rx just resets data, len and headroom. */
#include "io/memory.h"

#include <errno.h>
#include <string.h>

typedef struct mem_gen {
    vfp_port port;
    vfp_alloc a;
    uint8_t *slab;       /* ring slots, each headroom + frame bytes, cache-line aligned */
    size_t slab_bytes;
    vfp_pkt *pkts;       /* one descriptor per slot, owned by the port */
    uint8_t **datas;     /* each slot's frame start, so rx needs no multiply */
    uint32_t *lens;
    uint32_t ring;
    uint32_t slot_bytes;
    uint32_t headroom;
    uint32_t next;
} mem_gen;

typedef struct mem_sink {
    vfp_port port;
    vfp_alloc a;
    uintptr_t caller[VFP_MEM_SINK_MAX_QUEUES]; /* first thread per queue; 0: none yet */
    uint64_t foreign;                          /* atomic: calls from any other thread */
} mem_sink;

/* A thread's identity without a syscall: the address of a thread-local, distinct for
 * every live thread. */
static _Thread_local char thread_tag;

/* Checks the one-thread-per-queue contract of port.h for a call on queue q. Relaxed
 * atomics throughout: the first caller's identity is the only thing claimed (the CAS
 * decides who is first; nothing else is published with it), and the count is read for a
 * report after the workers stopped or as a racy snapshot. */
static void sink_note_caller(mem_sink *s, uint16_t q) {
    if (q >= VFP_MEM_SINK_MAX_QUEUES) return;
    const uintptr_t me = (uintptr_t)&thread_tag;
    uintptr_t seen = __atomic_load_n(&s->caller[q], __ATOMIC_RELAXED);
    if (seen == me) return;
    if (seen == 0 && __atomic_compare_exchange_n(&s->caller[q], &seen, me, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    if (seen != me) __atomic_fetch_add(&s->foreign, 1, __ATOMIC_RELAXED);
}

static uint16_t gen_rx(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    mem_gen *g = (mem_gen *)p;
    uint32_t i = g->next;
    uint64_t bytes = 0;
    (void)q;
    for (uint16_t k = 0; k < n; k++) {
        vfp_pkt *d = &g->pkts[i];
        d->data = g->datas[i];
        d->len = g->lens[i];
        d->headroom = g->headroom;
        d->owner = p;
        d->tx_ol = 0;
        pkts[k] = d;
        bytes += d->len;
        i = i + 1 == g->ring ? 0 : i + 1;
    }
    g->next = i;
    p->rx_pkts += n;
    p->rx_bytes += bytes;
    return n;
}

static uint16_t gen_tx(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    (void)p, (void)q, (void)pkts, (void)n;
    return 0; /* a generator does not transmit; the caller keeps and frees them */
}

/* Slots are reused in ring order, so releasing a packet needs no bookkeeping. */
static void mem_free_burst(vfp_port *p, vfp_pkt **pkts, uint16_t n) { (void)p, (void)pkts, (void)n; }

static void gen_close(vfp_port *p) {
    mem_gen *g = (mem_gen *)p;
    vfp_alloc a = g->a;
    if (g->slab) a.free(a.ctx, g->slab, g->slab_bytes);
    if (g->pkts) a.free(a.ctx, g->pkts, (size_t)g->ring * sizeof(vfp_pkt));
    if (g->lens) a.free(a.ctx, g->lens, (size_t)g->ring * sizeof(uint32_t));
    if (g->datas) a.free(a.ctx, g->datas, (size_t)g->ring * sizeof(uint8_t *));
    a.free(a.ctx, g, sizeof *g);
}

static const struct vfp_port_ops gen_ops = {
    .name = "memory-gen",
    .rx_burst = gen_rx,
    .tx_burst = gen_tx,
    .free_burst = mem_free_burst,
    .close = gen_close,
};

int vfp_mem_port__create_gen(vfp_port **out, const vfp_mem_frame *frames, uint32_t n_frames,
                             uint32_t ring, uint32_t headroom, const vfp_alloc *a) {
    if (!out || !frames || !n_frames || !a || !ring || headroom > 4096) return -EINVAL;
    uint32_t max_len = 0;
    for (uint32_t i = 0; i < n_frames; i++) {
        if (!frames[i].bytes || frames[i].len > 65535) return -EINVAL;
        if (frames[i].len > max_len) max_len = frames[i].len;
    }
    /* A whole number of pattern repeats, so wrapping never breaks the frame sequence. */
    uint64_t r = ((uint64_t)ring + n_frames - 1) / n_frames * n_frames;
    if (r > (1u << 20)) return -EINVAL;
    mem_gen *g = (mem_gen *)a->alloc(a->ctx, sizeof *g, VFP_CACHE_LINE);
    if (!g) return -ENOMEM;
    memset(g, 0, sizeof *g);
    g->port.ops = &gen_ops;
    g->port.n_queues = 1;
    g->a = *a;
    g->ring = (uint32_t)r;
    g->headroom = headroom;
    g->slot_bytes = (headroom + max_len + VFP_CACHE_LINE - 1) & ~(uint32_t)(VFP_CACHE_LINE - 1);
    if (!g->slot_bytes) g->slot_bytes = VFP_CACHE_LINE;
    g->slab_bytes = (size_t)g->ring * g->slot_bytes;
    g->slab = (uint8_t *)a->alloc(a->ctx, g->slab_bytes, VFP_CACHE_LINE);
    g->pkts = (vfp_pkt *)a->alloc(a->ctx, (size_t)g->ring * sizeof(vfp_pkt), VFP_CACHE_LINE);
    g->lens = (uint32_t *)a->alloc(a->ctx, (size_t)g->ring * sizeof(uint32_t), 8);
    g->datas = (uint8_t **)a->alloc(a->ctx, (size_t)g->ring * sizeof(uint8_t *), 8);
    if (!g->slab || !g->pkts || !g->lens || !g->datas) {
        gen_close(&g->port);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < g->ring; i++) {
        const vfp_mem_frame *fr = &frames[i % n_frames];
        g->datas[i] = g->slab + (size_t)i * g->slot_bytes + headroom;
        memcpy(g->datas[i], fr->bytes, fr->len);
        g->lens[i] = fr->len;
    }
    *out = &g->port;
    return 0;
}

static uint16_t sink_rx(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    (void)pkts, (void)n;
    sink_note_caller((mem_sink *)p, q);
    return 0;
}

static void sink_flush(vfp_port *p, uint16_t q) { sink_note_caller((mem_sink *)p, q); }

static uint16_t sink_tx(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    uint64_t bytes = 0;
    sink_note_caller((mem_sink *)p, q);
    for (uint16_t i = 0; i < n; i++) bytes += pkts[i]->len;
    p->tx_pkts += n;
    p->tx_bytes += bytes;
    vfp_pkt__free_burst(pkts, n); /* taken packets go back to their owners */
    return n;
}

static void sink_close(vfp_port *p) {
    mem_sink *s = (mem_sink *)p;
    vfp_alloc a = s->a;
    a.free(a.ctx, s, sizeof *s);
}

static const struct vfp_port_ops sink_ops = {
    .name = "memory-sink",
    .rx_burst = sink_rx,
    .tx_burst = sink_tx,
    .free_burst = mem_free_burst,
    .close = sink_close,
    .flush = sink_flush,
};

int vfp_mem_port__create_sink_q(vfp_port **out, uint16_t queues, const vfp_alloc *a) {
    if (!out || !a || queues < 1 || queues > VFP_MEM_SINK_MAX_QUEUES) return -EINVAL;
    mem_sink *s = (mem_sink *)a->alloc(a->ctx, sizeof *s, VFP_CACHE_LINE);
    if (!s) return -ENOMEM;
    memset(s, 0, sizeof *s);
    s->port.ops = &sink_ops;
    s->port.n_queues = queues;
    s->a = *a;
    *out = &s->port;
    return 0;
}

int vfp_mem_port__create_sink(vfp_port **out, const vfp_alloc *a) {
    return vfp_mem_port__create_sink_q(out, 1, a);
}

uint64_t vfp_mem_port__foreign_calls(const vfp_port *p) {
    if (!p || p->ops != &sink_ops) return 0;
    return __atomic_load_n(&((const mem_sink *)p)->foreign, __ATOMIC_RELAXED);
}
