#!/usr/bin/env bash
# Unit tier: pcivmm's command line without a VM: --help and --version (exit 0, their texts),
# bad flag values and input files (exit 2 naming the flag or file), and, where /dev/kvm is PVM,
# a Linux boot refused at once (non-zero within 2 s, naming PVM).   usage: cli_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
pcivmm=$build/vmm/pcivmm
# shellcheck source=tests/kvm/daemon_test_lib.sh
source "$(dirname "$0")/kvm/daemon_test_lib.sh"
setup_scratch cli-test

expect_status 0 "--help" "$pcivmm" --help
for group in Guest Devices "PCI config paths" "vBAR mapper" API Diagnostics; do
	expect "--help has the group $group" "$dir/last.out" "^$group:\$"
done
expect "--help shows flags with dashes and defaults" "$dir/last.out" "^  --bar-policy=eager\$"
expect "--help lists --boot-timeout" "$dir/last.out" "^  --boot-timeout"
expect "--help documents the exit statuses" "$dir/last.out" "143 SIGTERM, 129 SIGHUP, 131 SIGQUIT"
if grep -q '^Other:$' "$dir/last.out"; then fail "--help: a flag in no group: $(sed -n '/^Other:/,$p' "$dir/last.out")"; fi
expect_status 0 "-h is --help" "$pcivmm" -h
expect "-h prints the usage" "$dir/last.out" "^usage: pcivmm"

expect_status 0 "--version" "$pcivmm" --version
expect "--version: pcivmm's version" "$dir/last.out" '^pcivmm [0-9]+\.[0-9]+\.[0-9]+$'
expect "--version: the git commit" "$dir/last.out" '^git [0-9a-f]{7,}'
expect "--version: the build type" "$dir/last.out" '^build [A-Za-z]+$'
expect "--version: the KVM API version" "$dir/last.out" '^KVM API version 12 \(linux/kvm.h\)'
expect "--version: the /dev/kvm flavour" "$dir/last.out" '^/dev/kvm: '

expect_status 2 "a bad --bar-policy is a usage error" "$pcivmm" --guest-image=x --bar-policy=lazy
expect "the error names --bar-policy" "$dir/last.err" "--bar-policy: 'lazy'"

# Bad input is refused before any VM exists, naming the field.
for bad in --vcpus=-5 --gpus=-1 --ecam-buses=-2; do
	expect_status 2 "$bad is a usage error" "$pcivmm" --guest-image=x "$bad"
	expect "$bad: named as negative" "$dir/last.err" "${bad%%=*}: -[0-9]+ is negative"
done
expect_status 2 "a test guest with 31 vCPUs is refused" "$pcivmm" --guest-image=x --vcpus=31
expect "the stacks' limit is named" "$dir/last.err" "machine.vcpus: 31, but a test guest's stacks \(guest ABI\) fit 30 vCPUs"
expect_status 2 "--config-file=/dev/zero is refused" "$pcivmm" --config-file=/dev/zero
expect "not a regular file" "$dir/last.err" "--config-file /dev/zero: a character device; expected a regular file"
truncate -s 2M "$dir/huge.json"
expect_status 2 "a 2 MiB config file is refused" "$pcivmm" --config-file="$dir/huge.json"
expect "the limit is named" "$dir/last.err" "2097152 bytes, over the limit of 1048576 bytes"

expect_status 2 "an unknown --topology is refused" "$pcivmm" --guest-image=x --gpus=2 --topology=tree
expect "the error names --topology and the choices" "$dir/last.err" "--topology: 'tree' is not flat, root-ports or switch"
expect_status 2 "--topology without --gpus is refused" "$pcivmm" --guest-image=x --topology=switch
expect "the error says what is missing" "$dir/last.err" "--topology: places the --gpus; give --gpus too"
expect_status 2 "too many buses for the ECAM window" "$pcivmm" --guest-image=x --gpus=2 --topology=root-ports --ecam-buses=2
expect "the error names ecam_buses" "$dir/last.err" "pci.ecam_buses: 2 is fewer than the 3 buses"

expect_status 2 "--api-tcp beyond loopback is refused" "$pcivmm" --guest-image=x --api-tcp=0.0.0.0:0
expect "the risk and the flag are named" "$dir/last.err" "anyone who reaches the port controls the VM. Pass --api-tcp-allow-remote"

flavour=$("$build/vmm/kvm-flavour" | cut -f1)
if [ "$flavour" = pvm ]; then
	guest=$build/guest-images/linux
	start=$(date +%s%N)
	expect_status 75 "Linux on PVM is refused" "$pcivmm" --kernel="$guest/vmlinuz" \
		--initrd="$guest/initramfs.cpio.gz"
	ms=$((($(date +%s%N) - start) / 1000000))
	if [ "$ms" -lt 2000 ]; then echo "ok: refused in $ms ms"; else fail "refused after $ms ms"; fi
	expect "the refusal names PVM and the lab" "$dir/last.err" "this /dev/kvm is PVM .*\./dev lab --"
else
	echo "note: /dev/kvm is $flavour, not PVM: the PVM refusal is covered by linux_boot_test"
fi
finish_checks cli_test
