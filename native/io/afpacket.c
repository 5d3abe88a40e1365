/* The AF_PACKET backend. RX: a TPACKET_V3 (or V2) ring whose frames are handed out in
 * place (zero copy), a block (or frame) going back to the kernel once every packet from it
 * is released. TX: a TPACKET_V2 ring on a second socket; every packet is copied in, one
 * send() per burst. With several queues, each queue is such a pair of sockets, the rx ones
 * joined in a PACKET_FANOUT group that spreads flows over them by their hash. */
#include "io/afpacket.h"

#include "core/csum.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <stdint.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef VFP_HAVE_AFXDP /* libbpf is there */
#include <bpf/bpf.h>
#include <linux/bpf.h>
#endif

#define AFP_VLAN_HLEN 4

/* One queue: an rx socket and ring, a tx socket and ring, and the rx descriptors. Used by
 * one worker only (dp.c gives queue q to worker q % workers, and the packets it hands out
 * come back to it), so nothing here is shared between threads. */
typedef struct afp_q {
    int rx_fd, tx_fd;

    /* rx */
    uint8_t *rx_map;
    size_t rx_map_len;
    uint32_t *blk_ref;          /* per block: packets handed out + 1 while rx walks it */
    uint32_t cur_blk;           /* the block rx reads next / is walking */
    int walking;                /* cur_blk is USER-owned and partly walked */
    uint8_t *next_pkt;          /* walking: next tpacket3_hdr */
    uint32_t left_in_blk;       /* walking: packets not yet read */
    uint8_t **rx_slot;          /* v2: each frame's tpacket2_hdr */
    uint32_t rx_frames, rx_head;/* v2: ring size, the frame rx reads next */
    vfp_pkt *descs;
    uint16_t *free_idx;         /* stack of free descriptor indices */
    uint32_t n_free;

    /* tx */
    uint8_t *tx_map;
    size_t tx_map_len;
    uint8_t **tx_slot;          /* each slot's tpacket2_hdr, so tx needs no division */
    uint32_t tx_frames, tx_head;
    int tx_pending;             /* frames queued whose kick has not succeeded */
    int qdisc_bypass;           /* PACKET_QDISC_BYPASS set: a refused frame is freed, not queued */

    uint64_t rx_truncated, rx_kernel_drops, tx_oversize, tx_kick_errors, tx_link_down, tx_device_drops;
    uint64_t rx_csum_finished, rx_csum_left; /* CHECKSUM_PARTIAL frames: finished here, or not */
} __attribute__((aligned(64))) afp_q;

typedef struct afp_port {
    vfp_port port;
    vfp_alloc a;
    char ifname[IF_NAMESIZE];
    afp_q *qs;
    uint16_t nq;
    int v2;                     /* TPACKET_V2 rx: per-frame status, no blocks */
    uint32_t rx_block_size, rx_blocks;
    uint32_t n_descs;           /* per queue */
    uint32_t tx_data_off;       /* where the kernel reads a V2 tx frame's bytes */
    uint32_t tx_max;            /* largest frame we copy in; larger are dropped */
    uint32_t mtu;
    uint32_t fanout_id;         /* nq > 1: the PACKET_FANOUT group the rx sockets share */

    vfp_afpacket_stats st;
    int stack_on;               /* opts.stack_drop took effect: this port is a user of its netdev's drop */
    dev_t stack_ns_dev;         /* which drop: netns and ifindex */
    ino_t stack_ns_ino;
    int stack_ifindex;
    char stack_note[160];
} afp_port;

void vfp_afpacket_opts__defaults(vfp_afpacket_opts *o) {
    memset(o, 0, sizeof *o);
    o->headroom = 256;
    /* Many small blocks rather than a few big ones: when traffic trickles, the retire
     * timer hands over a nearly empty block every block_timeout_ms, so the ring rides
     * out a descheduled worker for about rx_blocks × block_timeout_ms (64 ms here)
     * before the kernel drops; 16 × 1 MiB lost frames under load on 2 cores. */
    o->rx_block_size = 256u << 10;
    o->rx_blocks = 64;
    o->block_timeout_ms = 1;
    o->tx_frames = 2048;
    o->rx_descs = 1024;
    o->qdisc_bypass = 1;
    o->rx_ring_version = 3;
    o->queues = 1;
}

/* ---- rx ---- */

/* A descriptor's opaque: its queue in the high half, its block (V3) or slot (V2) in the
 * low half, so a release finds both without a search. */
#define AFP_OPAQUE(q, i) ((void *)(((uintptr_t)(q) << 32) | (uintptr_t)(i)))
#define AFP_OPQ_Q(o) ((uint32_t)((uintptr_t)(o) >> 32))
#define AFP_OPQ_I(o) ((uint32_t)((uintptr_t)(o) & 0xffffffffu))

static inline struct tpacket_block_desc *blk_at(const afp_port *p, const afp_q *x, uint32_t b) {
    return (struct tpacket_block_desc *)(x->rx_map + (size_t)b * p->rx_block_size);
}

