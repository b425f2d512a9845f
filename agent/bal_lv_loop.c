/* libvirt's process-wide setup and the event-loop thread. See bal_lv_loop.h for the contract; the
 * comments here say why. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent/bal_lv_err.h"
#include "agent/bal_lv_loop.h"

/* ---- process-wide setup ---- */

static pthread_once_t blv_once = PTHREAD_ONCE_INIT;
static int blv_once_result;
static char blv_once_message[384];

/* libvirt's default handler prints every error to stderr; ours are reported through bal_error_t. */
static void silent_error(void *opaque, virErrorPtr error)
{
    (void)opaque;
    (void)error;
}

static void global_init(void)
{
    blv_err_t e;

    virSetErrorFunc(NULL, silent_error);
    if (virEventRegisterDefaultImpl() < 0) {
        blv_err_capture(&e);
        snprintf(blv_once_message, sizeof(blv_once_message), "%s", e.message);
        blv_once_result = -EIO;
    }
}

int blv_loop_setup(bal_error_t *err)
{
    pthread_once(&blv_once, global_init);
    if (blv_once_result < 0)
        return bal_error_set(err, blv_once_result, "libvirt's event loop could not be set up: %s.",
                             blv_once_message);
    return 0;
}

/* ---- the event-loop thread ----
 *
 * libvirt's default loop is one GLib main context per process, and other threads may iterate it too
 * (collectd's virt plugin does). GLib lets one thread at a time own the context and dispatch, with no
 * fairness: whichever gets there runs any source of ours, and ours may wait for its turn. Two facts shape
 * what follows:
 *  - a thread is never stopped by something it must dispatch itself: it checks a flag before each
 *    iteration, and once the flag is set, a periodic kick makes iterations end (a dispatch, or a turn
 *    handed on) until it has seen it;
 *  - the threads waiting for their turn share one condition variable, and a release of the context takes
 *    the first waiter off its list but may wake another: with two waiters (three threads iterating), one
 *    can be left asleep until some later release happens to wake it, or for ever (seen with GLib 2.74
 *    under load). So the process's transports share a single thread, which with the virt plugin's makes
 *    two; and the last leave waits for the thread's stop at most BLV_STOP_WAIT_MS, then leaves it to stop
 *    on its own (it holds nothing but its blv_loop_t). */

/* The thread. Reference-counted apart from any user: libvirt may run the timeouts that carry it on
 * another thread, and the thread itself may outlive the leave that stopped it. */
typedef struct blv_loop {
    atomic_int refs;  /* blv_loop's, the thread's, plus one per timeout of ours that libvirt holds */
    atomic_bool quit; /* the thread stops before its next iteration */
    pthread_mutex_t m;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC; signalled when exited is set and when holds drops to 0 */
    bool exited;         /* under m: it has stopped iterating */
    unsigned holds;      /* under m: users in a batch of commands; the thread does not iterate */
    atomic_bool exited_flag; /* the same, for the timeouts that only read it */
    pthread_t thread;
} blv_loop_t;

/* Started with the first user, stopped with the last. blv_loop_lock is held across a start and a whole
 * stop, so that two threads of ours never iterate at once. */
static pthread_mutex_t blv_loop_lock = PTHREAD_MUTEX_INITIALIZER;
static blv_loop_t *blv_loop;     /* under blv_loop_lock; NULL: no thread */
static unsigned blv_loop_users; /* under blv_loop_lock */
/* Set (once) by a loop thread whose iteration failed, after blv_loop_error. */
static atomic_bool blv_loop_failed;
static char blv_loop_error[384];

/* How often a stop kick fires until the loop thread has stopped. */
#define BLV_KICK_MS 1
/* The longest the last leave waits for the thread to stop (it takes milliseconds unless GLib lost its
 * wake-up). */
#define BLV_STOP_WAIT_MS 30000

const char *blv_loop_failure(void)
{
    return atomic_load(&blv_loop_failed) ? blv_loop_error : NULL;
}

static void loop_unref(blv_loop_t *loop)
{
    if (loop == NULL || atomic_fetch_sub(&loop->refs, 1) != 1)
        return;
    pthread_cond_destroy(&loop->cond);
    pthread_mutex_destroy(&loop->m);
    free(loop);
}

static void loop_release(void *opaque)
{
    loop_unref(opaque);
}

static void noop_timeout(int timer, void *opaque)
{
    (void)timer;
    (void)opaque;
}

/* Armed by drained when another thread ran it. The loop thread may be waiting for its turn to own the
 * context, or, given it, block in its poll with nothing left to dispatch: this makes the owner's
 * iteration end every BLV_KICK_MS (handing the turn on), and ends ours if it owns the context. */
static void kick(int timer, void *opaque)
{
    blv_loop_t *loop = opaque;

    if (atomic_load(&loop->exited_flag) || pthread_equal(pthread_self(), loop->thread))
        virEventRemoveTimeout(timer);
}

/* The free function of the sentinel timeout that the last leave queues behind its closed connections'
 * deferred cleanups (libvirt frees removed watches and timeouts from idle callbacks, in order): they
 * have run, on whichever thread. */
static void drained(void *opaque)
{
    blv_loop_t *loop = opaque;

    atomic_store(&loop->quit, true);
    if (!pthread_equal(pthread_self(), loop->thread)) {
        atomic_fetch_add(&loop->refs, 1);
        if (virEventAddTimeout(BLV_KICK_MS, kick, loop, loop_release) < 0) {
            virResetLastError();
            atomic_fetch_sub(&loop->refs, 1);
        }
    }
    loop_unref(loop); /* the sentinel's */
}

