"""Polish a multi-operator patch against the engine's render: a derivative-free search over its envelopes.

The structure search and refinement minimise W1 on linear harmonic amplitudes, which hardly sees partials
40–80 dB below the peak; the quality the fitter is judged by (``fit.verify``) is a log-spectral distance,
which weighs them like the loud ones. The polish closes part of that gap: it renders the patch with the
engine and lowers a quantity close to the evaluation metric, by design: the verification's log-spectral
distance (``LogSpectrogramTarget``, on one FFT size so that an evaluation is cheap) plus the error of the
RMS level per frame in dB (which keeps the loudness honest), moving

- each heard operator's release time (× or ÷; after the note-off each partial fades at its own rate),
- each heard operator's level (a carrier's amplitude, a modulator's index) by ± dB,
- each envelope segment's end level by ± dB (early segments first: the attack is where most is left), and
- each envelope segment's duration (× or ÷, early segments first),

by coordinate search (a move that helps goes on in doubling steps while it helps; the steps halve after a
sweep that found nothing), within a fixed number of renders. Times and levels move on one scale: a time's
"dB" offset multiplies it by 10^(offset/20), so 6 dB doubles it.

The render check's two closest candidates are polished briefly (``polish_closest``) — a runner-up often
polishes to a closer patch than the first — and the closer of them gets the rest of the budget.

Stiff strings (piano) play their partials sharp, partial k at k·f0·sqrt(1 + B·k²) (B: the analysis's
``inharmonicity``), by more than a bin of the larger FFT sizes above the fifth partial, where integer ratios
put every line on a harmonic. Last, the polished patch's heard ratios are stretched by that law (ratio r →
r·sqrt(1 + b·r²) / sqrt(1 + b), so ratio 1 stays the fundamental) for b = STRETCH_SCALES × B, and the
closest render is kept if it is closer than the unstretched one. The law moves the operators' frequencies,
not each sideband's, so the best b is not B itself (dev pianos: 2 and 3 × B).
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
    render_distance_db,
    rendered_distance_db,
)
from wifm_synth.voice.patch import Patch
from wifm_synth.voice.schema import SCHEMA

# Renders: ≈ 8–12 ms per render and distance of a 3 s note, ≈ 5 s per fit on one core. With release times and
# segment durations among the coordinates (40–80 of them) one sweep takes 100–200 renders and the distance
# still falls after 400 (docs/RESULTS.md); the POLISHED_CANDIDATES closest candidates get
# FIRST_ROUND_EVALUATIONS each, the closer of them the rest of POLISH_EVALUATIONS.
POLISH_EVALUATIONS = 600
POLISHED_CANDIDATES = 2
FIRST_ROUND_EVALUATIONS = 100
# The polish's distance: the middle one of the verification's five FFT sizes, a sixth of the cost; on
# the dev notes it lowered the full distance as much as all five did (docs/RESULTS.md).
POLISH_FFT_SIZES = (1024,)
# Only the first seconds of a long note are rendered while polishing (a render per evaluation).
POLISH_MAX_S = 4.0
LEVEL_STEP_DB = 3.0  # first step of an operator's level
SEGMENT_STEP_DB = 6.0  # first step of a segment's end level
RELEASE_STEP_DB = 6.0  # first step of a release time: × 2
DURATION_STEP_DB = 3.0  # first step of a segment's duration: × √2
MIN_STEP_FRACTION = 1.0 / 16.0  # the search stops when the steps have halved to this
# The polish's loudness term: the RMS level per frame of this many samples, as the envelope error compares it.
LEVEL_FRAME = 1024
# A polished patch is kept only if its envelope error (fit.verify's) grows by at most this.
ENVELOPE_TOLERANCE_DB = 0.25
IMPROVEMENT_DB = 1e-4  # a move must lower the distance by more than this to be taken
# Multiples of the measured inharmonicity tried as the ratios' stretch (each one render of the full
# verification distance). Below MIN_INHARMONICITY (the tenth partial less than a cent sharp) none is tried:
# that much is measurement noise on a harmonic note.
STRETCH_SCALES = (1.0, 2.0, 3.0)
MIN_INHARMONICITY = 1e-5

_LEVEL = SCHEMA["operator.level"]
_SEGMENT_LEVEL = SCHEMA["segment.end_level_db"]
_SEGMENT_DURATION = SCHEMA["segment.duration_s"]
_RELEASE = SCHEMA["envelope.release_s"]
LEVEL, SEGMENT_LEVEL, SEGMENT_DURATION, RELEASE = "level", "segment level", "segment duration", "release"


@dataclasses.dataclass(frozen=True)
class Coordinate:
    operator: int
    kind: str  # LEVEL, SEGMENT_LEVEL, SEGMENT_DURATION or RELEASE
    step_db: float  # the first step
    segment: int = 0  # for the segment kinds


def coordinates(patch: Patch) -> list[Coordinate]:
    """What the polish moves: every heard operator's release time and level, then every segment's end level and
    then its duration, earliest first."""
    heard = [index for index, operator in enumerate(patch.operators) if operator.level > 0.0]
    segments = []
    for index in heard:
        start = 0.0
        for number, (duration_s, _) in enumerate(patch.operators[index].envelope.segments):
            segments.append((start, index, number))
            start += duration_s
    segments.sort()
    return ([Coordinate(index, RELEASE, RELEASE_STEP_DB) for index in heard]
            + [Coordinate(index, LEVEL, LEVEL_STEP_DB) for index in heard]
            + [Coordinate(index, SEGMENT_LEVEL, SEGMENT_STEP_DB, number) for _, index, number in segments]
            + [Coordinate(index, SEGMENT_DURATION, DURATION_STEP_DB, number) for _, index, number in segments])


def moved(patch: Patch, axes: list[Coordinate], offsets_db: np.ndarray) -> Patch:
    """``patch`` with each coordinate moved by its offset (dB; times scaled by 10^(offset/20)), clipped to the
    schema's ranges."""
    operators = list(patch.operators)
    for axis, offset in zip(axes, offsets_db):
        if offset == 0.0:
            continue
        operator = operators[axis.operator]
        factor = 10.0 ** (offset / 20.0)
        envelope = operator.envelope
        if axis.kind == LEVEL:
            high = _LEVEL.high if operator.carrier else MAX_INDEX
            operators[axis.operator] = dataclasses.replace(
                operator, level=float(np.clip(_LEVEL.clip(operator.level * factor), 0.0, high)))
            continue
        if axis.kind == RELEASE:
            envelope = dataclasses.replace(envelope, release_s=float(_RELEASE.clip(envelope.release_s * factor)))
        else:
            segments = list(envelope.segments)
            duration_s, level_db = segments[axis.segment]
            segments[axis.segment] = ((duration_s, float(_SEGMENT_LEVEL.clip(level_db + offset)))
                                      if axis.kind == SEGMENT_LEVEL
                                      else (float(_SEGMENT_DURATION.clip(duration_s * factor)), level_db))
            envelope = dataclasses.replace(envelope, segments=segments)
        operators[axis.operator] = dataclasses.replace(operator, envelope=envelope)
    return dataclasses.replace(patch, operators=operators, metadata=dict(patch.metadata))


