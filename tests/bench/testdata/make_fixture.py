#!/usr/bin/python3
"""Writes the fixture RAW directory (testdata/raw) that report_test.py reads.

Five rounds derived from one lab run of the single benches (build/bench/*.json, 2026-12-07)
with per-round variation; vfio is left out (a machine without devices), so the report must
call it not run. Rerun after changing it: /usr/bin/python3 tests/bench/testdata/make_fixture.py
"""
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
RAW = os.path.join(HERE, "raw")
ROUNDS = 5
KVM = {"flavour": "svm", "where": "lab", "reason": "kvm_amd is loaded and the CPU has svm",
       "host_flavour": "pvm"}
# Per-round factors: the median round is 1.0 for every timed figure.
F = [1.0, 0.97, 1.04, 0.99, 1.02]
G = [1.01, 1.0, 0.98, 1.05, 0.96]
# exit-loop's figures exactly, so the test knows min/median/max (and the ranges overlap).
EXIT_PCIVMM = [31000.0, 31500.0, 30500.0, 32000.0, 31200.0]
EXIT_BARE = [30400.0, 30900.0, 30100.0, 31800.0, 30300.0]
PHASES = {"main": 73.6, "flags_parsed": 103.9, "vm_created": 119.7, "ram_mapped": 128.1,
          "vcpus_created": 131.9, "devices_attached": 145.6, "images_loaded": 191.6,
          "firmware_built": 196.1, "first_kvm_run": 207.9, "first_console_byte": 1212.5,
          "first_config_access": 1329.4, "last_config_access": 1330.8, "boot_marker": 2007.8,
          "exit": 2094.6}
# runner -> per-read ns for sysfs offset 0, offset 0x100, tmpfs; config exits per read
STORM = {"pcivmm_pio": (81000, 82000, 1450, 2), "pcivmm_ecam_trap": (52000, 52500, 1460, 1),
         "pcivmm_ecam_fast": (1900, 1950, 1440, 0), "qemu_q35": (118000, 121000, 1500, 1)}


