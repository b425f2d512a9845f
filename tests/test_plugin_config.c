/* The <Plugin balloon> block, through the plugin's own config and init callbacks in a fake collectd:
 * what reaches the agent, the defaults, and that every kind of mistake is named with its line and
 * keeps the plugin from starting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin/bp_config.h"
#include "tests/test_plugin_agent.h"
#include "tests/test_plugin_core.h"
#include "tests/test_plugin_fixture.h"

static void test_registers_config_init_shutdown(void **state)
{
    (void)state;
    assert_true(fc_has_config_callback());
    /* Nothing is read before init. */
    assert_int_equal(fc_n_reads(), 0);
    assert_int_equal(fa_n_new(), 0);
}

static void test_defaults_without_a_block(void **state)
{
    const fa_config_t *c = fa_config();
    (void)state;
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fc_n_reads(), 1);
    assert_string_equal(fc_read_name(0), "balloon");
    assert_true(fc_read_interval(0) == TIME_T_TO_CDTIME_T(10));
    assert_int_equal(fa_n_new(), 1);
    assert_int_equal(c->transport, BAL_TRANSPORT_LIBVIRT);
    assert_false(c->has_uri); /* the agent's default, qemu:///system */
    assert_false(c->has_qom_path);
    assert_int_equal(c->n_domains, 0);
    assert_false(c->ignore_selected);
    assert_int_equal(c->polling_interval_s, 10);
    assert_false(c->observe_only);
    assert_true(c->restore_interval);
    assert_int_equal(c->stale_after, 0);
    assert_int_equal(c->concurrency, 0);
    assert_int_equal(c->refresh_interval_s, 0);
    assert_int_equal(c->timeout_ms, 0);      /* the agent's default, 5 s */
    assert_int_equal(c->read_budget_ms, 5000); /* half of collectd's 10 s */
    assert_true(c->has_logger);
    assert_true(c->has_on_event);
    assert_int_equal(fc_count_logs(LOG_ERR, "", NULL), 0);
}

static void test_empty_block_is_the_defaults(void **state)
{
    (void)state;
    assert_int_equal(fc_config(fc_block()), 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fc_n_reads(), 1);
    assert_int_equal(fa_config()->transport, BAL_TRANSPORT_LIBVIRT);
    assert_int_equal(fa_config()->polling_interval_s, 10);
}

static void test_polling_interval_follows_collectd_interval(void **state)
{
    (void)state;
    /* 2.5 s rounds up to 3; the read runs at collectd's interval, not the polling one. */
    fc_set_interval(DOUBLE_TO_CDTIME_T(2.5));
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fa_config()->polling_interval_s, 3);
    assert_true(fc_read_interval(0) == DOUBLE_TO_CDTIME_T(2.5));
    /* a read waits half of its interval for answers, so that it ends within it */
    assert_int_equal(fa_config()->read_budget_ms, 1250);
}

static void test_default_polling_interval_rounding(void **state)
{
    (void)state;
    assert_int_equal(bp_config_default_polling_interval(TIME_T_TO_CDTIME_T(10)), 10);
    assert_int_equal(bp_config_default_polling_interval(TIME_T_TO_CDTIME_T(10) + 1), 11);
    assert_int_equal(bp_config_default_polling_interval(DOUBLE_TO_CDTIME_T(0.2)), 1);
    assert_int_equal(bp_config_default_polling_interval(0), 1);
    assert_int_equal(bp_config_default_polling_interval(MS_TO_CDTIME_T(1500)), 2);
}

