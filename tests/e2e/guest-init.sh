#!/bin/busybox sh
# PID 1 of the e2e guests (busybox initramfs built by mkinitramfs.sh). It loads whatever virtio modules
# the image holds, in dependency order (the image without virtio_balloon.ko gives the driverless
# guest), says "e2e: ready" on the serial console, then obeys one-line commands typed on that console
# by the host (the test writes them to the serial port's UNIX socket):
#   rmmod   unload virtio_balloon: the device stops answering stats requests, as a guest would whose
#           driver is removed
#   ping    answer "e2e: pong" (lets the host check the channel)
#   oom     run three 120 MiB allocations at once (more than a 256 MiB guest has: the kernel's OOM
#           killer ends some), then report "e2e: oom done: killed K of 3, oom_kill A -> B, allocstall
#           C -> D": how many were killed, and the kernel's own counters (/proc/vmstat) before and
#           after, the ones Linux 6.12's virtio_balloon sends as stat-oom-kills and stat-alloc-stalls
# With e2e.churn=1 on the kernel command line it also changes its memory use every second, so that
# the balloon's free-memory stat moves and a value can be tied to the update it came from.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp
mount -t tmpfs tmpfs /tmp

for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon; do
    [ -f "/lib/modules/$m.ko" ] || continue
    insmod "/lib/modules/$m.ko" || echo "e2e: insmod $m failed"
done
if [ -d /sys/bus/virtio/drivers/virtio_balloon ]; then
    echo "e2e: ready, balloon driver loaded"
else
    echo "e2e: ready, no balloon driver"
fi

if grep -q 'e2e.churn=1' /proc/cmdline; then
    (
        i=0
        while :; do
            # 0..63 blocks of 64 KiB in tmpfs: free memory changes by a different amount each second.
            dd if=/dev/zero of=/tmp/churn bs=65536 count=$(( (i * 37) % 64 )) 2>/dev/null
            i=$((i + 1))
            sleep 1
        done
    ) &
fi

# The command loop. The console is ttyS0; its input comes from the host through the serial socket.
exec 3</dev/ttyS0
while :; do
    if ! read -r cmd <&3; then
        sleep 1
        continue
    fi
    case "$cmd" in
        *rmmod*)
            if rmmod virtio_balloon; then
                echo "e2e: rmmod done"
            else
                echo "e2e: rmmod failed"
            fi
            ;;
        *ping*)
            echo "e2e: pong"
            ;;
        *oom*)
            k0=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat)
            s0=$(awk '$1 ~ /^allocstall_/ { s += $2 } END { print s + 0 }' /proc/vmstat)
            pids=""
            for i in 1 2 3; do
                dd if=/dev/zero of=/dev/null bs=120M count=1 2>/dev/null &
                pids="$pids $!"
            done
            killed=0
            for p in $pids; do
                wait "$p"
                [ $? = 137 ] && killed=$((killed + 1)) # SIGKILL: the OOM killer
            done
            k1=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat)
            s1=$(awk '$1 ~ /^allocstall_/ { s += $2 } END { print s + 0 }' /proc/vmstat)
            echo "e2e: oom done: killed $killed of 3, oom_kill $k0 -> $k1, allocstall $s0 -> $s1"
            ;;
    esac
done
