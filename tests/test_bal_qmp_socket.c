/* The QMP socket client and the qmp-socket transport, against in-test fake QMP servers that misbehave
 * in the ways a real QEMU can: hang, stall, drop the connection, dribble, flood, interleave events. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/bal_qmp.h"
#include "agent/bal_qmp_conn.h"
#include "agent/bal_qmp_socket.h"
#include "tests/tt_time.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " \
                 "\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define QUERY "{\"execute\":\"query-balloon\"}"
#define SHORT_MS 200

typedef enum srv_mode {
    SRV_NORMAL,               /* greeting, negotiation, {"return": {"actual": N}} with N counting replies */
    SRV_NO_ACCEPT,            /* listens, never accepts: the connection waits in the backlog */
    SRV_SILENT,               /* accepts, never says anything */
    SRV_STALL_AFTER_GREETING, /* greets, then reads and never answers */
    SRV_STALL_AFTER_CAPS,     /* negotiates, then never answers a command */
    SRV_DISCONNECT_MID_REPLY, /* sends half of the first reply to a command, then closes */
    SRV_CLOSE_AFTER_REPLY,    /* answers one command, then closes (QEMU exits between cycles) */
    SRV_ONE_BYTE,             /* everything one byte per send */
    SRV_EVENTS,               /* events before each reply, and one right after it */
    SRV_HUGE_REPLY,           /* a 10 MiB reply */
    SRV_HUGE_EVENT,           /* a 10 MiB event before the reply */
    SRV_PRETTY,               /* pretty=on: messages over several lines */
    SRV_GARBAGE,              /* greets, then answers with text that is not JSON */
    SRV_NUL_REPLY,            /* a reply with a NUL byte inside */
    SRV_NOT_QMP,              /* a first message that is not a greeting */
    SRV_CAPS_ERROR,           /* refuses qmp_capabilities */
    SRV_DOUBLE_GREETING,      /* answers a command with a second greeting */
    SRV_FLOOD,                /* events without pause, replies in between */
    SRV_LATE_FIRST,           /* answers the first command after 1.5 * SHORT_MS, the others at once */
    SRV_FLOOD_NO_REPLY,       /* negotiates, then floods events after a command and never answers it */
    SRV_REPLY_ID,             /* negotiates, then answers each command with an "id" it never got */
} srv_mode_t;

typedef struct server {
    char path[108];
    srv_mode_t mode;
    int lfd;
    int stop[2];
    pthread_t thread;
    atomic_int accepts;
    atomic_int replies;
    atomic_int in_conn;     /* connections being served right now */
    atomic_int max_in_conn;
    pthread_mutex_t lock;
    char received[4096]; /* every line the clients sent, in order */
} server_t;

static void send_str(int fd, const char *s, size_t len, bool one_byte)
{
    while (len > 0) {
        ssize_t n = send(fd, s, one_byte ? 1 : len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client went away */
        s += n;
        len -= (size_t)n;
        if (one_byte)
            usleep(200); /* a peer this slow is what is being tested */
    }
}

static void send_s(server_t *s, int fd, const char *text)
{
    send_str(fd, text, strlen(text), s->mode == SRV_ONE_BYTE);
}

/* Waits until fd is readable or the server is told to stop. Returns false on stop. */
static bool wait_readable(server_t *s, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};

    for (;;) {
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            return false;
        if (p[0].revents)
            return true;
    }
}

/* Reads one line from the client. Returns false when the client or the server is done. */
static bool read_line(server_t *s, int fd, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        ssize_t n;
        if (nl != NULL) {
            size_t len = (size_t)(nl - buf) + 1, used;
            pthread_mutex_lock(&s->lock);
            used = strlen(s->received);
            if (used + len < sizeof(s->received))
                memcpy(s->received + used, buf, len); /* still NUL-terminated: the array was zeroed */
            pthread_mutex_unlock(&s->lock);
            memmove(buf, buf + len, *have - len);
            *have -= len;
            return true;
        }
        if (*have >= cap - 1 || !wait_readable(s, fd))
            return false;
        n = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (n <= 0)
            return false;
        *have += (size_t)n;
    }
}

static void send_huge(int fd, const char *head, const char *tail)
{
    static char chunk[65536];
    size_t total = 10u << 20;

    memset(chunk, 'x', sizeof(chunk));
    send_str(fd, head, strlen(head), false);
    for (size_t sent = 0; sent < total; sent += sizeof(chunk))
        if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) <= 0)
            return;
    send_str(fd, tail, strlen(tail), false);
}

/* SRV_FLOOD: sends events as fast as the client takes them, and still answers each command line
 * (SRV_FLOOD_NO_REPLY: answers none). */
static void flood(server_t *s, int fd)
{
    static const char event[] = "{\"event\": \"FLOOD\", \"data\": {\"n\": 1}}\r\n";
    static char block[(sizeof(event) - 1) * 2048];
    size_t off = 0; /* into block: a partial send must not cut the stream short */
    char buf[2048];
    size_t have = 0;

    for (size_t i = 0; i < sizeof(block); i += sizeof(event) - 1)
        memcpy(block + i, event, sizeof(event) - 1);

    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN | POLLOUT}, {.fd = s->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            return;
        if (p[0].revents & POLLIN) {
            ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
            char *nl;
            if (n <= 0)
                return;
            have += (size_t)n;
            while ((nl = memchr(buf, '\n', have)) != NULL) {
                char reply[64];
                size_t len = (size_t)(nl - buf) + 1;
                int k = atomic_fetch_add(&s->replies, 1) + 1;
                snprintf(reply, sizeof(reply), "{\"return\": {\"actual\": %d}}\r\n", k);
                if (s->mode != SRV_FLOOD_NO_REPLY)
                    send_str(fd, reply, strlen(reply), false);
                memmove(buf, buf + len, have - len);
                have -= len;
            }
        } else if (p[0].revents & POLLOUT) {
            ssize_t n = send(fd, block + off, sizeof(block) - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN)
                return;
            if (n > 0)
                off = (off + (size_t)n) % sizeof(block);
        } else {
            return;
        }
    }
}

