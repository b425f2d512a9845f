#!/bin/sh
# tests/deb/inside.sh: the part of tests/deb/run.sh that runs inside the fresh Debian 12 root,
# chrooted, as PID 1 of a PID namespace of its own (whatever it starts dies with it). Of ours, the root
# holds only the two packages in /tmp/deb-test/debs and this script: nothing of the build tree.
#
# With apt: installs what the packages depend on (from Debian), then the packages; runs Debian's
# collectd with the packaged plugin, its example configuration enabled and pointed at the sockets of
# the packaged balloon-sim, and checks the values it writes; removes the packages (the edited conffile
# stays), purges them, and compares every file of the root with what was there before.
set -u
t=/tmp/deb-test
sockets=/run/balloon-sim
csv=$t/csv
example=/etc/collectd/collectd.conf.d/balloon.conf
# balloon-sim --memory: every guest's stat-total-memory, in bytes
memory_mib=512

log() { echo "deb (root): $*" >&2; }
fail() {
    echo "deb (root): FAIL: $*" >&2
    exit 1
}
export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8

# apt_get ARGS...: apt-get, bounded in time, its output appended to $t/apt.log.
apt_get() {
    echo "+ apt-get $*" >>"$t/apt.log"
    timeout -k 10 600 apt-get -q -y "$@" >>"$t/apt.log" 2>&1 && return 0
    fail "apt-get $* failed: $(grep -E '^(E|W):' "$t/apt.log" | tail -n 1)"
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds; fails after SECONDS.
wait_for() {
    _deadline=$(( $(date +%s) + $1 ))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$_deadline" ] || return 1
        sleep 0.2
    done
}

# stop PID NAME: SIGTERM, then SIGKILL after 15 s; returns the exit status.
stop() {
    kill -TERM "$1" 2>/dev/null
    ( sleep 15; kill -KILL "$1" 2>/dev/null ) &
    _watchdog=$!
    wait "$1"
    _status=$?
    kill "$_watchdog" 2>/dev/null
    wait "$_watchdog" 2>/dev/null
    [ "$_status" -lt 128 ] || log "$2 did not stop on SIGTERM within 15 s."
    return "$_status"
}

# Every path of the root, with its type, mode and owner and, but for directories, its size; the
# checksum of every regular file under /etc; the files of dpkg's package database. Left out: the state
# of apt and dpkg, caches, logs, and the run's own places (/tmp, /run).
snapshot() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/cache -o -path /var/log \) -prune \
        -o -type d -printf '%y %m %u:%g - %p\n' -o -printf '%y %m %u:%g %s %p\n'
    # A directory's own size grows with its entries and does not shrink when they go (ext4): the
    # package's files in dpkg's database made /var/lib/dpkg/info's grow by a block, once.
    find /var/lib/dpkg/info -type d -printf '%y %m %u:%g - %p\n' -o -printf '%y %m %u:%g %s %p\n'
    find /etc -xdev -type f -exec md5sum {} +
}

# rows DIR NAME: the data rows of the csv plugin's files DIR/NAME-YYYY-MM-DD, oldest first.
rows() {
    cat "$1/$2"-* 2>/dev/null | grep '^[0-9]' | sort -n
}

enough_rows() {
    [ "$(rows "$csv/deb-test/balloon-web" memory-free | wc -l)" -ge 3 ] &&
        [ "$(rows "$csv/deb-test/balloon-legacy-app" memory-free | wc -l)" -ge 3 ]
}

# --- install ---------------------------------------------------------------------------------------
collectd_deb=$(ls "$t"/debs/collectd-balloon_*.deb)
sim_deb=$(ls "$t"/debs/balloon-sim_*.deb)
apt_get update
# What the packages need from Debian first, so that the snapshot taken before they are installed
# differs from the one after they are purged only by what they did themselves.
apt_get satisfy "$(dpkg-deb -f "$collectd_deb" Depends), $(dpkg-deb -f "$sim_deb" Depends)"
dpkg-query -W -f '${Package}\n' | sort >"$t/packages.before"
snapshot | LC_ALL=C sort >"$t/files.before"
apt_get install "$collectd_deb" "$sim_deb"
dpkg-query -W -f '${Package}\n' | sort >"$t/packages.after"
added=$(comm -13 "$t/packages.before" "$t/packages.after" | tr '\n' ' ')
removed=$(comm -23 "$t/packages.before" "$t/packages.after" | tr '\n' ' ')
[ "$added" = "balloon-sim collectd-balloon " ] && [ -z "$removed" ] ||
    fail "installing the two packages installed '$added' and removed '$removed'."
