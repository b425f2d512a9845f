#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "agent/bal_log.h"

void bal_log(const bal_logger_t *logger, bal_log_level_t level, const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    if (logger == NULL || logger->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    logger->log(logger->opaque, level, message);
}
