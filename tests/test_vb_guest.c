/* The guest driver model: each profile's answers, and the linux workload's invariants, determinism and
 * monotonic counters. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/vb_clock.h"
#include "virtio/vb_guest.h"

#define S VB_NS_PER_S
#define MIB (UINT64_C(1) << 20)
#define FULL (VB_STAT_COUNT * VB_STAT_WIRE_SIZE)

/* Fill at now_ns and decode: returns the number of entries; tags[] gets them in buffer order. */
static size_t answer(vb_guest_t *g, int64_t now_ns, uint64_t values[VB_STAT_COUNT],
                     unsigned tags[VB_STAT_COUNT])
{
    uint8_t buf[FULL + VB_STAT_WIRE_SIZE];
    size_t len;

    memset(buf, 0xee, sizeof(buf));
    len = vb_guest_fill_buffer(g, now_ns, buf, sizeof(buf));
    assert_int_equal(len % VB_STAT_WIRE_SIZE, 0);
    assert_true(len <= FULL);
    for (int i = 0; i < VB_STAT_COUNT; i++)
        values[i] = VB_STAT_UNSET;
    for (size_t e = 0; e < len / VB_STAT_WIRE_SIZE; e++)
        tags[e] = buf[e * VB_STAT_WIRE_SIZE] | (unsigned)buf[e * VB_STAT_WIRE_SIZE + 1] << 8;
    assert_int_equal(vb_stats_decode(buf, len, values), len / VB_STAT_WIRE_SIZE);
    return len / VB_STAT_WIRE_SIZE;
}

static void test_profile_names(void **state)
{
    const char *names[] = {"linux", "legacy", "none", "stuck", "empty", "slow", "oom"};
    const vb_guest_profile_t profiles[] = {VB_GUEST_LINUX, VB_GUEST_LEGACY, VB_GUEST_NONE,
                                           VB_GUEST_STUCK, VB_GUEST_EMPTY, VB_GUEST_SLOW,
                                           VB_GUEST_OOM};
    vb_guest_profile_t p;

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        p = (vb_guest_profile_t)-1;
        assert_int_equal(vb_guest_profile_parse(names[i], &p), 0);
        assert_int_equal(p, profiles[i]);
        assert_string_equal(vb_guest_profile_name(profiles[i]), names[i]);
    }
    p = VB_GUEST_SLOW;
    assert_int_equal(vb_guest_profile_parse("Linux", &p), -EINVAL);
    assert_int_equal(vb_guest_profile_parse("", &p), -EINVAL);
    assert_int_equal(vb_guest_profile_parse("linux ", &p), -EINVAL);
    assert_int_equal(p, VB_GUEST_SLOW); /* untouched on error */
    assert_null(vb_guest_profile_name((vb_guest_profile_t)7));
    vb_guest_free(NULL);
}

/* The workload's invariants at one time. */
static void check_linux_values(const uint64_t v[VB_STAT_COUNT], uint64_t memory)
{
    assert_true(v[VB_STAT_TOTAL_MEMORY] == memory);
    assert_true(v[VB_STAT_FREE_MEMORY] <= memory);
    assert_true(v[VB_STAT_FREE_MEMORY] >= memory / 20); /* never out of memory */
    assert_true(v[VB_STAT_AVAILABLE_MEMORY] >= v[VB_STAT_FREE_MEMORY]);
    assert_true(v[VB_STAT_AVAILABLE_MEMORY] <= memory);
    assert_true(v[VB_STAT_DISK_CACHES] > 0);
    assert_true(v[VB_STAT_FREE_MEMORY] + v[VB_STAT_DISK_CACHES] <= memory);
    assert_true(v[VB_STAT_FREE_MEMORY] % 4096 == 0);
    assert_true(v[VB_STAT_DISK_CACHES] % 4096 == 0);
    assert_true(v[VB_STAT_SWAP_IN] % 4096 == 0);
    assert_true(v[VB_STAT_SWAP_OUT] % 4096 == 0);
    assert_true(v[VB_STAT_MINOR_FAULTS] > v[VB_STAT_MAJOR_FAULTS]);
    assert_true(v[VB_STAT_MAJOR_FAULTS] > 0);
    assert_true(v[VB_STAT_HTLB_PGALLOC] == 0);
    assert_true(v[VB_STAT_HTLB_PGFAIL] == 0);
    assert_true(v[VB_STAT_OOM_KILLS] == 0);
    assert_true(v[VB_STAT_ASYNC_RECLAIMS] <= v[VB_STAT_ASYNC_SCANS]);
    assert_true(v[VB_STAT_DIRECT_RECLAIMS] <= v[VB_STAT_DIRECT_SCANS]);
}

