/* The device model against QEMU's stats document and QEMU 7.2's hw/virtio/virtio-balloon.c: polling on,
 * change and off, the timer re-armed only by an answer, stats_count, stop/cont, system_reset.
 *
 * vb_guest_on_request is wrapped (-Wl,--wrap) so each test can count the requests the device sends;
 * the wrapper calls the real guest model. Time is a manual clock: no sleeps. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/vb_device.h"

#define S VB_NS_PER_S
#define MS VB_NS_PER_MS
#define WALL_BASE INT64_C(1700000000)
#define MEMORY (UINT64_C(1) << 30)

int64_t __real_vb_guest_on_request(vb_guest_t *guest, int64_t now_ns);
int64_t __wrap_vb_guest_on_request(vb_guest_t *guest, int64_t now_ns);

static unsigned requests;        /* requests the device sent to its guest */
static int64_t last_request_ns; /* the guest time of the last one */

int64_t __wrap_vb_guest_on_request(vb_guest_t *guest, int64_t now_ns)
{
    requests++;
    last_request_ns = now_ns;
    return __real_vb_guest_on_request(guest, now_ns);
}

typedef struct fixture {
    vb_manual_clock_t mc;
    vb_device_t *dev;
} fixture_t;

static fixture_t *fixture_new(vb_guest_profile_t profile, bool with_guest, unsigned stats_count)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    vb_guest_t *guest = NULL;

    assert_non_null(fx);
    vb_manual_clock_init(&fx->mc, WALL_BASE);
    if (with_guest) {
        guest = vb_guest_new(profile, MEMORY, 42);
        assert_non_null(guest);
    }
    fx->dev = vb_device_new(&fx->mc.clock, stats_count, guest, MEMORY);
    assert_non_null(fx->dev);
    requests = 0;
    last_request_ns = -1;
    return fx;
}

static void fixture_free(fixture_t *fx)
{
    vb_device_free(fx->dev);
    free(fx);
}

static int setup_linux(void **state)
{
    *state = fixture_new(VB_GUEST_LINUX, true, VB_STATS_QEMU72);
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

/* What an event loop does: jump to each deadline up to `until` (monotonic ns) and run the device. */
static void run_until(fixture_t *fx, int64_t until)
{
    for (;;) {
        int64_t next = vb_device_next_deadline_ns(fx->dev);

        if (next > until)
            break;
        assert_true(next >= fx->mc.now_ns); /* never a deadline in the past after a run */
        fx->mc.now_ns = next;
        vb_device_run(fx->dev);
    }
    fx->mc.now_ns = until;
    vb_device_run(fx->dev);
}

static void set_interval(fixture_t *fx, int64_t seconds)
{
    char err[128] = "";

    assert_int_equal(vb_device_set_polling_interval(fx->dev, seconds, err, sizeof(err)), 0);
    assert_string_equal(err, ""); /* errbuf untouched on success */
}

static vb_guest_stats_t stats_of(const fixture_t *fx)
{
    vb_guest_stats_t st;

    memset(&st, 0xa5, sizeof(st));
    vb_device_get_stats(fx->dev, &st);
    return st;
}

static int64_t wall_at(int64_t mono_ns)
{
    return WALL_BASE + mono_ns / S;
}

/* A new device: polling off, every stat unset, last-update 0, nothing due. */
static void test_new_device(void **state)
{
    fixture_t *fx = *state;
    vb_guest_stats_t st = stats_of(fx);

    assert_int_equal(vb_device_polling_interval(fx->dev), 0);
    assert_int_equal(st.count, VB_STATS_QEMU72);
    assert_int_equal(vb_device_stats_count(fx->dev), VB_STATS_QEMU72);
    assert_int_equal(st.last_update, 0);
    for (int i = 0; i < VB_STAT_COUNT; i++)
        assert_true(st.values[i] == VB_STAT_UNSET);
    assert_true(vb_device_actual(fx->dev) == MEMORY);
    assert_true(vb_device_running(fx->dev));
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
    run_until(fx, 3600 * S); /* nothing polls while polling is off */
    assert_int_equal(requests, 0);
    assert_int_equal(stats_of(fx).last_update, 0);
}

static void test_bad_stats_count_keeps_guest(void **state)
{
    vb_manual_clock_t mc;
    vb_guest_t *guest = vb_guest_new(VB_GUEST_LINUX, MEMORY, 1);
    const unsigned bad[] = {0, 5, 7, 11, 17};

    (void)state;
    vb_manual_clock_init(&mc, WALL_BASE);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(vb_device_new(&mc.clock, bad[i], guest, MEMORY));
        assert_int_equal(errno, EINVAL);
    }
    vb_guest_free(guest); /* still ours: ASan would report a double free otherwise */
    vb_device_free(NULL);
}

