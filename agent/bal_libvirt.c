/* The libvirt transport. See bal_libvirt.h for the contract; the comments here say why. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "agent/bal_libvirt.h"

/* A libvirt error copied out of the thread that saw it: libvirt keeps the last error per thread, and a
 * command may run on a helper thread. */
typedef struct lv_err {
    int code;   /* virErrorNumber */
    int domain; /* virErrorDomain */
    char message[384];
} lv_err_t;

/* A cached domain handle. Keys are "u:UUID" or "n:NAME" so that a name never matches a UUID. */
typedef struct lv_dom {
    char *key;
    virDomainPtr dom;
    struct lv_dom *next;
} lv_dom_t;

/* A key whose command timed out and is still running inside libvirt. */
typedef struct lv_pending {
    char *key;
    struct lv_pending *next;
} lv_pending_t;

/* The process's event-loop thread (see "the event-loop thread" below). Reference-counted apart from
 * any transport: libvirt may run the timeouts that carry it on another thread, and the thread itself may
 * outlive the free that stopped it. */
typedef struct lv_loop {
    atomic_int refs;  /* lv_loop's, the thread's, plus one per timeout of ours that libvirt holds */
    atomic_bool quit; /* the thread stops before its next iteration */
    pthread_mutex_t m;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC; signalled when exited is set and when holds drops to 0 */
    bool exited;         /* under m: it has stopped iterating */
    unsigned holds;      /* under m: transports in a batch of commands; the thread does not iterate */
    atomic_bool exited_flag; /* the same, for the timeouts that only read it */
    pthread_t thread;
} lv_loop_t;

struct bal_libvirt;
struct lv_call;

/* A helper thread, making the transport's blocking libvirt calls so that their callers can stop waiting
 * at the timeout. Kept between calls: a thread started for each call cost more CPU than the call itself
 * (tests/bench). One whose call timed out belongs to that call until libvirt returns. */
typedef struct lv_helper {
    struct bal_libvirt *t;
    pthread_t thread;
    pthread_cond_t wake;    /* signalled when call or quit is set */
    struct lv_call *call;   /* under t->helpers_lock: the call to make; NULL when idle */
    bool quit;              /* under t->helpers_lock: an idle helper ends (free joins it) */
    struct lv_helper *next; /* in t->idle */
} lv_helper_t;

/* Idle helpers kept; one more ends when its call is done. Callers are the agent's pool, a handful. */
#define LV_MAX_IDLE_HELPERS 16

typedef struct bal_libvirt {
    bal_transport_t base;
    atomic_int refs; /* the owner's, one per helper thread, one per callback registered */
    bool loop_failure_logged; /* under lock */
    char *uri;
    int timeout_ms;
    bal_logger_t logger;
    const bal_clock_t *clock;

    pthread_mutex_t lock; /* guards every field up to the atomics */
    virConnectPtr conn;   /* NULL: not connected */
    unsigned generation;  /* bumped per connection, so that results of an older one are not cached */
    bool close_registered;
    int event_id;         /* lifecycle callback, -1 when none */
    bool opening;         /* a thread is reopening it, without the lock */
    bool in_streak;       /* the connection was lost and not reopened yet; logged once */
    unsigned failures;    /* failed reopens in this streak */
    int64_t next_attempt_ms;
    char last_error[384];
    lv_dom_t *cache;
    lv_pending_t *pending;

    atomic_bool changed;               /* for take_changes() */
    _Atomic(virConnectPtr) live_conn;  /* the connection the close callback may declare dead */
    atomic_bool closed;
    atomic_int close_reason;

    bool loop_user; /* counted in lv_loop_users */
    bool holding;   /* under lv_loop_lock: counted in the loop's holds (a batch is running) */

    pthread_mutex_t helpers_lock; /* guards the helpers' call and quit, and what follows */
    lv_helper_t *idle;            /* waiting for a call; joinable */
    unsigned n_idle;
    bool closing;                 /* free has begun: a helper whose call ends leaves, detached */
} bal_libvirt_t;

/* ---- process-wide setup ---- */

static pthread_once_t lv_once = PTHREAD_ONCE_INIT;
static int lv_once_result;
static char lv_once_message[384];

/* The event-loop thread, shared by the process's transports: started with the first, stopped with the
 * last. lv_loop_lock is held across a start and a whole stop, so that two threads of ours never iterate
 * at once (see "the event-loop thread"). */
static pthread_mutex_t lv_loop_lock = PTHREAD_MUTEX_INITIALIZER;
static lv_loop_t *lv_loop;     /* under lv_loop_lock; NULL: no thread */
static unsigned lv_loop_users; /* under lv_loop_lock */
/* Set (once) by a loop thread whose iteration failed, after lv_loop_error; each transport logs it once. */
static atomic_bool lv_loop_failed;
static char lv_loop_error[384];

/* libvirt's default handler prints every error to stderr; ours are reported through bal_error_t. */
static void lv_silent_error(void *opaque, virErrorPtr error)
{
    (void)opaque;
    (void)error;
}

static void lv_copy_message(char *dst, size_t cap, const char *msg)
{
    size_t len;

    snprintf(dst, cap, "%s", msg != NULL && msg[0] != '\0' ? msg : "libvirt gave no reason");
    /* The messages are quoted inside our sentences, which bring their own full stop. */
    len = strlen(dst);
    while (len > 0 && (dst[len - 1] == '.' || dst[len - 1] == '\n' || dst[len - 1] == ' '))
        dst[--len] = '\0';
}

static void lv_err_capture(lv_err_t *e)
{
    virErrorPtr last = virGetLastError();

    if (last == NULL || last->code == VIR_ERR_OK) {
        e->code = VIR_ERR_INTERNAL_ERROR;
        e->domain = VIR_FROM_NONE;
        lv_copy_message(e->message, sizeof(e->message), NULL);
        return;
    }
    e->code = last->code;
    e->domain = last->domain;
    lv_copy_message(e->message, sizeof(e->message), last->message);
    virResetLastError();
}

static void lv_global_init(void)
{
    lv_err_t e;

    virSetErrorFunc(NULL, lv_silent_error);
    if (virEventRegisterDefaultImpl() < 0) {
        lv_err_capture(&e);
        snprintf(lv_once_message, sizeof(lv_once_message), "%s", e.message);
        lv_once_result = -EIO;
    }
}

