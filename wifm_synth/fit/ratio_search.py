"""Integer-ratio search and per-frame modulation-index trajectories for a 2-operator FM pair.

For every candidate (carrier c, modulator m) the FM magnitude spectrum is tabulated on a β grid;
the per-frame loss against the target is evaluated for every (frame, grid point), a Viterbi pass
with a quadratic smoothness prior on β picks one grid point per frame (so β(t) does not hop
between local minima of the loss), and the path is refined per frame by bisection on the exact
derivative dL/dβ = Σ_k dL/da_k · da_k/dβ inside the neighbouring grid cells.

Ratios are screened on a subset of frames; only the best few are tracked on every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from wifm_synth.fit.loss import frame_losses, grid_cost_table, sinkhorn_lines
from wifm_synth.voice.spectrum import harmonic_spectrum

MAX_CARRIER_RATIO = 3
MAX_MODULATOR_RATIO = 12
MAX_INDEX = 15.0
# Grid uniform in sqrt(β): finer steps at small indices, where the spectrum changes fastest relative to β.
INDEX_GRID_POINTS = 128
# Viterbi prior: a jump of Δβ radians between 10 ms frames costs SMOOTHNESS·(Δβ)² times the
# typical per-frame loss contrast, so only a jump that pays for itself in loss is taken.
SMOOTHNESS = 1.0
REFERENCE_HOP_S = 0.01
SCREEN_FRAMES = 48
TRACKED_CANDIDATES = 3
BISECTION_STEPS = 12
# Sinkhorn polish: entropic regularisation in loss-axis units and POT's stopping threshold, chosen so
# one frame costs ~0.1 s instead of >1 s at reg 0.05 / 1e-9 while the value moves by < 1e-3.
SINKHORN_BISECTION_STEPS = 4
SINKHORN_REG = 0.1
SINKHORN_TOLERANCE = 1e-5


@dataclass(frozen=True)
class TargetSpectra:
    """Per-frame target harmonic amplitudes on a loss axis, and which frames count (weights)."""

    axis: np.ndarray  # (H,) position of harmonic k = 1..H on the loss axis
    amplitudes: np.ndarray  # (T, H) linear harmonic amplitudes
    frame_weights: np.ndarray  # (T,) 1 for frames that count, 0 otherwise
    hop_s: float


@dataclass(frozen=True)
class IndexTrajectory:
    """A fitted pair: ratios (in f0 units), and per frame the index, loss and carrier amplitude."""

    carrier_ratio: float
    modulator_ratio: float
    betas: np.ndarray  # (T,) modulation index per frame
    frame_loss: np.ndarray  # (T,) loss per frame at betas
    loss: float  # weighted mean of frame_loss
    carrier_gains: np.ndarray  # (T,) carrier amplitude per frame


def candidate_ratios(max_carrier: int = MAX_CARRIER_RATIO, max_modulator: int = MAX_MODULATOR_RATIO):
    """(c, m) with gcd 1, so the lowest line of the pair is the fundamental f0."""
    return [(c, m) for c in range(1, max_carrier + 1) for m in range(1, max_modulator + 1) if math.gcd(c, m) == 1]


def index_grid(points: int = INDEX_GRID_POINTS, max_index: float = MAX_INDEX) -> np.ndarray:
    return np.linspace(0.0, math.sqrt(max_index), points) ** 2


@njit(cache=True)
def _viterbi(costs, frame_weights, betas, jump_cost):
    """Grid index per frame minimising Σ_t w_t·cost[t, g_t] + jump_cost·Σ_t (β_{g_t} − β_{g_{t−1}})²."""
    n_frames, n_grid = costs.shape
    total = np.empty(n_grid)
    for g in range(n_grid):
        total[g] = frame_weights[0] * costs[0, g]
    back = np.zeros((n_frames, n_grid), dtype=np.int64)
    updated = np.empty(n_grid)
    for t in range(1, n_frames):
        for g in range(n_grid):
            best = np.inf
            best_from = 0
            for h in range(n_grid):
                step = betas[g] - betas[h]
                candidate = total[h] + jump_cost * step * step
                if candidate < best:
                    best = candidate
                    best_from = h
            updated[g] = best + frame_weights[t] * costs[t, g]
            back[t, g] = best_from
        total[:] = updated
    path = np.empty(n_frames, dtype=np.int64)
    path[n_frames - 1] = np.argmin(total)
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path, total[path[n_frames - 1]]


def _jump_cost(costs: np.ndarray, weights: np.ndarray, hop_s: float) -> float:
    """Scale the prior by the typical loss contrast across the grid, so it is loss-kind independent."""
    active = weights > 0
    contrast = np.median(costs[active], axis=1) - costs[active].min(axis=1) if active.any() else np.ones(1)
    return SMOOTHNESS * float(max(np.mean(contrast), 1e-12)) * (REFERENCE_HOP_S / hop_s) ** 2


def _track(loss_kind, target, frames, grid, table, hop_s):
    """Viterbi grid path over ``frames`` for one ratio's tabulated spectra; also returns the cost table."""
    costs = grid_cost_table(loss_kind, target.axis, target.amplitudes[frames], table)
    weights = target.frame_weights[frames]
    path, _ = _viterbi(costs, weights, grid, _jump_cost(costs, weights, hop_s))
    return path, costs


