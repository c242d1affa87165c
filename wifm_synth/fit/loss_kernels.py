"""Numba kernels of the per-frame spectral losses (``fit.loss`` holds the maths, validation and wrappers).

Valid input is assumed here: finite values, weights >= 0, a strictly increasing grid. See ``fit.loss``
for the W1 gradient formulas these kernels implement.
"""

from __future__ import annotations

import numpy as np
from numba import njit

CDF_ROUNDOFF = 1e-12
MSE_UPPER_BOUND = 2.0  # Σ(p - q)^2 <= Σp^2 + Σq^2 <= 2 for two unit-mass distributions




@njit(cache=True, inline="always")
def _sign(cdf_difference):
    """Sign of D = F - G; D is a difference of unit-mass CDFs, so |D| below ``CDF_ROUNDOFF`` is the
    rounding error of an exact zero (e.g. past the last atom of both) and counts as 0."""
    if cdf_difference > CDF_ROUNDOFF:
        return 1.0
    return -1.0 if cdf_difference < -CDF_ROUNDOFF else 0.0


@njit(cache=True, inline="always")
def _averaged_position_slope(d_left, d_right, weight):
    """Average of the one-sided slopes of W1 when a model atom of mass ``weight`` moves away from a
    point where D = F - G jumps from ``d_left`` to ``d_right``."""
    right_slope = abs(d_right + weight) - abs(d_right)
    left_slope = abs(d_left) - abs(d_left - weight)
    return 0.5 * (right_slope + left_slope)


@njit(cache=True, inline="always")
def _masses(target, amps):
    target_mass = 0.0
    model_mass = 0.0
    for i in range(target.shape[0]):
        target_mass += target[i]
    for j in range(amps.shape[0]):
        model_mass += amps[j]
    return target_mass, model_mass


@njit(cache=True, inline="always")
def _through_normalisation(grad, weighted_mean, inv_model):
    """Turn ``grad`` from d/dq into d/da for model weights q = a / Σa, where ``weighted_mean`` = Σ q·dL/dq."""
    for i in range(grad.shape[0]):
        grad[i] = (grad[i] - weighted_mean) * inv_model


@njit(cache=True, fastmath=True)
def w1_grid_amps_into(grid, target_weights, model_amps, loss, grad_amps):
    """W1 per frame and d/d amplitude when target and model share the grid ``grid`` (H,).

    O(H) per frame, allocates nothing: the fitter's inner loop for integer ratios.
    """
    n_frames, n_points = target_weights.shape
    span = grid[n_points - 1] - grid[0]
    for t in range(n_frames):
        target = target_weights[t]
        amps = model_amps[t]
        gamps = grad_amps[t]
        target_mass, model_mass = _masses(target, amps)
        if target_mass <= 0.0 or model_mass <= 0.0:
            loss[t] = 0.0 if target_mass <= 0.0 else span
            gamps[:] = 0.0
            continue
        inv_target = 1.0 / target_mass
        inv_model = 1.0 / model_mass
        # forward: D_i = F - G on [x_i, x_i+1); keep sign(D_i)·gap_i in gamps as scratch
        distance = 0.0
        d_value = 0.0
        for i in range(n_points - 1):
            d_value += target[i] * inv_target - amps[i] * inv_model
            gap = grid[i + 1] - grid[i]
            distance += abs(d_value) * gap
            gamps[i] = _sign(d_value) * gap
        gamps[n_points - 1] = 0.0
        loss[t] = distance
        # backward: dW/dq_i = -∫_{x_i}^∞ sign(D) dx, then through q = a / Σa
        tail = 0.0
        weighted_mean = 0.0
        for i in range(n_points - 1, -1, -1):
            tail += gamps[i]
            gamps[i] = -tail
            weighted_mean -= amps[i] * tail
        _through_normalisation(gamps, weighted_mean * inv_model, inv_model)


