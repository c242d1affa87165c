"""Engine throughput: ns per operator-sample and voices rendered in real time on one core.

Usage: NUMBA_NUM_THREADS=1 python tools/bench_engine.py --json
Renders many held voices of 2- and 6-operator patches, with and without feedback, through the
same ``Synth`` / ``process_block`` path the live player uses, at 48 kHz in 128-frame periods.
Times are this thread's CPU time, best of REPEATS runs, so other load on the machine matters less.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numba
import numpy as np
from benchmark_info import machine_info

from wifm_synth.engine import Synth, process_block
from wifm_synth.midi import DRUM_CHANNEL
from wifm_synth.voice.patch import Envelope, Operator, Patch

SAMPLE_RATE = 48000
PERIOD = 128
REPEATS = 3
HOLD = Envelope(segments=[(0.005, 0.0), (60.0, -6.0)], release_s=0.3)
MELODIC_CHANNELS = [channel for channel in range(16) if channel != DRUM_CHANNEL]


def bench_patch(operator_count: int, feedback: float) -> Patch:
    """A chain (operator k+1 modulates k) ending in carrier 0; the last operator may feed back."""
    operators = [
        Operator(ratio=float(index + 1), level=0.1 if index == 0 else 1.0, carrier=index == 0,
                 modulators=[index + 1] if index + 1 < operator_count else [],
                 feedback=feedback if index == operator_count - 1 else 0.0, envelope=HOLD)
        for index in range(operator_count)
    ]
    return Patch(operators=operators, name=f"bench_{operator_count}op")


def hold_voices(synth: Synth, voices: int, channels: list[int] = MELODIC_CHANNELS) -> None:
    """Queues ``voices`` note-ons at frame 0 on distinct (channel, key) pairs, so no note re-strikes another."""
    for voice in range(voices):
        synth.send(0, 0x90 | channels[voice % len(channels)], 24 + voice // len(channels) % 96, 100)


def measure(operator_count: int, feedback: float, voices: int, seconds: float) -> dict:
    synth = Synth(bench_patch(operator_count, feedback), sample_rate=SAMPLE_RATE, polyphony=voices)
    hold_voices(synth, voices)
    synth.render(PERIOD)  # note-ons applied, JIT warm
    periods = int(seconds * SAMPLE_RATE / PERIOD)
    out_left = np.empty(PERIOD, dtype=np.float32)
    out_right = np.empty(PERIOD, dtype=np.float32)
    elapsed = math.inf
    for _ in range(REPEATS):  # CPU time of this thread, best of a few: robust against other load
        start = time.thread_time()
        for _ in range(periods):
            process_block(synth.state, out_left, out_right, PERIOD)
        elapsed = min(elapsed, time.thread_time() - start)
    if synth.active_voices != voices:
        raise RuntimeError(f"expected {voices} sounding voices, found {synth.active_voices}")
    frames = periods * PERIOD
    ns_per_operator_sample = elapsed * 1e9 / (frames * voices * operator_count)
    return {
        "operators": operator_count,
        "feedback": feedback > 0,
        "voices_rendered": voices,
        "audio_seconds": frames / SAMPLE_RATE,
        "thread_cpu_seconds": round(elapsed, 4),
        "ns_per_operator_sample": round(ns_per_operator_sample, 3),
        "realtime_voices_one_core": int(voices * (frames / SAMPLE_RATE) / elapsed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--voices", type=int, default=1024, help="voices sounding at once")
    parser.add_argument("--seconds", type=float, default=1.0, help="audio seconds rendered per case")
    args = parser.parse_args(argv)
    cases = [measure(ops, feedback, args.voices, args.seconds) for ops in (2, 6) for feedback in (0.0, 1.0)]
    by_kind = {(case["operators"], case["feedback"]): case for case in cases}
    feedback_cost = {f"{ops}_op": round(by_kind[ops, True]["ns_per_operator_sample"]
                                        / by_kind[ops, False]["ns_per_operator_sample"], 3) for ops in (2, 6)}
    report = {"benchmark": "engine", "sample_rate": SAMPLE_RATE, "period": PERIOD, "cases": cases,
              "feedback_over_plain_time_ratio": feedback_cost,
              "six_operator_realtime_voices": min(by_kind[6, False]["realtime_voices_one_core"],
                                                  by_kind[6, True]["realtime_voices_one_core"]),
              "target_six_operator_voices": 1000,
              "machine": machine_info() | {"numba_threads": numba.config.NUMBA_NUM_THREADS}}
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        for case in cases:
            print(f"{case['operators']}-op feedback={case['feedback']!s:5}: {case['ns_per_operator_sample']:.2f} ns/op-sample,"
                  f" {case['realtime_voices_one_core']} voices real-time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
