/* The libvirt transport's cache of domain handles. See bal_lv_cache.h for the contract. */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "agent/bal_lv_cache.h"

struct blv_cache_entry {
    atomic_uint refs; /* the cache's while it holds the entry, and each command's */
    char *key;
    virDomainPtr dom; /* one reference, for the entry's life */
    blv_cache_entry_t *next;
};

char *blv_cache_key(const bal_domain_info_t *info)
{
    const char *id = info->uuid[0] != '\0' ? info->uuid : info->name;
    size_t len = strlen(id);
    char *key = malloc(len + 3);

    if (key == NULL)
        return NULL;
    key[0] = info->uuid[0] != '\0' ? 'u' : 'n';
    key[1] = ':';
    memcpy(key + 2, id, len + 1);
    return key;
}

blv_cache_entry_t *blv_cache_get(blv_cache_t *cache, const char *key)
{
    for (blv_cache_entry_t *d = cache->head; d != NULL; d = d->next) {
        if (strcmp(d->key, key) == 0) {
            atomic_fetch_add(&d->refs, 1);
            return d;
        }
    }
    return NULL;
}

virDomainPtr blv_cache_entry_domain(const blv_cache_entry_t *entry)
{
    return entry->dom;
}

void blv_cache_entry_unref(blv_cache_entry_t *entry)
{
    if (entry == NULL || atomic_fetch_sub(&entry->refs, 1) != 1)
        return;
    virDomainFree(entry->dom);
    free(entry->key);
    free(entry);
}

void blv_cache_put(blv_cache_t *cache, const char *key, virDomainPtr dom)
{
    blv_cache_entry_t *d;

    for (d = cache->head; d != NULL; d = d->next)
        if (strcmp(d->key, key) == 0)
            return;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return;
    d->key = strdup(key);
    if (d->key == NULL || virDomainRef(dom) < 0) {
        virResetLastError();
        free(d->key);
        free(d);
        return;
    }
    atomic_init(&d->refs, 1);
    d->dom = dom;
    d->next = cache->head;
    cache->head = d;
}

void blv_cache_drop(blv_cache_t *cache, const char *key)
{
    blv_cache_entry_t **link = &cache->head;

    while (*link != NULL) {
        blv_cache_entry_t *d = *link;
        if (key != NULL && strcmp(d->key, key) != 0) {
            link = &d->next;
            continue;
        }
        *link = d->next;
        blv_cache_entry_unref(d);
    }
}
