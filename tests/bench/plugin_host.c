/* plugin_host: loads one collectd read plugin the way collectd 5.12 does and times its read cycles.
 *
 * The executable itself provides the part of collectd's plugin API that read plugins import
 * (plugin_register_*, plugin_dispatch_*, plugin_log, cf_util_get_*, c_complain, cdtime, hostname_g,
 * sstrncpy...); it is linked with -rdynamic so that the dlopen'ed plugin binds to these symbols, as
 * it binds to the daemon's. Then: module_register, the config callback with the `<Plugin NAME>`
 * block (parsed from -c FILE and -o lines), the init callbacks, warm-up and measured read cycles
 * (each cycle runs every registered read callback once, on up to -t read threads like collectd's
 * ReadThreads), and the shutdown callbacks.
 *
 * Per measured cycle it prints wall time (CLOCK_MONOTONIC), process CPU time (every thread,
 * CLOCK_PROCESS_CPUTIME_ID), and what was dispatched; then the medians and the peak RSS. Dispatched
 * values are checked against types.db as collectd checks them. A cycle that dispatched fewer value
 * lists or distinct sources (host/plugin_instance pairs, i.e. domains) than required fails the run:
 * a plugin that read nothing must not look fast. */

/* collectd's config.h is included here, not ours (they clash), so ask for GNU extensions directly. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <collectd/core/daemon/plugin.h>
#include <collectd/core/daemon/utils_complain.h>
#include <collectd/core/utils/common/common.h>

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/bench_config.h"
#include "tests/bench/bench_pool.h"
#include "tests/bench/bench_run.h"
#include "tests/bench/bench_util.h"

/* ---- globals collectd's daemon exports ---- */

char *hostname_g;
cdtime_t interval_g;
int timeout_g = 2;
int pidfile_from_cli;

/* ---- the registry ---- */

typedef struct reg_config {
    char *name;
    int (*simple)(const char *key, const char *value);
    int (*complex)(oconfig_item_t *ci);
    char **keys;
    int keys_num;
} reg_config_t;

typedef struct reg_read {
    char *name;
    char *plugin; /* the plugin that registered it, for its context */
    plugin_read_cb complex;
    int (*simple)(void);
    user_data_t ud;
    cdtime_t interval;
} reg_read_t;

typedef struct reg_named {
    char *name;
    int (*init)(void);
    int (*shutdown)(void);
} reg_named_t;

static struct {
    reg_config_t *configs;
    size_t n_configs;
    reg_read_t *reads;
    size_t n_reads;
    reg_named_t *inits;
    size_t n_inits;
    reg_named_t *shutdowns;
    size_t n_shutdowns;
    user_data_t *other_ud; /* write/notification/log/flush callbacks: accepted, never called */
    size_t n_other_ud;
} reg;

/* ---- options and counters ---- */

static struct {
    int log_level;
    bool dump;
    cdtime_t interval;
} opt = {.log_level = LOG_NOTICE, .dump = false};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t log_errors;

/* What the current cycle dispatched. */
static atomic_uint_fast64_t n_value_lists, n_values, n_notifications, n_errors;

/* Distinct sources (host + plugin_instance) of the current cycle: a set of 64-bit FNV-1a hashes.
 * Each thread remembers its last source so that a domain's consecutive value lists cost one
 * comparison; cycle_gen tells the threads that the set was emptied. */
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *set_slots;
static size_t set_cap, set_count;
static atomic_uint cycle_gen = 1;
static __thread unsigned tls_gen;
static __thread char tls_last_source[2 * DATA_MAX_NAME_LEN + 1];

static __thread plugin_ctx_t tls_ctx;

/* ---- types.db ---- */

static data_set_t *types;
static size_t n_types;

static int compare_type(const void *a, const void *b)
{
    return strcmp(((const data_set_t *)a)->type, ((const data_set_t *)b)->type);
}

static int parse_ds(char *spec, data_source_t *ds)
{
    char *fields[4];
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(spec, ":", &save); tok != NULL && n < 4; tok = strtok_r(NULL, ":", &save))
        fields[n++] = tok;
    if (n != 4)
        return -EINVAL;
    sstrncpy(ds->name, fields[0], sizeof(ds->name));
    if (strcasecmp(fields[1], "GAUGE") == 0)
        ds->type = DS_TYPE_GAUGE;
    else if (strcasecmp(fields[1], "DERIVE") == 0)
        ds->type = DS_TYPE_DERIVE;
    else if (strcasecmp(fields[1], "COUNTER") == 0)
        ds->type = DS_TYPE_COUNTER;
    else if (strcasecmp(fields[1], "ABSOLUTE") == 0)
        ds->type = DS_TYPE_ABSOLUTE;
    else
        return -EINVAL;
    ds->min = strcmp(fields[2], "U") == 0 ? NAN : atof(fields[2]);
    ds->max = strcmp(fields[3], "U") == 0 ? NAN : atof(fields[3]);
    return 0;
}

