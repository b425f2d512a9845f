/* A pool of worker threads: jobs are queued without limit; `threads` workers start with the pool, and
 * when a job is queued while every worker is busy, another is started, up to `max_threads`. The agent
 * sizes it so that jobs still running from an earlier read cycle (a stalled peer's) never take the
 * workers a new cycle needs. Workers are never ended before the pool is freed, except one detached
 * (bal_pool_detach): it leaves the pool, which may start another in its place, and ends when its job
 * returns, even after the pool was freed. Jobs must not submit jobs. */
#ifndef BAL_POOL_H
#define BAL_POOL_H

#include <pthread.h>

#include "agent/bal_error.h"

typedef struct bal_pool bal_pool_t;

typedef void (*bal_pool_fn)(void *arg);

/* Starts `threads` workers (at least 1) and allows up to max_threads (less than threads: threads).
 * Returns 0 and a new pool in *out, or a negative errno with err filled (-EINVAL for 0 threads,
 * -ENOMEM, -EAGAIN when no thread could be started). If only some threads could be started, the pool
 * runs with those. */
int bal_pool_new(unsigned threads, unsigned max_threads, bal_pool_t **out, bal_error_t *err);

/* Queues fn(arg) to run on a worker, starting one if none is free and the maximum allows. Never fails:
 * when the job cannot be queued (out of memory), it runs in the calling thread before this returns.
 * Does not block otherwise. */
void bal_pool_submit(bal_pool_t *pool, bal_pool_fn fn, void *arg);

/* Blocks until every job submitted so far has returned. */
void bal_pool_wait(bal_pool_t *pool);

/* The worker that is thread, running a job that is stuck (a call that did not return in time), leaves
 * the pool: it no longer counts among its workers nor among the jobs bal_pool_wait waits for, and
 * bal_pool_free does not join it. When its job returns, the thread ends (detached) without touching
 * anything but what keeps the pool's memory alive until then. A thread that is not one of the pool's
 * workers is ignored. */
void bal_pool_detach(bal_pool_t *pool, pthread_t thread);

/* How many workers run now. */
unsigned bal_pool_threads(bal_pool_t *pool);

/* Runs the jobs still queued, joins the workers and frees the pool (its memory once the last detached
 * worker has ended). NULL is a no-op. */
void bal_pool_free(bal_pool_t *pool);

#endif
