/* CRC-32C two ways (SSE4.2 instruction, slicing-by-8 table) and the inner flow key of
 * docs/vxlan-engine.md §3.4, fed to the CRC field by field instead of being copied
 * into a key buffer: CRC is a byte stream, so the result is the CRC of the key bytes. */
#include "core/flowhash.h"

#include <errno.h>
#include <string.h>

#include "core/csum.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define VFP_X86 1
#endif

#define CRC32C_POLY 0x82f63b78u /* Castagnoli, reflected */

static uint32_t crc_table[8][256];
static int have_hw;
static int selected = VFP_CRC_SW;

/* Tables and CPU detection run once when the addon is loaded, before any thread can
 * call in, so the packet path reads them without synchronisation. */
__attribute__((constructor)) static void flowhash_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#ifdef VFP_X86
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
    selected = have_hw ? VFP_CRC_HW : VFP_CRC_SW;
}

/* ---- software CRC: raw state in, raw state out (no init/final XOR here) ---- */

static inline uint32_t sw_u8(uint32_t c, uint8_t b) {
    return (c >> 8) ^ crc_table[0][(c ^ b) & 0xff];
}

static inline uint32_t sw_bytes(uint32_t c, const uint8_t *p, size_t len) {
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
            crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) c = sw_u8(c, *p++);
    return c;
}

/* ---- hardware CRC ---- */

#ifdef VFP_X86
/* crc32 over a little-endian 8-byte load consumes the bytes in memory order, which is
 * what makes the field-by-field feeding below equal to the CRC of the key bytes. */
__attribute__((target("sse4.2"))) static inline uint32_t hw_bytes(uint32_t c, const uint8_t *p,
                                                                  size_t len) {
#ifdef __x86_64__
    uint64_t c64 = c;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c = _mm_crc32_u32(c, w);
        p += 4;
        len -= 4;
    }
    while (len--) c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

int vfp_crc32c__have_hw(void) { return have_hw; }
int vfp_crc32c__selected(void) { return selected; }

int vfp_crc32c__select(int impl) {
    switch (impl) {
    case VFP_CRC_AUTO: selected = have_hw ? VFP_CRC_HW : VFP_CRC_SW; return 0;
    case VFP_CRC_HW:
        if (!have_hw) return -ENOTSUP;
        selected = VFP_CRC_HW;
        return 0;
    case VFP_CRC_SW: selected = VFP_CRC_SW; return 0;
    default: return -EINVAL;
    }
}

uint32_t vfp_crc32c__with(int impl, const void *buf, size_t len) {
#ifdef VFP_X86
    if (impl == VFP_CRC_HW && have_hw) return ~hw_bytes(0xffffffffu, (const uint8_t *)buf, len);
#endif
    (void)impl;
    return ~sw_bytes(0xffffffffu, (const uint8_t *)buf, len);
}


/* ---- the inner parse (§3.4) ---- */

/* Where the key parts are in the frame; l3_len 0 means "not IP". */
struct flow_parse {
    uint16_t l3;     /* address bytes offset */
    uint8_t l3_len;  /* 8 (IPv4) or 32 (IPv6) */
    uint8_t has_l4;
    uint16_t l4;
    uint8_t proto;
    uint16_t meta;
};


static inline __attribute__((always_inline)) void flow_parse(const uint8_t *f, uint32_t n,
                                                             struct flow_parse *r) {
    uint32_t l3 = 14;
    uint16_t type = vfp_rd16(f + 12);
    r->l3 = 0;
    r->l3_len = 0;
    r->has_l4 = 0;
    r->l4 = 0;
    r->proto = 0;
    r->meta = 0;
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8) && l3 + 4 <= n; tags++) {
        type = vfp_rd16(f + l3 + 2);
        l3 += 4;
    }
    uint32_t l4;
    if (type == 0x0800) {
        if (l3 + 20 > n || (f[l3] >> 4) != 4) return;
        uint32_t ihl = f[l3] & 0x0f;
        if (ihl < 5 || l3 + 4 * ihl > n) return;
        l4 = l3 + 4 * ihl;
        r->proto = f[l3 + 9];
        r->l3 = (uint16_t)(l3 + 12);
        r->l3_len = 8;
        uint16_t frag = vfp_rd16(f + l3 + 6);
        r->meta = (uint16_t)(VFP_FLOW_IP | f[l3 + 1] | ((frag & 0x4000) ? VFP_FLOW_DF : 0));
        if (frag & 0x3fff) return; /* MF or an offset: a fragment has no ports */
    } else if (type == 0x86dd) {
        if (l3 + 40 > n || (f[l3] >> 4) != 6) return;
        l4 = l3 + 40;
        r->proto = f[l3 + 6];
        r->l3 = (uint16_t)(l3 + 8);
        r->l3_len = 32;
        /* Traffic class straddles the first two bytes; DF-inherit treats IPv6 as DF. */
        r->meta = (uint16_t)(VFP_FLOW_IP | VFP_FLOW_DF | ((f[l3] & 0x0f) << 4) | (f[l3 + 1] >> 4));
    } else {
        return;
    }
    if ((r->proto == 6 || r->proto == 17 || r->proto == 132) && l4 + 4 <= n) {
        r->has_l4 = 1;
        r->l4 = (uint16_t)l4;
    }
}

