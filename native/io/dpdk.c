/* The DPDK backend (dpdk.h): EAL start-up, device probe/configure and the burst
 * functions. A received mbuf's vfp_pkt lives in the mbuf's private area, so the
 * descriptor costs no allocation and tx finds the mbuf again through pkt->opaque. */
/* DPDK's headers need its baseline ISA (pkg-config says -march=corei7); setting it here
 * keeps it to this file instead of the whole addon target. */
#pragma GCC target("arch=corei7")
#include "io/dpdk.h"

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define PRIV_SIZE RTE_ALIGN_CEIL(sizeof(vfp_pkt), RTE_MBUF_PRIV_ALIGN)
/* Flags that describe how the mbuf's buffer is attached, not offloads: keep them. */
#define CTRL_FLAGS (RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT)

typedef struct dpdk_port {
    vfp_port port;
    uint16_t port_id;
    uint8_t hotplugged;    /* this port probed the device, so close detaches it */
    uint8_t fast_free;     /* MBUF_FAST_FREE on: only own-pool mbufs go out zero-copy */
    uint8_t promisc_set;   /* this port switched promiscuous mode on: it switches it off */
    struct rte_mempool *pool;
    uint32_t copy_room;    /* bytes a copy into one of our mbufs can hold */
    uint32_t n_mbufs;
    uint16_t rx_desc, tx_desc; /* per queue, as the device adjusted them */
    uint64_t offloads;     /* enum vfp_dpdk_offload bits enabled */
    uint64_t rx_multiseg, tx_too_big, tx_nombuf;
    char bus[8];
    char name[RTE_DEV_NAME_MAX_LEN];
} dpdk_port;

static const struct vfp_port_ops dpdk_ops;

/* Control-path state: EAL arguments, which ethdevs vfp ports hold, and pools whose
 * mbufs may still sit in another open port's tx ring. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_eal;          /* 0 not started, 1 started, -errno failed */
static char *g_eal_args;   /* the arguments it started with, '\n'-joined */
static uint8_t g_used[RTE_MAX_ETHPORTS];
static unsigned g_open;
static unsigned g_pool_seq;
typedef struct zombie { struct rte_mempool *mp; struct zombie *next; } zombie;
static zombie *g_zombies;

/* The PACKET_FANOUT group DPDK's af_packet PMD (net_af_packet, eth_af_packet) puts its
 * sockets in: (pid ^ the interface's index) & 0xffff, from the devargs' iface= (0 when
 * NAME is no af_packet vdev or the interface is unknown; also for a group that is 0). */
static unsigned af_packet_fanout_id(const char *name, const char *args) {
    if (strncmp(name, "net_af_packet", 13) && strncmp(name, "eth_af_packet", 13)) return 0;
    const char *k = args ? strstr(args, "iface=") : NULL;
    if (!k) return 0;
    char ifname[IF_NAMESIZE] = { 0 };
    size_t n = strcspn(k + 6, ",");
    if (n == 0 || n >= sizeof ifname) return 0;
    memcpy(ifname, k + 6, n);
    unsigned idx = if_nametoindex(ifname);
    return idx ? (unsigned)(((unsigned)getpid() ^ idx) & 0xffffu) : 0;
}

static char *join_args(int argc, const char *const *argv) {
    size_t n = 1;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n), *w = s;
    if (!s) return NULL;
    for (int i = 0; i < argc; i++) w += sprintf(w, "%s\n", argv[i]);
    *w = 0;
    return s;
}

