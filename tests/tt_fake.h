/* The part every fake transport of the agent's tests shares: the transport the agent holds, its ops
 * table (named "fake") made from the test's own list_domains and execute, take_changes answering a
 * flag the test raises, and a free that only counts, because the fake belongs to the test, which
 * looks at it after the agent has let go of it.
 *
 * A test's fake embeds a tt_fake_t as its first member, so the bal_transport_t * its callbacks get
 * is also a pointer to the test's fake:
 *
 *     typedef struct fake { tt_fake_t tt; ... } fake_t;
 *     fake_t f = {0};
 *     tt_fake_init(&f.tt, fake_list, fake_execute);
 *     bal_agent_new_with_transport(&config, &f.tt.base, &agent, &err);
 */
#ifndef TT_FAKE_H
#define TT_FAKE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "agent/bal_transport.h"

typedef struct tt_fake {
    bal_transport_t base;    /* first: what the agent holds; base.ops points to ops below */
    bal_transport_ops_t ops; /* the test may change it after tt_fake_init (e.g. take_changes = NULL) */
    atomic_bool changes;     /* set by the test; take_changes returns it once and clears it */
    atomic_uint freed;       /* how many times the transport's free was called */
} tt_fake_t;

/* Makes f a transport whose list_domains and execute are the given ones, with take_changes and free
 * as above. Resets changes and freed. f must stay where it is while the transport is in use. */
void tt_fake_init(tt_fake_t *f, int (*list_domains)(bal_transport_t *, bal_domain_list_t *, bal_error_t *),
                  int (*execute)(bal_transport_t *, const bal_domain_info_t *, const char *, char **,
                                 bal_error_t *));

/* The fake of a test that looks only at what leaves through bal_transport_execute (the allow-list's
 * tests and fuzz target): it records each command that reaches it and answers {"return": {}}; it
 * lists no domains (-ENOSYS). Not thread-safe: one command at a time. */
typedef struct tt_recorder {
    tt_fake_t tt;     /* first: &r->tt.base is the transport */
    unsigned executed; /* commands that reached the transport */
    const char *last;  /* the last of them, the caller's pointer as passed, not a copy */
} tt_recorder_t;

/* Makes r a recorder with nothing recorded. r must stay where it is while the transport is in use. */
void tt_recorder_init(tt_recorder_t *r);

#endif
