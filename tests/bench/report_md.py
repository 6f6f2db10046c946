"""report.md and the README's headline block, from report.json (see report.py)."""
import difflib
import json
import re
import sys

from linux_storm_bench import RUNNERS as STORM_RUNNERS

BEGIN = "<!-- bench-report:begin -->"
END = "<!-- bench-report:end -->"
SCALES = {"ns": [(1e9, "s"), (1e6, "ms"), (1e3, "us"), (1, "ns")],
          "us": [(1e6, "s"), (1e3, "ms"), (1, "us")],
          "ms": [(1e3, "s"), (1, "ms")], "KiB": [(1024, "MiB"), (1, "KiB")]}
UNIT_TOKENS = [("ns", "ns"), ("us", "us"), ("ms", "ms"), ("s", "s"), ("seconds", "s"),
               ("kib", "KiB"), ("ratio", "x"), ("over", "x"), ("vs", "x")]
PLOTS = {"config-reads": [], "bar-mapping": ["mapping-latency"], "boot": ["boot-phases"],
         "boot-scan": ["overhead-memory"], "linux-storm": ["config-read-cost", "storm-seconds"]}
TITLES = {"boot-scan": "boot: size scan (one boot each)",
          "boot-exits": "boot: config-access exits of one Linux boot"}


# ---- numbers -----------------------------------------------------------------------------

def unit(name):
    if name.endswith("per_s"):
        return "/s"
    tokens = re.split(r"[._]", name.lower())
    return next((u for tok, u in UNIT_TOKENS if tok in tokens), "")


def num(v):
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return "0" if a == 0 else f"{v:.3g}"


def scale(median, u):
    for factor, label in SCALES.get(u, [(1, u)]):
        if abs(median) >= factor:
            return factor, label
    return SCALES[u][-1] if u in SCALES else (1, u)


def fmt_fig(fig, name):
    factor, label = scale(fig["median"], unit(name))
    sep = "" if label in ("x", "") else " "
    m, lo, hi = (num(fig[k] / factor) for k in ("median", "min", "max"))
    return f"{m}{sep}{label} [{lo}, {hi}]"


def fmt_value(v):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:,}" if isinstance(v, int) else num(v)
    return f"`{v}`"


def fmt_count(c):
    if c["agree"]:
        return fmt_value(c["value"])
    rounds = ", ".join(map(fmt_value, c["rounds"]))
    return f"{fmt_value(c['value'])} (**rounds disagree**: {rounds})"


def fmt_ratio(r):
    return f"{num(r['median_ratio'])}x [{num(r['min'])}, {num(r['max'])}]"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


# ---- one section's figures ---------------------------------------------------------------

class Cells:
    """A section's figures and counts as table cells; remembers which were shown."""

    def __init__(self, section):
        self.figures = section.get("figures", {})
        self.counts = section.get("counts", {})
        self.used = set()

    def get(self, name):
        if name in self.figures:
            self.used.add(name)
            return fmt_fig(self.figures[name], name)
        if name in self.counts:
            self.used.add(name)
            return fmt_count(self.counts[name])
        return None

    def matrix(self, corner, rows, cols):
        """rows [(label, key)], cols [(label, template with {})]; empty rows/cols dropped."""
        cells = [[self.get(t.format(key)) for _, t in cols] for _, key in rows]
        keep = [j for j in range(len(cols)) if any(r[j] is not None for r in cells)]
        body = [[label] + [r[j] or "–" for j in keep]
                for (label, _), r in zip(rows, cells) if any(c is not None for c in r)]
        return table([corner] + [cols[j][0] for j in keep], body) if body else []

    def rest(self):
        names = [n for n in list(self.figures) + list(self.counts) if n not in self.used]
        return table(["figure", "median [min, max] or count"],
                     [[f"`{n}`", self.get(n)] for n in names]) if names else []


def rows_of(keys):
    return [(k, k) for k in keys]


def blocks(*parts):
    """Markdown blocks (lists of lines), the empty ones dropped, a blank line between."""
    out = []
    for part in parts:
        if part:
            out += (out and [""]) + part
    return out


def config_reads_md(c):
    paths = c.matrix("path (100,000 reads)", rows_of(["pio", "ecam_trap", "ecam_fast"]), [
        ("exits", "paths.{}.exits"), ("per read", "paths.{}.ns_per_read"),
        ("enumeration exits", "scan.{}.exits"), ("enumeration time", "scan.{}.ns")])
    return blocks(paths, c.rest())


