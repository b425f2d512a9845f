/* The libvirt transport's connection. See bal_lv_conn.h for the contract; the comments here say why. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "agent/bal_lv_cache.h"
#include "agent/bal_lv_conn.h"
#include "agent/bal_lv_err.h"
#include "agent/bal_lv_loop.h"

struct blv_conn {
    atomic_int refs; /* the owner's, one per callback libvirt holds, one per open in flight */
    char *uri;
    bal_logger_t logger;
    const bal_clock_t *clock;
    blv_caller_t *caller;

    pthread_mutex_t lock; /* guards every field up to the atomics */
    bool loop_failure_logged;
    virConnectPtr conn;   /* NULL: not connected */
    unsigned generation;  /* bumped per connection, so that results of an older one are not cached */
    bool close_registered;
    int event_id;         /* lifecycle callback, -1 when none */
    bool opening;         /* a thread is reopening it, without the lock */
    bool in_streak;       /* the connection was lost and not reopened yet; logged once */
    unsigned failures;    /* failed reopens in this streak */
    int64_t next_attempt_ms;
    char last_error[384];
    blv_cache_t cache;

    atomic_bool changed;              /* for take_changes() */
    _Atomic(virConnectPtr) live_conn; /* the connection the close callback may declare dead */
    atomic_bool closed;
    atomic_int close_reason;
};

static int64_t now_ms(const blv_conn_t *c)
{
    return bal_clock_monotonic_ms(c->clock);
}

void blv_conn_unref(blv_conn_t *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    /* The owner closed the connection before it let go (blv_conn_close). */
    blv_caller_unref(c->caller);
    pthread_mutex_destroy(&c->lock);
    free(c->uri);
    free(c);
}

/* The free callback of what libvirt holds a reference for: our registered callbacks (libvirt calls it
 * once no dispatch of them can still be running, which deregistration alone does not promise when another
 * thread iterates the loop). */
static void release(void *opaque)
{
    blv_conn_unref(opaque);
}

/* ---- callbacks from the event loop ---- */

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    blv_conn_t *c = opaque;

    (void)conn;
    (void)dom;
    (void)detail;
    /* Suspend, resume, define and undefine change nothing in the set of running QEMU processes. */
    if (event == VIR_DOMAIN_EVENT_STARTED || event == VIR_DOMAIN_EVENT_STOPPED ||
        event == VIR_DOMAIN_EVENT_CRASHED)
        atomic_store(&c->changed, true);
    return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    blv_conn_t *c = opaque;

    /* Only a flag: the next call, in its own thread, closes the handle and reconnects. */
    if (atomic_load(&c->live_conn) == conn) {
        atomic_store(&c->close_reason, reason);
        atomic_store(&c->closed, true);
    }
}

static const char *close_reason(int reason)
{
    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_ERROR:
        return "libvirt closed the connection after an error";
    case VIR_CONNECT_CLOSE_REASON_EOF:
        return "libvirtd closed the connection";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        return "libvirtd stopped answering keepalive messages";
    default:
        return "the connection was closed";
    }
}

/* Undoes what an open registered on conn. On a dead connection these fail, which changes nothing. */
static void unregister(virConnectPtr conn, bool close_registered, int event_id)
{
    if (event_id >= 0)
        virConnectDomainEventDeregisterAny(conn, event_id);
    if (close_registered)
        virConnectUnregisterCloseCallback(conn, on_close);
    virResetLastError();
}

/* ---- an open, on a helper thread when there is a timeout ---- */

typedef struct open_work {
    blv_conn_t *owner; /* a reference: the work may outlive the transport (abandoned) */
    char *uri;
    /* results */
    int rc;
    blv_err_t err;
    virConnectPtr conn; /* until installed */
    bool close_registered;
    int event_id;
    blv_err_t event_err;
} open_work_t;

static void open_work_free(void *opaque)
{
    open_work_t *w = opaque;

    if (w == NULL)
        return;
    if (w->conn != NULL) {
        /* An opened connection that was never installed: abandoned after a timeout. */
        unregister(w->conn, w->close_registered, w->event_id);
        virConnectClose(w->conn);
        virResetLastError();
    }
    blv_conn_unref(w->owner);
    free(w->uri);
    free(w);
}

