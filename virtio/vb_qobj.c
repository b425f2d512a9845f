/* QObject-like values. See vb_qobj.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_hash.h"
#include "virtio/vb_qobj.h"

/* A dict looks its keys up by scanning up to this many, through a hash index beyond. */
#define DICT_SCAN_MAX 8
#define NOT_FOUND ((size_t)-1)

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
            char **keys;   /* dicts only */
            size_t n, cap;
            size_t *slots; /* dicts past DICT_SCAN_MAX keys: index + 1 into keys, 0 for empty */
            size_t nslots; /* a power of two, at least twice cap */
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

vb_qobj_t *vb_qobj_string_take(char *value)
{
    vb_qobj_t *o = value != NULL ? qobj_new(VB_QOBJ_STRING) : NULL;

    if (o == NULL) {
        free(value);
        return NULL;
    }
    o->v.s = value;
    return o;
}

vb_qobj_t *vb_qobj_string(const char *value)
{
    return vb_qobj_string_take(strdup(value));
}

vb_qobj_t *vb_qobj_list(void)
{
    return qobj_new(VB_QOBJ_LIST);
}

vb_qobj_t *vb_qobj_dict(void)
{
    return qobj_new(VB_QOBJ_DICT);
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
        free(obj->v.c.slots);
    }
    free(obj);
}

/* ======================================================================== containers */

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

static void index_insert(vb_qobj_t *d, size_t k)
{
    size_t mask = d->v.c.nslots - 1, i = (size_t)vb_hash_string(d->v.c.keys[k]) & mask;

    while (d->v.c.slots[i] != 0)
        i = (i + 1) & mask;
    d->v.c.slots[i] = k + 1;
}

/* (Re)builds the hash index for the dict's capacity, once it holds more than DICT_SCAN_MAX keys
 * (without an index lookups scan, still correct). */
static void index_rebuild(vb_qobj_t *d)
{
    size_t nslots = 16;

    free(d->v.c.slots);
    d->v.c.slots = NULL;
    d->v.c.nslots = 0;
    if (d->v.c.n <= DICT_SCAN_MAX)
        return;
    while (nslots < 2 * d->v.c.cap)
        nslots *= 2;
    d->v.c.slots = calloc(nslots, sizeof(*d->v.c.slots));
    if (d->v.c.slots == NULL)
        return;
    d->v.c.nslots = nslots;
    for (size_t k = 0; k < d->v.c.n; k++)
        index_insert(d, k);
}

static size_t dict_find(const vb_qobj_t *d, const char *key)
{
    size_t mask, i;

    if (d->v.c.slots == NULL) {
        for (size_t k = 0; k < d->v.c.n; k++)
            if (strcmp(d->v.c.keys[k], key) == 0)
                return k;
        return NOT_FOUND;
    }
    mask = d->v.c.nslots - 1;
    for (i = (size_t)vb_hash_string(key) & mask; d->v.c.slots[i] != 0; i = (i + 1) & mask)
        if (strcmp(d->v.c.keys[d->v.c.slots[i] - 1], key) == 0)
            return d->v.c.slots[i] - 1;
    return NOT_FOUND;
}

/* Appends a key known to be new; takes key and value over, also on failure. */
static int dict_append(vb_qobj_t *d, char *key, vb_qobj_t *value)
{
    size_t cap = d->v.c.cap;

    if (key == NULL || container_grow(d) < 0) {
        free(key);
        vb_qobj_free(value);
        return -ENOMEM;
    }
    d->v.c.keys[d->v.c.n] = key;
    d->v.c.items[d->v.c.n++] = value;
    if (d->v.c.cap != cap || (d->v.c.slots == NULL && d->v.c.n > DICT_SCAN_MAX))
        index_rebuild(d);
    else if (d->v.c.slots != NULL)
        index_insert(d, d->v.c.n - 1);
    return 0;
}

