#!/usr/bin/env python3
"""./dev bench all, inside one lab boot (or directly on hardware KVM): every benchmark for
--rounds interleaved rounds (round 1 runs each bench once, then round 2, ...), so drift in
the lab hits all alike and figures of two benches share a run; then the parts measured once
(the boot size scan, the config exits of a Linux boot). Prints a progress line before each
step, with what is left by the durations seen so far. Leaves RAW (tests/bench/report.py turns
it into the report):
  RAW/machine.json                 where and on what it ran (with RAW/host.json from ./dev)
  RAW/rounds/BENCH/K.json          each bench's own JSON for round K
  RAW/once/boot-scan.json, boot-exits.json, linux-storm-baseline.json
  RAW/logs/STEP.log                each step's output; RAW/failures.json the steps that failed
Exit status 1 if any step failed (the others still run).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
BENCHES = ["exit-loop", "config-reads", "bar-mapping", "boot", "api", "vfio", "linux-storm"]
# Seconds per step in the lab on 2 cores (a run on 2026-12-07), until this run has measured
# them; the first linux-storm step also measures its baselines.
PRIOR_S = {"exit-loop": 10, "config-reads": 13, "bar-mapping": 22, "boot": 10, "api": 25,
           "vfio": 5, "linux-storm": 80, "boot-scan": 25, "boot-exits": 15}


def commands(args):
    """bench -> argv for one round writing JSON to {json}; vfio only with devices. With
    args.only (./dev bench NAME), the boot bench runs whole (its own rounds, scan and exits) and
    the storm measures its baselines itself."""
    b, g = args.build, os.path.join(args.build, "guest-images")
    vm = ["--pcivmm", f"{b}/vmm/pcivmm", "--guest-dir", f"{g}/linux"]
    cmds = {
        "exit-loop": [f"{b}/tests/exit_loop_bench", f"--guest_dir={g}", "--json={json}"],
        "config-reads": [f"{b}/tests/config_reads_bench", f"--guest_dir={g}", "--json={json}"],
        "bar-mapping": [f"{b}/tests/bar_mapping_bench", f"--guest_dir={g}", "--json={json}"],
        "boot": [PY, f"{HERE}/boot_bench.py", *vm, "--json={json}"] + (
            [] if args.only else ["--rounds=1", "--parts=rounds"]),
        "api": [f"{b}/tests/api_load_bench", f"--pcivmm={b}/vmm/pcivmm", f"--guest_dir={g}",
                "--json={json}"],
        "vfio": [f"{b}/tests/vfio_bench", f"--guest_dir={g}", "--json={json}"],
        "linux-storm": [PY, f"{HERE}/linux_storm_bench.py", *vm, "--json={json}"] + (
            [] if args.only else [f"--baseline={args.raw}/once/linux-storm-baseline.json"]),
    }
    if args.only:
        return {args.only: cmds[args.only]}, {}
    if not os.environ.get("PCIVMM_VFIO_IVSHMEM"):
        del cmds["vfio"]
    once = {
        "boot-scan": [PY, f"{HERE}/boot_bench.py", *vm, "--parts=scan", "--json={json}"],
        "boot-exits": [PY, f"{HERE}/boot_bench.py", *vm, "--parts=exits", "--json={json}"],
    }
    return {k: v for k, v in cmds.items() if k in args.benches}, once


def plan(args):
    """[(step name, bench, round or None, argv, json path)] in the order they run."""
    rounds, once = commands(args)
    steps = []
    for k in range(1, args.rounds + 1):
        for bench, argv in rounds.items():
            steps.append((f"{bench}.{k}", bench, k, argv, f"{args.raw}/rounds/{bench}/{k}.json"))
    for name, argv in once.items():
        steps.append((name, name, None, argv, f"{args.raw}/once/{name}.raw.json"))
    return steps


def reshape_once(name, path):
    """boot_bench's JSON -> the once/ files report.py reads."""
    with open(path) as f:
        r = json.load(f)
    out = ({"kvm": r["kvm"], "rows": r["size_scan"]} if name == "boot-scan" else
           {"kvm": r["kvm"], "gpus": r["gpus"], "runs": r["config_exits"]})
    with open(path.replace(".raw.json", ".json"), "w") as f:
        json.dump(out, f, indent=2)


