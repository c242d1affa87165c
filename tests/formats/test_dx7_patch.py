"""DX7 voice → native patch (formats/dx7_patch.py) and back (formats/dx7_export.py)."""

import math

import numpy as np
import pytest

from tests.formats.dx7_builders import hand_made_voice
from wifm_synth.engine import render_note
from wifm_synth.formats import dx7_patch as dx7
from wifm_synth.formats.dx7_export import export_voice, place_on_algorithm
from wifm_synth.formats.dx7_sysex import Dx7Voice
from wifm_synth.formats.patch_json import patch_from_dict
from wifm_synth.voice.patch import Envelope, Operator, Patch


def test_init_voice_is_one_sine_carrier_at_a_quarter_of_full_scale():
    patch = dx7.compile_voice(Dx7Voice.init_voice())
    assert patch.algorithm == 1 and patch.name == "INIT VOICE"
    first = patch.operators[0]
    assert first.carrier and first.ratio == 1.0 and first.level == pytest.approx(2 * dx7.CARRIER_GAIN)
    assert all(operator.level < 1e-3 for operator in patch.operators[1:])
    audio = render_note(patch, 69, velocity=100, hold_s=0.5, tail_s=0.0, sample_rate=48000)
    assert np.abs(audio[2000:20000]).max() == pytest.approx(0.25, rel=0.01)


def test_every_compiled_patch_is_a_valid_patch_file():
    for voice in (Dx7Voice.init_voice(), hand_made_voice()):
        patch = dx7.compile_voice(voice)
        assert patch_from_dict(patch.to_dict()).to_dict() == patch.to_dict()


def test_decays_fall_at_the_dx7_rate():
    """A decay is linear in dB on both sides: its duration is the level drop over the DX7's step per block."""
    operator = Dx7Voice.init_voice().with_operator(1, eg_rate_2=50, eg_level_2=50).operator(1)
    output = dx7.output_units(operator, 60, 100)
    reference = dx7.eg_level_units(99, output)
    segments = dx7.held_segments(operator, output, 0, reference)
    drop_units = reference - dx7.eg_level_units(50, output)
    blocks = math.ceil(drop_units * dx7.EG_UNITS_PER_LEVEL_UNIT / dx7.eg_increment(50, 0))
    assert segments[4][0] == pytest.approx(blocks * dx7.BLOCK / dx7.SAMPLE_RATE)
    assert segments[4][1] == pytest.approx(-drop_units * dx7.DB_PER_UNIT)


def test_feedback_halves_per_step_down():
    assert dx7.feedback_radians(0, 2.0) == 0.0
    assert dx7.feedback_radians(7, 2.0) == pytest.approx(2 * math.pi)
    assert dx7.feedback_radians(6, 2.0) == pytest.approx(math.pi)


def test_ratio_fixed_and_detune():
    voice = Dx7Voice.init_voice().with_operator(2, frequency_coarse=3, frequency_fine=50, detune=10)
    voice = voice.with_operator(3, oscillator_mode=1, frequency_coarse=2, frequency_fine=0)
    patch = dx7.compile_voice(voice)
    assert patch.operators[1].ratio == pytest.approx(4.5)
    assert patch.operators[1].detune_cents == pytest.approx(3 * dx7.DETUNE_CENTS_PER_STEP)
    assert patch.operators[2].fixed_hz == pytest.approx(100.0)


@pytest.mark.parametrize("voice", [Dx7Voice.init_voice(), hand_made_voice()], ids=["init", "hand-made"])
def test_an_unchanged_compiled_patch_exports_its_voice_exactly(voice):
    assert export_voice(dx7.compile_voice(voice)) == (voice, [])


