#!/usr/bin/env bash
# VFIO tier: the pcivmm daemon with a real device: --vfio, the config file's pci.vfioDevices,
# pcivmmctl's device list, and the errors for bad and unbound addresses. Runs in the VFIO lab
# (PCIVMM_VFIO_EDU set by tests/lab/lab.sh --vfio-edu).   usage: vfio_daemon_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
pcivmm=$build/vmm/pcivmm
ctl=$build/api/pcivmmctl
guest=$build/guest-images/vfio_test.bin
edu=${PCIVMM_VFIO_EDU%% *}
dir=$(mktemp -d /tmp/pcivmm-vfio-daemon.XXXXXX)
pid=""
cleanup() {
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
# shellcheck source=tests/kvm/daemon_test_lib.sh
source "$(dirname "$0")/daemon_test_lib.sh"
[ -n "$edu" ] || { echo "PCIVMM_VFIO_EDU is not set: run in the VFIO lab" && exit 1; }
# vfio_test.bin mode 2 (edu registers) at slot S, BAR0: arg = 2 | S << 8.
edu_id=$((0x010000ED))

# 1. --vfio: the device takes the next free slot (1); its registers through a slot.
expect_status 0 "pcivmm --vfio=$edu runs the edu guest" \
	"$pcivmm" --vfio="$edu" --ram-mib=16 --guest-image="$guest" --guest-arg=$((2 | 1 << 8))
expect "the guest reads edu's identification register" "$dir/last.out" "^REPORT edu_id=$edu_id\$"
expect "the device list shows the real IDs" "$dir/last.out" "^00:01.0 1234:11e8 class 00ff00 vfio-$edu\$"
expect "the report has the passthrough line" "$dir/last.out" "^vfio $edu -> 00:01.0: .*errors 0"

# 2. The config file: a chosen slot, BAR accesses forced through the trap path.
cat >"$dir/vm.json" <<JSON
{"machine": {"ramMib": "16"},
 "pci": {"vfioDevices": [{"hostAddress": "$edu", "slot": 5, "mmapBars": false}]},
 "testGuest": {"imagePath": "$guest", "arg": "$((2 | 5 << 8))"}}
JSON
expect_status 0 "pcivmm --config-file with pci.vfioDevices" "$pcivmm" --config-file="$dir/vm.json"
expect "edu through the trap path at slot 5" "$dir/last.out" "^REPORT edu_id=$edu_id\$"
expect "three trapped BAR reads" "$dir/last.out" "^vfio $edu -> 00:05.0: .*trapped BAR reads 3 writes 2"

# 3. The API lists the function as a passthrough device.
"$pcivmm" --vfio="$edu" --ram-mib=16 --guest-image="$guest" --paused \
	--api-socket="$dir/api.sock" >"$dir/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -S "$dir/api.sock" ] && break; sleep 0.1; done
expect_status 0 "pcivmmctl devices" "$ctl" --socket="$dir/api.sock" devices
expect "pcivmmctl marks it" "$dir/last.out" "^00:01.0 1234:11e8 .*\\(VFIO passthrough\\)\$"
expect_status 0 "pcivmmctl shutdown" "$ctl" --socket="$dir/api.sock" shutdown
wait "$pid"
pid=""

# 4. Errors: a malformed address is a usage error; an unbound device a VMM error that says why.
expect_status 2 "a malformed --vfio is refused" "$pcivmm" --vfio=00:04 --guest-image="$guest"
expect "it names the field" "$dir/last.err" "pci.vfio_devices\\[0\\].host_address"
expect_status 75 "a device not bound to vfio-pci is refused" \
	"$pcivmm" --vfio=00:1f.0 --guest-image="$guest"
expect "it says how to bind it" "$dir/last.err" "vfio-pci"

finish_checks "vfio daemon test"
