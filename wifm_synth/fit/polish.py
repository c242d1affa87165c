"""Polish a multi-operator patch against the engine's render: a derivative-free search over its levels.

The structure search and refinement minimise W1 on linear harmonic amplitudes, which hardly sees partials
40–80 dB below the peak; the quality the fitter is judged by (``fit.verify``) is a log-spectral distance,
which weighs them like the loud ones. The polish closes part of that gap on the chosen patch only: it
renders the patch with the engine and lowers a quantity close to the evaluation metric, by design: the
verification's log-spectral distance (``LogSpectrogramTarget``, on one FFT size so that an evaluation is
cheap) plus the error of the RMS level per frame in dB (which keeps the loudness honest), moving

- each heard operator's level (a carrier's amplitude, a modulator's index) by ± dB, and
- each envelope segment's end level by ± dB (early segments first: the attack is where most is left),

by coordinate search (a move that helps goes on in doubling steps while it helps; the steps halve after a
sweep that found nothing), within a fixed number of renders (``POLISH_EVALUATIONS``).
Everything stays in the schema's ranges and the fitter's index bound. It sees only the one target note,
as the rest of the fitter does. ``polished_if_closer`` keeps the unpolished patch unless the full
verification distance puts the polished one closer (and its envelope error is at most ENVELOPE_TOLERANCE_DB worse).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wifm_synth.analysis import SampleAnalysis
from wifm_synth.analysis.metrics import (
    LogSpectrogramTarget,
    envelope_error_db,
    level_error_db,
)
from wifm_synth.fit.ratio_search import MAX_INDEX
from wifm_synth.fit.verify import (
    SAMPLE_RATE,
    analyze_render,
    reference_render,
    rendered_distance_db,
)
from wifm_synth.voice.patch import Patch
from wifm_synth.voice.schema import SCHEMA

# Renders per polish: ≈ 12 ms per render and distance of a 3 s note, 1–2 s per polish, 10–25 % of a
# 6-operator fit on one core (dev notes; the budget was 50 %). More renders helped little once moves double
# their steps (docs/RESULTS.md).
POLISH_EVALUATIONS = 100
# The polish's distance: the middle one of the verification's five FFT sizes, a sixth of the cost; on
# the dev notes it lowered the full distance as much as all five did (docs/RESULTS.md).
POLISH_FFT_SIZES = (1024,)
# Only the first seconds of a long note are rendered while polishing (a render per evaluation).
POLISH_MAX_S = 4.0
LEVEL_STEP_DB = 3.0  # first step of an operator's level
SEGMENT_STEP_DB = 6.0  # first step of a segment's end level
MIN_STEP_FRACTION = 1.0 / 16.0  # the search stops when the steps have halved to this
# The polish's loudness term: the RMS level per frame of this many samples, as the envelope error compares it.
LEVEL_FRAME = 1024
# A polished patch is kept only if its envelope error (fit.verify's) grows by at most this.
ENVELOPE_TOLERANCE_DB = 0.25
IMPROVEMENT_DB = 1e-4  # a move must lower the distance by more than this to be taken

_LEVEL = SCHEMA["operator.level"]
_SEGMENT_LEVEL = SCHEMA["segment.end_level_db"]


@dataclasses.dataclass(frozen=True)
class Coordinate:
    operator: int
    segment: int | None  # None: the operator's level
    step_db: float  # the first step


def coordinates(patch: Patch) -> list[Coordinate]:
    """What the polish moves: every heard operator's level, then every segment's end level, earliest first."""
    heard = [index for index, operator in enumerate(patch.operators) if operator.level > 0.0]
    levels = [Coordinate(index, None, LEVEL_STEP_DB) for index in heard]
    segments = []
    for index in heard:
        start = 0.0
        for number, (duration_s, _) in enumerate(patch.operators[index].envelope.segments):
            segments.append((start, index, number))
            start += duration_s
    return levels + [Coordinate(index, number, SEGMENT_STEP_DB) for _, index, number in sorted(segments)]


def moved(patch: Patch, axes: list[Coordinate], offsets_db: np.ndarray) -> Patch:
    """``patch`` with each coordinate moved by its offset (dB), clipped to the schema's ranges."""
    operators = list(patch.operators)
    for axis, offset in zip(axes, offsets_db):
        if offset == 0.0:
            continue
        operator = operators[axis.operator]
        if axis.segment is None:
            high = _LEVEL.high if operator.carrier else MAX_INDEX
            level = float(np.clip(_LEVEL.clip(operator.level * 10.0 ** (offset / 20.0)), 0.0, high))
            operators[axis.operator] = dataclasses.replace(operator, level=level)
        else:
            segments = list(operator.envelope.segments)
            duration_s, level_db = segments[axis.segment]
            segments[axis.segment] = (duration_s, float(_SEGMENT_LEVEL.clip(level_db + offset)))
            operators[axis.operator] = dataclasses.replace(
                operator, envelope=dataclasses.replace(operator.envelope, segments=segments))
    return dataclasses.replace(patch, operators=operators, metadata=dict(patch.metadata))


