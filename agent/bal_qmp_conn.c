#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/bal_json.h"
#include "agent/bal_qmp.h"
#include "agent/bal_qmp_conn.h"

/* The receive buffer starts with room for a guest-stats reply (about 700 bytes) and doubles while a
 * message needs more, up to a whole message of the maximum size plus one read beyond it. It is freed
 * whenever it holds nothing, so that thousands of idle connections hold no buffer at all. */
#define BUF_START 1024
#define READ_MIN 256 /* grow rather than read fewer bytes than this */
#define BUF_LIMIT (BAL_QMP_MAX_REPLY + 8192)
/* What bal_qmp_conn_stale reads at most before it gives up on a connection. */
#define STALE_DRAIN_LIMIT (256 * 1024)
/* The events one command may read before its reply (or the greeting): QEMU sends a few between two
 * commands; a peer that floods them would otherwise keep a pool thread reading for the whole timeout.
 * As much as one message may hold, so that a burst that a real QEMU could send still passes. */
#define EVENTS_LIMIT BAL_QMP_MAX_REPLY

struct bal_qmp_conn {
    int fd;
    char *path;
    int timeout_ms; /* of the current operation, for messages */
    char *buf;      /* bytes read and not yet consumed; a message in progress starts at 0 */
    size_t len, cap;
    /* The framing scanner: QEMU ends each message with CRLF, but pretty=on spreads one over several
     * lines, so a message is a balanced top-level {...}, found by counting outside strings. On the way
     * it notes the message's top-level keys that tell its kind. */
    size_t scan;
    unsigned depth;
    uint64_t objects;      /* bit d set: the container open at depth d + 1 is an object, else an array */
    bool in_msg, in_str, esc, eof;
    bool just_sent;        /* a command went out and nothing was read since: wait before reading */
    bool want_key, in_key; /* at depth 1: a string here is a key; the string being read is one */
    size_t key_start;      /* of the key being read, after its quote */
    unsigned keys, dup_keys; /* KEY_* seen at the top level, and seen more than once */
};

_Static_assert(BAL_JSON_MAX_DEPTH <= 64, "the framing scanner keeps one bit per level in objects");

/* The top-level keys that tell a message's kind; an "id" only echoes one a command sent. */
enum { KEY_RETURN = 1, KEY_ERROR = 2, KEY_EVENT = 4, KEY_QMP = 8, KEY_ID = 16 };

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();

    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Waits until fd is ready for events or the deadline passes. Returns 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int left = remaining_ms(deadline);
        int n = poll(&pfd, 1, left);
        if (n > 0)
            return 0; /* readable, writable, or an error/hangup that the next call will report */
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Notes the top-level key that ends at buf[end] (its closing quote), as written: QEMU never escapes
 * a key, and an escaped one is only not taken for a kind. */
static void note_key(bal_qmp_conn_t *c, size_t end)
{
    static const struct {
        const char *name;
        unsigned bit;
    } kinds[] = {{"return", KEY_RETURN}, {"error", KEY_ERROR}, {"event", KEY_EVENT}, {"QMP", KEY_QMP},
                 {"id", KEY_ID}};
    size_t len = end - c->key_start;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].name) == len && memcmp(c->buf + c->key_start, kinds[i].name, len) == 0) {
            if (c->keys & kinds[i].bit)
                c->dup_keys |= kinds[i].bit;
            c->keys |= kinds[i].bit;
        }
    }
}

/* scan_message's work inside a message, from c->scan on: returns 1 at its end (length in *mlen), 0
 * when the buffer ends first, or -EPROTO. The scanner's state is kept in locals for the loop and
 * written back at the end: through c, every byte's step reloaded and stored it (a char store may
 * alias anything), and the scan was a sixth of the agent's instructions per command. */
