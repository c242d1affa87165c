"""Fit verification: alignment with the target, floor/limit positions, unscored silent renders, bad sources."""

import numpy as np
import pytest

from wifm_synth.drivers.wav import write_wav
from wifm_synth.engine import render_note
from wifm_synth.errors import InputError
from wifm_synth.fit.verify import METRICS, SAMPLE_RATE, MetricScore, verify_fit
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch


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


def bright_patch(note: int, level: float = 0.3) -> Patch:
    return Patch(
        name="bright",
        pitch=Pitch(reference_note=note),
        operators=[
            Operator(level=level, modulators=[1], envelope=Envelope([(0.005, 0.0), (2.0, -20.0)], 0.15)),
            Operator(ratio=2.0, level=1.5, carrier=False, envelope=Envelope([(0.005, 0.0), (1.0, -12.0)], 0.15)),
        ],
    )


def test_a_patch_verified_against_its_own_render_reaches_the_limit(tmp_path):
    patch = bright_patch(57)
    # Silence before the onset checks that the target is aligned at its onset, not at the file start.
    lead_in = np.zeros(int(0.25 * SAMPLE_RATE))
    own_render = render_note(patch, 57, velocity=100, hold_s=1.5, tail_s=0.5, sample_rate=SAMPLE_RATE)
    write_wav(tmp_path / "self.wav", np.concatenate([lead_in, own_render]), SAMPLE_RATE)

    verification = verify_fit(patch, tmp_path / "self.wav", midi_note=57, velocity=100)
    target = verification.target
    assert len(verification.target_audio) == len(target.audio) - target.onset_index
    assert abs(target.onset_index - len(lead_in)) < 0.01 * SAMPLE_RATE
    assert len(verification.rendered_audio) == len(verification.target_audio)
    assert verification.rendered is not None
    assert [score.name for score in verification.scores] == [name for name, _ in METRICS]
    distance = verification.scores[0]
    assert distance.limit < distance.floor
    assert distance.fit < distance.limit  # the same audio, up to the render being cut at the target length
    assert verification.quality == distance.position and verification.quality > 0.95


def test_a_silent_render_is_not_scored(bundled_notes):
    source = next(path for path in bundled_notes if path.name == "piano_55_100.wav")
    verification = verify_fit(bright_patch(55, level=0.0), source, midi_note=55, velocity=100)
    assert verification.target.f0_hz > 0.0 and len(verification.rendered_audio) == len(verification.target_audio)
    assert verification.rendered is None and verification.scores == [] and verification.quality is None


def test_a_missing_source_raises_an_input_error_naming_it(tmp_path):
    with pytest.raises(InputError, match="gone.wav"):
        verify_fit(bright_patch(60), tmp_path / "gone.wav", midi_note=60, velocity=100)
