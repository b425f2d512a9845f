/* See tt_manual_clock.h. */
#include "config.h"

#include "tests/tt_manual_clock.h"

static int64_t agent_wall(void *opaque)
{
    tt_manual_clock_t *c = opaque;
    return c->vclock.clock.wall_s(&c->vclock);
}

static int64_t agent_mono(void *opaque)
{
    tt_manual_clock_t *c = opaque;
    return c->vclock.now_ns / VB_NS_PER_MS;
}

void tt_manual_clock_init(tt_manual_clock_t *c, int64_t wall_base_s)
{
    vb_manual_clock_init(&c->vclock, wall_base_s);
    c->clock = (bal_clock_t){.wall_s = agent_wall, .monotonic_ms = agent_mono, .opaque = c};
}
