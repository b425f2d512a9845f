#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_json.h"
#include "agent/bal_qmp.h"
#include "agent/bal_transport.h"

/* Our commands are a few hundred bytes; anything near this is not ours. */
#define MAX_COMMAND 4096

void bal_domain_list_free(bal_domain_list_t *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].name);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

int bal_transport_list_domains(bal_transport_t *t, bal_domain_list_t *out, bal_error_t *err)
{
    if (t == NULL || out == NULL)
        return bal_error_set(err, -EINVAL, "No transport was given to list domains with.");
    return t->ops->list_domains(t, out, err);
}

/* Only the printable, short strings are quoted back in messages. */
static const char *shown(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 64)
        return "(not shown)";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return "(not shown)";
    return s;
}

static bool is_balloon_property(const char *p)
{
    return strcmp(p, BAL_QMP_PROP_STATS) == 0 || strcmp(p, BAL_QMP_PROP_INTERVAL) == 0;
}

/* Keeps the sentence a helper wrote, but as a refusal. */
static int refused(bal_error_t *err)
{
    if (err != NULL)
        err->code = -EPERM;
    return -EPERM;
}

/* The arguments a command may carry: each named member exactly once, nothing else. */
enum { ARG_PATH = 1, ARG_PROPERTY = 2, ARG_VALUE = 4 };

static int check_arguments(const char *cmd, yajl_val args, unsigned wanted, bal_error_t *err)
{
    static const char *const names[] = {"path", "property", "value"};
    yajl_val v;
    int ret;

    if (args == NULL) {
        if (wanted == 0)
            return 0;
        return bal_error_set(err, -EPERM, "The QMP command '%s' has no arguments.", cmd);
    }
    if (!YAJL_IS_OBJECT(args))
        return bal_error_set(err, -EPERM, "The QMP command's 'arguments' is not an object.");
    for (size_t i = 0; i < args->u.object.len; i++) {
        const char *key = args->u.object.keys[i];
        bool ok = false;

        for (unsigned n = 0; n < 3; n++)
            if ((wanted & (1u << n)) && strcmp(key, names[n]) == 0)
                ok = true;
        if (!ok)
            return bal_error_set(err, -EPERM, "The QMP command '%s' carries the argument '%s', which is not allowed.",
                                 cmd, shown(key));
    }
    for (unsigned n = 0; n < 3; n++) {
        if (!(wanted & (1u << n)))
            continue;
        ret = bal_json_get(args, names[n], &v, err);
        if (ret == -ENOENT)
            return bal_error_set(err, -EPERM, "The QMP command '%s' lacks the argument '%s'.", cmd, names[n]);
        if (ret < 0)
            return refused(err);
        if ((1u << n) == ARG_VALUE) {
            bool neg;
            uint64_t mag;
            if (bal_json_integer(v, &neg, &mag) < 0)
                return bal_error_set(err, -EPERM, "The QMP command '%s' sets a value that is not an integer.",
                                     cmd);
            continue;
        }
        if (!YAJL_IS_STRING(v))
            return bal_error_set(err, -EPERM, "The QMP command '%s' has a '%s' that is not a string.", cmd,
                                 names[n]);
        if ((1u << n) == ARG_PATH && bal_qmp_check_path(YAJL_GET_STRING(v), err) < 0)
            return refused(err);
        if ((1u << n) == ARG_PROPERTY && !is_balloon_property(YAJL_GET_STRING(v)))
            return bal_error_set(err, -EPERM,
                                 "The QMP command '%s' names the property '%s', which is not the balloon's "
                                 "guest-stats or guest-stats-polling-interval.",
                                 cmd, shown(YAJL_GET_STRING(v)));
    }
    return 0;
}

