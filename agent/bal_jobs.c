#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "agent/bal_jobs.h"

struct bal_job {
    void *item;            /* NULL once released, the job kept for an abandoned call (call_out) */
    bal_job_state_t state; /* under the jobs' lock */
    bool late;             /* RUNNING, and its round is over */
    bool discarded;        /* the owner let go: its item is released when its run ends */
    bool call_out;         /* a call of it was abandoned and has not returned: the others are refused */
    struct bal_jobs_call *puller; /* RUNNING and not abandoned: the puller running it */
};

/* A pool job that runs one round's jobs, one after the other, until the round has none left. It is
 * also the handle of the one call at a time that its job makes (bal_jobs_call_begin). */
typedef struct bal_jobs_call {
    bal_jobs_t *jobs;
    uint64_t round;
    pthread_t thread;
    bool watched;                        /* on a pool thread: not the owner's */
    bal_job_t *job;                      /* the job it runs; NULL between jobs */
    int64_t deadline_ms;                 /* its job's call in flight must return by then; 0: none */
    bool abandoned;                      /* that call was: the thread leaves when it returns */
    struct bal_jobs_call *prev, *next;   /* the jobs' active pullers */
} puller_t;

struct bal_jobs {
    bal_pool_t *pool;
    unsigned width;
    int call_timeout_ms; /* <= 0: calls are not watched */
    bal_jobs_run_fn run;
    bal_jobs_release_fn release;
    bal_jobs_abandon_fn abandon;
    void *opaque;

