#!/usr/bin/env python3
"""Boot benchmark: the same kernel, initramfs and command line under pcivmm and under QEMU.

Each run is timed from process start to process exit: the guest's init writes the boot
marker and powers off at once (pcivmm.bench=1). Four runners, interleaved round by round so
drift in the lab hits all alike: pcivmm with the API off, pcivmm with the API on, QEMU
microvm and QEMU q35 (-accel kvm, direct kernel boot, no extra devices). For every run: the
wall time, the guest's own uptime at the marker (its marker program prints it on the
console, under any VMM), the VMM's share (wall minus that uptime) and, for pcivmm, its boot
profile (vmm/base/boot_profile.h, from --stats). Then a size scan (guest RAM, vCPUs, GPU-like
devices with 128 GiB BARs: boot time and memory beyond guest RAM) and the config-access exits
of one Linux boot per config mode. Writes --json and prints tables. Needs /dev/kvm (run it
through ./dev bench boot).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

CMDLINE = "console=ttyS0 8250.nr_uarts=1 iomem=relaxed panic=-1 quiet pcivmm.bench=1"
MODES = {  # name -> pcivmm flags
    "pio_mode": ["--pci-pio=true"],
    "ecam_only": ["--pci-pio=false"],
    "ecam_fast": ["--pci-pio=false", "--ecam-fast-path"],
}
MICROVM = "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on"
# The size scan: (label, RAM MiB, vCPUs, GPUs); the first is the base the others vary.
SCAN = [("base", 256, 1, 0), ("ram 4 GiB", 4096, 1, 0), ("ram 64 GiB", 65536, 1, 0),
        ("2 vCPUs", 256, 2, 0), ("4 vCPUs", 256, 4, 0), ("2 GPUs", 256, 1, 2),
        ("14 GPUs", 256, 1, 14)]


def run(cmd, console):
    """One boot: wall ms, the guest's uptime ms at the marker, pcivmm's output."""
    print(f"boot_bench: {os.path.basename(cmd[0])} {' '.join(cmd[1:3])} ...", file=sys.stderr,
          flush=True)
    if os.path.exists(console):
        os.remove(console)
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    wall_ms = (time.monotonic() - start) * 1000.0
    if proc.returncode != 0:
        sys.exit(f"boot_bench: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    with open(console, errors="replace") as f:
        m = re.search(r"PCIVMM uptime_us (\d+)", f.read())
    if not m:
        sys.exit(f"boot_bench: no 'PCIVMM uptime_us' line on the console of {' '.join(cmd)}")
    return {"wall_ms": round(wall_ms, 1), "guest_uptime_ms": int(m.group(1)) / 1000.0,
            "vmm_share_ms": round(wall_ms - int(m.group(1)) / 1000.0, 1)}, proc.stdout


def profile(output):
    """pcivmm's boot profile block (--stats): phase -> ms from process start."""
    block = output.split("boot profile (ms from process start", 1)
    if len(block) < 2:
        sys.exit(f"boot_bench: no boot profile in pcivmm's report:\n{output[-3000:]}")
    phases = {}
    for line in block[1].splitlines()[1:]:
        m = re.match(r"  (\w+) +([0-9.]+)$", line)
        if not m:
            break
        phases[m.group(1)] = float(m.group(2))
    return phases


def memory(output):
    m = re.search(r"memory: VmRSS (\d+) KiB \(anon (\d+), file (\d+), shmem (\d+)\), guest RAM "
                  r"resident (\d+) KiB, overhead (\d+) KiB", output)
    if not m:
        sys.exit(f"boot_bench: no memory line in pcivmm's report:\n{output[-3000:]}")
    rss, anon, file_, shmem, guest, overhead = map(int, m.groups())
    return {"overhead_kib": overhead, "overhead_anon_kib": max(anon - guest, 0),
            "file_kib": file_, "shmem_kib": shmem, "guest_ram_resident_kib": guest}


def pcivmm_cmd(args, console, ram_mib=None, vcpus=1, gpus=0, extra=()):
    return [args.pcivmm, f"--kernel={args.guest_dir}/vmlinuz",
            f"--initrd={args.guest_dir}/initramfs.cpio.gz", f"--cmdline={CMDLINE}",
            f"--ram-mib={ram_mib or args.ram_mib}", f"--vcpus={vcpus}", f"--gpus={gpus}",
            f"--console={console}", f"--gpu-bar1-gib={args.gpu_bar1_gib}",
            "--bar-policy=deferred", "--stats",
            # A boot that hangs fails in 120 s (generous: TCG in the lab) with the report (the
            # last console line, each vCPU's RIP) instead of at run()'s 300 s.
            "--boot-timeout=120s"] + list(extra)


def qemu_cmd(args, machine, console):
    return [args.qemu, "-M", machine, "-accel", "kvm", "-cpu", "host", "-m", str(args.ram_mib),
            "-smp", "1", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-serial", f"file:{console}", "-kernel", f"{args.guest_dir}/vmlinuz",
            "-initrd", f"{args.guest_dir}/initramfs.cpio.gz", "-append", CMDLINE]


def summary(values):
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}


