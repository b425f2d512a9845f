# Sourced (POSIX sh) by scripts/demo.sh and tests/dashboards/run.sh: a Prometheus that scrapes
# collectd's write_prometheus on loopback, with collectd-balloon's rules and consoles, and an
# Alertmanager. Everything listens on 127.0.0.1 only. The caller owns the processes (their pids are in
# the variables below) and stops them (ps_stop); each runs in a session of its own (setsid), so that a
# Ctrl-C reaches only the calling script, which stops them in its own order.
#
# ps_top must be the source tree (dashboards/ is read from there).

PS_PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PS_ALERTMANAGER=${ALERTMANAGER:-/usr/bin/prometheus-alertmanager}
ps_prometheus_pid=""
ps_alertmanager_pid=""

# Prints a port on 127.0.0.1 that nothing listens on now, chosen by the kernel.
ps_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Succeeds when a server could listen on 127.0.0.1:PORT (nothing holds it, on 127.0.0.1 or on every
# address), as Go's and libmicrohttpd's servers do it (SO_REUSEADDR).
ps_port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# ps_http_get URL: the body of a 200 answer on stdout, or failure. Bounded to 5 s.
ps_http_get() {
    python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.buffer.write(r.read())
except Exception:
    sys.exit(1)
EOF
}

# ps_wait_http URL SECONDS PID: waits until URL answers 200, while PID lives. Fails otherwise.
ps_wait_http() {
    ps_deadline=$(($(date +%s) + $2))
    until ps_http_get "$1" >/dev/null 2>&1; do
        kill -0 "$3" 2>/dev/null || return 1
        [ "$(date +%s)" -lt "$ps_deadline" ] || return 1
        sleep 0.2
    done
}

# ps_wait_write_prometheus PORT LOG PID: waits (30 s) until collectd (PID, logging to LOG) serves
# write_prometheus's page on 127.0.0.1:PORT. write_prometheus logs a port it cannot take and collectd
# goes on without it, so the log is watched too. Fails with a message on stderr.
ps_wait_write_prometheus() {
    ps_deadline=$(($(date +%s) + 30))
    until ps_http_get "http://127.0.0.1:$1/metrics" >/dev/null 2>&1; do
        if grep -q 'write_prometheus plugin: Opening a listening socket' "$2" 2>/dev/null; then
            echo "collectd's write_prometheus could not listen on 127.0.0.1:$1." >&2
            return 1
        fi
        if ! kill -0 "$3" 2>/dev/null || [ "$(date +%s)" -ge "$ps_deadline" ]; then
            echo "collectd's write_prometheus did not answer on 127.0.0.1:$1 (collectd's log: $2)." >&2
            return 1
        fi
        sleep 0.2
    done
}

# ps_prometheus_config FILE COLLECTD_PORT [ALERTMANAGER_PORT]: scrapes collectd every second
# (honor_labels: collectd's Hostname stays the instance label), evaluates the rules every second.
ps_prometheus_config() {
    {
        echo "global:"
        echo "  scrape_interval: 1s"
        echo "  evaluation_interval: 1s"
        echo "rule_files:"
        echo "  - '$ps_top/dashboards/prometheus/collectd-balloon.rules.yml'"
        if [ -n "${3:-}" ]; then
            echo "alerting:"
            echo "  alertmanagers:"
            echo "    - static_configs:"
            echo "        - targets: ['127.0.0.1:$3']"
        fi
        echo "scrape_configs:"
        echo "  - job_name: collectd"
        echo "    honor_labels: true"
        echo "    static_configs:"
        echo "      - targets: ['127.0.0.1:$2']"
    } >"$1"
}

# ps_start_prometheus CONFIG PORT DIR: Prometheus with its data in DIR/prometheus-data, its log in
# DIR/prometheus.log, the consoles of dashboards/prometheus; waits until it is ready (30 s).
ps_start_prometheus() {
    setsid "$PS_PROMETHEUS" --config.file="$1" --web.listen-address="127.0.0.1:$2" \
        --storage.tsdb.path="$3/prometheus-data" \
        --web.console.templates="$ps_top/dashboards/prometheus/consoles" \
        --web.console.libraries="$ps_top/dashboards/prometheus/console_libraries" \
        >"$3/prometheus.log" 2>&1 </dev/null &
    ps_prometheus_pid=$!
    ps_wait_http "http://127.0.0.1:$2/-/ready" 30 "$ps_prometheus_pid"
}

# ps_start_alertmanager PORT DIR: an Alertmanager on loopback with no cluster port and a receiver
# that sends nothing; its log in DIR/alertmanager.log. Waits until it is ready (30 s).
ps_start_alertmanager() {
    cat >"$2/alertmanager.yml" <<EOF
route:
  receiver: "none"
  group_wait: 1s
receivers:
  - name: "none"
EOF
    setsid "$PS_ALERTMANAGER" --config.file="$2/alertmanager.yml" --storage.path="$2/alertmanager-data" \
        --web.listen-address="127.0.0.1:$1" --cluster.listen-address="" \
        >"$2/alertmanager.log" 2>&1 </dev/null &
    ps_alertmanager_pid=$!
    ps_wait_http "http://127.0.0.1:$1/-/ready" 30 "$ps_alertmanager_pid"
}

# ps_stop PID: TERM, then KILL after 10 s; waits for it. Empty PID: nothing.
ps_stop() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    ps_i=0
    while kill -0 "$1" 2>/dev/null && [ "$ps_i" -lt 100 ]; do
        sleep 0.1
        ps_i=$((ps_i + 1))
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
