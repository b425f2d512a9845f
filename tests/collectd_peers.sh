#!/bin/sh
# Issue 11, the peers: the real collectd daemon with the built plugin (Interval 1, Timeout 3, the
# default RefreshInterval of 60 s) on a QMPSocketDir that holds two healthy balloon-sim guests, a QEMU
# that never answers (a socket that listens and never accepts, as a QEMU whose main loop is stuck), a
# guest whose QEMU is restarted behind its socket (its own balloon-sim, stopped, then started again),
# and sockets named '..qmp' and '...qmp'; and a second <Plugin balloon> block on a directory that does
# not exist. It checks:
#  - item 12: every read ends within its interval (collectd never says a read took longer), the healthy
#    guests are read every second, the stalled one is reported late (gauge-state 5), then failed (4)
#    when the 3 s timeout gives up on its command, never read;
#  - item 4: the restarted guest is read again within 3 s of its new socket, not at the refresh a
#    minute later, and the log says it went and came back;
#  - '..qmp' and '...qmp' are no domains, said once each; the missing directory is said once;
#  - collectd shuts down cleanly (the stalled command is waited for, within its timeout).
set -eu
cl_name=collectd-peers
. "$abs_top_srcdir/tests/collectd_lib.sh"

mkdir -p "$T/qmp"
cl_start_sim --socket-dir "$T/qmp" --domain g1:linux --domain g2:linux
cl_start_sim --socket-dir "$T/qmp" --domain r1:linux
restart_pid=$cl_sim_pid

# The hung QEMU and the two sockets with names collectd cannot store: they listen, never accept.
cat >"$T/peers.py" <<'EOF'
import os, signal, socket, sys, time
socks = []
for name in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(sys.argv[1], name))
    s.listen(128)
    socks.append(s)
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(1)
EOF
python3 "$T/peers.py" "$T/qmp" hung.qmp ..qmp ...qmp >"$T/peers.out" 2>&1 &
cl_track $!
cl_wait_for 10 'grep -q ready "$T/peers.out"' || cl_fail "the hand-made peers did not start."

{
    cl_conf_head 1
    cat <<EOF
<Plugin balloon>
  QMPSocketDir "$T/qmp"
  Timeout 3
</Plugin>
<Plugin balloon>
  QMPSocketDir "$T/missing"
</Plugin>
EOF
} >"$T/collectd.conf"
cl_start_collectd
start=$(date +%s)

cl_wait_for 20 '[ "$(cl_rows r1 gauge-state | awk -F, "\$2 == 0" | wc -l)" -ge 3 ]' || cl_fail "r1 was never read."
cl_wait_for 10 '[ "$(cl_rows hung gauge-state | awk -F, "\$2 == 4" | wc -l)" -ge 1 ]' \
    || cl_fail "the stalled QEMU was never reported failed."

# QEMU restarted behind its socket: gone for 3 s (more than one read), then a new one.
cl_stop "$restart_pid"
[ ! -e "$T/qmp/r1.qmp" ] || cl_fail "balloon-sim left r1's socket behind."
sleep 3
restarted=$(date +%s)
cl_start_sim --socket-dir "$T/qmp" --domain r1:linux
cl_wait_for 6 '[ "$(cl_rows r1 gauge-state | awk -F, -v t="$restarted" "\$1 > t && \$2 == 0" | wc -l)" -ge 1 ]' \
    || cl_fail "r1 was not read again within 6 s of its restart (RefreshInterval is 60 s)."
back=$(date +%s)
sleep 2
cl_stop_collectd

log="$T/collectd.log"
# Item 12: no read took longer than its interval, whatever the stalled peer did.
if grep -q "read-function of the .balloon. plugin took" "$log"; then
    grep "read-function of the .balloon. plugin took" "$log" >&2
    cl_fail "collectd says a read of the plugin took longer than its interval."
fi
python3 - "$T" "$start" <<'EOF'
import glob, os, sys
T, start = sys.argv[1], int(sys.argv[2])
csv = os.path.join(T, "csv", "testhost")

def states(domain):
    rows = []
    for path in sorted(glob.glob(os.path.join(csv, "balloon-" + domain, "gauge-state-*"))):
        for line in open(path):
            if line[0].isdigit():
                t, v = line.strip().split(",")
                rows.append((float(t), float(v)))
    return rows

failures = []
for g in ("g1", "g2"):
    rows = states(g)
    times = [t for t, _ in rows]
    gaps = [b - a for a, b in zip(times, times[1:])]
    if len(rows) < 10 or set(v for _, v in rows[1:]) != {0.0}:
        failures.append("%s: %d states %r" % (g, len(rows), sorted(set(v for _, v in rows))))
    # Read every second: a read held up by the stalled peer's 3 s timeout would leave a gap of 3 s.
    if gaps and max(gaps) > 1.9:
        failures.append("%s: a gap of %.1f s between two reads (Interval 1)" % (g, max(gaps)))
hung = [v for _, v in states("hung")]
if 5.0 not in hung or 4.0 not in hung or set(hung) - {4.0, 5.0}:
    failures.append("hung: states %r, expected late (5) and failed (4) only" % sorted(set(hung)))
for bad in (".", ".."):
    if os.path.exists(os.path.join(csv, "balloon-" + bad)) or glob.glob(os.path.join(csv, "balloon-" + bad + "/*")):
        failures.append("a domain named %r was written" % bad)
if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
EOF
for f in ..qmp ...qmp; do
    n=$(grep -c "The socket '$f' in the QMP socket directory '$T/qmp' would be the domain" "$log" || true)
    [ "$n" = 1 ] || cl_fail "the socket '$f' was said $n times, not once."
done
n=$(grep -c "The QMP socket directory '$T/missing' does not exist" "$log" || true)
[ "$n" = 1 ] || cl_fail "the missing socket directory was said $n times, not once."
grep -q "The domain list changed: 0 new, 1 gone ('r1')" "$log" || cl_fail "r1's going is not in the log."
grep -q "The domain list changed: 1 new ('r1')" "$log" || cl_fail "r1's return is not in the log."
grep -q "Domain 'hung' is late" "$log" || cl_fail "the stalled QEMU was not said to be late."
grep -q "Exiting normally" "$log" || cl_fail "collectd did not exit normally."
if grep "\[error\]" "$log" | grep -v "'hung'" | grep -q .; then
    grep "\[error\]" "$log" >&2
    cl_fail "errors in collectd's log about something else than the stalled QEMU."
fi
echo "PASS: reads within their interval beside a stalled QEMU; r1 read again $((back - restarted)) s after its restart"
cl_ok=1
