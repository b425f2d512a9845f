#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/bal_qmp_listing.h"

/* The directory as a listing saw it, to tell whether it changed since. */
typedef struct dir_stamp {
    bool exists;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
} dir_stamp_t;

struct bal_qmp_listing {
    char *dir;                /* the directory form; NULL for pairs */
    bal_socket_spec_t *pairs; /* the pairs form: names and paths owned, sorted by name */
    size_t n_pairs;
    bal_logger_t logger;

    bool listed;          /* at least once */
    dir_stamp_t stamp;    /* the directory when last listed */
    bool recheck;         /* that listing ran in the clock tick of the directory's last change */
    uint64_t pairs_seen;  /* the pairs' sockets when last listed, folded into one value */
    bool missing_said;    /* the directory's absence was logged, and not its return yet */
    bool dot_said[2];     /* a socket named '..qmp' / '...qmp' was logged */
};

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    return h;
}

uint64_t bal_qmp_listing_instance(const struct stat *st)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    h = mix(h, (uint64_t)st->st_dev);
    h = mix(h, (uint64_t)st->st_ino);
    h = mix(h, (uint64_t)st->st_ctim.tv_sec);
    h = mix(h, (uint64_t)st->st_ctim.tv_nsec);
    return h;
}

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const bal_socket_spec_t *)a)->name, ((const bal_socket_spec_t *)b)->name);
}

static bool is_dot_name(const char *name, size_t len)
{
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

void bal_qmp_listing_free(bal_qmp_listing_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n_pairs; i++) {
        free((char *)l->pairs[i].name);
        free((char *)l->pairs[i].path);
    }
    free(l->pairs);
    free(l->dir);
    free(l);
}

static bal_qmp_listing_t *listing_alloc(const bal_logger_t *logger)
{
    bal_qmp_listing_t *l = calloc(1, sizeof(*l));

    if (l != NULL && logger != NULL)
        l->logger = *logger;
    return l;
}

bal_qmp_listing_t *bal_qmp_listing_new_dir(const char *dir, const bal_logger_t *logger, bal_error_t *err)
{
    bal_qmp_listing_t *l;

    if (dir == NULL || dir[0] == '\0') {
        bal_error_set(err, -EINVAL, "No QMP socket directory was given.");
        return NULL;
    }
    l = listing_alloc(logger);
    if (l == NULL || (l->dir = strdup(dir)) == NULL) {
        bal_qmp_listing_free(l);
        bal_error_set(err, -ENOMEM, "Out of memory while setting up the QMP socket directory '%s'.", dir);
        return NULL;
    }
    /* "dir/" would make "dir//name.qmp": harmless, but messages read better without it */
    for (size_t len = strlen(l->dir); len > 1 && l->dir[len - 1] == '/'; len--)
        l->dir[len - 1] = '\0';
    return l;
}

bal_qmp_listing_t *bal_qmp_listing_new_pairs(const bal_socket_spec_t *pairs, size_t n, const bal_logger_t *logger,
                                             bal_error_t *err)
{
    bal_qmp_listing_t *l;

    for (size_t i = 0; i < n; i++) {
        if (pairs[i].name == NULL || pairs[i].name[0] == '\0' || pairs[i].path == NULL || pairs[i].path[0] == '\0') {
            bal_error_set(err, -EINVAL, "QMP socket number %zu has no name or no path.", i + 1);
            return NULL;
        }
        if (is_dot_name(pairs[i].name, strlen(pairs[i].name))) {
            bal_error_set(err, -EINVAL, "QMP socket number %zu is named '%s', a name collectd cannot store.", i + 1,
                          pairs[i].name);
            return NULL;
        }
    }
    l = listing_alloc(logger);
    if (l == NULL)
        goto nomem;
    if (n > 0 && (l->pairs = calloc(n, sizeof(*l->pairs))) == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        l->pairs[i].name = strdup(pairs[i].name);
        l->pairs[i].path = strdup(pairs[i].path);
        l->n_pairs++;
        if (l->pairs[i].name == NULL || l->pairs[i].path == NULL)
            goto nomem;
    }
    /* Sorted, a domain's path is found by bisection, and duplicates are neighbours. */
    if (n > 1)
        qsort(l->pairs, n, sizeof(*l->pairs), cmp_pair);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(l->pairs[i].name, l->pairs[i - 1].name) == 0) {
            bal_error_set(err, -EINVAL, "The domain name '%s' is given to more than one QMP socket.",
                          l->pairs[i].name);
            bal_qmp_listing_free(l);
            return NULL;
        }
    }
    return l;
