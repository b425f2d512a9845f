#!/bin/sh
# Replays the recorded QMP transcripts (tests/qmp/*.qemu-VERSION.txt) against a freshly started real
# QEMU of each version that is here (7.2: the system's; 10.0: the modern stack's root, built first
# when run as root: tests/qmp/qemu.sh), so that they cannot drift from what QEMU answers. Skipped
# when no such QEMU is here, and in the sanitizer pass (BALLOON_SKIP_SLOW=1): nothing of ours runs
# here but the replay tool.
set -eu
replay="$abs_top_builddir/tests/qmp_replay"
qmp="$abs_top_srcdir/tests/qmp"
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

replayed=0
for version in $QEMU_VERSIONS; do
    # QEMU 10.0 is the modern stack's: its root is built once per machine, here if nothing built it yet.
    if [ "$version" = 10.0 ] && ! qemu_find "$version" && [ "$(id -u)" = 0 ]; then
        sh "$abs_top_srcdir/tests/e2e/modern-root.sh" >/dev/null \
            || { echo "FAIL: the modern stack's root, QEMU 10.0's, could not be built (see above)"; exit 1; }
    fi
    if ! qemu_find "$version"; then
        echo "== QEMU $version not replayed: $qemu_missing"
        continue
    fi
    for name in balloon0 anon; do
        qemu_start "$tmp" "$name"
        echo "== $name.qemu-$version.txt against $(qemu_version_line)"
        "$replay" --check "$tmp/q.sock" "$qmp/$name.qemu-$version.txt" || {
            echo "FAIL: QEMU $version no longer answers as $name.qemu-$version.txt says: re-record with tests/qmp/record.sh"
            exit 1
        }
        qemu_stop
        qemu_pid=
    done
    replayed=$((replayed + 1))
done
[ "$replayed" -gt 0 ] || { echo "SKIP: no QEMU of the recorded versions is here"; exit 77; }
echo "PASS"
