#!/bin/sh
# tests/fleet/bench.sh OUTDIR: the fleet benchmark, part of `make bench` (tests/bench/run.sh).
#
# H hypervisors x G simulated guests (10 x 1000 = 10 000 VMs; BENCH_QUICK=1: 2 x 100), each
# hypervisor a network namespace with its balloon-sim and its collectd + plugin, sending through
# the network plugin (dashboards/fleet/hypervisor.conf) to one central collectd (central.conf)
# scraped by the real Prometheus (prometheus.yml), as in tests/fleet/run.sh. After a warm-up,
# measured over M read cycles:
#   - values received per second (samples that reached Prometheus) and values lost: every VM's
#     every series, every read cycle, counted from the samples themselves (tests/fleet/bench.py);
#   - the central collectd's CPU (utime + stime) per value and as a share of one core;
#   - the delay from a guest's last-update to its value being queryable in Prometheus (polled once
#     a second: the figures are up to 1 s late), median and p99.
# Writes OUTDIR/fleet.json (the "fleet" object of results.json) and OUTDIR/table.txt. Targets:
# nothing lost at a 10 s interval, the central collectd under 10% of one core, p99 delay under 2
# intervals. Root only (network namespaces).
set -eu

: "${abs_top_srcdir:?run through make bench}" "${abs_top_builddir:?run through make bench}"
out=${1:?usage: bench.sh OUTDIR}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    hvs=2 guests=100 interval=5 scrape=2s cycles=6
else
    hvs=10 guests=1000 interval=10 scrape=5s cycles=12
fi
hvs=${BENCH_FLEET_HYPERVISORS:-$hvs}
cycles=${BENCH_FLEET_CYCLES:-$cycles}
guests=${BENCH_FLEET_GUESTS:-$guests}
so=$abs_top_builddir/plugin/.libs/balloon.so
sim=$abs_top_builddir/virtio/balloon-sim
collectd=$(command -v collectd 2>/dev/null || echo /usr/sbin/collectd)
rules=${FLEET_RULES:-$abs_top_srcdir/dashboards/prometheus/collectd-balloon.rules.yml}
prom_port=9090

