/* Values printed as QEMU 7.2's QMP monitor prints them (qobject/json-writer.c, compact mode): ", "
 * and ": " as separators, object members in QDict's order (vb_order.h), strings with '"', '\\' and
 * \b \f \n \r \t escaped and every other character outside printable ASCII as \uXXXX (upper-case hex;
 * a surrogate pair beyond the BMP; U+FFFD for a byte sequence that is not modified UTF-8), integers
 * in decimal, doubles with "%.17g" (so inf and nan too, as QEMU does).
 *
 * Pure: no I/O, no globals. */
#ifndef VB_JSON_PRINT_H
#define VB_JSON_PRINT_H

#include "virtio/vb_buf.h"
#include "virtio/vb_qobj.h"

/* Appends obj's text, without a line ending, to out. Returns 0 or -ENOMEM (out then holds part of
 * the text: cut it back to its old length). Recurses once per level of nesting. */
int vb_json_print(const vb_qobj_t *obj, vb_buf_t *out);

#endif
