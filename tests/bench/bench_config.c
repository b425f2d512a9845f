/* collectd's configuration syntax, the subset a plugin block uses, into an oconfig_item_t tree. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/bench/bench_config.h"

#define MAX_DEPTH 16

typedef struct parser {
    char *err;
    size_t errlen;
    unsigned line;
} parser_t;

static void item_clear(oconfig_item_t *item)
{
    for (int i = 0; i < item->values_num; i++)
        if (item->values[i].type == OCONFIG_TYPE_STRING)
            free(item->values[i].value.string);
    free(item->values);
    for (int i = 0; i < item->children_num; i++)
        item_clear(&item->children[i]);
    free(item->children);
    free(item->key);
}

void bench_config_free(oconfig_item_t *root)
{
    if (root == NULL)
        return;
    item_clear(root);
    free(root);
}

/* Appending to a children array may move it, so parent pointers are set once the tree is whole. */
static void fix_parents(oconfig_item_t *item)
{
    for (int i = 0; i < item->children_num; i++) {
        item->children[i].parent = item;
        fix_parents(&item->children[i]);
    }
}

static int add_value(oconfig_item_t *item, const oconfig_value_t *value)
{
    oconfig_value_t *values = realloc(item->values, (size_t)(item->values_num + 1) * sizeof(*values));
    if (values == NULL)
        return -ENOMEM;
    item->values = values;
    item->values[item->values_num++] = *value;
    return 0;
}

static oconfig_item_t *add_child(oconfig_item_t *parent, const char *key, size_t keylen)
{
    oconfig_item_t *children = realloc(parent->children,
                                       (size_t)(parent->children_num + 1) * sizeof(*children));
    if (children == NULL)
        return NULL;
    parent->children = children;
    oconfig_item_t *child = &children[parent->children_num];
    memset(child, 0, sizeof(*child));
    child->key = strndup(key, keylen);
    if (child->key == NULL)
        return NULL;
    parent->children_num++;
    return child;
}

static int parse_error(parser_t *p, const char *what)
{
    snprintf(p->err, p->errlen, "Configuration line %u: %s.", p->line, what);
    return -EINVAL;
}

static bool is_word_char(int c)
{
    return c != '\0' && !isspace(c) && c != '"' && c != '<' && c != '>' && c != '#';
}

/* Reads one value at *pos into out (a malloc'ed string for strings). Returns 1 when a value was read,
 * 0 at the end of the line (or at `stop`), or a negative errno. */
static int read_value(parser_t *p, const char **pos, char stop, oconfig_value_t *out)
{
    const char *s = *pos;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '#' || (stop != '\0' && *s == stop)) {
        *pos = s;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    if (*s == '"') {
        size_t cap = strlen(s) + 1, n = 0;
        char *buf = malloc(cap);
        if (buf == NULL)
            return -ENOMEM;
        for (s++; *s != '"'; s++) {
            if (*s == '\0') {
                free(buf);
                return parse_error(p, "a quoted string is not closed");
            }
            if (*s == '\\' && s[1] != '\0')
                s++;
            buf[n++] = *s;
        }
        buf[n] = '\0';
        out->type = OCONFIG_TYPE_STRING;
        out->value.string = buf;
        *pos = s + 1;
        return 1;
    }
    const char *start = s;
    while (is_word_char((unsigned char)*s) && !(stop != '\0' && *s == stop))
        s++;
    if (s == start)
        return parse_error(p, "an unexpected character was found");
    size_t len = (size_t)(s - start);
    char *word = strndup(start, len);
    if (word == NULL)
        return -ENOMEM;
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(word, yes[i]) == 0 || strcasecmp(word, no[i]) == 0) {
            out->type = OCONFIG_TYPE_BOOLEAN;
            out->value.boolean = strcasecmp(word, yes[i]) == 0;
            free(word);
            *pos = s;
            return 1;
        }
    }
    char *end = NULL;
    errno = 0;
    double number = strtod(word, &end);
    if (errno == 0 && end != word && *end == '\0') {
        out->type = OCONFIG_TYPE_NUMBER;
        out->value.number = number;
        free(word);
    } else {
        out->type = OCONFIG_TYPE_STRING;
        out->value.string = word;
    }
    *pos = s;
    return 1;
}

