#!/usr/bin/python3
"""Unit test of the lab report (report.py) over the fixture RAW in testdata/raw.

The fixture is five rounds written by testdata/make_fixture.py (vfio left out). Each test
that changes the input works on a temporary copy. The plots need gnuplot (./dev deps
installs gnuplot-nox): without it the plot test fails.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import report  # noqa: E402
import report_md  # noqa: E402

FIXTURE = os.path.join(HERE, "testdata", "raw")
SCRIPT = os.path.join(HERE, "report.py")
PLOTS = ["config-read-cost", "boot-phases", "mapping-latency", "overhead-memory"]


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def line_with(md, text):
    lines = [line for line in md.splitlines() if text in line]
    assert lines, f"no line with {text!r} in the report"
    return lines[0]


def goals_by_name(rep):
    return {g["name"]: g for g in rep["goals"]}


class TempRaw(unittest.TestCase):
    """A copy of the fixture to change."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="report_test.")
        self.raw = os.path.join(self.tmp, "raw")
        shutil.copytree(FIXTURE, self.raw)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def edit(self, rel, change, rounds=None):
        """Applies change(doc) to RAW/rel, or to rounds/rel/<k>.json for k in rounds."""
        paths = [rel] if rounds is None else [f"rounds/{rel}/{k}.json" for k in rounds]
        for path in (os.path.join(self.raw, p) for p in paths):
            with open(path) as f:
                doc = json.load(f)
            change(doc)
            with open(path, "w") as f:
                json.dump(doc, f)


class FixtureReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rep = report.build_report(FIXTURE)
        cls.md = report_md.render(cls.rep, {})

    def test_timed_figure_is_min_median_max_over_the_rounds(self):
        fig = self.rep["benches"]["exit-loop"]["figures"]["pcivmm_ns_per_exit"]
        self.assertEqual(fig["rounds"], [31000.0, 31500.0, 30500.0, 32000.0, 31200.0])
        self.assertEqual((fig["min"], fig["median"], fig["max"]), (30500.0, 31200.0, 32000.0))
        self.assertIn("31.2 us [30.5, 32.0]", line_with(self.md, "`pcivmm_ns_per_exit`"))

    def test_counts_are_one_value(self):
        counts = self.rep["benches"]["exit-loop"]["counts"]
        self.assertEqual(counts["exits"], {"value": 20026, "agree": True})
        storm = self.rep["benches"]["linux-storm"]["counts"]
        self.assertEqual(storm["pcivmm_pio.sysfs_0.config_exits"]["value"], 200000)

    def test_ratio_uses_the_extremes(self):
        r = next(r for r in self.rep["ratios"] if r["bench"] == "exit-loop")
        self.assertAlmostEqual(r["median_ratio"], 31200 / 30400)
        self.assertAlmostEqual(r["min"], 30500 / 31800)
        self.assertAlmostEqual(r["max"], 32000 / 30100)
        self.assertFalse(r["separated"])

    def test_not_separated_only_where_the_ranges_overlap(self):
        overlap = line_with(self.md, "exit-loop: pcivmm / bare KVM_RUN loop")
        self.assertIn("**not separated**", overlap)
        apart = line_with(self.md, "config-reads: PIO / ECAM fast")
        self.assertNotIn("not separated", apart)
        self.assertIn("separated", apart)

    def test_missing_bench_is_not_run(self):
        self.assertEqual(self.rep["benches"]["vfio"]["status"], "not run")
        self.assertIn("**not run**", self.md.split("## vfio", 1)[1].split("##", 1)[0])
        self.assertIn("| vfio | not run |", self.md)

    def test_goals_met_on_the_fixture(self):
        goals = goals_by_name(self.rep)
        self.assertEqual(sorted(goals), sorted([
            "storm_fast_vs_q35_0", "storm_fast_vs_q35_0x100", "storm_fast_vs_floor_0",
            "storm_fast_vs_floor_0x100", "boot_config_exits", "deferred_per_bar",
            "deferred_batched"]))
        self.assertTrue(all(g["met"] for g in goals.values()), goals)
        self.assertAlmostEqual(goals["storm_fast_vs_q35_0"]["measured"], 118000 / 1900)
        self.assertNotIn("not met", self.md)

    def test_machine_facts_come_first(self):
        head = self.md.split("## Goals", 1)[0]
        for text in ("AMD EPYC 7B13 (fixture), 2 cores", "svm in the nested lab, on a pvm host",
                     "6.12.0-pvm", "6.1.119", "`0123abc`", "62 min 5 s"):
            self.assertIn(text, head)


