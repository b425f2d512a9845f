/* See tt_env.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tests/tt_env.h"

bool tt_skip_slow(void)
{
    const char *v = getenv("BALLOON_SKIP_SLOW");
    return v != NULL && strcmp(v, "1") == 0;
}

bool tt_valgrind(void)
{
    const char *v = getenv("BALLOON_VALGRIND");
    return v != NULL && strcmp(v, "1") == 0;
}
