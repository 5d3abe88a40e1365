/* VXLAN encap and decap of bursts, as docs/vxlan-engine.md fixes them. Encap copies a
 * per-tunnel header template and patches lengths, IPv4 ID, checksums and the UDP source
 * port; decap runs the §4.2 checks in their exact order. Both work in place. */
#include "core/vxlan.h"

#include <errno.h>
#include <string.h>

#include "core/csum.h"
#include "core/fdb.h"
#include "core/flowhash.h"

static const char *const reason_names[VFP_R__COUNT] = {
    [VFP_OK] = "ok",
    [VFP_R_INNER_TRUNCATED] = "inner_truncated",
    [VFP_R_NO_HEADROOM] = "no_headroom",
    [VFP_R_TOO_BIG] = "too_big",
    [VFP_R_MTU_EXCEEDED] = "mtu_exceeded",
    [VFP_R_ETH_TRUNCATED] = "eth_truncated",
    [VFP_R_NOT_IP] = "not_ip",
    [VFP_R_IP_TRUNCATED] = "ip_truncated",
    [VFP_R_IP_BAD_VERSION] = "ip_bad_version",
    [VFP_R_IP_BAD_IHL] = "ip_bad_ihl",
    [VFP_R_IP_BAD_CHECKSUM] = "ip_bad_checksum",
    [VFP_R_IP_BAD_LENGTH] = "ip_bad_length",
    [VFP_R_IP_FRAGMENT] = "ip_fragment",
    [VFP_R_NOT_LOCAL] = "not_local",
    [VFP_R_NOT_UDP] = "not_udp",
    [VFP_R_UDP_BAD_LENGTH] = "udp_bad_length",
    [VFP_R_NOT_VXLAN_PORT] = "not_vxlan_port",
    [VFP_R_UDP_BAD_CHECKSUM] = "udp_bad_checksum",
    [VFP_R_VXLAN_TRUNCATED] = "vxlan_truncated",
    [VFP_R_VXLAN_BAD_FLAGS] = "vxlan_bad_flags",
    [VFP_R_VNI_UNKNOWN] = "vni_unknown",
    [VFP_R_INNER_VLAN] = "inner_vlan",
    [VFP_R_CE_NOT_ECT] = "ce_not_ect",
    [VFP_R_UDP_ZERO_CHECKSUM] = "udp_zero_checksum",
};

const char *vfp_reason__name(unsigned reason) {
    return reason < VFP_R__COUNT ? reason_names[reason] : NULL;
}

/* Stores a memory-order checksum word as is (see csum.h). */
static inline void wr_csum(uint8_t *p, uint16_t c) { memcpy(p, &c, 2); }

/* ------------------------------------------------------------------------ tunnel */