static int load_types(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    size_t cap = 0;
    unsigned lineno = 0;

    if (f == NULL) {
        fprintf(stderr, "plugin_host: cannot open types.db '%s': %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *save = NULL;
        char *name = strtok_r(line, " \t\r\n", &save);
        if (name == NULL || name[0] == '#')
            continue;
        if (n_types == cap) {
            cap = cap ? 2 * cap : 256;
            data_set_t *grown = realloc(types, cap * sizeof(*types));
            if (grown == NULL)
                abort();
            types = grown;
        }
        data_set_t *ds = &types[n_types];
        memset(ds, 0, sizeof(*ds));
        sstrncpy(ds->type, name, sizeof(ds->type));
        for (char *spec = strtok_r(NULL, ", \t\r\n", &save); spec != NULL;
             spec = strtok_r(NULL, ", \t\r\n", &save)) {
            data_source_t *grown = realloc(ds->ds, (ds->ds_num + 1) * sizeof(*grown));
            if (grown == NULL)
                abort();
            ds->ds = grown;
            if (parse_ds(spec, &ds->ds[ds->ds_num]) != 0) {
                fprintf(stderr, "plugin_host: types.db '%s' line %u is not understood.\n", path,
                        lineno);
                fclose(f);
                return -1;
            }
            ds->ds_num++;
        }
        n_types++;
    }
    fclose(f);
    qsort(types, n_types, sizeof(*types), compare_type);
    return 0;
}

const data_set_t *plugin_get_ds(const char *name)
{
    data_set_t key;
    sstrncpy(key.type, name, sizeof(key.type));
    return bsearch(&key, types, n_types, sizeof(*types), compare_type);
}

/* ---- utilities plugins import (collectd's utils/common) ---- */

char *sstrncpy(char *dest, const char *src, size_t n)
{
    if (n == 0)
        return dest;
    size_t len = strnlen(src, n - 1);
    memcpy(dest, src, len);
    dest[len] = '\0';
    return dest;
}

int ssnprintf(char *str, size_t size, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int status = vsnprintf(str, size, format, ap);
    va_end(ap);
    return status;
}

char *ssnprintf_alloc(char const *format, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, format);
    int status = vasprintf(&out, format, ap);
    va_end(ap);
    return status < 0 ? NULL : out;
}

static void out_of_memory(void)
{
    fprintf(stderr, "plugin_host: out of memory.\n");
    abort();
}

char *sstrdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *copy = strdup(s);
    if (copy == NULL)
        out_of_memory();
    return copy;
}

char *sstrndup(const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *copy = strndup(s, n);
    if (copy == NULL)
        out_of_memory();
    return copy;
}

void *smalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL)
        out_of_memory();
    return p;
}

char *sstrerror(int errnum, char *buf, size_t buflen)
{
    sstrncpy(buf, strerror(errnum), buflen);
    return buf;
}

int strsplit(char *string, char **fields, size_t size)
{
    size_t i = 0;
    char *ptr = string, *save = NULL;
    while ((fields[i] = strtok_r(ptr, " \t\r\n", &save)) != NULL) {
        ptr = NULL;
        i++;
        if (i >= size)
            break;
    }
    return (int)i;
}

int strjoin(char *dst, size_t dst_len, char **fields, size_t fields_num, const char *sep)
{
    size_t len = 0;
    if (dst_len == 0)
        return -1;
    dst[0] = '\0';
    for (size_t i = 0; i < fields_num; i++) {
        int n = snprintf(dst + len, dst_len - len, "%s%s", i > 0 ? sep : "", fields[i]);
        if (n < 0 || (size_t)n >= dst_len - len)
            return -1;
        len += (size_t)n;
    }
    return (int)len;
}

cdtime_t cdtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return TIMESPEC_TO_CDTIME_T(&ts);
}

void hostname_set(char const *hostname)
{
    char *copy = sstrdup(hostname);
    free(hostname_g);
    hostname_g = copy;
}

/* ---- logging ---- */

static const char *level_name(int level)
{
    switch (level) {
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
        return "notice";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

static void vlog_message(int level, const char *prefix, const char *format, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), format, ap);
    if (level <= LOG_ERR)
        atomic_fetch_add(&log_errors, 1);
    if (level > opt.log_level)
        return;
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "[%s] %s%s\n", level_name(level), prefix, msg);
    pthread_mutex_unlock(&log_lock);
}

void plugin_log(int level, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vlog_message(level, "", format, ap);
    va_end(ap);
}

void daemon_log(int level, const char *format, ...)
{
    char prefix[DATA_MAX_NAME_LEN + 4];
    snprintf(prefix, sizeof(prefix), "%s: ", tls_ctx.name ? tls_ctx.name : "plugin_host");
    va_list ap;
    va_start(ap, format);
    vlog_message(level, prefix, format, ap);
    va_end(ap);
}

int parse_log_severity(const char *severity)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"emerg", LOG_ERR},     {"alert", LOG_ERR},   {"crit", LOG_ERR},
                 {"err", LOG_ERR},       {"error", LOG_ERR},   {"warning", LOG_WARNING},
                 {"notice", LOG_NOTICE}, {"info", LOG_INFO},   {"debug", LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(severity, names[i].name) == 0)
            return names[i].level;
    return -1;
}

/* c_complain as in collectd's utils_complain.c: report, then wait at least one interval, doubling
 * the wait up to a day. */
static void vcomplain(int level, c_complain_t *c, const char *format, va_list ap)
{
    cdtime_t now = cdtime();
    if (c->last + c->interval > now)
        return;
    c->last = now;
    cdtime_t interval = plugin_get_interval();
    if (c->interval < interval)
        c->interval = interval;
    else
        c->interval *= 2;
    if (c->interval > TIME_T_TO_CDTIME_T(86400))
        c->interval = TIME_T_TO_CDTIME_T(86400);
    vlog_message(level, "", format, ap);
}

void c_complain(int level, c_complain_t *c, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vcomplain(level, c, format, ap);
    va_end(ap);
}

void c_complain_once(int level, c_complain_t *c, const char *format, ...)
{
    if (c->complained_once)
        return;
    c->complained_once = true;
    va_list ap;
    va_start(ap, format);
    vcomplain(level, c, format, ap);
    va_end(ap);
}

