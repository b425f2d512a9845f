/* QMP messages: command builders and reply parsers, against QEMU's real replies and hostile ones. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "agent/bal_qmp.h"
#include "virtio/vb_stats.h"

/* QEMU 7.2's reply for a guest that has answered (10 stats, one unset). */
static const char qemu72_stats[] =
    "{\"return\": {\"stats\": {\"stat-swap-out\": 0, \"stat-available-memory\": 801058816, "
    "\"stat-free-memory\": 844943360, \"stat-minor-faults\": 219028, \"stat-major-faults\": 235, "
    "\"stat-total-memory\": 1044406272, \"stat-swap-in\": 0, \"stat-disk-caches\": 104857600, "
    "\"stat-htlb-pgalloc\": 18446744073709551615, \"stat-htlb-pgfail\": 0}, "
    "\"last-update\": 1358529861}}\r\n";

static int parse_stats(const char *s, bal_stats_t *out, bal_error_t *err)
{
    return bal_qmp_parse_guest_stats(s, strlen(s), out, err);
}

/* A parse that fails must leave *out as it was. */
static void assert_stats_refused(const char *reply, int code)
{
    bal_stats_t st, before;
    bal_error_t err = {0};

    memset(&st, 0xa5, sizeof(st));
    memcpy(&before, &st, sizeof(st));
    assert_int_equal(parse_stats(reply, &st, &err), code);
    assert_int_equal(err.code, code);
    assert_true(err.message[0] != '\0');
    assert_memory_equal(&st, &before, sizeof(st));
}