int vfp_tunnel__init(vfp_tunnel *t, const vfp_tunnel_cfg *cfg) {
    if (!t || !cfg) return -EINVAL;
    const uint8_t fam = cfg->local.family;
    if ((fam != 4 && fam != 6) || cfg->remote.family != fam) return -EINVAL;
    if (cfg->vlan < -1 || cfg->vlan > 4094 || cfg->vlan_pcp > 7) return -EINVAL;
    if (!cfg->dst_port || !cfg->src_port_min || cfg->src_port_min > cfg->src_port_max) return -EINVAL;
    if (!cfg->ttl || (cfg->tos > 255 && cfg->tos != VFP_TOS_INHERIT) || cfg->df > VFP_DF_INHERIT)
        return -EINVAL;
    if (cfg->mtu != 0 && cfg->mtu < 68) return -EINVAL;
    if (cfg->tx_offload & ~VFP_TXO__ALL) return -EINVAL;

    memset(t, 0, sizeof *t);
    uint8_t *h = t->tmpl;
    unsigned o = 0;
    memcpy(h, cfg->dst_mac, 6);
    memcpy(h + 6, cfg->src_mac, 6);
    o = 12;
    if (cfg->vlan >= 0) {
        vfp_wr16(h + o, 0x8100);
        vfp_wr16(h + o + 2, (uint16_t)(cfg->vlan_pcp << 13 | cfg->vlan));
        o += 4;
    }
    vfp_wr16(h + o, fam == 4 ? 0x0800 : 0x86dd);
    o += 2;
    t->l3_off = (uint16_t)o;
    /* Fields that vary per packet (lengths, ID, inherited TOS/DF, checksums, source
     * port) stay zero in the template so the precomputed sums below hold only the
     * constant part and each packet adds its own words. */
    /* A fixed TOS is the DSCP: the ECN field is the inner packet's, per packet (RFC 6040
     * §4.1, normal mode, as Linux's tunnels do). Inherited, the whole byte is copied. */
    const uint8_t tos = cfg->tos == VFP_TOS_INHERIT ? 0 : (uint8_t)(cfg->tos & 0xfc);
    unsigned l4;
    if (fam == 4) {
        uint8_t *ip = h + o;
        ip[0] = 0x45;
        ip[1] = tos;
        if (cfg->df == VFP_DF_SET) vfp_wr16(ip + 6, 0x4000);
        ip[8] = cfg->ttl;
        ip[9] = 17;
        memcpy(ip + 12, cfg->local.bytes, 4);
        memcpy(ip + 16, cfg->remote.bytes, 4);
        t->csum_base = vfp_csum__fold(vfp_csum__partial20(ip, 0));
        l4 = o + 20;
    } else {
        uint8_t *ip = h + o;
        ip[0] = (uint8_t)(0x60 | tos >> 4);
        ip[1] = (uint8_t)(tos << 4);
        ip[6] = 17;
        ip[7] = cfg->ttl;
        memcpy(ip + 8, cfg->local.bytes, 16);
        memcpy(ip + 24, cfg->remote.bytes, 16);
        l4 = o + 40;
    }
    vfp_wr16(h + l4 + 2, cfg->dst_port);
    h[l4 + 8] = 0x08; /* VXLAN I flag */
    t->hdr_len = (uint16_t)(l4 + 16);
    t->family = fam;
    t->df = cfg->df;
    t->udp_csum = fam == 6 ? 1 : (cfg->udp_csum ? 1 : 0);
    t->tos = cfg->tos;
    t->mtu = cfg->mtu;
    t->ip_id = cfg->ip_id;
    t->src_port_min = cfg->src_port_min;
    t->src_port_span = (uint32_t)cfg->src_port_max - cfg->src_port_min + 1;
    /* Pseudo-header addresses and protocol, plus the constant UDP and VXLAN words. The
     * UDP length appears twice (pseudo-header and UDP header) and is added per packet. */
    const unsigned alen = fam == 4 ? 4 : 16;
    uint64_t ps = vfp_csum__partial(cfg->local.bytes, alen, 0);
    ps = vfp_csum__partial(cfg->remote.bytes, alen, ps);
    ps = vfp_csum__add64(ps, vfp_csum__be16(17));
    t->phdr_base = vfp_csum__fold(ps);
    /* What the device finishes: the IPv4 header checksum (IPv6 has none) and the UDP
     * checksum when there is one to compute. */
    t->tx_ol = (uint8_t)((cfg->tx_offload & (fam == 4 ? VFP_TXO_IP_CSUM : 0)) |
                         (t->udp_csum ? cfg->tx_offload & VFP_TXO_UDP_CSUM : 0));
    if (t->tx_ol && fam == 6) t->tx_ol |= VFP_TXO_IPV6;
    if (t->tx_ol) __atomic_store_n(&vfp_txo_seen, 1, __ATOMIC_RELAXED);
    ps = vfp_csum__partial(h + l4, 16, ps);
    t->pseudo_base = vfp_csum__fold(ps);
    return 0;
}

/* Copies the 50/54/70/74-byte header with fixed-size, possibly overlapping 16-byte
 * moves: no libc call and no byte loop per packet, never a byte outside [o, o+hl). */
static inline void copy_hdr(uint8_t *o, const uint8_t *tmpl, unsigned hl) {
    memcpy(o, tmpl, 16);
    memcpy(o + 16, tmpl + 16, 16);
    memcpy(o + 32, tmpl + 32, 16);
    if (hl > 64) memcpy(o + 48, tmpl + 48, 16);
    memcpy(o + hl - 16, tmpl + hl - 16, 16);
}

/* The fast paths for the common frame (constant offsets) have a general twin: VFP_NO_FAST
 * (vfp.h) compiles them out for native/test/sweep.c. */

