/* Internet checksum over buffers: the one loop that touches every payload byte when a
 * UDP checksum is on (always for IPv6). AVX2 when the CPU has it (chosen at load time),
 * else eight bytes at a time into two accumulators with end-around carry. */
#include "core/csum.h"

#include <string.h>

#include "core/vfp.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define VFP_CSUM_AVX2 1
#endif

static uint64_t partial_scalar(const uint8_t *p, size_t len, uint64_t acc);

#ifdef VFP_CSUM_AVX2
static int have_avx2;

/* Chosen once at load time, before any thread can call in. */
__attribute__((constructor)) static void csum_init(void) {
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
}

/* 32-bit words zero-extended into 64-bit lanes: no lane can carry out for any frame
 * we will see (2^32 words), and a 32-bit word is congruent to the sum of its two
 * 16-bit halves mod 0xFFFF, so the fold gives the same 16-bit sum as the scalar loop. */
__attribute__((target("avx2"))) static uint64_t partial_avx2(const uint8_t *p, size_t len,
                                                             uint64_t acc) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    while (len >= 64) {
        __m256i x = _mm256_loadu_si256((const __m256i *)p);
        __m256i y = _mm256_loadu_si256((const __m256i *)(p + 32));
        a0 = _mm256_add_epi64(a0, _mm256_unpacklo_epi32(x, zero));
        a1 = _mm256_add_epi64(a1, _mm256_unpackhi_epi32(x, zero));
        a2 = _mm256_add_epi64(a2, _mm256_unpacklo_epi32(y, zero));
        a3 = _mm256_add_epi64(a3, _mm256_unpackhi_epi32(y, zero));
        p += 64;
        len -= 64;
    }
    __m256i t = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, t);
    /* Explicit: GCC 12 turns the tail below into a jump and then omits its own
     * vzeroupper, and dirty upper halves make every later SSE instruction in the
     * packet loop pay a state-transition penalty (measured: 1500-byte encap 2x slower). */
    _mm256_zeroupper();
    for (int i = 0; i < 4; i++) acc = vfp_csum__add64(acc, lanes[i]);
    return partial_scalar(p, len, acc);
}
#endif

uint64_t vfp_csum__partial(const void *buf, size_t len, uint64_t acc) {
#ifdef VFP_CSUM_AVX2
    if (len >= 128 && have_avx2) return partial_avx2((const uint8_t *)buf, len, acc);
#endif
    return partial_scalar((const uint8_t *)buf, len, acc);
}

static uint64_t partial_scalar(const uint8_t *p, size_t len, uint64_t acc) {
    uint64_t a0 = acc, a1 = 0;
    /* Two chains so consecutive adds do not wait on each other's carry. */
    while (len >= 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        memcpy(&w2, p + 16, 8);
        memcpy(&w3, p + 24, 8);
        a0 = vfp_csum__add64(a0, w0);
        a1 = vfp_csum__add64(a1, w1);
        a0 = vfp_csum__add64(a0, w2);
        a1 = vfp_csum__add64(a1, w3);
        p += 32;
        len -= 32;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        a0 = vfp_csum__add64(a0, w);
        p += 8;
        len -= 8;
    }
    if (len) {
        /* The tail lands in the low-addressed bytes of a zeroed word, which keeps every
         * byte in the same half of its 16-bit word and pads an odd byte with zero. */
        uint64_t w = 0;
        memcpy(&w, p, len);
        a0 = vfp_csum__add64(a0, w);
    }
    return vfp_csum__add64(a0, a1);
}

/* ------------------------------------------------ checksums left for a device */

/* Stores a memory-order checksum word as is. */
static inline void store_csum(uint8_t *p, uint16_t c) { memcpy(p, &c, 2); }

int vfp_txo_seen; /* see vfp.h; set by vfp_tunnel__init */

void vfp_pkt__tx_finish(vfp_pkt *p, uint8_t which) {
    const uint8_t todo = (uint8_t)(p->tx_ol & which & VFP_TXO__ALL);
    if (!todo) return;
    uint8_t *l3 = p->data + p->l2_len;
    if (todo & VFP_TXO_IP_CSUM) {
        l3[10] = l3[11] = 0;
        store_csum(l3 + 10, (uint16_t)~vfp_csum__fold(vfp_csum__partial20(l3, 0)));
    }
    if (todo & VFP_TXO_UDP_CSUM) {
        /* The field holds the pseudo-header sum, so the sum of the UDP header and payload
         * as they stand is the whole checksum sum. */
        uint8_t *udp = l3 + p->l3_len;
        const uint32_t ulen = p->len - p->l2_len - p->l3_len;
        const uint16_t c = (uint16_t)~vfp_csum__fold(vfp_csum__partial(udp, ulen, 0));
        store_csum(udp + 6, c ? c : 0xffff);
    }
    p->tx_ol = (uint8_t)(p->tx_ol & ~todo);
    if (!(p->tx_ol & VFP_TXO__ALL)) p->tx_ol = 0;
}

/* ------------------------------------------------ checksums a sender left unfinished */

int vfp_csum__finish_l4(uint8_t *f, uint32_t len) {
    if (len < 14) return 0;
    uint32_t l3;
    const uint16_t type = vfp_eth__type(f, len, &l3);
    const uint8_t *ip = f + l3;
    uint32_t l4, l4len;
    uint8_t proto;
    if (type == 0x0800) {
        if (l3 + 20 > len || (ip[0] >> 4) != 4) return 0;
        const uint32_t hl = 4u * (ip[0] & 0x0f), tot = vfp_rd16(ip + 2);
        if (hl < 20 || tot < hl || l3 + tot > len) return 0;
        if (vfp_rd16(ip + 6) & 0x3fff) return 0; /* a fragment: its sum spans the others */
        proto = ip[9];
        l4 = l3 + hl;
        l4len = tot - hl;
    } else if (type == 0x86dd) {
        if (l3 + 40 > len || (ip[0] >> 4) != 6) return 0;
        const uint32_t pl = vfp_rd16(ip + 4);
        if (l3 + 40 + pl > len) return 0;
        proto = ip[6];
        l4 = l3 + 40;
        l4len = pl;
    } else {
        return 0;
    }
    unsigned at;
    if (proto == 6 && l4len >= 20) at = 16;
    else if (proto == 17 && l4len >= 8) at = 6;
    else return 0;
    uint8_t *h = f + l4;
    uint16_t c = (uint16_t)~vfp_csum__fold(vfp_csum__partial(h, l4len, 0));
    if (proto == 17 && c == 0) c = 0xffff; /* 0 would say "no checksum" */
    store_csum(h + at, c);
    return 1;
}
