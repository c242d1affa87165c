"""Render each fitted note, analyse target and render alike, and score the fit against the floor and limit.

The **floor** is a sine at f0 carrying the target's RMS envelope and the **limit** is the target
resynthesised from its own measured harmonics (DESIGN.md §2). A metric's *position* is where the fit
sits between them: 0 = no better than the floor, 1 = as good as the limit. A note's *quality* is the
position on the multi-resolution log-spectral distance, the metric closest to what a listener hears.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wifm_synth.analysis import SampleAnalysis, analyze
from wifm_synth.analysis import metrics as analysis_metrics
from wifm_synth.engine import render_note
from wifm_synth.errors import AnalysisError, InputError
from wifm_synth.report.figures import Track
from wifm_synth.report.notes import ReportNote, resolve_source

METRICS = (
    ("multi-resolution log-spectral distance", "dB"),
    ("harmonic-level error", "dB"),
    ("envelope error", "dB"),
    ("f0 error", "cents"),
)
SPECTRAL_METRICS = {"multi-resolution log-spectral distance", "harmonic-level error"}
SAMPLE_RATE = 48000
# Without a target (or when it has no release), notes are held and released like the bundled samples.
DEFAULT_HOLD_S = 2.0
DEFAULT_TAIL_S = 1.0
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
class NoteEvaluation:
    note: ReportNote
    rendered: Track
    target: Track | None = None
    missing_target: str = ""  # why there is no target to compare with, when there is none
    scores: list[MetricScore] = field(default_factory=list)

    @property
    def quality(self) -> float | None:
        return self.scores[0].position if self.scores else None


def _from_onset(analysis: SampleAnalysis) -> np.ndarray:
    return analysis.audio[analysis.onset_index:]


def _analyze_or_none(audio: np.ndarray, note: int) -> SampleAnalysis | None:
    """Analysis of a rendered signal, or None when it has no measurable pitch (e.g. a silent patch)."""
    try:
        return analyze((audio, SAMPLE_RATE), note_hint=note, sample_rate=SAMPLE_RATE)
    except AnalysisError:
        return None


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


def evaluate_note(note: ReportNote) -> NoteEvaluation:
    """Render ``note``'s patch at its fitted key and reference velocity; compare with its source if found."""
    try:
        target = analyze(resolve_source(note), note_hint=note.midi_note, sample_rate=SAMPLE_RATE)
    except InputError as exc:  # missing, unreadable or unanalysable source: show the render alone
        rendered_audio = render_note(note.patch, note.midi_note, velocity=note.velocity, hold_s=DEFAULT_HOLD_S,
                                     tail_s=DEFAULT_TAIL_S, sample_rate=SAMPLE_RATE)
        rendered = Track("render", rendered_audio, SAMPLE_RATE, _analyze_or_none(rendered_audio, note.midi_note))
        return NoteEvaluation(note=note, rendered=rendered, missing_target=str(exc))

    target_audio = _from_onset(target)
    duration_s = len(target_audio) / SAMPLE_RATE
    hold_s = target.release_start_s if target.release_start_s is not None else duration_s
    rendered_audio = _fit_to_length(
        render_note(note.patch, note.midi_note, velocity=note.velocity, hold_s=hold_s,
                    tail_s=max(duration_s - hold_s, MIN_TAIL_S), sample_rate=SAMPLE_RATE),
        len(target_audio),
    )
    rendered = Track("render", rendered_audio, SAMPLE_RATE, _analyze_or_none(rendered_audio, note.midi_note))
    evaluation = NoteEvaluation(note=note, rendered=rendered, target=Track("target", target_audio, SAMPLE_RATE, target))
    if rendered.analysis is None:
        return evaluation
    references = [
        _fit_to_length(reference(target)[target.onset_index:], len(target_audio))
        for reference in (analysis_metrics.sine_floor, analysis_metrics.harmonic_resynthesis)
    ]
    fit_scores = _score(target, rendered_audio, rendered.analysis)
    floor_scores, limit_scores = (
        _score(target, audio, analyze((audio, SAMPLE_RATE), note_hint=note.midi_note, sample_rate=SAMPLE_RATE))
        for audio in references
    )
    evaluation.scores = [
        MetricScore(name, unit, fit, floor, limit)
        for (name, unit), fit, floor, limit in zip(METRICS, fit_scores, floor_scores, limit_scores)
    ]
    return evaluation
