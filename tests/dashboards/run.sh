#!/bin/sh
# tests/dashboards/run.sh: dashboards/ on the real stack. balloon-sim's guests (linux with all 16
# stats, legacy, none, stuck, oom, and a name with quotes and non-ASCII letters) are read by the real
# collectd (balloon + write_prometheus, every second), scraped every second by Debian's Prometheus
# 2.42 with the rules and consoles of dashboards/prometheus, which sends its alerts to Debian's
# Alertmanager. Then:
# - check_prometheus.py: the alerts that fire (and the Alertmanager's list), every Grafana variable
#   and panel query against balloonctl's report, the recording rules;
# - browser_check.py: headless Chromium on the consoles (every VM row, every graph drawn, no console
#   error), and a screenshot of a VM's page (kept in the build tree; DASHBOARDS_SCREENSHOT=FILE makes
#   it after 6 minutes of data and copies it there too, as the README's).
# Everything listens on 127.0.0.1, on ports the kernel picks; everything started is stopped on every
# exit path. Skipped (77) under BALLOON_SKIP_SLOW=1 and for a sanitizer build of the plugin.
set -eu

: "${abs_top_builddir:?}" "${abs_top_srcdir:?}"
ps_top=$abs_top_srcdir
. "$abs_top_srcdir/scripts/prometheus-stack.sh"
here="$abs_top_srcdir/tests/dashboards"
so="$abs_top_builddir/plugin/.libs/balloon.so"
sim="$abs_top_builddir/virtio/balloon-sim"
balloonctl="$abs_top_builddir/agent/balloonctl"
collectd=$(command -v collectd 2>/dev/null || echo /usr/sbin/collectd)
chromium=${CHROMIUM:-/usr/bin/chromium}

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "${BALLOON_SKIP_SLOW:-0}" = 1 ] && skip "BALLOON_SKIP_SLOW=1 (it runs in the plain pass)."
[ -f "$so" ] && [ -x "$sim" ] && [ -x "$balloonctl" ] || skip "the plugin, balloon-sim or balloonctl is not built."
# A plain collectd cannot load a sanitizer build (tests/collectd_sim.sh covers that build in the daemon).
if nm -D "$so" 2>/dev/null | grep -q ' U __asan_init'; then
    skip "balloon.so is built with AddressSanitizer."
fi
if [ "$(id -u)" = 0 ]; then
    "$abs_top_srcdir/scripts/install-deps.sh" >&2 || fail "scripts/install-deps.sh failed."
fi
for f in "$collectd" /usr/lib/collectd/write_prometheus.so "$PS_PROMETHEUS" "$PS_ALERTMANAGER" "$chromium"; do
    [ -x "$f" ] || [ -f "$f" ] || skip "'$f' is not installed (scripts/install-deps.sh, as root, installs it)."
done

T=$(mktemp -d /tmp/dashboards-test.XXXXXX)
sim_pid=""
collectd_pid=""
ok=0
cleanup() {
    trap - EXIT INT TERM HUP
    ps_stop "$collectd_pid"
    ps_stop "$ps_prometheus_pid"
    ps_stop "$ps_alertmanager_pid"
    ps_stop "$sim_pid"
    if [ "$ok" = 1 ]; then
        rm -rf "$T"
    else
        for log in collectd.log collectd.err prometheus.log alertmanager.log sim.out chromium.log; do
            [ -s "$T/$log" ] || continue
            echo "--- $log (last lines)" >&2
            tail -n 30 "$T/$log" >&2
        done
        echo "(kept $T)" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

QUOTED="db \"prod\" l'été"
VMS="web legacy-app no-driver stuck oom-guest"
HOST=hv-test

# The guests, every stat of QEMU 9.2 for those that send them.
"$sim" --socket-dir "$T/qmp" --stats 16 --domain web:linux --domain legacy-app:legacy \
    --domain no-driver:none --domain stuck:stuck --domain oom-guest:oom --domain "$QUOTED:linux" \
    >"$T/sim.out" 2>&1 </dev/null &
sim_pid=$!
i=0
until grep -q ready "$T/sim.out" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 100 ] && kill -0 "$sim_pid" 2>/dev/null || fail "balloon-sim did not start."
    sleep 0.1
done

collectd_port=$(ps_free_port)
prometheus_port=$(ps_free_port)
alertmanager_port=$(ps_free_port)

mkdir -p "$T/plugins"
for p in logfile write_prometheus; do
    ln "/usr/lib/collectd/$p.so" "$T/plugins/" 2>/dev/null || cp "/usr/lib/collectd/$p.so" "$T/plugins/"
done
cp "$so" "$T/plugins/balloon.so"
cat >"$T/collectd.conf" <<EOF
Hostname "$HOST"
FQDNLookup false
Interval 1
BaseDir "$T"
PIDFile "$T/collectd.pid"
PluginDir "$T/plugins"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$T/collectd.log"
  Timestamp true
  PrintSeverity true