/* linux: answers at once, every one of the 16 stats in tag order. */
static void test_linux_answers_every_stat(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, 2048 * MIB, 7);
    uint64_t v[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    assert_non_null(g);
    for (int i = 0; i < 5; i++)
        assert_int_equal(vb_guest_on_request(g, i * 10 * S), 0);
    assert_int_equal(answer(g, 40 * S, v, tags), VB_STAT_COUNT);
    for (unsigned i = 0; i < VB_STAT_COUNT; i++) {
        assert_int_equal(tags[i], i);
        assert_true(v[i] != VB_STAT_UNSET);
    }
    check_linux_values(v, 2048 * MIB);
    vb_guest_free(g);
}

/* Invariants hold at any time, for many seeds and memory sizes (1 TiB checks for overflow). */
static void test_linux_invariants_many_seeds(void **state)
{
    const uint64_t sizes[] = {256 * MIB, 1024 * MIB + 4096 * 3, 64 * 1024 * MIB,
                              UINT64_C(1) << 40};

    (void)state;
    for (size_t m = 0; m < sizeof(sizes) / sizeof(sizes[0]); m++) {
        for (uint64_t seed = 0; seed < 40; seed++) {
            vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, sizes[m], seed * 7919);
            uint64_t v[VB_STAT_COUNT];
            unsigned tags[VB_STAT_COUNT];

            assert_non_null(g);
            for (int64_t t = 0; t < 36 * 3600 * S; t += 3607 * S + seed * S) {
                assert_int_equal(answer(g, t, v, tags), VB_STAT_COUNT);
                check_linux_values(v, sizes[m]);
            }
            vb_guest_free(g);
        }
    }
}

/* Values are a function of seed and time alone: order and number of calls do not matter. */
static void test_linux_deterministic(void **state)
{
    vb_guest_t *a = vb_guest_new(VB_GUEST_LINUX, 4096 * MIB, 1234);
    vb_guest_t *b = vb_guest_new(VB_GUEST_LINUX, 4096 * MIB, 1234);
    vb_guest_t *c = vb_guest_new(VB_GUEST_LINUX, 4096 * MIB, 1235);
    const int64_t times[] = {0, 1 * S, 10 * S + 123456789, 3600 * S, 86400 * S * 30};
    uint64_t va[5][VB_STAT_COUNT], vb[VB_STAT_COUNT], vc[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];
    bool differs = false;

    (void)state;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(vb_guest_on_request(a, times[i]), 0);
        answer(a, times[i], va[i], tags);
    }
    for (int i = 4; i >= 0; i--) { /* b in reverse order, with extra calls in between */
        answer(b, times[i] + 5 * S, vb, tags);
        answer(b, times[i], vb, tags);
        assert_memory_equal(va[i], vb, sizeof(vb));
    }
    for (int i = 1; i < 5; i++) {
        answer(c, times[i], vc, tags);
        if (memcmp(va[i], vc, sizeof(vc)) != 0)
            differs = true;
    }
    assert_true(differs); /* another seed is another workload */
    vb_guest_free(a);
    vb_guest_free(b);
    vb_guest_free(c);
}

/* Over a day of 10 s polls: counters never go back, fault counters always grow, swap grows now and
 * then (and not always), free memory moves. */