void c_do_release(int level, c_complain_t *c, const char *format, ...)
{
    if (c->interval == 0)
        return;
    c->interval = 0;
    c->complained_once = false;
    va_list ap;
    va_start(ap, format);
    vlog_message(level, "", format, ap);
    va_end(ap);
}

/* ---- plugin context ---- */

plugin_ctx_t plugin_get_ctx(void)
{
    return tls_ctx;
}

plugin_ctx_t plugin_set_ctx(plugin_ctx_t ctx)
{
    plugin_ctx_t old = tls_ctx;
    tls_ctx = ctx;
    return old;
}

void plugin_init_ctx(void)
{
}

cdtime_t plugin_get_interval(void)
{
    if (tls_ctx.interval > 0)
        return tls_ctx.interval;
    return opt.interval;
}

typedef struct thread_start {
    plugin_ctx_t ctx;
    void *(*routine)(void *);
    void *arg;
} thread_start_t;

static void *thread_trampoline(void *p)
{
    thread_start_t start = *(thread_start_t *)p;
    free(p);
    tls_ctx = start.ctx;
    return start.routine(start.arg);
}

int plugin_thread_create(pthread_t *thread, void *(*start_routine)(void *), void *arg,
                         char const *name)
{
    (void)name;
    thread_start_t *start = smalloc(sizeof(*start));
    start->ctx = tls_ctx;
    start->routine = start_routine;
    start->arg = arg;
    int status = pthread_create(thread, NULL, thread_trampoline, start);
    if (status != 0)
        free(start);
    return status;
}

/* ---- registration ---- */

static void *grow(void *array, size_t count, size_t size)
{
    void *grown = realloc(array, (count + 1) * size);
    if (grown == NULL)
        out_of_memory();
    return grown;
}

int plugin_register_config(const char *name, int (*callback)(const char *key, const char *val),
                           const char **keys, int keys_num)
{
    reg.configs = grow(reg.configs, reg.n_configs, sizeof(*reg.configs));
    reg_config_t *c = &reg.configs[reg.n_configs++];
    memset(c, 0, sizeof(*c));
    c->name = sstrdup(name);
    c->simple = callback;
    c->keys = calloc((size_t)keys_num + 1, sizeof(*c->keys));
    if (c->keys == NULL)
        out_of_memory();
    for (int i = 0; i < keys_num; i++)
        c->keys[i] = sstrdup(keys[i]);
    c->keys_num = keys_num;
    return 0;
}

int plugin_register_complex_config(const char *type, int (*callback)(oconfig_item_t *))
{
    reg.configs = grow(reg.configs, reg.n_configs, sizeof(*reg.configs));
    reg_config_t *c = &reg.configs[reg.n_configs++];
    memset(c, 0, sizeof(*c));
    c->name = sstrdup(type);
    c->complex = callback;
    return 0;
}

int plugin_register_init(const char *name, plugin_init_cb callback)
{
    reg.inits = grow(reg.inits, reg.n_inits, sizeof(*reg.inits));
    reg.inits[reg.n_inits++] = (reg_named_t){.name = sstrdup(name), .init = callback};
    return 0;
}

int plugin_register_shutdown(const char *name, plugin_shutdown_cb callback)
{
    reg.shutdowns = grow(reg.shutdowns, reg.n_shutdowns, sizeof(*reg.shutdowns));
    reg.shutdowns[reg.n_shutdowns++] = (reg_named_t){.name = sstrdup(name), .shutdown = callback};
    return 0;
}

static int add_read(const char *name, plugin_read_cb complex, int (*simple)(void), cdtime_t interval,
                    user_data_t const *ud)
{
    for (size_t i = 0; i < reg.n_reads; i++) {
        if (strcmp(reg.reads[i].name, name) == 0) {
            /* collectd refuses a second read callback of the same name. */
            plugin_log(LOG_ERR, "plugin_register_read: A read callback named '%s' already exists.",
                       name);
            return -1;
        }
    }
    reg.reads = grow(reg.reads, reg.n_reads, sizeof(*reg.reads));
    reg_read_t *r = &reg.reads[reg.n_reads++];
    memset(r, 0, sizeof(*r));
    r->name = sstrdup(name);
    r->plugin = sstrdup(tls_ctx.name ? tls_ctx.name : name);
    r->complex = complex;
    r->simple = simple;
    r->interval = interval;
    if (ud != NULL)
        r->ud = *ud;
    return 0;
}

int plugin_register_read(const char *name, int (*callback)(void))
{
    return add_read(name, NULL, callback, 0, NULL);
}

int plugin_register_complex_read(const char *group, const char *name, plugin_read_cb callback,
                                 cdtime_t interval, user_data_t const *user_data)
{
    (void)group;
    return add_read(name, callback, NULL, interval, user_data);
}

static int keep_user_data(user_data_t const *ud)
{
    if (ud == NULL)
        return 0;
    reg.other_ud = grow(reg.other_ud, reg.n_other_ud, sizeof(*reg.other_ud));
    reg.other_ud[reg.n_other_ud++] = *ud;
    return 0;
}

/* Callbacks a read benchmark never calls: accepted, their user data kept to be freed at exit. */
#define ACCEPT_REGISTER(what, cb_type)                                                             \
    int plugin_register_##what(const char *name, cb_type callback, user_data_t const *ud)          \
    {                                                                                              \
        (void)name;                                                                                \
        (void)callback;                                                                            \
        return keep_user_data(ud);                                                                 \
    }
