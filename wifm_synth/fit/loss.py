"""Per-frame spectral losses between a target spectrum and model lines, with exact gradients.

Each frame compares two discrete distributions on a 1-D axis (harmonic index, log-frequency, ...
— the caller chooses the positions): target atoms (positions x, weights >= 0) and model lines
(positions y, amplitudes >= 0). Both are normalised to unit mass inside, and the amplitude gradient
goes through that normalisation, so the losses measure spectral *shape* and are blind to level.

Wasserstein-1 in 1-D is the area between the two CDFs, W1 = ∫|F - G| dx. With D = F - G:
- dW1/dq_j = -∫_{y_j}^∞ sign(D) dx for the normalised model weight q_j, and through q = a/Σa,
  dW1/da_j = (dW1/dq_j - Σ_i q_i dW1/dq_i) / Σa;
- dW1/dy_j = |D just left of y_j| - |D just right of y_j| for a line alone at its position.
W1 is piecewise linear, so where it has a kink (D = 0 on an interval, or a model line sitting
on another atom) the gradient returned is the average of the one-sided slopes — the value central
differences converge to, and a valid subgradient of this convex-in-weights loss.

Empty frames stay finite: a frame whose target has no mass scores 0 with zero gradients; an
all-zero model against a non-empty target scores the loss's upper bound (W1 and Sinkhorn: the span
of all positions in the frame; MSE: 2) with zero gradients, since the loss is discontinuous there.

Kinds (``frame_losses``): ``"w1"`` (exact; O(H) per frame when the model lines sit on the target's
grid), ``"mse"`` (sum of squared differences of the normalised spectra on a shared grid) and
``"sinkhorn"`` (entropic OT through POT; see ``sinkhorn_lines``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from wifm_synth.errors import InputError
from wifm_synth.fit.loss_kernels import (
    mse_grid_cost_table_into,
    mse_grid_into,
    w1_grid_cost_table_into,
    w1_grid_into,
    w1_lines_into,
)

LOSS_KINDS = ("w1", "mse", "sinkhorn")


class FrameLosses(NamedTuple):
    """Per-frame losses (T,) and gradients w.r.t. model amplitudes and positions (T, L)."""

    loss: np.ndarray
    grad_amps: np.ndarray
    grad_positions: np.ndarray


# ---------------------------------------------------------------------------------------------
# Validation


def _as_weights(values, name: str) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise InputError(f"{name}: must be a non-empty (points,) or (frames, points) array, got shape {array.shape}")
    if not (np.isfinite(array.sum()) and (array >= 0.0).all()):
        raise InputError(f"{name}: weights must be finite and >= 0")
    return array


def _as_positions(values, name: str, n_frames: int, n_points: int) -> np.ndarray:
    """Positions as (frames, points), or (1, points) when one 1-D array is shared by all frames."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape not in ((n_points,), (n_frames, n_points)):
        raise InputError(f"{name}: shape {array.shape} does not match the weights ({n_frames}, {n_points})")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: positions must be finite")
    return np.ascontiguousarray(array.reshape(-1, n_points))


