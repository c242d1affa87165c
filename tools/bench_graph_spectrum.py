"""Graph-spectrum throughput: seconds per frame of ``GraphSpectrum`` for a 6-operator DX7 voice.

Usage: NUMBA_NUM_THREADS=1 python tools/bench_graph_spectrum.py [--frames 200] [--harmonics 40] [--algorithm 5]
Prints one JSON document. The 6-operator fitter evaluates whole trajectories (frames x harmonics, with
derivatives for every level and the feedback) thousands of times per note; ``rfft_seconds_per_frame``
is the same work with a full real FFT in place of the matrix of the reported bins, for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from benchmark_info import machine_info

from wifm_synth.voice.graph_spectrum import (
    GraphSpectrum,
    graph_signals_into,
    points_per_period,
)
from wifm_synth.voice.topology import Topology

RATIOS = [1.0, 1.0, 1.0, 2.0, 3.0, 1.0]


def seconds_per_call(function, min_seconds: float = 0.5) -> float:
    """Best of five timed batches, each repeated until it lasts ``min_seconds``/5 (after a warm-up call)."""
    function()
    repeats = 1
    while True:
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        if time.perf_counter() - start >= min_seconds / 5:
            break
        repeats *= 2
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--harmonics", type=int, default=40)
    parser.add_argument("--algorithm", type=int, default=5)
    args = parser.parse_args(argv)
    topology = Topology.from_algorithm(args.algorithm)
    rng = np.random.default_rng(0)
    # a decaying trajectory: carriers around 0.5, modulator indices up to 2.5, feedback up to 0.6
    decay = np.exp(-np.linspace(0.0, 3.0, args.frames))[:, None]
    peaks = np.where(topology.carriers, 0.5, 2.5) * rng.uniform(0.5, 1.0, 6)
    levels = np.ascontiguousarray(peaks * decay)
    feedback = 0.6 * decay[:, 0]
    n_points = points_per_period(topology, RATIOS, levels, feedback, args.harmonics)
    spectrum = GraphSpectrum(topology, RATIOS, args.harmonics, n_points)
    seconds = seconds_per_call(lambda: spectrum(levels, feedback))

    def with_rfft():
        signals = spectrum.signals[: args.frames] if args.frames <= spectrum.chunk_frames else None
        if signals is None:
            return
        graph_signals_into(levels, feedback, spectrum.period_steps, spectrum.order, spectrum.modulator_counts,
                           spectrum.modulator_table, spectrum.source_scales, spectrum.is_carrier,
                           spectrum.feedback_operator, spectrum.lag_taps, spectrum.lag_weights, spectrum.depends,
                           signals, spectrum.units, spectrum.unit_derivatives, spectrum.angles, spectrum.gains,
                           spectrum.angle_derivatives)
        np.fft.rfft(signals, axis=-1)

    signals_only = seconds_per_call(lambda: graph_signals_into(
        levels, feedback, spectrum.period_steps, spectrum.order, spectrum.modulator_counts,
        spectrum.modulator_table, spectrum.source_scales, spectrum.is_carrier, spectrum.feedback_operator,
        spectrum.lag_taps, spectrum.lag_weights, spectrum.depends,
        spectrum.signals[: min(args.frames, spectrum.chunk_frames)], spectrum.units, spectrum.unit_derivatives,
        spectrum.angles, spectrum.gains, spectrum.angle_derivatives))
    chunk = min(args.frames, spectrum.chunk_frames)
    report = {
        "algorithm": args.algorithm,
        "ratios": RATIOS,
        "frames": args.frames,
        "harmonics": args.harmonics,
        "parameters": topology.operator_count + 1,
        "points_per_period": n_points,
        "seconds_per_frame": seconds / args.frames,
        "signal_kernel_seconds_per_frame": signals_only / chunk,
        "rfft_seconds_per_frame": seconds_per_call(with_rfft) / chunk if args.frames <= spectrum.chunk_frames else None,
        "machine": machine_info(),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
