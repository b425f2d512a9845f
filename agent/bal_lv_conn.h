/* The libvirt transport's connection (prefix blv_conn_): one read-write virConnectPtr with its
 * keepalive, its close and lifecycle callbacks, the domain-handle cache that belongs to it, and its
 * reconnect backoff.
 *
 * When the connection is lost (libvirtd restarted, keepalive expired, the close callback fired, or a
 * call failed with a connection error: blv_conn_mark_dead), one warning is logged and the next
 * blv_conn_acquire reopens it: at once, then after 1 s, 2 s, 4 s ... up to 60 s between attempts (on
 * the injected clock), failing fast with -ENOTCONN in between. A successful reopen is logged once and
 * reported by blv_conn_take_changes (domains may have started or stopped while no event could arrive).
 * Each open runs through the caller (bal_lv_call.h), so it waits at most the caller's timeout; while an
 * abandoned one still waits for libvirtd, no other is tried.
 *
 * Each connection has a generation: results obtained on an older one are not cached. Thread-safe, but
 * blv_conn_close must not race the other calls. */
#ifndef BAL_LV_CONN_H
#define BAL_LV_CONN_H

#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "agent/bal_clock.h"
#include "agent/bal_error.h"
#include "agent/bal_log.h"
#include "agent/bal_lv_cache.h"
#include "agent/bal_lv_call.h"

/* The reconnect backoff: the first reopen is attempted at once, then after these delays, doubling. */
#define BLV_CONN_BACKOFF_MIN_MS 1000
#define BLV_CONN_BACKOFF_MAX_MS 60000

/* virConnectSetKeepAlive(conn, INTERVAL, COUNT) on every connection whose driver supports it: a dead
 * libvirtd is noticed within about INTERVAL * (COUNT + 1) seconds even when no call is in flight. */
#define BLV_CONN_KEEPALIVE_INTERVAL 5
#define BLV_CONN_KEEPALIVE_COUNT 3

typedef struct blv_conn blv_conn_t;

/* Opens the first connection to uri through caller (a reference is taken). logger is copied, clock
 * borrowed (it must outlive the connection). Returns 0 and *out, or a negative errno with err filled
 * ("Cannot connect to libvirt at ..."): -ENOTCONN, -ETIMEDOUT, -EACCES, -ENOMEM, -EAGAIN (no thread).
 * Blocks for at most the caller's timeout. */
int blv_conn_open(const char *uri, const bal_logger_t *logger, const bal_clock_t *clock, blv_caller_t *caller,
                  blv_conn_t **out, bal_error_t *err);

/* Returns 0 with a new reference to the live connection (virConnectClose it) and its generation,
 * reopening it first if it was lost and the backoff allows; or -ENOTCONN (-EACCES, -ENOMEM) with err
 * filled. Blocks for at most the caller's timeout. */
int blv_conn_acquire(blv_conn_t *c, virConnectPtr *conn, unsigned *generation, bal_error_t *err);

/* For a command to the domain of key: 0 with the live connection in *conn and its generation, and
 * key's cache entry (a reference: blv_cache_entry_unref it) when it is cached, *conn then borrowed
 * (the entry's handle keeps it alive); or, when it is not, *entry NULL and *conn a new reference
 * (virConnectClose it) to look the domain up with. Otherwise as blv_conn_acquire, in one hold of the
 * lock and with no libvirt call on a cache hit. */
int blv_conn_acquire_domain(blv_conn_t *c, const char *key, blv_cache_entry_t **entry, virConnectPtr *conn,
                            unsigned *generation, bal_error_t *err);

/* A call on the connection of this generation failed with a connection error: it is lost (logged once
 * per streak, with reason). Nothing when it was replaced already. */
void blv_conn_mark_dead(blv_conn_t *c, unsigned generation, const char *reason);

/* The domain-handle cache (bal_lv_cache.h) of the connection of generation: keep dom under key; forget
 * key's. Stale generations keep nothing. */
void blv_conn_cache_put(blv_conn_t *c, unsigned generation, const char *key, virDomainPtr dom);
void blv_conn_cache_drop(blv_conn_t *c, const char *key);
/* The cache becomes exactly doms (by UUID), which also forgets domains that are gone. */
void blv_conn_cache_replace(blv_conn_t *c, unsigned generation, virDomainPtr *doms, int ndoms);

/* True (once) when domains started or stopped since the last call (lifecycle events, reconnects). */
bool blv_conn_take_changes(blv_conn_t *c);

const char *blv_conn_uri(const blv_conn_t *c);

/* Closes the connection (its callbacks deregistered) for good: the owner's first step of its free, while
 * libvirt's event loop still runs (so that libvirt's deferred cleanups of the connection run). */
void blv_conn_close(blv_conn_t *c);

/* Lets go of the owner's reference; libvirt holds its own for the callbacks until it has released them,
 * and an abandoned open one until it returns. NULL is a no-op. */
void blv_conn_unref(blv_conn_t *c);

#endif
