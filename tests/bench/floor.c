/* floor: the cheapest possible read cycle through libvirt, which no plugin can beat. It lists the
 * running domains once, then per cycle sends each one `qom-get guest-stats` of a fixed QOM path with
 * virDomainQemuMonitorCommand, P commands in flight at once (the same pool size as the plugin's),
 * and only checks that the reply is a QMP return. No parsing, no dispatch, none of the agent's code.
 * Prints the same per-cycle lines as plugin_host. */
#include <errno.h>
#include <inttypes.h>
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

#include "tests/bench/bench_util.h"

static struct {
    virDomainPtr *domains;
    size_t n_domains;
    char command[512];
    pthread_barrier_t start, done;
    atomic_size_t next;
    atomic_uint_fast64_t ok, failed;
    bool quit;
} floor_state;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_barrier_wait(&floor_state.start);
        if (floor_state.quit)
            break;
        for (size_t i; (i = atomic_fetch_add(&floor_state.next, 1)) < floor_state.n_domains;) {
            char *reply = NULL;
            if (virDomainQemuMonitorCommand(floor_state.domains[i], floor_state.command, &reply, 0) == 0 &&
                reply != NULL && strstr(reply, "\"return\"") != NULL)
                atomic_fetch_add(&floor_state.ok, 1);
            else
                atomic_fetch_add(&floor_state.failed, 1);
            free(reply);
        }
        pthread_barrier_wait(&floor_state.done);
    }
    return NULL;
}

static void ignore_libvirt_errors(void *opaque, virErrorPtr error)
{
    (void)opaque;
    (void)error;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: floor [-u URI] [-P POOL] [-k CYCLES] [-w WARMUP] [-f NAME_PREFIX] [-q QOM_PATH] "
                "[-s MIN_DOMAINS]\n"
                "  defaults: qemu:///system, pool 5, 5 cycles, 1 warm-up, every running domain,\n"
                "  /machine/peripheral/balloon0, at least 1 domain\n");
}

int main(int argc, char **argv)
{
    const char *uri = "qemu:///system", *prefix = "", *qom_path = "/machine/peripheral/balloon0";
    unsigned pool = 5, cycles = 5, warmup = 1;
    unsigned long min_domains = 1;
    int c;

    while ((c = getopt(argc, argv, "u:P:k:w:f:q:s:h")) != -1) {
        switch (c) {
        case 'u':
            uri = optarg;
            break;
        case 'P':
            pool = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            cycles = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'w':
            warmup = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            prefix = optarg;
            break;
        case 'q':
            qom_path = optarg;
            break;
        case 's':
            min_domains = strtoul(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || pool == 0 || cycles == 0) {
        usage(stderr);
        return 2;
    }
    /* The path is pasted into JSON: the benchmark's paths need no escaping, refuse any that would. */
    if (strpbrk(qom_path, "\"\\") != NULL) {
        fprintf(stderr, "floor: The QOM path '%s' must not contain quotes or backslashes.\n", qom_path);
        return 2;
    }
    snprintf(floor_state.command, sizeof(floor_state.command),
             "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"%s\",\"property\":\"guest-stats\"}}",
             qom_path);

    virSetErrorFunc(NULL, ignore_libvirt_errors);
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
    pthread_t *threads = calloc(pool, sizeof(*threads));
    if (threads == NULL || pthread_barrier_init(&floor_state.start, NULL, pool + 1) != 0 ||
        pthread_barrier_init(&floor_state.done, NULL, pool + 1) != 0)
        abort();
    for (unsigned i = 0; i < pool; i++)
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0)
            abort();

    double *walls = calloc(cycles, sizeof(double)), *cpus = calloc(cycles, sizeof(double));
    if (walls == NULL || cpus == NULL)
        abort();
    unsigned bad = 0;
    for (unsigned i = 0; i < warmup + cycles; i++) {
        atomic_store(&floor_state.next, 0);
        atomic_store(&floor_state.ok, 0);
        atomic_store(&floor_state.failed, 0);
        int64_t wall0 = bench_wall_ns(), cpu0 = bench_cpu_ns();
        pthread_barrier_wait(&floor_state.start);
        pthread_barrier_wait(&floor_state.done);
        bench_cycle_t cycle = {
            .wall_ms = (double)(bench_wall_ns() - wall0) / 1e6,
            .cpu_ms = (double)(bench_cpu_ns() - cpu0) / 1e6,
            .value_lists = atomic_load(&floor_state.ok),
            .values = atomic_load(&floor_state.ok),
            .sources = atomic_load(&floor_state.ok),
            .errors = atomic_load(&floor_state.failed),
        };
        if (i < warmup) {
            printf("warmup %u wall_ms %.3f value_lists %" PRIu64 " sources %" PRIu64 "\n", i + 1,
                   cycle.wall_ms, cycle.value_lists, cycle.sources);
            continue;
        }
        bench_print_cycle(i - warmup + 1, &cycle);
        walls[i - warmup] = cycle.wall_ms;
        cpus[i - warmup] = cycle.cpu_ms;
        if (cycle.sources < min_domains || cycle.errors > 0) {
            fprintf(stderr, "floor: Cycle %u read %" PRIu64 " domains with %" PRIu64 " failures; at "
                            "least %lu and no failures were required.\n",
                    i - warmup + 1, cycle.sources, cycle.errors, min_domains);
            bad++;
        }
    }

    floor_state.quit = true;
    pthread_barrier_wait(&floor_state.start);
    for (unsigned i = 0; i < pool; i++)
        pthread_join(threads[i], NULL);
    printf("result plugin floor read_callbacks %u init_ms 0 cycles %u median_wall_ms %.3f "
           "median_cpu_ms %.3f median_sources %zu peak_rss_kib %ld log_errors 0 failed_cycles %u\n",
           pool, cycles, bench_median(walls, cycles), bench_median(cpus, cycles),
           floor_state.n_domains, bench_peak_rss_kib(), bad);
    free(walls);
    free(cpus);
    free(threads);
    for (size_t i = 0; i < floor_state.n_domains; i++)
        virDomainFree(floor_state.domains[i]);
    free(floor_state.domains);
    pthread_barrier_destroy(&floor_state.start);
    pthread_barrier_destroy(&floor_state.done);
    virConnectClose(conn);
    return bad > 0 ? 1 : 0;
}
