# Shell helpers shared by record.sh and tests/qmp_transcript_qemu.sh: the real QEMU each transcript
# is recorded from. Sourced, not run.

# qemu_args SOCKET NAME: QEMU's arguments for transcript NAME (balloon0 or anon).
qemu_args() {
    _dev="-device virtio-balloon-pci,id=balloon0"
    [ "$2" = anon ] && _dev="-device pvpanic -device virtio-balloon-pci"
    echo "-S -nodefaults -display none -machine pc -m 128 -qmp unix:$1,server,nowait $_dev"
}

# qemu_start DIR NAME: starts QEMU with its QMP socket at DIR/q.sock; sets qemu_pid.
qemu_start() {
    rm -f "$1/q.sock"
    # shellcheck disable=SC2046
    qemu-system-x86_64 $(qemu_args "$1/q.sock" "$2") >"$1/qemu.log" 2>&1 &
    qemu_pid=$!
    _i=0
    while [ ! -S "$1/q.sock" ]; do
        _i=$((_i + 1))
        if [ $_i -gt 100 ] || ! kill -0 "$qemu_pid" 2>/dev/null; then
            cat "$1/qemu.log" >&2
            echo "QEMU did not create its QMP socket." >&2
            return 1
        fi
        sleep 0.1
    done
}

# qemu_stop: waits for QEMU to exit (the transcripts end with quit), kills it after 10 s.
qemu_stop() {
    _i=0
    while kill -0 "$qemu_pid" 2>/dev/null && [ $_i -lt 100 ]; do
        _i=$((_i + 1))
        sleep 0.1
    done
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
}
