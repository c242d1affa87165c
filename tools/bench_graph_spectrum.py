"""Graph-spectrum throughput: seconds per frame of ``GraphSpectrum`` for a 6-operator DX7 voice.

Usage: python tools/bench_graph_spectrum.py [--frames 200] [--harmonics 40] [--algorithm 5] [--lag]
Prints one JSON document. The 6-operator fitter evaluates whole trajectories (frames x harmonics, with
derivatives for every level and the feedback) thousands of times per note. ``seconds_per_frame`` is
wall time, ``cpu_seconds_per_frame`` the process's CPU time (steadier on a busy machine). ``signal_seconds_per_frame``
is the Numba recursion alone; ``matrix_dft_seconds_per_frame`` is, for comparison, the product with the
cosine/sine columns of the H bins that the batched real FFT replaced. ``--lag`` models the engine's
feedback lag (fs = 48 kHz, f0 = 220 Hz).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from benchmark_info import machine_info

from wifm_synth.voice.graph_kernels import graph_signals_into
from wifm_synth.voice.graph_spectrum import GraphSpectrum, points_per_period
from wifm_synth.voice.topology import Topology

RATIOS = [1.0, 1.0, 1.0, 2.0, 3.0, 1.0]


def seconds_per_call(function, min_seconds: float = 0.5, clock=time.perf_counter) -> float:
    """Best of five timed batches, each repeated until it lasts ``min_seconds``/5 (after a warm-up call).

    ``clock`` time.process_time gives CPU seconds, which other work on a shared machine skews less.
    """
    function()
    repeats = 1
    while True:
        start = clock()
        for _ in range(repeats):
            function()
        if clock() - start >= min_seconds / 5:
            break
        repeats *= 2
    best = np.inf
    for _ in range(5):
        start = clock()
        for _ in range(repeats):
            function()
        best = min(best, (clock() - start) / repeats)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--harmonics", type=int, default=40)
    parser.add_argument("--algorithm", type=int, default=5)
    parser.add_argument("--lag", action="store_true")
    args = parser.parse_args(argv)
    topology = Topology.from_algorithm(args.algorithm)
    rng = np.random.default_rng(0)
    # a decaying trajectory: carriers around 0.5, modulator indices up to 2.5, feedback up to 0.6
    decay = np.exp(-np.linspace(0.0, 3.0, args.frames))[:, None]
    levels = np.ascontiguousarray(np.where(topology.carriers, 0.5, 2.5) * rng.uniform(0.5, 1.0, 6) * decay)
    feedback = 0.6 * decay[:, 0]
    n_points = points_per_period(topology, RATIOS, levels, feedback, args.harmonics)
    spectrum = GraphSpectrum(topology, RATIOS, args.harmonics, n_points,
                             audio_samples_per_period=48000 / 220 if args.lag else None)
    seconds = seconds_per_call(lambda: spectrum(levels, feedback))
    chunk = min(args.frames, spectrum.chunk_frames)
    signals = spectrum.signals[:chunk]

    def recursion():
        graph_signals_into(levels[:chunk], feedback[:chunk], spectrum.period_steps, spectrum.order,
                           spectrum.modulator_counts, spectrum.modulator_table, spectrum.source_scales,
                           spectrum.is_carrier, spectrum.feedback_operator, spectrum.lag_taps, spectrum.lag_weights,
                           spectrum.depends, signals, spectrum.units, spectrum.unit_derivatives, spectrum.angles,
                           spectrum.gains, spectrum.angle_derivatives, spectrum.own_phases)

    angle = 2 * np.pi * np.outer(np.arange(n_points), np.arange(1, args.harmonics + 1)) / n_points
    columns = np.concatenate([np.cos(angle), np.sin(angle)], axis=1)
    products = np.empty((signals.shape[0] * signals.shape[1], columns.shape[1]))
    report = {
        "algorithm": args.algorithm,
        "ratios": RATIOS,
        "engine_lag": args.lag,
        "frames": args.frames,
        "harmonics": args.harmonics,
        "parameters": topology.operator_count + 1,
        "points_per_period": n_points,
        "seconds_per_frame": seconds / args.frames,
        "cpu_seconds_per_frame": seconds_per_call(lambda: spectrum(levels, feedback), clock=time.process_time)
        / args.frames,
        "signal_seconds_per_frame": seconds_per_call(recursion) / chunk,
        "fft_seconds_per_frame": seconds_per_call(lambda: np.fft.rfft(signals, axis=-1, out=spectrum.spectra[:chunk]))
        / chunk,
        "matrix_dft_seconds_per_frame": seconds_per_call(
            lambda: np.matmul(signals.reshape(-1, n_points), columns, out=products)) / chunk,
        "machine": machine_info(),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
