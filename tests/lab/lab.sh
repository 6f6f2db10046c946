#!/usr/bin/env bash
# Runs one command inside the nested KVM lab, where /dev/kvm is real (see README.md and LAB.md).
#
# QEMU in TCG emulates an AMD CPU with SVM, boots Debian's kernel, loads kvm-amd, shares the host
# root read-only over virtio-9p (a tmpfs overlay makes it writable inside) and runs the command in a
# chroot there, in the caller's working directory. Only --outdir is written back to the host.
# The command's output streams to stdout; lab.sh exits with the command's exit status, or 125 if
# the lab itself failed.
set -euo pipefail
shopt -s extglob

usage() {
	cat <<'EOF'
usage: tests/lab/lab.sh [options] -- CMD [ARGS...]
  --outdir DIR     host directory the command can write (as $PCIVMM_LAB_OUT, same path inside);
                   default: a temporary directory, removed afterwards
  --smp N          guest CPUs (default 1; 2 can wedge the guest, see README.md)
  --mem MiB        guest memory (default 2048)
  --timeout SEC    whole-run limit, boot included; 0 = none (default 1800)
  --wedge-after SEC  stop the outer guest when its heartbeat is this old (default 120)
  --env NAME=VAL   extra environment variable for the command (repeatable)
  --qemu-arg ARG   extra argument for the outer QEMU, e.g. devices for VFIO-LAB.md (repeatable)
  --vfio-ivshmem FILE  give the guest an ivshmem-plain device whose 64-bit RAM BAR2 is FILE
                   (shared: the host sees what the lab writes; its size, a power of two >= 1 MiB,
                   is the BAR size), behind an emulated IOMMU and bound to vfio-pci (repeatable)
  --vfio-edu       the same for QEMU's edu device (1 MiB MMIO register BAR0, MSI)
                   With either: the job gets PCIVMM_VFIO_IVSHMEM / PCIVMM_VFIO_EDU, the bound
                   devices' BDFs (space-separated, in option order); /dev/vfio/<group> exists.
  -v, --verbose    report preparation details and boot timings on stderr
environment: PCIVMM_LAB_CACHE (default /var/cache/pcivmm-lab) holds the kernel and initramfs;
  PCIVMM_LAB_WEDGE_RETRIES (default 1): fresh labs to rerun the command in if the outer guest wedges.
exit status: the command's, or 125 if the lab failed (boot failure, timeout, no /dev/kvm).
EOF
}

readonly LAB_FAILED=125
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly LAB_DIR
# shellcheck source=SCRIPTDIR/../../guest-images/linux/kernel_deb.sh
source "$LAB_DIR/../../guest-images/linux/kernel_deb.sh"
readonly CACHE=${PCIVMM_LAB_CACHE:-/var/cache/pcivmm-lab}
# Roots only: their dependencies come from each module's .modinfo (an extracted kernel package
# has no modules.dep, and the host may have no modinfo).
readonly ROOT_MODULES=(virtio_pci 9pnet_virtio 9p kvm_amd overlay)
# Loaded only when the run has VFIO devices (init.sh reads lib/modules/order.vfio).
readonly VFIO_MODULES=(vfio_iommu_type1 vfio_pci)
readonly TCG_NOISE="TCG doesn't support requested feature"

log() { echo "lab: $*" >&2; }
die() {
	log "$*"
	exit "$LAB_FAILED"
}
verbose=0
vlog() { if ((verbose)); then log "$@"; fi; }

# Microseconds since the epoch; stripping non-digits keeps it locale-proof.
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
seconds_since() { # START_US -> "S.T"
	local d=$((($(now_us) - $1) / 100000))
	echo "$((d / 10)).$((d % 10))"
}

