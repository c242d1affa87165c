"""Which notes a report covers and where their source samples are found."""

import shutil
from pathlib import Path

import pytest

import wifm_synth.report
from wifm_synth.errors import InputError, OutputError, PatchError, WifmError
from wifm_synth.formats.bank_json import Bank, Program, Zone, save_bank
from wifm_synth.formats.patch_json import save_patch
from wifm_synth.report import report_command
from wifm_synth.report.notes import load_report_instrument, resolve_source
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch


def make_patch(name: str, note: int, source: str | None, **metadata) -> Patch:
    if source is not None:
        metadata["source"] = source
    return Patch(
        name=name,
        pitch=Pitch(reference_note=note),
        operators=[Operator(level=0.3, envelope=Envelope([(0.005, 0.0), (1.0, -20.0)], 0.2))],
        metadata=metadata,
    )


def write_bank(folder: Path) -> Path:
    """Two programs; the second program's loud layer reuses the first program's high patch."""
    bank = Bank(
        name="notes",
        programs=[
            Program(program=0, name="keys", zones=[
                Zone("patches/low.json", 50, 0, 55, 1, 127), Zone("patches/high.json", 60, 56, 127, 1, 127)]),
            Program(program=4, name="ep", zones=[
                Zone("patches/ep.json", 55, 0, 127, 1, 90), Zone("patches/high.json", 60, 0, 127, 91, 127)]),
        ],
        patches={
            "patches/low.json": make_patch("low", 50, "low.wav"),
            "patches/high.json": make_patch("high", 60, "high.wav"),
            "patches/ep.json": make_patch("ep", 55, None),
        },
    )
    save_bank(bank, folder / "bank.json")
    return folder / "bank.json"


def test_single_patch_is_one_note_searched_beside_it(tmp_path):
    save_patch(make_patch("solo", 57, "solo.wav", midi_note=57.3), tmp_path / "solo.json")
    instrument = load_report_instrument(tmp_path / "solo.json")
    assert instrument.bank is None and instrument.name == "solo"
    [note] = instrument.notes
    assert (note.title, note.midi_note, note.velocity) == ("solo", 57, 100)
    assert note.search_folders == [tmp_path]


def test_bank_notes_follow_program_order_and_shared_patches_collect_zones(tmp_path):
    instrument = load_report_instrument(write_bank(tmp_path))
    assert [note.title for note in instrument.notes] == ["low", "high", "ep"]
    assert len({note.anchor for note in instrument.notes}) == 3
    high = instrument.notes[1]
    assert [(program.program, zone.vel_lo) for program, zone in high.zones] == [(0, 1), (4, 91)]
    assert high.search_folders == [tmp_path / "patches", tmp_path]


def test_midi_note_is_the_reference_note_whatever_the_detected_pitch(tmp_path):
    # The engine plays a patch relative to its reference note, so only that key reproduces the sample.
    save_patch(make_patch("a", 60, None, midi_note=60.6), tmp_path / "a.json")
    save_patch(make_patch("b", 60, None, midi_note="sixty"), tmp_path / "b.json")
    assert load_report_instrument(tmp_path / "a.json").notes[0].midi_note == 60
    assert load_report_instrument(tmp_path / "b.json").notes[0].midi_note == 60


def test_source_is_found_beside_the_patch_then_in_the_bank_folder(tmp_path, bundled_notes):
    bank_file = write_bank(tmp_path)
    shutil.copy(bundled_notes[0], tmp_path / "patches" / "low.wav")
    shutil.copy(bundled_notes[0], tmp_path / "high.wav")
    low, high, _ = load_report_instrument(bank_file).notes
    assert resolve_source(low) == tmp_path / "patches" / "low.wav"
    assert resolve_source(high) == tmp_path / "high.wav"


def test_absolute_source_is_used_as_written(tmp_path, bundled_notes):
    save_patch(make_patch("abs", 55, str(bundled_notes[0])), tmp_path / "abs.json")
    assert resolve_source(load_report_instrument(tmp_path / "abs.json").notes[0]) == bundled_notes[0]


def test_missing_or_unnamed_source_is_an_input_error_naming_the_patch(tmp_path):
    low, _, ep = load_report_instrument(write_bank(tmp_path)).notes
    with pytest.raises(InputError, match=r"low\.json: source sample 'low\.wav' not found") as missing:
        resolve_source(low)
    assert str(tmp_path / "patches" / "low.wav") in str(missing.value)
    with pytest.raises(InputError, match=r"ep\.json: the patch names no source sample"):
        resolve_source(ep)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, InputError, "no such file"),
        ("{not json", InputError, "not valid JSON"),
        ('{"format": "wifm-sound", "version": 1}', PatchError, "format: must be"),
        ('{"format": "wifm-patch", "version": 1, "operators": []}', PatchError, "operators: must have 1 to 6"),
    ],
)
def test_bad_instrument_file_is_a_wifm_error_and_writes_nothing(tmp_path, content, error, message):
    instrument = tmp_path / "instrument.json"
    if content is not None:
        instrument.write_text(content)
    with pytest.raises(error, match=message) as raised:
        report_command(instrument, tmp_path / "report.html")
    assert isinstance(raised.value, WifmError) and str(instrument) in str(raised.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ([] if content is None else ["instrument.json"])


def test_unwritable_output_fails_before_rendering(tmp_path, monkeypatch):
    save_patch(make_patch("solo", 57, None), tmp_path / "solo.json")
    monkeypatch.setattr(wifm_synth.report, "evaluate_note", lambda note: pytest.fail("rendered before the check"))
    with pytest.raises(OutputError, match="output folder does not exist"):
        report_command(tmp_path / "solo.json", tmp_path / "missing" / "report.html")


def test_relative_source_climbing_out_of_the_bank_is_shown_without_dot_dots(tmp_path, bundled_notes):
    (tmp_path / "library").mkdir()
    (tmp_path / "bank").mkdir()
    shutil.copy(bundled_notes[0], tmp_path / "library" / "note.wav")
    save_patch(make_patch("climb", 55, "../library/note.wav"), tmp_path / "bank" / "climb.json")
    assert resolve_source(load_report_instrument(tmp_path / "bank" / "climb.json").notes[0]) == \
        (tmp_path / "library" / "note.wav").resolve()
