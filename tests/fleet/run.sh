#!/bin/sh
# tests/fleet/run.sh: many hypervisors into one Prometheus through collectd's network plugin, with
# the configurations of dashboards/fleet/ (README, "Many hypervisors").
#
# Each hypervisor is a network namespace of its own (tests/fleet/lib.sh) with its balloon-sim and
# its collectd (the balloon plugin and the network plugin, SecurityLevel Encrypt); the central
# namespace has the central collectd (network <Listen> with an AuthFile, write_prometheus) and the
# real Prometheus with dashboards/prometheus/'s rules, scraping it with honor_labels. Asserted:
#   - every (hypervisor, VM) series arrives, with the values of that hypervisor's own balloonctl for
#     the same last_update (the guests paused so that the sample is known);
#   - senders with a wrong password, without encryption (None) and signing only get nothing in,
#     and the central collectd's log says so; a sender with valid credentials that claims another
#     hypervisor's Hostname gets its values in under its own name only;
#   - one hypervisor's collectd killed: its stopped-sending alert fires within 3 intervals and names
#     it, the others' series go on and their alerts stay as they were; started again, its series
#     come back and the alert resolves;
#   - the central collectd restarted: every series back within 3 intervals;
#   - every namespace, link and process removed (on every exit path: a trap).
# Root only. Skipped (77) under BALLOON_SKIP_SLOW=1.
set -eu

: "${abs_top_builddir:?}" "${abs_top_srcdir:?}"
so=$abs_top_builddir/plugin/.libs/balloon.so
sim=$abs_top_builddir/virtio/balloon-sim
ctl=$abs_top_builddir/agent/balloonctl
collectd=$(command -v collectd 2>/dev/null || echo /usr/sbin/collectd)
dashboards=$abs_top_srcdir/dashboards
rules=${FLEET_RULES:-$dashboards/prometheus/collectd-balloon.rules.yml}
silent_alert=CollectdBalloonHostSilent
# collectd's Interval on every hypervisor and Prometheus's scrape and rule interval: the example's
# 10 s and 5 s, scaled down as far as the network plugin's flush (FlushInterval 1) allows: the
# stopped-sending alert must tell a flush-late value from a silent hypervisor.
interval=4
scrape=1s

skip() { echo "SKIP: $*" >&2; exit 77; }
[ "${BALLOON_SKIP_SLOW:-0}" = 1 ] && skip "BALLOON_SKIP_SLOW=1."
[ "$(id -u)" = 0 ] || skip "network namespaces need root."
for f in "$so" "$sim" "$ctl"; do [ -e "$f" ] || skip "'$f' was not built."; done
for p in network write_prometheus logfile match_regex target_set; do
    [ -f "/usr/lib/collectd/$p.so" ] || skip "collectd's $p plugin is not installed (collectd-core)."
done
for c in ip prometheus python3; do
    command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed (scripts/install-deps.sh)."
done
[ -x "$collectd" ] || skip "collectd is not installed (collectd-core)."
for f in "$rules" "$dashboards/grafana/collectd-balloon.json" "$dashboards/prometheus/consoles/collectd-balloon.html"; do
    [ -f "$f" ] || { echo "FAIL: '$f' is missing." >&2; exit 1; }
done
# A sanitizer's runtime would have to be preloaded into every daemon; the plain build runs this.
nm -D "$so" 2>/dev/null | grep -q ' U __asan_init' && skip "balloon.so is built with a sanitizer."

FLEET_SRC=$abs_top_srcdir
FLEET_WORK=$(mktemp -d /tmp/fleet-test.XXXXXX)
. "$abs_top_srcdir/tests/fleet/lib.sh"
. "$abs_top_srcdir/tests/fleet/conf.sh"
ok=0
finish() {
    status=$?
    trap - EXIT INT TERM
    fleet_cleanup || status=1
    if [ "$ok" = 1 ] && [ "$status" = 0 ]; then
        rm -rf "$FLEET_WORK"
    else
        for f in central.log central.err prometheus.err hv2.log; do
            [ -s "$FLEET_WORK/$f" ] && { echo "--- $f (the end)" >&2; tail -n 30 "$FLEET_WORK/$f" >&2; }
        done
        echo "(kept $FLEET_WORK)" >&2
    fi
    exit "$status"
}
trap finish EXIT
trap 'exit 1' INT TERM HUP