static int scan_inside(bal_qmp_conn_t *c, size_t *mlen, bal_error_t *err)
{
    const char *buf = c->buf;
    size_t i = c->scan, len = c->len, key_start = c->key_start;
    unsigned depth = c->depth;
    uint64_t objects = c->objects;
    bool in_str = c->in_str, esc = c->esc, in_key = c->in_key, want_key = c->want_key;
    int ret = 0;

    while (i < len) {
        char ch = buf[i++];

        if (ch == '\0') {
            ret = bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a NUL byte.", c->path);
            break;
        }
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (ch == '\\') {
                esc = true;
            } else if (ch == '"') {
                in_str = false;
                if (in_key) {
                    c->key_start = key_start;
                    note_key(c, i - 1);
                }
                in_key = false;
            }
        } else if (ch == '"') {
            in_str = true;
            in_key = depth == 1 && want_key;
            key_start = i;
            want_key = false;
        } else if (ch == ',' && depth == 1) {
            want_key = true;
        } else if (ch == '{' || ch == '[') {
            if (depth >= BAL_JSON_MAX_DEPTH) {
                ret = bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a message nested more than %d levels "
                                    "deep.", c->path, BAL_JSON_MAX_DEPTH);
                break;
            }
            if (ch == '{')
                objects |= UINT64_C(1) << depth;
            else
                objects &= ~(UINT64_C(1) << depth);
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (((objects >> (depth - 1)) & 1) != (ch == '}')) {
                ret = bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a '%c' that closes nothing it opened.",
                                    c->path, ch);
                break;
            }
            if (--depth > 0)
                continue;
            c->in_msg = false;
            *mlen = i;
            ret = 1;
            break;
        }
    }
    c->scan = i;
    c->key_start = key_start;
    c->depth = depth;
    c->objects = objects;
    c->in_str = in_str;
    c->esc = esc;
    c->in_key = in_key;
    c->want_key = want_key;
    return ret;
}

/* Finds the next complete message in the buffer. Returns 1 with its length in *mlen (it starts at
 * buf[0]), 0 when more bytes are needed, or -EPROTO when the peer sends something else than objects:
 * a bracket that closes what it did not open, nesting deeper than any QMP message (the reply parsers
 * refuse it too), or a NUL byte, which no JSON text holds and which would cut a reply short as a C
 * string. */
static int scan_message(bal_qmp_conn_t *c, size_t *mlen, bal_error_t *err)
{
    while (c->scan < c->len) {
        char ch;

        if (c->in_msg)
            return scan_inside(c, mlen, err);
        ch = c->buf[c->scan++];
        if (ch == '\0')
            return bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a NUL byte.", c->path);
        if (is_blank(ch))
            continue;
        if (ch != '{')
            return bal_error_set(err, -EPROTO, "The QMP socket '%s' sent something that is not a JSON object.",
                                 c->path);
        /* drop the whitespace before it, so that a message always starts at buf[0] */
        memmove(c->buf, c->buf + c->scan - 1, c->len - (c->scan - 1));
        c->len -= c->scan - 1;
        c->scan = 1;
        c->in_msg = true;
        c->depth = 1;
        c->objects = 1;
        c->in_str = c->esc = c->in_key = false;
        c->want_key = true;
        c->keys = c->dup_keys = 0;
    }
    if (!c->in_msg)
        c->len = c->scan = 0; /* only whitespace so far */
    return 0;
}

/* Drops the buffer when it holds nothing. */
static void release_if_empty(bal_qmp_conn_t *c)
{
    if (c->len > 0 || c->buf == NULL)
        return;
    free(c->buf);
    c->buf = NULL;
    c->cap = c->scan = 0;
}

/* Drops the first n bytes, and with them the line end QEMU sends after a message, so that the buffer
 * is empty (and released) between commands. */
static void consume(bal_qmp_conn_t *c, size_t n)
{
    while (n < c->len && is_blank(c->buf[n]))
        n++;
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->scan = c->scan > n ? c->scan - n : 0;
    release_if_empty(c);
}

/* Reads what the socket has, without waiting. Returns bytes read (0 at EOF, with c->eof set), -EAGAIN
 * when nothing is there, or -errno. */
static ssize_t read_some(bal_qmp_conn_t *c, bal_error_t *err)
{
    ssize_t n;

    if (c->cap - c->len < READ_MIN) {
        size_t ncap = c->cap == 0 ? BUF_START : c->cap * 2;
        char *nbuf;
        if (ncap > BUF_LIMIT)
            ncap = BUF_LIMIT;
        if (ncap > c->cap) {
            nbuf = realloc(c->buf, ncap);
            if (nbuf == NULL)
                return bal_error_set(err, -ENOMEM, "Out of memory while reading from the QMP socket '%s'.",
                                     c->path);
            c->buf = nbuf;
            c->cap = ncap;
        }
    }
    for (;;) {
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            release_if_empty(c);
            return -EAGAIN;
        }
        if (errno == ECONNRESET || errno == EPIPE) {
            c->eof = true;
            release_if_empty(c);
            return 0;
        }
        return bal_error_set(err, -errno, "Reading from the QMP socket '%s' failed: %s.", c->path,
                             strerror(errno));
    }
    if (n == 0)
        c->eof = true;
    c->len += (size_t)n;
    release_if_empty(c);
    return n;
}

