/* The libvirt transport, with libvirt's connection and domain API replaced at link time
 * (-Wl,--wrap=..., see tests/agent.mk) by a fake libvirtd: its virDomainQemuMonitorCommand answers from
 * the real device model (virtio/, on a manual clock) through a small QMP handler, so a simulated
 * balloon sits behind the passthrough API. Not mocked: libvirt's default event loop (the transport's
 * thread really runs it, and the tests fire events from it), its error reporting, and virConnectOpen for
 * URIs written "real:URI" (to check that a real libvirt error prints nothing).
 *
 * Time: the reconnect backoff runs on an injected clock; only the per-call timeout and the event-loop
 * hand-offs use real time, with deadlines of seconds that are never reached when things work. */
#include "config.h"

#include <dirent.h>
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

#define BALLOON "/machine/peripheral/balloon0"
#define WALL_BASE INT64_C(1700000000)
#define MIB (UINT64_C(1) << 20)
#define WAIT_S 5 /* real-time deadline for hand-offs between threads; never reached when things work */

/* ---- the fake libvirtd ---- */

/* The public headers leave these incomplete: the fake gives them a body. No real libvirt function ever
 * sees one. */
struct _virConnect {
    int refs;
    unsigned server_gen; /* the libvirtd instance it talks to: dead once that one is gone */
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
    pthread_cond_t cond;
    vb_manual_clock_t mc;
    fake_vm_t vms[MAX_VMS];
    size_t n_vms;
    unsigned next_id;
    unsigned server_gen;
    bool server_down;
    bool open_hang; /* virConnectOpen blocks until cleared (a hung libvirtd accepts, then never answers) */

    unsigned opens, lookups, live_conns, live_doms, hanging, violations, id_violations;
    char last_uri[256];
    char last_command[1024];
    int keepalive_interval, keepalive_count;

    virConnectCloseFunc close_cb;
    void *close_opaque;
    virConnectPtr close_conn;
    virConnectDomainEventCallback lifecycle_cb;
    void *lifecycle_opaque;
    virConnectPtr event_conn;
    int event_registrations;

    bool inject_armed; /* the next monitor command fails with this error */
    int inject_code, inject_domain;
    char inject_message[256];
} fk = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

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

/* Called with fk.lock held. */
static bool conn_alive_locked(virConnectPtr conn)
{
    return !fk.server_down && conn->server_gen == fk.server_gen;
}

