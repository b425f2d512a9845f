# tests/e2e/modern-lib.sh: the modern stack (libvirt 11.3, QEMU 10.0, Linux 6.12 from Debian's
# bookworm-backports) kept apart from the system's libvirt 9.0 / QEMU 7.2: its libvirtd and QEMU run
# chrooted in a Debian 12 root built once per machine by modern-root.sh (DESIGN.md, "The modern
# stack"). Sourced (POSIX sh) by modern-root.sh, and by run.sh and qmp-socket.sh when E2E_STACK=modern,
# after lib.sh, whose stack functions it replaces (e2e_prepare_host, e2e_prepare_images,
# e2e_start_libvirt, e2e_run_libvirtd, e2e_stop_daemons).
#
# Mounts: whatever runs in the root runs in a mount namespace of its own (unshare -m, private
# propagation) where proc, sys, dev and the run's work directory are mounted for it. The rest of the
# machine never sees those mounts, and the kernel removes them when the namespace's last process ends,
# on every exit path: stopping every process whose root is the root (mr_stop_root_processes) is the
# cleanup, and a killed run's leftovers are stopped the same way at the next start. The root's /run
# is its own (ROOT/run, emptied at each start): its libvirtd never sees the system's /run/libvirt.

E2E_CACHE=${E2E_CACHE:-/var/cache/collectd-balloon-e2e}
MR_ROOT=$E2E_CACHE/modern-root

# mr_root_pids ROOT: the processes whose root directory is ROOT (same device and inode).
mr_root_pids() {
    _want=$(stat -L -c '%d:%i' "$1" 2>/dev/null) || return 0
    for _p in /proc/[0-9]*; do
        [ "$(stat -L -c '%d:%i' "$_p/root" 2>/dev/null)" = "$_want" ] && echo "${_p#/proc/}"
    done
    return 0
}

# mr_stop_root_processes ROOT: TERM to every process in ROOT, KILL to those left after 10 s. The run
# lock (or the build lock) makes every such process ours: nothing else runs in that root.
mr_stop_root_processes() {
    _pids=$(mr_root_pids "$1")
    [ -n "$_pids" ] || return 0
    # shellcheck disable=SC2086
    kill -TERM $_pids 2>/dev/null
    _i=0
    while [ -n "$(mr_root_pids "$1")" ] && [ $_i -lt 100 ]; do
        sleep 0.1; _i=$((_i + 1))
    done
    _pids=$(mr_root_pids "$1")
    # shellcheck disable=SC2086
    [ -z "$_pids" ] || kill -KILL $_pids 2>/dev/null
    _i=0
    while [ -n "$(mr_root_pids "$1")" ] && [ $_i -lt 50 ]; do
        sleep 0.1; _i=$((_i + 1))
    done
    return 0
}

