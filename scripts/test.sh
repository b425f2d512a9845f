#!/bin/sh
# The whole test suite: installs what it needs, builds with -Werror, runs `make check`, then runs the
# unit and integration tests again under AddressSanitizer + UndefinedBehaviorSanitizer, the C tests
# under valgrind, and each fuzz target for FUZZ_SECONDS.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"

echo "== build (-Werror) and make check"
BUILD_DIR="$top/build/check" RECONFIGURE=1 "$top/scripts/build.sh" --enable-werror
make -C "$top/build/check" -s -j"$(nproc)" check || { cat "$top"/build/check/tests/*.log >&2 || true; exit 1; }

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
BUILD_DIR="$top/build/asan" RECONFIGURE=1 "$top/scripts/build.sh" --enable-werror \
    --with-sanitizer=address,undefined
ASAN_OPTIONS=detect_leaks=1 BALLOON_SKIP_SLOW=1 \
    make -C "$top/build/asan" -s -j"$(nproc)" check || { cat "$top"/build/asan/tests/*.log >&2 || true; exit 1; }
echo "== valgrind (the C tests, balloon-sim and balloonctl)"
"$top/tests/valgrind.sh" "$top/build/check"
echo "== fuzzing (${FUZZ_SECONDS:-60} s per target)"
FUZZ_BUILD_DIR="$top/build/fuzz" RECONFIGURE=1 "$top/tests/fuzz/run.sh"
echo "== all tests passed"
