/* balloon-sim: QEMU/KVM guests' virtio balloons, simulated, each behind its own QMP socket.
 *
 *   balloon-sim --socket-dir DIR [--domain NAME[:PROFILE]]... [--domains N] [--stats 6|10|16]
 *               [--anon] [--memory MIB] [-S]
 *
 * One QMP UNIX socket per domain at DIR/NAME.qmp (mode 0600). Prints a line with "ready" once every
 * socket accepts, serves until SIGINT or SIGTERM, then removes its sockets and exits 0. Bad arguments:
 * one message on stderr, exit 2. Other failures: exit 1. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
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
            "                   [--stats 6|10|16] [--anon] [--memory MIB] [-S]\n"
            "\n"
            "Simulates QEMU 7.2 guests' virtio balloons, each behind a QMP socket DIR/NAME.qmp.\n"
            "\n"
            "  --socket-dir DIR     where the sockets go (created 0700 if missing; must not be\n"
            "                       world-writable)\n"
            "  --domain NAME[:PROFILE]\n"
            "                       a guest; NAME may hold any character but '/'. The part after\n"
            "                       the last ':' is the profile if it names one: linux (default),\n"
            "                       legacy, none, stuck, empty, slow, oom\n"
            "  --domains N          adds dom1..domN with profile linux\n"
            "  --stats 6|10|16      stats in guest-stats: old QEMU, QEMU 7.2 (default), QEMU 9.2+\n"
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

/* The command line. */
typedef struct args {
    const char *dir;
    domain_arg_t *domains; /* --domain, in order */
    size_t ndomains;
    unsigned long long count, stats, memory_mib;
    bool anon, prelaunch;
} args_t;

#define GO_ON (-1)

/* One --domain NAME[:PROFILE] more. Returns GO_ON, or the exit status 1 (out of memory). */
static int add_domain_arg(args_t *a, const char *arg)
{
    domain_arg_t *more = realloc(a->domains, (a->ndomains + 1) * sizeof(*a->domains));

    if (more == NULL)
        goto oom;
    a->domains = more;
    if (parse_domain(arg, &a->domains[a->ndomains]) < 0)
        goto oom;
    a->ndomains++;
    return GO_ON;
oom:
    fprintf(stderr, "balloon-sim: Out of memory.\n");
    return 1;
}

/* One option (getopt_long's opt, optarg). Returns GO_ON, or the exit status: 0 after --help, 2 for
 * bad usage, 1 when out of memory. */
static int take_option(args_t *a, int opt, char **argv)
{
    switch (opt) {
    case 'd':
        a->dir = optarg;
        return GO_ON;
    case 'n':
        return add_domain_arg(a, optarg);
    case 'N':
        if (parse_number(optarg, 0, MAX_DOMAINS, &a->count) < 0)
            return bad("--domains wants a number from 0 to 1000000, not '%s'.", optarg);
        return GO_ON;
    case 's':
        if (parse_number(optarg, 6, 16, &a->stats) < 0 ||
            (a->stats != VB_STATS_LEGACY && a->stats != VB_STATS_QEMU72 && a->stats != VB_STATS_QEMU92))
            return bad("--stats wants 6, 10 or 16, not '%s'.", optarg);
        return GO_ON;
    case 'a':
        a->anon = true;
        return GO_ON;
    case 'm':
        if (parse_number(optarg, 1, UINT64_C(1) << 24, &a->memory_mib) < 0)
            return bad("--memory wants a size in MiB from 1 to 16777216, not '%s'.", optarg);
        return GO_ON;
    case 'S':
        a->prelaunch = true;
        return GO_ON;
    case 'h':
        usage(stdout);
        return 0;
    case ':':
        return bad("The option '%s' needs a value.", argv[optind - 1]);
    default:
        return bad("Unknown option '%s'.", argv[optind - 1]);
    }
}

