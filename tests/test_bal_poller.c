/* The per-domain polling state machine, on a manual clock: which commands it asks for, what state and
 * events it reports. No transport: each test plays QEMU's part by hand. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/bal_poller.h"

#define T0 1700000000 /* wall-clock seconds at the start of every test */
#define ANON_PATH "/machine/peripheral-anon/device[1]"

typedef struct tclock {
    bal_clock_t clock;
    int64_t wall_s;
    int64_t mono_ms;
} tclock_t;

static int64_t tc_wall(void *opaque)
{
    return ((tclock_t *)opaque)->wall_s;
}

static int64_t tc_mono(void *opaque)
{
    return ((tclock_t *)opaque)->mono_ms;
}

static void tc_init(tclock_t *c)
{
    c->clock = (bal_clock_t){.wall_s = tc_wall, .monotonic_ms = tc_mono, .opaque = c};
    c->wall_s = T0;
    c->mono_ms = 5000;
}

static void advance(tclock_t *c, int64_t seconds)
{
    c->wall_s += seconds;
    c->mono_ms += seconds * 1000;
}

typedef struct fixture {
    tclock_t clock;
    bal_poller_config_t config;
    bal_poller_t *p;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = test_calloc(1, sizeof(*f));
    tc_init(&f->clock);
    f->config = (bal_poller_config_t){
        .polling_interval_s = 10, .stale_after = 3, .verify_every = 1000, .clock = &f->clock.clock};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    bal_poller_free(f->p);
    test_free(f);
    return 0;
}

static bal_poller_t *make(fixture_t *f)
{
    f->p = bal_poller_new(&f->config, "vm \"q\" \\1");
    assert_non_null(f->p);
    return f->p;
}

static void expect(bal_poller_t *p, bal_poller_op_t op, const char *path, int64_t value)
{
    bal_poller_step_t step;
    assert_true(bal_poller_next(p, &step));
    assert_int_equal(step.op, op);
    assert_string_equal(step.path, path);
    if (op == BAL_POLLER_SET_INTERVAL)
        assert_int_equal(step.value, value);
}

static void expect_done(bal_poller_t *p)
{
    bal_poller_step_t step;
    assert_false(bal_poller_next(p, &step));
}

static void answer_int(bal_poller_t *p, int64_t value)
{
    bal_poller_reply_t r = {.outcome = BAL_POLLER_ANSWERED, .interval = value};
    bal_poller_feed(p, &r);
}

static void answer_empty(bal_poller_t *p)
{
    bal_poller_reply_t r = {.outcome = BAL_POLLER_ANSWERED};
    bal_poller_feed(p, &r);
}

static void answer_list(bal_poller_t *p, const char *found)
{
    bal_poller_reply_t r = {.outcome = BAL_POLLER_ANSWERED, .found_path = found};
    bal_poller_feed(p, &r);
}

static void answer_stats(bal_poller_t *p, int64_t last_update)
{
    bal_stats_t stats;
    bal_poller_reply_t r = {.outcome = BAL_POLLER_ANSWERED, .stats = &stats};

    bal_stats_clear(&stats);
    stats.known = 10;
    stats.last_update = last_update;
    stats.stat[BAL_STAT_FREE_MEMORY] = (bal_stat_value_t){.set = true, .value = 12345};
    bal_poller_feed(p, &r);
}

static void answer_qmp_error(bal_poller_t *p, const char *cls, const char *desc)
{
    bal_error_t err = {0};
    bal_poller_reply_t r = {.outcome = BAL_POLLER_QMP_ERROR, .error = &err};
    bal_error_set_qmp(&err, -EREMOTEIO, cls, desc);
    bal_poller_feed(p, &r);
}

static void answer_failure(bal_poller_t *p, int code, const char *message)
{
    bal_error_t err = {0};
    bal_poller_reply_t r = {.outcome = BAL_POLLER_FAILED, .error = &err};
    bal_error_set(&err, code, "%s", message);
    bal_poller_feed(p, &r);
}

