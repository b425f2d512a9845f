/* QMP as QEMU 7.2 speaks it, over a set of named VMs (vb_machine.h): bytes in, bytes out, no sockets,
 * so every rule is unit-testable. The event loop (vb_sim.h) owns the sockets and moves the bytes.
 *
 * Per connection, as QEMU's monitor: the greeting {"QMP": {"version": ..., "capabilities": ["oob"]}};
 * only qmp_capabilities until negotiation ("Expecting capabilities negotiation with
 * 'qmp_capabilities'"); then qmp_capabilities, qom-get, qom-set, qom-list, query-balloon,
 * query-status, stop, cont, system_reset, quit. Replies {"return": ...} or {"error": {"class",
 * "desc"}} with the request's "id" echoed whatever its JSON type, QEMU's error texts, QEMU's layout
 * and member order, CRLF line ends. Input is read in QEMU's JSON dialect (vb_json_stream.h), replies
 * are printed in QEMU's layout (vb_json_print.h).
 *
 * Events go to every negotiated connection of the VM, before the reply of the command that caused
 * them, as QEMU sends them: STOP, RESUME, RESET (host-qmp-system-reset) and SHUTDOWN (host-qmp-quit).
 * quit ends the VM: every connection to it is finished (the loop closes it once its output is sent)
 * and the VM must then be removed with vb_qmp_server_remove.
 *
 * Not thread-safe: one event-loop thread owns the server, its machines and connections. */
#ifndef VB_QMP_SERVER_H
#define VB_QMP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "virtio/vb_clock.h"
#include "virtio/vb_machine.h"

/* The version in the greeting: QEMU 7.2.x. */
#define VB_QMP_VERSION_MAJOR 7
#define VB_QMP_VERSION_MINOR 2
#define VB_QMP_VERSION_MICRO 0

typedef struct vb_qmp_server vb_qmp_server_t;
typedef struct vb_qmp_conn vb_qmp_conn_t;

typedef struct vb_qmp_server_ops {
    /* conn got output outside a vb_qmp_conn_input call on it (an event another client caused) or
     * was finished by another client's quit: the loop should flush it. May be NULL. */
    void (*wake)(vb_qmp_conn_t *conn, void *conn_opaque);
    /* m executed quit (called from inside vb_qmp_conn_input). Its connections are finished; the loop
     * removes m (vb_qmp_server_remove) once it has flushed and freed them, not from this callback.
     * May be NULL. */
    void (*quit)(vb_machine_t *m, void *server_opaque);
} vb_qmp_server_ops_t;

/* clock stamps events (seconds from wall_s, microseconds from the monotonic clock). ops may be NULL.
 * Returns NULL on ENOMEM. Frees every machine still in it, which must have no connection left. */
vb_qmp_server_t *vb_qmp_server_new(const vb_clock_t *clock, const vb_qmp_server_ops_t *ops,
                                   void *opaque);
void vb_qmp_server_free(vb_qmp_server_t *s);

/* Adds a VM; the server owns it from now on, also on failure. Returns 0, -EEXIST for a name already
 * there, or -ENOMEM. */
int vb_qmp_server_add(vb_qmp_server_t *s, vb_machine_t *m);
/* The VM named name, or NULL. */
vb_machine_t *vb_qmp_server_find(const vb_qmp_server_t *s, const char *name);
size_t vb_qmp_server_count(const vb_qmp_server_t *s);
/* Takes m out and frees it. Its connections must have been freed. */
void vb_qmp_server_remove(vb_qmp_server_t *s, vb_machine_t *m);

/* A client connected to the VM named name: the greeting is queued. opaque is handed to ops->wake.
 * Returns NULL with errno ENOENT (no such VM) or ENOMEM. */
vb_qmp_conn_t *vb_qmp_conn_new(vb_qmp_server_t *s, const char *name, void *opaque);
/* Frees the connection (the client went away or the loop closed it); NULL is a no-op. */
void vb_qmp_conn_free(vb_qmp_conn_t *conn);
vb_machine_t *vb_qmp_conn_machine(const vb_qmp_conn_t *conn);

/* Bytes from the client. Each complete message is answered at once (its reply is queued). Returns 0,
 * or -ENOMEM (the connection should be closed). Input after a quit is ignored. */
int vb_qmp_conn_input(vb_qmp_conn_t *conn, const char *buf, size_t len);
/* Queued output: returns its length and points *data at it (valid until the next call on conn). */
size_t vb_qmp_conn_output(const vb_qmp_conn_t *conn, const char **data);
/* n bytes of the output were sent. */
void vb_qmp_conn_consume(vb_qmp_conn_t *conn, size_t n);
/* Bytes held for an unfinished message. */
size_t vb_qmp_conn_pending_input(const vb_qmp_conn_t *conn);
/* The VM quit, or the client let more than 4 MiB of replies pile up unread: send what is queued (if
 * anything can be), then close. */
bool vb_qmp_conn_finished(const vb_qmp_conn_t *conn);

#endif
