"""open_input: the one check every reader makes of its input path, with the same one-line reasons."""

import os

import pytest

from wifm_synth.errors import InputError, MidiFileError
from wifm_synth.formats.inputs import open_input


def test_a_regular_file_opens_for_binary_reading(tmp_path):
    (tmp_path / "a.json").write_bytes(b"{}")
    with open_input(tmp_path / "a.json", "a JSON file") as stream:
        assert stream.read() == b"{}"
    assert stream.closed


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda folder: folder / "missing.json", "no such file"),
        (lambda folder: folder / "file.txt" / "under_a_file.json", "no such file"),
        (lambda folder: folder, "is a folder, expected a JSON file"),
        (lambda folder: (os.mkfifo(folder / "pipe"), folder / "pipe")[1], "is not a regular file, expected a JSON file"),
    ],
)
def test_what_cannot_be_opened_is_named_with_its_reason(tmp_path, make, reason):
    (tmp_path / "file.txt").write_text("x")
    path = make(tmp_path)
    with pytest.raises(InputError) as error, open_input(path, "a JSON file"):
        pass
    assert str(error.value) == f"{path}: {reason}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read anything")
def test_a_file_without_read_permission(tmp_path):
    locked = tmp_path / "locked.mid"
    locked.write_bytes(b"MThd")
    locked.chmod(0)
    with pytest.raises(MidiFileError, match="locked.mid: permission denied"), open_input(locked, "a MIDI file",
                                                                                          MidiFileError):
        pass


def test_a_read_error_part_way_is_the_files_error(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(InputError, match=r"a\.wav: cannot read file \(Input/output error\)"), \
            open_input(tmp_path / "a.wav", "an audio file"):
        raise OSError(5, "Input/output error")
