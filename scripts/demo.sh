#!/bin/sh
# The main job: builds everything, starts balloon-sim with guests of four profiles (linux, legacy,
# none, stuck), and runs the real collectd daemon in the foreground with the balloon plugin, its
# values shown as they arrive, until Ctrl-C (or for DEMO_SECONDS=N seconds). collectd's
# write_prometheus serves them to a Prometheus (Debian's) with collectd-balloon's rules and consoles,
# whose address is printed: the VMs' dashboards and alerts. Both listen on 127.0.0.1 only, and
# Prometheus keeps its data in the demo's temporary directory. Then collectd shuts down (the plugin
# puts each guest's polling interval back) and everything this script started is stopped.
#
# DEMO_CONNECTION=URI reads the VMs of that libvirt connection instead of simulated guests, e.g.
# DEMO_CONNECTION=qemu:///system on a host whose running VMs have a balloon device.
# DEMO_INTERVAL=N sets collectd's interval, and so the polling interval (default 2 s).
# DEMO_PROMETHEUS_PORT=N (default 9090) and DEMO_COLLECTD_PORT=N (write_prometheus, default 9103)
# choose the ports on 127.0.0.1; one already taken stops the demo before it starts anything.
# DEMO_BUILD=0 uses BUILD_DIR as it is, without installing packages or building (for tests).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build/demo}
interval=${DEMO_INTERVAL:-2}
connection=${DEMO_CONNECTION:-}
prometheus_port=${DEMO_PROMETHEUS_PORT:-9090}
collectd_port=${DEMO_COLLECTD_PORT:-9103}
ps_top=$top
. "$top/scripts/prometheus-stack.sh"

if [ "${DEMO_BUILD:-1}" != 0 ]; then
    "$top/scripts/install-deps.sh"
    echo "== building in $build"
    BUILD_DIR="$build" "$top/scripts/build.sh" --enable-werror
fi

collectd=$(command -v collectd 2>/dev/null || echo /usr/sbin/collectd)
so="$build/plugin/.libs/balloon.so"
sim=${BALLOON_SIM:-$build/virtio/balloon-sim}
for f in "$collectd" "$so" /usr/lib/collectd/write_prometheus.so "$PS_PROMETHEUS"; do
    [ -e "$f" ] || { echo "demo: '$f' is missing after the build (scripts/install-deps.sh installs it)." >&2; exit 1; }
done
if [ -z "$connection" ] && [ ! -x "$sim" ]; then
    echo "demo: '$sim' is missing after the build." >&2
    exit 1
fi

for port in "$prometheus_port" "$collectd_port"; do
    if ! ps_port_free "$port"; then
        var=DEMO_PROMETHEUS_PORT
        [ "$port" = "$collectd_port" ] && var=DEMO_COLLECTD_PORT
        echo "demo: port $port on 127.0.0.1 is already taken (another Prometheus or collectd?); nothing was started. Choose another one with $var=N." >&2
        exit 1
    fi
