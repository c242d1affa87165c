"""`wifm bank` on SFZ as libraries write it: sample ranges, trusted key centres, envelope and velocity opcodes,
transpose, ignored-opcode notice; flat folders of several instruments; Ctrl-C."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wifm_synth.bank.build import BANK_FILE, bank_command, build_bank
from wifm_synth.formats.bank_json import load_bank
from wifm_synth.formats.patch_json import load_patch

RATE = 48000
REPO = Path(__file__).resolve().parents[2]


def tone(key: float, seconds: float = 0.8, release_at: float | None = None) -> np.ndarray:
    """A 2-operator FM tone at MIDI ``key``: decaying, or held and released at ``release_at`` seconds."""
    time_s = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * 440.0 * 2 ** ((key - 69) / 12) * time_s
    if release_at is None:
        envelope = np.exp(-4.0 * time_s)
    else:
        envelope = np.where(time_s < release_at, 1.0, np.exp(-30.0 * (time_s - release_at)))
    envelope *= np.minimum(1.0, time_s / 0.005)
    return 0.4 * envelope * np.sin(phase + 1.5 * envelope * np.sin(phase))


def write(path: Path, audio: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, RATE)
    return path


def build(folder: Path, sfz_text: str, **options):
    (folder / "keys.sfz").write_text(sfz_text)
    result = build_bank(folder / "keys.sfz", folder / "bank", jobs=1, progress=False, **options)
    return result, [load_patch(folder / "bank" / entry.patch_file) for entry in result.entries
                    if entry.status == "fitted"]


def test_offset_and_end_fit_only_that_part_of_the_sample(tmp_path):
    write(tmp_path / "two.wav", np.concatenate([tone(48), tone(72)]))
    write(tmp_path / "one.wav", tone(60))
    half = int(0.8 * RATE)
    result, (low, high, whole) = build(tmp_path, f"""
