/* The agent's bookkeeping at scale, where a per-domain cost that grows with the number of domains would
 * show: the qmp-socket transport with well over a thousand live balloon-sim guests (one connection per
 * domain, found again through its table by many threads, let go when its socket goes, no receive
 * buffer kept by an idle connection), its configured-pairs form, and the agent's merge of a large
 * listing in any order, with duplicates, into its selection (pollers kept across refreshes, samples in
 * name order). Correctness and memory only: the timing targets are the benchmark's (tests/bench).
 * BALLOON_SKIP_SLOW=1 (sanitizers, valgrind) cuts the scales. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/bal_agent.h"
#include "agent/bal_qmp.h"
#include "agent/bal_qmp_socket.h"
#include "tests/tt_fake.h"
#include "tests/tt_env.h"
#include "tests/tt_spawn.h"

#define BALLOON "/machine/peripheral/balloon0"
#define THREADS 5


/* Open descriptors of this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

/* Bytes in use in the main thread's malloc arena, or -1 when the allocator is not glibc's (ASan,
 * valgrind), as a probe allocation shows. */
static long heap_in_use(void)
{
    struct mallinfo2 before = mallinfo2(), after;
    void *probe = malloc(64 * 1024);
    long used;

    assert_non_null(probe);
    after = mallinfo2();
    used = (long)after.uordblks - 64 * 1024;
    free(probe);
    if (after.uordblks < before.uordblks + 64 * 1024)
        return -1;
    return used;
}

/* ---- balloon-sim with many guests ---- */

typedef struct sim {
    pid_t pid;
    char dir[64];
    unsigned n;
} sim_t;

static int sim_setup(void **state)
{
    sim_t *s;
    char **argv;
    size_t k = 0;

    if (tt_spawn_sim() == NULL)
        return 0;
    s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->n = tt_skip_slow() ? 300 : 1500;
    snprintf(s->dir, sizeof(s->dir), "/tmp/perf-scale-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    argv = calloc(2 * (size_t)s->n + 4, sizeof(*argv));
    assert_non_null(argv);
    argv[k++] = (char *)tt_spawn_sim();
    argv[k++] = (char *)"--socket-dir";
    argv[k++] = s->dir;
    for (unsigned i = 0; i < s->n; i++) {
        argv[k++] = (char *)"--domain";
        assert_true(asprintf(&argv[k++], "g%05u:linux", i) > 0);
    }
    s->pid = tt_spawn_until_ready(argv, 60000); /* 1500 guests take a while on a loaded machine */
    for (size_t i = 4; i < k; i += 2)
        free(argv[i]);
    free(argv);
    *state = s;
    return 0;
}

static int sim_teardown(void **state)
{
    sim_t *s = *state;
    char path[128];

    if (s == NULL)
        return 0;
    tt_spawn_stop(s->pid);
    for (unsigned i = 0; i < s->n; i++) { /* those the test unlinked are already gone */
        snprintf(path, sizeof(path), "%s/g%05u.qmp", s->dir, i);
        unlink(path);
    }
    rmdir(s->dir);
    free(s);
    return 0;
}

static char *stats_command(void)
{
    char *cmd = NULL;
    assert_int_equal(bal_qmp_build_qom_get(BALLOON, BAL_QMP_PROP_STATS, &cmd, NULL), 0);
    return cmd;
}

/* guest-stats of dom; the transport's return code (0 only with a reply that parses). */
static int read_stats(bal_transport_t *t, const bal_domain_info_t *dom, const char *cmd)
{
    bal_error_t err = {0};
    bal_stats_t st;
    char *reply = NULL;
    int rc = bal_transport_execute(t, dom, cmd, &reply, &err);

    if (rc == 0) {
        if (bal_qmp_parse_guest_stats(reply, strlen(reply), &st, &err) != 0)
            fail_msg("guest-stats of '%s' did not parse: %s (%s)", dom->name, err.message, reply);
        free(reply);
    }
    return rc;
}

typedef struct reader {
    bal_transport_t *t;
    const bal_domain_list_t *list;
    const char *cmd;
    unsigned first, failures;
} reader_t;

static void *reader_main(void *opaque)
{
    reader_t *r = opaque;

    for (int round = 0; round < 2; round++)
        for (size_t i = r->first; i < r->list->count; i += THREADS)
            if (read_stats(r->t, &r->list->items[i], r->cmd) != 0)
                r->failures++;
    return NULL;
}

/* Every domain from THREADS threads at once, twice; returns the failures. */
static unsigned read_all_threaded(bal_transport_t *t, const bal_domain_list_t *list, const char *cmd)
{
    reader_t r[THREADS];
    pthread_t th[THREADS];
    unsigned failures = 0;

    for (unsigned k = 0; k < THREADS; k++) {
        r[k] = (reader_t){.t = t, .list = list, .cmd = cmd, .first = k};
        assert_int_equal(pthread_create(&th[k], NULL, reader_main, &r[k]), 0);
    }
    for (unsigned k = 0; k < THREADS; k++) {
        pthread_join(th[k], NULL);
        failures += r[k].failures;
    }
    return failures;
}

static void test_socket_transport_many_domains(void **state)
{
    sim_t *s = *state;
    bal_domain_list_t list = {0}, again = {0};
    bal_transport_t *t;
    bal_error_t err = {0};
    char *cmd = stats_command();
    int fds0, fds1;
    long heap0, heap1;
    unsigned removed = 0;

    tt_spawn_need_sim();
    t = bal_qmp_socket_transport_new_dir(s->dir, 10000, NULL, &err);
    assert_non_null(t);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, s->n);
    for (size_t i = 1; i < list.count; i++)
        assert_true(strcmp(list.items[i - 1].name, list.items[i].name) < 0);

    /* One command each from this thread: one connection per domain, and nothing more kept per idle
     * connection than its bookkeeping (a receive buffer per connection would be 16 KiB each). */
    fds0 = count_fds();
    heap0 = heap_in_use();
    for (size_t i = 0; i < list.count; i++)
        if (read_stats(t, &list.items[i], cmd) != 0)
            fail_msg("'%s' could not be read", list.items[i].name);
    fds1 = count_fds();
    heap1 = heap_in_use();
    assert_int_equal(fds1 - fds0, (int)s->n);
    if (heap0 >= 0 && heap1 >= 0) {
        long per = (heap1 - heap0) / (long)s->n;
        if (per > 1024)
            fail_msg("each idle connection holds %ld bytes of heap", per);
    }

    /* Many threads at once find the same connections again: no reconnection, no failure. */
    assert_int_equal(read_all_threaded(t, &list, cmd), 0);
    assert_int_equal(count_fds(), fds1);

    /* A third of the sockets go (QEMU exited): the next listing lets go of exactly their connections. */
    for (size_t i = 0; i < list.count; i += 3) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s.qmp", s->dir, list.items[i].name);
        assert_int_equal(unlink(path), 0);
        removed++;
    }
    assert_int_equal(bal_transport_list_domains(t, &again, &err), 0);
    assert_int_equal(again.count, s->n - removed);
    assert_int_equal(count_fds(), fds1 - (int)removed);
    /* a gone domain fails without a descriptor left behind; the others keep their connections */
    assert_int_equal(read_stats(t, &list.items[0], cmd), -ENOENT);
    assert_int_equal(read_all_threaded(t, &again, cmd), 0);
    assert_int_equal(count_fds(), fds1 - (int)removed);

    bal_domain_list_free(&again);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    assert_int_equal(count_fds(), fds0);
    free(cmd);
}