static void test_every_option_reaches_the_agent(void **state)
{
    oconfig_item_t *b = fc_block();
    const fa_config_t *c = fa_config();
    (void)state;
    fc_opt_s(b, "Connection", "qemu+ssh://root@kvm1/system");
    fc_opt_n(b, "PollingInterval", 7);
    fc_opt_s(b, "Domain", "web one");
    fc_opt_s(b, "Domain", "/^db-[0-9]+$/");
    fc_opt_b(b, "IgnoreSelected", true);
    fc_opt_s(b, "QOMPath", "/machine/peripheral-anon/device[1]");
    fc_opt_n(b, "RefreshInterval", 30);
    fc_opt_ss(b, "HostnameFormat", "name", "uuid");
    fc_opt_s(b, "PluginInstanceFormat", "none");
    fc_opt_n(b, "StaleAfter", 4);
    fc_opt_b(b, "RestoreInterval", false);
    fc_opt_n(b, "Concurrency", 9);
    fc_opt_n(b, "Timeout", 1.5);
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(c->transport, BAL_TRANSPORT_LIBVIRT);
    assert_true(c->has_uri);
    assert_string_equal(c->libvirt_uri, "qemu+ssh://root@kvm1/system");
    assert_int_equal(c->polling_interval_s, 7);
    assert_int_equal(c->n_domains, 2);
    assert_string_equal(c->domains[0], "web one");
    assert_string_equal(c->domains[1], "/^db-[0-9]+$/");
    assert_true(c->ignore_selected);
    assert_true(c->has_qom_path);
    assert_string_equal(c->qom_path, "/machine/peripheral-anon/device[1]");
    assert_int_equal(c->refresh_interval_s, 30);
    assert_int_equal(c->stale_after, 4);
    assert_false(c->restore_interval);
    assert_int_equal(c->concurrency, 9);
    assert_int_equal(c->timeout_ms, 1500);
    /* PollingInterval is QEMU's; collectd still reads at its own interval. */
    assert_true(fc_read_interval(0) == TIME_T_TO_CDTIME_T(10));
    assert_int_equal(fc_count_logs(LOG_ERR, "", NULL), 0);
    /* Neither format names the domain by itself? HostnameFormat does (name uuid): no warning. */
    assert_int_equal(fc_count_logs(LOG_WARNING, "share one identifier", NULL), 0);
}

static void test_option_names_ignore_case(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_n(b, "pollinginterval", 42);
    fc_opt_s(b, "QMPSOCKETDIR", "/run/qemu");
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fa_config()->polling_interval_s, 42);
    assert_int_equal(fa_config()->transport, BAL_TRANSPORT_QMP_DIR);
    assert_string_equal(fa_config()->qmp_dir, "/run/qemu");
}

static void test_qmp_sockets_repeat(void **state)
{
    oconfig_item_t *b = fc_block();
    const fa_config_t *c = fa_config();
    (void)state;
    fc_opt_ss(b, "QMPSocket", "vm one", "/run/a.qmp");
    fc_opt_ss(b, "QMPSocket", "it's \"two\"", "/run/b.qmp");
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(c->transport, BAL_TRANSPORT_QMP_SOCKETS);
    assert_int_equal(c->n_sockets, 2);
    assert_string_equal(c->socket_names[0], "vm one");
    assert_string_equal(c->socket_paths[0], "/run/a.qmp");
    assert_string_equal(c->socket_names[1], "it's \"two\"");
    assert_string_equal(c->socket_paths[1], "/run/b.qmp");
}

static void test_string_booleans_as_collectd_takes_them(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_s(b, "IgnoreSelected", "yes");
    fc_opt_s(b, "RestoreInterval", "off");
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_init(), 0);
    assert_true(fa_config()->ignore_selected);
    assert_false(fa_config()->restore_interval);
}

static void test_formats_that_name_no_domain_warn(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_s(b, "HostnameFormat", "hostname");
    fc_opt_s(b, "PluginInstanceFormat", "none");
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_count_logs(LOG_WARNING, "balloon plugin: ", "share one identifier", NULL), 1);
}

/* One bad line per case: the config callback fails with an ERROR naming the option and quoting the
 * line, init refuses to start, and no agent is ever made. */
typedef enum { S, SS, N, B, NONE } kind_t;
typedef struct bad_line {
    const char *key;
    kind_t kind;
    const char *s1, *s2;
    double n;
    const char *expect_line; /* the line as the error quotes it */
    const char *expect_why;
} bad_line_t;