static void serve(server_t *s, int fd)
{
    char line[2048];
    size_t have = 0;
    char reply[128];

    if (s->mode == SRV_SILENT) {
        while (wait_readable(s, fd) && recv(fd, line, sizeof(line), 0) > 0)
            ;
        return;
    }
    if (s->mode == SRV_NOT_QMP) {
        send_s(s, fd, "{\"return\": {}}\r\n");
        wait_readable(s, fd);
        return;
    }
    if (s->mode == SRV_PRETTY)
        send_s(s, fd, "{\n    \"QMP\": {\n        \"version\": {},\n        \"capabilities\": [\n        ]\n    }\n}\n");
    else
        send_s(s, fd, GREETING);
    if (!read_line(s, fd, line, sizeof(line), &have))
        return;
    if (s->mode == SRV_STALL_AFTER_GREETING) {
        wait_readable(s, fd);
        return;
    }
    if (s->mode == SRV_CAPS_ERROR) {
        send_s(s, fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"No.\"}}\r\n");
        wait_readable(s, fd);
        return;
    }
    send_s(s, fd, s->mode == SRV_PRETTY ? "{\n    \"return\": {\n    }\n}\n" : "{\"return\": {}}\r\n");
    while (read_line(s, fd, line, sizeof(line), &have)) {
        int n = atomic_fetch_add(&s->replies, 1) + 1;

        snprintf(reply, sizeof(reply), "{\"return\": {\"actual\": %d}}\r\n", n);
        switch (s->mode) {
        case SRV_STALL_AFTER_CAPS:
            wait_readable(s, fd);
            return;
        case SRV_DISCONNECT_MID_REPLY:
            send_str(fd, reply, 12, false);
            return;
        case SRV_CLOSE_AFTER_REPLY:
            send_s(s, fd, reply);
            return;
        case SRV_EVENTS:
            send_s(s, fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"BALLOON_CHANGE\", "
                          "\"data\": {\"actual\": 1}}\r\n");
            /* braces, brackets and a fake reply inside strings must not confuse the framing */
            send_s(s, fd, "{\"event\": \"X\", \"data\": {\"s\": \"}{][\\\"\\\\\", \"t\": \"{\\\"return\\\": {}}\"}}"
                          "\r\n{\"event\": \"Y\"}");
            send_s(s, fd, reply);
            send_s(s, fd, "{\"event\": \"AFTER\", \"data\": {}}\r\n");
            break;
        case SRV_HUGE_REPLY:
            send_huge(fd, "{\"return\": \"", "\"}\r\n");
            return;
        case SRV_HUGE_EVENT:
            send_huge(fd, "{\"event\": \"HUGE\", \"data\": \"", "\"}\r\n");
            send_s(s, fd, reply);
            break;
        case SRV_PRETTY:
            snprintf(reply, sizeof(reply), "{\n    \"return\": {\n        \"actual\": %d\n    }\n}\n", n);
            send_s(s, fd, reply);
            break;
        case SRV_GARBAGE:
            send_s(s, fd, "Segmentation fault\r\n");
            break;
        case SRV_NUL_REPLY: {
            static const char nul_reply[] = "{\"return\": {\"a\0\": 1}}\r\n";
            send_str(fd, nul_reply, sizeof(nul_reply) - 1, false);
            break;
        }
        case SRV_DOUBLE_GREETING:
            send_s(s, fd, GREETING);
            break;
        case SRV_FLOOD:
            send_s(s, fd, reply);
            flood(s, fd);
            return;
        case SRV_FLOOD_NO_REPLY:
            flood(s, fd);
            return;
        case SRV_REPLY_ID:
            snprintf(reply, sizeof(reply), "{\"return\": {\"actual\": %d}, \"id\": 7}\r\n", n);
            send_s(s, fd, reply);
            break;
        case SRV_LATE_FIRST:
            if (n == 1) {
                /* the slow peer under test; it notices a client that gives up, as QEMU would */
                struct pollfd p = {.fd = fd, .events = POLLIN};
                poll(&p, 1, SHORT_MS * 3 / 2);
            }
            send_s(s, fd, reply);
            break;
        default:
            send_s(s, fd, reply);
            break;
        }
    }
}

static void *server_main(void *opaque)
{
    server_t *s = opaque;

    for (;;) {
        int fd, now, max;

        if (s->mode == SRV_NO_ACCEPT || !wait_readable(s, s->lfd)) {
            if (s->mode == SRV_NO_ACCEPT) {
                struct pollfd p = {.fd = s->stop[0], .events = POLLIN};
                poll(&p, 1, -1);
            }
            return NULL;
        }
        fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->accepts, 1);
        now = atomic_fetch_add(&s->in_conn, 1) + 1;
        max = atomic_load(&s->max_in_conn);
        while (now > max && !atomic_compare_exchange_weak(&s->max_in_conn, &max, now))
            ;
        serve(s, fd);
        atomic_fetch_sub(&s->in_conn, 1);
        close(fd);
    }
}

static server_t *server_start(const char *path, srv_mode_t mode)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    server_t *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    assert_true(strlen(path) < sizeof(sa.sun_path));
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->mode = mode;
    pthread_mutex_init(&s->lock, NULL);
    assert_int_equal(pipe(s->stop), 0);
    strcpy(sa.sun_path, path);
    unlink(path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, mode == SRV_NO_ACCEPT ? 0 : 8), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

