/* vfp-io-fwd's afpacket adapter: parses "key=val,..." options into vfp_afpacket_opts and
 * opens one port. Keys: headroom, frame_size, block_size, blocks, timeout_ms, ring (2|3), tx_frames,
 * rx_descs, qdisc_bypass (0/1). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/afpacket.h"
#include "test/heap.h"

int vfp_io_fwd__open_afpacket(const char *netns, const char *name, const char *opts, vfp_port **out,
                              char *err, size_t errlen);
unsigned long long vfp_io_fwd__kernel_drops_afpacket(vfp_port *p);

/* Frames the kernel dropped for want of room in the port's receive ring (PACKET_STATISTICS):
 * with rx, what the netdev received for the socket. */
unsigned long long vfp_io_fwd__kernel_drops_afpacket(vfp_port *p) {
    vfp_afpacket_stats st;
    vfp_afpacket_port__stats(p, &st);
    return (unsigned long long)st.rx_kernel_drops;
}

static const vfp_alloc heap = VFP_HEAP_ALLOC;

int vfp_io_fwd__open_afpacket(const char *netns, const char *name, const char *opts, vfp_port **out,
                              char *err, size_t errlen) {
    vfp_afpacket_opts o;
    vfp_afpacket_opts__defaults(&o);
    o.ifname = name;
    o.netns = netns;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", opts ? opts : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        char *end = NULL;
        unsigned long v = eq ? strtoul(eq + 1, &end, 0) : 0;
        if (!eq || !eq[1] || *end) {
            snprintf(err, errlen, "afpacket option '%s': want key=number", kv);
            return -EINVAL;
        }
        *eq = 0;
        if (!strcmp(kv, "headroom")) o.headroom = (uint32_t)v;
        else if (!strcmp(kv, "frame_size")) o.frame_size = (uint32_t)v;
        else if (!strcmp(kv, "block_size")) o.rx_block_size = (uint32_t)v;
        else if (!strcmp(kv, "blocks")) o.rx_blocks = (uint32_t)v;
        else if (!strcmp(kv, "timeout_ms")) o.block_timeout_ms = (uint32_t)v;
        else if (!strcmp(kv, "ring")) o.rx_ring_version = (int)v;
        else if (!strcmp(kv, "tx_frames")) o.tx_frames = (uint32_t)v;
        else if (!strcmp(kv, "rx_descs")) o.rx_descs = (uint32_t)v;
        else if (!strcmp(kv, "qdisc_bypass")) o.qdisc_bypass = v != 0;
        else {
            snprintf(err, errlen, "afpacket option '%s' unknown (headroom, frame_size, block_size, blocks, "
                     "timeout_ms, ring, tx_frames, rx_descs, qdisc_bypass)", kv);
            return -EINVAL;
        }
    }
    return vfp_afpacket_port__create(out, &o, &heap, err, errlen);
}
