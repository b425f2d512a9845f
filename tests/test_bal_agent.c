/* The agent core over a fake transport whose execute plays QEMU: it parses the QMP command and
 * forwards it to the real virtio device model (vb_device_*) on a manual clock, answering with QEMU's
 * replies and counting what was sent. Covers the cycle over many domains, filtering, discovery, the
 * interval's life (first sight, restart, changed behind our back, stale re-arm, restore), domains that
 * vanish, config refusals before anything is sent, and the pool's overlap on a real clock. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "agent/bal_agent.h"
#include "agent/bal_open.h"
#include "agent/bal_transport.h"
#include "tests/tt_env.h"
#include "tests/tt_fake.h"
#include "tests/tt_manual_clock.h"
#include "tests/tt_qemu_reply.h"
#include "tests/tt_time.h"
#include "virtio/vb_clock.h"
#include "virtio/vb_device.h"
#include "virtio/vb_guest.h"

#define MAX_DOMS 32
#define WALL_BASE 1700000000
#define ANON_PATH "/machine/peripheral-anon/device[1]"
#define BALLOON0 "/machine/peripheral/balloon0"
#define MEMORY (UINT64_C(1) << 30)

/* ---- the fake transport ---- */

typedef struct fake_dom {
    char name[64];
    char uuid[37];
    uint64_t instance;
    vb_device_t *dev;  /* NULL: no balloon */
    bool anon;         /* the balloon is /machine/peripheral-anon/device[1] */
    bool listed;       /* running, as list_domains sees it */
    int fail_execute;  /* a negative errno every execute returns */
    bool stall;        /* every execute blocks until cleared (fake_release) */
    unsigned started;  /* commands sent to this domain */
    unsigned executed; /* commands that reached this domain */
} fake_dom_t;

typedef struct fake {
    tt_fake_t tt;        /* first: the transport */
    pthread_mutex_t lock;
    tt_manual_clock_t mc;
    fake_dom_t doms[MAX_DOMS];
    size_t n_doms;
    int list_error;      /* list_domains fails with this when negative */
    int sleep_ms;        /* real time each execute takes */
    int64_t advance_ms;  /* manual time each execute takes */
    unsigned lists, executes, gets_interval, gets_stats, sets, qom_lists;
    unsigned in_flight, max_in_flight;
    pthread_cond_t released;                       /* a stall was cleared */
    unsigned stalled, max_stalled;                 /* executes blocked by a stall, now and at most */
    int stall_max_ms;                              /* > 0: a stall ends by itself after this long */
    unsigned watched, refused, abandoned;          /* execute_watched: watched calls, refused, abandoned */
    unsigned inside;                               /* threads in execute_watched now */
    bool in_batch;                                 /* between the transport's batch begin and end */
    unsigned batches, outside_batch, lists_in_batch; /* begun; commands / lists outside / inside one */
} fake_t;

static int fake_list(bal_transport_t *t, bal_domain_list_t *out, bal_error_t *err);
static void fake_batch(bal_transport_t *t, bool begin);
static int fake_execute(bal_transport_t *t, const bal_domain_info_t *dom, const char *command,
                        char **reply, bal_error_t *err);

static fake_t *fake_new(void)
{
    fake_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    tt_fake_init(&f->tt, fake_list, fake_execute);
    f->tt.ops.batch = fake_batch;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->released, NULL);
    tt_manual_clock_init(&f->mc, WALL_BASE);
    return f;
}

/* A running domain; profile < 0: no balloon at all. */
static fake_dom_t *fake_add(fake_t *f, const char *name, int profile, int64_t interval)
{
    fake_dom_t *d;

    assert_true(f->n_doms < MAX_DOMS);
    d = &f->doms[f->n_doms++];
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    snprintf(d->uuid, sizeof(d->uuid), "00000000-0000-4000-8000-%012zx", f->n_doms);
    d->instance = f->n_doms;
    d->listed = true;
    if (profile >= 0) {
        vb_guest_t *g = vb_guest_new((vb_guest_profile_t)profile, MEMORY, f->n_doms);
        assert_non_null(g);
        d->dev = vb_device_new(&f->mc.vclock.clock, VB_STATS_QEMU72, g, MEMORY);
        assert_non_null(d->dev);
        if (interval > 0)
            assert_int_equal(vb_device_set_polling_interval(d->dev, interval, NULL, 0), 0);
        vb_device_run(d->dev);
    }
    return d;
}

static fake_dom_t *fake_find(fake_t *f, const char *name)
{
    for (size_t i = 0; i < f->n_doms; i++)
        if (strcmp(f->doms[i].name, name) == 0)
            return &f->doms[i];
    return NULL;
}

/* Moves time forward one second at a time, letting every device do what is due. */
static void fake_advance(fake_t *f, int seconds)
{
    pthread_mutex_lock(&f->lock);
    for (int s = 0; s < seconds; s++) {
        vb_manual_clock_advance(&f->mc.vclock, VB_NS_PER_S);
        for (size_t i = 0; i < f->n_doms; i++)
            if (f->doms[i].dev != NULL)
                vb_device_run(f->doms[i].dev);
    }
    pthread_mutex_unlock(&f->lock);
}

/* Begin and end alternate, one batch at a time. */
static void fake_batch(bal_transport_t *t, bool begin)
{
    fake_t *f = (fake_t *)t;

    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->in_batch, !begin);
    f->in_batch = begin;
    f->batches += begin;
    pthread_mutex_unlock(&f->lock);
}

