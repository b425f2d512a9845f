/* The host side of QEMU 7.2's virtio-balloon stats device (hw/virtio/virtio-balloon.c).
 *
 * QEMU's device holds the buffer the guest last returned (stats_vq_elem). When the polling timer
 * fires it hands that buffer back to the guest, which is the request for new stats, and does not
 * re-arm the timer: only virtio_balloon_receive_stats() does, when the guest returns a buffer. If
 * the timer fires while the device holds no buffer (the request is still with the guest), QEMU just
 * reschedules it one interval later without asking again. This model keeps the same two states: the
 * timer, and whether a request is outstanding, plus when the guest will answer it.
 *
 * All deadlines are kept on the device's virtual clock (QEMU_CLOCK_VIRTUAL): nanoseconds since the
 * device was created, not counting the time the VM spent stopped. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "virtio/vb_device.h"

#define NEVER INT64_MAX /* no deadline */

struct vb_device {
    const vb_clock_t *clock;
    vb_guest_t *guest;
    uint64_t memory_bytes;
    uint64_t stats[VB_STAT_COUNT];
    int64_t last_update;   /* host wall-clock seconds, 0 until the guest first answers */
    int64_t interval_s;    /* 0: polling off */
    int64_t origin_ns;     /* monotonic time of virtual time 0, moved forward by every pause */
    int64_t stopped_at_ns; /* monotonic time of the stop, while !running */
    int64_t timer_ns;      /* virtual time the polling timer fires, or NEVER */
    int64_t answer_ns;     /* virtual time the guest answers the outstanding request, or NEVER */
    unsigned stats_count;
    bool outstanding; /* a request is with the guest: the device holds no buffer to hand back */
    bool running;
};

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t virtual_now(const vb_device_t *dev)
{
    int64_t mono = dev->running ? dev->clock->monotonic_ns(dev->clock->opaque) : dev->stopped_at_ns;
    return mono - dev->origin_ns;
}

static void timer_arm(vb_device_t *dev, int64_t secs)
{
    dev->timer_ns = sat_add(virtual_now(dev), secs * VB_NS_PER_S);
}

static void reset_stats(vb_device_t *dev)
{
    for (unsigned i = 0; i < VB_STAT_COUNT; i++)
        dev->stats[i] = VB_STAT_UNSET;
}

vb_device_t *vb_device_new(const vb_clock_t *clock, unsigned stats_count, vb_guest_t *guest,
                           uint64_t memory_bytes)
{
    vb_device_t *dev;

    if (stats_count != VB_STATS_LEGACY && stats_count != VB_STATS_QEMU72 &&
        stats_count != VB_STATS_QEMU92) {
        errno = EINVAL;
        return NULL;
    }
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    dev->clock = clock;
    dev->guest = guest;
    dev->memory_bytes = memory_bytes;
    dev->stats_count = stats_count;
    reset_stats(dev);
    dev->origin_ns = clock->monotonic_ns(clock->opaque);
    dev->timer_ns = NEVER;
    dev->answer_ns = NEVER;
    dev->running = true;
    return dev;
}

void vb_device_free(vb_device_t *dev)
{
    if (!dev)
        return;
    vb_guest_free(dev->guest);
    free(dev);
}

int vb_device_set_polling_interval(vb_device_t *dev, int64_t seconds, char *errbuf, size_t errlen)
{
    const char *msg = NULL;

    /* The same checks, in the same order, as balloon_stats_set_poll_interval(). */
    if (seconds < 0)
        msg = "timer value must be greater than zero";
    else if (seconds > (int64_t)UINT32_MAX)
        msg = "timer value is too big";
    if (msg) {
        if (errbuf && errlen > 0)
            snprintf(errbuf, errlen, "%s", msg);
        return -EINVAL;
    }
    if (seconds == dev->interval_s)
        return 0;
    if (seconds == 0) {
        /* The timer is destroyed; an outstanding request may still be answered, and its stats
         * are taken, but nothing re-arms the timer. */
        dev->interval_s = 0;
        dev->timer_ns = NEVER;
        return 0;
    }
    /* From N to M the timer is moved to M seconds from now; from 0 it fires at once. Either way an
     * outstanding request is not sent again: the timer will find no buffer and reschedule. */
    timer_arm(dev, dev->interval_s > 0 ? seconds : 0);
    dev->interval_s = seconds;
    return 0;
}

