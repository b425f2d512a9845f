#!/bin/sh
# valgrind over the suite: every C test program of make check (the cmocka unit tests, the fault
# injection, the fuzz replays, the short soak) runs under
#   valgrind --error-exitcode=1 --leak-check=full
# and then the integration path: balloon-sim, balloonctl and the agent against it, each process under
# valgrind (balloon-sim until SIGTERM, so its teardown is checked too). Any memory error or leak fails.
#
#   tests/valgrind.sh [BUILD_DIR]    a configured plain build (default: build/check); it is built here.
#
# BALLOON_SKIP_SLOW=1 (the suite's big scales are cut, as in the sanitizer pass) and BALLOON_VALGRIND=1
# (timing bounds get valgrind's slack) are set for the tests. Suppressions: tests/valgrind.supp (only
# one-time allocations of libraries we link, each documented there).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build/check}" && pwd)
supp="$top/tests/valgrind.supp"
command -v valgrind >/dev/null || { echo "valgrind: not installed (scripts/install-deps.sh)" >&2; exit 1; }

vg_flags="--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
--show-leak-kinds=definite,indirect,possible --track-fds=no --num-callers=40 --suppressions=$supp \
--gen-suppressions=all"
export BALLOON_SKIP_SLOW=1 BALLOON_VALGRIND=1

make -C "$build" -s -j"$(nproc)"
# The C tests: TESTS minus the shell scripts, which run the programs outside valgrind.
c_tests=$(printf 'print-tests:\n\t@echo $(TESTS)\n' | make -s -C "$build" -f Makefile -f - print-tests |
    tr ' ' '\n' | grep -v '\.sh$' | tr '\n' ' ')
echo "== valgrind: the C tests"
# shellcheck disable=SC2086
if ! make -C "$build" -s -j"$(nproc)" check TESTS="$c_tests" LOG_COMPILER=valgrind LOG_FLAGS="$vg_flags"; then
    for t in $c_tests; do
        if grep -q '^:test-result: FAIL\|^:test-result: ERROR' "$build/$t.trs" 2>/dev/null; then
            echo "== $t.log" >&2
            tail -80 "$build/$t.log" >&2
        fi
    done
    exit 1
fi

echo "== valgrind: balloon-sim, balloonctl and the agent"
sim="$build/virtio/balloon-sim"
ctl="$build/agent/balloonctl"
tmp=$(mktemp -d /tmp/valgrind-int.XXXXXX)
simpid=""
cleanup() {
    [ -n "$simpid" ] && kill "$simpid" 2>/dev/null || true
    [ -n "$simpid" ] && wait "$simpid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck disable=SC2086
valgrind $vg_flags --log-file="$tmp/sim.vg" "$sim" --socket-dir "$tmp/qmp" --domain vm1:linux \
    --domain vm2:legacy --domain vm3:none --domain vm4:stuck >"$tmp/sim.out" 2>&1 &
simpid=$!
i=0
until grep -q ready "$tmp/sim.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 "$simpid" 2>/dev/null; then
        cat "$tmp/sim.out" "$tmp/sim.vg" >&2
        echo "valgrind: balloon-sim did not get ready" >&2
        exit 1
    fi
    sleep 0.1
done
failed=0
# balloonctl exits 1 when a domain cannot be read (vm3 never answers): valgrind's own verdict is 99
for cmd in "list" "stats --json" "set-interval 2" "stats" "watch --interval 1 --count 3" "set-interval 0"; do
    status=0
    # shellcheck disable=SC2086
    valgrind $vg_flags --error-exitcode=99 --log-file="$tmp/ctl.vg" "$ctl" --qmp-dir "$tmp/qmp" \
        --timeout 10000 $cmd >"$tmp/ctl.out" 2>&1 || status=$?
    echo "  balloonctl $cmd: exit $status, $(grep -c . "$tmp/ctl.out") lines of output"
    if [ "$status" = 99 ] || [ "$status" -gt 2 ]; then
        echo "valgrind: balloonctl $cmd:" >&2
        cat "$tmp/ctl.out" "$tmp/ctl.vg" >&2
        failed=1
    fi
done
kill -TERM "$simpid"
if ! wait "$simpid"; then
    echo "valgrind: balloon-sim:" >&2
    cat "$tmp/sim.vg" "$tmp/sim.out" >&2
    failed=1
fi
simpid=""
[ "$failed" = 0 ] || exit 1
echo "valgrind: clean"