<region> sample=two.wav key=48 offset=0 end={half - 1}
<region> sample=two.wav key=72 offset={half}
<region> sample=one.wav key=60 offset=0 end={half - 1}
<region> sample=one.wav key=61 pitch_keycenter=60
""")
    assert [entry.status for entry in result.entries] == ["fitted"] * 3
    assert low.metadata["midi_note"] == pytest.approx(48, abs=0.1)
    assert high.metadata["midi_note"] == pytest.approx(72, abs=0.1)
    # offset=0 end=LAST is the whole sample: one fit for both regions.
    assert whole.metadata["midi_note"] == pytest.approx(60, abs=0.1)
    assert len(result.entries[2].regions) == 2


def test_an_offset_past_the_end_fails_that_region_alone(tmp_path):
    write(tmp_path / "one.wav", tone(60))
    result, _ = build(tmp_path, "<region> sample=one.wav key=60\n<region> sample=one.wav key=62 offset=9000000\n")
    assert [entry.status for entry in result.entries] == ["fitted", "failed"]
    assert "frames 9000000..end: contains no audio samples" in result.entries[1].detail


def test_pitch_keycenter_is_kept_over_the_detected_pitch(tmp_path):
    write(tmp_path / "d4.wav", tone(62))
    result, (patch,) = build(tmp_path, "<region> sample=d4.wav lokey=50 hikey=70 pitch_keycenter=60\n")
    # The fitter alone would call it key 62; the SFZ says it plays at its own pitch on key 60.
    assert patch.pitch.reference_note == 60
    assert patch.pitch.tune_cents == 100.0  # as close to 2 semitones as the patch format allows
    assert "pitch_keycenter=60 but the sample sounds at 62.00" in result.entries[0].detail
    (program,) = load_bank(tmp_path / "bank" / BANK_FILE).programs
    assert [zone.root_key for zone in program.zones] == [60]


def test_ampeg_release_is_used_only_when_the_sample_has_no_release(tmp_path):
    write(tmp_path / "decay.wav", tone(60))  # decays to its end: no note-off in the recording
    write(tmp_path / "held.wav", tone(64, release_at=0.5))
    _, (decaying, held) = build(tmp_path, "<global> ampeg_release=2.5\n"
                                          "<region> sample=decay.wav key=60\n<region> sample=held.wav key=64\n")
    assert {operator.envelope.release_s for operator in decaying.operators} == {2.5}
    assert all(operator.envelope.release_s < 0.5 for operator in held.operators)


def test_ampeg_attack_and_amp_veltrack_shape_the_carriers(tmp_path):
    write(tmp_path / "one.wav", tone(60))
    _, (plain, shaped) = build(tmp_path, "<region> sample=one.wav key=60\n"
                                         "<region> sample=one.wav key=61 pitch_keycenter=60 ampeg_attack=0.25 "
                                         "amp_veltrack=50\n")
    for plain_operator, operator in zip(plain.operators, shaped.operators):
        if operator.carrier:
            assert operator.envelope.segments[0][0] == 0.25
            assert operator.velocity_sensitivity == 0.5
        else:
            assert operator.envelope.segments == plain_operator.envelope.segments
            assert operator.velocity_sensitivity == plain_operator.velocity_sensitivity


def test_transpose_shifts_the_pitch_of_the_region(tmp_path):
    write(tmp_path / "one.wav", tone(60))
    result, (plain, octave_up) = build(tmp_path, "<region> sample=one.wav lokey=0 hikey=60\n"
                                                 "<region> sample=one.wav lokey=61 hikey=127 transpose=12\n")
    assert len({entry.cache_key for entry in result.entries}) == 1  # one fit, shifted when saved
    assert [operator.ratio for operator in octave_up.operators] == pytest.approx(
        [2 * operator.ratio for operator in plain.operators])
    assert octave_up.pitch == plain.pitch


def test_ignored_opcodes_are_one_notice(tmp_path, capsys):
    write(tmp_path / "one.wav", tone(60))
    (tmp_path / "keys.sfz").write_text("<global> loop_mode=one_shot\n<region> sample=one.wav key=60 "
                                       "loop_mode=no_loop\n<region> sample=one.wav key=61 pan=10\n")
    assert bank_command(tmp_path / "keys.sfz", tmp_path / "bank", jobs=1) == 0
    notices = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wifm: notice:")]
    assert notices == [f"wifm: notice: {tmp_path / 'keys.sfz'}: ignored opcodes: loop_mode ×2, pan ×1"]


# --- folders ------------------------------------------------------------------------------------------------


def test_a_flat_folder_of_several_instruments_is_one_program_each(tmp_path):
    bundled = REPO / "samples" / "freepats"
    flat = tmp_path / "notes"
    flat.mkdir()
    # Same key (67) for piano, flute and trumpet: each is its instrument's own sample, not a duplicate.
    for source, name in (("acoustic_grand_piano/piano_67_100.wav", "piano_67_100.wav"),
                         ("flute/flute_67_100.wav", "flute_67_100.wav"),
                         ("flute/flute_79_100.wav", "flute_79_100.wav"),
                         ("trumpet/trumpet_67_100.wav", "trumpet_67_100.wav")):
        shutil.copy(bundled / source, flat / name)
    result = build_bank(flat, tmp_path / "bank", jobs=1, progress=False)
    assert [(plan.program, plan.name, plan.folder) for plan in result.programs] == [
        (0, "piano", "piano"), (56, "trumpet", "trumpet"), (73, "flute", "flute")]
    assert {entry.status for entry in result.entries} == {"fitted"}
    bank = load_bank(tmp_path / "bank" / BANK_FILE)
    assert {program.program: sorted(zone.root_key for zone in program.zones) for program in bank.programs} == {
        0: [67], 56: [67], 73: [67, 79]}


def test_ctrl_c_during_a_bank_says_how_to_resume(tmp_path):
    for key in range(40, 88, 2):  # enough notes that the run is still fitting when the interrupt lands
        write(tmp_path / "src" / f"tone_{key}.wav", tone(key, seconds=3.0))
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "wifm_synth", "bank", str(tmp_path / "src"), "-o",
                                str(tmp_path / "bank"), "--jobs", "2"], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    cache = tmp_path / "bank" / ".cache"
    while not (cache.is_dir() and any(cache.glob("*.json"))) and time.monotonic() < deadline:
        time.sleep(0.1)  # interrupt once fitting is under way
    os.killpg(process.pid, signal.SIGINT)  # as the terminal does: the whole process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "wifm: interrupted: rerun the same command to resume"
    assert "Traceback" not in stderr
