/* Errors carried out of the agent: a negative errno for the program, a whole sentence for the person,
 * and, when QEMU answered with an error, QEMU's class. */
#ifndef BAL_ERROR_H
#define BAL_ERROR_H

typedef struct bal_error {
    int code;            /* negative errno */
    char qmp_class[64];  /* QEMU's error class ("GenericError", "DeviceNotFound"...), or "" */
    char message[512];   /* one or more whole sentences */
} bal_error_t;

/* Fill err (if not NULL) with code, no QMP class and the formatted message. Returns code, so that
 * callers can write `return bal_error_set(err, -EINVAL, "...");`. */
int bal_error_set(bal_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, for an error QEMU returned: class and desc as QEMU sent them. Returns code. */
int bal_error_set_qmp(bal_error_t *err, int code, const char *qmp_class, const char *desc);
void bal_error_clear(bal_error_t *err);

#endif