static void test_check_path(void **state)
{
    bal_error_t err = {0};
    char longpath[1100];
    (void)state;

    assert_int_equal(bal_qmp_check_path("/machine/peripheral/balloon0", &err), 0);
    assert_int_equal(bal_qmp_check_path("/machine/peripheral-anon/device[1]", NULL), 0);
    assert_int_equal(bal_qmp_check_path("/", NULL), 0);
    assert_int_equal(bal_qmp_check_path(NULL, &err), -EINVAL);
    assert_int_equal(bal_qmp_check_path("", &err), -EINVAL);
    assert_int_equal(bal_qmp_check_path("machine/peripheral", &err), -EINVAL);
    assert_non_null(strstr(err.message, "'machine/peripheral'"));
    assert_int_equal(bal_qmp_check_path("/machine/\"balloon0", &err), -EINVAL);
    assert_int_equal(bal_qmp_check_path("/machine/bal\\loon0", &err), -EINVAL);
    assert_int_equal(bal_qmp_check_path("/machine/bal\nloon0", &err), -EINVAL);
    /* the message never echoes a control character */
    assert_null(strchr(err.message, '\n'));
    assert_int_equal(bal_qmp_check_path("/machine/\x7f", &err), -EINVAL);
    assert_int_equal(bal_qmp_check_path("/machine/\xc3\xa9", &err), -EINVAL);
    assert_int_equal(bal_qmp_check_path("/machine/\t", &err), -EINVAL);
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(bal_qmp_check_path(longpath, &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
}

static void test_build_exact(void **state)
{
    char *s = NULL;
    (void)state;

    assert_int_equal(bal_qmp_build_qom_get("/machine/peripheral/balloon0", BAL_QMP_PROP_STATS, &s, NULL), 0);
    assert_string_equal(s, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/balloon0\","
                           "\"property\":\"guest-stats\"}}");
    free(s);
    assert_int_equal(bal_qmp_build_qom_set_int("/machine/peripheral-anon/device[1]", BAL_QMP_PROP_INTERVAL, 10,
                                               &s, NULL),
                     0);
    assert_string_equal(s, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine/peripheral-anon/"
                           "device[1]\",\"property\":\"guest-stats-polling-interval\",\"value\":10}}");
    free(s);
    assert_int_equal(bal_qmp_build_qom_set_int("/b", BAL_QMP_PROP_INTERVAL, INT64_MIN, &s, NULL), 0);
    assert_non_null(strstr(s, "\"value\":-9223372036854775808}"));
    free(s);
    assert_int_equal(bal_qmp_build_qom_list("/machine/peripheral", &s, NULL), 0);
    assert_string_equal(s, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral\"}}");
    free(s);
}

/* Whatever printable path is accepted comes back unchanged from a JSON parser. */
static void test_build_round_trip(void **state)
{
    const char *path = "/a b/<c>/{d}/'e'/[f]/%s/&g;/x:y,z";
    const char *keys[] = {"arguments", "path", NULL};
    char *s = NULL;
    char errbuf[128];
    yajl_val tree, v;
    (void)state;

    assert_int_equal(bal_qmp_build_qom_get(path, BAL_QMP_PROP_INTERVAL, &s, NULL), 0);
    tree = yajl_tree_parse(s, errbuf, sizeof(errbuf));
    assert_non_null(tree);
    v = yajl_tree_get(tree, keys, yajl_t_string);
    assert_non_null(v);
    assert_string_equal(YAJL_GET_STRING(v), path);
    yajl_tree_free(tree);
    free(s);
}

static void test_build_refuses(void **state)
{
    char *s = (char *)"untouched";
    bal_error_t err = {0};
    (void)state;

    assert_int_equal(bal_qmp_build_qom_get("/x\"}, \"execute\": \"quit", BAL_QMP_PROP_STATS, &s, &err), -EINVAL);
    assert_int_equal(bal_qmp_build_qom_get("no-slash", BAL_QMP_PROP_STATS, &s, &err), -EINVAL);
    assert_int_equal(bal_qmp_build_qom_get(NULL, BAL_QMP_PROP_STATS, &s, &err), -EINVAL);
    assert_int_equal(bal_qmp_build_qom_get("/x", NULL, &s, &err), -EINVAL);
    assert_int_equal(bal_qmp_build_qom_get("/x", "guest\"stats", &s, &err), -EINVAL);
    assert_int_equal(bal_qmp_build_qom_set_int("/x\\", BAL_QMP_PROP_INTERVAL, 1, &s, &err), -EINVAL);
    assert_int_equal(bal_qmp_build_qom_list("/x\x01", &s, &err), -EINVAL);
    assert_int_equal(bal_qmp_build_qom_list(NULL, &s, &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    assert_string_equal(s, "untouched");
}

static void test_stats_qemu72(void **state)
{
    bal_stats_t st;
    bal_error_t err = {0};
    (void)state;

    assert_int_equal(parse_stats(qemu72_stats, &st, &err), 0);
    assert_int_equal(err.code, 0); /* untouched on success */
    assert_int_equal(st.known, 10);
    assert_int_equal(st.last_update, 1358529861);
    assert_true(st.stat[BAL_STAT_FREE_MEMORY].set);
    assert_true(st.stat[BAL_STAT_FREE_MEMORY].value == 844943360);
    assert_true(st.stat[BAL_STAT_TOTAL_MEMORY].value == 1044406272);
    assert_true(st.stat[BAL_STAT_AVAILABLE_MEMORY].value == 801058816);
    assert_true(st.stat[BAL_STAT_DISK_CACHES].value == 104857600);
    assert_true(st.stat[BAL_STAT_SWAP_IN].set);
    assert_true(st.stat[BAL_STAT_SWAP_IN].value == 0);
    assert_false(st.stat[BAL_STAT_HTLB_PGALLOC].set);
    assert_true(st.stat[BAL_STAT_HTLB_PGFAIL].set);
    for (int i = BAL_STAT_OOM_KILLS; i < BAL_STAT_COUNT; i++)
        assert_false(st.stat[i].set);
}

/* QEMU 2.x: the stats document's six, unset as -1, and a guest that never answered. */
static void test_stats_legacy_minus_one(void **state)
{
    const char *reply = "{\"return\":{\"stats\":{\"stat-swap-out\":-1,\"stat-free-memory\":-1,"
                        "\"stat-minor-faults\":-1,\"stat-major-faults\":-1,\"stat-total-memory\":-1,"
                        "\"stat-swap-in\":-1},\"last-update\":0}}";
    bal_stats_t st;
    (void)state;

    assert_int_equal(parse_stats(reply, &st, NULL), 0);
    assert_int_equal(st.known, 6);
    assert_int_equal(st.last_update, 0);
    for (int i = 0; i < BAL_STAT_COUNT; i++)
        assert_false(st.stat[i].set);
}

/* QEMU 9.2: sixteen stats, named from the device model's table (virtio/vb_stats.h, held to QEMU's by
 * tests/qmp_transcript.sh), not the agent's: a typo in agent/bal_stats.c leaves its stat unset here.
 * test_stat_tables ties the two tables' tags together. */
static void test_stats_qemu92_all_keys(void **state)
{
    char reply[2048];
    size_t n = 0;
    bal_stats_t st;
    (void)state;

    n += (size_t)snprintf(reply + n, sizeof(reply) - n, "{\"return\":{\"last-update\":42,\"stats\":{");
    for (int i = 0; i < BAL_STAT_COUNT; i++)
        n += (size_t)snprintf(reply + n, sizeof(reply) - n, "%s\"%s\":%d", i ? "," : "",
                              vb_stat_name((unsigned)i), 1000 + i);
    snprintf(reply + n, sizeof(reply) - n, "}}}");
    assert_int_equal(parse_stats(reply, &st, NULL), 0);
    assert_int_equal(st.known, 16);
    assert_int_equal(st.last_update, 42);
    for (int i = 0; i < BAL_STAT_COUNT; i++) {
        assert_true(st.stat[i].set);
        assert_true(st.stat[i].value == (uint64_t)(1000 + i));
    }
}

static void test_stats_huge_numbers(void **state)
{
    bal_stats_t st;
    (void)state;

    assert_int_equal(parse_stats("{\"return\":{\"stats\":{"
                                 "\"stat-swap-in\":9223372036854775808,"      /* INT64_MAX + 1 */
                                 "\"stat-swap-out\":18446744073709551614,"    /* UINT64_MAX - 1 */
                                 "\"stat-major-faults\":18446744073709551615," /* unset */
                                 "\"stat-minor-faults\":18446744073709551616," /* beyond 64 bits */
                                 "\"stat-free-memory\":99999999999999999999999999999,"
                                 "\"stat-total-memory\":0,"
                                 "\"stat-disk-caches\":9223372036854775807"     /* INT64_MAX */
                                 "},\"last-update\":9223372036854775807}}",
                                 &st, NULL),
                     0);
    assert_int_equal(st.known, 7);
    /* Above INT64_MAX no guest can report: unset, not 18.4 EB (collectd-balloon(5)). */
    assert_false(st.stat[BAL_STAT_SWAP_IN].set);
    assert_false(st.stat[BAL_STAT_SWAP_OUT].set);
    assert_false(st.stat[BAL_STAT_MAJOR_FAULTS].set);
    assert_false(st.stat[BAL_STAT_MINOR_FAULTS].set);
    assert_false(st.stat[BAL_STAT_FREE_MEMORY].set);
    assert_true(st.stat[BAL_STAT_TOTAL_MEMORY].set);
    assert_true(st.stat[BAL_STAT_DISK_CACHES].set);
    assert_true(st.stat[BAL_STAT_DISK_CACHES].value == (uint64_t)INT64_MAX);
    assert_true(st.last_update == INT64_MAX);
}

/* The rule for a last-update that values can carry (collectd-balloon(5), TIMES). */
static void test_last_update_usable_as_time(void **state)
{
    const int64_t now = 1700000000, max = (INT64_C(1) << 34) - 1;
    (void)state;
    assert_true(bal_stats_time_usable(1, now));
    assert_true(bal_stats_time_usable(now, now));
    assert_true(bal_stats_time_usable(now + BAL_STATS_AHEAD_MAX_S, now)); /* another host's clock */
    assert_false(bal_stats_time_usable(now + BAL_STATS_AHEAD_MAX_S + 1, now));
    assert_false(bal_stats_time_usable(now + 365 * 86400, now));
    assert_false(bal_stats_time_usable(0, now));
    assert_false(bal_stats_time_usable(-5, now));
    /* What collectd's cdtime_t holds, whatever the clock says. */
    assert_true(bal_stats_time_usable(max, max - 10));
    assert_false(bal_stats_time_usable(max + 1, max - 10));
    assert_false(bal_stats_time_usable(max + 1, INT64_MAX));
    assert_true(bal_stats_time_usable(5, INT64_MAX));
    assert_false(bal_stats_time_usable(5, INT64_MIN));
    assert_false(bal_stats_time_usable(INT64_MAX, now));
}

/* A mistyped stat is unset but still counts as a key this QEMU printed. */
static void test_stats_mistyped_values_unset(void **state)
{
    bal_stats_t st;
    (void)state;

    assert_int_equal(parse_stats("{\"return\":{\"stats\":{"
                                 "\"stat-swap-in\":-2,"
                                 "\"stat-swap-out\":1.5,"
                                 "\"stat-major-faults\":1e3,"
                                 "\"stat-minor-faults\":\"12\","
                                 "\"stat-free-memory\":null,"
                                 "\"stat-total-memory\":{\"v\":1},"
                                 "\"stat-available-memory\":[1],"
                                 "\"stat-disk-caches\":true,"
                                 "\"stat-htlb-pgalloc\":-0,"
                                 "\"stat-htlb-pgfail\":-9223372036854775809"
                                 "},\"last-update\":5}}",
                                 &st, NULL),
                     0);
    assert_int_equal(st.known, 10);
    for (int i = 0; i < BAL_STAT_COUNT; i++)
        if (i != BAL_STAT_HTLB_PGALLOC)
            assert_false(st.stat[i].set);
    assert_true(st.stat[BAL_STAT_HTLB_PGALLOC].set); /* -0 is zero */
    assert_true(st.stat[BAL_STAT_HTLB_PGALLOC].value == 0);
}

static void test_stats_missing_and_extra_keys(void **state)
{
    bal_stats_t st;
    (void)state;

    assert_int_equal(parse_stats("{\"return\":{\"stats\":{\"stat-free-memory\":7,\"stat-from-the-future\":1,"
                                 "\"other\":{\"deep\":[1,2,{}]}},\"last-update\":3,\"extra\":\"x\"},"
                                 "\"extra-top\":[]}",
                                 &st, NULL),
                     0);
    assert_int_equal(st.known, 1);
    assert_true(st.stat[BAL_STAT_FREE_MEMORY].set);
    assert_true(st.stat[BAL_STAT_FREE_MEMORY].value == 7);
    assert_false(st.stat[BAL_STAT_TOTAL_MEMORY].set);

    assert_int_equal(parse_stats("{\"return\":{\"stats\":{},\"last-update\":0}}", &st, NULL), 0);
    assert_int_equal(st.known, 0);
}

static void test_stats_bad_shapes(void **state)
{
    (void)state;
    assert_stats_refused("{\"return\":{\"last-update\":1}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":[],\"last-update\":1}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":null,\"last-update\":1}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{}}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{},\"last-update\":\"1\"}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{},\"last-update\":-1}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{},\"last-update\":1.5}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{},\"last-update\":9223372036854775808}}", -EPROTO);
    assert_stats_refused("{\"return\":[]}", -EPROTO);
    assert_stats_refused("{\"return\":42}", -EPROTO);
    assert_stats_refused("{\"return\":{}}", -EPROTO);
    assert_stats_refused("{}", -EPROTO);
    assert_stats_refused("{\"event\":\"BALLOON_CHANGE\",\"data\":{\"actual\":1}}", -EPROTO);
    assert_stats_refused("{\"QMP\":{\"version\":{}}}", -EPROTO);
}

/* yajl's tree keeps both; QEMU's parser would take the last: ambiguous, so refused. */
static void test_duplicate_keys(void **state)
{
    (void)state;
    assert_stats_refused("{\"return\":{\"stats\":{\"stat-swap-in\":1,\"stat-swap-in\":2},\"last-update\":1}}",
                         -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{},\"stats\":{},\"last-update\":1}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{},\"last-update\":1,\"last-update\":2}}", -EPROTO);
    assert_stats_refused("{\"return\":{\"stats\":{},\"last-update\":1},\"return\":{}}", -EPROTO);
    assert_stats_refused("{\"error\":{\"class\":\"A\",\"desc\":\"a\"},\"error\":{}}", -EPROTO);
    assert_stats_refused("{\"error\":{\"class\":\"A\",\"class\":\"B\",\"desc\":\"a\"}}", -EPROTO);
}

static void test_error_replies(void **state)
{
    bal_error_t err = {0};
    bal_stats_t st;
    const char *r;
    (void)state;

    r = "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device '/machine/peripheral/nope' not found\"}}";
    assert_int_equal(parse_stats(r, &st, &err), -EREMOTEIO);
    assert_int_equal(err.code, -EREMOTEIO);
    assert_string_equal(err.qmp_class, "DeviceNotFound");
    assert_string_equal(err.message, "Device '/machine/peripheral/nope' not found");

    r = "{\"error\":{\"class\":\"GenericError\",\"desc\":\"timer value must be greater than zero\"}}";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "GenericError");
    assert_string_equal(err.message, "timer value must be greater than zero");

    /* the error wins over a return, class and desc may be missing or mistyped */
    r = "{\"return\":{},\"error\":{\"class\":7}}";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "");
    assert_true(err.message[0] != '\0');

    r = "{\"error\":\"oops\"}";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), &err), -EPROTO);
    assert_int_equal(err.code, -EPROTO);
    assert_string_equal(err.qmp_class, "");

    /* NULL err is allowed everywhere */
    r = "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"x\"}}";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), NULL), -EREMOTEIO);
}