static void open_work_run(void *opaque)
{
    open_work_t *w = opaque;
    blv_conn_t *c = w->owner;

    w->conn = virConnectOpen(w->uri);
    if (w->conn == NULL) {
        w->rc = -1;
        blv_err_capture(&w->err);
        return;
    }
    /* -1: the driver has no keepalive (local drivers need none); 1: the server does not support it. */
    if (virConnectSetKeepAlive(w->conn, BLV_CONN_KEEPALIVE_INTERVAL, BLV_CONN_KEEPALIVE_COUNT) < 0)
        virResetLastError();
    /* Each registration holds a reference on c, given back by libvirt (release); on failure libvirt
     * keeps nothing, and ours is dropped here (the work's keeps c alive). */
    atomic_fetch_add(&c->refs, 1);
    w->close_registered = virConnectRegisterCloseCallback(w->conn, on_close, c, release) == 0;
    if (!w->close_registered) {
        virResetLastError();
        atomic_fetch_sub(&c->refs, 1);
    }
    atomic_fetch_add(&c->refs, 1);
    w->event_id = virConnectDomainEventRegisterAny(w->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                   VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), c, release);
    if (w->event_id < 0) {
        blv_err_capture(&w->event_err);
        atomic_fetch_sub(&c->refs, 1);
    }
}

/* Opens a connection with its keepalive and callbacks, waiting at most the timeout (virConnectOpen to a
 * hung libvirtd blocks in its handshake). Returns 0 with the work holding the connection in *out, or a
 * negative errno (-ETIMEDOUT, -EAGAIN: no thread for the call, -ENOMEM, or libvirt's refusal as
 * blv_err_connect_errno maps it) with the reason in e. Called without c->lock. */
static int conn_open(blv_conn_t *c, open_work_t **out, blv_err_t *e)
{
    open_work_t *w = calloc(1, sizeof(*w));
    int ret;

    if (w == NULL || (w->uri = strdup(c->uri)) == NULL) {
        free(w);
        blv_err_set(e, VIR_ERR_NO_MEMORY, "out of memory");
        return -ENOMEM;
    }
    atomic_fetch_add(&c->refs, 1);
    w->owner = c;
    w->event_id = -1;
    ret = blv_caller_run(c->caller, "o:", open_work_run, open_work_free, w);
    if (ret == -ETIMEDOUT) {
        snprintf(e->message, sizeof(e->message), "no answer within %d ms", blv_caller_timeout_ms(c->caller));
        e->code = VIR_ERR_OPERATION_TIMEOUT;
        e->domain = VIR_FROM_NONE;
        return ret;
    }
    if (ret == -EAGAIN || ret == -ENOMEM) {
        blv_err_set(e, VIR_ERR_NO_MEMORY,
                    ret == -EAGAIN ? "no thread could be started for the call" : "out of memory");
        open_work_free(w);
        return ret;
    }
    if (w->rc < 0) {
        *e = w->err;
        open_work_free(w);
        return blv_err_connect_errno(e);
    }
    *out = w;
    return 0;
}

/* Called with c->lock held: w's connection becomes c's. */
static void install_locked(blv_conn_t *c, open_work_t *w)
{
    c->conn = w->conn;
    w->conn = NULL;
    c->close_registered = w->close_registered;
    c->event_id = w->event_id;
    c->generation++;
    atomic_store(&c->closed, false);
    atomic_store(&c->live_conn, c->conn);
    if (c->event_id < 0)
        bal_log(&c->logger, BAL_LOG_WARNING,
                "libvirt at '%s' sends no lifecycle events (%s); new and stopped domains are seen at the "
                "next domain list refresh only.",
                c->uri, w->event_err.message);
    open_work_free(w);
}

/* Called with c->lock held. Other threads may still hold references to the connection (through their
 * domain handles); libvirt frees it when the last one goes. */
static void close_locked(blv_conn_t *c)
{
    if (c->conn == NULL)
        return;
    atomic_store(&c->live_conn, NULL);
    unregister(c->conn, c->close_registered, c->event_id);
    virConnectClose(c->conn);
    virResetLastError();
    c->conn = NULL;
    c->event_id = -1;
    c->close_registered = false;
    blv_cache_drop(&c->cache, NULL);
}