static int read_values(parser_t *p, const char **pos, char stop, oconfig_item_t *item)
{
    for (;;) {
        oconfig_value_t value;
        int rc = read_value(p, pos, stop, &value);
        if (rc <= 0)
            return rc;
        rc = add_value(item, &value);
        if (rc < 0) {
            if (value.type == OCONFIG_TYPE_STRING)
                free(value.value.string);
            return rc;
        }
    }
}

static size_t key_length(const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-' || s[n] == '.')
        n++;
    return n;
}

/* One logical line (continuations already joined). stack[*depth] is the innermost open block. */
static int parse_line(parser_t *p, const char *s, oconfig_item_t **stack, int *depth)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0' || *s == '#')
        return 0;

    if (s[0] == '<' && s[1] == '/') {
        s += 2;
        size_t len = key_length(s);
        if (*depth == 0)
            return parse_error(p, "a block is closed that was never opened");
        oconfig_item_t *open = stack[*depth];
        if (len == 0 || strlen(open->key) != len || strncasecmp(open->key, s, len) != 0)
            return parse_error(p, "the closing tag does not match the open block");
        s += len;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s != '>')
            return parse_error(p, "a closing tag lacks its '>'");
        (*depth)--;
        return 0;
    }

    bool block = *s == '<';
    if (block)
        s++;
    size_t len = key_length(s);
    if (len == 0)
        return parse_error(p, "a line does not start with an option name");
    if (block && *depth + 1 >= MAX_DEPTH)
        return parse_error(p, "blocks are nested too deeply");
    oconfig_item_t *item = add_child(stack[*depth], s, len);
    if (item == NULL)
        return -ENOMEM;
    s += len;
    int rc = read_values(p, &s, block ? '>' : '\0', item);
    if (rc < 0)
        return rc;
    if (block) {
        if (*s != '>')
            return parse_error(p, "an opening tag lacks its '>'");
        s++;
        stack[++(*depth)] = item;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s != '\0' && *s != '#')
        return parse_error(p, "there is text after the values");
    return 0;
}

oconfig_item_t *bench_config_parse(const char *text, size_t len, const char *root_key,
                                   const char *root_value, char *err, size_t errlen)
{
    parser_t p = {.err = err, .errlen = errlen, .line = 0};
    oconfig_item_t *stack[MAX_DEPTH];
    int depth = 0;
    char *buf = malloc(len + 1);
    oconfig_item_t *root = calloc(1, sizeof(*root));
    int rc = -ENOMEM;

    if (buf == NULL || root == NULL || (root->key = strdup(root_key)) == NULL)
        goto out;
    if (root_value != NULL) {
        oconfig_value_t value = {.type = OCONFIG_TYPE_STRING, .value.string = strdup(root_value)};
        if (value.value.string == NULL || add_value(root, &value) < 0) {
            free(value.value.string);
            goto out;
        }
    }
    stack[0] = root;

    /* Join each line with its `\` continuations into buf, then parse it. */
    size_t i = 0;
    rc = 0;
    while (i < len && rc == 0) {
        size_t n = 0;
        unsigned first_line = p.line + 1;
        for (;;) {
            p.line++;
            while (i < len && text[i] != '\n')
                buf[n++] = text[i++];
            if (i < len)
                i++;
            if (n > 0 && buf[n - 1] == '\r')
                n--;
            if (n > 0 && buf[n - 1] == '\\' && i < len) {
                n--;
                continue;
            }
            break;
        }
        buf[n] = '\0';
        unsigned last_line = p.line;
        p.line = first_line;
        rc = parse_line(&p, buf, stack, &depth);
        p.line = last_line;
    }
    if (rc == 0 && depth != 0) {
        p.line++;
        rc = parse_error(&p, "a block is still open at the end");
    }

out:
    free(buf);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "Out of memory while reading the configuration.");
    if (rc < 0) {
        bench_config_free(root);
        return NULL;
    }
    fix_parents(root);
    return root;
}