class ChangedInputs(TempRaw):
    def test_goals_flip_to_not_met(self):
        def lower_floor_faster_q35(doc):
            doc["runs"]["pcivmm_ecam_fast"]["tmpfs_0"]["ns"] /= 2  # 2.6x the floor
            doc["runs"]["qemu_q35"]["sysfs_256"]["ns"] /= 10  # 6x the fast path only

        def batched_maps(doc):
            doc["patterns"]["batched"]["deferred"]["map_ops"] = 3

        self.edit("linux-storm", lower_floor_faster_q35, rounds=range(1, 6))
        self.edit("bar-mapping", batched_maps, rounds=[2])
        self.edit("once/boot-exits.json",
                  lambda d: d["runs"]["pcivmm_ecam_fast"].update(config_exits=500))
        rep = report.build_report(self.raw)
        goals = goals_by_name(rep)
        met = {name: g["met"] for name, g in goals.items()}
        self.assertEqual(met, {"storm_fast_vs_q35_0": True, "storm_fast_vs_q35_0x100": False,
                               "storm_fast_vs_floor_0": False, "storm_fast_vs_floor_0x100": True,
                               "boot_config_exits": False, "deferred_per_bar": True,
                               "deferred_batched": False})
        counts = rep["benches"]["bar-mapping"]["counts"]["patterns.batched.deferred.map_ops"]
        self.assertEqual(counts, {"value": 0, "agree": False, "rounds": [0, 3, 0, 0, 0]})
        md = report_md.render(rep, {})
        self.assertIn("**not met**", line_with(md, "pcivmm ECAM fast < 1/10 of QEMU q35"))
        self.assertIn("**rounds disagree**", md)

    def test_missing_benches_and_unreadable_rounds_do_not_crash(self):
        shutil.rmtree(os.path.join(self.raw, "rounds", "linux-storm"))
        os.remove(os.path.join(self.raw, "once", "boot-exits.json"))
        os.makedirs(os.path.join(self.raw, "rounds", "vfio"))
        with open(os.path.join(self.raw, "rounds", "vfio", "1.json"), "w") as f:
            f.write('{"kvm": ')  # a round cut short
        with open(os.path.join(self.raw, "failures.json"), "w") as f:
            json.dump([{"step": "vfio.1", "exit": 1}, {"step": "boot-exits", "exit": 2}], f)
        rep = report.build_report(self.raw)
        md = report_md.render(rep, {})
        self.assertIn("**failed steps**: vfio.1 (", md.split("## vfio", 1)[1])
        self.assertEqual(rep["benches"]["boot-exits"]["failed_steps"], ["boot-exits"])
        self.assertNotIn("failed_steps", rep["benches"]["boot"])
        for bench in ("linux-storm", "boot-exits", "vfio"):
            self.assertEqual(rep["benches"][bench]["status"], "not run", bench)
        goals = goals_by_name(rep)
        for name in ("storm_fast_vs_q35_0", "storm_fast_vs_floor_0x100", "boot_config_exits"):
            self.assertIsNone(goals[name]["met"], name)
            self.assertIn(f"| {goals[name]['goal']} |", md)
        self.assertTrue(goals["deferred_per_bar"]["met"])

    def test_without_patterns_the_policies_stand_for_the_probe(self):
        self.edit("bar-mapping", lambda d: d.pop("patterns"), rounds=range(1, 6))
        goals = goals_by_name(report.build_report(self.raw))
        self.assertIn("deferred_probe", goals)
        self.assertTrue(goals["deferred_probe"]["met"])

    def test_readme_check_detects_a_stale_block(self):
        out = os.path.join(self.tmp, "out")
        os.makedirs(out)
        with open(os.path.join(out, "report.json"), "w") as f:
            json.dump(report.build_report(self.raw), f)
        readme = os.path.join(self.tmp, "README.md")
        with open(readme, "w") as f:
            f.write("# pcivmm\n\nbefore\n\n<!-- bench-report:begin -->\nold figures\n"
                    "<!-- bench-report:end -->\n\nafter\n")
        source = os.path.join(out, "report.json")
        stale = run_script("--readme", readme, "--from", source, "--check")
        self.assertEqual(stale.returncode, 1, stale.stderr)
        self.assertIn("-old figures", stale.stdout)
        self.assertIn("+| config-access exits of one Linux boot", stale.stdout)
        self.assertEqual(run_script("--readme", readme, "--from", source).returncode, 0)
        fresh = run_script("--readme", readme, "--from", source, "--check")
        self.assertEqual(fresh.returncode, 0, fresh.stdout + fresh.stderr)
        with open(readme) as f:
            text = f.read()
        self.assertTrue(text.startswith("# pcivmm\n\nbefore\n\n<!-- bench-report:begin -->\n"))
        self.assertTrue(text.endswith("<!-- bench-report:end -->\n\nafter\n"))
        self.assertNotIn("old figures", text)

    def test_readme_without_markers_is_an_error(self):
        readme = os.path.join(self.tmp, "README.md")
        with open(readme, "w") as f:
            f.write("# no markers\n")
        source = os.path.join(self.tmp, "report.json")
        with open(source, "w") as f:
            json.dump(report.build_report(self.raw), f)
        self.assertEqual(run_script("--readme", readme, "--from", source).returncode, 2)


class CommandLine(unittest.TestCase):
    def test_writes_json_markdown_and_plots(self):
        self.assertIsNotNone(shutil.which("gnuplot"),
                             "gnuplot not found: the report's plots need it "
                             "(apt-get install gnuplot-nox; ./dev deps installs it)")
        with tempfile.TemporaryDirectory(prefix="report_test.") as out:
            run = run_script("--raw", FIXTURE, "--out", out)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            with open(os.path.join(out, "report.json")) as f:
                self.assertEqual(json.load(f)["rounds"], 5)
            with open(os.path.join(out, "report.md")) as f:
                md = f.read()
            for plot in PLOTS + ["storm-seconds"]:
                png = os.path.join(out, plot + ".png")
                self.assertTrue(os.path.isfile(png), plot)
                with open(png, "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", plot)
                self.assertGreater(os.path.getsize(png), 5000, plot)
                self.assertTrue(os.path.isfile(os.path.join(out, plot + ".dat")), plot)
                self.assertIn(f"![{plot}]({plot}.png)", md)


if __name__ == "__main__":
    unittest.main(verbosity=2)
