/* Fault injection through the whole read path over QMP sockets: the agent with the qmp-socket
 * transport on a directory served by fault_server.h, two healthy domains beside one that fails:
 *  - a socket that stalls right after the greeting;
 *  - a 10 MiB reply;
 *  - replies delivered one byte at a time (slow but whole: read correctly);
 *  - a reply cut in half by the peer closing (QEMU killed mid-reply);
 *  - QEMU killed mid-cycle from another thread, its socket file left behind, then restarted;
 *  - 10000 domains appearing and vanishing between cycles, 1000 at a time (100 under
 *    BALLOON_SKIP_SLOW), with the transport's descriptors checked to stay bounded.
 * For each: the healthy domains are read in the same cycle, the cycle ends within bal_agent_read's
 * bound (3 timeouts, measured on the real clock), the next cycle after the fault ends reads every
 * domain, and (under ASan / valgrind) nothing leaks. Every command the server received passed the
 * independent allow-list check. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/bal_agent.h"
#include "agent/bal_open.h"
#include "tests/fault_server.h"
#include "tests/tt_env.h"
#include "tests/tt_time.h"

#define MAX_SEEN 16

typedef struct seen {
    size_t samples, ok, failed, late;
    char names[MAX_SEEN][32];
    bal_domain_state_t states[MAX_SEEN];
    char errors[MAX_SEEN][160];
} seen_t;

static void on_sample(void *opaque, const bal_sample_t *s)
{
    seen_t *seen = opaque;

    if (seen->samples < MAX_SEEN) {
        snprintf(seen->names[seen->samples], sizeof(seen->names[0]), "%s", s->name);
        seen->states[seen->samples] = s->state;
        snprintf(seen->errors[seen->samples], sizeof(seen->errors[0]), "%s", s->error != NULL ? s->error : "");
    }
    seen->samples++;
    if (s->state == BAL_STATE_OK)
        seen->ok++;
    else if (s->state == BAL_STATE_FAILED)
        seen->failed++;
    else if (s->state == BAL_STATE_LATE)
        seen->late++;
}

/* Scheduling noise on a loaded 2-CPU machine; valgrind is another matter. */
static int64_t slack_ms(void)
{
    return tt_valgrind() ? 10000 : 1000;
}

/* The agent's clock: real time, plus an offset each cycle() moves 2 s forward, so that the domain
 * list (refresh_interval_s 1) is taken again at the start of every cycle without sleeping. The
 * transport's own timeouts stay on the real clock. */
typedef struct offset_clock {
    bal_clock_t clock;
    int64_t offset_ms;
} offset_clock_t;

static int64_t offset_wall_s(void *opaque)
{
    (void)opaque;
    return (int64_t)time(NULL);
}

static int64_t offset_monotonic_ms(void *opaque)
{
    offset_clock_t *c = opaque;
    return tt_mono_ms() + c->offset_ms;
}

typedef struct fixture {
    char dir[64];
    fs_server_t *server;
    bal_agent_t *agent;
    int timeout_ms;
    offset_clock_t clock;
} fixture_t;

/* refresh_s: the scheduled refresh of the domain list; each cycle moves the agent's clock 2 s.
 * budget_ms: the read budget (0: a read waits for every domain). */
static void setup_full(fixture_t *fx, int timeout_ms, unsigned refresh_s, int budget_ms)
{
    bal_open_config_t open = {.transport = BAL_TRANSPORT_QMP_DIR};
    bal_agent_config_t config = {
        .polling_interval_s = 1,
        .refresh_interval_s = refresh_s,
        .read_budget_ms = budget_ms,
        .timeout_ms = timeout_ms,
        .concurrency = 5,
    };
    bal_error_t err = {0};

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/fault_qmp.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->server = fs_new(fx->dir);
    fx->timeout_ms = timeout_ms;
    fx->clock = (offset_clock_t){
        .clock = {.wall_s = offset_wall_s, .monotonic_ms = offset_monotonic_ms, .opaque = &fx->clock}};
    config.clock = &fx->clock.clock;
    open.qmp_dir = fx->dir;
    if (bal_open_agent(&config, &open, &fx->agent, &err) != 0)
        fail_msg("bal_open_agent: %s", err.message);
}