/* keep_socket: leave the socket file behind, as a crashed QEMU does. */
static void server_stop_ex(server_t *s, bool keep_socket)
{
    assert_int_equal(write(s->stop[1], "x", 1), 1);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    if (!keep_socket)
        unlink(s->path);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void server_stop(server_t *s)
{
    server_stop_ex(s, false);
}

typedef struct fixture {
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/aqmp-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static const char *sock_path(void **state, const char *name)
{
    static __thread char path[256];
    fixture_t *f = *state;

    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return path;
}

/* ---- the connection ---- */

static void test_conn_normal(void **state)
{
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_NORMAL);
    bal_qmp_conn_t *c = NULL;
    bal_error_t err = {0};
    char *reply = NULL;
    uint64_t actual = 0;

    assert_int_equal(bal_qmp_conn_open(s->path, 2000, &c, &err), 0);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(bal_qmp_conn_execute(c, QUERY, 2000, &reply, &err), 0);
        assert_int_equal(sscanf(reply, "{ \"return\" : { \"actual\" :%" SCNu64, &actual), 1);
        assert_true(actual == (uint64_t)i);
        assert_null(strchr(reply, '\n')); /* the line end is not part of the reply */
        free(reply);
    }
    assert_false(bal_qmp_conn_stale(c));
    bal_qmp_conn_free(c);
    server_stop(s);
}

static void test_conn_sends_capabilities_first_and_no_id(void **state)
{
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_NORMAL);
    bal_qmp_conn_t *c = NULL;
    char *reply = NULL;

    assert_int_equal(bal_qmp_conn_open(s->path, 2000, &c, NULL), 0);
    assert_int_equal(bal_qmp_conn_execute(c, QUERY, 2000, &reply, NULL), 0);
    free(reply);
    pthread_mutex_lock(&s->lock);
    assert_string_equal(s->received, "{\"execute\":\"qmp_capabilities\"}\n" QUERY "\n");
    pthread_mutex_unlock(&s->lock);
    bal_qmp_conn_free(c);
    server_stop(s);
}

static void expect_open_fails(void **state, srv_mode_t mode, int code, int timeout_ms)
{
    server_t *s = server_start(sock_path(state, "vm.qmp"), mode);
    bal_qmp_conn_t *c = (bal_qmp_conn_t *)0x1;
    bal_error_t err = {0};
    int64_t t0 = tt_mono_ms(), elapsed;

    assert_int_equal(bal_qmp_conn_open(s->path, timeout_ms, &c, &err), code);
    elapsed = tt_mono_ms() - t0;
    assert_int_equal(err.code, code);
    assert_non_null(strstr(err.message, s->path)); /* the message names the socket */
    assert_true(c == (bal_qmp_conn_t *)0x1);       /* untouched */
    if (code == -ETIMEDOUT) {
        /* the timeout is honoured: not early, not much late */
        assert_true(elapsed >= timeout_ms - 5);
        assert_true(elapsed < timeout_ms + 2000); /* slack for a loaded machine */
    } else {
        assert_true(elapsed < timeout_ms);
    }
    server_stop(s);
}

static void test_open_never_accepted(void **state)
{
    expect_open_fails(state, SRV_NO_ACCEPT, -ETIMEDOUT, SHORT_MS);
}

static void test_open_never_answers(void **state)
{
    expect_open_fails(state, SRV_SILENT, -ETIMEDOUT, SHORT_MS);
}

static void test_open_stalls_after_greeting(void **state)
{
    expect_open_fails(state, SRV_STALL_AFTER_GREETING, -ETIMEDOUT, SHORT_MS);
}

static void test_open_not_qmp(void **state)
{
    expect_open_fails(state, SRV_NOT_QMP, -EPROTO, 2000);
}

static void test_open_capabilities_refused(void **state)
{
    expect_open_fails(state, SRV_CAPS_ERROR, -EPROTO, 2000);
}

static void test_open_no_socket(void **state)
{
    bal_qmp_conn_t *c = NULL;
    bal_error_t err = {0};
    char longpath[200];
    int fd;

    assert_int_equal(bal_qmp_conn_open(sock_path(state, "missing.qmp"), 1000, &c, &err), -ENOENT);
    assert_non_null(strstr(err.message, "missing.qmp"));

    /* a socket file left behind by a dead QEMU */
    server_stop_ex(server_start(sock_path(state, "dead.qmp"), SRV_NORMAL), true);
    assert_int_equal(bal_qmp_conn_open(sock_path(state, "dead.qmp"), 1000, &c, &err), -ESHUTDOWN);

    /* a regular file */
    fd = creat(sock_path(state, "file.qmp"), 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_true(bal_qmp_conn_open(sock_path(state, "file.qmp"), 1000, &c, &err) < 0);

    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(bal_qmp_conn_open(longpath, 1000, &c, &err), -ENAMETOOLONG);
    assert_int_equal(bal_qmp_conn_open("", 1000, &c, &err), -EINVAL);
    assert_int_equal(bal_qmp_conn_open(NULL, 1000, &c, &err), -EINVAL);
}

/* Opens a connection to a server in mode and runs one command. */
static int run_one(void **state, srv_mode_t mode, int timeout_ms, char **reply, bal_error_t *err,
                   int64_t *elapsed)
{
    server_t *s = server_start(sock_path(state, "vm.qmp"), mode);
    bal_qmp_conn_t *c = NULL;
    int64_t t0;
    int ret;

    assert_int_equal(bal_qmp_conn_open(s->path, 2000, &c, err), 0);
    t0 = tt_mono_ms();
    ret = bal_qmp_conn_execute(c, QUERY, timeout_ms, reply, err);
    if (elapsed != NULL)
        *elapsed = tt_mono_ms() - t0;
    bal_qmp_conn_free(c);
    server_stop(s);
    return ret;
}

static void test_execute_never_answers(void **state)
{
    bal_error_t err = {0};
    char *reply = (char *)"untouched";
    int64_t elapsed;

    assert_int_equal(run_one(state, SRV_STALL_AFTER_CAPS, SHORT_MS, &reply, &err, &elapsed), -ETIMEDOUT);
    assert_true(elapsed >= SHORT_MS - 5);
    assert_true(elapsed < SHORT_MS + 2000);
    assert_non_null(strstr(err.message, "did not answer within 200 ms"));
    assert_string_equal(reply, "untouched");
}

static void test_execute_disconnect_mid_reply(void **state)
{
    bal_error_t err = {0};
    char *reply = NULL;
    int64_t elapsed;

    assert_int_equal(run_one(state, SRV_DISCONNECT_MID_REPLY, 2000, &reply, &err, &elapsed), -ENOTCONN);
    assert_true(elapsed < 2000); /* noticed at once, not at the timeout */
    assert_non_null(strstr(err.message, "closed the connection"));
}

static void test_execute_one_byte_at_a_time(void **state)
{
    bal_error_t err = {0};
    char *reply = NULL;

    assert_int_equal(run_one(state, SRV_ONE_BYTE, 5000, &reply, &err, NULL), 0);
    assert_string_equal(reply, "{\"return\": {\"actual\": 1}}");
    free(reply);
}

static void test_execute_events_before_reply(void **state)
{
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_EVENTS);
    bal_qmp_conn_t *c = NULL;
    char *reply = NULL;

    assert_int_equal(bal_qmp_conn_open(s->path, 2000, &c, NULL), 0);
    for (int i = 1; i <= 3; i++) {
        char want[64];
        assert_int_equal(bal_qmp_conn_execute(c, QUERY, 2000, &reply, NULL), 0);
        snprintf(want, sizeof(want), "{\"return\": {\"actual\": %d}}", i);
        assert_string_equal(reply, want);
        free(reply);
        /* the event sent after the reply is dropped here, not taken for the next reply */
        usleep(20000);
        assert_false(bal_qmp_conn_stale(c));
    }
    bal_qmp_conn_free(c);
    server_stop(s);
}

