/* qmp_replay: records a QMP session with a real QEMU, and replays it against any QMP server (QEMU
 * again, or balloon-sim) requiring the same replies.
 *
 *   qmp_replay --record SOCKET < COMMANDS > TRANSCRIPT
 *   qmp_replay --check SOCKET TRANSCRIPT
 *   qmp_replay --query SOCKET COMMAND...
 *
 * --query, for shell tests: negotiates capabilities, sends each COMMAND and prints every line the
 * server sends (events included) until each command has its reply; exits 1 if one never comes.
 *
 * COMMANDS: one client line per line, sent as is with "\n"; lines starting with '#' and empty lines
 * are skipped; "!hex HEX" sends the bytes HEX stands for (for control bytes and invalid UTF-8).
 *
 * TRANSCRIPT: "S: line" is a line the server sent (its CRLF removed), "C: line" / "X: hex" a line the
 * client sent, "EOF" the server closing the connection, '#' a comment.
 *
 * Events the guest causes ("data": {"guest": true, ...}, e.g. SeaBIOS resetting the machine) come at
 * times no client controls and balloon-sim has no BIOS: they are left out when recording and
 * ignored when checking. Everything else must come in the same order.
 *
 * --check compares each server line byte for byte, except: the values of "stat-*", "actual",
 * "last-update" (numbers), of the event timestamp's "seconds" and "microseconds", and of the
 * greeting's "micro" and "package"; and a qom-list reply may list a subset of the recorded
 * properties, in the same order, as long as it keeps "type", the "guest-stats*" properties and the
 * virtio-balloon children (what a monitoring agent looks for). Every line must end with CRLF. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "tests/tt_time.h"

#define QUIET_MS 400    /* recording: a reply is complete after this much silence */
#define RECORD_MAX_MS 5000
#define CHECK_MAX_MS 10000

typedef struct conn {
    int fd;
    char buf[1 << 20];
    size_t len;
    bool eof;
} conn_t;

static int connect_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int64_t deadline = tt_mono_ms() + 5000;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "qmp_replay: socket path '%s' is too long.\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        close(fd);
        if (tt_mono_ms() > deadline) {
            fprintf(stderr, "qmp_replay: cannot connect to '%s': %s.\n", path, strerror(errno));
            return -1;
        }
        poll(NULL, 0, 50);
    }
}

/* Reads what is available within wait_ms. Returns 1 if bytes came, 0 on timeout or EOF. */
static int fill(conn_t *c, int wait_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    ssize_t n;

    if (c->eof || c->len == sizeof(c->buf))
        return 0;
    if (poll(&pfd, 1, wait_ms < 0 ? 0 : wait_ms) <= 0)
        return 0;
    n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
    if (n <= 0) { /* QEMU may reset the connection as it exits: the same as EOF here */
        c->eof = true;
        return 0;
    }
    c->len += (size_t)n;
    return 1;
}

/* Takes one whole line off the buffer into out (NUL-terminated, without "\r\n"). Returns 1, 0 if
 * no whole line is buffered, -1 if the line did not end with CRLF. */
static int take_line(conn_t *c, char **out)
{
    char *nl = memchr(c->buf, '\n', c->len);
    size_t n;
    int rc = 1;

    if (nl == NULL)
        return 0;
    n = (size_t)(nl - c->buf);
    if (n == 0 || c->buf[n - 1] != '\r')
        rc = -1;
    else
        n--;
    *out = malloc(n + 1);
    if (*out == NULL)
        abort();
    memcpy(*out, c->buf, n);
    (*out)[n] = '\0';
    c->len -= (size_t)(nl + 1 - c->buf);
    memmove(c->buf, nl + 1, c->len);
    return rc;
}

/* An event the guest caused: left out of transcripts. */
static bool is_guest_event(const char *line)
{
    return strncmp(line, "{\"timestamp\": ", 14) == 0 && strstr(line, "\"guest\": true") != NULL;
}

/* Next server line that is not a guest event, waiting until deadline. Returns 1 with *out, 0 on EOF
 * or timeout, -1 on a line without CRLF (reported). */