def polish(patch: Patch, target: SampleAnalysis, evaluations: int = POLISH_EVALUATIONS) -> tuple[Patch, int]:
    """The patch after coordinate search on its envelopes and levels, and the renders it took. ``target`` is analysed at
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


def polish_closest(candidates: list[Patch], distances: list[float], target: SampleAnalysis
                   ) -> tuple[int, Patch, dict]:
    """The render check's POLISHED_CANDIDATES closest candidates polished with FIRST_ROUND_EVALUATIONS each,
    then the closer of the results (by the verification's distance) with the rest of POLISH_EVALUATIONS:
    → (index of the candidate it came from, the patch, what happened, for its metadata). The patch is the
    closest unpolished candidate when no polish brought one closer."""
    order = [int(index) for index in np.argsort(distances)[:POLISHED_CANDIDATES]]
    rounds = []
    for index in order:
        patch, record = polished_if_closer(candidates[index], target, distances[index], FIRST_ROUND_EVALUATIONS)
        rounds.append((record["render_distance_db"] if record["kept"] else distances[index], index, patch, record))
    distance, chosen, patch, first = min(rounds, key=lambda item: item[0])
    remaining = POLISH_EVALUATIONS - FIRST_ROUND_EVALUATIONS * len(order)
    patch, second = polished_if_closer(patch, target, distance, remaining) if remaining > 0 else (patch, None)
    kept = first["kept"] or bool(second and second["kept"])
    renders = sum(record["renders"] for *_, record in rounds) + (second["renders"] if second else 0)
    final = second if second and second["kept"] else first
    distance_db = final["render_distance_db"] if kept else round(distance, 3)
    patch, stretch, stretched_distance_db = stretched_if_closer(patch, target, distance_db)
    return chosen, patch, {"render_distance_db": round(stretched_distance_db, 3), "renders": renders,
                           "kept": kept or stretch > 0.0, "candidates_polished": len(order), "stretch": stretch}


def stretched(patch: Patch, stretch: float) -> Patch:
    """``patch`` with every heard operator's ratio r moved to r·sqrt(1 + stretch·r²) / sqrt(1 + stretch)."""
    operators = [dataclasses.replace(operator, ratio=float(operator.ratio * np.sqrt(1.0 + stretch * operator.ratio ** 2)
                                                          / np.sqrt(1.0 + stretch)))
                 if operator.level > 0.0 and operator.fixed_hz is None else operator
                 for operator in patch.operators]
    return dataclasses.replace(patch, operators=operators, metadata=dict(patch.metadata))


def stretched_if_closer(patch: Patch, target: SampleAnalysis, distance_db: float) -> tuple[Patch, float, float]:
    """The patch stretched by the multiple of the target's inharmonicity whose render is closest, if it is closer
    than ``distance_db`` (the patch's own): → (patch, the stretch used or 0, its distance)."""
    best = (patch, 0.0, distance_db)
    for scale in STRETCH_SCALES if target.inharmonicity >= MIN_INHARMONICITY else ():
        stretch = scale * target.inharmonicity
        candidate = stretched(patch, stretch)
        candidate_distance = render_distance_db(candidate, target)
        if candidate_distance < best[2]:
            best = (candidate, stretch, candidate_distance)
    return best
