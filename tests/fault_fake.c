/* See fault_fake.h. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "agent/bal_qmp.h"
#include "tests/fault_fake.h"
#include "tests/tt_manual_clock.h"
#include "tests/tt_qemu_reply.h"
#include "virtio/vb_clock.h"
#include "virtio/vb_device.h"
#include "virtio/vb_guest.h"

#define WALL_BASE 1700000000
#define MEMORY (UINT64_C(1) << 30)
#define BALLOON "/machine/peripheral/balloon0"

struct ff {
    bal_transport_t base;
    pthread_mutex_t lock;
    tt_manual_clock_t mc;
    size_t max_ids;
    vb_device_t **devs; /* NULL: not running */
    uint64_t *instance;
    uint64_t next_instance;
    size_t first, count;
    unsigned permille;
    unsigned seed;
    ff_counts_t counts;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "fault_fake: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        abort();
    return p;
}

void ff_name(size_t id, char *buf)
{
    snprintf(buf, 16, "vm-%06zu", id % 1000000);
}

/* ---- the contract, read independently of the agent's allow-list ---- */

static yajl_val member(yajl_val obj, const char *key, bool *dup)
{
    yajl_val found = NULL;

    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) != 0)
            continue;
        if (found != NULL)
            *dup = true;
        found = obj->u.object.values[i];
    }
    return found;
}

/* True when tree is one of the commands the agent may send, with exactly its arguments. */
static bool allowed(yajl_val tree)
{
    static const char *const props[] = {BAL_QMP_PROP_STATS, BAL_QMP_PROP_INTERVAL};
    bool dup = false;
    yajl_val exec, args, path, prop, value;
    size_t nargs;
    const char *cmd;

    if (!YAJL_IS_OBJECT(tree))
        return false;
    for (size_t i = 0; i < tree->u.object.len; i++)
        if (strcmp(tree->u.object.keys[i], "execute") != 0 && strcmp(tree->u.object.keys[i], "arguments") != 0)
            return false;
    exec = member(tree, "execute", &dup);
    args = member(tree, "arguments", &dup);
    if (dup || exec == NULL || !YAJL_IS_STRING(exec))
        return false;
    cmd = exec->u.string;
    if (strcmp(cmd, "qmp_capabilities") == 0 || strcmp(cmd, "query-balloon") == 0)
        nargs = 0;
    else if (strcmp(cmd, "qom-list") == 0)
        nargs = 1;
    else if (strcmp(cmd, "qom-get") == 0)
        nargs = 2;
    else if (strcmp(cmd, "qom-set") == 0)
        nargs = 3;
    else
        return false;
    if (args == NULL)
        return nargs == 0;
    if (!YAJL_IS_OBJECT(args) || args->u.object.len != nargs)
        return false;
    if (nargs >= 1) {
        path = member(args, "path", &dup);
        if (path == NULL || !YAJL_IS_STRING(path) || bal_qmp_check_path(path->u.string, NULL) < 0)
            return false;
    }
    if (nargs >= 2) {
        prop = member(args, "property", &dup);
        if (prop == NULL || !YAJL_IS_STRING(prop) ||
            (strcmp(prop->u.string, props[0]) != 0 && strcmp(prop->u.string, props[1]) != 0))
            return false;
    }
    if (nargs == 3) {
        value = member(args, "value", &dup);
        if (value == NULL || !YAJL_IS_INTEGER(value))
            return false;
    }
    return !dup;
}

bool ff_command_allowed(const char *command)
{
    char ebuf[128];
    yajl_val tree = yajl_tree_parse(command, ebuf, sizeof(ebuf));
    bool ok = tree != NULL && allowed(tree);

    yajl_tree_free(tree);
    return ok;
}

/* ---- QEMU's answers ---- */

