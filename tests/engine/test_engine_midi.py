"""One scripted event sequence per MIDI rule (FluidSynth is the reference behaviour)."""

from pathlib import Path

import numpy as np
import pytest

from wifm_synth.engine import Synth
from wifm_synth.engine.layout import (
    CHANNEL_BEND_RANGE,
    VOICE_CHANNEL,
    VOICE_KEY,
    VOICE_PATCH,
    VOICE_STAGE,
)
from wifm_synth.engine.state import FADING, FREE, HELD, RELEASED, SUSTAINED
from wifm_synth.errors import InputError
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch

RATE = 48000
NOTE_ON, NOTE_OFF, CC, PROGRAM, PRESSURE, BEND = 0x90, 0x80, 0xB0, 0xC0, 0xD0, 0xE0


def sine_patch(level=0.5, ratio=1.0, release_s=0.05, name="sine") -> Patch:
    envelope = Envelope(segments=[(0.0, 0.0)], release_s=release_s)
    return Patch(operators=[Operator(ratio=ratio, level=level, envelope=envelope, velocity_sensitivity=0.0)],
                 name=name, pitch=Pitch(reference_note=69))


def stages(synth: Synth, channel=None, key=None) -> list[int]:
    voices = synth.state.voice_ints
    mask = (voices[VOICE_STAGE] != FREE) & (voices[VOICE_STAGE] != FADING)  # stolen voices fading out don't play
    if channel is not None:
        mask &= voices[VOICE_CHANNEL] == channel
    if key is not None:
        mask &= voices[VOICE_KEY] == key
    return sorted(voices[VOICE_STAGE][mask].tolist())


def play(synth: Synth, events, frames: int) -> np.ndarray:
    for event in events:
        synth.send(*event)
    return synth.render(frames, dtype=np.float64)


def frequency(signal: np.ndarray) -> float:
    """Mean frequency from rising zero crossings (interpolated)."""
    rising = np.nonzero((signal[:-1] < 0) & (signal[1:] >= 0))[0]
    exact = rising + signal[rising] / (signal[rising] - signal[rising + 1])
    return RATE * (len(exact) - 1) / (exact[-1] - exact[0])


def test_note_on_with_velocity_zero_is_a_note_off():
    synth = Synth(sine_patch(), RATE, polyphony=8)
    play(synth, [(0, NOTE_ON, 60, 100)], 256)
    assert stages(synth) == [HELD]
    play(synth, [(256, NOTE_ON, 60, 0)], 64)
    assert stages(synth) == [RELEASED]


def test_restruck_key_releases_its_old_voice():
    synth = Synth(sine_patch(), RATE, polyphony=8)
    play(synth, [(0, NOTE_ON, 60, 100), (100, NOTE_ON, 60, 90)], 128)
    assert stages(synth, key=60) == [HELD, RELEASED]


def test_note_off_matches_channel_and_key_even_after_a_program_change():
    synth = Synth([(0, 0, 0, 127, 1, 127, sine_patch(name="a")), (0, 1, 0, 127, 1, 127, sine_patch(name="b"))],
                  RATE, polyphony=8)
    play(synth, [(0, NOTE_ON | 1, 60, 100), (0, NOTE_ON | 2, 60, 100), (10, PROGRAM | 1, 1, 0)], 64)
    play(synth, [(64, NOTE_OFF | 1, 60, 0)], 64)
    assert stages(synth, channel=1) == [RELEASED]
    assert stages(synth, channel=2) == [HELD]


def test_sustain_pedal_holds_released_keys_until_it_goes_up():
    synth = Synth(sine_patch(), RATE, polyphony=8)
    play(synth, [(0, NOTE_ON, 60, 100), (0, CC, 64, 127), (64, NOTE_OFF, 60, 0), (64, NOTE_ON, 64, 100)], 128)
    assert stages(synth) == [HELD, SUSTAINED]
    play(synth, [(128, CC, 64, 0)], 64)
    assert stages(synth, key=60) == [RELEASED]
    assert stages(synth, key=64) == [HELD]


