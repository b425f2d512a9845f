#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_agent.h"
#include "agent/bal_agent_job.h"
#include "agent/bal_filter.h"
#include "agent/bal_jobs.h"
#include "agent/bal_limits.h"
#include "agent/bal_poller.h"
#include "agent/bal_pool.h"
#include "agent/bal_summary.h"

struct bal_agent {
    bal_agent_job_env_t env; /* the transport, the jobs, the clock and the timeout */
    bal_filter_t *filter;
    bal_pool_t *pool;
    unsigned width;     /* commands in flight at once within a read */
    char *qom_path;
    bal_poller_config_t poller_config;
    bal_logger_t logger;
    void (*on_event)(void *opaque, const bal_event_t *event);
    void (*release_user)(void *opaque, void *user);
    void *event_opaque;
    void **gone_users;  /* slots of the domains dropped during this read, released at its end */
    size_t n_gone, cap_gone;
    int64_t read_budget_ms; /* how long a read waits for answers; 0: for all of them */
    int64_t refresh_ms;
    bool restore_interval;

    bal_agent_domain_t **domains; /* sorted by name */
    size_t n_domains;
    size_t suspect_next; /* where the next read starts looking for suspects to send to, round robin */
    bool listed;        /* the list was had at least once */
    bool refresh_now;
    int64_t next_refresh_ms;
};

static void domain_free(bal_agent_domain_t *dom)
{
    if (dom == NULL)
        return;
    bal_poller_free(dom->poller);
    free(dom->info.name);
    free(dom);
}

/* bal_jobs' release: a domain dropped while its job ran, freed by that job's thread at its end. */
static void release_domain(void *opaque, void *item)
{
    (void)opaque;
    domain_free(item);
}

/* Hands the slots of the domains dropped so far back to the caller. */
static void release_gone(bal_agent_t *agent)
{
    for (size_t i = 0; i < agent->n_gone; i++)
        agent->release_user(agent->event_opaque, agent->gone_users[i]);
    agent->n_gone = 0;
}

/* Keeps a dropped domain's slot for release_gone: the caller may still be holding on to it in this
 * read's callbacks (its identifier in collectd, for one), and lets go once they are over. */
static void keep_gone_user(bal_agent_t *agent, void *user)
{
    if (agent->n_gone == agent->cap_gone) {
        size_t cap = agent->cap_gone != 0 ? 2 * agent->cap_gone : 16;
        void **all = realloc(agent->gone_users, cap * sizeof(*all));

        if (all == NULL) {
            agent->release_user(agent->event_opaque, user); /* out of memory: at once rather than never */
            return;
        }
        agent->gone_users = all;
        agent->cap_gone = cap;
    }
    agent->gone_users[agent->n_gone++] = user;
}

/* Lets go of a domain: now, or when its job in flight ends. Its slot goes back to the caller at the
 * end of the read. */
static void domain_discard(bal_agent_t *agent, bal_agent_domain_t *dom)
{
    if (dom == NULL)
        return;
    if (dom->user != NULL && agent->release_user != NULL)
        keep_gone_user(agent, dom->user);
    dom->user = NULL;
    if (dom->job != NULL)
        bal_jobs_discard(agent->env.jobs, dom->job);
    else
        domain_free(dom);
}

static bal_job_state_t job_state(const bal_agent_t *agent, const bal_agent_domain_t *dom)
{
    return bal_job_state(agent->env.jobs, dom->job);
}

/* Queues dom's job for the round being built: a read cycle (or the shutdown sequence), its steps
 * allowed to start until twice the timeout from now (with the one in flight, about 3 timeouts). */
static bool queue_domain(bal_agent_t *agent, bal_agent_domain_t *dom, bool restore)
{
    if (dom->has_pending) {
        /* listed again while its job ran: a new instance is seen by the poller from now on */
        dom->info.instance = dom->pending_instance;
        memcpy(dom->info.uuid, dom->pending_uuid, sizeof(dom->info.uuid));
        dom->has_pending = false;
    }
    dom->restore = restore;
    dom->deadline_ms = bal_clock_monotonic_ms(agent->env.clock) + 2 * (int64_t)agent->env.timeout_ms;
    return bal_jobs_add(agent->env.jobs, dom->job) == 0;
}

/* Runs the round queued, inside one batch of the transport; returns after at most budget_ms (0: when
 * every job is done). */
