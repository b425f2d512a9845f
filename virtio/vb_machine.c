/* One simulated VM: run state, balloon device, and its corner of QEMU's QOM tree. See vb_machine.h. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_hash.h"
#include "virtio/vb_machine.h"

enum node {
    N_ROOT,
    N_OBJECTS,
    N_CHARDEVS,
    N_MACHINE,
    N_UNATTACHED,
    N_PERIPHERAL_ANON,
    N_PERIPHERAL,
    N_BALLOON, /* virtio-balloon-pci */
    N_BACKEND, /* virtio-balloon-device */
    N_COUNT
};

#define TYPE_BALLOON_PCI "virtio-balloon-pci"
#define TYPE_BALLOON_DEV "virtio-balloon-device"
#define PROP_INTERVAL "guest-stats-polling-interval"
#define PROP_STATS "guest-stats"

/* The tree: parent, name, type. The balloon's parent and name depend on anon. */
static const struct {
    int parent;
    const char *name;
    const char *type;
} tree[N_COUNT] = {
    [N_ROOT] = {-1, "", "container"},
    [N_OBJECTS] = {N_ROOT, "objects", "container"},
    [N_CHARDEVS] = {N_ROOT, "chardevs", "container"},
    [N_MACHINE] = {N_ROOT, "machine", "pc-i440fx-7.2-machine"},
    [N_UNATTACHED] = {N_MACHINE, "unattached", "container"},
    [N_PERIPHERAL_ANON] = {N_MACHINE, "peripheral-anon", "container"},
    [N_PERIPHERAL] = {N_MACHINE, "peripheral", "container"},
    [N_BALLOON] = {N_PERIPHERAL, "balloon0", TYPE_BALLOON_PCI},
    [N_BACKEND] = {N_BALLOON, "virtio-backend", TYPE_BALLOON_DEV},
};

/* Children in the order QEMU's qom-list shows them (a subsequence of QEMU's list). */
static const int children_order[] = {N_OBJECTS, N_MACHINE, N_CHARDEVS, N_UNATTACHED,
                                     N_PERIPHERAL_ANON, N_PERIPHERAL, N_BALLOON, N_BACKEND};

struct vb_machine {
    char *name;
    vb_device_t *dev;
    vb_runstate_t state;
    bool anon;
    char *balloon_path;
};

vb_machine_t *vb_machine_new(const vb_clock_t *clock, const vb_machine_config_t *config)
{
    vb_machine_t *m;
    vb_guest_t *guest = NULL;

    if (config == NULL || config->name == NULL || clock == NULL) {
        errno = EINVAL;
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        goto fail;
    m->anon = config->anon;
    m->name = strdup(config->name);
    m->balloon_path = strdup(config->anon ? "/machine/peripheral-anon/device[1]"
                                          : "/machine/peripheral/balloon0");
    if (m->name == NULL || m->balloon_path == NULL)
        goto fail;
    guest = vb_guest_new(config->profile, config->memory_bytes, vb_hash_string(config->name));
    if (guest == NULL)
        goto fail;
    m->dev = vb_device_new(clock, config->stats_count, guest, config->memory_bytes);
    if (m->dev == NULL)
        goto fail; /* errno from vb_device_new */
    guest = NULL;
    m->state = VB_RUN_RUNNING;
    if (config->prelaunch) {
        m->state = VB_RUN_PRELAUNCH;
        vb_device_set_running(m->dev, false);
    }
    return m;
fail:
    {
        int saved = errno ? errno : ENOMEM;
        vb_guest_free(guest);
        vb_machine_free(m);
        errno = saved;
    }
    return NULL;
}

void vb_machine_free(vb_machine_t *m)
{
    if (m == NULL)
        return;
    vb_device_free(m->dev);
    free(m->name);
    free(m->balloon_path);
    free(m);
}

const char *vb_machine_name(const vb_machine_t *m)
{
    return m->name;
}

vb_device_t *vb_machine_device(vb_machine_t *m)
{
    return m->dev;
}

const char *vb_machine_balloon_path(const vb_machine_t *m)
{
    return m->balloon_path;
}

/* ---- run state ---- */

vb_runstate_t vb_machine_runstate(const vb_machine_t *m)
{
    return m->state;
}

const char *vb_runstate_name(vb_runstate_t state)
{
    switch (state) {
    case VB_RUN_PRELAUNCH:
        return "prelaunch";
    case VB_RUN_RUNNING:
        return "running";
    case VB_RUN_PAUSED:
        return "paused";
    }
    return "unknown";
}

bool vb_machine_stop(vb_machine_t *m)
{
    if (m->state != VB_RUN_RUNNING)
        return false; /* QEMU's do_vm_stop only acts on a running VM */
    m->state = VB_RUN_PAUSED;
    vb_device_set_running(m->dev, false);
    return true;
}

bool vb_machine_cont(vb_machine_t *m)
{
    if (m->state == VB_RUN_RUNNING)
        return false;
    m->state = VB_RUN_RUNNING;
    vb_device_set_running(m->dev, true);
    return true;
}

void vb_machine_reset(vb_machine_t *m)
{
    vb_device_reset(m->dev);
    /* QEMU's main loop: after a reset, a VM that is not running goes back to prelaunch */
    if (m->state != VB_RUN_RUNNING)
        m->state = VB_RUN_PRELAUNCH;
}

/* ---- errors ---- */

int vb_qerr_set(vb_qerr_t *err, const char *cls, const char *fmt, ...)
{
    va_list ap;

    free(err->desc);
    err->cls = cls;
    va_start(ap, fmt);
    if (vasprintf(&err->desc, fmt, ap) < 0)
        err->desc = NULL;
    va_end(ap);
    return -EINVAL;
}

void vb_qerr_clear(vb_qerr_t *err)
{
    free(err->desc);
    err->desc = NULL;
    err->cls = NULL;
}

/* ---- QOM ---- */

static int parent_of(const vb_machine_t *m, int node)
{
    if (node == N_BALLOON)
        return m->anon ? N_PERIPHERAL_ANON : N_PERIPHERAL;
    return tree[node].parent;
}

static const char *name_of(const vb_machine_t *m, int node)
{
    if (node == N_BALLOON && m->anon)
        return "device[1]";
    return tree[node].name;
}

/* Splits path into its non-empty components (pointers into a copy the caller frees). */
static int split_path(const char *path, char **copy, char ***parts, size_t *n)
{
    size_t cap = 1;
    char *save = NULL, *tok;

    for (const char *p = path; *p != '\0'; p++)
        cap += *p == '/';
    *copy = strdup(path);
    *parts = calloc(cap, sizeof(**parts));
    *n = 0;
    if (*copy == NULL || *parts == NULL) {
        free(*copy);
        free(*parts);
        return -ENOMEM;
    }
    for (tok = strtok_r(*copy, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save))
        (*parts)[(*n)++] = tok;
    return 0;
}

/* Does node's path end with parts[0..n-1], starting below some ancestor (or the root)? */
static bool ends_with(const vb_machine_t *m, int node, char **parts, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        if (node <= N_ROOT || strcmp(name_of(m, node), parts[i - 1]) != 0)
            return false;
        node = parent_of(m, node);
    }
    return node >= N_ROOT;
}

