/* Fuzz target: the QMP server's input handling (virtio/vb_qmp_server.h), as balloon-sim runs it for
 * any client that connects to its sockets. The input is what a client sends; its first byte seeds how
 * the rest is cut into reads. Checks, beyond no crash and no leak:
 *  - the output is a sequence of CRLF-terminated lines, each one JSON object that is the greeting
 *    (first, only), a reply {"return": ...} or {"error": {"class": string, "desc": string}} (with the
 *    client's "id" if any), or an event; nothing else ever reaches a client. The one exception is
 *    QEMU's own: an id that is a double out of range echoes as inf or -inf ("%.17g"), which is not
 *    JSON (tests/qmp/balloon0.qemu-7.2.txt has it from QEMU 7.2);
 *  - QEMU's streamer does not care how the bytes were cut: the output of the input fed in pieces is
 *    the output of the input fed at once;
 *  - a VM that executed quit finishes the connection, and input after it is ignored. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "tests/fuzz/fuzz.h"
#include "virtio/vb_clock.h"
#include "virtio/vb_machine.h"
#include "virtio/vb_qmp_server.h"

typedef struct run {
    vb_manual_clock_t clock;
    vb_qmp_server_t *server;
    vb_qmp_conn_t *conn;
    bool quit;
    char *out;
    size_t out_len;
} run_t;

static void on_quit(vb_machine_t *m, void *opaque)
{
    run_t *r = opaque;
    (void)m;
    r->quit = true;
}

static const vb_qmp_server_ops_t ops = {.quit = on_quit};

static void drain(run_t *r)
{
    const char *data;
    size_t n = vb_qmp_conn_output(r->conn, &data);

    if (n == 0)
        return;
    r->out = realloc(r->out, r->out_len + n + 1);
    FUZZ_ASSERT(r->out != NULL);
    memcpy(r->out + r->out_len, data, n);
    r->out_len += n;
    r->out[r->out_len] = '\0';
    vb_qmp_conn_consume(r->conn, n);
}

static void start(run_t *r)
{
    static const vb_machine_config_t vms[] = {
        {.name = "vm", .profile = VB_GUEST_LINUX, .stats_count = VB_STATS_QEMU72, .memory_bytes = 1u << 30},
        {.name = "anon", .profile = VB_GUEST_LEGACY, .stats_count = VB_STATS_LEGACY, .memory_bytes = 1u << 28,
         .anon = true, .prelaunch = true},
    };

    memset(r, 0, sizeof(*r));
    vb_manual_clock_init(&r->clock, 1700000000);
    r->server = vb_qmp_server_new(&r->clock.clock, &ops, r);
    FUZZ_ASSERT(r->server != NULL);
    for (size_t i = 0; i < sizeof(vms) / sizeof(vms[0]); i++) {
        vb_machine_t *m = vb_machine_new(&r->clock.clock, &vms[i]);
        FUZZ_ASSERT(m != NULL);
        FUZZ_ASSERT(vb_qmp_server_add(r->server, m) == 0);
    }
    r->conn = vb_qmp_conn_new(r->server, "vm", NULL);
    FUZZ_ASSERT(r->conn != NULL);
    drain(r);
}

static void feed(run_t *r, const uint8_t *data, size_t len)
{
    FUZZ_ASSERT(vb_qmp_conn_input(r->conn, (const char *)data, len) == 0);
    /* pending input is never more than what was given */
    FUZZ_ASSERT(vb_qmp_conn_pending_input(r->conn) <= len + r->out_len + (1u << 20));
    drain(r);
    if (r->quit)
        FUZZ_ASSERT(vb_qmp_conn_finished(r->conn));
}

static void stop(run_t *r)
{
    vb_machine_t *m = vb_qmp_conn_machine(r->conn);

    vb_qmp_conn_free(r->conn);
    if (r->quit)
        vb_qmp_server_remove(r->server, m); /* as the loop does once the connection is gone */
    vb_qmp_server_free(r->server);
    free(r->out);
}

static bool is_string_member(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(obj, path, yajl_t_string) != NULL;
}

