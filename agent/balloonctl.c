/* balloonctl: the operator's quick look at the guests' balloon stats, over the same agent core as the
 * collectd plugin. One read cycle per command (watch: one per refresh), observe-only except for
 * set-interval. Exit status: 0 when every selected domain answered, 1 when some failed (one line each
 * on stderr), 2 for a usage error (one message). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "agent/bal_agent.h"
#include "agent/bal_limits.h"
#include "agent/bal_open.h"
#include "agent/bal_qmp.h"
#include "agent/bal_text.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define MAX_SELECTORS 64
#define MAX_COUNT 1000000      /* watch --count */
#define MAX_REFRESH_S 86400    /* watch --interval */
#define MIB (1024.0 * 1024.0)

typedef enum command { CMD_LIST, CMD_STATS, CMD_SET_INTERVAL, CMD_WATCH } command_t;

typedef struct options {
    const char *uri;
    const char *qmp_dir;
    const char *qom_path;
    const char *selectors[MAX_SELECTORS];
    size_t n_selectors;
    command_t command;
    const char *command_name; /* NULL until the command is read */
    bool json;
    bool verbose;
    int64_t seconds;     /* set-interval */
    long count;          /* watch: refreshes, 0 forever */
    long refresh_s;      /* watch */
    int timeout_ms;
} options_t;

/* One domain's sample, copied out of the callback (its pointers live only during the call). */
typedef struct row {
    char *name;
    char *uuid;
    char *path;
    char *error;
    bal_domain_state_t state;
    bool has_stats;
    bal_stats_t stats;
    int64_t interval;
} row_t;

typedef struct rows {
    row_t *items;
    size_t count, cap;
    bool oom;
} rows_t;

static volatile sig_atomic_t interrupted;

static void usage_line(FILE *out)
{
    fputs("Usage: balloonctl [--connect URI | --qmp-dir DIR] [--qom-path PATH] [--domain NAME|/RE/]...\n"
          "                  [--timeout MS] [--verbose] COMMAND\n"
          "Commands:\n"
          "  list                    each domain's balloon path, polling interval and state\n"
          "  stats [--json]          each domain's guest memory stats\n"
          "  set-interval SECONDS    set guest-stats-polling-interval (0 turns polling off)\n"
          "  watch [--interval S] [--count N]\n"
          "                          a live stats table, refreshed every S seconds (2), until ^C\n",
          out);
}

/* Names and messages come from the outside (a socket's file name, QEMU's error text): each stays on one
 * line of the terminal, with no control characters and valid UTF-8 (bal_text.h). */
static void put_clean(FILE *out, const char *s)
{
    char *clean = bal_text_dup_clean(s, 0);

    fputs(clean != NULL ? clean : "(out of memory)", out);
    free(clean);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    fputs("balloonctl: ", stderr);
    put_clean(stderr, message);
    fputs(" Try 'balloonctl --help'.\n", stderr);
    return EXIT_USAGE;
}

static void log_to_stderr(void *opaque, bal_log_level_t level, const char *message)
{
    const options_t *o = opaque;

    if (level > BAL_LOG_ERR && !o->verbose)
        return;
    fputs("balloonctl: ", stderr);
    put_clean(stderr, message);
    fputc('\n', stderr);
}

/* Every number balloonctl reads follows bal_limits_parse_number's rule: digits only. */
static bool parse_long(const char *s, long min, long max, long *out)
{
    uint64_t v;

    if (!bal_limits_parse_number(s, (uint64_t)min, (uint64_t)max, &v))
        return false;
    *out = (long)v;
    return true;
}

/* A word that is not an option: the command, then set-interval's number, which is taken as it is even
 * when it starts with '-' ("-1" is a number out of range, not an unknown option). *next is the index
 * of the word after arg. */
