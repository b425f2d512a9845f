/* See tt_tally.h. */
#include "config.h"

#include "tests/tt_tally.h"

void tt_tally_sample(void *opaque, const bal_sample_t *s)
{
    tt_tally_t *t = opaque;

    t->samples++;
    if (s->state == BAL_STATE_OK)
        t->ok++;
    else if (s->state == BAL_STATE_FAILED)
        t->failed++;
    else if (s->state == BAL_STATE_LATE)
        t->late++;
}