static void test_not_json(void **state)
{
    static const char *const bad[] = {
        "hello",
        " ",
        "{",
        "{\"return\": {\"stats\": {\"stat-swap-in\": 1",
        "{\"return\":{}} x",
        "{\"return\":{}}{\"return\":{}}",
        "{\"return\":{}/* comment */}",
        "{\"return\":{}} // comment",
        "{'return':{}}",
        "{\"return\":{},}",
        "{\"return\":[1,]}",
        "{\"return\":NaN}",
        "{\"return\":01}",
        "{\"return\":\"\xff\xfe\"}",
        "{\"return\":\"a\\u0000b\"}",
        "{\"ret\\u0000urn\":{}}",
        "[{\"return\":{}}]",
        "42",
        "\"return\"",
        "null",
        "}{",
    };
    bal_error_t err;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bal_error_clear(&err);
        if (bal_qmp_parse_empty(bad[i], strlen(bad[i]), &err) != -EPROTO)
            fail_msg("accepted or misclassified: %s", bad[i]);
        assert_int_equal(err.code, -EPROTO);
        assert_true(err.message[0] != '\0');
        assert_null(strchr(err.message, '\n'));
    }
    assert_int_equal(bal_qmp_parse_empty("", 0, &err), -EPROTO);
    assert_int_equal(bal_qmp_parse_empty(NULL, 0, &err), -EPROTO);
}

