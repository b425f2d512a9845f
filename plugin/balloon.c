/* The collectd plugin `balloon`: registration and the config, init, read and shutdown callbacks.
 *
 * Each <Plugin balloon> block is one instance with its own agent and read callback ("balloon",
 * "balloon-2", ...), so one collectd can watch a libvirt host and a directory of QMP sockets at once.
 * Config callbacks only parse; init creates the agents and registers the reads, all or nothing;
 * shutdown frees everything and leaves the globals as module_register found them, so that a daemon
 * that loads the plugin again (or a test harness) starts clean. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/daemon/plugin.h"
#include "core/daemon/utils_complain.h"
#include "core/utils/common/common.h"

#include "agent/bal_agent.h"
#include "agent/bal_open.h"
#include "agent/bal_text.h"
#include "plugin/bp_config.h"
#include "plugin/bp_fdlimit.h"
#include "plugin/bp_metrics.h"
#include "plugin/bp_report.h"
#include "plugin/bp_series.h"
#include "plugin/bp_sources.h"

/* A domain seen by an instance: what must survive from one cycle to the next. The agent holds it for
 * us in its own list of domains (bal_sample_t.user) and hands it back when the domain goes. */
typedef struct bp_domain {
    char *name;
    bp_trouble_t trouble; /* read failures, said ever more rarely (bp_report.h) */
    bp_series_t *series;  /* its claim on its identifier in collectd; NULL: not dispatched */
    bool taken;           /* its identifier is another domain's, and that was said */
} bp_domain_t;

typedef struct bp_instance {
    bp_config_t *config;
    bal_agent_config_t agent_config; /* borrows from config */
    bal_open_config_t open_config;   /* the transport; borrows from config */
    bal_agent_t *agent;              /* NULL until the transport could be opened */
    char read_name[32];
    int64_t interval_s;              /* the polling interval in QEMU, and the values' interval */
    bool registered;

    c_complain_t open_complaint; /* the transport could not be opened */
    c_complain_t read_complaint; /* no domain at all could be read */
    bp_report_t report;          /* what the domains of the current cycle have to say */
} bp_instance_t;

static bp_instance_t **bp_instances;
static size_t bp_n_instances;
static bool bp_config_failed;

static void bp_log(void *opaque, bal_log_level_t level, const char *message)
{
    int lvl = LOG_ERR;
    char clean[1024];

    (void)opaque;
    /* The agent's messages quote the peer (QEMU's error desc, a socket's name). */
    bal_text_clean(clean, sizeof(clean), message, 0);
    switch (level) {
    case BAL_LOG_ERR:
        lvl = LOG_ERR;
        break;
    case BAL_LOG_WARNING:
        lvl = LOG_WARNING;
        break;
    case BAL_LOG_NOTICE:
        lvl = LOG_NOTICE;
        break;
    case BAL_LOG_INFO:
        lvl = LOG_INFO;
        break;
    case BAL_LOG_DEBUG:
        lvl = LOG_DEBUG;
        break;
    }
    plugin_log(lvl, "balloon plugin: %s", clean);
}

static void bp_domain_free(bp_domain_t *dom)
{
    if (dom == NULL)
        return;
    bp_series_release(dom->series);
    free(dom->name);
    free(dom);
}

/* The domain's state, kept in the agent's slot for it (bal_sample_t.user) and created on first
 * sight. NULL only on ENOMEM. */
static bp_domain_t *bp_domain_get(void **slot, const char *name)
{
    bp_domain_t *dom;

    if (slot == NULL)
        return NULL;
    if (*slot != NULL)
        return *slot;
    dom = calloc(1, sizeof(*dom));
    if (dom == NULL || (dom->name = strdup(name)) == NULL) {
        free(dom);
        return NULL;
    }
    *slot = dom;
    return dom;
}

/* The agent's release_user: the domain left the selection (or the agent is being freed). */
static void bp_domain_release(void *opaque, void *user)
{
    (void)opaque;
    bp_domain_free(user);
}

/* The domain's identifier in collectd, claimed for it (bp_series.h); NULL when it is another
 * domain's, which is said once, or when out of memory. */
static const bp_identity_t *bp_domain_claim(bp_instance_t *inst, bp_domain_t *dom, const char *uuid)
{
    bp_series_holder_t holder;
    bp_identity_t id;
    int rc;

    bp_metrics_identity(inst->config, dom->name, uuid, hostname_g, &id);
    rc = bp_series_claim(&dom->series, inst->read_name, dom->name, &id, &holder);
    if (rc == 0) {
        if (dom->taken)
            bp_report_add(&inst->report, BP_REPORT_FREED, dom->name, NULL);
        dom->taken = false;
        return bp_series_identity(dom->series);
    }
    if (rc == -EEXIST && !dom->taken) {
        bp_report_taken(&inst->report, dom->name, &id, &holder);
        dom->taken = true;
    }
    return NULL;
}

