/* Blocking libvirt calls with a deadline. See bal_lv_call.h for the contract; the comments here say why. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/bal_lv_call.h"

/* A call's state: made by a helper (RUNNING) until it returns (DONE) or its caller stops waiting
 * (ABANDONED). Each side moves it once with a compare-and-swap, so that they agree on who owns the work
 * without a mutex between them (each one cost the woken thread a wait for the mutex its waker held). */
enum { CALL_RUNNING, CALL_DONE, CALL_ABANDONED };

/* One call handed to a helper: shared by its caller (until it returns) and its helper (until the call
 * is done), hence counted. The caller marks the key pending before it abandons the call, so the
 * helper, which unmarks it as soon as the call returns, always comes after; the last to let go of an
 * abandoned call frees its work. */
typedef struct blv_call {
    atomic_int refs;
    atomic_int state;
    sem_t done; /* posted once, when the state became DONE */
    blv_caller_t *caller; /* borrowed: the caller waits, the helper holds a reference */
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
    sem_t wake;              /* posted when it has a call, or must end: no spurious wake-up, no mutex */
    blv_call_t *call;        /* under caller->lock: the call to make; NULL when idle (woken: it ends) */
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
    if (atomic_load(&c->state) == CALL_ABANDONED)
        c->free_fn(c->work);
    sem_destroy(&c->done);
    free(c->key);
    free(c);
}

static blv_call_t *call_new(blv_caller_t *caller, const char *key, blv_call_fn fn, blv_call_free_fn free_fn,
                            void *work)
{
    blv_call_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->key = strdup(key);
    if (c->key == NULL || sem_init(&c->done, 0, 0) != 0) {
        free(c->key);
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    atomic_init(&c->state, CALL_RUNNING);
    c->caller = caller;
    c->fn = fn;
    c->free_fn = free_fn;
    c->work = work;
    return c;
}

/* Gives c's results to its caller, or, when the caller stopped waiting meanwhile, unmarks its key and
 * leaves the work to the last call_unref (this one, unless the caller has not let go yet). */
static void call_hand_back(blv_call_t *c)
{
    int expected = CALL_RUNNING;

    if (atomic_compare_exchange_strong(&c->state, &expected, CALL_DONE))
        sem_post(&c->done); /* c lives on: this thread's reference is dropped after */
    else
        pending_remove(c->caller, c->key);
    call_unref(c);
}

/* ---- the helper threads ---- */

static void helper_free(blv_helper_t *h)
{
    if (h == NULL)
        return;
    sem_destroy(&h->wake);
    free(h);
}

static void helper_sleep(blv_helper_t *h)
{
    while (sem_wait(&h->wake) != 0 && errno == EINTR)
        ;
}

static void *helper_main(void *opaque)
{
    blv_helper_t *h = opaque;
    blv_caller_t *caller = h->caller;
    bool leaves = false;

    while (!leaves) {
        blv_call_t *c;
        bool abandoned;

        helper_sleep(h);
        pthread_mutex_lock(&caller->lock);
        c = h->call;
        pthread_mutex_unlock(&caller->lock);
        if (c == NULL)
            break; /* woken without a call by stop, which joins it */
        c->fn(c->work);
        /* Abandoned: the key is refused until now, so it is unmarked first (nobody waits for the rest). */
        abandoned = atomic_load(&c->state) == CALL_ABANDONED;
        if (abandoned)
            pending_remove(caller, c->key);
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
        if (abandoned)
            call_unref(c);
        else
            call_hand_back(c);
    }
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
    }
    pthread_mutex_unlock(&caller->lock);
    if (h != NULL) {
        /* h is out of the idle list, so nothing but this post can wake it: it cannot be gone before. */
        sem_post(&h->wake);
        return 0;
    }

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto no_helper;
    if (sem_init(&h->wake, 0, 1) != 0) { /* its call is set: it starts with it */
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
    pthread_mutex_unlock(&caller->lock);
    while (idle != NULL) {
        blv_helper_t *h = idle;
        idle = h->next;
        sem_post(&h->wake);
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
    int expected = CALL_RUNNING, ret = 0;

    if (caller->timeout_ms <= 0) {
        fn(work);
        return 0;
    }
    c = call_new(caller, key, fn, free_fn, work);
    if (c == NULL)
        return -ENOMEM;
    if (helper_take(caller, c) < 0) {
        call_unref(c);
        return -EAGAIN;
    }
    deadline_after(&deadline, caller->timeout_ms);
    while (sem_clockwait(&c->done, CLOCK_MONOTONIC, &deadline) != 0) {
        if (errno == EINTR)
            continue;
        /* The deadline: the call is abandoned unless it returned just now. Marked pending first, so that
         * a helper that sees it abandoned finds the key to unmark. */
        pending_add(caller, c->key);
        if (atomic_compare_exchange_strong(&c->state, &expected, CALL_ABANDONED))
            ret = -ETIMEDOUT;
        else
            pending_remove(caller, c->key);
        break;
    }
    call_unref(c);
    return ret;
}
