"""Numba kernels of ``voice.graph_spectrum``: one sampled period of an operator graph with forward-mode
derivatives, the feedback operator's steady state, and magnitudes with their derivatives from DFT bins.

The method and the meaning of every argument are in ``voice.graph_spectrum``'s docstring; these
kernels trust their arguments (the wrapper there checks them and allocates every buffer).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

TWO_PI = 2.0 * math.pi
# sin and cos by the classic reduction to |r| ≤ π/4 and minimax polynomials (within 2 ulp of libm):
# branch-free, so loops over a period's points vectorise — about 5x faster than math.sin + math.cos.
PIO2_HIGH = 1.57079632673412561417e+00  # π/2 to 33 bits: q·PIO2_HIGH is exact for |q| < 2^20
PIO2_LOW = 6.07710050650619224932e-11  # π/2 − PIO2_HIGH
TWO_OVER_PI = 2.0 / math.pi
SIN_1, SIN_2, SIN_3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
SIN_4, SIN_5, SIN_6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
COS_1, COS_2, COS_3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
COS_4, COS_5, COS_6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11
NEWTON_STEPS = 40  # a cap; from the previous point's solution Newton converges in 2–4 steps
# Newton's error after a step δ is about |F''/2F'|·δ² ≤ β²/(2(1 − β))·δ²: below 1e-16 after δ < 1e-9
# for β ≤ 0.99, so a step that small is the last one needed
NEWTON_SETTLED = 1e-9
MAX_SWEEPS = 200  # cap on the sweeps around the period for a delayed feedback (β ≥ 1 may not settle)
SWEEP_TOLERANCE = 1e-15


@njit(inline="always", cache=True, nogil=True)
def sin_and_cos(x):
    """(sin x, cos x) for |x| < 2^20·π/2: x = q·π/2 + r, polynomials in r, then the quadrant q mod 4
    swaps and signs them (by arithmetic, not branches)."""
    quadrant = np.rint(x * TWO_OVER_PI)
    r = (x - quadrant * PIO2_HIGH) - quadrant * PIO2_LOW
    z = r * r
    sine = r + r * z * (SIN_1 + z * (SIN_2 + z * (SIN_3 + z * (SIN_4 + z * (SIN_5 + z * SIN_6)))))
    cosine = 1.0 - 0.5 * z + z * z * (COS_1 + z * (COS_2 + z * (COS_3 + z * (COS_4 + z * (COS_5 + z * COS_6)))))
    q = np.int64(quadrant)
    odd = (q & 1) == 1
    sine_sign = 1.0 - 2.0 * ((q >> 1) & 1)
    cosine_sign = 1.0 - 2.0 * (((q + 1) >> 1) & 1)
    return (cosine if odd else sine) * sine_sign, (sine if odd else cosine) * cosine_sign


@njit(cache=True, nogil=True)
def sin_and_cos_into(x, sines, cosines):
    """sin_and_cos over an array (for its twin test)."""
    for j in range(x.shape[0]):
        sines[j], cosines[j] = sin_and_cos(x[j])


@njit(cache=True, nogil=True)
def solve_feedback(angle, feedback, guess):
    """y = sin(angle + feedback·y) by Newton from ``guess``; returns (y, dy/d angle).

    F(y) = y − sin(angle + β y) has F' = 1 − β cos ≥ 1 − β > 0 for β < 1, so the root is unique; y
    stays clamped to [−1, 1] where every root lies, which also keeps a step across a fold bounded.
    """
    y = guess
    for _ in range(NEWTON_STEPS):
        sine, cosine = sin_and_cos(angle + feedback * y)
        # β ≥ 1 only: a slope ≤ 0 is a fold or the middle branch, which the engine's recursion cannot
        # settle on (it is stable only where 1 − β cos > 0); a tiny positive slope steps off it
        slope = max(1.0 - feedback * cosine, 1e-12)
        step = (y - sine) / slope
        y = min(1.0, max(-1.0, y - step))
        if abs(step) < NEWTON_SETTLED:
            break
    _, cosine = sin_and_cos(angle + feedback * y)
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
            if j > 0:  # first-order predictor from the previous point; the phase may wrap by 2π
                advance = angles[j] - angles[j - 1]
                guess += gains[j - 1] * (advance - TWO_PI * np.rint(advance / TWO_PI))
            guess, gains[j] = solve_feedback(angles[j], implicit, min(1.0, max(-1.0, guess)))
            unit[j] = guess
        return
    for j in range(n_points):
        unit[j], _ = sin_and_cos(angles[j])
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
                       units, unit_derivatives, angles, gains, angle_derivatives, own_phases):
    """One sampled period of the voice and its derivatives, per frame; no allocation.

    levels (T, K) and feedback (T,) per frame; period_steps[k] = r_k·D; ``depends[k, p]`` says
    whether unit output k depends on parameter p (p < K: level p, p = K: feedback); the feedback
    operator's fed-back value is Σ_i lag_weights[i]·y[j − lag_taps[i]] (one tap 0 of weight 1: the
    instantaneous fixed point). Writes signals[t, 0] = output and signals[t, 1 + p] = d output/dp,
    each (N,). Work buffers: units (K, N), unit_derivatives (K, K + 1, N) whose rows with depends False
    must hold zeros, angles, gains and angle_derivatives (N,), own_phases (K, N) for θ_k.
    """
    n_operators = levels.shape[1]
    n_points = signals.shape[2]
    feedback_parameter = n_operators
    radians_per_step = TWO_PI / n_points
    for k in range(n_operators):
        for j in range(n_points):
            own_phases[k, j] = radians_per_step * ((period_steps[k] * j) % n_points)
    for t in range(levels.shape[0]):
        beta = feedback[t]
        for slot in range(n_operators):
            k = order[slot]
            if t > 0 and modulator_counts[k] == 0 and k != feedback_operator:
                continue  # an unmodulated operator without feedback is the same sine in every frame
            unit = units[k]
            for j in range(n_points):
                angles[j] = own_phases[k, j]
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
                    unit[j], gains[j] = sin_and_cos(angles[j])
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
def magnitudes_from_spectra_into(spectra, period, parameters, zero_floors, magnitudes, derivatives):
    """|X| and d|X|/dp per frame and harmonic h (bin h·``period``) from real FFTs (T, 1 + P, N/2 + 1) of
    the output (row 0) and of d output/dp (row 1 + p), scaled by 2/N so a unit sine has magnitude 1.

    A magnitude at or below the frame's ``zero_floors[t]`` is rounding noise of an exact zero (say a
    harmonic the graph cannot reach at a zero index), where Re(conj X dX)/|X| would be a random sign:
    it takes the zero rule, deciding by ``parameters`` (T, P) whether the parameter sits at its edge 0.
    """
    n_harmonics = magnitudes.shape[1]
    n_parameters = derivatives.shape[2]
    scale = 2.0 / (2 * (spectra.shape[2] - 1))
    for t in range(spectra.shape[0]):
        for h in range(n_harmonics):
            value = spectra[t, 0, (h + 1) * period] * scale
            magnitude = abs(value)
            magnitudes[t, h] = magnitude
            for p in range(n_parameters):
                slope = spectra[t, 1 + p, (h + 1) * period] * scale
                if magnitude > zero_floors[t]:
                    derivatives[t, h, p] = (value.real * slope.real + value.imag * slope.imag) / magnitude
                elif parameters[t, p] == 0.0:
                    derivatives[t, h, p] = abs(slope)
                else:
                    derivatives[t, h, p] = 0.0
