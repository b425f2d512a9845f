/* QEMU's JSON dialect over yajl: see vb_json.h. The lexer states, the streamer's rules and the
 * parser's error texts follow QEMU 7.2 (qobject/json-*.c, util/unicode.c); the code is ours. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "virtio/vb_json.h"

/* QEMU's limits on one message (json-streamer.c). */
#define MAX_TOKEN_SIZE (64u << 20)
#define MAX_TOKEN_COUNT (2u << 20)
#define MAX_NESTING 1024

/* ======================================================================== values */

struct vb_qobj {
    vb_qobj_type_t type;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        char *s;
        struct {
            vb_qobj_t **items;
            char **keys; /* dicts only */
            size_t n, cap;
        } c;
    } v;
};

static vb_qobj_t *qobj_new(vb_qobj_type_t type)
{
    vb_qobj_t *o = calloc(1, sizeof(*o));
    if (o != NULL)
        o->type = type;
    return o;
}

vb_qobj_t *vb_qobj_null(void)
{
    return qobj_new(VB_QOBJ_NULL);
}

vb_qobj_t *vb_qobj_bool(bool value)
{
    vb_qobj_t *o = qobj_new(VB_QOBJ_BOOL);
    if (o != NULL)
        o->v.b = value;
    return o;
}

vb_qobj_t *vb_qobj_int(int64_t value)
{
    vb_qobj_t *o = qobj_new(VB_QOBJ_INT);
    if (o != NULL)
        o->v.i = value;
    return o;
}

vb_qobj_t *vb_qobj_uint(uint64_t value)
{
    vb_qobj_t *o;

    if (value <= INT64_MAX)
        return vb_qobj_int((int64_t)value);
    o = qobj_new(VB_QOBJ_UINT);
    if (o != NULL)
        o->v.u = value;
    return o;
}

vb_qobj_t *vb_qobj_double(double value)
{
    vb_qobj_t *o = qobj_new(VB_QOBJ_DOUBLE);
    if (o != NULL)
        o->v.d = value;
    return o;
}

vb_qobj_t *vb_qobj_string(const char *value)
{
    vb_qobj_t *o = qobj_new(VB_QOBJ_STRING);
    if (o == NULL)
        return NULL;
    o->v.s = strdup(value);
    if (o->v.s == NULL) {
        free(o);
        return NULL;
    }
    return o;
}

vb_qobj_t *vb_qobj_list(void)
{
    return qobj_new(VB_QOBJ_LIST);
}

vb_qobj_t *vb_qobj_dict(void)
{
    return qobj_new(VB_QOBJ_DICT);
}

vb_qobj_type_t vb_qobj_type(const vb_qobj_t *obj)
{
    return obj->type;
}

static int container_grow(vb_qobj_t *c)
{
    size_t cap;
    vb_qobj_t **items;

    if (c->v.c.n < c->v.c.cap)
        return 0;
    cap = c->v.c.cap ? c->v.c.cap * 2 : 4;
    items = realloc(c->v.c.items, cap * sizeof(*items));
    if (items == NULL)
        return -ENOMEM;
    c->v.c.items = items;
    if (c->type == VB_QOBJ_DICT) {
        char **keys = realloc(c->v.c.keys, cap * sizeof(*keys));
        if (keys == NULL)
            return -ENOMEM;
        c->v.c.keys = keys;
    }
    c->v.c.cap = cap;
    return 0;
}

int vb_qobj_list_append(vb_qobj_t *list, vb_qobj_t *value)
{
    int rc = -EINVAL;

    if (value == NULL)
        return -ENOMEM;
    if (list == NULL || list->type != VB_QOBJ_LIST)
        goto fail;
    rc = container_grow(list);
    if (rc < 0)
        goto fail;
    list->v.c.items[list->v.c.n++] = value;
    return 0;
fail:
    vb_qobj_free(value);
    return rc;
}

