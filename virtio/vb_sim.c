/* balloon-sim's event loop: see vb_sim.h.
 *
 * Records freed during an epoll batch may still be named by later events of the same batch, so a
 * closed connection is only marked dead and unlinked at once, and its memory is released after the
 * batch; a VM that executed quit is torn down after the batch too. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "virtio/vb_heap.h"
#include "virtio/vb_qmp_server.h"
#include "virtio/vb_sim.h"

#define READ_CHUNK 65536
#define MAX_EVENTS 256

typedef enum kind { K_LISTENER, K_CONN, K_SIGNAL } kind_t;

typedef struct conn conn_t;

typedef struct dom {
    kind_t kind; /* first: epoll's data.ptr points at a kind_t */
    vb_sim_t *sim;
    vb_machine_t *m;
    char *path;
    int lfd;
    vb_heap_node_t timer;
    conn_t *conns;
    bool quit;
    struct dom *prev, *next;
    struct dom *next_quit;
} dom_t;

struct conn {
    kind_t kind;
    dom_t *d;
    int fd;
    vb_qmp_conn_t *q;
    conn_t *prev, *next; /* in d->conns */
    uint32_t events;     /* the epoll mask registered */
    bool dead;
    bool dirty;
    conn_t *next_dirty, *next_dead;
};

struct vb_sim {
    const vb_clock_t *clock;
    char *dir;
    int epfd;
    int reserve_fd; /* spent to accept-and-close a client when out of descriptors */
    kind_t signal_kind;
    vb_qmp_server_t *server;
    vb_heap_t heap;
    dom_t *doms;
    conn_t *dirty, *dead;
    dom_t *quitting;
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void on_wake(vb_qmp_conn_t *q, void *opaque);
static void on_quit(vb_machine_t *m, void *opaque);

static const vb_qmp_server_ops_t server_ops = {.wake = on_wake, .quit = on_quit};

vb_sim_t *vb_sim_new(const vb_clock_t *clock, const char *socket_dir, char *err, size_t errlen)
{
    vb_sim_t *sim = NULL;
    struct stat st;
    int saved;

    if (stat(socket_dir, &st) < 0) {
        if (errno != ENOENT || mkdir(socket_dir, 0700) < 0 || stat(socket_dir, &st) < 0) {
            saved = errno;
            snprintf(err, errlen, "Cannot use the socket directory '%s': %s.", socket_dir,
                     strerror(saved));
            errno = saved;
            return NULL;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "The socket directory '%s' is not a directory.", socket_dir);
        errno = ENOTDIR;
        return NULL;
    }
    if (st.st_mode & S_IWOTH) {
        /* anyone could replace our sockets with theirs and answer for our VMs */
        snprintf(err, errlen,
                 "The socket directory '%s' is world-writable; refusing to create sockets there.",
                 socket_dir);
        errno = EPERM;
        return NULL;
    }
    sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        goto oom;
    sim->clock = clock;
    sim->epfd = -1;
    sim->reserve_fd = -1;
    sim->signal_kind = K_SIGNAL;
    sim->dir = strdup(socket_dir);
    sim->server = vb_qmp_server_new(clock, &server_ops, sim);
    if (sim->dir == NULL || sim->server == NULL)
        goto oom;
    sim->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sim->epfd < 0) {
        saved = errno;
        snprintf(err, errlen, "Cannot create the event loop: %s.", strerror(saved));
        vb_sim_free(sim);
        errno = saved;
        return NULL;
    }
    sim->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return sim;
oom:
    snprintf(err, errlen, "Out of memory.");
    vb_sim_free(sim);
    errno = ENOMEM;
    return NULL;
}

/* ---- connections ---- */

