#!/bin/sh
# Records the QMP transcripts from the real QEMU: tests/qmp/NAME.qemu-VERSION.txt from NAME.cmds.
# Usage: tests/qmp/record.sh QMP_REPLAY [VERSION...]   (QMP_REPLAY: the built tests/qmp_replay;
# VERSION: 7.2, the system's QEMU, and 10.0, the modern stack's: both by default; see qemu.sh). Run it
# again after changing a .cmds file, and review the diff: the transcripts are the reference
# balloon-sim is held to.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
replay=$1
shift
tmp=$(mktemp -d /tmp/qmp-record-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=tests/qmp/qemu.sh
. "$here/qemu.sh"
[ $# -gt 0 ] || set -- $QEMU_VERSIONS

for version in "$@"; do
    qemu_find "$version" || { echo "record.sh: cannot record QEMU $version: $qemu_missing." >&2; exit 1; }
    for name in balloon0 anon; do
        qemu_start "$tmp" "$name"
        {
            echo "# Recorded from $(qemu_version_line)"
            echo "# with: $(qemu_args "$tmp/q.sock" "$name")"
            echo "# Commands: tests/qmp/$name.cmds; replay: tests/qmp_replay --check. Do not edit: re-record."
            "$replay" --record "$tmp/q.sock" <"$here/$name.cmds"
        } >"$here/$name.qemu-$version.txt"
        qemu_stop
        echo "recorded $here/$name.qemu-$version.txt"
    done
done
