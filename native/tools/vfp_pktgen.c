/* vfp-pktgen: the traffic generator and sink of `vfplane bench --backend afxdp|dpdk|afpacket`.
 * `gen` blasts a fixed frame set out of one interface (AF_XDP or AF_PACKET tx, through the
 * project's own ports) as fast as it can; `sink` counts and drops every frame arriving on
 * an interface with a tiny XDP program. Both answer "mark" lines on stdin with a JSON
 * snapshot of their counters, so the caller times the measurement window itself. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>

#include "io/afpacket.h"
#include "test/heap.h"
#include "io/memory.h"
#include "io/port.h"
#ifdef VFP_HAVE_AFXDP
#include "io/afxdp.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#endif

static const vfp_alloc heap = VFP_HEAP_ALLOC;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Answers each "mark" line on stdin with mark(ctx), which prints one JSON snapshot, until
 * "quit" or the end of input; returns the first nonzero result of mark. */
static int serve_marks(int (*mark)(void *ctx), void *ctx) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4)) break;
        if (!strncmp(line, "mark", 4)) {
            int rc = mark(ctx);
            if (rc) return rc;
            fflush(stdout);
        }
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: vfp-pktgen gen  --iface NAME --frames FILE [--backend afxdp|afpacket|xdp-live] [--burst N]\n"
            "       vfp-pktgen sink --iface NAME [--mode native|skb]\n"
            "       vfp-pktgen probe-live   (does this kernel let us transmit live frames? one JSON line)\n"
            "FILE holds frames as [u16 big-endian length][bytes]...; the generator cycles through them.\n"
            "xdp-live has the kernel transmit the frames itself (BPF_PROG_RUN with live frames, as\n"
            "xdp-trafficgen does); on a veth the peer needs NAPI (an XDP program, or GRO on).\n"
            "Both print {\"ready\":true}, then answer each \"mark\" line on stdin with a JSON snapshot\n"
            "and exit on \"quit\" or end of input. Run them in the interface's netns (ip netns exec).\n");
}

/* ------------------------------------------------------------ generator */

typedef struct gen {
    vfp_port *src, *dst;
    unsigned burst;
    atomic_int stop;
    _Atomic uint64_t sent, bytes, full;
} gen;

static void *gen_main(void *arg) {
    gen *g = arg;
    vfp_pkt *pk[VFP_MAX_BURST];
    uint64_t sent = 0, bytes = 0, full = 0;
    while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
        uint16_t n = vfp_port__rx_burst(g->src, 0, pk, (uint16_t)g->burst);
        uint16_t s = vfp_port__tx_burst(g->dst, 0, pk, n);
        for (uint16_t i = 0; i < s; i++) bytes += pk[i]->len;
        sent += s;
        if (s < n) {
            /* The ring is full: the memory generator's packets need no release; push the
             * queued ones out so the ring drains. */
            full += (uint64_t)(n - s);
            vfp_pkt__free_burst(pk + s, (uint16_t)(n - s));
            vfp_port__flush(g->dst, 0);
        }
        atomic_store_explicit(&g->sent, sent, memory_order_relaxed);
        atomic_store_explicit(&g->bytes, bytes, memory_order_relaxed);
        atomic_store_explicit(&g->full, full, memory_order_relaxed);
    }
    vfp_port__flush(g->dst, 0);
    return NULL;
}

static int gen_mark(void *ctx) {
    gen *g = ctx;
    printf("{\"t_ns\":%llu,\"pkts\":%llu,\"bytes\":%llu,\"full\":%llu}\n", (unsigned long long)now_ns(),
           (unsigned long long)atomic_load(&g->sent), (unsigned long long)atomic_load(&g->bytes),
           (unsigned long long)atomic_load(&g->full));
    return 0;
}