static void test_socket_pairs_many(void **state)
{
    sim_t *s = *state;
    bal_socket_spec_t *pairs = calloc(s->n, sizeof(*pairs));
    bal_domain_list_t list = {0};
    bal_domain_info_t nope = {.name = (char *)"nope"};
    bal_transport_t *t;
    bal_error_t err = {0};
    char *cmd = stats_command();
    char *reply = NULL;
    unsigned n = 0;

    tt_spawn_need_sim();
    assert_non_null(pairs);
    /* the sockets still there, configured in reverse name order */
    for (unsigned i = s->n; i-- > 0;) {
        char *path = NULL, *name = NULL;
        assert_true(asprintf(&path, "%s/g%05u.qmp", s->dir, i) > 0);
        assert_true(asprintf(&name, "g%05u", i) > 0);
        if (access(path, F_OK) != 0) {
            free(path);
            free(name);
            continue;
        }
        pairs[n++] = (bal_socket_spec_t){.name = name, .path = path};
    }
    assert_true(n > 0);

    t = bal_qmp_socket_transport_new_pairs(pairs, n, 10000, NULL, &err);
    assert_non_null(t);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, n);
    assert_int_equal(read_all_threaded(t, &list, cmd), 0);
    assert_int_equal(bal_transport_execute(t, &nope, cmd, &reply, &err), -ENOENT);
    assert_non_null(strstr(err.message, "'nope'"));
    bal_domain_list_free(&list);
    bal_transport_free(t);

    /* one name given twice, among many: refused, and named */
    if (n > 2) {
        const char *saved = pairs[n / 2].name;
        pairs[n / 2].name = pairs[n - 1].name;
        memset(&err, 0, sizeof(err));
        assert_null(bal_qmp_socket_transport_new_pairs(pairs, n, 10000, NULL, &err));
        assert_int_equal(err.code, -EINVAL);
        assert_non_null(strstr(err.message, pairs[n - 1].name));
        pairs[n / 2].name = saved;
    }
    for (unsigned i = 0; i < n; i++) {
        free((char *)pairs[i].name);
        free((char *)pairs[i].path);
    }
    free(pairs);
    free(cmd);
}

