import copy
import json
import shutil
from pathlib import Path

import pytest

from wifm_synth.errors import OutputError, PatchError
from wifm_synth.formats.bank_json import (
    Bank,
    Program,
    Zone,
    bank_from_dict,
    load_bank,
    load_instrument,
    save_bank,
)
from wifm_synth.formats.patch_json import load_patch
from wifm_synth.library.zones import zones_from_root_keys
from wifm_synth.voice.patch import Patch

TEST_BANK = Path(__file__).resolve().parent.parent / "data" / "banks" / "test_bank.json"


@pytest.fixture()
def bank_document() -> dict:
    return json.loads(TEST_BANK.read_text())


def test_test_bank_loads_with_its_patches():
    bank = load_bank(TEST_BANK)
    assert bank.name == "test_bank"
    assert [(p.bank, p.program) for p in bank.programs] == [(0, 0), (0, 33)]
    assert sorted(bank.patches) == ["patches/bright_pluck.json", "patches/fm_bass.json", "patches/sine_pluck.json"]
    keys = bank.programs[0]
    assert keys.zone_for(59, 80).patch == "patches/sine_pluck.json"
    assert keys.zone_for(60, 80).patch == "patches/bright_pluck.json"
    assert keys.zone_for(20, 81).patch == "patches/bright_pluck.json"
    assert bank.patch_for(keys.zone_for(10, 10)).name == "sine_pluck"
    assert bank.drums is None and bank.drum_program() is None


def test_zone_entries_give_every_zone_with_its_patch():
    bank = load_bank(TEST_BANK)
    entries = bank.zone_entries()
    assert [entry[:6] for entry in entries] == [
        (0, 0, 0, 59, 1, 80), (0, 0, 60, 127, 1, 80), (0, 0, 0, 127, 81, 127), (0, 33, 0, 127, 1, 127)]
    assert [entry[6].name for entry in entries] == ["sine_pluck", "bright_pluck", "bright_pluck", "fm_bass"]
    assert entries[1][6] is entries[2][6]  # a shared patch file is loaded once


def test_load_instrument_chooses_by_format():
    patch_path = TEST_BANK.parent / "patches" / "fm_bass.json"
    assert isinstance(load_instrument(patch_path), Patch)
    assert isinstance(load_instrument(TEST_BANK), Bank)


def test_load_instrument_refuses_other_formats(tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"format": "sfz"}')
    with pytest.raises(PatchError, match=r'other\.json: format: must be "wifm-patch" or "wifm-bank"'):
        load_instrument(other)
    other.write_text("[1, 2]")
    with pytest.raises(PatchError, match="format: must be"):
        load_instrument(other)


def test_unknown_program_falls_back_to_nearest_then_default(bank_document):
    bank_document["programs"].append(
        {"bank": 1, "program": 40, "zones": [{"patch": "patches/fm_bass.json", "root_key": 40}]})
    bank = bank_from_dict(bank_document)
    assert bank.program_for(0, 33) == (bank.programs[1], True)
    assert bank.program_for(0, 20) == (bank.programs[1], False)  # 33 is nearer than 0
    assert bank.program_for(0, 16) == (bank.programs[0], False)
    assert bank.program_for(1, 0) == (bank.programs[2], False)
    assert bank.program_for(7, 0) == (bank.programs[0], False)  # unknown bank → bank 0 program 0
    without_default = Bank(programs=bank.programs[1:], name="no piano")
    assert without_default.program_for(7, 0) == (bank.programs[1], False)  # … else the first program


def test_program_fallback_is_the_engines_whatever_the_program_order():
    zone = Zone(patch="a.json", root_key=60)
    bank = Bank(programs=[Program(program=p, bank=b, zones=[zone]) for b, p in [(3, 9), (2, 39), (2, 5)]])
    assert bank.program_for(7, 0) == (bank.programs[2], False)  # the lowest (bank, program), not the first listed
    assert bank.program_for(2, 22) == (bank.programs[2], False)  # 5 and 39 are both 17 away: the lower one


def test_drums_must_name_a_program(bank_document):
    bank_document["drums"] = {"bank": 0, "program": 33}
    assert bank_from_dict(bank_document).drum_program().name == "bass"
    bank_document["drums"] = {"bank": 0, "program": 5}
    with pytest.raises(PatchError, match="bank.json: drums: bank 0 program 5 is not one of the programs"):
        bank_from_dict(bank_document, "bank.json")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="wifm-patch"), 'format: must be "wifm-bank"'),
        (lambda d: d.update(version=2), "version: 2 is newer"),
        (lambda d: d.update(programs=[]), "programs: must have at least one program"),
        (lambda d: d["programs"][1].update(program=128), r"programs\[1\]\.program: must be <= 127"),
        (lambda d: d["programs"][1].update(program=0), r"programs\[1\]: bank 0 program 0 repeats programs\[0\]"),
        (lambda d: d["programs"][1].update(zones=[]), r"programs\[1\]\.zones: must have at least one zone"),
        (lambda d: d["programs"][0]["zones"][0].update(key_hi=-1), r"programs\[0\]\.zones\[0\]\.key_hi: must be >= 0"),
        (lambda d: d["programs"][1]["zones"][0].update(key_lo=64, key_hi=63),
         r"programs\[1\]\.zones\[0\]\.key_hi: must be >= key_lo"),
        (lambda d: d["programs"][1]["zones"][0].update(vel_lo=90, vel_hi=80),
         r"programs\[1\]\.zones\[0\]\.vel_hi: must be >= vel_lo"),
        (lambda d: d["programs"][1]["zones"][0].update(vel_lo=0), r"programs\[1\]\.zones\[0\]\.vel_lo: must be >= 1"),
        (lambda d: d["programs"][1]["zones"][0].pop("root_key"), r"programs\[1\]\.zones\[0\]\.root_key: is required"),
        (lambda d: d["programs"][1]["zones"][0].pop("patch"), r"programs\[1\]\.zones\[0\]\.patch: is required"),
        (lambda d: d["programs"][1]["zones"][0].update(patch="/abs/p.json"),
         r"programs\[1\]\.zones\[0\]\.patch: must be a path relative to the bank file"),
        (lambda d: d["programs"][1]["zones"][0].update(key_hi="high"),
         r"programs\[1\]\.zones\[0\]\.key_hi: must be a number, got str"),
    ],
)
def test_validation_errors_name_file_and_field(bank_document, edit, message):
    edit(bank_document)
    with pytest.raises(PatchError, match=f"^my_bank.json: {message}"):
        bank_from_dict(bank_document, "my_bank.json")


