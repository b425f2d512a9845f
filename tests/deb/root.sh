#!/bin/sh
# tests/deb/root.sh: the fresh Debian 12 root that tests/deb/run.sh installs the packages into:
# `debootstrap --variant=minbase bookworm`, made once per machine and never changed afterwards (each
# run works on a copy of it). Prints the root's directory.
#   root.sh CACHE_DIR
#
# The root is made beside its final place and renamed into it only when complete, so a killed
# debootstrap leaves nothing that a later run could take for a root. One build at a time per machine
# (flock on CACHE_DIR/root.lock); a second caller waits for the first and reuses its root. Delete
# CACHE_DIR/bookworm to have it made again. DEB_TEST_MIRROR (default http://deb.debian.org/debian)
# and DEB_TEST_SECURITY_MIRROR (http://deb.debian.org/debian-security) are the mirrors the root uses;
# DEB_TEST_NET_TIMEOUT (seconds, default 600) bounds debootstrap, whose wget
# would otherwise wait 15 minutes on a stalled connection.
set -eu
cache=$1
mirror=${DEB_TEST_MIRROR:-http://deb.debian.org/debian}
security=${DEB_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
net_timeout=${DEB_TEST_NET_TIMEOUT:-600}
# The recipe's version: a root made by an older recipe is made again.
recipe=1
root=$cache/bookworm
stamp=$root/.collectd-balloon-deb-root

root_complete() {
    [ -f "$stamp" ] && [ "$(sed -n 's/^recipe //p' "$stamp")" = "$recipe" ]
}

if root_complete; then
    echo "$root"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "deb root: debootstrap is not installed." >&2; exit 1; }
mkdir -p "$cache"
exec 8>"$cache/root.lock"
flock -w 1200 8 || { echo "deb root: another build has held $cache/root.lock for 20 minutes." >&2; exit 1; }
if root_complete; then # made by the caller we waited for
    echo "$root"
    exit 0
fi

t0=$(date +%s)
build=$cache/.bookworm.build
log=$cache/debootstrap.log
rm -rf "$build"
trap 'rm -rf "$build"' EXIT
trap 'exit 1' INT TERM HUP
echo "deb root: making the Debian 12 root $root (once per machine) from $mirror" >&2
# debootstrap mounts proc and sys in the root while it works: in a mount namespace of its own they
# vanish with it on every exit path.
if ! timeout -k 10 "$net_timeout" unshare -m --propagation private \
        debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        bookworm "$build" "$mirror" >"$log" 2>&1; then
    cat "$build/debootstrap/debootstrap.log" >>"$log" 2>/dev/null || true
    echo "deb root: debootstrap of Debian 12 from '$mirror' failed: $(grep -E '^[EW]:' "$log" | tail -n 1). Log: $log" >&2
    exit 1
fi

# The packages debootstrap downloaded are installed: their files only make each copy bigger.
rm -f "$build"/var/cache/apt/archives/*.deb
# Debian 12 as a user has it: the point-release updates and the security archive too.
rm -f "$build/etc/apt/sources.list"
cat >"$build/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# No service starts inside the root when a package is installed (collectd-core's would).
printf '#!/bin/sh\nexit 101\n' >"$build/usr/sbin/policy-rc.d"
chmod 0755 "$build/usr/sbin/policy-rc.d"
cat >"$build/etc/apt/apt.conf.d/90collectd-balloon-deb" <<'EOF'
Acquire::Retries "2";
Acquire::http::Timeout "60";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Use-Pty "0";
EOF
printf 'recipe %s\nmade %s in %s s from %s\n' "$recipe" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(( $(date +%s) - t0 ))" "$mirror" >"$build/.collectd-balloon-deb-root"
rm -rf "$root"
mv "$build" "$root"
trap - EXIT
echo "deb root: made in $(( $(date +%s) - t0 )) s" >&2
echo "$root"
