/* Fuzz target: the transport boundary (bal_transport_execute's allow-list), the one place where a
 * command is let out of the agent. Two modes, chosen by the first byte:
 *   - raw: the rest is the command text. Whatever is let through must, read again by yajl's own tree
 *     parser here (an independent reading of the same text), be exactly one of the allowed commands
 *     with exactly its arguments; whatever is refused must be refused with -EPERM and never reach
 *     the transport.
 *   - built: the rest is a path, a property choice and a value for the command builders; every
 *     command a builder makes must be let through unchanged. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "agent/bal_qmp.h"
#include "agent/bal_transport.h"
#include "tests/fuzz/fuzz.h"
#include "tests/tt_fake.h"

static const bal_domain_info_t dom = {.name = (char *)"fuzz"};

/* The value of key in obj, which must appear exactly once; NULL otherwise. */
static yajl_val member(yajl_val obj, const char *key)
{
    yajl_val found = NULL;

    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) != 0)
            continue;
        FUZZ_ASSERT(found == NULL); /* a duplicate key was let through */
        found = obj->u.object.values[i];
    }
    return found;
}

static bool printable_path(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *c = p; *c != '\0'; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
            return false;
    return true;
}

/* What was let through, read independently: aborts unless it is one of the allowed commands. */
static void check_allowed(const char *command)
{
    char ebuf[128];
    yajl_val tree = yajl_tree_parse(command, ebuf, sizeof(ebuf));
    yajl_val exec, args;
    const char *cmd;
    size_t want_args;

    /* one object and nothing after it but whitespace, read without yajl (whose end-of-text handling
     * is part of what is checked) */
    size_t end = strlen(command);
    while (end > 0 && strchr(" \t\r\n", command[end - 1]) != NULL)
        end--;
    FUZZ_ASSERT(end > 0 && command[end - 1] == '}');
    FUZZ_ASSERT(tree != NULL);
    FUZZ_ASSERT(YAJL_IS_OBJECT(tree));
    for (size_t i = 0; i < tree->u.object.len; i++)
        FUZZ_ASSERT(strcmp(tree->u.object.keys[i], "execute") == 0 ||
                    strcmp(tree->u.object.keys[i], "arguments") == 0);
    exec = member(tree, "execute");
    args = member(tree, "arguments");
    FUZZ_ASSERT(exec != NULL && YAJL_IS_STRING(exec));
    cmd = exec->u.string;
    if (strcmp(cmd, "qmp_capabilities") == 0) {
        want_args = 0;
    } else if (strcmp(cmd, "qom-list") == 0) {
        want_args = 1;
    } else if (strcmp(cmd, "qom-get") == 0) {
        want_args = 2;
    } else {
        FUZZ_ASSERT(strcmp(cmd, "qom-set") == 0);
        want_args = 3;
    }
    if (args == NULL) {
        FUZZ_ASSERT(want_args == 0);
        goto out;
    }
    FUZZ_ASSERT(YAJL_IS_OBJECT(args));
    FUZZ_ASSERT(args->u.object.len == want_args);
    if (want_args >= 1) {
        yajl_val path = member(args, "path");
        FUZZ_ASSERT(path != NULL && YAJL_IS_STRING(path) && printable_path(path->u.string));
    }
    if (want_args >= 2) {
        yajl_val prop = member(args, "property");
        FUZZ_ASSERT(prop != NULL && YAJL_IS_STRING(prop));
        FUZZ_ASSERT(strcmp(prop->u.string, BAL_QMP_PROP_STATS) == 0 ||
                    strcmp(prop->u.string, BAL_QMP_PROP_INTERVAL) == 0);
    }
    if (want_args == 3) {
        yajl_val value = member(args, "value");
        FUZZ_ASSERT(value != NULL && YAJL_IS_NUMBER(value));
        /* an integer in JSON's syntax: what QEMU's integer visitor takes */
        const char *s = value->u.number.r;
        FUZZ_ASSERT(s[strspn(s, "-0123456789")] == '\0');
    }
out:
    yajl_tree_free(tree);
}

static int execute(tt_recorder_t *f, const char *command, bal_error_t *err)
{
    char *reply = (char *)"untouched";
    unsigned before = f->executed;
    int ret = bal_transport_execute(&f->tt.base, &dom, command, &reply, err);

    if (ret == 0) {
        FUZZ_ASSERT(f->executed == before + 1);
        FUZZ_ASSERT(f->last == command); /* passed on as it was */
        free(reply);
        return 0;
    }
    FUZZ_ASSERT(ret == -EPERM || ret == -ENOMEM);
    FUZZ_ASSERT(err->code == ret && err->message[0] != '\0');
    FUZZ_ASSERT(f->executed == before);
    FUZZ_ASSERT(strcmp(reply, "untouched") == 0);
    return ret;
}

static void fuzz_raw(tt_recorder_t *f, const uint8_t *data, size_t size)
{
    bal_error_t err = {0};
    char *command = malloc(size + 1);

    FUZZ_ASSERT(command != NULL);
    memcpy(command, data, size);
    command[size] = '\0';
    if (execute(f, command, &err) == 0)
        check_allowed(command);
    free(command);
}

/* [property choice][8 bytes of value][path...] */
static void fuzz_built(tt_recorder_t *f, const uint8_t *data, size_t size)
{
    static const char *const props[] = {BAL_QMP_PROP_STATS, BAL_QMP_PROP_INTERVAL};
    bal_error_t err = {0};
    const char *prop;
    int64_t value = 0;
    char *path, *cmd = NULL;

    if (size < 9)
        return;
    prop = props[data[0] & 1];
    memcpy(&value, data + 1, sizeof(value));
    path = malloc(size - 9 + 1);
    FUZZ_ASSERT(path != NULL);
    memcpy(path, data + 9, size - 9);
    path[size - 9] = '\0';

    if (bal_qmp_build_qom_get(path, prop, &cmd, &err) == 0) {
        FUZZ_ASSERT(execute(f, cmd, &err) == 0);
        check_allowed(cmd);
        free(cmd);
        FUZZ_ASSERT(bal_qmp_build_qom_set_int(path, prop, value, &cmd, &err) == 0);
        FUZZ_ASSERT(execute(f, cmd, &err) == 0);
        check_allowed(cmd);
        free(cmd);
        FUZZ_ASSERT(bal_qmp_build_qom_list(path, &cmd, &err) == 0);
        FUZZ_ASSERT(execute(f, cmd, &err) == 0);
        free(cmd);
    } else {
        /* a path the builders refuse is refused everywhere */
        FUZZ_ASSERT(bal_qmp_check_path(path, NULL) < 0);
        FUZZ_ASSERT(bal_qmp_build_qom_list(path, &cmd, NULL) < 0);
    }
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tt_recorder_t f;

    tt_recorder_init(&f);
    if (size == 0)
        return 0;
    if (data[0] == 'B')
        fuzz_built(&f, data + 1, size - 1);
    else
        fuzz_raw(&f, data, size);
    return 0;
}
