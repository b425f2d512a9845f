/* The libvirt transport. See bal_libvirt.h for the contract; the comments here say why. Its parts:
 * bal_lv_conn.h (the connection, its reconnect backoff and its domain-handle cache), bal_lv_call.h (the
 * calls with a deadline), bal_lv_loop.h (the process-wide setup and event-loop thread), bal_lv_err.h
 * (libvirt's errors). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent/bal_libvirt.h"
#include "agent/bal_lv_cache.h"
#include "agent/bal_lv_call.h"
#include "agent/bal_lv_conn.h"
#include "agent/bal_lv_err.h"
#include "agent/bal_lv_loop.h"

_Static_assert(BAL_LIBVIRT_BACKOFF_MIN_MS == BLV_CONN_BACKOFF_MIN_MS &&
                   BAL_LIBVIRT_BACKOFF_MAX_MS == BLV_CONN_BACKOFF_MAX_MS &&
                   BAL_LIBVIRT_KEEPALIVE_INTERVAL == BLV_CONN_KEEPALIVE_INTERVAL &&
                   BAL_LIBVIRT_KEEPALIVE_COUNT == BLV_CONN_KEEPALIVE_COUNT,
               "bal_libvirt.h documents what bal_lv_conn.c does");

typedef struct blv_transport {
    bal_transport_t base;
    blv_conn_t *conn;
    blv_caller_t *caller;
    blv_loop_user_t loop;
    bal_logger_t logger;
} blv_transport_t;

/* What a call that blv_caller_run did not make or gave up on was for: its errors' sentences. */
typedef enum blv_what { BLV_LIST, BLV_COMMAND } blv_what_t;

/* The error of a call that blv_caller_run returned ret (< 0) for: -ETIMEDOUT, or -ENOMEM when no
 * thread or no memory was had for it (it was not made). name is the domain's, for a command. */
static int run_failed(const blv_transport_t *t, blv_what_t what, const char *name, int ret, bal_error_t *err)
{
    const char *uri = blv_conn_uri(t->conn);
    int timeout_ms = blv_caller_timeout_ms(t->caller);

    if (what == BLV_LIST) {
        if (ret == -ETIMEDOUT)
            return bal_error_set(err, ret, "libvirt at '%s' did not list the running domains within %d ms.", uri,
                                 timeout_ms);
        if (ret == -EAGAIN)
            return bal_error_set(err, -ENOMEM,
                                 "No thread could be started to list the domains of libvirt at '%s'; none was asked.",
                                 uri);
        return bal_error_set(err, -ENOMEM, "Out of memory while listing the domains of libvirt at '%s'.", uri);
    }
    if (ret == -ETIMEDOUT)
        return bal_error_set(err, ret, "Domain '%s' did not answer a QMP command through libvirt within %d ms.",
                             name, timeout_ms);
    if (ret == -EAGAIN)
        return bal_error_set(err, -ENOMEM,
                             "No thread could be started to send a QMP command to domain '%s'; it was not sent.",
                             name);
    return bal_error_set(err, -ENOMEM, "Out of memory while sending a QMP command to domain '%s'.", name);
}

/* ---- listing the domains ---- */

typedef struct list_work {
    virConnectPtr conn; /* a reference */
    /* results */
    int rc;
    blv_err_t err;
    virDomainPtr *doms;
    int ndoms;
} list_work_t;

static void list_work_free(void *opaque)
{
    list_work_t *w = opaque;

    if (w == NULL)
        return;
    for (int i = 0; i < w->ndoms; i++)
        virDomainFree(w->doms[i]);
    free(w->doms);
    virConnectClose(w->conn);
    virResetLastError();
    free(w);
}

