/* See fault_server.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "tests/fault_fake.h"
#include "tests/fault_server.h"
#include "tests/tt_time.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": " \
                 "\"Debian 1:7.2+dfsg-7+deb12u6\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define HUGE_BYTES (10 * 1024 * 1024)
#define MAX_LINE (64 * 1024)

typedef struct conn conn_t;

typedef struct dom {
    char *name;
    char *path;
    int lfd;
    fs_mode_t mode;
    int64_t interval;
    long long last_update;
    conn_t *conns; /* open connections of this domain */
} dom_t;

struct conn {
    int fd;
    dom_t *dom;
    conn_t *next;
    char in[MAX_LINE];
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    bool negotiated;
    bool close_after_flush;
    int64_t next_byte_ms; /* FS_ONE_BYTE pacing */
};

struct fs_server {
    char *dir;
    int ep, wake;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    dom_t **doms;
    size_t n_doms;
    fs_counts_t counts;
    int delay_ms;
};

/* epoll tags: a dom_t * or a conn_t *, told apart by the low bit (both are aligned) */
#define TAG_CONN 1u

static void die(const char *what)
{
    fprintf(stderr, "fault_server: %s: %s\n", what, strerror(errno));
    abort();
}

static void queue(conn_t *c, const char *data, size_t len)
{
    char *grown;

    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    grown = realloc(c->out, c->out_len + len);
    if (grown == NULL)
        die("realloc");
    c->out = grown;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void queue_str(conn_t *c, const char *s)
{
    queue(c, s, strlen(s));
}

static void conn_close(fs_server_t *s, conn_t *c)
{
    conn_t **pp;

    for (pp = &c->dom->conns; *pp != NULL; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
    s->counts.connections--;
}

static void want_write(fs_server_t *s, conn_t *c, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u),
                             .data.u64 = (uint64_t)(uintptr_t)c | TAG_CONN};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what it may now. Returns false when the connection was closed. */
static bool flush(fs_server_t *s, conn_t *c)
{
    while (c->out_off < c->out_len) {
        size_t chunk = c->out_len - c->out_off;
        ssize_t n;

        if (c->dom->mode == FS_ONE_BYTE || c->dom->mode == FS_SLOW_THEN_STALL) {
            if (tt_mono_ms() < c->next_byte_ms)
                break; /* the loop's timeout comes back for it */
            if (c->dom->mode == FS_ONE_BYTE)
                chunk = 1;
        }
        n = send(c->fd, c->out + c->out_off, chunk, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_write(s, c, true);
            return true;
        }
        if (n < 0) {
            conn_close(s, c); /* the client went away (EPIPE after a refused huge reply) */
            return false;
        }
        c->out_off += (size_t)n;
        if (c->dom->mode == FS_ONE_BYTE)
            c->next_byte_ms = tt_mono_ms() + 1;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        want_write(s, c, false);
        if (c->close_after_flush) {
            conn_close(s, c);
            return false;
        }
    }
    return true;
}

static const char *str_at(yajl_val tree, const char *a, const char *b)
{
    const char *path[] = {a, b, NULL};
    yajl_val v = yajl_tree_get(tree, path, yajl_t_string);
    return v != NULL ? v->u.string : NULL;
}

static void answer_normal(dom_t *d, conn_t *c, yajl_val tree)
{
    const char *cmd = str_at(tree, "execute", NULL);
    const char *path = str_at(tree, "arguments", "path");
    const char *prop = str_at(tree, "arguments", "property");
    const char *value_path[] = {"arguments", "value", NULL};
    char buf[1024];

    if (cmd == NULL) {
        queue_str(c, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid JSON syntax\"}}\r\n");
    } else if (strcmp(cmd, "qmp_capabilities") == 0) {
        c->negotiated = true;
        queue_str(c, "{\"return\": {}}\r\n");
    } else if (!c->negotiated) {
        queue_str(c, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities "
                     "negotiation with 'qmp_capabilities'\"}}\r\n");
    } else if (strcmp(cmd, "query-balloon") == 0) {
        queue_str(c, "{\"return\": {\"actual\": 1073741824}}\r\n");
    } else if (strcmp(cmd, "qom-list") == 0) {
        queue_str(c, "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, {\"name\": \"balloon0\", "
                     "\"type\": \"child<virtio-balloon-pci>\"}]}\r\n");
    } else if (path == NULL || strcmp(path, "/machine/peripheral/balloon0") != 0) {
        snprintf(buf, sizeof(buf),
                 "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device '%s' not found\"}}\r\n",
                 path != NULL ? path : "");
        queue_str(c, buf);
    } else if (strcmp(cmd, "qom-set") == 0) {
        yajl_val v = yajl_tree_get(tree, value_path, yajl_t_number);
        d->interval = v != NULL ? YAJL_GET_INTEGER(v) : 0;
        if (d->interval > 0)
            d->last_update = (long long)time(NULL); /* from 0, QEMU polls at once */
        queue_str(c, "{\"return\": {}}\r\n");
    } else if (prop != NULL && strcmp(prop, "guest-stats-polling-interval") == 0) {
        snprintf(buf, sizeof(buf), "{\"return\": %lld}\r\n", (long long)d->interval);
        queue_str(c, buf);
    } else {
        if (d->interval > 0)
            d->last_update = (long long)time(NULL);
        snprintf(buf, sizeof(buf),
                 "{\"return\": {\"stats\": {\"stat-swap-out\": 0, \"stat-available-memory\": 801058816, "
                 "\"stat-free-memory\": 844943360, \"stat-minor-faults\": 219028, \"stat-major-faults\": 235, "
                 "\"stat-total-memory\": 1044406272, \"stat-swap-in\": 0, \"stat-disk-caches\": 104857600, "
                 "\"stat-htlb-pgalloc\": 0, \"stat-htlb-pgfail\": 0}, \"last-update\": %lld}}\r\n",
                 d->last_update);
        queue_str(c, buf);
    }
}

/* One command line from the client. Returns false when the connection was closed. */
static bool handle_line(fs_server_t *s, conn_t *c, const char *line)
{
    dom_t *d = c->dom;
    char ebuf[128];
    yajl_val tree;
    bool negotiating;

    if (line[strspn(line, " \t\r")] == '\0')
        return true;
    s->counts.commands++;
    if (!ff_command_allowed(line)) {
        s->counts.refused++;
        fprintf(stderr, "fault_server: a command outside the allow-list reached '%s': %s\n", d->name, line);
    }
    tree = yajl_tree_parse(line, ebuf, sizeof(ebuf));
    negotiating = !c->negotiated;
    switch (d->mode) {
    case FS_STALL_AFTER_GREETING:
        break;
    case FS_SLOW_THEN_STALL:
        if (negotiating)
            answer_normal(d, c, tree);
        break;
    case FS_HUGE_REPLY:
        if (negotiating) {
            answer_normal(d, c, tree);
        } else {
            char *huge = malloc(HUGE_BYTES + 64);
            if (huge == NULL)
                die("malloc");
            memcpy(huge, "{\"return\": {\"pad\": \"", 20);
            memset(huge + 20, 'x', HUGE_BYTES);
            memcpy(huge + 20 + HUGE_BYTES, "\"}}\r\n", 5);
            queue(c, huge, 20 + HUGE_BYTES + 5);
            free(huge);
        }
        break;
    case FS_CLOSE_MID_REPLY:
        answer_normal(d, c, tree);
        if (!negotiating) {
            /* keep half of what was just queued, then go away */
            size_t start = c->out_off, len = c->out_len - start;
            c->out_len = start + len / 2;
            c->close_after_flush = true;
        }
        break;
    case FS_NORMAL:
    case FS_ONE_BYTE:
        answer_normal(d, c, tree);
        break;
    }
    yajl_tree_free(tree);
    return flush(s, c);
}

static void on_readable(fs_server_t *s, conn_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, 0);
        char *nl;

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(s, c);
            return;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        while ((nl = memchr(c->in, '\n', c->in_len)) != NULL) {
            size_t used = (size_t)(nl - c->in) + 1;
            *nl = '\0';
            if (!handle_line(s, c, c->in))
                return;
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            c->in[c->in_len] = '\0';
        }
        if (c->in_len == sizeof(c->in) - 1) {
            conn_close(s, c); /* a line longer than any command */
            return;
        }
    }
}