#define ENCAP_PREFETCH 4

/* The per-packet loop; the tunnel's options come in as arguments so that the common
 * case (IPv4, fixed TOS and DF, no UDP checksum, no offload) is compiled with them as
 * constants. `ol`: the tunnel's tx_ol, the checksums left for the device. */
static inline __attribute__((always_inline)) uint16_t
encap_loop(vfp_tunnel *t, const uint8_t *tmpl, uint64_t pseudo, vfp_pkt **pkts, uint16_t n, vfp_stats *st,
           const int v4, const int tos_inherit, const int df_inherit, const int udp_csum, const int ol,
           const unsigned hl_c) {
    uint32_t hash[VFP_MAX_BURST];
    uint16_t meta[VFP_MAX_BURST];
    /* hl_c: the header length as a constant (0: read it from the tunnel), so that the
     * common untagged IPv4 tunnel gets its copy and offsets folded. */
    const unsigned hl = hl_c ? hl_c : t->hdr_len;
    const unsigned l3 = hl_c ? hl_c - (v4 ? 36 : 56) : t->l3_off;
    const unsigned l4 = l3 + (v4 ? 20 : 40);
    /* Inner-length limits for checks 3 and 4, from the outer IP lengths of §3.1. */
    const uint32_t ip_over = v4 ? 36 : 16;          /* outer IP length field - inner */
    const uint32_t max_inner = 65535 - ip_over;
    const uint32_t mtu_inner = vfp_tunnel__max_inner(t);
    /* Checks 1, 3 and 4 as one unsigned range test on the fast path: len in [14, lim].
     * A packet outside it, or short of headroom, takes the checks in their order. */
    const uint32_t lim = max_inner < mtu_inner ? max_inner : mtu_inner;
    const uint32_t ok_span = lim >= 14 ? lim - 14 : 0;
    const int none_fit = VFP_NO_FAST || lim < 14; /* the general twin: the checks in order */
    uint16_t id = t->ip_id;
    uint16_t ok = 0;
    uint64_t bytes = 0;
    /* Locals, not t->…: the header stores below go through uint8_t pointers, which may
     * alias t, so the compiler would reload every field per packet. */
    const uint16_t sp_min = t->src_port_min;
    const uint32_t sp_span = t->src_port_span;
    const uint32_t csum_base = t->csum_base;
    const uint32_t phdr_base = t->phdr_base;
    const uint8_t l3_len = v4 ? 20 : 40;
    /* A fixed TOS's DSCP as the template's IPv4 TOS byte holds it, or (IPv6) the low
     * nibble of the traffic class, whose high one sits in the version byte. */
    const uint8_t dscp = v4 ? tmpl[l3 + 1] : (uint8_t)(tmpl[l3 + 1] >> 4);

    /* One pass to parse and hash every inner frame, so the CRC implementation is picked
     * once per burst and the inner headers are in L1 for the pass that writes. */
    vfp_flowhash__burst(pkts, n, hash, meta);

    for (uint16_t i = 0; i < n; i++) {
        if (i + ENCAP_PREFETCH < n) {
            /* A prefetch never faults: no need to check the headroom first. */
            VFP_PREFETCHW((const void *)((uintptr_t)pkts[i + ENCAP_PREFETCH]->data - hl));
        }
        vfp_pkt *p = pkts[i];
        const uint32_t len = p->len;
        if (VFP_UNLIKELY(len - 14u > ok_span || none_fit || p->headroom < hl)) {
            uint8_t r;
            if (len < 14) r = VFP_R_INNER_TRUNCATED;
            else if (p->headroom < hl) r = VFP_R_NO_HEADROOM;
            else if (len > max_inner) r = VFP_R_TOO_BIG;
            else if (len > mtu_inner) r = VFP_R_MTU_EXCEEDED;
            else r = VFP_OK;
            p->reason = r;
            if (r != VFP_OK) {
                if (st) st->drops[r]++;
                continue;
            }
        } else {
            p->reason = VFP_OK;
        }

        uint8_t *o = p->data - hl;
        copy_hdr(o, tmpl, hl);
        const uint16_t m = meta[i];
        const uint16_t ulen = (uint16_t)(16 + len);
        const uint16_t sport = vfp_flowhash__port(hash[i], sp_min, sp_span);
        if (v4) {
            uint8_t *ip = o + l3;
            const uint16_t tot = (uint16_t)(36 + len);
            uint32_t s = csum_base; /* < 2^16 + four 16-bit terms: never carries out */
            s += vfp_csum__be16(tot) + vfp_csum__be16(id);
            if (tos_inherit) {
                ip[1] = (uint8_t)m;
                s += vfp_csum__be16((uint8_t)m);
            } else {
                ip[1] = (uint8_t)(dscp | (m & 3)); /* the inner ECN field (0 when not IP) */
                s += vfp_csum__be16((uint8_t)(m & 3));
            }
            if (df_inherit && (m & VFP_FLOW_DF)) {
                ip[6] = 0x40;
                s += vfp_csum__be16(0x4000);
            }
            vfp_wr16(ip + 2, tot);
            vfp_wr16(ip + 4, id);
            id++; /* uint16_t: wraps at 65536 as §3.2 asks */
            /* Offloaded: the template's 0 stays, for the device to fill. */
            if (!(ol & VFP_TXO_IP_CSUM)) wr_csum(ip + 10, (uint16_t)~vfp_csum__fold(s));
        } else {
            uint8_t *ip = o + l3;
            if (tos_inherit) {
                ip[0] = (uint8_t)(0x60 | (m & 0xff) >> 4);
                ip[1] = (uint8_t)(m << 4);
            } else {
                ip[1] = (uint8_t)(dscp << 4 | (m & 3) << 4); /* the inner ECN field */
            }
            vfp_wr16(ip + 4, ulen);
        }
        uint8_t *udp = o + l4;
        vfp_wr16(udp, sport);
        vfp_wr16(udp + 4, ulen);
        if (udp_csum && (ol & VFP_TXO_UDP_CSUM)) {
            /* The device sums the UDP header and payload onto the field: seed it with the
             * pseudo-header (addresses, protocol, length), folded, not complemented. */
            wr_csum(udp + 6, vfp_csum__fold((uint64_t)phdr_base + vfp_csum__be16(ulen)));
        } else if (udp_csum) {
            uint64_t s = pseudo;
            s += 2 * (uint64_t)vfp_csum__be16(ulen) + vfp_csum__be16(sport);
            s = vfp_csum__partial(p->data, len, s);
            uint16_t c = (uint16_t)~vfp_csum__fold(s);
            wr_csum(udp + 6, c ? c : 0xffff); /* 0 means "no checksum" on the wire */
        }
        p->data = o;
        p->len = len + hl;
        p->headroom -= hl;
        p->tx_ol = (uint8_t)ol;
        p->l2_len = (uint8_t)l3;
        p->l3_len = l3_len;
        bytes += len + hl;
        ok++;
    }
    t->ip_id = id;
    if (st) {
        st->encap_pkts += ok;
        st->encap_bytes += bytes;
    }
    return ok;
}