def write(rel, doc):
    path = os.path.join(RAW, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def r(x, digits=1):
    return round(x, digits)


def exit_loop(k):
    p, b = EXIT_PCIVMM[k], EXIT_BARE[k]
    return {"kvm": KVM, "exits": 20026, "pcivmm_ns_per_exit": p, "bare_ns_per_exit": b,
            "ratio": r(p / b, 4)}


def config_reads(k):
    paths = {"pio": (200004, 72315.6), "ecam_trap": (100002, 45354.3), "ecam_fast": (0, 267.5)}
    scan = {"pio": (974, 45637638), "ecam_trap": (490, 33929283), "ecam_fast": (76, 22993512)}
    out = {"kvm": KVM, "reads": 100000,
           "paths": {p: {"exits": e, "ns_per_read": r(ns * F[k])} for p, (e, ns) in paths.items()},
           "scan": {p: {"exits": e, "ns": int(ns * G[k])} for p, (e, ns) in scan.items()}}
    ns = {p: v["ns_per_read"] for p, v in out["paths"].items()}
    out["ratio_pio_fast"] = r(ns["pio"] / ns["ecam_fast"], 2)
    out["ratio_trap_fast"] = r(ns["ecam_trap"] / ns["ecam_fast"], 2)
    return out


def policy(ops, ioctl_ns, modelled_ns, guest_ns, k, gpus=14):
    return {"map_ops": ops, "unmap_ops": ops, "move_ops": 0, "ioctl_ns_total": int(ioctl_ns * F[k]),
            "modelled_ns": modelled_ns, "guest_ns": int(guest_ns * G[k]),
            "guest_ns_with_cost_model": int(guest_ns * 0.98 * G[k]),
            "map_ops_per_gpu": ops / gpus, "unmap_ops_per_gpu": ops / gpus,
            "modelled_s_per_gpu": r(modelled_ns / gpus / 1e9, 3)}


def bar_mapping(k):
    eager = {p: v for p, v in policy(210, 1674330767, 252092285060, 1890726271, k).items()
             if "per_gpu" not in p}
    deferred = {p: v for p, v in policy(0, 0, 0, 78623302, k).items() if "per_gpu" not in p}
    lat = {"16MiB": (300e3, 150e3), "32MiB": (600e3, 260e3), "128GiB": (3.6e6, 1.9e6)}
    return {"kvm": KVM, "devices": 14, "bar_bytes": 137438953472,
            "policies": {"eager": eager, "deferred": deferred},
            "raw_ioctl_ns_per_op": int(3687751 * G[k]), "mapper_ns_per_op": int(3715488 * F[k]),
            "mapper_over_raw": r(3715488 * F[k] / (3687751 * G[k]), 3),
            "patterns": {
                "per_bar": {"eager": policy(210, 1674330767, 252092285060, 1890726271, k),
                            "deferred": policy(0, 0, 0, 78623302, k)},
                "batched": {"eager": policy(42, 420000000, 50418457012, 610000000, k),
                            "deferred": policy(0, 0, 0, 75000000, k)}},
            "latency_ns": {size: {"map": [int(m * f) for f in (F[k], G[k], 1.9, 0.6)],
                                  "unmap": [int(u * f) for f in (F[k], G[k], 1.3)]}
                           for size, (m, u) in lat.items()}}


def boot_run(k, name, wall, uptime):
    run = {"wall_ms": r(wall * F[k]), "guest_uptime_ms": r(uptime * G[k], 3)}
    run["vmm_share_ms"] = r(run["wall_ms"] - run["guest_uptime_ms"])
    if name.startswith("pcivmm"):
        phases = {p: r(ms * F[k], 3) for p, ms in PHASES.items()}
        if name == "pcivmm_api":
            phases["api_ready"] = r(489.2 * G[k], 3)  # beside the guest, after first_kvm_run
        phases["guest_uptime"] = run["guest_uptime_ms"]
        run["phases_ms"] = phases
    return run


def boot(k):
    runners = {"pcivmm": (2153.5, 1006.5), "pcivmm_api": (2102.4, 901.0),
               "qemu_microvm": (2292.2, 942.8), "qemu_q35": (3368.9, 2099.9)}
    return {"kvm": KVM, "rounds": 1, "gpus": 2,
            "runs": {n: [boot_run(k, n, w, u)] for n, (w, u) in runners.items()}}


def api(k):
    return {"kvm": KVM, "clients": 16, "calls": 1000, "seconds": r(25.648 * F[k], 3),
            "p50_us": int(23360 * G[k]), "p99_us": int(58380 * F[k]), "max_us": int(244759 * G[k]),
            "errors": 0, "counters_agree": True, "overhead_idle_kib": 11580 + 4 * k,
            "overhead_loaded_kib": 12772 - 8 * k, "overhead_anon_idle_kib": 1308,
            "overhead_anon_loaded_kib": 2048 + 4 * k, "overhead_file_loaded_kib": 10708}


def linux_storm(k):
    reads = 100000
    runs = {}
    for runner, (s0, s256, floor, exits) in STORM.items():
        runs[runner] = {
            "sysfs_0": {"ns": s0 * reads * F[k], "config_exits": exits * reads,
                        "value": "0x10001af4"},
            "sysfs_256": {"ns": s256 * reads * G[k], "config_exits": exits * reads,
                          "value": "0x00000000"},
            "tmpfs_0": {"ns": floor * reads * G[k]}, "tmpfs_256": {"ns": floor * reads * F[k]}}
    return {"kvm": KVM, "reads": reads, "runs": runs}


SCAN = [("base", 256, 1, 0, 2056.8, 191.5, 903.3, 8964, 1132, 7696, 136),
        ("ram 4 GiB", 4096, 1, 0, 2438.7, 191.6, 1333.0, 9144, 1132, 7876, 136),
        ("2 vCPUs", 256, 2, 0, 2423.6, 188.2, 1631.1, 9256, 1168, 7952, 136),
        ("2 GPUs", 256, 1, 2, 1996.7, 497.7, 873.5, 9192, 1164, 7884, 144),
        ("14 GPUs", 256, 1, 14, 2280.4, 680.9, 878.4, 9640, 1400, 8048, 192)]


def boot_scan():
    keys = ["config", "ram_mib", "vcpus", "gpus", "wall_ms", "first_kvm_run", "guest_uptime_ms",
            "overhead_kib", "overhead_anon_kib", "file_kib", "shmem_kib"]
    rows = []
    for values in SCAN:
        row = dict(zip(keys, values))
        row["phases_ms"] = {"first_kvm_run": row.pop("first_kvm_run")}
        row["vmm_share_ms"] = r(row["wall_ms"] - row["guest_uptime_ms"])
        rows.append(row)
    return {"kvm": KVM, "rows": rows}


def boot_exits():
    runs = {"pcivmm_pio": (990, 980, 10, 24000, 990),
            "pcivmm_ecam_trap": (630, 300, 330, 23000, 630),
            "pcivmm_ecam_fast": (301, 300, 1, 22500, 301),
            "qemu_q35": (4200, 310, 3890, 41000, None)}
    keys = ["config_exits", "pio_config_exits", "ecam_config_exits", "all_exits", "pcivmm_counted"]
    return {"kvm": KVM, "gpus": 2, "runs": {n: dict(zip(keys, v)) for n, v in runs.items()}}


def machine():
    return {"cpu": "AMD EPYC 7B13 (fixture)", "cores": 2, "memory_gib": 7.8,
            "host_kernel": "6.12.0-pvm", "host_kvm": "pvm", "where": "lab",
            "lab_kernel": "6.1.0-28-amd64", "lab_kvm": "svm", "guest_kernel": "6.1.119",
            "qemu": "7.2.15", "pcivmm_commit": "0123abc", "rounds": ROUNDS,
            "started": "2026-12-08T10:00:00+00:00", "seconds": 3725.4}


def main():
    shutil.rmtree(RAW, ignore_errors=True)
    write("machine.json", machine())
    benches = {"exit-loop": exit_loop, "config-reads": config_reads, "bar-mapping": bar_mapping,
               "boot": boot, "api": api, "linux-storm": linux_storm}
    for bench, make in benches.items():
        for k in range(ROUNDS):
            write(f"rounds/{bench}/{k + 1}.json", make(k))
    write("once/boot-scan.json", boot_scan())
    write("once/boot-exits.json", boot_exits())
    print(f"wrote {RAW}")


if __name__ == "__main__":
    main()
