#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_agent.h"
#include "agent/bal_filter.h"
#include "agent/bal_libvirt.h"
#include "agent/bal_limits.h"
#include "agent/bal_poller.h"
#include "agent/bal_pool.h"
#include "agent/bal_qmp.h"
#include "agent/bal_qmp_socket.h"
#include "agent/bal_summary.h"

#define DEFAULT_CONCURRENCY 5 /* libvirtd's max_client_requests */
#define DEFAULT_REFRESH_S 60
#define DEFAULT_TIMEOUT_MS 5000

typedef struct domain {
    bal_domain_info_t info; /* name owned */
    bal_poller_t *poller;
    bool in_cycle;          /* begun in this read; false for one listed again mid-cycle */
} domain_t;

struct bal_agent {
    bal_transport_t *transport;
    bal_filter_t *filter;
    bal_pool_t *pool;
    char *qom_path;
    bal_poller_config_t poller_config;
    bal_logger_t logger;
    void (*on_event)(void *opaque, const bal_event_t *event);
    void *event_opaque;
    const bal_clock_t *clock;
    int timeout_ms;
    int64_t refresh_ms;
    bool restore_interval;

    domain_t **domains; /* sorted by name */
    size_t n_domains;
    bool listed;        /* the list was had at least once */
    bool refresh_now;
    int64_t next_refresh_ms;
};

/* One domain's share of a cycle, run on a pool thread. */
typedef struct job {
    const bal_agent_t *agent;
    domain_t *dom;
    int64_t deadline_ms;
} job_t;

static const char *const state_names[] = {
    [BAL_STATE_OK] = "ok",
    [BAL_STATE_NEVER_ANSWERED] = "never answered",
    [BAL_STATE_STALE] = "stale",
    [BAL_STATE_NO_BALLOON] = "no balloon",
    [BAL_STATE_FAILED] = "failed",
};

const char *bal_domain_state_name(bal_domain_state_t state)
{
    if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
        return "unknown";
    return state_names[state];
}

int bal_agent_check_selector(const char *selector, bal_error_t *err)
{
    return bal_filter_check_selector(selector, err);
}

static int64_t monotonic_ms(const bal_agent_t *agent)
{
    return agent->clock->monotonic_ms(agent->clock->opaque);
}

static void domain_free(domain_t *dom)
{
    if (dom == NULL)
        return;
    bal_poller_free(dom->poller);
    free(dom->info.name);
    free(dom);
}

/* ---- one domain's commands, on a pool thread ---- */

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

/* Sends one step and feeds what came back to the poller. */
static void run_step(const job_t *job, const bal_poller_step_t *step)
{
    const bal_agent_t *agent = job->agent;
    domain_t *dom = job->dom;
    bal_error_t err = {0};
    bal_poller_reply_t reply = {.outcome = BAL_POLLER_FAILED, .error = &err};
    bal_stats_t stats;
    char *cmd = NULL, *answer = NULL, *found = NULL;
    int rc;

    if (monotonic_ms(agent) > job->deadline_ms) {
        /* Keeps a cycle over many hung domains within its time bound. */
        bal_error_set(&err, -ETIMEDOUT, "The read cycle ran out of time before domain '%s' was done.",
                      dom->info.name);
        goto out;
    }
    rc = build_command(step, &cmd, &err);
    if (rc < 0)
        goto out;
    rc = bal_transport_execute(agent->transport, &dom->info, cmd, &answer, &err);
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
}

static void run_job(void *opaque)
{
    const job_t *job = opaque;
    bal_poller_step_t step;

    while (bal_poller_next(job->dom->poller, &step))
        run_step(job, &step);
}

/* A cycle's domains, shared by the pool's workers: each takes the next domain not taken yet, so a
 * batch costs one pool job per worker, not one per domain. */
typedef struct batch {
    const bal_agent_t *agent;
    int64_t deadline_ms;
    atomic_size_t next;
} batch_t;

static void run_worker(void *opaque)
{
    batch_t *batch = opaque;
    const bal_agent_t *agent = batch->agent;

    for (;;) {
        size_t i = atomic_fetch_add_explicit(&batch->next, 1, memory_order_relaxed);
        job_t job;

        if (i >= agent->n_domains)
            break;
        job = (job_t){.agent = agent, .dom = agent->domains[i], .deadline_ms = batch->deadline_ms};
        run_job(&job);
    }
}

