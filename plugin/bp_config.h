/* The <Plugin balloon> block: parsed, checked and turned into the agent's configuration. A block
 * with any error is refused whole, so the plugin never runs half-configured. */
#ifndef BP_CONFIG_H
#define BP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/daemon/plugin.h"

#include "agent/bal_agent.h"
#include "agent/bal_open.h"

/* One field of HostnameFormat / PluginInstanceFormat, spelled as collectd's virt plugin spells it. */
typedef enum bp_name_field {
    BP_NAME_NAME,     /* the domain's name */
    BP_NAME_UUID,     /* the domain's UUID (its name when the transport knows no UUID) */
    BP_NAME_HOSTNAME, /* collectd's Hostname */
} bp_name_field_t;

#define BP_FORMAT_MAX_FIELDS 8

/* The fields are joined with ':', as the virt plugin does. No fields: an empty string. */
typedef struct bp_name_format {
    bp_name_field_t fields[BP_FORMAT_MAX_FIELDS];
    size_t n_fields;
} bp_name_format_t;

typedef struct bp_config {
    bal_transport_kind_t transport;
    char *connection;            /* Connection; NULL: the agent's default (qemu:///system) */
    char *qmp_dir;               /* QMPSocketDir */
    char **socket_names;         /* QMPSocket NAME PATH, in the order given */
    char **socket_paths;
    bal_socket_spec_t *sockets;  /* views of the two arrays above, for the agent */
    size_t n_sockets;

    char **domains;              /* Domain, "name" or "/regex/" */
    size_t n_domains;
    bool ignore_selected;

    char *qom_path;              /* QOMPath; NULL: the agent finds the balloon */
    int64_t polling_interval_s;  /* PollingInterval; 0: not given, use collectd's interval */
    unsigned refresh_interval_s; /* RefreshInterval; 0: BAL_LIMIT_REFRESH_INTERVAL_DEFAULT */
    unsigned stale_after;        /* StaleAfter; 0: BAL_LIMIT_STALE_AFTER_DEFAULT */
    unsigned concurrency;        /* Concurrency; 0: BAL_LIMIT_CONCURRENCY_DEFAULT */
    int timeout_ms;              /* Timeout, in ms; 0: BAL_LIMIT_TIMEOUT_MS_DEFAULT */
    bool restore_interval;       /* RestoreInterval, default true */

    bp_name_format_t hostname_format;        /* default: hostname */
    bp_name_format_t plugin_instance_format; /* default: name */
} bp_config_t;

/* A configuration with every default, as if the block were empty. Returns NULL on ENOMEM. */
bp_config_t *bp_config_new_default(void);

/* Parses one <Plugin balloon> block. Returns 0 and a new configuration in *out, or -EINVAL after
 * logging one ERROR per problem found (each names the option and the line's value), or -ENOMEM.
 * Calls collectd's cf_util_get_* and plugin_log; does not block. */
int bp_config_parse(const oconfig_item_t *ci, bp_config_t **out);

void bp_config_free(bp_config_t *config);

/* PollingInterval's default: collectd's interval for this plugin, rounded up to whole seconds, at
 * least 1. */
int64_t bp_config_default_polling_interval(cdtime_t collectd_interval);

/* The polling interval to use: PollingInterval if given, else the default above. */
int64_t bp_config_polling_interval(const bp_config_t *config, cdtime_t collectd_interval);

/* How long a read waits for the domains' answers: half of collectd's interval for the plugin,
 * at least 1 ms. A command still out then is not waited for (its domain is late). */
int bp_config_read_budget_ms(cdtime_t collectd_interval);

/* Fills *out and *open for bal_open_agent from config. The pointers in them borrow from config, which
 * must outlive their use; logger, on_event, release_user and clock are left NULL, and max_descriptors
 * 0, for the caller to set. */
void bp_config_to_agent(const bp_config_t *config, cdtime_t collectd_interval, bal_agent_config_t *out,
                        bal_open_config_t *open);

#endif