check() { # the assertions, in the central namespace where Prometheus listens
    fleet_bg ip netns exec "$FLEET_CENTRAL_NS" python3 "$abs_top_srcdir/tests/fleet/check.py" \
        --prom "http://127.0.0.1:$prom_port" --interval "$interval" "$@"
}

fleet_take_slot || fleet_fail "no fleet slot."
fleet_central_ns || fleet_fail "cannot make the central namespace."
central=$FLEET_CENTRAL_ADDR
prom_port=9090

# The hypervisors that are fine, and the senders that must be refused (wrong password, no
# encryption, signing only) or renamed (valid credentials, another hypervisor's Hostname).
good="hv1 hv2 hv3"
refused="badpw plain signed"
all="$good $refused impostor"
k=1
for h in $all; do
    fleet_hypervisor_ns "$h" "$k" >/dev/null || fleet_fail "cannot make the namespace of $h."
    k=$((k + 1))
done

fleet_plugin_dir "$so" || fleet_fail "cannot make the plugin directory."

# The central collectd's AuthFile: every sender's user, each with its right password.
umask 077
{
    echo "# tests/fleet: one user per sender"
    for h in $all; do echo "$h: pw-$h-$$"; done
} >"$FLEET_WORK/passwd"
umask 022
fleet_conf_central "$central" "$FLEET_WORK/passwd" "$interval"
fleet_conf_prometheus "$central:9103" "$rules" "$scrape"

start_central() {
    : >"$FLEET_WORK/central.log"
    fleet_start "$FLEET_CENTRAL_NS" central "$collectd" -f -C "$FLEET_WORK/central.conf"
    fleet_wait 20 'grep -q "Initialization complete" "$FLEET_WORK/central.log"' ||
        fleet_fail "the central collectd did not start."
}
start_central
fleet_start "$FLEET_CENTRAL_NS" prometheus prometheus --config.file="$FLEET_WORK/prometheus.yml" \
    --storage.tsdb.path="$FLEET_WORK/tsdb" --web.listen-address="127.0.0.1:$prom_port" \
    --web.console.templates="$dashboards/prometheus/consoles" \
    --web.console.libraries="$dashboards/prometheus/console_libraries"
fleet_wait 60 'ip netns exec "$FLEET_CENTRAL_NS" python3 -c "import urllib.request as u; u.urlopen(\"http://127.0.0.1:$prom_port/-/ready\", timeout=2)" 2>/dev/null' ||
    fleet_fail "Prometheus did not get ready."

# Each hypervisor's guests: balloon-sim in its namespace. web is on two of them (a VM is (host, VM));
# hv2 has a guest that never answers, whose alert must fire and stay through everything below.
guests_hv1="--stats 16 --domain web:linux --domain db:linux"
guests_hv2="--stats 10 --domain web:linux --domain old:legacy --domain mute:none"
guests_hv3="--stats 10 --domain cache:linux"
hypervisor_conf() { # NAME USER PASSWORD LEVEL
    fleet_conf_hypervisor "$1" "$2" "$3" "$4" "$central" "$interval" "$FLEET_WORK/plugins" \
        "QMPSocketDir \"$FLEET_WORK/qmp-$1\"
# the guests are paused for a while below: not stale for that long
StaleAfter 20"
}
start_collectd() { # NAME: the collectd of hypervisor NAME, with FLEET_WORK/NAME.conf
    hv=$1
    : >"$FLEET_WORK/$hv.log"
    fleet_start "$FLEET_PREFIX-$hv" "$hv" "$collectd" -f -C "$FLEET_WORK/$hv.conf"
    fleet_wait 20 'grep -q "Initialization complete" "$FLEET_WORK/$hv.log"' ||
        fleet_fail "the collectd of $hv did not start."
}
for h in $all; do
    case $h in
    hv1) g=$guests_hv1 ;; hv2) g=$guests_hv2 ;; hv3) g=$guests_hv3 ;;
    *) g="--domain $h-vm:linux" ;;
    esac
    # shellcheck disable=SC2086
    fleet_start "$FLEET_PREFIX-$h" "sim-$h" "$sim" --socket-dir "$FLEET_WORK/qmp-$h" $g
    fleet_wait 10 'grep -q ready "$FLEET_WORK/sim-$h.out"' || fleet_fail "balloon-sim of $h did not get ready."