/* Stats document: "> 0 enables polling"; QEMU 7.2: from 0 the first poll is at once. */
static void test_enable_polls_at_once_then_every_interval(void **state)
{
    fixture_t *fx = *state;
    vb_guest_stats_t st;

    fx->mc.now_ns = 500 * MS;
    set_interval(fx, 2);
    assert_int_equal(vb_device_polling_interval(fx->dev), 2);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 500 * MS);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 1);
    st = stats_of(fx);
    assert_int_equal(st.last_update, wall_at(500 * MS));
    assert_true(st.values[VB_STAT_TOTAL_MEMORY] == MEMORY);
    assert_true(st.values[VB_STAT_FREE_MEMORY] < MEMORY);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 2500 * MS);

    run_until(fx, 2499 * MS);
    assert_int_equal(requests, 1);
    run_until(fx, 10500 * MS); /* polls at 2.5, 4.5, 6.5, 8.5, 10.5 s */
    assert_int_equal(requests, 6);
    assert_int_equal(stats_of(fx).last_update, wall_at(10500 * MS));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 12500 * MS);
}

/* Stats document: "If polling is already enabled, the polling time interval is changed"; QEMU re-arms
 * the timer the new interval from now. */
static void test_change_interval_rearms_from_now(void **state)
{
    fixture_t *fx = *state;

    set_interval(fx, 2);
    run_until(fx, 1 * S);
    assert_int_equal(requests, 1);
    set_interval(fx, 10);
    assert_int_equal(vb_device_polling_interval(fx->dev), 10);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 11 * S);
    run_until(fx, 10999 * MS);
    assert_int_equal(requests, 1); /* the poll due at 2 s is gone */
    run_until(fx, 11 * S);
    assert_int_equal(requests, 2);
    assert_int_equal(stats_of(fx).last_update, wall_at(11 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 21 * S);
    /* shorter works too */
    run_until(fx, 12 * S);
    set_interval(fx, 1);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 13 * S);
}

/* QEMU 7.2: setting the value it already has returns early: no poll, the timer keeps its time. */
static void test_same_value_does_nothing(void **state)
{
    fixture_t *fx = *state;

    set_interval(fx, 5);
    run_until(fx, 3 * S);
    assert_int_equal(requests, 1);
    set_interval(fx, 5);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 5 * S);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 1);
    assert_int_equal(stats_of(fx).last_update, wall_at(0));
    /* and 0 while already 0 */
    set_interval(fx, 0);
    set_interval(fx, 0);
    assert_int_equal(vb_device_polling_interval(fx->dev), 0);
}

/* Stats document: "0 disables polling. Previous polled statistics are still valid". */
static void test_disable_keeps_last_stats(void **state)
{
    fixture_t *fx = *state;
    vb_guest_stats_t before, after;

    set_interval(fx, 2);
    run_until(fx, 4 * S);
    assert_int_equal(requests, 3);
    before = stats_of(fx);
    set_interval(fx, 0);
    assert_int_equal(vb_device_polling_interval(fx->dev), 0);
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
    run_until(fx, 3600 * S);
    assert_int_equal(requests, 3);
    after = stats_of(fx);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(after.last_update, wall_at(4 * S));
    assert_true(after.values[VB_STAT_MINOR_FAULTS] != VB_STAT_UNSET);
}