# mr_failed_downloads LOG: what apt or debootstrap said it could not fetch, as "the package 'P'
# (URL: REASON)" or "the index URL (REASON)", joined with "; "; empty if the log names nothing.
mr_failed_downloads() {
    awk '
        function add(s) { if (!(s in seen)) { seen[s] = 1; out = out (out == "" ? "" : "; ") s } }
        # apt: "E: Failed to fetch URL  REASON" (or W:)
        /^(E|W): Failed to fetch / {
            url = $5
            reason = $0; sub(/^.*fetch +[^ ]+ +/, "", reason); sub(/ *\[IP:.*$/, "", reason)
            if (url ~ /\.deb$/) {
                p = url; sub(/^.*\//, "", p); sub(/_.*$/, "", p)
                add("the package '\''" p "'\'' (" url ": " reason ")")
            } else if (url ~ /^https?:/) add("the index " url " (" reason ")")
            next
        }
        # debootstrap
        /Couldn.t download package / {
            p = $0; sub(/^.*Couldn.t download package /, "", p); sub(/ .*$/, "", p)
            add("the package '\''" p "'\''"); next
        }
        /Couldn.t download packages: / {
            s = $0; sub(/^.*packages: /, "", s); n = split(s, ps, " ")
            for (i = 1; i <= n; i++) add("the package '\''" ps[i] "'\''")
            next
        }
        /Failed getting release file / { s = $0; sub(/^.*release file /, "", s); add("the index " s); next }
        /Failed getting release signature file / { s = $0; sub(/^.*signature file /, "", s); add("the index " s); next }
        END { print out }
    ' "$1" 2>/dev/null
}

# mr_in_root ROOT WORK COMMAND...: COMMAND chrooted into ROOT in a new mount namespace, with proc,
# sys and dev mounted, and the directory WORK (unless empty) bound at the same path in the root. The
# environment is a clean one. With MR_TIMEOUT set, the whole is killed after that many seconds.
mr_in_root() {
    _r=$1 _w=$2
    shift 2
    [ -z "$_w" ] || mkdir -p "$_r$_w" || return 1
    ${MR_TIMEOUT:+timeout -k 10 "$MR_TIMEOUT"} unshare -m --propagation private sh -c '
        r=$1 w=$2
        shift 2
        mount -t proc proc "$r/proc" && mount --bind /sys "$r/sys" && mount --bind /dev "$r/dev" || exit 1
        if [ -n "$w" ]; then mount --bind "$w" "$r$w" || exit 1; fi
        exec chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
    ' mr_in_root "$_r" "$_w" "$@"
}

# mr_apt_opts: apt options that read the root's package lists (bookworm and bookworm-backports,
# backports preferred) from this machine's apt, without touching the system's own sources.
mr_apt_opts() {
    echo "-o Dir::Etc::SourceList=$MR_ROOT/etc/apt/sources.list" \
         "-o Dir::Etc::SourceParts=$MR_ROOT/etc/apt/sources.list.d" \
         "-o Dir::State::Lists=$MR_ROOT/var/lib/apt/lists" \
         "-o Dir::Cache=$MR_ROOT/var/cache/apt" \
         "-o APT::Default-Release=bookworm-backports" \
         "-o Acquire::http::Timeout=60 -o Acquire::Retries=2"
}

# --- the modern stack for run.sh and qmp-socket.sh ------------------------------------------------
E2E_ROOT=$MR_ROOT
# The root's libvirtd, reached from this machine through its socket (never the system's /run/libvirt).
E2E_URI="qemu+unix:///system?socket=$MR_ROOT/run/libvirt/libvirt-sock"
E2E_ADMIN_URI="libvirtd:///system?socket=$MR_ROOT/run/libvirt/libvirt-admin-sock"
# ROOT/var/run is a symbolic link to /run, the system's: paths of this machine's use ROOT/run.
E2E_LIBVIRTD_PIDFILE=$MR_ROOT/run/libvirtd.pid
E2E_EMULATOR=/usr/bin/qemu-system-x86_64
E2E_STACK_NAME="libvirt 11.3, QEMU 10.0, Linux 6.12 (bookworm-backports, in $MR_ROOT)"

# The root (built once), nothing left running in it from a killed run, its /run emptied, and the
# mount point of this run's work directory.
e2e_prepare_host() {
    sh "$E2E_SRCDIR/tests/e2e/modern-root.sh" "$E2E_CACHE" >/dev/null || return 1
    if [ -n "$(mr_root_pids "$MR_ROOT")" ]; then
        e2e_log "stopping what a killed run left in $MR_ROOT: $(mr_root_pids "$MR_ROOT" | tr '\n' ' ')"
        mr_stop_root_processes "$MR_ROOT"
    fi
    # Never mounted on this machine (mr_in_root mounts in namespaces that are gone now): plain files.
    find "$MR_ROOT/run" -mindepth 1 -maxdepth 1 ! -name lock ! -name shm -exec rm -rf {} + || return 1
    rm -rf "$MR_ROOT"/tmp/e2e-*
    mkdir -p "$MR_ROOT$E2E_WORK" "$MR_ROOT/var/log/libvirt/qemu"
}

# The Linux 6.12 kernel of bookworm-backports, kept inside the root (where its QEMU reads it). Lists
# that no longer have the package the cache lacks are updated once.
e2e_fetch_kernel() {
    _kcache=$MR_ROOT/var/cache/collectd-balloon-e2e
    E2E_APT_OPTS=$(mr_apt_opts) sh "$E2E_SRCDIR/tests/e2e/fetch-kernel.sh" "$_kcache" && return 0
    e2e_log "updating the root's package lists, then fetching the kernel once more"
    MR_TIMEOUT=${E2E_NET_TIMEOUT:-900} mr_in_root "$MR_ROOT" "" apt-get -q --error-on=any update \
        >"$E2E_WORK/apt-update.out" 2>&1 \
        || { e2e_log "apt-get update in $MR_ROOT failed: $(mr_failed_downloads "$E2E_WORK/apt-update.out")"; return 1; }
    E2E_APT_OPTS=$(mr_apt_opts) sh "$E2E_SRCDIR/tests/e2e/fetch-kernel.sh" "$_kcache"
}

e2e_exec_libvirtd() {
    mr_in_root "$MR_ROOT" "$E2E_WORK" /usr/sbin/libvirtd -d 9>&-
}

# The root's libvirtd is always this run's: it is started, and stopped again at the end.
e2e_start_libvirt() {
    e2e_run_libvirtd || return 1
    cp "$E2E_WORK/libvirtd.pid" "$E2E_WORK/started-libvirtd"
    # It is the root's, listening on the root's own socket.
    mr_root_pids "$MR_ROOT" | grep -qxF "$(cat "$E2E_WORK/libvirtd.pid")" \
        || { e2e_log "libvirtd (pid $(cat "$E2E_WORK/libvirtd.pid")) does not run in $MR_ROOT."; return 1; }
    [ -S "$MR_ROOT/run/libvirt/libvirt-sock" ] || { e2e_log "no socket $MR_ROOT/run/libvirt/libvirt-sock."; return 1; }
    e2e_log "started libvirtd in $MR_ROOT (pid $(cat "$E2E_WORK/started-libvirtd"))"
}

# libvirtd by pid, then anything else in the root (a QEMU that outlived its domain), and with the
# last process the namespaces and their mounts.
e2e_stop_daemons() {
    e2e_stop_started_daemons
    mr_stop_root_processes "$MR_ROOT"
    rmdir "$MR_ROOT$E2E_WORK" 2>/dev/null
    return 0
}
