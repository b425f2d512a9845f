/* The soak (make soak): the agent reads 100 simulated guests for 100000 cycles on a fast manual clock
 * (10 s per cycle), over the in-process transport backed by the device model (fault_fake.h), with a
 * few injected failures and a guest restarting every 1000 cycles so that error and re-discovery paths
 * run too. Every REPORT cycles it prints the resident set size and the open file descriptors, and it
 * fails if either grows past the first report (taken after a warm-up) by more than a small margin.
 *
 *   soak [CYCLES [GUESTS]]     default: a short run for make check (1000 cycles, 200 under
 *                              BALLOON_SKIP_SLOW); make soak runs 100000 cycles over 100 guests. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/bal_agent.h"
#include "tests/fault_fake.h"
#include "tests/tt_env.h"
#include "tests/tt_tally.h"
#include "tests/tt_time.h"

/* Under AddressSanitizer the quarantine of freed memory (256 MiB) makes RSS climb, and under valgrind
 * RSS is valgrind's: there only the descriptors are held flat, and leaks are the tool's to report. */
#define RSS_MEANINGFUL (!TT_ASAN)

/* Allowed growth over the first report: allocator noise, not a leak (a leak of 16 bytes per command
 * would be 190 MiB over the long run). */
#define RSS_SLACK_KIB 4096

static long rss_kib(void)
{
    long pages = -1, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    long n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory being read */
}

int main(int argc, char **argv)
{
    unsigned long cycles = tt_skip_slow() ? 200 : 1000;
    unsigned long guests = 100, report;
    bool check_rss;
    long rss0 = -1, fds0 = -1;
    bal_agent_config_t config = {0};
    bal_agent_t *agent = NULL;
    bal_error_t err = {0};
    tt_tally_t total = {0};
    int64_t t0;
    ff_counts_t counts;
    ff_t *f;
    int ret = 1;

    if (argc > 1)
        cycles = strtoul(argv[1], NULL, 10);
    if (argc > 2)
        guests = strtoul(argv[2], NULL, 10);
    if (cycles < 10 || guests == 0 || guests > 10000) {
        fprintf(stderr, "usage: soak [CYCLES >= 10 [GUESTS 1..10000]]\n");
        return 2;
    }
    report = cycles >= 100000 ? 10000 : cycles / 10;
    check_rss = RSS_MEANINGFUL && !tt_valgrind();

    /* the set shifts by one guest every 1000 cycles: room for every id it will use */
    f = ff_new(guests + cycles / 1000 + 1);
    ff_set_running(f, 0, guests);
    ff_set_failures(f, 5, 42); /* 0.5% of commands fail, in every way fault_fake knows */
    config.polling_interval_s = 10;
    config.refresh_interval_s = 60;
    config.restore_interval = true;
    config.clock = ff_clock(f);
    if (bal_agent_new_with_transport(&config, ff_transport(f), &agent, &err) != 0) {
        fprintf(stderr, "soak: %s\n", err.message);
        ff_free(f);
        return 1;
    }

    printf("soak: %lu cycles over %lu guests, a report every %lu cycles%s\n", cycles, guests, report,
           check_rss ? "" : " (RSS not checked: sanitizer or valgrind)");
    t0 = tt_mono_ms();
    for (unsigned long c = 1; c <= cycles; c++) {
        tt_tally_t t = {0};
        int rc;

        ff_advance_s(f, 10);
        if (c % 1000 == 0)
            ff_set_running(f, c / 1000, guests); /* one guest stops, another starts */
        rc = bal_agent_read(agent, tt_tally_sample, &t, &err);
        if (rc < 0 && t.samples == 0) {
            fprintf(stderr, "soak: cycle %lu read nothing: %s\n", c, err.message);
            goto out;
        }
        /* when a guest stops and another starts, the newcomer is read from the next cycle on */
        if (t.samples != guests && !(c % 1000 == 0 && t.samples == guests - 1)) {
            fprintf(stderr, "soak: cycle %lu reported %lu guests, not %lu\n", c, t.samples, guests);
            goto out;
        }
        total.samples += t.samples;
        total.ok += t.ok;
        total.failed += t.failed;
        if (c % report == 0) {
            long rss = rss_kib(), fds = open_fds();

            printf("soak: cycle %6lu: rss %6ld KiB, %3ld fds, %.1f s, %lu samples (%lu ok, %lu failed)\n", c, rss,
                   fds, (double)(tt_mono_ms() - t0) / 1000, total.samples, total.ok, total.failed);
            fflush(stdout);
            if (rss < 0 || fds < 0) {
                fprintf(stderr, "soak: /proc/self could not be read\n");
                goto out;
            }
            if (rss0 < 0) {
                rss0 = rss;
                fds0 = fds;
            } else if ((check_rss && rss > rss0 + RSS_SLACK_KIB) || fds > fds0) {
                fprintf(stderr, "soak: FAILED: grew from %ld KiB and %ld fds to %ld KiB and %ld fds\n", rss0, fds0,
                        rss, fds);
                goto out;
            }
        }
    }
    /* most samples must be good: the injected failures touch a few domains per cycle */
    if (total.ok < total.samples * 9 / 10) {
        fprintf(stderr, "soak: FAILED: only %lu of %lu samples were ok\n", total.ok, total.samples);
        goto out;
    }
    ret = 0;
out:
    bal_agent_free(agent);
    ff_counts(f, &counts);
    printf("soak: %lu commands, %lu failed on purpose, %lu outside the allow-list\n", counts.executes,
           counts.failures_injected, counts.refused);
    if (counts.refused > 0)
        ret = 1;
    ff_free(f);
    printf("soak: %s\n", ret == 0 ? "flat" : "FAILED");
    return ret;
}
