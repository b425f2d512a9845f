/* The QMP server against QEMU 7.2 (the replies below are the ones the transcripts in tests/qmp recorded
 * from the real QEMU): greeting, negotiation, ids of every JSON type, CRLF, QEMU's JSON dialect and
 * its errors, unexpected members, missing and mistyped arguments, unknown commands, paths and
 * properties, the balloon's properties, the stats document's examples, run state and events, quit,
 * and the isolation of connections. Bytes in, bytes out: no sockets, a manual clock, no sleeps. */
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

#include "virtio/vb_json_print.h"
#include "virtio/vb_machine.h"
#include "virtio/vb_order.h"
#include "virtio/vb_qmp_server.h"

#define WALL_BASE INT64_C(1700000000)
#define S VB_NS_PER_S
#define BALLOON "/machine/peripheral/balloon0"
#define ANON "/machine/peripheral-anon/device[1]"
#define UNSET "18446744073709551615"

/* ---- fixture ---- */

typedef struct fx {
    vb_manual_clock_t mc;
    vb_qmp_server_t *s;
    unsigned wakes;
    void *last_woken;
    unsigned quits;
    vb_machine_t *quit_m;
    char *out; /* the last output taken, freed by the next take */
} fx_t;

static fx_t *fx_; /* the running test's fixture, for the callbacks' checks */

static void on_wake(vb_qmp_conn_t *conn, void *opaque)
{
    (void)conn;
    fx_->wakes++;
    fx_->last_woken = opaque;
}

static void on_quit(vb_machine_t *m, void *opaque)
{
    fx_t *fx = opaque;
    fx->quits++;
    fx->quit_m = m;
}

static const vb_qmp_server_ops_t ops = {.wake = on_wake, .quit = on_quit};

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    vb_manual_clock_init(&fx->mc, WALL_BASE);
    fx->s = vb_qmp_server_new(&fx->mc.clock, &ops, fx);
    assert_non_null(fx->s);
    fx_ = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    vb_qmp_server_free(fx->s);
    free(fx->out);
    free(fx);
    return 0;
}

static vb_machine_t *add_vm_cfg(fx_t *fx, const char *name, vb_guest_profile_t profile, bool anon,
                                bool prelaunch, unsigned stats)
{
    vb_machine_config_t cfg = {.name = name,
                               .profile = profile,
                               .stats_count = stats,
                               .memory_bytes = UINT64_C(128) << 20,
                               .anon = anon,
                               .prelaunch = prelaunch};
    vb_machine_t *m = vb_machine_new(&fx->mc.clock, &cfg);
    assert_non_null(m);
    assert_int_equal(vb_qmp_server_add(fx->s, m), 0);
    return m;
}

static vb_machine_t *add_vm(fx_t *fx, const char *name, vb_guest_profile_t profile)
{
    return add_vm_cfg(fx, name, profile, false, false, VB_STATS_QEMU72);
}

/* Everything queued on c, consumed. */
static const char *take(fx_t *fx, vb_qmp_conn_t *c)
{
    const char *data;
    size_t len = vb_qmp_conn_output(c, &data);

    free(fx->out);
    fx->out = strndup(data, len);
    assert_non_null(fx->out);
    vb_qmp_conn_consume(c, len);
    return fx->out;
}

static const char *send_bytes(fx_t *fx, vb_qmp_conn_t *c, const char *in, size_t len)
{
    assert_int_equal(vb_qmp_conn_input(c, in, len), 0);
    return take(fx, c);
}

static const char *send_str(fx_t *fx, vb_qmp_conn_t *c, const char *in)
{
    return send_bytes(fx, c, in, strlen(in));
}

static vb_qmp_conn_t *open_conn(fx_t *fx, const char *name, void *opaque)
{
    vb_qmp_conn_t *c = vb_qmp_conn_new(fx->s, name, opaque);
    assert_non_null(c);
    take(fx, c);
    return c;
}

#define OK_EMPTY "{\"return\": {}}\r\n"

static vb_qmp_conn_t *negotiated(fx_t *fx, const char *name)
{
    vb_qmp_conn_t *c = open_conn(fx, name, NULL);
    assert_string_equal(send_str(fx, c, "{\"execute\":\"qmp_capabilities\"}\n"), OK_EMPTY);
    return c;
}

/* in must give exactly the line expected (CRLF added here). */
#define EXPECT(fx, c, in, expected) assert_string_equal(send_str((fx), (c), (in)), expected "\r\n")
#define ERR(cls, desc) "{\"error\": {\"class\": \"" cls "\", \"desc\": \"" desc "\"}}"
#define GENERIC(desc) ERR("GenericError", desc)

static const char *qom_set_interval(const char *path, const char *value)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"%s\","
             "\"property\":\"guest-stats-polling-interval\",\"value\":%s}}",
             path, value);
    return buf;
}

/* ---- greeting and negotiation ---- */

static void test_greeting_is_qemu_7_2_with_oob_and_crlf(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = vb_qmp_conn_new(fx->s, "vm", NULL);
    assert_non_null(c);
    assert_string_equal(take(fx, c),
                        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
                        "\"package\": \"balloon-sim (" PACKAGE_STRING ")\"}, "
                        "\"capabilities\": [\"oob\"]}}\r\n");
    vb_qmp_conn_free(c);
}