int vb_machine_qom_resolve(const vb_machine_t *m, const char *path, bool *ambiguous)
{
    char *copy, **parts;
    size_t n;
    int found = -ENOENT, matches = 0;

    if (ambiguous != NULL)
        *ambiguous = false;
    if (split_path(path, &copy, &parts, &n) < 0)
        return -ENOENT;
    if (path[0] == '/') {
        /* absolute: the node whose whole path is parts */
        for (int node = 0; node < N_COUNT && found < 0; node++) {
            if (ends_with(m, node, parts, n)) {
                int top = node;
                for (size_t i = 0; i < n; i++)
                    top = parent_of(m, top);
                if (top == N_ROOT)
                    found = node;
            }
        }
    } else {
        /* partial: QEMU looks below every node; the match must be unique */
        for (int node = 0; node < N_COUNT; node++) {
            if (ends_with(m, node, parts, n)) {
                matches++;
                found = node;
            }
        }
        if (matches > 1) {
            found = -ENOENT;
            if (ambiguous != NULL)
                *ambiguous = true;
        }
    }
    free(copy);
    free(parts);
    return found;
}

static char *canonical_path(const vb_machine_t *m, int node)
{
    char *path = NULL;

    if (node == N_ROOT)
        return strdup("/");
    for (; node > N_ROOT; node = parent_of(m, node)) {
        char *longer = NULL;
        if (asprintf(&longer, "/%s%s", name_of(m, node), path ? path : "") < 0) {
            free(path);
            return NULL;
        }
        free(path);
        path = longer;
    }
    return path;
}

static bool is_balloon(int node)
{
    return node == N_BALLOON || node == N_BACKEND;
}

/* The node's own properties, before its children, in QEMU's order. */
static const char *const balloon_props[] = {"type", "realized", PROP_INTERVAL, PROP_STATS, NULL};
static const char *const container_props[] = {"type", NULL};

static const char *const *props_of(int node)
{
    return is_balloon(node) ? balloon_props : container_props;
}

static const char *prop_type(const char *prop)
{
    if (strcmp(prop, "type") == 0)
        return "string";
    if (strcmp(prop, "realized") == 0)
        return "bool";
    if (strcmp(prop, PROP_INTERVAL) == 0)
        return "int";
    return "guest statistics";
}

static int child_named(const vb_machine_t *m, int node, const char *name)
{
    for (int c = 0; c < N_COUNT; c++)
        if (c != N_ROOT && parent_of(m, c) == node && strcmp(name_of(m, c), name) == 0)
            return c;
    return -1;
}

