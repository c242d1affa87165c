"""A full disk while writing an output is one line, exit 2, and leaves nothing behind (a 1 MB tmpfs)."""

import os
import subprocess
import sys

import pytest

from tests.test_cli_errors import assert_one_line_error, run_wifm
from tests.test_no_overwrite import BANKS

PATCH = BANKS / "patches" / "fm_bass.json"


@pytest.fixture
def tiny_disk(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_render_onto_a_full_disk(tiny_disk):
    output = tiny_disk / "out.wav"
    result = run_wifm("render", PATCH, "--note", "60", "--hold", "30", "-o", output)
    assert_one_line_error(result, output, "cannot write")
    assert list(tiny_disk.iterdir()) == []


def test_report_onto_a_full_disk(tiny_disk):
    output = tiny_disk / "out.html"
    (tiny_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 8192))
    result = run_wifm("report", PATCH, "-o", output)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(path.name for path in tiny_disk.iterdir()) == ["filler"]


def test_a_full_disk_is_named_as_such(tiny_disk):
    """libsndfile says only "System error." when the disk fills; the user reads that the disk is full."""
    output = tiny_disk / "out.flac"
    result = run_wifm("render", PATCH, "--note", "60", "--hold", "60", "-o", output)
    assert_one_line_error(result, output, "no space left on device")
    assert list(tiny_disk.iterdir()) == []


def test_midi_render_whose_scratch_folder_fills(tiny_disk, tmp_path):
    """The float render of a song goes to the temporary folder; when that fills, one line says so."""
    import mido

    song = tmp_path / "song.mid"
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=96 * 2 * 60)])
    midi = mido.MidiFile(ticks_per_beat=96)
    midi.tracks.append(track)
    midi.save(song)
    output = tmp_path / "out.wav"
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "render", str(PATCH), "--midi", str(song), "-o",
                             str(output)], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TMPDIR=str(tiny_disk)), check=False)
    assert_one_line_error(result, output, "no space left on device")
    assert not output.exists() and list(tiny_disk.iterdir()) == []
