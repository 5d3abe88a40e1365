/* vfp-io-fwd's AF_XDP adapter: parses "mode=native|skb|auto,copy=copy|zerocopy|auto,
 * frames=N,frame=2048|4096,ring=N,headroom=N,queue=N,wakeup=0|1" and opens one port.
 * It prints what create chose (and any notice) as one JSON line on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/afxdp.h"
#include "test/heap.h"

static const vfp_alloc heap = VFP_HEAP_ALLOC;

static int parse_u32(const char *v, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || n > 0xffffffffUL) return -1;
    *out = (uint32_t)n;
    return 0;
}

static int parse_opts(const char *opts, vfp_afxdp_opts *o, char *err, size_t errlen) {
    if (!opts || !*opts) return 0;
    char buf[512];
    if (strlen(opts) >= sizeof buf) {
        snprintf(err, errlen, "afxdp opts too long");
        return -EINVAL;
    }
    strcpy(buf, opts);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (!v) goto bad;
        *v++ = 0;
        uint32_t n = 0;
        if (!strcmp(kv, "mode")) {
            if (!strcmp(v, "native")) o->mode = VFP_XDP_MODE_NATIVE;
            else if (!strcmp(v, "skb")) o->mode = VFP_XDP_MODE_SKB;
            else if (!strcmp(v, "auto")) o->mode = VFP_XDP_MODE_AUTO;
            else goto bad;
        } else if (!strcmp(kv, "copy")) {
            if (!strcmp(v, "copy")) o->copy = VFP_XDP_COPY;
            else if (!strcmp(v, "zerocopy")) o->copy = VFP_XDP_ZEROCOPY;
            else if (!strcmp(v, "auto")) o->copy = VFP_XDP_COPY_AUTO;
            else goto bad;
        } else if (parse_u32(v, &n)) {
            goto bad;
        } else if (!strcmp(kv, "frames")) o->n_frames = n;
        else if (!strcmp(kv, "frame")) o->frame_size = n;
        else if (!strcmp(kv, "ring")) o->ring_size = n;
        else if (!strcmp(kv, "headroom")) o->headroom = n;
        else if (!strcmp(kv, "queue")) o->queue_id = n;
        else if (!strcmp(kv, "wakeup")) o->need_wakeup = n != 0;
        else goto bad;
        continue;
    bad:
        snprintf(err, errlen, "afxdp option \"%s%s%s\" is not one of mode=native|skb|auto, copy=copy|zerocopy|auto, "
                 "frames=N, frame=2048|4096, ring=N, headroom=N, queue=N, wakeup=0|1", kv, v ? "=" : "", v ? v : "");
        return -EINVAL;
    }
    return 0;
}

int vfp_io_fwd__open_afxdp(const char *netns, const char *name, const char *opts, vfp_port **out, char *err,
                           size_t errlen) {
    vfp_afxdp_opts o;
    vfp_afxdp_opts__defaults(&o);
    o.ifname = name;
    o.netns = netns;
    int rc = parse_opts(opts, &o, err, errlen);
    if (rc) return rc;
    rc = vfp_afxdp_port__create(out, &o, &heap, err, errlen);
    if (rc) return rc;
    vfp_afxdp_info in;
    vfp_afxdp_port__info(*out, &in);
    /* The notice is free text: keep it JSON-safe by dropping quotes and backslashes. */
    for (char *c = err; *c; c++)
        if (*c == '"' || *c == '\\') *c = '\'';
    fprintf(stderr,
            "{\"afxdp\":{\"ifname\":\"%s\",\"mode\":\"%s\",\"zerocopy\":%s,\"need_wakeup\":%s,\"prog\":\"%s\","
            "\"headroom\":%u,\"max_frame\":%u,\"notice\":\"%s\"}}\n",
            name, vfp_xdp_mode__name(in.mode), in.zerocopy ? "true" : "false", in.need_wakeup ? "true" : "false",
            in.prog, in.headroom, in.max_frame, err);
    err[0] = 0;
    return 0;
}
