"""Envelope fitting: level trajectories (dB) → multi-segment envelopes of docs/FORMATS.md.

The envelope shape is a linear-amplitude attack from silence followed by dB-linear segments whose
last level is held. Breakpoints are chosen by dynamic programming over frame indices (O(K·N²) with
prefix sums) with knot levels taken from a lightly smoothed trajectory; the knot levels for the
chosen breakpoints are then solved exactly by weighted least squares (the model is linear in them).
The number of segments is picked by a BIC-style criterion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from wifm_synth.errors import InputError
from wifm_synth.voice.envelope import envelope_levels_db
from wifm_synth.voice.schema import SCHEMA

MAX_SEGMENTS = int(SCHEMA["envelope.segments"].high)
LONGEST_SEGMENT_S = SCHEMA["segment.duration_s"].high
# Fit errors below this are treated as noise when choosing the number of segments, so an exactly
# piecewise-linear trajectory does not reward ever more segments through log(0).
RESIDUAL_FLOOR_DB = 0.25
MIN_ATTACK_S = 0.001
DEFAULT_RELEASE_S = SCHEMA["envelope.release_s"].default
# Fitted releases are no shorter than 5 ms (a faster cut-off clicks, however fast the recording's fall)
# and no longer than the format allows.
RELEASE_RANGE_S = (0.005, SCHEMA["envelope.release_s"].high)
# A final segment at least DECAY_MIN_SPAN_S long falling faster than this is a decay the recording
# cut short: it is extended to DECAY_TARGET_DB instead of holding its last level as a sustain.
DECAY_EXTEND_DB_PER_S = -3.0
DECAY_MIN_SPAN_S = 0.2
DECAY_TARGET_DB = -90.0


@dataclass(frozen=True)
class EnvelopeFit:
    """A fitted envelope: ``segments`` as in the patch format, plus the fit diagnostics."""

    segments: list[tuple[float, float]]
    knot_times: np.ndarray
    knot_levels_db: np.ndarray
    rms_error_db: float


@njit(cache=True)
def _prefix_sums(times, levels, weights):
    """Cumulative Σw, Σwt, Σwt², Σwy, Σwy², Σwty with a leading zero row: sums over [i, j) in O(1)."""
    n = times.shape[0]
    sums = np.zeros((n + 1, 6))
    for index in range(n):
        t = times[index]
        y = levels[index]
        w = weights[index]
        sums[index + 1, 0] = sums[index, 0] + w
        sums[index + 1, 1] = sums[index, 1] + w * t
        sums[index + 1, 2] = sums[index, 2] + w * t * t
        sums[index + 1, 3] = sums[index, 3] + w * y
        sums[index + 1, 4] = sums[index, 4] + w * y * y
        sums[index + 1, 5] = sums[index, 5] + w * t * y
    return sums


@njit(cache=True)
def _line_cost(sums, times, knots, start, end):
    """Weighted squared error over frames (start, end] of the line from knot ``start`` to knot ``end``."""
    t0 = times[start]
    v0 = knots[start]
    slope = (knots[end] - v0) / (times[end] - t0)
    lo = start + 1
    hi = end + 1
    sw = sums[hi, 0] - sums[lo, 0]
    swt = sums[hi, 1] - sums[lo, 1]
    swtt = sums[hi, 2] - sums[lo, 2]
    swy = sums[hi, 3] - sums[lo, 3]
    swyy = sums[hi, 4] - sums[lo, 4]
    swty = sums[hi, 5] - sums[lo, 5]
    # Residual y - v0 - slope·u with u = t - t0, expanded into the prefix sums.
    swu = swt - t0 * sw
    swuu = swtt - 2.0 * t0 * swt + t0 * t0 * sw
    swyu = swty - t0 * swy
    return (swyy - 2.0 * v0 * swy - 2.0 * slope * swyu
            + v0 * v0 * sw + 2.0 * v0 * slope * swu + slope * slope * swuu)


@njit(cache=True)
def _attack_costs(times, levels, weights, knots):
    """Cost of a linear-amplitude attack ending at each frame j with level knots[j], over frames [0, j].

    In dB the attack is knots[j] + 20·log10(t / t_j): a constant plus a fixed curve, so with
    z = y − 20·log10(t) each cost is a weighted variance-like sum from prefix sums.
    """
    n = times.shape[0]
    costs = np.empty(n)
    sw = 0.0
    swz = 0.0
    swzz = 0.0
    for j in range(n):
        z = levels[j] - 20.0 * math.log10(times[j])
        w = weights[j]
        sw += w
        swz += w * z
        swzz += w * z * z
        offset = knots[j] - 20.0 * math.log10(times[j])
        costs[j] = swzz - 2.0 * offset * swz + offset * offset * sw
    return costs


@njit(cache=True)
def _segment_dp(times, levels, weights, knots, max_segments):
    """Best breakpoints for 1..max_segments segments ending at the last frame.

    Returns (cost[k-1] for k segments, back-pointer table): segment 1 is the attack from t=0 to a
    knot, every later segment a straight dB line between knots. O(K·N²).
    """
    n = times.shape[0]
    sums = _prefix_sums(times, levels, weights)
    best = np.full((max_segments, n), np.inf)
    previous = np.full((max_segments, n), -1, dtype=np.int64)
    best[0, :] = _attack_costs(times, levels, weights, knots)
    for k in range(1, max_segments):
        for end in range(k, n):
            for start in range(k - 1, end):
                if best[k - 1, start] == np.inf:
                    continue
                cost = best[k - 1, start] + _line_cost(sums, times, knots, start, end)
                if cost < best[k, end]:
                    best[k, end] = cost
                    previous[k, end] = start
    return best[:, n - 1].copy(), previous


def _breakpoints(previous: np.ndarray, segments: int, last: int) -> list[int]:
    knots = [last]
    for k in range(segments - 1, 0, -1):
        knots.append(int(previous[k, knots[-1]]))
    return knots[::-1]


def _solve_knot_levels(times, levels, weights, breakpoints) -> np.ndarray:
    """Exact weighted least-squares knot levels for fixed breakpoints (the model is linear in them)."""
    design = np.zeros((times.size, len(breakpoints)))
    first = breakpoints[0]
    design[: first + 1, 0] = 1.0
    offsets = np.zeros(times.size)
    offsets[: first + 1] = 20.0 * np.log10(times[: first + 1] / times[first])
    for column, (start, end) in enumerate(zip(breakpoints[:-1], breakpoints[1:])):
        frames = np.arange(start + 1, end + 1)
        fraction = (times[frames] - times[start]) / (times[end] - times[start])
        design[frames, column] = 1.0 - fraction
        design[frames, column + 1] = fraction
    root_w = np.sqrt(weights)
    solution, *_ = np.linalg.lstsq(design * root_w[:, None], (levels - offsets) * root_w, rcond=None)
    return solution


def _smooth(levels: np.ndarray) -> np.ndarray:
    """Three-point moving average (edges kept): knot levels less sensitive to single-frame noise."""
    if levels.size < 3:
        return levels.copy()
    smoothed = levels.copy()
    smoothed[1:-1] = (levels[:-2] + levels[1:-1] + levels[2:]) / 3.0
    return smoothed


def fit_envelope(times, levels_db, weights=None, *, max_segments: int = MAX_SEGMENTS,
                 fixed_segments: int | None = None, extend_decay: bool = True) -> EnvelopeFit:
    """Fit an envelope to a level trajectory.

    ``times``: frame times in seconds since note-on (increasing, > 0); ``levels_db``: levels in dB
    relative to the envelope's 0 dB (the operator level); ``weights``: optional non-negative frame
    weights. ``fixed_segments`` forces the segment count, otherwise it is chosen by a penalised
    (BIC-style) criterion up to ``max_segments``. With ``extend_decay`` a final segment (≥ 0.2 s) that
    falls faster than 3 dB/s is continued to −90 dB rather than held.
    """
    times = np.asarray(times, dtype=np.float64)
    levels = np.asarray(levels_db, dtype=np.float64)
    weights = np.ones_like(times) if weights is None else np.asarray(weights, dtype=np.float64)
    if times.ndim != 1 or times.size < 2 or levels.shape != times.shape or weights.shape != times.shape:
        raise InputError("envelope fit needs matching 1-D times, levels and weights with at least 2 frames")
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(levels)) and np.all(np.isfinite(weights))):
        raise InputError("envelope fit: times, levels and weights must be finite")
    if times[0] <= 0.0 or np.any(np.diff(times) <= 0.0):
        raise InputError("envelope fit: times must be positive and strictly increasing")
    if np.any(weights < 0.0) or weights.sum() <= 0.0:
        raise InputError("envelope fit: weights must be non-negative and not all zero")
    limit = fixed_segments if fixed_segments is not None else max_segments
    if not 1 <= limit <= MAX_SEGMENTS:
        raise InputError(f"envelope fit: segment count must be 1..{MAX_SEGMENTS}, got {limit}")
    limit = min(limit, times.size)

    knots = _smooth(levels)
    _, previous = _segment_dp(times, levels, weights, knots, limit)
    counts = [limit] if fixed_segments is not None else range(1, limit + 1)
    effective_n = float(np.count_nonzero(weights))
    best = None
    for count in counts:
        breakpoints = _breakpoints(previous, count, times.size - 1)
        knot_levels = _solve_knot_levels(times, levels, weights, breakpoints)
        knot_times = times[breakpoints]
        mean_square = np.sum(weights * (envelope_levels_db(times, knot_times, knot_levels) - levels) ** 2) / weights.sum()
        criterion = effective_n * math.log(mean_square + RESIDUAL_FLOOR_DB**2) + 2 * count * math.log(effective_n)
        if best is None or criterion < best[0]:
            best = (criterion, knot_times, knot_levels, math.sqrt(mean_square))
    _, knot_times, knot_levels, rms = best
    return EnvelopeFit(
        segments=_segments_from_knots(knot_times, knot_levels, extend_decay),
        knot_times=knot_times,
        knot_levels_db=knot_levels,
        rms_error_db=rms,
    )


def _segments_from_knots(knot_times, knot_levels, extend_decay) -> list[tuple[float, float]]:
    levels = SCHEMA["segment.end_level_db"].clip(knot_levels)
    durations = np.diff(np.concatenate([[0.0], knot_times]))
    durations[0] = max(durations[0], MIN_ATTACK_S)
    segments = [(float(d), float(v)) for d, v in zip(durations, levels)]
    if extend_decay and len(segments) > 1:
        duration, level = segments[-1]
        slope = (level - segments[-2][1]) / duration
        if slope < DECAY_EXTEND_DB_PER_S and duration >= DECAY_MIN_SPAN_S and level > DECAY_TARGET_DB:
            extended = min(duration + (DECAY_TARGET_DB - level) / slope, LONGEST_SEGMENT_S)
            segments[-1] = (extended, float(level + slope * (extended - duration)))
    return _within_segment_limit(segments)


def _within_segment_limit(segments: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Split dB-linear segments longer than the format's limit into equal pieces while the count stays
    within MAX_SEGMENTS; what cannot be split (and the linear-amplitude attack) reaches its level at the
    limit instead, which only shortens a slow slope: the last level is held anyway."""
    longest = LONGEST_SEGMENT_S
    spare = MAX_SEGMENTS - len(segments)
    result = [(min(segments[0][0], longest), segments[0][1])]
    for (duration, level), (_, previous_level) in zip(segments[1:], segments[:-1]):
        pieces = min(math.ceil(duration / longest), 1 + spare)
        spare -= pieces - 1
        piece = min(duration / pieces, longest)
        result += [(piece, float(previous_level + (level - previous_level) * step / pieces))
                   for step in range(1, pieces + 1)]
    return result


def fit_release_seconds(times, levels_db, release_start_s: float | None, *, span_db: float = 40.0,
                        floor_db: float = -80.0) -> float:
    """Release time (seconds per 60 dB) from the decay slope after ``release_start_s``.

    The slope is a least-squares line over the frames from the release start until the level has
    fallen ``span_db`` below its start or reaches ``floor_db``; without a release (None, too few
    frames, or no fall) the default is returned.
    """
    if release_start_s is None:
        return DEFAULT_RELEASE_S
    times = np.asarray(times, dtype=np.float64)
    levels = np.asarray(levels_db, dtype=np.float64)
    after = np.flatnonzero(times >= release_start_s)
    if after.size < 3:
        return DEFAULT_RELEASE_S
    start_level = levels[after[0]]
    below = np.flatnonzero((levels[after] < start_level - span_db) | (levels[after] < floor_db))
    stop = after[below[0]] if below.size else after[-1]
    frames = np.arange(after[0], stop + 1)
    if frames.size < 3:
        frames = after[:3]
    slope = np.polyfit(times[frames], levels[frames], 1)[0]
    if slope >= 0.0:
        return DEFAULT_RELEASE_S
    return float(np.clip(60.0 / -slope, *RELEASE_RANGE_S))