/* The line with its "id" given as 0 where QEMU printed a non-finite double (inf, -inf, nan, -nan),
 * so that yajl can check the rest; any other line as it is. QEMU puts the id first in an error
 * ({"id": X, "error": ...}) and last in a return ({"return": ..., "id": X}). */
static char *with_finite_id(const char *line)
{
    static const char *const nonfinite[] = {"-inf", "inf", "-nan", "nan"};
    static const char first[] = "{\"id\": ";
    size_t len = strlen(line);
    char *copy = strdup(line);

    FUZZ_ASSERT(copy != NULL);
    for (size_t i = 0; i < sizeof(nonfinite) / sizeof(nonfinite[0]); i++) {
        char last[16];
        size_t n = strlen(nonfinite[i]), at = 0;

        snprintf(last, sizeof(last), "\"id\": %s}", nonfinite[i]);
        if (strncmp(line, first, strlen(first)) == 0 && strncmp(line + strlen(first), nonfinite[i], n) == 0 &&
            line[strlen(first) + n] == ',')
            at = strlen(first);
        else if (len > strlen(last) && strcmp(line + len - strlen(last), last) == 0)
            at = len - 1 - n;
        if (at != 0) {
            memset(copy + at, ' ', n);
            copy[at] = '0';
            break;
        }
    }
    return copy;
}

/* Every line a well-formed QMP message of the kinds a client may get. */
static void check_output(const run_t *r)
{
    const char *p = r->out;
    unsigned n = 0;

    FUZZ_ASSERT(r->out_len > 0);
    while (*p != '\0') {
        const char *eol = strstr(p, "\r\n");
        char ebuf[128], *line, *json;
        yajl_val tree, v;
        const char *qmp[] = {"QMP", NULL}, *ret[] = {"return", NULL}, *err[] = {"error", NULL},
                   *ev[] = {"event", NULL};

        FUZZ_ASSERT(eol != NULL); /* whole lines only */
        line = strndup(p, (size_t)(eol - p));
        FUZZ_ASSERT(line != NULL);
        FUZZ_ASSERT(strchr(line, '\n') == NULL && strchr(line, '\r') == NULL);
        json = with_finite_id(line);
        tree = yajl_tree_parse(json, ebuf, sizeof(ebuf));
        FUZZ_ASSERT(tree != NULL && YAJL_IS_OBJECT(tree));
        if (n == 0) {
            FUZZ_ASSERT(yajl_tree_get(tree, qmp, yajl_t_object) != NULL);
        } else if ((v = yajl_tree_get(tree, err, yajl_t_any)) != NULL) {
            FUZZ_ASSERT(YAJL_IS_OBJECT(v) && is_string_member(v, "class") && is_string_member(v, "desc"));
            FUZZ_ASSERT(yajl_tree_get(tree, ret, yajl_t_any) == NULL);
        } else if (yajl_tree_get(tree, ev, yajl_t_any) == NULL) {
            FUZZ_ASSERT(yajl_tree_get(tree, ret, yajl_t_any) != NULL);
            FUZZ_ASSERT(yajl_tree_get(tree, qmp, yajl_t_any) == NULL);
        }
        yajl_tree_free(tree);
        free(json);
        free(line);
        p = eol + 2;
        n++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_t whole, pieces;
    unsigned seed;
    size_t off = 0;

    if (size == 0)
        return 0;
    seed = data[0];
    data++;
    size--;

    start(&whole);
    feed(&whole, data, size);
    check_output(&whole);

    start(&pieces);
    while (off < size) {
        /* piece lengths from the seed: 1..16 bytes, cycling */
        size_t len = 1 + (seed + off * 7) % 16;
        if (len > size - off)
            len = size - off;
        feed(&pieces, data + off, len);
        off += len;
    }
    FUZZ_ASSERT(pieces.out_len == whole.out_len);
    FUZZ_ASSERT(memcmp(pieces.out, whole.out, whole.out_len) == 0);
    FUZZ_ASSERT(pieces.quit == whole.quit);
    FUZZ_ASSERT(vb_qmp_conn_pending_input(pieces.conn) == vb_qmp_conn_pending_input(whole.conn));

    stop(&whole);
    stop(&pieces);
    return 0;
}
