/* Injectable time for the device model: host monotonic time for timers, host wall-clock seconds for
 * last-update. Tests use a manual clock and advance it; balloon-sim uses the system clock. */
#ifndef VB_CLOCK_H
#define VB_CLOCK_H

#include <stdint.h>

typedef struct vb_clock {
    int64_t (*monotonic_ns)(void *opaque); /* never goes back */
    int64_t (*wall_s)(void *opaque);       /* seconds since the epoch */
    void *opaque;
} vb_clock_t;

/* The process-wide system clock (CLOCK_MONOTONIC, CLOCK_REALTIME). Never NULL; not to be freed. */
const vb_clock_t *vb_clock_system(void);

/* A manual clock for tests. Embed one, call vb_manual_clock_init, pass &mc->clock. */
typedef struct vb_manual_clock {
    vb_clock_t clock;
    int64_t now_ns;
    int64_t wall_base_s; /* wall_s() = wall_base_s + now_ns / 1e9 */
} vb_manual_clock_t;

void vb_manual_clock_init(vb_manual_clock_t *mc, int64_t wall_base_s);
void vb_manual_clock_advance(vb_manual_clock_t *mc, int64_t ns);

#define VB_NS_PER_S INT64_C(1000000000)
#define VB_NS_PER_MS INT64_C(1000000)

#endif