static bal_sample_t result(bal_poller_t *p)
{
    bal_sample_t s;
    memset(&s, 0xa5, sizeof(s)); /* every field must be written */
    bal_poller_result(p, &s);
    return s;
}

static size_t events(bal_poller_t *p, const bal_poller_event_t **ev)
{
    return bal_poller_events(p, ev);
}

static void expect_no_events(bal_poller_t *p)
{
    const bal_poller_event_t *ev;
    assert_int_equal(events(p, &ev), 0);
}

static void expect_one_event(bal_poller_t *p, bal_event_kind_t kind, bal_severity_t severity)
{
    const bal_poller_event_t *ev;
    assert_int_equal(events(p, &ev), 1);
    assert_int_equal(ev[0].kind, kind);
    assert_int_equal(ev[0].severity, severity);
    /* A whole sentence that names the domain, quotes and all. */
    assert_non_null(strstr(ev[0].message, "'vm \"q\" \\1'"));
    assert_int_equal(ev[0].message[strlen(ev[0].message) - 1], '.');
}

/* A re-arm: the interval set to 0, then back to its value (a set to the same value alone does nothing). */
static void expect_rearm(bal_poller_t *p, int64_t interval)
{
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_empty(p);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, interval);
    answer_empty(p);
}

/* A steady cycle: only guest-stats. */
static void stats_cycle(bal_poller_t *p, uint64_t instance, int64_t last_update)
{
    bal_poller_begin_cycle(p, instance);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(p, last_update);
}

/* First sight on balloon0 with polling off: probe, set, read. */
static void first_sight(fixture_t *f, uint64_t instance, int64_t found_interval, int64_t last_update)
{
    bal_poller_begin_cycle(f->p, instance);
    expect(f->p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_int(f->p, found_interval);
    if (found_interval != f->config.polling_interval_s && !f->config.observe_only) {
        expect(f->p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, f->config.polling_interval_s);
        answer_empty(f->p);
    }
    expect(f->p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(f->p, last_update);
}

static void test_first_sight_sets_interval_then_only_reads(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    bal_sample_t s;

    first_sight(f, 7, 0, 0);
    expect_done(p);
    s = result(p);
    assert_int_equal(s.state, BAL_STATE_NEVER_ANSWERED);
    assert_false(s.has_stats);
    assert_false(s.fresh);
    assert_string_equal(s.balloon_path, BAL_POLLER_DEFAULT_PATH);
    assert_int_equal(s.polling_interval_s, 10);
    assert_null(s.error);
    assert_int_equal(bal_poller_failure(p), 0);
    expect_no_events(p);

    /* The guest answers; from now on one command per cycle. */
    advance(&f->clock, 10);
    stats_cycle(p, 7, f->clock.wall_s - 1);
    expect_done(p);
    s = result(p);
    assert_int_equal(s.state, BAL_STATE_OK);
    assert_true(s.has_stats);
    assert_true(s.fresh);
    assert_true(s.stats.stat[BAL_STAT_FREE_MEMORY].set);
    assert_true(s.stats.stat[BAL_STAT_FREE_MEMORY].value == 12345);
    expect_no_events(p);

    /* Same last-update again: not fresh (the plugin must not dispatch it twice), still OK. */
    advance(&f->clock, 5);
    stats_cycle(p, 7, f->clock.wall_s - 6);
    s = result(p);
    assert_int_equal(s.state, BAL_STATE_OK);
    assert_true(s.has_stats);
    assert_false(s.fresh);
}

static void test_interval_already_right_is_not_set(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_int(p, 10);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(p, T0);
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_OK);
    assert_true(result(p).fresh);
    /* Nothing was changed, so nothing is restored. */
    bal_poller_begin_restore(p);
    expect_done(p);
    expect_no_events(p);
}

static void test_search_under_peripheral_anon(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_qmp_error(p, "DeviceNotFound", "Device '/machine/peripheral/balloon0' not found");
    expect(p, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL, 0);
    answer_list(p, NULL);
    expect(p, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL_ANON, 0);
    answer_list(p, ANON_PATH);
    expect(p, BAL_POLLER_GET_INTERVAL, ANON_PATH, 0);
    answer_int(p, 0);
    expect(p, BAL_POLLER_SET_INTERVAL, ANON_PATH, 10);
    answer_empty(p);
    expect(p, BAL_POLLER_GET_STATS, ANON_PATH, 0);
    answer_stats(p, 0);
    expect_done(p);
    assert_string_equal(result(p).balloon_path, ANON_PATH);

    /* Found once: later cycles go straight to it. */
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_STATS, ANON_PATH, 0);
    answer_stats(p, T0);
    expect_done(p);
}

