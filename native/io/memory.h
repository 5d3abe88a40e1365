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

#define VFP_MEM_SINK_MAX_QUEUES 8

/* A sink with `queues` queues (1..VFP_MEM_SINK_MAX_QUEUES) that also checks the port
 * contract "calls on one queue come from one thread": each queue remembers the first
 * thread that called rx, tx or flush on it, and every call from another thread counts
 * as foreign. -EINVAL, -ENOMEM. */
int vfp_mem_port__create_sink_q(vfp_port **out, uint16_t queues, const vfp_alloc *a);
/* Calls on a queue from a thread other than its first caller, over all queues; 0 for a
 * port that is not a memory sink. */
uint64_t vfp_mem_port__foreign_calls(const vfp_port *p);

#ifdef __cplusplus
}
#endif
#endif
