"""Scoring a fitted note: alignment with its target, floor/limit positions, and notes without a target."""

import numpy as np
import pytest

from wifm_synth.drivers.wav import write_wav
from wifm_synth.engine import render_note
from wifm_synth.patch.model import Envelope, Operator, Patch, Pitch, save_patch
from wifm_synth.report.notes import load_report_instrument
from wifm_synth.report.scoring import METRICS, SAMPLE_RATE, MetricScore, evaluate_note


@pytest.mark.parametrize(
    ("fit", "expected"),
    [(10.0, 0.0), (6.0, 0.5), (2.0, 1.0), (14.0, -0.5), (1.0, 1.125)],
)
def test_position_runs_from_floor_to_limit(fit, expected):
    score = MetricScore("multi-resolution log-spectral distance", "dB", fit=fit, floor=10.0, limit=2.0)
    assert score.position == pytest.approx(expected)


@pytest.mark.parametrize(("floor", "limit"), [(0.0, 0.0), (1.0, 3.0)])
def test_position_is_undefined_when_the_limit_is_no_better_than_the_floor(floor, limit):
    assert MetricScore("harmonic-level error", "dB", fit=0.5, floor=floor, limit=limit).position is None


@pytest.mark.parametrize("name", ["envelope error", "f0 error"])
def test_position_is_undefined_where_the_floor_matches_the_target_by_construction(name):
    assert MetricScore(name, "dB", fit=1.0, floor=0.07, limit=0.06).position is None


def bright_patch(note: int, source: str | None, level: float = 0.3) -> Patch:
    return Patch(
        name="bright",
        pitch=Pitch(reference_note=note),
        operators=[
            Operator(level=level, modulators=[1], envelope=Envelope([(0.005, 0.0), (2.0, -20.0)], 0.15)),
            Operator(ratio=2.0, level=1.5, carrier=False, envelope=Envelope([(0.005, 0.0), (1.0, -12.0)], 0.15)),
        ],
        metadata={} if source is None else {"source": source},
    )


def note_for(tmp_path, patch: Patch):
    save_patch(patch, tmp_path / "patch.json")
    return load_report_instrument(tmp_path / "patch.json").notes[0]


def test_a_patch_scored_against_its_own_render_reaches_the_limit(tmp_path):
    patch = bright_patch(57, "self.wav")
    # Silence before the onset checks that the target is aligned at its onset, not at the file start.
    lead_in = np.zeros(int(0.25 * SAMPLE_RATE))
    own_render = render_note(patch, 57, velocity=100, hold_s=1.5, tail_s=0.5, sample_rate=SAMPLE_RATE)
    write_wav(tmp_path / "self.wav", np.concatenate([lead_in, own_render]), SAMPLE_RATE)

    evaluation = evaluate_note(note_for(tmp_path, patch))
    assert evaluation.missing_target == ""
    target = evaluation.target
    assert len(target.audio) == len(target.analysis.audio) - target.analysis.onset_index
    assert abs(target.analysis.onset_index - len(lead_in)) < 0.01 * SAMPLE_RATE
    assert len(evaluation.rendered.audio) == len(target.audio)
    assert [score.name for score in evaluation.scores] == [name for name, _ in METRICS]
    distance = evaluation.scores[0]
    assert distance.limit < distance.floor
    assert distance.fit < distance.limit  # the same audio, up to the render being cut at the target length
    assert evaluation.quality == distance.position and evaluation.quality > 0.95


def test_a_note_without_its_source_is_rendered_alone_with_the_reason(tmp_path):
    evaluation = evaluate_note(note_for(tmp_path, bright_patch(60, "gone.wav")))
    assert evaluation.target is None and evaluation.scores == [] and evaluation.quality is None
    assert "source sample 'gone.wav' not found" in evaluation.missing_target
    assert len(evaluation.rendered.audio) == pytest.approx(3.0 * SAMPLE_RATE, abs=64)
    assert evaluation.rendered.analysis is not None


def test_a_silent_render_is_shown_but_not_scored(tmp_path, bundled_notes):
    source = next(path for path in bundled_notes if path.name == "piano_55_100.wav")
    evaluation = evaluate_note(note_for(tmp_path, bright_patch(55, str(source), level=0.0)))
    assert evaluation.target is not None
    assert evaluation.rendered.analysis is None and evaluation.scores == []
