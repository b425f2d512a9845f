#include "config.h"

#include "agent/bal_sample.h"

static const char *const state_names[] = {
    [BAL_STATE_OK] = "ok",
    [BAL_STATE_NEVER_ANSWERED] = "never answered",
    [BAL_STATE_STALE] = "stale",
    [BAL_STATE_NO_BALLOON] = "no balloon",
    [BAL_STATE_FAILED] = "failed",
    [BAL_STATE_LATE] = "late",
};

const char *bal_domain_state_name(bal_domain_state_t state)
{
    if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
        return "unknown";
    return state_names[state];
}