static int fake_list(bal_transport_t *t, bal_domain_list_t *out, bal_error_t *err)
{
    fake_t *f = (fake_t *)t;
    int rc = 0;

    pthread_mutex_lock(&f->lock);
    f->lists++;
    f->lists_in_batch += f->in_batch;
    if (f->list_error < 0) {
        rc = bal_error_set(err, f->list_error, "The fake cannot list domains.");
        goto out;
    }
    out->items = calloc(f->n_doms + 1, sizeof(*out->items));
    out->count = 0;
    assert_non_null(out->items);
    for (size_t i = 0; i < f->n_doms; i++) {
        bal_domain_info_t *item;
        if (!f->doms[i].listed)
            continue;
        item = &out->items[out->count++];
        item->name = strdup(f->doms[i].name);
        memcpy(item->uuid, f->doms[i].uuid, sizeof(item->uuid));
        item->instance = f->doms[i].instance;
    }
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* QEMU's answer to one command for d, under f->lock. */
static char *fake_answer(fake_t *f, fake_dom_t *d, const char *command)
{
    char ebuf[256];
    yajl_val tree = yajl_tree_parse(command, ebuf, sizeof(ebuf));
    const char *exec_path[] = {"execute", NULL};
    const char *path_path[] = {"arguments", "path", NULL};
    const char *prop_path[] = {"arguments", "property", NULL};
    const char *value_path[] = {"arguments", "value", NULL};
    const char *exec, *path, *prop;
    const char *balloon = d->anon ? ANON_PATH : BALLOON0;
    char *reply = NULL;

    assert_non_null(tree);
    exec = YAJL_GET_STRING(yajl_tree_get(tree, exec_path, yajl_t_string));
    path = YAJL_GET_STRING(yajl_tree_get(tree, path_path, yajl_t_string));
    prop = YAJL_GET_STRING(yajl_tree_get(tree, prop_path, yajl_t_string));
    assert_non_null(exec);
    assert_non_null(path);
    /* No "id": libvirt adds its own. */
    assert_null(strstr(command, "\"id\""));

    if (strcmp(exec, "qom-list") == 0) {
        f->qom_lists++;
        if (strcmp(path, "/machine/peripheral") == 0)
            reply = strdup(d->dev != NULL && !d->anon
                               ? "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
                                 "{\"name\": \"balloon0\", \"type\": \"child<virtio-balloon-pci>\"}]}"
                               : "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
                                 "{\"name\": \"net0\", \"type\": \"child<virtio-net-pci>\"}]}");
        else if (strcmp(path, "/machine/peripheral-anon") == 0 && d->dev != NULL && d->anon)
            reply = strdup("{\"return\": [{\"name\": \"device[1]\", \"type\": \"child<virtio-balloon-pci>\"}]}");
        else
            reply = tt_qemu_reply_not_found(path);
    } else if (d->dev == NULL || strcmp(path, balloon) != 0) {
        reply = tt_qemu_reply_not_found(path);
    } else if (strcmp(exec, "qom-get") == 0 && strcmp(prop, "guest-stats-polling-interval") == 0) {
        f->gets_interval++;
        reply = tt_qemu_reply("{\"return\": %lld}", (long long)vb_device_polling_interval(d->dev));
    } else if (strcmp(exec, "qom-get") == 0 && strcmp(prop, "guest-stats") == 0) {
        f->gets_stats++;
        reply = tt_qemu_reply_stats(d->dev);
    } else if (strcmp(exec, "qom-set") == 0) {
        yajl_val v = yajl_tree_get(tree, value_path, yajl_t_number);
        f->sets++;
        assert_non_null(v);
        if (vb_device_set_polling_interval(d->dev, YAJL_GET_INTEGER(v), ebuf, sizeof(ebuf)) < 0)
            reply = tt_qemu_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}}", ebuf);
        else
            reply = strdup("{\"return\": {}}");
        vb_device_run(d->dev); /* from 0, QEMU polls at once and the guest answers */
    } else {
        fail_msg("unexpected command %s", command);
    }
    yajl_tree_free(tree);
    return reply;
}

static void real_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int fake_execute(bal_transport_t *t, const bal_domain_info_t *dom, const char *command,
                        char **reply, bal_error_t *err)
{
    fake_t *f = (fake_t *)t;
    fake_dom_t *d;
    int rc = 0;

    pthread_mutex_lock(&f->lock);
    f->executes++;
    f->outside_batch += !f->in_batch;
    f->in_flight++;
    if (f->in_flight > f->max_in_flight)
        f->max_in_flight = f->in_flight;
    d = fake_find(f, dom->name);
    if (d != NULL) {
        d->started++;
        if (d->stall) {
            /* a QEMU that does not answer: the command is out until the test lets it go */
            if (++f->stalled > f->max_stalled)
                f->max_stalled = f->stalled;
            int64_t until = tt_mono_ms() + f->stall_max_ms;

            while (d->stall && (f->stall_max_ms <= 0 || tt_mono_ms() < until)) {
                if (f->stall_max_ms <= 0) {
                    pthread_cond_wait(&f->released, &f->lock);
                } else {
                    struct timespec ts;

                    clock_gettime(CLOCK_REALTIME, &ts);
                    ts.tv_nsec += 10 * 1000000L; /* re-checked every 10 ms */
                    if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                    }
                    pthread_cond_timedwait(&f->released, &f->lock, &ts);
                }
            }
            f->stalled--;
        }
    }
    pthread_mutex_unlock(&f->lock);

    if (f->sleep_ms > 0)
        real_sleep_ms(f->sleep_ms); /* a round trip: waiting, not holding anything */

    pthread_mutex_lock(&f->lock);
    f->in_flight--;
    if (f->advance_ms > 0)
        vb_manual_clock_advance(&f->mc.vclock, f->advance_ms * VB_NS_PER_MS);
    d = fake_find(f, dom->name);
    if (d == NULL || !d->listed) {
        rc = bal_error_set(err, -ENOENT, "Domain '%s' does not exist.", dom->name);
        goto out;
    }
    d->executed++;
    if (d->fail_execute < 0) {
        rc = bal_error_set(err, d->fail_execute, "The fake fails domain '%s'.", dom->name);
        goto out;
    }
    *reply = fake_answer(f, d, command);
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* The fake's execute made as the libvirt transport makes it for the agent: on the calling thread,
 * watched, and, once abandoned, touching nothing of the caller's (dom is copied before). */