/* QEMU 7.2: from 0 back to N creates a new timer that fires at once. */
static void test_reenable_polls_at_once(void **state)
{
    fixture_t *fx = *state;

    set_interval(fx, 2);
    run_until(fx, 1 * S);
    set_interval(fx, 0);
    run_until(fx, 100 * S);
    assert_int_equal(requests, 1);
    set_interval(fx, 7);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 100 * S);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 2);
    assert_int_equal(stats_of(fx).last_update, wall_at(100 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 107 * S);
}

/* QEMU's exact texts; the interval is left unchanged. */
static void test_bad_intervals(void **state)
{
    fixture_t *fx = *state;
    char err[128];
    char small[8];

    set_interval(fx, 3);
    run_until(fx, 1 * S);

    strcpy(err, "untouched");
    assert_int_equal(vb_device_set_polling_interval(fx->dev, -1, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "timer value must be greater than zero");
    assert_int_equal(vb_device_set_polling_interval(fx->dev, INT64_MIN, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "timer value must be greater than zero");
    assert_int_equal(
        vb_device_set_polling_interval(fx->dev, (int64_t)UINT32_MAX + 1, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "timer value is too big");
    assert_int_equal(vb_device_set_polling_interval(fx->dev, INT64_MAX, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "timer value is too big");
    /* a short buffer is truncated and terminated; no buffer at all is fine */
    assert_int_equal(vb_device_set_polling_interval(fx->dev, -5, small, sizeof(small)), -EINVAL);
    assert_string_equal(small, "timer v");
    assert_int_equal(vb_device_set_polling_interval(fx->dev, -5, NULL, 0), -EINVAL);

    assert_int_equal(vb_device_polling_interval(fx->dev), 3);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 3 * S);
    assert_int_equal(requests, 1);

    /* the largest value QEMU takes */
    set_interval(fx, (int64_t)UINT32_MAX);
    assert_true(vb_device_polling_interval(fx->dev) == (int64_t)UINT32_MAX);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 1 * S + (int64_t)UINT32_MAX * S);
}

/* Stats document: "Polling can be enabled even if the guest doesn't have stats support or the balloon
 * driver wasn't loaded in the guest. If this is the case and stats are queried, last-update will be 0."
 * And the timer, never re-armed, has the same effect as disabling polling. */
static void check_no_driver(fixture_t *fx)
{
    vb_guest_stats_t st;

    set_interval(fx, 2);
    run_until(fx, 3600 * S);
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
    st = stats_of(fx);
    assert_int_equal(st.last_update, 0);
    for (int i = 0; i < VB_STAT_COUNT; i++)
        assert_true(st.values[i] == VB_STAT_UNSET);
}

static void test_no_driver_profile_none(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_NONE, true, VB_STATS_QEMU72);

    (void)state;
    check_no_driver(fx);
    assert_int_equal(requests, 1); /* one request, never answered, never sent again */
    fixture_free(fx);
}

static void test_no_guest_at_all(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_LINUX, false, VB_STATS_QEMU72);

    (void)state;
    check_no_driver(fx);
    assert_int_equal(requests, 0);
    vb_device_reset(fx->dev);
    fixture_free(fx);
}

/* Stats document: "The polling timer is only re-armed when the guest responds". A late answer,
 * whenever it comes, re-arms it. */
static void test_timer_rearmed_only_by_an_answer(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_NONE, true, VB_STATS_QEMU72);
    uint8_t buf[VB_STAT_WIRE_SIZE];

    (void)state;
    set_interval(fx, 5);
    run_until(fx, 1000 * S);
    assert_int_equal(requests, 1);
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);

    vb_stat_encode(buf, VB_STAT_FREE_MEMORY, 12345);
    vb_device_receive_buffer(fx->dev, buf, sizeof(buf));
    assert_int_equal(stats_of(fx).last_update, wall_at(1000 * S));
    assert_true(stats_of(fx).values[VB_STAT_FREE_MEMORY] == 12345);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 1005 * S);
    run_until(fx, 1005 * S);
    assert_int_equal(requests, 2);
    fixture_free(fx);
}

