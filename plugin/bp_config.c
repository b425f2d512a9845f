/* Parsing of the <Plugin balloon> block. collectd's oconfig gives no line numbers, so every error
 * quotes the offending line as it was written (strings in double quotes, numbers and booleans bare),
 * which shows the wrong type as well as the wrong value. Every check the agent would make at
 * bal_open_agent is made here first, with the agent's own limits (bal_limits.h) and checks, so that a
 * mistake is named with its line at config time, not found at init. */
#include "plugin/bp_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/daemon/plugin.h"
#include "core/utils/common/common.h"

#include "agent/bal_limits.h"
#include "agent/bal_qmp.h"
#include "agent/bal_text.h"

#define BP_LINE_MAX 256

typedef struct bp_parse {
    bp_config_t *config;
    const char *transport_option; /* the option that chose the transport, NULL if none yet */
    unsigned seen;                /* bit per single-valued option already given */
    int errors;
} bp_parse_t;

/* Renders an option line the way it would be written in collectd.conf. Truncated with "..." when it
 * does not fit. */
static void bp_render_line(const oconfig_item_t *ci, char *buf, size_t len)
{
    size_t used = 0;
    int n = snprintf(buf, len, "%s", ci->key != NULL ? ci->key : "");

    used = n < 0 ? 0 : (size_t)n;
    for (int i = 0; i < ci->values_num && used < len; i++) {
        const oconfig_value_t *v = &ci->values[i];

        if (v->type == OCONFIG_TYPE_STRING) {
            const char *s = v->value.string != NULL ? v->value.string : "";

            n = snprintf(buf + used, len - used, " \"");
            used += n < 0 ? 0 : (size_t)n;
            if (used >= len)
                break; /* the opening quote did not fit: nothing more will */
            for (; *s != '\0' && used + 2 < len; s++) {
                if (*s == '"' || *s == '\\')
                    buf[used++] = '\\';
                buf[used++] = *s;
            }
            buf[used] = '\0';
            n = snprintf(buf + used, len - used, "\"");
        } else if (v->type == OCONFIG_TYPE_NUMBER) {
            n = snprintf(buf + used, len - used, " %.15g", v->value.number);
        } else if (v->type == OCONFIG_TYPE_BOOLEAN) {
            n = snprintf(buf + used, len - used, " %s", v->value.boolean ? "true" : "false");
        } else {
            n = snprintf(buf + used, len - used, " ?");
        }
        used += n < 0 ? 0 : (size_t)n;
    }
    if (ci->children_num > 0 && used < len) {
        n = snprintf(buf + used, len - used, " {...}");
        used += n < 0 ? 0 : (size_t)n;
    }
    if (used >= len && len > 4)
        memcpy(buf + len - 4, "...", 4);
    /* A tab or an escape sequence in a string would reach the log as it is. */
    if (!bal_text_is_clean(buf, 0)) {
        char clean[BP_LINE_MAX];

        bal_text_clean(clean, sizeof(clean), buf, 0);
        snprintf(buf, len, "%s", clean);
    }
}

/* An agent's message quotes what it checked, which may hold control characters. */
static void bp_clean_error(bal_error_t *err)
{
    char clean[sizeof(err->message)];

    bal_text_clean(clean, sizeof(clean), err->message, 0);
    memcpy(err->message, clean, sizeof(clean));
}

static bool bp_is_string(const oconfig_item_t *ci, int count)
{
    if (ci->values_num != count || ci->children_num != 0)
        return false;
    for (int i = 0; i < count; i++) {
        if (ci->values[i].type != OCONFIG_TYPE_STRING)
            return false;
    }
    return true;
}

/* On success *out is a new string; on failure it is left NULL. */
static int bp_get_string(bp_parse_t *p, const oconfig_item_t *ci, const char *line, char **out)
{
    if (!bp_is_string(ci, 1) || cf_util_get_string(ci, out) != 0) {
        ERROR("balloon plugin: The option '%s' in the line '%s' needs one string.", ci->key, line);
        p->errors++;
        return -EINVAL;
    }
    if ((*out)[0] == '\0') {
        ERROR("balloon plugin: The option '%s' in the line '%s' needs a non-empty string.", ci->key,
              line);
        free(*out);
        *out = NULL;
        p->errors++;
        return -EINVAL;
    }
    return 0;
}

