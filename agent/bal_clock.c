#include "config.h"

#include <time.h>

#include "agent/bal_clock.h"

static int64_t system_wall_s(void *opaque)
{
    (void)opaque;
    return (int64_t)time(NULL);
}

static int64_t system_monotonic_ms(void *opaque)
{
    struct timespec ts;

    (void)opaque;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const bal_clock_t system_clock = {
    .wall_s = system_wall_s,
    .monotonic_ms = system_monotonic_ms,
    .opaque = NULL,
};

const bal_clock_t *bal_clock_system(void)
{
    return &system_clock;
}

int64_t bal_clock_wall_s(const bal_clock_t *clock)
{
    return clock->wall_s(clock->opaque);
}

int64_t bal_clock_monotonic_ms(const bal_clock_t *clock)
{
    return clock->monotonic_ms(clock->opaque);
}
