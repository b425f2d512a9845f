# tests/bench/sim.sh: starting balloon-sim for the benchmark and its smoke test (sourced, POSIX sh).

# bench_sim_start SIM DIR N: starts balloon-sim serving N "linux" guests (bench-00001...) as
# DIR/NAME.qmp sockets and waits until it says "ready" (at most 120 s). Sets BENCH_SIM_PID to
# balloon-sim's own pid. Its output goes to DIR.out and DIR.err.
bench_sim_start() {
    _sim=$1 _dir=$2 _n=$3
    rm -rf "$_dir"
    mkdir -p "$_dir" || return 1
    # 10000 guests are 20000 arguments: one xargs call (-x refuses to split them), whose shell
    # writes its pid and becomes balloon-sim, so that the pid is balloon-sim's.
    seq -f 'bench-%05g:linux' 1 "$_n" | sed 's/^/--domain\n/' >"$_dir.args"
    xargs -x -s 1048576 -d '\n' sh -c 'echo $$ >"$0"; exec "$@"' "$_dir.pid" "$_sim" \
        --socket-dir "$_dir" <"$_dir.args" >"$_dir.out" 2>"$_dir.err" &
    _deadline=$(( $(date +%s) + 120 ))
    BENCH_SIM_PID=
    while [ "$(date +%s)" -lt "$_deadline" ]; do
        [ -z "$BENCH_SIM_PID" ] && [ -s "$_dir.pid" ] && BENCH_SIM_PID=$(cat "$_dir.pid")
        if [ -n "$BENCH_SIM_PID" ]; then
            kill -0 "$BENCH_SIM_PID" 2>/dev/null || break
            grep -q ready "$_dir.out" && return 0
        fi
        sleep 0.2
    done
    cat "$_dir.err" >&2
    [ -n "$BENCH_SIM_PID" ] && kill "$BENCH_SIM_PID" 2>/dev/null
    return 1
}
