/* One interface over the ways to reach a QEMU monitor: "run this QMP command for this domain, give me
 * the reply or an error". Implementations: bal_libvirt.h (virDomainQemuMonitorCommand) and
 * bal_qmp_socket.h (QMP UNIX sockets). */
#ifndef BAL_TRANSPORT_H
#define BAL_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/bal_error.h"

typedef struct bal_domain_info {
    char *name;         /* owned */
    char uuid[37];      /* "" when the transport knows none */
    uint64_t instance;  /* changes when the domain is a new QEMU process (libvirt: the domain id;
                           sockets: the socket file's identity) */
} bal_domain_info_t;

typedef struct bal_domain_list {
    bal_domain_info_t *items;
    size_t count;
} bal_domain_list_t;

/* Frees the names and the array and zeroes the list; NULL is a no-op. */
void bal_domain_list_free(bal_domain_list_t *list);

typedef struct bal_transport bal_transport_t;

typedef struct bal_transport_ops {
    const char *name; /* "libvirt", "qmp-socket" */
    /* Running domains, in any order. Blocks for at most the transport's timeout. */
    int (*list_domains)(bal_transport_t *t, bal_domain_list_t *out, bal_error_t *err);
    /* Run one QMP command (a JSON object without "id") for dom and return QEMU's whole reply object
     * ({"return": ...} or {"error": ...}) as a malloc'ed string. QEMU's own errors are not detected
     * here: the reply parsers do that. Returns 0, or:
     *   -ENOENT domain gone / unknown, -ESHUTDOWN domain not running, -ENOTCONN connection lost,
     *   -ETIMEDOUT no reply in time, -EPROTO garbage from the peer, -ENOMEM.
     * Thread-safe: called from several pool threads at once, for different domains. */
    int (*execute)(bal_transport_t *t, const bal_domain_info_t *dom, const char *command, char **reply,
                   bal_error_t *err);
    /* Optional: true (once) when domains started or stopped since the last call (lifecycle events). */
    bool (*take_changes)(bal_transport_t *t);
    /* Optional: a batch of commands begins (begin true) or has ended. In between, the transport may
     * put off its background work (libvirt: its event-loop thread, woken by every command otherwise);
     * what arrives meanwhile is handled after the end. Calls pair up; never nested by one caller. */
    void (*batch)(bal_transport_t *t, bool begin);
    void (*free)(bal_transport_t *t);
} bal_transport_ops_t;

/* Implementations embed this as their first member. */
struct bal_transport {
    const bal_transport_ops_t *ops;
};

/* Dispatchers: the only way commands leave the agent. bal_transport_execute refuses (-EPERM) any
 * command other than qmp_capabilities, qom-list, and qom-get/qom-set of the balloon's
 * guest-stats / guest-stats-polling-interval properties. */
int bal_transport_list_domains(bal_transport_t *t, bal_domain_list_t *out, bal_error_t *err);
int bal_transport_execute(bal_transport_t *t, const bal_domain_info_t *dom, const char *command,
                          char **reply, bal_error_t *err);
bool bal_transport_take_changes(bal_transport_t *t);
/* A batch of commands begins / has ended (the batch op, when the transport has one). */
void bal_transport_batch_begin(bal_transport_t *t);
void bal_transport_batch_end(bal_transport_t *t);
void bal_transport_free(bal_transport_t *t);

#endif
