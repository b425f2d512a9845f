# tests/bench/sim.sh: starting balloon-sim for the benchmark and its smoke test (sourced, POSIX sh).

# bench_sim_start SIM DIR N: serves N "linux" guests as DIR/NAME.qmp sockets and waits until every
# balloon-sim says "ready" (at most 120 s each). balloon-sim holds two descriptors per guest (the
# listening socket and the accepted one), so when the open-files limit cannot hold 2 N, the guests
# are shared among several balloon-sim processes in the same directory. Sets BENCH_SIM_PIDS. Output
# goes to DIR.K.out and DIR.K.err.
bench_sim_start() {
    _sim=$1 _dir=$2 _n=$3
    rm -rf "$_dir"
    mkdir -m 0700 -p "$_dir" || return 1
    _limit=$(ulimit -n)
    [ "$_limit" = unlimited ] && _limit=1048576
    _shard=$(( (_limit - 64) / 2 ))
    [ "$_shard" -gt "$_n" ] && _shard=$_n
    BENCH_SIM_PIDS=
    _k=0 _first=1
    while [ "$_first" -le "$_n" ]; do
        _last=$((_first + _shard - 1))
        [ "$_last" -gt "$_n" ] && _last=$_n
        # Up to thousands of arguments: one xargs call (-x refuses to split them), whose shell
        # writes its pid and becomes balloon-sim, so that the pid is balloon-sim's.
        seq -f 'g%05g:linux' "$_first" "$_last" | sed 's/^/--domain\n/' >"$_dir.$_k.args"
        rm -f "$_dir.$_k.pid"
        xargs -x -s 1048576 -d '\n' sh -c 'echo $$ >"$0"; exec "$@"' "$_dir.$_k.pid" "$_sim" \
            --socket-dir "$_dir" <"$_dir.$_k.args" >"$_dir.$_k.out" 2>"$_dir.$_k.err" &
        _deadline=$(( $(date +%s) + 120 ))
        _pid=
        while :; do
            [ "$(date +%s)" -lt "$_deadline" ] || { cat "$_dir.$_k.err" >&2; bench_sim_stop; return 1; }
            [ -z "$_pid" ] && [ -s "$_dir.$_k.pid" ] && _pid=$(cat "$_dir.$_k.pid") &&
                BENCH_SIM_PIDS="$BENCH_SIM_PIDS $_pid"
            if [ -n "$_pid" ]; then
                kill -0 "$_pid" 2>/dev/null || { cat "$_dir.$_k.err" >&2; bench_sim_stop; return 1; }
                grep -q ready "$_dir.$_k.out" && break
            fi
            sleep 0.2
        done
        _first=$((_last + 1))
        _k=$((_k + 1))
    done
}

# The peak RSS of all balloon-sim processes together, in KiB.
bench_sim_rss_kib() {
    _sum=0
    for _p in $BENCH_SIM_PIDS; do
        _v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$_p/status" 2>/dev/null || echo 0)
        _sum=$((_sum + ${_v:-0}))
    done
    echo "$_sum"
}

bench_sim_stop() {
    for _p in $BENCH_SIM_PIDS; do
        kill "$_p" 2>/dev/null || true
    done
    for _p in $BENCH_SIM_PIDS; do
        while kill -0 "$_p" 2>/dev/null; do sleep 0.1; done
    done
    BENCH_SIM_PIDS=
}
