/* VXLAN encapsulation and decapsulation of bursts (RFC 7348), as specified in
 * docs/vxlan-engine.md. Both burst functions work in place, never allocate and never
 * make a syscall; every packet leaves with pkt->reason set. */
#ifndef VFP_CORE_VXLAN_H
#define VFP_CORE_VXLAN_H

#include "vfp.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vfp_df { VFP_DF_UNSET = 0, VFP_DF_SET = 1, VFP_DF_INHERIT = 2 };

#define VFP_TOS_INHERIT 0x100

typedef struct vfp_tunnel_cfg {
    uint8_t src_mac[6], dst_mac[6];
    int32_t vlan;          /* -1: untagged; else 0..4094 */
    uint8_t vlan_pcp;      /* 0..7 */
    vfp_addr local, remote;/* same family */
    uint16_t dst_port;     /* 4789 */
    uint16_t src_port_min, src_port_max;
    uint8_t ttl;           /* 1..255 */
    uint16_t tos;          /* 0..255 or VFP_TOS_INHERIT */
    uint8_t df;            /* enum vfp_df */
    uint8_t udp_csum;      /* IPv4: compute the UDP checksum (IPv6 always does) */
    uint16_t mtu;          /* 0: no limit */
    uint16_t ip_id;        /* first IPv4 identification */
    uint8_t tx_offload;    /* VFP_TXO_IP_CSUM | VFP_TXO_UDP_CSUM the uplink finishes; 0: none */
} vfp_tunnel_cfg;

/* A tunnel: the outer header template, built once, patched per packet. */
typedef struct vfp_tunnel {
    uint8_t tmpl[80];      /* Ethernet [VLAN] IP UDP VXLAN, VNI 0 */
    uint16_t hdr_len;      /* bytes of tmpl in use */
    uint16_t l3_off;       /* offset of the IP header in tmpl */
    uint8_t family;
    uint8_t df;
    uint8_t udp_csum;
    uint16_t tos;
    uint16_t mtu;
    uint16_t ip_id;        /* next IPv4 identification */
    uint16_t src_port_min;
    uint32_t src_port_span;/* max - min + 1 */
    uint32_t csum_base;    /* precomputed partial sums, implementation-defined */
    uint32_t pseudo_base;
    uint32_t phdr_base;    /* pseudo-header addresses and protocol only (offload seed) */
    uint8_t tx_ol;         /* what encap leaves for the device: VFP_TXO_* of tx_offload
                              that apply (no IP checksum on IPv6, no UDP one when off) */
} vfp_tunnel;

/* The longest inner frame (L2 header included) the tunnel's MTU lets encap take: the
 * outer IP packet is the inner frame plus 36 bytes (IPv4, UDP, VXLAN; 56 over IPv6).
 * UINT32_MAX without an MTU; 0 when the MTU cannot carry even the headers. */
static inline uint32_t vfp_tunnel__max_inner(const vfp_tunnel *t) {
    const uint32_t over = t->family == 4 ? 36 : 56;
    return !t->mtu ? UINT32_MAX : t->mtu > over ? t->mtu - over : 0;
}

/* Builds the template. -EINVAL when the configuration is inconsistent. */
int vfp_tunnel__init(vfp_tunnel *t, const vfp_tunnel_cfg *cfg);

/* Encapsulates pkts[0..n) for tunnel t with the given VNI. Returns how many were
 * encapsulated (reason VFP_OK); the others keep their bytes and carry a reason.
 * Updates st (encap_* and drops[]) when st is not NULL. */
uint16_t vfp_vxlan__encap_burst(vfp_tunnel *t, uint32_t vni, vfp_pkt **pkts, uint16_t n,
                                vfp_stats *st);

/* A set of VNIs, in caller memory: open addressing over a power-of-two table. */
typedef struct vfp_vni_set {
    uint32_t *slots;       /* VNI + 1 per slot, 0 = empty */
    uint32_t mask;         /* slots - 1 */
    uint32_t count;
} vfp_vni_set;

size_t vfp_vni_set__mem_size(uint32_t capacity);
void vfp_vni_set__init(vfp_vni_set *s, void *mem, uint32_t capacity);
int vfp_vni_set__add(vfp_vni_set *s, uint32_t vni);      /* -ENOSPC, -EINVAL */
int vfp_vni_set__contains(const vfp_vni_set *s, uint32_t vni);

struct vfp_fdb;

#define VFP_DECAP_MAX_LOCALS 8

typedef struct vfp_decap_ctx {
    uint16_t dst_port;
    uint8_t verify_udp_csum;
    uint8_t drop_inner_vlan;
    const vfp_vni_set *vnis;       /* NULL: every VNI */
    uint8_t n_locals;              /* 0: any destination */
    vfp_addr locals[VFP_DECAP_MAX_LOCALS];
    struct vfp_fdb *learn_fdb;     /* NULL: no learning */
    uint32_t now;                  /* seconds, stamped on learned entries */
} vfp_decap_ctx;

/* Decapsulates pkts[0..n) in place. Returns how many were decapsulated; those carry
 * vni, vtep_family and vtep, which a dropped packet gets as zeros. With learn_fdb,
 * learns inner source MAC → outer source. */
uint16_t vfp_vxlan__decap_burst(const vfp_decap_ctx *c, vfp_pkt **pkts, uint16_t n,
                                vfp_stats *st);

#ifdef __cplusplus
}
#endif
#endif
