/* libvirt's errors as the libvirt transport's modules see them (prefix blv_err_). libvirt keeps the
 * last error per thread, and a call may run on a helper thread (bal_lv_call.h): so an error is copied
 * out of the thread that saw it, into a blv_err_t, and mapped to the transport's errnos from there. */
#ifndef BAL_LV_ERR_H
#define BAL_LV_ERR_H

#include <stddef.h>

#include <libvirt/libvirt.h>

typedef struct blv_err {
    int code;   /* virErrorNumber */
    int domain; /* virErrorDomain */
    char message[384]; /* without a final full stop: it is quoted inside our own sentences */
} blv_err_t;

/* Copies this thread's last libvirt error into e and resets it. With none (libvirt failed without
 * saying why), e is VIR_ERR_INTERNAL_ERROR with "libvirt gave no reason". Never fails. */
void blv_err_capture(blv_err_t *e);

/* Fills e with an error of ours (code a virErrorNumber, domain VIR_FROM_NONE). */
void blv_err_set(blv_err_t *e, int code, const char *message);

/* Copies msg (NULL or "": "libvirt gave no reason") into dst, without its final full stop, newline or
 * blanks. */
void blv_err_copy_message(char *dst, size_t cap, const char *msg);

/* A failed virConnectOpen's error as an errno: -EACCES (refused us), -ENOMEM, else -ENOTCONN. */
int blv_err_connect_errno(const blv_err_t *e);

/* A failed call's error on conn as one of the transport's errnos (bal_transport.h): -ENOENT, -ESHUTDOWN,
 * -ETIMEDOUT (libvirtd's own job-lock timeout), -ENOTCONN (also when conn is dead), -EOPNOTSUPP,
 * -EACCES, -ENOMEM, else -EIO. Asks libvirt whether conn is alive (no round trip). */
int blv_err_call_errno(const blv_err_t *e, virConnectPtr conn);

#endif
