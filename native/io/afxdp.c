/* The AF_XDP backend: libxdp's default XSK program redirects each rx queue to its XSK;
 * every queue owns a UMEM, its four rings and a stack of free frames, so one thread per
 * queue runs without locks. Setup and teardown run in a thread that setns()es. */
#include "io/afxdp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <linux/if_xdp.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#define XSK_PROG_FILE "xsk_def_xdp_prog.o"
#define XSK_PROG_NAME "xsk_def_prog"
#define FILL_BATCH 32u

typedef struct afxdp_port afxdp_port;

typedef struct xq {
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
    uint8_t *area;           /* the UMEM: n_frames × frame_size, page aligned */
    uint64_t *free_stack;    /* frame base addresses nobody holds */
    uint32_t n_free;
    uint32_t outstanding_tx; /* descriptors submitted, completion not yet reaped */
    int fd;
    int down;                /* the last kick found the device down (ENETDOWN) */
    uint64_t tx_link_down;   /* frames dropped at tx while the device was down */
    uint64_t tx_device_drops;/* frames the device dropped (EBUSY) */
    uint32_t qid;
    vfp_pkt *pkts;           /* one descriptor per frame, index = base >> shift */
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    afxdp_port *x;
} VFP_ALIGNED(VFP_CACHE_LINE) xq;

struct afxdp_port {
    vfp_port port;
    vfp_alloc a;
    char ifname[IF_NAMESIZE];
    char *netns;
    vfp_afxdp_opts o;
    int ifindex;
    struct xdp_program *prog;
    enum xdp_attach_mode attached; /* XDP_MODE_UNSPEC when nothing is attached by us */
    int map_fd;
    uint32_t shift;          /* log2(frame_size) */
    uint64_t base_mask;      /* clears the offset inside a frame */
    uint32_t rx_headroom;    /* frame_headroom + XDP_PACKET_HEADROOM */
    uint32_t max_frame;
    uint32_t fill_reserve;   /* free frames kept back from the fill ring for tx copies */
    uint16_t port_id;        /* stamped on received packets (vfp_pkt.port) */
    size_t area_bytes;
    xq *q;
    vfp_afxdp_info info;
};

const char *vfp_xdp_mode__name(int mode) {
    return mode == VFP_XDP_MODE_NATIVE ? "native" : mode == VFP_XDP_MODE_SKB ? "skb" : "auto";
}

void vfp_afxdp_opts__defaults(vfp_afxdp_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_queues = 1;
    o->frame_size = 4096;
    o->n_frames = 4096;
    o->ring_size = 2048;
    o->headroom = 256;
    o->mode = VFP_XDP_MODE_AUTO;
    o->copy = VFP_XDP_COPY_AUTO;
    o->need_wakeup = 1;
}

/* ---- fast path ---------------------------------------------------------------------- */

/* Copy mode sends in the syscall and stops after a budget (EAGAIN/ENOBUFS: busy; the
 * next burst or the idle flush kicks again). Two answers mean the frames are lost, and
 * are counted as such rather than left as "sent" (helper-73):
 * - EBUSY: the device dropped one frame (NET_XMIT_DROP: no carrier, in
 *   __dev_direct_xmit, or a veth whose peer refused it, over that peer's MTU) and the
 *   kernel stopped at it; kicked again until the ring is through, so what was queued
 *   goes now (dropped the same way), not when the carrier comes back. Counted as
 *   tx_device_drops, as AF_PACKET counts the frames a device refuses.
 * - ENETDOWN: the device is down and the kernel took nothing. Frames already in the ring
 *   cannot be taken back (they go when it is up again); new ones are dropped at tx until
 *   a kick is taken again, as a NIC drops them. */
static inline void kick_tx(xq *q) {
    for (uint32_t tries = q->outstanding_tx + 1; tries; tries--) {
        if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
            q->down = 0;
            return;
        }
        if (errno == ENETDOWN) {
            q->down = 1;
            return;
        }
        if (errno != EBUSY) return;
        q->down = 0;
        q->tx_device_drops++;
    }
}

static inline void reap_completions(xq *q) {
    if (!q->outstanding_tx) return;
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&q->comp, q->outstanding_tx, &idx);
    if (!n) return;
    uint64_t mask = q->x->base_mask;
    for (uint32_t i = 0; i < n; i++)
        q->free_stack[q->n_free++] = *xsk_ring_cons__comp_addr(&q->comp, idx + i) & mask;
    xsk_ring_cons__release(&q->comp, n);
    q->outstanding_tx -= n;
}

/* Tops the fill ring up from the free stack in batches, keeping fill_reserve frames
 * for tx copies. */
static inline void refill(xq *q) {
    afxdp_port *x = q->x;
    if (q->n_free <= x->fill_reserve) return;
    uint32_t want = q->n_free - x->fill_reserve;
    uint32_t room = xsk_prod_nb_free(&q->fill, want);
    if (want > room) want = room;
    if (want < FILL_BATCH && room < q->fill.size) {
        /* Small top-ups only when the ring is nearly empty: else wait for a batch. */
        if (q->fill.size - room > FILL_BATCH) return;
    }
    if (!want) return;
    uint32_t idx;
    if (xsk_ring_prod__reserve(&q->fill, want, &idx) != want) return;
    for (uint32_t i = 0; i < want; i++)
        *xsk_ring_prod__fill_addr(&q->fill, idx + i) = q->free_stack[--q->n_free];
    xsk_ring_prod__submit(&q->fill, want);
}

