# tests/e2e/lib.sh: the real stack for the end-to-end test, sourced by tests/e2e/run.sh (POSIX sh).
# libvirtd + virtlogd started only when not already running (and then stopped again), transient TCG
# domains named e2e-* built from domain.xml.in, their serial consoles, QMP through virsh.
#
# The caller sets E2E_WORK (a fresh directory for this run) before calling anything here. Everything
# this file starts is written down under E2E_WORK so that e2e_cleanup stops exactly that and nothing
# else: domains by name, daemons by pid.
#
# This is the system's stack (libvirt 9.0, QEMU 7.2). modern-lib.sh, sourced after this file, puts
# the modern stack in its place: it sets the variables below and replaces the functions marked
# "(a stack function)". E2E_ROOT is the directory the daemons see as /, empty here; the run's work
# directory has the same path for them as for the test.

E2E_ROOT=
E2E_URI=qemu:///system
E2E_ADMIN_URI= # virt-admin's default: this machine's libvirtd
E2E_EMULATOR=  # the domain's <emulator>: empty for the qemu-system-x86_64 on the PATH
E2E_BALLOON_PATH=/machine/peripheral/balloon0
E2E_LIBVIRTD_PIDFILE=/var/run/libvirtd.pid
E2E_VIRTLOGD_PIDFILE=/var/run/virtlogd.pid
E2E_QEMU_CONF=/etc/libvirt/qemu.conf

# --- one run --------------------------------------------------------------------------------------
E2E_LOCK=/run/lock/collectd-balloon-e2e.lock

# e2e_begin: what an e2e test does first once it knows it will run: the packages, the run lock (one e2e
# run at a time per machine: the domain names are fixed, one run restarts libvirtd, and they all boot
# TCG guests; every daemon started after this gets 9>&-, or it would keep the lock after the run), a
# fresh work directory in E2E_WORK, and the start of e2e_elapsed.
e2e_begin() {
    "$E2E_SRCDIR/scripts/install-deps.sh" >&2 || e2e_fail "scripts/install-deps.sh failed."
    mkdir -p /run/lock
    exec 9>"$E2E_LOCK"
    flock -w 600 9 || e2e_fail "another e2e run has held $E2E_LOCK for 10 minutes."
    E2E_WORK=$(mktemp -d /tmp/e2e-run.XXXXXX) || e2e_fail "mktemp failed."
    chmod 0755 "$E2E_WORK"
    E2E_T_BEGIN=$(e2e_now)
}

# Seconds since e2e_begin, with a tenth.
e2e_elapsed() {
    awk -v a="$E2E_T_BEGIN" -v b="$(e2e_now)" 'BEGIN { printf "%.1f", b - a }'
}