done
[ "$prometheus_port" != "$collectd_port" ] || { echo "demo: DEMO_PROMETHEUS_PORT and DEMO_COLLECTD_PORT are both $prometheus_port." >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/balloon-demo.XXXXXX")
sim_pid=""
collectd_pid=""
view_pid=""
stop() {
    trap - INT TERM EXIT
    # Everything is stopped even when the terminal is gone: each echo then fails, and must not kill.
    trap '' HUP PIPE
    set +e
    echo
    echo "== stopping collectd (the plugin puts the polling intervals back)"
    if [ -n "$collectd_pid" ]; then
        kill -TERM "$collectd_pid" 2>/dev/null || true
        wait "$collectd_pid" 2>/dev/null || true
    fi
    # The viewer follows collectd's output until collectd is gone, then ends by itself.
    if [ -n "$view_pid" ]; then
        wait "$view_pid" 2>/dev/null || true
    fi
    if [ -n "$ps_prometheus_pid" ]; then
        echo "== stopping Prometheus"
        ps_stop "$ps_prometheus_pid"
    fi
    if [ -n "$sim_pid" ]; then
        echo "== stopping balloon-sim"
        kill -TERM "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$T"
    echo "== done"
}
trap stop EXIT
trap 'exit 130' INT TERM HUP PIPE

mkdir -p "$T/qmp" "$T/plugins"
# collectd loads only regular files from its one PluginDir: hard links to Debian's plugins (copies
# when /tmp is another filesystem), and a copy of ours.
for p in logfile write_log write_prometheus; do
    ln "/usr/lib/collectd/$p.so" "$T/plugins/" 2>/dev/null || cp "/usr/lib/collectd/$p.so" "$T/plugins/"
done
cp "$so" "$T/plugins/balloon.so"

if [ -n "$connection" ]; then
    echo "== reading the VMs of libvirt's '$connection'"
    source_line="Connection \"$connection\""
else
    echo "== balloon-sim: web, batch (linux), legacy-app (legacy), no-driver (none), stuck (stuck)"
    # Own sessions for balloon-sim and collectd: Ctrl-C reaches only this script, which then stops
    # collectd first (it puts the intervals back over balloon-sim's sockets), then balloon-sim.
    setsid "$sim" --socket-dir "$T/qmp" --domain web:linux --domain batch:linux --domain legacy-app:legacy \
        --domain no-driver:none --domain stuck:stuck >"$T/sim.out" 2>&1 &
    sim_pid=$!
    i=0
    until grep -q ready "$T/sim.out" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -gt 100 ] || ! kill -0 "$sim_pid" 2>/dev/null; then
            cat "$T/sim.out" >&2
            echo "demo: balloon-sim did not start." >&2
            exit 1
        fi
        sleep 0.1
    done
    source_line="QMPSocketDir \"$T/qmp\""
fi

# One write thread keeps write_log's lines in dispatch order, which the viewer relies on.
cat >"$T/collectd.conf" <<EOF
Hostname "demo"
FQDNLookup false
Interval $interval
WriteThreads 1
BaseDir "$T"
PIDFile "$T/collectd.pid"
PluginDir "$T/plugins"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File STDOUT
  Timestamp false
  PrintSeverity true
</Plugin>
LoadPlugin write_log
<Plugin write_log>
  Format Graphite
</Plugin>
LoadPlugin write_prometheus
<Plugin write_prometheus>
  Host "127.0.0.1"
  Port "$collectd_port"
</Plugin>
LoadPlugin balloon
<Plugin balloon>
  $source_line
  StaleAfter 3
</Plugin>
EOF

