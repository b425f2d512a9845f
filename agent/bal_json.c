#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "agent/bal_json.h"

/* One pass: yajl's parser (comments off, the default; UTF-8 checked) with callbacks that check depth
 * and NULs and build the tree themselves, in the layout of yajl_tree.h. yajl_tree_parse would turn
 * comments on, so it could only follow a strict pass of its own: two parses and a copy of the text
 * per message. The tree lives in an arena (a document: its chunks, and the root node at a known
 * place), usually one malloc per message where yajl_tree takes two or three per value, and it is
 * freed in one go: yajl_tree_free's recursive walk and its frees cost as much as the parse. */
typedef struct chunk {
    struct chunk *next;
    unsigned char *data; /* cap bytes, right after the chunk (the first one's: after the document) */
    size_t used, cap;
} chunk_t;

/* arena_alloc aligns within a chunk; the data itself starts aligned, after a chunk or a document. */
_Static_assert(sizeof(chunk_t) % _Alignof(struct yajl_val_s) == 0, "a chunk's data is aligned for a node");

typedef struct doc {
    chunk_t *more; /* chunks after the first, newest first */
    struct yajl_val_s root;
    chunk_t first;
} doc_t;

_Static_assert(sizeof(doc_t) % _Alignof(struct yajl_val_s) == 0, "the first chunk's data is aligned for a node");

#define CHUNK_MIN 1024
#define CHUNK_MAX (64 * 1024)

typedef struct build_ctx {
    doc_t *doc;
    chunk_t *cur; /* the chunk being filled */
    unsigned depth;
    bool too_deep;
    bool has_nul;
    bool nomem;
    bool has_root;
    yajl_val stack[BAL_JSON_MAX_DEPTH]; /* the open containers, innermost last */
    size_t cap[BAL_JSON_MAX_DEPTH];     /* their arrays' room */
    const char *key;                    /* an object's key, until its value comes */
} build_ctx_t;

/* n bytes from the arena, aligned for a node; NULL out of memory (ctx->nomem set). */
static void *arena_alloc(build_ctx_t *ctx, size_t n)
{
    chunk_t *c = ctx->cur;
    size_t at = (c->used + _Alignof(struct yajl_val_s) - 1) & ~(_Alignof(struct yajl_val_s) - 1);

    if (at > c->cap || c->cap - at < n) {
        size_t cap = c->cap * 2;

        if (cap > CHUNK_MAX)
            cap = CHUNK_MAX;
        if (cap < n)
            cap = n;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL) {
            ctx->nomem = true;
            return NULL;
        }
        c->data = (unsigned char *)(c + 1);
        c->cap = cap;
        c->next = ctx->doc->more;
        ctx->doc->more = c;
        ctx->cur = c;
        at = 0;
    }
    c->used = at + n;
    return c->data + at;
}

