/* The AF_XDP backend (libxdp): one XSK per queue, each with its own UMEM, behind the
 * port interface. Received frames stay in the UMEM (zero-copy rx); a packet of the same
 * UMEM is sent without a copy, a foreign one is copied into a free frame. */
#ifndef VFP_IO_AFXDP_H
#define VFP_IO_AFXDP_H

#include "io/port.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vfp_xdp_mode { VFP_XDP_MODE_AUTO = 0, VFP_XDP_MODE_NATIVE, VFP_XDP_MODE_SKB };
enum vfp_xdp_copy { VFP_XDP_COPY_AUTO = 0, VFP_XDP_COPY, VFP_XDP_ZEROCOPY };

typedef struct vfp_afxdp_opts {
    const char *ifname;        /* required */
    const char *netns;         /* netns file path (/run/netns/X) to work in; NULL = the caller's.
                                  Sockets are made, the program attached and later detached
                                  in a short-lived thread that setns()es: the caller's
                                  threads never change netns. */
    uint32_t queue_id;         /* first queue; n_queues consecutive queues, one XSK and one
                                  UMEM each (so a queue's thread needs no lock) */
    uint16_t n_queues;         /* default 1; 0: every rx queue the netdev has from queue_id
                                  on (ETHTOOL_GCHANNELS), so no queue's traffic bypasses
                                  the data plane */
    uint32_t frame_size;       /* 2048 or 4096 (default) */
    uint32_t n_frames;         /* UMEM frames per queue, default 4096 */
    uint32_t ring_size;        /* rx/tx/fill/completion ring sizes (power of two), default 2048 */
    uint32_t headroom;         /* xsk_umem_config.frame_headroom, default 256; the kernel adds
                                  XDP_PACKET_HEADROOM (256) on top, so rx packets report
                                  headroom + 256 writable bytes before data */
    int mode;                  /* enum vfp_xdp_mode; AUTO tries native, then SKB */
    int copy;                  /* enum vfp_xdp_copy; AUTO tries zero-copy, then copy */
    int need_wakeup;           /* XDP_USE_NEED_WAKEUP, default 1 */
    uint16_t port_id;          /* stamped on received packets as vfp_pkt.port, default 0 */
} vfp_afxdp_opts;

typedef struct vfp_afxdp_info {
    int mode;                  /* VFP_XDP_MODE_NATIVE or VFP_XDP_MODE_SKB */
    int zerocopy;              /* 1 when bound with XDP_ZEROCOPY */
    int need_wakeup;
    char prog[64];             /* the XDP program attached ("xsk_def_prog") */
    uint32_t headroom;         /* writable bytes before data of a received frame */
    uint32_t max_frame;        /* largest frame rx can hold / tx can copy */
    uint32_t frames;           /* UMEM frames of each queue (n_frames, shared out when n_queues was 0) */
    uint64_t umem_bytes;       /* UMEM mapped, over all queues (what the port costs) */
    uint64_t tx_oversize;      /* foreign packets dropped at tx: larger than max_frame */
    uint64_t tx_link_down;     /* frames dropped at tx (by us) while the device was down (ENETDOWN) */
    uint64_t tx_device_drops;  /* frames the device dropped (EBUSY: no carrier, or over the MTU of
                                  what is behind it, a veth's peer), as AF_PACKET's tx_device_drops */
    /* Frames the kernel dropped on the way in, over all queues (XDP_STATISTICS, read when
     * info is asked for): */
    uint64_t rx_ring_full;     /* the rx ring was full: the worker did not keep up */
    uint64_t rx_fill_empty;    /* no fill-ring frame to put them in (rx_fill_ring_empty_descs) */
    uint64_t rx_oversize;      /* larger than a UMEM frame (the kernel's rx_dropped less the fill-ring misses) */
} vfp_afxdp_info;

void vfp_afxdp_opts__defaults(vfp_afxdp_opts *o);

/* Opens the port: loads libxdp's default XSK program (redirect by rx queue) on ifname,
 * binds one XSK per queue and fills the fill rings. Returns 0 or -errno with err saying
 * what failed (interface, queue, mode, errno text) and the fix. On success err holds a
 * notice when create did something the operator should know (detached a stale program
 * of an earlier run, fell back to SKB mode or copy mode), else "". */
int vfp_afxdp_port__create(vfp_port **out, const vfp_afxdp_opts *o, const vfp_alloc *a,
                           char *err, size_t errlen);

/* For a netdev a killed run of the data plane held and this run does not open: detaches
 * libxdp's XSK program when no live process holds it (a crashed run's; the same check
 * create makes). ifname in netns (a netns file; NULL or "": the caller's). Returns 1 with
 * msg saying what was detached, 0 when nothing is attached (or the netdev is gone), or
 * -errno with msg saying why the program stays (another program, or one a running
 * process holds) and the command that removes it. */
int vfp_afxdp__clear_stale(const char *ifname, const char *netns, char *msg, size_t msglen);

/* What create actually chose. */
void vfp_afxdp_port__info(const vfp_port *p, vfp_afxdp_info *out);

const char *vfp_xdp_mode__name(int mode);

#ifdef __cplusplus
}
#endif
#endif
