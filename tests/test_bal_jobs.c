/* bal_jobs' watched calls (issue 16), on a real pool with real threads: a call past its deadline is
 * abandoned by the owner, which finishes its job at once (on its own thread) while another thread takes
 * the round's jobs still queued; the job's calls are refused until the abandoned one returns; a drain or
 * a free does not wait for it; and the thread, back after the jobs and the pool are gone, touches
 * nothing of them (the ASan and valgrind runs of make check say so). A hung call here waits on a gate
 * that the test opens, at most 5 s: without the abandoning, the bounds below fail instead of the run
 * hanging. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "agent/bal_jobs.h"
#include "agent/bal_pool.h"
#include "tests/tt_env.h"
#include "tests/tt_time.h"

#define TIMEOUT_MS 150
#define HANG_MAX_MS 5000

/* What the jobs' threads report; it outlives the jobs, the pool and the items. */
typedef struct report {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool open;                   /* the gate of the hung calls */
    unsigned hanging;            /* calls waiting at the gate now */
    unsigned began, refused, unwatched, kept, abandoned_returns;
    unsigned abandons, releases; /* abandon and release calls */
    pthread_t owner;
    bool abandon_off_owner;      /* abandon was called on another thread than the owner's */
} report_t;

static report_t rep;

typedef struct item {
    bal_jobs_t **jobs; /* where the test keeps the jobs: the item's job calls through it */
    bal_job_t *job;
    bool hang;
    unsigned runs;
} item_t;

static void gate_wait(void)
{
    int64_t until = tt_mono_ms() + HANG_MAX_MS;

    rep.hanging++;
    pthread_cond_broadcast(&rep.changed);
    while (!rep.open && tt_mono_ms() < until) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rep.changed, &rep.lock, &ts);
    }
    rep.hanging--;
}

/* One watched call per run: a hung item's waits at the gate. Touches the item only while the call is
 * the thread's. */
static void run_item(void *opaque, void *arg)
{
    item_t *it = arg;
    bal_jobs_t *jobs = *it->jobs;
    bal_jobs_call_t *call = NULL;
    bool hang = it->hang;
    int rc;

    (void)opaque;
    it->runs++;
    rc = bal_jobs_call_begin(jobs, it->job, &call);
    pthread_mutex_lock(&rep.lock);
    if (rc == -EBUSY)
        rep.refused++;
    else if (rc == -ENOTSUP)
        rep.unwatched++;
    else
        rep.began++;
    if (rc == 0 && hang)
        gate_wait();
    pthread_mutex_unlock(&rep.lock);
    if (rc != 0)
        return;
    if (bal_jobs_call_end(jobs, call)) {
        pthread_mutex_lock(&rep.lock);
        rep.kept++;
        pthread_mutex_unlock(&rep.lock);
        return;
    }
    /* Abandoned: the item may be gone; only the report is touched. */
    pthread_mutex_lock(&rep.lock);
    rep.abandoned_returns++;
    pthread_cond_broadcast(&rep.changed);
    pthread_mutex_unlock(&rep.lock);
}

static void release_item(void *opaque, void *arg)
{
    (void)opaque;
    free(arg);
    pthread_mutex_lock(&rep.lock);
    rep.releases++;
    pthread_mutex_unlock(&rep.lock);
}

static void abandon_item(void *opaque, void *arg)
{
    (void)opaque;
    (void)arg;
    pthread_mutex_lock(&rep.lock);
    rep.abandons++;
    if (!pthread_equal(pthread_self(), rep.owner))
        rep.abandon_off_owner = true;
    pthread_mutex_unlock(&rep.lock);
}

static unsigned reported(const unsigned *field)
{
    unsigned n;

    pthread_mutex_lock(&rep.lock);
    n = *field;
    pthread_mutex_unlock(&rep.lock);
    return n;
}

static void open_gate(void)
{
    pthread_mutex_lock(&rep.lock);
    rep.open = true;
    pthread_cond_broadcast(&rep.changed);
    pthread_mutex_unlock(&rep.lock);
}

/* Waits (at most 5 s) until *field reaches n. */
static bool wait_reported(const unsigned *field, unsigned n)
{
    for (int i = 0; i < 5000 && reported(field) < n; i++) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    return reported(field) >= n;
}

static int64_t slack_ms(void)
{
    return tt_valgrind() ? 10000 : 1500;
}

