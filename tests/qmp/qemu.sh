# Shell helpers shared by record.sh and tests/qmp_transcript_qemu.sh: the real QEMU each transcript
# is recorded from. Sourced, not run.
#
# QEMU versions: 7.2 is the system's qemu-system-x86_64 (Debian 12); 10.0 is the one in the modern
# stack's root (bookworm-backports, built by tests/e2e/modern-root.sh under /var/cache), run here with
# that root's own dynamic loader and libraries, outside any chroot: nothing mounted, nothing left in
# the root.

QEMU_VERSIONS="7.2 10.0"
QEMU_MODERN_ROOT=${E2E_CACHE:-/var/cache/collectd-balloon-e2e}/modern-root

# qemu_find VERSION: sets qemu_cmd to the command that runs that QEMU, or returns 1 with the reason
# in qemu_missing.
qemu_find() {
    qemu_cmd=""
    case "$1" in
        7.2)
            if ! command -v qemu-system-x86_64 >/dev/null; then
                qemu_missing="qemu-system-x86_64 is not installed"
                return 1
            fi
            qemu_cmd=qemu-system-x86_64
            ;;
        10.0)
            _r=$QEMU_MODERN_ROOT
            if [ ! -f "$_r/.collectd-balloon-e2e-root" ] || [ ! -x "$_r/usr/bin/qemu-system-x86_64" ]; then
                qemu_missing="the modern stack's root '$_r' is not built (tests/e2e/modern-root.sh builds it)"
                return 1
            fi
            qemu_cmd="$_r/lib64/ld-linux-x86-64.so.2 --library-path $_r/lib/x86_64-linux-gnu:$_r/usr/lib/x86_64-linux-gnu"
            qemu_cmd="$qemu_cmd $_r/usr/bin/qemu-system-x86_64 -L $_r/usr/share/qemu -L $_r/usr/share/seabios"
            ;;
        *)
            qemu_missing="no QEMU $1 is known here (known: $QEMU_VERSIONS)"
            return 1
            ;;
    esac
    # shellcheck disable=SC2086
    if ! $qemu_cmd --version 2>/dev/null | head -n 1 | grep -q "^QEMU emulator version $1[.]"; then
        qemu_missing="'$qemu_cmd' is not QEMU $1: $($qemu_cmd --version 2>&1 | head -n 1)"
        qemu_cmd=""
        return 1
    fi
}

# qemu_version_line: the first line of qemu_cmd's --version.
qemu_version_line() {
    # shellcheck disable=SC2086
    $qemu_cmd --version | head -n 1
}

# qemu_args SOCKET NAME: QEMU's arguments for transcript NAME (balloon0 or anon).
qemu_args() {
    _dev="-device virtio-balloon-pci,id=balloon0"
    [ "$2" = anon ] && _dev="-device pvpanic -device virtio-balloon-pci"
    echo "-S -nodefaults -display none -machine pc -m 128 -qmp unix:$1,server,nowait $_dev"
}

# qemu_start DIR NAME: starts the QEMU qemu_find found with its QMP socket at DIR/q.sock; sets qemu_pid.
qemu_start() {
    rm -f "$1/q.sock"
    # shellcheck disable=SC2046,SC2086
    $qemu_cmd $(qemu_args "$1/q.sock" "$2") >"$1/qemu.log" 2>&1 &
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
