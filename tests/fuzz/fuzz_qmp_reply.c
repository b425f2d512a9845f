/* Fuzz target: every QMP reply parser of agent/bal_qmp.h on the same bytes, as a hostile or broken
 * QEMU (or libvirt passing its reply through) could send them. Checks the header's contract beyond
 * "no crash": the documented return codes only, err filled on failure, outputs untouched on failure,
 * the parsers agreeing on what is an error reply, and well-formed results on success. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_qmp.h"
#include "tests/fuzz/fuzz.h"

/* A failure must come with a code equal to the return value and a printable, terminated sentence. */
static void check_error(int ret, const bal_error_t *err)
{
    size_t len = strnlen(err->message, sizeof(err->message));

    FUZZ_ASSERT(err->code == ret);
    FUZZ_ASSERT(len > 0 && len < sizeof(err->message));
    FUZZ_ASSERT(strnlen(err->qmp_class, sizeof(err->qmp_class)) < sizeof(err->qmp_class));
}

static bool common_code(int ret)
{
    return ret == 0 || ret == -EREMOTEIO || ret == -EPROTO || ret == -EMSGSIZE || ret == -ENOMEM;
}

static void check_find(const char *reply, size_t len, const char *parent, int expect_common)
{
    bal_error_t err = {0};
    char *path = (char *)"untouched";
    int ret = bal_qmp_find_balloon(reply, len, parent, &path, &err);

    FUZZ_ASSERT(common_code(ret) || ret == -ENOENT);
    if (ret < 0) {
        check_error(ret, &err);
        FUZZ_ASSERT(strcmp(path, "untouched") == 0);
        /* the reply's own verdict (error reply, too large) does not depend on the parent */
        if (expect_common == -EREMOTEIO || expect_common == -EMSGSIZE)
            FUZZ_ASSERT(ret == expect_common);
        return;
    }
    /* parent + '/' (unless it ends in one) + a non-empty name without '/', and safe to send back */
    size_t plen = strlen(parent);
    FUZZ_ASSERT(strncmp(path, parent, plen) == 0);
    const char *name = path + plen;
    if (parent[plen - 1] != '/') {
        FUZZ_ASSERT(name[0] == '/');
        name++;
    }
    FUZZ_ASSERT(name[0] != '\0' && strchr(name, '/') == NULL);
    FUZZ_ASSERT(bal_qmp_check_path(path, NULL) == 0);
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *reply = (const char *)data;
    bal_error_t e_empty = {0}, e_int = {0}, e_stats = {0};
    bal_stats_t stats, before;
    int64_t i64 = 0x5a5a5a5a;
    int r_empty, r_int, r_stats;

    memset(&stats, 0xa5, sizeof(stats));
    memcpy(&before, &stats, sizeof(stats));

    r_empty = bal_qmp_parse_empty(reply, size, &e_empty);
    r_int = bal_qmp_parse_int(reply, size, &i64, &e_int);
    r_stats = bal_qmp_parse_guest_stats(reply, size, &stats, &e_stats);

    FUZZ_ASSERT(common_code(r_empty) && common_code(r_int) && common_code(r_stats));
    if (r_empty < 0)
        check_error(r_empty, &e_empty);
    if (r_int < 0) {
        check_error(r_int, &e_int);
        FUZZ_ASSERT(i64 == 0x5a5a5a5a);
    }
    if (r_stats < 0) {
        check_error(r_stats, &e_stats);
        FUZZ_ASSERT(memcmp(&stats, &before, sizeof(stats)) == 0);
    } else {
        FUZZ_ASSERT(stats.known <= BAL_STAT_COUNT);
        FUZZ_ASSERT(stats.last_update >= 0);
        for (int i = 0; i < BAL_STAT_COUNT; i++) {
            FUZZ_ASSERT(stats.stat[i].set == true || stats.stat[i].set == false);
            FUZZ_ASSERT(!stats.stat[i].set || stats.stat[i].value <= (uint64_t)INT64_MAX);
        }
    }

    /* Size and error replies are judged before the shape of 'return': every parser agrees. */
    FUZZ_ASSERT((r_empty == -EMSGSIZE) == (size > BAL_QMP_MAX_REPLY));
    FUZZ_ASSERT((r_empty == -EMSGSIZE) == (r_int == -EMSGSIZE));
    FUZZ_ASSERT((r_empty == -EREMOTEIO) == (r_int == -EREMOTEIO));
    FUZZ_ASSERT((r_empty == -EREMOTEIO) == (r_stats == -EREMOTEIO));
    if (r_empty == -EREMOTEIO) {
        FUZZ_ASSERT(strcmp(e_empty.qmp_class, e_stats.qmp_class) == 0);
        FUZZ_ASSERT(strcmp(e_empty.message, e_stats.message) == 0);
    }
    /* A reply taken as an object (answered or an error) is one object and nothing after it but
     * whitespace: read here without yajl, whose own end-of-text handling is what is checked. */
    if (r_empty == 0 || r_int == 0 || r_stats == 0 || r_empty == -EREMOTEIO) {
        size_t end = size;
        while (end > 0 && (reply[end - 1] == ' ' || reply[end - 1] == '\t' || reply[end - 1] == '\r' ||
                           reply[end - 1] == '\n'))
            end--;
        FUZZ_ASSERT(end > 0 && reply[end - 1] == '}');
    }
    /* one reply cannot be both an empty object and an integer */
    FUZZ_ASSERT(!(r_empty == 0 && r_int == 0));

    check_find(reply, size, "/machine/peripheral", r_empty);
    check_find(reply, size, "/machine/peripheral-anon/", r_empty);
    return 0;
}
