/* The qmp-socket transport (bal_transport.h): QMP over UNIX sockets, for QEMU run without libvirt
 * (-qmp unix:PATH,server,nowait) and balloon-sim. It keeps one connection (bal_qmp_conn.h) per domain,
 * reused across read cycles, dropped on any error and reopened by the next command. Note that a QMP
 * monitor serves one client at a time: while the agent holds a domain's connection, another client of
 * the same socket waits (and the agent, if it is the one waiting, times out). */
#ifndef BAL_QMP_SOCKET_H
#define BAL_QMP_SOCKET_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/bal_error.h"
#include "agent/bal_log.h"
#include "agent/bal_qmp_listing.h" /* BAL_QMP_SOCKET_SUFFIX, bal_socket_spec_t */
#include "agent/bal_transport.h"

/* The qmp-socket transport over every socket named NAME.qmp in dir (bal_qmp_listing.h: which names
 * are refused, what is said once); the domain is NAME, its instance the socket file's identity, so a
 * restarted QEMU is a new instance. take_changes is true when the directory changed since the last
 * listing (one stat per call), or once after a reconnect found a socket other than the listed one:
 * either way QEMU started, stopped or restarted, and only a new listing tells. The directory is
 * scanned by each list_domains; uuids are "". timeout_ms (<= 0: BAL_LIMIT_TIMEOUT_MS_DEFAULT)
 * bounds connecting and each reply. logger may be NULL; it is copied. Returns NULL with err filled
 * (-EINVAL, -ENOMEM) on failure; dir need not exist yet. Free with bal_transport_free. */
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
