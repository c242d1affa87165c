"""Each report note's fit verification (:mod:`wifm_synth.fit.verify`) as the target and render tracks the page
shows; a note whose source sample is missing or unreadable is rendered alone, with the reason."""

from __future__ import annotations

from dataclasses import dataclass

from wifm_synth.engine import render_note
from wifm_synth.errors import InputError
from wifm_synth.fit.verify import (
    SAMPLE_RATE,
    FitVerification,
    MetricScore,
    analyze_render,
    verify_fit,
)
from wifm_synth.report.figures import Track
from wifm_synth.report.notes import ReportNote, resolve_source

# Without a target, notes are held and released like the bundled samples.
DEFAULT_HOLD_S = 2.0
DEFAULT_TAIL_S = 1.0


@dataclass
class NoteEvaluation:
    note: ReportNote
    rendered: Track
    target: Track | None = None
    missing_target: str = ""  # why there is no target to compare with, when there is none
    verification: FitVerification | None = None

    @property
    def scores(self) -> list[MetricScore]:
        return self.verification.scores if self.verification is not None else []

    @property
    def quality(self) -> float | None:
        return self.verification.quality if self.verification is not None else None


def evaluate_note(note: ReportNote) -> NoteEvaluation:
    """Render ``note``'s patch at its fitted key and reference velocity; compare with its source if found."""
    try:
        verification = verify_fit(note.patch, resolve_source(note), midi_note=note.midi_note, velocity=note.velocity)
    except InputError as exc:  # missing, unreadable or unanalysable source: show the render alone
        rendered_audio = render_note(note.patch, note.midi_note, velocity=note.velocity, hold_s=DEFAULT_HOLD_S,
                                     tail_s=DEFAULT_TAIL_S, sample_rate=SAMPLE_RATE)
        rendered = Track("render", rendered_audio, SAMPLE_RATE, analyze_render(rendered_audio, note.midi_note))
        return NoteEvaluation(note=note, rendered=rendered, missing_target=str(exc))
    return NoteEvaluation(
        note=note,
        rendered=Track("render", verification.rendered_audio, SAMPLE_RATE, verification.rendered),
        target=Track("target", verification.target_audio, SAMPLE_RATE, verification.target),
        verification=verification,
    )