static void bp_on_event(void *opaque, const bal_event_t *event)
{
    bp_instance_t *inst = opaque;
    bp_domain_t *dom = bp_domain_get(event->user, event->domain != NULL ? event->domain : "");
    const bp_identity_t *id = dom != NULL ? bp_domain_claim(inst, dom, event->uuid) : NULL;

    /* Not for a domain whose identifier is another's: it would be that one's notification. */
    if (id != NULL)
        bp_metrics_notify(event, id, cdtime());
}

static void bp_on_sample(void *opaque, const bal_sample_t *sample)
{
    bp_instance_t *inst = opaque;
    bp_domain_t *dom = bp_domain_get(sample->user, sample->name);
    const bp_identity_t *id;
    bp_series_plan_t plan;
    cdtime_t now = cdtime();

    if (dom == NULL)
        return; /* out of memory: nothing to keep its series apart with */
    /* Late (its command still out when the read's time was up) is not read either, but a warning:
     * the domain may answer by the next read. It is rate-limited with the failures. */
    if (sample->state == BAL_STATE_FAILED && bp_trouble_failed(&dom->trouble, now, plugin_get_interval()))
        bp_report_add(&inst->report, BP_REPORT_READ_FAILED, sample->name,
                      sample->error != NULL ? sample->error : "unknown error.");
    else if (sample->state == BAL_STATE_LATE && bp_trouble_failed(&dom->trouble, now, plugin_get_interval()))
        bp_report_add(&inst->report, BP_REPORT_READ_LATE, sample->name,
                      sample->error != NULL ? sample->error : "no answer in time.");
    else if (sample->state != BAL_STATE_FAILED && sample->state != BAL_STATE_LATE
             && bp_trouble_read(&dom->trouble, now))
        bp_report_add(&inst->report, BP_REPORT_READ_AGAIN, sample->name, NULL);
    id = bp_domain_claim(inst, dom, sample->uuid);
    if (id == NULL)
        return;
    /* A domain that could not be read is still there: its state says so. */
    bp_report_series(&inst->report, dom->name, sample->stats.last_update, dom->series,
                     bp_series_plan(dom->series, sample, now, &plan));
    bp_metrics_dispatch_sample(sample, id, &plan, inst->interval_s);
}

static void bp_instance_free(bp_instance_t *inst)
{
    if (inst == NULL)
        return;
    /* Puts the intervals back (if asked), which may raise notifications through bp_on_event, then
     * hands back every domain's state (bp_domain_release). */
    bal_agent_free(inst->agent);
    bp_config_free(inst->config);
    free(inst);
}

static void bp_instances_free(void)
{
    for (size_t i = 0; i < bp_n_instances; i++)
        bp_instance_free(bp_instances[i]);
    free(bp_instances);
    bp_instances = NULL;
    bp_n_instances = 0;
}

static int bp_instance_add(bp_config_t *config)
{
    bp_instance_t **all, *inst;

    all = realloc(bp_instances, (bp_n_instances + 1) * sizeof(*all));
    if (all == NULL)
        return -ENOMEM;
    bp_instances = all;
    inst = calloc(1, sizeof(*inst));
    if (inst == NULL)
        return -ENOMEM;
    inst->config = config;
    C_COMPLAIN_INIT(&inst->open_complaint);
    C_COMPLAIN_INIT(&inst->read_complaint);
    bp_report_init(&inst->report);
    if (bp_n_instances == 0)
        snprintf(inst->read_name, sizeof(inst->read_name), "balloon");
    else
        snprintf(inst->read_name, sizeof(inst->read_name), "balloon-%zu", bp_n_instances + 1);
    bp_instances[bp_n_instances++] = inst;
    return 0;
}

static int bp_config_cb(oconfig_item_t *ci)
{
    bp_config_t *config = NULL;
    int ret = bp_config_parse(ci, &config);

    if (ret == 0) {
        ret = bp_instance_add(config);
        if (ret != 0) {
            ERROR("balloon plugin: Out of memory while reading the configuration.");
            bp_config_free(config);
        }
    }
    if (ret != 0) {
        bp_config_failed = true;
        return -1;
    }
    return 0;
}

/* Opens the instance's transport. -EINVAL means the configuration is wrong for good; anything else
 * (libvirtd not up yet, no socket directory yet) is retried by the read callback. */
static int bp_instance_open(bp_instance_t *inst, bal_error_t *err)
{
    bal_error_clear(err);
    return bal_open_agent(&inst->agent_config, &inst->open_config, &inst->agent, err);
}