static char *copy_text(build_ctx_t *ctx, const void *s, size_t len)
{
    char *c = arena_alloc(ctx, len + 1);

    if (c != NULL) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

static void doc_free(doc_t *doc)
{
    chunk_t *c, *next;

    if (doc == NULL)
        return;
    for (c = doc->more; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

/* A node for the next value: the document's root for the first. NULL out of memory. */
static yajl_val node(build_ctx_t *ctx, yajl_type type)
{
    yajl_val v;

    if (!ctx->has_root) {
        v = &ctx->doc->root;
    } else {
        v = arena_alloc(ctx, sizeof(*v));
        if (v == NULL)
            return NULL;
    }
    memset(v, 0, sizeof(*v));
    v->type = type;
    return v;
}

/* Room for one more member in a container's arrays (of n, with room for *cap), in the arena: grown by
 * doubling, the old arrays left to the arena. Returns false out of memory. */
static bool grow(build_ctx_t *ctx, void **array, size_t elem, size_t n, size_t *cap)
{
    void *a;
    size_t c;

    if (n < *cap)
        return true;
    c = *cap != 0 ? *cap * 2 : 16;
    a = arena_alloc(ctx, c * elem);
    if (a == NULL)
        return false;
    if (n > 0)
        memcpy(a, *array, n * elem);
    *array = a;
    *cap = c;
    return true;
}

/* Puts v into the innermost open container (or makes it the root). Returns 1, or 0 (cancelling the
 * parse) out of memory. */
static int attach(build_ctx_t *ctx, yajl_val v)
{
    yajl_val parent;
    size_t *cap;

    if (v == NULL)
        return 0;
    if (ctx->depth == 0) {
        ctx->has_root = true;
        return 1;
    }
    parent = ctx->stack[ctx->depth - 1];
    cap = &ctx->cap[ctx->depth - 1];
    if (parent->type == yajl_t_object) {
        size_t n = parent->u.object.len, c = *cap;

        if (n == c) {
            if (!grow(ctx, (void **)&parent->u.object.keys, sizeof(char *), n, &c) ||
                !grow(ctx, (void **)&parent->u.object.values, sizeof(yajl_val), n, cap))
                return 0;
        }
        parent->u.object.keys[n] = ctx->key;
        parent->u.object.values[n] = v;
        parent->u.object.len = n + 1;
        ctx->key = NULL;
    } else {
        size_t n = parent->u.array.len;

        if (!grow(ctx, (void **)&parent->u.array.values, sizeof(yajl_val), n, cap))
            return 0;
        parent->u.array.values[n] = v;
        parent->u.array.len = n + 1;
    }
    return 1;
}

static int build_open(build_ctx_t *ctx, yajl_type type)
{
    yajl_val v;

    if (ctx->depth >= BAL_JSON_MAX_DEPTH) {
        ctx->too_deep = true;
        return 0; /* cancels the parse before anything that deep is built */
    }
    v = node(ctx, type);
    if (!attach(ctx, v))
        return 0;
    ctx->stack[ctx->depth] = v;
    ctx->cap[ctx->depth] = 0;
    ctx->depth++;
    return 1;
}

static int build_start_map(void *opaque)
{
    return build_open(opaque, yajl_t_object);
}

static int build_start_array(void *opaque)
{
    return build_open(opaque, yajl_t_array);
}

static int build_close(void *opaque)
{
    build_ctx_t *ctx = opaque;

    ctx->depth--;
    return 1;
}

/* yajl's tree keeps strings NUL-terminated, so "a\u0000b" would reach us as "a" while QEMU sees more. */
static int build_map_key(void *opaque, const unsigned char *s, size_t len)
{
    build_ctx_t *ctx = opaque;

    if (memchr(s, '\0', len) != NULL) {
        ctx->has_nul = true;
        return 0;
    }
    ctx->key = copy_text(ctx, s, len);
    return ctx->key != NULL;
}

static int build_string(void *opaque, const unsigned char *s, size_t len)
{
    build_ctx_t *ctx = opaque;
    yajl_val v;

    if (memchr(s, '\0', len) != NULL) {
        ctx->has_nul = true;
        return 0;
    }
    v = node(ctx, yajl_t_string);
    if (v != NULL && (v->u.string = copy_text(ctx, s, len)) == NULL)
        v = NULL;
    return attach(ctx, v);
}

/* The number's text, as yajl_tree keeps it, and its integer value when it is an integer that fits in
 * an int64 (YAJL_NUMBER_INT_VALID). Its double is not computed: strtod costs more than the rest of a
 * number, and no reader of ours takes one (bal_json_integer reads the text). yajl checked the number
 * grammar: an optional '-', digits, then maybe a fraction or an exponent. */
static int build_number(void *opaque, const char *s, size_t len)
{
    build_ctx_t *ctx = opaque;
    yajl_val v = node(ctx, yajl_t_number);
    bool neg = len > 0 && s[0] == '-';
    uint64_t mag = 0;
    size_t i = neg ? 1 : 0;

    if (v == NULL || (v->u.number.r = copy_text(ctx, s, len)) == NULL)
        return attach(ctx, NULL);
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (mag > (UINT64_MAX - d) / 10)
            break;
        mag = mag * 10 + d;
    }
    if (i == len && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX)) {
        v->u.number.i = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
        v->u.number.flags = YAJL_NUMBER_INT_VALID;
    }
    return attach(ctx, v);
}

static int build_boolean(void *opaque, int b)
{
    return attach(opaque, node(opaque, b ? yajl_t_true : yajl_t_false));
}

static int build_null(void *opaque)
{
    return attach(opaque, node(opaque, yajl_t_null));
}

static const yajl_callbacks build_callbacks = {
    .yajl_null = build_null,
    .yajl_boolean = build_boolean,
    .yajl_number = build_number,
    .yajl_string = build_string,
    .yajl_start_map = build_start_map,
    .yajl_map_key = build_map_key,
    .yajl_end_map = build_close,
    .yajl_start_array = build_start_array,
    .yajl_end_array = build_close,
};

void bal_json_free(yajl_val tree)
{
    if (tree != NULL)
        doc_free((doc_t *)(void *)((char *)tree - offsetof(doc_t, root)));
}

int bal_json_parse(const char *text, size_t len, size_t max, yajl_val *out, bal_error_t *err)
{
    build_ctx_t ctx;
    size_t first;
    yajl_handle h;
    yajl_status st;
    int ret = 0;

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

    /* A guest-stats reply's tree takes about 3 times its text. */
    first = len < CHUNK_MIN / 4 ? CHUNK_MIN : len > CHUNK_MAX / 4 ? CHUNK_MAX : 4 * len;
    ctx.doc = malloc(sizeof(*ctx.doc) + first);
    if (ctx.doc == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory while parsing a QMP message.");
    ctx.doc->more = NULL;
    ctx.doc->first = (chunk_t){.next = NULL, .data = (unsigned char *)(ctx.doc + 1), .used = 0, .cap = first};
    ctx.cur = &ctx.doc->first;
    ctx.depth = 0;
    ctx.too_deep = ctx.has_nul = ctx.nomem = ctx.has_root = false;
    ctx.key = NULL;
    h = yajl_alloc(&build_callbacks, NULL, &ctx);
    if (h == NULL) {
        doc_free(ctx.doc);
        return bal_error_set(err, -ENOMEM, "Out of memory while parsing a QMP message.");
    }
    st = yajl_parse(h, (const unsigned char *)text, len);
    /* yajl takes a token still open at the end of the text (`{...}"abc`, `{...} tru`) as waiting for
     * more input, and yajl_complete_parse then accepts it as if it were trailing whitespace, so that
     * `{"execute":"query-balloon"}"` would pass as one object. A line end closes or breaks every open
     * token (no JSON token may hold one) and is whitespace after a complete value. */
    if (st == yajl_status_ok)
        st = yajl_parse(h, (const unsigned char *)"\n", 1);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st == yajl_status_ok && ctx.has_root) {
        *out = &ctx.doc->root;
        ctx.doc = NULL;
        goto out;
    }
    if (st == yajl_status_ok) {
        ret = bal_error_set(err, -EPROTO, "The QMP message holds no JSON value."); /* yajl never lets one by */
    } else if (ctx.nomem) {
        ret = bal_error_set(err, -ENOMEM, "Out of memory while parsing a QMP message.");
    } else if (ctx.too_deep) {
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
    doc_free(ctx.doc);
    yajl_free(h);
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
    uint64_t n = 0;
    bool neg;

    if (!YAJL_IS_NUMBER(v) || YAJL_GET_NUMBER(v) == NULL)
        return -EINVAL;
    s = YAJL_GET_NUMBER(v);
    neg = s[0] == '-';
    if (neg)
        s++;
    /* yajl checked the JSON number grammar; an integer is digits only. A loop of our own, not
     * strspn and strtoull: this runs for every stat of every reply. */
    if (s[0] == '\0')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (n > (UINT64_MAX - d) / 10) {
            /* too big; but a fraction or an exponent after the digits makes it no integer at all */
            while (*s >= '0' && *s <= '9')
                s++;
            return *s == '\0' ? -ERANGE : -EINVAL;
        }
        n = n * 10 + d;
    }
    if (*s != '\0')
        return -EINVAL;
    *negative = neg && n != 0;
    *magnitude = n;
    return 0;
}
