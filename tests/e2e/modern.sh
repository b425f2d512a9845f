#!/bin/sh
# tests/e2e/modern.sh: the end-to-end test (run.sh) on the modern stack: libvirt 11.3, QEMU 10.0 and a
# Linux 6.12 guest from Debian's bookworm-backports, in a root of their own (modern-lib.sh).
E2E_STACK=modern
export E2E_STACK
exec sh "$(cd "$(dirname "$0")" && pwd)/run.sh" "$@"
