# Sourced by the tests that run the real collectd daemon (collectd -f -C) with the built balloon.so
# against balloon-sim and hand-made QMP peers (tests/collectd_sim.sh, tests/collectd_peers.sh,
# tests/collectd_fdlimit.sh, tests/collectd_hostile.sh). It checks what they need (skipping, exit 77,
# when something is not there), makes the work directory $T with a PluginDir of its own, starts and
# stops only the processes it started (by pid, on every exit path), and on failure shows collectd's
# log, its stderr and the *.out files (control characters made visible) and keeps $T.
#
# The caller sets cl_name (the test's name, for the work directory) before sourcing, and may add to
# cl_show the names of more files of $T to show on failure. CL_KEEP=1 keeps $T after a pass too.

: "${abs_top_builddir:?}" "${abs_top_srcdir:?}" "${cl_name:?}"
cl_so="$abs_top_builddir/plugin/.libs/balloon.so"
cl_sim=${BALLOON_SIM:-$abs_top_builddir/virtio/balloon-sim}
cl_collectd=$(command -v collectd 2>/dev/null || echo /usr/sbin/collectd)
cl_typesdb=/usr/share/collectd/types.db

cl_skip() { echo "SKIP: $*" >&2; exit 77; }
[ -f "$cl_so" ] || cl_skip "balloon.so was not built."
[ -x "$cl_sim" ] || cl_skip "balloon-sim was not built."
[ -x "$cl_collectd" ] || cl_skip "collectd is not installed (collectd-core)."
[ -f /usr/lib/collectd/csv.so ] || cl_skip "collectd's csv plugin is not installed."
command -v python3 >/dev/null 2>&1 || cl_skip "python3 is not installed."

T=$(mktemp -d "/tmp/$cl_name.XXXXXX")
cl_pids=""      # everything started, in order
cl_collectd_pid=""
cl_ok=0
cl_show=""
cl_cleanup() {
    for p in $cl_pids; do kill "$p" 2>/dev/null || true; done
    for p in $cl_pids; do wait "$p" 2>/dev/null || true; done
    if [ "$cl_ok" != 1 ]; then
        echo "--- collectd.log (last 80 lines)" >&2
        tail -n 80 "$T/collectd.log" 2>/dev/null | cat -v >&2 || true
        echo "--- collectd's stderr" >&2
        tail -n 40 "$T/collectd.err" 2>/dev/null | cat -v >&2 || true
        for cl_f in "$T"/*.out $cl_show; do
            case $cl_f in /*) ;; *) cl_f="$T/$cl_f" ;; esac
            [ -f "$cl_f" ] || continue
            echo "--- $cl_f" >&2
            tail -n 40 "$cl_f" | cat -v >&2
        done
    fi
    if [ "$cl_ok" = 1 ] && [ "${CL_KEEP:-0}" != 1 ]; then
        rm -rf "$T"
    else
        echo "(kept $T)" >&2
    fi
}
trap cl_cleanup EXIT
trap 'exit 1' INT TERM

cl_fail() { echo "FAIL: $*" >&2; exit 1; }

# Adds a pid to what cleanup stops.
cl_track() { cl_pids="$cl_pids $1"; }
# Stops one tracked process (SIGTERM) and waits for it.
cl_stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Polls a shell condition every 0.2 s until it holds or the deadline (seconds) passes. A real daemon
# has no clock to inject: waiting for its observable effect is the best there is.
cl_wait_for() {
    cl_deadline=$(($(date +%s) + $1))
    shift
    while ! eval "$1"; do
        [ "$(date +%s)" -lt "$cl_deadline" ] || return 1
        sleep 0.2
    done
}

# PluginDir: collectd loads only regular files from one directory, so hard links to Debian's plugins
# (copies when /tmp is another file system) and a copy of ours.
mkdir -p "$T/plugins" "$T/csv"
for cl_p in logfile csv; do
    ln "/usr/lib/collectd/$cl_p.so" "$T/plugins/" 2>/dev/null || cp "/usr/lib/collectd/$cl_p.so" "$T/plugins/"
done
cp "$cl_so" "$T/plugins/balloon.so"

# The top of a collectd.conf: this host, the PluginDir, the log file and csv in $T; with an argument,
# the Interval of a <LoadPlugin balloon> block.
cl_conf_head() {
    cat <<EOF
Hostname "testhost"
FQDNLookup false
Interval 10
BaseDir "$T"
PIDFile "$T/collectd.pid"
PluginDir "$T/plugins"
TypesDB "$cl_typesdb"
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
EOF
    [ $# -eq 0 ] || printf '<LoadPlugin balloon>\n  Interval %s\n</LoadPlugin>\n' "$1"
}

# Runs collectd with the given arguments, in the foreground: a plugin built with AddressSanitizer
# needs the runtime loaded first into a daemon built without; LeakSanitizer then judges the plugin in
# the daemon too (collectd frees what it allocated). Only collectd gets the preload.
cl_collectd() {
    if nm -D "$cl_so" 2>/dev/null | grep -q ' U __asan_init'; then
        LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so) \
            ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1 "$cl_collectd" "$@"
    else
        "$cl_collectd" "$@"
    fi
}

# Starts collectd on $T/collectd.conf in the foreground, in the background, behind an optional
# command (such as prlimit ... --): cl_start_collectd [CMD ARGS... --].
cl_start_collectd() {
    if nm -D "$cl_so" 2>/dev/null | grep -q ' U __asan_init'; then
        LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so)
        export LD_PRELOAD
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1
        export ASAN_OPTIONS
    fi
    "$@" "$cl_collectd" -f -C "$T/collectd.conf" >"$T/collectd.err" 2>&1 &
    cl_collectd_pid=$!
    cl_track "$cl_collectd_pid"
    unset LD_PRELOAD
}

# Stops collectd (SIGTERM) and fails unless it exits 0.
cl_stop_collectd() {
    kill -TERM "$cl_collectd_pid"
    cl_status=0
    wait "$cl_collectd_pid" || cl_status=$?
    [ "$cl_status" -eq 0 ] || cl_fail "collectd exited with status $cl_status."
}

# Starts balloon-sim on a socket directory with the given arguments; sets cl_sim_pid once it is ready.
cl_start_sim() {
    cl_sim_out="$T/sim.$$.$(date +%s%N).out"
    "$cl_sim" "$@" >"$cl_sim_out" 2>&1 &
    cl_sim_pid=$!
    cl_track "$cl_sim_pid"
    cl_wait_for 30 'grep -q ready "$cl_sim_out"' || { cat "$cl_sim_out" >&2; cl_fail "balloon-sim did not get ready."; }
}

# The rows csv wrote for a domain's series (type-instance): "epoch,value" lines.
cl_rows() { cat "$T/csv/testhost/balloon-$1/$2"-* 2>/dev/null | grep '^[0-9]' || true; }
