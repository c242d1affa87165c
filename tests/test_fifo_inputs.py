"""Named pipes given as any input are refused at once (a reader would block forever on one)."""

import os
import shutil

import pytest

from tests.test_cli_errors import assert_one_line_error, run_wifm
from tests.test_no_overwrite import BANKS


@pytest.fixture
def fifo(tmp_path, request):
    path = tmp_path / f"pipe{request.param}"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(("fifo", "command"), [
    (".wav", ["fit", "{fifo}", "-o", "{tmp}/out.json"]),
    (".json", ["render", "{fifo}", "--note", "60", "-o", "{tmp}/out.wav"]),
    (".mid", ["render", str(BANKS / "patches" / "fm_bass.json"), "--midi", "{fifo}", "-o", "{tmp}/out.wav"]),
    (".json", ["report", "{fifo}", "-o", "{tmp}/out.html"]),
    (".sfz", ["bank", "{fifo}", "-o", "{tmp}/bank"]),
    (".json", ["play", "{fifo}"]),
], indirect=["fifo"])
def test_fifo_is_refused(tmp_path, fifo, command):
    arguments = [part.format(fifo=fifo, tmp=tmp_path) for part in command]
    assert_one_line_error(run_wifm(*arguments), fifo, "not a regular file")


def test_fifo_as_a_bank_patch_is_refused(tmp_path):
    shutil.copytree(BANKS, tmp_path / "bank")
    patch = tmp_path / "bank" / "patches" / "fm_bass.json"
    patch.unlink()
    os.mkfifo(patch)
    result = run_wifm("render", tmp_path / "bank" / "test_bank.json", "--note", "60", "-o", tmp_path / "out.wav")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fifo_as_an_sfz_sample_is_refused(tmp_path):
    os.mkfifo(tmp_path / "note.wav")
    (tmp_path / "kit.sfz").write_text("<region> sample=note.wav key=60\n")
    result = run_wifm("bank", tmp_path / "kit.sfz", "-o", tmp_path / "bank")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
