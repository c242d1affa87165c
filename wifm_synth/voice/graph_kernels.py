"""Numba kernels of ``voice.graph_spectrum``: one sampled period of an operator graph with forward-mode
derivatives, the feedback operator's steady state, and magnitudes with their derivatives from DFT bins.

The method and the meaning of every argument are in ``voice.graph_spectrum``'s docstring; these
kernels trust their arguments (the wrapper there checks them and allocates every buffer).
"""

from __future__ import annotations

import math

from numba import njit

TWO_PI = 2.0 * math.pi
NEWTON_STEPS = 40  # a cap; from the previous point's solution Newton converges in 2–4 steps
NEWTON_TOLERANCE = 1e-15
MAX_SWEEPS = 200  # cap on the sweeps around the period for a delayed feedback (β ≥ 1 may not settle)
SWEEP_TOLERANCE = 1e-15


@njit(cache=True, nogil=True)
def solve_feedback(angle, feedback, guess):
    """y = sin(angle + feedback·y) by Newton from ``guess``; returns (y, dy/d angle).

    F(y) = y − sin(angle + β y) has F' = 1 − β cos ≥ 1 − β > 0 for β < 1, so the root is unique; y
    stays clamped to [−1, 1] where every root lies, which also keeps a step across a fold bounded.
    """
    y = guess
    for _ in range(NEWTON_STEPS):
        inner = angle + feedback * y
        # β ≥ 1 only: a slope ≤ 0 is a fold or the middle branch, which the engine's recursion cannot
        # settle on (it is stable only where 1 − β cos > 0); a tiny positive slope steps off it
        slope = max(1.0 - feedback * math.cos(inner), 1e-12)
        step = (y - math.sin(inner)) / slope
        y = min(1.0, max(-1.0, y - step))
        if abs(step) < NEWTON_TOLERANCE:
            break
    cosine = math.cos(angle + feedback * y)
    slope = max(1.0 - feedback * cosine, 1e-12)
    return y, cosine / slope


@njit(cache=True, nogil=True)
def _fed_back_past(unit, j, lag_taps, lag_weights):
    """Σ of the taps other than 0 (the current point, solved implicitly) at point j, wrapping the period."""
    n_points = unit.shape[0]
    total = 0.0
    for i in range(lag_taps.shape[0]):
        if lag_taps[i] != 0:
            total += lag_weights[i] * unit[(j - lag_taps[i]) % n_points]
    return total


@njit(cache=True, nogil=True)
def feedback_unit_into(angles, feedback, lag_taps, lag_weights, unit, gains):
    """The feedback operator's periodic steady state y_j = sin(a_j + β Σ_i w_i y_{j − tap_i}) and
    gains[j] = ∂y_j/∂(its phase argument), implicit in the tap-0 part.

    Instantaneous (the only tap is 0): one sweep, each Newton solve started from the previous point
    (β ≥ 1: a first sweep lands on the periodic branch). With past taps: Gauss–Seidel sweeps around the
    period, as the engine's recursion runs in time, until no point moves by more than SWEEP_TOLERANCE.
    """
    n_points = angles.shape[0]
    self_weight = 0.0
    delayed = False
    for i in range(lag_taps.shape[0]):
        if lag_taps[i] == 0:
            self_weight += lag_weights[i]
        else:
            delayed = True
    implicit = feedback * self_weight
    if not delayed:
        guess = math.sin(angles[0])
        if implicit >= 1.0:  # several branches: a first sweep lands on the periodic one
            for j in range(n_points):
                guess, _ = solve_feedback(angles[j], implicit, guess)
        for j in range(n_points):
            guess, gains[j] = solve_feedback(angles[j], implicit, guess)
            unit[j] = guess
        return
    for j in range(n_points):
        unit[j] = math.sin(angles[j])
    for _ in range(MAX_SWEEPS):
        change = 0.0
        for j in range(n_points):
            angle = angles[j] + feedback * _fed_back_past(unit, j, lag_taps, lag_weights)
            value, gains[j] = solve_feedback(angle, implicit, unit[j])
            change = max(change, abs(value - unit[j]))
            unit[j] = value
        if change < SWEEP_TOLERANCE:
            break


@njit(cache=True, nogil=True)
def feedback_derivative_into(derivative, by_feedback, feedback, lag_taps, lag_weights, unit, gains, work):
    """Turn ``derivative`` from d a/dp (the modulation's part) into dy/dp for the feedback operator:
    dy_j = gains_j (da_j + β Σ_{tap≠0} w_i dy_{j−tap} + [p = β] Σ_i w_i y_{j−tap}), swept like the values."""
    n_points = unit.shape[0]
    delayed = False
    for i in range(lag_taps.shape[0]):
        if lag_taps[i] != 0:
            delayed = True
    for j in range(n_points):
        work[j] = derivative[j]
        if by_feedback:
            fed_back = _fed_back_past(unit, j, lag_taps, lag_weights)
            for i in range(lag_taps.shape[0]):
                if lag_taps[i] == 0:
                    fed_back += lag_weights[i] * unit[j]
            work[j] += fed_back
        derivative[j] = gains[j] * work[j]
    if not delayed:
        return
    for _ in range(MAX_SWEEPS):
        change = 0.0
        largest = 0.0
        for j in range(n_points):
            value = gains[j] * (work[j] + feedback * _fed_back_past(derivative, j, lag_taps, lag_weights))
            change = max(change, abs(value - derivative[j]))
            largest = max(largest, abs(value))
            derivative[j] = value
        if change <= SWEEP_TOLERANCE * max(largest, 1.0):
            break


