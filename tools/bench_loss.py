"""Loss and FM-spectrum throughput: ns per frame for the fitter's batched kernels, with POT/scipy peers.

Usage: NUMBA_NUM_THREADS=1 python tools/bench_loss.py [--frames 300] [--harmonics 60]
Prints one JSON document. The fitter evaluates the grid W1 10^4-10^5 times per note on
(frames x harmonics) arrays, so the headline figure is ns per frame of ``w1_grid_amps_into``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import ot
import scipy
import scipy.stats
from benchmark_info import machine_info

from wifm_synth.fit.loss import frame_losses, grid_cost_table, sinkhorn_lines, w1_lines
from wifm_synth.fit.loss_kernels import (
    mse_grid_into,
    w1_grid_amps_into,
    w1_grid_cost_table_into,
    w1_grid_into,
)
from wifm_synth.voice.spectrum import harmonic_spectrum


def seconds_per_call(function, min_seconds: float = 0.3) -> float:
    """Best of five timed batches, each repeated until it lasts ``min_seconds`` (after a warm-up call)."""
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
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--harmonics", type=int, default=60)
    args = parser.parse_args(argv)
    frames, harmonics = args.frames, args.harmonics
    rng = np.random.default_rng(0)
    grid = np.arange(1.0, harmonics + 1)
    targets = rng.random((frames, harmonics)) ** 4  # peaky, like harmonic spectra
    betas = np.linspace(0.0, 10.0, frames)
    models = harmonic_spectrum(betas, 1, 1, harmonics)[0]
    loss = np.empty(frames)
    grad_amps = np.empty((frames, harmonics))
    grad_positions = np.empty((frames, harmonics))

    def per_frame_ns(function) -> float:
        return round(seconds_per_call(function) * 1e9 / frames, 1)

    w1_amps_ns = per_frame_ns(lambda: w1_grid_amps_into(grid, targets, models, loss, grad_amps))
    grid_columns = np.repeat(grid[:, None], frames, axis=1)  # POT batches over columns
    pot_ns = per_frame_ns(lambda: ot.wasserstein_1d(grid_columns, grid_columns, targets.T / targets.sum(1),
                                                    models.T / models.sum(1), p=1))
    scipy_ns = per_frame_ns(lambda: [scipy.stats.wasserstein_distance(grid, grid, targets[t], models[t])
                                     for t in range(frames)])
    table_models = harmonic_spectrum(np.linspace(0.0, 10.0, 64), 1, 1, harmonics)[0]
    table = np.empty((frames, table_models.shape[0]))
    table_pair_ns = seconds_per_call(lambda: w1_grid_cost_table_into(grid, targets, table_models, table)) * 1e9 / table.size
    lines_grid = np.arange(-40, 41) * 0.73 + 1.0
    line_positions = np.abs(lines_grid)
    line_amps = np.abs(rng.standard_normal((frames, line_positions.size)))
    report = {
        "benchmark": "loss",
        "frames": frames,
        "harmonics": harmonics,
        "ns_per_frame": {
            "w1_grid_amps_into": w1_amps_ns,
            "w1_grid_into_with_positions": per_frame_ns(
                lambda: w1_grid_into(grid, targets, models, loss, grad_amps, grad_positions)),
            "frame_losses_w1_validated": per_frame_ns(lambda: frame_losses("w1", grid, targets, grid, models)),
            "mse_grid_into": per_frame_ns(lambda: mse_grid_into(targets, models, loss, grad_amps)),
            "harmonic_spectrum_c1_m1": per_frame_ns(lambda: harmonic_spectrum(betas, 1, 1, harmonics)),
            "harmonic_spectrum_c1_m3": per_frame_ns(lambda: harmonic_spectrum(betas, 1, 3, harmonics)),
            "w1_lines_81_free_lines": per_frame_ns(lambda: w1_lines(grid, targets, line_positions, line_amps)),
            "pot_wasserstein_1d_value_only": pot_ns,
            "scipy_wasserstein_distance_value_only": scipy_ns,
        },
        "speedup_w1_grid_with_gradient_vs_pot_value_only": round(pot_ns / w1_amps_ns, 1),
        "speedup_w1_grid_with_gradient_vs_scipy_value_only": round(scipy_ns / w1_amps_ns, 1),
        "ns_per_pair_w1_cost_table": round(table_pair_ns, 1),
        "ns_per_pair_mse_cost_table": round(
            seconds_per_call(lambda: grid_cost_table("mse", grid, targets, table_models)) * 1e9 / table.size, 1),
        "ms_per_frame_sinkhorn_reg_0.05": round(seconds_per_call(
            lambda: sinkhorn_lines(grid, targets[::30], grid, models[::30], reg=0.05), 1.0) * 1e3 / targets[::30].shape[0], 2),
        "machine": machine_info(),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