ACCEPT_REGISTER(write, plugin_write_cb)
ACCEPT_REGISTER(flush, plugin_flush_cb)
ACCEPT_REGISTER(missing, plugin_missing_cb)
ACCEPT_REGISTER(log, plugin_log_cb)
ACCEPT_REGISTER(notification, plugin_notification_cb)

int plugin_register_data_set(const data_set_t *ds)
{
    (void)ds;
    return 0;
}

int plugin_unregister_read(const char *name)
{
    for (size_t i = 0; i < reg.n_reads; i++) {
        if (strcmp(reg.reads[i].name, name) == 0) {
            if (reg.reads[i].ud.free_func != NULL)
                reg.reads[i].ud.free_func(reg.reads[i].ud.data);
            free(reg.reads[i].name);
            free(reg.reads[i].plugin);
            reg.reads[i] = reg.reads[--reg.n_reads];
            return 0;
        }
    }
    return -ENOENT;
}

/* Nothing is unregistered before exit but read callbacks: the others are accepted and kept. */
#define ACCEPT_UNREGISTER(what)                                                                    \
    int plugin_unregister_##what(const char *name)                                                 \
    {                                                                                              \
        (void)name;                                                                                \
        return 0;                                                                                  \
    }
ACCEPT_UNREGISTER(init)
ACCEPT_UNREGISTER(shutdown)
ACCEPT_UNREGISTER(config)
ACCEPT_UNREGISTER(complex_config)

/* ---- configuration helpers (collectd's configfile.c) ---- */

int cf_util_get_string(const oconfig_item_t *ci, char **ret_string)
{
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_STRING) {
        plugin_log(LOG_ERR, "cf_util_get_string: The %s option requires exactly one string argument.",
                   ci->key);
        return -1;
    }
    char *copy = strdup(ci->values[0].value.string);
    if (copy == NULL)
        return -1;
    free(*ret_string);
    *ret_string = copy;
    return 0;
}

int cf_util_get_string_buffer(const oconfig_item_t *ci, char *buffer, size_t buffer_size)
{
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_STRING) {
        plugin_log(LOG_ERR,
                   "cf_util_get_string_buffer: The %s option requires exactly one string argument.",
                   ci->key);
        return -1;
    }
    sstrncpy(buffer, ci->values[0].value.string, buffer_size);
    return 0;
}

int cf_util_get_double(const oconfig_item_t *ci, double *ret_value)
{
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_NUMBER) {
        plugin_log(LOG_ERR, "cf_util_get_double: The %s option requires exactly one numeric argument.",
                   ci->key);
        return -1;
    }
    *ret_value = ci->values[0].value.number;
    return 0;
}

int cf_util_get_int(const oconfig_item_t *ci, int *ret_value)
{
    double d;
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_NUMBER) {
        plugin_log(LOG_ERR, "cf_util_get_int: The %s option requires exactly one numeric argument.",
                   ci->key);
        return -1;
    }
    d = ci->values[0].value.number;
    *ret_value = (int)d;
    return 0;
}

int cf_util_get_boolean(const oconfig_item_t *ci, bool *ret_bool)
{
    if (ci->values_num != 1) {
        plugin_log(LOG_ERR, "cf_util_get_boolean: The %s option requires exactly one boolean argument.",
                   ci->key);
        return -1;
    }
    const oconfig_value_t *v = &ci->values[0];
    if (v->type == OCONFIG_TYPE_BOOLEAN) {
        *ret_bool = v->value.boolean != 0;
        return 0;
    }
    if (v->type == OCONFIG_TYPE_STRING) {
        /* collectd accepts a quoted boolean with a warning. */
        if (IS_TRUE(v->value.string)) {
            *ret_bool = true;
        } else if (IS_FALSE(v->value.string)) {
            *ret_bool = false;
        } else {
            plugin_log(LOG_ERR, "cf_util_get_boolean: Cannot parse string value '%s' of the %s option "
                                "as a boolean value.",
                       v->value.string, ci->key);
            return -1;
        }
        plugin_log(LOG_WARNING, "cf_util_get_boolean: Using string value '%s' for boolean option %s "
                                "is deprecated.",
                   v->value.string, ci->key);
        return 0;
    }
    plugin_log(LOG_ERR, "cf_util_get_boolean: The %s option requires exactly one boolean argument.",
               ci->key);
    return -1;
}

int cf_util_get_flag(const oconfig_item_t *ci, unsigned int *ret_value, unsigned int flag)
{
    bool b = false;
    if (cf_util_get_boolean(ci, &b) != 0)
        return -1;
    if (b)
        *ret_value |= flag;
    else
        *ret_value &= ~flag;
    return 0;
}

int cf_util_get_port_number(const oconfig_item_t *ci)
{
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_NUMBER)
        return -1;
    int port = (int)ci->values[0].value.number;
    return port >= 1 && port <= 65535 ? port : -1;
}

int cf_util_get_service(const oconfig_item_t *ci, char **ret_string)
{
    if (ci->values_num != 1)
        return -1;
    if (ci->values[0].type == OCONFIG_TYPE_STRING)
        return cf_util_get_string(ci, ret_string);
    char buf[16];
    int port = cf_util_get_port_number(ci);
    if (port < 0)
        return -1;
    snprintf(buf, sizeof(buf), "%d", port);
    free(*ret_string);
    *ret_string = sstrdup(buf);
    return 0;
}

int cf_util_get_cdtime(const oconfig_item_t *ci, cdtime_t *ret_value)
{
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_NUMBER ||
        ci->values[0].value.number < 0) {
        plugin_log(LOG_ERR, "cf_util_get_cdtime: The %s option requires exactly one non-negative "
                            "numeric argument.",
                   ci->key);
        return -1;
    }
    *ret_value = DOUBLE_TO_CDTIME_T(ci->values[0].value.number);
    return 0;
}