static void on_accept(fs_server_t *s, dom_t *d)
{
    for (;;) {
        int fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev;
        conn_t *c;

        if (fd < 0)
            return;
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            die("calloc");
        c->fd = fd;
        c->dom = d;
        c->next = d->conns;
        d->conns = c;
        s->counts.accepted++;
        s->counts.connections++;
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t)(uintptr_t)c | TAG_CONN;
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
        if (d->mode == FS_SLOW_THEN_STALL)
            c->next_byte_ms = tt_mono_ms() + s->delay_ms;
        queue_str(c, GREETING);
        flush(s, c);
    }
}

/* The soonest a paced connection may send its next byte, as an epoll timeout. */
static int next_timeout(fs_server_t *s)
{
    int64_t soonest = -1, now = tt_mono_ms();

    for (size_t i = 0; i < s->n_doms; i++)
        for (conn_t *c = s->doms[i]->conns; c != NULL; c = c->next)
            if (c->out_off < c->out_len &&
                (s->doms[i]->mode == FS_ONE_BYTE || s->doms[i]->mode == FS_SLOW_THEN_STALL) &&
                (soonest < 0 || c->next_byte_ms < soonest))
                soonest = c->next_byte_ms;
    if (soonest < 0)
        return 100;
    return soonest <= now ? 0 : (int)(soonest - now);
}

static void flush_paced(fs_server_t *s)
{
    for (size_t i = 0; i < s->n_doms; i++) {
        conn_t *c = s->doms[i]->conns;
        while (c != NULL) {
            conn_t *next = c->next;
            if (c->out_off < c->out_len &&
                (s->doms[i]->mode == FS_ONE_BYTE || s->doms[i]->mode == FS_SLOW_THEN_STALL))
                flush(s, c);
            c = next;
        }
    }
}

