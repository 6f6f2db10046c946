#!/usr/bin/python3
"""The performance lab's report: the RAW directory of `./dev bench all` in, a report out.

  report.py --raw RAW --out OUT
      OUT/report.json, OUT/report.md and the plots (PNG via gnuplot, with their data files)
  report.py --readme README.md --from OUT/report.json [--check]
      rewrites the README block between <!-- bench-report:begin --> and
      <!-- bench-report:end --> with the headline tables; --check only compares and exits 1
      with a diff when the block is stale

RAW: machine.json, rounds/<bench>/<k>.json (k = 1..rounds), once/boot-scan.json,
once/boot-exits.json, failures.json (the steps that failed: named in the report). Figures
that vary per round (times, per-round ratios, memory) become
{"min", "median", "max", "rounds"}; counts that should not vary (exits, map ops) become
{"value", "agree"} (plus "rounds" when they disagree). Standard library only.
"""
import argparse
import json
import os
import re
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_md  # noqa: E402
import report_plots  # noqa: E402
from bench_all import BENCHES  # noqa: E402
from linux_storm_bench import RUNNERS as STORM_RUNNERS  # noqa: E402

BOOT_RUNNERS = ["pcivmm", "pcivmm_api", "qemu_microvm", "qemu_q35"]
# Leaf names of counts: the same in every round, or the rounds disagree (flagged).
COUNT_RE = re.compile(r"(^|_)(exits|ops|maps|unmaps|reads|calls|clients|devices|bytes|errors"
                      r"|agree|gpus|value|counted|samples)$|_ops_per_gpu$")
SKIP_KEYS = {"kvm", "latency_ns"}  # handled apart from the generic flattening


# ---- statistics ------------------------------------------------------------------------

def timed(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "rounds": values}


def count(values):
    agree = all(v == values[0] for v in values)
    out = {"value": values[0] if agree else statistics.mode(values), "agree": agree}
    if not agree:
        out["rounds"] = values
    return out


def is_count(name, values):
    leaf = name.rsplit(".", 1)[-1]
    return bool(COUNT_RE.search(leaf)) or any(isinstance(v, (str, bool)) for v in values)


def summarize(samples):
    """[{name: value}] -> (figures, counts), names in first-seen order."""
    names = list(dict.fromkeys(n for s in samples for n in s))
    figures, counts = {}, {}
    for name in names:
        values = [s[name] for s in samples if name in s and s[name] is not None]
        if not values:
            continue
        if is_count(name, values):
            counts[name] = count(values)
        else:
            figures[name] = timed(values)
    return figures, counts


def flatten(obj, prefix=""):
    out = {}
    for key, value in obj.items():
        name = prefix + str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            out[name] = value
    return out


# ---- per-bench extraction: one round's JSON -> samples ([{name: value}]) -------------------

def generic_samples(doc):
    return [flatten({k: v for k, v in doc.items() if k not in SKIP_KEYS})]


def latency_samples(doc):
    out = {}
    for size, ops in (doc.get("latency_ns") or {}).items():
        for op, values in ops.items():
            if values:
                out[f"latency.{size}.{op}_median_ns"] = statistics.median(values)
                out[f"latency.{size}.{op}_samples"] = len(values)
    return out


def bar_mapping_samples(doc):
    sample = generic_samples(doc)[0]
    sample.update(latency_samples(doc))
    return [sample]


def boot_samples(doc):
    """runs: {runner: [entry, ...]} (one entry per round in bench all); entry i of every
    runner is one sample, so a single boot.json of N rounds also works."""
    runs = {r: (v if isinstance(v, list) else [v]) for r, v in doc.get("runs", {}).items()}
    samples = []
    for i in range(max((len(v) for v in runs.values()), default=0)):
        sample = {}
        for runner, entries in runs.items():
            if i < len(entries):
                sample.update(boot_entry(runner, entries[i]))
        micro = sample.get("qemu_microvm.wall_ms")
        for runner in runs:
            wall = sample.get(f"{runner}.wall_ms")
            if micro and wall is not None:
                sample[f"{runner}.wall_vs_microvm"] = wall / micro
        samples.append(sample)
    return samples


def boot_entry(runner, entry):
    out = {f"{runner}.{k}": entry[k] for k in ("wall_ms", "guest_uptime_ms", "vmm_share_ms")
           if k in entry}
    for phase, ms in (entry.get("phases_ms") or {}).items():
        if phase != "guest_uptime":  # the same as guest_uptime_ms
            out[f"{runner}.phases_ms.{phase}"] = ms
    return out


