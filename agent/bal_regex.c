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

/* How far a closure over the edges that match nothing reaches: the nodes it takes in, and how many
 * of them are anchors. */
typedef struct reach {
    uint64_t nodes;
    uint64_t anchors;
} reach_t;

/* One operand, as a repetition that follows it sees it. An operand that can match the empty string
 * is passed through: pass is what a closure from its start, or from inside it, takes in on the way
 * to its end. One that cannot is entered: lead is what a closure takes in from its start up to its
 * first characters, trail what one takes in from after its last characters to its end. */
typedef struct part {
    uint64_t weight; /* its copies once multiplied out; 0: no operand */
    bool empty;
    reach_t pass, lead, trail;
} part_t;

/* One level of grouping: the weight of what it holds so far; its last operand, which a repetition
 * may still change; the branch being read, without that operand (empty: every part so far can match
 * the empty string, and lead is then what they all pass); and what the group's earlier branches
 * reach from its start (lead) and to its end (trail), with whether one of them can be empty. */
typedef struct frame {
    uint64_t sum;
    part_t last;
    bool branch_empty;
    reach_t branch_lead, branch_trail;
    bool group_empty;
    reach_t group_lead, group_trail;
} frame_t;

/* What a repetition operator does to its operand. */
typedef struct repeat {
    uint64_t copies; /* what it multiplies the operand's weight by */
    bool optional;   /* it may match no copy at all */
    bool loops;      /* no upper bound: glibc compiles a star, an edge back to the operand's start */
} repeat_t;

static const reach_t REACH_NONE = {0, 0};

/* An anchor: one node in a closure, but one whose condition every node the closure reaches is
 * copied for. */
static const part_t ANCHOR_PART = {ANCHOR_WEIGHT, true, {1, 1}, {0, 0}, {0, 0}};

static reach_t reach_join(reach_t a, reach_t b)
{
    return (reach_t){a.nodes + b.nodes, a.anchors + b.anchors};
}

static void frame_start(frame_t *f)
{
    *f = (frame_t){0};
    f->branch_empty = true;
}

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
 * what it does in *rep; false when the '{' starts no interval. */
static bool read_interval(const char *p, size_t len, size_t i, size_t *end, repeat_t *rep)
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
        *rep = (repeat_t){max, min == 0 || max == 0, false};
    else if (comma)
        *rep = (repeat_t){min + 1, min == 0, true}; /* {m,}: m copies and a star */
    else
        *rep = (repeat_t){min, min == 0, false};
    if (rep->copies == 0)
        rep->copies = 1;
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

/* glibc computes the closure of each node over the edges that match nothing, and stores none that
 * meets a node still being computed: a loop around a part that can match the empty string makes
 * such a cycle, and the closures inside it are computed again along every path through it, which
 * nested optional parts multiply ("((){1,100}){1,}" took 2.5 s at weight 201, "(((a?){1,2}){1,40})*"
 * more than a minute at weight 80). */
static int loops_on_empty(const char *selector, bal_error_t *err)
{
    return bal_error_set(err, -EINVAL,
                         "The domain selector '%.*s%s' repeats without bound ('*', '+' or '{m,}') a part that "
                         "can match the empty string (such as '(a*)*' or '(x|)+'), which glibc takes time "
                         "exponential in the part's size to compile; write the part so that it matches at "
                         "least one character.",
                         QUOTE(selector));
}

/* glibc gives each node next to an anchor the anchor's condition, copying every node the anchor's
 * closure takes in once for each condition that meets there, and their closures with them: parts
 * that can match the empty string next to anchors make those closures long and their copies many
 * ("\b(a?){1,120}" took 0.3 s and 22 MiB, "\b(a?){1,120}(a?){1,120}" 0.9 GiB, "a\B(\b()){1,27}"
 * 611 MiB, all under the weight limit). A closure is refused when its nodes times its anchors pass
 * the limit. */
static int check_reach(reach_t reach, const char *selector, bal_error_t *err)
{
    if (reach.anchors * reach.nodes <= BAL_LIMIT_REGEX_ANCHOR_REACH)
        return 0;
    return bal_error_set(err, -EINVAL,
                         "The domain selector '%.*s%s' puts anchors ('^', '$', '\\b'...) next to too many parts "
                         "that can match the empty string (such as '\\b(a?){1,50}', or '(()\\b){1,10}'): glibc "
                         "copies all that an anchor reaches without matching a character for each of its "
                         "conditions, %d nodes times the anchors at most here; write fewer optional parts "
                         "next to the anchors.",
                         QUOTE(selector), BAL_LIMIT_REGEX_ANCHOR_REACH);
}

/* Adds the frame's last operand to its branch: an empty one lengthens what the branch's end (or, in
 * an empty branch, its start) reaches; another ends that reach with its lead. */
static int commit_last(frame_t *f, const char *selector, bal_error_t *err)
{
    const part_t *last = &f->last;
    int rc;

    if (last->weight == 0)
        return 0;
    if (last->empty) {
        if (f->branch_empty)
            f->branch_lead = reach_join(f->branch_lead, last->pass);
        else
            f->branch_trail = reach_join(f->branch_trail, last->pass);
    } else if (f->branch_empty) {
        f->branch_lead = reach_join(f->branch_lead, last->lead);
        f->branch_trail = last->trail;
        f->branch_empty = false;
    } else {
        rc = check_reach(reach_join(f->branch_trail, last->lead), selector, err);
        if (rc < 0)
            return rc;
        f->branch_trail = last->trail;
    }
    f->last = (part_t){0};
    rc = check_reach(f->branch_lead, selector, err);
    return rc < 0 ? rc : check_reach(f->branch_trail, selector, err);
}