/* QEMU: an interval change while the request is with the guest moves the timer, but when it fires
 * the device holds no buffer, so it only reschedules: the request is not sent again. The answer
 * re-arms the timer from its own time. */
static void test_interval_change_while_request_outstanding(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_SLOW, true, VB_STATS_QEMU72);

    (void)state;
    set_interval(fx, 10);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 1);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 2 * S); /* the slow guest's answer */

    fx->mc.now_ns = 500 * MS;
    set_interval(fx, 1);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 1500 * MS);
    run_until(fx, 1999 * MS);
    assert_int_equal(requests, 1); /* fired at 1.5 s, found the request outstanding */
    assert_int_equal(stats_of(fx).last_update, 0);

    run_until(fx, 2 * S);
    assert_int_equal(requests, 1);
    assert_int_equal(stats_of(fx).last_update, wall_at(2 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 3 * S);
    run_until(fx, 3 * S);
    assert_int_equal(requests, 2);

    /* 0 then N again while outstanding: the timer fires at once but sends nothing either */
    fx->mc.now_ns = 3500 * MS;
    set_interval(fx, 0);
    set_interval(fx, 4);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 2);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 5 * S); /* answer to the request of 3 s */
    run_until(fx, 5 * S);
    assert_int_equal(stats_of(fx).last_update, wall_at(5 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 9 * S);
    fixture_free(fx);
}

/* Polling off while the request is with the guest: its answer still updates the stats, and nothing
 * re-arms the timer. */
static void test_disable_while_request_outstanding(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_SLOW, true, VB_STATS_QEMU72);

    (void)state;
    set_interval(fx, 10);
    vb_device_run(fx->dev);
    fx->mc.now_ns = 1 * S;
    set_interval(fx, 0);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 2 * S);
    run_until(fx, 100 * S);
    assert_int_equal(requests, 1);
    assert_int_equal(stats_of(fx).last_update, wall_at(2 * S));
    assert_true(stats_of(fx).values[VB_STAT_TOTAL_MEMORY] == MEMORY);
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
    fixture_free(fx);
}

/* QEMU 7.2: last-update is set for an empty buffer too, and every stat is reset to unset. */
static void test_empty_buffer_updates_last_update(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_EMPTY, true, VB_STATS_QEMU72);
    uint8_t buf[VB_STAT_WIRE_SIZE];
    vb_guest_stats_t st;

    (void)state;
    vb_stat_encode(buf, VB_STAT_SWAP_IN, 9);
    vb_device_receive_buffer(fx->dev, buf, sizeof(buf));
    assert_true(stats_of(fx).values[VB_STAT_SWAP_IN] == 9);

    fx->mc.now_ns = 7 * S;
    set_interval(fx, 3);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 1);
    st = stats_of(fx);
    assert_int_equal(st.last_update, wall_at(7 * S));
    for (int i = 0; i < VB_STAT_COUNT; i++)
        assert_true(st.values[i] == VB_STAT_UNSET);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 10 * S); /* an empty answer re-arms too */
    run_until(fx, 16 * S);
    assert_int_equal(requests, 4);
    assert_int_equal(stats_of(fx).last_update, wall_at(16 * S));

    vb_device_receive_buffer(fx->dev, NULL, 0);
    fixture_free(fx);
}

