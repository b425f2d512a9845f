#!/bin/sh
# Issue 11, item 1: more guests than collectd's open-files limit. The real collectd daemon with the
# built plugin, logfile and csv, reads 300 balloon-sim guests through QMPSocketDir (Interval 1), run
# under prlimit:
#  - 256:256, a limit that cannot be raised: the plugin keeps its connections within its share, the
#    guests beyond it are connected for each read, every guest is read, and neither logfile nor csv
#    (nor the plugin) ever meets "Too many open files";
#  - 256:4096: the plugin raises the soft limit to 4096 and keeps a connection for every guest.
# Each time the plugin says once what it did.
set -eu
cl_name=collectd-fdlimit
. "$abs_top_srcdir/tests/collectd_lib.sh"
command -v prlimit >/dev/null 2>&1 || cl_skip "prlimit is not installed (util-linux)."

n=300
mkdir -p "$T/qmp"
cl_start_sim --socket-dir "$T/qmp" --domains "$n"

# Every guest's csv has a state of 0 (read, ok) at least twice.
all_read() {
    python3 - "$T" "$n" <<'EOF'
import glob, os, sys
T, n = sys.argv[1], int(sys.argv[2])
ok = 0
for i in range(1, n + 1):
    rows = 0
    for path in glob.glob(os.path.join(T, "csv", "testhost", "balloon-dom%d" % i, "gauge-state-*")):
        rows += sum(1 for line in open(path) if line[0].isdigit() and float(line.split(",")[1]) == 0)
    ok += rows >= 2
print(ok)
sys.exit(0 if ok == n else 1)
EOF
}

run() { # soft hard
    rm -rf "$T/csv" "$T/collectd.log"
    mkdir -p "$T/csv"
    {
        cl_conf_head 1
        cat <<EOF
<Plugin balloon>
  QMPSocketDir "$T/qmp"
</Plugin>
EOF
    } >"$T/collectd.conf"
    cl_start_collectd prlimit --nofile="$1:$2" --
    cl_wait_for 60 'all_read >"$T/read" 2>&1' || cl_fail "limit $1:$2: only $(cat "$T/read") of $n guests were read."
    soft=$(awk '/^Max open files/ { print $4 }' "/proc/$cl_collectd_pid/limits")
    open=$(ls "/proc/$cl_collectd_pid/fd" | wc -l)
    cl_stop_collectd
    grep -q "Exiting normally" "$T/collectd.log" || cl_fail "limit $1:$2: collectd's log stopped, or it did not exit normally."
    if grep -i -e "too many open files" -e EMFILE "$T/collectd.log" "$T/collectd.err"; then
        cl_fail "limit $1:$2: something ran out of descriptors."
    fi
    n_said=$(grep -c "balloon plugin: The open-files limit" "$T/collectd.log" || true)
    [ "$n_said" = 1 ] || cl_fail "limit $1:$2: the plugin said $n_said times what it did with the limit, not once."
    echo "limit $1:$2: every guest read; soft limit $soft while running, $open descriptors open at the end"
}

run 256 256
[ "$soft" = 256 ] || cl_fail "the soft limit changed to $soft although the hard one is 256."
[ "$open" -le 256 ] || cl_fail "$open descriptors open with a limit of 256."
grep -q "The open-files limit is 256, its hard limit" "$T/collectd.log" || cl_fail "not said that the limit stays 256."
n_over=$(grep -c "more QMP sockets than the [0-9]* connections kept open" "$T/collectd.log" || true)
[ "$n_over" = 1 ] || cl_fail "the connections beyond the budget were said $n_over times, not once."

run 256 4096
[ "$soft" = 4096 ] || cl_fail "the soft limit is $soft while collectd runs, not raised to 4096."
grep -q "The open-files limit was raised from 256 to 4096" "$T/collectd.log" || cl_fail "the raise was not said."
if grep -q "more QMP sockets than" "$T/collectd.log"; then
    cl_fail "connections were given up although the raised limit holds them all."
fi
echo "PASS: $n guests read within an open-files limit of 256, and with it raised to 4096"
cl_ok=1
