#!/bin/sh
# tests/e2e/modern-qmp.sh: the end-to-end test over QMP sockets on the modern stack: QEMU 10.0 started
# directly (no libvirt) with a -qmp socket, booting Debian's Linux 6.12, read by the collectd daemon
# with our plugin through QMPSocketDir. QEMU runs in the root of modern-lib.sh; the plugin and collectd
# run on this machine and reach the sockets through the work directory the root shares.
#
# Each QEMU has a second -qmp socket for the test itself (a QMP socket serves one client at a time).
# Guests: e2e-drv (the balloon driver, memory use changing every second), e2e-oom (256 MiB, OOM-killed
# on request) and e2e-nodrv (no driver). Checks: the interval is set while collectd runs and put back
# after; all 16 stats equal QEMU's qom-get guest-stats for the same last-update, each written with the
# plugin's type; last-update advances every interval and is never written twice; the OOM kills the
# guest counts appear in the plugin's oom_kills, and alloc_stalls increase; the driverless guest gets
# one notification and no stats.
#
# Root only; skipped (77) otherwise, under BALLOON_SKIP_SLOW=1, and when the plugin or qmp_replay is
# not built. E2E_KEEP=1 keeps the work directory.
set -u

E2E_SRCDIR=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
E2E_BUILDDIR=${abs_top_builddir:-$E2E_SRCDIR}
. "$E2E_SRCDIR/tests/e2e/lib.sh"
. "$E2E_SRCDIR/tests/e2e/modern-lib.sh"

