/* Blocking libvirt calls with a deadline. See bal_lv_call.h for the contract; the comments here say why. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/bal_lv_call.h"

/* One call handed to a helper: shared by its caller (until it returns) and its helper (until the call
 * is done), hence counted. */
typedef struct blv_call {
    atomic_int refs;
    pthread_mutex_t m;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC; signalled when done is set */
    bool done;           /* under m */
    bool abandoned;      /* under m: the caller stopped waiting; the helper frees the work */
    char *key;
    blv_call_fn fn;
    blv_call_free_fn free_fn;
    void *work;
} blv_call_t;

/* A key whose call timed out and is still running inside libvirt. */
typedef struct blv_pending {
    char *key;
    struct blv_pending *next;
} blv_pending_t;

/* A helper thread. One whose call timed out belongs to that call until libvirt returns. */
typedef struct blv_helper {
    blv_caller_t *caller;
    pthread_t thread;
    pthread_cond_t wake;    /* signalled when call or quit is set */
    blv_call_t *call;       /* under caller->lock: the call to make; NULL when idle */
    bool quit;              /* under caller->lock: an idle helper ends (stop joins it) */
    struct blv_helper *next; /* in caller->idle */
} blv_helper_t;

struct blv_caller {
    atomic_int refs; /* the owners', one per helper thread */
    int timeout_ms;
    pthread_mutex_t lock; /* guards the helpers' call and quit, and what follows */
    blv_helper_t *idle;   /* waiting for a call; joinable */
    unsigned n_idle;
    bool closing;         /* stop has begun: a helper whose call ends leaves, detached */
    blv_pending_t *pending;
};

blv_caller_t *blv_caller_new(int timeout_ms)
{
    blv_caller_t *caller = calloc(1, sizeof(*caller));

    if (caller == NULL)
        return NULL;
    if (pthread_mutex_init(&caller->lock, NULL) != 0) {
        free(caller);
        return NULL;
    }
    atomic_init(&caller->refs, 1);
    caller->timeout_ms = timeout_ms;
    return caller;
}

blv_caller_t *blv_caller_ref(blv_caller_t *caller)
{
    atomic_fetch_add(&caller->refs, 1);
    return caller;
}

void blv_caller_unref(blv_caller_t *caller)
{
    if (caller == NULL || atomic_fetch_sub(&caller->refs, 1) != 1)
        return;
    /* Helpers remove their pending keys before they let go. */
    while (caller->pending != NULL) {
        blv_pending_t *p = caller->pending;
        caller->pending = p->next;
        free(p->key);
        free(p);
    }
    pthread_mutex_destroy(&caller->lock);
    free(caller);
}

int blv_caller_timeout_ms(const blv_caller_t *caller)
{
    return caller->timeout_ms;
}

/* ---- the pending keys ---- */

bool blv_caller_pending(blv_caller_t *caller, const char *key)
{
    bool found = false;

    pthread_mutex_lock(&caller->lock);
    for (const blv_pending_t *p = caller->pending; p != NULL && !found; p = p->next)
        found = strcmp(p->key, key) == 0;
    pthread_mutex_unlock(&caller->lock);
    return found;
}

static void pending_add(blv_caller_t *caller, const char *key)
{
    blv_pending_t *p = calloc(1, sizeof(*p));

    /* Without memory the key is not remembered: the key is then only not refused, which is safe. */
    if (p == NULL)
        return;
    p->key = strdup(key);
    if (p->key == NULL) {
        free(p);
        return;
    }
    pthread_mutex_lock(&caller->lock);
    p->next = caller->pending;
    caller->pending = p;
    pthread_mutex_unlock(&caller->lock);
}

static void pending_remove(blv_caller_t *caller, const char *key)
{
    pthread_mutex_lock(&caller->lock);
    for (blv_pending_t **link = &caller->pending; *link != NULL; link = &(*link)->next) {
        blv_pending_t *p = *link;
        if (strcmp(p->key, key) == 0) {
            *link = p->next;
            free(p->key);
            free(p);
            break;
        }
    }
    pthread_mutex_unlock(&caller->lock);
}

/* ---- the calls ---- */

static void call_unref(blv_call_t *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->abandoned)
        c->free_fn(c->work);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->m);
    free(c->key);
    free(c);
}