/* The allow-list, on the parsed command: what QEMU will execute is what we checked. */
static int check_command(const char *command, bal_error_t *err)
{
    yajl_val tree = NULL, exec, args = NULL;
    const char *cmd;
    unsigned wanted;
    int ret;

    ret = bal_json_parse(command, strlen(command), MAX_COMMAND, &tree, err);
    if (ret < 0)
        return ret == -ENOMEM ? ret : refused(err);
    if (!YAJL_IS_OBJECT(tree)) {
        ret = bal_error_set(err, -EPERM, "The QMP command is not a JSON object.");
        goto out;
    }
    for (size_t i = 0; i < tree->u.object.len; i++) {
        const char *key = tree->u.object.keys[i];
        if (strcmp(key, "execute") != 0 && strcmp(key, "arguments") != 0) {
            ret = bal_error_set(err, -EPERM,
                                "The QMP command holds the member '%s'; only 'execute' and 'arguments' are "
                                "allowed.",
                                shown(key));
            goto out;
        }
    }
    ret = bal_json_get(tree, "execute", &exec, err);
    if (ret == -ENOENT)
        ret = bal_error_set(err, -EPERM, "The QMP command has no 'execute'.");
    if (ret == 0 && !YAJL_IS_STRING(exec))
        ret = bal_error_set(err, -EPERM, "The QMP command's 'execute' is not a string.");
    if (ret < 0)
        goto refuse;
    ret = bal_json_get(tree, "arguments", &args, err);
    if (ret == -ENOENT)
        args = NULL;
    else if (ret < 0)
        goto refuse;
    cmd = YAJL_GET_STRING(exec);
    if (strcmp(cmd, "qmp_capabilities") == 0) {
        wanted = 0;
    } else if (strcmp(cmd, "qom-list") == 0) {
        wanted = ARG_PATH;
    } else if (strcmp(cmd, "qom-get") == 0) {
        wanted = ARG_PATH | ARG_PROPERTY;
    } else if (strcmp(cmd, "qom-set") == 0) {
        wanted = ARG_PATH | ARG_PROPERTY | ARG_VALUE;
    } else {
        ret = bal_error_set(err, -EPERM, "The QMP command '%s' is not one the agent may send.", shown(cmd));
        goto out;
    }
    ret = check_arguments(cmd, args, wanted, err);
refuse:
    if (ret < 0 && ret != -EPERM)
        ret = refused(err);
out:
    bal_json_free(tree);
    return ret;
}

/* The last commands this thread let through, byte for byte. The agent sends the same few commands to
 * every domain (a qom-get of guest-stats of one path, mostly), and parsing each one again for the
 * allow-list cost a fifth of the agent's instructions per command over QMP sockets, as much as
 * parsing its reply. check_command's verdict depends on the command's bytes alone, so an exact copy
 * of an allowed command is allowed. Per thread: no lock, and nothing to free. */
#define MEMO_SLOTS 4
#define MEMO_MAX 256 /* longer commands are checked every time */

static _Thread_local struct {
    size_t len; /* 0: empty */
    char text[MEMO_MAX];
} memo[MEMO_SLOTS];
static _Thread_local unsigned memo_next;

static bool memo_find(const char *command, size_t len)
{
    /* An unused slot has length 0: the empty command would match it without being checked. */
    if (len == 0)
        return false;
    for (unsigned i = 0; i < MEMO_SLOTS; i++)
        if (memo[i].len == len && memcmp(memo[i].text, command, len) == 0)
            return true;
    return false;
}

static void memo_add(const char *command, size_t len)
{
    if (len == 0 || len > MEMO_MAX)
        return;
    memcpy(memo[memo_next].text, command, len);
    memo[memo_next].len = len;
    memo_next = (memo_next + 1) % MEMO_SLOTS;
}

int bal_transport_execute_watched(bal_transport_t *t, const bal_domain_info_t *dom, const char *command,
                                  char **reply, const bal_call_watch_t *watch, bal_error_t *err)
{
    size_t len;
    int ret;

    if (t == NULL || dom == NULL || command == NULL || reply == NULL)
        return bal_error_set(err, -EINVAL, "A QMP command was sent without a transport, domain or command.");
    len = strlen(command);
    if (!memo_find(command, len)) {
        ret = check_command(command, err);
        if (ret < 0)
            return ret;
        memo_add(command, len);
    }
    if (watch != NULL && t->ops->execute_watched != NULL)
        return t->ops->execute_watched(t, dom, command, reply, watch, err);
    return t->ops->execute(t, dom, command, reply, err);
}

int bal_transport_execute(bal_transport_t *t, const bal_domain_info_t *dom, const char *command,
                          char **reply, bal_error_t *err)
{
    return bal_transport_execute_watched(t, dom, command, reply, NULL, err);
}

int bal_transport_refuse_pending(const char *domain, int timeout_ms, bal_error_t *err)
{
    return bal_error_set(err, -ETIMEDOUT,
                         "The previous QMP command for domain '%s' has not returned after the %d ms timeout; no "
                         "other is sent until it does.",
                         domain, timeout_ms);
}

bool bal_transport_take_changes(bal_transport_t *t)
{
    if (t == NULL || t->ops->take_changes == NULL)
        return false;
    return t->ops->take_changes(t);
}

void bal_transport_batch_begin(bal_transport_t *t)
{
    if (t != NULL && t->ops->batch != NULL)
        t->ops->batch(t, true);
}

void bal_transport_batch_end(bal_transport_t *t)
{
    if (t != NULL && t->ops->batch != NULL)
        t->ops->batch(t, false);
}

void bal_transport_free(bal_transport_t *t)
{
    if (t == NULL)
        return;
    t->ops->free(t);
}
