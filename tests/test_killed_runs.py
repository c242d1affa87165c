"""A render stopped by SIGTERM or Ctrl-C leaves no temporary file and no traceback; what a SIGKILL left (the
hidden output temporary, the scratch folder of its float render) is cleared by the next run."""

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_no_overwrite import BANKS

_spec = importlib.util.spec_from_file_location("interrupt_stress",
                                               Path(__file__).resolve().parents[1] / "tools" / "interrupt_stress.py")
interrupt_stress = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(interrupt_stress)

PATCH = BANKS / "patches" / "fm_bass.json"


def _start_render(song, output, scratch=None):
    """``wifm render --midi``; with ``scratch``, its temporary folder (TMPDIR) is that folder."""
    environment = dict(os.environ, TMPDIR=str(scratch)) if scratch is not None else None
    return subprocess.Popen([sys.executable, "-m", "wifm_synth", "render", str(PATCH), "--midi", str(song),
                             "-o", str(output)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment)


def _wait_for_temporary(folder, process, timeout=240, name="out.wav"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if [path for path in folder.iterdir() if path.name.startswith(f".{name}.")]:
            time.sleep(0.5)  # into the render proper
            return
        time.sleep(0.05)
    raise AssertionError(f"no temporary output appeared: {process.poll()} {process.stderr.read()}")


def test_sigterm_removes_the_temporary_output(tmp_path):
    song, output = interrupt_stress.dense_song(tmp_path / "song.mid"), tmp_path / "out.wav"
    process = _start_render(song, output)
    _wait_for_temporary(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["song.mid"]


def test_next_run_clears_what_sigkill_left(tmp_path):
    song, output, scratch = interrupt_stress.dense_song(tmp_path / "song.mid"), tmp_path / "out.wav", tmp_path / "tmp"
    scratch.mkdir()
    process = _start_render(song, output, scratch)
    _wait_for_temporary(tmp_path, process)
    process.kill()
    process.communicate(timeout=60)
    left = [path for path in tmp_path.iterdir() if path.name.startswith(".out.wav.")]
    assert len(left) == 1
    # the float render's scratch folder, named with the killed process's id
    assert [path.name.split("-")[:3] for path in scratch.iterdir()] == [["wifm", "render", str(process.pid)]]
    short = interrupt_stress.dense_song(tmp_path / "short.mid", notes=4)
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "render", str(PATCH), "--midi", str(short),
                             "-o", str(output)], capture_output=True, text=True, timeout=300, check=False,
                            env=dict(os.environ, TMPDIR=str(scratch)))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.wav", "short.mid", "song.mid", "tmp"]
    assert list(scratch.iterdir()) == []


def test_ctrl_c_at_any_point_of_a_midi_render(tmp_path):
    """Ctrl-C at seeded random moments: while wifm imports numpy, Numba and the engine, while the song is read
    and the engine loaded or compiled, and while the render is written. Each ends with status 130 (or 2), at
    most one line, no traceback, and no file left behind."""
    rng = random.Random(13)
    song, scratch = interrupt_stress.dense_song(tmp_path / "song.mid"), tmp_path / "tmp"
    scratch.mkdir()
    moments = ([("imports", rng.uniform(0.0, 0.4)) for _ in range(4)] + [("imports", rng.uniform(0.4, 4.0))
                                                                           for _ in range(4)]
               + [("writing", rng.uniform(0.0, 1.5)) for _ in range(4)])
    for trial, (phase, delay) in enumerate(moments):
        name = f"out{trial}.wav"
        process = _start_render(song, tmp_path / name, scratch)
        if phase == "writing":
            _wait_for_temporary(tmp_path, process, name=name)
        else:
            interrupt_stress.wait_for_numpy(process)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        what = f"trial {trial} ({phase} + {delay:.2f} s): status {process.returncode}, stderr {stderr!r}"
        assert process.returncode in (130, 2), what
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, what
        assert stderr.count("\n") <= 1, what
        assert sorted(path.name for path in tmp_path.iterdir()) == ["song.mid", "tmp"], what
        assert list(scratch.iterdir()) == [], what


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


def test_a_temporary_cleared_before_its_writer_locked_it_is_made_again(tmp_path, monkeypatch):
    """Another run clearing stale temporaries can see a new temporary in the moment between its creation and
    its lock, and remove it: the writer then makes a new one instead of writing to a removed file."""
    import tempfile

    from wifm_synth.formats import atomic

    made, mkstemp = [], tempfile.mkstemp

    def mkstemp_then_cleared_once(*args, **kwargs):
        handle, name = mkstemp(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            atomic.clear_stale_temporaries(tmp_path, "out.wav", ".wav")  # the other run, before the lock
        return handle, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp_then_cleared_once)
    with atomic.atomic_output(tmp_path / "out.wav") as temp:
        temp.write_bytes(b"whole")
    assert len(made) == 2 and temp == Path(made[1])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.wav"]
    assert (tmp_path / "out.wav").read_bytes() == b"whole"
    made.clear()
    atomic.atomic_write_files({tmp_path / "out.wav": b"again"})
    assert len(made) == 2 and (tmp_path / "out.wav").read_bytes() == b"again"


def test_the_interrupt_stress_tool_reports_its_trials():
    """tools/interrupt_stress.py, the long-run form of the test above, on a few trials."""
    result = subprocess.run([sys.executable, str(Path(interrupt_stress.__file__)), "--trials", "3", "--seed", "5"],
                            capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["failures"] == 0, result.stdout + result.stderr
    assert report["trials"] == 3 and report["statuses"] == {"130": 3}