BAR_COLS = [("map ops", "{}.map_ops"), ("unmap ops", "{}.unmap_ops"),
            ("move ops", "{}.move_ops"), ("map ops / GPU", "{}.map_ops_per_gpu"),
            ("unmap ops / GPU", "{}.unmap_ops_per_gpu"), ("ioctl time", "{}.ioctl_ns_total"),
            ("modelled", "{}.modelled_ns"), ("modelled per GPU", "{}.modelled_s_per_gpu"),
            ("guest", "{}.guest_ns"), ("guest, cost model", "{}.guest_ns_with_cost_model")]


def bar_mapping_md(c):
    rows = [(f"{pol}", f"policies.{pol}") for pol in ("eager", "deferred")]
    rows += [(f"{pat}, {pol}", f"patterns.{pat}.{pol}") for pat in ("per_bar", "batched")
             for pol in ("eager", "deferred")]
    sizes = sorted({n.split(".")[1] for n in c.figures if n.startswith("latency.")},
                   key=size_bytes)
    lat = c.matrix("BAR size (latency, median per round)", rows_of(sizes), [
        ("map", "latency.{}.map_median_ns"), ("unmap", "latency.{}.unmap_median_ns"),
        ("map samples", "latency.{}.map_samples"), ("unmap samples", "latency.{}.unmap_samples")])
    return blocks(c.matrix("policy", rows, BAR_COLS), lat, c.rest())


def size_bytes(text):
    m = re.match(r"(\d+)\s*([KMGT]?)i?B?$", text)
    if not m:
        return float("inf")
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2) or " ")


def boot_md(c, section):
    runners = ["pcivmm", "pcivmm_api", "qemu_microvm", "qemu_q35"]
    runners += sorted({n.split(".")[0] for n in c.figures} - set(runners))
    lines = c.matrix("runner", rows_of(runners), [
        ("wall", "{}.wall_ms"), ("guest uptime at the marker", "{}.guest_uptime_ms"),
        ("VMM share", "{}.vmm_share_ms"), ("wall / microvm's, same round",
                                           "{}.wall_vs_microvm")])
    phases = boot_phase_order(section)
    phase_runners = [r for r in runners if any(f"{r}.phases_ms.{p}" in c.figures for p in phases)]
    ph = c.matrix("phase (ms from process start)", rows_of(phases),
                  [(r, r + ".phases_ms." + "{}") for r in phase_runners])
    return blocks(lines, ph, c.rest())


def boot_phase_order(section):
    """Phase names in the order of their median times (over the runners that have them)."""
    at = {}
    for name, fig in section.get("figures", {}).items():
        parts = name.split(".")
        if len(parts) == 3 and parts[1] == "phases_ms":
            at.setdefault(parts[2], fig["median"])
    return sorted(at, key=at.get)


def boot_scan_md(section):
    cols = [("config", "config"), ("GPUs", "gpus"), ("wall ms", "wall_ms"),
            ("to KVM_RUN ms", "to_kvm_run_ms"), ("guest uptime ms", "guest_uptime_ms"),
            ("beyond guest RAM KiB", "overhead_kib"), ("anonymous", "overhead_anon_kib"),
            ("file-backed", "file_kib"), ("shmem", "shmem_kib")]
    rows = [[fmt_value(r[k]) if k in r else "–" for _, k in cols]
            for r in section.get("rows", [])]
    return table([h for h, _ in cols], rows)


def boot_exits_md(c, section):
    known = STORM_RUNNERS  # the boot-exits runners are the storm's
    runners = known + sorted({n.split(".")[0] for n in c.counts} - set(known))
    head = [f"{section.get('gpus')} GPU-like devices; pcivmm_counted is pcivmm's own count.", ""]
    return head + c.matrix("runner", rows_of(runners), [
        ("config exits", "{}.config_exits"), ("PIO", "{}.pio_config_exits"),
        ("ECAM", "{}.ecam_config_exits"), ("all exits", "{}.all_exits"),
        ("pcivmm counted", "{}.pcivmm_counted"), ("counts agree", "{}.counted_agree")])


def vfio_md(c):
    paths = rows_of(["pio", "ecam_trap", "ecam_fast"])
    sizes = rows_of(["256m", "4g"])
    out = c.matrix("config read", paths, [
        ("reads", "config_read.{}.reads"), ("real device", "config_read.{}.real_ns_per_read"),
        ("emulated", "config_read.{}.emulated_ns_per_read"),
        ("real config exits", "config_read.{}.real_config_exits")])
    out = blocks(out, c.matrix("BAR", sizes, [
        ("slot add", "slot.{}.add_ns"), ("slot delete", "slot.{}.delete_ns"),
        ("add, faulted", "slot.{}.add_faulted_ns"),
        ("delete, faulted", "slot.{}.delete_faulted_ns"),
        ("first touch", "device_decode_toggle.{}.first_touch_ns"),
        ("decode off", "device_decode_toggle.{}.decode_off_ns"),
        ("decode on", "device_decode_toggle.{}.decode_on_ns"),
        ("refault", "device_decode_toggle.{}.refault_ns")]))
    return blocks(out, c.rest())