FLEET_SRC=$abs_top_srcdir
FLEET_WORK=$(mktemp -d /tmp/fleet-bench.XXXXXX)
. "$abs_top_srcdir/tests/fleet/lib.sh"
. "$abs_top_srcdir/tests/fleet/conf.sh"
say() { printf '[bench fleet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench fleet: %s\n' "$*" >&2; exit 1; }
finish() {
    status=$?
    trap - EXIT INT TERM
    fleet_cleanup || status=1
    if [ "$status" = 0 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$FLEET_WORK"; else say "kept $FLEET_WORK"; fi
    exit "$status"
}
trap finish EXIT
trap 'exit 1' INT TERM HUP

[ "$(id -u)" = 0 ] || die "network namespaces need root."
for f in "$so" "$sim" "$rules"; do [ -e "$f" ] || die "'$f' is missing."; done
# 1000 guests are 1000 QMP sockets in each hypervisor's collectd and 2000 in its balloon-sim.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench() { # the measurements, in the central namespace where Prometheus listens
    fleet_bg ip netns exec "$FLEET_CENTRAL_NS" python3 "$abs_top_srcdir/tests/fleet/bench.py" "$prom_port" "$@"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# UDP datagrams the central namespace's kernel dropped for a full receive buffer.
udp_drops() {
    ip netns exec "$FLEET_CENTRAL_NS" awk '$1 == "Udp:" && $2 ~ /^[0-9]/ { print $6 }' /proc/net/snmp
}

fleet_take_slot || die "no fleet slot."
fleet_central_ns || die "cannot make the central namespace."
fleet_plugin_dir "$so" || die "cannot make the plugin directory."
umask 077
k=1
while [ "$k" -le "$hvs" ]; do echo "hv$k: pw-hv$k-$$"; k=$((k + 1)); done >"$FLEET_WORK/passwd"
umask 022
fleet_conf_central "$FLEET_CENTRAL_ADDR" "$FLEET_WORK/passwd" "$interval"
fleet_conf_prometheus "$FLEET_CENTRAL_ADDR:9103" "$rules" "$scrape"

say "$hvs hypervisors x $guests guests, interval $interval s, scrape $scrape"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$FLEET_WORK/central.log"
fleet_start "$FLEET_CENTRAL_NS" central "$collectd" -f -C "$FLEET_WORK/central.conf"
central_pid=$FLEET_PID
fleet_wait 20 'grep -q "Initialization complete" "$FLEET_WORK/central.log"' || die "the central collectd did not start."
fleet_start "$FLEET_CENTRAL_NS" prometheus prometheus --config.file="$FLEET_WORK/prometheus.yml" \
    --storage.tsdb.path="$FLEET_WORK/tsdb" --web.listen-address="127.0.0.1:$prom_port"
prom_pid=$FLEET_PID

hv_pids=
k=1
while [ "$k" -le "$hvs" ]; do
    h=hv$k
    fleet_hypervisor_ns "$h" "$k" >/dev/null || die "cannot make the namespace of $h."
    fleet_start "$FLEET_PREFIX-$h" "sim-$h" "$sim" --socket-dir "$FLEET_WORK/qmp-$h" --domains "$guests"
    hv_pids="$hv_pids $FLEET_PID"
    fleet_conf_hypervisor "$h" "$h" "pw-$h-$$" Encrypt "$FLEET_CENTRAL_ADDR" "$interval" \
        "$FLEET_WORK/plugins" "QMPSocketDir \"$FLEET_WORK/qmp-$h\""
    k=$((k + 1))
done
k=1
while [ "$k" -le "$hvs" ]; do
    fleet_wait 120 'grep -q ready "$FLEET_WORK/sim-hv$k.out"' || die "balloon-sim of hv$k did not get ready."
    k=$((k + 1))
done
# The hypervisors' collectds start one after the other, BENCH_FLEET_STAGGER seconds apart (30; quick:
# Interval / H), as a fleet's hosts do: collectd reads first when it starts, so their reads spread
# over the interval, and the central collectd's write_prometheus takes in each hypervisor's series
# before the next one's. All at once, it sorts a metric family's whole array at every new series
# (collectd 5.12), falls minutes behind, and its cache then times series out and takes them in
# again: it never catches up at 10 000 VMs here (README, "Many hypervisors").
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    stagger=$(awk -v i="$interval" -v h="$hvs" 'BEGIN { printf "%.3f", i / h }')
else
    stagger=30
fi
stagger=${BENCH_FLEET_STAGGER:-$stagger}
k=1
while [ "$k" -le "$hvs" ]; do
    : >"$FLEET_WORK/hv$k.log"
    fleet_start "$FLEET_PREFIX-hv$k" "hv$k" "$collectd" -f -C "$FLEET_WORK/hv$k.conf"
    hv_pids="$hv_pids $FLEET_PID"
    [ "$k" -lt "$hvs" ] && fleet_bg sleep "$stagger"
    k=$((k + 1))
done
vms=$((hvs * guests))
# A central collectd that has not caught up by then is measured as it is: the table says so.
if bench wait-vms "$vms" "$interval" 900 >"$FLEET_WORK/fill"; then
    fill=$(cat "$FLEET_WORK/fill")
    say "all $vms VMs current in Prometheus $fill s after the last collectd was started; warming up"
else
    fill=-1
    say "not every VM is current in Prometheus 900 s after the last collectd was started; measuring anyway"
fi
# Three more cycles: every guest polled at the interval the plugin set, every series there.
fleet_bg sleep $((3 * interval))

t1=$(fleet_now)
u1=$(udp_drops)
c1=$(cpu_ticks "$central_pid")
p1=$(cpu_ticks "$prom_pid")
s1=0
for p in $hv_pids; do s1=$((s1 + $(cpu_ticks "$p"))); done
t2=$(awk -v t="$t1" -v n="$cycles" -v i="$interval" 'BEGIN { printf "%.3f", t + n * i }')
ip netns exec "$FLEET_CENTRAL_NS" python3 "$abs_top_srcdir/tests/fleet/bench.py" "$prom_port" delays "$FLEET_WORK/delays" "$t2" &
poller=$!
say "measuring $cycles cycles"
fleet_bg sleep $((cycles * interval))
c2=$(cpu_ticks "$central_pid")
p2=$(cpu_ticks "$prom_pid")
s2=0
for p in $hv_pids; do s2=$((s2 + $(cpu_ticks "$p"))); done
t2=$(fleet_now)
u2=$(udp_drops)
wait "$poller" || die "the delay poller failed."
# What was read by t2 has been flushed and scraped one interval later.
fleet_bg sleep "$interval"
hosts=$(seq -f 'hv%g' 1 "$hvs")
# shellcheck disable=SC2086
bench account "$t1" "$t2" "$interval" "$guests" $hosts >"$FLEET_WORK/account.json" || die "the accounting failed."
grep -q . "$FLEET_WORK/delays" || say "no delay was measured: no new value reached Prometheus"
# (libmicrohttpd's note on its logger option is logged as an error at every start: not ours)
errors=$(grep '\[error\]' "$FLEET_WORK/central.log" | grep -vc MHD_OPTION_EXTERNAL_LOGGER || true)
central_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$central_pid/status")

hz=$(getconf CLK_TCK)
load="$load_start / $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$FLEET_WORK" "$out" "$t1" "$t2" "$c1" "$c2" "$p1" "$p2" "$s1" "$s2" "$hz" "$hvs" "$guests" \
    "$interval" "$scrape" "$fill" "$errors" $((u2 - u1)) "$load" "$central_kib" "$stagger" <<'EOF'
import json, sys
(work, out, t1, t2, c1, c2, p1, p2, s1, s2, hz, hvs, guests, interval, scrape, fill, errors, drops, load,
 central_kib, stagger) = sys.argv[1:]
t1, t2, hz, interval = float(t1), float(t2), float(hz), float(interval)
span = t2 - t1
acc = json.load(open(work + "/account.json"))
d = sorted(float(l.split()[3]) for l in open(work + "/delays"))
def pct(p):
    return round(d[min(len(d) - 1, int(round(p / 100.0 * (len(d) - 1))))], 2) if d else None
def secs(v):
    return "n/a" if v is None else "%.2f s" % v
central_cpu = (int(c2) - int(c1)) / hz
lost = acc["lost"] + acc["cycles_lost"] + acc["vms_missing"]
r = {
    "hypervisors": int(hvs), "guests_per_hypervisor": int(guests), "vms": int(hvs) * int(guests),
    "interval_s": interval, "scrape_interval": scrape, "measured_s": round(span, 1),
    "values_expected": acc["expected"], "values_received": acc["arrived"],
    "values_received_per_s": round(acc["arrived"] / span, 1),
    "values_lost": acc["lost"], "cycles_lost": acc["cycles_lost"], "vms_missing": acc["vms_missing"],
    "central_cpu_core_pct": round(100 * central_cpu / span, 2),
    "central_cpu_us_per_value": round(1e6 * central_cpu / acc["arrived"], 2) if acc["arrived"] else None,
    "prometheus_cpu_core_pct": round(100 * (int(p2) - int(p1)) / hz / span, 2),
    "hypervisors_cpu_core_pct": round(100 * (int(s2) - int(s1)) / hz / span, 2),
    "delay_median_s": pct(50), "delay_p99_s": pct(99), "delay_max_s": pct(100),
    "delays_measured": len(d), "all_vms_visible_after_s": float(fill) if float(fill) >= 0 else None,
    "central_errors_logged": int(errors),
    "udp_receive_buffer_drops": int(drops), "central_peak_rss_mib": round(int(central_kib) / 1024, 1),
    "hypervisors_started_apart_s": float(stagger),
}
json.dump(r, open(out + "/fleet.json", "w"), indent=None)
verdict = lambda ok: "MET" if ok else "MISSED"
note = "" if (r["vms"] == 10000 and interval == 10) else " (measured at %d VMs, %g s: not the target's 10000, 10 s)" % (r["vms"], interval)
lines = [
    "",
    "fleet workload (%d hypervisors x %d guests in network namespaces -> network plugin, Encrypt -> one central collectd -> Prometheus, interval %g s, scrape %s), %.0f s measured"
    % (r["hypervisors"], r["guests_per_hypervisor"], interval, scrape, span),
    "machine load average (1, 5, 15 min) at the start / the end: " + load,
    "%14s %12s %9s %14s %14s %11s %11s %12s" % ("values/s", "received", "lost", "central core", "central/value",
                                                 "delay p50", "delay p99", "prometheus"),
    "%14.1f %12d %9d %13.2f%% %14s %11s %11s %11.2f%%" % (
        r["values_received_per_s"], r["values_received"], acc["lost"], r["central_cpu_core_pct"],
        "n/a" if r["central_cpu_us_per_value"] is None else "%.2f us" % r["central_cpu_us_per_value"], secs(r["delay_median_s"]), secs(r["delay_p99_s"]), r["prometheus_cpu_core_pct"]),
    "hypervisors started %g s apart; %s; central collectd: %d errors logged, %d UDP datagrams dropped by its receive buffer, peak RSS %.0f MiB"
    % (r["hypervisors_started_apart_s"],
       ("all %d VMs current in Prometheus (a state less than 2 intervals old) %.1f s after the last one"
        % (r["vms"], r["all_vms_visible_after_s"])) if r["all_vms_visible_after_s"] is not None else
       "NOT all %d VMs current in Prometheus 900 s after the last one (README, \"How far one central collectd goes\")" % r["vms"],
       r["central_errors_logged"], r["udp_receive_buffer_drops"], r["central_peak_rss_mib"]),
    "",
    "fleet targets",
    "  %-7s nothing lost: %d of %d values arrived, %d read cycles and %d VMs missing%s" % (
        verdict(lost == 0), acc["arrived"], acc["expected"], acc["cycles_lost"], acc["vms_missing"], note),
    "  %-7s the central collectd under 10%% of one core: %.2f%%%s" % (
        verdict(r["central_cpu_core_pct"] < 10), r["central_cpu_core_pct"], note),
    "  %-7s p99 delay from last-update to queryable under 2 intervals (%g s): %s%s" % (
        verdict(r["delay_p99_s"] is not None and r["delay_p99_s"] < 2 * interval), 2 * interval,
        secs(r["delay_p99_s"]), note),
]
if acc["examples"]:
    lines.append("  lost, for example: " + "; ".join(acc["examples"][:5]))
open(out + "/table.txt", "w").write("\n".join(lines) + "\n")
EOF
cat "$out/table.txt"