static uint16_t encap_chunk(vfp_tunnel *t, const uint8_t *tmpl, uint64_t pseudo, vfp_pkt **pkts,
                            uint16_t n, vfp_stats *st) {
    const int v4 = t->family == 4;
    const int tos_inherit = t->tos == VFP_TOS_INHERIT;
    const int df_inherit = t->df == VFP_DF_INHERIT;
    const int udp_csum = t->udp_csum;
    if (v4 && !tos_inherit && !df_inherit && !udp_csum && !t->tx_ol)
        return t->hdr_len == 50 && t->l3_off == 14 && !VFP_NO_FAST ? encap_loop(t, tmpl, pseudo, pkts, n, st, 1, 0, 0, 0, 0, 50)
                                : encap_loop(t, tmpl, pseudo, pkts, n, st, 1, 0, 0, 0, 0, 0);
    return encap_loop(t, tmpl, pseudo, pkts, n, st, v4, tos_inherit, df_inherit, udp_csum, t->tx_ol, 0);
}

uint16_t vfp_vxlan__encap_burst(vfp_tunnel *t, uint32_t vni, vfp_pkt **pkts, uint16_t n,
                                vfp_stats *st) {
    /* The VNI is per call, so it goes into a stack copy of the template once per burst
     * and into the UDP pseudo sum once per burst. */
    uint8_t tmpl[sizeof t->tmpl] VFP_ALIGNED(16);
    memcpy(tmpl, t->tmpl, sizeof tmpl);
    const unsigned l4 = t->l3_off + (t->family == 4 ? 20 : 40);
    uint8_t *vx = tmpl + l4 + 8;
    vx[4] = (uint8_t)(vni >> 16);
    vx[5] = (uint8_t)(vni >> 8);
    vx[6] = (uint8_t)vni;
    /* Folded, so the per-packet additions below cannot carry out of 64 bits. Without a
     * UDP checksum nothing reads it. */
    const uint64_t pseudo = t->udp_csum ? vfp_csum__fold(vfp_csum__partial(vx + 4, 4, t->pseudo_base)) : 0;
    uint16_t ok = 0;
    for (uint16_t done = 0; done < n;) {
        uint16_t k = (uint16_t)(n - done > VFP_MAX_BURST ? VFP_MAX_BURST : n - done);
        ok = (uint16_t)(ok + encap_chunk(t, tmpl, pseudo, pkts + done, k, st));
        done = (uint16_t)(done + k);
    }
    return ok;
}