static inline void blk_unref(const afp_port *p, afp_q *x, uint32_t b) {
    if (--x->blk_ref[b] == 0) {
        /* Release store: our reads of the block's frames (and the engine's writes into
         * their headroom) must be complete before the kernel sees KERNEL and refills it. */
        __atomic_store_n(&blk_at(p, x, b)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    }
}

/* Puts the 802.1Q tag the kernel took out (rx-vlan offload) back in front of the
 * payload, in the headroom: PACKET_RESERVE has 4 bytes more than asked. */
static inline void vlan_back(uint8_t **data, uint32_t *len, uint32_t *headroom, uint16_t tpid, uint16_t tci) {
    uint8_t *d = *data - AFP_VLAN_HLEN;
    memmove(d, *data, 12);
    d[12] = (uint8_t)(tpid >> 8), d[13] = (uint8_t)tpid;
    d[14] = (uint8_t)(tci >> 8), d[15] = (uint8_t)tci;
    *data = d;
    *len += AFP_VLAN_HLEN;
    *headroom -= AFP_VLAN_HLEN;
}

static uint16_t afp_rx_v2(vfp_port *vp, uint16_t q, vfp_pkt **pkts, uint16_t n);

/* A frame whose sender left its TCP/UDP checksum to the device (a veth with tx checksum
 * offload on: CHECKSUM_PARTIAL, which the ring marks CSUMNOTREADY). Sent on as it is, it
 * reaches the far pod with a wrong checksum and is dropped there: finished here instead,
 * as the device would have. */
static void csum_finish(afp_q *x, uint8_t *data, uint32_t len) {
    if (vfp_csum__finish_l4(data, len)) x->rx_csum_finished++;
    else x->rx_csum_left++;
}

static uint16_t afp_rx(vfp_port *vp, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    afp_port *p = (afp_port *)vp;
    if (VFP_UNLIKELY(q >= p->nq)) return 0;
    if (p->v2) return afp_rx_v2(vp, q, pkts, n); /* once per burst, always the same way */
    afp_q *x = &p->qs[q];
    uint16_t got = 0;
    uint64_t bytes = 0;
    while (got < n) {
        if (!x->walking) {
            struct tpacket_block_desc *bd = blk_at(p, x, x->cur_blk);
            /* Acquire load: the kernel writes the frames, then (smp_wmb) the status; we
             * must not read frame bytes from before the status said USER. */
            if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
            x->walking = 1;
            x->blk_ref[x->cur_blk] = 1; /* the walk's own reference */
            x->left_in_blk = bd->hdr.bh1.num_pkts;
            x->next_pkt = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
        }
        if (x->left_in_blk == 0) {
            uint32_t b = x->cur_blk;
            x->walking = 0;
            x->cur_blk = b + 1 == p->rx_blocks ? 0 : b + 1;
            blk_unref(p, x, b);
            continue;
        }
        if (VFP_UNLIKELY(x->n_free == 0)) {
            p->port.rx_nombuf++; /* a burst cut short: the caller holds every descriptor */
            break;
        }
        struct tpacket3_hdr *h = (struct tpacket3_hdr *)x->next_pkt;
        x->next_pkt += h->tp_next_offset;
        x->left_in_blk--;
        if (VFP_UNLIKELY(h->tp_snaplen < h->tp_len)) {
            x->rx_truncated++;
            continue;
        }
        vfp_pkt *d = &x->descs[x->free_idx[--x->n_free]];
        uint8_t *data = (uint8_t *)h + h->tp_mac;
        uint32_t len = h->tp_snaplen;
        uint32_t headroom = (uint32_t)h->tp_mac - (uint32_t)TPACKET3_HDRLEN;
        if (h->tp_status & TP_STATUS_VLAN_VALID)
            vlan_back(&data, &len, &headroom,
                      (h->tp_status & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid ? h->hv1.tp_vlan_tpid
                                                                                    : ETH_P_8021Q,
                      (uint16_t)h->hv1.tp_vlan_tci);
        if (VFP_UNLIKELY(h->tp_status & TP_STATUS_CSUMNOTREADY)) csum_finish(x, data, len);
        d->data = data;
        d->len = len;
        d->headroom = headroom;
        d->reason = 0;
        d->tx_ol = 0;
        d->owner = vp;
        d->opaque = AFP_OPAQUE(q, x->cur_blk);
        x->blk_ref[x->cur_blk]++;
        pkts[got++] = d;
        bytes += len;
    }
    /* Several workers count into the port's totals: the port block's counters are
     * read for status only, and a lost increment there is cosmetic, so no atomics on
     * the hot path when nq is 1; with several queues, relaxed atomic adds. */
    if (p->nq == 1) vp->rx_pkts += got, vp->rx_bytes += bytes;
    else if (got) __atomic_fetch_add(&vp->rx_pkts, got, __ATOMIC_RELAXED), __atomic_fetch_add(&vp->rx_bytes, bytes, __ATOMIC_RELAXED);
    return got;
}

/* TPACKET_V2: frames in ring order, each ours once its status says USER. A frame held
 * by the caller (not yet released) makes the kernel drop what it would write there. */
static uint16_t afp_rx_v2(vfp_port *vp, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    afp_port *p = (afp_port *)vp;
    afp_q *x = &p->qs[q];
    uint16_t got = 0;
    uint64_t bytes = 0;
    while (got < n) {
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)x->rx_slot[x->rx_head];
        /* Acquire: the kernel writes the frame, then (smp_wmb) its status. */
        uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
        if (!(st & TP_STATUS_USER)) break;
        if (VFP_UNLIKELY(x->n_free == 0)) {
            p->port.rx_nombuf++;
            break;
        }
        uint32_t idx = x->rx_head;
        x->rx_head = idx + 1 == x->rx_frames ? 0 : idx + 1;
        if (VFP_UNLIKELY(h->tp_snaplen < h->tp_len)) {
            x->rx_truncated++;
            __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
            continue;
        }
        vfp_pkt *d = &x->descs[x->free_idx[--x->n_free]];
        uint8_t *data = (uint8_t *)h + h->tp_mac;
        uint32_t len = h->tp_snaplen;
        uint32_t headroom = (uint32_t)h->tp_mac - (uint32_t)TPACKET2_HDRLEN;
        if (st & TP_STATUS_VLAN_VALID)
            vlan_back(&data, &len, &headroom,
                      (st & TP_STATUS_VLAN_TPID_VALID) && h->tp_vlan_tpid ? h->tp_vlan_tpid : ETH_P_8021Q,
                      (uint16_t)h->tp_vlan_tci);
        if (VFP_UNLIKELY(st & TP_STATUS_CSUMNOTREADY)) csum_finish(x, data, len);
        d->data = data;
        d->len = len;
        d->headroom = headroom;
        d->reason = 0;
        d->tx_ol = 0;
        d->owner = vp;
        d->opaque = AFP_OPAQUE(q, idx);
        pkts[got++] = d;
        bytes += len;
    }
    if (p->nq == 1) vp->rx_pkts += got, vp->rx_bytes += bytes;
    else if (got) __atomic_fetch_add(&vp->rx_pkts, got, __ATOMIC_RELAXED), __atomic_fetch_add(&vp->rx_bytes, bytes, __ATOMIC_RELAXED);
    return got;
}

static void afp_free(vfp_port *vp, vfp_pkt **pkts, uint16_t n) {
    afp_port *p = (afp_port *)vp;
    for (uint16_t i = 0; i < n; i++) {
        vfp_pkt *d = pkts[i];
        afp_q *x = &p->qs[AFP_OPQ_Q(d->opaque)];
        x->free_idx[x->n_free++] = (uint16_t)(d - x->descs);
        if (p->v2) {
            /* Release: the engine's writes into the frame's headroom are done before the
             * kernel may refill it. */
            struct tpacket2_hdr *h = (struct tpacket2_hdr *)x->rx_slot[AFP_OPQ_I(d->opaque)];
            __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        } else {
            blk_unref(p, x, AFP_OPQ_I(d->opaque));
        }
    }
}

/* ---- tx ---- */

/* The oldest frame queued to the kernel (the kernel's head: the first of the run of
 * SEND_REQUEST slots that ends just before ours), or -1 when none is. Only this worker
 * sends on this socket and its send returned: no slot asking to be sent is the
 * kernel's meanwhile. */
static int64_t kernel_head(const afp_q *x) {
    int64_t oldest = -1;
    uint32_t i = x->tx_head;
    for (uint32_t k = 0; k < x->tx_frames; k++) {
        i = i ? i - 1 : x->tx_frames - 1;
        const struct tpacket2_hdr *h = (const struct tpacket2_hdr *)x->tx_slot[i];
        if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_SEND_REQUEST) break;
        oldest = i;
    }
    return oldest;
}