def test_a_native_patch_exports_to_an_algorithm_holding_its_routing():
    envelope = Envelope(segments=[(0.01, 0.0), (0.5, -12.0)], release_s=0.3)
    patch = Patch(operators=[Operator(ratio=1.0, level=0.25, modulators=[1], envelope=envelope),
                             Operator(ratio=2.0, level=1.5, carrier=False, feedback=0.5, envelope=envelope)])
    _algorithm, slots, losses = place_on_algorithm(patch)
    assert not losses
    voice, losses = export_voice(patch)
    back = dx7.compile_voice(voice)
    carrier, modulator = back.operators[slots[0]], back.operators[slots[1]]
    assert carrier.carrier and not modulator.carrier and slots[1] in back.topology.modulators[slots[0]]
    assert modulator.ratio == pytest.approx(2.0)
    assert 20 * math.log10(modulator.level / 1.5) == pytest.approx(0.0, abs=0.8)
    assert 20 * math.log10(carrier.level / 0.25) == pytest.approx(0.0, abs=0.8)


def _envelope_gap_db(native_envelope, voice_operator) -> float:
    """Mean |dB difference| over 2 s between a native envelope and an exported operator's DX7 EG."""
    from wifm_synth.voice.envelope import envelope_levels_db

    times = np.linspace(0.001, 2.0, 2000)
    ends = np.cumsum([duration for duration, _ in native_envelope.segments])
    native = envelope_levels_db(times, ends, np.array([level for _, level in native_envelope.segments]))
    output = dx7.output_units(voice_operator, 60, 100)
    exported = dx7.held_eg_db(voice_operator, output, 0, dx7.eg_level_units(99, output), times)
    return float(np.mean(np.abs(np.maximum(native, -60) - np.maximum(exported, -60))))


def test_export_fits_the_eg_to_a_many_segment_envelope():
    """A 5-segment envelope (a pluck: fast attack, quick drop, slow tail) exports to 3 EG stages whose
    held curve stays within 1.5 dB of it on average (1.0 measured; the stage-per-segment mapping it
    starts from is 2.1 dB off)."""
    envelope = Envelope(segments=[(0.004, 0.0), (0.03, -6.0), (0.1, -14.0), (0.6, -24.0), (1.0, -40.0)],
                        release_s=0.3)
    patch = Patch(operators=[Operator(ratio=1.0, level=0.25, envelope=envelope)])
    voice, _ = export_voice(patch)
    assert _envelope_gap_db(envelope, voice.operator(1)) < 1.5


def test_held_eg_db_follows_the_compiled_segments():
    """The DX7 EG curve the export fits against is the one the compile turns into segments."""
    operator = hand_made_voice().operator(2)
    output = dx7.output_units(operator, 60, 100)
    reference = dx7.eg_level_units(99, output)
    segments = dx7.held_segments(operator, output, 0, reference)
    ends = np.cumsum([duration for duration, _ in segments])
    curve = dx7.held_eg_db(operator, output, 0, reference, ends)
    np.testing.assert_allclose(curve, [level for _, level in segments], atol=0.05)


@pytest.mark.parametrize("curves", [(0, 3), (1, 2), (2, 1), (3, 0), (1, 1)])
def test_key_level_points_play_the_dx7_curves_at_every_key(curves):
    """-LIN / -EXP / +EXP / +LIN on each side of a break point: the points are exact at every key."""
    operator = Dx7Voice.init_voice().with_operator(
        1, level_scaling_break_point=39, level_scaling_left_depth=80, level_scaling_right_depth=99,
        level_scaling_left_curve=curves[0], level_scaling_right_curve=curves[1], output_level=80).operator(1)
    points = dx7.key_level_points(operator)
    assert 2 <= len(points) <= 96
    reference = dx7.output_units(operator, 60, 100)
    expected = [(dx7.output_units(operator, key, 100) - reference) * dx7.DB_PER_UNIT for key in range(128)]
    played = np.interp(np.arange(128), [key for key, _ in points], [level for _, level in points])
    np.testing.assert_allclose(played, expected, atol=1e-9)
    assert played[20] != played[100]


def test_a_compiled_voice_plays_its_level_scaling_away_from_the_reference_key():
    """The engine's render two octaves below the break point is as much quieter as the DX7 curve says."""
    voice = Dx7Voice.init_voice().with_operator(1, level_scaling_break_point=39, level_scaling_left_depth=60,
                                                level_scaling_left_curve=0)
    patch = dx7.compile_voice(voice)
    operator = voice.operator(1)
    drop_db = (dx7.output_units(operator, 36, 100) - dx7.output_units(operator, 60, 100)) * dx7.DB_PER_UNIT
    assert drop_db < -10
    rendered = [np.sqrt(np.mean(render_note(patch, key, hold_s=0.5, tail_s=0.0)[4800:] ** 2)) for key in (36, 60)]
    assert 20 * np.log10(rendered[0] / rendered[1]) == pytest.approx(drop_db, abs=0.05)