/* ------------------------------------------------------------------------ VNI set */

static inline uint32_t vni_slot(uint32_t vni, uint32_t mask) {
    return (uint32_t)(((uint64_t)vni * 0x9e3779b1u) >> 7) & mask;
}

size_t vfp_vni_set__mem_size(uint32_t capacity) {
    uint32_t slots = 8;
    /* At most half full, so probes stay short and always reach an empty slot. */
    while (slots < 2ull * capacity && slots < (1u << 25)) slots <<= 1;
    return (size_t)slots * sizeof(uint32_t);
}

void vfp_vni_set__init(vfp_vni_set *s, void *mem, uint32_t capacity) {
    size_t bytes = vfp_vni_set__mem_size(capacity);
    memset(mem, 0, bytes);
    s->slots = (uint32_t *)mem;
    s->mask = (uint32_t)(bytes / sizeof(uint32_t)) - 1;
    s->count = 0;
}

int vfp_vni_set__add(vfp_vni_set *s, uint32_t vni) {
    if (vni > 0xffffff) return -EINVAL;
    uint32_t i = vni_slot(vni, s->mask);
    for (;; i = (i + 1) & s->mask) {
        if (s->slots[i] == vni + 1) return 0;
        if (s->slots[i] == 0) break;
    }
    if ((s->count + 1) * 2 > s->mask + 1) return -ENOSPC;
    s->slots[i] = vni + 1;
    s->count++;
    return 0;
}

int vfp_vni_set__contains(const vfp_vni_set *s, uint32_t vni) {
    for (uint32_t i = vni_slot(vni, s->mask);; i = (i + 1) & s->mask) {
        uint32_t v = s->slots[i];
        if (v == vni + 1) return 1;
        if (v == 0) return 0;
    }
}

/* ------------------------------------------------------------------------ decap */

static inline int local_ok(const vfp_decap_ctx *c, uint8_t fam, const uint8_t *dst) {
    for (unsigned i = 0; i < c->n_locals; i++) {
        const vfp_addr *a = &c->locals[i];
        if (a->family == fam && memcmp(a->bytes, dst, fam == 4 ? 4 : 16) == 0) return 1;
    }
    return 0;
}

/* Marks the inner frame F (LEN bytes) Congestion Experienced, as RFC 6040 §4.2 asks of a
 * decapsulator whose outer header is CE: an ECN-capable IPv4 (its header checksum kept
 * right) or IPv6 packet, after up to two VLAN tags, gets CE; a frame that is not IP is
 * left alone. Returns 0 for an IP packet that is not ECN-capable (Not-ECT), or whose
 * header is too short to say: the mark cannot be carried, and the packet is dropped. */
