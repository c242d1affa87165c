"""Harmonic magnitudes of any operator graph with integer (or half-integer) ratios, with exact derivatives.

Method. With every ratio r_k a multiple of 1/D (D = 1 for integer ratios, 2 when a DX7 coarse 0.5
appears) and all phases starting at 0 (as in the engine), the voice repeats every D/f0 seconds. One
period is sampled at N points, τ_j = j/N, where operator k's own phase is θ_k = 2π (r_k D j mod N)/N.
The operators are evaluated in the topology's order:

    a_k = θ_k + Σ_{m modulates k} s_m L_m y_m          (phase in radians)
    y_k = sin(a_k)                                    (unit-level output)
    out = Σ_{carriers c} L_c y_c

L is the operator's level: an amplitude for a carrier, an index in radians for a modulator. s_m is 1
for a modulator and 2π for a carrier that also modulates, because the engine hands every operator's
``level · unit`` output on as modulation in cycles. Harmonic h of f0 is DFT bin h·D of the sampled
period (half-integer ratios also put energy on odd multiples of f0/2; those bins are not reported),
and its magnitude, in the units of ``voice.spectrum`` (a unit sine has magnitude 1), is 2|X_hD|/N.

Derivatives are forward-mode through the same recursion: for every parameter p (each level, then the
feedback amount β), dy_k/dp = cos(a_k) · da_k/dp with da_k/dp = Σ_m s_m (δ_pm y_m + L_m dy_m/dp), and
d out/dp = Σ_c (δ_pc y_c + L_c dy_c/dp). The DFT is linear, so dX = DFT(d out/dp) and
d|X|/dp = Re(conj(X) dX)/|X|. Where X is exactly 0 the one-sided slopes are ±|dX|: at the edge of
the domain (the parameter is 0) the right-hand slope |dX| is taken, elsewhere their average 0, as
``voice.spectrum.magnitude_and_derivative`` does. Only the bins reported are needed, so the DFT is
one matrix product of all frames' signals with the (N, 2H) cosine/sine columns of those bins
(identical to picking them from a real FFT, and faster for H ≪ N/2; tools/bench_graph_spectrum.py).

Points per period. Aliasing folds content at bin b > N/2 onto N − b, so N must leave every line of
non-negligible size below N − H·D. A Carson-type bound in bins of the period: the peak instantaneous
frequency F_k = r_k D + Σ_m s_m L_m F_m and the extent E_k = F_k + Σ_m E_m (for one pair this is
Carson's c + (β + 1) m); a feedback operator's own extent is r D times the number of its Kapteyn
harmonics above 1e-12 (below). N is the power of two ≥ 2 (E + G) + 2 H D over the carriers, with
G the guard orders for the tail past Carson's bound (see ``points_per_period``). Measured against
an N four times larger, the alias error of the reported magnitudes is below 1e-9 of the largest
for ratios ≤ 8, indices ≤ 10 and H ≤ 40 (tests/voice/test_graph_spectrum.py).

Feedback. The engine adds β · (y[n−1] + y[n−2])/2 to the feedback operator's phase, a delay of one
and two audio samples that a sampled period has no notion of. Here the operator is the steady state
y = sin(a + β y), solved per point by Newton steps started from the previous point, with
dy = cos(a + β y) (da + y dβ) / (1 − β cos(a + β y)) by implicit differentiation. For a lone
operator this is Kepler's equation: y = Σ_n 2 J_n(nβ)/(nβ) sin(n θ), whose harmonics fall like
q(β)^n with q = β e^√(1−β²) / (1 + √(1−β²)) < 1 for β < 1. The engine's 1.5-sample lag makes its
harmonic n of a feedback operator at frequency f differ by roughly β · 2π n f · 1.5/fs relative;
measured on all 32 DX7 algorithms (test_graph_spectrum.py) the harmonic magnitudes agree with an FFT
of the engine's render to about −52 dB of the largest harmonic at f0 = 93.75 Hz, fs = 48 kHz,
β ≤ 0.8, against better than −130 dB without feedback. For β ≥ 1 the fixed point has several
branches: the period is swept twice and the second sweep follows the branch it lands on (the
engine's recursion also follows a branch until it ends), so the waveform jumps where a branch ends,
its spectrum falls only like 1/n (N is then capped) and the derivatives ignore the jump positions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from wifm_synth.errors import InputError
from wifm_synth.voice.topology import Topology

TWO_PI = 2.0 * math.pi
NEWTON_STEPS = 40  # a cap; from the previous point's solution Newton converges in 2–4 steps
NEWTON_TOLERANCE = 1e-15
KAPTEYN_FLOOR = 1e-9  # a feedback operator's harmonics below this are treated as absent
MAX_FEEDBACK_HARMONICS = 512  # β ≥ 1: its spectrum falls only like 1/n, so the count is capped
MAX_POINTS_PER_PERIOD = 1 << 16
ZERO_FLOOR = 1e-13  # magnitudes below this times the output's peak bound are exact zeros plus rounding
CHUNK_VALUES = 1 << 20  # signals of this many floats per chunk of frames (8 MB) are reused per call


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
def graph_signals_into(levels, feedback, period_steps, order, modulator_counts, modulator_table,
                       source_scales, is_carrier, feedback_operator, depends, signals, units,
                       unit_derivatives, angles, gains):
    """One sampled period of the voice and its derivatives, per frame; no allocation.

    levels (T, K) and feedback (T,) per frame; period_steps[k] = r_k·D; ``depends[k, p]`` says
    whether unit output k depends on parameter p (p < K: level p, p = K: feedback). Writes
    signals[t, 0] = output and signals[t, 1 + p] = d output/dp, each (N,). Work buffers: units (K, N),
    unit_derivatives (K, K + 1, N) whose rows with depends False must hold zeros, angles and gains (N,).
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
                guess = math.sin(angles[0])
                if beta >= 1.0:  # several branches: a first sweep lands on the periodic one
                    for j in range(n_points):
                        guess, _ = solve_feedback(angles[j], beta, guess)
                for j in range(n_points):
                    guess, gains[j] = solve_feedback(angles[j], beta, guess)
                    unit[j] = guess
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
                if p == feedback_parameter and k == feedback_operator:
                    for j in range(n_points):
                        derivative[j] += unit[j]
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


