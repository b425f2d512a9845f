/* The plugin's share of the open-files limit (plugin/bp_fdlimit.h), in this test process: the soft
 * limit raised to the hard one, what is left after a reserve for the rest of collectd shared among the
 * blocks on QMP sockets and handed to their agents, and one line that says what was done. The tests
 * lower the limits as they go (a later one never needs more than an earlier one had). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "plugin/bp_fdlimit.h"
#include "tests/test_plugin_agent.h"
#include "tests/test_plugin_core.h"
#include "tests/test_plugin_fixture.h"

static void set_limits(rlim_t soft, rlim_t hard)
{
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};

    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        skip(); /* not allowed to change its own limits here */
}

static rlim_t soft_limit(void)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur;
}

static void test_soft_limit_raised_to_the_hard_one(void **state)
{
    bp_fdlimit_plan_t plan;
    char within[64];
    (void)state;

    set_limits(300, 2000);
    bp_fdlimit_apply(2, &plan);
    assert_int_equal(soft_limit(), 2000);
    assert_int_equal(plan.soft_before, 300);
    assert_int_equal(plan.soft, 2000);
    assert_int_equal(plan.reserve, 250); /* an eighth */
    assert_true(plan.open > 2);
    assert_int_equal(plan.share, (2000 - (size_t)plan.open - 250) / 2);
    snprintf(within, sizeof(within), "kept within %zu descriptors", plan.share);
    assert_int_equal(fc_count_logs(LOG_INFO, "balloon plugin: The open-files limit was raised from 300 to 2000",
                                   within, "leaving at least 250 to the rest of collectd", NULL), 1);
    assert_int_equal(fc_n_logs(), 1); /* said once */
}

static void test_hard_limit_kept_and_said(void **state)
{
    bp_fdlimit_plan_t plan;
    (void)state;

    set_limits(600, 600);
    bp_fdlimit_apply(1, &plan);
    assert_int_equal(soft_limit(), 600);
    assert_int_equal(plan.reserve, BP_FDLIMIT_RESERVE_MIN);
    assert_int_equal(plan.share, 600 - (size_t)plan.open - BP_FDLIMIT_RESERVE_MIN);
    assert_int_equal(fc_count_logs(LOG_INFO, "The open-files limit is 600, its hard limit.",
                                   "leaving at least 128 to the rest of collectd", NULL), 1);
}

static void test_no_room_still_one(void **state)
{
    bp_fdlimit_plan_t plan;
    (void)state;

    set_limits(100, 100);
    bp_fdlimit_apply(3, &plan);
    assert_int_equal(plan.share, 1); /* every command its own connection, one at a time */
}

/* Through init: a block on QMP sockets gets its share as its agent's descriptor budget; a libvirt
 * block keeps a handful of descriptors whatever its domains: nothing raised, nothing said. */
static void test_a_block_on_qmp_sockets_gets_its_share(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;

    set_limits(100, 100);
    fc_opt_s(b, "QMPSocketDir", "/run/qemu");
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fa_config()->max_descriptors, 1);
    assert_int_equal(fc_count_logs(LOG_INFO, "The open-files limit is 100", NULL), 1);
}

static void test_a_libvirt_block_is_left_alone(void **state)
{
    oconfig_item_t *b = fc_block();
    (void)state;

    fc_opt_s(b, "Connection", "qemu:///system");
    assert_int_equal(fc_config(b), 0);
    assert_int_equal(fc_init(), 0);
    assert_int_equal(fa_config()->max_descriptors, 0);
    assert_int_equal(fc_count_logs(-1, "open-files limit", NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_limit_raised_to_the_hard_one),
        cmocka_unit_test(test_hard_limit_kept_and_said),
        cmocka_unit_test(test_no_room_still_one),
        cmocka_unit_test(test_a_block_on_qmp_sockets_gets_its_share),
        cmocka_unit_test(test_a_libvirt_block_is_left_alone),
    };
    return pf_run_tests(tests, sizeof(tests) / sizeof(tests[0]), pf_teardown);
}
