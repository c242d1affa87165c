"""Render length limits: a tiny MIDI file naming a note-off days away is refused before rendering."""

import struct
import time

import mido

from tests.test_cli_errors import assert_one_line_error, run_wifm
from tests.test_no_overwrite import BANKS
from wifm_synth.formats.limits import RIFF_LIMIT_BYTES, wav_container


def _track_file(path, track_body: bytes):
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(track_body)) + track_body)
    return path


def test_five_byte_delta_time_is_refused_at_once(tmp_path):
    # note-on, then a note-off 5-byte delta time (2^35 - 1 ticks) later, then end of track
    song = _track_file(tmp_path / "long.mid", b"\x00\x90\x3c\x40" + b"\xff\xff\xff\xff\x7f\x80\x3c\x40\x00\xff\x2f\x00")
    output = tmp_path / "out.wav"
    started = time.monotonic()
    result = run_wifm("render", BANKS / "patches" / "fm_bass.json", "--midi", song, "-o", output)
    assert time.monotonic() - started < 60
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not output.exists() and sorted(path.name for path in tmp_path.iterdir()) == ["long.mid"]


def test_ten_hour_note_needs_max_seconds(tmp_path):
    song = tmp_path / "ten_hours.mid"
    midi = mido.MidiFile(ticks_per_beat=96)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                                       mido.Message("note_off", note=60, time=96 * 2 * 3600 * 10)]))
    midi.save(song)
    output = tmp_path / "out.wav"
    result = run_wifm("render", BANKS / "patches" / "fm_bass.json", "--midi", song, "-o", output)
    assert_one_line_error(result, song, "--max-seconds")
    assert not output.exists()


def test_wav_over_four_gib_is_rf64():
    assert wav_container(48000 * 3600, 2, 3) == "WAV"
    assert wav_container(RIFF_LIMIT_BYTES // 6, 2, 3) == "WAV"
    assert wav_container(RIFF_LIMIT_BYTES // 6 + 1, 2, 3) == "RF64"
    assert wav_container(384000 * 3600, 2, 3) == "RF64"
