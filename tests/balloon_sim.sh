#!/bin/sh
# balloon-sim's command line and behaviour as a program: bad arguments (one message, exit 2), the
# socket directory rules, names with any character but '/', NAME:PROFILE, --domains, --stats, --anon,
# --memory, -S, socket modes, several clients per domain and their events, garbage and vanishing
# clients, SIGTERM/SIGINT (exit 0, sockets removed), stale and live sockets, and (unless
# BALLOON_SKIP_SLOW=1) a 10000-domain start, whose time it prints.
set -eu
sim="$abs_top_builddir/virtio/balloon-sim"
q="$abs_top_builddir/tests/qmp_replay"
[ -x "$sim" ] || { echo "SKIP: $sim is not built"; exit 77; }
command -v socat >/dev/null || { echo "SKIP: socat is not installed"; exit 77; }

tmp=$(mktemp -d /tmp/vqmp-sim-XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
UNSET=18446744073709551615

# start DIR ARGS...: runs balloon-sim in the background until it is ready; sets pid.
start() {
    _dir=$1
    shift
    # Emptied here, not only by the redirection below, which the background child makes after this
    # shell may already have read the previous run's "ready".
    : >"$tmp/out"
    "$sim" --socket-dir "$_dir" "$@" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    pids="$pids $pid"
    _i=0
    until grep -q ready "$tmp/out"; do
        _i=$((_i + 1))
        if [ $_i -gt 1200 ] || ! kill -0 "$pid" 2>/dev/null; then
            cat "$tmp/err"
            fail "balloon-sim $* did not get ready"
        fi
        sleep 0.05
    done
}

# stop SIGNAL: the running sim must exit 0.
stop() {
    kill "-$1" "$pid"
    wait "$pid" || fail "balloon-sim did not exit 0 on SIG$1"
}

# bad ARGS...: exit 2, exactly one line on stderr, nothing on stdout.
bad() {
    set +e
    "$sim" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
    _rc=$?
    set -e
    [ $_rc -eq 2 ] || fail "balloon-sim $* exited $_rc, not 2"
    [ "$(wc -l <"$tmp/bad.err")" -eq 1 ] || { cat "$tmp/bad.err"; fail "balloon-sim $*: not one line on stderr"; }
    [ ! -s "$tmp/bad.out" ] || fail "balloon-sim $*: wrote to stdout"
    echo "  bad: $* -> $(cat "$tmp/bad.err")"
}

echo "== bad arguments"
mkdir -m 700 "$tmp/d"
bad
bad --domain a
bad --socket-dir "$tmp/d"
bad --socket-dir "$tmp/d" --domains 0
bad --socket-dir "$tmp/d" --domain a --stats 7
bad --socket-dir "$tmp/d" --domain a --stats ten
bad --socket-dir "$tmp/d" --domain a --memory 0
bad --socket-dir "$tmp/d" --domain a --memory 1G
bad --socket-dir "$tmp/d" --domains -1
bad --socket-dir "$tmp/d" --domains 2x
bad --socket-dir "$tmp/d" --domain a --bogus
bad --socket-dir "$tmp/d" --domain a extra
bad --socket-dir "$tmp/d" --domain
bad --socket-dir "$tmp/d" --domain a --domain a
bad --socket-dir "$tmp/d" --domain dom1 --domains 2
bad --socket-dir "$tmp/d" --domain a/b
bad --socket-dir "$tmp/d" --domain ''
bad --socket-dir "$tmp/d" --domain :legacy
mkdir -m 777 "$tmp/open"
bad --socket-dir "$tmp/open" --domain a
grep -q world-writable "$tmp/bad.err" || fail "the world-writable refusal does not say why"
mkdir -m 1777 "$tmp/sticky"
bad --socket-dir "$tmp/sticky" --domain a
touch "$tmp/file"
bad --socket-dir "$tmp/file" --domain a
[ -z "$(ls -A "$tmp/d")" ] || fail "a refused start left files: $(ls -A "$tmp/d")"
"$sim" --help | grep -q -- '--socket-dir' || fail "--help"

echo "== names, profiles, sockets"
odd="we\"ird 'n\\ame: x"
start "$tmp/s" --domain web --domain "a:b" --domain "x:y:legacy" --domain "$odd:none" --domain "st:stuck" \
    --domains 3
[ "$(stat -c %a "$tmp/s")" = 700 ] || fail "the socket directory was not created 0700"
for n in web "a:b" "x:y" "$odd" st dom1 dom2 dom3; do
    [ -S "$tmp/s/$n.qmp" ] || fail "no socket for '$n'"
    [ "$(stat -c %a "$tmp/s/$n.qmp")" = 600 ] || fail "socket '$n.qmp' is not 0600"
done
[ "$(ls "$tmp/s" | wc -l)" -eq 8 ] || fail "unexpected files: $(ls "$tmp/s")"
grep -q "ready: 8 domains" "$tmp/out" || fail "ready line: $(cat "$tmp/out")"
set_interval='{"execute":"qom-set","arguments":{"path":"/machine/peripheral/balloon0","property":"guest-stats-polling-interval","value":1}}'
get_stats='{"execute":"qom-get","arguments":{"path":"/machine/peripheral/balloon0","property":"guest-stats"}}'
for n in web "a:b" "x:y" "$odd" dom3; do "$q" --query "$tmp/s/$n.qmp" "$set_interval" >/dev/null; done
sleep 0.2
"$q" --query "$tmp/s/web.qmp" "$get_stats" >"$tmp/web"
grep -q '"stat-available-memory": [0-9]*,' "$tmp/web" && ! grep -q $UNSET "$tmp/web" ||
    fail "web (linux) should send every stat: $(cat "$tmp/web")"
grep -q '"last-update": 0}' "$tmp/web" && fail "web never answered"
"$q" --query "$tmp/s/a:b.qmp" "$get_stats" | grep -q $UNSET && fail "'a:b' is not a linux guest named a:b"
"$q" --query "$tmp/s/x:y.qmp" "$get_stats" >"$tmp/xy"
grep -q "\"stat-available-memory\": $UNSET" "$tmp/xy" && grep -q '"stat-free-memory": [0-9]*,' "$tmp/xy" ||
    fail "'x:y:legacy' is not a legacy guest named x:y: $(cat "$tmp/xy")"
"$q" --query "$tmp/s/$odd.qmp" "$get_stats" | grep -q '"last-update": 0}' ||
    fail "the guest with an odd name has profile none and never answers"

echo "== several clients per domain, events to each"
{ printf '{"execute":"qmp_capabilities"}\n'; sleep 1; } | socat - "UNIX-CONNECT:$tmp/s/web.qmp" >"$tmp/watcher" &
watcher=$!
sleep 0.3
"$q" --query "$tmp/s/web.qmp" '{"execute":"stop"}' '{"execute":"query-status"}' >"$tmp/stopper"
grep -q '"event": "STOP"' "$tmp/stopper" || fail "no STOP for the client that stopped"
grep -q '"status": "paused"' "$tmp/stopper" || fail "not paused"
wait "$watcher"
grep -q '"event": "STOP"' "$tmp/watcher" || fail "the other client got no STOP: $(cat "$tmp/watcher")"
"$q" --query "$tmp/s/web.qmp" '{"execute":"cont"}' | grep -q RESUME || fail "no RESUME"

echo "== garbage and vanishing clients affect only themselves"
head -c 200000 /dev/urandom | socat -u - "UNIX-CONNECT:$tmp/s/web.qmp" 2>/dev/null || true
printf '{"execute":"qmp_capabilities"}\n{"execute":"query-sta' | socat -u - "UNIX-CONNECT:$tmp/s/web.qmp"
# a client that never reads while its replies pile up
{ printf '{"execute":"qmp_capabilities"}\n'; i=0; while [ $i -lt 2000 ]; do
    printf '{"execute":"qom-list","arguments":{"path":"/"}}'; i=$((i + 1)); done; sleep 1; } |
    socat -u - "UNIX-CONNECT:$tmp/s/web.qmp" &
hog=$!
"$q" --query "$tmp/s/web.qmp" '{"execute":"query-status"}' | grep -q '"status": "running"' ||
    fail "web stopped answering after bad clients"
"$q" --query "$tmp/s/dom1.qmp" '{"execute":"query-balloon"}' | grep -q '"actual": 1073741824' ||
    fail "dom1 stopped answering"
wait "$hog"
kill -0 "$pid" || fail "balloon-sim died"

echo "== quit ends one domain"
"$q" --query "$tmp/s/dom2.qmp" '{"execute":"quit"}' | grep -q '"event": "SHUTDOWN"' || fail "no SHUTDOWN"
i=0
while [ -e "$tmp/s/dom2.qmp" ]; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "dom2.qmp still there after quit"; sleep 0.05
done
"$q" --query "$tmp/s/dom3.qmp" '{"execute":"query-status"}' | grep -q running || fail "dom3 went with dom2"

echo "== a second balloon-sim on the same sockets is refused; SIGTERM cleans up"
bad --socket-dir "$tmp/s" --domain web
grep -q "in use" "$tmp/bad.err" || fail "the live-socket refusal does not say why"
"$q" --query "$tmp/s/web.qmp" '{"execute":"query-status"}' >/dev/null || fail "the refused start broke web.qmp"
stop TERM
[ -z "$(ls -A "$tmp/s")" ] || fail "sockets left after SIGTERM: $(ls -A "$tmp/s")"

echo "== a stale socket is replaced; --anon, --stats, --memory, -S; SIGINT"
make_stale_socket() { # a socket file nobody listens on
    socat "UNIX-LISTEN:$1" /dev/null &
    _p=$!
    _i=0
    while [ ! -S "$1" ] && [ $_i -lt 100 ]; do _i=$((_i + 1)); sleep 0.05; done
    kill -9 "$_p"
    wait "$_p" 2>/dev/null || true
}
make_stale_socket "$tmp/s/old.qmp"
[ -S "$tmp/s/old.qmp" ] || fail "could not make a stale socket"
start "$tmp/s" --domain old:linux --domain new16 --anon --stats 16 --memory 256 -S
"$q" --query "$tmp/s/new16.qmp" '{"execute":"query-status"}' '{"execute":"query-balloon"}' \
    '{"execute":"qom-list","arguments":{"path":"/machine/peripheral-anon"}}' \
    '{"execute":"qom-get","arguments":{"path":"/machine/peripheral-anon/device[1]","property":"guest-stats"}}' >"$tmp/new16"
grep -q '"status": "prelaunch"' "$tmp/new16" || fail "-S: not prelaunch"
grep -q '"actual": 268435456' "$tmp/new16" || fail "--memory 256"
grep -q '"name": "device\[1\]", "type": "child<virtio-balloon-pci>"' "$tmp/new16" || fail "--anon"
[ "$(grep -o '"stat-[a-z-]*"' "$tmp/new16" | sort -u | wc -l)" -eq 16 ] || fail "--stats 16: $(cat "$tmp/new16")"
"$q" --query "$tmp/s/old.qmp" '{"execute":"query-status"}' | grep -q prelaunch || fail "the stale socket was not replaced"
stop INT
[ -z "$(ls -A "$tmp/s")" ] || fail "sockets left after SIGINT"
start "$tmp/s" --domain six --stats 6
[ "$("$q" --query "$tmp/s/six.qmp" "$get_stats" | grep -o '"stat-[a-z-]*"' | wc -l)" -eq 6 ] || fail "--stats 6"
stop TERM

if [ "${BALLOON_SKIP_SLOW:-0}" != 1 ]; then
    echo "== 10000 domains in one process"
    base=$tmp
    [ -d /dev/shm ] && [ -w /dev/shm ] && base=$(mktemp -d /dev/shm/vqmp-sim-XXXXXX)
    t0=$(date +%s%N)
    start "$base/big" --domains 10000
    t1=$(date +%s%N)
    [ "$(ls "$base/big" | wc -l)" -eq 10000 ] || fail "not 10000 sockets"
    [ "$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")" = 1 ] || fail "more than one thread"
    echo "  10000 domains ready in $(((t1 - t0) / 1000000)) ms ($(cat "$tmp/out")), RSS $(grep VmRSS "/proc/$pid/status")"
    "$q" --query "$base/big/dom10000.qmp" "$set_interval" >/dev/null
    "$q" --query "$base/big/dom1.qmp" '{"execute":"query-status"}' | grep -q running || fail "dom1 of 10000"
    stop TERM
    [ -z "$(ls -A "$base/big")" ] || fail "sockets left behind by the 10000-domain run"
    [ "$base" != "$tmp" ] && rm -rf "$base"
fi
echo "PASS"
