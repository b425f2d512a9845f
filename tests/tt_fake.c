/* See tt_fake.h. */
#include "config.h"

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