/* The list of /machine/peripheral shows the balloon as mb: its interval is read, then its stats. */
static void find_mb_by_list(bal_poller_t *p)
{
    expect(p, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL, 0);
    answer_list(p, "/machine/peripheral/mb");
    expect(p, BAL_POLLER_GET_INTERVAL, "/machine/peripheral/mb", 0);
    answer_int(p, 10);
    expect(p, BAL_POLLER_GET_STATS, "/machine/peripheral/mb", 0);
    answer_stats(p, T0);
    expect_done(p);
}

static void test_search_under_peripheral_with_other_id(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    /* Something called balloon0 that is no balloon. */
    answer_qmp_error(p, "GenericError",
                     "Property 'virtio-net-pci.guest-stats-polling-interval' not found");
    find_mb_by_list(p);
}

/* A qom-list that fails with anything but DeviceNotFound is no answer about the balloon: the cycle
 * fails and the list is asked again, instead of the domain being skipped as balloon-less until it
 * restarts (fault_churn's random failures found this: a GenericError on the probe, then on the list). */
static void test_list_error_is_a_failure_not_no_balloon(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_qmp_error(p, "GenericError", "Property 'virtio-net-pci.guest-stats-polling-interval' not found");
    expect(p, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL, 0);
    answer_qmp_error(p, "GenericError", "Something went wrong");
    expect_done(p);
    expect_no_events(p);
    assert_int_equal(result(p).state, BAL_STATE_FAILED);
    assert_non_null(strstr(result(p).error, "Something went wrong"));

    /* The next cycle lists again and finds it. */
    bal_poller_begin_cycle(p, 1);
    find_mb_by_list(p);
    assert_int_equal(result(p).state, BAL_STATE_OK);
}

static void test_no_balloon_once_then_quiet_until_new_instance(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_qmp_error(p, "DeviceNotFound", "Device '/machine/peripheral/balloon0' not found");
    expect(p, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL, 0);
    answer_list(p, NULL);
    expect(p, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL_ANON, 0);
    /* QEMU creates peripheral-anon only for anonymous devices. */
    answer_qmp_error(p, "DeviceNotFound", "Device '/machine/peripheral-anon' not found");
    expect_done(p);
    expect_one_event(p, BAL_EVENT_NO_BALLOON, BAL_SEVERITY_WARNING);
    assert_int_equal(result(p).state, BAL_STATE_NO_BALLOON);
    assert_null(result(p).balloon_path);
    assert_int_equal(bal_poller_failure(p), 0);

    for (int i = 0; i < 3; i++) {
        bal_poller_begin_cycle(p, 1);
        expect_done(p); /* nothing is sent */
        expect_no_events(p);
        assert_int_equal(result(p).state, BAL_STATE_NO_BALLOON);
    }
    bal_poller_begin_restore(p);
    expect_done(p);

    /* Restarted, maybe with a balloon now: probed again. */
    bal_poller_begin_cycle(p, 2);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
}