static const bad_line_t bad_lines[] = {
    {"Frobnicate", N, NULL, NULL, 1, "'Frobnicate 1'", "not one this plugin knows"},
    {"PollingInterval", S, "5", NULL, 0, "'PollingInterval \"5\"'", "whole number from 1 to 4294967295"},
    {"PollingInterval", N, NULL, NULL, 0, "'PollingInterval 0'", "whole number from 1 to 4294967295"},
    {"PollingInterval", N, NULL, NULL, 2.5, "'PollingInterval 2.5'", "whole number"},
    {"PollingInterval", N, NULL, NULL, 4294967296.0, "'PollingInterval 4294967296'", "whole number"},
    {"PollingInterval", B, NULL, NULL, 1, "'PollingInterval true'", "whole number"},
    {"PollingInterval", NONE, NULL, NULL, 0, "'PollingInterval'", "whole number"},
    {"StaleAfter", N, NULL, NULL, -1, "'StaleAfter -1'", "whole number from 1 to"},
    {"Concurrency", N, NULL, NULL, 0, "'Concurrency 0'", "whole number from 1 to 256"},
    /* The agent's limit (bal_limits.h), found at config time, not at init. */
    {"Concurrency", N, NULL, NULL, 257, "'Concurrency 257'", "whole number from 1 to 256"},
    {"StaleAfter", N, NULL, NULL, 1000001, "'StaleAfter 1000001'", "whole number from 1 to 1000000"},
    {"RefreshInterval", N, NULL, NULL, 86401, "'RefreshInterval 86401'", "whole number from 1 to 86400"},
    {"Timeout", N, NULL, NULL, 0, "'Timeout 0'", "number of seconds from 0.001 to 600"},
    {"Timeout", N, NULL, NULL, 601, "'Timeout 601'", "number of seconds from 0.001 to 600"},
    {"Timeout", S, "5", NULL, 0, "'Timeout \"5\"'", "number of seconds"},
    {"RefreshInterval", S, "x", NULL, 0, "'RefreshInterval \"x\"'", "whole number"},
    {"IgnoreSelected", S, "maybe", NULL, 0, "'IgnoreSelected \"maybe\"'", "one boolean"},
    {"IgnoreSelected", N, NULL, NULL, 1, "'IgnoreSelected 1'", "one boolean"},
    {"RestoreInterval", NONE, NULL, NULL, 0, "'RestoreInterval'", "one boolean"},
    {"Domain", N, NULL, NULL, 5, "'Domain 5'", "needs one string"},
    {"Domain", S, "", NULL, 0, "'Domain \"\"'", "non-empty string"},
    {"Connection", S, "", NULL, 0, "'Connection \"\"'", "non-empty string"},
    {"Connection", SS, "a", "b", 0, "'Connection \"a\" \"b\"'", "needs one string"},
    {"QMPSocketDir", B, NULL, NULL, 0, "'QMPSocketDir false'", "needs one string"},
    {"QMPSocket", S, "vm", NULL, 0, "'QMPSocket \"vm\"'", "two non-empty strings"},
    {"QMPSocket", SS, "vm", "", 0, "'QMPSocket \"vm\" \"\"'", "two non-empty strings"},
    {"QOMPath", S, "machine/peripheral/balloon0", NULL, 0, "'QOMPath \"machine/peripheral/balloon0\"'",
     "does not start with '/'"},
    /* The agent's own check of the path, at config time (it used to be found at init only). */
    {"QOMPath", S, "/a\"b\\c", NULL, 0, "'QOMPath \"/a\\\"b\\\\c\"'", "holds a quote or a backslash"},
    {"QOMPath", S, "/machine/\tballoon0", NULL, 0, "'QOMPath \"/machine/?balloon0\"'",
     "non-printable character at offset 9"},
    /* Refused before glibc's regcomp would take seconds and gigabytes. */
    {"Domain", S, "/(a{0,32767})/", NULL, 0, "'Domain \"/(a{0,32767})/\"'", "copies of its parts"},
    {"Domain", S, "/((a{1,100}){1,100}){1,100}/", NULL, 0, "'Domain \"/((a{1,100}){1,100}){1,100}/\"'",
     "copies of its parts"},
    {"Domain", S, "/(a*)b\\1/", NULL, 0, "'Domain \"/(a*)b\\\\1/\"'", "back-reference"},
    {"HostnameFormat", S, "metadata", NULL, 0, "'HostnameFormat \"metadata\"'", "'name', 'uuid' and"},
    {"HostnameFormat", S, "none", NULL, 0, "'HostnameFormat \"none\"'", "'name', 'uuid' and"},
    {"HostnameFormat", NONE, NULL, NULL, 0, "'HostnameFormat'", "'name', 'uuid' and"},
    {"PluginInstanceFormat", SS, "name", "bogus", 0, "'PluginInstanceFormat \"name\" \"bogus\"'",
     "needs 'none', or one or more"},
    {"PluginInstanceFormat", SS, "none", "name", 0, "'PluginInstanceFormat \"none\" \"name\"'",
     "needs 'none', or one or more"},
};

