/* See tt_qemu_reply.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tt_qemu_reply.h"
#include "virtio/vb_stats.h"

char *tt_qemu_reply(const char *format, ...)
{
    char *s = NULL;
    va_list ap;

    va_start(ap, format);
    if (vasprintf(&s, format, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

char *tt_qemu_reply_stats(const vb_device_t *dev)
{
    vb_guest_stats_t gs;
    char buf[2048];
    size_t len = 0;

    vb_device_get_stats(dev, &gs);
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "{\"return\": {\"stats\": {");
    for (unsigned i = 0; i < gs.count; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\"%s\": %llu", i ? ", " : "",
                                vb_stat_name(i), (unsigned long long)gs.values[i]);
    snprintf(buf + len, sizeof(buf) - len, "}, \"last-update\": %lld}}", (long long)gs.last_update);
    return tt_qemu_reply("%s", buf);
}

char *tt_qemu_reply_not_found(const char *path)
{
    return tt_qemu_reply("{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device '%s' not found\"}}", path);
}