def _frame_loss_and_slope(loss_kind, target, carrier, modulator, betas):
    """Per-frame loss and exact dL/dβ at ``betas`` (one per frame of ``target``)."""
    magnitudes, derivatives = harmonic_spectrum(betas, carrier, modulator, target.axis.size)
    if loss_kind == "sinkhorn":
        result = sinkhorn_lines(target.axis, target.amplitudes, target.axis, magnitudes,
                                reg=SINKHORN_REG, tolerance=SINKHORN_TOLERANCE)
    else:
        result = frame_losses(loss_kind, target.axis, target.amplitudes, target.axis, magnitudes)
    return result.loss, np.einsum("th,th->t", result.grad_amps, derivatives)


def energy_matched_gains(amplitudes: np.ndarray, magnitudes: np.ndarray) -> np.ndarray:
    """Per-frame carrier amplitude g with Σ_k (g·M_k)² = Σ_k A_k²: the render keeps the target's level.

    The loss is scale-free, so the level is set separately. The least-squares gain <A, M>/<M, M>
    is this times the cosine between the spectra, so wherever the fitted shape is imperfect it
    renders too quiet (measured on the dev notes: median envelope error 1.35 dB vs 1.04 dB here).
    """
    model_energy = np.einsum("th,th->t", magnitudes, magnitudes)
    target_energy = np.einsum("th,th->t", amplitudes, amplitudes)
    # A model with no line in the measured band gets no level (rather than an unbounded one).
    return np.where(model_energy > 0.0, np.sqrt(target_energy / np.maximum(model_energy, 1e-300)), 0.0)


def _bisect_slope(loss_kind, target, carrier, modulator, low, high, steps=BISECTION_STEPS):
    """Per frame, where dL/dβ changes sign from − to + inside [low, high] (or the lower end)."""
    for _ in range(steps):
        middle = 0.5 * (low + high)
        _, slope = _frame_loss_and_slope(loss_kind, target, carrier, modulator, middle)
        rising = slope > 0.0
        high = np.where(rising, middle, high)
        low = np.where(rising, low, middle)
    return 0.5 * (low + high)


def _refine(loss_kind, target, carrier, modulator, grid, path):
    """Exact-gradient refinement of the grid path: bisection on the sign of dL/dβ in the cell on
    each side of the path point, keeping the best of the two results and the grid point itself.

    Each cell is searched separately because the loss is only piecewise smooth: where a harmonic's
    signed sum crosses zero (e.g. J_0 at β ≈ 2.405) |·| has a kink that can split a cell into two
    basins.
    """
    centre = grid[path]
    best_betas = centre
    best_loss, _ = _frame_loss_and_slope(loss_kind, target, carrier, modulator, centre)
    for low, high in ((grid[np.maximum(path - 1, 0)], centre), (centre, grid[np.minimum(path + 1, grid.size - 1)])):
        betas = _bisect_slope(loss_kind, target, carrier, modulator, low, high)
        loss, _ = _frame_loss_and_slope(loss_kind, target, carrier, modulator, betas)
        better = loss < best_loss
        best_betas = np.where(better, betas, best_betas)
        best_loss = np.where(better, loss, best_loss)
    return best_betas, best_loss


