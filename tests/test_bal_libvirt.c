/* The libvirt transport, with libvirt's connection and domain API replaced at link time
 * (-Wl,--wrap=..., see tests/agent.mk) by a fake libvirtd: its virDomainQemuMonitorCommand answers from
 * the real device model (virtio/, on a manual clock) through a small QMP handler, so a simulated
 * balloon sits behind the passthrough API. Not mocked: libvirt's default event loop (the transport's
 * thread really runs it, and the tests fire events from it), its error reporting, and virConnectOpen for
 * URIs written "real:URI" (to check that a real libvirt error prints nothing). pthread_create and
 * pthread_join are wrapped too, for the agent library only: the tests count the transport's threads
 * exactly (its event-loop thread and its detached helpers) and can refuse it a thread.
 *
 * Time: the reconnect backoff runs on an injected clock; only the per-call timeout and the event-loop
 * hand-offs use real time. Every wait of the tests is bounded (wait_s, longer under valgrind), and so are
 * the fake's own hangs; a watchdog fails the run, naming the test, should anything else hang. With a
 * short per-call timeout (HANG_MS), a call that was never hung may still time out on a loaded machine (its
 * helper thread was not scheduled in time): where a call must succeed, the tests retry such timeouts
 * within wait_s and count what the late calls did, rather than trust the scheduler. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "agent/bal_libvirt.h"
#include "agent/bal_qmp.h"
#include "agent/bal_transport.h"
#include "virtio/vb_device.h"
#include "tests/tt_env.h"

#define BALLOON "/machine/peripheral/balloon0"
#define WALL_BASE INT64_C(1700000000)
#define MIB (UINT64_C(1) << 20)
#define HANG_MS 100 /* the per-call timeout of the tests where a hung call must time out */

/* Real-time bound of every wait for another thread (never reached when things work), and the per-call
 * timeout of the tests where no call may time out: 5 s, 50 s under valgrind (BALLOON_VALGRIND=1). */
static int wait_s = 5;
#define LONG_MS (wait_s * 1000)

/* ---- the fake libvirtd ---- */

/* The public headers leave these incomplete: the fake gives them a body. No real libvirt function ever
 * sees one. Registrations are per connection, as in libvirt. */
struct _virConnect {
    int refs;
    unsigned server_gen; /* the libvirtd instance it talks to: dead once that one is gone */
    struct _virConnect *next; /* fk.conns */
    virConnectCloseFunc close_cb; /* NULL: none registered */
    void *close_opaque;
    virFreeCallback close_free;
    virConnectDomainEventCallback lifecycle_cb; /* NULL: none registered */
    void *lifecycle_opaque;
    virFreeCallback lifecycle_free;
    /* As in libvirt, a callback deregistered while it is being dispatched has its free function called
     * once the dispatch is over, by the dispatching thread. */
    unsigned dispatching;
    virFreeCallback deferred_free[2];
    void *deferred_opaque[2];
    unsigned n_deferred;
};

typedef struct fake_vm {
    char name[64];
    char uuid[VIR_UUID_STRING_BUFLEN];
    bool defined;
    bool running;
    unsigned id;
    uint64_t memory;
    vb_device_t *dev;
    bool hang;         /* monitor commands block until cleared */
    unsigned commands; /* monitor commands that reached QEMU */
} fake_vm_t;

struct _virDomain {
    int refs;
    fake_vm_t *vm;
    virConnectPtr conn; /* a handle holds a reference to its connection, as in libvirt */
    unsigned id;        /* the id the handle was made with */
};

#define MAX_VMS 8

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC (main) */
    vb_manual_clock_t mc;
    fake_vm_t vms[MAX_VMS];
    size_t n_vms;
    unsigned next_id;
    unsigned server_gen;
    bool server_down;
    bool open_hang; /* virConnectOpen blocks until cleared (a hung libvirtd accepts, then never answers) */

    unsigned opens, lookups, live_conns, live_doms, hanging, violations, id_violations;
    unsigned stuck; /* hangs that nobody released within the bound: the fake gave up on them */
    char last_uri[256];
    char last_command[1024];
    int keepalive_interval, keepalive_count;

    virConnectPtr conns; /* every live connection */
    unsigned close_registrations, event_registrations;

    bool inject_armed; /* the next monitor command fails with this error */
    int inject_code, inject_domain;
    char inject_message[256];

    /* The agent library's threads (pthread_create wrapped): started and not yet returned, joined, and
     * how many of the next creations fail. */
    unsigned agent_threads, agent_joins, fail_thread_creates;

    unsigned iterating; /* threads inside an iteration of libvirt's event loop (virEventRunDefaultImpl) */
} fk = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* libvirt's errors are per thread; so are the fake's. */
static __thread virError tl_err;
static __thread bool tl_err_set;
static __thread char tl_msg[256];

static void fake_error(int code, int domain, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fake_error(int code, int domain, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof(tl_msg), fmt, ap);
    va_end(ap);
    memset(&tl_err, 0, sizeof(tl_err));
    tl_err.code = code;
    tl_err.domain = domain;
    tl_err.level = VIR_ERR_ERROR;
    tl_err.message = tl_msg;
    tl_err_set = true;
}

static struct timespec mono_in_ms(int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Called with fk.lock held, by a fake call that hangs until *flag is cleared: bounded, so that a test
 * that never releases it (or a transport call made inline on the test's own thread) fails instead of
 * hanging the suite. */
static void hang_while_locked(const bool *flag)
{
    struct timespec limit = mono_in_ms((int64_t)4 * wait_s * 1000);

    fk.hanging++;
    pthread_cond_broadcast(&fk.cond);
    while (*flag) {
        if (pthread_cond_timedwait(&fk.cond, &fk.lock, &limit) == ETIMEDOUT && *flag) {
            fk.stuck++;
            break;
        }
    }
    fk.hanging--;
    pthread_cond_broadcast(&fk.cond);
}

/* Called with fk.lock held. */
static bool conn_alive_locked(virConnectPtr conn)
{
    return !fk.server_down && conn->server_gen == fk.server_gen;
}

static void conn_unref_locked(virConnectPtr conn)
{
    if (--conn->refs != 0)
        return;
    /* The transport must undo its registrations before it lets go of a connection. */
    if (conn->close_cb != NULL || conn->lifecycle_cb != NULL)
        fk.violations++;
    fk.close_registrations -= conn->close_cb != NULL;
    fk.event_registrations -= conn->lifecycle_cb != NULL;
    for (virConnectPtr *link = &fk.conns; *link != NULL; link = &(*link)->next) {
        if (*link == conn) {
            *link = conn->next;
            break;
        }
    }
    free(conn);
    fk.live_conns--;
    pthread_cond_broadcast(&fk.cond);
}

static virDomainPtr dom_new_locked(virConnectPtr conn, fake_vm_t *vm)
{
    virDomainPtr d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->refs = 1;
    d->vm = vm;
    d->conn = conn;
    d->id = vm->running ? vm->id : (unsigned)-1;
    conn->refs++;
    fk.live_doms++;
    return d;
}

/* The wrappers: prototypes first, for -Wmissing-prototypes. */
virConnectPtr __real_virConnectOpen(const char *name);
virConnectPtr __wrap_virConnectOpen(const char *name);
int __wrap_virConnectClose(virConnectPtr conn);
int __wrap_virConnectRef(virConnectPtr conn);
int __wrap_virConnectIsAlive(virConnectPtr conn);
int __wrap_virConnectSetKeepAlive(virConnectPtr conn, int interval, unsigned int count);
int __wrap_virConnectRegisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb, void *opaque,
                                           virFreeCallback freecb);
int __wrap_virConnectUnregisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb);
int __wrap_virConnectDomainEventRegisterAny(virConnectPtr conn, virDomainPtr dom, int eventID,
                                            virConnectDomainEventGenericCallback cb, void *opaque,
                                            virFreeCallback freecb);
int __wrap_virConnectDomainEventDeregisterAny(virConnectPtr conn, int callbackID);
int __wrap_virConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains, unsigned int flags);
virDomainPtr __wrap_virDomainLookupByUUIDString(virConnectPtr conn, const char *uuid);
virDomainPtr __wrap_virDomainLookupByName(virConnectPtr conn, const char *name);
int __wrap_virDomainRef(virDomainPtr domain);
int __wrap_virDomainFree(virDomainPtr domain);
const char *__wrap_virDomainGetName(virDomainPtr domain);
int __wrap_virDomainGetUUIDString(virDomainPtr domain, char *buf);
unsigned int __wrap_virDomainGetID(virDomainPtr domain);
int __wrap_virDomainQemuMonitorCommand(virDomainPtr domain, const char *cmd, char **result, unsigned int flags);
virErrorPtr __real_virGetLastError(void);
virErrorPtr __wrap_virGetLastError(void);
void __real_virResetLastError(void);
void __wrap_virResetLastError(void);
int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg);
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg);
int __real_pthread_join(pthread_t thread, void **ret);
int __real_virEventRunDefaultImpl(void);
int __wrap_virEventRunDefaultImpl(void);
int __wrap_pthread_join(pthread_t thread, void **ret);

virErrorPtr __wrap_virGetLastError(void)
{
    return tl_err_set ? &tl_err : __real_virGetLastError();
}

void __wrap_virResetLastError(void)
{
    tl_err_set = false;
    __real_virResetLastError();
}

/* ---- the agent library's threads (the tests' own threads use __real_pthread_create) ---- */

typedef struct agent_start {
    void *(*start)(void *);
    void *arg;
} agent_start_t;

static void *agent_thread_main(void *opaque)
{
    agent_start_t s = *(agent_start_t *)opaque;
    void *ret;

    free(opaque);
    ret = s.start(s.arg);
    /* Everything the thread does for the transport is done: what is left is glibc's thread exit. */
    pthread_mutex_lock(&fk.lock);
    fk.agent_threads--;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    return ret;
}

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
    agent_start_t *s;
    int ret;

    pthread_mutex_lock(&fk.lock);
    if (fk.fail_thread_creates > 0) {
        fk.fail_thread_creates--;
        pthread_mutex_unlock(&fk.lock);
        return EAGAIN;
    }
    fk.agent_threads++;
    pthread_mutex_unlock(&fk.lock);
    s = malloc(sizeof(*s));
    ret = s != NULL ? 0 : ENOMEM;
    if (s != NULL) {
        s->start = start;
        s->arg = arg;
        ret = __real_pthread_create(thread, attr, agent_thread_main, s);
        if (ret != 0)
            free(s);
    }
    if (ret != 0) {
        pthread_mutex_lock(&fk.lock);
        fk.agent_threads--;
        pthread_mutex_unlock(&fk.lock);
    }
    return ret;
}

