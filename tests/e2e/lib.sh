# tests/e2e/lib.sh: the real stack for the end-to-end test, sourced by tests/e2e/run.sh (POSIX sh).
# libvirtd + virtlogd started only when not already running (and then stopped again), transient TCG
# domains named e2e-* built from domain.xml.in, their serial consoles, QMP through virsh.
#
# The caller sets E2E_WORK (a fresh directory for this run) before calling anything here. Everything
# this file starts is written down under E2E_WORK so that e2e_cleanup stops exactly that and nothing
# else: domains by name, daemons by pid.

E2E_URI=qemu:///system
E2E_BALLOON_PATH=/machine/peripheral/balloon0
E2E_LIBVIRTD_PIDFILE=/var/run/libvirtd.pid
E2E_VIRTLOGD_PIDFILE=/var/run/virtlogd.pid
E2E_QEMU_CONF=/etc/libvirt/qemu.conf

# Seconds since the epoch with milliseconds, for timings and for comparing with collectd's times.
e2e_now() {
    date +%s.%3N
}

e2e_log() {
    printf '[%s] %s\n' "$(e2e_now)" "$*" >&2
}

e2e_fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

e2e_virsh() {
    virsh -q -c "$E2E_URI" "$@"
}

# Escapes a string for XML text and attribute values.
e2e_xml_escape() {
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
                           -e "s/'/\\&apos;/g" -e 's/"/\&quot;/g'
}

# True when pidfile $1 names a live process called $2.
e2e_pidfile_alive() {
    [ -f "$1" ] || return 1
    _pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$_pid" ] && [ -r "/proc/$_pid/comm" ] && [ "$(cat "/proc/$_pid/comm")" = "$2" ]
}

