/* The DPDK backend: one vfp_port per ethdev (a vfio-pci VF or a vdev such as net_null,
 * net_af_packet, net_af_xdp). Received mbufs carry their vfp_pkt descriptor in the
 * mbuf's private area, so rx and tx need no allocation; all DPDK ports share one ops
 * table, so an mbuf received on one port is sent zero-copy by another. */
#ifndef VFP_IO_DPDK_H
#define VFP_IO_DPDK_H

#include "io/port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Starts the EAL once per process. argv holds EAL arguments only (no program name:
 * "vfplane" is put in front), e.g. {"-l","1","-n","1","--file-prefix","vfplane-42",...}.
 * A second call with the same arguments is a no-op returning 0; with different ones
 * -EALREADY. A failed rte_eal_init cannot be retried in the same process (DPDK's rule):
 * later calls return the first error. The calling thread becomes the EAL main lcore;
 * its CPU affinity is restored afterwards so a Node main thread is not left pinned. */
int vfp_dpdk__init(int argc, const char *const *argv, char *err, size_t errlen);
int vfp_dpdk__initialized(void);

/* Registers the calling thread with the EAL when it is not an EAL lcore, so mempool
 * per-lcore caches work for it (without, rx/tx still work but every mbuf alloc/free
 * goes to the shared ring: correct, much slower). Call once per worker thread, before
 * its first rx/tx; a no-op on EAL lcores and on a second call. -ENOSPC when all
 * RTE_MAX_LCORE ids are taken, -ENODEV before vfp_dpdk__init. */
int vfp_dpdk__thread_register(void);
/* Gives the id back; call before the thread exits (no-op on EAL lcores). */
void vfp_dpdk__thread_unregister(void);

/* Tx offloads a caller may ask for (the hw-profile lists what a NIC has). */
enum vfp_dpdk_offload {
    VFP_DPDK_TX_IPV4_CKSUM = 1u << 0,
    VFP_DPDK_TX_UDP_CKSUM = 1u << 1,
    VFP_DPDK_TX_OUTER_IPV4_CKSUM = 1u << 2,
    VFP_DPDK_TX_OUTER_UDP_CKSUM = 1u << 3,
    VFP_DPDK_TX_VXLAN_TNL_TSO = 1u << 4,
    /* All mbufs on a tx queue come from one pool with refcnt 1. With it on, packets from
     * another port's pool are copied into this port's pool instead of sent zero-copy. */
    VFP_DPDK_TX_MBUF_FAST_FREE = 1u << 5,
};

typedef struct vfp_dpdk_opts {
    const char *dev;          /* a PCI address ("0000:3b:02.1", probed at EAL init by -a or
                                 hot-plugged here) or vdev devargs ("net_null0",
                                 "net_af_packet0,iface=X"), hot-plugged here unless the EAL
                                 already created it (--vdev) */
    uint16_t n_queues;        /* rx/tx queue pairs, default 1 */
    uint32_t n_mbufs;         /* pool size; 0 = n_queues × (rx_desc + tx_desc + 2 × VFP_MAX_BURST
                                 + 1.5 × mbuf_cache) rounded up to 2^k − 1. tx_desc stands for
                                 this pool's mbufs parked in a peer port's tx ring. */
    uint32_t mbuf_cache;      /* per-lcore mempool cache, default 256 (≤ 512) */
    uint32_t mbuf_data_size;  /* data room incl. RTE_PKTMBUF_HEADROOM; default
                                 RTE_MBUF_DEFAULT_BUF_SIZE (2176); jumbo frames need more */
    uint16_t rx_desc, tx_desc;/* ring sizes, default 1024 (clamped to the device's limits) */
    int socket;               /* NUMA socket of the pool; -1 = the device's */
    uint64_t want_tx_offloads;/* enum vfp_dpdk_offload bits; only those the device has are
                                 enabled (see vfp_dpdk_info.tx_offloads) */
    int promiscuous;          /* default 1 */
    int fewer_queues_ok;      /* a device with fewer queue pairs than n_queues opens with what
                                 it has (port.n_queues says how many) instead of failing;
                                 default 0 */
} vfp_dpdk_opts;

typedef struct vfp_dpdk_info {
    uint16_t port_id;
    char driver[64];
    uint64_t tx_offloads;     /* enum vfp_dpdk_offload bits actually enabled */
    uint32_t n_mbufs;
    uint16_t rx_desc, tx_desc; /* per queue, as the device adjusted the ones asked for */
    uint64_t pool_bytes;      /* the port's mbuf pool in hugepages (what the port costs) */
    uint16_t mtu;
    uint32_t max_frame;       /* largest frame it carries: an mbuf's room (no scatter), the device's max_rx_pktlen */
    uint8_t mac[6];
    uint64_t rx_multiseg;     /* chained mbufs received and dropped (no scatter support) */
    uint64_t tx_too_big;      /* foreign packets larger than an mbuf, dropped */
    uint64_t tx_nombuf;       /* foreign packets left to the caller: pool empty */
    uint64_t rx_nombuf;       /* the device's own count (rte_eth_stats.rx_nombuf): no mbuf to receive into */
    /* The device's (its PMD's) own counts of lost frames, rte_eth_stats: */
    uint64_t rx_missed;       /* imissed: dropped by the device, its rx queue full (the worker did not keep up) */
    uint64_t rx_errors;       /* ierrors: received in error (bad CRC, too long…) */
    uint64_t tx_errors;       /* oerrors: handed to the device and not sent (link down, a send refused) */
} vfp_dpdk_info;

void vfp_dpdk_opts__defaults(vfp_dpdk_opts *o);
/* Probes (if needed), configures and starts the device with its own mbuf pool.
 * -ENODEV before vfp_dpdk__init or when the device is not found, -EBUSY when another
 * vfp port has it, -ENOMEM, or DPDK's error; err says which and the fix. */
int vfp_dpdk_port__create(vfp_port **out, const vfp_dpdk_opts *o, char *err, size_t errlen);
void vfp_dpdk_port__info(const vfp_port *p, vfp_dpdk_info *out);
/* True when p is a DPDK port (its packets are mbufs). */
int vfp_dpdk_port__is(const vfp_port *p);

#ifdef __cplusplus
}
#endif
#endif
