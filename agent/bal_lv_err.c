/* libvirt's errors for the libvirt transport. See bal_lv_err.h for the contract. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "agent/bal_lv_err.h"

void blv_err_copy_message(char *dst, size_t cap, const char *msg)
{
    size_t len;

    snprintf(dst, cap, "%s", msg != NULL && msg[0] != '\0' ? msg : "libvirt gave no reason");
    /* The messages are quoted inside our sentences, which bring their own full stop. */
    len = strlen(dst);
    while (len > 0 && (dst[len - 1] == '.' || dst[len - 1] == '\n' || dst[len - 1] == ' '))
        dst[--len] = '\0';
}

void blv_err_set(blv_err_t *e, int code, const char *message)
{
    e->code = code;
    e->domain = VIR_FROM_NONE;
    blv_err_copy_message(e->message, sizeof(e->message), message);
}

void blv_err_capture(blv_err_t *e)
{
    virErrorPtr last = virGetLastError();

    if (last == NULL || last->code == VIR_ERR_OK) {
        blv_err_set(e, VIR_ERR_INTERNAL_ERROR, NULL);
        return;
    }
    e->code = last->code;
    e->domain = last->domain;
    blv_err_copy_message(e->message, sizeof(e->message), last->message);
    virResetLastError();
}

int blv_err_connect_errno(const blv_err_t *e)
{
    switch (e->code) {
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
    case VIR_ERR_OPERATION_DENIED:
        return -EACCES;
    case VIR_ERR_NO_MEMORY:
        return -ENOMEM;
    default:
        return -ENOTCONN;
    }
}

int blv_err_call_errno(const blv_err_t *e, virConnectPtr conn)
{
    bool alive;

    switch (e->code) {
    case VIR_ERR_NO_DOMAIN:
        return -ENOENT;
    case VIR_ERR_OPERATION_INVALID: /* "domain is not running" */
        return -ESHUTDOWN;
    case VIR_ERR_OPERATION_TIMEOUT: /* libvirtd gave up waiting for the domain's job lock */
        return -ETIMEDOUT;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC:
        return -ENOTCONN;
    default:
        break;
    }
    /* A system error on our socket is a lost connection; one that libvirtd relays from QEMU's monitor
     * (domain VIR_FROM_QEMU) is not, unless the connection died with it. */
    alive = virConnectIsAlive(conn) == 1;
    if (!alive)
        virResetLastError();
    if (!alive || (e->code == VIR_ERR_SYSTEM_ERROR && (e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE)))
        return -ENOTCONN;
    switch (e->code) {
    case VIR_ERR_NO_SUPPORT:
        return -EOPNOTSUPP;
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_AUTH_FAILED:
        return -EACCES;
    case VIR_ERR_NO_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}