static void run_round(bal_agent_t *agent, int64_t budget_ms)
{
    bal_transport_batch_begin(agent->env.transport);
    bal_jobs_run(agent->env.jobs, budget_ms);
    bal_transport_batch_end(agent->env.transport);
}

/* ---- the domain list ---- */

/* A domain first seen, with its poller and its job; NULL when out of memory. */
static bal_agent_domain_t *domain_new(bal_agent_t *agent, const char *name)
{
    bal_agent_domain_t *dom = calloc(1, sizeof(*dom));

    if (dom == NULL)
        return NULL;
    dom->last_interval = -1;
    dom->poller = bal_poller_new(&agent->poller_config, name);
    if (dom->poller != NULL)
        dom->job = bal_job_new(dom);
    if (dom->job == NULL) {
        domain_free(dom);
        return NULL;
    }
    return dom;
}

/* Orders the listing by name, and a name listed twice by its place in the list (the first one counts);
 * a nameless item (none is expected) first, to be skipped. */
static int compare_items(const void *a, const void *b)
{
    const bal_domain_info_t *const *x = a, *const *y = b;
    int c;

    if ((*x)->name == NULL || (*y)->name == NULL)
        c = ((*x)->name != NULL) - ((*y)->name != NULL);
    else
        c = strcmp((*x)->name, (*y)->name);
    if (c == 0)
        c = *x < *y ? -1 : *x > *y; /* both point into the listing's array */
    return c;
}

/* Says what a listing changed, in one line: a QEMU that stopped, started or restarted (a new instance
 * of a known name) is visible in the log, at every listing that finds one. */
/* " ('a' and 'b')", " (among them 'a', 'b' and 'c')" for more than are kept, or "" for none. */
static void change_names(const bal_summary_t *s, char *buf, size_t len)
{
    char names[400];

    buf[0] = '\0';
    if (s->count == 0)
        return;
    bal_summary_names(s, names, sizeof(names));
    snprintf(buf, len, s->count > BAL_SUMMARY_KEPT ? " (among them %s)" : " (%s)", names);
}

static void log_changes(const bal_agent_t *agent, const bal_summary_t *added, const bal_summary_t *gone,
                        const bal_summary_t *restarted)
{
    char a[420], g[420], r[420];

    if (added->count + gone->count + restarted->count == 0)
        return;
    change_names(added, a, sizeof(a));
    change_names(gone, g, sizeof(g));
    change_names(restarted, r, sizeof(r));
    bal_log(&agent->logger, BAL_LOG_INFO, "The domain list changed: %zu new%s, %zu gone%s, %zu restarted%s.",
            added->count, a, gone->count, g, restarted->count, r);
}

/* A new selection being built from a listing: next[j] comes from *src[j] and was agent->domains[old[j]],
 * or is new when old[j] is -1. Owns list, the arrays and the new domains among next[0..n). */
typedef struct selection {
    bal_domain_list_t list;
    bal_domain_info_t **byname; /* the listing in name order */
    bal_agent_domain_t **next;
    bal_domain_info_t **src;
    ssize_t *old;
    size_t n;
} selection_t;

static void selection_free(bal_agent_t *agent, selection_t *sel)
{
    for (size_t j = 0; j < sel->n; j++)
        if (sel->old[j] < 0)
            domain_discard(agent, sel->next[j]);
    free(sel->old);
    free(sel->src);
    free(sel->next);
    free(sel->byname);
    bal_domain_list_free(&sel->list);
}

