#!/bin/sh
# balloon-sim's CPU per QMP message, counted in instructions by callgrind (repeatable, unlike time on
# a shared machine). Not part of make check.
#
#   tests/qmp_cost.sh [BALLOON_SIM] [ROUNDS]    default: build/check/virtio/balloon-sim, 1000 rounds
#
# One client (socat) negotiates and sends ROUNDS rounds of the agent's commands (qom-get of
# guest-stats and of guest-stats-polling-interval, qom-set of the interval, qom-list) plus one
# query-status, each with an id, to a domain without a balloon driver (no guest timers), then quit.
# Prints the instructions spent inside vb_qmp_conn_input (reading, answering and printing) per
# message, and the whole process's instructions per message over a run without messages.
# KEEP=DIR keeps the callgrind files (idle.cg, busy.cg, for callgrind_annotate) and the replies there.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
sim=${1:-$top/build/check/virtio/balloon-sim}
rounds=${2:-1000}
for tool in valgrind callgrind_annotate socat; do
    command -v "$tool" >/dev/null || { echo "qmp_cost: $tool is not installed" >&2; exit 1; }
done
[ -x "$sim" ] || { echo "qmp_cost: '$sim' is not an executable" >&2; exit 1; }

tmp=$(mktemp -d /tmp/qmp-cost-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -z "${KEEP:-}" ] || cp "$tmp"/*.cg "$tmp"/replies "$KEEP"/ 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

path='"path":"/machine/peripheral/balloon0"'
{
    echo '{"execute":"qmp_capabilities"}'
    i=0
    while [ "$i" -lt "$rounds" ]; do
        echo "{\"execute\":\"qom-get\",\"arguments\":{$path,\"property\":\"guest-stats\"},\"id\":$i}"
        echo "{\"execute\":\"qom-get\",\"arguments\":{$path,\"property\":\"guest-stats-polling-interval\"},\"id\":$i}"
        echo "{\"execute\":\"qom-set\",\"arguments\":{$path,\"property\":\"guest-stats-polling-interval\",\"value\":$((i % 2 + 5))},\"id\":$i}"
        echo "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral\"},\"id\":\"r$i\"}"
        i=$((i + 1))
    done
    echo '{"execute":"query-status","id":"last"}'
    echo '{"execute":"quit"}'
} >"$tmp/cmds"
messages=$(wc -l <"$tmp/cmds")

# run OUT SEND: balloon-sim under callgrind; if SEND, the script is sent and answered.
run() {
    rm -rf "$tmp/s"
    mkdir -m 700 "$tmp/s"
    valgrind --tool=callgrind --callgrind-out-file="$1" "$sim" --socket-dir "$tmp/s" \
        --domain vm:none >"$tmp/sim.out" 2>&1 &
    pid=$!
    i=0
    until grep -q ready "$tmp/sim.out"; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$pid" 2>/dev/null; then
            cat "$tmp/sim.out" >&2
            echo "qmp_cost: balloon-sim did not get ready" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [ "$2" = 1 ]; then
        socat -t 30 - "UNIX-CONNECT:$tmp/s/vm.qmp" <"$tmp/cmds" >"$tmp/replies"
        got=$(grep -c '"return"' "$tmp/replies" || true)
        # a reply to every message, quit included (it comes before the connection closes)
        [ "$got" -eq "$messages" ] || { echo "qmp_cost: $got replies to $messages messages" >&2; exit 1; }
    fi
    kill "$pid"
    wait "$pid" || true
    pid=
}

total() { callgrind_annotate "$1" | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,; }

run "$tmp/idle.cg" 0
run "$tmp/busy.cg" 1
idle=$(total "$tmp/idle.cg")
busy=$(total "$tmp/busy.cg")
inside=$(callgrind_annotate --inclusive=yes "$tmp/busy.cg" |
    sed -n 's/^ *\([0-9,]*\) .*vb_qmp_conn_input .*/\1/p' | head -1 | tr -d ,)
echo "qmp_cost: $messages messages ($rounds rounds of 4, then query-status and quit)"
echo "qmp_cost: vb_qmp_conn_input: $((inside / messages)) instructions per message"
echo "qmp_cost: whole process: $(((busy - idle) / messages)) instructions per message" \
    "(busy $busy, idle $idle)"