static uint16_t afxdp_rx(vfp_port *p, uint16_t qi, vfp_pkt **pkts, uint16_t n) {
    afxdp_port *x = (afxdp_port *)p;
    xq *q = &x->q[qi];
    uint32_t idx;
    uint32_t got = xsk_ring_cons__peek(&q->rx, n, &idx);
    if (!got) {
        refill(q);
        /* Only zero-copy drivers set the fill ring's flag; copy mode never needs it. */
        if (x->info.need_wakeup && xsk_ring_prod__needs_wakeup(&q->fill))
            (void)recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        return 0;
    }
    uint64_t bytes = 0, mask = x->base_mask;
    for (uint32_t i = 0; i < got; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + i);
        uint64_t base = d->addr & mask;
        vfp_pkt *k = &q->pkts[base >> x->shift];
        k->data = q->area + d->addr;
        k->len = d->len;
        /* The real writable bytes before data: frame_headroom + XDP_PACKET_HEADROOM in
         * both copy and zero-copy mode, read from the descriptor rather than assumed. */
        k->headroom = (uint32_t)(d->addr - base);
        k->port = x->port_id;
        k->tx_ol = 0;
        pkts[i] = k;
        bytes += d->len;
    }
    xsk_ring_cons__release(&q->rx, got);
    refill(q);
    p->rx_pkts += got;
    p->rx_bytes += bytes;
    return (uint16_t)got;
}

static uint16_t afxdp_tx(vfp_port *p, uint16_t qi, vfp_pkt **pkts, uint16_t n) {
    afxdp_port *x = (afxdp_port *)p;
    xq *q = &x->q[qi];
    reap_completions(q);
    if (VFP_UNLIKELY(q->down)) {
        kick_tx(q); /* is it up again? */
        if (q->down) {
            q->tx_link_down += n;
            vfp_pkt__free_burst(pkts, n);
            return n;
        }
    }
    uint32_t room = xsk_prod_nb_free(&q->tx, n);
    uint32_t take = n < room ? n : room;
    /* How many fit: each foreign packet needs a free frame. */
    uint32_t k = 0, need = 0;
    for (; k < take; k++) {
        const vfp_pkt *pk = pkts[k];
        if (pk->owner == p && pk->opaque == q) continue;
        if (need == q->n_free) break;
        need++;
    }
    if (k < n) p->tx_full += n - k;
    if (!k) {
        if (q->outstanding_tx && (!x->info.need_wakeup || xsk_ring_prod__needs_wakeup(&q->tx))) kick_tx(q);
        return 0;
    }
    uint32_t idx = 0;
    xsk_ring_prod__reserve(&q->tx, k, &idx);
    vfp_pkt *foreign[VFP_MAX_BURST];
    uint16_t nf = 0;
    uint32_t sent = 0;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < k; i++) {
        vfp_pkt *pk = pkts[i];
        uint64_t addr;
        if (pk->owner == p && pk->opaque == q) {
            /* Same UMEM: send in place, from wherever encap/decap left data. */
            addr = (uint64_t)(pk->data - q->area);
        } else {
            foreign[nf++] = pk;
            if (VFP_UNLIKELY(pk->len > x->max_frame)) {
                x->info.tx_oversize++;
                continue;
            }
            uint64_t base = q->free_stack[--q->n_free];
            addr = base + x->rx_headroom;
            memcpy(q->area + addr, pk->data, pk->len);
        }
        struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx + sent);
        d->addr = addr;
        d->len = pk->len;
        d->options = 0;
        sent++;
        bytes += pk->len;
    }
    /* Oversize packets took a slot in the reservation but no descriptor: hand the
     * unused tail back before publishing. */
    q->tx.cached_prod -= k - sent;
    if (sent) {
        xsk_ring_prod__submit(&q->tx, sent);
        q->outstanding_tx += sent;
    }
    if (nf) vfp_pkt__free_burst(foreign, nf);
    if (q->outstanding_tx && (!x->info.need_wakeup || xsk_ring_prod__needs_wakeup(&q->tx))) kick_tx(q);
    p->tx_pkts += sent;
    p->tx_bytes += bytes;
    return (uint16_t)k;
}

static void afxdp_free(vfp_port *p, vfp_pkt **pkts, uint16_t n) {
    afxdp_port *x = (afxdp_port *)p;
    for (uint16_t i = 0; i < n; i++) {
        xq *q = (xq *)pkts[i]->opaque;
        q->free_stack[q->n_free++] = (uint64_t)(pkts[i]->data - q->area) & x->base_mask;
    }
}

static int afxdp_rx_fd(vfp_port *p, uint16_t qi) {
    afxdp_port *x = (afxdp_port *)p;
    return qi < p->n_queues ? x->q[qi].fd : -1;
}

static void afxdp_flush(vfp_port *p, uint16_t qi) {
    afxdp_port *x = (afxdp_port *)p;
    xq *q = &x->q[qi];
    reap_completions(q);
    if (q->outstanding_tx && (!x->info.need_wakeup || xsk_ring_prod__needs_wakeup(&q->tx))) kick_tx(q);
    refill(q);
}

/* ---- control path ------------------------------------------------------------------- */

/* libxdp and libbpf print warnings that are expected here (no bpffs, so no dispatcher;
 * libxdp's own ELF sections libbpf does not know): drop exactly those, keep the rest. */
