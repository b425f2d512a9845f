#include "plugin/bp_sources.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/daemon/plugin.h"

#include "agent/bal_filter.h"
#include "agent/bal_qmp_socket.h"
#include "agent/bal_text.h"

#define BP_DEFAULT_URI "qemu:///system" /* the agent's, when Connection is not given */

/* One block as this check sees it. */
typedef struct bp_source {
    const bp_config_t *config;
    bal_filter_t *filter;
    char *dir;    /* QMPSocketDir, resolved */
    char **paths; /* QMPSocket paths, resolved */
} bp_source_t;

/* path resolved, or as written without trailing slashes when it does not exist (yet). NULL: ENOMEM. */
static char *bp_resolve(const char *path)
{
    char *real = realpath(path, NULL);
    size_t len;

    if (real != NULL)
        return real;
    real = strdup(path);
    if (real == NULL)
        return NULL;
    for (len = strlen(real); len > 1 && real[len - 1] == '/'; len--)
        real[len - 1] = '\0';
    return real;
}

/* A socket: itself resolved when it exists (through a link too), else its directory resolved. */
static char *bp_resolve_socket(const char *path)
{
    char *real = realpath(path, NULL), *dir, *slash, *joined;

    if (real != NULL)
        return real;
    slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return bp_resolve(path);
    dir = strndup(path, (size_t)(slash - path));
    real = dir != NULL ? bp_resolve(dir) : NULL;
    free(dir);
    if (real == NULL)
        return NULL;
    joined = malloc(strlen(real) + strlen(slash) + 1);
    if (joined != NULL) {
        strcpy(joined, real);
        strcat(joined, slash);
    }
    free(real);
    return joined;
}

static void bp_source_clear(bp_source_t *src)
{
    bal_filter_free(src->filter);
    free(src->dir);
    for (size_t i = 0; src->paths != NULL && i < src->config->n_sockets; i++)
        free(src->paths[i]);
    free(src->paths);
}

static int bp_source_init(bp_source_t *src, const bp_config_t *config)
{
    const bp_config_t *c = config;

    memset(src, 0, sizeof(*src));
    src->config = c;
    /* The selectors were checked at config time: only memory can fail here. */
    if (bal_filter_new((const char *const *)c->domains, c->n_domains, c->ignore_selected, &src->filter, NULL)
        != 0)
        return -ENOMEM;
    if (c->transport == BAL_TRANSPORT_QMP_DIR && (src->dir = bp_resolve(c->qmp_dir)) == NULL)
        return -ENOMEM;
    if (c->transport == BAL_TRANSPORT_QMP_SOCKETS && c->n_sockets > 0) {
        src->paths = calloc(c->n_sockets, sizeof(*src->paths));
        if (src->paths == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < c->n_sockets; i++)
            if ((src->paths[i] = bp_resolve_socket(c->socket_paths[i])) == NULL)
                return -ENOMEM;
    }
    return 0;
}

static bool bp_exact_names_only(const bp_config_t *c)
{
    if (c->ignore_selected || c->n_domains == 0)
        return false;
    for (size_t i = 0; i < c->n_domains; i++) {
        size_t len = strlen(c->domains[i]);

        if (len >= 2 && c->domains[i][0] == '/' && c->domains[i][len - 1] == '/')
            return false;
    }
    return true;
}

/* Every exact name of a is not selected by b. */
static bool bp_names_outside(const bp_source_t *a, const bp_source_t *b)
{
    if (!bp_exact_names_only(a->config))
        return false;
    for (size_t i = 0; i < a->config->n_domains; i++)
        if (bal_filter_match(b->filter, a->config->domains[i]))
            return false;
    return true;
}