static int ecn_set_ce(uint8_t *f, uint32_t len) {
    uint32_t l3;
    const uint16_t type = vfp_eth__type(f, len, &l3); /* the inner frame is 14 bytes at least */
    uint8_t *ip = f + l3;
    if (type == 0x0800) {
        if (l3 + 20 > len || (ip[0] >> 4) != 4) return 0;
        if ((ip[1] & 3) == 0) return 0;
        if ((ip[1] & 3) == 3) return 1;
        /* The word (version/IHL, TOS) changes: the checksum follows (RFC 1624). */
        const uint16_t old = vfp_rd16(ip);
        ip[1] |= 3;
        vfp_wr16(ip + 10, vfp_csum__update16(vfp_rd16(ip + 10), old, vfp_rd16(ip)));
        return 1;
    }
    if (type == 0x86dd) {
        if (l3 + 40 > len || (ip[0] >> 4) != 6) return 0;
        if (((ip[1] >> 4) & 3) == 0) return 0;
        ip[1] |= 0x30;
        return 1;
    }
    return 1;
}

/* The §4.2 checks for one packet, in the contract's order; fills the results and moves
 * the packet to its inner frame on success. */
static inline uint8_t decap_one(const vfp_decap_ctx *c, vfp_pkt *p) {
    const uint8_t *f = p->data;
    const uint32_t n = p->len;
    if (VFP_UNLIKELY(n < 14)) return VFP_R_ETH_TRUNCATED;
    uint16_t type = vfp_rd16(f + 12);
    uint32_t l3 = 14;
    if (VFP_UNLIKELY(type == 0x8100 || type == 0x88a8)) {
        for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8); tags++) {
            if (l3 + 4 > n) return VFP_R_ETH_TRUNCATED;
            type = vfp_rd16(f + l3 + 2);
            l3 += 4;
        }
    }
    uint32_t l4, avail;
    uint8_t fam;
    const uint8_t *ip = f + l3;
    if (VFP_LIKELY(type == 0x0800)) {
        if (l3 + 20 > n) return VFP_R_IP_TRUNCATED;
        if ((ip[0] >> 4) != 4) return VFP_R_IP_BAD_VERSION;
        const uint32_t hl = 4u * (ip[0] & 0x0f);
        if (hl < 20) return VFP_R_IP_BAD_IHL;
        if (l3 + hl > n) return VFP_R_IP_TRUNCATED;
        if (!vfp_csum__ipv4_ok(ip, hl)) return VFP_R_IP_BAD_CHECKSUM;
        const uint32_t tot = vfp_rd16(ip + 2);
        if (tot < hl || l3 + tot > n) return VFP_R_IP_BAD_LENGTH;
        if (vfp_rd16(ip + 6) & 0x3fff) return VFP_R_IP_FRAGMENT;
        if (c->n_locals && !local_ok(c, 4, ip + 16)) return VFP_R_NOT_LOCAL;
        if (ip[9] != 17) return VFP_R_NOT_UDP;
        l4 = l3 + hl;
        avail = tot - hl;
        fam = 4;
    } else if (type == 0x86dd) {
        if (l3 + 40 > n) return VFP_R_IP_TRUNCATED;
        if ((ip[0] >> 4) != 6) return VFP_R_IP_BAD_VERSION;
        const uint32_t plen = vfp_rd16(ip + 4);
        if (l3 + 40 + plen > n) return VFP_R_IP_BAD_LENGTH;
        if (c->n_locals && !local_ok(c, 6, ip + 24)) return VFP_R_NOT_LOCAL;
        if (ip[6] != 17) return VFP_R_NOT_UDP;
        l4 = l3 + 40;
        avail = plen;
        fam = 6;
    } else {
        return VFP_R_NOT_IP;
    }
    const uint8_t *udp = f + l4;
    if (avail < 8) return VFP_R_UDP_BAD_LENGTH;
    if (vfp_rd16(udp + 2) != c->dst_port) return VFP_R_NOT_VXLAN_PORT;
    const uint32_t ulen = vfp_rd16(udp + 4);
    if (ulen < 8 || ulen > avail) return VFP_R_UDP_BAD_LENGTH;
    if (c->verify_udp_csum) {
        const uint16_t cs = vfp_rd16(udp + 6);
        if (cs == 0) {
            /* A sender that leaves IPv6 UDP checksums at 0 (RFC 6935/6936 let tunnels do
             * so by configuration: Linux's udp6zerocsumtx) is not one that got it wrong:
             * a reason of its own, so that `status` can say which setting disagrees. */
            if (fam == 6) return VFP_R_UDP_ZERO_CHECKSUM;
        } else {
            const unsigned alen = fam == 4 ? 4 : 16;
            const uint8_t *src = fam == 4 ? ip + 12 : ip + 8;
            uint64_t s = vfp_csum__be16(17) + vfp_csum__be16((uint16_t)ulen);
            s = vfp_csum__partial(src, 2 * alen, s); /* source then destination */
            s = vfp_csum__partial(udp, ulen, s);
            if (vfp_csum__fold(s) != 0xffff) return VFP_R_UDP_BAD_CHECKSUM;
        }
    }
    if (ulen < 16) return VFP_R_VXLAN_TRUNCATED;
    if (!(udp[8] & 0x08)) return VFP_R_VXLAN_BAD_FLAGS;
    const uint32_t vni = (uint32_t)udp[12] << 16 | (uint32_t)udp[13] << 8 | udp[14];
    if (c->vnis && !vfp_vni_set__contains(c->vnis, vni)) return VFP_R_VNI_UNKNOWN;
    const uint32_t inner = ulen - 16;
    if (inner < 14) return VFP_R_INNER_TRUNCATED;
    if (c->drop_inner_vlan) {
        const uint16_t it = vfp_rd16(udp + 16 + 12);
        if (it == 0x8100 || it == 0x88a8) return VFP_R_INNER_VLAN;
    }
    /* RFC 6040 §4.2: a congestion mark (CE) on the outer header is carried to the inner
     * IP header; an inner IP packet that is not ECN-capable cannot carry it: dropped. */
    const uint8_t outer_ecn = fam == 4 ? (ip[1] & 3) : ((ip[1] >> 4) & 3);
    if (VFP_UNLIKELY(outer_ecn == 3) && !ecn_set_ce(p->data + l4 + 16, inner)) return VFP_R_CE_NOT_ECT;

    p->vni = vni;
    p->vtep_family = fam;
    if (fam == 4) {
        memcpy(p->vtep, ip + 12, 4);
        memset(p->vtep + 4, 0, 12);
    } else {
        memcpy(p->vtep, ip + 8, 16);
    }
    const uint32_t adv = l4 + 16;
    p->data += adv;
    p->headroom += adv;
    p->len = inner;
    return VFP_OK;
}

