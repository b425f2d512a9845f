/* The qmp-socket transport and the QMP messages against live peers: balloon-sim with its guest
 * profiles (linux, none, stuck, empty, slow) and a name with quotes and backslashes, frozen with
 * SIGSTOP to stand for a hung QEMU, killed and restarted; and, when it is installed, the real
 * qemu-system-x86_64, the reference. Each group is skipped when its program is missing. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/bal_qmp.h"
#include "agent/bal_qmp_conn.h"
#include "agent/bal_qmp_socket.h"
#include "tests/tt_env.h"
#include "tests/tt_spawn.h"
#include "tests/tt_time.h"

#define BALLOON "/machine/peripheral/balloon0"
#define TIMEOUT_MS 2000
#define WEIRD "we\"ird \\name'"

static char qemu_path[512];

typedef struct peer {
    pid_t pid;
    char dir[64];
    bal_transport_t *t;
    bal_domain_list_t list;
} peer_t;

static void list_domains(peer_t *p)
{
    bal_error_t err = {0};
    bal_domain_list_free(&p->list);
    if (bal_transport_list_domains(p->t, &p->list, &err) != 0)
        fail_msg("listing failed: %s", err.message);
}

static const bal_domain_info_t *dom(peer_t *p, const char *name)
{
    for (size_t i = 0; i < p->list.count; i++)
        if (strcmp(p->list.items[i].name, name) == 0)
            return &p->list.items[i];
    fail_msg("domain '%s' not listed", name);
    return NULL;
}

/* Runs command and returns the reply (caller frees), failing the test on a transport error. */
static char *run(peer_t *p, const char *name, const char *command)
{
    bal_error_t err = {0};
    char *reply = NULL;

    if (bal_transport_execute(p->t, dom(p, name), command, &reply, &err) != 0)
        fail_msg("'%s' on '%s' failed: %s", command, name, err.message);
    return reply;
}

static void set_interval(peer_t *p, const char *name, int64_t seconds)
{
    char *cmd = NULL, *reply;
    bal_error_t err = {0};

    assert_int_equal(bal_qmp_build_qom_set_int(BALLOON, BAL_QMP_PROP_INTERVAL, seconds, &cmd, NULL), 0);
    reply = run(p, name, cmd);
    if (bal_qmp_parse_empty(reply, strlen(reply), &err) != 0)
        fail_msg("setting the interval on '%s' failed: %s", name, err.message);
    free(reply);
    free(cmd);
}

static int64_t get_interval(peer_t *p, const char *name)
{
    char *cmd = NULL, *reply;
    int64_t v = -1;

    assert_int_equal(bal_qmp_build_qom_get(BALLOON, BAL_QMP_PROP_INTERVAL, &cmd, NULL), 0);
    reply = run(p, name, cmd);
    assert_int_equal(bal_qmp_parse_int(reply, strlen(reply), &v, NULL), 0);
    free(reply);
    free(cmd);
    return v;
}

static bal_stats_t get_stats(peer_t *p, const char *name)
{
    char *cmd = NULL, *reply;
    bal_stats_t st;
    bal_error_t err = {0};

    assert_int_equal(bal_qmp_build_qom_get(BALLOON, BAL_QMP_PROP_STATS, &cmd, NULL), 0);
    reply = run(p, name, cmd);
    if (bal_qmp_parse_guest_stats(reply, strlen(reply), &st, &err) != 0)
        fail_msg("guest-stats of '%s' did not parse: %s (%s)", name, err.message, reply);
    free(reply);
    free(cmd);
    return st;
}

static unsigned count_set(const bal_stats_t *st)
{
    unsigned n = 0;
    for (int i = 0; i < BAL_STAT_COUNT; i++)
        n += st->stat[i].set;
    return n;
}

/* ---- balloon-sim ---- */