done
for h in $good; do hypervisor_conf "$h" "$h" "pw-$h-$$" Encrypt; done
hypervisor_conf badpw badpw wrong-password Encrypt
hypervisor_conf plain plain "" None
hypervisor_conf signed signed "pw-signed-$$" Sign
hypervisor_conf impostor impostor "pw-impostor-$$" Encrypt
# the impostor claims hv1's name
sed -i 's/^Hostname "impostor"$/Hostname "hv1"/' "$FLEET_WORK/impostor.conf"
grep -q '^Hostname "hv1"$' "$FLEET_WORK/impostor.conf" || fleet_fail "the impostor's Hostname was not set."
for h in $all; do start_collectd "$h"; done

# QMP stop / cont of every guest of a hypervisor (balloon-sim's clock stops with the guest).
qmp_all() { # HOST COMMAND
    python3 - "$FLEET_WORK/qmp-$1" "$2" <<'EOF'
import json, os, socket, sys
d, cmd = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(d)):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(os.path.join(d, name))
    f = s.makefile("rwb")
    f.readline()
    for c in ({"execute": "qmp_capabilities"}, {"execute": cmd}):
        f.write((json.dumps(c) + "\n").encode())
        f.flush()
        while "event" in json.loads(f.readline()):
            pass
    s.close()
EOF
}

fleet_log "every series arrives, with balloonctl's values"
# Let every hypervisor send a few cycles, then freeze its guests and ask its own balloonctl.
fleet_bg sleep $((3 * interval))
args=
for h in $good; do
    qmp_all "$h" stop
done
for h in $good; do
    ip netns exec "$FLEET_PREFIX-$h" "$ctl" --qmp-dir "$FLEET_WORK/qmp-$h" stats --json \
        >"$FLEET_WORK/stats-$h.json" || [ "$h" = hv2 ] || fleet_fail "balloonctl on $h failed."
    args="$args --hv $h $FLEET_WORK/stats-$h.json"
done
# shellcheck disable=SC2086
check arrive $args --refused badpw --refused plain --refused signed --impostor impostor hv1 \
    --timeout $((4 * interval)) --save "$FLEET_WORK/series.json"
for h in $good; do qmp_all "$h" cont; done
grep -q 'Checksum mismatch. Username: badpw' "$FLEET_WORK/central.log" ||
    fleet_fail "the central collectd's log does not say that badpw's packets were refused."
grep -q 'Unencrypted packet or part has been ignored' "$FLEET_WORK/central.log" ||
    fleet_fail "the central collectd's log does not say that unencrypted packets were ignored."

fleet_log "the alerts before anything goes wrong: only the guest that never answers"
check alerts --expect CollectdBalloonNeverAnswered:hv2/mute --timeout 60 --save "$FLEET_WORK/alerts.json"

fleet_log "the dashboards across hypervisors"
check dashboards --series "$FLEET_WORK/series.json" --also impostor --refused badpw --refused plain \
    --refused signed --grafana "$dashboards/grafana/collectd-balloon.json" \
    --console collectd-balloon.html --vm-console collectd-balloon-vm.html

fleet_log "hv2's collectd killed"
t=$(fleet_now)
fleet_stop hv2 KILL || true
check silent --host hv2 --alert "$silent_alert" --since "$t" --series "$FLEET_WORK/series.json" \
    --alerts "$FLEET_WORK/alerts.json"
check snapshot --series "$FLEET_WORK/series.json" --save "$FLEET_WORK/before-resume.json"
t=$(fleet_now)
start_collectd hv2
check resumed --host hv2 --alert "$silent_alert" --since "$t" --before "$FLEET_WORK/before-resume.json" \
    --timeout $((3 * interval))

fleet_log "the central collectd restarted"
fleet_stop central || fleet_fail "the central collectd did not stop cleanly."
# Once Prometheus's scrapes have failed, what it has is all it will get from the old process.
sleep 2
check snapshot --series "$FLEET_WORK/series.json" --save "$FLEET_WORK/before-restart.json"
t=$(fleet_now)
start_central
check back --since "$t" --before "$FLEET_WORK/before-restart.json" --timeout $((3 * interval))

fleet_log "everything stopped"
for h in $all; do
    fleet_stop "$h" || fleet_fail "the collectd of $h did not stop cleanly."
done
fleet_cleanup || fleet_fail "the cleanup left something behind."
for n in $(cat "$FLEET_WORK/pids" | awk '{ print $1 }'); do
    kill -0 "$n" 2>/dev/null && fleet_fail "pid $n still runs."
done
ip netns list | grep -q "^$FLEET_PREFIX-" && fleet_fail "namespaces are left."
ok=1
echo "PASS: fleet of $(echo $good | wc -w) hypervisors, $(echo $refused | wc -w) refused senders and an impostor"
