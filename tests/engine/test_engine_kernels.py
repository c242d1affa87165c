"""Each engine kernel against its plain NumPy twin (engine_reference.py)."""

import engine_reference as reference
import numpy as np
import pytest

from wifm_synth.engine import kernels
from wifm_synth.engine.kernels import tremolo, vibrato_cents
from wifm_synth.engine.layout import (
    CHANNEL_INT_FIELDS,
    CHANNEL_MOD_WHEEL,
    CHANNEL_PRESSURE,
)
from wifm_synth.engine.midi import resolve_program
from wifm_synth.engine.tables import compile_instrument
from wifm_synth.formats.bank_json import Bank, Program, Zone
from wifm_synth.midi import MIDI_CHANNELS
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch, PitchEnvelope

RNG = np.random.default_rng(7)
ENVELOPE = Envelope(segments=[(0.01, -3.0), (0.2, -12.0), (1.5, -40.0), (0.5, -20.0)], release_s=0.4)


def test_fast_sine_is_better_than_minus_120_db_everywhere():
    x = np.concatenate([np.linspace(-3, 3, 200_001), RNG.uniform(-1e4, 1e4, 10_000)])
    fast = np.array([kernels.sin_cycles(value) for value in x[::7]])
    assert np.max(np.abs(fast - np.sin(2 * np.pi * x[::7]))) < 1e-6


def test_held_envelope_follows_the_documented_piecewise_function():
    patch = Patch(operators=[Operator(envelope=ENVELOPE)])
    table = compile_instrument(patch).patch_table
    times = np.concatenate([np.linspace(0, 3, 3001), [0.01, 0.21, 1.71, 2.21, 10.0]])
    kernel = np.array([kernels.held_envelope(table, 0, 0, t)[0] for t in times])
    np.testing.assert_allclose(kernel, reference.held_envelope(ENVELOPE, times), rtol=1e-12, atol=1e-15)
    # attack is linear in amplitude, later segments linear in dB
    assert kernel[5] == pytest.approx(10 ** (-3 / 20) * 0.5)
    assert 20 * np.log10(kernels.held_envelope(table, 0, 0, 0.11)[0]) == pytest.approx(-7.5)


def test_key_level_points_interpolate_like_numpy_in_key_order():
    points = [(84.0, 6.0), (36.0, -12.0), (60.0, 0.0), (60.0, 2.0), (100.0, -30.0)]
    operators = [Operator(), Operator(key_levels=points, carrier=False)]
    patch = Patch(operators=[Operator(modulators=[1]), operators[1]])
    table = compile_instrument(patch).patch_table
    for operator in range(2):
        for key in [*range(128), 59.5, 60.0, 60.5]:
            assert kernels.key_points_db(table, 0, operator, float(key)) == pytest.approx(
                reference.key_points_db(patch.operators[operator], key), abs=1e-12)


@pytest.mark.parametrize("release_time", [None, 0.05, 0.3, 2.0])
def test_pitch_envelope_follows_its_numpy_twin(release_time):
    envelope = PitchEnvelope(start_cents=-300.0, stage_1_s=0.1, stage_1_cents=1200.0, stage_2_s=0.0,
                             stage_2_cents=400.0, stage_3_s=0.5, stage_3_cents=-50.0, release_cents=700.0,
                             release_cents_per_s=900.0)
    patch = Patch(operators=[Operator()], pitch_envelope=envelope)
    table = compile_instrument(patch).patch_table
    for t in [*np.linspace(0, 3, 601), 0.1, 0.6]:
        released = release_time is not None and t >= release_time
        kernel = kernels.pitch_envelope_cents(table, 0, t, release_time if released else -1.0)
        assert kernel == pytest.approx(reference.pitch_envelope_cents(patch, t, release_time), abs=1e-9)


def test_current_level_and_future_peak_bound_every_later_level():
    patch = Patch(operators=[Operator(envelope=ENVELOPE)])
    table = compile_instrument(patch).patch_table
    times = np.linspace(0, 3, 301)
    levels_db = 20 * np.log10(reference.held_envelope(ENVELOPE, times) + 1e-300)
    for index, t in enumerate(times):
        amplitude, future_peak_db = kernels.held_envelope(table, 0, 0, t)
        assert max(20 * np.log10(amplitude + 1e-300), future_peak_db) >= levels_db[index:].max() - 1e-9