# e2e_end STATUS COLLECTD_PID SAMPLER_PIDS: the end of a run, on every exit path: the samplers and
# collectd stopped, then the work directory removed if the run passed (STATUS 0) and E2E_KEEP is not
# 1, else kept and named.
e2e_end() {
    touch "$E2E_WORK/samplers.stop"
    for _p in $3; do kill "$_p" 2>/dev/null; done
    [ -n "$2" ] && e2e_stop_pid "$2" 10
    e2e_cleanup_stack
    if [ "$1" = 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then
        rm -rf "$E2E_WORK"
    else
        echo "e2e: work directory kept: $E2E_WORK" >&2
    fi
}

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

e2e_virt_admin() {
    if [ -n "$E2E_ADMIN_URI" ]; then virt-admin -c "$E2E_ADMIN_URI" "$@"; else virt-admin "$@"; fi
}

# The daemons' view of a path of this machine's (one under E2E_ROOT, or under E2E_WORK).
e2e_daemon_path() {
    case "$1" in
        "$E2E_ROOT"/*) [ -n "$E2E_ROOT" ] && printf '%s\n' "${1#"$E2E_ROOT"}" && return 0 ;;
    esac
    printf '%s\n' "$1"
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
# (a stack function)
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
# (a stack function)
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

# `libvirtd -d` (a stack function). Not with LIBVIRT_LOG_OUTPUTS in its environment: libvirtd hands
# that on to every QEMU it starts, for good.
e2e_exec_libvirtd() {
    env -u LIBVIRT_LOG_FILTERS -u LIBVIRT_LOG_OUTPUTS libvirtd -d 9>&-
}

# Runs `libvirtd -d` and waits until it answers; its pid goes to E2E_WORK/libvirtd.pid. Its stderr
# (noise about dnsmasq, D-Bus, DMI and /dev/kvm on this machine) goes to E2E_WORK/libvirtd.err. If the
# monitor log was on, it is switched on in the new daemon at once.
e2e_run_libvirtd() {
    e2e_exec_libvirtd 2>>"$E2E_WORK/libvirtd.err" || return 1
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

# The directory with the guest kernel and its modules, fetched once (a stack function).
e2e_fetch_kernel() {
    sh "$E2E_SRCDIR/tests/e2e/fetch-kernel.sh"
}

# The guest kernel (cached) and the two initramfs images (rebuilt each run: cheap, never stale).
e2e_prepare_images() {
    _kdir=$(e2e_fetch_kernel) || return 1
    E2E_KERNEL="$_kdir/vmlinuz"
    # The PVH ELF kernel boots seconds faster under TCG (fetch-kernel.sh); E2E_NO_PVH=1 to compare.
    [ -f "$_kdir/vmlinux-pvh" ] && [ "${E2E_NO_PVH:-0}" != 1 ] && E2E_KERNEL="$_kdir/vmlinux-pvh"
    sh "$E2E_SRCDIR/tests/e2e/mkinitramfs.sh" "$_kdir" "$E2E_WORK/with-balloon.cpio" with-balloon || return 1
    sh "$E2E_SRCDIR/tests/e2e/mkinitramfs.sh" "$_kdir" "$E2E_WORK/without-balloon.cpio" without-balloon \
        || return 1
}

# e2e_define SLUG NAME INITRD BALLOON_XML [CMDLINE_EXTRA [MEMORY_MIB]]
# Writes E2E_WORK/SLUG.xml for domain NAME. SLUG is a short file-name-safe handle for the guest's
# files (SLUG.xml, SLUG.sock its console, SLUG.console its console log); NAME may hold anything
# libvirt accepts. INITRD: with-balloon or without-balloon. MEMORY_MIB: default E2E_GUEST_MIB or 128.
# Kernel options: no_timer_check, because under TCG on a loaded host the IO-APIC timer check fails
# and the kernel panics ("IO-APIC + timer doesn't work!"); panic=-1 with on_reboot=destroy turns any
# panic into a domain that is gone, which e2e_wait_console notices at once.
e2e_define() {
    _slug=$1
    printf '%s\n' "$2" >"$E2E_WORK/$_slug.name"
    E2E_T_NAME=$(e2e_xml_escape "$2") \
    E2E_T_MEMORY_MIB=${6:-${E2E_GUEST_MIB:-128}} \
    E2E_T_KERNEL=$(e2e_xml_escape "$(e2e_daemon_path "$E2E_KERNEL")") \
    E2E_T_INITRD=$(e2e_xml_escape "$E2E_WORK/$3.cpio") \
    E2E_T_CMDLINE=$(e2e_xml_escape "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check mitigations=off ${5:-}") \
    E2E_T_EMULATOR=${E2E_EMULATOR:-$(command -v qemu-system-x86_64)} \
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

# True while guest SLUG's domain exists (a stack function: modern-qmp.sh's guests have no domain).
e2e_guest_alive() {
    e2e_virsh domid "$(e2e_name "$1")" >/dev/null 2>&1
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
        if [ $((_n % 10)) = 0 ] && ! e2e_guest_alive "$1"; then
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
# each run (the run lock makes it ours) and copied into E2E_WORK at the end. E2E_MONITOR_LOG is the
# daemon's path for it; this machine's is under E2E_ROOT.
E2E_MONITOR_LOG=/var/log/libvirt/collectd-balloon-e2e-monitor.log

e2e_monitor_log_file() {
    printf '%s\n' "$E2E_ROOT$E2E_MONITOR_LOG"
}

e2e_monitor_log_on() {
    if [ ! -f "$E2E_WORK/log-outputs.on" ]; then
        : >"$(e2e_monitor_log_file)" || return 1
        _f=$(e2e_virt_admin daemon-log-filters | sed -n 's/^ *Logging filters: *//p') || return 1
        _o=$(e2e_virt_admin daemon-log-outputs | sed -n 's/^ *Logging outputs: *//p') || return 1
        printf '%s\n' "$_f" >"$E2E_WORK/log-filters.saved"
        printf '%s\n' "$_o" >"$E2E_WORK/log-outputs.saved"
        printf '%s\n' "${_f:+$_f }2:qemu.qemu_monitor" >"$E2E_WORK/log-filters.on"
        printf '%s\n' "${_o:+$_o }2:file:$E2E_MONITOR_LOG" >"$E2E_WORK/log-outputs.on"
    fi
    e2e_virt_admin -q daemon-log-filters "$(cat "$E2E_WORK/log-filters.on")" >/dev/null || return 1
    e2e_virt_admin -q daemon-log-outputs "$(cat "$E2E_WORK/log-outputs.on")" >/dev/null
}

e2e_monitor_log_off() {
    [ -f "$E2E_WORK/log-outputs.saved" ] || return 0
    e2e_virt_admin -q daemon-log-filters "$(cat "$E2E_WORK/log-filters.saved")" >/dev/null 2>&1
    e2e_virt_admin -q daemon-log-outputs "$(cat "$E2E_WORK/log-outputs.saved")" >/dev/null 2>&1
    rm -f "$E2E_WORK/log-outputs.saved" "$E2E_WORK/log-outputs.on"
    cp "$(e2e_monitor_log_file)" "$E2E_WORK/monitor.log" 2>/dev/null
    : >"$(e2e_monitor_log_file)"
}

# Lines in the monitor log so far (a position for e2e_monitor_commands).
e2e_monitor_lines() {
    wc -l <"$(e2e_monitor_log_file)" | tr -d ' '
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
    _mlog=$(e2e_monitor_log_file)
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

# --- collectd -------------------------------------------------------------------------------------
# e2e_start_collectd TEMPLATE PLUGIN_SO INTERVAL STALE_AFTER: the collectd daemon in the foreground, in
# the background of this shell, with our plugin PLUGIN_SO and the configuration tests/e2e/TEMPLATE
# (@WORK@, @INTERVAL@, @STALE_AFTER@, @URI@ filled in); its pid in E2E_WORK/collectd.started, its
# output in E2E_WORK/collectd.out.
e2e_start_collectd() {
    mkdir -p "$E2E_WORK/plugins" "$E2E_WORK/collectd" "$E2E_WORK/csv" || return 1
    for _f in /usr/lib/collectd/*.so; do
        # collectd loads only regular files from PluginDir, not symbolic links.
        ln -f "$_f" "$E2E_WORK/plugins/" 2>/dev/null || cp "$_f" "$E2E_WORK/plugins/" || return 1
    done
    cp "$2" "$E2E_WORK/plugins/balloon.so" || return 1
    sed -e "s|@WORK@|$E2E_WORK|g" -e "s|@INTERVAL@|$3|g" -e "s|@STALE_AFTER@|$4|g" \
        -e "s|@URI@|$E2E_URI|g" "$E2E_SRCDIR/tests/e2e/$1" >"$E2E_WORK/collectd.conf" || return 1
    # A plugin built with AddressSanitizer needs its runtime loaded first in the (uninstrumented) daemon,
    # and libtirpc with it: ASan looks up the xdr_* functions it intercepts when it starts, and libvirt's
    # (from libtirpc, glibc has none) would otherwise be called through a null pointer.
    _asan_rt=$(ldd "$2" 2>/dev/null | awk '/libasan/ { print $3; exit }')
    _tirpc=$(ldd "$2" 2>/dev/null | awk '/libtirpc/ { print $3; exit }')
    if [ -n "$_asan_rt" ]; then
        LD_PRELOAD="$_asan_rt${_tirpc:+ $_tirpc}" ASAN_OPTIONS=detect_leaks=0 collectd -f -C "$E2E_WORK/collectd.conf" \
            >"$E2E_WORK/collectd.out" 2>&1 9>&- &
    else
        collectd -f -C "$E2E_WORK/collectd.conf" >"$E2E_WORK/collectd.out" 2>&1 9>&- &
    fi
    echo $! >"$E2E_WORK/collectd.started"
}

# e2e_wait_until SECONDS COMMAND...: runs COMMAND every 0.25 s until it succeeds; false after SECONDS.
e2e_wait_until() {
    _deadline=$(awk -v n="$(e2e_now)" -v s="$1" 'BEGIN { printf "%.3f", n + s }')
    shift
    while :; do
        "$@" && return 0
        awk -v n="$(e2e_now)" -v d="$_deadline" 'BEGIN { exit !(n >= d) }' && return 1
        sleep 0.25
    done
}

# e2e_check DESCRIPTION COMMAND...: runs an assertion, reports it, counts failures in E2E_FAILURES.
E2E_FAILURES=0
e2e_check() {
    _what=$1
    shift
    if _out=$("$@" 2>&1); then
        echo "ok - $_what${_out:+: $_out}"
    else
        echo "not ok - $_what${_out:+: $_out}"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
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

# e2e_advances_at_interval DIR T0 T1 I: the last_updates the plugin wrote (csv files in DIR) between
# times T0 and T1 are I apart (median), never closer than I-1 (QEMU's timer runs a little slower than
# I, and last-update is whole seconds) nor further than 3I (a read that collectd ran late on a loaded
# host may miss one), and there are at least 5.
e2e_advances_at_interval() {
    e2e_csv_rows "$1" timestamp-last_update | awk -F, -v t0="$2" -v t1="$3" '$1 >= t0 && $1 <= t1 { print int($1) }' \
        | sort -n -u | awk -v I="$4" '
        { if (NR > 1) d[NR - 1] = $1 - prev; prev = $1 }
        END {
            n = NR - 1
            if (n < 4) { printf "only %d last_updates\n", NR; exit 1 }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (d[j] < d[i]) { x = d[i]; d[i] = d[j]; d[j] = x }
            med = d[int((n + 1) / 2)]
            printf "%d steps, median %d s, min %d s, max %d s", n, med, d[1], d[n]
            if (med != I || d[1] < I - 1 || d[n] > 3 * I) { print " (interval " I " s)"; exit 1 }
            print ""
        }'
}

# e2e_no_repeats DIR: no last_update was written twice (a sample that did not advance is not
# dispatched).
e2e_no_repeats() {
    e2e_csv_rows "$1" memory-free | awk -F, '
        { if ($1 in seen) dup = dup " " $1; seen[$1] = 1; n++ }
        END { printf "%d rows", n; if (dup != "") { print "; repeated:" dup; exit 1 } print "" }'
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
# half second until the file E2E_WORK/samplers.stop exists.
e2e_memstat_sampler() {
    while [ ! -f "$E2E_WORK/samplers.stop" ]; do
        _line=$(e2e_dommemstat "$1")
        [ -n "$_line" ] && printf '%s %s\n' "$(e2e_now)" "$_line" >>"$2"
        sleep 0.5
    done
}

# Stops the daemons this run started, by pid.
e2e_stop_started_daemons() {
    if [ -f "$E2E_WORK/started-libvirtd" ]; then
        e2e_stop_pid "$(cat "$E2E_WORK/started-libvirtd")" 15
        rm -f "$E2E_WORK/started-libvirtd"
    fi
    if [ -f "$E2E_WORK/started-virtlogd" ]; then
        e2e_stop_pid "$(cat "$E2E_WORK/started-virtlogd")" 5
        rm -f "$E2E_WORK/started-virtlogd"
    fi
}

# What is left of the stack once its domains are gone (a stack function).
e2e_stop_daemons() {
    e2e_stop_started_daemons
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
    e2e_stop_daemons
}

# --- the 16 stats of QEMU 9.2+ and Linux 6.12+ ---------------------------------------------------------
E2E_QOM_GET_STATS="{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"$E2E_BALLOON_PATH\",\"property\":\"guest-stats\"}}"

# A guest-stats reply (stdin) as one line "LAST_UPDATE stat-NAME VALUE stat-NAME VALUE ...", in QEMU's
# order; nothing for a reply without last-update. Values stay as QEMU printed them (no arithmetic:
# 18446744073709551615, an unset stat, must stay that).
e2e_guest_stats_line() {
    tr -d '\r\n' | grep -oE '"(stat-[a-z-]+|last-update)": *[0-9]+' | tr -d '" ' | awk -F: '
        $1 == "last-update" { lu = $2; next }
        { s = s " " $1 " " $2 }
        END { if (lu != "") print lu s }'
}

# e2e_guest_stats_sampler QUERY NAME OUT: appends "TIME LAST_UPDATE stat-NAME VALUE ..." to OUT every
# half second until E2E_WORK/samplers.stop exists. QUERY NAME JSON prints QEMU's reply to JSON
# (e2e_qmp, or a QMP socket's).
e2e_guest_stats_sampler() {
    while [ ! -f "$E2E_WORK/samplers.stop" ]; do
        _line=$("$1" "$2" "$E2E_QOM_GET_STATS" 2>/dev/null | e2e_guest_stats_line)
        [ -n "$_line" ] && printf '%s %s\n' "$(e2e_now)" "$_line" >>"$3"
        sleep 0.5
    done
}

# Where the plugin writes each of QEMU's 16 stats: "STAT TYPE-INSTANCE COLUMN" (COLUMN 2 is the first
# value of a csv row), and the data source type the plugin documents for it (README, "Metrics").
e2e_stats16_map() {
    cat <<'MAP'
stat-free-memory memory-free 2 GAUGE
stat-total-memory memory-total 2 GAUGE
stat-available-memory memory-available 2 GAUGE
stat-disk-caches memory-disk_caches 2 GAUGE
stat-swap-in swap_io-in 2 DERIVE
stat-swap-out swap_io-out 2 DERIVE
stat-minor-faults vmpage_faults 2 DERIVE
stat-major-faults vmpage_faults 3 DERIVE
stat-htlb-pgalloc vmpage_action-htlb_pgalloc 2 DERIVE
stat-htlb-pgfail vmpage_action-htlb_pgfail 2 DERIVE
stat-oom-kills total_events-oom_kills 2 DERIVE
stat-alloc-stalls total_events-alloc_stalls 2 DERIVE
stat-async-scans vmpage_action-async_scans 2 DERIVE
stat-direct-scans vmpage_action-direct_scans 2 DERIVE
stat-async-reclaims vmpage_action-async_reclaims 2 DERIVE
stat-direct-reclaims vmpage_action-direct_reclaims 2 DERIVE
MAP
}

# e2e_stats16_table DIR: the plugin's values for one domain as "STAT EPOCH VALUE" lines, STAT being
# QEMU's name (last-update for timestamp-last_update).
e2e_stats16_table() {
    e2e_stats16_map | while read -r _stat _file _col _ds; do
        e2e_csv_rows "$1" "$_file" | awk -F, -v k="$_stat" -v c="$_col" '{ print k, $1, $c }'
    done
    e2e_csv_rows "$1" timestamp-last_update | awk -F, '{ print "last-update", $1, $2 }'
}

# e2e_stats16_match DIR SAMPLES MIN: for every last-update that both the plugin wrote (csv files in
# DIR) and a sampler saw (SAMPLES, from e2e_guest_stats_sampler), the plugin wrote all 16 stats, each
# equal to QEMU's, and QEMU had all 16 set; at least MIN such last-updates.
e2e_stats16_match() {
    e2e_stats16_table "$1" >"$1.stats16"
    # The first last-update the plugin wrote is not compared: the driver sends a buffer of its own when
    # it loads, and the answer to the plugin's first setting of the interval can come in the same
    # second, with other values and the same last-update (QEMU's is in whole seconds); the plugin
    # dispatches a last-update once (collectd takes one value per time), the sampler may see the other.
    _first=$(awk '$1 == "last-update" { print int($2) }' "$1.stats16" | sort -n | head -n 1)
    awk -v min="$3" -v first="${_first:-0}" '
        FNR == NR {
            if ($2 == 0) next
            n16 = 0
            for (i = 3; i < NF; i += 2) { q[$2, $i] = $(i + 1); n16++; if (!($i in names)) { names[$i] = 1; nn++ } }
            if (n16 != 16) { bad = bad sprintf(" QEMU shows %d stats at %s;", n16, $2) }
            have[$2] = 1
            next
        }
        {
            stat = $1; epoch = $2; value = $3; L = int(epoch)
            if (epoch + 0 != L) { bad = bad sprintf(" %s at %s is not stamped with a last-update;", stat, epoch); next }
            if (!(L in have) || L == first + 0) next
            if (stat == "last-update") { if (value + 0 != L) bad = bad sprintf(" last-update %s written at %d;", value, L); next }
            if (!((L, stat) in q)) { bad = bad sprintf(" QEMU has no %s at %d;", stat, L); next }
            if (q[L, stat] == "18446744073709551615") { bad = bad sprintf(" %s is unset in QEMU at %d;", stat, L); next }
            if (value + 0 != q[L, stat] + 0) bad = bad sprintf(" %s at %d: plugin %s, QEMU %s;", stat, L, value, q[L, stat])
            written[L, stat] = 1
            if (!(L in matched)) { matched[L] = 1; m++ }
            n++
            if (value + 0 != 0) nonzero++
        }
        END {
            for (L in matched) {
                c = 0
                for (s in names) if ((L, s) in written) c++
                if (c != 16) bad = bad sprintf(" the plugin wrote %d of the 16 stats at %d;", c, L)
            }
            printf "%d values (%d not 0) at %d last-updates compared, %d stat names from QEMU", n, nonzero, m, nn
            if (bad != "") { print ";" bad; exit 1 }
            if (m < min) { printf "; fewer than %d last-updates\n", min; exit 1 }
            print ""
        }' "$2" "$1.stats16"
}

# e2e_stats16_types DIR: each of the 16 stats is in the csv file of the type the plugin documents, with
# that type's data source names from collectd's types.db, and the data source type the README says.
e2e_stats16_types() {
    _bad=""
    _n=0
    while read -r _stat _file _col _ds; do
        _type=${_file%%-*}
        _f=$(ls "$1/$_file"-[0-9][0-9][0-9][0-9]-* 2>/dev/null | head -n 1)
        if [ -z "$_f" ]; then _bad="$_bad $_stat: no file $_file-*;"; continue; fi
        _db=$(awk -v t="$_type" '$1 == t { $1 = ""; print; exit }' /usr/share/collectd/types.db)
        _names=$(printf '%s\n' "$_db" | tr ',' '\n' | awk -F: 'NF { gsub(/ /, "", $1); printf ",%s", $1 }')
        _types=$(printf '%s\n' "$_db" | tr ',' '\n' | awk -F: 'NF { print $2 }' | sort -u)
        _head=$(head -n 1 "$_f")
        [ "$_head" = "epoch$_names" ] || _bad="$_bad $_stat: header '$_head' of $_file, types.db '$_type$_names';"
        [ "$_types" = "$_ds" ] || _bad="$_bad $_stat: $_type is '$_types' in types.db, the README says $_ds;"
        _n=$((_n + 1))
    done <<EOF2
$(e2e_stats16_map)
EOF2
    echo "$_n stats in files of their types${_bad:+;$_bad}"
    [ -z "$_bad" ] && [ "$_n" = 16 ]
}

# e2e_oom_event SLUG: types "oom" on the guest's console and waits (2 minutes at most) for its report
# (guest-init.sh), kept in E2E_WORK/SLUG.oom as "KILLED OOM_BEFORE OOM_AFTER STALLS_BEFORE STALLS_AFTER";
# the times it began and ended in SLUG.oom-start and SLUG.oom-end.
e2e_oom_event() {
    e2e_now >"$E2E_WORK/$1.oom-start"
    e2e_guest_command "$1" oom || return 1
    e2e_wait_console "$1" "e2e: oom done" 120 || return 1
    e2e_now >"$E2E_WORK/$1.oom-end"
    grep -F "e2e: oom done" "$E2E_WORK/$1.console" | tail -n 1 \
        | sed -n 's/.*killed \([0-9]*\) of [0-9]*, oom_kill \([0-9]*\) -> \([0-9]*\), allocstall \([0-9]*\) -> \([0-9]*\).*/\1 \2 \3 \4 \5/p' \
        >"$E2E_WORK/$1.oom"
    [ -s "$E2E_WORK/$1.oom" ]
}

# e2e_oom_counted DIR SLUG: the plugin's oom_kills went up by what the guest's kernel counted
# (oom_kill in /proc/vmstat, at least one kill of a process it started), from the value it had before
# the OOM, and its alloc_stalls went up.
e2e_oom_counted() {
    read -r _k _o0 _o1 _s0 _s1 <"$E2E_WORK/$2.oom" || { echo "no OOM report from the guest"; return 1; }
    _t0=$(cat "$E2E_WORK/$2.oom-start")
    _before=$(e2e_csv_rows "$1" total_events-oom_kills | awk -F, -v t="$_t0" '$1 <= t { v = $2 } END { print v }')
    _after=$(e2e_csv_rows "$1" total_events-oom_kills | awk -F, 'END { print $2 }')
    _sbefore=$(e2e_csv_rows "$1" total_events-alloc_stalls | awk -F, -v t="$_t0" '$1 <= t { v = $2 } END { print v }')
    _safter=$(e2e_csv_rows "$1" total_events-alloc_stalls | awk -F, 'END { print $2 }')
    echo "the guest: $_k of its 3 allocations killed, oom_kill $_o0 -> $_o1, allocstall $_s0 -> $_s1; the plugin: oom_kills ${_before:-none} -> ${_after:-none}, alloc_stalls ${_sbefore:-none} -> ${_safter:-none}"
    [ -n "$_before" ] && [ -n "$_after" ] && [ -n "$_sbefore" ] && [ -n "$_safter" ] || return 1
    [ "$_k" -ge 1 ] && [ "$((_o1 - _o0))" -ge "$_k" ] && [ "$_before" = "$_o0" ] \
        && [ "$((_after - _before))" = "$((_o1 - _o0))" ] && [ "$_safter" -gt "$_sbefore" ]
}