def test_sostenuto_holds_only_the_keys_down_when_it_was_pressed():
    synth = Synth(sine_patch(), RATE, polyphony=8)
    play(synth, [(0, NOTE_ON, 60, 100), (10, CC, 66, 127), (20, NOTE_ON, 64, 100),
                 (30, NOTE_OFF, 60, 0), (30, NOTE_OFF, 64, 0)], 64)
    assert stages(synth, key=60) == [SUSTAINED]
    assert stages(synth, key=64) == [RELEASED]
    play(synth, [(64, CC, 66, 0)], 64)
    assert stages(synth, key=60) == [RELEASED]


def test_all_sound_off_silences_the_channel_at_once():
    synth = Synth(sine_patch(release_s=5.0), RATE, polyphony=8)
    play(synth, [(0, NOTE_ON, 60, 100), (0, NOTE_ON | 3, 62, 100)], 640)
    out = play(synth, [(640, CC, 120, 0), (640, CC | 3, 120, 0)], 128)
    assert stages(synth) == []
    assert np.all(out == 0.0)


def test_all_notes_off_respects_the_sustain_pedal():
    synth = Synth(sine_patch(), RATE, polyphony=8)
    play(synth, [(0, NOTE_ON, 60, 100), (0, NOTE_ON | 1, 60, 100), (0, CC | 1, 64, 127)], 64)
    play(synth, [(64, CC, 123, 0), (64, CC | 1, 123, 0)], 64)
    assert stages(synth, channel=0) == [RELEASED]
    assert stages(synth, channel=1) == [SUSTAINED]


def test_volume_expression_and_pan_scale_the_channel():
    def level(*controllers):
        synth = Synth(sine_patch(level=0.5), RATE, polyphony=4)
        out = play(synth, [(0, CC, number, value) for number, value in controllers] + [(0, NOTE_ON, 69, 100)], 4800)
        return np.max(np.abs(out[2400:]), axis=0)

    reference = level((7, 127))
    assert reference == pytest.approx([0.5 * np.sqrt(0.5)] * 2, rel=1e-4)  # equal-power centre
    assert level()[0] / reference[0] == pytest.approx((100 / 127) ** 2, rel=1e-4)  # CC7 default 100
    assert level((7, 127), (11, 64))[0] / reference[0] == pytest.approx((64 / 127) ** 2, rel=1e-4)
    hard_left = level((7, 127), (10, 0))
    assert hard_left[0] == pytest.approx(0.5, rel=1e-4) and hard_left[1] == pytest.approx(0.0, abs=1e-7)
    hard_right = level((7, 127), (10, 127))
    assert hard_right[1] == pytest.approx(0.5, rel=1e-4) and hard_right[0] == pytest.approx(0.0, abs=1e-7)


def test_pitch_bend_defaults_to_two_semitones_and_rpn_0_sets_the_range():
    def bent_hz(events):
        synth = Synth(sine_patch(), RATE, polyphony=4)
        out = play(synth, events + [(0, BEND, 127, 127), (0, NOTE_ON, 69, 100)], 9600)
        return frequency(out[:, 0])

    full_up = 8191 / 8192
    assert bent_hz([]) == pytest.approx(440 * 2 ** (2 * full_up / 12), rel=1e-5)
    rpn_twelve = [(0, CC, 101, 0), (0, CC, 100, 0), (0, CC, 6, 12), (0, CC, 38, 0)]
    assert bent_hz(rpn_twelve) == pytest.approx(440 * 2 ** (12 * full_up / 12), rel=1e-5)
    nrpn_then_data = [(0, CC, 99, 0), (0, CC, 98, 0), (0, CC, 6, 12)]
    assert bent_hz(nrpn_then_data) == pytest.approx(440 * 2 ** (2 * full_up / 12), rel=1e-5)


