#include "config.h"

#include <errno.h>
#include <string.h>

#include "virtio/vb_qemu.h"
#include "virtio/vb_stats.h"

static const vb_qemu_profile_t profiles[VB_QEMU_VERSION_COUNT] = {
    [VB_QEMU_7_2] = {
        .name = "7.2",
        .major = 7, .minor = 2, .micro = 0,
        .stats_count = VB_STATS_QEMU72,
        .machine_type = "pc-i440fx-7.2-machine",
        .status_singlestep = true,
    },
    [VB_QEMU_10_0] = {
        .name = "10.0",
        .major = 10, .minor = 0, .micro = 2,
        .stats_count = VB_STATS_QEMU92,
        .machine_type = "pc-i440fx-10.0-machine",
        .status_singlestep = false,
    },
};

const vb_qemu_profile_t *vb_qemu_profile(vb_qemu_version_t v)
{
    return v < VB_QEMU_VERSION_COUNT ? &profiles[v] : &profiles[VB_QEMU_7_2];
}

int vb_qemu_version_parse(const char *name, vb_qemu_version_t *out)
{
    for (int v = 0; v < VB_QEMU_VERSION_COUNT; v++) {
        if (strcmp(name, profiles[v].name) == 0) {
            *out = (vb_qemu_version_t)v;
            return 0;
        }
    }
    return -EINVAL;
}
