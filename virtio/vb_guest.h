/* A model of the guest's virtio_balloon driver: when asked for stats, it decides whether and when it
 * answers, and fills the stats buffer from a simulated workload. It knows nothing of the device. */
#ifndef VB_GUEST_H
#define VB_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/vb_stats.h"

typedef enum vb_guest_profile {
    VB_GUEST_LINUX,  /* answers every request at once with every stat; values follow a workload */
    VB_GUEST_LEGACY, /* answers at once with only the six stats of QEMU's stats document */
    VB_GUEST_NONE,   /* no driver: never answers, last-update stays 0 */
    VB_GUEST_STUCK,  /* answers the first 3 requests, then never again */
    VB_GUEST_EMPTY,  /* answers at once with an empty buffer */
    VB_GUEST_SLOW,   /* answers 2 s after each request */
    VB_GUEST_OOM,    /* as linux, and its OOM killer kills a process every 5 s (stat-oom-kills) */
} vb_guest_profile_t;

typedef struct vb_guest vb_guest_t;

/* Parse a profile name ("linux", "legacy", "none", "stuck", "empty", "slow", "oom"). Returns 0, or
 * -EINVAL. */
int vb_guest_profile_parse(const char *name, vb_guest_profile_t *out);
const char *vb_guest_profile_name(vb_guest_profile_t profile);

/* A guest with memory_bytes of RAM; seed makes its workload reproducible. Returns NULL on ENOMEM.
 * The caller owns it; vb_guest_free(NULL) is a no-op. */
vb_guest_t *vb_guest_new(vb_guest_profile_t profile, uint64_t memory_bytes, uint64_t seed);
void vb_guest_free(vb_guest_t *guest);

/* The device has put a stats request in the queue at now_ns (monotonic). Returns the delay in ns after
 * which the guest answers, or -1 if it will never answer this request. */
int64_t vb_guest_on_request(vb_guest_t *guest, int64_t now_ns);

/* The guest answers: writes its wire-format entries into buf (at most cap bytes) and returns the length,
 * 0 for an empty buffer. Advances the simulated workload to now_ns. */
size_t vb_guest_fill_buffer(vb_guest_t *guest, int64_t now_ns, uint8_t *buf, size_t cap);

/* The guest was rebooted (system_reset): its driver starts over (a stuck guest answers again). */
void vb_guest_reset(vb_guest_t *guest);

#endif