@njit(cache=True, fastmath=True)
def w1_grid_into(grid, target_weights, model_amps, loss, grad_amps, grad_positions):
    """``w1_grid_amps_into`` plus d/d position of each model line (T, H); allocates nothing."""
    w1_grid_amps_into(grid, target_weights, model_amps, loss, grad_amps)
    n_frames, n_points = target_weights.shape
    for t in range(n_frames):
        target = target_weights[t]
        amps = model_amps[t]
        gpos = grad_positions[t]
        target_mass, model_mass = _masses(target, amps)
        if target_mass <= 0.0 or model_mass <= 0.0:
            gpos[:] = 0.0
            continue
        inv_target = 1.0 / target_mass
        inv_model = 1.0 / model_mass
        d_before = 0.0
        for i in range(n_points):
            weight = amps[i] * inv_model
            d_after = d_before + target[i] * inv_target - weight
            gpos[i] = _averaged_position_slope(d_before, d_after, weight)
            d_before = d_after


@njit(cache=True, fastmath=True)
def _unit_rows(weights, rows, cumulative):
    """Rows of ``weights`` normalised to unit mass (their CDFs when ``cumulative``); returns which
    rows have mass."""
    has_mass = np.empty(weights.shape[0], dtype=np.bool_)
    for r in range(weights.shape[0]):
        total = 0.0
        for i in range(weights.shape[1]):
            total += weights[r, i]
            rows[r, i] = total if cumulative else weights[r, i]
        has_mass[r] = total > 0.0
        scale = 1.0 / total if total > 0.0 else 0.0
        for i in range(weights.shape[1]):
            rows[r, i] *= scale
    return has_mass


@njit(cache=True, fastmath=True)
def w1_grid_cost_table_into(grid, target_weights, model_amps, costs):
    """W1 of every target frame (T, H) against every model spectrum (G, H) on one grid → costs (T, G).

    The CDFs are normalised once per row, so each pair costs one pass of H subtractions.
    """
    n_points = grid.shape[0]
    gaps = np.empty(n_points - 1)
    for i in range(n_points - 1):
        gaps[i] = grid[i + 1] - grid[i]
    target_cdfs = np.empty(target_weights.shape)
    model_cdfs = np.empty(model_amps.shape)
    target_has_mass = _unit_rows(target_weights, target_cdfs, True)
    model_has_mass = _unit_rows(model_amps, model_cdfs, True)
    span = grid[n_points - 1] - grid[0]
    for t in range(target_weights.shape[0]):
        for g in range(model_amps.shape[0]):
            if not target_has_mass[t]:
                costs[t, g] = 0.0
            elif not model_has_mass[g]:
                costs[t, g] = span
            else:
                distance = 0.0
                for i in range(n_points - 1):
                    distance += abs(target_cdfs[t, i] - model_cdfs[g, i]) * gaps[i]
                costs[t, g] = distance


@njit(cache=True, fastmath=True)
def mse_grid_cost_table_into(target_weights, model_amps, costs):
    """Σ(p - q)^2 of every target frame (T, H) against every model spectrum (G, H) → costs (T, G)."""
    n_points = target_weights.shape[1]
    targets = np.empty(target_weights.shape)
    models = np.empty(model_amps.shape)
    target_has_mass = _unit_rows(target_weights, targets, False)
    model_has_mass = _unit_rows(model_amps, models, False)
    for t in range(target_weights.shape[0]):
        for g in range(model_amps.shape[0]):
            if not target_has_mass[t]:
                costs[t, g] = 0.0
            elif not model_has_mass[g]:
                costs[t, g] = MSE_UPPER_BOUND
            else:
                total = 0.0
                for i in range(n_points):
                    difference = targets[t, i] - models[g, i]
                    total += difference * difference
                costs[t, g] = total


