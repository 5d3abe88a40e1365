/* ICMP "too big" replies, written over the frame they answer (icmp.h). The reply is the
 * frame's L2 header, a new IP header and ICMP header, then the start of the frame's own
 * IP packet where it already lies: nothing is copied but headers. */
#include "core/icmp.h"

#include <string.h>

#include "core/csum.h"

uint16_t vfp_icmp6__csum(const uint8_t *src, const uint8_t *dst, const uint8_t *icmp, uint32_t len) {
    uint64_t s = vfp_csum__partial(src, 16, 0);
    s = vfp_csum__partial(dst, 16, s);
    s = vfp_csum__add64(s, vfp_csum__be16((uint16_t)(len >> 16)) + vfp_csum__be16((uint16_t)len) + vfp_csum__be16(58));
    s = vfp_csum__partial(icmp, len, s);
    return (uint16_t)~vfp_csum__fold(s);
}

/* RFC 1812 §4.3.2.7: no ICMP error about a packet whose source is not one host's (0/8,
 * 127/8, multicast, class E and broadcast) or whose destination is a group (multicast,
 * the limited broadcast). */
static int v4_answerable(const uint8_t *ip, unsigned ihl, uint32_t tot) {
    if (!vfp_icmp__host4(ip + 12) || ip[16] >= 224) return 0;
    /* Nor about an ICMP error or redirect (RFC 1812 §4.3.2.7, RFC 1122 §3.2.2). */
    if (ip[9] == 1) {
        if (tot < ihl + 1) return 0;
        const uint8_t t = ip[ihl];
        if (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) return 0;
    }
    return 1;
}

/* RFC 4443 §2.4(e): no error about an error message (types below 128) or a redirect, a
 * packet from the unspecified, loopback or a multicast address, or to a multicast one;
 * and none about a fragment other than the first (it carries no transport header). The
 * extension headers are walked to find the upper-layer type. */
static int v6_answerable(const uint8_t *ip, uint32_t tot) {
    if (!vfp_icmp__host6(ip + 8) || ip[24] == 0xff) return 0;
    uint8_t nh = ip[6];
    uint32_t off = 40;
    for (int i = 0;; i++) {
        if (nh != 0 && nh != 43 && nh != 44 && nh != 51 && nh != 60) break;
        if (i == 8 || off + 8 > tot) return 0; /* a chain this long, or cut short: leave it */
        if (nh == 44 && (vfp_rd16(ip + off + 2) & 0xfff8)) return 0;
        const uint32_t hl = nh == 44 ? 8 : nh == 51 ? (ip[off + 1] + 2u) * 4 : (ip[off + 1] + 1u) * 8;
        nh = ip[off];
        off += hl;
    }
    if (nh == 58) {
        if (off + 1 > tot) return 0;
        if (ip[off] < 128 || ip[off] == 137) return 0;
    }
    return 1;
}