/* Each buffer replaces all stats (QEMU's reset_stats); the wire rules apply. */
static void test_buffer_replaces_all_stats(void **state)
{
    fixture_t *fx = *state;
    uint8_t buf[4 * VB_STAT_WIRE_SIZE + 3];
    vb_guest_stats_t st;

    for (unsigned tag = 0; tag < 4; tag++)
        vb_stat_encode(buf + tag * VB_STAT_WIRE_SIZE, (uint16_t)tag, 100 + tag);
    vb_device_receive_buffer(fx->dev, buf, 4 * VB_STAT_WIRE_SIZE);
    st = stats_of(fx);
    for (unsigned tag = 0; tag < 4; tag++)
        assert_true(st.values[tag] == 100 + tag);

    fx->mc.now_ns = 3 * S;
    vb_stat_encode(buf, VB_STAT_FREE_MEMORY, 1);
    vb_stat_encode(buf + VB_STAT_WIRE_SIZE, 99, 2);              /* unknown tag */
    vb_stat_encode(buf + 2 * VB_STAT_WIRE_SIZE, VB_STAT_FREE_MEMORY, 3); /* overwrites */
    vb_stat_encode(buf + 3 * VB_STAT_WIRE_SIZE, VB_STAT_SWAP_IN, UINT64_MAX - 1);
    memset(buf + 4 * VB_STAT_WIRE_SIZE, 0, 3); /* a partial entry */
    vb_device_receive_buffer(fx->dev, buf, sizeof(buf));
    st = stats_of(fx);
    assert_int_equal(st.last_update, wall_at(3 * S));
    assert_true(st.values[VB_STAT_FREE_MEMORY] == 3);
    assert_true(st.values[VB_STAT_SWAP_IN] == UINT64_MAX - 1);
    for (unsigned tag = 1; tag < VB_STAT_COUNT; tag++)
        if (tag != VB_STAT_FREE_MEMORY)
            assert_true(st.values[tag] == VB_STAT_UNSET);
    /* receiving while polling is off does not start it */
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
}

/* guest-stats shows the first 6, 10 or 16 stats; tags beyond are ignored. */
static void check_stats_count(unsigned count)
{
    fixture_t *fx = fixture_new(VB_GUEST_LINUX, true, count);
    uint8_t buf[VB_STAT_WIRE_SIZE];
    vb_guest_stats_t st;

    set_interval(fx, 1);
    vb_device_run(fx->dev);
    st = stats_of(fx);
    assert_int_equal(st.count, count);
    assert_int_equal(vb_device_stats_count(fx->dev), count);
    for (unsigned tag = 0; tag < VB_STAT_COUNT; tag++) {
        if (tag < count)
            assert_true(st.values[tag] != VB_STAT_UNSET);
        else
            assert_true(st.values[tag] == VB_STAT_UNSET);
    }
    /* the last tag this version knows, and the first it does not */
    vb_stat_encode(buf, (uint16_t)(count - 1), 77);
    vb_device_receive_buffer(fx->dev, buf, sizeof(buf));
    assert_true(stats_of(fx).values[count - 1] == 77);
    if (count < VB_STAT_COUNT) {
        vb_stat_encode(buf, (uint16_t)count, 77);
        vb_device_receive_buffer(fx->dev, buf, sizeof(buf));
        assert_true(stats_of(fx).values[count] == VB_STAT_UNSET);
    }
    fixture_free(fx);
}

static void test_stats_count_6_10_16(void **state)
{
    (void)state;
    check_stats_count(VB_STATS_LEGACY);
    check_stats_count(VB_STATS_QEMU72);
    check_stats_count(VB_STATS_QEMU92);
}

/* Stats document: "-1" (UINT64_MAX since QEMU 2.x) for a stat the guest does not support: a legacy
 * guest under QEMU 7.2 leaves the four newer stats unset. */
static void test_unsupported_stats_are_unset(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_LEGACY, true, VB_STATS_QEMU72);
    vb_guest_stats_t st;

    (void)state;
    set_interval(fx, 2);
    vb_device_run(fx->dev);
    st = stats_of(fx);
    for (unsigned tag = 0; tag < VB_STATS_LEGACY; tag++)
        assert_true(st.values[tag] != VB_STAT_UNSET);
    for (unsigned tag = VB_STATS_LEGACY; tag < VB_STAT_COUNT; tag++)
        assert_true(st.values[tag] == VB_STAT_UNSET);
    fixture_free(fx);
}