static int next_line(conn_t *c, int64_t deadline, char **out)
{
    for (;;) {
        int rc = take_line(c, out);
        if (rc < 0) {
            fprintf(stderr, "qmp_replay: a line does not end with CRLF: %s\n", *out);
            free(*out);
            return -1;
        }
        if (rc > 0) {
            if (!is_guest_event(*out))
                return 1;
            free(*out);
            continue;
        }
        if (c->eof || tt_mono_ms() >= deadline)
            return 0;
        fill(c, (int)(deadline - tt_mono_ms()));
    }
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes hex in place; returns the byte count or -1. */
static ssize_t unhex(char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i] != '\0' && s[i] != '\n'; i += 2) {
        int hi = hexval((unsigned char)s[i]), lo = s[i + 1] ? hexval((unsigned char)s[i + 1]) : -1;
        if (hi < 0 || lo < 0)
            return -1;
        s[n++] = (char)(hi << 4 | lo);
    }
    return (ssize_t)n;
}

static bool printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* ---- --record ---- */

static void record_replies(conn_t *c)
{
    int64_t end = tt_mono_ms() + RECORD_MAX_MS;
    char *line;

    for (;;) {
        int64_t quiet = tt_mono_ms() + QUIET_MS;
        bool got = false;
        while (tt_mono_ms() < quiet && tt_mono_ms() < end) {
            if (fill(c, (int)(quiet - tt_mono_ms())) > 0)
                got = true;
            if (c->eof)
                break;
        }
        while (take_line(c, &line) != 0) {
            if (!is_guest_event(line))
                printf("S: %s\n", line);
            free(line);
        }
        if (c->eof) {
            printf("EOF\n");
            return;
        }
        if (!got || tt_mono_ms() >= end)
            return;
    }
}

static int record(const char *path)
{
    static conn_t c;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    c.fd = connect_socket(path);
    if (c.fd < 0)
        return 1;
    record_replies(&c);
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (strncmp(line, "!hex ", 5) == 0) {
            printf("X: %s\n", line + 5);
            n = unhex(line + 5);
            if (n < 0) {
                fprintf(stderr, "qmp_replay: bad hex line.\n");
                return 1;
            }
            memmove(line, line + 5, (size_t)n);
        } else {
            if (!printable(line, (size_t)n)) {
                fprintf(stderr, "qmp_replay: write '%s' as a !hex line.\n", line);
                return 1;
            }
            printf("C: %s\n", line);
        }
        line[n] = '\n';
        if (send_all(c.fd, line, (size_t)n + 1) < 0 || c.eof)
            break;
        record_replies(&c);
        if (c.eof)
            break;
    }
    free(line);
    close(c.fd);
    return 0;
}

/* ---- --check ---- */

/* Keys whose values differ between runs and implementations. */
static bool masked_key(const char *key, size_t len, bool *want_string)
{
    static const char *const numbers[] = {"actual", "last-update", "seconds", "microseconds", "micro"};
    *want_string = false;
    if (len > 5 && strncmp(key, "stat-", 5) == 0)
        return true;
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if (strlen(numbers[i]) == len && strncmp(key, numbers[i], len) == 0)
            return true;
    if (len == 7 && strncmp(key, "package", 7) == 0) {
        *want_string = true;
        return true;
    }
    return false;
}

/* Copies line into a new string where each masked value is replaced by '#'. The line is QEMU's
 * compact JSON ("key": value). */