static void test_commands_before_negotiation_are_refused(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = open_conn(fx, "vm", NULL);
    EXPECT(fx, c, "{\"execute\":\"query-status\"}",
           ERR("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\"}}",
           ERR("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"));
    /* unknown commands too, with their id */
    EXPECT(fx, c, "{\"execute\":\"nope\",\"id\":\"pre\"}",
           "{\"id\": \"pre\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
           "\"Expecting capabilities negotiation with 'qmp_capabilities'\"}}");
    /* the request object is still checked first */
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"foo\":1}", GENERIC("QMP input member 'foo' is unexpected"));
    EXPECT(fx, c, "{}", GENERIC("QMP input lacks member 'execute'"));
    /* qmp_capabilities checks its arguments as QEMU does */
    EXPECT(fx, c, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":\"oob\"}}",
           GENERIC("Invalid parameter type for 'enable', expected: array"));
    EXPECT(fx, c, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[1]}}",
           GENERIC("Invalid parameter type for 'enable[0]', expected: string"));
    EXPECT(fx, c, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"foo\"]}}",
           GENERIC("Parameter 'null' does not accept value 'foo'"));
    EXPECT(fx, c, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"x\":1}}",
           GENERIC("Parameter 'x' is unexpected"));
    /* none of that negotiated */
    EXPECT(fx, c, "{\"execute\":\"query-status\"}",
           ERR("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"));
    EXPECT(fx, c, "{\"execute\":\"qmp_capabilities\",\"id\":1}", "{\"return\": {}, \"id\": 1}");
    EXPECT(fx, c, "{\"execute\":\"qmp_capabilities\",\"id\":2}",
           "{\"id\": 2, \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
           "\"Capabilities negotiation is already complete, command ignored\"}}");
    EXPECT(fx, c, "{\"execute\":\"query-status\"}",
           "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}}");
    vb_qmp_conn_free(c);
}

static void test_oob_capability_and_exec_oob(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c, *plain;

    add_vm(fx, "vm", VB_GUEST_NONE);
    plain = negotiated(fx, "vm");
    EXPECT(fx, plain, "{\"exec-oob\":\"query-status\",\"id\":13}",
           "{\"id\": 13, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'exec-oob' is unexpected\"}}");
    c = open_conn(fx, "vm", NULL);
    EXPECT(fx, c, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":\"caps\"}",
           "{\"return\": {}, \"id\": \"caps\"}");
    EXPECT(fx, c, "{\"exec-oob\":\"query-status\",\"id\":1}",
           "{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"The command query-status does not support OOB\"}}");
    EXPECT(fx, c, "{\"exec-oob\":\"query-status\",\"execute\":\"query-status\",\"id\":2}",
           "{\"id\": 2, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' clashes with 'exec-oob'\"}}");
    EXPECT(fx, c, "{\"exec-oob\":1,\"id\":3}",
           "{\"id\": 3, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'exec-oob' must be a string\"}}");
    vb_qmp_conn_free(c);
    vb_qmp_conn_free(plain);
}

/* ---- ids ---- */

static void test_id_is_echoed_whatever_its_type(void **state)
{
    static const struct {
        const char *id, *echo;
    } cases[] = {
        {"\"x\"", "\"x\""},
        {"-7", "-7"},
        {"18446744073709551615", "18446744073709551615"},
        {"18446744073709551616", "1.8446744073709552e+19"},
        {"-9223372036854775809", "-9.2233720368547758e+18"},
        {"1.5", "1.5"},
        {"0.1", "0.10000000000000001"},
        {"1e3", "1000"},
        {"1.0", "1"},
        {"-0.0", "-0"},
        {"1e400", "inf"},
        {"true", "true"},
        {"false", "false"},
        {"null", "null"},
        {"[1,{\"a\":2},[]]", "[1, {\"a\": 2}, []]"},
        {"{\"k\":\"v\",\"n\":{}}", "{\"n\": {}, \"k\": \"v\"}"}, /* QDict order */
        {"\"a\\u00e9/\\u0001\\u007f\\ud83d\\ude00\\\"\\\\\\t\"",
         "\"a\\u00E9/\\u0001\\u007F\\uD83D\\uDE00\\\"\\\\\\t\""},
        {"\"caf\xc3\xa9\"", "\"caf\\u00E9\""},
        {"\"\\u0000\"", "\"\\u0000\""},
        {"'single \\'quoted\\' \"x\"'", "\"single 'quoted' \\\"x\\\"\""},
    };
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[256], out[512];
        snprintf(in, sizeof(in), "{\"execute\":\"query-status\",\"id\":%s}", cases[i].id);
        snprintf(out, sizeof(out),
                 "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, "
                 "\"id\": %s}\r\n",
                 cases[i].echo);
        assert_string_equal(send_str(fx, c, in), out);
        /* and on errors, where QEMU puts the id first */
        snprintf(in, sizeof(in), "{\"execute\":\"nope\",\"id\":%s}", cases[i].id);
        snprintf(out, sizeof(out),
                 "{\"id\": %s, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has "
                 "not been found\"}}\r\n",
                 cases[i].echo);
        assert_string_equal(send_str(fx, c, in), out);
    }
    vb_qmp_conn_free(c);
}

/* ---- QEMU's JSON dialect ---- */

static void test_not_an_object(void **state)
{
    static const char *const inputs[] = {"42\n", "\"str\"", "true\n", "null\n", "[]", "[1,2]"};
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        EXPECT(fx, c, inputs[i], GENERIC("QMP input must be a JSON object"));
    vb_qmp_conn_free(c);
}