/* The stats document's examples, at device level: enable 2, change to 10, get the six stats with a
 * last-update, disable. Its QMP shapes and the bad property name are the QMP server's tests. */
static void test_stats_document_examples(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_LEGACY, true, VB_STATS_LEGACY);
    vb_guest_stats_t st;

    (void)state;
    fx->mc.now_ns = 1 * S;
    set_interval(fx, 2);
    run_until(fx, 3 * S);
    set_interval(fx, 10);
    run_until(fx, 13 * S);
    st = stats_of(fx);
    assert_int_equal(st.count, 6);
    assert_int_equal(st.last_update, wall_at(13 * S));
    assert_true(st.values[VB_STAT_TOTAL_MEMORY] == MEMORY);
    assert_true(st.values[VB_STAT_FREE_MEMORY] < MEMORY);
    set_interval(fx, 0);
    run_until(fx, 60 * S);
    assert_int_equal(stats_of(fx).last_update, wall_at(13 * S));
    assert_int_equal(requests, 3); /* at 1, 3 and 13 s */
    fixture_free(fx);
}

/* stop/cont: the virtual clock, and so the timer, stops; nothing is due while stopped. */
static void test_stop_pauses_the_timer(void **state)
{
    fixture_t *fx = *state;

    set_interval(fx, 10);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 1);
    run_until(fx, 4 * S);
    vb_device_set_running(fx->dev, false);
    vb_device_set_running(fx->dev, false); /* twice: still one pause */
    assert_false(vb_device_running(fx->dev));
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
    fx->mc.now_ns = 104 * S;
    vb_device_run(fx->dev);
    assert_int_equal(requests, 1);

    vb_device_set_running(fx->dev, true);
    vb_device_set_running(fx->dev, true);
    assert_true(vb_device_running(fx->dev));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 110 * S);
    run_until(fx, 109999 * MS);
    assert_int_equal(requests, 1);
    run_until(fx, 110 * S);
    assert_int_equal(requests, 2);
    assert_int_equal(last_request_ns, 10 * S); /* the guest's clock skipped the pause too */
    assert_int_equal(stats_of(fx).last_update, wall_at(110 * S)); /* wall clock did not */
    assert_true(vb_device_next_deadline_ns(fx->dev) == 120 * S);

    /* a second pause adds up */
    run_until(fx, 115 * S);
    vb_device_set_running(fx->dev, false);
    fx->mc.now_ns = 130 * S;
    vb_device_set_running(fx->dev, true);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 135 * S);
}

static void test_stop_delays_a_pending_answer(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_SLOW, true, VB_STATS_QEMU72);

    (void)state;
    set_interval(fx, 60);
    vb_device_run(fx->dev);
    fx->mc.now_ns = 1 * S;
    vb_device_set_running(fx->dev, false);
    fx->mc.now_ns = 31 * S;
    vb_device_run(fx->dev);
    assert_int_equal(stats_of(fx).last_update, 0);
    vb_device_set_running(fx->dev, true);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 32 * S);
    run_until(fx, 31999 * MS);
    assert_int_equal(stats_of(fx).last_update, 0);
    run_until(fx, 32 * S);
    assert_int_equal(stats_of(fx).last_update, wall_at(32 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 92 * S);
    fixture_free(fx);
}

/* Enabling polling while stopped: the first poll waits for cont. */
static void test_enable_while_stopped(void **state)
{
    fixture_t *fx = *state;

    fx->mc.now_ns = 5 * S;
    vb_device_set_running(fx->dev, false);
    fx->mc.now_ns = 8 * S;
    set_interval(fx, 2);
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 0);
    fx->mc.now_ns = 20 * S;
    vb_device_set_running(fx->dev, true);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 20 * S);
    vb_device_run(fx->dev);
    assert_int_equal(requests, 1);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 22 * S);
}

