#!/bin/sh
# Builds a busybox initramfs for the e2e guests.
#   mkinitramfs.sh KERNEL_DIR OUT.cpio with-balloon|without-balloon
# KERNEL_DIR is what fetch-kernel.sh made (vmlinuz, modules/*.ko, and builtin: the modules the kernel
# has built in, which need no file). The image holds busybox-static,
# tests/e2e/guest-init.sh as /init, and the virtio modules; "without-balloon" leaves out
# virtio_balloon.ko, so that guest never answers a stats request (last-update stays 0). Uncompressed:
# TCG unpacks it faster than it would decompress it, and it is only a few MiB.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 KERNEL_DIR OUT.cpio with-balloon|without-balloon" >&2; exit 2; }
kdir=$1
out=$2
mode=$3
here=$(cd "$(dirname "$0")" && pwd)

case "$mode" in
    with-balloon) modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon" ;;
    without-balloon) modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci" ;;
    *) echo "mkinitramfs: unknown mode '$mode'; expected with-balloon or without-balloon." >&2; exit 2 ;;
esac

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "mkinitramfs: busybox was not found; install busybox-static." >&2; exit 1; }
# A dynamically linked busybox would need its libraries in the image: insist on the static one.
if ! "$busybox" 2>&1 | head -n 1 | grep -q BusyBox || ldd "$busybox" >/dev/null 2>&1; then
    echo "mkinitramfs: '$busybox' is not a static busybox; install busybox-static." >&2
    exit 1
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/e2e-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM
mkdir -p "$stage/bin" "$stage/sbin" "$stage/usr/bin" "$stage/usr/sbin" "$stage/lib/modules" \
         "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp"
cp "$busybox" "$stage/bin/busybox"
cp "$here/guest-init.sh" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"
for m in $modules; do
    # a module the kernel has built in (fetch-kernel.sh lists it in builtin) needs no file
    grep -qxF "$m" "$kdir/builtin" 2>/dev/null && continue
    [ -f "$kdir/modules/$m.ko" ] || { echo "mkinitramfs: '$kdir/modules/$m.ko' is missing." >&2; exit 1; }
    cp "$kdir/modules/$m.ko" "$stage/lib/modules/"
done

tmp_out="$out.tmp.$$"
(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' | sort | "$busybox" cpio -o -H newc -R 0:0 >"$tmp_out" 2>/dev/null)
mv "$tmp_out" "$out"
