/* A count of the samples an agent's read cycle hands out, by state: the sample callback of tests that
 * only need to know how many domains were read and how many of those read well or failed. */
#ifndef TT_TALLY_H
#define TT_TALLY_H

#include "agent/bal_agent.h"

typedef struct tt_tally {
    unsigned long samples, ok, failed, late; /* ok: BAL_STATE_OK; failed: BAL_STATE_FAILED; late: ...LATE */
} tt_tally_t;

/* A bal_agent_read sample callback: opaque is a tt_tally_t, zeroed by the caller before the cycle. */
void tt_tally_sample(void *opaque, const bal_sample_t *s);

#endif
