#!/bin/sh
# scripts/demo.sh, the README's first command, on the build being tested: a few seconds of it show
# a table of every answering guest with values, the notifications for the driverless and the stuck
# guest, the intervals put back at the end, and nothing left running or on disk.
set -eu
: "${abs_top_builddir:?}" "${abs_top_srcdir:?}"
so="$abs_top_builddir/plugin/.libs/balloon.so"
[ -f "$so" ] && [ -x "$abs_top_builddir/virtio/balloon-sim" ] || { echo "SKIP: not built" >&2; exit 77; }
command -v collectd >/dev/null 2>&1 || [ -x /usr/sbin/collectd ] || { echo "SKIP: no collectd" >&2; exit 77; }
# The demo loads balloon.so into a plain collectd: a sanitizer build cannot run there (tests/collectd_sim.sh
# covers that build in the daemon).
if nm -D "$so" 2>/dev/null | grep -q ' U __asan_init'; then
    echo "SKIP: balloon.so is built with AddressSanitizer" >&2
    exit 77
fi

out=$(mktemp /tmp/plugin-demo-test.XXXXXX)
trap 'rm -f "$out"' EXIT
before=$(ls -d /tmp/balloon-demo.* 2>/dev/null | sort || true)
status=0
BUILD_DIR="$abs_top_builddir" DEMO_BUILD=0 DEMO_INTERVAL=1 DEMO_SECONDS=12 \
    sh "$abs_top_srcdir/scripts/demo.sh" >"$out" 2>&1 </dev/null || status=$?

fail() { cat "$out" >&2; echo "FAIL: $*" >&2; exit 1; }
[ "$status" -eq 0 ] || fail "demo.sh exited with status $status."
for d in web batch legacy-app stuck; do
    # A row with the domain, a memory size and an update time.
    grep -Eq "^ +$d +[0-9.]+ (B|KiB|MiB|GiB) .* [0-9]{2}:[0-9]{2}:[0-9]{2} +[0-9]+s" "$out" \
        || fail "no table row with values for '$d'."
done
grep -Eq "^ +legacy-app +[0-9.]+ [KMG]i?B +- " "$out" || fail "the legacy guest shows an available memory."
grep -q "WARNING no-driver: " "$out" || fail "no never-answered notification for 'no-driver'."
grep -q "no-driver .*(no stats: its guest never answered)" "$out" || fail "no-driver is not shown as silent."
grep -q "WARNING stuck: " "$out" || fail "no stale notification for 'stuck'."
# The state the plugin sends for every domain, not the demo's own guess from the age.
grep -Eq "^ +stuck +[0-9.]+ .* [0-9]+s  stale$" "$out" || fail "stuck is never shown as stale."
for d in web batch legacy-app no-driver stuck; do
    grep -q "OKAY    $d: .*'$d'" "$out" \
        || fail "the interval of '$d' was not put back."
done
grep -q "Exiting normally" "$out" || fail "collectd did not exit normally."
tail -n 1 "$out" | grep -q "== done" || fail "the demo did not finish."
after=$(ls -d /tmp/balloon-demo.* 2>/dev/null | sort || true)
[ "$before" = "$after" ] || fail "the demo left its directory behind."
echo "PASS: the demo shows every guest, its notifications and a clean stop"