/* The deadline is in the clock's monotonic time, whenever the device was created. */
static void test_deadline_is_monotonic_time(void **state)
{
    vb_manual_clock_t mc;
    vb_device_t *dev;

    (void)state;
    vb_manual_clock_init(&mc, WALL_BASE);
    mc.now_ns = 1000 * S;
    dev = vb_device_new(&mc.clock, VB_STATS_QEMU72, vb_guest_new(VB_GUEST_LINUX, MEMORY, 3), MEMORY);
    assert_non_null(dev);
    requests = 0;
    mc.now_ns = 1001 * S;
    assert_int_equal(vb_device_set_polling_interval(dev, 4, NULL, 0), 0);
    assert_true(vb_device_next_deadline_ns(dev) == 1001 * S);
    vb_device_run(dev);
    assert_int_equal(last_request_ns, 1 * S); /* the guest sees virtual time since creation */
    assert_true(vb_device_next_deadline_ns(dev) == 1005 * S);
    vb_device_free(dev);
}

/* A run long after the deadline polls once, not once per missed interval: O(1) per call. */
static void test_late_run_polls_once(void **state)
{
    fixture_t *fx = *state;

    set_interval(fx, 1);
    vb_device_run(fx->dev);
    fx->mc.now_ns = 100000 * S;
    vb_device_run(fx->dev);
    assert_int_equal(requests, 2);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 100001 * S);
}

/* system_reset: the interval and the last stats are kept; the timer keeps its time. */
static void test_reset_keeps_interval_and_stats(void **state)
{
    fixture_t *fx = *state;
    vb_guest_stats_t before;

    set_interval(fx, 5);
    run_until(fx, 7 * S);
    before = stats_of(fx);
    vb_device_reset(fx->dev);
    assert_int_equal(vb_device_polling_interval(fx->dev), 5);
    vb_guest_stats_t after = stats_of(fx);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 10 * S);
    run_until(fx, 10 * S);
    assert_int_equal(requests, 3);
    assert_int_equal(stats_of(fx).last_update, wall_at(10 * S));
    /* the rebooted guest's counters start over from its boot */
    assert_true(stats_of(fx).values[VB_STAT_MINOR_FAULTS] <= before.values[VB_STAT_MINOR_FAULTS]);
}

/* A stuck guest answers 3 requests, then never: polling stops. After a reboot its driver answers
 * again, and the reset re-arms the timer the lost answer would have re-armed. */
static void test_stuck_guest_and_reset(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_STUCK, true, VB_STATS_QEMU72);

    (void)state;
    set_interval(fx, 1);
    run_until(fx, 100 * S);
    assert_int_equal(requests, 4);
    assert_int_equal(stats_of(fx).last_update, wall_at(2 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);

    vb_device_reset(fx->dev);
    assert_int_equal(vb_device_polling_interval(fx->dev), 1);
    assert_int_equal(stats_of(fx).last_update, wall_at(2 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 101 * S);
    run_until(fx, 200 * S);
    assert_int_equal(requests, 8);
    assert_int_equal(stats_of(fx).last_update, wall_at(103 * S));

    /* a reset with polling off starts nothing */
    set_interval(fx, 0);
    vb_device_reset(fx->dev);
    assert_true(vb_device_next_deadline_ns(fx->dev) == INT64_MAX);
    fixture_free(fx);
}

/* A slow guest's answer lost in a reset is not delivered afterwards. */
static void test_reset_drops_pending_answer(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_SLOW, true, VB_STATS_QEMU72);

    (void)state;
    set_interval(fx, 10);
    vb_device_run(fx->dev);
    fx->mc.now_ns = 1 * S;
    vb_device_reset(fx->dev);
    assert_true(vb_device_next_deadline_ns(fx->dev) == 11 * S);
    run_until(fx, 12 * S);
    assert_int_equal(stats_of(fx).last_update, 0);
    assert_int_equal(requests, 2);
    run_until(fx, 13 * S);
    assert_int_equal(stats_of(fx).last_update, wall_at(13 * S));
    fixture_free(fx);
}

