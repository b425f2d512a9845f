/* QEMU's QDict order and GLib's hash table order, after qobject/qdict.c (QEMU 7.2) and glib/ghash.c
 * (GLib 2.74); the code is ours. See vb_order.h. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_order.h"

/* ======================================================================== QDict */

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

void vb_order_qdict(const char *const *keys, size_t n, size_t *order)
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

/* ======================================================================== GHashTable */

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

static bool is_known(const char *key, const char *const *known)
{
    for (size_t k = 0; known[k] != NULL; k++)
        if (strcmp(known[k], key) == 0)
            return true;
    return false;
}

const char *vb_order_first_unexpected(const char *const *keys, size_t n, const char *const *known)
{
    ghash_model_t t = {0};
    size_t *order = NULL;
    const char *found = NULL;

    if (n == 0)
        return NULL;
    order = malloc(n * sizeof(*order));
    if (order == NULL || ghash_set_shift(&t, 3) < 0)
        goto fallback;
    /* QEMU fills the table from the QDict, in QDict order. */
    vb_order_qdict(keys, n, order);
    for (size_t i = 0; i < n; i++)
        if (ghash_insert(&t, keys[order[i]]) < 0)
            goto fallback;
    for (size_t i = 0; i < t.size && found == NULL; i++)
        if (t.slot[i] != NULL && !is_known(t.slot[i], known))
            found = t.slot[i];
    goto out;
fallback: /* out of memory: any unexpected key will do */
    for (size_t i = 0; i < n && found == NULL; i++)
        if (!is_known(keys[i], known))
            found = keys[i];
out:
    free(order);
    free(t.slot);
    free(t.hash);
    return found;
}