static void afp_kick(afp_q *x) {
    if (send(x->tx_fd, NULL, 0, MSG_DONTWAIT) >= 0) { x->tx_pending = 0; return; }
    /* ENOBUFS with the qdisc bypassed: the device refused the frame at the kernel's head
     * (no carrier, its queue stopped, or a frame over the MTU of what is behind it: a
     * veth's peer, a pod's VF). The kernel hands that frame back as SEND_REQUEST and
     * tries it again at every send, so one it always refuses held the ring for good
     * (helper-87: one frame over a pod's MTU cut the pod off, the count climbing at every
     * kick). It is dropped here, as a NIC drops what it cannot take and as the kernel
     * documents PACKET_QDISC_BYPASS: its length set to 0, which the kernel (PACKET_LOSS
     * on) skips as malformed, its slot AVAILABLE and its head past it, without a word in
     * its log. One frame each refusal; the rest go at the next kick. */
    if (errno == ENOBUFS && x->qdisc_bypass) {
        const int64_t head = kernel_head(x);
        if (head >= 0) {
            struct tpacket2_hdr *h = (struct tpacket2_hdr *)x->tx_slot[head];
            __atomic_store_n(&h->tp_len, 0, __ATOMIC_RELEASE);
            x->tx_device_drops++;
        }
    }
    /* EAGAIN/ENOBUFS: the device queue is busy; the frames stay SEND_REQUEST and the
     * next kick (next burst or flush) sends them. */
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
        x->tx_kick_errors++;
        x->tx_pending = 0; /* e.g. ENETDOWN: retrying every idle loop would not help */
        /* The kernel refused before taking any frame (the device down or gone): what is
         * queued is dropped now, as a NIC or a qdisc drops it, rather than left in the
         * ring to go out seconds late when the link returns, counted as sent (helper-71).
         * Only this worker sends on this socket, and its send returned: no slot asking to
         * be sent is the kernel's. The kernel takes frames in ring order from its own
         * head, which is the oldest one queued: our head goes back there, so the next
         * frame is where the kernel looks (left ahead of it, the kernel would find an
         * available slot at its head and send nothing until ours came round). */
        const int64_t head = kernel_head(x);
        if (head < 0) return;
        /* From the kernel's head up to ours; the whole ring when every slot is queued. */
        uint32_t dropped = (x->tx_head + x->tx_frames - (uint32_t)head) % x->tx_frames;
        if (!dropped) dropped = x->tx_frames;
        for (uint32_t k = 0; k < dropped; k++)
            __atomic_store_n(&((struct tpacket2_hdr *)x->tx_slot[((uint32_t)head + k) % x->tx_frames])->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
        x->tx_head = (uint32_t)head;
        __atomic_fetch_add(&x->tx_link_down, dropped, __ATOMIC_RELAXED);
    }
}

static uint16_t afp_tx(vfp_port *vp, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    afp_port *p = (afp_port *)vp;
    afp_q *x = &p->qs[q < p->nq ? q : 0];
    uint16_t taken = 0;
    uint64_t bytes = 0, sent = 0;
    for (; taken < n; taken++) {
        vfp_pkt *pk = pkts[taken];
        uint32_t len = pk->len;
        /* Too big for the ring slot, or for the device (the kernel allows MTU + 14, +4
         * only when the frame carries a VLAN tag): taken and dropped, so a caller that
         * retries the untaken rest never loops on it; counted in tx_oversize. */
        if (VFP_UNLIKELY(len > p->tx_max || len < 14 ||
                         (len > p->mtu + 14 &&
                          !(len >= 18 && ((pk->data[12] == 0x81 && pk->data[13] == 0x00) ||
                                          (pk->data[12] == 0x88 && pk->data[13] == 0xa8)))))) {
            x->tx_oversize++;
            continue;
        }
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)x->tx_slot[x->tx_head];
        /* Acquire: the kernel is done reading the slot before we overwrite it. With
         * PACKET_LOSS a bad frame comes back AVAILABLE, never WRONG_FORMAT. */
        if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) {
            /* The frames the ring could not take, as the other backends count them. */
            if (p->nq == 1) vp->tx_full += (uint64_t)(n - taken);
            else __atomic_fetch_add(&vp->tx_full, (uint64_t)(n - taken), __ATOMIC_RELAXED);
            break;
        }
        memcpy((uint8_t *)h + p->tx_data_off, pk->data, len);
        h->tp_len = len;
        /* Release: the bytes and length are visible before the kernel sees the request. */
        __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        x->tx_head = x->tx_head + 1 == x->tx_frames ? 0 : x->tx_head + 1;
        bytes += len;
        sent++;
    }
    if (sent) x->tx_pending = 1;
    if (p->nq == 1) vp->tx_pkts += sent, vp->tx_bytes += bytes;
    else if (sent) __atomic_fetch_add(&vp->tx_pkts, sent, __ATOMIC_RELAXED), __atomic_fetch_add(&vp->tx_bytes, bytes, __ATOMIC_RELAXED);
    vfp_pkt__free_burst(pkts, taken); /* copies made: originals go home */
    if (x->tx_pending) afp_kick(x);
    return taken;
}

static void afp_flush(vfp_port *vp, uint16_t q) {
    afp_port *p = (afp_port *)vp;
    if (q < p->nq && p->qs[q].tx_pending) afp_kick(&p->qs[q]);
}

static int afp_rx_fd(vfp_port *vp, uint16_t q) {
    afp_port *p = (afp_port *)vp;
    return q < p->nq ? p->qs[q].rx_fd : -1;
}

/* Work that waits in the kernel (for an RCU grace period, mostly) run on a thread of its
 * own so that several such waits overlap; inline when no thread can be had. */
typedef struct side {
    pthread_t t;
    int started;
} side;