static void test_execute_huge_reply_refused(void **state)
{
    bal_error_t err = {0};
    char *reply = NULL;

    assert_int_equal(run_one(state, SRV_HUGE_REPLY, 5000, &reply, &err, NULL), -EMSGSIZE);
    assert_null(reply);
    assert_int_equal(err.code, -EMSGSIZE);
    assert_int_equal(run_one(state, SRV_HUGE_EVENT, 5000, &reply, &err, NULL), -EMSGSIZE);
    assert_null(reply);
}

/* A peer that floods events and never answers: the command gives up after a bounded read (QMP's
 * largest message of events), long before the timeout, at a CPU cost measured here. Without the bound
 * it read events for the whole timeout, about 88% of a core. */
static void test_execute_event_flood_bounded(void **state)
{
    bal_error_t err = {0};
    char *reply = NULL;
    struct timespec c0, c1;
    int64_t elapsed, cpu_us;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    assert_int_equal(run_one(state, SRV_FLOOD_NO_REPLY, 5000, &reply, &err, &elapsed), -EMSGSIZE);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    cpu_us = (c1.tv_sec - c0.tv_sec) * 1000000 + (c1.tv_nsec - c0.tv_nsec) / 1000;
    print_message("  a flooding peer: given up after %lld ms, %lld us of this thread's CPU\n", (long long)elapsed,
                  (long long)cpu_us);
    assert_null(reply);
    assert_non_null(strstr(err.message, "bytes of events before its answer"));
    assert_true(elapsed < 2500); /* half the timeout, whatever the load */
}

/* The agent sends no "id": a reply with one answers something else and is refused. */
static void test_execute_reply_with_unsent_id_refused(void **state)
{
    bal_error_t err = {0};
    char *reply = NULL;

    assert_int_equal(run_one(state, SRV_REPLY_ID, 2000, &reply, &err, NULL), -EPROTO);
    assert_null(reply);
    assert_non_null(strstr(err.message, "with an id"));
}

static void test_execute_pretty(void **state)
{
    uint64_t actual = 0;
    char *reply = NULL;

    assert_int_equal(run_one(state, SRV_PRETTY, 2000, &reply, NULL, NULL), 0);
    assert_int_equal(sscanf(reply, "{ \"return\" : { \"actual\" :%" SCNu64, &actual), 1);
    assert_true(actual == 1);
    free(reply);
}

static void test_execute_garbage(void **state)
{
    bal_error_t err = {0};
    char *reply = NULL;

    assert_int_equal(run_one(state, SRV_GARBAGE, 2000, &reply, &err, NULL), -EPROTO);
    assert_int_equal(run_one(state, SRV_NUL_REPLY, 2000, &reply, &err, NULL), -EPROTO);
    assert_int_equal(run_one(state, SRV_DOUBLE_GREETING, 2000, &reply, &err, NULL), -EPROTO);
    assert_null(reply);
}

static void test_conn_stale_after_close(void **state)
{
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_CLOSE_AFTER_REPLY);
    bal_qmp_conn_t *c = NULL;
    char *reply = NULL;
    int64_t t0;

    assert_int_equal(bal_qmp_conn_open(s->path, 2000, &c, NULL), 0);
    assert_false(bal_qmp_conn_stale(c));
    assert_int_equal(bal_qmp_conn_execute(c, QUERY, 2000, &reply, NULL), 0);
    free(reply);
    /* the server closes right after its reply; wait for that without a fixed sleep */
    t0 = tt_mono_ms();
    while (!bal_qmp_conn_stale(c) && tt_mono_ms() - t0 < 2000)
        usleep(1000);
    assert_true(bal_qmp_conn_stale(c));
    assert_int_equal(bal_qmp_conn_execute(c, QUERY, 2000, &reply, NULL), -ENOTCONN);
    bal_qmp_conn_free(c);
    bal_qmp_conn_free(NULL);
    assert_true(bal_qmp_conn_stale(NULL));
    server_stop(s);
}

/* ---- the transport ---- */

/* The transport's own execute, past the agent's allow-list (test_bal_transport's): the servers answer
 * query-balloon, a command QEMU has that the agent never sends. */