static int bp_get_number(bp_parse_t *p, const oconfig_item_t *ci, const char *line, double min,
                         double max, double *out)
{
    double v;

    if (ci->values_num != 1 || ci->children_num != 0 || ci->values[0].type != OCONFIG_TYPE_NUMBER)
        goto bad;
    v = ci->values[0].value.number;
    if (!isfinite(v) || v != floor(v) || v < min || v > max)
        goto bad;
    *out = v;
    return 0;

bad:
    ERROR("balloon plugin: The option '%s' in the line '%s' needs one whole number from %.0f to %.0f.",
          ci->key, line, min, max);
    p->errors++;
    return -EINVAL;
}

static int bp_get_boolean(bp_parse_t *p, const oconfig_item_t *ci, const char *line, bool *out)
{
    /* cf_util_get_boolean also takes the strings "true", "yes", "on"... (with a deprecation
     * warning), as every collectd plugin does; anything else is ours to report. */
    if (ci->values_num != 1 || ci->children_num != 0
        || (ci->values[0].type != OCONFIG_TYPE_BOOLEAN && ci->values[0].type != OCONFIG_TYPE_STRING)
        || cf_util_get_boolean(ci, out) != 0) {
        ERROR("balloon plugin: The option '%s' in the line '%s' needs one boolean, true or false.",
              ci->key, line);
        p->errors++;
        return -EINVAL;
    }
    return 0;
}

static int bp_set_transport(bp_parse_t *p, const oconfig_item_t *ci, const char *line,
                            bal_transport_kind_t kind)
{
    /* Several QMPSocket lines make one transport; anything else twice is a conflict. */
    if (p->transport_option != NULL
        && !(kind == BAL_TRANSPORT_QMP_SOCKETS && p->config->transport == kind)) {
        if (strcasecmp(p->transport_option, ci->key) == 0)
            ERROR("balloon plugin: The option '%s' in the line '%s' is given more than once.",
                  ci->key, line);
        else
            ERROR("balloon plugin: The option '%s' in the line '%s' conflicts with the option '%s' "
                  "given before it: a block reads domains through one transport.",
                  ci->key, line, p->transport_option);
        p->errors++;
        return -EINVAL;
    }
    p->transport_option = ci->key;
    p->config->transport = kind;
    return 0;
}

static int bp_opt_connection(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    char *uri = NULL;

    if (bp_get_string(p, ci, line, &uri) != 0 || bp_set_transport(p, ci, line, BAL_TRANSPORT_LIBVIRT)) {
        free(uri);
        return -EINVAL;
    }
    free(p->config->connection);
    p->config->connection = uri;
    return 0;
}

static int bp_opt_qmp_socket_dir(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    char *dir = NULL;

    if (bp_get_string(p, ci, line, &dir) != 0 || bp_set_transport(p, ci, line, BAL_TRANSPORT_QMP_DIR)) {
        free(dir);
        return -EINVAL;
    }
    free(p->config->qmp_dir);
    p->config->qmp_dir = dir;
    return 0;
}

static int bp_opt_qmp_socket(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    bp_config_t *c = p->config;
    char **names = NULL, **paths = NULL;
    char *name = NULL, *path = NULL;

    if (!bp_is_string(ci, 2) || ci->values[0].value.string[0] == '\0'
        || ci->values[1].value.string[0] == '\0') {
        ERROR("balloon plugin: The option '%s' in the line '%s' needs two non-empty strings: a domain "
              "name and the path of its QMP socket.", ci->key, line);
        p->errors++;
        return -EINVAL;
    }
    if (bp_set_transport(p, ci, line, BAL_TRANSPORT_QMP_SOCKETS) != 0)
        return -EINVAL;
    /* The agent refuses a name given twice (which domain would it be?) at init; a path given twice
     * would be one QEMU read as two domains, over two connections of which QMP serves one. */
    for (size_t i = 0; i < c->n_sockets; i++) {
        char other[BP_LINE_MAX];

        bal_text_clean(other, sizeof(other), c->socket_names[i], 0);
        if (strcmp(c->socket_names[i], ci->values[0].value.string) == 0) {
            ERROR("balloon plugin: The option '%s' in the line '%s' names the domain '%s' again: each "
                  "QMPSocket needs a name of its own.", ci->key, line, other);
            p->errors++;
            return -EINVAL;
        }
        if (strcmp(c->socket_paths[i], ci->values[1].value.string) == 0) {
            ERROR("balloon plugin: The option '%s' in the line '%s' gives the socket of the domain '%s' "
                  "again: each QEMU is read through one QMPSocket.", ci->key, line, other);
            p->errors++;
            return -EINVAL;
        }
    }

    name = strdup(ci->values[0].value.string);
    path = strdup(ci->values[1].value.string);
    names = realloc(c->socket_names, (c->n_sockets + 1) * sizeof(*names));
    if (names != NULL)
        c->socket_names = names;
    paths = realloc(c->socket_paths, (c->n_sockets + 1) * sizeof(*paths));
    if (paths != NULL)
        c->socket_paths = paths;
    if (name == NULL || path == NULL || names == NULL || paths == NULL) {
        free(name);
        free(path);
        ERROR("balloon plugin: Out of memory while reading the line '%s'.", line);
        p->errors++;
        return -ENOMEM;
    }
    c->socket_names[c->n_sockets] = name;
    c->socket_paths[c->n_sockets] = path;
    c->n_sockets++;
    return 0;
}