/* What decap_fast_v4 needs from the context, read once per burst: the stores through
 * p (uint8_t) may alias the context, so the compiler would reload it for every packet. */
struct decap_fast {
    int on;                  /* 0: the context asks for what only decap_one does */
    int check_local;         /* one IPv4 local VTEP to match (else: any destination) */
    uint32_t local0;         /* its address, in memory order */
    uint16_t dport_wire;     /* the VXLAN port as the wire has it */
    uint8_t drop_inner_vlan;
    const vfp_vni_set *vnis;
};

static inline struct decap_fast decap_fast_of(const vfp_decap_ctx *c) {
    struct decap_fast d;
    memset(&d, 0, sizeof d);
    /* UDP checksum verification, several locals or an IPv6 one: the general path only. */
    d.on = !VFP_NO_FAST && !c->verify_udp_csum && (c->n_locals == 0 || (c->n_locals == 1 && c->locals[0].family == 4));
    d.check_local = c->n_locals == 1;
    if (d.check_local) memcpy(&d.local0, c->locals[0].bytes, 4);
    d.dport_wire = (uint16_t)vfp_csum__be16(c->dst_port);
    d.drop_inner_vlan = c->drop_inner_vlan;
    d.vnis = c->vnis;
    return d;
}

/* The common outer frame, untagged IPv4 with a 20-byte header and no UDP checksum to
 * verify, checked with every offset a constant. Returns 1 with the results filled when
 * the packet passes every §4.2 check; 0, having changed nothing, for anything else, which
 * decap_one then checks in the contract's order (so every drop keeps its reason). Each
 * check of decap_one for this shape is here, and nothing passes here that fails there. */
