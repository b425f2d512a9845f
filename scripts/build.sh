#!/bin/sh
# Configures and builds in BUILD_DIR (default: ./build) out of tree. Extra arguments go to configure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "${RECONFIGURE:-0}" = 1 ]; then
    "$top/configure" -q "$@"
fi
make -s -j"$(nproc)"
