/* The bench programs' read threads (see bench_pool.h). Two barriers: start lets the threads into a
 * cycle (or out, once quit is set), done tells the caller that every item was taken and finished. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "tests/bench/bench_pool.h"

struct bench_pool {
    pthread_barrier_t start, done;
    pthread_t *threads;
    unsigned n_threads;
    bench_pool_work_fn *work;
    void *arg;
    size_t n_items;
    atomic_size_t next;
    bool quit;
};

static void *pool_thread(void *p)
{
    bench_pool_t *pool = p;

    for (;;) {
        pthread_barrier_wait(&pool->start);
        if (pool->quit)
            break;
        for (size_t i; (i = atomic_fetch_add(&pool->next, 1)) < pool->n_items;)
            pool->work(pool->arg, i);
        pthread_barrier_wait(&pool->done);
    }
    return NULL;
}

bench_pool_t *bench_pool_new(unsigned n_threads, bench_pool_work_fn *work, void *arg)
{
    bench_pool_t *pool = calloc(1, sizeof(*pool));

    if (pool == NULL)
        return NULL;
    pool->work = work;
    pool->arg = arg;
    pool->threads = calloc(n_threads, sizeof(*pool->threads));
    if (pool->threads == NULL || pthread_barrier_init(&pool->start, NULL, n_threads + 1) != 0 ||
        pthread_barrier_init(&pool->done, NULL, n_threads + 1) != 0)
        return NULL; /* the caller exits at once: nothing is worth freeing */
    for (; pool->n_threads < n_threads; pool->n_threads++)
        if (pthread_create(&pool->threads[pool->n_threads], NULL, pool_thread, pool) != 0)
            return NULL; /* the barrier would wait for ever: the caller exits at once */
    return pool;
}

void bench_pool_cycle(bench_pool_t *pool, size_t n_items)
{
    pool->n_items = n_items;
    atomic_store(&pool->next, 0);
    pthread_barrier_wait(&pool->start);
    pthread_barrier_wait(&pool->done);
}

void bench_pool_timed_cycle(bench_pool_t *pool, size_t n_items, bench_cycle_t *out)
{
    int64_t wall0 = bench_wall_ns(), cpu0 = bench_cpu_ns();

    bench_pool_cycle(pool, n_items);
    out->wall_ms = (double)(bench_wall_ns() - wall0) / 1e6;
    out->cpu_ms = (double)(bench_cpu_ns() - cpu0) / 1e6;
}

void bench_pool_free(bench_pool_t *pool)
{
    if (pool == NULL)
        return;
    pool->quit = true;
    pthread_barrier_wait(&pool->start);
    for (unsigned i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_barrier_destroy(&pool->start);
    pthread_barrier_destroy(&pool->done);
    free(pool->threads);
    free(pool);
}
