#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_poller.h"

/* At most a handful of events per cycle (e.g. INTERVAL_RESET, RECOVERED); room to spare. */
#define MAX_EVENTS 6
/* A failure's sentence when there was no memory to keep the real one. */
#define NO_MEMORY_ERROR "A domain could not be read, and there was no memory left to say why."

typedef enum path_state {
    PATH_UNKNOWN,         /* probe the configured or default path next */
    PATH_LIST_PERIPHERAL, /* search /machine/peripheral next */
    PATH_LIST_ANON,       /* search /machine/peripheral-anon next */
    PATH_FOUND,
    PATH_NONE,            /* no balloon in this instance */
} path_state_t;

/* The command in flight, i.e. what the next feed answers. */
typedef enum pending {
    PENDING_NONE,
    PENDING_PROBE,
    PENDING_LIST,
    PENDING_ORIGINAL,
    PENDING_VERIFY,
    PENDING_SET_TARGET,
    PENDING_STATS,
    PENDING_REARM_OFF,
    PENDING_REARM_ON,
    PENDING_RESTORE,
} pending_t;

typedef enum poll_mode { MODE_IDLE, MODE_CYCLE, MODE_RESTORE } poll_mode_t;

/* A re-arm is two sets, since QEMU ignores a set to the value it has: 0, then the interval. */
typedef enum rearm_step {
    REARM_NONE, /* no re-arm under way */
    REARM_OFF,  /* set 0 next */
    REARM_ON,   /* set the interval next */
} rearm_step_t;

struct bal_poller {
    /* configuration */
    char *name;
    char *cfg_path;
    int64_t target;
    bool observe_only;
    unsigned stale_after;
    unsigned verify_every;
    const bal_clock_t *clock;

    /* per instance */
    bool have_instance;
    uint64_t instance;
    path_state_t path_state;
    char *path;              /* PATH_FOUND */
    bool have_original;
    int64_t original;
    int64_t qemu_interval;   /* QEMU's interval as far as we know; -1 unknown */
    bool changed_by_us;
    int64_t armed_ms;        /* monotonic time polling was last (re)armed or seen on; -1 off */
    int64_t grace_until_ms;  /* no re-arm before this: we just (re)armed the timer */
    bool have_prev;
    int64_t prev_last_update;
    int64_t prev_changed_ms; /* monotonic time at which last-update last changed (or was first seen) */
    unsigned cycles_since_verify;
    bool stale_reported;
    bool never_reported;

    /* per cycle */
    poll_mode_t mode;
    pending_t pending;
    bool failed;
    int failure;
    char *error;             /* failed: a whole sentence (owned), or NULL when there was no memory for one */
    bool verify_due;
    bool announce_reset;
    int64_t reset_from;
    bool stats_done;
    bal_stats_t stats;
    bal_domain_state_t state;
    bool fresh;
    rearm_step_t rearm;      /* what a re-arm sends next */
    bool announce_rearm;
    bool restore_done;
    bal_poller_event_t *events; /* MAX_EVENTS, allocated by the first event of a cycle: events are rare,
                                   and thousands of pollers that each held room for them would weigh */
    size_t n_events;
};

static int64_t now_ms(const bal_poller_t *p)
{
    return bal_clock_monotonic_ms(p->clock);
}

static int64_t now_wall(const bal_poller_t *p)
{
    return bal_clock_wall_s(p->clock);
}

/* Far beyond any real window, and small enough to add to a clock in ms without overflow. */
#define MAX_WINDOW_S (INT64_C(1) << 40)

/* stale_after intervals, saturating: the interval may be as large as QEMU's 2^32 - 1. */
static int64_t window_s(const bal_poller_t *p, int64_t interval)
{
    if (interval <= 0)
        return 0;
    if (interval >= MAX_WINDOW_S / p->stale_after)
        return MAX_WINDOW_S;
    return interval * p->stale_after;
}

