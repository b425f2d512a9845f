/* QMP as QEMU 7.2 speaks it (monitor/qmp.c, qapi/qmp-dispatch.c and the generated marshallers),
 * over the VMs of vb_machine.h. See vb_qmp_server.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_buf.h"
#include "virtio/vb_hash.h"
#include "virtio/vb_json_print.h"
#include "virtio/vb_json_stream.h"
#include "virtio/vb_order.h"
#include "virtio/vb_qmp_server.h"

/* A client that does not read its replies loses its connection past this much queued output: reading
 * its input is never suspended (QEMU would stall it, and it us), so this bounds what it costs. */
#define MAX_OUTPUT (4u << 20)
/* A connection keeps the buffer it prints its replies into, unless a reply made it larger. */
#define MAX_LINE_KEPT 4096

typedef struct entry {
    vb_machine_t *m;
    struct entry *next;     /* hash chain */
    vb_qmp_conn_t *conns;   /* every connection to this VM */
    bool quit;
} entry_t;

struct vb_qmp_server {
    const vb_clock_t *clock;
    vb_qmp_server_ops_t ops;
    void *opaque;
    entry_t **buckets;
    size_t nbuckets, count;
};

struct vb_qmp_conn {
    vb_qmp_server_t *s;
    entry_t *e;               /* NULL once the server let go of the VM */
    vb_qmp_conn_t *prev, *next;
    void *opaque;
    vb_json_stream_t *in;
    vb_buf_t line;            /* the reply being printed */
    char *out;
    size_t out_off, out_len, out_cap;
    bool negotiated;
    bool oob;
    bool finished;
    bool in_input;            /* inside vb_qmp_conn_input: no wake needed */
};

/* ======================================================================== the set of VMs */

static size_t hash_name(const char *name)
{
    return (size_t)vb_hash_string(name);
}

