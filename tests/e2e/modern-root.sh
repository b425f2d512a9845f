#!/bin/sh
# Builds, once per machine, the root the modern-stack e2e runs its own libvirtd and QEMU in: Debian 12
# (debootstrap --variant=minbase) with libvirt, QEMU and a Linux kernel from bookworm-backports, kept
# apart from the system's libvirt 9.0 / QEMU 7.2 (DESIGN.md, "The modern stack"). Prints the root's
# directory. A root that is already complete is reused at once, without the network.
#   modern-root.sh [CACHE_DIR]    (default: $E2E_CACHE or /var/cache/collectd-balloon-e2e)
#
# The root is built beside its final place and renamed into it only when complete, so a killed build
# leaves nothing that a later run could take for a root. Everything the build starts runs in a mount
# namespace of its own (unshare -m): the proc, sys and dev mounts apt needs in the root vanish with it
# on every exit path, and are never seen by the rest of the machine. One build at a time per machine
# (flock on CACHE_DIR/modern-root.lock); a second caller waits for the first and reuses its root.
#
# A download that fails stops the build with a message naming the package (or the index) that could
# not be fetched; every network step has a time limit (E2E_NET_TIMEOUT seconds each, default 900),
# so a stalled mirror fails the build instead of hanging it.
set -eu
cache=${1:-${E2E_CACHE:-/var/cache/collectd-balloon-e2e}}
mirror=${E2E_MIRROR:-http://deb.debian.org/debian}
net_timeout=${E2E_NET_TIMEOUT:-900}
here=$(cd "$(dirname "$0")" && pwd)
# The recipe's version: a root built by an older recipe is rebuilt.
recipe=1
# What the root holds besides minbase. From bookworm-backports: libvirt 11.3 (the monolithic libvirtd
# and its QEMU driver, virsh and virt-admin) and QEMU 10.0.
packages_bpo="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86"
root=$cache/modern-root
stamp=$root/.collectd-balloon-e2e-root

. "$here/modern-lib.sh"

complete() {
    [ -f "$stamp" ] && [ "$(sed -n 's/^recipe //p' "$stamp")" = "$recipe" ] \
        && [ -x "$root/usr/sbin/libvirtd" ] && [ -x "$root/usr/bin/qemu-system-x86_64" ]
}

if complete; then
    echo "$root"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "modern-root: building the root needs root." >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "modern-root: debootstrap is not installed." >&2; exit 1; }
mkdir -p "$cache"
exec 8>"$cache/modern-root.lock"
flock -w 1800 8 || { echo "modern-root: another build has held $cache/modern-root.lock for 30 minutes." >&2; exit 1; }
if complete; then # built by the caller we waited for
    echo "$root"
    exit 0
fi

t0=$(date +%s)
build=$cache/.modern-root.build
log=$cache/modern-root.log
mr_stop_root_processes "$build"
rm -rf "$build"
mkdir -p "$build"
: >"$log"
trap 'mr_stop_root_processes "$build"; rm -rf "$build" "$build.step.out"' EXIT
trap 'exit 1' INT TERM HUP

# step DESCRIPTION COMMAND...: runs one step of the build, its output added to the log. If it fails,
# says what it could not download (the packages or indexes apt or debootstrap named), or that it
# stalled past the time limit and what it was fetching then, and stops the build.
step() {
    _what=$1
    shift
    _rc=0
    "$@" >"$build.step.out" 2>&1 || _rc=$?
    cat "$build/debootstrap/debootstrap.log" >>"$build.step.out" 2>/dev/null || true
    rm -f "$build/debootstrap/debootstrap.log"
    cat "$build.step.out" >>"$log"
    [ "$_rc" = 0 ] && { rm -f "$build.step.out"; return 0; }
    _failed=$(mr_failed_downloads "$build.step.out")
    if [ "$_rc" = 124 ] || [ "$_rc" = 137 ]; then
        echo "modern-root: $_what did not finish within $net_timeout s (E2E_NET_TIMEOUT): the mirror '$mirror' stalled${_failed:+; could not download $_failed}; it was at: $(grep -E '^(I|Get|Err|Ign):' "$build.step.out" | tail -n 1). Log: $log" >&2
    elif [ -n "$_failed" ]; then
        echo "modern-root: $_what failed: could not download $_failed. Log: $log" >&2
    else
        echo "modern-root: $_what failed: $(grep -E '^(E|W):' "$build.step.out" | tail -n 1). Log: $log" >&2
    fi
    rm -f "$build.step.out"
    exit 1
}

echo "modern-root: building the Debian 12 + bookworm-backports root in $root (once per machine)" >&2
# debootstrap fetches with wget, which waits 15 minutes on a stalled connection: the timeout bounds it.
step "debootstrap of Debian 12 (bookworm) from '$mirror'" \
    timeout -k 10 "$net_timeout" unshare -m --propagation private \
    debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    bookworm "$build" "$mirror"
echo "modern-root: debootstrap done after $(( $(date +%s) - t0 )) s" >&2

cat >"$build/etc/apt/sources.list.d/bookworm-backports.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# No service starts inside the root while packages are installed.
printf '#!/bin/sh\nexit 101\n' >"$build/usr/sbin/policy-rc.d"
chmod 0755 "$build/usr/sbin/policy-rc.d"
cat >"$build/etc/apt/apt.conf.d/90collectd-balloon-e2e" <<EOF
Acquire::Retries "2";
Acquire::http::Timeout "60";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

# in_root COMMAND...: COMMAND chrooted into the build (mr_in_root), within the network time limit.
in_root() {
    MR_TIMEOUT=$net_timeout mr_in_root "$build" "" "$@"
}

step "apt-get update of bookworm-backports from '$mirror' in the root" in_root apt-get -q --error-on=any update
# shellcheck disable=SC2086
step "installing $packages_bpo from bookworm-backports" in_root apt-get -q -y -t bookworm-backports install $packages_bpo
in_root apt-get clean >>"$log" 2>&1 || true
# libvirtd's QEMU driver needs its default user to exist even when qemu.conf says root.
chroot "$build" sh -c 'getent group kvm >/dev/null || groupadd -r kvm; getent passwd libvirt-qemu >/dev/null ||
    useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu; mkdir -p /var/log/libvirt/qemu' >>"$log" 2>&1
echo "modern-root: backports installed after $(( $(date +%s) - t0 )) s" >&2

# libvirtd's QEMU driver in the root, as on the host (DESIGN.md): guests as root, no security driver,
# no ownership changes; and, in a chroot: no mount namespace per guest (it fails there), no cgroups
# (the machine's cgroups stay the system libvirtd's), QEMU writing its own logs (no virtlogd).
cat >"$build/etc/libvirt/qemu.conf" <<'EOF'
# Written by collectd-balloon's tests/e2e/modern-root.sh (DESIGN.md, "The modern stack").
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = []
cgroup_controllers = []
stdio_handler = "file"
EOF

{
    echo "recipe $recipe"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - t0 )) s from $mirror"
    for p in $packages_bpo; do
        chroot "$build" dpkg-query -W -f='${Package} ${Version}\n' "$p"
    done
} >"$build/.collectd-balloon-e2e-root.new"
mv "$build/.collectd-balloon-e2e-root.new" "$build/.collectd-balloon-e2e-root"
rm -rf "$root"
mv "$build" "$root"
trap - EXIT
echo "modern-root: root ready after $(( $(date +%s) - t0 )) s: $(sed -n '3,$p' "$stamp" | tr '\n' ' ')" >&2
echo "$root"