cdtime_t cf_get_default_interval(void)
{
    return opt.interval;
}

/* ---- notifications ---- */

/* A NULL field stays empty. */
static void set_field(char *field, size_t size, const char *value)
{
    if (value != NULL)
        sstrncpy(field, value, size);
}

int notification_init(notification_t *n, int severity, const char *message, const char *host,
                      const char *plugin, const char *plugin_instance, const char *type,
                      const char *type_instance)
{
    memset(n, 0, sizeof(*n));
    n->severity = severity;
    set_field(n->message, sizeof(n->message), message);
    set_field(n->host, sizeof(n->host), host);
    set_field(n->plugin, sizeof(n->plugin), plugin);
    set_field(n->plugin_instance, sizeof(n->plugin_instance), plugin_instance);
    set_field(n->type, sizeof(n->type), type);
    set_field(n->type_instance, sizeof(n->type_instance), type_instance);
    return 0;
}

static notification_meta_t *meta_append(notification_t *n, const char *name,
                                        enum notification_meta_type_e type)
{
    notification_meta_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    sstrncpy(m->name, name, sizeof(m->name));
    m->type = type;
    notification_meta_t **tail = &n->meta;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = m;
    return m;
}

int plugin_notification_meta_add_string(notification_t *n, const char *name, const char *value)
{
    if (n == NULL || name == NULL || value == NULL)
        return -1;
    char *copy = strdup(value);
    if (copy == NULL)
        return -1;
    notification_meta_t *m = meta_append(n, name, NM_TYPE_STRING);
    if (m == NULL) {
        free(copy);
        return -1;
    }
    m->nm_value.nm_string = copy;
    return 0;
}

/* Appends value's type and value under the given name. Not for a string, which
 * plugin_notification_meta_add_string copies. */
static int meta_add(notification_t *n, const char *name, const notification_meta_t *value)
{
    notification_meta_t *m = n && name ? meta_append(n, name, value->type) : NULL;
    if (m == NULL)
        return -1;
    m->nm_value = value->nm_value;
    return 0;
}

#define META_ADD(what, c_type, meta_type, member)                                                  \
    int plugin_notification_meta_add_##what(notification_t *n, const char *name, c_type value)    \
    {                                                                                              \
        notification_meta_t m = {.type = meta_type, .nm_value.member = value};                    \
        return meta_add(n, name, &m);                                                              \
    }
META_ADD(signed_int, int64_t, NM_TYPE_SIGNED_INT, nm_signed_int)
META_ADD(unsigned_int, uint64_t, NM_TYPE_UNSIGNED_INT, nm_unsigned_int)
META_ADD(double, double, NM_TYPE_DOUBLE, nm_double)
META_ADD(boolean, bool, NM_TYPE_BOOLEAN, nm_boolean)

int plugin_notification_meta_free(notification_meta_t *n)
{
    while (n != NULL) {
        notification_meta_t *next = n->next;
        if (n->type == NM_TYPE_STRING)
            free((char *)n->nm_value.nm_string);
        free(n);
        n = next;
    }
    return 0;
}

int plugin_notification_meta_copy(notification_t *dst, const notification_t *src)
{
    for (const notification_meta_t *m = src->meta; m != NULL; m = m->next) {
        int status = m->type == NM_TYPE_STRING
                         ? plugin_notification_meta_add_string(dst, m->name, m->nm_value.nm_string)
                         : meta_add(dst, m->name, m);
        if (status != 0)
            return status;
    }
    return 0;
}

int plugin_dispatch_notification(const notification_t *n)
{
    if (n == NULL || (n->severity != NOTIF_FAILURE && n->severity != NOTIF_WARNING &&
                      n->severity != NOTIF_OKAY)) {
        plugin_log(LOG_ERR, "plugin_dispatch_notification: The severity is not one of "
                            "NOTIF_FAILURE, NOTIF_WARNING and NOTIF_OKAY.");
        atomic_fetch_add(&n_errors, 1);
        return -1;
    }
    atomic_fetch_add(&n_notifications, 1);
    if (opt.dump) {
        pthread_mutex_lock(&log_lock);
        printf("NOTIFY severity=%d host=%s plugin=%s plugin_instance=%s type=%s type_instance=%s "
               "message=\"%s\"\n",
               n->severity, n->host, n->plugin, n->plugin_instance, n->type, n->type_instance,
               n->message);
        pthread_mutex_unlock(&log_lock);
    }
    return 0;
}

/* ---- value dispatch ---- */

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static void set_insert_locked(uint64_t h)
{
    if (h == 0)
        h = 1; /* 0 marks an empty slot */
    if (2 * (set_count + 1) > set_cap) {
        size_t cap = set_cap ? 2 * set_cap : 1024;
        uint64_t *slots = calloc(cap, sizeof(*slots));
        if (slots == NULL)
            out_of_memory();
        for (size_t i = 0; i < set_cap; i++) {
            if (set_slots[i] == 0)
                continue;
            size_t j = set_slots[i] & (cap - 1);
            while (slots[j] != 0)
                j = (j + 1) & (cap - 1);
            slots[j] = set_slots[i];
        }
        free(set_slots);
        set_slots = slots;
        set_cap = cap;
    }
    size_t j = h & (set_cap - 1);
    while (set_slots[j] != 0) {
        if (set_slots[j] == h)
            return;
        j = (j + 1) & (set_cap - 1);
    }
    set_slots[j] = h;
    set_count++;
}

