"""The player's controls in the engine: master gain and tuning (commands through the ring), the soft
pedal, channel and polyphonic aftertouch, the GM/GS reset, and swapping in another instrument while a
note sounds."""

from pathlib import Path

import engine_reference as reference
import numpy as np
import pytest

from wifm_synth.engine import Synth
from wifm_synth.engine.kernels import channel_gains
from wifm_synth.engine.layout import (
    CHANNEL_PROGRAM_ROW,
    CHANNEL_SUSTAIN,
    CHANNEL_VOLUME,
    ENGINE_INSTRUMENTS_LOADED,
    ENGINE_REFUSED_COMMANDS,
    VOICE_STAGE,
)
from wifm_synth.engine.state import FREE, RELEASED, default_program_row
from wifm_synth.engine.tables import compile_instrument
from wifm_synth.errors import InputError
from wifm_synth.formats.bank_json import load_instrument
from wifm_synth.midi import (
    CC_SOFT_PEDAL,
    CC_SUSTAIN,
    CC_VOLUME,
    CHANNEL_PRESSURE_STATUS,
    CONTROL_CHANGE,
    KEY_PRESSURE_STATUS,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
)
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch

TEST_BANK = Path(__file__).resolve().parents[1] / "data" / "banks" / "test_bank.json"

RATE = 48000
HOLD = Envelope(segments=[(0.0, 0.0)], release_s=0.2)


def sine(level=0.5, ratio=1.0) -> Patch:
    return Patch(operators=[Operator(level=level, ratio=ratio, envelope=HOLD)])


def two_operator(beta=2.0) -> Patch:
    return Patch(operators=[
        Operator(level=0.3, modulators=[1], envelope=Envelope([(0.01, 0.0), (0.3, -6.0)], 0.2)),
        Operator(ratio=2.0, level=beta, carrier=False, envelope=Envelope([(0.005, 0.0), (0.4, -9.0)], 0.3)),
    ])


def mono(synth: Synth, frames: int) -> np.ndarray:
    stereo = synth.render(frames, dtype=np.float64)
    left, right = channel_gains(100.0, 127.0, 64.0)
    return (stereo[:, 0] + stereo[:, 1]) / (left + right)


def dominant_hz(audio: np.ndarray) -> float:
    """Frequency of the strongest line, refined by the phase advance between two halves."""
    half = len(audio) // 2
    window = np.hanning(half)
    spectra = [np.fft.rfft(audio[start:start + half] * window) for start in (0, half)]
    peak = int(np.argmax(np.abs(spectra[0])))
    coarse = peak * RATE / half
    advance = np.angle(spectra[1][peak] / spectra[0][peak])  # radians over `half` samples
    expected = 2 * np.pi * coarse * half / RATE
    return (expected + (advance - expected + np.pi) % (2 * np.pi) - np.pi) * RATE / (2 * np.pi * half)


def test_tuning_and_soft_pedal_match_the_numpy_twin():
    patch = two_operator()
    synth = Synth(patch, sample_rate=RATE, polyphony=2, a4_hz=442.0)
    synth.send(0, CONTROL_CHANGE, CC_SOFT_PEDAL, 127)
    synth.send(0, NOTE_ON, 57, 100)
    synth.send(round(0.2 * RATE), NOTE_OFF, 57, 0)
    rendered = mono(synth, round(0.3 * RATE))
    expected = reference.render_voice(patch, 57, 100, len(rendered), round(0.2 * RATE), RATE, a4_hz=442.0, soft=True)
    np.testing.assert_allclose(rendered, expected, atol=1e-5 * np.max(np.abs(expected)))


