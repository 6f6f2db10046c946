#!/usr/bin/env bash
# Fails when a C/C++ source is not clang-format clean (.clang-format: Google, 100 columns).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.c')
bad=$(clang-format --dry-run "${files[@]}" 2>&1 | grep -c 'warning:' || true)
if [ "$bad" -ne 0 ]; then
  clang-format --dry-run "${files[@]}" 2>&1 | grep 'warning:' | cut -d: -f1 | sort -u >&2
  echo "format: $bad places need clang-format -i" >&2
  exit 1
fi
echo "format: clean (${#files[@]} files)"
