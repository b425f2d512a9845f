/* See tt_time.h. */
#include "config.h"

#include <time.h>

#include "tests/tt_time.h"

int64_t tt_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
