/* The scripted agent (see test_plugin_agent.h). */
#include "tests/test_plugin_agent.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fa_sample {
    bal_sample_t sample;
    char name[256];
    char uuid[64];
    char error[256];
    bool has_error;
} fa_sample_t;

typedef struct fa_event {
    bal_event_kind_t kind;
    bal_severity_t severity;
    char domain[256];
    char uuid[64];
    char message[256];
} fa_event_t;

typedef struct fa_log {
    bal_log_level_t level;
    char message[256];
} fa_log_t;

/* A domain's slot for the plugin (bal_sample_t.user), kept as the agent keeps it: while the domain
 * comes up in the reads, given back at the end of the first read it is not in, or on free. */
typedef struct fa_slot {
    char name[256];
    void *user;
    bool seen; /* in the current read */
} fa_slot_t;

struct bal_agent {
    bal_logger_t logger;
    void (*on_event)(void *opaque, const bal_event_t *event);
    void (*release_user)(void *opaque, void *user);
    void *event_opaque;
    bool restore_interval;
    fa_slot_t slots[FA_MAX_SAMPLES + FA_MAX]; /* each agent its own, as each block has its own */
    size_t n_slots;
};

static struct {
    fa_config_t config;
    int new_status;
    unsigned new_ok;
    char new_message[256];
    int read_status;
    char read_message[256];
    fa_sample_t samples[FA_MAX_SAMPLES];
    size_t n_samples;
    fa_event_t events[FA_MAX];
    size_t n_events;
    fa_log_t logs[FA_MAX];
    size_t n_logs;
    unsigned n_new, n_read, n_free;
    int n_alive;
} fa;

static void fa_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

void fa_reset(void)
{
    memset(&fa, 0, sizeof(fa));
}

void fa_set_new_status(int status, const char *message, unsigned n_ok)
{
    fa.new_ok = n_ok;
    fa.new_status = status;
    fa_copy(fa.new_message, sizeof(fa.new_message), message);
}

void fa_set_read_status(int status, const char *message)
{
    fa.read_status = status;
    fa_copy(fa.read_message, sizeof(fa.read_message), message);
}

void fa_add_sample(const bal_sample_t *sample)
{
    fa_sample_t *s;

    if (fa.n_samples == FA_MAX_SAMPLES)
        abort();
    s = &fa.samples[fa.n_samples++];
    s->sample = *sample;
    fa_copy(s->name, sizeof(s->name), sample->name);
    fa_copy(s->uuid, sizeof(s->uuid), sample->uuid);
    s->has_error = sample->error != NULL;
    fa_copy(s->error, sizeof(s->error), sample->error);
}

void fa_clear_samples(void)
{
    fa.n_samples = 0;
}

void fa_add_event(bal_event_kind_t kind, bal_severity_t severity, const char *domain, const char *uuid,
                  const char *message)
{
    fa_event_t *e;

    if (fa.n_events == FA_MAX)
        abort();
    e = &fa.events[fa.n_events++];
    e->kind = kind;
    e->severity = severity;
    fa_copy(e->domain, sizeof(e->domain), domain);
    fa_copy(e->uuid, sizeof(e->uuid), uuid);
    fa_copy(e->message, sizeof(e->message), message);
}

void fa_add_log(bal_log_level_t level, const char *message)
{
    if (fa.n_logs == FA_MAX)
        abort();
    fa.logs[fa.n_logs].level = level;
    fa_copy(fa.logs[fa.n_logs].message, sizeof(fa.logs[fa.n_logs].message), message);
    fa.n_logs++;
}

const fa_config_t *fa_config(void)
{
    return &fa.config;
}

unsigned fa_n_new(void)
{
    return fa.n_new;
}

unsigned fa_n_read(void)
{
    return fa.n_read;
}

unsigned fa_n_free(void)
{
    return fa.n_free;
}

int fa_n_alive(void)
{
    return fa.n_alive;
}

