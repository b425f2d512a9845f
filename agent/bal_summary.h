/* Many domains saying the same thing at once (a stall of every guest, a host whose clock stepped
 * back, a shutdown that cannot reach anyone) said in one line: how many, a few names, the first
 * detail. The caller collects with bal_summary_add and writes either the few lines it kept (count
 * up to BAL_SUMMARY_KEPT) or one summary line naming some (bal_summary_names). Used by the agent and
 * the collectd plugin. Not thread-safe: one summary per thread. */
#ifndef BAL_SUMMARY_H
#define BAL_SUMMARY_H

#include <stddef.h>

/* Up to this many are said one by one; beyond, in one line. */
#define BAL_SUMMARY_KEPT 3

typedef struct bal_summary {
    size_t count; /* added since the last bal_summary_clear */
    struct {
        char name[256];   /* cleaned (bal_text.h), cut: past collectd's 127 bytes, where names differ */
        char detail[768]; /* cleaned, cut */
    } kept[BAL_SUMMARY_KEPT]; /* the first ones added */
} bal_summary_t;

void bal_summary_clear(bal_summary_t *s);

/* Counts one more; keeps name and detail (either may be NULL: "") when it is among the first
 * BAL_SUMMARY_KEPT. */
void bal_summary_add(bal_summary_t *s, const char *name, const char *detail);

/* The kept names for a sentence: "'a'", "'a' and 'b'", "'a', 'b' and 'c'", into buf (cut when it does
 * not fit). Returns buf. */
char *bal_summary_names(const bal_summary_t *s, char *buf, size_t len);

#endif
