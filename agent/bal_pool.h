/* A bounded pool of worker threads: jobs are queued without limit but at most `threads` of them run at
 * once, which is how the agent keeps no more commands in flight than libvirtd serves per connection.
 * One owner submits a batch of jobs and then waits for the batch; jobs must not submit jobs. */
#ifndef BAL_POOL_H
#define BAL_POOL_H

#include "agent/bal_error.h"

typedef struct bal_pool bal_pool_t;

typedef void (*bal_pool_fn)(void *arg);

/* Starts `threads` workers (at least 1). Returns 0 and a new pool in *out, or a negative errno with
 * err filled (-EINVAL for 0 threads, -ENOMEM, -EAGAIN when no thread could be started). If only some
 * threads could be started, the pool runs with those. */
int bal_pool_new(unsigned threads, bal_pool_t **out, bal_error_t *err);

/* Queues fn(arg) to run on a worker. Never fails: when the job cannot be queued (out of memory), it runs
 * in the calling thread before this returns. Does not block otherwise. */
void bal_pool_submit(bal_pool_t *pool, bal_pool_fn fn, void *arg);

/* Blocks until every job submitted so far has returned. */
void bal_pool_wait(bal_pool_t *pool);

/* How many workers run. */
unsigned bal_pool_threads(const bal_pool_t *pool);

/* Runs the jobs still queued, joins the workers and frees the pool. NULL is a no-op. */
void bal_pool_free(bal_pool_t *pool);

#endif
