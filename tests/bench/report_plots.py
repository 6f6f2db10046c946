"""The report's plots: gnuplot scripts and data files next to the PNGs (see report.py).

Each plot function takes report.json's dict and returns (data text, gnuplot body) or a
string saying why there is nothing to plot (then the PNG says so). The body reads NAME.dat
from the output directory, where gnuplot runs.
"""
import os
import shutil
import subprocess

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#e7ba52", "#637939", "#843c39",
          "#7b4173", "#3182bd", "#555555", "#bbbbbb"]
from linux_storm_bench import RUNNERS as STORM_RUNNERS  # noqa: E402
HIST_STYLE = ("set style data histograms\nset style fill solid 0.85 border -1\n"
              "set key top right autotitle columnhead\nset grid ytics\n")


def terminal():
    exe = shutil.which("gnuplot")
    if exe is None:
        return None
    probe = subprocess.run([exe, "-e", "set terminal pngcairo"], capture_output=True)
    return "pngcairo" if probe.returncode == 0 else "png"


def figures(report, bench):
    return report["benches"].get(bench, {}).get("figures", {})


def triple(fig, factor=1.0):
    if fig is None:
        return ["NaN"] * 3
    return [f"{fig[k] / factor:.6g}" for k in ("median", "min", "max")]


def quoted(text):
    return '"' + str(text).replace('"', "'") + '"'


def cell(value):
    try:
        float(value)
        return str(value)
    except ValueError:
        return quoted(value)


def data_text(header, rows):
    lines = [" ".join(quoted(h) for h in header)]
    return "\n".join(lines + [" ".join(cell(v) for v in row) for row in rows]) + "\n"


def errorbar_plot(name, header, rows):
    """Clustered bars with min..max error bars: columns (median, min, max) per series; the
    series without any value are left out (gnuplot refuses an empty histogram)."""
    uses = []
    for col in range(1, len(header), 3):
        if all(row[col] == "NaN" for row in rows):
            continue
        xtic = "" if uses else ":xtic(1)"
        uses.append(f"'{name}.dat' using {col + 1}:{col + 2}:{col + 3}{xtic} "
                    f"title columnhead({col + 1}) lc rgb '{COLORS[col // 3]}'")
    return ("set style histogram errorbars gap 1 lw 1\n" + HIST_STYLE +
            "plot " + ", \\\n     ".join(uses) + "\n")


# ---- 1. cost per config read ---------------------------------------------------------------

def config_read_cost(report):
    storm, free = figures(report, "linux-storm"), figures(report, "config-reads")
    rows_spec = [("PIO", "pcivmm_pio", "pio"), ("ECAM trap", "pcivmm_ecam_trap", "ecam_trap"),
                 ("ECAM fast path", "pcivmm_ecam_fast", "ecam_fast"),
                 ("QEMU q35", "qemu_q35", None)]
    rows = []
    for label, runner, path in rows_spec:
        rows.append([label] + triple(storm.get(f"{runner}.sysfs_0.ns_per_read")) +
                    triple(storm.get(f"{runner}.sysfs_256.ns_per_read")) +
                    triple(free.get(f"paths.{path}.ns_per_read")))
    rows.append(["tmpfs floor (ECAM fast VM)"] +
                triple(storm.get("pcivmm_ecam_fast.tmpfs_0.ns_per_read")) +
                triple(storm.get("pcivmm_ecam_fast.tmpfs_256.ns_per_read")) + ["NaN"] * 3)
    if all(v == "NaN" for row in rows for v in row[1:]):
        return "no linux-storm or config-reads figures"
    header = ["path"]
    for title in ("Linux sysfs, offset 0", "Linux sysfs, offset 0x100",
                  "freestanding guest (config-reads)"):
        header += [title, "min", "max"]
    body = ("set title 'Cost of one PCI config dword read (median, bars min..max over the "
            "rounds)'\n"
            "set ylabel 'ns per read (log)'\nset logscale y\n" +
            errorbar_plot("config-read-cost", header, rows))
    return data_text(header, rows), body


# ---- 2. boot phases --------------------------------------------------------------------------

