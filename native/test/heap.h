/* The malloc-backed vfp_alloc the command-line tools (vfp-io-fwd and its adapters,
 * vfp-pktgen) hand to ports: zeroed, aligned, freed with free(). The addon has its own
 * (hugepage-advised) allocator; these tools need nothing more. */
#ifndef VFP_TEST_HEAP_H
#define VFP_TEST_HEAP_H

#include <stdlib.h>
#include <string.h>

#include "core/vfp.h"

static inline void *vfp_heap__alloc(void *ctx, size_t size, size_t align) {
    (void)ctx;
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size)) return NULL;
    memset(p, 0, size);
    return p;
}

static inline void vfp_heap__free(void *ctx, void *p, size_t size) {
    (void)ctx, (void)size;
    free(p);
}

#define VFP_HEAP_ALLOC { vfp_heap__alloc, vfp_heap__free, NULL }

#endif