def storm_samples(doc):
    reads = doc.get("reads") or 0
    sample = {"reads": reads}
    for runner, probes in doc.get("runs", {}).items():
        for probe, r in probes.items():
            pre = f"{runner}.{probe}"
            if "ns" in r and reads:
                sample[f"{pre}.ns_per_read"] = r["ns"] / reads
                sample[f"{pre}.s_per_100k"] = r["ns"] / reads * 1e5 / 1e9
            for key in ("config_exits", "value"):
                if key in r:
                    sample[f"{pre}.{key}"] = r[key]
    return [sample]


EXTRACT = {"bar-mapping": bar_mapping_samples, "boot": boot_samples,
           "linux-storm": storm_samples}


# ---- RAW -> sections ---------------------------------------------------------------------

def load_json(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"report: skipping {path}: {e}", file=sys.stderr)
        return None


def round_files(raw, bench):
    folder = os.path.join(raw, "rounds", bench)
    if not os.path.isdir(folder):
        return []
    names = [n for n in os.listdir(folder) if n.endswith(".json")]
    key = lambda n: (0, int(n[:-5])) if n[:-5].isdigit() else (1, n)  # noqa: E731
    return [os.path.join(folder, n) for n in sorted(names, key=key)]


def kvm_of(docs):
    kvms = [d.get("kvm") for d in docs]
    return {"kvm": kvms[0], "kvm_agree": all(k == kvms[0] for k in kvms)}


def not_run(reason):
    return {"status": "not run", "reason": reason}


def bench_section(raw, bench):
    files = round_files(raw, bench)
    docs = [d for d in (load_json(f) for f in files) if isinstance(d, dict)]
    if not docs:
        return not_run(f"no readable rounds/{bench}/*.json in RAW")
    samples = [s for d in docs for s in EXTRACT.get(bench, generic_samples)(d)]
    figures, counts = summarize(samples)
    section = {"status": "ran", "rounds": len(docs), **kvm_of(docs), "figures": figures,
               "counts": counts}
    if len(docs) < len(files):
        section["unreadable_files"] = len(files) - len(docs)
    if bench == "bar-mapping":
        section["latency_histogram"] = latency_histogram(docs)
    return section


def latency_histogram(docs):
    """{size: {op: {log2 bucket: n}}} pooled over the rounds (bucket k: 2^k <= ns < 2^k+1)."""
    hist = {}
    for doc in docs:
        for size, ops in (doc.get("latency_ns") or {}).items():
            for op, values in ops.items():
                buckets = hist.setdefault(size, {}).setdefault(op, {})
                for ns in values:
                    k = str(max(int(ns), 1).bit_length() - 1)
                    buckets[k] = buckets.get(k, 0) + 1
    return hist


def once_section(raw, name):
    doc = load_json(os.path.join(raw, "once", name + ".json"))
    if not isinstance(doc, dict):
        return None, not_run(f"no readable once/{name}.json in RAW")
    return doc, {"status": "ran", "rounds": 1, "kvm": doc.get("kvm"), "kvm_agree": True}


SCAN_KEYS = ["config", "ram_mib", "vcpus", "gpus", "wall_ms", "guest_uptime_ms",
             "vmm_share_ms", "overhead_kib", "overhead_anon_kib", "file_kib", "shmem_kib",
             "guest_ram_resident_kib"]


def boot_scan_section(raw):
    doc, section = once_section(raw, "boot-scan")
    if doc is not None:
        section["rows"] = [scan_row(r) for r in doc.get("rows", [])]
    return section


def scan_row(row):
    out = {k: row[k] for k in SCAN_KEYS if k in row}
    first_run = (row.get("phases_ms") or {}).get("first_kvm_run")
    if first_run is not None:
        out["to_kvm_run_ms"] = first_run
    return out


def boot_exits_section(raw):
    doc, section = once_section(raw, "boot-exits")
    if doc is None:
        return section
    section["gpus"] = doc.get("gpus")
    counts = {}
    for runner, r in doc.get("runs", {}).items():
        for key, value in r.items():
            counts[f"{runner}.{key}"] = count([value])
        if r.get("pcivmm_counted") is not None:
            counts[f"{runner}.counted_agree"] = count([r["pcivmm_counted"] ==
                                                       r.get("config_exits")])
    section["counts"] = counts
    return section