static void set_events(conn_t *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = &c->kind};
    if (c->events == events)
        return;
    if (epoll_ctl(c->d->sim->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

static void conn_kill(conn_t *c)
{
    vb_sim_t *sim = c->d->sim;

    if (c->dead)
        return;
    c->dead = true;
    epoll_ctl(sim->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    vb_qmp_conn_free(c->q);
    c->q = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->d->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next_dead = sim->dead;
    sim->dead = c;
}

/* Sends what the server queued; closes a finished connection once it is all sent. */
static void conn_flush(conn_t *c)
{
    const char *data;
    size_t len;
    uint32_t want;

    if (c->dead)
        return;
    while ((len = vb_qmp_conn_output(c->q, &data)) > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            conn_kill(c);
            return;
        }
        vb_qmp_conn_consume(c->q, (size_t)n);
    }
    if (vb_qmp_conn_finished(c->q) && len == 0) {
        conn_kill(c);
        return;
    }
    /* always reading: the server closes a client whose unread replies grow too large */
    want = 0;
    if (!vb_qmp_conn_finished(c->q))
        want |= EPOLLIN;
    if (len > 0)
        want |= EPOLLOUT;
    set_events(c, want);
}

static void update_timer(dom_t *d)
{
    if (d->quit)
        return;
    vb_heap_set(&d->sim->heap, &d->timer, vb_device_next_deadline_ns(vb_machine_device(d->m)));
}

static void conn_read(conn_t *c)
{
    char buf[READ_CHUNK];

    for (int round = 0; round < 4 && !c->dead; round++) {
        ssize_t n;

        if (vb_qmp_conn_finished(c->q))
            break;
        n = read(c->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) { /* the client went away, or its socket failed */
            conn_kill(c);
            return;
        }
        if (vb_qmp_conn_input(c->q, buf, (size_t)n) < 0) {
            conn_kill(c);
            return;
        }
        update_timer(c->d);
        if ((size_t)n < sizeof(buf))
            break;
    }
}

static void on_wake(vb_qmp_conn_t *q, void *opaque)
{
    conn_t *c = opaque;
    (void)q;
    if (c->dirty || c->dead)
        return;
    c->dirty = true;
    c->next_dirty = c->d->sim->dirty;
    c->d->sim->dirty = c;
}

static void on_quit(vb_machine_t *m, void *opaque)
{
    vb_sim_t *sim = opaque;
    for (dom_t *d = sim->doms; d != NULL; d = d->next) {
        if (d->m == m && !d->quit) {
            d->quit = true;
            d->next_quit = sim->quitting;
            sim->quitting = d;
            return;
        }
    }
}

/* ---- listeners ---- */

static void accept_clients(dom_t *d)
{
    vb_sim_t *sim = d->sim;

    for (int i = 0; i < 16; i++) {
        struct epoll_event ev = {.events = EPOLLIN};
        conn_t *c;
        int fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && sim->reserve_fd >= 0) {
            /* take the client off the backlog so that the loop does not spin on it */
            close(sim->reserve_fd);
            fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                close(fd);
            sim->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            return;
        }
        if (fd < 0)
            return;
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            return;
        }
        c->kind = K_CONN;
        c->d = d;
        c->fd = fd;
        c->q = vb_qmp_conn_new(sim->server, vb_machine_name(d->m), c);
        ev.data.ptr = &c->kind;
        if (c->q == NULL || epoll_ctl(sim->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            vb_qmp_conn_free(c->q);
            close(fd);
            free(c);
            continue;
        }
        c->events = EPOLLIN;
        c->next = d->conns;
        if (d->conns != NULL)
            d->conns->prev = c;
        d->conns = c;
        conn_flush(c); /* the greeting */
    }
}

static void dom_free(dom_t *d, bool remove_machine)
{
    vb_sim_t *sim = d->sim;

    while (d->conns != NULL)
        conn_kill(d->conns);
    if (d->lfd >= 0) {
        epoll_ctl(sim->epfd, EPOLL_CTL_DEL, d->lfd, NULL);
        close(d->lfd);
        unlink(d->path); /* it was ours: bound by this process */
    }
    vb_heap_remove(&sim->heap, &d->timer);
    if (d->prev != NULL)
        d->prev->next = d->next;
    else if (sim->doms == d)
        sim->doms = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    if (remove_machine && d->m != NULL)
        vb_qmp_server_remove(sim->server, d->m);
    free(d->path);
    free(d);
}

/* ---- adding VMs ---- */

/* Binds and watches d's listening socket at d->path (mode 0600), replacing a stale socket that no
 * process serves. Returns 0, or a negative errno with a sentence in err. */
static int dom_listen(vb_sim_t *sim, dom_t *d, const char *name, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct epoll_event ev = {.events = EPOLLIN};
    struct stat st;
    mode_t old_mask;
    int rc, saved;

    if (strlen(d->path) >= sizeof(sa.sun_path)) {
        rc = -ENAMETOOLONG;
        snprintf(err, errlen, "The socket path '%s' is too long (a UNIX socket path holds at most %zu bytes).",
                 d->path, sizeof(sa.sun_path) - 1);
        return rc;
    }
    strcpy(sa.sun_path, d->path);
    if (lstat(d->path, &st) == 0) {
        int probe = -1;
        if (!S_ISSOCK(st.st_mode)) {
            rc = -EEXIST;
            snprintf(err, errlen, "'%s' exists and is not a socket.", d->path);
            return rc;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            rc = -EEXIST;
            snprintf(err, errlen, "The socket '%s' is in use by another process.", d->path);
            return rc;
        }
        if (probe >= 0)
            close(probe);
        unlink(d->path); /* left over by a process that is gone */
    }
    d->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->lfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "Cannot create a socket for '%s': %s.", name, strerror(-rc));
        return rc;
    }
    old_mask = umask(0177); /* the socket is born 0600: no window where others may connect */
    rc = bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa));
    saved = errno;
    umask(old_mask);
    if (rc < 0 || listen(d->lfd, 64) < 0) {
        rc = -(rc < 0 ? saved : errno);
        snprintf(err, errlen, "Cannot listen on '%s': %s.", d->path, strerror(-rc));
        if (rc != -EADDRINUSE)
            unlink(d->path);
        close(d->lfd);
        d->lfd = -1;
        return rc;
    }
    ev.data.ptr = &d->kind;
    if (epoll_ctl(sim->epfd, EPOLL_CTL_ADD, d->lfd, &ev) < 0) {
        rc = -errno;
        snprintf(err, errlen, "Cannot watch '%s': %s.", d->path, strerror(-rc));
        return rc;
    }
    return 0;
}