static void conn_unref_locked(virConnectPtr conn)
{
    if (--conn->refs == 0) {
        free(conn);
        fk.live_conns--;
    }
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

virErrorPtr __wrap_virGetLastError(void)
{
    return tl_err_set ? &tl_err : __real_virGetLastError();
}

void __wrap_virResetLastError(void)
{
    tl_err_set = false;
    __real_virResetLastError();
}

virConnectPtr __wrap_virConnectOpen(const char *name)
{
    virConnectPtr conn = NULL;

    if (name != NULL && strncmp(name, "real:", 5) == 0)
        return __real_virConnectOpen(name + 5);
    pthread_mutex_lock(&fk.lock);
    fk.opens++;
    snprintf(fk.last_uri, sizeof(fk.last_uri), "%s", name != NULL ? name : "(null)");
    if (fk.open_hang) {
        fk.hanging++;
        pthread_cond_broadcast(&fk.cond);
        while (fk.open_hang)
            pthread_cond_wait(&fk.cond, &fk.lock);
        fk.hanging--;
        pthread_cond_broadcast(&fk.cond);
    }
    if (fk.server_down) {
        fake_error(VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC,
                   "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused");
    } else {
        conn = calloc(1, sizeof(*conn));
        if (conn != NULL) {
            conn->refs = 1;
            conn->server_gen = fk.server_gen;
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
    (void)freecb;
    pthread_mutex_lock(&fk.lock);
    if (fk.close_cb != NULL)
        fk.violations++; /* one per connection, and the previous one was unregistered */
    fk.close_cb = cb;
    fk.close_opaque = opaque;
    fk.close_conn = conn;
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

int __wrap_virConnectUnregisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb)
{
    pthread_mutex_lock(&fk.lock);
    if (fk.close_conn == conn && fk.close_cb == cb) {
        fk.close_cb = NULL;
        fk.close_opaque = NULL;
        fk.close_conn = NULL;
    } else {
        fk.violations++;
    }
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

int __wrap_virConnectDomainEventRegisterAny(virConnectPtr conn, virDomainPtr dom, int eventID,
                                            virConnectDomainEventGenericCallback cb, void *opaque,
                                            virFreeCallback freecb)
{
    (void)freecb;
    pthread_mutex_lock(&fk.lock);
    if (dom != NULL || eventID != VIR_DOMAIN_EVENT_ID_LIFECYCLE || fk.event_registrations != 0)
        fk.violations++;
    fk.lifecycle_cb = (virConnectDomainEventCallback)(void (*)(void))cb;
    fk.lifecycle_opaque = opaque;
    fk.event_conn = conn;
    fk.event_registrations++;
    pthread_mutex_unlock(&fk.lock);
    return 7;
}

int __wrap_virConnectDomainEventDeregisterAny(virConnectPtr conn, int callbackID)
{
    int ret = 0;

    pthread_mutex_lock(&fk.lock);
    if (callbackID != 7 || fk.event_conn != conn) {
        fk.violations++;
    } else {
        fk.lifecycle_cb = NULL;
        fk.event_conn = NULL;
        fk.event_registrations--;
    }
    /* As in libvirt: the client-side callback goes, but the server cannot be told any more. */
    if (!conn_alive_locked(conn)) {
        fake_error(VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "internal error: client socket is closed");
        ret = -1;
    }
    pthread_mutex_unlock(&fk.lock);
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
        if (vm->hang) {
            fk.hanging++;
            pthread_cond_broadcast(&fk.cond);
            while (vm->hang)
                pthread_cond_wait(&fk.cond, &fk.lock);
            fk.hanging--;
            pthread_cond_broadcast(&fk.cond);
        }
        /* libvirt returns 0 whatever QEMU answered: {"return": ...} or {"error": ...}. */
        *result = qmp_handle(vm, cmd);
        ret = *result != NULL ? 0 : -1;
    }
    pthread_mutex_unlock(&fk.lock);
    return ret;
}

/* ---- fixtures and helpers ---- */

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

/* Everything the transport touched must have been given back. */
static bool all_released(void);
static bool wait_for(bool (*pred)(void));

static void assert_fake_released(void)
{
    unsigned live_doms, live_conns, violations, id_violations;
    int event_registrations;
    bool close_cb;

    /* A helper thread drops its references just after its caller has returned. */
    wait_for(all_released);
    /* Copied first: a failed assertion must not leave the fake's lock held. */
    pthread_mutex_lock(&fk.lock);
    live_doms = fk.live_doms;
    live_conns = fk.live_conns;
    close_cb = fk.close_cb != NULL;
    event_registrations = fk.event_registrations;
    violations = fk.violations;
    id_violations = fk.id_violations;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(live_doms, 0);
    assert_int_equal(live_conns, 0);
    assert_false(close_cb);
    assert_int_equal(event_registrations, 0);
    assert_int_equal(violations, 0);
    assert_int_equal(id_violations, 0);
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

static int setup(void **state)
{
    (void)state;
    pthread_mutex_lock(&fk.lock);
    for (size_t i = 0; i < fk.n_vms; i++)
        vb_device_free(fk.vms[i].dev);
    fk.n_vms = 0;
    fk.next_id = 0;
    fk.server_gen = 1;
    fk.server_down = false;
    fk.open_hang = false;
    fk.opens = fk.lookups = fk.violations = fk.id_violations = 0;
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

static bool none_hanging(void);

/* The test's transport, which teardown frees if a failed assertion left it open. */
static bal_transport_t *current;

static int teardown(void **state)
{
    (void)state;
    /* After a failed test: close what it left open, let a hung command finish before its device goes. */
    if (current != NULL) {
        bal_transport_free(current);
        current = NULL;
    }
    pthread_mutex_lock(&fk.lock);
    fk.open_hang = false;
    for (size_t i = 0; i < fk.n_vms; i++)
        fk.vms[i].hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    wait_for(none_hanging);
    pthread_mutex_lock(&fk.lock);
    for (size_t i = 0; i < fk.n_vms; i++)
        vb_device_free(fk.vms[i].dev);
    fk.n_vms = 0;
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

static bal_transport_t *open_transport(int timeout_ms)
{
    bal_error_t err;

    assert_null(current);
    memset(&err, 0, sizeof(err));
    current = bal_libvirt_transport_new(NULL, timeout_ms, &logger, &fake_clock, &err);
    if (current == NULL)
        fail_msg("bal_libvirt_transport_new failed: %s", err.message);
    return current;
}

static void close_transport(bal_transport_t *t)
{
    assert_ptr_equal(t, current);
    current = NULL;
    bal_transport_free(t);
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

static unsigned count_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    unsigned n = 0;

    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

/* Detached helper threads of earlier tests may still be exiting: wait until the count holds still. */
static unsigned settled_threads(void)
{
    unsigned n = count_threads(), same = 0;

    for (int i = 0; i < WAIT_S * 100 && same < 5; i++) {
        unsigned m;
        usleep(10000);
        m = count_threads();
        same = m == n ? same + 1 : 0;
        n = m;
    }
    return n;
}

static bool threads_become(unsigned expected)
{
    for (int i = 0; i < WAIT_S * 100; i++) {
        if (count_threads() == expected)
            return true;
        usleep(10000);
    }
    return false;
}

static struct timespec deadline_in(int seconds)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    return ts;
}

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Waits (real time, bounded) until pred() holds under fk.lock; the fake broadcasts fk.cond on changes
 * it makes, and other changes are polled every 10 ms. */
static bool wait_for(bool (*pred)(void))
{
    struct timespec deadline = deadline_in(WAIT_S);
    bool ok;

    pthread_mutex_lock(&fk.lock);
    while (!(ok = pred())) {
        struct timespec step;
        clock_gettime(CLOCK_REALTIME, &step);
        step.tv_nsec += 10 * 1000000L;
        if (step.tv_nsec >= 1000000000L) {
            step.tv_sec++;
            step.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&fk.cond, &fk.lock, &step);
        if (step.tv_sec > deadline.tv_sec || (step.tv_sec == deadline.tv_sec && step.tv_nsec >= deadline.tv_nsec))
            break;
    }
    ok = pred();
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

static bool all_released(void)
{
    return fk.hanging == 0 && fk.live_doms == 0 && fk.live_conns == 0;
}

/* Fires a libvirt callback the way libvirt does: from the event loop, here from the transport's thread
 * that runs it. Blocks until it has run. */
typedef enum { FIRE_LIFECYCLE, FIRE_CLOSE } fire_kind_t;

static struct {
    fire_kind_t kind;
    int code; /* lifecycle event or close reason */
    fake_vm_t *vm;
    bool done;
    pthread_t thread;
} fire;

static void fire_cb(int timer, void *opaque)
{
    virConnectDomainEventCallback lifecycle;
    virConnectCloseFunc close_cb;
    virConnectPtr conn;
    virDomainPtr dom = NULL;
    void *cb_opaque;

    (void)opaque;
    virEventRemoveTimeout(timer);
    pthread_mutex_lock(&fk.lock);
    if (fire.done) {
        pthread_mutex_unlock(&fk.lock);
        return;
    }
    lifecycle = fk.lifecycle_cb;
    close_cb = fk.close_cb;
    conn = fire.kind == FIRE_LIFECYCLE ? fk.event_conn : fk.close_conn;
    cb_opaque = fire.kind == FIRE_LIFECYCLE ? fk.lifecycle_opaque : fk.close_opaque;
    if (fire.kind == FIRE_LIFECYCLE && conn != NULL)
        dom = dom_new_locked(conn, fire.vm);
    pthread_mutex_unlock(&fk.lock);

    if (fire.kind == FIRE_LIFECYCLE && lifecycle != NULL && dom != NULL)
        lifecycle(conn, dom, fire.code, 0, cb_opaque);
    else if (fire.kind == FIRE_CLOSE && close_cb != NULL)
        close_cb(conn, fire.code, cb_opaque);
    if (dom != NULL)
        __wrap_virDomainFree(dom);

    pthread_mutex_lock(&fk.lock);
    fire.thread = pthread_self();
    fire.done = true;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
}

static bool fired(void)
{
    return fire.done;
}

static void fire_on_loop(fire_kind_t kind, int code, fake_vm_t *vm)
{
    pthread_mutex_lock(&fk.lock);
    fire.kind = kind;
    fire.code = code;
    fire.vm = vm;
    fire.done = false;
    pthread_mutex_unlock(&fk.lock);
    assert_true(virEventAddTimeout(0, fire_cb, NULL, NULL) >= 0);
    assert_true(wait_for(fired));
    assert_false(pthread_equal(fire.thread, pthread_self()));
}

static int exec(bal_transport_t *t, fake_vm_t *vm, const char *cmd, char **reply, bal_error_t *err)
{
    bal_domain_info_t info = info_of(vm);

    *reply = NULL;
    memset(err, 0, sizeof(*err));
    return bal_transport_execute(t, &info, cmd, reply, err);
}

/* ---- tests ---- */

/* The constructor opens qemu:///system once with keepalive and both callbacks; free undoes all of it
 * and joins the event-loop thread. */
static void test_new_and_free(void **state)
{
    unsigned before = settled_threads();
    bal_transport_t *t;

    (void)state;
    t = open_transport(0);
    assert_string_equal(t->ops->name, "libvirt");
    assert_int_equal(opens(), 1);
    assert_string_equal(fk.last_uri, BAL_LIBVIRT_DEFAULT_URI);
    assert_int_equal(fk.keepalive_interval, BAL_LIBVIRT_KEEPALIVE_INTERVAL);
    assert_int_equal(fk.keepalive_count, BAL_LIBVIRT_KEEPALIVE_COUNT);
    assert_non_null(fk.close_cb);
    assert_int_equal(fk.event_registrations, 1);
    assert_int_equal(count_threads(), before + 1);
    assert_false(bal_transport_take_changes(t));
    close_transport(t);
    assert_int_equal(count_threads(), before);
    assert_fake_released();
}

static void test_new_fails_when_libvirtd_is_down(void **state)
{
    bal_error_t err;
    unsigned before = settled_threads();

    (void)state;
    fk.server_down = true;
    memset(&err, 0, sizeof(err));
    assert_null(bal_libvirt_transport_new("qemu:///system", 0, &logger, &fake_clock, &err));
    assert_int_equal(err.code, -ENOTCONN);
    assert_non_null(strstr(err.message, "'qemu:///system'"));
    assert_non_null(strstr(err.message, "Connection refused"));
    assert_int_equal(count_threads(), before);
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
    t = open_transport(5000);
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
    t = open_transport(5000);
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

    assert_int_equal(bal_qmp_build("query-balloon", &cmd, &err), 0);
    assert_int_equal(exec(t, vm, cmd, &reply, &err), 0);
    assert_int_equal(bal_qmp_parse_balloon_actual(reply, strlen(reply), &actual, &err), 0);
    assert_true(actual == vm->memory);
    free(cmd);
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
    assert_int_equal(bal_transport_execute(t, &info, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    assert_non_null(strstr(reply, "\"actual\""));
    free(reply);
    assert_int_equal(bal_transport_execute(t, &info, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    free(reply);
    assert_int_equal(fk.lookups, 1); /* cached after the first */
    info.name = (char *)"nobody";
    assert_int_equal(bal_transport_execute(t, &info, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOENT);
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
    assert_non_null(fk.close_cb);

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
    return fk.hanging == 0 && fk.live_conns == 0 && fk.close_cb == NULL && fk.event_registrations == 0;
}

/* libvirtd hangs (accepts, never answers): the constructor gives up after the timeout instead of
 * blocking its caller (collectd's init) forever. */
static void test_new_with_hung_libvirtd(void **state)
{
    bal_error_t err;
    struct timespec start;

    (void)state;
    fk.open_hang = true;
    memset(&err, 0, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_null(bal_libvirt_transport_new(NULL, 100, &logger, &fake_clock, &err));
    assert_true(elapsed_s(&start) < WAIT_S);
    assert_int_equal(err.code, -ETIMEDOUT);
    assert_non_null(strstr(err.message, "no answer within 100 ms"));
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
    char *reply = NULL;
    struct timespec start;

    (void)state;
    vm = add_vm("vm-a", 512 * MIB, true);
    t = open_transport(100);
    pthread_mutex_lock(&fk.lock);
    fk.server_gen++;
    fk.open_hang = true;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_true(elapsed_s(&start) < WAIT_S);
    assert_non_null(strstr(err.message, "no answer within 100 ms"));
    assert_int_equal(opens(), 2);
    assert_true(wait_for(one_hanging));

    atomic_fetch_add(&now_ms, BAL_LIBVIRT_BACKOFF_MAX_MS);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ENOTCONN);
    assert_non_null(strstr(err.message, "being reopened"));
    assert_int_equal(opens(), 2);

    release_open();
    assert_true(wait_for(abandoned_open_cleaned));
    /* The helper lets go of the pending attempt right after; then the next call reconnects. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err) == -ENOTCONN && elapsed_s(&start) < WAIT_S)
        usleep(1000);
    assert_int_equal(err.code, 0);
    free(reply);
    assert_int_equal(opens(), 3);
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

    (void)state;
    slow = add_vm("slow", 512 * MIB, true);
    fast = add_vm("fast", 512 * MIB, true);
    t = open_transport(100);
    pthread_mutex_lock(&fk.lock);
    slow->hang = true;
    pthread_mutex_unlock(&fk.lock);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(exec(t, slow, "{\"execute\":\"query-balloon\"}", &reply, &err), -ETIMEDOUT);
    assert_true(elapsed_s(&start) >= 0.09 && elapsed_s(&start) < WAIT_S);
    assert_non_null(strstr(err.message, "'slow'"));
    assert_null(reply);
    assert_true(wait_for(one_hanging));

    assert_int_equal(exec(t, slow, "{\"execute\":\"query-balloon\"}", &reply, &err), -ETIMEDOUT);
    assert_non_null(strstr(err.message, "has not returned"));
    assert_int_equal(slow->commands, 1);

    assert_int_equal(exec(t, fast, "{\"execute\":\"query-balloon\"}", &reply, &err), 0);
    free(reply);

    pthread_mutex_lock(&fk.lock);
    slow->hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    /* The helper removes the domain from the pending set right after libvirt returns. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (exec(t, slow, "{\"execute\":\"query-balloon\"}", &reply, &err) == -ETIMEDOUT && elapsed_s(&start) < WAIT_S)
        usleep(1000);
    assert_int_equal(err.code, 0);
    assert_non_null(reply);
    free(reply);
    assert_int_equal(slow->commands, 2);
    close_transport(t);
    assert_true(wait_for(all_released));
    assert_fake_released();
}

/* Freeing the transport while a command hangs: free returns, and the helper cleans up after itself
 * when the command finally returns (ASan would see a use after free). */
static void test_free_while_command_hangs(void **state)
{
    fake_vm_t *vm;
    bal_transport_t *t;
    bal_error_t err;
    char *reply = NULL;
    unsigned before = settled_threads();

    (void)state;
    vm = add_vm("hung", 512 * MIB, true);
    t = open_transport(50);
    pthread_mutex_lock(&fk.lock);
    vm->hang = true;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(exec(t, vm, "{\"execute\":\"query-balloon\"}", &reply, &err), -ETIMEDOUT);
    assert_true(wait_for(one_hanging));
    close_transport(t);
    assert_int_equal(count_threads(), before + 1); /* the helper, still inside libvirt */
    pthread_mutex_lock(&fk.lock);
    vm->hang = false;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    assert_true(wait_for(all_released));
    assert_true(threads_become(before)); /* and the helper thread ends */
    assert_fake_released();
}

/* Several pool threads at once, each reply for its own domain. */
#define WORKERS 8
#define CALLS 25

typedef struct worker {
    bal_transport_t *t;
    fake_vm_t *vm;
    unsigned bad;
} worker_t;

static void *worker_main(void *opaque)
{
    worker_t *w = opaque;

    for (int i = 0; i < CALLS; i++) {
        bal_domain_info_t info = info_of(w->vm);
        bal_error_t err;
        char *reply = NULL;
        uint64_t actual = 0;

        if (bal_transport_execute(w->t, &info, "{\"execute\":\"query-balloon\"}", &reply, &err) != 0 ||
            bal_qmp_parse_balloon_actual(reply, strlen(reply), &actual, &err) != 0 || actual != w->vm->memory)
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
    unsigned total = 0;

    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "vm-%d", i);
        vms[i] = add_vm(name, (uint64_t)(256 + 128 * i) * MIB, true);
    }
    t = open_transport(timeout_ms);
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker_t){.t = t, .vm = vms[i % 4], .bad = 0};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        total += workers[i].bad;
    }
    assert_int_equal(total, 0);
    for (int i = 0; i < 4; i++)
        total += vms[i]->commands;
    assert_int_equal(total, WORKERS * CALLS);
    close_transport(t);
    assert_true(wait_for(all_released));
    assert_fake_released();
}

static void test_concurrent_inline(void **state)
{
    (void)state;
    run_concurrently(0);
}

static void test_concurrent_with_timeout(void **state)
{
    (void)state;
    run_concurrently(5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_libvirt_prints_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_and_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_fails_when_libvirtd_is_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_through_device_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qemu_error_inside_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_gone_or_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_callback_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_with_hung_libvirtd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_to_hung_libvirtd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_while_command_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_with_timeout, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