def test_reset_controllers_keeps_the_bend_range_and_releases_pedalled_notes():
    synth = Synth(sine_patch(), RATE, polyphony=4)
    play(synth, [(0, CC, 101, 0), (0, CC, 100, 0), (0, CC, 6, 7), (0, CC, 38, 50), (0, BEND, 0, 100),
                 (0, CC, 64, 127), (0, NOTE_ON, 60, 100), (10, NOTE_OFF, 60, 0)], 64)
    assert stages(synth) == [SUSTAINED]
    play(synth, [(64, CC, 121, 0)], 64)
    assert synth.state.channel_floats[CHANNEL_BEND_RANGE, 0] == pytest.approx(7.5)
    assert stages(synth) == [RELEASED]
    synth.send(128, NOTE_ON, 69, 100)
    out = synth.render(9600, dtype=np.float64)
    assert frequency(out[2000:, 0]) == pytest.approx(440.0, rel=1e-5)  # bend back at centre


@pytest.mark.parametrize("source", ["mod wheel", "channel pressure"])
def test_mod_wheel_and_channel_pressure_add_vibrato(source):
    synth = Synth(sine_patch(), RATE, polyphony=4)
    controller = (0, CC, 1, 127) if source == "mod wheel" else (0, PRESSURE, 127, 0)
    out = play(synth, [controller, (0, NOTE_ON, 69, 100)], RATE)[:, 0]
    # Frequency per 10 ms window swings ±50 cents around 440 Hz at the LFO rate.
    windows = [frequency(out[start:start + 480]) for start in range(0, RATE - 480, 480)]
    cents = 1200 * np.log2(np.array(windows) / 440)
    assert 40 < cents.max() < 51 and -51 < cents.min() < -40
    plain = Synth(sine_patch(), RATE, polyphony=4)
    assert frequency(play(plain, [(0, NOTE_ON, 69, 100)], 4800)[:, 0]) == pytest.approx(440, rel=1e-6)


def two_program_bank():
    return [(0, 0, 0, 127, 1, 127, sine_patch(ratio=1.0, name="p0")),
            (0, 5, 0, 59, 1, 127, sine_patch(ratio=2.0, name="p5 low")),
            (0, 5, 60, 127, 1, 63, sine_patch(ratio=3.0, name="p5 soft")),
            (0, 5, 60, 127, 64, 127, sine_patch(ratio=4.0, name="p5 loud")),
            (1, 9, 0, 127, 1, 127, sine_patch(ratio=5.0, name="b1 p9"))]


def playing_patch(synth: Synth, channel: int, key: int) -> str:
    voices = synth.state.voice_ints
    held = np.nonzero((voices[VOICE_STAGE] == HELD) & (voices[VOICE_CHANNEL] == channel) & (voices[VOICE_KEY] == key))
    return synth.compiled.patches[voices[VOICE_PATCH, held[0][0]]].name


def test_bank_select_and_program_change_pick_zones_by_key_and_velocity():
    synth = Synth(two_program_bank(), RATE, polyphony=16)
    play(synth, [(0, NOTE_ON, 40, 100), (0, PROGRAM | 1, 5, 0), (0, NOTE_ON | 1, 40, 100),
                 (0, NOTE_ON | 1, 70, 30), (0, NOTE_ON | 1, 72, 100),
                 (0, CC | 2, 0, 0), (0, CC | 2, 32, 1), (0, PROGRAM | 2, 9, 0), (0, NOTE_ON | 2, 50, 100)], 64)
    assert playing_patch(synth, 0, 40) == "p0"
    assert playing_patch(synth, 1, 40) == "p5 low"
    assert playing_patch(synth, 1, 70) == "p5 soft"
    assert playing_patch(synth, 1, 72) == "p5 loud"
    assert playing_patch(synth, 2, 50) == "b1 p9"  # bank = CC0 × 128 + CC32
    assert synth.notices() == []