static void *loop_main(void *opaque)
{
    blv_loop_t *loop = opaque;
    blv_err_t e;

    while (!atomic_load(&loop->quit)) {
        pthread_mutex_lock(&loop->m);
        while (loop->holds > 0 && !atomic_load(&loop->quit))
            pthread_cond_wait(&loop->cond, &loop->m);
        pthread_mutex_unlock(&loop->m);
        if (atomic_load(&loop->quit))
            break;
        if (virEventRunDefaultImpl() < 0) {
            /* Reported by each transport at its next call, with its own logger. */
            blv_err_capture(&e);
            snprintf(blv_loop_error, sizeof(blv_loop_error), "%s", e.message);
            atomic_store(&blv_loop_failed, true);
            break;
        }
    }
    pthread_mutex_lock(&loop->m);
    loop->exited = true;
    atomic_store(&loop->exited_flag, true);
    pthread_cond_broadcast(&loop->cond);
    pthread_mutex_unlock(&loop->m);
    loop_unref(loop);
    return NULL;
}

/* Wakes the loop thread so that it sees a hold at once, not at the batch's first command. */
static void park_kick(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

/* Called with blv_loop_lock held. */
static void hold_locked(blv_loop_user_t *u, bool hold)
{
    bool wake = false, release = false;

    if (blv_loop == NULL || !u->joined || u->holding == hold)
        return;
    u->holding = hold;
    pthread_mutex_lock(&blv_loop->m);
    if (hold)
        wake = blv_loop->holds++ == 0;
    else
        release = --blv_loop->holds == 0;
    pthread_mutex_unlock(&blv_loop->m);
    /* After the unlock, so that the woken thread does not block on m at once (a context switch more
     * per read: tests/bench); blv_loop_lock keeps the loop alive. */
    if (release)
        pthread_cond_broadcast(&blv_loop->cond);
    if (wake && virEventAddTimeout(0, park_kick, NULL, NULL) < 0)
        virResetLastError();
}

void blv_loop_hold(blv_loop_user_t *u, bool hold)
{
    pthread_mutex_lock(&blv_loop_lock);
    hold_locked(u, hold);
    pthread_mutex_unlock(&blv_loop_lock);
}

/* Starts the thread: 0 and *out, or -ENOMEM / -EAGAIN with err filled. */
static int loop_start(const char *uri, blv_loop_t **out, bal_error_t *err)
{
    pthread_condattr_t attr;
    blv_loop_t *loop = calloc(1, sizeof(*loop));

    if (loop == NULL)
        goto nomem;
    atomic_init(&loop->refs, 2); /* blv_loop's and the thread's */
    if (pthread_mutex_init(&loop->m, NULL) != 0 || pthread_condattr_init(&attr) != 0) {
        free(loop);
        goto nomem;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&loop->cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        pthread_mutex_destroy(&loop->m);
        free(loop);
        goto nomem;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0) {
        pthread_cond_destroy(&loop->cond);
        pthread_mutex_destroy(&loop->m);
        free(loop);
        return bal_error_set(err, -EAGAIN, "No thread could be started for libvirt's event loop.");
    }
    *out = loop;
    return 0;

nomem:
    return bal_error_set(err, -ENOMEM, "Out of memory while connecting to libvirt at '%s'.", uri);
}

int blv_loop_join(blv_loop_user_t *u, const char *uri, bal_error_t *err)
{
    int ret = 0;

    pthread_mutex_lock(&blv_loop_lock);
    if (blv_loop_users == 0)
        ret = loop_start(uri, &blv_loop, err);
    if (ret == 0) {
        blv_loop_users++;
        u->joined = true;
    }
    pthread_mutex_unlock(&blv_loop_lock);
    return ret;
}

/* Waits at most BLV_STOP_WAIT_MS for the thread to stop iterating, then joins it, or leaves it (logged). */
static void loop_stop(blv_loop_t *loop, const bal_logger_t *logger, const char *uri)
{
    struct timespec deadline;
    int sentinel;
    bool exited;

    /* Added and removed at once: its free function is queued behind those cleanups. */
    atomic_fetch_add(&loop->refs, 1);
    sentinel = virEventAddTimeout(-1, noop_timeout, loop, drained);
    if (sentinel < 0) {
        /* Never with libvirt's own loop. Told now, the thread stops at its next iteration. */
        virResetLastError();
        atomic_fetch_sub(&loop->refs, 1);
        atomic_store(&loop->quit, true);
    } else {
        virEventRemoveTimeout(sentinel);
    }

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += BLV_STOP_WAIT_MS / 1000;
    pthread_mutex_lock(&loop->m);
    while (!loop->exited && pthread_cond_timedwait(&loop->cond, &loop->m, &deadline) != ETIMEDOUT)
        ;
    exited = loop->exited;
    pthread_mutex_unlock(&loop->m);
    if (exited) {
        pthread_join(loop->thread, NULL);
    } else {
        pthread_detach(loop->thread);
        bal_log(logger, BAL_LOG_WARNING,
                "The event-loop thread for libvirt at '%s' did not stop within %d s (another thread iterates "
                "libvirt's event loop and GLib has not woken it); it is left to stop on its own.",
                uri, BLV_STOP_WAIT_MS / 1000);
    }
    loop_unref(loop); /* blv_loop's */
}

void blv_loop_leave(blv_loop_user_t *u, const bal_logger_t *logger, const char *uri)
{
    blv_loop_t *loop;

    if (!u->joined)
        return;
    pthread_mutex_lock(&blv_loop_lock);
    hold_locked(u, false); /* a batch never outlives its agent's read; this is for safety */
    u->joined = false;
    if (--blv_loop_users > 0) {
        pthread_mutex_unlock(&blv_loop_lock);
        return;
    }
    loop = blv_loop;
    blv_loop = NULL;
    loop_stop(loop, logger, uri);
    pthread_mutex_unlock(&blv_loop_lock);
}
