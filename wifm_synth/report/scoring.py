"""Each report note's fit verification (:mod:`wifm_synth.fit.verify`) as the target and render tracks the page
shows; a note whose source sample is missing or unreadable is rendered alone, with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from wifm_synth.engine import render_note
from wifm_synth.errors import InputError
from wifm_synth.fit.verify import (
    SAMPLE_RATE,
    FitVerification,
    MetricScore,
    analyze_render,
    verify_fit,
)
from wifm_synth.formats.bank_json import Bank, Zone
from wifm_synth.library.naming import note_name
from wifm_synth.report.figures import Track
from wifm_synth.report.notes import ReportNote, resolve_source

# Without a target, notes are held and released like the bundled samples.
DEFAULT_HOLD_S = 2.0
DEFAULT_TAIL_S = 1.0
# Renders across a zone are for listening only: short, so that a whole GM bank's stay small.
ZONE_HOLD_S = 1.0
ZONE_TAIL_S = 0.5


@dataclass
class ZoneRender:
    """The bank played somewhere other than the fitted key and velocity: a zone edge or another layer."""

    label: str
    track: Track


@dataclass
class NoteSummary:
    """What the page's overview keeps of an evaluation once its section is written (no audio)."""

    note: ReportNote
    quality: float | None


@dataclass
class NoteEvaluation:
    note: ReportNote
    rendered: Track
    target: Track | None = None
    missing_target: str = ""  # why there is no target to compare with, when there is none
    verification: FitVerification | None = None
    zone_renders: list[ZoneRender] = field(default_factory=list)

    @property
    def scores(self) -> list[MetricScore]:
        return self.verification.scores if self.verification is not None else []

    @property
    def quality(self) -> float | None:
        return self.verification.quality if self.verification is not None else None

    def summary(self) -> NoteSummary:
        return NoteSummary(self.note, self.quality)


def zone_points(note: ReportNote, bank: Bank | None) -> list[tuple[str, int, int, Zone]]:
    """Where else a listener should hear the note's zones: (label, key, velocity, zone that plays) at each zone's
    lowest and highest key (at the fitted velocity), and the fitted key at each velocity layer of its
    programs (each layer's own patch at the velocity it was fitted at)."""
    if bank is None:
        return []
    points: dict[tuple[int, int, str], tuple[str, Zone]] = {}
    own = (note.midi_note, note.velocity)
    for program, zone in note.zones:
        for key, edge in ((zone.key_lo, "lowest"), (zone.key_hi, "highest")):
            if (key, note.velocity) != own:
                label = (f"{note_name(key)}: {edge} key of its zone {note_name(zone.key_lo)}–"
                         f"{note_name(zone.key_hi)}, velocity {note.velocity}")
                points.setdefault((key, note.velocity, zone.patch), (label, zone))
        layers = sorted((z for z in program.zones if z.key_lo <= note.midi_note <= z.key_hi),
                        key=lambda z: z.vel_lo)
        for layer in layers if len(layers) > 1 else []:
            velocity = min(max(bank.patch_for(layer).pitch.reference_velocity, layer.vel_lo), layer.vel_hi)
            if layer is not zone:
                label = f"velocity layer {layer.vel_lo}–{layer.vel_hi}: {note_name(note.midi_note)} at velocity {velocity}"
                points.setdefault((note.midi_note, velocity, layer.patch), (label, layer))
    return [(label, key, velocity, zone) for (key, velocity, _), (label, zone) in points.items()]


def zone_renders(note: ReportNote, bank: Bank | None) -> list[ZoneRender]:
    renders = []
    for label, key, velocity, zone in zone_points(note, bank):
        audio = render_note(bank.patch_for(zone), key, velocity=velocity, hold_s=ZONE_HOLD_S,
                            tail_s=ZONE_TAIL_S, sample_rate=SAMPLE_RATE)
        renders.append(ZoneRender(label, Track(label, audio, SAMPLE_RATE, None)))
    return renders


def evaluate_note(note: ReportNote, bank: Bank | None = None) -> NoteEvaluation:
    """Render ``note``'s patch at its fitted key and reference velocity and compare with its source if found;
    in a bank, also render it across its zones (:func:`zone_points`)."""
    evaluation = _evaluate_fit(note)
    evaluation.zone_renders = zone_renders(note, bank)
    return evaluation


def _evaluate_fit(note: ReportNote) -> NoteEvaluation:
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