bal_sample_t fa_sample(const char *name, const char *uuid, unsigned n_stats, uint64_t base,
                       int64_t last_update, bool fresh)
{
    bal_sample_t s;

    memset(&s, 0, sizeof(s));
    s.name = name;
    s.uuid = uuid;
    s.state = last_update > 0 ? BAL_STATE_OK : BAL_STATE_NEVER_ANSWERED;
    s.has_stats = last_update > 0;
    s.fresh = fresh;
    s.polling_interval_s = 10; /* what the agent knows once it has read or set it */
    bal_stats_clear(&s.stats);
    for (unsigned i = 0; i < n_stats && i < BAL_STAT_COUNT; i++) {
        s.stats.stat[i].set = true;
        s.stats.stat[i].value = base + i;
    }
    s.stats.known = n_stats;
    s.stats.last_update = last_update;
    return s;
}

/* name's slot, made on first sight; hint: where it was the last time, tried first. */
static void **fa_slot(bal_agent_t *a, const char *name, size_t hint)
{
    fa_slot_t *s = NULL;

    if (hint < a->n_slots && strcmp(a->slots[hint].name, name) == 0)
        s = &a->slots[hint];
    for (size_t i = 0; s == NULL && i < a->n_slots; i++)
        if (strcmp(a->slots[i].name, name) == 0)
            s = &a->slots[i];
    if (s == NULL) {
        if (a->n_slots == sizeof(a->slots) / sizeof(a->slots[0]))
            abort();
        s = &a->slots[a->n_slots++];
        memset(s, 0, sizeof(*s));
        fa_copy(s->name, sizeof(s->name), name);
    }
    s->seen = true;
    return &s->user;
}

/* At the end of a read: the slots of the domains it did not have go back (all of them: on free). */
static void fa_release_slots(bal_agent_t *agent, bool all)
{
    size_t kept = 0;

    for (size_t i = 0; i < agent->n_slots; i++) {
        fa_slot_t *s = &agent->slots[i];

        if (s->seen && !all) {
            s->seen = false;
            if (kept != i)
                agent->slots[kept] = *s;
            kept++;
        } else if (s->user != NULL && agent->release_user != NULL) {
            agent->release_user(agent->event_opaque, s->user);
        }
    }
    agent->n_slots = kept;
}

static void fa_record_config(const bal_agent_config_t *c, const bal_open_config_t *o)
{
    fa_config_t *r = &fa.config;

    memset(r, 0, sizeof(*r));
    r->transport = o->transport;
    r->has_uri = o->libvirt_uri != NULL;
    fa_copy(r->libvirt_uri, sizeof(r->libvirt_uri), o->libvirt_uri);
    r->has_qmp_dir = o->qmp_dir != NULL;
    fa_copy(r->qmp_dir, sizeof(r->qmp_dir), o->qmp_dir);
    r->has_qom_path = c->qom_path != NULL;
    fa_copy(r->qom_path, sizeof(r->qom_path), c->qom_path);
    r->n_sockets = o->n_sockets;
    for (size_t i = 0; i < o->n_sockets && i < FA_MAX; i++) {
        fa_copy(r->socket_names[i], sizeof(r->socket_names[i]), o->sockets[i].name);
        fa_copy(r->socket_paths[i], sizeof(r->socket_paths[i]), o->sockets[i].path);
    }
    r->n_domains = c->n_domains;
    for (size_t i = 0; i < c->n_domains && i < FA_MAX; i++)
        fa_copy(r->domains[i], sizeof(r->domains[i]), c->domains[i]);
    r->ignore_selected = c->ignore_selected;
    r->polling_interval_s = c->polling_interval_s;
    r->observe_only = c->observe_only;
    r->stale_after = c->stale_after;
    r->verify_every = c->verify_every;
    r->concurrency = c->concurrency;
    r->refresh_interval_s = c->refresh_interval_s;
    r->timeout_ms = c->timeout_ms;
    r->read_budget_ms = c->read_budget_ms;
    r->max_descriptors = o->max_descriptors;
    r->restore_interval = c->restore_interval;
    r->has_logger = c->logger.log != NULL;
    r->has_on_event = c->on_event != NULL;
    r->has_clock = c->clock != NULL;
}

