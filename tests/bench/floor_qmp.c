/* floor_qmp: the cheapest possible read cycle over QMP sockets, which no plugin reading the same
 * sockets can beat. It connects once to every DIR/NAME.qmp (greeting, qmp_capabilities: not measured,
 * as the agent keeps its connections open), then per cycle sends each guest the commands the agent
 * sends it in that cycle, P guests at once (the same pool size as the plugin's), with one sendmsg per
 * command and blocking recv until the reply's line end, and parses every message with
 * yajl_tree_parse. None of the agent's code: no framing scanner, no allow-list, no state machine, no
 * dispatch.
 *
 * The commands per guest follow the agent's steady state (agent/bal_poller.c): in the first cycle
 * qom-get guest-stats-polling-interval, qom-set of it to -I SECONDS, qom-get guest-stats; in cycle
 * i > 0 (0 is the first, warm-up included) qom-get guest-stats, preceded by a qom-get of the interval
 * when i is a multiple of -V VERIFY_EVERY (the agent's verify_every, 5 by default).
 * Prints the same per-cycle lines as plugin_host. */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "tests/bench/bench_pool.h"
#include "tests/bench/bench_run.h"
#include "tests/bench/bench_util.h"

#define REPLY_MAX 65536 /* a guest-stats reply is about 700 bytes */
#define TIMEOUT_S 5     /* the agent's default timeout */

typedef enum { CMD_GET_INTERVAL, CMD_SET_INTERVAL, CMD_GET_STATS } cmd_t;

static struct {
    int *fds;
    size_t n_fds;
    char get_interval[512], set_interval[512], get_stats[512];
    unsigned verify_every;
    unsigned cycle; /* the cycle running, 0 for the first warm-up one */
    bench_pool_t *pool;
    atomic_uint_fast64_t ok, failed, commands;
    unsigned long min_guests;
} fq;

/* Each pool thread reads into its own buffer. */
static _Thread_local char reply_buf[REPLY_MAX + 1];