int vfp_dpdk__init(int argc, const char *const *argv, char *err, size_t errlen) {
    if (argc < 0 || (argc && !argv)) return -EINVAL;
    char *joined = join_args(argc, argv);
    if (!joined) return -ENOMEM;
    pthread_mutex_lock(&g_lock);
    int rc;
    if (g_eal == 1) {
        rc = strcmp(joined, g_eal_args) ? -EALREADY : 0;
        if (rc) snprintf(err, errlen, "the DPDK EAL already runs in this process with other arguments; "
                                      "it starts once per process: pass the same arguments or restart");
        free(joined);
        goto out;
    }
    if (g_eal < 0) {
        rc = g_eal;
        snprintf(err, errlen, "rte_eal_init already failed in this process (%s); DPDK cannot retry it: "
                              "fix the cause and restart the process", strerror(-rc));
        free(joined);
        goto out;
    }
    /* EAL keeps pointers into argv and permutes it, so it gets copies that live on. */
    char **av = calloc((size_t)argc + 2, sizeof *av);
    if (!av) { free(joined); rc = -ENOMEM; goto out; }
    av[0] = strdup("vfplane");
    for (int i = 0; i < argc; i++) av[i + 1] = strdup(argv[i]);
    cpu_set_t saved;
    int have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
    int r = rte_eal_init(argc + 1, av);
    if (r < 0) {
        rc = -(rte_errno ? rte_errno : EINVAL);
        g_eal = rc;
        snprintf(err, errlen, "rte_eal_init failed: %s (the EAL's log above says which argument or "
                              "resource; usual fixes: hugepages mounted and reserved, a --file-prefix no "
                              "other process uses, root)", rte_strerror(-rc));
        free(joined);
        goto out;
    }
    /* EAL pinned this thread to the main lcore's CPU; threads created later would inherit
     * that, which a Node main thread must not impose on libuv's pool. */
    if (have_saved) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    g_eal = 1;
    g_eal_args = joined;
    rc = 0;
out:
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int vfp_dpdk__initialized(void) { return g_eal == 1; }

int vfp_dpdk__thread_register(void) {
    if (g_eal != 1) return -ENODEV;
    if (rte_lcore_id() != LCORE_ID_ANY) return 0;
    if (rte_thread_register() < 0) return -(rte_errno ? rte_errno : ENOSPC);
    return 0;
}

void vfp_dpdk__thread_unregister(void) {
    if (g_eal != 1) return;
    /* EAL lcores (the main one included) are not "registered": leave them alone. */
    unsigned id = rte_lcore_id();
    if (id != LCORE_ID_ANY && rte_eal_lcore_role(id) == ROLE_NON_EAL) rte_thread_unregister();
}

void vfp_dpdk_opts__defaults(vfp_dpdk_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_queues = 1;
    o->mbuf_cache = 256;
    o->mbuf_data_size = RTE_MBUF_DEFAULT_BUF_SIZE;
    o->rx_desc = 1024;
    o->tx_desc = 1024;
    o->socket = -1;
    o->promiscuous = 1;
}

static const struct { uint64_t vfp, rte; } offload_map[] = {
    { VFP_DPDK_TX_IPV4_CKSUM, RTE_ETH_TX_OFFLOAD_IPV4_CKSUM },
    { VFP_DPDK_TX_UDP_CKSUM, RTE_ETH_TX_OFFLOAD_UDP_CKSUM },
    { VFP_DPDK_TX_OUTER_IPV4_CKSUM, RTE_ETH_TX_OFFLOAD_OUTER_IPV4_CKSUM },
    { VFP_DPDK_TX_OUTER_UDP_CKSUM, RTE_ETH_TX_OFFLOAD_OUTER_UDP_CKSUM },
    { VFP_DPDK_TX_VXLAN_TNL_TSO, RTE_ETH_TX_OFFLOAD_VXLAN_TNL_TSO },
    { VFP_DPDK_TX_MBUF_FAST_FREE, RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE },
};

/* "0000:3b:02.1" or "3b:02.1" (a PCI address) versus a vdev name. */
static int is_pci(const char *name) {
    unsigned dom, bus, dev, fn;
    char tail;
    return sscanf(name, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) == 4 ||
           sscanf(name, "%x:%x.%x%c", &bus, &dev, &fn, &tail) == 3;
}

/* Frees pools of closed ports once no port is open whose tx ring could hold their mbufs. */
static void reap_pools(void) {
    if (g_open) return;
    while (g_zombies) {
        zombie *z = g_zombies;
        g_zombies = z->next;
        rte_mempool_free(z->mp);
        free(z);
    }
}

static void port_teardown(dpdk_port *d, int started, int configured) {
    /* A vdev on a kernel netdev (net_af_packet) sets IFF_PROMISC on it, which outlives the
     * port: give the netdev back as it was. */
    if (d->promisc_set) rte_eth_promiscuous_disable(d->port_id);
    if (started) rte_eth_dev_stop(d->port_id);
    if (configured || started) rte_eth_dev_close(d->port_id);
    if (d->hotplugged) rte_eal_hotplug_remove(d->bus, d->name);
    if (d->pool) {
        zombie *z = malloc(sizeof *z);
        if (z) {
            z->mp = d->pool;
            z->next = g_zombies;
            g_zombies = z;
        } else if (!g_open) {
            rte_mempool_free(d->pool);
        } /* else: leak one pool rather than free one a live port may still touch */
    }
    reap_pools();
    free(d);
}

/* A pool's mbufs are received only on its own port (its rx queues take from it), so a
 * descriptor's mbuf, owner and port never change: set them once, not per packet. */
static void init_priv(struct rte_mempool *mp, void *arg, void *obj, unsigned idx) {
    (void)mp, (void)idx;
    dpdk_port *d = (dpdk_port *)arg;
    struct rte_mbuf *m = (struct rte_mbuf *)obj;
    vfp_pkt *v = (vfp_pkt *)rte_mbuf_to_priv(m);
    memset(v, 0, sizeof *v);
    v->opaque = m;
    v->owner = &d->port;
    v->port = d->port_id;
}

int vfp_dpdk_port__create(vfp_port **out, const vfp_dpdk_opts *o, char *err, size_t errlen) {
    if (!out || !o || !o->dev || !o->dev[0]) {
        snprintf(err, errlen, "vfp_dpdk_port__create: dev is required (a PCI address or vdev devargs)");
        return -EINVAL;
    }
    if (g_eal != 1) {
        snprintf(err, errlen, "DPDK port %s: the EAL is not started; call vfp_dpdk__init first", o->dev);
        return -ENODEV;
    }
    uint16_t nq = o->n_queues ? o->n_queues : 1;
    uint16_t rxd = o->rx_desc ? o->rx_desc : 1024, txd = o->tx_desc ? o->tx_desc : 1024;
    uint32_t cache = o->mbuf_cache ? o->mbuf_cache : 256;
    uint32_t room = o->mbuf_data_size ? o->mbuf_data_size : RTE_MBUF_DEFAULT_BUF_SIZE;
    if (cache > RTE_MEMPOOL_CACHE_MAX_SIZE || room <= RTE_PKTMBUF_HEADROOM || room > UINT16_MAX) {
        if (cache > RTE_MEMPOOL_CACHE_MAX_SIZE)
            snprintf(err, errlen, "DPDK port %s: mbuf_cache %u is over the mempool's maximum, %u", o->dev, cache,
                     RTE_MEMPOOL_CACHE_MAX_SIZE);
        else
            snprintf(err, errlen, "DPDK port %s: dpdk.mbufDataSize %u leaves no room for a frame after the %u-byte "
                     "headroom; give 0 (the default, %u) or more, at most 65535", o->dev, room, RTE_PKTMBUF_HEADROOM,
                     RTE_MBUF_DEFAULT_BUF_SIZE);
        return -EINVAL;
    }
    dpdk_port *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->port.ops = &dpdk_ops;
    d->port.n_queues = nq;

    /* devargs "name,k=v,..." → bus + name + args for rte_eal_hotplug_add. */
    const char *comma = strchr(o->dev, ',');
    size_t nlen = comma ? (size_t)(comma - o->dev) : strlen(o->dev);
    if (nlen >= sizeof d->name) {
        snprintf(err, errlen, "DPDK port: device name in \"%s\" is too long", o->dev);
        free(d);
        return -EINVAL;
    }
    memcpy(d->name, o->dev, nlen);
    int pci = is_pci(d->name);
    if (pci && strchr(d->name, ':') == strrchr(d->name, ':') && nlen + 5 < sizeof d->name) {
        memmove(d->name + 5, d->name, nlen + 1); /* add the PCI domain */
        memcpy(d->name, "0000:", 5);
    }
    snprintf(d->bus, sizeof d->bus, "%s", pci ? "pci" : "vdev");

    pthread_mutex_lock(&g_lock);
    int rc = 0, configured = 0, started = 0;
    uint16_t pid;
    if (rte_eth_dev_get_port_by_name(d->name, &pid) != 0) {
        int r = rte_eal_hotplug_add(d->bus, d->name, comma ? comma + 1 : "");
        if (r < 0) {
            rc = r;
            char why[320];
            unsigned fanout = af_packet_fanout_id(d->name, comma);
            if (fanout)
                /* DPDK's af_packet PMD puts its sockets in PACKET_FANOUT group (pid ^ ifindex):
                 * another socket of the host's in that group makes the probe fail. */
                snprintf(why, sizeof why,
                         "net_af_packet joins PACKET_FANOUT group %u, its pid xor the interface's index: if the EAL's "
                         "log says it could not set PACKET_FANOUT, another socket on the host has that group, and a "
                         "start under another pid gets another",
                         fanout);
            else
                snprintf(why, sizeof why, "%s",
                         pci ? "is it bound to vfio-pci and not excluded by --no-pci / -b?"
                             : "is the driver name right (net_null0, net_af_packet0,iface=X) and the interface in this netns?");
            snprintf(err, errlen, "DPDK port %s: probing %s device %s failed: %s (%s)", o->dev, d->bus, d->name,
                     rte_strerror(-r), why);
            goto fail;
        }
        d->hotplugged = 1;
        if (rte_eth_dev_get_port_by_name(d->name, &pid) != 0) {
            rc = -ENODEV;
            snprintf(err, errlen, "DPDK port %s: device %s probed but no ethdev of that name appeared", o->dev, d->name);
            goto fail;
        }
    }
    if (g_used[pid]) {
        rc = -EBUSY;
        d->hotplugged = 0; /* another vfp port owns it; do not detach it from under that port */
        snprintf(err, errlen, "DPDK port %s: ethdev %u is already open as a vfp port; close that one first", o->dev, pid);
        goto fail;
    }
    d->port_id = pid;

    struct rte_eth_dev_info di;
    if ((rc = rte_eth_dev_info_get(pid, &di)) != 0) {
        snprintf(err, errlen, "DPDK port %s: rte_eth_dev_info_get: %s", o->dev, rte_strerror(-rc));
        goto fail;
    }
    const uint16_t can = di.max_rx_queues < di.max_tx_queues ? di.max_rx_queues : di.max_tx_queues;
    if (nq > can && o->fewer_queues_ok && can >= 1) {
        nq = can; /* the data plane hands the other workers' frames to these queues' owners */
        d->port.n_queues = nq;
    } else if (nq > can) {
        rc = -EINVAL;
        snprintf(err, errlen, "DPDK port %s: %u queue pairs asked (one per worker), driver %s has at most %u rx / %u tx; "
                 "run fewer workers, or give the device more queues (net_af_packet: qpairs=N, net_af_xdp: queue_count=N)",
                 o->dev, nq, di.driver_name, di.max_rx_queues, di.max_tx_queues);
        goto fail;
    }
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    for (size_t i = 0; i < sizeof offload_map / sizeof offload_map[0]; i++) {
        if ((o->want_tx_offloads & offload_map[i].vfp) && (di.tx_offload_capa & offload_map[i].rte)) {
            conf.txmode.offloads |= offload_map[i].rte;
            d->offloads |= offload_map[i].vfp;
        }
    }
    d->fast_free = !!(d->offloads & VFP_DPDK_TX_MBUF_FAST_FREE);
    /* What encap may leave to this device: the outer packet described as plain IP/UDP
     * (l2_len, l3_len), so the non-tunnel checksum offloads are the ones that apply. */
    d->port.tx_ol = (uint8_t)(((d->offloads & VFP_DPDK_TX_IPV4_CKSUM) ? VFP_TXO_IP_CSUM : 0) |
                              ((d->offloads & VFP_DPDK_TX_UDP_CKSUM) ? VFP_TXO_UDP_CSUM : 0));
    if (nq > 1 && (di.flow_type_rss_offloads & RTE_ETH_RSS_IP)) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = di.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
    }
    if ((rc = rte_eth_dev_configure(pid, nq, nq, &conf)) != 0) {
        snprintf(err, errlen, "DPDK port %s: rte_eth_dev_configure(%u queues, tx offloads 0x%llx): %s", o->dev, nq,
                 (unsigned long long)conf.txmode.offloads, rte_strerror(-rc));
        goto fail;
    }
    configured = 1;
    if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rxd, &txd)) != 0) {
        snprintf(err, errlen, "DPDK port %s: rte_eth_dev_adjust_nb_rx_tx_desc: %s", o->dev, rte_strerror(-rc));
        goto fail;
    }

    int dev_socket = rte_eth_dev_socket_id(pid);
    int socket = o->socket >= 0 ? o->socket : (dev_socket >= 0 ? dev_socket : (int)SOCKET_ID_ANY);
    /* Each queue needs its rx ring full, a peer's tx ring full of our mbufs, the bursts in
     * flight and its lcore's cache (up to 1.5 × cache); 2^k − 1 suits the pool's ring. */
    uint32_t n = o->n_mbufs;
    uint32_t sized;
    {
        uint64_t want = (uint64_t)nq * ((uint64_t)rxd + txd + 2u * VFP_MAX_BURST + cache * 3u / 2u);
        uint64_t p2 = 1;
        while (p2 - 1 < want) p2 <<= 1;
        sized = (uint32_t)(p2 - 1);
    }
    if (!n) n = sized;
    /* Fewer mbufs than the rings hold: the rx rings cannot be filled, or a full tx ring
     * leaves none to receive into (the port stalls). */
    const uint64_t rings = (uint64_t)nq * ((uint64_t)rxd + txd);
    if (n < rings) {
        rc = -EINVAL;
        snprintf(err, errlen, "DPDK port %s: dpdk.mbufs %u is fewer than its rings hold (%u queue(s) × (%u rx + %u tx "
                 "descriptors) = %llu); give 0 (sized from them: %u), at least %llu, or fewer rxDesc/txDesc",
                 o->dev, n, nq, rxd, txd, (unsigned long long)rings, sized, (unsigned long long)rings);
        goto fail;
    }
    while (cache && (uint64_t)cache * 3u / 2u > n) cache /= 2; /* the mempool refuses caches > n / 1.5 */
    char pname[RTE_MEMPOOL_NAMESIZE];
    snprintf(pname, sizeof pname, "vfp%u_%u", pid, g_pool_seq++);
    d->pool = rte_pktmbuf_pool_create(pname, n, cache, (uint16_t)PRIV_SIZE, (uint16_t)room, socket);
    if (!d->pool) {
        rc = -(rte_errno ? rte_errno : ENOMEM);
        /* The EAL's memory: hugepages, or with --no-huge its -m (512 MiB by default). */
        snprintf(err, errlen, "DPDK port %s: mbuf pool of %u × %u bytes on socket %d: %s; the EAL's memory "
                 "(dpdk.hugepages; without hugepages, its -m) does not hold it: give more, or fewer dpdk.mbufs or "
                 "a smaller dpdk.mbufDataSize", o->dev, n, room, socket, rte_strerror(-rc));
        goto fail;
    }
    rte_mempool_obj_iter(d->pool, init_priv, d);
    d->n_mbufs = n;
    d->rx_desc = rxd, d->tx_desc = txd;
    d->copy_room = room - RTE_PKTMBUF_HEADROOM;

    struct rte_eth_txconf txc = di.default_txconf;
    txc.offloads = conf.txmode.offloads;
    for (uint16_t q = 0; q < nq; q++) {
        if ((rc = rte_eth_rx_queue_setup(pid, q, rxd, (unsigned)socket, NULL, d->pool)) != 0) {
            /* A device receives a frame into one mbuf (no scatter): too small a data room is
             * refused here, by some with -EINVAL from min_rx_bufsize, by others (net_af_packet:
             * "N bytes will not fit in mbuf") with -ENOMEM. Say which setting it is. */
            char why[320] = "";
            if (di.min_rx_bufsize && room < di.min_rx_bufsize + RTE_PKTMBUF_HEADROOM)
                snprintf(why, sizeof why, "; driver %s takes mbufs of %u bytes of data room at least (%u for the frame + "
                         "%u of headroom), and dpdk.mbufDataSize is %u: give 0 (the default, %u) or %u or more",
                         di.driver_name, di.min_rx_bufsize + RTE_PKTMBUF_HEADROOM, di.min_rx_bufsize, RTE_PKTMBUF_HEADROOM,
                         room, RTE_MBUF_DEFAULT_BUF_SIZE, di.min_rx_bufsize + RTE_PKTMBUF_HEADROOM);
            else if (room < RTE_MBUF_DEFAULT_BUF_SIZE)
                snprintf(why, sizeof why, "; if the device's log above says a frame will not fit in an mbuf, the data "
                         "room is too small: dpdk.mbufDataSize %u leaves %u bytes for a frame after the %u-byte "
                         "headroom; give 0 (the default, %u) or more",
                         room, room - RTE_PKTMBUF_HEADROOM, RTE_PKTMBUF_HEADROOM, RTE_MBUF_DEFAULT_BUF_SIZE);
            snprintf(err, errlen, "DPDK port %s: rx queue %u (%u descriptors): %s%s", o->dev, q, rxd, rte_strerror(-rc), why);
            goto fail;
        }
        if ((rc = rte_eth_tx_queue_setup(pid, q, txd, (unsigned)socket, &txc)) != 0) {
            snprintf(err, errlen, "DPDK port %s: tx queue %u (%u descriptors): %s", o->dev, q, txd, rte_strerror(-rc));
            goto fail;
        }
    }
    if ((rc = rte_eth_dev_start(pid)) != 0) {
        snprintf(err, errlen, "DPDK port %s: rte_eth_dev_start: %s", o->dev, rte_strerror(-rc));
        goto fail;
    }
    started = 1;
    /* Some vdevs have no promiscuous mode (net_null says -ENOTSUP): not an error. */
    if (o->promiscuous && rte_eth_promiscuous_get(pid) == 0 && rte_eth_promiscuous_enable(pid) == 0) d->promisc_set = 1;
    g_used[pid] = 1;
    g_open++;
    pthread_mutex_unlock(&g_lock);
    *out = &d->port;
    return 0;
