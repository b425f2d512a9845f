/* Fuzz target: the plugin's <Plugin balloon> block parser (plugin/bp_config.h). The input is read as
 * the inside of the block, in collectd.conf's syntax, by a small reader here that builds the oconfig
 * tree collectd's own parser would (collectd's parser is inside the daemon, not a library): one item
 * per line, a key then values ("quoted strings" with backslash escapes, numbers as strtod reads them,
 * true/false/yes/no/on/off as booleans, any other word as a string), <Key values> ... </Key> for
 * nested blocks. The reader is lenient on purpose so that every input makes some tree.
 *
 * The daemon functions bp_config.c calls (cf_util_get_*, plugin_log) are those of the plugin tests'
 * fake collectd core (tests/test_plugin_core.h), which behaves as collectd 5.12 does. Checks: no
 * crash or leak, a refusal logs at least one error, and an accepted configuration is consistent,
 * within the agent's limits (bal_limits.h) and one the agent's own checks accept. Every Domain
 * selector is compiled: the agent's bounds on regular expressions (bal_regex.h) keep glibc's regcomp
 * cheap, where inputs with many repetitions used to be skipped as too slow. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/daemon/plugin.h"
#include "core/utils/common/common.h"

#include "agent/bal_limits.h"
#include "agent/bal_qmp.h"
#include "plugin/bp_config.h"
#include "tests/fuzz/fuzz.h"
#include "tests/test_plugin_core.h"

#define MAX_DEPTH 8
#define MAX_VALUES 64
#define MAX_ITEMS 512

/* Messages logged at LOG_ERR or worse since the core's records were last cleared. */
static size_t count_errors(void)
{
    size_t n = 0;

    for (size_t i = 0; i < fc_n_logs(); i++)
        n += fc_log(i)->level <= LOG_ERR;
    return n;
}

/* ---- the reader ---- */

typedef struct reader {
    const char *p, *end;
    unsigned items;
} reader_t;

static void free_item(oconfig_item_t *ci)
{
    free(ci->key);
    for (int i = 0; i < ci->values_num; i++)
        if (ci->values[i].type == OCONFIG_TYPE_STRING)
            free(ci->values[i].value.string);
    free(ci->values);
    for (int i = 0; i < ci->children_num; i++)
        free_item(&ci->children[i]);
    free(ci->children);
}

static bool at_eol(const reader_t *r)
{
    return r->p >= r->end || *r->p == '\n';
}

static void skip_blanks(reader_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r'))
        r->p++;
    if (r->p < r->end && *r->p == '#') /* a comment runs to the end of the line */
        while (r->p < r->end && *r->p != '\n')
            r->p++;
}

/* One token: a quoted string (unescaped) or a word up to a blank or a '>' (when in a block header). */
static char *token(reader_t *r, bool *quoted, bool header)
{
    char *s = malloc((size_t)(r->end - r->p) + 1);
    size_t n = 0;

    FUZZ_ASSERT(s != NULL);
    *quoted = r->p < r->end && *r->p == '"';
    if (*quoted) {
        r->p++;
        while (r->p < r->end && *r->p != '"' && *r->p != '\n') {
            if (*r->p == '\\' && r->p + 1 < r->end && r->p[1] != '\n')
                r->p++;
            s[n++] = *r->p++;
        }
        if (r->p < r->end && *r->p == '"')
            r->p++;
    } else {
        while (!at_eol(r) && *r->p != ' ' && *r->p != '\t' && *r->p != '\r' && !(header && *r->p == '>'))
            s[n++] = *r->p++;
    }
    s[n] = '\0';
    /* oconfig strings are C strings: a NUL byte ends them */
    return s;
}

static void add_value(oconfig_item_t *ci, char *tok, bool quoted)
{
    oconfig_value_t *v;
    char *end;
    double d;

    ci->values = realloc(ci->values, (size_t)(ci->values_num + 1) * sizeof(*ci->values));
    FUZZ_ASSERT(ci->values != NULL);
    v = &ci->values[ci->values_num++];
    if (!quoted && tok[0] != '\0') {
        if (strcasecmp(tok, "true") == 0 || strcasecmp(tok, "yes") == 0 || strcasecmp(tok, "on") == 0 ||
            strcasecmp(tok, "false") == 0 || strcasecmp(tok, "no") == 0 || strcasecmp(tok, "off") == 0) {
            v->type = OCONFIG_TYPE_BOOLEAN;
            v->value.boolean = strcasecmp(tok, "true") == 0 || strcasecmp(tok, "yes") == 0 ||
                               strcasecmp(tok, "on") == 0;
            free(tok);
            return;
        }
        d = strtod(tok, &end);
        if (*end == '\0') {
            v->type = OCONFIG_TYPE_NUMBER;
            v->value.number = d;
            free(tok);
            return;
        }
    }
    v->type = OCONFIG_TYPE_STRING;
    v->value.string = tok;
}