static void setup(fixture_t *fx, int timeout_ms)
{
    setup_full(fx, timeout_ms, 1, 0);
}

static void teardown(fixture_t *fx)
{
    fs_counts_t counts;

    bal_agent_free(fx->agent);
    fs_counts(fx->server, &counts);
    fs_free(fx->server);
    rmdir(fx->dir);
    assert_int_equal(counts.refused, 0);
}

/* One cycle; checks its duration against bounds timeouts (bal_agent_read documents 3). */
static int cycle_within(fixture_t *fx, seen_t *seen, int bounds)
{
    bal_error_t err = {0};
    int64_t start = tt_mono_ms(), took;
    int rc;

    memset(seen, 0, sizeof(*seen));
    fx->clock.offset_ms += 2000;
    rc = bal_agent_read(fx->agent, on_sample, seen, &err);
    took = tt_mono_ms() - start;
    print_message("  cycle: %d read, %zu ok, %zu failed, %lld ms (bound %d ms)\n", rc, seen->ok, seen->failed,
                  (long long)took, bounds * fx->timeout_ms);
    for (size_t i = 0; i < seen->samples && i < MAX_SEEN; i++)
        if (seen->states[i] != BAL_STATE_OK)
            print_message("    %s: %s %s\n", seen->names[i], bal_domain_state_name(seen->states[i]),
                          seen->errors[i]);
    if (took > bounds * fx->timeout_ms + slack_ms())
        fail_msg("the cycle took %lld ms, more than %d timeouts of %d ms", (long long)took, bounds, fx->timeout_ms);
    return rc;
}

static int cycle(fixture_t *fx, seen_t *seen)
{
    return cycle_within(fx, seen, 3);
}

static bal_domain_state_t state_of(const seen_t *seen, const char *name)
{
    for (size_t i = 0; i < seen->samples && i < MAX_SEEN; i++)
        if (strcmp(seen->names[i], name) == 0)
            return seen->states[i];
    fail_msg("domain '%s' was not reported", name);
    return BAL_STATE_FAILED;
}

/* good1 and good2 healthy, bad in mode; one cycle with the fault, then bad heals. */
static void run_fault(fs_mode_t mode, int timeout_ms, bal_domain_state_t bad_state)
{
    fixture_t fx;
    seen_t seen;

    setup(&fx, timeout_ms);
    fs_add(fx.server, "good1", FS_NORMAL);
    fs_add(fx.server, "good2", FS_NORMAL);
    fs_add(fx.server, "bad", mode);

    cycle(&fx, &seen);
    assert_int_equal(seen.samples, 3);
    assert_int_equal(state_of(&seen, "good1"), BAL_STATE_OK);
    assert_int_equal(state_of(&seen, "good2"), BAL_STATE_OK);
    assert_int_equal(state_of(&seen, "bad"), bad_state);
    /* a fault that persists stays contained, cycle after cycle */
    assert_int_equal(cycle(&fx, &seen), bad_state == BAL_STATE_OK ? 3 : 2);
    assert_int_equal(state_of(&seen, "bad"), bad_state);

    fs_set_mode(fx.server, "bad", FS_NORMAL);
    assert_int_equal(cycle(&fx, &seen), 3);
    assert_int_equal(seen.ok, 3);
    teardown(&fx);
}

static void test_stall_after_greeting(void **state)
{
    (void)state;
    run_fault(FS_STALL_AFTER_GREETING, 1000, BAL_STATE_FAILED);
}

static void test_10mib_reply(void **state)
{
    (void)state;
    run_fault(FS_HUGE_REPLY, 2000, BAL_STATE_FAILED);
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    /* ~150-byte greeting, ~500-byte stats reply at 1 ms a byte: slow but within the timeout */
    run_fault(FS_ONE_BYTE, 3000, BAL_STATE_OK);
}

static void test_close_mid_reply(void **state)
{
    (void)state;
    run_fault(FS_CLOSE_MID_REPLY, 1000, BAL_STATE_FAILED);
}

typedef struct killer {
    fs_server_t *server;
    int after_ms;
} killer_t;

static void *kill_later(void *opaque)
{
    killer_t *k = opaque;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)k->after_ms * 1000000L};

    nanosleep(&ts, NULL);
    fs_kill(k->server, "bad");
    return NULL;
}

