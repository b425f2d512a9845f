#include "config.h"

#include <stdio.h>

#include "agent/bal_names.h"

void bal_names_add(bal_names_t *n, const char *name)
{
    if (n->count < BAL_NAMES_SHOWN)
        n->names[n->count] = name;
    n->count++;
}

void bal_names_format(const bal_names_t *n, char *buf, size_t len)
{
    size_t used = 0, shown = n->count < BAL_NAMES_SHOWN ? n->count : BAL_NAMES_SHOWN;
    int w;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < shown && used < len; i++) {
        w = snprintf(buf + used, len - used, "%s'%s'", i == 0 ? " (" : ", ", n->names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (shown > 0 && used < len)
        snprintf(buf + used, len - used, n->count > shown ? " and %zu more)" : ")", n->count - shown);
}
