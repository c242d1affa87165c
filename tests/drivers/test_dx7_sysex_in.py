"""DX7 SysEx received while playing (drivers/dx7_sysex_in.py through the MIDI pump's forward_message)."""

import numpy as np
import pytest

from tests.formats.dx7_builders import hand_made_voice
from wifm_synth.drivers.midi_in import forward_message
from wifm_synth.engine import Synth
from wifm_synth.formats.dx7_bank import bank_from_syx
from wifm_synth.formats.dx7_sysex import Dx7Voice, write_cartridge, write_single

RATE = 48000


def _synth(tmp_path):
    cartridge = [Dx7Voice.init_voice().with_name(f"V{index}") for index in range(32)]
    (tmp_path / "cart.syx").write_bytes(write_cartridge(cartridge))
    return Synth(bank_from_syx(tmp_path / "cart.syx"), RATE, polyphony=8)


def _note(synth, key=69, frames=RATE // 4):
    synth.send(synth.frame, 0x90, key, 100)
    audio = synth.render(frames)
    synth.send(synth.frame, 0x80, key, 0)
    synth.render(RATE // 4)
    return audio


def _spectrum(audio):
    return np.abs(np.fft.rfft(audio[:, 0] if audio.ndim == 2 else audio))


def test_a_single_voice_dump_changes_the_next_note_of_its_channel(tmp_path):
    synth = _synth(tmp_path)
    before = _note(synth)
    bright = Dx7Voice.init_voice().with_operator(2, output_level=90, frequency_coarse=3)
    assert forward_message(synth, list(write_single(bright)), synth.frame) is None
    synth.render(64)
    after = _note(synth)
    assert synth.compiled.patches[0].operators[1].level > 1.0
    # The new voice has sidebands the plain sine had none of.
    assert _spectrum(after)[1000:].sum() > 10 * _spectrum(before)[1000:].sum()


def test_a_note_sounding_when_the_dump_arrives_goes_on(tmp_path):
    synth = _synth(tmp_path)
    synth.send(synth.frame, 0x90, 69, 100)
    synth.render(RATE // 10)
    forward_message(synth, list(write_single(hand_made_voice())), synth.frame)
    assert np.abs(synth.render(RATE // 10)).max() > 0.005  # output level 77 on the new voice: quiet, not cut


def test_a_parameter_change_applies_to_the_channel_voice(tmp_path):
    synth = _synth(tmp_path)
    loud = _note(synth)
    # Operator 1 output level (unpacked byte 5 * 21 + 16 = 121) from 99 down to 70: 29 steps of 0.75 dB.
    forward_message(synth, [0xF0, 0x43, 0x10, 0x00, 121, 70, 0xF7], synth.frame)
    synth.render(64)
    quiet = _note(synth)
    assert 20 * np.log10(np.abs(quiet).max() / np.abs(loud).max()) == pytest.approx(-29 * 0.75, abs=0.5)


def test_a_cartridge_dump_replaces_programs_0_to_31(tmp_path):
    synth = _synth(tmp_path)
    voices = [Dx7Voice.init_voice().with_name(f"NEW {index}") for index in range(32)]
    forward_message(synth, list(write_cartridge(voices)), synth.frame)
    assert [patch.name for patch in synth.compiled.patches][:3] == ["NEW 0", "NEW 1", "NEW 2"]


def test_a_broken_dump_is_a_notice(tmp_path):
    synth = _synth(tmp_path)
    notice = forward_message(synth, list(write_single(hand_made_voice()))[:40] + [0xF7], synth.frame)
    assert notice is not None and notice.startswith("SysEx ignored")
