#!/usr/bin/env bash
# Unit tier: every valid platform of the ACPI fuzzer's corpus (tests/fuzz/corpus/
# acpi_tables_fuzz, grown by ./dev fuzz) gives tables that ACPICA's disassembler takes without
# an error, a warning or a bad checksum.   usage: acpi_iasl_check.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v iasl >/dev/null || { echo "iasl is not on PATH: apt-get install -y acpica-tools"; exit 1; }
dir=$(mktemp -d /tmp/pcivmm-acpi-iasl.XXXXXX)
trap 'rm -rf "$dir"' EXIT
PCIVMM_ACPI_FUZZ_DUMP="$dir" "$build/tests/acpi_tables_fuzz_replay" \
	"$root/tests/fuzz/corpus/acpi_tables_fuzz" || exit 1
platforms=0 tables=0 bad=0
for p in "$dir"/*/; do
	platforms=$((platforms + 1))
	for dat in "$p"*.dat; do
		tables=$((tables + 1))
		log=${dat%.dat}.log
		if ! (cd "$p" && iasl -d "$(basename "$dat")" >"$log" 2>&1) ||
			grep -qiE 'error|warning|incorrect checksum' "$log" "${dat%.dat}.dsl"; then
			bad=$((bad + 1))
			echo "FAIL: $dat"
			cat "$log"
		fi
	done
done
echo "acpi_iasl_check: $tables tables of $platforms platforms disassembled, $bad with errors"
[ "$platforms" -gt 0 ] && [ "$bad" -eq 0 ]