def rounds(args, tmp):
    sock = os.path.join(tmp, "api.sock")
    console = os.path.join(tmp, "console")
    fast = MODES["ecam_fast"]
    runners = {
        "pcivmm": lambda: pcivmm_cmd(args, console, extra=fast),
        "pcivmm_api": lambda: pcivmm_cmd(args, console, extra=fast + [
            f"--api-socket={sock}", "--exit-with-guest"]),
        "qemu_microvm": lambda: qemu_cmd(args, MICROVM, console),
        "qemu_q35": lambda: qemu_cmd(args, "q35", console),
    }
    runs = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, cmd in runners.items():
            r, out = run(cmd(), console)
            if name.startswith("pcivmm"):
                r["phases_ms"] = profile(out)
            runs[name].append(r)
    return runs


def scan(args, tmp):
    console = os.path.join(tmp, "console")
    rows = []
    for label, ram, vcpus, gpus in SCAN:
        r, out = run(pcivmm_cmd(args, console, ram, vcpus, gpus, MODES["ecam_fast"]), console)
        r["phases_ms"] = profile(out)
        r.update(memory(out))
        rows.append({"config": label, "ram_mib": ram, "vcpus": vcpus, "gpus": gpus, **r})
    return rows


def config_exits(args, tmp):
    console = os.path.join(tmp, "console")
    exits = {}
    for mode, flags in MODES.items():
        out = run(pcivmm_cmd(args, console, gpus=args.gpus, extra=flags), console)[1]
        m = re.search(r"^config exits: (\d+)$", out, re.M)
        if not m:
            sys.exit(f"boot_bench: no 'config exits' line in pcivmm's report:\n{out[-3000:]}")
        exits[mode] = int(m.group(1))
    return exits


def print_tables(result):
    runs, med = result["runs"], result["summary"]
    print(f"\nprocess start to exit (init writes the boot marker, then powers off), "
          f"{result['rounds']} interleaved rounds; ms: median [min, max]")
    print(f"{'runner':<14}{'wall':>24}{'guest uptime':>24}{'VMM share':>24}")
    for name in runs:
        s = med[name]
        cells = [f"{s[k]['median']:.0f} [{s[k]['min']:.0f}, {s[k]['max']:.0f}]"
                 for k in ("wall_ms", "guest_uptime_ms", "vmm_share_ms")]
        print(f"{name:<14}" + "".join(f"{c:>24}" for c in cells))
    r = result["ratios_vs_microvm"]
    print(f"ratio vs QEMU microvm (median wall): pcivmm {r['pcivmm']}, pcivmm_api "
          f"{r['pcivmm_api']}, qemu_q35 {r['qemu_q35']}  (goal: pcivmm <= 0.5)")
    print("\npcivmm boot profile, median ms from process start:")
    phases = result["phase_medians_ms"]
    print(f"{'phase':<22}{'pcivmm':>10}{'pcivmm_api':>12}")
    for phase in phases["pcivmm_api"]:
        print(f"{phase:<22}{phases['pcivmm'].get(phase, float('nan')):>10.1f}"
              f"{phases['pcivmm_api'][phase]:>12.1f}")
    print("\nsize scan (pcivmm, one boot each): ms, and KiB beyond guest RAM at exit")
    print(f"{'config':<12}{'wall':>8}{'to KVM_RUN':>12}{'guest':>8}{'share':>8}"
          f"{'overhead':>10}{'anon':>8}{'file':>8}{'shmem':>8}")
    for row in result["size_scan"]:
        print(f"{row['config']:<12}{row['wall_ms']:>8.0f}"
              f"{row['phases_ms'].get('first_kvm_run', 0):>12.0f}{row['guest_uptime_ms']:>8.0f}"
              f"{row['vmm_share_ms']:>8.0f}{row['overhead_kib']:>10}{row['overhead_anon_kib']:>8}"
              f"{row['file_kib']:>8}{row['shmem_kib']:>8}")
    print(f"\nconfig-access exits of one Linux boot with {result['gpus']} GPUs: " +
          ", ".join(f"{k} {v}" for k, v in result["config_exits"].items()))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pcivmm", required=True)
    p.add_argument("--guest-dir", required=True)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--ram-mib", type=int, default=256)
    p.add_argument("--gpus", type=int, default=2)
    p.add_argument("--gpu-bar1-gib", type=int, default=128)
    p.add_argument("--json", required=True)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="pcivmm-boot-bench-") as tmp:
        runs = rounds(args, tmp)
        size_scan = scan(args, tmp)
        exits = config_exits(args, tmp)
    summ = {name: {k: summary([r[k] for r in rs])
                   for k in ("wall_ms", "guest_uptime_ms", "vmm_share_ms")}
            for name, rs in runs.items()}
    micro = summ["qemu_microvm"]["wall_ms"]["median"]
    phase_medians = {name: {ph: round(statistics.median(r["phases_ms"][ph] for r in runs[name]), 1)
                            for ph in runs[name][0]["phases_ms"]}
                     for name in ("pcivmm", "pcivmm_api")}
    # On which KVM and where this ran (vmm/kvm/kvm_flavour.h, the same object as every bench's).
    kvm = json.loads(subprocess.run(
        [os.path.join(os.path.dirname(args.pcivmm), "kvm-flavour"), "--json"],
        check=True, capture_output=True, text=True).stdout)
    result = {
        "kvm": kvm, "rounds": args.rounds, "gpus": args.gpus, "runs": runs, "summary": summ,
        "ratios_vs_microvm": {name: round(s["wall_ms"]["median"] / micro, 3)
                              for name, s in summ.items()},
        "phase_medians_ms": phase_medians, "size_scan": size_scan, "config_exits": exits,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print_tables(result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