static int quiet_known(const char *fmt, va_list ap) {
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    static const char *harmless[] = { "No bpffs found", "Can't use dispatcher without a working bpffs",
                                      "Falling back to loading single prog without dispatcher",
                                      "skipping unrecognized data section" };
    for (size_t i = 0; i < sizeof harmless / sizeof *harmless; i++)
        if (strstr(line, harmless[i])) return 0;
    return fputs(line, stderr);
}
static int xdp_print(enum libxdp_print_level l, const char *fmt, va_list ap) {
    return l == LIBXDP_DEBUG ? 0 : quiet_known(fmt, ap);
}
static int bpf_print(enum libbpf_print_level l, const char *fmt, va_list ap) {
    return l == LIBBPF_DEBUG ? 0 : quiet_known(fmt, ap);
}
static pthread_once_t print_once = PTHREAD_ONCE_INIT;
static void set_printers(void) {
    libxdp_set_print(xdp_print);
    libbpf_set_print(bpf_print);
}

typedef int ns_fn(afxdp_port *x, char *err, size_t errlen);

typedef struct ns_call {
    const char *netns;
    ns_fn *fn;
    afxdp_port *x;
    char *err;
    size_t errlen;
    int rc;
} ns_call;

static void *ns_thread(void *v) {
    ns_call *c = (ns_call *)v;
    int fd = open(c->netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        c->rc = -errno;
        snprintf(c->err, c->errlen, "cannot open netns %s: %s (give a netns file such as /run/netns/NAME)",
                 c->netns, strerror(errno));
        return NULL;
    }
    if (setns(fd, CLONE_NEWNET)) {
        c->rc = -errno;
        snprintf(c->err, c->errlen, "cannot enter netns %s: %s (needs CAP_SYS_ADMIN)", c->netns, strerror(errno));
        close(fd);
        return NULL;
    }
    close(fd);
    c->rc = c->fn(c->x, c->err, c->errlen);
    return NULL;
}

/* Runs fn in the port's netns on a thread of its own, so only that thread ever
 * changes namespace; the sockets it makes stay bound to that netns. */
static int in_netns(afxdp_port *x, ns_fn *fn, char *err, size_t errlen) {
    if (!x->netns) return fn(x, err, errlen);
    ns_call c = { x->netns, fn, x, err, errlen, 0 };
    pthread_t t;
    int rc = pthread_create(&t, NULL, ns_thread, &c);
    if (rc) {
        snprintf(err, errlen, "cannot start the netns thread for %s: %s", x->ifname, strerror(rc));
        return -rc;
    }
    pthread_join(t, NULL);
    return c.rc;
}

static const char *ns_label(const afxdp_port *x) { return x->netns ? x->netns : "the caller's netns"; }

#define AFXDP_MAX_QUEUES 64

/* n_queues 0: as many queues as the netdev receives on (rx + combined channels), from
 * queue_id on. Only a queue with a socket reaches us: the XDP program passes the others'
 * frames to the host stack, so a port bound to fewer queues than the NIC spreads flows
 * over (RSS, or a veth peer sending from several CPUs) loses their traffic silently. A
 * device without ETHTOOL_GCHANNELS has one queue. Runs in the port's netns. */
static int count_queues(afxdp_port *x, char *err, size_t errlen) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "AF_XDP on %s: socket for ETHTOOL_GCHANNELS: %s", x->ifname, strerror(errno));
        return -errno;
    }
    struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", x->ifname);
    ifr.ifr_data = (char *)&ch;
    uint32_t n = 1;
    if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
        if (ch.rx_count + ch.combined_count) n = ch.rx_count + ch.combined_count;
    } else if (errno == ENODEV) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "AF_XDP: interface %s not found in %s (check `ip link`)", x->ifname, ns_label(x));
        return -e;
    }
    close(fd);
    if (n <= x->o.queue_id) {
        snprintf(err, errlen, "AF_XDP on %s: first queue %u, but the netdev has %u rx queue(s)", x->ifname,
                 x->o.queue_id, n);
        return -EINVAL;
    }
    n -= x->o.queue_id;
    if (n > AFXDP_MAX_QUEUES) {
        snprintf(err, errlen, "AF_XDP on %s: %u rx queues, and a port binds at most %d; reduce them "
                 "(ethtool -L %s combined %d) so that no queue's traffic bypasses the data plane",
                 x->ifname, n, AFXDP_MAX_QUEUES, x->ifname, AFXDP_MAX_QUEUES);
        return -E2BIG;
    }
    x->o.n_queues = (uint16_t)n;
    x->port.n_queues = (uint16_t)n;
    return 0;
}

static uint32_t mode_flag(enum xdp_attach_mode m) {
    return m == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : m == XDP_MODE_NATIVE ? XDP_FLAGS_DRV_MODE : 0;
}

/* True when some process holds a file descriptor for BPF object `id` of the given kind
 * ("prog_id" or "map_id"). libxdp's XSK users keep the program open while they run, so
 * an attached program nobody holds is left over from a process that died. */
