/* vfp-core-guard: runs the engine on frames that end exactly at a page followed by an
 * inaccessible one, so a read past a frame's last byte faults instead of passing unseen.
 * For every length 0..LEN of a valid frame's first bytes it encapsulates (the inner
 * IPv4/UDP frame), decapsulates (its VXLAN frame) and hashes (the inner frame), with the
 * hardware CRC when there is one and with the table, and prints one line per case:
 * "op n reason hash". A fault kills it with SIGSEGV: the test sees the signal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/flowhash.h"
#include "core/vxlan.h"

static uint8_t *page_end;

/* The frame's first n bytes, placed so that its last byte is the page's last. */
static uint8_t *at_end(const uint8_t *frame, uint32_t n) {
    uint8_t *p = page_end - n;
    memcpy(p, frame, n);
    return p;
}

int main(void) {
    const long pg = sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + pg, (size_t)pg, PROT_NONE) != 0) {
        perror("vfp-core-guard: mmap/mprotect");
        return 2;
    }
    page_end = m + pg;

    /* Inner: IPv4/UDP, 64 bytes, header checksum valid (the engine does not check it). */
    uint8_t inner[64] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
                         0x45, 0, 0, 50, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                         0x30, 0x39, 0x13, 0x89, 0, 30};
    vfp_tunnel_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vlan = -1;
    cfg.local.family = cfg.remote.family = 4;
    memcpy(cfg.local.bytes, (uint8_t[]){192, 0, 2, 1}, 4);
    memcpy(cfg.remote.bytes, (uint8_t[]){192, 0, 2, 2}, 4);
    memcpy(cfg.src_mac, (uint8_t[]){2, 0xaa, 0, 0, 0, 1}, 6);
    memcpy(cfg.dst_mac, (uint8_t[]){2, 0xbb, 0, 0, 0, 2}, 6);
    cfg.dst_port = 4789;
    cfg.src_port_min = 49152;
    cfg.src_port_max = 65535;
    cfg.ttl = 64;
    vfp_tunnel t;
    if (vfp_tunnel__init(&t, &cfg) != 0) return 2;

    /* Outer: the inner frame encapsulated once (114 bytes), in a buffer of its own. */
    static uint8_t obuf[256];
    vfp_pkt op;
    memset(&op, 0, sizeof op);
    op.data = obuf + 128;
    op.len = sizeof inner;
    op.headroom = 128;
    memcpy(op.data, inner, sizeof inner);
    vfp_pkt *opp = &op;
    if (vfp_vxlan__encap_burst(&t, 100, &opp, 1, NULL) != 1) return 2;
    uint8_t outer[256];
    const uint32_t outer_len = op.len;
    memcpy(outer, op.data, outer_len);

    vfp_decap_ctx dc[2];
    memset(dc, 0, sizeof dc);
    dc[0].dst_port = dc[1].dst_port = 4789;
    dc[1].n_locals = 1; /* the fast path's local check too */
    dc[1].locals[0] = cfg.remote;

    const int impls[2] = {VFP_CRC_HW, VFP_CRC_SW};
    for (int k = 0; k < 2; k++) {
        if (vfp_crc32c__select(impls[k]) != 0) continue; /* no SSE4.2: the table only */
        const char *crc = impls[k] == VFP_CRC_HW ? "hw" : "sw";
        for (uint32_t n = 0; n <= sizeof inner; n++) {
            vfp_pkt p;
            memset(&p, 0, sizeof p);
            p.data = at_end(inner, n);
            p.len = n;
            p.headroom = (uint32_t)(p.data - m);
            vfp_pkt *pp = &p;
            /* Encap writes only in front of the frame: the headroom is on the page. */
            vfp_vxlan__encap_burst(&t, 100, &pp, 1, NULL);
            printf("encap %s %u %s\n", crc, n, vfp_reason__name(p.reason));
            uint16_t meta = 0;
            const uint32_t h = n >= 14 ? vfp_flowhash__frame(at_end(inner, n), n, &meta) : 0;
            printf("hash %s %u %08x %04x\n", crc, n, h, meta);
        }
        for (uint32_t n = 0; n <= outer_len; n++) {
            for (int d = 0; d < 2; d++) {
                vfp_pkt p;
                memset(&p, 0, sizeof p);
                p.data = at_end(outer, n);
                p.len = n;
                vfp_pkt *pp = &p;
                vfp_vxlan__decap_burst(&dc[d], &pp, 1, NULL);
                printf("decap %s %u %d %s\n", crc, n, d, vfp_reason__name(p.reason));
            }
        }
    }
    vfp_crc32c__select(VFP_CRC_AUTO);
    return 0;
}
