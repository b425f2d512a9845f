/* The transports by kind, and an agent over one: the one file that knows every transport, so that the
 * agent (bal_agent.h) knows only bal_transport.h's interface. The collectd plugin and balloonctl name a
 * transport here; a new transport is its own files, one kind here, and the options that name it. */
#ifndef BAL_OPEN_H
#define BAL_OPEN_H

#include <stddef.h>

#include "agent/bal_agent.h"
#include "agent/bal_error.h"
#include "agent/bal_qmp_listing.h" /* bal_socket_spec_t */
#include "agent/bal_transport.h"

typedef enum bal_transport_kind {
    BAL_TRANSPORT_LIBVIRT,     /* virDomainQemuMonitorCommand over libvirt_uri (bal_libvirt.h) */
    BAL_TRANSPORT_QMP_DIR,     /* every NAME.qmp socket in qmp_dir (bal_qmp_socket.h) */
    BAL_TRANSPORT_QMP_SOCKETS, /* the explicit name/path pairs (bal_qmp_socket.h) */
} bal_transport_kind_t;

typedef struct bal_open_config {
    bal_transport_kind_t transport;
    const char *libvirt_uri;          /* NULL: "qemu:///system" */
    const char *qmp_dir;              /* BAL_TRANSPORT_QMP_DIR */
    const bal_socket_spec_t *sockets; /* BAL_TRANSPORT_QMP_SOCKETS */
    size_t n_sockets;
    size_t max_descriptors;           /* QMP sockets: descriptors the agent may hold at once (connections
                                         kept open, and one per command in flight); 0: no limit */
} bal_open_config_t;

/* Opens the transport open names, with the agent config's timeout, logger, clock and concurrency (the
 * descriptor budget's share of commands in flight). Blocks while connecting (libvirt: at most about
 * the timeout). Returns the transport (free it with bal_transport_free), or NULL with a sentence in err
 * and its negative errno in err->code (-EINVAL when open is incomplete; else the transport's own). */
bal_transport_t *bal_open_transport(const bal_open_config_t *open, const bal_agent_config_t *config,
                                    bal_error_t *err);

/* Checks config (bal_agent_check_config) before anything is opened, opens the transport, and makes the
 * agent over it (bal_agent_new_with_transport). Returns 0 and the agent in *out, or a negative errno
 * with a sentence in err. */
int bal_open_agent(const bal_agent_config_t *config, const bal_open_config_t *open, bal_agent_t **out,
                   bal_error_t *err);

#endif
