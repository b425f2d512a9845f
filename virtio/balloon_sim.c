/* balloon-sim: QEMU/KVM guests' virtio balloons, simulated, each behind its own QMP socket.
 *
 *   balloon-sim --socket-dir DIR [--domain NAME[:PROFILE]]... [--domains N] [--qemu 7.2|10.0]
 *               [--stats 6|10|16] [--anon] [--memory MIB] [-S]
 *
 * One QMP UNIX socket per domain at DIR/NAME.qmp (mode 0600). Prints a line with "ready" once every
 * socket accepts, serves until SIGINT or SIGTERM, then removes its sockets and exits 0. Bad arguments:
 * one message on stderr, exit 2. Other failures: exit 1. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virtio/vb_guest.h"
#include "virtio/vb_sim.h"

#define MAX_DOMAINS 1000000
#define DEFAULT_MEMORY_MIB 1024

typedef struct domain_arg {
    char *name;
    vb_guest_profile_t profile;
} domain_arg_t;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: balloon-sim --socket-dir DIR [--domain NAME[:PROFILE]]... [--domains N]\n"
            "                   [--qemu 7.2|10.0] [--stats 6|10|16] [--anon] [--memory MIB] [-S]\n"
            "\n"
            "Simulates QEMU guests' virtio balloons, each behind a QMP socket DIR/NAME.qmp.\n"
            "\n"
            "  --socket-dir DIR     where the sockets go (created 0700 if missing; must not be\n"
            "                       world-writable)\n"
            "  --domain NAME[:PROFILE]\n"
            "                       a guest; NAME may hold any character but '/'. The part after\n"
            "                       the last ':' is the profile if it names one: linux (default),\n"
            "                       legacy, none, stuck, empty, slow\n"
            "  --domains N          adds dom1..domN with profile linux\n"
            "  --qemu 7.2|10.0      answer as QEMU 7.2 (default) or 10.0 does, with its number\n"
            "                       of stats (10 or 16) unless --stats says otherwise\n"
            "  --stats 6|10|16      stats in guest-stats: old QEMU, QEMU 7.2, QEMU 9.2+\n"
            "  --anon               the balloon at /machine/peripheral-anon/device[1], as with\n"
            "                       -balloon virtio (default: /machine/peripheral/balloon0)\n"
            "  --memory MIB         each guest's RAM (default %d)\n"
            "  -S, --prelaunch      start stopped, as qemu -S, until QMP cont\n"
            "\n"
            "Prints a line with \"ready\" when every socket accepts; stops on SIGINT or SIGTERM.\n",
            DEFAULT_MEMORY_MIB);
}

/* One message for bad arguments; returns the exit status 2. */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "balloon-sim: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " See 'balloon-sim --help'.\n");
    return 2;
}