def test_zones_with_a_gap_are_refused(bank_document):
    bank_document["programs"][0]["zones"][1]["key_lo"] = 61
    with pytest.raises(PatchError, match=r"programs\[0\]\.zones: leave key 60 velocity 1 uncovered"):
        bank_from_dict(bank_document)


def test_a_silent_program_may_leave_keys_uncovered_and_old_banks_read_as_before(bank_document):
    assert "fill" not in bank_document["programs"][0]
    old = bank_from_dict(copy.deepcopy(bank_document))
    assert old.programs[0].fill == "nearest"
    assert old.to_dict() == bank_from_dict(old.to_dict()).to_dict() and "fill" not in old.to_dict()["programs"][0]

    bank_document["programs"][0]["zones"][1]["key_lo"] = 61
    bank_document["programs"][0]["fill"] = "silent"
    silent = bank_from_dict(bank_document)
    assert silent.programs[0].fill == "silent"
    assert silent.to_dict()["programs"][0]["fill"] == "silent"
    bank_document["programs"][0]["zones"][2]["vel_lo"] = 80  # overlaps are refused all the same
    with pytest.raises(PatchError, match=r"programs\[0\]\.zones\[2\]: overlaps zones\[0\]"):
        bank_from_dict(bank_document)
    bank_document["programs"][0]["fill"] = "quiet"
    with pytest.raises(PatchError, match=r"programs\[0\]\.fill: must be one of 'nearest', 'silent', got 'quiet'"):
        bank_from_dict(bank_document)


def test_overlapping_zones_are_refused(bank_document):
    bank_document["programs"][0]["zones"][2]["vel_lo"] = 80
    with pytest.raises(PatchError, match=r"programs\[0\]\.zones\[2\]: overlaps zones\[0\] at key 0 velocity 80"):
        bank_from_dict(bank_document)


def test_missing_patch_file_names_bank_and_path(tmp_path):
    shutil.copytree(TEST_BANK.parent, tmp_path / "bank")
    (tmp_path / "bank" / "patches" / "fm_bass.json").unlink()
    with pytest.raises(PatchError, match=r"test_bank\.json: programs\[1\]\.zones\[0\]\.patch: no such patch file "
                                         r"'patches/fm_bass\.json'"):
        load_bank(tmp_path / "bank" / "test_bank.json")


def test_invalid_patch_in_a_bank_names_the_patch_file(tmp_path):
    shutil.copytree(TEST_BANK.parent, tmp_path / "bank")
    bad = tmp_path / "bank" / "patches" / "sine_pluck.json"
    bad.write_text(bad.read_text().replace('"ratio": 1.0', '"ratio": -1.0'))
    with pytest.raises(PatchError, match=r"sine_pluck\.json: operators\[0\]\.ratio: must be > 0"):
        load_bank(tmp_path / "bank" / "test_bank.json")


def test_save_bank_round_trips_with_patches(tmp_path):
    bank = load_bank(TEST_BANK)
    (tmp_path / "copy").mkdir()
    save_bank(bank, tmp_path / "copy" / "bank.json")
    again = load_bank(tmp_path / "copy" / "bank.json")
    assert again.to_dict() == bank.to_dict()
    assert again.patches == bank.patches
    assert load_patch(tmp_path / "copy" / "patches" / "fm_bass.json") == bank.patches["patches/fm_bass.json"]
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["bank.json", "patches"]  # no temp files


def test_save_bank_refuses_invalid_or_dangling_banks(tmp_path):
    bank = load_bank(TEST_BANK)
    broken = copy.deepcopy(bank)
    broken.programs[0].zones[0].key_hi = 58
    with pytest.raises(PatchError, match="leave key 59 velocity 1 uncovered"):
        save_bank(broken, tmp_path / "bank.json")
    dangling = copy.deepcopy(bank)
    del dangling.patches["patches/fm_bass.json"]
    with pytest.raises(PatchError, match=r"programs\[1\]\.zones\[0\]\.patch: 'patches/fm_bass.json' is neither"):
        save_bank(dangling, tmp_path / "bank.json")
    with pytest.raises(OutputError, match="missing: output folder does not exist"):
        save_bank(bank, tmp_path / "missing" / "bank.json")
    assert list(tmp_path.iterdir()) == []


def test_a_bank_built_from_spans_saves_and_loads(tmp_path):
    patch = load_patch(TEST_BANK.parent / "patches" / "sine_pluck.json")
    spans = zones_from_root_keys({64: [48, 60], 110: [55]})
    zones = [Zone.from_span(span, f"p/{span.layer_velocity}_{span.root_key}.json") for span in spans]
    bank = Bank(programs=[Program(program=0, zones=zones)], name="built",
                patches={zone.patch: patch for zone in zones})
    save_bank(bank, tmp_path / "bank.json")
    assert load_bank(tmp_path / "bank.json").to_dict() == bank.to_dict()
