#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/bal_limits.h"
#include "agent/bal_qmp_conn.h"
#include "agent/bal_qmp_listing.h"
#include "agent/bal_qmp_socket.h"


typedef struct sock_domain {
    char *name;
    char *path;
    uint64_t hash;            /* of name */
    struct sock_domain *next; /* the bucket's chain; under the table lock */
    unsigned listed;          /* the listing that last saw it; under the table's write lock */
    atomic_uint refs;         /* the table's one plus one per execute in progress */
    pthread_mutex_t lock;     /* one command at a time on conn */
    bal_qmp_conn_t *conn;
    uint64_t conn_instance;
    bool kept;                /* conn counts against max_conns and stays open between commands */
    struct sock_transport *t;
} sock_domain_t;

typedef struct sock_transport {
    bal_transport_t base;
    bal_qmp_listing_t *sockets; /* which sockets there are */
    int timeout_ms;
    bal_logger_t logger;
    /* The table, a hash of names, so that finding a domain costs the same with 10 or 10000 of them.
     * Commands only look up (read lock, shared by the pool's threads); listing and a domain's first
     * command change it (write lock). */
    pthread_rwlock_t lock;
    sock_domain_t **buckets; /* n_buckets, a power of two; NULL until the first domain */
    size_t n_buckets;
    size_t n_doms;
    unsigned listing;        /* counts listings, to mark the domains each one saw */
    /* A reconnect found a socket other than the listed one: QEMU restarted since the listing, and the
     * agent must list again to see the new instance (take_changes). */
    atomic_bool restarted;
    /* The descriptor budget: at most max_conns connections kept open (0: no limit). A domain beyond
     * them is connected for each command, and the first such command says so. */
    size_t max_conns;
    atomic_size_t n_kept;
    atomic_bool over_said;
} sock_transport_t;

#define MIN_BUCKETS 64

/* Closes d's connection, giving back its place among the kept ones. Under d->lock (or its last ref). */
static void drop_conn(sock_domain_t *d)
{
    bal_qmp_conn_free(d->conn);
    d->conn = NULL;
    if (d->kept)
        atomic_fetch_sub(&d->t->n_kept, 1);
    d->kept = false;
}

/* After a command on a new connection: keeps it open when the budget has room. */
static void keep_or_close(sock_transport_t *t, sock_domain_t *d)
{
    size_t n = atomic_fetch_add(&t->n_kept, 1);

    if (t->max_conns == 0 || n < t->max_conns) {
        d->kept = true;
        return;
    }
    atomic_fetch_sub(&t->n_kept, 1);
    if (!atomic_exchange(&t->over_said, true))
        bal_log(&t->logger, BAL_LOG_NOTICE, "There are more QMP sockets than the %zu connections kept open within "
                "the open-files limit: the others are connected for each command, beginning with domain '%s'.",
                t->max_conns, d->name);
    drop_conn(d);
}

static void domain_unref(sock_domain_t *d)
{
    /* the last reference: the table let go of it (under its lock) before, so nobody can find it */
    if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
        return;
    drop_conn(d);
    pthread_mutex_destroy(&d->lock);
    free(d->name);
    free(d->path);
    free(d);
}

/* FNV-1a: names are short, and nothing hostile chooses them but the owner of the socket directory. */
static uint64_t name_hash(const char *name)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        h = (h ^ *p) * UINT64_C(0x100000001b3);
    return h;
}