static bool bp_same_lines(const bp_config_t *a, const bp_config_t *b)
{
    if (a->n_domains != b->n_domains || a->n_domains == 0)
        return false;
    for (size_t i = 0; i < a->n_domains; i++) {
        bool found = false;

        for (size_t k = 0; k < b->n_domains && !found; k++)
            found = strcmp(a->domains[i], b->domains[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static bool bp_disjoint(const bp_source_t *a, const bp_source_t *b)
{
    if (bp_names_outside(a, b) || bp_names_outside(b, a))
        return true;
    return bp_same_lines(a->config, b->config) && bp_same_lines(b->config, a->config)
           && a->config->ignore_selected != b->config->ignore_selected;
}

/* The domain that the socket at path is in dir (NAME of dir/NAME.qmp), or NULL. */
static const char *bp_dir_domain(const char *dir, const char *path, char *name, size_t len)
{
    size_t dlen = strlen(dir), slen = strlen(BAL_QMP_SOCKET_SUFFIX), plen;
    const char *base;

    if (strncmp(path, dir, dlen) != 0 || path[dlen] != '/' || strchr(path + dlen + 1, '/') != NULL)
        return NULL;
    base = path + dlen + 1;
    plen = strlen(base);
    if (plen <= slen || strcmp(base + plen - slen, BAL_QMP_SOCKET_SUFFIX) != 0 || plen - slen >= len)
        return NULL;
    memcpy(name, base, plen - slen);
    name[plen - slen] = '\0';
    return name;
}

/* Logs the overlap of blocks i and j (from 0) if they have one. Returns true then. */
static bool bp_pair_overlaps(const bp_source_t *a, size_t i, const bp_source_t *b, size_t j)
{
    const bp_config_t *ca = a->config, *cb = b->config;
    char shown[PATH_MAX], name[NAME_MAX + 1];
    bool overlap = false;

    if (ca->transport == BAL_TRANSPORT_LIBVIRT && cb->transport == BAL_TRANSPORT_LIBVIRT) {
        const char *ua = ca->connection != NULL ? ca->connection : BP_DEFAULT_URI;
        const char *ub = cb->connection != NULL ? cb->connection : BP_DEFAULT_URI;

        if (strcmp(ua, ub) == 0 && !bp_disjoint(a, b)) {
            bal_text_clean(shown, sizeof(shown), ua, 0);
            ERROR("balloon plugin: The <Plugin balloon> blocks number %zu and %zu both read the libvirt "
                  "connection '%s', and their Domain selections may take the same domain, whose polling "
                  "interval they would set against each other. Read it in one block, or select disjoint "
                  "domains: exact Domain names that the other block does not select, or the same Domain "
                  "lines with IgnoreSelected true in one block only.", i + 1, j + 1, shown);
            overlap = true;
        }
    }
    if (ca->transport == BAL_TRANSPORT_QMP_DIR && cb->transport == BAL_TRANSPORT_QMP_DIR
        && strcmp(a->dir, b->dir) == 0 && !bp_disjoint(a, b)) {
        bal_text_clean(shown, sizeof(shown), a->dir, 0);
        ERROR("balloon plugin: The <Plugin balloon> blocks number %zu and %zu both read the QMP socket "
              "directory '%s', and their Domain selections may take the same domain, whose polling "
              "interval they would set against each other. Read it in one block, or select disjoint "
              "domains: exact Domain names that the other block does not select, or the same Domain "
              "lines with IgnoreSelected true in one block only.", i + 1, j + 1, shown);
        overlap = true;
    }
    /* A block's QMP sockets against the other's sockets or directory, both ways. */
    for (int side = 0; side < 2; side++) {
        const bp_source_t *s = side == 0 ? b : a, *o = side == 0 ? a : b;
        size_t si = side == 0 ? j : i, oi = side == 0 ? i : j;

        if (s->config->transport != BAL_TRANSPORT_QMP_SOCKETS)
            continue;
        for (size_t k = 0; k < s->config->n_sockets; k++) {
            bool twice = false;

            if (!bal_filter_match(s->filter, s->config->socket_names[k]))
                continue;
            if (o->config->transport == BAL_TRANSPORT_QMP_DIR)
                twice = bp_dir_domain(o->dir, s->paths[k], name, sizeof(name)) != NULL
                        && bal_filter_match(o->filter, name);
            for (size_t m = 0; side == 0 && !twice && o->config->transport == BAL_TRANSPORT_QMP_SOCKETS
                               && m < o->config->n_sockets; m++)
                twice = strcmp(s->paths[k], o->paths[m]) == 0
                        && bal_filter_match(o->filter, o->config->socket_names[m]);
            if (!twice)
                continue;
            bal_text_clean(shown, sizeof(shown), s->paths[k], 0);
            ERROR("balloon plugin: The <Plugin balloon> blocks number %zu and %zu both read the QMP socket "
                  "'%s', whose polling interval they would set against each other. Read each socket in "
                  "one block only.", oi < si ? oi + 1 : si + 1, oi < si ? si + 1 : oi + 1, shown);
            overlap = true;
        }
    }
    return overlap;
}

int bp_sources_check(const bp_config_t *const *configs, size_t n)
{
    bp_source_t *src = calloc(n > 0 ? n : 1, sizeof(*src));
    int ret = 0;
    size_t made = 0;

    if (src == NULL)
        return -ENOMEM;
    for (; made < n; made++) {
        if (bp_source_init(&src[made], configs[made]) != 0) {
            made++;
            ret = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (bp_pair_overlaps(&src[i], i, &src[j], j))
                ret = -EINVAL;
out:
    for (size_t i = 0; i < made; i++)
        bp_source_clear(&src[i]);
    free(src);
    if (ret == -ENOMEM)
        ERROR("balloon plugin: Out of memory while comparing the <Plugin balloon> blocks.");
    return ret;
}