vb_qmp_server_t *vb_qmp_server_new(const vb_clock_t *clock, const vb_qmp_server_ops_t *ops,
                                   void *opaque)
{
    vb_qmp_server_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->clock = clock;
    if (ops != NULL)
        s->ops = *ops;
    s->opaque = opaque;
    s->nbuckets = 64;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    if (s->buckets == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void vb_qmp_server_free(vb_qmp_server_t *s)
{
    if (s == NULL)
        return;
    for (size_t b = 0; b < s->nbuckets; b++) {
        entry_t *e = s->buckets[b];
        while (e != NULL) {
            entry_t *next = e->next;
            for (vb_qmp_conn_t *c = e->conns; c != NULL; c = c->next)
                c->e = NULL; /* the loop still frees them */
            vb_machine_free(e->m);
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    free(s);
}

static entry_t **slot_of(const vb_qmp_server_t *s, const char *name)
{
    entry_t **pe = &s->buckets[hash_name(name) % s->nbuckets];
    while (*pe != NULL && strcmp(vb_machine_name((*pe)->m), name) != 0)
        pe = &(*pe)->next;
    return pe;
}

static void grow(vb_qmp_server_t *s)
{
    size_t n = s->nbuckets * 4;
    entry_t **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry_t *e = s->buckets[i];
        while (e != NULL) {
            entry_t *next = e->next;
            size_t k = hash_name(vb_machine_name(e->m)) % n;
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

int vb_qmp_server_add(vb_qmp_server_t *s, vb_machine_t *m)
{
    entry_t **pe, *e;

    if (*slot_of(s, vb_machine_name(m)) != NULL) {
        vb_machine_free(m);
        return -EEXIST;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        vb_machine_free(m);
        return -ENOMEM;
    }
    if (s->count + 1 > s->nbuckets * 2)
        grow(s);
    e->m = m;
    pe = slot_of(s, vb_machine_name(m));
    *pe = e;
    s->count++;
    return 0;
}

vb_machine_t *vb_qmp_server_find(const vb_qmp_server_t *s, const char *name)
{
    entry_t *e = *slot_of(s, name);
    return e != NULL ? e->m : NULL;
}

size_t vb_qmp_server_count(const vb_qmp_server_t *s)
{
    return s->count;
}

void vb_qmp_server_remove(vb_qmp_server_t *s, vb_machine_t *m)
{
    entry_t **pe = slot_of(s, vb_machine_name(m)), *e = *pe;

    if (e == NULL || e->m != m)
        return;
    for (vb_qmp_conn_t *c = e->conns; c != NULL; c = c->next)
        c->e = NULL;
    *pe = e->next;
    s->count--;
    vb_machine_free(e->m);
    free(e);
}

/* ======================================================================== output */

static void out_append(vb_qmp_conn_t *c, const char *data, size_t len)
{
    if (c->finished)
        return;
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len - c->out_off + len > MAX_OUTPUT) {
        c->finished = true; /* it stopped reading: only this client pays */
        return;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap;
        char *p;
        if (c->out_off > 0) { /* reclaim what was sent */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        cap = c->out_cap ? c->out_cap : 512;
        while (cap < c->out_len + len)
            cap *= 2;
        if (cap != c->out_cap) {
            p = realloc(c->out, cap);
            if (p == NULL) {
                c->finished = true;
                return;
            }
            c->out = p;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

/* Sends obj as one line; takes ownership of obj. */
static void send_obj(vb_qmp_conn_t *c, vb_qobj_t *obj)
{
    if (obj == NULL || vb_json_print(obj, &c->line) < 0) {
        /* out of memory: the client would wait forever for a reply, so close */
        c->finished = true;
    } else {
        out_append(c, c->line.p, c->line.len);
        out_append(c, "\r\n", 2);
    }
    vb_buf_clear(&c->line, MAX_LINE_KEPT); /* empty for the next reply */
    vb_qobj_free(obj);
    if (!c->in_input && c->s->ops.wake != NULL)
        c->s->ops.wake(c, c->opaque);
}

static vb_qobj_t *version_info(void)
{
    vb_qobj_t *qemu = vb_qobj_dict(), *version = vb_qobj_dict(), *qmp = vb_qobj_dict(),
              *caps = vb_qobj_list(), *greeting = vb_qobj_dict();
    int rc = 0;

    /* the puts take what they are given, even on failure: nothing leaks once rc is set */
    rc |= vb_qobj_dict_put(qemu, "major", vb_qobj_int(VB_QMP_VERSION_MAJOR));
    rc |= vb_qobj_dict_put(qemu, "minor", vb_qobj_int(VB_QMP_VERSION_MINOR));
    rc |= vb_qobj_dict_put(qemu, "micro", vb_qobj_int(VB_QMP_VERSION_MICRO));
    rc |= vb_qobj_dict_put(version, "qemu", qemu);
    rc |= vb_qobj_dict_put(version, "package", vb_qobj_string("balloon-sim (" PACKAGE_STRING ")"));
    rc |= vb_qobj_list_append(caps, vb_qobj_string("oob"));
    rc |= vb_qobj_dict_put(qmp, "version", version);
    rc |= vb_qobj_dict_put(qmp, "capabilities", caps);
    rc |= vb_qobj_dict_put(greeting, "QMP", qmp);
    if (rc != 0) {
        vb_qobj_free(greeting);
        return NULL;
    }
    return greeting;
}

/* {"timestamp": {...}, "event": NAME[, "data": {"guest": false, "reason": REASON}]}, or NULL. */
static vb_qobj_t *event_obj(const vb_clock_t *clk, const char *event, const char *reason)
{
    vb_qobj_t *ev = vb_qobj_dict(), *ts = vb_qobj_dict(), *data = NULL;
    int rc;

    rc = vb_qobj_dict_put(ts, "seconds", vb_qobj_int(clk->wall_s(clk->opaque)));
    if (rc == 0)
        rc = vb_qobj_dict_put(ts, "microseconds",
                              vb_qobj_int(clk->monotonic_ns(clk->opaque) / 1000 % 1000000));
    if (rc == 0)
        rc = vb_qobj_dict_put(ev, "event", vb_qobj_string(event));
    if (rc == 0) {
        rc = vb_qobj_dict_put(ev, "timestamp", ts);
        ts = NULL;
    }
    if (rc == 0 && reason != NULL) {
        data = vb_qobj_dict();
        rc = vb_qobj_dict_put(data, "guest", vb_qobj_bool(false));
        if (rc == 0)
            rc = vb_qobj_dict_put(data, "reason", vb_qobj_string(reason));
        if (rc == 0)
            rc = vb_qobj_dict_put(ev, "data", data);
        else
            vb_qobj_free(data);
    }
    vb_qobj_free(ts);
    if (rc < 0) {
        vb_qobj_free(ev);
        return NULL;
    }
    return ev;
}

/* An event to every negotiated connection of the VM (QEMU skips monitors still negotiating). */
static void broadcast(vb_qmp_conn_t *origin, const char *event, const char *reason)
{
    if (origin->e == NULL)
        return;
    for (vb_qmp_conn_t *c = origin->e->conns; c != NULL; c = c->next)
        if (c->negotiated)
            send_obj(c, event_obj(origin->s->clock, event, reason));
}

/* ======================================================================== commands */

typedef struct call {
    vb_qmp_conn_t *c;
    const vb_qobj_t *args; /* a dict, or NULL for none */
    vb_qobj_t *ret;      /* NULL means {} */
    vb_qerr_t err;
} call_t;

static bool is_string(const vb_qobj_t *obj)
{
    return vb_qobj_type(obj) == VB_QOBJ_STRING;
}

/* QEMU's choice of the unexpected argument to report, or NULL. */
static const char *first_unexpected(const vb_qobj_t *args, const char *const *names)
{
    return vb_order_first_unexpected(vb_qobj_dict_keys(args), vb_qobj_dict_size(args), names);
}

/* The generated marshallers: members in schema order (missing, then mistyped), then the first
 * unexpected one. names: NULL-terminated; each is a string ("str") unless listed in any_names. */
static int take_args(call_t *k, const char *const *names, const char *any_name,
                     const vb_qobj_t **vals)
{
    const char *extra;

    for (size_t i = 0; names[i] != NULL; i++) {
        const vb_qobj_t *v = vb_qobj_dict_get(k->args, names[i]);
        if (v == NULL)
            return vb_qerr_set(&k->err, "GenericError", "Parameter '%s' is missing", names[i]);
        if (!(any_name != NULL && strcmp(names[i], any_name) == 0) && !is_string(v))
            return vb_qerr_set(&k->err, "GenericError",
                               "Invalid parameter type for '%s', expected: string", names[i]);
        vals[i] = v;
    }
    extra = first_unexpected(k->args, names);
    if (extra != NULL)
        return vb_qerr_set(&k->err, "GenericError", "Parameter '%s' is unexpected", extra);
    return 0;
}

static int no_args(call_t *k)
{
    static const char *const none[] = {NULL};
    return take_args(k, none, NULL, NULL);
}

static int cmd_qmp_capabilities(call_t *k)
{
    static const char *const names[] = {"enable", NULL};
    const vb_qobj_t *enable = vb_qobj_dict_get(k->args, "enable");
    const char *extra;
    bool oob = false;

    if (enable != NULL) {
        if (vb_qobj_type(enable) != VB_QOBJ_LIST)
            return vb_qerr_set(&k->err, "GenericError",
                               "Invalid parameter type for 'enable', expected: array");
        for (size_t i = 0; i < vb_qobj_list_size(enable); i++) {
            const char *cap = vb_qobj_get_string(vb_qobj_list_at(enable, i));
            if (cap == NULL)
                return vb_qerr_set(&k->err, "GenericError",
                                   "Invalid parameter type for 'enable[%zu]', expected: string", i);
            /* QEMU 7.2 names a list element 'null' in this message */
            if (strcmp(cap, "oob") != 0)
                return vb_qerr_set(&k->err, "GenericError",
                                   "Parameter 'null' does not accept value '%s'", cap);
            oob = true;
        }
    }
    extra = first_unexpected(k->args, names);
    if (extra != NULL)
        return vb_qerr_set(&k->err, "GenericError", "Parameter '%s' is unexpected", extra);
    if (k->c->negotiated)
        return vb_qerr_set(&k->err, "CommandNotFound",
                           "Capabilities negotiation is already complete, command ignored");
    k->c->negotiated = true;
    k->c->oob = oob;
    return 0;
}

static int resolve(call_t *k, const char *path, bool list)
{
    bool ambiguous = false;
    int node = vb_machine_qom_resolve(k->c->e->m, path, &ambiguous);

    /* qom-list tells an ambiguous partial path apart; qom-get and qom-set do not */
    if (node < 0 && list && ambiguous)
        return vb_qerr_set(&k->err, "GenericError", "Path '%s' is ambiguous", path);
    if (node < 0)
        return vb_qerr_set(&k->err, "DeviceNotFound", "Device '%s' not found", path);
    return node;
}

static int cmd_qom_get(call_t *k)
{
    static const char *const names[] = {"path", "property", NULL};
    const vb_qobj_t *v[2];
    int node;

    if (take_args(k, names, NULL, v) < 0)
        return -EINVAL;
    node = resolve(k, vb_qobj_get_string(v[0]), false);
    if (node < 0)
        return node;
    return vb_machine_qom_get(k->c->e->m, node, vb_qobj_get_string(v[1]), &k->ret, &k->err);
}

static int cmd_qom_set(call_t *k)
{
    static const char *const names[] = {"path", "property", "value", NULL};
    const vb_qobj_t *v[3];
    int node;

    if (take_args(k, names, "value", v) < 0)
        return -EINVAL;
    node = resolve(k, vb_qobj_get_string(v[0]), false);
    if (node < 0)
        return node;
    return vb_machine_qom_set(k->c->e->m, node, vb_qobj_get_string(v[1]), v[2], &k->err);
}

static int cmd_qom_list(call_t *k)
{
    static const char *const names[] = {"path", NULL};
    const vb_qobj_t *v[1];
    int node;

    if (take_args(k, names, NULL, v) < 0)
        return -EINVAL;
    node = resolve(k, vb_qobj_get_string(v[0]), true);
    if (node < 0)
        return node;
    k->ret = vb_machine_qom_list(k->c->e->m, node);
    return k->ret != NULL ? 0 : -ENOMEM;
}

static int cmd_query_balloon(call_t *k)
{
    if (no_args(k) < 0)
        return -EINVAL;
    k->ret = vb_qobj_dict();
    return vb_qobj_dict_put(k->ret, "actual",
                            vb_qobj_uint(vb_device_actual(vb_machine_device(k->c->e->m))));
}

static int cmd_query_status(call_t *k)
{
    vb_runstate_t st = vb_machine_runstate(k->c->e->m);
    int rc;

    if (no_args(k) < 0)
        return -EINVAL;
    /* StatusInfo's members in schema order: the order QEMU inserts them */
    k->ret = vb_qobj_dict();
    rc = vb_qobj_dict_put(k->ret, "running", vb_qobj_bool(st == VB_RUN_RUNNING));
    if (rc == 0)
        rc = vb_qobj_dict_put(k->ret, "singlestep", vb_qobj_bool(false));
    if (rc == 0)
        rc = vb_qobj_dict_put(k->ret, "status", vb_qobj_string(vb_runstate_name(st)));
    return rc;
}

static int cmd_stop(call_t *k)
{
    if (no_args(k) < 0)
        return -EINVAL;
    if (vb_machine_stop(k->c->e->m))
        broadcast(k->c, "STOP", NULL);
    return 0;
}

static int cmd_cont(call_t *k)
{
    if (no_args(k) < 0)
        return -EINVAL;
    if (vb_machine_cont(k->c->e->m))
        broadcast(k->c, "RESUME", NULL);
    return 0;
}

static int cmd_system_reset(call_t *k)
{
    if (no_args(k) < 0)
        return -EINVAL;
    broadcast(k->c, "RESET", "host-qmp-system-reset");
    vb_machine_reset(k->c->e->m);
    return 0;
}

static int cmd_quit(call_t *k)
{
    if (no_args(k) < 0)
        return -EINVAL;
    broadcast(k->c, "SHUTDOWN", "host-qmp-quit");
    k->c->e->quit = true; /* the connections finish once the reply is queued */
    return 0;
}

static const struct command {
    const char *name;
    int (*fn)(call_t *k);
} commands[] = {
    {"qmp_capabilities", cmd_qmp_capabilities},
    {"qom-get", cmd_qom_get},
    {"qom-set", cmd_qom_set},
    {"qom-list", cmd_qom_list},
    {"query-balloon", cmd_query_balloon},
    {"query-status", cmd_query_status},
    {"stop", cmd_stop},
    {"cont", cmd_cont},
    {"system_reset", cmd_system_reset},
    {"quit", cmd_quit},
};

static vb_qobj_t *error_obj(const char *cls, const char *desc)
{
    vb_qobj_t *err = vb_qobj_dict(), *rsp = vb_qobj_dict();

    vb_qobj_dict_put(err, "class", vb_qobj_string(cls));
    vb_qobj_dict_put(err, "desc", vb_qobj_string(desc ? desc : "Out of memory."));
    if (vb_qobj_dict_put(rsp, "error", err) < 0) {
        vb_qobj_free(rsp);
        return NULL;
    }
    return rsp;
}

/* qmp_dispatch's checks of the request object, member by member in QDict order. */
static int check_request(vb_qmp_conn_t *c, const vb_qobj_t *req, const char **exec_key,
                         vb_qerr_t *err)
{
    size_t n = vb_qobj_dict_size(req);
    size_t *order = malloc((n ? n : 1) * sizeof(*order));
    const char *const *keys = vb_qobj_dict_keys(req);
    int rc = 0;

    if (order == NULL)
        return vb_qerr_set(err, "GenericError", "Out of memory.");
    *exec_key = NULL;
    vb_order_qdict(keys, n, order);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *key = keys[order[i]];
        const vb_qobj_t *v = vb_qobj_dict_value(req, order[i]);
        if (strcmp(key, "execute") == 0 || (strcmp(key, "exec-oob") == 0 && c->oob)) {
            if (!is_string(v))
                rc = vb_qerr_set(err, "GenericError", "QMP input member '%s' must be a string", key);
            else if (*exec_key != NULL)
                rc = vb_qerr_set(err, "GenericError", "QMP input member '%s' clashes with '%s'", key,
                                 *exec_key);
            else
                *exec_key = key;
        } else if (strcmp(key, "arguments") == 0) {
            if (vb_qobj_type(v) != VB_QOBJ_DICT)
                rc = vb_qerr_set(err, "GenericError",
                                 "QMP input member 'arguments' must be an object");
        } else if (strcmp(key, "id") != 0) {
            rc = vb_qerr_set(err, "GenericError", "QMP input member '%s' is unexpected", key);
        }
    }
    if (rc == 0 && *exec_key == NULL)
        rc = vb_qerr_set(err, "GenericError", "QMP input lacks member 'execute'");
    free(order);
    return rc;
}

/* Answers req, taking its id for the reply. */
static void dispatch(vb_qmp_conn_t *c, vb_qobj_t *req)
{
    call_t k = {.c = c};
    vb_qobj_t *id;
    const char *exec_key = NULL, *name;
    const struct command *cmd = NULL;
    vb_qobj_t *rsp;
    int rc;

    if (vb_qobj_type(req) != VB_QOBJ_DICT) {
        send_obj(c, error_obj("GenericError", "QMP input must be a JSON object"));
        return;
    }
    rc = check_request(c, req, &exec_key, &k.err);
    if (rc < 0)
        goto reply;
    name = vb_qobj_get_string(vb_qobj_dict_get(req, exec_key));
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0 &&
            (c->negotiated || strcmp(name, "qmp_capabilities") == 0))
            cmd = &commands[i];
    if (cmd == NULL) {
        /* before negotiation QEMU rewrites every CommandNotFound */
        if (!c->negotiated)
            rc = vb_qerr_set(&k.err, "CommandNotFound",
                             "Expecting capabilities negotiation with 'qmp_capabilities'");
        else
            rc = vb_qerr_set(&k.err, "CommandNotFound", "The command %s has not been found", name);
        goto reply;
    }
    if (strcmp(exec_key, "exec-oob") == 0) {
        rc = vb_qerr_set(&k.err, "GenericError", "The command %s does not support OOB", name);
        goto reply;
    }
    k.args = vb_qobj_dict_get(req, "arguments");
    rc = cmd->fn(&k);
    if (rc < 0 && k.err.cls == NULL)
        vb_qerr_set(&k.err, "GenericError", "Out of memory.");
reply:
    if (rc < 0) {
        rsp = error_obj(k.err.cls, k.err.desc);
    } else {
        rsp = vb_qobj_dict();
        if (vb_qobj_dict_put(rsp, "return", k.ret != NULL ? k.ret : vb_qobj_dict()) < 0) {
            vb_qobj_free(rsp);
            rsp = NULL;
        }
        k.ret = NULL;
    }
    id = vb_qobj_dict_take(req, "id"); /* echoed whatever its type */
    if (rsp == NULL) {
        vb_qobj_free(id);
    } else if (id != NULL && vb_qobj_dict_put(rsp, "id", id) < 0) {
        vb_qobj_free(rsp);
        rsp = NULL;
    }
    send_obj(c, rsp);
    vb_qobj_free(k.ret);
    vb_qerr_clear(&k.err);
}

/* After quit: every connection of the VM is finished, and the loop is told. */
static void finish_quit(vb_qmp_conn_t *origin)
{
    entry_t *e = origin->e;

    for (vb_qmp_conn_t *c = e->conns; c != NULL; c = c->next) {
        c->finished = true;
        if (c != origin && c->s->ops.wake != NULL)
            c->s->ops.wake(c, c->opaque);
    }
    if (origin->s->ops.quit != NULL)
        origin->s->ops.quit(e->m, origin->s->opaque);
}

static int on_message(void *opaque, vb_qobj_t *value, const char *error)
{
    vb_qmp_conn_t *c = opaque;

    if (c->finished || c->e == NULL || c->e->quit) {
        vb_qobj_free(value);
        return 1;
    }
    if (error != NULL)
        send_obj(c, error_obj("GenericError", error)); /* a parse error has no id */
    else
        dispatch(c, value);
    vb_qobj_free(value);
    if (c->e->quit) {
        finish_quit(c);
        return 1;
    }
    return c->finished ? 1 : 0;
}

/* ======================================================================== connections */

vb_qmp_conn_t *vb_qmp_conn_new(vb_qmp_server_t *s, const char *name, void *opaque)
{
    entry_t *e = *slot_of(s, name);
    vb_qmp_conn_t *c;

    if (e == NULL || e->quit) {
        errno = ENOENT;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->s = s;
    c->e = e;
    c->opaque = opaque;
    c->in = vb_json_stream_new(on_message, c);
    if (c->in == NULL) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->next = e->conns;
    if (e->conns != NULL)
        e->conns->prev = c;
    e->conns = c;
    c->in_input = true; /* the greeting needs no wake: the loop flushes new connections */
    send_obj(c, version_info());
    c->in_input = false;
    if (c->finished) {
        vb_qmp_conn_free(c);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void vb_qmp_conn_free(vb_qmp_conn_t *c)
{
    if (c == NULL)
        return;
    if (c->e != NULL) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            c->e->conns = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
    }
    vb_json_stream_free(c->in);
    vb_buf_free(&c->line);
    free(c->out);
    free(c);
}

vb_machine_t *vb_qmp_conn_machine(const vb_qmp_conn_t *c)
{
    return c->e != NULL ? c->e->m : NULL;
}

int vb_qmp_conn_input(vb_qmp_conn_t *c, const char *buf, size_t len)
{
    int rc;

    if (c->finished || c->e == NULL)
        return 0;
    c->in_input = true;
    rc = vb_json_stream_feed(c->in, buf, len);
    c->in_input = false;
    return rc < 0 ? rc : 0;
}

size_t vb_qmp_conn_output(const vb_qmp_conn_t *c, const char **data)
{
    *data = c->out + c->out_off;
    return c->out_len - c->out_off;
}

void vb_qmp_conn_consume(vb_qmp_conn_t *c, size_t n)
{
    if (n > c->out_len - c->out_off)
        n = c->out_len - c->out_off;
    c->out_off += n;
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
}

size_t vb_qmp_conn_pending_input(const vb_qmp_conn_t *c)
{
    return vb_json_stream_pending(c->in);
}

bool vb_qmp_conn_finished(const vb_qmp_conn_t *c)
{
    return c->finished || c->e == NULL;
}
