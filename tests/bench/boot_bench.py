#!/usr/bin/env python3
"""Boot benchmark: the same kernel, initramfs and command line under pcivmm and under QEMU.

Each run is timed from process start to process exit: the guest's init writes the boot
marker and powers off at once (pcivmm.bench=1). pcivmm and QEMU (q35 with -accel kvm, direct
kernel boot; microvm too, for reference) alternate, so drift in the lab hits both alike.
Then one full boot per config mode reports the config-access VM exits of a Linux boot.
Writes --json and prints a table. Needs /dev/kvm (run it through ./dev bench boot).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

CMDLINE = "console=ttyS0 8250.nr_uarts=1 iomem=relaxed panic=-1 quiet pcivmm.bench=1"
MODES = {  # name -> pcivmm flags
    "pio_mode": ["--pci-pio=true"],
    "ecam_only": ["--pci-pio=false"],
    "ecam_fast": ["--pci-pio=false", "--ecam-fast-path"],
}


def timed(cmd):
    print(f"boot_bench: {os.path.basename(cmd[0])} {' '.join(cmd[1:4])} ...", file=sys.stderr,
          flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    elapsed_ms = (time.monotonic() - start) * 1000.0
    if proc.returncode != 0:
        sys.exit(f"boot_bench: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    return elapsed_ms, proc.stdout


def pcivmm_cmd(args, gpus, extra):
    return [args.pcivmm, f"--kernel={args.guest_dir}/vmlinuz",
            f"--initrd={args.guest_dir}/initramfs.cpio.gz", f"--cmdline={CMDLINE}",
            f"--ram-mib={args.ram_mib}", "--vcpus=1", f"--gpus={gpus}", "--console=/dev/null",
            f"--gpu-bar1-gib={args.gpu_bar1_gib}", "--bar-policy=deferred", "--stats=false",
            # A boot that hangs fails in 120 s (generous: TCG in the lab) with the report (the
            # last console line, each vCPU's RIP) instead of at timed()'s 300 s.
            "--boot-timeout=120s"] + extra


def qemu_cmd(args, machine):
    return [args.qemu, "-M", machine, "-accel", "kvm", "-cpu", "host", "-m", str(args.ram_mib),
            "-smp", "1", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-serial", "null", "-kernel", f"{args.guest_dir}/vmlinuz",
            "-initrd", f"{args.guest_dir}/initramfs.cpio.gz", "-append", CMDLINE]


def config_exits(output):
    m = re.search(r"^config exits: (\d+)$", output, re.M)
    if not m:
        sys.exit(f"boot_bench: no 'config exits' line in pcivmm's report:\n{output[-3000:]}")
    return int(m.group(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pcivmm", required=True)
    p.add_argument("--guest-dir", required=True)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--ram-mib", type=int, default=256)
    p.add_argument("--gpus", type=int, default=2)
    p.add_argument("--gpu-bar1-gib", type=int, default=128)
    p.add_argument("--json", required=True)
    args = p.parse_args()

    # The timed boots give both VMMs the same guest hardware (no extra PCI devices); pcivmm
    # with the GPU-like devices is timed too, and gives the config-exit counts.
    times = {"pcivmm": [], "qemu": [], "qemu_microvm": [], "pcivmm_gpus": []}
    microvm = "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on"
    for _ in range(args.runs):
        times["pcivmm"].append(timed(pcivmm_cmd(args, 0, MODES["ecam_fast"]))[0])
        times["qemu"].append(timed(qemu_cmd(args, "q35"))[0])
        times["qemu_microvm"].append(timed(qemu_cmd(args, microvm))[0])
        times["pcivmm_gpus"].append(timed(pcivmm_cmd(args, args.gpus, MODES["ecam_fast"]))[0])
    exits = {mode: config_exits(timed(pcivmm_cmd(args, args.gpus, flags + ["--stats"]))[1])
             for mode, flags in MODES.items()}

    med = {k: statistics.median(v) for k, v in times.items()}
    # On which KVM and where this ran (vmm/kvm/kvm_flavour.h, the same object as every bench's).
    kvm = json.loads(subprocess.run(
        [os.path.join(os.path.dirname(args.pcivmm), "kvm-flavour"), "--json"],
        check=True, capture_output=True, text=True).stdout)
    result = {
        "kvm": kvm,
        "runs": args.runs,
        "pcivmm_ms": [round(t, 1) for t in times["pcivmm"]],
        "qemu_ms": [round(t, 1) for t in times["qemu"]],
        "qemu_microvm_ms": [round(t, 1) for t in times["qemu_microvm"]],
        f"pcivmm_{args.gpus}gpus_ms": [round(t, 1) for t in times["pcivmm_gpus"]],
        "ratio_median": round(med["pcivmm"] / med["qemu"], 3),
        "ratio_median_microvm": round(med["pcivmm"] / med["qemu_microvm"], 3),
        "config_exits": exits,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"process start to exit (init writes the boot marker, then powers off), {args.runs} runs each")
    print(f"{'VMM':<28}{'median ms':>10}{'min':>9}{'max':>9}")
    for name, label in (("pcivmm", "pcivmm"), ("qemu", "qemu q35 -accel kvm"),
                        ("qemu_microvm", "qemu microvm -accel kvm"),
                        ("pcivmm_gpus", f"pcivmm + {args.gpus} GPUs ({args.gpu_bar1_gib} GiB)")):
        print(f"{label:<28}{med[name]:>10.1f}{min(times[name]):>9.1f}{max(times[name]):>9.1f}")
    print(f"ratio pcivmm/qemu-q35 (median): {result['ratio_median']}   "
          f"pcivmm/microvm: {result['ratio_median_microvm']}  (goal <= 0.5 vs q35)")
    print(f"config-access exits of one Linux boot with {args.gpus} GPUs: " +
          ", ".join(f"{k} {v}" for k, v in exits.items()))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
