#!/bin/sh
# balloon-sim killed mid-cycle: the agent (tests/fault_cycles) reads balloon-sim's 200 guests cycle
# after cycle; balloon-sim is killed with SIGKILL while cycles run (its sockets stay behind, nothing
# listens), then started again on the same directory. Every cycle must end within the bound, none
# crash, and once balloon-sim is back the cycles read every guest again. Under the sanitizer pass the
# agent runs with ASan/LSan, so what the kill did leaks nothing.
set -eu
sim="$abs_top_builddir/virtio/balloon-sim"
cycles="$abs_top_builddir/tests/fault_cycles"
[ -x "$sim" ] || { echo "SKIP: $sim is not built"; exit 77; }
n=200
tmp=$(mktemp -d /tmp/fault-sim.XXXXXX)
simpid=""
cyclepid=""
cleanup() {
    for p in $simpid $cyclepid; do kill "$p" 2>/dev/null || true; done
    for p in $simpid $cyclepid; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -20 "$tmp/cycles.out" 2>/dev/null; cat "$tmp/cycles.err" 2>/dev/null; exit 1; }

start_sim() {
    : >"$tmp/sim.out"
    "$sim" --socket-dir "$tmp/qmp" --domains "$n" >"$tmp/sim.out" 2>"$tmp/sim.err" &
    simpid=$!
    i=0
    until grep -q ready "$tmp/sim.out"; do
        i=$((i + 1))
        [ $i -le 600 ] && kill -0 "$simpid" 2>/dev/null || { cat "$tmp/sim.err"; fail "balloon-sim did not start"; }
        sleep 0.05
    done
}

# wait_for AWK-CONDITION COUNT DESCRIPTION: until COUNT more cycle lines (after the current last one)
# satisfy the condition on $3 (read), $5 (ok), $7 (failed).
wait_for() {
    from=$(wc -l <"$tmp/cycles.out")
    i=0
    while [ "$(tail -n +"$((from + 1))" "$tmp/cycles.out" | awk "$1 { c++ } END { print c + 0 }")" -lt "$2" ]; do
        i=$((i + 1))
        [ $i -le 600 ] && kill -0 "$cyclepid" 2>/dev/null || fail "no $3"
        sleep 0.05
    done
}

start_sim
: >"$tmp/cycles.out" # before the background job's own redirection, which may come after wait_for reads it
"$cycles" "$tmp/qmp" 1000 0 "$tmp/stop" >"$tmp/cycles.out" 2>"$tmp/cycles.err" &
cyclepid=$!
wait_for "\$5 == $n" 5 "cycles reading every guest"
echo "ok: $n guests read"

kill -KILL "$simpid"
wait "$simpid" 2>/dev/null || true
simpid=""
killed_at=$(wc -l <"$tmp/cycles.out")
wait_for "\$5 == 0" 3 "cycles after the kill"
echo "ok: cycles go on after balloon-sim was killed (around cycle $killed_at):"
sed -n "$((killed_at - 1)),$((killed_at + 3))p" "$tmp/cycles.out" | sed 's/^/    /'
[ -n "$(ls "$tmp/qmp")" ] || fail "the killed balloon-sim's sockets are gone; the test wants them left behind"

start_sim
wait_for "\$5 == $n" 5 "cycles reading every guest after the restart"
echo "ok: every guest read again after the restart"
touch "$tmp/stop"
wait "$cyclepid" || fail "fault_cycles failed"
cyclepid=""
echo "ok: $(wc -l <"$tmp/cycles.out") cycles, the longest $(awk '{ if ($9 > m) m = $9 } END { print m + 0 }' "$tmp/cycles.out") ms"
