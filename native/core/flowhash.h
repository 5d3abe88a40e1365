/* CRC-32C and the inner-flow hash that picks the outer UDP source port
 * (docs/vxlan-engine.md §3.3–3.4). The CRC uses the SSE4.2 crc32 instruction when the
 * CPU has it (chosen once at load time) and a slicing-by-8 table otherwise. */
#ifndef VFP_CORE_FLOWHASH_H
#define VFP_CORE_FLOWHASH_H

#include "vfp.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vfp_crc_impl { VFP_CRC_AUTO = 0, VFP_CRC_HW = 1, VFP_CRC_SW = 2 };

/* Standard CRC-32C (reflected, init and final XOR 0xFFFFFFFF) of len bytes with the
 * given implementation (VFP_CRC_HW falls back to the table without SSE4.2). */
uint32_t vfp_crc32c__with(int impl, const void *buf, size_t len);
/* 1 when the CPU has SSE4.2 (the crc32 instruction). */
int vfp_crc32c__have_hw(void);
/* Picks the implementation the packet path uses (tests use it to cover the table path).
 * -ENOTSUP for VFP_CRC_HW without SSE4.2, -EINVAL for an unknown value. Not
 * thread-safe: call it while no burst is running. */
int vfp_crc32c__select(int impl);
/* The implementation in use: VFP_CRC_HW or VFP_CRC_SW. */
int vfp_crc32c__selected(void);

/* What encap needs from the inner parse besides the hash: bits 0–7 the inner TOS /
 * traffic class (0 when not IP), VFP_FLOW_DF when DF-inherit would set DF. */
#define VFP_FLOW_DF 0x100u
#define VFP_FLOW_IP 0x200u

/* The flow hash (CRC-32C of the §3.4 flow key) of a frame of n ≥ 14 bytes; *meta
 * gets the bits above. */
uint32_t vfp_flowhash__frame(const uint8_t *frame, uint32_t n, uint16_t *meta);

/* The same for pkts[0..n): one call per burst, so the implementation is chosen once
 * per burst rather than once per packet. Packets shorter than 14 bytes get 0, 0. */
void vfp_flowhash__burst(vfp_pkt *const *pkts, uint16_t n, uint32_t *hash, uint16_t *meta);

/* The UDP source port for a flow hash (§3.3): min + floor(h * span / 2^32). */
static inline uint16_t vfp_flowhash__port(uint32_t h, uint16_t min, uint32_t span) {
    return (uint16_t)(min + (uint32_t)(((uint64_t)h * span) >> 32));
}

#ifdef __cplusplus
}
#endif
#endif