def mmss(seconds):
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def run_step(args, step, index, total, left_s, t0):
    name, bench, _, argv, json_path = step
    print(f"bench-all [{index}/{total}] {name}: elapsed {mmss(time.monotonic() - t0)}, "
          f"about {mmss(left_s)} left", file=sys.stderr, flush=True)
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    log_path = f"{args.raw}/logs/{name}.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        rc = subprocess.run([a.replace("{json}", json_path) for a in argv], stdout=log,
                            stderr=subprocess.STDOUT).returncode
    took = time.monotonic() - start
    if rc == 0 and bench in ("boot-scan", "boot-exits"):
        reshape_once(bench, json_path)
    if rc != 0:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        print(f"bench-all: {name} FAILED (exit {rc}), log {log_path}:\n{tail}",
              file=sys.stderr, flush=True)
    return rc, took


def machine_facts(args, seconds):
    """RAW/host.json (from ./dev, outside the lab) plus what only this side knows."""
    facts = {}
    host = f"{args.raw}/host.json"
    if os.path.exists(host):
        with open(host) as f:
            facts.update(json.load(f))
    kvm = json.loads(subprocess.run([f"{args.build}/vmm/kvm-flavour", "--json"], check=True,
                                    capture_output=True, text=True).stdout)
    in_lab = kvm.get("where") == "lab"
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True)
    with open(f"{args.build}/guest-images/linux/kernel-package") as f:
        guest = f.read().strip()
    facts.update({
        "where": kvm.get("where"), "kvm": kvm,
        "lab_kernel": platform.release() if in_lab else None,
        "lab_kvm": kvm.get("flavour") if in_lab else None,
        "guest_kernel": guest, "qemu": qemu.stdout.splitlines()[0] if qemu.stdout else None,
        "rounds": args.rounds, "seconds": round(seconds, 1),
    })
    return facts


def run_only(args):
    """./dev bench NAME: one bench, once, its JSON at --json."""
    argv = commands(args)[0][args.only]
    return subprocess.run([a.replace("{json}", args.json) for a in argv]).returncode


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--raw", help="where every bench's rounds go (required unless --only)")
    p.add_argument("--only", choices=BENCHES, help="run this bench once, whole (with --json)")
    p.add_argument("--json", help="with --only: where its JSON goes")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--benches", default=",".join(BENCHES),
                   help="comma-separated subset of the per-round benches")
    args = p.parse_args()
    if args.only:
        if not args.json:
            p.error("--only needs --json")
        return run_only(args)
    if not args.raw:
        p.error("--raw is required")
    args.benches = args.benches.split(",")
    os.makedirs(f"{args.raw}/logs", exist_ok=True)
    os.makedirs(f"{args.raw}/once", exist_ok=True)
    steps = plan(args)
    seen, failed, t0 = {}, [], time.monotonic()
    for i, step in enumerate(steps):
        left = sum(seen.get(s[1], PRIOR_S.get(s[1], 60)) for s in steps[i:])
        rc, took = run_step(args, step, i + 1, len(steps), left, t0)
        seen[step[1]] = took
        if rc != 0:
            failed.append({"step": step[0], "exit": rc})
    total = time.monotonic() - t0
    with open(f"{args.raw}/machine.json", "w") as f:
        json.dump(machine_facts(args, total), f, indent=2)
    with open(f"{args.raw}/failures.json", "w") as f:
        json.dump(failed, f, indent=2)
    print(f"bench-all: {len(steps)} steps in {mmss(total)}, {len(failed)} failed"
          + (": " + ", ".join(x["step"] for x in failed) if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
