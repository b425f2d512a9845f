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
#include "agent/bal_log.h"
#include "agent/bal_stats.h"
#include "agent/bal_transport.h"

typedef enum bal_transport_kind {
    BAL_TRANSPORT_LIBVIRT,     /* virDomainQemuMonitorCommand over libvirt_uri */
    BAL_TRANSPORT_QMP_DIR,     /* every NAME.qmp socket in qmp_dir */
    BAL_TRANSPORT_QMP_SOCKETS, /* the explicit name/path pairs */
} bal_transport_kind_t;

typedef struct bal_socket_spec {
    const char *name;
    const char *path;
} bal_socket_spec_t;

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
} bal_event_t;

typedef struct bal_agent_config {
    bal_transport_kind_t transport;
    const char *libvirt_uri;          /* NULL: "qemu:///system" */
    const char *qmp_dir;              /* BAL_TRANSPORT_QMP_DIR */
    const bal_socket_spec_t *sockets; /* BAL_TRANSPORT_QMP_SOCKETS */
    size_t n_sockets;

    const char *const *domains;  /* exact names or "/regex/" (POSIX extended); none: every domain */
    size_t n_domains;
    bool ignore_selected;        /* report every domain except the selected ones */

    const char *qom_path;        /* NULL: /machine/peripheral/balloon0, else found with qom-list */
    int64_t polling_interval_s;  /* set in QEMU; >= 1 (0 keeps polling off: balloonctl set-interval 0) */
    bool observe_only;           /* never set the interval (balloonctl list/stats/watch) */
    unsigned stale_after;        /* intervals without an advance before a re-arm; 0: 3 */
    unsigned verify_every;       /* cycles between qom-get checks of the interval; 0: 5 */
    bool restore_interval;       /* on bal_agent_free, put back each domain's original interval */
    unsigned concurrency;        /* commands in flight at once; 0: 5 (libvirtd's max_client_requests) */
    unsigned refresh_interval_s; /* domain list refresh; 0: 60 (lifecycle events act at once anyway) */
    int timeout_ms;              /* connect and reply timeout per command; 0: 5000 */
    int read_budget_ms;          /* how long bal_agent_read waits for answers; 0: until every domain
                                    answered or failed. A command still out then is not waited for */
    size_t max_descriptors;      /* QMP sockets: descriptors the agent may hold at once (connections kept
                                    open, and one per command in flight); 0: no limit */

    bal_logger_t logger;
    void (*on_event)(void *opaque, const bal_event_t *event); /* optional; called from bal_agent_read
                                                                 or bal_agent_free's thread */
    void *event_opaque;
    const bal_clock_t *clock; /* NULL: bal_clock_system() */
} bal_agent_config_t;

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
} bal_sample_t;

typedef struct bal_agent bal_agent_t;

/* Validates the config (bad regex, missing transport argument...) and opens the transport. Returns 0
 * and a new agent in *out, or a negative errno with a sentence in err. Does not contact any domain yet
 * except to connect. The config's strings are copied. */
int bal_agent_new(const bal_agent_config_t *config, bal_agent_t **out, bal_error_t *err);

/* The same over a transport the caller made (tests: a fake one); config->transport and its arguments
 * are ignored. Takes ownership of transport, which is freed even on failure. */
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

/* Validates a domain selector as bal_agent_new would ("name" or "/regex/"). Returns 0 or -EINVAL. */
int bal_agent_check_selector(const char *selector, bal_error_t *err);

#endif