# The viewer. write_log prints each value list as a Graphite line (host.balloon-DOMAIN.type-instance
# value time). The plugin sends every domain's sample, every read, with gauge-state last, so a domain
# is complete at its state line, and a read cycle when every domain known from earlier cycles has sent
# one. Notifications and the plugin's messages are shown as they come; a message that the next
# line repeats as a notification is shown once.
cat >"$T/view.awk" <<'VIEW'
function human(b,    u, i) {
    if (b == "") return "-"
    split("B KiB MiB GiB TiB", u, " ")
    for (i = 1; b >= 1024 && i < 5; i++) b /= 1024
    return (i == 1) ? sprintf("%d %s", b, u[i]) : sprintf("%.1f %s", b, u[i])
}
function v(d, m) { return ((d SUBSEP m) in val) ? val[d, m] : "" }
function flush_pending() {
    if (pending != "") { printf "%s  %s\n", strftime("%H:%M:%S"), pending; fflush() }
    pending = ""
}
function flush_cycle(    i, d, upd, age, faults, st) {
    if (ncycle == 0) return
    printf "\n%s %-12s %10s %10s %10s %10s %9s %9s %13s %8s %5s\n", strftime("%H:%M:%S"), "domain",
        "free", "available", "total", "caches", "swap in", "swap out", "faults mn/mj", "updated", "age"
    for (i = 1; i <= ncycle; i++) {
        d = order[i]
        st = v(d, "gauge-state")
        upd = v(d, "timestamp-last_update")
        if (upd == "" || st == 1 || st == 3) {
            printf "         %-12s (no stats: %s)\n", d, state_name[st]
            continue
        }
        age = v(d, "duration-stats_age")
        faults = v(d, "vmpage_faults.minflt") "/" v(d, "vmpage_faults.majflt")
        printf "         %-12s %10s %10s %10s %10s %9s %9s %13s %8s %4ss%s\n", d,
            human(v(d, "memory-free")), human(v(d, "memory-available")), human(v(d, "memory-total")),
            human(v(d, "memory-disk_caches")), human(v(d, "swap_io-in")), human(v(d, "swap_io-out")),
            faults == "/" ? "-" : faults, upd == "" ? "-" : strftime("%H:%M:%S", upd),
            sprintf("%.0f", age), (st != 0) ? "  " state_name[st] : ""
    }
    ncycle = 0
    cycles++
    split("", incycle)
    fflush()
}
BEGIN {
    # gauge-state's encoding (collectd-balloon(5)).
    state_name[0] = "ok"; state_name[1] = "its guest never answered"; state_name[2] = "stale"
    state_name[3] = "no balloon device"; state_name[4] = "could not be read"
}
{ sub(/\r$/, "") }
/^[^ ]+\.balloon-[^ ]+ [-0-9.e+]+ [0-9]+$/ {
    flush_pending()
    split($1, part, ".")
    d = substr(part[2], 9)
    m = part[3] (part[4] != "" ? "." part[4] : "")
    val[d, m] = $2
    if (m == "gauge-state") {
        if (d in incycle) flush_cycle()
        incycle[d] = 1
        order[++ncycle] = d
        if (!(d in known)) { known[d] = 1; nknown++ }
        else if (cycles > 0 && ncycle == nknown) flush_cycle()
    }
    next
}
# write_prometheus's complaint about the order of libmicrohttpd's options is harmless.
/MHD_OPTION_EXTERNAL_LOGGER is not the first option/ { next }
/Notification: / {
    sev = $0; sub(/.*severity = /, "", sev); sub(/,.*/, "", sev)
    d = $0; sub(/.*plugin_instance = /, "", d); sub(/, type = .*/, "", d)
    msg = $0; sub(/.*message = /, "", msg)
    if (index(pending, msg) > 0) pending = ""
    flush_pending()
    printf "%s  %-7s %s: %s\n", strftime("%H:%M:%S"), sev, d, msg
    fflush()
    next
}
/balloon plugin: |plugin "balloon"|Initialization complete|Exiting normally|\[error\]/ {
    flush_pending()
    pending = $0
    sub(/^\[[0-9: -]+\] /, "", pending)
    sub(/^\[(info|notice)\] /, "", pending)
    next
}
{ flush_pending() }
END { flush_pending(); flush_cycle() }
VIEW

# Prometheus first: it applies its scrape targets a few seconds after it starts.
ps_prometheus_config "$T/prometheus.yml" "$collectd_port"
if ! ps_start_prometheus "$T/prometheus.yml" "$prometheus_port" "$T"; then
    tail -n 5 "$T/prometheus.log" >&2
    echo "demo: Prometheus did not start on 127.0.0.1:$prometheus_port (its log is above)." >&2
    exit 1
fi

version=$("$collectd" -h 2>/dev/null | sed -n 's/^collectd \([0-9][0-9.]*[0-9]\).*/\1/p' | head -1)
echo "== collectd $version with balloon.so, Interval $interval s, write_log shown below; Ctrl-C to stop"
: >"$T/collectd.out" # before tail opens it: the background job's redirection may come later
setsid "$collectd" -f -C "$T/collectd.conf" >>"$T/collectd.out" 2>&1 &
collectd_pid=$!
tail -n +1 --pid="$collectd_pid" -f "$T/collectd.out" | awk -v interval="$interval" -f "$T/view.awk" &
view_pid=$!
if ! ps_wait_write_prometheus "$collectd_port" "$T/collectd.out" "$collectd_pid"; then
    echo "demo: stopping." >&2
    exit 1
fi
echo "== Prometheus $("$PS_PROMETHEUS" --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p'): the VMs at http://127.0.0.1:$prometheus_port/consoles/collectd-balloon.html, alerts at http://127.0.0.1:$prometheus_port/alerts"

if [ -n "${DEMO_SECONDS:-}" ]; then
    sleep "$DEMO_SECONDS"
else
    wait "$collectd_pid" || true
fi
