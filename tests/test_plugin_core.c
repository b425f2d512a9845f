/* The fake collectd core (see test_plugin_core.h). Behaves like collectd 5.12 where the plugin can
 * tell: plugin_dispatch_values refuses a type that is not in types.db or has the wrong number of
 * values, and, as collectd's cache (uc_update) does, a value not newer than the last one of its
 * identifier; c_complain doubles its interval from plugin_get_interval, cf_util_get_boolean takes
 * "true"/"yes"/"on" strings with a warning that they are deprecated. */
#include "tests/test_plugin_core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/daemon/utils_complain.h"
#include "core/utils/common/common.h"

#ifndef FC_TYPESDB
#define FC_TYPESDB "/usr/share/collectd/types.db"
#endif

/* The daemon's globals that plugins read. */
char *hostname_g;
cdtime_t interval_g;

/* collectd's value cache: the last time of each identifier. */
typedef struct fc_cached {
    uint64_t hash;
    char name[5 * DATA_MAX_NAME_LEN];
    cdtime_t last;
} fc_cached_t;

typedef struct fc_read {
    char name[DATA_MAX_NAME_LEN];
    plugin_read_cb cb;
    cdtime_t interval;
    user_data_t ud;
} fc_read_t;

static struct {
    int (*config_cb)(oconfig_item_t *);
    plugin_init_cb init_cb;
    plugin_shutdown_cb shutdown_cb;
    fc_read_t *reads;
    size_t n_reads;

    fc_value_list_t *values;
    size_t n_values;
    notification_t *notifications;
    size_t n_notifications;
    fc_log_t *logs;
    size_t n_logs;

    oconfig_item_t **blocks;
    size_t n_blocks;

    fc_cached_t *cache;
    size_t n_cache;
    size_t *slots; /* open addressing over cache: index + 1, 0 empty; a power of two of them */
    size_t n_slots;

    cdtime_t now;
    cdtime_t interval;
    char hostname[DATA_MAX_NAME_LEN];
} fc;

/* Room for one more element after the n an array holds: it grows by doubling from 16, so that
 * appending stays linear, under valgrind too, whose realloc always copies. */
static void *fc_grow(void *array, size_t n, size_t size)
{
    void *p;

    if (n != 0 && (n < 16 || (n & (n - 1)) != 0))
        return array; /* room left */
    p = realloc(array, (n < 16 ? 16 : 2 * n) * size);
    if (p == NULL) {
        fprintf(stderr, "fake collectd: out of memory\n");
        abort();
    }
    return p;
}

static void fc_free_item(oconfig_item_t *ci)
{
    for (int i = 0; i < ci->values_num; i++) {
        if (ci->values[i].type == OCONFIG_TYPE_STRING)
            free(ci->values[i].value.string);
    }
    free(ci->values);
    free(ci->key);
    for (int i = 0; i < ci->children_num; i++)
        fc_free_item(&ci->children[i]);
    free(ci->children);
}

static void fc_free_reads(void)
{
    for (size_t i = 0; i < fc.n_reads; i++) {
        if (fc.reads[i].ud.free_func != NULL)
            fc.reads[i].ud.free_func(fc.reads[i].ud.data);
    }
    free(fc.reads);
    fc.reads = NULL;
    fc.n_reads = 0;
}

void fc_clear_records(void)
{
    free(fc.values);
    fc.values = NULL;
    fc.n_values = 0;
    free(fc.notifications);
    fc.notifications = NULL;
    fc.n_notifications = 0;
    free(fc.logs);
    fc.logs = NULL;
    fc.n_logs = 0;
}

