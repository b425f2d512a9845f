/* A count of domains and the first few of their names, for one log line that speaks of many domains
 * at once ("3 new ('a', 'b', 'c'), ...") instead of one line each. */
#ifndef BAL_NAMES_H
#define BAL_NAMES_H

#include <stddef.h>

#define BAL_NAMES_SHOWN 3

typedef struct bal_names {
    size_t count;
    const char *names[BAL_NAMES_SHOWN]; /* borrowed: valid while the caller uses the text */
} bal_names_t;

/* Counts name, and keeps it if it is among the first BAL_NAMES_SHOWN. */
void bal_names_add(bal_names_t *n, const char *name);

/* " ('a', 'b', 'c' and 9 more)", or "" when there are none, in buf (truncated to len). */
void bal_names_format(const bal_names_t *n, char *buf, size_t len);

#endif
