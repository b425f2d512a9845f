/* See vb_buf.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_buf.h"

int vb_buf_reserve(vb_buf_t *b, size_t extra)
{
    size_t cap;
    char *p;

    if (b->len + extra + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int vb_buf_add(vb_buf_t *b, const void *data, size_t len)
{
    if (vb_buf_reserve(b, len) < 0)
        return -ENOMEM;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

void vb_buf_clear(vb_buf_t *b, size_t keep)
{
    b->len = 0;
    if (b->cap > keep) {
        vb_buf_free(b);
        return;
    }
    if (b->p != NULL)
        b->p[0] = '\0';
}

char *vb_buf_take(vb_buf_t *b)
{
    char *p = b->p != NULL ? b->p : strdup("");

    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void vb_buf_free(vb_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
