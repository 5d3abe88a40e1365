/* Keys and hashing shared by the engine's tables (the FDB, the data plane's local MAC
 * and VNI tables): a MAC as a 48-bit integer, and a 64-bit mixer with full avalanche. */
#ifndef VFP_CORE_HASHKEY_H
#define VFP_CORE_HASHKEY_H

#include <stdint.h>
#include <string.h>

/* The 6 bytes of a MAC as the low 48 bits of an integer (memory order, no shifts). */
static inline uint64_t vfp_mac48(const uint8_t *m) {
    uint32_t lo;
    uint16_t hi;
    memcpy(&lo, m, 4);
    memcpy(&hi, m + 4, 2);
    return lo | (uint64_t)hi << 32;
}

/* murmur3's 64-bit finaliser: full avalanche, so the two 32-bit halves are close to
 * independent, which cuckoo hashing needs from its two bucket choices. */
static inline uint64_t vfp_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

#endif
