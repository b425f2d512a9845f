/* balloon-sim's event loop: one QMP UNIX socket per VM at DIR/NAME.qmp (mode 0600), every listener,
 * client and timer on one epoll loop in one thread, the devices' deadlines in a min-heap (vb_heap.h),
 * the protocol in vb_qmp_server.h. A client that disconnects, stalls or sends garbage affects only its
 * own connection; several clients per VM are served. Runs until SIGINT or SIGTERM. */
#ifndef VB_SIM_H
#define VB_SIM_H

#include <stddef.h>

#include "virtio/vb_clock.h"
#include "virtio/vb_machine.h"

typedef struct vb_sim vb_sim_t;

/* Checks (or creates, mode 0700) the socket directory: it must be a directory and must not be
 * world-writable. Returns NULL with a sentence in err (errno set). The clock must outlive the sim. */
vb_sim_t *vb_sim_new(const vb_clock_t *clock, const char *socket_dir, char *err, size_t errlen);
/* Removes every socket it created and frees everything; NULL is a no-op. */
void vb_sim_free(vb_sim_t *sim);

/* Adds a VM and its socket, listening when this returns. Returns 0, or a negative errno with a
 * sentence in err: -EEXIST (name taken, or a live socket already there), -ENAMETOOLONG, -EINVAL
 * (a name that cannot be a file name: empty, "." or "..", or holding '/'), -EMFILE, -ENOMEM. */
int vb_sim_add(vb_sim_t *sim, const vb_machine_config_t *config, char *err, size_t errlen);

/* Raises RLIMIT_NOFILE so that n VMs (their listeners and a few clients each) fit. Returns 0 or
 * -EMFILE with a sentence in err. */
int vb_sim_reserve_files(size_t n, char *err, size_t errlen);

/* Serves until SIGINT or SIGTERM (which the caller must have blocked in every thread, so that they
 * arrive through a signalfd here). Returns 0, or a negative errno with a sentence in err. */
int vb_sim_run(vb_sim_t *sim, char *err, size_t errlen);

#endif