int vb_sim_add(vb_sim_t *sim, const vb_machine_config_t *config, char *err, size_t errlen)
{
    vb_machine_t *m;
    dom_t *d = NULL;
    int rc, saved;

    if (config->name[0] == '\0' || strchr(config->name, '/') != NULL) {
        snprintf(err, errlen, "The domain name '%s' cannot name a socket: it is empty or holds '/'.",
                 config->name);
        return -EINVAL;
    }
    m = vb_machine_new(sim->clock, config);
    if (m == NULL) {
        saved = errno;
        snprintf(err, errlen, "Cannot create the domain '%s': %s.", config->name, strerror(saved));
        return -saved;
    }
    rc = vb_qmp_server_add(sim->server, m); /* owns m from now on */
    if (rc < 0) {
        snprintf(err, errlen, rc == -EEXIST ? "The domain '%s' is given twice."
                                            : "Cannot add the domain '%s': out of memory.",
                 config->name);
        return rc;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL || asprintf(&d->path, "%s/%s.qmp", sim->dir, config->name) < 0) {
        if (d != NULL)
            d->path = NULL;
        rc = -ENOMEM;
        snprintf(err, errlen, "Out of memory.");
        goto fail;
    }
    d->kind = K_LISTENER;
    d->sim = sim;
    d->m = m;
    d->lfd = -1;
    rc = dom_listen(sim, d, config->name, err, errlen);
    if (rc < 0)
        goto fail;
    d->next = sim->doms;
    if (sim->doms != NULL)
        sim->doms->prev = d;
    sim->doms = d;
    update_timer(d);
    return 0;
fail:
    if (d != NULL)
        dom_free(d, false);
    vb_qmp_server_remove(sim->server, m);
    return rc;
}

int vb_sim_reserve_files(size_t n, char *err, size_t errlen)
{
    struct rlimit rl;
    /* a listener per VM, room for a couple of clients each, and the loop's own */
    rlim_t want = (rlim_t)n * 3 + 256, need = (rlim_t)n + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_max < want) {
        struct rlimit raised = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) /* root may raise the hard limit */
            return 0;
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need)
        return 0;
    snprintf(err, errlen,
             "%zu domains need about %llu open files, and the limit is %llu (ulimit -n).", n,
             (unsigned long long)want, (unsigned long long)rl.rlim_cur);
    return -EMFILE;
}

