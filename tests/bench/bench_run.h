/* What the bench programs (plugin_host, floor) share around their own work: the common command-line
 * options, and the run of warm-up and measured cycles with its per-cycle lines and medians. */
#ifndef BENCH_RUN_H
#define BENCH_RUN_H

#include <stdbool.h>
#include <stdio.h>

#include "tests/bench/bench_util.h"

typedef struct bench_run_opts {
    unsigned cycles;           /* -k N: measured cycles */
    unsigned warmup;           /* -w N: warm-up cycles before them, not measured */
    unsigned long min_sources; /* -s N: sources (domains) each measured cycle must cover */
} bench_run_opts_t;

#define BENCH_RUN_OPTS_DEFAULT {.cycles = 5, .warmup = 1, .min_sources = 1}

/* getopt over the program's optstring plus "k:w:s:h", taking the common options itself: -k, -w and
 * -s into opts; -h prints usage(stdout) and exits 0; an unknown option or a missing argument prints
 * usage(stderr) and exits 2. Returns the next of the program's own options, or -1 after the last. */
int bench_run_getopt(int argc, char **argv, const char *optstring, bench_run_opts_t *opts,
                     void (*usage)(FILE *to));

/* Runs cycle i (0 for the first warm-up one) and measures it into out. */
typedef void bench_run_cycle_fn(void *arg, unsigned i, bench_cycle_t *out);
/* Whether measured cycle k (1 for the first) did what the program requires; when not, says why on
 * stderr. */
typedef bool bench_run_check_fn(void *arg, unsigned k, const bench_cycle_t *cycle);

/* The floors' check: measured cycle k covered at least min sources (named noun: "domains", "guests")
 * without an error; when not, says so on stderr, as program. */
bool bench_run_require_sources(const char *program, const char *noun, unsigned long min, unsigned k,
                               const bench_cycle_t *cycle);

typedef struct bench_run_result {
    double median_wall_ms, median_cpu_ms, median_sources;
    unsigned failed_cycles; /* measured cycles that check refused */
} bench_run_result_t;

/* Runs opts->warmup warm-up cycles, each printed as "warmup I wall_ms W value_lists L sources S",
 * then opts->cycles (> 0) measured ones, each printed by bench_print_cycle and checked. Returns 0,
 * or -ENOMEM before any cycle ran. */
int bench_run_cycles(const bench_run_opts_t *opts, bench_run_cycle_fn *cycle, bench_run_check_fn *check,
                     void *arg, bench_run_result_t *result);

#endif
