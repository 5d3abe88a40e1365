/* The memory backend: a generator port that replays a fixed set of frames forever and
 * a sink port that counts what it is sent. It measures the engine without any I/O: the
 * frames stay in cache, so figures from it are an upper bound for a real port. */
#ifndef VFP_IO_MEMORY_H
#define VFP_IO_MEMORY_H

#include "io/port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vfp_mem_frame {
    const uint8_t *bytes;
    uint32_t len;
} vfp_mem_frame;

/* A generator that cycles through `frames` (copied in), each packet with `headroom`
 * bytes before it; `ring` packets exist at once (≥ the largest burst), rounded up to a
 * whole number of passes over `frames` so the sequence never breaks at the wrap. A
 * packet stays valid until `ring` more have been received. -EINVAL, -ENOMEM. */
int vfp_mem_port__create_gen(vfp_port **out, const vfp_mem_frame *frames, uint32_t n_frames,
                             uint32_t ring, uint32_t headroom, const vfp_alloc *a);
/* A sink: counts packets and bytes and releases them. */
int vfp_mem_port__create_sink(vfp_port **out, const vfp_alloc *a);

#ifdef __cplusplus
}
#endif
#endif