/* The interval that decides staleness: the one we keep, or when only observing, the one QEMU has. */
static int64_t effective_interval(const bal_poller_t *p)
{
    return p->observe_only ? p->qemu_interval : p->target;
}

static void add_event(bal_poller_t *p, bal_event_kind_t kind, bal_severity_t severity, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static void add_event(bal_poller_t *p, bal_event_kind_t kind, bal_severity_t severity, const char *fmt,
                      ...)
{
    bal_poller_event_t *ev;
    va_list ap;

    if (p->n_events == MAX_EVENTS)
        return;
    if (p->events == NULL && (p->events = malloc(MAX_EVENTS * sizeof(*p->events))) == NULL)
        return; /* out of memory: the event is lost, the cycle goes on */
    ev = &p->events[p->n_events++];
    ev->kind = kind;
    ev->severity = severity;
    va_start(ap, fmt);
    vsnprintf(ev->message, sizeof(ev->message), fmt, ap);
    va_end(ap);
}

static void fail(bal_poller_t *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(bal_poller_t *p, int code, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    p->failed = true;
    p->failure = code < 0 ? code : -EIO;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    free(p->error);
    p->error = strdup(message);
}

static const char *error_text(const bal_poller_reply_t *reply)
{
    if (reply->error == NULL || reply->error->message[0] == '\0')
        return "no detail";
    return reply->error->message;
}

static int error_code(const bal_poller_reply_t *reply, int fallback)
{
    if (reply->error == NULL || reply->error->code >= 0)
        return fallback;
    return reply->error->code;
}

static bool qmp_class_is(const bal_poller_reply_t *reply, const char *cls)
{
    return reply->error != NULL && strcmp(reply->error->qmp_class, cls) == 0;
}

static void reset_instance(bal_poller_t *p)
{
    free(p->path);
    p->path = NULL;
    p->path_state = PATH_UNKNOWN;
    p->have_original = false;
    p->original = -1;
    p->qemu_interval = -1;
    p->changed_by_us = false;
    p->armed_ms = -1;
    p->grace_until_ms = 0;
    p->have_prev = false;
    p->prev_last_update = 0;
    p->prev_changed_ms = 0;
    p->cycles_since_verify = 0;
    p->stale_reported = false;
    p->never_reported = false;
}

bal_poller_t *bal_poller_new(const bal_poller_config_t *config, const char *name)
{
    bal_poller_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->name = strdup(name);
    if (p->name == NULL)
        goto fail;
    if (config->qom_path != NULL) {
        p->cfg_path = strdup(config->qom_path);
        if (p->cfg_path == NULL)
            goto fail;
    }
    p->target = config->polling_interval_s;
    p->observe_only = config->observe_only;
    p->stale_after = config->stale_after != 0 ? config->stale_after : BAL_LIMIT_STALE_AFTER_DEFAULT;
    p->verify_every = config->verify_every != 0 ? config->verify_every : BAL_LIMIT_VERIFY_EVERY_DEFAULT;
    p->clock = config->clock != NULL ? config->clock : bal_clock_system();
    reset_instance(p);
    return p;
fail:
    bal_poller_free(p);
    return NULL;
}

void bal_poller_free(bal_poller_t *p)
{
    if (p == NULL)
        return;
    free(p->events);
    free(p->error);
    free(p->path);
    free(p->cfg_path);
    free(p->name);
    free(p);
}

static void begin(bal_poller_t *p, poll_mode_t mode)
{
    p->mode = mode;
    p->pending = PENDING_NONE;
    p->failed = false;
    p->failure = 0;
    free(p->error);
    p->error = NULL;
    p->verify_due = false;
    p->announce_reset = false;
    p->reset_from = -1;
    p->stats_done = false;
    bal_stats_clear(&p->stats);
    p->state = BAL_STATE_OK;
    p->fresh = false;
    p->rearm = REARM_NONE;
    p->announce_rearm = false;
    p->restore_done = false;
    free(p->events);
    p->events = NULL;
    p->n_events = 0;
}

void bal_poller_begin_cycle(bal_poller_t *p, uint64_t instance)
{
    if (!p->have_instance || instance != p->instance) {
        reset_instance(p);
        p->have_instance = true;
        p->instance = instance;
    }
    begin(p, MODE_CYCLE);
    if (p->path_state == PATH_FOUND && p->have_original) {
        p->cycles_since_verify++;
        p->verify_due = p->cycles_since_verify >= p->verify_every;
    }
}

void bal_poller_begin_restore(bal_poller_t *p)
{
    begin(p, MODE_RESTORE);
}

static bool emit(bal_poller_t *p, bal_poller_step_t *step, pending_t pending, bal_poller_op_t op,
                 const char *path, int64_t value)
{
    p->pending = pending;
    step->op = op;
    step->path = path;
    step->value = value;
    return true;
}

bool bal_poller_next(bal_poller_t *p, bal_poller_step_t *step)
{
    if (p->mode == MODE_IDLE || p->failed || p->pending != PENDING_NONE)
        return false;

    if (p->mode == MODE_RESTORE) {
        if (p->restore_done || p->observe_only || p->path_state != PATH_FOUND || !p->have_original ||
            !p->changed_by_us || p->qemu_interval == p->original)
            return false;
        return emit(p, step, PENDING_RESTORE, BAL_POLLER_SET_INTERVAL, p->path, p->original);
    }

    switch (p->path_state) {
    case PATH_UNKNOWN:
        return emit(p, step, PENDING_PROBE, BAL_POLLER_GET_INTERVAL,
                    p->cfg_path != NULL ? p->cfg_path : BAL_POLLER_DEFAULT_PATH, 0);
    case PATH_LIST_PERIPHERAL:
        return emit(p, step, PENDING_LIST, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL, 0);
    case PATH_LIST_ANON:
        return emit(p, step, PENDING_LIST, BAL_POLLER_LIST, BAL_POLLER_PERIPHERAL_ANON, 0);
    case PATH_NONE:
        return false;
    case PATH_FOUND:
        break;
    }

    if (!p->have_original)
        return emit(p, step, PENDING_ORIGINAL, BAL_POLLER_GET_INTERVAL, p->path, 0);
    if (p->verify_due)
        return emit(p, step, PENDING_VERIFY, BAL_POLLER_GET_INTERVAL, p->path, 0);
    /* First sight, set back after a change behind our back, or repair of a half-done re-arm. */
    if (!p->observe_only && p->qemu_interval != p->target && p->rearm == REARM_NONE)
        return emit(p, step, PENDING_SET_TARGET, BAL_POLLER_SET_INTERVAL, p->path, p->target);
    if (!p->stats_done)
        return emit(p, step, PENDING_STATS, BAL_POLLER_GET_STATS, p->path, 0);
    if (p->rearm == REARM_OFF)
        return emit(p, step, PENDING_REARM_OFF, BAL_POLLER_SET_INTERVAL, p->path, 0);
    if (p->rearm == REARM_ON)
        return emit(p, step, PENDING_REARM_ON, BAL_POLLER_SET_INTERVAL, p->path, p->target);
    return false;
}

/* The interval just became (or was found) on: the clock for NEVER_ANSWERED and the grace start now. */
static void armed(bal_poller_t *p, bool by_us)
{
    int64_t now = now_ms(p);

    p->armed_ms = p->qemu_interval > 0 ? now : -1;
    if (by_us) {
        int64_t w = window_s(p, p->target);
        p->grace_until_ms = now + w * 1000;
    }
}

static void found_balloon(bal_poller_t *p, int64_t interval)
{
    p->have_original = true;
    p->original = interval;
    p->qemu_interval = interval;
    p->cycles_since_verify = 0;
    armed(p, false);
}

static void no_balloon(bal_poller_t *p)
{
    p->path_state = PATH_NONE;
    if (p->cfg_path != NULL)
        add_event(p, BAL_EVENT_NO_BALLOON, BAL_SEVERITY_WARNING,
                  "Domain '%s' has no virtio balloon at the configured QOM path '%s'; it is skipped "
                  "until it restarts.",
                  p->name, p->cfg_path);
    else
        add_event(p, BAL_EVENT_NO_BALLOON, BAL_SEVERITY_WARNING,
                  "Domain '%s' has no virtio balloon (none at '" BAL_POLLER_DEFAULT_PATH
                  "' nor under '" BAL_POLLER_PERIPHERAL "' or '" BAL_POLLER_PERIPHERAL_ANON
                  "'); it is skipped until it restarts.",
                  p->name);
}

/* How long the stats have gone without an update, in seconds. By the host's clock against last-update;
 * but a last-update ahead of that clock (a peer's bug, or the host's clock stepped back) would make
 * the age negative and a guest that stopped answering look fresh for ever, so then it is the time
 * since last-update last changed, on the monotonic clock. */
static int64_t stats_age_s(const bal_poller_t *p)
{
    int64_t wall = now_wall(p);

    if (p->stats.last_update <= wall)
        return wall - p->stats.last_update;
    return (now_ms(p) - p->prev_changed_ms) / 1000;
}

/* Judges this cycle's sample and decides on events and a re-arm. */
static void evaluate_stats(bal_poller_t *p)
{
    int64_t lu = p->stats.last_update;
    int64_t interval = effective_interval(p);
    int64_t window = window_s(p, interval);
    int64_t now = now_ms(p);
    bool advanced = lu != 0 && (!p->have_prev || lu != p->prev_last_update);

    p->fresh = advanced;
    if (advanced)
        p->prev_changed_ms = now;
    if (lu == 0)
        p->state = BAL_STATE_NEVER_ANSWERED;
    else if (interval <= 0 || stats_age_s(p) > window)
        p->state = BAL_STATE_STALE; /* polling off, or no answer for stale_after intervals */
    else
        p->state = BAL_STATE_OK;

    /* A change of last-update after the first sample is an answer, whatever the age says. */
    if (advanced && p->have_prev && (p->stale_reported || p->never_reported)) {
        add_event(p, BAL_EVENT_RECOVERED, BAL_SEVERITY_OKAY,
                  "The balloon stats of domain '%s' are updated again.", p->name);
        p->stale_reported = false;
        p->never_reported = false;
    }
    p->have_prev = true;
    p->prev_last_update = lu;

    if (p->state == BAL_STATE_NEVER_ANSWERED && !p->never_reported && p->qemu_interval > 0
        && p->armed_ms >= 0 && now - p->armed_ms >= window_s(p, p->qemu_interval) * 1000) {
        add_event(p, BAL_EVENT_NEVER_ANSWERED, BAL_SEVERITY_WARNING,
                  "The guest of domain '%s' has not answered a balloon stats request in %lld s of "
                  "polling; its virtio_balloon driver is probably not loaded.",
                  p->name, (long long)((now - p->armed_ms) / 1000));
        p->never_reported = true;
    }

    if (p->observe_only || p->target <= 0 || p->state != BAL_STATE_STALE || now < p->grace_until_ms)
        return;
    /* Once per stale episode: a guest whose driver comes back sends a buffer on its own, and QEMU
     * re-arms its timer when it does, so repeating the re-arm would only add monitor traffic. */
    if (p->stale_reported)
        return;
    p->rearm = REARM_OFF;
    p->announce_rearm = true;
}

static void on_qmp_error(bal_poller_t *p, pending_t pending, const bal_poller_reply_t *reply)
{
    const char *desc = error_text(reply);
    bool not_found = qmp_class_is(reply, "DeviceNotFound");

    switch (pending) {
    case PENDING_PROBE:
        /* DeviceNotFound: nothing there. GenericError: something there without the property. */
        if (not_found || qmp_class_is(reply, "GenericError")) {
            if (p->cfg_path != NULL)
                no_balloon(p);
            else
                p->path_state = PATH_LIST_PERIPHERAL;
            return;
        }
        break;
    case PENDING_LIST:
        /* A container QEMU never created (no anonymous device) is not an error: no balloon there.
         * Only DeviceNotFound says so (QEMU's answer for a missing path): any other error, such as a
         * GenericError, fails the cycle and the list is asked again, since taking it for "no balloon"
         * would skip the domain until it restarts. */
        if (not_found) {
            if (p->path_state == PATH_LIST_PERIPHERAL)
                p->path_state = PATH_LIST_ANON;
            else
                no_balloon(p);
            return;
        }
        break;
    case PENDING_RESTORE:
        fail(p, error_code(reply, -EREMOTEIO),
             "QEMU refused to put the polling interval of domain '%s' at '%s' back to %lld s: %s.",
             p->name, p->path, (long long)p->original, desc);
        return;
    default:
        break;
    }
    if (not_found && p->path_state == PATH_FOUND) {
        /* The balloon was unplugged: look for it again next cycle. */
        free(p->path);
        p->path = NULL;
        p->path_state = PATH_UNKNOWN;
        p->have_original = false;
        fail(p, error_code(reply, -EREMOTEIO),
             "The balloon of domain '%s' disappeared: %s.", p->name, desc);
        return;
    }
    switch (pending) {
    case PENDING_STATS:
        fail(p, error_code(reply, -EREMOTEIO), "QEMU refused to read the guest-stats of domain '%s': %s.",
             p->name, desc);
        break;
    case PENDING_SET_TARGET:
    case PENDING_REARM_ON:
        fail(p, error_code(reply, -EREMOTEIO),
             "QEMU refused to set the polling interval of domain '%s' to %lld s: %s.", p->name,
             (long long)p->target, desc);
        break;
    case PENDING_REARM_OFF:
        fail(p, error_code(reply, -EREMOTEIO),
             "QEMU refused to turn the polling of domain '%s' off for a re-arm: %s.", p->name, desc);
        break;
    case PENDING_LIST:
        fail(p, error_code(reply, -EREMOTEIO),
             "QEMU refused to list the devices of domain '%s': %s.", p->name, desc);
        break;
    default:
        fail(p, error_code(reply, -EREMOTEIO),
             "QEMU refused to read the polling interval of domain '%s': %s.", p->name, desc);
        break;
    }
}

static void on_answer(bal_poller_t *p, pending_t pending, const bal_poller_reply_t *reply)
{
    switch (pending) {
    case PENDING_PROBE:
        p->path = strdup(p->cfg_path != NULL ? p->cfg_path : BAL_POLLER_DEFAULT_PATH);
        if (p->path == NULL) {
            fail(p, -ENOMEM, "Out of memory reading domain '%s'.", p->name);
            return;
        }
        p->path_state = PATH_FOUND;
        found_balloon(p, reply->interval);
        break;
    case PENDING_LIST:
        if (reply->found_path == NULL) {
            if (p->path_state == PATH_LIST_PERIPHERAL)
                p->path_state = PATH_LIST_ANON;
            else
                no_balloon(p);
            return;
        }
        p->path = strdup(reply->found_path);
        if (p->path == NULL) {
            fail(p, -ENOMEM, "Out of memory reading domain '%s'.", p->name);
            return;
        }
        p->path_state = PATH_FOUND;
        break;
    case PENDING_ORIGINAL:
        found_balloon(p, reply->interval);
        break;
    case PENDING_VERIFY:
        p->verify_due = false;
        p->cycles_since_verify = 0;
        if (p->qemu_interval <= 0 && reply->interval > 0)
            p->armed_ms = now_ms(p);
        if (!p->observe_only && reply->interval != p->target && reply->interval != p->qemu_interval) {
            p->announce_reset = true;
            p->reset_from = reply->interval;
        }
        p->qemu_interval = reply->interval;
        break;
    case PENDING_SET_TARGET:
        p->qemu_interval = p->target;
        p->changed_by_us = true;
        armed(p, true);
        if (p->announce_reset)
            add_event(p, BAL_EVENT_INTERVAL_RESET, BAL_SEVERITY_WARNING,
                      "The polling interval of domain '%s' was changed to %lld s by something else; "
                      "it was set back to %lld s.",
                      p->name, (long long)p->reset_from, (long long)p->target);
        p->announce_reset = false;
        break;
    case PENDING_STATS:
        p->stats_done = true;
        if (reply->stats != NULL)
            p->stats = *reply->stats;
        evaluate_stats(p);
        break;
    case PENDING_REARM_OFF:
        p->qemu_interval = 0;
        p->changed_by_us = true;
        p->rearm = REARM_ON;
        break;
    case PENDING_REARM_ON:
        p->qemu_interval = p->target;
        p->rearm = REARM_NONE;
        armed(p, true);
        if (p->announce_rearm) {
            add_event(p, BAL_EVENT_STALE_REARMED, BAL_SEVERITY_WARNING,
                      "The balloon stats of domain '%s' have not been updated for %lld s (polling "
                      "interval %lld s); the polling timer was re-armed.",
                      p->name, (long long)stats_age_s(p), (long long)p->target);
            p->stale_reported = true;
        }
        break;
    case PENDING_RESTORE:
        p->qemu_interval = p->original;
        p->restore_done = true;
        add_event(p, BAL_EVENT_INTERVAL_RESTORED, BAL_SEVERITY_OKAY,
                  "The polling interval of domain '%s' was put back to its original %lld s.", p->name,
                  (long long)p->original);
        break;
    case PENDING_NONE:
        break;
    }
}

void bal_poller_feed(bal_poller_t *p, const bal_poller_reply_t *reply)
{
    pending_t pending = p->pending;

    if (pending == PENDING_NONE)
        return;
    p->pending = PENDING_NONE;
    switch (reply->outcome) {
    case BAL_POLLER_ANSWERED:
        on_answer(p, pending, reply);
        break;
    case BAL_POLLER_QMP_ERROR:
        on_qmp_error(p, pending, reply);
        break;
    case BAL_POLLER_FAILED:
        if (pending == PENDING_RESTORE)
            fail(p, error_code(reply, -EIO),
                 "Could not put the polling interval of domain '%s' back to %lld s: %s", p->name,
                 (long long)p->original, error_text(reply));
        else
            fail(p, error_code(reply, -EIO), "Could not read domain '%s': %s", p->name,
                 error_text(reply));
        break;
    }
}

void bal_poller_result(const bal_poller_t *p, bal_sample_t *out)
{
    out->balloon_path = p->path_state == PATH_FOUND ? p->path : NULL;
    out->polling_interval_s = p->qemu_interval;
    out->stats = p->stats;
    out->error = NULL;
    out->has_stats = p->stats_done && p->stats.last_update > 0;
    out->fresh = out->has_stats && p->fresh;
    if (p->failed) {
        out->state = BAL_STATE_FAILED;
        out->error = p->error != NULL ? p->error : NO_MEMORY_ERROR;
    } else if (p->path_state == PATH_NONE) {
        out->state = BAL_STATE_NO_BALLOON;
    } else {
        out->state = p->state;
    }
}

int bal_poller_failure(const bal_poller_t *p)
{
    return p->failed ? p->failure : 0;
}

size_t bal_poller_events(const bal_poller_t *p, const bal_poller_event_t **events)
{
    *events = p->events;
    return p->n_events;
}
