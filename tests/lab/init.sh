#!/bin/busybox sh
# PID 1 of the nested KVM lab's outer guest; lab.sh packs it into the initramfs as /init.
#
# Contract with lab.sh (keep both sides in step; a change here changes the recipe hash, so the
# cache is rebuilt):
#   kernel command line  lab_out=<host outdir>  lab_job=<job script inside that outdir>
#                        lab_vfio=1: load lib/modules/order.vfio and bind every ivshmem and edu
#                        device to vfio-pci (lab.sh --vfio-*)
#                        (unknown name=value parameters without a dot reach init as environment)
#   console lines        LAB_READY           just before the job starts
#                        LAB_HEARTBEAT       every 15 s while the job runs (not the job's output)
#                        JOB_DONE rc=<N>     after it, with its exit status
#                        LAB_ERROR: <why>    setup failed; no JOB_DONE follows
# shellcheck shell=sh

# The cpio has no /dev/console node (making one needs root at prepare time), so the kernel
# started us without stdio: get devtmpfs first and take the console from there.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin

# Everything after JOB_DONE is ignored by lab.sh, so power off right after reporting.
finish() {
	sync
	poweroff -f
}

fail() {
	echo "LAB_ERROR: $*"
	echo "--- last kernel messages ---"
	dmesg | tail -n 30
	finish
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys

if [ -z "${lab_out:-}" ] || [ -z "${lab_job:-}" ]; then
	fail "lab_out= or lab_job= missing from the kernel command line"
fi

# Order computed from each module's .modinfo depends= when the initramfs was built. A failure is
# not fatal here: the mount or /dev/kvm check that depends on it fails below with a clearer message.
while read -r mod; do
	insmod "/lib/modules/$mod.ko" || echo "lab-init: insmod $mod failed"
done </lib/modules/order

# The host root, read-only; a tmpfs overlay gives the job a writable view that the host never sees.
# (A tmpfs mounted on the new root's /tmp instead would hide the host's /tmp.)
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /mnt/lower ||
	fail "cannot mount the host root (9p hostroot)"
mount -t tmpfs -o mode=0755 lab-upper /mnt/upper
mkdir -p /mnt/upper/data /mnt/upper/work
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/upper/data,workdir=/mnt/upper/work \
	lab-root /mnt/root || fail "cannot mount the overlay root"

root=/mnt/root
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t devtmpfs devtmpfs "$root/dev"
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
mount -t tmpfs -o mode=0755 run "$root/run"
# The only writable share: same absolute path as on the host, so paths the job prints or writes
# mean the same thing on both sides. cache=none (the default) makes writes reach the host at once.
mkdir -p "$root$lab_out"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out "$root$lab_out" ||
	fail "cannot mount the output share at $lab_out"

# Tests talk to servers they start on 127.0.0.1; the guest has no other network.
ip link set lo up

# Device nodes appear asynchronously (devtmpfs): waits up to 5 s for a character device.
wait_for_chardev() { # PATH
	tries=0
	while [ ! -c "$1" ] && [ "$tries" -lt 50 ]; do
		usleep 100000
		tries=$((tries + 1))
	done
	[ -c "$1" ]
}

# kvm-amd registers the misc device synchronously, but devtmpfs creates the node asynchronously.
wait_for_chardev "$root/dev/kvm" || fail "/dev/kvm did not appear"

# shared/VFIO-LAB.md: bind by vendor:device (BDFs move when devices are added); the job learns
# the BDFs from PCIVMM_VFIO_IVSHMEM and PCIVMM_VFIO_EDU.
vfio_ivshmem="" vfio_edu=""
bind_vfio() {
	while read -r mod; do
		insmod "/lib/modules/$mod.ko" || echo "lab-init: insmod $mod failed"
	done </lib/modules/order.vfio
	for dev in /sys/bus/pci/devices/*; do
		case "$(cat "$dev/vendor"):$(cat "$dev/device")" in
		0x1af4:0x1110) kind=ivshmem ;;
		0x1234:0x11e8) kind=edu ;;
		*) continue ;;
		esac
		bdf=${dev##*/}
		[ -e "$dev/iommu_group" ] || fail "VFIO: $bdf has no IOMMU group (no IOMMU enabled?)"
		echo vfio-pci >"$dev/driver_override"
		echo "$bdf" >/sys/bus/pci/drivers_probe
		group=$(readlink "$dev/iommu_group")
		wait_for_chardev "/dev/vfio/${group##*/}" ||
			fail "VFIO: /dev/vfio/${group##*/} for $bdf did not appear"
		if [ "$kind" = ivshmem ]; then
			vfio_ivshmem="${vfio_ivshmem:+$vfio_ivshmem }$bdf"
		else
			vfio_edu="${vfio_edu:+$vfio_edu }$bdf"
		fi
	done
}
if [ -n "${lab_vfio:-}" ]; then bind_vfio; fi

echo LAB_READY
# lab.sh takes a silent console for a wedged outer kernel (see watch_heartbeat there).
(while sleep 15; do echo LAB_HEARTBEAT; done) &
heartbeat=$!
# A fixed, minimal environment: the job must not depend on whatever the host shell had.
env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM=dumb LANG=C.UTF-8 \
	PCIVMM_LAB=1 PCIVMM_LAB_OUT="$lab_out" \
	PCIVMM_VFIO_IVSHMEM="$vfio_ivshmem" PCIVMM_VFIO_EDU="$vfio_edu" \
	/bin/chroot "$root" /bin/sh "$lab_job"
rc=$?
kill "$heartbeat"
sync
echo "JOB_DONE rc=$rc"
finish
