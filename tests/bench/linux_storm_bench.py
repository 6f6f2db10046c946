#!/usr/bin/env python3
"""Linux storm benchmark: the VMware seed's table, measured from inside Linux.

Our Linux guest (pcivmm.storm=BDF,OFFSET,COUNT in guest-images/linux/init) preads the dword at
OFFSET of /sys/bus/pci/devices/0000:00:01.0/config COUNT times (pcivmm-cfg-storm), then the
same loop over a 4 KiB tmpfs file: the floor, what a read costs with no device behind it; and
at the config file's end, where sysfs returns 0 bytes before reaching the device: the kernel's
sysfs path alone.
Offset 0 is reachable by PIO and ECAM, 0x100 only by ECAM. Runners: pcivmm in its three config
modes (PIO below 0x100 and ECAM above; ECAM only, trapping; ECAM only with the fast path) with
one GPU-like device at 00:01.0, and QEMU q35 with an e1000e there, one boot per runner and
offset. The guest times the loop; the KVM underneath counts the config exits (kvm_exits.py):
those of a COUNT=1 boot are subtracted, which leaves the storm's own. Every read's value is
checked (offset 0: the device's IDs; 0x100: an extended capability header).
One round per run (./dev bench all interleaves the rounds); the COUNT=1 baselines are
measured once per --baseline file. Writes --json and prints a table.
"""
import argparse
import json
import os
import re
import sys
import tempfile

import kvm_exits
from linux_vm import (BASE_CMDLINE, MODES, PCIVMM_ECAM, Q35_ECAM, add_vm_args, kvm_object,
                      pcivmm_cmd, qemu_cmd, run)

BDF = "0000:00:01.0"
OFFSETS = (0, 0x100)
RUNNERS = ["pcivmm_pio", "pcivmm_ecam_trap", "pcivmm_ecam_fast", "qemu_q35"]


def command(args, runner, console, offset, count):
    cmdline = f"{BASE_CMDLINE} pcivmm.storm={BDF},{offset},{count}"
    if runner == "qemu_q35":
        return qemu_cmd(args, "q35", console, cmdline=cmdline, devices=1), Q35_ECAM
    mode = runner.removeprefix("pcivmm_")
    return pcivmm_cmd(args, console, cmdline=cmdline, gpus=1, extra=MODES[mode]), PCIVMM_ECAM


def storm_lines(text, cmd):
    """{"sysfs"|"tmpfs"|"sysfs_eof": (ns, value)} from the guest's PCIVMM storm lines."""
    found = {}
    for path, ns, value in re.findall(r"^PCIVMM storm (\S+) \S+ \d+ (\d+) (0x[0-9a-f]+)", text,
                                      re.M):
        kind = "tmpfs" if path.startswith("/tmp/") else "sysfs_eof" if "sysfs" in found else "sysfs"
        found[kind] = (int(ns), int(value, 16))
    if len(found) != 3:
        errors = re.findall(r"^PCIVMM error .*", text, re.M)
        sys.exit(f"linux-storm: no storm result on the console of {' '.join(cmd)}: {errors}")
    return found


def check(runner, offset, value, text, ecam):
    """The read must have reached the device, through the ECAM window we count."""
    ok = (value & 0xFFFF) not in (0, 0xFFFF) if offset == 0 else value not in (0, 0xFFFFFFFF)
    if not ok:
        sys.exit(f"linux-storm: {runner} read {value:#x} at {offset:#x}: not the device")
    if f"at [mem {ecam[0]:#010x}-" not in text:
        sys.exit(f"linux-storm: {runner}: the guest's MMCONFIG is not at {ecam[0]:#x}:\n{text}")


def boot(args, runner, offset, count, tmp):
    console = os.path.join(tmp, "console")
    cmd, ecam = command(args, runner, console, offset, count)
    with kvm_exits.ExitCounter(args.flavour, *ecam) as counter:
        text = run(cmd, console, f"{runner} offset {offset:#x} x{count}")[1]
    found = storm_lines(text, cmd)
    check(runner, offset, found["sysfs"][1], text, ecam)
    return found, counter.result()["config_exits"]


def baselines(args, tmp):
    """Config exits of a COUNT=1 boot per runner and offset, measured once per file."""
    if os.path.exists(args.baseline):
        with open(args.baseline) as f:
            return json.load(f)
    base = {r: {str(o): boot(args, r, o, 1, tmp)[1] for o in OFFSETS} for r in RUNNERS}
    with open(args.baseline, "w") as f:
        json.dump(base, f, indent=2)
    return base


def one_round(args, tmp):
    base = baselines(args, tmp)
    runs = {}
    for runner in RUNNERS:
        runs[runner] = {}
        for offset in OFFSETS:
            found, exits = boot(args, runner, offset, args.reads, tmp)
            runs[runner][f"sysfs_{offset}"] = {
                "ns": found["sysfs"][0], "value": f"{found['sysfs'][1]:#x}",
                "config_exits": exits - base[runner][str(offset)]}
            runs[runner][f"tmpfs_{offset}"] = {"ns": found["tmpfs"][0]}
            runs[runner][f"sysfs_eof_{offset}"] = {"ns": found["sysfs_eof"][0]}
    return runs


def print_table(reads, runs):
    q35 = {o: runs["qemu_q35"][f"sysfs_{o}"]["ns"] for o in OFFSETS}
    print(f"\nlinux-storm: {reads} dword preads of {BDF}'s sysfs config file per offset "
          "(guest-timed; exits counted by the KVM underneath)")
    print(f"{'runner':<18}{'offset':>8}{'s/100k':>10}{'exits':>10}{'vs q35':>9}{'vs floor':>10}"
          f"{'sysfs alone':>13}")
    for runner, r in runs.items():
        for o in OFFSETS:
            s, floor = r[f"sysfs_{o}"], r[f"tmpfs_{o}"]["ns"]
            per100k = s["ns"] / reads * 1e5 / 1e9
            alone = r[f"sysfs_eof_{o}"]["ns"] / reads * 1e5 / 1e9
            print(f"{runner:<18}{o:>#8x}{per100k:>10.3f}{s['config_exits']:>10}"
                  f"{q35[o] / s['ns']:>8.1f}x{s['ns'] / floor:>9.2f}x{alone:>12.3f}s")


def main():
    p = argparse.ArgumentParser()
    add_vm_args(p)
    p.add_argument("--reads", type=int, default=100000)
    p.add_argument("--baseline", help="the COUNT=1 exit counts (measured if absent)")
    args = p.parse_args()
    kvm = kvm_object(args.pcivmm)
    args.flavour = kvm["flavour"]
    with tempfile.TemporaryDirectory(prefix="pcivmm-storm-") as tmp:
        if not args.baseline:
            args.baseline = os.path.join(tmp, "baseline.json")
        runs = one_round(args, tmp)
    print_table(args.reads, runs)
    with open(args.json, "w") as f:
        json.dump({"kvm": kvm, "reads": args.reads, "runs": runs}, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