static void test_linux_workload_over_a_day(void **state)
{
    static const unsigned counters[] = {
        VB_STAT_SWAP_IN, VB_STAT_SWAP_OUT, VB_STAT_MAJOR_FAULTS, VB_STAT_MINOR_FAULTS,
        VB_STAT_HTLB_PGALLOC, VB_STAT_HTLB_PGFAIL, VB_STAT_OOM_KILLS, VB_STAT_ALLOC_STALLS,
        VB_STAT_ASYNC_SCANS, VB_STAT_DIRECT_SCANS, VB_STAT_ASYNC_RECLAIMS, VB_STAT_DIRECT_RECLAIMS,
    };
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, 1024 * MIB, seed);
        uint64_t prev[VB_STAT_COUNT], cur[VB_STAT_COUNT], first[VB_STAT_COUNT];
        unsigned swap_grew = 0, swap_still = 0, free_moved = 0, polls = 0;
        uint64_t free_min = UINT64_MAX, free_max = 0;

        answer(g, 0, first, tags);
        memcpy(prev, first, sizeof(prev));
        for (int64_t t = 10 * S; t <= 86400 * S; t += 10 * S, polls++) {
            answer(g, t, cur, tags);
            for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
                assert_true(cur[counters[i]] >= prev[counters[i]]);
            assert_true(cur[VB_STAT_MINOR_FAULTS] > prev[VB_STAT_MINOR_FAULTS]);
            if (cur[VB_STAT_SWAP_OUT] > prev[VB_STAT_SWAP_OUT])
                swap_grew++;
            else
                swap_still++;
            if (cur[VB_STAT_FREE_MEMORY] != prev[VB_STAT_FREE_MEMORY])
                free_moved++;
            if (cur[VB_STAT_FREE_MEMORY] < free_min)
                free_min = cur[VB_STAT_FREE_MEMORY];
            if (cur[VB_STAT_FREE_MEMORY] > free_max)
                free_max = cur[VB_STAT_FREE_MEMORY];
            memcpy(prev, cur, sizeof(prev));
        }
        assert_true(cur[VB_STAT_MAJOR_FAULTS] > first[VB_STAT_MAJOR_FAULTS]);
        assert_true(cur[VB_STAT_SWAP_IN] > first[VB_STAT_SWAP_IN]);
        assert_true(cur[VB_STAT_ASYNC_SCANS] > first[VB_STAT_ASYNC_SCANS]);
        assert_true(cur[VB_STAT_DIRECT_RECLAIMS] > first[VB_STAT_DIRECT_RECLAIMS]);
        assert_true(swap_grew > polls / 50); /* occasionally ... */
        assert_true(swap_still > polls / 4); /* ... not always */
        assert_true(free_moved > polls / 2);
        assert_true(free_max - free_min > 1024 * MIB / 10); /* it wanders, by more than 10% */
        vb_guest_free(g);
    }
}

/* Counters are monotonic at any resolution, across epoch boundaries too. */
static void test_linux_counters_monotonic_fine_grained(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, 1024 * MIB, 99);
    uint64_t prev[VB_STAT_COUNT], cur[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    answer(g, 0, prev, tags);
    for (int64_t t = 0; t < 2000 * S; t += 37 * VB_NS_PER_MS) {
        answer(g, t, cur, tags);
        for (unsigned tag = 0; tag < VB_STAT_COUNT; tag++) {
            if (tag == VB_STAT_FREE_MEMORY || tag == VB_STAT_AVAILABLE_MEMORY ||
                tag == VB_STAT_DISK_CACHES || tag == VB_STAT_TOTAL_MEMORY)
                continue;
            assert_true(cur[tag] >= prev[tag]);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    vb_guest_free(g);
}

/* A reboot starts the counters over, from the guest's next request. */
static void test_linux_reset_restarts_counters(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, 1024 * MIB, 5);
    vb_guest_t *fresh = vb_guest_new(VB_GUEST_LINUX, 1024 * MIB, 5);
    uint64_t before[VB_STAT_COUNT], after[VB_STAT_COUNT], boot[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    answer(g, 7200 * S, before, tags);
    vb_guest_reset(g);
    assert_int_equal(vb_guest_on_request(g, 8000 * S), 0);
    answer(g, 8000 * S, after, tags);
    answer(fresh, 0, boot, tags);
    assert_memory_equal(after, boot, sizeof(boot)); /* the same guest, booted at 8000 s */
    assert_true(after[VB_STAT_MINOR_FAULTS] < before[VB_STAT_MINOR_FAULTS]);
    answer(g, 8100 * S, after, tags);
    answer(fresh, 100 * S, boot, tags);
    assert_memory_equal(after, boot, sizeof(boot));
    vb_guest_free(g);
    vb_guest_free(fresh);
}

/* Only whole entries that fit are written. */
static void test_fill_respects_capacity(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, 1024 * MIB, 1);
    uint8_t buf[FULL + 1];

    (void)state;
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(vb_guest_fill_buffer(g, 0, buf, 25), 20);
    assert_int_equal(buf[20], 0xee);
    assert_int_equal(vb_guest_fill_buffer(g, 0, buf, 9), 0);
    assert_int_equal(vb_guest_fill_buffer(g, 0, buf, 0), 0);
    assert_int_equal(vb_guest_fill_buffer(g, 0, buf, sizeof(buf)), FULL);
    vb_guest_free(g);
}

/* legacy: at once, the six stats of QEMU's stats document. */
static void test_legacy(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_LEGACY, 512 * MIB, 3);
    uint64_t v[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    assert_int_equal(vb_guest_on_request(g, 0), 0);
    assert_int_equal(answer(g, 100 * S, v, tags), 6);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(tags[i], i);
    assert_true(v[VB_STAT_TOTAL_MEMORY] == 512 * MIB);
    assert_true(v[VB_STAT_FREE_MEMORY] < 512 * MIB);
    assert_true(v[VB_STAT_MINOR_FAULTS] > 0);
    for (unsigned i = 6; i < VB_STAT_COUNT; i++)
        assert_true(v[i] == VB_STAT_UNSET);
    vb_guest_free(g);
}

/* none: never answers, whatever happens. */
static void test_none(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_NONE, 512 * MIB, 3);
    uint8_t buf[FULL];

    (void)state;
    for (int i = 0; i < 10; i++)
        assert_int_equal(vb_guest_on_request(g, i * S), -1);
    vb_guest_reset(g);
    assert_int_equal(vb_guest_on_request(g, 20 * S), -1);
    assert_int_equal(vb_guest_fill_buffer(g, 20 * S, buf, sizeof(buf)), 0);
    vb_guest_free(g);
}