static int bp_read_cb(user_data_t *ud)
{
    bp_instance_t *inst = ud->data;
    bal_error_t err;
    int n;

    if (inst->agent == NULL) {
        if (bp_instance_open(inst, &err) != 0) {
            char clean[sizeof(err.message)];

            bal_text_clean(clean, sizeof(clean), err.message, 0);
            c_complain(LOG_ERR, &inst->open_complaint,
                       "balloon plugin: Could not open the transport, will try again: %s", clean);
            return -1;
        }
        c_release(LOG_NOTICE, &inst->open_complaint, "balloon plugin: The transport is open now.");
    }

    bal_error_clear(&err);
    n = bal_agent_read(inst->agent, bp_on_sample, inst, &err);
    bp_report_flush(&inst->report);
    if (n < 0) {
        char clean[sizeof(err.message)];

        /* It quotes a domain's error, which quotes the peer. */
        bal_text_clean(clean, sizeof(clean), err.message, 0);
        c_complain(LOG_ERR, &inst->read_complaint, "balloon plugin: No domain could be read: %s", clean);
        return -1;
    }
    c_release(LOG_NOTICE, &inst->read_complaint, "balloon plugin: Domains can be read again.");
    return 0;
}

/* Two blocks must not read one domain (bp_sources.h). */
static int bp_instances_check_sources(void)
{
    const bp_config_t **configs = calloc(bp_n_instances, sizeof(*configs));
    int ret;

    if (configs == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < bp_n_instances; i++)
        configs[i] = bp_instances[i]->config;
    ret = bp_sources_check(configs, bp_n_instances);
    free(configs);
    return ret;
}

static int bp_init_cb(void)
{
    cdtime_t interval = plugin_get_interval();
    bp_fdlimit_plan_t fds = {0};
    size_t n_qmp = 0;
    bal_error_t err;
    int ret = -1;

    if (bp_config_failed) {
        ERROR("balloon plugin: Not starting, because the configuration has errors (logged above).");
        goto out;
    }
    if (bp_n_instances == 0) {
        /* LoadPlugin without a <Plugin balloon> block: every default, libvirt's qemu:///system. */
        bp_config_t *config = bp_config_new_default();

        if (config == NULL || bp_instance_add(config) != 0) {
            bp_config_free(config);
            ERROR("balloon plugin: Out of memory while starting.");
            goto out;
        }
    }

    if (bp_instances_check_sources() != 0) {
        ERROR("balloon plugin: Not starting, because blocks would read the same domains (logged above).");
        goto out;
    }

    /* A connection per domain: the blocks on QMP sockets share the open-files limit's room. */
    for (size_t i = 0; i < bp_n_instances; i++)
        n_qmp += bp_instances[i]->config->transport != BAL_TRANSPORT_LIBVIRT;
    if (n_qmp > 0)
        bp_fdlimit_apply(n_qmp, &fds);

    for (size_t i = 0; i < bp_n_instances; i++) {
        bp_instance_t *inst = bp_instances[i];
        int status;

        inst->interval_s = bp_config_polling_interval(inst->config, interval);
        bp_config_to_agent(inst->config, interval, &inst->agent_config, &inst->open_config);
        if (inst->config->transport != BAL_TRANSPORT_LIBVIRT)
            inst->open_config.max_descriptors = fds.share;
        inst->agent_config.logger.log = bp_log;
        inst->agent_config.logger.opaque = NULL;
        inst->agent_config.on_event = bp_on_event;
        inst->agent_config.release_user = bp_domain_release;
        inst->agent_config.event_opaque = inst;

        status = bp_instance_open(inst, &err);
        if (status == -EINVAL) {
            ERROR("balloon plugin: Not starting, because the configuration was refused: %s",
                  err.message);
            goto out;
        }
        if (status != 0)
            WARNING("balloon plugin: Could not open the transport yet, will try again at each read: "
                    "%s", err.message);
    }

    for (size_t i = 0; i < bp_n_instances; i++) {
        bp_instance_t *inst = bp_instances[i];
        user_data_t ud = {.data = inst, .free_func = NULL};

        /* The instances are ours, freed at shutdown after collectd has stopped its read threads. */
        if (plugin_register_complex_read(NULL, inst->read_name, bp_read_cb, interval, &ud) != 0) {
            ERROR("balloon plugin: Registering the read callback '%s' failed.", inst->read_name);
            goto out;
        }
        inst->registered = true;
    }
    ret = 0;

out:
    if (ret != 0) {
        for (size_t i = 0; i < bp_n_instances; i++) {
            if (bp_instances[i]->registered)
                plugin_unregister_read(bp_instances[i]->read_name);
        }
        bp_instances_free();
    }
    return ret;
}

static int bp_shutdown_cb(void)
{
    bp_instances_free();
    bp_series_forget_all();
    bp_config_failed = false;
    return 0;
}

/* Declared by plugin.h; the only symbol balloon.so exports. */
void module_register(void)
{
    plugin_register_complex_config("balloon", bp_config_cb);
    plugin_register_init("balloon", bp_init_cb);
    plugin_register_shutdown("balloon", bp_shutdown_cb);
}
