"""Verify a fit: render the patch, analyse target and render alike, and score it against the floor and limit.

The **floor** is a sine at f0 carrying the target's RMS envelope and the **limit** is the target
resynthesised from its own measured harmonics. A metric's *position* is where the fit
sits between them: 0 = no better than the floor, 1 = as good as the limit. A fit's *quality* is the
position on the multi-resolution log-spectral distance, the metric closest to what a listener hears.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from wifm_synth.analysis import SampleAnalysis, analyze
from wifm_synth.analysis import metrics as analysis_metrics
from wifm_synth.engine import render_note
from wifm_synth.errors import AnalysisError
from wifm_synth.voice.patch import Patch

METRICS = (
    ("multi-resolution log-spectral distance", "dB"),
    ("harmonic-level error", "dB"),
    ("envelope error", "dB"),
    ("f0 error", "cents"),
)
SPECTRAL_METRICS = {"multi-resolution log-spectral distance", "harmonic-level error"}
SAMPLE_RATE = 48000
# A target without a measurable release is held to its end; the render still gets a short release.
MIN_TAIL_S = 0.1


@dataclass
class MetricScore:
    name: str
    unit: str
    fit: float
    floor: float
    limit: float

    @property
    def position(self) -> float | None:
        """Where the fit sits between floor (0) and limit (1).

        None on the metrics the floor matches by construction (it carries the target's f0 and RMS
        envelope, so it is no baseline there), and when the limit is no better than the floor.
        """
        span = self.floor - self.limit
        if self.name not in SPECTRAL_METRICS or not span > 1e-9:
            return None
        return (self.floor - self.fit) / span


@dataclass
class FitVerification:
    """A fit's render next to its target, both from the target's onset and of the target's length."""

    target: SampleAnalysis
    target_audio: np.ndarray
    rendered_audio: np.ndarray
    rendered: SampleAnalysis | None  # None when the render has no measurable pitch (e.g. a silent patch)
    scores: list[MetricScore] = field(default_factory=list)  # in METRICS order; empty when not scored

    @property
    def quality(self) -> float | None:
        return self.scores[0].position if self.scores else None


def analyze_render(audio: np.ndarray, midi_note: int) -> SampleAnalysis | None:
    """Analysis of a rendered signal at SAMPLE_RATE, or None when it has no measurable pitch."""
    try:
        return analyze((audio, SAMPLE_RATE), note_hint=midi_note, sample_rate=SAMPLE_RATE)
    except AnalysisError:
        return None


def _from_onset(analysis: SampleAnalysis) -> np.ndarray:
    return analysis.audio[analysis.onset_index:]


def _fit_to_length(audio: np.ndarray, length: int) -> np.ndarray:
    return np.pad(audio[:length], (0, max(0, length - len(audio))))


def _score(target: SampleAnalysis, candidate: np.ndarray, candidate_analysis: SampleAnalysis) -> list[float]:
    """The four metrics of ``candidate`` (audio from the onset, target length) against ``target``."""
    return [
        analysis_metrics.multires_log_stft_distance_db(_from_onset(target), candidate, SAMPLE_RATE),
        analysis_metrics.harmonic_level_error_db(target, candidate_analysis),
        analysis_metrics.envelope_error_db(target, candidate_analysis),
        abs(analysis_metrics.f0_error_cents(target, candidate_analysis)),
    ]


def render_like(patch: Patch, target: SampleAnalysis, *, midi_note: int, velocity: int,
                max_seconds: float | None = None) -> np.ndarray:
    """The engine's render of ``patch`` as long as ``target`` from its onset, held until its release; only
    its first ``max_seconds`` when given."""
    length = len(target.audio) - target.onset_index
    if max_seconds is not None:
        length = min(length, int(max_seconds * SAMPLE_RATE))
    duration_s = length / SAMPLE_RATE
    hold_s = target.release_start_s if target.release_start_s is not None else duration_s
    hold_s = min(hold_s, duration_s) if max_seconds is not None else hold_s
    return _fit_to_length(
        render_note(patch, midi_note, velocity=velocity, hold_s=hold_s,
                    tail_s=max(duration_s - hold_s, MIN_TAIL_S), sample_rate=SAMPLE_RATE),
        length,
    )


def reference_render(patch: Patch, target: SampleAnalysis, max_seconds: float | None = None) -> np.ndarray:
    """``render_like`` at the patch's own reference key and velocity: how the fitter hears a candidate."""
    pitch = patch.pitch
    return render_like(patch, target, midi_note=pitch.reference_note, velocity=pitch.reference_velocity,
                       max_seconds=max_seconds)


def rendered_distance_db(rendered: np.ndarray, target: SampleAnalysis) -> float:
    """The quality metric alone (multi-resolution log-spectral distance, dB) of a render from
    ``render_like`` against a target analysed at SAMPLE_RATE."""
    return float(analysis_metrics.multires_log_stft_distance_db(_from_onset(target), rendered, SAMPLE_RATE))


def render_distance_db(patch: Patch, target: SampleAnalysis) -> float:
    """The quality metric of ``patch``'s reference render: to compare candidates."""
    return rendered_distance_db(reference_render(patch, target), target)


def verify_fit(patch: Patch, source_path: str | os.PathLike, *, midi_note: int, velocity: int) -> FitVerification:
    """Render ``patch`` at ``midi_note``/``velocity`` as long as its source sample, held until the source's
    release, and score it. Raises InputError (AnalysisError) when the source cannot be read or analysed."""
    target = analyze(source_path, note_hint=midi_note, sample_rate=SAMPLE_RATE)
    target_audio = _from_onset(target)
    rendered_audio = render_like(patch, target, midi_note=midi_note, velocity=velocity)
    verification = FitVerification(target=target, target_audio=target_audio, rendered_audio=rendered_audio,
                                   rendered=analyze_render(rendered_audio, midi_note))
    if verification.rendered is None:
        return verification
    references = [
        _fit_to_length(reference(target)[target.onset_index:], len(target_audio))
        for reference in (analysis_metrics.sine_floor, analysis_metrics.harmonic_resynthesis)
    ]
    fit_scores = _score(target, rendered_audio, verification.rendered)
    floor_scores, limit_scores = (
        _score(target, audio, analyze((audio, SAMPLE_RATE), note_hint=midi_note, sample_rate=SAMPLE_RATE))
        for audio in references
    )
    verification.scores = [
        MetricScore(name, unit, fit, floor, limit)
        for (name, unit), fit, floor, limit in zip(METRICS, fit_scores, floor_scores, limit_scores)
    ]
    return verification
