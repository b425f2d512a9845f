/* Where the <Plugin balloon> blocks read their domains from, checked across blocks at init. Two
 * blocks that read one domain would set its polling interval against each other (each sets its own,
 * finds the other's a few reads later and sets it back, with a warning each time) and write its
 * values twice. Two blocks may read the same libvirt connection or the same QMP socket directory
 * only when their Domain selections are disjoint for certain: one block selects exact names only
 * (no regular expression, no IgnoreSelected), none of which the other selects; or both have the same
 * Domain lines, one with IgnoreSelected true and the other without. A QMP socket may be read by one
 * block only, whether named by QMPSocket or found in a QMPSocketDir (as NAME.qmp, selected by that
 * block). Paths are compared once resolved (realpath), as written when they do not exist yet. */
#ifndef BP_SOURCES_H
#define BP_SOURCES_H

#include <stddef.h>

#include "plugin/bp_config.h"

/* Checks every pair of the n blocks, in the order of the configuration. Returns 0, or -EINVAL after
 * logging an error for each pair that may read one domain (numbered from 1 as in collectd.conf), or
 * -ENOMEM. */
int bp_sources_check(const bp_config_t *const *configs, size_t n);

#endif
