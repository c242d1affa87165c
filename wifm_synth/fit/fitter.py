"""Recorded note → FM patch: the 2-operator pair, and for ``ops`` 4, 6 or auto a DX7-algorithm patch
searched from it (``fit.multi_op``), whichever the engine's render puts closer to the note.

Pipeline: analysis (pitch, per-frame harmonics) → per-frame target spectra on the loss axis →
integer-ratio search with a β(t) trajectory per ratio (``ratio_search``; or the seed method) →
energy-matched carrier amplitude per frame → multi-segment envelopes for both operators and a
release time from the sample's own release → Patch.

Loss axis: log-frequency (log2 of the harmonic number) by default, harmonic index selectable.
Both recover exact integer ratios and β(t) from clean synthetic FM (the harmonic-index axis is a
few times more precise there, since its W1 grows steadily with the spread of the evenly spaced
sidebands). On real notes the log axis wins: the linear axis lets a few strong upper partials
dominate the transport cost and pushes the search to high modulator ratios with gaps in the low
harmonics (alto sax: ratio 10), while the log axis, like hearing, weights the low harmonics that
carry pitch and timbre; renders of its fits have lower per-harmonic level errors
(tests/fit/test_fitter.py measures this on the bundled notes). The seed method keeps its own
linear (harmonic-index) axis.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import wifm_synth
from wifm_synth.analysis import SampleAnalysis, analyze
from wifm_synth.checks import integer_in
from wifm_synth.errors import InputError
from wifm_synth.fit.envelope import EnvelopeFit, fit_envelope, fit_release_seconds
from wifm_synth.fit.lfo import fit_lfo
from wifm_synth.fit.loss import LOSS_KINDS
from wifm_synth.fit.ratio_search import (
    IndexTrajectory,
    TargetSpectra,
    search_index_trajectories,
)
from wifm_synth.fit.seed import ENVELOPE_SEGMENTS as SEED_ENVELOPE_SEGMENTS
from wifm_synth.fit.seed import fit_seed_trajectory
from wifm_synth.fit.structures import Structure
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch
from wifm_synth.voice.schema import SCHEMA

METHODS = ("wifm", "seed")
AXES = ("log", "harmonic")
SUPPORTED_OPERATORS = (2, 4, 6, "auto")
# Frames quieter than this (re the loudest frame's RMS) do not steer the fit: their spectra are noise.
ACTIVE_FLOOR_DB = -50.0
# Envelope levels are clamped here (re the envelope's peak) so silence never reaches log(0).
ENVELOPE_FLOOR_DB = -80.0
MODULATOR_FLOOR_DB = -60.0
# Velocity cannot be measured from one sample; FM practice is a brighter tone when played harder.
MODULATOR_VELOCITY_SENSITIVITY = 0.5
MIN_INDEX = 1e-6
# Sinkhorn (POT) costs milliseconds per frame evaluation, 10^4 times the W1 kernel: its fits polish the W1
# result on at most this many evenly spaced frames.
SINKHORN_MAX_FRAMES = 12
# Analysis windows centred this close to the note-off already hear the release.
RELEASE_GUARD_S = 0.05


@dataclass(frozen=True)
class FitSettings:
    """How to fit: operator count, per-frame loss, method, loss axis and the velocity the sample was played at.

    ``axis`` ("log" or "harmonic") applies to the wifm method; the seed method uses the harmonic index.
    """

    ops: int | str = 2
    loss: str = "w1"
    method: str = "wifm"
    axis: str = "log"
    reference_velocity: int = SCHEMA["pitch.reference_velocity"].default

    def __post_init__(self):
        if isinstance(self.ops, bool) or self.ops not in SUPPORTED_OPERATORS:
            supported = ", ".join(map(str, SUPPORTED_OPERATORS))
            raise InputError(f"--ops {self.ops}: expected one of {supported}")
        if self.loss not in LOSS_KINDS:
            raise InputError(f"--loss {self.loss}: expected one of {', '.join(LOSS_KINDS)}")
        if self.method not in METHODS:
            raise InputError(f"--method {self.method}: expected one of {', '.join(METHODS)}")
        if self.axis not in AXES:
            raise InputError(f"axis {self.axis}: expected one of {', '.join(AXES)}")
        allowed = SCHEMA["pitch.reference_velocity"]
        integer_in(self.reference_velocity, "reference velocity", int(allowed.low), int(allowed.high))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class FitResult:
    """The fitted patch plus what it was fitted to and the fitted per-frame trajectories."""

    patch: Patch
    analysis: SampleAnalysis
    loss: float
    seconds: float
    ratios: list[float]  # [carrier, modulator] in units of f0
    frame_times: np.ndarray  # (T,) seconds since onset of the fitted (held) frames
    betas: np.ndarray  # (T,) modulation index per frame
    carrier_gains: np.ndarray  # (T,) carrier amplitude per frame
    frame_loss: np.ndarray  # (T,) per-frame loss
    frame_weights: np.ndarray  # (T,) 1 where the frame steered the fit
    carrier_envelope: EnvelopeFit
    modulator_envelope: EnvelopeFit | None  # None when the fit needs no modulation
    structure: Structure | None = None  # the operator graph of a multi-operator fit (None: the pair)


def loss_axis(n_harmonics: int, axis: str) -> np.ndarray:
    harmonics = np.arange(1, n_harmonics + 1, dtype=np.float64)
    return harmonics if axis == "harmonic" else np.log2(harmonics)


def _held_frames(analysis: SampleAnalysis, max_frames: int | None) -> np.ndarray:
    """Frames from the onset up to the release (the part a held key reproduces), evenly thinned to
    ``max_frames`` when given."""
    times = analysis.frame_times
    held = times >= 0.0
    if analysis.release_start_s is not None:
        held &= times < analysis.release_start_s - RELEASE_GUARD_S
    frames = np.flatnonzero(held)
    if frames.size < 3:
        raise InputError("too short to fit: fewer than 3 analysis frames before the release", analysis.source)
    if max_frames is not None and frames.size > max_frames:
        frames = frames[np.unique(np.linspace(0, frames.size - 1, max_frames).round().astype(np.int64))]
    return frames


def _levels_db(values: np.ndarray, reference: float, floor_db: float) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(values / max(reference, 1e-300), 10.0 ** (floor_db / 20.0)))


def _envelope_frames(times: np.ndarray, weights: np.ndarray, source: str) -> np.ndarray:
    """Frames after note-on (t > 0) up to the last active one: the trailing noise is not the envelope."""
    last = int(np.flatnonzero(weights > 0)[-1])
    frames = np.flatnonzero(times[: last + 1] > 0.0)
    if frames.size < 2:
        raise InputError("too short to fit: the note is audible in fewer than 2 analysis frames", source)
    return frames


def _pitch(analysis: SampleAnalysis, reference_velocity: int) -> Pitch:
    """Reference note: the hint when the measured pitch is within a semitone of it, else the nearest key."""
    note = analysis.note_hint
    if note is None or abs(analysis.midi_note - note) > 1.0:
        note = int(round(analysis.midi_note))
    tune = float(SCHEMA["pitch.tune_cents"].clip(100.0 * (analysis.midi_note - note)))
    return Pitch(reference_note=int(note), reference_velocity=int(reference_velocity), tune_cents=round(tune, 3))


def _trajectory(target: TargetSpectra, settings: FitSettings) -> IndexTrajectory:
    if settings.method == "seed":
        return fit_seed_trajectory(target, settings.loss)
    return search_index_trajectories(target, settings.loss)[0]


def fit_analysis(analysis: SampleAnalysis, settings: FitSettings = FitSettings()) -> FitResult:
    """Fit a patch to an analysed note: the 2-operator pair (module docstring), then for ``ops`` 4, 6 or
    auto the operator-graph search over DX7 algorithms (``fit.multi_op``), keeping whichever renders best."""
    if not isinstance(analysis, SampleAnalysis):
        raise InputError(f"fit_analysis: expected a SampleAnalysis, got {type(analysis).__name__}")
    if not isinstance(settings, FitSettings):
        raise InputError(f"fit_analysis: expected FitSettings, got {type(settings).__name__}")
    result = _fit_pair(analysis, settings)
    if settings.ops != 2:
        result = _fit_graph(analysis, settings, result)
    return result


def _fit_pair(analysis: SampleAnalysis, settings: FitSettings) -> FitResult:
    started = time.perf_counter()
    frames = _held_frames(analysis, SINKHORN_MAX_FRAMES if settings.loss == "sinkhorn" else None)
    amplitudes = np.ascontiguousarray(analysis.harmonic_amps[frames], dtype=np.float64)
    if amplitudes.shape[1] < 1 or not np.any(amplitudes > 0.0):
        raise InputError("no harmonics measured before the release", analysis.source)
    rms = analysis.rms_env[frames]
    weights = (_levels_db(rms, rms.max(), ENVELOPE_FLOOR_DB) >= ACTIVE_FLOOR_DB).astype(np.float64)
    axis = "harmonic" if settings.method == "seed" else settings.axis
    hop_s = float(np.median(np.diff(analysis.frame_times[frames])))
    target = TargetSpectra(loss_axis(amplitudes.shape[1], axis), amplitudes, weights, hop_s)
    trajectory = _trajectory(target, settings)

    times = analysis.frame_times[frames]
    segments = SEED_ENVELOPE_SEGMENTS if settings.method == "seed" else None
    fitted = _envelope_frames(times, weights, analysis.source)
    # LFO hook (fit/lfo.py): tremolo is the LFO's, so the envelope fits the level without it.
    lfo_fit = fit_lfo(analysis)
    gains = trajectory.carrier_gains
    if lfo_fit.found:
        gains = gains * 10.0 ** (-lfo_fit.level_correction_db[frames] / 20.0)
    carrier_level = float(gains[weights > 0].max())
    carrier_envelope = fit_envelope(times[fitted], _levels_db(gains[fitted], carrier_level, ENVELOPE_FLOOR_DB),
                                    fixed_segments=segments)
    all_rms_db = _levels_db(analysis.rms_env, analysis.rms_env.max(), ENVELOPE_FLOOR_DB)
    release_s = fit_release_seconds(analysis.frame_times, all_rms_db, analysis.release_start_s)

    peak_index = float(trajectory.betas[weights > 0].max())
    if peak_index > MIN_INDEX:
        modulator_envelope = fit_envelope(
            times[fitted], _levels_db(trajectory.betas[fitted], peak_index, MODULATOR_FLOOR_DB),
            fixed_segments=segments)
        modulator_segments = modulator_envelope.segments
    else:
        modulator_envelope = None
        peak_index = 0.0
        modulator_segments = carrier_envelope.segments
    seconds = time.perf_counter() - started
    ratios = [float(trajectory.carrier_ratio), float(trajectory.modulator_ratio)]
    patch = Patch(
        name=Path(analysis.source).stem,
        pitch=lfo_fit.centred(_pitch(analysis, settings.reference_velocity)),
        operators=[
            Operator(ratio=ratios[0], level=carrier_level, carrier=True, modulators=[1],
                     envelope=Envelope(segments=carrier_envelope.segments, release_s=release_s)),
            Operator(ratio=ratios[1], level=peak_index, carrier=False,
                     envelope=Envelope(segments=modulator_segments, release_s=release_s),
                     velocity_sensitivity=MODULATOR_VELOCITY_SENSITIVITY),
        ],
        lfo=lfo_fit.lfo,
        metadata={
            "source": os.path.basename(analysis.source),
            "f0_hz": round(float(analysis.f0_hz), 4),
            "midi_note": round(float(analysis.midi_note), 4),
            "loss": float(trajectory.loss),
            "loss_kind": settings.loss,
            "method": settings.method,
            "settings": settings.to_dict(),
            "ratios": ratios,
            "seconds": round(seconds, 4),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tool_version": wifm_synth.__version__,
        },
    )
    return FitResult(
        patch=patch, analysis=analysis, loss=float(trajectory.loss), seconds=seconds, ratios=ratios,
        frame_times=times, betas=trajectory.betas, carrier_gains=gains, frame_loss=trajectory.frame_loss,
        frame_weights=weights, carrier_envelope=carrier_envelope, modulator_envelope=modulator_envelope,
    )


def _fit_graph(analysis: SampleAnalysis, settings: FitSettings, pair: FitResult) -> FitResult:
    """Up to ``settings.ops`` operators on DX7 algorithms; the pair stays a candidate (``fit.multi_op``)."""
    # imported here: multi_op imports verify → engine, which the 2-operator path never needs
    from wifm_synth.fit import multi_op
    from wifm_synth.fit.polish import polish_closest

    started = time.perf_counter()
    frames = _held_frames(analysis, SINKHORN_MAX_FRAMES if settings.loss == "sinkhorn" else None)
    amplitudes = np.ascontiguousarray(analysis.harmonic_amps[frames], dtype=np.float64)
    axis = loss_axis(amplitudes.shape[1], settings.axis)
    times, weights = pair.frame_times, pair.frame_weights
    hop_s = float(np.median(np.diff(times)))
    # every tracked pair (not only the best) starts the structure search: W1's best pair is often not the
    # best trunk for more operators
    pairs = search_index_trajectories(TargetSpectra(axis, amplitudes, weights, hop_s), "w1")
    refined, refine, cache = multi_op.search((axis, amplitudes, weights, times), pairs, settings.ops)
    release_s = pair.patch.operators[0].envelope.release_s
    fitted = refine[_envelope_frames(times[refine], weights[refine], analysis.source)]
    # The vibrato is the pair's LFO. Its tremolo is either left in these level trajectories (the envelopes
    # follow what few segments can of it) or played by the LFO with the envelopes following the level without
    # it, as the pair does; with a tremolo both variants of each fit are offered to the render check.
    no_tremolo = dataclasses.replace(pair.patch.lfo, amp_depth_db=0.0)
    variants = [(no_tremolo, None)]
    if pair.patch.lfo.amp_depth_db > 0.0:
        variants.append((pair.patch.lfo, fit_lfo(analysis).level_correction_db[frames][refine]))
    fits, candidates, trajectories = [None], [pair.patch], [None]
    for fit in refined:
        for lfo, correction in variants:
            algorithm, operators, levels = multi_op.operators_for(
                fit, cache, axis, amplitudes[refine], times[refine], np.searchsorted(refine, fitted), release_s,
                (ENVELOPE_FLOOR_DB, MODULATOR_FLOOR_DB), MODULATOR_VELOCITY_SENSITIVITY, MIN_INDEX, correction)
            fits.append(fit)
            candidates.append(Patch(name=pair.patch.name, pitch=pair.patch.pitch, algorithm=algorithm,
                                    operators=operators, lfo=lfo, metadata=dict(pair.patch.metadata)))
            trajectories.append(levels)
    distances = multi_op.render_distances(candidates, analysis)
    # the closest candidates polished against their renders (fit.polish); kept only if the verification agrees
    chosen, patch, polished = polish_closest(candidates, distances, analysis)
    seconds = pair.seconds + time.perf_counter() - started
    patch.metadata.update(seconds=round(seconds, 4), candidates=[
        {"operators": 2 if fit is None else fit.structure.operator_count,
         "structure": "" if fit is None else fit.structure.describe(),
         "algorithm": candidate.algorithm, "tremolo_db": candidate.lfo.amp_depth_db,
         "render_distance_db": round(distance, 3)}
        for fit, candidate, distance in zip(fits, candidates, distances)],
        polish=polished)
    if chosen == 0:
        return dataclasses.replace(pair, patch=patch, seconds=seconds)
    fit, levels = fits[chosen], trajectories[chosen]
    ratios = [operator.ratio for operator in patch.operators]
    patch.metadata.update(loss=fit.loss, ratios=ratios, structure=fit.structure.describe())
    carriers = np.array(fit.structure.carriers)
    # The pair's fields for the multi-operator fit: the first modulator's index and the summed carriers.
    return dataclasses.replace(
        pair, patch=patch, loss=fit.loss, seconds=seconds, ratios=ratios, frame_times=times[refine],
        frame_weights=weights[refine], frame_loss=multi_op.frame_loss(cache, fit, axis, amplitudes[refine]),
        betas=levels[:, 1], carrier_gains=levels[:, carriers].sum(axis=1), structure=fit.structure)


def fit_file(path: str | os.PathLike, *, note: int | None = None, settings: FitSettings = FitSettings()) -> FitResult:
    """Analyse and fit one recorded note; ``note`` is the MIDI note hint. ``seconds`` includes the analysis."""
    started = time.perf_counter()
    analysis = analyze(path, note_hint=note)
    result = fit_analysis(analysis, settings)
    result.seconds = time.perf_counter() - started
    result.patch.metadata["seconds"] = round(result.seconds, 4)
    return result
