/* QEMU's JSON parser, after qobject/json-parser.c in QEMU 7.2; the code is ours. See vb_json_parser.h. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_buf.h"
#include "virtio/vb_json_parser.h"
#include "virtio/vb_mutf8.h"

typedef struct parser {
    const vb_json_token_t *tokens;
    size_t n, pos;
    const char *text;
    char *err;      /* the first error, QEMU's text after "JSON parse error, " */
    unsigned depth; /* containers open */
    bool too_deep;
    bool oom;
} parser_t;

static void perr(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(parser_t *p, const char *fmt, ...)
{
    va_list ap;

    if (p->err != NULL)
        return; /* the first error wins, as in QEMU */
    va_start(ap, fmt);
    if (vasprintf(&p->err, fmt, ap) < 0) {
        p->err = NULL;
        p->oom = true;
    }
    va_end(ap);
    if (p->err == NULL)
        p->err = strdup("out of memory");
}

/* A value just made, or NULL (ENOMEM). */
static vb_qobj_t *made(parser_t *p, vb_qobj_t *obj)
{
    if (obj == NULL)
        p->oom = true;
    return obj;
}

static const vb_json_token_t *peek(parser_t *p)
{
    return p->pos < p->n ? &p->tokens[p->pos] : NULL;
}

static const vb_json_token_t *pop(parser_t *p)
{
    return p->pos < p->n ? &p->tokens[p->pos++] : NULL;
}

static const char *tok_str(parser_t *p, const vb_json_token_t *t)
{
    return p->text + t->off;
}

static int cvt4hex(const char *s)
{
    int cp = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        cp <<= 4;
        if (c >= '0' && c <= '9')
            cp |= c - '0';
        else if (c >= 'a' && c <= 'f')
            cp |= 10 + c - 'a';
        else if (c >= 'A' && c <= 'F')
            cp |= 10 + c - 'A';
        else
            return -1;
    }
    return cp;
}

/* \uXXXX at ptr (after the backslash and 'u'), with a surrogate pair's second half. Appends the
 * character to out; returns 0, or -1 with QEMU's error (beg: the escape's backslash). */
static int decode_u_escape(parser_t *p, const char *beg, const char **pptr, vb_buf_t *out)
{
    const char *ptr = *pptr;
    int64_t cp = cvt4hex(ptr);
    char utf8[4];
    int n;

    if (cp >= 0)
        ptr += 4;
    else
        ptr += strnlen(ptr, 4); /* stays within the token for the message */
    if (cp >= 0xD800 && cp <= 0xDBFF && ptr[0] == '\\' && ptr[1] == 'u') {
        int trailing = cvt4hex(ptr + 2);
        cp = 0x10000 + ((cp & 0x3FF) << 10);
        if (trailing >= 0xDC00 && trailing <= 0xDFFF) {
            cp |= trailing & 0x3FF;
            ptr += 6;
        } else {
            cp = -1;
        }
    }
    *pptr = ptr;
    n = vb_mutf8_encode(utf8, cp);
    if (n < 0) {
        perr(p, "%.*s is not a valid Unicode character", (int)(ptr - beg), beg);
        return -1;
    }
    return vb_buf_add(out, utf8, (size_t)n) < 0 ? -ENOMEM : 0;
}

/* Decodes a string token (json-parser.c parse_string). Returns the malloc'ed text, or NULL with the
 * error reported. */
static char *parse_string(parser_t *p, const vb_json_token_t *t)
{
    static const char simple_escapes[] = "\"'\\/bfnrt", decoded[] = "\"'\\/\b\f\n\r\t";
    const char *ptr = tok_str(p, t);
    char quote = *ptr++, utf8[4], *s;
    vb_buf_t out = {0};
    int rc = 0;

    while (*ptr != quote && rc == 0) {
        if (*ptr == '\\') {
            const char *beg = ptr++;
            char c = *ptr++;
            const char *simple = strchr(simple_escapes, c);
            if (c != '\0' && simple != NULL) {
                rc = vb_buf_add_byte(&out, decoded[simple - simple_escapes]);
            } else if (c == 'u') {
                rc = decode_u_escape(p, beg, &ptr, &out);
            } else {
                perr(p, "invalid escape sequence in string");
                rc = -1;
            }
        } else if ((unsigned char)*ptr < 0x80) {
            rc = vb_buf_add_byte(&out, *ptr++); /* ASCII decodes to itself */
        } else {
            size_t used;
            int64_t cp = vb_mutf8_decode((const unsigned char *)ptr, VB_MUTF8_MAX_SEQ, &used);
            if (cp < 0) {
                perr(p, "invalid UTF-8 sequence in string");
                rc = -1;
            } else {
                ptr += used;
                rc = vb_buf_add(&out, utf8, (size_t)vb_mutf8_encode(utf8, cp));
            }
        }
    }
    if (rc == -1) {
        vb_buf_free(&out);
        return NULL;
    }
    s = rc == 0 ? vb_buf_take(&out) : NULL;
    if (s == NULL) {
        vb_buf_free(&out);
        p->oom = true;
        perr(p, "out of memory");
    }
    return s;
}

static vb_qobj_t *parse_value(parser_t *p);

static void enter(parser_t *p)
{
    if (++p->depth >= VB_JSON_MAX_DEPTH)
        p->too_deep = true;
}