static int fake_execute_watched(bal_transport_t *t, const bal_domain_info_t *dom, const char *command,
                                char **reply, const bal_call_watch_t *watch, bal_error_t *err)
{
    fake_t *f = (fake_t *)t;
    char name[64];
    bal_domain_info_t mine = {.name = name, .instance = dom->instance};
    int rc;

    snprintf(name, sizeof(name), "%s", dom->name);
    memcpy(mine.uuid, dom->uuid, sizeof(mine.uuid));
    pthread_mutex_lock(&f->lock);
    f->inside++;
    pthread_mutex_unlock(&f->lock);
    rc = watch->begin(watch->opaque);
    if (rc == -EBUSY) {
        rc = bal_error_set(err, -ETIMEDOUT, "The fake refused a command for '%s'.", name);
        pthread_mutex_lock(&f->lock);
        f->refused++;
        goto out;
    }
    if (rc < 0) {
        rc = fake_execute(t, &mine, command, reply, err);
        pthread_mutex_lock(&f->lock);
        goto out;
    }
    pthread_mutex_lock(&f->lock);
    f->watched++;
    pthread_mutex_unlock(&f->lock);
    rc = fake_execute(t, &mine, command, reply, err);
    if (!watch->end(watch->opaque)) {
        if (rc == 0)
            free(*reply);
        rc = -ECANCELED;
        pthread_mutex_lock(&f->lock);
        f->abandoned++;
        goto out;
    }
    pthread_mutex_lock(&f->lock);
out:
    /* The last touch of the fake: the test frees it once none is inside (teardown). */
    f->inside--;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static unsigned fake_abandoned(fake_t *f)
{
    unsigned n;

    pthread_mutex_lock(&f->lock);
    n = f->abandoned;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* f's commands made as through libvirt, watched; a stall ends by itself after 5 s, so that a test
 * whose abandoning fails, fails its bounds instead of hanging. */
static void fake_watched(fake_t *f)
{
    f->tt.ops.execute_watched = fake_execute_watched;
    f->stall_max_ms = 5000;
}

/* Lets every stalled command go on. */
static void fake_release(fake_t *f)
{
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n_doms; i++)
        f->doms[i].stall = false;
    pthread_cond_broadcast(&f->released);
    pthread_mutex_unlock(&f->lock);
}

/* Lets the stalled commands go and waits (at most 5 s) until n abandoned ones have come back. */
static void fake_release_abandoned(fake_t *f, unsigned n)
{
    fake_release(f);
    for (int i = 0; i < 5000 && fake_abandoned(f) < n; i++)
        real_sleep_ms(1);
    assert_int_equal(fake_abandoned(f), n);
}

static unsigned fake_executed(fake_t *f, const char *name)
{
    unsigned n;

    pthread_mutex_lock(&f->lock);
    n = fake_find(f, name)->executed;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* Once the agent is gone: the transport's free left the devices, for the tests to look at. */
static void fake_destroy(fake_t *f)
{
    for (size_t i = 0; i < f->n_doms; i++)
        vb_device_free(f->doms[i].dev);
    pthread_cond_destroy(&f->released);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ---- what the agent hands out ---- */

#define MAX_SEEN 64

typedef struct seen {
    pthread_t reader;
    size_t n;
    char names[MAX_SEEN][64];
    bal_domain_state_t states[MAX_SEEN];
    char errors[MAX_SEEN][256];
    bool fresh[MAX_SEEN], has_stats[MAX_SEEN];
    int64_t last_update[MAX_SEEN], interval[MAX_SEEN];
    uint64_t total[MAX_SEEN];
    char paths[MAX_SEEN][64];
    unsigned events[8];
    size_t n_logs;
    char last_log[512];
} seen_t;

static void on_sample(void *opaque, const bal_sample_t *s)
{
    seen_t *seen = opaque;
    size_t i = seen->n++;

    assert_true(pthread_equal(pthread_self(), seen->reader)); /* from the calling thread */
    assert_true(i < MAX_SEEN);
    snprintf(seen->names[i], sizeof(seen->names[i]), "%s", s->name);
    seen->states[i] = s->state;
    seen->fresh[i] = s->fresh;
    seen->has_stats[i] = s->has_stats;
    seen->last_update[i] = s->stats.last_update;
    seen->interval[i] = s->polling_interval_s;
    seen->total[i] = s->stats.stat[BAL_STAT_TOTAL_MEMORY].set ? s->stats.stat[BAL_STAT_TOTAL_MEMORY].value : 0;
    snprintf(seen->paths[i], sizeof(seen->paths[i]), "%s", s->balloon_path ? s->balloon_path : "");
    assert_non_null(s->uuid);
    if (s->state == BAL_STATE_FAILED || s->state == BAL_STATE_LATE)
        assert_non_null(s->error);
    else
        assert_null(s->error);
    snprintf(seen->errors[i], sizeof(seen->errors[i]), "%s", s->error != NULL ? s->error : "");
}

static void on_event(void *opaque, const bal_event_t *ev)
{
    seen_t *seen = opaque;
    assert_true(pthread_equal(pthread_self(), seen->reader));
    assert_true((unsigned)ev->kind < 8);
    seen->events[ev->kind]++;
    assert_non_null(strstr(ev->message, ev->domain));
}

static void on_log(void *opaque, bal_log_level_t level, const char *message)
{
    seen_t *seen = opaque;
    (void)level;
    seen->n_logs++;
    snprintf(seen->last_log, sizeof(seen->last_log), "%s", message);
}

typedef struct fixture {
    fake_t *fake;
    seen_t seen;
    bal_agent_config_t config;
    bal_agent_t *agent;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->fake = fake_new();
    fx->seen.reader = pthread_self();
    fx->config = (bal_agent_config_t){
        .polling_interval_s = 2,
        .stale_after = 3,
        .verify_every = 1000,
        .logger = {.log = on_log, .opaque = &fx->seen},
        .on_event = on_event,
        .event_opaque = &fx->seen,
        .clock = &fx->fake->mc.clock,
    };
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    fake_release(fx->fake); /* the agent waits for the commands still out */
    bal_agent_free(fx->agent);
    /* but not for an abandoned one, whose thread still has to leave the fake */
    for (int i = 0; i < 5000; i++) {
        unsigned inside;

        pthread_mutex_lock(&fx->fake->lock);
        inside = fx->fake->inside;
        pthread_mutex_unlock(&fx->fake->lock);
        if (inside == 0)
            break;
        real_sleep_ms(1);
    }
    fake_destroy(fx->fake);
    free(fx);
    return 0;
}

static void start(fixture_t *fx)
{
    bal_error_t err = {0};
    int rc = bal_agent_new_with_transport(&fx->config, &fx->fake->tt.base, &fx->agent, &err);
    if (rc != 0)
        fail_msg("bal_agent_new_with_transport: %s", err.message);
}

/* One cycle; returns bal_agent_read's value with seen reset to this cycle's samples. */
static int cycle(fixture_t *fx)
{
    bal_error_t err = {0};
    fx->seen.n = 0;
    return bal_agent_read(fx->agent, on_sample, &fx->seen, &err);
}

static void test_one_cycle_reads_every_domain_in_name_order(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    unsigned executes;

    fake_add(f, "web", VB_GUEST_LINUX, 0);
    fake_add(f, "db \"main\" \\1", VB_GUEST_NONE, 0);
    fake_add(f, "bare", -1, 0);
    fake_find(f, "web")->anon = true;
    start(fx);

    assert_int_equal(cycle(fx), 3);
    assert_int_equal(fx->seen.n, 3);
    assert_string_equal(fx->seen.names[0], "bare");
    assert_string_equal(fx->seen.names[1], "db \"main\" \\1");
    assert_string_equal(fx->seen.names[2], "web");
    assert_int_equal(fx->seen.states[0], BAL_STATE_NO_BALLOON);
    assert_int_equal(fx->seen.states[1], BAL_STATE_NEVER_ANSWERED);
    assert_false(fx->seen.has_stats[1]);
    /* Set from 0, QEMU polled at once, the guest answered: fresh stats in the first cycle. */
    assert_int_equal(fx->seen.states[2], BAL_STATE_OK);
    assert_true(fx->seen.fresh[2]);
    assert_true(fx->seen.total[2] == MEMORY);
    assert_int_equal(fx->seen.last_update[2], WALL_BASE);
    assert_string_equal(fx->seen.paths[2], ANON_PATH);
    assert_string_equal(fx->seen.paths[1], BALLOON0);
    assert_int_equal(fx->seen.interval[2], 2);
    assert_int_equal(vb_device_polling_interval(fake_find(f, "web")->dev), 2);
    assert_int_equal(vb_device_polling_interval(fake_find(f, "db \"main\" \\1")->dev), 2);
    assert_int_equal(fx->seen.events[BAL_EVENT_NO_BALLOON], 1);
    assert_int_equal(fx->seen.n_logs, 2); /* the domains found, then the event */
    assert_non_null(strstr(fx->seen.last_log, "'bare'"));
    assert_int_equal(f->lists, 1);

    /* Steady state: one qom-get of guest-stats per domain with a balloon, nothing else, no list. */
    executes = f->executes;
    fake_advance(f, 2);
    assert_int_equal(cycle(fx), 3);
    assert_int_equal(f->executes - executes, 2);
    assert_int_equal(f->lists, 1);
    assert_int_equal(fake_find(f, "bare")->executed, 3); /* probe + 2 lists, then never again */
    assert_int_equal(fx->seen.states[2], BAL_STATE_OK);
    assert_true(fx->seen.fresh[2]);
    assert_int_equal(fx->seen.last_update[2], WALL_BASE + 2);
    assert_int_equal(fx->seen.events[BAL_EVENT_NO_BALLOON], 1);
    assert_int_equal(fx->seen.n_logs, 2);

    /* Read again before the guest was asked again: the same sample, not fresh. */
    assert_int_equal(cycle(fx), 3);
    assert_false(fx->seen.fresh[2]);
    assert_true(fx->seen.has_stats[2]);
}

static void test_selection_by_name_regex_and_ignore(void **state)
{
    fixture_t *fx = *state;
    const char *sel[] = {"/^web[0-9]+$/", "db1"};

    fake_add(fx->fake, "web1", VB_GUEST_LINUX, 2);
    fake_add(fx->fake, "web2", VB_GUEST_LINUX, 2);
    fake_add(fx->fake, "webmail", VB_GUEST_LINUX, 2);
    fake_add(fx->fake, "db1", VB_GUEST_LINUX, 2);
    fake_add(fx->fake, "db2", VB_GUEST_LINUX, 2);
    fx->config.domains = sel;
    fx->config.n_domains = 2;
    start(fx);
    assert_int_equal(cycle(fx), 3);
    assert_string_equal(fx->seen.names[0], "db1");
    assert_string_equal(fx->seen.names[1], "web1");
    assert_string_equal(fx->seen.names[2], "web2");
    assert_int_equal(fake_find(fx->fake, "webmail")->executed, 0);
    assert_int_equal(fake_find(fx->fake, "db2")->executed, 0);

    bal_agent_free(fx->agent);
    fx->agent = NULL;
    fx->fake->tt.freed = 0;
    fx->config.ignore_selected = true;
    start(fx);
    assert_int_equal(cycle(fx), 2);
    assert_string_equal(fx->seen.names[0], "db2");
    assert_string_equal(fx->seen.names[1], "webmail");
}

static void test_restart_is_found_and_set_again(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    fake_dom_t *d = fake_add(f, "vm", VB_GUEST_LINUX, 0);
    unsigned sets;

    start(fx);
    assert_int_equal(cycle(fx), 1);
    assert_int_equal(f->sets, 1);
    fake_advance(f, 2);
    cycle(fx);
    assert_int_equal(f->sets, 1);

    /* QEMU restarted: a new device with polling off, a new instance id, announced as a change. */
    pthread_mutex_lock(&f->lock);
    vb_device_free(d->dev);
    d->dev = vb_device_new(&f->mc.vclock.clock, VB_STATS_QEMU72, vb_guest_new(VB_GUEST_LINUX, MEMORY, 9), MEMORY);
    d->instance = 77;
    f->tt.changes = true;
    pthread_mutex_unlock(&f->lock);
    sets = f->sets;
    fake_advance(f, 2);
    assert_int_equal(cycle(fx), 1);
    assert_int_equal(f->lists, 2);
    assert_int_equal(f->sets, sets + 1);
    assert_int_equal(vb_device_polling_interval(d->dev), 2);
    assert_true(fx->seen.fresh[0]);
    assert_int_equal(fx->seen.states[0], BAL_STATE_OK);
}

static void test_interval_changed_behind_our_back_is_set_back(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    fake_dom_t *d = fake_add(f, "vm", VB_GUEST_LINUX, 0);

    fx->config.verify_every = 2;
    start(fx);
    cycle(fx);
    pthread_mutex_lock(&f->lock);
    vb_device_set_polling_interval(d->dev, 30, NULL, 0); /* an operator's qom-set */
    pthread_mutex_unlock(&f->lock);
    fake_advance(f, 2);
    cycle(fx);
    assert_int_equal(vb_device_polling_interval(d->dev), 30); /* not checked yet */
    fake_advance(f, 2);
    cycle(fx);
    assert_int_equal(vb_device_polling_interval(d->dev), 2);
    assert_int_equal(fx->seen.events[BAL_EVENT_INTERVAL_RESET], 1);
    assert_non_null(strstr(fx->seen.last_log, "30 s"));
    for (int i = 0; i < 4; i++) {
        fake_advance(f, 2);
        cycle(fx);
    }
    assert_int_equal(fx->seen.events[BAL_EVENT_INTERVAL_RESET], 1);
}

static void test_stuck_guest_is_rearmed_once(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    unsigned sets_after_first_sight;

    fake_add(f, "stuck", VB_GUEST_STUCK, 0);
    start(fx);
    cycle(fx);
    sets_after_first_sight = f->sets;
    assert_int_equal(sets_after_first_sight, 1);
    for (int i = 0; i < 8; i++) {
        fake_advance(f, 2);
        cycle(fx);
    }
    assert_int_equal(fx->seen.states[0], BAL_STATE_STALE);
    assert_int_equal(fx->seen.events[BAL_EVENT_STALE_REARMED], 1);
    /* 0 then 2: a set to 2 alone does nothing in QEMU. */
    assert_true(f->sets >= sets_after_first_sight + 2);
    /* 16 s of cycles, window 6 s, backoff 12 s then 24 s: far fewer re-arms than cycles. */
    assert_true(f->sets <= sets_after_first_sight + 4);
    assert_int_equal(vb_device_polling_interval(fake_find(f, "stuck")->dev), 2);
    assert_int_equal(fx->seen.events[BAL_EVENT_RECOVERED], 0);
}

static void test_never_answering_guest_warned_once(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;

    fake_add(f, "nodriver", VB_GUEST_NONE, 0);
    start(fx);
    for (int i = 0; i < 10; i++) {
        cycle(fx);
        assert_int_equal(fx->seen.states[0], BAL_STATE_NEVER_ANSWERED);
        fake_advance(f, 2);
    }
    assert_int_equal(fx->seen.events[BAL_EVENT_NEVER_ANSWERED], 1);
    assert_int_equal(f->sets, 1);
}

static void test_restore_on_free_puts_originals_back(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    fake_dom_t *a = fake_add(f, "a", VB_GUEST_LINUX, 0);
    fake_dom_t *b = fake_add(f, "b", VB_GUEST_LINUX, 7);
    fake_dom_t *c = fake_add(f, "c", VB_GUEST_LINUX, 2);

    fx->config.restore_interval = true;
    start(fx);
    cycle(fx);
    assert_int_equal(vb_device_polling_interval(a->dev), 2);
    assert_int_equal(vb_device_polling_interval(b->dev), 2);
    bal_agent_free(fx->agent);
    fx->agent = NULL;
    assert_int_equal(fx->fake->tt.freed, 1);
    assert_int_equal(vb_device_polling_interval(a->dev), 0);
    assert_int_equal(vb_device_polling_interval(b->dev), 7);
    assert_int_equal(vb_device_polling_interval(c->dev), 2);
    assert_int_equal(fx->seen.events[BAL_EVENT_INTERVAL_RESTORED], 2); /* c was never changed */
}

/* n domains whose intervals the agent set, the first failing of them unreachable at shutdown. */
static void shut_down_with_failures(fixture_t *fx, size_t n, size_t failing)
{
    static const char *const names[] = {"a", "b", "c", "d", "e"};

    for (size_t i = 0; i < n; i++)
        fake_add(fx->fake, names[i], VB_GUEST_LINUX, 0);
    fx->config.restore_interval = true;
    start(fx);
    cycle(fx);
    for (size_t i = 0; i < failing; i++)
        fake_find(fx->fake, names[i])->fail_execute = -ETIMEDOUT;
    fx->seen.n_logs = 0;
    bal_agent_free(fx->agent);
    fx->agent = NULL;
}

/* A shutdown that reaches none of many domains says so in one line, not one per domain (issue 11,
 * item 9: a stall of 2000 guests wrote 2000 warnings at shutdown); a few are said one by one. */
static void test_restore_failures_are_summarised(void **state)
{
    fixture_t *fx = *state;

    shut_down_with_failures(fx, 5, 5);
    assert_int_equal(fx->seen.n_logs, 1);
    if (strstr(fx->seen.last_log, "The polling interval could not be put back for 5 domains, among them 'a', "
                                  "'b' and 'c'. The first error: ") == NULL)
        fail_msg("%s", fx->seen.last_log);
    assert_int_equal(fx->seen.events[BAL_EVENT_INTERVAL_RESTORED], 0);
}

static void test_few_restore_failures_are_said_one_by_one(void **state)
{
    fixture_t *fx = *state;

    shut_down_with_failures(fx, 3, 2);
    /* c's restore (an event, logged) and one line each for a and b. */
    assert_int_equal(fx->seen.n_logs, 3);
    assert_non_null(strstr(fx->seen.last_log, "'b'"));
    assert_null(strstr(fx->seen.last_log, "domains"));
    assert_int_equal(fx->seen.events[BAL_EVENT_INTERVAL_RESTORED], 1);
}

/* Each read's commands, and the restore's, run inside one batch of the transport (libvirt's event loop
 * rests meanwhile); the domain list is taken outside it. */
static void test_commands_run_in_one_batch_per_read(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;

    fake_add(f, "a", VB_GUEST_LINUX, 0);
    fake_add(f, "b", VB_GUEST_LINUX, 7);
    fake_add(f, "c", VB_GUEST_NONE, 0);
    fx->config.restore_interval = true;
    start(fx);
    assert_int_equal(cycle(fx), 3);
    fake_advance(f, 2);
    assert_int_equal(cycle(fx), 3);
    assert_int_equal(f->batches, 2);
    assert_false(f->in_batch);
    bal_agent_free(fx->agent);
    fx->agent = NULL;
    assert_int_equal(f->batches, 3);
    assert_false(f->in_batch);
    assert_true(f->executes > 6);
    assert_int_equal(f->outside_batch, 0);
    assert_int_equal(f->lists, 1);
    assert_int_equal(f->lists_in_batch, 0);
}

static void test_observe_only_sends_no_set(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    fake_dom_t *a = fake_add(f, "a", VB_GUEST_LINUX, 0);

    fx->config.observe_only = true;
    fx->config.restore_interval = true; /* meaningless without sets */
    start(fx);
    cycle(fx);
    fake_advance(f, 10);
    cycle(fx);
    bal_agent_free(fx->agent);
    fx->agent = NULL;
    assert_int_equal(f->sets, 0);
    assert_int_equal(vb_device_polling_interval(a->dev), 0);
    assert_int_equal(fx->seen.interval[0], 0);
}

static void test_hostile_qom_path_refused_before_anything_is_sent(void **state)
{
    fixture_t *fx = *state;
    const char *hostile[] = {
        "/machine/peripheral/balloon0\",\"execute\":\"quit",
        "/machine/x\\y",
        "machine/peripheral/balloon0",
        "/machine/peripheral/\nballoon0",
        "",
    };

    fake_add(fx->fake, "vm", VB_GUEST_LINUX, 0);
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        bal_open_config_t open = {0};
        bal_error_t err = {0};
        bal_agent_t *agent = NULL;

        fx->fake->tt.freed = 0;
        fx->config.qom_path = hostile[i];
        assert_int_equal(bal_agent_new_with_transport(&fx->config, &fx->fake->tt.base, &agent, &err), -EINVAL);
        assert_null(agent);
        assert_int_equal(fx->fake->tt.freed, 1); /* the transport was taken and freed */
        assert_true(strlen(err.message) > 0);
        /* bal_open_agent refuses before even opening a transport. */
        open.transport = BAL_TRANSPORT_QMP_DIR;
        open.qmp_dir = "/nonexistent-balloon-test";
        assert_int_equal(bal_open_agent(&fx->config, &open, &agent, &err), -EINVAL);
        assert_null(agent);
    }
    assert_int_equal(fx->fake->executes, 0);
    assert_int_equal(fx->fake->lists, 0);
}

static void test_bad_config_refused(void **state)
{
    fixture_t *fx = *state;
    const char *bad_sel[] = {"ok", "/(/"};
    bal_open_config_t open = {0};
    bal_error_t err = {0};
    bal_agent_t *agent = NULL;

    fx->config.domains = bad_sel;
    fx->config.n_domains = 2;
    assert_int_equal(bal_agent_new_with_transport(&fx->config, &fx->fake->tt.base, &agent, &err), -EINVAL);
    assert_non_null(strstr(err.message, "'/(/'"));
    fx->config.n_domains = 0;
    fx->config.polling_interval_s = -1;
    assert_int_equal(bal_agent_new_with_transport(&fx->config, &fx->fake->tt.base, &agent, &err), -EINVAL);
    fx->config.polling_interval_s = INT64_C(4294967296);
    assert_int_equal(bal_agent_new_with_transport(&fx->config, &fx->fake->tt.base, &agent, &err), -EINVAL);
    assert_non_null(strstr(err.message, "4294967296"));
    fx->config.polling_interval_s = 2;
    open.transport = BAL_TRANSPORT_QMP_DIR;
    open.qmp_dir = NULL;
    assert_int_equal(bal_open_agent(&fx->config, &open, &agent, &err), -EINVAL);
    assert_null(agent);
    assert_int_equal(bal_agent_new_with_transport(&fx->config, NULL, &agent, &err), -EINVAL);
    assert_int_equal(fx->fake->lists + fx->fake->executes, 0);
    assert_string_equal(bal_domain_state_name(BAL_STATE_NEVER_ANSWERED), "never answered");
    assert_string_equal(bal_domain_state_name(BAL_STATE_NO_BALLOON), "no balloon");
}

static void test_domain_gone_mid_cycle_is_dropped_not_failed(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    fake_dom_t *gone;

    fake_add(f, "a", VB_GUEST_LINUX, 2);
    gone = fake_add(f, "b", VB_GUEST_LINUX, 2);
    start(fx);
    assert_int_equal(cycle(fx), 2);
    /* b stops between the list and its command: its execute says -ENOENT, and the list drops it. */
    gone->listed = false;
    /* c starts meanwhile: seen by the list taken after the batch, but not read in this cycle. */
    fake_add(f, "c", VB_GUEST_LINUX, 2);
    fake_advance(f, 2);
    assert_int_equal(cycle(fx), 1);
    assert_int_equal(fx->seen.n, 1);
    assert_string_equal(fx->seen.names[0], "a");
    assert_int_equal(f->lists, 2);
    assert_int_equal(cycle(fx), 2);
    assert_string_equal(fx->seen.names[1], "c");
    assert_int_equal(fx->seen.states[1], BAL_STATE_OK);
    assert_int_equal(f->lists, 2);
}

static void test_failures_and_all_failed(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    bal_error_t err = {0};
    fake_dom_t *a = fake_add(f, "a", VB_GUEST_LINUX, 2);
    fake_dom_t *b = fake_add(f, "b", VB_GUEST_LINUX, 2);

    start(fx);
    a->fail_execute = -ETIMEDOUT;
    assert_int_equal(cycle(fx), 1); /* one of two: still a success */
    assert_int_equal(fx->seen.states[0], BAL_STATE_FAILED);
    assert_int_equal(fx->seen.states[1], BAL_STATE_OK);
    b->fail_execute = -ENOTCONN;
    fx->seen.n = 0;
    assert_int_equal(bal_agent_read(fx->agent, on_sample, &fx->seen, &err), -ETIMEDOUT);
    assert_int_equal(err.code, -ETIMEDOUT);
    assert_non_null(strstr(err.message, "'a'"));
    assert_int_equal(fx->seen.n, 2); /* the failures are still handed out */

    /* The list itself fails: negative, nothing handed out. */
    f->list_error = -ENOTCONN;
    f->tt.changes = true;
    fx->seen.n = 0;
    assert_int_equal(bal_agent_read(fx->agent, on_sample, &fx->seen, &err), -ENOTCONN);
    assert_int_equal(fx->seen.n, 0);
    /* ...and is tried again next time. */
    f->list_error = 0;
    a->fail_execute = b->fail_execute = 0;
    assert_int_equal(cycle(fx), 2);
}

static void test_list_refreshed_on_changes_and_on_schedule(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;

    fake_add(f, "a", VB_GUEST_LINUX, 2);
    fx->config.refresh_interval_s = 30;
    start(fx);
    assert_int_equal(cycle(fx), 1);
    fake_add(f, "b", VB_GUEST_LINUX, 2);
    fake_advance(f, 10);
    assert_int_equal(cycle(fx), 1); /* not seen yet: no event, not due */
    assert_int_equal(f->lists, 1);
    f->tt.changes = true;           /* a lifecycle event */
    assert_int_equal(cycle(fx), 2);
    assert_int_equal(f->lists, 2);
    fake_add(f, "c", VB_GUEST_LINUX, 2);
    fake_advance(f, 29);
    assert_int_equal(cycle(fx), 2);
    fake_advance(f, 1);             /* 30 s after the last list */
    assert_int_equal(cycle(fx), 3);
    assert_int_equal(f->lists, 3);
}

/* Every listing that finds domains started, stopped or restarted says so in one line, with a few
 * names: a QEMU restarted behind its socket is visible in the log (issue 11, item 4). */
static void test_list_changes_logged(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    char name[16];

    fake_add(f, "a", VB_GUEST_LINUX, 2);
    fake_add(f, "b", VB_GUEST_LINUX, 2);
    start(fx);
    assert_int_equal(cycle(fx), 2);
    assert_int_equal(fx->seen.n_logs, 1);
    assert_string_equal(fx->seen.last_log, "The domain list changed: 2 new ('a' and 'b'), 0 gone, 0 restarted.");

    fake_find(f, "a")->instance = 100; /* a new QEMU under the same name */
    fake_find(f, "b")->listed = false;
    fake_add(f, "c", VB_GUEST_LINUX, 2);
    f->tt.changes = true;
    assert_int_equal(cycle(fx), 2);
    assert_int_equal(fx->seen.n_logs, 2);
    assert_string_equal(fx->seen.last_log,
                        "The domain list changed: 1 new ('c'), 1 gone ('b'), 1 restarted ('a').");
    f->tt.changes = true; /* listed again, nothing changed: nothing said */
    assert_int_equal(cycle(fx), 2);
    assert_int_equal(fx->seen.n_logs, 2);

    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        fake_add(f, name, VB_GUEST_LINUX, 2);
    }
    f->tt.changes = true;
    assert_int_equal(cycle(fx), 7);
    assert_string_equal(fx->seen.last_log,
                        "The domain list changed: 5 new (among them 'n0', 'n1' and 'n2'), 0 gone, 0 restarted.");
}

static void test_cycle_time_bound_over_hung_domains(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    bal_error_t err = {0};
    char name[16];

    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "vm%02d", i);
        fake_add(f, name, VB_GUEST_LINUX, 2);
    }
    fx->config.concurrency = 1;
    fx->config.timeout_ms = 1000;
    start(fx);
    /* Every command takes a whole timeout on the agent's clock: after 2 timeouts, the rest fail fast. */
    f->advance_ms = 1000;
    fx->seen.n = 0;
    assert_int_equal(bal_agent_read(fx->agent, on_sample, &fx->seen, &err), 1);
    assert_int_equal(fx->seen.n, 10);
    /* vm00: probe and stats (2 s); vm01: its probe starts right at the deadline; then nothing. */
    assert_int_equal(f->executes, 3);
    assert_int_equal(fx->seen.states[0], BAL_STATE_OK);
    assert_int_equal(fx->seen.states[1], BAL_STATE_FAILED);
    assert_int_equal(fx->seen.states[9], BAL_STATE_FAILED);
}

