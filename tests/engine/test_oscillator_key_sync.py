"""Oscillator key sync (a DX7's OSC KEY SYNC): on, phases start at 0 at every note-on; off, the
operators run freely, so a note starts wherever an oscillator running since frame 0 has got to."""

import dataclasses

import engine_reference as reference
import numpy as np
import pytest

from wifm_synth.engine import Synth
from wifm_synth.formats.dx7_export import export_voice
from wifm_synth.formats.dx7_patch import compile_voice
from wifm_synth.formats.dx7_sysex import Dx7Voice
from wifm_synth.formats.patch_json import patch_from_dict, patch_to_dict
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch

RATE = 48000
NOTE_ON, NOTE_OFF = 0x90, 0x80
FULL = Envelope(segments=[(0.0, 0.0)], release_s=0.01)


def sine_patch(key_sync: bool) -> Patch:
    return Patch(operators=[Operator(ratio=1.0, level=0.5, envelope=FULL, velocity_sensitivity=0.0)],
                 pitch=Pitch(reference_note=69), oscillator_key_sync=key_sync)


def fm_patch(key_sync: bool) -> Patch:
    return Patch(operators=[
        Operator(level=0.3, modulators=[1, 2], detune_cents=7.0),
        Operator(ratio=2.0, level=0.8, carrier=False, feedback=1.3),
        Operator(fixed_hz=310.0, level=0.4, carrier=False),
    ], oscillator_key_sync=key_sync)


def mono(synth: Synth, frames: int) -> np.ndarray:
    """The voice's output (the default channel gains and centre pan taken back out)."""
    stereo = synth.render(frames, dtype=np.float64)
    left, right = reference.channel_gains(100.0, 127.0, 64.0)
    return (stereo[:, 0] + stereo[:, 1]) / (left + right)


def note_at(patch: Patch, note: int, frame: int, frames: int) -> np.ndarray:
    """The synth's output from ``frame`` on, with ``note`` struck at ``frame``."""
    synth = Synth(patch, RATE, polyphony=4)
    mono(synth, frame)
    synth.send(frame, NOTE_ON, note, 100)
    return mono(synth, frames)


@pytest.mark.parametrize("key_sync", [True, False])
def test_note_struck_late_matches_the_numpy_twin(key_sync):
    patch, note, start = fm_patch(key_sync), 61, 48000 + 7 * 64
    rendered = note_at(patch, note, start, 4096)
    expected = reference.render_voice(patch, note, 100, len(rendered), None, RATE, note_on_frame=start)
    assert np.max(np.abs(rendered)) > 0.05
    np.testing.assert_allclose(rendered, expected, atol=1e-6)
    if key_sync:  # the same as a note struck at frame 0
        np.testing.assert_allclose(rendered, note_at(patch, note, 0, 4096), atol=1e-9)


def test_key_sync_off_continues_the_oscillator_phase_across_two_notes():
    patch, hz = sine_patch(False), 440.0
    synth = Synth(patch, RATE, polyphony=4)
    synth.send(0, NOTE_ON, 69, 100)
    first = mono(synth, 1024)
    synth.send(1024, NOTE_OFF, 69, 0)
    mono(synth, 4096)  # the first note's release is long over
    second_start = 1024 + 4096
    synth.send(second_start, NOTE_ON, 69, 100)
    second = mono(synth, 1024)
    running = 0.5 * np.sin(2 * np.pi * hz * np.arange(second_start + 1024) / RATE)  # one free-running sine
    np.testing.assert_allclose(first, running[:1024], atol=1e-6)
    np.testing.assert_allclose(second, running[second_start:], atol=1e-6)
    synced = note_at(sine_patch(True), 69, second_start, 1024)
    np.testing.assert_allclose(synced, running[:1024], atol=1e-6)  # key sync on: from phase 0 again
    assert np.max(np.abs(synced - second)) > 0.1


@pytest.mark.parametrize("bit", [0, 1])
def test_dx7_oscillator_key_sync_survives_import_and_export(bit):
    voice = Dx7Voice.init_voice().with_values(oscillator_key_sync=bit)
    patch = compile_voice(voice)
    assert patch.oscillator_key_sync is bool(bit)
    assert export_voice(patch)[0].raw == voice.raw  # recognised as the stored voice
    fitted, _ = export_voice(dataclasses.replace(patch, metadata={}))  # exported by fitting
    assert fitted.voice_parameters()["oscillator_key_sync"] == bit
    assert patch_from_dict(patch_to_dict(patch)).oscillator_key_sync is bool(bit)


def test_files_without_the_field_keep_key_sync_on():
    document = patch_to_dict(sine_patch(False))
    del document["oscillator_key_sync"]
    assert patch_from_dict(document).oscillator_key_sync is True
