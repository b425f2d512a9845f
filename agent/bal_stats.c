#include "config.h"

#include <string.h>

#include "agent/bal_stats.h"

static const char *const qmp_names[BAL_STAT_COUNT] = {
    [BAL_STAT_SWAP_IN] = "stat-swap-in",
    [BAL_STAT_SWAP_OUT] = "stat-swap-out",
    [BAL_STAT_MAJOR_FAULTS] = "stat-major-faults",
    [BAL_STAT_MINOR_FAULTS] = "stat-minor-faults",
    [BAL_STAT_FREE_MEMORY] = "stat-free-memory",
    [BAL_STAT_TOTAL_MEMORY] = "stat-total-memory",
    [BAL_STAT_AVAILABLE_MEMORY] = "stat-available-memory",
    [BAL_STAT_DISK_CACHES] = "stat-disk-caches",
    [BAL_STAT_HTLB_PGALLOC] = "stat-htlb-pgalloc",
    [BAL_STAT_HTLB_PGFAIL] = "stat-htlb-pgfail",
    [BAL_STAT_OOM_KILLS] = "stat-oom-kills",
    [BAL_STAT_ALLOC_STALLS] = "stat-alloc-stalls",
    [BAL_STAT_ASYNC_SCANS] = "stat-async-scans",
    [BAL_STAT_DIRECT_SCANS] = "stat-direct-scans",
    [BAL_STAT_ASYNC_RECLAIMS] = "stat-async-reclaims",
    [BAL_STAT_DIRECT_RECLAIMS] = "stat-direct-reclaims",
};

const char *bal_stat_qmp_name(bal_stat_t stat)
{
    if ((unsigned)stat >= BAL_STAT_COUNT)
        return NULL;
    return qmp_names[stat];
}

/* Called for each of a reply's 16 stats: every name starts with "stat-", so the first letter after it
 * is compared before the whole name, which leaves one or two strcmp calls instead of eight. */
int bal_stat_from_qmp_name(const char *name)
{
    static const char prefix[] = "stat-";
    const size_t plen = sizeof(prefix) - 1;

    if (strncmp(name, prefix, plen) != 0)
        return -1;
    for (int i = 0; i < BAL_STAT_COUNT; i++)
        if (qmp_names[i][plen] == name[plen] && strcmp(qmp_names[i] + plen, name + plen) == 0)
            return i;
    return -1;
}

bool bal_stats_time_usable(int64_t last_update, int64_t now_s)
{
    if (last_update <= 0 || last_update > BAL_STATS_TIME_MAX_S)
        return false;
    /* Subtracted from last_update, which is small, not added to now_s, which may be anything. */
    return now_s >= last_update - BAL_STATS_AHEAD_MAX_S;
}

void bal_stats_clear(bal_stats_t *stats)
{
    memset(stats, 0, sizeof(*stats));
}
