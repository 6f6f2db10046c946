#!/usr/bin/python3
"""Harness example: start pcivmm with a guest, wait for its boot marker, read the statistics
through the API and assert on them.

The guest (cfg_storm) writes the boot marker, then makes N configuration reads of 00:01.0
through PIO plus two reads of absent functions. pcivmm parks the VM right after the marker
(--pause-on-boot-marker), so the counters read then are exact; after ResumeVm and the guest's
exit, the API's deltas must equal the guest's own counts exactly.

    /usr/bin/python3 api/python/harness_example.py --build=build [--reads=N]
(on a machine without /dev/kvm: ./dev lab -- /usr/bin/python3 api/python/harness_example.py ...)
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcivmm_harness import Pcivmm  # pylint: disable=wrong-import-position

PIO_ADDRESS_PORT = 0xCF8


def counts(pb, stats):
    pio = [p for p in stats.config.by_path if p.path == pb.CONFIG_PATH_PIO][0]
    ports = {p.port: (p.reads, p.writes) for p in stats.exits.by_port}
    reg0 = sum(r.reads for r in stats.config.by_register if r.bdf.device == 1 and r.offset == 0)
    return {"pio_reads": pio.reads, "cf8_writes": ports.get(PIO_ADDRESS_PORT, (0, 0))[1],
            "reg0_reads": reg0, "total_exits": stats.exits.total}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build", help="the CMake build directory")
    parser.add_argument("--reads", type=int, default=500, help="N: the guest's storm reads")
    args = parser.parse_args()
    guest = os.path.join(args.build, "guest-images", "cfg_storm.bin")
    with Pcivmm(args.build, ["--guest-image=" + guest, "--guest-arg=%d" % args.reads,
                             "--gpus=1", "--pause-on-boot-marker"]) as vm:
        pb = vm.pb
        assert vm.health(), "the health service does not say SERVING"
        # Parked right after the boot marker (--pause-on-boot-marker).
        vm.wait_until(lambda info: info.HasField("boot_ns") and info.state == pb.VM_STATE_PAUSED)
        request = pb.GetStatsRequest(include_config_registers=True)
        before = counts(pb, vm.stub.GetStats(request, timeout=30))
        assert before["pio_reads"] == 0, before  # the marker precedes every config access

        vm.stub.ResumeVm(pb.ResumeVmRequest(), timeout=30)
        vm.wait_for_state("VM_STATE_STOPPED")
        after = counts(pb, vm.stub.GetStats(request, timeout=30))

        reports = vm.reports()
        accesses = reports["config_reads"]
        assert reports["storm_reads"] == args.reads, reports
        assert accesses == args.reads + 2, reports
        delta = {k: after[k] - before[k] for k in after}
        assert delta["pio_reads"] == accesses, (delta, accesses)
        assert delta["cf8_writes"] == accesses, (delta, accesses)
        assert delta["reg0_reads"] == args.reads, (delta, args.reads)

        info = vm.stub.GetVmInfo(pb.GetVmInfoRequest(), timeout=30)
        assert info.state == pb.VM_STATE_STOPPED and info.exit_code == 0, info
        metrics = vm.stub.GetMetrics(pb.GetMetricsRequest(), timeout=30).text
        line = 'pcivmm_config_accesses_total{path="pio",direction="read"} %d' % accesses
        assert line in metrics.splitlines(), metrics
        status = vm.shutdown()
        assert status == 0, (status, vm.log())
        print("harness: OK: %d guest config reads = %d API delta (PIO reads), %d exits on 0xCF8; "
              "boot marker after %.3f s; VMM overhead %d KiB beyond guest RAM"
              % (accesses, delta["pio_reads"], delta["cf8_writes"], info.boot_ns / 1e9,
                 info.memory.overhead_bytes >> 10))


if __name__ == "__main__":
    main()