/* ---- the agent's selection over a large listing ---- */

/* A transport whose domains are d000000, d000002, ...: every one answers at once, with an interval
 * of 10 s (the configured one, so nothing is set) and fresh stats. Counts commands per domain. */
typedef struct fake {
    tt_fake_t tt;               /* first: the transport */
    unsigned max;               /* domain numbers below this */
    atomic_uint *commands;      /* per domain number */
    pthread_mutex_t lock;
    unsigned *order;            /* the listing: domain numbers, in this order */
    char (*uuids)[37];          /* per listing entry */
    size_t n_order;
} fake_t;

static unsigned number_of(const char *name)
{
    unsigned v = 0;
    assert_int_equal(sscanf(name, "d%6u", &v), 1);
    return v;
}

static int fake_list(bal_transport_t *base, bal_domain_list_t *out, bal_error_t *err)
{
    fake_t *f = (fake_t *)base;

    (void)err;
    pthread_mutex_lock(&f->lock);
    out->items = calloc(f->n_order + 1, sizeof(*out->items));
    assert_non_null(out->items);
    for (size_t i = 0; i < f->n_order; i++) {
        bal_domain_info_t *item = &out->items[i];
        assert_true(asprintf(&item->name, "d%06u", f->order[i]) > 0);
        memcpy(item->uuid, f->uuids[i], sizeof(item->uuid));
        item->instance = 1;
    }
    out->count = f->n_order;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static int fake_execute(bal_transport_t *base, const bal_domain_info_t *dom, const char *command, char **reply,
                        bal_error_t *err)
{
    fake_t *f = (fake_t *)base;
    unsigned k = number_of(dom->name);

    (void)err;
    assert_true(k < f->max);
    atomic_fetch_add(&f->commands[k], 1);
    if (strstr(command, "qom-set") != NULL)
        *reply = strdup("{\"return\": {}}");
    else if (strstr(command, BAL_QMP_PROP_INTERVAL) != NULL)
        *reply = strdup("{\"return\": 10}");
    else if (asprintf(reply, "{\"return\": {\"stats\": {\"stat-free-memory\": %u, \"stat-total-memory\": 1000000}, "
                             "\"last-update\": %lld}}", k, (long long)time(NULL)) < 0)
        *reply = NULL;
    assert_non_null(*reply);
    return 0;
}

typedef struct seen {
    unsigned max;
    unsigned count;
    char last[32];
    bool *got;
    char (*uuid)[37];
    bool out_of_order, failed;
} seen_t;

static void on_sample(void *opaque, const bal_sample_t *sample)
{
    seen_t *s = opaque;
    unsigned k = number_of(sample->name);

    if (s->count > 0 && strcmp(s->last, sample->name) >= 0)
        s->out_of_order = true;
    snprintf(s->last, sizeof(s->last), "%s", sample->name);
    if (sample->state == BAL_STATE_FAILED || !sample->has_stats)
        s->failed = true;
    assert_true(k < s->max);
    assert_false(s->got[k]); /* once per cycle */
    s->got[k] = true;
    memcpy(s->uuid[k], sample->uuid, sizeof(s->uuid[k]));
    s->count++;
}

static void seen_reset(seen_t *s)
{
    s->count = 0;
    s->last[0] = '\0';
    s->out_of_order = s->failed = false;
    memset(s->got, 0, s->max * sizeof(*s->got));
}

/* A deterministic shuffle (a linear congruential generator: the same order on every run). */
static void shuffle(unsigned *v, size_t n, uint32_t seed)
{
    for (size_t i = n; i > 1; i--) {
        size_t j;
        seed = seed * 1664525u + 1013904223u;
        j = seed % i;
        unsigned tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
}

static void test_agent_merges_large_listing(void **state)
{
    const unsigned n = tt_skip_slow() ? 1000 : 5000; /* domains at first: the even numbers below 2n */
    const unsigned max = 2 * n;
    fake_t f = {.max = max};
    seen_t seen = {.max = max};
    unsigned *before = calloc(max, sizeof(*before));
    bool *listed1 = calloc(max, sizeof(*listed1)), *listed2 = calloc(max, sizeof(*listed2));
    bal_agent_config_t config = {.polling_interval_s = 10, .timeout_ms = 5000};
    bal_agent_t *agent = NULL;
    bal_error_t err = {0};
    unsigned expected = 0;

    (void)state;
    f.commands = calloc(max, sizeof(*f.commands));
    f.order = calloc(max + n, sizeof(*f.order));
    f.uuids = calloc(max + n, sizeof(*f.uuids));
    seen.got = calloc(max, sizeof(*seen.got));
    seen.uuid = calloc(max, sizeof(*seen.uuid));
    assert_true(before && listed1 && listed2 && f.commands && f.order && f.uuids && seen.got && seen.uuid);
    pthread_mutex_init(&f.lock, NULL);
    tt_fake_init(&f.tt, fake_list, fake_execute);

    /* First listing: the even numbers, shuffled; every tenth one listed a second time, later on, with
     * another uuid: the first one counts. */
    for (unsigned k = 0; k < max; k += 2) {
        f.order[f.n_order++] = k;
        listed1[k] = true;
    }
    shuffle(f.order, f.n_order, 1);
    for (size_t i = 0, end = f.n_order; i < end; i++) {
        snprintf(f.uuids[i], sizeof(f.uuids[i]), "first-%06u", f.order[i]);
        if (f.order[i] % 20 == 0) {
            f.order[f.n_order] = f.order[i];
            snprintf(f.uuids[f.n_order], sizeof(f.uuids[0]), "again-%06u", f.order[i]);
            f.n_order++;
        }
    }
    assert_int_equal(bal_agent_new_with_transport(&config, &f.tt.base, &agent, &err), 0);
    assert_int_equal(bal_agent_read(agent, on_sample, &seen, &err), (int)n);
    assert_int_equal(seen.count, n);
    assert_false(seen.out_of_order);
    assert_false(seen.failed);
    for (unsigned k = 0; k < max; k++) {
        assert_int_equal(seen.got[k], listed1[k]);
        if (listed1[k]) {
            char want[37];
            snprintf(want, sizeof(want), "first-%06u", k);
            assert_string_equal(seen.uuid[k], want);
            assert_true(atomic_load(&f.commands[k]) >= 2); /* found the balloon, read the stats */
        }
        before[k] = atomic_load(&f.commands[k]);
    }

    /* Second listing, in name order this time (the fast path): every seventh one gone, every odd
     * number below n/2 new, sorting between the old ones. */
    pthread_mutex_lock(&f.lock);
    f.n_order = 0;
    for (unsigned k = 0; k < max; k++) {
        if ((k % 2 == 0 && k % 7 != 0) || (k % 2 == 1 && k < n / 2)) {
            f.order[f.n_order] = k;
            snprintf(f.uuids[f.n_order], sizeof(f.uuids[0]), "second-%06u", k);
            f.n_order++;
            listed2[k] = true;
            expected++;
        }
    }
    pthread_mutex_unlock(&f.lock);
    f.tt.changes = true;
    seen_reset(&seen);
    assert_int_equal(bal_agent_read(agent, on_sample, &seen, &err), (int)expected);
    assert_int_equal(seen.count, expected);
    assert_false(seen.out_of_order);
    assert_false(seen.failed);
    for (unsigned k = 0; k < max; k++) {
        unsigned now = atomic_load(&f.commands[k]);
        assert_int_equal(seen.got[k], listed2[k]);
        if (!listed2[k])
            assert_int_equal(now, before[k]);
        else if (listed1[k])
            assert_int_equal(now - before[k], 1); /* its poller was kept: the stats only */
        else
            assert_true(now >= 2);                /* a new poller finds the balloon first */
        if (listed2[k]) {
            char want[37];
            snprintf(want, sizeof(want), "second-%06u", k);
            assert_string_equal(seen.uuid[k], want);
        }
    }

    bal_agent_free(agent);
    pthread_mutex_destroy(&f.lock);
    free(seen.uuid);
    free(seen.got);
    free(f.uuids);
    free(f.order);
    free(f.commands);
    free(listed2);
    free(listed1);
    free(before);
}

int main(void)
{
    const struct CMUnitTest sim_tests[] = {
        cmocka_unit_test(test_socket_transport_many_domains),
        cmocka_unit_test(test_socket_pairs_many),
    };
    const struct CMUnitTest agent_tests[] = {
        cmocka_unit_test(test_agent_merges_large_listing),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    failed += cmocka_run_group_tests_name("agent", agent_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("balloon-sim", sim_tests, sim_setup, sim_teardown);
    return failed;
}
