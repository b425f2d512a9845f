/* QEMU's JSON dialect as its QMP monitor reads it (qobject/json-streamer.c in QEMU 7.2, over the
 * lexer of vb_json_lexer.h and the parser of vb_json_parser.h): a stream of bytes cut into messages
 * the way QEMU's streamer does it. A message ends when its braces and brackets balance (a scalar is
 * a message by itself); a lexical error is reported at once; QEMU's limits on a message's size, its
 * token count and its nesting apply, with QEMU's texts.
 *
 * Single owner, no I/O, no globals. */
#ifndef VB_JSON_STREAM_H
#define VB_JSON_STREAM_H

#include <stddef.h>

#include "virtio/vb_qobj.h"

typedef struct vb_json_stream vb_json_stream_t;

/* Called once per message, in order, with either value (the callee owns it and must vb_qobj_free
 * it) or error (QEMU's text, e.g. "JSON parse error, expecting value"; valid during the call only).
 * Returns 0 to go on, non-zero to stop: the rest of the current vb_json_stream_feed call's input is
 * dropped (QEMU's quit). */
typedef int (*vb_json_emit_fn)(void *opaque, vb_qobj_t *value, const char *error);

/* Returns NULL on ENOMEM. */
vb_json_stream_t *vb_json_stream_new(vb_json_emit_fn emit, void *opaque);
/* NULL is a no-op. */
void vb_json_stream_free(vb_json_stream_t *stream);
/* Feeds bytes; messages are emitted from inside this call. Returns 0, 1 if the callback asked to
 * stop, or -ENOMEM (the unfinished message is dropped). */
int vb_json_stream_feed(vb_json_stream_t *stream, const char *buf, size_t len);
/* Bytes held for an unfinished message (a client's pending input). */
size_t vb_json_stream_pending(const vb_json_stream_t *stream);

#endif