int64_t vb_device_polling_interval(const vb_device_t *dev)
{
    return dev->interval_s;
}

void vb_device_get_stats(const vb_device_t *dev, vb_guest_stats_t *out)
{
    /* Tags this QEMU version does not know are not shown, as `tag < VIRTIO_BALLOON_S_NR` drops them. */
    for (unsigned i = 0; i < VB_STAT_COUNT; i++)
        out->values[i] = i < dev->stats_count ? dev->stats[i] : VB_STAT_UNSET;
    out->count = dev->stats_count;
    out->last_update = dev->last_update;
}

void vb_device_receive_buffer(vb_device_t *dev, const uint8_t *buf, size_t len)
{
    dev->outstanding = false;
    dev->answer_ns = NEVER;
    /* QEMU resets every stat first, so a guest that now sends fewer stats leaves no stale ones. */
    reset_stats(dev);
    vb_stats_decode(buf, len, dev->stats);
    dev->last_update = dev->clock->wall_s(dev->clock->opaque);
    if (dev->interval_s > 0)
        timer_arm(dev, dev->interval_s);
}

/* The polling timer fired (balloon_stats_poll_cb). */
static void timer_fire(vb_device_t *dev, int64_t now)
{
    int64_t delay;

    dev->timer_ns = NEVER;
    if (dev->outstanding) {
        /* No buffer to hand back: QEMU reschedules and asks nothing. */
        timer_arm(dev, dev->interval_s);
        return;
    }
    dev->outstanding = true;
    delay = dev->guest ? vb_guest_on_request(dev->guest, now) : -1;
    dev->answer_ns = delay < 0 ? NEVER : sat_add(now, delay);
}

static void guest_answer(vb_device_t *dev, int64_t now)
{
    uint8_t buf[VB_STAT_COUNT * VB_STAT_WIRE_SIZE];
    size_t len = vb_guest_fill_buffer(dev->guest, now, buf, sizeof(buf));

    vb_device_receive_buffer(dev, buf, len);
}

void vb_device_run(vb_device_t *dev)
{
    if (!dev->running)
        return;
    /* Each step clears or pushes its deadline past now (the interval is at least 1 s), so this ends
     * after at most a timer, an answer and a rescheduled timer: O(1) however late the call is. */
    for (;;) {
        int64_t now = virtual_now(dev);
        bool answer_due = dev->answer_ns <= now;
        bool timer_due = dev->timer_ns <= now;

        if (answer_due && (!timer_due || dev->answer_ns <= dev->timer_ns))
            guest_answer(dev, now);
        else if (timer_due)
            timer_fire(dev, now);
        else
            break;
    }
}

int64_t vb_device_next_deadline_ns(const vb_device_t *dev)
{
    int64_t next = dev->timer_ns < dev->answer_ns ? dev->timer_ns : dev->answer_ns;

    if (!dev->running || next == NEVER)
        return INT64_MAX;
    return sat_add(next, dev->origin_ns);
}

void vb_device_set_running(vb_device_t *dev, bool running)
{
    int64_t mono;

    if (running == dev->running)
        return;
    mono = dev->clock->monotonic_ns(dev->clock->opaque);
    if (running)
        dev->origin_ns += mono - dev->stopped_at_ns; /* virtual time skips the pause */
    else
        dev->stopped_at_ns = mono;
    dev->running = running;
}

bool vb_device_running(const vb_device_t *dev)
{
    return dev->running;
}

void vb_device_reset(vb_device_t *dev)
{
    /* The rebooted guest forgets the request it held. In QEMU its driver, once loaded, returns a
     * fresh buffer and that re-arms the timer; the model re-arms it one interval from now, so
     * polling goes on after a reboot instead of waiting forever for the lost answer. */
    if (dev->outstanding) {
        dev->outstanding = false;
        dev->answer_ns = NEVER;
        if (dev->interval_s > 0 && dev->timer_ns == NEVER)
            timer_arm(dev, dev->interval_s);
    }
    if (dev->guest)
        vb_guest_reset(dev->guest);
}

uint64_t vb_device_actual(const vb_device_t *dev)
{
    return dev->memory_bytes;
}

unsigned vb_device_stats_count(const vb_device_t *dev)
{
    return dev->stats_count;
}