skip() {
    echo "e2e (modern stack, QMP sockets): skipped: $*"
    exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root to run QEMU in the modern stack's root (CI runs it as root)."
[ "${BALLOON_SKIP_SLOW:-0}" = 1 ] && skip "BALLOON_SKIP_SLOW=1 (it runs in the plain pass)."
plugin_so="$E2E_BUILDDIR/plugin/.libs/balloon.so"
replay="$E2E_BUILDDIR/tests/qmp_replay"
[ -f "$plugin_so" ] || skip "the plugin '$plugin_so' is not built."
[ -x "$replay" ] || skip "'$replay' is not built."

e2e_begin
collectd_pid=""
samplers=""
guests=""
status=1
# QEMUs are stopped with everything else in the root (e2e_stop_daemons).
trap 'trap - EXIT INT TERM HUP PIPE; e2e_end "$status" "$collectd_pid" "$samplers"' EXIT
trap 'exit 1' INT TERM HUP PIPE

# --- QEMU without libvirt ----------------------------------------------------------------------------
# The guest's console is a UNIX socket logged to SLUG.console, as with libvirt (lib.sh's console
# functions work unchanged); SLUG.pid is QEMU's pid, SLUG.test.qmp the test's QMP socket, and
# qmp/NAME.qmp the plugin's.

# qmp_define SLUG NAME INITRD MEMORY_MIB [CMDLINE_EXTRA]
qmp_define() {
    printf '%s\n' "$2" >"$E2E_WORK/$1.name"
    printf '%s\n' "$3 $4 ${5:-}" >"$E2E_WORK/$1.args"
    guests="$guests $1"
}

e2e_start() {
    read -r _initrd _mib _extra <"$E2E_WORK/$1.args"
    rm -f "$E2E_WORK/$1.console" "$E2E_WORK/$1.pid" "$E2E_WORK/qmp/$(e2e_name "$1").qmp" "$E2E_WORK/$1.test.qmp"
    # The kernel options as in lib.sh's e2e_define; -no-reboot: a panic ends QEMU.
    mr_in_root "$MR_ROOT" "$E2E_WORK" /usr/bin/qemu-system-x86_64 -name "$(e2e_name "$1")" \
        -machine pc -m "$_mib" -nodefaults -no-user-config -display none -no-reboot \
        -kernel "$(e2e_daemon_path "$E2E_KERNEL")" -initrd "$E2E_WORK/$_initrd.cpio" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check mitigations=off $_extra" \
        -chardev "socket,id=console,path=$E2E_WORK/$1.sock,server=on,wait=off,logfile=$E2E_WORK/$1.console" \
        -serial chardev:console \
        -device virtio-balloon-pci,id=balloon0 \
        -qmp "unix:$E2E_WORK/qmp/$(e2e_name "$1").qmp,server=on,wait=off" \
        -qmp "unix:$E2E_WORK/$1.test.qmp,server=on,wait=off" \
        -daemonize -pidfile "$E2E_WORK/$1.pid" 9>&- >>"$E2E_WORK/$1.qemu.log" 2>&1
}

e2e_guest_alive() {
    [ -f "$E2E_WORK/$1.pid" ] && kill -0 "$(cat "$E2E_WORK/$1.pid")" 2>/dev/null
}

# test_qmp NAME JSON: QEMU's reply on the test's own QMP socket of guest NAME.
test_qmp() {
    for _g in $guests; do
        if [ "$(e2e_name "$_g")" = "$1" ]; then
            "$replay" --query "$E2E_WORK/$_g.test.qmp" "$2" | grep -v '^{"timestamp"'
            return
        fi
    done
    return 1
}

interval_of() {
    test_qmp "$1" "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"$E2E_BALLOON_PATH\",\"property\":\"guest-stats-polling-interval\"}}" \
        | sed -n 's/.*"return":[[:space:]]*\([0-9-][0-9]*\).*/\1/p'
}

interval_is() {
    [ "$(interval_of "$1")" = "$2" ]
}

e2e_log "the stack: $E2E_STACK_NAME"
e2e_prepare_host || e2e_fail "could not prepare the root in $MR_ROOT."
e2e_prepare_images || e2e_fail "could not fetch the guest kernel or build the initramfs images."
mkdir -m 0700 "$E2E_WORK/qmp"
qmp_define drv e2e-drv with-balloon 128 e2e.churn=1
qmp_define oom e2e-oom with-balloon 256
qmp_define nodrv e2e-nodrv without-balloon 128
for g in $guests; do
    e2e_start "$g" || e2e_fail "could not start QEMU for '$(e2e_name "$g")': $(tail -n 3 "$E2E_WORK/$g.qemu.log")"
done
e2e_log "QEMUs started after $(e2e_elapsed) s: $(mr_in_root "$MR_ROOT" "" /usr/bin/qemu-system-x86_64 --version | head -n 1)"
for g in $guests; do
    e2e_wait_boot "$g" \
        || e2e_fail "guest '$(e2e_name "$g")' did not boot; its console: $(tail -n 5 "$E2E_WORK/$g.console" 2>/dev/null)"
    e2e_log "guest '$(e2e_name "$g")' ready after $(e2e_elapsed) s: $(grep -F 'e2e: ready' "$E2E_WORK/$g.console")"
done
for g in $guests; do
    [ "$(interval_of "$(e2e_name "$g")")" = 0 ] || e2e_fail "'$(e2e_name "$g")' does not start with polling interval 0."
done

# --- collectd with the plugin ------------------------------------------------------------------------
I=2
STALE_AFTER=3
csv="$E2E_WORK/csv/e2e-host"
log="$E2E_WORK/collectd.log"
e2e_start_collectd collectd-qmp.conf.in "$plugin_so" $I $STALE_AFTER || e2e_fail "could not start collectd."
collectd_pid=$(cat "$E2E_WORK/collectd.started")
e2e_log "collectd started (pid $collectd_pid) after $(e2e_elapsed) s"

has_values() {
    [ -n "$(e2e_csv_rows "$csv/balloon-$1" timestamp-last_update)" ]
}
e2e_wait_until $((3 * I + 10)) has_values e2e-drv \
    || e2e_fail "no value from the plugin for e2e-drv within $((3 * I + 10)) s of collectd's start; log: $(tail -n 5 "$log" 2>/dev/null)"
for g in $guests; do
    e2e_wait_until $((2 * I)) interval_is "$(e2e_name "$g")" $I \
        || e2e_fail "polling interval of '$(e2e_name "$g")' is '$(interval_of "$(e2e_name "$g")")' while collectd runs, not $I."
done
e2e_log "first values, and polling interval $I set on every guest, after $(e2e_elapsed) s"

e2e_guest_stats_sampler test_qmp e2e-drv "$E2E_WORK/guest-stats-drv" &
samplers="$samplers $!"
e2e_guest_stats_sampler test_qmp e2e-oom "$E2E_WORK/guest-stats-oom" &
samplers="$samplers $!"
t_steady=$(e2e_now)
sleep $((I + 1)) # a value of e2e-oom from before its OOM
e2e_oom_event oom || e2e_fail "the OOM kill in e2e-oom failed: $(tail -n 3 "$E2E_WORK/oom.console")"
e2e_log "e2e-oom: killed, oom_kill before and after, allocstall before and after: $(cat "$E2E_WORK/oom.oom"), after $(e2e_elapsed) s"
t_oom=$(e2e_now)
# 8 intervals of steady sampling, and 3 after the OOM ended: the guest reports its last kill at its next
# polling tick, and the plugin reads it at its next read (on a loaded machine the OOM itself took 14 s
# of the 16, and the plugin's last value missed the second kill).
while awk -v a="$t_steady" -v o="$t_oom" -v b="$(e2e_now)" -v s=$((8 * I)) -v r=$((3 * I)) \
    'BEGIN { exit !(b - a < s || b - o < r) }'; do sleep 0.5; done
touch "$E2E_WORK/samplers.stop"
# shellcheck disable=SC2086
wait $samplers
samplers=""
t_steady_end=$(e2e_now)
kill -0 "$collectd_pid" 2>/dev/null || e2e_fail "collectd exited during the run; its output: $(tail -n 5 "$E2E_WORK/collectd.out")"

log_before_stop=$(wc -l <"$log" | tr -d ' ')
kill -TERM "$collectd_pid"
wait "$collectd_pid"
collectd_status=$?
collectd_pid=""
[ "$collectd_status" = 0 ] || e2e_fail "collectd exited with status $collectd_status on SIGTERM: $(tail -n 5 "$E2E_WORK/collectd.out")"
e2e_log "collectd stopped after $(e2e_elapsed) s"
for g in $guests; do
    interval_is "$(e2e_name "$g")" 0 \
        || e2e_fail "polling interval of '$(e2e_name "$g")' is '$(interval_of "$(e2e_name "$g")")' after collectd stopped, not 0 as before."
done
e2e_log "every interval restored"

# --- what collectd wrote -----------------------------------------------------------------------------
grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "$E2E_WORK/collectd.out" >&2 \
    && e2e_fail "a sanitizer complained inside collectd; see $E2E_WORK/collectd.out"

# No stat and no last-update written (the plugin's state and polling interval are, whatever the guest).
nodrv_one_notification() {
    _files=$( (e2e_stats16_map | awk '{ print $2 }'; echo timestamp-last_update) | sort -u | while read -r _t; do
                 ls "$csv/balloon-e2e-nodrv/$_t"-* 2>/dev/null
             done | tr '\n' ' ')
    [ -z "$_files" ] || { echo "stats written: $_files"; return 1; }
    _n=$(sed -n "1,${log_before_stop}p" "$log" | grep -F 'Notification:' | grep -F 'plugin = balloon,' \
         | grep -cF 'plugin_instance = e2e-nodrv,')
    echo "no stats, $_n notification(s)"
    [ "$_n" = 1 ]
}

# The state the plugin wrote last for each guest (gauge-state: 0 ok, 1 never answered, 2 stale).
last_states() {
    _got=""
    for _g in drv oom nodrv; do
        _got="$_got $_g=$(e2e_csv_rows "$csv/balloon-e2e-$_g" gauge-state | awk -F, 'END { print $2 + 0 }')"
    done
    echo "last states:$_got"
    [ "$_got" = " drv=0 oom=0 nodrv=1" ]
}

e2e_check "e2e-drv: all 16 stats equal qom-get guest-stats's for the same last-update" \
    e2e_stats16_match "$csv/balloon-e2e-drv" "$E2E_WORK/guest-stats-drv" 4
e2e_check "e2e-oom: all 16 stats equal qom-get guest-stats's for the same last-update, through its OOM" \
    e2e_stats16_match "$csv/balloon-e2e-oom" "$E2E_WORK/guest-stats-oom" 4
e2e_check "e2e-drv: each stat written with the plugin's type" e2e_stats16_types "$csv/balloon-e2e-drv"
e2e_check "e2e-oom: OOM kills counted as the guest reports them, allocation stalls increased" \
    e2e_oom_counted "$csv/balloon-e2e-oom" oom
e2e_check "e2e-drv: last-update advances every $I s" e2e_advances_at_interval "$csv/balloon-e2e-drv" "$t_steady" "$t_steady_end" $I
e2e_check "e2e-drv: no last_update written twice" e2e_no_repeats "$csv/balloon-e2e-drv"
e2e_check "e2e-oom: no last_update written twice" e2e_no_repeats "$csv/balloon-e2e-oom"
e2e_check "e2e-nodrv: no stats and exactly one notification" nodrv_one_notification
e2e_check "the last state written: 0 (ok) for e2e-drv and e2e-oom, 1 (never answered) for e2e-nodrv" last_states

e2e_log "whole test $(e2e_elapsed) s"
[ "$E2E_FAILURES" = 0 ] || e2e_fail "$E2E_FAILURES check(s) failed; see above and $E2E_WORK."
status=0
