#!/bin/sh
# The real collectd daemon (collectd -f -C) with the built balloon.so, the csv and logfile plugins,
# against a QMP peer (tests/hostile_qmp.py) that misbehaves in the ways of issue 11: a last-update
# that goes back an hour, one beyond what cdtime_t holds, one a year ahead; a stat of 2^64 - 2; a
# guest that fails every other read with a desc that holds a newline and escape sequences; a socket
# whose name holds them too; five guests that all fail; two QMPSocket names alike in their first 127
# bytes. Asserts what collectd's log and csv files show: no "uc_update: Value too old", each problem
# said once, values dated sanely, a flapping guest rate-limited, the stall summed up in one line,
# the two alike names never in one series, no control character in the log. Then collectd is started
# with two blocks on one socket directory and must refuse to start.
set -eu

: "${abs_top_srcdir:?}"
cl_name=plugin-collectd-hostile
cl_show="twice.log twice.err"
. "$abs_top_srcdir/tests/collectd_lib.sh"
peer="$abs_top_srcdir/tests/hostile_qmp.py"
fail() { cl_fail "$@"; }
wait_for() { cl_wait_for "$@"; }

mkdir -p "$T/qmp" "$T/mass" "$T/col"

evil=$(printf 'evil\033[2J\nname')
long=$(printf '%0127d' 0 | tr 0 x)
python3 "$peer" "$T/qmp/back.qmp:back" "$T/qmp/huge.qmp:huge" "$T/qmp/ahead.qmp:ahead" \
    "$T/qmp/flap.qmp:flap" "$T/qmp/bigstat.qmp:bigstat" "$T/qmp/$evil.qmp:normal" \
    "$T/mass/m1.qmp:fail" "$T/mass/m2.qmp:fail" "$T/mass/m3.qmp:fail" "$T/mass/m4.qmp:fail" \
    "$T/mass/m5.qmp:fail" "$T/col/one.qmp:normal" "$T/col/two.qmp:double" >"$T/peer.out" 2>&1 &
cl_track $!
wait_for 10 'grep -q ready "$T/peer.out"' || fail "the QMP peer did not get ready."

{
    cl_conf_head 1
    cat <<EOF
<Plugin balloon>
  QMPSocketDir "$T/qmp"
</Plugin>
<Plugin balloon>
  QMPSocketDir "$T/mass"
</Plugin>
<Plugin balloon>
  QMPSocket "$long-one" "$T/col/one.qmp"
  QMPSocket "$long-two" "$T/col/two.qmp"
</Plugin>
EOF
} >"$T/collectd.conf"

start=$(date +%s)
cl_start_collectd

# Long enough for the back-and-forward of 'back' (4 s to 8 s after polling began) and for the
# flapping guest's waits to grow.
csv_dir="$T/csv/testhost"
rows() { cat "$csv_dir/balloon-$1/$2"-* 2>/dev/null | grep -c '^[0-9]' || true; }
# At most five samples before 'back' went back at 4 s: eight means it went forward again.
wait_for 40 '[ "$(rows back timestamp-last_update)" -ge 8 ]' \
    || fail "no values of 'back' from after it went forward again."
sleep 3
kill -0 "$cl_collectd_pid" || fail "collectd exited early."
cl_stop_collectd
end=$(date +%s)

python3 - "$T" "$start" "$end" "$long" <<'EOF'
import glob, os, sys

T, start, end, long = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
csv = os.path.join(T, "csv", "testhost")
raw = open(os.path.join(T, "collectd.log"), "rb").read()
failures = []

def fail(msg):
    failures.append(msg)

try:
    log = raw.decode("utf-8").splitlines()
except UnicodeDecodeError as e:
    fail("collectd's log is not valid UTF-8: %s" % e)
    log = raw.decode("utf-8", "replace").splitlines()

def lines(*parts):
    return [l for l in log if all(p in l for p in parts)]

def series(domain, prefix):
    out = []
    for path in sorted(glob.glob(os.path.join(csv, "balloon-" + domain, prefix + "-*"))):
        for line in open(path, encoding="utf-8"):
            if line[0].isdigit():
                cols = line.strip().split(",")
                out.append((float(cols[0]), [float(c) for c in cols[1:]]))
    return out

# Item 3: nothing collectd refuses as too old, the going back said once, and its end.
if lines("Value too old"):
    fail("collectd refused values as too old: %r" % lines("Value too old")[:3])
if len(lines("The last-update of domain 'back' went back")) != 1:
    fail("not one warning that 'back' went back: %r" % lines("'back'"))
if len(lines("The last-update of domain 'back' is newer than the last one dispatched again")) != 1:
    fail("not one notice that 'back' is dispatched again: %r" % lines("'back'"))
times = [t for t, _ in series("back", "timestamp-last_update")]
if len(times) < 5 or any(b <= a for a, b in zip(times, times[1:])) or min(times) < start - 5:
    fail("'back' last_update times are not newer each time, all of now: %r" % times)

