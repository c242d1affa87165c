import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wifm_synth.errors import MidiFileError
from wifm_synth.formats.smf import read_midi_file

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def smf_bytes(file_type: int, division: int, tracks: list[bytes]) -> bytes:
    """A standard MIDI file assembled by hand (independent of mido's writer)."""
    header = b"MThd" + struct.pack(">IhhH", 6, file_type, len(tracks), division & 0xFFFF)
    return header + b"".join(b"MTrk" + struct.pack(">I", len(body)) + body for body in tracks)


END_OF_TRACK = b"\x00\xff\x2f\x00"


def mido_reference_frames(path, sample_rate: int) -> list[int]:
    """Channel-message frames from mido's own playback timing (float seconds), as an independent check."""
    seconds, frames = 0.0, []
    for message in mido.MidiFile(path):
        seconds += message.time
        if not message.is_meta and message.type != "sysex":
            frames.append(round(seconds * sample_rate))
    return frames


def test_type0_with_running_status(tmp_path):
    # Note-on C4, then running status: note-on E4, note-on C4 velocity 0 (a note-off), on channel 3.
    body = b"\x00\x93\x3c\x64" + b"\x60\x40\x50" + b"\x60\x3c\x00" + b"\x00\xb3\x40\x7f" + END_OF_TRACK
    path = tmp_path / "type0.mid"
    path.write_bytes(smf_bytes(0, 96, [body]))
    song = read_midi_file(path, sample_rate=48000)
    # 96 ticks per beat at the default 120 bpm: 0x60 = 96 ticks = 0.5 s = 24000 frames.
    assert song.frames.tolist() == [0, 24000, 48000, 48000]
    assert song.status.tolist() == [0x93, 0x93, 0x93, 0xB3]
    assert song.data1.tolist() == [60, 64, 60, 64]
    assert song.data2.tolist() == [100, 80, 0, 127]
    assert song.note_count == 2 and song.channels_used == [3] and not song.uses_drum_channel
    assert song.end_frame == 48000 and song.duration_s == 1.0


def test_type1_tempo_changes_in_any_track_apply_to_all(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                                       mido.MetaMessage("set_tempo", tempo=250_000, time=960)]))
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                                       mido.Message("note_off", note=60, time=1440),
                                       mido.Message("note_on", note=62, velocity=90, time=480)]))
    # A third track changes tempo again at tick 2400; the notes in track 2 must follow it.
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1_000_000, time=2400),
                                       mido.Message("note_off", channel=1, note=62, time=480)]))
    path = tmp_path / "tempo.mid"
    midi.save(path)
    song = read_midi_file(path, sample_rate=44100)
    # Events at ticks 0, 1440, 1920, 2880. Ticks 0..960 at 0.5 s/beat = 1 s, 960..2400 at 0.25 s/beat,
    # then 1 s/beat; 480 ticks per beat.
    beats = Fraction(1, 480)
    expected_seconds = [Fraction(0), 1 + 480 * beats / 4, 1 + 960 * beats / 4, 1 + 1440 * beats / 4 + 480 * beats]
    assert song.frames.tolist() == [round(s * 44100) for s in expected_seconds]
    assert song.frames.tolist() == mido_reference_frames(path, 44100)


def test_awkward_tempo_is_converted_exactly(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=96)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=333_333, time=0)]))
    midi.tracks.append(mido.MidiTrack(
        [mido.Message("note_on", note=40 + i, velocity=64, time=37 * i) for i in range(60)]))
    path = tmp_path / "awkward.mid"
    midi.save(path)
    song = read_midi_file(path, sample_rate=48000)
    ticks = np.cumsum(37 * np.arange(60))
    expected = [int(Fraction(int(t) * 333_333 * 48000, 96 * 1_000_000) + Fraction(1, 2)) for t in ticks]
    assert song.frames.tolist() == expected


def test_all_sixteen_channels_and_every_message_kind(tmp_path):
    messages = []
    for channel in range(16):
        messages += [mido.Message("program_change", channel=channel, program=channel * 3),
                     mido.Message("note_on", channel=channel, note=36 + channel, velocity=1 + channel * 8)]
    messages += [mido.Message("pitchwheel", channel=2, pitch=-8192), mido.Message("pitchwheel", channel=2, pitch=0),
                 mido.Message("pitchwheel", channel=2, pitch=8191), mido.Message("aftertouch", channel=4, value=77),
                 mido.Message("polytouch", channel=5, note=40, value=12),
                 mido.Message("control_change", channel=15, control=64, value=127)]
    path = tmp_path / "channels.mid"
    mido.MidiFile(type=0, tracks=[mido.MidiTrack(messages)]).save(path)
    song = read_midi_file(path)
    assert song.channels_used == list(range(16))
    assert song.uses_drum_channel and song.note_count == 16
    assert song.status[:32].tolist() == [kind | channel for channel in range(16) for kind in (0xC0, 0x90)]
    assert song.data1[:32:2].tolist() == [channel * 3 for channel in range(16)]
    assert song.data2[:32:2].tolist() == [0] * 16
    # Pitch bend is (LSB, MSB) of the 14-bit value, centre 8192 = (0, 64).
    assert list(zip(song.data1[32:35], song.data2[32:35])) == [(0, 0), (0, 64), (127, 127)]
    assert (song.status[35], song.data1[35], song.data2[35]) == (0xD4, 77, 0)
    assert (song.status[36], song.data1[36], song.data2[36]) == (0xA5, 40, 12)
    assert (song.status[37], song.data1[37], song.data2[37]) == (0xBF, 64, 127)