/* The next whole message, waiting until the deadline. Returns 0 with its length in *mlen (the message
 * is at c->buf; consume() it when done), or a negative errno with err filled. */
static int next_message(bal_qmp_conn_t *c, int64_t deadline, size_t *mlen, bal_error_t *err)
{
    for (;;) {
        int ret = scan_message(c, mlen, err);
        ssize_t n;

        if (ret < 0)
            return ret;
        if (ret > 0 ? *mlen > BAL_QMP_MAX_REPLY : c->len > BAL_QMP_MAX_REPLY)
            return bal_error_set(err, -EMSGSIZE,
                                 "The QMP socket '%s' sent a message larger than %d bytes; it was refused.",
                                 c->path, BAL_QMP_MAX_REPLY);
        if (ret > 0)
            return 0;
        if (c->eof)
            return bal_error_set(err, -ENOTCONN, "The QMP socket '%s' closed the connection.", c->path);
        /* Right after a command the reply cannot be there yet: a read would only say so. */
        n = c->just_sent ? -EAGAIN : read_some(c, err);
        c->just_sent = false;
        if (n >= 0)
            continue;
        if (n != -EAGAIN)
            return (int)n;
        ret = wait_fd(c->fd, POLLIN, deadline);
        if (ret == -ETIMEDOUT)
            return bal_error_set(err, -ETIMEDOUT, "The QMP socket '%s' did not answer within %d ms.", c->path,
                                 c->timeout_ms);
        if (ret < 0)
            return bal_error_set(err, ret, "Waiting on the QMP socket '%s' failed: %s.", c->path, strerror(-ret));
    }
}

typedef enum msg_kind { MSG_REPLY, MSG_EVENT, MSG_GREETING } msg_kind_t;

/* The kind of the message just scanned, from its top-level keys. Its JSON is not checked here: events
 * and the greeting are dropped, and a reply goes to the reply parsers (bal_qmp.h), which check it
 * strictly; parsing every message here as well cost a tenth of the agent's CPU per command. */
static int classify(const bal_qmp_conn_t *c, msg_kind_t *kind, bal_error_t *err)
{
    if (c->dup_keys != 0)
        return bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a message with a repeated key.", c->path);
    if (c->keys & KEY_EVENT)
        *kind = MSG_EVENT;
    else if (c->keys & (KEY_RETURN | KEY_ERROR))
        *kind = MSG_REPLY;
    else if (c->keys & KEY_QMP)
        *kind = MSG_GREETING;
    else
        return bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a message that is neither a reply nor an "
                             "event.", c->path);
    return 0;
}

/* Reads messages until one of the wanted kind, dropping events, at most EVENTS_LIMIT bytes of them.
 * Returns 0 with its length in *mlen. */
static int read_until(bal_qmp_conn_t *c, msg_kind_t wanted, int64_t deadline, size_t *mlen, bal_error_t *err)
{
    size_t events = 0;

    for (;;) {
        msg_kind_t kind;
        int ret = next_message(c, deadline, mlen, err);

        if (ret < 0)
            return ret;
        ret = classify(c, &kind, err);
        if (ret < 0)
            return ret;
        /* The agent never sends an "id" (libvirt refuses one), so a reply with one answers some
         * other command: taking it would take another's answer for ours. */
        if (kind == MSG_REPLY && wanted == MSG_REPLY && (c->keys & KEY_ID))
            return bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a reply with an id, to no command the "
                                 "agent sent; it was refused.", c->path);
        if (kind == wanted)
            return 0;
        if (kind != MSG_EVENT && wanted == MSG_GREETING)
            return bal_error_set(err, -EPROTO, "The QMP socket '%s' did not start with a QMP greeting.", c->path);
        if (kind != MSG_EVENT)
            return bal_error_set(err, -EPROTO, "The QMP socket '%s' sent a second greeting instead of a reply.",
                                 c->path);
        events += *mlen;
        if (events > EVENTS_LIMIT)
            return bal_error_set(err, -EMSGSIZE, "The QMP socket '%s' sent more than %d bytes of events before "
                                 "its answer; the command was given up.", c->path, EVENTS_LIMIT);
        consume(c, *mlen);
    }
}