def period_in_f0(ratios) -> tuple[int, np.ndarray]:
    """(D, r·D): D = 1 when every ratio is an integer, 2 when some is a half-integer (DX7 coarse 0.5)."""
    doubled = np.asarray(ratios, dtype=np.float64) * 2.0
    if doubled.ndim != 1 or not np.all(np.isfinite(doubled)) or np.any(doubled < 1.0) \
            or np.any(doubled != np.round(doubled)):
        raise InputError(f"ratios: must be a 1-D list of integers or half-integers >= 0.5, got {ratios!r}")
    steps = np.round(doubled).astype(np.int64)
    if np.all(steps % 2 == 0):
        return 1, steps // 2
    return 2, steps


def feedback_harmonic_count(feedback: float) -> int:
    """Harmonics of a lone feedback operator above KAPTEYN_FLOOR: its n-th falls like q(β)^n."""
    if feedback <= 0.0:
        return 1
    if feedback >= 1.0:
        return MAX_FEEDBACK_HARMONICS
    root = math.sqrt(1.0 - feedback * feedback)
    decay = feedback * math.exp(root) / (1.0 + root)
    return min(MAX_FEEDBACK_HARMONICS, max(1, math.ceil(math.log(KAPTEYN_FLOOR) / math.log(decay))))


def points_per_period(topology: Topology, ratios, levels, feedback=0.0, n_harmonics: int = 1,
                      feedback_operator: int | None = None) -> int:
    """The power of two N of samples per period that keeps aliasing off harmonics 1..H (module doc).

    Per operator k, in bins of the period: peak instantaneous frequency F_k and Carson extent E_k;
    the guard past Carson's bound is (2 β^(1/3) + 2) F_m for the link from modulator m with index β
    (Bessel lines past order β + 1 fall off within a few β^(1/3)), the largest guard on the way to a
    carrier counts, and N is then doubled by the 2 (E + G). Levels may be per frame; their largest
    values decide.
    """
    period, steps = period_in_f0(ratios)
    peaks = np.max(_validated_levels(np.atleast_2d(levels), topology.operator_count), axis=0)
    beta = float(np.max(np.asarray(feedback, dtype=np.float64), initial=0.0))
    if feedback_operator is None:
        feedback_operator = _default_feedback_operator(topology)
    frequency = np.zeros(topology.operator_count)
    extent = np.zeros(topology.operator_count)
    guard = np.zeros(topology.operator_count)
    for k in topology.order:
        own = float(steps[k])
        frequency[k] = own
        extent[k] = own * (feedback_harmonic_count(beta) if k == feedback_operator else 1)
        for m in topology.modulators[k]:
            index = _source_scale(topology, m) * peaks[m]
            frequency[k] += index * frequency[m]
            extent[k] += index * frequency[m] + extent[m]
            guard[k] = max(guard[k], guard[m], (2.0 * index ** (1.0 / 3.0) + 2.0) * frequency[m])
        extent[k] = max(extent[k], frequency[k])
    carriers = list(topology.carrier_indices)
    needed = 2.0 * (np.max(extent[carriers] + guard[carriers]) + n_harmonics * period) + 2
    return int(min(MAX_POINTS_PER_PERIOD, 1 << math.ceil(math.log2(needed))))


