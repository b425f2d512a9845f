/* QEMU's JSON writer, after qobject/json-writer.c in QEMU 7.2; the code is ours. See vb_json_print.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_json_print.h"
#include "virtio/vb_mutf8.h"
#include "virtio/vb_order.h"

static int add_str(vb_buf_t *out, const char *s)
{
    return vb_buf_add(out, s, strlen(s));
}

static int add_u16_escape(vb_buf_t *out, unsigned v)
{
    char hex[8];

    snprintf(hex, sizeof(hex), "\\u%04X", v & 0xFFFFu);
    return vb_buf_add(out, hex, 6);
}

/* One character that is not printable ASCII, decoded from s: returns the bytes it took. */
static size_t escape_char(vb_buf_t *out, const unsigned char *s, int *rc)
{
    size_t used;
    int64_t cp = vb_mutf8_decode(s, VB_MUTF8_MAX_SEQ, &used);

    if (used == 0)
        used = 1;
    if (cp < 0)
        cp = 0xFFFD; /* replacement character */
    if (cp > 0xFFFF) {
        *rc = add_u16_escape(out, (unsigned)(0xD800 + ((cp - 0x10000) >> 10)));
        if (*rc == 0)
            *rc = add_u16_escape(out, (unsigned)(0xDC00 + ((cp - 0x10000) & 0x3FF)));
    } else {
        *rc = add_u16_escape(out, (unsigned)cp);
    }
    return used;
}

static int print_string(const char *str, vb_buf_t *out)
{
    const unsigned char *s = (const unsigned char *)str;
    int rc = vb_buf_add_byte(out, '"');

    while (rc == 0 && *s != '\0') {
        const unsigned char *run = s;
        const char *esc = NULL;
        while (*s >= 0x20 && *s < 0x7F && *s != '"' && *s != '\\')
            s++; /* printable ASCII goes out as it is */
        if (s > run)
            rc = vb_buf_add(out, run, (size_t)(s - run));
        if (rc != 0 || *s == '\0')
            break;
        switch (*s) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc != NULL) {
            rc = vb_buf_add(out, esc, 2);
            s++;
        } else {
            s += escape_char(out, s, &rc);
        }
    }
    return rc == 0 ? vb_buf_add_byte(out, '"') : rc;
}

static int print_list(const vb_qobj_t *list, vb_buf_t *out)
{
    size_t n = vb_qobj_list_size(list);
    int rc = vb_buf_add_byte(out, '[');

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = vb_buf_add(out, ", ", 2);
        if (rc == 0)
            rc = vb_json_print(vb_qobj_list_at(list, i), out);
    }
    return rc == 0 ? vb_buf_add_byte(out, ']') : rc;
}

static int print_dict(const vb_qobj_t *dict, vb_buf_t *out)
{
    size_t n = vb_qobj_dict_size(dict), small[16];
    size_t *order = n <= 16 ? small : malloc(n * sizeof(*order));
    const char *const *keys = vb_qobj_dict_keys(dict);
    int rc;

    if (order == NULL)
        return -ENOMEM;
    vb_order_qdict(keys, n, order);
    rc = vb_buf_add_byte(out, '{');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = vb_buf_add(out, ", ", 2);
        if (rc == 0)
            rc = print_string(keys[order[i]], out);
        if (rc == 0)
            rc = vb_buf_add(out, ": ", 2);
        if (rc == 0)
            rc = vb_json_print(vb_qobj_dict_value(dict, order[i]), out);
    }
    if (order != small)
        free(order);
    return rc == 0 ? vb_buf_add_byte(out, '}') : rc;
}

int vb_json_print(const vb_qobj_t *obj, vb_buf_t *out)
{
    char num[40];

    switch (vb_qobj_type(obj)) {
    case VB_QOBJ_NULL:
        return add_str(out, "null");
    case VB_QOBJ_BOOL:
        return add_str(out, vb_qobj_get_bool(obj) ? "true" : "false");
    case VB_QOBJ_INT:
        snprintf(num, sizeof(num), "%" PRId64, vb_qobj_get_int(obj));
        return add_str(out, num);
    case VB_QOBJ_UINT:
        snprintf(num, sizeof(num), "%" PRIu64, vb_qobj_get_uint(obj));
        return add_str(out, num);
    case VB_QOBJ_DOUBLE:
        snprintf(num, sizeof(num), "%.17g", vb_qobj_get_double(obj));
        return add_str(out, num);
    case VB_QOBJ_STRING:
        return print_string(vb_qobj_get_string(obj), out);
    case VB_QOBJ_LIST:
        return print_list(obj, out);
    case VB_QOBJ_DICT:
        return print_dict(obj, out);
    }
    return -EINVAL;
}
