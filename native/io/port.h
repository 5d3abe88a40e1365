/* The one port interface every I/O backend implements (memory, afpacket, afxdp, dpdk).
 * A port hands out bursts of vfp_pkt it owns and takes bursts back; a packet received
 * from a port goes back to it either transmitted (tx_burst) or released (free_burst).
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
    /* Sends pkts[0..n) on queue q; returns how many the port took. The caller still
     * owns (and must free_burst) the ones not taken. */
    uint16_t (*tx_burst)(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n);
    /* Gives packets back without sending them (drops). */
    void (*free_burst)(vfp_port *p, vfp_pkt **pkts, uint16_t n);
    void (*close)(vfp_port *p);
};

struct vfp_port {
    const struct vfp_port_ops *ops;
    uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, tx_full, rx_nombuf;
};

static inline uint16_t vfp_port__rx_burst(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    return p->ops->rx_burst(p, q, pkts, n);
}
static inline uint16_t vfp_port__tx_burst(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    return p->ops->tx_burst(p, q, pkts, n);
}
static inline void vfp_port__free_burst(vfp_port *p, vfp_pkt **pkts, uint16_t n) {
    if (n) p->ops->free_burst(p, pkts, n);
}
static inline void vfp_port__close(vfp_port *p) { p->ops->close(p); }

#ifdef __cplusplus
}
#endif
#endif
