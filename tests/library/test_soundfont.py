"""SoundFont input: preset headers, preset lists, errors, and a tiny SF2 → bank → GM MIDI file with drums."""

import json
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from sf2_builder import (  # the sibling module: pytest puts this folder on sys.path
    sf2_bytes,
    tiny_font,
    write_tiny_sf2,
)

from wifm_synth.cli import main
from wifm_synth.errors import InputError
from wifm_synth.formats.sf2 import read_presets
from wifm_synth.library.soundfont import (
    MISSING_FLUIDSYNTH,
    parse_preset_list,
    parse_velocities,
)


def test_preset_headers_of_the_tiny_font(tmp_path):
    presets = read_presets(write_tiny_sf2(tmp_path / "tiny.sf2"))
    assert [(preset.bank, preset.program, preset.name) for preset in presets] == [
        (0, 16, "Tiny Organ"), (0, 73, "Tiny Flute"), (128, 0, "Tiny Kit")]
    assert [preset.is_drum_kit for preset in presets] == [False, False, True]


@pytest.mark.parametrize("mangle, reason", [
    (lambda data: b"RIFX" + data[4:], "no RIFF sfbk header"),
    (lambda data: data[:200], "runs past the end"),
    (lambda data: data.replace(b"phdr", b"phdX"), "no preset headers"),
    (lambda data: b"", "no RIFF sfbk header"),
])
def test_a_broken_soundfont_is_one_input_error(tmp_path, mangle, reason):
    path = tmp_path / "broken.sf2"
    path.write_bytes(mangle(sf2_bytes(tiny_font())))
    with pytest.raises(InputError, match=reason):
        read_presets(path)


def test_preset_lists_name_bank_zero_programs_ranges_and_bank_program_pairs():
    assert parse_preset_list("0-2,128:0,8:4", Path("x.sf2")) == {(0, 0), (0, 1), (0, 2), (128, 0), (8, 4)}
    assert parse_preset_list("all", Path("x.sf2")) is None
    assert parse_velocities("100,40", Path("x.sf2")) == (40, 100)
    for bad in ("0-128", "piano", "5-3", "1:2:3"):
        with pytest.raises(InputError, match="--presets"):
            parse_preset_list(bad, Path("x.sf2"))
    with pytest.raises(InputError, match="--velocities"):
        parse_velocities("0,100", Path("x.sf2"))


def test_missing_fluidsynth_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    source = write_tiny_sf2(tmp_path / "tiny.sf2")
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fluidsynth now raises ImportError
    assert main(["bank", str(source), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"wifm: error: {source}: {MISSING_FLUIDSYNTH}\n"
    assert not (tmp_path / "out").exists()


def test_bad_soundfont_and_misplaced_options_exit_2_without_output(tmp_path, capsys):
    pytest.importorskip("fluidsynth")
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    source = write_tiny_sf2(tmp_path / "tiny.sf2")
    for argv, reason in (([str(broken)], "not a valid SoundFont"),
                         ([str(source), "--presets", "5"], "selects none"),
                         ([str(source), "--drums"], "do not apply to a SoundFont")):
        assert main(["bank", *argv, "-o", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err
        assert error.startswith("wifm: error: ") and reason in error and error.count("\n") == 1
        assert not (tmp_path / "out").exists()


def _song(path: Path) -> dict[str, list[float]]:
    """A GM file: a melody on channel 1 (program 73, the tiny flute), drums on channel 10 only from 2 s on.

    Returns the seconds at which each part's notes start."""
    midi = mido.MidiFile(type=0, ticks_per_beat=480)  # 120 bpm: 960 ticks a second
    events = [(0, mido.Message("program_change", channel=0, program=73))]
    melody = [0.0, 0.5, 1.0]
    drums = [2.0, 2.5, 3.0]
    for start, key in zip(melody, (60, 64, 67)):
        events += [(start, mido.Message("note_on", channel=0, note=key, velocity=100)),
                   (start + 0.4, mido.Message("note_off", channel=0, note=key))]
    for start, key in zip(drums, (36, 38, 42)):
        events += [(start, mido.Message("note_on", channel=9, note=key, velocity=110)),
                   (start + 0.1, mido.Message("note_off", channel=9, note=key))]
    track, now = mido.MidiTrack(), 0
    for seconds, message in sorted(events, key=lambda event: event[0]):
        ticks = round(seconds * 960)
        track.append(message.copy(time=ticks - now))
        now = ticks
    midi.tracks.append(track)
    midi.save(path)
    return {"melody": melody, "drums": drums}


def test_tiny_soundfont_becomes_a_bank_that_plays_a_gm_file_with_drums(tmp_path, capsys):
    pytest.importorskip("fluidsynth")
    source = write_tiny_sf2(tmp_path / "tiny.sf2")
    bank_dir = tmp_path / "bank"
    assert main(["bank", str(source), "-o", str(bank_dir), "--keys", "12", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    document = json.loads((bank_dir / "bank.json").read_text())
    programs = {(entry["bank"], entry["program"]): entry for entry in document["programs"]}
    assert set(programs) == {(0, 16), (0, 73), (128, 0)}
    assert programs[(0, 73)]["name"] == "Tiny Flute" and programs[(128, 0)]["name"] == "Tiny Kit"
    assert document["drums"] == {"bank": 128, "program": 0}
    drum_rows = [row for row in summary["samples"] if row["program"] == 0 and "Tiny Kit" in row["sample"]]
    assert sorted(row["note"] for row in drum_rows if row["status"] == "fitted") == [36, 38, 42]
    assert all(row["status"] == "skipped" for row in drum_rows if row["note"] not in (36, 38, 42))
    for zone in programs[(128, 0)]["zones"]:  # each drum plays at the key it was mapped to
        patch = json.loads((bank_dir / zone["patch"]).read_text())
        assert patch["pitch"]["reference_note"] == zone["root_key"]
    melodic = [row for row in summary["samples"] if "Tiny Flute" in row["sample"]]
    assert len(melodic) == 8 and all(row["status"] == "fitted" for row in melodic)  # C1..C8 every 12 keys

    # A second run finds every fit in the cache, and renders nothing.
    rendered = sorted(bank_dir.glob(".soundfont/*/*.flac"))
    for path in rendered:
        path.unlink()
    assert main(["bank", str(source), "-o", str(bank_dir), "--keys", "12", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["counts"]["cached"] == summary["counts"]["fitted"] and again["counts"]["fitted"] == 0
    assert not any(bank_dir.glob(".soundfont/*/*.flac"))

    starts = _song(tmp_path / "song.mid")
    out = tmp_path / "song.wav"
    assert main(["render", str(bank_dir / "bank.json"), "--midi", str(tmp_path / "song.mid"), "-o", str(out)]) == 0
    audio, rate = soundfile.read(out)
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio

    def rms(start: float, seconds: float = 0.15) -> float:
        piece = mono[round(start * rate):round((start + seconds) * rate)]
        return float(np.sqrt(np.mean(np.square(piece))))

    silence = rms(1.75, 0.2)  # the melody has been released, the drums not yet begun
    for start in starts["melody"] + starts["drums"]:
        assert rms(start) > 10 * max(silence, 1e-6), start  # channel 10 sounds as well as channel 1
