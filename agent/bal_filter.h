/* Domain selection: which domains the agent reports. A selector is an exact domain name, or a POSIX
 * extended regular expression between slashes ("/^web-[0-9]+$/"), unanchored as grep's. With no
 * selectors every domain is selected; ignore_selected inverts the selection (every domain except the
 * selected ones), as collectd's ignorelists do. */
#ifndef BAL_FILTER_H
#define BAL_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/bal_error.h"

typedef struct bal_filter bal_filter_t;

/* Checks one selector: not empty, and a "/regex/" must not be empty ("//"), must keep the bounds of
 * bal_regex_check (checked before it is compiled) and must compile. Returns 0, or -EINVAL with a
 * sentence in err quoting the selector. */
int bal_filter_check_selector(const char *selector, bal_error_t *err);

/* Compiles n selectors (copied). Returns 0 and a new filter in *out, or -EINVAL (a bad selector, err
 * says which) or -ENOMEM, *out untouched. */
int bal_filter_new(const char *const *selectors, size_t n, bool ignore_selected, bal_filter_t **out,
                   bal_error_t *err);

/* True when the domain called name is to be reported. Thread-safe, does not block. */
bool bal_filter_match(const bal_filter_t *filter, const char *name);

/* NULL is a no-op. */
void bal_filter_free(bal_filter_t *filter);

#endif
