#!/usr/bin/env bash
# KVM tier: input files are bounded. A device, a pipe or a file larger than guest RAM as
# --kernel, --initrd or --guest-image gets an error naming the flag, the file and the limit,
# never an allocation failure (exit 134).   usage: bad_input_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
pcivmm=$build/vmm/pcivmm
linux=$build/guest-images/linux
# shellcheck source=tests/kvm/daemon_test_lib.sh
source "$(dirname "$0")/daemon_test_lib.sh"
setup_scratch bad-input-test
truncate -s 65M "$dir/huge" # sparse: larger than --ram-mib=64, costs no disk
mkfifo "$dir/fifo"
# --pvm-guest-kernel: the files are checked on any KVM, PVM included (no kernel runs).
kernel=(--pvm-guest-kernel --ram-mib=64)

expect_status 75 "--kernel=/dev/zero" "$pcivmm" "${kernel[@]}" --kernel=/dev/zero
expect "named, not read" "$dir/last.err" "--kernel /dev/zero: a character device; expected a regular file"
expect_status 75 "--kernel larger than guest RAM" "$pcivmm" "${kernel[@]}" --kernel="$dir/huge"
expect "the limit is the guest RAM" "$dir/last.err" "--kernel $dir/huge: 68157440 bytes, over the limit of 67108864 bytes \\(the guest RAM\\)"
expect_status 75 "--initrd=/dev/zero" "$pcivmm" "${kernel[@]}" --kernel="$linux/vmlinuz" --initrd=/dev/zero
expect "the initrd is named" "$dir/last.err" "--initrd /dev/zero: a character device"
expect_status 75 "--initrd is a pipe" "$pcivmm" "${kernel[@]}" --kernel="$linux/vmlinuz" --initrd="$dir/fifo"
expect "a pipe is refused without blocking" "$dir/last.err" "--initrd $dir/fifo: a pipe"
expect_status 75 "--guest-image=/dev/zero" "$pcivmm" --guest-image=/dev/zero
expect "the image is named" "$dir/last.err" "--guest-image /dev/zero: a character device"
expect_status 75 "--guest-image larger than RAM above the load address" "$pcivmm" --guest-image="$dir/huge"
expect "that limit is named" "$dir/last.err" "over the limit of 66060288 bytes \\(the guest RAM above the load address\\)"
expect_status 0 "30 vCPUs, the most a test guest's stacks fit, run" "$pcivmm" \
	--guest-image="$build/guest-images/hello.bin" --vcpus=30
# Memory slots the host kernel cannot carry (vmm/platform/slot_budget.h): on a shadow-paging KVM
# (PVM) 31 x 1 TiB of BARs would take ~62 GiB of reverse maps; refused before any slot exists.
# On hardware KVM the same slots cost ~62 MiB (the unit tests cover that model).
flavour=$("$build/vmm/kvm-flavour" | cut -f1)
if [ "$flavour" = pvm ]; then
	expect_status 75 "31 x 1 TiB of BARs on PVM" timeout 20 "$pcivmm" \
		--guest-image="$build/guest-images/hello.bin" --gpus=31 --gpu-bar1-gib=1024
	expect "refused with the cost and the way out" "$dir/last.err" \
		"memory slots: guest RAM and BARs of 31.0 TiB would cost the host kernel ~62.2 GiB .*--gpus, --gpu-bar1-gib"
else
	echo "note: /dev/kvm is $flavour: the slot budget's PVM case is covered by slot_budget_test"
fi
finish_checks bad_input_test