static int bpf_id_held(const char *kind, uint32_t id) {
    DIR *proc = opendir("/proc");
    if (!proc) return 1; /* cannot tell: assume in use */
    char want[48];
    snprintf(want, sizeof want, "%s:\t%u\n", kind, id);
    struct dirent *pe;
    int held = 0;
    char self[24];
    snprintf(self, sizeof self, "%d", (int)getpid());
    while (!held && (pe = readdir(proc))) {
        /* This process holds the program too while inspecting it: skip it. */
        if (pe->d_name[0] < '0' || pe->d_name[0] > '9' || !strcmp(pe->d_name, self)) continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/fdinfo", pe->d_name);
        DIR *fdi = opendir(path);
        if (!fdi) continue;
        struct dirent *fe;
        while (!held && (fe = readdir(fdi))) {
            if (fe->d_name[0] == '.') continue;
            char fp[600], buf[1024];
            snprintf(fp, sizeof fp, "%s/%s", path, fe->d_name);
            int fd = open(fp, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            ssize_t r = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (r <= 0) continue;
            buf[r] = 0;
            const char *hit = strstr(buf, want);
            if (hit && (hit == buf || hit[-1] == '\n')) held = 1;
        }
        closedir(fdi);
    }
    closedir(proc);
    return held;
}

/* Looks at what occupies the interface; detaches it when it is libxdp's XSK program
 * that no live process holds (left by a run that crashed). Returns 0 when it detached. */
static int detach_stale(afxdp_port *x, char *err, size_t errlen, char *note, size_t notelen) {
    LIBBPF_OPTS(bpf_xdp_query_opts, qo);
    int rc = bpf_xdp_query(x->ifindex, 0, &qo);
    if (rc) {
        snprintf(err, errlen, "cannot query the XDP program on %s: %s", x->ifname, strerror(-rc));
        return rc;
    }
    uint32_t id = qo.prog_id ? qo.prog_id : qo.drv_prog_id ? qo.drv_prog_id : qo.skb_prog_id;
    uint32_t flags = qo.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE
                     : qo.attach_mode == XDP_ATTACHED_DRV ? XDP_FLAGS_DRV_MODE : 0;
    char fix[200];
    const char *ns = x->netns ? (strrchr(x->netns, '/') ? strrchr(x->netns, '/') + 1 : x->netns) : NULL;
    snprintf(fix, sizeof fix, "if no other AF_XDP user needs it, remove it with `ip %s%s%slink set dev %s xdp off`",
             ns ? "-n " : "", ns ? ns : "", ns ? " " : "", x->ifname);
    if (!id) {
        snprintf(err, errlen, "%s (%s) reports an XDP program attached but none is visible; %s", x->ifname, ns_label(x), fix);
        return -EEXIST;
    }
    int pfd = bpf_prog_get_fd_by_id(id);
    if (pfd < 0) {
        snprintf(err, errlen, "%s (%s) already has XDP program id %u and it cannot be inspected (%s); %s",
                 x->ifname, ns_label(x), id, strerror(errno), fix);
        return -EEXIST;
    }
    struct bpf_prog_info pi;
    uint32_t map_ids[8] = { 0 };
    memset(&pi, 0, sizeof pi);
    pi.nr_map_ids = 8;
    pi.map_ids = (uint64_t)(uintptr_t)map_ids;
    uint32_t len = sizeof pi;
    if (bpf_obj_get_info_by_fd(pfd, &pi, &len)) pi.name[0] = 0;
    int ours = !strcmp(pi.name, XSK_PROG_NAME) && flags;
    int held = ours ? bpf_id_held("prog_id", id) : 1;
    for (uint32_t i = 0; ours && !held && i < pi.nr_map_ids && i < 8; i++) held = bpf_id_held("map_id", map_ids[i]);
    if (!ours || held) {
        snprintf(err, errlen, "%s (%s) already has XDP program \"%s\" (id %u, %s mode)%s; %s",
                 x->ifname, ns_label(x), pi.name, id, flags == XDP_FLAGS_SKB_MODE ? "skb" : "native",
                 ours ? " held by a running process (another AF_XDP user or vfplane instance)" : "",
                 fix);
        close(pfd);
        return -EEXIST;
    }
    LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = pfd);
    rc = bpf_xdp_detach(x->ifindex, flags | XDP_FLAGS_REPLACE, &ao);
    close(pfd);
    if (rc) {
        snprintf(err, errlen, "cannot detach the stale XDP program %s (id %u) from %s: %s; %s",
                 pi.name, id, x->ifname, strerror(-rc), fix);
        return rc;
    }
    snprintf(note, notelen, "detached a stale %s (id %u, %s mode) from %s that no running process held "
             "(left by an earlier run that did not close)", pi.name, id,
             flags == XDP_FLAGS_SKB_MODE ? "skb" : "native", x->ifname);
    return 0;
}

static int clear_stale_fn(afxdp_port *x, char *err, size_t errlen) {
    x->ifindex = (int)if_nametoindex(x->ifname);
    if (!x->ifindex) return 0; /* gone, and its program with it */
    LIBBPF_OPTS(bpf_xdp_query_opts, qo);
    int rc = bpf_xdp_query(x->ifindex, 0, &qo);
    if (rc) {
        snprintf(err, errlen, "cannot query the XDP program on %s: %s", x->ifname, strerror(-rc));
        return rc;
    }
    if (qo.attach_mode == XDP_ATTACHED_NONE) return 0;
    char note[400] = "";
    rc = detach_stale(x, err, errlen, note, sizeof note);
    if (rc) return rc;
    snprintf(err, errlen, "%s", note);
    return 1;
}