/* Under f->lock. */
static char *answer(ff_t *f, vb_device_t *dev, yajl_val tree)
{
    bool dup = false;
    yajl_val args = member(tree, "arguments", &dup);
    const char *cmd = member(tree, "execute", &dup)->u.string;
    const char *path = NULL, *prop = NULL;
    char ebuf[128];

    (void)f;
    if (args != NULL && YAJL_IS_OBJECT(args)) {
        yajl_val v = member(args, "path", &dup);
        path = v != NULL ? v->u.string : NULL;
        v = member(args, "property", &dup);
        prop = v != NULL ? v->u.string : NULL;
    }
    if (strcmp(cmd, "qmp_capabilities") == 0)
        return xstrdup("{\"return\": {}}");
    if (strcmp(cmd, "query-balloon") == 0)
        return tt_qemu_reply("{\"return\": {\"actual\": %llu}}", (unsigned long long)vb_device_actual(dev));
    if (strcmp(cmd, "qom-list") == 0) {
        if (strcmp(path, "/machine/peripheral") == 0)
            return xstrdup("{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
                           "{\"name\": \"balloon0\", \"type\": \"child<virtio-balloon-pci>\"}]}");
        return tt_qemu_reply_not_found(path);
    }
    if (strcmp(path, BALLOON) != 0)
        return tt_qemu_reply_not_found(path);
    if (strcmp(cmd, "qom-get") == 0 && strcmp(prop, BAL_QMP_PROP_INTERVAL) == 0)
        return tt_qemu_reply("{\"return\": %lld}", (long long)vb_device_polling_interval(dev));
    if (strcmp(cmd, "qom-get") == 0)
        return tt_qemu_reply_stats(dev);
    if (strcmp(prop, BAL_QMP_PROP_STATS) == 0)
        return xstrdup("{\"error\": {\"class\": \"GenericError\", \"desc\": "
                       "\"Property 'virtio-balloon-device.guest-stats' is not writable\"}}");
    if (vb_device_set_polling_interval(dev, YAJL_GET_INTEGER(member(args, "value", &dup)), ebuf,
                                       sizeof(ebuf)) < 0)
        return tt_qemu_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}}", ebuf);
    vb_device_run(dev); /* from 0, QEMU polls at once and the guest answers */
    return xstrdup("{\"return\": {}}");
}

/* One of the ways a command fails, chosen at random; under f->lock. */
static int inject(ff_t *f, const char *name, char **reply, bal_error_t *err)
{
    f->counts.failures_injected++;
    switch (rand_r(&f->seed) % 6) {
    case 0:
        return bal_error_set(err, -ETIMEDOUT, "Injected: domain '%s' did not answer in time.", name);
    case 1:
        return bal_error_set(err, -ENOTCONN, "Injected: the connection of domain '%s' was lost.", name);
    case 2:
        return bal_error_set(err, -EPROTO, "Injected: domain '%s' sent garbage.", name);
    case 3:
        *reply = xstrdup("{\"return\": {\"stats\": {\"stat-swap-in\": 1"); /* cut short */
        return 0;
    case 4:
        *reply = xstrdup("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Injected failure\"}}");
        return 0;
    default:
        return bal_error_set(err, -ENOENT, "Injected: domain '%s' is gone.", name);
    }
}

static bool parse_id(const ff_t *f, const char *name, size_t *id)
{
    char *end;
    unsigned long n;

    if (strncmp(name, "vm-", 3) != 0)
        return false;
    n = strtoul(name + 3, &end, 10);
    if (*end != '\0' || n >= f->max_ids)
        return false;
    *id = n;
    return true;
}

static int ff_execute(bal_transport_t *t, const bal_domain_info_t *dom, const char *command, char **reply,
                      bal_error_t *err)
{
    ff_t *f = (ff_t *)t;
    char ebuf[128];
    yajl_val tree = yajl_tree_parse(command, ebuf, sizeof(ebuf));
    size_t id;
    int rc = 0;

    pthread_mutex_lock(&f->lock);
    f->counts.executes++;
    if (tree == NULL || !allowed(tree)) {
        f->counts.refused++;
        fprintf(stderr, "fault_fake: a command outside the allow-list reached the transport: %s\n", command);
        rc = bal_error_set(err, -EPERM, "The fake refused a command.");
        goto out;
    }
    if (!parse_id(f, dom->name, &id) || f->devs[id] == NULL || f->instance[id] != dom->instance) {
        rc = bal_error_set(err, -ENOENT, "Domain '%s' is not running.", dom->name);
        goto out;
    }
    if (f->permille > 0 && (unsigned)(rand_r(&f->seed) % 1000) < f->permille) {
        rc = inject(f, dom->name, reply, err);
        goto out;
    }
    *reply = answer(f, f->devs[id], tree);
out:
    pthread_mutex_unlock(&f->lock);
    yajl_tree_free(tree);
    return rc;
}