/* Reads the command line into a. Returns GO_ON, or the exit status as take_option. */
static int parse_args(int argc, char **argv, args_t *a)
{
    static const struct option options[] = {
        {"socket-dir", required_argument, NULL, 'd'},
        {"domain", required_argument, NULL, 'n'},
        {"domains", required_argument, NULL, 'N'},
        {"stats", required_argument, NULL, 's'},
        {"anon", no_argument, NULL, 'a'},
        {"memory", required_argument, NULL, 'm'},
        {"prelaunch", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt, rc;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":hS", options, NULL)) != -1) {
        rc = take_option(a, opt, argv);
        if (rc != GO_ON)
            return rc;
    }
    if (optind < argc)
        return bad("Unexpected argument '%s'.", argv[optind]);
    if (a->dir == NULL)
        return bad("The option --socket-dir DIR is required.");
    if (a->ndomains + (size_t)a->count == 0)
        return bad("No domain: give --domain NAME or --domains N.");
    return GO_ON;
}

/* Adds the --domain guests, then dom1..domN. Returns GO_ON, or the exit status: 2 for what the
 * arguments asked for but cannot be, 1 for other failures. */
static int add_domains(vb_sim_t *sim, const args_t *a)
{
    size_t total = a->ndomains + (size_t)a->count;
    char err[512];

    for (size_t i = 0; i < total; i++) {
        char generated[32];
        vb_machine_config_t cfg = {
            .profile = VB_GUEST_LINUX,
            .stats_count = (unsigned)a->stats,
            .memory_bytes = (uint64_t)a->memory_mib << 20,
            .anon = a->anon,
            .prelaunch = a->prelaunch,
        };
        int add;
        if (i < a->ndomains) {
            cfg.name = a->domains[i].name;
            cfg.profile = a->domains[i].profile;
        } else {
            snprintf(generated, sizeof(generated), "dom%zu", i - a->ndomains + 1);
            cfg.name = generated;
        }
        add = vb_sim_add(sim, &cfg, err, sizeof(err));
        if (add < 0) {
            fprintf(stderr, "balloon-sim: %s\n", err);
            /* what the arguments asked for cannot be: a usage error */
            return add == -EEXIST || add == -EINVAL || add == -ENAMETOOLONG ? 2 : 1;
        }
    }
    return GO_ON;
}

int main(int argc, char **argv)
{
    args_t a = {.stats = VB_STATS_QEMU72, .memory_mib = DEFAULT_MEMORY_MIB};
    vb_sim_t *sim = NULL;
    char err[512];
    sigset_t mask;
    int64_t started = now_ms();
    int rc;

    /* SIGINT and SIGTERM wait in a signalfd from the start: no window where they kill us with our
     * sockets left behind */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = parse_args(argc, argv, &a);
    if (rc != GO_ON)
        goto out;
    rc = 1;
    if (vb_sim_reserve_files(a.ndomains + (size_t)a.count, err, sizeof(err)) < 0) {
        fprintf(stderr, "balloon-sim: %s\n", err);
        goto out;
    }
    sim = vb_sim_new(vb_clock_system(), a.dir, err, sizeof(err));
    if (sim == NULL) {
        fprintf(stderr, "balloon-sim: %s\n", err);
        rc = errno == EPERM || errno == ENOTDIR ? 2 : 1;
        goto out;
    }
    rc = add_domains(sim, &a);
    if (rc != GO_ON)
        goto out;
    printf("balloon-sim: ready: %zu domains, sockets in %s (started in %" PRId64 " ms)\n",
           a.ndomains + (size_t)a.count, a.dir, now_ms() - started);
    fflush(stdout);
    rc = 1;
    if (vb_sim_run(sim, err, sizeof(err)) < 0) {
        fprintf(stderr, "balloon-sim: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    vb_sim_free(sim); /* removes the sockets */
    for (size_t i = 0; i < a.ndomains; i++)
        free(a.domains[i].name);
    free(a.domains);
    return rc;
}
