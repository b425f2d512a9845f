/* libvirt calls failing at random, under the whole read path: the agent over the real libvirt
 * transport (agent/bal_libvirt.c), with libvirt's connection and domain API replaced at link time
 * (-Wl,--wrap, see tests/fault.mk) by a fake libvirtd whose every call may fail, seeded, in the ways
 * libvirt's do: connections refused or dropped (RPC / system errors, after which the connection is
 * dead), domains vanished or not running, job-lock timeouts, QEMU-side errors, and calls that hang
 * past the transport's timeout. QMP commands that get through are answered by the device model
 * (fault_fake.h, which also checks each against the allow-list and injects garbage and QMP errors).
 * libvirt's own default event loop is not faked: the transport's thread really runs it.
 *
 * For 300 cycles: no crash, every cycle within bal_agent_read's bound on the real clock, each result
 * either a count of domains read or one of the documented errors. Then the failures stop and the next
 * cycle (once the reconnect backoff has passed on the injected clock) reads every domain. At the end
 * every connection and domain handle the fake gave out has been released (and ASan / valgrind see no
 * leak). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent/bal_agent.h"
#include "agent/bal_open.h"
#include "tests/fault_fake.h"
#include "tests/tt_env.h"
#include "tests/tt_tally.h"
#include "tests/tt_time.h"

#define N_DOMS 12
#define TIMEOUT_MS 200
#define HANG_MS (TIMEOUT_MS * 2)

/* ---- the fake libvirtd ---- */

struct _virConnect {
    int refs;
    unsigned gen; /* dead once the fake's generation moved past it */
};

struct _virDomain {
    int refs;
    virConnectPtr conn;
    char name[16];
    char uuid[VIR_UUID_STRING_BUFLEN];
    unsigned id;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t idle;
    ff_t *ff;           /* the guests */
    unsigned gen;       /* bumped when the "libvirtd connection" breaks */
    unsigned permille;  /* each call fails with this probability */
    unsigned seed;
    unsigned live_conns, live_doms, in_calls;
    unsigned long calls, failed, hung, opens;
    /* A QEMU that does not answer: monitor commands for this domain block until stalling is cleared. */
    const char *stall_name;
    bool stalling;
    pthread_cond_t unstall;
    unsigned long stall_calls;
    int64_t stall_began_ms; /* when the first stalled call came in (tt_mono_ms) */
} lv = {.lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER, .unstall = PTHREAD_COND_INITIALIZER};

static __thread virError tl_err;
static __thread bool tl_err_set;
static __thread char tl_msg[600];

virErrorPtr __real_virGetLastError(void);
void __real_virResetLastError(void);

virErrorPtr __wrap_virGetLastError(void);
virErrorPtr __wrap_virGetLastError(void)
{
    return tl_err_set ? &tl_err : __real_virGetLastError();
}

void __wrap_virResetLastError(void);
void __wrap_virResetLastError(void)
{
    tl_err_set = false;
    __real_virResetLastError();
}

static void set_error(int code, int domain, const char *msg)
{
    memset(&tl_err, 0, sizeof(tl_err));
    snprintf(tl_msg, sizeof(tl_msg), "%s", msg);
    tl_err.code = code;
    tl_err.domain = domain;
    tl_err.level = VIR_ERR_ERROR;
    tl_err.message = tl_msg;
    tl_err_set = true;
}

typedef struct failure {
    int code, domain;
    const char *message;
    bool kills_connection;
    bool hangs;
} failure_t;