</Plugin>
LoadPlugin write_prometheus
<Plugin write_prometheus>
  Host "127.0.0.1"
  Port "$collectd_port"
</Plugin>
LoadPlugin balloon
<Plugin balloon>
  QMPSocketDir "$T/qmp"
  StaleAfter 3
</Plugin>
EOF
ps_start_alertmanager "$alertmanager_port" "$T" || fail "the Alertmanager did not start on 127.0.0.1:$alertmanager_port."
ps_prometheus_config "$T/prometheus.yml" "$collectd_port" "$alertmanager_port"
ps_start_prometheus "$T/prometheus.yml" "$prometheus_port" "$T" \
    || fail "Prometheus did not start on 127.0.0.1:$prometheus_port."
# Prometheus applies its targets a few seconds after it starts: collectd starts at its first scrape
# attempt, so that Prometheus sees every value of the first seconds (the stuck guest's three answers).
i=0
until ps_http_get "http://127.0.0.1:$prometheus_port/api/v1/query?query=up" 2>/dev/null | grep -q '"job":"collectd"'; do
    i=$((i + 1))
    [ "$i" -le 150 ] || fail "Prometheus did not begin to scrape in 30 s."
    sleep 0.2
done
"$collectd" -f -C "$T/collectd.conf" >"$T/collectd.err" 2>&1 </dev/null &
collectd_pid=$!
ps_wait_write_prometheus "$collectd_port" "$T/collectd.log" "$collectd_pid" || fail "collectd (above)."

started=$(date +%s)
echo "stack: collectd :$collectd_port, Prometheus :$prometheus_port, Alertmanager :$alertmanager_port"

python3 - "$T/spec.json" "$QUOTED" "$VMS" <<EOF
import json, sys
vms = sys.argv[3].split() + [sys.argv[2]]
json.dump({
    "prometheus": "http://127.0.0.1:$prometheus_port",
    "alertmanager": "http://127.0.0.1:$alertmanager_port",
    "balloonctl": "$balloonctl", "qmp_dir": "$T/qmp",
    "grafana": "$abs_top_srcdir/dashboards/grafana/collectd-balloon.json",
    "host": "$HOST", "vms": vms,
    "alerts": [["CollectdBalloonNeverAnswered", "no-driver"], ["CollectdBalloonOOMKill", "oom-guest"],
               ["CollectdBalloonStatsStale", "stuck"]],
}, open(sys.argv[1], "w"), ensure_ascii=False)
EOF
python3 "$here/check_prometheus.py" "$T/spec.json" || fail "the rules, alerts or Grafana queries are wrong (above)."

# The browser: the fleet, then VM pages; the first one's screenshot is the README's. For the README,
# six minutes of data first, so that the graphs of 5-minute rates have whole windows.
if [ -n "${DASHBOARDS_SCREENSHOT:-}" ]; then
    wait=$((started + ${DASHBOARDS_SCREENSHOT_AFTER:-360} - $(date +%s)))
    if [ "$wait" -gt 0 ]; then
        echo "waiting $wait s for the screenshot's data"
        sleep "$wait"
    fi
fi
duration=$(( $(date +%s) - started + 5 ))
python3 - "$T/browser.json" "$QUOTED" "$HOST" "$duration" <<'EOF'
import json, sys
quoted, host, duration = sys.argv[2], sys.argv[3], int(sys.argv[4])
every = ["cb-memory", "cb-swap", "cb-faults", "cb-events", "cb-age"]
rows = [[host, vm] for vm in ["web", "legacy-app", "no-driver", "stuck", "oom-guest", quoted]]
json.dump({"rows": rows, "duration": duration, "vm_pages": [
    {"host": host, "vm": "oom-guest", "graphs": every},
    {"host": host, "vm": quoted, "graphs": every},
    {"host": host, "vm": "legacy-app", "graphs": ["cb-memory", "cb-swap", "cb-faults", "cb-age"],
     "absent": ["cb-events"]},
    {"host": host, "vm": "no-driver", "graphs": ["cb-age"], "absent": ["cb-memory"]},
]}, open(sys.argv[1], "w"), ensure_ascii=False)
EOF
mkdir -p "$abs_top_builddir/tests/dashboards"
shot="$abs_top_builddir/tests/dashboards/collectd-balloon-vm.png"
python3 "$here/browser_check.py" "$chromium" "$T" "http://127.0.0.1:$prometheus_port" "$T/browser.json" "$shot" \
    || fail "the consoles do not show what they should in Chromium (above)."
if [ -n "${DASHBOARDS_SCREENSHOT:-}" ]; then
    cp "$shot" "$DASHBOARDS_SCREENSHOT"
    echo "screenshot copied to $DASHBOARDS_SCREENSHOT"
fi

kill -0 "$collectd_pid" 2>/dev/null || fail "collectd died during the test."
ok=1
echo "PASS: dashboards on the real collectd, Prometheus, Alertmanager and Chromium"
