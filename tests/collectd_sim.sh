#!/bin/sh
# The real collectd daemon (collectd -f -C) with the built balloon.so, the csv and logfile plugins,
# against balloon-sim's guests linux, legacy, none, stuck, and a linux guest whose name holds a space
# and quotes. Asserts the series csv wrote and their values against what balloon-sim served (read
# back over QMP once the guests are paused, so the last sample is known exactly), the notifications
# in collectd's log, the intervals put back, and a clean shutdown.
set -eu

: "${abs_top_builddir:?}" "${abs_top_srcdir:?}"
. "$abs_top_srcdir/tests/collectd_lib.sh"
sim=${BALLOON_SIM:-$abs_top_builddir/virtio/balloon-sim}
cd_skip_unless_runnable
[ -x "$sim" ] || cd_skip "balloon-sim was not built."

T=$(mktemp -d /tmp/plugin-collectd-sim.XXXXXX)
sim_pid=""
collectd_pid=""
ok=0
cleanup() {
    # Only what this test started, by pid.
    [ -n "$collectd_pid" ] && kill "$collectd_pid" 2>/dev/null || true
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    [ -n "$collectd_pid" ] && wait "$collectd_pid" 2>/dev/null || true
    [ -n "$sim_pid" ] && wait "$sim_pid" 2>/dev/null || true
    if [ "$ok" = 1 ]; then
        rm -rf "$T"
    else
        echo "--- collectd.log" >&2
        cat "$T/collectd.log" >&2 2>/dev/null || true
        echo "--- collectd's stderr" >&2
        cat "$T/collectd.err" >&2 2>/dev/null || true
        echo "--- balloon-sim" >&2
        cat "$T/sim.out" >&2 2>/dev/null || true
        echo "(kept $T)" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

QNAME="it's \"my\" vm"
mkdir -p "$T/qmp" "$T/csv"
cd_plugin_dir "$T/plugins"

"$sim" --socket-dir "$T/qmp" --domain linux1:linux --domain legacy1:legacy --domain mute:none \
    --domain stuck1:stuck --domain "$QNAME:linux" >"$T/sim.out" 2>&1 &
sim_pid=$!
wait_for 10 'grep -q ready "$T/sim.out"' || fail "balloon-sim did not get ready."

# Two instances: the socket directory without the quoted guest, and that guest by its own socket.
# No PollingInterval: it follows the Interval of the LoadPlugin block, not the global one.
qesc=$(printf '%s' "$QNAME" | sed 's/["\\]/\\&/g')
cat >"$T/collectd.conf" <<EOF
Hostname "testhost"
FQDNLookup false
Interval 10
BaseDir "$T"
PIDFile "$T/collectd.pid"
PluginDir "$T/plugins"
TypesDB "$typesdb"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$T/collectd.log"
  Timestamp true
  PrintSeverity true
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "$T/csv"
  StoreRates false
</Plugin>
<LoadPlugin balloon>
  Interval 1
</LoadPlugin>
<Plugin balloon>
  QMPSocketDir "$T/qmp"
  Domain "$qesc"
  IgnoreSelected true
  StaleAfter 3
  RestoreInterval true
</Plugin>
<Plugin balloon>
  QMPSocket "$qesc" "$T/qmp/$qesc.qmp"
</Plugin>
EOF

cd_asan_preload
"$collectd" -f -C "$T/collectd.conf" >"$T/collectd.err" 2>&1 &
collectd_pid=$!
unset LD_PRELOAD

csv_dir="$T/csv/testhost"
rows() { cat "$csv_dir/balloon-$1/$2"-* 2>/dev/null | grep -c '^[0-9]' || true; }
notified() { grep -F "plugin_instance = $1, type = $2, type_instance = $3" "$T/collectd.log" 2>/dev/null \
    | grep -c "severity = $4" || true; }

wait_for 20 '[ "$(rows linux1 memory-free)" -ge 3 ] && [ "$(rows "$QNAME" memory-free)" -ge 3 ] &&
    [ "$(rows legacy1 memory-free)" -ge 3 ]' || fail "no values written for the linux and legacy guests."
wait_for 20 '[ "$(notified mute timestamp last_update WARNING)" -ge 1 ]' \
    || fail "no notification that guest 'mute' never answered."
wait_for 20 '[ "$(notified stuck1 timestamp last_update WARNING)" -ge 1 ]' \
    || fail "no notification that guest 'stuck1' went stale."
kill -0 "$collectd_pid" || fail "collectd exited early."

# Pause the answering guests (QMP stop: their polling clock stops), note what they served last, and
# wait until collectd wrote that sample.
python3 - "$T" "$QNAME" >"$T/frozen.json" <<'EOF'
import json, os, socket, sys

T, qname = sys.argv[1], sys.argv[2]

def qmp(name, *cmds):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(os.path.join(T, "qmp", name + ".qmp"))
    f = s.makefile("rwb")
    json.loads(f.readline())
    out = []
    for c in ({"execute": "qmp_capabilities"},) + cmds:
        f.write((json.dumps(c) + "\n").encode())
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "event" not in r:
                break
        if "error" in r:
            raise SystemExit("QMP error from %r on %r: %r" % (name, c, r))
        out.append(r["return"])
    s.close()
    return out[1:]

get = {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/balloon0", "property": "guest-stats"}}
interval = {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/balloon0",
                                                "property": "guest-stats-polling-interval"}}
frozen = {}
for name in ("linux1", "legacy1", qname):
    i, _, frozen[name] = qmp(name, interval, {"execute": "stop"}, get)
    # The LoadPlugin block's Interval, rounded up, as PollingInterval's default.
    if i != 1:
        raise SystemExit("FAIL: the polling interval of %r is %r while collectd runs, not 1." % (name, i))
frozen["stuck1"] = qmp("stuck1", get)[0]
json.dump(frozen, sys.stdout)
EOF

lu_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["last-update"])' \
    "$T/frozen.json" "$1"; }