void fc_reset(void)
{
    fc_free_reads();
    fc_clear_records();
    for (size_t i = 0; i < fc.n_blocks; i++) {
        fc_free_item(fc.blocks[i]);
        free(fc.blocks[i]);
    }
    free(fc.blocks);
    fc.blocks = NULL;
    fc.n_blocks = 0;
    free(fc.cache);
    fc.cache = NULL;
    fc.n_cache = 0;
    free(fc.slots);
    fc.slots = NULL;
    fc.n_slots = 0;
    fc.config_cb = NULL;
    fc.init_cb = NULL;
    fc.shutdown_cb = NULL;
    fc.now = TIME_T_TO_CDTIME_T(1700000000);
    fc.interval = TIME_T_TO_CDTIME_T(10);
    interval_g = fc.interval;
    snprintf(fc.hostname, sizeof(fc.hostname), "testhost");
    hostname_g = fc.hostname;
}

void fc_set_time(cdtime_t now)
{
    fc.now = now;
}

void fc_set_interval(cdtime_t interval)
{
    fc.interval = interval;
}

int fc_config(oconfig_item_t *block)
{
    return fc.config_cb != NULL ? fc.config_cb(block) : -ENOENT;
}

int fc_init(void)
{
    return fc.init_cb != NULL ? fc.init_cb() : -ENOENT;
}

int fc_read(size_t i)
{
    return i < fc.n_reads ? fc.reads[i].cb(&fc.reads[i].ud) : -ENOENT;
}

int fc_shutdown(void)
{
    int ret = fc.shutdown_cb != NULL ? fc.shutdown_cb() : -ENOENT;

    /* As the daemon does after the shutdown callbacks. */
    fc_free_reads();
    return ret;
}

size_t fc_n_reads(void)
{
    return fc.n_reads;
}

const char *fc_read_name(size_t i)
{
    return i < fc.n_reads ? fc.reads[i].name : NULL;
}

cdtime_t fc_read_interval(size_t i)
{
    return i < fc.n_reads ? fc.reads[i].interval : 0;
}

bool fc_has_config_callback(void)
{
    return fc.config_cb != NULL;
}

size_t fc_n_values(void)
{
    return fc.n_values;
}

const fc_value_list_t *fc_value(size_t i)
{
    return i < fc.n_values ? &fc.values[i] : NULL;
}

const fc_value_list_t *fc_find_value(const char *plugin_instance, const char *type,
                                     const char *type_instance)
{
    for (size_t i = fc.n_values; i-- > 0;) {
        const value_list_t *vl = &fc.values[i].vl;

        if (strcmp(vl->plugin_instance, plugin_instance) == 0 && strcmp(vl->type, type) == 0
            && strcmp(vl->type_instance, type_instance) == 0)
            return &fc.values[i];
    }
    return NULL;
}

size_t fc_count_values(const char *plugin_instance, const char *type, const char *type_instance)
{
    size_t n = 0;

    for (size_t i = 0; i < fc.n_values; i++) {
        const value_list_t *vl = &fc.values[i].vl;

        if ((plugin_instance == NULL || strcmp(vl->plugin_instance, plugin_instance) == 0)
            && (type == NULL || strcmp(vl->type, type) == 0)
            && (type_instance == NULL || strcmp(vl->type_instance, type_instance) == 0))
            n++;
    }
    return n;
}

size_t fc_n_notifications(void)
{
    return fc.n_notifications;
}

const notification_t *fc_notification(size_t i)
{
    return i < fc.n_notifications ? &fc.notifications[i] : NULL;
}

size_t fc_n_logs(void)
{
    return fc.n_logs;
}

const fc_log_t *fc_log(size_t i)
{
    return i < fc.n_logs ? &fc.logs[i] : NULL;
}

size_t fc_count_logs(int level, ...)
{
    size_t n = 0;

    for (size_t i = 0; i < fc.n_logs; i++) {
        bool match = level < 0 || fc.logs[i].level == level;
        const char *needle;
        va_list ap;

        va_start(ap, level);
        while (match && (needle = va_arg(ap, const char *)) != NULL)
            match = strstr(fc.logs[i].message, needle) != NULL;
        va_end(ap);
        n += match;
    }
    return n;
}

