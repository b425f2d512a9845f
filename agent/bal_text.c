#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_text.h"

/* The length of the well-formed UTF-8 sequence at s (1 to 4) with its code point in *cp, or 0 when
 * the byte at s does not start one. The ranges are RFC 3629's table of well-formed sequences. */
static size_t utf8_sequence(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0; /* a continuation byte, an overlong lead (0xc0, 0xc1) or beyond U+10FFFF */
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* C0, DEL, C1, and the two characters Unicode makes line breaks of their own (U+2028 LINE
 * SEPARATOR, U+2029 PARAGRAPH SEPARATOR), which a web page or a JSON reader may start a line at. */
static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029;
}

/* What the character at s becomes: its bytes (out points into s) or a replacement. Returns how many
 * bytes of s it takes; *out_len is the length of *out. */
static size_t next_piece(const char *s, unsigned flags, const char **out, size_t *out_len)
{
    uint32_t cp;
    size_t len = utf8_sequence((const unsigned char *)s, &cp);

    if (len == 0) {
        *out = BAL_TEXT_REPLACEMENT;
        *out_len = sizeof(BAL_TEXT_REPLACEMENT) - 1;
        return 1;
    }
    if (is_control(cp) && (flags & BAL_TEXT_KEEP_CONTROLS) == 0) {
        *out = "?";
        *out_len = 1;
        return len;
    }
    *out = s;
    *out_len = len;
    return len;
}

size_t bal_text_clean(char *dst, size_t size, const char *src, unsigned flags)
{
    size_t used = 0;

    if (size == 0)
        return 0;
    if (src == NULL)
        src = "";
    while (*src != '\0') {
        const char *piece;
        size_t piece_len, taken = next_piece(src, flags, &piece, &piece_len);

        if (used + piece_len >= size)
            break; /* a whole character or nothing */
        memcpy(dst + used, piece, piece_len);
        used += piece_len;
        src += taken;
    }
    dst[used] = '\0';
    return used;
}

char *bal_text_dup_clean(const char *src, unsigned flags)
{
    /* Each byte becomes at most three (U+FFFD). */
    size_t size = 3 * strlen(src != NULL ? src : "") + 1;
    char *dst = malloc(size);

    if (dst != NULL)
        bal_text_clean(dst, size, src, flags);
    return dst;
}

bool bal_text_is_clean(const char *src, unsigned flags)
{
    if (src == NULL)
        return true;
    while (*src != '\0') {
        const char *piece;
        size_t piece_len, taken = next_piece(src, flags, &piece, &piece_len);

        if (piece != src)
            return false;
        src += taken;
    }
    return true;
}
