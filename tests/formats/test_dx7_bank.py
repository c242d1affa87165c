"""``wifm syx import`` / ``export`` and ``.syx`` as an instrument (formats/dx7_bank.py)."""

import json

import pytest

from tests.formats.dx7_builders import hand_made_voice
from wifm_synth.cli import main
from wifm_synth.formats.bank_json import load_instrument
from wifm_synth.formats.dx7_sysex import (
    CARTRIDGE_MESSAGE_SIZE,
    SINGLE_MESSAGE_SIZE,
    Dx7Voice,
    write_cartridge,
    write_single,
)
from wifm_synth.formats.patch_json import load_patch

FITTED_PATCH = "patches/freepats/trumpet/trumpet_58_100.json"


def _cartridge():
    return write_cartridge([hand_made_voice()] + [Dx7Voice.init_voice().with_name(f"VOICE {index}")
                                                  for index in range(31)])


def test_import_then_export_gives_back_the_cartridge(tmp_path):
    (tmp_path / "cart.syx").write_bytes(_cartridge())
    assert main(["syx", "import", str(tmp_path / "cart.syx"), "-o", str(tmp_path / "bank")]) == 0
    bank = load_instrument(tmp_path / "bank" / "bank.json")
    assert [program.program for program in bank.programs] == list(range(32))
    assert bank.programs[1].name == "VOICE 0"
    assert main(["syx", "export", str(tmp_path / "bank" / "bank.json"), "-o", str(tmp_path / "back.syx")]) == 0
    assert (tmp_path / "back.syx").read_bytes() == _cartridge()


def test_a_single_voice_dump_is_one_program_and_exports_single(tmp_path):
    (tmp_path / "one.syx").write_bytes(write_single(hand_made_voice()))
    bank = load_instrument(tmp_path / "one.syx")
    assert len(bank.programs) == 1
    assert main(["syx", "export", str(tmp_path / "one.syx"), "-o", str(tmp_path / "one_back.syx"), "--single"]) == 0
    assert (tmp_path / "one_back.syx").read_bytes() == write_single(hand_made_voice())


def test_a_native_patch_exports_padded_and_re_exports_identically(tmp_path, capsys):
    assert main(["syx", "export", FITTED_PATCH, "-o", str(tmp_path / "first.syx"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bytes"] == CARTRIDGE_MESSAGE_SIZE and summary["voices"][0]["loss_db"] >= 0.0
    assert main(["syx", "import", str(tmp_path / "first.syx"), "-o", str(tmp_path / "bank")]) == 0
    assert main(["syx", "export", str(tmp_path / "bank" / "bank.json"), "-o", str(tmp_path / "second.syx")]) == 0
    assert (tmp_path / "second.syx").read_bytes() == (tmp_path / "first.syx").read_bytes()
    assert load_patch(FITTED_PATCH).name  # the source is untouched


def test_single_needs_one_voice(tmp_path, capsys):
    (tmp_path / "cart.syx").write_bytes(_cartridge())
    assert main(["syx", "export", str(tmp_path / "cart.syx"), "-o", str(tmp_path / "x.syx"), "--single"]) == 2
    assert "exactly one voice" in capsys.readouterr().err
    assert not (tmp_path / "x.syx").exists()
    assert SINGLE_MESSAGE_SIZE == 163


@pytest.mark.parametrize("content", [b"junk", _cartridge()[:-20]], ids=["junk", "truncated"])
def test_a_bad_file_is_one_line_and_writes_nothing(tmp_path, capsys, content):
    (tmp_path / "bad.syx").write_bytes(content)
    assert main(["syx", "import", str(tmp_path / "bad.syx"), "-o", str(tmp_path / "bank")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("wifm: error: ")
    assert not (tmp_path / "bank").exists()


def test_a_wrong_checksum_warns_once_and_strict_refuses(tmp_path, capsys):
    data = bytearray(_cartridge())
    data[-2] ^= 1
    (tmp_path / "bad_sum.syx").write_bytes(bytes(data))
    assert main(["syx", "import", str(tmp_path / "bad_sum.syx"), "-o", str(tmp_path / "bank")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "checksum" in line]
    assert len(warnings) == 1
    assert main(["syx", "import", str(tmp_path / "bad_sum.syx"), "-o", str(tmp_path / "strict"), "--strict"]) == 2
    assert not (tmp_path / "strict").exists()


def _song(folder):
    """One middle C of a quarter second."""
    import mido

    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=100, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=240)])
    path = folder / "song.mid"
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(path)
    return path


@pytest.mark.parametrize("song", [False, True], ids=["note", "midi"])
def test_render_strict_refuses_a_wrong_checksum_and_writes_nothing(tmp_path, capsys, song):
    data = bytearray(_cartridge())
    data[-2] ^= 1
    (tmp_path / "bad_sum.syx").write_bytes(bytes(data))
    source = ["--midi", str(_song(tmp_path))] if song else ["--note", "60", "--hold", "0.2", "--tail", "0.1"]
    arguments = ["render", str(tmp_path / "bad_sum.syx"), *source, "-o", str(tmp_path / "x.wav")]
    assert main([*arguments, "--strict"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "checksum" in errors[0] and errors[0].startswith("wifm: error: ")
    assert not (tmp_path / "x.wav").exists()
    assert main(arguments) == 0  # without --strict: one warning, and it plays
    assert (tmp_path / "x.wav").stat().st_size > 1000


def test_render_plays_a_syx_file(tmp_path):
    (tmp_path / "cart.syx").write_bytes(_cartridge())
    assert main(["render", str(tmp_path / "cart.syx"), "--note", "60", "--hold", "0.2", "--tail", "0.1",
                 "-o", str(tmp_path / "x.wav")]) == 0
    assert (tmp_path / "x.wav").stat().st_size > 1000


def test_play_strict_refuses_a_wrong_checksum_before_opening_audio(tmp_path):
    import subprocess
    import sys

    data = bytearray(_cartridge())
    data[-2] ^= 1
    (tmp_path / "bad_sum.syx").write_bytes(bytes(data))
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "play", str(tmp_path / "bad_sum.syx"), "--strict",
                             "-i", "--midi-in", "none"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wifm: error: {tmp_path / 'bad_sum.syx'}: checksum")
