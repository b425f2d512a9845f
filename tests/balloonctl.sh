#!/bin/sh
# balloonctl against balloon-sim (and a socket that never answers): every command, exit codes, JSON,
# a domain name with quotes and backslashes, names with control characters and invalid UTF-8 (valid
# JSON and a clean terminal all the same), numbers read by one rule, a hostile --qom-path refused
# before anything is sent, and a costly --domain regex refused before it is compiled.
set -u

ctl="$abs_top_builddir/agent/balloonctl"
sim="$abs_top_builddir/virtio/balloon-sim"
[ -x "$sim" ] || { echo "SKIP: $sim is not built"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed (scripts/install-deps.sh)"; exit 77; }
command -v socat >/dev/null || { echo "SKIP: socat is not installed (scripts/install-deps.sh)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/balloonctl-test.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# Runs balloonctl, keeping stdout, stderr and the exit status.
run() {
    "$ctl" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
}
expect_status() { # want description
    if [ "$status" = "$1" ]; then ok "$2 (exit $1)"; else
        fail "$2: exit $status, wanted $1"; sed 's/^/  stdout: /' "$tmp/out"; sed 's/^/  stderr: /' "$tmp/err"; fi
}
# Waits up to 10 s for a command to succeed.
eventually() {
    i=0
    while [ $i -lt 50 ]; do
        if "$@"; then return 0; fi
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

odd='q "x" \y'
dir="$tmp/sim"
mkdir "$dir"
"$sim" --socket-dir "$dir" --domain web:linux --domain "$odd:linux" --domain nodrv:none \
    --domain stuck:stuck >"$tmp/sim.out" 2>"$tmp/sim.err" &
pids="$pids $!"
eventually grep -q ready "$tmp/sim.out" || { cat "$tmp/sim.err"; echo "FAIL: balloon-sim never got ready"; exit 1; }

# --- usage errors: exit 2, one clear line, nothing else ---
for args in "" "frob" "list --json" "set-interval" "set-interval -1" "set-interval 4294967296" \
    "set-interval 1x" "--domain /(/ list" "--bogus list" "--connect a --qmp-dir b list" "list extra" \
    "stats --count 2"; do
    # shellcheck disable=SC2086
    run $args
    expect_status 2 "usage: '$args'"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "usage: '$args' printed $(wc -l <"$tmp/err") lines on stderr"
    [ -s "$tmp/out" ] && fail "usage: '$args' printed on stdout"
done

# --- a socket directory that is not there: exit 1, one clear line ---
run --qmp-dir "$tmp/nonexistent" list
expect_status 1 "a missing --qmp-dir"
[ "$(cat "$tmp/err")" = "balloonctl: The QMP socket directory '$tmp/nonexistent' does not exist." ] ||
    fail "a missing --qmp-dir: stderr: $(cat "$tmp/err")"
[ -s "$tmp/out" ] && fail "a missing --qmp-dir printed on stdout"
run --qmp-dir "$tmp/sim.out" stats
expect_status 1 "a --qmp-dir that is a file"
grep -q "is not a directory" "$tmp/err" || fail "a --qmp-dir that is a file: stderr: $(cat "$tmp/err")"

# --- numbers: digits only, everywhere; a negative interval is a number out of range ---
run set-interval -1
grep -q "The interval '-1' is not a whole number of seconds from 0 to 4294967295" "$tmp/err" ||
    fail "set-interval -1: $(cat "$tmp/err")"
for bad in ' 5' '+5' '5 ' '0x5' '-0'; do
    for cmd in "--count:watch" "--interval:watch" "--timeout:list"; do
        run "${cmd%%:*}" "$bad" "${cmd#*:}"
        expect_status 2 "${cmd%%:*} '$bad'"
        grep -q "is not a whole number .*in digits only" "$tmp/err" || fail "${cmd%%:*} '$bad': $(cat "$tmp/err")"
    done
    run set-interval "$bad"
    expect_status 2 "set-interval '$bad'"
done
run --qmp-dir "$tmp/nowhere" --count 01 --interval 01 --timeout 0300 watch
[ "$status" != 2 ] || fail "leading zeros are refused: $(cat "$tmp/err")"

# --- a regex that would cost glibc's regcomp seconds and gigabytes: refused before compiling ---
start_s=$(date +%s)
run --domain '/(a{0,32767})/' list
expect_status 2 "--domain '/(a{0,32767})/'"
grep -q "copies of its parts" "$tmp/err" || fail "costly regex: $(cat "$tmp/err")"
run --domain '/((a{1,100}){1,100}){1,100}/' list
expect_status 2 "--domain '/((a{1,100}){1,100}){1,100}/'"
[ $(( $(date +%s) - start_s )) -le 3 ] || fail "refusing two costly regexes took $(( $(date +%s) - start_s )) s"

# --- a hostile --qom-path is refused and nothing is sent ---
trap_dir="$tmp/trap"
mkdir "$trap_dir"
socat UNIX-LISTEN:"$trap_dir/trap.qmp" SYSTEM:"touch '$trap_dir/touched'" &
pids="$pids $!"
eventually test -S "$trap_dir/trap.qmp" || fail "the trap socket never appeared"
for hostile in '/machine/peripheral/balloon0","execute":"quit' '/machine/x\y' 'machine/peripheral/balloon0' \
    "$(printf '/machine/peripheral/\nballoon0')"; do
    run --qmp-dir "$trap_dir" --qom-path "$hostile" list
    expect_status 2 "hostile --qom-path refused"
    grep -q "qom-path" "$tmp/err" || fail "the refusal does not name --qom-path: $(cat "$tmp/err")"
done
sleep 0.2
[ -e "$trap_dir/touched" ] && fail "something connected to the trap although the path was refused"
# The trap does work: a harmless command does connect (and times out on it).
run --qmp-dir "$trap_dir" --timeout 300 list
eventually test -e "$trap_dir/touched" && ok "the trap sees a connection when one is made" ||
    fail "the trap saw nothing"

# --- list before anything was set: observe only, polling off ---
run --qmp-dir "$dir" list
expect_status 0 "list"
grep -q "^web .*/machine/peripheral/balloon0 .*off *never answered$" "$tmp/out" || fail "list: web row: $(cat "$tmp/out")"
grep -qF "$odd" "$tmp/out" || fail "list: the odd name is missing"
[ "$(wc -l <"$tmp/out")" = 5 ] || fail "list: wanted a header and 4 rows"
[ -s "$tmp/err" ] && fail "list: stderr: $(cat "$tmp/err")"

# --- set-interval ---
run --qmp-dir "$dir" set-interval 1
expect_status 0 "set-interval 1"
grep -qxF "$odd: polling interval 1 s" "$tmp/out" || fail "set-interval: $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/out")" = 4 ] || fail "set-interval: wanted 4 lines"

web_ok() {
    "$ctl" --qmp-dir "$dir" --domain web list 2>/dev/null | grep -q "1 s  ok$"
}
eventually web_ok && ok "web is ok once polled" || fail "web never became ok: $("$ctl" --qmp-dir "$dir" list 2>&1)"

run --qmp-dir "$dir" list
grep -q "^nodrv .* 1 s  never answered$" "$tmp/out" || fail "list: nodrv: $(cat "$tmp/out")"

# --- stats: table and JSON ---
run --qmp-dir "$dir" stats
expect_status 0 "stats"
grep -q "^DOMAIN  *STATE  *UPDATED  *TOTAL-MIB" "$tmp/out" || fail "stats: header: $(head -1 "$tmp/out")"

run --qmp-dir "$dir" stats --json
expect_status 0 "stats --json"
jq -e . "$tmp/out" >/dev/null || fail "stats --json is not JSON: $(cat "$tmp/out")"
jq -e 'type == "array" and length == 4' "$tmp/out" >/dev/null || fail "stats --json: not an array of 4"
jq -e 'all(.[]; has("domain") and has("uuid") and has("last_update") and has("polling_interval") and has("stats"))' \
    "$tmp/out" >/dev/null || fail "stats --json: missing keys"
[ "$(jq -r --arg n "$odd" '[.[] | select(.domain == $n)] | length' "$tmp/out")" = 1 ] ||
    fail "stats --json: the name with quotes and backslashes does not round-trip"
jq -e '.[] | select(.domain == "web") | .last_update > 0 and .polling_interval == 1
       and (.stats["stat-total-memory"] | type == "number")
       and (.stats | keys | length == 10)' "$tmp/out" >/dev/null || fail "stats --json: web: $(cat "$tmp/out")"
jq -e '.[] | select(.domain == "nodrv") | .last_update == 0 and (.stats | all(.[]; . == null))' \
    "$tmp/out" >/dev/null || fail "stats --json: nodrv must have last_update 0 and null stats"

# --- selection ---
run --qmp-dir "$dir" --domain "$odd" stats --json
expect_status 0 "--domain with quotes and backslashes"
[ "$(jq -r '.[].domain' "$tmp/out")" = "$odd" ] || fail "--domain '$odd': $(cat "$tmp/out")"
run --qmp-dir "$dir" --domain '/^(web|nodrv)$/' list
[ "$(tail -n +2 "$tmp/out" | awk '{print $1}' | tr '\n' ' ')" = "nodrv web " ] ||
    fail "--domain /regex/: $(cat "$tmp/out")"
run --qmp-dir "$dir" --domain web --domain nothere list
expect_status 1 "a named domain that is not running"
[ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "'nothere'" "$tmp/err" || fail "nothere: $(cat "$tmp/err")"

# --- names with control characters and invalid UTF-8: valid JSON, a clean terminal ---
hostile="$tmp/hostile"
mkdir "$hostile"
"$sim" --socket-dir "$hostile" --domain "$(printf 'bad\377x')" --domain "$(printf 'esc\033[2Jx')" \
    --domain "$(printf 'c1\302\233x')" --domain "$(printf 'nl\nx')" --domain "$(printf 'ok-\303\274')" \
    >"$tmp/hsim.out" 2>"$tmp/hsim.err" &
pids="$pids $!"
eventually grep -qs ready "$tmp/hsim.out" || fail "balloon-sim with hostile names never got ready"
run --qmp-dir "$hostile" stats --json
expect_status 0 "stats --json with hostile names"
python3 - "$tmp/out" <<'PY' || fail "stats --json with hostile names: $(cat "$tmp/out")"
import json, sys
raw = open(sys.argv[1], "rb").read()
names = sorted(d["domain"] for d in json.loads(raw.decode("utf-8")))  # strict: valid UTF-8
want = sorted(["bad\ufffdx", "esc\x1b[2Jx", "c1\x9bx", "nl\nx", "ok-\u00fc"])
if names != want:
    sys.exit("names %r, wanted %r" % (names, want))
PY
for cmd in list stats; do
    run --qmp-dir "$hostile" $cmd
    expect_status 0 "$cmd with hostile names"
    python3 - "$tmp/out" "$tmp/err" <<'PY' || fail "$cmd with hostile names: $(od -c "$tmp/out" | head -20)"
import sys
for path in sys.argv[1:]:
    text = open(path, "rb").read().decode("utf-8")  # strict: valid UTF-8
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
    if bad:
        sys.exit("%s: control characters %r" % (path, bad))
    if len(text.splitlines()) > (6 if path == sys.argv[1] else 0):
        sys.exit("%s: %d lines" % (path, len(text.splitlines())))
PY
done
grep -q "^bad$(printf '\357\277\275')x " "$tmp/out" || fail "the table does not show 'bad\\uFFFDx': $(cat "$tmp/out")"
grep -q "^nl?x " "$tmp/out" || fail "the table does not show 'nl?x': $(cat "$tmp/out")"

# --- a configured path where there is no balloon ---
run --qmp-dir "$dir" --domain web --qom-path /machine/peripheral/nope list
expect_status 0 "--qom-path with no balloon there"
grep -q "^web .* no balloon$" "$tmp/out" || fail "--qom-path nope: $(cat "$tmp/out")"

# --- a domain that never answers: exit 1, one line on stderr, the others still shown ---
mixed="$tmp/mixed"
mkdir "$mixed"
ln -s "$dir/web.qmp" "$mixed/web.qmp"
socat UNIX-LISTEN:"$mixed/hung.qmp",fork SYSTEM:"sleep 5" &
pids="$pids $!"
eventually test -S "$mixed/hung.qmp" || fail "the hung socket never appeared"
run --qmp-dir "$mixed" --timeout 300 list
expect_status 1 "one domain never answers"
[ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "hung" "$tmp/err" || fail "hung: stderr: $(cat "$tmp/err")"
grep -q "^web .* ok$" "$tmp/out" || fail "hung: web row missing: $(cat "$tmp/out")"
grep -q "^hung .* failed$" "$tmp/out" || fail "hung: its row: $(cat "$tmp/out")"

# --- watch ---
run --qmp-dir "$dir" watch --count 2 --interval 1
expect_status 0 "watch --count 2"
[ "$(grep -c '^balloonctl watch' "$tmp/out")" = 2 ] || fail "watch: wanted 2 refreshes: $(cat "$tmp/out")"
"$ctl" --qmp-dir "$dir" watch --interval 1 >"$tmp/watch.out" 2>&1 &
wpid=$!
eventually grep -q '^web ' "$tmp/watch.out" || fail "watch printed no table"
kill -INT "$wpid"
wait "$wpid"
[ $? = 0 ] && ok "watch ends with 0 on SIGINT" || fail "watch did not end cleanly on SIGINT"

# --- a stuck guest: stale once polling has been on for 3 intervals without an answer ---
if [ -z "${BALLOON_SKIP_SLOW:-}" ]; then
    stuck_stale() { "$ctl" --qmp-dir "$dir" --domain stuck list 2>/dev/null | grep -q " stale$"; }
    eventually stuck_stale && ok "the stuck guest shows as stale" || fail "stuck never stale: $(cat "$tmp/out")"
fi

# --- set-interval 0 turns polling off ---
run --qmp-dir "$dir" --domain web set-interval 0
expect_status 0 "set-interval 0"
run --qmp-dir "$dir" --domain web list
grep -q "^web .* off  " "$tmp/out" || fail "set-interval 0: $(cat "$tmp/out")"

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all balloonctl checks passed"