static pid_t start_sim(peer_t *p)
{
    char *argv[] = {(char *)tt_spawn_sim(),
                    (char *)"--socket-dir", p->dir,
                    (char *)"--domain", (char *)"ok:linux",
                    (char *)"--domain", (char *)"none:none",
                    (char *)"--domain", (char *)"stuck:stuck",
                    (char *)"--domain", (char *)"empty:empty",
                    (char *)"--domain", (char *)"slow:slow",
                    (char *)"--domain", (char *)WEIRD ":linux",
                    NULL};
    return tt_spawn_until_ready(argv, 20000);
}

static int sim_setup(void **state)
{
    peer_t *p;

    if (tt_spawn_sim() == NULL)
        return 0;
    p = calloc(1, sizeof(*p));
    assert_non_null(p);
    snprintf(p->dir, sizeof(p->dir), "/tmp/aqmp-sim-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    p->pid = start_sim(p);
    p->t = bal_qmp_socket_transport_new_dir(p->dir, TIMEOUT_MS, NULL, NULL);
    assert_non_null(p->t);
    list_domains(p);
    *state = p;
    return 0;
}

static int peer_teardown(void **state)
{
    peer_t *p = *state;

    if (p == NULL)
        return 0;
    bal_domain_list_free(&p->list);
    bal_transport_free(p->t);
    if (p->pid > 0) {
        kill(p->pid, SIGCONT); /* in case a test left it stopped */
        tt_spawn_stop(p->pid);
    }
    rmdir(p->dir); /* balloon-sim removes its sockets; QEMU's is removed by the test */
    free(p);
    return 0;
}

static void test_sim_lists_every_domain(void **state)
{
    peer_t *p = *state;
    tt_spawn_need_sim();

    assert_int_equal(p->list.count, 6);
    assert_string_equal(p->list.items[0].name, "empty"); /* sorted */
    assert_string_equal(p->list.items[5].name, WEIRD);
    for (size_t i = 0; i < p->list.count; i++)
        for (size_t j = i + 1; j < p->list.count; j++)
            assert_true(p->list.items[i].instance != p->list.items[j].instance);
}

static void test_sim_finds_balloon(void **state)
{
    peer_t *p = *state;
    char *cmd = NULL, *reply, *path = NULL;
    tt_spawn_need_sim();

    assert_int_equal(bal_qmp_build_qom_list("/machine/peripheral", &cmd, NULL), 0);
    for (size_t i = 0; i < p->list.count; i++) {
        reply = run(p, p->list.items[i].name, cmd);
        assert_int_equal(bal_qmp_find_balloon(reply, strlen(reply), "/machine/peripheral", &path, NULL), 0);
        assert_string_equal(path, BALLOON);
        free(path);
        free(reply);
    }
    free(cmd);
}

/* The profiles, all on one timeline so that the slow ones cost their seconds once. */
static void test_sim_profiles(void **state)
{
    peer_t *p = *state;
    bal_stats_t ok0, st;
    int64_t t0, t_slow, t1, deadline;
    tt_spawn_need_sim();

    t_slow = tt_mono_ms();
    set_interval(p, "slow", 1);
    for (size_t i = 0; i < p->list.count; i++)
        if (strcmp(p->list.items[i].name, "slow") != 0)
            set_interval(p, p->list.items[i].name, 1);
    for (size_t i = 0; i < p->list.count; i++)
        assert_int_equal(get_interval(p, p->list.items[i].name), 1);
    t0 = tt_mono_ms();

    /* linux: polled at once when polling starts, every stat of QEMU 7.2 */
    ok0 = get_stats(p, "ok");
    assert_int_equal(ok0.known, 10);
    assert_true(ok0.last_update > 0);
    assert_true(ok0.stat[BAL_STAT_TOTAL_MEMORY].set);
    assert_true(ok0.stat[BAL_STAT_FREE_MEMORY].value <= ok0.stat[BAL_STAT_TOTAL_MEMORY].value);

    /* none: no driver, never answers */
    st = get_stats(p, "none");
    assert_int_equal(st.known, 10);
    assert_int_equal(st.last_update, 0);
    assert_int_equal(count_set(&st), 0);

    /* empty: answers with an empty buffer: fresh last-update, every stat unset */
    st = get_stats(p, "empty");
    assert_int_equal(st.known, 10);
    assert_true(st.last_update > 0);
    assert_int_equal(count_set(&st), 0);

    /* slow: QMP answers at once (the transport never waits for the guest), the guest 2 s later */
    t1 = tt_mono_ms();
    st = get_stats(p, "slow");
    assert_true(tt_mono_ms() - t1 < 1500);
    if (tt_mono_ms() < t_slow + 1800) /* else a loaded machine made us too late to see it */
        assert_int_equal(st.last_update, 0);

    /* the name with quotes and backslashes is a domain like the others */
    st = get_stats(p, WEIRD);
    assert_true(st.last_update > 0);

    if (tt_skip_slow())
        return;
    deadline = t0 + 6000;
    do {
        st = get_stats(p, "slow");
        if (st.last_update > 0)
            break;
        poll(NULL, 0, 100); /* real seconds: balloon-sim runs on the system clock */
    } while (tt_mono_ms() < deadline);
    assert_true(st.last_update > 0);
    assert_true(count_set(&st) > 0);
    assert_true(tt_mono_ms() - t_slow >= 1500);

    /* stuck: answers three requests (t = 0, 1, 2 s), then never again: last-update stops, while the
     * linux guest's goes on */
    while (tt_mono_ms() < t0 + 3500)
        poll(NULL, 0, 100);
    {
        bal_stats_t stuck1 = get_stats(p, "stuck"), stuck2, ok1;
        assert_true(stuck1.last_update > 0);
        while (tt_mono_ms() < t0 + 5200)
            poll(NULL, 0, 100);
        stuck2 = get_stats(p, "stuck");
        ok1 = get_stats(p, "ok");
        assert_true(stuck2.last_update == stuck1.last_update);
        assert_true(ok1.last_update >= ok0.last_update + 3);
    }
}

/* QEMU's own errors travel through the transport and come out of the parsers with class and text. */
static void test_sim_errors(void **state)
{
    peer_t *p = *state;
    bal_error_t err = {0};
    char *cmd = NULL, *reply;
    tt_spawn_need_sim();

    assert_int_equal(bal_qmp_build_qom_set_int(BALLOON, BAL_QMP_PROP_INTERVAL, -1, &cmd, NULL), 0);
    reply = run(p, "ok", cmd);
    assert_int_equal(bal_qmp_parse_empty(reply, strlen(reply), &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "GenericError");
    assert_string_equal(err.message, "timer value must be greater than zero");
    free(reply);
    free(cmd);

    assert_int_equal(bal_qmp_build_qom_get("/machine/peripheral/nope", BAL_QMP_PROP_STATS, &cmd, NULL), 0);
    reply = run(p, "ok", cmd);
    assert_int_equal(bal_qmp_parse_guest_stats(reply, strlen(reply), &(bal_stats_t){0}, &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "DeviceNotFound");
    assert_string_equal(err.message, "Device '/machine/peripheral/nope' not found");
    free(reply);
    free(cmd);

    /* the capabilities were negotiated by the transport already */
    reply = run(p, "ok", "{\"execute\":\"qmp_capabilities\"}");
    assert_int_equal(bal_qmp_parse_empty(reply, strlen(reply), &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "CommandNotFound");
    free(reply);

    /* and what the allow-list refuses never reaches balloon-sim, which would obey it */
    assert_int_equal(bal_transport_execute(p->t, dom(p, "ok"), "{\"execute\":\"quit\"}", &reply, &err), -EPERM);
    free(run(p, "ok", "{\"execute\":\"qmp_capabilities\"}"));
}

/* A hung QEMU (here: balloon-sim stopped with SIGSTOP) costs one timeout, then things recover. */
static void test_sim_hung_peer(void **state)
{
    const int timeout_ms = 1000;
    peer_t *p = *state;
    bal_transport_t *main_t;
    bal_error_t err = {0};
    char *reply = NULL;
    int64_t t0, elapsed;
    tt_spawn_need_sim();

    /* a transport of its own, with a shorter timeout */
    main_t = p->t;
    p->t = bal_qmp_socket_transport_new_dir(p->dir, timeout_ms, NULL, NULL);
    assert_non_null(p->t);
    free(run(p, "ok", "{\"execute\":\"qmp_capabilities\"}")); /* a cached connection */
    assert_int_equal(kill(p->pid, SIGSTOP), 0);
    t0 = tt_mono_ms();
    assert_int_equal(bal_transport_execute(p->t, dom(p, "ok"), "{\"execute\":\"qmp_capabilities\"}", &reply, &err),
                     -ETIMEDOUT);
    elapsed = tt_mono_ms() - t0;
    assert_true(elapsed >= timeout_ms - 5 && elapsed < timeout_ms + 2500);
    /* a new connection to a hung peer: connecting and the greeting are bounded too */
    t0 = tt_mono_ms();
    assert_int_equal(bal_transport_execute(p->t, dom(p, "empty"), "{\"execute\":\"qmp_capabilities\"}", &reply,
                                           &err),
                     -ETIMEDOUT);
    elapsed = tt_mono_ms() - t0;
    assert_true(elapsed >= timeout_ms - 5 && elapsed < timeout_ms + 2500);
    assert_int_equal(kill(p->pid, SIGCONT), 0);
    free(run(p, "ok", "{\"execute\":\"qmp_capabilities\"}"));
    free(run(p, "empty", "{\"execute\":\"qmp_capabilities\"}"));
    bal_transport_free(p->t);
    p->t = main_t;
}

/* balloon-sim exits (its sockets go) and comes back (new sockets: new instances). */
static void test_sim_restart(void **state)
{
    peer_t *p = *state;
    uint64_t ok_instance;
    bal_error_t err = {0};
    char *reply = NULL;
    tt_spawn_need_sim();

    free(run(p, "ok", "{\"execute\":\"qmp_capabilities\"}"));
    ok_instance = dom(p, "ok")->instance;
    tt_spawn_stop(p->pid);
    p->pid = -1;
    assert_int_equal(bal_transport_execute(p->t, dom(p, "ok"), "{\"execute\":\"qmp_capabilities\"}", &reply, &err),
                     -ENOENT);
    list_domains(p);
    assert_int_equal(p->list.count, 0);

    p->pid = start_sim(p);
    list_domains(p);
    assert_int_equal(p->list.count, 6);
    assert_true(dom(p, "ok")->instance != ok_instance);
    set_interval(p, "ok", 1);
    assert_true(get_stats(p, "ok").last_update > 0);
}

/* ---- the real QEMU ---- */

static int qemu_setup(void **state)
{
    char sock[128];
    char qmp_arg[160];
    char *argv[] = {qemu_path, (char *)"-S", (char *)"-nodefaults", (char *)"-display", (char *)"none",
                    (char *)"-machine", (char *)"pc", (char *)"-accel", (char *)"tcg", (char *)"-qmp", qmp_arg,
                    (char *)"-device", (char *)"virtio-balloon-pci,id=balloon0", NULL};
    int64_t deadline;
    peer_t *p;

    if (qemu_path[0] == '\0')
        return 0;
    p = calloc(1, sizeof(*p));
    assert_non_null(p);
    snprintf(p->dir, sizeof(p->dir), "/tmp/aqmp-qemu-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(sock, sizeof(sock), "%s/qemu.qmp", p->dir);
    snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", sock);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    /* QEMU says nothing when ready, and its socket file appears before it listens: ready is when a
     * QMP session can be had */
    deadline = tt_mono_ms() + 20000;
    for (;;) {
        bal_qmp_conn_t *c = NULL;
        bal_error_t err = {0};
        if (bal_qmp_conn_open(sock, 2000, &c, &err) == 0) {
            bal_qmp_conn_free(c);
            break;
        }
        if (tt_mono_ms() > deadline)
            fail_msg("QEMU did not come up: %s", err.message);
        poll(NULL, 0, 20);
    }
    p->t = bal_qmp_socket_transport_new_dir(p->dir, 5000, NULL, NULL);
    list_domains(p);
    *state = p;
    return 0;
}

static int qemu_teardown(void **state)
{
    peer_t *p = *state;
    char sock[128];

    if (p != NULL) {
        snprintf(sock, sizeof(sock), "%s/qemu.qmp", p->dir);
        bal_domain_list_free(&p->list);
        bal_transport_free(p->t);
        p->t = NULL;
        tt_spawn_stop(p->pid);
        p->pid = -1;
        unlink(sock);
    }
    return peer_teardown(state);
}

static void test_qemu_reference(void **state)
{
    peer_t *p = *state;
    bal_error_t err = {0};
    char *cmd = NULL, *reply, *path = NULL;
    bal_stats_t st;

    if (qemu_path[0] == '\0')
        skip();
    assert_int_equal(p->list.count, 1);
    assert_string_equal(p->list.items[0].name, "qemu");

    assert_int_equal(bal_qmp_build_qom_list("/machine/peripheral", &cmd, NULL), 0);
    reply = run(p, "qemu", cmd);
    assert_int_equal(bal_qmp_find_balloon(reply, strlen(reply), "/machine/peripheral", &path, NULL), 0);
    assert_string_equal(path, BALLOON);
    free(path);
    free(reply);
    free(cmd);

    /* QEMU 7.2, guest never started (-S): ten stats, all printed as 18446744073709551615 */
    st = get_stats(p, "qemu");
    assert_int_equal(st.known, 10);
    assert_int_equal(st.last_update, 0);
    assert_int_equal(count_set(&st), 0);

    set_interval(p, "qemu", 7);
    assert_int_equal(get_interval(p, "qemu"), 7);

    assert_int_equal(bal_qmp_build_qom_set_int(BALLOON, BAL_QMP_PROP_INTERVAL, INT64_C(4294967296), &cmd, NULL),
                     0);
    reply = run(p, "qemu", cmd);
    assert_int_equal(bal_qmp_parse_empty(reply, strlen(reply), &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "GenericError");
    assert_string_equal(err.message, "timer value is too big");
    free(reply);
    free(cmd);

    assert_int_equal(bal_qmp_build_qom_get("/machine/peripheral/nope", BAL_QMP_PROP_STATS, &cmd, NULL), 0);
    reply = run(p, "qemu", cmd);
    assert_int_equal(bal_qmp_parse_guest_stats(reply, strlen(reply), &st, &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "DeviceNotFound");
    assert_string_equal(err.message, "Device '/machine/peripheral/nope' not found");
    free(reply);
    free(cmd);

    /* QEMU exits: its socket file stays behind and nobody listens */
    tt_spawn_stop(p->pid);
    p->pid = -1;
    assert_int_equal(bal_transport_execute(p->t, &p->list.items[0], "{\"execute\":\"qmp_capabilities\"}", &reply, &err),
                     -ENOENT); /* QEMU removes its socket when it exits */
    list_domains(p);
    assert_int_equal(p->list.count, 0);
}

int main(void)
{
    const struct CMUnitTest sim_tests[] = {
        cmocka_unit_test(test_sim_lists_every_domain),
        cmocka_unit_test(test_sim_finds_balloon),
        cmocka_unit_test(test_sim_profiles),
        cmocka_unit_test(test_sim_errors),
        cmocka_unit_test(test_sim_hung_peer),
        cmocka_unit_test(test_sim_restart),
    };
    const struct CMUnitTest qemu_tests[] = {
        cmocka_unit_test(test_qemu_reference),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    /* QEMU_SYSTEM_X86 may name another binary; the Debian one otherwise */
    tt_spawn_find(qemu_path, sizeof(qemu_path), getenv("QEMU_SYSTEM_X86"), "/usr/bin/qemu-system-x86_64");
    if (tt_spawn_sim() == NULL && qemu_path[0] == '\0')
        return 77;
    failed += cmocka_run_group_tests_name("balloon-sim", sim_tests, sim_setup, peer_teardown);
    failed += cmocka_run_group_tests_name("qemu", qemu_tests, qemu_setup, qemu_teardown);
    return failed;
}
