/* floor: the cheapest possible read cycle through libvirt, which no plugin can beat. It lists the
 * running domains once, then per cycle sends each one `qom-get guest-stats` of a fixed QOM path with
 * virDomainQemuMonitorCommand, P commands in flight at once (the same pool size as the plugin's),
 * and only checks that the reply is a QMP return. No parsing, no dispatch, none of the agent's code.
 * Prints the same per-cycle lines as plugin_host.
 *
 * -e: libvirt's default event loop is registered first and iterates on a thread of its own, as in
 * every client that takes lifecycle events or keeps its connection alive (collectd's virt plugin,
 * ours): each call then also takes the connection's socket out of the loop and puts it back.
 * -p: each reply is also parsed with yajl_tree_parse and its "return" looked up, as the socket floor
 * (floor_qmp) does and as a plugin must, to read the stats. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <yajl/yajl_tree.h>

#include "tests/bench/bench_pool.h"
#include "tests/bench/bench_run.h"
#include "tests/bench/bench_util.h"

static struct {
    virDomainPtr *domains;
    size_t n_domains;
    char command[512];
    bench_pool_t *pool;
    atomic_uint_fast64_t ok, failed;
    unsigned long min_domains;
    bool parse; /* -p */
} floor_state;

/* -p: whether reply is a JSON object with a "return" member, parsed with yajl_tree_parse. */
static bool parsed_return(const char *reply)
{
    static const char *path[] = {"return", NULL};
    yajl_val tree = yajl_tree_parse(reply, NULL, 0);
    bool ok = tree != NULL && yajl_tree_get(tree, path, yajl_t_any) != NULL;

    yajl_tree_free(tree);
    return ok;
}

static void read_domain(void *arg, size_t i)
{
    char *reply = NULL;

    (void)arg;
    if (virDomainQemuMonitorCommand(floor_state.domains[i], floor_state.command, &reply, 0) == 0 &&
        reply != NULL && (floor_state.parse ? parsed_return(reply) : strstr(reply, "\"return\"") != NULL))
        atomic_fetch_add(&floor_state.ok, 1);
    else
        atomic_fetch_add(&floor_state.failed, 1);
    free(reply);
}

static void run_cycle(void *arg, unsigned i, bench_cycle_t *out)
{
    (void)arg;
    (void)i;
    atomic_store(&floor_state.ok, 0);
    atomic_store(&floor_state.failed, 0);
    bench_pool_timed_cycle(floor_state.pool, floor_state.n_domains, out);
    out->value_lists = atomic_load(&floor_state.ok);
    out->values = atomic_load(&floor_state.ok);
    out->sources = atomic_load(&floor_state.ok);
    out->errors = atomic_load(&floor_state.failed);
}

static bool check_cycle(void *arg, unsigned k, const bench_cycle_t *cycle)
{
    (void)arg;
    return bench_run_require_sources("floor", "domains", floor_state.min_domains, k, cycle);
}

static void ignore_libvirt_errors(void *opaque, virErrorPtr error)
{
    (void)opaque;
    (void)error;
}

/* -e: libvirt's event loop, for the process's life (its exit ends the thread). */
static void *event_loop(void *arg)
{
    (void)arg;
    while (virEventRunDefaultImpl() == 0)
        ;
    fprintf(stderr, "floor: libvirt's event loop failed.\n");
    abort();
}

static void usage(FILE *to)
{
    fprintf(to, "usage: floor [-e] [-p] [-u URI] [-P POOL] [-k CYCLES] [-w WARMUP] [-f NAME_PREFIX] [-q QOM_PATH] "
                "[-s MIN_DOMAINS]\n"
                "  defaults: no event loop, replies not parsed, qemu:///system, pool 5, 5 cycles, 1 warm-up, every running\n"
                "  domain, /machine/peripheral/balloon0, at least 1 domain\n");
}

int main(int argc, char **argv)
{
    const char *uri = "qemu:///system", *prefix = "", *qom_path = "/machine/peripheral/balloon0";
    bench_run_opts_t run = BENCH_RUN_OPTS_DEFAULT;
    unsigned pool = 5;
    bool events = false;
    int c;

    while ((c = bench_run_getopt(argc, argv, "epu:P:f:q:", &run, usage)) != -1) {
        if (c == 'e')
            events = true;
        else if (c == 'p')
            floor_state.parse = true;
        else if (c == 'u')
            uri = optarg;
        else if (c == 'P')
            pool = (unsigned)strtoul(optarg, NULL, 10);
        else if (c == 'f')
            prefix = optarg;
        else
            qom_path = optarg; /* 'q', the last one getopt can return */
    }
    if (optind != argc || pool == 0 || run.cycles == 0) {
        usage(stderr);
        return 2;
    }
    floor_state.min_domains = run.min_sources;
    /* The path is pasted into JSON: the benchmark's paths need no escaping, refuse any that would. */
    if (strpbrk(qom_path, "\"\\") != NULL) {
        fprintf(stderr, "floor: The QOM path '%s' must not contain quotes or backslashes.\n", qom_path);
        return 2;
    }
    snprintf(floor_state.command, sizeof(floor_state.command),
             "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"%s\",\"property\":\"guest-stats\"}}",
             qom_path);

    virSetErrorFunc(NULL, ignore_libvirt_errors);
    if (events) {
        pthread_t loop;

        if (virEventRegisterDefaultImpl() < 0 || pthread_create(&loop, NULL, event_loop, NULL) != 0) {
            fprintf(stderr, "floor: Cannot run libvirt's event loop.\n");
            return 2;
        }
        pthread_detach(loop);
    }
    virConnectPtr conn = virConnectOpen(uri);
    if (conn == NULL) {
        virErrorPtr e = virGetLastError();
        fprintf(stderr, "floor: Cannot connect to '%s': %s\n", uri, e && e->message ? e->message : "?");
        return 2;
    }
    virDomainPtr *all = NULL;
    int n = virConnectListAllDomains(conn, &all, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) {
        fprintf(stderr, "floor: Cannot list the domains of '%s'.\n", uri);
        virConnectClose(conn);
        return 2;
    }
    floor_state.domains = calloc((size_t)n + 1, sizeof(*floor_state.domains));
    if (floor_state.domains == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(all[i]);
        if (name != NULL && strncmp(name, prefix, strlen(prefix)) == 0)
            floor_state.domains[floor_state.n_domains++] = all[i];
        else
            virDomainFree(all[i]);
    }
    free(all);

    if (pool > floor_state.n_domains && floor_state.n_domains > 0)
        pool = (unsigned)floor_state.n_domains;
    floor_state.pool = bench_pool_new(pool, read_domain, NULL);
    if (floor_state.pool == NULL)
        abort();

    bench_run_result_t result;
    if (bench_run_cycles(&run, run_cycle, check_cycle, NULL, &result) != 0)
        abort();
    bench_pool_free(floor_state.pool);
    printf("result plugin floor read_callbacks %u init_ms 0 cycles %u median_wall_ms %.3f "
           "median_cpu_ms %.3f median_sources %zu peak_rss_kib %ld log_errors 0 failed_cycles %u\n",
           pool, run.cycles, result.median_wall_ms, result.median_cpu_ms, floor_state.n_domains,
           bench_peak_rss_kib(), result.failed_cycles);
    for (size_t i = 0; i < floor_state.n_domains; i++)
        virDomainFree(floor_state.domains[i]);
    free(floor_state.domains);
    virConnectClose(conn);
    return result.failed_cycles > 0 ? 1 : 0;
}
