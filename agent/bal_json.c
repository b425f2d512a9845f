#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "agent/bal_json.h"

typedef struct strict_ctx {
    unsigned depth;
    bool too_deep;
    bool has_nul;
} strict_ctx_t;

static int strict_open(void *opaque)
{
    strict_ctx_t *ctx = opaque;

    if (++ctx->depth > BAL_JSON_MAX_DEPTH) {
        ctx->too_deep = true;
        return 0; /* cancels the parse before the tree parser could build anything that deep */
    }
    return 1;
}

static int strict_close(void *opaque)
{
    strict_ctx_t *ctx = opaque;

    ctx->depth--;
    return 1;
}

/* yajl's tree keeps strings NUL-terminated, so "a\u0000b" would reach us as "a" while QEMU sees more. */
static int strict_string(void *opaque, const unsigned char *s, size_t len)
{
    strict_ctx_t *ctx = opaque;

    if (memchr(s, '\0', len) != NULL) {
        ctx->has_nul = true;
        return 0;
    }
    return 1;
}

static const yajl_callbacks strict_callbacks = {
    .yajl_string = strict_string,
    .yajl_start_map = strict_open,
    .yajl_map_key = strict_string,
    .yajl_end_map = strict_close,
    .yajl_start_array = strict_open,
    .yajl_end_array = strict_close,
};

/* Syntax only, no tree: yajl with comments off (the default), UTF-8 checked, one value. */
static int strict_check(const char *text, size_t len, bal_error_t *err)
{
    strict_ctx_t ctx = {0};
    yajl_handle h;
    yajl_status st;
    int ret = 0;

    h = yajl_alloc(&strict_callbacks, NULL, &ctx);
    if (h == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory while parsing a QMP message.");
    st = yajl_parse(h, (const unsigned char *)text, len);
    /* yajl takes a token still open at the end of the text (`{...}"abc`, `{...} tru`) as waiting for
     * more input, and yajl_complete_parse then accepts it as if it were trailing whitespace, so that
     * `{"execute":"query-balloon"}"` would pass as one object. A line end closes or breaks every open
     * token (no JSON token may hold one) and is whitespace after a complete value. */
    if (st == yajl_status_ok)
        st = yajl_parse(h, (const unsigned char *)"\n", 1);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st == yajl_status_ok)
        goto out;
    if (ctx.too_deep) {
        ret = bal_error_set(err, -EPROTO, "The QMP message is nested more than %d levels deep.",
                            BAL_JSON_MAX_DEPTH);
    } else if (ctx.has_nul) {
        ret = bal_error_set(err, -EPROTO, "The QMP message holds a NUL character inside a string.");
    } else {
        unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
        const char *text_msg = msg != NULL ? (const char *)msg : "unknown error";
        size_t n = strcspn(text_msg, "\r\n");

        ret = bal_error_set(err, -EPROTO, "The QMP message is not valid JSON (%.*s).", (int)n, text_msg);
        if (msg != NULL)
            yajl_free_error(h, msg);
    }
out:
    yajl_free(h);
    return ret;
}

int bal_json_parse(const char *text, size_t len, size_t max, yajl_val *out, bal_error_t *err)
{
    char errbuf[128];
    char *copy = NULL;
    yajl_val tree;
    int ret;

    if (len > max)
        return bal_error_set(err, -EMSGSIZE, "The QMP message is %zu bytes long, more than the %zu allowed.",
                             len, max);
    if (text == NULL || len == 0)
        return bal_error_set(err, -EPROTO, "The QMP message is empty.");
    if (memchr(text, '\0', len) != NULL)
        return bal_error_set(err, -EPROTO, "The QMP message holds a NUL byte.");
    /* yajl skips vertical tabs and form feeds as whitespace; JSON and QEMU do not (QEMU would answer a
     * trailing one with an error of its own, a reply nobody waits for). They cannot be inside a
     * string either: raw control characters are invalid there. */
    if (memchr(text, '\v', len) != NULL || memchr(text, '\f', len) != NULL)
        return bal_error_set(err, -EPROTO, "The QMP message holds a vertical tab or a form feed.");
    ret = strict_check(text, len, err);
    if (ret < 0)
        return ret;

    /* yajl_tree_parse wants a NUL-terminated string. */
    copy = malloc(len + 1);
    if (copy == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory while parsing a QMP message.");
    memcpy(copy, text, len);
    copy[len] = '\0';
    tree = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
    if (tree == NULL) {
        /* The strict pass accepted it, so only memory can have failed. */
        ret = bal_error_set(err, -ENOMEM, "Out of memory while parsing a QMP message.");
        goto out;
    }
    *out = tree;
out:
    free(copy);
    return ret;
}

int bal_json_get(yajl_val obj, const char *key, yajl_val *val, bal_error_t *err)
{
    yajl_val found = NULL;

    if (!YAJL_IS_OBJECT(obj))
        return -ENOENT;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) != 0)
            continue;
        if (found != NULL)
            return bal_error_set(err, -EPROTO, "The QMP message holds the key '%s' more than once.", key);
        found = obj->u.object.values[i];
    }
    if (found == NULL)
        return -ENOENT;
    *val = found;
    return 0;
}

int bal_json_integer(yajl_val v, bool *negative, uint64_t *magnitude)
{
    const char *s;
    char *end;
    unsigned long long n;
    bool neg;

    if (!YAJL_IS_NUMBER(v) || YAJL_GET_NUMBER(v) == NULL)
        return -EINVAL;
    s = YAJL_GET_NUMBER(v);
    neg = s[0] == '-';
    if (neg)
        s++;
    /* yajl checked the JSON number grammar; an integer is digits only. */
    if (s[0] == '\0' || s[strspn(s, "0123456789")] != '\0')
        return -EINVAL;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end != '\0')
        return -EINVAL;
    *negative = neg && n != 0;
    *magnitude = n;
    return 0;
}
