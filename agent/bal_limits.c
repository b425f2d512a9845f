#include "config.h"

#include <stddef.h>

#include "agent/bal_limits.h"

bool bal_limits_parse_number(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (text == NULL || text[0] == '\0')
        return false;
    /* By hand rather than with strtoull, which skips leading blanks and takes a sign. */
    for (const char *p = text; *p != '\0'; p++) {
        unsigned digit;

        if (*p < '0' || *p > '9')
            return false;
        digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}