static void side_start(side *s, void *(*fn)(void *), void *arg) {
    s->started = !pthread_create(&s->t, NULL, fn, arg);
    if (!s->started) fn(arg);
}

static void side_join(side *s) {
    if (s->started) pthread_join(s->t, NULL);
    s->started = 0;
}

static void *close_thread(void *v) {
    close((int)(intptr_t)v);
    return NULL;
}

static void stack_release(afp_port *p);

static void afp_destroy(afp_port *p) {
    vfp_alloc a = p->a;
    stack_release(p);
    if (p->qs) {
        /* Releasing a packet socket waits for a grace period (synchronize_net): every
         * close runs on a thread of its own, so the waits overlap. */
        side closing[2 * VFP_AFPACKET_MAX_QUEUES] = { 0 };
        uint32_t nc = 0;
        for (uint16_t q = 0; q < p->nq; q++) {
            afp_q *x = &p->qs[q];
            if (x->rx_map) munmap(x->rx_map, x->rx_map_len);
            if (x->tx_map) munmap(x->tx_map, x->tx_map_len);
            if (x->tx_fd >= 0) side_start(&closing[nc++], close_thread, (void *)(intptr_t)x->tx_fd);
            if (x->rx_fd >= 0) side_start(&closing[nc++], close_thread, (void *)(intptr_t)x->rx_fd);
        }
        for (uint32_t i = 0; i < nc; i++) side_join(&closing[i]);
        for (uint16_t q = 0; q < p->nq; q++) {
            afp_q *x = &p->qs[q];
            if (x->blk_ref) a.free(a.ctx, x->blk_ref, (size_t)p->rx_blocks * sizeof(uint32_t));
            if (x->descs) a.free(a.ctx, x->descs, (size_t)p->n_descs * sizeof(vfp_pkt));
            if (x->free_idx) a.free(a.ctx, x->free_idx, (size_t)p->n_descs * sizeof(uint16_t));
            if (x->tx_slot) a.free(a.ctx, x->tx_slot, (size_t)x->tx_frames * sizeof(uint8_t *));
            if (x->rx_slot) a.free(a.ctx, x->rx_slot, (size_t)x->rx_frames * sizeof(uint8_t *));
        }
        a.free(a.ctx, p->qs, (size_t)p->nq * sizeof(afp_q));
    }
    a.free(a.ctx, p, sizeof *p);
}

static void afp_close(vfp_port *vp) {
    afp_port *p = (afp_port *)vp;
    for (uint16_t q = 0; q < p->nq; q++)
        if (p->qs[q].tx_pending) afp_kick(&p->qs[q]);
    afp_destroy(p);
}

static const struct vfp_port_ops afp_ops = {
    .name = "afpacket",
    .rx_burst = afp_rx,
    .tx_burst = afp_tx,
    .free_burst = afp_free,
    .close = afp_close,
    .rx_fd = afp_rx_fd,
    .flush = afp_flush,
    /* Its sockets and drop link are its own: a new port on the netdev makes new ones. */
    .close_async = 1,
};

void vfp_afpacket_port__stats(vfp_port *vp, vfp_afpacket_stats *st) {
    afp_port *p = (afp_port *)vp;
    *st = p->st;
    /* A control-path read of counters the workers write: a value may lag by a burst. */
    for (uint16_t q = 0; q < p->nq; q++) {
        afp_q *x = &p->qs[q];
        struct tpacket_stats_v3 ks;
        socklen_t sl = sizeof ks;
        if (getsockopt(x->rx_fd, SOL_PACKET, PACKET_STATISTICS, &ks, &sl) == 0) x->rx_kernel_drops += ks.tp_drops;
        st->rx_truncated += __atomic_load_n(&x->rx_truncated, __ATOMIC_RELAXED);
        st->rx_kernel_drops += x->rx_kernel_drops;
        st->tx_oversize += __atomic_load_n(&x->tx_oversize, __ATOMIC_RELAXED);
        st->tx_kick_errors += __atomic_load_n(&x->tx_kick_errors, __ATOMIC_RELAXED);
        st->tx_link_down += __atomic_load_n(&x->tx_link_down, __ATOMIC_RELAXED);
        st->tx_device_drops += __atomic_load_n(&x->tx_device_drops, __ATOMIC_RELAXED);
        st->rx_csum_finished += __atomic_load_n(&x->rx_csum_finished, __ATOMIC_RELAXED);
        st->rx_csum_left += __atomic_load_n(&x->rx_csum_left, __ATOMIC_RELAXED);
        st->ring_bytes += x->rx_map_len + x->tx_map_len;
    }
    st->stack_drop = p->stack_on;
    st->stack_drop_note = p->stack_note;
}

/* ---- setup ---- */

static uint32_t align_up(uint32_t v, uint32_t a) { return (v + a - 1) / a * a; }

static int fail(char *err, size_t errlen, int rc, const char *fmt, const char *a1, const char *a2) {
    snprintf(err, errlen, fmt, a1, a2);
    return rc;
}

static int sock_err(afp_port *p, const char *what, int e, char *err, size_t errlen) {
    if (e == EPERM || e == EACCES)
        snprintf(err, errlen, "afpacket %s: %s: %s; AF_PACKET needs CAP_NET_RAW (run as root)",
                 p->ifname, what, strerror(e));
    else
        snprintf(err, errlen, "afpacket %s: %s: %s", p->ifname, what, strerror(e));
    return -e;
}

#define SETOPT(fd, opt, val, what)                                                   \
    do {                                                                             \
        int v_ = (val);                                                              \
        if (setsockopt((fd), SOL_PACKET, (opt), &v_, sizeof v_) < 0)                 \
            return sock_err(p, what, errno, err, errlen);                            \
    } while (0)

/* opts.stack_drop: a program on the interface's tcx ingress, attached through a BPF link
 * (bpf(BPF_LINK_CREATE), attach type BPF_TCX_INGRESS = 46, Linux 6.6; named by number,
 * as libbpf 1.1's headers predate it), that drops every frame while its one-slot array
 * map says 1. AF_PACKET taps run before tcx, so the port still gets every frame.
 *
 * Attaching and detaching a tcx program each wait for an RCU grace period under the
 * RTNL lock (so behind any netdev moving between namespaces: a CNI ADD's VF move holds
 * RTNL for ~20 ms). So the link stays, once made, for as long as this process runs and
 * the netdev exists: a port switches the drop on and off by writing the map, which waits
 * for nothing, and the next port on the netdev (the next pod on that VF's representor)
 * finds it there. Links are not pinned: the process dying detaches them all. A netdev
 * that goes away detaches its link; the entry is then found stale and replaced or
 * reaped. Ports sharing a netdev (one still closing in the background) count as users;
 * the drop goes off with the last. */