void fc_dump_logs(void)
{
    for (size_t i = 0; i < fc.n_logs; i++)
        fprintf(stderr, "log[%d]: %s\n", fc.logs[i].level, fc.logs[i].message);
}

/* ---- oconfig trees ---- */

oconfig_item_t *fc_block(void)
{
    oconfig_item_t *b = calloc(1, sizeof(*b));

    if (b == NULL)
        abort();
    b->key = strdup("Plugin");
    b->values = calloc(1, sizeof(*b->values));
    if (b->key == NULL || b->values == NULL)
        abort();
    b->values[0].type = OCONFIG_TYPE_STRING;
    b->values[0].value.string = strdup("balloon");
    b->values_num = 1;
    fc.blocks = fc_grow(fc.blocks, fc.n_blocks, sizeof(*fc.blocks));
    fc.blocks[fc.n_blocks++] = b;
    return b;
}

static oconfig_item_t *fc_add(oconfig_item_t *block, const char *key, int n_values)
{
    oconfig_item_t *c;

    block->children = fc_grow(block->children, (size_t)block->children_num, sizeof(*block->children));
    c = &block->children[block->children_num++];
    memset(c, 0, sizeof(*c));
    c->key = strdup(key);
    c->parent = block;
    if (n_values > 0)
        c->values = calloc((size_t)n_values, sizeof(*c->values));
    if (c->key == NULL || (n_values > 0 && c->values == NULL))
        abort();
    c->values_num = n_values;
    return c;
}

static void fc_set_string(oconfig_value_t *v, const char *s)
{
    v->type = OCONFIG_TYPE_STRING;
    v->value.string = strdup(s);
    if (v->value.string == NULL)
        abort();
}

void fc_opt_s(oconfig_item_t *block, const char *key, const char *value)
{
    fc_set_string(&fc_add(block, key, 1)->values[0], value);
}

void fc_opt_ss(oconfig_item_t *block, const char *key, const char *v1, const char *v2)
{
    oconfig_item_t *c = fc_add(block, key, 2);

    fc_set_string(&c->values[0], v1);
    fc_set_string(&c->values[1], v2);
}

void fc_opt_n(oconfig_item_t *block, const char *key, double value)
{
    oconfig_item_t *c = fc_add(block, key, 1);

    c->values[0].type = OCONFIG_TYPE_NUMBER;
    c->values[0].value.number = value;
}

void fc_opt_b(oconfig_item_t *block, const char *key, bool value)
{
    oconfig_item_t *c = fc_add(block, key, 1);

    c->values[0].type = OCONFIG_TYPE_BOOLEAN;
    c->values[0].value.boolean = value;
}

void fc_opt_none(oconfig_item_t *block, const char *key)
{
    fc_add(block, key, 0);
}

/* ---- types.db ---- */

/* Reads the file on every call: it is small and tests are short. */
/* The types looked up so far: types.db does not change while a test runs, and reading it for every
 * value list made a read of thousands of domains slow under valgrind. */
#define FC_KNOWN_TYPES 64
static struct {
    char type[DATA_MAX_NAME_LEN];
    size_t n;
    int ds_types[FC_MAX_VALUES];
} fc_known[FC_KNOWN_TYPES];
static size_t fc_n_known;

static size_t fc_read_type_ds(const char *type, int ds_types[FC_MAX_VALUES]);

size_t fc_type_ds(const char *type, int ds_types[FC_MAX_VALUES])
{
    size_t n;

    for (size_t i = 0; i < fc_n_known; i++) {
        if (strcmp(fc_known[i].type, type) == 0) {
            memcpy(ds_types, fc_known[i].ds_types, sizeof(fc_known[i].ds_types));
            return fc_known[i].n;
        }
    }
    n = fc_read_type_ds(type, ds_types);
    if (fc_n_known < FC_KNOWN_TYPES && strlen(type) < sizeof(fc_known[0].type)) {
        snprintf(fc_known[fc_n_known].type, sizeof(fc_known[0].type), "%s", type);
        fc_known[fc_n_known].n = n;
        memcpy(fc_known[fc_n_known].ds_types, ds_types, sizeof(fc_known[0].ds_types));
        fc_n_known++;
    }
    return n;
}

