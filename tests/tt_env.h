/* What the environment of a test pass asks of the tests. */
#ifndef TT_ENV_H
#define TT_ENV_H

#include <stdbool.h>

/* True when BALLOON_SKIP_SLOW is "1": the sanitizer and valgrind passes (scripts/test.sh,
 * tests/valgrind.sh), where slow parts are cut or left to the plain pass. */
bool tt_skip_slow(void);

/* True when BALLOON_VALGRIND is "1": the test runs under valgrind (tests/valgrind.sh), one thread at
 * a time and many times slower, so that its time bounds need far more slack. */
bool tt_valgrind(void);

/* TT_ASAN is 1 in a build with AddressSanitizer (gcc's __SANITIZE_ADDRESS__, clang's
 * __has_feature), else 0: its quarantine and shadow memory make RSS and address-space limits
 * meaningless there. */
#if defined(__SANITIZE_ADDRESS__)
#define TT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TT_ASAN 1
#endif
#endif
#ifndef TT_ASAN
#define TT_ASAN 0
#endif

#endif