static int load_frames(const char *path, vfp_mem_frame **out, uint32_t *n_out, uint8_t **blob) {
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(b);
        return -EIO;
    }
    fclose(f);
    uint32_t n = 0;
    for (long o = 0; o + 2 <= sz;) {
        uint32_t len = (uint32_t)(b[o] << 8 | b[o + 1]);
        if (o + 2 + (long)len > sz || len < 14) { free(b); return -EINVAL; }
        o += 2 + len, n++;
    }
    vfp_mem_frame *fr = calloc(n ? n : 1, sizeof *fr);
    if (!fr) { free(b); return -ENOMEM; }
    uint32_t k = 0;
    for (long o = 0; o + 2 <= sz; k++) {
        uint32_t len = (uint32_t)(b[o] << 8 | b[o + 1]);
        fr[k] = (vfp_mem_frame){ b + o + 2, len };
        o += 2 + len;
    }
    *out = fr, *n_out = n, *blob = b;
    return n ? 0 : -EINVAL;
}

#ifdef VFP_HAVE_AFXDP
static int run_live(const char *iface, const vfp_mem_frame *frames, uint32_t nf);
#endif

static int run_gen(const char *iface, const char *backend, const char *frames_path, unsigned burst) {
    char err[512] = "";
    vfp_mem_frame *frames = NULL;
    uint8_t *blob = NULL;
    uint32_t nf = 0;
    int rc = load_frames(frames_path, &frames, &nf, &blob);
    if (rc) {
        fprintf(stderr, "vfp-pktgen: cannot read frames from %s: %s (expected [u16 len][bytes]...)\n", frames_path,
                strerror(-rc));
        return 1;
    }
    if (!strcmp(backend, "xdp-live")) {
#ifdef VFP_HAVE_AFXDP
        rc = run_live(iface, frames, nf);
#else
        fprintf(stderr, "vfp-pktgen: xdp-live needs libbpf (apt-get install libxdp-dev libbpf-dev, then rebuild)\n");
        rc = 1;
#endif
        free(frames);
        free(blob);
        return rc;
    }
    gen g = { .burst = burst };
    rc = vfp_mem_port__create_gen(&g.src, frames, nf, nf * ((4096 + nf - 1) / nf), 256, &heap);
    if (rc) {
        fprintf(stderr, "vfp-pktgen: memory generator: %s\n", strerror(-rc));
        return 1;
    }
    if (!strcmp(backend, "afpacket")) {
        vfp_afpacket_opts o;
        vfp_afpacket_opts__defaults(&o);
        o.ifname = iface;
        o.tx_frames = 4096;
        o.rx_blocks = 4; /* the generator receives nothing it cares about */
        rc = vfp_afpacket_port__create(&g.dst, &o, &heap, err, sizeof err);
    }
#ifdef VFP_HAVE_AFXDP
    else if (!strcmp(backend, "afxdp")) {
        vfp_afxdp_opts o;
        vfp_afxdp_opts__defaults(&o);
        o.ifname = iface;
        o.copy = VFP_XDP_COPY_AUTO;
        rc = vfp_afxdp_port__create(&g.dst, &o, &heap, err, sizeof err);
        if (!rc && err[0]) fprintf(stderr, "vfp-pktgen: %s\n", err);
    }
#endif
    else {
        fprintf(stderr, "vfp-pktgen: backend %s is not built in (afpacket%s)\n", backend,
#ifdef VFP_HAVE_AFXDP
                ", afxdp"
#else
                ""
#endif
        );
        return 2;
    }
    if (rc) {
        fprintf(stderr, "vfp-pktgen: %s\n", err[0] ? err : strerror(-rc));
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, gen_main, &g)) {
        fprintf(stderr, "vfp-pktgen: pthread_create failed\n");
        return 1;
    }
    printf("{\"ready\":true,\"frames\":%u}\n", nf);
    fflush(stdout);
    serve_marks(gen_mark, &g);
    atomic_store(&g.stop, 1);
    pthread_join(th, NULL);
    vfp_port__close(g.dst);
    vfp_port__close(g.src);
    free(frames);
    free(blob);
    return 0;
}