static size_t fc_read_type_ds(const char *type, int ds_types[FC_MAX_VALUES])
{
    FILE *f = fopen(FC_TYPESDB, "r");
    char line[1024];
    size_t n = 0;

    for (size_t i = 0; i < FC_MAX_VALUES; i++)
        ds_types[i] = -1;
    if (f == NULL)
        return 0;
    while (n == 0 && fgets(line, sizeof(line), f) != NULL) {
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);

        if (tok == NULL || tok[0] == '#' || strcmp(tok, type) != 0)
            continue;
        while ((tok = strtok_r(NULL, " \t\r\n,", &save)) != NULL && n < FC_MAX_VALUES) {
            const char *kind = strchr(tok, ':');

            if (kind == NULL)
                continue;
            kind++;
            ds_types[n++] = strncmp(kind, "GAUGE", 5) == 0    ? DS_TYPE_GAUGE
                            : strncmp(kind, "DERIVE", 6) == 0 ? DS_TYPE_DERIVE
                            : strncmp(kind, "COUNTER", 7) == 0 ? DS_TYPE_COUNTER
                                                               : DS_TYPE_ABSOLUTE;
        }
    }
    fclose(f);
    return n;
}

/* ---- the daemon's API ---- */

cdtime_t cdtime(void)
{
    return fc.now;
}

cdtime_t plugin_get_interval(void)
{
    return fc.interval;
}

char *sstrncpy(char *dest, const char *src, size_t n)
{
    size_t len = n > 0 ? strnlen(src, n - 1) : 0;

    if (n == 0)
        return dest;
    memcpy(dest, src, len);
    dest[len] = '\0';
    return dest;
}

void plugin_log(int level, const char *format, ...)
{
    va_list ap;

    fc.logs = fc_grow(fc.logs, fc.n_logs, sizeof(*fc.logs));
    fc.logs[fc.n_logs].level = level;
    va_start(ap, format);
    vsnprintf(fc.logs[fc.n_logs].message, sizeof(fc.logs[fc.n_logs].message), format, ap);
    va_end(ap);
    fc.n_logs++;
}

int plugin_register_complex_config(const char *type, int (*callback)(oconfig_item_t *))
{
    if (strcmp(type, "balloon") != 0)
        return -1;
    fc.config_cb = callback;
    return 0;
}

int plugin_register_init(const char *name, plugin_init_cb callback)
{
    (void)name;
    fc.init_cb = callback;
    return 0;
}

int plugin_register_shutdown(const char *name, plugin_shutdown_cb callback)
{
    (void)name;
    fc.shutdown_cb = callback;
    return 0;
}

int plugin_register_complex_read(const char *group, const char *name, plugin_read_cb callback,
                                 cdtime_t interval, user_data_t const *user_data)
{
    (void)group;
    for (size_t i = 0; i < fc.n_reads; i++) {
        if (strcmp(fc.reads[i].name, name) == 0) {
            plugin_log(LOG_WARNING, "The read function \"%s\" is already registered.", name);
            return EINVAL;
        }
    }
    fc.reads = fc_grow(fc.reads, fc.n_reads, sizeof(*fc.reads));
    sstrncpy(fc.reads[fc.n_reads].name, name, sizeof(fc.reads[fc.n_reads].name));
    fc.reads[fc.n_reads].cb = callback;
    fc.reads[fc.n_reads].interval = interval != 0 ? interval : fc.interval;
    if (user_data != NULL)
        fc.reads[fc.n_reads].ud = *user_data;
    else
        memset(&fc.reads[fc.n_reads].ud, 0, sizeof(fc.reads[fc.n_reads].ud));
    fc.n_reads++;
    return 0;
}

