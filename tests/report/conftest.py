"""A small report workspace shared by the report tests: a 3-note bank (one note's sample missing, two velocity
layers in one program, zones of two octaves with silent keys around them) and a single patch, over the
bundled samples."""

import shutil
from pathlib import Path

import pytest

from wifm_synth.formats.bank_json import FILL_SILENT, Bank, Program, Zone, save_bank
from wifm_synth.formats.patch_json import save_patch
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch


def fm_patch(name: str, note: int, source: str) -> Patch:
    """A plucked 2-operator patch at ``note`` (hand-made, standing in for a fitted one)."""
    return Patch(
        name=name,
        pitch=Pitch(reference_note=note),
        operators=[
            Operator(level=0.25, modulators=[1], envelope=Envelope([(0.005, 0.0), (2.5, -30.0)], 0.2)),
            Operator(level=1.2, carrier=False, envelope=Envelope([(0.005, 0.0), (0.8, -18.0)], 0.2)),
        ],
        metadata={"source": source, "midi_note": note, "loss": 0.2, "loss_kind": "w1", "method": "wifm",
                  "settings": {"ops": 2}},
    )


def write_report_workspace(folder: Path, bundled_notes: list[Path]) -> Path:
    by_name = {path.name: path for path in bundled_notes}
    (folder / "bank" / "patches").mkdir(parents=True)
    shutil.copy(by_name["bass_40_100.wav"], folder / "bank" / "bass_40_100.wav")  # found via the bank folder
    shutil.copy(by_name["flute_67_100.wav"], folder / "bank" / "patches" / "flute_67_100.wav")  # beside its patch
    bank = Bank(
        name="report test",
        programs=[
            Program(program=33, name="bass", zones=[Zone("patches/bass.json", 40, 28, 52, 1, 127)], fill=FILL_SILENT),
            Program(program=73, name="flute", fill=FILL_SILENT, zones=[
                Zone("patches/flute.json", 67, 60, 84, 1, 100), Zone("patches/lost.json", 79, 60, 84, 101, 127)]),
        ],
        patches={
            "patches/bass.json": fm_patch("bass_40_100", 40, "bass_40_100.wav"),
            "patches/flute.json": fm_patch("flute_67_100", 67, "flute_67_100.wav"),
            "patches/lost.json": fm_patch("flute_79_100", 79, "flute_79_100.wav"),
        },
    )
    save_bank(bank, folder / "bank" / "bank.json")
    save_patch(fm_patch("piano_55_100", 55, str(by_name["piano_55_100.wav"])), folder / "piano.json")
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, bundled_notes) -> Path:
    return write_report_workspace(tmp_path_factory.mktemp("report"), bundled_notes)