static int execute(bal_transport_t *t, const bal_domain_info_t *d, char **reply, bal_error_t *err)
{
    return t->ops->execute(t, d, QUERY, reply, err);
}

static void test_transport_dir_listing(void **state)
{
    fixture_t *f = *state;
    server_t *a = server_start(sock_path(state, "alpha.qmp"), SRV_NORMAL);
    server_t *b = server_start(sock_path(state, "we\"ird\\name 'x'.qmp"), SRV_NORMAL);
    server_t *other = server_start(sock_path(state, "other.sock"), SRV_NORMAL);
    server_t *bare = server_start(sock_path(state, ".qmp"), SRV_NORMAL);
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t;
    char *reply = NULL;
    int fd;

    fd = creat(sock_path(state, "file.qmp"), 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mkdir(sock_path(state, "subdir.qmp"), 0700), 0);

    t = bal_qmp_socket_transport_new_dir(f->dir, 2000, NULL, &err);
    assert_non_null(t);
    assert_string_equal(t->ops->name, "qmp-socket");
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 2);
    assert_string_equal(list.items[0].name, "alpha"); /* sorted */
    assert_string_equal(list.items[1].name, "we\"ird\\name 'x'");
    assert_string_equal(list.items[0].uuid, "");
    assert_true(list.items[0].instance != list.items[1].instance);

    assert_int_equal(execute(t, &list.items[1], &reply, &err), 0);
    assert_string_equal(reply, "{\"return\": {\"actual\": 1}}");
    free(reply);
    assert_int_equal(atomic_load(&b->accepts), 1);

    /* a name that is not a socket in the directory */
    {
        bal_domain_info_t d = {.name = (char *)"../alpha"};
        assert_int_equal(execute(t, &d, &reply, &err), -ENOENT);
        d.name = (char *)"nobody";
        assert_int_equal(execute(t, &d, &reply, &err), -ENOENT);
    }
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(a);
    server_stop(b);
    server_stop(other);
    server_stop(bare);
}

static void test_transport_dir_missing_or_trailing_slash(void **state)
{
    fixture_t *f = *state;
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t;
    char dir[128];
    server_t *s;

    snprintf(dir, sizeof(dir), "%s/not-yet", f->dir);
    t = bal_qmp_socket_transport_new_dir(dir, 0, NULL, &err);
    assert_non_null(t);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 0);
    bal_transport_free(t);

    assert_null(bal_qmp_socket_transport_new_dir("", 0, NULL, &err));
    assert_int_equal(err.code, -EINVAL);
    assert_null(bal_qmp_socket_transport_new_dir(NULL, 0, NULL, &err));

    s = server_start(sock_path(state, "vm.qmp"), SRV_NORMAL);
    snprintf(dir, sizeof(dir), "%s//", f->dir);
    t = bal_qmp_socket_transport_new_dir(dir, 0, NULL, &err);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 1);
    {
        char *reply = NULL;
        assert_int_equal(execute(t, &list.items[0], &reply, &err), 0);
        free(reply);
    }
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

typedef struct logbook {
    pthread_mutex_t lock;
    int count;
    char last[512];
} logbook_t;

static void log_cb(void *opaque, bal_log_level_t level, const char *message)
{
    logbook_t *lb = opaque;
    (void)level;
    pthread_mutex_lock(&lb->lock);
    lb->count++;
    snprintf(lb->last, sizeof(lb->last), "%s", message);
    pthread_mutex_unlock(&lb->lock);
}

/* '..qmp' and '...qmp' would be the domains '.' and '..', which collectd cannot store (csv refuses
 * them at every value): not listed, and said once, not at every listing. Neither can a pair be named
 * so. */
static void test_transport_refuses_dot_names(void **state)
{
    fixture_t *f = *state;
    logbook_t lb = {.lock = PTHREAD_MUTEX_INITIALIZER};
    bal_logger_t logger = {.log = log_cb, .opaque = &lb};
    server_t *dot = server_start(sock_path(state, "..qmp"), SRV_NORMAL);
    server_t *dotdot = server_start(sock_path(state, "...qmp"), SRV_NORMAL);
    server_t *ok = server_start(sock_path(state, "....qmp"), SRV_NORMAL); /* '...' is a name like any */
    bal_socket_spec_t pair[] = {{.name = "..", .path = dot->path}};
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, 2000, &logger, &err);
    char *reply = NULL;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
        assert_int_equal(list.count, 1);
        assert_string_equal(list.items[0].name, "...");
        bal_domain_list_free(&list);
    }
    assert_int_equal(lb.count, 2); /* one line for each name, once */
    assert_non_null(strstr(lb.last, "would be the domain '"));
    {
        bal_domain_info_t d = {.name = (char *)"."};
        assert_int_equal(execute(t, &d, &reply, &err), -ENOENT);
        d.name = (char *)"..";
        assert_int_equal(execute(t, &d, &reply, &err), -ENOENT);
    }
    bal_transport_free(t);
    assert_null(bal_qmp_socket_transport_new_pairs(pair, 1, 0, NULL, &err));
    assert_int_equal(err.code, -EINVAL);
    assert_non_null(strstr(err.message, "'..'"));
    server_stop(dot);
    server_stop(dotdot);
    server_stop(ok);
}

/* A QMPSocketDir that does not exist, or stops existing, reads as no domain, and is said once (then
 * once when it is back), not at every listing. */