static void test_json_errors_are_qemus(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"execute\":}", GENERIC("JSON parse error, expecting value")},
        {"bad\n", GENERIC("JSON parse error, invalid keyword 'bad'")},
        {"{bad}", GENERIC("JSON parse error, invalid keyword 'bad'")},
        {"}", GENERIC("JSON parse error, expecting value")},
        {"]", GENERIC("JSON parse error, expecting value")},
        {"{1:2}", GENERIC("JSON parse error, key is not a string in object")},
        {"{\"a\" 1}", GENERIC("JSON parse error, missing : in object pair")},
        {"{\"a\":1 \"b\":2}", GENERIC("JSON parse error, expected separator in dict")},
        {"{\"a\":1,}", GENERIC("JSON parse error, expecting value")},
        {"[1 2]", GENERIC("JSON parse error, expected separator in list")},
        {"[1,]", GENERIC("JSON parse error, expecting value")},
        {"{\"execute\":\"query-status\",\"id\":1,\"id\":2}", GENERIC("JSON parse error, duplicate key")},
        {"{\"execute\":\"query-status\",\"id\":nulls}", GENERIC("JSON parse error, invalid keyword 'nulls'")},
        {"{\"execute\":\"query-status\",\"id\":\"\\x\"}", GENERIC("JSON parse error, invalid escape sequence in string")},
        {"{\"execute\":\"query-status\",\"id\":\"\\u12\"}",
         GENERIC("JSON parse error, \\\\u12\\\" is not a valid Unicode character")},
        {"{\"execute\":\"query-status\",\"id\":\"\\udc00\"}",
         GENERIC("JSON parse error, \\\\udc00 is not a valid Unicode character")},
        {"{\"execute\":\"query-status\",\"id\":\"\xc3(\"}", GENERIC("JSON parse error, invalid UTF-8 sequence in string")},
        /* lexical errors: reported at once, then the lexer skips to a structural character */
        {"{\"execute\":\"query-status\",\"id\":-}", GENERIC("JSON parse error, stray '-}'")},
        {"{\"execute\":\"query-status\",\"id\":01}",
         GENERIC("JSON parse error, stray '01'") "\r\n" GENERIC("JSON parse error, expecting value")},
        {"{\"execute\":\"query-status\",\"id\":TRUE}",
         GENERIC("JSON parse error, stray 'T'") "\r\n" GENERIC("JSON parse error, expecting value")},
        {"{\"execute\":\"query-status\",\"id\":\"\x01\"}",
         GENERIC("JSON parse error, stray '\\\"\\u0001'") "\r\n" GENERIC("JSON parse error, expecting value")},
        {"{\"execute\":\"query-status\",\"id\":\"\xff\"}",
         GENERIC("JSON parse error, stray '\\\"\\uFFFD'") "\r\n" GENERIC("JSON parse error, expecting value")},
        {"@abc} {\"execute\":\"query-status\",\"id\":\"after\"}",
         GENERIC("JSON parse error, stray '@'") "\r\n" GENERIC("JSON parse error, expecting value") "\r\n"
         "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": \"after\"}"},
    };
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[1024];
        snprintf(want, sizeof(want), "%s\r\n", cases[i].out);
        assert_string_equal(send_str(fx, c, cases[i].in), want);
        /* and the connection still works */
        EXPECT(fx, c, "{\"execute\":\"query-balloon\"}", "{\"return\": {\"actual\": 134217728}}");
    }
    vb_qmp_conn_free(c);
}

static void test_framing(void **state)
{
    const char *whole = "{\"execute\":\"query-status\",\"id\":\"split\"}";
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    /* byte by byte: nothing until the object closes */
    for (size_t i = 0; i + 1 < strlen(whole); i++) {
        assert_string_equal(send_bytes(fx, c, whole + i, 1), "");
        assert_true(vb_qmp_conn_pending_input(c) > 0);
    }
    assert_string_equal(send_bytes(fx, c, whole + strlen(whole) - 1, 1),
                        "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, "
                        "\"id\": \"split\"}\r\n");
    /* two in one buffer, whitespace and newlines anywhere */
    assert_string_equal(send_str(fx, c, " {\"execute\":\"stop\",\"id\":1}\r\n\t{ \"execute\" :\n\"cont\",\"id\":2}"),
                        "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 0}, \"event\": \"STOP\"}\r\n"
                        "{\"return\": {}, \"id\": 1}\r\n"
                        "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 0}, \"event\": \"RESUME\"}\r\n"
                        "{\"return\": {}, \"id\": 2}\r\n");
    /* blank lines say nothing */
    assert_string_equal(send_str(fx, c, "\n\n   \r\n"), "");
    vb_qmp_conn_free(c);
}

/* ---- the request object ---- */

static void test_unexpected_and_malformed_members(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"foo\":1,\"id\":4}",
           "{\"id\": 4, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'foo' is unexpected\"}}");
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"arguments\":{\"x\":1},\"id\":5}",
           "{\"id\": 5, \"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'x' is unexpected\"}}");
    /* QEMU names the first unexpected argument in GLib hash-table order: b, not a */
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"arguments\":{\"b\":1,\"a\":2,\"c\":3},\"id\":6}",
           "{\"id\": 6, \"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'b' is unexpected\"}}");
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"arguments\":null,\"id\":7}",
           "{\"id\": 7, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'arguments' must be an object\"}}");
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"arguments\":[],\"id\":8}",
           "{\"id\": 8, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'arguments' must be an object\"}}");
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"arguments\":{},\"id\":9}",
           "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": 9}");
    EXPECT(fx, c, "{\"execute\":1,\"id\":10}",
           "{\"id\": 10, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' must be a string\"}}");
    EXPECT(fx, c, "{\"id\":11}",
           "{\"id\": 11, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input lacks member 'execute'\"}}");
    EXPECT(fx, c, "{\"execute\":\"query-status\",\"exec-oob\":\"x\",\"id\":12}",
           "{\"id\": 12, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'exec-oob' is unexpected\"}}");
    vb_qmp_conn_free(c);
}

