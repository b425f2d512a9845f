/* The orders in which QEMU 7.2 walks an object's members, which decide what it prints and which
 * error it reports first: QDict's hash buckets (qobject/qdict.c), and GLib 2.74's GHashTable
 * (glib/ghash.c) for the first unexpected argument of a command.
 *
 * Pure functions over arrays of keys given in insertion order; they allocate only scratch memory and,
 * when that fails, fall back to an order that still visits every key once. */
#ifndef VB_ORDER_H
#define VB_ORDER_H

#include <stddef.h>

/* QDict prints its members bucket by bucket (tdb_hash(key) % 512), the most recently inserted first
 * within a bucket. Fills order[0..n-1] with the indices of keys[] in that printing order. */
void vb_order_qdict(const char *const *keys, size_t n, size_t *order);

/* QEMU reports the first unexpected argument in the order of a GLib string hash table filled from
 * the arguments' QDict. Returns the first of keys[0..n-1] that is not in known[] (NULL-terminated),
 * in that order, or NULL if every key is known. The result points into keys. */
const char *vb_order_first_unexpected(const char *const *keys, size_t n, const char *const *known);

#endif
