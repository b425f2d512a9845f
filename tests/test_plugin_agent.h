/* A scripted stand-in for the agent behind the plugin, linked with
 * -Wl,--wrap=bal_open_agent,--wrap=bal_agent_read,--wrap=bal_agent_free: the test says which
 * samples, events and log messages the next read cycle produces, and reads back the configuration
 * the plugin gave the agent. Everything else of libagent (errors, stats names, the selector check)
 * is the real code. Not thread-safe. */
#ifndef TEST_PLUGIN_AGENT_H
#define TEST_PLUGIN_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/bal_agent.h"
#include "agent/bal_open.h"

#define FA_MAX 8
#define FA_MAX_SAMPLES 2048 /* domains of one read; names up to 255 bytes */

/* A copy of the last configuration given to bal_open_agent. */
typedef struct fa_config {
    bal_transport_kind_t transport;
    bool has_uri, has_qmp_dir, has_qom_path;
    char libvirt_uri[256];
    char qmp_dir[256];
    char qom_path[256];
    size_t n_sockets;
    char socket_names[FA_MAX][128];
    char socket_paths[FA_MAX][256];
    size_t n_domains;
    char domains[FA_MAX][128];
    bool ignore_selected;
    int64_t polling_interval_s;
    bool observe_only;
    unsigned stale_after, verify_every, concurrency, refresh_interval_s;
    int timeout_ms, read_budget_ms;
    size_t max_descriptors;
    bool restore_interval;
    bool has_logger, has_on_event, has_clock;
} fa_config_t;

void fa_reset(void);

/* What bal_open_agent returns from now on, after n_ok more successful calls; and what bal_agent_read
 * returns (next call only). A negative errno comes with message in err. */
void fa_set_new_status(int status, const char *message, unsigned n_ok);
void fa_set_read_status(int status, const char *message);

/* The domains of every following read, in the order given (the agent's is by name). The sample is
 * copied, strings included; fa_clear_samples empties the list. */
void fa_add_sample(const bal_sample_t *sample);
void fa_clear_samples(void);

/* Delivered through on_event / the logger at the start of the next read only. */
void fa_add_event(bal_event_kind_t kind, bal_severity_t severity, const char *domain, const char *uuid,
                  const char *message);
void fa_add_log(bal_log_level_t level, const char *message);

const fa_config_t *fa_config(void);
unsigned fa_n_new(void);   /* calls to bal_open_agent, successful or not */
unsigned fa_n_read(void);  /* calls to bal_agent_read */
unsigned fa_n_free(void);  /* calls to bal_agent_free with an agent */
int fa_n_alive(void);      /* agents created and not freed */

/* A sample helper: a domain whose stats are the first n_stats stats set to base + index, with
 * last_update, state OK, fresh and has_stats as given. */
bal_sample_t fa_sample(const char *name, const char *uuid, unsigned n_stats, uint64_t base,
                       int64_t last_update, bool fresh);

/* The wrapped functions (declared for -Wmissing-prototypes). */
int __wrap_bal_open_agent(const bal_agent_config_t *config, const bal_open_config_t *open, bal_agent_t **out,
                          bal_error_t *err);
int __wrap_bal_agent_read(bal_agent_t *agent, bal_sample_cb cb, void *opaque, bal_error_t *err);
void __wrap_bal_agent_free(bal_agent_t *agent);

#endif