/* Scheduling noise on a loaded machine; valgrind is another matter. */
static int64_t slack_ms(void)
{
    return tt_valgrind() ? 10000 : 1500;
}

/* A read budget in which the healthy domains' commands are all answered: valgrind runs one thread
 * at a time, many times slower, so there they get ten times as long. */
static int budget_ms(int ms)
{
    return tt_valgrind() ? 10 * ms : ms;
}

/* One cycle, timed on the real clock. */
static int timed_cycle(fixture_t *fx, int64_t *took_ms, bal_error_t *err)
{
    int64_t t0 = tt_mono_ms();
    int rc;

    fx->seen.n = 0;
    rc = bal_agent_read(fx->agent, on_sample, &fx->seen, err);
    *took_ms = tt_mono_ms() - t0;
    return rc;
}

static bal_domain_state_t seen_state(const fixture_t *fx, const char *name)
{
    for (size_t i = 0; i < fx->seen.n; i++)
        if (strcmp(fx->seen.names[i], name) == 0)
            return fx->seen.states[i];
    fail_msg("domain '%s' was not reported", name);
    return BAL_STATE_FAILED;
}

static const char *seen_error(const fixture_t *fx, const char *name)
{
    for (size_t i = 0; i < fx->seen.n; i++)
        if (strcmp(fx->seen.names[i], name) == 0)
            return fx->seen.errors[i];
    return "";
}

