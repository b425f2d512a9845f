/* A fake collectd core for the plugin's unit tests: the daemon functions balloon.so calls, declared
 * by collectd's own headers and implemented here, recording what the plugin registers, dispatches and
 * logs. Time and interval are set by the test, never read from a clock. Not thread-safe. */
#ifndef TEST_PLUGIN_CORE_H
#define TEST_PLUGIN_CORE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/daemon/plugin.h"

#define FC_MAX_VALUES 4

/* A dispatched value list, copied with its values. */
typedef struct fc_value_list {
    value_list_t vl; /* vl.values points into values below */
    value_t values[FC_MAX_VALUES];
} fc_value_list_t;

typedef struct fc_log {
    int level;
    char message[1024];
} fc_log_t;

/* Forgets every registration and record, frees every oconfig tree made with fc_block, and sets
 * the defaults: time 1700000000 s, interval 10 s, hostname "testhost". */
void fc_reset(void);
void fc_set_time(cdtime_t now);
void fc_set_interval(cdtime_t interval); /* what plugin_get_interval returns */

/* Calls what the plugin registered, as the daemon would. fc_config returns the config callback's
 * status; fc_init the init callback's; fc_read(i) the i-th registered read callback's, or -ENOENT
 * when there is none; fc_shutdown the shutdown callback's. */
int fc_config(oconfig_item_t *block);
int fc_init(void);
int fc_read(size_t i);
int fc_shutdown(void);

size_t fc_n_reads(void);
const char *fc_read_name(size_t i);
cdtime_t fc_read_interval(size_t i);
bool fc_has_config_callback(void);

/* Records, oldest first. */
size_t fc_n_values(void);
const fc_value_list_t *fc_value(size_t i);
/* The last value list with this plugin instance, type and type instance, or NULL. */
const fc_value_list_t *fc_find_value(const char *plugin_instance, const char *type,
                                     const char *type_instance);
size_t fc_count_values(const char *plugin_instance, const char *type, const char *type_instance);
size_t fc_n_notifications(void);
const notification_t *fc_notification(size_t i);
size_t fc_n_logs(void);
const fc_log_t *fc_log(size_t i);
/* How many messages at this level (or any level if level < 0) contain every given substring
 * (a NULL-terminated list). */
size_t fc_count_logs(int level, ...) __attribute__((sentinel));
void fc_clear_records(void);
/* Prints every log record to stderr, for a failing test. */
void fc_dump_logs(void);

/* The number of data sources of a type in collectd's types.db and their DS_TYPE_*, or 0 when the
 * type is not there. plugin_dispatch_values refuses what does not match, as collectd does. */
size_t fc_type_ds(const char *type, int ds_types[FC_MAX_VALUES]);

/* oconfig trees, freed by fc_reset. fc_block makes <Plugin balloon>; each fc_opt_* adds one line
 * (the children array moves: keep no pointer to a child). */
oconfig_item_t *fc_block(void);
void fc_opt_s(oconfig_item_t *block, const char *key, const char *value);
void fc_opt_ss(oconfig_item_t *block, const char *key, const char *v1, const char *v2);
void fc_opt_n(oconfig_item_t *block, const char *key, double value);
void fc_opt_b(oconfig_item_t *block, const char *key, bool value);
void fc_opt_none(oconfig_item_t *block, const char *key);

#endif