static int take_word(options_t *o, const char *arg, int argc, char **argv, int *next)
{
    const char *seconds;
    uint64_t secs;

    if (o->command_name != NULL)
        return usage_error("The argument '%s' after the command '%s' is not expected.", arg,
                           o->command_name);
    if (strcmp(arg, "list") == 0) {
        o->command = CMD_LIST;
    } else if (strcmp(arg, "stats") == 0) {
        o->command = CMD_STATS;
    } else if (strcmp(arg, "watch") == 0) {
        o->command = CMD_WATCH;
    } else if (strcmp(arg, "set-interval") == 0) {
        o->command = CMD_SET_INTERVAL;
        if (*next >= argc)
            return usage_error("The command set-interval needs a number of seconds.");
        seconds = argv[(*next)++];
        if (!bal_limits_parse_number(seconds, 0, (uint64_t)BAL_LIMIT_POLLING_INTERVAL_MAX, &secs))
            return usage_error("The interval '%s' is not a whole number of seconds from 0 to %lld, in "
                               "digits only.",
                               seconds, (long long)BAL_LIMIT_POLLING_INTERVAL_MAX);
        o->seconds = (int64_t)secs;
    } else {
        return usage_error("The command '%s' is not known.", arg);
    }
    o->command_name = arg;
    return 0;
}

static int parse_args(int argc, char **argv, options_t *o)
{
    enum { OPT_CONNECT = 256, OPT_QMP_DIR, OPT_QOM_PATH, OPT_DOMAIN, OPT_JSON, OPT_COUNT, OPT_INTERVAL,
           OPT_TIMEOUT, OPT_VERBOSE, OPT_HELP };
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"qmp-dir", required_argument, NULL, OPT_QMP_DIR},
        {"qom-path", required_argument, NULL, OPT_QOM_PATH},
        {"domain", required_argument, NULL, OPT_DOMAIN},
        {"json", no_argument, NULL, OPT_JSON},
        {"count", required_argument, NULL, OPT_COUNT},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    bool have_count = false, have_interval = false;
    long v;
    int c, rc;

    o->refresh_s = 2;
    opterr = 0; /* our own messages */
    /* Options may come before or after the command (stats --json). The words are taken in order
     * ("-" first in the option string), so that set-interval's number is read right after it. */
    while ((c = getopt_long(argc, argv, "-:", longopts, NULL)) != -1) {
        bal_error_t err = {0};

        switch (c) {
        case 1:
            rc = take_word(o, optarg, argc, argv, &optind);
            if (rc != 0)
                return rc;
            break;
        case OPT_CONNECT:
            o->uri = optarg;
            break;
        case OPT_QMP_DIR:
            o->qmp_dir = optarg;
            break;
        case OPT_QOM_PATH:
            /* Refused here, before anything is opened or sent. */
            if (bal_qmp_check_path(optarg, &err) < 0)
                return usage_error("The --qom-path is refused: %s", err.message);
            o->qom_path = optarg;
            break;
        case OPT_DOMAIN:
            if (bal_agent_check_selector(optarg, &err) < 0)
                return usage_error("%s", err.message);
            if (o->n_selectors == MAX_SELECTORS)
                return usage_error("At most %d --domain options are accepted.", MAX_SELECTORS);
            o->selectors[o->n_selectors++] = optarg;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_COUNT:
            if (!parse_long(optarg, 1, MAX_COUNT, &v))
                return usage_error("The --count '%s' is not a whole number from 1 to %d, in digits only.",
                                   optarg, MAX_COUNT);
            o->count = v;
            have_count = true;
            break;
        case OPT_INTERVAL:
            if (!parse_long(optarg, 1, MAX_REFRESH_S, &v))
                return usage_error("The --interval '%s' is not a whole number of seconds from 1 to %d, in "
                                   "digits only.",
                                   optarg, MAX_REFRESH_S);
            o->refresh_s = v;
            have_interval = true;
            break;
        case OPT_TIMEOUT:
            if (!parse_long(optarg, BAL_LIMIT_TIMEOUT_MS_MIN, BAL_LIMIT_TIMEOUT_MS_MAX, &v))
                return usage_error("The --timeout '%s' is not a whole number of milliseconds from %d to %d, "
                                   "in digits only.",
                                   optarg, BAL_LIMIT_TIMEOUT_MS_MIN, BAL_LIMIT_TIMEOUT_MS_MAX);
            o->timeout_ms = (int)v;
            break;
        case OPT_VERBOSE:
            o->verbose = true;
            break;
        case OPT_HELP:
            usage_line(stdout);
            exit(0);
        case ':':
            return usage_error("The option '%s' needs a value.", argv[optind - 1]);
        default:
            return usage_error("The option '%s' is not known.", argv[optind - 1]);
        }
    }
    /* Words after "--" are words, whatever they look like. */
    while (optind < argc) {
        int next = optind + 1;

        rc = take_word(o, argv[optind], argc, argv, &next);
        if (rc != 0)
            return rc;
        optind = next;
    }
    if (o->command_name == NULL)
        return usage_error("No command was given.");
    if (o->uri != NULL && o->qmp_dir != NULL)
        return usage_error("Give --connect or --qmp-dir, not both.");
    if (o->json && o->command != CMD_STATS)
        return usage_error("Only the command stats takes --json.");
    if ((have_count || have_interval) && o->command != CMD_WATCH)
        return usage_error("Only the command watch takes --count and --interval.");
    return 0;
}

