#!/usr/bin/env bash
# KVM tier: the pcivmm daemon and pcivmmctl end to end: socket mode, refusal of a live
# socket, replacement of a stale one, every pcivmmctl command against a real guest, exit
# statuses, ShutdownVm ending the daemon.   usage: api_daemon_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
pcivmm=$build/vmm/pcivmm
ctl=$build/api/pcivmmctl
guest=$build/guest-images/cfg_storm.bin

# shellcheck source=tests/kvm/daemon_test_lib.sh
source "$(dirname "$0")/daemon_test_lib.sh"
setup_scratch daemon-test
ctl() { "$ctl" --socket="$sock" "$@"; }
wait_state() { # STATE
	for _ in $(seq 600); do
		ctl info 2>/dev/null | grep -q "^state        $1\$" && return 0
		sleep 0.1
	done
	return 1
}
start() { # LOG ARGS...
	local log=$1
	shift
	"$pcivmm" --guest-image="$guest" --gpus=1 --api-socket="$sock" --console="$dir/console" \
		"$@" >"$log" 2>&1 &
	pids+=($!)
	for _ in $(seq 600); do [ -S "$sock" ] && return 0; sleep 0.1; done
	return 1
}

# 1. A daemon parked right after the guest's boot marker.
check "daemon serves on $sock" start "$dir/d1.log" --guest-arg=100 --pause-on-boot-marker
d1=${pids[-1]}
check "VM parks after the boot marker" wait_state PAUSED
check "socket mode is 0600" test "$(stat -c %a "$sock")" = 600

# 2. A second daemon on the live socket is refused, naming the path.
expect_status 2 "second daemon on a live socket refused" "$pcivmm" --guest-image="$guest" \
	--api-socket="$sock"
check "refusal names the path" grep -q "$sock: a live server is listening" "$dir/last.err"

# 3. pcivmmctl against the paused VM.
expect_status 0 "read 00:01.0 0" ctl read 00:01.0 0
check "vendor/device read back" grep -qx 0x20b510de "$dir/last.out"
expect_status 4 "read of an absent function is NOT_FOUND" ctl read 00:05.0 0
expect_status 2 "a bad width is INVALID_ARGUMENT" ctl read 00:01.0 0 3
expect_status 5 "pause while paused: FAILED_PRECONDITION" ctl pause
expect_status 0 "devices" ctl devices
check "devices lists gpu0" grep -qE "10de:20b5 class 030200 cmd [0-9a-f]{4} gpu0" "$dir/last.out"
expect_status 0 "info --json" ctl --json info
check "info --json has the state" grep -q '"state": "VM_STATE_PAUSED"' "$dir/last.out"
expect "info --json has the KVM flavour" "$dir/last.out" '"flavour": "(vmx|svm|pvm|unknown)"'
expect_status 0 "info" ctl info
expect "info names the KVM and where it runs" "$dir/last.out" '^kvm +(vmx|svm|pvm|unknown) \(.*\), (direct|lab)$'

expect_status 0 "set-policy deferred" ctl set-policy deferred
expect_status 0 "mapping" ctl mapping
check "mapping shows the deferred policy" grep -q "bar mapping (deferred" "$dir/last.out"
expect_status 0 "reset-stats" ctl reset-stats config

# 4. Resume: the guest's 100 + 2 reads, exactly, in the stats.
expect_status 0 "resume" ctl resume
check "the guest stops" wait_state STOPPED
expect_status 0 "stats" ctl stats
check "102 PIO config reads since the reset" grep -qE '^  pio   read +102 ' "$dir/last.out"
expect_status 0 "metrics" ctl metrics
check "prometheus text" grep -q 'pcivmm_config_accesses_total{path="pio",direction="read"} 102' \
	"$dir/last.out"
expect_status 0 "watch --count=1 starts with the state" ctl watch --count=1
check "watch printed STOPPED" grep -q "state STOPPED" "$dir/last.out"

# 5. ShutdownVm ends the daemon with the guest's status; the socket is removed.
expect_status 0 "shutdown" ctl shutdown
wait "$d1"
check "daemon exit status 0" test $? -eq 0
check "socket removed" test ! -e "$sock"
expect_status 3 "no daemon: exit 3" ctl --timeout=1s info

# 6. A stale socket (a killed daemon's) is replaced.
check "second daemon starts" start "$dir/d2.log" --guest-arg=1 --paused
kill -9 "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null
check "a stale socket file is left" test -S "$sock"
check "third daemon replaces the stale socket" start "$dir/d3.log" --guest-arg=1 --paused
check "third daemon answers" wait_state PAUSED
expect_status 0 "shutdown the third" ctl shutdown

# 7. TCP port 0: exactly one listener, the one printed.
listening_ports() { # PID: the TCP ports the process listens on, one per listening socket
	local ino
	for ino in $(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' | tr -dc '0-9\n'); do
		awk -v i="$ino" '$10 == i && $4 == "0A" { split($2, a, ":"); print a[2] }' \
			/proc/net/tcp /proc/net/tcp6
	done | while read -r hex; do echo $((16#$hex)); done
}
"$pcivmm" --guest-image="$guest" --guest-arg=1 --api-tcp=0 >"$dir/tcp.log" 2>&1 &
pids+=($!)
check "the TCP daemon prints its port" wait_for "$dir/tcp.log" "API on tcp port [0-9]+"
port=$(sed -nE 's/.*API on tcp port ([0-9]+).*/\1/p' "$dir/tcp.log")
mapfile -t ports < <(listening_ports "${pids[-1]}")
if [ "${#ports[@]}" -eq 1 ] && [ "${ports[0]}" = "$port" ]; then echo "ok: one listener, port $port"; else
	fail "listeners: ${ports[*]:-none}, printed $port"
fi
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null

# 8. --api-max-connections: a watching client holds the only connection; another client is
# refused with RESOURCE_EXHAUSTED (exit 6) naming the flag, and served once the watch ends.
check "a daemon with one connection allowed" start "$dir/d4.log" --guest-arg=1 --paused \
	--api-max-connections=1
"$ctl" --socket="$sock" watch >"$dir/watch.out" 2>&1 &
watcher=$!
check "the watch is connected" wait_for "$dir/watch.out" "state PAUSED"
expect_status 6 "a second client past the cap" ctl info
check "the refusal names the flag" grep -q "1 API connections are open, the most --api-max-connections allows" "$dir/last.err"
kill "$watcher"
wait "$watcher" 2>/dev/null
check "served again once the watch is gone" wait_state PAUSED
expect_status 0 "shutdown the fourth" ctl shutdown
expect_status 2 "--api-max-connections=0 is refused" "$pcivmm" --guest-image="$guest" \
	--api-socket="$sock" --api-max-connections=0
check "naming the flag" grep -q -- "--api-max-connections: 0 is outside 1..4096" "$dir/last.err"

finish_checks api_daemon_test