def storm_md(c, ratios):
    tables = storm_tables(c, ratios)
    for name in list(c.figures):  # the floors' other forms, shown in the plots
        if (".tmpfs_" in name or ".sysfs_eof_" in name) and name.endswith(".s_per_100k"):
            c.used.add(name)
    return blocks(tables, c.rest())


def storm_tables(c, ratios):
    runners = STORM_RUNNERS
    out = []
    for offset, label in (("0", "0"), ("256", "0x100")):
        rows = []
        for r in runners:
            cells = [c.get(f"{r}.sysfs_{offset}.s_per_100k"),
                     c.get(f"{r}.sysfs_{offset}.ns_per_read"),
                     c.get(f"{r}.sysfs_{offset}.config_exits"),
                     ratio_cell(ratios, f"qemu_q35 / {r}, sysfs offset {label}"),
                     ratio_cell(ratios, f"{r} sysfs / tmpfs floor, offset {label}"),
                     c.get(f"{r}.tmpfs_{offset}.ns_per_read"),
                     c.get(f"{r}.sysfs_eof_{offset}.ns_per_read"),
                     c.get(f"{r}.sysfs_{offset}.value")]
            if any(cells):
                rows.append([r] + [x or "–" for x in cells])
        if rows:
            out = blocks(out, table([f"offset {label}", "s per 100k sysfs reads", "per read",
                                     "config exits", "times faster than q35",
                                     "over the tmpfs floor", "tmpfs floor per read",
                                     "sysfs path alone (EOF) per read", "value read"], rows))
    return out


def ratio_cell(ratios, suffix):
    r = next((r for r in ratios or [] if r["name"].endswith(suffix)), None)
    if r is None:
        return None
    return fmt_ratio(r) + ("" if r["separated"] else " (not separated)")


# ---- the whole report --------------------------------------------------------------------

def machine_md(report):
    m = report.get("machine") or {}
    if not m:
        return ["_RAW/machine.json is missing._"]
    get = lambda k: "–" if m.get(k) is None else str(m[k])  # noqa: E731
    rows = [["CPU", f"{get('cpu')}, {get('cores')} cores, {get('memory_gib')} GiB"],
            ["KVM", kvm_text(m)], ["host kernel", get("host_kernel")],
            ["lab kernel", get("lab_kernel")], ["guest kernel", get("guest_kernel")],
            ["QEMU", get("qemu")], ["pcivmm commit", f"`{get('pcivmm_commit')}`"],
            ["rounds", get("rounds")],
            ["started, duration", f"{get('started')}, {seconds(m.get('seconds'))}"]]
    return table(["machine", ""], rows)


def kvm_text(m):
    if m.get("where") == "lab":
        return f"{m.get('lab_kvm')} in the nested lab, on a {m.get('host_kvm')} host"
    return f"{m.get('host_kvm')}, directly on the host"


def seconds(s):
    if not isinstance(s, (int, float)):
        return "–"
    return f"{int(s // 60)} min {s % 60:.0f} s" if s >= 60 else f"{s:.1f} s"


def where_md(report):
    rows = []
    for name, sec in report["benches"].items():
        kvm = sec.get("kvm") or {}
        if sec["status"] != "ran":
            rows.append([name, "not run", "", "", ""])
            continue
        rows.append([name, str(kvm.get("flavour", "–")), str(kvm.get("where", "–")),
                     str(kvm.get("host_flavour", "–")),
                     str(sec.get("rounds")) + ("" if sec.get("kvm_agree", True)
                                               else " (**rounds ran on different KVMs**)")])
    return table(["bench", "KVM", "where", "host KVM", "rounds"], rows)


def goals_md(goals):
    rows = []
    for g in goals:
        state = {True: "met", False: "**not met**", None: "not run"}[g["met"]]
        measured = "–" if g["measured"] is None else num(g["measured"])
        rows.append([g["goal"], f"{g['op']} {g['target']:g}", measured, state, g["detail"]])
    return table(["goal", "target", "measured", "", "detail"], rows)


def ratios_md(ratios):
    rows = [[r["name"], fmt_ratio(r), "separated" if r["separated"] else "**not separated**"]
            for r in ratios]
    return table(["ratio", "median [worst min, worst max]", "ranges"], rows) if rows else []