static void test_configured_path_is_probed_not_searched(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p;
    const bal_poller_event_t *ev;

    f->config.qom_path = "/machine/peripheral/mb0";
    p = make(f);
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, "/machine/peripheral/mb0", 0);
    answer_qmp_error(p, "DeviceNotFound", "Device '/machine/peripheral/mb0' not found");
    expect_done(p);
    expect_one_event(p, BAL_EVENT_NO_BALLOON, BAL_SEVERITY_WARNING);
    events(p, &ev);
    assert_non_null(strstr(ev[0].message, "'/machine/peripheral/mb0'"));

    bal_poller_begin_cycle(p, 2);
    expect(p, BAL_POLLER_GET_INTERVAL, "/machine/peripheral/mb0", 0);
    answer_int(p, 10);
    expect(p, BAL_POLLER_GET_STATS, "/machine/peripheral/mb0", 0);
}

static void test_restart_is_a_new_instance(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    bal_sample_t s;

    first_sight(f, 100, 0, 0);
    advance(&f->clock, 10);
    stats_cycle(p, 100, f->clock.wall_s);
    stats_cycle(p, 100, f->clock.wall_s);
    assert_false(result(p).fresh);

    /* QEMU restarted (new domain id) with the interval at 2: found, set and read again. */
    advance(&f->clock, 10);
    first_sight(f, 101, 2, f->clock.wall_s - 1);
    expect_done(p);
    s = result(p);
    assert_int_equal(s.polling_interval_s, 10);
    assert_true(s.fresh); /* the first sample of an instance */
    expect_no_events(p);

    /* The original to restore is the new instance's. */
    bal_poller_begin_restore(p);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 2);
    answer_empty(p);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_INTERVAL_RESTORED, BAL_SEVERITY_OKAY);
}

static void test_interval_changed_behind_our_back_is_set_back(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p;

    f->config.verify_every = 3;
    p = make(f);
    first_sight(f, 1, 0, 0);
    expect_no_events(p);
    stats_cycle(p, 1, 0);
    expect_done(p);
    stats_cycle(p, 1, 0);
    expect_done(p);

    /* Third cycle after first sight: checked, and found as we left it. */
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_int(p, 10);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(p, 0);
    expect_done(p);
    expect_no_events(p);

    stats_cycle(p, 1, 0);
    stats_cycle(p, 1, 0);
    /* Someone typed qom-set ... 0 meanwhile. */
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_int(p, 0);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 10);
    answer_empty(p);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(p, 0);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_INTERVAL_RESET, BAL_SEVERITY_WARNING);
    assert_int_equal(result(p).polling_interval_s, 10);
}

static void test_stale_is_rearmed_once_then_quiet_then_recovers(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    int64_t stuck_at;
    const bal_poller_event_t *ev;

    /* Interval already 10, guest answering. */
    first_sight(f, 1, 10, T0);
    stuck_at = T0;
    for (int i = 0; i < 3; i++) {
        advance(&f->clock, 10);
        stats_cycle(p, 1, stuck_at); /* age 10, 20, 30: not more than 3 intervals */
        expect_done(p);
        expect_no_events(p);
    }
    assert_int_equal(result(p).state, BAL_STATE_OK);

    /* Age 40 > 3 * 10: stale. Re-armed with 0 then 10, because a set to 10 alone does nothing. */
    advance(&f->clock, 10);
    stats_cycle(p, 1, stuck_at);
    assert_int_equal(result(p).state, BAL_STATE_STALE);
    expect_rearm(p, 10);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_STALE_REARMED, BAL_SEVERITY_WARNING);
    events(p, &ev);
    assert_non_null(strstr(ev[0].message, "40 s"));
    assert_int_equal(result(p).state, BAL_STATE_STALE);
    assert_int_equal(result(p).polling_interval_s, 10);

    /* Still stale: quiet for good, no re-arm every cycle nor later (once per stale episode). */
    for (int i = 0; i < 400; i++) {
        advance(&f->clock, 10);
        stats_cycle(p, 1, stuck_at);
        expect_done(p);
        expect_no_events(p);
        assert_int_equal(result(p).state, BAL_STATE_STALE);
    }

    /* The guest answers again: one RECOVERED, then normal. */
    advance(&f->clock, 10);
    stats_cycle(p, 1, f->clock.wall_s - 2);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_RECOVERED, BAL_SEVERITY_OKAY);
    assert_int_equal(result(p).state, BAL_STATE_OK);
    assert_true(result(p).fresh);
    advance(&f->clock, 10);
    stats_cycle(p, 1, f->clock.wall_s - 2);
    expect_no_events(p);

    /* Stuck again later: announced again, since it recovered in between. */
    stuck_at = f->clock.wall_s - 2;
    advance(&f->clock, 40);
    stats_cycle(p, 1, stuck_at);
    expect_rearm(p, 10);
    expect_one_event(p, BAL_EVENT_STALE_REARMED, BAL_SEVERITY_WARNING);
}

