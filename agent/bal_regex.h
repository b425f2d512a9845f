/* The bounds a Domain selector's regular expression must keep before it is given to glibc's
 * regcomp, whose time and memory grow with the pattern once its repetitions are multiplied out: a
 * bounded repetition {m,n} is compiled as n copies of what it repeats, a repetition of a group
 * repeats every copy inside it, and regcomp recurses once per nesting level. Measured here (glibc
 * 2.36): a{0,1000} takes 8 ms and 9 MiB, a{0,5000} 0.4 s and 193 MiB, (a{0,32767}) 27 s and 8 GiB,
 * (a{0,255}){0,255} 0.6 s and 535 MiB; 30000 nested groups overflow its stack. Matching with a
 * back-reference can take seconds for one 200-byte name, and names come from the peer.
 * Private to the agent (bal_filter). Pure: thread-safe, no I/O. */
#ifndef BAL_REGEX_H
#define BAL_REGEX_H

#include <stddef.h>

#include "agent/bal_error.h"

/* Checks the POSIX extended regular expression pattern (len bytes, without the selector's slashes)
 * of the selector selector (quoted in messages). Refuses, before any compiling:
 *  - a repetition operator right after another ("a++", "a*{2}"): never more than the single one;
 *  - a back-reference ("\1" .. "\9"): not POSIX ERE, and slow to match;
 *  - groups nested deeper than BAL_LIMIT_REGEX_DEPTH;
 *  - a weight above BAL_LIMIT_REGEX_WEIGHT, where each character, '.', '|' or bracket expression
 *    weighs 1, an anchor ('^', '$', and glibc's '\b', '\B', '\<', '\>', '\`', '\'') 8, a group the sum
 *    of what it holds (all branches of a '|'), and a repetition multiplies the weight of what it
 *    repeats by its upper bound ({m,n}: n; {m,}: m + 1; '+': 2; '*' and '?': 1). An anchor or a '|'
 *    matches nothing but is a node all the same, and glibc's closures over such nodes grow with
 *    their square or faster: 44 '$' repeated 100 times took it 20 s and 7.4 GiB;
 *  - a repetition without bound ('*', '+', "{m,}") of a part that can match the empty string
 *    ("(a*)*", "(x|)+", "(^)*"): glibc recomputes the closures inside such a cycle along every path
 *    through it, exponential in the part ("(((a?){1,2}){1,40})*" took more than a minute);
 *  - anchors next to too many parts that can match the empty string: for each stretch that a
 *    closure over the edges that match nothing takes in, its nodes times its anchors above
 *    BAL_LIMIT_REGEX_ANCHOR_REACH. A character at the stretch's edge, an anchor and an empty group
 *    are 1 node; x? and x{0,n} pass by x: 1 node more than x's edges; each copy of a repetition is 1
 *    more than what it repeats ("(a?)" is 3 a copy); an alternation is its branches and 1 between
 *    each two. glibc copies what an anchor's closure reaches once for each condition that meets
 *    there: "\b(a?){1,120}(a?){1,120}" took it 0.9 GiB. "\b(a?){1,42}" is the most for one anchor.
 * What is left for regcomp to judge (an unmatched parenthesis, a bad bound) is not refused here.
 * Returns 0, or -EINVAL with a sentence in err quoting selector. */
int bal_regex_check(const char *pattern, size_t len, const char *selector, bal_error_t *err);

#endif