static void add_line(oconfig_item_t *b, const bad_line_t *l)
{
    switch (l->kind) {
    case S:
        fc_opt_s(b, l->key, l->s1);
        break;
    case SS:
        fc_opt_ss(b, l->key, l->s1, l->s2);
        break;
    case N:
        fc_opt_n(b, l->key, l->n);
        break;
    case B:
        fc_opt_b(b, l->key, l->n != 0);
        break;
    case NONE:
        fc_opt_none(b, l->key);
        break;
    }
}

static void expect_refused(const char *option, const char *line, const char *why)
{
    char name[128];

    snprintf(name, sizeof(name), "'%s'", option);
    if (fc_count_logs(LOG_ERR, "balloon plugin: The option ", name, " in the line ", line,
                      why != NULL ? why : "", NULL) != 1) {
        fc_dump_logs();
        fail_msg("no single ERROR names option %s, line %s and '%s'", name, line, why ? why : "");
    }
    assert_int_equal(fc_count_logs(LOG_ERR, "the plugin will not start", NULL), 1);
    assert_int_not_equal(fc_init(), 0);
    assert_int_equal(fc_count_logs(LOG_ERR, "balloon plugin: Not starting", NULL), 1);
    assert_int_equal(fc_n_reads(), 0);
    assert_int_equal(fa_n_new(), 0);
}

static void test_bad_lines_are_named_and_stop_the_plugin(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
        const bad_line_t *l = &bad_lines[i];
        oconfig_item_t *b;

        fc_reset();
        fa_reset();
        module_register();
        b = fc_block();
        /* A good line before does not save the block. */
        if (strcmp(l->key, "PollingInterval") == 0)
            fc_opt_n(b, "Concurrency", 3);
        else
            fc_opt_n(b, "PollingInterval", 5);
        add_line(b, l);
        assert_int_equal(fc_config(b), -1);
        expect_refused(l->key, l->expect_line, l->expect_why);
        fc_shutdown();
        assert_int_equal(fa_n_alive(), 0);
    }
}

/* Two QMPSocket lines with one name, or one path, are refused with their line at config time. */
static void test_qmp_socket_names_and_paths_once(void **state)
{
    oconfig_item_t *b = fc_block(), *c;
    (void)state;
    fc_opt_ss(b, "QMPSocket", "vm", "/run/vm.qmp");
    fc_opt_ss(b, "QMPSocket", "vm", "/run/other.qmp");
    assert_int_equal(fc_config(b), -1);
    expect_refused("QMPSocket", "'QMPSocket \"vm\" \"/run/other.qmp\"'", "names the domain 'vm' again");
    fc_reset();
    fa_reset();
    module_register();
    c = fc_block();
    fc_opt_ss(c, "QMPSocket", "vm", "/run/vm.qmp");
    fc_opt_ss(c, "QMPSocket", "vm2", "/run/vm.qmp");
    assert_int_equal(fc_config(c), -1);
    expect_refused("QMPSocket", "'QMPSocket \"vm2\" \"/run/vm.qmp\"'", "gives the socket of the domain 'vm'");
}

static void test_bad_regex_is_refused_by_the_agents_check(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_s(b, "Domain", "/web-[0-9/");
    assert_int_equal(fc_config(b), -1);
    expect_refused("Domain", "'Domain \"/web-[0-9/\"'", "is not a valid selector: ");
}

static void test_conflicting_transports(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_s(b, "Connection", "qemu:///system");
    fc_opt_s(b, "QMPSocketDir", "/run/balloon");
    assert_int_equal(fc_config(b), -1);
    expect_refused("QMPSocketDir", "'QMPSocketDir \"/run/balloon\"'",
                   "conflicts with the option 'Connection'");
}

static void test_sockets_and_socket_dir_conflict(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_ss(b, "QMPSocket", "a", "/run/a.qmp");
    fc_opt_s(b, "QMPSocketDir", "/run/balloon");
    assert_int_equal(fc_config(b), -1);
    expect_refused("QMPSocketDir", "'QMPSocketDir \"/run/balloon\"'",
                   "conflicts with the option 'QMPSocket'");
}

static void test_single_options_given_twice(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_s(b, "Connection", "qemu:///system");
    fc_opt_s(b, "Connection", "qemu:///session");
    assert_int_equal(fc_config(b), -1);
    expect_refused("Connection", "'Connection \"qemu:///session\"'", "more than once");
}

