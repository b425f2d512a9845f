/* A QMP server for the fault tests: one thread (epoll) serving a directory of NAME.qmp sockets (mode
 * 0600), each domain with a behaviour that can change between cycles. NORMAL answers like QEMU 7.2
 * with a guest that answers (last-update is the wall clock when polling is on); the others fail in
 * the ways the issue lists. Every command line received is checked with ff_command_allowed and
 * counted. Scales to thousands of sockets (limited by RLIMIT_NOFILE: three descriptors per domain
 * with its connection open on both sides). */
#ifndef FAULT_SERVER_H
#define FAULT_SERVER_H

#include <stdbool.h>
#include <stddef.h>

typedef enum fs_mode {
    FS_NORMAL,
    FS_STALL_AFTER_GREETING, /* greets, then reads every command and never answers */
    FS_HUGE_REPLY,           /* negotiates, then answers a command with a 10 MiB reply */
    FS_ONE_BYTE,             /* every byte it sends is a write of its own, 1 ms apart */
    FS_CLOSE_MID_REPLY,      /* negotiates, then sends half a reply and closes (killed mid-cycle) */
    FS_SLOW_THEN_STALL,      /* greets only after fs_set_delay ms, negotiates, then never answers */
} fs_mode_t;

typedef struct fs_server fs_server_t;

/* Starts the server thread on dir (created 0700 if missing). Aborts on failure. */
fs_server_t *fs_new(const char *dir);
/* Stops the thread, closes everything and unlinks the sockets it made (not the directory). */
void fs_free(fs_server_t *s);

/* A domain's socket appears (listening) / vanishes (closed, connections dropped, file unlinked). */
void fs_add(fs_server_t *s, const char *name, fs_mode_t mode);
void fs_remove(fs_server_t *s, const char *name);
/* The domain's QEMU dies: connections and listener closed at once, the socket file left behind (as a
 * killed QEMU leaves it; nothing listens on it). fs_add of the same name is its restart. */
void fs_kill(fs_server_t *s, const char *name);
/* FS_SLOW_THEN_STALL's delay before the greeting (default 0). */
void fs_set_delay(fs_server_t *s, int delay_ms);
/* Applies to what the domain does from now on, on open connections too. */
void fs_set_mode(fs_server_t *s, const char *name, fs_mode_t mode);

typedef struct fs_counts {
    unsigned long accepted, commands, refused; /* refused: a command outside the contract */
    size_t domains, connections;               /* now */
} fs_counts_t;
void fs_counts(fs_server_t *s, fs_counts_t *out);

#endif
