#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_json.h"
#include "agent/bal_qmp.h"

/* Far longer than any real QOM path; keeps messages that quote a path readable. */
#define MAX_PATH_LEN 1024

static const char balloon_type_prefix[] = "child<virtio-balloon-";

int bal_qmp_check_path(const char *path, bal_error_t *err)
{
    size_t len;

    if (path == NULL || path[0] == '\0')
        return bal_error_set(err, -EINVAL, "The QOM path is empty.");
    len = strlen(path);
    if (len > MAX_PATH_LEN)
        return bal_error_set(err, -EINVAL, "The QOM path is %zu characters long, more than the %d allowed.",
                             len, MAX_PATH_LEN);
    /* Checked before the path is quoted in any message, so that messages stay printable. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c > 0x7e)
            return bal_error_set(err, -EINVAL,
                                 "The QOM path holds a non-printable character at offset %zu.", i);
    }
    if (strpbrk(path, "\"\\") != NULL)
        return bal_error_set(err, -EINVAL, "The QOM path '%s' holds a quote or a backslash.", path);
    if (path[0] != '/')
        return bal_error_set(err, -EINVAL, "The QOM path '%s' does not start with '/'.", path);
    return 0;
}

/* QMP command and QOM property names: lower-case words joined by '-' or '_'. */
static bool valid_name(const char *name)
{
    return name != NULL && name[0] != '\0' &&
           name[strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_")] == '\0';
}

/* Copies src to dst with its NUL; returns the end of what was copied (its NUL). */
static char *put(char *dst, const char *src)
{
    size_t n = strlen(src);

    memcpy(dst, src, n + 1);
    return dst + n;
}

/* {"execute": command[, "arguments": {"path": path[, "property": property[, "value": *value]]}]}
 * Written directly, byte for byte what yajl_gen (no beautify, no escaped '/') makes of it: every
 * string is checked first to need no escape at all (names are [a-z0-9_-], a path is printable ASCII
 * with no quote or backslash), and an integer is "%lld". yajl_gen cost about 9K instructions per
 * command, a third of the floor's whole command; the pieces are copied, since even snprintf of the
 * whole command cost 1.3K. */
static int build(const char *command, const char *path, const char *property, const int64_t *value,
                 char **out, bal_error_t *err)
{
    char num[24] = "";
    size_t len;
    char *s, *p;
    int ret;

    if (!valid_name(command))
        return bal_error_set(err, -EINVAL,
                             "The QMP command name must be lower-case letters, digits, '-' and '_'.");
    if (property != NULL && !valid_name(property))
        return bal_error_set(err, -EINVAL,
                             "The QOM property name must be lower-case letters, digits, '-' and '_'.");
    if (path != NULL && (ret = bal_qmp_check_path(path, err)) < 0)
        return ret;
    if (value != NULL)
        snprintf(num, sizeof(num), "%lld", (long long)*value);

    /* the longest: {"execute":"C","arguments":{"path":"P","property":"R","value":N}} */
    len = strlen(command) + (path != NULL ? strlen(path) : 0) + (property != NULL ? strlen(property) : 0) +
          strlen(num) + 80;
    s = malloc(len);
    if (s == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory while building a QMP command.");
    p = put(s, "{\"execute\":\"");
    p = put(p, command);
    p = put(p, "\"");
    if (path != NULL) {
        p = put(p, ",\"arguments\":{\"path\":\"");
        p = put(p, path);
        p = put(p, "\"");
        if (property != NULL) {
            p = put(p, ",\"property\":\"");
            p = put(p, property);
            p = put(p, "\"");
            if (value != NULL) {
                p = put(p, ",\"value\":");
                p = put(p, num);
            }
        }
        p = put(p, "}");
    }
    put(p, "}");
    *out = s;
    return 0;
}

int bal_qmp_build_qom_get(const char *path, const char *property, char **out, bal_error_t *err)
{
    if (path == NULL)
        return bal_qmp_check_path(path, err);
    if (property == NULL)
        return bal_error_set(err, -EINVAL, "The QOM property name is missing.");
    return build("qom-get", path, property, NULL, out, err);
}

int bal_qmp_build_qom_set_int(const char *path, const char *property, int64_t value, char **out,
                              bal_error_t *err)
{
    if (path == NULL)
        return bal_qmp_check_path(path, err);
    if (property == NULL)
        return bal_error_set(err, -EINVAL, "The QOM property name is missing.");
    return build("qom-set", path, property, &value, out, err);
}

int bal_qmp_build_qom_list(const char *path, char **out, bal_error_t *err)
{
    if (path == NULL)
        return bal_qmp_check_path(path, err);
    return build("qom-list", path, NULL, NULL, out, err);
}

/* Parses reply and finds its "return" value. Returns 0 with the tree in *root (to free) and the value
 * in *ret, or an error; on error *root is freed already. */
static int parse_reply(const char *reply, size_t len, yajl_val *root, yajl_val *ret_val, bal_error_t *err)
{
    yajl_val tree = NULL, error, v;
    int ret;

    ret = bal_json_parse(reply, len, BAL_QMP_MAX_REPLY, &tree, err);
    if (ret < 0)
        return ret;
    if (!YAJL_IS_OBJECT(tree)) {
        ret = bal_error_set(err, -EPROTO, "The QMP reply is not a JSON object.");
        goto fail;
    }
    ret = bal_json_get(tree, "error", &error, err);
    if (ret == 0) {
        const char *cls = NULL, *desc = NULL;

        if (!YAJL_IS_OBJECT(error)) {
            ret = bal_error_set(err, -EPROTO, "The QMP reply's 'error' is not an object.");
            goto fail;
        }
        if ((ret = bal_json_get(error, "class", &v, err)) == -EPROTO)
            goto fail;
        if (ret == 0 && YAJL_IS_STRING(v))
            cls = YAJL_GET_STRING(v);
        if ((ret = bal_json_get(error, "desc", &v, err)) == -EPROTO)
            goto fail;
        if (ret == 0 && YAJL_IS_STRING(v))
            desc = YAJL_GET_STRING(v);
        if (desc == NULL || desc[0] == '\0')
            desc = "QEMU answered with an error that has no description.";
        ret = bal_error_set_qmp(err, -EREMOTEIO, cls != NULL ? cls : "", desc);
        goto fail;
    }
    if (ret != -ENOENT)
        goto fail;
    ret = bal_json_get(tree, "return", ret_val, err);
    if (ret == -ENOENT)
        ret = bal_error_set(err, -EPROTO, "The QMP reply holds neither 'return' nor 'error'.");
    if (ret < 0)
        goto fail;
    *root = tree;
    return 0;
fail:
    bal_json_free(tree);
    return ret;
}

int bal_qmp_parse_empty(const char *reply, size_t len, bal_error_t *err)
{
    yajl_val root, rv;
    int ret;

    ret = parse_reply(reply, len, &root, &rv, err);
    if (ret < 0)
        return ret;
    /* QEMU answers {} today; members it might add later are no reason to fail. */
    if (!YAJL_IS_OBJECT(rv))
        ret = bal_error_set(err, -EPROTO, "The QMP reply's 'return' is not an object.");
    bal_json_free(root);
    return ret;
}

int bal_qmp_parse_int(const char *reply, size_t len, int64_t *out, bal_error_t *err)
{
    yajl_val root, rv;
    uint64_t mag;
    bool neg;
    int ret;

    ret = parse_reply(reply, len, &root, &rv, err);
    if (ret < 0)
        return ret;
    if (bal_json_integer(rv, &neg, &mag) < 0 || (!neg && mag > INT64_MAX) ||
        (neg && mag > (uint64_t)INT64_MAX + 1)) {
        ret = bal_error_set(err, -EPROTO, "The QMP reply's 'return' is not a 64-bit integer.");
        goto out;
    }
    if (!neg)
        *out = (int64_t)mag;
    else if (mag == (uint64_t)INT64_MAX + 1)
        *out = INT64_MIN;
    else
        *out = -(int64_t)mag;
out:
    bal_json_free(root);
    return ret;
}

/* QEMU 2.x printed an unset stat as -1, later versions as (uint64_t)-1; anything else that is not an
 * unsigned integer is mistyped and read as unset as well. So is a value above INT64_MAX, which no
 * guest can report: memory in bytes is below 2^57 (x86's 5-level paging), and a counter of events
 * since boot would need thousands of years at a billion a second to get there. That is also the
 * largest counter collectd's derive_t holds, so the plugin and balloonctl show the same. */
static bal_stat_value_t stat_value(yajl_val v)
{
    bal_stat_value_t sv = {.set = false, .value = 0};
    uint64_t mag;
    bool neg;

    if (bal_json_integer(v, &neg, &mag) < 0 || neg || mag > (uint64_t)INT64_MAX)
        return sv;
    sv.set = true;
    sv.value = mag;
    return sv;
}

int bal_qmp_parse_guest_stats(const char *reply, size_t len, bal_stats_t *out, bal_error_t *err)
{
    bool seen[BAL_STAT_COUNT] = {false};
    yajl_val root, rv, stats, lu;
    bal_stats_t tmp;
    uint64_t mag;
    bool neg;
    int ret;

    ret = parse_reply(reply, len, &root, &rv, err);
    if (ret < 0)
        return ret;
    bal_stats_clear(&tmp);
    if (!YAJL_IS_OBJECT(rv)) {
        ret = bal_error_set(err, -EPROTO, "The guest-stats reply's 'return' is not an object.");
        goto out;
    }
    ret = bal_json_get(rv, "stats", &stats, err);
    if (ret == -ENOENT || (ret == 0 && !YAJL_IS_OBJECT(stats)))
        ret = bal_error_set(err, -EPROTO, "The guest-stats reply has no 'stats' object.");
    if (ret < 0)
        goto out;
    ret = bal_json_get(rv, "last-update", &lu, err);
    if (ret == -ENOENT)
        ret = bal_error_set(err, -EPROTO, "The guest-stats reply has no 'last-update'.");
    if (ret < 0)
        goto out;
    if (bal_json_integer(lu, &neg, &mag) < 0 || (neg && mag != 0) || mag > INT64_MAX) {
        ret = bal_error_set(err, -EPROTO,
                            "The guest-stats reply's 'last-update' is not a non-negative integer.");
        goto out;
    }
    tmp.last_update = (int64_t)mag;

    for (size_t i = 0; i < stats->u.object.len; i++) {
        int idx = bal_stat_from_qmp_name(stats->u.object.keys[i]);

        if (idx < 0)
            continue; /* a stat newer than us */
        if (seen[idx]) {
            ret = bal_error_set(err, -EPROTO, "The guest-stats reply holds the key '%s' more than once.",
                                stats->u.object.keys[i]);
            goto out;
        }
        seen[idx] = true;
        tmp.known++;
        tmp.stat[idx] = stat_value(stats->u.object.values[i]);
    }
    *out = tmp;
out:
    bal_json_free(root);
    return ret;
}

static bool is_balloon_type(const char *type)
{
    size_t plen = sizeof(balloon_type_prefix) - 1, len = strlen(type);

    return len > plen + 1 && strncmp(type, balloon_type_prefix, plen) == 0 && type[len - 1] == '>';
}

int bal_qmp_find_balloon(const char *reply, size_t len, const char *parent, char **path, bal_error_t *err)
{
    yajl_val root, rv;
    int ret;

    ret = bal_qmp_check_path(parent, err);
    if (ret < 0)
        return ret;
    ret = parse_reply(reply, len, &root, &rv, err);
    if (ret < 0)
        return ret;
    if (!YAJL_IS_ARRAY(rv)) {
        ret = bal_error_set(err, -EPROTO, "The qom-list reply's 'return' is not an array.");
        goto out;
    }
    for (size_t i = 0; i < rv->u.array.len; i++) {
        yajl_val item = rv->u.array.values[i], name, type;
        size_t plen = strlen(parent);
        bool slash = plen > 0 && parent[plen - 1] == '/';
        char *p;

        const char *nm;

        /* Items we cannot read are not ours to judge: only a well-formed balloon entry counts. */
        if (bal_json_get(item, "name", &name, NULL) < 0 || bal_json_get(item, "type", &type, NULL) < 0 ||
            !YAJL_IS_STRING(name) || !YAJL_IS_STRING(type) || !is_balloon_type(type->u.string))
            continue;
        nm = name->u.string;
        if (nm[0] == '\0' || strchr(nm, '/') != NULL)
            continue;
        p = malloc(plen + 1 + strlen(nm) + 1);
        if (p == NULL) {
            ret = bal_error_set(err, -ENOMEM, "Out of memory while reading a qom-list reply.");
            goto out;
        }
        strcpy(p, parent);
        if (!slash)
            strcat(p, "/");
        strcat(p, nm);
        if (bal_qmp_check_path(p, NULL) < 0) {
            free(p); /* a name we could not send back safely */
            continue;
        }
        *path = p;
        goto out;
    }
    ret = bal_error_set(err, -ENOENT, "No virtio-balloon device is listed under the QOM path '%s'.", parent);
out:
    bal_json_free(root);
    return ret;
}
