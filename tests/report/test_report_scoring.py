"""A report note's evaluation: its verification as target and render tracks, or the render alone with the reason."""

import pytest

from wifm_synth.fit.verify import METRICS, SAMPLE_RATE
from wifm_synth.formats.patch_json import save_patch
from wifm_synth.report.notes import load_report_instrument
from wifm_synth.report.scoring import evaluate_note
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch


def sine_patch(note: int, source: str, level: float = 0.3) -> Patch:
    envelope = Envelope([(0.005, 0.0), (2.0, -20.0)], 0.15)
    return Patch(name="sine", pitch=Pitch(reference_note=note), operators=[Operator(level=level, envelope=envelope)],
                 metadata={"source": source})


def note_for(tmp_path, patch: Patch):
    save_patch(patch, tmp_path / "patch.json")
    return load_report_instrument(tmp_path / "patch.json").notes[0]


def piano_55(bundled_notes):
    return next(path for path in bundled_notes if path.name == "piano_55_100.wav")


def test_a_scored_note_shows_its_verification_as_target_and_render(tmp_path, bundled_notes):
    evaluation = evaluate_note(note_for(tmp_path, sine_patch(55, str(piano_55(bundled_notes)))))
    verification = evaluation.verification
    assert evaluation.missing_target == ""
    assert evaluation.target.audio is verification.target_audio and evaluation.target.analysis is verification.target
    assert evaluation.rendered.audio is verification.rendered_audio
    assert evaluation.rendered.analysis is verification.rendered
    assert evaluation.target.sample_rate == evaluation.rendered.sample_rate == SAMPLE_RATE
    assert [score.name for score in evaluation.scores] == [name for name, _ in METRICS]
    assert evaluation.quality == verification.quality is not None


def test_a_note_without_its_source_is_rendered_alone_with_the_reason(tmp_path):
    evaluation = evaluate_note(note_for(tmp_path, sine_patch(60, "gone.wav")))
    assert evaluation.target is None and evaluation.scores == [] and evaluation.quality is None
    assert "source sample 'gone.wav' not found" in evaluation.missing_target
    assert len(evaluation.rendered.audio) == pytest.approx(3.0 * SAMPLE_RATE, abs=64)
    assert evaluation.rendered.analysis is not None


def test_a_silent_render_is_shown_but_not_scored(tmp_path, bundled_notes):
    evaluation = evaluate_note(note_for(tmp_path, sine_patch(55, str(piano_55(bundled_notes)), level=0.0)))
    assert evaluation.target is not None
    assert evaluation.rendered.analysis is None and evaluation.scores == [] and evaluation.quality is None
