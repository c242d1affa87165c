"""A render stopped by SIGTERM leaves no temporary file; one a SIGKILL left is cleared by the next run."""

import signal
import subprocess
import sys
import time

import mido

from tests.test_no_overwrite import BANKS

PATCH = BANKS / "patches" / "fm_bass.json"


def _long_song(path, notes=3000):
    track = mido.MidiTrack()
    for index in range(notes):  # ten minutes of dense chords: seconds of rendering
        for offset in (0, 4, 7, 11):
            track.append(mido.Message("note_on", note=48 + (index + offset) % 36, velocity=90, time=0))
        track.append(mido.Message("note_off", note=48 + index % 36, time=192))
    midi = mido.MidiFile(ticks_per_beat=96)
    midi.tracks.append(track)
    midi.save(path)
    return path


def _start_render(song, output):
    return subprocess.Popen([sys.executable, "-m", "wifm_synth", "render", str(PATCH), "--midi", str(song),
                             "-o", str(output)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_temporary(folder, process, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if [path for path in folder.iterdir() if path.name.startswith(".out.wav.")]:
            time.sleep(0.5)  # into the render proper
            return
        time.sleep(0.05)
    raise AssertionError(f"no temporary output appeared: {process.poll()} {process.stderr.read()}")


def test_sigterm_removes_the_temporary_output(tmp_path):
    song, output = _long_song(tmp_path / "song.mid"), tmp_path / "out.wav"
    process = _start_render(song, output)
    _wait_for_temporary(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["song.mid"]


def test_next_run_clears_what_sigkill_left(tmp_path):
    song, output = _long_song(tmp_path / "song.mid"), tmp_path / "out.wav"
    process = _start_render(song, output)
    _wait_for_temporary(tmp_path, process)
    process.kill()
    process.communicate(timeout=60)
    left = [path for path in tmp_path.iterdir() if path.name.startswith(".out.wav.")]
    assert len(left) == 1
    short = _long_song(tmp_path / "short.mid", notes=4)
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "render", str(PATCH), "--midi", str(short),
                             "-o", str(output)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.wav", "short.mid", "song.mid"]


def test_a_running_writers_temporary_is_kept(tmp_path):
    from wifm_synth.formats.atomic import atomic_output, clear_stale_temporaries

    with atomic_output(tmp_path / "out.wav") as temp:
        temp.write_bytes(b"partial")
        clear_stale_temporaries(tmp_path, "out.wav", ".wav")
        assert temp.exists()
    stale = tmp_path / ".out.wav.abcd1234.wav"
    stale.write_bytes(b"left by a killed run")
    clear_stale_temporaries(tmp_path, "out.wav", ".wav")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.wav"]