def test_unknown_program_plays_the_nearest_one_with_a_notice():
    synth = Synth(two_program_bank(), RATE, polyphony=16)
    play(synth, [(0, PROGRAM | 3, 4, 0), (0, NOTE_ON | 3, 40, 100),
                 (0, CC | 4, 0, 7), (0, PROGRAM | 4, 9, 0), (0, NOTE_ON | 4, 40, 100)], 64)
    assert playing_patch(synth, 3, 40) == "p5 low"  # nearest program in bank 0
    assert playing_patch(synth, 4, 40) == "p0"  # bank 896 is unknown: bank 0 program 0
    notices = synth.notices()
    assert len(notices) == 1 and "channel 5" in notices[0] and "896:9" in notices[0] and "0:0" in notices[0]
    assert "more" in notices[0]
    assert synth.notices() == []


def test_a_single_patch_plays_every_program_without_a_notice():
    synth = Synth(sine_patch(), RATE, polyphony=4)
    out = play(synth, [(0, CC, 0, 3), (0, PROGRAM, 5, 0), (0, NOTE_ON, 60, 100)], 256)
    assert np.max(np.abs(out)) > 0.1 and synth.notices() == []


def test_drum_channel_is_silent_with_a_notice_unless_the_bank_has_drums():
    from wifm_synth.formats.bank_json import Bank, Program, Zone

    synth = Synth(sine_patch(), RATE, polyphony=4)
    out = play(synth, [(0, NOTE_ON | 9, 38, 100)], 256)
    assert np.all(out == 0.0) and stages(synth) == []
    assert synth.notices() == ["channel 10 (drums): the instrument has no drum program, its notes are silent"]
    zone = Zone(patch="kit.json", root_key=38)
    bank = Bank(programs=[Program(program=0, zones=[zone]), Program(program=0, bank=128, zones=[zone])],
                drums=(128, 0), patches={"kit.json": sine_patch(name="kit")})
    drums = Synth(bank, RATE, polyphony=4)
    assert np.max(np.abs(play(drums, [(0, NOTE_ON | 9, 38, 100)], 256))) > 0.1
    assert drums.notices() == []


def test_a_stolen_voice_fades_out_instead_of_clicking():
    synth = Synth(sine_patch(level=0.5), RATE, polyphony=1)
    out = play(synth, [(0, NOTE_ON, 60, 100), (4800, NOTE_ON, 64, 100)], 4800 + 512)[:, 0]
    steps = np.abs(np.diff(out))
    steady_step = steps[4000:4700].max()  # the held sine's own largest sample-to-sample change
    assert synth.stolen_voices == 1 and steps[4790:4900].max() < 1.5 * steady_step
    assert stages(synth) == [HELD] and synth.active_voices == 1  # the fade column is free again


