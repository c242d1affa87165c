"""Patch JSON that parses badly or holds absurd values: one line naming the file and the field, exit 2."""

import json

import pytest

from tests.test_cli_errors import assert_one_line_error, run_wifm
from tests.test_no_overwrite import BANKS

PATCH = BANKS / "patches" / "fm_bass.json"


def _patch_with(change):
    document = json.loads(PATCH.read_text())
    change(document)
    return json.dumps(document)


def _huge(document):
    document["operators"][0]["ratio"] = 10**400


def _huge_segment(document):
    document["operators"][0]["envelope"]["segments"][0][1] = -(10**400)


CASES = {
    "nested 3000 deep": ("[" * 3000 + "]" * 3000, "nested too deeply"),
    "400-digit integer": (_patch_with(_huge), "out of range"),
    "400-digit integer in a segment": (_patch_with(_huge_segment), "out of range"),
    "5000-digit integer": (PATCH.read_text().replace('"name"', '"x": ' + "9" * 5000 + ', "name"', 1),
                           "thousands of digits"),
    "lone surrogate in the name": (PATCH.read_text().replace('"name": "', '"name": "\\ud800', 1), "surrogate"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_patch_is_one_line(tmp_path, case):
    text, problem = CASES[case]
    patch = tmp_path / "patch.json"
    patch.write_text(text)
    for arguments in (["render", patch, "--note", "60", "-o", tmp_path / "out.wav"],
                      ["report", patch, "-o", tmp_path / "out.html"]):
        assert_one_line_error(run_wifm(*arguments), patch, problem)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["patch.json"]


def test_symlink_loop_as_a_patch(tmp_path):
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    (tmp_path / "b.json").symlink_to(tmp_path / "a.json")
    result = run_wifm("render", tmp_path / "a.json", "--note", "60", "-o", tmp_path / "out.wav")
    assert_one_line_error(result, tmp_path / "a.json", "symbolic links")


def test_names_longer_than_the_system_allows(tmp_path):
    """A bank zone's patch or an SFZ sample named beyond 255 bytes is 'not found', not a traceback."""
    bank = json.loads((BANKS / "test_bank.json").read_text())
    bank["programs"][0]["zones"][0]["patch"] = "p" * 300 + ".json"
    (tmp_path / "bank.json").write_text(json.dumps(bank))
    result = run_wifm("render", tmp_path / "bank.json", "--note", "60", "-o", tmp_path / "out.wav")
    assert_one_line_error(result, tmp_path / "bank.json", "no such patch file")
    (tmp_path / "kit.sfz").write_text("<region> sample=" + "s" * 300 + ".wav key=60\n")
    result = run_wifm("bank", tmp_path / "kit.sfz", "-o", tmp_path / "out")
    assert_one_line_error(result, tmp_path / "kit.sfz", "not found")