/* len counts, not the NUL: a buffer may go on, or hold a NUL inside. */
static void test_length_not_nul(void **state)
{
    const char buf[] = "{\"return\":{}}GARBAGE";
    const char nul[] = "{\"return\":{}}\0{}";
    const char nul_inside[] = "{\"return\":{\0}}";
    (void)state;

    assert_int_equal(bal_qmp_parse_empty(buf, 13, NULL), 0);
    assert_int_equal(bal_qmp_parse_empty(buf, sizeof(buf) - 1, NULL), -EPROTO);
    assert_int_equal(bal_qmp_parse_empty(nul, sizeof(nul) - 1, NULL), -EPROTO);
    assert_int_equal(bal_qmp_parse_empty(nul_inside, sizeof(nul_inside) - 1, NULL), -EPROTO);
    assert_int_equal(bal_qmp_parse_empty(buf, 12, NULL), -EPROTO); /* truncated */
}

static char *nested(size_t depth, const char *inner)
{
    size_t len = strlen("{\"return\":") + depth * 2 + strlen(inner) + 2;
    char *s = malloc(len);
    size_t n = 0;

    assert_non_null(s);
    n += (size_t)sprintf(s, "{\"return\":");
    memset(s + n, '[', depth);
    n += depth;
    n += (size_t)sprintf(s + n, "%s", inner);
    memset(s + n, ']', depth);
    n += depth;
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

static void test_deep_nesting(void **state)
{
    bal_error_t err = {0};
    char *s;
    size_t half = BAL_QMP_MAX_REPLY / 2 - 16;
    (void)state;

    s = nested(8, "1");
    assert_int_equal(bal_qmp_parse_empty(s, strlen(s), &err), -EPROTO); /* parses: return is an array */
    assert_non_null(strstr(err.message, "not an object"));
    free(s);
    s = nested(100, "1");
    assert_int_equal(bal_qmp_parse_empty(s, strlen(s), &err), -EPROTO);
    assert_non_null(strstr(err.message, "nested"));
    free(s);
    /* half a megabyte of '[' then of ']': would blow the stack of a recursive tree free */
    s = nested(half, "");
    assert_true(strlen(s) <= BAL_QMP_MAX_REPLY);
    assert_int_equal(bal_qmp_parse_empty(s, strlen(s), &err), -EPROTO);
    free(s);
    /* unbalanced */
    s = malloc(BAL_QMP_MAX_REPLY);
    assert_non_null(s);
    memset(s, '{', BAL_QMP_MAX_REPLY);
    assert_int_equal(bal_qmp_parse_empty(s, BAL_QMP_MAX_REPLY, &err), -EPROTO);
    free(s);
}

static void test_size_limit(void **state)
{
    bal_error_t err = {0};
    size_t n = BAL_QMP_MAX_REPLY;
    char *s = malloc(n + 2);
    (void)state;

    assert_non_null(s);
    /* exactly the limit, padded with whitespace: accepted */
    memset(s, ' ', n + 1);
    memcpy(s, "{\"return\":{}}", 13);
    assert_int_equal(bal_qmp_parse_empty(s, n, &err), 0);
    /* one byte more: refused before parsing */
    assert_int_equal(bal_qmp_parse_empty(s, n + 1, &err), -EMSGSIZE);
    assert_int_equal(err.code, -EMSGSIZE);
    free(s);
}

static void test_parse_int(void **state)
{
    static const struct {
        const char *reply;
        int ret;
        int64_t value;
    } cases[] = {
        {"{\"return\": 2}", 0, 2},
        {"{\"return\": 0}", 0, 0},
        {"{\"return\": -1}", 0, -1},
        {"{\"return\": 4294967295}", 0, INT64_C(4294967295)},
        {"{\"return\": 9223372036854775807}", 0, INT64_MAX},
        {"{\"return\": -9223372036854775808}", 0, INT64_MIN},
        {"{\"return\": 9223372036854775808}", -EPROTO, 0},
        {"{\"return\": -9223372036854775809}", -EPROTO, 0},
        {"{\"return\": 18446744073709551615}", -EPROTO, 0},
        {"{\"return\": 2.0}", -EPROTO, 0},
        {"{\"return\": 2e1}", -EPROTO, 0},
        {"{\"return\": \"2\"}", -EPROTO, 0},
        {"{\"return\": null}", -EPROTO, 0},
        {"{\"return\": {}}", -EPROTO, 0},
        {"{\"return\": [2]}", -EPROTO, 0},
        {"{\"error\":{\"class\":\"GenericError\",\"desc\":\"Property 'virtio-balloon-pci.x' not found\"}}",
         -EREMOTEIO, 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = 12345;
        int ret = bal_qmp_parse_int(cases[i].reply, strlen(cases[i].reply), &v, NULL);
        if (ret != cases[i].ret)
            fail_msg("%s: returned %d, expected %d", cases[i].reply, ret, cases[i].ret);
        if (ret == 0)
            assert_true(v == cases[i].value);
        else
            assert_true(v == 12345);
    }
}

static void test_parse_empty(void **state)
{
    const char *r;
    (void)state;

    r = "{\"return\": {}}\r\n";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), NULL), 0);
    r = "{\"return\": {\"new-member\": 1}}";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), NULL), 0);
    r = "{\"return\": []}";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), NULL), -EPROTO);
    r = "{\"return\": null}";
    assert_int_equal(bal_qmp_parse_empty(r, strlen(r), NULL), -EPROTO);
}

