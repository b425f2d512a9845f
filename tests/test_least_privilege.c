/* Least privilege at the transport boundary: bal_transport_execute is the only way a command leaves
 * the agent, and it lets out only qmp_capabilities, qom-list, and qom-get / qom-set of
 * the balloon's guest-stats and guest-stats-polling-interval. test_bal_transport.c covers the list's
 * plain cases; this covers what a second JSON reader (QEMU's, libvirt's) could read differently from
 * ours: escapes, encodings, members and commands hidden around the one that was checked, and
 * everything QEMU's schema offers that must never pass. Then it runs the agent itself, through
 * discovery, cycles, failures and restore, over a transport that checks every command independently
 * (fault_fake.h), to show that the agent never even tries anything else. */
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

#include "agent/bal_agent.h"
#include "agent/bal_qmp.h"
#include "agent/bal_transport.h"
#include "tests/fault_fake.h"
#include "tests/tt_fake.h"

static const bal_domain_info_t dom = {.name = (char *)"vm"};

static void expect(tt_recorder_t *r, const char *command, bool allowed)
{
    bal_error_t err = {0};
    char *reply = (char *)"untouched";
    unsigned before = r->executed;
    int rc = bal_transport_execute(&r->tt.base, &dom, command, &reply, &err);

    if (allowed) {
        if (rc != 0)
            fail_msg("refused (%d, %s): %s", rc, err.message, command);
        assert_int_equal(r->executed, before + 1);
        assert_ptr_equal(r->last, command); /* what was checked is what goes out */
        free(reply);
        return;
    }
    if (rc != -EPERM)
        fail_msg("not refused (%d): %s", rc, command);
    assert_int_equal(err.code, -EPERM);
    assert_true(err.message[0] != '\0');
    assert_int_equal(r->executed, before);
    assert_string_equal(reply, "untouched");
}

#define QG(path, prop) "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"" path "\",\"property\":\"" prop "\"}}"
#define QS(path, prop, v)                                                                                   \
    "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"" path "\",\"property\":\"" prop "\",\"value\":" v "}}"
#define B0 "/machine/peripheral/balloon0"

static void test_escapes_that_read_the_same(void **state)
{
    /* JSON escapes are decoded by every reader, QEMU's and libvirt's included: a name spelled with
     * them is that name, checked as such and let through unchanged. */
    static const char *const same[] = {
        QG(B0, "guest\\u002dstats"),
        QG(B0, "\\u0067uest-stats-polling-interval"),
        QS(B0, "guest-stats-polling\\u002Dinterval", "5"),
        "{\"execute\":\"qom\\u002dget\",\"arguments\":{\"path\":\"/b\",\"property\":\"guest-stats\"}}",
        "{\"\\u0065xecute\":\"qmp_capabilities\"}",
        "{\"execute\":\"qmp_capabilities\",\"\\u0061rguments\":{}}",
        QG("/machine/peripheral/balloon\\u0030", "guest-stats"),
        QG("\\/machine\\/peripheral\\/balloon0", "guest-stats"),
        "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral\"}}\r\n",
        "\t{ \"execute\" :\r\n\"qmp_capabilities\" }",
    };
    tt_recorder_t r;
    (void)state;
    tt_recorder_init(&r);

    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        expect(&r, same[i], true);
}