int vfp_afxdp__clear_stale(const char *ifname, const char *netns, char *msg, size_t msglen) {
    if (msglen) msg[0] = 0;
    if (!ifname || !ifname[0] || strlen(ifname) >= IF_NAMESIZE) {
        snprintf(msg, msglen, "interface name \"%s\" is empty or longer than %d bytes", ifname ? ifname : "", IF_NAMESIZE - 1);
        return -EINVAL;
    }
    set_printers();
    afxdp_port x;
    memset(&x, 0, sizeof x);
    memcpy(x.ifname, ifname, strlen(ifname) + 1);
    x.netns = netns && netns[0] ? (char *)netns : NULL; /* read only */
    return in_netns(&x, clear_stale_fn, msg, msglen);
}

static void detach_prog(afxdp_port *x) {
    if (!x->prog) return;
    if (x->attached != XDP_MODE_UNSPEC) {
        /* Our program attached directly (libxdp made no dispatcher: no bpffs, as in most
         * containers): replace exactly it by nothing. libxdp 1.3.1's xdp_program__detach
         * (Debian 12's) opens the attached program by id and never closes it
         * (xdp_multiprog__from_id; fixed in 1.4.1): one program fd, and the kernel
         * program and maps it pins, leaked per port closed, a pod's detach each. Behind
         * a dispatcher, libxdp's own detach. */
        const uint32_t ours = xdp_program__id(x->prog);
        LIBBPF_OPTS(bpf_xdp_query_opts, qo);
        int rc = -1;
        if (ours && !bpf_xdp_query(x->ifindex, (int)mode_flag(x->attached), &qo) && qo.prog_id == ours) {
            LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = xdp_program__fd(x->prog));
            rc = bpf_xdp_detach(x->ifindex, mode_flag(x->attached) | XDP_FLAGS_REPLACE, &ao);
        }
        if (rc) rc = xdp_program__detach(x->prog, x->ifindex, x->attached, 0);
        if (rc) {
            /* Attached directly after all: replace exactly our program by nothing. */
            LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = xdp_program__fd(x->prog));
            bpf_xdp_detach(x->ifindex, mode_flag(x->attached) | XDP_FLAGS_REPLACE, &ao);
        }
    }
    if (x->map_fd >= 0) close(x->map_fd);
    x->map_fd = -1;
    xdp_program__close(x->prog);
    x->prog = NULL;
    x->attached = XDP_MODE_UNSPEC;
}

static const char *attach_fix(int rc, const afxdp_port *x, enum xdp_attach_mode m, char *buf, size_t len) {
    buf[0] = 0;
    if (rc == -EPERM || rc == -EACCES)
        snprintf(buf, len, " (needs root or CAP_NET_ADMIN+CAP_BPF+CAP_NET_RAW)");
    else if (rc == -ERANGE && m == XDP_MODE_NATIVE)
        snprintf(buf, len, " (the MTU is too large for native XDP on this device; on veth set the MTU ≤ 3506 "
                 "on %s and its peer (4 KiB pages), or use mode=skb)", x->ifname);
    else if (rc == -EOPNOTSUPP && m == XDP_MODE_NATIVE)
        snprintf(buf, len, " (the driver has no native XDP: use mode=skb)");
    return buf;
}

static int attach_prog(afxdp_port *x, enum xdp_attach_mode m, char *err, size_t errlen, char *note, size_t notelen) {
    for (int attempt = 0; attempt < 2; attempt++) {
        struct xdp_program *prog = xdp_program__find_file(XSK_PROG_FILE, NULL, NULL);
        long perr = libxdp_get_error(prog);
        if (perr) {
            snprintf(err, errlen, "cannot open libxdp's %s: %s (install libxdp1; set LIBXDP_OBJECT_PATH if it lives "
                     "elsewhere than /usr/lib/x86_64-linux-gnu/bpf)", XSK_PROG_FILE, strerror((int)-perr));
            return (int)perr;
        }
        struct bpf_map *map = bpf_object__find_map_by_name(xdp_program__bpf_obj(prog), "xsks_map");
        if (!map) {
            xdp_program__close(prog);
            snprintf(err, errlen, "libxdp's %s has no xsks_map (unexpected libxdp version)", XSK_PROG_FILE);
            return -ENOENT;
        }
        bpf_map__set_max_entries(map, x->o.queue_id + x->o.n_queues);
        int rc = xdp_program__attach(prog, x->ifindex, m, 0);
        if (!rc) {
            x->prog = prog;
            x->attached = m;
            x->map_fd = dup(bpf_map__fd(map));
            snprintf(x->info.prog, sizeof x->info.prog, "%s", xdp_program__name(prog));
            return 0;
        }
        xdp_program__close(prog);
        if ((rc == -EEXIST || rc == -EBUSY) && attempt == 0) {
            int s = detach_stale(x, err, errlen, note, notelen);
            if (s) return s;
            continue;
        }
        char fix[200];
        snprintf(err, errlen, "attaching %s in %s mode on %s (%s) failed: %s%s", XSK_PROG_NAME,
                 m == XDP_MODE_SKB ? "skb" : "native", x->ifname, ns_label(x), strerror(-rc),
                 attach_fix(rc, x, m, fix, sizeof fix));
        return rc;
    }
    return -EEXIST;
}

static void close_queues(afxdp_port *x) {
    for (uint16_t i = 0; i < x->o.n_queues; i++) {
        xq *q = &x->q[i];
        if (q->xsk) xsk_socket__delete(q->xsk);
        if (q->umem) xsk_umem__delete(q->umem);
        q->xsk = NULL;
        q->umem = NULL;
        q->fd = -1;
    }
}