static void test_last_update_ahead_of_the_clock_still_goes_stale(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    const bal_poller_event_t *ev;

    /* A peer whose last-update is an hour ahead of the host's clock, then frozen there: by the clock
     * its age is negative for an hour, yet nothing has come for 3 intervals after 40 s. */
    first_sight(f, 1, 10, T0 + 3600);
    for (int i = 0; i < 3; i++) {
        advance(&f->clock, 10);
        stats_cycle(p, 1, T0 + 3600);
        expect_done(p);
        expect_no_events(p);
        assert_int_equal(result(p).state, BAL_STATE_OK);
    }
    advance(&f->clock, 10);
    stats_cycle(p, 1, T0 + 3600);
    assert_int_equal(result(p).state, BAL_STATE_STALE);
    expect_rearm(p, 10);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_STALE_REARMED, BAL_SEVERITY_WARNING);
    events(p, &ev);
    assert_non_null(strstr(ev[0].message, "for 40 s"));

    /* It moves again (still ahead): an answer, fresh and ok. */
    advance(&f->clock, 10);
    stats_cycle(p, 1, T0 + 3700);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_RECOVERED, BAL_SEVERITY_OKAY);
    assert_int_equal(result(p).state, BAL_STATE_OK);
    assert_true(result(p).fresh);
}

static void test_old_stats_right_after_we_armed_are_not_rearmed(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    /* Polling was off for an hour: the stats are old, but we have just turned it on. */
    first_sight(f, 1, 0, T0 - 3600);
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_STALE);
    assert_true(result(p).fresh); /* first sample */
    expect_no_events(p);
    advance(&f->clock, 10);
    stats_cycle(p, 1, T0 - 3600);
    expect_done(p);
    expect_no_events(p);
    assert_false(result(p).fresh);
    /* The grace of 3 intervals is over and nothing came: now it is re-armed. */
    advance(&f->clock, 21);
    stats_cycle(p, 1, T0 - 3600);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
}

static void test_stale_at_first_sight_with_interval_already_set_is_rearmed_at_once(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    /* E.g. collectd restarted while the guest was stuck: nothing was armed by us, no grace. */
    first_sight(f, 1, 10, T0 - 600);
    expect_rearm(p, 10);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_STALE_REARMED, BAL_SEVERITY_WARNING);
}

static void test_never_answered_warned_once_after_stale_after_intervals(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    first_sight(f, 1, 0, 0);
    assert_int_equal(result(p).state, BAL_STATE_NEVER_ANSWERED);
    expect_no_events(p);
    advance(&f->clock, 10);
    stats_cycle(p, 1, 0);
    advance(&f->clock, 10);
    stats_cycle(p, 1, 0);
    expect_no_events(p); /* 20 s of polling */
    advance(&f->clock, 10);
    stats_cycle(p, 1, 0);
    expect_done(p);      /* never re-armed: the driver is missing, a timer will not help */
    expect_one_event(p, BAL_EVENT_NEVER_ANSWERED, BAL_SEVERITY_WARNING);
    assert_int_equal(result(p).state, BAL_STATE_NEVER_ANSWERED);
    assert_false(result(p).has_stats);
    for (int i = 0; i < 5; i++) {
        advance(&f->clock, 10);
        stats_cycle(p, 1, 0);
        expect_done(p);
        expect_no_events(p);
    }
    /* The driver got loaded. */
    advance(&f->clock, 10);
    stats_cycle(p, 1, f->clock.wall_s);
    expect_one_event(p, BAL_EVENT_RECOVERED, BAL_SEVERITY_OKAY);
    assert_int_equal(result(p).state, BAL_STATE_OK);
    assert_true(result(p).fresh);

    /* A restart of a driverless guest warns again: once per instance. */
    first_sight(f, 2, 10, 0);
    expect_no_events(p);
    advance(&f->clock, 30);
    stats_cycle(p, 2, 0);
    expect_one_event(p, BAL_EVENT_NEVER_ANSWERED, BAL_SEVERITY_WARNING);
}

