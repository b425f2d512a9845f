/* The agent never logs by itself: its owner injects a logger (the plugin wires it to collectd's log,
 * balloonctl to stderr). */
#ifndef BAL_LOG_H
#define BAL_LOG_H

typedef enum bal_log_level {
    BAL_LOG_ERR,
    BAL_LOG_WARNING,
    BAL_LOG_NOTICE,
    BAL_LOG_INFO,
    BAL_LOG_DEBUG,
} bal_log_level_t;

typedef struct bal_logger {
    /* Called with a complete message (no trailing newline), possibly from several threads at once. */
    void (*log)(void *opaque, bal_log_level_t level, const char *message);
    void *opaque;
} bal_logger_t;

/* Format and pass to the logger; a NULL logger or NULL log callback drops the message. */
void bal_log(const bal_logger_t *logger, bal_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
