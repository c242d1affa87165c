"""``wifm render`` of the loudest patch the schema allows, under random MIDI and as one note: the file holds
finite samples within full scale (float files too), and one notice line says the safety stage acted."""

import re
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from wifm_synth.formats.patch_json import save_patch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))
from test_output_safety import loudest_valid_patch

NOTICE = re.compile(r"wifm: notice: (\S+): output limited on (\d+) samples \(peak before limiting \+(\d+\.\d) dBFS\); "
                    r"lower (CC7 volumes or velocities, or use --gain/--normalize|--gain or use --normalize)")


def random_song(path: Path, seed: int, seconds: float = 2.0) -> Path:
    """Random notes, bends and controllers on every channel but the drums, seeded."""
    rng = np.random.default_rng(seed)
    track = mido.MidiTrack()
    ticks_per_second = 960  # 480 ticks per beat at the default 120 bpm
    for _ in range(int(60 * seconds)):
        channel = int(rng.choice([c for c in range(16) if c != 9]))
        kind = rng.choice(["note_on", "note_off", "control_change", "pitchwheel"])
        if kind == "note_on":
            message = mido.Message(kind, channel=channel, note=int(rng.integers(0, 128)),
                                   velocity=int(rng.integers(1, 128)))
        elif kind == "note_off":
            message = mido.Message(kind, channel=channel, note=int(rng.integers(0, 128)))
        elif kind == "control_change":
            message = mido.Message(kind, channel=channel, control=int(rng.choice([7, 10, 11, 1])),
                                   value=int(rng.integers(0, 128)))
        else:
            message = mido.Message(kind, channel=channel, pitch=int(rng.integers(-8192, 8192)))
        track.append(message.copy(time=int(rng.exponential(ticks_per_second / 60))))
    track.append(mido.Message("control_change", channel=0, control=123, value=0, time=10))
    mido.MidiFile(ticks_per_beat=480, tracks=[track]).save(path)
    return path


def run_render(*arguments):
    return subprocess.run([sys.executable, "-m", "wifm_synth", "render", *map(str, arguments)],
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_loudest_valid_patch_under_random_midi_renders_within_full_scale(tmp_path, seed):
    patch = tmp_path / "loudest.json"
    save_patch(loudest_valid_patch(), patch)
    out = tmp_path / "song.wav"
    result = run_render(patch, "--midi", random_song(tmp_path / "song.mid", seed), "-o", out, "--subtype", "FLOAT")
    assert result.returncode == 0, result.stderr
    audio, _ = soundfile.read(out, always_2d=True)
    assert np.all(np.isfinite(audio)) and 0.99 < np.max(np.abs(audio)) <= 1.0
    notices = [line for line in result.stderr.splitlines() if "output limited" in line]
    assert len(notices) == 1 and NOTICE.fullmatch(notices[0]), result.stderr
    assert float(NOTICE.fullmatch(notices[0]).group(3)) > 20


def test_the_loudest_valid_patch_renders_one_note_within_full_scale(tmp_path):
    patch = tmp_path / "loudest.json"
    save_patch(loudest_valid_patch(), patch)
    out = tmp_path / "note.wav"
    result = run_render(patch, "--note", 127, "--velocity", 127, "--hold", 0.3, "--tail", 0.1, "-o", out,
                        "--subtype", "FLOAT")
    assert result.returncode == 0, result.stderr
    audio, _ = soundfile.read(out)
    assert np.all(np.isfinite(audio)) and 0.99 < np.max(np.abs(audio)) <= 1.0
    match = NOTICE.fullmatch(result.stderr.splitlines()[-1])
    assert match and match.group(1) == "note.wav" and float(match.group(3)) > 90  # the voice ceiling is ≈ +100 dBFS