nomem:
    bal_qmp_listing_free(l);
    bal_error_set(err, -ENOMEM, "Out of memory while setting up the QMP sockets.");
    return NULL;
}

char *bal_qmp_listing_path(const bal_qmp_listing_t *l, const char *name, bal_error_t *err)
{
    size_t len = strlen(name);
    char *path;

    if (l->dir == NULL) {
        bal_socket_spec_t key = {.name = name};
        const bal_socket_spec_t *pair =
            l->n_pairs > 0 ? bsearch(&key, l->pairs, l->n_pairs, sizeof(*l->pairs), cmp_pair) : NULL;

        if (pair == NULL) {
            bal_error_set(err, -ENOENT, "The domain '%s' is not one of the configured QMP sockets.", name);
            return NULL;
        }
        path = strdup(pair->path);
    } else {
        if (len == 0 || strchr(name, '/') != NULL || is_dot_name(name, len)) {
            bal_error_set(err, -ENOENT, "The domain name '%s' cannot name a socket in '%s'.", name, l->dir);
            return NULL;
        }
        len += strlen(l->dir) + 1 + strlen(BAL_QMP_SOCKET_SUFFIX) + 1;
        path = malloc(len);
        if (path != NULL)
            snprintf(path, len, "%s/%s%s", l->dir, name, BAL_QMP_SOCKET_SUFFIX);
    }
    if (path == NULL)
        bal_error_set(err, -ENOMEM, "Out of memory while looking up the domain '%s'.", name);
    return path;
}

static int add_item(bal_domain_list_t *list, size_t *cap, const char *name, size_t name_len, uint64_t instance)
{
    bal_domain_info_t *item;

    if (list->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        bal_domain_info_t *n = realloc(list->items, ncap * sizeof(*n));
        if (n == NULL)
            return -ENOMEM;
        list->items = n;
        *cap = ncap;
    }
    item = &list->items[list->count];
    memset(item, 0, sizeof(*item));
    item->name = strndup(name, name_len);
    if (item->name == NULL)
        return -ENOMEM;
    item->instance = instance;
    list->count++;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const bal_domain_info_t *)a)->name, ((const bal_domain_info_t *)b)->name);
}

static void stamp_dir(const char *dir, dir_stamp_t *out)
{
    struct stat st;

    memset(out, 0, sizeof(*out));
    if (stat(dir, &st) < 0)
        return;
    out->exists = true;
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->mtime = st.st_mtim;
}

static bool stamps_differ(const dir_stamp_t *a, const dir_stamp_t *b)
{
    return a->exists != b->exists || a->dev != b->dev || a->ino != b->ino || a->mtime.tv_sec != b->mtime.tv_sec ||
           a->mtime.tv_nsec != b->mtime.tv_nsec;
}

/* The kernel dates a change with its coarse clock, so a change in the same tick as the one a listing
 * saw would leave the same time behind: a listing that close to the last change is followed by one
 * more (at the next read), and after a second of quiet the time alone tells. */
static bool too_recent(const struct timespec *mtime)
{
    struct timespec now;
    int64_t ms;

    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    ms = ((int64_t)now.tv_sec - mtime->tv_sec) * 1000 + (now.tv_nsec - mtime->tv_nsec) / 1000000;
    return ms > -1000 && ms < 1000;
}

/* A domain named '.' or '..' would be a plugin instance that no writer can store (csv refuses it at
 * every value): not listed, said once. */
static void refuse_dot_name(bal_qmp_listing_t *l, const char *file, size_t name_len)
{
    if (l->dot_said[name_len - 1])
        return;
    l->dot_said[name_len - 1] = true;
    bal_log(&l->logger, BAL_LOG_WARNING,
            "The socket '%s' in the QMP socket directory '%s' would be the domain '%.*s', a name collectd cannot "
            "store; it is not read.",
            file, l->dir, (int)name_len, file);
}

