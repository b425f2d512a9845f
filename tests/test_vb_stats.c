/* The virtio-balloon stats wire format: packed little-endian {le16 tag; le64 val}. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/vb_stats.h"

static void fill_unset(uint64_t values[VB_STAT_COUNT])
{
    for (int i = 0; i < VB_STAT_COUNT; i++)
        values[i] = VB_STAT_UNSET;
}

static void test_encode_is_little_endian_and_packed(void **state)
{
    uint8_t out[VB_STAT_WIRE_SIZE];
    const uint8_t expected[VB_STAT_WIRE_SIZE] = {0x04, 0x00, 0x08, 0x07, 0x06, 0x05,
                                                 0x04, 0x03, 0x02, 0x01};
    (void)state;
    vb_stat_encode(out, VB_STAT_FREE_MEMORY, UINT64_C(0x0102030405060708));
    assert_memory_equal(out, expected, sizeof(expected));
}

static void test_decode_round_trip(void **state)
{
    uint8_t buf[3 * VB_STAT_WIRE_SIZE];
    uint64_t values[VB_STAT_COUNT];
    (void)state;
    vb_stat_encode(buf, VB_STAT_SWAP_IN, 7);
    vb_stat_encode(buf + VB_STAT_WIRE_SIZE, VB_STAT_TOTAL_MEMORY, UINT64_C(1044406272));
    vb_stat_encode(buf + 2 * VB_STAT_WIRE_SIZE, VB_STAT_DIRECT_RECLAIMS, UINT64_MAX - 1);
    fill_unset(values);
    assert_int_equal(vb_stats_decode(buf, sizeof(buf), values), 3);
    assert_true(values[VB_STAT_SWAP_IN] == 7);
    assert_true(values[VB_STAT_TOTAL_MEMORY] == UINT64_C(1044406272));
    assert_true(values[VB_STAT_DIRECT_RECLAIMS] == UINT64_MAX - 1);
    assert_true(values[VB_STAT_SWAP_OUT] == VB_STAT_UNSET);
}

static void test_unknown_tag_ignored_repeat_overwrites_partial_ignored(void **state)
{
    uint8_t buf[3 * VB_STAT_WIRE_SIZE + 4];
    uint64_t values[VB_STAT_COUNT];
    (void)state;
    vb_stat_encode(buf, 16, 99);                          /* unknown tag */
    vb_stat_encode(buf + VB_STAT_WIRE_SIZE, VB_STAT_MAJOR_FAULTS, 1);
    vb_stat_encode(buf + 2 * VB_STAT_WIRE_SIZE, VB_STAT_MAJOR_FAULTS, 2); /* overwrites */
    memset(buf + 3 * VB_STAT_WIRE_SIZE, 0, 4);            /* partial trailing entry */
    fill_unset(values);
    assert_int_equal(vb_stats_decode(buf, sizeof(buf), values), 3);
    assert_true(values[VB_STAT_MAJOR_FAULTS] == 2);
    for (int i = 0; i < VB_STAT_COUNT; i++)
        if (i != VB_STAT_MAJOR_FAULTS)
            assert_true(values[i] == VB_STAT_UNSET);
}

static void test_names_follow_qemu(void **state)
{
    (void)state;
    assert_string_equal(vb_stat_name(VB_STAT_SWAP_IN), "stat-swap-in");
    assert_string_equal(vb_stat_name(VB_STAT_HTLB_PGFAIL), "stat-htlb-pgfail");
    assert_string_equal(vb_stat_name(VB_STAT_DIRECT_RECLAIMS), "stat-direct-reclaims");
    assert_null(vb_stat_name(VB_STAT_COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_is_little_endian_and_packed),
        cmocka_unit_test(test_decode_round_trip),
        cmocka_unit_test(test_unknown_tag_ignored_repeat_overwrites_partial_ignored),
        cmocka_unit_test(test_names_follow_qemu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