/* Called with c->lock held: the connection is gone. Logs once per streak. */
static void lost_locked(blv_conn_t *c, const char *reason)
{
    close_locked(c);
    snprintf(c->last_error, sizeof(c->last_error), "%s", reason);
    if (c->in_streak)
        return;
    c->in_streak = true;
    c->failures = 0;
    c->next_attempt_ms = now_ms(c); /* the first reopen is tried at the next call */
    bal_log(&c->logger, BAL_LOG_WARNING,
            "The connection to libvirt at '%s' was lost (%s); it is reopened at the next read, then with "
            "backoff up to %d s.",
            c->uri, reason, BLV_CONN_BACKOFF_MAX_MS / 1000);
}

void blv_conn_mark_dead(blv_conn_t *c, unsigned generation, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    if (c->conn != NULL && c->generation == generation)
        lost_locked(c, reason);
    pthread_mutex_unlock(&c->lock);
}

static int64_t backoff_ms(unsigned failures)
{
    int64_t delay = BLV_CONN_BACKOFF_MIN_MS;

    for (unsigned i = 1; i < failures && delay < BLV_CONN_BACKOFF_MAX_MS; i++)
        delay *= 2;
    return delay < BLV_CONN_BACKOFF_MAX_MS ? delay : BLV_CONN_BACKOFF_MAX_MS;
}

/* Called with c->lock held and no connection: reopens it, unless an attempt is under way or the backoff
 * says not yet. Returns 0 (connected), or -ENOTCONN (-EACCES, -ENOMEM) with err filled. */
static int reopen_locked(blv_conn_t *c, bal_error_t *err)
{
    open_work_t *w = NULL;
    blv_err_t e;
    int64_t now = now_ms(c);
    int ret;

    /* One attempt at a time, and none while an abandoned one still waits for libvirtd. */
    if (c->opening || blv_caller_pending(c->caller, "o:"))
        return bal_error_set(err, -ENOTCONN,
                             "The connection to libvirt at '%s' is being reopened; the last attempt failed: %s.",
                             c->uri, c->last_error);
    if (now < c->next_attempt_ms)
        return bal_error_set(err, -ENOTCONN,
                             "There is no connection to libvirt at '%s' (%s); the next attempt is in %lld ms.",
                             c->uri, c->last_error, (long long)(c->next_attempt_ms - now));
    c->opening = true;
    pthread_mutex_unlock(&c->lock);
    ret = conn_open(c, &w, &e);
    pthread_mutex_lock(&c->lock);
    c->opening = false;
    if (ret < 0) {
        c->failures++;
        c->next_attempt_ms = now + backoff_ms(c->failures);
        snprintf(c->last_error, sizeof(c->last_error), "%s", e.message);
        return bal_error_set(err, ret == -ETIMEDOUT || ret == -EAGAIN ? -ENOTCONN : ret,
                             "Cannot reconnect to libvirt at '%s': %s.", c->uri, e.message);
    }
    install_locked(c, w);
    bal_log(&c->logger, BAL_LOG_NOTICE, "Reconnected to libvirt at '%s' after %u failed attempts.", c->uri,
            c->failures);
    c->in_streak = false;
    c->failures = 0;
    /* Domains may have started or stopped while no events could arrive. */
    atomic_store(&c->changed, true);
    return 0;
}

/* The live connection, reopened first if it was lost and the backoff allows: 0, or an error with err
 * filled. Under the lock. */
static int live_locked(blv_conn_t *c, bal_error_t *err)
{
    const char *loop_failure = blv_loop_failure();

    if (loop_failure != NULL && !c->loop_failure_logged) {
        c->loop_failure_logged = true;
        bal_log(&c->logger, BAL_LOG_ERR,
                "libvirt's event loop failed (%s); lifecycle events and keepalive stop for '%s'.", loop_failure,
                c->uri);
    }
    if (c->conn != NULL && atomic_load(&c->closed))
        lost_locked(c, close_reason(atomic_load(&c->close_reason)));
    if (c->conn == NULL)
        return reopen_locked(c, err);
    return 0;
}

