/* One domain the agent watches, and its job: its QMP commands sent and their answers fed to its
 * poller on a pool thread (bal_jobs' run), and the job finished on the reader's thread when a command
 * is abandoned at its timeout (bal_jobs' abandon). Private to the agent (bal_agent.c keeps the list
 * of domains and queues their jobs). */
#ifndef BAL_AGENT_JOB_H
#define BAL_AGENT_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/bal_clock.h"
#include "agent/bal_jobs.h"
#include "agent/bal_poller.h"
#include "agent/bal_transport.h"

typedef struct bal_agent_domain {
    bal_domain_info_t info; /* name owned; not written while its job runs (see pending) */
    bal_poller_t *poller;   /* driven by its job's thread while the job runs, else by the reader */
    bal_job_t *job;         /* at most one in flight */
    bool in_cycle;          /* begun in this read; false for one listed again mid-cycle */
    bool restore;           /* the job's work: put the interval back, instead of a read cycle */
    int64_t deadline_ms;    /* the job's steps starting after this fail at once (agent's clock) */
    bool suspect;           /* its last job was late or timed out: queued last, within the late budget */
    bool skipped;           /* a suspect left out of this read: too many jobs still late */
    int64_t last_interval;  /* of the last sample handed out, for a late one: -1 unknown */
    void *user;             /* the caller's slot (bal_sample_t.user); the reader's thread only */
    /* Listed again while its job ran: the instance and uuid to take once it has ended. */
    bool has_pending;
    uint64_t pending_instance;
    char pending_uuid[37];
} bal_agent_domain_t;

/* What a job needs of the agent: held in the agent, which outlives every job that touches it (a
 * thread whose command was abandoned touches nothing once it returns). */
typedef struct bal_agent_job_env {
    bal_transport_t *transport;
    bal_jobs_t *jobs;
    const bal_clock_t *clock;
    int timeout_ms;
} bal_agent_job_env_t;

/* bal_jobs' run, on a pool thread: the domain's share of a read (or of the shutdown, with restore),
 * its steps from where its poller is until it has none left or one is abandoned. env is the
 * agent's bal_agent_job_env_t, domain its bal_agent_domain_t. */
void bal_agent_job_run(void *env, void *domain);

/* bal_jobs' abandon, on the reader's thread: the domain's command in flight was abandoned at the
 * timeout. Its step fails as one that timed out; the steps after it fail at once, sending nothing, as
 * the domain's commands do until the abandoned one returns (the transport may block, the reader must
 * not). */
void bal_agent_job_abandon(void *env, void *domain);

#endif