for d in linux1 legacy1 "$QNAME"; do
    lu=$(lu_of "$d")
    [ "$lu" -gt 0 ] || fail "guest '$d' has no last-update in balloon-sim."
    wait_for 10 'cat "$csv_dir/balloon-$d/timestamp-last_update"-* | grep -q "^$lu\\.000,"' \
        || fail "collectd never wrote the sample of '$d' at last-update $lu."
done

kill -TERM "$collectd_pid"
status=0
wait "$collectd_pid" || status=$?
collectd_pid=""
[ "$status" -eq 0 ] || fail "collectd exited with status $status."

# Every interval is back to what the plugin found (balloon-sim starts with polling off).
python3 - "$T" "$QNAME" <<'EOF'
import json, os, socket, sys
T, qname = sys.argv[1], sys.argv[2]
for name in ("linux1", "legacy1", "mute", "stuck1", qname):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(os.path.join(T, "qmp", name + ".qmp"))
    f = s.makefile("rwb")
    f.readline()
    for c in ({"execute": "qmp_capabilities"},
              {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/balloon0",
                                                    "property": "guest-stats-polling-interval"}}):
        f.write((json.dumps(c) + "\n").encode())
        f.flush()
        r = json.loads(f.readline())
    if r.get("return") != 0:
        raise SystemExit("FAIL: the polling interval of %r is %r after collectd stopped, not 0." % (name, r))
EOF

kill -TERM "$sim_pid"
wait "$sim_pid" || true
sim_pid=""

# The series and their values.
python3 - "$T" "$QNAME" <<'EOF'
import glob, json, os, sys

T, qname = sys.argv[1], sys.argv[2]
frozen = json.load(open(os.path.join(T, "frozen.json")))
csv = os.path.join(T, "csv", "testhost")
UNSET = 18446744073709551615
failures = []

def fail(msg):
    failures.append(msg)

# QEMU's stat -> (file prefix, column); vmpage_faults is one file with minflt, majflt.
MAP = {
    "stat-free-memory": ("memory-free", 0), "stat-total-memory": ("memory-total", 0),
    "stat-available-memory": ("memory-available", 0), "stat-disk-caches": ("memory-disk_caches", 0),
    "stat-swap-in": ("swap_io-in", 0), "stat-swap-out": ("swap_io-out", 0),
    "stat-minor-faults": ("vmpage_faults", 0), "stat-major-faults": ("vmpage_faults", 1),
    "stat-htlb-pgalloc": ("vmpage_action-htlb_pgalloc", 0), "stat-htlb-pgfail": ("vmpage_action-htlb_pgfail", 0),
    "stat-oom-kills": ("total_events-oom_kills", 0), "stat-alloc-stalls": ("total_events-alloc_stalls", 0),
    "stat-async-scans": ("vmpage_action-async_scans", 0), "stat-direct-scans": ("vmpage_action-direct_scans", 0),
    "stat-async-reclaims": ("vmpage_action-async_reclaims", 0),
    "stat-direct-reclaims": ("vmpage_action-direct_reclaims", 0),
}