static void test_restore_on_shutdown(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    const bal_poller_event_t *ev;

    first_sight(f, 1, 0, 0); /* polling was off before us */
    bal_poller_begin_restore(p);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_empty(p);
    expect_done(p);
    expect_one_event(p, BAL_EVENT_INTERVAL_RESTORED, BAL_SEVERITY_OKAY);
    events(p, &ev);
    assert_non_null(strstr(ev[0].message, "0 s"));
    /* Only once. */
    bal_poller_begin_restore(p);
    expect_done(p);
}

static void test_restore_failure_is_reported(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    bal_sample_t s;

    first_sight(f, 1, 7, 0);
    bal_poller_begin_restore(p);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 7);
    answer_failure(p, -ETIMEDOUT, "No reply within 5000 ms.");
    expect_done(p);
    expect_no_events(p);
    assert_int_equal(bal_poller_failure(p), -ETIMEDOUT);
    s = result(p);
    assert_int_equal(s.state, BAL_STATE_FAILED);
    assert_non_null(strstr(s.error, "No reply within 5000 ms."));
    assert_non_null(strstr(s.error, "'vm \"q\" \\1'"));
}

static void test_observe_only_never_sets(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p;

    f->config.observe_only = true;
    f->config.verify_every = 1;
    p = make(f);
    /* Polling off, old stats: stale, and left alone. */
    first_sight(f, 1, 0, T0 - 100);
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_STALE);
    assert_int_equal(result(p).polling_interval_s, 0);

    /* Read against QEMU's own interval: 5 s, so 3 * 5 = 15 s. */
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_int(p, 5);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(p, f->clock.wall_s - 15);
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_OK);
    assert_int_equal(result(p).polling_interval_s, 5);
    advance(&f->clock, 1);
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_int(p, 5);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(p, f->clock.wall_s - 16);
    expect_done(p); /* stale, but no re-arm */
    assert_int_equal(result(p).state, BAL_STATE_STALE);
    expect_no_events(p);
    bal_poller_begin_restore(p);
    expect_done(p);
}

static void test_transport_failure_fails_the_cycle_only(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    bal_sample_t s;

    first_sight(f, 1, 10, T0);
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_failure(p, -ETIMEDOUT, "QEMU did not answer within 5000 ms.");
    expect_done(p);
    s = result(p);
    assert_int_equal(s.state, BAL_STATE_FAILED);
    assert_false(s.has_stats);
    assert_false(s.fresh);
    assert_non_null(s.error);
    assert_non_null(strstr(s.error, "'vm \"q\" \\1'"));
    assert_non_null(strstr(s.error, "5000 ms"));
    assert_int_equal(bal_poller_failure(p), -ETIMEDOUT);
    /* Next cycle: as before, nothing re-probed. */
    stats_cycle(p, 1, T0 + 10);
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_OK);
    assert_null(result(p).error);
    assert_int_equal(bal_poller_failure(p), 0);
}

static void test_probe_failure_is_retried_next_cycle(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_failure(p, -ENOTCONN, "The connection to libvirt was lost.");
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_FAILED);
    expect_no_events(p); /* not mistaken for "no balloon" */
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    /* An error class that says nothing about the device is a failure, not "no balloon" either. */
    answer_qmp_error(p, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_FAILED);
    assert_int_equal(bal_poller_failure(p), -EREMOTEIO);
    expect_no_events(p);
}