/* ---- samples ---- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void rows_clear(rows_t *rows)
{
    for (size_t i = 0; i < rows->count; i++) {
        free(rows->items[i].name);
        free(rows->items[i].uuid);
        free(rows->items[i].path);
        free(rows->items[i].error);
    }
    rows->count = 0;
    rows->oom = false;
}

static void rows_free(rows_t *rows)
{
    rows_clear(rows);
    free(rows->items);
    rows->items = NULL;
    rows->cap = 0;
}

static void collect(void *opaque, const bal_sample_t *s)
{
    rows_t *rows = opaque;
    row_t *r;

    if (rows->count == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 16;
        row_t *items = realloc(rows->items, cap * sizeof(*items));
        if (items == NULL) {
            rows->oom = true;
            return;
        }
        rows->items = items;
        rows->cap = cap;
    }
    r = &rows->items[rows->count];
    memset(r, 0, sizeof(*r));
    r->name = dup_or_null(s->name);
    r->uuid = dup_or_null(s->uuid);
    r->path = dup_or_null(s->balloon_path);
    r->error = dup_or_null(s->error);
    if (r->name == NULL || r->uuid == NULL || (s->balloon_path && r->path == NULL) ||
        (s->error && r->error == NULL)) {
        free(r->name);
        free(r->uuid);
        free(r->path);
        free(r->error);
        rows->oom = true;
        return;
    }
    r->state = s->state;
    r->has_stats = s->has_stats;
    r->stats = s->stats;
    r->interval = s->polling_interval_s;
    rows->count++;
}

static bool is_exact_selector(const char *sel)
{
    size_t len = strlen(sel);
    return !(len >= 2 && sel[0] == '/' && sel[len - 1] == '/');
}

/* One line on stderr per failure: failed domains, and domains named exactly that are not running.
 * Returns how many. */
static size_t report_failures(const options_t *o, const rows_t *rows, bool need_balloon)
{
    size_t failures = 0;

    for (size_t i = 0; i < rows->count; i++) {
        const row_t *r = &rows->items[i];
        if (r->state == BAL_STATE_FAILED) {
            fputs("balloonctl: ", stderr);
            put_clean(stderr, r->error != NULL ? r->error : "The domain could not be read.");
            fputc('\n', stderr);
            failures++;
        } else if (need_balloon && r->state == BAL_STATE_NO_BALLOON) {
            fputs("balloonctl: Domain '", stderr);
            put_clean(stderr, r->name);
            fputs("' has no virtio balloon; its polling interval was not set.\n", stderr);
            failures++;
        }
    }
    for (size_t k = 0; k < o->n_selectors; k++) {
        bool found = false;
        if (!is_exact_selector(o->selectors[k]))
            continue;
        for (size_t i = 0; i < rows->count && !found; i++)
            found = strcmp(rows->items[i].name, o->selectors[k]) == 0;
        if (!found) {
            fputs("balloonctl: Domain '", stderr);
            put_clean(stderr, o->selectors[k]);
            fputs("' is not running or does not exist.\n", stderr);
            failures++;
        }
    }
    return failures;
}

