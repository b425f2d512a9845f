/* Text that comes from outside (QEMU's error class and desc, a socket's file name, a domain's name)
 * made safe for a log line, a terminal, a notification, a collectd identifier or JSON. The one
 * cleaning that the collectd plugin and balloonctl pass such text through before it leaves them:
 * a newline cannot forge a log line, an escape sequence cannot reach a terminal, and invalid UTF-8
 * cannot break a JSON document or a Prometheus scrape. Pure functions: thread-safe, no I/O. */
#ifndef BAL_TEXT_H
#define BAL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* U+FFFD REPLACEMENT CHARACTER, in UTF-8: what a byte that is not valid UTF-8 becomes. */
#define BAL_TEXT_REPLACEMENT "\xef\xbf\xbd"

/* Flags. Without BAL_TEXT_KEEP_CONTROLS, control characters become '?'; with it they are kept, for a
 * JSON generator, which escapes them itself ("\n", "\u001b"). */
#define BAL_TEXT_KEEP_CONTROLS 1u

/* Copies src into dst (size > 0 bytes), always NUL-terminated and valid UTF-8:
 *  - each byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
 *    surrogates, nothing above U+10FFFF, no truncated sequence) becomes U+FFFD;
 *  - each control character (U+0001..U+001F, U+007F, the C1 controls U+0080..U+009F, and the line
 *    and paragraph separators U+2028, U+2029) becomes '?', unless flags holds BAL_TEXT_KEEP_CONTROLS;
 *  - cut at a character boundary when it does not fit, never inside a sequence.
 * Valid text without control characters is copied unchanged. src NULL is "". Returns strlen(dst). */
size_t bal_text_clean(char *dst, size_t size, const char *src, unsigned flags);

/* The same into a new string (the caller frees it), never cut. NULL only when out of memory. */
char *bal_text_dup_clean(const char *src, unsigned flags);

/* True when bal_text_clean(src, flags) would change nothing. */
bool bal_text_is_clean(const char *src, unsigned flags);

#endif