@njit(cache=True, nogil=True)
def graph_signals_into(levels, feedback, period_steps, order, modulator_counts, modulator_table,
                       source_scales, is_carrier, feedback_operator, lag_taps, lag_weights, depends, signals,
                       units, unit_derivatives, angles, gains, angle_derivatives):
    """One sampled period of the voice and its derivatives, per frame; no allocation.

    levels (T, K) and feedback (T,) per frame; period_steps[k] = r_k·D; ``depends[k, p]`` says
    whether unit output k depends on parameter p (p < K: level p, p = K: feedback); the feedback
    operator's fed-back value is Σ_i lag_weights[i]·y[j − lag_taps[i]] (one tap 0 of weight 1: the
    instantaneous fixed point). Writes signals[t, 0] = output and signals[t, 1 + p] = d output/dp,
    each (N,). Work buffers: units (K, N), unit_derivatives (K, K + 1, N) whose rows with depends False
    must hold zeros, angles, gains and angle_derivatives (N,).
    """
    n_operators = levels.shape[1]
    n_points = signals.shape[2]
    feedback_parameter = n_operators
    radians_per_step = TWO_PI / n_points
    for t in range(levels.shape[0]):
        beta = feedback[t]
        for slot in range(n_operators):
            k = order[slot]
            unit = units[k]
            for j in range(n_points):
                angles[j] = radians_per_step * ((period_steps[k] * j) % n_points)
            for position in range(modulator_counts[k]):
                m = modulator_table[k, position]
                depth = source_scales[m] * levels[t, m]
                source = units[m]
                for j in range(n_points):
                    angles[j] += depth * source[j]
            if k == feedback_operator:
                feedback_unit_into(angles, beta, lag_taps, lag_weights, unit, gains)
            else:
                for j in range(n_points):
                    unit[j] = math.sin(angles[j])
                    gains[j] = math.cos(angles[j])
            for p in range(n_operators + 1):
                if not depends[k, p]:
                    continue
                derivative = unit_derivatives[k, p]
                for j in range(n_points):
                    derivative[j] = 0.0
                for position in range(modulator_counts[k]):
                    m = modulator_table[k, position]
                    depth = source_scales[m] * levels[t, m]
                    source_derivative = unit_derivatives[m, p]
                    for j in range(n_points):
                        derivative[j] += depth * source_derivative[j]
                    if p == m:  # the modulator's own level scales its contribution
                        source = units[m]
                        for j in range(n_points):
                            derivative[j] += source_scales[m] * source[j]
                if k == feedback_operator:
                    feedback_derivative_into(derivative, p == feedback_parameter, beta, lag_taps, lag_weights,
                                             unit, gains, angle_derivatives)
                else:
                    for j in range(n_points):
                        derivative[j] *= gains[j]
        for row in range(n_operators + 2):
            for j in range(n_points):
                signals[t, row, j] = 0.0
        for k in range(n_operators):
            if not is_carrier[k]:
                continue
            level = levels[t, k]
            unit = units[k]
            for j in range(n_points):
                signals[t, 0, j] += level * unit[j]
                signals[t, 1 + k, j] += unit[j]
            for p in range(n_operators + 1):
                if depends[k, p]:
                    derivative = unit_derivatives[k, p]
                    for j in range(n_points):
                        signals[t, 1 + p, j] += level * derivative[j]


@njit(cache=True, nogil=True)
def magnitudes_from_bins_into(bins, parameters, zero_floors, magnitudes, derivatives):
    """|X| and d|X|/dp per frame and harmonic from bins (T, 1 + P, 2H) = [Re X | Im X] of the output
    (row 0) and of d output/dp (row 1 + p). A magnitude at or below the frame's ``zero_floors[t]`` is
    rounding noise of an exact zero (say a harmonic the graph cannot reach at a zero index), where
    Re(conj X dX)/|X| would be a random sign: it takes the zero rule, with ``parameters`` (T, P)."""
    n_harmonics = magnitudes.shape[1]
    n_parameters = derivatives.shape[2]
    for t in range(bins.shape[0]):
        for h in range(n_harmonics):
            real = bins[t, 0, h]
            imaginary = bins[t, 0, n_harmonics + h]
            magnitude = math.sqrt(real * real + imaginary * imaginary)
            magnitudes[t, h] = magnitude
            for p in range(n_parameters):
                real_derivative = bins[t, 1 + p, h]
                imaginary_derivative = bins[t, 1 + p, n_harmonics + h]
                if magnitude > zero_floors[t]:
                    derivatives[t, h, p] = (real * real_derivative + imaginary * imaginary_derivative) / magnitude
                elif parameters[t, p] == 0.0:
                    derivatives[t, h, p] = math.sqrt(real_derivative * real_derivative
                                                     + imaginary_derivative * imaginary_derivative)
                else:
                    derivatives[t, h, p] = 0.0