/* ---- tables ---- */

/* The text of each cell, in a small fixed buffer per column. */
#define CELL 96
#define MAX_COLS 12

typedef struct table {
    const char *heads[MAX_COLS];
    bool right[MAX_COLS];
    size_t ncols;
    char (*cells)[MAX_COLS][CELL];
    size_t nrows;
} table_t;

static void cell_clean(char *dst, const char *src)
{
    bal_text_clean(dst, CELL, src, 0);
}

static void table_print(const table_t *t)
{
    size_t width[MAX_COLS];

    for (size_t c = 0; c < t->ncols; c++) {
        width[c] = strlen(t->heads[c]);
        for (size_t r = 0; r < t->nrows; r++)
            if (strlen(t->cells[r][c]) > width[c])
                width[c] = strlen(t->cells[r][c]);
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *text = r == 0 ? t->heads[c] : t->cells[r - 1][c];
            bool last = c + 1 == t->ncols;
            if (t->right[c])
                printf("%*s%s", (int)width[c], text, last ? "" : "  ");
            else if (last)
                printf("%s", text);
            else
                printf("%-*s  ", (int)width[c], text);
        }
        putchar('\n');
    }
}

static void fmt_interval(char *dst, const row_t *r)
{
    int64_t interval = r->interval;

    if (r->state == BAL_STATE_NO_BALLOON)
        snprintf(dst, CELL, "-");
    else if (interval < 0)
        snprintf(dst, CELL, "?");
    else if (interval == 0)
        snprintf(dst, CELL, "off");
    else
        snprintf(dst, CELL, "%" PRId64 " s", interval);
}

static void fmt_mib(char *dst, const bal_stat_value_t *v)
{
    if (!v->set)
        snprintf(dst, CELL, "-");
    else
        snprintf(dst, CELL, "%.1f", (double)v->value / MIB);
}

static void fmt_count(char *dst, const bal_stat_value_t *v)
{
    if (!v->set)
        snprintf(dst, CELL, "-");
    else
        snprintf(dst, CELL, "%" PRIu64, v->value);
}

static void fmt_age(char *dst, const row_t *r, int64_t now)
{
    if (r->state == BAL_STATE_FAILED || r->state == BAL_STATE_NO_BALLOON)
        snprintf(dst, CELL, "-");
    else if (r->stats.last_update == 0)
        snprintf(dst, CELL, "never");
    else if (!bal_stats_time_usable(r->stats.last_update, now))
        snprintf(dst, CELL, "ahead"); /* of this host's clock, beyond any skew: no age to show */
    else if (r->stats.last_update > now)
        snprintf(dst, CELL, "0 s ago"); /* another host's clock, a little ahead */
    else
        snprintf(dst, CELL, "%" PRId64 " s ago", now - r->stats.last_update);
}

static int print_list(const rows_t *rows)
{
    table_t t = {.heads = {"DOMAIN", "BALLOON", "INTERVAL", "STATE"}, .ncols = 4};

    t.cells = calloc(rows->count + 1, sizeof(*t.cells));
    if (t.cells == NULL)
        return -ENOMEM;
    t.right[2] = true;
    for (size_t i = 0; i < rows->count; i++) {
        const row_t *r = &rows->items[i];
        cell_clean(t.cells[i][0], r->name);
        cell_clean(t.cells[i][1], r->path != NULL ? r->path : "-");
        fmt_interval(t.cells[i][2], r);
        cell_clean(t.cells[i][3], bal_domain_state_name(r->state));
    }
    t.nrows = rows->count;
    table_print(&t);
    free(t.cells);
    return 0;
}