/* The entry for name, or NULL. Under the table lock (either mode). */
static sock_domain_t *table_find(const sock_transport_t *t, const char *name, uint64_t hash)
{
    if (t->buckets == NULL)
        return NULL;
    for (sock_domain_t *d = t->buckets[hash & (t->n_buckets - 1)]; d != NULL; d = d->next)
        if (d->hash == hash && strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

/* Links d in, growing the table to keep chains short. Under the write lock. Returns 0 or -ENOMEM. */
static int table_insert(sock_transport_t *t, sock_domain_t *d)
{
    if (t->n_doms >= t->n_buckets) {
        size_t n = t->n_buckets != 0 ? t->n_buckets * 2 : MIN_BUCKETS;
        sock_domain_t **b = calloc(n, sizeof(*b));

        if (b == NULL) {
            if (t->buckets == NULL)
                return -ENOMEM;
            /* longer chains, still correct */
        } else {
            for (size_t i = 0; i < t->n_buckets; i++) {
                sock_domain_t *e = t->buckets[i], *next;
                for (; e != NULL; e = next) {
                    next = e->next;
                    e->next = b[e->hash & (n - 1)];
                    b[e->hash & (n - 1)] = e;
                }
            }
            free(t->buckets);
            t->buckets = b;
            t->n_buckets = n;
        }
    }
    d->next = t->buckets[d->hash & (t->n_buckets - 1)];
    t->buckets[d->hash & (t->n_buckets - 1)] = d;
    t->n_doms++;
    return 0;
}

static int sock_list_domains(bal_transport_t *base, bal_domain_list_t *out, bal_error_t *err)
{
    sock_transport_t *t = (sock_transport_t *)base;
    bal_domain_list_t list = {0};
    int ret;

    ret = bal_qmp_listing_list(t->sockets, &list, err);
    if (ret < 0)
        return ret;

    /* Domains whose socket is gone let go of their connection now, not at the next command. */
    pthread_rwlock_wrlock(&t->lock);
    t->listing++;
    for (size_t i = 0; i < list.count; i++) {
        sock_domain_t *d = table_find(t, list.items[i].name, name_hash(list.items[i].name));
        if (d != NULL)
            d->listed = t->listing;
    }
    for (size_t i = 0; i < t->n_buckets; i++) {
        sock_domain_t **link = &t->buckets[i];
        while (*link != NULL) {
            sock_domain_t *d = *link;
            if (d->listed == t->listing) {
                link = &d->next;
                continue;
            }
            *link = d->next;
            t->n_doms--;
            domain_unref(d);
        }
    }
    pthread_rwlock_unlock(&t->lock);
    *out = list;
    return 0;
}

/* A new entry for name, with its socket path; not in the table yet. */
static int domain_new(sock_transport_t *t, const char *name, uint64_t hash, sock_domain_t **out,
                      bal_error_t *err)
{
    sock_domain_t *d = calloc(1, sizeof(*d));

    if (d == NULL || (d->name = strdup(name)) == NULL) {
        free(d);
        return bal_error_set(err, -ENOMEM, "Out of memory while looking up the domain '%s'.", name);
    }
    d->path = bal_qmp_listing_path(t->sockets, name, err);
    if (d->path == NULL) {
        free(d->name);
        free(d);
        return err != NULL ? err->code : -ENOENT;
    }
    d->hash = hash;
    d->t = t;
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return 0;
}

/* The table entry for name, created if needed, with a reference for the caller. */
static int domain_get(sock_transport_t *t, const char *name, sock_domain_t **out, bal_error_t *err)
{
    uint64_t hash = name_hash(name);
    sock_domain_t *d, *fresh = NULL;
    int ret;

    pthread_rwlock_rdlock(&t->lock);
    d = table_find(t, name, hash);
    if (d != NULL)
        atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
    pthread_rwlock_unlock(&t->lock);
    if (d != NULL) {
        *out = d;
        return 0;
    }

    /* First command for this domain: built outside the lock, then added unless another thread won. */
    ret = domain_new(t, name, hash, &fresh, err);
    if (ret < 0)
        return ret;
    pthread_rwlock_wrlock(&t->lock);
    d = table_find(t, name, hash);
    if (d == NULL) {
        atomic_init(&fresh->refs, 1); /* the table's */
        fresh->listed = t->listing;
        if (table_insert(t, fresh) < 0) {
            ret = bal_error_set(err, -ENOMEM, "Out of memory while looking up the domain '%s'.", name);
        } else {
            d = fresh;
            fresh = NULL;
        }
    }
    if (d != NULL)
        atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
    pthread_rwlock_unlock(&t->lock);
    if (fresh != NULL) {
        atomic_init(&fresh->refs, 1);
        domain_unref(fresh);
    }
    if (ret == 0)
        *out = d;
    return ret;
}

static int sock_execute(bal_transport_t *base, const bal_domain_info_t *dom, const char *command, char **reply,
                        bal_error_t *err)
{
    sock_transport_t *t = (sock_transport_t *)base;
    sock_domain_t *d = NULL;
    bool fresh = false;
    int ret;

    ret = domain_get(t, dom->name, &d, err);
    if (ret < 0)
        return ret;
    pthread_mutex_lock(&d->lock);
    if (d->conn != NULL && (d->conn_instance != dom->instance || bal_qmp_conn_stale(d->conn))) {
        bal_log(&t->logger, BAL_LOG_DEBUG, "The connection to the QMP socket '%s' of domain '%s' went stale; "
                "reconnecting.", d->path, d->name);
        drop_conn(d);
    }
    if (d->conn == NULL) {
        struct stat st;

        if (dom->instance != 0 && stat(d->path, &st) == 0 && bal_qmp_listing_instance(&st) != dom->instance) {
            bal_log(&t->logger, BAL_LOG_DEBUG, "The QMP socket '%s' of domain '%s' is not the one listed: "
                    "its QEMU restarted.", d->path, d->name);
            atomic_store(&t->restarted, true);
        }
        ret = bal_qmp_conn_open(d->path, t->timeout_ms, &d->conn, err);
        if (ret < 0)
            goto out;
        d->conn_instance = dom->instance;
        fresh = true;
        bal_log(&t->logger, BAL_LOG_DEBUG, "Connected to the QMP socket '%s' of domain '%s'.", d->path, d->name);
    }
    ret = bal_qmp_conn_execute(d->conn, command, t->timeout_ms, reply, err);
    if (ret < 0)
        drop_conn(d); /* out of step with the peer: a late reply would be taken for the next command's */
    else if (fresh)
        keep_or_close(t, d);
out:
    pthread_mutex_unlock(&d->lock);
    domain_unref(d);
    return ret;
}

static bool sock_take_changes(bal_transport_t *base)
{
    sock_transport_t *t = (sock_transport_t *)base;
    bool changed = bal_qmp_listing_changed(t->sockets);

    return atomic_exchange(&t->restarted, false) || changed;
}

static void sock_free(bal_transport_t *base)
{
    sock_transport_t *t = (sock_transport_t *)base;

    for (size_t i = 0; i < t->n_buckets; i++) {
        sock_domain_t *d = t->buckets[i], *next;
        for (; d != NULL; d = next) {
            next = d->next;
            domain_unref(d);
        }
    }
    free(t->buckets);
    bal_qmp_listing_free(t->sockets);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

static const bal_transport_ops_t sock_ops = {
    .name = "qmp-socket",
    .list_domains = sock_list_domains,
    .execute = sock_execute,
    .take_changes = sock_take_changes,
    .free = sock_free,
};

/* Takes listing, which is freed on failure. */
static bal_transport_t *transport_new(bal_qmp_listing_t *listing, int timeout_ms, const bal_logger_t *logger,
                                      bal_error_t *err)
{
    sock_transport_t *t;

    if (listing == NULL)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        bal_qmp_listing_free(listing);
        bal_error_set(err, -ENOMEM, "Out of memory while setting up the QMP socket transport.");
        return NULL;
    }
    t->base.ops = &sock_ops;
    t->sockets = listing;
    t->timeout_ms = timeout_ms > 0 ? timeout_ms : BAL_LIMIT_TIMEOUT_MS_DEFAULT;
    if (logger != NULL)
        t->logger = *logger;
    pthread_rwlock_init(&t->lock, NULL);
    atomic_init(&t->restarted, false);
    atomic_init(&t->n_kept, 0);
    atomic_init(&t->over_said, false);
    return &t->base;
}

void bal_qmp_socket_transport_set_max_connections(bal_transport_t *base, size_t max_conns)
{
    sock_transport_t *t = (sock_transport_t *)base;

    if (base != NULL && base->ops == &sock_ops)
        t->max_conns = max_conns;
}

bal_transport_t *bal_qmp_socket_transport_new_dir(const char *dir, int timeout_ms, const bal_logger_t *logger,
                                                  bal_error_t *err)
{
    return transport_new(bal_qmp_listing_new_dir(dir, logger, err), timeout_ms, logger, err);
}

bal_transport_t *bal_qmp_socket_transport_new_pairs(const bal_socket_spec_t *pairs, size_t n, int timeout_ms,
                                                    const bal_logger_t *logger, bal_error_t *err)
{
    return transport_new(bal_qmp_listing_new_pairs(pairs, n, logger, err), timeout_ms, logger, err);
}
