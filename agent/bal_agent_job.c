#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_agent_job.h"
#include "agent/bal_qmp.h"
#include "agent/bal_stats.h"

static int build_command(const bal_poller_step_t *step, char **cmd, bal_error_t *err)
{
    switch (step->op) {
    case BAL_POLLER_GET_INTERVAL:
        return bal_qmp_build_qom_get(step->path, BAL_QMP_PROP_INTERVAL, cmd, err);
    case BAL_POLLER_SET_INTERVAL:
        return bal_qmp_build_qom_set_int(step->path, BAL_QMP_PROP_INTERVAL, step->value, cmd, err);
    case BAL_POLLER_GET_STATS:
        return bal_qmp_build_qom_get(step->path, BAL_QMP_PROP_STATS, cmd, err);
    case BAL_POLLER_LIST:
        return bal_qmp_build_qom_list(step->path, cmd, err);
    }
    return bal_error_set(err, -EINVAL, "The agent asked for an unknown QMP step.");
}

/* The watch of one command of dom's job (bal_transport.h): bal_jobs' calls. */
typedef struct step_watch {
    bal_jobs_t *jobs;
    bal_job_t *job;
    bal_jobs_call_t *call;
} step_watch_t;

static int watch_begin(void *opaque)
{
    step_watch_t *w = opaque;

    return bal_jobs_call_begin(w->jobs, w->job, &w->call);
}

static bool watch_end(void *opaque)
{
    step_watch_t *w = opaque;

    return bal_jobs_call_end(w->jobs, w->call);
}

/* Sends one step and feeds what came back to the poller. Returns false when the command was abandoned
 * (past the timeout): dom is then the reader's, which finishes the job (bal_agent_job_abandon), and this
 * thread must not touch it. */
static bool run_step(const bal_agent_job_env_t *env, bal_agent_domain_t *dom, const bal_poller_step_t *step)
{
    bal_error_t err = {0};
    bal_poller_reply_t reply = {.outcome = BAL_POLLER_FAILED, .error = &err};
    step_watch_t watched = {.jobs = env->jobs, .job = dom->job};
    bal_call_watch_t watch = {.begin = watch_begin, .end = watch_end, .opaque = &watched};
    bal_stats_t stats;
    char *cmd = NULL, *answer = NULL, *found = NULL;
    int rc;

    if (bal_clock_monotonic_ms(env->clock) > dom->deadline_ms) {
        /* Keeps a cycle over many hung domains within its time bound. */
        bal_error_set(&err, -ETIMEDOUT, "The read cycle ran out of time before domain '%s' was done.",
                      dom->info.name);
        goto out;
    }
    rc = build_command(step, &cmd, &err);
    if (rc < 0)
        goto out;
    rc = bal_transport_execute_watched(env->transport, &dom->info, cmd, &answer, &watch, &err);
    if (rc == -ECANCELED) {
        free(cmd);
        return false;
    }
    if (rc < 0)
        goto out;
    switch (step->op) {
    case BAL_POLLER_GET_INTERVAL:
        rc = bal_qmp_parse_int(answer, strlen(answer), &reply.interval, &err);
        break;
    case BAL_POLLER_SET_INTERVAL:
        rc = bal_qmp_parse_empty(answer, strlen(answer), &err);
        break;
    case BAL_POLLER_GET_STATS:
        rc = bal_qmp_parse_guest_stats(answer, strlen(answer), &stats, &err);
        reply.stats = &stats;
        break;
    case BAL_POLLER_LIST:
        rc = bal_qmp_find_balloon(answer, strlen(answer), step->path, &found, &err);
        if (rc == -ENOENT) /* a list without a balloon is an answer */
            rc = 0;
        reply.found_path = found;
        break;
    }
    if (rc == 0)
        reply.outcome = BAL_POLLER_ANSWERED;
    else if (rc == -EREMOTEIO)
        reply.outcome = BAL_POLLER_QMP_ERROR;
out:
    bal_poller_feed(dom->poller, &reply);
    free(found);
    free(answer);
    free(cmd);
    return true;
}

/* dom's steps from where its poller is, until it has none left or one is abandoned. */
static void run_steps(const bal_agent_job_env_t *env, bal_agent_domain_t *dom)
{
    bal_poller_step_t step;

    while (bal_poller_next(dom->poller, &step))
        if (!run_step(env, dom, &step))
            return;
}

void bal_agent_job_run(void *opaque, void *item)
{
    const bal_agent_job_env_t *env = opaque;
    bal_agent_domain_t *dom = item;

    if (dom->restore)
        bal_poller_begin_restore(dom->poller);
    else
        bal_poller_begin_cycle(dom->poller, dom->info.instance);
    run_steps(env, dom);
}

void bal_agent_job_abandon(void *opaque, void *item)
{
    const bal_agent_job_env_t *env = opaque;
    bal_agent_domain_t *dom = item;
    bal_error_t err = {0};
    bal_poller_reply_t reply = {.outcome = BAL_POLLER_FAILED, .error = &err};
    bal_poller_step_t step;

    bal_error_set(&err, -ETIMEDOUT, "Domain '%s' did not answer a QMP command within %d ms.", dom->info.name,
                  env->timeout_ms);
    bal_poller_feed(dom->poller, &reply);
    bal_transport_refuse_pending(dom->info.name, env->timeout_ms, &err);
    while (bal_poller_next(dom->poller, &step))
        bal_poller_feed(dom->poller, &reply);
}
