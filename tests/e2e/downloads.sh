#!/bin/sh
# tests/e2e/downloads.sh: a download that fails while the modern stack is fetched says what it could
# not download and stops, within the time limit, instead of hanging. Against servers on the loopback
# only, with a cache directory of its own (the machine's root under /var/cache is not touched):
#   - a mirror that refuses connections: modern-root.sh names the index it could not get;
#   - a mirror that accepts and never answers: modern-root.sh stops after E2E_NET_TIMEOUT and says so;
#   - a mirror whose lists name a kernel package that is not there: fetch-kernel.sh names the package,
#     and so does mr_failed_downloads (modern-lib.sh) reading apt's output.
# Root only (debootstrap); skipped otherwise, and under BALLOON_SKIP_SLOW=1.
set -u
E2E_SRCDIR=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$E2E_SRCDIR/tests/e2e/modern-lib.sh"

skip() {
    echo "downloads: skipped: $*"
    exit 77
}
fail() {
    echo "FAIL: $*"
    exit 1
}
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap)."
[ "${BALLOON_SKIP_SLOW:-0}" = 1 ] && skip "BALLOON_SKIP_SLOW=1 (it runs in the plain pass)."
command -v debootstrap >/dev/null || fail "debootstrap is not installed (scripts/install-deps.sh installs it)."

tmp=$(mktemp -d /tmp/e2e-downloads.XXXXXX)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# serve MODE [DIR]: a server on 127.0.0.1 (a port the kernel picks, in $tmp/port) for 120 s at most:
# "stall" accepts connections and never answers; "files" serves DIR over HTTP.
serve() {
    rm -f "$tmp/port"
    python3 - "$1" "${2:-.}" "$tmp/port" <<'EOF' &
import functools, http.server, os, socket, sys, threading, time
mode, root, port_file = sys.argv[1:4]
threading.Timer(120, lambda: os._exit(0)).start()
if mode == "stall":
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    port = s.getsockname()[1]
    open(port_file + ".tmp", "w").write(str(port))
    os.rename(port_file + ".tmp", port_file)
    held = []
    while True:
        held.append(s.accept()[0])
else:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
    open(port_file + ".tmp", "w").write(str(httpd.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    httpd.serve_forever()
EOF
    server=$!
    _i=0
    while [ ! -s "$tmp/port" ]; do
        _i=$((_i + 1))
        [ $_i -le 100 ] && kill -0 "$server" 2>/dev/null || fail "the test server did not start."
        sleep 0.1
    done
    port=$(cat "$tmp/port")
}

stop_server() {
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    server=""
}

# build_root MIRROR TIMEOUT: modern-root.sh into a cache of its own; its stderr in $tmp/err, the
# seconds it took in $took.
build_root() {
    rm -rf "$tmp/cache"
    _t0=$(date +%s)
    E2E_CACHE=$tmp/cache E2E_MIRROR=$1 E2E_NET_TIMEOUT=$2 timeout 120 sh "$E2E_SRCDIR/tests/e2e/modern-root.sh" \
        >"$tmp/out" 2>"$tmp/err"
    _rc=$?
    took=$(( $(date +%s) - _t0 ))
    return $_rc
}

echo "== a mirror that refuses connections"
# A port that was free a moment ago: nothing listens there now.
serve stall
refused=$port
stop_server
build_root "http://127.0.0.1:$refused/debian" 60 && fail "modern-root.sh built a root from a dead mirror."
[ "$took" -lt 60 ] || fail "modern-root.sh took $took s to give up on a dead mirror."
grep -q "could not download the index http://127.0.0.1:$refused/debian/dists/bookworm/Release" "$tmp/err" \
    || fail "modern-root.sh does not name what it could not download: $(cat "$tmp/err")"
[ ! -e "$tmp/cache/modern-root" ] || fail "a failed build left a root behind."
echo "  $(tail -n 1 "$tmp/err") ($took s)"

echo "== a mirror that never answers"
serve stall
build_root "http://127.0.0.1:$port/debian" 5 && fail "modern-root.sh built a root from a stalled mirror."
[ "$took" -lt 30 ] || fail "modern-root.sh took $took s on a stalled mirror with E2E_NET_TIMEOUT=5."
grep -q "did not finish within 5 s (E2E_NET_TIMEOUT): the mirror 'http://127.0.0.1:$port/debian' stalled" "$tmp/err" \
    || fail "modern-root.sh does not say that the mirror stalled: $(cat "$tmp/err")"
[ -z "$(mr_root_pids "$tmp/cache/.modern-root.build")" ] || fail "processes left in the build."
echo "  $(tail -n 1 "$tmp/err") ($took s)"
stop_server

echo "== a package the mirror's lists name and the mirror does not have"
repo=$tmp/repo
mkdir -p "$repo/dists/test/main/binary-amd64" "$tmp/apt/sources.list.d" "$tmp/apt/lists/partial" \
         "$tmp/apt/cache/archives/partial" "$tmp/kernels"
cat >"$repo/dists/test/main/binary-amd64/Packages" <<'EOF'
Package: linux-image-amd64
Version: 9.9.9
Architecture: amd64
Depends: linux-image-9.9.9-test-amd64
Filename: pool/main/l/linux-signed/linux-image-amd64_9.9.9_amd64.deb
Size: 1000
Description: a meta package whose kernel is missing

Package: linux-image-9.9.9-test-amd64
Version: 9.9.9
Architecture: amd64
Filename: pool/main/l/linux-signed/linux-image-9.9.9-test-amd64_9.9.9_amd64.deb
Size: 1000
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
Description: a kernel package whose file is missing
EOF
serve files "$repo"
cat >"$tmp/apt/sources.list.d/test.sources" <<EOF
Types: deb
URIs: http://127.0.0.1:$port
Suites: dists/test/main/binary-amd64/
Trusted: yes
EOF
opts="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$tmp/apt/sources.list.d"
opts="$opts -o Dir::State::Lists=$tmp/apt/lists -o Dir::Cache=$tmp/apt/cache -o Acquire::http::Timeout=10"
opts="$opts -o APT::Sandbox::User=root"
# shellcheck disable=SC2086
apt-get $opts -q update >"$tmp/update.out" 2>&1 || fail "apt-get update from the test mirror failed: $(tail -n 3 "$tmp/update.out")"
E2E_APT_OPTS=$opts sh "$E2E_SRCDIR/tests/e2e/fetch-kernel.sh" "$tmp/kernels" >"$tmp/out" 2>"$tmp/err" \
    && fail "fetch-kernel.sh fetched a kernel that is not there."
grep -q "'apt-get download linux-image-9.9.9-test-amd64' failed: .*linux-image-9.9.9-test-amd64_9.9.9_amd64.deb.*404" "$tmp/err" \
    || fail "fetch-kernel.sh does not name the package it could not download: $(cat "$tmp/err")"
echo "  $(cat "$tmp/err")"
# shellcheck disable=SC2086
(cd "$tmp" && apt-get $opts -q download linux-image-9.9.9-test-amd64) >"$tmp/download.out" 2>&1 \
    && fail "apt-get download fetched a package that is not there."
named=$(mr_failed_downloads "$tmp/download.out")
case "$named" in
    "the package 'linux-image-9.9.9-test-amd64' (http://127.0.0.1:$port/pool/main/l/linux-signed/linux-image-9.9.9-test-amd64_9.9.9_amd64.deb: 404"*) ;;
    *) fail "mr_failed_downloads reads '$named' from: $(cat "$tmp/download.out")" ;;
esac
echo "  mr_failed_downloads: $named"
echo "PASS"
