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
of one Linux boot per config mode and under QEMU q35 with as many PCIe devices, counted by the
KVM underneath (kvm_exits.py) and, for pcivmm, by pcivmm too. --parts picks some of the three
(./dev bench all runs the rounds part once per round). Writes --json and prints tables. Needs
/dev/kvm (run it through ./dev bench boot).
"""
import argparse
import json
import os
import re
import statistics
import sys
import tempfile

import kvm_exits
from linux_vm import (MICROVM, MODES, PCIVMM_ECAM, Q35_ECAM, add_vm_args, config_exits_line,
                      kvm_object, pcivmm_cmd, qemu_cmd, run, summary, uptime_ms)

# The size scan: (label, RAM MiB, vCPUs, GPUs); the first is the base the others vary.
SCAN = [("base", 256, 1, 0), ("ram 4 GiB", 4096, 1, 0), ("ram 64 GiB", 65536, 1, 0),
        ("2 vCPUs", 256, 2, 0), ("4 vCPUs", 256, 4, 0), ("2 GPUs", 256, 1, 2),
        ("14 GPUs", 256, 1, 14)]


def boot(cmd, console, label):
    """One boot: wall ms, the guest's uptime ms at the marker, the VMM share; and its output."""
    wall_ms, text, out = run(cmd, console, label)
    up = uptime_ms(text, cmd)
    return {"wall_ms": round(wall_ms, 1), "guest_uptime_ms": up,
            "vmm_share_ms": round(wall_ms - up, 1)}, out


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
            r, out = boot(cmd(), console, f"round {name}")
            if name.startswith("pcivmm"):
                r["phases_ms"] = profile(out)
            runs[name].append(r)
    return runs


def scan(args, tmp):
    console = os.path.join(tmp, "console")
    rows = []
    for label, ram, vcpus, gpus in SCAN:
        r, out = boot(pcivmm_cmd(args, console, ram_mib=ram, vcpus=vcpus, gpus=gpus,
                                 extra=MODES["ecam_fast"]), console, f"scan {label}")
        r["phases_ms"] = profile(out)
        r.update(memory(out))
        rows.append({"config": label, "ram_mib": ram, "vcpus": vcpus, "gpus": gpus, **r})
    return rows


def config_exits(args, tmp):
    """Config exits of one Linux boot with args.gpus devices: pcivmm in each mode and QEMU q35,
    counted by the KVM underneath; pcivmm's own count beside its own."""
    console = os.path.join(tmp, "console")
    flavour = kvm_object(args.pcivmm)["flavour"]
    vms = {f"pcivmm_{mode}": (pcivmm_cmd(args, console, gpus=args.gpus, extra=flags), PCIVMM_ECAM)
           for mode, flags in MODES.items()}
    vms["qemu_q35"] = (qemu_cmd(args, "q35", console, devices=args.gpus), Q35_ECAM)
    exits = {}
    for name, (cmd, ecam) in vms.items():
        with kvm_exits.ExitCounter(flavour, *ecam) as counter:
            out = run(cmd, console, f"exits {name}")[2]
        exits[name] = counter.result()
        exits[name]["pcivmm_counted"] = config_exits_line(out) if name != "qemu_q35" else None
    return exits


def print_rounds(result):
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


def print_scan(rows):
    print("\nsize scan (pcivmm, one boot each): ms, and KiB beyond guest RAM at exit")
    print(f"{'config':<12}{'wall':>8}{'to KVM_RUN':>12}{'guest':>8}{'share':>8}"
          f"{'overhead':>10}{'anon':>8}{'file':>8}{'shmem':>8}")
    for row in rows:
        print(f"{row['config']:<12}{row['wall_ms']:>8.0f}"
              f"{row['phases_ms'].get('first_kvm_run', 0):>12.0f}{row['guest_uptime_ms']:>8.0f}"
              f"{row['vmm_share_ms']:>8.0f}{row['overhead_kib']:>10}{row['overhead_anon_kib']:>8}"
              f"{row['file_kib']:>8}{row['shmem_kib']:>8}")


def print_exits(gpus, exits):
    print(f"\nconfig-access exits of one Linux boot with {gpus} devices, counted by the KVM "
          "underneath (pcivmm's own count in brackets):")
    for name, e in exits.items():
        own = f" [{e['pcivmm_counted']}]" if e["pcivmm_counted"] is not None else ""
        print(f"  {name:<18}{e['config_exits']:>8}{own}  (port {e['pio_config_exits']}, ECAM "
              f"{e['ecam_config_exits']}; all exits {e['all_exits']})")


def rounds_result(args, runs):
    summ = {name: {k: summary([r[k] for r in rs])
                   for k in ("wall_ms", "guest_uptime_ms", "vmm_share_ms")}
            for name, rs in runs.items()}
    micro = summ["qemu_microvm"]["wall_ms"]["median"]
    phase_medians = {name: {ph: round(statistics.median(r["phases_ms"][ph] for r in runs[name]), 1)
                            for ph in runs[name][0]["phases_ms"]}
                     for name in ("pcivmm", "pcivmm_api")}
    return {"rounds": args.rounds, "runs": runs, "summary": summ,
            "ratios_vs_microvm": {name: round(s["wall_ms"]["median"] / micro, 3)
                                  for name, s in summ.items()},
            "phase_medians_ms": phase_medians}


def main():
    p = argparse.ArgumentParser()
    add_vm_args(p)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--gpus", type=int, default=2)
    p.add_argument("--parts", default="rounds,scan,exits",
                   help="comma-separated: rounds, scan, exits")
    args = p.parse_args()
    parts = set(args.parts.split(","))
    if not parts or parts - {"rounds", "scan", "exits"}:
        sys.exit(f"boot_bench: --parts={args.parts}: expected rounds, scan and/or exits")

    result = {"kvm": kvm_object(args.pcivmm), "gpus": args.gpus}
    with tempfile.TemporaryDirectory(prefix="pcivmm-boot-bench-") as tmp:
        if "rounds" in parts:
            result.update(rounds_result(args, rounds(args, tmp)))
            print_rounds(result)
        if "scan" in parts:
            result["size_scan"] = scan(args, tmp)
            print_scan(result["size_scan"])
        if "exits" in parts:
            result["config_exits"] = config_exits(args, tmp)
            print_exits(args.gpus, result["config_exits"])
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