/* ---- small helpers ---- */

static int64_t lv_now_ms(const bal_libvirt_t *t)
{
    return t->clock->monotonic_ms(t->clock->opaque);
}

static void lv_unref(bal_libvirt_t *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    /* Helpers remove their pending keys before they let go, and free closed the connection. */
    while (t->pending != NULL) {
        lv_pending_t *p = t->pending;
        t->pending = p->next;
        free(p->key);
        free(p);
    }
    pthread_mutex_destroy(&t->helpers_lock);
    pthread_mutex_destroy(&t->lock);
    free(t->uri);
    free(t);
}

/* The free callback of what libvirt holds a reference for: our registered callbacks (libvirt calls it
 * once no dispatch of them can still be running, which deregistration alone does not promise when another
 * thread iterates the loop). */
static void lv_release(void *opaque)
{
    lv_unref(opaque);
}

static char *lv_key(const bal_domain_info_t *info)
{
    const char *id = info->uuid[0] != '\0' ? info->uuid : info->name;
    size_t len = strlen(id);
    char *key = malloc(len + 3);

    if (key == NULL)
        return NULL;
    key[0] = info->uuid[0] != '\0' ? 'u' : 'n';
    key[1] = ':';
    memcpy(key + 2, id, len + 1);
    return key;
}

/* Called with t->lock held. Returns a new reference, or NULL. */
static virDomainPtr lv_cache_get(bal_libvirt_t *t, const char *key)
{
    for (lv_dom_t *d = t->cache; d != NULL; d = d->next) {
        if (strcmp(d->key, key) == 0) {
            if (virDomainRef(d->dom) < 0) {
                virResetLastError();
                return NULL;
            }
            return d->dom;
        }
    }
    return NULL;
}

/* Called with t->lock held. Takes its own reference to dom; a failure only costs a later lookup. */
static void lv_cache_put(bal_libvirt_t *t, const char *key, virDomainPtr dom)
{
    lv_dom_t *d;

    for (d = t->cache; d != NULL; d = d->next)
        if (strcmp(d->key, key) == 0)
            return;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return;
    d->key = strdup(key);
    if (d->key == NULL || virDomainRef(dom) < 0) {
        virResetLastError();
        free(d->key);
        free(d);
        return;
    }
    d->dom = dom;
    d->next = t->cache;
    t->cache = d;
}

/* Called with t->lock held. key NULL drops every entry. */
static void lv_cache_drop(bal_libvirt_t *t, const char *key)
{
    lv_dom_t **link = &t->cache;

    while (*link != NULL) {
        lv_dom_t *d = *link;
        if (key != NULL && strcmp(d->key, key) != 0) {
            link = &d->next;
            continue;
        }
        *link = d->next;
        virDomainFree(d->dom);
        free(d->key);
        free(d);
    }
}

/* Called with t->lock held. */
static bool lv_pending_has(const bal_libvirt_t *t, const char *key)
{
    for (const lv_pending_t *p = t->pending; p != NULL; p = p->next)
        if (strcmp(p->key, key) == 0)
            return true;
    return false;
}

static void lv_pending_add(bal_libvirt_t *t, const char *key)
{
    lv_pending_t *p = calloc(1, sizeof(*p));

    /* Without memory the key is not remembered: the domain is then only not skipped, which is safe. */
    if (p == NULL)
        return;
    p->key = strdup(key);
    if (p->key == NULL) {
        free(p);
        return;
    }
    pthread_mutex_lock(&t->lock);
    p->next = t->pending;
    t->pending = p;
    pthread_mutex_unlock(&t->lock);
}