static void test_missing_and_mistyped_arguments(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    EXPECT(fx, c, "{\"execute\":\"qom-get\"}", GENERIC("Parameter 'path' is missing"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\"}}",
           GENERIC("Parameter 'property' is missing"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"property\":\"guest-stats\"}}",
           GENERIC("Parameter 'path' is missing"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":1,\"property\":\"guest-stats\"}}",
           GENERIC("Invalid parameter type for 'path', expected: string"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":1}}",
           GENERIC("Invalid parameter type for 'property', expected: string"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\",\"extra\":1}}",
           GENERIC("Parameter 'extra' is unexpected"));
    /* missing comes before unexpected */
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"extra\":1}}", GENERIC("Parameter 'path' is missing"));
    EXPECT(fx, c, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats-polling-interval\"}}",
           GENERIC("Parameter 'value' is missing"));
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":null}}",
           GENERIC("Invalid parameter type for 'path', expected: string"));
    EXPECT(fx, c, "{\"execute\":\"query-balloon\",\"arguments\":{\"a\":1}}", GENERIC("Parameter 'a' is unexpected"));
    EXPECT(fx, c, "{\"execute\":\"stop\",\"arguments\":{\"a\":1}}", GENERIC("Parameter 'a' is unexpected"));
    EXPECT(fx, c, "{\"execute\":\"quit\",\"arguments\":{\"a\":1}}", GENERIC("Parameter 'a' is unexpected"));
    assert_int_equal(fx->quits, 0);
    vb_qmp_conn_free(c);
}

static void test_unknown_commands(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    EXPECT(fx, c, "{\"execute\":\"nope\"}", ERR("CommandNotFound", "The command nope has not been found"));
    EXPECT(fx, c, "{\"execute\":\"\"}", ERR("CommandNotFound", "The command  has not been found"));
    EXPECT(fx, c, "{\"execute\":\"query-status \"}",
           ERR("CommandNotFound", "The command query-status  has not been found"));
    EXPECT(fx, c, "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info\"}}",
           ERR("CommandNotFound", "The command human-monitor-command has not been found"));
    vb_qmp_conn_free(c);
}

/* ---- QOM ---- */

static void test_unknown_paths_and_properties(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/nope\",\"property\":\"guest-stats\"}}",
           ERR("DeviceNotFound", "Device '/machine/peripheral/nope' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine/peripheral/nope\",\"property\":\"x\",\"value\":1}}",
           ERR("DeviceNotFound", "Device '/machine/peripheral/nope' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"nope\"}}",
           GENERIC("Property 'virtio-balloon-pci.nope' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "/virtio-backend\",\"property\":\"nope\"}}",
           GENERIC("Property 'virtio-balloon-device.nope' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral\",\"property\":\"guest-stats\"}}",
           GENERIC("Property 'container.guest-stats' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/nope\"}}", ERR("DeviceNotFound", "Device '/nope' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"nope\"}}", ERR("DeviceNotFound", "Device 'nope' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"\"}}", GENERIC("Path '' is ambiguous"));
    /* qom-get does not tell an ambiguous path from a missing one */
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"\",\"property\":\"type\"}}",
           ERR("DeviceNotFound", "Device '' not found"));
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"" BALLOON "/virtio-backend/nope\"}}",
           ERR("DeviceNotFound", "Device '" BALLOON "/virtio-backend/nope' not found"));
    /* partial paths, doubled and trailing slashes */
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"balloon0\",\"property\":\"guest-stats-polling-interval\"}}",
           "{\"return\": 0}");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"peripheral/balloon0\",\"property\":\"type\"}}",
           "{\"return\": \"virtio-balloon-pci\"}");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine//peripheral/balloon0/\",\"property\":\"guest-stats-polling-interval\"}}",
           "{\"return\": 0}");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"virtio-backend\",\"property\":\"type\"}}",
           "{\"return\": \"virtio-balloon-device\"}");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"realized\"}}", "{\"return\": true}");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"virtio-backend\"}}",
           "{\"return\": \"" BALLOON "/virtio-backend\"}");
    vb_qmp_conn_free(c);
}

static void test_qom_list(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/\"}}",
           "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, {\"name\": \"objects\", \"type\": \"child<container>\"}, "
           "{\"name\": \"machine\", \"type\": \"child<pc-i440fx-7.2-machine>\"}, {\"name\": \"chardevs\", \"type\": \"child<container>\"}]}");
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral\"}}",
           "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, {\"name\": \"balloon0\", \"type\": \"child<virtio-balloon-pci>\"}]}");
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral-anon\"}}",
           "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}]}");
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"" BALLOON "\"}}",
           "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, {\"name\": \"realized\", \"type\": \"bool\"}, "
           "{\"name\": \"guest-stats-polling-interval\", \"type\": \"int\"}, {\"name\": \"guest-stats\", \"type\": \"guest statistics\"}, "
           "{\"name\": \"virtio-backend\", \"type\": \"child<virtio-balloon-device>\"}]}");
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"" BALLOON "/virtio-backend\"}}",
           "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, {\"name\": \"realized\", \"type\": \"bool\"}, "
           "{\"name\": \"guest-stats-polling-interval\", \"type\": \"int\"}, {\"name\": \"guest-stats\", \"type\": \"guest statistics\"}]}");
    vb_qmp_conn_free(c);
}

#define NO_DRIVER_STATS                                                                                \
    "{\"stats\": {\"stat-htlb-pgalloc\": " UNSET ", \"stat-swap-out\": " UNSET                           \
    ", \"stat-available-memory\": " UNSET ", \"stat-htlb-pgfail\": " UNSET ", \"stat-free-memory\": " UNSET \
    ", \"stat-minor-faults\": " UNSET ", \"stat-major-faults\": " UNSET ", \"stat-total-memory\": " UNSET   \
    ", \"stat-swap-in\": " UNSET ", \"stat-disk-caches\": " UNSET "}, \"last-update\": 0}"

static void test_guest_stats_without_a_driver(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\"}}",
           "{\"return\": " NO_DRIVER_STATS "}");
    /* polling on, time passes: no driver, no answer, last-update stays 0 */
    EXPECT(fx, c, qom_set_interval(BALLOON, "2"), "{\"return\": {}}");
    vb_manual_clock_advance(&fx->mc, 10 * S);
    vb_device_run(vb_machine_device(vb_qmp_server_find(fx->s, "vm")));
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "/virtio-backend\",\"property\":\"guest-stats\"}}",
           "{\"return\": " NO_DRIVER_STATS "}");
    vb_qmp_conn_free(c);
}