int __wrap_pthread_join(pthread_t thread, void **ret)
{
    int rc = __real_pthread_join(thread, ret);

    pthread_mutex_lock(&fk.lock);
    fk.agent_joins += rc == 0;
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

/* ---- libvirt's event loop, the real one, its iterations counted ---- */

int __wrap_virEventRunDefaultImpl(void)
{
    int rc;

    pthread_mutex_lock(&fk.lock);
    fk.iterating++;
    pthread_mutex_unlock(&fk.lock);
    rc = __real_virEventRunDefaultImpl();
    pthread_mutex_lock(&fk.lock);
    fk.iterating--;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

/* ---- connections ---- */

/* Called with fk.lock held by a deregistration: returns the free function to call now, or NULL when the
 * connection's callbacks are being dispatched (the dispatcher calls it after). */
static virFreeCallback defer_free_locked(virConnectPtr conn, virFreeCallback freecb, void *opaque)
{
    if (freecb == NULL || conn->dispatching == 0)
        return freecb;
    if (conn->n_deferred < 2) {
        conn->deferred_free[conn->n_deferred] = freecb;
        conn->deferred_opaque[conn->n_deferred] = opaque;
        conn->n_deferred++;
    } else {
        fk.violations++;
    }
    return NULL;
}

virConnectPtr __wrap_virConnectOpen(const char *name)
{
    virConnectPtr conn = NULL;

    if (name != NULL && strncmp(name, "real:", 5) == 0)
        return __real_virConnectOpen(name + 5);
    pthread_mutex_lock(&fk.lock);
    fk.opens++;
    snprintf(fk.last_uri, sizeof(fk.last_uri), "%s", name != NULL ? name : "(null)");
    if (fk.open_hang)
        hang_while_locked(&fk.open_hang);
    if (fk.server_down) {
        fake_error(VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC,
                   "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused");
    } else {
        conn = calloc(1, sizeof(*conn));
        if (conn != NULL) {
            conn->refs = 1;
            conn->server_gen = fk.server_gen;
            conn->next = fk.conns;
            fk.conns = conn;
            fk.live_conns++;
        }
    }
    pthread_mutex_unlock(&fk.lock);
    return conn;
}

int __wrap_virConnectClose(virConnectPtr conn)
{
    int left;

    pthread_mutex_lock(&fk.lock);
    left = conn->refs - 1;
    conn_unref_locked(conn);
    pthread_mutex_unlock(&fk.lock);
    return left;
}

int __wrap_virConnectRef(virConnectPtr conn)
{
    pthread_mutex_lock(&fk.lock);
    conn->refs++;
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

int __wrap_virConnectIsAlive(virConnectPtr conn)
{
    int alive;

    pthread_mutex_lock(&fk.lock);
    alive = conn_alive_locked(conn);
    pthread_mutex_unlock(&fk.lock);
    return alive;
}

int __wrap_virConnectSetKeepAlive(virConnectPtr conn, int interval, unsigned int count)
{
    (void)conn;
    pthread_mutex_lock(&fk.lock);
    fk.keepalive_interval = interval;
    fk.keepalive_count = (int)count;
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

int __wrap_virConnectRegisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb, void *opaque,
                                           virFreeCallback freecb)
{
    int ret = 0;

    pthread_mutex_lock(&fk.lock);
    if (conn->close_cb != NULL) {
        /* libvirt refuses a second one on a connection */
        fk.violations++;
        fake_error(VIR_ERR_OPERATION_INVALID, VIR_FROM_NONE, "A close callback is already registered");
        ret = -1;
    } else {
        conn->close_cb = cb;
        conn->close_opaque = opaque;
        conn->close_free = freecb;
        fk.close_registrations++;
    }
    pthread_mutex_unlock(&fk.lock);
    return ret;
}

int __wrap_virConnectUnregisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb)
{
    virFreeCallback freecb = NULL;
    void *opaque = NULL;
    int ret = 0;

    pthread_mutex_lock(&fk.lock);
    if (conn->close_cb == NULL || conn->close_cb != cb) {
        fk.violations++;
        fake_error(VIR_ERR_OPERATION_INVALID, VIR_FROM_NONE, "A different callback was requested");
        ret = -1;
    } else {
        freecb = conn->close_free;
        opaque = conn->close_opaque;
        conn->close_cb = NULL;
        conn->close_opaque = NULL;
        conn->close_free = NULL;
        fk.close_registrations--;
        freecb = defer_free_locked(conn, freecb, opaque);
    }
    pthread_mutex_unlock(&fk.lock);
    if (freecb != NULL)
        freecb(opaque);
    return ret;
}

int __wrap_virConnectDomainEventRegisterAny(virConnectPtr conn, virDomainPtr dom, int eventID,
                                            virConnectDomainEventGenericCallback cb, void *opaque,
                                            virFreeCallback freecb)
{
    pthread_mutex_lock(&fk.lock);
    /* The transport wants one lifecycle callback per connection, for every domain. */
    if (dom != NULL || eventID != VIR_DOMAIN_EVENT_ID_LIFECYCLE || conn->lifecycle_cb != NULL)
        fk.violations++;
    if (conn->lifecycle_cb == NULL)
        fk.event_registrations++;
    conn->lifecycle_cb = (virConnectDomainEventCallback)(void (*)(void))cb;
    conn->lifecycle_opaque = opaque;
    conn->lifecycle_free = freecb;
    pthread_mutex_unlock(&fk.lock);
    return 7;
}

int __wrap_virConnectDomainEventDeregisterAny(virConnectPtr conn, int callbackID)
{
    virFreeCallback freecb = NULL;
    void *opaque = NULL;
    int ret = 0;

    pthread_mutex_lock(&fk.lock);
    if (callbackID != 7 || conn->lifecycle_cb == NULL) {
        fk.violations++;
    } else {
        freecb = conn->lifecycle_free;
        opaque = conn->lifecycle_opaque;
        conn->lifecycle_cb = NULL;
        conn->lifecycle_opaque = NULL;
        conn->lifecycle_free = NULL;
        fk.event_registrations--;
        freecb = defer_free_locked(conn, freecb, opaque);
    }
    /* As in libvirt: the client-side callback goes, but the server cannot be told any more. */
    if (!conn_alive_locked(conn)) {
        fake_error(VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "internal error: client socket is closed");
        ret = -1;
    }
    pthread_mutex_unlock(&fk.lock);
    if (freecb != NULL)
        freecb(opaque);
    return ret;
}

int __wrap_virConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains, unsigned int flags)
{
    virDomainPtr *list;
    int n = 0;

    pthread_mutex_lock(&fk.lock);
    if (flags != VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        fk.violations++;
    if (!conn_alive_locked(conn)) {
        fake_error(VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC, "Cannot write data: Broken pipe");
        pthread_mutex_unlock(&fk.lock);
        return -1;
    }
    list = calloc(MAX_VMS + 1, sizeof(*list));
    for (size_t i = 0; list != NULL && i < fk.n_vms; i++)
        if (fk.vms[i].defined && fk.vms[i].running)
            list[n++] = dom_new_locked(conn, &fk.vms[i]);
    pthread_mutex_unlock(&fk.lock);
    *domains = list;
    return n;
}

static virDomainPtr lookup(virConnectPtr conn, const char *uuid, const char *name)
{
    virDomainPtr d = NULL;

    pthread_mutex_lock(&fk.lock);
    fk.lookups++;
    if (!conn_alive_locked(conn)) {
        fake_error(VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC, "Cannot write data: Broken pipe");
        goto out;
    }
    for (size_t i = 0; i < fk.n_vms; i++) {
        fake_vm_t *vm = &fk.vms[i];
        if (vm->defined && ((uuid != NULL && strcmp(vm->uuid, uuid) == 0) ||
                            (name != NULL && strcmp(vm->name, name) == 0))) {
            d = dom_new_locked(conn, vm);
            goto out;
        }
    }
    if (uuid != NULL)
        fake_error(VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU, "Domain not found: no domain with matching uuid '%s'", uuid);
    else
        fake_error(VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU, "Domain not found: no domain with matching name '%s'", name);
out:
    pthread_mutex_unlock(&fk.lock);
    return d;
}

virDomainPtr __wrap_virDomainLookupByUUIDString(virConnectPtr conn, const char *uuid)
{
    return lookup(conn, uuid, NULL);
}

virDomainPtr __wrap_virDomainLookupByName(virConnectPtr conn, const char *name)
{
    return lookup(conn, NULL, name);
}

int __wrap_virDomainRef(virDomainPtr domain)
{
    pthread_mutex_lock(&fk.lock);
    domain->refs++;
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

int __wrap_virDomainFree(virDomainPtr domain)
{
    pthread_mutex_lock(&fk.lock);
    if (--domain->refs == 0) {
        conn_unref_locked(domain->conn);
        free(domain);
        fk.live_doms--;
    }
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

const char *__wrap_virDomainGetName(virDomainPtr domain)
{
    return domain->vm->name;
}

int __wrap_virDomainGetUUIDString(virDomainPtr domain, char *buf)
{
    memcpy(buf, domain->vm->uuid, VIR_UUID_STRING_BUFLEN);
    return 0;
}

unsigned int __wrap_virDomainGetID(virDomainPtr domain)
{
    return domain->id;
}

/* ---- QEMU behind the passthrough: a QMP handler over the device model (called with fk.lock held) ---- */

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_u64(yajl_gen g, uint64_t v)
{
    char num[32];

    snprintf(num, sizeof(num), "%" PRIu64, v);
    yajl_gen_number(g, num, strlen(num));
}

static void gen_error(yajl_gen g, const char *klass, const char *desc)
{
    yajl_gen_map_open(g);
    gen_str(g, "error");
    yajl_gen_map_open(g);
    gen_str(g, "class");
    gen_str(g, klass);
    gen_str(g, "desc");
    gen_str(g, desc);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

static void gen_qom_get(yajl_gen g, fake_vm_t *vm, const char *property)
{
    char desc[160];
    vb_guest_stats_t st;

    if (strcmp(property, BAL_QMP_PROP_INTERVAL) == 0) {
        yajl_gen_map_open(g);
        gen_str(g, "return");
        yajl_gen_integer(g, vb_device_polling_interval(vm->dev));
        yajl_gen_map_close(g);
    } else if (strcmp(property, BAL_QMP_PROP_STATS) == 0) {
        vb_device_get_stats(vm->dev, &st);
        yajl_gen_map_open(g);
        gen_str(g, "return");
        yajl_gen_map_open(g);
        gen_str(g, "stats");
        yajl_gen_map_open(g);
        for (unsigned i = 0; i < st.count; i++) {
            gen_str(g, vb_stat_name(i));
            gen_u64(g, st.values[i]);
        }
        yajl_gen_map_close(g);
        gen_str(g, "last-update");
        yajl_gen_integer(g, st.last_update);
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    } else {
        snprintf(desc, sizeof(desc), "Property 'virtio-balloon-device.%s' not found", property);
        gen_error(g, "GenericError", desc);
    }
}

static void gen_qom_set(yajl_gen g, fake_vm_t *vm, const char *property, yajl_val value)
{
    char desc[160] = "";

    if (strcmp(property, BAL_QMP_PROP_STATS) == 0) {
        gen_error(g, "GenericError", "Property 'virtio-balloon-device.guest-stats' is not writable");
        return;
    }
    if (strcmp(property, BAL_QMP_PROP_INTERVAL) != 0) {
        snprintf(desc, sizeof(desc), "Property 'virtio-balloon-device.%s' not found", property);
        gen_error(g, "GenericError", desc);
        return;
    }
    if (value == NULL || !YAJL_IS_INTEGER(value)) {
        gen_error(g, "GenericError", "Invalid parameter type for 'guest-stats-polling-interval', expected: integer");
        return;
    }
    if (vb_device_set_polling_interval(vm->dev, YAJL_GET_INTEGER(value), desc, sizeof(desc)) < 0) {
        gen_error(g, "GenericError", desc);
        return;
    }
    vb_device_run(vm->dev);
    yajl_gen_map_open(g);
    gen_str(g, "return");
    yajl_gen_map_open(g);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

static bool is(const char *s, const char *want)
{
    return s != NULL && strcmp(s, want) == 0;
}

static const char *string_at(yajl_val tree, const char **path)
{
    yajl_val v = tree != NULL ? yajl_tree_get(tree, path, yajl_t_string) : NULL;

    return v != NULL ? v->u.string : NULL;
}

static char *qmp_handle(fake_vm_t *vm, const char *cmd)
{
    static const char *exec_path[] = {"execute", NULL};
    static const char *path_path[] = {"arguments", "path", NULL};
    static const char *prop_path[] = {"arguments", "property", NULL};
    static const char *value_path[] = {"arguments", "value", NULL};
    static const char *id_path[] = {"id", NULL};
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_val tree = yajl_tree_parse(cmd, NULL, 0);
    const char *exec = string_at(tree, exec_path);
    const char *path = string_at(tree, path_path);
    const char *prop = string_at(tree, prop_path);
    bool qom = is(exec, "qom-list") || is(exec, "qom-get") || is(exec, "qom-set");
    const unsigned char *buf;
    size_t len;
    char desc[256];
    char *reply;

    vb_device_run(vm->dev);
    if (tree != NULL && yajl_tree_get(tree, id_path, yajl_t_any) != NULL)
        fk.id_violations++;
    if (exec == NULL) {
        gen_error(g, "GenericError", "QMP input must be a JSON object");
    } else if (is(exec, "query-balloon")) {
        yajl_gen_map_open(g);
        gen_str(g, "return");
        yajl_gen_map_open(g);
        gen_str(g, "actual");
        gen_u64(g, vb_device_actual(vm->dev));
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    } else if (qom && path == NULL) {
        gen_error(g, "GenericError", "Parameter 'path' is missing");
    } else if (is(exec, "qom-list") && is(path, "/machine/peripheral")) {
        yajl_gen_map_open(g);
        gen_str(g, "return");
        yajl_gen_array_open(g);
        yajl_gen_map_open(g);
        gen_str(g, "name");
        gen_str(g, "type");
        gen_str(g, "type");
        gen_str(g, "string");
        yajl_gen_map_close(g);
        yajl_gen_map_open(g);
        gen_str(g, "name");
        gen_str(g, "balloon0");
        gen_str(g, "type");
        gen_str(g, "child<virtio-balloon-pci>");
        yajl_gen_map_close(g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
    } else if (is(exec, "qom-get") && is(path, BALLOON) && prop != NULL) {
        gen_qom_get(g, vm, prop);
    } else if (is(exec, "qom-set") && is(path, BALLOON) && prop != NULL) {
        gen_qom_set(g, vm, prop, yajl_tree_get(tree, value_path, yajl_t_any));
    } else if (qom && path != NULL) {
        snprintf(desc, sizeof(desc), "Device '%s' not found", path);
        gen_error(g, "DeviceNotFound", desc);
    } else {
        snprintf(desc, sizeof(desc), "The command %s has not been found", exec);
        gen_error(g, "CommandNotFound", desc);
    }
    yajl_gen_get_buf(g, &buf, &len);
    reply = strndup((const char *)buf, len);
    yajl_gen_free(g);
    yajl_tree_free(tree);
    return reply;
}

int __wrap_virDomainQemuMonitorCommand(virDomainPtr domain, const char *cmd, char **result, unsigned int flags)
{
    fake_vm_t *vm = domain->vm;
    int ret = -1;

    pthread_mutex_lock(&fk.lock);
    if (flags != 0)
        fk.violations++;
    snprintf(fk.last_command, sizeof(fk.last_command), "%s", cmd);
    if (fk.inject_armed) {
        fk.inject_armed = false;
        fake_error(fk.inject_code, fk.inject_domain, "%s", fk.inject_message);
    } else if (!conn_alive_locked(domain->conn)) {
        fake_error(VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC, "Cannot recv data: Connection reset by peer");
    } else if (!vm->defined) {
        fake_error(VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU, "Domain not found: no domain with matching uuid '%s' (%s)",
                   vm->uuid, vm->name);
    } else if (!vm->running) {
        fake_error(VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                   "Requested operation is not valid: domain is not running");
    } else {
        vm->commands++;
        if (vm->hang)
            hang_while_locked(&vm->hang);
        /* libvirt returns 0 whatever QEMU answered: {"return": ...} or {"error": ...}. */
        *result = qmp_handle(vm, cmd);
        ret = *result != NULL ? 0 : -1;
    }
    pthread_mutex_unlock(&fk.lock);
    return ret;
}

/* ---- fixtures and helpers ---- */

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Waits (real time, at most wait_s) until pred() holds under fk.lock; the fake broadcasts fk.cond on
 * changes it makes, and other changes are polled every 10 ms. */
static bool wait_for(bool (*pred)(void))
{
    struct timespec start;
    bool ok;

    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&fk.lock);
    while (!(ok = pred()) && elapsed_s(&start) < wait_s) {
        struct timespec step = mono_in_ms(10);
        pthread_cond_timedwait(&fk.cond, &fk.lock, &step);
    }
    pthread_mutex_unlock(&fk.lock);
    return ok;
}

static unsigned expected_opens;
static bool opens_reached(void)
{
    return fk.opens >= expected_opens;
}

/* wait_for with a shorter bound: for what must NOT happen, checked for bound_ms. */
static bool wait_for_ms(bool (*pred)(void), int bound_ms)
{
    struct timespec start;
    bool ok;

    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&fk.lock);
    while (!(ok = pred()) && elapsed_s(&start) * 1000 < bound_ms) {
        struct timespec step = mono_in_ms(10);
        pthread_cond_timedwait(&fk.cond, &fk.lock, &step);
    }
    pthread_mutex_unlock(&fk.lock);
    return ok;
}

static bool none_hanging(void)
{
    return fk.hanging == 0;
}

static bool one_hanging(void)
{
    return fk.hanging == 1;
}

static bool no_agent_threads(void)
{
    return fk.agent_threads == 0;
}

/* The open transport's event-loop thread and the helper that made its open, now idle (with a timeout;
 * without one, calls are made on the caller's thread): nothing else runs. */
static int open_timeout_ms;
static bool loop_and_opener_only(void)
{
    return fk.agent_threads == 1u + (open_timeout_ms > 0);
}

/* Nothing of the transport is left in the fake, and none of its threads runs. */
static bool all_released(void)
{
    return fk.hanging == 0 && fk.live_doms == 0 && fk.live_conns == 0 && fk.close_registrations == 0 &&
           fk.event_registrations == 0 && fk.agent_threads == 0;
}

static unsigned agent_threads(void)
{
    unsigned n;

    pthread_mutex_lock(&fk.lock);
    n = fk.agent_threads;
    pthread_mutex_unlock(&fk.lock);
    return n;
}

/* Everything the transport touched must have been given back. */
static void assert_fake_released(void)
{
    unsigned live_doms, live_conns, violations, id_violations, close_regs, event_regs, threads, stuck;

    /* Helper threads drop their references after their callers have returned. */
    wait_for(all_released);
    /* Copied first: a failed assertion must not leave the fake's lock held. */
    pthread_mutex_lock(&fk.lock);
    live_doms = fk.live_doms;
    live_conns = fk.live_conns;
    close_regs = fk.close_registrations;
    event_regs = fk.event_registrations;
    violations = fk.violations;
    id_violations = fk.id_violations;
    threads = fk.agent_threads;
    stuck = fk.stuck;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(live_doms, 0);
    assert_int_equal(live_conns, 0);
    assert_int_equal(close_regs, 0);
    assert_int_equal(event_regs, 0);
    assert_int_equal(violations, 0);
    assert_int_equal(id_violations, 0);
    assert_int_equal(threads, 0);
    assert_int_equal(stuck, 0);
}

static atomic_llong now_ms;

static int64_t fake_monotonic_ms(void *opaque)
{
    (void)opaque;
    return atomic_load(&now_ms);
}

static int64_t fake_wall_s(void *opaque)
{
    (void)opaque;
    return WALL_BASE + atomic_load(&now_ms) / 1000;
}

static const bal_clock_t fake_clock = {.wall_s = fake_wall_s, .monotonic_ms = fake_monotonic_ms};

static struct {
    pthread_mutex_t lock;
    unsigned count[BAL_LOG_DEBUG + 1];
    char last[BAL_LOG_DEBUG + 1][1024];
} logs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void capture_log(void *opaque, bal_log_level_t level, const char *message)
{
    (void)opaque;
    pthread_mutex_lock(&logs.lock);
    logs.count[level]++;
    snprintf(logs.last[level], sizeof(logs.last[level]), "%s", message);
    pthread_mutex_unlock(&logs.lock);
}

static const bal_logger_t logger = {.log = capture_log};

static unsigned log_count(bal_log_level_t level)
{
    unsigned n;

    pthread_mutex_lock(&logs.lock);
    n = logs.count[level];
    pthread_mutex_unlock(&logs.lock);
    return n;
}

/* ---- the watchdog: a hang anywhere becomes a failure that names the test ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC (main) */
    const char *test;    /* NULL: disarmed */
    struct timespec deadline;
    bool quit;
} dog = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *watchdog_main(void *opaque)
{
    (void)opaque;
    pthread_mutex_lock(&dog.lock);
    while (!dog.quit) {
        struct timespec now;
        if (dog.test == NULL) {
            pthread_cond_wait(&dog.cond, &dog.lock);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > dog.deadline.tv_sec ||
            (now.tv_sec == dog.deadline.tv_sec && now.tv_nsec >= dog.deadline.tv_nsec)) {
            fflush(stdout);
            fprintf(stderr, "test_bal_libvirt: '%s' has not finished after %d s: it hangs; failing the run.\n",
                    dog.test, 12 * wait_s);
            abort();
        }
        pthread_cond_timedwait(&dog.cond, &dog.lock, &dog.deadline);
    }
    pthread_mutex_unlock(&dog.lock);
    return NULL;
}

static void watchdog_stop(pthread_t thread)
{
    pthread_mutex_lock(&dog.lock);
    dog.quit = true;
    pthread_cond_signal(&dog.cond);
    pthread_mutex_unlock(&dog.lock);
    __real_pthread_join(thread, NULL);
}

static void watchdog_arm(const char *test)
{
    pthread_mutex_lock(&dog.lock);
    dog.test = test;
    dog.deadline = mono_in_ms((int64_t)12 * wait_s * 1000);
    pthread_cond_signal(&dog.cond);
    pthread_mutex_unlock(&dog.lock);
}

static void watchdog_disarm(void)
{
    pthread_mutex_lock(&dog.lock);
    dog.test = NULL;
    pthread_cond_signal(&dog.cond);
    pthread_mutex_unlock(&dog.lock);
}

/* ---- fixtures ---- */

static fake_vm_t *add_vm(const char *name, uint64_t memory, bool running)
{
    fake_vm_t *vm;
    vb_guest_t *guest;

    assert_true(fk.n_vms < MAX_VMS);
    guest = vb_guest_new(VB_GUEST_LINUX, memory, fk.n_vms + 1);
    assert_non_null(guest);
    pthread_mutex_lock(&fk.lock);
    vm = &fk.vms[fk.n_vms];
    memset(vm, 0, sizeof(*vm));
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    snprintf(vm->uuid, sizeof(vm->uuid), "6695eb01-f6a4-4304-89aa-97f2502e19%02zx", fk.n_vms);
    vm->defined = true;
    vm->running = running;
    vm->id = ++fk.next_id;
    vm->memory = memory;
    vm->dev = vb_device_new(&fk.mc.clock, VB_STATS_QEMU72, guest, memory);
    if (vm->dev != NULL)
        fk.n_vms++;
    pthread_mutex_unlock(&fk.lock);
    assert_non_null(vm->dev);
    return vm;
}

/* *state is the test's name (cmocka_unit_test_prestate_setup_teardown). */
static int setup(void **state)
{
    watchdog_arm(*state);
    /* A failed test may have left helper threads finishing: none may run into this one. */
    if (!wait_for(no_agent_threads)) {
        fprintf(stderr, "setup: %u thread(s) of an earlier transport still run after %d s.\n", agent_threads(),
                wait_s);
        return -1;
    }
    pthread_mutex_lock(&fk.lock);
    for (size_t i = 0; i < fk.n_vms; i++)
        vb_device_free(fk.vms[i].dev);
    fk.n_vms = 0;
    fk.next_id = 0;
    fk.server_gen = 1;
    fk.server_down = false;
    fk.open_hang = false;
    fk.opens = fk.lookups = fk.violations = fk.id_violations = fk.stuck = 0;
    fk.agent_joins = fk.fail_thread_creates = 0;
    fk.inject_armed = false;
    fk.keepalive_interval = fk.keepalive_count = 0;
    fk.last_uri[0] = fk.last_command[0] = '\0';
    vb_manual_clock_init(&fk.mc, WALL_BASE);
    pthread_mutex_unlock(&fk.lock);
    pthread_mutex_lock(&logs.lock);
    memset(logs.count, 0, sizeof(logs.count));
    pthread_mutex_unlock(&logs.lock);
    atomic_store(&now_ms, 0);
    return 0;
}

/* The test's transport, which teardown frees if a failed assertion left it open; and the same for the
 * transports of test_free_beside_another_event_loop. */
static bal_transport_t *current;
static bal_transport_t *others[2];

/* A thread of the test's that iterates libvirt's default event loop beside the transports' own. */
static struct {
    pthread_t thread;
    bool running;
    atomic_bool stop;
} foreign;

static int foreign_loop_stop(void);

static void *free_main(void *opaque)
{
    bal_transport_free(opaque);
    return NULL;
}

/* bal_transport_free, waiting for it at most wait_s (it joins the event-loop thread): 0, or -ETIMEDOUT
 * with the call left running. */
static int free_bounded(bal_transport_t *t)
{
    struct timespec deadline;
    pthread_t thread;

    if (__real_pthread_create(&thread, NULL, free_main, t) != 0) {
        bal_transport_free(t);
        return 0;
    }
    /* pthread_timedjoin_np takes CLOCK_REALTIME. */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_s;
    if (pthread_timedjoin_np(thread, NULL, &deadline) != 0) {
        pthread_detach(thread);
        return -ETIMEDOUT;
    }
    return 0;
}

static int teardown(void **state)
{
    int ret = 0;

    (void)state;
    /* After a failed test: close what it left open, let a hung command finish before its device goes. */
    for (size_t i = 0; i < 3; i++) {
        bal_transport_t **t = i == 0 ? &current : &others[i - 1];
        if (*t != NULL && free_bounded(*t) < 0) {
            fprintf(stderr, "teardown: bal_transport_free did not return within %d s.\n", wait_s);
            ret = -1;
        }
        *t = NULL;
    }
    if (foreign.running && foreign_loop_stop() < 0) {
        fprintf(stderr, "teardown: the test's own event-loop thread did not stop within %d s.\n", wait_s);
        ret = -1;
    }
    pthread_mutex_lock(&fk.lock);
    fk.open_hang = false;
    fk.fail_thread_creates = 0;
    for (size_t i = 0; i < fk.n_vms; i++)
        fk.vms[i].hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    if (ret == 0 && (!wait_for(none_hanging) || !wait_for(no_agent_threads))) {
        fprintf(stderr, "teardown: the transport's threads still run after %d s.\n", wait_s);
        ret = -1;
    }
    /* A thread that still runs may still use a device: then they are left, not freed under it. */
    if (ret == 0) {
        pthread_mutex_lock(&fk.lock);
        for (size_t i = 0; i < fk.n_vms; i++)
            vb_device_free(fk.vms[i].dev);
        fk.n_vms = 0;
        pthread_mutex_unlock(&fk.lock);
    }
    watchdog_disarm();
    return ret;
}

/* A timeout of the transport's own making while nothing in the fake was hung: the machine is loaded and
 * a helper thread was not scheduled in time. */
static bool load_timeout(int timeout_ms, int code, const fake_vm_t *vm)
{
    bool hung;

    pthread_mutex_lock(&fk.lock);
    hung = fk.open_hang || (vm != NULL && vm->hang);
    pthread_mutex_unlock(&fk.lock);
    return timeout_ms > 0 && code == -ETIMEDOUT && !hung;
}

/* Opens the test's transport. With a timeout, an open that timed out only because of the machine's load
 * is tried again (within wait_s); the abandoned attempts have finished when this returns. */
static bal_transport_t *open_transport(int timeout_ms)
{
    struct timespec start;
    bal_error_t err;

    assert_null(current);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        memset(&err, 0, sizeof(err));
        current = bal_libvirt_transport_new(NULL, timeout_ms, &logger, &fake_clock, &err);
        if (current != NULL || !load_timeout(timeout_ms, err.code, NULL) || elapsed_s(&start) >= wait_s)
            break;
        usleep(1000);
    }
    if (current == NULL)
        fail_msg("bal_libvirt_transport_new failed: %s", err.message);
    open_timeout_ms = timeout_ms;
    if (!wait_for(loop_and_opener_only))
        fail_msg("%u threads run for a new transport, not only its event loop and the helper that opened it",
                 agent_threads());
    return current;
}

static void close_transport(bal_transport_t *t)
{
    assert_ptr_equal(t, current);
    current = NULL;
    if (free_bounded(t) < 0)
        fail_msg("bal_transport_free did not return within %d s: its event-loop thread did not stop", wait_s);
}

static bal_domain_info_t info_of(fake_vm_t *vm)
{
    bal_domain_info_t info;

    memset(&info, 0, sizeof(info));
    info.name = vm->name;
    snprintf(info.uuid, sizeof(info.uuid), "%s", vm->uuid);
    info.instance = vm->id;
    return info;
}

static unsigned opens(void)
{
    unsigned n;

    pthread_mutex_lock(&fk.lock);
    n = fk.opens;
    pthread_mutex_unlock(&fk.lock);
    return n;
}

static unsigned commands(const fake_vm_t *vm)
{
    unsigned n;

    pthread_mutex_lock(&fk.lock);
    n = vm->commands;
    pthread_mutex_unlock(&fk.lock);
    return n;
}

/* Fires a libvirt callback the way libvirt does: from the event loop, here from the transport's thread
 * that runs it, on every connection that registered one. Blocks (at most wait_s) until it has run, and
 * checks it reached exactly one connection. */
typedef enum { FIRE_LIFECYCLE, FIRE_CLOSE } fire_kind_t;

static struct {
    fire_kind_t kind;
    int code; /* lifecycle event or close reason */
    fake_vm_t *vm;
    bool done;
    unsigned delivered;
    pthread_t thread;
} fire;

static void fire_cb(int timer, void *opaque)
{
    struct {
        virConnectPtr conn;
        virDomainPtr dom;
        virConnectDomainEventCallback lifecycle;
        virConnectCloseFunc close_cb;
        void *opaque;
    } to[8];
    size_t n = 0;

    (void)opaque;
    virEventRemoveTimeout(timer);
    pthread_mutex_lock(&fk.lock);
    if (fire.done) {
        pthread_mutex_unlock(&fk.lock);
        return;
    }
    for (virConnectPtr c = fk.conns; c != NULL && n < sizeof(to) / sizeof(to[0]); c = c->next) {
        if (fire.kind == FIRE_LIFECYCLE ? c->lifecycle_cb == NULL : c->close_cb == NULL)
            continue;
        /* The connection and the event's domain handle live until the callback has returned. */
        c->refs++;
        c->dispatching++;
        to[n].conn = c;
        to[n].dom = fire.kind == FIRE_LIFECYCLE ? dom_new_locked(c, fire.vm) : NULL;
        to[n].lifecycle = c->lifecycle_cb;
        to[n].close_cb = c->close_cb;
        to[n].opaque = fire.kind == FIRE_LIFECYCLE ? c->lifecycle_opaque : c->close_opaque;
        n++;
    }
    pthread_mutex_unlock(&fk.lock);

    for (size_t i = 0; i < n; i++) {
        virFreeCallback deferred[2];
        void *deferred_opaque[2];
        unsigned n_deferred = 0;

        if (fire.kind == FIRE_LIFECYCLE && to[i].dom != NULL)
            to[i].lifecycle(to[i].conn, to[i].dom, fire.code, 0, to[i].opaque);
        else if (fire.kind == FIRE_CLOSE)
            to[i].close_cb(to[i].conn, fire.code, to[i].opaque);
        pthread_mutex_lock(&fk.lock);
        if (--to[i].conn->dispatching == 0) {
            n_deferred = to[i].conn->n_deferred;
            memcpy(deferred, to[i].conn->deferred_free, sizeof(deferred));
            memcpy(deferred_opaque, to[i].conn->deferred_opaque, sizeof(deferred_opaque));
            to[i].conn->n_deferred = 0;
        }
        pthread_mutex_unlock(&fk.lock);
        for (unsigned k = 0; k < n_deferred; k++)
            deferred[k](deferred_opaque[k]);
        if (to[i].dom != NULL)
            __wrap_virDomainFree(to[i].dom);
        __wrap_virConnectClose(to[i].conn);
    }

    pthread_mutex_lock(&fk.lock);
    fire.thread = pthread_self();
    fire.delivered = (unsigned)n;
    fire.done = true;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
}

static bool fired(void)
{
    return fire.done;
}

/* Queues the firing on libvirt's event loop: whichever thread iterates it next delivers it. */
static void fire_arm(fire_kind_t kind, int code, fake_vm_t *vm)
{
    pthread_mutex_lock(&fk.lock);
    fire.kind = kind;
    fire.code = code;
    fire.vm = vm;
    fire.done = false;
    fire.delivered = 0;
    pthread_mutex_unlock(&fk.lock);
    assert_true(virEventAddTimeout(0, fire_cb, NULL, NULL) >= 0);
}

static void fire_on_loop_n(fire_kind_t kind, int code, fake_vm_t *vm, unsigned connections)
{
    fire_arm(kind, code, vm);
    assert_true(wait_for(fired));
    assert_false(pthread_equal(fire.thread, pthread_self()));
    assert_int_equal(fire.delivered, connections);
}

static void fire_on_loop(fire_kind_t kind, int code, fake_vm_t *vm)
{
    fire_on_loop_n(kind, code, vm, 1);
}

static int exec(bal_transport_t *t, fake_vm_t *vm, const char *cmd, char **reply, bal_error_t *err)
{
    bal_domain_info_t info = info_of(vm);

    *reply = NULL;
    memset(err, 0, sizeof(*err));
    /* The transport's own execute, past the agent's allow-list (test_bal_transport's): the fake
     * answers query-balloon, a cheap command QEMU has, that the agent never sends. */
    return t->ops->execute(t, &info, cmd, reply, err);
}

/* query-balloon's "actual", as QEMU prints it: {"return": {"actual": N}}. */
static int reply_actual(const char *reply, uint64_t *out)
{
    const char *p = reply != NULL ? strstr(reply, "\"actual\"") : NULL;

    if (p == NULL)
        return -EPROTO;
    p += strlen("\"actual\"");
    p += strspn(p, " :");
    *out = strtoull(p, NULL, 10);
    return 0;
}

/* exec, tried again (within wait_s) while it fails only because of the machine's load (see
 * load_timeout) with a timeout of timeout_ms. *late counts the commands that were sent by such attempts:
 * they reach the fake when their helper runs, before a later attempt for the domain can be sent. */
static int exec_loaded(bal_transport_t *t, int timeout_ms, fake_vm_t *vm, const char *cmd, char **reply,
                       bal_error_t *err, unsigned *late)
{
    struct timespec start;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        rc = exec(t, vm, cmd, reply, err);
        if (!load_timeout(timeout_ms, rc, vm) || elapsed_s(&start) >= wait_s)
            return rc;
        /* "has not returned": the last late one is still pending, and this one was not sent. */
        if (strstr(err->message, "did not answer") != NULL)
            (*late)++;
        usleep(1000);
    }
}

/* ---- tests ---- */

/* The constructor opens qemu:///system once with keepalive and both callbacks; free undoes all of it
 * and joins the event-loop thread. */
static void test_new_and_free(void **state)
{
    bal_transport_t *t;

    (void)state;
    t = open_transport(0);
    assert_string_equal(t->ops->name, "libvirt");
    assert_int_equal(opens(), 1);
    assert_string_equal(fk.last_uri, BAL_LIBVIRT_DEFAULT_URI);
    assert_int_equal(fk.keepalive_interval, BAL_LIBVIRT_KEEPALIVE_INTERVAL);
    assert_int_equal(fk.keepalive_count, BAL_LIBVIRT_KEEPALIVE_COUNT);
    assert_int_equal(fk.close_registrations, 1);
    assert_int_equal(fk.event_registrations, 1);
    assert_int_equal(agent_threads(), 1); /* the event loop's */
    assert_false(bal_transport_take_changes(t));
    close_transport(t);
    /* free joined it: no waiting here */
    assert_int_equal(agent_threads(), 0);
    assert_int_equal(fk.agent_joins, 1);
    assert_fake_released();
}

static void test_new_fails_when_libvirtd_is_down(void **state)
{
    bal_error_t err;

    (void)state;
    fk.server_down = true;
    memset(&err, 0, sizeof(err));
    assert_null(bal_libvirt_transport_new("qemu:///system", 0, &logger, &fake_clock, &err));
    assert_int_equal(err.code, -ENOTCONN);
    assert_non_null(strstr(err.message, "'qemu:///system'"));
    assert_non_null(strstr(err.message, "Connection refused"));
    assert_int_equal(agent_threads(), 0);
    assert_fake_released();
}

/* Running domains only, with name, UUID and the domain id as the instance; a restart changes it. */
static void test_list_domains(void **state)
{
    fake_vm_t *a, *b;
    bal_transport_t *t;
    bal_domain_list_t list = {NULL, 0};
    bal_error_t err;

    (void)state;
    a = add_vm("alpha", 512 * MIB, true);
    add_vm("stopped", 256 * MIB, false);
    b = add_vm("beta \"quoted\" \\", 1024 * MIB, true);
    t = open_transport(LONG_MS);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 2);
    for (size_t i = 0; i < list.count; i++) {
        fake_vm_t *vm = strcmp(list.items[i].name, a->name) == 0 ? a : b;
        assert_string_equal(list.items[i].name, vm->name);
        assert_string_equal(list.items[i].uuid, vm->uuid);
        assert_int_equal(list.items[i].instance, vm->id);
    }
    bal_domain_list_free(&list);

    pthread_mutex_lock(&fk.lock);
    a->id = ++fk.next_id; /* restarted: a new QEMU process */
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 2);
    for (size_t i = 0; i < list.count; i++)
        if (strcmp(list.items[i].name, a->name) == 0)
            assert_int_equal(list.items[i].instance, a->id);
    bal_domain_list_free(&list);
    close_transport(t);
    assert_fake_released();
}

