# shellcheck shell=bash
# Checks shared by the daemon end-to-end scripts (api_daemon_test.sh, vfio_daemon_test.sh).
# The caller sets $dir (a scratch directory) and sources this file; each check prints
# "ok: ..." or "FAIL: ..." and counts failures; finish_checks NAME ends the script.
failures=0

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
finish_checks() { # NAME
	echo "$1: $failures failure(s)"
	[ "$failures" -eq 0 ]
}
