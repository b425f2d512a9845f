/* The libvirt transport's cache of domain handles (prefix blv_cache_), so that a command does not cost a
 * lookup round trip first. Keys are "u:UUID" or "n:NAME", so that a name never matches a UUID. Not
 * locked: its owner (bal_lv_conn.h) holds its own lock around every call, and drops the whole cache with
 * the connection the handles belong to. */
#ifndef BAL_LV_CACHE_H
#define BAL_LV_CACHE_H

#include <libvirt/libvirt.h>

#include "agent/bal_transport.h"

typedef struct blv_cache_entry blv_cache_entry_t;

/* Zeroed: empty. */
typedef struct blv_cache {
    blv_cache_entry_t *head;
} blv_cache_t;

/* The key of info (malloc'ed), from its UUID when it has one, else its name; NULL when out of memory. */
char *blv_cache_key(const bal_domain_info_t *info);

/* key's entry with a new reference of the caller's (blv_cache_entry_unref), or NULL. An entry keeps its
 * handle until the cache has dropped it and the last reference is gone: a command holds the entry,
 * not a libvirt reference of its own (virDomainRef and virDomainFree each cost a libvirt API call,
 * with its debug formatting, per command: tests/bench). Thread-safe on its own. */
blv_cache_entry_t *blv_cache_get(blv_cache_t *cache, const char *key);
virDomainPtr blv_cache_entry_domain(const blv_cache_entry_t *entry);
/* NULL is a no-op. Thread-safe: an entry's references are atomic. */
void blv_cache_entry_unref(blv_cache_entry_t *entry);

/* Keeps a reference of its own to dom under key, unless key is there already. A failure (no memory)
 * only costs a later lookup. */
void blv_cache_put(blv_cache_t *cache, const char *key, virDomainPtr dom);

/* Drops key's entry (its handle goes with its last reference); key NULL drops every entry. */
void blv_cache_drop(blv_cache_t *cache, const char *key);

#endif
