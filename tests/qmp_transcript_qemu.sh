#!/bin/sh
# Replays the recorded QMP transcripts (tests/qmp/*.qemu-7.2.txt) against a freshly started real
# qemu-system-x86_64, so that they cannot drift from what QEMU answers. Skipped without QEMU, and in
# the sanitizer pass (BALLOON_SKIP_SLOW=1): nothing of ours runs here but the replay tool.
set -eu
replay="$abs_top_builddir/tests/qmp_replay"
qmp="$abs_top_srcdir/tests/qmp"
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
[ "${BALLOON_SKIP_SLOW:-0}" = 1 ] && { echo "SKIP: BALLOON_SKIP_SLOW=1"; exit 77; }

tmp=$(mktemp -d /tmp/vqmp-qemu-XXXXXX)
qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck source=tests/qmp/qemu.sh
. "$qmp/qemu.sh"

for name in balloon0 anon; do
    qemu_start "$tmp" "$name"
    echo "== $name.qemu-7.2.txt against $(qemu-system-x86_64 --version | head -1)"
    "$replay" --check "$tmp/q.sock" "$qmp/$name.qemu-7.2.txt" || {
        echo "FAIL: QEMU no longer answers as $name.qemu-7.2.txt says: re-record with tests/qmp/record.sh"
        exit 1
    }
    qemu_stop
    qemu_pid=
done
echo "PASS"