/* A whole decimal number in [min, max]. */
static int parse_number(const char *s, unsigned long long min, unsigned long long max,
                        unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* NAME[:PROFILE]: split at the last ':' only when what follows names a profile, so that names may
 * hold ':' themselves ("a:b" is the domain "a:b", "a:b:legacy" is "a:b" with profile legacy). */
static int parse_domain(const char *arg, domain_arg_t *out)
{
    const char *colon = strrchr(arg, ':');
    vb_guest_profile_t profile = VB_GUEST_LINUX;
    size_t len = strlen(arg);

    if (colon != NULL && vb_guest_profile_parse(colon + 1, &profile) == 0)
        len = (size_t)(colon - arg);
    else
        profile = VB_GUEST_LINUX;
    out->name = strndup(arg, len);
    out->profile = profile;
    return out->name != NULL ? 0 : -ENOMEM;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"socket-dir", required_argument, NULL, 'd'},
        {"domain", required_argument, NULL, 'n'},
        {"domains", required_argument, NULL, 'N'},
        {"stats", required_argument, NULL, 's'},
        {"qemu", required_argument, NULL, 'q'},
        {"anon", no_argument, NULL, 'a'},
        {"memory", required_argument, NULL, 'm'},
        {"prelaunch", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    domain_arg_t *domains = NULL;
    size_t ndomains = 0, total;
    unsigned long long count = 0, stats = 0, memory_mib = DEFAULT_MEMORY_MIB;
    vb_qemu_version_t qemu = VB_QEMU_7_2;
    bool anon = false, prelaunch = false;
    vb_sim_t *sim = NULL;
    char err[512];
    sigset_t mask;
    int64_t started = now_ms();
    int opt, rc = 1;

    /* SIGINT and SIGTERM wait in a signalfd from the start: no window where they kill us with our
     * sockets left behind */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":hS", options, NULL)) != -1) {
        domain_arg_t *more;
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'n':
            more = realloc(domains, (ndomains + 1) * sizeof(*domains));
            if (more == NULL)
                goto oom;
            domains = more;
            if (parse_domain(optarg, &domains[ndomains]) < 0)
                goto oom;
            ndomains++;
            break;
        case 'N':
            if (parse_number(optarg, 0, MAX_DOMAINS, &count) < 0) {
                rc = bad("--domains wants a number from 0 to 1000000, not '%s'.", optarg);
                goto out;
            }
            break;
        case 's':
            if (parse_number(optarg, 6, 16, &stats) < 0 ||
                (stats != VB_STATS_LEGACY && stats != VB_STATS_QEMU72 && stats != VB_STATS_QEMU92)) {
                rc = bad("--stats wants 6, 10 or 16, not '%s'.", optarg);
                goto out;
            }
            break;
        case 'q':
            if (vb_qemu_version_parse(optarg, &qemu) < 0) {
                rc = bad("--qemu wants 7.2 or 10.0, not '%s'.", optarg);
                goto out;
            }
            break;
        case 'a':
            anon = true;
            break;
        case 'm':
            if (parse_number(optarg, 1, UINT64_C(1) << 24, &memory_mib) < 0) {
                rc = bad("--memory wants a size in MiB from 1 to 16777216, not '%s'.", optarg);
                goto out;
            }
            break;
        case 'S':
            prelaunch = true;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case ':':
            rc = bad("The option '%s' needs a value.", argv[optind - 1]);
            goto out;
        default:
            rc = bad("Unknown option '%s'.", argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        rc = bad("Unexpected argument '%s'.", argv[optind]);
        goto out;
    }
    if (dir == NULL) {
        rc = bad("The option --socket-dir DIR is required.");
        goto out;
    }
    if (stats == 0) /* the version's own number of stats */
        stats = vb_qemu_profile(qemu)->stats_count;
    total = ndomains + (size_t)count;
    if (total == 0) {
        rc = bad("No domain: give --domain NAME or --domains N.");
        goto out;
    }
    if (vb_sim_reserve_files(total, err, sizeof(err)) < 0) {
        fprintf(stderr, "balloon-sim: %s\n", err);
        goto out;
    }
    sim = vb_sim_new(vb_clock_system(), dir, err, sizeof(err));
    if (sim == NULL) {
        fprintf(stderr, "balloon-sim: %s\n", err);
        rc = errno == EPERM || errno == ENOTDIR ? 2 : 1;
        goto out;
    }
    for (size_t i = 0; i < total; i++) {
        char generated[32];
        vb_machine_config_t cfg = {
            .profile = VB_GUEST_LINUX,
            .stats_count = (unsigned)stats,
            .memory_bytes = (uint64_t)memory_mib << 20,
            .anon = anon,
            .prelaunch = prelaunch,
            .qemu = qemu,
        };
        int add;
        if (i < ndomains) {
            cfg.name = domains[i].name;
            cfg.profile = domains[i].profile;
        } else {
            snprintf(generated, sizeof(generated), "dom%zu", i - ndomains + 1);
            cfg.name = generated;
        }
        add = vb_sim_add(sim, &cfg, err, sizeof(err));
        if (add < 0) {
            fprintf(stderr, "balloon-sim: %s\n", err);
            /* what the arguments asked for cannot be: a usage error */
            rc = add == -EEXIST || add == -EINVAL || add == -ENAMETOOLONG ? 2 : 1;
            goto out;
        }
    }
    printf("balloon-sim: ready: %zu domains, sockets in %s (started in %" PRId64 " ms)\n", total,
           dir, now_ms() - started);
    fflush(stdout);
    if (vb_sim_run(sim, err, sizeof(err)) < 0) {
        fprintf(stderr, "balloon-sim: %s\n", err);
        goto out;
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "balloon-sim: Out of memory.\n");
    rc = 1;
out:
    vb_sim_free(sim); /* removes the sockets */
    for (size_t i = 0; i < ndomains; i++)
        free(domains[i].name);
    free(domains);
    return rc;
}
