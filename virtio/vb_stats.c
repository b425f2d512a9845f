#include "config.h"

#include "virtio/vb_stats.h"

static const char *const stat_names[VB_STAT_COUNT] = {
    [VB_STAT_SWAP_IN] = "stat-swap-in",
    [VB_STAT_SWAP_OUT] = "stat-swap-out",
    [VB_STAT_MAJOR_FAULTS] = "stat-major-faults",
    [VB_STAT_MINOR_FAULTS] = "stat-minor-faults",
    [VB_STAT_FREE_MEMORY] = "stat-free-memory",
    [VB_STAT_TOTAL_MEMORY] = "stat-total-memory",
    [VB_STAT_AVAILABLE_MEMORY] = "stat-available-memory",
    [VB_STAT_DISK_CACHES] = "stat-disk-caches",
    [VB_STAT_HTLB_PGALLOC] = "stat-htlb-pgalloc",
    [VB_STAT_HTLB_PGFAIL] = "stat-htlb-pgfail",
    [VB_STAT_OOM_KILLS] = "stat-oom-kills",
    [VB_STAT_ALLOC_STALLS] = "stat-alloc-stalls",
    [VB_STAT_ASYNC_SCANS] = "stat-async-scans",
    [VB_STAT_DIRECT_SCANS] = "stat-direct-scans",
    [VB_STAT_ASYNC_RECLAIMS] = "stat-async-reclaims",
    [VB_STAT_DIRECT_RECLAIMS] = "stat-direct-reclaims",
};

const char *vb_stat_name(unsigned tag)
{
    return tag < VB_STAT_COUNT ? stat_names[tag] : NULL;
}

void vb_stat_encode(uint8_t out[VB_STAT_WIRE_SIZE], uint16_t tag, uint64_t value)
{
    out[0] = (uint8_t)(tag & 0xff);
    out[1] = (uint8_t)(tag >> 8);
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(value >> (8 * i));
}

size_t vb_stats_decode(const uint8_t *buf, size_t len, uint64_t values[VB_STAT_COUNT])
{
    size_t entries = len / VB_STAT_WIRE_SIZE; /* a trailing partial entry is ignored */

    for (size_t e = 0; e < entries; e++) {
        const uint8_t *p = buf + e * VB_STAT_WIRE_SIZE;
        uint16_t tag = (uint16_t)(p[0] | (p[1] << 8));
        uint64_t value = 0;

        for (int i = 0; i < 8; i++)
            value |= (uint64_t)p[2 + i] << (8 * i);
        if (tag < VB_STAT_COUNT) /* unknown tags are ignored; a repeat overwrites */
            values[tag] = value;
    }
    return entries;
}