int vb_qobj_dict_put(vb_qobj_t *dict, const char *key, vb_qobj_t *value)
{
    size_t k;

    if (value == NULL)
        return -ENOMEM;
    if (dict == NULL || dict->type != VB_QOBJ_DICT) {
        vb_qobj_free(value);
        return -EINVAL;
    }
    k = dict_find(dict, key);
    if (k != NOT_FOUND) {
        vb_qobj_free(dict->v.c.items[k]);
        dict->v.c.items[k] = value;
        return 0;
    }
    return dict_append(dict, strdup(key), value);
}

int vb_qobj_dict_add(vb_qobj_t *dict, char *key, vb_qobj_t *value)
{
    int rc = -ENOMEM;

    if (value == NULL || key == NULL)
        goto fail;
    rc = -EINVAL;
    if (dict == NULL || dict->type != VB_QOBJ_DICT)
        goto fail;
    rc = -EEXIST;
    if (dict_find(dict, key) != NOT_FOUND)
        goto fail;
    return dict_append(dict, key, value);
fail:
    free(key);
    vb_qobj_free(value);
    return rc;
}

vb_qobj_t *vb_qobj_dict_take(vb_qobj_t *dict, const char *key)
{
    vb_qobj_t *value;
    size_t k, after;

    if (dict == NULL || dict->type != VB_QOBJ_DICT)
        return NULL;
    k = dict_find(dict, key);
    if (k == NOT_FOUND)
        return NULL;
    value = dict->v.c.items[k];
    free(dict->v.c.keys[k]);
    after = dict->v.c.n - k - 1;
    memmove(dict->v.c.keys + k, dict->v.c.keys + k + 1, after * sizeof(*dict->v.c.keys));
    memmove(dict->v.c.items + k, dict->v.c.items + k + 1, after * sizeof(*dict->v.c.items));
    dict->v.c.n--;
    if (dict->v.c.slots != NULL)
        index_rebuild(dict);
    return value;
}

/* ======================================================================== reading */

vb_qobj_type_t vb_qobj_type(const vb_qobj_t *obj)
{
    return obj->type;
}

bool vb_qobj_get_bool(const vb_qobj_t *obj)
{
    return obj->type == VB_QOBJ_BOOL && obj->v.b;
}

int64_t vb_qobj_get_int(const vb_qobj_t *obj)
{
    return obj->type == VB_QOBJ_INT ? obj->v.i : 0;
}

uint64_t vb_qobj_get_uint(const vb_qobj_t *obj)
{
    return obj->type == VB_QOBJ_UINT ? obj->v.u : 0;
}

double vb_qobj_get_double(const vb_qobj_t *obj)
{
    return obj->type == VB_QOBJ_DOUBLE ? obj->v.d : 0;
}

const char *vb_qobj_get_string(const vb_qobj_t *obj)
{
    return obj->type == VB_QOBJ_STRING ? obj->v.s : NULL;
}

size_t vb_qobj_list_size(const vb_qobj_t *list)
{
    return list != NULL && list->type == VB_QOBJ_LIST ? list->v.c.n : 0;
}

const vb_qobj_t *vb_qobj_list_at(const vb_qobj_t *list, size_t i)
{
    return list->v.c.items[i];
}

size_t vb_qobj_dict_size(const vb_qobj_t *dict)
{
    return dict != NULL && dict->type == VB_QOBJ_DICT ? dict->v.c.n : 0;
}

const char *const *vb_qobj_dict_keys(const vb_qobj_t *dict)
{
    return dict != NULL && dict->type == VB_QOBJ_DICT ? (const char *const *)dict->v.c.keys : NULL;
}

const vb_qobj_t *vb_qobj_dict_value(const vb_qobj_t *dict, size_t i)
{
    return dict->v.c.items[i];
}

const vb_qobj_t *vb_qobj_dict_get(const vb_qobj_t *dict, const char *key)
{
    size_t k;

    if (dict == NULL || dict->type != VB_QOBJ_DICT)
        return NULL;
    k = dict_find(dict, key);
    return k != NOT_FOUND ? dict->v.c.items[k] : NULL;
}