static void test_transport_missing_dir_said_once(void **state)
{
    fixture_t *f = *state;
    logbook_t lb = {.lock = PTHREAD_MUTEX_INITIALIZER};
    bal_logger_t logger = {.log = log_cb, .opaque = &lb};
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t;
    char dir[128];

    snprintf(dir, sizeof(dir), "%s/later", f->dir);
    t = bal_qmp_socket_transport_new_dir(dir, 2000, &logger, &err);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
        assert_int_equal(list.count, 0);
    }
    assert_int_equal(lb.count, 1);
    assert_non_null(strstr(lb.last, "does not exist"));
    assert_non_null(strstr(lb.last, "/later'"));
    assert_false(bal_transport_take_changes(t));

    assert_int_equal(mkdir(dir, 0700), 0);
    assert_true(bal_transport_take_changes(t)); /* it appeared */
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(lb.count, 2);
    assert_non_null(strstr(lb.last, "exists now"));
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(lb.count, 2);

    assert_int_equal(rmdir(dir), 0); /* vanished */
    assert_true(bal_transport_take_changes(t));
    for (int i = 0; i < 3; i++)
        assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(lb.count, 3);
    assert_non_null(strstr(lb.last, "does not exist"));
    bal_transport_free(t);
}

/* One connection per domain, reused; dropped on error; reopened when QEMU restarts. */
static void test_transport_connection_lifecycle(void **state)
{
    fixture_t *f = *state;
    logbook_t lb = {.lock = PTHREAD_MUTEX_INITIALIZER};
    bal_logger_t logger = {.log = log_cb, .opaque = &lb};
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_NORMAL);
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t;
    char *reply = NULL;
    uint64_t first_instance;

    t = bal_qmp_socket_transport_new_dir(f->dir, SHORT_MS, &logger, &err);
    assert_non_null(t);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 1);
    first_instance = list.items[0].instance;
    for (int i = 1; i <= 5; i++) {
        char want[64];
        assert_int_equal(execute(t, &list.items[0], &reply, &err), 0);
        snprintf(want, sizeof(want), "{\"return\": {\"actual\": %d}}", i);
        assert_string_equal(reply, want);
        free(reply);
    }
    assert_int_equal(atomic_load(&s->accepts), 1); /* reused across cycles */
    assert_true(lb.count >= 1);                     /* the logger was used */

    /* QEMU restarts: a new socket file, a new instance, a new connection, no failed cycle */
    server_stop(s);
    s = server_start(sock_path(state, "vm.qmp"), SRV_NORMAL);
    bal_domain_list_free(&list);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 1);
    assert_true(list.items[0].instance != first_instance);
    assert_int_equal(execute(t, &list.items[0], &reply, &err), 0);
    free(reply);
    assert_int_equal(atomic_load(&s->accepts), 1);

    /* QEMU dies, socket left behind: the domain still lists (the file is there) but is not running */
    server_stop_ex(s, true);
    assert_int_equal(execute(t, &list.items[0], &reply, &err), -ESHUTDOWN);
    /* the file goes: no longer listed, and the command says it is gone */
    unlink(sock_path(state, "vm.qmp"));
    bal_domain_list_free(&list);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 0);
    {
        bal_domain_info_t d = {.name = (char *)"vm"};
        assert_int_equal(execute(t, &d, &reply, &err), -ENOENT);
    }
    bal_domain_list_free(&list);
    bal_transport_free(t);
}

/* Issue 11, item 1: within a descriptor budget, the transport keeps at most max_conns connections open
 * (the first ones made); the other domains are connected for each command and closed after it, every
 * command still answered, and that is said once. A domain that goes gives its place to another. */
static void notice_cb(void *opaque, bal_log_level_t level, const char *message)
{
    if (level <= BAL_LOG_NOTICE)
        log_cb(opaque, level, message);
}

static void test_transport_keeps_connections_within_budget(void **state)
{
    fixture_t *f = *state;
    logbook_t lb = {.lock = PTHREAD_MUTEX_INITIALIZER};
    bal_logger_t logger = {.log = notice_cb, .opaque = &lb};
    server_t *s[5];
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t;
    char name[16];
    int open_now;

    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "vm%d.qmp", i);
        s[i] = server_start(sock_path(state, name), SRV_NORMAL);
    }
    t = bal_qmp_socket_transport_new_dir(f->dir, 2000, &logger, &err);
    bal_qmp_socket_transport_set_max_connections(t, 2);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 5);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < list.count; i++) {
            char *reply = NULL;
            int64_t t0 = tt_mono_ms();

            assert_int_equal(execute(t, &list.items[i], &reply, &err), 0);
            free(reply);
            /* a connection given up is closed: its server sees that at once */
            while (i >= 2 && atomic_load(&s[i]->in_conn) > 0 && tt_mono_ms() - t0 < 2000)
                usleep(1000);
        }
        open_now = 0;
        for (int i = 0; i < 5; i++)
            open_now += atomic_load(&s[i]->in_conn);
        assert_int_equal(open_now, 2);
    }
    assert_int_equal(atomic_load(&s[0]->accepts), 1); /* kept: one connection for every command */
    assert_int_equal(atomic_load(&s[1]->accepts), 1);
    assert_int_equal(atomic_load(&s[4]->accepts), 3); /* beyond the budget: one per command */
    assert_int_equal(lb.count, 1);
    assert_non_null(strstr(lb.last, "more QMP sockets than the 2 connections kept open"));

    server_stop(s[0]); /* vm0 goes: its place is vm2's, the next to connect */
    bal_domain_list_free(&list);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 4);
    for (size_t i = 0; i < list.count; i++) {
        char *reply = NULL;
        assert_int_equal(execute(t, &list.items[i], &reply, &err), 0);
        free(reply);
    }
    assert_int_equal(atomic_load(&s[2]->in_conn), 1);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    for (int i = 1; i < 5; i++)
        server_stop(s[i]);
    assert_int_equal(lb.count, 1); /* said once */
}

/* A peer that closes between cycles is reconnected before the command, not after a failure. */
static void test_transport_reconnects_after_close(void **state)
{
    fixture_t *f = *state;
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_CLOSE_AFTER_REPLY);
    bal_domain_list_t list = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, 2000, NULL, NULL);
    char *reply = NULL;

    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    for (int i = 1; i <= 3; i++) {
        int64_t t0 = tt_mono_ms();
        assert_int_equal(execute(t, &list.items[0], &reply, NULL), 0);
        free(reply);
        /* let the close arrive, so that the next command finds it */
        while (atomic_load(&s->in_conn) > 0 && tt_mono_ms() - t0 < 2000)
            usleep(1000);
    }
    assert_int_equal(atomic_load(&s->accepts), 3);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