def _validated_levels(levels, count: int) -> np.ndarray:
    levels = np.ascontiguousarray(levels, dtype=np.float64)
    if levels.ndim != 2 or levels.shape[1] != count or not np.all(np.isfinite(levels)) or np.any(levels < 0):
        raise InputError(f"levels: must be finite, >= 0 and of shape (frames, {count}), got {levels.shape}")
    return levels


def _source_scale(topology: Topology, operator: int) -> float:
    """Radians of phase per unit of level·unit output: the engine passes level·unit on in cycles, and a
    modulator's level is an index in radians (÷2π) while a carrier's is an amplitude (as is)."""
    return TWO_PI if topology.carriers[operator] else 1.0


def _default_feedback_operator(topology: Topology) -> int | None:
    return topology.feedback_operators[0] if len(topology.feedback_operators) == 1 else None


def _dependencies(topology: Topology, feedback_operator: int | None) -> np.ndarray:
    """depends[k, p]: unit output k varies with level p (p an ancestor of k) or with feedback (the
    feedback operator is k or an ancestor). A unit output never depends on its own level."""
    count = topology.operator_count
    ancestors = [set() for _ in range(count)]
    for k in topology.order:
        for m in topology.modulators[k]:
            ancestors[k] |= ancestors[m] | {m}
    depends = np.zeros((count, count + 1), dtype=np.bool_)
    for k in range(count):
        depends[k, sorted(ancestors[k])] = True
        depends[k, count] = feedback_operator is not None and (k == feedback_operator or feedback_operator in ancestors[k])
    return depends