def series(domain):
    """{file prefix: [(epoch, [values])]} from csv's files (one per day)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(csv, "balloon-" + domain, "*"))):
        prefix = os.path.basename(path)[:-len("-YYYY-MM-DD")]
        for line in open(path):
            if not line[0].isdigit():
                continue
            cols = line.strip().split(",")
            out.setdefault(prefix, []).append((float(cols[0]), [float(c) for c in cols[1:]]))
    return out

# Dated with the read's time, every read, not with last-update.
READ_TIME = ("duration-stats_age", "duration-polling_interval", "gauge-state")

def is_set(v):
    return v is not None and v != UNSET and v >= 0

def check_domain(domain, expect_counts_min):
    data = series(domain)
    stats = frozen[domain]["stats"]
    lu = frozen[domain]["last-update"]
    expected = {MAP[k][0] for k, v in stats.items() if k in MAP and is_set(v)}
    if not (is_set(stats.get("stat-minor-faults")) and is_set(stats.get("stat-major-faults"))):
        expected.discard("vmpage_faults")
    expected |= {"timestamp-last_update", "duration-stats_age", "duration-polling_interval", "gauge-state"}
    if set(data) != expected:
        fail("%r: series %s, expected %s" % (domain, sorted(data), sorted(expected)))
    for prefix, rowsl in data.items():
        times = [t for t, _ in rowsl]
        for _, vals in rowsl:
            for v in vals:
                if v < 0 or v >= 1.8e19:
                    fail("%r %s: value %r is no stat" % (domain, prefix, v))
        if prefix in READ_TIME:
            continue
        # Values carry QEMU's last-update: whole seconds, each new one written once.
        if any(t != int(t) for t in times):
            fail("%r %s: times %r are not last-update seconds" % (domain, prefix, times))
        if any(b <= a for a, b in zip(times, times[1:])):
            fail("%r %s: times %r do not strictly increase" % (domain, prefix, times))
        if len(rowsl) < expect_counts_min:
            fail("%r %s: only %d rows" % (domain, prefix, len(rowsl)))
    # The last sample balloon-sim served, exactly.
    for k, v in stats.items():
        if k not in MAP or not is_set(v) or MAP[k][0] not in data:
            continue
        prefix, col = MAP[k]
        at = [vals for t, vals in data[prefix] if t == lu]
        if len(at) != 1:
            fail("%r %s: %d rows at last-update %d" % (domain, prefix, len(at), lu))
        elif at[0][col] != float(v):
            fail("%r %s: csv has %r at %d, balloon-sim served %r" % (domain, prefix, at[0][col], lu, v))
    at = [vals for t, vals in data.get("timestamp-last_update", []) if t == lu]
    if at != [[float(lu)]]:
        fail("%r: timestamp-last_update at %d is %r" % (domain, lu, at))
    return data, stats

linux, linux_stats = check_domain("linux1", 3)
for k in ("stat-available-memory", "stat-disk-caches"):
    if not is_set(linux_stats.get(k)):
        fail("balloon-sim's linux guest did not send %s: %r" % (k, linux_stats))
legacy, legacy_stats = check_domain("legacy1", 3)
if "memory-available" in legacy or "memory-disk_caches" in legacy:
    fail("the legacy guest (six stats) has memory-available or memory-disk_caches")
check_domain(qname, 3)
stuck, _ = check_domain("stuck1", 1)
ages = [vals[0] for _, vals in stuck.get("duration-stats_age", [])]
if not ages or ages[-1] < 3:
    fail("stuck1's stats age did not grow: %r" % ages[-5:])
# Every domain, every read: its state (0 ok, 1 never answered, 2 stale) and the interval QEMU has (1 s).
# A guest that answers may be read once before its first answer (1, never answered).
for d, last in (("linux1", 0), ("legacy1", 0), (qname, 0), ("stuck1", 2), ("mute", 1)):
    data = series(d)
    got = [vals[0] for _, vals in data.get("gauge-state", [])]
    allowed = {1} if d == "mute" else {0, 1, 2} if d == "stuck1" else {0, 1}
    early = got.count(1) <= 1 or d == "mute"
    if len(got) < 5 or not set(got) <= allowed or got[-1] != last or not early:
        fail("%r: states %r, expected at least 5 of %r ending with %d" % (d, got[-10:], sorted(allowed), last))
    intervals = {vals[0] for _, vals in data.get("duration-polling_interval", [])}
    if intervals != {1.0}:
        fail("%r: polling intervals %r, expected 1" % (d, sorted(intervals)))
mute = series("mute")
if set(mute) != {"gauge-state", "duration-polling_interval"}:
    fail("the guest that never answered has series other than its state and interval: %r" % sorted(mute))

log = open(os.path.join(T, "collectd.log")).read().splitlines()

def notes(instance, type_, ti, severity):
    key = "plugin = balloon, plugin_instance = %s, type = %s, type_instance = %s," % (instance, type_, ti)
    return [l for l in log if "Notification: severity = " + severity in l and key in l]

if len(notes("mute", "timestamp", "last_update", "WARNING")) != 1:
    fail("not exactly one never-answered notification for 'mute': %r"
         % notes("mute", "timestamp", "last_update", "WARNING"))
if len(notes("stuck1", "timestamp", "last_update", "WARNING")) != 1:
    fail("not exactly one stale notification for 'stuck1': %r" % notes("stuck1", "timestamp", "last_update", "WARNING"))
for d in ("linux1", "legacy1", "mute", "stuck1", qname):
    if len(notes(d, "duration", "polling_interval", "OKAY")) != 1:
        fail("no interval-restored notification for %r" % d)
if not any('plugin "balloon" successfully loaded' in l for l in log):
    fail("collectd did not load balloon.so")
if not any("Exiting normally" in l for l in log):
    fail("collectd did not exit normally")
errors = [l for l in log if "[error]" in l]
if errors:
    fail("errors in collectd's log: %r" % errors)
if any("Value too old" in l for l in log):
    fail("collectd refused values as too old")
if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
print("PASS: %d linux, %d legacy samples; values, notifications and shutdown as expected"
      % (len(linux["memory-total"]), len(legacy["memory-total"])))
EOF
ok=1