#ifdef VFP_HAVE_AFXDP
#define DROPS_MAX 1024

typedef struct drop_ent {
    dev_t ns_dev;
    ino_t ns_ino;
    int ifindex;
    int link, map;
    int users;
} drop_ent;

static pthread_mutex_t g_drop_mu = PTHREAD_MUTEX_INITIALIZER;
static drop_ent g_drops[DROPS_MAX];
static int g_ndrops;

static int drop_set(const drop_ent *d, uint32_t on) {
    uint32_t key = 0;
    return bpf_map_update_elem(d->map, &key, &on, BPF_ANY);
}

/* The link still sits on the netdev it was made for (a netdev that went away leaves it
 * detached: its tcx ifindex reads 0). */
static int drop_alive(const drop_ent *d) {
    /* struct bpf_link_info: type, id, prog_id, then a union that 64-bit members align
     * to 8 bytes, whose tcx member is ifindex, attach_type: read by offset, as libbpf
     * 1.1's headers predate tcx. */
    uint32_t info[32];
    uint32_t len = sizeof info;
    memset(info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(d->link, info, &len)) return 0;
    return info[4] == (uint32_t)d->ifindex;
}

static void drop_forget(int i) {
    close(g_drops[i].link);
    close(g_drops[i].map);
    g_drops[i] = g_drops[--g_ndrops];
}

/* A new drop for ifindex: map, program, link. 0, or -errno with p->stack_note set. */
static int drop_make(afp_port *p, drop_ent *d, int ifindex) {
    d->map = bpf_map_create(BPF_MAP_TYPE_ARRAY, "vfp_stack_on", 4, 4, 1, NULL);
    if (d->map < 0) {
        int e = errno;
        snprintf(p->stack_note, sizeof p->stack_note, "cannot create the drop's map: %s (needs CAP_BPF: run as root)",
                 strerror(e));
        return -e;
    }
    struct bpf_insn prog[] = {
        { .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = d->map },
        { 0 },
        { .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = 10, .off = -4, .imm = 0 },       /* key = 0 */
        { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 2, .src_reg = 10 },
        { .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = -4 },
        { .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
        { .code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = 0, .off = 4, .imm = 0 },        /* no slot: pass */
        { .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = 1, .src_reg = 0 },
        { .code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = 1, .off = 2, .imm = 0 },        /* off: pass */
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 2 /* TC_ACT_SHOT */ },
        { .code = BPF_JMP | BPF_EXIT },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = -1 /* TCX_NEXT */ },
        { .code = BPF_JMP | BPF_EXIT },
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "vfp_stack_drop", "GPL", prog, sizeof prog / sizeof prog[0], NULL);
    if (fd < 0) {
        int e = errno;
        snprintf(p->stack_note, sizeof p->stack_note, "cannot load the drop program: %s (needs CAP_BPF: run as root)",
                 strerror(e));
        close(d->map);
        return -e;
    }
    d->link = bpf_link_create(fd, ifindex, (enum bpf_attach_type)46, NULL);
    int e = errno;
    close(fd);
    if (d->link < 0) {
        snprintf(p->stack_note, sizeof p->stack_note, "cannot attach to tcx ingress of %s: %s%s", p->ifname, strerror(e),
                 e == EINVAL ? " (needs Linux >= 6.6)" : "");
        close(d->map);
        return -e;
    }
    d->ifindex = ifindex;
    d->users = 0;
    return 0;
}
#endif

/* Switches the drop on for the port's netdev, making it the first time. A failure
 * leaves the port usable and says why in stack_note. Runs in the port's netns. */
static void stack_drop(afp_port *p, int ifindex) {
#ifdef VFP_HAVE_AFXDP
    struct stat ns;
    if (stat("/proc/thread-self/ns/net", &ns)) {
        snprintf(p->stack_note, sizeof p->stack_note, "cannot tell this thread's netns: %s", strerror(errno));
        return;
    }
    pthread_mutex_lock(&g_drop_mu);
    int found = -1;
    for (int i = 0; i < g_ndrops;) {
        drop_ent *d = &g_drops[i];
        if (d->users == 0 && !drop_alive(d)) { /* its netdev is gone: reap it */
            drop_forget(i);
            continue;
        }
        if (d->ns_dev == ns.st_dev && d->ns_ino == ns.st_ino && d->ifindex == ifindex) found = i;
        i++;
    }
    if (found >= 0 && g_drops[found].users == 0 && !drop_alive(&g_drops[found])) {
        drop_forget(found);
        found = -1;
    }
    if (found < 0) {
        if (g_ndrops == DROPS_MAX) {
            snprintf(p->stack_note, sizeof p->stack_note, "%d netdevs already carry a drop", DROPS_MAX);
            pthread_mutex_unlock(&g_drop_mu);
            return;
        }
        drop_ent d = { .ns_dev = ns.st_dev, .ns_ino = ns.st_ino };
        if (drop_make(p, &d, ifindex)) {
            pthread_mutex_unlock(&g_drop_mu);
            return;
        }
        found = g_ndrops;
        g_drops[g_ndrops++] = d;
    }
    drop_ent *d = &g_drops[found];
    if (drop_set(d, 1)) {
        snprintf(p->stack_note, sizeof p->stack_note, "cannot switch the drop on: %s", strerror(errno));
    } else {
        d->users++;
        p->stack_on = 1;
        p->stack_ns_dev = ns.st_dev;
        p->stack_ns_ino = ns.st_ino;
        p->stack_ifindex = ifindex;
    }
    pthread_mutex_unlock(&g_drop_mu);
#else
    (void)ifindex;
    snprintf(p->stack_note, sizeof p->stack_note, "built without libbpf (apt-get install libbpf-dev, then rebuild)");
#endif
}

/* The port lets go of its netdev's drop: off with the last user. No grace period. */
static void stack_release(afp_port *p) {
#ifdef VFP_HAVE_AFXDP
    if (!p->stack_on) return;
    pthread_mutex_lock(&g_drop_mu);
    for (int i = 0; i < g_ndrops; i++) {
        drop_ent *d = &g_drops[i];
        if (d->ns_dev == p->stack_ns_dev && d->ns_ino == p->stack_ns_ino && d->ifindex == p->stack_ifindex) {
            if (--d->users == 0) (void)drop_set(d, 0);
            break;
        }
    }
    pthread_mutex_unlock(&g_drop_mu);
    p->stack_on = 0;
#else
    (void)p;
#endif
}