static blv_call_t *call_new(const char *key, blv_call_fn fn, blv_call_free_fn free_fn, void *work)
{
    blv_call_t *c = calloc(1, sizeof(*c));
    pthread_condattr_t attr;

    if (c == NULL)
        return NULL;
    c->key = strdup(key);
    if (c->key == NULL || pthread_condattr_init(&attr) != 0) {
        free(c->key);
        free(c);
        return NULL;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&c->cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        free(c->key);
        free(c);
        return NULL;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_mutex_init(&c->m, NULL) != 0) {
        pthread_cond_destroy(&c->cond);
        free(c->key);
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->fn = fn;
    c->free_fn = free_fn;
    c->work = work;
    return c;
}

/* Gives c's results to its caller, or lets them go when the caller stopped waiting. */
static void call_hand_back(blv_caller_t *caller, blv_call_t *c)
{
    bool abandoned;

    pthread_mutex_lock(&c->m);
    c->done = true;
    abandoned = c->abandoned;
    pthread_mutex_unlock(&c->m);
    /* After the unlock, so that the woken caller does not wait for the mutex: c lives on, it holds its
     * own reference until it has seen done. */
    pthread_cond_signal(&c->cond);
    /* The caller added the key before it let go of c->m, so this removal comes after it. */
    if (abandoned)
        pending_remove(caller, c->key);
    call_unref(c);
}

/* ---- the helper threads ---- */

static void helper_free(blv_helper_t *h)
{
    if (h == NULL)
        return;
    pthread_cond_destroy(&h->wake);
    free(h);
}

static void *helper_main(void *opaque)
{
    blv_helper_t *h = opaque;
    blv_caller_t *caller = h->caller;
    bool leaves = false;

    pthread_mutex_lock(&caller->lock);
    while (!leaves) {
        blv_call_t *c;

        while (h->call == NULL && !h->quit)
            pthread_cond_wait(&h->wake, &caller->lock);
        if (h->call == NULL)
            break; /* quit while idle: stop joins it */
        c = h->call;
        pthread_mutex_unlock(&caller->lock);
        c->fn(c->work);
        /* Idle again before the caller wakes, so that its next call finds this helper. */
        pthread_mutex_lock(&caller->lock);
        h->call = NULL;
        leaves = caller->closing || caller->n_idle >= BLV_CALL_MAX_IDLE; /* then nobody joins it */
        if (!leaves) {
            h->next = caller->idle;
            caller->idle = h;
            caller->n_idle++;
        }
        pthread_mutex_unlock(&caller->lock);
        call_hand_back(caller, c);
        pthread_mutex_lock(&caller->lock);
    }
    pthread_mutex_unlock(&caller->lock);
    if (leaves) {
        pthread_detach(h->thread);
        helper_free(h);
    }
    blv_caller_unref(caller);
    return NULL;
}

/* Hands c to an idle helper, or to a new one. Returns 0, or -EAGAIN when no thread could be started. */
static int helper_take(blv_caller_t *caller, blv_call_t *c)
{
    blv_helper_t *h;

    atomic_fetch_add(&c->refs, 1); /* the helper's */
    pthread_mutex_lock(&caller->lock);
    h = caller->idle;
    if (h != NULL) {
        caller->idle = h->next;
        caller->n_idle--;
        h->call = c;
        /* Under the lock: once it is released, a helper woken spuriously could make the call, leave and
         * free h before a signal after it. */
        pthread_cond_signal(&h->wake);
    }
    pthread_mutex_unlock(&caller->lock);
    if (h != NULL)
        return 0;

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto no_helper;
    if (pthread_cond_init(&h->wake, NULL) != 0) {
        free(h);
        goto no_helper;
    }
    h->caller = blv_caller_ref(caller);
    h->call = c;
    /* h->thread is set before the helper can read it: it reads it only after taking the lock. */
    pthread_mutex_lock(&caller->lock);
    if (pthread_create(&h->thread, NULL, helper_main, h) != 0) {
        pthread_mutex_unlock(&caller->lock);
        helper_free(h);
        atomic_fetch_sub(&caller->refs, 1); /* not the last: the caller's own is held */
        goto no_helper;
    }
    pthread_mutex_unlock(&caller->lock);
    return 0;

no_helper:
    atomic_fetch_sub(&c->refs, 1);
    return -EAGAIN;
}

void blv_caller_stop(blv_caller_t *caller)
{
    blv_helper_t *idle;

    pthread_mutex_lock(&caller->lock);
    caller->closing = true;
    idle = caller->idle;
    caller->idle = NULL;
    caller->n_idle = 0;
    for (blv_helper_t *h = idle; h != NULL; h = h->next) {
        h->quit = true;
        pthread_cond_signal(&h->wake);
    }
    pthread_mutex_unlock(&caller->lock);
    while (idle != NULL) {
        blv_helper_t *h = idle;
        idle = h->next;
        pthread_join(h->thread, NULL);
        helper_free(h);
    }
}

/* ---- running a call ---- */

static void deadline_after(struct timespec *deadline, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, deadline);
    deadline->tv_sec += ms / 1000;
    deadline->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000L;
    }
}

int blv_caller_run(blv_caller_t *caller, const char *key, blv_call_fn fn, blv_call_free_fn free_fn, void *work)
{
    struct timespec deadline;
    blv_call_t *c;
    int ret = 0;

    if (caller->timeout_ms <= 0) {
        fn(work);
        return 0;
    }
    c = call_new(key, fn, free_fn, work);
    if (c == NULL)
        return -ENOMEM;
    if (helper_take(caller, c) < 0) {
        call_unref(c);
        return -EAGAIN;
    }
    deadline_after(&deadline, caller->timeout_ms);
    pthread_mutex_lock(&c->m);
    while (!c->done) {
        if (pthread_cond_timedwait(&c->cond, &c->m, &deadline) == ETIMEDOUT && !c->done) {
            c->abandoned = true;
            pending_add(caller, c->key);
            ret = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&c->m);
    call_unref(c);
    return ret;
}