int plugin_unregister_read(const char *name)
{
    for (size_t i = 0; i < fc.n_reads; i++) {
        if (strcmp(fc.reads[i].name, name) == 0) {
            if (fc.reads[i].ud.free_func != NULL)
                fc.reads[i].ud.free_func(fc.reads[i].ud.data);
            memmove(&fc.reads[i], &fc.reads[i + 1], (fc.n_reads - i - 1) * sizeof(*fc.reads));
            fc.n_reads--;
            return 0;
        }
    }
    return -ENOENT;
}

/* What uc_update checks: false, with collectd's message, when the identifier's last value is not
 * older than this one. collectd fills a time of 0 with the current time. */
static bool fc_cache_update(const value_list_t *vl)
{
    cdtime_t time = vl->time != 0 ? vl->time : fc.now;
    fc_cached_t key = {.hash = 1469598103934665603u};
    size_t i;

    snprintf(key.name, sizeof(key.name), "%s/%s-%s/%s-%s", vl->host[0] != '\0' ? vl->host : hostname_g,
             vl->plugin, vl->plugin_instance, vl->type, vl->type_instance);
    for (const char *c = key.name; *c != '\0'; c++)
        key.hash = (key.hash ^ (unsigned char)*c) * 1099511628211u;
    if (2 * (fc.n_cache + 1) > fc.n_slots) {
        /* Half full at most: rebuilt twice as large. */
        free(fc.slots);
        fc.n_slots = fc.n_slots != 0 ? 2 * fc.n_slots : 64;
        fc.slots = calloc(fc.n_slots, sizeof(*fc.slots));
        if (fc.slots == NULL)
            abort();
        for (size_t k = 0; k < fc.n_cache; k++) {
            size_t j = fc.cache[k].hash & (fc.n_slots - 1);

            while (fc.slots[j] != 0)
                j = (j + 1) & (fc.n_slots - 1);
            fc.slots[j] = k + 1;
        }
    }
    for (i = key.hash & (fc.n_slots - 1); fc.slots[i] != 0; i = (i + 1) & (fc.n_slots - 1)) {
        fc_cached_t *c = &fc.cache[fc.slots[i] - 1];

        if (c->hash != key.hash || strcmp(c->name, key.name) != 0)
            continue;
        if (c->last >= time) {
            plugin_log(LOG_NOTICE, "uc_update: Value too old: name = %s; value time = %.3f; last cache "
                       "update = %.3f;", key.name, CDTIME_T_TO_DOUBLE(time), CDTIME_T_TO_DOUBLE(c->last));
            return false;
        }
        c->last = time;
        return true;
    }
    fc.cache = fc_grow(fc.cache, fc.n_cache, sizeof(*fc.cache));
    key.last = time;
    fc.cache[fc.n_cache++] = key;
    fc.slots[i] = fc.n_cache;
    return true;
}

int plugin_dispatch_values(value_list_t const *vl)
{
    int ds_types[FC_MAX_VALUES];
    size_t n = fc_type_ds(vl->type, ds_types);
    fc_value_list_t *rec;

    if (n == 0) {
        plugin_log(LOG_ERR, "plugin_dispatch_values: Dataset not found: %s (from \"%s\"), check your "
                   "types.db!", vl->type, vl->plugin);
        return -1;
    }
    if (n != vl->values_len || vl->values_len > FC_MAX_VALUES) {
        plugin_log(LOG_ERR, "plugin_dispatch_values: DS number does not match: %s has %zu values, "
                   "%zu given", vl->type, n, vl->values_len);
        return -1;
    }
    if (!fc_cache_update(vl))
        return -1;
    rec = fc.values;
    fc.values = fc_grow(fc.values, fc.n_values, sizeof(*fc.values));
    /* The array may have moved: each record's vl.values points into the record itself. */
    for (size_t i = 0; fc.values != rec && i < fc.n_values; i++)
        fc.values[i].vl.values = fc.values[i].values;
    rec = &fc.values[fc.n_values++];
    rec->vl = *vl;
    memcpy(rec->values, vl->values, vl->values_len * sizeof(*vl->values));
    rec->vl.values = rec->values;
    rec->vl.meta = NULL;
    if (rec->vl.host[0] == '\0')
        sstrncpy(rec->vl.host, hostname_g, sizeof(rec->vl.host));
    if (rec->vl.time == 0)
        rec->vl.time = fc.now;
    if (rec->vl.interval == 0)
        rec->vl.interval = fc.interval;
    return 0;
}

