/* Modified UTF-8, as QEMU reads and writes strings (util/unicode.c, json-parser.c): UTF-8 in which
 * U+0000 is the two bytes C0 80 (as in Java), so that a decoded string never holds a NUL byte, and in
 * which surrogates, noncharacters and overlong forms (other than C0 80) are invalid.
 *
 * Pure functions, no allocation. */
#ifndef VB_MUTF8_H
#define VB_MUTF8_H

#include <stddef.h>
#include <stdint.h>

/* The longest sequence vb_mutf8_decode reads (QEMU's decoder accepts the old 5- and 6-byte forms
 * only to reject them as invalid code points). */
#define VB_MUTF8_MAX_SEQ 6

/* Decodes the character at s, reading at most n bytes and stopping at a NUL byte. Returns its code
 * point, or -1 for an invalid sequence; *used is the number of bytes consumed either way (0 when s
 * starts with NUL or n is 0). */
int64_t vb_mutf8_decode(const unsigned char *s, size_t n, size_t *used);

/* Encodes cp into buf (room for 4 bytes; U+0000 as C0 80). Returns the length, or -1 for a code
 * point that is not a valid character. */
int vb_mutf8_encode(char *buf, int64_t cp);

#endif