/* The listing's items in name order (sorted only when the transport did not list them so). */
static int selection_sort(selection_t *sel, bal_error_t *err)
{
    size_t count = sel->list.count;
    bool sorted = true;

    if (count == 0)
        return 0;
    sel->byname = calloc(count, sizeof(*sel->byname));
    sel->next = calloc(count, sizeof(*sel->next));
    sel->src = calloc(count, sizeof(*sel->src));
    sel->old = calloc(count, sizeof(*sel->old));
    if (sel->byname == NULL || sel->next == NULL || sel->src == NULL || sel->old == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory listing domains.");
    for (size_t i = 0; i < count; i++) {
        sel->byname[i] = &sel->list.items[i];
        if (i > 0 && sorted && compare_items(&sel->byname[i - 1], &sel->byname[i]) > 0)
            sorted = false;
    }
    if (!sorted)
        qsort(sel->byname, count, sizeof(*sel->byname), compare_items);
    return 0;
}

/* One merge of the sorted listing with the (sorted) selection: the selected names, each once, the old
 * domain where there is one, a fresh poller where not. */
static int selection_match(bal_agent_t *agent, selection_t *sel, bal_error_t *err)
{
    const char *prev = NULL;
    size_t o = 0;

    for (size_t i = 0; i < sel->list.count; i++) {
        const char *name = sel->byname[i]->name;
        size_t n = sel->n;
        int c = 1;

        if (name == NULL || (prev != NULL && strcmp(prev, name) == 0))
            continue; /* nameless, or listed twice */
        prev = name;
        if (!bal_filter_match(agent->filter, name))
            continue;
        while (o < agent->n_domains && (c = strcmp(agent->domains[o]->info.name, name)) < 0)
            o++;
        sel->src[n] = sel->byname[i];
        sel->old[n] = o < agent->n_domains && c == 0 ? (ssize_t)o : -1;
        sel->next[n] = sel->old[n] >= 0 ? agent->domains[o] : domain_new(agent, name);
        if (sel->next[n] == NULL)
            return bal_error_set(err, -ENOMEM, "Out of memory listing domains.");
        sel->n++;
    }
    return 0;
}

/* Makes sel the agent's selection; nothing fails. A domain that stays takes its new info (when its
 * job is running, after the job: queue_domain); the domains not in sel are discarded. */
static void selection_commit(bal_agent_t *agent, selection_t *sel)
{
    bal_summary_t added, gone, restarted; /* for the log: counted, a few names kept, cleaned */

    bal_summary_clear(&added);
    bal_summary_clear(&gone);
    bal_summary_clear(&restarted);
    for (size_t j = 0; j < sel->n; j++) {
        bal_domain_info_t *item = sel->src[j];
        bal_agent_domain_t *dom = sel->next[j];

        if (sel->old[j] < 0) {
            bal_summary_add(&added, item->name, NULL);
        } else {
            agent->domains[sel->old[j]] = NULL;
            if ((dom->has_pending ? dom->pending_instance : dom->info.instance) != item->instance)
                bal_summary_add(&restarted, item->name, NULL);
            if (job_state(agent, dom) == BAL_JOB_RUNNING) {
                /* its job reads info: taken when the job has ended (queue_domain) */
                dom->has_pending = true;
                dom->pending_instance = item->instance;
                memcpy(dom->pending_uuid, item->uuid, sizeof(dom->pending_uuid));
                continue;
            }
            free(dom->info.name);
            dom->has_pending = false;
        }
        dom->info = *item; /* name, uuid, instance */
        item->name = NULL; /* now the domain's */
    }
    for (size_t j = 0; j < agent->n_domains; j++)
        if (agent->domains[j] != NULL)
            bal_summary_add(&gone, agent->domains[j]->info.name, NULL);
    log_changes(agent, &added, &gone, &restarted);
    for (size_t j = 0; j < agent->n_domains; j++)
        domain_discard(agent, agent->domains[j]);
    free(agent->domains);
    agent->domains = sel->next; /* in name order, as the listing is */
    agent->n_domains = sel->n;
    sel->next = NULL;
    sel->n = 0;
}

/* Lists the running domains and rebuilds the selection: a domain still there keeps its poller (which
 * sees a new instance by itself), a new one gets a fresh poller, a vanished one is dropped. Everything
 * that can fail happens before the old selection is touched. The listing is sorted, so one merge with
 * the (sorted) selection finds the old domains and the duplicates: O(N log N) at worst, O(N) when the
 * transport lists in name order. */
static int refresh_domains(bal_agent_t *agent, bal_error_t *err)
{
    selection_t sel = {0};
    int rc;

    rc = bal_transport_list_domains(agent->env.transport, &sel.list, err);
    if (rc < 0)
        return rc;
    rc = selection_sort(&sel, err);
    if (rc == 0)
        rc = selection_match(agent, &sel, err);
    if (rc == 0) {
        selection_commit(agent, &sel);
        agent->listed = true;
        agent->refresh_now = false;
        agent->next_refresh_ms = bal_clock_monotonic_ms(agent->env.clock) + agent->refresh_ms;
    }
    selection_free(agent, &sel);
    return rc;
}

static bool domain_gone(int code)
{
    return code == -ENOENT || code == -ESHUTDOWN;
}

/* Some command said its domain is gone: list again now, so that a domain that stopped during the cycle
 * is dropped instead of reported as failed. Keeps the old list if listing fails. */
static void drop_gone_domains(bal_agent_t *agent)
{
    bool any = false;

    for (size_t i = 0; i < agent->n_domains && !any; i++) {
        const bal_agent_domain_t *dom = agent->domains[i];
        bal_job_state_t st = job_state(agent, dom);

        /* a job in flight is its thread's: only an ended one is read */
        any = (st == BAL_JOB_DONE || st == BAL_JOB_DONE_LATE) && domain_gone(bal_poller_failure(dom->poller));
    }
    if (!any)
        return;
    agent->refresh_now = true;
    refresh_domains(agent, NULL);
}

static bal_log_level_t severity_level(bal_severity_t severity)
{
    switch (severity) {
    case BAL_SEVERITY_FAILURE:
        return BAL_LOG_ERR;
    case BAL_SEVERITY_WARNING:
        return BAL_LOG_WARNING;
    case BAL_SEVERITY_OKAY:
        break;
    }
    return BAL_LOG_NOTICE;
}

/* Logs a domain's events from this cycle and hands them to on_event. Calling thread only. */
static void deliver_events(const bal_agent_t *agent, bal_agent_domain_t *dom)
{
    const bal_poller_event_t *events;
    size_t n = bal_poller_events(dom->poller, &events);

    for (size_t i = 0; i < n; i++) {
        bal_event_t ev = {
            .kind = events[i].kind,
            .severity = events[i].severity,
            .domain = dom->info.name,
            .uuid = dom->info.uuid,
            .message = events[i].message,
            .user = &dom->user,
        };
        bal_log(&agent->logger, severity_level(ev.severity), "%s", ev.message);
        if (agent->on_event != NULL)
            agent->on_event(agent->event_opaque, &ev);
    }
}

/* Builds a read's round: every domain whose job is not in flight, the suspects (slow or timed out the
 * last time) last, so that the others' answers come first; and, when the read has a budget, a suspect
 * only while fewer than `width` jobs are still late. So the known stalled peers hold at most `width`
 * threads, and the pool keeps room beyond them for each read's own (pool_max_threads). Suspects take
 * turns, round robin. */
static void queue_read(bal_agent_t *agent)
{
    size_t late = bal_jobs_late(agent->env.jobs), n = agent->n_domains;
    size_t room = agent->read_budget_ms <= 0 ? SIZE_MAX : agent->width > late ? agent->width - late : 0;
    size_t start = n > 0 ? agent->suspect_next % n : 0;

    for (size_t i = 0; i < n; i++) {
        bal_agent_domain_t *dom = agent->domains[i];

        dom->in_cycle = true;
        dom->skipped = false;
        if (!dom->suspect && job_state(agent, dom) == BAL_JOB_IDLE)
            queue_domain(agent, dom, false);
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        bal_agent_domain_t *dom = agent->domains[i];

        if (!dom->suspect || job_state(agent, dom) != BAL_JOB_IDLE)
            continue;
        if (room == 0) {
            dom->skipped = true;
            continue;
        }
        if (queue_domain(agent, dom, false))
            room--;
        agent->suspect_next = i + 1;
    }
}

/* dom's sample for this read, in *sample (message room for a late one in buf): its job's outcome when
 * the job has ended, else a LATE sample. Returns true when it is the job's outcome, whose events are
 * then to be delivered. Takes the outcome: the domain's next job may be queued. */
static bool take_sample(bal_agent_t *agent, bal_agent_domain_t *dom, bal_sample_t *sample, char *buf, size_t len)
{
    bal_job_state_t st = job_state(agent, dom);

    memset(sample, 0, sizeof(*sample));
    if (st == BAL_JOB_DONE || st == BAL_JOB_DONE_LATE) {
        bal_poller_result(dom->poller, sample);
        dom->suspect = st == BAL_JOB_DONE_LATE || bal_poller_failure(dom->poller) == -ETIMEDOUT;
        dom->last_interval = sample->polling_interval_s;
    } else {
        sample->state = BAL_STATE_LATE;
        sample->polling_interval_s = dom->last_interval;
        sample->error = buf;
        if (st == BAL_JOB_RUNNING) {
            dom->suspect = true;
            snprintf(buf, len, "Domain '%s' did not answer within the read's %lld ms; its command is still out, "
                     "and a later read takes its answer.", dom->info.name, (long long)agent->read_budget_ms);
        } else if (dom->skipped) {
            snprintf(buf, len, "Domain '%s' was not read: it was slow to answer before, and the commands of other "
                     "slow domains are still out.", dom->info.name);
        } else {
            snprintf(buf, len, "Domain '%s' was not read: the read's %lld ms ran out before its turn.",
                     dom->info.name, (long long)agent->read_budget_ms);
        }
    }
    sample->name = dom->info.name;
    sample->uuid = dom->info.uuid;
    sample->user = &dom->user;
    bal_job_take(agent->env.jobs, dom->job);
    return sample->state != BAL_STATE_LATE;
}

int bal_agent_read(bal_agent_t *agent, bal_sample_cb cb, void *opaque, bal_error_t *err)
{
    bal_error_t failure = {0}; /* the first domain that could not be read */
    int read = 0;
    size_t delivered = 0;
    int rc;

    if (agent == NULL)
        return bal_error_set(err, -EINVAL, "No agent was given to read with.");
    bal_jobs_expire(agent->env.jobs); /* a late job whose command is past its timeout ends now */
    if (bal_transport_take_changes(agent->env.transport))
        agent->refresh_now = true;
    if (!agent->listed || agent->refresh_now || bal_clock_monotonic_ms(agent->env.clock) >= agent->next_refresh_ms) {
        rc = refresh_domains(agent, err);
        if (rc < 0)
            return rc;
    }
    queue_read(agent);
    run_round(agent, agent->read_budget_ms);
    drop_gone_domains(agent);

    for (size_t i = 0; i < agent->n_domains; i++) {
        bal_agent_domain_t *dom = agent->domains[i];
        char late[384];
        bal_sample_t sample;
        bool answered;

        if (!dom->in_cycle)
            continue; /* appeared in the list taken after the round: read next cycle */
        delivered++;
        answered = take_sample(agent, dom, &sample, late, sizeof(late));
        if (sample.state != BAL_STATE_FAILED && sample.state != BAL_STATE_LATE)
            read++;
        else if (failure.code == 0)
            bal_error_set(&failure, sample.state == BAL_STATE_LATE ? -ETIMEDOUT : bal_poller_failure(dom->poller),
                          "%s", sample.error);
        if (answered)
            deliver_events(agent, dom);
        if (cb != NULL)
            cb(opaque, &sample);
    }
    release_gone(agent);
    if (read == 0 && failure.code != 0)
        return bal_error_set(err, failure.code, "None of the %zu selected domains could be read. %s", delivered,
                             failure.message);
    return read;
}

/* On shutdown: the jobs still in flight end first (at their timeout at the latest); then every domain
 * whose interval we changed gets its original back, concurrently, within about 3 timeouts. Failures
 * are logged, there is nobody left to return them to: one line each for a few, one line for many (a
 * stall of every guest must not write thousands). */
static void restore_intervals(bal_agent_t *agent)
{
    bal_summary_t failed;
    char names[512];

    bal_summary_clear(&failed);
    bal_jobs_drain(agent->env.jobs);
    for (size_t i = 0; i < agent->n_domains; i++) {
        bal_agent_domain_t *dom = agent->domains[i];
        bal_job_state_t st = job_state(agent, dom);

        if (st == BAL_JOB_DONE || st == BAL_JOB_DONE_LATE)
            deliver_events(agent, dom); /* an answer that came after the last read */
        bal_job_take(agent->env.jobs, dom->job);
        queue_domain(agent, dom, true);
    }
    run_round(agent, 0);
    for (size_t i = 0; i < agent->n_domains; i++) {
        bal_agent_domain_t *dom = agent->domains[i];
        bal_sample_t sample;

        if (job_state(agent, dom) != BAL_JOB_DONE)
            continue; /* not queued: out of memory */
        deliver_events(agent, dom);
        bal_poller_result(dom->poller, &sample);
        if (sample.error != NULL)
            bal_summary_add(&failed, dom->info.name, sample.error);
        bal_job_take(agent->env.jobs, dom->job);
    }
    if (failed.count <= BAL_SUMMARY_KEPT) {
        for (size_t i = 0; i < failed.count; i++)
            bal_log(&agent->logger, BAL_LOG_WARNING, "%s", failed.kept[i].detail);
    } else {
        bal_log(&agent->logger, BAL_LOG_WARNING,
                "The polling interval could not be put back for %zu domains, among them %s. The first "
                "error: %s",
                failed.count, bal_summary_names(&failed, names, sizeof(names)), failed.kept[0].detail);
    }
}

void bal_agent_free(bal_agent_t *agent)
{
    if (agent == NULL)
        return;
    if (agent->env.jobs != NULL) {
        if (agent->restore_interval && agent->env.transport != NULL)
            restore_intervals(agent);
        bal_jobs_drain(agent->env.jobs);
    }
    for (size_t i = 0; i < agent->n_domains; i++)
        domain_discard(agent, agent->domains[i]);
    release_gone(agent);
    free(agent->gone_users);
    free(agent->domains);
    bal_jobs_free(agent->env.jobs);
    bal_pool_free(agent->pool);
    bal_transport_free(agent->env.transport);
    bal_filter_free(agent->filter);
    free(agent->qom_path);
    free(agent);
}

/* The pool's threads: width for a read, and room for the jobs still late from earlier reads. A known
 * stalled peer is asked only while fewer than width are late (queue_read); a peer that stalls for the
 * first time is not known, and each read may leave width more late, for as long as a job can last
 * (about 4 timeouts). Started only when needed; none beyond width without a read budget, since then
 * nothing is ever late. */
#define MAX_POOL_THREADS 256
static unsigned pool_max_threads(unsigned width, int timeout_ms, int64_t read_budget_ms)
{
    int64_t reads, n;

    if (read_budget_ms <= 0)
        return width;
    reads = (4 * (int64_t)timeout_ms + read_budget_ms - 1) / read_budget_ms;
    n = (int64_t)width * (2 + reads);
    if (n > MAX_POOL_THREADS)
        n = MAX_POOL_THREADS > 2 * width ? MAX_POOL_THREADS : 2 * (int64_t)width;
    return (unsigned)n;
}

int bal_agent_new_with_transport(const bal_agent_config_t *config, bal_transport_t *transport,
                                 bal_agent_t **out, bal_error_t *err)
{
    bal_agent_t *agent = NULL;
    int rc;

    rc = bal_agent_check_config(config, err);
    if (rc < 0)
        goto fail;
    if (transport == NULL) {
        rc = bal_error_set(err, -EINVAL, "No transport was given to the agent.");
        goto fail;
    }
    agent = calloc(1, sizeof(*agent));
    if (agent == NULL) {
        rc = bal_error_set(err, -ENOMEM, "Out of memory creating the agent.");
        goto fail;
    }
    agent->env.transport = transport;
    transport = NULL;
    rc = bal_filter_new(config->domains, config->n_domains, config->ignore_selected, &agent->filter,
                        err);
    if (rc < 0)
        goto fail;
    agent->width = config->concurrency != 0 ? config->concurrency : BAL_LIMIT_CONCURRENCY_DEFAULT;
    agent->env.timeout_ms = config->timeout_ms != 0 ? config->timeout_ms : BAL_LIMIT_TIMEOUT_MS_DEFAULT;
    agent->read_budget_ms = config->read_budget_ms;
    rc = bal_pool_new(agent->width, pool_max_threads(agent->width, agent->env.timeout_ms, agent->read_budget_ms),
                      &agent->pool, err);
    if (rc < 0)
        goto fail;
    rc = bal_jobs_new(agent->pool, agent->width, agent->env.timeout_ms, bal_agent_job_run, release_domain,
                      bal_agent_job_abandon, &agent->env, &agent->env.jobs, err);
    if (rc < 0)
        goto fail;
    if (config->qom_path != NULL) {
        agent->qom_path = strdup(config->qom_path);
        if (agent->qom_path == NULL) {
            rc = bal_error_set(err, -ENOMEM, "Out of memory creating the agent.");
            goto fail;
        }
    }
    agent->env.clock = config->clock != NULL ? config->clock : bal_clock_system();
    agent->poller_config = (bal_poller_config_t){
        .qom_path = agent->qom_path,
        .polling_interval_s = config->polling_interval_s,
        .observe_only = config->observe_only,
        .stale_after = config->stale_after,
        .verify_every = config->verify_every,
        .clock = agent->env.clock,
    };
    agent->logger = config->logger;
    agent->on_event = config->on_event;
    agent->release_user = config->release_user;
    agent->event_opaque = config->event_opaque;
    agent->refresh_ms =
        (int64_t)(config->refresh_interval_s != 0 ? config->refresh_interval_s
                                                  : BAL_LIMIT_REFRESH_INTERVAL_DEFAULT) * 1000;
    agent->restore_interval = config->restore_interval && !config->observe_only;
    *out = agent;
    return 0;
fail:
    bal_transport_free(transport);
    if (agent != NULL)
        agent->restore_interval = false;
    bal_agent_free(agent);
    return rc;
}