def boot_phases(report):
    figs = figures(report, "boot")
    runners = sorted({n.split(".")[0] for n in figs if n.endswith(".wall_ms")},
                     key=lambda r: (not r.startswith("pcivmm"), r))
    phases = phase_order(figs)
    if not runners:
        return "no boot figures"
    segments = phases + ["VMM share (QEMU)", "guest uptime (QEMU)"]
    rows = [[r] + runner_segments(figs, r, phases) for r in runners]
    colors = [COLORS[i % (len(COLORS) - 2)] for i in range(len(phases))] + COLORS[-2:]
    uses = [f"'boot-phases.dat' using {i + 2}{':xtic(1)' if i == 0 else ''} "
            f"title columnhead({i + 2}) lc rgb '{c}'" for i, c in enumerate(colors)]
    body = ('set title "Boot, medians over the rounds: pcivmm by phase (each segment ends at the '
            'named phase),\\nQEMU by VMM share and guest uptime"\n'
            "set ylabel 'ms from process start'\nset style histogram rowstacked\n"
            "set boxwidth 0.6\n" + HIST_STYLE.replace("top right", "outside right top") +
            "plot " + ", \\\n     ".join(uses) + "\n")
    return data_text(["runner"] + segments, rows), body


def phase_order(figs):
    at = {}
    for name, fig in figs.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[1] == "phases_ms":
            at.setdefault(parts[2], fig["median"])
    return sorted(at, key=at.get)


def runner_segments(figs, runner, phases):
    """Gaps between consecutive phases' medians (pcivmm); VMM share and uptime (QEMU)."""
    prev, gaps = 0.0, []
    for phase in phases:
        fig = figs.get(f"{runner}.phases_ms.{phase}")
        if fig is None:
            gaps.append(0)
            continue
        gaps.append(round(max(fig["median"] - prev, 0.0), 3))
        prev = max(prev, fig["median"])
    has_phases = prev > 0
    share = figs.get(f"{runner}.vmm_share_ms")
    uptime = figs.get(f"{runner}.guest_uptime_ms")
    tail = [0, 0] if has_phases else [share["median"] if share else 0,
                                      uptime["median"] if uptime else 0]
    return gaps + tail


# ---- 3. BAR mapping latency ------------------------------------------------------------------

def bucket_label(k):
    for shift, unit in ((30, "s"), (20, "ms"), (10, "us"), (0, "ns")):
        if k >= shift:
            return f"{2 ** (k - shift)} {unit}"
    return "1 ns"


def mapping_latency(report):
    hist = report["benches"].get("bar-mapping", {}).get("latency_histogram") or {}
    series = [(f"{size} {op}", buckets) for size, ops in hist.items()
              for op, buckets in sorted(ops.items()) if buckets]
    if not series:
        return "no latency_ns in the bar-mapping rounds"
    keys = [int(k) for _, b in series for k in b]
    rows = [[bucket_label(k)] + [b.get(str(k), 0) for _, b in series]
            for k in range(min(keys), max(keys) + 1)]
    uses = [f"'mapping-latency.dat' using {i + 2}{':xtic(1)' if i == 0 else ''} "
            f"title columnhead({i + 2}) lc rgb '{COLORS[i % len(COLORS)]}'"
            for i in range(len(series))]
    body = ("set title 'BAR map/unmap latency per BAR size, all rounds (log2 buckets: "
            "label <= t < 2x label)'\nset ylabel 'operations'\nset xlabel 'latency'\n"
            "set offsets 0, 0, graph 0.1, 0\nset xtics rotate by -45\n"
            "set style histogram clustered gap 1\n" + HIST_STYLE +
            "plot " + ", \\\n     ".join(uses) + "\n")
    return data_text(["bucket"] + [s for s, _ in series], rows), body


# ---- 4. memory beyond guest RAM against device count -----------------------------------------

