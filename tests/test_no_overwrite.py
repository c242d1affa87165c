"""No command writes over a file it reads: -o naming an input is refused with one line, input intact."""

import shutil
from pathlib import Path

import mido
import pytest

from tests.test_cli_errors import assert_one_line_error, run_wifm

BANKS = Path(__file__).parent / "data" / "banks"


@pytest.fixture
def bank(tmp_path):
    shutil.copytree(BANKS, tmp_path / "bank")
    return tmp_path / "bank" / "test_bank.json"


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.mid"
    midi = mido.MidiFile()
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=240)])
    midi.tracks.append(track)
    midi.save(path)
    return path


def assert_refused(arguments, output, victim):
    before = victim.read_bytes()
    result = run_wifm(*arguments)
    assert_one_line_error(result, output, "would overwrite")
    assert victim.read_bytes() == before


def test_render_note_onto_its_patch(bank):
    patch = bank.parent / "patches" / "fm_bass.json"
    assert_refused(["render", patch, "--note", "60", "-o", patch], patch, patch)


def test_render_note_onto_a_patch_of_its_bank_spelt_differently(bank):
    patch = bank.parent / "patches" / "sine_pluck.json"
    output = bank.parent / "patches" / ".." / "patches" / "sine_pluck.json"
    assert_refused(["render", bank, "--note", "60", "-o", output], output, patch)


def test_render_midi_onto_its_song_or_bank(bank, song):
    assert_refused(["render", bank, "--midi", song, "-o", song], song, song)
    assert_refused(["render", bank, "--midi", song, "-o", bank], bank, bank)


def test_render_onto_a_hard_link_of_its_input(bank, tmp_path):
    patch = bank.parent / "patches" / "fm_bass.json"
    link = tmp_path / "link.wav"
    link.hardlink_to(patch)
    assert_refused(["render", patch, "--note", "60", "-o", link], link, patch)


def test_report_onto_its_patch(bank):
    patch = bank.parent / "patches" / "fm_bass.json"
    assert_refused(["report", patch, "-o", patch], patch, patch)
    assert_refused(["report", bank, "-o", bank], bank, bank)
