/* What the agent hands out per domain: its state, one sample per read cycle, and the events that
 * come with it. Plain types below the agent's API (bal_agent.h), shared with the per-domain poller
 * (bal_poller.h), which fills them, and with the agent's callers, which read them. */
#ifndef BAL_SAMPLE_H
#define BAL_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/bal_stats.h"

typedef enum bal_severity {
    BAL_SEVERITY_FAILURE,
    BAL_SEVERITY_WARNING,
    BAL_SEVERITY_OKAY,
} bal_severity_t;

typedef enum bal_event_kind {
    BAL_EVENT_NEVER_ANSWERED,    /* polling on, the guest has never answered (no balloon driver) */
    BAL_EVENT_STALE_REARMED,     /* last-update stopped advancing; the timer was re-armed */
    BAL_EVENT_INTERVAL_RESET,    /* someone changed the interval behind our back; set back */
    BAL_EVENT_INTERVAL_RESTORED, /* on shutdown, the interval found at first sight was put back */
    BAL_EVENT_NO_BALLOON,        /* the domain has no balloon device; skipped from now on */
    BAL_EVENT_RECOVERED,         /* stats advance again after never-answered or stale */
} bal_event_kind_t;

typedef struct bal_event {
    bal_event_kind_t kind;
    bal_severity_t severity;
    const char *domain;  /* name */
    const char *uuid;    /* "" when unknown */
    const char *message; /* a whole sentence naming the domain */
    void **user;         /* the domain's slot for its caller: as in bal_sample_t */
} bal_event_t;

typedef enum bal_domain_state {
    BAL_STATE_OK,             /* stats advancing */
    BAL_STATE_NEVER_ANSWERED, /* last-update is 0 */
    BAL_STATE_STALE,          /* last-update stopped advancing */
    BAL_STATE_NO_BALLOON,     /* no balloon device */
    BAL_STATE_FAILED,         /* could not be read this cycle; see error */
    BAL_STATE_LATE,           /* no answer within read_budget_ms (its command is still out, or its
                                 turn did not come); see error */
} bal_domain_state_t;

const char *bal_domain_state_name(bal_domain_state_t state); /* "ok", "never answered", ... */

typedef struct bal_sample {
    const char *name;
    const char *uuid;          /* "" when unknown */
    const char *balloon_path;  /* NULL when not known */
    bal_domain_state_t state;
    bool has_stats;            /* stats were read and last_update > 0 */
    bool fresh;                /* last_update advanced since this domain's previous sample (or first) */
    bal_stats_t stats;
    int64_t polling_interval_s; /* what QEMU has, as far as we know; -1 unknown */
    const char *error;          /* BAL_STATE_FAILED, BAL_STATE_LATE: a whole sentence; else NULL */
    /* The domain's slot for the agent's caller, the same in each of its samples and events for as long
     * as it stays selected: NULL at first, the caller stores what it keeps per domain there. When the
     * domain leaves the selection, the agent hands what it holds to the config's release_user (after
     * the last callback of that read), and to it again for every domain on bal_agent_free. NULL where
     * no agent keeps the domain (the poller's own results). */
    void **user;
} bal_sample_t;

#endif