/* A queue's tx socket's ring: V2. Runs on a thread of its own, alongside the rx rings'
 * setup, so that the grace period each PACKET_*_RING waits for (synchronize_net) overlaps. */
static int tx_setup(afp_port *p, afp_q *x, const vfp_afpacket_opts *o, char *err, size_t errlen) {
    long page = sysconf(_SC_PAGESIZE);
    /* tx: V2 ring. PACKET_LOSS makes the kernel skip a frame it rejects (status back to
     * AVAILABLE) instead of stopping the ring at it with WRONG_FORMAT. */
    SETOPT(x->tx_fd, PACKET_VERSION, TPACKET_V2, "PACKET_VERSION TPACKET_V2");
    SETOPT(x->tx_fd, PACKET_LOSS, 1, "PACKET_LOSS");
    if (o->qdisc_bypass) {
        SETOPT(x->tx_fd, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS");
        x->qdisc_bypass = 1;
    }
    uint32_t tx_frame = align_up(p->tx_data_off + p->tx_max, TPACKET_ALIGNMENT);
    uint32_t tx_block = align_up(tx_frame > (64u << 10) ? tx_frame : (64u << 10), (uint32_t)page);
    uint32_t per_blk = tx_block / tx_frame;
    uint32_t tx_blocks = (o->tx_frames + per_blk - 1) / per_blk;
    struct tpacket_req tr = {
        .tp_block_size = tx_block,
        .tp_block_nr = tx_blocks,
        .tp_frame_size = tx_frame,
        .tp_frame_nr = per_blk * tx_blocks,
    };
    if (setsockopt(x->tx_fd, SOL_PACKET, PACKET_TX_RING, &tr, sizeof tr) < 0)
        return sock_err(p, "PACKET_TX_RING (lower tx_frames?)", errno, err, errlen);
    x->tx_map_len = (size_t)tx_block * tx_blocks;
    void *m = mmap(NULL, x->tx_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->tx_fd, 0);
    if (m == MAP_FAILED) return sock_err(p, "mmap of the tx ring", errno, err, errlen);
    x->tx_map = m;
    x->tx_frames = tr.tp_frame_nr;
    x->tx_slot = p->a.alloc(p->a.ctx, (size_t)x->tx_frames * sizeof(uint8_t *), 8);
    if (!x->tx_slot) return fail(err, errlen, -ENOMEM, "afpacket %s: out of memory%s", p->ifname, "");
    for (uint32_t i = 0; i < x->tx_frames; i++)
        x->tx_slot[i] = x->tx_map + (size_t)(i / per_blk) * tx_block + (size_t)(i % per_blk) * tx_frame;
    return 0;
}

typedef struct par_job {
    afp_port *p;
    afp_q *x;
    const vfp_afpacket_opts *o;
    int ifindex, rc;
    char err[256];
} par_job;

static void *tx_thread(void *v) {
    par_job *j = v;
    j->rc = tx_setup(j->p, j->x, j->o, j->err, sizeof j->err);
    return NULL;
}

static void *stack_drop_thread(void *v) {
    par_job *j = v;
    stack_drop(j->p, j->ifindex);
    return NULL;
}

static int rx_setup(afp_port *p, afp_q *x, const vfp_afpacket_opts *o, char *err, size_t errlen);

/* Everything that depends on the netns: runs in the target netns. */
static int setup(afp_port *p, const vfp_afpacket_opts *o, const char *ns_name, char *err, size_t errlen) {
    unsigned ifindex = if_nametoindex(o->ifname);
    if (!ifindex) {
        int e = errno;
        snprintf(err, errlen, "afpacket: interface %s not found in netns %s: %s (check the name with "
                 "`ip link` in that netns)", o->ifname, ns_name, strerror(e));
        return -ENODEV;
    }
    /* Protocol 0: a socket receives nothing until bind() below, so no frame arrives
     * before the ring and PACKET_IGNORE_OUTGOING are in place. */
    for (uint16_t q = 0; q < p->nq; q++) {
        afp_q *x = &p->qs[q];
        x->rx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        if (x->rx_fd < 0) return sock_err(p, "socket(AF_PACKET) for rx", errno, err, errlen);
        x->tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        if (x->tx_fd < 0) return sock_err(p, "socket(AF_PACKET) for tx", errno, err, errlen);
    }

    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", o->ifname);
    if (ioctl(p->qs[0].rx_fd, SIOCGIFMTU, &ifr) < 0) return sock_err(p, "SIOCGIFMTU", errno, err, errlen);
    p->mtu = (uint32_t)ifr.ifr_mtu;
    uint32_t dev_max = p->mtu + 14 + AFP_VLAN_HLEN;
    p->tx_max = o->frame_size && o->frame_size < dev_max ? o->frame_size : dev_max;
    p->tx_data_off = (uint32_t)(TPACKET2_HDRLEN - sizeof(struct sockaddr_ll));

    /* Each PACKET_*_RING waits for an RCU grace period (synchronize_net), and so does
     * attaching the stack drop: ~10-20 ms each on a quiet host. The tx rings and the drop
     * are set up on threads of their own (which inherit this thread's netns) while this
     * one sets up the rx rings, so the waits overlap instead of adding up. */
    par_job tj[VFP_AFPACKET_MAX_QUEUES];
    side tx[VFP_AFPACKET_MAX_QUEUES] = { 0 }, sd = { 0 };
    for (uint16_t q = 0; q < p->nq; q++) {
        tj[q] = (par_job){ p, &p->qs[q], o, (int)ifindex, 0, "" };
        side_start(&tx[q], tx_thread, &tj[q]);
    }
    if (o->stack_drop) side_start(&sd, stack_drop_thread, &tj[0]);
    int rc = 0;
    for (uint16_t q = 0; q < p->nq && !rc; q++) rc = rx_setup(p, &p->qs[q], o, err, errlen);
    for (uint16_t q = 0; q < p->nq; q++) side_join(&tx[q]);
    side_join(&sd);
    if (rc) return rc;
    for (uint16_t q = 0; q < p->nq; q++)
        if (tj[q].rc) {
            snprintf(err, errlen, "%s", tj[q].err);
            return tj[q].rc;
        }

    /* Bind last. The tx sockets bind with protocol 0: they can send but never receive. */
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)ifindex };
    /* A drop-everything filter on the later rx sockets until they are in the group: a
     * socket is in a fanout group only once bound, and bound alone it would receive a
     * copy of every frame the group also gets. A frame the group sends it in the moment
     * between its joining and the filter's removal is dropped instead (loss, not a
     * duplicate, at setup only). */
    struct sock_filter drop_all = { BPF_RET | BPF_K, 0, 0, 0 };
    struct sock_fprog drop_prog = { 1, &drop_all };
    for (uint16_t q = 0; q < p->nq; q++) {
        afp_q *x = &p->qs[q];
        sll.sll_protocol = htons(ETH_P_ALL);
        if (q > 0 && setsockopt(x->rx_fd, SOL_SOCKET, SO_ATTACH_FILTER, &drop_prog, sizeof drop_prog) < 0)
            return sock_err(p, "SO_ATTACH_FILTER", errno, err, errlen);
        if (bind(x->rx_fd, (struct sockaddr *)&sll, sizeof sll) < 0) return sock_err(p, "bind rx", errno, err, errlen);
        /* Several queues: the rx sockets share a fanout group, so each frame goes to one
         * of them, chosen by its flow hash (a flow stays on one queue: no reordering).
         * The kernel picks a group id no other group in this netns has (UNIQUEID, Linux
         * 4.x) for the first socket; the others join that id. A socket is in the group
         * only once bound, so frames that arrive before all have joined go to those
         * that have, and none is lost or duplicated. */
        if (p->nq > 1) {
            int v = q == 0 ? (int)((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_UNIQUEID) << 16)
                           : (int)(p->fanout_id | (PACKET_FANOUT_HASH << 16));
            if (setsockopt(x->rx_fd, SOL_PACKET, PACKET_FANOUT, &v, sizeof v) < 0)
                return sock_err(p, "PACKET_FANOUT (several queues need Linux >= 4.4)", errno, err, errlen);
            if (q == 0) {
                socklen_t l = sizeof v;
                if (getsockopt(x->rx_fd, SOL_PACKET, PACKET_FANOUT, &v, &l) < 0)
                    return sock_err(p, "reading the PACKET_FANOUT group", errno, err, errlen);
                p->fanout_id = (uint32_t)v & 0xffffu;
            } else if (setsockopt(x->rx_fd, SOL_SOCKET, SO_DETACH_FILTER, &(int){ 0 }, sizeof(int)) < 0) {
                return sock_err(p, "SO_DETACH_FILTER", errno, err, errlen);
            }
        }
        sll.sll_protocol = 0;
        if (bind(x->tx_fd, (struct sockaddr *)&sll, sizeof sll) < 0) return sock_err(p, "bind tx", errno, err, errlen);
    }
    return 0;
}