static void test_encodings_and_hidden_commands(void **state)
{
    static const char *const bad[] = {
        /* escapes that decode to something else */
        "{\"execute\":\"qu\\u0069t\"}",
        "{\"execute\":\"qom-get\\u0000\",\"arguments\":{\"path\":\"/b\",\"property\":\"guest-stats\"}}",
        QG(B0, "guest-stats\\u0000"),
        QG(B0, "guest\\u002Dstats\\u002dx"),
        QG(B0, "typ\\u0065"),
        QG(B0, "guest-stats\\ud800"),             /* a lone surrogate */
        QG(B0, "guest-stats\\udc00\\ud800"),      /* reversed pair */
        QG(B0, "GUEST-STATS"),
        QG(B0, "guest_stats"),
        QG(B0, " guest-stats"),
        QG("/machine/peripheral/balloon0\\u0022", "guest-stats"), /* a quote */
        QG("/machine/peripheral/\\u005c", "guest-stats"),         /* a backslash */
        QG("/machine/peripheral/balloon0\\n", "guest-stats"),
        QG("/machine/\\u00e9", "guest-stats"),                    /* not ASCII */
        QG("\\u002fmachine", "type"),
        /* bytes that are not UTF-8, or are overlong forms of ASCII */
        QG(B0, "guest\xc0\xadstats"),
        QG(B0, "guest\xe0\x80\xadstats"),
        QG(B0, "guest-stats\xff"),
        QG(B0, "guest-stats\xed\xa0\x80"),        /* a surrogate in UTF-8 */
        "\xef\xbb\xbf{\"execute\":\"qmp_capabilities\"}", /* byte order mark */
        /* whitespace JSON does not have */
        "{\"execute\":\"qmp_capabilities\"}\v",
        "{\"execute\":\f\"qmp_capabilities\"}",
        "{\"execute\":\"qmp_capabilities\"}\x1c",
        /* a second command, or the start of one, after the first */
        "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}",
        "{\"execute\":\"qmp_capabilities\"}\r\n{\"execute\":\"quit\"}\r\n",
        "{\"execute\":\"qmp_capabilities\"},{\"execute\":\"quit\"}",
        "{\"execute\":\"qmp_capabilities\"}\"",
        "{\"execute\":\"qmp_capabilities\"} \"{\\\"execute\\\":\\\"quit\\\"}",
        "{\"execute\":\"qmp_capabilities\"}{",
        "{\"execute\":\"qmp_capabilities\"}[",
        "{\"execute\":\"qmp_capabilities\"} t",
        "{\"execute\":\"qmp_capabilities\"} 1",
        "{\"execute\":\"qmp_capabilities\"} -",
        "{\"execute\":\"qmp_capabilities\"} /",
        "{\"execute\":\"qmp_capabilities\"} //",
        "{\"execute\":\"qmp_capabilities\"} /* */",
        "{\"execute\":\"qmp_capabilities\"}\\",
        /* arrays, anywhere */
        "[{\"execute\":\"qmp_capabilities\"},{\"execute\":\"quit\"}]",
        "[]",
        "{\"execute\":[\"qmp_capabilities\",\"quit\"]}",
        "{\"execute\":\"qom-list\",\"arguments\":{\"path\":[\"/machine\"]}}",
        QS(B0, "guest-stats-polling-interval", "[5]"),
        "{\"execute\":\"qom-get\",\"arguments\":[{\"path\":\"/b\",\"property\":\"guest-stats\"}]}",
        /* members twice, or members QMP would act on */
        "{\"execute\":\"qmp_capabilities\",\"execute\":\"qmp_capabilities\"}",
        "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/m\"},\"arguments\":{\"path\":\"/m\"}}",
        "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/m\",\"path\":\"/m\"}}",
        "{\"execute\":\"qmp_capabilities\",\"exec-oob\":\"quit\"}",
        "{\"exec-oob\":\"qmp_capabilities\"}",
        "{\"execute\":\"qmp_capabilities\",\"id\":\"x\"}",
        "{\"execute\":\"qmp_capabilities\",\"Execute\":\"quit\"}",
        "{\"execute\":\"qmp_capabilities\",\"control\":{}}",
        "{\"execute\":\"qmp_capabilities\",\"arguments\":null}",
        "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"x\":null}}",
        "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}",
        QG(B0, "guest-stats") "\n" QG(B0, "guest-stats"),
        /* values that are not 64-bit integers */
        QS(B0, "guest-stats-polling-interval", "1e3"),
        QS(B0, "guest-stats-polling-interval", "1.0"),
        QS(B0, "guest-stats-polling-interval", "99999999999999999999"),
        QS(B0, "guest-stats-polling-interval", "-99999999999999999999"),
        QS(B0, "guest-stats-polling-interval", "true"),
        QS(B0, "guest-stats-polling-interval", "null"),
        QS(B0, "guest-stats-polling-interval", "\"5\""),
        QS(B0, "guest-stats-polling-interval", "05"),
        QS(B0, "guest-stats-polling-interval", "+5"),
        QS(B0, "guest-stats-polling-interval", "0x5"),
        /* what QEMU's schema offers, none of which the agent needs */
        "{\"execute\":\"balloon\",\"arguments\":{\"value\":1073741824}}",
        "{\"execute\":\"quit\"}",
        "{\"execute\":\"stop\"}",
        "{\"execute\":\"cont\"}",
        "{\"execute\":\"system_reset\"}",
        "{\"execute\":\"system_powerdown\"}",
        "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"balloon0\"}}",
        "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"virtio-balloon-pci\"}}",
        "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info balloon\"}}",
        "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat>/tmp/x\"}}",
        "{\"execute\":\"dump-guest-memory\",\"arguments\":{\"paging\":false,\"protocol\":\"file:/tmp/x\"}}",
        "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"/tmp/x\"}}",
        "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"memory-backend-ram\",\"id\":\"m\"}}",
        "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"x\"}}",
        "{\"execute\":\"add-fd\"}",
        "{\"execute\":\"query-commands\"}",
        "{\"execute\":\"query-status\"}",
        "{\"execute\":\"query-balloon\"}",
        "{\"execute\":\"qom-list-properties\",\"arguments\":{\"typename\":\"virtio-balloon-pci\"}}",
        "{\"execute\":\"x-query-ramblock\"}",
        QS(B0, "guest-stats-polling-interval\\u0000", "5"),
        QS("/machine", "type", "1"),
        QS(B0, "deflate-on-oom", "1"),
        QG("/machine/unattached/device[0]", "realized"),
        QS("/machine/peripheral/balloon0", "realized", "0"),
    };
    tt_recorder_t r;
    (void)state;
    tt_recorder_init(&r);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect(&r, bad[i], false);
    assert_int_equal(r.executed, 0);
}