/* key: value into dict. Returns false with the error reported. */
static bool parse_pair(parser_t *p, vb_qobj_t *dict)
{
    const vb_json_token_t *t = peek(p);
    vb_qobj_t *value;
    char *key;
    int rc;

    if (t == NULL) {
        perr(p, "premature EOI");
        return false;
    }
    if (t->type != VB_JSON_STRING) {
        vb_qobj_free(parse_value(p)); /* read for its own errors, which come first */
        perr(p, "key is not a string in object");
        return false;
    }
    key = parse_string(p, pop(p));
    if (key == NULL)
        return false;
    t = pop(p);
    if (t == NULL || t->type != VB_JSON_COLON) {
        perr(p, t == NULL ? "premature EOI" : "missing : in object pair");
        free(key);
        return false;
    }
    value = parse_value(p);
    if (value == NULL) {
        perr(p, "Missing value in dict");
        free(key);
        return false;
    }
    rc = vb_qobj_dict_add(dict, key, value);
    if (rc == -EEXIST)
        perr(p, "duplicate key");
    else if (rc < 0)
        p->oom = true;
    return rc == 0 && !p->oom;
}

/* The rest of a container after its opening token: items (parse_item) separated by commas up to
 * the closing token. Returns false with the error reported. */
static bool parse_items(parser_t *p, vb_qobj_t *c, vb_json_token_type_t close, const char *separator_error,
                        bool (*parse_item)(parser_t *p, vb_qobj_t *c))
{
    const vb_json_token_t *t = peek(p);

    if (t == NULL) {
        perr(p, "premature EOI");
        return false;
    }
    if (t->type == close) {
        pop(p);
        return true;
    }
    do {
        if (!parse_item(p, c))
            return false;
        t = pop(p);
        if (t == NULL) {
            perr(p, "premature EOI");
            return false;
        }
        if (t->type != close && t->type != VB_JSON_COMMA) {
            perr(p, "%s", separator_error);
            return false;
        }
    } while (t->type != close);
    return true;
}

static bool parse_list_item(parser_t *p, vb_qobj_t *list)
{
    vb_qobj_t *value = parse_value(p);

    if (value == NULL) {
        perr(p, "expecting value");
        return false;
    }
    if (vb_qobj_list_append(list, value) < 0) {
        p->oom = true;
        return false;
    }
    return true;
}

/* An object or an array, its opening token next. */
static vb_qobj_t *parse_container(parser_t *p)
{
    bool is_dict = pop(p)->type == VB_JSON_LCURLY;
    vb_qobj_t *c = made(p, is_dict ? vb_qobj_dict() : vb_qobj_list());
    bool ok;

    if (c == NULL)
        return NULL;
    enter(p);
    if (is_dict)
        ok = parse_items(p, c, VB_JSON_RCURLY, "expected separator in dict", parse_pair);
    else
        ok = parse_items(p, c, VB_JSON_RSQUARE, "expected separator in list", parse_list_item);
    p->depth--;
    if (!ok) {
        vb_qobj_free(c);
        return NULL;
    }
    return c;
}

/* QEMU's classes: an integer token is an int64 if it fits, else a uint64, else a double. */
static vb_qobj_t *parse_number(parser_t *p, const vb_json_token_t *t)
{
    const char *raw = tok_str(p, t);
    char *end;

    if (t->type == VB_JSON_INTEGER) {
        long long i;
        unsigned long long u;
        errno = 0;
        i = strtoll(raw, &end, 10);
        if (errno == 0 && *end == '\0')
            return made(p, vb_qobj_int(i));
        if (raw[0] != '-') {
            errno = 0;
            u = strtoull(raw, &end, 10);
            if (errno == 0 && *end == '\0')
                return made(p, vb_qobj_uint(u));
        }
    }
    return made(p, vb_qobj_double(strtod(raw, NULL)));
}

static vb_qobj_t *parse_keyword(parser_t *p, const vb_json_token_t *t)
{
    const char *s = tok_str(p, t);

    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
        return made(p, vb_qobj_bool(s[0] == 't'));
    if (strcmp(s, "null") == 0)
        return made(p, vb_qobj_null());
    perr(p, "invalid keyword '%s'", s);
    return NULL;
}

/* Returns the value, or NULL with the error reported. */
static vb_qobj_t *parse_value(parser_t *p)
{
    const vb_json_token_t *t = peek(p);
    char *s;

    if (t == NULL) {
        perr(p, "premature EOI");
        return NULL;
    }
    switch (t->type) {
    case VB_JSON_LCURLY:
    case VB_JSON_LSQUARE:
        return parse_container(p);
    case VB_JSON_STRING:
        s = parse_string(p, pop(p));
        return s != NULL ? made(p, vb_qobj_string_take(s)) : NULL;
    case VB_JSON_INTEGER:
    case VB_JSON_FLOAT:
        return parse_number(p, pop(p));
    case VB_JSON_KEYWORD:
        return parse_keyword(p, pop(p));
    default:
        perr(p, "expecting value");
        return NULL;
    }
}

int vb_json_parse(const vb_json_token_t *tokens, size_t n, const char *text, vb_qobj_t **out,
                  char **err)
{
    parser_t p = {.tokens = tokens, .n = n, .text = text};
    vb_qobj_t *value = parse_value(&p);
    int rc = -EINVAL;

    if (p.oom) {
        rc = -ENOMEM;
    } else if (p.err != NULL) {
        if (asprintf(err, "JSON parse error, %s", p.err) < 0)
            rc = -ENOMEM;
    } else if (p.too_deep) {
        *err = strdup("JSON nesting depth limit exceeded");
        if (*err == NULL)
            rc = -ENOMEM;
    } else {
        *out = value;
        value = NULL;
        rc = 0;
    }
    vb_qobj_free(value);
    free(p.err);
    return rc;
}