/* The ways each kind of call fails in real libvirt. */
static const failure_t connection_failures[] = {
    {VIR_ERR_RPC, VIR_FROM_RPC, "Cannot write data: Broken pipe", true, false},
    {VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC, "End of file while reading data: Input/output error", true, false},
    {VIR_ERR_NO_CONNECT, VIR_FROM_NONE, "no connection driver available", true, false},
    {VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "client socket is closed", true, false},
};
static const failure_t domain_failures[] = {
    {VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU, "Domain not found: no domain with matching uuid", false, false},
    {VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, "Requested operation is not valid: domain is not running", false,
     false},
    {VIR_ERR_OPERATION_TIMEOUT, VIR_FROM_QEMU,
     "Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatch)", false,
     false},
    {VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU, "internal error: cannot parse json {: lexical error", false, false},
    {VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU, "operation failed: monitor closed unexpectedly", false, false},
    {VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU, "internal error: hangs (the fake sleeps past the timeout)", false,
     true},
};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Starts a call: false (with the error set) when it is to fail. Ends with call_end(). */
static bool call_begin(virConnectPtr conn, bool domain_call)
{
    failure_t f;
    bool fail = false;

    pthread_mutex_lock(&lv.lock);
    lv.calls++;
    lv.in_calls++;
    if (conn != NULL && conn->gen != lv.gen) {
        pthread_mutex_unlock(&lv.lock);
        set_error(VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "client socket is closed");
        return false;
    }
    if (lv.permille > 0 && (unsigned)(rand_r(&lv.seed) % 1000) < lv.permille) {
        unsigned r = (unsigned)rand_r(&lv.seed);
        fail = true;
        lv.failed++;
        if (domain_call && r % 3 != 0)
            f = domain_failures[r / 3 % (sizeof(domain_failures) / sizeof(domain_failures[0]))];
        else
            f = connection_failures[r / 3 % (sizeof(connection_failures) / sizeof(connection_failures[0]))];
        if (f.kills_connection)
            lv.gen++;
        if (f.hangs)
            lv.hung++;
    }
    pthread_mutex_unlock(&lv.lock);
    if (!fail)
        return true;
    if (f.hangs)
        sleep_ms(HANG_MS); /* the transport has given up on this call by now */
    set_error(f.code, f.domain, f.message);
    return false;
}

static void call_end(void)
{
    pthread_mutex_lock(&lv.lock);
    if (--lv.in_calls == 0)
        pthread_cond_broadcast(&lv.idle);
    pthread_mutex_unlock(&lv.lock);
}

static virDomainPtr dom_new(virConnectPtr conn, const bal_domain_info_t *info)
{
    virDomainPtr d = calloc(1, sizeof(*d));

    assert_non_null(d);
    d->refs = 1;
    d->conn = conn;
    snprintf(d->name, sizeof(d->name), "%s", info->name);
    memcpy(d->uuid, info->uuid, sizeof(d->uuid));
    d->id = (unsigned)info->instance;
    pthread_mutex_lock(&lv.lock);
    conn->refs++; /* a handle holds its connection, as in libvirt */
    lv.live_doms++;
    pthread_mutex_unlock(&lv.lock);
    return d;
}

static void conn_unref(virConnectPtr conn)
{
    pthread_mutex_lock(&lv.lock);
    if (--conn->refs == 0) {
        free(conn);
        lv.live_conns--;
    }
    pthread_mutex_unlock(&lv.lock);
}

virConnectPtr __wrap_virConnectOpen(const char *name);
virConnectPtr __wrap_virConnectOpen(const char *name)
{
    virConnectPtr conn = NULL;

    (void)name;
    if (call_begin(NULL, false)) {
        conn = calloc(1, sizeof(*conn));
        assert_non_null(conn);
        pthread_mutex_lock(&lv.lock);
        conn->refs = 1;
        conn->gen = lv.gen;
        lv.live_conns++;
        lv.opens++;
        pthread_mutex_unlock(&lv.lock);
    }
    call_end();
    return conn;
}

int __wrap_virConnectClose(virConnectPtr conn);
int __wrap_virConnectClose(virConnectPtr conn)
{
    if (conn == NULL)
        return -1;
    conn_unref(conn);
    return 0;
}

int __wrap_virConnectRef(virConnectPtr conn);
int __wrap_virConnectRef(virConnectPtr conn)
{
    pthread_mutex_lock(&lv.lock);
    conn->refs++;
    pthread_mutex_unlock(&lv.lock);
    return 0;
}

int __wrap_virConnectIsAlive(virConnectPtr conn);
int __wrap_virConnectIsAlive(virConnectPtr conn)
{
    int alive;

    pthread_mutex_lock(&lv.lock);
    alive = conn->gen == lv.gen;
    pthread_mutex_unlock(&lv.lock);
    return alive;
}