static void note_source(const char *host, const char *plugin_instance)
{
    char key[sizeof(tls_last_source)];
    snprintf(key, sizeof(key), "%s/%s", host, plugin_instance);
    unsigned gen = atomic_load(&cycle_gen);
    if (tls_gen == gen && strcmp(key, tls_last_source) == 0)
        return;
    tls_gen = gen;
    memcpy(tls_last_source, key, sizeof(key));
    uint64_t h = fnv1a(key, UINT64_C(0xcbf29ce484222325));
    pthread_mutex_lock(&set_lock);
    set_insert_locked(h);
    pthread_mutex_unlock(&set_lock);
}

static void reset_sources(void)
{
    pthread_mutex_lock(&set_lock);
    if (set_slots != NULL)
        memset(set_slots, 0, set_cap * sizeof(*set_slots));
    set_count = 0;
    pthread_mutex_unlock(&set_lock);
    atomic_fetch_add(&cycle_gen, 1);
}

static int refuse(const char *why, const value_list_t *vl)
{
    plugin_log(LOG_ERR, "plugin_dispatch_values: %s (plugin '%s', type '%s').", why,
               vl ? vl->plugin : "", vl ? vl->type : "");
    atomic_fetch_add(&n_errors, 1);
    return -1;
}

int plugin_dispatch_values(value_list_t const *vl)
{
    if (vl == NULL || vl->values == NULL || vl->values_len == 0)
        return refuse("A value list without values was dispatched", vl);
    if (vl->plugin[0] == '\0' || vl->type[0] == '\0')
        return refuse("A value list without a plugin or type name was dispatched", vl);
    const data_set_t *ds = plugin_get_ds(vl->type);
    if (ds == NULL)
        return refuse("The type is not in types.db", vl);
    if (ds->ds_num != vl->values_len)
        return refuse("The number of values does not match the type's data sources in types.db", vl);
    for (size_t i = 0; i < ds->ds_num; i++) {
        /* A GAUGE filled through .derive reads as a subnormal double: a real gauge never is one. */
        if (ds->ds[i].type == DS_TYPE_GAUGE && fpclassify(vl->values[i].gauge) == FP_SUBNORMAL)
            return refuse("A GAUGE value holds an integer bit pattern (was .derive filled instead of "
                          ".gauge?)",
                          vl);
    }

    const char *host = vl->host[0] != '\0' ? vl->host : hostname_g;
    note_source(host, vl->plugin_instance);
    atomic_fetch_add(&n_value_lists, 1);
    atomic_fetch_add(&n_values, vl->values_len);

    if (opt.dump) {
        char line[1024];
        int len = snprintf(line, sizeof(line), "PUTVAL %s/%s%s%s/%s%s%s", host, vl->plugin,
                           vl->plugin_instance[0] ? "-" : "", vl->plugin_instance, vl->type,
                           vl->type_instance[0] ? "-" : "", vl->type_instance);
        for (size_t i = 0; i < vl->values_len && len > 0 && (size_t)len < sizeof(line); i++) {
            if (ds->ds[i].type == DS_TYPE_GAUGE)
                len += snprintf(line + len, sizeof(line) - (size_t)len, " %g", vl->values[i].gauge);
            else if (ds->ds[i].type == DS_TYPE_DERIVE)
                len += snprintf(line + len, sizeof(line) - (size_t)len, " %" PRId64,
                                vl->values[i].derive);
            else
                len += snprintf(line + len, sizeof(line) - (size_t)len, " %" PRIu64,
                                (uint64_t)vl->values[i].absolute);
        }
        pthread_mutex_lock(&log_lock);
        puts(line);
        pthread_mutex_unlock(&log_lock);
    }
    return 0;
}

/* ---- the read pool: collectd's ReadThreads, one cycle at a time ---- */

static bench_pool_t *pool;
static atomic_uint_fast64_t read_failures;

static void run_read(void *arg, size_t i)
{
    reg_read_t *r = &reg.reads[i];
    (void)arg;
    plugin_ctx_t ctx = {.name = r->plugin, .interval = r->interval ? r->interval : opt.interval};
    plugin_ctx_t old = plugin_set_ctx(ctx);
    int status = r->complex != NULL ? r->complex(&r->ud) : r->simple();
    plugin_set_ctx(old);
    if (status != 0) {
        plugin_log(LOG_WARNING, "plugin_host: The read callback '%s' returned %d.", r->name, status);
        atomic_fetch_add(&read_failures, 1);
    }
}

/* Cycle i, after the pause between cycles (arg: the pause in ms). */
static void run_cycle(void *arg, unsigned i, bench_cycle_t *out)
{
    unsigned pause_ms = *(const unsigned *)arg;

    if (i > 0 && pause_ms > 0)
        nanosleep(&(struct timespec){pause_ms / 1000, (long)(pause_ms % 1000) * 1000000}, NULL);
    reset_sources();
    atomic_store(&n_value_lists, 0);
    atomic_store(&n_values, 0);
    atomic_store(&n_notifications, 0);
    atomic_store(&n_errors, 0);
    atomic_store(&read_failures, 0);

    bench_pool_timed_cycle(pool, reg.n_reads, out);
    out->value_lists = atomic_load(&n_value_lists);
    out->values = atomic_load(&n_values);
    pthread_mutex_lock(&set_lock);
    out->sources = set_count;
    pthread_mutex_unlock(&set_lock);
    out->notifications = atomic_load(&n_notifications);
    out->errors = atomic_load(&n_errors) + atomic_load(&read_failures);
}

