/* The read threads of the bench programs, like collectd's ReadThreads: a fixed set of threads that
 * runs one cycle at a time, each thread taking the next item of the cycle until none is left. */
#ifndef BENCH_POOL_H
#define BENCH_POOL_H

#include <stddef.h>

#include "tests/bench/bench_util.h"

/* Does item i of a cycle; called on a pool thread, on several at once for different items. */
typedef void bench_pool_work_fn(void *arg, size_t i);

typedef struct bench_pool bench_pool_t;

/* Starts n_threads (> 0) threads that wait for a cycle. Returns the pool, or NULL when memory or a
 * thread cannot be had; after a failed thread start the threads already started wait for ever, so
 * the caller must exit at once. */
bench_pool_t *bench_pool_new(unsigned n_threads, bench_pool_work_fn *work, void *arg);

/* Runs one cycle: work(arg, i) for every i below n_items, spread over the threads. Blocks until
 * every item is done. */
void bench_pool_cycle(bench_pool_t *pool, size_t n_items);

/* bench_pool_cycle, timed: its wall time (CLOCK_MONOTONIC) and the process's CPU time (every thread)
 * into out->wall_ms and out->cpu_ms; the rest of out is the caller's. */
void bench_pool_timed_cycle(bench_pool_t *pool, size_t n_items, bench_cycle_t *out);

/* Stops and joins the threads, then frees the pool. Accepts NULL. */
void bench_pool_free(bench_pool_t *pool);

#endif
