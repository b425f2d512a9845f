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

/* How the caller of a command enforces its deadline when the transport makes the blocking call on the
 * caller's own thread (bal_jobs.h does: a call past its deadline is abandoned, its thread left to end
 * when the call returns). */
typedef struct bal_call_watch {
    /* Before the blocking call: 0 to make it now, watched; -EBUSY to make none (an earlier call for the
     * domain was abandoned and has not returned); another error: the transport makes the call with a
     * timeout of its own, as execute does. */
    int (*begin)(void *opaque);
    /* After it: true when the call is still the caller's; false when the caller abandoned it meanwhile:
     * the transport lets go of what the call holds and returns -ECANCELED at once. Neither during the
     * call nor after an abandoned one does the transport touch anything but what the call holds and
     * err: not dom, not the transport object; the caller may free them once it has abandoned the call. */
    bool (*end)(void *opaque);
    void *opaque;
} bal_call_watch_t;

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
    /* Optional: execute, the blocking call made on this thread under watch (above). Returns what
     * execute does, -ETIMEDOUT when watch refused the call, or -ECANCELED when the call was abandoned.
     * Transports whose calls have a timeout of their own (sockets) need none. */
    int (*execute_watched)(bal_transport_t *t, const bal_domain_info_t *dom, const char *command, char **reply,
                           const bal_call_watch_t *watch, bal_error_t *err);
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
/* bal_transport_execute under watch, when the transport has execute_watched (else as without). */
int bal_transport_execute_watched(bal_transport_t *t, const bal_domain_info_t *dom, const char *command,
                                  char **reply, const bal_call_watch_t *watch, bal_error_t *err);
/* The refusal of a command for domain while its previous one, abandoned after timeout_ms, has not
 * returned: -ETIMEDOUT, with the sentence in err. One sentence for the transport that refuses and
 * the agent that fails the rest of the job. */
int bal_transport_refuse_pending(const char *domain, int timeout_ms, bal_error_t *err);
bool bal_transport_take_changes(bal_transport_t *t);
/* A batch of commands begins / has ended (the batch op, when the transport has one). */
void bal_transport_batch_begin(bal_transport_t *t);
void bal_transport_batch_end(bal_transport_t *t);
void bal_transport_free(bal_transport_t *t);

#endif