def test_sysex_is_kept_aside(tmp_path):
    path = tmp_path / "sysex.mid"
    track = mido.MidiTrack([mido.Message("sysex", data=[0x43, 0x00, 0x09], time=0),
                            mido.Message("note_on", note=60, velocity=100, time=96)])
    mido.MidiFile(type=0, ticks_per_beat=96, tracks=[track]).save(path)
    song = read_midi_file(path)
    assert song.sysex == [(0, b"\xf0\x43\x00\x09\xf7")]
    assert song.status.tolist() == [0x90] and song.frames.tolist() == [24000]


def test_smpte_division_ignores_tempo(tmp_path):
    # 25 frames per second × 40 ticks per frame = 1000 ticks per second.
    body = b"\x00\xff\x51\x03\x07\xa1\x20" + b"\x87\x68\x90\x3c\x40" + END_OF_TRACK  # tempo, then 1000 ticks
    path = tmp_path / "smpte.mid"
    path.write_bytes(smf_bytes(0, (-25 << 8) | 40, [body]))
    assert read_midi_file(path, sample_rate=48000).frames.tolist() == [48000]


def test_note_free_file_reads_as_empty(tmp_path):
    path = tmp_path / "meta_only.mid"
    path.write_bytes(smf_bytes(1, 480, [END_OF_TRACK]))
    song = read_midi_file(path)
    assert len(song) == 0 and song.note_count == 0 and song.channels_used == []


def valid_file() -> bytes:
    body = b"\x00\x90\x3c\x64" + b"\x60\x3c\x00" + b"\x00\xb0\x40\x7f" + END_OF_TRACK
    return smf_bytes(1, 96, [b"\x00\xff\x51\x03\x07\xa1\x20" + END_OF_TRACK, body])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file, not a MIDI file"),
        (b"RIFF\x00\x00\x00\x04WAVE" + b"\x00" * 40, r"not a MIDI file \(no MThd header\)"),
        (valid_file()[:30], "truncated MIDI file"),
        (smf_bytes(0, 96, [b"\x00\x3c\x64" + END_OF_TRACK]), "malformed MIDI file .*running status"),
        (smf_bytes(0, 96, [b"\x00\x90\x3c\xe4" + END_OF_TRACK]), "malformed MIDI file .*data byte"),
        (smf_bytes(2, 96, [END_OF_TRACK, END_OF_TRACK]), "SMF type 2 is not supported"),
        (smf_bytes(1, 0, [END_OF_TRACK]), "header division is 0"),
        (smf_bytes(1, 96, []), "has no tracks"),
    ],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(MidiFileError, match=f"^{path}: {message}") as error:
        read_midi_file(path)
    assert "\n" not in str(error.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(MidiFileError, match="nothing.mid: no such file"):
        read_midi_file(tmp_path / "nothing.mid")
    with pytest.raises(MidiFileError, match="is a folder"):
        read_midi_file(tmp_path)
    (tmp_path / "ok.mid").write_bytes(valid_file())
    with pytest.raises(MidiFileError, match="sample rate: must be an integer >= 1 Hz"):
        read_midi_file(tmp_path / "ok.mid", sample_rate=0)


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(valid_file()) - 1), flips=st.lists(
    st.tuples(st.integers(0, len(valid_file()) - 1), st.integers(0, 255)), max_size=3))
def test_damaged_files_never_escape_as_other_exceptions(tmp_path_factory, cut, flips):
    content = bytearray(valid_file())
    for position, value in flips:
        content[position] = value
    path = tmp_path_factory.mktemp("fuzz") / "damaged.mid"
    path.write_bytes(bytes(content[:cut] if not flips else content))
    try:
        song = read_midi_file(path)
    except MidiFileError as error:
        assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
    else:
        assert np.all(np.diff(song.frames) >= 0)


def test_demo_song_is_the_documented_piece(tmp_path):
    demo = REPO_ROOT / "samples" / "demo.mid"
    song = read_midi_file(demo)
    assert 20 <= song.duration_s <= 30
    assert song.channels_used == [0, 1, 2, 3, 4] and not song.uses_drum_channel
    kinds = song.status & 0xF0
    assert sorted(song.data1[kinds == 0xC0].tolist()) == [0, 4, 33, 56, 73]
    assert np.any((kinds == 0xB0) & (song.data1 == 64) & (song.data2 == 127))  # sustain pedal
    assert np.any(kinds == 0xE0)  # pitch bend
    assert len(np.unique(song.data2[(kinds == 0x90) & (song.data2 > 0)])) >= 10  # velocity variety
    # The committed file is exactly what the script composes.
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_demo_midi.py"), "--output",
                    str(tmp_path / "demo.mid")], check=True, capture_output=True)
    assert (tmp_path / "demo.mid").read_bytes() == demo.read_bytes()


def test_gm_song_has_drums_on_channel_10_and_is_what_its_script_composes(tmp_path):
    gm_song = REPO_ROOT / "samples" / "gm_song.mid"
    song = read_midi_file(gm_song)
    assert 15 <= song.duration_s <= 20
    assert song.channels_used == [0, 1, 2, 3, 4, 9] and song.uses_drum_channel
    kinds = song.status & 0xF0
    assert sorted(song.data1[kinds == 0xC0].tolist()) == [0, 16, 33, 48, 80]
    drum_hits = (kinds == 0x90) & (song.status & 0x0F == 9) & (song.data2 > 0)
    assert {36, 38, 42, 46, 49} <= set(song.data1[drum_hits].tolist())
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_gm_song.py"), "--output",
                    str(tmp_path / "gm_song.mid")], check=True, capture_output=True)
    assert (tmp_path / "gm_song.mid").read_bytes() == gm_song.read_bytes()
