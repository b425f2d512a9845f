#!/bin/sh
# Installs every Debian package that the build, the demo and the tests need. Idempotent: installs
# only what is missing, and runs apt-get update at most once per call.
set -eu

packages="
autoconf automake libtool make gcc pkg-config
libvirt-dev libyajl-dev libcmocka-dev
collectd-core collectd-dev
libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
busybox-static cpio socat procps xz-utils binutils
debootstrap
iproute2
jq
python3 mawk
gnuplot-nox
clang libclang-rt-14-dev valgrind
prometheus prometheus-alertmanager libmicrohttpd12 libprotobuf-c1
chromium fonts-dejavu-core
dpkg-dev debhelper lintian debootstrap git
"

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: these packages are missing and only root can install them:$missing" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
