/* The domains' jobs, run in rounds over the pool (bal_pool.h), with at most one job in flight per
 * domain. A round queues jobs, runs them at most `width` at once, and waits for them until a deadline.
 * A job still running then goes on in the background, and a later round takes its outcome (the
 * agent's read cycle reports its domain as late meanwhile); a job that had not started is withdrawn.
 * So a stalled peer costs its own domain a late answer, never a read cycle its deadline, and it cannot
 * pile jobs up: its domain gets no new job until the one in flight ends (at the transport's timeout).
 *
 * A job makes its blocking calls (QMP commands through libvirt, which has no timeout of its own) on its
 * own thread, each watched: bal_jobs_call_begin gives it a deadline, the call timeout from now. The owner
 * enforces it while it waits (bal_jobs_run, bal_jobs_drain, bal_jobs_expire): a call past its deadline
 * is abandoned. Its thread leaves the pool (bal_pool_detach) and ends once the call returns, touching
 * nothing of the job's item from then on; the owner finishes the job at once with `abandon`, and
 * another thread takes the round's jobs still queued. Until the abandoned call returns, the job's calls
 * are refused, so that a hung peer holds one thread, not one per read. So a call costs one thread
 * hand-off (owner to worker), not two (to a helper with a timeout, and back), and still no hung peer
 * makes a round, a drain or a free wait longer than a call timeout.
 *
 * One owner thread (the agent's reader) adds jobs, runs rounds and reads states; the pool's threads run
 * the jobs. A job's thread touches its item only while the job is RUNNING and not abandoned, the owner
 * only in the other states and to finish an abandoned job: each state is read under the module's lock,
 * which orders the two. */
#ifndef BAL_JOBS_H
#define BAL_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/bal_error.h"
#include "agent/bal_pool.h"

typedef struct bal_jobs bal_jobs_t;
typedef struct bal_job bal_job_t;
typedef struct bal_jobs_call bal_jobs_call_t;

typedef enum bal_job_state {
    BAL_JOB_IDLE,      /* nothing in flight, nothing to take */
    BAL_JOB_QUEUED,    /* added to the round being built */
    BAL_JOB_RUNNING,   /* started; late when its round is over */
    BAL_JOB_DONE,      /* ended within its round: its outcome is to be taken (bal_job_take) */
    BAL_JOB_DONE_LATE, /* ended after its round: its outcome is to be taken */
    BAL_JOB_WITHDRAWN, /* its round ended before it started: it never ran (bal_job_take) */
} bal_job_state_t;

/* run does a job's work on item, on a pool thread; release frees an item that the owner discarded
 * while its job was running, on that job's thread once it ends. */
typedef void (*bal_jobs_run_fn)(void *opaque, void *item);
typedef void (*bal_jobs_release_fn)(void *opaque, void *item);
/* abandon finishes the work of a job whose call was abandoned, on the owner's thread, without blocking
 * (its calls are refused: see bal_jobs_call_begin). */
typedef void (*bal_jobs_abandon_fn)(void *opaque, void *item);

/* Jobs over pool (borrowed; it must outlive them, with room for width workers beyond the late jobs).
 * Their calls are abandoned call_timeout_ms after they begin (<= 0, or abandon NULL: calls are not
 * watched, bal_jobs_call_begin says -ENOTSUP). Returns 0 and *out, or -ENOMEM / -EINVAL with err
 * filled. */
int bal_jobs_new(bal_pool_t *pool, unsigned width, int call_timeout_ms, bal_jobs_run_fn run,
                 bal_jobs_release_fn release, bal_jobs_abandon_fn abandon, void *opaque, bal_jobs_t **out,
                 bal_error_t *err);
/* Waits for every job in flight (bal_jobs_drain), then frees; threads in abandoned calls keep what they
 * need of it until they end. Jobs not discarded must be discarded before. NULL is a no-op. */
void bal_jobs_free(bal_jobs_t *jobs);

/* A job for item, IDLE. Returns NULL when out of memory. */
bal_job_t *bal_job_new(void *item);
/* The owner lets go of job and of its item: both are freed now (release called from here), or, when
 * the job is running, by its thread once it ends. (The job itself may live on until a call of it that
 * was abandoned returns.) */
void bal_jobs_discard(bal_jobs_t *jobs, bal_job_t *job);

bal_job_state_t bal_job_state(bal_jobs_t *jobs, const bal_job_t *job);
/* DONE, DONE_LATE or WITHDRAWN become IDLE: the owner has read the outcome. */
void bal_job_take(bal_jobs_t *jobs, bal_job_t *job);

/* Queues an IDLE job in the round being built. Returns 0, or -EBUSY (not IDLE), -ENOMEM. */
int bal_jobs_add(bal_jobs_t *jobs, bal_job_t *job);
/* Runs the round built since the last: returns when each of its jobs is DONE, or once budget_ms of real
 * (monotonic) time have passed (<= 0: no limit). Then the jobs that had not started are WITHDRAWN and
 * those still running are late. Meanwhile, calls past their deadline (any round's) are abandoned.
 * Blocks for at most budget_ms. */
void bal_jobs_run(bal_jobs_t *jobs, int64_t budget_ms);
/* Abandons the calls past their deadline now, finishing their jobs (the owner, before it reads states
 * outside a round). */
void bal_jobs_expire(bal_jobs_t *jobs);
/* How many jobs run after their round ended. */
size_t bal_jobs_late(bal_jobs_t *jobs);
/* Blocks until no job runs: each ends, or is abandoned at its call's deadline. */
void bal_jobs_drain(bal_jobs_t *jobs);

/* For a job's run, on its thread, before a blocking call for job: 0 and *call, the call now watched;
 * -EBUSY: an earlier call of this job was abandoned and has not returned, or abandon is finishing the
 * job (make none); -ENOTSUP: calls
 * are not watched, or this thread is the owner's (a round run where no worker could be had): make the
 * call with a timeout of its own. */
int bal_jobs_call_begin(bal_jobs_t *jobs, bal_job_t *job, bal_jobs_call_t **call);
/* After the call began by bal_jobs_call_begin: true when it is the thread's still; false when it was
 * abandoned meanwhile: the thread must let go of what the call holds and return from the job's run at
 * once, touching nothing of its item. */
bool bal_jobs_call_end(bal_jobs_t *jobs, bal_jobs_call_t *call);

#endif