int plugin_dispatch_notification(const notification_t *notif)
{
    fc.notifications = fc_grow(fc.notifications, fc.n_notifications, sizeof(*fc.notifications));
    fc.notifications[fc.n_notifications] = *notif;
    fc.notifications[fc.n_notifications].meta = NULL;
    fc.n_notifications++;
    return 0;
}

int cf_util_get_string(const oconfig_item_t *ci, char **ret_string)
{
    char *s;

    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_STRING) {
        plugin_log(LOG_ERR, "cf_util_get_string: The %s option requires exactly one string argument.",
                   ci->key);
        return -1;
    }
    s = strdup(ci->values[0].value.string);
    if (s == NULL)
        return -1;
    free(*ret_string);
    *ret_string = s;
    return 0;
}

int cf_util_get_boolean(const oconfig_item_t *ci, bool *ret_bool)
{
    const char *s;

    if (ci->values_num != 1
        || (ci->values[0].type != OCONFIG_TYPE_BOOLEAN && ci->values[0].type != OCONFIG_TYPE_STRING)) {
        plugin_log(LOG_ERR, "cf_util_get_boolean: The %s option requires exactly one boolean argument.",
                   ci->key);
        return -1;
    }
    if (ci->values[0].type == OCONFIG_TYPE_BOOLEAN) {
        *ret_bool = ci->values[0].value.boolean != 0;
        return 0;
    }
    s = ci->values[0].value.string;
    plugin_log(LOG_WARNING, "cf_util_get_boolean: Using string value `%s' for boolean option `%s' is "
               "deprecated.", s, ci->key);
    if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0) {
        *ret_bool = true;
        return 0;
    }
    if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 || strcasecmp(s, "off") == 0) {
        *ret_bool = false;
        return 0;
    }
    plugin_log(LOG_ERR, "cf_util_get_boolean: Cannot parse string value `%s' of the `%s' option as a "
               "boolean value.", s, ci->key);
    return -1;
}

__attribute__((format(printf, 3, 0))) static bool fc_vcomplain(int level, c_complain_t *c,
                                                            const char *format, va_list ap)
{
    char message[512];

    if (c->last + c->interval > fc.now)
        return false;
    c->last = fc.now;
    if (c->interval < plugin_get_interval())
        c->interval = plugin_get_interval();
    else
        c->interval *= 2;
    if (c->interval > TIME_T_TO_CDTIME_T(86400))
        c->interval = TIME_T_TO_CDTIME_T(86400);
    vsnprintf(message, sizeof(message), format, ap);
    plugin_log(level, "%s", message);
    return true;
}

void c_complain(int level, c_complain_t *c, const char *format, ...)
{
    va_list ap;

    va_start(ap, format);
    if (fc_vcomplain(level, c, format, ap))
        c->complained_once = true;
    va_end(ap);
}

void c_do_release(int level, c_complain_t *c, const char *format, ...)
{
    char message[512];
    va_list ap;

    if (c->interval == 0)
        return;
    c->interval = 0;
    c->complained_once = false;
    va_start(ap, format);
    vsnprintf(message, sizeof(message), format, ap);
    va_end(ap);
    plugin_log(level, "%s", message);
}