static int setup(void **state)
{
    (void)state;
    pthread_mutex_destroy(&rep.lock);
    pthread_cond_destroy(&rep.changed);
    rep = (report_t){.owner = pthread_self()};
    pthread_mutex_init(&rep.lock, NULL);
    pthread_cond_init(&rep.changed, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    open_gate(); /* a failed test's hung calls end */
    return 0;
}

static item_t *item_new(bal_jobs_t **jobs, bool hang)
{
    item_t *it = calloc(1, sizeof(*it));

    assert_non_null(it);
    it->jobs = jobs;
    it->hang = hang;
    it->job = bal_job_new(it);
    assert_non_null(it->job);
    return it;
}

/* One worker: the hung call is abandoned at its deadline although the round has no budget, on the
 * owner's thread, and a new thread runs the job queued behind it in the same round. The job's next
 * call is refused while the abandoned one is out, and made again once it has returned. */
static void test_call_past_deadline_abandoned_and_round_goes_on(void **state)
{
    bal_pool_t *pool = NULL;
    bal_jobs_t *jobs = NULL;
    item_t *hung, *next;
    int64_t t0, took;

    (void)state;
    assert_int_equal(bal_pool_new(1, 2, &pool, NULL), 0);
    assert_int_equal(bal_jobs_new(pool, 1, TIMEOUT_MS, run_item, release_item, abandon_item, NULL, &jobs, NULL), 0);
    hung = item_new(&jobs, true);
    next = item_new(&jobs, false);
    assert_int_equal(bal_jobs_add(jobs, hung->job), 0);
    assert_int_equal(bal_jobs_add(jobs, next->job), 0);

    t0 = tt_mono_ms();
    bal_jobs_run(jobs, 0);
    took = tt_mono_ms() - t0;
    print_message("  a round with no budget over a hung call: %lld ms\n", (long long)took);
    assert_true(took >= TIMEOUT_MS - 5);
    assert_true(took < TIMEOUT_MS + slack_ms());
    assert_int_equal(reported(&rep.abandons), 1);
    assert_false(rep.abandon_off_owner);
    assert_int_equal(bal_job_state(jobs, hung->job), BAL_JOB_DONE);
    assert_int_equal(bal_job_state(jobs, next->job), BAL_JOB_DONE);
    assert_int_equal(next->runs, 1);
    assert_int_equal(reported(&rep.hanging), 1); /* still out, in the thread that left the pool */

    bal_job_take(jobs, hung->job);
    assert_int_equal(bal_jobs_add(jobs, hung->job), 0);
    bal_jobs_run(jobs, 0);
    assert_int_equal(reported(&rep.refused), 1);
    assert_int_equal(reported(&rep.hanging), 1); /* no second call stacked behind the first */

    open_gate();
    assert_true(wait_reported(&rep.abandoned_returns, 1));
    bal_job_take(jobs, hung->job);
    hung->hang = false;
    assert_int_equal(bal_jobs_add(jobs, hung->job), 0);
    bal_jobs_run(jobs, 0);
    assert_int_equal(reported(&rep.kept), 2); /* next's, and hung's once its call had returned */

    bal_jobs_discard(jobs, hung->job);
    bal_jobs_discard(jobs, next->job);
    bal_jobs_free(jobs);
    bal_pool_free(pool);
    assert_int_equal(reported(&rep.releases), 2);
}

/* A job late after its round: its call is abandoned by bal_jobs_expire once past its deadline, and the
 * job ends DONE_LATE; then a drain, a discard and the frees of the jobs and the pool return at once
 * while the call is still out, and the thread's return afterwards finds what it needs. */
static void test_expire_drain_and_free_do_not_wait(void **state)
{
    bal_pool_t *pool = NULL;
    bal_jobs_t *jobs = NULL;
    item_t *hung;
    int64_t t0;

    (void)state;
    assert_int_equal(bal_pool_new(2, 4, &pool, NULL), 0);
    assert_int_equal(bal_jobs_new(pool, 2, TIMEOUT_MS, run_item, release_item, abandon_item, NULL, &jobs, NULL), 0);
    hung = item_new(&jobs, true);
    assert_int_equal(bal_jobs_add(jobs, hung->job), 0);
    bal_jobs_run(jobs, 20);
    assert_int_equal(bal_job_state(jobs, hung->job), BAL_JOB_RUNNING);
    assert_int_equal(bal_jobs_late(jobs), 1);
    bal_jobs_expire(jobs); /* not past its deadline yet */
    assert_int_equal(reported(&rep.abandons), 0);

    assert_true(wait_reported(&rep.hanging, 1));
    {
        struct timespec ts = {0, (TIMEOUT_MS + 20) * 1000000L};
        nanosleep(&ts, NULL);
    }
    bal_jobs_expire(jobs);
    assert_int_equal(reported(&rep.abandons), 1);
    assert_int_equal(bal_job_state(jobs, hung->job), BAL_JOB_DONE_LATE);
    assert_int_equal(bal_jobs_late(jobs), 0);

    t0 = tt_mono_ms();
    bal_jobs_drain(jobs);
    bal_jobs_discard(jobs, hung->job); /* its item goes now, the job with the call */
    bal_jobs_free(jobs);
    bal_pool_free(pool);
    assert_true(tt_mono_ms() - t0 < slack_ms());
    assert_int_equal(reported(&rep.releases), 1);
    assert_int_equal(reported(&rep.hanging), 1);

    open_gate();
    assert_true(wait_reported(&rep.abandoned_returns, 1));
    {
        struct timespec ts = {0, 20 * 1000000L}; /* the thread's way out, past jobs and pool */
        nanosleep(&ts, NULL);
    }
}

/* Without a call timeout or an abandon function, calls are not watched: begin says -ENOTSUP and the
 * caller makes the call with a timeout of its own. */
static void test_unwatched_jobs(void **state)
{
    bal_pool_t *pool = NULL;
    bal_jobs_t *jobs = NULL;
    item_t *it;

    (void)state;
    assert_int_equal(bal_pool_new(1, 1, &pool, NULL), 0);
    for (int variant = 0; variant < 2; variant++) {
        assert_int_equal(bal_jobs_new(pool, 1, variant == 0 ? 0 : TIMEOUT_MS, run_item, release_item,
                                      variant == 0 ? abandon_item : NULL, NULL, &jobs, NULL),
                         0);
        it = item_new(&jobs, false);
        assert_int_equal(bal_jobs_add(jobs, it->job), 0);
        bal_jobs_run(jobs, 0);
        assert_int_equal(bal_job_state(jobs, it->job), BAL_JOB_DONE);
        bal_jobs_discard(jobs, it->job);
        bal_jobs_free(jobs);
    }
    bal_pool_free(pool);
    assert_int_equal(reported(&rep.unwatched), 2);
    assert_int_equal(reported(&rep.began), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_call_past_deadline_abandoned_and_round_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_drain_and_free_do_not_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwatched_jobs, setup, teardown),
    };

    pthread_mutex_init(&rep.lock, NULL);
    pthread_cond_init(&rep.changed, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