def overhead_memory(report):
    rows = report["benches"].get("boot-scan", {}).get("rows") or []
    base = next((r for r in rows if r.get("gpus") == 0), None)
    if base is None:
        return "no boot-scan rows"
    same = [r for r in rows if r.get("ram_mib") == base.get("ram_mib")
            and r.get("vcpus") == base.get("vcpus")]
    same = sorted({r["gpus"]: r for r in reversed(same)}.values(), key=lambda r: r["gpus"])
    mib = lambda r, k: f"{r[k] / 1024:.3f}" if k in r else "NaN"  # noqa: E731
    ms = lambda r, k: str(r[k]) if k in r else "NaN"  # noqa: E731
    data = [[r["gpus"], mib(r, "overhead_kib"), mib(r, "overhead_anon_kib"),
             mib(r, "file_kib"), ms(r, "wall_ms"), ms(r, "to_kvm_run_ms")] for r in same]
    header = ["GPUs", "beyond guest RAM", "anonymous", "file-backed", "boot wall (right axis)",
              "to first KVM_RUN (right axis)"]
    plots = [f"'overhead-memory.dat' using 1:{i + 2} with linespoints lw 2 pt 7 "
             f"lc rgb '{COLORS[i]}' title columnhead({i + 2})" for i in range(3)]
    plots += [f"'overhead-memory.dat' using 1:{i + 2} axes x1y2 with linespoints dt 2 lw 2 pt 5 "
              f"lc rgb '{COLORS[i]}' title columnhead({i + 2})" for i in (3, 4)]
    body = ("set title 'pcivmm: memory beyond guest RAM and boot time against GPU-like devices "
            f"({base.get('ram_mib')} MiB, {base.get('vcpus')} vCPU, one boot each)'\n"
            "set xlabel 'GPU-like devices (128 GiB BAR1 each)'\nset ylabel 'MiB'\n"
            "set y2label 'ms'\nset y2tics\nset ytics nomirror\nset yrange [0:*]\n"
            "set y2range [0:*]\nset xtics (" + ", ".join(str(r["gpus"]) for r in same) + ")\n"
            "set offsets 0.5, 0.5, 0, 0\nset key outside bottom center horizontal\n"
            "set grid ytics\nset key autotitle columnhead\n"
            "plot " + ", \\\n     ".join(plots) + "\n")
    return data_text(header, data), body


# ---- 5. storm seconds per 100k reads ---------------------------------------------------------

def storm_seconds(report):
    figs = figures(report, "linux-storm")
    probes = [("sysfs_0", "sysfs, offset 0"), ("sysfs_256", "sysfs, offset 0x100"),
              ("tmpfs_0", "tmpfs floor, offset 0"), ("tmpfs_256", "tmpfs floor, offset 0x100")]
    rows = [[r] + [v for p, _ in probes for v in triple(figs.get(f"{r}.{p}.s_per_100k"))]
            for r in STORM_RUNNERS]
    if all(v == "NaN" for row in rows for v in row[1:]):
        return "no linux-storm figures"
    header = ["runner"] + [h for _, title in probes for h in (title, "min", "max")]
    body = ("set title 'Linux storm: seconds per 100,000 preads of a config dword (median, "
            "min..max)'\nset ylabel 's per 100k reads (log)'\nset logscale y\n" +
            errorbar_plot("storm-seconds", header, rows))
    return data_text(header, rows), body


PLOTS = [("config-read-cost", config_read_cost), ("boot-phases", boot_phases),
         ("mapping-latency", mapping_latency), ("overhead-memory", overhead_memory),
         ("storm-seconds", storm_seconds)]


def empty_body(why):
    return (f"unset border\nunset tics\nunset key\nset label 1 {quoted('no plot: ' + why)} "
            "at graph 0.5, 0.5 center\nplot [0:1] [0:1] NaN\n")


def draw(name, made, out, term):
    if isinstance(made, str):
        body = empty_body(made)
        if os.path.exists(os.path.join(out, name + ".dat")):
            os.remove(os.path.join(out, name + ".dat"))
    else:
        with open(os.path.join(out, name + ".dat"), "w") as f:
            f.write(made[0])
        body = made[1]
    script = (f"set terminal {term} size 1100,650 font 'sans,10' noenhanced\n"
              f"set output '{name}.png'\n" + body)
    with open(os.path.join(out, name + ".gp"), "w") as f:
        f.write(script)
    png = os.path.join(out, name + ".png")
    if os.path.exists(png):
        os.remove(png)
    run = subprocess.run(["gnuplot", name + ".gp"], cwd=out, capture_output=True, text=True)
    if run.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
        return f"gnuplot failed: {run.stderr.strip()[-500:]}"
    return None if not isinstance(made, str) else f"drawn empty ({made})"


def draw_all(report, out):
    """{plot name: None when drawn with data, else why not}."""
    term = terminal()
    if term is None:
        return {name: "not drawn: gnuplot not found (apt-get install gnuplot-nox)"
                for name, _ in PLOTS}
    return {name: draw(name, fn(report), out, term) for name, fn in PLOTS}