    pthread_mutex_t lock;
    pthread_cond_t changed; /* the round's last job ended or the last puller left; CLOCK_MONOTONIC */
    atomic_uint refs;       /* the owner's, and each puller's until it has left (abandoned or not) */
    pthread_t owner;        /* the thread of the owner's last call that waits */
    /* The round: pullers take from queue while round is theirs; closing a round moves it on, so that
     * a puller still in a late job leaves when that ends, instead of taking the next round's jobs. */
    uint64_t round;
    bal_job_t **queue;
    size_t n_queue, cap_queue, next;
    size_t outstanding; /* of the round's jobs, not DONE yet */
    size_t running;     /* every round's */
    size_t late;        /* running after their round */
    unsigned pullers;   /* submitted to the pool and not gone yet, abandoned ones excepted */
    puller_t *active;   /* the pullers that have started and not left */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for changed until at_ms on the monotonic clock (0: without a limit). Under the lock. */
static void wait_until(bal_jobs_t *jobs, int64_t at_ms)
{
    struct timespec ts;

    if (at_ms == 0) {
        pthread_cond_wait(&jobs->changed, &jobs->lock);
        return;
    }
    ts.tv_sec = at_ms / 1000;
    ts.tv_nsec = (long)(at_ms % 1000) * 1000000L;
    pthread_cond_timedwait(&jobs->changed, &jobs->lock, &ts);
}

static void jobs_destroy(bal_jobs_t *jobs)
{
    pthread_cond_destroy(&jobs->changed);
    pthread_mutex_destroy(&jobs->lock);
    free(jobs->queue);
    free(jobs);
}

/* Lets go of a reference; the last frees the jobs. Not under the lock. */
static void jobs_unref(bal_jobs_t *jobs)
{
    if (atomic_fetch_sub(&jobs->refs, 1) == 1)
        jobs_destroy(jobs);
}

static void link_active(bal_jobs_t *jobs, puller_t *p)
{
    p->prev = NULL;
    p->next = jobs->active;
    if (jobs->active != NULL)
        jobs->active->prev = p;
    jobs->active = p;
}

static void unlink_active(bal_jobs_t *jobs, puller_t *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        jobs->active = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
}

/* job's run is over (it returned, or abandon finished it): DONE, or DONE_LATE after its round; its
 * item released when the owner let go. Under the lock, which it releases meanwhile. */
static void end_job(bal_jobs_t *jobs, bal_job_t *job)
{
    void *item;

    jobs->running--;
    job->puller = NULL;
    if (job->late) {
        jobs->late--;
        job->state = BAL_JOB_DONE_LATE;
    } else {
        jobs->outstanding--; /* at 0, the puller that ended it wakes the owner as it leaves (pull) */
        job->state = BAL_JOB_DONE;
    }
    job->late = false;
    if (!job->discarded)
        return;
    item = job->item;
    job->item = NULL;
    if (!job->call_out)
        free(job); /* else the abandoned call's thread does, once it returns */
    pthread_mutex_unlock(&jobs->lock);
    jobs->release(jobs->opaque, item);
    pthread_mutex_lock(&jobs->lock);
}

/* The thread of an abandoned call, back from it and from its job's run: the owner has ended the job
 * and let this puller go. What is left to it: the job's refusal of calls, and the job itself when the
 * owner let go of it meanwhile. Under the lock, which it releases. */
static void leave_abandoned(bal_jobs_t *jobs, puller_t *p)
{
    bal_job_t *job = p->job;

    job->call_out = false;
    if (job->discarded && job->state != BAL_JOB_RUNNING)
        free(job); /* its item was released when the owner let go */
    pthread_mutex_unlock(&jobs->lock);
    free(p);
    jobs_unref(jobs);
}

static void pull(void *arg);

/* Starts n more pullers for the round. Under the lock, which it releases meanwhile. */
static void start_pullers(bal_jobs_t *jobs, unsigned n)
{
    for (unsigned w = 0; w < n; w++) {
        puller_t *p = calloc(1, sizeof(*p));

        if (p == NULL)
            break; /* fewer at once; with none, the round's jobs are withdrawn */
        p->jobs = jobs;
        p->round = jobs->round;
        jobs->pullers++;
        atomic_fetch_add(&jobs->refs, 1); /* the puller's, so that it can wake the owner unlocked */
        /* Unlocked: the pool may run the puller at once, in this thread when it has no memory. */
        pthread_mutex_unlock(&jobs->lock);
        bal_pool_submit(jobs->pool, pull, p);
        pthread_mutex_lock(&jobs->lock);
    }
}

static void pull(void *arg)
{
    puller_t *p = arg;
    bal_jobs_t *jobs = p->jobs;
    bool wake;

    pthread_mutex_lock(&jobs->lock);
    p->thread = pthread_self();
    p->watched = !pthread_equal(p->thread, jobs->owner);
    link_active(jobs, p);
    while (jobs->round == p->round && jobs->next < jobs->n_queue) {
        bal_job_t *job = jobs->queue[jobs->next++];

        job->state = BAL_JOB_RUNNING;
        job->puller = p;
        p->job = job;
        jobs->running++;
        pthread_mutex_unlock(&jobs->lock);
        jobs->run(jobs->opaque, job->item);
        pthread_mutex_lock(&jobs->lock);
        if (p->abandoned) {
            leave_abandoned(jobs, p);
            return;
        }
        p->job = NULL;
        end_job(jobs, job);
    }
    unlink_active(jobs, p);
    /* bal_jobs_run waits for the round's last job (which this puller ended if outstanding is 0: it then
     * had none left to take) or its last puller; bal_jobs_drain for the last puller (a job runs only
     * inside a puller). One wake per puller, not per job, which would cost the reading thread a futex
     * round trip per domain; and after the unlock, so that the owner does not wake only to block on
     * the lock this thread still holds (tests/bench). The puller's reference keeps jobs alive. */
    wake = --jobs->pullers == 0 || jobs->outstanding == 0;
    pthread_mutex_unlock(&jobs->lock);
    if (wake)
        pthread_cond_broadcast(&jobs->changed);
    free(p);
    jobs_unref(jobs);
}

/* Abandons each call past its deadline: its thread leaves the pool, abandon finishes its job, and the
 * round gets a puller in place of one that still had jobs to take. Under the lock, which it releases
 * while a job is finished. */
static void abandon_late_calls(bal_jobs_t *jobs)
{
    for (;;) {
        int64_t now = now_ms();
        puller_t *p = jobs->active;
        bal_job_t *job;
        bool replace;

        while (p != NULL && (p->deadline_ms == 0 || p->deadline_ms > now))
            p = p->next;
        if (p == NULL)
            return;
        job = p->job;
        p->abandoned = true;
        p->deadline_ms = 0;
        unlink_active(jobs, p);
        jobs->pullers--; /* its reference stays the thread's, until it is back */
        job->call_out = true;
        job->puller = NULL;
        replace = p->round == jobs->round && jobs->next < jobs->n_queue;
        bal_pool_detach(jobs->pool, p->thread);
        /* The job is still RUNNING: nobody else touches it, and its calls are refused (call_out). */
        pthread_mutex_unlock(&jobs->lock);
        jobs->abandon(jobs->opaque, job->item);
        pthread_mutex_lock(&jobs->lock);
        end_job(jobs, job);
        if (replace)
            start_pullers(jobs, 1);
    }
}

/* When the owner must look at the calls again: the earliest deadline of those in flight, or one call
 * timeout from now (a call begun later is due after that), or until (> 0) when sooner. 0: never. */
static int64_t next_wake(const bal_jobs_t *jobs, int64_t until)
{
    int64_t wake = until, timeout_from_now;

    if (jobs->call_timeout_ms <= 0)
        return wake;
    timeout_from_now = now_ms() + jobs->call_timeout_ms;
    if (wake == 0 || timeout_from_now < wake)
        wake = timeout_from_now;
    for (const puller_t *p = jobs->active; p != NULL; p = p->next)
        if (p->deadline_ms != 0 && p->deadline_ms < wake)
            wake = p->deadline_ms;
    return wake;
}

int bal_jobs_new(bal_pool_t *pool, unsigned width, int call_timeout_ms, bal_jobs_run_fn run,
                 bal_jobs_release_fn release, bal_jobs_abandon_fn abandon, void *opaque, bal_jobs_t **out,
                 bal_error_t *err)
{
    pthread_condattr_t attr;
    bal_jobs_t *jobs;

    if (pool == NULL || width == 0 || run == NULL || release == NULL)
        return bal_error_set(err, -EINVAL, "The domains' jobs need a pool, a width and their functions.");
    jobs = calloc(1, sizeof(*jobs));
    if (jobs == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory creating the domains' jobs.");
    jobs->pool = pool;
    jobs->width = width;
    jobs->call_timeout_ms = abandon != NULL && call_timeout_ms > 0 ? call_timeout_ms : 0;
    jobs->run = run;
    jobs->release = release;
    jobs->abandon = abandon;
    jobs->opaque = opaque;
    atomic_init(&jobs->refs, 1);
    jobs->owner = pthread_self();
    pthread_mutex_init(&jobs->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&jobs->changed, &attr);
    pthread_condattr_destroy(&attr);
    *out = jobs;
    return 0;
}

void bal_jobs_drain(bal_jobs_t *jobs)
{
    pthread_mutex_lock(&jobs->lock);
    jobs->owner = pthread_self();
    while (jobs->running > 0 || jobs->pullers > 0) {
        wait_until(jobs, next_wake(jobs, 0));
        abandon_late_calls(jobs);
    }
    pthread_mutex_unlock(&jobs->lock);
}

void bal_jobs_expire(bal_jobs_t *jobs)
{
    pthread_mutex_lock(&jobs->lock);
    jobs->owner = pthread_self();
    abandon_late_calls(jobs);
    pthread_mutex_unlock(&jobs->lock);
}

void bal_jobs_free(bal_jobs_t *jobs)
{
    if (jobs == NULL)
        return;
    bal_jobs_drain(jobs);
    jobs_unref(jobs);
}

bal_job_t *bal_job_new(void *item)
{
    bal_job_t *job = calloc(1, sizeof(*job));

    if (job != NULL)
        job->item = item;
    return job;
}

void bal_jobs_discard(bal_jobs_t *jobs, bal_job_t *job)
{
    void *item;
    bool keep;

    pthread_mutex_lock(&jobs->lock);
    job->discarded = true;
    if (job->state == BAL_JOB_RUNNING) {
        pthread_mutex_unlock(&jobs->lock);
        return; /* end_job releases it */
    }
    item = job->item;
    job->item = NULL;
    keep = job->call_out; /* the abandoned call's thread frees the job once it returns */
    pthread_mutex_unlock(&jobs->lock);
    jobs->release(jobs->opaque, item);
    if (!keep)
        free(job);
}

bal_job_state_t bal_job_state(bal_jobs_t *jobs, const bal_job_t *job)
{
    bal_job_state_t state;

    pthread_mutex_lock(&jobs->lock);
    state = job->state;
    pthread_mutex_unlock(&jobs->lock);
    return state;
}

void bal_job_take(bal_jobs_t *jobs, bal_job_t *job)
{
    pthread_mutex_lock(&jobs->lock);
    if (job->state == BAL_JOB_DONE || job->state == BAL_JOB_DONE_LATE || job->state == BAL_JOB_WITHDRAWN)
        job->state = BAL_JOB_IDLE;
    pthread_mutex_unlock(&jobs->lock);
}

int bal_jobs_add(bal_jobs_t *jobs, bal_job_t *job)
{
    int rc = 0;

    pthread_mutex_lock(&jobs->lock);
    if (job->state != BAL_JOB_IDLE) {
        rc = -EBUSY;
    } else if (jobs->n_queue == jobs->cap_queue) {
        size_t cap = jobs->cap_queue != 0 ? jobs->cap_queue * 2 : 64;
        bal_job_t **q = realloc(jobs->queue, cap * sizeof(*q));

        if (q == NULL) {
            rc = -ENOMEM;
        } else {
            jobs->queue = q;
            jobs->cap_queue = cap;
        }
    }
    if (rc == 0) {
        jobs->queue[jobs->n_queue++] = job;
        job->state = BAL_JOB_QUEUED;
    }
    pthread_mutex_unlock(&jobs->lock);
    return rc;
}

/* Ends the round: what had not started is withdrawn, what runs is late. Under the lock. */
static void close_round(bal_jobs_t *jobs)
{
    for (size_t i = 0; i < jobs->n_queue; i++) {
        bal_job_t *job = jobs->queue[i];

        if (job->state == BAL_JOB_QUEUED) {
            job->state = BAL_JOB_WITHDRAWN;
        } else if (job->state == BAL_JOB_RUNNING) {
            job->late = true;
            jobs->late++;
        }
    }
    jobs->round++;
    jobs->n_queue = jobs->next = 0;
    jobs->outstanding = 0;
}

void bal_jobs_run(bal_jobs_t *jobs, int64_t budget_ms)
{
    int64_t deadline_ms = budget_ms > 0 ? now_ms() + budget_ms : 0;

    pthread_mutex_lock(&jobs->lock);
    jobs->owner = pthread_self();
    jobs->outstanding = jobs->n_queue;
    jobs->next = 0;
    start_pullers(jobs, jobs->n_queue < jobs->width ? (unsigned)jobs->n_queue : jobs->width);
    while (jobs->outstanding > 0 && jobs->pullers > 0) {
        wait_until(jobs, next_wake(jobs, deadline_ms));
        abandon_late_calls(jobs);
        if (deadline_ms != 0 && now_ms() >= deadline_ms)
            break;
    }
    close_round(jobs);
    pthread_mutex_unlock(&jobs->lock);
}

int bal_jobs_call_begin(bal_jobs_t *jobs, bal_job_t *job, bal_jobs_call_t **call)
{
    puller_t *p;
    int rc = 0;

    pthread_mutex_lock(&jobs->lock);
    p = job->puller;
    if (job->call_out || p == NULL) /* p: NULL while abandon finishes the job */
        rc = -EBUSY;
    else if (jobs->call_timeout_ms <= 0 || !p->watched)
        rc = -ENOTSUP;
    else
        p->deadline_ms = now_ms() + jobs->call_timeout_ms;
    pthread_mutex_unlock(&jobs->lock);
    if (rc == 0)
        *call = p;
    return rc;
}

bool bal_jobs_call_end(bal_jobs_t *jobs, bal_jobs_call_t *call)
{
    bool abandoned;

    pthread_mutex_lock(&jobs->lock);
    abandoned = call->abandoned;
    call->deadline_ms = 0;
    pthread_mutex_unlock(&jobs->lock);
    return !abandoned;
}

size_t bal_jobs_late(bal_jobs_t *jobs)
{
    size_t n;

    pthread_mutex_lock(&jobs->lock);
    n = jobs->late;
    pthread_mutex_unlock(&jobs->lock);
    return n;
}
