"""One Linux guest (our kernel and initramfs, guest-images/linux) under pcivmm or QEMU: the
command lines and a run that returns wall time and console, shared by the Linux benches
(boot_bench.py, linux_storm_bench.py). Both VMMs get the same kernel, initramfs and command
line; QEMU gets -accel kvm, direct kernel boot and PCIe devices at 00:01.0, 00:02.0, ... where
pcivmm has its GPU-like devices (e1000e: a PCIe endpoint with 4 KiB of config space, which
no driver in our initramfs binds)."""
import json
import os
import re
import statistics
import subprocess
import sys
import time

BASE_CMDLINE = "console=ttyS0 8250.nr_uarts=1 iomem=relaxed panic=-1 quiet"
BENCH_CMDLINE = BASE_CMDLINE + " pcivmm.bench=1"
MODES = {  # config-access mode -> pcivmm flags
    "pio": ["--pci-pio=true"],  # PIO below 0x100, ECAM (trapping) above
    "ecam_trap": ["--pci-pio=false"],
    "ecam_fast": ["--pci-pio=false", "--ecam-fast-path"],
}
MICROVM = "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on"
# Where each VMM puts its ECAM window (the guest prints it: "PCI: MMCONFIG ... at [mem ...]").
PCIVMM_ECAM = (0xE000_0000, 256 << 20)  # pci/access/ecam_trap.h kEcamBase, up to 256 buses
Q35_ECAM = (0xB000_0000, 256 << 20)     # QEMU's MCH_HOST_BRIDGE_PCIEXBAR_DEFAULT, 256 buses


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, console, label, timeout=300):
    """One boot: (wall ms, console text, VMM output). Exits the bench on a failed run."""
    log(f"  {label}: {os.path.basename(cmd[0])}")
    if os.path.exists(console):
        os.remove(console)
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    wall_ms = (time.monotonic() - start) * 1000.0
    text = open(console, errors="replace").read() if os.path.exists(console) else ""
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                 f"console:\n{text[-2000:]}")
    return wall_ms, text, proc.stdout


def uptime_ms(console_text, cmd):
    m = re.search(r"PCIVMM uptime_us (\d+)", console_text)
    if not m:
        sys.exit(f"no 'PCIVMM uptime_us' line on the console of {' '.join(cmd)}")
    return int(m.group(1)) / 1000.0


def pcivmm_cmd(args, console, cmdline=BENCH_CMDLINE, ram_mib=None, vcpus=1, gpus=0,
               extra=()):
    return [args.pcivmm, f"--kernel={args.guest_dir}/vmlinuz",
            f"--initrd={args.guest_dir}/initramfs.cpio.gz", f"--cmdline={cmdline}",
            f"--ram-mib={ram_mib or args.ram_mib}", f"--vcpus={vcpus}", f"--gpus={gpus}",
            f"--console={console}", f"--gpu-bar1-gib={args.gpu_bar1_gib}",
            "--bar-policy=deferred", "--stats",
            # A boot that hangs fails in 120 s (generous: TCG in the lab) with the report (the
            # last console line, each vCPU's RIP) instead of at run()'s 300 s.
            "--boot-timeout=120s"] + list(extra)


def qemu_cmd(args, machine, console, cmdline=BENCH_CMDLINE, devices=0):
    cmd = [args.qemu, "-M", machine, "-accel", "kvm", "-cpu", "host", "-m", str(args.ram_mib),
           "-smp", "1", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
           "-serial", f"file:{console}", "-kernel", f"{args.guest_dir}/vmlinuz",
           "-initrd", f"{args.guest_dir}/initramfs.cpio.gz", "-append", cmdline]
    for slot in range(1, devices + 1):
        cmd += ["-device", f"e1000e,addr={slot:02x}.0,romfile="]
    return cmd


def config_exits_line(output):
    """pcivmm's own count of config-access exits (--stats)."""
    m = re.search(r"^config exits: (\d+)$", output, re.M)
    if not m:
        sys.exit(f"no 'config exits' line in pcivmm's report:\n{output[-3000:]}")
    return int(m.group(1))


def summary(values):
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}


def add_vm_args(p):
    p.add_argument("--pcivmm", required=True)
    p.add_argument("--guest-dir", required=True)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--ram-mib", type=int, default=256)
    p.add_argument("--gpu-bar1-gib", type=int, default=128)
    p.add_argument("--json", required=True)


def kvm_object(pcivmm):
    """On which KVM and where this ran (vmm/kvm/kvm_flavour.h, as in every bench's JSON)."""
    return json.loads(subprocess.run(
        [os.path.join(os.path.dirname(pcivmm), "kvm-flavour"), "--json"],
        check=True, capture_output=True, text=True).stdout)