int __wrap_virConnectSetKeepAlive(virConnectPtr conn, int interval, unsigned int count);
int __wrap_virConnectSetKeepAlive(virConnectPtr conn, int interval, unsigned int count)
{
    (void)conn;
    (void)interval;
    (void)count;
    return 0;
}

int __wrap_virConnectRegisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb, void *opaque,
                                           virFreeCallback freecb);
int __wrap_virConnectRegisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb, void *opaque,
                                           virFreeCallback freecb)
{
    (void)conn;
    (void)cb;
    if (freecb != NULL)
        freecb(opaque); /* never called back: the fake's connections die by their errors */
    return 0;
}

int __wrap_virConnectUnregisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb);
int __wrap_virConnectUnregisterCloseCallback(virConnectPtr conn, virConnectCloseFunc cb)
{
    (void)conn;
    (void)cb;
    return 0;
}

int __wrap_virConnectDomainEventRegisterAny(virConnectPtr conn, virDomainPtr dom, int eventID,
                                            virConnectDomainEventGenericCallback cb, void *opaque,
                                            virFreeCallback freecb);
int __wrap_virConnectDomainEventRegisterAny(virConnectPtr conn, virDomainPtr dom, int eventID,
                                            virConnectDomainEventGenericCallback cb, void *opaque,
                                            virFreeCallback freecb)
{
    (void)conn;
    (void)dom;
    (void)eventID;
    (void)cb;
    if (freecb != NULL)
        freecb(opaque);
    return 1;
}

int __wrap_virConnectDomainEventDeregisterAny(virConnectPtr conn, int callbackID);
int __wrap_virConnectDomainEventDeregisterAny(virConnectPtr conn, int callbackID)
{
    (void)conn;
    (void)callbackID;
    return 0;
}

/* The running guests, as fault_fake lists them. */
static void guests(bal_domain_list_t *list)
{
    bal_transport_t *t = ff_transport(lv.ff);
    assert_int_equal(t->ops->list_domains(t, list, NULL), 0);
}

int __wrap_virConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains, unsigned int flags);
int __wrap_virConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains, unsigned int flags)
{
    bal_domain_list_t list = {0};
    int n = -1;

    (void)flags;
    if (call_begin(conn, false)) {
        guests(&list);
        *domains = calloc(list.count + 1, sizeof(**domains));
        assert_non_null(*domains);
        for (size_t i = 0; i < list.count; i++)
            (*domains)[i] = dom_new(conn, &list.items[i]);
        n = (int)list.count;
        bal_domain_list_free(&list);
    }
    call_end();
    return n;
}

static virDomainPtr lookup(virConnectPtr conn, const char *uuid, const char *name)
{
    bal_domain_list_t list = {0};
    virDomainPtr d = NULL;

    if (call_begin(conn, true)) {
        guests(&list);
        for (size_t i = 0; i < list.count && d == NULL; i++)
            if ((uuid != NULL && strcmp(list.items[i].uuid, uuid) == 0) ||
                (name != NULL && strcmp(list.items[i].name, name) == 0))
                d = dom_new(conn, &list.items[i]);
        if (d == NULL)
            set_error(VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU, "Domain not found");
        bal_domain_list_free(&list);
    }
    call_end();
    return d;
}

virDomainPtr __wrap_virDomainLookupByUUIDString(virConnectPtr conn, const char *uuid);
virDomainPtr __wrap_virDomainLookupByUUIDString(virConnectPtr conn, const char *uuid)
{
    return lookup(conn, uuid, NULL);
}

virDomainPtr __wrap_virDomainLookupByName(virConnectPtr conn, const char *name);
virDomainPtr __wrap_virDomainLookupByName(virConnectPtr conn, const char *name)
{
    return lookup(conn, NULL, name);
}

int __wrap_virDomainRef(virDomainPtr domain);
int __wrap_virDomainRef(virDomainPtr domain)
{
    pthread_mutex_lock(&lv.lock);
    domain->refs++;
    pthread_mutex_unlock(&lv.lock);
    return 0;
}

