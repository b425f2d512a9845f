/* See tt_fake.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tt_fake.h"

static bool take_changes(bal_transport_t *t)
{
    tt_fake_t *f = (tt_fake_t *)t;
    return atomic_exchange(&f->changes, false);
}

static void count_free(bal_transport_t *t)
{
    tt_fake_t *f = (tt_fake_t *)t;
    atomic_fetch_add(&f->freed, 1); /* the test owns the fake and frees it itself */
}

void tt_fake_init(tt_fake_t *f, int (*list_domains)(bal_transport_t *, bal_domain_list_t *, bal_error_t *),
                  int (*execute)(bal_transport_t *, const bal_domain_info_t *, const char *, char **,
                                 bal_error_t *))
{
    f->ops = (bal_transport_ops_t){
        .name = "fake",
        .list_domains = list_domains,
        .execute = execute,
        .take_changes = take_changes,
        .free = count_free,
    };
    f->base.ops = &f->ops;
    atomic_init(&f->changes, false);
    atomic_init(&f->freed, 0);
}

static int recorder_list(bal_transport_t *t, bal_domain_list_t *out, bal_error_t *err)
{
    (void)t;
    (void)out;
    return bal_error_set(err, -ENOSYS, "Not used.");
}

static int recorder_execute(bal_transport_t *t, const bal_domain_info_t *dom, const char *command, char **reply,
                            bal_error_t *err)
{
    tt_recorder_t *r = (tt_recorder_t *)t;

    (void)dom;
    r->executed++;
    r->last = command;
    *reply = strdup("{\"return\": {}}");
    return *reply != NULL ? 0 : bal_error_set(err, -ENOMEM, "Out of memory.");
}

void tt_recorder_init(tt_recorder_t *r)
{
    tt_fake_init(&r->tt, recorder_list, recorder_execute);
    r->executed = 0;
    r->last = NULL;
}