check_tools() {
	local -A package_of=(
		[qemu-system-x86_64]=qemu-system-x86 [cpio]=cpio [xz]=xz-utils [flock]=util-linux
		[timeout]=coreutils [od]=coreutils [dd]=coreutils [sha256sum]=coreutils [find]=findutils
		[apt-get]=apt [apt-cache]=apt [dpkg-deb]=dpkg [dpkg-query]=dpkg
	)
	local tool missing=()
	for tool in "${!package_of[@]}"; do
		command -v "$tool" >/dev/null || missing+=("${package_of[$tool]} (for $tool)")
	done
	# The guest runs busybox with no libraries around it: it must be the static build.
	if [[ $(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null) != installed ]]; then
		missing+=("busybox-static (for a static /bin/busybox)")
	fi
	if ((${#missing[@]})); then
		die "missing Debian packages: ${missing[*]}"
	fi
}

# --- preparation: kernel + initramfs, built once per recipe (lab_image.sh) ----------------------
# shellcheck source=tests/lab/lab_image.sh
source "$LAB_DIR/lab_image.sh"

# --- one run -------------------------------------------------------------------------------------

# Sets vfio_qemu and vfio_append for --vfio-edu / --vfio-ivshmem (shared/VFIO-LAB.md): an emulated
# Intel IOMMU with interrupt remapping (without it VFIO_SET_IOMMU fails with EPERM), created before
# the devices it translates, then the devices; init.sh loads vfio-pci and binds them.
vfio_devices() { # EDU IVSHMEM_FILE...
	local edu=$1 f size i=0
	shift
	(($# || edu)) || return 0
	# shellcheck disable=SC2054 # the commas belong to QEMU's option syntax
	vfio_qemu=(-device intel-iommu,intremap=on,caching-mode=on)
	for f in "$@"; do
		[[ -f $f ]] || die "--vfio-ivshmem $f: no such file"
		size=$(stat -c %s "$f")
		((size >= 1048576 && (size & (size - 1)) == 0)) ||
			die "--vfio-ivshmem $f: size $size is not a power of two >= 1 MiB"
		f=$(realpath "$f")
		# shellcheck disable=SC2054
		vfio_qemu+=(-object "memory-backend-file,id=lab-shm$i,size=$size,mem-path=${f//,/,,},share=on"
			-device "ivshmem-plain,memdev=lab-shm$i")
		i=$((i + 1))
	done
	((edu)) && vfio_qemu+=(-device edu)
	vfio_append=" intel_iommu=on lab_vfio=1"
}

sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# The command travels as a script in the output share: no quoting through the kernel command line.
write_job() { # JOB_FILE CMD...
	local job=$1 arg env
	shift
	{
		echo "# Written by tests/lab/lab.sh; run by /bin/sh in the lab's chroot."
		echo "cd $(sh_quote "$PWD") || exit $LAB_FAILED"
		echo "exec </dev/null"
		for env in "${extra_env[@]}"; do echo "export $(sh_quote "$env")"; done
		printf 'exec'
		for arg in "$@"; do printf ' %s' "$(sh_quote "$arg")"; done
		echo
	} >"$job"
}

# Streams the serial console to stdout and to LOG. Only the command's part (between the LAB_READY
# and JOB_DONE markers) reaches stdout: firmware banners and the power-off message stay in the log,
# which is shown when the lab fails. CRs and terminal escapes (SeaBIOS clears the screen) are dropped.
console_filter() { # LOG BOOT_START_US
	local line log=$1 start=$2 phase=booting
	exec {log_fd}>"$log"
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line//$'\r'/}
		line=${line//$'\e'\[*([0-9;?])[A-Za-z]/}
		line=${line//$'\e'c/}
		printf '%s\n' "$line" >&"$log_fd"
		case $phase in
		booting)
			if [[ $line == *LAB_READY ]]; then
				phase=running
				touch "$run_tmp/heartbeat"
				vlog "guest ready (/dev/kvm present) after $(seconds_since "$start") s"
			fi
			;;
		running)
			if [[ $line == *LAB_HEARTBEAT* ]]; then
				touch "$run_tmp/heartbeat" # for watch_heartbeat; not the command's output
				# It can land inside a line of the command's: keep the rest of that line.
				line=${line//LAB_HEARTBEAT/}
				[[ -n $line ]] || continue
			fi
			if [[ $line == *"JOB_DONE rc="+([0-9]) ]]; then
				phase=finished
				# Output without a final newline ends up on the marker's line.
				line=${line%JOB_DONE rc=*}
				[[ -z $line ]] || printf '%s\n' "$line"
			else
				printf '%s\n' "$line"
			fi
			;;
		esac
	done
}

# One human-monitor command through QEMU's monitor socket; prints the reply.
monitor() { # COMMAND
	python3 - "$run_tmp/monitor.sock" "$1" <<'EOF_PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(1)
out = b""
try:
    while chunk := s.recv(65536):
        out += chunk
except socket.timeout:
    pass
print(out.decode(errors="replace").replace("\r", ""))
EOF_PY
}

# The init prints LAB_HEARTBEAT every 15 s while the command runs. A command that hangs leaves
# the heartbeat going (ctest's per-test timeout handles it); an outer kernel that wedges stops it.
# Then there is nothing to wait for: report where the outer CPU is and stop QEMU.
watch_heartbeat() { # STALE_SECONDS
	local stale=$1 age regs rip
	while sleep 5; do
		[[ -d $run_tmp && ! -e $run_tmp/qemu.rc ]] || return 0
		[[ -e $run_tmp/heartbeat ]] || continue
		age=$(($(date +%s) - $(stat -c %Y "$run_tmp/heartbeat")))
		((age > stale)) || continue
		log "the outer guest wedged: no heartbeat for $age s; its CPU, sampled 3 times:"
		for _ in 1 2 3; do
			regs=$(monitor "info registers" 2>&1) || true
			rip=$(sed -nE 's/.*RIP=([0-9a-f]+).*/\1/p' <<<"$regs" | head -1)
			log "  RIP=$rip $(grep -oE 'CPL=[0-9]' <<<"$regs" | head -1)"
			sleep 1
		done
		log "(the outer kernel boots with nokaslr: name these with the lab's /proc/kallsyms)"
		touch "$run_tmp/wedged"
		kill "$(cat "$run_tmp/timeout.pid")" 2>/dev/null || true
		return 0
	done
}

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
	if [[ -n ${run_tmp:-} ]]; then
		local pid
		# timeout(1) passes the TERM on to QEMU.
		# qemu.rc appears once timeout(1) has been reaped; before that its pid is still ours.
		if [[ ! -e $run_tmp/qemu.rc ]] && pid=$(cat "$run_tmp/timeout.pid" 2>/dev/null); then
			kill "$pid" 2>/dev/null || true
		fi
		# Let the pipeline finish (timeout -k bounds it) before its files disappear.
		if [[ -n ${pipeline_pid:-} ]]; then wait "$pipeline_pid" 2>/dev/null || true; fi
		rm -rf "$run_tmp"
	fi
	[[ -z ${watch_pid:-} ]] || kill "$watch_pid" 2>/dev/null || true
	[[ -z ${job:-} ]] || rm -f "$job"
	if ((remove_outdir)); then rm -rf "$outdir"; fi
}

# A wedged outer kernel is the emulator's or the outer kernel's fault, not the command's (a
# process cannot stop a kernel's timer interrupts): run the whole command again in a fresh lab,
# PCIVMM_LAB_WEDGE_RETRIES times (default 1). Everything it printed so far stays above.
retry_wedged() {
	local left=${PCIVMM_LAB_WEDGE_RETRIES:-1}
	((left > 0)) || return 0
	log "last 40 console lines:"
	tail -n 40 "$run_tmp/console.log" >&2
	log "running the command again in a fresh lab ($left retry left for wedges)"
	cleanup
	trap - EXIT
	PCIVMM_LAB_WEDGE_RETRIES=$((left - 1)) exec "$LAB_DIR/lab.sh" "${lab_args[@]}"
}

main() {
	lab_args=("$@")
	# One CPU by default: with two, QEMU 7.2's multi-threaded TCG wedges the outer kernel while it
	# live-patches its text (static keys flipped by every KVM vCPU create), within a few hundred VM
	# creations. One CPU never hung in thousands, and boots faster on a 2-core host.
	local outdir_arg="" smp=1 mem=2048 timeout_s=1800 wedge_s=120
	extra_env=()
	local -a extra_qemu=() ivshmem_files=()
	local edu=0
	while (($#)); do
		case $1 in
		--outdir) outdir_arg=${2:?--outdir needs a value} && shift 2 ;;
		--smp) smp=${2:?--smp needs a value} && shift 2 ;;
		--mem) mem=${2:?--mem needs a value} && shift 2 ;;
		--timeout) timeout_s=${2:?--timeout needs a value} && shift 2 ;;
		--wedge-after) wedge_s=${2:?--wedge-after needs a value} && shift 2 ;;
		--env) extra_env+=("${2:?--env needs NAME=VALUE}") && shift 2 ;;
		--qemu-arg) extra_qemu+=("${2:?--qemu-arg needs a value}") && shift 2 ;;
		--vfio-ivshmem) ivshmem_files+=("${2:?--vfio-ivshmem needs a file}") && shift 2 ;;
		--vfio-edu) edu=1 && shift ;;
		-v | --verbose) verbose=1 && shift ;;
		-h | --help) usage && exit 0 ;;
		--) shift && break ;;
		*) usage >&2 && exit 2 ;;
		esac
	done
	(($#)) || { usage >&2 && exit 2; }
	local n
	for n in "$smp" "$mem" "$timeout_s" "$wedge_s"; do [[ $n =~ ^[0-9]+$ ]] || die "not a number: $n"; done
	for n in "${extra_env[@]}"; do [[ $n =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env $n: not NAME=VALUE"; done

	check_tools
	local -a vfio_qemu=()
	local vfio_append=""
	vfio_devices "$edu" "${ivshmem_files[@]}"
	local start boot_start
	start=$(now_us)
	prepare
	boot_start=$(now_us)

	remove_outdir=0
	trap cleanup EXIT
	trap 'log "interrupted"; exit 130' INT
	trap 'log "terminated"; exit 143' TERM
	if [[ -n $outdir_arg ]]; then
		mkdir -p "$outdir_arg"
		outdir=$(cd "$outdir_arg" && pwd -P) # the guest mounts it at this exact path
	else
		outdir=$(mktemp -d "${TMPDIR:-/tmp}/pcivmm-lab.XXXXXX")
		outdir=$(cd "$outdir" && pwd -P)
		remove_outdir=1
	fi
	# It travels on the kernel command line, which has no quoting we want to rely on.
	[[ $outdir =~ ^[][A-Za-z0-9._/+@%:,=~-]+$ ]] ||
		die "--outdir path has characters the kernel command line cannot carry: $outdir"
	job=$(mktemp "$outdir/.lab-job.XXXXXX")
	write_job "$job" "$@"
	run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/pcivmm-lab-run.XXXXXX")

	# shellcheck disable=SC2054 # the commas belong to QEMU's option syntax
	local -a qemu=(
		qemu-system-x86_64 -machine q35
		# Never thread=single with -smp 2: nested guests hang.
		-accel tcg,thread=multi
		# 48 physical bits: TCG's default 40 cannot place several 128 GiB BARs.
		-cpu EPYC,+svm,+npt,phys-bits=48
		-smp "$smp" -m "$mem" -nographic -no-reboot -nic none
		-monitor "unix:$run_tmp/monitor.sock,server=on,wait=off"
		-kernel "$VMLINUX" -initrd "$INITRD"
		# Serial output costs an exit per byte: keep the kernel silent (panics still print).
		# A wedged guest never recovers: softlockup_panic turns ~20 s of it into a panic and,
		# through panic=-1 and -no-reboot, into a QEMU exit instead of a wait for --timeout.
		-append "console=ttyS0 quiet loglevel=1 nokaslr panic=-1 softlockup_panic=1 lab_out=$outdir lab_job=$job$vfio_append"
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
		-virtfs "local,path=${outdir//,/,,},mount_tag=out,security_model=none"
		"${extra_qemu[@]}"
		"${vfio_qemu[@]}"
	)
	{
		# stdin is /dev/null: the lab is non-interactive, and QEMU must not put a terminal in raw mode.
		timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null \
			2> >(grep --line-buffered -vF "$TCG_NOISE" >&2) &
		echo "$!" >"$run_tmp/timeout.pid"
		local rc=0
		wait "$!" || rc=$?
		echo "$rc" >"$run_tmp/qemu.rc"
	} | console_filter "$run_tmp/console.log" "$boot_start" &
	pipeline_pid=$!
	watch_heartbeat "$wedge_s" &
	watch_pid=$!
	# wait (unlike a foreground pipeline) lets the INT/TERM traps run while the guest is up.
	wait "$pipeline_pid" || true # the verdict comes from the console log below

	local status qemu_rc
	status=$(grep -aoE 'JOB_DONE rc=[0-9]+$' "$run_tmp/console.log" | tail -n 1) || true
	if [[ -n $status ]]; then
		vlog "finished ${status} after $(seconds_since "$boot_start") s (boot + command)"
		exit "${status#JOB_DONE rc=}"
	fi
	qemu_rc=$(cat "$run_tmp/qemu.rc" 2>/dev/null || echo "?")
	if [[ -e $run_tmp/wedged ]]; then
		log "stopped the wedged outer guest (see above)"
		retry_wedged
	elif [[ $qemu_rc == 124 ]]; then
		log "timed out after $timeout_s s (no JOB_DONE from the guest)"
	elif grep -q '^LAB_ERROR' "$run_tmp/console.log"; then
		log "guest setup failed: $(grep -m1 '^LAB_ERROR' "$run_tmp/console.log")"
	elif grep -q 'Kernel panic' "$run_tmp/console.log"; then
		# The trace is longer than the tail below: quote its headline (BUG:, panic reason).
		log "the guest kernel panicked:"
		grep -E -m3 'BUG:|Kernel panic' "$run_tmp/console.log" >&2
	else
		log "the guest stopped without reporting the command's status (QEMU exit status $qemu_rc)"
	fi
	log "last 40 console lines:"
	tail -n 40 "$run_tmp/console.log" >&2
	exit "$LAB_FAILED"
}

main "$@"