/* Sends line and its line end with one sendmsg. Returns 0 or -1. */
static int send_line(int fd, const char *line)
{
    struct iovec iov[2] = {{.iov_base = (void *)line, .iov_len = strlen(line)},
                           {.iov_base = (void *)"\n", .iov_len = 1}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t n;

    while ((n = sendmsg(fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)(iov[0].iov_len + 1) ? 0 : -1;
}

/* Reads messages (one per CRLF-ended line) until one that is not an event, and parses each with
 * yajl_tree_parse. Returns the reply's tree (the caller frees it), or NULL when the peer closed,
 * timed out, or sent what is not JSON. */
static yajl_val read_reply(int fd)
{
    static const char *event_path[] = {"event", NULL};
    size_t len = 0;

    for (;;) {
        char *end;
        ssize_t n;

        while ((end = memchr(reply_buf, '\n', len)) != NULL) {
            size_t line = (size_t)(end - reply_buf) + 1;
            yajl_val tree;

            *end = '\0';
            if (end > reply_buf && end[-1] == '\r')
                end[-1] = '\0';
            tree = yajl_tree_parse(reply_buf, NULL, 0);
            if (tree != NULL && YAJL_IS_OBJECT(tree) && yajl_tree_get(tree, event_path, yajl_t_any) == NULL &&
                line == len)
                return tree;
            /* an event is dropped; anything else (not an object, more than the reply) ends the run */
            if (tree == NULL || !YAJL_IS_OBJECT(tree) || yajl_tree_get(tree, event_path, yajl_t_any) == NULL) {
                yajl_tree_free(tree);
                return NULL;
            }
            yajl_tree_free(tree);
            memmove(reply_buf, reply_buf + line, len - line);
            len -= line;
        }
        if (len == REPLY_MAX)
            return NULL;
        while ((n = recv(fd, reply_buf + len, REPLY_MAX - len, 0)) < 0 && errno == EINTR)
            ;
        if (n <= 0)
            return NULL;
        len += (size_t)n;
    }
}

/* Runs one command on fd and checks its reply: a return, and for guest-stats one holding stats. */
static bool run(int fd, cmd_t cmd)
{
    static const char *stats_path[] = {"return", "stats", NULL};
    static const char *return_path[] = {"return", NULL};
    const char *line = cmd == CMD_GET_STATS      ? fq.get_stats
                       : cmd == CMD_SET_INTERVAL ? fq.set_interval
                                                 : fq.get_interval;
    yajl_val tree;
    bool ok;

    atomic_fetch_add(&fq.commands, 1);
    if (send_line(fd, line) < 0 || (tree = read_reply(fd)) == NULL)
        return false;
    if (cmd == CMD_GET_STATS)
        ok = yajl_tree_get(tree, stats_path, yajl_t_object) != NULL;
    else if (cmd == CMD_GET_INTERVAL)
        ok = yajl_tree_get(tree, return_path, yajl_t_number) != NULL;
    else
        ok = yajl_tree_get(tree, return_path, yajl_t_object) != NULL;
    yajl_tree_free(tree);
    return ok;
}

static void read_guest(void *arg, size_t i)
{
    int fd = fq.fds[i];
    bool ok;

    (void)arg;
    if (fq.cycle == 0)
        ok = run(fd, CMD_GET_INTERVAL) && run(fd, CMD_SET_INTERVAL) && run(fd, CMD_GET_STATS);
    else if (fq.cycle % fq.verify_every == 0)
        ok = run(fd, CMD_GET_INTERVAL) && run(fd, CMD_GET_STATS);
    else
        ok = run(fd, CMD_GET_STATS);
    atomic_fetch_add(ok ? &fq.ok : &fq.failed, 1);
}

static void run_cycle(void *arg, unsigned i, bench_cycle_t *out)
{
    (void)arg;
    fq.cycle = i;
    atomic_store(&fq.ok, 0);
    atomic_store(&fq.failed, 0);
    atomic_store(&fq.commands, 0);
    bench_pool_timed_cycle(fq.pool, fq.n_fds, out);
    out->value_lists = atomic_load(&fq.commands); /* floor: commands sent */
    out->values = atomic_load(&fq.ok);
    out->sources = atomic_load(&fq.ok);
    out->errors = atomic_load(&fq.failed);
}

static bool check_cycle(void *arg, unsigned k, const bench_cycle_t *cycle)
{
    (void)arg;
    return bench_run_require_sources("floor_qmp", "guests", fq.min_guests, k, cycle);
}

/* Connects to path, reads the greeting and negotiates capabilities. Returns the descriptor, or -1. */
static int open_guest(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = TIMEOUT_S};
    yajl_val tree;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* The deadline, set once: blocking calls that give up after it, at no cost per command. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto fail;
    tree = read_reply(fd); /* the greeting */
    if (tree == NULL)
        goto fail;
    yajl_tree_free(tree);
    if (send_line(fd, "{\"execute\":\"qmp_capabilities\"}") < 0 || (tree = read_reply(fd)) == NULL)
        goto fail;
    yajl_tree_free(tree);
    return fd;
fail:
    close(fd);
    return -1;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: floor_qmp -d DIR [-P POOL] [-q QOM_PATH] [-I SECONDS] [-V VERIFY_EVERY] [-k CYCLES] "
                "[-w WARMUP] [-s MIN_GUESTS]\n"
                "  reads every DIR/NAME.qmp; defaults: pool 5, /machine/peripheral/balloon0, interval 10 s,\n"
                "  verify every 5 cycles, 5 cycles, 1 warm-up, at least 1 guest\n");
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *qom_path = "/machine/peripheral/balloon0";
    bench_run_opts_t opts = BENCH_RUN_OPTS_DEFAULT;
    unsigned pool = 5;
    long interval = 10;
    size_t cap = 0;
    DIR *d;
    struct dirent *e;
    int c, ret = 2;

    fq.verify_every = 5;
    while ((c = bench_run_getopt(argc, argv, "d:P:q:I:V:", &opts, usage)) != -1) {
        if (c == 'd')
            dir = optarg;
        else if (c == 'P')
            pool = (unsigned)strtoul(optarg, NULL, 10);
        else if (c == 'q')
            qom_path = optarg;
        else if (c == 'I')
            interval = strtol(optarg, NULL, 10);
        else
            fq.verify_every = (unsigned)strtoul(optarg, NULL, 10); /* 'V', the last one getopt can return */
    }
    if (optind != argc || dir == NULL || pool == 0 || opts.cycles == 0 || fq.verify_every == 0) {
        usage(stderr);
        return 2;
    }
    fq.min_guests = opts.min_sources;
    /* The path is pasted into JSON: the benchmark's paths need no escaping, refuse any that would. */
    if (strpbrk(qom_path, "\"\\") != NULL) {
        fprintf(stderr, "floor_qmp: The QOM path '%s' must not contain quotes or backslashes.\n", qom_path);
        return 2;
    }
    snprintf(fq.get_interval, sizeof(fq.get_interval),
             "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"%s\","
             "\"property\":\"guest-stats-polling-interval\"}}",
             qom_path);
    snprintf(fq.set_interval, sizeof(fq.set_interval),
             "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"%s\",\"property\":\"guest-stats-polling-interval\","
             "\"value\":%ld}}",
             qom_path, interval);
    snprintf(fq.get_stats, sizeof(fq.get_stats),
             "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"%s\",\"property\":\"guest-stats\"}}", qom_path);

    d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "floor_qmp: Cannot open the directory '%s': %s.\n", dir, strerror(errno));
        return 2;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[4096];
        int fd;

        if (len <= 4 || strcmp(e->d_name + len - 4, ".qmp") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        fd = open_guest(path);
        if (fd < 0) {
            fprintf(stderr, "floor_qmp: Cannot connect to the QMP socket '%s'.\n", path);
            goto out;
        }
        if (fq.n_fds == cap) {
            cap = cap != 0 ? cap * 2 : 64;
            fq.fds = realloc(fq.fds, cap * sizeof(*fq.fds));
            if (fq.fds == NULL)
                abort();
        }
        fq.fds[fq.n_fds++] = fd;
    }

    if (pool > fq.n_fds && fq.n_fds > 0)
        pool = (unsigned)fq.n_fds;
    fq.pool = bench_pool_new(pool, read_guest, NULL);
    if (fq.pool == NULL)
        abort();
    bench_run_result_t result;
    if (bench_run_cycles(&opts, run_cycle, check_cycle, NULL, &result) != 0)
        abort();
    bench_pool_free(fq.pool);
    printf("result plugin floor_qmp read_callbacks %u init_ms 0 cycles %u median_wall_ms %.3f "
           "median_cpu_ms %.3f median_sources %zu peak_rss_kib %ld log_errors 0 failed_cycles %u\n",
           pool, opts.cycles, result.median_wall_ms, result.median_cpu_ms, fq.n_fds, bench_peak_rss_kib(),
           result.failed_cycles);
    ret = result.failed_cycles > 0 ? 1 : 0;
out:
    closedir(d);
    for (size_t i = 0; i < fq.n_fds; i++)
        close(fq.fds[i]);
    free(fq.fds);
    return ret;
}