/* The agent's own commands through the passthrough to the device model and back; the command reaches
 * QEMU byte for byte, without an "id"; handles from the domain list are reused (no lookup). */
static void test_round_trip_through_device_model(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_domain_list_t list = {NULL, 0};
    bal_error_t err;
    bal_stats_t stats;
    char *cmd = NULL, *reply = NULL, *path = NULL;
    int64_t interval;
    uint64_t actual;
    int64_t first_update;

    (void)state;
    vm = add_vm("vm-a", 768 * MIB, true);
    t = open_transport(LONG_MS);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    bal_domain_list_free(&list);

    assert_int_equal(bal_qmp_build_qom_set_int(BALLOON, BAL_QMP_PROP_INTERVAL, 2, &cmd, &err), 0);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_string_equal(fk.last_command, cmd);
    assert_int_equal(bal_qmp_parse_empty(reply, strlen(reply), &err), 0);
    assert_int_equal(vb_device_polling_interval(vm->dev), 2);
    free(cmd);
    free(reply);

    assert_int_equal(bal_qmp_build_qom_get(BALLOON, BAL_QMP_PROP_STATS, &cmd, &err), 0);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_string_equal(fk.last_command, cmd);
    assert_int_equal(bal_qmp_parse_guest_stats(reply, strlen(reply), &stats, &err), 0);
    assert_int_equal(stats.known, VB_STATS_QEMU72);
    assert_int_equal(stats.last_update, WALL_BASE);
    assert_true(stats.stat[BAL_STAT_TOTAL_MEMORY].set);
    assert_true(stats.stat[BAL_STAT_TOTAL_MEMORY].value > 0 && stats.stat[BAL_STAT_TOTAL_MEMORY].value <= vm->memory);
    first_update = stats.last_update;
    free(reply);

    pthread_mutex_lock(&fk.lock);
    vb_manual_clock_advance(&fk.mc, 2 * VB_NS_PER_S); /* one polling interval later */
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_int_equal(bal_qmp_parse_guest_stats(reply, strlen(reply), &stats, &err), 0);
    assert_int_equal(stats.last_update, first_update + 2);
    free(cmd);
    free(reply);

    assert_int_equal(bal_qmp_build_qom_get(BALLOON, BAL_QMP_PROP_INTERVAL, &cmd, &err), 0);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_int_equal(bal_qmp_parse_int(reply, strlen(reply), &interval, &err), 0);
    assert_int_equal(interval, 2);
    free(cmd);
    free(reply);

    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    assert_int_equal(reply_actual(reply, &actual), 0);
    assert_true(actual == vm->memory);
    free(reply);

    assert_int_equal(bal_qmp_build_qom_list("/machine/peripheral", &cmd, &err), 0);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_int_equal(bal_qmp_find_balloon(reply, strlen(reply), "/machine/peripheral", &path, &err), 0);
    assert_string_equal(path, BALLOON);
    free(path);
    free(cmd);
    free(reply);

    assert_int_equal(vm->commands, 6);
    assert_int_equal(fk.lookups, 0);
    close_transport(t);
    assert_fake_released();
}