/* -m and -s: what each measured cycle must have dispatched. */
static unsigned long min_lists = 1, min_sources = 1;

static bool check_cycle(void *arg, unsigned k, const bench_cycle_t *cycle)
{
    (void)arg;
    if (cycle->value_lists >= min_lists && cycle->sources >= min_sources && cycle->errors == 0)
        return true;
    fprintf(stderr, "plugin_host: Cycle %u dispatched %" PRIu64 " value lists for %" PRIu64
                    " sources with %" PRIu64 " errors; at least %lu value lists for %lu "
                    "sources and no errors were required.\n",
            k, cycle->value_lists, cycle->sources, cycle->errors, min_lists, min_sources);
    return false;
}

/* ---- configuration dispatch (collectd's configfile.c, for one plugin block) ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A simple config callback gets each option as "key", "value value..." with numbers printed by
 * "%lf" and booleans as "true"/"false", as collectd does. */
static int dispatch_simple(reg_config_t *c, const oconfig_item_t *item)
{
    char value[4096];
    size_t len = 0;
    bool allowed = false;
    for (int i = 0; i < c->keys_num; i++)
        if (strcasecmp(c->keys[i], item->key) == 0)
            allowed = true;
    if (!allowed) {
        plugin_log(LOG_ERR, "Plugin '%s' did not register for value '%s'.", c->name, item->key);
        return -1;
    }
    value[0] = '\0';
    for (int i = 0; i < item->values_num; i++) {
        const oconfig_value_t *v = &item->values[i];
        int n;
        if (v->type == OCONFIG_TYPE_STRING)
            n = snprintf(value + len, sizeof(value) - len, "%s%s", i ? " " : "", v->value.string);
        else if (v->type == OCONFIG_TYPE_NUMBER)
            n = snprintf(value + len, sizeof(value) - len, "%s%lf", i ? " " : "", v->value.number);
        else
            n = snprintf(value + len, sizeof(value) - len, "%s%s", i ? " " : "",
                         v->value.boolean ? "true" : "false");
        if (n < 0 || (size_t)n >= sizeof(value) - len)
            return -1;
        len += (size_t)n;
    }
    return c->simple(item->key, value);
}

static int configure(const char *name, oconfig_item_t *block)
{
    reg_config_t *c = NULL;
    for (size_t i = 0; i < reg.n_configs; i++)
        if (strcasecmp(reg.configs[i].name, name) == 0)
            c = &reg.configs[i];
    if (c == NULL) {
        if (block->children_num == 0)
            return 0;
        fprintf(stderr, "plugin_host: The plugin '%s' registered no config callback, but a "
                        "configuration was given.\n",
                name);
        return -1;
    }
    plugin_ctx_t ctx = {.name = (char *)name, .interval = opt.interval};
    plugin_ctx_t old = plugin_set_ctx(ctx);
    int status = 0;
    if (c->complex != NULL) {
        status = c->complex(block);
    } else {
        for (int i = 0; i < block->children_num && status == 0; i++)
            status = dispatch_simple(c, &block->children[i]);
    }
    plugin_set_ctx(old);
    if (status != 0)
        fprintf(stderr, "plugin_host: The configuration of plugin '%s' failed (%d).\n", name, status);
    return status;
}

