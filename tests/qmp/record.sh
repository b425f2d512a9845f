#!/bin/sh
# Records the QMP transcripts from the real QEMU: tests/qmp/NAME.qemu-7.2.txt from NAME.cmds.
# Usage: tests/qmp/record.sh QMP_REPLAY   (the built tests/qmp_replay). Run it again after changing
# a .cmds file, and review the diff: the transcripts are the reference balloon-sim is held to.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
replay=$1
tmp=$(mktemp -d /tmp/qmp-record-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=tests/qmp/qemu.sh
. "$here/qemu.sh"

for name in balloon0 anon; do
    qemu_start "$tmp" "$name"
    {
        echo "# Recorded from $(qemu-system-x86_64 --version | head -1)"
        echo "# with: $(qemu_args "$tmp/q.sock" "$name")"
        echo "# Commands: tests/qmp/$name.cmds; replay: tests/qmp_replay --check. Do not edit: re-record."
        "$replay" --record "$tmp/q.sock" <"$here/$name.cmds"
    } >"$here/$name.qemu-7.2.txt"
    qemu_stop
    echo "recorded $here/$name.qemu-7.2.txt"
done
