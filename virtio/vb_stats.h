/* The virtio-balloon statistics wire format and QEMU's names for each tag.
 *
 * The guest hands the device an array of packed entries { le16 tag; le64 val } (10 bytes each), as in
 * Linux's include/uapi/linux/virtio_balloon.h. QEMU names each tag in its guest-stats property. */
#ifndef VB_STATS_H
#define VB_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef enum vb_stat_tag {
    VB_STAT_SWAP_IN = 0,
    VB_STAT_SWAP_OUT = 1,
    VB_STAT_MAJOR_FAULTS = 2,
    VB_STAT_MINOR_FAULTS = 3,
    VB_STAT_FREE_MEMORY = 4,
    VB_STAT_TOTAL_MEMORY = 5,
    VB_STAT_AVAILABLE_MEMORY = 6,
    VB_STAT_DISK_CACHES = 7,
    VB_STAT_HTLB_PGALLOC = 8,
    VB_STAT_HTLB_PGFAIL = 9,
    VB_STAT_OOM_KILLS = 10,
    VB_STAT_ALLOC_STALLS = 11,
    VB_STAT_ASYNC_SCANS = 12,
    VB_STAT_DIRECT_SCANS = 13,
    VB_STAT_ASYNC_RECLAIMS = 14,
    VB_STAT_DIRECT_RECLAIMS = 15,
    VB_STAT_COUNT = 16
} vb_stat_tag_t;

/* How many stats a QEMU version exposes in guest-stats: the first 6, 10 or 16 tags. */
#define VB_STATS_LEGACY 6  /* QEMU before 2.x-era additions: the stats document's six */
#define VB_STATS_QEMU72 10 /* QEMU 7.2, the default */
#define VB_STATS_QEMU92 16 /* QEMU 9.2 and later */

/* A stat the guest did not send is printed by QEMU as UINT64_MAX. */
#define VB_STAT_UNSET UINT64_MAX

/* Size of one packed wire entry: le16 tag + le64 val. */
#define VB_STAT_WIRE_SIZE 10

/* QEMU's name for a tag ("stat-swap-in" ...), or NULL for a tag outside 0..15. */
const char *vb_stat_name(unsigned tag);

/* Encode one entry at out[0..9]. Never fails. */
void vb_stat_encode(uint8_t out[VB_STAT_WIRE_SIZE], uint16_t tag, uint64_t value);

/* Decode a buffer of entries into values[VB_STAT_COUNT], which the caller has filled (typically with
 * VB_STAT_UNSET). Unknown tags are ignored, a repeated tag overwrites the earlier value, and a trailing
 * partial entry is ignored. Returns the number of whole entries read. */
size_t vb_stats_decode(const uint8_t *buf, size_t len, uint64_t values[VB_STAT_COUNT]);

#endif
