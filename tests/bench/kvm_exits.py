"""Config-access exits of one VM, counted by the KVM underneath it (not by the VMM).

So that pcivmm and QEMU are counted the same way, the benches ask the kernel: histogram
triggers (Documentation/trace/histogram.rst) on two KVM tracepoints, while one VM runs at a
time:
  kvm:kvm_exit  every VM exit, by exit_reason. Port I/O exits carry the port in bits 31:16
                of info1 on both vendors (AMD APM vol. 2, 15.10.2 "IN and OUT Behavior",
                EXITINFO1; Intel SDM vol. 3, Table 28-5, the exit qualification), so
                0xCF8..0xCFF is one range of info1.
  kvm:kvm_mmio  every MMIO access KVM emulates: type 0 (a read it must hand to the VMM) and 2
                (a write) in the ECAM window are config exits; type 1 (a read completed) is
                the second half of a type 0 and is not counted.
Needs root and tracefs (mounted here if it is not).
"""
import os
import re
import subprocess

TRACEFS = "/sys/kernel/tracing"
# Exit codes of a port I/O instruction: SVM_EXIT_IOIO (AMD APM vol. 2, appendix C) and VMX
# basic exit reason 30 (Intel SDM vol. 3, appendix C).
IO_EXIT = {"svm": 0x7B, "vmx": 30}
CONFIG_PORTS_INFO1 = (0xCF8 << 16, 0xD00 << 16)  # [low, high) of info1
MMIO_READ_UNSATISFIED, MMIO_WRITE = 0, 2         # include/trace/events/kvm.h


def _mount():
    if not os.path.exists(os.path.join(TRACEFS, "events")):
        subprocess.run(["mount", "-t", "tracefs", "tracefs", TRACEFS], check=True)


def _trigger(event, spec, remove=False):
    # Appended: opening a trigger file with O_TRUNC removes the event's other triggers.
    path = os.path.join(TRACEFS, "events", "kvm", event, "trigger")
    with open(path, "a") as f:
        f.write(("!" if remove else "") + spec + "\n")


def _hist_hits(event):
    """Hits per trigger of an event's hist file, by each trigger's keys (e.g. "exit_reason")."""
    with open(os.path.join(TRACEFS, "events", "kvm", event, "hist")) as f:
        blocks = f.read().split("# trigger info: hist:keys=")[1:]
    return {b.split(":", 1)[0]: int(re.search(r"Hits: +(\d+)", b).group(1)) for b in blocks}


class ExitCounter:
    """Counts exits while in a `with` block: all of them, and config exits (ports 0xCF8..0xCFF,
    MMIO in [ecam_base, ecam_base + ecam_size)). One VM at a time: the counts are global.
    Each trigger has its own keys, which tell the triggers apart in the hist files."""

    def __init__(self, flavour, ecam_base, ecam_size):
        if flavour not in IO_EXIT:
            raise ValueError(f"kvm_exits: exit codes of a {flavour} KVM are not known")
        lo, hi = CONFIG_PORTS_INFO1
        self.triggers = [  # (name, event, keys, filter)
            ("all", "kvm_exit", "exit_reason", ""),
            ("pio", "kvm_exit", "info1",
             f"exit_reason == {IO_EXIT[flavour]} && info1 >= {lo} && info1 < {hi}"),
            ("ecam", "kvm_mmio", "type",
             f"gpa >= {ecam_base} && gpa < {ecam_base + ecam_size} && type != 1"),
        ]
        self.counts = {}

    @staticmethod
    def _spec(keys, where):
        return f"hist:keys={keys}:vals=hitcount" + (f" if {where}" if where else "")

    def __enter__(self):
        _mount()
        for _, event, keys, where in self.triggers:
            _trigger(event, self._spec(keys, where))
        return self

    def __exit__(self, *exc):
        try:
            hits = {event: _hist_hits(event) for event in ("kvm_exit", "kvm_mmio")}
            self.counts = {name: hits[event].get(keys, 0) for name, event, keys, _ in self.triggers}
        finally:
            for _, event, keys, where in self.triggers:
                _trigger(event, self._spec(keys, where), remove=True)
        return False

    def result(self):
        c = self.counts
        return {"config_exits": c["pio"] + c["ecam"], "pio_config_exits": c["pio"],
                "ecam_config_exits": c["ecam"], "all_exits": c["all"]}