static int bp_opt_domain(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    bp_config_t *c = p->config;
    bal_error_t err;
    char **domains;
    char *selector = NULL;

    if (bp_get_string(p, ci, line, &selector) != 0)
        return -EINVAL;
    bal_error_clear(&err);
    if (bal_agent_check_selector(selector, &err) != 0) {
        bp_clean_error(&err);
        ERROR("balloon plugin: The option '%s' in the line '%s' is not a valid selector: %s", ci->key,
              line, err.message);
        free(selector);
        p->errors++;
        return -EINVAL;
    }
    domains = realloc(c->domains, (c->n_domains + 1) * sizeof(*domains));
    if (domains == NULL) {
        free(selector);
        ERROR("balloon plugin: Out of memory while reading the line '%s'.", line);
        p->errors++;
        return -ENOMEM;
    }
    c->domains = domains;
    c->domains[c->n_domains++] = selector;
    return 0;
}

static int bp_opt_ignore_selected(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    return bp_get_boolean(p, ci, line, &p->config->ignore_selected);
}

static int bp_opt_restore_interval(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    return bp_get_boolean(p, ci, line, &p->config->restore_interval);
}

static int bp_opt_qom_path(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    bal_error_t err;
    char *path = NULL;

    if (bp_get_string(p, ci, line, &path) != 0)
        return -EINVAL;
    /* The agent's check: the path goes into every command it sends. */
    bal_error_clear(&err);
    if (bal_qmp_check_path(path, &err) != 0) {
        bp_clean_error(&err);
        ERROR("balloon plugin: The option '%s' in the line '%s' is not a QOM path the plugin can send: %s",
              ci->key, line, err.message);
        free(path);
        p->errors++;
        return -EINVAL;
    }
    free(p->config->qom_path);
    p->config->qom_path = path;
    return 0;
}

static int bp_opt_polling_interval(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    double v;

    /* QEMU refuses anything above BAL_LIMIT_POLLING_INTERVAL_MAX; 0 would stop polling. */
    if (bp_get_number(p, ci, line, BAL_LIMIT_POLLING_INTERVAL_MIN, (double)BAL_LIMIT_POLLING_INTERVAL_MAX,
                      &v) != 0)
        return -EINVAL;
    p->config->polling_interval_s = (int64_t)v;
    return 0;
}

static int bp_opt_refresh_interval(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    double v;

    if (bp_get_number(p, ci, line, BAL_LIMIT_REFRESH_INTERVAL_MIN, BAL_LIMIT_REFRESH_INTERVAL_MAX, &v) != 0)
        return -EINVAL;
    p->config->refresh_interval_s = (unsigned)v;
    return 0;
}

static int bp_opt_stale_after(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    double v;

    if (bp_get_number(p, ci, line, BAL_LIMIT_STALE_AFTER_MIN, BAL_LIMIT_STALE_AFTER_MAX, &v) != 0)
        return -EINVAL;
    p->config->stale_after = (unsigned)v;
    return 0;
}

static int bp_opt_concurrency(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    double v;

    if (bp_get_number(p, ci, line, BAL_LIMIT_CONCURRENCY_MIN, BAL_LIMIT_CONCURRENCY_MAX, &v) != 0)
        return -EINVAL;
    p->config->concurrency = (unsigned)v;
    return 0;
}

static int bp_opt_timeout(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    double v;

    /* Seconds, as collectd's own Timeout options; whole milliseconds, as the agent counts them. */
    if (ci->values_num != 1 || ci->children_num != 0 || ci->values[0].type != OCONFIG_TYPE_NUMBER
        || !isfinite(v = ci->values[0].value.number) || v * 1000 < BAL_LIMIT_TIMEOUT_MS_MIN
        || v * 1000 > BAL_LIMIT_TIMEOUT_MS_MAX) {
        ERROR("balloon plugin: The option '%s' in the line '%s' needs one number of seconds from %g to "
              "%g.", ci->key, line, BAL_LIMIT_TIMEOUT_MS_MIN / 1000.0, BAL_LIMIT_TIMEOUT_MS_MAX / 1000.0);
        p->errors++;
        return -EINVAL;
    }
    p->config->timeout_ms = (int)lround(v * 1000);
    return 0;
}

