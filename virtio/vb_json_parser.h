/* QEMU 7.2's JSON parser (qobject/json-parser.c): one message's tokens, as the streamer cut them
 * (vb_json_stream.h), into a value tree (vb_qobj.h), with QEMU's grammar, its number classes (an
 * integer token is an int64 if it fits, else a uint64, else a double), its string decoding (escapes
 * and modified UTF-8, vb_mutf8.h), its duplicate-key check and its error texts.
 *
 * Pure: no I/O, no globals. */
#ifndef VB_JSON_PARSER_H
#define VB_JSON_PARSER_H

#include <stddef.h>

#include "virtio/vb_json_lexer.h"
#include "virtio/vb_qobj.h"

/* A message with this many containers nested (the whole message counts as one) is refused with
 * QEMU's depth message, although QEMU's own limit is 1024, the streamer's: a difference the README
 * states, which keeps the trees the printer recurses over (vb_json_print.h) shallow. */
#define VB_JSON_MAX_DEPTH 128

typedef struct vb_json_token {
    vb_json_token_type_t type;
    size_t off, len; /* the token's text: text + off, NUL-terminated */
} vb_json_token_t;

/* Parses tokens[0..n-1] (n > 0). Returns 0 with the value in *out, which the caller owns; -EINVAL
 * with QEMU's message in *err ("JSON parse error, expecting value", "JSON nesting depth limit
 * exceeded", ...), malloc'ed, which the caller frees; or -ENOMEM. The first error wins, as in QEMU. */
int vb_json_parse(const vb_json_token_t *tokens, size_t n, const char *text, vb_qobj_t **out,
                  char **err);

#endif