/* ------------------------------------------------------------ sink */

#ifdef VFP_HAVE_AFXDP
#define I(c_, d_, s_, o_, i_) ((struct bpf_insn){ .code = (c_), .dst_reg = (d_), .src_reg = (s_), .off = (o_), .imm = (i_) })

/* Loads raw XDP instructions; on refusal says why, with the verifier's log, and returns -1. */
static int load_xdp(const char *name, const struct bpf_insn *p, size_t n, const char *what) {
    static char log[8192];
    LIBBPF_OPTS(bpf_prog_load_opts, lo, .log_buf = log, .log_size = sizeof log, .log_level = 0);
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", p, n, &lo);
    if (fd < 0) {
        lo.log_level = 1;
        fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", p, n, &lo);
        fprintf(stderr, "vfp-pktgen: %s was rejected: %s (needs root / CAP_BPF)\n%s\n", what, strerror(errno), log);
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Counts packets and bytes (bpf_xdp_get_buff_len) in a per-CPU array slot, then returns
 * `action`: XDP_DROP for the sink (the cheapest sink there is, so it costs the DUT's CPU
 * as little as possible), XDP_TX for the live-frames generator (which then counts each
 * frame as its program runs, not a call at a time). With `by_len` the slot is the frame's
 * length (the last slot takes every longer frame), so the counters are also a histogram
 * of lengths: a frame that is not what the generator sent shows up by its length. The
 * same single map lookup per frame either way. Written as raw instructions so the build
 * needs no BPF compiler. */
#define LEN_SLOTS 16384u
static int count_prog(int map_fd, int action, int by_len, const char *name, const char *what) {
    struct bpf_insn p[] = {
        I(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),          /* r6 = ctx */
        I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_xdp_get_buff_len),
        I(BPF_ALU64 | BPF_MOV | BPF_X, 7, 0, 0, 0),          /* r7 = len */
        by_len ? I(BPF_ALU64 | BPF_MOV | BPF_X, 8, 7, 0, 0)  /* r8 = len */
               : I(BPF_ALU64 | BPF_MOV | BPF_K, 8, 0, 0, 0), /* r8 = slot 0 */
        I(BPF_JMP | BPF_JLE | BPF_K, 8, 0, 1, LEN_SLOTS - 1),
        I(BPF_ALU64 | BPF_MOV | BPF_K, 8, 0, 0, LEN_SLOTS - 1),
        I(BPF_STX | BPF_MEM | BPF_W, 10, 8, -4, 0),          /* key = r8 */
        I(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        I(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
        I(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        I(0, 0, 0, 0, 0),
        I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
        I(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 6, 0),            /* no slot: skip the count */
        I(BPF_LDX | BPF_MEM | BPF_DW, 1, 0, 0, 0),
        I(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 1),
        I(BPF_STX | BPF_MEM | BPF_DW, 0, 1, 0, 0),
        I(BPF_LDX | BPF_MEM | BPF_DW, 1, 0, 8, 0),
        I(BPF_ALU64 | BPF_ADD | BPF_X, 1, 7, 0, 0),
        I(BPF_STX | BPF_MEM | BPF_DW, 0, 1, 8, 0),
        I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, action),
        I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    return load_xdp(name, p, sizeof p / sizeof p[0], what);
}

/* The per-CPU packet/byte counters count_prog adds to (`slots` of them: 1, or LEN_SLOTS
 * for a histogram of lengths); -1 with the reason printed. */
static int count_map(const char *name, uint32_t slots, int *ncpu) {
    *ncpu = libbpf_num_possible_cpus();
    int map = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, name, 4, 16, slots, NULL);
    if (map < 0 || *ncpu <= 0 || *ncpu > 512) {
        fprintf(stderr, "vfp-pktgen: cannot create the BPF map %s: %s (needs root / CAP_BPF)\n", name, strerror(errno));
        if (map >= 0) close(map);
        return -1;
    }
    return map;
}

/* Sums the counters over CPUs into pkts[slot], bytes[slot] (zero where unread; one
 * batched read); returns the number of slots read, 0 on failure. */
static uint32_t count_read_slots(int map_fd, int ncpu, uint32_t slots, uint64_t *pkts, uint64_t *bytes) {
    static uint64_t *v;
    static uint32_t *keys;
    memset(pkts, 0, slots * sizeof *pkts);
    memset(bytes, 0, slots * sizeof *bytes);
    if (!v) {
        v = calloc((size_t)LEN_SLOTS * (size_t)ncpu * 2, sizeof *v);
        keys = calloc(LEN_SLOTS, sizeof *keys);
        if (!v || !keys) return 0;
    }
    uint32_t out = 0, cnt = slots;
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    int rc = bpf_map_lookup_batch(map_fd, NULL, &out, keys, v, &cnt, &bo);
    if (rc && errno != ENOENT) {
        /* No batch support: one lookup per slot. */
        for (uint32_t k = 0; k < slots; k++) {
            keys[k] = k;
            if (bpf_map_lookup_elem(map_fd, &k, v + (size_t)k * (size_t)ncpu * 2)) return 0;
        }
        cnt = slots;
    }
    for (uint32_t i = 0; i < cnt; i++) {
        const uint32_t k = keys[i];
        if (k >= slots) continue;
        for (int c = 0; c < ncpu; c++) pkts[k] += v[((size_t)i * (size_t)ncpu + (size_t)c) * 2],
                                       bytes[k] += v[((size_t)i * (size_t)ncpu + (size_t)c) * 2 + 1];
    }
    return cnt;
}

static void count_read(int map_fd, int ncpu, uint64_t *pkts, uint64_t *bytes) {
    count_read_slots(map_fd, ncpu, 1, pkts, bytes);
}

typedef struct sink_ctx {
    int map, ncpu;
    uint64_t pkts[LEN_SLOTS], bytes[LEN_SLOTS];
} sink_ctx;

/* A mark: the totals, and how many frames of each length arrived ("lens", the lengths
 * seen so far with their counts; the last slot is "this long or longer"). */
static int sink_mark(void *ctx) {
    sink_ctx *s = ctx;
    count_read_slots(s->map, s->ncpu, LEN_SLOTS, s->pkts, s->bytes);
    uint64_t p = 0, b = 0;
    for (uint32_t k = 0; k < LEN_SLOTS; k++) p += s->pkts[k], b += s->bytes[k];
    printf("{\"t_ns\":%llu,\"pkts\":%llu,\"bytes\":%llu,\"lens\":{", (unsigned long long)now_ns(),
           (unsigned long long)p, (unsigned long long)b);
    const char *sep = "";
    for (uint32_t k = 0; k < LEN_SLOTS; k++)
        if (s->pkts[k]) {
            printf("%s\"%u\":%llu", sep, k, (unsigned long long)s->pkts[k]);
            sep = ",";
        }
    printf("}}\n");
    return 0;
}

static int run_sink(const char *iface, const char *mode) {
    unsigned ifindex = if_nametoindex(iface);
    if (!ifindex) {
        fprintf(stderr, "vfp-pktgen: interface %s not found in this netns (check `ip link`)\n", iface);
        return 1;
    }
    int ncpu;
    int map = count_map("vfp_sink", LEN_SLOTS, &ncpu);
    if (map < 0) return 1;
    int prog = count_prog(map, XDP_DROP, 1, "vfp_sink", "the sink's XDP program");
    if (prog < 0) return 1;
    uint32_t flags = !strcmp(mode, "skb") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    /* Replace whatever an earlier, killed run left there: the interface is ours. */
    int rc = bpf_xdp_attach((int)ifindex, prog, flags, NULL);
    if (rc) {
        fprintf(stderr, "vfp-pktgen: cannot attach the sink's XDP program to %s in %s mode: %s\n", iface, mode,
                strerror(-rc));
        return 1;
    }
    printf("{\"ready\":true,\"mode\":\"%s\"}\n", mode);
    fflush(stdout);
    static sink_ctx sc;
    sc.map = map;
    sc.ncpu = ncpu;
    serve_marks(sink_mark, &sc);
    bpf_xdp_detach((int)ifindex, flags, NULL);
    return 0;
}
#endif

/* ------------------------------------------------------------ live-frames generator */

#ifdef VFP_HAVE_AFXDP
/* The kernel transmits the frames itself: BPF_PROG_RUN of an XDP program that returns
 * XDP_TX, in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18), sends each
 * repetition out of ingress_ifindex through the driver's ndo_xdp_xmit, with no socket,
 * no ring and no copy per packet. One call sends one frame `repeat` times; the loop
 * cycles through the frame set call by call (the flows change every `repeat` frames).
 * The program counts each frame as it runs (a per-CPU map, as the sink does), so a mark
 * is exact at any moment, not a call (2^18 frames) at a time: a slow DUT makes a call
 * outlast a short window. What it counts is what it handed to the driver: a veth whose
 * peer has no NAPI (no XDP program, GRO off) or a full peer ring drops frames after that
 * point. Each call also sleeps ~25 ms setting up and tearing down (an RCU grace period),
 * so two threads take turns: one transmits while the other waits. */
typedef struct live {
    int prog, ifindex, map, ncpu;
    const vfp_mem_frame *frames;
    uint32_t n_frames, repeat;
    atomic_int stop, err;
    atomic_uint next;
} live;

/* Sends frame k `repeat` times (batch_size 0: the kernel's default, 64). */
static int live_send(const live *l, uint32_t k, uint32_t repeat) {
    struct xdp_md ctx = { .data_end = l->frames[k].len, .ingress_ifindex = (uint32_t)l->ifindex };
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = l->frames[k].bytes, .data_size_in = l->frames[k].len, .ctx_in = &ctx,
                .ctx_size_in = sizeof ctx, .repeat = repeat, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
    return bpf_prog_test_run_opts(l->prog, &o);
}

static void *live_main(void *arg) {
    live *l = arg;
    uint32_t k = (uint32_t)atomic_fetch_add(&l->next, 1) % l->n_frames;
    for (; !atomic_load_explicit(&l->stop, memory_order_relaxed); k = (uint32_t)atomic_fetch_add(&l->next, 1) % l->n_frames) {
        if (live_send(l, k, l->repeat)) {
            atomic_store(&l->err, errno);
            break;
        }
    }
    return NULL;
}

/* A snapshot for "mark", or the errno the transmit threads stopped on. */
static int live_mark(void *ctx) {
    live *l = ctx;
    int e = atomic_load(&l->err);
    if (e) return e;
    uint64_t p, b;
    count_read(l->map, l->ncpu, &p, &b);
    printf("{\"t_ns\":%llu,\"pkts\":%llu,\"bytes\":%llu,\"full\":0}\n", (unsigned long long)now_ns(),
           (unsigned long long)p, (unsigned long long)b);
    return 0;
}

/* Whether the kernel runs BPF_PROG_RUN in live-frames mode for us: one frame through an
 * XDP program that drops it (nothing is sent), on loopback's queue. Some kernels refuse
 * the mode even to root (EPERM, seen on a 6.18 build; before 5.18, EINVAL): the I/O
 * bench then takes another generator. Prints {"liveFrames":true} or
 * {"liveFrames":false,"error":"..."}; exits 0 either way, 1 when it could not ask. */
static int run_probe_live(void) {
    static const struct bpf_insn drop[] = { I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, XDP_DROP), I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0) };
    int prog = load_xdp("vfp_live_probe", drop, 2, "the live-frames probe");
    if (prog < 0) return 1;
    uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof frame, .repeat = 1, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
    int rc = bpf_prog_test_run_opts(prog, &o), e = errno;
    close(prog);
    if (rc) printf("{\"liveFrames\":false,\"error\":\"%s\"}\n", strerror(e));
    else printf("{\"liveFrames\":true}\n");
    return 0;
}

static int run_live(const char *iface, const vfp_mem_frame *frames, uint32_t nf) {
    int ifindex = (int)if_nametoindex(iface);
    if (!ifindex) {
        fprintf(stderr, "vfp-pktgen: interface %s not found in this netns (check `ip link`)\n", iface);
        return 1;
    }
    live l = { .ifindex = ifindex, .frames = frames, .n_frames = nf, .repeat = 1u << 18 };
    l.map = count_map("vfp_live_tx", 1, &l.ncpu);
    if (l.map < 0) return 1;
    l.prog = count_prog(l.map, XDP_TX, 0, "vfp_live_tx", "the live-frames XDP program");
    if (l.prog < 0) return 1;
    /* One short call first, so that a kernel without live frames (before 5.18) fails
     * here with its reason. A driver without ndo_xdp_xmit (lo, say) or a veth whose peer
     * has no NAPI drops the frames without an error: only the sink can tell. */
    if (live_send(&l, 0, 1)) {
        fprintf(stderr,
                "vfp-pktgen: the kernel refused to transmit live frames on %s: %s (needs Linux >= 5.18 and "
                "CAP_BPF; use --backend afxdp or afpacket otherwise)\n",
                iface, strerror(errno));
        return 1;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, live_main, &l)) {
            fprintf(stderr, "vfp-pktgen: pthread_create failed\n");
            atomic_store(&l.stop, 1);
            if (i) pthread_join(th[0], NULL);
            return 1;
        }
    printf("{\"ready\":true,\"frames\":%u}\n", nf);
    fflush(stdout);
    int e = serve_marks(live_mark, &l);
    if (e) fprintf(stderr, "vfp-pktgen: live-frames transmit on %s failed: %s\n", iface, strerror(e));
    int rc = e ? 1 : 0;
    atomic_store(&l.stop, 1);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    close(l.prog);
    close(l.map);
    return rc;
}
#endif