def polish(patch: Patch, target: SampleAnalysis, evaluations: int = POLISH_EVALUATIONS) -> tuple[Patch, int]:
    """The patch after coordinate search on its levels, and the renders it took. ``target`` is analysed at
    the verification's SAMPLE_RATE; the patch plays at its reference key and velocity."""
    start = target.onset_index
    length = min(len(target.audio) - start, int(POLISH_MAX_S * SAMPLE_RATE))
    spectrogram = LogSpectrogramTarget(target.audio[start:start + length], SAMPLE_RATE, fft_sizes=POLISH_FFT_SIZES)

    target_levels = _frame_levels(target.audio[start:start + length])

    def distance(candidate: Patch) -> float:
        audio = reference_render(candidate, target, max_seconds=POLISH_MAX_S)
        # the log-spectral distance alone can be lowered by a louder render whose sidebands fill the noise
        # between a bowed or blown note's harmonics (violin 79: +10 dB); the level error keeps the loudness
        return spectrogram.distance_db(audio) + level_error_db(target_levels, _frame_levels(audio))

    axes = coordinates(patch)
    offsets = np.zeros(len(axes))
    directions = np.ones(len(axes))  # the sign that last helped is tried first
    best, used, scale = distance(patch), 1, 1.0
    while used < evaluations and scale >= MIN_STEP_FRACTION:
        improved = False
        for index, axis in enumerate(axes):
            for sign in (directions[index], -directions[index]):
                if used >= evaluations:
                    break
                trial = offsets.copy()
                trial[index] += sign * axis.step_db * scale
                value = distance(moved(patch, axes, trial))
                used += 1
                if value < best - IMPROVEMENT_DB:
                    offsets, best, directions[index], improved = trial, value, sign, True
                    # a coordinate far from its best (an attack 20 dB off) goes on in doubling steps, not one
                    # step per sweep
                    step = 2.0 * sign * axis.step_db * scale
                    while used < evaluations:
                        trial = offsets.copy()
                        trial[index] += step
                        value = distance(moved(patch, axes, trial))
                        used += 1
                        if not value < best - IMPROVEMENT_DB:
                            break
                        offsets, best, step = trial, value, 2.0 * step
                    break
        if not improved:
            scale /= 2.0
    return moved(patch, axes, offsets), used


def _frame_levels(audio: np.ndarray) -> np.ndarray:
    """RMS per LEVEL_FRAME samples, as a (frames, 1) column; a note shorter than a frame is one zero-padded frame."""
    frames = max(1, audio.size // LEVEL_FRAME)
    whole = np.pad(audio, (0, max(0, frames * LEVEL_FRAME - audio.size)))[:frames * LEVEL_FRAME]
    return np.sqrt(np.mean(whole.reshape(frames, LEVEL_FRAME) ** 2, axis=1))[:, None]


def _envelope_error_db(rendered_audio: np.ndarray, patch: Patch, target: SampleAnalysis) -> float:
    rendered = analyze_render(rendered_audio, patch.pitch.reference_note)
    return np.inf if rendered is None else envelope_error_db(target, rendered)


def polished_if_closer(patch: Patch, target: SampleAnalysis, distance_db: float,
                       evaluations: int = POLISH_EVALUATIONS) -> tuple[Patch, dict]:
    """The polished patch if the verification's distance (``render_distance_db``) puts it closer to the target
    than ``distance_db`` (the patch's own) and its envelope error is no more than ENVELOPE_TOLERANCE_DB worse,
    else ``patch`` unchanged; and what happened, for its metadata."""
    polished, renders = polish(patch, target, evaluations)
    polished_audio = reference_render(polished, target)  # one render for both checks
    polished_distance = rendered_distance_db(polished_audio, target)
    kept = (polished_distance < distance_db
            and _envelope_error_db(polished_audio, polished, target)
            <= _envelope_error_db(reference_render(patch, target), patch, target) + ENVELOPE_TOLERANCE_DB)
    return (polished if kept else patch), {"render_distance_db": round(polished_distance, 3), "renders": renders,
                                           "kept": kept}
