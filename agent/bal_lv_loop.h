/* libvirt's process-wide setup and the event-loop thread that the process's libvirt transports share
 * (prefix blv_loop_).
 *
 * Done once per process (pthread_once) by blv_loop_setup and never undone, because libvirt offers no
 * per-library scope for them:
 *  - virEventRegisterDefaultImpl(). libvirt ignores a second registration, so this coexists with
 *    collectd's virt plugin or any other user of libvirt's default event loop in the same process; an
 *    application that registered its own implementation first keeps it (and must run it).
 *  - virSetErrorFunc() with a handler that prints nothing: libvirt's default handler writes every error
 *    to stderr. Errors reach the caller through bal_error_t and the injected logger only.
 *
 * One thread of ours iterates the default loop: the first user's blv_loop_join starts it, and the last
 * user's blv_loop_leave stops and joins it. Other threads may iterate the same loop (collectd's virt
 * plugin's) and then run the users' callbacks: what libvirt holds for them keeps its own reference. Only
 * one thread of ours iterates, because GLib can leave one of several threads waiting for their turn
 * asleep for good; should that happen anyway, the last leave waits for the thread at most 30 s, then
 * leaves it behind (logged) rather than hang. While any user holds the loop (a batch of commands), the
 * thread does not iterate: every command would wake it twice. */
#ifndef BAL_LV_LOOP_H
#define BAL_LV_LOOP_H

#include <stdbool.h>

#include "agent/bal_error.h"
#include "agent/bal_log.h"

/* A user of the loop thread; embedded in its owner, zeroed before the first join. */
typedef struct blv_loop_user {
    bool joined;  /* counted among the thread's users */
    bool holding; /* under the module's lock: counted in the thread's holds */
} blv_loop_user_t;

/* The process-wide setup, once. Returns 0, or -EIO with err filled (libvirt's event loop could not be
 * registered; every later call fails the same way). */
int blv_loop_setup(bal_error_t *err);

/* Counts u among the thread's users, starting the thread for the first; uri is for messages. Returns 0,
 * or -EAGAIN (no thread) / -ENOMEM with err filled. */
int blv_loop_join(blv_loop_user_t *u, const char *uri, bal_error_t *err);

/* Holds (hold true) or releases the loop: while any user holds it, the thread does not iterate; events
 * that arrive meanwhile are dispatched once the last hold is released. Idempotent per user. */
void blv_loop_hold(blv_loop_user_t *u, bool hold);

/* Uncounts u (releasing its hold); the last user stops the thread, after the cleanups that closed
 * connections left queued in the loop have run, waiting at most 30 s (then logged through logger, with
 * uri, and left to stop on its own). Call it after closing u's connections. No-op if u is not joined. */
void blv_loop_leave(blv_loop_user_t *u, const bal_logger_t *logger, const char *uri);

/* NULL, or the reason the thread's iteration failed (it then stopped: no lifecycle events, no keepalive).
 * Set once, never cleared. */
const char *blv_loop_failure(void);

#endif