# Waits until libvirtd answers on qemu:///system, at most $1 seconds.
e2e_wait_libvirtd() {
    _deadline=$(( $(date +%s) + $1 ))
    while [ "$(date +%s)" -lt "$_deadline" ]; do
        virsh -q -c "$E2E_URI" uri >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

# The host configuration libvirtd's QEMU driver needs here (DESIGN.md, "Running the real stack here"):
# its default user and group must exist, and guests run as root with no security driver (no
# dynamic ownership: the kernel and initramfs stay ours). An existing qemu.conf is not touched.
e2e_prepare_host() {
    getent group kvm >/dev/null || groupadd -r kvm || return 1
    getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu || return 1
    getent passwd libvirt-qemu >/dev/null \
        || useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu || return 1
    mkdir -p /var/log/libvirt /var/run/libvirt /var/log/libvirt/qemu
    if [ ! -f "$E2E_QEMU_CONF" ]; then
        cat >"$E2E_QEMU_CONF" <<'EOF'
# Written by collectd-balloon's tests/e2e (DESIGN.md, "Running the real stack here"): guests run as
# root with no security driver, on a machine without systemd or KVM.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
EOF
    elif ! grep -q '^[[:space:]]*security_driver[[:space:]]*=[[:space:]]*"none"' "$E2E_QEMU_CONF"; then
        e2e_log "note: $E2E_QEMU_CONF exists and does not set security_driver = \"none\"; using it as it is."
    fi
}

# Starts virtlogd and libvirtd unless they run already; writes E2E_WORK/started-* for those it started.
e2e_start_libvirt() {
    if ! e2e_pidfile_alive "$E2E_VIRTLOGD_PIDFILE" virtlogd; then
        virtlogd -d || return 1
        _i=0
        while ! e2e_pidfile_alive "$E2E_VIRTLOGD_PIDFILE" virtlogd && [ $_i -lt 50 ]; do
            sleep 0.1; _i=$((_i + 1))
        done
        cat "$E2E_VIRTLOGD_PIDFILE" >"$E2E_WORK/started-virtlogd"
        e2e_log "started virtlogd (pid $(cat "$E2E_WORK/started-virtlogd"))"
    fi
    if e2e_pidfile_alive "$E2E_LIBVIRTD_PIDFILE" libvirtd; then
        e2e_wait_libvirtd 30 || return 1
        return 0
    fi
    e2e_run_libvirtd || return 1
    cp "$E2E_WORK/libvirtd.pid" "$E2E_WORK/started-libvirtd"
    e2e_log "started libvirtd (pid $(cat "$E2E_WORK/started-libvirtd"))"
}

# Runs `libvirtd -d` and waits until it answers; its pid goes to E2E_WORK/libvirtd.pid. Its stderr
# (noise about dnsmasq, D-Bus, DMI and /dev/kvm on this machine) goes to E2E_WORK/libvirtd.err.
e2e_run_libvirtd() {
    libvirtd -d 2>>"$E2E_WORK/libvirtd.err" || return 1
    e2e_wait_libvirtd 30 || { e2e_log "libvirtd did not answer within 30 s"; return 1; }
    e2e_pidfile_alive "$E2E_LIBVIRTD_PIDFILE" libvirtd || return 1
    cat "$E2E_LIBVIRTD_PIDFILE" >"$E2E_WORK/libvirtd.pid"
}

# Stops libvirtd (whoever started it) and starts it again: the "libvirtd restarted mid-run" event.
# Running domains survive it (QEMU keeps running; libvirtd reconnects to their monitors).
e2e_restart_libvirtd() {
    _pid=$(cat "$E2E_LIBVIRTD_PIDFILE") || return 1
    kill -TERM "$_pid" || return 1
    _i=0
    while kill -0 "$_pid" 2>/dev/null; do
        [ $_i -lt 150 ] || { e2e_log "libvirtd (pid $_pid) did not exit within 15 s"; return 1; }
        sleep 0.1; _i=$((_i + 1))
    done
    e2e_run_libvirtd || return 1
    # If we had started the old one, the new one is ours to stop too.
    [ -f "$E2E_WORK/started-libvirtd" ] && cp "$E2E_WORK/libvirtd.pid" "$E2E_WORK/started-libvirtd"
    return 0
}

# Stops a process started by this run, by pid: TERM, then KILL after $2 seconds.
e2e_stop_pid() {
    _pid=$1
    kill -TERM "$_pid" 2>/dev/null || return 0
    _i=0
    while kill -0 "$_pid" 2>/dev/null; do
        if [ $_i -ge $(( $2 * 10 )) ]; then
            kill -KILL "$_pid" 2>/dev/null
            break
        fi
        sleep 0.1; _i=$((_i + 1))
    done
}

# The guest kernel (cached) and the two initramfs images (rebuilt each run: cheap, never stale).
e2e_prepare_images() {
    _kdir=$(sh "$E2E_SRCDIR/tests/e2e/fetch-kernel.sh") || return 1
    E2E_KERNEL="$_kdir/vmlinuz"
    sh "$E2E_SRCDIR/tests/e2e/mkinitramfs.sh" "$_kdir" "$E2E_WORK/with-balloon.cpio" with-balloon || return 1
    sh "$E2E_SRCDIR/tests/e2e/mkinitramfs.sh" "$_kdir" "$E2E_WORK/without-balloon.cpio" without-balloon \
        || return 1
}

# e2e_define SLUG NAME INITRD BALLOON_XML [CMDLINE_EXTRA]
# Writes E2E_WORK/SLUG.xml for domain NAME. SLUG is a short file-name-safe handle for the guest's
# files (SLUG.xml, SLUG.sock its console, SLUG.console its console log); NAME may hold anything
# libvirt accepts. INITRD: with-balloon or without-balloon.
e2e_define() {
    _slug=$1
    printf '%s\n' "$2" >"$E2E_WORK/$_slug.name"
    E2E_T_NAME=$(e2e_xml_escape "$2") \
    E2E_T_MEMORY_MIB=${E2E_GUEST_MIB:-128} \
    E2E_T_KERNEL=$(e2e_xml_escape "$E2E_KERNEL") \
    E2E_T_INITRD=$(e2e_xml_escape "$E2E_WORK/$3.cpio") \
    E2E_T_CMDLINE=$(e2e_xml_escape "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off ${5:-}") \
    E2E_T_EMULATOR=$(command -v qemu-system-x86_64) \
    E2E_T_SERIAL_SOCKET=$(e2e_xml_escape "$E2E_WORK/$_slug.sock") \
    E2E_T_CONSOLE_LOG=$(e2e_xml_escape "$E2E_WORK/$_slug.console") \
    E2E_T_BALLOON=$4 \
    awk '{
        out = ""; s = $0
        while (match(s, /@[A-Z_]+@/)) {
            key = "E2E_T_" substr(s, RSTART + 1, RLENGTH - 2)
            if (!(key in ENVIRON)) { print "domain.xml.in: no value for " key > "/dev/stderr"; exit 1 }
            out = out substr(s, 1, RSTART - 1) ENVIRON[key]
            s = substr(s, RSTART + RLENGTH)
        }
        print out s
    }' "$E2E_SRCDIR/tests/e2e/domain.xml.in" >"$E2E_WORK/$_slug.xml"
}

