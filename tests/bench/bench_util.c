/* Measuring helpers shared by the plugin host and the floor program. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/bench/bench_util.h"

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_wall_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t bench_cpu_ns(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t flen = strlen(field);
    long kib = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kib = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

long bench_peak_rss_kib(void)
{
    return status_kib("VmHWM");
}

long bench_rss_kib(void)
{
    return status_kib("VmRSS");
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, size_t n)
{
    qsort(values, n, sizeof(*values), compare_double);
    if (n % 2 == 1)
        return values[n / 2];
    return (values[n / 2 - 1] + values[n / 2]) / 2;
}

void bench_print_cycle(unsigned index, const bench_cycle_t *c)
{
    printf("cycle %u wall_ms %.3f cpu_ms %.3f value_lists %" PRIu64 " values %" PRIu64
           " sources %" PRIu64 " notifications %" PRIu64 " errors %" PRIu64 "\n",
           index, c->wall_ms, c->cpu_ms, c->value_lists, c->values, c->sources, c->notifications,
           c->errors);
    fflush(stdout);
}
