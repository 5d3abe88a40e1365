/* The AF_PACKET backend: the port that works on any Linux interface with nothing but the
 * kernel (veth, any NIC, a VF's netdev). Zero-copy TPACKET_V3 (or V2) receive ring, copying
 * TPACKET_V2 transmit ring; one queue, or several joined by PACKET_FANOUT. The slowest backend and the fallback of all. */
#ifndef VFP_IO_AFPACKET_H
#define VFP_IO_AFPACKET_H

#include "io/port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vfp_afpacket_opts {
    const char *ifname;        /* required */
    /* A netns file path (/run/netns/X, /proc/PID/ns/net) to open the sockets in; NULL =
     * the calling thread's. The caller's thread never changes netns: a short-lived
     * thread does setns() + socket() + bind(), and sockets keep their netns. */
    const char *netns;
    uint32_t headroom;         /* writable bytes guaranteed before each rx frame: 128..4096, default 256 */
    /* Largest frame (L2 bytes, no FCS) sent or received; default and cap: the
     * interface MTU + 14 + 4 (room for one VLAN tag), read at create. */
    uint32_t frame_size;
    uint32_t rx_block_size;    /* TPACKET_V3 block bytes, a page multiple; default 256 KiB */
    uint32_t rx_blocks;        /* default 64 (16 MiB of ring) */
    uint32_t block_timeout_ms; /* V3 retire timeout: a partly filled block is handed over after it; default 1 */
    uint32_t tx_frames;        /* tx ring slots; default 2048 */
    uint32_t rx_descs;         /* rx packets that may be held at once (in flight); default 1024, ≥ VFP_MAX_BURST */
    int qdisc_bypass;          /* PACKET_QDISC_BYPASS; default 1 */
    /* 3: TPACKET_V3 blocks (fewest wakeups; a lone frame waits up to block_timeout_ms
     * for its block to retire). 2: TPACKET_V2 frames, each visible as soon as the kernel
     * wrote it (latency in µs, one slot per frame). The ring holds rx_blocks ×
     * rx_block_size bytes either way. Default 3. */
    int rx_ring_version;
    /* 1: the host stack gets none of the frames arriving on the interface (the port
     * still does): a BPF program on the tcx ingress hook drops them right after the
     * AF_PACKET taps, held by a link that goes away with the port (also when the process
     * dies). For a netdev the data plane owns (uplink, representors): else the kernel
     * routes, and answers, every frame a second time, on the worker's own CPU. Needs
     * Linux >= 6.6 and libbpf at build time; where either is missing the port opens
     * anyway and stack_drop_note says why the stack keeps its copy. Default 0. */
    int stack_drop;
    /* Queues: 1 (default) .. VFP_AFPACKET_MAX_QUEUES. Each is an rx and a tx socket with
     * rings of their own (rx_blocks × rx_block_size of ring each); several rx sockets
     * share a PACKET_FANOUT group that spreads frames over them by flow hash, so several
     * workers can each receive from the netdev. */
    uint32_t queues;
} vfp_afpacket_opts;

#define VFP_AFPACKET_MAX_QUEUES 64

/* Counters beyond those in vfp_port. */
typedef struct vfp_afpacket_stats {
    uint64_t rx_truncated;     /* frames the kernel cut short (tp_snaplen < tp_len): dropped */
    uint64_t rx_kernel_drops;  /* frames the kernel dropped for want of a free block (PACKET_STATISTICS) */
    uint64_t tx_oversize;      /* frames larger than the port can send: taken, counted, dropped */
    uint64_t tx_kick_errors;   /* send() kicks that failed (other than EAGAIN/ENOBUFS) */
    uint64_t tx_link_down;     /* frames queued when such a kick failed (the device down): dropped, not sent late */
    uint64_t tx_device_drops;  /* frames the device refused (no carrier, or its queue stopped): one per ENOBUFS, freed by the kernel */
    uint64_t rx_csum_finished; /* frames whose sender left the TCP/UDP checksum to the device: finished */
    uint64_t rx_csum_left;     /* such frames it could not finish (not TCP/UDP over IPv4/IPv6): sent as they are */
    uint64_t ring_bytes;       /* rx and tx rings mapped, over all queues (what the port costs) */
    int stack_drop;            /* 1 while the host stack's copy is dropped (opts.stack_drop) */
    const char *stack_drop_note; /* why it is not, when asked for; "" otherwise */
} vfp_afpacket_stats;

void vfp_afpacket_opts__defaults(vfp_afpacket_opts *o);
/* Opens the port on o->ifname (in o->netns). -ENODEV (interface missing), -EPERM (needs
 * CAP_NET_RAW), -EINVAL (options), -ENOMEM, or what socket/setsockopt/mmap returned;
 * err says which, with the value and the fix. */
int vfp_afpacket_port__create(vfp_port **out, const vfp_afpacket_opts *o, const vfp_alloc *a,
                              char *err, size_t errlen);
/* Fills st (a control-path call: reads PACKET_STATISTICS, which also resets the kernel's
 * counter, so rx_kernel_drops is accumulated here). p must be an afpacket port. */
void vfp_afpacket_port__stats(vfp_port *p, vfp_afpacket_stats *st);

#ifdef __cplusplus
}
#endif
#endif