static void list_work_run(void *opaque)
{
    list_work_t *w = opaque;

    w->ndoms = virConnectListAllDomains(w->conn, &w->doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    w->rc = w->ndoms < 0 ? -1 : 0;
    if (w->rc < 0) {
        w->doms = NULL;
        w->ndoms = 0;
        blv_err_capture(&w->err);
    }
}

/* The domains of w as a list: 0, or -ENOMEM with err filled. */
static int list_items(const blv_transport_t *t, const list_work_t *w, bal_domain_list_t *out, bal_error_t *err)
{
    bal_domain_list_t list = {NULL, 0};

    list.items = calloc(w->ndoms > 0 ? (size_t)w->ndoms : 1, sizeof(*list.items));
    if (list.items == NULL)
        return run_failed(t, BLV_LIST, NULL, -ENOMEM, err);
    for (int i = 0; i < w->ndoms; i++) {
        bal_domain_info_t *item = &list.items[list.count];
        const char *name = virDomainGetName(w->doms[i]);
        unsigned id = virDomainGetID(w->doms[i]);

        /* These read the handle libvirt already sent; they fail only on a broken handle. */
        if (name == NULL || virDomainGetUUIDString(w->doms[i], item->uuid) < 0) {
            virResetLastError();
            continue;
        }
        item->name = strdup(name);
        if (item->name == NULL) {
            bal_domain_list_free(&list);
            return run_failed(t, BLV_LIST, NULL, -ENOMEM, err);
        }
        item->instance = id;
        list.count++;
    }
    *out = list;
    return 0;
}

static int blv_list_domains(bal_transport_t *base, bal_domain_list_t *out, bal_error_t *err)
{
    blv_transport_t *t = (blv_transport_t *)base;
    const char *uri = blv_conn_uri(t->conn);
    list_work_t *w = NULL;
    unsigned generation = 0;
    virConnectPtr conn;
    int ret;

    if (blv_caller_pending(t->caller, "l:"))
        return bal_error_set(err, -ETIMEDOUT,
                             "The previous domain list request to libvirt at '%s' has not returned after the "
                             "%d ms timeout.",
                             uri, blv_caller_timeout_ms(t->caller));
    ret = blv_conn_acquire(t->conn, &conn, &generation, err);
    if (ret < 0)
        return ret;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        virConnectClose(conn);
        return run_failed(t, BLV_LIST, NULL, -ENOMEM, err);
    }
    w->conn = conn;
    ret = blv_caller_run(t->caller, "l:", list_work_run, list_work_free, w);
    if (ret < 0) {
        if (ret == -ETIMEDOUT)
            w = NULL; /* the helper's now */
        ret = run_failed(t, BLV_LIST, NULL, ret, err);
        goto out;
    }
    if (w->rc < 0) {
        ret = blv_err_call_errno(&w->err, conn);
        if (ret == -ENOTCONN)
            blv_conn_mark_dead(t->conn, generation, w->err.message);
        ret = bal_error_set(err, ret, "libvirt at '%s' could not list the running domains: %s.", uri,
                            w->err.message);
        goto out;
    }
    ret = list_items(t, w, out, err);
    /* The fresh handles replace the cache, which also forgets domains that are gone. */
    if (ret == 0)
        blv_conn_cache_replace(t->conn, generation, w->doms, w->ndoms);
out:
    list_work_free(w);
    return ret;
}

/* ---- a QMP command ---- */

typedef struct command_work {
    blv_cache_entry_t *entry; /* the domain's cached handle (a reference), or NULL */
    virConnectPtr conn;       /* with an entry, its handle's (borrowed); else a reference, to look up with */
    char *key;                /* the domain's cache key */
    char *command;
    /* results */
    int rc;
    blv_err_t err;
    virDomainPtr dom; /* looked up: a reference */
    char *reply;
} command_work_t;

static void command_work_free(void *opaque)
{
    command_work_t *w = opaque;

    if (w == NULL)
        return;
    free(w->reply);
    if (w->dom != NULL)
        virDomainFree(w->dom);
    if (w->entry == NULL && w->conn != NULL)
        virConnectClose(w->conn);
    blv_cache_entry_unref(w->entry);
    virResetLastError();
    free(w->command);
    free(w->key);
    free(w);
}

static void command_work_run(void *opaque)
{
    command_work_t *w = opaque;
    virDomainPtr dom = w->entry != NULL ? blv_cache_entry_domain(w->entry) : NULL;

    if (dom == NULL) {
        if (w->key[0] == 'u')
            w->dom = virDomainLookupByUUIDString(w->conn, w->key + 2);
        else
            w->dom = virDomainLookupByName(w->conn, w->key + 2);
        if (w->dom == NULL) {
            w->rc = -1;
            blv_err_capture(&w->err);
            return;
        }
        dom = w->dom;
    }
    /* Returns 0 also when QEMU answered {"error": ...}: the reply parsers detect that. */
    w->rc = virDomainQemuMonitorCommand(dom, w->command, &w->reply, 0);
    if (w->rc < 0) {
        w->reply = NULL;
        blv_err_capture(&w->err);
    }
}

