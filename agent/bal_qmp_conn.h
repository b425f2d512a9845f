/* One QMP client connection over a UNIX socket: QEMU run without libvirt (-qmp unix:PATH,server,nowait)
 * and balloon-sim. Connect, read the greeting, negotiate capabilities, then one command at a time, its
 * reply read with asynchronous events skipped. Every wait is a poll() with a deadline, so a hung or
 * hostile peer costs the caller at most the timeout, never a hang. The qmp-socket transport
 * (bal_qmp_socket.h) keeps one per domain. */
#ifndef BAL_QMP_CONN_H
#define BAL_QMP_CONN_H

#include <stdbool.h>

#include "agent/bal_error.h"

typedef struct bal_qmp_conn bal_qmp_conn_t;

/* Connects to the QMP socket at path, reads QEMU's greeting and negotiates with qmp_capabilities, all
 * within timeout_ms (> 0). Blocks for at most that long. Returns 0 and a new connection in *out, or:
 *   -ENOENT no such socket, -ESHUTDOWN nobody listens (QEMU gone), -ENAMETOOLONG path too long for a
 *   UNIX socket address, -ETIMEDOUT, -ENOTCONN the peer closed, -EPROTO not a QMP peer, -EMSGSIZE a
 *   message above BAL_QMP_MAX_REPLY, -ENOMEM, or another negative errno from connect;
 * with a sentence in err naming path. */
int bal_qmp_conn_open(const char *path, int timeout_ms, bal_qmp_conn_t **out, bal_error_t *err);

/* Sends command (one JSON object) and reads its reply, skipping events, within timeout_ms. Blocks for
 * at most that long. Returns 0 with the reply ({"return": ...} or {"error": ...}, without the line
 * end) malloc'ed in *reply, or -ETIMEDOUT, -ENOTCONN, -EPROTO (also: a reply carrying an "id", which
 * the agent never sends), -EMSGSIZE (a message above BAL_QMP_MAX_REPLY, or more than that many bytes
 * of events before the reply: a flooding peer costs one bounded read, not the timeout), -ENOMEM.
 * bal_qmp_conn_open bounds the events before the greeting and its negotiation alike. Messages are told
 * apart by their framing and top-level keys only: whether a reply is valid JSON is for the reply
 * parsers (bal_qmp.h) to say, which is where it is read. After an error the connection is out of step
 * with its peer: free it. Not thread-safe: one caller at a time. */
int bal_qmp_conn_execute(bal_qmp_conn_t *conn, const char *command, int timeout_ms, char **reply,
                         bal_error_t *err);

/* True when the connection is no longer usable: the peer closed it (QEMU exited or restarted) or sent
 * something other than events while no command was pending. Pending events are read and dropped.
 * Never blocks. */
bool bal_qmp_conn_stale(bal_qmp_conn_t *conn);

/* Closes the socket. NULL is a no-op. */
void bal_qmp_conn_free(bal_qmp_conn_t *conn);

#endif
