#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/bal_error.h"

int bal_error_set(bal_error_t *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        err->qmp_class[0] = '\0';
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

int bal_error_set_qmp(bal_error_t *err, int code, const char *qmp_class, const char *desc)
{
    if (err != NULL) {
        err->code = code;
        snprintf(err->qmp_class, sizeof(err->qmp_class), "%s", qmp_class != NULL ? qmp_class : "");
        snprintf(err->message, sizeof(err->message), "%s", desc != NULL ? desc : "");
    }
    return code;
}

void bal_error_clear(bal_error_t *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
}