fail:
    if (rc > 0) rc = -rc;
    if (!rc) rc = -EIO;
    port_teardown(d, started, configured);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int vfp_dpdk_port__is(const vfp_port *p) { return p && p->ops == &dpdk_ops; }

void vfp_dpdk_port__info(const vfp_port *p, vfp_dpdk_info *out) {
    const dpdk_port *d = (const dpdk_port *)p;
    memset(out, 0, sizeof *out);
    if (!vfp_dpdk_port__is(p)) return;
    out->port_id = d->port_id;
    struct rte_eth_dev_info di;
    out->max_frame = d->copy_room;
    if (rte_eth_dev_info_get(d->port_id, &di) == 0) {
        if (di.driver_name) snprintf(out->driver, sizeof out->driver, "%s", di.driver_name);
        if (di.max_rx_pktlen && di.max_rx_pktlen < out->max_frame) out->max_frame = di.max_rx_pktlen;
    }
    out->tx_offloads = d->offloads;
    out->n_mbufs = d->n_mbufs;
    out->rx_desc = d->rx_desc, out->tx_desc = d->tx_desc;
    if (d->pool)
        out->pool_bytes = (uint64_t)d->pool->populated_size *
                          (d->pool->header_size + d->pool->elt_size + d->pool->trailer_size);
    rte_eth_dev_get_mtu(d->port_id, &out->mtu);
    struct rte_ether_addr mac;
    if (rte_eth_macaddr_get(d->port_id, &mac) == 0) memcpy(out->mac, mac.addr_bytes, 6);
    out->rx_multiseg = d->rx_multiseg;
    out->tx_too_big = d->tx_too_big;
    out->tx_nombuf = d->tx_nombuf;
    struct rte_eth_stats st;
    if (rte_eth_stats_get(d->port_id, &st) == 0) {
        out->rx_nombuf = st.rx_nombuf;
        out->rx_missed = st.imissed;
        out->rx_errors = st.ierrors;
        out->tx_errors = st.oerrors;
    }
}