static int list_dir(bal_qmp_listing_t *l, bal_domain_list_t *list, size_t *cap, bal_error_t *err)
{
    const size_t slen = strlen(BAL_QMP_SOCKET_SUFFIX);
    struct dirent *de;
    DIR *d;
    int ret = 0;

    /* Before the scan: what changes during it makes the next bal_qmp_listing_changed true. */
    stamp_dir(l->dir, &l->stamp);
    l->recheck = l->stamp.exists && too_recent(&l->stamp.mtime);
    d = opendir(l->dir);
    if (d == NULL) {
        if (errno != ENOENT)
            return bal_error_set(err, -errno, "Reading the QMP socket directory '%s' failed: %s.", l->dir,
                                 strerror(errno));
        /* No QEMU has created it yet, or it was removed: nothing to read until it is there. */
        if (!l->missing_said)
            bal_log(&l->logger, BAL_LOG_WARNING,
                    "The QMP socket directory '%s' does not exist; no domain is read from it until it does.",
                    l->dir);
        l->missing_said = true;
        return 0;
    }
    if (l->missing_said)
        bal_log(&l->logger, BAL_LOG_NOTICE, "The QMP socket directory '%s' exists now.", l->dir);
    l->missing_said = false;
    while ((errno = 0, de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct stat st;

        if (len <= slen || strcmp(de->d_name + len - slen, BAL_QMP_SOCKET_SUFFIX) != 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISSOCK(st.st_mode))
            continue; /* gone meanwhile, or not a socket */
        if (is_dot_name(de->d_name, len - slen)) {
            refuse_dot_name(l, de->d_name, len - slen);
            continue;
        }
        if (add_item(list, cap, de->d_name, len - slen, bal_qmp_listing_instance(&st)) < 0) {
            ret = bal_error_set(err, -ENOMEM, "Out of memory while listing the QMP socket directory '%s'.", l->dir);
            goto out;
        }
    }
    if (errno != 0)
        ret = bal_error_set(err, -errno, "Reading the QMP socket directory '%s' failed: %s.", l->dir,
                            strerror(errno));
out:
    closedir(d);
    return ret;
}

/* The pairs' sockets as they are now, folded into one value, 0 for a missing one; and, with list, the
 * pairs whose socket exists. */
static int scan_pairs(const bal_qmp_listing_t *l, bal_domain_list_t *list, size_t *cap, uint64_t *seen)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < l->n_pairs; i++) {
        struct stat st;
        uint64_t instance = 0;

        if (stat(l->pairs[i].path, &st) == 0 && S_ISSOCK(st.st_mode))
            instance = bal_qmp_listing_instance(&st);
        h = mix(h, instance);
        if (list == NULL || instance == 0)
            continue; /* not running */
        if (add_item(list, cap, l->pairs[i].name, strlen(l->pairs[i].name), instance) < 0)
            return -ENOMEM;
    }
    *seen = h;
    return 0;
}

int bal_qmp_listing_list(bal_qmp_listing_t *l, bal_domain_list_t *out, bal_error_t *err)
{
    bal_domain_list_t list = {0};
    size_t cap = 0;
    int ret;

    if (l->dir != NULL) {
        ret = list_dir(l, &list, &cap, err);
    } else {
        ret = scan_pairs(l, &list, &cap, &l->pairs_seen);
        if (ret < 0)
            bal_error_set(err, ret, "Out of memory while listing the QMP sockets.");
    }
    if (ret < 0) {
        bal_domain_list_free(&list);
        return ret;
    }
    if (list.count > 1)
        qsort(list.items, list.count, sizeof(list.items[0]), cmp_item);
    l->listed = true;
    *out = list;
    return 0;
}

bool bal_qmp_listing_changed(bal_qmp_listing_t *l)
{
    dir_stamp_t now;
    uint64_t seen;

    if (!l->listed)
        return false;
    if (l->dir == NULL)
        return scan_pairs(l, NULL, NULL, &seen) == 0 && seen != l->pairs_seen;
    if (l->recheck)
        return true;
    stamp_dir(l->dir, &now);
    return stamps_differ(&now, &l->stamp);
}
