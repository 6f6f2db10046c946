#!/usr/bin/env bash
# Builds the pcivmm Linux guest (see README.md):
#   OUTDIR/vmlinuz            bzImage of Debian 12's linux-image-cloud-amd64 (its versioned package)
#   OUTDIR/config             that kernel's build configuration, for reference
#   OUTDIR/initramfs.cpio.gz  busybox-static, /init, /bin/pcivmm-boot-marker, /bin/pcivmm-cfg-storm
# Incremental: each output is rebuilt only when an input is newer (or the kernel package changed).
# The kernel .deb is kept in $PCIVMM_GUEST_CACHE (default /var/cache/pcivmm-guest)/debs: with it
# there, no network is needed. The cmake target linux_guest runs this.
#
# usage: guest-images/linux/build.sh OUTDIR
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly SRC_ROOT=$HERE/../..
readonly CACHE=${PCIVMM_GUEST_CACHE:-/var/cache/pcivmm-guest}
readonly KERNEL_META=linux-image-cloud-amd64
readonly BUSYBOX=/bin/busybox

log() { echo "linux-guest: $*" >&2; }
die() {
	log "$*"
	exit 1
}
vlog() { log "$@"; }
# shellcheck source=SCRIPTDIR/kernel_deb.sh
source "$HERE/kernel_deb.sh"

check_tools() {
	local -A package_of=(
		[apt-get]=apt [apt-cache]=apt [dpkg-deb]=dpkg [dpkg-query]=dpkg [tar]=tar [gzip]=gzip
		[flock]=util-linux ["${CXX:-c++}"]="g++ (or clang)"
	)
	local tool missing=()
	for tool in "${!package_of[@]}"; do
		command -v "$tool" >/dev/null || missing+=("${package_of[$tool]} (for $tool)")
	done
	# The guest runs busybox with no libraries around it: it must be the static build.
	if [[ $(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null) != installed ]]; then
		missing+=("busybox-static (for a static $BUSYBOX)")
	fi
	((${#missing[@]} == 0)) || die "missing Debian packages: ${missing[*]}"
}

up_to_date() { # OUT IN... -> OUT exists and is newer than every IN
	local out=$1 in
	shift
	[[ -e $out ]] || return 1
	for in; do [[ $out -nt $in ]] || return 1; done
}

# --- the kernel ---------------------------------------------------------------------------------

build_kernel() { # OUTDIR WORKDIR
	local out=$1 work=$2 deb d
	deb=$(fetch_kernel_deb "$KERNEL_META" "$CACHE/debs" "$work")
	if up_to_date "$out/vmlinuz" "$deb" "$HERE/build.sh" &&
		[[ $(cat "$out/kernel-package" 2>/dev/null) == "${deb##*/}" ]]; then
		return 0
	fi
	log "extracting the kernel from ${deb##*/}"
	mkdir -p "$work/pkg"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$work/pkg" --wildcards './boot/vmlinuz-*' './boot/config-*'
	local -a bz=("$work/pkg"/boot/vmlinuz-*) config=("$work/pkg"/boot/config-*)
	[[ -f ${bz[0]} && -f ${config[0]} ]] || die "$deb: no /boot/vmlinuz-* or /boot/config-*"
	cp "${config[0]}" "$out/config"
	echo "${deb##*/}" >"$out/kernel-package"
	cp "${bz[0]}" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz" # last: the stamp
	for d in "$CACHE"/debs/*.deb; do [[ $d == "$deb" ]] || rm -f "$d"; done
}

# --- the initramfs ------------------------------------------------------------------------------

build_static_program() { # SRC OUT: a freestanding static program (no libc in the initramfs)
	local src=$1 out=$2
	up_to_date "$out" "$src" "$HERE/freestanding.h" "$SRC_ROOT/guest-images/include/pcivmm_guest_abi.h" \
		"$HERE/build.sh" && return 0
	log "compiling $out"
	"${CXX:-c++}" -std=c++20 -Os -static -nostdlib -ffreestanding -fno-exceptions -fno-rtti \
		-fno-pie -fno-stack-protector -fcf-protection=none -mgeneral-regs-only \
		-fno-asynchronous-unwind-tables -Wall -Wextra -Wconversion -Werror -I "$SRC_ROOT" \
		-Wl,--build-id=none -s -o "$out" "$src"
}

# One entry of a "newc" cpio archive, the format the kernel unpacks
# (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte header of "070701"
# and 13 eight-digit hex fields, the NUL-terminated name, padding to 4 bytes, the data, padding.
# Written here rather than by cpio(1) so that /dev/console is a device node without root, and
# so that the archive is reproducible (uid, gid and mtime are 0).
newc_entry() { # NAME MODE(octal) RDEV_MAJOR RDEV_MINOR [FILE]
	local name=$1 file=${5:-} size=0
	[[ -z $file ]] || size=$(stat -c %s "$file")
	ino=$((ino + 1))
	# ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$ino" $((8#$2)) 0 0 1 0 "$size" 0 0 "$3" "$4" $((${#name} + 1)) 0
	printf '%s\0' "$name"
	pad4 $((110 + ${#name} + 1))
	if [[ -n $file ]]; then
		cat "$file"
		pad4 "$size"
	fi
}

pad4() { head -c $(((4 - $1 % 4) % 4)) /dev/zero; }

build_initramfs() { # OUTDIR
	local out=$1 marker=$1/pcivmm-boot-marker storm=$1/pcivmm-cfg-storm
	build_static_program "$HERE/boot_marker.cc" "$marker"
	build_static_program "$HERE/cfg_storm.cc" "$storm"
	up_to_date "$out/initramfs.cpio.gz" "$HERE/init" "$BUSYBOX" "$marker" "$storm" "$HERE/build.sh" &&
		return 0
	log "packing $out/initramfs.cpio.gz"
	local ino=0
	{
		newc_entry dev 40755 0 0
		newc_entry dev/console 20600 5 1 # char 5:1, so the kernel opens init's stdio
		newc_entry proc 40755 0 0
		newc_entry sys 40755 0 0
		newc_entry bin 40755 0 0
		newc_entry bin/busybox 100755 0 0 "$BUSYBOX"
		newc_entry bin/pcivmm-boot-marker 100755 0 0 "$marker"
		newc_entry bin/pcivmm-cfg-storm 100755 0 0 "$storm"
		newc_entry init 100755 0 0 "$HERE/init"
		newc_entry 'TRAILER!!!' 0 0 0
	} | gzip -9 -n >"$out/initramfs.cpio.gz.tmp"
	mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
}

main() {
	(($# == 1)) || {
		echo "usage: $0 OUTDIR" >&2
		exit 2
	}
	local out=$1 work lock_fd
	check_tools
	mkdir -p "$out"
	if ! mkdir -p "$CACHE" 2>/dev/null || [[ ! -w $CACHE ]]; then
		die "cache $CACHE is not writable (run as root or set PCIVMM_GUEST_CACHE)"
	fi
	# One build at a time per cache: one download, and no two writers of one OUTDIR.
	exec {lock_fd}>"$CACHE/build.lock"
	flock -x "$lock_fd"
	rm -rf "$CACHE"/tmp.* # we hold the lock: these are from killed builds
	work=$(mktemp -d "$CACHE/tmp.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now: it is local
	trap "rm -rf -- '$work'" EXIT
	build_kernel "$out" "$work"
	build_initramfs "$out"
	log "$out: vmlinuz ($(cat "$out/kernel-package")), initramfs.cpio.gz"
}

main "$@"
