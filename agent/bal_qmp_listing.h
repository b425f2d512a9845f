/* Which QMP sockets there are, for the qmp-socket transport (bal_qmp_socket.h): every socket named
 * NAME.qmp in a directory, or explicit name/path pairs. A listed domain's instance is its socket file's
 * identity (device, inode, change time): QEMU creates its socket anew at each start, so a restarted QEMU
 * is a new instance.
 *
 * bal_qmp_listing_changed says, for the cost of one stat (of the directory, or of each pair's socket),
 * whether a new listing could differ from the last one: a directory's modification time moves whenever
 * an entry is created or removed. The transport reports it through take_changes, which the agent asks
 * before every read, so that a QEMU whose socket vanished and came back (a restart) is read again at
 * the next read, not at the next scheduled refresh of the list.
 *
 * Said once through the logger, not at every listing: a directory that does not exist (again once when
 * it exists again), and a socket whose name would make a domain collectd cannot store ('..qmp' and
 * '...qmp' would be the domains '.' and '..'), which is not listed.
 *
 * list and changed are called by one thread at a time (the agent's reader); path reads only what the
 * constructor copied and may be called from any thread. */
#ifndef BAL_QMP_LISTING_H
#define BAL_QMP_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "agent/bal_error.h"
#include "agent/bal_log.h"
#include "agent/bal_transport.h"

/* A socket named for a domain: the pairs form of the qmp-socket transport (QMPSocket NAME PATH). */
typedef struct bal_socket_spec {
    const char *name;
    const char *path;
} bal_socket_spec_t;

/* The file suffix that makes a socket in a directory a domain: NAME.qmp. */
#define BAL_QMP_SOCKET_SUFFIX ".qmp"

typedef struct bal_qmp_listing bal_qmp_listing_t;

/* The directory form; dir need not exist yet. dir and logger (may be NULL) are copied. Returns NULL with
 * err filled (-EINVAL no directory, -ENOMEM). */
bal_qmp_listing_t *bal_qmp_listing_new_dir(const char *dir, const bal_logger_t *logger, bal_error_t *err);

/* The pairs form (copied). Names must be unique and non-empty, and neither '.' nor '..'; paths
 * non-empty. Returns NULL with err filled (-EINVAL naming the pair, -ENOMEM). */
bal_qmp_listing_t *bal_qmp_listing_new_pairs(const bal_socket_spec_t *pairs, size_t n, const bal_logger_t *logger,
                                             bal_error_t *err);

void bal_qmp_listing_free(bal_qmp_listing_t *l); /* NULL is a no-op */

/* The sockets there are now, sorted by name, with "" uuids; a pair whose socket does not exist is not
 * listed, nor is a missing directory's anything (0 domains). Returns 0, or a negative errno with err
 * filled (the directory cannot be read, -ENOMEM). Does not block beyond the file system. */
int bal_qmp_listing_list(bal_qmp_listing_t *l, bal_domain_list_t *out, bal_error_t *err);

/* True when a listing now could differ from the last one (false before the first). Never blocks
 * beyond one stat per pair, or one of the directory. */
bool bal_qmp_listing_changed(bal_qmp_listing_t *l);

/* The socket path of the domain called name, malloc'ed; NULL with err filled: -ENOENT when name is
 * none of the listing's (not a name a socket in the directory can have, or not a configured pair),
 * -ENOMEM. */
char *bal_qmp_listing_path(const bal_qmp_listing_t *l, const char *name, bal_error_t *err);

/* The instance of the socket file st describes. */
uint64_t bal_qmp_listing_instance(const struct stat *st);

#endif
