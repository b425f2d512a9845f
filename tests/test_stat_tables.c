/* The agent's names of QEMU's stats (agent/bal_stats.c) against the device model's
 * (virtio/vb_stats.c): the same 16 names for the same tags. The fake QEMUs of the agent, fault and soak
 * tests answer with the device model's names (tests/tt_qemu_reply.h), and tests/qmp_transcript.sh
 * holds those to what QEMU 7.2 prints; this test ties the agent's table to them, so that a typo on
 * either side fails here, by name, rather than as a missing stat somewhere else. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/bal_stats.h"
#include "virtio/vb_stats.h"

static void test_same_names_for_the_same_tags(void **state)
{
    (void)state;
    assert_int_equal(BAL_STAT_COUNT, VB_STAT_COUNT);
    for (unsigned tag = 0; tag < VB_STAT_COUNT; tag++) {
        const char *agent = bal_stat_qmp_name((bal_stat_t)tag), *device = vb_stat_name(tag);
        assert_non_null(agent);
        assert_non_null(device);
        assert_string_equal(agent, device);
        assert_int_equal(bal_stat_from_qmp_name(device), (int)tag);
    }
}

static void test_nothing_beyond_the_tables(void **state)
{
    (void)state;
    assert_null(bal_stat_qmp_name(BAL_STAT_COUNT));
    assert_null(vb_stat_name(VB_STAT_COUNT));
    assert_int_equal(bal_stat_from_qmp_name("stat-"), -1);
    assert_int_equal(bal_stat_from_qmp_name("last-update"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_names_for_the_same_tags),
        cmocka_unit_test(test_nothing_beyond_the_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
