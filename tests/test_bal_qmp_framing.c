/* The QMP socket client's receive path: its buffer starts small and grows for a large reply, a reply
 * glued to the next message does not lose that message, and messages are told apart by their
 * top-level keys (not by keys nested deeper or by string values), a repeated kind key and a NUL byte
 * refused. Each case is a scripted peer: greeting, negotiation, then one scripted answer per command
 * line, written in one piece. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/bal_qmp.h"
#include "agent/bal_qmp_conn.h"
#include "agent/bal_qmp_socket.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, " \
                 "\"capabilities\": [\"oob\"]}}\r\n"
#define QUERY "{\"execute\":\"query-balloon\"}"
#define MAX_ANSWERS 4

typedef struct peer {
    char dir[64];
    char path[96];
    int lfd;
    pthread_t thread;
    const char *answers[MAX_ANSWERS]; /* sent one per command line, in order; NULL: stop answering */
    size_t answer_len[MAX_ANSWERS];   /* 0: strlen */
} peer_t;

static void send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* Reads up to and including the next line end; false when the client is gone. */
static bool read_line(int fd)
{
    char ch;

    for (;;) {
        ssize_t n = recv(fd, &ch, 1, 0);
        if (n <= 0)
            return false;
        if (ch == '\n')
            return true;
    }
}

static void *peer_main(void *opaque)
{
    peer_t *p = opaque;
    int fd = accept(p->lfd, NULL, NULL);

    if (fd < 0)
        return NULL;
    send_all(fd, GREETING, strlen(GREETING));
    if (read_line(fd))
        send_all(fd, "{\"return\": {}}\r\n", 16);
    for (int i = 0; i < MAX_ANSWERS && p->answers[i] != NULL && read_line(fd); i++)
        send_all(fd, p->answers[i], p->answer_len[i] != 0 ? p->answer_len[i] : strlen(p->answers[i]));
    while (read_line(fd))
        ; /* until the client closes */
    close(fd);
    return NULL;
}

static void peer_start(peer_t *p)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(p->dir, sizeof(p->dir), "/tmp/perf-framing-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->path, sizeof(p->path), "%s/vm.qmp", p->dir);
    memcpy(sa.sun_path, p->path, sizeof(p->path));
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p->lfd, 4), 0);
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_stop(peer_t *p)
{
    shutdown(p->lfd, SHUT_RDWR); /* wakes an accept that never got a client */
    pthread_join(p->thread, NULL);
    close(p->lfd);
    unlink(p->path);
    rmdir(p->dir);
}

/* Opens a connection to p and runs one command; returns its code, the reply in *reply. */
static int run_one(bal_qmp_conn_t *c, char **reply, bal_error_t *err)
{
    *reply = NULL;
    return bal_qmp_conn_execute(c, QUERY, 2000, reply, err);
}

static void test_large_reply_grows_the_buffer(void **state)
{
    const size_t big = 300 * 1024; /* far above the buffer's first size, below the 1 MiB limit */
    char *answer = malloc(big + 64), *reply = NULL;
    peer_t p = {0};
    bal_qmp_conn_t *c = NULL;
    bal_error_t err = {0};
    size_t len;

    (void)state;
    assert_non_null(answer);
    len = (size_t)sprintf(answer, "{\"return\": \"");
    memset(answer + len, 'x', big);
    len += big;
    len += (size_t)sprintf(answer + len, "\"}\r\n");
    p.answers[0] = answer;
    p.answers[1] = "{\"return\": {\"actual\": 2}}\r\n";
    peer_start(&p);
    assert_int_equal(bal_qmp_conn_open(p.path, 2000, &c, &err), 0);
    assert_int_equal(run_one(c, &reply, &err), 0);
    assert_int_equal(strlen(reply), len - 2); /* whole, without the line end */
    assert_int_equal(memcmp(reply, answer, len - 2), 0);
    free(reply);
    /* and the small one after it, from a buffer that went back to small */
    assert_false(bal_qmp_conn_stale(c));
    assert_int_equal(run_one(c, &reply, &err), 0);
    assert_string_equal(reply, "{\"return\": {\"actual\": 2}}");
    free(reply);
    bal_qmp_conn_free(c);
    peer_stop(&p);
    free(answer);
}