static void lv_pending_remove(bal_libvirt_t *t, const char *key)
{
    pthread_mutex_lock(&t->lock);
    for (lv_pending_t **link = &t->pending; *link != NULL; link = &(*link)->next) {
        lv_pending_t *p = *link;
        if (strcmp(p->key, key) == 0) {
            *link = p->next;
            free(p->key);
            free(p);
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

/* ---- callbacks from the event loop ---- */

static int lv_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    bal_libvirt_t *t = opaque;

    (void)conn;
    (void)dom;
    (void)detail;
    /* Suspend, resume, define and undefine change nothing in the set of running QEMU processes. */
    if (event == VIR_DOMAIN_EVENT_STARTED || event == VIR_DOMAIN_EVENT_STOPPED ||
        event == VIR_DOMAIN_EVENT_CRASHED)
        atomic_store(&t->changed, true);
    return 0;
}

static void lv_on_close(virConnectPtr conn, int reason, void *opaque)
{
    bal_libvirt_t *t = opaque;

    /* Only a flag: the next call, in its own thread, closes the handle and reconnects. */
    if (atomic_load(&t->live_conn) == conn) {
        atomic_store(&t->close_reason, reason);
        atomic_store(&t->closed, true);
    }
}

static const char *lv_close_reason(int reason)
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

/* ---- calls, on a helper thread when there is a timeout ---- */

typedef enum lv_op { LV_OP_OPEN, LV_OP_LIST, LV_OP_COMMAND } lv_op_t;

typedef struct lv_call {
    atomic_int refs;
    pthread_mutex_t m;
    pthread_cond_t cond;
    bool done;      /* under m */
    bool abandoned; /* under m */
    bal_libvirt_t *t;

    lv_op_t op;
    virConnectPtr conn; /* owned reference (LV_OP_OPEN: the result, until installed) */
    char *key;          /* LV_OP_COMMAND: the domain's cache key; LV_OP_LIST: "l:"; LV_OP_OPEN: "o:" */
    char *command;      /* LV_OP_OPEN: the URI */

    /* results, owned by the call until taken */
    int rc;
    lv_err_t err;
    virDomainPtr dom; /* owned reference; given by the caller or looked up */
    bool looked_up;
    char *reply;
    virDomainPtr *doms;
    int ndoms;
    bool close_registered; /* LV_OP_OPEN */
    int event_id;
    lv_err_t event_err;
} lv_call_t;

/* Undoes what LV_OP_OPEN registered on conn. On a dead connection these fail, which changes nothing. */
static void lv_unregister(virConnectPtr conn, bool close_registered, int event_id)
{
    if (event_id >= 0)
        virConnectDomainEventDeregisterAny(conn, event_id);
    if (close_registered)
        virConnectUnregisterCloseCallback(conn, lv_on_close);
    virResetLastError();
}

static void lv_call_unref(lv_call_t *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->doms != NULL) {
        for (int i = 0; i < c->ndoms; i++)
            virDomainFree(c->doms[i]);
        free(c->doms);
    }
    free(c->reply);
    if (c->dom != NULL)
        virDomainFree(c->dom);
    if (c->conn != NULL) {
        /* An opened connection that was never installed: abandoned after a timeout. */
        if (c->op == LV_OP_OPEN)
            lv_unregister(c->conn, c->close_registered, c->event_id);
        virConnectClose(c->conn);
        virResetLastError();
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->m);
    free(c->command);
    free(c->key);
    free(c);
}

static lv_call_t *lv_call_new(bal_libvirt_t *t, lv_op_t op, virConnectPtr conn)
{
    lv_call_t *c = calloc(1, sizeof(*c));
    pthread_condattr_t attr;

    if (c == NULL)
        return NULL;
    if (pthread_condattr_init(&attr) != 0) {
        free(c);
        return NULL;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&c->cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        free(c);
        return NULL;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_mutex_init(&c->m, NULL) != 0) {
        pthread_cond_destroy(&c->cond);
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->t = t;
    c->op = op;
    c->conn = conn;
    c->event_id = -1;
    return c;
}

static void lv_call_work(lv_call_t *c)
{
    if (c->op == LV_OP_OPEN) {
        c->conn = virConnectOpen(c->command);
        if (c->conn == NULL) {
            c->rc = -1;
            lv_err_capture(&c->err);
            return;
        }
        /* -1: the driver has no keepalive (local drivers need none); 1: the server does not support it. */
        if (virConnectSetKeepAlive(c->conn, BAL_LIBVIRT_KEEPALIVE_INTERVAL, BAL_LIBVIRT_KEEPALIVE_COUNT) < 0)
            virResetLastError();
        /* Each registration holds a reference on t, given back by libvirt (lv_release); on failure libvirt
         * keeps nothing, and ours is dropped here (the caller's keeps t alive). */
        atomic_fetch_add(&c->t->refs, 1);
        c->close_registered = virConnectRegisterCloseCallback(c->conn, lv_on_close, c->t, lv_release) == 0;
        if (!c->close_registered) {
            virResetLastError();
            atomic_fetch_sub(&c->t->refs, 1);
        }
        atomic_fetch_add(&c->t->refs, 1);
        c->event_id = virConnectDomainEventRegisterAny(c->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                       VIR_DOMAIN_EVENT_CALLBACK(lv_on_lifecycle), c->t,
                                                       lv_release);
        if (c->event_id < 0) {
            lv_err_capture(&c->event_err);
            atomic_fetch_sub(&c->t->refs, 1);
        }
        return;
    }
    if (c->op == LV_OP_LIST) {
        c->ndoms = virConnectListAllDomains(c->conn, &c->doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        c->rc = c->ndoms < 0 ? -1 : 0;
        if (c->rc < 0) {
            c->doms = NULL;
            c->ndoms = 0;
            lv_err_capture(&c->err);
        }
        return;
    }
    if (c->dom == NULL) {
        if (c->key[0] == 'u')
            c->dom = virDomainLookupByUUIDString(c->conn, c->key + 2);
        else
            c->dom = virDomainLookupByName(c->conn, c->key + 2);
        if (c->dom == NULL) {
            c->rc = -1;
            lv_err_capture(&c->err);
            return;
        }
        c->looked_up = true;
    }
    /* Returns 0 also when QEMU answered {"error": ...}: the reply parsers detect that. */
    c->rc = virDomainQemuMonitorCommand(c->dom, c->command, &c->reply, 0);
    if (c->rc < 0) {
        c->reply = NULL;
        lv_err_capture(&c->err);
    }
}

/* Gives c's results to its caller, or lets them go when the caller stopped waiting. */
static void lv_call_hand_back(lv_call_t *c)
{
    bal_libvirt_t *t = c->t;
    bool abandoned;

    pthread_mutex_lock(&c->m);
    c->done = true;
    abandoned = c->abandoned;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->m);
    /* The caller added the key before it let go of c->m, so this removal comes after it. */
    if (abandoned)
        lv_pending_remove(t, c->key);
    lv_call_unref(c);
}

static void lv_helper_free(lv_helper_t *h)
{
    pthread_cond_destroy(&h->wake);
    free(h);
}

static void *lv_helper_main(void *opaque)
{
    lv_helper_t *h = opaque;
    bal_libvirt_t *t = h->t;
    bool leaves = false;

    pthread_mutex_lock(&t->helpers_lock);
    while (!leaves) {
        lv_call_t *c;

        while (h->call == NULL && !h->quit)
            pthread_cond_wait(&h->wake, &t->helpers_lock);
        if (h->call == NULL)
            break; /* quit while idle: free joins it */
        c = h->call;
        pthread_mutex_unlock(&t->helpers_lock);
        lv_call_work(c);
        /* Idle again before the caller wakes, so that its next call finds this helper. */
        pthread_mutex_lock(&t->helpers_lock);
        h->call = NULL;
        leaves = t->closing || t->n_idle >= LV_MAX_IDLE_HELPERS; /* then nobody joins it */
        if (!leaves) {
            h->next = t->idle;
            t->idle = h;
            t->n_idle++;
        }
        pthread_mutex_unlock(&t->helpers_lock);
        lv_call_hand_back(c);
        pthread_mutex_lock(&t->helpers_lock);
    }
    pthread_mutex_unlock(&t->helpers_lock);
    if (leaves) {
        pthread_detach(h->thread);
        lv_helper_free(h);
    }
    lv_unref(t);
    return NULL;
}

/* Hands c to an idle helper, or to a new one. Returns 0, or -EAGAIN when no thread could be started. */
static int lv_helper_take(bal_libvirt_t *t, lv_call_t *c)
{
    lv_helper_t *h;

    atomic_fetch_add(&c->refs, 1); /* the helper's */
    pthread_mutex_lock(&t->helpers_lock);
    h = t->idle;
    if (h != NULL) {
        t->idle = h->next;
        t->n_idle--;
        h->call = c;
        pthread_cond_signal(&h->wake);
    }
    pthread_mutex_unlock(&t->helpers_lock);
    if (h != NULL)
        return 0;

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto no_helper;
    if (pthread_cond_init(&h->wake, NULL) != 0) {
        free(h);
        goto no_helper;
    }
    h->t = t;
    h->call = c;
    atomic_fetch_add(&t->refs, 1);
    /* h->thread is set before the helper can read it: it reads it only after taking helpers_lock. */
    pthread_mutex_lock(&t->helpers_lock);
    if (pthread_create(&h->thread, NULL, lv_helper_main, h) != 0) {
        /* Not made on this thread instead: it would have no timeout, and a hung peer would then block
         * the caller (a pool thread, collectd's init) for as long as it hangs. */
        pthread_mutex_unlock(&t->helpers_lock);
        lv_helper_free(h);
        atomic_fetch_sub(&t->refs, 1);
        goto no_helper;
    }
    pthread_mutex_unlock(&t->helpers_lock);
    return 0;

no_helper:
    atomic_fetch_sub(&c->refs, 1);
    return -EAGAIN;
}

/* Ends the idle helpers and makes the busy ones leave when their calls return. Called by free, when no
 * caller is left. */
static void lv_helpers_stop(bal_libvirt_t *t)
{
    lv_helper_t *idle;

    pthread_mutex_lock(&t->helpers_lock);
    t->closing = true;
    idle = t->idle;
    t->idle = NULL;
    t->n_idle = 0;
    for (lv_helper_t *h = idle; h != NULL; h = h->next) {
        h->quit = true;
        pthread_cond_signal(&h->wake);
    }
    pthread_mutex_unlock(&t->helpers_lock);
    while (idle != NULL) {
        lv_helper_t *h = idle;
        idle = h->next;
        pthread_join(h->thread, NULL);
        lv_helper_free(h);
    }
}

/* Runs c, waiting at most t->timeout_ms. Returns 0 when c has its results; -ETIMEDOUT: the call then
 * belongs to its helper thread, and c->key is pending until it returns; or -EAGAIN: no helper thread
 * could be started, and the call was not made. */
static int lv_call_run(bal_libvirt_t *t, lv_call_t *c)
{
    struct timespec deadline;
    int ret = 0;

    if (t->timeout_ms <= 0) {
        lv_call_work(c);
        return 0;
    }
    if (lv_helper_take(t, c) < 0)
        return -EAGAIN;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += t->timeout_ms / 1000;
    deadline.tv_nsec += (long)(t->timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->m);
    while (!c->done) {
        if (pthread_cond_timedwait(&c->cond, &c->m, &deadline) == ETIMEDOUT && !c->done) {
            c->abandoned = true;
            lv_pending_add(t, c->key);
            ret = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&c->m);
    return ret;
}

/* ---- the connection ---- */

static int lv_connect_errno(const lv_err_t *e)
{
    switch (e->code) {
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
    case VIR_ERR_OPERATION_DENIED:
        return -EACCES;
    case VIR_ERR_NO_MEMORY:
        return -ENOMEM;
    default:
        return -ENOTCONN;
    }
}

/* Opens a connection with its keepalive and callbacks, waiting at most the timeout (virConnectOpen to a
 * hung libvirtd blocks in its handshake). Returns 0 with the call holding the connection in *out, or a
 * negative errno (-ETIMEDOUT, -EAGAIN: no thread for the call) with libvirt's reason in e. Called
 * without t->lock. */
static int lv_open(bal_libvirt_t *t, lv_call_t **out, lv_err_t *e)
{
    lv_call_t *c = lv_call_new(t, LV_OP_OPEN, NULL);
    int ret;

    if (c == NULL || (c->key = strdup("o:")) == NULL || (c->command = strdup(t->uri)) == NULL) {
        if (c != NULL)
            lv_call_unref(c);
        e->code = VIR_ERR_NO_MEMORY;
        e->domain = VIR_FROM_NONE;
        lv_copy_message(e->message, sizeof(e->message), "out of memory");
        return -ENOMEM;
    }
    ret = lv_call_run(t, c);
    if (ret == -ETIMEDOUT || ret == -EAGAIN) {
        e->code = ret == -ETIMEDOUT ? VIR_ERR_OPERATION_TIMEOUT : VIR_ERR_NO_MEMORY;
        e->domain = VIR_FROM_NONE;
        if (ret == -ETIMEDOUT)
            snprintf(e->message, sizeof(e->message), "no answer within %d ms", t->timeout_ms);
        else
            snprintf(e->message, sizeof(e->message), "no thread could be started for the call");
        lv_call_unref(c);
        return ret;
    }
    if (c->rc < 0) {
        *e = c->err;
        lv_call_unref(c);
        return lv_connect_errno(e);
    }
    *out = c;
    return 0;
}

/* Called with t->lock held: c's connection becomes the transport's. */
static void lv_install_locked(bal_libvirt_t *t, lv_call_t *c)
{
    t->conn = c->conn;
    c->conn = NULL;
    t->close_registered = c->close_registered;
    t->event_id = c->event_id;
    t->generation++;
    atomic_store(&t->closed, false);
    atomic_store(&t->live_conn, t->conn);
    if (t->event_id < 0)
        bal_log(&t->logger, BAL_LOG_WARNING,
                "libvirt at '%s' sends no lifecycle events (%s); new and stopped domains are seen at the "
                "next domain list refresh only.",
                t->uri, c->event_err.message);
    lv_call_unref(c);
}

/* Called with t->lock held. Other threads may still hold references to the connection (through their
 * domain handles); libvirt frees it when the last one goes. */
static void lv_close_locked(bal_libvirt_t *t)
{
    if (t->conn == NULL)
        return;
    atomic_store(&t->live_conn, NULL);
    lv_unregister(t->conn, t->close_registered, t->event_id);
    virConnectClose(t->conn);
    virResetLastError();
    t->conn = NULL;
    t->event_id = -1;
    t->close_registered = false;
    lv_cache_drop(t, NULL);
}

/* Called with t->lock held: the connection is gone. Logs once per streak. */
static void lv_lost_locked(bal_libvirt_t *t, const char *reason)
{
    lv_close_locked(t);
    snprintf(t->last_error, sizeof(t->last_error), "%s", reason);
    if (t->in_streak)
        return;
    t->in_streak = true;
    t->failures = 0;
    t->next_attempt_ms = lv_now_ms(t); /* the first reopen is tried at the next call */
    bal_log(&t->logger, BAL_LOG_WARNING,
            "The connection to libvirt at '%s' was lost (%s); it is reopened at the next read, then with "
            "backoff up to %d s.",
            t->uri, reason, BAL_LIBVIRT_BACKOFF_MAX_MS / 1000);
}

static void lv_mark_dead(bal_libvirt_t *t, unsigned generation, const char *reason)
{
    pthread_mutex_lock(&t->lock);
    if (t->conn != NULL && t->generation == generation)
        lv_lost_locked(t, reason);
    pthread_mutex_unlock(&t->lock);
}

static int64_t lv_backoff_ms(unsigned failures)
{
    int64_t delay = BAL_LIBVIRT_BACKOFF_MIN_MS;

    for (unsigned i = 1; i < failures && delay < BAL_LIBVIRT_BACKOFF_MAX_MS; i++)
        delay *= 2;
    return delay < BAL_LIBVIRT_BACKOFF_MAX_MS ? delay : BAL_LIBVIRT_BACKOFF_MAX_MS;
}

/* Returns 0 with a new reference to a live connection and its generation, reopening it if it was lost
 * and the backoff allows; or -ENOTCONN (-EACCES, -ENOMEM) with err filled. */
static int lv_acquire(bal_libvirt_t *t, virConnectPtr *conn, unsigned *generation, bal_error_t *err)
{
    lv_call_t *c = NULL;
    lv_err_t e;
    int64_t now;
    int ret = 0;

    pthread_mutex_lock(&t->lock);
    if (atomic_load(&lv_loop_failed) && !t->loop_failure_logged) {
        t->loop_failure_logged = true;
        bal_log(&t->logger, BAL_LOG_ERR,
                "libvirt's event loop failed (%s); lifecycle events and keepalive stop for '%s'.", lv_loop_error,
                t->uri);
    }
    if (t->conn != NULL && atomic_load(&t->closed))
        lv_lost_locked(t, lv_close_reason(atomic_load(&t->close_reason)));
    if (t->conn == NULL) {
        now = lv_now_ms(t);
        /* One attempt at a time, and none while an abandoned one still waits for libvirtd. */
        if (t->opening || lv_pending_has(t, "o:")) {
            ret = bal_error_set(err, -ENOTCONN,
                                "The connection to libvirt at '%s' is being reopened; the last attempt failed: %s.",
                                t->uri, t->last_error);
            goto out;
        }
        if (now < t->next_attempt_ms) {
            ret = bal_error_set(err, -ENOTCONN,
                                "There is no connection to libvirt at '%s' (%s); the next attempt is in %lld ms.",
                                t->uri, t->last_error, (long long)(t->next_attempt_ms - now));
            goto out;
        }
        t->opening = true;
        pthread_mutex_unlock(&t->lock);
        ret = lv_open(t, &c, &e);
        pthread_mutex_lock(&t->lock);
        t->opening = false;
        if (ret < 0) {
            t->failures++;
            t->next_attempt_ms = now + lv_backoff_ms(t->failures);
            snprintf(t->last_error, sizeof(t->last_error), "%s", e.message);
            ret = bal_error_set(err, ret == -ETIMEDOUT || ret == -EAGAIN ? -ENOTCONN : ret,
                                "Cannot reconnect to libvirt at '%s': %s.", t->uri, e.message);
            goto out;
        }
        lv_install_locked(t, c);
        bal_log(&t->logger, BAL_LOG_NOTICE, "Reconnected to libvirt at '%s' after %u failed attempts.",
                t->uri, t->failures);
        t->in_streak = false;
        t->failures = 0;
        /* Domains may have started or stopped while no events could arrive. */
        atomic_store(&t->changed, true);
    }
    if (virConnectRef(t->conn) < 0) {
        virResetLastError();
        ret = bal_error_set(err, -ENOTCONN, "The connection to libvirt at '%s' could not be used.", t->uri);
        goto out;
    }
    *conn = t->conn;
    *generation = t->generation;
out:
    pthread_mutex_unlock(&t->lock);
    return ret;
}

/* A failed call's libvirt error as one of the transport's errors. */
static int lv_errno(const lv_err_t *e, virConnectPtr conn)
{
    bool alive;

    switch (e->code) {
    case VIR_ERR_NO_DOMAIN:
        return -ENOENT;
    case VIR_ERR_OPERATION_INVALID: /* "domain is not running" */
        return -ESHUTDOWN;
    case VIR_ERR_OPERATION_TIMEOUT: /* libvirtd gave up waiting for the domain's job lock */
        return -ETIMEDOUT;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC:
        return -ENOTCONN;
    default:
        break;
    }
    /* A system error on our socket is a lost connection; one that libvirtd relays from QEMU's monitor
     * (domain VIR_FROM_QEMU) is not, unless the connection died with it. */
    alive = virConnectIsAlive(conn) == 1;
    if (!alive)
        virResetLastError();
    if (!alive || (e->code == VIR_ERR_SYSTEM_ERROR && (e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE)))
        return -ENOTCONN;
    switch (e->code) {
    case VIR_ERR_NO_SUPPORT:
        return -EOPNOTSUPP;
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_AUTH_FAILED:
        return -EACCES;
    case VIR_ERR_NO_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* ---- the operations ---- */

static int lv_list_domains(bal_transport_t *base, bal_domain_list_t *out, bal_error_t *err)
{
    bal_libvirt_t *t = (bal_libvirt_t *)base;
    bal_domain_list_t list = {NULL, 0};
    virConnectPtr conn = NULL;
    unsigned generation = 0;
    lv_call_t *c = NULL;
    int ret;

    pthread_mutex_lock(&t->lock);
    ret = lv_pending_has(t, "l:") ? -ETIMEDOUT : 0;
    pthread_mutex_unlock(&t->lock);
    if (ret < 0)
        return bal_error_set(err, ret,
                             "The previous domain list request to libvirt at '%s' has not returned after the "
                             "%d ms timeout.",
                             t->uri, t->timeout_ms);
    ret = lv_acquire(t, &conn, &generation, err);
    if (ret < 0)
        return ret;
    c = lv_call_new(t, LV_OP_LIST, conn);
    if (c == NULL || (c->key = strdup("l:")) == NULL) {
        if (c == NULL)
            virConnectClose(conn);
        ret = bal_error_set(err, -ENOMEM, "Out of memory while listing the domains of libvirt at '%s'.", t->uri);
        goto out;
    }
    ret = lv_call_run(t, c);
    if (ret == -ETIMEDOUT) {
        ret = bal_error_set(err, ret, "libvirt at '%s' did not list the running domains within %d ms.", t->uri,
                            t->timeout_ms);
        goto out;
    }
    if (ret == -EAGAIN) {
        ret = bal_error_set(err, -ENOMEM,
                            "No thread could be started to list the domains of libvirt at '%s'; none was asked.",
                            t->uri);
        goto out;
    }
    if (c->rc < 0) {
        ret = lv_errno(&c->err, conn);
        if (ret == -ENOTCONN)
            lv_mark_dead(t, generation, c->err.message);
        ret = bal_error_set(err, ret, "libvirt at '%s' could not list the running domains: %s.", t->uri,
                            c->err.message);
        goto out;
    }

    list.items = calloc(c->ndoms > 0 ? (size_t)c->ndoms : 1, sizeof(*list.items));
    if (list.items == NULL) {
        ret = bal_error_set(err, -ENOMEM, "Out of memory while listing the domains of libvirt at '%s'.", t->uri);
        goto out;
    }
    for (int i = 0; i < c->ndoms; i++) {
        bal_domain_info_t *item = &list.items[list.count];
        const char *name = virDomainGetName(c->doms[i]);
        unsigned id = virDomainGetID(c->doms[i]);

        /* These read the handle libvirt already sent; they fail only on a broken handle. */
        if (name == NULL || virDomainGetUUIDString(c->doms[i], item->uuid) < 0) {
            virResetLastError();
            continue;
        }
        item->name = strdup(name);
        if (item->name == NULL) {
            bal_domain_list_free(&list);
            ret = bal_error_set(err, -ENOMEM, "Out of memory while listing the domains of libvirt at '%s'.",
                                t->uri);
            goto out;
        }
        item->instance = id;
        list.count++;
    }

    /* The fresh handles replace the cache, which also forgets domains that are gone. */
    pthread_mutex_lock(&t->lock);
    if (t->conn != NULL && t->generation == generation) {
        lv_cache_drop(t, NULL);
        for (int i = 0; i < c->ndoms; i++) {
            char key[2 + VIR_UUID_STRING_BUFLEN];
            key[0] = 'u';
            key[1] = ':';
            if (virDomainGetUUIDString(c->doms[i], key + 2) == 0)
                lv_cache_put(t, key, c->doms[i]);
            else
                virResetLastError();
        }
    }
    pthread_mutex_unlock(&t->lock);
    *out = list;
    ret = 0;
out:
    lv_call_unref(c);
    return ret;
}

static int lv_execute(bal_transport_t *base, const bal_domain_info_t *info, const char *command, char **reply,
                      bal_error_t *err)
{
    bal_libvirt_t *t = (bal_libvirt_t *)base;
    virConnectPtr conn = NULL;
    unsigned generation = 0;
    lv_call_t *c = NULL;
    char *key;
    int ret;

    key = lv_key(info);
    if (key == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory while sending a QMP command to domain '%s'.",
                             info->name);
    pthread_mutex_lock(&t->lock);
    ret = lv_pending_has(t, key) ? -ETIMEDOUT : 0;
    pthread_mutex_unlock(&t->lock);
    if (ret < 0) {
        ret = bal_error_set(err, ret,
                            "The previous QMP command for domain '%s' has not returned after the %d ms "
                            "timeout; no other is sent until it does.",
                            info->name, t->timeout_ms);
        goto out;
    }
    ret = lv_acquire(t, &conn, &generation, err);
    if (ret < 0)
        goto out;
    c = lv_call_new(t, LV_OP_COMMAND, conn);
    if (c == NULL || (c->command = strdup(command)) == NULL) {
        if (c == NULL)
            virConnectClose(conn);
        ret = bal_error_set(err, -ENOMEM, "Out of memory while sending a QMP command to domain '%s'.",
                            info->name);
        goto out;
    }
    c->key = key;
    key = NULL;
    pthread_mutex_lock(&t->lock);
    if (t->generation == generation)
        c->dom = lv_cache_get(t, c->key);
    pthread_mutex_unlock(&t->lock);

    ret = lv_call_run(t, c);
    if (ret == -ETIMEDOUT) {
        ret = bal_error_set(err, ret, "Domain '%s' did not answer a QMP command through libvirt within %d ms.",
                            info->name, t->timeout_ms);
        goto out;
    }
    if (ret == -EAGAIN) {
        ret = bal_error_set(err, -ENOMEM,
                            "No thread could be started to send a QMP command to domain '%s'; it was not sent.",
                            info->name);
        goto out;
    }
    if (c->looked_up) {
        pthread_mutex_lock(&t->lock);
        if (t->conn != NULL && t->generation == generation)
            lv_cache_put(t, c->key, c->dom);
        pthread_mutex_unlock(&t->lock);
    }
    if (c->rc == 0) {
        *reply = c->reply;
        c->reply = NULL;
        goto out;
    }

    ret = lv_errno(&c->err, conn);
    switch (ret) {
    case -ENOENT:
        pthread_mutex_lock(&t->lock);
        lv_cache_drop(t, c->key);
        pthread_mutex_unlock(&t->lock);
        ret = bal_error_set(err, ret, "Domain '%s' is not known to libvirt any more: %s.", info->name,
                            c->err.message);
        break;
    case -ESHUTDOWN:
        ret = bal_error_set(err, ret, "Domain '%s' is not running: %s.", info->name, c->err.message);
        break;
    case -ENOTCONN:
        lv_mark_dead(t, generation, c->err.message);
        ret = bal_error_set(err, ret,
                            "The connection to libvirt at '%s' was lost while sending a QMP command to domain "
                            "'%s': %s.",
                            t->uri, info->name, c->err.message);
        break;
    case -ETIMEDOUT:
        ret = bal_error_set(err, ret, "libvirt timed out sending a QMP command to domain '%s': %s.", info->name,
                            c->err.message);
        break;
    default:
        ret = bal_error_set(err, ret, "libvirt could not send a QMP command to domain '%s': %s.", info->name,
                            c->err.message);
        break;
    }
out:
    if (c != NULL)
        lv_call_unref(c);
    free(key);
    return ret;
}

static bool lv_take_changes(bal_transport_t *base)
{
    bal_libvirt_t *t = (bal_libvirt_t *)base;

    return atomic_exchange(&t->changed, false);
}

/* ---- the event-loop thread ----
 *
 * libvirt's default loop is one GLib main context per process, and other threads may iterate it too
 * (collectd's virt plugin does). GLib lets one thread at a time own the context and dispatch, with no
 * fairness: whichever gets there runs any source of ours, and ours may wait for its turn. Two facts shape
 * what follows:
 *  - a thread is never stopped by something it must dispatch itself: it checks a flag before each
 *    iteration, and once the flag is set, a periodic kick makes iterations end (a dispatch, or a turn
 *    handed on) until it has seen it;
 *  - the threads waiting for their turn share one condition variable, and a release of the context takes
 *    the first waiter off its list but may wake another: with two waiters (three threads iterating), one
 *    can be left asleep until some later release happens to wake it, or for ever (seen with GLib 2.74
 *    under load). So the process's transports share a single thread, which with the virt plugin's makes
 *    two; and free waits for the thread's stop at most LV_STOP_WAIT_MS, then leaves it to stop on its own
 *    (it holds nothing but its lv_loop_t). */

/* How often a stop kick fires until the loop thread has stopped. */
#define LV_KICK_MS 1
/* The longest free waits for the loop thread to stop (it takes milliseconds unless GLib lost its wake-up). */
#define LV_STOP_WAIT_MS 30000

static void lv_loop_unref(lv_loop_t *loop)
{
    if (atomic_fetch_sub(&loop->refs, 1) != 1)
        return;
    pthread_cond_destroy(&loop->cond);
    pthread_mutex_destroy(&loop->m);
    free(loop);
}

static void lv_loop_release(void *opaque)
{
    lv_loop_unref(opaque);
}

static void lv_noop_timeout(int timer, void *opaque)
{
    (void)timer;
    (void)opaque;
}

/* Armed by lv_drained when another thread ran it. The loop thread may be waiting for its turn to own the
 * context, or, given it, block in its poll with nothing left to dispatch: this makes the owner's
 * iteration end every LV_KICK_MS (handing the turn on), and ends ours if it owns the context. */
static void lv_kick(int timer, void *opaque)
{
    lv_loop_t *loop = opaque;

    if (atomic_load(&loop->exited_flag) || pthread_equal(pthread_self(), loop->thread))
        virEventRemoveTimeout(timer);
}

/* The free function of the sentinel timeout that the last free queues behind its closed connection's
 * deferred cleanups (libvirt frees removed watches and timeouts from idle callbacks, in order): they
 * have run, on whichever thread. */
static void lv_drained(void *opaque)
{
    lv_loop_t *loop = opaque;

    atomic_store(&loop->quit, true);
    if (!pthread_equal(pthread_self(), loop->thread)) {
        atomic_fetch_add(&loop->refs, 1);
        if (virEventAddTimeout(LV_KICK_MS, lv_kick, loop, lv_loop_release) < 0) {
            virResetLastError();
            atomic_fetch_sub(&loop->refs, 1);
        }
    }
    lv_loop_unref(loop); /* the sentinel's */
}

static void *lv_loop_main(void *opaque)
{
    lv_loop_t *loop = opaque;
    lv_err_t e;

    while (!atomic_load(&loop->quit)) {
        pthread_mutex_lock(&loop->m);
        while (loop->holds > 0 && !atomic_load(&loop->quit))
            pthread_cond_wait(&loop->cond, &loop->m);
        pthread_mutex_unlock(&loop->m);
        if (atomic_load(&loop->quit))
            break;
        if (virEventRunDefaultImpl() < 0) {
            /* Reported by each transport at its next call, with its own logger. */
            lv_err_capture(&e);
            snprintf(lv_loop_error, sizeof(lv_loop_error), "%s", e.message);
            atomic_store(&lv_loop_failed, true);
            break;
        }
    }
    pthread_mutex_lock(&loop->m);
    loop->exited = true;
    atomic_store(&loop->exited_flag, true);
    pthread_cond_broadcast(&loop->cond);
    pthread_mutex_unlock(&loop->m);
    lv_loop_unref(loop);
    return NULL;
}

/* Wakes the loop thread so that it sees a hold at once, not at the batch's first command. */
static void lv_park_kick(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

/* Called with lv_loop_lock held. */
static void lv_hold_locked(bal_libvirt_t *t, bool hold)
{
    bool kick = false;

    if (lv_loop == NULL || !t->loop_user || t->holding == hold)
        return;
    t->holding = hold;
    pthread_mutex_lock(&lv_loop->m);
    if (hold)
        kick = lv_loop->holds++ == 0;
    else if (--lv_loop->holds == 0)
        pthread_cond_broadcast(&lv_loop->cond);
    pthread_mutex_unlock(&lv_loop->m);
    if (kick && virEventAddTimeout(0, lv_park_kick, NULL, NULL) < 0)
        virResetLastError();
}

/* A batch of commands: the loop thread stops iterating until it ends. While it iterates, every command
 * wakes it twice (libvirt's client takes the connection's socket out of the loop for the call and puts it
 * back), which cost more CPU than the command itself (tests/bench). The commands need no loop: the thread
 * making a call reads the socket itself, and what arrives meanwhile (lifecycle events, keepalive) is
 * queued and dispatched when the loop runs again, before the next cycle looks at it. */
static void lv_batch(bal_transport_t *base, bool begin)
{
    bal_libvirt_t *t = (bal_libvirt_t *)base;

    pthread_mutex_lock(&lv_loop_lock);
    lv_hold_locked(t, begin);
    pthread_mutex_unlock(&lv_loop_lock);
}

/* Counts t among the loop thread's users, starting the thread for the first. Returns 0 or -EAGAIN
 * (-ENOMEM) with err filled. */
static int lv_loop_join_users(bal_libvirt_t *t, bal_error_t *err)
{
    pthread_condattr_t attr;
    lv_loop_t *loop;
    int ret = 0;

    pthread_mutex_lock(&lv_loop_lock);
    if (lv_loop_users > 0) {
        lv_loop_users++;
        t->loop_user = true;
        goto out;
    }
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        ret = bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", t->uri);
        goto out;
    }
    atomic_init(&loop->refs, 2); /* lv_loop's and the thread's */
    if (pthread_mutex_init(&loop->m, NULL) != 0 || pthread_condattr_init(&attr) != 0) {
        free(loop);
        ret = bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", t->uri);
        goto out;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&loop->cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        pthread_mutex_destroy(&loop->m);
        free(loop);
        ret = bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", t->uri);
        goto out;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_create(&loop->thread, NULL, lv_loop_main, loop) != 0) {
        pthread_cond_destroy(&loop->cond);
        pthread_mutex_destroy(&loop->m);
        free(loop);
        ret = bal_error_set(err, -EAGAIN, "No thread could be started for libvirt's event loop.");
        goto out;
    }
    lv_loop = loop;
    lv_loop_users = 1;
    t->loop_user = true;
out:
    pthread_mutex_unlock(&lv_loop_lock);
    return ret;
}

/* Uncounts t; the last user stops the thread, after the cleanups that its closed connection left queued
 * in the loop have run. Called without t->lock, after the connection was closed. */
static void lv_loop_leave_users(bal_libvirt_t *t)
{
    struct timespec deadline;
    lv_loop_t *loop;
    int sentinel;
    bool exited;

    if (!t->loop_user)
        return;
    pthread_mutex_lock(&lv_loop_lock);
    lv_hold_locked(t, false); /* a batch never outlives its agent's read; this is for safety */
    t->loop_user = false;
    if (--lv_loop_users > 0) {
        pthread_mutex_unlock(&lv_loop_lock);
        return;
    }
    loop = lv_loop;
    lv_loop = NULL;
    /* Added and removed at once: its free function is queued behind those cleanups. */
    atomic_fetch_add(&loop->refs, 1);
    sentinel = virEventAddTimeout(-1, lv_noop_timeout, loop, lv_drained);
    if (sentinel < 0) {
        /* Never with libvirt's own loop. Told now, the thread stops at its next iteration. */
        virResetLastError();
        atomic_fetch_sub(&loop->refs, 1);
        atomic_store(&loop->quit, true);
    } else {
        virEventRemoveTimeout(sentinel);
    }

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += LV_STOP_WAIT_MS / 1000;
    pthread_mutex_lock(&loop->m);
    while (!loop->exited && pthread_cond_timedwait(&loop->cond, &loop->m, &deadline) != ETIMEDOUT)
        ;
    exited = loop->exited;
    pthread_mutex_unlock(&loop->m);
    if (exited) {
        pthread_join(loop->thread, NULL);
    } else {
        pthread_detach(loop->thread);
        bal_log(&t->logger, BAL_LOG_WARNING,
                "The event-loop thread for libvirt at '%s' did not stop within %d s (another thread iterates "
                "libvirt's event loop and GLib has not woken it); it is left to stop on its own.",
                t->uri, LV_STOP_WAIT_MS / 1000);
    }
    lv_loop_unref(loop); /* lv_loop's */
    pthread_mutex_unlock(&lv_loop_lock);
}

static void lv_free(bal_transport_t *base)
{
    bal_libvirt_t *t = (bal_libvirt_t *)base;

    pthread_mutex_lock(&t->lock);
    /* Closed while the loop still runs, so that libvirt's deferred cleanups of the connection run. */
    lv_close_locked(t);
    pthread_mutex_unlock(&t->lock);
    lv_helpers_stop(t);
    lv_loop_leave_users(t);
    virResetLastError();
    lv_unref(t);
}

static const bal_transport_ops_t lv_ops = {
    .name = "libvirt",
    .list_domains = lv_list_domains,
    .execute = lv_execute,
    .take_changes = lv_take_changes,
    .batch = lv_batch,
    .free = lv_free,
};

bal_transport_t *bal_libvirt_transport_new(const char *uri, int timeout_ms, const bal_logger_t *logger,
                                           const bal_clock_t *clock, bal_error_t *err)
{
    bal_libvirt_t *t = NULL;
    lv_call_t *c = NULL;
    lv_err_t e;
    int ret;

    pthread_once(&lv_once, lv_global_init);
    if (lv_once_result < 0) {
        bal_error_set(err, lv_once_result, "libvirt's event loop could not be set up: %s.", lv_once_message);
        return NULL;
    }
    if (uri == NULL)
        uri = BAL_LIBVIRT_DEFAULT_URI;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto nomem;
    t->base.ops = &lv_ops;
    atomic_init(&t->refs, 1);
    t->timeout_ms = timeout_ms;
    if (logger != NULL)
        t->logger = *logger;
    t->clock = clock != NULL ? clock : bal_clock_system();
    t->event_id = -1;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        goto nomem;
    }
    if (pthread_mutex_init(&t->helpers_lock, NULL) != 0) {
        pthread_mutex_destroy(&t->lock);
        free(t);
        goto nomem;
    }
    t->uri = strdup(uri);
    if (t->uri == NULL) {
        lv_unref(t);
        goto nomem;
    }

    ret = lv_open(t, &c, &e);
    if (ret < 0) {
        bal_error_set(err, ret, "Cannot connect to libvirt at '%s': %s.", uri, e.message);
        lv_helpers_stop(t);
        lv_unref(t); /* a helper still in virConnectOpen keeps its own reference */
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    lv_install_locked(t, c);
    pthread_mutex_unlock(&t->lock);
    if (lv_loop_join_users(t, err) < 0) {
        lv_free(&t->base);
        return NULL;
    }
    return &t->base;

nomem:
    bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", uri);
    return NULL;
}
