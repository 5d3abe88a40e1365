/* Internet checksum (RFC 1071) for the engine: partial sums over buffers, folding, the
 * IPv4 header check. Everything is inline or
 * branch-light because encap and decap call it for every packet. */
#ifndef VFP_CORE_CSUM_H
#define VFP_CORE_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sums are kept in "memory order": 16-bit words are loaded as the CPU loads them, not
 * byte-swapped. The ones' complement sum commutes with byte swapping (RFC 1071 §2B),
 * so a checksum computed this way and stored back with memcpy has the right wire
 * bytes on either endianness, and the per-packet path never swaps the bulk data. */

/* The memory-order word whose wire bytes are the big-endian value v. */
static inline uint32_t vfp_csum__be16(uint16_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return __builtin_bswap16(v);
#else
    return v;
#endif
}

/* 64-bit ones' complement addition (end-around carry). Folding a 64-bit ones'
 * complement sum down to 16 bits gives the 16-bit sum because 2^16-1 divides 2^64-1. */
static inline uint64_t vfp_csum__add64(uint64_t a, uint64_t b) {
    uint64_t s = a + b;
    return s + (s < b);
}

/* Folds an accumulator to the 16-bit ones' complement sum (memory order). */
static inline uint16_t vfp_csum__fold(uint64_t s) {
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    return (uint16_t)s;
}

/* Adds len bytes at buf to acc. buf must sit at an even offset of the checksummed
 * region; an odd tail is padded with a zero byte. */
uint64_t vfp_csum__partial(const void *buf, size_t len, uint64_t acc);

/* The 20-byte (IHL 5) case of vfp_csum__partial, unrolled for the per-packet paths. */
static inline uint64_t vfp_csum__partial20(const uint8_t *p, uint64_t acc) {
    /* Five 32-bit words summed in 64 bits cannot carry out, so no end-around carry is
     * needed until the fold: plain adds the CPU can run in parallel. */
    uint32_t w0, w1, w2, w3, w4;
    memcpy(&w0, p, 4);
    memcpy(&w1, p + 4, 4);
    memcpy(&w2, p + 8, 4);
    memcpy(&w3, p + 12, 4);
    memcpy(&w4, p + 16, 4);
    uint64_t s = (uint64_t)w0 + w1 + w2 + w3 + w4;
    return vfp_csum__add64(acc, s);
}

/* RFC 1624 eq. 3: checksum HC with one 16-bit word changed from WAS to NOW,
 * HC' = ~(~HC + ~WAS + NOW); all three as the wire's big-endian values read as numbers. */
static inline uint16_t vfp_csum__update16(uint16_t hc, uint16_t was, uint16_t now) {
    uint32_t s = (uint16_t)~hc;
    s += (uint16_t)~was;
    s += now;
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    return (uint16_t)~s;
}

/* Finishes the TCP or UDP checksum of the Ethernet frame F (LEN bytes) that a sender
 * left for the device (Linux's CHECKSUM_PARTIAL: the field holds the pseudo-header sum,
 * folded, not complemented), as the device would: the sum over the L4 header and payload
 * as they stand, complemented, written back (a UDP 0 as 0xFFFF). Up to two VLAN tags,
 * IPv4 (not a fragment) or IPv6 (TCP or UDP the next header). 1 when done; 0 for a frame
 * it cannot finish, which is left as it is. */
int vfp_csum__finish_l4(uint8_t *f, uint32_t len);

/* 1 when the IPv4 header of hl bytes (checksum field included) verifies. */
static inline int vfp_csum__ipv4_ok(const uint8_t *hdr, unsigned hl) {
    uint64_t s = hl == 20 ? vfp_csum__partial20(hdr, 0) : vfp_csum__partial(hdr, hl, 0);
    return vfp_csum__fold(s) == 0xffff;
}

#ifdef __cplusplus
}
#endif
#endif
