# Sourced by guest-images/linux/build.sh and tests/lab/lab.sh (bash): fetches the Debian kernel
# package behind a metapackage (linux-image-amd64, linux-image-cloud-amd64) into a cache.
# The caller defines log MSG, vlog MSG (verbose only) and die MSG (does not return).
# shellcheck shell=bash

# Resolves the versioned package behind META and leaves its .deb in DEBDIR; prints the .deb's
# path. Needs no network when it is there. Stale package lists (a 404, or no lists at all) get
# one apt-get update. WORKDIR holds the logs and the download in progress.
fetch_kernel_deb() { # META DEBDIR WORKDIR
	local meta=$1 debdir=$2 work=$3 attempt
	for attempt in 1 2; do
		if try_fetch_kernel_deb "$meta" "$debdir" "$work"; then return 0; fi
		((attempt == 1)) || break
		log "kernel package not found/downloadable; running apt-get update once"
		apt-get -q update >"$work/apt-update.log" 2>&1 ||
			die "apt-get update failed: $(tail -n 5 "$work/apt-update.log")"
	done
	die "cannot download the kernel package: $(tail -n 5 "$work/apt.log")"
}

try_fetch_kernel_deb() { # META DEBDIR WORKDIR
	local meta=$1 debdir=$2 work=$3 depends pkg ver deb
	depends=$(apt-cache show --no-all-versions "$meta" 2>"$work/apt.log" |
		sed -n 's/^Depends: //p') || true
	# e.g. "linux-image-6.1.0-56-amd64 (= 6.1.192-2)"
	[[ $depends =~ (linux-image-[^ ,|]+)\ \(=\ ([^\)]+)\) ]] || {
		echo "$meta has no versioned kernel dependency: '$depends'" >>"$work/apt.log"
		return 1
	}
	pkg=${BASH_REMATCH[1]} ver=${BASH_REMATCH[2]}
	deb=$debdir/${pkg}_${ver//:/%3a}_amd64.deb
	if [[ ! -f $deb ]]; then
		vlog "downloading $pkg=$ver"
		mkdir -p "$work/dl" "$debdir"
		# As root, apt would drop to _apt, which cannot write into our private temp dir.
		local -a sandbox=()
		((EUID)) || sandbox=(-o APT::Sandbox::User=root)
		(cd "$work/dl" && apt-get -q "${sandbox[@]}" download "$pkg=$ver") >>"$work/apt.log" 2>&1 ||
			return 1
		mv "$work/dl/"*.deb "$deb" || return 1
	fi
	echo "$deb"
}