@njit(cache=True, fastmath=True)
def mse_grid_into(target_weights, model_amps, loss, grad_amps):
    """Σ_i (p_i - q_i)^2 per frame on normalised spectra, with d/d amplitude; allocates nothing."""
    n_frames, n_points = target_weights.shape
    for t in range(n_frames):
        target = target_weights[t]
        amps = model_amps[t]
        gamps = grad_amps[t]
        target_mass, model_mass = _masses(target, amps)
        if target_mass <= 0.0 or model_mass <= 0.0:
            loss[t] = 0.0 if target_mass <= 0.0 else MSE_UPPER_BOUND
            gamps[:] = 0.0
            continue
        inv_target = 1.0 / target_mass
        inv_model = 1.0 / model_mass
        total = 0.0
        weighted_mean = 0.0
        for i in range(n_points):
            weight = amps[i] * inv_model
            difference = target[i] * inv_target - weight
            total += difference * difference
            gamps[i] = -2.0 * difference
            weighted_mean += weight * gamps[i]
        loss[t] = total
        _through_normalisation(gamps, weighted_mean, inv_model)


@njit(cache=True)
def w1_lines_into(target_positions, target_weights, model_positions, model_amps,
                     loss, grad_amps, grad_positions):
    n_frames, n_target = target_weights.shape
    n_model = model_amps.shape[1]
    n_all = n_target + n_model
    positions = np.empty(n_all)
    deltas = np.empty(n_all)  # +p for target atoms, -q for model lines
    group_left = np.empty(n_all)  # D just left of each distinct position
    group_right = np.empty(n_all)  # D just right of it
    group_tail = np.empty(n_all)  # ∫ sign(D) from the position to the end
    line_group = np.empty(n_model, dtype=np.int64)
    order = np.empty(n_all, dtype=np.int64)
    target_rows = target_positions.shape[0]
    model_rows = model_positions.shape[0]
    for t in range(n_frames):
        if t == 0 or target_rows > 1 or model_rows > 1:  # shared positions are sorted once
            for i in range(n_target):
                positions[i] = target_positions[t if target_rows > 1 else 0, i]
            for j in range(n_model):
                positions[n_target + j] = model_positions[t if model_rows > 1 else 0, j]
            order = np.argsort(positions, kind="mergesort")
        target_mass, model_mass = _masses(target_weights[t], model_amps[t])
        if target_mass <= 0.0 or model_mass <= 0.0:
            loss[t] = 0.0 if target_mass <= 0.0 else positions.max() - positions.min()
            grad_amps[t, :] = 0.0
            grad_positions[t, :] = 0.0
            continue
        inv_target = 1.0 / target_mass
        inv_model = 1.0 / model_mass
        for i in range(n_target):
            deltas[i] = target_weights[t, i] * inv_target
        for j in range(n_model):
            deltas[n_target + j] = -model_amps[t, j] * inv_model
        # forward over groups of equal positions
        n_groups = 0
        d_value = 0.0
        distance = 0.0
        start = 0
        while start < n_all:
            here = positions[order[start]]
            group_left[n_groups] = d_value
            stop = start
            while stop < n_all and positions[order[stop]] == here:
                atom = order[stop]
                d_value += deltas[atom]
                if atom >= n_target:
                    line_group[atom - n_target] = n_groups
                stop += 1
            group_right[n_groups] = d_value
            gap = positions[order[stop]] - here if stop < n_all else 0.0
            distance += abs(d_value) * gap
            group_tail[n_groups] = _sign(d_value) * gap
            n_groups += 1
            start = stop
        loss[t] = distance
        for g in range(n_groups - 2, -1, -1):
            group_tail[g] += group_tail[g + 1]
        weighted_mean = 0.0
        for j in range(n_model):
            g = line_group[j]
            weight = -deltas[n_target + j]
            grad_amps[t, j] = -group_tail[g]
            weighted_mean += weight * grad_amps[t, j]
            grad_positions[t, j] = _averaged_position_slope(group_left[g], group_right[g], weight)
        _through_normalisation(grad_amps[t], weighted_mean, inv_model)
