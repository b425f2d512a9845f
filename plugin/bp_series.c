/* The claims on identifiers live in one binary tree (tsearch) of every instance, keyed by host and
 * plugin instance, under one mutex: a domain's read finds its own claim without the lock, so only
 * new domains, vanished ones and collisions take it.
 *
 * A released identifier stays in the tree, with its times, for BP_SERIES_KEEP: collectd's cache
 * still has its last value, and a domain that was gone for a while (a listing that failed, libvirtd
 * restarted) must not send that value again when it is back. The released ones are also in a list,
 * oldest first, from which they are forgotten. */
#include "plugin/bp_series.h"

#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/daemon/plugin.h"

#include "agent/bal_stats.h"
#include "agent/bal_text.h"

#define BP_SERIES_KEEP TIME_T_TO_CDTIME_T(3600)

struct bp_series {
    bp_identity_t id;
    const char *owner; /* NULL: released ... */
    char *name;
    cdtime_t released; /* ... at this time */
    bp_series_t *prev, *next; /* in the list of released ones */

    cdtime_t last_stats; /* the time of the last stats dispatched */
    cdtime_t last_read;  /* the time of the last values dated with the host's clock */
    bool held;           /* stats held back since the last-update went back */
    bool clock_back;     /* read-time values held back since the host's clock went back */
    bool unusable;       /* the last-update is no time values can carry ... */
    int64_t unusable_lu; /* ... this one ... */
    cdtime_t unusable_seen; /* ... first seen by the read at this time */
};

static pthread_mutex_t bp_series_lock = PTHREAD_MUTEX_INITIALIZER;
static void *bp_series_root;
static size_t bp_series_n;      /* claimed */
static bp_series_t *bp_released_head, *bp_released_tail;

static int bp_series_cmp(const void *a, const void *b)
{
    const bp_series_t *x = a, *y = b;
    int c = strcmp(x->id.host, y->id.host);

    return c != 0 ? c : strcmp(x->id.plugin_instance, y->id.plugin_instance);
}

static bool bp_identity_equal(const bp_identity_t *a, const bp_identity_t *b)
{
    return strcmp(a->host, b->host) == 0 && strcmp(a->plugin_instance, b->plugin_instance) == 0;
}

/* With the lock held, for a released one. */
static void bp_released_unlink(bp_series_t *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        bp_released_head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    else
        bp_released_tail = s->prev;
    s->prev = s->next = NULL;
}

/* With the lock held: forgets the released ones older than BP_SERIES_KEEP at now, or all. */
static void bp_released_forget(cdtime_t now, bool all)
{
    while (bp_released_head != NULL
           && (all || now < bp_released_head->released || now - bp_released_head->released >= BP_SERIES_KEEP)) {
        bp_series_t *s = bp_released_head;

        bp_released_unlink(s);
        tdelete(s, &bp_series_root, bp_series_cmp);
        free(s->name);
        free(s);
    }
}

/* With the lock held, for a claimed one. */
static void bp_series_remove(bp_series_t *s)
{
    cdtime_t now = cdtime();

    bp_series_n--;
    s->owner = NULL;
    s->released = now;
    s->prev = bp_released_tail;
    s->next = NULL;
    if (bp_released_tail != NULL)
        bp_released_tail->next = s;
    else
        bp_released_head = s;
    bp_released_tail = s;
    bp_released_forget(now, false);
}

int bp_series_claim(bp_series_t **series, const char *owner, const char *name, const bp_identity_t *id,
                    bp_series_holder_t *holder)
{
    bp_series_t key, *s, **found;
    int ret = 0;

    if (*series != NULL && bp_identity_equal(&(*series)->id, id))
        return 0;
    pthread_mutex_lock(&bp_series_lock);
    if (*series != NULL) {
        bp_series_remove(*series);
        *series = NULL;
    }
    key.id = *id;
    found = tfind(&key, &bp_series_root, bp_series_cmp);
    if (found != NULL && (*found)->owner != NULL) {
        bal_text_clean(holder->name, sizeof(holder->name), (*found)->name, 0);
        bal_text_clean(holder->owner, sizeof(holder->owner), (*found)->owner, 0);
        ret = -EEXIST;
        goto out;
    }
    if (found != NULL) {
        /* Released: its times go on, what was said about it was said about another. */
        char *copy = strdup(name);

        if (copy == NULL) {
            ret = -ENOMEM;
            goto out;
        }
        s = *found;
        bp_released_unlink(s);
        free(s->name);
        s->name = copy;
        s->held = s->clock_back = s->unusable = false;
    } else {
        s = calloc(1, sizeof(*s));
        if (s == NULL || (s->name = strdup(name)) == NULL) {
            free(s);
            ret = -ENOMEM;
            goto out;
        }
        s->id = *id;
        if (tsearch(s, &bp_series_root, bp_series_cmp) == NULL) {
            free(s->name);
            free(s);
            ret = -ENOMEM;
            goto out;
        }
    }
    s->owner = owner;
    bp_series_n++;
    *series = s;
out:
    pthread_mutex_unlock(&bp_series_lock);
    return ret;
}

