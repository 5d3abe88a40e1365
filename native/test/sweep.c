/* vfp-core-sweep: encap, decap and the flow hash over a deterministic sweep of edge
 * cases, one line of results per case. Built twice, as is and with VFP_NO_FAST_PATHS
 * (vfp-core-sweep-general: the constant-offset fast paths compiled out), so that
 * test/native/sweep.test.ts can require the two outputs to be identical: a fast path
 * must accept exactly what the general path accepts and give the same result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flowhash.h"
#include "core/vxlan.h"

static uint32_t crc(const uint8_t *p, uint32_t n) { return vfp_crc32c__with(VFP_CRC_SW, p, n); }

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }

static void ip4_csum(uint8_t *ip, unsigned hl) {
    ip[10] = ip[11] = 0;
    uint32_t s = 0;
    for (unsigned i = 0; i < hl; i += 2) s += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    wr16(ip + 10, (uint16_t)~s);
}

/* An inner frame: kind 0 IPv4 UDP, 1 TCP, 2 ICMP, 3 SCTP, 4 IPv4 UDP IHL 6, 5 fragment
 * (MF), 6 fragment (offset), 7 DF set, 8 VLAN-tagged IPv4 UDP, 9 IPv6 UDP, 10 ARP. */
static uint32_t inner_frame(uint8_t *f, unsigned kind, uint32_t len, unsigned flow) {
    memset(f, 0, len > 64 ? len : 64);
    const uint8_t h[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, (uint8_t)(flow >> 8), (uint8_t)flow};
    memcpy(f, h, 12);
    unsigned l3 = 14;
    if (kind == 8) {
        wr16(f + 12, 0x8100);
        wr16(f + 14, 7);
        l3 = 18;
    }
    if (kind == 10) {
        wr16(f + 12, 0x0806);
        return len;
    }
    if (kind == 9) {
        wr16(f + l3 - 2, 0x86dd);
        f[l3] = 0x60 | 0x0a;
        f[l3 + 1] = 0xb0;
        f[l3 + 6] = 17;
        f[l3 + 7] = 64;
        f[l3 + 8] = 0x20, f[l3 + 23] = (uint8_t)flow, f[l3 + 24] = 0x20, f[l3 + 39] = 2;
        wr16(f + l3 + 40, (uint16_t)(1000 + flow));
        wr16(f + l3 + 42, 80);
        return len;
    }
    wr16(f + l3 - 2, 0x0800);
    const unsigned ihl = kind == 4 ? 6 : 5;
    uint8_t *ip = f + l3;
    ip[0] = (uint8_t)(0x40 | ihl);
    ip[1] = (uint8_t)(flow * 4);
    wr16(ip + 2, (uint16_t)(len > l3 ? len - l3 : 0));
    if (kind == 5) wr16(ip + 6, 0x2000);
    if (kind == 6) wr16(ip + 6, 0x0010);
    if (kind == 7) wr16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = kind == 1 ? 6 : kind == 2 ? 1 : kind == 3 ? 132 : 17;
    ip[12] = 10, ip[13] = 1, ip[14] = (uint8_t)(flow >> 8), ip[15] = (uint8_t)flow;
    ip[16] = 10, ip[17] = 2, ip[19] = 1;
    ip4_csum(ip, 4 * ihl);
    wr16(ip + 4 * ihl, (uint16_t)(1024 + flow));
    wr16(ip + 4 * ihl + 2, 5001);
    return len;
}

static const uint32_t lens[] = {0, 1, 12, 13, 14, 15, 20, 33, 34, 35, 37, 38, 39, 41, 42, 54, 60, 64, 65, 100, 1400, 1450, 1451, 1500, 9000};
#define NLENS (sizeof lens / sizeof lens[0])

static uint8_t buf[10240];