def build_report(raw):
    machine = load_json(os.path.join(raw, "machine.json"))
    benches = {b: bench_section(raw, b) for b in BENCHES}
    benches["boot-scan"] = boot_scan_section(raw)
    benches["boot-exits"] = boot_exits_section(raw)
    failures = load_json(os.path.join(raw, "failures.json"))
    failures = failures if isinstance(failures, list) else []
    for name, section in benches.items():
        failed = [f.get("step") for f in failures if isinstance(f, dict) and
                  (f.get("step") == name or str(f.get("step")).startswith(name + "."))]
        if failed:
            section["failed_steps"] = failed
    ratios = build_ratios(benches)
    machine = machine if isinstance(machine, dict) else {}
    return {"schema": 1, "machine": machine, "rounds": machine.get("rounds"),
            "failures": failures, "benches": benches, "ratios": ratios,
            "goals": build_goals(benches, ratios)}


# ---- ratios and goals ----------------------------------------------------------------------

def ratio_specs():
    """(name, bench, numerator, denominator): figures of one bench."""
    specs = [
        ("exit-loop: pcivmm / bare KVM_RUN loop, ns per exit", "exit-loop",
         "pcivmm_ns_per_exit", "bare_ns_per_exit"),
        ("config-reads: PIO / ECAM fast, ns per read", "config-reads",
         "paths.pio.ns_per_read", "paths.ecam_fast.ns_per_read"),
        ("config-reads: ECAM trap / ECAM fast, ns per read", "config-reads",
         "paths.ecam_trap.ns_per_read", "paths.ecam_fast.ns_per_read"),
        ("bar-mapping: mapper / raw ioctl, ns per slot op", "bar-mapping",
         "mapper_ns_per_op", "raw_ioctl_ns_per_op"),
        ("bar-mapping: guest time, eager / deferred", "bar-mapping",
         "policies.eager.guest_ns", "policies.deferred.guest_ns"),
    ]
    for pattern in ("per_bar", "batched"):
        specs.append((f"bar-mapping: guest time, {pattern} eager / deferred", "bar-mapping",
                      f"patterns.{pattern}.eager.guest_ns",
                      f"patterns.{pattern}.deferred.guest_ns"))
    for runner in ("pcivmm", "pcivmm_api", "qemu_q35"):
        specs.append((f"boot: {runner} / qemu_microvm, wall", "boot",
                      f"{runner}.wall_ms", "qemu_microvm.wall_ms"))
    specs += [("boot: pcivmm / qemu_q35, wall", "boot", "pcivmm.wall_ms", "qemu_q35.wall_ms"),
              ("boot: pcivmm / qemu_microvm, VMM share", "boot", "pcivmm.vmm_share_ms",
               "qemu_microvm.vmm_share_ms")]
    for path in ("pio", "ecam_trap"):
        specs.append((f"vfio: real device config read, {path} / ecam_fast", "vfio",
                      f"config_read.{path}.real_ns_per_read",
                      "config_read.ecam_fast.real_ns_per_read"))
    for path in ("pio", "ecam_trap", "ecam_fast"):
        specs.append((f"vfio: config read {path}, real / emulated device", "vfio",
                      f"config_read.{path}.real_ns_per_read",
                      f"config_read.{path}.emulated_ns_per_read"))
    return specs + storm_ratio_specs()


def storm_ratio_specs():
    specs = []
    for offset in ("0", "256"):
        label = "0x100" if offset == "256" else "0"
        for runner in STORM_RUNNERS[:3]:
            specs.append((f"linux-storm: qemu_q35 / {runner}, sysfs offset {label}",
                          "linux-storm", f"qemu_q35.sysfs_{offset}.ns_per_read",
                          f"{runner}.sysfs_{offset}.ns_per_read"))
        for runner in STORM_RUNNERS:
            specs.append((f"linux-storm: {runner} sysfs / tmpfs floor, offset {label}",
                          "linux-storm", f"{runner}.sysfs_{offset}.ns_per_read",
                          f"{runner}.tmpfs_{offset}.ns_per_read"))
    return specs


def ratio(name, bench, num, den, figures):
    n, d = figures.get(num), figures.get(den)
    if n is None or d is None or d["min"] <= 0 or d["median"] <= 0:
        return None
    return {"name": name, "bench": bench, "numerator": f"{bench}:{num}",
            "denominator": f"{bench}:{den}", "median_ratio": n["median"] / d["median"],
            "min": n["min"] / d["max"], "max": n["max"] / d["min"],
            "separated": n["max"] < d["min"] or d["max"] < n["min"]}


def build_ratios(benches):
    out = []
    for name, bench, num, den in ratio_specs():
        r = ratio(name, bench, num, den, benches[bench].get("figures", {}))
        if r is not None:
            out.append(r)
    return out


def goal(name, text, target, op, measured=None, worst=None, detail=""):
    met = None if measured is None else {">=": measured >= target, "<=": measured <= target,
                                         "<": measured < target, "==": measured == target}[op]
    return {"name": name, "goal": text, "op": op, "target": target, "measured": measured,
            "worst": worst, "met": met, "status": "not run" if met is None else "ran",
            "detail": detail}


