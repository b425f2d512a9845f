/* The hardened front of yajl's parser, shared by the QMP reply parsers, the transport's allow-list
 * and the QMP socket client. yajl_tree_parse alone accepts comments, NUL characters inside strings,
 * unbounded nesting (and frees the tree recursively), and returns the first of duplicate keys while
 * QEMU would take the last: here one pass of yajl's parser with comments off builds the tree itself,
 * in yajl_tree's layout (in an arena of its own), refusing NULs and deep nesting as it goes, and bal_json_get refuses
 * duplicate keys. Private to the agent. Pure functions: no I/O, thread-safe. */
#ifndef BAL_JSON_H
#define BAL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "agent/bal_error.h"

/* QMP's deepest message (a qom-list reply) is 3 levels deep; anything far deeper is hostile. */
#define BAL_JSON_MAX_DEPTH 32

/* Parses len bytes of text (NUL-terminated or not) that must hold exactly one JSON value: strict JSON
 * (no comments), valid UTF-8, no NUL character anywhere, at most BAL_JSON_MAX_DEPTH levels of nesting,
 * at most max bytes. Returns 0 and the tree in *out (the caller frees it with bal_json_free, never
 * yajl_tree_free: the tree lives in an arena of its own, and no part of it can be freed alone), or
 * -EMSGSIZE (longer than max), -EPROTO (anything else wrong) or -ENOMEM, with a sentence in err.
 * A number in the tree has its text and, when it is an integer within int64, YAJL_NUMBER_INT_VALID;
 * never YAJL_NUMBER_DOUBLE_VALID (read integers with bal_json_integer). */
int bal_json_parse(const char *text, size_t len, size_t max, yajl_val *out, bal_error_t *err);

/* Frees a tree from bal_json_parse (its root, nothing else). NULL is a no-op. */
void bal_json_free(yajl_val tree);

/* Looks key up in the object obj. Returns 0 with the value in *val, -ENOENT when obj is not an object
 * or lacks key, or -EPROTO when key appears more than once (err filled only then). */
int bal_json_get(yajl_val obj, const char *key, yajl_val *val, bal_error_t *err);

/* An integer in JSON's integer syntax (no fraction, no exponent), read from the number's string form
 * so that values above INT64_MAX survive. Returns 0 with the sign in *negative and the absolute value
 * in *magnitude, -EINVAL when v is not an integer number, or -ERANGE when the absolute value does not
 * fit in 64 bits. */
int bal_json_integer(yajl_val v, bool *negative, uint64_t *magnitude);

#endif
