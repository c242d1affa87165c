"""Fit settings are shown once where they are shared: by every note, by a program's notes, or beside a note."""

import re
from pathlib import Path

from wifm_synth.formats.bank_json import Bank, Program, Zone
from wifm_synth.report.notes import Instrument, ReportNote
from wifm_synth.report.page import _shared_settings_section
from wifm_synth.report.settings import shared_settings
from wifm_synth.voice.patch import Operator, Patch, Pitch


def note(number: int, program: Program, **metadata) -> ReportNote:
    patch = Patch(name=f"n{number}", pitch=Pitch(reference_note=60), operators=[Operator(level=1.0)],
                  metadata={"tool_version": "1", "source": f"s{number}.wav", **metadata})
    return ReportNote(anchor=f"note-{number}", title=patch.name, patch=patch, patch_file=Path(f"n{number}.json"),
                      search_folders=[], zones=[(program, program.zones[0])])


def test_settings_shared_by_all_by_a_program_and_own():
    piano, celesta, kit = (Program(program=number, bank=bank, name=name, zones=[Zone(f"{name}.json", 60)])
                           for bank, number, name in ((0, 0, "piano"), (0, 8, "celesta"), (128, 0, "kit")))
    notes = [note(1, piano, method="wifm", ops=2), note(2, piano, method="wifm", ops=2),
             note(3, celesta, method="wifm", ops=2), note(4, celesta, method="wifm", ops=2),
             note(5, kit, method="drum"), note(6, kit, method="drum")]
    instrument = Instrument(path=Path("bank.json"), name="b", bank=Bank(programs=[piano, celesta, kit]), notes=notes)
    shared = shared_settings(instrument)
    assert shared.common == [("tool_version", "1")]
    assert shared.per_program == {(0, 0): [("method", "wifm"), ("ops", "2")],
                                  (0, 8): [("method", "wifm"), ("ops", "2")], (128, 0): [("method", "drum")]}
    assert [shared.own_rows(item) for item in notes[:2]] == [[("source", "s1.wav")], [("source", "s2.wav")]]
    headings = re.findall(r"<h3>(.*?)</h3>", _shared_settings_section(instrument, shared))
    # Programs with the same settings share one table.
    assert headings == ["Shared by every note", "Shared by every note of 0:0 piano, 0:8 celesta",
                        "Shared by every note of 128:0 kit"]


def test_a_single_note_keeps_all_its_settings():
    program = Program(program=0, zones=[Zone("p.json", 60)])
    only = note(1, program, method="wifm")
    shared = shared_settings(Instrument(path=Path("p.json"), name="p", bank=None, notes=[only]))
    assert shared.common == [] and shared.own_rows(only) == [("tool_version", "1"), ("source", "s1.wav"),
                                                              ("method", "wifm")]