static char *mask(const char *line)
{
    size_t len = strlen(line), o = 0;
    char *out = malloc(len + 1);
    bool in_str = false;

    if (out == NULL)
        abort();
    for (size_t i = 0; i < len;) {
        char ch = line[i];
        if (in_str) {
            out[o++] = line[i++];
            if (ch == '\\' && i < len)
                out[o++] = line[i++];
            else if (ch == '"')
                in_str = false;
            continue;
        }
        if (ch == '"') {
            /* a key? find the end of the string, then ": " */
            size_t j = i + 1;
            bool want_string;
            while (j < len && line[j] != '"')
                j += line[j] == '\\' ? 2 : 1;
            if (j + 3 < len && line[j + 1] == ':' && line[j + 2] == ' ' &&
                masked_key(line + i + 1, j - i - 1, &want_string)) {
                size_t v = j + 3, e = v;
                if (want_string && line[v] == '"') {
                    e = v + 1;
                    while (e < len && line[e] != '"')
                        e += line[e] == '\\' ? 2 : 1;
                    e++;
                } else if (!want_string) {
                    while (e < len && strchr("-+.0123456789eE", line[e]) != NULL)
                        e++;
                }
                if (e > v && e <= len) {
                    memcpy(out + o, line + i, v - i);
                    o += v - i;
                    out[o++] = '#';
                    i = e;
                    continue;
                }
            }
            in_str = true;
        }
        out[o++] = line[i++];
    }
    out[o] = '\0';
    return out;
}

/* Finds the JSON array that follows `"return": ` at the top level; sets [*b, *e) to it. */
static bool find_return_array(const char *s, size_t *b, size_t *e)
{
    const char *p = strstr(s, "{\"return\": [");
    int depth = 0;
    bool in_str = false;

    if (p != s)
        return false;
    *b = strlen("{\"return\": ");
    for (size_t i = *b; s[i] != '\0'; i++) {
        if (in_str) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_str = false;
        } else if (s[i] == '"') {
            in_str = true;
        } else if (s[i] == '[' || s[i] == '{') {
            depth++;
        } else if (s[i] == ']' || s[i] == '}') {
            if (--depth == 0) {
                *e = i + 1;
                return true;
            }
        }
    }
    return false;
}

static const char *prop_field(yajl_val item, const char *field)
{
    const char *path[] = {field, NULL};
    yajl_val v = yajl_tree_get(item, path, yajl_t_string);
    return v ? v->u.string : NULL;
}

static bool essential(const char *name, const char *type)
{
    return strcmp(name, "type") == 0 || strncmp(name, "guest-stats", 11) == 0 ||
           strncmp(type, "child<virtio-balloon", 20) == 0;
}

/* The qom-list rule: got lists a subsequence of expected that keeps every essential entry. */
static bool qom_list_matches(const char *expected, const char *got, char *why, size_t whylen)
{
    size_t eb, ee, gb, ge;
    char *es, *gs, *em, *gm;
    yajl_val ev = NULL, gv = NULL;
    bool ok = false;

    if (!find_return_array(expected, &eb, &ee) || !find_return_array(got, &gb, &ge))
        return false;
    /* everything but the arrays must match */
    es = strdup(expected);
    gs = strdup(got);
    memmove(es + eb, es + ee, strlen(es + ee) + 1);
    memmove(gs + gb, gs + ge, strlen(gs + ge) + 1);
    em = mask(es);
    gm = mask(gs);
    if (strcmp(em, gm) != 0) {
        snprintf(why, whylen, "the members around the list differ");
        goto out;
    }
    es[0] = gs[0] = '\0';
    free(es);
    free(gs);
    es = strndup(expected + eb, ee - eb);
    gs = strndup(got + gb, ge - gb);
    ev = yajl_tree_parse(es, NULL, 0);
    gv = yajl_tree_parse(gs, NULL, 0);
    if (!YAJL_IS_ARRAY(ev) || !YAJL_IS_ARRAY(gv)) {
        snprintf(why, whylen, "not a list");
        goto out;
    }
    {
        size_t gi = 0;
        for (size_t ei = 0; ei < YAJL_GET_ARRAY(ev)->len; ei++) {
            yajl_val item = YAJL_GET_ARRAY(ev)->values[ei];
            const char *name = prop_field(item, "name"), *type = prop_field(item, "type");
            bool present = false;
            if (name == NULL || type == NULL)
                goto out;
            if (gi < YAJL_GET_ARRAY(gv)->len) {
                yajl_val g = YAJL_GET_ARRAY(gv)->values[gi];
                const char *gn = prop_field(g, "name"), *gt = prop_field(g, "type");
                if (gn && gt && strcmp(gn, name) == 0 && strcmp(gt, type) == 0) {
                    present = true;
                    gi++;
                }
            }
            if (!present && essential(name, type)) {
                snprintf(why, whylen, "'%s' (%s) is missing or out of order", name, type);
                goto out;
            }
        }
        if (gi != YAJL_GET_ARRAY(gv)->len) {
            snprintf(why, whylen, "entry %zu is not in the recorded list, or out of order", gi);
            goto out;
        }
    }
    ok = true;
out:
    free(em);
    free(gm);
    free(es);
    free(gs);
    yajl_tree_free(ev);
    yajl_tree_free(gv);
    return ok;
}