static void test_every_error_is_reported(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;
    fc_opt_n(b, "PollingInterval", 0);
    fc_opt_s(b, "Bogus", "x");
    fc_opt_n(b, "Concurrency", 3);
    fc_opt_s(b, "Domain", "/(/");
    assert_int_equal(fc_config(b), -1);
    assert_int_equal(fc_count_logs(LOG_ERR, "'PollingInterval 0'", NULL), 1);
    assert_int_equal(fc_count_logs(LOG_ERR, "'Bogus \"x\"'", NULL), 1);
    assert_int_equal(fc_count_logs(LOG_ERR, "'Domain \"/(/\"'", NULL), 1);
    assert_int_equal(fc_count_logs(LOG_ERR, "has 3 error(s)", NULL), 1);
}

static void test_a_bad_block_stops_the_good_one_too(void **state)
{
    oconfig_item_t *good = fc_block(), *bad = fc_block();
    (void)state;
    fc_opt_s(good, "QMPSocketDir", "/run/balloon");
    fc_opt_n(bad, "StaleAfter", 0);
    assert_int_equal(fc_config(good), 0);
    assert_int_equal(fc_config(bad), -1);
    assert_int_not_equal(fc_init(), 0);
    assert_int_equal(fc_n_reads(), 0);
    assert_int_equal(fa_n_new(), 0);
}

static void test_two_blocks_two_instances(void **state)
{
    oconfig_item_t *a = fc_block(), *b = fc_block();
    (void)state;
    fc_opt_s(a, "Connection", "qemu:///system");
    fc_opt_s(b, "QMPSocketDir", "/run/balloon");
    assert_int_equal(fc_config(a), 0);
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fc_n_reads(), 2);
    assert_string_equal(fc_read_name(0), "balloon");
    assert_string_equal(fc_read_name(1), "balloon-2");
    assert_int_equal(fa_n_new(), 2);
    assert_int_equal(fa_n_alive(), 2);
    assert_int_equal(fa_config()->transport, BAL_TRANSPORT_QMP_DIR);
    assert_int_equal(fc_shutdown(), 0);
    assert_int_equal(fa_n_alive(), 0);
}

/* Blocks given as (key, value) lines; NULL key ends a block, two NULLs end the list. */
static int init_blocks(const char *const *lines)
{
    while (lines[0] != NULL) {
        oconfig_item_t *b = fc_block();

        for (; lines[0] != NULL; lines += 2)
            fc_opt_s(b, lines[0], lines[1]);
        lines++;
        assert_int_equal(fc_config(b), 0);
    }
    return fc_init();
}

static void expect_blocks(const char *const *lines, bool start, const char *why)
{
    fc_reset();
    fa_reset();
    module_register();
    if (start) {
        if (init_blocks(lines) != 0) {
            fc_dump_logs();
            fail_msg("refused blocks that read disjoint domains");
        }
    } else {
        assert_int_not_equal(init_blocks(lines), 0);
        if (fc_count_logs(LOG_ERR, "balloon plugin: The <Plugin balloon> blocks number 1 and 2 both read ", why,
                          NULL) != 1) {
            fc_dump_logs();
            fail_msg("no single error says '%s'", why);
        }
        assert_int_equal(fc_count_logs(LOG_ERR, "Not starting, because blocks would read the same domains",
                                       NULL), 1);
        assert_int_equal(fa_n_new(), 0);
    }
    fc_shutdown();
}

/* Two blocks that could read one domain would set its interval against each other: refused at init
 * unless their selections are disjoint for certain. */
