# shellcheck shell=bash
# Checks shared by the daemon end-to-end scripts (api_daemon_test.sh, vfio_daemon_test.sh).
# The caller sources this file and calls setup_scratch NAME; each check prints "ok: ..." or
# "FAIL: ..." and counts failures; finish_checks NAME ends the script.
failures=0

# $dir: a scratch directory, removed at exit after every process in $pids is killed; $sock: an
# API socket path in it.
setup_scratch() { # NAME
	dir=$(mktemp -d "/tmp/pcivmm-$1.XXXXXX")
	sock=$dir/api.sock
	pids=()
	trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$dir"' EXIT
}

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
check() { # DESCRIPTION COMMAND... : the command must succeed
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else fail "$what"; fi
}
expect() { # DESCRIPTION FILE PATTERN: the file has a line matching the pattern
	if grep -qE -e "$3" "$2"; then echo "ok: $1"; else fail "$1: no /$3/ in $(cat "$2")"; fi
}
# Runs the command with its output in $dir/last.out and $dir/last.err.
# shellcheck disable=SC2154 # $dir is the caller's
expect_status() { # WANT DESCRIPTION COMMAND...
	local want=$1 what=$2 got
	shift 2
	"$@" >"$dir/last.out" 2>"$dir/last.err"
	got=$?
	if [ "$got" -eq "$want" ]; then echo "ok: $what (exit $got)"; else
		fail "$what: exit $got, want $want; stderr: $(cat "$dir/last.err")"
	fi
}
wait_for() { # FILE PATTERN: the file has a line matching the pattern within 60 s
	for _ in $(seq 600); do
		grep -qE -e "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
finish_checks() { # NAME
	echo "$1: $failures failure(s)"
	[ "$failures" -eq 0 ]
}