static void test_find_balloon(void **state)
{
    bal_error_t err = {0};
    char *path = NULL;
    const char *r;
    (void)state;

    /* QEMU 7.2 with libvirt's balloon0 */
    r = "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
        "{\"name\": \"serial0\", \"type\": \"child<isa-serial>\"}, "
        "{\"name\": \"balloon0\", \"type\": \"child<virtio-balloon-pci>\"}]}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "/machine/peripheral", &path, &err), 0);
    assert_string_equal(path, "/machine/peripheral/balloon0");
    free(path);

    /* -balloon virtio: anonymous, and a parent given with a trailing slash */
    r = "{\"return\": [{\"name\": \"device[0]\", \"type\": \"child<virtio-net-pci>\"}, "
        "{\"name\": \"device[1]\", \"type\": \"child<virtio-balloon-ccw>\"}]}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "/machine/peripheral-anon/", &path, &err), 0);
    assert_string_equal(path, "/machine/peripheral-anon/device[1]");
    free(path);

    /* near misses and garbage are skipped; the first real one wins */
    r = "{\"return\": [1, null, \"child<virtio-balloon-pci>\", {\"name\": \"a\"}, "
        "{\"name\": \"b\", \"type\": \"child<virtio-balloon-pci\"}, "
        "{\"name\": \"c\", \"type\": \"link<virtio-balloon-pci>\"}, "
        "{\"name\": \"d\", \"type\": \"child<virtio-balloon->\"}, "
        "{\"name\": 5, \"type\": \"child<virtio-balloon-pci>\"}, "
        "{\"name\": \"q\\\"uote\", \"type\": \"child<virtio-balloon-pci>\"}, "
        "{\"name\": \"sl/ash\", \"type\": \"child<virtio-balloon-pci>\"}, "
        "{\"name\": \"\", \"type\": \"child<virtio-balloon-pci>\"}, "
        "{\"name\": \"dup\", \"name\": \"dup2\", \"type\": \"child<virtio-balloon-pci>\"}, "
        "{\"name\": \"good\", \"type\": \"child<virtio-balloon-device>\"}, "
        "{\"name\": \"second\", \"type\": \"child<virtio-balloon-pci>\"}]}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "/machine/peripheral", &path, &err), 0);
    assert_string_equal(path, "/machine/peripheral/good");
    free(path);

    path = (char *)"untouched";
    r = "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}]}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "/machine/peripheral", &path, &err), -ENOENT);
    assert_non_null(strstr(err.message, "'/machine/peripheral'"));
    r = "{\"return\": []}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "/machine/peripheral", &path, &err), -ENOENT);
    r = "{\"return\": {}}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "/machine/peripheral", &path, &err), -EPROTO);
    r = "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device '/machine/x' not found\"}}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "/machine/x", &path, &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "DeviceNotFound");
    r = "{\"return\": []}";
    assert_int_equal(bal_qmp_find_balloon(r, strlen(r), "machine", &path, &err), -EINVAL);
    assert_string_equal(path, "untouched");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_path),
        cmocka_unit_test(test_build_exact),
        cmocka_unit_test(test_build_round_trip),
        cmocka_unit_test(test_build_refuses),
        cmocka_unit_test(test_stats_qemu72),
        cmocka_unit_test(test_stats_legacy_minus_one),
        cmocka_unit_test(test_stats_qemu92_all_keys),
        cmocka_unit_test(test_stats_huge_numbers),
        cmocka_unit_test(test_last_update_usable_as_time),
        cmocka_unit_test(test_stats_mistyped_values_unset),
        cmocka_unit_test(test_stats_missing_and_extra_keys),
        cmocka_unit_test(test_stats_bad_shapes),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_length_not_nul),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_find_balloon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
