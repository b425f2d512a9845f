/* A small reader of collectd's configuration syntax, enough to hand a plugin the oconfig_item_t tree
 * that collectd would: `Key value...` lines and `<Block args>...</Block>` blocks; values are "quoted
 * strings" (with \" and \\ escapes), numbers, the unquoted booleans true/false/yes/no/on/off, or
 * other unquoted words (kept as strings); `#` starts a comment outside quotes; a trailing `\` joins
 * the next line. It does not include files or expand anything: the benchmark's configs are short. */
#ifndef BENCH_CONFIG_H
#define BENCH_CONFIG_H

#include <stddef.h>

#include <liboconfig/oconfig.h>

/* Parses text (len bytes) into the children of a new item named root_key with one string value
 * root_value (NULL: no value), as collectd hands a `<Plugin NAME>` block to a complex config
 * callback. Returns the root, or NULL with a sentence naming the line in err (errlen bytes).
 * Free with bench_config_free. */
oconfig_item_t *bench_config_parse(const char *text, size_t len, const char *root_key,
                                   const char *root_value, char *err, size_t errlen);

/* Frees the item, its values and its children; NULL is a no-op. */
void bench_config_free(oconfig_item_t *root);

#endif