static vb_qobj_t *prop_info(const char *name, const char *type)
{
    vb_qobj_t *d = vb_qobj_dict();
    if (vb_qobj_dict_put(d, "name", vb_qobj_string(name)) < 0 ||
        vb_qobj_dict_put(d, "type", vb_qobj_string(type)) < 0) {
        vb_qobj_free(d);
        return NULL;
    }
    return d;
}

vb_qobj_t *vb_machine_qom_list(const vb_machine_t *m, int node)
{
    vb_qobj_t *list = vb_qobj_list();
    const char *const *props = props_of(node);

    for (size_t i = 0; list != NULL && props[i] != NULL; i++) {
        if (vb_qobj_list_append(list, prop_info(props[i], prop_type(props[i]))) < 0)
            goto fail;
    }
    for (size_t i = 0; list != NULL && i < sizeof(children_order) / sizeof(children_order[0]); i++) {
        int c = children_order[i];
        char type[64];
        if (parent_of(m, c) != node)
            continue;
        snprintf(type, sizeof(type), "child<%s>", tree[c].type);
        if (vb_qobj_list_append(list, prop_info(name_of(m, c), type)) < 0)
            goto fail;
    }
    return list;
fail:
    vb_qobj_free(list);
    return NULL;
}

static vb_qobj_t *guest_stats(const vb_machine_t *m)
{
    vb_guest_stats_t st;
    vb_qobj_t *stats = vb_qobj_dict(), *all = vb_qobj_dict();

    vb_device_get_stats(m->dev, &st);
    /* QEMU's balloon_stats_get_all visits last-update, then the stats in tag order */
    if (vb_qobj_dict_put(all, "last-update", vb_qobj_int(st.last_update)) < 0)
        goto fail;
    for (unsigned i = 0; i < st.count && i < VB_STAT_COUNT; i++)
        if (vb_qobj_dict_put(stats, vb_stat_name(i), vb_qobj_uint(st.values[i])) < 0)
            goto fail;
    if (vb_qobj_dict_put(all, "stats", stats) < 0) {
        stats = NULL;
        goto fail;
    }
    return all;
fail:
    vb_qobj_free(stats);
    vb_qobj_free(all);
    return NULL;
}

static bool has_prop(int node, const char *prop)
{
    const char *const *props = props_of(node);
    for (size_t i = 0; props[i] != NULL; i++)
        if (strcmp(props[i], prop) == 0)
            return true;
    return false;
}

int vb_machine_qom_get(const vb_machine_t *m, int node, const char *property, vb_qobj_t **out,
                       vb_qerr_t *err)
{
    vb_qobj_t *v = NULL;
    int child;

    if (node < 0 || node >= N_COUNT)
        return vb_qerr_set(err, "GenericError", "Invalid QOM node.");
    child = child_named(m, node, property);
    if (child >= 0) {
        char *path = canonical_path(m, child); /* a child<> property reads as the child's path */
        v = path ? vb_qobj_string(path) : NULL;
        free(path);
    } else if (!has_prop(node, property)) {
        return vb_qerr_set(err, "GenericError", "Property '%s.%s' not found", tree[node].type,
                           property);
    } else if (strcmp(property, "type") == 0) {
        v = vb_qobj_string(tree[node].type);
    } else if (strcmp(property, "realized") == 0) {
        v = vb_qobj_bool(true);
    } else if (strcmp(property, PROP_INTERVAL) == 0) {
        v = vb_qobj_int(vb_device_polling_interval(m->dev));
    } else {
        v = guest_stats(m);
    }
    if (v == NULL) {
        vb_qerr_set(err, "GenericError", "Out of memory.");
        return -ENOMEM;
    }
    *out = v;
    return 0;
}

int vb_machine_qom_set(vb_machine_t *m, int node, const char *property, const vb_qobj_t *value,
                       vb_qerr_t *err)
{
    char errbuf[128] = "";
    /* the pci proxy's stats properties are aliases: errors name the backend's type */
    const char *owner = tree[node].type;

    if (node < 0 || node >= N_COUNT)
        return vb_qerr_set(err, "GenericError", "Invalid QOM node.");
    if (child_named(m, node, property) < 0 && !has_prop(node, property))
        return vb_qerr_set(err, "GenericError", "Property '%s.%s' not found", owner, property);
    if (is_balloon(node) &&
        (strcmp(property, PROP_INTERVAL) == 0 || strcmp(property, PROP_STATS) == 0))
        owner = TYPE_BALLOON_DEV;
    if (strcmp(property, PROP_INTERVAL) != 0)
        return vb_qerr_set(err, "GenericError", "Property '%s.%s' is not writable", owner, property);
    if (vb_qobj_type(value) != VB_QOBJ_INT) /* QEMU's visitor takes an int64 only */
        return vb_qerr_set(err, "GenericError", "Invalid parameter type for '%s', expected: integer",
                           property);
    if (vb_device_set_polling_interval(m->dev, vb_qobj_get_int(value), errbuf, sizeof(errbuf)) < 0)
        return vb_qerr_set(err, "GenericError", "%s", errbuf);
    return 0;
}