/* The error of a command that libvirt failed, for domain name on the connection of generation. */
static int command_failed(const blv_transport_t *t, const command_work_t *w, const char *name,
                          unsigned generation, bal_error_t *err)
{
    int ret = blv_err_call_errno(&w->err, w->conn);

    switch (ret) {
    case -ENOENT:
        blv_conn_cache_drop(t->conn, w->key);
        return bal_error_set(err, ret, "Domain '%s' is not known to libvirt any more: %s.", name, w->err.message);
    case -ESHUTDOWN:
        return bal_error_set(err, ret, "Domain '%s' is not running: %s.", name, w->err.message);
    case -ENOTCONN:
        blv_conn_mark_dead(t->conn, generation, w->err.message);
        return bal_error_set(err, ret,
                             "The connection to libvirt at '%s' was lost while sending a QMP command to domain "
                             "'%s': %s.",
                             blv_conn_uri(t->conn), name, w->err.message);
    case -ETIMEDOUT:
        return bal_error_set(err, ret, "libvirt timed out sending a QMP command to domain '%s': %s.", name,
                             w->err.message);
    default:
        return bal_error_set(err, ret, "libvirt could not send a QMP command to domain '%s': %s.", name,
                             w->err.message);
    }
}

/* A command's work for the domain of key, taking key, entry and conn (as blv_conn_acquire_domain gives
 * them); NULL when out of memory (all are then let go). */
static command_work_t *command_work_new(blv_cache_entry_t *entry, virConnectPtr conn, char *key,
                                        const char *command)
{
    command_work_t *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        if (entry == NULL)
            virConnectClose(conn);
        blv_cache_entry_unref(entry);
        free(key);
        return NULL;
    }
    w->entry = entry;
    w->conn = conn;
    w->key = key;
    w->command = strdup(command);
    if (w->command == NULL) {
        command_work_free(w);
        return NULL;
    }
    return w;
}

/* The refusal of a command for domain name while an earlier one, abandoned, has not returned. */
static int refuse_while_pending(const blv_transport_t *t, const char *name, bal_error_t *err)
{
    return bal_transport_refuse_pending(name, blv_caller_timeout_ms(t->caller), err);
}

/* A command's work for info, ready to be made: 0, *out and the connection's *generation, or an error
 * with err filled (no connection, no memory, the domain's previous command still pending). */
static int command_prepare(blv_transport_t *t, const bal_domain_info_t *info, const char *command,
                           command_work_t **out, unsigned *generation, bal_error_t *err)
{
    blv_cache_entry_t *entry;
    command_work_t *w;
    virConnectPtr conn;
    char *key;
    int ret;

    key = blv_cache_key(info);
    if (key == NULL)
        return run_failed(t, BLV_COMMAND, info->name, -ENOMEM, err);
    if (blv_caller_pending(t->caller, key)) {
        free(key);
        return refuse_while_pending(t, info->name, err);
    }
    ret = blv_conn_acquire_domain(t->conn, key, &entry, &conn, generation, err);
    if (ret < 0) {
        free(key);
        return ret;
    }
    w = command_work_new(entry, conn, key, command);
    if (w == NULL)
        return run_failed(t, BLV_COMMAND, info->name, -ENOMEM, err);
    *out = w;
    return 0;
}

/* What the command of w, made, came to: its reply, or its error. Frees w. */
static int command_finish(const blv_transport_t *t, command_work_t *w, const char *name, unsigned generation,
                          char **reply, bal_error_t *err)
{
    int ret = 0;

    if (w->dom != NULL) /* looked up */
        blv_conn_cache_put(t->conn, generation, w->key, w->dom);
    if (w->rc == 0) {
        *reply = w->reply;
        w->reply = NULL;
    } else {
        ret = command_failed(t, w, name, generation, err);
    }
    command_work_free(w);
    return ret;
}

/* Makes the command of w on a helper, waiting for it at most the timeout. Takes w. */
static int command_run_helped(const blv_transport_t *t, command_work_t *w, const char *name, unsigned generation,
                              char **reply, bal_error_t *err)
{
    int ret = blv_caller_run(t->caller, w->key, command_work_run, command_work_free, w);

    if (ret < 0) {
        if (ret != -ETIMEDOUT)
            command_work_free(w); /* else the helper's now */
        return run_failed(t, BLV_COMMAND, name, ret, err);
    }
    return command_finish(t, w, name, generation, reply, err);
}

