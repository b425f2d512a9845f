/* The per-domain polling state machine. Pure: it sends nothing itself. It says which QMP command to
 * send next (bal_poller_next), is told what came back (bal_poller_feed), and reads the injected clock;
 * so it is unit-tested without a transport. The agent runs one poller per domain inside one pool job.
 *
 * What it does for a domain:
 *  - finds the balloon: the configured QOM path, else /machine/peripheral/balloon0 (probed with a
 *    qom-get of the interval, which also reads it), else the first child<virtio-balloon-*> that qom-list
 *    shows under /machine/peripheral, then /machine/peripheral-anon. None: NO_BALLOON, one event, and no
 *    command until the domain is a new instance.
 *  - on first sight of an instance, remembers the interval it finds (the original, for restore) and,
 *    unless observe_only, sets the configured one; every verify_every cycles reads it again and sets it
 *    back (one INTERVAL_RESET event) when something else changed it.
 *  - each cycle reads guest-stats. The state comes from that one sample: NEVER_ANSWERED when
 *    last-update is 0; STALE when last-update is older than stale_after intervals on the wall clock (or
 *    polling is off); else OK.
 *  - STALE, outside the grace of stale_after intervals after we (re)armed the timer: re-arms it (QEMU
 *    ignores a set to the value it has, so 0 then the interval) with one STALE_REARMED event. While it
 *    stays stale nothing more is sent: once per stale episode. NEVER_ANSWERED: one event once polling has been on for
 *    stale_after intervals; no re-arm (QEMU polls again as soon as the driver answers). When last-update
 *    advances after either event: one RECOVERED event.
 *  - on shutdown (bal_poller_begin_restore), puts back the original interval if it changed it.
 * All of it once per instance: a new instance (restarted QEMU) starts over.
 *
 * Not thread-safe: one poller is driven by one thread at a time. */
#ifndef BAL_POLLER_H
#define BAL_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/bal_clock.h"
#include "agent/bal_error.h"
#include "agent/bal_limits.h"
#include "agent/bal_sample.h"
#include "agent/bal_stats.h"

#define BAL_POLLER_DEFAULT_PATH "/machine/peripheral/balloon0"
#define BAL_POLLER_PERIPHERAL "/machine/peripheral"
#define BAL_POLLER_PERIPHERAL_ANON "/machine/peripheral-anon"

typedef struct bal_poller_config {
    const char *qom_path;       /* NULL: find it; else used as is (checked by the caller); copied */
    int64_t polling_interval_s; /* the interval to keep; 0 keeps polling off */
    bool observe_only;          /* never sets anything */
    unsigned stale_after;       /* 0: BAL_LIMIT_STALE_AFTER_DEFAULT */
    unsigned verify_every;      /* 0: BAL_LIMIT_VERIFY_EVERY_DEFAULT */
    const bal_clock_t *clock;   /* NULL: bal_clock_system(); borrowed */
} bal_poller_config_t;

typedef enum bal_poller_op {
    BAL_POLLER_GET_INTERVAL, /* qom-get path guest-stats-polling-interval */
    BAL_POLLER_SET_INTERVAL, /* qom-set path guest-stats-polling-interval value */
    BAL_POLLER_GET_STATS,    /* qom-get path guest-stats */
    BAL_POLLER_LIST,         /* qom-list path, looking for a child<virtio-balloon-*> */
} bal_poller_op_t;

typedef struct bal_poller_step {
    bal_poller_op_t op;
    const char *path; /* owned by the poller, valid until its next call */
    int64_t value;    /* SET_INTERVAL */
} bal_poller_step_t;

typedef enum bal_poller_outcome {
    BAL_POLLER_ANSWERED,  /* QEMU answered "return"; the field for the step's op is filled */
    BAL_POLLER_QMP_ERROR, /* QEMU answered "error"; error has its class and desc */
    BAL_POLLER_FAILED,    /* no usable answer (transport, timeout, garbage); error says why */
} bal_poller_outcome_t;

typedef struct bal_poller_reply {
    bal_poller_outcome_t outcome;
    const bal_error_t *error;  /* QMP_ERROR, FAILED */
    int64_t interval;          /* GET_INTERVAL */
    const char *found_path;    /* LIST: the balloon's path, NULL when the list holds none */
    const bal_stats_t *stats;  /* GET_STATS */
} bal_poller_reply_t;

typedef struct bal_poller_event {
    bal_event_kind_t kind;
    bal_severity_t severity;
    char message[384]; /* a whole sentence naming the domain */
} bal_poller_event_t;

typedef struct bal_poller bal_poller_t;

/* A poller for the domain called name (copied, for messages). Returns NULL when out of memory. */
bal_poller_t *bal_poller_new(const bal_poller_config_t *config, const char *name);
void bal_poller_free(bal_poller_t *poller); /* NULL is a no-op */

/* Starts a read cycle of the domain as it is now: instance is the transport's instance id; a value
 * other than the previous one means a new QEMU, and everything is found and set again. Clears the
 * previous cycle's result and events. */
void bal_poller_begin_cycle(bal_poller_t *poller, uint64_t instance);
/* Starts the shutdown sequence: the only step, if any, puts the original interval back. */
void bal_poller_begin_restore(bal_poller_t *poller);

/* The next command to send, in *step; false when the cycle is over (done or failed). After true, the
 * caller must bal_poller_feed the outcome before calling again. */
bool bal_poller_next(bal_poller_t *poller, bal_poller_step_t *step);
void bal_poller_feed(bal_poller_t *poller, const bal_poller_reply_t *reply);

/* The cycle's result: fills everything in *out except name and uuid, with pointers into the poller
 * valid until its next begin_* call. */
void bal_poller_result(const bal_poller_t *poller, bal_sample_t *out);
/* The negative errno that failed this cycle (FAILED outcome), or 0. */
int bal_poller_failure(const bal_poller_t *poller);
/* The events this cycle produced, in order, valid until the next begin_* call. Returns how many. */
size_t bal_poller_events(const bal_poller_t *poller, const bal_poller_event_t **events);

#endif
