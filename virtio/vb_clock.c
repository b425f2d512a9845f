#include "config.h"

#include <time.h>

#include "virtio/vb_clock.h"

static int64_t system_monotonic_ns(void *opaque)
{
    struct timespec ts;

    (void)opaque;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * VB_NS_PER_S + ts.tv_nsec;
}

static int64_t system_wall_s(void *opaque)
{
    (void)opaque;
    return (int64_t)time(NULL);
}

static const vb_clock_t system_clock = {
    .monotonic_ns = system_monotonic_ns,
    .wall_s = system_wall_s,
    .opaque = NULL,
};

const vb_clock_t *vb_clock_system(void)
{
    return &system_clock;
}

static int64_t manual_monotonic_ns(void *opaque)
{
    const vb_manual_clock_t *mc = opaque;
    return mc->now_ns;
}

static int64_t manual_wall_s(void *opaque)
{
    const vb_manual_clock_t *mc = opaque;
    return mc->wall_base_s + mc->now_ns / VB_NS_PER_S;
}

void vb_manual_clock_init(vb_manual_clock_t *mc, int64_t wall_base_s)
{
    mc->clock.monotonic_ns = manual_monotonic_ns;
    mc->clock.wall_s = manual_wall_s;
    mc->clock.opaque = mc;
    mc->now_ns = 0;
    mc->wall_base_s = wall_base_s;
}

void vb_manual_clock_advance(vb_manual_clock_t *mc, int64_t ns)
{
    mc->now_ns += ns;
}