/* Finds "key": N in text. */
static uint64_t number_after(const char *text, const char *key)
{
    char pattern[64];
    const char *p;
    snprintf(pattern, sizeof(pattern), "\"%s\": ", key);
    p = strstr(text, pattern);
    assert_non_null(p);
    return strtoull(p + strlen(pattern), NULL, 10);
}

static void test_guest_stats_from_a_linux_guest(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;
    const char *get = "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\"}}";
    const char *reply;
    vb_machine_t *m;

    m = add_vm(fx, "vm", VB_GUEST_LINUX);
    c = negotiated(fx, "vm");
    vb_manual_clock_advance(&fx->mc, 5 * S);
    EXPECT(fx, c, qom_set_interval(BALLOON, "2"), "{\"return\": {}}");
    /* 0 -> 2 polls at once; the linux guest answers at once */
    vb_device_run(vb_machine_device(m));
    reply = send_str(fx, c, get);
    assert_true(number_after(reply, "last-update") == (uint64_t)WALL_BASE + 5);
    assert_true(number_after(reply, "stat-total-memory") == UINT64_C(128) << 20);
    assert_true(number_after(reply, "stat-free-memory") < UINT64_C(128) << 20);
    assert_null(strstr(reply, UNSET));
    /* the member order is QEMU's */
    assert_true(strncmp(reply, "{\"return\": {\"stats\": {\"stat-htlb-pgalloc\": ", 43) == 0);
    vb_qmp_conn_free(c);
}

static void test_guest_stats_16_and_6(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;
    const char *reply;

    add_vm_cfg(fx, "new", VB_GUEST_NONE, false, false, VB_STATS_QEMU92);
    add_vm_cfg(fx, "old", VB_GUEST_NONE, false, false, VB_STATS_LEGACY);
    c = negotiated(fx, "new");
    reply = send_str(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\"}}");
    assert_non_null(strstr(reply, "\"stat-direct-reclaims\": " UNSET));
    assert_non_null(strstr(reply, "\"stat-oom-kills\": " UNSET));
    vb_qmp_conn_free(c);
    c = negotiated(fx, "old");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\"}}",
           "{\"return\": {\"stats\": {\"stat-swap-out\": " UNSET ", \"stat-free-memory\": " UNSET
           ", \"stat-minor-faults\": " UNSET ", \"stat-major-faults\": " UNSET ", \"stat-total-memory\": " UNSET
           ", \"stat-swap-in\": " UNSET "}, \"last-update\": 0}}");
    vb_qmp_conn_free(c);
}