def ratio_goal(name, text, target, op, ratios, ratio_name):
    r = next((r for r in ratios if r["name"] == ratio_name), None)
    if r is None:
        return goal(name, text, target, op, detail="figures not in RAW")
    worst = r["min"] if op == ">=" else r["max"]
    return goal(name, text, target, op, r["median_ratio"], worst,
                f"median ratio; worst case over the rounds {worst:.3g}")


def build_goals(benches, ratios):
    goals = []
    for offset, label in (("0", "0"), ("256", "0x100")):
        goals.append(ratio_goal(
            f"storm_fast_vs_q35_{label}",
            f"Linux sysfs config read at offset {label}: ECAM fast path >= 50x faster "
            "than QEMU q35", 50, ">=", ratios,
            f"linux-storm: qemu_q35 / pcivmm_ecam_fast, sysfs offset {label}"))
        goals.append(ratio_goal(
            f"storm_fast_vs_floor_{label}",
            f"Linux sysfs config read at offset {label}: ECAM fast path within 1.5x of "
            "the tmpfs floor", 1.5, "<=", ratios,
            f"linux-storm: pcivmm_ecam_fast sysfs / tmpfs floor, offset {label}"))
    goals.append(boot_exits_goal(benches["boot-exits"]))
    goals += deferred_goals(benches["bar-mapping"])
    return goals


def count_value(counts, name, worst=max):
    c = counts.get(name)
    if c is None:
        return None
    return c["value"] if c["agree"] else worst(c["rounds"])


def boot_exits_goal(section):
    text = "config-access exits of one Linux boot: pcivmm ECAM fast < 1/10 of QEMU q35"
    counts = section.get("counts", {})
    fast = count_value(counts, "pcivmm_ecam_fast.config_exits")
    q35 = count_value(counts, "qemu_q35.config_exits")
    if fast is None or not q35:
        return goal("boot_config_exits", text, 0.1, "<", detail="figures not in RAW")
    return goal("boot_config_exits", text, 0.1, "<", fast / q35, fast / q35,
                f"{fast} vs {q35} exits")


def deferred_goals(section):
    counts = section.get("counts", {})
    patterns = [p for p in ("per_bar", "batched") if f"patterns.{p}.deferred.map_ops" in counts]
    prefixes = [(f"patterns.{p}.", p) for p in patterns] or [("policies.", "probe")]
    out = []
    for prefix, label in prefixes:
        text = f"deferred BAR mapping ({label} pattern): 0 map/unmap ops during the probe"
        maps = count_value(counts, f"{prefix}deferred.map_ops")
        unmaps = count_value(counts, f"{prefix}deferred.unmap_ops")
        if maps is None or unmaps is None:
            out.append(goal(f"deferred_{label}", text, 0, "==", detail="figures not in RAW"))
            continue
        detail = f"{maps} maps + {unmaps} unmaps (most in any round)"
        if not patterns:
            detail += "; the bench's single probe pattern (no per-pattern figures in RAW)"
        out.append(goal(f"deferred_{label}", text, 0, "==", maps + unmaps, maps + unmaps,
                        detail))
    return out


# ---- the command line ----------------------------------------------------------------------

def write_report(raw, out):
    os.makedirs(out, exist_ok=True)
    report = build_report(raw)
    plots = report_plots.draw_all(report, out)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report_md.render(report, plots))
    for g in report["goals"]:
        state = {True: "met", False: "NOT MET", None: "not run"}[g["met"]]
        print(f"report: goal {g['name']}: {state}")
    for plot, why in plots.items():
        if why:
            print(f"report: {plot}.png: {why}", file=sys.stderr)
    print(f"report: wrote {out}/report.json, report.md, "
          f"{sum(why is None for why in plots.values())} plots with data")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", help="the RAW directory of ./dev bench all")
    p.add_argument("--out", help="where report.json, report.md and the plots go")
    p.add_argument("--readme", help="README.md whose bench-report block to rewrite")
    p.add_argument("--from", dest="source", help="report.json for --readme")
    p.add_argument("--check", action="store_true", help="with --readme: compare only")
    args = p.parse_args(argv)
    if args.readme:
        if not args.source:
            p.error("--readme needs --from REPORT_JSON")
        return report_md.update_readme(args.readme, args.source, args.check)
    if not (args.raw and args.out):
        p.error("give --raw RAW --out OUT, or --readme README.md --from REPORT_JSON")
    return write_report(args.raw, args.out)


if __name__ == "__main__":
    sys.exit(main())