log "installed $(dpkg-query -W -f '${Package} ${Version}; ' collectd-balloon balloon-sim)collectd-core $(dpkg-query -W -f '${Version}' collectd-core) from Debian"
dpkg -L collectd-balloon balloon-sim | grep -vx '/\.' | sort -u >"$t/package-files"

for f in /usr/lib/collectd/balloon.so /usr/bin/balloonctl "$example"; do
    grep -qx "$f" "$t/package-files" && [ -f "$f" ] || fail "collectd-balloon does not install '$f'."
done
[ "$(command -v balloon-sim)" = /usr/bin/balloon-sim ] || fail "balloon-sim is not on the PATH."
for page in man1/balloonctl.1 man1/balloon-sim.1 man5/collectd-balloon.5; do
    zcat "/usr/share/man/$page.gz" | grep -q '^\.TH ' || fail "the man page '$page' is not installed."
done
dpkg-query -W -f '${Conffiles}\n' collectd-balloon | grep -q "^ $example " ||
    fail "'$example' is not a conffile of collectd-balloon."
while read -r f; do
    [ -f "/$f" ] || fail "'/$f', which make install puts there, is not installed."
done <"$t/share.expected"
log "the package carries $(wc -l <"$t/share.expected") files under /usr/share/collectd-balloon"
active=$(grep -v -E '^[[:space:]]*(#|$)' "$example")
[ -z "$active" ] || fail "the example '$example' is active as installed: '$active'."

# --- collectd with the packaged plugin, reading the packaged balloon-sim ----------------------------
balloon-sim --socket-dir "$sockets" --domain web --domain legacy-app:legacy --memory "$memory_mib" \
    >"$t/sim.out" 2>&1 </dev/null &
sim_pid=$!
wait_for 10 grep -q ready "$t/sim.out" || fail "balloon-sim did not get ready: $(cat "$t/sim.out")"

# Enabled the way its comment says: the '#' removed from the LoadPlugin and Plugin lines, and from the
# one option wanted.
sed -i -e 's|^#LoadPlugin balloon$|LoadPlugin balloon|' -e 's|^#<Plugin balloon>$|<Plugin balloon>|' \
    -e 's|^#</Plugin>$|</Plugin>|' -e "s|^#\([[:space:]]*QMPSocketDir \).*|\1\"$sockets\"|" "$example"
[ "$(grep -c -v -E '^[[:space:]]*(#|$)' "$example")" = 4 ] ||
    fail "enabling the example gave: $(grep -v -E '^[[:space:]]*(#|$)' "$example")"

cat >"$t/collectd.conf" <<EOF
Hostname "deb-test"
FQDNLookup false
Interval 2
BaseDir "$t/collectd"
PIDFile "$t/collectd.pid"
LoadPlugin logfile
<Plugin logfile>
	LogLevel "info"
	File "$t/collectd.log"
	Timestamp true
</Plugin>
LoadPlugin csv
<Plugin csv>
	DataDir "$csv"
	StoreRates false
</Plugin>
# As at the end of Debian's /etc/collectd/collectd.conf (package collectd):
<Include "/etc/collectd/collectd.conf.d">
	Filter "*.conf"
</Include>
EOF
mkdir -p "$t/collectd"
collectd -t -C "$t/collectd.conf" >"$t/collectd-t.out" 2>&1 ||
    fail "collectd -t refuses the configuration: $(cat "$t/collectd-t.out")"
started=$(date +%s)
collectd -f -C "$t/collectd.conf" >"$t/collectd.out" 2>&1 </dev/null &
collectd_pid=$!
wait_for 40 enough_rows || fail "collectd wrote no 3 samples of each guest within 40 s. $(tail -n 20 "$t/collectd.log")"
kill -0 "$collectd_pid" || fail "collectd exited: $(cat "$t/collectd.out")"

# What QEMU (balloon-sim) says, through the packaged balloonctl, while the plugin runs: the plugin
# has set the guests' polling interval to collectd's.
balloonctl --qmp-dir "$sockets" --domain web stats --json >"$t/balloonctl.json" ||
    fail "balloonctl stats failed."
tr -d ' \n' <"$t/balloonctl.json" | grep -q '"polling_interval":2,"state":"ok"' ||
    fail "the plugin did not set web's polling interval to 2: $(cat "$t/balloonctl.json")"
tr -d ' \n' <"$t/balloonctl.json" | grep -q "\"stat-total-memory\":$(( memory_mib << 20 ))," ||
    fail "balloonctl does not show web's $memory_mib MiB: $(cat "$t/balloonctl.json")"

