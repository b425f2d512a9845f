/* QEMU's QMP replies, as in-process fakes that play QEMU over the device model (vb_device) send them
 * back to the agent: the whole reply object, formatted as QEMU 7.2 prints it. Every function returns a
 * malloc'ed string the caller frees, and aborts on ENOMEM (tests without cmocka use these too).
 *
 * The oracle is independent of the code it checks: stat names come from the device model's table
 * (virtio/vb_stats.h, held to QEMU's by tests/qmp_transcript.sh), never from the agent's. */
#ifndef TT_QEMU_REPLY_H
#define TT_QEMU_REPLY_H

#include "virtio/vb_device.h"

/* The reply format makes, printf-style: {"return": ...} or {"error": ...} spelled out by the caller. */
char *tt_qemu_reply(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* QEMU's answer to a qom-get of guest-stats: every stat dev reports, by QEMU's name (vb_stat_name),
 * and last-update. */
char *tt_qemu_reply_stats(const vb_device_t *dev);

/* QEMU's DeviceNotFound error for path ("Device '<path>' not found"). */
char *tt_qemu_reply_not_found(const char *path);

#endif