int main(int argc, char **argv) {
    if (argc < 2) { usage(); return 2; }
    const char *cmd = argv[1], *iface = NULL, *backend = "afpacket", *frames = NULL, *mode = "native";
    unsigned burst = 32;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { usage(); return 2; }
        if (!strcmp(k, "--iface")) iface = v;
        else if (!strcmp(k, "--backend")) backend = v;
        else if (!strcmp(k, "--frames")) frames = v;
        else if (!strcmp(k, "--mode")) mode = v;
        else if (!strcmp(k, "--burst")) burst = (unsigned)atoi(v);
        else { usage(); return 2; }
        i++;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(cmd, "probe-live") && argc == 2) {
#ifdef VFP_HAVE_AFXDP
        return run_probe_live();
#else
        printf("{\"liveFrames\":false,\"error\":\"built without libbpf\"}\n");
        return 0;
#endif
    }
    if (!iface || burst < 1 || burst > VFP_MAX_BURST) { usage(); return 2; }
    if (!strcmp(cmd, "gen") && frames) return run_gen(iface, backend, frames, burst);
#ifdef VFP_HAVE_AFXDP
    if (!strcmp(cmd, "sink")) return run_sink(iface, mode);
#else
    if (!strcmp(cmd, "sink")) {
        fprintf(stderr, "vfp-pktgen: the sink needs libbpf (apt-get install libxdp-dev libbpf-dev, then rebuild)\n");
        return 1;
    }
#endif
    usage();
    return 2;
}
