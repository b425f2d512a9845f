#!/bin/sh
# The whole test suite: installs what it needs, builds with -Werror, runs `make check`, then runs the
# unit and integration tests again under AddressSanitizer + UndefinedBehaviorSanitizer, the C tests
# under valgrind, and each fuzz target for FUZZ_SECONDS.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"

# Prints the log of every test that did not pass, so that CI's output says why.
show_failures() {
    for trs in $(find "$1/tests" -name '*.trs'); do
        if ! grep -q '^:test-result: \(PASS\|SKIP\)' "$trs"; then
            echo "---- ${trs%.trs}.log" >&2
            tail -n 200 "${trs%.trs}.log" >&2
        fi
    done
}

echo "== build (-Werror) and make check"
BUILD_DIR="$top/build/check" RECONFIGURE=1 "$top/scripts/build.sh" --enable-werror
make -C "$top/build/check" -s -j"$(nproc)" check || { show_failures "$top/build/check"; exit 1; }

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
BUILD_DIR="$top/build/asan" RECONFIGURE=1 "$top/scripts/build.sh" --enable-werror \
    --with-sanitizer=address,undefined
ASAN_OPTIONS=detect_leaks=1 BALLOON_SKIP_SLOW=1 \
    make -C "$top/build/asan" -s -j"$(nproc)" check || { show_failures "$top/build/asan"; exit 1; }
echo "== valgrind (the C tests, balloon-sim and balloonctl)"
"$top/tests/valgrind.sh" "$top/build/check"
echo "== fuzzing (${FUZZ_SECONDS:-60} s per target)"
FUZZ_BUILD_DIR="$top/build/fuzz" RECONFIGURE=1 "$top/tests/fuzz/run.sh"
# One closing line over both make check passes, in the form CI reads.
passed=$(cat "$top"/build/check/tests/*.trs "$top"/build/check/tests/*/*.trs \
             "$top"/build/asan/tests/*.trs "$top"/build/asan/tests/*/*.trs 2>/dev/null | grep -c '^:test-result: PASS')
skipped=$(cat "$top"/build/check/tests/*.trs "$top"/build/check/tests/*/*.trs \
              "$top"/build/asan/tests/*.trs "$top"/build/asan/tests/*/*.trs 2>/dev/null | grep -c '^:test-result: SKIP' || true)
echo "== all tests passed"
echo "$passed passed, 0 failed, $skipped skipped"
