#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "agent/bal_libvirt.h"
#include "agent/bal_limits.h"
#include "agent/bal_open.h"
#include "agent/bal_qmp_socket.h"

/* The QMP connections the socket transport may keep open within the descriptor budget: what is left
 * once a connection for each command in flight (a read's and the late ones', 2 * concurrency) and two
 * for the rest (listing the directory) are set aside. 0: no limit. */
static size_t kept_connections(const bal_open_config_t *open, const bal_agent_config_t *config)
{
    size_t width = config->concurrency != 0 ? config->concurrency : BAL_LIMIT_CONCURRENCY_DEFAULT;
    size_t aside = 2 * width + 2;

    if (open->max_descriptors == 0)
        return 0;
    return open->max_descriptors > aside ? open->max_descriptors - aside : 1;
}

bal_transport_t *bal_open_transport(const bal_open_config_t *open, const bal_agent_config_t *config,
                                    bal_error_t *err)
{
    int timeout_ms = config->timeout_ms != 0 ? config->timeout_ms : BAL_LIMIT_TIMEOUT_MS_DEFAULT;
    bal_transport_t *t;

    switch (open->transport) {
    case BAL_TRANSPORT_LIBVIRT:
        return bal_libvirt_transport_new(open->libvirt_uri, timeout_ms, &config->logger, config->clock, err);
    case BAL_TRANSPORT_QMP_DIR:
        if (open->qmp_dir == NULL || open->qmp_dir[0] == '\0') {
            bal_error_set(err, -EINVAL, "The QMP socket transport needs a directory.");
            return NULL;
        }
        t = bal_qmp_socket_transport_new_dir(open->qmp_dir, timeout_ms, &config->logger, err);
        bal_qmp_socket_transport_set_max_connections(t, kept_connections(open, config));
        return t;
    case BAL_TRANSPORT_QMP_SOCKETS:
        if (open->n_sockets == 0 || open->sockets == NULL) {
            bal_error_set(err, -EINVAL, "The QMP socket transport needs at least one socket.");
            return NULL;
        }
        t = bal_qmp_socket_transport_new_pairs(open->sockets, open->n_sockets, timeout_ms, &config->logger,
                                               err);
        bal_qmp_socket_transport_set_max_connections(t, kept_connections(open, config));
        return t;
    }
    bal_error_set(err, -EINVAL, "The transport %d is not one the agent knows.", (int)open->transport);
    return NULL;
}

int bal_open_agent(const bal_agent_config_t *config, const bal_open_config_t *open, bal_agent_t **out,
                   bal_error_t *err)
{
    bal_transport_t *transport;
    bal_error_t local = {0};
    int rc;

    /* Validate first: a bad selector or a hostile path must not even open a connection. */
    rc = bal_agent_check_config(config, err);
    if (rc < 0)
        return rc;
    if (open == NULL)
        return bal_error_set(err, -EINVAL, "No transport was named for the agent.");
    transport = bal_open_transport(open, config, &local);
    if (transport == NULL) {
        if (local.code >= 0)
            bal_error_set(&local, -EIO, "The transport could not be opened.");
        if (err != NULL)
            *err = local;
        return local.code;
    }
    return bal_agent_new_with_transport(config, transport, out, err);
}
