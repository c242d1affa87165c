"""How much CPU time a thread is charged for work it did not do, on this machine (JSON).

Usage: python tools/cpu_clock_gaps.py [--seconds 60] [--threshold-ms 2.667] [--realtime]

A thread reads its CPU clock (CLOCK_THREAD_CPUTIME_ID) and the monotonic clock back to back in a loop whose
every step is a few microseconds of work. A step whose CPU time jumps by more than ``--threshold-ms``
(default: one 128-frame period at 48 kHz) was charged for time in which the thread ran no code of its
own: the hypervisor holding the virtual CPU (steal time the guest charges to the running thread) or the
kernel's interrupt work. The live engine's ``engine-late`` count (CPU time over the period, measured in
its audio callback) counts such periods too; this shows how often the machine alone produces them.
The loop spins 10 ms and sleeps 10 ms in turn, so it takes half of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

SPIN_S = 0.010
REST_S = 0.010


def steal_seconds() -> float:
    """The machine's steal time so far (all CPUs), from /proc/stat; 0 where there is none."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def measure(seconds: float, threshold_ns: int) -> dict:
    cpu_clock, wall_clock = time.CLOCK_THREAD_CPUTIME_ID, time.CLOCK_MONOTONIC
    jumps, steps, worst_ns = [], 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        spin_end = time.monotonic() + SPIN_S
        cpu, wall = time.clock_gettime_ns(cpu_clock), time.clock_gettime_ns(wall_clock)
        while wall < spin_end * 1e9:
            next_cpu, next_wall = time.clock_gettime_ns(cpu_clock), time.clock_gettime_ns(wall_clock)
            step_ns = next_cpu - cpu
            worst_ns = max(worst_ns, step_ns)
            if step_ns > threshold_ns:
                jumps.append({"cpu_ms": round(step_ns / 1e6, 3), "wall_ms": round((next_wall - wall) / 1e6, 3)})
            cpu, wall = next_cpu, next_wall
            steps += 1
        time.sleep(REST_S)
    return {"steps": steps, "cpu_jumps_over_threshold": len(jumps), "worst_cpu_step_ms": round(worst_ns / 1e6, 3),
            "jumps": jumps[:50]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threshold-ms", type=float, default=128 / 48000 * 1000)
    parser.add_argument("--realtime", action="store_true", help="SCHED_FIFO (lowest priority), as JACK's threads")
    args = parser.parse_args(argv)
    if args.realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(os.sched_get_priority_min(os.SCHED_FIFO)))
    load_before, steal_before = os.getloadavg(), steal_seconds()
    result = measure(args.seconds, round(args.threshold_ms * 1e6))
    report = {"tool": "cpu_clock_gaps", "command": " ".join(["python", "tools/cpu_clock_gaps.py", *sys.argv[1:]]),
              "seconds": args.seconds, "threshold_ms": round(args.threshold_ms, 3), "realtime": args.realtime,
              **result, "machine_steal_s": round(steal_seconds() - steal_before, 2),
              "load_average_before": load_before, "load_average_after": os.getloadavg()}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