/* The stats table (watch adds the interval). Memory in MiB, faults as counts. */
static int print_stats_table(const rows_t *rows, bool with_interval)
{
    static const struct {
        const char *head;
        bal_stat_t stat;
        bool mib;
    } cols[] = {
        {"TOTAL-MIB", BAL_STAT_TOTAL_MEMORY, true},  {"FREE-MIB", BAL_STAT_FREE_MEMORY, true},
        {"AVAIL-MIB", BAL_STAT_AVAILABLE_MEMORY, true}, {"CACHES-MIB", BAL_STAT_DISK_CACHES, true},
        {"SWAPIN-MIB", BAL_STAT_SWAP_IN, true},      {"SWAPOUT-MIB", BAL_STAT_SWAP_OUT, true},
        {"MAJFLT", BAL_STAT_MAJOR_FAULTS, false},    {"MINFLT", BAL_STAT_MINOR_FAULTS, false},
    };
    table_t t = {.heads = {"DOMAIN", "STATE", "UPDATED"}, .ncols = 3};
    int64_t now = (int64_t)time(NULL);

    t.cells = calloc(rows->count + 1, sizeof(*t.cells));
    if (t.cells == NULL)
        return -ENOMEM;
    if (with_interval) {
        t.heads[t.ncols] = "INTERVAL";
        t.right[t.ncols++] = true;
    }
    for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
        t.heads[t.ncols] = cols[k].head;
        t.right[t.ncols++] = true;
    }
    t.right[2] = true;
    for (size_t i = 0; i < rows->count; i++) {
        const row_t *r = &rows->items[i];
        size_t c = 0;

        cell_clean(t.cells[i][c++], r->name);
        cell_clean(t.cells[i][c++], bal_domain_state_name(r->state));
        fmt_age(t.cells[i][c++], r, now);
        if (with_interval)
            fmt_interval(t.cells[i][c++], r);
        for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++, c++) {
            const bal_stat_value_t *v = &r->stats.stat[cols[k].stat];
            bal_stat_value_t none = {.set = false};
            if (r->state == BAL_STATE_FAILED || r->state == BAL_STATE_NO_BALLOON)
                v = &none;
            if (cols[k].mib)
                fmt_mib(t.cells[i][c], v);
            else
                fmt_count(t.cells[i][c], v);
        }
    }
    t.nrows = rows->count;
    table_print(&t);
    free(t.cells);
    return 0;
}

/* ---- JSON ---- */

static bool gen_string(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok;
}

/* Text from outside (a domain's name, its uuid): invalid UTF-8 becomes U+FFFD, control characters are
 * kept for yajl to escape, so the JSON is valid and a valid name comes out exactly. */
static bool gen_text(yajl_gen g, const char *s)
{
    char *clean = bal_text_dup_clean(s, BAL_TEXT_KEEP_CONTROLS);
    bool ok = clean != NULL && gen_string(g, clean);

    free(clean);
    return ok;
}

static bool gen_u64(yajl_gen g, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, v); /* also above INT64_MAX */
    return yajl_gen_number(g, buf, (size_t)n) == yajl_gen_status_ok;
}

/* [{"domain", "uuid", "last_update", "polling_interval", "state", "stats": {"stat-...": n|null}}],
 * failed domains left out (they are on stderr). */
