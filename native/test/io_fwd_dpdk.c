/* vfp-io-fwd's DPDK adapter: starts the EAL on the first port (arguments from the
 * eal= option or $VFP_DPDK_EAL), opens a DPDK port per devargs, pins the forwarding
 * thread to the EAL main lcore's CPU like testpmd does, and runs rte_eal_cleanup at exit.
 * opts: "queues=N,mbufs=N,cache=N,rxd=N,txd=N,room=N,offloads=0xBITS,eal=ARGS..." where
 * eal= must come last and takes the rest of the string (EAL args hold commas). */
#pragma GCC target("arch=corei7") /* DPDK's baseline ISA, as in io/dpdk.c */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "io/dpdk.h"

int vfp_io_fwd__open_dpdk(const char *netns, const char *name, const char *opts, vfp_port **out, char *err,
                          size_t errlen);

static void eal_cleanup(void) { rte_eal_cleanup(); }

/* Splits an EAL argument string on spaces into argv (no quoting: EAL args need none). */
static int split_args(char *s, const char **argv, int max) {
    int n = 0;
    for (char *tok = strtok(s, " \t"); tok; tok = strtok(NULL, " \t")) {
        if (n == max) return -E2BIG;
        argv[n++] = tok;
    }
    return n;
}

static int start_eal(const char *netns, const char *eal, char *err, size_t errlen) {
    if (!eal || !*eal) {
        snprintf(err, errlen, "dpdk: no EAL arguments; give --opts \"eal=-l 1 -n 1 --no-pci --file-prefix X "
                              "--huge-dir DIR\" or set VFP_DPDK_EAL");
        return -EINVAL;
    }
    /* The af_packet/af_xdp PMDs open their interface in the process's netns, so the
     * whole process moves there before the EAL starts its threads. */
    if (netns) {
        int fd = open(netns, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
            int e = errno;
            snprintf(err, errlen, "dpdk: entering netns %s: %s", netns, strerror(e));
            if (fd >= 0) close(fd);
            return -e;
        }
        close(fd);
    }
    char *copy = strdup(eal);
    const char *argv[128];
    int argc = copy ? split_args(copy, argv, 128) : -ENOMEM;
    if (argc < 0) {
        snprintf(err, errlen, "dpdk: EAL arguments: %s", strerror(-argc));
        free(copy);
        return argc;
    }
    int rc = vfp_dpdk__init(argc, argv, err, errlen);
    if (rc) return rc; /* copy stays: EAL may hold pointers into it */
    atexit(eal_cleanup);
    /* Forward on the main lcore's CPU, as testpmd's forwarding lcore is pinned. */
    rte_cpuset_t cs = rte_lcore_cpuset(rte_get_main_lcore());
    pthread_setaffinity_np(pthread_self(), sizeof cs, &cs);
    return 0;
}

int vfp_io_fwd__open_dpdk(const char *netns, const char *name, const char *opts, vfp_port **out, char *err,
                          size_t errlen) {
    vfp_dpdk_opts o;
    vfp_dpdk_opts__defaults(&o);
    o.dev = name;
    const char *eal = getenv("VFP_DPDK_EAL");
    if (opts) {
        const char *e = strstr(opts, "eal=");
        if (e && (e == opts || e[-1] == ',')) eal = e + 4;
        size_t klen = e ? (size_t)(e - opts) : strlen(opts);
        char *kv = strndup(opts, klen);
        if (!kv) return -ENOMEM;
        for (char *save = NULL, *t = strtok_r(kv, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *v = strchr(t, '=');
            if (!v) goto bad;
            *v++ = 0;
            unsigned long long x = strtoull(v, NULL, 0);
            if (!strcmp(t, "queues")) o.n_queues = (uint16_t)x;
            else if (!strcmp(t, "mbufs")) o.n_mbufs = (uint32_t)x;
            else if (!strcmp(t, "cache")) o.mbuf_cache = (uint32_t)x;
            else if (!strcmp(t, "rxd")) o.rx_desc = (uint16_t)x;
            else if (!strcmp(t, "txd")) o.tx_desc = (uint16_t)x;
            else if (!strcmp(t, "room")) o.mbuf_data_size = (uint32_t)x;
            else if (!strcmp(t, "offloads")) o.want_tx_offloads = x;
            else if (!strcmp(t, "promisc")) o.promiscuous = (int)x;
            else {
            bad:
                snprintf(err, errlen, "dpdk: unknown option \"%s\" (queues, mbufs, cache, rxd, txd, room, "
                                      "offloads, promisc, eal=... last)", t);
                free(kv);
                return -EINVAL;
            }
        }
        free(kv);
    }
    if (!vfp_dpdk__initialized()) {
        int rc = start_eal(netns, eal, err, errlen);
        if (rc) return rc;
    }
    int rc = vfp_dpdk_port__create(out, &o, err, errlen);
    if (!rc) {
        vfp_dpdk_info in;
        vfp_dpdk_port__info(*out, &in);
        fprintf(stderr, "vfp-io-fwd: dpdk %s: port %u driver %s mbufs %u mtu %u tx offloads 0x%llx\n", name,
                in.port_id, in.driver, in.n_mbufs, in.mtu, (unsigned long long)in.tx_offloads);
    }
    return rc;
}
