# tests/fleet/lib.sh: hypervisors in network namespaces for the fleet test and benchmark (sourced,
# POSIX sh, root).
#
# A run takes a slot (0..255) under /run/lock: its namespaces are named cbfleetSLOT-NAME and its
# addresses are 198.18.SLOT.0/24 (RFC 2544's benchmarking range), so two runs never share a name or a
# subnet. The central namespace has a bridge with SLOT.1; each hypervisor's namespace has one veth
# link to that bridge and the address SLOT.(10 + K). Addresses exist only on those links; every
# namespace has its own loopback. Nothing is ever put in the machine's own namespace.
#
# The caller sets FLEET_WORK (a fresh directory) and calls fleet_cleanup on every exit path: it
# stops the processes started with fleet_start (by pid, and whatever else still runs in the run's
# namespaces), deletes the namespaces (and so their links) and frees the slot.

FLEET_LOCKDIR=/run/lock/collectd-balloon-fleet

fleet_now() {
    date +%s.%3N
}

fleet_log() {
    printf '[fleet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

fleet_fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# Deletes the namespaces named $1-* and stops what runs in them: the leftovers of a run whose shell
# was killed before its cleanup.
fleet_remove_namespaces() {
    for _ns in $(ip netns list 2>/dev/null | awk -v p="$1-" 'index($1, p) == 1 { print $1 }'); do
        for _p in $(ip netns pids "$_ns" 2>/dev/null); do
            kill -KILL "$_p" 2>/dev/null || true
        done
        ip netns del "$_ns" 2>/dev/null || fleet_log "could not delete the namespace $_ns"
    done
}

# Takes a free slot: sets FLEET_SLOT, FLEET_PREFIX (the namespaces' prefix) and FLEET_NET (the first
# three bytes of the run's addresses). A slot whose owner has died is taken over, after removing
# what the dead run left behind.
fleet_take_slot() {
    mkdir -p "$FLEET_LOCKDIR" || return 1
    _s=0
    while [ "$_s" -le 255 ]; do
        if mkdir "$FLEET_LOCKDIR/$_s" 2>/dev/null; then
            echo $$ >"$FLEET_LOCKDIR/$_s/pid"
            break
        fi
        _owner=$(cat "$FLEET_LOCKDIR/$_s/pid" 2>/dev/null || true)
        # An owner that died (or a slot left without its pid file for more than a minute).
        if { [ -n "$_owner" ] && ! kill -0 "$_owner" 2>/dev/null; } ||
            { [ -z "$_owner" ] && [ -n "$(find "$FLEET_LOCKDIR/$_s" -maxdepth 0 -mmin +1)" ]; }; then
            fleet_log "slot $_s: its run (pid ${_owner:-unknown}) is gone; removing what it left"
            fleet_remove_namespaces "cbfleet$_s"
            rm -rf "$FLEET_LOCKDIR/$_s"
            continue
        fi
        _s=$((_s + 1))
    done
    [ "$_s" -le 255 ] || { fleet_log "all 256 fleet slots in $FLEET_LOCKDIR are taken"; return 1; }
    FLEET_SLOT=$_s
    FLEET_PREFIX=cbfleet$_s
    FLEET_NET=198.18.$_s
    echo "$_s" >"$FLEET_WORK/slot"
}

# The central namespace: loopback, a bridge for the hypervisors' links, the address NET.1. Sets
# FLEET_CENTRAL_NS and FLEET_CENTRAL_ADDR.
fleet_central_ns() {
    FLEET_CENTRAL_NS=$FLEET_PREFIX-central
    FLEET_CENTRAL_ADDR=$FLEET_NET.1
    ip netns add "$FLEET_CENTRAL_NS" || return 1
    echo "$FLEET_CENTRAL_NS" >>"$FLEET_WORK/netns"
    ip -n "$FLEET_CENTRAL_NS" link set lo up &&
        ip -n "$FLEET_CENTRAL_NS" link add br0 type bridge &&
        ip -n "$FLEET_CENTRAL_NS" addr add "$FLEET_CENTRAL_ADDR/24" dev br0 &&
        ip -n "$FLEET_CENTRAL_NS" link set br0 up
}

# fleet_hypervisor_ns NAME K: the namespace PREFIX-NAME with loopback and eth0, one end of a veth
# link whose other end (hvK) is on the central bridge; eth0 has NET.(10 + K). Prints the address.
# Both ends are created inside their namespaces, so no name is ever taken in the machine's own.
fleet_hypervisor_ns() {
    _ns=$FLEET_PREFIX-$1
    _addr=$FLEET_NET.$((10 + $2))
    ip netns add "$_ns" || return 1
    echo "$_ns" >>"$FLEET_WORK/netns"
    ip -n "$_ns" link set lo up &&
        ip link add "hv$2" netns "$FLEET_CENTRAL_NS" type veth peer name eth0 netns "$_ns" &&
        ip -n "$FLEET_CENTRAL_NS" link set "hv$2" master br0 up &&
        ip -n "$_ns" addr add "$_addr/24" dev eth0 &&
        ip -n "$_ns" link set eth0 up || return 1
    echo "$_addr"
}

# fleet_plugin_dir SO: FLEET_WORK/plugins, the one PluginDir of every hypervisor's collectd: Debian's
# logfile and network plugins (hard links, copies across filesystems) and our plugin SO.
fleet_plugin_dir() {
    mkdir "$FLEET_WORK/plugins" || return 1
    for _p in logfile network; do
        ln "/usr/lib/collectd/$_p.so" "$FLEET_WORK/plugins/" 2>/dev/null ||
            cp "/usr/lib/collectd/$_p.so" "$FLEET_WORK/plugins/" || return 1
    done
    cp "$1" "$FLEET_WORK/plugins/balloon.so"
}

# fleet_start NS NAME CMD...: runs CMD in namespace NS (`ip netns exec` execs it: the pid is CMD's),
# output in FLEET_WORK/NAME.out and NAME.err. Sets FLEET_PID and writes it to FLEET_WORK/NAME.pid.
fleet_start() {
    _ns=$1 _name=$2
    shift 2
    ip netns exec "$_ns" "$@" >"$FLEET_WORK/$_name.out" 2>"$FLEET_WORK/$_name.err" &
    FLEET_PID=$!
    echo "$FLEET_PID" >"$FLEET_WORK/$_name.pid"
    echo "$FLEET_PID $_ns $_name" >>"$FLEET_WORK/pids"
}

# fleet_stop NAME [SIGNAL]: stops what fleet_start started as NAME (TERM, then KILL after 10 s), and
# waits for it. Returns its exit status (that of the signal when it had to be killed).
fleet_stop() {
    _pid=$(cat "$FLEET_WORK/$1.pid" 2>/dev/null) || return 0
    rm -f "$FLEET_WORK/$1.pid"
    kill "-${2:-TERM}" "$_pid" 2>/dev/null || true
    _deadline=$(( $(date +%s) + 10 ))
    while kill -0 "$_pid" 2>/dev/null && [ "$(date +%s)" -lt "$_deadline" ]; do
        # a zombie (exited, not yet reaped) is done
        [ "$(awk '{ print $3 }' "/proc/$_pid/stat" 2>/dev/null)" = Z ] && break
        sleep 0.1
    done
    kill -KILL "$_pid" 2>/dev/null || true
    _rc=0
    wait "$_pid" 2>/dev/null || _rc=$?
    return "$_rc"
}

# fleet_bg CMD...: runs CMD and waits for it in a way a signal interrupts (a shell runs its traps only
# once a foreground command has ended; `wait` it leaves at once). Returns CMD's status.
fleet_bg() {
    "$@" &
    wait $!
}

# fleet_wait SECONDS CONDITION: evaluates the shell CONDITION every 0.2 s until it holds (0) or the
# time is up (1).
fleet_wait() {
    _deadline=$(( $(date +%s) + $1 ))
    while ! eval "$2"; do
        [ "$(date +%s)" -lt "$_deadline" ] || return 1
        sleep 0.2
    done
}

# Stops everything of this run and removes its namespaces and slot. Safe to call more than once and
# at any point of the setup. Prints what it could not remove and then returns 1.
fleet_cleanup() {
    _left=0
    if [ -f "$FLEET_WORK/pids" ]; then
        # the newest first: the senders before the central collectd
        for _name in $(awk '{ l[NR] = $3 } END { for (i = NR; i > 0; i--) print l[i] }' "$FLEET_WORK/pids"); do
            fleet_stop "$_name" || true
        done
    fi
    if [ -f "$FLEET_WORK/netns" ]; then
        for _ns in $(cat "$FLEET_WORK/netns"); do
            ip netns list | awk '{ print $1 }' | grep -qxF "$_ns" || continue
            for _p in $(ip netns pids "$_ns" 2>/dev/null); do
                fleet_log "still running in $_ns: pid $_p ($(cat "/proc/$_p/comm" 2>/dev/null)); killing it"
                kill -KILL "$_p" 2>/dev/null || true
            done
            ip netns del "$_ns" || { fleet_log "could not delete the namespace $_ns"; _left=1; }
        done
        rm -f "$FLEET_WORK/netns"
    fi
    # Any other namespace of this run's slot (its list lost, say): the slot is ours, so they are.
    if [ -n "${FLEET_PREFIX:-}" ] && ip netns list | grep -q "^$FLEET_PREFIX-"; then
        fleet_remove_namespaces "$FLEET_PREFIX"
    fi
    if [ -n "${FLEET_PREFIX:-}" ] && ip netns list | grep -q "^$FLEET_PREFIX-"; then
        fleet_log "namespaces left: $(ip netns list | grep "^$FLEET_PREFIX-" | tr '\n' ' ')"
        _left=1
    fi
    if [ -n "${FLEET_SLOT:-}" ] && [ "$(cat "$FLEET_LOCKDIR/$FLEET_SLOT/pid" 2>/dev/null)" = $$ ]; then
        rm -rf "${FLEET_LOCKDIR:?}/$FLEET_SLOT"
    fi
    return "$_left"
}