def _polish_with_sinkhorn(target, trajectory, grid):
    """Move β within half a grid cell of the W1 optimum to the Sinkhorn optimum (exact gradient)."""
    carrier, modulator = trajectory.carrier_ratio, trajectory.modulator_ratio
    cell = np.clip(np.searchsorted(grid, trajectory.betas), 1, grid.size - 1)
    half_cell = 0.5 * (grid[cell] - grid[cell - 1])
    start_loss, _ = _frame_loss_and_slope("sinkhorn", target, carrier, modulator, trajectory.betas)
    betas = _bisect_slope("sinkhorn", target, carrier, modulator, np.maximum(trajectory.betas - half_cell, 0.0),
                          trajectory.betas + half_cell, SINKHORN_BISECTION_STEPS)
    loss, _ = _frame_loss_and_slope("sinkhorn", target, carrier, modulator, betas)
    better = loss < start_loss
    betas = np.where(better, betas, trajectory.betas)
    frame_loss = np.where(better, loss, start_loss)
    magnitudes, _ = harmonic_spectrum(betas, carrier, modulator, target.axis.size)
    return IndexTrajectory(carrier, modulator, betas, frame_loss, weighted_mean(frame_loss, target.frame_weights),
                           energy_matched_gains(target.amplitudes, magnitudes))


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    return float(np.sum(values * weights) / max(np.sum(weights), 1e-300))


def search_index_trajectories(target: TargetSpectra, loss_kind: str = "w1",
                              candidates=None) -> list[IndexTrajectory]:
    """Fit β(t) for every candidate ratio; returns the tracked candidates, best (lowest loss) first.

    All candidates are screened on up to SCREEN_FRAMES evenly spaced frames (Viterbi on the grid);
    the TRACKED_CANDIDATES best are then fitted on every frame and refined with the exact gradient.
    Sinkhorn (POT, ~0.1 s per frame evaluation) is too slow for the search: its reg → 0 limit, W1,
    fits every candidate, and only the best is polished with the exact Sinkhorn gradient and
    returned, alone — callers should pass few frames.
    """
    candidates = candidate_ratios() if candidates is None else candidates
    search_kind = "w1" if loss_kind == "sinkhorn" else loss_kind
    grid = index_grid()
    n_harmonics = target.axis.size
    n_frames = target.amplitudes.shape[0]
    screen = np.unique(np.linspace(0, n_frames - 1, min(SCREEN_FRAMES, n_frames)).round().astype(np.int64))
    screen_hop = target.hop_s * max(1.0, (n_frames - 1) / max(screen.size - 1, 1))
    tables = {}
    screened = []
    for carrier, modulator in candidates:
        table, _ = harmonic_spectrum(grid, carrier, modulator, n_harmonics)
        tables[carrier, modulator] = table
        path, costs = _track(search_kind, target, screen, grid, table, screen_hop)
        score = weighted_mean(costs[np.arange(screen.size), path], target.frame_weights[screen])
        screened.append((score, carrier, modulator))
    screened.sort()
    every_frame = np.arange(n_frames)
    results = []
    for _, carrier, modulator in screened[:TRACKED_CANDIDATES]:
        path, _ = _track(search_kind, target, every_frame, grid, tables[carrier, modulator], target.hop_s)
        betas, frame_loss = _refine(search_kind, target, carrier, modulator, grid, path)
        magnitudes, _ = harmonic_spectrum(betas, carrier, modulator, n_harmonics)
        results.append(IndexTrajectory(carrier, modulator, betas, frame_loss,
                                       weighted_mean(frame_loss, target.frame_weights),
                                       energy_matched_gains(target.amplitudes, magnitudes)))
    results.sort(key=lambda trajectory: trajectory.loss)
    if loss_kind == "sinkhorn":
        return [_polish_with_sinkhorn(target, results[0], grid)]
    return results