static int open_queue(afxdp_port *x, xq *q, int zerocopy, char *err, size_t errlen) {
    const vfp_afxdp_opts *o = &x->o;
    struct xsk_umem_config uc = {
        .fill_size = o->ring_size, .comp_size = o->ring_size,
        .frame_size = o->frame_size, .frame_headroom = o->headroom, .flags = 0,
    };
    memset(&q->rx, 0, sizeof q->rx);
    memset(&q->tx, 0, sizeof q->tx);
    memset(&q->fill, 0, sizeof q->fill);
    memset(&q->comp, 0, sizeof q->comp);
    const char *mode = x->attached == XDP_MODE_SKB ? "skb" : "native";
    int rc = xsk_umem__create(&q->umem, q->area, x->area_bytes, &q->fill, &q->comp, &uc);
    if (rc) {
        snprintf(err, errlen, "UMEM for %s queue %u (%u frames of %u bytes) failed: %s%s", x->ifname, q->qid,
                 o->n_frames, o->frame_size, strerror(-rc),
                 rc == -EPERM ? " (needs root or CAP_NET_ADMIN+CAP_NET_RAW; raise RLIMIT_MEMLOCK on kernels < 5.11)" : "");
        q->umem = NULL;
        return rc;
    }
    struct xsk_socket_config sc = {
        .rx_size = o->ring_size, .tx_size = o->ring_size,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = mode_flag(x->attached),
        .bind_flags = (uint16_t)((zerocopy ? XDP_ZEROCOPY : XDP_COPY) | (o->need_wakeup ? XDP_USE_NEED_WAKEUP : 0)),
    };
    rc = xsk_socket__create(&q->xsk, x->ifname, q->qid, q->umem, &q->rx, &q->tx, &sc);
    if (rc) {
        q->xsk = NULL;
        const char *fix = "";
        if (zerocopy && (rc == -EOPNOTSUPP || rc == -EINVAL)) fix = " (the driver has no zero-copy AF_XDP (veth never has): use copy=copy)";
        else if (rc == -EINVAL) fix = " (the queue does not exist: check `ethtool -l`, or the ring size is not a power of two)";
        else if (rc == -EBUSY) fix = " (another XSK is bound to this queue: stop the other AF_XDP user)";
        else if (rc == -EPERM) fix = " (needs root or CAP_NET_ADMIN+CAP_NET_RAW)";
        snprintf(err, errlen, "XSK on %s queue %u (%s mode, %s) failed: %s%s", x->ifname, q->qid, mode,
                 zerocopy ? "zero-copy" : "copy", strerror(-rc), fix);
        return rc;
    }
    rc = xsk_socket__update_xskmap(q->xsk, x->map_fd);
    if (rc) {
        snprintf(err, errlen, "adding the XSK of %s queue %u to xsks_map failed: %s", x->ifname, q->qid, strerror(-rc));
        return rc;
    }
    q->fd = xsk_socket__fd(q->xsk);
    q->outstanding_tx = 0;
    q->n_free = 0;
    for (uint32_t f = o->n_frames; f-- > 0;) q->free_stack[q->n_free++] = (uint64_t)f << x->shift;
    refill(q);
    return 0;
}

static int setup(afxdp_port *x, char *err, size_t errlen) {
    char note[400] = "", why[1024] = "", e1[400];
    x->ifindex = (int)if_nametoindex(x->ifname);
    if (!x->ifindex) {
        snprintf(err, errlen, "AF_XDP: interface %s not found in %s: %s (check the name with `ip%s%s link`)",
                 x->ifname, ns_label(x), strerror(errno), x->netns ? " -n " : "",
                 x->netns ? (strrchr(x->netns, '/') ? strrchr(x->netns, '/') + 1 : x->netns) : "");
        return -ENODEV;
    }
    enum xdp_attach_mode modes[2];
    int nm = 0;
    if (x->o.mode != VFP_XDP_MODE_SKB) modes[nm++] = XDP_MODE_NATIVE;
    if (x->o.mode != VFP_XDP_MODE_NATIVE) modes[nm++] = XDP_MODE_SKB;
    int copies[2], nc = 0;
    if (x->o.copy != VFP_XDP_COPY) copies[nc++] = 1;
    if (x->o.copy != VFP_XDP_ZEROCOPY) copies[nc++] = 0;
    int rc = -EINVAL;
    for (int mi = 0; mi < nm; mi++) {
        rc = attach_prog(x, modes[mi], e1, sizeof e1, note, sizeof note);
        if (rc == -EEXIST || rc == -EBUSY) {
            snprintf(err, errlen, "AF_XDP: %s", e1);
            return rc;
        }
        if (rc) {
            size_t l = strlen(why);
            snprintf(why + l, sizeof why - l, "%s%s", l ? "; " : "", e1);
            continue;
        }
        for (int ci = 0; ci < nc; ci++) {
            rc = 0;
            for (uint16_t i = 0; i < x->o.n_queues && !rc; i++) rc = open_queue(x, &x->q[i], copies[ci], e1, sizeof e1);
            if (!rc) {
                x->info.mode = modes[mi] == XDP_MODE_SKB ? VFP_XDP_MODE_SKB : VFP_XDP_MODE_NATIVE;
                x->info.zerocopy = copies[ci];
                size_t l = strlen(note);
                if (why[0])
                    snprintf(note + l, sizeof note - l, "%s%s uses %s mode, %s (tried: %s)", l ? "; " : "", x->ifname,
                             vfp_xdp_mode__name(x->info.mode), copies[ci] ? "zero-copy" : "copy", why);
                snprintf(err, errlen, "%s", note);
                return 0;
            }
            close_queues(x);
            size_t l = strlen(why);
            snprintf(why + l, sizeof why - l, "%s%s", l ? "; " : "", e1);
        }
        detach_prog(x);
    }
    snprintf(err, errlen, "AF_XDP on %s (%s) queues %u..%u failed: %s", x->ifname, ns_label(x), x->o.queue_id,
             x->o.queue_id + x->o.n_queues - 1, why);
    return rc ? rc : -EINVAL;
}

