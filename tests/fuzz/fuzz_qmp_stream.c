/* Fuzz target: the QMP socket client (agent/bal_qmp_socket.h) against a peer that sends arbitrary
 * bytes: its hand-written framing (a message is a balanced top-level {...}, found by counting outside
 * strings), the greeting and capabilities handshake, events skipped before a reply, and the staleness
 * check of a cached connection. A server thread accepts on a private socket, writes the input, closes
 * its side and drains what the client sends, so every run ends at EOF and none waits for a timeout.
 * Checks: only the documented errors, err filled; a reply handed out is one whole JSON object that the
 * agent's reply parsers can read; nothing leaks (libFuzzer's leak check). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/bal_qmp.h"
#include "agent/bal_qmp_conn.h"
#include "agent/bal_qmp_socket.h"
#include "tests/fuzz/fuzz.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    const uint8_t *data;
    size_t size;
    bool pending; /* an input waits for the next connection */
    bool stopping;
    int listener;
    pthread_t thread;
    char path[108];
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .listener = -1};

static void *server_main(void *opaque)
{
    (void)opaque;
    for (;;) {
        int fd = accept(srv.listener, NULL, NULL);
        size_t off = 0;
        char sink[4096];

        if (fd < 0)
            continue;
        pthread_mutex_lock(&srv.lock);
        if (srv.stopping) {
            pthread_mutex_unlock(&srv.lock);
            close(fd);
            break;
        }
        while (!srv.pending)
            pthread_cond_wait(&srv.cond, &srv.lock);
        while (off < srv.size) {
            ssize_t n = send(fd, srv.data + off, srv.size - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        srv.pending = false;
        pthread_cond_broadcast(&srv.cond);
        pthread_mutex_unlock(&srv.lock);
        shutdown(fd, SHUT_WR);
        while (recv(fd, sink, sizeof(sink), 0) > 0) /* until the client closes */
            ;
        close(fd);
    }
    return NULL;
}

static int connect_to_server(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    strcpy(sa.sun_path, srv.path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* At exit: the server thread is stopped (a last connection wakes its accept) and joined, and the
 * socket file removed, so that nothing is left behind (valgrind, /tmp). */
static void teardown(void)
{
    int fd;

    pthread_mutex_lock(&srv.lock);
    srv.stopping = true;
    pthread_mutex_unlock(&srv.lock);
    fd = connect_to_server();
    pthread_join(srv.thread, NULL);
    if (fd >= 0)
        close(fd);
    close(srv.listener);
    unlink(srv.path);
}

static void setup_once(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(srv.path, sizeof(srv.path), "/tmp/fuzz_qmp_stream.%ld.sock", (long)getpid());
    unlink(srv.path);
    strcpy(sa.sun_path, srv.path);
    srv.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_ASSERT(srv.listener >= 0);
    FUZZ_ASSERT(bind(srv.listener, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    FUZZ_ASSERT(listen(srv.listener, 4) == 0);
    FUZZ_ASSERT(pthread_create(&srv.thread, NULL, server_main, NULL) == 0);
    atexit(teardown);
}

static bool documented(int rc)
{
    return rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -EPROTO || rc == -EMSGSIZE || rc == -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    bal_qmp_conn_t *conn = NULL;
    bal_error_t err = {0};
    char *reply = NULL;
    int rc;

    if (size > 150000)
        return 0; /* the server writes it before the client reads: keep it within the socket buffer */
    pthread_once(&once, setup_once);
    pthread_mutex_lock(&srv.lock);
    srv.data = data;
    srv.size = size;
    srv.pending = true;
    pthread_mutex_unlock(&srv.lock);

    rc = bal_qmp_conn_open(srv.path, 5000, &conn, &err);
    if (rc < 0) {
        FUZZ_ASSERT(documented(rc));
        FUZZ_ASSERT(err.code == rc && err.message[0] != '\0');
        FUZZ_ASSERT(rc != -ETIMEDOUT); /* the peer always ends with EOF */
    } else {
        rc = bal_qmp_conn_execute(conn,
                                  "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/"
                                  "balloon0\",\"property\":\"guest-stats\"}}",
                                  5000, &reply, &err);
        if (rc == 0) {
            bal_error_t perr = {0};
            bal_stats_t stats;
            size_t len = strlen(reply);
            int prc;

            FUZZ_ASSERT(len > 1 && reply[0] == '{' && reply[len - 1] == '}');
            /* a whole message: the reply parsers give a verdict on it, never "not JSON" by framing */
            prc = bal_qmp_parse_guest_stats(reply, len, &stats, &perr);
            FUZZ_ASSERT(prc == 0 || prc == -EREMOTEIO || prc == -EPROTO || prc == -EMSGSIZE);
            free(reply);
            (void)bal_qmp_conn_stale(conn);
        } else {
            FUZZ_ASSERT(documented(rc) && rc != -ETIMEDOUT);
            FUZZ_ASSERT(err.code == rc && err.message[0] != '\0');
        }
        bal_qmp_conn_free(conn);
    }
    /* the server has taken this input before the next one is set */
    pthread_mutex_lock(&srv.lock);
    while (srv.pending)
        pthread_cond_wait(&srv.cond, &srv.lock);
    pthread_mutex_unlock(&srv.lock);
    return 0;
}
