/* QEMU's JSON lexer, after qobject/json-lexer.c in QEMU 7.2; the code is ours. See vb_json_lexer.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "virtio/vb_json_lexer.h"

/* A token this large is dropped, its buffer not kept for the next one. */
#define TOKEN_KEEP 65536

/* Lexer states (json-lexer.c). 0 is the error; the token types (100 and up) end a token. */
enum {
    IN_RECOVERY = 1,
    IN_DQ_STRING_ESCAPE,
    IN_DQ_STRING,
    IN_SQ_STRING_ESCAPE,
    IN_SQ_STRING,
    IN_ZERO,
    IN_EXP_DIGITS,
    IN_EXP_SIGN,
    IN_EXP_E,
    IN_MANTISSA,
    IN_MANTISSA_DIGITS,
    IN_DIGITS,
    IN_SIGN,
    IN_KEYWORD,
    IN_START,
};

/* The lexer's transition for ch in state: the next state or token type, and whether ch is only
 * looked at (left for the next state) rather than consumed. 0 is the error. */
static int next_state(int state, unsigned char ch, bool *lookahead)
{
    bool digit = ch >= '0' && ch <= '9';

    *lookahead = false;
    switch (state) {
    case IN_RECOVERY:
        /* skip to a structural character, a control character other than tab, or 0xFE/0xFF */
        if ((ch < 0x20 && ch != '\t') || ch >= 0xFE || strchr("[]{}:,", ch) != NULL) {
            *lookahead = true;
            return IN_START;
        }
        return IN_RECOVERY;
    case IN_DQ_STRING_ESCAPE:
        return ch >= 0x20 && ch <= 0xFD ? IN_DQ_STRING : 0;
    case IN_SQ_STRING_ESCAPE:
        return ch >= 0x20 && ch <= 0xFD ? IN_SQ_STRING : 0;
    case IN_DQ_STRING:
    case IN_SQ_STRING: {
        bool dq = state == IN_DQ_STRING;
        if (ch == (dq ? '"' : '\''))
            return VB_JSON_STRING;
        if (ch == '\\')
            return dq ? IN_DQ_STRING_ESCAPE : IN_SQ_STRING_ESCAPE;
        return ch >= 0x20 && ch <= 0xFD ? state : 0;
    }
    case IN_ZERO:
        if (digit)
            return 0;
        if (ch == '.')
            return IN_MANTISSA;
        *lookahead = true;
        return VB_JSON_INTEGER;
    case IN_EXP_DIGITS:
        if (digit)
            return IN_EXP_DIGITS;
        *lookahead = true;
        return VB_JSON_FLOAT;
    case IN_EXP_SIGN:
        return digit ? IN_EXP_DIGITS : 0;
    case IN_EXP_E:
        if (ch == '-' || ch == '+')
            return IN_EXP_SIGN;
        return digit ? IN_EXP_DIGITS : 0;
    case IN_MANTISSA_DIGITS:
        if (digit)
            return IN_MANTISSA_DIGITS;
        if (ch == 'e' || ch == 'E')
            return IN_EXP_E;
        *lookahead = true;
        return VB_JSON_FLOAT;
    case IN_MANTISSA:
        return digit ? IN_MANTISSA_DIGITS : 0;
    case IN_DIGITS:
        if (digit)
            return IN_DIGITS;
        if (ch == 'e' || ch == 'E')
            return IN_EXP_E;
        if (ch == '.')
            return IN_MANTISSA;
        *lookahead = true;
        return VB_JSON_INTEGER;
    case IN_SIGN:
        if (ch == '0')
            return IN_ZERO;
        return ch >= '1' && ch <= '9' ? IN_DIGITS : 0;
    case IN_KEYWORD:
        if (ch >= 'a' && ch <= 'z')
            return IN_KEYWORD;
        *lookahead = true;
        return VB_JSON_KEYWORD;
    default: /* IN_START */
        switch (ch) {
        case '"':
            return IN_DQ_STRING;
        case '\'':
            return IN_SQ_STRING;
        case '0':
            return IN_ZERO;
        case '-':
            return IN_SIGN;
        case '{':
            return VB_JSON_LCURLY;
        case '}':
            return VB_JSON_RCURLY;
        case '[':
            return VB_JSON_LSQUARE;
        case ']':
            return VB_JSON_RSQUARE;
        case ',':
            return VB_JSON_COMMA;
        case ':':
            return VB_JSON_COLON;
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            return IN_START;
        default:
            if (ch >= '1' && ch <= '9')
                return IN_DIGITS;
            if (ch >= 'a' && ch <= 'z')
                return IN_KEYWORD;
            return 0;
        }
    }
}

void vb_json_lexer_init(vb_json_lexer_t *lx)
{
    memset(lx, 0, sizeof(*lx));
    lx->state = IN_START;
}

void vb_json_lexer_fini(vb_json_lexer_t *lx)
{
    vb_buf_free(&lx->token);
}

int vb_json_lexer_step(vb_json_lexer_t *lx, unsigned char ch, bool *consumed)
{
    bool lookahead;
    int next;

    if (lx->token_done) {
        vb_buf_clear(&lx->token, TOKEN_KEEP);
        lx->token_done = false;
    }
    next = next_state(lx->state, ch, &lookahead);
    *consumed = !lookahead;
    if (*consumed && vb_buf_add_byte(&lx->token, (char)ch) < 0)
        return -ENOMEM;
    if (next >= VB_JSON_LCURLY) {
        lx->state = IN_START;
        lx->token_done = true;
        return next;
    }
    if (next == 0) {
        lx->state = IN_RECOVERY;
        lx->token_done = true;
        return VB_JSON_ERROR;
    }
    if (next == IN_START || next == IN_RECOVERY)
        vb_buf_clear(&lx->token, TOKEN_KEEP); /* whitespace, or bytes skipped after an error */
    lx->state = next;
    return 0;
}

void vb_json_lexer_reset(vb_json_lexer_t *lx)
{
    vb_buf_clear(&lx->token, TOKEN_KEEP);
    lx->token_done = false;
    lx->state = IN_START;
}

size_t vb_json_lexer_pending(const vb_json_lexer_t *lx)
{
    return lx->token_done ? 0 : lx->token.len;
}