static int bp_parse_format(bp_parse_t *p, const oconfig_item_t *ci, const char *line, bool allow_none,
                           bp_name_format_t *out)
{
    bp_name_format_t f = {.n_fields = 0};

    if (ci->values_num < 1 || ci->values_num > BP_FORMAT_MAX_FIELDS || !bp_is_string(ci, ci->values_num))
        goto bad;
    for (int i = 0; i < ci->values_num; i++) {
        const char *s = ci->values[i].value.string;

        if (strcasecmp(s, "name") == 0)
            f.fields[f.n_fields++] = BP_NAME_NAME;
        else if (strcasecmp(s, "uuid") == 0)
            f.fields[f.n_fields++] = BP_NAME_UUID;
        else if (strcasecmp(s, "hostname") == 0)
            f.fields[f.n_fields++] = BP_NAME_HOSTNAME;
        else if (allow_none && ci->values_num == 1 && strcasecmp(s, "none") == 0)
            ;
        else
            goto bad;
    }
    *out = f;
    return 0;

bad:
    if (allow_none)
        ERROR("balloon plugin: The option '%s' in the line '%s' needs 'none', or one or more of the "
              "strings 'name', 'uuid' and 'hostname'.", ci->key, line);
    else
        ERROR("balloon plugin: The option '%s' in the line '%s' needs one or more of the strings "
              "'name', 'uuid' and 'hostname'.", ci->key, line);
    p->errors++;
    return -EINVAL;
}

static int bp_opt_hostname_format(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    return bp_parse_format(p, ci, line, false, &p->config->hostname_format);
}

static int bp_opt_plugin_instance_format(bp_parse_t *p, const oconfig_item_t *ci, const char *line)
{
    return bp_parse_format(p, ci, line, true, &p->config->plugin_instance_format);
}

typedef struct bp_option {
    const char *key;
    int (*parse)(bp_parse_t *p, const oconfig_item_t *ci, const char *line);
    bool repeatable; /* transports check their own repetition */
} bp_option_t;

static const bp_option_t bp_options[] = {
    {"Connection", bp_opt_connection, true},
    {"QMPSocketDir", bp_opt_qmp_socket_dir, true},
    {"QMPSocket", bp_opt_qmp_socket, true},
    {"PollingInterval", bp_opt_polling_interval, false},
    {"Domain", bp_opt_domain, true},
    {"IgnoreSelected", bp_opt_ignore_selected, false},
    {"QOMPath", bp_opt_qom_path, false},
    {"RefreshInterval", bp_opt_refresh_interval, false},
    {"HostnameFormat", bp_opt_hostname_format, false},
    {"PluginInstanceFormat", bp_opt_plugin_instance_format, false},
    {"StaleAfter", bp_opt_stale_after, false},
    {"RestoreInterval", bp_opt_restore_interval, false},
    {"Concurrency", bp_opt_concurrency, false},
    {"Timeout", bp_opt_timeout, false},
};

bp_config_t *bp_config_new_default(void)
{
    bp_config_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->transport = BAL_TRANSPORT_LIBVIRT;
    c->restore_interval = true;
    c->hostname_format.fields[0] = BP_NAME_HOSTNAME;
    c->hostname_format.n_fields = 1;
    c->plugin_instance_format.fields[0] = BP_NAME_NAME;
    c->plugin_instance_format.n_fields = 1;
    return c;
}

static bool bp_format_names_domain(const bp_name_format_t *f)
{
    for (size_t i = 0; i < f->n_fields; i++) {
        if (f->fields[i] != BP_NAME_HOSTNAME)
            return true;
    }
    return false;
}

