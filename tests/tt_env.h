/* What the environment of a test pass asks of the tests. */
#ifndef TT_ENV_H
#define TT_ENV_H

#include <stdbool.h>

/* True when BALLOON_SKIP_SLOW is "1": the sanitizer and valgrind passes (scripts/test.sh,
 * tests/valgrind.sh), where slow parts are cut or left to the plain pass. */
bool tt_skip_slow(void);

#endif