def _paired_weights(target_weights, model_amps) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both as (T, ·) float64 arrays with matching frame counts, plus whether the input was 1-D."""
    target = _as_weights(target_weights, "target_weights")
    model = _as_weights(model_amps, "model_amps")
    if target.ndim != model.ndim or (target.ndim == 2 and target.shape[0] != model.shape[0]):
        raise InputError(f"model_amps: shape {model.shape} does not match target_weights {target.shape} in frames")
    single = target.ndim == 1
    return np.atleast_2d(target), np.atleast_2d(model), single


def _as_grid(grid, n_points: int) -> np.ndarray:
    array = np.ascontiguousarray(grid, dtype=np.float64)
    if array.shape != (n_points,):
        raise InputError(f"grid: must have shape ({n_points},) like the weights, got {array.shape}")
    if not np.isfinite(array).all() or (np.diff(array) <= 0.0).any():
        raise InputError("grid: positions must be finite and strictly increasing")
    return array


def _result(loss, grad_amps, grad_positions, single: bool) -> FrameLosses:
    if single:
        return FrameLosses(loss[0], grad_amps[0], grad_positions[0])
    return FrameLosses(loss, grad_amps, grad_positions)


# ---------------------------------------------------------------------------------------------
# Public API


def w1_grid(grid, target_weights, model_amps, *, out: FrameLosses | None = None) -> FrameLosses:
    """Exact W1 per frame for model lines on the target's grid (integer ratios), O(H) per frame.

    ``grid`` (H,) strictly increasing positions shared by target and model; weights (T, H) or (H,).
    ``out`` (2-D weights only) reuses preallocated result arrays so repeated calls do not allocate.
    """
    target, model, single = _paired_weights(target_weights, model_amps)
    if target.shape != model.shape:
        raise InputError(f"model_amps: shape {model.shape} must equal target_weights {target.shape} on a shared grid")
    positions = _as_grid(grid, target.shape[1])
    if out is None:
        out = FrameLosses(np.empty(target.shape[0]), np.empty(target.shape), np.empty(target.shape))
    elif single or out.loss.shape != target.shape[:1] or out.grad_amps.shape != target.shape \
            or out.grad_positions.shape != target.shape:
        raise InputError("out: arrays must be shaped (T,), (T, H), (T, H) for 2-D weights")
    w1_grid_into(positions, target, model, out.loss, out.grad_amps, out.grad_positions)
    return _result(*out, single)


def w1_lines(target_positions, target_weights, model_positions, model_amps) -> FrameLosses:
    """Exact W1 per frame between target atoms and model lines at arbitrary positions.

    Positions are (N,)/(L,) shared by all frames or (T, N)/(T, L) per frame; ties are allowed.
    O((N+L) log(N+L)) per frame.
    """
    target, model, single = _paired_weights(target_weights, model_amps)
    n_frames = target.shape[0]
    target_pos = _as_positions(target_positions, "target_positions", n_frames, target.shape[1])
    model_pos = _as_positions(model_positions, "model_positions", n_frames, model.shape[1])
    loss = np.empty(n_frames)
    grad_amps = np.empty(model.shape)
    grad_positions = np.empty(model.shape)
    w1_lines_into(target_pos, target, model_pos, model, loss, grad_amps, grad_positions)
    return _result(loss, grad_amps, grad_positions, single)


def mse_grid(target_weights, model_amps) -> FrameLosses:
    """Σ (p - q)^2 per frame between normalised target and model spectra on the same grid.

    Position gradients are zero (the grid is fixed).
    """
    target, model, single = _paired_weights(target_weights, model_amps)
    if target.shape != model.shape:
        raise InputError(f"model_amps: shape {model.shape} must equal target_weights {target.shape} on a shared grid")
    loss = np.empty(target.shape[0])
    grad_amps = np.empty(target.shape)
    mse_grid_into(target, model, loss, grad_amps)
    return _result(loss, grad_amps, np.zeros(target.shape), single)


def grid_cost_table(kind: str, grid, target_weights, model_amps) -> np.ndarray:
    """Loss of every target frame (T, H) against every model spectrum (G, H) on a shared grid → (T, G).

    For tabulated searches (e.g. over a grid of modulation indices); ``kind`` is "w1" or "mse".
    Values equal ``frame_losses`` for each pair, including the empty-frame rules.
    """
    if kind not in ("w1", "mse"):
        raise InputError(f"loss: cost tables support w1 and mse, not {kind!r}")
    targets = np.atleast_2d(_as_weights(target_weights, "target_weights"))
    models = np.atleast_2d(_as_weights(model_amps, "model_amps"))
    if models.shape[1] != targets.shape[1]:
        raise InputError(f"model_amps: {models.shape[1]} points per spectrum, the targets have {targets.shape[1]}")
    positions = _as_grid(grid, targets.shape[1])
    costs = np.empty((targets.shape[0], models.shape[0]))
    if kind == "w1":
        w1_grid_cost_table_into(positions, targets, models, costs)
    else:
        mse_grid_cost_table_into(targets, models, costs)
    return costs


def _sinkhorn_frame(target_pos, target_w, model_pos, model_amps, reg, max_iterations, tolerance):
    """Entropic OT value and gradients for one frame with non-empty target and model."""
    import ot  # POT is only needed for this option
    from scipy.special import logsumexp

    a_keep = target_w > 0.0
    b_keep = model_amps > 0.0
    model_mass = model_amps.sum()
    a = target_w[a_keep] / target_w.sum()
    b = model_amps[b_keep] / model_mass
    x = target_pos[a_keep]
    cost = np.abs(x[:, None] - model_pos[b_keep][None, :])
    # The stabilised solver absorbs growing scalings into the potentials and costs a fraction of the
    # log-domain solver per iteration. Starting it from the double c-transform of zero potentials
    # puts an exp(0) in every row and column of its kernel, so no row underflows even when reg is
    # tiny against the distances.
    row_potentials = cost.min(axis=1)
    column_potentials = (cost - row_potentials[:, None]).min(axis=0)
    plan, log = ot.sinkhorn(a, b, cost, reg, method="sinkhorn_stabilized", numItermax=max_iterations,
                            stopThr=tolerance, log=True, warn=False, warmstart=(row_potentials, column_potentials))
    mass = plan > 0.0
    relative = np.where(mass, plan / np.maximum(a[:, None] * b[None, :], np.finfo(float).tiny), 1.0)
    value = float((plan * cost).sum() + reg * (plan[mass] * np.log(relative[mass])).sum())
    # dual potential of every model line, including silent ones: the soft c-transform of log u
    potentials = -reg * logsumexp(log["logu"][:, None] - np.abs(x[:, None] - model_pos[None, :]) / reg, axis=0)
    weights = model_amps / model_mass
    grad_amps = (potentials - weights @ potentials) / model_mass
    grad_positions = np.zeros_like(model_amps)
    grad_positions[b_keep] = (plan * np.sign(model_pos[b_keep][None, :] - x[:, None])).sum(axis=0)
    return value, grad_amps, grad_positions


def sinkhorn_lines(target_positions, target_weights, model_positions, model_amps, *, reg: float = 0.05,
                   max_iterations: int = 10000, tolerance: float = 1e-9) -> FrameLosses:
    """Entropic optimal transport per frame (POT's stabilised Sinkhorn on the |x - y| cost).

    The value is the entropic objective <P, C> + reg·KL(P | p⊗q) at the optimal plan P; its exact
    gradients (envelope theorem) are the dual potentials for the model weights (finite also for
    silent lines) and Σ_i P_ij sign(y_j - x_i) for the positions. ``reg`` is in position units;
    as reg → 0 the value tends to W1, but the iterations needed grow like 1/reg: a frame that has
    not converged within ``max_iterations`` reports its last iterate.
    """
    if not (np.isfinite(reg) and reg > 0.0):
        raise InputError(f"reg: must be a finite number > 0, got {reg!r}")
    target, model, single = _paired_weights(target_weights, model_amps)
    n_frames = target.shape[0]
    target_pos = np.broadcast_to(_as_positions(target_positions, "target_positions", n_frames, target.shape[1]),
                                 target.shape)
    model_pos = np.broadcast_to(_as_positions(model_positions, "model_positions", n_frames, model.shape[1]),
                                model.shape)
    loss = np.zeros(n_frames)
    grad_amps = np.zeros(model.shape)
    grad_positions = np.zeros(model.shape)
    for t in range(n_frames):
        if target[t].sum() <= 0.0:
            continue
        if model[t].sum() <= 0.0:
            both = np.concatenate([target_pos[t], model_pos[t]])
            loss[t] = both.max() - both.min()
            continue
        loss[t], grad_amps[t], grad_positions[t] = _sinkhorn_frame(
            target_pos[t], target[t], model_pos[t], model[t], reg, max_iterations, tolerance)
    return _result(loss, grad_amps, grad_positions, single)


def _on_shared_grid(target_positions, model_positions) -> bool:
    target_pos = np.asarray(target_positions)
    model_pos = np.asarray(model_positions)
    return (target_pos.ndim == 1 and target_pos.shape == model_pos.shape
            and bool(np.array_equal(target_pos, model_pos)) and bool((np.diff(target_pos) > 0.0).all()))


def frame_losses(kind: str, target_positions, target_weights, model_positions, model_amps, *,
                 sinkhorn_reg: float = 0.05) -> FrameLosses:
    """Per-frame loss and gradients of the given kind ("w1", "mse" or "sinkhorn").

    W1 takes the O(H) grid path automatically when the model positions equal the target's
    (1-D, strictly increasing); MSE requires that shared grid.
    """
    if kind not in LOSS_KINDS:
        raise InputError(f"loss: unknown kind {kind!r}, expected one of {', '.join(LOSS_KINDS)}")
    if kind == "sinkhorn":
        return sinkhorn_lines(target_positions, target_weights, model_positions, model_amps, reg=sinkhorn_reg)
    shared_grid = _on_shared_grid(target_positions, model_positions)
    if kind == "mse":
        if not shared_grid:
            raise InputError("loss: mse needs the model lines on the target's grid (same 1-D positions)")
        return mse_grid(target_weights, model_amps)
    if shared_grid:
        return w1_grid(target_positions, target_weights, model_amps)
    return w1_lines(target_positions, target_weights, model_positions, model_amps)