/* The command made on this thread, which saves the two thread hand-offs of a helper (tests/bench): the
 * caller's watch enforces the deadline. Once the watch has abandoned the call, only w is touched: the
 * transport, the domain and their owner may be gone by the time libvirt returns. Without a watch (or
 * one that cannot watch), the helper makes it. */
static int blv_execute_watched(bal_transport_t *base, const bal_domain_info_t *info, const char *command,
                               char **reply, const bal_call_watch_t *watch, bal_error_t *err)
{
    blv_transport_t *t = (blv_transport_t *)base;
    command_work_t *w = NULL;
    unsigned generation = 0;
    int ret;

    ret = command_prepare(t, info, command, &w, &generation, err);
    if (ret < 0)
        return ret;
    ret = watch != NULL ? watch->begin(watch->opaque) : -ENOTSUP;
    if (ret == -EBUSY) {
        command_work_free(w);
        return refuse_while_pending(t, info->name, err);
    }
    if (ret < 0)
        return command_run_helped(t, w, info->name, generation, reply, err);
    command_work_run(w);
    if (!watch->end(watch->opaque)) {
        command_work_free(w);
        return -ECANCELED;
    }
    return command_finish(t, w, info->name, generation, reply, err);
}

static int blv_execute(bal_transport_t *base, const bal_domain_info_t *info, const char *command, char **reply,
                       bal_error_t *err)
{
    return blv_execute_watched(base, info, command, reply, NULL, err);
}

/* ---- the rest of the transport ---- */

static bool blv_take_changes(bal_transport_t *base)
{
    return blv_conn_take_changes(((blv_transport_t *)base)->conn);
}

/* A batch of commands: the loop thread stops iterating until it ends. While it iterates, every command
 * wakes it twice (libvirt's client takes the connection's socket out of the loop for the call and puts it
 * back), which cost more CPU than the command itself (tests/bench). The commands need no loop: the thread
 * making a call reads the socket itself, and what arrives meanwhile (lifecycle events, keepalive) is
 * queued and dispatched when the loop runs again, before the next cycle looks at it. */
static void blv_batch(bal_transport_t *base, bool begin)
{
    blv_loop_hold(&((blv_transport_t *)base)->loop, begin);
}

static void blv_free(bal_transport_t *base)
{
    blv_transport_t *t = (blv_transport_t *)base;

    /* Closed while the loop still runs, so that libvirt's deferred cleanups of the connection run. */
    blv_conn_close(t->conn);
    blv_caller_stop(t->caller);
    blv_loop_leave(&t->loop, &t->logger, blv_conn_uri(t->conn));
    virResetLastError();
    blv_conn_unref(t->conn);
    blv_caller_unref(t->caller);
    free(t);
}

static const bal_transport_ops_t blv_ops = {
    .name = "libvirt",
    .list_domains = blv_list_domains,
    .execute = blv_execute,
    .execute_watched = blv_execute_watched,
    .take_changes = blv_take_changes,
    .batch = blv_batch,
    .free = blv_free,
};

bal_transport_t *bal_libvirt_transport_new(const char *uri, int timeout_ms, const bal_logger_t *logger,
                                           const bal_clock_t *clock, bal_error_t *err)
{
    blv_transport_t *t;

    if (blv_loop_setup(err) < 0)
        return NULL;
    if (uri == NULL)
        uri = BAL_LIBVIRT_DEFAULT_URI;
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->caller = blv_caller_new(timeout_ms)) == NULL) {
        free(t);
        bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", uri);
        return NULL;
    }
    t->base.ops = &blv_ops;
    if (logger != NULL)
        t->logger = *logger;
    if (blv_conn_open(uri, logger, clock != NULL ? clock : bal_clock_system(), t->caller, &t->conn, err) < 0) {
        blv_caller_stop(t->caller);
        blv_caller_unref(t->caller); /* a helper still in virConnectOpen keeps its own reference */
        free(t);
        return NULL;
    }
    if (blv_loop_join(&t->loop, uri, err) < 0) {
        blv_free(&t->base);
        return NULL;
    }
    return &t->base;
}