/* Waits (real time, bounded) until the fake has answered name's commands n times. */
static void wait_executed(fake_t *f, const char *name, unsigned n)
{
    for (int i = 0; i < 5000 && fake_executed(f, name) < n; i++)
        real_sleep_ms(1);
    assert_true(fake_executed(f, name) >= n);
}

/* Issue 11, item 12: one QEMU that does not answer costs its own domain a late answer, never the read
 * its budget: the read returns within it with every domain that answered, the stalled one is LATE and
 * gets no second command while the first is out, and once that one ends, a later read hands out its
 * answer and the domain is read as before. */
static void test_stalled_domain_is_late_not_waited_for(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    bal_error_t err = {0};
    int64_t took;

    fake_add(f, "a", VB_GUEST_LINUX, 2);
    fake_add(f, "b", VB_GUEST_LINUX, 2)->stall = true;
    fake_add(f, "c", VB_GUEST_LINUX, 2);
    fx->config.read_budget_ms = 300;
    fx->config.timeout_ms = 60000; /* the fake holds the command: the budget alone decides */
    start(fx);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(timed_cycle(fx, &took, &err), 2);
        print_message("  read %d with b stalled: %lld ms\n", i, (long long)took);
        /* the first read waits its budget for b; the next ones send b nothing and wait for nothing */
        if (i == 0)
            assert_true(took >= 290);
        assert_true(took < 300 + slack_ms());
        assert_int_equal(fx->seen.n, 3);
        assert_int_equal(seen_state(fx, "a"), BAL_STATE_OK);
        assert_int_equal(seen_state(fx, "c"), BAL_STATE_OK);
        assert_int_equal(seen_state(fx, "b"), BAL_STATE_LATE);
        assert_non_null(strstr(seen_error(fx, "b"), "'b' did not answer within the read's 300 ms"));
        assert_int_equal(fake_find(f, "b")->started, 1); /* one command out, never more */
    }

    fake_release(f); /* QEMU answers: the job goes on in the background, to its end */
    wait_executed(f, "b", 2);       /* the probe (the interval is 2 already), then the stats */
    real_sleep_ms(20);
    assert_int_equal(timed_cycle(fx, &took, &err), 3);
    assert_int_equal(seen_state(fx, "b"), BAL_STATE_OK); /* the late answer, handed out */
    assert_true(fx->seen.has_stats[1]);
    assert_int_equal(fake_find(f, "b")->started, 2);
    fake_advance(f, 2);
    assert_int_equal(timed_cycle(fx, &took, &err), 3);
    assert_int_equal(seen_state(fx, "b"), BAL_STATE_OK);
    assert_true(fx->seen.fresh[1]);
    assert_int_equal(fake_find(f, "b")->started, 3); /* a new read of its own */
}