def test_a_note_shorter_than_the_minimum_length_sounds_for_10_ms():
    envelope = Envelope(segments=[(0.02, 0.0)], release_s=0.05)  # a 20 ms attack: longer notes get louder
    patch = Patch(operators=[Operator(level=0.5, envelope=envelope, velocity_sensitivity=0.0)])

    def peak(note_off_frame):
        synth = Synth(patch, RATE, polyphony=4)
        return np.abs(play(synth, [(0, NOTE_ON, 60, 100), (note_off_frame, NOTE_OFF, 60, 0)], 4800)).max()

    ten_ms = peak(RATE // 100)
    assert peak(0) == pytest.approx(ten_ms, rel=0.05) and peak(RATE // 1000) == pytest.approx(ten_ms, rel=0.05)
    assert peak(RATE // 10) > 1.5 * ten_ms  # longer notes are untouched


def test_stealing_takes_released_then_sustained_then_the_oldest_never_the_newest():
    synth = Synth(sine_patch(release_s=5.0), RATE, polyphony=3)
    play(synth, [(0, NOTE_ON, 60, 100), (10, NOTE_ON, 61, 100), (20, NOTE_ON, 62, 100), (30, NOTE_OFF, 61, 0)], 64)
    play(synth, [(64, NOTE_ON, 63, 100)], 64)  # steals the released 61
    assert stages(synth, key=61) == [] and synth.stolen_voices == 1
    play(synth, [(128, CC, 64, 127), (128, NOTE_OFF, 62, 0), (130, NOTE_ON, 64, 100)], 64)  # steals sustained 62
    assert stages(synth, key=62) == [] and stages(synth, key=63) == [HELD]
    play(synth, [(192, NOTE_ON, 65, 100)], 64)  # all held: the oldest (60) goes
    assert stages(synth, key=60) == [] and stages(synth, key=65) == [HELD]
    play(synth, [(256, CC, 120, 0), (256, NOTE_ON, 70, 100), (256, NOTE_ON, 71, 100), (256, NOTE_ON, 72, 100),
                 (256, NOTE_ON, 73, 100)], 64)  # four notes in one frame, three voices: the fourth is dropped
    assert stages(synth, key=73) == [] and synth.dropped_notes == 1
    assert stages(synth) == [HELD, HELD, HELD]


def test_voices_free_themselves_below_minus_90_db():
    release_s = 0.1
    synth = Synth(sine_patch(level=1.0, release_s=release_s), RATE, polyphony=4)
    play(synth, [(0, NOTE_ON, 69, 100), (640, NOTE_OFF, 69, 0)], 640)
    out = synth.render(RATE, dtype=np.float64)[:, 0]
    alive = np.nonzero(out)[0][-1]
    # gain × (volume 100, centre pan) at the last sample: −90 dB reached 90/60 × release_s after note-off
    assert alive == pytest.approx(1.5 * release_s * RATE, abs=64)
    assert stages(synth) == []


def test_events_are_sample_accurate_and_late_events_apply_at_once():
    synth = Synth(sine_patch(), RATE, polyphony=4)
    synth.send(1000, NOTE_ON, 69, 100)
    out = synth.render(2048, dtype=np.float64)[:, 0]
    assert np.all(out[:1001] == 0.0) and out[1001] != 0.0  # the sine starts at phase 0 on frame 1000
    synth.send(10, NOTE_OFF, 69, 0)  # already past: applies at the next block
    synth.render(64)
    assert stages(synth) == [RELEASED]


def test_send_validates_and_reports_a_full_queue():
    synth = Synth(sine_patch(), RATE, polyphony=4, event_capacity=4)
    with pytest.raises(InputError, match="status"):
        synth.send(0, 0x20, 1, 2)
    with pytest.raises(InputError, match="data1"):
        synth.send(0, NOTE_ON, 128, 2)
    for frame in range(4):
        synth.send(frame, NOTE_ON, 60 + frame, 100)
    with pytest.raises(InputError, match="queue full"):
        synth.send(5, NOTE_ON, 70, 100)
    synth.render(64)
    synth.send(70, NOTE_ON, 70, 100)
    assert synth.queued_events == 1


def test_a_bank_file_plays_the_zone_its_model_names():
    from wifm_synth.formats.bank_json import load_instrument

    bank = load_instrument(Path(__file__).resolve().parents[1] / "data" / "banks" / "test_bank.json")
    synth = Synth(bank, RATE, polyphony=32)
    notes = [(program, key, velocity) for program in (0, 33, 5) for key, velocity in ((30, 40), (70, 40), (70, 120))]
    cases = [(channel, *note) for channel, note in enumerate(notes)]  # channels 0-8: one note each
    for channel, program, key, velocity in cases:
        synth.send(0, PROGRAM | channel, program, 0)
        synth.send(0, NOTE_ON | channel, key, velocity)
    assert np.max(np.abs(synth.render(4800))) > 0.01
    for channel, program, key, velocity in cases:
        expected_program, _ = bank.program_for(0, program)
        expected = bank.patch_for(expected_program.zone_for(key, velocity))
        voices = synth.state.voice_ints
        voice = np.nonzero((voices[VOICE_CHANNEL] == channel) & (voices[VOICE_STAGE] == HELD))[0]
        assert [synth.compiled.patches[voices[VOICE_PATCH, v]] for v in voice] == [expected]
