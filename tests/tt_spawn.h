/* The programs a cmocka test runs beside it (balloon-sim, QEMU): finding them, starting one and
 * waiting until it says it is ready, stopping it. A program that never gets ready fails the running
 * test (cmocka's fail_msg), so these are for a test's body or its group setup. */
#ifndef TT_SPAWN_H
#define TT_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* Copies into out (cap bytes) the first of first and second that is an executable file, or "" when
 * neither is. Either may be NULL. */
void tt_spawn_find(char *out, size_t cap, const char *first, const char *second);

/* The balloon-sim this build made: $abs_top_builddir/virtio/balloon-sim (make check exports
 * abs_top_builddir), else virtio/balloon-sim below the current directory; NULL when neither is there.
 * Looked up at the first call (not thread-safe), the same string afterwards. */
const char *tt_spawn_sim(void);

/* Skips the running cmocka test (cmocka's skip()) when tt_spawn_sim() is NULL. */
void tt_spawn_need_sim(void);

/* Starts argv (argv[0] is a path, run with execv) with its stdout on a pipe, and returns its pid as
 * soon as it has printed "ready" (balloon-sim does once its sockets listen); its stdout is closed then,
 * so it must print nothing more that anyone reads. Blocks for at most timeout_ms: past that, or if the
 * program exits first, kills it and fails the test with what it printed. */
pid_t tt_spawn_until_ready(char *const argv[], int timeout_ms);

/* Ends a child this process started: SIGTERM, then waits until it has exited (blocks). pid <= 0 does
 * nothing: never kill(-1, ...) nor kill(0, ...). */
void tt_spawn_stop(pid_t pid);

#endif