static int teardown(afxdp_port *x, char *err, size_t errlen) {
    (void)err, (void)errlen;
    /* Program first, so the kernel stops redirecting into sockets about to close. */
    detach_prog(x);
    close_queues(x);
    return 0;
}

static void free_port(afxdp_port *x) {
    vfp_alloc a = x->a;
    if (x->q) {
        for (uint16_t i = 0; i < x->o.n_queues; i++) {
            xq *q = &x->q[i];
            if (q->area) munmap(q->area, x->area_bytes);
            if (q->free_stack) a.free(a.ctx, q->free_stack, (size_t)x->o.n_frames * sizeof(uint64_t));
            if (q->pkts) a.free(a.ctx, q->pkts, (size_t)x->o.n_frames * sizeof(vfp_pkt));
        }
        a.free(a.ctx, x->q, (size_t)x->o.n_queues * sizeof(xq));
    }
    if (x->netns) a.free(a.ctx, x->netns, strlen(x->netns) + 1);
    a.free(a.ctx, x, sizeof *x);
}

static void afxdp_close(vfp_port *p) {
    afxdp_port *x = (afxdp_port *)p;
    char err[256];
    if (in_netns(x, teardown, err, sizeof err)) {
        /* The netns is gone (deleted with its links): nothing is left attached, but the
         * sockets still need closing, which works from any netns. */
        x->prog ? xdp_program__close(x->prog) : (void)0;
        x->prog = NULL;
        if (x->map_fd >= 0) close(x->map_fd);
        close_queues(x);
    }
    free_port(x);
}

static const struct vfp_port_ops afxdp_ops = {
    .name = "afxdp",
    .rx_burst = afxdp_rx,
    .tx_burst = afxdp_tx,
    .free_burst = afxdp_free,
    .close = afxdp_close,
    .rx_fd = afxdp_rx_fd,
    .flush = afxdp_flush,
    /* A queue takes one XSK: a new port there waits for this one's close. At a stop,
     * nothing opens after: the sockets' releases (each a grace period) overlap. */
    .close_parallel = 1,
};

void vfp_afxdp_port__info(const vfp_port *p, vfp_afxdp_info *out) {
    const afxdp_port *x = (const afxdp_port *)p;
    *out = x->info;
    /* The kernel's counts of each socket since it was bound (a control-path read; the
     * workers never ask): frames lost before the worker saw them. */
    out->rx_ring_full = out->rx_fill_empty = out->rx_oversize = out->tx_link_down = out->tx_device_drops = 0;
    for (uint16_t i = 0; i < p->n_queues; i++) {
        /* Each queue's worker counts alone; an aligned 64-bit read is whole. */
        out->tx_link_down += __atomic_load_n(&x->q[i].tx_link_down, __ATOMIC_RELAXED);
        out->tx_device_drops += __atomic_load_n(&x->q[i].tx_device_drops, __ATOMIC_RELAXED);
        struct xdp_statistics st;
        memset(&st, 0, sizeof st);
        socklen_t sl = sizeof st;
        if (getsockopt(x->q[i].fd, SOL_XDP, XDP_STATISTICS, &st, &sl)) continue;
        out->rx_ring_full += st.rx_ring_full;
        /* rx_dropped counts a frame the kernel could not put in the socket: no fill-ring
         * frame (also counted in rx_fill_ring_empty_descs, since 5.9) or larger than a
         * UMEM frame (copy mode, no multi-buffer). A kernel without the fill-ring count
         * (a shorter struct) has its drops counted as fill misses, as they mostly are. */
        const int has_fill = sl >= offsetof(struct xdp_statistics, rx_fill_ring_empty_descs) + sizeof st.rx_fill_ring_empty_descs;
        const uint64_t fill = has_fill ? st.rx_fill_ring_empty_descs : st.rx_dropped;
        out->rx_fill_empty += fill;
        out->rx_oversize += st.rx_dropped > fill ? st.rx_dropped - fill : 0;
    }
}

