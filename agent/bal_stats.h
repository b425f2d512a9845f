/* Guest memory statistics as the agent hands them out, indexed by stat. */
#ifndef BAL_STATS_H
#define BAL_STATS_H

#include <stdbool.h>
#include <stdint.h>

/* In the virtio tag order, which is also the order of QEMU's guest-stats keys. */
typedef enum bal_stat {
    BAL_STAT_SWAP_IN,
    BAL_STAT_SWAP_OUT,
    BAL_STAT_MAJOR_FAULTS,
    BAL_STAT_MINOR_FAULTS,
    BAL_STAT_FREE_MEMORY,
    BAL_STAT_TOTAL_MEMORY,
    BAL_STAT_AVAILABLE_MEMORY,
    BAL_STAT_DISK_CACHES,
    BAL_STAT_HTLB_PGALLOC,
    BAL_STAT_HTLB_PGFAIL,
    BAL_STAT_OOM_KILLS,
    BAL_STAT_ALLOC_STALLS,
    BAL_STAT_ASYNC_SCANS,
    BAL_STAT_DIRECT_SCANS,
    BAL_STAT_ASYNC_RECLAIMS,
    BAL_STAT_DIRECT_RECLAIMS,
    BAL_STAT_COUNT
} bal_stat_t;

typedef struct bal_stat_value {
    bool set;       /* false: QEMU printed -1 / 18446744073709551615, a value no guest can report
                     * (above INT64_MAX), or the key was missing */
    uint64_t value; /* meaningful only when set */
} bal_stat_value_t;

typedef struct bal_stats {
    bal_stat_value_t stat[BAL_STAT_COUNT];
    unsigned known;      /* how many stat-* keys this QEMU printed: 6, 10, 16 (or what it sent) */
    int64_t last_update; /* host wall-clock seconds of the guest's last answer; 0: never answered */
} bal_stats_t;

/* QEMU sets last-update from the host's own clock, so a last-update ahead of the host's clock comes
 * from another host's clock (a remote libvirt URI) or a faulty peer: up to this many seconds ahead it
 * is taken as clock skew, beyond it is no time a value can carry. */
#define BAL_STATS_AHEAD_MAX_S 60
/* The last second collectd's cdtime_t (64 bits of 2^-30 s) can hold: 2^34 - 1, in the year 2514. */
#define BAL_STATS_TIME_MAX_S ((INT64_C(1) << 34) - 1)

/* True when last_update (seconds since the epoch, > 0) is a time that values can carry: at most
 * BAL_STATS_TIME_MAX_S, and at most BAL_STATS_AHEAD_MAX_S ahead of now_s, the host's clock. The
 * collectd plugin dates values otherwise (collectd-balloon(5)); balloonctl shows no age for it. */
bool bal_stats_time_usable(int64_t last_update, int64_t now_s);

/* QEMU's key for a stat ("stat-swap-in"...), or NULL outside 0..BAL_STAT_COUNT-1. */
const char *bal_stat_qmp_name(bal_stat_t stat);
/* The stat for a QEMU key, or -1 for a key we do not know. */
int bal_stat_from_qmp_name(const char *name);
void bal_stats_clear(bal_stats_t *stats);

#endif