static uint16_t dpdk_rx(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    dpdk_port *d = (dpdk_port *)p;
    struct rte_mbuf *ms[VFP_MAX_BURST];
    if (n > VFP_MAX_BURST) n = VFP_MAX_BURST;
    uint16_t got = rte_eth_rx_burst(d->port_id, q, ms, n), k = 0;
    uint64_t bytes = 0;
    /* Every caller reads the frame's first bytes next (MACs, then the flow hash): start
     * those loads for the whole burst now, so they overlap instead of stalling one by one. */
    for (uint16_t i = 0; i < got; i++) rte_prefetch0(rte_pktmbuf_mtod(ms[i], void *));
    for (uint16_t i = 0; i < got; i++) {
        struct rte_mbuf *m = ms[i];
        /* Chained mbufs only come with scatter rx, which is never enabled; a driver
         * that chains anyway gets its frame dropped and counted, not half-seen. */
        if (VFP_UNLIKELY(m->nb_segs != 1)) {
            rte_pktmbuf_free(m);
            d->rx_multiseg++;
            continue;
        }
        /* opaque, owner and port were set once at pool creation (init_priv). */
        vfp_pkt *v = (vfp_pkt *)rte_mbuf_to_priv(m);
        v->data = rte_pktmbuf_mtod(m, uint8_t *);
        v->len = m->data_len;
        v->headroom = rte_pktmbuf_headroom(m);
        v->tx_ol = 0;
        bytes += m->data_len;
        pkts[k++] = v;
    }
    p->rx_pkts += k;
    p->rx_bytes += bytes;
    return k;
}

