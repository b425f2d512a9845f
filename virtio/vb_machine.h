/* One simulated VM, as its QMP monitor sees it: a name, a run state, the balloon device (vb_device.h)
 * with its guest driver model, and the part of QEMU 7.2's QOM tree that leads to the balloon:
 *
 *   /  objects  chardevs  machine (pc-i440fx-7.2-machine)
 *                           unattached  peripheral-anon  peripheral
 *   /machine/peripheral/balloon0                 virtio-balloon-pci, as libvirt creates it
 *   /machine/peripheral-anon/device[1]           the same with anon (QEMU's -balloon virtio)
 *   .../virtio-backend                           virtio-balloon-device
 *
 * Each node lists a subset of QEMU's properties, in QEMU's order: type, realized, the balloon's
 * guest-stats-polling-interval (int) and guest-stats, and the children. The pci proxy's two stats
 * properties are aliases of the backend's, as in QEMU.
 *
 * Pure state, no I/O; not thread-safe (one owner: the QMP server's event loop). */
#ifndef VB_MACHINE_H
#define VB_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/vb_clock.h"
#include "virtio/vb_device.h"
#include "virtio/vb_guest.h"
#include "virtio/vb_qobj.h"

typedef struct vb_machine vb_machine_t;

typedef struct vb_machine_config {
    const char *name;           /* any bytes but NUL; copied */
    vb_guest_profile_t profile;
    unsigned stats_count;       /* VB_STATS_LEGACY, VB_STATS_QEMU72 or VB_STATS_QEMU92 */
    uint64_t memory_bytes;
    bool anon;                  /* the balloon at /machine/peripheral-anon/device[1] */
    bool prelaunch;             /* start as qemu -S does: stopped until cont */
} vb_machine_config_t;

/* Returns NULL with errno EINVAL (bad stats_count, NULL name) or ENOMEM. The guest's workload is
 * seeded from the name, so a VM behaves the same in every run. The clock must outlive the machine. */
vb_machine_t *vb_machine_new(const vb_clock_t *clock, const vb_machine_config_t *config);
void vb_machine_free(vb_machine_t *m);

const char *vb_machine_name(const vb_machine_t *m);
vb_device_t *vb_machine_device(vb_machine_t *m);
/* The balloon's canonical QOM path. */
const char *vb_machine_balloon_path(const vb_machine_t *m);

/* ---- run state (query-status, stop, cont, system_reset) ---- */

typedef enum vb_runstate {
    VB_RUN_PRELAUNCH,
    VB_RUN_RUNNING,
    VB_RUN_PAUSED,
} vb_runstate_t;

vb_runstate_t vb_machine_runstate(const vb_machine_t *m);
const char *vb_runstate_name(vb_runstate_t state); /* "prelaunch", "running", "paused" */
/* stop: true if the VM was running (QEMU then emits STOP); prelaunch stays prelaunch. */
bool vb_machine_stop(vb_machine_t *m);
/* cont: true if the VM was not running (QEMU then emits RESUME). */
bool vb_machine_cont(vb_machine_t *m);
/* system_reset: the guest reboots; a VM that was not running is left in prelaunch, as QEMU does. */
void vb_machine_reset(vb_machine_t *m);

/* ---- QOM ---- */

/* A QMP error: QEMU's class ("GenericError", "DeviceNotFound", ...) and a malloc'ed desc. */
typedef struct vb_qerr {
    const char *cls;
    char *desc;
} vb_qerr_t;
/* Fills err (desc malloc'ed; NULL if out of memory). Returns -EINVAL for convenience. */
int vb_qerr_set(vb_qerr_t *err, const char *cls, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vb_qerr_clear(vb_qerr_t *err);

/* Resolves a QOM path as QEMU's object_resolve_path does: absolute ("/machine//peripheral/x/" is
 * fine) or partial ("balloon0": the one node whose path ends with these components). Returns a node
 * handle >= 0, or -ENOENT; *ambiguous (if not NULL) tells a partial path that matched several nodes. */
int vb_machine_qom_resolve(const vb_machine_t *m, const char *path, bool *ambiguous);
/* qom-list of a node: [{"name": ..., "type": ...}, ...]. NULL on ENOMEM. */
vb_qobj_t *vb_machine_qom_list(const vb_machine_t *m, int node);
/* qom-get. Returns 0 with *out, or -EINVAL / -ENOMEM with err filled. */
int vb_machine_qom_get(const vb_machine_t *m, int node, const char *property, vb_qobj_t **out,
                       vb_qerr_t *err);
/* qom-set; value is the parsed "value" argument. Returns 0, or -EINVAL / -ENOMEM with err filled. */
int vb_machine_qom_set(vb_machine_t *m, int node, const char *property, const vb_qobj_t *value,
                       vb_qerr_t *err);

#endif