/* A new reference to the live connection in *conn. Under the lock. */
static int ref_locked(blv_conn_t *c, virConnectPtr *conn, bal_error_t *err)
{
    if (virConnectRef(c->conn) < 0) {
        virResetLastError();
        return bal_error_set(err, -ENOTCONN, "The connection to libvirt at '%s' could not be used.", c->uri);
    }
    *conn = c->conn;
    return 0;
}

int blv_conn_acquire(blv_conn_t *c, virConnectPtr *conn, unsigned *generation, bal_error_t *err)
{
    int ret;

    pthread_mutex_lock(&c->lock);
    ret = live_locked(c, err);
    if (ret == 0)
        ret = ref_locked(c, conn, err);
    if (ret == 0)
        *generation = c->generation;
    pthread_mutex_unlock(&c->lock);
    return ret;
}

int blv_conn_acquire_domain(blv_conn_t *c, const char *key, blv_cache_entry_t **entry, virConnectPtr *conn,
                            unsigned *generation, bal_error_t *err)
{
    int ret;

    *entry = NULL;
    *conn = NULL;
    pthread_mutex_lock(&c->lock);
    ret = live_locked(c, err);
    if (ret == 0) {
        *entry = blv_cache_get(&c->cache, key);
        if (*entry != NULL)
            *conn = c->conn;
        else
            ret = ref_locked(c, conn, err);
    }
    if (ret == 0)
        *generation = c->generation;
    pthread_mutex_unlock(&c->lock);
    return ret;
}

int blv_conn_open(const char *uri, const bal_logger_t *logger, const bal_clock_t *clock, blv_caller_t *caller,
                  blv_conn_t **out, bal_error_t *err)
{
    blv_conn_t *c = calloc(1, sizeof(*c));
    open_work_t *w = NULL;
    blv_err_t e;
    int ret;

    if (c == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", uri);
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", uri);
    }
    atomic_init(&c->refs, 1);
    c->caller = blv_caller_ref(caller);
    if (logger != NULL)
        c->logger = *logger;
    c->clock = clock;
    c->event_id = -1;
    c->uri = strdup(uri);
    if (c->uri == NULL) {
        blv_conn_unref(c);
        return bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", uri);
    }
    ret = conn_open(c, &w, &e);
    if (ret < 0) {
        bal_error_set(err, ret, "Cannot connect to libvirt at '%s': %s.", uri, e.message);
        blv_conn_unref(c); /* an open still in virConnectOpen keeps its own reference */
        return ret;
    }
    pthread_mutex_lock(&c->lock);
    install_locked(c, w);
    pthread_mutex_unlock(&c->lock);
    *out = c;
    return 0;
}

/* ---- the domain-handle cache ---- */

void blv_conn_cache_put(blv_conn_t *c, unsigned generation, const char *key, virDomainPtr dom)
{
    pthread_mutex_lock(&c->lock);
    if (c->conn != NULL && c->generation == generation)
        blv_cache_put(&c->cache, key, dom);
    pthread_mutex_unlock(&c->lock);
}

void blv_conn_cache_drop(blv_conn_t *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    blv_cache_drop(&c->cache, key);
    pthread_mutex_unlock(&c->lock);
}

void blv_conn_cache_replace(blv_conn_t *c, unsigned generation, virDomainPtr *doms, int ndoms)
{
    pthread_mutex_lock(&c->lock);
    if (c->conn != NULL && c->generation == generation) {
        blv_cache_drop(&c->cache, NULL);
        for (int i = 0; i < ndoms; i++) {
            char key[2 + VIR_UUID_STRING_BUFLEN];
            key[0] = 'u';
            key[1] = ':';
            if (virDomainGetUUIDString(doms[i], key + 2) == 0)
                blv_cache_put(&c->cache, key, doms[i]);
            else
                virResetLastError();
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- the rest ---- */

bool blv_conn_take_changes(blv_conn_t *c)
{
    return atomic_exchange(&c->changed, false);
}

const char *blv_conn_uri(const blv_conn_t *c)
{
    return c->uri;
}

void blv_conn_close(blv_conn_t *c)
{
    pthread_mutex_lock(&c->lock);
    close_locked(c);
    pthread_mutex_unlock(&c->lock);
}