int __wrap_virDomainFree(virDomainPtr domain);
int __wrap_virDomainFree(virDomainPtr domain)
{
    virConnectPtr conn = NULL;

    if (domain == NULL)
        return -1;
    pthread_mutex_lock(&lv.lock);
    if (--domain->refs == 0) {
        conn = domain->conn;
        free(domain);
        lv.live_doms--;
    }
    pthread_mutex_unlock(&lv.lock);
    if (conn != NULL)
        conn_unref(conn);
    return 0;
}

const char *__wrap_virDomainGetName(virDomainPtr domain);
const char *__wrap_virDomainGetName(virDomainPtr domain)
{
    return domain->name;
}

int __wrap_virDomainGetUUIDString(virDomainPtr domain, char *buf);
int __wrap_virDomainGetUUIDString(virDomainPtr domain, char *buf)
{
    memcpy(buf, domain->uuid, VIR_UUID_STRING_BUFLEN);
    return 0;
}

unsigned int __wrap_virDomainGetID(virDomainPtr domain);
unsigned int __wrap_virDomainGetID(virDomainPtr domain)
{
    return domain->id;
}

int __wrap_virDomainQemuMonitorCommand(virDomainPtr domain, const char *cmd, char **result, unsigned int flags);
int __wrap_virDomainQemuMonitorCommand(virDomainPtr domain, const char *cmd, char **result, unsigned int flags)
{
    bal_transport_t *t = ff_transport(lv.ff);
    bal_domain_info_t info = {.name = domain->name, .instance = domain->id};
    bal_error_t err = {0};
    int rc = -1;

    (void)flags;
    pthread_mutex_lock(&lv.lock);
    if (lv.stall_name != NULL && strcmp(domain->name, lv.stall_name) == 0) {
        if (lv.stall_calls++ == 0)
            lv.stall_began_ms = tt_mono_ms();
        while (lv.stalling)
            pthread_cond_wait(&lv.unstall, &lv.lock);
    }
    pthread_mutex_unlock(&lv.lock);
    if (call_begin(domain->conn, true)) {
        int r = t->ops->execute(t, &info, cmd, result, &err);
        if (r == 0)
            rc = 0;
        else if (r == -ENOENT)
            set_error(VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, "domain is not running");
        else if (r == -ETIMEDOUT)
            set_error(VIR_ERR_OPERATION_TIMEOUT, VIR_FROM_QEMU, "cannot acquire state change lock");
        else
            set_error(VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU, err.message);
    }
    call_end();
    return rc;
}

/* ---- the test ---- */

typedef struct agent_clock {
    bal_clock_t clock;
    int64_t ms;
    const bal_clock_t *guests; /* the guests' wall clock, so that last-update compares */
} agent_clock_t;

static int64_t ac_wall_s(void *opaque)
{
    agent_clock_t *c = opaque;
    return c->guests->wall_s(c->guests->opaque);
}

static int64_t ac_monotonic_ms(void *opaque)
{
    agent_clock_t *c = opaque;
    return c->ms;
}

static int cycle(bal_agent_t *agent, agent_clock_t *clock, int64_t advance_s, tt_tally_t *t)
{
    int64_t slack = tt_valgrind() ? 10000 : 1000, start, took;
    bal_error_t err = {0};
    int rc;

    ff_advance_s(lv.ff, advance_s);
    clock->ms += advance_s * 1000;
    memset(t, 0, sizeof(*t));
    start = tt_mono_ms();
    rc = bal_agent_read(agent, tt_tally_sample, t, &err);
    took = tt_mono_ms() - start;
    if (took > 3 * TIMEOUT_MS + slack)
        fail_msg("a cycle took %lld ms, more than 3 timeouts of %d ms", (long long)took, TIMEOUT_MS);
    return rc;
}

/* A helper thread frees its handles just after its call returns: waits for that, bounded, then checks
 * that every connection and domain handle the fake gave out was released. */
static void expect_all_released(void)
{
    for (int i = 0; i < 1000; i++) {
        unsigned open;
        pthread_mutex_lock(&lv.lock);
        open = lv.live_doms + lv.live_conns;
        pthread_mutex_unlock(&lv.lock);
        if (open == 0)
            break;
        sleep_ms(10);
    }
    assert_int_equal(lv.live_doms, 0);
    assert_int_equal(lv.live_conns, 0);
}