def test_the_pitch_eg_compiles_to_the_pitch_envelope_and_exports_back():
    """Levels are 1/32 octave per table step, speeds 1/21.3 octave per second per rate step: a stage
    from level 4 (50: no offset) to level 1 (99: +127/32 octave) at rate 50 (41 steps/21.3 octave/s)."""
    voice = Dx7Voice.init_voice().with_values(pitch_eg_level_1=99, pitch_eg_rate_1=50, pitch_eg_level_2=30,
                                              pitch_eg_rate_2=70, pitch_eg_rate_4=40)
    envelope = dx7.compile_voice(voice).pitch_envelope
    assert envelope.start_cents == 0.0 and envelope.release_cents == 0.0
    assert envelope.stage_1_cents == pytest.approx(127 / 32 * 1200)
    assert envelope.stage_1_s == pytest.approx((127 / 32) / (41 / 21.3))
    assert envelope.stage_2_cents == pytest.approx(-20 / 32 * 1200)
    assert envelope.stage_3_cents == 0.0 and envelope.stage_3_s == pytest.approx(20 / 32 / (255 / 21.3))
    assert envelope.release_cents_per_s == pytest.approx(27 / 21.3 * 1200)
    patch = dx7.compile_voice(voice)
    patch.metadata = {}  # not the stored voice: exported by search
    exported, _ = export_voice(patch)
    parameters = exported.voice_parameters()
    assert [parameters[f"pitch_eg_level_{stage}"] for stage in (1, 2, 3, 4)] == [99, 30, 50, 50]
    assert [parameters[f"pitch_eg_rate_{stage}"] for stage in (1, 2, 4)] == [50, 70, 40]


def test_a_flat_pitch_eg_is_no_pitch_envelope():
    assert dx7.compile_voice(Dx7Voice.init_voice()).pitch_envelope == type(
        dx7.compile_voice(Dx7Voice.init_voice()).pitch_envelope)()


@pytest.mark.parametrize("dx7_wave, native_wave, start_phase", [(0, 1, 0.5), (1, 2, 0.0), (2, 3, 0.0), (3, 4, 0.5),
                                                                (4, 0, 0.5), (5, 5, 0.5)])
def test_lfo_waves_compile_and_export_back(dx7_wave, native_wave, start_phase):
    """Key sync starts the DX7 LFO half a cycle in; the native saws are the DX7's half a cycle on."""
    voice = Dx7Voice.init_voice().with_values(lfo_wave=dx7_wave, lfo_pitch_mod_depth=40, pitch_mod_sensitivity=3)
    patch = dx7.compile_voice(voice)
    assert (patch.lfo.wave, patch.lfo.start_phase) == (native_wave, start_phase)
    assert dx7.compile_losses(voice) == []
    free_running = dx7.compile_voice(voice.with_values(lfo_key_sync=0))
    assert free_running.lfo.start_phase == (start_phase + 0.5) % 1.0
    patch.metadata = {}
    assert export_voice(patch)[0].value("lfo_wave") == dx7_wave


def test_output_units_by_key_is_output_units_at_every_key():
    """The array form against the per-key form, over every curve pair and depths that saturate."""
    for left, right in [(0, 3), (1, 2), (2, 1), (3, 0), (1, 1), (2, 2)]:
        for output_level, depth, break_point in [(99, 99, 0), (80, 60, 39), (10, 99, 99), (50, 30, 60)]:
            operator = Dx7Voice.init_voice().with_operator(
                1, level_scaling_break_point=break_point, level_scaling_left_depth=depth,
                level_scaling_right_depth=depth, level_scaling_left_curve=left, level_scaling_right_curve=right,
                output_level=output_level, key_velocity_sensitivity=3).operator(1)
            assert dx7.output_units_by_key(operator, 90).tolist() == [
                dx7.output_units(operator, key, 90) for key in range(128)]