/* Whether pkt's mbuf can go out of d as is. */
static inline int zero_copy(const dpdk_port *d, const vfp_pkt *pkt) {
    if (pkt->owner->ops != &dpdk_ops) return 0;
    return !d->fast_free || ((struct rte_mbuf *)pkt->opaque)->pool == d->pool;
}

/* The checksums encap left for the device (pk->tx_ol), as the mbuf API asks for them:
 * the outer header described as a plain IPv4/IPv6 + UDP packet, the UDP field already
 * seeded with the pseudo-header sum (what rte_eth_tx_prepare would write for i40e/ice;
 * mlx5 ignores it). Only bits this port enabled reach here: vfp_port__tx_burst finished
 * the others in software. */
static inline void tx_offload(struct rte_mbuf *m, const vfp_pkt *pk) {
    uint64_t f = (pk->tx_ol & VFP_TXO_IPV6) ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4;
    if (pk->tx_ol & VFP_TXO_IP_CSUM) f |= RTE_MBUF_F_TX_IP_CKSUM;
    if (pk->tx_ol & VFP_TXO_UDP_CSUM) f |= RTE_MBUF_F_TX_UDP_CKSUM;
    m->ol_flags |= f;
    m->l2_len = pk->l2_len;
    m->l3_len = pk->l3_len;
    m->l4_len = 8;
}

