/* Measuring helpers shared by the plugin host and the floor program: clocks, memory, medians, and the
 * one-line-per-cycle report that tests/bench/run.sh reads. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in ns. */
int64_t bench_wall_ns(void);
/* CPU time of the whole process (every thread) in ns: CLOCK_PROCESS_CPUTIME_ID. */
int64_t bench_cpu_ns(void);

/* The process's peak resident set (VmHWM) and current one (VmRSS) in KiB, from /proc/self/status;
 * -1 when unknown. */
long bench_peak_rss_kib(void);
long bench_rss_kib(void);

/* Median of n values (n > 0); sorts the array in place. */
double bench_median(double *values, size_t n);

/* One measured cycle. */
typedef struct bench_cycle {
    double wall_ms;
    double cpu_ms;
    uint64_t value_lists;   /* plugin_dispatch_values calls (floor: replies) */
    uint64_t values;        /* values in them */
    uint64_t sources;       /* distinct host/plugin_instance pairs (floor: domains read) */
    uint64_t notifications;
    uint64_t errors;        /* refused dispatches, failed commands */
} bench_cycle_t;

/* Prints "cycle I wall_ms W cpu_ms C value_lists L values V sources S notifications N errors E". */
void bench_print_cycle(unsigned index, const bench_cycle_t *cycle);

#endif