static void test_unplugged_balloon_is_searched_again(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    first_sight(f, 1, 10, T0);
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_qmp_error(p, "DeviceNotFound", "Device '/machine/peripheral/balloon0' not found");
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_FAILED);
    assert_non_null(strstr(result(p).error, "not found"));
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
}

static void test_half_done_rearm_is_repaired_quietly(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);

    first_sight(f, 1, 10, T0 - 600);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_empty(p);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 10);
    answer_failure(p, -ETIMEDOUT, "QEMU did not answer within 5000 ms.");
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_FAILED);
    expect_no_events(p);
    /* Polling was left off: turned back on first thing, with no INTERVAL_RESET (it was us). */
    advance(&f->clock, 10);
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 10);
    answer_empty(p);
    expect(p, BAL_POLLER_GET_STATS, BAL_POLLER_DEFAULT_PATH, 0);
    answer_stats(p, T0 - 600);
    expect_done(p); /* within the grace of the set we just did */
    expect_no_events(p);
}

static void test_qemu_refusal_is_quoted(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p;

    f->config.polling_interval_s = 4294967295;
    p = make(f);
    bal_poller_begin_cycle(p, 1);
    expect(p, BAL_POLLER_GET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 0);
    answer_int(p, 0);
    expect(p, BAL_POLLER_SET_INTERVAL, BAL_POLLER_DEFAULT_PATH, 4294967295);
    answer_qmp_error(p, "GenericError", "timer value is too big");
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_FAILED);
    assert_non_null(strstr(result(p).error, "timer value is too big"));
    assert_int_equal(bal_poller_failure(p), -EREMOTEIO);
}

static void test_huge_interval_does_not_overflow(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p;

    f->config.polling_interval_s = 4294967295;
    f->config.stale_after = 4000000000u;
    p = make(f);
    first_sight(f, 1, 0, T0 - 1000000);
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_OK);
    advance(&f->clock, 1000000);
    stats_cycle(p, 1, T0 - 1000000);
    expect_done(p);
    assert_int_equal(result(p).state, BAL_STATE_OK);
}

static void test_feed_without_step_and_next_before_begin_are_harmless(void **state)
{
    fixture_t *f = *state;
    bal_poller_t *p = make(f);
    bal_poller_step_t step;

    expect_done(p);
    answer_int(p, 3); /* ignored: nothing asked */
    bal_poller_begin_cycle(p, 1);
    assert_true(bal_poller_next(p, &step));
    assert_false(bal_poller_next(p, &step)); /* must feed first */
    bal_poller_free(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_first_sight_sets_interval_then_only_reads),
        T(test_interval_already_right_is_not_set),
        T(test_search_under_peripheral_anon),
        T(test_search_under_peripheral_with_other_id),
        T(test_list_error_is_a_failure_not_no_balloon),
        T(test_no_balloon_once_then_quiet_until_new_instance),
        T(test_configured_path_is_probed_not_searched),
        T(test_restart_is_a_new_instance),
        T(test_interval_changed_behind_our_back_is_set_back),
        T(test_stale_is_rearmed_once_then_quiet_then_recovers),
        T(test_last_update_ahead_of_the_clock_still_goes_stale),
        T(test_old_stats_right_after_we_armed_are_not_rearmed),
        T(test_stale_at_first_sight_with_interval_already_set_is_rearmed_at_once),
        T(test_never_answered_warned_once_after_stale_after_intervals),
        T(test_restore_on_shutdown),
        T(test_restore_failure_is_reported),
        T(test_observe_only_never_sets),
        T(test_transport_failure_fails_the_cycle_only),
        T(test_probe_failure_is_retried_next_cycle),
        T(test_unplugged_balloon_is_searched_again),
        T(test_half_done_rearm_is_repaired_quietly),
        T(test_qemu_refusal_is_quoted),
        T(test_huge_interval_does_not_overflow),
        T(test_feed_without_step_and_next_before_begin_are_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
