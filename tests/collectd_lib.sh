# Sourced by the tests that run the real collectd daemon with the built plugin (tests/collectd_*.sh).
# Needs abs_top_builddir; defines collectd, typesdb and so, and:
#   cd_skip_unless_runnable     exit 77 with a reason unless the daemon, its csv plugin, python3 and
#                               balloon.so are there
#   cd_plugin_dir DIR           a PluginDir holding logfile, csv and our balloon.so
#   cd_asan_preload             a balloon.so built with AddressSanitizer needs its runtime loaded first
#                               into a daemon built without: sets LD_PRELOAD and ASAN_OPTIONS
#   wait_for SECONDS CONDITION  polls a shell condition every 0.2 s until it holds (0) or the deadline
#                               passes (1). There is no clock to inject into a real daemon: waiting
#                               for its observable effect is the best there is.
#   fail MESSAGE...             "FAIL: MESSAGE" on stderr, exit 1
so="$abs_top_builddir/plugin/.libs/balloon.so"
collectd=$(command -v collectd 2>/dev/null || echo /usr/sbin/collectd)
typesdb=/usr/share/collectd/types.db

cd_skip() { echo "SKIP: $*" >&2; exit 77; }

cd_skip_unless_runnable() {
    [ -f "$so" ] || cd_skip "balloon.so was not built."
    [ -x "$collectd" ] || cd_skip "collectd is not installed (collectd-core)."
    [ -f /usr/lib/collectd/csv.so ] || cd_skip "collectd's csv plugin is not installed."
    command -v python3 >/dev/null 2>&1 || cd_skip "python3 is not installed."
}

# collectd loads only regular files from one PluginDir: hard links to Debian's plugins (copies when
# /tmp is another filesystem), and a copy of ours.
cd_plugin_dir() {
    mkdir -p "$1"
    for p in logfile csv; do
        ln "/usr/lib/collectd/$p.so" "$1/" 2>/dev/null || cp "/usr/lib/collectd/$p.so" "$1/"
    done
    cp "$so" "$1/balloon.so"
}

cd_asan_preload() {
    if nm -D "$so" 2>/dev/null | grep -q ' U __asan_init'; then
        LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so)
        export LD_PRELOAD
        # collectd 5.12 frees what it allocated by exit, so LeakSanitizer judges our plugin in the
        # real daemon too: a leak makes collectd exit non-zero, with the report on its stderr.
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1
        export ASAN_OPTIONS
    fi
}

wait_for() {
    deadline=$(( $(date +%s) + $1 ))
    shift
    while ! eval "$1"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

fail() { echo "FAIL: $*" >&2; exit 1; }
