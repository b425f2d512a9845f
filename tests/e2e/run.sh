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
# Every daemon started below gets 9>&-, or it would keep the lock after the run.
lock=/run/lock/collectd-balloon-e2e.lock
mkdir -p /run/lock
exec 9>"$lock"
flock -w 600 9 || e2e_fail "another e2e run has held $lock for 10 minutes."

E2E_WORK=$(mktemp -d /tmp/e2e-run.XXXXXX) || e2e_fail "mktemp failed."
chmod 0755 "$E2E_WORK"
collectd_pid=""
samplers=""
status=1

cleanup() {
    trap - EXIT INT TERM HUP
    touch "$E2E_WORK/memstat-drv.stop" "$E2E_WORK/memstat-quoted.stop"
    for p in $samplers; do kill "$p" 2>/dev/null; done
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
# Started together: most of a guest's boot is QEMU emulating its CPU, and there are two host CPUs.
pids=""
for g in $guests; do
    e2e_start "$g" &
    pids="$pids $!"
done
started_all=1
for p in $pids; do
    wait "$p" || started_all=0 # every start has ended before cleanup runs
done
[ "$started_all" = 1 ] || e2e_fail "could not start every domain."
e2e_log "domains started after $(elapsed) s"
for g in $guests; do
    e2e_wait_boot "$g" \
        || e2e_fail "guest '$(e2e_name "$g")' did not boot; its console: $(tail -n 5 "$E2E_WORK/$g.console" 2>/dev/null)"
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
    first=""
    advances=0
    i=0
    while [ $i -lt 20 ]; do
        line=$(e2e_dommemstat e2e-drv)
        lu=$(e2e_memstat_field "$line" last_update)
        [ -n "$lu" ] && [ "$lu" -gt 0 ] || e2e_fail "e2e-drv has no last_update: '$line'."
        [ -n "$prev" ] && [ "$lu" -gt "$prev" ] && advances=$((advances + 1))
        prev=$lu
        [ -n "$first" ] || first=$lu
        nline=$(e2e_dommemstat e2e-nodrv)
        nlu=$(e2e_memstat_field "$nline" last_update)
        [ -z "$nlu" ] || [ "$nlu" = 0 ] || e2e_fail "e2e-nodrv reports last_update '$nlu' without a driver."
        [ -z "$(e2e_memstat_field "$nline" unused)" ] || e2e_fail "e2e-nodrv reports stats: '$nline'."
        sleep 0.5
        i=$((i + 1))
    done
    e2e_log "e2e-drv: $line"
    e2e_log "e2e-nodrv: $nline"
    [ $advances -ge 4 ] || e2e_fail "e2e-drv's last_update advanced only $advances times in 20 samples at interval 1."
    e2e_log "e2e-drv's last_update advanced $advances times, by $((prev - first)) s, in 20 samples; e2e-nodrv never reported"
    for n in e2e-drv e2e-nodrv; do
        e2e_set_interval "$n" 0 || e2e_fail "could not set the interval of '$n' back to 0."
    done
    e2e_log "stack check passed after $(elapsed) s"
    status=0
    exit 0
fi

# --- collectd with the plugin ------------------------------------------------------------------------
I=2           # collectd's Interval and the plugin's PollingInterval, seconds
STALE_AFTER=3 # intervals without an advance before the plugin re-arms
csv="$E2E_WORK/csv/e2e-host"
log="$E2E_WORK/collectd.log"

# What the stack must look like before collectd: the intervals the plugin must put back at the end,
# a driverless guest that never answered, and a domain that has no balloon at all.
for g in drv nodrv rmmod restart; do
    [ "$(e2e_interval "$(e2e_name $g)")" = 0 ] || e2e_fail "'$(e2e_name $g)' does not start with polling interval 0."
done
[ "$(e2e_interval "$QUOTED_NAME")" = 5 ] || e2e_fail "'$QUOTED_NAME' does not start with polling interval 5 (<stats period='5'/>)."
e2e_qmp e2e-noballoon '{"execute":"qom-list","arguments":{"path":"/machine/peripheral"}}' | grep -q balloon \
    && e2e_fail "e2e-noballoon has a balloon device."
nlu=$(e2e_memstat_field "$(e2e_dommemstat e2e-nodrv)" last_update)
[ -z "$nlu" ] || [ "$nlu" = 0 ] || e2e_fail "e2e-nodrv has last_update '$nlu' before collectd."

e2e_monitor_log_on || e2e_fail "could not switch on libvirtd's monitor log with virt-admin."
for g in $guests; do e2e_monitor_mark "$g"; done

mkdir -p "$E2E_WORK/plugins" "$E2E_WORK/collectd" "$E2E_WORK/csv"
for f in /usr/lib/collectd/*.so; do
    # collectd loads only regular files from PluginDir, not symbolic links.
    ln -f "$f" "$E2E_WORK/plugins/" 2>/dev/null || cp "$f" "$E2E_WORK/plugins/"
done
cp "$plugin_so" "$E2E_WORK/plugins/balloon.so"
sed -e "s|@WORK@|$E2E_WORK|g" -e "s|@INTERVAL@|$I|g" -e "s|@STALE_AFTER@|$STALE_AFTER|g" \
    "$E2E_SRCDIR/tests/e2e/collectd.conf.in" >"$E2E_WORK/collectd.conf"
# A plugin built with AddressSanitizer needs its runtime loaded first in the (uninstrumented) daemon,
# and libtirpc with it: ASan looks up the xdr_* functions it intercepts when it starts, and libvirt's
# (from libtirpc, glibc has none) would otherwise be called through a null pointer.
asan_rt=$(ldd "$plugin_so" 2>/dev/null | awk '/libasan/ { print $3; exit }')
tirpc=$(ldd "$plugin_so" 2>/dev/null | awk '/libtirpc/ { print $3; exit }')
if [ -n "$asan_rt" ]; then
    LD_PRELOAD="$asan_rt${tirpc:+ $tirpc}" ASAN_OPTIONS=detect_leaks=0 collectd -f -C "$E2E_WORK/collectd.conf" \
        >"$E2E_WORK/collectd.out" 2>&1 9>&- &
else
    collectd -f -C "$E2E_WORK/collectd.conf" >"$E2E_WORK/collectd.out" 2>&1 9>&- &
fi
collectd_pid=$!
t_collectd=$(e2e_now)
e2e_log "collectd started (pid $collectd_pid) after $(elapsed) s"

collectd_alive() {
    kill -0 "$collectd_pid" 2>/dev/null \
        || e2e_fail "collectd exited during the run ($1); its output: $(tail -n 5 "$E2E_WORK/collectd.out")"
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.25 s until it succeeds; false after SECONDS.
wait_until() {
    _deadline=$(awk -v n="$(e2e_now)" -v s="$1" 'BEGIN { printf "%.3f", n + s }')
    shift
    while :; do
        "$@" && return 0
        awk -v n="$(e2e_now)" -v d="$_deadline" 'BEGIN { exit !(n >= d) }' && return 1
        sleep 0.25
    done
}

# True when the plugin has written a last_update of guest SLUG later than $2 (epoch seconds).
has_update_after() {
    e2e_csv_rows "$csv/balloon-$(e2e_name "$1")" timestamp-last_update \
        | awk -F, -v t="$2" '$2 + 0 > t + 0 { found = 1 } END { exit !found }'
}

# Number of distinct last_updates of guest SLUG later than $2.
updates_after() {
    e2e_csv_rows "$csv/balloon-$(e2e_name "$1")" timestamp-last_update \
        | awk -F, -v t="$2" '$2 + 0 > t + 0 { seen[$2 + 0] = 1 } END { print length(seen) }'
}

interval_is() {
    [ "$(e2e_interval "$1")" = "$2" ]
}

log_lines() {
    wc -l <"$log" | tr -d ' '
}

# The first values: the plugin reads, sets the interval, and the csv writer has them.
wait_until $((3 * I + 10)) has_update_after drv 0 \
    || e2e_fail "no value from the plugin for e2e-drv within $((3 * I + 10)) s of collectd's start; log: $(tail -n 5 "$log" 2>/dev/null)"
e2e_log "first values for e2e-drv after $(elapsed) s"
for g in drv nodrv quoted rmmod restart; do
    wait_until $((2 * I)) interval_is "$(e2e_name $g)" $I \
        || e2e_fail "polling interval of '$(e2e_name $g)' is '$(e2e_interval "$(e2e_name $g)")' while collectd runs, not $I."
done
e2e_log "polling interval $I set on every guest with a balloon"

# The steady state, sampled from QEMU through libvirt while the events below happen to other guests.
e2e_memstat_sampler e2e-drv "$E2E_WORK/memstat-drv" &
sampler_drv=$!
e2e_memstat_sampler "$QUOTED_NAME" "$E2E_WORK/memstat-quoted" &
sampler_quoted=$!
samplers="$sampler_drv $sampler_quoted"
t_steady=$(e2e_now)

# Event 1: the balloon driver of e2e-rmmod goes away.
e2e_monitor_mark rmmod
log_before_rmmod=$(log_lines)
e2e_guest_command rmmod rmmod || e2e_fail "could not type on e2e-rmmod's console."
e2e_wait_console rmmod "e2e: rmmod done" 20 || e2e_fail "e2e-rmmod did not unload virtio_balloon: $(tail -n 3 "$E2E_WORK/rmmod.console")"
t_rmmod=$(e2e_now)
e2e_log "virtio_balloon unloaded in e2e-rmmod after $(elapsed) s"

# Event 2: e2e-restart destroyed and started again (a new QEMU with interval 0).
e2e_virsh destroy e2e-restart >/dev/null || e2e_fail "could not destroy e2e-restart."
t_destroyed=$(e2e_now)
sleep $I
e2e_start restart || e2e_fail "could not start e2e-restart again."
t_recreated=$(e2e_now)
e2e_monitor_mark restart
e2e_wait_boot restart || e2e_fail "e2e-restart did not boot again."
t_ready=$(e2e_now)
e2e_log "e2e-restart destroyed, started again and booted after $(elapsed) s"
# Within 3 intervals (and a second for the csv writer) of its boot: the interval set again, and two
# advancing updates from the new instance (polling works, not just the driver's first report).
resume_by=$((3 * I + 1))
restart_resumed() {
    interval_is e2e-restart $I && [ "$(updates_after restart "${t_recreated%.*}")" -ge 2 ]
}
wait_until "$(awk -v t="$t_ready" -v n="$(e2e_now)" -v s=$resume_by 'BEGIN { d = t + s - n; printf "%.3f", d < 0 ? 0 : d }')" \
    restart_resumed
interval_is e2e-restart $I \
    || e2e_fail "e2e-restart's polling interval is '$(e2e_interval e2e-restart)', not $I, $resume_by s after it booted again."
n=$(updates_after restart "${t_recreated%.*}")
[ "$n" -ge 2 ] || e2e_fail "e2e-restart's stats did not resume within $resume_by s of its boot ($n new updates)."
e2e_log "e2e-restart: interval back and stats resumed after $(elapsed) s"
collectd_alive "after e2e-restart's restart"

# Event 1, continued: the plugin notices the stale guest, re-arms it and says so once.
stale_by=$(awk -v t="$t_rmmod" -v n="$(e2e_now)" -v s=$(((STALE_AFTER + 3) * I + 2)) 'BEGIN { d = t + s - n; printf "%d", d < 1 ? 1 : d }')
rmmod_notified() {
    tail -n +$((log_before_rmmod + 1)) "$log" | grep -F 'plugin = balloon,' | grep -qF 'plugin_instance = e2e-rmmod,'
}
wait_until "$stale_by" rmmod_notified \
    || e2e_fail "no notification for e2e-rmmod within $(((STALE_AFTER + 3) * I + 2)) s of its driver's removal."
e2e_log "e2e-rmmod reported stale after $(elapsed) s"

# At least 8 intervals of steady state for the value checks.
while awk -v a="$t_steady" -v b="$(e2e_now)" -v s=$((8 * I)) 'BEGIN { exit !(b - a < s) }'; do sleep 0.5; done
touch "$E2E_WORK/memstat-drv.stop" "$E2E_WORK/memstat-quoted.stop"
wait "$sampler_drv" "$sampler_quoted"
t_steady_end=$(e2e_now)
for g in drv nodrv quoted rmmod restart; do
    interval_is "$(e2e_name $g)" $I \
        || e2e_fail "polling interval of '$(e2e_name $g)' is '$(e2e_interval "$(e2e_name $g)")' at the end of the steady state, not $I."
done
collectd_alive "in the steady state"

# Event 3: libvirtd restarted under the plugin.
log_before_libvirtd=$(log_lines)
mon_before_libvirtd=$(e2e_monitor_lines)
t_kill=$(e2e_now)
e2e_restart_libvirtd || e2e_fail "could not restart libvirtd."
t_back=$(e2e_now)
for g in $guests; do e2e_monitor_mark "$g"; done
e2e_log "libvirtd restarted in $(awk -v a="$t_kill" -v b="$t_back" 'BEGIN { printf "%.1f", b - a }') s, after $(elapsed) s"
wait_until $((3 * I + 1)) has_update_after drv "${t_back%.*}" \
    || e2e_fail "e2e-drv's stats did not resume within $((3 * I + 1)) s of libvirtd's restart."
t_resumed=$(e2e_now)
e2e_log "stats resumed after libvirtd's restart after $(elapsed) s"
# One more cycle for the other domains to be read again, then two cycles that must be quiet.
sleep $((I + 1))
log_after_resume=$(log_lines)
sleep $((2 * I))
collectd_alive "after libvirtd's restart"

# Shutdown: collectd stops, the plugin puts every interval back.
log_before_stop=$(log_lines)
mon_before_stop=$(e2e_monitor_lines)
kill -TERM "$collectd_pid"
wait "$collectd_pid"
collectd_status=$?
collectd_pid=""
[ "$collectd_status" = 0 ] || e2e_fail "collectd exited with status $collectd_status on SIGTERM: $(tail -n 5 "$E2E_WORK/collectd.out")"
e2e_log "collectd stopped after $(elapsed) s"
for g in drv nodrv rmmod restart; do
    interval_is "$(e2e_name $g)" 0 \
        || e2e_fail "polling interval of '$(e2e_name $g)' is '$(e2e_interval "$(e2e_name $g)")' after collectd stopped, not 0 as before."
done
interval_is "$QUOTED_NAME" 5 \
    || e2e_fail "polling interval of '$QUOTED_NAME' is '$(e2e_interval "$QUOTED_NAME")' after collectd stopped, not 5 as before."
e2e_log "every interval restored"

# --- what collectd wrote -----------------------------------------------------------------------------
failures=0
check() { # check DESCRIPTION COMMAND...: runs an assertion, reports it, counts failures
    _what=$1
    shift
    if _out=$("$@" 2>&1); then
        echo "ok - $_what${_out:+: $_out}"
    else
        echo "not ok - $_what${_out:+: $_out}"
        failures=$((failures + 1))
    fi
}

grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "$E2E_WORK/collectd.out" >&2 \
    && e2e_fail "a sanitizer complained inside collectd; see $E2E_WORK/collectd.out"

# values_match SLUG MIN: every value the plugin wrote for a last_update that `virsh dommemstat` also
# showed equals dommemstat's (bytes against KiB), and there are at least MIN such last_updates.
values_match() {
    e2e_balloon_table "$csv/balloon-$(e2e_name "$1")" >"$E2E_WORK/table-$1"
    awk -v min="$2" '
        FNR == NR {
            lu = ""
            for (i = 2; i < NF; i += 2) if ($i == "last_update") lu = $(i + 1)
            if (lu == "" || lu == 0) next
            for (i = 2; i < NF; i += 2) ms[lu, $i] = $(i + 1)
            have[lu] = 1
            next
        }
        {
            field = $1; epoch = $2; value = $3; L = int(epoch)
            if (epoch + 0 != L) { bad = bad sprintf(" %s at %s is not stamped with a last_update;", field, epoch); next }
            if (!(L in have)) next
            if (!((L, field) in ms)) { bad = bad sprintf(" dommemstat has no %s at %d;", field, L); next }
            want = ms[L, field]
            if (field ~ /^(unused|available|usable|disk_caches|swap_in|swap_out)$/) want *= 1024
            if (value + 0 != want + 0) bad = bad sprintf(" %s at %d: plugin %s, dommemstat %s;", field, L, value, want)
            if (!(L in matched)) { matched[L] = 1; m++ }
            n++
        }
        END {
            printf "%d values at %d last_updates compared", n, m
            if (bad != "") { print ";" bad; exit 1 }
            if (m < min) { printf "; fewer than %d last_updates\n", min; exit 1 }
            print ""
        }' "$E2E_WORK/memstat-$1" "$E2E_WORK/table-$1"
}

# virt_agrees: each memory value collectd's virt plugin read from e2e-drv during the steady state
# equals ours (or dommemstat's) at one of the last_updates it can have seen. The virt plugin stamps
# values with the time its read began, and on a loaded host its query can come seconds later: any
# update from 2 intervals before to 2 intervals after that time counts. A value that matches none is
# a disagreement only if we know every update of that span (no step between known last_updates
# larger than I+1): otherwise it may come from an update neither we nor dommemstat caught.
virt_agrees() {
    e2e_virt_table "$csv/virt-e2e-drv" >"$E2E_WORK/virt-drv"
    awk -v t0="$(awk -v t="$t_steady" -v i=$I 'BEGIN { printf "%.3f", t + i + 1 }')" -v t1="$t_steady_end" -v I=$I '
        part == 1 {
            lu = ""
            for (i = 2; i < NF; i += 2) if ($i == "last_update") lu = $(i + 1)
            if (lu == "" || lu == 0) next
            for (i = 2; i < NF; i += 2) known[lu + 0, $i] = $(i + 1) * 1024
            Ls[lu + 0] = 1
            next
        }
        part == 2 {
            if ($1 ~ /^(unused|available|usable|disk_caches)$/) { known[int($2), $1] = $3; Ls[int($2)] = 1 }
            next
        }
        part == 3 && !sorted {
            for (L in Ls) { m++; s[m] = L + 0 }
            for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
            sorted = 1
        }
        part == 3 {
            t = $2 + 0; field = $1; v = $3 + 0
            if (t < t0 || t > t1) next
            lo = t - 2 * I - 1; hi = t + 2 * I
            ok = 0; covered = (m > 0 && s[1] <= lo && s[m] >= hi)
            for (i = 1; i <= m; i++) {
                if (s[i] >= lo && s[i] <= hi && (s[i], field) in known && known[s[i], field] + 0 == v) ok = 1
                # A step from a to b larger than I+1 hides an update somewhere in a+1..b-1.
                if (i > 1 && s[i] - s[i - 1] > I + 1) {
                    a = s[i - 1] + 1; if (a < lo) a = int(lo) + (lo > int(lo))
                    b = s[i] - 1; if (b > hi) b = int(hi)
                    if (a <= b) covered = 0
                }
            }
            if (ok) { n++; next }
            if (!covered) { skipped++; next }
            n++
            bad = bad sprintf(" virt %s %s at %.3f matches no value of ours near that time;", field, $3, t)
        }
        END {
            printf "%d virt plugin values compared, %d not comparable (an update nobody else saw)", n, skipped
            if (bad != "") { print ";" bad; exit 1 }
            if (n < 3) { print "; fewer than 3 compared"; exit 1 }
            print ""
        }' part=1 "$E2E_WORK/memstat-drv" part=2 "$E2E_WORK/table-drv" part=3 "$E2E_WORK/virt-drv"
}

# advances_at_interval: the last_updates the plugin wrote for e2e-drv in the steady state are I apart
# (median), never closer than I-1 (QEMU's timer runs a little slower than I, and last-update is whole
# seconds) nor further than 3I (a read that collectd ran late on a loaded host may miss one), and
# there are at least 5.
advances_at_interval() {
    awk -v t0="$t_steady" -v t1="$t_steady_end" '$1 == "last_update" && $2 >= t0 && $2 <= t1 { print int($2) }' \
        "$E2E_WORK/table-drv" | sort -n -u | awk -v I=$I '
        { if (NR > 1) d[NR - 1] = $1 - prev; prev = $1 }
        END {
            n = NR - 1
            if (n < 4) { printf "only %d last_updates\n", NR; exit 1 }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (d[j] < d[i]) { x = d[i]; d[i] = d[j]; d[j] = x }
            med = d[int((n + 1) / 2)]
            printf "%d steps, median %d s, min %d s, max %d s", n, med, d[1], d[n]
            if (med != I || d[1] < I - 1 || d[n] > 3 * I) { print " (interval " I " s)"; exit 1 }
            print ""
        }'
}

# no_repeats SLUG: no last_update was written twice (a sample that did not advance is not dispatched).
no_repeats() {
    e2e_csv_rows "$csv/balloon-$(e2e_name "$1")" memory-free | awk -F, '
        { if ($1 in seen) dup = dup " " $1; seen[$1] = 1; n++ }
        END { printf "%d rows", n; if (dup != "") { print "; repeated:" dup; exit 1 } print "" }'
}

# Notification lines from our plugin about domain NAME in log lines FROM..TO.
notifications() {
    sed -n "$2,$3p" "$log" | grep -F 'Notification:' | grep -F 'plugin = balloon,' | grep -F "plugin_instance = $1,"
}

# Our plugin's log lines (not notifications) that name domain NAME, in log lines FROM..TO; not the
# lines that say what the domain list gained or lost, which name domains by the handful.
plugin_lines() {
    sed -n "$2,$3p" "$log" | grep -F 'balloon plugin:' | grep -v -F 'The domain list changed:' | grep -F "$1"
}

stats_files() {
    for _t in memory swap_io vmpage_faults timestamp; do
        ls "$csv/balloon-$1/$_t"-* 2>/dev/null
    done
}

nodrv_one_notification() {
    [ -z "$(stats_files e2e-nodrv)" ] || { echo "stats written: $(stats_files e2e-nodrv | tr '\n' ' ')"; return 1; }
    _n=$(notifications e2e-nodrv 1 "$log_before_stop" | wc -l)
    echo "no stats, $_n notification(s)"
    [ "$_n" = 1 ]
}

# Quietly: one message at most (a log line, and its notification), not an error, nothing each cycle.
noballoon_quiet() {
    [ -z "$(stats_files e2e-noballoon)" ] || { echo "stats written"; return 1; }
    _l=$(plugin_lines e2e-noballoon 1 "$log_before_stop" | wc -l)
    _e=$(plugin_lines e2e-noballoon 1 "$log_before_stop" | grep -c -F '[error]')
    _n=$(notifications e2e-noballoon 1 "$log_before_stop" | wc -l)
    echo "$_l log line(s) ($_e error), $_n notification(s)$(plugin_lines e2e-noballoon 1 "$log_before_stop" | sed -n '1s/^[^]]*] / /p')"
    [ "$_l" -le 1 ] && [ "$_e" = 0 ] && [ "$_n" -le 1 ]
}

# Every domain has its state, every read, whatever it is: the last one written (before collectd was
# stopped) for each guest, and that the state of each was written at least once per two intervals.
states_written() {
    _bad=""
    _seen=""
    for _pair in drv:0 nodrv:1 noballoon:3 rmmod:2; do
        _slug=${_pair%:*}
        _want=${_pair#*:}
        _rows=$(e2e_csv_rows "$csv/balloon-$(e2e_name "$_slug")" gauge-state | awk -F, -v t="$t_collectd" '$1 >= t')
        _last=$(printf '%s\n' "$_rows" | awk -F, 'NF == 2 { v = $2 + 0 } END { print v }')
        _n=$(printf '%s\n' "$_rows" | grep -c , || true)
        _seen="$_seen $_slug=$_last ($_n rows)"
        _span=$(printf '%s\n' "$_rows" | awk -F, 'NR == 1 { a = $1 } { b = $1 } END { printf "%d", b - a }')
        [ "$_last" = "$_want" ] || _bad="$_bad $_slug: last state $_last, expected $_want;"
        [ "$_n" -ge $((_span / (2 * I))) ] || _bad="$_bad $_slug: $_n states in $_span s;"
    done
    echo "last states:$_seen${_bad:+; wrong:$_bad}"
    [ -z "$_bad" ]
}

rmmod_once() {
    _n=$(notifications e2e-rmmod $((log_before_rmmod + 1)) "$log_before_stop" | wc -l)
    _before=$(notifications e2e-rmmod 1 "$log_before_rmmod" | wc -l)
    _first=$(sed -n "$((log_before_rmmod + 1)),${log_before_stop}p" "$log" | grep -n -F 'plugin = balloon,' \
             | grep -F 'plugin_instance = e2e-rmmod,' | head -n 1 | cut -d: -f1)
    # Quiet after the notification: nothing more about it, apart from what every domain got while
    # libvirtd was away (read errors, "can be read again"), which libvirtd_no_flood judges.
    _after=0
    [ -n "$_first" ] && _after=$(plugin_lines e2e-rmmod $((log_before_rmmod + _first + 1)) "$log_before_stop" \
                                 | grep -v -E "Reading domain .* failed|can be read again" | wc -l)
    # The ground truth of re-arming: the "set 0" (then the interval again) that QEMU received.
    _zero=$(e2e_monitor_commands "$mon_before_stop" \
            | awk -F '\t' '$1 == "rmmod" && /qom-set/ && /"guest-stats-polling-interval"/ && /"value": *0[,} ]/ { print $2 }')
    _z1=$(printf '%s\n' $_zero | awk -v m="$mon_before_libvirtd" 'NF && $1 <= m' | wc -l)
    _z2=$(printf '%s\n' $_zero | awk -v m="$mon_before_libvirtd" 'NF && $1 > m' | wc -l)
    _late=$(e2e_csv_rows "$csv/balloon-e2e-rmmod" timestamp-last_update | awk -F, -v t="$t_rmmod" '$2 > t + 1' | wc -l)
    echo "$_before notification(s) before the removal, $_n after; re-arms seen by QEMU: $_z1 before libvirtd's restart, $_z2 after; $_after other log line(s) after the notification; $_late update(s) after the removal"
    [ "$_n" = 1 ] && [ "$_before" = 0 ] && [ $((_z1 + _z2)) = 1 ] && [ "$_after" = 0 ] && [ "$_late" = 0 ]
}

no_rearm_elsewhere() {
    _z=$(e2e_monitor_commands "$mon_before_stop" | awk -F '\t' '$1 != "rmmod" && /qom-set/ && /"value": *0[,} ]/' | cut -f1 | sort | uniq -c | tr '\n' ' ')
    _seen=$(e2e_monitor_commands "$mon_before_stop" | cut -f1 | sort -u | tr '\n' ' ')
    echo "monitors seen for: $_seen${_z:+; interval 0 set on: $_z}"
    [ -z "$_z" ]
}

# No flood: while libvirtd is away, per domain at most what collectd's c_complain lets through (the
# first failure, then after 1, 2, 4... intervals: 2 + log2(outage / interval) lines), two about the
# connection itself, and none once every domain is read again.
libvirtd_no_flood() {
    _budget=$(awk -v a="$t_kill" -v b="$t_resumed" -v i=$I 'BEGIN { t = (b - a) / i; n = 2; while (t >= 2) { t /= 2; n++ } print n }')
    sed -n "$((log_before_libvirtd + 1)),${log_after_resume}p" "$log" | grep -F 'balloon plugin:' \
        | grep -E '\[(error|warning)\]' >"$E2E_WORK/restart-errors"
    _w=$(wc -l <"$E2E_WORK/restart-errors")
    _most=0
    _named=0
    for g in $guests; do
        _c=$(grep -c -F "'$(e2e_name "$g")'" "$E2E_WORK/restart-errors")
        [ "$_c" -gt "$_most" ] && _most=$_c
        _named=$((_named + _c))
    done
    _a=$(sed -n "$((log_after_resume + 1)),${log_before_stop}p" "$log" | grep -F 'balloon plugin:' | grep -c -E '\[(error|warning)\]')
    echo "$_w error/warning line(s) while libvirtd was away $(awk -v a="$t_kill" -v b="$t_resumed" 'BEGIN { printf "%.1f", b - a }') s (at most $_most about one domain, budget $_budget; $((_w - _named)) about none), $_a after every domain was read again"
    [ "$_most" -le "$_budget" ] && [ $((_w - _named)) -le 2 ] && [ "$_a" = 0 ]
}

check "e2e-drv: values equal virsh dommemstat's for the same last_update" values_match drv 4
check "'$QUOTED_NAME': values equal virsh dommemstat's for the same last_update" values_match quoted 2
check "e2e-drv: collectd's virt plugin agrees" virt_agrees
check "e2e-drv: last-update advances every $I s" advances_at_interval
check "e2e-drv: no last_update written twice" no_repeats drv
check "e2e-rmmod: no last_update written twice" no_repeats rmmod
check "e2e-nodrv: no stats and exactly one notification" nodrv_one_notification
check "e2e-noballoon: skipped quietly" noballoon_quiet
check "every domain's state is written every read: 0 ok, 1 never answered, 3 no balloon, 2 stale" states_written
check "e2e-rmmod: stale after its driver went, re-armed once, notified once, quiet after" rmmod_once
check "no other guest re-armed" no_rearm_elsewhere
check "libvirtd restart: no flood of errors" libvirtd_no_flood

span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
e2e_log "timings: boot to collectd $(span "$t_begin" "$t_collectd") s; e2e-restart down $(span "$t_destroyed" "$t_recreated") s, booted $(span "$t_recreated" "$t_ready") s after its start; libvirtd restart $(span "$t_kill" "$t_back") s; whole test $(elapsed) s"
[ "$failures" = 0 ] || e2e_fail "$failures check(s) failed; see above and $E2E_WORK."
status=0
