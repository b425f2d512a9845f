/* From the agent's samples and events to collectd's value lists and notifications: the metric
 * table (which stat becomes which type and type instance, DERIVE or GAUGE), the identifiers, the
 * times and intervals that values carry. */
#ifndef BP_METRICS_H
#define BP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/daemon/plugin.h"

#include "agent/bal_agent.h"
#include "plugin/bp_config.h"

/* Where one stat goes: type and type instance in collectd's types.db, and its data source type.
 * major and minor faults go together into one vmpage_faults value list (majflt, minflt), which the
 * table shows on the minor-faults row; the major-faults row has type NULL. */
typedef struct bp_stat_metric {
    const char *type;
    const char *type_instance;
    int ds_type; /* DS_TYPE_GAUGE or DS_TYPE_DERIVE */
} bp_stat_metric_t;

/* The row for a stat, or NULL outside 0..BAL_STAT_COUNT-1. */
const bp_stat_metric_t *bp_metrics_for_stat(bal_stat_t stat);

/* The identifier parts of one domain. */
typedef struct bp_identity {
    char host[DATA_MAX_NAME_LEN];
    char plugin_instance[DATA_MAX_NAME_LEN];
} bp_identity_t;

/* Builds a domain's host and plugin_instance from the two formats. name and uuid are the domain's;
 * an empty or NULL uuid falls back to the name; hostname is collectd's. Each is cleaned as text from
 * outside (bal_text.h: a control character becomes '?', invalid UTF-8 U+FFFD) and cut, as collectd
 * would cut it, at DATA_MAX_NAME_LEN - 1 bytes, but at a character boundary: so two names can make
 * one identifier, which bp_series.h keeps apart. */
void bp_metrics_identity(const bp_config_t *config, const char *name, const char *uuid,
                         const char *hostname, bp_identity_t *out);

/* The value of gauge-state for a domain's state: 0 ok, 1 never answered, 2 stale, 3 no balloon,
 * 4 could not be read this cycle, 5 late (its command still out after the read's budget); NaN for a
 * value outside the enum. */
gauge_t bp_metrics_state_code(bal_domain_state_t state);

/* What to dispatch of a sample and the times it carries, as bp_series_plan decides. */
struct bp_series_plan;

/* Dispatches one sample's value lists with plugin_dispatch_values, as plan says, in this order:
 * - plan->stats: every set stat, and timestamp-last_update when plan->last_update, at
 *   plan->stats_time;
 * - plan->age: duration-stats_age (plan->age_s), at plan->read_time;
 * - plan->read_values, for every sample whatever its state (FAILED too): duration-polling_interval
 *   (the interval QEMU has as far as the agent knows, NaN when unknown) and, last, gauge-state
 *   (bp_metrics_state_code), both at plan->read_time.
 * Every value list carries interval_s (the polling interval) as its interval. A stat that is not
 * set, or above INT64_MAX, is left out. Returns the number of value lists dispatched. */
int bp_metrics_dispatch_sample(const bal_sample_t *sample, const bp_identity_t *id,
                               const struct bp_series_plan *plan, int64_t interval_s);

/* Dispatches the agent's event as a notification (severity mapped, host, plugin "balloon",
 * plugin_instance, a type/type instance naming the series it concerns, and the message cleaned as
 * text from outside). Returns plugin_dispatch_notification's status. */
int bp_metrics_notify(const bal_event_t *event, const bp_identity_t *id, cdtime_t now);

#endif