/* QEMU killed while the cycle is reading it (its replies dribble, so the kill lands mid-reply), its
 * socket file left behind; then a new QEMU on the same path. */
static void test_killed_mid_cycle(void **state)
{
    fixture_t fx;
    seen_t seen;
    pthread_t t;
    killer_t k;
    int rc;
    (void)state;

    setup(&fx, 2000);
    fs_add(fx.server, "good1", FS_NORMAL);
    fs_add(fx.server, "good2", FS_NORMAL);
    fs_add(fx.server, "bad", FS_NORMAL);
    assert_int_equal(cycle(&fx, &seen), 3);

    fs_set_mode(fx.server, "bad", FS_ONE_BYTE);
    k = (killer_t){.server = fx.server, .after_ms = 150};
    assert_int_equal(pthread_create(&t, NULL, kill_later, &k), 0);
    rc = cycle(&fx, &seen);
    pthread_join(t, NULL);
    assert_int_equal(rc, 2);
    assert_int_equal(state_of(&seen, "good1"), BAL_STATE_OK);
    assert_int_equal(state_of(&seen, "good2"), BAL_STATE_OK);
    /* gone mid-cycle: either dropped from the cycle or reported as failed, never as read */
    assert_int_equal(seen.ok, 2);

    /* dead, its socket file still there: nothing listens */
    rc = cycle(&fx, &seen);
    assert_int_equal(rc, 2);
    assert_int_equal(seen.ok, 2);

    fs_add(fx.server, "bad", FS_NORMAL); /* restarted: a new socket file, a new instance */
    assert_int_equal(cycle(&fx, &seen), 3);
    assert_int_equal(seen.ok, 3);
    teardown(&fx);
}

/* Issue 11, item 4: a QEMU restarted behind its socket (the socket gone, then back), with the list's
 * scheduled refresh a minute away: the read after the new socket appears reads it again, because the
 * directory's change is seen before every read. Before, it waited for the refresh (30 cycles here). */
static void test_restart_behind_socket_read_again_at_once(void **state)
{
    fixture_t fx;
    seen_t seen;
    int rc;
    (void)state;

    setup_full(&fx, 2000, 60, 0);
    fs_add(fx.server, "good", FS_NORMAL);
    fs_add(fx.server, "vm", FS_NORMAL);
    assert_int_equal(cycle(&fx, &seen), 2);
    assert_int_equal(seen.ok, 2);

    fs_remove(fx.server, "vm"); /* QEMU exits, its socket goes */
    rc = cycle(&fx, &seen);
    assert_int_equal(rc, 1);
    assert_int_equal(state_of(&seen, "good"), BAL_STATE_OK);
    assert_int_equal(cycle(&fx, &seen), 1);
    assert_int_equal(seen.samples, 1); /* dropped, not failed */

    fs_add(fx.server, "vm", FS_NORMAL); /* the new QEMU */
    assert_int_equal(cycle(&fx, &seen), 2);
    assert_int_equal(state_of(&seen, "vm"), BAL_STATE_OK);
    assert_int_equal(seen.ok, 2);
    teardown(&fx);
}

/* Issue 11, item 12, over QMP sockets: a QEMU that greets, then never answers, with a read budget
 * shorter than the timeout. Each read returns within its budget with the healthy domains read; the
 * stalled one is LATE while its command is out (one connection, one command), FAILED when the timeout
 * gives up, and read again once it answers. Without a budget the same peer costs each read a whole
 * timeout (test_stall_after_greeting). */
