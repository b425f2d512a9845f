#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "agent/bal_limits.h"
#include "agent/bal_regex.h"

/* Bounds are read only this far: anything larger is far beyond the weight limit anyway, and the
 * products below stay far from overflowing. */
#define BOUND_CAP 1000000

/* What an anchor weighs: '^', '$' and glibc's '\b', '\B', '\<', '\>', '\`', '\''. They match nothing,
 * but each is a node with a condition on its context, and glibc copies the nodes around them for
 * each combination of conditions that meet: "(|(^$)()){0,32}" took 46 MiB, "{0,64}" 1 GiB; 128 '\b' in
 * a row 2.9 GiB. At most 32 fit the weight limit. */
#define ANCHOR_WEIGHT 8

/* A selector is quoted in messages up to this many bytes, so that a long one leaves room for why. */
#define QUOTE_MAX 96
#define QUOTE(selector) (int)(strlen(selector) > QUOTE_MAX ? QUOTE_MAX : strlen(selector)), (selector), \
                        (strlen(selector) > QUOTE_MAX ? "..." : "")

/* One level of grouping: the weight of what it holds so far, and of its last operand (what a
 * repetition that follows would repeat). */
typedef struct frame {
    uint64_t sum;
    uint64_t last;
} frame_t;

/* The index of the ']' that ends the bracket expression opened at i, or len when there is none (then
 * regcomp refuses the pattern). A ']' right after the '[' or '[^' is a literal, and so is anything
 * inside "[:...:]", "[.....]" and "[=...=]". */
