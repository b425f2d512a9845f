/* Injectable time for the agent's state machine, so tests can drive it without sleeping. */
#ifndef BAL_CLOCK_H
#define BAL_CLOCK_H

#include <stdint.h>

typedef struct bal_clock {
    int64_t (*wall_s)(void *opaque);       /* seconds since the epoch, comparable to last-update */
    int64_t (*monotonic_ms)(void *opaque); /* for backoffs and timeouts */
    void *opaque;
} bal_clock_t;

/* CLOCK_REALTIME / CLOCK_MONOTONIC. Never NULL; not to be freed. */
const bal_clock_t *bal_clock_system(void);

/* clock's readings: its wall_s and monotonic_ms, called with its opaque. */
int64_t bal_clock_wall_s(const bal_clock_t *clock);
int64_t bal_clock_monotonic_ms(const bal_clock_t *clock);

#endif
