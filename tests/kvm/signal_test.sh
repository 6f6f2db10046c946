#!/usr/bin/env bash
# KVM tier: signals end pcivmm cleanly: SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the VM, print which
# signal did it, remove the API socket and exit with 128 + the signal's number.
#   usage: signal_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
pcivmm=$build/vmm/pcivmm
# shellcheck source=tests/kvm/daemon_test_lib.sh
source "$(dirname "$0")/daemon_test_lib.sh"
setup_scratch signal-test

# Starts pcivmm with ARGS, waits until the log has READY, sends SIG, checks the status.
run_and_signal() { # SIG WANT READY ARGS...
	local sig=$1 want=$2 ready=$3 got
	shift 3
	"$pcivmm" "$@" >"$dir/out" 2>"$dir/err" &
	pid=$!
	pids+=("$pid")
	check "pcivmm is up before SIG$sig" wait_for "$dir/out" "$ready"
	kill -s "$sig" "$pid"
	wait "$pid"
	got=$?
	if [ "$got" -eq "$want" ]; then echo "ok: SIG$sig: exit $got"; else
		fail "SIG$sig: exit $got, want $want; stderr: $(cat "$dir/err")"
	fi
	expect "SIG$sig is named" "$dir/err" "stopped by SIG$sig \\(exit status $want\\)"
}

# A spinning guest without the API: the signal stops the VM itself.
run_and_signal INT 130 "spins without" --guest-image="$build/guest-images/spin.bin" --vcpus=2
# The daemon: the socket goes with it.
run_and_signal TERM 143 "spins without" --guest-image="$build/guest-images/spin.bin" \
	--api-socket="$sock"
if [ -e "$sock" ]; then fail "SIGTERM left $sock behind"; else echo "ok: socket removed"; fi
# A daemon whose guest already stopped (it serves until told): SIGHUP still ends it so.
run_and_signal HUP 129 "hello from" --guest-image="$build/guest-images/hello.bin" \
	--api-socket="$sock"
if [ -e "$sock" ]; then fail "SIGHUP left $sock behind"; else echo "ok: socket removed"; fi
run_and_signal QUIT 131 "spins without" --guest-image="$build/guest-images/spin.bin" \
	--api-socket="$sock"
if [ -e "$sock" ]; then fail "SIGQUIT left $sock behind"; else echo "ok: socket removed"; fi
finish_checks signal_test