/* Dates the directory 10 s back, as if nothing had changed in it for a while: a listing right after a
 * change is followed by one more (the kernel's coarse clock could hide a second change in the same
 * tick), and the tests that check "no change" need the quiet state. */
static void age_dir(const char *dir)
{
    struct timespec t[2];

    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= 10;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, dir, t, 0), 0);
}

/* A QEMU restarted between listings (its socket replaced) is told by take_changes, so that the agent
 * lists again and sees the new instance; a reconnect to the same socket is no change. */
static void test_transport_sees_restart(void **state)
{
    fixture_t *f = *state;
    const char *path = sock_path(state, "vm.qmp");
    server_t *s = server_start(path, SRV_CLOSE_AFTER_REPLY);
    bal_domain_list_t list = {0}, again = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, 2000, NULL, NULL);
    char *reply = NULL;
    int64_t t0;

    age_dir(f->dir);
    assert_false(bal_transport_take_changes(t)); /* nothing listed yet: the agent lists anyway */
    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(list.count, 1);
    assert_false(bal_transport_take_changes(t));
    for (int i = 0; i < 2; i++) { /* the second command reconnects to the same socket */
        t0 = tt_mono_ms();
        assert_int_equal(execute(t, &list.items[0], &reply, NULL), 0);
        free(reply);
        while (atomic_load(&s->in_conn) > 0 && tt_mono_ms() - t0 < 2000)
            usleep(1000);
    }
    assert_int_equal(atomic_load(&s->accepts), 2);
    assert_false(bal_transport_take_changes(t));

    server_stop(s); /* removes the socket; the new QEMU makes another */
    s = server_start(path, SRV_CLOSE_AFTER_REPLY);
    assert_int_equal(execute(t, &list.items[0], &reply, NULL), 0);
    free(reply);
    assert_true(bal_transport_take_changes(t));
    age_dir(f->dir);
    assert_int_equal(bal_transport_list_domains(t, &again, NULL), 0);
    assert_false(bal_transport_take_changes(t)); /* listed: nothing more to tell */
    assert_int_equal(again.count, 1);
    assert_true(again.items[0].instance != list.items[0].instance);
    bal_domain_list_free(&again);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

/* Issue 11, item 4: a QEMU restarted behind its socket, the socket gone for a while. The read that
 * fails drops the domain (the list no longer has it); its new socket makes take_changes true at once,
 * so the agent lists again at its next read instead of at the next scheduled refresh. */
static void test_transport_sees_socket_come_back(void **state)
{
    fixture_t *f = *state;
    const char *path = sock_path(state, "vm.qmp");
    server_t *s = server_start(path, SRV_NORMAL);
    bal_domain_list_t list = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, 2000, NULL, NULL);
    char *reply = NULL;

    age_dir(f->dir);
    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(list.count, 1);
    server_stop(s); /* QEMU exits and removes its socket */
    assert_int_equal(execute(t, &list.items[0], &reply, NULL), -ENOENT);
    assert_true(bal_transport_take_changes(t));
    bal_domain_list_free(&list);
    age_dir(f->dir);
    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(list.count, 0);
    for (int i = 0; i < 3; i++)
        assert_false(bal_transport_take_changes(t)); /* gone, and quiet: no listing needed */

    s = server_start(path, SRV_NORMAL); /* the new QEMU */
    assert_true(bal_transport_take_changes(t));
    bal_domain_list_free(&list);
    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(list.count, 1);
    assert_int_equal(execute(t, &list.items[0], &reply, NULL), 0);
    free(reply);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

/* The pairs form: take_changes stats each configured socket. */
static void test_transport_pairs_see_socket_come_back(void **state)
{
    const char *path = sock_path(state, "x.sock");
    bal_socket_spec_t pairs[] = {{.name = "vm", .path = path}};
    bal_transport_t *t = bal_qmp_socket_transport_new_pairs(pairs, 1, 2000, NULL, NULL);
    bal_domain_list_t list = {0};
    server_t *s;

    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(list.count, 0);
    assert_false(bal_transport_take_changes(t));
    s = server_start(path, SRV_NORMAL);
    assert_true(bal_transport_take_changes(t));
    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(list.count, 1);
    assert_false(bal_transport_take_changes(t));
    server_stop(s);
    assert_true(bal_transport_take_changes(t));
    bal_domain_list_free(&list);
    bal_transport_free(t);
}

/* A timed-out command drops the connection: the late reply can never pass for the next one. */
static void test_transport_drops_after_timeout(void **state)
{
    fixture_t *f = *state;
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_STALL_AFTER_CAPS);
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, SHORT_MS, NULL, NULL);
    char *reply = NULL;
    int64_t t0;

    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    t0 = tt_mono_ms();
    assert_int_equal(execute(t, &list.items[0], &reply, &err), -ETIMEDOUT);
    assert_true(tt_mono_ms() - t0 < SHORT_MS + 2000);
    server_stop(s);
    s = server_start(sock_path(state, "vm.qmp"), SRV_NORMAL);
    bal_domain_list_free(&list);
    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(execute(t, &list.items[0], &reply, &err), 0);
    assert_string_equal(reply, "{\"return\": {\"actual\": 1}}");
    free(reply);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

/* The same, with the same QEMU: its late answer must not be read as the next command's. */
static void test_transport_late_reply_not_misread(void **state)
{
    fixture_t *f = *state;
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_LATE_FIRST);
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, SHORT_MS, NULL, NULL);
    char *reply = NULL;

    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(execute(t, &list.items[0], &reply, &err), -ETIMEDOUT);
    assert_int_equal(execute(t, &list.items[0], &reply, &err), 0);
    assert_string_equal(reply, "{\"return\": {\"actual\": 2}}");
    free(reply);
    assert_int_equal(atomic_load(&s->accepts), 2);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

