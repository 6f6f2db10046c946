# shellcheck shell=bash
# The lab's image: Debian's kernel and an initramfs with its modules and init.sh, built once per
# recipe and cached. Sourced by lab.sh, which provides LAB_DIR, CACHE, the module lists, log, die
# and vlog.
# --- preparation: kernel + initramfs, built once per recipe ---------------------------------------
#
# Cache layout:
#   build.lock          serializes builds (one download, one extraction at a time)
#   debs/               the kernel package, reused across recipe changes
#   r-<hash>/           vmlinux, initramfs.cpio, stamp; published by one rename, so never partial
#   r-<hash>.lock       held shared by every run using r-<hash>; a build prunes old recipes only
#                       when it can take their lock exclusively (nobody is booting from them)

recipe_hash() {
	cat "$LAB_DIR/lab.sh" "$LAB_DIR/lab_image.sh" "$LAB_DIR/init.sh" | sha256sum | cut -c1-16
}

le_uint() { # FILE OFFSET BYTES -> unsigned little-endian integer
	od -An -t "u$3" -j "$2" -N "$3" "$1" | tr -d ' '
}

# QEMU boots the uncompressed ELF through its PVH note; skipping the in-guest XZ inflate saves
# ~2.7 s per boot under TCG. Layout (x86 boot protocol): setup_sects at 497, the protected-mode
# code after (setup_sects + 1) sectors, payload_offset/payload_length at 584/588 relative to it,
# and the payload ends in a 4-byte little-endian uncompressed size.
extract_vmlinux() { # BZIMAGE OUT
	local bz=$1 out=$2 sects start len want got magic
	[[ $(dd if="$bz" bs=1 skip=514 count=4 status=none) == HdrS ]] || die "$bz: not a bzImage"
	sects=$(le_uint "$bz" 497 1)
	((sects)) || sects=4 # protocol: 0 means 4
	start=$(((sects + 1) * 512 + $(le_uint "$bz" 584 4)))
	len=$(le_uint "$bz" 588 4)
	magic=$(od -An -t x1 -j "$start" -N 6 "$bz" | tr -d ' ')
	[[ $magic == fd377a585a00 ]] || die "$bz: payload is not XZ (magic $magic)"
	want=$(le_uint "$bz" $((start + len - 4)) 4)
	# xz's exit status is not trusted either way (with the size word it fails on "trailing
	# garbage"); the size word and the ELF magic are the check.
	dd if="$bz" iflag=skip_bytes,count_bytes skip="$start" count=$((len - 4)) bs=1M status=none |
		xz -dc >"$out" || true
	got=$(stat -c %s "$out")
	[[ $got == "$want" ]] || die "$bz: decompressed $got bytes, the payload says $want"
	[[ $(od -An -t x1 -N 4 "$out" | tr -d ' ') == 7f454c46 ]] || die "$bz: payload is not an ELF"
}

# Loads MODULE's dependencies first (depth-first), decompressing each into the initramfs.
# Uses the caller's mod_file, builtin, added, moddir and order_file.
add_module() { # MODULE
	local name=${1//-/_} file dest deps dep
	[[ -z ${added[$name]:-} && -z ${builtin[$name]:-} ]] || return 0
	file=${mod_file[$name]:-}
	[[ -n $file ]] || die "kernel module $name not found in the kernel package"
	added[$name]=1
	dest=$moddir/$name.ko
	case $file in
	*.ko) cp "$file" "$dest" ;;
	*.ko.xz) xz -dc "$file" >"$dest" ;;
	*.ko.gz) gzip -dc "$file" >"$dest" ;;
	*.ko.zst)
		command -v zstd >/dev/null || die "missing Debian package: zstd (for $file)"
		zstd -qdc "$file" >"$dest"
		;;
	*) die "unknown module format: $file" ;;
	esac
	deps=$(tr '\0' '\n' <"$dest" | sed -n 's/^depends=//p')
	for dep in ${deps//,/ }; do add_module "$dep"; done
	echo "$name" >>"$order_file"
}

