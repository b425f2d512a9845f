#!/bin/sh
# Prints the directory that holds a Debian guest kernel (vmlinuz) and the virtio modules the e2e
# guests load (modules/*.ko), fetching it first if needed. When the kernel has a PVH entry point (Xen
# ELF note 18; Debian's has), the directory also holds vmlinux-pvh, the uncompressed ELF kernel: QEMU
# boots it directly, without SeaBIOS's real-mode path and without decompressing bzImage under TCG,
# which saves several seconds per guest on a loaded machine.
#   fetch-kernel.sh [CACHE_DIR]    (default: $E2E_CACHE or /var/cache/collectd-balloon-e2e)
# The kernel is the package that linux-image-amd64 depends on, downloaded with `apt-get download` and
# unpacked with `dpkg -x`; only the kernel and the few modules are kept, under CACHE_DIR/PACKAGE, so later
# runs (and other checkouts) reuse it without the network. With no apt metadata or no network, any
# kernel already in the cache is used.
# E2E_APT_OPTS: options for apt-cache and apt-get (word-split), e.g. to read another suite's lists
# (modern-lib.sh: bookworm-backports). E2E_KERNEL_MODULES: the modules the guests load (default: the
# six virtio modules); one the kernel has built in (modules.builtin) is listed in DIR/builtin instead.
set -eu
cache=${1:-${E2E_CACHE:-/var/cache/collectd-balloon-e2e}}
modules=${E2E_KERNEL_MODULES:-virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon}
apt_opts=${E2E_APT_OPTS:-}

complete() {
    [ -f "$1/vmlinuz" ] || return 1
    for m in $modules; do
        [ -f "$1/modules/$m.ko" ] || grep -qxF "$m" "$1/builtin" 2>/dev/null || return 1
    done
    return 0
}

# extract_pvh BZIMAGE OUT: the ELF kernel inside a bzImage, if it decompresses and has a PVH note.
extract_pvh() {
    command -v readelf >/dev/null || return 1
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08\x00'; do
        for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$1" | cut -d: -f1 | head -n 4); do
            case "${magic%%:*}" in
                xz) tail -c +$((off + 1)) "$1" | xz -dc --single-stream >"$2" 2>/dev/null ;;
                zstd) tail -c +$((off + 1)) "$1" | zstd -qdc >"$2" 2>/dev/null ;;
                gzip) tail -c +$((off + 1)) "$1" | gzip -dc >"$2" 2>/dev/null ;;
            esac
            if readelf -h "$2" 2>/dev/null | grep -q 'EXEC' \
               && readelf -n "$2" 2>/dev/null | awk '/Xen/ && /0x00000012/ { f = 1 } END { exit !f }'; then
                return 0
            fi
        done
    done
    return 1
}

# finish DIR: adds vmlinux-pvh to a cached kernel if it can have one (once), prints DIR, and exits.
finish() {
    if [ ! -f "$1/vmlinux-pvh" ] && [ ! -f "$1/no-pvh" ]; then
        if extract_pvh "$1/vmlinuz" "$1/.vmlinux-pvh.$$"; then
            chmod a+r "$1/.vmlinux-pvh.$$"
            mv "$1/.vmlinux-pvh.$$" "$1/vmlinux-pvh"
        else
            rm -f "$1/.vmlinux-pvh.$$"
            : >"$1/no-pvh"
        fi
    fi
    echo "$1"
    exit 0
}

# shellcheck disable=SC2086
pkg=$(apt-cache $apt_opts depends linux-image-amd64 2>/dev/null \
      | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }') || pkg=""
if [ -n "$pkg" ] && complete "$cache/$pkg"; then
    finish "$cache/$pkg"
fi
if [ -z "$pkg" ]; then
    for d in "$cache"/linux-image-*; do
        if complete "$d"; then finish "$d"; fi
    done
    echo "fetch-kernel: apt-cache does not know linux-image-amd64 and '$cache' holds no kernel; run apt-get update." >&2
    exit 1
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# Root's apt-get download drops privileges to _apt, which cannot write here: keep it as root.
# shellcheck disable=SC2086
if ! (cd "$work" && apt-get $apt_opts download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>"$work/apt.err"); then
    for d in "$cache"/linux-image-*; do
        if complete "$d"; then finish "$d"; fi
    done
    echo "fetch-kernel: 'apt-get download $pkg' failed: $(grep -m 1 '^E:' "$work/apt.err" || tail -n 1 "$work/apt.err")" >&2
    exit 1
fi
dpkg -x "$work"/*.deb "$work/root"
mkdir -p "$work/out/modules"
cp "$work"/root/boot/vmlinuz-* "$work/out/vmlinuz"
for m in $modules; do
    f=$(find "$work/root/lib/modules" -name "$m.ko*" | head -n 1)
    if [ -z "$f" ] && grep -q "/$m\.ko\$" "$work"/root/lib/modules/*/modules.builtin 2>/dev/null; then
        echo "$m" >>"$work/out/builtin"
        continue
    fi
    case "$f" in
        "") echo "fetch-kernel: '$pkg' has no module '$m', neither loadable nor built in." >&2
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
finish "$cache/$pkg"
