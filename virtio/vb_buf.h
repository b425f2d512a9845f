/* A growable byte buffer, always NUL-terminated, for the JSON reader's tokens and strings and for the
 * printed replies. A zeroed vb_buf_t is an empty buffer (p may be NULL until the first add); the
 * buffer owns p. Not thread-safe. */
#ifndef VB_BUF_H
#define VB_BUF_H

#include <errno.h>
#include <stddef.h>

typedef struct vb_buf {
    char *p;
    size_t len, cap;
} vb_buf_t;

/* Grows the buffer so that extra more bytes and the NUL fit. Returns 0 or -ENOMEM. */
int vb_buf_reserve(vb_buf_t *buf, size_t extra);
/* Appends len bytes and keeps p[len] == '\0'. Returns 0 or -ENOMEM (the buffer is unchanged). */
int vb_buf_add(vb_buf_t *buf, const void *data, size_t len);

static inline int vb_buf_add_byte(vb_buf_t *buf, char c)
{
    if (buf->len + 2 > buf->cap && vb_buf_reserve(buf, 1) < 0)
        return -ENOMEM;
    buf->p[buf->len++] = c;
    buf->p[buf->len] = '\0';
    return 0;
}

/* Empties the buffer, keeping its memory unless it is larger than keep bytes. */
void vb_buf_clear(vb_buf_t *buf, size_t keep);
/* Hands the bytes over: a malloc'ed NUL-terminated string the caller frees ("" for an empty buffer),
 * or NULL on ENOMEM. The buffer is empty afterwards either way. */
char *vb_buf_take(vb_buf_t *buf);
/* Releases the memory; the buffer is empty afterwards. NULL is a no-op. */
void vb_buf_free(vb_buf_t *buf);

#endif
