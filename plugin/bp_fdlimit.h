/* The plugin's share of collectd's open-files limit (RLIMIT_NOFILE), for the QMP socket transport,
 * which keeps a connection open per domain: with more guests than the limit, those connections would
 * take every descriptor, and collectd's other plugins (logfile, csv, network...) would fail with "Too
 * many open files".
 *
 * At init, when some <Plugin balloon> block reads QMP sockets, the soft limit is raised to the hard
 * one (which an unprivileged process may do), and what is left, once the descriptors open now and a
 * reserve for the rest of collectd are set aside, is shared among those blocks: each agent keeps its
 * connections within its share (bal_open_config_t.max_descriptors). What was done is said once. A
 * process that uses select() cannot watch descriptors above 1023: raising the limit does not make
 * any, but a plugin that opens its files after ours may get such numbers once many are in use. */
#ifndef BP_FDLIMIT_H
#define BP_FDLIMIT_H

#include <stddef.h>
#include <stdint.h>

/* The reserve for the rest of collectd: an eighth of the limit, at least this many. */
#define BP_FDLIMIT_RESERVE_MIN 128

typedef struct bp_fdlimit_plan {
    uint64_t soft_before, soft, hard; /* RLIMIT_NOFILE before and after */
    long open;                        /* descriptors open when planned */
    uint64_t reserve;                 /* left to the rest of collectd */
    size_t share;                     /* each QMP block's descriptors, at least 1 */
    int raise_error;                  /* errno of a raise that failed, else 0 */
} bp_fdlimit_plan_t;

/* Raises the soft limit where the hard one allows and computes the share of each of n_blocks (> 0)
 * blocks reading QMP sockets, in *out; logs one line that says what it did. Changes the process's
 * limit; does not block. */
void bp_fdlimit_apply(size_t n_blocks, bp_fdlimit_plan_t *out);

#endif
