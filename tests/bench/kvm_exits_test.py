#!/usr/bin/env python3
"""Unit test of kvm_exits.py against a fake tracefs: the triggers it sets and removes, and how
it reads the kernel's hist files (the text below is a real kvm_exit hist from the lab)."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvm_exits  # noqa: E402

EXIT_HIST = """# event histogram
#
# trigger info: hist:keys=exit_reason:vals=hitcount:sort=hitcount:size=2048 [active]
#

{ exit_reason:       1024 } hitcount:          1
{ exit_reason:        123 } hitcount:         53

Totals:
    Hits: 54
    Entries: 2
    Dropped: 0


# event histogram
#
# trigger info: hist:keys=info1:vals=hitcount:sort=hitcount:size=2048 if exit_reason == 123 && info1 >= 217579520 && info1 < 218103808 [active]
#

{ info1:  217579520 } hitcount:         20
{ info1:  217841664 } hitcount:         20

Totals:
    Hits: 40
    Entries: 2
    Dropped: 0
"""
MMIO_HIST = """# event histogram
#
# trigger info: hist:keys=type:vals=hitcount:sort=hitcount:size=2048 if gpa >= 3758096384 && gpa < 4026531840 && type != 1 [active]
#

{ type:          0 } hitcount:          7
{ type:          2 } hitcount:          3

Totals:
    Hits: 10
    Entries: 2
    Dropped: 0
"""


class ExitCounterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        kvm_exits.TRACEFS = self.tmp.name
        for event in ("kvm_exit", "kvm_mmio"):
            os.makedirs(self.path(event))
            open(self.path(event, "trigger"), "w").close()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, event, name=""):
        return os.path.join(self.tmp.name, "events", "kvm", event, name)

    def write(self, event, name, text):
        with open(self.path(event, name), "w") as f:
            f.write(text)

    def test_counts_config_exits_by_port_and_ecam_and_all_exits(self):
        self.write("kvm_exit", "hist", EXIT_HIST)
        self.write("kvm_mmio", "hist", MMIO_HIST)
        with kvm_exits.ExitCounter("svm", 0xE000_0000, 256 << 20) as c:
            pass
        self.assertEqual(c.result(), {"config_exits": 50, "pio_config_exits": 40,
                                      "ecam_config_exits": 10, "all_exits": 54})

    def test_sets_filtered_triggers_and_removes_each(self):
        self.write("kvm_exit", "hist", EXIT_HIST)
        self.write("kvm_mmio", "hist", MMIO_HIST)
        with kvm_exits.ExitCounter("vmx", 0xB000_0000, 1 << 20):
            pass
        with open(self.path("kvm_exit", "trigger")) as f:
            lines = f.read().splitlines()
        self.assertIn("hist:keys=info1:vals=hitcount if exit_reason == 30 && "
                      f"info1 >= {0xCF8 << 16} && info1 < {0xD00 << 16}", lines)
        self.assertEqual(sum(line.startswith("!") for line in lines), 2)
        with open(self.path("kvm_mmio", "trigger")) as f:
            self.assertIn(f"gpa >= {0xB000_0000} && gpa < {0xB010_0000} && type != 1", f.read())

    def test_an_unknown_kvm_is_refused(self):
        with self.assertRaisesRegex(ValueError, "pvm"):
            kvm_exits.ExitCounter("pvm", 0, 1)


if __name__ == "__main__":
    unittest.main()
