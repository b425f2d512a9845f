/* The bounded worker pool: every job runs once, never more than N at a time, and they do overlap; it
 * grows, up to its maximum, only when every worker is busy. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "agent/bal_pool.h"
#include "tests/tt_time.h"

typedef struct counter {
    pthread_mutex_t lock;
    unsigned running;
    unsigned max_running;
    unsigned done;
} counter_t;

typedef struct task {
    counter_t *counter;
    unsigned runs;
    int sleep_ms;
} task_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void run_task(void *arg)
{
    task_t *t = arg;
    counter_t *c = t->counter;

    pthread_mutex_lock(&c->lock);
    c->running++;
    if (c->running > c->max_running)
        c->max_running = c->running;
    pthread_mutex_unlock(&c->lock);

    /* Real waiting: the point is that workers overlap while blocked, as on a QMP round trip. */
    if (t->sleep_ms > 0)
        sleep_ms(t->sleep_ms);
    t->runs++;

    pthread_mutex_lock(&c->lock);
    c->running--;
    c->done++;
    pthread_mutex_unlock(&c->lock);
}

static void test_zero_threads_refused(void **state)
{
    bal_pool_t *pool = NULL;
    bal_error_t err = {0};
    (void)state;
    assert_int_equal(bal_pool_new(0, 4, &pool, &err), -EINVAL);
    assert_null(pool);
    assert_int_equal(err.code, -EINVAL);
    bal_pool_free(NULL);
}

static void test_every_job_runs_once_and_wait_waits(void **state)
{
    counter_t c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    task_t tasks[200];
    bal_pool_t *pool = NULL;
    (void)state;
    assert_int_equal(bal_pool_new(4, 4, &pool, NULL), 0);
    assert_int_equal(bal_pool_threads(pool), 4);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 200; i++) {
            if (round == 0)
                tasks[i] = (task_t){.counter = &c, .sleep_ms = (i % 17 == 0) ? 2 : 0};
            bal_pool_submit(pool, run_task, &tasks[i]);
        }
        bal_pool_wait(pool);
        /* wait returned: every job of this batch is finished, none is still running. */
        assert_int_equal(c.done, 200u * (unsigned)(round + 1));
        assert_int_equal(c.running, 0);
    }
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(tasks[i].runs, 3);
    bal_pool_free(pool);
}

static void test_bounded_and_overlapping(void **state)
{
    counter_t c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    task_t tasks[20];
    bal_pool_t *pool = NULL;
    int64_t t0, elapsed_ms;
    (void)state;
    assert_int_equal(bal_pool_new(5, 0, &pool, NULL), 0);
    t0 = tt_mono_ms();
    for (size_t i = 0; i < 20; i++) {
        tasks[i] = (task_t){.counter = &c, .sleep_ms = 100};
        bal_pool_submit(pool, run_task, &tasks[i]);
    }
    bal_pool_wait(pool);
    elapsed_ms = tt_mono_ms() - t0;
    assert_int_equal(c.done, 20);
    /* Never more than 5 at once, and they really overlapped. */
    assert_true(c.max_running <= 5);
    assert_true(c.max_running >= 4);
    /* 20 jobs of 100 ms on 5 workers: 4 rounds, 400 ms; serially 2000 ms. Loose above, for loaded
     * machines: what matters is far below serial. */
    assert_true(elapsed_ms >= 390);
    assert_true(elapsed_ms < 1400);
    bal_pool_free(pool);
}

static void test_free_runs_queued_jobs(void **state)
{
    counter_t c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    task_t tasks[10];
    bal_pool_t *pool = NULL;
    (void)state;
    assert_int_equal(bal_pool_new(1, 1, &pool, NULL), 0);
    for (size_t i = 0; i < 10; i++) {
        tasks[i] = (task_t){.counter = &c, .sleep_ms = 1};
        bal_pool_submit(pool, run_task, &tasks[i]);
    }
    /* No wait: free must still run them (jobs own nothing the pool could drop). */
    bal_pool_free(pool);
    assert_int_equal(c.done, 10);
    assert_int_equal(c.max_running, 1);
}

static void test_wait_on_idle_pool_returns(void **state)
{
    bal_pool_t *pool = NULL;
    (void)state;
    assert_int_equal(bal_pool_new(2, 2, &pool, NULL), 0);
    bal_pool_wait(pool);
    bal_pool_free(pool);
}