# Item 2: a last-update beyond cdtime_t, or a year ahead, is not the values' time.
for domain, why in (("huge", "beyond the year 2514"), ("ahead", "ahead of this host's clock")):
    if len(lines("The last-update of domain '%s' is" % domain, why, "no time its values can carry")) != 1:
        fail("not one warning that %r has no usable last-update: %r" % (domain, lines("'%s'" % domain)))
    rows = series(domain, "memory-free")
    if not rows or any(t < start - 1 or t > end + 1 for t, _ in rows):
        fail("%r values are not dated within the run [%d, %d]: %r" % (domain, start, end, rows[:5]))
    if series(domain, "timestamp-last_update"):
        fail("%r has a timestamp-last_update series" % domain)
ages = [v[0] for _, v in series("ahead", "duration-stats_age")]
if len(ages) < 5 or ages[-1] < 3 or any(b < a for a, b in zip(ages, ages[1:])):
    fail("the frozen 'ahead' guest's stats age does not grow: %r" % ages)
ages = [v[0] for _, v in series("huge", "duration-stats_age")]
if not ages or max(ages) > 3:
    fail("the moving 'huge' guest's stats age is not small: %r" % ages)
if len(series("huge", "memory-free")) < 5:
    fail("'huge' sent too few values: %r" % series("huge", "memory-free"))

# Values no guest can report are unset.
if series("bigstat", "memory-total") or not series("bigstat", "memory-free"):
    fail("bigstat: memory-total %r, memory-free %r" % (series("bigstat", "memory-total")[:2],
                                                      series("bigstat", "memory-free")[:2]))

# Item 9: the flapping guest stays rate-limited; the stall of five is one line.
flap_fail = lines("Reading domain 'flap' failed")
flap_back = lines("Domain 'flap' can be read again")
reads = len(series("flap", "gauge-state"))
if reads < 8 or len(flap_fail) > 5 or len(flap_back) > 1:
    fail("flap: %d reads, %d failure lines, %d recovery lines" % (reads, len(flap_fail), len(flap_back)))
if lines("Reading domain 'm"):
    fail("the stalled guests were said one by one: %r" % lines("Reading domain 'm")[:3])
if not lines("Reading 5 domains failed, among them 'm1', 'm2' and 'm3'. The first error: "):
    fail("no summary of the five stalled guests: %r" % lines("domains failed"))

# Item 6: the peer's text and a socket's name reach the log as one line, without escapes.
for l in log:
    if any(ord(c) < 0x20 and c != "\t" or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029" for c in l):
        fail("a log line holds a control character: %r" % l)
    if l.startswith("FAKE"):
        fail("the peer forged a log line: %r" % l)
if not lines("Reading domain 'flap' failed", "bad?FAKE: collectd[1]: forged line?[31m?2J?end"):
    fail("the flapping guest's error is not in the log, cleaned: %r" % flap_fail)
if not series("evil?[2J?name", "memory-free"):
    fail("the socket with escapes in its name has no series 'evil?[2J?name': %r" % os.listdir(csv))
if not lines("plugin_instance = evil?[2J?name"):
    fail("no notification for 'evil?[2J?name' (its interval put back at shutdown)")

# Item 8: two names alike in their first 127 bytes never write into one series.
totals = {v[0] for _, v in series(long, "memory-total")}
if totals != {float(1 << 30)}:
    fail("the series of the two alike names holds %r, not only the first one's total" % totals)
if len(lines("Domain '%s-two' is not dispatched" % long, "already that of domain '%s-one'" % long)) != 1:
    fail("not one error that the second alike name is not dispatched: %r" % lines("not dispatched"))

for l in lines("[error]"):
    if "Reading" not in l and "not dispatched" not in l and "No domain could be read" not in l:
        fail("an unexpected error: %r" % l)
if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
print("PASS: %d reads of the flapping guest, %d of its failures said" % (reads, len(flap_fail)))
EOF

# Two blocks on one socket directory would set the interval against each other: collectd's init of
# the plugin fails, and the reason names both blocks.
{
    cl_conf_head | sed "s|$T/collectd.log|$T/twice.log|"
    cat <<EOF
LoadPlugin balloon
<Plugin balloon>
  QMPSocketDir "$T/qmp"
  PollingInterval 2
</Plugin>
<Plugin balloon>
  QMPSocketDir "$T/qmp/"
  PollingInterval 5
</Plugin>
EOF
} >"$T/twice.conf"
cl_collectd -T -C "$T/twice.conf" >"$T/twice.err" 2>&1 || true
grep -q "The <Plugin balloon> blocks number 1 and 2 both read the QMP socket directory '$T/qmp'" "$T/twice.log" \
    || fail "two blocks on one directory were not refused."
grep -q "Not starting, because blocks would read the same domains" "$T/twice.log" \
    || fail "the plugin did not say it does not start."
python3 - "$T" <<'EOF' || fail "a block of the refused configuration set an interval."
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(os.path.join(sys.argv[1], "qmp", "huge.qmp"))
f = s.makefile("rwb")
f.readline()
for c in ({"execute": "qmp_capabilities"}, {"execute": "qom-get", "arguments": {
        "path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval"}}):
    f.write((json.dumps(c) + "\n").encode())
    f.flush()
    r = json.loads(f.readline())
sys.exit(0 if r.get("return") == 0 else 1)
EOF
cl_ok=1
echo "PASS: two blocks on one directory refused"