/* ---- the loop ---- */

static void run_timers(vb_sim_t *sim)
{
    int64_t now = sim->clock->monotonic_ns(sim->clock->opaque);
    vb_heap_node_t *top;

    while ((top = vb_heap_top(&sim->heap)) != NULL && top->key <= now) {
        dom_t *d = container_of(top, dom_t, timer);
        int64_t next;
        vb_device_run(vb_machine_device(d->m));
        next = vb_device_next_deadline_ns(vb_machine_device(d->m));
        /* a device that stays due would spin the loop: look again in a millisecond */
        vb_heap_set(&sim->heap, &d->timer, next <= now ? now + VB_NS_PER_MS : next);
    }
}

static int wait_ms(vb_sim_t *sim)
{
    vb_heap_node_t *top = vb_heap_top(&sim->heap);
    int64_t now, ms;

    if (top == NULL)
        return -1;
    now = sim->clock->monotonic_ns(sim->clock->opaque);
    if (top->key <= now)
        return 0;
    ms = (top->key - now + VB_NS_PER_MS - 1) / VB_NS_PER_MS;
    return ms > 60000 ? 60000 : (int)ms;
}

/* After a batch: flush what events queued, tear down VMs that quit, release dead records. */
static void after_batch(vb_sim_t *sim)
{
    while (sim->dirty != NULL) {
        conn_t *c = sim->dirty;
        sim->dirty = c->next_dirty;
        c->dirty = false;
        conn_flush(c);
    }
    while (sim->quitting != NULL) {
        dom_t *d = sim->quitting;
        sim->quitting = d->next_quit;
        for (conn_t *c = d->conns; c != NULL; c = c->next)
            conn_flush(c); /* SHUTDOWN and the reply, as far as the socket takes them */
        dom_free(d, true);
    }
    while (sim->dead != NULL) {
        conn_t *c = sim->dead;
        sim->dead = c->next_dead;
        free(c);
    }
}

int vb_sim_run(vb_sim_t *sim, char *err, size_t errlen)
{
    struct epoll_event events[MAX_EVENTS], sev = {.events = EPOLLIN};
    sigset_t mask;
    int sigfd, rc = 0;

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    sev.data.ptr = &sim->signal_kind;
    if (sigfd < 0 || epoll_ctl(sim->epfd, EPOLL_CTL_ADD, sigfd, &sev) < 0) {
        rc = -errno;
        snprintf(err, errlen, "Cannot watch for signals: %s.", strerror(-rc));
        goto out;
    }
    for (;;) {
        int n;
        run_timers(sim);
        after_batch(sim);
        n = epoll_wait(sim->epfd, events, MAX_EVENTS, wait_ms(sim));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "The event loop failed: %s.", strerror(-rc));
            goto out;
        }
        for (int i = 0; i < n; i++) {
            kind_t *k = events[i].data.ptr;
            if (*k == K_SIGNAL)
                goto out; /* SIGINT or SIGTERM: a clean exit */
            if (*k == K_LISTENER) {
                accept_clients(container_of(k, dom_t, kind));
            } else {
                conn_t *c = container_of(k, conn_t, kind);
                if (c->dead)
                    continue;
                if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    conn_read(c);
                conn_flush(c);
            }
        }
        after_batch(sim);
    }
out:
    after_batch(sim);
    if (sigfd >= 0)
        close(sigfd);
    return rc;
}

void vb_sim_free(vb_sim_t *sim)
{
    if (sim == NULL)
        return;
    while (sim->doms != NULL)
        dom_free(sim->doms, false);
    after_batch(sim);
    vb_qmp_server_free(sim->server);
    vb_heap_free(&sim->heap);
    if (sim->epfd >= 0)
        close(sim->epfd);
    if (sim->reserve_fd >= 0)
        close(sim->reserve_fd);
    free(sim->dir);
    free(sim);
}