static void test_stall_late_within_read_budget(void **state)
{
    fixture_t fx;
    seen_t seen;
    fs_counts_t counts;
    unsigned long accepted;
    int64_t start;
    (void)state;

    setup_full(&fx, 1500, 1, 300);
    fs_add(fx.server, "good1", FS_NORMAL);
    fs_add(fx.server, "good2", FS_NORMAL);
    fs_add(fx.server, "bad", FS_STALL_AFTER_GREETING);
    start = tt_mono_ms();
    for (int i = 0; i < 2; i++) {
        /* the bound given is in timeouts: 300 ms of the 1500 ms is a fifth of one */
        assert_int_equal(cycle_within(&fx, &seen, 1), 2);
        assert_true(tt_mono_ms() - start < (i + 1) * (300 + slack_ms()));
        assert_int_equal(state_of(&seen, "good1"), BAL_STATE_OK);
        assert_int_equal(state_of(&seen, "good2"), BAL_STATE_OK);
        assert_int_equal(state_of(&seen, "bad"), BAL_STATE_LATE);
    }
    fs_counts(fx.server, &counts);
    accepted = counts.accepted;
    assert_int_equal(accepted, 3); /* one connection each, the stalled one's still waiting */

    while (tt_mono_ms() - start < 1600) /* its timeout passes */
        usleep(10000);
    assert_int_equal(cycle_within(&fx, &seen, 1), 2);
    assert_int_equal(state_of(&seen, "bad"), BAL_STATE_FAILED);

    fs_set_mode(fx.server, "bad", FS_NORMAL);
    for (int i = 0; i < 3 && seen.ok != 3; i++)
        cycle_within(&fx, &seen, 1);
    assert_int_equal(seen.ok, 3);
    teardown(&fx);
}

/* The worst case for the cycle's bound: every domain's QEMU greets just before the timeout, then stalls
 * on the command, so each step costs a timeout to connect and another to wait; with more such domains
 * than the pool runs at once, a second wave starts just before the cycle's deadline (2 timeouts). The
 * cycle then takes nearly 4 timeouts, not the 3 bal_agent.h documents (the qmp-socket transport gives
 * connecting and the reply a timeout each): held to 4 here, reported to the lead. */
static void test_slow_greeting_then_stall(void **state)
{
    fixture_t fx;
    seen_t seen;
    char name[16];
    (void)state;

    /* long enough that the healthy domain answers in time on a loaded machine under ASan */
    setup(&fx, 1000);
    fs_set_delay(fx.server, 900);
    fs_add(fx.server, "good", FS_NORMAL);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "slow%d", i);
        fs_add(fx.server, name, FS_SLOW_THEN_STALL);
    }
    assert_int_equal(cycle_within(&fx, &seen, 4), 1);
    assert_int_equal(state_of(&seen, "good"), BAL_STATE_OK);
    assert_int_equal(seen.failed, 10);
    teardown(&fx);
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    long n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

static void test_socket_domains_churn(void **state)
{
    const char *skip = getenv("BALLOON_SKIP_SLOW");
    size_t per_round = skip != NULL && skip[0] == '1' ? 100 : 1000, rounds = 10;
    struct rlimit rl;
    fixture_t fx;
    long fds_first = -1;
    fs_counts_t counts;
    (void)state;

    /* listener, server side and agent side of each domain's connection */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 3 * per_round + 64) {
        rl.rlim_cur = rl.rlim_max < 3 * per_round + 64 ? rl.rlim_max : 3 * per_round + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 3 * per_round + 64)
            skip();
    }
    setup(&fx, 5000);
    for (size_t r = 0; r < rounds; r++) {
        seen_t seen;
        char name[32];
        long fds;

        /* the previous round's domains vanish, as many new ones appear */
        for (size_t i = 0; i < per_round; i++) {
            if (r > 0) {
                snprintf(name, sizeof(name), "vm-%zu", (r - 1) * per_round + i);
                fs_remove(fx.server, name);
            }
            snprintf(name, sizeof(name), "vm-%zu", r * per_round + i);
            fs_add(fx.server, name, FS_NORMAL);
        }
        assert_int_equal(cycle(&fx, &seen), (int)per_round);
        assert_int_equal(seen.ok, per_round);
        fds = open_fds();
        if (fds_first < 0)
            fds_first = fds;
        print_message("  round %zu: %zu domains, %ld fds open\n", r, per_round, fds);
        /* the connections of vanished domains are closed when the list no longer has them */
        assert_true(fds <= fds_first + 8);
    }
    fs_counts(fx.server, &counts);
    assert_true(counts.accepted >= rounds * per_round);
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stall_after_greeting),
        cmocka_unit_test(test_10mib_reply),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_close_mid_reply),
        cmocka_unit_test(test_killed_mid_cycle),
        cmocka_unit_test(test_restart_behind_socket_read_again_at_once),
        cmocka_unit_test(test_stall_late_within_read_budget),
        cmocka_unit_test(test_slow_greeting_then_stall),
        cmocka_unit_test(test_socket_domains_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