/* The read callback's contract: non-zero only when nothing at all could be read. A read whose every
 * domain is late has read nothing. */
static void test_only_late_domains_read_nothing(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    bal_error_t err = {0};
    int64_t took;

    fake_add(f, "only", VB_GUEST_LINUX, 2)->stall = true;
    fx->config.read_budget_ms = 100;
    fx->config.timeout_ms = 60000;
    start(fx);
    assert_int_equal(timed_cycle(fx, &took, &err), -ETIMEDOUT);
    assert_int_equal(fx->seen.n, 1);
    assert_int_equal(fx->seen.states[0], BAL_STATE_LATE);
    assert_non_null(strstr(err.message, "None of the 1 selected domains could be read."));
    assert_non_null(strstr(err.message, "still out"));
}

/* More stalled peers than commands in flight at once: each gets one command, never more; a peer that
 * stalls for the first time holds up the domains queued after it for one read, and from then on the
 * stalled ones are asked last, within what the late commands leave, so the others are read every
 * read. */
static void test_stalled_peers_do_not_starve_the_others(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    const char *stalled[] = {"s1", "s2", "s3", "s4"}, *healthy[] = {"z1", "z2", "z3"};
    bal_error_t err = {0};
    int64_t took;

    for (size_t i = 0; i < 4; i++)
        fake_add(f, stalled[i], VB_GUEST_LINUX, 2)->stall = true;
    for (size_t i = 0; i < 3; i++)
        fake_add(f, healthy[i], VB_GUEST_LINUX, 2);
    fx->config.concurrency = 2;
    fx->config.read_budget_ms = budget_ms(150);
    fx->config.timeout_ms = 60000;
    start(fx);
    for (int r = 0; r < 8; r++) {
        int rc = timed_cycle(fx, &took, &err);

        assert_true(took < fx->config.read_budget_ms + slack_ms());
        assert_int_equal(fx->seen.n, 7);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(seen_state(fx, stalled[i]), BAL_STATE_LATE);
        /* reads 0 and 1: the pool's two workers find s1, s2, then s3, s4 stalled, in name order */
        if (r >= 2) {
            assert_int_equal(rc, 3);
            for (size_t i = 0; i < 3; i++)
                assert_int_equal(seen_state(fx, healthy[i]), BAL_STATE_OK);
        }
    }
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(fake_find(f, stalled[i])->started, 1);
    assert_int_equal(f->max_stalled, 4);
}

