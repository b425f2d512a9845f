/* The metric table and the dispatching of value lists and notifications. Types come from collectd's
 * own types.db, so no fragment has to be installed:
 * - memory (GAUGE, bytes) for free, total, available memory and disk caches;
 * - swap_io (DERIVE, bytes: the guest driver reports swap in bytes) for swap in/out;
 * - vmpage_faults (DERIVE minflt, majflt), one value list, as collectd's vmem plugin reports faults;
 * - vmpage_action (DERIVE, pages), the vmem plugin's type for page scans and steals, for QEMU 9.2's
 *   hugetlb allocations/failures and the kswapd ("async") and direct scans and reclaims;
 * - total_events (DERIVE) for QEMU 9.2's OOM kills and allocation stalls, which count events, not
 *   pages. */
#include "plugin/bp_metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/daemon/plugin.h"
#include "core/utils/common/common.h"

#include "agent/bal_text.h"
#include "plugin/bp_series.h"

static const bp_stat_metric_t bp_stat_metrics[BAL_STAT_COUNT] = {
    [BAL_STAT_SWAP_IN] = {"swap_io", "in", DS_TYPE_DERIVE},
    [BAL_STAT_SWAP_OUT] = {"swap_io", "out", DS_TYPE_DERIVE},
    [BAL_STAT_MAJOR_FAULTS] = {NULL, NULL, DS_TYPE_DERIVE}, /* with minor faults, below */
    [BAL_STAT_MINOR_FAULTS] = {"vmpage_faults", "", DS_TYPE_DERIVE},
    [BAL_STAT_FREE_MEMORY] = {"memory", "free", DS_TYPE_GAUGE},
    [BAL_STAT_TOTAL_MEMORY] = {"memory", "total", DS_TYPE_GAUGE},
    [BAL_STAT_AVAILABLE_MEMORY] = {"memory", "available", DS_TYPE_GAUGE},
    [BAL_STAT_DISK_CACHES] = {"memory", "disk_caches", DS_TYPE_GAUGE},
    [BAL_STAT_HTLB_PGALLOC] = {"vmpage_action", "htlb_pgalloc", DS_TYPE_DERIVE},
    [BAL_STAT_HTLB_PGFAIL] = {"vmpage_action", "htlb_pgfail", DS_TYPE_DERIVE},
    [BAL_STAT_OOM_KILLS] = {"total_events", "oom_kills", DS_TYPE_DERIVE},
    [BAL_STAT_ALLOC_STALLS] = {"total_events", "alloc_stalls", DS_TYPE_DERIVE},
    [BAL_STAT_ASYNC_SCANS] = {"vmpage_action", "async_scans", DS_TYPE_DERIVE},
    [BAL_STAT_DIRECT_SCANS] = {"vmpage_action", "direct_scans", DS_TYPE_DERIVE},
    [BAL_STAT_ASYNC_RECLAIMS] = {"vmpage_action", "async_reclaims", DS_TYPE_DERIVE},
    [BAL_STAT_DIRECT_RECLAIMS] = {"vmpage_action", "direct_reclaims", DS_TYPE_DERIVE},
};

/* The documented encoding of gauge-state (collectd-balloon(5), README "Metrics"): written out here,
 * not taken from the agent's enum order, so that reordering the enum cannot change what alerts and
 * dashboards already match on. */
static const gauge_t bp_state_codes[] = {
    [BAL_STATE_OK] = 0,
    [BAL_STATE_NEVER_ANSWERED] = 1,
    [BAL_STATE_STALE] = 2,
    [BAL_STATE_NO_BALLOON] = 3,
    [BAL_STATE_FAILED] = 4,
    [BAL_STATE_LATE] = 5,
};

typedef struct bp_event_metric {
    const char *type;
    const char *type_instance;
} bp_event_metric_t;

