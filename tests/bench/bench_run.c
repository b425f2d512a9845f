/* The bench programs' common options and cycle loop (see bench_run.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/bench_run.h"

int bench_run_getopt(int argc, char **argv, const char *optstring, bench_run_opts_t *opts,
                     void (*usage)(FILE *to))
{
    char all[128];
    int c;

    /* A leading ':' would make getopt report a missing argument as ':' instead of '?'. */
    if (snprintf(all, sizeof(all), "%sk:w:s:h", optstring) >= (int)sizeof(all) || optstring[0] == ':')
        abort();
    while ((c = getopt(argc, argv, all)) != -1) {
        switch (c) {
        case 'k':
            opts->cycles = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'w':
            opts->warmup = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 's':
            opts->min_sources = strtoul(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case '?':
            usage(stderr);
            exit(2);
        default:
            return c;
        }
    }
    return -1;
}

bool bench_run_require_sources(const char *program, const char *noun, unsigned long min, unsigned k,
                               const bench_cycle_t *cycle)
{
    if (cycle->sources >= min && cycle->errors == 0)
        return true;
    fprintf(stderr, "%s: Cycle %u read %" PRIu64 " %s with %" PRIu64 " failures; at least %lu and no failures "
                    "were required.\n",
            program, k, cycle->sources, noun, cycle->errors, min);
    return false;
}

int bench_run_cycles(const bench_run_opts_t *opts, bench_run_cycle_fn *cycle, bench_run_check_fn *check,
                     void *arg, bench_run_result_t *result)
{
    double *walls = calloc(opts->cycles, sizeof(double)), *cpus = calloc(opts->cycles, sizeof(double));
    double *sources = calloc(opts->cycles, sizeof(double));
    int ret = -ENOMEM;

    if (walls == NULL || cpus == NULL || sources == NULL)
        goto out;
    result->failed_cycles = 0;
    for (unsigned i = 0; i < opts->warmup + opts->cycles; i++) {
        bench_cycle_t c;

        memset(&c, 0, sizeof(c));
        cycle(arg, i, &c);
        if (i < opts->warmup) {
            printf("warmup %u wall_ms %.3f value_lists %" PRIu64 " sources %" PRIu64 "\n", i + 1,
                   c.wall_ms, c.value_lists, c.sources);
            continue;
        }
        unsigned k = i - opts->warmup;
        bench_print_cycle(k + 1, &c);
        walls[k] = c.wall_ms;
        cpus[k] = c.cpu_ms;
        sources[k] = (double)c.sources;
        if (!check(arg, k + 1, &c))
            result->failed_cycles++;
    }
    result->median_wall_ms = bench_median(walls, opts->cycles);
    result->median_cpu_ms = bench_median(cpus, opts->cycles);
    result->median_sources = bench_median(sources, opts->cycles);
    ret = 0;
out:
    free(walls);
    free(cpus);
    free(sources);
    return ret;
}