/* The agent itself, through discovery, every poller step, failures and restore, over a transport that
 * refuses and counts anything outside the contract. */
static void test_agent_sends_only_allowed(void **state)
{
    static const bool observe[] = {false, true};
    (void)state;

    for (size_t o = 0; o < 2; o++) {
        ff_t *f = ff_new(64);
        bal_agent_config_t config = {
            .polling_interval_s = 5,
            .observe_only = observe[o],
            .restore_interval = true,
            .verify_every = 2,
            .stale_after = 1,
            .refresh_interval_s = 1,
            .clock = ff_clock(f),
        };
        bal_agent_t *agent = NULL;
        bal_error_t err = {0};
        ff_counts_t counts;

        ff_set_running(f, 0, 8);
        assert_int_equal(bal_agent_new_with_transport(&config, ff_transport(f), &agent, &err), 0);
        for (int c = 0; c < 60; c++) {
            ff_set_failures(f, c % 3 == 0 ? 300 : 0, (unsigned)c);
            ff_set_running(f, (size_t)(c / 10), 8);
            ff_advance_s(f, c % 7 == 0 ? 60 : 5); /* now and then long enough to go stale */
            bal_agent_read(agent, NULL, NULL, &err);
        }
        bal_agent_free(agent); /* restores the original intervals */
        ff_counts(f, &counts);
        print_message("observe_only=%d: %lu commands, all within the contract\n", observe[o], counts.executes);
        assert_true(counts.executes > 8 * 60);
        assert_int_equal(counts.refused, 0);
        ff_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes_that_read_the_same),
        cmocka_unit_test(test_encodings_and_hidden_commands),
        cmocka_unit_test(test_agent_sends_only_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
