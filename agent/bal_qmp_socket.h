/* QMP over UNIX sockets: QEMU run without libvirt (-qmp unix:PATH,server,nowait) and balloon-sim.
 *
 * bal_qmp_conn_* is one client connection: connect, read the greeting, negotiate capabilities, then
 * one command at a time, its reply read with asynchronous events skipped. Every wait is a poll() with
 * a deadline, so a hung or hostile peer costs the caller at most the timeout, never a hang.
 *
 * The qmp-socket transport (bal_transport.h) keeps one such connection per domain, reused across read
 * cycles, dropped on any error and reopened by the next command. Note that a QMP monitor serves one
 * client at a time: while the agent holds a domain's connection, another client of the same socket
 * waits (and the agent, if it is the one waiting, times out). */
#ifndef BAL_QMP_SOCKET_H
#define BAL_QMP_SOCKET_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/bal_agent.h"
#include "agent/bal_error.h"
#include "agent/bal_log.h"
#include "agent/bal_qmp_listing.h" /* BAL_QMP_SOCKET_SUFFIX */
#include "agent/bal_transport.h"

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

/* The qmp-socket transport over every socket named NAME.qmp in dir (bal_qmp_listing.h: which names
 * are refused, what is said once); the domain is NAME, its instance the socket file's identity, so a
 * restarted QEMU is a new instance. take_changes is true when the directory changed since the last
 * listing (one stat per call), or once after a reconnect found a socket other than the listed one:
 * either way QEMU started, stopped or restarted, and only a new listing tells. The directory is
 * scanned by each list_domains; uuids are "". timeout_ms (<= 0: 5000) bounds connecting
 * and each reply. logger may be NULL; it is copied. Returns NULL with err filled (-EINVAL, -ENOMEM)
 * on failure; dir need not exist yet. Free with bal_transport_free. */
bal_transport_t *bal_qmp_socket_transport_new_dir(const char *dir, int timeout_ms, const bal_logger_t *logger,
                                                  bal_error_t *err);

/* The same over explicit name/path pairs (copied). A pair whose socket does not exist is not listed;
 * take_changes also stats each pair's socket. Names must be unique, non-empty, neither '.' nor '..'. */
bal_transport_t *bal_qmp_socket_transport_new_pairs(const bal_socket_spec_t *pairs, size_t n, int timeout_ms,
                                                    const bal_logger_t *logger, bal_error_t *err);

/* Keeps at most max_conns connections open between commands (0, the default: no limit), to stay within
 * a descriptor budget: a domain beyond them gets a connection for each command, closed after it (its
 * cost: connecting and negotiating again), and the first such command says so once through the
 * logger. The connections kept are the first ones made, and a domain keeps its place until its
 * connection is dropped (an error, a restart, the domain gone): a read cycle asks every domain in
 * turn, which would make a least-recently-used choice close every connection just before its use.
 * A transport that is not a qmp-socket one is left as it is. Call before the first command. */
void bal_qmp_socket_transport_set_max_connections(bal_transport_t *t, size_t max_conns);

#endif
