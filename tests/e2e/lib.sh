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
# Daemons never get file descriptor 9, run.sh's lock: a daemon that outlives the run would hold it.
e2e_start_libvirt() {
    if ! e2e_pidfile_alive "$E2E_VIRTLOGD_PIDFILE" virtlogd; then
        virtlogd -d 9>&- || return 1
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
# (noise about dnsmasq, D-Bus, DMI and /dev/kvm on this machine) goes to E2E_WORK/libvirtd.err. If the
# monitor log was on, it is switched on in the new daemon at once (not with LIBVIRT_LOG_OUTPUTS in its
# environment: libvirtd hands that on to every QEMU it starts, for good).
e2e_run_libvirtd() {
    env -u LIBVIRT_LOG_FILTERS -u LIBVIRT_LOG_OUTPUTS libvirtd -d 9>&- 2>>"$E2E_WORK/libvirtd.err" || return 1
    e2e_wait_libvirtd 30 || { e2e_log "libvirtd did not answer within 30 s"; return 1; }
    e2e_pidfile_alive "$E2E_LIBVIRTD_PIDFILE" libvirtd || return 1
    cat "$E2E_LIBVIRTD_PIDFILE" >"$E2E_WORK/libvirtd.pid"
    if [ -f "$E2E_WORK/log-outputs.on" ]; then
        e2e_monitor_log_on || return 1
    fi
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
    # The PVH ELF kernel boots seconds faster under TCG (fetch-kernel.sh); E2E_NO_PVH=1 to compare.
    [ -f "$_kdir/vmlinux-pvh" ] && [ "${E2E_NO_PVH:-0}" != 1 ] && E2E_KERNEL="$_kdir/vmlinux-pvh"
    sh "$E2E_SRCDIR/tests/e2e/mkinitramfs.sh" "$_kdir" "$E2E_WORK/with-balloon.cpio" with-balloon || return 1
    sh "$E2E_SRCDIR/tests/e2e/mkinitramfs.sh" "$_kdir" "$E2E_WORK/without-balloon.cpio" without-balloon \
        || return 1
}

# e2e_define SLUG NAME INITRD BALLOON_XML [CMDLINE_EXTRA]
# Writes E2E_WORK/SLUG.xml for domain NAME. SLUG is a short file-name-safe handle for the guest's
# files (SLUG.xml, SLUG.sock its console, SLUG.console its console log); NAME may hold anything
# libvirt accepts. INITRD: with-balloon or without-balloon.
# Kernel options: no_timer_check, because under TCG on a loaded host the IO-APIC timer check fails
# and the kernel panics ("IO-APIC + timer doesn't work!"); panic=-1 with on_reboot=destroy turns any
# panic into a domain that is gone, which e2e_wait_console notices at once.
e2e_define() {
    _slug=$1
    printf '%s\n' "$2" >"$E2E_WORK/$_slug.name"
    E2E_T_NAME=$(e2e_xml_escape "$2") \
    E2E_T_MEMORY_MIB=${E2E_GUEST_MIB:-128} \
    E2E_T_KERNEL=$(e2e_xml_escape "$E2E_KERNEL") \
    E2E_T_INITRD=$(e2e_xml_escape "$E2E_WORK/$3.cpio") \
    E2E_T_CMDLINE=$(e2e_xml_escape "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check mitigations=off ${5:-}") \
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
# guest's console. Returns 1 after SECONDS, or at once if the guest panicked or its domain is gone.
e2e_wait_console() {
    _deadline=$(( $(date +%s) + $3 ))
    _n=0
    while [ "$(date +%s)" -lt "$_deadline" ]; do
        grep -qF "$2" "$E2E_WORK/$1.console" 2>/dev/null && return 0
        grep -qF "Kernel panic" "$E2E_WORK/$1.console" 2>/dev/null && return 1
        _n=$((_n + 1))
        if [ $((_n % 10)) = 0 ] && ! e2e_virsh domid "$(e2e_name "$1")" >/dev/null 2>&1; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# e2e_wait_boot SLUG: waits for the guest's "e2e: ready"; if it panicked or died, shows why and boots
# it once more (a guest kernel under TCG on an overloaded host is not fully deterministic).
e2e_wait_boot() {
    e2e_wait_console "$1" "e2e: ready" 150 && return 0
    e2e_log "guest '$(e2e_name "$1")' did not boot; its console ends with:"
    tail -n 3 "$E2E_WORK/$1.console" >&2 2>/dev/null
    e2e_log "booting '$(e2e_name "$1")' once more"
    cp "$E2E_WORK/$1.console" "$E2E_WORK/$1.console.failed" 2>/dev/null
    e2e_start "$1" || return 1
    e2e_wait_console "$1" "e2e: ready" 150
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

# --- QEMU monitor traffic ----------------------------------------------------------------------------
# libvirtd's own log of the QMP commands it sends (QEMU_MONITOR_SEND_MSG lines) is the ground truth
# of what the plugin asked QEMU to do, domain by domain. It is switched on at run time with virt-admin
# (the daemon's settings are saved and put back by e2e_monitor_log_off). The file is not in E2E_WORK:
# libvirtd passes its log outputs on to the processes it starts, and one of them that finds the file's
# directory gone fails (QEMU would not start) if the settings were ever left behind. It is emptied at
# each run (the run lock makes it ours) and copied into E2E_WORK at the end.
E2E_MONITOR_LOG=/var/log/libvirt/collectd-balloon-e2e-monitor.log

e2e_monitor_log_on() {
    if [ ! -f "$E2E_WORK/log-outputs.on" ]; then
        : >"$E2E_MONITOR_LOG" || return 1
        _f=$(virt-admin daemon-log-filters | sed -n 's/^ *Logging filters: *//p') || return 1
        _o=$(virt-admin daemon-log-outputs | sed -n 's/^ *Logging outputs: *//p') || return 1
        printf '%s\n' "$_f" >"$E2E_WORK/log-filters.saved"
        printf '%s\n' "$_o" >"$E2E_WORK/log-outputs.saved"
        printf '%s\n' "${_f:+$_f }2:qemu.qemu_monitor" >"$E2E_WORK/log-filters.on"
        printf '%s\n' "${_o:+$_o }2:file:$E2E_MONITOR_LOG" >"$E2E_WORK/log-outputs.on"
    fi
    virt-admin -q daemon-log-filters "$(cat "$E2E_WORK/log-filters.on")" >/dev/null || return 1
    virt-admin -q daemon-log-outputs "$(cat "$E2E_WORK/log-outputs.on")" >/dev/null
}

e2e_monitor_log_off() {
    [ -f "$E2E_WORK/log-outputs.saved" ] || return 0
    virt-admin -q daemon-log-filters "$(cat "$E2E_WORK/log-filters.saved")" >/dev/null 2>&1
    virt-admin -q daemon-log-outputs "$(cat "$E2E_WORK/log-outputs.saved")" >/dev/null 2>&1
    rm -f "$E2E_WORK/log-outputs.saved" "$E2E_WORK/log-outputs.on"
    cp "$E2E_MONITOR_LOG" "$E2E_WORK/monitor.log" 2>/dev/null
    : >"$E2E_MONITOR_LOG"
}

# Lines in the monitor log so far (a position for e2e_monitor_commands).
e2e_monitor_lines() {
    wc -l <"$E2E_MONITOR_LOG" | tr -d ' '
}

# Sends a harmless command that names the guest (QEMU answers DeviceNotFound), so that the monitor the
# log shows it on can be tied to the guest: libvirt logs monitors by address, not by domain.
e2e_monitor_mark() {
    e2e_qmp "$(e2e_name "$1")" "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/e2e-marker/$1\"}}" \
        >/dev/null 2>&1
}

# e2e_monitor_commands [LAST_LINE]: every command sent to a marked monitor, up to LAST_LINE of the log,
# as "SLUG<TAB>LINE<TAB>JSON". A monitor address is reused after QEMU_MONITOR_CLOSE, so each address is
# split into lives at QEMU_MONITOR_NEW; a life's commands belong to the guest marked in that life.
e2e_monitor_commands() {
    _mlog=$E2E_MONITOR_LOG
    [ -f "$E2E_WORK/monitor.log" ] && [ ! -f "$E2E_WORK/log-outputs.on" ] && _mlog=$E2E_WORK/monitor.log
    [ -f "$_mlog" ] || return 0
    awk -v last="${1:-0}" '
        last > 0 && NR > last { exit }
        {
            if (!match($0, /mon=0x[0-9a-f]+/)) next
            mon = substr($0, RSTART + 4, RLENGTH - 4)
        }
        /QEMU_MONITOR_NEW:/ { life[mon]++; next }
        /QEMU_MONITOR_SEND_MSG:/ {
            id = mon "#" (life[mon] + 0)
            msg = $0; sub(/.* msg=/, "", msg); sub(/\r$/, "", msg)
            if (match(msg, /"\/e2e-marker\/[a-z]+"/)) slug[id] = substr(msg, RSTART + 13, RLENGTH - 14)
            n++; cmd_id[n] = id; cmd_line[n] = NR; cmd_msg[n] = msg
        }
        END {
            for (i = 1; i <= n; i++)
                if (cmd_id[i] in slug) printf "%s\t%d\t%s\n", slug[cmd_id[i]], cmd_line[i], cmd_msg[i]
        }' "$_mlog"
}

# --- collectd's csv files ----------------------------------------------------------------------------
# e2e_csv_rows DIR TYPE: the data rows of the csv files DIR/TYPE-YYYY-MM-DD ("epoch,value..."), oldest
# first (a run across midnight has two files).
e2e_csv_rows() {
    for _f in "$1/$2"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
        [ -f "$_f" ] && grep -v '^epoch' "$_f"
    done | sort -t, -k1,1n
}

# e2e_balloon_table DIR: our plugin's values for one domain as "FIELD EPOCH VALUE" lines, FIELD being
# the dommemstat name the value must match: unused, available, usable, disk_caches (bytes here, KiB in
# dommemstat), swap_in, swap_out (bytes / KiB), minor_fault, major_fault, last_update.
e2e_balloon_table() {
    for _p in memory-free:unused memory-total:available memory-available:usable \
              memory-disk_caches:disk_caches swap_io-in:swap_in swap_io-out:swap_out \
              timestamp-last_update:last_update; do
        e2e_csv_rows "$1" "${_p%%:*}" | awk -F, -v k="${_p#*:}" '{ print k, $1, $2 }'
    done
    e2e_csv_rows "$1" vmpage_faults | awk -F, '{ print "minor_fault", $1, $2; print "major_fault", $1, $3 }'
}

# e2e_virt_table DIR: collectd's virt plugin's memory values, named and scaled alike (its epoch is the
# time it read them, not last_update).
e2e_virt_table() {
    for _p in memory-unused:unused memory-available:available memory-usable:usable \
              memory-disk_caches:disk_caches; do
        e2e_csv_rows "$1" "${_p%%:*}" | awk -F, -v k="${_p#*:}" '{ print k, $1, $2 }'
    done
}

# e2e_memstat_sampler NAME OUT: appends `virsh dommemstat NAME` to OUT as "TIME key value ..." every
# half second until the file OUT.stop exists.
e2e_memstat_sampler() {
    while [ ! -f "$2.stop" ]; do
        _line=$(e2e_dommemstat "$1")
        [ -n "$_line" ] && printf '%s %s\n' "$(e2e_now)" "$_line" >>"$2"
        sleep 0.5
    done
}

# Destroys every domain this run started (by name) and stops the daemons it started (by pid).
e2e_cleanup_stack() {
    e2e_virsh uri >/dev/null 2>&1 && e2e_monitor_log_off
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
