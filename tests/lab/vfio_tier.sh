#!/usr/bin/env bash
# The VFIO tier (./dev test): real passthrough devices inside the nested lab.
#
# Seeds an ivshmem backing file from outside, boots the lab with an emulated IOMMU and an
# ivshmem-plain (RAM BAR2 = that file) and an edu device bound to vfio-pci (lab.sh --vfio-*),
# runs the `vfio` ctest label there, then checks from outside what the inner guests wrote into
# the file: the host -> outer QEMU -> outer guest's VFIO -> pcivmm -> inner guest chain, both ways.
#
# usage: tests/lab/vfio_tier.sh BUILD_DIR [-- CMD...]   (default CMD: tests/run_tier.sh vfio BUILD_DIR)
# The file layout the tests rely on (tests/kvm/vfio_lab.h):
#   0x0000  "PVMMSEED"         written here
#   0x0008  seed, u64 LE        written here, also passed as PCIVMM_VFIO_SEED
#   0x0010  0x600DF00D (u32)    written by the Linux guest (pcivmm.bar=...,2 in its /init)
#   0x1000  0x600DF00DC0FFEE00  written by the freestanding guest (vfio_test.bin mode 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(cd "${1:?usage: vfio_tier.sh BUILD_DIR [-- CMD...]}" && pwd)
shift
[[ ${1:-} == -- ]] && shift
(($#)) || set -- tests/run_tier.sh vfio "$build"

out=$build/lab-vfio
file=$out/ivshmem.bin
mkdir -p "$out"
rm -f "$file"
truncate -s "${PCIVMM_VFIO_IVSHMEM_SIZE:-256M}" "$file"

le64() { # VALUE -> 8 bytes, little-endian
	local v=$1 i
	for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"; done
}
seed=$(((RANDOM << 30) | (RANDOM << 15) | RANDOM))
{ printf 'PVMMSEED' && le64 "$seed"; } | dd of="$file" conv=notrunc status=none

rc=0
tests/lab/lab.sh --outdir "$out" --vfio-ivshmem "$file" --vfio-edu \
	--env PCIVMM_VFIO_SEED="$seed" --env PCIVMM_VFIO_IVSHMEM_FILE="$file" -- "$@" || rc=$?

# Only meaningful for the full tier (the tests that write these ran).
if [[ $* == "tests/run_tier.sh vfio $build" && $rc -eq 0 ]]; then
	qword() { od -An -t x8 -j "$1" -N 8 "$file" | tr -d ' '; }
	dword() { od -An -t x4 -j "$1" -N 4 "$file" | tr -d ' '; }
	check() { # WHAT GOT WANT
		if [[ $2 == "$3" ]]; then
			echo "vfio host check: $1: $2"
		else
			echo "vfio host check FAILED: $1: file has $2, want $3" >&2
			rc=1
		fi
	}
	check "seed intact at 0x0" "$(qword 0)" 444545534d4d5650
	check "freestanding guest's write at 0x1000" "$(qword 4096)" 600df00dc0ffee00
	check "Linux guest's write at 0x10" "$(dword 16)" 600df00d
fi
exit "$rc"