/* A peer that floods events costs bounded time, never a hang. */
static void test_transport_event_flood(void **state)
{
    fixture_t *f = *state;
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_FLOOD);
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, 2000, NULL, NULL);
    int64_t t0 = tt_mono_ms();

    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    for (int i = 0; i < 3; i++) {
        char *reply = NULL;
        assert_int_equal(execute(t, &list.items[0], &reply, &err), 0);
        assert_non_null(strstr(reply, "\"actual\""));
        free(reply);
    }
    /* each command costs at most a connect and a reply timeout, plus a bounded drain */
    assert_true(tt_mono_ms() - t0 < 3 * 2 * 2000 + 3000);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

static void test_transport_pairs(void **state)
{
    server_t *s = server_start(sock_path(state, "x.sock"), SRV_NORMAL);
    bal_socket_spec_t pairs[] = {
        {.name = "vm-one", .path = s->path},
        {.name = "vm-two", .path = sock_path(state, "absent.sock")},
    };
    bal_socket_spec_t dup[] = {{.name = "a", .path = "/x"}, {.name = "a", .path = "/y"}};
    bal_socket_spec_t noname[] = {{.name = "", .path = "/x"}};
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t;
    char *reply = NULL;

    t = bal_qmp_socket_transport_new_pairs(pairs, 2, 2000, NULL, &err);
    assert_non_null(t);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 1); /* the absent socket is not running */
    assert_string_equal(list.items[0].name, "vm-one");
    assert_int_equal(execute(t, &list.items[0], &reply, &err), 0);
    free(reply);
    {
        bal_domain_info_t d = {.name = (char *)"vm-two"};
        assert_int_equal(execute(t, &d, &reply, &err), -ENOENT);
        d.name = (char *)"vm-three";
        assert_int_equal(execute(t, &d, &reply, &err), -ENOENT);
        assert_non_null(strstr(err.message, "'vm-three'"));
    }
    bal_domain_list_free(&list);
    bal_transport_free(t);

    assert_null(bal_qmp_socket_transport_new_pairs(dup, 2, 0, NULL, &err));
    assert_int_equal(err.code, -EINVAL);
    assert_null(bal_qmp_socket_transport_new_pairs(noname, 1, 0, NULL, &err));
    t = bal_qmp_socket_transport_new_pairs(NULL, 0, 0, NULL, &err);
    assert_non_null(t);
    assert_int_equal(bal_transport_list_domains(t, &list, &err), 0);
    assert_int_equal(list.count, 0);
    bal_transport_free(t);
    server_stop(s);
}

typedef struct hammer {
    bal_transport_t *t;
    const bal_domain_info_t *dom;
    int ok;
} hammer_t;

static void *hammer_main(void *opaque)
{
    hammer_t *h = opaque;

    for (int i = 0; i < 50; i++) {
        char *reply = NULL;
        if (h->t->ops->execute(h->t, h->dom, QUERY, &reply, NULL) == 0 &&
            strncmp(reply, "{\"return\": {\"actual\": ", 22) == 0)
            h->ok++;
        free(reply);
    }
    return NULL;
}

/* Several threads on the same domain and on different domains, with listings in between. */
static void test_transport_threads(void **state)
{
    fixture_t *f = *state;
    server_t *a = server_start(sock_path(state, "a.qmp"), SRV_NORMAL);
    server_t *b = server_start(sock_path(state, "b.qmp"), SRV_EVENTS);
    bal_domain_list_t list = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, 5000, NULL, NULL);
    hammer_t h[4];
    pthread_t th[4];

    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(list.count, 2);
    for (int i = 0; i < 4; i++) {
        h[i] = (hammer_t){.t = t, .dom = &list.items[i % 2]};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        bal_domain_list_t again = {0};
        assert_int_equal(bal_transport_list_domains(t, &again, NULL), 0);
        assert_int_equal(again.count, 2);
        bal_domain_list_free(&again);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(h[i].ok, 50);
    }
    /* one connection per domain, commands serialized on it */
    assert_int_equal(atomic_load(&a->accepts), 1);
    assert_int_equal(atomic_load(&b->accepts), 1);
    assert_int_equal(atomic_load(&a->replies), 100);
    assert_int_equal(atomic_load(&b->replies), 100);
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(a);
    server_stop(b);
}

/* The allow-list applies to this transport like to any other. */
static void test_transport_refuses_forbidden(void **state)
{
    fixture_t *f = *state;
    server_t *s = server_start(sock_path(state, "vm.qmp"), SRV_NORMAL);
    bal_domain_list_t list = {0};
    bal_error_t err = {0};
    bal_transport_t *t = bal_qmp_socket_transport_new_dir(f->dir, 2000, NULL, NULL);
    char *reply = NULL;

    assert_int_equal(bal_transport_list_domains(t, &list, NULL), 0);
    assert_int_equal(bal_transport_execute(t, &list.items[0], "{\"execute\":\"quit\"}", &reply, &err), -EPERM);
    assert_int_equal(atomic_load(&s->accepts), 0); /* not even connected */
    bal_domain_list_free(&list);
    bal_transport_free(t);
    server_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conn_normal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_sends_capabilities_first_and_no_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_never_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_never_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_stalls_after_greeting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_not_qmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_capabilities_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_no_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_never_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_disconnect_mid_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_one_byte_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_events_before_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_huge_reply_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_event_flood_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_reply_with_unsent_id_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_pretty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_stale_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_dir_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_dir_missing_or_trailing_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_connection_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_keeps_connections_within_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_reconnects_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_sees_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_sees_socket_come_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_pairs_see_socket_come_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_refuses_dot_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_missing_dir_said_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_drops_after_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_late_reply_not_misread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_event_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_refuses_forbidden, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