static size_t bracket_end(const char *p, size_t len, size_t i)
{
    size_t j = i + 1;

    if (j < len && p[j] == '^')
        j++;
    if (j < len && p[j] == ']')
        j++;
    while (j < len && p[j] != ']') {
        if (p[j] == '[' && j + 1 < len && (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
            char delim = p[j + 1];
            size_t k = j + 2;

            while (k + 1 < len && !(p[k] == delim && p[k + 1] == ']'))
                k++;
            if (k + 1 < len) {
                j = k + 2;
                continue;
            }
        }
        j++;
    }
    return j;
}

/* The character at p[*j] as glibc's tokenizer reads it inside a bound, advancing *j past it: a
 * backslash and any character but 1 to 9 (a back reference) is that character, so a backslash and 0
 * is the digit 0 and a backslash and a comma is the comma ({1, backslash, 0, 0} is {100}, and
 * {1, backslash, comma, 100} is {1,100}); NUL for a back reference, and at the end (*j left there). */
static char bound_char(const char *p, size_t len, size_t *j)
{
    char c;

    if (*j >= len)
        return '\0';
    c = p[*j];
    if (c == '\\' && *j + 1 < len) {
        c = p[*j + 1];
        *j += 2;
        return c >= '1' && c <= '9' ? '\0' : c;
    }
    *j += 1;
    return c;
}

/* The digits of a bound, up to the first character that is not one (left at *j). */
static uint64_t read_bound(const char *p, size_t len, size_t *j, bool *any)
{
    uint64_t v = 0;

    *any = false;
    for (;;) {
        size_t next = *j;
        char digit = bound_char(p, len, &next);

        if (digit < '0' || digit > '9')
            break;
        if (v < BOUND_CAP)
            v = v * 10 + (uint64_t)(digit - '0');
        *j = next;
        *any = true;
    }
    return v < BOUND_CAP ? v : BOUND_CAP;
}

/* An interval "{m}", "{m,}", "{m,n}" or glibc's "{,n}" at i: true with the index of its '}' in *end and
 * what it multiplies its operand by in *mult; false when the '{' starts no interval. */
static bool read_interval(const char *p, size_t len, size_t i, size_t *end, uint64_t *mult)
{
    size_t j = i + 1;
    bool has_min, has_max = false, comma = false;
    uint64_t min = read_bound(p, len, &j, &has_min), max = 0;
    size_t next = j;

    if (bound_char(p, len, &next) == ',') {
        comma = true;
        j = next;
        max = read_bound(p, len, &j, &has_max);
    }
    /* Only a bare '}' ends it: to glibc an escaped one is a character, which makes the bound bad. */
    if (j >= len || p[j] != '}' || (!has_min && !comma))
        return false;
    if (has_max)
        *mult = max;
    else if (comma)
        *mult = min + 1; /* {m,}: m copies and a star */
    else
        *mult = min;
    if (*mult == 0)
        *mult = 1;
    *end = j;
    return true;
}

static int too_heavy(const char *selector, bal_error_t *err)
{
    return bal_error_set(err, -EINVAL,
                         "The domain selector '%.*s%s' would make more than %d copies of its parts once its "
                         "repetitions are multiplied out (a bound {m,n} copies what it repeats n times, and "
                         "nested bounds multiply), too many to compile; write smaller bounds.",
                         QUOTE(selector), BAL_LIMIT_REGEX_WEIGHT);
}

int bal_regex_check(const char *pattern, size_t len, const char *selector, bal_error_t *err)
{
    frame_t frames[BAL_LIMIT_REGEX_DEPTH + 1] = {{0, 0}};
    size_t depth = 0;
    bool after_repetition = false;

    for (size_t i = 0; i < len; i++) {
        frame_t *f = &frames[depth];
        uint64_t weight = 1, mult = 0;
        bool repetition = false;
        size_t end;

        switch (pattern[i]) {
        case '\\':
            if (i + 1 < len && pattern[i + 1] >= '1' && pattern[i + 1] <= '9')
                return bal_error_set(err, -EINVAL,
                                     "The domain selector '%.*s%s' holds a back-reference ('\\%c'), which POSIX "
                                     "extended regular expressions do not have and which can take seconds "
                                     "to match one name.",
                                     QUOTE(selector), pattern[i + 1]);
            i++; /* an escaped character, or one of glibc's \w \b ...: one atom */
            if (i < len && memchr("bB<>`'", pattern[i], 6) != NULL)
                weight = ANCHOR_WEIGHT;
            break;
        case '^':
        case '$':
            weight = ANCHOR_WEIGHT;
            break;
        case '[':
            i = bracket_end(pattern, len, i);
            break;
        case '(':
            if (depth == BAL_LIMIT_REGEX_DEPTH)
                return bal_error_set(err, -EINVAL, "The domain selector '%.*s%s' nests groups more than %d deep.",
                                     QUOTE(selector), BAL_LIMIT_REGEX_DEPTH);
            frames[++depth] = (frame_t){0, 0};
            after_repetition = false;
            continue;
        case ')':
            /* A group weighs what it holds, and at least 1: an empty one is still a node of the tree
             * that glibc copies for each repetition ("((){1,100}){1,100}" took it 3 s and 3.5 GiB).
             * Without an opening one, a literal, as glibc takes it. */
            if (depth > 0) {
                weight = frames[depth--].sum;
                if (weight == 0)
                    weight = 1;
            }
            f = &frames[depth];
            break;
        case '|':
            /* A new branch: its weight adds to the group's, and the alternation is a node itself
             * ("(|||...){1,100}" with 60 of them took 171 MiB). */
            f->sum += 1;
            f->last = 0;
            after_repetition = false;
            if (f->sum > BAL_LIMIT_REGEX_WEIGHT)
                return too_heavy(selector, err);
            continue;
        case '*':
        case '?':
            repetition = true;
            mult = 1;
            break;
        case '+':
            repetition = true;
            mult = 2; /* glibc compiles x+ as xx* */
            break;
        case '{':
            repetition = read_interval(pattern, len, i, &end, &mult);
            if (repetition)
                i = end;
            break;
        default:
            break;
        }
        if (repetition) {
            if (after_repetition)
                return bal_error_set(err, -EINVAL,
                                     "The domain selector '%.*s%s' stacks repetition operators (such as '++' or "
                                     "'*{2}'); write a single one.",
                                     QUOTE(selector));
            f->sum += f->last * (mult - 1);
            f->last *= mult;
        } else {
            f->sum += weight;
            f->last = weight;
        }
        after_repetition = repetition;
        /* What a group holds only grows once multiplied: refused as soon as any part is too heavy. */
        if (f->sum > BAL_LIMIT_REGEX_WEIGHT)
            return too_heavy(selector, err);
    }
    /* Groups left open (regcomp will refuse them, but only after parsing what they hold). */
    while (depth > 0) {
        frames[depth - 1].sum += frames[depth].sum;
        depth--;
    }
    return frames[0].sum > BAL_LIMIT_REGEX_WEIGHT ? too_heavy(selector, err) : 0;
}