static void test_reply_glued_to_next_messages(void **state)
{
    peer_t p = {0};
    bal_qmp_conn_t *c = NULL;
    bal_error_t err = {0};
    char *reply = NULL;

    (void)state;
    /* the first reply arrives with an event and the start of a pretty-printed event behind it; the
     * second command's reply must still be its own */
    p.answers[0] = "{\"return\": {\"actual\": 1}}\r\n{\"event\": \"A\", \"data\": {\"return\": 5}}\r\n{\n  \"event\"";
    p.answers[1] = ": \"B\"\n}\n{\"timestamp\": {\"seconds\": 1}, \"event\": \"C\"}{\"return\": {\"actual\": 2}}\r\n";
    peer_start(&p);
    assert_int_equal(bal_qmp_conn_open(p.path, 2000, &c, &err), 0);
    assert_int_equal(run_one(c, &reply, &err), 0);
    assert_string_equal(reply, "{\"return\": {\"actual\": 1}}");
    free(reply);
    assert_int_equal(run_one(c, &reply, &err), 0);
    assert_string_equal(reply, "{\"return\": {\"actual\": 2}}");
    free(reply);
    bal_qmp_conn_free(c);
    peer_stop(&p);
}

/* The first command's outcome against a peer that answers with text. */
static int answer_with(const char *text, size_t len, char **reply, bal_error_t *err)
{
    peer_t p = {0};
    bal_qmp_conn_t *c = NULL;
    int rc;

    p.answers[0] = text;
    p.answer_len[0] = len;
    peer_start(&p);
    assert_int_equal(bal_qmp_conn_open(p.path, 2000, &c, err), 0);
    rc = run_one(c, reply, err);
    bal_qmp_conn_free(c);
    peer_stop(&p);
    return rc;
}

static void test_kind_from_top_level_keys(void **state)
{
    static const char nul[] = "{\"return\": {\"a\0b\": 1}}\r\n";
    char deep[160] = "{\"return\": "; /* 33 levels: the object, then 32 arrays */
    const size_t open_at = strlen(deep);
    bal_error_t err = {0};
    char *reply = NULL;

    (void)state;
    memset(deep + open_at, '[', 32);
    memset(deep + open_at + 32, ']', 32);
    strcpy(deep + open_at + 64, "}\r\n");
    /* an event's nested "return", or a string that says "return", is not a reply */
    assert_int_equal(answer_with("{\"event\": \"X\", \"data\": {\"return\": {}}}\r\n"
                                 "{\"data\": \"return\", \"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\r\n",
                                 0, &reply, &err),
                     0);
    assert_string_equal(reply, "{\"data\": \"return\", \"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}");
    free(reply);
    /* a reply whose value holds braces, brackets and quotes in strings */
    assert_int_equal(answer_with("{\"return\": [\"}\", {\"k\": \"\\\"{[\"}]}\r\n", 0, &reply, &err), 0);
    assert_string_equal(reply, "{\"return\": [\"}\", {\"k\": \"\\\"{[\"}]}");
    free(reply);

    memset(&err, 0, sizeof(err));
    assert_int_equal(answer_with("{\"data\": {\"return\": 1}, \"x\": \"event\"}\r\n", 0, &reply, &err), -EPROTO);
    assert_non_null(strstr(err.message, "neither a reply nor an event"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(answer_with("{\"return\": 1, \"return\": 2}\r\n", 0, &reply, &err), -EPROTO);
    assert_non_null(strstr(err.message, "repeated key"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(answer_with(nul, sizeof(nul) - 1, &reply, &err), -EPROTO);
    assert_non_null(strstr(err.message, "NUL"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(answer_with("{\"return\":]\"i\"}}\r\n", 0, &reply, &err), -EPROTO);
    assert_non_null(strstr(err.message, "']' that closes nothing"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(answer_with(deep, 0, &reply, &err), -EPROTO);
    assert_non_null(strstr(err.message, "nested more than"));
    deep[open_at] = deep[open_at + 63] = ' '; /* one level less: as deep as the reply parsers allow */
    assert_int_equal(answer_with(deep, 0, &reply, &err), 0);
    free(reply);
    memset(&err, 0, sizeof(err));
    assert_int_equal(answer_with("{\"QMP\": {}}\r\n", 0, &reply, &err), -EPROTO);
    assert_non_null(strstr(err.message, "second greeting"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_reply_grows_the_buffer),
        cmocka_unit_test(test_reply_glued_to_next_messages),
        cmocka_unit_test(test_kind_from_top_level_keys),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
