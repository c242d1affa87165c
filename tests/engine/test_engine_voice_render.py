"""Whole-voice rendering: render_note against the NumPy twin, the Bessel spectrum, and all 32 algorithms."""

import engine_reference as reference
import numpy as np
import pytest

from wifm_synth.engine import render_note
from wifm_synth.errors import InputError
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch, Pitch
from wifm_synth.voice.spectrum import harmonic_spectrum
from wifm_synth.voice.topology import Topology

RATE = 48000
HOLD = Envelope(segments=[(0.0, 0.0)], release_s=1.0)  # full level from the first sample


def two_operator_patch(beta=1.7, ratio=1.0, **carrier_fields) -> Patch:
    return Patch(operators=[
        Operator(level=0.25, modulators=[1], envelope=Envelope([(0.02, 0.0), (0.3, -6.0), (1.0, -20.0)], 0.2),
                 **carrier_fields),
        Operator(ratio=ratio, level=beta, carrier=False, envelope=Envelope([(0.005, 0.0), (0.4, -9.0)], 0.3),
                 velocity_sensitivity=0.5),
    ], pitch=Pitch(reference_note=57, reference_velocity=100, tune_cents=-3.5))


VOICES = {
    "fitter 2-op": (two_operator_patch(), 57, 100),
    "velocity + key scaling": (two_operator_patch(key_level_db_per_octave=-3.0, rate_scaling=0.5), 69, 64),
    "feedback + fixed + detune": (Patch(operators=[
        Operator(level=0.3, modulators=[1, 2], detune_cents=7.0),
        Operator(ratio=2.0, level=0.8, carrier=False, feedback=1.3),
        Operator(fixed_hz=310.0, level=0.4, carrier=False),
    ]), 60, 110),
    "feedback on a modulated operator": (Patch(operators=[
        Operator(level=0.3, modulators=[1]),
        Operator(ratio=1.5, level=1.1, carrier=False, modulators=[2], feedback=0.9),
        Operator(ratio=3.0, level=0.6, carrier=False, feedback=1.7),
    ]), 55, 100),
    "vibrato + tremolo": (Patch(operators=[Operator(level=0.5, modulators=[1]), Operator(level=1.0, carrier=False)],
                                lfo=Lfo(rate_hz=6.0, delay_s=0.2, pitch_depth_cents=30.0, amp_depth_db=4.0)), 64, 90),
}


@pytest.mark.parametrize("name", VOICES)
def test_render_note_matches_the_numpy_twin(name):
    patch, note, velocity = VOICES[name]
    hold_s, tail_s = 0.31, 0.1  # release lands inside a block
    rendered = render_note(patch, note, velocity, hold_s=hold_s, tail_s=tail_s, sample_rate=RATE)
    expected = reference.render_voice(patch, note, velocity, len(rendered), round(hold_s * RATE), RATE)
    assert np.max(np.abs(rendered)) > 0.05
    np.testing.assert_allclose(rendered, expected, atol=1e-5 * np.max(np.abs(expected)))  # −100 dB


def test_two_operator_tone_has_the_bessel_line_spectrum():
    beta, ratio = 2.2, 2.0
    patch = Patch(operators=[Operator(level=0.5, modulators=[1], envelope=HOLD),
                             Operator(ratio=ratio, level=beta, carrier=False, envelope=HOLD)],
                  pitch=Pitch(reference_note=69))
    f0 = 440.0
    tone = render_note(patch, 69, 100, hold_s=1.0, tail_s=0.0, sample_rate=RATE)
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone)))) * 2 / np.sum(np.hanning(len(tone)))
    bins = np.round(f0 * np.arange(1, 21) / (RATE / len(tone))).astype(int)
    expected, _ = harmonic_spectrum(beta, 1, int(ratio), 20)
    np.testing.assert_allclose(spectrum[bins], 0.5 * expected, atol=2e-4)
    assert spectrum[bins].max() > 0.1


@pytest.mark.parametrize("algorithm", range(1, 33))
def test_every_dx7_algorithm_renders_its_routing(algorithm):
    routing = Topology.from_algorithm(algorithm)
    operators = [Operator(ratio=float(index + 1), level=0.2 if routing.carriers[index] else 0.9,
                          feedback=0.8 if routing.allows_feedback(index) else 0.0,
                          envelope=Envelope([(0.003, 0.0), (0.5, -10.0)], 0.05)) for index in range(6)]
    patch = Patch(operators=operators, algorithm=algorithm)
    rendered = render_note(patch, 60, 100, hold_s=0.05, tail_s=0.02, sample_rate=RATE)
    expected = reference.render_voice(patch, 60, 100, len(rendered), round(0.05 * RATE), RATE)
    np.testing.assert_allclose(rendered, expected, atol=1e-5)
    # With every modulator silenced, the output is exactly the carriers' sines: count them.
    silent = Patch(operators=[Operator(ratio=op.ratio, level=op.level if routing.carriers[i] else 0.0,
                                       envelope=HOLD) for i, op in enumerate(operators)], algorithm=algorithm)
    tone = render_note(silent, 69, 100, hold_s=0.1, tail_s=0.0, sample_rate=RATE)
    spectrum = np.abs(np.fft.rfft(tone)) * 2 / len(tone)
    partials = [k for k in range(1, 7) if spectrum[round(440 * k * len(tone) / RATE)] > 0.1]
    assert partials == [index + 1 for index in range(6) if routing.carriers[index]]


def test_render_note_validates_its_arguments():
    patch = VOICES["fitter 2-op"][0]
    with pytest.raises(InputError, match="note"):
        render_note(patch, 128)
    with pytest.raises(InputError, match="velocity"):
        render_note(patch, 60, velocity=0)
    with pytest.raises(InputError, match="hold_s"):
        render_note(patch, 60, hold_s=-1.0)
    with pytest.raises(InputError, match="Patch"):
        render_note("piano.json", 60)


@pytest.mark.parametrize("sample_rate", [22050, 44100, 96000])
def test_other_sample_rates_match_the_twin(sample_rate):
    patch, note, velocity = VOICES["feedback on a modulated operator"]
    rendered = render_note(patch, note, velocity, hold_s=0.1, tail_s=0.05, sample_rate=sample_rate)
    expected = reference.render_voice(patch, note, velocity, len(rendered), round(0.1 * sample_rate), sample_rate)
    np.testing.assert_allclose(rendered, expected, atol=1e-5 * np.max(np.abs(expected)))
