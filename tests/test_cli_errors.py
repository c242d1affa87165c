"""Bad input to `wifm fit` / `wifm render`: exit 2, one line naming the file and the problem, no output."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from wifm_synth.formats.patch_json import save_patch
from wifm_synth.voice.patch import Operator, Patch

RATE = 48000


def run_wifm(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "wifm_synth", *map(str, arguments)], capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(result, path, problem):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"wifm: error: {path}: "), lines[0]
    assert problem in lines[0].lower(), lines[0]
    assert "Traceback" not in result.stderr


def write(path, samples, subtype="PCM_16"):
    soundfile.write(path, samples, RATE, subtype=subtype)
    return path


def bad_audio_cases(folder):
    rng = np.random.default_rng(1)
    nan_audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)
    nan_audio[1000:1010] = np.nan
    not_audio = folder / "notes.wav"
    not_audio.write_text("this is not audio\n")
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    return {
        "missing": (folder / "missing.wav", "no such file"),
        "not audio": (not_audio, "not a readable audio file"),
        "empty": (empty, "not a readable audio file"),
        "zeros": (write(folder / "zeros.wav", np.zeros(RATE)), "silence"),
        "nan": (write(folder / "nan.wav", nan_audio, subtype="FLOAT"), "nan"),
        "short": (write(folder / "short.wav", 0.3 * np.sin(np.arange(RATE // 25))), "too short"),
        "noise": (write(folder / "noise.wav", 0.3 * rng.standard_normal(2 * RATE)), "no clear pitch"),
    }


@pytest.mark.parametrize("case", ["missing", "not audio", "empty", "zeros", "nan", "short", "noise"])
def test_fit_rejects_bad_audio(tmp_path, case):
    source, problem = bad_audio_cases(tmp_path)[case]
    output = tmp_path / "out.json"
    result = run_wifm("fit", source, "-o", output)
    assert_one_line_error(result, source, problem)
    assert not output.exists()


def test_render_rejects_unreadable_patch(tmp_path):
    patch_file = tmp_path / "broken.json"
    patch_file.write_text("{not json")
    output = tmp_path / "out.wav"
    assert_one_line_error(run_wifm("render", patch_file, "--note", 60, "-o", output), patch_file, "not valid json")
    assert not output.exists()


def test_render_rejects_out_of_range_field(tmp_path):
    patch_file = tmp_path / "range.json"
    save_patch(Patch(operators=[Operator()]), patch_file)
    document = json.loads(patch_file.read_text())
    document["operators"][0]["envelope"]["release_s"] = 1000.0
    patch_file.write_text(json.dumps(document))
    output = tmp_path / "out.wav"
    result = run_wifm("render", patch_file, "--note", 60, "-o", output)
    assert_one_line_error(result, patch_file, "operators[0].envelope.release_s: must be <= 60")
    assert not output.exists()


def test_render_rejects_feedback_the_algorithm_does_not_route(tmp_path):
    patch_file = tmp_path / "dx7.json"
    document = Patch(operators=[Operator() for _ in range(6)], algorithm=1).to_dict()
    document["operators"][0]["feedback"] = 0.5  # algorithm 1 feeds back operator 5 only
    patch_file.write_text(json.dumps(document))
    output = tmp_path / "x.wav"
    result = run_wifm("render", patch_file, "--note", 60, "-o", output)
    assert_one_line_error(result, patch_file, "operators[0].feedback: algorithm 1 feeds back operator 5 only")
    assert result.stderr.startswith(f"wifm: error: {patch_file}: operators[0].feedback: ")
    assert not output.exists()


def test_fit_into_missing_folder_writes_nothing(tmp_path, bundled_notes):
    output = tmp_path / "missing" / "out.json"
    result = run_wifm("fit", bundled_notes[0], "-o", output)
    assert_one_line_error(result, output.parent, "output folder does not exist")


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x01\x00\x00\x90\x3c", "truncated"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a midi file"),
        (b"hello!", "not a midi file"),
        (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x06\x00\x3c\x40\x00\xff\x2f", "running status"),
    ],
)
def test_render_rejects_bad_midi_files(tmp_path, content, problem):
    song = tmp_path / "song.mid"
    song.write_bytes(content)
    patch_file = tmp_path / "p.json"
    save_patch(Patch(operators=[Operator()]), patch_file)
    output = tmp_path / "song.wav"
    assert_one_line_error(run_wifm("render", patch_file, "--midi", song, "-o", output), song, problem)
    assert not output.exists()


@pytest.mark.parametrize(
    "arguments, problem",
    [
        (["render", "p.json", "--note", "200", "-o", "x.wav"], "midi note must be 0..127, got 200"),
        (["play", "p.json", "--period", "abc"], "period (frames) must be a number"),
        (["bank", "folder", "-o", "out", "--jobs", "0"], "jobs must be 1..1024, got 0"),
        (["render", "p.json", "--hold", "nan", "--note", "60", "-o", "x.wav"], "seconds must be 0.0..600.0"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, arguments, problem):
    result = subprocess.run([sys.executable, "-m", "wifm_synth", *arguments], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0].lower(), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_fit_refuses_to_overwrite_its_input(tmp_path, bundled_notes):
    sample = tmp_path / "note.wav"
    sample.write_bytes(bundled_notes[0].read_bytes())
    result = run_wifm("fit", sample, "-o", sample)
    assert_one_line_error(result, sample, "would overwrite the input")
    assert sample.read_bytes() == bundled_notes[0].read_bytes()


def test_fitted_patch_names_its_source_relative_to_itself(tmp_path, bundled_notes):
    (tmp_path / "patches").mkdir()
    output = tmp_path / "patches" / "p.json"
    sample = tmp_path / "note.wav"
    sample.write_bytes(bundled_notes[0].read_bytes())
    assert run_wifm("fit", sample, "-o", output).returncode == 0
    assert json.loads(output.read_text())["metadata"]["source"] == "../note.wav"
