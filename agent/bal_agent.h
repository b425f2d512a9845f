/* The monitoring core: discovers domains through a transport, keeps each one's polling interval set,
 * reads guest-stats from all of them concurrently, and hands out one sample per domain per cycle.
 * Used by the collectd plugin and by balloonctl. It never logs except through the injected logger and
 * never touches collectd. */
#ifndef BAL_AGENT_H
#define BAL_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/bal_clock.h"
#include "agent/bal_error.h"
#include "agent/bal_limits.h"
#include "agent/bal_log.h"
#include "agent/bal_sample.h"
#include "agent/bal_stats.h"
#include "agent/bal_transport.h"

typedef struct bal_agent_config {
    const char *const *domains;  /* exact names or "/regex/" (POSIX extended); none: every domain */
    size_t n_domains;
    bool ignore_selected;        /* report every domain except the selected ones */

    const char *qom_path;        /* NULL: /machine/peripheral/balloon0, else found with qom-list */
    int64_t polling_interval_s;  /* set in QEMU; >= 1 (0 keeps polling off: balloonctl set-interval 0) */
    bool observe_only;           /* never set the interval (balloonctl list/stats/watch) */
    unsigned stale_after;        /* intervals without an advance before a re-arm;
                                    0: BAL_LIMIT_STALE_AFTER_DEFAULT (3) */
    unsigned verify_every;       /* cycles between qom-get checks of the interval;
                                    0: BAL_LIMIT_VERIFY_EVERY_DEFAULT (5) */
    bool restore_interval;       /* on bal_agent_free, put back each domain's original interval */
    unsigned concurrency;        /* commands in flight at once; 0: BAL_LIMIT_CONCURRENCY_DEFAULT (5) */
    unsigned refresh_interval_s; /* domain list refresh; 0: BAL_LIMIT_REFRESH_INTERVAL_DEFAULT (60) */
    int timeout_ms;              /* connect and reply timeout per command;
                                    0: BAL_LIMIT_TIMEOUT_MS_DEFAULT (5000) */
    int read_budget_ms;          /* how long bal_agent_read waits for answers; 0: until every domain
                                    answered or failed. A command still out then is not waited for */

    bal_logger_t logger;
    void (*on_event)(void *opaque, const bal_event_t *event); /* optional; called from bal_agent_read
                                                                 or bal_agent_free's thread */
    /* Optional: takes back a domain's user slot (bal_sample_t), when it was set, once the domain
     * left the selection (at the end of that bal_agent_read) or on bal_agent_free; same threads. */
    void (*release_user)(void *opaque, void *user);
    void *event_opaque; /* on_event's and release_user's */
    const bal_clock_t *clock; /* NULL: bal_clock_system() */
} bal_agent_config_t;

typedef struct bal_agent bal_agent_t;

/* Everything bal_agent_new_with_transport checks of config (ranges, a bad regex, a hostile QOM path)
 * before it makes anything: to be called before a transport is opened (bal_open.h does), so that a
 * mistake does not even connect. Returns 0 or -EINVAL with a sentence in err. */
int bal_agent_check_config(const bal_agent_config_t *config, bal_error_t *err);

/* An agent over a transport the caller made (bal_open.h makes one by kind; tests: a fake one).
 * Validates the config as bal_agent_check_config and contacts no domain yet. Returns 0 and a new
 * agent in *out, or a negative errno with a sentence in err. The config's strings are copied. Takes
 * ownership of transport, which is freed even on failure. */
int bal_agent_new_with_transport(const bal_agent_config_t *config, bal_transport_t *transport,
                                 bal_agent_t **out, bal_error_t *err);

/* One read cycle over every selected domain, the commands overlapped through the pool. Calls cb once
 * per domain from the calling thread, in name order; the sample's pointers are valid only during the
 * call. Returns the number of domains read (state other than FAILED and LATE), or a negative errno
 * with err filled when domains exist but none could be read, or the domain list could not be had.
 * With read_budget_ms, returns after about that long at most: a domain whose command is still out is
 * LATE, its command goes on in the background (bal_jobs.h), no other is sent to it until that one
 * ends, and the answer is handed out by a later read. A domain that was late or timed out before is
 * asked last, and only while fewer than concurrency such commands are still out. Without one, or per
 * domain, a command's steps stop 2 timeouts in, and a command under way then may still take a connect
 * timeout and a reply timeout: about 4 * timeout (tests/fault_qmp measures the worst case).
 * Not to be called concurrently on one agent. */
typedef void (*bal_sample_cb)(void *opaque, const bal_sample_t *sample);
int bal_agent_read(bal_agent_t *agent, bal_sample_cb cb, void *opaque, bal_error_t *err);

/* Waits for the commands still out (their timeout at most), puts each domain's original interval back
 * if restore_interval, closes connections and joins threads. NULL is a no-op. */
void bal_agent_free(bal_agent_t *agent);

/* Validates a domain selector as bal_agent_check_config does ("name" or "/regex/"). Returns 0 or -EINVAL. */
int bal_agent_check_selector(const char *selector, bal_error_t *err);

#endif
