/* QEMU's JSON dialect, as its QMP monitor reads and writes it (qobject/json-lexer.c, json-streamer.c,
 * json-parser.c, json-writer.c in QEMU 7.2), on top of yajl.
 *
 * Reading: a stream of bytes is cut into messages the way QEMU's streamer does it (a message ends when
 * its braces and brackets balance; a lexical error is reported at once and the lexer skips to the next
 * structural or control character), each message is checked with QEMU's grammar and error texts
 * ("JSON parse error, ..."), then handed to yajl's tree parser. QEMU's extensions are accepted:
 * single-quoted strings and the \' escape.
 *
 * Writing: replies are built as small QObject-like trees (vb_qobj_t) and printed through yajl_gen, then
 * given QEMU's layout: ", " and ": " separators, every non-ASCII or control character as \uXXXX, and
 * object members in QDict's hash-bucket order, which is the order QEMU prints them in.
 *
 * Pure functions and single-owner objects: no I/O, no globals. */
#ifndef VB_JSON_H
#define VB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

/* ---- values to print ---- */

typedef enum vb_qobj_type {
    VB_QOBJ_NULL,
    VB_QOBJ_BOOL,
    VB_QOBJ_INT,    /* int64_t */
    VB_QOBJ_UINT,   /* uint64_t above INT64_MAX */
    VB_QOBJ_DOUBLE,
    VB_QOBJ_STRING,
    VB_QOBJ_LIST,
    VB_QOBJ_DICT,
} vb_qobj_type_t;

typedef struct vb_qobj vb_qobj_t;

/* Constructors return NULL on ENOMEM. A container takes ownership of what is put in it, also when
 * the put fails (the value is then freed): calls can be chained without leaks. */
vb_qobj_t *vb_qobj_null(void);
vb_qobj_t *vb_qobj_bool(bool value);
vb_qobj_t *vb_qobj_int(int64_t value);
vb_qobj_t *vb_qobj_uint(uint64_t value); /* stored as INT when it fits, as QEMU's QNum does */
vb_qobj_t *vb_qobj_double(double value);
vb_qobj_t *vb_qobj_string(const char *value);
vb_qobj_t *vb_qobj_list(void);
vb_qobj_t *vb_qobj_dict(void);
/* Appends; returns 0 or -ENOMEM (or -EINVAL if list is not a list). */
int vb_qobj_list_append(vb_qobj_t *list, vb_qobj_t *value);
/* Puts key; a key already there is replaced in place (QEMU's qdict_put keeps the first position). */
int vb_qobj_dict_put(vb_qobj_t *dict, const char *key, vb_qobj_t *value);
vb_qobj_type_t vb_qobj_type(const vb_qobj_t *obj);
/* A deep copy of a parsed value, numbers classified as QEMU does (an integer token is an int64 if it
 * fits, else a uint64, else a double). NULL on ENOMEM or for a NULL value. */
vb_qobj_t *vb_qobj_from_yajl(yajl_val value);
void vb_qobj_free(vb_qobj_t *obj);

/* Prints obj as QEMU would, without a line ending. Returns 0 and a malloc'ed NUL-terminated string
 * in *out (its length in *len if len is not NULL), or -ENOMEM, or -E2BIG when nested deeper than
 * yajl_gen allows (128). */
int vb_qobj_to_json(const vb_qobj_t *obj, char **out, size_t *len);

/* ---- numbers, as QEMU's parser classifies them ---- */

typedef struct vb_json_number {
    enum { VB_JSON_I64, VB_JSON_U64, VB_JSON_DOUBLE } kind;
    int64_t i;
    uint64_t u;
    double d;
} vb_json_number_t;

/* value must be a yajl number. Returns false for anything else. */
bool vb_json_number(yajl_val value, vb_json_number_t *out);

/* ---- reading a stream ---- */

typedef struct vb_json_stream vb_json_stream_t;

/* Called once per message, in order: either value (a parsed tree the callee must yajl_tree_free) or
 * error (QEMU's text, e.g. "JSON parse error, expecting value"; valid during the call only). Returns
 * 0 to go on, non-zero to stop: the rest of the current vb_json_stream_feed call's input is dropped
 * (QEMU's quit). */
typedef int (*vb_json_emit_fn)(void *opaque, yajl_val value, const char *error);

/* Returns NULL on ENOMEM. */
vb_json_stream_t *vb_json_stream_new(vb_json_emit_fn emit, void *opaque);
void vb_json_stream_free(vb_json_stream_t *stream);
/* Feeds bytes; messages are emitted from inside this call. Returns 0, 1 if the callback asked to
 * stop, or -ENOMEM. */
int vb_json_stream_feed(vb_json_stream_t *stream, const char *buf, size_t len);
/* Bytes held for an unfinished message (a client's pending input). */
size_t vb_json_stream_pending(const vb_json_stream_t *stream);

/* ---- QEMU's hash orders ---- */

/* QDict prints its members bucket by bucket (tdb_hash(key) % 512), the most recently inserted first
 * within a bucket. Fills order[0..n-1] with the indices of keys[] (given in insertion order) in that
 * printing order. */
void vb_json_qdict_order(const char *const *keys, size_t n, size_t *order);

/* QEMU reports the first unexpected argument in the order of a GLib string hash table filled from
 * the arguments' QDict. Returns the first key of the object args that is not in known[] (NULL
 * terminated), in that order, or NULL if every key is known. */
const char *vb_json_first_unexpected(yajl_val args, const char *const *known);

#endif