/* ---- main ---- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: plugin_host [options] PLUGIN.so\n"
            "  -n NAME     plugin name (default: the file name without .so)\n"
            "  -c FILE     the <Plugin NAME> block's body, in collectd.conf syntax\n"
            "  -o LINE     one more line of that body (repeatable), e.g. -o 'Connection \"test:///default\"'\n"
            "  -k N        measured read cycles (default 5)\n"
            "  -w N        warm-up cycles before them, not measured (default 1)\n"
            "  -t N        read threads (collectd's ReadThreads, default 5)\n"
            "  -i SECONDS  the interval plugins are told (default 10)\n"
            "  -p MS       pause between cycles (default 0)\n"
            "  -m N        fail unless each measured cycle dispatched at least N value lists (default 1)\n"
            "  -s N        fail unless each measured cycle covered at least N sources (default 1)\n"
            "  -T FILE     types.db (default /usr/share/collectd/types.db)\n"
            "  -d          print every dispatched value and notification\n"
            "  -v / -q     more / less logging\n");
}

int main(int argc, char **argv)
{
    const char *name = NULL, *config_file = NULL;
    const char *types_db = "/usr/share/collectd/types.db";
    char *extra = NULL;
    size_t extra_len = 0;
    bench_run_opts_t run = BENCH_RUN_OPTS_DEFAULT;
    unsigned threads = 5, pause_ms = 0;
    double interval_s = 10;
    int c;

    while ((c = bench_run_getopt(argc, argv, "n:c:o:t:i:p:m:T:dvq", &run, usage)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'o': {
            size_t n = strlen(optarg);
            char *grown = realloc(extra, extra_len + n + 2);
            if (grown == NULL)
                out_of_memory();
            extra = grown;
            memcpy(extra + extra_len, optarg, n);
            extra_len += n;
            extra[extra_len++] = '\n';
            extra[extra_len] = '\0';
            break;
        }
        case 't':
            threads = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            interval_s = atof(optarg);
            break;
        case 'p':
            pause_ms = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            min_lists = strtoul(optarg, NULL, 10);
            break;
        case 'T':
            types_db = optarg;
            break;
        case 'd':
            opt.dump = true;
            break;
        case 'v':
            opt.log_level = LOG_DEBUG;
            break;
        case 'q':
            opt.log_level = LOG_ERR;
            break;
        }
    }
    min_sources = run.min_sources;
    if (optind + 1 != argc || run.cycles == 0 || threads == 0 || interval_s <= 0) {
        usage(stderr);
        return 2;
    }
    const char *so = argv[optind];
    char name_buf[DATA_MAX_NAME_LEN];
    if (name == NULL) {
        const char *base = strrchr(so, '/');
        sstrncpy(name_buf, base ? base + 1 : so, sizeof(name_buf));
        char *dot = strstr(name_buf, ".so");
        if (dot != NULL)
            *dot = '\0';
        name = name_buf;
    }

    opt.interval = DOUBLE_TO_CDTIME_T(interval_s);
    interval_g = opt.interval;
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        sstrncpy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    hostname_set(host);
    if (load_types(types_db) != 0)
        return 2;

    /* The config text: the file, then the -o lines. */
    size_t text_len = 0;
    char *text = NULL;
    if (config_file != NULL) {
        text = read_file(config_file, &text_len);
        if (text == NULL) {
            fprintf(stderr, "plugin_host: cannot read the config file '%s'.\n", config_file);
            return 2;
        }
    }
    if (extra != NULL) {
        char *joined = realloc(text, text_len + extra_len + 2);
        if (joined == NULL)
            out_of_memory();
        text = joined;
        if (text_len > 0 && text[text_len - 1] != '\n')
            text[text_len++] = '\n';
        memcpy(text + text_len, extra, extra_len + 1);
        text_len += extra_len;
    }
    char err[512];
    oconfig_item_t *block = bench_config_parse(text ? text : "", text_len, "Plugin", name, err,
                                               sizeof(err));
    free(text);
    free(extra);
    if (block == NULL) {
        fprintf(stderr, "plugin_host: %s\n", err);
        return 2;
    }

    /* collectd: dlopen with RTLD_NOW, then module_register() in the plugin's context. */
    void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "plugin_host: dlopen of '%s' failed: %s\n", so, dlerror());
        return 2;
    }
    void (*reg_fn)(void);
    *(void **)&reg_fn = dlsym(dl, "module_register");
    if (reg_fn == NULL) {
        fprintf(stderr, "plugin_host: '%s' has no module_register.\n", so);
        return 2;
    }
    plugin_ctx_t ctx = {.name = (char *)name, .interval = opt.interval};
    plugin_set_ctx(ctx);
    reg_fn();

    int rc = 1;
    int64_t t0 = bench_wall_ns();
    if (configure(name, block) != 0)
        goto out;
    for (size_t i = 0; i < reg.n_inits; i++) {
        if (reg.inits[i].init() != 0) {
            fprintf(stderr, "plugin_host: Initialization of plugin '%s' failed.\n", reg.inits[i].name);
            goto shutdown;
        }
    }
    double init_ms = (double)(bench_wall_ns() - t0) / 1e6;
    plugin_set_ctx((plugin_ctx_t){0});
    if (reg.n_reads == 0) {
        fprintf(stderr, "plugin_host: The plugin '%s' registered no read callback.\n", name);
        goto shutdown;
    }
    pool = bench_pool_new(threads < reg.n_reads ? threads : (unsigned)reg.n_reads, run_read, NULL);
    if (pool == NULL) {
        fprintf(stderr, "plugin_host: Cannot start the read threads.\n");
        return 2;
    }

    bench_run_result_t result;
    if (bench_run_cycles(&run, run_cycle, check_cycle, &pause_ms, &result) != 0)
        out_of_memory();
    bench_pool_free(pool);
    printf("result plugin %s read_callbacks %zu init_ms %.3f cycles %u median_wall_ms %.3f "
           "median_cpu_ms %.3f median_sources %.0f peak_rss_kib %ld log_errors %" PRIu64 " failed_cycles %u\n",
           name, reg.n_reads, init_ms, run.cycles, result.median_wall_ms, result.median_cpu_ms,
           result.median_sources, bench_peak_rss_kib(), (uint64_t)atomic_load(&log_errors),
           result.failed_cycles);
    rc = result.failed_cycles > 0 ? 1 : 0;

shutdown:
    for (size_t i = 0; i < reg.n_shutdowns; i++) {
        plugin_ctx_t sctx = {.name = reg.shutdowns[i].name, .interval = opt.interval};
        plugin_set_ctx(sctx);
        if (reg.shutdowns[i].shutdown() != 0)
            fprintf(stderr, "plugin_host: Shutdown of plugin '%s' failed.\n", reg.shutdowns[i].name);
    }
out:
    /* Free what collectd would free at exit; the plugin stays loaded, as in collectd. */
    while (reg.n_reads > 0)
        plugin_unregister_read(reg.reads[0].name);
    for (size_t i = 0; i < reg.n_other_ud; i++)
        if (reg.other_ud[i].free_func != NULL)
            reg.other_ud[i].free_func(reg.other_ud[i].data);
    for (size_t i = 0; i < reg.n_configs; i++) {
        for (int k = 0; k < reg.configs[i].keys_num; k++)
            free(reg.configs[i].keys[k]);
        free(reg.configs[i].keys);
        free(reg.configs[i].name);
    }
    for (size_t i = 0; i < reg.n_inits; i++)
        free(reg.inits[i].name);
    for (size_t i = 0; i < reg.n_shutdowns; i++)
        free(reg.shutdowns[i].name);
    free(reg.configs);
    free(reg.reads);
    free(reg.inits);
    free(reg.shutdowns);
    free(reg.other_ud);
    for (size_t i = 0; i < n_types; i++)
        free(types[i].ds);
    free(types);
    free(set_slots);
    free(hostname_g);
    bench_config_free(block);
    return rc;
}