/* Ends the branch being read ('|', ')' or the end of the pattern) and starts the next; sep is the
 * weight of the alternation node between them, which a closure from the group's start also takes in. */
static int end_branch(frame_t *f, uint64_t sep, const char *selector, bal_error_t *err)
{
    int rc = commit_last(f, selector, err);

    if (rc < 0)
        return rc;
    f->group_empty = f->group_empty || f->branch_empty;
    f->group_lead = reach_join(f->group_lead, f->branch_lead);
    f->group_lead.nodes += sep;
    f->group_trail = reach_join(f->group_trail, f->branch_trail);
    f->branch_empty = true;
    f->branch_lead = REACH_NONE;
    f->branch_trail = REACH_NONE;
    rc = check_reach(f->group_lead, selector, err);
    return rc < 0 ? rc : check_reach(f->group_trail, selector, err);
}

/* The group whose branches f has ended, as an operand. A group weighs what it holds, and at least
 * 1: an empty one is still a node of the tree that glibc copies for each repetition
 * ("((){1,100}){1,100}" took it 3 s and 3.5 GiB). */
static part_t group_part(const frame_t *f)
{
    part_t group = {f->sum > 0 ? f->sum : 1, f->group_empty, REACH_NONE, f->group_lead, f->group_trail};

    if (group.empty) {
        group.pass = reach_join(f->group_lead, f->group_trail);
        if (group.pass.nodes == 0)
            group.pass.nodes = 1;
    }
    return group;
}

/* Applies rep to the operand last: x{m,n} is compiled as m copies of x and n - m optional ones, each
 * nested in the one before, and a closure from inside a copy reaches the next copy's start and past
 * the last. What such a closure reaches between two copies is left in *between. */
static void repeat_part(part_t *last, repeat_t rep, reach_t *between)
{
    *between = REACH_NONE;
    if (last->empty) {
        /* bounded (loops_on_empty): the copies, each with its optional node, one after the other */
        last->pass.nodes = rep.copies * (last->pass.nodes + 1);
        last->pass.anchors *= rep.copies;
    } else {
        if (rep.copies > 1 || rep.loops) {
            *between = reach_join(reach_join(last->trail, (reach_t){1, 0}), last->lead);
            last->trail = *between;
        }
        if (rep.optional) {
            /* a closure from the start passes by or enters the first copy; one from inside the copies
             * reaches the end */
            last->pass = reach_join(reach_join((reach_t){1, 0}, last->lead), last->trail);
            last->empty = true;
        }
    }
    last->weight *= rep.copies;
}

int bal_regex_check(const char *pattern, size_t len, const char *selector, bal_error_t *err)
{
    frame_t frames[BAL_LIMIT_REGEX_DEPTH + 1];
    size_t depth = 0;
    bool after_repetition = false;
    int rc;

    frame_start(&frames[0]);
    for (size_t i = 0; i < len; i++) {
        frame_t *f = &frames[depth];
        part_t operand = {1, false, REACH_NONE, {1, 0}, REACH_NONE}; /* a character */
        repeat_t rep = {1, false, false};
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
                operand = ANCHOR_PART;
            break;
        case '^':
        case '$':
            operand = ANCHOR_PART;
            break;
        case '[':
            i = bracket_end(pattern, len, i);
            break;
        case '(':
            if (depth == BAL_LIMIT_REGEX_DEPTH)
                return bal_error_set(err, -EINVAL, "The domain selector '%.*s%s' nests groups more than %d deep.",
                                     QUOTE(selector), BAL_LIMIT_REGEX_DEPTH);
            frame_start(&frames[++depth]);
            after_repetition = false;
            continue;
        case ')':
            /* Without an opening one, a literal, as glibc takes it. */
            if (depth > 0) {
                rc = end_branch(f, 0, selector, err);
                if (rc < 0)
                    return rc;
                operand = group_part(f);
                f = &frames[--depth];
            }
            break;
        case '|':
            /* A new branch: its weight adds to the group's, and the alternation is a node itself
             * ("(|||...){1,100}" with 60 of them took 171 MiB). */
            rc = end_branch(f, 1, selector, err);
            if (rc < 0)
                return rc;
            f->sum += 1;
            after_repetition = false;
            if (f->sum > BAL_LIMIT_REGEX_WEIGHT)
                return too_heavy(selector, err);
            continue;
        case '*':
            repetition = true;
            rep = (repeat_t){1, true, true};
            break;
        case '?':
            repetition = true;
            rep = (repeat_t){1, true, false};
            break;
        case '+':
            repetition = true;
            rep = (repeat_t){2, false, true}; /* glibc compiles x+ as xx* */
            break;
        case '{':
            repetition = read_interval(pattern, len, i, &end, &rep);
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
            /* With no operand (at the start, after '(' or '|') regcomp refuses it itself. */
            if (f->last.weight > 0) {
                uint64_t before = f->last.weight;
                reach_t between;

                if (rep.loops && f->last.empty)
                    return loops_on_empty(selector, err);
                repeat_part(&f->last, rep, &between);
                f->sum += f->last.weight - before;
                if (f->sum > BAL_LIMIT_REGEX_WEIGHT)
                    return too_heavy(selector, err);
                rc = check_reach(between, selector, err);
                if (rc == 0 && f->last.empty)
                    rc = check_reach(f->last.pass, selector, err);
                if (rc < 0)
                    return rc;
            }
        } else {
            rc = commit_last(f, selector, err);
            if (rc < 0)
                return rc;
            f->last = operand;
            f->sum += operand.weight;
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
    if (frames[0].sum > BAL_LIMIT_REGEX_WEIGHT)
        return too_heavy(selector, err);
    return end_branch(&frames[0], 0, selector, err);
}