build_initramfs() { # KERNEL_MODULES_DIR TREE OUT
	local kmods=$1 root=$2 out=$3 f base
	mkdir -p "$root"/{bin,dev,proc,sys,lib/modules,mnt/lower,mnt/upper,mnt/root}
	cp /bin/busybox "$root/bin/busybox"
	cp "$LAB_DIR/init.sh" "$root/init"
	chmod 0755 "$root/init" "$root/bin/busybox"

	local -A mod_file=() builtin=() added=()
	while IFS= read -r -d '' f; do
		base=${f##*/}
		base=${base%%.ko*}
		mod_file[${base//-/_}]=$f
	done < <(find "$kmods/kernel" -name '*.ko*' -print0)
	while IFS= read -r f; do
		base=${f##*/}
		base=${base%.ko}
		builtin[${base//-/_}]=1
	done <"$kmods/modules.builtin"
	local moddir=$root/lib/modules order_file=$root/lib/modules/order m
	for m in "${ROOT_MODULES[@]}"; do add_module "$m"; done
	vlog "modules: $(paste -sd ' ' "$order_file")"
	order_file=$root/lib/modules/order.vfio
	: >"$order_file"
	for m in "${VFIO_MODULES[@]}"; do add_module "$m"; done
	vlog "vfio modules: $(paste -sd ' ' "$order_file")"

	# Uncompressed: inflating even gzip under TCG costs ~0.5 s per boot.
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet) >"$out"
}

build_recipe() { # HASH RECIPE_DIR
	local hash=$1 rdir=$2 work deb pkgdir start
	start=$(now_us)
	log "preparing the lab kernel and initramfs in $CACHE (once per recipe, ~15 s)"
	# We hold build.lock, so any temp dir left is from a killed build.
	rm -rf "$CACHE"/tmp.*
	work=$(mktemp -d "$CACHE/tmp.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now: it is local
	trap "rm -rf -- '$work'" EXIT
	deb=$(fetch_kernel_deb linux-image-amd64 "$CACHE/debs" "$work")
	pkgdir=$work/pkg
	dpkg-deb -x "$deb" "$pkgdir"
	local -a bz=("$pkgdir"/boot/vmlinuz-*) kmods=("$pkgdir"/lib/modules/*)
	[[ -f ${bz[0]} && -d ${kmods[0]} ]] || die "$deb: no /boot/vmlinuz-* or /lib/modules/*"

	mkdir "$work/out"
	extract_vmlinux "${bz[0]}" "$work/out/vmlinux"
	build_initramfs "${kmods[0]}" "$work/initramfs" "$work/out/initramfs.cpio"
	{
		echo "recipe=$hash"
		echo "kernel_deb=${deb##*/}"
		echo "modules=$(paste -sd ' ' "$work/initramfs/lib/modules/order")"
		echo "vfio_modules=$(paste -sd ' ' "$work/initramfs/lib/modules/order.vfio")"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$work/out/stamp"
	rm -rf "$rdir"
	mv "$work/out" "$rdir"
	rm -rf "$work"
	trap - EXIT
	prune_cache "$rdir" "$deb"
	log "lab prepared in $(seconds_since "$start") s: $(paste -sd ' ' "$rdir/stamp")"
}

prune_cache() { # KEEP_RECIPE_DIR KEEP_DEB
	local d f
	for d in "$CACHE"/r-*/; do
		d=${d%/}
		[[ $d != "$1" ]] || continue
		# Lock files stay: deleting one would let two runs lock different inodes of "the same" lock.
		(flock -xn 9 && rm -rf "$d") 9>"$d.lock" || true
	done
	for f in "$CACHE"/debs/*.deb; do
		[[ ! -e $f || $f == "$2" ]] || rm -f "$f"
	done
}

# Sets VMLINUX and INITRD. Holds r-<hash>.lock shared until lab.sh (and QEMU, which inherits the
# descriptor) exits, so a concurrent build of another recipe cannot prune the files under us.
prepare() {
	if ! mkdir -p "$CACHE" 2>/dev/null || [[ ! -w $CACHE ]]; then
		die "cache $CACHE is not writable (run as root or set PCIVMM_LAB_CACHE)"
	fi
	local hash rdir use_fd build_fd
	hash=$(recipe_hash)
	rdir=$CACHE/r-$hash
	exec {use_fd}>"$rdir.lock"
	flock -s "$use_fd"
	if [[ ! -f $rdir/stamp ]]; then
		exec {build_fd}>"$CACHE/build.lock"
		flock -x "$build_fd"
		[[ -f $rdir/stamp ]] || build_recipe "$hash" "$rdir"
		exec {build_fd}>&-
	fi
	VMLINUX=$rdir/vmlinux
	INITRD=$rdir/initramfs.cpio

}