static inline __attribute__((always_inline)) uint32_t key_crc_sw(const uint8_t *f,
                                                                 const struct flow_parse *r) {
    uint32_t c = sw_bytes(0xffffffffu, f, 12);
    if (r->l3_len) {
        c = sw_bytes(c, f + r->l3, r->l3_len);
        if (r->has_l4) c = sw_bytes(c, f + r->l4, 4);
        c = sw_u8(c, r->proto);
    }
    return ~c;
}

#ifdef VFP_X86
__attribute__((target("sse4.2"))) static inline uint32_t key_crc_hw(const uint8_t *f,
                                                                    const struct flow_parse *r) {
    uint64_t w;
    uint32_t v;
    memcpy(&w, f, 8);
    memcpy(&v, f + 8, 4);
    uint32_t c = (uint32_t)_mm_crc32_u64(0xffffffffu, w);
    c = _mm_crc32_u32(c, v);
    if (r->l3_len) {
        const uint8_t *a = f + r->l3;
        for (unsigned o = 0; o < r->l3_len; o += 8) {
            memcpy(&w, a + o, 8);
            c = (uint32_t)_mm_crc32_u64(c, w);
        }
        if (r->has_l4) {
            memcpy(&v, f + r->l4, 4);
            c = _mm_crc32_u32(c, v);
        }
        c = _mm_crc32_u8(c, r->proto);
    }
    return ~c;
}

/* (x86 only, as the crc32 instruction: the 8-byte words below are little-endian loads.)
 * The common inner frame, untagged IPv4 with a 20-byte header carrying TCP, UDP or SCTP
 * and not a fragment, with every offset a constant: the general parse spends most of its
 * instructions on offsets that depend on VLAN tags and IHL. Returns 0, having written
 * nothing, for any other frame. The key's bytes go to crc32 in three 8-byte words (L2
 * addresses; L2 tail and source address; destination address and ports) and the protocol:
 * CRC is a byte stream, so this split gives the CRC of the same key bytes as the general
 * path's (the differential and CRC tests hold the two to each other). */
__attribute__((target("sse4.2"))) static inline int fast_v4(const uint8_t *f, uint32_t len,
                                                            uint32_t *hash, uint16_t *meta) {
    if (len < 38) return 0; /* before any load: a short frame may end at its buffer's end */
    uint16_t type;
    memcpy(&type, f + 12, 2);
    if (type != (uint16_t)vfp_csum__be16(0x0800) || f[14] != 0x45) return 0;
    const uint8_t proto = f[23];
    const uint16_t frag = vfp_rd16(f + 20);
    if ((frag & 0x3fff) || !(proto == 6 || proto == 17 || proto == 132)) return 0;
    uint64_t l2, w1, w2;
    uint32_t l2tail, src, dst, ports;
    memcpy(&l2, f, 8);
    memcpy(&l2tail, f + 8, 4);
    memcpy(&src, f + 26, 4);
    memcpy(&dst, f + 30, 4);
    memcpy(&ports, f + 34, 4);
    w1 = l2tail | (uint64_t)src << 32;
    w2 = dst | (uint64_t)ports << 32;
    uint64_t c = _mm_crc32_u64(0xffffffffu, l2);
    c = _mm_crc32_u64(c, w1);
    c = _mm_crc32_u64(c, w2);
    *hash = ~_mm_crc32_u8((uint32_t)c, proto);
    *meta = (uint16_t)(VFP_FLOW_IP | f[15] | ((frag & 0x4000) ? VFP_FLOW_DF : 0));
    return 1;
}

__attribute__((target("sse4.2"))) static void burst_hw(vfp_pkt *const *pkts, uint16_t n,
                                                       uint32_t *hash, uint16_t *meta) {
    for (uint16_t i = 0; i < n; i++) {
        const vfp_pkt *p = pkts[i];
        if (!VFP_NO_FAST && VFP_LIKELY(fast_v4(p->data, p->len, &hash[i], &meta[i]))) continue;
        if (VFP_UNLIKELY(p->len < 14)) {
            hash[i] = 0;
            meta[i] = 0;
            continue;
        }
        struct flow_parse r;
        flow_parse(p->data, p->len, &r);
        hash[i] = key_crc_hw(p->data, &r);
        meta[i] = r.meta;
    }
}
#endif

static void burst_sw(vfp_pkt *const *pkts, uint16_t n, uint32_t *hash, uint16_t *meta) {
    for (uint16_t i = 0; i < n; i++) {
        const vfp_pkt *p = pkts[i];
        if (VFP_UNLIKELY(p->len < 14)) {
            hash[i] = 0;
            meta[i] = 0;
            continue;
        }
        struct flow_parse r;
        flow_parse(p->data, p->len, &r);
        hash[i] = key_crc_sw(p->data, &r);
        meta[i] = r.meta;
    }
}

uint32_t vfp_flowhash__frame(const uint8_t *frame, uint32_t n, uint16_t *meta) {
    vfp_pkt p;
    memset(&p, 0, sizeof p);
    p.data = (uint8_t *)(uintptr_t)frame;
    p.len = n;
    vfp_pkt *pp = &p;
    uint32_t h;
    uint16_t m;
    vfp_flowhash__burst(&pp, 1, &h, &m);
    if (meta) *meta = m;
    return h;
}

void vfp_flowhash__burst(vfp_pkt *const *pkts, uint16_t n, uint32_t *hash, uint16_t *meta) {
#ifdef VFP_X86
    if (selected == VFP_CRC_HW) {
        burst_hw(pkts, n, hash, meta);
        return;
    }
#endif
    burst_sw(pkts, n, hash, meta);
}