static void test_polling_interval_validation(void **state)
{
    static const struct {
        const char *value, *reply;
    } cases[] = {
        {"-1", GENERIC("timer value must be greater than zero")},
        {"-9223372036854775808", GENERIC("timer value must be greater than zero")},
        {"0", "{\"return\": {}}"},
        {"2", "{\"return\": {}}"},
        {"2", "{\"return\": {}}"},
        {"4294967296", GENERIC("timer value is too big")},
        {"9223372036854775807", GENERIC("timer value is too big")},
        {"4294967295", "{\"return\": {}}"},
        {"\"2\"", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
        {"2.5", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
        {"1e3", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
        {"true", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
        {"null", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
        {"{}", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
        {"18446744073709551615", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
        {"9223372036854775808", GENERIC("Invalid parameter type for 'guest-stats-polling-interval', expected: integer")},
    };
    fx_t *fx = *state;
    vb_qmp_conn_t *c;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[512];
        snprintf(want, sizeof(want), "%s\r\n", cases[i].reply);
        assert_string_equal(send_str(fx, c, qom_set_interval(BALLOON, cases[i].value)), want);
    }
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats-polling-interval\"}}",
           "{\"return\": 4294967295}");
    /* through the backend's own path too */
    EXPECT(fx, c, qom_set_interval(BALLOON "/virtio-backend", "5"), "{\"return\": {}}");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats-polling-interval\"}}",
           "{\"return\": 5}");
    /* read-only properties; the proxy's alias names the backend's type */
    EXPECT(fx, c, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\",\"value\":0}}",
           GENERIC("Property 'virtio-balloon-device.guest-stats' is not writable"));
    EXPECT(fx, c, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"" BALLOON "/virtio-backend\",\"property\":\"guest-stats\",\"value\":{}}}",
           GENERIC("Property 'virtio-balloon-device.guest-stats' is not writable"));
    EXPECT(fx, c, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"type\",\"value\":\"x\"}}",
           GENERIC("Property 'virtio-balloon-pci.type' is not writable"));
    vb_qmp_conn_free(c);
}

/* QEMU's stats document, docs/virtio-balloon-stats.txt, runs its four examples on -balloon virtio's
 * /machine/peripheral-anon/device[1]; its last one misspells the property, and QEMU rejects it. */
static void test_stats_document_examples(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;
    const char *reply;
    vb_machine_t *m;

    m = add_vm_cfg(fx, "doc", VB_GUEST_LEGACY, true, false, VB_STATS_LEGACY);
    c = negotiated(fx, "doc");
    EXPECT(fx, c,
           "{ \"execute\": \"qom-set\",\n"
           "             \"arguments\": { \"path\": \"/machine/peripheral-anon/device[1]\",\n"
           "                         \"property\": \"guest-stats-polling-interval\", \"value\": 2 } }\n",
           "{\"return\": {}}");
    vb_device_run(vb_machine_device(m)); /* the legacy guest answers at once */
    EXPECT(fx, c,
           "{ \"execute\": \"qom-set\",\n"
           "             \"arguments\": { \"path\": \"/machine/peripheral-anon/device[1]\",\n"
           "                         \"property\": \"guest-stats-polling-interval\", \"value\": 10 } }\n",
           "{\"return\": {}}");
    reply = send_str(fx, c,
                     "{ \"execute\": \"qom-get\",\n"
                     "  \"arguments\": { \"path\": \"/machine/peripheral-anon/device[1]\",\n"
                     "  \"property\": \"guest-stats\" } }\n");
    /* the documented shape: six stats and last-update */
    assert_true(strncmp(reply, "{\"return\": {\"stats\": {\"stat-swap-out\": ", 39) == 0);
    assert_non_null(strstr(reply, "\"stat-free-memory\": "));
    assert_non_null(strstr(reply, "\"stat-minor-faults\": "));
    assert_non_null(strstr(reply, "\"stat-major-faults\": "));
    assert_non_null(strstr(reply, "\"stat-total-memory\": "));
    assert_non_null(strstr(reply, "\"stat-swap-in\": "));
    assert_null(strstr(reply, "stat-available-memory"));
    assert_true(number_after(reply, "last-update") == (uint64_t)WALL_BASE);
    EXPECT(fx, c,
           "{ \"execute\": \"qom-set\",\n"
           "             \"arguments\": { \"path\": \"/machine/peripheral-anon/device[1]\",\n"
           "                         \"property\": \"stats-polling-interval\", \"value\": 0 } }\n",
           GENERIC("Property 'virtio-balloon-pci.stats-polling-interval' not found"));
    /* so polling is still on, at 10 s */
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" ANON "\",\"property\":\"guest-stats-polling-interval\"}}",
           "{\"return\": 10}");
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral-anon\"}}",
           "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, {\"name\": \"device[1]\", \"type\": \"child<virtio-balloon-pci>\"}]}");
    EXPECT(fx, c, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral\"}}",
           "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}]}");
    EXPECT(fx, c, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\"}}",
           ERR("DeviceNotFound", "Device '" BALLOON "' not found"));
    assert_string_equal(vb_machine_balloon_path(m), ANON);
    vb_qmp_conn_free(c);
}

/* ---- run state and events ---- */

#define STATUS(s, r) "{\"return\": {\"status\": \"" s "\", \"singlestep\": false, \"running\": " r "}}"
#define EVENT(name) "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 0}, \"event\": \"" name "\"}\r\n"

static void test_run_state_and_events(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c, *other, *raw;
    int token;

    add_vm_cfg(fx, "vm", VB_GUEST_NONE, false, true, VB_STATS_QEMU72); /* as qemu -S */
    c = negotiated(fx, "vm");
    other = open_conn(fx, "vm", &token);
    assert_string_equal(send_str(fx, other, "{\"execute\":\"qmp_capabilities\"}"), OK_EMPTY);
    raw = open_conn(fx, "vm", NULL); /* never negotiates: gets no events */

    EXPECT(fx, c, "{\"execute\":\"query-status\"}", STATUS("prelaunch", "false"));
    EXPECT(fx, c, "{\"execute\":\"stop\"}", "{\"return\": {}}"); /* nothing to stop */
    EXPECT(fx, c, "{\"execute\":\"query-status\"}", STATUS("prelaunch", "false"));
    fx->wakes = 0;
    assert_string_equal(send_str(fx, c, "{\"execute\":\"cont\"}"), EVENT("RESUME") OK_EMPTY);
    /* the other client got the event too, and the loop was told to flush it */
    assert_string_equal(take(fx, other), EVENT("RESUME"));
    assert_int_equal(fx->wakes, 1);
    assert_ptr_equal(fx->last_woken, &token);
    assert_string_equal(take(fx, raw), "");
    EXPECT(fx, c, "{\"execute\":\"query-status\"}", STATUS("running", "true"));
    EXPECT(fx, c, "{\"execute\":\"cont\"}", "{\"return\": {}}"); /* already running: no event */
    vb_manual_clock_advance(&fx->mc, 1500 * VB_NS_PER_MS);
    assert_string_equal(send_str(fx, c, "{\"execute\":\"stop\"}"),
                        "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 500000}, \"event\": \"STOP\"}\r\n" OK_EMPTY);
    take(fx, other);
    EXPECT(fx, c, "{\"execute\":\"stop\"}", "{\"return\": {}}");
    EXPECT(fx, c, "{\"execute\":\"query-status\"}", STATUS("paused", "false"));
    /* a reset of a VM that is not running leaves it in prelaunch */
    assert_string_equal(send_str(fx, c, "{\"execute\":\"system_reset\"}"),
                        "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 500000}, \"event\": \"RESET\", "
                        "\"data\": {\"guest\": false, \"reason\": \"host-qmp-system-reset\"}}\r\n" OK_EMPTY);
    assert_non_null(strstr(take(fx, other), "\"event\": \"RESET\""));
    EXPECT(fx, c, "{\"execute\":\"query-status\"}", STATUS("prelaunch", "false"));
    take(fx, c);
    send_str(fx, c, "{\"execute\":\"cont\"}");
    send_str(fx, c, "{\"execute\":\"system_reset\"}");
    EXPECT(fx, c, "{\"execute\":\"query-status\"}", STATUS("running", "true"));
    EXPECT(fx, c, "{\"execute\":\"query-balloon\"}", "{\"return\": {\"actual\": 134217728}}");
    assert_string_equal(take(fx, raw), "");
    vb_qmp_conn_free(raw);
    vb_qmp_conn_free(other);
    vb_qmp_conn_free(c);
}

/* stop pauses the polling clock, as QEMU's virtual clock pauses */
static void test_stop_pauses_polling(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;
    vb_machine_t *m;
    vb_device_t *dev;
    const char *get = "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" BALLOON "\",\"property\":\"guest-stats\"}}";

    m = add_vm(fx, "vm", VB_GUEST_LINUX);
    dev = vb_machine_device(m);
    c = negotiated(fx, "vm");
    send_str(fx, c, qom_set_interval(BALLOON, "2"));
    vb_device_run(dev);
    assert_true(number_after(send_str(fx, c, get), "last-update") == (uint64_t)WALL_BASE);
    send_str(fx, c, "{\"execute\":\"stop\"}");
    assert_true(vb_device_next_deadline_ns(dev) == INT64_MAX);
    vb_manual_clock_advance(&fx->mc, 60 * S);
    vb_device_run(dev);
    assert_true(number_after(send_str(fx, c, get), "last-update") == (uint64_t)WALL_BASE);
    send_str(fx, c, "{\"execute\":\"cont\"}");
    /* the 2 s left when it stopped */
    assert_true(vb_device_next_deadline_ns(dev) == 62 * S);
    vb_manual_clock_advance(&fx->mc, 2 * S);
    vb_device_run(dev);
    assert_true(number_after(send_str(fx, c, get), "last-update") == (uint64_t)WALL_BASE + 62);
    vb_qmp_conn_free(c);
}

static void test_quit_ends_the_vm(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c, *other, *bystander;
    vb_machine_t *m;

    m = add_vm(fx, "vm", VB_GUEST_NONE);
    add_vm(fx, "vm2", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    other = negotiated(fx, "vm");
    bystander = negotiated(fx, "vm2");
    fx->wakes = 0;
    /* the rest of the input after quit is not executed */
    assert_string_equal(send_str(fx, c, "{\"execute\":\"quit\",\"id\":\"q\"}{\"execute\":\"query-status\"}"),
                        "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 0}, \"event\": \"SHUTDOWN\", "
                        "\"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n"
                        "{\"return\": {}, \"id\": \"q\"}\r\n");
    assert_int_equal(fx->quits, 1);
    assert_ptr_equal(fx->quit_m, m);
    assert_true(vb_qmp_conn_finished(c));
    assert_true(vb_qmp_conn_finished(other));
    assert_false(vb_qmp_conn_finished(bystander));
    assert_true(fx->wakes >= 1);
    assert_non_null(strstr(take(fx, other), "\"event\": \"SHUTDOWN\""));
    assert_string_equal(send_str(fx, other, "{\"execute\":\"query-status\"}"), "");
    /* no new clients for it */
    assert_null(vb_qmp_conn_new(fx->s, "vm", NULL));
    assert_int_equal(errno, ENOENT);
    vb_qmp_conn_free(c);
    vb_qmp_conn_free(other);
    vb_qmp_server_remove(fx->s, m);
    assert_null(vb_qmp_server_find(fx->s, "vm"));
    assert_int_equal(vb_qmp_server_count(fx->s), 1);
    EXPECT(fx, bystander, "{\"execute\":\"query-status\"}", STATUS("running", "true"));
    vb_qmp_conn_free(bystander);
}

/* ---- the set of VMs, and isolation ---- */

static void test_named_vms(void **state)
{
    fx_t *fx = *state;
    const char *odd = "a \"quoted\" \\ name: with:colons";
    vb_machine_config_t cfg = {.name = "x", .profile = VB_GUEST_NONE, .stats_count = VB_STATS_QEMU72,
                               .memory_bytes = 1 << 20};
    vb_machine_t *dup;
    vb_qmp_conn_t *c;

    add_vm(fx, odd, VB_GUEST_NONE);
    add_vm(fx, "x", VB_GUEST_NONE);
    for (int i = 0; i < 500; i++) { /* enough to grow the table */
        char name[16];
        snprintf(name, sizeof(name), "dom%d", i);
        add_vm(fx, name, VB_GUEST_NONE);
    }
    assert_int_equal(vb_qmp_server_count(fx->s), 502);
    assert_string_equal(vb_machine_name(vb_qmp_server_find(fx->s, odd)), odd);
    assert_string_equal(vb_machine_name(vb_qmp_server_find(fx->s, "dom499")), "dom499");
    assert_null(vb_qmp_server_find(fx->s, "dom500"));
    dup = vb_machine_new(&fx->mc.clock, &cfg);
    assert_non_null(dup);
    assert_int_equal(vb_qmp_server_add(fx->s, dup), -EEXIST); /* and freed */
    assert_null(vb_qmp_conn_new(fx->s, "nope", NULL));
    assert_int_equal(errno, ENOENT);
    c = negotiated(fx, odd);
    EXPECT(fx, c, "{\"execute\":\"query-status\"}", STATUS("running", "true"));
    vb_qmp_conn_free(c);
}

static void test_garbage_affects_only_its_connection(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *bad, *good;
    char junk[4096];

    add_vm(fx, "vm", VB_GUEST_NONE);
    bad = negotiated(fx, "vm");
    good = negotiated(fx, "vm");
    /* half a message on the good one, then garbage and an unfinished string on the bad one */
    assert_string_equal(send_str(fx, good, "{\"execute\":\"query-"), "");
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 1);
    send_bytes(fx, bad, junk, sizeof(junk));
    send_str(fx, bad, "{\"execute\":\"query-status\",\"id\":\"never closed");
    EXPECT(fx, good, "status\"}", STATUS("running", "true"));
    assert_string_equal(take(fx, bad), "");
    /* deep nesting is refused, then the connection goes on */
    {
        char deep[2100];
        memset(deep, '[', 1030);
        deep[1030] = '\0';
        assert_string_equal(send_str(fx, good, deep),
                            GENERIC("JSON nesting depth limit exceeded") "\r\n");
        send_str(fx, good, "\n");
    }
    vb_qmp_conn_free(bad);
    vb_qmp_conn_free(good);
}

/* A query-status with n arguments "k0": 0 ... left open at *len, with room for 16 more bytes. */
static char *many_arguments(size_t n, size_t *len)
{
    char *in = malloc(n * 16 + 128);

    assert_non_null(in);
    *len = (size_t)sprintf(in, "{\"execute\":\"query-status\",\"arguments\":{");
    for (size_t i = 0; i < n; i++)
        *len += (size_t)sprintf(in + *len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    return in;
}

/* A huge object costs linear time (a duplicate key found by hashing, QEMU's orders by sorting). */
static void test_huge_objects(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;
    size_t len;
    char *in = many_arguments(5000, &len);
    const char *reply;

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    strcpy(in + len, ",\"k77\":0}}");
    EXPECT(fx, c, in, GENERIC("JSON parse error, duplicate key"));
    strcpy(in + len, "}}");
    reply = send_str(fx, c, in);
    {
        const char *prefix = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'k";
        assert_true(strncmp(reply, prefix, strlen(prefix)) == 0);
    }
    assert_non_null(strstr(reply, "' is unexpected\"}}\r\n"));
    free(in);
    vb_qmp_conn_free(c);
}

/* More unexpected arguments than the model of GLib's hash table has sizes for (vb_order.h): one of
 * them is reported, and nothing is freed that was never allocated (balloon-sim crashed here). */
static void test_more_arguments_than_the_hash_model_holds(void **state)
{
    fx_t *fx = *state;
    vb_qmp_conn_t *c;
    size_t len;
    char *in = many_arguments(200000, &len);
    const char *reply, *prefix = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'k";

    add_vm(fx, "vm", VB_GUEST_NONE);
    c = negotiated(fx, "vm");
    strcpy(in + len, "}}");
    reply = send_str(fx, c, in);
    assert_true(strncmp(reply, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(reply, "' is unexpected\"}}\r\n"));
    free(in);
    vb_qmp_conn_free(c);
}

/* ---- the pieces ---- */

static void test_qdict_order_is_qemus(void **state)
{
    const char *keys[VB_STAT_COUNT];
    size_t order[VB_STAT_COUNT];
    static const char *const qemu_order[] = {"stat-htlb-pgalloc",  "stat-swap-out",      "stat-available-memory",
                                             "stat-htlb-pgfail",   "stat-free-memory",   "stat-minor-faults",
                                             "stat-major-faults",  "stat-total-memory",  "stat-swap-in",
                                             "stat-disk-caches"};
    const char *status[] = {"running", "singlestep", "status"};
    (void)state;
    for (unsigned i = 0; i < VB_STATS_QEMU72; i++)
        keys[i] = vb_stat_name(i);
    vb_order_qdict(keys, VB_STATS_QEMU72, order);
    for (unsigned i = 0; i < VB_STATS_QEMU72; i++)
        assert_string_equal(keys[order[i]], qemu_order[i]);
    /* status and singlestep share a bucket: the later insertion comes first */
    vb_order_qdict(status, 3, order);
    assert_string_equal(status[order[0]], "status");
    assert_string_equal(status[order[1]], "singlestep");
    assert_string_equal(status[order[2]], "running");
}

static void test_first_unexpected(void **state)
{
    static const char *const none[] = {NULL};
    static const char *const some[] = {"b", NULL};
    static const char *const v[] = {"b", "a", "c"};
    static const char *const many[] = {"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};
    const char *first;
    (void)state;
    assert_string_equal(vb_order_first_unexpected(v, 3, none), "b");
    assert_string_equal(vb_order_first_unexpected(v, 3, some), "a");
    /* a grown table still yields one of the keys */
    first = vb_order_first_unexpected(many, 9, none);
    assert_non_null(first);
    assert_true(first[0] == 'k');
}

static void test_qobj_printing(void **state)
{
    vb_qobj_t *d = vb_qobj_dict(), *l = vb_qobj_list();
    vb_buf_t out = {0};
    char *text;
    size_t len;
    (void)state;
    assert_int_equal(vb_qobj_list_append(l, vb_qobj_uint(UINT64_MAX)), 0);
    assert_int_equal(vb_qobj_list_append(l, vb_qobj_int(INT64_MIN)), 0);
    assert_int_equal(vb_qobj_list_append(l, vb_qobj_string("\x7f\x01/\xe2\x98\x83")), 0);
    assert_int_equal(vb_qobj_dict_put(d, "b", l), 0);
    assert_int_equal(vb_qobj_dict_put(d, "a", vb_qobj_null()), 0);
    assert_int_equal(vb_qobj_dict_put(d, "a", vb_qobj_bool(true)), 0); /* replaced */
    assert_int_equal(vb_qobj_list_append(d, vb_qobj_null()), -EINVAL); /* not a list: freed */
    assert_int_equal(vb_json_print(d, &out), 0);
    text = out.p;
    len = out.len;
    assert_string_equal(text, "{\"a\": true, \"b\": [18446744073709551615, -9223372036854775808, "
                              "\"\\u007F\\u0001/\\u2603\"]}");
    assert_int_equal(len, strlen(text));
    free(text);
    vb_qobj_free(d);
    vb_qobj_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greeting_is_qemu_7_2_with_oob_and_crlf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands_before_negotiation_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oob_capability_and_exec_oob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_is_echoed_whatever_its_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_an_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_errors_are_qemus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_and_malformed_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_mistyped_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_paths_and_properties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qom_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_stats_without_a_driver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_stats_from_a_linux_guest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_stats_16_and_6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_polling_interval_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_document_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_state_and_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_pauses_polling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quit_ends_the_vm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_vms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_affects_only_its_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_more_arguments_than_the_hash_model_holds, setup, teardown),
        cmocka_unit_test(test_qdict_order_is_qemus),
        cmocka_unit_test(test_first_unexpected),
        cmocka_unit_test(test_qobj_printing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