/* The engine moved data within the buffer (encap into headroom, decap past headers):
 * carry that back into the mbuf, with the tx offloads encap asked for. Rx flags must not
 * be read as tx requests. */
static inline struct rte_mbuf *sync_mbuf(const vfp_pkt *pk) {
    struct rte_mbuf *m = (struct rte_mbuf *)pk->opaque;
    m->data_off = (uint16_t)(pk->data - (uint8_t *)m->buf_addr);
    m->data_len = (uint16_t)pk->len;
    m->pkt_len = pk->len;
    m->ol_flags &= CTRL_FLAGS;
    if (VFP_UNLIKELY(pk->tx_ol)) tx_offload(m, pk);
    return m;
}

static uint16_t tx_done(dpdk_port *d, uint16_t q, struct rte_mbuf **tx, uint16_t cnt, uint64_t bytes) {
    uint16_t sent = rte_eth_tx_burst(d->port_id, q, tx, cnt);
    for (uint16_t i = sent; i < cnt; i++) bytes -= tx[i]->pkt_len;
    d->port.tx_pkts += sent;
    d->port.tx_bytes += bytes;
    d->port.tx_full += (uint64_t)(cnt - sent);
    return sent;
}

/* A burst with packets that need a copy: foreign buffers (afpacket, afxdp, memory), or
 * another pool's mbufs under MBUF_FAST_FREE. tx[0..done) are already synced zero-copy. */
