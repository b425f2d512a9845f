#!/bin/sh
# The benchmark harness must keep working: plugin_host loads collectd's own virt plugin (against
# libvirt's test driver, no daemon needed) for 3 cycles and must see values dispatched, and must
# fail when a cycle covers fewer sources than required. When balloon.so and balloon-sim are built,
# it also reads our plugin against a few simulated guests through QMPSocketDir, and the socket
# floor (floor_qmp) over the same guests.
set -u
build=${abs_top_builddir:-.}
host="$build/tests/bench/plugin_host"
virt=/usr/lib/collectd/virt.so
work=$(mktemp -d /tmp/bench-smoke.XXXXXX)
BENCH_SIM_PIDS=
cleanup() {
    [ -n "$BENCH_SIM_PIDS" ] && bench_sim_stop
    rm -rf "$work"
}
# shellcheck source=sim.sh
. "${abs_top_srcdir:-.}/tests/bench/sim.sh"
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -x "$host" ] || fail "plugin_host is not built at '$host'."
if [ ! -f "$virt" ]; then
    echo "SKIP: collectd's virt plugin is not installed at '$virt'."
    exit 77
fi

# Leaks inside libvirt and virt.so are not ours to report; the host's own allocations still are.
printf 'leak:libvirt.so\nleak:virt.so\nleak:libxml2.so\nleak:libglib\n' >"$work/lsan.supp"
LSAN_OPTIONS="suppressions=$work/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

virt_conf() {
    cat <<'CONF'
Connection "test:///default"
ExtraStats "memory"
ReportBlockDevices false
ReportNetworkInterfaces false
CONF
}
virt_conf >"$work/virt.conf"

echo "== virt.so, 3 cycles against test:///default"
"$host" -q -i 1 -k 3 -w 1 -c "$work/virt.conf" -d "$virt" >"$work/virt.out" 2>"$work/virt.err" ||
    { cat "$work/virt.out" "$work/virt.err" >&2; fail "plugin_host failed on virt.so."; }
cat "$work/virt.out"
n=$(grep -c '^cycle ' "$work/virt.out")
[ "$n" = 3 ] || fail "expected 3 measured cycles, got $n."
awk '/^cycle / { if ($8 + 0 < 1 || $12 + 0 < 1) bad = 1 } END { exit bad }' "$work/virt.out" ||
    fail "a cycle dispatched no value lists or no source."
grep -q '^PUTVAL test/virt/memory-actual_balloon [0-9]' "$work/virt.out" ||
    fail "virt's memory-actual_balloon of the test domain was not dispatched."
grep -q '^result plugin virt read_callbacks 1 .* failed_cycles 0$' "$work/virt.out" ||
    fail "the result line is missing or reports failed cycles."

echo "== the harness refuses a run that covered fewer sources than required"
if "$host" -q -i 1 -k 2 -s 2 -c "$work/virt.conf" "$virt" >"$work/neg.out" 2>"$work/neg.err"; then
    fail "plugin_host accepted cycles with 1 source when 2 were required."
fi
grep -q 'at least 1 value lists for 2 sources' "$work/neg.err" ||
    { cat "$work/neg.err" >&2; fail "the refusal does not say why."; }

echo "== a plugin that fails to configure is an error, not an empty run"
if "$host" -q -i 1 -k 1 -o 'NoSuchOption 1' "$virt" >/dev/null 2>"$work/bad.err"; then
    fail "plugin_host accepted a configuration virt refused."
fi

balloon="$build/plugin/.libs/balloon.so"
sim="$build/virtio/balloon-sim"
if [ -f "$balloon" ] && [ -x "$sim" ]; then
    echo "== balloon.so, 3 cycles against balloon-sim with 3 guests"
    bench_sim_start "$sim" "$work/sim" 3 || fail "balloon-sim did not start."
    "$host" -q -k 3 -w 1 -s 3 -o "QMPSocketDir \"$work/sim\"" "$balloon" >"$work/balloon.out" \
        2>"$work/balloon.err" ||
        { cat "$work/balloon.out" "$work/balloon.err" >&2; fail "plugin_host failed on balloon.so."; }
    cat "$work/balloon.out"
    grep -q '^result plugin balloon read_callbacks 1 .* failed_cycles 0$' "$work/balloon.out" ||
        fail "the result line is missing or reports failed cycles."
    echo "== the socket floor, 6 cycles (one verifying the interval) over the same guests"
    floor_qmp="$build/tests/bench/floor_qmp"
    "$floor_qmp" -d "$work/sim" -k 6 -w 1 -s 3 >"$work/floor.out" 2>"$work/floor.err" ||
        { cat "$work/floor.out" "$work/floor.err" >&2; fail "floor_qmp failed."; }
    cat "$work/floor.out"
    grep -q '^result plugin floor_qmp read_callbacks 3 .* failed_cycles 0$' "$work/floor.out" ||
        fail "floor_qmp's result line is missing or reports failed cycles."
    # the agent's commands: 3 in the first cycle, 2 in the 5th (stats and the interval), else 1
    [ "$(awk '/^warmup 1 / { print $6 }' "$work/floor.out")" = 9 ] &&
        [ "$(awk '/^cycle 4 / { print $8 }' "$work/floor.out")" = 3 ] &&
        [ "$(awk '/^cycle 5 / { print $8 }' "$work/floor.out")" = 6 ] ||
        fail "floor_qmp did not send the agent's commands per cycle."
    echo "== floor_qmp refuses a run that covered fewer guests than required"
    if "$floor_qmp" -d "$work/sim" -k 1 -w 0 -s 4 >/dev/null 2>"$work/floor-neg.err"; then
        fail "floor_qmp accepted cycles with 3 guests when 4 were required."
    fi
else
    echo "(balloon.so or balloon-sim not built yet: our plugin's part is not run)"
fi
echo "PASS"