/* Sends command and its line end in one message: one system call, and one wake-up of the peer. */
static int send_line(bal_qmp_conn_t *c, const char *command, int64_t deadline, bal_error_t *err)
{
    struct iovec iov[2] = {{.iov_base = (void *)command, .iov_len = strlen(command)},
                           {.iov_base = (void *)"\n", .iov_len = 1}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};

    while (msg.msg_iovlen > 0) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        int ret;

        if (n > 0) {
            /* a partial send: skip what went out */
            while (msg.msg_iovlen > 0 && (size_t)n >= msg.msg_iov->iov_len) {
                n -= (ssize_t)msg.msg_iov->iov_len;
                msg.msg_iov++;
                msg.msg_iovlen--;
            }
            if (msg.msg_iovlen > 0) {
                msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
                msg.msg_iov->iov_len -= (size_t)n;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE)
            return bal_error_set(err, -ENOTCONN, "The QMP socket '%s' closed the connection.", c->path);
        if (n < 0 && errno == ECONNRESET)
            return bal_error_set(err, -ENOTCONN, "The QMP socket '%s' reset the connection.", c->path);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return bal_error_set(err, -errno, "Writing to the QMP socket '%s' failed: %s.", c->path,
                                 strerror(errno));
        ret = wait_fd(c->fd, POLLOUT, deadline);
        if (ret == -ETIMEDOUT)
            return bal_error_set(err, -ETIMEDOUT, "The QMP socket '%s' did not take a command within %d ms.",
                                 c->path, c->timeout_ms);
        if (ret < 0)
            return bal_error_set(err, ret, "Waiting on the QMP socket '%s' failed: %s.", c->path, strerror(-ret));
    }
    return 0;
}

/* Sends command and reads its reply; the caller owns the deadline. */
static int run_command(bal_qmp_conn_t *c, const char *command, int64_t deadline, char **reply, bal_error_t *err)
{
    size_t mlen, end;
    char *r;
    int ret;

    ret = send_line(c, command, deadline, err);
    c->just_sent = ret == 0;
    if (ret == 0)
        ret = read_until(c, MSG_REPLY, deadline, &mlen, err);
    if (ret < 0)
        return ret;
    end = mlen;
    while (end < c->len && is_blank(c->buf[end]))
        end++;
    if (end == c->len && c->cap > mlen) {
        /* The usual case: the buffer holds the reply and its line end, so it becomes the reply. */
        r = c->buf;
        c->buf = NULL;
        c->len = c->cap = c->scan = 0;
    } else {
        r = malloc(mlen + 1);
        if (r == NULL)
            return bal_error_set(err, -ENOMEM, "Out of memory while reading from the QMP socket '%s'.",
                                 c->path);
        memcpy(r, c->buf, mlen);
        consume(c, mlen);
    }
    r[mlen] = '\0';
    *reply = r;
    return 0;
}