static uint16_t tx_mixed(dpdk_port *d, uint16_t q, vfp_pkt **pkts, uint16_t n, struct rte_mbuf **tx,
                         uint16_t done) {
    uint8_t zc[VFP_MAX_BURST];
    struct rte_mbuf *copies[VFP_MAX_BURST];
    vfp_pkt *drop[VFP_MAX_BURST];
    for (uint16_t i = done; i < n; i++) zc[i] = (uint8_t)zero_copy(d, pkts[i]);
    /* Foreign packets too big for one of our mbufs cannot be sent: leading ones are
     * taken and dropped (counted); one after a sendable packet ends the burst, so what
     * the port takes stays a prefix. */
    uint16_t base = 0, nd = 0;
    if (!done)
        while (base < n && !zc[base] && pkts[base]->len > d->copy_room) drop[nd++] = pkts[base++];
    uint16_t end = base > done ? base : done, nf = 0;
    for (; end < n; end++) {
        if (zc[end]) continue;
        if (pkts[end]->len > d->copy_room) break;
        nf++;
    }
    if (nf && rte_pktmbuf_alloc_bulk(d->pool, copies, nf) != 0) {
        /* Pool dry: send only the zero-copy run before the first foreign packet. */
        uint16_t e = base > done ? base : done;
        while (e < end && zc[e]) e++;
        d->tx_nombuf += (uint64_t)(end - e);
        end = e;
        nf = 0;
    }
    uint16_t cnt = (uint16_t)(end - base), fi = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < cnt; i++) {
        vfp_pkt *pk = pkts[base + i];
        bytes += pk->len;
        if (base + i < done) continue;
        if (zc[base + i]) {
            tx[i] = sync_mbuf(pk);
        } else {
            struct rte_mbuf *m = copies[fi++];
            memcpy(rte_pktmbuf_mtod(m, uint8_t *), pk->data, pk->len);
            m->data_len = (uint16_t)pk->len;
            m->pkt_len = pk->len;
            if (VFP_UNLIKELY(pk->tx_ol)) tx_offload(m, pk);
            tx[i] = m;
        }
    }
    uint16_t sent = cnt ? tx_done(d, q, tx, cnt, bytes) : 0;
    /* Foreign originals of what went out go home now; copies of what did not are ours
     * to free, and their originals stay with the caller. */
    vfp_pkt *rel[VFP_MAX_BURST];
    struct rte_mbuf *unsent[VFP_MAX_BURST];
    uint16_t nr = 0, nu = 0;
    for (uint16_t i = 0; i < cnt; i++) {
        if (zc[base + i] || base + i < done) continue;
        if (i < sent) rel[nr++] = pkts[base + i];
        else unsent[nu++] = tx[i];
    }
    if (nu) rte_pktmbuf_free_bulk(unsent, nu);
    if (nd) {
        d->tx_too_big += nd;
        vfp_pkt__free_burst(drop, nd);
    }
    if (nr) vfp_pkt__free_burst(rel, nr);
    return (uint16_t)(base + sent);
}