static void sweep_encap(void) {
    for (unsigned tv = 0; tv < 8; tv++) {
        vfp_tunnel_cfg c;
        memset(&c, 0, sizeof c);
        const int v6 = tv == 2 || tv == 6;
        c.vlan = tv == 1 || tv == 6 ? 42 : -1;
        c.local.family = c.remote.family = v6 ? 6 : 4;
        c.local.bytes[0] = v6 ? 0x20 : 192, c.local.bytes[v6 ? 15 : 3] = 1;
        c.remote.bytes[0] = v6 ? 0x20 : 192, c.remote.bytes[v6 ? 15 : 3] = 2;
        memcpy(c.src_mac, (uint8_t[]){2, 0xaa, 0, 0, 0, 1}, 6);
        memcpy(c.dst_mac, (uint8_t[]){2, 0xbb, 0, 0, 0, 2}, 6);
        c.dst_port = 4789;
        c.src_port_min = tv == 7 ? 1000 : 49152;
        c.src_port_max = tv == 7 ? 1003 : 65535;
        c.ttl = 64;
        c.tos = tv == 3 ? VFP_TOS_INHERIT : 0;
        c.df = tv == 4 ? VFP_DF_INHERIT : tv == 5 ? VFP_DF_SET : VFP_DF_UNSET;
        c.udp_csum = tv == 5;
        const uint16_t mtus[] = {0, 68, 100, 1450, 1500};
        for (unsigned mi = 0; mi < 5; mi++) {
            c.mtu = mtus[mi];
            vfp_tunnel t;
            if (vfp_tunnel__init(&t, &c) != 0) continue;
            for (unsigned kind = 0; kind <= 10; kind++)
                for (unsigned li = 0; li < NLENS; li++)
                    for (int hr = -1; hr <= 1; hr++) {
                        const uint32_t len = lens[li];
                        const uint32_t headroom = (uint32_t)((int)t.hdr_len + hr);
                        uint8_t *d = buf + 128;
                        inner_frame(d, kind, len, li * 7 + kind);
                        vfp_pkt p;
                        memset(&p, 0, sizeof p);
                        p.data = d;
                        p.len = len;
                        p.headroom = headroom;
                        vfp_pkt *pp = &p;
                        vfp_stats st;
                        memset(&st, 0, sizeof st);
                        const unsigned ok = vfp_vxlan__encap_burst(&t, 100 + kind, &pp, 1, &st);
                        printf("E %u %u %u %u %d %u %s %u %u %ld %08x %lu\n", tv, mtus[mi], kind, len, hr, ok,
                               vfp_reason__name(p.reason), p.len, p.headroom, (long)(p.data - d),
                               ok ? crc(p.data, p.len) : crc(d, len), (unsigned long)st.encap_bytes);
                    }
        }
    }
}

/* A valid outer frame around a 64-byte inner frame: IPv4 (or IPv6, or VLAN-tagged). */
static uint32_t outer_frame(uint8_t *o, unsigned shape, uint32_t vni) {
    vfp_tunnel_cfg c;
    memset(&c, 0, sizeof c);
    const int v6 = shape == 2;
    c.vlan = shape == 1 ? 7 : -1;
    c.local.family = c.remote.family = v6 ? 6 : 4;
    c.local.bytes[0] = v6 ? 0x20 : 192, c.local.bytes[v6 ? 15 : 3] = 2;
    c.remote.bytes[0] = v6 ? 0x20 : 192, c.remote.bytes[v6 ? 15 : 3] = 1;
    c.dst_port = 4789;
    c.src_port_min = 49152;
    c.src_port_max = 65535;
    c.ttl = 64;
    vfp_tunnel t;
    vfp_tunnel__init(&t, &c);
    static uint8_t tmp[512];
    vfp_pkt p;
    memset(&p, 0, sizeof p);
    p.data = tmp + 128;
    p.len = inner_frame(p.data, 0, 64, 3);
    p.headroom = 128;
    vfp_pkt *pp = &p;
    vfp_vxlan__encap_burst(&t, vni, &pp, 1, NULL);
    memcpy(o, p.data, p.len);
    return p.len;
}

