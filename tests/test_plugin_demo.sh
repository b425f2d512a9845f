#!/bin/sh
# scripts/demo.sh, the README's first command, on the build being tested: a few seconds of it show
# a table of every answering guest with values, the notifications for the driverless and the stuck
# guest, and the address of a Prometheus whose console lists every guest; at the end the intervals
# are put back and nothing is left running or on disk. Then a demo whose port is taken says so and
# starts nothing.
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
[ -x /usr/bin/prometheus ] && [ -f /usr/lib/collectd/write_prometheus.so ] \
    || { echo "SKIP: no prometheus or write_prometheus (scripts/install-deps.sh)" >&2; exit 77; }
ps_top=$abs_top_srcdir
. "$abs_top_srcdir/scripts/prometheus-stack.sh"

out=$(mktemp /tmp/plugin-demo-test.XXXXXX)
# The demo's temporary directory goes here, so that other runs' do not count.
tmp=$(mktemp -d /tmp/plugin-demo-tmp.XXXXXX)
demo_pid=""
holder_pid=""
cleanup() {
    [ -n "$demo_pid" ] && ps_stop "$demo_pid"
    [ -n "$holder_pid" ] && ps_stop "$holder_pid"
    # A demo that failed to stop what it started: its processes name this run's own directory.
    for pid in $(pgrep -f -- "$tmp/" || true); do
        ps_stop "$pid"
    done
    rm -f "$out" "$out.page" "$out.status"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { cat "$out" >&2; echo "FAIL: $*" >&2; exit 1; }
prometheus_port=$(ps_free_port)
collectd_port=$(ps_free_port)
TMPDIR="$tmp" BUILD_DIR="$abs_top_builddir" DEMO_BUILD=0 DEMO_INTERVAL=1 DEMO_SECONDS=12 \
    DEMO_PROMETHEUS_PORT="$prometheus_port" DEMO_COLLECTD_PORT="$collectd_port" \
    sh "$abs_top_srcdir/scripts/demo.sh" >"$out" 2>&1 </dev/null &
demo_pid=$!
# While it runs: the address it prints serves the console, with a row for every guest.
i=0
until url=$(sed -n 's|^== Prometheus .*: the VMs at \(http://127.0.0.1:[0-9]*/consoles/collectd-balloon.html\),.*|\1|p' "$out") \
    && [ -n "$url" ]; do
    i=$((i + 1))
    [ "$i" -le 150 ] && kill -0 "$demo_pid" 2>/dev/null || fail "the demo printed no Prometheus address."
    sleep 0.2
done
[ "$url" = "http://127.0.0.1:$prometheus_port/consoles/collectd-balloon.html" ] || fail "the demo's address is '$url'."
# Prometheus scrapes a few seconds after it starts.
listed() {
    ps_http_get "$url" >"$out.page" || return 1
    for d in web batch legacy-app no-driver stuck; do
        grep -q "<td class=\"cb-name\"><a [^>]*>$d</a>" "$out.page" || return 1
    done
}
i=0
until listed; do
    i=$((i + 1))
    [ "$i" -le 40 ] || fail "the console at '$url' does not list every guest: $(cat "$out.page")"
    sleep 0.25
done
status=0
wait "$demo_pid" || status=$?
demo_pid=""
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
grep -q "== stopping Prometheus" "$out" || fail "the demo did not stop Prometheus."
ps_port_free "$prometheus_port" && ps_port_free "$collectd_port" || fail "something still listens on the demo's ports."
[ -z "$(ls -A "$tmp")" ] || fail "the demo left its directory behind."

# Its output closed early (a terminal gone, `| head`): it still stops everything it started.
(status=0
 TMPDIR="$tmp" BUILD_DIR="$abs_top_builddir" DEMO_BUILD=0 DEMO_INTERVAL=1 DEMO_SECONDS=8 \
    DEMO_PROMETHEUS_PORT="$prometheus_port" DEMO_COLLECTD_PORT="$collectd_port" \
    sh "$abs_top_srcdir/scripts/demo.sh" 2>"$out" </dev/null || status=$?
 echo "$status" >"$out.status") | head -n 3 >/dev/null
[ "$(cat "$out.status")" != 0 ] || fail "the demo whose output was closed went on to the end."
[ -z "$(ls -A "$tmp")" ] || fail "the demo whose output was closed left its directory behind."
ps_port_free "$prometheus_port" && ps_port_free "$collectd_port" \
    || fail "the demo whose output was closed left something listening on its ports."

# A port already taken: one clear message, and nothing started.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$prometheus_port" &
holder_pid=$!
i=0
until ! ps_port_free "$prometheus_port"; do
    i=$((i + 1)); [ "$i" -le 50 ] || fail "could not take port $prometheus_port for the test."; sleep 0.1
done
status=0
TMPDIR="$tmp" BUILD_DIR="$abs_top_builddir" DEMO_BUILD=0 DEMO_SECONDS=5 DEMO_PROMETHEUS_PORT="$prometheus_port" \
    DEMO_COLLECTD_PORT="$collectd_port" sh "$abs_top_srcdir/scripts/demo.sh" >"$out" 2>&1 </dev/null || status=$?
[ "$status" -ne 0 ] || fail "the demo ran with its Prometheus port taken."
grep -q "^demo: port $prometheus_port on 127.0.0.1 is already taken .*DEMO_PROMETHEUS_PORT=N" "$out" \
    || fail "no clear message about the taken port."
! grep -q "^== balloon-sim" "$out" || fail "the demo started balloon-sim with its port taken."
[ -z "$(ls -A "$tmp")" ] || fail "the demo with a taken port left a directory behind."
echo "PASS: the demo shows every guest, its notifications, its Prometheus console and a clean stop; a taken port stops it before it starts"
