/* See bp_fdlimit.h. */
#include "plugin/bp_fdlimit.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "core/daemon/plugin.h"

/* Far above any number of guests, and Linux's default fs.nr_open: the soft limit is not raised
 * beyond it even when the hard limit is larger. */
#define BP_FDLIMIT_CEILING (UINT64_C(1) << 20)

/* Descriptors open in this process now; an estimate when /proc cannot say. */
static long bp_open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    long n = 0;

    if (d == NULL)
        return 64;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the one reading the directory */
}

void bp_fdlimit_apply(size_t n_blocks, bp_fdlimit_plan_t *out)
{
    struct rlimit rl;
    uint64_t target, left;

    memset(out, 0, sizeof(*out));
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        rl.rlim_cur = 1024;
        rl.rlim_max = 1024;
    }
    out->soft_before = out->soft = rl.rlim_cur;
    out->hard = rl.rlim_max;
    target = out->hard < BP_FDLIMIT_CEILING ? out->hard : BP_FDLIMIT_CEILING;
    if (target > out->soft) {
        rl.rlim_cur = (rlim_t)target;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            out->soft = target;
        else
            out->raise_error = errno;
    }
    out->open = bp_open_descriptors();
    out->reserve = out->soft / 8 > BP_FDLIMIT_RESERVE_MIN ? out->soft / 8 : BP_FDLIMIT_RESERVE_MIN;
    left = out->soft > (uint64_t)out->open + out->reserve ? out->soft - (uint64_t)out->open - out->reserve : 0;
    out->share = n_blocks > 0 ? (size_t)(left / n_blocks) : 0;
    if (out->share == 0)
        out->share = 1;

    if (out->raise_error != 0)
        WARNING("balloon plugin: The open-files limit could not be raised from %llu to its hard limit %llu: %s. "
                "The QMP connections of each <Plugin balloon> block on QMP sockets are kept within %zu "
                "descriptors, leaving at least %llu to the rest of collectd; domains beyond that are connected "
                "for each read.",
                (unsigned long long)out->soft_before, (unsigned long long)out->hard, strerror(out->raise_error),
                out->share, (unsigned long long)out->reserve);
    else if (out->soft > out->soft_before)
        INFO("balloon plugin: The open-files limit was raised from %llu to %llu (the hard limit is %llu). The QMP "
             "connections of each <Plugin balloon> block on QMP sockets are kept within %zu descriptors, leaving "
             "at least %llu to the rest of collectd; domains beyond that are connected for each read.",
             (unsigned long long)out->soft_before, (unsigned long long)out->soft, (unsigned long long)out->hard,
             out->share, (unsigned long long)out->reserve);
    else
        INFO("balloon plugin: The open-files limit is %llu, its hard limit. The QMP connections of each <Plugin "
             "balloon> block on QMP sockets are kept within %zu descriptors, leaving at least %llu to the rest "
             "of collectd; domains beyond that are connected for each read.",
             (unsigned long long)out->soft, out->share, (unsigned long long)out->reserve);
}