/* libvirt returns 0 when QEMU answers with an error: the reply is handed over as it is. */
static void test_qemu_error_inside_success(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_error_t err;
    char *cmd = NULL, *reply = NULL;
    int64_t value;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(0);

    assert_int_equal(bal_qmp_build_qom_get("/machine/peripheral/nope", BAL_QMP_PROP_INTERVAL, &cmd, &err), 0);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_non_null(reply);
    assert_int_equal(bal_qmp_parse_int(reply, strlen(reply), &value, &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "DeviceNotFound");
    assert_string_equal(err.message, "Device '/machine/peripheral/nope' not found");
    free(cmd);
    free(reply);

    assert_int_equal(bal_qmp_build_qom_set_int(BALLOON, BAL_QMP_PROP_INTERVAL, -1, &cmd, &err), 0);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_int_equal(bal_qmp_parse_empty(reply, strlen(reply), &err), -EREMOTEIO);
    assert_string_equal(err.qmp_class, "GenericError");
    assert_string_equal(err.message, "timer value must be greater than zero");
    free(cmd);
    free(reply);
    close_transport(t);
    assert_fake_released();
}

/* Each libvirt error class maps to the transport's errno, with libvirt's text in a sentence naming
 * the domain; only connection errors drop the connection. */
static void test_error_mapping(void **state)
{
    static const struct {
        int code, domain;
        bool kill_server; /* the connection is dead when the error arrives */
        const char *message;
        int expected;
    } rows[] = {
        {VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU, false, "Domain not found: no domain with matching uuid 'x'", -ENOENT},
        {VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, false, "Requested operation is not valid: domain is not running",
         -ESHUTDOWN},
        {VIR_ERR_OPERATION_TIMEOUT, VIR_FROM_QEMU, false,
         "Timed out during operation: cannot acquire state change lock", -ETIMEDOUT},
        {VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC, false, "Cannot recv data: Connection reset by peer", -ENOTCONN},
        {VIR_ERR_RPC, VIR_FROM_RPC, false, "rpc error", -ENOTCONN},
        {VIR_ERR_NO_CONNECT, VIR_FROM_NONE, false, "no connection driver available", -ENOTCONN},
        {VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, true, "internal error: client socket is closed", -ENOTCONN},
        {VIR_ERR_SYSTEM_ERROR, VIR_FROM_QEMU, false, "Unable to read from monitor: Connection reset by peer", -EIO},
        {VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU, false, "operation failed: End of file from qemu monitor", -EIO},
        {VIR_ERR_NO_SUPPORT, VIR_FROM_NONE, false, "this function is not supported by the connection driver",
         -EOPNOTSUPP},
    };
    fake_vm_t *vm;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bal_transport_t *t;
        bal_domain_list_t list = {NULL, 0};
        bal_error_t err;
        char *reply = NULL;
        unsigned warnings = log_count(BAL_LOG_WARNING);

        pthread_mutex_lock(&fk.lock);
        fk.inject_armed = true;
        fk.inject_code = rows[i].code;
        fk.inject_domain = rows[i].domain;
        snprintf(fk.inject_message, sizeof(fk.inject_message), "%s", rows[i].message);
        pthread_mutex_unlock(&fk.lock);
        t = open_transport(0);
        assert_int_equal(bal_transport_list_domains(t, &list, &err), 0); /* handles cached: no lookup */
        bal_domain_list_free(&list);
        if (rows[i].kill_server) {
            pthread_mutex_lock(&fk.lock);
            fk.server_gen++; /* the error comes on a connection that is already dead */
            pthread_mutex_unlock(&fk.lock);
        }
        assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), rows[i].expected);
        assert_null(reply);
        assert_int_equal(err.code, rows[i].expected);
        if (strstr(err.message, rows[i].message) == NULL || strstr(err.message, "'vm-a'") == NULL)
            fail_msg("row %zu: the message '%s' lacks libvirt's text or the domain", i, err.message);
        assert_int_equal(log_count(BAL_LOG_WARNING), warnings + (rows[i].expected == -ENOTCONN ? 1 : 0));
        assert_false(fk.inject_armed);
        assert_int_equal(fk.lookups, 0);
        close_transport(t);
        assert_fake_released();
    }
}

