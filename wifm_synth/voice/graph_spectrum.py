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
``voice.spectrum.magnitude_and_derivative`` does; "exactly 0" means below ZERO_FLOOR times the
frame's Σ carrier levels, the FFT's rounding level (a genuine harmonic that small, such as J_5(0.01),
gets slope 0 instead of its ~1e-11). One batched real FFT covers every frame's output
and derivative signals (a product with the cosine/sine columns of the H bins costs more, and BLAS
threads contend with the fitter's own; tools/bench_graph_spectrum.py).

Points per period. Aliasing folds content at bin b > N/2 onto N − b, so N must leave every line of
non-negligible size below N − H·D. A Carson-type bound in bins of the period: the peak instantaneous
frequency F_k = r_k D + Σ_m s_m L_m F_m and the extent E_k = F_k + Σ_m E_m (for one pair this is
Carson's c + (β + 1) m); a feedback operator's own extent is r D times the number of its Kapteyn
harmonics above 1e-9 (below). N is the power of two ≥ 2 (E + G) + 2 H D over the carriers, with
G the guard orders for the tail past Carson's bound (see ``points_per_period``). Measured against
an N four times larger on 300 random 6-operator voices (ratios ≤ 8, indices ≤ 10, β ≤ 0.8, H = 40)
the alias error of the reported magnitudes is ≤ 3e-15 of the largest in 99% of them; the worst,
three nested indices near 10 under a feedback operator, reaches 2e-5. ``n_points`` overrides N.

Feedback (one operator: the topology's, or ``feedback_operator``; explicit routings where several
operators feed back at once are not covered). The engine adds β·(y[n−1] + y[n−2])/2
to that operator's phase: a lag of one and two audio samples, which a sampled period knows nothing of
unless it is told the sample rate. Two models, both solved for the periodic steady state:

- Instantaneous fixed point (default): y = sin(a + β y), solved per point by Newton steps started
  from the previous point, dy = cos(a + β y) (da + y dβ) / (1 − β cos(a + β y)) by implicit
  differentiation. For a lone operator this is Kepler's equation, y = Σ_n 2 J_n(nβ)/(nβ) sin(nθ),
  whose harmonics fall like q^n, q = β e^√(1−β²) / (1 + √(1−β²)) < 1 for β < 1. It leaves out the
  engine's 1.5-sample lag, which changes a feedback operator's n-th harmonic at frequency f by
  roughly β·2π·n·f·1.5/fs relative. Measured against an FFT of the engine's render on all 32 DX7
  algorithms (ratios ≤ 4, indices ≤ 2.5, H = 40, fs = 48 kHz, f0 = 93.75 Hz): worst harmonic error
  −31 dB of the largest harmonic, median −81 dB, for β ≤ 0.5; it grows about 6 dB per octave of f0
  (−23 dB worst at 187.5 Hz with β ≤ 0.8).
- Engine lag (``audio_samples_per_period`` = fs/f0 given): y_j = sin(a_j + β (y(t_j − 1/fs) +
  y(t_j − 2/fs))/2), the delay-differential equation whose samples at the audio rate are exactly the
  engine's recursion. The delayed values are read by 4-point Lagrange interpolation on the period's
  grid (``feedback_lag_taps``); the part that falls on the current point is solved implicitly by the
  same Newton step, the rest by Gauss–Seidel sweeps around the period (as the engine's recursion
  runs in time) until no point moves by 1e-15, and the derivatives by the same sweeps of their linear
  recurrence. Same measurement, β ≤ 0.9: worst −145 dB, median −157 dB, as close as without
  feedback (−148 dB, the engine's fast sine). At higher f0 the engine's own aliasing (its 48 kHz
  sampling of lines above fs/2) dominates either way: −65 dB at f0 = 375 Hz even without feedback.

For β ≥ 1 the fixed point has several branches: the instantaneous model sweeps the period twice and
keeps the branch it lands on, and Newton only settles where 1 − β cos > 0 (where the engine's
recursion is stable), so the waveform jumps where a branch ends, its spectrum falls only like 1/n
(the count of feedback harmonics in N is then capped) and the derivatives ignore the jump positions.
With the lag, sweeps stop after MAX_SWEEPS if the recursion does not settle (large β, high f0).
"""

from __future__ import annotations

import math

import numpy as np

from wifm_synth.errors import InputError
from wifm_synth.voice.graph_kernels import (
    TWO_PI,
    graph_signals_into,
    magnitudes_from_spectra_into,
)
from wifm_synth.voice.topology import Topology

KAPTEYN_FLOOR = 1e-9  # a feedback operator's harmonics below this are treated as absent
MAX_FEEDBACK_HARMONICS = 512  # β ≥ 1: its spectrum falls only like 1/n, so the count is capped
MAX_POINTS_PER_PERIOD = 1 << 16
ZERO_FLOOR = 1e-13  # magnitudes below this times the output's peak bound are exact zeros plus rounding
RFFT_WRITES_INTO = int(np.__version__.split(".")[0]) >= 2  # numpy 1.26 (still supported) has no out=
CHUNK_VALUES = 1 << 20  # signals of this many floats per chunk of frames (8 MB) are reused per call


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


def feedback_lag_taps(n_points: int, period: int, audio_samples_per_period: float | None,
                      cubic: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Taps and weights for the engine's fed-back value (y[n−1] + y[n−2])/2 on a grid of N points.

    One audio sample is s = N / (D·P) points (P = audio samples per period of f0), so the two delays
    are s and 2s points, each read by Lagrange interpolation through the 4 points around it (2 with
    ``cubic`` False) — a tap of −1 reads the next point, which the sweeps make consistent. Without a
    sample rate the value is the current point: the instantaneous fixed point.
    """
    if audio_samples_per_period is None:
        return np.zeros(1, dtype=np.int64), np.ones(1)
    if isinstance(audio_samples_per_period, bool) or not np.isfinite(audio_samples_per_period) \
            or audio_samples_per_period < 2.0:
        raise InputError(f"audio_samples_per_period: must be a number >= 2, got {audio_samples_per_period!r}")
    points_per_sample = n_points / (period * float(audio_samples_per_period))
    weights: dict[int, float] = {}
    for delay in (points_per_sample, 2.0 * points_per_sample):
        whole = math.floor(delay)
        x = delay - whole
        if cubic:
            nodes = {-1: -x * (x - 1) * (x - 2) / 6, 0: (x + 1) * (x - 1) * (x - 2) / 2,
                     1: -(x + 1) * x * (x - 2) / 2, 2: (x + 1) * x * (x - 1) / 6}
        else:
            nodes = {0: 1.0 - x, 1: x}
        for offset, weight in nodes.items():
            weights[whole + offset] = weights.get(whole + offset, 0.0) + 0.5 * weight
    taps = np.array(sorted(weights), dtype=np.int64)
    return taps, np.array([weights[tap] for tap in taps])


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
    ``n_points`` is N (``points_per_period`` chooses one); ``feedback_operator`` defaults to the
    topology's only feedback operator; ``audio_samples_per_period`` (fs/f0) switches the feedback to
    the engine-lag model (module docstring). An instance reuses its buffers on every call, so give
    each thread its own (the kernels release the GIL).
    """

    def __init__(self, topology: Topology, ratios, n_harmonics: int, n_points: int,
                 feedback_operator: int | None = None, audio_samples_per_period: float | None = None):
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
        self.lag_taps, self.lag_weights = feedback_lag_taps(self.n_points, self.period, audio_samples_per_period)
        rows = count + 2
        self.chunk_frames = max(1, CHUNK_VALUES // (rows * self.n_points))
        self.signals = np.empty((self.chunk_frames, rows, self.n_points))
        self.spectra = np.empty((self.chunk_frames, rows, self.n_points // 2 + 1), dtype=np.complex128)
        self.units = np.zeros((count, self.n_points))
        self.unit_derivatives = np.zeros((count, count + 1, self.n_points))  # rows never written stay 0
        self.angles = np.empty(self.n_points)
        self.gains = np.empty(self.n_points)
        self.angle_derivatives = np.empty(self.n_points)
        self.own_phases = np.empty((count, self.n_points))

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
            signals, spectra = self.signals[:size], self.spectra[:size]
            graph_signals_into(levels[start:stop], feedback[start:stop], self.period_steps, self.order,
                               self.modulator_counts, self.modulator_table, self.source_scales, self.is_carrier,
                               -1 if self.feedback_operator is None else self.feedback_operator, self.lag_taps,
                               self.lag_weights, self.depends, signals, self.units, self.unit_derivatives,
                               self.angles, self.gains, self.angle_derivatives, self.own_phases)
            if RFFT_WRITES_INTO:
                np.fft.rfft(signals, axis=-1, out=spectra)
            else:
                spectra[...] = np.fft.rfft(signals, axis=-1)
            magnitudes_from_spectra_into(spectra, self.period, parameters[start:stop], zero_floors[start:stop],
                                         magnitudes[start:stop], derivatives[start:stop])
        return magnitudes, derivatives


def graph_spectrum(topology: Topology, ratios, levels, feedback=0.0, n_harmonics: int = 40,
                   n_points: int | None = None, feedback_operator: int | None = None,
                   audio_samples_per_period: float | None = None):
    """One-shot ``GraphSpectrum``: levels (K,) or (T, K); N from ``points_per_period`` unless given.

    Returns (magnitudes, derivatives) of shape (H,), (H, K + 1) or (T, H), (T, H, K + 1).
    """
    frames = np.asarray(levels, dtype=np.float64)
    if n_points is None:
        n_points = points_per_period(topology, ratios, frames, feedback, n_harmonics, feedback_operator)
    spectrum = GraphSpectrum(topology, ratios, n_harmonics, n_points, feedback_operator, audio_samples_per_period)
    magnitudes, derivatives = spectrum(np.atleast_2d(frames), feedback)
    if frames.ndim == 1:
        return magnitudes[0], derivatives[0]
    return magnitudes, derivatives