static void test_blocks_reading_the_same_domains_are_refused(void **state)
{
    char dir[] = "/tmp/test-plugin-config.XXXXXX", link[64], sock[96], linked_sock[96];
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(link, sizeof(link), "%s.link", dir);
    assert_int_equal(symlink(dir, link), 0);
    snprintf(sock, sizeof(sock), "%s/web.qmp", dir);
    snprintf(linked_sock, sizeof(linked_sock), "%s/web.qmp", link);
    {
        const char *const same_dir[] = {"QMPSocketDir", dir, NULL, "QMPSocketDir", link, NULL, NULL};
        const char *const same_dir_slash[] = {"QMPSocketDir", "/run/nowhere/", NULL, "QMPSocketDir",
                                              "/run/nowhere", NULL, NULL};
        const char *const regexes[] = {"QMPSocketDir", dir, "Domain", "/^web/", NULL,
                                       "QMPSocketDir", dir, "Domain", "/^db/", NULL, NULL};
        const char *const names[] = {"QMPSocketDir", dir, "Domain", "web", "Domain", "db", NULL,
                                     "QMPSocketDir", dir, "Domain", "/^mail/", NULL, NULL};
        const char *const names_taken[] = {"QMPSocketDir", dir, "Domain", "web", NULL,
                                           "QMPSocketDir", dir, "Domain", "/^w/", NULL, NULL};
        const char *const opposite[] = {"QMPSocketDir", dir, "Domain", "/^web/", NULL,
                                        "QMPSocketDir", dir, "Domain", "/^web/", "IgnoreSelected", "true",
                                        NULL, NULL};
        const char *const libvirt[] = {"Connection", "qemu:///system", NULL, "Domain", "web", NULL, NULL};
        const char *const libvirt_apart[] = {"Connection", "qemu:///system", "Domain", "db", NULL,
                                             "Domain", "web", NULL, NULL};
        const char *const libvirt_two_hosts[] = {"Connection", "qemu+ssh://a/system", NULL,
                                                 "Connection", "qemu+ssh://b/system", NULL, NULL};

        expect_blocks(same_dir, false, "the QMP socket directory");
        expect_blocks(same_dir_slash, false, "the QMP socket directory '/run/nowhere'");
        expect_blocks(regexes, false, "their Domain selections may take the same domain");
        expect_blocks(names, true, NULL);
        expect_blocks(names_taken, false, "the QMP socket directory");
        expect_blocks(opposite, true, NULL);
        expect_blocks(libvirt, false, "the libvirt connection 'qemu:///system'");
        expect_blocks(libvirt_apart, true, NULL);
        expect_blocks(libvirt_two_hosts, true, NULL);
    }
    /* A QMPSocket that is a socket of another block's directory, or another block's QMPSocket. */
    {
        oconfig_item_t *a, *b;
        const char *cases[][5] = {
            /* block 1 directory, its Domain (or NULL), block 2 name, path, expect start */
            {dir, NULL, "w", sock, "no"},
            {dir, NULL, "w", linked_sock, "no"},
            {dir, "web", "other", sock, "no"},
            {dir, "db", "web", sock, "yes"},    /* the directory's block does not select web */
            {NULL, NULL, "w2", linked_sock, "no"}, /* both QMPSocket, one socket */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            bool start = strcmp(cases[i][4], "yes") == 0;

            fc_reset();
            fa_reset();
            module_register();
            a = fc_block();
            b = fc_block();
            if (cases[i][0] != NULL)
                fc_opt_s(a, "QMPSocketDir", cases[i][0]);
            else
                fc_opt_ss(a, "QMPSocket", "w1", sock);
            if (cases[i][1] != NULL)
                fc_opt_s(a, "Domain", cases[i][1]);
            fc_opt_ss(b, "QMPSocket", cases[i][2], cases[i][3]);
            assert_int_equal(fc_config(a), 0);
            assert_int_equal(fc_config(b), 0);
            if (start) {
                assert_int_equal(fc_init(), 0);
            } else {
                assert_int_not_equal(fc_init(), 0);
                if (fc_count_logs(LOG_ERR, "The <Plugin balloon> blocks number 1 and 2 both read the QMP socket '",
                                  "/web.qmp', whose polling interval they would set against each other", NULL)
                    != 1) {
                    fc_dump_logs();
                    fail_msg("case %zu: no error", i);
                }
            }
            fc_shutdown();
        }
    }
    assert_int_equal(unlink(link), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_agent_refusing_the_config_stops_init(void **state)
{
    oconfig_item_t *a = fc_block(), *b = fc_block();
    (void)state;
    fc_opt_s(a, "QMPSocketDir", "/run/balloon");
    fc_opt_s(b, "QOMPath", "/machine/x y");
    assert_int_equal(fc_config(a), 0);
    assert_int_equal(fc_config(b), 0);
    /* The first agent opens, the second refuses its configuration: all or nothing. */
    fa_set_new_status(-EINVAL, "The QOM path '/machine/x y' holds a character QMP cannot take.", 1);
    assert_int_not_equal(fc_init(), 0);
    assert_int_equal(fa_n_new(), 2);
    assert_int_equal(fc_count_logs(LOG_ERR, "balloon plugin: Not starting, because the configuration "
                                            "was refused: The QOM path '/machine/x y'", NULL), 1);
    assert_int_equal(fc_n_reads(), 0);
    assert_int_equal(fa_n_alive(), 0);
}

static void test_transport_not_up_yet_is_retried_by_read(void **state)
{
    bal_sample_t s = fa_sample("vm", "", 10, 100, 1699999990, true);
    (void)state;
    fa_set_new_status(-ECONNREFUSED, "Cannot connect to 'qemu:///system': Connection refused.", 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fc_n_reads(), 1);
    assert_int_equal(fc_count_logs(LOG_WARNING, "will try again", "Connection refused", NULL), 1);

    /* Reading fails while the transport cannot be opened, complaining once per complaint interval. */
    assert_int_not_equal(fc_read(0), 0);
    assert_int_not_equal(fc_read(0), 0);
    assert_int_equal(fa_n_new(), 3);
    assert_int_equal(fc_count_logs(LOG_ERR, "Could not open the transport", NULL), 1);
    fc_set_time(cdtime() + TIME_T_TO_CDTIME_T(10));
    assert_int_not_equal(fc_read(0), 0);
    assert_int_equal(fc_count_logs(LOG_ERR, "Could not open the transport", NULL), 2);

    fa_set_new_status(0, NULL, 0);
    fa_add_sample(&s);
    assert_int_equal(fc_read(0), 0);
    assert_int_equal(fc_count_logs(LOG_NOTICE, "balloon plugin: The transport is open now.", NULL), 1);
    assert_non_null(fc_find_value("vm", "memory", "free"));
    assert_int_equal(fa_n_alive(), 1);
}

static void test_reload_leaks_nothing(void **state)
{
    bal_sample_t s = fa_sample("vm", "", 6, 100, 1699999990, true);
    (void)state;
    for (int round = 0; round < 3; round++) {
        oconfig_item_t *b;

        fc_reset();
        fa_reset();
        module_register();
        b = fc_block();
        fc_opt_s(b, "QMPSocketDir", "/run/balloon");
        fc_opt_s(b, "Domain", "/^v/");
        assert_int_equal(fc_config(b), 0);
        assert_int_equal(fc_init(), 0);
        fa_add_sample(&s);
        assert_int_equal(fc_read(0), 0);
        assert_int_equal(fc_shutdown(), 0);
        assert_int_equal(fa_n_alive(), 0);
        assert_int_equal(fa_n_free(), 1);
        /* RestoreInterval: the agent put the interval back, and that became a notification. */
        assert_int_equal(fc_n_notifications(), 1);
        assert_string_equal(fc_notification(0)->plugin_instance, "vm");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registers_config_init_shutdown),
        cmocka_unit_test(test_defaults_without_a_block),
        cmocka_unit_test(test_empty_block_is_the_defaults),
        cmocka_unit_test(test_polling_interval_follows_collectd_interval),
        cmocka_unit_test(test_default_polling_interval_rounding),
        cmocka_unit_test(test_every_option_reaches_the_agent),
        cmocka_unit_test(test_option_names_ignore_case),
        cmocka_unit_test(test_qmp_sockets_repeat),
        cmocka_unit_test(test_string_booleans_as_collectd_takes_them),
        cmocka_unit_test(test_formats_that_name_no_domain_warn),
        cmocka_unit_test(test_bad_lines_are_named_and_stop_the_plugin),
        cmocka_unit_test(test_bad_regex_is_refused_by_the_agents_check),
        cmocka_unit_test(test_qmp_socket_names_and_paths_once),
        cmocka_unit_test(test_conflicting_transports),
        cmocka_unit_test(test_sockets_and_socket_dir_conflict),
        cmocka_unit_test(test_single_options_given_twice),
        cmocka_unit_test(test_every_error_is_reported),
        cmocka_unit_test(test_a_bad_block_stops_the_good_one_too),
        cmocka_unit_test(test_two_blocks_two_instances),
        cmocka_unit_test(test_blocks_reading_the_same_domains_are_refused),
        cmocka_unit_test(test_agent_refusing_the_config_stops_init),
        cmocka_unit_test(test_transport_not_up_yet_is_retried_by_read),
        cmocka_unit_test(test_reload_leaks_nothing),
    };

    return pf_run_tests(tests, sizeof(tests) / sizeof(tests[0]), pf_teardown);
}
