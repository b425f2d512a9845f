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
 *    their square or faster: 44 '$' repeated 100 times took it 20 s and 7.4 GiB.
 * What is left for regcomp to judge (an unmatched parenthesis, a bad bound) is not refused here.
 * Returns 0, or -EINVAL with a sentence in err quoting selector. */
int bal_regex_check(const char *pattern, size_t len, const char *selector, bal_error_t *err);

#endif
