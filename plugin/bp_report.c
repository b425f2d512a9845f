#include "plugin/bp_report.h"

#include <stddef.h>
#include <stdio.h>

#include "core/daemon/plugin.h"
#include "core/utils/common/common.h"

#include "agent/bal_stats.h"

#define BP_DAY TIME_T_TO_CDTIME_T(86400)

void bp_report_init(bp_report_t *r)
{
    for (int k = 0; k < BP_REPORT_KINDS; k++)
        bal_summary_clear(&r->kinds[k]);
}

void bp_report_add(bp_report_t *r, bp_report_kind_t kind, const char *name, const char *detail)
{
    if ((int)kind >= 0 && kind < BP_REPORT_KINDS)
        bal_summary_add(&r->kinds[kind], name, detail);
}

void bp_report_series(bp_report_t *r, const char *name, int64_t lu, const bp_series_t *series,
                      unsigned changes)
{
    char detail[160];

    if (changes & BP_SERIES_HELD_BACK) {
        snprintf(detail, sizeof(detail), "%lld s since the epoch, before the %.0f already dispatched",
                 (long long)lu, CDTIME_T_TO_DOUBLE(bp_series_last_stats_time(series)));
        bp_report_add(r, BP_REPORT_HELD_BACK, name, detail);
    }
    if (changes & BP_SERIES_RESUMED)
        bp_report_add(r, BP_REPORT_RESUMED, name, NULL);
    if (changes & BP_SERIES_UNUSABLE) {
        if (lu > BAL_STATS_TIME_MAX_S)
            snprintf(detail, sizeof(detail),
                     "%lld s since the epoch, beyond the year 2514 that collectd's time can hold",
                     (long long)lu);
        else
            snprintf(detail, sizeof(detail), "%lld s since the epoch, %lld s ahead of this host's clock",
                     (long long)lu, (long long)(lu - (int64_t)CDTIME_T_TO_TIME_T(cdtime())));
        bp_report_add(r, BP_REPORT_UNUSABLE, name, detail);
    }
    if (changes & BP_SERIES_USABLE)
        bp_report_add(r, BP_REPORT_USABLE, name, NULL);
    if (changes & BP_SERIES_CLOCK_BACK) {
        snprintf(detail, sizeof(detail), "%.3f s since the epoch",
                 CDTIME_T_TO_DOUBLE(bp_series_last_read_time(series)));
        bp_report_add(r, BP_REPORT_CLOCK_BACK, name, detail);
    }
    if (changes & BP_SERIES_CLOCK_AHEAD)
        bp_report_add(r, BP_REPORT_CLOCK_AHEAD, name, NULL);
}

void bp_report_taken(bp_report_t *r, const char *name, const bp_identity_t *id,
                     const bp_series_holder_t *holder)
{
    char detail[1024]; /* kept cut to bal_summary's detail: the reason comes before the names' end */

    snprintf(detail, sizeof(detail),
             "its identifier in collectd (host '%s', plugin instance '%s') is already that of domain '%s', "
             "read by '%s' (collectd keeps the first %d bytes of each; control characters and invalid "
             "UTF-8 are replaced). Give the domains names that differ sooner, or use PluginInstanceFormat "
             "uuid.",
             id->host, id->plugin_instance, holder->name, holder->owner, DATA_MAX_NAME_LEN - 1);
    bp_report_add(r, BP_REPORT_TAKEN, name, detail);
}

/* One domain's line. name and detail are cleaned already (bal_summary). */
static void bp_report_one(bp_report_kind_t kind, const char *name, const char *detail)
{
    switch (kind) {
    case BP_REPORT_READ_FAILED:
        ERROR("balloon plugin: Reading domain '%s' failed: %s", name, detail);
        break;
    case BP_REPORT_READ_LATE:
        WARNING("balloon plugin: Domain '%s' is late: %s", name, detail);
        break;
    case BP_REPORT_READ_AGAIN:
        NOTICE("balloon plugin: Domain '%s' can be read again.", name);
        break;
    case BP_REPORT_TAKEN:
        ERROR("balloon plugin: Domain '%s' is not dispatched: %s", name, detail);
        break;
    case BP_REPORT_FREED:
        NOTICE("balloon plugin: Domain '%s' is dispatched now: the domain that had its identifier is "
               "gone.", name);
        break;
    case BP_REPORT_HELD_BACK:
        WARNING("balloon plugin: The last-update of domain '%s' went back, to %s; its stats are held back "
                "until one is newer, since collectd takes no value older than one it has.",
                name, detail);
        break;
    case BP_REPORT_RESUMED:
        NOTICE("balloon plugin: The last-update of domain '%s' is newer than the last one dispatched again; "
               "its stats are dispatched again.", name);
        break;
    case BP_REPORT_UNUSABLE:
        WARNING("balloon plugin: The last-update of domain '%s' is %s, no time its values can carry; they "
                "carry the time of the read that first saw each last-update instead, and its stats age "
                "counts from that read.", name, detail);
        break;
    case BP_REPORT_USABLE:
        NOTICE("balloon plugin: The last-update of domain '%s' is a time its values can carry again.", name);
        break;
    case BP_REPORT_CLOCK_BACK:
        WARNING("balloon plugin: This host's clock went back: the values of domain '%s' dated with it "
                "(stats_age, polling_interval, state) are held back until it passes %s, the time of the "
                "last ones dispatched.", name, detail);
        break;
    case BP_REPORT_CLOCK_AHEAD:
        NOTICE("balloon plugin: The values of domain '%s' dated with this host's clock are dispatched "
               "again.", name);
        break;
    case BP_REPORT_KINDS:
        break;
    }
}