/* Reads the items of one block until its closing line (or the end) into parent's children. */
static void read_block(reader_t *r, oconfig_item_t *parent, unsigned depth)
{
    while (r->p < r->end && r->items < MAX_ITEMS) {
        oconfig_item_t *ci;
        bool quoted, header = false;
        char *key;

        skip_blanks(r);
        if (at_eol(r)) {
            if (r->p < r->end)
                r->p++;
            continue;
        }
        if (*r->p == '<' && r->p + 1 < r->end && r->p[1] == '/') {
            while (!at_eol(r)) /* </Anything> closes the innermost block */
                r->p++;
            if (depth > 0)
                return;
            continue;
        }
        if (*r->p == '<') {
            header = true;
            r->p++;
        }
        parent->children =
            realloc(parent->children, (size_t)(parent->children_num + 1) * sizeof(*parent->children));
        FUZZ_ASSERT(parent->children != NULL);
        ci = &parent->children[parent->children_num++];
        memset(ci, 0, sizeof(*ci));
        r->items++;
        key = token(r, &quoted, header);
        ci->key = key;
        for (;;) {
            skip_blanks(r);
            if (at_eol(r) || (header && *r->p == '>'))
                break;
            if (ci->values_num >= MAX_VALUES) {
                while (!at_eol(r))
                    r->p++;
                break;
            }
            char *tok = token(r, &quoted, header);
            add_value(ci, tok, quoted);
        }
        if (header) {
            while (!at_eol(r))
                r->p++;
            if (depth + 1 < MAX_DEPTH)
                read_block(r, ci, depth + 1); /* grows ci's children, never parent's */
        }
    }
}

/* Children point at their parent as collectd's do; fixed once the arrays stop moving. */
static void set_parents(oconfig_item_t *ci)
{
    for (int i = 0; i < ci->children_num; i++) {
        ci->children[i].parent = ci;
        set_parents(&ci->children[i]);
    }
}

/* ---- the checks ---- */

static void check_accepted(const bp_config_t *c)
{
    bal_agent_config_t ac;
    bal_open_config_t oc;

    FUZZ_ASSERT(c->transport == BAL_TRANSPORT_LIBVIRT || c->transport == BAL_TRANSPORT_QMP_DIR ||
                c->transport == BAL_TRANSPORT_QMP_SOCKETS);
    if (c->transport == BAL_TRANSPORT_QMP_DIR)
        FUZZ_ASSERT(c->qmp_dir != NULL && c->qmp_dir[0] != '\0');
    if (c->transport == BAL_TRANSPORT_QMP_SOCKETS) {
        FUZZ_ASSERT(c->n_sockets > 0 && c->sockets != NULL);
        for (size_t i = 0; i < c->n_sockets; i++) {
            FUZZ_ASSERT(c->sockets[i].name == c->socket_names[i] && c->sockets[i].name[0] != '\0');
            FUZZ_ASSERT(c->sockets[i].path == c->socket_paths[i] && c->sockets[i].path[0] != '\0');
        }
    } else {
        FUZZ_ASSERT(c->n_sockets == 0);
    }
    if (c->transport != BAL_TRANSPORT_LIBVIRT)
        FUZZ_ASSERT(c->connection == NULL);
    /* The agent's limits, checked here at config time (bal_limits.h); 0 is "not given". */
    FUZZ_ASSERT(c->polling_interval_s >= 0 && c->polling_interval_s <= BAL_LIMIT_POLLING_INTERVAL_MAX);
    FUZZ_ASSERT(c->refresh_interval_s <= BAL_LIMIT_REFRESH_INTERVAL_MAX);
    FUZZ_ASSERT(c->stale_after <= BAL_LIMIT_STALE_AFTER_MAX);
    FUZZ_ASSERT(c->concurrency <= BAL_LIMIT_CONCURRENCY_MAX);
    FUZZ_ASSERT(c->hostname_format.n_fields <= BP_FORMAT_MAX_FIELDS);
    FUZZ_ASSERT(c->plugin_instance_format.n_fields <= BP_FORMAT_MAX_FIELDS);
    FUZZ_ASSERT(c->qom_path == NULL || bal_qmp_check_path(c->qom_path, NULL) == 0);
    for (size_t i = 0; i < c->n_sockets; i++)
        for (size_t k = i + 1; k < c->n_sockets; k++)
            FUZZ_ASSERT(strcmp(c->socket_names[i], c->socket_names[k]) != 0
                        && strcmp(c->socket_paths[i], c->socket_paths[k]) != 0);
    for (size_t i = 0; i < c->n_domains; i++)
        FUZZ_ASSERT(bal_agent_check_selector(c->domains[i], NULL) == 0);

    bp_config_to_agent(c, TIME_T_TO_CDTIME_T(10), &ac, &oc);
    FUZZ_ASSERT(ac.polling_interval_s >= 1 && ac.polling_interval_s <= BAL_LIMIT_POLLING_INTERVAL_MAX);
    FUZZ_ASSERT(ac.n_domains == c->n_domains && oc.n_sockets == c->n_sockets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t r = {.p = (const char *)data, .end = (const char *)data + size};
    oconfig_item_t block = {0};
    oconfig_value_t name = {.type = OCONFIG_TYPE_STRING};
    bp_config_t *config = NULL;
    int ret;

    block.key = strdup("Plugin");
    name.value.string = strdup("balloon");
    FUZZ_ASSERT(block.key != NULL && name.value.string != NULL);
    block.values = malloc(sizeof(*block.values));
    FUZZ_ASSERT(block.values != NULL);
    block.values[0] = name;
    block.values_num = 1;
    read_block(&r, &block, 0);
    set_parents(&block);

    fc_clear_records();
    ret = bp_config_parse(&block, &config);
    FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
    if (ret == 0) {
        FUZZ_ASSERT(config != NULL);
        check_accepted(config);
        bp_config_free(config);
    } else {
        FUZZ_ASSERT(count_errors() > 0); /* a refused block says why */
    }
    fc_clear_records();
    free_item(&block);
    return 0;
}
