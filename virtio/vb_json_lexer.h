/* QEMU 7.2's JSON lexer (qobject/json-lexer.c): a state machine fed one byte at a time that cuts the
 * input into tokens, accepts QEMU's extensions (single-quoted strings, the \' escape) and, after a
 * lexical error, skips to the next structural or control character as QEMU does.
 *
 * The streamer (vb_json_stream.h) owns a lexer; its tokens go to the parser (vb_json_parser.h). Not
 * thread-safe. */
#ifndef VB_JSON_LEXER_H
#define VB_JSON_LEXER_H

#include <stdbool.h>
#include <stddef.h>

#include "virtio/vb_buf.h"

typedef enum vb_json_token_type {
    VB_JSON_LCURLY = 100,
    VB_JSON_RCURLY,
    VB_JSON_LSQUARE,
    VB_JSON_RSQUARE,
    VB_JSON_COLON,
    VB_JSON_COMMA,
    VB_JSON_INTEGER,
    VB_JSON_FLOAT,
    VB_JSON_KEYWORD,
    VB_JSON_STRING,
    VB_JSON_ERROR, /* a lexical error: the bytes read so far are the stray text */
} vb_json_token_type_t;

typedef struct vb_json_lexer {
    int state;
    bool token_done; /* the last step ended a token: clear it on the next */
    vb_buf_t token;  /* the token being read, NUL-terminated */
} vb_json_lexer_t;

/* A zeroed lexer is not ready: call this first. vb_json_lexer_fini releases its buffer. */
void vb_json_lexer_init(vb_json_lexer_t *lexer);
void vb_json_lexer_fini(vb_json_lexer_t *lexer);

/* Steps the lexer over ch. Returns 0 while a token is being read (or skipped), a token type when one
 * is complete (its text in lexer->token until the next step), or -ENOMEM. *consumed tells whether ch
 * was read; if not (it ended the token before it), step again with the same ch. */
int vb_json_lexer_step(vb_json_lexer_t *lexer, unsigned char ch, bool *consumed);

/* Drops the token being read and starts afresh (after a token-size error or ENOMEM). */
void vb_json_lexer_reset(vb_json_lexer_t *lexer);

/* Bytes held for the token being read. */
size_t vb_json_lexer_pending(const vb_json_lexer_t *lexer);

#endif
