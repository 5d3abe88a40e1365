/* vfp-io-fwd: a two-port L2 forwarder over any I/O backend, for tests and smoke checks.
 * It moves every frame received on port A out of port B and back, through the port
 * interface only (rx_burst → tx_burst → free the rest), until SIGINT/SIGTERM or
 * --seconds, then prints one JSON line of counters. Backends plug in at open_port(). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/port.h"
#include "io/memory.h"
/* Each backend's adapter (native/test/io_fwd_<backend>.c) parses opts ("k=v,k=v") and
 * opens one port; `netns` is a netns file path or NULL. */
typedef int open_fn(const char *netns, const char *name, const char *opts, vfp_port **out,
                    char *err, size_t errlen);
#ifdef VFP_HAVE_AFPACKET
open_fn vfp_io_fwd__open_afpacket;
unsigned long long vfp_io_fwd__kernel_drops_afpacket(vfp_port *p);
#endif
#ifdef VFP_HAVE_AFXDP
open_fn vfp_io_fwd__open_afxdp;
#endif
#ifdef VFP_HAVE_DPDK
open_fn vfp_io_fwd__open_dpdk;
#endif

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }


typedef struct args {
    const char *backend, *a, *b, *netns, *opts;
    double seconds;
    unsigned burst;
} args;

static void usage(void) {
    fprintf(stderr,
            "usage: vfp-io-fwd --backend afpacket|afxdp|dpdk --a PORT --b PORT [--netns PATH]\n"
            "                  [--seconds S] [--burst N] [--opts KEY=VAL,...]\n"
            "PORT is an interface name (afpacket, afxdp) or a DPDK devargs string (dpdk).\n"
            "dpdk --opts: queues=N,mbufs=N,cache=N,rxd=N,txd=N,room=N,offloads=0xBITS,promisc=0|1,eal=ARGS\n"
            "  eal= comes last and takes the rest of the string: space-separated EAL arguments\n"
            "  (else $VFP_DPDK_EAL), e.g. eal=-l 1 -n 1 --no-pci --huge-dir /x --file-prefix y\n");
}

/* Opens one port; a backend reads backend-specific settings from a->opts. */
static int open_port(const args *a, const char *name, vfp_port **out, char *err, size_t errlen) {
#ifdef VFP_HAVE_AFPACKET
    if (!strcmp(a->backend, "afpacket")) return vfp_io_fwd__open_afpacket(a->netns, name, a->opts, out, err, errlen);
#endif
#ifdef VFP_HAVE_AFXDP
    if (!strcmp(a->backend, "afxdp")) return vfp_io_fwd__open_afxdp(a->netns, name, a->opts, out, err, errlen);
#endif
#ifdef VFP_HAVE_DPDK
    if (!strcmp(a->backend, "dpdk")) return vfp_io_fwd__open_dpdk(a->netns, name, a->opts, out, err, errlen);
#endif
    (void)name, (void)out;
    snprintf(err, errlen, "backend %s is not built into vfp-io-fwd (see build/Release/features.json)", a->backend);
    return -ENOTSUP;
}

/* Frames the kernel dropped before the port saw them (a full receive ring), where the
 * backend can tell: AF_PACKET. 0 elsewhere. */
