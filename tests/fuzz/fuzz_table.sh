#!/usr/bin/env bash
# Runs libFuzzer targets for SECONDS each, one after another, from the checked-in corpus into
# BUILD/corpus/NAME, keeps one row per target (BUILD/table/NAME.row) and writes the Markdown
# table of executions, coverage and findings of every target run so far to BUILD/table.md.
# Usage: tests/fuzz/fuzz_table.sh BUILD SECONDS [NAME...]   (default: every directory of
# tests/fuzz/corpus/, which holds one per target)
set -euo pipefail
build=${1:?build-fuzz dir} seconds=${2:?seconds}
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(ls "$root/tests/fuzz/corpus")
mkdir -p "$build/table"

field() { sed -n "s/.* $1: \([0-9]*\).*/\1/p" <<<"$2"; }

for name in "${names[@]}"; do
  out="$build/corpus/$name" art="$build/artifacts/$name" log="$build/table/$name.log"
  mkdir -p "$out" "$art"
  echo "== $name: ${seconds}s" >&2
  rc=0
  "$build/tests/$name" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$art/" \
    "$out" "$root/tests/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || echo "$name: exit status $rc (see $log)" >&2
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  printf '| `%s` | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$seconds" \
    "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
    "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")" \
    "$(field cov "$last")" "$(field ft "$last")" "$(field corp "$last")" \
    "$(find "$art" -type f | wc -l)" >"$build/table/$name.row"
done
{
  echo "| target | seconds | execs | execs/s | cov | ft | corpus | findings |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  cat "$build"/table/*.row
} >"$build/table.md"
cat "$build/table.md"