int vfp_icmp__too_big(vfp_pkt *p, uint32_t max_frame) {
    uint8_t *d = p->data;
    const uint32_t len = p->len;
    if (len < 14 || len <= max_frame || (d[0] & 1)) return 0;
    uint32_t l2 = 14;
    uint16_t type = vfp_rd16(d + 12);
    if (type == 0x8100) {
        if (len < 18) return 0;
        type = vfp_rd16(d + 16);
        l2 = 18;
    }
    if (max_frame <= l2) return 0;
    const uint32_t mtu = max_frame - l2, avail = len - l2;
    const uint8_t *ip = d + l2;
    uint32_t tot, quote, hdr; /* the offending IP packet's length; how much of it the reply
                                 quotes; the reply's IP and ICMP header bytes */
    if (type == 0x0800) {
        if (mtu < VFP_ICMP_MIN_MTU4 || avail < 20 || ip[0] >> 4 != 4) return 0;
        const unsigned ihl = (ip[0] & 15) * 4u;
        tot = vfp_rd16(ip + 2);
        /* DF set and no fragment bits: a packet the sender wants discovery for. Without DF
         * the path may fragment, which this data plane does not do: dropped, as before. */
        if (ihl < 20 || tot < ihl || tot > avail || tot <= mtu || vfp_rd16(ip + 6) != 0x4000) return 0;
        if (!v4_answerable(ip, ihl, tot)) return 0;
        hdr = 28;
        quote = tot < VFP_ICMP_MAX_REPLY4 - hdr ? tot : VFP_ICMP_MAX_REPLY4 - hdr;
    } else if (type == 0x86dd) {
        if (mtu < VFP_ICMP_MIN_MTU6 || avail < 40 || ip[0] >> 4 != 6) return 0;
        tot = 40u + vfp_rd16(ip + 4); /* a jumbogram (payload length 0) is never too big here */
        if (tot > avail || tot <= mtu || !v6_answerable(ip, tot)) return 0;
        hdr = 48;
        quote = tot < VFP_ICMP_MAX_REPLY6 - hdr ? tot : VFP_ICMP_MAX_REPLY6 - hdr;
    } else {
        return 0;
    }
    if (p->headroom < hdr) return 0;

    /* The new headers end where the quoted packet starts (d + l2) and so overwrite the old
     * L2 header: what is kept of it is read first. The quoted packet is not moved. */
    uint8_t l2h[18];
    memcpy(l2h, d + 6, 6);  /* the reply goes to the sender */
    memcpy(l2h + 6, d, 6);  /* from the address it sent to */
    memcpy(l2h + 12, d + 12, l2 - 12);
    uint8_t *n = d - hdr;
    memcpy(n, l2h, l2);
    uint8_t *rip = n + l2, *icmp = rip + hdr - 8;
    if (type == 0x0800) {
        rip[0] = 0x45;
        rip[1] = 0xc0; /* internetwork control, as routers mark their ICMP errors */
        vfp_wr16(rip + 2, (uint16_t)(hdr + quote));
        vfp_wr16(rip + 4, 0);
        vfp_wr16(rip + 6, 0x4000);
        rip[8] = 64;
        rip[9] = 1;
        vfp_wr16(rip + 10, 0);
        memcpy(rip + 12, ip + 16, 4);
        memcpy(rip + 16, ip + 12, 4);
        const uint16_t ipc = (uint16_t)~vfp_csum__fold(vfp_csum__partial20(rip, 0));
        memcpy(rip + 10, &ipc, 2);
        icmp[0] = 3; /* destination unreachable */
        icmp[1] = 4; /* fragmentation needed and DF set */
        vfp_wr16(icmp + 2, 0);
        vfp_wr16(icmp + 4, 0);
        vfp_wr16(icmp + 6, (uint16_t)mtu); /* RFC 1191 §4: the next-hop MTU */
        const uint16_t c = (uint16_t)~vfp_csum__fold(vfp_csum__partial(icmp, 8 + quote, 0));
        memcpy(icmp + 2, &c, 2);
    } else {
        rip[0] = 0x60;
        rip[1] = rip[2] = rip[3] = 0;
        vfp_wr16(rip + 4, (uint16_t)(8 + quote));
        rip[6] = 58;
        rip[7] = 64;
        memcpy(rip + 8, ip + 24, 16);
        memcpy(rip + 24, ip + 8, 16);
        icmp[0] = 2; /* packet too big */
        icmp[1] = 0;
        vfp_wr16(icmp + 2, 0);
        vfp_wr16(icmp + 4, (uint16_t)(mtu >> 16));
        vfp_wr16(icmp + 6, (uint16_t)mtu);
        const uint16_t c = vfp_icmp6__csum(rip + 8, rip + 24, icmp, 8 + quote);
        memcpy(icmp + 2, &c, 2);
    }
    p->data = n;
    p->len = l2 + hdr + quote;
    p->headroom -= hdr;
    p->tx_ol = 0;
    return 1;
}
