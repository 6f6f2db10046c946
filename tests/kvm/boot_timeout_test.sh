#!/usr/bin/env bash
# KVM tier: pcivmm --boot-timeout end to end with the spin guest (which never writes the boot
# marker; with --guest-arg=1 it writes it first). Without the API: exit status 76 and the report
# on stderr. With the API: the event, and the VM keeps running. A guest that boots is left
# alone; a bad value is a usage error. With "linux": Linux stopped early reports its vCPUs too.
#   usage: boot_timeout_test.sh BUILD_DIR [linux]
set -uo pipefail
build=$(cd "$1" && pwd)
pcivmm=$build/vmm/pcivmm
ctl=$build/api/pcivmmctl
guest=$build/guest-images/spin.bin

# shellcheck source=tests/kvm/daemon_test_lib.sh
source "$(dirname "$0")/daemon_test_lib.sh"
setup_scratch boot-timeout-test
ctl() { "$ctl" --socket="$sock" "$@"; }
no_line() { # FILE PATTERN
	! grep -qE "$2" "$1"
}
spin_line="spin: vcpu 1 spins without the boot marker"  # the last vCPU prints last

# Linux: no kernel reaches init in 1 ms; pcivmm reports its vCPUs. A ctest of its own
# (pcivmm_boot_timeout_linux), which runs where Linux guests run (on PVM: in the lab).
if [ "${2:-}" = linux ]; then
	linux=$build/guest-images/linux
	expect_status 76 "Linux not booted in 1ms: exit 76" "$pcivmm" --kernel="$linux/vmlinuz" \
		--initrd="$linux/initramfs.cpio.gz" --cmdline="console=ttyS0" --ram-mib=256 --vcpus=2 \
		--boot-timeout=1ms --console="$dir/linux.console" --stats=false
	expect "Linux: the headline" "$dir/last.err" '^pcivmm: boot timeout after 1ms: no boot marker$'
	expect "Linux: the console line" "$dir/last.err" '^pcivmm:   last console line: '
	expect "Linux: vcpu 0's RIP" "$dir/last.err" '^pcivmm:   vcpu 0: rip 0x[0-9a-f]+, last exit '
	expect "Linux: vcpu 1" "$dir/last.err" '^pcivmm:   vcpu 1: rip '
	finish_checks boot_timeout_test_linux
	exit
fi

# 1. No API: the report on stderr, exit status 76.
expect_status 76 "no boot marker within 1s: exit 76" "$pcivmm" --guest-image="$guest" --vcpus=2 \
	--boot-timeout=1s --stats=false
err=$dir/last.err
expect "the headline" "$err" '^pcivmm: boot timeout after 1s: no boot marker$'
expect "the last console line" "$err" "^pcivmm:   last console line: \"$spin_line\"$"
for v in 0 1; do
	expect "vcpu $v: RIP in the guest, last exit, count" "$err" \
		"^pcivmm:   vcpu $v: rip 0x10[0-9a-f]{4}, last exit IO, [1-9][0-9]* exits$"
done
expect "the stop line" "$err" '^pcivmm: boot timeout after 1s: no boot marker \(exit status 76\)$'

# 2. A guest that writes the marker is not stopped: it spins until SIGTERM (timeout's 124).
expect_status 124 "a booted guest runs past the timeout" timeout -s TERM 4 "$pcivmm" \
	--guest-image="$guest" --guest-arg=1 --vcpus=2 --boot-timeout=1s --stats=false
check "no boot-timeout report" no_line "$dir/last.err" 'boot timeout'
expect "the marker was seen" "$dir/last.err" '^pcivmm: boot marker after '

# 3. A bad value is a usage error naming the flag.
expect_status 2 "--boot-timeout=soon is a usage error" "$pcivmm" --guest-image="$guest" \
	--boot-timeout=soon
expect "the error names the flag" "$dir/last.err" "--boot-timeout: 'soon' is not a duration"

# 4. The daemon: started paused (the timeout counts from the resume), so the watch below is
#    subscribed before it can fire. It sees the current state, RUNNING, then the timeout: the
#    vCPUs' short park for the snapshot is no PAUSED event.
"$pcivmm" --guest-image="$guest" --vcpus=2 --boot-timeout=1s --api-socket="$sock" --paused \
	--console="$dir/console" >"$dir/daemon.log" 2>&1 &
daemon=$!
pids+=("$daemon")
check "daemon serves on $sock" wait_for "$dir/daemon.log" "API on unix:"
timeout 60 "$ctl" --socket="$sock" watch --kinds=timeout,state --count=3 >"$dir/watch" 2>&1 &
watch=$!
pids+=("$watch")
check "watch subscribed" wait_for "$dir/watch" "state PAUSED"
expect_status 0 "resume" ctl resume
wait "$watch"
check "watch ended after three events" test $? -eq 0
expect "RUNNING after the resume" "$dir/watch" 'state RUNNING$'
expect "the boot-timeout event" "$dir/watch" \
	"boot timeout after 1.000 s: no boot marker; last console line \"$spin_line\"; vcpu 0 rip 0x10[0-9a-f]{4} last exit IO \([0-9]+ exits\); vcpu 1 rip 0x10[0-9a-f]{4} last exit IO"
check "the daemon logs the report" wait_for "$dir/daemon.log" "keeps running"
expect "with each vCPU's state" "$dir/daemon.log" '^pcivmm:   vcpu 1: rip 0x10'
sleep 1
expect_status 0 "info after the timeout" ctl info
expect "the VM keeps running" "$dir/last.out" '^state +RUNNING$'
check "the daemon is alive" kill -0 "$daemon"
expect_status 0 "shutdown" ctl shutdown
wait "$daemon"
check "daemon exit status 0" test $? -eq 0

finish_checks boot_timeout_test