/* stuck: answers 3 requests with every stat, then never again until a reboot. */
static void test_stuck(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_STUCK, 512 * MIB, 3);
    uint64_t v[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3; i++) {
            assert_int_equal(vb_guest_on_request(g, i * S), 0);
            assert_int_equal(answer(g, i * S, v, tags), VB_STAT_COUNT);
        }
        for (int i = 3; i < 10; i++)
            assert_int_equal(vb_guest_on_request(g, i * S), -1);
        vb_guest_reset(g);
    }
    vb_guest_free(g);
}

/* empty: answers at once with an empty buffer. */
static void test_empty(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_EMPTY, 512 * MIB, 3);
    uint8_t buf[FULL];

    (void)state;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(vb_guest_on_request(g, i * S), 0);
        assert_int_equal(vb_guest_fill_buffer(g, i * S, buf, sizeof(buf)), 0);
    }
    vb_guest_free(g);
}

/* slow: answers 2 s after each request, with every stat. */
static void test_slow(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_SLOW, 512 * MIB, 3);
    uint64_t v[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(vb_guest_on_request(g, i * 10 * S), 2 * S);
    assert_int_equal(answer(g, 42 * S, v, tags), VB_STAT_COUNT);
    check_linux_values(v, 512 * MIB);
    vb_guest_free(g);
}

/* oom: a linux guest whose OOM killer kills a process every 5 s since boot; every other stat is
 * the linux workload's. */
static void test_oom(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_OOM, 1024 * MIB, 9);
    vb_guest_t *linux_guest = vb_guest_new(VB_GUEST_LINUX, 1024 * MIB, 9);
    const int64_t times[] = {0, 4 * S + S / 2, 5 * S, 9 * S, 10 * S, 3600 * S};
    const uint64_t kills[] = {0, 0, 1, 1, 2, 720};
    uint64_t v[VB_STAT_COUNT], lv[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        assert_int_equal(vb_guest_on_request(g, times[i]), 0);
        assert_int_equal(answer(g, times[i], v, tags), VB_STAT_COUNT);
        answer(linux_guest, times[i], lv, tags);
        assert_true(v[VB_STAT_OOM_KILLS] == kills[i]);
        lv[VB_STAT_OOM_KILLS] = kills[i];
        assert_memory_equal(v, lv, sizeof(v));
    }
    /* A reboot starts the count over. */
    vb_guest_reset(g);
    assert_int_equal(vb_guest_on_request(g, 4000 * S), 0);
    answer(g, 4007 * S, v, tags);
    assert_true(v[VB_STAT_OOM_KILLS] == 1);
    vb_guest_free(g);
    vb_guest_free(linux_guest);
}

/* A guest with no memory, or less than a page, reports zeros and does not crash. */
static void test_tiny_memory(void **state)
{
    vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, 0, 3);
    uint64_t v[VB_STAT_COUNT];
    unsigned tags[VB_STAT_COUNT];

    (void)state;
    assert_int_equal(answer(g, 10 * S, v, tags), VB_STAT_COUNT);
    assert_true(v[VB_STAT_TOTAL_MEMORY] == 0);
    assert_true(v[VB_STAT_FREE_MEMORY] == 0);
    assert_true(v[VB_STAT_AVAILABLE_MEMORY] == 0);
    vb_guest_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_names),
        cmocka_unit_test(test_linux_answers_every_stat),
        cmocka_unit_test(test_linux_invariants_many_seeds),
        cmocka_unit_test(test_linux_deterministic),
        cmocka_unit_test(test_linux_workload_over_a_day),
        cmocka_unit_test(test_linux_counters_monotonic_fine_grained),
        cmocka_unit_test(test_linux_reset_restarts_counters),
        cmocka_unit_test(test_fill_respects_capacity),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_stuck),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_slow),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_tiny_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
