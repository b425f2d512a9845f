#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "agent/bal_pool.h"

typedef struct job {
    bal_pool_fn fn;
    void *arg;
    struct job *next;
} job_t;

struct bal_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;  /* a job was queued, or stopping */
    pthread_cond_t idle;  /* pending dropped to 0 */
    job_t *head, *tail;
    size_t queued;        /* in the list */
    size_t pending;       /* queued + running */
    unsigned waiting;     /* workers waiting for a job */
    bool stopping;
    pthread_t *workers;   /* max_workers; a detached worker is taken out */
    unsigned n_workers, max_workers;
    unsigned refs;        /* the owner's, and one per detached worker that has not ended */
};

static void pool_destroy(bal_pool_t *pool)
{
    pthread_cond_destroy(&pool->idle);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

/* Lets go of a reference, under the lock, which this releases; the last frees the pool. */
static void pool_unref_unlock(bal_pool_t *pool)
{
    bool last = --pool->refs == 0;

    pthread_mutex_unlock(&pool->lock);
    if (last)
        pool_destroy(pool);
}

/* thread's place among the workers, or -1. Under the lock. */
static int worker_index(const bal_pool_t *pool, pthread_t thread)
{
    for (unsigned i = 0; i < pool->n_workers; i++)
        if (pthread_equal(pool->workers[i], thread))
            return (int)i;
    return -1;
}

static void *worker_main(void *opaque)
{
    bal_pool_t *pool = opaque;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        job_t *job;

        pool->waiting++;
        while (pool->head == NULL && !pool->stopping)
            pthread_cond_wait(&pool->work, &pool->lock);
        pool->waiting--;
        if (pool->head == NULL)
            break; /* stopping, and nothing left to run */
        job = pool->head;
        pool->head = job->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pool->queued--;
        pthread_mutex_unlock(&pool->lock);

        job->fn(job->arg);
        free(job);

        pthread_mutex_lock(&pool->lock);
        if (worker_index(pool, pthread_self()) < 0) {
            /* detached while in the job, which bal_pool_detach no longer counted */
            pool_unref_unlock(pool);
            return NULL;
        }
        if (--pool->pending == 0)
            pthread_cond_broadcast(&pool->idle);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int bal_pool_new(unsigned threads, unsigned max_threads, bal_pool_t **out, bal_error_t *err)
{
    bal_pool_t *pool;
    int rc = 0;

    if (threads == 0)
        return bal_error_set(err, -EINVAL, "A worker pool needs at least one thread.");
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory creating a worker pool.");
    pool->max_workers = max_threads > threads ? max_threads : threads;
    pool->workers = calloc(pool->max_workers, sizeof(*pool->workers));
    if (pool->workers == NULL) {
        free(pool);
        return bal_error_set(err, -ENOMEM, "Out of memory creating a worker pool.");
    }
    pool->refs = 1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pthread_cond_init(&pool->idle, NULL);
    for (unsigned i = 0; i < threads; i++) {
        rc = pthread_create(&pool->workers[i], NULL, worker_main, pool);
        if (rc != 0)
            break; /* run with the threads we have */
        pool->n_workers++;
    }
    if (pool->n_workers == 0) {
        rc = bal_error_set(err, -rc, "Could not start any thread of a worker pool of %u.", threads);
        bal_pool_free(pool);
        return rc;
    }
    *out = pool;
    return 0;
}

void bal_pool_submit(bal_pool_t *pool, bal_pool_fn fn, void *arg)
{
    job_t *job = malloc(sizeof(*job));

    if (job == NULL) {
        fn(arg);
        return;
    }
    job->fn = fn;
    job->arg = arg;
    job->next = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->tail != NULL)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    pool->queued++;
    pool->pending++;
    /* More jobs queued than workers waiting: every other worker is busy (with a stalled peer, maybe). */
    if (pool->queued > pool->waiting && pool->n_workers < pool->max_workers &&
        pthread_create(&pool->workers[pool->n_workers], NULL, worker_main, pool) == 0)
        pool->n_workers++;
    pthread_cond_signal(&pool->work);
    pthread_mutex_unlock(&pool->lock);
}

void bal_pool_wait(bal_pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->idle, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

void bal_pool_detach(bal_pool_t *pool, pthread_t thread)
{
    int i;

    pthread_mutex_lock(&pool->lock);
    i = worker_index(pool, thread);
    if (i >= 0) {
        pool->workers[i] = pool->workers[--pool->n_workers];
        pool->refs++;
        pthread_detach(thread);
        if (--pool->pending == 0)
            pthread_cond_broadcast(&pool->idle);
    }
    pthread_mutex_unlock(&pool->lock);
}

unsigned bal_pool_threads(bal_pool_t *pool)
{
    unsigned n;

    pthread_mutex_lock(&pool->lock);
    n = pool->n_workers;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void bal_pool_free(bal_pool_t *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    /* No submit nor detach can race with free: workers no longer changes, and a detached worker only
     * reads it, under the lock. */
    for (unsigned i = 0; i < pool->n_workers; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_mutex_lock(&pool->lock);
    pool_unref_unlock(pool);
}