static int connect_socket(bal_qmp_conn_t *c, int64_t deadline, bal_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int ret, soerr;
    socklen_t slen = sizeof(soerr);

    if (strlen(c->path) >= sizeof(sa.sun_path))
        return bal_error_set(err, -ENAMETOOLONG, "The QMP socket path '%s' is longer than the %zu bytes a UNIX "
                             "socket address holds.", c->path, sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return bal_error_set(err, -errno, "Creating a socket for '%s' failed: %s.", c->path, strerror(errno));
    for (;;) {
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return 0;
        if (errno == EAGAIN) {
            /* The listen backlog is full (a busy or hung QEMU): try again until the deadline. */
            if (remaining_ms(deadline) == 0)
                break;
            poll(NULL, 0, remaining_ms(deadline) < 10 ? remaining_ms(deadline) : 10);
            continue;
        }
        if (errno == EINPROGRESS || errno == EINTR) {
            ret = wait_fd(c->fd, POLLOUT, deadline);
            if (ret == -ETIMEDOUT)
                break;
            if (ret < 0)
                return bal_error_set(err, ret, "Connecting to the QMP socket '%s' failed: %s.", c->path,
                                     strerror(-ret));
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
                soerr = errno;
            if (soerr == 0)
                return 0;
            errno = soerr;
        }
        if (errno == ENOENT)
            return bal_error_set(err, -ENOENT, "The QMP socket '%s' does not exist.", c->path);
        if (errno == ECONNREFUSED)
            return bal_error_set(err, -ESHUTDOWN, "Nothing listens on the QMP socket '%s'.", c->path);
        return bal_error_set(err, -errno, "Connecting to the QMP socket '%s' failed: %s.", c->path, strerror(errno));
    }
    return bal_error_set(err, -ETIMEDOUT, "Connecting to the QMP socket '%s' timed out after %d ms.", c->path,
                         c->timeout_ms);
}

int bal_qmp_conn_open(const char *path, int timeout_ms, bal_qmp_conn_t **out, bal_error_t *err)
{
    int64_t deadline = now_ms() + timeout_ms;
    bal_error_t qerr = {0};
    bal_qmp_conn_t *c;
    char *reply = NULL;
    size_t mlen;
    int ret;

    if (path == NULL || path[0] == '\0')
        return bal_error_set(err, -EINVAL, "No QMP socket path was given.");
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        return bal_error_set(err, -ENOMEM, "Out of memory while connecting to the QMP socket '%s'.", path);
    }
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    ret = connect_socket(c, deadline, err);
    if (ret < 0)
        goto fail;
    ret = read_until(c, MSG_GREETING, deadline, &mlen, err);
    if (ret == -ETIMEDOUT)
        ret = bal_error_set(err, ret, "The QMP socket '%s' sent no greeting within %d ms.", path, timeout_ms);
    if (ret < 0)
        goto fail;
    consume(c, mlen);
    ret = run_command(c, "{\"execute\":\"qmp_capabilities\"}", deadline, &reply, err);
    if (ret < 0)
        goto fail;
    ret = bal_qmp_parse_empty(reply, strlen(reply), &qerr);
    if (ret < 0) {
        ret = bal_error_set(err, -EPROTO, "The QMP socket '%s' refused the capabilities negotiation: %s", path,
                            qerr.message);
        goto fail;
    }
    free(reply);
    *out = c;
    return 0;
fail:
    free(reply);
    bal_qmp_conn_free(c);
    return ret;
}

int bal_qmp_conn_execute(bal_qmp_conn_t *conn, const char *command, int timeout_ms, char **reply,
                         bal_error_t *err)
{
    if (conn == NULL || conn->fd < 0 || command == NULL)
        return bal_error_set(err, -EINVAL, "A QMP command was sent without a connection or a command.");
    conn->timeout_ms = timeout_ms;
    return run_command(conn, command, now_ms() + timeout_ms, reply, err);
}

bool bal_qmp_conn_stale(bal_qmp_conn_t *conn)
{
    size_t mlen, drained = 0;
    msg_kind_t kind;

    if (conn == NULL || conn->fd < 0 || conn->eof)
        return true;
    if (conn->len == 0) {
        /* The usual case, nothing arrived since the last reply: found out without taking a buffer. */
        char byte;
        ssize_t n;
        while ((n = recv(conn->fd, &byte, 1, MSG_PEEK)) < 0 && errno == EINTR)
            ;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n <= 0)
            return true; /* closed, reset, or failing */
    }
    for (;;) {
        ssize_t n = read_some(conn, NULL);
        int ret;

        if (n < 0 && n != -EAGAIN)
            return true;
        /* QEMU sends a few events between two cycles; a peer that floods them would keep us here
         * (this check has no deadline): give up on the connection instead */
        if (n > 0 && (drained += (size_t)n) > STALE_DRAIN_LIMIT)
            return true;
        while ((ret = scan_message(conn, &mlen, NULL)) == 1) {
            if (classify(conn, &kind, NULL) < 0 || kind != MSG_EVENT)
                return true;
            consume(conn, mlen);
        }
        if (ret < 0 || conn->eof || conn->len > BAL_QMP_MAX_REPLY)
            return true;
        if (n == -EAGAIN)
            return false;
    }
}

void bal_qmp_conn_free(bal_qmp_conn_t *conn)
{
    if (conn == NULL)
        return;
    if (conn->fd >= 0)
        close(conn->fd);
    free(conn->buf);
    free(conn->path);
    free(conn);
}
