"""Amplitude envelope: onset, per-frame RMS and the start of the release."""

from __future__ import annotations

import numpy as np

# Levels are clamped this far below the loudest frame so silence and dither never reach log(0).
LEVEL_FLOOR_DB = -120.0
ONSET_THRESHOLD_DB = -40.0
ONSET_BLOCK_S = 0.001
ONSET_MAX_BACKTRACK_S = 0.05
KNEE_DEVIATION_DB = 2.0
ONSET_BACKGROUND_MARGIN_DB = 6.0


def level_db(values: np.ndarray, reference: float) -> np.ndarray:
    """20·log10(values / reference), clamped to LEVEL_FLOOR_DB (finite for zeros and a zero reference)."""
    floor = 10.0 ** (LEVEL_FLOOR_DB / 20.0)
    reference = max(float(reference), np.finfo(float).tiny)
    return 20.0 * np.log10(np.maximum(np.asarray(values, dtype=np.float64) / reference, floor))


def detect_onset(audio: np.ndarray, rate: int) -> int:
    """Sample index where the note starts.

    The first 1 ms block within 40 dB of the loudest block marks the note; we then walk back while
    the energy keeps falling and is still above the background level before the note, so slow
    attacks (flute, bowed strings) start at their first sound and background noise is not followed.
    """
    block = max(1, round(rate * ONSET_BLOCK_S))
    n_blocks = audio.size // block
    if n_blocks < 2:
        return 0
    energy = np.sqrt(np.square(audio[: n_blocks * block]).reshape(n_blocks, block).mean(axis=1))
    energy_db = level_db(energy, energy.max())
    first_loud = int(np.argmax(energy_db >= ONSET_THRESHOLD_DB))
    earliest = max(0, first_loud - round(ONSET_MAX_BACKTRACK_S / ONSET_BLOCK_S))
    background_db = np.median(energy_db[:first_loud]) if first_loud else LEVEL_FLOOR_DB
    start = first_loud
    while (
        start > earliest
        and energy_db[start - 1] < energy_db[start]
        and energy_db[start - 1] > background_db + ONSET_BACKGROUND_MARGIN_DB
    ):
        start -= 1
    return start * block


def frame_rms(audio: np.ndarray, centers: np.ndarray, half_width: int) -> np.ndarray:
    """RMS over ``[center - half_width, center + half_width)`` for each center (zero outside the audio)."""
    cumulative = np.concatenate(([0.0], np.cumsum(np.square(audio))))
    lo = np.clip(centers - half_width, 0, audio.size)
    hi = np.clip(centers + half_width, 0, audio.size)
    energy = np.maximum(cumulative[hi] - cumulative[lo], 0.0)  # cumsum round-off can dip below zero
    return np.sqrt(energy / (2 * half_width))


def detect_release(
    rms_env: np.ndarray,
    hop_s: float,
    *,
    before_s: float = 0.3,
    after_s: float = 0.12,
    min_steepening_db_per_s: float = 40.0,
    min_extra_drop_db: float = 6.0,
    floor_db: float = -60.0,
) -> float | None:
    """Time (s since onset) where the decay suddenly steepens (note-off), or None when there is no clear one.

    For each candidate frame, straight lines are fitted to the dB envelope over ``before_s`` before it
    and ``after_s`` after it. A candidate qualifies when the slope steepens by ``min_steepening_db_per_s``,
    the level ends ``min_extra_drop_db`` below the extrapolated earlier decay and never comes back up.
    The release is the knee of the earliest run of qualifying frames. Frames near the noise floor
    (``floor_db`` re peak) are not candidates: a decay that fades into silence is not a release.
    """
    levels = level_db(rms_env, rms_env.max() if rms_env.size else 0.0)
    n_before = max(3, round(before_s / hop_s))
    n_after = max(3, round(after_s / hop_s))
    if levels.size < n_before + n_after + 1:
        return None
    windows_before = np.lib.stride_tricks.sliding_window_view(levels, n_before)
    windows_after = np.lib.stride_tricks.sliding_window_view(levels, n_after + 1)
    candidates = np.arange(n_before, levels.size - n_after)
    slope_before = _line_slopes(windows_before[candidates - n_before], hop_s)
    slope_after = _line_slopes(windows_after[candidates], hop_s)
    steepening = slope_before - slope_after
    extrapolated_end = levels[candidates - 1] + slope_before * (n_after + 1) * hop_s
    extra_drop = extrapolated_end - levels[candidates + n_after]
    audible = windows_before[candidates - n_before].min(axis=1) > floor_db
    # A release never comes back up: tremolo and bowing swells do.
    later_max = np.maximum.accumulate(levels[::-1])[::-1][candidates + n_after]
    stays_down = later_max <= levels[candidates] - min_extra_drop_db
    valid = audible & stays_down & (steepening >= min_steepening_db_per_s) & (extra_drop >= min_extra_drop_db)
    if not np.any(valid):
        return None
    # The first run of qualifying frames is the note-off; later runs are the release fading into the
    # noise floor. Within the run, the knee is where the slope changes most.
    first = int(np.argmax(valid))
    run_end = first + int(np.argmin(valid[first:])) if not valid[first:].all() else valid.size
    best = first + int(np.argmax(steepening[first:run_end]))
    return round(_knee(levels, candidates[best], slope_before[best] * hop_s, n_before, n_after) * hop_s, 6)


def _knee(levels: np.ndarray, frame: int, slope_db_per_frame: float, n_before: int, n_after: int) -> int:
    """First frame near ``frame`` that falls KNEE_DEVIATION_DB below the line of the earlier decay.

    The frame of steepest slope change sits inside the line fits' windows, so on its own it can land
    several frames before or after the actual knee.
    """
    start = frame - n_after // 2
    span = np.arange(start, min(levels.size, frame + n_after + 1))
    fit = levels[frame - n_before : frame]
    times = np.arange(frame - n_before, frame)
    intercept = fit.mean() - slope_db_per_frame * times.mean()
    deviation = intercept + slope_db_per_frame * span - levels[span]
    below = np.flatnonzero(deviation > KNEE_DEVIATION_DB)
    return int(span[below[0]]) if below.size else frame


def _line_slopes(windows: np.ndarray, hop_s: float) -> np.ndarray:
    """Least-squares slope (per second) of each row of ``windows`` sampled every ``hop_s``."""
    x = np.arange(windows.shape[1]) * hop_s
    x = x - x.mean()
    return (windows - windows.mean(axis=1, keepdims=True)) @ x / np.dot(x, x)
