/* The libvirt transport: QMP commands through libvirt-qemu's virDomainQemuMonitorCommand passthrough,
 * running domains from virConnectListAllDomains, and started/stopped domains from lifecycle events
 * received on an event-loop thread. Its parts, each with its own contract: bal_lv_conn.h (the connection,
 * its reconnect backoff, and the domain-handle cache of bal_lv_cache.h), bal_lv_call.h (the libvirt calls
 * with a deadline, on helper threads), bal_lv_loop.h (the process-wide setup and event-loop thread) and
 * bal_lv_err.h (libvirt's errors as errnos).
 *
 * One read-write connection per transport, opened by the constructor. When it is lost (libvirtd
 * restarted, keepalive expired, the close callback fired, or a call failed with a connection error),
 * the call that noticed returns -ENOTCONN, one warning is logged, and the next calls reopen it: at once,
 * then after 1 s, 2 s, 4 s ... up to 60 s between attempts (on the injected clock), failing fast with
 * -ENOTCONN in between. A successful reopen is logged once and reported by take_changes().
 *
 * Process-wide effects, done once per process (pthread_once) on the first construction and never
 * undone, because libvirt offers no per-library scope for them:
 *  - virEventRegisterDefaultImpl(). libvirt ignores a second registration, so this coexists with
 *    collectd's virt plugin or any other user of libvirt's default event loop in the same process; an
 *    application that registered its own implementation first keeps it (and must run it).
 *  - virSetErrorFunc() with a handler that prints nothing: libvirt's default handler writes every error
 *    to stderr. Errors reach the caller through bal_error_t and the injected logger only.
 * The transports of a process share one thread iterating the default loop: the first constructor starts
 * it, and the bal_transport_free() of the last stops and joins it. Other threads may iterate the same
 * loop (collectd's virt plugin's) and then run the transports' callbacks: what libvirt holds for them
 * keeps its own reference, so free is safe beside them. Only one thread of ours iterates, because GLib
 * can leave one of several threads waiting for their turn asleep for good; should that happen anyway,
 * the last free waits for the thread at most 30 s, then leaves it behind (logged) rather than hang.
 * During a batch (the transport's batch op: the agent's read cycle) the thread does not iterate: every
 * command would wake it twice. Events that arrive meanwhile are dispatched when the last batch ends.
 *
 * Timeouts: libvirt has no per-call timeout (a hung QEMU blocks virDomainQemuMonitorCommand until
 * libvirtd gives up, which may be never; a hung libvirtd blocks virConnectOpen in its handshake). With
 * timeout_ms > 0 each blocking libvirt call (open, list, lookup + command) runs on a helper thread and
 * the caller waits at most timeout_ms (real monotonic time, not the injected clock). Helpers are kept
 * for the next calls (up to 16 idle; free ends them); one whose call was abandoned finishes it in the
 * background, owning and then releasing its results, and then ends. Until it does, new
 * commands for that domain (or new opens, or lists) fail at once, so a hung peer holds at most one
 * thread per domain. When no helper thread can be started, the call is not made (never made on the
 * caller's thread without the timeout): execute and list_domains fail with -ENOMEM, a reopen counts as a
 * failed attempt (-ENOTCONN), and the constructor fails with -EAGAIN.
 *
 * execute_watched (bal_transport.h), the agent's way: the lookup and the command are made on the
 * calling thread, under the caller's watch, which saves the helper's two thread hand-offs per command.
 * A call the caller abandons holds its own references (connection, domain, command, reply) and lets go
 * of them when libvirt returns, after the transport is freed if need be. When the watch refuses
 * (-EBUSY) nothing is sent; when it cannot watch, the helper makes the call as above. */
#ifndef BAL_LIBVIRT_H
#define BAL_LIBVIRT_H

#include "agent/bal_clock.h"
#include "agent/bal_error.h"
#include "agent/bal_log.h"
#include "agent/bal_transport.h"

#define BAL_LIBVIRT_DEFAULT_URI "qemu:///system"

/* The reconnect backoff: the first reopen is attempted at once, then after these delays, doubling. */
#define BAL_LIBVIRT_BACKOFF_MIN_MS 1000
#define BAL_LIBVIRT_BACKOFF_MAX_MS 60000

/* virConnectSetKeepAlive(conn, INTERVAL, COUNT) on every connection whose driver supports it: a dead
 * libvirtd is noticed within about INTERVAL * (COUNT + 1) seconds even when no call is in flight. */
#define BAL_LIBVIRT_KEEPALIVE_INTERVAL 5
#define BAL_LIBVIRT_KEEPALIVE_COUNT 3

/* Opens a read-write connection to uri (NULL: BAL_LIBVIRT_DEFAULT_URI) and starts the event-loop
 * thread. timeout_ms bounds each call (<= 0: no timeout of ours). logger and clock are copied / borrowed
 * (clock must outlive the transport; NULL: bal_clock_system()); logger may be NULL.
 * Returns a transport whose ops are "libvirt" (free it with bal_transport_free), or NULL with err
 * filled: -ENOTCONN when libvirt cannot be reached (libvirt's reason quoted), -ETIMEDOUT when it did
 * not answer within timeout_ms, -EACCES when it refuses us, -ENOMEM, -EAGAIN (no thread), -EIO
 * (libvirt's event loop could not be set up). Blocks while connecting (at most about timeout_ms).
 * Thread-safe, as are the transport's list_domains, execute and take_changes; free must not race them. */
bal_transport_t *bal_libvirt_transport_new(const char *uri, int timeout_ms, const bal_logger_t *logger,
                                           const bal_clock_t *clock, bal_error_t *err);

#endif