int __wrap_bal_open_agent(const bal_agent_config_t *config, const bal_open_config_t *open, bal_agent_t **out,
                          bal_error_t *err)
{
    bal_agent_t *a;

    fa.n_new++;
    fa_record_config(config, open);
    if (fa.new_ok > 0)
        fa.new_ok--;
    else if (fa.new_status != 0)
        return bal_error_set(err, fa.new_status, "%s", fa.new_message);
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory.");
    a->logger = config->logger;
    a->on_event = config->on_event;
    a->release_user = config->release_user;
    a->event_opaque = config->event_opaque;
    a->restore_interval = config->restore_interval;
    fa.n_alive++;
    *out = a;
    return 0;
}

int __wrap_bal_agent_read(bal_agent_t *agent, bal_sample_cb cb, void *opaque, bal_error_t *err)
{
    int read = 0;

    fa.n_read++;
    for (size_t i = 0; i < fa.n_logs; i++)
        bal_log(&agent->logger, fa.logs[i].level, "%s", fa.logs[i].message);
    fa.n_logs = 0;
    for (size_t i = 0; i < fa.n_events; i++) {
        bal_event_t e = {
            .kind = fa.events[i].kind,
            .severity = fa.events[i].severity,
            .domain = fa.events[i].domain,
            .uuid = fa.events[i].uuid,
            .message = fa.events[i].message,
            .user = fa_slot(agent, fa.events[i].domain, SIZE_MAX),
        };

        if (agent->on_event != NULL)
            agent->on_event(agent->event_opaque, &e);
    }
    fa.n_events = 0;
    if (fa.read_status < 0) {
        int status = fa.read_status;

        fa.read_status = 0;
        return bal_error_set(err, status, "%s", fa.read_message);
    }
    for (size_t i = 0; i < fa.n_samples; i++) {
        bal_sample_t s = fa.samples[i].sample;

        /* As the agent promises: the pointers are valid only during the call. */
        s.name = fa.samples[i].name;
        s.uuid = fa.samples[i].uuid;
        s.error = fa.samples[i].has_error ? fa.samples[i].error : NULL;
        s.user = fa_slot(agent, s.name, i);
        cb(opaque, &s);
        read += s.state != BAL_STATE_FAILED && s.state != BAL_STATE_LATE;
    }
    fa_release_slots(agent, false);
    /* As the agent does: domains there, none read, is a failed read. */
    if (read == 0 && fa.n_samples > 0)
        return bal_error_set(err, -EIO, "None of the %zu selected domains could be read. %s", fa.n_samples,
                             fa.samples[0].has_error ? fa.samples[0].error : "");
    return read;
}

void __wrap_bal_agent_free(bal_agent_t *agent)
{
    if (agent == NULL)
        return;
    fa.n_free++;
    if (agent->restore_interval && agent->on_event != NULL) {
        for (size_t i = 0; i < fa.n_samples; i++) {
            char message[256];
            bal_event_t e = {
                .kind = BAL_EVENT_INTERVAL_RESTORED,
                .severity = BAL_SEVERITY_OKAY,
                .domain = fa.samples[i].name,
                .uuid = fa.samples[i].uuid,
                .message = message,
                .user = fa_slot(agent, fa.samples[i].name, i),
            };

            snprintf(message, sizeof(message), "The polling interval of domain '%s' was restored to 0.",
                     fa.samples[i].name);
            agent->on_event(agent->event_opaque, &e);
        }
    }
    fa_release_slots(agent, true);
    fa.n_alive--;
    free(agent);
}
