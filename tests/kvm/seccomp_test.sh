#!/usr/bin/env bash
# KVM tier: the seccomp sandbox (vmm/base/seccomp.h, api/daemon/sandbox.h). A running daemon has
# a filter on every thread ("Seccomp: 2"), two stacked on each vCPU thread and one on the
# others; the API still answers under it; a device model that makes a forbidden call (the test
# probe) kills the process with SIGSYS and a line naming the call; log and off let it through;
# a bad --seccomp is a usage error naming the flag.
#   usage: seccomp_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
pcivmm=$build/vmm/pcivmm
ctl=$build/api/pcivmmctl
g=$build/guest-images
# shellcheck source=tests/kvm/daemon_test_lib.sh
source "$(dirname "$0")/daemon_test_lib.sh"
setup_scratch seccomp-test

# The daemon, 2 vCPUs spinning, one GPU, the API on.
"$pcivmm" --guest-image="$g/spin.bin" --vcpus=2 --gpus=1 --api-socket="$sock" \
	>"$dir/out" 2>"$dir/err" &
pid=$!
pids+=("$pid")
check "the daemon is up" wait_for "$dir/out" "spins without"
quiet_ctl() { "$ctl" --socket="$sock" "$@" >/dev/null; }
# What API threads do to the VM: counters, config reads and writes that unmap and map the
# GPU's BARs (memory decode off, on), a policy change, the fast path's slots in and out.
check "the API answers under the filter" quiet_ctl info
check "stats" quiet_ctl stats
check "a config read" quiet_ctl read 00:01.0 0x10
check "decode off (BARs unmapped)" quiet_ctl write 00:01.0 0x4 2 0x0
check "decode on (BARs mapped)" quiet_ctl write 00:01.0 0x4 2 0x6
check "a policy change" quiet_ctl set-policy deferred
check "the fast path on" quiet_ctl set-config-mode --ecam-fast-path=on
check "and off" quiet_ctl set-config-mode --ecam-fast-path=off
# Field by thread: Seccomp (2 = filter mode) and Seccomp_filters (stacked filters). A kernel
# worker KVM starts inside the process on the first KVM_RUN (kvm-nx-lpage-recovery) inherits a
# vCPU thread's filters and makes no system calls: counted, not classed.
states=$(for t in /proc/"$pid"/task/*; do
	printf '%s %s %s\n' "$(cat "$t/comm")" "$(awk '/^Seccomp:/ {print $2}' "$t/status")" \
		"$(awk '/^Seccomp_filters:/ {print $2}' "$t/status")"
done)
echo "$states" | sed 's/^/  thread: /'
threads=$(echo "$states" | wc -l)
filtered=$(echo "$states" | awk '$(NF-1) == 2' | wc -l)
vcpus_two=$(echo "$states" | awk '/^vcpu [0-9]+ / && $NF == 2' | wc -l)
others=$(echo "$states" | grep -cvE '^(vcpu [0-9]+|kvm-.*) ')
others_one=$(echo "$states" | grep -vE '^(vcpu [0-9]+|kvm-.*) ' | awk '$NF == 1' | wc -l)
if [ "$threads" -ge 4 ] && [ "$filtered" -eq "$threads" ]; then
	echo "ok: all $threads threads show Seccomp: 2"
else fail "$filtered of $threads threads show Seccomp: 2"; fi
if [ "$vcpus_two" -eq 2 ]; then echo "ok: both vCPU threads carry two filters"; else
	fail "$vcpus_two vCPU threads carry two filters, want 2"
fi
if [ "$others" -ge 2 ] && [ "$others_one" -eq "$others" ]; then
	echo "ok: the $others main, API and helper threads carry one"
else fail "$others_one of $others main, API and helper threads carry one filter"; fi
kill -TERM "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 143 ]; then echo "ok: SIGTERM still ends it cleanly (143)"; else
	fail "SIGTERM: exit $rc, want 143; stderr: $(cat "$dir/err")"
fi

probe=(--guest-image="$g/seccomp_probe.bin" --seccomp-test-probe --stats=false)
expect_status 159 "a forbidden call in a device model: SIGSYS (128 + 31)" "$pcivmm" "${probe[@]}"
expect "the call and the thread are named" "$dir/last.err" \
	"seccomp: thread [0-9]+ \\(vcpu 0\\) made a forbidden system call: getppid \\(110\\)"
expect_status 0 "--seccomp=log lets it through" "$pcivmm" "${probe[@]}" --seccomp=log
expect "and the guest carries on" "$dir/last.out" "the VMM came back"
expect_status 0 "--seccomp=off too" "$pcivmm" "${probe[@]}" --seccomp=off
expect_status 2 "--seccomp=strict is a usage error" "$pcivmm" --guest-image="$g/hello.bin" \
	--seccomp=strict
expect "naming the flag" "$dir/last.err" "--seccomp: 'strict' is not one of off, kill, log"
finish_checks seccomp_test
