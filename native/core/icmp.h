/* ICMP errors the data plane answers a pod's frame with, built in the frame's own buffer:
 * "fragmentation needed" (RFC 792, RFC 1191) and ICMPv6 "packet too big" (RFC 4443 §3.2),
 * for a packet too big for the tunnel, so that the pod's path MTU discovery learns what
 * the overlay carries instead of losing the packet without a word. */
#ifndef VFP_CORE_ICMP_H
#define VFP_CORE_ICMP_H

#include "core/vfp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest inner IP packet below which no reply is sent: IPv4's 576 (RFC 791's
 * datagram every host takes; what Linux's tunnels keep to) and IPv6's 1280 (RFC 8200). */
#define VFP_ICMP_MIN_MTU4 576u
#define VFP_ICMP_MIN_MTU6 1280u
/* The reply's total IP length at most (RFC 1812 §4.3.2.3's 576 for IPv4; RFC 4443 §2.4(c)'s
 * minimum MTU for IPv6), and so how much of the offending packet it quotes. */
#define VFP_ICMP_MAX_REPLY4 576u
#define VFP_ICMP_MAX_REPLY6 1280u

/* Rewrites the Ethernet frame p (untagged or one 802.1Q tag) into the ICMP error that
 * tells its sender the path carries inner frames of at most max_frame bytes (the tunnel's
 * limit on the whole inner frame, L2 header included; the MTU reported is that less the
 * frame's own L2 header). The reply goes back the way p came: MACs swapped, IP addresses
 * swapped, the tag kept, the start of p's IP packet quoted.
 *
 * Returns 1 when p now holds the reply (data moved back into the headroom, len set), 0
 * when p gets none and is unchanged: not IPv4 with DF set and no fragment bits, nor IPv6
 * (a non-first fragment neither); a group destination (MAC or IP) or a source that is not
 * one host's (unspecified, loopback, multicast, broadcast); an ICMP error or redirect; a
 * header cut short; p no bigger than the limit; a reported MTU under the minimum above;
 * too little headroom. These are RFC 1812 §4.3.2.7's and RFC 4443 §2.4(e)'s rules for
 * when not to send an ICMP error. */
int vfp_icmp__too_big(vfp_pkt *p, uint32_t max_frame);

/* Whether SRC is one host's address, the sender an ICMP message may go back to (RFC
 * 1812 §4.3.2.7, RFC 4443 §2.4): IPv4 not 0/8, 127/8, multicast, class E or broadcast;
 * IPv6 not unspecified, loopback or multicast. */
static inline int vfp_icmp__host4(const uint8_t *src) { return src[0] != 0 && src[0] != 127 && src[0] < 224; }
static inline int vfp_icmp__host6(const uint8_t *src) {
    static const uint8_t zero[15];
    return src[0] != 0xff && !(!memcmp(src, zero, 15) && src[15] <= 1);
}

/* The ICMPv6 checksum of the message at icmp (len bytes) between src and dst (RFC 4443
 * §2.3, over RFC 8200 §8.1's pseudo-header), as stored: memory order, complemented. */
uint16_t vfp_icmp6__csum(const uint8_t *src, const uint8_t *dst, const uint8_t *icmp, uint32_t len);

#ifdef __cplusplus
}
#endif
#endif
