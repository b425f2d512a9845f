#!/bin/sh
# Prints the directory that holds a Debian guest kernel (vmlinuz) and the virtio modules the e2e
# guests load (modules/*.ko), fetching it first if needed.
#   fetch-kernel.sh [CACHE_DIR]    (default: $E2E_CACHE or /var/cache/collectd-balloon-e2e)
# The kernel is the package that linux-image-amd64 depends on, downloaded with `apt-get download` and
# unpacked with `dpkg -x`; only vmlinuz and the few modules are kept, under CACHE_DIR/PACKAGE, so later
# runs (and other checkouts) reuse it without the network. With no apt metadata or no network, any
# kernel already in the cache is used.
set -eu
cache=${1:-${E2E_CACHE:-/var/cache/collectd-balloon-e2e}}
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon"

complete() {
    [ -f "$1/vmlinuz" ] || return 1
    for m in $modules; do [ -f "$1/modules/$m.ko" ] || return 1; done
    return 0
}

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
      | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }') || pkg=""
if [ -n "$pkg" ] && complete "$cache/$pkg"; then
    echo "$cache/$pkg"
    exit 0
fi
if [ -z "$pkg" ]; then
    for d in "$cache"/linux-image-*; do
        if complete "$d"; then echo "$d"; exit 0; fi
    done
    echo "fetch-kernel: apt-cache does not know linux-image-amd64 and '$cache' holds no kernel; run apt-get update." >&2
    exit 1
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# Root's apt-get download drops privileges to _apt, which cannot write here: keep it as root.
if ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>"$work/apt.err"); then
    for d in "$cache"/linux-image-*; do
        if complete "$d"; then echo "$d"; exit 0; fi
    done
    echo "fetch-kernel: 'apt-get download $pkg' failed: $(tail -n 1 "$work/apt.err")" >&2
    exit 1
fi
dpkg -x "$work"/*.deb "$work/root"
mkdir -p "$work/out/modules"
cp "$work"/root/boot/vmlinuz-* "$work/out/vmlinuz"
for m in $modules; do
    f=$(find "$work/root/lib/modules" -name "$m.ko*" | head -n 1)
    case "$f" in
        "") echo "fetch-kernel: '$pkg' has no module '$m' (built in?); the e2e guests need it as a module." >&2
            exit 1 ;;
        *.ko) cp "$f" "$work/out/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" >"$work/out/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$work/out/modules/$m.ko" ;;
        *) echo "fetch-kernel: '$f' has a compression this script does not know." >&2; exit 1 ;;
    esac
done
chmod -R a+rX "$work/out"
rm -rf "${cache:?}/$pkg"
mv "$work/out" "$cache/$pkg"
echo "$cache/$pkg"