static int ff_list(bal_transport_t *t, bal_domain_list_t *out, bal_error_t *err)
{
    ff_t *f = (ff_t *)t;

    (void)err;
    pthread_mutex_lock(&f->lock);
    f->counts.lists++;
    out->items = f->count > 0 ? xcalloc(f->count, sizeof(*out->items)) : NULL;
    out->count = f->count;
    for (size_t i = 0; i < f->count; i++) {
        size_t id = f->first + i;
        char name[16];

        ff_name(id, name);
        out->items[i].name = xstrdup(name);
        snprintf(out->items[i].uuid, sizeof(out->items[i].uuid), "00000000-0000-4000-8000-%012zx", id);
        out->items[i].instance = f->instance[id];
    }
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static void ff_transport_free(bal_transport_t *t)
{
    (void)t; /* ff_free owns everything */
}

static const bal_transport_ops_t ff_ops = {
    .name = "fault-fake",
    .list_domains = ff_list,
    .execute = ff_execute,
    .free = ff_transport_free,
};

ff_t *ff_new(size_t max_ids)
{
    ff_t *f = xcalloc(1, sizeof(*f));

    f->base.ops = &ff_ops;
    pthread_mutex_init(&f->lock, NULL);
    tt_manual_clock_init(&f->mc, WALL_BASE);
    f->max_ids = max_ids;
    f->devs = xcalloc(max_ids, sizeof(*f->devs));
    f->instance = xcalloc(max_ids, sizeof(*f->instance));
    return f;
}

bal_transport_t *ff_transport(ff_t *f)
{
    return &f->base;
}

const bal_clock_t *ff_clock(ff_t *f)
{
    return &f->mc.clock;
}

void ff_free(ff_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->max_ids; i++)
        vb_device_free(f->devs[i]);
    free(f->devs);
    free(f->instance);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void ff_advance_s(ff_t *f, int64_t seconds)
{
    pthread_mutex_lock(&f->lock);
    vb_manual_clock_advance(&f->mc.vclock, seconds * VB_NS_PER_S);
    for (size_t i = f->first; i < f->first + f->count; i++)
        vb_device_run(f->devs[i]);
    pthread_mutex_unlock(&f->lock);
}

void ff_set_running(ff_t *f, size_t first, size_t count)
{
    if (first + count > f->max_ids)
        abort();
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->max_ids; i++) {
        bool run = i >= first && i < first + count;

        if (run && f->devs[i] == NULL) {
            vb_guest_t *g = vb_guest_new(VB_GUEST_LINUX, MEMORY, i + 1);
            if (g == NULL || (f->devs[i] = vb_device_new(&f->mc.vclock.clock, VB_STATS_QEMU72, g, MEMORY)) == NULL)
                abort();
            f->instance[i] = ++f->next_instance;
        } else if (!run && f->devs[i] != NULL) {
            vb_device_free(f->devs[i]);
            f->devs[i] = NULL;
        }
    }
    f->first = first;
    f->count = count;
    pthread_mutex_unlock(&f->lock);
}

size_t ff_running(const ff_t *f)
{
    return f->count;
}

void ff_set_failures(ff_t *f, unsigned permille, unsigned seed)
{
    pthread_mutex_lock(&f->lock);
    f->permille = permille;
    f->seed = seed;
    pthread_mutex_unlock(&f->lock);
}

void ff_counts(ff_t *f, ff_counts_t *out)
{
    pthread_mutex_lock(&f->lock);
    *out = f->counts;
    pthread_mutex_unlock(&f->lock);
}