static bool is_qom_list(const char *cmd)
{
    const char *path[] = {"execute", NULL};
    yajl_val v = yajl_tree_parse(cmd, NULL, 0), e;
    bool r;

    e = v ? yajl_tree_get(v, path, yajl_t_string) : NULL;
    r = e != NULL && strcmp(e->u.string, "qom-list") == 0; /* yajl_tree_get checked the type */
    yajl_tree_free(v);
    return r;
}

static bool lines_match(const char *expected, const char *got, const char *cmd, char *why,
                        size_t whylen)
{
    char *em = mask(expected), *gm = mask(got);
    bool same = strcmp(em, gm) == 0;

    free(em);
    free(gm);
    why[0] = '\0';
    if (!same && cmd != NULL && is_qom_list(cmd))
        return qom_list_matches(expected, got, why, whylen);
    return same;
}

typedef struct step {
    char *cmd;       /* as sent, NULL for the greeting */
    size_t cmd_len;
    char *cmd_text;  /* as written in the transcript */
    char **lines;
    size_t count;
    bool eof;
} step_t;

static int load(const char *file, step_t **out, size_t *nout)
{
    FILE *f = fopen(file, "r");
    step_t *steps = calloc(1, sizeof(*steps));
    size_t n = 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    if (f == NULL || steps == NULL) {
        fprintf(stderr, "qmp_replay: cannot read '%s'.\n", file);
        return -1;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        step_t *s;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (strncmp(line, "C: ", 3) == 0 || strncmp(line, "X: ", 3) == 0) {
            steps = realloc(steps, (n + 1) * sizeof(*steps));
            s = &steps[n++];
            memset(s, 0, sizeof(*s));
            s->cmd_text = strdup(line);
            s->cmd = strdup(line + 3);
            if (line[0] == 'X') {
                ssize_t k = unhex(s->cmd);
                if (k < 0) {
                    fprintf(stderr, "qmp_replay: bad hex in '%s'.\n", line);
                    return -1;
                }
                s->cmd_len = (size_t)k;
            } else {
                s->cmd_len = (size_t)len - 3;
            }
            s->cmd = realloc(s->cmd, s->cmd_len + 2);
            s->cmd[s->cmd_len] = '\0';
            continue;
        }
        s = &steps[n - 1];
        if (strcmp(line, "EOF") == 0) {
            s->eof = true;
        } else if (strncmp(line, "S: ", 3) == 0) {
            s->lines = realloc(s->lines, (s->count + 1) * sizeof(char *));
            s->lines[s->count++] = strdup(line + 3);
        } else {
            fprintf(stderr, "qmp_replay: '%s': unknown line '%s'.\n", file, line);
            return -1;
        }
    }
    free(line);
    fclose(f);
    *out = steps;
    *nout = n;
    return 0;
}

static void steps_free(step_t *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < steps[i].count; k++)
            free(steps[i].lines[k]);
        free(steps[i].lines);
        free(steps[i].cmd);
        free(steps[i].cmd_text);
    }
    free(steps);
}