void bp_series_release(bp_series_t *series)
{
    if (series == NULL)
        return;
    pthread_mutex_lock(&bp_series_lock);
    bp_series_remove(series);
    pthread_mutex_unlock(&bp_series_lock);
}

const bp_identity_t *bp_series_identity(const bp_series_t *series)
{
    return &series->id;
}

cdtime_t bp_series_last_stats_time(const bp_series_t *series)
{
    return series->last_stats;
}

cdtime_t bp_series_last_read_time(const bp_series_t *series)
{
    return series->last_read;
}

void bp_series_forget_all(void)
{
    pthread_mutex_lock(&bp_series_lock);
    bp_released_forget(0, true);
    pthread_mutex_unlock(&bp_series_lock);
}

size_t bp_series_count(void)
{
    size_t n;

    pthread_mutex_lock(&bp_series_lock);
    n = bp_series_n;
    pthread_mutex_unlock(&bp_series_lock);
    return n;
}

/* The time the stats carry and their age, from a last-update > 0. */
static unsigned bp_series_stats_time(bp_series_t *s, int64_t lu, cdtime_t now, bp_series_plan_t *plan,
                                     cdtime_t *time)
{
    unsigned changes = 0;
    double age;

    if (bal_stats_time_usable(lu, (int64_t)CDTIME_T_TO_TIME_T(now))) {
        if (s->unusable)
            changes |= BP_SERIES_USABLE;
        s->unusable = false;
        *time = TIME_T_TO_CDTIME_T(lu);
        plan->last_update = true;
        /* A little ahead (another host's clock) is age 0, the least types.db allows. */
        age = CDTIME_T_TO_DOUBLE(now) - (double)lu;
    } else {
        /* Beyond what cdtime_t holds, or far ahead of this host's clock: the read that first saw this
         * last-update stands in for it, which keeps the age growing while the stats stand still. */
        if (!s->unusable)
            changes |= BP_SERIES_UNUSABLE;
        if (!s->unusable || s->unusable_lu != lu) {
            s->unusable_lu = lu;
            s->unusable_seen = now;
        }
        s->unusable = true;
        *time = s->unusable_seen;
        age = now > s->unusable_seen ? CDTIME_T_TO_DOUBLE(now - s->unusable_seen) : 0;
    }
    plan->age = true;
    plan->age_s = age > 0 ? age : 0;
    return changes;
}

unsigned bp_series_plan(bp_series_t *s, const bal_sample_t *sample, cdtime_t now, bp_series_plan_t *plan)
{
    unsigned changes = 0;
    cdtime_t time;

    memset(plan, 0, sizeof(*plan));
    if (sample->has_stats && sample->stats.last_update > 0) {
        changes |= bp_series_stats_time(s, sample->stats.last_update, now, plan, &time);
        /* Only a new last-update is sent, and only when collectd would take it. The one dispatched
         * last, seen again (the domain was gone for a while), is no news. */
        if (sample->fresh && time > s->last_stats) {
            plan->stats = true;
            plan->stats_time = time;
            s->last_stats = time;
            if (s->held)
                changes |= BP_SERIES_RESUMED;
            s->held = false;
        } else if (sample->fresh && time < s->last_stats && !s->held) {
            s->held = true;
            changes |= BP_SERIES_HELD_BACK;
        }
    }
    /* Two reads in one tick of the clock: the second is no newer, and not worth a word. */
    if (now > s->last_read) {
        plan->read_values = true;
        plan->read_time = now;
        s->last_read = now;
        if (s->clock_back)
            changes |= BP_SERIES_CLOCK_AHEAD;
        s->clock_back = false;
    } else if (now < s->last_read && !s->clock_back) {
        s->clock_back = true;
        changes |= BP_SERIES_CLOCK_BACK;
    }
    if (!plan->read_values)
        plan->age = false; /* dated with the host's clock too */
    return changes;
}