static void test_random_libvirt_failures(void **state)
{
    int cycles = tt_skip_slow() ? 100 : 300;
    agent_clock_t clock;
    bal_open_config_t open = {.transport = BAL_TRANSPORT_LIBVIRT, .libvirt_uri = "qemu:///fault"};
    bal_agent_config_t config = {
        .polling_interval_s = 10,
        .refresh_interval_s = 30,
        .timeout_ms = TIMEOUT_MS,
        .restore_interval = true,
    };
    bal_agent_t *agent = NULL;
    bal_error_t err = {0};
    unsigned long reads = 0, errors = 0;
    ff_counts_t counts;
    tt_tally_t t;
    int rc;
    (void)state;

    lv.ff = ff_new(64);
    ff_set_running(lv.ff, 0, N_DOMS);
    ff_set_failures(lv.ff, 20, 7); /* QMP errors and garbage from QEMU, on top of libvirt's */
    clock = (agent_clock_t){.clock = {.wall_s = ac_wall_s, .monotonic_ms = ac_monotonic_ms, .opaque = &clock},
                            .ms = 1000000,
                            .guests = ff_clock(lv.ff)};
    config.clock = &clock.clock;
    if (bal_open_agent(&config, &open, &agent, &err) != 0)
        fail_msg("bal_open_agent: %s", err.message);

    pthread_mutex_lock(&lv.lock);
    lv.permille = 100;
    lv.seed = 2024;
    pthread_mutex_unlock(&lv.lock);
    for (int c = 0; c < cycles; c++) {
        /* guests come and go too, now and then */
        ff_set_running(lv.ff, (size_t)(c / 50), N_DOMS);
        rc = cycle(agent, &clock, 10, &t);
        if (rc >= 0) {
            reads++;
            /* late (a hung call past the read's budget) is not read either */
            assert_int_equal(rc, (int)(t.samples - t.failed - t.late));
            assert_true(t.samples <= N_DOMS);
        } else {
            errors++;
            assert_true(rc == -ENOTCONN || rc == -ETIMEDOUT || rc == -ENOENT || rc == -ESHUTDOWN ||
                        rc == -EIO || rc == -EPROTO || rc == -EREMOTEIO || rc == -EACCES);
        }
    }
    print_message("%d cycles: %lu read something, %lu read nothing; libvirt: %lu calls, %lu failed, %lu hung, "
                  "%lu connections opened\n",
                  cycles, reads, errors, lv.calls, lv.failed, lv.hung, lv.opens);
    assert_true(lv.failed > 50);
    assert_true(lv.opens > 1); /* connections were lost and reopened */
    assert_true(reads > (unsigned long)cycles / 2);

    /* The failures stop. Once the reconnect backoff (at most 60 s) has passed, the next cycle reads every
     * running domain; a domain whose first-sight steps were cut short may need that one cycle to set its
     * interval, so two cycles are allowed. */
    pthread_mutex_lock(&lv.lock);
    lv.permille = 0;
    pthread_mutex_unlock(&lv.lock);
    ff_set_failures(lv.ff, 0, 0);
    /* a hung call still running holds its domain ("no other is sent until it does") */
    pthread_mutex_lock(&lv.lock);
    while (lv.in_calls > 0)
        pthread_cond_wait(&lv.idle, &lv.lock);
    pthread_mutex_unlock(&lv.lock);
    rc = cycle(agent, &clock, 61, &t);
    assert_int_equal(rc, (int)(t.samples - t.failed));
    if (t.ok != N_DOMS) {
        rc = cycle(agent, &clock, 10, &t);
        assert_int_equal(rc, N_DOMS);
    }
    assert_int_equal(t.ok, N_DOMS);

    bal_agent_free(agent);
    /* calls the transport abandoned finish in the background, then release what they hold */
    pthread_mutex_lock(&lv.lock);
    while (lv.in_calls > 0)
        pthread_cond_wait(&lv.idle, &lv.lock);
    pthread_mutex_unlock(&lv.lock);
    ff_counts(lv.ff, &counts);
    assert_int_equal(counts.refused, 0);
    ff_free(lv.ff);
    expect_all_released();
}