static inline int decap_fast_v4(const struct decap_fast *d, vfp_pkt *p) {
    const uint8_t *f = p->data;
    const uint32_t n = p->len;
    /* 14 Ethernet + 20 IP + 16 UDP/VXLAN + a 14-byte inner frame at the least; tested
     * before any load, since a short frame may end at its buffer's end. */
    if (n < 64) return 0;
    uint16_t type;
    memcpy(&type, f + 12, 2);
    if (type != (uint16_t)vfp_csum__be16(0x0800) || f[14] != 0x45) return 0;
    const uint8_t *ip = f + 14;
    if (!vfp_csum__ipv4_ok(ip, 20) || (ip[1] & 3) == 3) return 0; /* CE: decap_one marks the inner packet */
    const uint32_t tot = vfp_rd16(ip + 2);
    if (tot < 20 || 14 + tot > n || (vfp_rd16(ip + 6) & 0x3fff) || ip[9] != 17) return 0;
    if (d->check_local) {
        uint32_t dst;
        memcpy(&dst, ip + 16, 4);
        if (dst != d->local0) return 0;
    }
    const uint8_t *udp = ip + 20;
    const uint32_t avail = tot - 20;
    uint16_t dport;
    memcpy(&dport, udp + 2, 2);
    const uint32_t ulen = vfp_rd16(udp + 4);
    if (avail < 8 || dport != d->dport_wire || ulen < 16 || ulen > avail || !(udp[8] & 0x08)) return 0;
    uint32_t w;
    memcpy(&w, udp + 12, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap32(w);
#endif
    const uint32_t vni = w >> 8; /* the low byte is reserved */
    if (d->vnis && !vfp_vni_set__contains(d->vnis, vni)) return 0;
    const uint32_t inner = ulen - 16;
    if (inner < 14) return 0;
    if (d->drop_inner_vlan) {
        const uint16_t it = vfp_rd16(udp + 16 + 12);
        if (it == 0x8100 || it == 0x88a8) return 0;
    }
    p->vni = vni;
    p->vtep_family = 4;
    memcpy(p->vtep, ip + 12, 4);
    memset(p->vtep + 4, 0, 12);
    p->data += 50;
    p->headroom += 50;
    p->len = inner;
    return 1;
}

#define DECAP_PREFETCH 4

uint16_t vfp_vxlan__decap_burst(const vfp_decap_ctx *c, vfp_pkt **pkts, uint16_t n,
                                vfp_stats *st) {
    uint16_t ok = 0;
    uint64_t bytes = 0;
    /* Learning is done after the parse pass, for the whole burst at once, so the FDB
     * can hash every key and prefetch its buckets before touching any of them. */
    uint32_t l_vni[VFP_MAX_BURST];
    const uint8_t *l_mac[VFP_MAX_BURST];
    const uint8_t *l_vtep[VFP_MAX_BURST];
    uint8_t l_fam[VFP_MAX_BURST];
    uint16_t nl = 0;
    vfp_fdb *fdb = c->learn_fdb;
    const struct decap_fast fast = decap_fast_of(c);

    for (uint16_t i = 0; i < n; i++) {
        if (i + DECAP_PREFETCH < n) VFP_PREFETCH(pkts[i + DECAP_PREFETCH]->data);
        vfp_pkt *p = pkts[i];
        const uint8_t r = fast.on && decap_fast_v4(&fast, p) ? VFP_OK : decap_one(c, p);
        p->reason = r;
        if (VFP_UNLIKELY(r != VFP_OK)) {
            /* §4.2: a drop carries no VNI or VTEP, so nothing stale from an earlier
             * use of the descriptor survives. */
            p->vni = 0;
            p->vtep_family = 0;
            memset(p->vtep, 0, sizeof p->vtep);
            if (st) st->drops[r]++;
            continue;
        }
        ok++;
        bytes += p->len;
        if (fdb) {
            l_vni[nl] = p->vni;
            l_mac[nl] = p->data + 6;
            l_vtep[nl] = p->vtep;
            l_fam[nl] = p->vtep_family;
            if (++nl == VFP_MAX_BURST) {
                vfp_fdb__learn_bulk(fdb, l_vni, l_mac, l_fam, l_vtep, nl, c->now, st);
                nl = 0;
            }
        }
    }
    if (nl) vfp_fdb__learn_bulk(fdb, l_vni, l_mac, l_fam, l_vtep, nl, c->now, st);
    if (st) {
        st->decap_pkts += ok;
        st->decap_bytes += bytes;
    }
    return ok;
}
