"""Patch model: JSON round trip, validation errors naming the field path, atomic writes."""

import copy
import json
import os

import pytest

from wifm_synth.errors import InputError, OutputError, PatchError
from wifm_synth.formats.atomic import atomic_write_with
from wifm_synth.formats.patch_json import load_patch, patch_from_dict, save_patch
from wifm_synth.voice.patch import Envelope, Operator, Patch


def two_operator_patch() -> Patch:
    return Patch(
        name="test",
        operators=[
            Operator(ratio=1.0, level=0.5, modulators=[1],
                     envelope=Envelope(segments=[(0.01, 0.0), (0.5, -12.0), (4.0, -50.0)], release_s=0.2)),
            Operator(ratio=3.0, level=2.5, carrier=False, feedback=0.3),
        ],
    )


def test_round_trip_through_file(tmp_path):
    patch = two_operator_patch()
    path = tmp_path / "p.json"
    save_patch(patch, path)
    assert load_patch(path) == patch
    assert json.loads(path.read_text())["format"] == "wifm-patch"
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["operators"][1].update(ratio=-1), "operators[1].ratio: must be > 0"),
        (lambda d: d["operators"][0].update(level="loud"), "operators[0].level: must be a number, got str"),
        (lambda d: d["operators"][0]["envelope"]["segments"][1].__setitem__(1, -500),
         "operators[0].envelope.segments[1].end_level_db: must be >= -120"),
        (lambda d: d["operators"][0]["envelope"].update(segments=[]),
         "operators[0].envelope.segments: must have 1 to 8 segments"),
        (lambda d: d["operators"][0]["envelope"].update(release_s=0), "operators[0].envelope.release_s: must be >= 0.001"),
        (lambda d: d["operators"][0].update(modulators=[7]), "operators[0].modulators[0]: must be an operator index 0..1"),
        (lambda d: d["operators"][1].update(modulators=[0]), "modulation routing has a cycle"),
        (lambda d: d["operators"][0].update(carrier=False), "operators: at least one operator must be a carrier"),
        (lambda d: d["pitch"].update(reference_note=128), "pitch.reference_note: must be <= 127"),
        (lambda d: d["pitch"].update(reference_note=60.5), "pitch.reference_note: must be an integer"),
        (lambda d: d.update(algorithm=5), "operators: algorithm 5 needs exactly 6 operators"),
        (lambda d: d.update(algorithm=33), "algorithm: must be <= 32"),
        (lambda d: d.update(version=2), "version: 2 is newer than this wifm_synth understands"),
        (lambda d: d.update(format="other"), 'format: must be "wifm-patch"'),
        (lambda d: d.update(operators=[]), "operators: must have 1 to 6 operators"),
        (lambda d: d["lfo"].update(rate_hz=float("nan")), "lfo.rate_hz: must be finite"),
    ],
)
def test_validation_names_the_field(mutate, message):
    document = copy.deepcopy(two_operator_patch().to_dict())
    mutate(document)
    with pytest.raises(PatchError) as error:
        patch_from_dict(document, "p.json")
    text = str(error.value)
    assert text.startswith("p.json: ") and message in text
    assert "\n" not in text


def test_unreadable_json_names_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "wifm-patch", ')
    with pytest.raises(InputError, match=r"broken.json: not valid JSON \(line 1"):
        load_patch(broken)
    with pytest.raises(InputError, match="no such file"):
        load_patch(tmp_path / "missing.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not a JSON file"):
        load_patch(binary)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.wav"

    def failing_writer(temp):
        temp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="output folder does not exist"):
        save_patch(two_operator_patch(), tmp_path / "no" / "such" / "p.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_write_into_read_only_folder_is_an_output_error(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write here"):
            save_patch(two_operator_patch(), tmp_path / "p.json")
    finally:
        tmp_path.chmod(0o700)


def test_written_files_get_the_umask_mode(tmp_path):
    save_patch(two_operator_patch(), tmp_path / "p.json")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_output_path_that_is_a_folder_is_an_output_error(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputError, match="taken: is a folder, expected a file name"):
        save_patch(two_operator_patch(), tmp_path / "taken")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