/* Issue 11, item 12, through the libvirt transport: a domain whose QEMU does not answer costs a read no
 * more than its budget; it is LATE while its command is out (one, never more), FAILED once the
 * transport's timeout gives up on it, and read again once its QEMU answers. */
static void test_stalled_domain_late_through_libvirt(void **state)
{
    int64_t slack = tt_valgrind() ? 10000 : 1000, stall_began;
    agent_clock_t clock;
    bal_open_config_t open = {.transport = BAL_TRANSPORT_LIBVIRT, .libvirt_uri = "qemu:///fault"};
    bal_agent_config_t config = {
        .polling_interval_s = 10,
        .timeout_ms = 1000,
        .read_budget_ms = 200,
    };
    bal_agent_t *agent = NULL;
    bal_error_t err = {0};
    tt_tally_t t;
    int rc;
    (void)state;

    lv.ff = ff_new(16);
    ff_set_running(lv.ff, 0, 5);
    clock = (agent_clock_t){.clock = {.wall_s = ac_wall_s, .monotonic_ms = ac_monotonic_ms, .opaque = &clock},
                            .ms = 1000000,
                            .guests = ff_clock(lv.ff)};
    config.clock = &clock.clock;
    pthread_mutex_lock(&lv.lock);
    lv.stall_name = "vm-000002";
    lv.stalling = true;
    pthread_mutex_unlock(&lv.lock);
    if (bal_open_agent(&config, &open, &agent, &err) != 0)
        fail_msg("bal_open_agent: %s", err.message);

    for (int i = 0; i < 2; i++) {
        int64_t t0 = tt_mono_ms();

        ff_advance_s(lv.ff, 1);
        clock.ms += 1000;
        memset(&t, 0, sizeof(t));
        rc = bal_agent_read(agent, tt_tally_sample, &t, &err);
        assert_true(tt_mono_ms() - t0 < 200 + slack);
        assert_int_equal(rc, 4);
        assert_int_equal(t.ok, 4);
        assert_int_equal(t.late, 1);
    }
    assert_int_equal(lv.stall_calls, 1);

    /* the transport's timeout: the call is given up (it goes on in libvirt), the domain FAILED. Counted
     * from when the stalled call came in, which under valgrind is well after the first read began. */
    pthread_mutex_lock(&lv.lock);
    stall_began = lv.stall_began_ms;
    pthread_mutex_unlock(&lv.lock);
    while (tt_mono_ms() - stall_began < 1100)
        sleep_ms(10);
    memset(&t, 0, sizeof(t));
    assert_int_equal(bal_agent_read(agent, tt_tally_sample, &t, &err), 4);
    assert_int_equal(t.failed, 1);
    assert_int_equal(t.late, 0);

    pthread_mutex_lock(&lv.lock);
    lv.stalling = false; /* QEMU answers at last */
    pthread_cond_broadcast(&lv.unstall);
    while (lv.in_calls > 0)
        pthread_cond_wait(&lv.idle, &lv.lock);
    pthread_mutex_unlock(&lv.lock);
    /* The fake's call has returned, but the transport's helper thread may not have taken the answer
     * yet (under load, for a while): until it has, the domain's call is still out and it fails at once.
     * So read again, for a bounded time, until it is read. */
    for (int64_t until = tt_mono_ms() + 5 * slack; t.ok != 5 && tt_mono_ms() < until;) {
        ff_advance_s(lv.ff, 10);
        clock.ms += 10000;
        memset(&t, 0, sizeof(t));
        rc = bal_agent_read(agent, tt_tally_sample, &t, &err);
        if (t.ok != 5)
            sleep_ms(20);
    }
    assert_int_equal(rc, 5);
    assert_int_equal(t.ok, 5);
    bal_agent_free(agent);
    lv.stall_name = NULL;
    ff_free(lv.ff);
    expect_all_released();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_libvirt_failures),
        cmocka_unit_test(test_stalled_domain_late_through_libvirt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
