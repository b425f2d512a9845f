/* The checks of an agent's configuration (bal_agent.h), made before anything is opened: the ranges are
 * bal_limits.h's, the QOM path and the domain selectors are refused here rather than at the first read. */
#include "config.h"

#include <errno.h>
#include <stddef.h>

#include "agent/bal_agent.h"
#include "agent/bal_filter.h"
#include "agent/bal_limits.h"
#include "agent/bal_qmp.h"

int bal_agent_check_selector(const char *selector, bal_error_t *err)
{
    return bal_filter_check_selector(selector, err);
}

int bal_agent_check_config(const bal_agent_config_t *config, bal_error_t *err)
{
    int rc;

    if (config == NULL)
        return bal_error_set(err, -EINVAL, "No agent configuration was given.");
    /* The ranges are bal_limits.h's; 0 stands for the default where there is one. */
    if (config->polling_interval_s < 0 || config->polling_interval_s > BAL_LIMIT_POLLING_INTERVAL_MAX)
        return bal_error_set(err, -EINVAL,
                             "The polling interval %lld s is out of range: it must be between 0 and "
                             "%lld seconds.",
                             (long long)config->polling_interval_s,
                             (long long)BAL_LIMIT_POLLING_INTERVAL_MAX);
    if (config->concurrency > BAL_LIMIT_CONCURRENCY_MAX)
        return bal_error_set(err, -EINVAL,
                             "The concurrency %u is out of range: it must be between %d and %d.",
                             config->concurrency, BAL_LIMIT_CONCURRENCY_MIN, BAL_LIMIT_CONCURRENCY_MAX);
    if (config->refresh_interval_s > BAL_LIMIT_REFRESH_INTERVAL_MAX)
        return bal_error_set(err, -EINVAL,
                             "The refresh interval %u s is out of range: it must be between %d and %d "
                             "seconds.",
                             config->refresh_interval_s, BAL_LIMIT_REFRESH_INTERVAL_MIN,
                             BAL_LIMIT_REFRESH_INTERVAL_MAX);
    if (config->stale_after > BAL_LIMIT_STALE_AFTER_MAX)
        return bal_error_set(err, -EINVAL,
                             "The stale-after count %u is out of range: it must be between %d and %d.",
                             config->stale_after, BAL_LIMIT_STALE_AFTER_MIN, BAL_LIMIT_STALE_AFTER_MAX);
    if (config->timeout_ms < 0)
        return bal_error_set(err, -EINVAL, "The timeout %d ms is negative.", config->timeout_ms);
    if (config->read_budget_ms < 0)
        return bal_error_set(err, -EINVAL, "The read budget %d ms is negative.", config->read_budget_ms);
    if (config->qom_path != NULL) {
        /* Refused before anything is sent: the path goes into every command. */
        rc = bal_qmp_check_path(config->qom_path, err);
        if (rc < 0)
            return rc;
    }
    if (config->n_domains > 0 && config->domains == NULL)
        return bal_error_set(err, -EINVAL, "The domain selectors are missing.");
    for (size_t i = 0; i < config->n_domains; i++) {
        rc = bal_filter_check_selector(config->domains[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