def section_md(name, section, report, plots):
    title = TITLES.get(name, name)
    failed = section.get("failed_steps")
    head = [f"## {title}", ""] + ([f"**failed steps**: {', '.join(failed)} (their logs: "
                                   "RAW/logs/STEP.log)", ""] if failed else [])
    if section["status"] != "ran":
        return head + [f"**not run**: {section.get('reason', '')}", ""] + plots_md(name, plots)
    c = Cells(section)
    body = {"config-reads": lambda: config_reads_md(c), "bar-mapping": lambda: bar_mapping_md(c),
            "boot": lambda: boot_md(c, section), "boot-scan": lambda: boot_scan_md(section),
            "boot-exits": lambda: boot_exits_md(c, section), "vfio": lambda: vfio_md(c),
            "linux-storm": lambda: storm_md(c, report["ratios"])}.get(name, c.rest)()
    ratios = [r for r in report["ratios"] if r["bench"] == name]
    out = head + body + [""]
    if ratios and name != "linux-storm":
        out += ratios_md(ratios) + [""]
    return out + plots_md(name, plots)


def plots_md(name, plots):
    out = []
    for plot in PLOTS.get(name, []):
        why = plots.get(plot, "not drawn")
        out += [f"![{plot}]({plot}.png)" if why is None else f"_{plot}.png: {why}_", ""]
    return out


def render(report, plots):
    out = ["# pcivmm performance lab report", "",
           "Timed figures: median [min, max] over the rounds; counts: the value (flagged when "
           "the rounds disagree). A ratio's range is worst case (numerator min / denominator "
           "max .. numerator max / denominator min); **not separated** marks ratios whose two "
           "ranges overlap.", ""]
    out += machine_md(report) + ["", "Where each bench ran:", ""] + where_md(report) + [""]
    out += ["## Goals", ""] + goals_md(report["goals"]) + [""]
    for name, section in report["benches"].items():
        out += section_md(name, section, report, plots)
    if report["ratios"]:
        out += ["## All ratios", ""] + ratios_md(report["ratios"]) + [""]
    return "\n".join(out)


# ---- the README block --------------------------------------------------------------------

def readme_block(report):
    m = report.get("machine") or {}
    intro = (f"Generated by `tests/bench/report.py` from `./dev bench all` "
             f"({m.get('rounds', '?')} interleaved rounds, started {m.get('started', '?')}): "
             f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, KVM {kvm_text(m)}, pcivmm "
             f"`{m.get('pcivmm_commit', '?')}`. Timed figures: median [min, max] over the "
             "rounds; a ratio's range is worst case, **not separated** when the two ranges "
             "overlap.")
    storm = report["benches"].get("linux-storm", {})
    tables = storm_tables(Cells(storm), report["ratios"]) if storm.get("status") == "ran" else []
    exits = report["benches"].get("boot-exits", {})
    exit_table = (boot_exits_md(Cells(exits), exits) if exits.get("status") == "ran" else [])
    others = [r for r in report["ratios"] if r["bench"] != "linux-storm"]
    return "\n" + "\n".join(blocks([intro], goals_md(report["goals"]), tables,
                                   ["Config-access exits of one Linux boot, counted by the KVM "
                                    "underneath:", ""] + exit_table if exit_table else [],
                                   ratios_md(others))) + "\n\n"


def replace_block(text, block):
    lines = text.splitlines(keepends=True)
    begins = [i for i, l in enumerate(lines) if l.strip() == BEGIN]
    ends = [i for i, l in enumerate(lines) if l.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        return None
    return "".join(lines[:begins[0] + 1]) + block + "".join(lines[ends[0]:])


def update_readme(path, source, check):
    with open(source) as f:
        report = json.load(f)
    with open(path) as f:
        text = f.read()
    new = replace_block(text, readme_block(report))
    if new is None:
        print(f"report: {path} needs exactly one '{BEGIN}' line before one '{END}' line",
              file=sys.stderr)
        return 2
    if new == text:
        print(f"report: {path}: the bench-report block is up to date")
        return 0
    if check:
        sys.stdout.writelines(difflib.unified_diff(
            text.splitlines(keepends=True), new.splitlines(keepends=True), path,
            f"{path} from {source}"))
        print(f"report: {path}: the bench-report block is stale "
              f"(report.py --readme {path} --from {source})", file=sys.stderr)
        return 1
    with open(path, "w") as f:
        f.write(new)
    print(f"report: {path}: rewrote the bench-report block")
    return 0
