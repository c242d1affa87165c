import copy
import re
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from wifm_synth.drivers.render_midi import (
    MAX_TAIL_S,
    render_midi_command,
    render_midi_file,
)
from wifm_synth.drivers.wav import AudioFormat
from wifm_synth.engine import Synth
from wifm_synth.errors import MidiFileError, OutputError
from wifm_synth.formats.bank_json import Bank, load_bank

BANKS = Path(__file__).resolve().parent.parent / "data" / "banks"
TEST_BANK = BANKS / "test_bank.json"
RATE = 48000
TICKS_PER_BEAT = 480  # at the default 120 bpm one beat is 0.5 s


def write_song(path: Path, notes: list[tuple[int, float, float, int]], programs: dict[int, int] | None = None,
               end_s: float | None = None) -> Path:
    """Type 1 file: ``notes`` are (channel, start_s, length_s, key); one track per channel."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)]))
    channels = sorted({note[0] for note in notes} | set(programs or {}))
    for channel in channels:
        events = [(0, mido.Message("program_change", channel=channel, program=program))
                  for c, program in (programs or {}).items() if c == channel]
        for c, start, length, key in notes:
            if c == channel:
                on, off = round(start * 2 * TICKS_PER_BEAT), round((start + length) * 2 * TICKS_PER_BEAT)
                events.append((on, mido.Message("note_on", channel=c, note=key, velocity=100)))
                events.append((off, mido.Message("note_off", channel=c, note=key)))
        if end_s is not None:
            events.append((round(end_s * 2 * TICKS_PER_BEAT), mido.MetaMessage("marker", text="end")))
        track, now = mido.MidiTrack(), 0
        for at, message in sorted(events, key=lambda event: event[0]):
            track.append(message.copy(time=at - now))
            now = at
        midi.tracks.append(track)
    midi.save(path)
    return path


def rms_db(audio: np.ndarray) -> float:
    return 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-30)


@pytest.fixture(scope="module")
def bank() -> Bank:
    return load_bank(TEST_BANK)


def test_render_has_sound_where_notes_are_and_silence_after(tmp_path, bank):
    song = write_song(tmp_path / "song.mid", [(0, 0.5, 0.5, 60), (1, 1.5, 0.25, 40)], programs={1: 33}, end_s=2.0)
    notices = []
    summary = render_midi_file(bank, song, tmp_path / "out.wav", progress=False, notify=notices.append)
    audio, rate = soundfile.read(tmp_path / "out.wav", always_2d=True)
    assert rate == RATE and audio.shape[1] == 2
    assert 2.0 <= len(audio) / RATE <= 2.0 + MAX_TAIL_S
    assert summary["seconds_audio"] == pytest.approx(len(audio) / RATE, abs=1e-3)
    assert np.all(audio[: RATE // 2] == 0.0)  # nothing before the first note
    assert rms_db(audio[int(0.55 * RATE): RATE]) > -40  # first note
    assert rms_db(audio[int(1.55 * RATE): int(1.75 * RATE)]) > -40  # bass note
    assert rms_db(audio[-RATE // 20:]) < -80  # rendered until the voices died away
    assert summary["notes"] == 2 and summary["events"] == 5 and summary["channels"] == [1, 2]
    assert summary["peak_voices"] >= 1 and notices == [] and summary["notices"] == []


def test_chunked_render_equals_one_engine_pass(tmp_path, bank):
    # Chords across chunk boundaries: the file render must match feeding the engine everything at once.
    notes = [(channel, 0.1 * step + 0.03 * channel, 0.3, 48 + 5 * channel + step)
             for channel in range(3) for step in range(12)]
    song = write_song(tmp_path / "chords.mid", notes, end_s=1.5)
    summary = render_midi_file(bank, song, tmp_path / "out.wav", progress=False, notify=lambda message: None)
    from_file, _ = soundfile.read(tmp_path / "out.wav", always_2d=True)

    synth = Synth(bank, sample_rate=RATE)
    for message_time, message in _absolute(mido.MidiFile(song)):
        data = message.bytes()
        synth.send(round(message_time * RATE), data[0], data[1], data[2] if len(data) > 2 else 0)
    direct = synth.render(len(from_file)).astype(np.float64)
    assert summary["peak_dbfs"] < 0
    np.testing.assert_allclose(from_file, direct, atol=2.0 ** -22)  # 24-bit quantisation


def _absolute(midi: mido.MidiFile):
    seconds = 0.0
    for message in midi:
        seconds += message.time
        if not message.is_meta:
            yield seconds, message


def test_drum_channel_without_drums_gives_one_notice(tmp_path, bank):
    song = write_song(tmp_path / "drums.mid", [(9, 0.0, 0.2, 36), (9, 0.3, 0.2, 38), (0, 0.0, 0.2, 60)])
    notices = []
    render_midi_file(bank, song, tmp_path / "out.wav", progress=False, notify=notices.append)
    assert len(notices) == 1 and notices[0].startswith("drums.mid: channel 10 (drums)") and "\n" not in notices[0]
    with_drums = Bank(programs=bank.programs, name="drummed", drums=(0, 33), patches=bank.patches)
    notices.clear()
    render_midi_file(with_drums, song, tmp_path / "out.wav", progress=False, notify=notices.append)
    assert notices == []


def test_unknown_program_gives_a_notice(tmp_path, bank):
    song = write_song(tmp_path / "program.mid", [(2, 0.0, 0.3, 60)], programs={2: 90})
    notices = []
    render_midi_file(bank, song, tmp_path / "out.wav", progress=False, notify=notices.append)
    assert len(notices) == 1
    assert notices == [("program.mid: bank 0 program 90 (channel 3) is not in test_bank; "
                        "playing bank 0 program 33 'bass' instead")]


def test_program_notices_follow_bank_select_once_per_program(tmp_path, bank):
    messages = [mido.Message("program_change", channel=2, program=90),
                mido.Message("program_change", channel=4, program=90),
                mido.Message("control_change", channel=0, control=0, value=1),
                mido.Message("control_change", channel=0, control=32, value=2),
                mido.Message("program_change", channel=0, program=33),
                mido.Message("program_change", channel=9, program=5),  # drum kit select: not a program
                mido.Message("program_change", channel=1, program=33),
                mido.Message("note_on", channel=1, note=60, velocity=90, time=100),
                mido.Message("note_off", channel=1, note=60, time=100)]
    song = tmp_path / "programs.mid"
    mido.MidiFile(type=0, tracks=[mido.MidiTrack(messages)]).save(song)
    notices = []
    render_midi_file(bank, song, tmp_path / "out.wav", progress=False, notify=notices.append)
    assert notices == [
        "programs.mid: bank 0 program 90 (channels 3, 5) is not in test_bank; playing bank 0 program 33 'bass' instead",
        "programs.mid: bank 130 program 33 (channel 1) is not in test_bank; playing bank 0 program 0 'keys' instead"]
    notices.clear()  # a single patch plays every program
    render_midi_file(bank.patches["patches/fm_bass.json"], song, tmp_path / "out.wav", progress=False,
                     notify=notices.append)
    assert notices == []


def test_patch_file_as_instrument_and_command_summary(tmp_path):
    song = write_song(tmp_path / "one.mid", [(0, 0.0, 0.3, 64)])
    summary = render_midi_command(BANKS / "patches" / "fm_bass.json", song, tmp_path / "one.wav", sample_rate=44100)
    audio, rate = soundfile.read(tmp_path / "one.wav", always_2d=True)
    assert rate == 44100 and audio.shape == (summary["frames"], 2)
    assert rms_db(audio[: 44100 // 4]) > -40


@pytest.mark.parametrize("content", [b"", b"MThd\x00\x00\x00\x06\x00\x01", b"RIFF....WAVEfmt "])
def test_bad_midi_writes_nothing(tmp_path, bank, content):
    (tmp_path / "bad.mid").write_bytes(content)
    (tmp_path / "keep.wav").write_bytes(b"previous render")
    with pytest.raises(MidiFileError, match="bad.mid: "):
        render_midi_file(bank, tmp_path / "bad.mid", tmp_path / "keep.wav", progress=False)
    with pytest.raises(MidiFileError):
        render_midi_file(bank, tmp_path / "bad.mid", tmp_path / "new.wav", progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.mid", "keep.wav"]
    assert (tmp_path / "keep.wav").read_bytes() == b"previous render"


def test_note_free_song_and_missing_output_folder(tmp_path, bank):
    silent = write_song(tmp_path / "silent.mid", [], programs={0: 0})
    with pytest.raises(MidiFileError, match="silent.mid: has no notes to render"):
        render_midi_file(bank, silent, tmp_path / "out.wav", progress=False)
    song = write_song(tmp_path / "song.mid", [(0, 0.0, 0.1, 60)])
    with pytest.raises(OutputError, match="no_such_folder: output folder does not exist"):
        render_midi_file(bank, song, tmp_path / "no_such_folder" / "out.wav", progress=False)
    assert not (tmp_path / "out.wav").exists()


def test_event_floods_larger_than_the_engine_ring_still_render(tmp_path, bank):
    # 40 000 controller messages at frame 0, more than the event ring holds at once.
    messages = [mido.Message("control_change", control=11, value=i % 128) for i in range(40_000)]
    # The note starts at frame 4200, off the 64-frame grid and just past where a chunk that ended off
    # the grid would leave the engine (the first full chunk after the flood)
    note_tick = 84
    messages += [mido.Message("note_on", note=60, velocity=100, time=note_tick),
                 mido.Message("note_off", note=60, time=240)]
    song = tmp_path / "flood.mid"
    mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT, tracks=[mido.MidiTrack(messages)]).save(song)
    summary = render_midi_file(bank, song, tmp_path / "out.wav", progress=False)
    audio, _ = soundfile.read(tmp_path / "out.wav", always_2d=True)
    assert summary["events"] == 40_002
    start = note_tick * RATE // (2 * TICKS_PER_BEAT)
    assert np.all(audio[:start] == 0.0) and rms_db(audio[start:start + RATE // 10]) > -50
    # the flood's net effect is its last message; the note after it must sound as if that came alone
    plain = tmp_path / "plain.mid"
    mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT,
                  tracks=[mido.MidiTrack(messages[39_999:])]).save(plain)
    render_midi_file(bank, plain, tmp_path / "plain.wav", progress=False)
    plain_audio, _ = soundfile.read(tmp_path / "plain.wav", always_2d=True)
    common = min(len(audio), len(plain_audio))  # chunks (and so where rendering stops) fall differently
    np.testing.assert_array_equal(audio[:common], plain_audio[:common])


def test_overloud_render_is_limited_below_full_scale_with_a_notice(tmp_path, bank):
    loud = copy.deepcopy(bank.patches["patches/fm_bass.json"])
    loud.operators[0].level = 8.0
    song = write_song(tmp_path / "loud.mid", [(0, 0.0, 0.3, 40)])
    for name, audio_format in (("loud.wav", None), ("float.wav", AudioFormat("WAV", "FLOAT"))):
        notices = []
        summary = render_midi_file(loud, song, tmp_path / name, progress=False, notify=notices.append,
                                   audio_format=audio_format)
        audio, _ = soundfile.read(tmp_path / name, always_2d=True)
        assert summary["peak_before_limiting_dbfs"] > 0 and summary["limited_samples"] > 0
        assert summary["peak_dbfs"] <= 0 and np.max(np.abs(audio)) <= 1.0  # float files too
        assert np.mean(np.abs(audio) > 0.95) > 0.01  # the loud part is squeezed into the last dB, not lost
        assert len(notices) == 1
        assert re.fullmatch(rf"{name.replace('.', '[.]')}: output limited on {summary['limited_samples']} samples "
                            rf"\(peak before limiting \+\d+\.\d dBFS\); lower CC7 volumes or velocities, "
                            rf"or use --gain/--normalize", notices[0])


def test_a_gm_or_gs_reset_in_the_song_returns_channels_to_power_on(tmp_path, bank):
    def song(path: Path, reset: bytes | None) -> Path:
        midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
        track = mido.MidiTrack([mido.Message("program_change", channel=0, program=33),
                                mido.Message("control_change", channel=0, control=7, value=30)])
        if reset is not None:
            track.append(mido.Message("sysex", data=reset[1:-1], time=TICKS_PER_BEAT))
        track += [mido.Message("note_on", note=60, velocity=100, time=TICKS_PER_BEAT),
                  mido.Message("note_off", note=60, time=TICKS_PER_BEAT)]
        midi.tracks.append(track)
        midi.save(path)
        return path

    from wifm_synth.midi import GM_SYSTEM_ON, GS_RESET

    renders = {}
    for name, reset in (("none", None), ("gm", GM_SYSTEM_ON), ("gs", GS_RESET)):
        render_midi_file(bank, song(tmp_path / f"{name}.mid", reset), tmp_path / f"{name}.wav", progress=False,
                         notify=lambda message: None)
        renders[name] = soundfile.read(tmp_path / f"{name}.wav", always_2d=True)[0]
    plain = tmp_path / "plain.mid"
    write_song(plain, [(0, 1.0, 0.5, 60)])
    render_midi_file(bank, plain, tmp_path / "plain.wav", progress=False, notify=lambda message: None)
    power_on = soundfile.read(tmp_path / "plain.wav", always_2d=True)[0]
    length = min(len(power_on), len(renders["gm"]), len(renders["gs"]))
    # after the reset the note plays program 0 at full volume, as from power-on
    np.testing.assert_allclose(renders["gm"][:length], power_on[:length], atol=1e-6)
    np.testing.assert_allclose(renders["gs"][:length], power_on[:length], atol=1e-6)
    assert rms_db(renders["none"]) < rms_db(power_on) - 10  # without it, bass at volume 30


def test_render_tuning_moves_the_pitch(tmp_path):
    from wifm_synth.cli import main

    first = BANKS / "patches" / "sine_pluck.json"
    pitches = []
    for a4_hz in ("440", "442"):
        out = tmp_path / f"a{a4_hz}.wav"
        assert main(["render", str(first), "--note", "A4", "--hold", "1", "--tail", "0", "--tuning", a4_hz,
                     "-o", str(out)]) == 0
        audio, rate = soundfile.read(out)
        audio = audio[rate // 4: rate // 4 + rate // 2]
        padded = 64 * len(audio)  # 0.03 Hz bins
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), padded))
        pitches.append(np.argmax(spectrum[: padded * 1000 // rate]) * rate / padded)
    assert 1200 * np.log2(pitches[1] / pitches[0]) == pytest.approx(7.85, abs=0.5)
    with pytest.raises(SystemExit) as refused:
        main(["render", str(first), "--note", "A4", "--tuning", "500", "-o", str(tmp_path / "x.wav")])
    assert refused.value.code == 2
