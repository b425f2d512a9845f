/* QEMU's JSON streamer, after qobject/json-streamer.c in QEMU 7.2; the code is ours. See
 * vb_json_stream.h. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_buf.h"
#include "virtio/vb_json_lexer.h"
#include "virtio/vb_json_parser.h"
#include "virtio/vb_json_stream.h"

/* QEMU's limits on one message (json-streamer.c). */
#define MAX_TOKEN_SIZE (64u << 20)
#define MAX_TOKEN_COUNT (2u << 20)
#define MAX_NESTING 1024

#define OOM_ERROR "JSON parse error, out of memory"

struct vb_json_stream {
    vb_json_emit_fn emit;
    void *opaque;
    vb_json_lexer_t lexer;
    vb_buf_t text;             /* the message's tokens, each NUL-terminated */
    vb_json_token_t *tokens;
    size_t ntokens, cap;
    long brace, bracket;
    bool stop;
    bool oom;
};

vb_json_stream_t *vb_json_stream_new(vb_json_emit_fn emit, void *opaque)
{
    vb_json_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->emit = emit;
    s->opaque = opaque;
    vb_json_lexer_init(&s->lexer);
    return s;
}

void vb_json_stream_free(vb_json_stream_t *s)
{
    if (s == NULL)
        return;
    vb_json_lexer_fini(&s->lexer);
    vb_buf_free(&s->text);
    free(s->tokens);
    free(s);
}

size_t vb_json_stream_pending(const vb_json_stream_t *s)
{
    return vb_json_lexer_pending(&s->lexer) + s->text.len;
}

static void reset_message(vb_json_stream_t *s)
{
    s->brace = s->bracket = 0;
    s->ntokens = 0;
    s->text.len = 0;
}

/* The message ends, as value or error: the callee owns value. */
static void emit(vb_json_stream_t *s, vb_qobj_t *value, const char *error)
{
    reset_message(s);
    if (s->emit(s->opaque, value, error) != 0)
        s->stop = true;
}

static void emit_oom(vb_json_stream_t *s)
{
    s->oom = true;
    emit(s, NULL, OOM_ERROR);
}

/* A whole message is buffered: parse it and emit the value or QEMU's error. */
static void parse_message(vb_json_stream_t *s)
{
    vb_qobj_t *value = NULL;
    char *error = NULL;
    int rc = vb_json_parse(s->tokens, s->ntokens, s->text.p, &value, &error);

    if (rc == -ENOMEM)
        emit_oom(s);
    else
        emit(s, value, error);
    free(error);
}

/* QEMU's stray-token error: the token's bytes quoted. */
static void emit_stray(vb_json_stream_t *s, const char *token)
{
    char *msg = NULL;

    if (asprintf(&msg, "JSON parse error, stray '%s'", token) < 0) {
        msg = NULL;
        s->oom = true;
    }
    emit(s, NULL, msg != NULL ? msg : "JSON parse error");
    free(msg);
}

/* Appends the lexer's token to the message. Returns 0, or -ENOMEM. */
static int push_token(vb_json_stream_t *s, vb_json_token_type_t type, const vb_buf_t *tok)
{
    vb_json_token_t *t;

    if (s->ntokens == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        vb_json_token_t *tokens = realloc(s->tokens, cap * sizeof(*tokens));
        if (tokens == NULL)
            return -ENOMEM;
        s->tokens = tokens;
        s->cap = cap;
    }
    t = &s->tokens[s->ntokens];
    t->type = type;
    t->off = s->text.len;
    t->len = tok->len;
    /* the token and its NUL */
    if (vb_buf_add(&s->text, tok->p != NULL ? tok->p : "", tok->len) < 0 || vb_buf_add(&s->text, "", 1) < 0)
        return -ENOMEM;
    s->ntokens++;
    return 0;
}

/* json-streamer.c: one token. */
static void process_token(vb_json_stream_t *s, vb_json_token_type_t type)
{
    const vb_buf_t *tok = &s->lexer.token;

    switch (type) {
    case VB_JSON_LCURLY:
        s->brace++;
        break;
    case VB_JSON_RCURLY:
        s->brace--;
        break;
    case VB_JSON_LSQUARE:
        s->bracket++;
        break;
    case VB_JSON_RSQUARE:
        s->bracket--;
        break;
    case VB_JSON_ERROR:
        emit_stray(s, tok->p != NULL ? tok->p : "");
        return;
    default:
        break;
    }
    if (s->text.len + tok->len + 1 > MAX_TOKEN_SIZE) {
        emit(s, NULL, "JSON token size limit exceeded");
        return;
    }
    if (s->ntokens + 1 > MAX_TOKEN_COUNT) {
        emit(s, NULL, "JSON token count limit exceeded");
        return;
    }
    if (s->bracket + s->brace > MAX_NESTING) {
        emit(s, NULL, "JSON nesting depth limit exceeded");
        return;
    }
    if (push_token(s, type, tok) < 0) {
        emit_oom(s);
        return;
    }
    if ((s->brace > 0 || s->bracket > 0) && s->brace >= 0 && s->bracket >= 0)
        return;
    parse_message(s);
}

static void feed_char(vb_json_stream_t *s, unsigned char ch)
{
    bool consumed = false;

    while (!consumed && !s->stop) {
        int type = vb_json_lexer_step(&s->lexer, ch, &consumed);
        if (type < 0) {
            s->oom = true;
            return;
        }
        if (type > 0)
            process_token(s, (vb_json_token_type_t)type);
    }
    if (vb_json_lexer_pending(&s->lexer) > MAX_TOKEN_SIZE) {
        emit(s, NULL, "JSON token size limit exceeded");
        vb_json_lexer_reset(&s->lexer);
    }
}

int vb_json_stream_feed(vb_json_stream_t *s, const char *buf, size_t len)
{
    s->stop = false;
    for (size_t i = 0; i < len && !s->stop && !s->oom; i++)
        feed_char(s, (unsigned char)buf[i]);
    if (s->oom) {
        s->oom = false;
        reset_message(s);
        vb_json_lexer_reset(&s->lexer);
        return -ENOMEM;
    }
    return s->stop ? 1 : 0;
}