static int print_json(const rows_t *rows)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    bool ok;

    if (g == NULL)
        return -ENOMEM;
    yajl_gen_config(g, yajl_gen_beautify, 1);
    /* A guest's name may hold any character; escape "/" too so "</script>" stays harmless. */
    yajl_gen_config(g, yajl_gen_escape_solidus, 1);
    /* And yajl checks it too: a string that is not valid UTF-8 fails the output, never corrupts it. */
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    ok = yajl_gen_array_open(g) == yajl_gen_status_ok;
    for (size_t i = 0; ok && i < rows->count; i++) {
        const row_t *r = &rows->items[i];
        bool balloon = r->state != BAL_STATE_NO_BALLOON;
        unsigned known = r->stats.known < BAL_STAT_COUNT ? r->stats.known : BAL_STAT_COUNT;

        if (r->state == BAL_STATE_FAILED)
            continue;
        ok = yajl_gen_map_open(g) == yajl_gen_status_ok && gen_string(g, "domain") && gen_text(g, r->name) &&
             gen_string(g, "uuid") && gen_text(g, r->uuid) && gen_string(g, "last_update");
        if (ok && balloon)
            ok = yajl_gen_integer(g, (long long)r->stats.last_update) == yajl_gen_status_ok;
        else if (ok)
            ok = yajl_gen_null(g) == yajl_gen_status_ok;
        ok = ok && gen_string(g, "polling_interval");
        if (ok && balloon && r->interval >= 0)
            ok = yajl_gen_integer(g, (long long)r->interval) == yajl_gen_status_ok;
        else if (ok)
            ok = yajl_gen_null(g) == yajl_gen_status_ok;
        ok = ok && gen_string(g, "state") && gen_string(g, bal_domain_state_name(r->state)) &&
             gen_string(g, "stats") && yajl_gen_map_open(g) == yajl_gen_status_ok;
        /* The stats this QEMU prints (6, 10 or 16), null when unset. */
        for (unsigned k = 0; ok && balloon && k < known; k++) {
            const bal_stat_value_t *v = &r->stats.stat[k];
            ok = gen_string(g, bal_stat_qmp_name((bal_stat_t)k)) &&
                 (v->set ? gen_u64(g, v->value) : yajl_gen_null(g) == yajl_gen_status_ok);
        }
        ok = ok && yajl_gen_map_close(g) == yajl_gen_status_ok && yajl_gen_map_close(g) == yajl_gen_status_ok;
    }
    ok = ok && yajl_gen_array_close(g) == yajl_gen_status_ok &&
         yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok;
    if (ok)
        fwrite(buf, 1, len, stdout);
    yajl_gen_free(g);
    return ok ? 0 : -EIO;
}

/* ---- commands ---- */

static int read_once(bal_agent_t *agent, rows_t *rows)
{
    bal_error_t err = {0};
    int rc;

    rows_clear(rows);
    rc = bal_agent_read(agent, collect, rows, &err);
    if (rows->oom) {
        fputs("balloonctl: Out of memory.\n", stderr);
        return -ENOMEM;
    }
    if (rc < 0 && rows->count == 0) {
        /* Not even the domain list: one line, nothing else to say. */
        fputs("balloonctl: ", stderr);
        put_clean(stderr, err.message);
        fputc('\n', stderr);
    }
    return rc;
}

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void sleep_s(long seconds)
{
    struct timespec ts = {.tv_sec = seconds, .tv_nsec = 0};
    /* Interrupted by SIGINT: return at once, the loop sees the flag. */
    nanosleep(&ts, NULL);
}

static int run_watch(const options_t *o, bal_agent_t *agent, rows_t *rows)
{
    struct sigaction sa;
    bool tty = isatty(STDOUT_FILENO);
    int status = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (long n = 0; !interrupted && (o->count == 0 || n < o->count); n++) {
        char stamp[32];
        time_t now;
        struct tm tm;
        int rc;

        if (n > 0)
            sleep_s(o->refresh_s);
        if (interrupted)
            break;
        now = time(NULL);
        rc = read_once(agent, rows);
        if (rc == -ENOMEM)
            return EXIT_FAILED;
        if (tty)
            fputs("\033[H\033[2J", stdout); /* home, clear: a refreshing screen like top */
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        printf("balloonctl watch, every %ld s, %s: %zu domain%s\n\n", o->refresh_s, stamp, rows->count,
               rows->count == 1 ? "" : "s");
        print_stats_table(rows, true);
        if (!tty)
            putchar('\n');
        fflush(stdout);
        status = (rc < 0 || report_failures(o, rows, false) > 0) ? EXIT_FAILED : 0;
    }
    return status;
}