/* The same mappings from the state of the fake libvirtd rather than injected errors. */
static void test_domain_gone_or_stopped(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_domain_list_t list = {NULL, 0};
    bal_error_t err;
    char *reply = NULL;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(0);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    bal_domain_list_free(&list);

    pthread_mutex_lock(&fk.lock);
    vm->running = false;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ESHUTDOWN);
    assert_non_null(strstr(err.message, "domain is not running"));

    pthread_mutex_lock(&fk.lock);
    vm->defined = false;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOENT);
    assert_non_null(strstr(err.message, "Domain not found"));
    /* The stale handle was dropped: the next command looks the domain up, and finds it gone. */
    assert_int_equal(fk.lookups, 0);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOENT);
    assert_int_equal(fk.lookups, 1);
    assert_null(reply);
    close_transport(t);
    assert_fake_released();
}

/* A domain known by name only is looked up by name. */
static void test_lookup_by_name(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_domain_info_t info;
    bal_error_t err;
    char *reply = NULL;

    (void)state;
    vm = add_vm("by-name", 512 * MIB, true);
    t = open_transport(0);
    info = info_of(vm);
    info.uuid[0] = '\0';
    assert_int_equal(t->ops->execute(t, &info, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    assert_non_null(strstr(reply, "\"actual\""));
    free(reply);
    assert_int_equal(t->ops->execute(t, &info, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    free(reply);
    assert_int_equal(fk.lookups, 1); /* cached after the first */
    info.name = (char *)"nobody";
    assert_int_equal(t->ops->execute(t, &info, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOENT);
    assert_non_null(strstr(err.message, "'nobody'"));
    close_transport(t);
    assert_fake_released();
}

/* libvirtd goes away: one warning, then reopen attempts at once, after 1 s, 2 s, 4 s ... capped at 60 s
 * (on the injected clock), never in between; when it is back, the next attempt succeeds, says so once,
 * and take_changes reports it. */
static void test_reconnect_with_backoff(void **state)
{
    static const int64_t delays[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_error_t err;
    char *reply = NULL;
    unsigned n;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(0);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    free(reply);
    assert_int_equal(opens(), 1);
    assert_false(bal_transport_take_changes(t));

    pthread_mutex_lock(&fk.lock);
    fk.server_gen++;
    fk.server_down = true;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_non_null(strstr(err.message, "Connection reset by peer"));
    assert_int_equal(log_count(BAL_LOG_WARNING), 1);
    assert_non_null(strstr(logs.last[BAL_LOG_WARNING], "'qemu:///system'"));
    assert_int_equal(opens(), 1);
    assert_int_equal(fk.live_conns, 0); /* the dead connection was let go at once */

    /* The next call tries at once. */
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_int_equal(opens(), 2);
    assert_non_null(strstr(err.message, "Connection refused"));
    n = 2;
    for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
        atomic_fetch_add(&now_ms, delays[i] - 1);
        assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
        assert_int_equal(bal_transport_list_domains(t, &(bal_domain_list_t){NULL, 0}, &err), -ENOTCONN);
        assert_int_equal(opens(), n); /* not yet */
        assert_non_null(strstr(err.message, "next attempt is in 1 ms"));
        atomic_fetch_add(&now_ms, 1);
        assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
        assert_int_equal(opens(), ++n);
    }
    assert_int_equal(log_count(BAL_LOG_WARNING), 1); /* one message for the whole streak */
    assert_int_equal(log_count(BAL_LOG_NOTICE), 0);

    pthread_mutex_lock(&fk.lock);
    fk.server_down = false;
    pthread_mutex_unlock(&fk.lock);
    atomic_fetch_add(&now_ms, 59999);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_int_equal(opens(), n);
    atomic_fetch_add(&now_ms, 1);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    assert_non_null(strstr(reply, "\"actual\""));
    free(reply);
    assert_int_equal(opens(), n + 1);
    assert_int_equal(log_count(BAL_LOG_NOTICE), 1);
    assert_true(bal_transport_take_changes(t));
    assert_false(bal_transport_take_changes(t));
    assert_int_equal(fk.event_registrations, 1); /* re-registered on the new connection, not twice */
    assert_int_equal(fk.close_registrations, 1);

    /* A new streak starts over at once and at 1 s. */
    pthread_mutex_lock(&fk.lock);
    fk.server_gen++;
    fk.server_down = true;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_int_equal(opens(), n + 2);
    atomic_fetch_add(&now_ms, 1000);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_int_equal(opens(), n + 3);
    assert_int_equal(log_count(BAL_LOG_WARNING), 2);
    close_transport(t);
    assert_fake_released();
}

static void release_open(void)
{
    pthread_mutex_lock(&fk.lock);
    fk.open_hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
}

/* The abandoned open's helper has undone its callbacks and closed its connection. */
static bool abandoned_open_cleaned(void)
{
    return fk.hanging == 0 && fk.live_conns == 0 && fk.close_registrations == 0 && fk.event_registrations == 0;
}

/* libvirtd hangs (accepts, never answers): the constructor gives up after the timeout instead of
 * blocking its caller (collectd's init) forever. */
static void test_new_with_hung_libvirtd(void **state)
{
    bal_error_t err;
    struct timespec start;
    char expect[64];

    (void)state;
    snprintf(expect, sizeof(expect), "no answer within %d ms", HANG_MS);
    fk.open_hang = true;
    memset(&err, 0, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_null(bal_libvirt_transport_new(NULL, HANG_MS, &logger, &fake_clock, &err));
    assert_true(elapsed_s(&start) < wait_s);
    assert_int_equal(err.code, -ETIMEDOUT);
    assert_non_null(strstr(err.message, expect));
    assert_true(wait_for(one_hanging));
    release_open();
    assert_true(wait_for(abandoned_open_cleaned));
    assert_fake_released();
}

/* The same while reconnecting: the reopen gives up after the timeout, no second attempt is stacked on
 * the hung one, the abandoned connection is cleaned up when it finally opens, and the next attempt
 * (after the backoff) succeeds. */
static void test_reconnect_to_hung_libvirtd(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_error_t err;
    char *reply = NULL, expect[64];
    struct timespec start;
    unsigned base, load_timeouts = 0;
    int rc;

    (void)state;
    snprintf(expect, sizeof(expect), "no answer within %d ms", HANG_MS);
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(HANG_MS);
    base = opens();
    /* libvirtd restarted (seen by the event loop), and the new one accepts but never answers. */
    pthread_mutex_lock(&fk.lock);
    fk.server_gen++;
    fk.open_hang = true;
    pthread_mutex_unlock(&fk.lock);
    fire_on_loop(FIRE_CLOSE, VIR_CONNECT_CLOSE_REASON_EOF, NULL);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_true(elapsed_s(&start) < wait_s);
    assert_non_null(strstr(err.message, expect));
    /* Its helper may reach virConnectOpen only after the caller gave up on it. */
    assert_true(wait_for(one_hanging));
    assert_int_equal(opens(), base + 1);

    atomic_fetch_add(&now_ms, BAL_LIBVIRT_BACKOFF_MAX_MS);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_non_null(strstr(err.message, "being reopened"));
    assert_int_equal(opens(), base + 1);

    release_open();
    assert_true(wait_for(abandoned_open_cleaned));
    /* The helper lets go of the pending attempt right after; then the next call reconnects. A reopen
     * or a command that times out only because this machine is loaded is tried again (the reopen after
     * its backoff), and counted. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        rc = exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err);
        if (elapsed_s(&start) >= wait_s)
            break;
        if (rc == -ENOTCONN && strstr(err.message, "being reopened") != NULL) {
            usleep(1000);
            continue;
        }
        if (rc == -ENOTCONN && strstr(err.message, expect) != NULL) {
            load_timeouts++;
            atomic_fetch_add(&now_ms, BAL_LIBVIRT_BACKOFF_MAX_MS);
            continue;
        }
        if (!load_timeout(HANG_MS, rc, vm))
            break;
        usleep(1000);
    }
    assert_int_equal(rc, 0);
    free(reply);
    /* An open abandoned to the machine's load may reach the fake late: wait for the count, bounded. */
    expected_opens = base + 2 + load_timeouts;
    wait_for(opens_reached);
    assert_int_equal(opens(), expected_opens);
    assert_int_equal(log_count(BAL_LOG_WARNING), 1);
    assert_int_equal(log_count(BAL_LOG_NOTICE), 1);
    close_transport(t);
    assert_fake_released();
}

/* The close callback (libvirtd restarted, seen by the event loop) marks the connection dead: the next
 * call reconnects without first failing on the dead one. */
static void test_close_callback_reconnects(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_error_t err;
    char *reply = NULL;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(0);
    pthread_mutex_lock(&fk.lock);
    fk.server_gen++; /* restarted, and already back */
    pthread_mutex_unlock(&fk.lock);
    fire_on_loop(FIRE_CLOSE, VIR_CONNECT_CLOSE_REASON_EOF, NULL);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    free(reply);
    assert_int_equal(opens(), 2);
    assert_int_equal(log_count(BAL_LOG_WARNING), 1);
    assert_non_null(strstr(logs.last[BAL_LOG_WARNING], "libvirtd closed the connection"));
    assert_int_equal(log_count(BAL_LOG_NOTICE), 1);
    assert_true(bal_transport_take_changes(t));
    close_transport(t);
    assert_fake_released();
}

/* Lifecycle events arrive on the event-loop thread; started, stopped and crashed domains are reported
 * once by take_changes, other events not at all. */
static void test_lifecycle_events(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(0);
    assert_false(bal_transport_take_changes(t));
    fire_on_loop(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_STARTED, vm);
    assert_true(bal_transport_take_changes(t));
    assert_false(bal_transport_take_changes(t));
    fire_on_loop(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_SUSPENDED, vm);
    fire_on_loop(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED, vm);
    assert_false(bal_transport_take_changes(t));
    fire_on_loop(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_STOPPED, vm);
    fire_on_loop(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_CRASHED, vm);
    assert_true(bal_transport_take_changes(t));
    assert_false(bal_transport_take_changes(t));
    close_transport(t);
    assert_fake_released();
}

/* A real libvirt error (the real virConnectOpen on a socket that does not exist) prints nothing on
 * stderr: it comes back in err only. */
static void test_libvirt_prints_nothing(void **state)
{
    char path[] = "/tmp/alibvirt-stderr-XXXXXX";
    bal_error_t err;
    struct stat st;
    int fd, saved;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    memset(&err, 0, sizeof(err));
    assert_null(bal_libvirt_transport_new("real:qemu+unix:///system?socket=/tmp/alibvirt-no-such.sock", 0,
                                          &logger, &fake_clock, &err));
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(fstat(fd, &st), 0);
    close(fd);
    unlink(path);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(err.code, -ENOTCONN);
    assert_non_null(strstr(err.message, "/tmp/alibvirt-no-such.sock"));
    assert_int_equal(log_count(BAL_LOG_ERR) + log_count(BAL_LOG_WARNING), 0);
}

/* A hung QEMU: the caller gets -ETIMEDOUT after timeout_ms, no second command is stacked behind the
 * hung one, other domains are served meanwhile, and the domain is served again once the call returns. */
static void test_timeout_and_pending(void **state)
{
    fake_vm_t *slow, *fast;
    bal_transport_t *t;
    bal_error_t err;
    char *reply = NULL;
    struct timespec start;
    unsigned late = 0, late_fast = 0;

    (void)state;
    slow = add_vm("slow", 512 * MIB, true);
    fast = add_vm("fast", 512 * MIB, true);
    t = open_transport(HANG_MS);
    pthread_mutex_lock(&fk.lock);
    slow->hang = true;
    pthread_mutex_unlock(&fk.lock);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(exec(t, slow, "{\"execute\":\"query-balloon\"}", &reply, &err), -ETIMEDOUT);
    assert_true(elapsed_s(&start) >= HANG_MS / 1000.0 - 0.01 && elapsed_s(&start) < wait_s);
    assert_non_null(strstr(err.message, "'slow'"));
    assert_null(reply);
    assert_true(wait_for(one_hanging));

    assert_int_equal(exec(t, slow, "{\"execute\":\"query-balloon\"}", &reply, &err), -ETIMEDOUT);
    assert_non_null(strstr(err.message, "has not returned"));
    assert_int_equal(commands(slow), 1);

    /* Were the other domain's commands queued behind the hung one, no retry would get an answer. */
    assert_int_equal(exec_loaded(t, HANG_MS, fast, "{\"execute\":\"query-balloon\"}", &reply, &err, &late_fast), 0);
    free(reply);
    assert_int_equal(commands(slow), 1);

    pthread_mutex_lock(&fk.lock);
    slow->hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    /* The helper removes the domain from the pending set right after libvirt returns. */
    assert_int_equal(exec_loaded(t, HANG_MS, slow, "{\"execute\":\"query-balloon\"}", &reply, &err, &late), 0);
    assert_non_null(reply);
    free(reply);
    assert_int_equal(commands(slow), 2 + late);
    assert_int_equal(commands(fast), 1 + late_fast);
    close_transport(t);
    assert_fake_released();
}

/* Freeing the transport while a command hangs: free returns (having joined its event-loop thread), and
 * the helper cleans up after itself when the command finally returns (ASan would see a use after free),
 * then ends. */
static void test_free_while_command_hangs(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_error_t err;
    char *reply = NULL;

    (void)state;
    vm = add_vm("hung", 512 * MIB, true);
    t = open_transport(HANG_MS);
    pthread_mutex_lock(&fk.lock);
    vm->hang = true;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ETIMEDOUT);
    assert_true(wait_for(one_hanging));
    close_transport(t);
    assert_int_equal(fk.agent_joins, 1);
    assert_int_equal(agent_threads(), 1); /* the helper, still inside libvirt */
    pthread_mutex_lock(&fk.lock);
    vm->hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    assert_true(wait_for(all_released)); /* the helper has ended too */
    assert_int_equal(commands(vm), 1);
    assert_fake_released();
}

/* ---- the watched path: the agent's pool makes the call itself (issue 16) ---- */

typedef struct test_watch {
    int begin_rc;  /* what begin says */
    bool keep;     /* what end says: false, the call was abandoned */
    unsigned begun, ended;
} test_watch_t;

static int test_watch_begin(void *opaque)
{
    test_watch_t *w = opaque;

    w->begun++;
    return w->begin_rc;
}

static bool test_watch_end(void *opaque)
{
    test_watch_t *w = opaque;

    w->ended++;
    return w->keep;
}

typedef struct watched_exec {
    bal_transport_t *t;
    bal_domain_info_t info;
    test_watch_t watch;
    char *reply;
    bal_error_t err;
    int rc;
} watched_exec_t;

static int exec_watched(watched_exec_t *x)
{
    bal_call_watch_t watch = {.begin = test_watch_begin, .end = test_watch_end, .opaque = &x->watch};

    x->reply = NULL;
    memset(&x->err, 0, sizeof(x->err));
    x->rc = x->t->ops->execute_watched(x->t, &x->info, "{\"execute\":\"query-balloon\"}", &x->reply, &watch,
                                       &x->err);
    return x->rc;
}

static void *exec_watched_main(void *opaque)
{
    exec_watched(opaque);
    return NULL;
}

/* A watched command is made on the calling thread (no helper starts for it) and answered; a watch that
 * refuses (-EBUSY: an abandoned command of the domain is out) sends nothing; one that cannot watch
 * (-ENOTSUP) gets the helper's timeout. */
static void test_watched_command_on_the_callers_thread(void **state)
{
    fake_vm_t *vm;
    watched_exec_t x = {0};
    struct timespec start;
    uint64_t actual = 0;

    (void)state;
    vm = add_vm("vm", 512 * MIB, true);
    x.t = open_transport(HANG_MS);
    x.info = info_of(vm);
    assert_true(wait_for(loop_and_opener_only));

    x.watch = (test_watch_t){.begin_rc = 0, .keep = true};
    assert_int_equal(exec_watched(&x), 0);
    assert_int_equal(reply_actual(x.reply, &actual), 0);
    assert_int_equal(actual, 512 * MIB);
    free(x.reply);
    assert_int_equal(x.watch.begun, 1);
    assert_int_equal(x.watch.ended, 1);
    assert_true(loop_and_opener_only()); /* no helper was started, none woken */
    assert_int_equal(commands(vm), 1);

    x.watch = (test_watch_t){.begin_rc = -EBUSY, .keep = true};
    assert_int_equal(exec_watched(&x), -ETIMEDOUT);
    assert_non_null(strstr(x.err.message, "The previous QMP command for domain 'vm' has not returned"));
    assert_null(x.reply);
    assert_int_equal(x.watch.ended, 0);
    assert_int_equal(commands(vm), 1);

    pthread_mutex_lock(&fk.lock);
    vm->hang = true;
    pthread_mutex_unlock(&fk.lock);
    x.watch = (test_watch_t){.begin_rc = -ENOTSUP, .keep = true};
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(exec_watched(&x), -ETIMEDOUT);
    assert_true(elapsed_s(&start) >= HANG_MS / 1000.0 - 0.01 && elapsed_s(&start) < wait_s);
    assert_non_null(strstr(x.err.message, "did not answer a QMP command through libvirt within"));
    assert_int_equal(x.watch.ended, 0);
    pthread_mutex_lock(&fk.lock);
    vm->hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    assert_true(wait_for(none_hanging));
    close_transport(x.t);
    assert_fake_released();
}

/* A watched command abandoned while libvirt has it: the transport is freed meanwhile, and when libvirt
 * returns, the call's thread gets -ECANCELED and lets go of what the call held (the connection and
 * domain references: the fake counts them) without touching the transport (ASan would see it). */
static void test_abandoned_command_outlives_the_transport(void **state)
{
    fake_vm_t *vm;
    watched_exec_t x = {0};
    pthread_t thread;

    (void)state;
    vm = add_vm("hung", 512 * MIB, true);
    x.t = open_transport(HANG_MS);
    x.info = info_of(vm);
    x.watch = (test_watch_t){.begin_rc = 0, .keep = false};
    pthread_mutex_lock(&fk.lock);
    vm->hang = true;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(__real_pthread_create(&thread, NULL, exec_watched_main, &x), 0);
    assert_true(wait_for(one_hanging));
    close_transport(x.t); /* its caller abandoned the call: nothing waits for it */
    pthread_mutex_lock(&fk.lock);
    vm->hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(__real_pthread_join(thread, NULL), 0);
    assert_int_equal(x.rc, -ECANCELED);
    assert_null(x.reply);
    assert_int_equal(x.watch.ended, 1);
    assert_int_equal(commands(vm), 1);
    assert_true(wait_for(all_released));
    assert_fake_released();
}

static bool loop_not_iterating(void)
{
    return fk.iterating == 0;
}

/* During a batch the transport's event-loop thread does not iterate (each command would wake it): commands
 * still work, an event that arrives is dispatched when the batch ends, and take_changes reports it then. A
 * free in the middle of a batch does not wait for it. */
static void test_batch_holds_the_loop(void **state)
{
    static const char *qb = "{\"execute\":\"query-balloon\"}";
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_error_t err;
    char *reply = NULL;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(LONG_MS);
    assert_false(bal_transport_take_changes(t));

    bal_transport_batch_begin(t);
    /* Woken out of its iteration to see the hold; it does not start another while it holds. */
    assert_true(wait_for(loop_not_iterating));
    assert_int_equal(exec(t, vm, qb, &reply, &err), 0);
    free(reply);
    fire_arm(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_STARTED, vm);
    assert_false(wait_for_ms(fired, 300));
    assert_false(bal_transport_take_changes(t));
    bal_transport_batch_end(t);
    assert_true(wait_for(fired));
    assert_int_equal(fire.delivered, 1);
    assert_true(bal_transport_take_changes(t));

    /* Between batches the loop runs: an event is dispatched at once. */
    fire_on_loop(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_STOPPED, vm);
    assert_true(bal_transport_take_changes(t));

    bal_transport_batch_begin(t);
    close_transport(t);
    assert_fake_released();
}

/* Several pool threads at once, each reply for its own domain. */
#define WORKERS 8
#define CALLS 25

typedef struct worker {
    bal_transport_t *t;
    int timeout_ms;
    fake_vm_t *vm;
    unsigned bad, late;
} worker_t;

static void *worker_main(void *opaque)
{
    worker_t *w = opaque;

    for (int i = 0; i < CALLS; i++) {
        bal_error_t err;
        char *reply = NULL;
        uint64_t actual = 0;

        if (exec_loaded(w->t, w->timeout_ms, w->vm, "{\"execute\":\"query-balloon\"}", &reply, &err, &w->late) != 0 ||
            reply_actual(reply, &actual) != 0 || actual != w->vm->memory)
            w->bad++;
        free(reply);
    }
    return NULL;
}

static void run_concurrently(int timeout_ms)
{
    fake_vm_t *vms[4];
    bal_transport_t *t;
    worker_t workers[WORKERS];
    pthread_t threads[WORKERS];
    unsigned total = 0, late = 0;

    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "vm-%d", i);
        vms[i] = add_vm(name, (uint64_t)(256 + 128 * i) * MIB, true);
    }
    t = open_transport(timeout_ms);
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker_t){.t = t, .timeout_ms = timeout_ms, .vm = vms[i % 4]};
        assert_int_equal(__real_pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        __real_pthread_join(threads[i], NULL);
        total += workers[i].bad;
        late += workers[i].late;
    }
    assert_int_equal(total, 0);
    close_transport(t);
    assert_fake_released();
    for (int i = 0; i < 4; i++)
        total += vms[i]->commands;
    assert_int_equal(total, WORKERS * CALLS + late);
}

static void test_concurrent_inline(void **state)
{
    (void)state;
    run_concurrently(0);
}

static void test_concurrent_with_timeout(void **state)
{
    (void)state;
    run_concurrently(LONG_MS);
}

/* No thread to spare for a call with a timeout (pthread_create fails: a thread limit, no memory for a
 * stack): the call fails at once. Made on the caller's thread instead, it would have no timeout, and a
 * hung QEMU or libvirtd would block a pool thread (or collectd's init) for ever. */
static void refuse_threads(unsigned n)
{
    pthread_mutex_lock(&fk.lock);
    fk.fail_thread_creates = n;
    pthread_mutex_unlock(&fk.lock);
}

static unsigned threads_refused_left(void)
{
    unsigned n;

    pthread_mutex_lock(&fk.lock);
    n = fk.fail_thread_creates;
    pthread_mutex_unlock(&fk.lock);
    return n;
}

/* The transport's only helper, kept busy by a command for a hung domain made from another thread, so that
 * the next call needs a new helper thread. */
typedef struct busy_helper {
    bal_transport_t *t;
    fake_vm_t *vm;
    pthread_t thread;
    int rc;
} busy_helper_t;

static void *busy_main(void *opaque)
{
    busy_helper_t *b = opaque;
    bal_error_t err;
    char *reply = NULL;

    b->rc = exec(b->t, b->vm, "{\"execute\":\"query-balloon\"}", &reply, &err);
    free(reply);
    return NULL;
}

static void busy_start(busy_helper_t *b, bal_transport_t *t, fake_vm_t *vm)
{
    b->t = t;
    b->vm = vm;
    pthread_mutex_lock(&fk.lock);
    vm->hang = true;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(__real_pthread_create(&b->thread, NULL, busy_main, b), 0);
    assert_true(wait_for(one_hanging));
}

static void busy_end(busy_helper_t *b)
{
    pthread_mutex_lock(&fk.lock);
    b->vm->hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    __real_pthread_join(b->thread, NULL);
}

static void test_no_thread_for_a_call(void **state)
{
    static const char *qb = "{\"execute\":\"query-balloon\"}";
    fake_vm_t *vm, *hung;
    bal_transport_t *t;
    bal_domain_list_t list = {NULL, 0};
    bal_error_t err;
    char *reply = NULL;
    busy_helper_t busy;
    unsigned base;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    hung = add_vm("vm-h", 512 * MIB, true);
    t = open_transport(LONG_MS);
    base = opens();

    /* An idle helper serves a call without a new thread; with none idle, a new one is needed. */
    refuse_threads(1);
    assert_int_equal(exec(t, vm, qb, &reply, &err), 0);
    free(reply);
    assert_int_equal(threads_refused_left(), 1);
    refuse_threads(0);
    busy_start(&busy, t, hung);
    refuse_threads(1);
    assert_int_equal(exec(t, vm, qb, &reply, &err), -ENOMEM);
    assert_int_equal(threads_refused_left(), 0);
    assert_null(reply);
    assert_non_null(strstr(err.message, "'vm-a'"));
    assert_non_null(strstr(err.message, "thread"));
    assert_int_equal(commands(vm), 1); /* not sent without its timeout */

    refuse_threads(1);
    memset(&err, 0, sizeof(err));
    assert_int_equal(bal_transport_list_domains(t, &list, &err), -ENOMEM);
    assert_int_equal(threads_refused_left(), 0);
    assert_null(list.items);
    assert_non_null(strstr(err.message, "thread"));
    busy_end(&busy);
    assert_int_equal(busy.rc, 0);

    /* With threads again, the domain is served (nothing was left pending). */
    assert_int_equal(exec(t, vm, qb, &reply, &err), 0);
    free(reply);
    assert_int_equal(commands(vm), 2);

    /* A reopen without a thread is a failed attempt, retried after the backoff. */
    busy_start(&busy, t, hung);
    pthread_mutex_lock(&fk.lock);
    fk.server_gen++;
    pthread_mutex_unlock(&fk.lock);
    fire_on_loop(FIRE_CLOSE, VIR_CONNECT_CLOSE_REASON_EOF, NULL);
    refuse_threads(1);
    assert_int_equal(exec(t, vm, qb, &reply, &err), -ENOTCONN);
    assert_int_equal(threads_refused_left(), 0);
    assert_non_null(strstr(err.message, "thread"));
    assert_int_equal(opens(), base);
    atomic_fetch_add(&now_ms, BAL_LIBVIRT_BACKOFF_MIN_MS);
    assert_int_equal(exec(t, vm, qb, &reply, &err), 0);
    free(reply);
    assert_int_equal(opens(), base + 1);
    busy_end(&busy);
    close_transport(t);

    /* The constructor's open. */
    refuse_threads(1);
    memset(&err, 0, sizeof(err));
    assert_null(bal_libvirt_transport_new(NULL, LONG_MS, &logger, &fake_clock, &err));
    assert_int_equal(threads_refused_left(), 0);
    assert_int_equal(err.code, -EAGAIN);
    assert_non_null(strstr(err.message, "thread"));
    assert_int_equal(opens(), base + 1);
    assert_fake_released();
}

static void *foreign_loop_main(void *opaque)
{
    (void)opaque;
    while (!atomic_load(&foreign.stop))
        if (virEventRunDefaultImpl() < 0)
            break;
    return NULL;
}

static void foreign_wake(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

static void foreign_loop_start(void)
{
    atomic_store(&foreign.stop, false);
    assert_int_equal(__real_pthread_create(&foreign.thread, NULL, foreign_loop_main, NULL), 0);
    foreign.running = true;
}

/* 0, or -ETIMEDOUT (the thread is left). The transports are gone by then: the wake-up is its to run. */
static int foreign_loop_stop(void)
{
    struct timespec deadline;

    atomic_store(&foreign.stop, true);
    foreign.running = false;
    if (virEventAddTimeout(0, foreign_wake, NULL, NULL) < 0)
        return -ETIMEDOUT;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_s;
    if (pthread_timedjoin_np(foreign.thread, NULL, &deadline) != 0) {
        pthread_detach(foreign.thread);
        return -ETIMEDOUT;
    }
    return 0;
}

static bal_transport_t *new_plain(void)
{
    bal_error_t err;
    bal_transport_t *t;

    memset(&err, 0, sizeof(err));
    t = bal_libvirt_transport_new(NULL, 0, &logger, &fake_clock, &err);
    if (t == NULL)
        fail_msg("bal_libvirt_transport_new failed: %s", err.message);
    return t;
}

static void free_other(int i, int round)
{
    bal_transport_t *t = others[i];

    others[i] = NULL;
    if (free_bounded(t) < 0)
        fail_msg("round %d: bal_transport_free did not return within %d s with another thread running libvirt's "
                 "event loop",
                 round, wait_s);
}

/* Another thread iterates libvirt's default event loop too, as collectd's virt plugin does: libvirt runs
 * the transports' timers and callbacks on whichever gets there first. Transports opened and freed one or
 * two at a time (two <Plugin balloon> blocks), with events in between, share one event-loop thread, and
 * free stops it (bounded here) without a use after free (ASan), letting go of everything. */
#define LOOP_ROUNDS 30

static void test_free_beside_another_event_loop(void **state)
{
    fake_vm_t *vm;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    for (int round = 0; round < LOOP_ROUNDS; round++) {
        others[0] = new_plain();
        others[1] = new_plain();
        /* Started once libvirt is set up (by the first transport), as collectd's virt plugin would be. */
        if (round == 0)
            foreign_loop_start();
        /* One event-loop thread for both: ours and the foreign one make two iterating threads. */
        assert_int_equal(agent_threads(), 1);
        fire_on_loop_n(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_STARTED, vm, 2);
        assert_true(bal_transport_take_changes(others[0]));
        assert_true(bal_transport_take_changes(others[1]));
        free_other(0, round);
        fire_on_loop_n(FIRE_LIFECYCLE, VIR_DOMAIN_EVENT_STOPPED, vm, 1);
        assert_true(bal_transport_take_changes(others[1]));
        free_other(1, round);
        /* Freed at once, before its thread may even have started iterating. */
        others[0] = new_plain();
        free_other(0, round);
    }
    if (foreign_loop_stop() < 0)
        fail_msg("the test's own event-loop thread did not stop within %d s", wait_s);
    assert_fake_released();
}

int main(void)
{
    pthread_condattr_t attr;
    pthread_t dog_thread;
    int ret;
#define TEST(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *)#f)
    const struct CMUnitTest tests[] = {
        TEST(test_libvirt_prints_nothing),
        TEST(test_new_and_free),
        TEST(test_new_fails_when_libvirtd_is_down),
        TEST(test_list_domains),
        TEST(test_round_trip_through_device_model),
        TEST(test_qemu_error_inside_success),
        TEST(test_error_mapping),
        TEST(test_domain_gone_or_stopped),
        TEST(test_lookup_by_name),
        TEST(test_reconnect_with_backoff),
        TEST(test_close_callback_reconnects),
        TEST(test_new_with_hung_libvirtd),
        TEST(test_reconnect_to_hung_libvirtd),
        TEST(test_lifecycle_events),
        TEST(test_timeout_and_pending),
        TEST(test_watched_command_on_the_callers_thread),
        TEST(test_abandoned_command_outlives_the_transport),
        TEST(test_free_while_command_hangs),
        TEST(test_no_thread_for_a_call),
        TEST(test_batch_holds_the_loop),
        TEST(test_concurrent_inline),
        TEST(test_concurrent_with_timeout),
        TEST(test_free_beside_another_event_loop),
    };
#undef TEST

    if (tt_valgrind())
        wait_s *= 10;
    /* Both condition variables time out on the monotonic clock. */
    if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&fk.cond, &attr) != 0 || pthread_cond_init(&dog.cond, &attr) != 0 ||
        __real_pthread_create(&dog_thread, NULL, watchdog_main, NULL) != 0) {
        fprintf(stderr, "test_bal_libvirt: cannot set up its condition variables or its watchdog.\n");
        return 1;
    }
    pthread_condattr_destroy(&attr);
    /* For hunting a rare failure: BAL_TEST_FILTER=test_name (cmocka's glob) runs only those. */
    if (getenv("BAL_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("BAL_TEST_FILTER"));
    ret = cmocka_run_group_tests(tests, NULL, NULL);
    watchdog_stop(dog_thread);
    return ret;
}
