/* One manual clock that the device model and the agent share, for in-process fakes that play QEMU:
 * the devices run on vclock (vb_device_new(&c->vclock.clock, ...)), the agent reads the same time
 * through clock (bal_agent_config_t.clock = &c->clock). Moved only by the test, with
 * vb_manual_clock_advance(&c->vclock, ns), so nothing sleeps. */
#ifndef TT_MANUAL_CLOCK_H
#define TT_MANUAL_CLOCK_H

#include <stdint.h>

#include "agent/bal_clock.h"
#include "virtio/vb_clock.h"

typedef struct tt_manual_clock {
    vb_manual_clock_t vclock;
    bal_clock_t clock; /* wall seconds and monotonic milliseconds of vclock */
} tt_manual_clock_t;

/* Starts c at wall_base_s seconds of wall time and 0 of monotonic time. c must stay where it is while
 * either clock is in use: both point into it. */
void tt_manual_clock_init(tt_manual_clock_t *c, int64_t wall_base_s);

#endif