static uint16_t dpdk_tx(vfp_port *p, uint16_t q, vfp_pkt **pkts, uint16_t n) {
    dpdk_port *d = (dpdk_port *)p;
    struct rte_mbuf *tx[VFP_MAX_BURST];
    if (n > VFP_MAX_BURST) n = VFP_MAX_BURST;
    uint64_t bytes = 0;
    uint16_t i = 0;
    /* The common case, mbufs of DPDK ports only, in one pass. */
    for (; i < n; i++) {
        const vfp_pkt *pk = pkts[i];
        if (VFP_UNLIKELY(pk->owner->ops != &dpdk_ops)) break;
        if (VFP_UNLIKELY(d->fast_free) && ((struct rte_mbuf *)pk->opaque)->pool != d->pool) break;
        tx[i] = sync_mbuf(pk);
        bytes += pk->len;
    }
    if (VFP_LIKELY(i == n)) return tx_done(d, q, tx, n, bytes);
    return tx_mixed(d, q, pkts, n, tx, i);
}

static void dpdk_free(vfp_port *p, vfp_pkt **pkts, uint16_t n) {
    struct rte_mbuf *ms[VFP_MAX_BURST];
    (void)p;
    while (n) {
        uint16_t k = n > VFP_MAX_BURST ? VFP_MAX_BURST : n;
        for (uint16_t i = 0; i < k; i++) ms[i] = (struct rte_mbuf *)pkts[i]->opaque;
        rte_pktmbuf_free_bulk(ms, k);
        pkts += k;
        n = (uint16_t)(n - k);
    }
}

static void dpdk_close(vfp_port *p) {
    dpdk_port *d = (dpdk_port *)p;
    pthread_mutex_lock(&g_lock);
    g_used[d->port_id] = 0;
    g_open--;
    port_teardown(d, 1, 1);
    pthread_mutex_unlock(&g_lock);
}

static int dpdk_rx_fd(vfp_port *p, uint16_t q) { (void)p, (void)q; return -1; }

static const struct vfp_port_ops dpdk_ops = {
    .name = "dpdk",
    .rx_burst = dpdk_rx,
    .tx_burst = dpdk_tx,
    .free_burst = dpdk_free,
    .close = dpdk_close,
    .rx_fd = dpdk_rx_fd,
    .flush = NULL, /* tx_burst hands every packet to the driver; nothing is buffered */
};