static void test_pool_overlaps_round_trips(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    int64_t t0, ms;
    char name[16];

    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "vm%02d", i);
        fake_add(f, name, VB_GUEST_LINUX, 2);
    }
    fx->config.clock = NULL; /* real time for the deadline: nothing here comes close to it */
    fx->config.concurrency = 5;
    start(fx);
    assert_int_equal(cycle(fx), 20);
    f->sleep_ms = 50;
    f->max_in_flight = 0;
    t0 = tt_mono_ms();
    assert_int_equal(cycle(fx), 20);
    ms = tt_mono_ms() - t0;
    /* 20 round trips of 50 ms, 5 at a time: about 4 round trips (200 ms), not 20 (1000 ms). The
     * overlap is proven by the commands in flight at once, which no machine load changes; the wall
     * time is bounded only below, since valgrind on a loaded machine stretched it past any bound. */
    assert_true(ms >= 190);
    assert_true(f->max_in_flight <= 5);
    assert_true(f->max_in_flight >= 4);
}

/* Issue 16: a command made on the pool's own thread (as through libvirt) that does not return is
 * abandoned at the timeout, even in a read that waits for every domain (balloonctl's): the read ends
 * then, with the domain failed for its timeout, and another thread reads the domains queued behind it
 * (one command at a time here). The domain gets no second command while the first is out, a free does
 * not wait for it, and the abandoned thread, back long after the agent is gone, touches nothing of it
 * (ASan and valgrind runs of this test say so). The stall ends by itself after 5 s: without the
 * abandoning the first read takes that long and fails its bound. */