int bp_config_parse(const oconfig_item_t *ci, bp_config_t **out)
{
    bp_parse_t p = {.config = bp_config_new_default()};
    int ret = -EINVAL;

    if (p.config == NULL) {
        ERROR("balloon plugin: Out of memory while reading the configuration.");
        return -ENOMEM;
    }
    for (int i = 0; i < ci->children_num; i++) {
        const oconfig_item_t *child = &ci->children[i];
        char line[BP_LINE_MAX];
        size_t k;

        bp_render_line(child, line, sizeof(line));
        for (k = 0; k < sizeof(bp_options) / sizeof(bp_options[0]); k++) {
            if (child->key != NULL && strcasecmp(child->key, bp_options[k].key) == 0)
                break;
        }
        if (k == sizeof(bp_options) / sizeof(bp_options[0])) {
            ERROR("balloon plugin: The option '%s' in the line '%s' is not one this plugin knows.",
                  child->key != NULL ? child->key : "", line);
            p.errors++;
            continue;
        }
        if (!bp_options[k].repeatable && (p.seen & (1u << k)) != 0) {
            ERROR("balloon plugin: The option '%s' in the line '%s' is given more than once.",
                  child->key, line);
            p.errors++;
            continue;
        }
        p.seen |= 1u << k;
        if (bp_options[k].parse(&p, child, line) == -ENOMEM) {
            ret = -ENOMEM;
            goto out;
        }
    }
    if (p.errors > 0)
        goto out;

    if (p.config->n_sockets > 0) {
        p.config->sockets = calloc(p.config->n_sockets, sizeof(*p.config->sockets));
        if (p.config->sockets == NULL) {
            ERROR("balloon plugin: Out of memory while reading the configuration.");
            ret = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < p.config->n_sockets; i++) {
            p.config->sockets[i].name = p.config->socket_names[i];
            p.config->sockets[i].path = p.config->socket_paths[i];
        }
    }
    if (!bp_format_names_domain(&p.config->hostname_format)
        && !bp_format_names_domain(&p.config->plugin_instance_format))
        WARNING("balloon plugin: Neither HostnameFormat nor PluginInstanceFormat names the domain, so "
                "the values of all domains share one identifier.");
    *out = p.config;
    p.config = NULL;
    ret = 0;

out:
    if (ret != 0 && p.errors > 0)
        ERROR("balloon plugin: The <Plugin balloon> block has %d error(s); the plugin will not start.",
              p.errors);
    bp_config_free(p.config);
    return ret;
}

void bp_config_free(bp_config_t *config)
{
    if (config == NULL)
        return;
    free(config->connection);
    free(config->qmp_dir);
    for (size_t i = 0; i < config->n_sockets; i++) {
        free(config->socket_names[i]);
        free(config->socket_paths[i]);
    }
    free(config->socket_names);
    free(config->socket_paths);
    free(config->sockets);
    for (size_t i = 0; i < config->n_domains; i++)
        free(config->domains[i]);
    free(config->domains);
    free(config->qom_path);
    free(config);
}

int64_t bp_config_default_polling_interval(cdtime_t collectd_interval)
{
    /* cdtime_t is 2^-30 s: round up to whole seconds without going through a double. */
    uint64_t s = (collectd_interval + (((cdtime_t)1 << 30) - 1)) >> 30;

    if (s < 1)
        s = 1;
    if (s > (uint64_t)BAL_LIMIT_POLLING_INTERVAL_MAX)
        s = (uint64_t)BAL_LIMIT_POLLING_INTERVAL_MAX;
    return (int64_t)s;
}

int64_t bp_config_polling_interval(const bp_config_t *config, cdtime_t collectd_interval)
{
    if (config->polling_interval_s > 0)
        return config->polling_interval_s;
    return bp_config_default_polling_interval(collectd_interval);
}

void bp_config_to_agent(const bp_config_t *config, cdtime_t collectd_interval, bal_agent_config_t *out,
                        bal_open_config_t *open)
{
    memset(open, 0, sizeof(*open));
    open->transport = config->transport;
    open->libvirt_uri = config->connection;
    open->qmp_dir = config->qmp_dir;
    open->sockets = config->sockets;
    open->n_sockets = config->n_sockets;
    memset(out, 0, sizeof(*out));
    out->domains = (const char *const *)config->domains;
    out->n_domains = config->n_domains;
    out->ignore_selected = config->ignore_selected;
    out->qom_path = config->qom_path;
    out->polling_interval_s = bp_config_polling_interval(config, collectd_interval);
    out->observe_only = false;
    out->stale_after = config->stale_after;
    out->restore_interval = config->restore_interval;
    out->concurrency = config->concurrency;
    out->refresh_interval_s = config->refresh_interval_s;
    out->timeout_ms = config->timeout_ms;
    out->read_budget_ms = bp_config_read_budget_ms(collectd_interval);
}

int bp_config_read_budget_ms(cdtime_t collectd_interval)
{
    /* Half the interval: the rest is for handing out the values and for a busy host's scheduling (a
     * loaded 2-core machine under ASan took up to 0.7 s more), so that the read ends within its
     * interval and collectd never has to say it took longer. */
    uint64_t ms = CDTIME_T_TO_MS(collectd_interval) / 2;

    return ms < 1 ? 1 : ms > INT32_MAX ? INT32_MAX : (int)ms;
}
