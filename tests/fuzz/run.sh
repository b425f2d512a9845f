#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) in FUZZ_BUILD_DIR and runs each
# for FUZZ_SECONDS (default 60) from its seed corpus (tests/fuzz/corpus/NAME, plus the recorded QMP
# transcripts under tests/qmp/ for the reply parsers and the allow-list) and its kept regressions.
# Fails on any crash, leak, sanitizer report or broken invariant, leaving the input under
# FUZZ_BUILD_DIR/tests/fuzz/artifacts/: fix the bug, then copy the input to
# tests/fuzz/regressions/NAME/ so that make check replays it.
#   FUZZ_TARGETS   space-separated subset of the targets (default: all)
#   FUZZ_JOBS      targets run at once (default: the number of CPUs)
#   RECONFIGURE=1  configure the build directory again
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build/fuzz}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc)}
all_targets="qmp_reply allowlist plugin_config qmp_server qmp_stream"
targets=${FUZZ_TARGETS:-$all_targets}

command -v clang >/dev/null || { echo "fuzz: clang is not installed (scripts/install-deps.sh)" >&2; exit 1; }

# The libraries are instrumented for coverage (fuzzer-no-link); only the fuzz_* programs link
# libFuzzer's main (FUZZ_ENGINE).
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p "$build"
if [ ! -f "$build/Makefile" ] || [ "${RECONFIGURE:-0}" = 1 ]; then
    (cd "$build" && "$top/configure" -q CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link" \
        --with-sanitizer=address,undefined)
fi
progs=""
for t in $targets; do progs="$progs tests/fuzz/fuzz_$t"; done
# shellcheck disable=SC2086
make -C "$build" -s -j"$(nproc)" FUZZ_ENGINE=-fsanitize=fuzzer $progs

out="$build/tests/fuzz"
mkdir -p "$out/artifacts" "$out/logs"

# Seeds from the recorded transcripts (tests/qmp/*.txt): one file per distinct line, the server's
# ("S: ") for the reply parsers, the client's ("C: ") for the allow-list.
transcript_seeds() { # dir S|C
    mkdir -p "$1"
    for f in "$top"/tests/qmp/*.txt; do
        [ -f "$f" ] || continue
        sed -n "s/^$2: //p" "$f" | while IFS= read -r line; do
            sum=$(printf '%s' "$line" | cksum | cut -d' ' -f1)
            printf '%s' "$line" >"$1/qmp-$sum"
        done
    done
}

run_target() { # name
    t=$1
    work="$out/work/$t"
    extra="$out/seeds/$t"
    mkdir -p "$work" "$extra" "$top/tests/fuzz/regressions/$t"
    dict="$top/tests/fuzz/json.dict"
    maxlen=65536
    case $t in
        qmp_reply) transcript_seeds "$extra" S ;;
        allowlist) transcript_seeds "$extra" C ;;
        plugin_config) dict="$top/tests/fuzz/config.dict"; maxlen=4096 ;;
        qmp_server) maxlen=1024 ;; # a run answers every command twice under ASan: a few commands each
    esac
    log="$out/logs/$t.log"
    # a smaller quarantine and shorter allocation stacks: several times the runs per second
    if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=32:malloc_context_size=10 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$out/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" \
        -dict="$dict" -artifact_prefix="$out/artifacts/$t-" -print_final_stats=1 \
        "$work" "$top/tests/fuzz/corpus/$t" "$extra" "$top/tests/fuzz/regressions/$t" >"$log" 2>&1; then
        echo "fuzz: $t: ok ($(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs," \
            "$(ls "$work" | wc -l) inputs in the working corpus)"
        return 0
    fi
    echo "fuzz: $t: FAILED; the input is in $out/artifacts/ and the report in $log:" >&2
    grep -E 'ERROR|invariant failed|SUMMARY|Test unit written' "$log" | head -20 >&2
    return 1
}

echo "== fuzz: $seconds s per target ($targets), $jobs at once"
failed=0
running=0
pids=""
for t in $targets; do
    run_target "$t" &
    pids="$pids $!"
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        for p in $pids; do wait "$p" || failed=1; done
        pids=""
        running=0
    fi
done
for p in $pids; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || { echo "fuzz: at least one target failed" >&2; exit 1; }
echo "fuzz: all targets ran $seconds s without a finding"