/* Runs every domain's poller (already begun) through the pool and waits for all of them. */
static void run_batch(bal_agent_t *agent)
{
    batch_t batch = {.agent = agent};
    unsigned workers;

    if (agent->n_domains == 0)
        return;
    /* Steps starting after twice the timeout fail at once: with the one in flight, about 3 timeouts. */
    batch.deadline_ms = monotonic_ms(agent) + 2 * (int64_t)agent->timeout_ms;
    atomic_init(&batch.next, 0);
    workers = bal_pool_threads(agent->pool);
    if (workers > agent->n_domains)
        workers = (unsigned)agent->n_domains;
    bal_transport_batch(agent->transport, true);
    for (unsigned w = 0; w < workers; w++)
        bal_pool_submit(agent->pool, run_worker, &batch);
    bal_pool_wait(agent->pool);
    bal_transport_batch(agent->transport, false);
}

/* ---- the domain list ---- */

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

/* Lists the running domains and rebuilds the selection: a domain still there keeps its poller (which
 * sees a new instance by itself), a new one gets a fresh poller, a vanished one is dropped. Everything
 * that can fail happens before the old selection is touched. The listing is sorted, so one merge with
 * the (sorted) selection finds the old domains and the duplicates: O(N log N) at worst, O(N) when the
 * transport lists in name order. */
static int refresh_domains(bal_agent_t *agent, bal_error_t *err)
{
    bal_domain_list_t list = {0};
    bal_domain_info_t **byname = NULL; /* the listing in name order */
    domain_t **next = NULL;
    bal_domain_info_t **src = NULL; /* next[j] comes from *src[j] */
    ssize_t *old = NULL;            /* ... and was agent->domains[old[j]], or -1 when new */
    size_t n = 0, o = 0;
    const char *prev = NULL;
    bool sorted = true;
    int rc;

    rc = bal_transport_list_domains(agent->transport, &list, err);
    if (rc < 0)
        return rc;
    if (list.count > 0) {
        byname = calloc(list.count, sizeof(*byname));
        next = calloc(list.count, sizeof(*next));
        src = calloc(list.count, sizeof(*src));
        old = calloc(list.count, sizeof(*old));
        if (byname == NULL || next == NULL || src == NULL || old == NULL) {
            rc = bal_error_set(err, -ENOMEM, "Out of memory listing domains.");
            goto out;
        }
    }
    for (size_t i = 0; i < list.count; i++) {
        byname[i] = &list.items[i];
        if (i > 0 && sorted && compare_items(&byname[i - 1], &byname[i]) > 0)
            sorted = false;
    }
    if (!sorted)
        qsort(byname, list.count, sizeof(*byname), compare_items);
    for (size_t i = 0; i < list.count; i++) {
        const char *name = byname[i]->name;
        int c = 1;

        if (name == NULL || (prev != NULL && strcmp(prev, name) == 0))
            continue; /* nameless, or listed twice */
        prev = name;
        if (!bal_filter_match(agent->filter, name))
            continue;
        while (o < agent->n_domains && (c = strcmp(agent->domains[o]->info.name, name)) < 0)
            o++;
        src[n] = byname[i];
        old[n] = o < agent->n_domains && c == 0 ? (ssize_t)o : -1;
        if (old[n] >= 0) {
            next[n] = agent->domains[o];
            n++;
            continue;
        }
        next[n] = calloc(1, sizeof(**next));
        if (next[n] != NULL)
            next[n]->poller = bal_poller_new(&agent->poller_config, name);
        if (next[n] == NULL || next[n]->poller == NULL) {
            domain_free(next[n]);
            rc = bal_error_set(err, -ENOMEM, "Out of memory listing domains.");
            goto out;
        }
        n++;
    }

    /* Commit: nothing fails from here on. next is in name order, as the listing is. */
    for (size_t j = 0; j < n; j++) {
        bal_domain_info_t *item = src[j];
        if (old[j] >= 0) {
            free(next[j]->info.name);
            agent->domains[old[j]] = NULL;
        }
        next[j]->info = *item; /* name, uuid, instance */
        item->name = NULL;     /* now the domain's */
    }
    for (size_t j = 0; j < agent->n_domains; j++)
        domain_free(agent->domains[j]);
    free(agent->domains);
    agent->domains = next;
    agent->n_domains = n;
    next = NULL;
    n = 0;
    agent->listed = true;
    agent->refresh_now = false;
    agent->next_refresh_ms = monotonic_ms(agent) + agent->refresh_ms;
out:
    for (size_t j = 0; j < n; j++)
        if (old[j] < 0)
            domain_free(next[j]);
    free(old);
    free(src);
    free(next);
    free(byname);
    bal_domain_list_free(&list);
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

    for (size_t i = 0; i < agent->n_domains && !any; i++)
        any = domain_gone(bal_poller_failure(agent->domains[i]->poller));
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
static void deliver_events(const bal_agent_t *agent, const domain_t *dom)
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
        };
        bal_log(&agent->logger, severity_level(ev.severity), "%s", ev.message);
        if (agent->on_event != NULL)
            agent->on_event(agent->event_opaque, &ev);
    }
}