int vfp_afxdp_port__create(vfp_port **out, const vfp_afxdp_opts *o, const vfp_alloc *a, char *err, size_t errlen) {
    if (errlen) err[0] = 0;
    if (!out || !o || !a) return -EINVAL;
    if (!o->ifname || !o->ifname[0] || strlen(o->ifname) >= IF_NAMESIZE) {
        snprintf(err, errlen, "AF_XDP: interface name \"%s\" is empty or longer than %d bytes",
                 o->ifname ? o->ifname : "", IF_NAMESIZE - 1);
        return -EINVAL;
    }
    if (o->frame_size != 2048 && o->frame_size != 4096) {
        snprintf(err, errlen, "AF_XDP on %s: frame size %u is not 2048 or 4096", o->ifname, o->frame_size);
        return -EINVAL;
    }
    if (!o->ring_size || (o->ring_size & (o->ring_size - 1)) || o->ring_size > 65536) {
        snprintf(err, errlen, "AF_XDP on %s: ring size %u is not a power of two in 1..65536", o->ifname, o->ring_size);
        return -EINVAL;
    }
    if (o->n_frames < 64 || o->n_frames > (1u << 20)) {
        snprintf(err, errlen, "AF_XDP on %s: %u frames per queue is outside 64..1048576", o->ifname, o->n_frames);
        return -EINVAL;
    }
    if (o->n_queues > AFXDP_MAX_QUEUES) {
        snprintf(err, errlen, "AF_XDP on %s: %u queues, at most %d", o->ifname, o->n_queues, AFXDP_MAX_QUEUES);
        return -EINVAL;
    }
    if (o->headroom + XDP_PACKET_HEADROOM + 1024 > o->frame_size) {
        snprintf(err, errlen, "AF_XDP on %s: headroom %u leaves less than 1024 bytes of a %u-byte frame after "
                 "the kernel's %u bytes of XDP headroom", o->ifname, o->headroom, o->frame_size, XDP_PACKET_HEADROOM);
        return -EINVAL;
    }
    if ((o->mode != VFP_XDP_MODE_AUTO && o->mode != VFP_XDP_MODE_NATIVE && o->mode != VFP_XDP_MODE_SKB) ||
        (o->copy != VFP_XDP_COPY_AUTO && o->copy != VFP_XDP_COPY && o->copy != VFP_XDP_ZEROCOPY)) {
        snprintf(err, errlen, "AF_XDP on %s: mode %d or copy %d is not a known value", o->ifname, o->mode, o->copy);
        return -EINVAL;
    }
    afxdp_port *x = (afxdp_port *)a->alloc(a->ctx, sizeof *x, VFP_CACHE_LINE);
    if (!x) return -ENOMEM;
    memset(x, 0, sizeof *x);
    x->port.ops = &afxdp_ops;
    x->port.n_queues = o->n_queues;
    x->a = *a;
    x->o = *o;
    x->map_fd = -1;
    snprintf(x->ifname, sizeof x->ifname, "%s", o->ifname);
    x->o.ifname = x->ifname;
    if (o->netns) {
        size_t l = strlen(o->netns) + 1;
        x->netns = (char *)a->alloc(a->ctx, l, 8);
        if (!x->netns) { free_port(x); return -ENOMEM; }
        memcpy(x->netns, o->netns, l);
    }
    x->o.netns = x->netns;
    x->port_id = o->port_id;
    x->shift = o->frame_size == 4096 ? 12 : 11;
    x->base_mask = ~(uint64_t)(o->frame_size - 1);
    x->rx_headroom = o->headroom + XDP_PACKET_HEADROOM;
    x->max_frame = o->frame_size - x->rx_headroom;
    if (!o->n_queues) {
        int rc = in_netns(x, count_queues, err, errlen);
        if (rc) { free_port(x); return rc; }
        /* Every queue of a many-queue NIC: the port's n_frames are shared out over them
         * (at least 1024 a queue), not given to each: with the defaults a 32-channel NIC
         * would otherwise pin 512 MiB of UMEM for one port. */
        if (x->o.n_queues > 1) {
            uint32_t per = o->n_frames / x->o.n_queues;
            if (per < 1024) per = 1024;
            if (per < x->o.n_frames) x->o.n_frames = per;
        }
    }
    const uint16_t nq = x->o.n_queues;
    const uint32_t nf = x->o.n_frames;
    x->area_bytes = (size_t)nf * o->frame_size;
    /* Frames the fill ring may not take: tx copies from foreign ports need them. */
    x->fill_reserve = nf / 4 < 256 ? nf / 4 : 256;
    x->info.need_wakeup = o->need_wakeup ? 1 : 0;
    x->info.headroom = x->rx_headroom;
    x->info.max_frame = x->max_frame;
    x->info.frames = nf;
    x->info.umem_bytes = (uint64_t)x->area_bytes * nq;
    x->q = (xq *)a->alloc(a->ctx, (size_t)nq * sizeof(xq), VFP_CACHE_LINE);
    if (!x->q) { free_port(x); return -ENOMEM; }
    memset(x->q, 0, (size_t)nq * sizeof(xq));
    for (uint16_t i = 0; i < nq; i++) {
        xq *q = &x->q[i];
        q->x = x;
        q->fd = -1;
        q->qid = o->queue_id + i;
        q->area = (uint8_t *)mmap(NULL, x->area_bytes, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (q->area == MAP_FAILED) {
            q->area = NULL;
            snprintf(err, errlen, "AF_XDP on %s: cannot map %zu bytes of UMEM: %s", o->ifname, x->area_bytes, strerror(errno));
            free_port(x);
            return -ENOMEM;
        }
        q->free_stack = (uint64_t *)a->alloc(a->ctx, (size_t)nf * sizeof(uint64_t), 8);
        q->pkts = (vfp_pkt *)a->alloc(a->ctx, (size_t)nf * sizeof(vfp_pkt), VFP_CACHE_LINE);
        if (!q->free_stack || !q->pkts) { free_port(x); return -ENOMEM; }
        for (uint32_t f = 0; f < nf; f++) {
            q->pkts[f].owner = &x->port;
            q->pkts[f].opaque = q;
        }
    }
    pthread_once(&print_once, set_printers);
    int rc = in_netns(x, setup, err, errlen);
    if (rc) {
        char e2[64];
        in_netns(x, teardown, e2, sizeof e2);
        free_port(x);
        return rc;
    }
    *out = &x->port;
    return 0;
}