/* Many domains' line: how many, a few names, the first one's detail. */
static void bp_report_many(bp_report_kind_t kind, size_t n, const char *names, const char *first)
{
    switch (kind) {
    case BP_REPORT_READ_FAILED:
        ERROR("balloon plugin: Reading %zu domains failed, among them %s. The first error: %s", n, names,
              first);
        break;
    case BP_REPORT_READ_LATE:
        WARNING("balloon plugin: %zu domains are late, among them %s. The first: %s", n, names, first);
        break;
    case BP_REPORT_READ_AGAIN:
        NOTICE("balloon plugin: %zu domains can be read again, among them %s.", n, names);
        break;
    case BP_REPORT_TAKEN:
        ERROR("balloon plugin: %zu domains are not dispatched because their identifiers in collectd are "
              "those of other domains, among them %s. The first: %s", n, names, first);
        break;
    case BP_REPORT_FREED:
        NOTICE("balloon plugin: %zu domains are dispatched now that the domains that had their identifiers "
               "are gone, among them %s.", n, names);
        break;
    case BP_REPORT_HELD_BACK:
        WARNING("balloon plugin: The last-update of %zu domains went back, among them %s (the first to %s); "
                "their stats are held back until they are newer, since collectd takes no value older than "
                "one it has.", n, names, first);
        break;
    case BP_REPORT_RESUMED:
        NOTICE("balloon plugin: The stats of %zu domains are dispatched again, among them %s: their "
               "last-update is newer than the last one dispatched.", n, names);
        break;
    case BP_REPORT_UNUSABLE:
        WARNING("balloon plugin: The last-update of %zu domains is no time their values can carry, among "
                "them %s (the first is %s); they carry the time of the read that first saw each "
                "last-update instead.", n, names, first);
        break;
    case BP_REPORT_USABLE:
        NOTICE("balloon plugin: The last-update of %zu domains is a time their values can carry again, "
               "among them %s.", n, names);
        break;
    case BP_REPORT_CLOCK_BACK:
        WARNING("balloon plugin: This host's clock went back: the values of %zu domains dated with it "
                "(stats_age, polling_interval, state) are held back until it passes the time of the last "
                "ones dispatched (%s), among them %s.", n, first, names);
        break;
    case BP_REPORT_CLOCK_AHEAD:
        NOTICE("balloon plugin: The values of %zu domains dated with this host's clock are dispatched again, "
               "among them %s.", n, names);
        break;
    case BP_REPORT_KINDS:
        break;
    }
}

void bp_report_flush(bp_report_t *r)
{
    char names[512];

    for (int k = 0; k < BP_REPORT_KINDS; k++) {
        bal_summary_t *s = &r->kinds[k];

        if (s->count <= BAL_SUMMARY_KEPT) {
            for (size_t i = 0; i < s->count; i++)
                bp_report_one((bp_report_kind_t)k, s->kept[i].name, s->kept[i].detail);
        } else {
            bp_report_many((bp_report_kind_t)k, s->count, bal_summary_names(s, names, sizeof(names)),
                           s->kept[0].detail);
        }
        bal_summary_clear(s);
    }
}

bool bp_trouble_failed(bp_trouble_t *t, cdtime_t now, cdtime_t interval)
{
    /* A day without a failure forgets how often it failed before. */
    if (!t->failing && t->wait != 0 && now >= t->last_failed && now - t->last_failed >= BP_DAY)
        t->wait = 0;
    t->last_failed = now;
    if (t->failing && now < t->last_said + t->wait)
        return false;
    /* Said now; the next time after twice the wait (after one interval the first time). */
    if (t->wait == 0)
        t->wait = interval;
    else
        t->wait = t->wait >= BP_DAY / 2 ? BP_DAY : 2 * t->wait;
    if (t->wait > BP_DAY)
        t->wait = BP_DAY;
    t->last_said = now;
    t->failing = true;
    return true;
}

bool bp_trouble_read(bp_trouble_t *t, cdtime_t now)
{
    if (!t->failing || now < t->last_failed || now - t->last_failed < t->wait)
        return false;
    t->failing = false;
    return true;
}
