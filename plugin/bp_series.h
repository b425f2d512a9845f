/* The series a domain's values go to in collectd, and the times they may carry there.
 *
 * collectd knows a value list by its identifier, each part cut at DATA_MAX_NAME_LEN - 1 (127) bytes,
 * and takes a value only when it is newer than the last one it took for that identifier ("uc_update:
 * Value too old" otherwise, for every value). So:
 *  - an identifier (host and plugin instance: plugin, type and type instance are the plugin's own)
 *    belongs to one domain at a time, the first one that claims it, across every <Plugin balloon>
 *    block. A domain whose identifier is another's (their names agree on the first 127 bytes, or
 *    once cleaned, or a format leaves the name out) is not dispatched until that one is gone: two
 *    VMs never write into one series;
 *  - a domain's stats carry its last-update when that is a time values can carry
 *    (bal_stats_time_usable), else the time of the read that first saw that last-update, and its
 *    stats age is then counted from that read;
 *  - values go out only with a time newer than the last one dispatched for their series: a
 *    last-update that went back is held back until it passes that one, and so are the values dated
 *    with the host's clock when it went back.
 * The claims are shared by every instance of the plugin and guarded by one lock; a claim itself is
 * used by the thread of its instance's read callback only. */
#ifndef BP_SERIES_H
#define BP_SERIES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/daemon/plugin.h"

#include "agent/bal_agent.h"
#include "plugin/bp_metrics.h"

typedef struct bp_series bp_series_t;

/* Who holds an identifier: the domain's name (cleaned, cut) and its instance's read callback. */
typedef struct bp_series_holder {
    char name[256]; /* past the 127 bytes of collectd's identifier, where the names differ */
    char owner[DATA_MAX_NAME_LEN];
} bp_series_holder_t;

/* Makes *series the claim of the domain called name, of the instance owner (its read callback's name,
 * told apart by address: one string per instance, alive as long as its claims), on the identifier
 * id. When *series already claims id, nothing happens; when it claims another (a field of the
 * formats changed, such as the uuid), that one is released first. Returns 0; or -EEXIST when another
 * domain holds id, with *series NULL and *holder filled; or -ENOMEM with *series NULL. Takes the lock
 * unless *series already claims id. */
int bp_series_claim(bp_series_t **series, const char *owner, const char *name, const bp_identity_t *id,
                    bp_series_holder_t *holder);

/* Gives the identifier up, for the next domain that claims it, which goes on from the times
 * dispatched so far (collectd's cache still has them) if it does within an hour. NULL is a no-op. */
void bp_series_release(bp_series_t *series);

/* Forgets every released identifier (at shutdown, once no claim is held). */
void bp_series_forget_all(void);

/* The claim's identifier. */
const bp_identity_t *bp_series_identity(const bp_series_t *series);

/* What to dispatch for one sample (bp_metrics_dispatch_sample). */
typedef struct bp_series_plan {
    bool stats;        /* the stats, at stats_time */
    cdtime_t stats_time;
    bool last_update;  /* and timestamp-last_update: only when last-update is itself a usable time */
    bool age;          /* duration-stats_age = age_s, at read_time */
    gauge_t age_s;
    bool read_values;  /* what carries the read's time: stats_age, polling_interval, state */
    cdtime_t read_time;
} bp_series_plan_t;

/* Changes bp_series_plan reports, each once per episode, for the caller to say. */
#define BP_SERIES_HELD_BACK 0x01u   /* the last-update went back: the stats are held back */
#define BP_SERIES_RESUMED 0x02u     /* ... and is newer than the last one dispatched again */
#define BP_SERIES_UNUSABLE 0x04u    /* the last-update is no time values can carry */
#define BP_SERIES_USABLE 0x08u      /* ... and is one again */
#define BP_SERIES_CLOCK_BACK 0x10u  /* the host's clock went back: the values dated with it are held */
#define BP_SERIES_CLOCK_AHEAD 0x20u /* ... and has passed the last of them again */

/* Decides what sample (read at now, the host's clock) dispatches, and records it as dispatched.
 * Fills *plan; returns the BP_SERIES_* changes. */
unsigned bp_series_plan(bp_series_t *series, const bal_sample_t *sample, cdtime_t now,
                        bp_series_plan_t *plan);

/* The time of the last stats dispatched, and of the last values dated with the host's clock; 0
 * before any. */
cdtime_t bp_series_last_stats_time(const bp_series_t *series);
cdtime_t bp_series_last_read_time(const bp_series_t *series);

/* Claims held now, over every instance (tests: none is left behind). */
size_t bp_series_count(void);

#endif