static unsigned long long kernel_drops(const args *a, vfp_port *p) {
#ifdef VFP_HAVE_AFPACKET
    if (!strcmp(a->backend, "afpacket")) return vfp_io_fwd__kernel_drops_afpacket(p);
#endif
    (void)a, (void)p;
    return 0;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Forwards one burst src → dst; returns packets received. */
static uint16_t pass(vfp_port *src, vfp_port *dst, unsigned burst, uint64_t *fwd, uint64_t *dropped) {
    vfp_pkt *pk[VFP_MAX_BURST];
    uint16_t n = vfp_port__rx_burst(src, 0, pk, (uint16_t)burst);
    if (!n) return 0;
    uint16_t sent = vfp_port__tx_burst(dst, 0, pk, n);
    *fwd += sent;
    *dropped += (uint64_t)(n - sent);
    vfp_pkt__free_burst(pk + sent, (uint16_t)(n - sent));
    return n;
}

int main(int argc, char **argv) {
    args a = { .burst = 32, .seconds = 0 };
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { usage(); return 2; }
        if (!strcmp(k, "--backend")) a.backend = v;
        else if (!strcmp(k, "--a")) a.a = v;
        else if (!strcmp(k, "--b")) a.b = v;
        else if (!strcmp(k, "--netns")) a.netns = v;
        else if (!strcmp(k, "--opts")) a.opts = v;
        else if (!strcmp(k, "--seconds")) a.seconds = atof(v);
        else if (!strcmp(k, "--burst")) a.burst = (unsigned)atoi(v);
        else { usage(); return 2; }
        i++;
    }
    if (!a.backend || !a.a || !a.b || a.burst < 1 || a.burst > VFP_MAX_BURST) { usage(); return 2; }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    char err[512] = "";
    vfp_port *pa = NULL, *pb = NULL;
    int rc = open_port(&a, a.a, &pa, err, sizeof err);
    if (!rc) rc = open_port(&a, a.b, &pb, err, sizeof err);
    if (rc) {
        fprintf(stderr, "vfp-io-fwd: %s\n", err[0] ? err : strerror(-rc));
        if (pa) vfp_port__close(pa);
        return 1;
    }
    fprintf(stdout, "{\"ready\":true}\n");
    fflush(stdout);
    uint64_t t0 = now_ns(), ab = 0, ba = 0, drop = 0;
    uint64_t deadline = a.seconds > 0 ? t0 + (uint64_t)(a.seconds * 1e9) : 0;
    unsigned idle = 0;
    while (!stop && (!deadline || now_ns() < deadline)) {
        uint16_t got = pass(pa, pb, a.burst, &ab, &drop);
        got = (uint16_t)(got + pass(pb, pa, a.burst, &ba, &drop));
        if (got) { idle = 0; continue; }
        vfp_port__flush(pa, 0);
        vfp_port__flush(pb, 0);
        /* Sleep in poll() once the ports have been quiet for a while, so a test on a
         * 2-core machine leaves the kernel a core; DPDK ports have no fd and spin. */
        if (++idle > 256) {
            struct pollfd fds[2] = { { vfp_port__rx_fd(pa, 0), POLLIN, 0 }, { vfp_port__rx_fd(pb, 0), POLLIN, 0 } };
            if (fds[0].fd >= 0 || fds[1].fd >= 0) poll(fds, 2, 10);
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("{\"seconds\":%.3f,\"mpps\":%.3f,\"a_to_b\":%llu,\"b_to_a\":%llu,\"dropped\":%llu,"
           "\"a\":{\"rx\":%llu,\"tx\":%llu,\"tx_full\":%llu,\"rx_nombuf\":%llu,\"kernel_drops\":%llu},"
           "\"b\":{\"rx\":%llu,\"tx\":%llu,\"tx_full\":%llu,\"rx_nombuf\":%llu,\"kernel_drops\":%llu}}\n",
           secs, secs > 0 ? (double)(ab + ba) / secs / 1e6 : 0.0, /* both directions */
           (unsigned long long)ab, (unsigned long long)ba, (unsigned long long)drop,
           (unsigned long long)pa->rx_pkts, (unsigned long long)pa->tx_pkts,
           (unsigned long long)pa->tx_full, (unsigned long long)pa->rx_nombuf, kernel_drops(&a, pa),
           (unsigned long long)pb->rx_pkts, (unsigned long long)pb->tx_pkts,
           (unsigned long long)pb->tx_full, (unsigned long long)pb->rx_nombuf, kernel_drops(&a, pb));
    vfp_port__close(pa);
    vfp_port__close(pb);
    return 0;
}
