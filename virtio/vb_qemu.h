/* The QEMU versions balloon-sim answers as, and what differs in the replies it models between them,
 * as recorded from the real ones (tests/qmp/NAME.qemu-VERSION.txt, tests/qmp/record.sh):
 *
 *   7.2 (Debian 12)     10 stats; query-status has "singlestep"; machine pc-i440fx-7.2-machine
 *   10.0 (bookworm-backports)  16 stats; no "singlestep"; machine pc-i440fx-10.0-machine; qom-list
 *                       of / and of the balloon's PCI proxy in another order
 *
 * The rest (the JSON dialect, errors, events, the member order of every reply) is the same in both.
 * Pure data. */
#ifndef VB_QEMU_H
#define VB_QEMU_H

#include <stdbool.h>

typedef enum vb_qemu_version {
    VB_QEMU_7_2 = 0, /* the default */
    VB_QEMU_10_0,
    VB_QEMU_VERSION_COUNT
} vb_qemu_version_t;

typedef struct vb_qemu_profile {
    const char *name;         /* "7.2", "10.0" */
    int major, minor, micro;  /* the greeting's version */
    unsigned stats_count;     /* how many stats guest-stats shows: VB_STATS_QEMU72 or VB_STATS_QEMU92 */
    const char *machine_type; /* the type of /machine */
    bool status_singlestep;   /* query-status has a "singlestep" member (gone by QEMU 10.0) */
} vb_qemu_profile_t;

/* The profile of version v (VB_QEMU_7_2 for anything out of range). Never NULL; static storage. */
const vb_qemu_profile_t *vb_qemu_profile(vb_qemu_version_t v);

/* The version named name ("7.2", "10.0"). Returns 0, or -EINVAL for any other name. */
int vb_qemu_version_parse(const char *name, vb_qemu_version_t *out);

#endif