def test_soft_pedal_acts_on_notes_struck_while_it_is_down():
    def note(pedal_down_before: bool) -> np.ndarray:
        synth = Synth(two_operator(), sample_rate=RATE, polyphony=2)
        if pedal_down_before:
            synth.send(0, CONTROL_CHANGE, CC_SOFT_PEDAL, 127)
        synth.send(0, NOTE_ON, 60, 100)
        synth.send(RATE // 10, CONTROL_CHANGE, CC_SOFT_PEDAL, 0 if pedal_down_before else 127)
        return mono(synth, RATE // 5)

    normal, soft = note(False), note(True)
    level_db = 20 * np.log10(np.sqrt(np.mean(soft ** 2)) / np.sqrt(np.mean(normal ** 2)))
    assert -5.0 < level_db < -3.0  # −4 dB on the carrier; the softer modulator moves the level a little
    spectrum = [np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) for audio in (normal, soft)]
    frequencies = np.fft.rfftfreq(len(normal), 1 / RATE)
    centroids = [np.sum(s * frequencies) / np.sum(s) for s in spectrum]
    assert centroids[1] < 0.9 * centroids[0], "the soft pedal should darken the tone"


def test_master_gain_ramps_to_its_level_and_tuning_moves_a_sounding_voice():
    plain, changed = (Synth(sine(), sample_rate=RATE, polyphony=2) for _ in range(2))
    for synth in (plain, changed):
        synth.send(0, NOTE_ON, 69, 100)
    change = RATE // 4
    changed.set_gain(-6.0, frame=change)
    changed.set_tuning(442.0, frame=change)
    before, after = mono(plain, RATE // 2), mono(changed, RATE // 2)
    np.testing.assert_array_equal(before[:change], after[:change])
    settled = slice(change + 128, None)
    rms_db = 20 * np.log10(np.sqrt(np.mean(after[settled] ** 2)) / np.sqrt(np.mean(before[settled] ** 2)))
    assert rms_db == pytest.approx(-6.0, abs=0.01)
    cents = 1200 * np.log2(dominant_hz(after[settled]) / dominant_hz(before[settled]))
    assert cents == pytest.approx(1200 * np.log2(442 / 440), abs=0.05)  # +7.85 cents


def test_master_settings_are_checked_and_the_engine_refuses_bad_values():
    synth = Synth(sine(), sample_rate=RATE, polyphony=2)
    for call, value in ((synth.set_gain, 61.0), (synth.set_gain, float("nan")), (synth.set_tuning, 300.0),
                        (synth.set_tuning, "442")):
        with pytest.raises(InputError):
            call(value)
    with pytest.raises(InputError):
        Synth(sine(), a4_hz=1000.0)
    from wifm_synth.engine.commands import COMMAND_SET_MASTER
    from wifm_synth.engine.layout import MASTER_A4_HZ
    synth._publish(0, COMMAND_SET_MASTER, MASTER_A4_HZ, int(np.float64(-1.0).view(np.int64)))
    synth.render(64)
    assert synth.state.engine[ENGINE_REFUSED_COMMANDS] == 1


def test_aftertouch_deepens_the_vibrato_of_its_channel_and_key():
    patch = Patch(operators=[Operator(level=0.5, envelope=HOLD)], lfo=Lfo(rate_hz=6.0, pitch_depth_cents=0.0))

    def played(*pressure_events) -> np.ndarray:
        synth = Synth(patch, sample_rate=RATE, polyphony=4)
        synth.send(0, NOTE_ON, 69, 100)
        synth.send(0, NOTE_ON, 72, 100)
        for status, data1, data2 in pressure_events:
            synth.send(0, status, data1, data2)
        return mono(synth, RATE // 2)

    plain = played()
    other_key = played((KEY_PRESSURE_STATUS, 64, 127))  # a key that is not down
    key = played((KEY_PRESSURE_STATUS, 69, 127))
    channel = played((CHANNEL_PRESSURE_STATUS, 127, 0))
    np.testing.assert_array_equal(plain, other_key)
    assert np.max(np.abs(key - plain)) > 0.1 and np.max(np.abs(channel - plain)) > 0.1
    assert np.max(np.abs(key - channel)) > 0.1  # the key's pressure leaves the other key alone


def test_reset_returns_every_channel_to_power_on_and_releases_its_notes():
    bank = load_instrument(TEST_BANK)
    synth = Synth(bank, sample_rate=RATE, polyphony=8)
    synth.send(0, PROGRAM_CHANGE, 33)
    synth.send(0, CONTROL_CHANGE | 3, CC_VOLUME, 20)
    synth.send(0, CONTROL_CHANGE, CC_SUSTAIN, 127)
    synth.send(0, NOTE_ON, 60, 100)
    synth.send(10, NOTE_OFF, 60, 0)  # held by the pedal
    synth.render(1024)
    state = synth.state
    assert state.channel_ints[CHANNEL_PROGRAM_ROW, 0] != default_program_row(state.program_table)
    assert (state.voice_ints[VOICE_STAGE] != FREE).sum() == 1 and not (state.voice_ints[VOICE_STAGE] == RELEASED).any()
    synth.reset()
    synth.render(64)
    assert (state.channel_ints[CHANNEL_PROGRAM_ROW] == default_program_row(state.program_table)).all()
    assert state.channel_ints[CHANNEL_VOLUME, 3] == 100 and state.channel_ints[CHANNEL_SUSTAIN, 0] == 0
    assert set(state.voice_ints[VOICE_STAGE].tolist()) <= {FREE, RELEASED}


def test_an_instrument_swaps_in_while_a_note_sounds():
    old, new = sine(0.5, ratio=1.0), sine(0.5, ratio=3.0)
    steady = Synth(old, sample_rate=RATE, polyphony=4)
    swapping = Synth(old, sample_rate=RATE, polyphony=4, loadable=True)
    for synth in (steady, swapping):
        synth.send(0, NOTE_ON, 69, 100)
    swap = RATE // 10
    swapping.load_instrument(compile_instrument(new), frame=swap)
    swapping.send(2 * swap, NOTE_ON, 57, 100)
    steady.send(2 * swap, NOTE_ON, 57, 100)
    with_swap, without = mono(swapping, RATE // 2), mono(steady, RATE // 2)
    assert swapping.state.engine[ENGINE_INSTRUMENTS_LOADED] == 1
    # until the new note the held note rings on exactly as if nothing was loaded
    np.testing.assert_array_equal(with_swap[:2 * swap], without[:2 * swap])
    new_note = with_swap[3 * swap:] - without[3 * swap:]  # the held note is the same in both
    assert dominant_hz(new_note) == pytest.approx(3 * 220.0, rel=1e-3)
    # the patch rows of the old instrument are reused once its notes end
    swapping.send(swapping.frame, NOTE_OFF, 69, 0)
    swapping.send(swapping.frame, NOTE_OFF, 57, 0)
    mono(swapping, RATE)
    for patch in (old, new, old):
        swapping.load_instrument(compile_instrument(patch))
        swapping.render(64)
    assert swapping.state.engine[ENGINE_INSTRUMENTS_LOADED] == 4


def test_an_instrument_load_that_does_not_fit_is_refused():
    synth = Synth(sine(), sample_rate=RATE, polyphony=2)  # not loadable: one patch row, in use
    with pytest.raises(InputError, match="patch rows are free"):
        synth.load_instrument(compile_instrument(sine(ratio=2.0)))
    loadable = Synth(sine(), sample_rate=RATE, polyphony=2, loadable=True)
    loadable.load_instrument(compile_instrument(sine(ratio=2.0)))
    with pytest.raises(InputError, match="still in progress"):
        loadable.load_instrument(compile_instrument(sine(ratio=3.0)))
    bank = load_instrument(TEST_BANK)
    with pytest.raises(InputError, match="room for"):
        Synth(sine(), polyphony=2).load_instrument(compile_instrument(bank))
