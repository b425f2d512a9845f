#!/bin/sh
# tests/e2e/run.sh: the end-to-end test on the real stack (issue 5): libvirtd, QEMU (TCG), real Linux
# guests, and the collectd daemon with our plugin beside collectd's own virt plugin.
#
# Needs root (it starts libvirtd and guests): otherwise it is skipped (exit 77) with a one-line reason,
# as it is under BALLOON_SKIP_SLOW=1 (the sanitizer pass of scripts/test.sh).
# E2E_STACK_ONLY=1 checks only the stack (guests boot, QMP through virsh sets the interval, stats move
# for the guest with the balloon driver and not for the one without), with no collectd.
# E2E_KEEP=1 keeps the work directory (logs, csv files, consoles) after a successful run too.
set -u

E2E_SRCDIR=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
E2E_BUILDDIR=${abs_top_builddir:-$E2E_SRCDIR}
. "$E2E_SRCDIR/tests/e2e/lib.sh"

skip() {
    echo "e2e: skipped: $*"
    exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root to start libvirtd and QEMU guests (CI runs it as root)."
[ "${BALLOON_SKIP_SLOW:-0}" = 1 ] && skip "BALLOON_SKIP_SLOW=1 (it runs in the plain pass)."
plugin_so="$E2E_BUILDDIR/plugin/.libs/balloon.so"
if [ "${E2E_STACK_ONLY:-0}" != 1 ] && [ ! -f "$plugin_so" ]; then
    skip "the plugin '$plugin_so' is not built."
fi

"$E2E_SRCDIR/scripts/install-deps.sh" >&2 || e2e_fail "scripts/install-deps.sh failed."

# One e2e run at a time on a machine: the domain names are fixed, and one run restarts libvirtd.
exec 9>/run/lock/collectd-balloon-e2e.lock
flock -w 900 9 || e2e_fail "another e2e run holds /run/lock/collectd-balloon-e2e.lock."

E2E_WORK=$(mktemp -d /tmp/e2e-run.XXXXXX) || e2e_fail "mktemp failed."
chmod 0755 "$E2E_WORK"
collectd_pid=""
status=1

cleanup() {
    trap - EXIT INT TERM HUP
    [ -n "$collectd_pid" ] && e2e_stop_pid "$collectd_pid" 10
    e2e_cleanup_stack
    if [ "$status" = 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then
        rm -rf "$E2E_WORK"
    else
        echo "e2e: work directory kept: $E2E_WORK" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

t_begin=$(e2e_now)
elapsed() {
    awk -v a="$t_begin" -v b="$(e2e_now)" 'BEGIN { printf "%.1f", b - a }'
}

# --- the stack ---------------------------------------------------------------------------------------
e2e_prepare_host || e2e_fail "could not prepare the host for libvirtd (users, qemu.conf)."
e2e_prepare_images || e2e_fail "could not fetch the guest kernel or build the initramfs images."
e2e_log "kernel and initramfs ready after $(elapsed) s"
e2e_start_libvirt || e2e_fail "could not start libvirtd."
e2e_log "libvirtd answers after $(elapsed) s"

BALLOON_VIRTIO="<memballoon model='virtio'/>"
# The escaped-name guest starts with a polling period set by libvirt, so that restoring it on shutdown
# is visible (the other guests start at 0).
BALLOON_PERIOD5="<memballoon model='virtio'><stats period='5'/></memballoon>"
BALLOON_NONE="<memballoon model='none'/>"
QUOTED_NAME="e2e-q \"dq\" 'sq' ünï"

e2e_define drv "e2e-drv" with-balloon "$BALLOON_VIRTIO" "e2e.churn=1"
e2e_define nodrv "e2e-nodrv" without-balloon "$BALLOON_VIRTIO"
if [ "${E2E_STACK_ONLY:-0}" = 1 ]; then
    guests="drv nodrv"
else
    e2e_define quoted "$QUOTED_NAME" with-balloon "$BALLOON_PERIOD5" "e2e.churn=1"
    e2e_define rmmod "e2e-rmmod" with-balloon "$BALLOON_VIRTIO"
    e2e_define restart "e2e-restart" with-balloon "$BALLOON_VIRTIO"
    e2e_define noballoon "e2e-noballoon" without-balloon "$BALLOON_NONE"
    guests="drv nodrv quoted rmmod restart noballoon"
fi
for g in $guests; do
    e2e_start "$g" || e2e_fail "could not start domain '$(e2e_name "$g")'."
done
e2e_log "domains started after $(elapsed) s"
for g in $guests; do
    e2e_wait_console "$g" "e2e: ready" 120 \
        || e2e_fail "guest '$(e2e_name "$g")' did not boot within 120 s; its console: $(tail -n 5 "$E2E_WORK/$g.console" 2>/dev/null)"
    e2e_log "guest '$(e2e_name "$g")' ready after $(elapsed) s: $(grep -F 'e2e: ready' "$E2E_WORK/$g.console")"
done
grep -qF "balloon driver loaded" "$E2E_WORK/drv.console" || e2e_fail "e2e-drv booted without the balloon driver."
grep -qF "no balloon driver" "$E2E_WORK/nodrv.console" || e2e_fail "e2e-nodrv booted with the balloon driver."

if [ "${E2E_STACK_ONLY:-0}" = 1 ]; then
    # The stack alone: what the plugin will do, done by hand with virsh.
    for n in e2e-drv e2e-nodrv; do
        [ "$(e2e_interval "$n")" = 0 ] || e2e_fail "'$n' does not start with polling interval 0."
        e2e_set_interval "$n" 1 || e2e_fail "qom-set of the polling interval of '$n' failed."
        [ "$(e2e_interval "$n")" = 1 ] || e2e_fail "'$n' does not read back polling interval 1."
    done
    e2e_log "polling interval 1 set on both guests after $(elapsed) s"
    prev=""
    advances=0
    i=0
    while [ $i -lt 20 ]; do
        line=$(e2e_dommemstat e2e-drv)
        lu=$(e2e_memstat_field "$line" last_update)
        [ -n "$lu" ] && [ "$lu" -gt 0 ] || e2e_fail "e2e-drv has no last_update: '$line'."
        [ -n "$prev" ] && [ "$lu" -gt "$prev" ] && advances=$((advances + 1))
        prev=$lu
        nline=$(e2e_dommemstat e2e-nodrv)
        nlu=$(e2e_memstat_field "$nline" last_update)
        [ -z "$nlu" ] || [ "$nlu" = 0 ] || e2e_fail "e2e-nodrv reports last_update '$nlu' without a driver."
        [ -z "$(e2e_memstat_field "$nline" unused)" ] || e2e_fail "e2e-nodrv reports stats: '$nline'."
        sleep 0.5
        i=$((i + 1))
    done
    e2e_log "e2e-drv: $line"
    e2e_log "e2e-nodrv: $nline"
    [ $advances -ge 4 ] || e2e_fail "e2e-drv's last_update advanced only $advances times in 10 s at interval 1."
    e2e_log "e2e-drv's last_update advanced $advances times in 10 s; e2e-nodrv never reported"
    for n in e2e-drv e2e-nodrv; do
        e2e_set_interval "$n" 0 || e2e_fail "could not set the interval of '$n' back to 0."
    done
    e2e_log "stack check passed after $(elapsed) s"
    status=0
    exit 0
fi
