/* Real elapsed time for tests that wait on other processes (balloon-sim, QEMU, a QMP peer) or bound
 * what they measure: CLOCK_MONOTONIC in milliseconds. Tests of the agent's own timing inject a manual
 * clock instead (tt_manual_clock.h). */
#ifndef TT_TIME_H
#define TT_TIME_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: never goes back, meaningful only as a difference. */
int64_t tt_mono_ms(void);

#endif