static void test_hung_command_abandoned_at_its_timeout(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    bal_error_t err = {0};
    int64_t took;

    fake_watched(f);
    fake_add(f, "a", VB_GUEST_LINUX, 2)->stall = true;
    fake_add(f, "b", VB_GUEST_LINUX, 0); /* the agent sets it, and puts it back at the end */
    fx->config.concurrency = 1;
    fx->config.timeout_ms = 300;
    fx->config.read_budget_ms = 0; /* every domain's answer is waited for */
    fx->config.restore_interval = true;
    start(fx);

    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    print_message("  read with a hung, waiting for every domain: %lld ms\n", (long long)took);
    assert_true(took >= 290);
    assert_true(took < 300 + slack_ms());
    assert_int_equal(seen_state(fx, "a"), BAL_STATE_FAILED);
    assert_non_null(strstr(seen_error(fx, "a"), "Domain 'a' did not answer a QMP command within 300 ms."));
    assert_int_equal(seen_state(fx, "b"), BAL_STATE_OK);
    assert_int_equal(fake_abandoned(f), 0); /* the call has not returned: it is out, abandoned */

    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    assert_true(took < slack_ms());
    assert_int_equal(seen_state(fx, "a"), BAL_STATE_FAILED);
    assert_non_null(strstr(seen_error(fx, "a"), "The fake refused a command for 'a'.")); /* watch said -EBUSY */
    assert_int_equal(seen_state(fx, "b"), BAL_STATE_OK);
    assert_int_equal(fake_find(f, "a")->started, 1); /* one command out, never more */
    assert_true(f->refused >= 1);

    took = tt_mono_ms();
    bal_agent_free(fx->agent); /* b's interval is put back; a's command is refused, not waited for */
    fx->agent = NULL;
    took = tt_mono_ms() - took;
    print_message("  free with a hung: %lld ms\n", (long long)took);
    assert_true(took < slack_ms());
    assert_int_equal(fx->seen.events[BAL_EVENT_INTERVAL_RESTORED], 1);
    assert_int_equal(fake_find(f, "a")->started, 1);

    fake_release_abandoned(f, 1); /* the abandoned thread returns now, to an agent that is gone */
    real_sleep_ms(20);            /* the thread's way out, past the pool it has left */
}

/* A late job's command past its timeout is abandoned by the next read, before that read looks at it:
 * the domain's read fails for the timeout instead of staying late, and it is asked no more while the
 * command is out. */
static void test_late_command_abandoned_by_the_next_read(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    bal_error_t err = {0};
    int64_t took;

    fake_watched(f);
    fake_add(f, "a", VB_GUEST_LINUX, 2);
    fake_add(f, "b", VB_GUEST_LINUX, 2)->stall = true;
    fx->config.timeout_ms = 200;
    fx->config.read_budget_ms = 50;
    start(fx);

    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    assert_int_equal(seen_state(fx, "b"), BAL_STATE_LATE);
    real_sleep_ms(250);
    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    assert_int_equal(seen_state(fx, "a"), BAL_STATE_OK);
    assert_int_equal(seen_state(fx, "b"), BAL_STATE_FAILED);
    assert_non_null(strstr(seen_error(fx, "b"), "Domain 'b' did not answer a QMP command within 200 ms."));
    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    assert_int_equal(seen_state(fx, "b"), BAL_STATE_FAILED);
    assert_int_equal(fake_find(f, "b")->started, 1);
    assert_true(f->watched >= 3); /* a's commands, and b's first */

    fake_release_abandoned(f, 1);
}

/* A domain that goes away while its abandoned command is out is dropped like any other: its state is
 * freed at once, and the job's own record when the command returns (valgrind and ASan runs of this
 * test check that nothing is leaked or touched twice). */
static void test_domain_dropped_while_its_command_is_abandoned(void **state)
{
    fixture_t *fx = *state;
    fake_t *f = fx->fake;
    bal_error_t err = {0};
    int64_t took;

    fake_watched(f);
    fake_add(f, "a", VB_GUEST_LINUX, 2)->stall = true;
    fake_add(f, "b", VB_GUEST_LINUX, 2);
    fx->config.timeout_ms = 200;
    fx->config.read_budget_ms = 0;
    start(fx);

    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    assert_int_equal(seen_state(fx, "a"), BAL_STATE_FAILED);
    pthread_mutex_lock(&f->lock);
    fake_find(f, "a")->listed = false;
    pthread_mutex_unlock(&f->lock);
    f->tt.changes = true;
    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    assert_int_equal(fx->seen.n, 1);
    assert_string_equal(fx->seen.names[0], "b");
    assert_int_equal(fake_abandoned(f), 0); /* still out */

    fake_release_abandoned(f, 1);
    assert_int_equal(timed_cycle(fx, &took, &err), 1);
    assert_int_equal(fx->seen.n, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_one_cycle_reads_every_domain_in_name_order),
        T(test_selection_by_name_regex_and_ignore),
        T(test_restart_is_found_and_set_again),
        T(test_interval_changed_behind_our_back_is_set_back),
        T(test_stuck_guest_is_rearmed_once),
        T(test_never_answering_guest_warned_once),
        T(test_restore_on_free_puts_originals_back),
        T(test_restore_failures_are_summarised),
        T(test_few_restore_failures_are_said_one_by_one),
        T(test_commands_run_in_one_batch_per_read),
        T(test_observe_only_sends_no_set),
        T(test_hostile_qom_path_refused_before_anything_is_sent),
        T(test_bad_config_refused),
        T(test_domain_gone_mid_cycle_is_dropped_not_failed),
        T(test_failures_and_all_failed),
        T(test_list_refreshed_on_changes_and_on_schedule),
        T(test_list_changes_logged),
        T(test_cycle_time_bound_over_hung_domains),
        T(test_pool_overlaps_round_trips),
        T(test_stalled_domain_is_late_not_waited_for),
        T(test_only_late_domains_read_nothing),
        T(test_stalled_peers_do_not_starve_the_others),
        T(test_hung_command_abandoned_at_its_timeout),
        T(test_late_command_abandoned_by_the_next_read),
        T(test_domain_dropped_while_its_command_is_abandoned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
