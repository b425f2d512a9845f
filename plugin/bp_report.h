/* What the plugin says about its domains in collectd's log: each kind of message once per episode
 * (a domain that fails to be read: at once, then ever more rarely), and, when many domains say the
 * same in one read, one line that counts them and names a few instead of one line each.
 *
 * A read failure is said at once, then again after one interval, two, four... up to a day while
 * the domain keeps failing. The domain is said to be readable again only once it has gone without a
 * failure for as long as that wait, so a domain that fails every other read is not said to be back
 * at each good read, and its failures are said ever more rarely; the wait is forgotten after a day
 * without a failure. Not thread-safe: one report per instance, used by its read callback. */
#ifndef BP_REPORT_H
#define BP_REPORT_H

#include <stdbool.h>

#include "core/daemon/plugin.h"

#include "agent/bal_summary.h"
#include "plugin/bp_series.h"

typedef enum bp_report_kind {
    BP_REPORT_READ_FAILED,  /* error: the error */
    BP_REPORT_READ_LATE,    /* warning: why (the read's time was up before its answer) */
    BP_REPORT_READ_AGAIN,   /* notice */
    BP_REPORT_TAKEN,        /* error: whose identifier it is */
    BP_REPORT_FREED,        /* notice: the identifier is the domain's now */
    BP_REPORT_HELD_BACK,    /* warning: the last-update it went back to */
    BP_REPORT_RESUMED,      /* notice */
    BP_REPORT_UNUSABLE,     /* warning: the last-update and why it is no time */
    BP_REPORT_USABLE,       /* notice */
    BP_REPORT_CLOCK_BACK,   /* warning: the time the clock must pass */
    BP_REPORT_CLOCK_AHEAD,  /* notice */
    BP_REPORT_KINDS
} bp_report_kind_t;

typedef struct bp_report {
    bal_summary_t kinds[BP_REPORT_KINDS];
} bp_report_t;

void bp_report_init(bp_report_t *r);

/* One domain's message of this read: name and the detail the kind takes (NULL: none). */
void bp_report_add(bp_report_t *r, bp_report_kind_t kind, const char *name, const char *detail);

/* Adds what bp_series_plan found changed for the domain called name, whose last-update is lu. */
void bp_report_series(bp_report_t *r, const char *name, int64_t lu, const bp_series_t *series,
                      unsigned changes);

/* Adds that the domain called name is not dispatched, id being held by holder. */
void bp_report_taken(bp_report_t *r, const char *name, const bp_identity_t *id,
                     const bp_series_holder_t *holder);

/* Logs what was added since the last flush, kind by kind: up to BAL_SUMMARY_KEPT domains one line
 * each, more in one line. Then forgets it. */
void bp_report_flush(bp_report_t *r);

/* One domain's read failures over time. Zeroed: never failed. */
typedef struct bp_trouble {
    cdtime_t last_said;   /* when its last failure was said */
    cdtime_t last_failed; /* when it last failed */
    cdtime_t wait;        /* before the next failure is said, and how long it must go without one */
    bool failing;         /* said to fail, not yet said to be back */
} bp_trouble_t;

/* The domain failed at now; interval is the read's. True when that is to be said. */
bool bp_trouble_failed(bp_trouble_t *t, cdtime_t now, cdtime_t interval);

/* The domain was read at now. True when it is to be said to be back. */
bool bp_trouble_read(bp_trouble_t *t, cdtime_t now);

#endif