e2e_name() {
    cat "$E2E_WORK/$1.name"
}

# Starts the transient domain SLUG (already defined). A leftover domain of the same name from an
# earlier run that died without cleaning up (the run lock makes it ours) is destroyed first.
e2e_start() {
    _name=$(e2e_name "$1")
    if e2e_virsh domid "$_name" >/dev/null 2>&1; then
        e2e_log "destroying leftover domain '$_name'"
        e2e_virsh destroy "$_name" >/dev/null 2>&1
    fi
    rm -f "$E2E_WORK/$1.console"
    # Recorded before the start, so that cleanup destroys it even if virsh dies half-way.
    grep -qxF "$_name" "$E2E_WORK/domains" 2>/dev/null || printf '%s\n' "$_name" >>"$E2E_WORK/domains"
    e2e_virsh create "$E2E_WORK/$1.xml" >/dev/null || return 1
    date +%s.%3N >"$E2E_WORK/$1.started"
}

# e2e_wait_console SLUG PATTERN SECONDS: waits for a line matching the fixed string PATTERN on the
# guest's console.
e2e_wait_console() {
    _deadline=$(( $(date +%s) + $3 ))
    while [ "$(date +%s)" -lt "$_deadline" ]; do
        grep -qF "$2" "$E2E_WORK/$1.console" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# Types a command line on the guest's serial console (guest-init.sh reads it).
e2e_guest_command() {
    printf '%s\n' "$2" | socat -t 1 - "UNIX-CONNECT:$E2E_WORK/$1.sock"
}

# e2e_qmp NAME JSON: the reply of virsh qemu-monitor-command, on one line.
e2e_qmp() {
    e2e_virsh qemu-monitor-command "$1" "$2"
}

# The balloon's guest-stats-polling-interval of domain NAME, read with qom-get (empty on error).
e2e_interval() {
    e2e_qmp "$1" "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"$E2E_BALLOON_PATH\",\"property\":\"guest-stats-polling-interval\"}}" \
        | sed -n 's/.*"return":[[:space:]]*\([0-9-][0-9]*\).*/\1/p'
}

e2e_set_interval() {
    e2e_qmp "$1" "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"$E2E_BALLOON_PATH\",\"property\":\"guest-stats-polling-interval\",\"value\":$2}}" \
        | grep -q '"return":{}'
}

# One `virsh dommemstat NAME` as a single line "key value key value ...".
e2e_dommemstat() {
    e2e_virsh dommemstat "$1" 2>/dev/null | awk 'NF == 2 { printf "%s %s ", $1, $2 } END { print "" }'
}

# e2e_memstat_field LINE KEY: KEY's value in a line from e2e_dommemstat (empty when absent).
e2e_memstat_field() {
    printf '%s\n' "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i += 2) if ($i == k) print $(i + 1) }'
}

# Destroys every domain this run started (by name) and stops the daemons it started (by pid).
e2e_cleanup_stack() {
    if [ -f "$E2E_WORK/domains" ]; then
        while IFS= read -r _name; do
            if virsh -q -c "$E2E_URI" domid "$_name" >/dev/null 2>&1; then
                virsh -q -c "$E2E_URI" destroy "$_name" >/dev/null 2>&1 \
                    || e2e_log "could not destroy domain '$_name'"
            fi
        done <"$E2E_WORK/domains"
    fi
    if [ -f "$E2E_WORK/started-libvirtd" ]; then
        e2e_stop_pid "$(cat "$E2E_WORK/started-libvirtd")" 15
        rm -f "$E2E_WORK/started-libvirtd"
    fi
    if [ -f "$E2E_WORK/started-virtlogd" ]; then
        e2e_stop_pid "$(cat "$E2E_WORK/started-virtlogd")" 5
        rm -f "$E2E_WORK/started-virtlogd"
    fi
}