int vb_qobj_dict_put(vb_qobj_t *dict, const char *key, vb_qobj_t *value)
{
    int rc = -EINVAL;
    char *k;

    if (value == NULL)
        return -ENOMEM;
    if (dict == NULL || dict->type != VB_QOBJ_DICT)
        goto fail;
    for (size_t i = 0; i < dict->v.c.n; i++) {
        if (strcmp(dict->v.c.keys[i], key) == 0) {
            vb_qobj_free(dict->v.c.items[i]);
            dict->v.c.items[i] = value;
            return 0;
        }
    }
    rc = container_grow(dict);
    if (rc < 0)
        goto fail;
    k = strdup(key);
    if (k == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    dict->v.c.keys[dict->v.c.n] = k;
    dict->v.c.items[dict->v.c.n++] = value;
    return 0;
fail:
    vb_qobj_free(value);
    return rc;
}

void vb_qobj_free(vb_qobj_t *obj)
{
    if (obj == NULL)
        return;
    if (obj->type == VB_QOBJ_STRING) {
        free(obj->v.s);
    } else if (obj->type == VB_QOBJ_LIST || obj->type == VB_QOBJ_DICT) {
        for (size_t i = 0; i < obj->v.c.n; i++) {
            vb_qobj_free(obj->v.c.items[i]);
            if (obj->type == VB_QOBJ_DICT)
                free(obj->v.c.keys[i]);
        }
        free(obj->v.c.items);
        free(obj->v.c.keys);
    }
    free(obj);
}

bool vb_json_number(yajl_val value, vb_json_number_t *out)
{
    const char *raw;
    char *end;

    if (!YAJL_IS_NUMBER(value))
        return false;
    raw = value->u.number.r;
    /* QEMU's lexer makes a token with '.', 'e' or 'E' a float, anything else an integer. */
    if (strpbrk(raw, ".eE") == NULL) {
        errno = 0;
        out->i = strtoll(raw, &end, 10);
        if (errno == 0 && *end == '\0') {
            out->kind = VB_JSON_I64;
            return true;
        }
        if (raw[0] != '-') {
            errno = 0;
            out->u = strtoull(raw, &end, 10);
            if (errno == 0 && *end == '\0') {
                out->kind = VB_JSON_U64;
                return true;
            }
        }
    }
    out->kind = VB_JSON_DOUBLE;
    out->d = strtod(raw, NULL);
    return true;
}

vb_qobj_t *vb_qobj_from_yajl(yajl_val value)
{
    vb_qobj_t *o = NULL;
    vb_json_number_t num;

    if (value == NULL)
        return NULL;
    switch (value->type) {
    case yajl_t_string:
        return vb_qobj_string(value->u.string);
    case yajl_t_number:
        vb_json_number(value, &num);
        if (num.kind == VB_JSON_I64)
            return vb_qobj_int(num.i);
        if (num.kind == VB_JSON_U64)
            return vb_qobj_uint(num.u);
        return vb_qobj_double(num.d);
    case yajl_t_true:
        return vb_qobj_bool(true);
    case yajl_t_false:
        return vb_qobj_bool(false);
    case yajl_t_null:
        return vb_qobj_null();
    case yajl_t_array:
        o = vb_qobj_list();
        for (size_t i = 0; o != NULL && i < value->u.array.len; i++) {
            if (vb_qobj_list_append(o, vb_qobj_from_yajl(value->u.array.values[i])) < 0) {
                vb_qobj_free(o);
                o = NULL;
            }
        }
        return o;
    case yajl_t_object:
        o = vb_qobj_dict();
        for (size_t i = 0; o != NULL && i < value->u.object.len; i++) {
            if (vb_qobj_dict_put(o, value->u.object.keys[i],
                                 vb_qobj_from_yajl(value->u.object.values[i])) < 0) {
                vb_qobj_free(o);
                o = NULL;
            }
        }
        return o;
    default:
        return NULL;
    }
}

/* ======================================================================== QEMU's hash orders */

/* qobject/qdict.c: tdb_hash, 512 buckets. */
static unsigned qdict_bucket(const char *key)
{
    uint32_t value = 0x238F13AFu * (uint32_t)strlen(key);
    for (uint32_t i = 0; key[i] != '\0'; i++)
        value += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    return (1103515243u * value + 12345u) % 512u;
}

typedef struct ordered_key {
    unsigned bucket;
    size_t index;
} ordered_key_t;

static int cmp_ordered_key(const void *a, const void *b)
{
    const ordered_key_t *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    /* same bucket: QDict puts the later insertion at the head of the bucket's list */
    return x->index > y->index ? -1 : x->index < y->index;
}

void vb_json_qdict_order(const char *const *keys, size_t n, size_t *order)
{
    ordered_key_t small[16], *k = n <= 16 ? small : malloc(n * sizeof(*k));

    if (k == NULL) { /* out of memory: insertion order, still every key once */
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        k[i].bucket = qdict_bucket(keys[i]);
        k[i].index = i;
    }
    qsort(k, n, sizeof(*k), cmp_ordered_key);
    for (size_t i = 0; i < n; i++)
        order[i] = k[i].index;
    if (k != small)
        free(k);
}

/* GLib's g_str_hash (djb2 over signed chars). */
static uint32_t g_str_hash(const char *s)
{
    uint32_t h = 5381;
    for (const signed char *p = (const signed char *)s; *p != '\0'; p++)
        h = (h << 5) + h + (uint32_t)(int32_t)*p;
    return h;
}

/* A model of GLib 2.74's GHashTable placement (ghash.c: open addressing, quadratic probing, index =
 * hash * 11 % prime modulo, 8 buckets at first). Grown tables are rebuilt by re-inserting in
 * bucket order, which matches GLib only as far as these small argument objects need. */
typedef struct ghash_model {
    const char **slot;
    uint32_t *hash;
    size_t size, mod, count;
} ghash_model_t;

static const size_t prime_mod[] = {1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093,
                                   8191, 16381, 32749, 65521, 131071};

static int ghash_set_shift(ghash_model_t *t, unsigned shift)
{
    if (shift >= sizeof(prime_mod) / sizeof(prime_mod[0]))
        return -E2BIG;
    t->size = (size_t)1 << shift;
    t->mod = prime_mod[shift];
    t->slot = calloc(t->size, sizeof(*t->slot));
    t->hash = calloc(t->size, sizeof(*t->hash));
    t->count = 0;
    return t->slot && t->hash ? 0 : -ENOMEM;
}

static void ghash_place(ghash_model_t *t, const char *key, uint32_t hash)
{
    size_t index = (size_t)((uint64_t)hash * 11u % t->mod), step = 0;
    while (t->slot[index] != NULL) {
        step++;
        index = (index + step) & (t->size - 1);
    }
    t->slot[index] = key;
    t->hash[index] = hash;
    t->count++;
}

static int ghash_insert(ghash_model_t *t, const char *key)
{
    uint32_t hash = g_str_hash(key);
    if (hash < 2) /* GLib reserves 0 and 1 */
        hash = 2;
    ghash_place(t, key, hash);
    if (t->size <= t->count + t->count / 16) {
        ghash_model_t bigger = {0}; /* freed whole even when ghash_set_shift fails early */
        unsigned shift = 0;
        size_t want = (size_t)((double)t->count * 1.333);
        int rc;
        while (want) {
            want >>= 1;
            shift++;
        }
        rc = ghash_set_shift(&bigger, shift < 3 ? 3 : shift);
        if (rc < 0) {
            free(bigger.slot);
            free(bigger.hash);
            return rc;
        }
        for (size_t i = 0; i < t->size; i++)
            if (t->slot[i] != NULL)
                ghash_place(&bigger, t->slot[i], t->hash[i]);
        free(t->slot);
        free(t->hash);
        *t = bigger;
    }
    return 0;
}

const char *vb_json_first_unexpected(yajl_val args, const char *const *known)
{
    ghash_model_t t = {0};
    size_t n, *order = NULL;
    const char *found = NULL;

    if (!YAJL_IS_OBJECT(args) || args->u.object.len == 0)
        return NULL;
    n = args->u.object.len;
    order = malloc(n * sizeof(*order));
    if (order == NULL || ghash_set_shift(&t, 3) < 0)
        goto fallback;
    /* QEMU fills the table from the QDict, in QDict order. */
    vb_json_qdict_order(args->u.object.keys, n, order);
    for (size_t i = 0; i < n; i++)
        if (ghash_insert(&t, args->u.object.keys[order[i]]) < 0)
            goto fallback;
    for (size_t i = 0; i < t.size && found == NULL; i++) {
        bool is_known = false;
        if (t.slot[i] == NULL)
            continue;
        for (size_t k = 0; known[k] != NULL; k++)
            is_known = is_known || strcmp(known[k], t.slot[i]) == 0;
        if (!is_known)
            found = t.slot[i];
    }
    goto out;
fallback: /* out of memory: any unexpected key will do */
    for (size_t i = 0; i < n && found == NULL; i++) {
        bool is_known = false;
        for (size_t k = 0; known[k] != NULL; k++)
            is_known = is_known || strcmp(known[k], args->u.object.keys[i]) == 0;
        if (!is_known)
            found = args->u.object.keys[i];
    }
out:
    free(order);
    free(t.slot);
    free(t.hash);
    return found;
}

/* ======================================================================== modified UTF-8 */

/* util/unicode.c */
static bool valid_codepoint(int64_t cp)
{
    if (cp < 0 || cp > 0x10FFFF)
        return false;
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
        return false; /* noncharacter */
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return false; /* surrogate */
    return true;
}

/* Decodes one character of s (at most n bytes, stopping at NUL like QEMU's). Returns the code point,
 * or -1 for an invalid sequence; *used is the number of bytes consumed either way. U+0000 is the
 * two bytes C0 80, as in Java's modified UTF-8. */
static int64_t mod_utf8_codepoint(const unsigned char *s, size_t n, size_t *used)
{
    static const int64_t min_cp[5] = {0x80, 0x800, 0x10000, 0x200000, 0x4000000};
    unsigned byte, mask, len;
    size_t p = 0;
    int64_t cp;

    if (n == 0 || s[0] == 0) {
        *used = 0;
        return -1;
    }
    byte = s[p++];
    if (byte < 0x80) {
        cp = byte;
    } else if (byte >= 0xFE || (byte & 0x40) == 0) {
        cp = -1; /* impossible byte, or a continuation byte out of place */
    } else {
        len = 0;
        for (mask = 0x80; byte & mask; mask >>= 1)
            len++;
        cp = byte & (mask - 1);
        for (unsigned i = 1; i < len; i++) {
            unsigned next = i < n ? s[p] : 0;
            if ((next & 0xC0) != 0x80) {
                cp = -1; /* continuation byte missing */
                goto out;
            }
            p++;
            cp = cp << 6 | (next & 0x3F);
        }
        if (!valid_codepoint(cp))
            cp = -1;
        else if (cp < min_cp[len - 2] && !(cp == 0 && len == 2))
            cp = -1; /* overlong, other than C0 80 */
    }
out:
    *used = p;
    return cp;
}

/* Encodes cp into buf (at least 5 bytes). Returns the length, or -1 for an invalid code point. */
static int mod_utf8_encode(char *buf, int64_t cp)
{
    if (!valid_codepoint(cp))
        return -1;
    if (cp > 0 && cp <= 0x7F) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp <= 0x7FF) {
        buf[0] = (char)(0xC0 | cp >> 6);
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp <= 0xFFFF) {
        buf[0] = (char)(0xE0 | cp >> 12);
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | cp >> 18);
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ======================================================================== growable bytes */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static int buf_add(buf_t *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;
        while (cap < b->len + len + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(buf_t *b, const char *fmt, ...)
{
    char tmp[32];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    return buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ======================================================================== writing */

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


static yajl_gen_status gen_qobj(yajl_gen g, const vb_qobj_t *o)
{
    char num[40];
    yajl_gen_status st = yajl_gen_status_ok;

    switch (o->type) {
    case VB_QOBJ_NULL:
        return yajl_gen_null(g);
    case VB_QOBJ_BOOL:
        return yajl_gen_bool(g, o->v.b);
    case VB_QOBJ_INT:
        return yajl_gen_integer(g, o->v.i);
    case VB_QOBJ_UINT:
        snprintf(num, sizeof(num), "%" PRIu64, o->v.u);
        return yajl_gen_number(g, num, strlen(num));
    case VB_QOBJ_DOUBLE:
        /* QEMU prints doubles with "%.17g", inf and nan included */
        snprintf(num, sizeof(num), "%.17g", o->v.d);
        return yajl_gen_number(g, num, strlen(num));
    case VB_QOBJ_STRING:
        return yajl_gen_string(g, (const unsigned char *)o->v.s, strlen(o->v.s));
    case VB_QOBJ_LIST:
        st = yajl_gen_array_open(g);
        for (size_t i = 0; st == yajl_gen_status_ok && i < o->v.c.n; i++)
            st = gen_qobj(g, o->v.c.items[i]);
        return st == yajl_gen_status_ok ? yajl_gen_array_close(g) : st;
    case VB_QOBJ_DICT: {
        size_t *order = malloc((o->v.c.n ? o->v.c.n : 1) * sizeof(*order));
        if (order == NULL) /* any status but ok and max-depth reads as ENOMEM in vb_qobj_to_json */
            return yajl_gen_generation_complete;
        vb_json_qdict_order((const char *const *)o->v.c.keys, o->v.c.n, order);
        st = yajl_gen_map_open(g);
        for (size_t i = 0; st == yajl_gen_status_ok && i < o->v.c.n; i++) {
            const char *k = o->v.c.keys[order[i]];
            st = yajl_gen_string(g, (const unsigned char *)k, strlen(k));
            if (st == yajl_gen_status_ok)
                st = gen_qobj(g, o->v.c.items[order[i]]);
        }
        free(order);
        return st == yajl_gen_status_ok ? yajl_gen_map_close(g) : st;
    }
    }
    return yajl_gen_invalid_string;
}

static int hex4(buf_t *b, unsigned v)
{
    return buf_printf(b, "\\u%04X", v);
}

/* Re-lays yajl's compact output the way QEMU's json-writer prints: a space after each ':' and ','
 * between tokens, and inside strings every character outside printable ASCII as \uXXXX (a pair of
 * surrogates beyond the BMP, U+FFFD for an invalid sequence). yajl has already escaped '"', '\\' and
 * the control characters. */
static int qemu_layout(const unsigned char *in, size_t len, buf_t *out)
{
    bool in_str = false;
    int rc = 0;

    for (size_t i = 0; i < len && rc == 0;) {
        unsigned char ch = in[i];
        if (!in_str) {
            rc = buf_add(out, &ch, 1);
            if (rc == 0 && (ch == ':' || ch == ','))
                rc = buf_add(out, " ", 1);
            in_str = ch == '"';
            i++;
        } else if (ch == '\\' && i + 1 < len) {
            int v = in[i + 1] == 'u' && i + 5 < len ? cvt4hex((const char *)in + i + 2) : -1;
            if (v >= 0) { /* yajl's \u00XX for a control character: QEMU's hex is upper case */
                rc = hex4(out, (unsigned)v);
                i += 6;
            } else {
                rc = buf_add(out, in + i, 2);
                i += 2;
            }
        } else if (ch == '"') {
            rc = buf_add(out, &ch, 1);
            in_str = false;
            i++;
        } else if (ch >= 0x20 && ch < 0x7F) {
            rc = buf_add(out, &ch, 1);
            i++;
        } else {
            size_t used;
            int64_t cp = mod_utf8_codepoint(in + i, len - i < 6 ? len - i : 6, &used);
            if (used == 0)
                used = 1;
            i += used;
            if (cp < 0)
                cp = 0xFFFD;
            if (cp > 0xFFFF) {
                rc = hex4(out, (unsigned)(0xD800 + ((cp - 0x10000) >> 10)));
                if (rc == 0)
                    rc = hex4(out, (unsigned)(0xDC00 + ((cp - 0x10000) & 0x3FF)));
            } else {
                rc = hex4(out, (unsigned)cp);
            }
        }
    }
    return rc;
}

int vb_qobj_to_json(const vb_qobj_t *obj, char **out, size_t *len)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *text;
    size_t text_len;
    buf_t b = {0};
    int rc = -ENOMEM;
    yajl_gen_status st;

    if (g == NULL)
        return -ENOMEM;
    yajl_gen_config(g, yajl_gen_validate_utf8, 0);
    st = gen_qobj(g, obj);
    if (st == yajl_max_depth_exceeded) {
        rc = -E2BIG;
        goto out;
    }
    if (st != yajl_gen_status_ok || yajl_gen_get_buf(g, &text, &text_len) != yajl_gen_status_ok)
        goto out;
    rc = qemu_layout(text, text_len, &b);
    if (rc == 0 && b.p == NULL)
        rc = buf_add(&b, "", 0);
    if (rc < 0)
        goto out;
    *out = b.p;
    b.p = NULL;
    if (len != NULL)
        *len = b.len;
out:
    free(b.p);
    yajl_gen_free(g);
    return rc;
}

/* ======================================================================== reading */

typedef enum tok_type {
    TOK_LCURLY = 100,
    TOK_RCURLY,
    TOK_LSQUARE,
    TOK_RSQUARE,
    TOK_COLON,
    TOK_COMMA,
    TOK_INTEGER,
    TOK_FLOAT,
    TOK_KEYWORD,
    TOK_STRING,
    TOK_ERROR,
} tok_type_t;

/* Lexer states (json-lexer.c). */
enum {
    IN_RECOVERY = 1,
    IN_DQ_STRING_ESCAPE,
    IN_DQ_STRING,
    IN_SQ_STRING_ESCAPE,
    IN_SQ_STRING,
    IN_ZERO,
    IN_EXP_DIGITS,
    IN_EXP_SIGN,
    IN_EXP_E,
    IN_MANTISSA,
    IN_MANTISSA_DIGITS,
    IN_DIGITS,
    IN_SIGN,
    IN_KEYWORD,
    IN_START,
};

typedef struct token {
    tok_type_t type;
    size_t off, len; /* in the stream's text */
} token_t;

struct vb_json_stream {
    vb_json_emit_fn emit;
    void *opaque;
    int state;
    buf_t tok;         /* the token being lexed */
    buf_t text;        /* the message's tokens, each NUL-terminated */
    token_t *tokens;
    size_t ntokens, cap;
    long brace, bracket;
    bool stop;
    bool oom;
};

vb_json_stream_t *vb_json_stream_new(vb_json_emit_fn emit, void *opaque)
{
    vb_json_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->emit = emit;
    s->opaque = opaque;
    s->state = IN_START;
    return s;
}

void vb_json_stream_free(vb_json_stream_t *s)
{
    if (s == NULL)
        return;
    free(s->tok.p);
    free(s->text.p);
    free(s->tokens);
    free(s);
}

size_t vb_json_stream_pending(const vb_json_stream_t *s)
{
    return s->tok.len + s->text.len;
}

/* The lexer's transition for ch in state: the next state or token type, and whether ch is only
 * looked at (left for the next state) rather than consumed. 0 is the error. */
static int next_state(int state, unsigned char ch, bool *lookahead)
{
    bool digit = ch >= '0' && ch <= '9';

    *lookahead = false;
    switch (state) {
    case IN_RECOVERY:
        /* skip to a structural character, a control character other than tab, or 0xFE/0xFF */
        if ((ch < 0x20 && ch != '\t') || ch >= 0xFE || strchr("[]{}:,", ch) != NULL) {
            *lookahead = true;
            return IN_START;
        }
        return IN_RECOVERY;
    case IN_DQ_STRING_ESCAPE:
        return ch >= 0x20 && ch <= 0xFD ? IN_DQ_STRING : 0;
    case IN_SQ_STRING_ESCAPE:
        return ch >= 0x20 && ch <= 0xFD ? IN_SQ_STRING : 0;
    case IN_DQ_STRING:
    case IN_SQ_STRING: {
        bool dq = state == IN_DQ_STRING;
        if (ch == (dq ? '"' : '\''))
            return TOK_STRING;
        if (ch == '\\')
            return dq ? IN_DQ_STRING_ESCAPE : IN_SQ_STRING_ESCAPE;
        return ch >= 0x20 && ch <= 0xFD ? state : 0;
    }
    case IN_ZERO:
        if (digit)
            return 0;
        if (ch == '.')
            return IN_MANTISSA;
        *lookahead = true;
        return TOK_INTEGER;
    case IN_EXP_DIGITS:
        if (digit)
            return IN_EXP_DIGITS;
        *lookahead = true;
        return TOK_FLOAT;
    case IN_EXP_SIGN:
        return digit ? IN_EXP_DIGITS : 0;
    case IN_EXP_E:
        if (ch == '-' || ch == '+')
            return IN_EXP_SIGN;
        return digit ? IN_EXP_DIGITS : 0;
    case IN_MANTISSA_DIGITS:
        if (digit)
            return IN_MANTISSA_DIGITS;
        if (ch == 'e' || ch == 'E')
            return IN_EXP_E;
        *lookahead = true;
        return TOK_FLOAT;
    case IN_MANTISSA:
        return digit ? IN_MANTISSA_DIGITS : 0;
    case IN_DIGITS:
        if (digit)
            return IN_DIGITS;
        if (ch == 'e' || ch == 'E')
            return IN_EXP_E;
        if (ch == '.')
            return IN_MANTISSA;
        *lookahead = true;
        return TOK_INTEGER;
    case IN_SIGN:
        if (ch == '0')
            return IN_ZERO;
        return ch >= '1' && ch <= '9' ? IN_DIGITS : 0;
    case IN_KEYWORD:
        if (ch >= 'a' && ch <= 'z')
            return IN_KEYWORD;
        *lookahead = true;
        return TOK_KEYWORD;
    default: /* IN_START */
        switch (ch) {
        case '"':
            return IN_DQ_STRING;
        case '\'':
            return IN_SQ_STRING;
        case '0':
            return IN_ZERO;
        case '-':
            return IN_SIGN;
        case '{':
            return TOK_LCURLY;
        case '}':
            return TOK_RCURLY;
        case '[':
            return TOK_LSQUARE;
        case ']':
            return TOK_RSQUARE;
        case ',':
            return TOK_COMMA;
        case ':':
            return TOK_COLON;
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            return IN_START;
        default:
            if (ch >= '1' && ch <= '9')
                return IN_DIGITS;
            if (ch >= 'a' && ch <= 'z')
                return IN_KEYWORD;
            return 0;
        }
    }
}

static void reset_message(vb_json_stream_t *s)
{
    s->brace = s->bracket = 0;
    s->ntokens = 0;
    s->text.len = 0;
}

static void emit(vb_json_stream_t *s, yajl_val value, const char *error)
{
    reset_message(s);
    if (s->emit(s->opaque, value, error) != 0)
        s->stop = true;
}

static void emit_errorf(vb_json_stream_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit_errorf(vb_json_stream_t *s, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
        s->oom = true;
    }
    va_end(ap);
    emit(s, NULL, msg != NULL ? msg : "JSON parse error");
    free(msg);
}

/* ---- the parser, over one message's tokens ---- */

/* The keys of one object, for QEMU's duplicate-key check: an open-addressing hash set, so that a
 * huge object costs linear time. */
typedef struct key_set {
    struct {
        char *key;
        size_t len;
    } *items;
    size_t *slots; /* index + 1 into items, 0 for empty */
    size_t n, nslots;
} key_set_t;

typedef struct parser {
    vb_json_stream_t *s;
    size_t pos;
    char *err;        /* the first error, QEMU's text after "JSON parse error, " */
    yajl_gen g;
    int gen_off;      /* >0 while parsing something that is not part of the value (a bad key) */
    bool gen_failed;
    yajl_gen_status gen_status;
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

static void gen(parser_t *p, yajl_gen_status st)
{
    if (st != yajl_gen_status_ok && !p->gen_failed) {
        p->gen_failed = true;
        p->gen_status = st;
    }
}

static const token_t *peek(parser_t *p)
{
    return p->pos < p->s->ntokens ? &p->s->tokens[p->pos] : NULL;
}

static const token_t *pop(parser_t *p)
{
    return p->pos < p->s->ntokens ? &p->s->tokens[p->pos++] : NULL;
}

static const char *tok_str(parser_t *p, const token_t *t)
{
    return p->s->text.p + t->off;
}

/* Decodes a string token (json-parser.c parse_string). Returns 0 with the bytes in out, or -1. */
static int parse_string(parser_t *p, const token_t *t, buf_t *out)
{
    const char *ptr = tok_str(p, t);
    char quote = *ptr++;
    char utf8[5];
    int rc = 0;

    while (*ptr != quote && rc == 0) {
        if (*ptr == '\\') {
            const char *beg = ptr++;
            char c = *ptr++;
            const char *simple = strchr("\"'\\/bfnrt", c);
            if (c != '\0' && simple != NULL) {
                static const char decoded[] = "\"'\\/\b\f\n\r\t";
                rc = buf_add(out, &decoded[simple - "\"'\\/bfnrt"], 1);
            } else if (c == 'u') {
                int64_t cp = cvt4hex(ptr);
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
                n = mod_utf8_encode(utf8, cp);
                if (n < 0) {
                    perr(p, "%.*s is not a valid Unicode character", (int)(ptr - beg), beg);
                    return -1;
                }
                rc = buf_add(out, utf8, (size_t)n);
            } else {
                perr(p, "invalid escape sequence in string");
                return -1;
            }
        } else {
            size_t used;
            int64_t cp = mod_utf8_codepoint((const unsigned char *)ptr, 6, &used);
            int n;
            if (cp < 0) {
                perr(p, "invalid UTF-8 sequence in string");
                return -1;
            }
            ptr += used;
            n = mod_utf8_encode(utf8, cp);
            rc = buf_add(out, utf8, (size_t)n);
        }
    }
    if (rc < 0) {
        p->oom = true;
        perr(p, "out of memory");
        return -1;
    }
    if (out->p == NULL && buf_add(out, "", 0) < 0) {
        p->oom = true;
        return -1;
    }
    return 0;
}

static bool parse_value(parser_t *p);

static size_t key_hash(const char *key, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * UINT64_C(1099511628211);
    return (size_t)h;
}

/* Returns false if key is there already; otherwise takes key->p over. */
static bool key_set_add(parser_t *p, key_set_t *ks, buf_t *key)
{
    size_t mask, i;

    if (ks->n * 2 >= ks->nslots) { /* grow: rebuild the slots from the items */
        size_t nslots = ks->nslots ? ks->nslots * 2 : 16;
        size_t *slots = calloc(nslots, sizeof(*slots));
        void *items = realloc(ks->items, nslots / 2 * sizeof(*ks->items));
        if (slots == NULL || items == NULL) {
            free(slots);
            if (items != NULL)
                ks->items = items;
            p->oom = true;
            return true;
        }
        ks->items = items;
        for (size_t k = 0; k < ks->n; k++) {
            i = key_hash(ks->items[k].key, ks->items[k].len) & (nslots - 1);
            while (slots[i] != 0)
                i = (i + 1) & (nslots - 1);
            slots[i] = k + 1;
        }
        free(ks->slots);
        ks->slots = slots;
        ks->nslots = nslots;
    }
    mask = ks->nslots - 1;
    for (i = key_hash(key->p, key->len) & mask; ks->slots[i] != 0; i = (i + 1) & mask) {
        size_t k = ks->slots[i] - 1;
        if (ks->items[k].len == key->len && memcmp(ks->items[k].key, key->p, key->len) == 0)
            return false;
    }
    ks->items[ks->n].key = key->p;
    ks->items[ks->n].len = key->len;
    ks->slots[i] = ++ks->n;
    key->p = NULL; /* owned by the set now */
    key->len = key->cap = 0;
    return true;
}

static void key_set_free(key_set_t *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->items[i].key);
    free(ks->items);
    free(ks->slots);
}

static bool parse_pair(parser_t *p, key_set_t *keys)
{
    const token_t *t;
    buf_t key = {0};
    bool ok = false, is_string = false;

    if (peek(p) == NULL) {
        perr(p, "premature EOI");
        return false;
    }
    if (peek(p)->type == TOK_STRING) {
        t = pop(p);
        if (parse_string(p, t, &key) < 0)
            goto out;
        if (!p->gen_off)
            gen(p, yajl_gen_string(p->g, (const unsigned char *)key.p, key.len));
        is_string = true;
    } else {
        p->gen_off++;
        parse_value(p);
        p->gen_off--;
    }
    if (!is_string) {
        perr(p, "key is not a string in object");
        goto out;
    }
    t = pop(p);
    if (t == NULL) {
        perr(p, "premature EOI");
        goto out;
    }
    if (t->type != TOK_COLON) {
        perr(p, "missing : in object pair");
        goto out;
    }
    if (!parse_value(p)) {
        perr(p, "Missing value in dict");
        goto out;
    }
    if (!key_set_add(p, keys, &key)) {
        perr(p, "duplicate key");
        goto out;
    }
    ok = !p->oom;
out:
    free(key.p);
    return ok;
}

static bool parse_object(parser_t *p)
{
    const token_t *t;
    key_set_t keys = {0};
    bool ok = false;

    pop(p); /* '{' */
    if (!p->gen_off)
        gen(p, yajl_gen_map_open(p->g));
    if (peek(p) == NULL) {
        perr(p, "premature EOI");
        goto out;
    }
    if (peek(p)->type != TOK_RCURLY) {
        if (!parse_pair(p, &keys))
            goto out;
        t = pop(p);
        if (t == NULL) {
            perr(p, "premature EOI");
            goto out;
        }
        while (t->type != TOK_RCURLY) {
            if (t->type != TOK_COMMA) {
                perr(p, "expected separator in dict");
                goto out;
            }
            if (!parse_pair(p, &keys))
                goto out;
            t = pop(p);
            if (t == NULL) {
                perr(p, "premature EOI");
                goto out;
            }
        }
    } else {
        pop(p);
    }
    if (!p->gen_off)
        gen(p, yajl_gen_map_close(p->g));
    ok = true;
out:
    key_set_free(&keys);
    return ok;
}

static bool parse_array(parser_t *p)
{
    const token_t *t;

    pop(p); /* '[' */
    if (!p->gen_off)
        gen(p, yajl_gen_array_open(p->g));
    if (peek(p) == NULL) {
        perr(p, "premature EOI");
        return false;
    }
    if (peek(p)->type != TOK_RSQUARE) {
        if (!parse_value(p)) {
            perr(p, "expecting value");
            return false;
        }
        t = pop(p);
        if (t == NULL) {
            perr(p, "premature EOI");
            return false;
        }
        while (t->type != TOK_RSQUARE) {
            if (t->type != TOK_COMMA) {
                perr(p, "expected separator in list");
                return false;
            }
            if (!parse_value(p)) {
                perr(p, "expecting value");
                return false;
            }
            t = pop(p);
            if (t == NULL) {
                perr(p, "premature EOI");
                return false;
            }
        }
    } else {
        pop(p);
    }
    if (!p->gen_off)
        gen(p, yajl_gen_array_close(p->g));
    return true;
}

static bool parse_value(parser_t *p)
{
    const token_t *t = peek(p);
    const char *s;
    buf_t str = {0};
    bool ok;

    if (t == NULL) {
        perr(p, "premature EOI");
        return false;
    }
    switch (t->type) {
    case TOK_LCURLY:
        return parse_object(p);
    case TOK_LSQUARE:
        return parse_array(p);
    case TOK_STRING:
        pop(p);
        ok = parse_string(p, t, &str) == 0;
        if (ok && !p->gen_off)
            gen(p, yajl_gen_string(p->g, (const unsigned char *)str.p, str.len));
        free(str.p);
        return ok;
    case TOK_INTEGER:
    case TOK_FLOAT:
        pop(p);
        if (!p->gen_off)
            gen(p, yajl_gen_number(p->g, tok_str(p, t), t->len));
        return true;
    case TOK_KEYWORD:
        pop(p);
        s = tok_str(p, t);
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
            if (!p->gen_off)
                gen(p, yajl_gen_bool(p->g, s[0] == 't'));
            return true;
        }
        if (strcmp(s, "null") == 0) {
            if (!p->gen_off)
                gen(p, yajl_gen_null(p->g));
            return true;
        }
        perr(p, "invalid keyword '%s'", s);
        return false;
    default:
        perr(p, "expecting value");
        return false;
    }
}

/* A whole message is buffered: parse it and emit the value or QEMU's error. */
static void parse_message(vb_json_stream_t *s)
{
    parser_t p = {.s = s};
    const unsigned char *text;
    size_t len;
    char *copy = NULL, errbuf[128];
    yajl_val value = NULL;

    p.g = yajl_gen_alloc(NULL);
    if (p.g == NULL) {
        s->oom = true;
        emit(s, NULL, "JSON parse error, out of memory");
        return;
    }
    yajl_gen_config(p.g, yajl_gen_validate_utf8, 0);
    parse_value(&p);
    if (p.oom) {
        s->oom = true;
        emit(s, NULL, "JSON parse error, out of memory");
        goto out;
    }
    if (p.err != NULL) {
        emit_errorf(s, "JSON parse error, %s", p.err);
        goto out;
    }
    if (p.gen_failed) {
        /* yajl_gen nests at most 128 deep, QEMU 1024: the only way a valid message gets here */
        emit(s, NULL, p.gen_status == yajl_max_depth_exceeded
                          ? "JSON nesting depth limit exceeded"
                          : "JSON parse error, out of memory");
        goto out;
    }
    yajl_gen_get_buf(p.g, &text, &len);
    copy = strndup((const char *)text, len);
    if (copy != NULL)
        value = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
    if (value == NULL) {
        s->oom = s->oom || copy == NULL;
        emit(s, NULL, "JSON parse error, out of memory");
        goto out;
    }
    emit(s, value, NULL);
out:
    free(copy);
    free(p.err);
    yajl_gen_free(p.g);
}

/* json-streamer.c: one token. */
static void process_token(vb_json_stream_t *s, tok_type_t type)
{
    token_t *t;

    switch (type) {
    case TOK_LCURLY:
        s->brace++;
        break;
    case TOK_RCURLY:
        s->brace--;
        break;
    case TOK_LSQUARE:
        s->bracket++;
        break;
    case TOK_RSQUARE:
        s->bracket--;
        break;
    case TOK_ERROR:
        emit_errorf(s, "JSON parse error, stray '%s'", s->tok.p ? s->tok.p : "");
        return;
    default:
        break;
    }
    if (s->text.len + s->tok.len + 1 > MAX_TOKEN_SIZE) {
        emit(s, NULL, "JSON token size limit exceeded");
        return;
    }
    if (s->ntokens + 1 > MAX_TOKEN_COUNT) {
        emit(s, NULL, "JSON token count limit exceeded");
        return;
    }
    if (s->bracket + s->brace > MAX_NESTING) {
        emit(s, NULL, "JSON nesting depth limit exceeded");
        return;
    }
    if (s->ntokens == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        token_t *tokens = realloc(s->tokens, cap * sizeof(*tokens));
        if (tokens == NULL)
            goto oom;
        s->tokens = tokens;
        s->cap = cap;
    }
    t = &s->tokens[s->ntokens];
    t->type = type;
    t->off = s->text.len;
    t->len = s->tok.len;
    if (buf_add(&s->text, s->tok.p ? s->tok.p : "", s->tok.len) < 0 || buf_add(&s->text, "", 1) < 0)
        goto oom;
    s->ntokens++;
    if ((s->brace > 0 || s->bracket > 0) && s->brace >= 0 && s->bracket >= 0)
        return;
    parse_message(s);
    return;
oom:
    s->oom = true;
    emit(s, NULL, "JSON parse error, out of memory");
}

static void tok_clear(vb_json_stream_t *s)
{
    s->tok.len = 0;
    if (s->tok.p != NULL)
        s->tok.p[0] = '\0';
    /* do not keep a huge buffer after a huge token */
    if (s->tok.cap > 65536) {
        free(s->tok.p);
        s->tok.p = NULL;
        s->tok.cap = 0;
    }
}

static void feed_char(vb_json_stream_t *s, unsigned char ch)
{
    bool consumed = false;

    while (!consumed && !s->stop) {
        bool lookahead;
        int next = next_state(s->state, ch, &lookahead);
        consumed = !lookahead;
        if (consumed && buf_add(&s->tok, &ch, 1) < 0) {
            s->oom = true;
            return;
        }
        switch (next) {
        case TOK_LCURLY:
        case TOK_RCURLY:
        case TOK_LSQUARE:
        case TOK_RSQUARE:
        case TOK_COLON:
        case TOK_COMMA:
        case TOK_INTEGER:
        case TOK_FLOAT:
        case TOK_KEYWORD:
        case TOK_STRING:
            process_token(s, (tok_type_t)next);
            tok_clear(s);
            next = IN_START;
            break;
        case IN_START:
            tok_clear(s);
            break;
        case 0:
            process_token(s, TOK_ERROR);
            tok_clear(s);
            next = IN_RECOVERY;
            break;
        case IN_RECOVERY:
            tok_clear(s);
            break;
        default:
            break;
        }
        s->state = next;
    }
    if (s->tok.len > MAX_TOKEN_SIZE) {
        emit(s, NULL, "JSON token size limit exceeded");
        tok_clear(s);
        s->state = IN_START;
    }
}

int vb_json_stream_feed(vb_json_stream_t *s, const char *buf, size_t len)
{
    s->stop = false;
    for (size_t i = 0; i < len && !s->stop && !s->oom; i++)
        feed_char(s, (unsigned char)buf[i]);
    if (s->oom) {
        s->oom = false;
        reset_message(s);
        tok_clear(s);
        s->state = IN_START;
        return -ENOMEM;
    }
    return s->stop ? 1 : 0;
}
