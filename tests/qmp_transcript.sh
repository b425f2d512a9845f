#!/bin/sh
# Replays the QMP transcripts recorded from QEMU 7.2 and 10.0 (tests/qmp/*.qemu-VERSION.txt) against
# balloon-sim answering as that version (--qemu VERSION): every reply and event must be the one QEMU
# gave, byte for byte, stat values, "actual", timestamps and the version's micro/package aside
# (tests/qmp_replay.c --check). balloon0 is replayed against a guest without a driver (whose replies
# QEMU's are exactly) and against a linux guest that answers.
set -eu
sim="$abs_top_builddir/virtio/balloon-sim"
replay="$abs_top_builddir/tests/qmp_replay"
qmp="$abs_top_srcdir/tests/qmp"
[ -x "$sim" ] || { echo "SKIP: $sim is not built"; exit 77; }

tmp=$(mktemp -d /tmp/vqmp-transcript-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# replay TRANSCRIPT DOMAIN SIM-ARGS...
replay() {
    transcript=$1 domain=$2
    shift 2
    rm -rf "$tmp/s"
    mkdir -m 700 "$tmp/s"
    "$sim" --socket-dir "$tmp/s" "$@" >"$tmp/sim.out" 2>&1 &
    pid=$!
    i=0
    until grep -q ready "$tmp/sim.out"; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
            cat "$tmp/sim.out"
            echo "FAIL: balloon-sim did not get ready"
            exit 1
        fi
        sleep 0.05
    done
    echo "== $transcript against balloon-sim $*"
    "$replay" --check "$tmp/s/$domain.qmp" "$qmp/$transcript" || {
        echo "FAIL: balloon-sim's replies differ from QEMU's in $transcript"
        exit 1
    }
    # the transcript ends with quit: the domain is gone, its socket with it
    i=0
    while [ -e "$tmp/s/$domain.qmp" ]; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "FAIL: '$domain.qmp' is still there after quit"; exit 1; }
        sleep 0.05
    done
    kill "$pid"
    wait "$pid" || { echo "FAIL: balloon-sim did not exit 0 on SIGTERM"; exit 1; }
    pid=
}

for version in 7.2 10.0; do
    replay "balloon0.qemu-$version.txt" balloon0 --qemu "$version" -S --memory 128 --domain balloon0:none
    replay "balloon0.qemu-$version.txt" balloon0 --qemu "$version" -S --domain balloon0:linux --domain other:linux
    replay "anon.qemu-$version.txt" anon --qemu "$version" -S --anon --memory 128 --domain anon:none
    replay "anon.qemu-$version.txt" anon --qemu "$version" -S --anon --domain anon:legacy
done
echo "PASS"
