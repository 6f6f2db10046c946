#!/usr/bin/env bash
# Runs one ctest label and ends with "LABEL: N passed, N failed (where)". Fails if no test ran.
set -uo pipefail
label=$1
build=$2
shift 2 # the rest goes to ctest, e.g. -R REGEX or -E REGEX for a part of the tier
log=$(mktemp)
# -O copies the output to the log; no pipe, so the console streams live.
ctest --test-dir "$build" -L "$label" --output-on-failure --timeout 300 -O "$log" "$@"
rc=$?
total=$(sed -nE 's/.* tests? failed out of ([0-9]+).*/\1/p' "$log" | tail -1)
failed=$(sed -nE 's/.* ([0-9]+) tests? failed out of.*/\1/p' "$log" | tail -1)
rm -f "$log"
total=${total:-0}
failed=${failed:-0}
# Where it ran, by pcivmm's own classifier: the unit tier needs no KVM.
where="no KVM needed"
if [ "$label" != unit ]; then
  flavour=$("$build/vmm/kvm-flavour" | cut -f2 | cut -d: -f1)
  place="directly"
  [ "${PCIVMM_LAB:-}" = 1 ] && place="in the nested lab"
  where="$place, on $flavour"
fi
[ "$(basename "$build")" = build ] || where="$where, $(basename "$build")"
echo "$label: $((total - failed)) passed, $failed failed ($where)"
if [ "$total" -eq 0 ]; then
  echo "$label: no test ran: that is a failure" >&2
  exit 1
fi
exit "$rc"