web=$csv/deb-test/balloon-web
legacy=$csv/deb-test/balloon-legacy-app
now=$(date +%s)
for dir in "$web" "$legacy"; do
    guest=${dir##*/balloon-}
    # Each value's time is QEMU's last-update: after collectd started, in the past, never twice.
    rows "$dir" memory-total | awk -F, -v total=$(( memory_mib << 20 )) -v t0="$started" -v now="$now" '
        $2 != total { print "memory-total is " $2 ", not " total; bad = 1 }
        $1 < t0 - 3 || $1 > now + 1 { print "a sample at " $1 " outside [" t0 ", " now "]"; bad = 1 }
        $1 <= last { print "the sample at " $1 " is not newer than the one before"; bad = 1 }
        { last = $1 }
        END { exit bad }' >"$t/check.out" || fail "$guest: $(cat "$t/check.out")"
    rows "$dir" memory-free | awk -F, -v total=$(( memory_mib << 20 )) '
        !($2 > 0 && $2 < total) { print "memory-free " $2 " is not within (0, " total ")"; bad = 1 }
        END { exit bad }' >"$t/check.out" || fail "$guest: $(cat "$t/check.out")"
    # The guest's workload runs: its minor faults go up.
    rows "$dir" vmpage_faults | awk -F, '
        NR == 1 { first = $2 } { last = $2 }
        END { if (!(NR >= 3 && last > first)) { print NR " samples, minflt " first " .. " last; exit 1 } }' \
        >"$t/check.out" || fail "$guest: vmpage_faults do not advance: $(cat "$t/check.out")"
    rows "$dir" timestamp-last_update | awk -F, '
        int($1) != int($2) { print "last_update " $2 " at " $1; bad = 1 }
        END { exit bad || NR < 3 }' >"$t/check.out" ||
        fail "$guest: timestamp-last_update is not the samples' time: $(cat "$t/check.out")"
    [ -n "$(rows "$dir" duration-stats_age)" ] || fail "$guest: no duration-stats_age."
done
# The legacy guest sends only the six stats of QEMU's stats document.
[ -n "$(rows "$web" memory-available)" ] || fail "web: no memory-available."
[ -z "$(rows "$legacy" memory-available)" ] || fail "legacy-app: memory-available, which its guest does not send."
grep -q 'plugin "balloon" successfully loaded' "$t/collectd.log" || fail "collectd's log does not show the plugin loaded."
! grep -q '\[error\]' "$t/collectd.log" || fail "collectd logged errors: $(grep '\[error\]' "$t/collectd.log")"
log "collectd wrote $(rows "$web" memory-free | wc -l) samples of web; free $(rows "$web" memory-free | tail -n 1 | cut -d, -f2) of $(rows "$web" memory-total | tail -n 1 | cut -d, -f2) bytes"

stop "$collectd_pid" collectd || fail "collectd exited with status $? on SIGTERM: $(tail -n 5 "$t/collectd.log")"
# RestoreInterval (default true): the plugin put each guest's interval back (0, off) at shutdown.
[ "$(balloonctl --qmp-dir "$sockets" --domain web list | awk '$1 == "web" { print $3 }')" = off ] ||
    fail "web's polling interval was not put back at shutdown: $(balloonctl --qmp-dir "$sockets" list)"
stop "$sim_pid" balloon-sim || fail "balloon-sim exited with status $? on SIGTERM."
[ -z "$(ls -A "$sockets")" ] || fail "balloon-sim left '$(ls -A "$sockets")' behind."

# --- remove, purge -----------------------------------------------------------------------------------
apt_get remove collectd-balloon balloon-sim
[ ! -e /usr/lib/collectd/balloon.so ] && [ ! -e /usr/bin/balloon-sim ] || fail "apt remove left the programs."
grep -q "^[[:space:]]*QMPSocketDir \"$sockets\"" "$example" ||
    fail "apt remove took the edited conffile '$example' away: only purge may."
apt_get purge collectd-balloon balloon-sim
for p in collectd-balloon balloon-sim; do
    case $(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null) in
    "" | "un "* | "pn "*) ;;
    *) fail "$p is still known to dpkg after apt purge: $(dpkg-query -W -f '${db:Status-Abbrev}' "$p")" ;;
    esac
done
left=""
while read -r f; do
    [ -e "$f" ] && ! grep -q " $f\$" "$t/files.before" && left="$left '$f'"
done <"$t/package-files"
[ -z "$left" ] || fail "apt purge left the packages' files:$left"
snapshot | LC_ALL=C sort >"$t/files.after"
diff -u "$t/files.before" "$t/files.after" >"$t/files.diff" ||
    fail "the root after apt purge differs from the root before apt install: $(head -n 40 "$t/files.diff")"
log "apt purge left the root as it was ($(wc -l <"$t/files.before") paths compared)"
