/* Blocking libvirt calls with a deadline (prefix blv_call): libvirt has no per-call timeout (a hung QEMU
 * blocks virDomainQemuMonitorCommand until libvirtd gives up, which may be never; a hung libvirtd blocks
 * virConnectOpen in its handshake). A caller (blv_caller_t) runs each call on a helper thread and waits
 * for it at most its timeout (real monotonic time, not the injected clock).
 *
 * Helpers are kept for the next calls (up to BLV_CALL_MAX_IDLE idle; blv_caller_stop ends them): a thread
 * started for each call cost more CPU than the call itself (tests/bench). One whose call was abandoned
 * finishes it in the background, owning and then freeing its work, and then ends. Until it does, the
 * call's key is pending (blv_caller_pending), so that its owner can refuse to stack another call behind
 * it: a hung peer then holds at most one thread per key. When no helper thread can be started, the call
 * is not made (never on the caller's thread without the timeout, where a hung peer would block it for as
 * long as it hangs).
 *
 * A work is the caller's own struct: fn makes the call and stores its results there; free_fn frees it
 * with whatever it still owns, and accepts NULL. */
#ifndef BAL_LV_CALL_H
#define BAL_LV_CALL_H

#include <stdbool.h>

/* Idle helpers kept; one more ends when its call is done. Callers are the agent's pool, a handful. */
#define BLV_CALL_MAX_IDLE 16

typedef struct blv_caller blv_caller_t;

typedef void (*blv_call_fn)(void *work);
typedef void (*blv_call_free_fn)(void *work);

/* A caller whose calls wait at most timeout_ms (<= 0: calls are made on the calling thread, with no
 * timeout of ours). Returns NULL when out of memory. Starts no thread. */
blv_caller_t *blv_caller_new(int timeout_ms);
/* A new reference. */
blv_caller_t *blv_caller_ref(blv_caller_t *caller);
/* Lets go of a reference; helpers hold their own until they end. NULL is a no-op. */
void blv_caller_unref(blv_caller_t *caller);

int blv_caller_timeout_ms(const blv_caller_t *caller);

/* Whether a call with this key timed out and has not returned yet. Thread-safe. */
bool blv_caller_pending(blv_caller_t *caller, const char *key);

/* Runs fn(work) on a helper, waiting at most the caller's timeout. Returns:
 *   0: fn has returned; work (and its results) is the caller's again;
 *   -ETIMEDOUT: work now belongs to the helper, which calls free_fn(work) once fn returns; key is
 *     pending until then;
 *   -EAGAIN: no helper thread could be started; -ENOMEM: no memory to hand the call over. fn was not
 *     called and work is still the caller's.
 * Blocks for at most the timeout. Thread-safe. */
int blv_caller_run(blv_caller_t *caller, const char *key, blv_call_fn fn, blv_call_free_fn free_fn, void *work);

/* Ends the idle helpers (joined) and makes the busy ones end, detached, when their calls return. For
 * the owner's free, once no thread calls blv_caller_run any more. */
void blv_caller_stop(blv_caller_t *caller);

#endif