/* The series a notification is about, so that filters and thresholds can match it. */
static const bp_event_metric_t bp_event_metrics[] = {
    [BAL_EVENT_NEVER_ANSWERED] = {"timestamp", "last_update"},
    [BAL_EVENT_STALE_REARMED] = {"timestamp", "last_update"},
    [BAL_EVENT_RECOVERED] = {"timestamp", "last_update"},
    [BAL_EVENT_INTERVAL_RESET] = {"duration", "polling_interval"},
    [BAL_EVENT_INTERVAL_RESTORED] = {"duration", "polling_interval"},
    [BAL_EVENT_NO_BALLOON] = {"memory", ""},
};

const bp_stat_metric_t *bp_metrics_for_stat(bal_stat_t stat)
{
    if ((int)stat < 0 || stat >= BAL_STAT_COUNT)
        return NULL;
    return &bp_stat_metrics[stat];
}

static void bp_format_name(const bp_name_format_t *format, const char *name, const char *uuid,
                           const char *hostname, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < format->n_fields && used < len; i++) {
        const char *part = "";
        int n;

        switch (format->fields[i]) {
        case BP_NAME_NAME:
            part = name;
            break;
        case BP_NAME_UUID:
            part = (uuid != NULL && uuid[0] != '\0') ? uuid : name;
            break;
        case BP_NAME_HOSTNAME:
            part = hostname != NULL ? hostname : "";
            break;
        }
        n = snprintf(buf + used, len - used, "%s%s", i > 0 ? ":" : "", part);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

void bp_metrics_identity(const bp_config_t *config, const char *name, const char *uuid,
                         const char *hostname, bp_identity_t *out)
{
    /* Longer than any identifier, so that the cut is the cleaning's, at a character boundary. */
    char raw[4 * DATA_MAX_NAME_LEN];

    bp_format_name(&config->hostname_format, name, uuid, hostname, raw, sizeof(raw));
    bal_text_clean(out->host, sizeof(out->host), raw, 0);
    bp_format_name(&config->plugin_instance_format, name, uuid, hostname, raw, sizeof(raw));
    bal_text_clean(out->plugin_instance, sizeof(out->plugin_instance), raw, 0);
}

static int bp_dispatch(const bp_identity_t *id, const char *type, const char *type_instance,
                       value_t *values, size_t n_values, cdtime_t time, cdtime_t interval)
{
    value_list_t vl = VALUE_LIST_INIT;

    vl.values = values;
    vl.values_len = n_values;
    vl.time = time;
    vl.interval = interval;
    sstrncpy(vl.host, id->host, sizeof(vl.host));
    sstrncpy(vl.plugin, "balloon", sizeof(vl.plugin));
    sstrncpy(vl.plugin_instance, id->plugin_instance, sizeof(vl.plugin_instance));
    sstrncpy(vl.type, type, sizeof(vl.type));
    sstrncpy(vl.type_instance, type_instance, sizeof(vl.type_instance));
    return plugin_dispatch_values(&vl) == 0 ? 1 : 0;
}

/* A counter is a derive_t (int64_t); a value above INT64_MAX is no counter a guest can have. */
static bool bp_to_derive(const bal_stat_value_t *v, value_t *out)
{
    if (!v->set || v->value > (uint64_t)INT64_MAX)
        return false;
    out->derive = (derive_t)v->value;
    return true;
}

static int bp_dispatch_stats(const bal_stats_t *st, const bp_identity_t *id, cdtime_t updated,
                             bool with_last_update, cdtime_t interval)
{
    value_t v[2];
    int n = 0;

    for (int s = 0; s < BAL_STAT_COUNT; s++) {
        const bp_stat_metric_t *m = &bp_stat_metrics[s];
        const bal_stat_value_t *sv = &st->stat[s];

        if (m->type == NULL || !sv->set)
            continue;
        if (s == BAL_STAT_MINOR_FAULTS) {
            /* One value list of two data sources: both or nothing, since a DERIVE cannot be NaN. */
            if (bp_to_derive(sv, &v[0]) && bp_to_derive(&st->stat[BAL_STAT_MAJOR_FAULTS], &v[1]))
                n += bp_dispatch(id, m->type, m->type_instance, v, 2, updated, interval);
            continue;
        }
        /* The agent sets no value above INT64_MAX; a gauge is held to the same. */
        if (!bp_to_derive(sv, &v[0]))
            continue;
        if (m->ds_type == DS_TYPE_GAUGE)
            v[0].gauge = (gauge_t)sv->value;
        n += bp_dispatch(id, m->type, m->type_instance, v, 1, updated, interval);
    }

    if (with_last_update) {
        v[0].gauge = (gauge_t)st->last_update;
        n += bp_dispatch(id, "timestamp", "last_update", v, 1, updated, interval);
    }
    return n;
}

gauge_t bp_metrics_state_code(bal_domain_state_t state)
{
    if ((int)state < 0 || (size_t)state >= sizeof(bp_state_codes) / sizeof(bp_state_codes[0]))
        return NAN;
    return bp_state_codes[state];
}

int bp_metrics_dispatch_sample(const bal_sample_t *sample, const bp_identity_t *id,
                               const bp_series_plan_t *plan, int64_t interval_s)
{
    cdtime_t interval = TIME_T_TO_CDTIME_T(interval_s);
    value_t v[1];
    int n = 0;

    /* The stats carry QEMU's receive time: sent once per new last-update, never re-sent as new. */
    if (plan->stats)
        n += bp_dispatch_stats(&sample->stats, id, plan->stats_time, plan->last_update, interval);

    /* Every cycle, so that a freshness panel or a threshold sees the age grow while QEMU's stats
     * stand still. */
    if (plan->age) {
        v[0].gauge = plan->age_s;
        n += bp_dispatch(id, "duration", "stats_age", v, 1, plan->read_time, interval);
    }

    /* Every domain, every cycle, whatever its state, at the read's time: a guest that never
     * answered, or one that cannot be read, still exists for a dashboard or an alert. The state
     * comes last, so that a reader of the stream knows the domain's sample is complete. */
    if (plan->read_values) {
        v[0].gauge = sample->polling_interval_s >= 0 ? (gauge_t)sample->polling_interval_s : NAN;
        n += bp_dispatch(id, "duration", "polling_interval", v, 1, plan->read_time, interval);
        v[0].gauge = bp_metrics_state_code(sample->state);
        n += bp_dispatch(id, "gauge", "state", v, 1, plan->read_time, interval);
    }
    return n;
}

int bp_metrics_notify(const bal_event_t *event, const bp_identity_t *id, cdtime_t now)
{
    notification_t n = {.time = now, .meta = NULL};
    const bp_event_metric_t *m = NULL;

    switch (event->severity) {
    case BAL_SEVERITY_FAILURE:
        n.severity = NOTIF_FAILURE;
        break;
    case BAL_SEVERITY_WARNING:
        n.severity = NOTIF_WARNING;
        break;
    case BAL_SEVERITY_OKAY:
    default:
        n.severity = NOTIF_OKAY;
        break;
    }
    if ((int)event->kind >= 0
        && (size_t)event->kind < sizeof(bp_event_metrics) / sizeof(bp_event_metrics[0]))
        m = &bp_event_metrics[event->kind];
    /* Messages quote the peer (a socket's name, QEMU's error): one line, no escape sequences. */
    bal_text_clean(n.message, sizeof(n.message), event->message, 0);
    sstrncpy(n.host, id->host, sizeof(n.host));
    sstrncpy(n.plugin, "balloon", sizeof(n.plugin));
    sstrncpy(n.plugin_instance, id->plugin_instance, sizeof(n.plugin_instance));
    sstrncpy(n.type, m != NULL && m->type != NULL ? m->type : "", sizeof(n.type));
    sstrncpy(n.type_instance, m != NULL && m->type_instance != NULL ? m->type_instance : "",
             sizeof(n.type_instance));
    return plugin_dispatch_notification(&n);
}