int bal_agent_read(bal_agent_t *agent, bal_sample_cb cb, void *opaque, bal_error_t *err)
{
    const domain_t *first_failed = NULL;
    int read = 0;
    size_t delivered = 0;
    int rc;

    if (agent == NULL)
        return bal_error_set(err, -EINVAL, "No agent was given to read with.");
    if (bal_transport_take_changes(agent->transport))
        agent->refresh_now = true;
    if (!agent->listed || agent->refresh_now || monotonic_ms(agent) >= agent->next_refresh_ms) {
        rc = refresh_domains(agent, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < agent->n_domains; i++) {
        bal_poller_begin_cycle(agent->domains[i]->poller, agent->domains[i]->info.instance);
        agent->domains[i]->in_cycle = true;
    }
    run_batch(agent);
    drop_gone_domains(agent);

    for (size_t i = 0; i < agent->n_domains; i++) {
        const domain_t *dom = agent->domains[i];
        bal_sample_t sample;

        if (!dom->in_cycle)
            continue; /* appeared in the list taken after the batch: read next cycle */
        memset(&sample, 0, sizeof(sample));
        delivered++;
        bal_poller_result(dom->poller, &sample);
        sample.name = dom->info.name;
        sample.uuid = dom->info.uuid;
        if (sample.state == BAL_STATE_FAILED) {
            if (first_failed == NULL)
                first_failed = dom;
        } else {
            read++;
        }
        deliver_events(agent, dom);
        if (cb != NULL)
            cb(opaque, &sample);
    }
    if (read == 0 && first_failed != NULL) {
        bal_sample_t sample;
        bal_poller_result(first_failed->poller, &sample);
        return bal_error_set(err, bal_poller_failure(first_failed->poller),
                             "None of the %zu selected domains could be read. %s", delivered,
                             sample.error);
    }
    return read;
}

/* On shutdown: every domain whose interval we changed gets its original back, concurrently, within
 * about 3 timeouts. Failures are logged, there is nobody left to return them to: one line each for a
 * few, one line for many (a stall of every guest must not write thousands). */
static void restore_intervals(bal_agent_t *agent)
{
    bal_summary_t failed;
    char names[512];

    bal_summary_clear(&failed);
    for (size_t i = 0; i < agent->n_domains; i++)
        bal_poller_begin_restore(agent->domains[i]->poller);
    run_batch(agent);
    for (size_t i = 0; i < agent->n_domains; i++) {
        const domain_t *dom = agent->domains[i];
        bal_sample_t sample;

        deliver_events(agent, dom);
        bal_poller_result(dom->poller, &sample);
        if (sample.error != NULL)
            bal_summary_add(&failed, dom->info.name, sample.error);
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
    if (agent->restore_interval && agent->pool != NULL && agent->transport != NULL)
        restore_intervals(agent);
    bal_pool_free(agent->pool);
    for (size_t i = 0; i < agent->n_domains; i++)
        domain_free(agent->domains[i]);
    free(agent->domains);
    bal_transport_free(agent->transport);
    bal_filter_free(agent->filter);
    free(agent->qom_path);
    free(agent);
}

/* Everything bal_agent_new checks before it opens anything. */
static int check_config(const bal_agent_config_t *config, bal_error_t *err)
{
    int rc;

    if (config == NULL)
        return bal_error_set(err, -EINVAL, "No agent configuration was given.");
    /* The ranges are bal_limits.h's; 0 stands for the default where there is one. */
    if (config->polling_interval_s < 0 || config->polling_interval_s > BAL_LIMIT_POLLING_INTERVAL_MAX)
        return bal_error_set(err, -EINVAL,
                             "The polling interval %lld s is out of range: it must be between 0 and "
                             "%lld seconds.",
                             (long long)config->polling_interval_s,
                             (long long)BAL_LIMIT_POLLING_INTERVAL_MAX);
    if (config->concurrency > BAL_LIMIT_CONCURRENCY_MAX)
        return bal_error_set(err, -EINVAL,
                             "The concurrency %u is out of range: it must be between %d and %d.",
                             config->concurrency, BAL_LIMIT_CONCURRENCY_MIN, BAL_LIMIT_CONCURRENCY_MAX);
    if (config->refresh_interval_s > BAL_LIMIT_REFRESH_INTERVAL_MAX)
        return bal_error_set(err, -EINVAL,
                             "The refresh interval %u s is out of range: it must be between %d and %d "
                             "seconds.",
                             config->refresh_interval_s, BAL_LIMIT_REFRESH_INTERVAL_MIN,
                             BAL_LIMIT_REFRESH_INTERVAL_MAX);
    if (config->stale_after > BAL_LIMIT_STALE_AFTER_MAX)
        return bal_error_set(err, -EINVAL,
                             "The stale-after count %u is out of range: it must be between %d and %d.",
                             config->stale_after, BAL_LIMIT_STALE_AFTER_MIN, BAL_LIMIT_STALE_AFTER_MAX);
    if (config->timeout_ms < 0)
        return bal_error_set(err, -EINVAL, "The timeout %d ms is negative.", config->timeout_ms);
    if (config->qom_path != NULL) {
        /* Refused before anything is sent: the path goes into every command. */
        rc = bal_qmp_check_path(config->qom_path, err);
        if (rc < 0)
            return rc;
    }
    if (config->n_domains > 0 && config->domains == NULL)
        return bal_error_set(err, -EINVAL, "The domain selectors are missing.");
    for (size_t i = 0; i < config->n_domains; i++) {
        rc = bal_filter_check_selector(config->domains[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int bal_agent_new_with_transport(const bal_agent_config_t *config, bal_transport_t *transport,
                                 bal_agent_t **out, bal_error_t *err)
{
    bal_agent_t *agent = NULL;
    int rc;

    rc = check_config(config, err);
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
    agent->transport = transport;
    transport = NULL;
    rc = bal_filter_new(config->domains, config->n_domains, config->ignore_selected, &agent->filter,
                        err);
    if (rc < 0)
        goto fail;
    rc = bal_pool_new(config->concurrency != 0 ? config->concurrency : DEFAULT_CONCURRENCY,
                      &agent->pool, err);
    if (rc < 0)
        goto fail;
    if (config->qom_path != NULL) {
        agent->qom_path = strdup(config->qom_path);
        if (agent->qom_path == NULL) {
            rc = bal_error_set(err, -ENOMEM, "Out of memory creating the agent.");
            goto fail;
        }
    }
    agent->clock = config->clock != NULL ? config->clock : bal_clock_system();
    agent->poller_config = (bal_poller_config_t){
        .qom_path = agent->qom_path,
        .polling_interval_s = config->polling_interval_s,
        .observe_only = config->observe_only,
        .stale_after = config->stale_after,
        .verify_every = config->verify_every,
        .clock = agent->clock,
    };
    agent->logger = config->logger;
    agent->on_event = config->on_event;
    agent->event_opaque = config->event_opaque;
    agent->timeout_ms = config->timeout_ms != 0 ? config->timeout_ms : DEFAULT_TIMEOUT_MS;
    agent->refresh_ms =
        (int64_t)(config->refresh_interval_s != 0 ? config->refresh_interval_s : DEFAULT_REFRESH_S) * 1000;
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

static bal_transport_t *open_transport(const bal_agent_config_t *config, int timeout_ms, bal_error_t *err)
{
    switch (config->transport) {
    case BAL_TRANSPORT_LIBVIRT:
        return bal_libvirt_transport_new(config->libvirt_uri, timeout_ms, &config->logger, config->clock,
                                         err);
    case BAL_TRANSPORT_QMP_DIR:
        if (config->qmp_dir == NULL || config->qmp_dir[0] == '\0') {
            bal_error_set(err, -EINVAL, "The QMP socket transport needs a directory.");
            return NULL;
        }
        return bal_qmp_socket_transport_new_dir(config->qmp_dir, timeout_ms, &config->logger, err);
    case BAL_TRANSPORT_QMP_SOCKETS:
        if (config->n_sockets == 0 || config->sockets == NULL) {
            bal_error_set(err, -EINVAL, "The QMP socket transport needs at least one socket.");
            return NULL;
        }
        return bal_qmp_socket_transport_new_pairs(config->sockets, config->n_sockets, timeout_ms,
                                                  &config->logger, err);
    }
    bal_error_set(err, -EINVAL, "The transport %d is not one the agent knows.", (int)config->transport);
    return NULL;
}

int bal_agent_new(const bal_agent_config_t *config, bal_agent_t **out, bal_error_t *err)
{
    bal_transport_t *transport;
    bal_error_t local = {0};
    int rc;

    /* Validate first: a bad selector or a hostile path must not even open a connection. */
    rc = check_config(config, err);
    if (rc < 0)
        return rc;
    transport = open_transport(config, config->timeout_ms != 0 ? config->timeout_ms : DEFAULT_TIMEOUT_MS,
                               &local);
    if (transport == NULL) {
        if (local.code >= 0)
            bal_error_set(&local, -EIO, "The transport could not be opened.");
        if (err != NULL)
            *err = local;
        return local.code;
    }
    return bal_agent_new_with_transport(config, transport, out, err);
}