/* A worker held by a long job (a stalled peer's) does not hold up a job submitted after it: the pool
 * starts another worker, up to its maximum, and no more. */
static void test_grows_when_busy_up_to_max(void **state)
{
    counter_t c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    task_t slow[3], quick;
    bal_pool_t *pool = NULL;
    unsigned done = 0;
    (void)state;

    assert_int_equal(bal_pool_new(1, 2, &pool, NULL), 0);
    assert_int_equal(bal_pool_threads(pool), 1);
    for (int i = 0; i < 3; i++)
        slow[i] = (task_t){.counter = &c, .sleep_ms = 500};
    quick = (task_t){.counter = &c};
    bal_pool_submit(pool, run_task, &slow[0]);
    bal_pool_submit(pool, run_task, &quick);
    for (int i = 0; i < 400 && done == 0; i++) { /* well within slow[0]'s 500 ms */
        sleep_ms(1);
        pthread_mutex_lock(&c.lock);
        done = c.done;
        pthread_mutex_unlock(&c.lock);
    }
    assert_int_equal(done, 1);
    assert_int_equal(quick.runs, 1);
    assert_int_equal(slow[0].runs, 0);
    assert_int_equal(bal_pool_threads(pool), 2);
    bal_pool_submit(pool, run_task, &slow[1]);
    bal_pool_submit(pool, run_task, &slow[2]);
    assert_int_equal(bal_pool_threads(pool), 2); /* at the maximum: they wait for a worker */
    bal_pool_wait(pool);
    assert_int_equal(c.done, 4);
    assert_true(c.max_running <= 2);
    bal_pool_free(pool);
}

/* A job that holds its worker until the test opens the gate, as one in a call that does not return. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool entered, open, left;
    pthread_t thread;
} gate_t;

static void stuck_task(void *arg)
{
    gate_t *g = arg;

    pthread_mutex_lock(&g->lock);
    g->thread = pthread_self();
    g->entered = true;
    pthread_cond_broadcast(&g->changed);
    while (!g->open)
        pthread_cond_wait(&g->changed, &g->lock);
    g->left = true;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
}

/* Waits (at most 5 s) until *flag under g's lock. */
static bool gate_wait(gate_t *g, const bool *flag)
{
    struct timespec until;
    bool seen;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g->lock);
    while (!*flag && pthread_cond_timedwait(&g->changed, &g->lock, &until) == 0)
        ;
    seen = *flag;
    pthread_mutex_unlock(&g->lock);
    return seen;
}

/* A worker stuck in its job and detached leaves the pool: it no longer counts against the maximum, so
 * the next job gets a new worker; bal_pool_wait and bal_pool_free do not wait for it; and once its job
 * returns, after the pool is gone, it ends without touching the pool's memory (ASan and valgrind runs
 * of this test say so). A thread that is not a worker is not detached. */
static void test_detached_worker_leaves_the_pool(void **state)
{
    gate_t g = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
    counter_t c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    task_t quick = {.counter = &c};
    bal_pool_t *pool = NULL;
    (void)state;

    assert_int_equal(bal_pool_new(1, 1, &pool, NULL), 0);
    bal_pool_submit(pool, stuck_task, &g);
    assert_true(gate_wait(&g, &g.entered));
    bal_pool_detach(pool, pthread_self()); /* not a worker: nothing changes */
    assert_int_equal(bal_pool_threads(pool), 1);
    bal_pool_detach(pool, g.thread);
    assert_int_equal(bal_pool_threads(pool), 0);

    bal_pool_submit(pool, run_task, &quick); /* at the maximum of 1, but the stuck one left */
    bal_pool_wait(pool);
    assert_int_equal(quick.runs, 1);
    assert_int_equal(bal_pool_threads(pool), 1);
    bal_pool_free(pool);
    assert_false(g.left);

    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.changed);
    pthread_mutex_unlock(&g.lock);
    assert_true(gate_wait(&g, &g.left));
    sleep_ms(20); /* the worker's way out, past the pool's memory */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_threads_refused),
        cmocka_unit_test(test_every_job_runs_once_and_wait_waits),
        cmocka_unit_test(test_bounded_and_overlapping),
        cmocka_unit_test(test_free_runs_queued_jobs),
        cmocka_unit_test(test_wait_on_idle_pool_returns),
        cmocka_unit_test(test_grows_when_busy_up_to_max),
        cmocka_unit_test(test_detached_worker_leaves_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