/* True when path is a directory; else says why on stderr. */
static bool is_directory(const char *path)
{
    struct stat st;
    int rc = stat(path, &st) == 0 ? 0 : errno;

    if (rc == 0 && S_ISDIR(st.st_mode))
        return true;
    fputs("balloonctl: The QMP socket directory '", stderr);
    put_clean(stderr, path);
    if (rc == 0)
        fputs("' is not a directory.\n", stderr);
    else if (rc == ENOENT)
        fputs("' does not exist.\n", stderr);
    else
        fprintf(stderr, "' cannot be read: %s.\n", strerror(rc));
    return false;
}

int main(int argc, char **argv)
{
    options_t o = {0};
    bal_agent_config_t config = {0};
    bal_open_config_t open = {0};
    bal_agent_t *agent = NULL;
    bal_error_t err = {0};
    rows_t rows = {0};
    int status, rc;

    status = parse_args(argc, argv, &o);
    if (status != 0)
        return status;

    open.transport = o.qmp_dir != NULL ? BAL_TRANSPORT_QMP_DIR : BAL_TRANSPORT_LIBVIRT;
    open.libvirt_uri = o.uri;
    open.qmp_dir = o.qmp_dir;
    config.domains = o.selectors;
    config.n_domains = o.n_selectors;
    config.qom_path = o.qom_path;
    config.observe_only = o.command != CMD_SET_INTERVAL;
    config.polling_interval_s = o.command == CMD_SET_INTERVAL ? o.seconds : 1;
    config.timeout_ms = o.timeout_ms;
    /* watch shows the interval each refresh: read it each time, not every 5th. */
    config.verify_every = o.command == CMD_WATCH ? 1 : 0;
    config.logger = (bal_logger_t){.log = log_to_stderr, .opaque = &o};

    /* The plugin waits for a socket directory that is not there yet; a look at one is a mistake. */
    if (o.qmp_dir != NULL && !is_directory(o.qmp_dir))
        return EXIT_FAILED;
    rc = bal_open_agent(&config, &open, &agent, &err);
    if (rc < 0) {
        fputs("balloonctl: ", stderr);
        put_clean(stderr, err.message);
        fputc('\n', stderr);
        return rc == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
    }

    if (o.command == CMD_WATCH) {
        status = run_watch(&o, agent, &rows);
        goto out;
    }
    rc = read_once(agent, &rows);
    if (rc == -ENOMEM || (rc < 0 && rows.count == 0)) {
        status = EXIT_FAILED;
        goto out;
    }
    switch (o.command) {
    case CMD_LIST:
        rc = print_list(&rows);
        break;
    case CMD_STATS:
        rc = o.json ? print_json(&rows) : print_stats_table(&rows, false);
        break;
    case CMD_SET_INTERVAL:
        for (size_t i = 0; i < rows.count; i++) {
            const row_t *r = &rows.items[i];
            if (r->state == BAL_STATE_FAILED || r->state == BAL_STATE_NO_BALLOON)
                continue;
            put_clean(stdout, r->name);
            printf(": polling interval %" PRId64 " s\n", r->interval);
        }
        rc = 0;
        break;
    case CMD_WATCH:
        break;
    }
    if (rc < 0) {
        fputs("balloonctl: The output could not be written.\n", stderr);
        status = EXIT_FAILED;
    }
    if (report_failures(&o, &rows, o.command == CMD_SET_INTERVAL) > 0)
        status = EXIT_FAILED;
out:
    rows_free(&rows);
    bal_agent_free(agent);
    if (fflush(stdout) != 0 && status == 0)
        status = EXIT_FAILED;
    return status;
}
