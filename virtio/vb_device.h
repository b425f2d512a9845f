/* The host side of QEMU 7.2's virtio-balloon stats device: the guest-stats and
 * guest-stats-polling-interval properties, the polling timer on a virtual clock that pauses while the
 * VM is stopped, and the stats buffer the guest returns.
 *
 * Time is pulled from the injected clock; nothing happens between calls. Call vb_device_run(dev) after
 * any clock change, and ask vb_device_next_deadline_ns() when to call it again. Not thread-safe: one
 * owner (balloon-sim runs all devices on one event-loop thread). */
#ifndef VB_DEVICE_H
#define VB_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/vb_clock.h"
#include "virtio/vb_guest.h"
#include "virtio/vb_stats.h"

typedef struct vb_device vb_device_t;

/* stats_count is VB_STATS_LEGACY, VB_STATS_QEMU72 or VB_STATS_QEMU92: how many stats guest-stats
 * prints. guest may be NULL (no driver at all); the device takes ownership of it on success (on
 * failure the caller still owns it). memory_bytes is the VM's RAM, reported by query-balloon as
 * "actual". Returns NULL on ENOMEM or a bad stats_count (errno EINVAL).
 * The clock is borrowed and must outlive the device. Its virtual clock starts at 0 now. */
vb_device_t *vb_device_new(const vb_clock_t *clock, unsigned stats_count, vb_guest_t *guest,
                           uint64_t memory_bytes);
void vb_device_free(vb_device_t *dev);

/* guest-stats-polling-interval, as QEMU validates it. Returns 0, or -EINVAL with QEMU's exact text in
 * errbuf ("timer value must be greater than zero", "timer value is too big"). Setting the value it
 * already has does nothing; 0 stops the timer and keeps the last stats; going from 0 to N polls at
 * once; changing N re-arms the timer N seconds from now. */
int vb_device_set_polling_interval(vb_device_t *dev, int64_t seconds, char *errbuf, size_t errlen);
int64_t vb_device_polling_interval(const vb_device_t *dev);

/* guest-stats: values[i] is VB_STAT_UNSET for a stat the guest did not send; only the first
 * stats_count entries are meaningful. last_update is 0 until the guest first answers. */
typedef struct vb_guest_stats {
    uint64_t values[VB_STAT_COUNT];
    unsigned count;
    int64_t last_update;
} vb_guest_stats_t;
void vb_device_get_stats(const vb_device_t *dev, vb_guest_stats_t *out);

/* The guest returned a stats buffer: all stats reset to unset, entries applied, last-update = host
 * wall-clock seconds (also for an empty buffer), and the timer re-armed if polling is on. */
void vb_device_receive_buffer(vb_device_t *dev, const uint8_t *buf, size_t len);

/* Fire everything that is due at the clock's current time: polls, guest answers. A call long after a
 * deadline polls once (from now), not once per missed interval. The guest is asked and filled with the
 * device's virtual time (ns since vb_device_new, pauses excluded). */
void vb_device_run(vb_device_t *dev);
/* Monotonic ns at which vb_device_run has something to do, or INT64_MAX if nothing is pending. */
int64_t vb_device_next_deadline_ns(const vb_device_t *dev);

/* The VM's run state (QMP stop / cont): while stopped the virtual clock, and so the polling timer and
 * pending guest answers, do not advance. A new device is running. */
void vb_device_set_running(vb_device_t *dev, bool running);
bool vb_device_running(const vb_device_t *dev);

/* system_reset: the guest reboots; the interval and last stats are kept, as in QEMU. A request the
 * guest still held is lost; if polling is on the timer is then re-armed one interval from now, standing
 * in for the first buffer the rebooted guest's driver returns. */
void vb_device_reset(vb_device_t *dev);

/* query-balloon's "actual", in bytes. */
uint64_t vb_device_actual(const vb_device_t *dev);
unsigned vb_device_stats_count(const vb_device_t *dev);

#endif