/* The slow guest answers 2 s after each request; the timer counts from the answer. */
static void test_slow_guest_cadence(void **state)
{
    fixture_t *fx = fixture_new(VB_GUEST_SLOW, true, VB_STATS_QEMU72);

    (void)state;
    set_interval(fx, 3);
    run_until(fx, 1999 * MS);
    assert_int_equal(stats_of(fx).last_update, 0);
    run_until(fx, 2 * S);
    assert_int_equal(stats_of(fx).last_update, wall_at(2 * S));
    run_until(fx, 24 * S); /* requests at 0, 5, 10, 15, 20; answers at 2, 7, 12, 17, 22 */
    assert_int_equal(requests, 5);
    assert_int_equal(stats_of(fx).last_update, wall_at(22 * S));
    assert_true(vb_device_next_deadline_ns(fx->dev) == 25 * S);
    fixture_free(fx);
}

/* Between polls the stats do not change: the guest is only read when it answers. */
static void test_stats_change_only_on_answer(void **state)
{
    fixture_t *fx = *state;
    vb_guest_stats_t a, b;

    set_interval(fx, 30);
    run_until(fx, 1 * S);
    a = stats_of(fx);
    run_until(fx, 29 * S);
    b = stats_of(fx);
    assert_memory_equal(&a, &b, sizeof(a));
    run_until(fx, 30 * S);
    b = stats_of(fx);
    assert_true(b.values[VB_STAT_MINOR_FAULTS] > a.values[VB_STAT_MINOR_FAULTS]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_device, setup_linux, teardown),
        cmocka_unit_test(test_bad_stats_count_keeps_guest),
        cmocka_unit_test_setup_teardown(test_enable_polls_at_once_then_every_interval, setup_linux,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_change_interval_rearms_from_now, setup_linux, teardown),
        cmocka_unit_test_setup_teardown(test_same_value_does_nothing, setup_linux, teardown),
        cmocka_unit_test_setup_teardown(test_disable_keeps_last_stats, setup_linux, teardown),
        cmocka_unit_test_setup_teardown(test_reenable_polls_at_once, setup_linux, teardown),
        cmocka_unit_test_setup_teardown(test_bad_intervals, setup_linux, teardown),
        cmocka_unit_test(test_no_driver_profile_none),
        cmocka_unit_test(test_no_guest_at_all),
        cmocka_unit_test(test_timer_rearmed_only_by_an_answer),
        cmocka_unit_test(test_interval_change_while_request_outstanding),
        cmocka_unit_test(test_disable_while_request_outstanding),
        cmocka_unit_test(test_empty_buffer_updates_last_update),
        cmocka_unit_test_setup_teardown(test_buffer_replaces_all_stats, setup_linux, teardown),
        cmocka_unit_test(test_stats_count_6_10_16),
        cmocka_unit_test(test_unsupported_stats_are_unset),
        cmocka_unit_test(test_stats_document_examples),
        cmocka_unit_test_setup_teardown(test_stop_pauses_the_timer, setup_linux, teardown),
        cmocka_unit_test(test_stop_delays_a_pending_answer),
        cmocka_unit_test_setup_teardown(test_enable_while_stopped, setup_linux, teardown),
        cmocka_unit_test(test_deadline_is_monotonic_time),
        cmocka_unit_test_setup_teardown(test_late_run_polls_once, setup_linux, teardown),
        cmocka_unit_test_setup_teardown(test_reset_keeps_interval_and_stats, setup_linux, teardown),
        cmocka_unit_test(test_stuck_guest_and_reset),
        cmocka_unit_test(test_reset_drops_pending_answer),
        cmocka_unit_test(test_slow_guest_cadence),
        cmocka_unit_test_setup_teardown(test_stats_change_only_on_answer, setup_linux, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