static void sweep_decap(void) {
    uint32_t vslots[64];
    vfp_vni_set vs;
    vfp_vni_set__init(&vs, vslots, 16);
    vfp_vni_set__add(&vs, 100);
    vfp_vni_set__add(&vs, 0xffffff);
    /* Mutations of a valid frame: 0 none, then one field each. */
    for (unsigned shape = 0; shape < 3; shape++)
        for (unsigned mut = 0; mut < 24; mut++)
            for (int delta = -2; delta <= 2; delta++)
                for (unsigned cfg = 0; cfg < 8; cfg++) {
                    uint8_t *o = buf + 256;
                    memset(buf, 0xee, sizeof buf);
                    const uint32_t vni = mut == 13 ? 0xffffff : mut == 14 ? 101 : 100;
                    uint32_t n = outer_frame(o, shape, vni);
                    const unsigned l3 = shape == 1 ? 18 : 14;
                    uint8_t *ip = o + l3;
                    uint8_t *udp = ip + (shape == 2 ? 40 : 20);
                    switch (mut) {
                    case 1: n = (uint32_t)((int)n + delta * 25 < 0 ? 0 : (int)n + delta * 25); break; /* length */
                    case 2: n = (uint32_t)((int)n + delta); break;
                    case 3: if (shape != 2) { wr16(ip + 2, (uint16_t)(ip[2] << 8 | ip[3]) + delta); ip4_csum(ip, 20); } break;
                    case 4: wr16(udp + 4, (uint16_t)((udp[4] << 8 | udp[5]) + delta)); break;
                    case 5: if (shape != 2) { ip[6] = delta < 0 ? 0x20 : delta > 0 ? 0x40 : 0x80; ip4_csum(ip, 20); } break;
                    case 6: if (shape != 2) { ip[7] = (uint8_t)(delta + 2); ip4_csum(ip, 20); } break;
                    case 7: if (shape != 2) { ip[9] = delta < 0 ? 6 : delta > 0 ? 1 : 17; ip4_csum(ip, 20); } else ip[6] = 6; break;
                    case 8: wr16(udp + 2, (uint16_t)(4789 + delta)); break;
                    case 9: udp[8] = (uint8_t)(delta == 0 ? 0 : 0x08 | (delta & 0xf7)); break;
                    case 10: if (shape != 2) { ip[0] = 0x46; ip4_csum(ip, 24); } break;
                    case 11: if (shape != 2) ip[10] ^= (uint8_t)(delta + 3); break; /* bad checksum */
                    case 12: ip[0] = (uint8_t)((ip[0] & 0x0f) | 0x50); break; /* version */
                    case 15: if (shape != 2) { ip[16] = (uint8_t)(10 + delta); ip4_csum(ip, 20); } break;
                    case 16: wr16(udp + 16 + 12, 0x8100); break; /* inner VLAN */
                    case 17: wr16(udp + 6, (uint16_t)(0x1234 + delta)); break; /* a UDP checksum */
                    case 18: n = l3 + (shape == 2 ? 40 : 20) + 16 + 13 + (uint32_t)(delta + 2); break;
                    case 19: if (shape != 2) { wr16(ip + 2, 20 + 16 + 13 + (uint16_t)(delta + 2)); ip4_csum(ip, 20); wr16(udp + 4, 16 + 13 + (uint16_t)(delta + 2)); } break;
                    case 20: n += (uint32_t)(delta + 2) * 3; break; /* padding after the datagram */
                    case 21: wr16(o + 12, (uint16_t)(0x0800 + delta)); break;
                    case 22: udp[15] = (uint8_t)(delta * 40); udp[9] = (uint8_t)(delta * 3); break; /* reserved bits */
                    case 23: wr16(udp + 16 + 12, (uint16_t)(0x88a8 + delta)); break;
                    default: break;
                    }
                    vfp_decap_ctx c;
                    memset(&c, 0, sizeof c);
                    c.dst_port = 4789;
                    c.vnis = cfg & 1 ? &vs : NULL;
                    c.verify_udp_csum = (cfg & 2) ? 1 : 0;
                    c.drop_inner_vlan = (cfg & 4) ? 1 : 0;
                    const unsigned locals = (cfg + mut) % 4; /* 0: any, 1: ours, 2: another, 3: two */
                    vfp_addr me;
                    memset(&me, 0, sizeof me);
                    me.family = shape == 2 ? 6 : 4;
                    me.bytes[0] = shape == 2 ? 0x20 : 192, me.bytes[shape == 2 ? 15 : 3] = 1; /* the frames go to .1 */
                    if (locals == 1) c.n_locals = 1, c.locals[0] = me;
                    if (locals == 2) c.n_locals = 1, c.locals[0] = me, c.locals[0].bytes[shape == 2 ? 15 : 3] = 9;
                    if (locals == 3) c.n_locals = 2, c.locals[0] = me, c.locals[0].bytes[1] = 1, c.locals[1] = me;
                    vfp_pkt p;
                    memset(&p, 0, sizeof p);
                    p.data = o;
                    p.len = n;
                    p.headroom = 256;
                    vfp_pkt *pp = &p;
                    const unsigned ok = vfp_vxlan__decap_burst(&c, &pp, 1, NULL);
                    printf("D %u %u %d %u %u %s %u %u", shape, mut, delta, cfg, ok, vfp_reason__name(p.reason), p.vni, p.vtep_family);
                    for (int b = 0; b < 16; b++) printf("%02x", p.vtep[b]);
                    printf(" %ld %u %u %08x\n", (long)(p.data - o), p.len, p.headroom, crc(buf, sizeof buf));
                }
}

static void sweep_hash(void) {
    static const int impls[2] = {VFP_CRC_HW, VFP_CRC_SW};
    for (int k = 0; k < 2; k++) {
        if (vfp_crc32c__select(impls[k]) != 0) continue;
        for (unsigned kind = 0; kind <= 10; kind++)
            for (unsigned li = 0; li < NLENS; li++) {
                inner_frame(buf, kind, lens[li], kind * 31 + li);
                uint16_t meta = 0;
                const uint32_t h = lens[li] >= 14 ? vfp_flowhash__frame(buf, lens[li], &meta) : 0;
                printf("H %d %u %u %08x %04x\n", impls[k], kind, lens[li], h, meta);
            }
    }
    vfp_crc32c__select(VFP_CRC_AUTO);
}

int main(void) {
    sweep_encap();
    sweep_decap();
    sweep_hash();
    return 0;
}
