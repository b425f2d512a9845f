#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "agent/bal_jobs.h"

struct bal_job {
    void *item;
    bal_job_state_t state; /* under the jobs' lock */
    bool late;             /* RUNNING, and its round is over */
    bool discarded;        /* RUNNING, and the owner let go: its thread frees it */
};

struct bal_jobs {
    bal_pool_t *pool;
    unsigned width;
    bal_jobs_run_fn run;
    bal_jobs_release_fn release;
    void *opaque;

    pthread_mutex_t lock;
    pthread_cond_t changed; /* the round's last job ended or the last puller left; CLOCK_MONOTONIC */
    /* The round: pullers take from queue while round is theirs; closing a round moves it on, so that
     * a puller still in a late job leaves when that ends, instead of taking the next round's jobs. */
    uint64_t round;
    bal_job_t **queue;
    size_t n_queue, cap_queue, next;
    size_t outstanding; /* of the round's jobs, not DONE yet */
    size_t running;     /* every round's */
    size_t late;        /* running after their round */
    unsigned pullers;   /* submitted to the pool and not gone yet */
};

/* A pool job that runs one round's jobs, one after the other, until the round has none left. */
typedef struct puller {
    bal_jobs_t *jobs;
    uint64_t round;
} puller_t;

static void pull(void *arg)
{
    puller_t *p = arg;
    bal_jobs_t *jobs = p->jobs;

    pthread_mutex_lock(&jobs->lock);
    while (jobs->round == p->round && jobs->next < jobs->n_queue) {
        bal_job_t *job = jobs->queue[jobs->next++];

        job->state = BAL_JOB_RUNNING;
        jobs->running++;
        pthread_mutex_unlock(&jobs->lock);
        jobs->run(jobs->opaque, job->item);
        pthread_mutex_lock(&jobs->lock);
        jobs->running--;
        if (job->late) {
            jobs->late--;
            job->state = BAL_JOB_DONE_LATE;
        } else {
            jobs->outstanding--;
            job->state = BAL_JOB_DONE;
            /* bal_jobs_run waits for the round's last job (or its budget, or its last puller): a wake
             * per job would cost the reading thread a futex round trip per domain for nothing. */
            if (jobs->outstanding == 0)
                pthread_cond_broadcast(&jobs->changed);
        }
        job->late = false;
        if (job->discarded) {
            pthread_mutex_unlock(&jobs->lock);
            jobs->release(jobs->opaque, job->item);
            free(job);
            pthread_mutex_lock(&jobs->lock);
        }
    }
    /* Both waiters wait for the last puller at most (a job runs only inside a puller, so no job runs
     * once none is left): bal_jobs_run while the round has jobs, bal_jobs_drain for everything. */
    if (--jobs->pullers == 0)
        pthread_cond_broadcast(&jobs->changed);
    pthread_mutex_unlock(&jobs->lock);
    free(p);
}

int bal_jobs_new(bal_pool_t *pool, unsigned width, bal_jobs_run_fn run, bal_jobs_release_fn release, void *opaque,
                 bal_jobs_t **out, bal_error_t *err)
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
    jobs->run = run;
    jobs->release = release;
    jobs->opaque = opaque;
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
    while (jobs->running > 0 || jobs->pullers > 0)
        pthread_cond_wait(&jobs->changed, &jobs->lock);
    pthread_mutex_unlock(&jobs->lock);
}

void bal_jobs_free(bal_jobs_t *jobs)
{
    if (jobs == NULL)
        return;
    bal_jobs_drain(jobs);
    pthread_cond_destroy(&jobs->changed);
    pthread_mutex_destroy(&jobs->lock);
    free(jobs->queue);
    free(jobs);
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
    bool running;

    pthread_mutex_lock(&jobs->lock);
    running = job->state == BAL_JOB_RUNNING;
    job->discarded = running;
    pthread_mutex_unlock(&jobs->lock);
    if (running)
        return;
    jobs->release(jobs->opaque, job->item);
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
    struct timespec deadline;
    unsigned width;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (budget_ms > 0) {
        deadline.tv_sec += budget_ms / 1000;
        deadline.tv_nsec += (long)(budget_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&jobs->lock);
    jobs->outstanding = jobs->n_queue;
    jobs->next = 0;
    width = jobs->n_queue < jobs->width ? (unsigned)jobs->n_queue : jobs->width;
    for (unsigned w = 0; w < width; w++) {
        puller_t *p = malloc(sizeof(*p));

        if (p == NULL)
            break; /* fewer at once; with none, the round's jobs are withdrawn */
        *p = (puller_t){.jobs = jobs, .round = jobs->round};
        jobs->pullers++;
        /* Unlocked: the pool may run the puller at once, in this thread when it has no memory. */
        pthread_mutex_unlock(&jobs->lock);
        bal_pool_submit(jobs->pool, pull, p);
        pthread_mutex_lock(&jobs->lock);
    }
    while (jobs->outstanding > 0 && jobs->pullers > 0) {
        if (budget_ms <= 0)
            pthread_cond_wait(&jobs->changed, &jobs->lock);
        else if (pthread_cond_timedwait(&jobs->changed, &jobs->lock, &deadline) == ETIMEDOUT)
            break;
    }
    close_round(jobs);
    pthread_mutex_unlock(&jobs->lock);
}

size_t bal_jobs_late(bal_jobs_t *jobs)
{
    size_t n;

    pthread_mutex_lock(&jobs->lock);
    n = jobs->late;
    pthread_mutex_unlock(&jobs->lock);
    return n;
}
