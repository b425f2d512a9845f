/* Modified UTF-8 after QEMU 7.2's util/unicode.c; the code is ours. See vb_mutf8.h. */
#include "config.h"

#include <stdbool.h>

#include "virtio/vb_mutf8.h"

static bool valid_codepoint(int64_t cp)
{
    if (cp < 0 || cp > 0x10FFFF)
        return false;
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
        return false; /* noncharacter */
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return false; /* surrogate */
    return true;
}

int64_t vb_mutf8_decode(const unsigned char *s, size_t n, size_t *used)
{
    static const int64_t min_cp[5] = {0x80, 0x800, 0x10000, 0x200000, 0x4000000};
    unsigned byte, mask, len;
    size_t p = 0;
    int64_t cp;

    if (n == 0 || s[0] == 0) {
        *used = 0;
        return -1;
    }
    byte = s[p++];
    if (byte < 0x80) {
        cp = byte;
    } else if (byte >= 0xFE || (byte & 0x40) == 0) {
        cp = -1; /* impossible byte, or a continuation byte out of place */
    } else {
        len = 0;
        for (mask = 0x80; byte & mask; mask >>= 1)
            len++;
        cp = byte & (mask - 1);
        for (unsigned i = 1; i < len; i++) {
            unsigned next = i < n ? s[p] : 0;
            if ((next & 0xC0) != 0x80) {
                cp = -1; /* continuation byte missing */
                goto out;
            }
            p++;
            cp = cp << 6 | (next & 0x3F);
        }
        if (!valid_codepoint(cp))
            cp = -1;
        else if (cp < min_cp[len - 2] && !(cp == 0 && len == 2))
            cp = -1; /* overlong, other than C0 80 */
    }
out:
    *used = p;
    return cp;
}

int vb_mutf8_encode(char *buf, int64_t cp)
{
    if (!valid_codepoint(cp))
        return -1;
    if (cp > 0 && cp <= 0x7F) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp <= 0x7FF) {
        buf[0] = (char)(0xC0 | cp >> 6);
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp <= 0xFFFF) {
        buf[0] = (char)(0xE0 | cp >> 12);
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | cp >> 18);
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