static void *server_main(void *opaque)
{
    fs_server_t *s = opaque;
    struct epoll_event evs[64];

    for (;;) {
        int n, timeout;

        pthread_mutex_lock(&s->lock);
        if (s->stop) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        timeout = next_timeout(s);
        pthread_mutex_unlock(&s->lock);
        n = epoll_wait(s->ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;

            if (tag == 0) { /* the wake eventfd */
                uint64_t v;
                if (read(s->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    die("read eventfd");
            } else if (tag & TAG_CONN) {
                conn_t *c = (conn_t *)(uintptr_t)(tag & ~(uint64_t)TAG_CONN);
                /* it may have been closed by an earlier event of this batch: look it up */
                bool alive = false;
                for (size_t k = 0; k < s->n_doms && !alive; k++)
                    for (conn_t *x = s->doms[k]->conns; x != NULL && !alive; x = x->next)
                        alive = x == c;
                if (!alive)
                    continue;
                if ((evs[i].events & EPOLLOUT) && !flush(s, c))
                    continue;
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable(s, c);
            } else {
                dom_t *d = (dom_t *)(uintptr_t)tag;
                bool alive = false;
                for (size_t k = 0; k < s->n_doms && !alive; k++)
                    alive = s->doms[k] == d;
                if (alive)
                    on_accept(s, d);
            }
        }
        flush_paced(s);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static void wake(fs_server_t *s)
{
    uint64_t one = 1;
    if (write(s->wake, &one, sizeof(one)) < 0)
        die("write eventfd");
}

fs_server_t *fs_new(const char *dir)
{
    fs_server_t *s = calloc(1, sizeof(*s));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};

    if (s == NULL || (s->dir = strdup(dir)) == NULL)
        die("calloc");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        die("mkdir");
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->ep < 0 || s->wake < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->wake, &ev) < 0)
        die("epoll");
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->thread, NULL, server_main, s) != 0)
        die("pthread_create");
    return s;
}

static ssize_t find(fs_server_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_doms; i++)
        if (strcmp(s->doms[i]->name, name) == 0)
            return (ssize_t)i;
    return -1;
}

void fs_add(fs_server_t *s, const char *name, fs_mode_t mode)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct epoll_event ev = {.events = EPOLLIN};
    dom_t *d = calloc(1, sizeof(*d)), **grown;

    if (d == NULL || (d->name = strdup(name)) == NULL || asprintf(&d->path, "%s/%s.qmp", s->dir, name) < 0)
        die("calloc");
    d->mode = mode;
    if (strlen(d->path) >= sizeof(sa.sun_path))
        die("socket path too long");
    strcpy(sa.sun_path, d->path);
    unlink(d->path);
    d->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->lfd < 0 || bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(d->path, 0600) < 0 ||
        listen(d->lfd, 16) < 0)
        die("socket");
    ev.data.u64 = (uint64_t)(uintptr_t)d;
    pthread_mutex_lock(&s->lock);
    grown = realloc(s->doms, (s->n_doms + 1) * sizeof(*grown));
    if (grown == NULL)
        die("realloc");
    s->doms = grown;
    s->doms[s->n_doms++] = d;
    s->counts.domains++;
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, d->lfd, &ev) < 0)
        die("epoll_ctl");
    pthread_mutex_unlock(&s->lock);
    wake(s);
}

static void dom_free(fs_server_t *s, dom_t *d, bool keep_file)
{
    while (d->conns != NULL)
        conn_close(s, d->conns);
    epoll_ctl(s->ep, EPOLL_CTL_DEL, d->lfd, NULL);
    close(d->lfd);
    if (!keep_file)
        unlink(d->path);
    free(d->path);
    free(d->name);
    free(d);
}

static void drop(fs_server_t *s, const char *name, bool keep_file)
{
    ssize_t i;

    pthread_mutex_lock(&s->lock);
    i = find(s, name);
    if (i >= 0) {
        dom_free(s, s->doms[i], keep_file);
        s->doms[i] = s->doms[--s->n_doms];
        s->counts.domains--;
    }
    pthread_mutex_unlock(&s->lock);
    wake(s);
}

void fs_remove(fs_server_t *s, const char *name)
{
    drop(s, name, false);
}

void fs_kill(fs_server_t *s, const char *name)
{
    drop(s, name, true);
}

void fs_set_mode(fs_server_t *s, const char *name, fs_mode_t mode)
{
    ssize_t i;

    pthread_mutex_lock(&s->lock);
    i = find(s, name);
    if (i >= 0)
        s->doms[i]->mode = mode;
    pthread_mutex_unlock(&s->lock);
    wake(s);
}

void fs_set_delay(fs_server_t *s, int delay_ms)
{
    pthread_mutex_lock(&s->lock);
    s->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->lock);
}

void fs_counts(fs_server_t *s, fs_counts_t *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->counts;
    pthread_mutex_unlock(&s->lock);
}

void fs_free(fs_server_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
    wake(s);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->n_doms; i++)
        dom_free(s, s->doms[i], false);
    free(s->doms);
    close(s->wake);
    close(s->ep);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}