class GraphSpectrum:
    """Harmonics 1..H of f0 of one topology and ratio set, evaluated for many frames of levels.

    Build once (it compiles the routing into arrays and allocates the reused buffers), call many
    times: ``spectrum(levels, feedback)`` with levels (T, K) — carrier amplitudes, modulator indices
    in radians — and feedback (radians) scalar or (T,), returns magnitudes (T, H) and derivatives
    (T, H, K + 1): d/d level_0..level_{K−1}, then d/d feedback. The returned arrays are new.
    """

    def __init__(self, topology: Topology, ratios, n_harmonics: int, n_points: int,
                 feedback_operator: int | None = None):
        if isinstance(n_harmonics, bool) or not isinstance(n_harmonics, (int, np.integer)) or n_harmonics < 1:
            raise InputError(f"n_harmonics: must be an integer >= 1, got {n_harmonics!r}")
        self.period, self.period_steps = period_in_f0(ratios)
        count = topology.operator_count
        if self.period_steps.shape[0] != count:
            raise InputError(f"ratios: need one per operator ({count}), got {self.period_steps.shape[0]}")
        if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 4 \
                or n_points & (n_points - 1) or n_harmonics * self.period >= n_points // 2:
            raise InputError(f"n_points: must be a power of two above 2·H·D = {2 * n_harmonics * self.period}, "
                             f"got {n_points!r}")
        if feedback_operator is None:
            feedback_operator = _default_feedback_operator(topology)
        elif feedback_operator not in topology.feedback_operators:
            raise InputError(f"feedback_operator: operator {feedback_operator!r} may not feed back in this topology")
        self.topology = topology
        self.n_harmonics = int(n_harmonics)
        self.n_points = int(n_points)
        self.feedback_operator = feedback_operator
        self.order = np.array(topology.order, dtype=np.int64)
        self.modulator_counts = np.array([len(sources) for sources in topology.modulators], dtype=np.int64)
        self.modulator_table = np.zeros((count, max(1, int(self.modulator_counts.max()))), dtype=np.int64)
        for k, sources in enumerate(topology.modulators):
            self.modulator_table[k, :len(sources)] = sources
        self.source_scales = np.array([_source_scale(topology, k) for k in range(count)])
        self.is_carrier = np.array(topology.carriers, dtype=np.bool_)
        self.depends = _dependencies(topology, feedback_operator)
        # the bins h·D as 2/N-scaled cosine and sine columns: one matrix product gives [Re X | Im X]
        points = np.arange(self.n_points)[:, None]
        bins = self.period * np.arange(1, self.n_harmonics + 1)[None, :]
        angle = TWO_PI * ((points * bins) % self.n_points) / self.n_points
        self.bin_columns = np.concatenate([np.cos(angle), np.sin(angle)], axis=1) * (2.0 / self.n_points)
        rows = count + 2
        self.chunk_frames = max(1, CHUNK_VALUES // (rows * self.n_points))
        self.signals = np.empty((self.chunk_frames, rows, self.n_points))
        self.bins = np.empty((self.chunk_frames, rows, 2 * self.n_harmonics))
        self.units = np.zeros((count, self.n_points))
        self.unit_derivatives = np.zeros((count, count + 1, self.n_points))  # rows never written stay 0
        self.angles = np.empty(self.n_points)
        self.gains = np.empty(self.n_points)

    def __call__(self, levels, feedback=0.0) -> tuple[np.ndarray, np.ndarray]:
        count = self.topology.operator_count
        levels = _validated_levels(levels, count)
        frames = levels.shape[0]
        feedback = np.ascontiguousarray(np.broadcast_to(np.asarray(feedback, dtype=np.float64), (frames,)))
        if not np.all(np.isfinite(feedback)) or np.any(feedback < 0):
            raise InputError("feedback: must be finite and >= 0 (radians)")
        if self.feedback_operator is None and np.any(feedback != 0):
            raise InputError("feedback: this topology has no single feedback operator; pass feedback_operator")
        parameters = np.concatenate([levels, feedback[:, None]], axis=1)
        # the DFT's rounding error is about ε·√N times the output's peak, which is at most Σ carrier levels
        zero_floors = ZERO_FLOOR * levels[:, self.is_carrier].sum(axis=1)
        magnitudes = np.empty((frames, self.n_harmonics))
        derivatives = np.empty((frames, self.n_harmonics, count + 1))
        for start in range(0, frames, self.chunk_frames):
            stop = min(frames, start + self.chunk_frames)
            size = stop - start
            signals, bins = self.signals[:size], self.bins[:size]
            graph_signals_into(levels[start:stop], feedback[start:stop], self.period_steps, self.order,
                               self.modulator_counts, self.modulator_table, self.source_scales, self.is_carrier,
                               -1 if self.feedback_operator is None else self.feedback_operator, self.depends,
                               signals, self.units, self.unit_derivatives, self.angles, self.gains)
            np.matmul(signals.reshape(-1, self.n_points), self.bin_columns, out=bins.reshape(-1, bins.shape[2]))
            magnitudes_from_bins_into(bins, parameters[start:stop], zero_floors[start:stop], magnitudes[start:stop], derivatives[start:stop])
        return magnitudes, derivatives


def graph_spectrum(topology: Topology, ratios, levels, feedback=0.0, n_harmonics: int = 40,
                   n_points: int | None = None, feedback_operator: int | None = None):
    """One-shot ``GraphSpectrum``: levels (K,) or (T, K); N from ``points_per_period`` unless given.

    Returns (magnitudes, derivatives) of shape (H,), (H, K + 1) or (T, H), (T, H, K + 1).
    """
    frames = np.asarray(levels, dtype=np.float64)
    if n_points is None:
        n_points = points_per_period(topology, ratios, frames, feedback, n_harmonics, feedback_operator)
    spectrum = GraphSpectrum(topology, ratios, n_harmonics, n_points, feedback_operator)
    magnitudes, derivatives = spectrum(np.atleast_2d(frames), feedback)
    if frames.ndim == 1:
        return magnitudes[0], derivatives[0]
    return magnitudes, derivatives
