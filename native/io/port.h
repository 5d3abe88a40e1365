/* The one port interface every I/O backend implements (memory, afpacket, afxdp, dpdk).
 * A port hands out bursts of vfp_pkt it owns (pkt->owner = the port) and takes bursts
 * back. Ownership rules, which every backend keeps:
 *  - rx_burst sets owner, data, len, headroom (≥ the headroom asked for at create) and
 *    port on each packet; the packet stays valid until released.
 *  - tx_burst takes packets from ANY owner. A backend that cannot send a foreign buffer
 *    as is (afpacket, afxdp across UMEMs, dpdk for non-mbufs) copies the bytes into its
 *    own buffer and releases the original to its owner before returning. Packets it
 *    takes it releases (now or at tx completion); the caller still owns the rest and
 *    must release them with vfp_pkt__free_burst.
 *  - free_burst releases the port's own packets (never a foreign one).
 * Calls on one queue come from one thread; backends need no locks on their fast path. */
#ifndef VFP_IO_PORT_H
#define VFP_IO_PORT_H

#include "core/vfp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vfp_port vfp_port;

struct vfp_port_ops {
    const char *name;
    /* Receives up to n packets of queue q into pkts; returns how many. */
    uint16_t (*rx_burst)(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n);
    /* Sends pkts[0..n) on queue q; returns how many the port took (a prefix). */
    uint16_t (*tx_burst)(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n);
    /* Gives the port's own packets back without sending them (drops). */
    void (*free_burst)(vfp_port *p, vfp_pkt **pkts, uint16_t n);
    void (*close)(vfp_port *p);
    /* Optional: a file descriptor that becomes readable (POLLIN) when queue q has
     * packets, so an idle worker can sleep in poll(); -1 (or NULL op) when there is
     * none (dpdk, memory): the worker then keeps polling. */
    int (*rx_fd)(vfp_port *p, uint16_t q);
    /* Optional: pushes out whatever tx_burst queued but did not yet hand to the
     * device (kicks, completion reaping). Called by idle workers and on stop. */
    void (*flush)(vfp_port *p, uint16_t q);
    /* 1: close may run on a thread of its own after the port left the data plane, while
     * a new port opens on the same netdev (closing waits for grace periods, and no one
     * need wait for it). 0: close before anything else opens there (an AF_XDP queue
     * takes one socket, a DPDK port id one user). */
    uint8_t close_async;
    /* 1: when the data plane stops, may close at the same time as its other ports, each
     * on a thread (close_async ports do too). For ports whose close waits for grace
     * periods, but must be done before another port opens on its netdev. */
    uint8_t close_parallel;
};

struct vfp_port {
    const struct vfp_port_ops *ops;
    uint16_t n_queues;     /* rx/tx queue pairs, ≥ 1 */
    uint8_t tx_ol;         /* enum vfp_tx_offload: the checksums this port's device fills */
    uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, tx_full, rx_nombuf;
};

static inline uint16_t vfp_port__rx_burst(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    return p->ops->rx_burst(p, q, pkts, n);
}
/* Packets whose outer checksums were left for a device (pkt->tx_ol) are finished in
 * software first when this port's device does not fill them. */
static inline uint16_t vfp_port__tx_burst(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    const uint8_t soft = (uint8_t)(VFP_TXO__ALL & ~p->tx_ol);
    /* Only once some tunnel left checksums to a device can a packet carry them: until
     * then (no DPDK offload in use) this costs one load per burst, not one per packet. */
    if (VFP_UNLIKELY(soft && __atomic_load_n(&vfp_txo_seen, __ATOMIC_RELAXED)))
        for (uint16_t i = 0; i < n; i++)
            if (pkts[i]->tx_ol & soft) vfp_pkt__tx_finish(pkts[i], soft);
    return p->ops->tx_burst(p, q, pkts, n);
}
static inline void vfp_port__free_burst(vfp_port *p, vfp_pkt **pkts, uint16_t n) {
    if (n) p->ops->free_burst(p, pkts, n);
}
static inline void vfp_port__close(vfp_port *p) { p->ops->close(p); }
static inline int vfp_port__rx_fd(vfp_port *p, uint16_t q) {
    return p->ops->rx_fd ? p->ops->rx_fd(p, q) : -1;
}
static inline void vfp_port__flush(vfp_port *p, uint16_t q) {
    if (p->ops->flush) p->ops->flush(p, q);
}

/* Releases packets of any owners, batching runs that share one. */
static inline void vfp_pkt__free_burst(vfp_pkt **pkts, uint16_t n) {
    uint16_t i = 0;
    while (i < n) {
        vfp_port *o = pkts[i]->owner;
        uint16_t j = (uint16_t)(i + 1);
        while (j < n && pkts[j]->owner == o) j++;
        if (o) o->ops->free_burst(o, pkts + i, (uint16_t)(j - i));
        i = j;
    }
}

#ifdef __cplusplus
}
#endif
#endif