def test_release_falls_60_db_per_release_time():
    patch = Patch(operators=[Operator(envelope=ENVELOPE)])
    table = compile_instrument(patch).patch_table
    release_time = 0.5
    start_db = 20 * np.log10(reference.held_envelope(ENVELOPE, release_time))
    times = release_time + np.linspace(0, 1, 11)
    kernel = np.array([kernels.released_envelope(table, 0, 0, start_db, t - release_time) for t in times])
    np.testing.assert_allclose(kernel, reference.released_envelope(ENVELOPE, release_time, times), rtol=1e-12)
    assert 20 * np.log10(kernel[4] / kernel[0]) == pytest.approx(-60.0)


def test_operator_kernel_matches_numpy():
    modulation = RNG.normal(0, 0.3, 64)
    out = np.empty(64)
    next_phase = kernels.render_operator(out, modulation, 50, 0.3, 0.0123, 0.2, 0.001)
    expected, expected_phase = reference.render_operator(modulation[:50], 0.3, 0.0123, 0.2, 0.2 + 0.001 * 50)
    np.testing.assert_allclose(out[:50], expected, atol=1e-7)
    assert next_phase == pytest.approx(expected_phase)


def test_feedback_kernel_matches_numpy():
    modulation = RNG.normal(0, 0.1, 64)
    out = np.empty(64)
    feedback = 2.5
    result = kernels.render_operator_feedback(out, modulation, 64, 0.7, 0.01, 0.5, 0.002, 0.8,
                                              0.5 * feedback / (2 * np.pi), 0.1, -0.2)
    expected, phase, history = reference.render_operator_feedback(
        modulation, 0.7, 0.01, 0.5, 0.5 + 0.002 * 64, 0.8, feedback, (0.1, -0.2))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert result[0] == pytest.approx(phase)
    np.testing.assert_allclose(result[1:], history, atol=1e-6)


@pytest.mark.parametrize("volume, expression, pan", [(100, 127, 64), (127, 127, 0), (64, 90, 127), (0, 127, 30)])
def test_channel_gains_match_volume_expression_and_equal_power_pan(volume, expression, pan):
    np.testing.assert_allclose(kernels.channel_gains(volume, expression, pan),
                               reference.channel_gains(volume, expression, pan), atol=1e-15)


@pytest.mark.parametrize("wave", range(6), ids=["sine", "triangle", "saw-down", "saw-up", "square", "s&h"])
def test_lfo_tremolo_and_vibrato_match_numpy(wave):
    patch = Patch(operators=[Operator()], lfo=Lfo(rate_hz=5.0, delay_s=0.3, pitch_depth_cents=20.0, amp_depth_db=6.0,
                                                  wave=wave, start_phase=0.3))
    table = compile_instrument(patch).patch_table
    channel_ints = np.zeros((CHANNEL_INT_FIELDS, MIDI_CHANNELS), dtype=np.int64)
    channel_ints[CHANNEL_MOD_WHEEL, 2] = 100
    channel_ints[CHANNEL_PRESSURE, 2] = 27
    for t in np.linspace(0, 1, 83):
        assert tremolo(table, 0, t) == pytest.approx(reference.tremolo(patch, t), abs=1e-7)
        for key_pressure in (0, 90):  # polyphonic aftertouch counts when stronger than the channel's
            assert vibrato_cents(table, 0, channel_ints, 2, key_pressure, t) == pytest.approx(
                reference.vibrato_cents(patch, t, mod_wheel=100, pressure=27, key_pressure=key_pressure), abs=1e-5)


def test_program_resolution_matches_the_bank_rule():
    zone = Zone(patch="a.json", root_key=60)
    bank = Bank(programs=[Program(program=p, bank=b, zones=[zone]) for b, p in [(0, 0), (0, 5), (0, 9), (2, 40)]],
                patches={"a.json": Patch(operators=[Operator()])})
    program_table = compile_instrument(bank).program_table
    for bank_number, program in [(0, 0), (0, 5), (0, 6), (0, 7), (0, 8), (0, 127), (2, 0), (2, 40), (1, 5), (7, 0)]:
        row, exact = resolve_program(program_table, bank_number, program)
        expected, expected_exact = bank.program_for(bank_number, program)
        assert tuple(program_table[row, :2]) == (expected.bank, expected.program)
        assert exact == expected_exact