/* A queue's rx socket's ring: V3 (or V2), headroom via PACKET_RESERVE (+4 for a
 * re-inserted VLAN tag). */
static int rx_setup(afp_port *p, afp_q *x, const vfp_afpacket_opts *o, char *err, size_t errlen) {
    uint32_t reserve = o->headroom + AFP_VLAN_HLEN;
    long page = sysconf(_SC_PAGESIZE);
    if (p->v2) {
        SETOPT(x->rx_fd, PACKET_VERSION, TPACKET_V2, "PACKET_VERSION TPACKET_V2");
        SETOPT(x->rx_fd, PACKET_RESERVE, (int)reserve, "PACKET_RESERVE");
        SETOPT(x->rx_fd, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
        /* One slot per frame: header, reserve, the largest frame (+ VLAN tag). */
        uint32_t frame = align_up((uint32_t)TPACKET2_HDRLEN + 16 + reserve + p->tx_max + 64, TPACKET_ALIGNMENT);
        uint32_t block = align_up(frame > o->rx_block_size ? frame : o->rx_block_size, (uint32_t)page);
        uint32_t per = block / frame;
        struct tpacket_req r2 = { .tp_block_size = block, .tp_block_nr = o->rx_blocks, .tp_frame_size = frame,
                                  .tp_frame_nr = per * o->rx_blocks };
        if (setsockopt(x->rx_fd, SOL_PACKET, PACKET_RX_RING, &r2, sizeof r2) < 0)
            return sock_err(p, "PACKET_RX_RING (V2; lower rx_blocks/rx_block_size?)", errno, err, errlen);
        p->rx_block_size = block;
        x->rx_frames = r2.tp_frame_nr;
        x->rx_map_len = (size_t)block * o->rx_blocks;
        void *m = mmap(NULL, x->rx_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->rx_fd, 0);
        if (m == MAP_FAILED) return sock_err(p, "mmap of the rx ring", errno, err, errlen);
        x->rx_map = m;
        x->rx_slot = p->a.alloc(p->a.ctx, (size_t)x->rx_frames * sizeof(uint8_t *), 8);
        if (!x->rx_slot) return fail(err, errlen, -ENOMEM, "afpacket: no memory for %s%s", "the rx slots", "");
        /* Frames never straddle blocks: slot i is frame i % per of block i / per. */
        for (uint32_t i = 0; i < x->rx_frames; i++)
            x->rx_slot[i] = x->rx_map + (size_t)(i / per) * block + (size_t)(i % per) * frame;
        return 0;
    }
    SETOPT(x->rx_fd, PACKET_VERSION, TPACKET_V3, "PACKET_VERSION TPACKET_V3");
    SETOPT(x->rx_fd, PACKET_RESERVE, (int)reserve, "PACKET_RESERVE");
    SETOPT(x->rx_fd, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
    /* A block must hold the largest frame: header, reserve, the frame (+ VLAN tag). */
    uint32_t need = align_up((uint32_t)TPACKET3_HDRLEN + 16 + reserve + p->tx_max + 64, 16) + 64;
    p->rx_block_size = align_up(o->rx_block_size > need ? o->rx_block_size : need, (uint32_t)page);
    uint32_t rx_frame = align_up((uint32_t)TPACKET3_HDRLEN + reserve + 64, 16);
    if (rx_frame < 2048) rx_frame = 2048;
    if (rx_frame > p->rx_block_size) rx_frame = p->rx_block_size;
    struct tpacket_req3 r3 = {
        .tp_block_size = p->rx_block_size,
        .tp_block_nr = p->rx_blocks,
        .tp_frame_size = rx_frame,
        .tp_frame_nr = (p->rx_block_size / rx_frame) * p->rx_blocks,
        .tp_retire_blk_tov = o->block_timeout_ms,
    };
    if (setsockopt(x->rx_fd, SOL_PACKET, PACKET_RX_RING, &r3, sizeof r3) < 0)
        return sock_err(p, "PACKET_RX_RING (lower rx_blocks/rx_block_size?)", errno, err, errlen);
    x->rx_map_len = (size_t)p->rx_block_size * p->rx_blocks;
    void *m = mmap(NULL, x->rx_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->rx_fd, 0);
    if (m == MAP_FAILED) return sock_err(p, "mmap of the rx ring", errno, err, errlen);
    x->rx_map = m;
    return 0;
}

typedef struct ns_job {
    afp_port *p;
    const vfp_afpacket_opts *o;
    char *err;
    size_t errlen;
    int rc;
} ns_job;

/* Runs in a thread of its own: setns() changes only this thread's netns, and the
 * sockets made here stay in that netns after the thread ends. */
static void *ns_thread(void *arg) {
    ns_job *j = arg;
    int fd = open(j->o->netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(j->err, j->errlen, "afpacket: cannot open netns %s: %s", j->o->netns, strerror(e));
        j->rc = -e;
        return NULL;
    }
    if (setns(fd, CLONE_NEWNET) < 0) {
        int e = errno;
        snprintf(j->err, j->errlen, "afpacket: setns(%s): %s%s", j->o->netns, strerror(e),
                 e == EPERM ? " (needs CAP_SYS_ADMIN: run as root)" : e == EINVAL ? " (not a netns file?)" : "");
        close(fd);
        j->rc = -e;
        return NULL;
    }
    close(fd);
    j->rc = setup(j->p, j->o, j->o->netns, j->err, j->errlen);
    return NULL;
}

int vfp_afpacket_port__create(vfp_port **out, const vfp_afpacket_opts *o, const vfp_alloc *a,
                              char *err, size_t errlen) {
    char dummy[1];
    if (!err || !errlen) err = dummy, errlen = sizeof dummy;
    err[0] = 0;
    if (!out || !o || !a) return fail(err, errlen, -EINVAL, "afpacket: %s%s", "out, opts and alloc are required", "");
    *out = NULL;
    if (!o->ifname || !o->ifname[0] || strlen(o->ifname) >= IF_NAMESIZE)
        return fail(err, errlen, -EINVAL, "afpacket: bad interface name '%s'%s", o->ifname ? o->ifname : "", "");
    char buf[256];
    if (o->headroom < 128 || o->headroom > 4096) {
        snprintf(buf, sizeof buf, "%u (give 128..4096)", o->headroom);
        return fail(err, errlen, -EINVAL, "afpacket %s: headroom %s", o->ifname, buf);
    }
    if (o->rx_blocks < 2 || o->rx_blocks > 4096 || o->rx_block_size < 4096 || o->rx_block_size > (64u << 20) ||
        o->tx_frames < 64 || o->tx_frames > (1u << 20) || o->rx_descs < VFP_MAX_BURST || o->rx_descs > 65535 ||
        (o->frame_size && o->frame_size < 64) || (o->rx_ring_version != 2 && o->rx_ring_version != 3) ||
        o->queues < 1 || o->queues > VFP_AFPACKET_MAX_QUEUES) {
        snprintf(buf, sizeof buf, "rx_blocks=%u (2..4096) rx_block_size=%u (4K..64M) tx_frames=%u (64..1M) "
                 "rx_descs=%u (%u..65535) frame_size=%u (0 or >=64) rx_ring_version=%d (2 or 3) queues=%u (1..%d)",
                 o->rx_blocks, o->rx_block_size, o->tx_frames, o->rx_descs, VFP_MAX_BURST, o->frame_size,
                 o->rx_ring_version, o->queues, VFP_AFPACKET_MAX_QUEUES);
        return fail(err, errlen, -EINVAL, "afpacket %s: option out of range: %s", o->ifname, buf);
    }
    afp_port *p = a->alloc(a->ctx, sizeof *p, VFP_CACHE_LINE);
    if (!p) return fail(err, errlen, -ENOMEM, "afpacket %s: out of memory%s", o->ifname, "");
    p->a = *a;
    p->stack_on = 0;
    p->stack_note[0] = 0;
    snprintf(p->ifname, sizeof p->ifname, "%s", o->ifname);
    p->port.ops = &afp_ops;
    p->v2 = o->rx_ring_version == 2;
    p->rx_blocks = o->rx_blocks; /* afp_destroy needs it for blk_ref even if setup fails early */
    p->n_descs = o->rx_descs;
    p->qs = a->alloc(a->ctx, (size_t)o->queues * sizeof(afp_q), VFP_CACHE_LINE);
    if (!p->qs) {
        a->free(a->ctx, p, sizeof *p);
        return fail(err, errlen, -ENOMEM, "afpacket %s: out of memory%s", o->ifname, "");
    }
    p->nq = (uint16_t)o->queues;
    p->port.n_queues = p->nq;
    for (uint16_t q = 0; q < p->nq; q++) p->qs[q].rx_fd = p->qs[q].tx_fd = -1;

    int rc;
    if (o->netns) {
        ns_job j = { p, o, err, errlen, 0 };
        pthread_t t;
        rc = pthread_create(&t, NULL, ns_thread, &j);
        if (rc) {
            snprintf(err, errlen, "afpacket %s: pthread_create for setns: %s", o->ifname, strerror(rc));
            rc = -rc;
        } else {
            pthread_join(t, NULL);
            rc = j.rc;
        }
    } else {
        rc = setup(p, o, "(current)", err, errlen);
    }
    for (uint16_t q = 0; q < p->nq && !rc; q++) {
        afp_q *x = &p->qs[q];
        x->blk_ref = a->alloc(a->ctx, (size_t)p->rx_blocks * sizeof(uint32_t), 8);
        x->descs = a->alloc(a->ctx, (size_t)p->n_descs * sizeof(vfp_pkt), VFP_CACHE_LINE);
        x->free_idx = a->alloc(a->ctx, (size_t)p->n_descs * sizeof(uint16_t), 8);
        if (!x->blk_ref || !x->descs || !x->free_idx) {
            rc = fail(err, errlen, -ENOMEM, "afpacket %s: out of memory%s", o->ifname, "");
        } else {
            /* Popped from the top: descriptor 0 first, so a burst walks memory upwards. */
            for (uint32_t i = 0; i < p->n_descs; i++) x->free_idx[i] = (uint16_t)(p->n_descs - 1 - i);
            x->n_free = p->n_descs;
        }
    }
    if (rc) {
        afp_destroy(p);
        return rc;
    }
    *out = &p->port;
    return 0;
}