static int check(const char *path, const char *file)
{
    static conn_t c;
    step_t *steps;
    size_t nsteps, failures = 0, compared = 0;
    int rc = 1;

    if (load(file, &steps, &nsteps) < 0)
        return 2;
    c.fd = connect_socket(path);
    if (c.fd < 0) {
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < nsteps; i++) {
        step_t *s = &steps[i];
        int64_t deadline = tt_mono_ms() + CHECK_MAX_MS;
        const char *what = s->cmd_text ? s->cmd_text : "(greeting)";

        if (s->cmd != NULL) {
            /* one write: a server may act on a complete object before its newline (quit) */
            s->cmd[s->cmd_len] = '\n';
            if (send_all(c.fd, s->cmd, s->cmd_len + 1) < 0 && s->count == 0 && !s->eof) {
                printf("FAIL step %zu %s: the server closed the connection.\n", i, what);
                goto out;
            }
            s->cmd[s->cmd_len] = '\0';
        }
        for (size_t k = 0; k < s->count; k++) {
            char *got = NULL, why[200];
            int n = next_line(&c, deadline, &got);
            if (n <= 0) {
                printf("FAIL step %zu %s\n  expected: %s\n  got:      %s\n", i, what, s->lines[k],
                       n < 0 ? "(a line without CRLF)" : c.eof ? "(EOF)" : "(nothing in time)");
                goto out;
            }
            compared++;
            if (!lines_match(s->lines[k], got, s->cmd, why, sizeof(why))) {
                printf("FAIL step %zu %s\n  expected: %s\n  got:      %s\n", i, what, s->lines[k], got);
                if (why[0] != '\0')
                    printf("  (%s)\n", why);
                failures++;
            }
            free(got);
        }
        if (s->eof) {
            char *extra = NULL;
            int n = next_line(&c, deadline, &extra);
            if (n != 0 || !c.eof) {
                printf("FAIL step %zu %s\n  expected: EOF\n  got:      %s\n", i, what,
                       n > 0 ? extra : n < 0 ? "(a line without CRLF)" : "(no EOF in time)");
                free(extra);
                goto out;
            }
            break;
        }
    }
    if (failures == 0) {
        printf("ok: %zu steps, %zu replies and events as recorded\n", nsteps, compared);
        rc = 0;
    }
out:
    if (c.fd >= 0)
        close(c.fd);
    steps_free(steps, nsteps);
    return rc;
}

/* ---- --query ---- */

static int query(const char *path, int ncmds, char **cmds)
{
    static conn_t c;
    char *line;
    int64_t deadline = tt_mono_ms() + CHECK_MAX_MS;

    c.fd = connect_socket(path);
    if (c.fd < 0)
        return 2;
    if (next_line(&c, deadline, &line) <= 0) {
        fprintf(stderr, "qmp_replay: no greeting from '%s'.\n", path);
        return 1;
    }
    free(line);
    for (int i = -1; i < ncmds; i++) {
        const char *cmd = i < 0 ? "{\"execute\":\"qmp_capabilities\"}" : cmds[i];
        char *line_out = NULL;
        /* one write: a server may act on a complete object before its newline (quit); if it closed
         * the connection, what it said before is still there to read */
        if (asprintf(&line_out, "%s\n", cmd) < 0)
            return 2;
        send_all(c.fd, line_out, strlen(line_out));
        free(line_out);
        for (;;) {
            int rc = next_line(&c, deadline, &line);
            bool reply;
            if (rc <= 0) {
                fprintf(stderr, "qmp_replay: no reply to '%s'.\n", cmd);
                return 1;
            }
            reply = strncmp(line, "{\"timestamp\": ", 14) != 0;
            if (i >= 0 || !reply)
                printf("%s\n", line);
            free(line);
            if (reply)
                break;
        }
    }
    close(c.fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--query") == 0)
        return query(argv[2], argc - 3, argv + 3);
    if (argc == 3 && strcmp(argv[1], "--record") == 0)
        return record(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--check") == 0)
        return check(argv[2], argv[3]);
    fprintf(stderr, "usage: qmp_replay --record SOCKET < COMMANDS > TRANSCRIPT\n"
                    "       qmp_replay --check SOCKET TRANSCRIPT\n"
                    "       qmp_replay --query SOCKET COMMAND...\n");
    return 2;
}
