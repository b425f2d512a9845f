/* QMP messages: commands written from strings checked to need no escape (what yajl_gen would write),
 * replies parsed with yajl (bal_json.h) into plain structs. Pure functions: no I/O, thread-safe. */
#ifndef BAL_QMP_H
#define BAL_QMP_H

#include <stddef.h>
#include <stdint.h>

#include "agent/bal_error.h"
#include "agent/bal_stats.h"

/* Replies larger than this are refused without being parsed. */
#define BAL_QMP_MAX_REPLY (1024 * 1024)

/* The balloon's QOM properties. */
#define BAL_QMP_PROP_STATS "guest-stats"
#define BAL_QMP_PROP_INTERVAL "guest-stats-polling-interval"

/* A QOM path must start with '/' and hold only printable ASCII other than '"' and '\\'. Returns 0 or
 * -EINVAL with a sentence in err. */
int bal_qmp_check_path(const char *path, bal_error_t *err);

/* Each builder returns 0 and a malloc'ed NUL-terminated command in *out (caller frees), or a negative
 * errno (-EINVAL for a bad path, -ENOMEM) with err filled and *out untouched. No "id" is ever added:
 * libvirt adds its own. */
int bal_qmp_build_qom_get(const char *path, const char *property, char **out, bal_error_t *err);
int bal_qmp_build_qom_set_int(const char *path, const char *property, int64_t value, char **out,
                              bal_error_t *err);
int bal_qmp_build_qom_list(const char *path, char **out, bal_error_t *err);

/* Every parser takes a reply of len bytes (not necessarily NUL-terminated). It returns 0, or:
 *   -EREMOTEIO: QEMU answered {"error": ...}; err has QEMU's class and desc;
 *   -EPROTO:    not JSON, not an object, or the return value is not of the expected shape;
 *   -EMSGSIZE:  larger than BAL_QMP_MAX_REPLY;
 *   -ENOMEM. */

/* {"return": {}} (qom-set, qmp_capabilities). */
int bal_qmp_parse_empty(const char *reply, size_t len, bal_error_t *err);
/* {"return": N} (qom-get of the interval). */
int bal_qmp_parse_int(const char *reply, size_t len, int64_t *out, bal_error_t *err);
/* {"return": {"stats": {...}, "last-update": N}}: -1 and 18446744073709551615 are unset, and so is
 * any value above INT64_MAX (no guest can report one: 18446744073709551614 is not 18.4 EB of memory);
 * unknown keys ignored, a missing or mistyped stat is unset. *out is fully overwritten on success. */
int bal_qmp_parse_guest_stats(const char *reply, size_t len, bal_stats_t *out, bal_error_t *err);

/* qom-list: the first child whose type is "child<virtio-balloon-...>" (e.g. virtio-balloon-pci,
 * virtio-balloon-ccw, virtio-balloon-device). Returns 0 with a malloc'ed "parent/name" in *path, or
 * -ENOENT when there is none (err filled), or an error as above. */
int bal_qmp_find_balloon(const char *reply, size_t len, const char *parent, char **path, bal_error_t *err);

#endif
