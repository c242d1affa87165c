"""`wifm bank`: planning from names and SFZ, zones, cache and resume, process pool vs Dask, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wifm_synth.bank.build import (
    BANK_FILE,
    bank_command,
    build_bank,
    settle,
    sfz_zones,
    summary_rows,
)
from wifm_synth.bank.cache import CACHE_FOLDER, run_lock
from wifm_synth.bank.executors import FitOutcome
from wifm_synth.engine import render_note
from wifm_synth.errors import InputError, OutputError, WifmError
from wifm_synth.formats.bank_json import Program, bank_from_dict, load_bank
from wifm_synth.formats.patch_json import load_patch
from wifm_synth.formats.sfz import SfzRegion
from wifm_synth.library.discover import SampleEntry, plan_bank
from wifm_synth.library.naming import DYNAMIC_VELOCITIES

RATE = 48000


def write_note(path: Path, key: float, seconds: float = 0.8, index: float = 1.5) -> Path:
    """A decaying 2-operator FM tone at MIDI ``key`` (short, so that fits are quick)."""
    time_s = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * 440.0 * 2 ** ((key - 69) / 12) * time_s
    envelope = np.minimum(1.0, time_s / 0.005) * np.exp(-4.0 * time_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, 0.4 * envelope * np.sin(phase + index * envelope * np.sin(phase)), RATE)
    return path


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


def entries_by_label(plans):
    return {entry.label: entry for plan in plans for entry in plan.entries}


# --- planning (no fitting) ----------------------------------------------------------------------------------


def test_folder_of_instruments_gets_gm_or_sequential_programs(tmp_path):
    touch(tmp_path, "Piano/Piano.ff.C4.wav", "Piano/Piano.pp.C4.wav", "Piano/Piano.ff.C5.wav",
          "violin/violin_67_100.wav", "violin/violin_79_100.wav", "my sounds/pad.wav", "Strings/a/b/Str_G3.flac",
          "notes.txt", ".hidden/x.wav", "Piano/._Piano.ff.C4.wav")
    plans, skipped = plan_bank(tmp_path)
    assert skipped == []
    assert [(plan.name, plan.program, plan.folder) for plan in plans] == [
        ("Piano", 0, "Piano"), ("my sounds", 1, "my_sounds"), ("violin", 40, "violin"), ("Strings", 48, "Strings"),
    ]
    entries = entries_by_label(plans)
    assert set(entries) == {"Piano/Piano.ff.C4.wav", "Piano/Piano.pp.C4.wav", "Piano/Piano.ff.C5.wav",
                            "violin/violin_67_100.wav", "violin/violin_79_100.wav", "my sounds/pad.wav",
                            "Strings/a/b/Str_G3.flac"}
    piano_ff = entries["Piano/Piano.ff.C4.wav"]
    assert (piano_ff.note, piano_ff.velocity, piano_ff.patch_file) == (60, DYNAMIC_VELOCITIES["ff"],
                                                                       "Piano/Piano.ff.C4.json")
    assert entries["my sounds/pad.wav"].note is None  # pitch-detected
    assert entries["Strings/a/b/Str_G3.flac"].patch_file == "Strings/a_b_Str_G3.json"
    assert all(entry.status == "pending" for entry in entries.values())


def test_round_robins_and_duplicates_keep_one_sample_per_key_and_layer(tmp_path):
    touch(tmp_path, "Gtr_Eb3_RR2.wav", "Gtr_Eb3_RR1.wav", "Gtr_Eb3_RR3.wav", "Gtr_E3.wav", "gtr_e3.flac",
          "Gtr_E3_ff.wav")
    (plan,) = plan_bank(tmp_path)[0]
    status = {entry.label.split("/")[-1]: (entry.status, entry.detail) for entry in plan.entries}
    assert status["Gtr_Eb3_RR1.wav"][0] == "pending"
    assert status["Gtr_Eb3_RR2.wav"] == ("skipped", f"same key 51 and velocity layer 100 as {tmp_path.name}/Gtr_Eb3_RR1.wav")
    assert status["Gtr_Eb3_RR3.wav"][0] == "skipped"
    assert status["Gtr_E3.wav"][0] == "pending"  # upper case sorts first
    assert status["gtr_e3.flac"][0] == "skipped"
    assert status["Gtr_E3_ff.wav"][0] == "pending"  # another velocity layer
    patch_files = [entry.patch_file for entry in plan.entries]
    assert len({name.lower() for name in patch_files}) == len(patch_files)


def test_layer_folders_and_layer_indices_are_velocities_of_one_instrument(tmp_path):
    touch(tmp_path / "Piano", "ff/C4.wav", "pp/C4.wav", "mf/C4.wav")
    touch(tmp_path / "Vibes", "Vibes_F4_v1.wav", "Vibes_F4_v2.wav", "Vibes_F4_v3.wav", "Vibes_F4_v4.wav")
    (piano,), _ = plan_bank(tmp_path / "Piano", program=3)
    assert piano.program == 3
    assert sorted(entry.velocity for entry in piano.entries) == [33, 80, 112]
    assert len({entry.patch_file for entry in piano.entries}) == 3
    (vibes,), _ = plan_bank(tmp_path / "Vibes")
    assert vibes.program == 11
    assert [entry.velocity for entry in vibes.entries] == [32, 64, 95, 127]


def fitted_entry(patch_file: str, root_key: int, *regions: SfzRegion) -> SampleEntry:
    return SampleEntry(label=patch_file, path=Path(patch_file), patch_file=patch_file, note=root_key, velocity=None,
                       regions=list(regions), status="fitted",
                       outcome=FitOutcome(cache_key="", patch={"pitch": {"reference_note": root_key}}))


def region(line, key_lo, key_hi, vel_lo=1, vel_hi=127, seq_position=1):
    return SfzRegion(sample=Path("x.wav"), line=line, key_lo=key_lo, key_hi=key_hi, vel_lo=vel_lo, vel_hi=vel_hi,
                     seq_position=seq_position)


def tiled(entries, fill_gaps=True):
    """Zones of ``entries`` as a validated program (bank_from_dict checks the tiling) and a lookup function."""
    zones = sfz_zones(entries, fill_gaps)
    bank_from_dict({"format": "wifm-bank", "version": 1,
                    "programs": [{"program": 0, "fill": "nearest" if fill_gaps else "silent",
                                  "zones": [zone.__dict__ for zone in zones]}]})
    program = Program(program=0, zones=zones)
    return zones, lambda key, velocity: program.zone_for(key, velocity).patch


def test_sfz_zones_keep_given_ranges_and_fill_gaps_with_the_nearest_region():
    soft = fitted_entry("soft.json", 55, region(1, 50, 60, 1, 90))
    high = fitted_entry("high.json", 67, region(2, 61, 72, 1, 90))
    loud = fitted_entry("loud.json", 60, region(3, 40, 80, 100, 127), region(5, 81, 90, 100, 110))
    zones, plays = tiled([soft, high, loud])
    # As given.
    assert plays(50, 1) == plays(60, 90) == "soft.json"
    assert plays(61, 1) == plays(72, 90) == "high.json"
    assert plays(40, 100) == plays(80, 127) == plays(85, 105) == "loud.json"
    # Gaps: the nearest key of the same velocity, then the nearest covered velocity.
    assert plays(0, 50) == "soft.json"
    assert plays(127, 50) == "high.json"
    assert plays(0, 127) == plays(127, 127) == plays(85, 120) == "loud.json"
    assert plays(60, 93) == plays(60, 95) == "soft.json"  # velocities 91..99: no region; ties go down
    assert plays(60, 96) == "loud.json"
    assert {zone.root_key for zone in zones if zone.patch == "loud.json"} == {60}


def test_sfz_later_round_robins_only_fill_what_earlier_regions_leave():
    soft = fitted_entry("soft.json", 55, region(1, 0, 127, 1, 90))
    loud = fitted_entry("loud.json", 60, region(2, 0, 127, 100, 127))
    second_take = fitted_entry("take2.json", 61, region(3, 55, 65, 1, 127, seq_position=2))
    first_take = fitted_entry("take1.json", 61, region(4, 0, 127, 1, 127))  # sorts before seq_position 2
    _, plays = tiled([soft, loud, second_take, first_take])
    assert {plays(key, velocity) for key in range(128) for velocity in range(91, 100)} == {"take1.json"}
    _, plays = tiled([soft, loud, second_take])
    assert plays(60, 95) == plays(0, 95) == plays(127, 95) == "take2.json"
    assert plays(60, 90) == "soft.json"


# --- bad input: one-line errors, nothing written -----------------------------------------------------------


def bad_sources(folder: Path):
    (folder / "empty").mkdir()
    touch(folder / "no_audio", "readme.txt", "cover.jpg")
    (folder / "bad.sfz").write_text("<region> sample=a.wav\n<regoin> lokey=3\n")
    (folder / "missing.sfz").write_text("<region> sample=gone.wav key=60\n")
    touch(folder / "two", "a/x_60.wav", "b/y_60.wav")
    (folder / "notes.txt").write_text("x")
    return {
        "empty folder": (folder / "empty", {}, InputError, "folder is empty"),
        "no audio": (folder / "no_audio", {}, InputError, "no audio files"),
        "sfz syntax": (folder / "bad.sfz", {}, InputError, "line 2: unknown header <regoin>"),
        "sfz sample": (folder / "missing.sfz", {}, InputError, "line 1: sample 'gone.wav' not found"),
        "missing": (folder / "nope", {}, InputError, "no such file or folder"),
        "not sfz": (folder / "notes.txt", {}, InputError, "expected a folder of samples or an .sfz file"),
        "program": (folder / "two", {"program": 5}, InputError, "--program needs a single-instrument source"),
        "jobs": (folder / "two", {"jobs": 0}, WifmError, "--jobs must be at least 1"),
    }


@pytest.mark.parametrize("case", ["empty folder", "no audio", "sfz syntax", "sfz sample", "missing", "not sfz",
                                  "program", "jobs"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, case):
    source, options, error_type, problem = bad_sources(tmp_path)[case]
    out_dir = tmp_path / "bank"
    with pytest.raises(error_type) as error:
        build_bank(source, out_dir, **options)
    assert problem in str(error.value)
    assert "\n" not in str(error.value)
    assert not out_dir.exists()


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_unwritable_output_folder(tmp_path, where):
    write_note(tmp_path / "src" / "tone_60.wav", 60)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out_dir = blocker if where == "file" else blocker / "bank"
    with pytest.raises(OutputError) as error:
        build_bank(tmp_path / "src", out_dir)
    assert str(error.value).startswith(f"{out_dir}: ")
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_folder_without_write_permission(tmp_path):
    write_note(tmp_path / "src" / "tone_60.wav", 60)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="cannot write here"):
        build_bank(tmp_path / "src", locked / "bank")
    assert list(locked.iterdir()) == []


# --- building with the real fitter ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    """Two instruments, three keys; one corrupt file among good ones."""
    root = tmp_path_factory.mktemp("library")
    write_note(root / "flute" / "Flute_C4_mf.wav", 60)
    write_note(root / "flute" / "Flute_G4_mf.wav", 67, index=0.8)
    write_note(root / "flute" / "Flute_C4_ff.wav", 60, index=2.5)
    write_note(root / "unnamed" / "tone.wav", 57)  # no key in the name: pitch-detected
    (root / "flute" / "Flute_C5_mf.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return root


def patch_documents(out_dir: Path) -> dict:
    """Every patch file's content without the run-dependent metadata (times, dates)."""
    documents = {}
    for path in sorted(out_dir.glob("[!.]*/*.json")):
        document = json.loads(path.read_text())
        for key in ("seconds", "date"):
            document["metadata"].pop(key)
        documents[str(path.relative_to(out_dir))] = document
    return documents


def assert_same_documents(actual, expected):
    """Equal JSON trees, numbers within float round-off: worker processes run BLAS single-threaded, so
    sums may differ in the last bits, which can flip a value rounded to 3 decimals (tune_cents) by 0.001."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys()
        for key in expected:
            assert_same_documents(actual[key], expected[key])
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for actual_item, expected_item in zip(actual, expected):
            assert_same_documents(actual_item, expected_item)
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-6, abs=1.5e-3)
    else:
        assert actual == expected


def test_build_reports_a_broken_sample_and_writes_the_rest(small_library, tmp_path, capsys):
    out_dir = tmp_path / "bank"
    status = bank_command(small_library, out_dir, jobs=1)
    captured = capsys.readouterr()
    assert status == 1
    broken = small_library / "flute" / "Flute_C5_mf.wav"
    assert f"wifm: {broken}: not a readable audio file" in captured.err
    assert "failed" in captured.out and "wrote" in captured.out

    bank = load_bank(out_dir / BANK_FILE)
    unnamed, flute = bank.programs  # in program order
    assert (flute.program, flute.name, unnamed.program, unnamed.name) == (73, "flute", 0, "unnamed")
    assert flute.zone_for(60, 100).patch == "flute/Flute_C4_ff.json"
    assert flute.zone_for(60, 96).patch == "flute/Flute_C4_mf.json"  # layers split at (80 + 112) / 2
    assert flute.zone_for(63, 90).patch == "flute/Flute_C4_mf.json"  # keys split at (60 + 67) // 2
    assert flute.zone_for(64, 90).patch == "flute/Flute_G4_mf.json"
    # Key 64 is nearest G4, so G4's only recording plays it at every velocity, never C4's ff layer.
    assert flute.zone_for(64, 127).patch == "flute/Flute_G4_mf.json"
    assert flute.zone_for(63, 127).patch == "flute/Flute_C4_ff.json"
    assert flute.zone_for(127, 1).patch == "flute/Flute_G4_mf.json"
    assert unnamed.zones[0].root_key == 57

    loud = load_patch(out_dir / "flute" / "Flute_C4_ff.json")
    assert loud.pitch.reference_velocity == DYNAMIC_VELOCITIES["ff"]
    assert (out_dir / "flute" / loud.metadata["source"]).resolve() == (small_library / "flute/Flute_C4_ff.wav")
    assert set(loud.metadata["metrics"]) >= {"stft_db", "harmonic_db", "envelope_db", "f0_cents"}

    # A re-run fits nothing new: the cache answers, the broken file fails again.
    assert bank_command(small_library, out_dir, jobs=1, as_json=True) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"fitted": 0, "cached": 4, "failed": 1, "skipped": 0}
    assert summary["bank"] == str(out_dir / BANK_FILE)
    row = next(row for row in summary["samples"] if row["sample"] == "flute/Flute_G4_mf.wav")
    assert (row["program"], row["note"], row["velocity"], row["status"]) == (73, 67, 80, "cached")
    assert row["loss"] > 0 and row["seconds"] > 0 and "stft_db" in row["metrics"]


def test_process_pool_and_dask_build_the_same_bank_as_one_process(small_library, tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = build_bank(small_library, tmp_path / "serial", jobs=1, progress=False)
    pooled = build_bank(small_library, tmp_path / "pool", jobs=2, progress=False)
    # Threads in this process: the same scheduler, futures and task function, without a second start-up
    # of worker processes (the process pool above already checks that jobs and outcomes pickle).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        dask = build_bank(small_library, tmp_path / "dask", dask_scheduler=cluster.scheduler_address, progress=False)
    expected = patch_documents(tmp_path / "serial")
    assert len(expected) == 4
    for build, name in ((pooled, "pool"), (dask, "dask")):
        assert [row["status"] for row in summary_rows(build)] == [row["status"] for row in summary_rows(serial)]
        assert json.loads((tmp_path / name / BANK_FILE).read_text()) == \
            json.loads((tmp_path / "serial" / BANK_FILE).read_text())
        assert_same_documents(patch_documents(tmp_path / name), expected)


def test_dask_scheduler_that_does_not_answer(small_library, tmp_path):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    # The connection timeout is the user's Dask setting.
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(WifmError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
        build_bank(small_library / "unnamed", tmp_path / "bank", dask_scheduler="tcp://127.0.0.1:9", progress=False)
    assert not (tmp_path / "bank").exists()


def test_dask_missing_is_a_clear_error(small_library, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask[distributed] were not installed
    with pytest.raises(WifmError, match=r"--dask-scheduler needs Dask: pip install 'wifm_synth\[dask\]'"):
        build_bank(small_library, tmp_path / "bank", dask_scheduler="tcp://127.0.0.1:8786", progress=False)
    assert not (tmp_path / "bank").exists()


def build_sfz_bank(folder: Path, sfz_text: str, **options):
    """Write ``keys.sfz`` into ``folder`` and build it into ``folder/bank`` in this process."""
    (folder / "keys.sfz").write_text(sfz_text)
    return build_bank(folder / "keys.sfz", folder / "bank", jobs=1, progress=False, **options)


def test_sfz_bank_uses_the_regions(tmp_path):
    write_note(tmp_path / "samples" / "low.wav", 48)
    write_note(tmp_path / "samples" / "high.wav", 72)
    build = build_sfz_bank(tmp_path, "<control> default_path=samples/\n<group> lovel=1 hivel=127\n"
                                     "<region> sample=low.wav lokey=36 hikey=59 pitch_keycenter=c3\n"
                                     "<region> sample=high.wav lokey=c4 hikey=84 pitch_keycenter=72\n"
                                     "<region> sample=high.wav lokey=c4 hikey=84 pitch_keycenter=72 trigger=release\n")
    assert [entry.status for entry in build.entries] == ["fitted", "fitted"]
    assert len(build.skipped_regions) == 1 and "trigger=release" in build.skipped_regions[0]
    bank = load_bank(tmp_path / "bank" / BANK_FILE)
    (program,) = bank.programs
    # As in SFZ players, keys outside every region are silent.
    assert program.fill == "silent"
    assert [(zone.patch, zone.root_key, zone.key_lo, zone.key_hi) for zone in program.zones] == [
        ("keys/low.json", 48, 36, 59), ("keys/high.json", 72, 60, 84)]
    assert not np.any(render_note(bank, 30, hold_s=0.2, tail_s=0.1))
    assert not np.any(render_note(bank, 85, hold_s=0.2, tail_s=0.1))
    assert np.max(np.abs(render_note(bank, 40, hold_s=0.2, tail_s=0.1))) > 0.01

    # --fill-gaps: the nearest region plays them (from the cache: the fits are the same).
    build = build_sfz_bank(tmp_path, (tmp_path / "keys.sfz").read_text(), fill_gaps=True)
    assert [entry.status for entry in build.entries] == ["cached", "cached"]
    (program,) = load_bank(tmp_path / "bank" / BANK_FILE).programs
    assert program.fill == "nearest"
    assert [(zone.patch, zone.root_key, zone.key_lo, zone.key_hi) for zone in program.zones] == [
        ("keys/low.json", 48, 0, 59), ("keys/high.json", 72, 60, 127)]


def test_sfz_tune_shifts_the_fitted_tuning_of_its_region(tmp_path):
    write_note(tmp_path / "low.wav", 48)
    build = build_sfz_bank(tmp_path, "<group> pitch_keycenter=48\n"
                                     "<region> sample=low.wav lokey=36 hikey=47\n"
                                     "<region> sample=low.wav lokey=48 hikey=59 tune=-30\n"
                                     "<region> sample=low.wav lokey=60 hikey=72 tune=150\n")
    # One fit serves all three regions; each patch gets its own tune on top.
    assert [entry.status for entry in build.entries] == ["fitted"] * 3
    assert len({entry.cache_key for entry in build.entries}) == 1
    plain, down, up = (load_patch(tmp_path / "bank" / entry.patch_file).pitch.tune_cents for entry in build.entries)
    assert abs(plain) < 5
    assert down == pytest.approx(plain - 30, abs=1e-3)
    assert up == 100.0
    assert [("clamped to 100" in entry.detail) for entry in build.entries] == [False, False, True]
    assert "tune=150" in build.entries[2].detail


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    write_note(tmp_path / "src" / "tone_60.wav", 60)
    (tmp_path / "bank" / CACHE_FOLDER).mkdir(parents=True)
    with run_lock(tmp_path / "bank"), \
            pytest.raises(OutputError, match="another `wifm bank` is writing this folder"):
        build_bank(tmp_path / "src", tmp_path / "bank", jobs=1, progress=False)
    build_bank(tmp_path / "src", tmp_path / "bank", jobs=1, progress=False)  # released with its holder


# --- resume after a crash --------------------------------------------------------------------------------------

KEYS = (48, 52, 55, 60, 64, 67, 72, 76)


def test_killed_run_resumes_with_only_the_missing_fits(tmp_path):
    for key in KEYS:
        write_note(tmp_path / "src" / f"tone_{key}.wav", key, seconds=1.5)
    out_dir = tmp_path / "bank"
    process = subprocess.Popen([sys.executable, "-m", "wifm_synth", "bank", tmp_path / "src", "-o", out_dir,
                                "--jobs", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = out_dir / CACHE_FOLDER
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(cache.glob("[0-9a-f]*.json"))) >= 2:
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out_dir / BANK_FILE).exists()

    finished = len(list(cache.glob("[0-9a-f]*.json")))
    assert 2 <= finished < len(KEYS)
    for path in out_dir.rglob("*.json"):
        if not path.name.startswith("."):
            document = json.loads(path.read_text())  # complete, valid JSON: writes are atomic
            assert document["format"] == ("wifm-bank-cache" if path.parent == cache else "wifm-patch")
            if path.parent != cache:
                load_patch(path)
    # Leave a stale temporary behind as a crash would; the re-run must clear it.
    (out_dir / "src" / ".tone_60.json.abcd1234.json").write_text('{"half": ')

    build = build_bank(tmp_path / "src", out_dir, jobs=1, progress=False)
    statuses = [entry.status for entry in build.entries]
    assert statuses.count("cached") >= finished and statuses.count("fitted") == len(KEYS) - statuses.count("cached")
    assert [path.name for path in out_dir.rglob(".*")] == [CACHE_FOLDER]
    assert len(load_bank(out_dir / BANK_FILE).programs[0].zones) == len(KEYS)


def test_a_fit_the_patch_format_rejects_fails_alone(tmp_path, monkeypatch):
    from wifm_synth.bank import executors

    def fit_with_overlong_attack(sample, **options):
        result = fit_file(sample, **options)
        if "G4" in sample:
            result.patch.operators[0].envelope.segments = [(70.0, 0.0)]
        return result

    fit_file = executors.fit_file
    monkeypatch.setattr(executors, "fit_file", fit_with_overlong_attack)
    write_note(tmp_path / "lib" / "Flute_C4.wav", 60, seconds=0.4)
    write_note(tmp_path / "lib" / "Flute_G4.wav", 67, seconds=0.4)
    build = build_bank(tmp_path / "lib", tmp_path / "bank", jobs=1, progress=False)
    statuses = {entry.label: (entry.status, entry.detail) for entry in build.entries}
    assert statuses["lib/Flute_C4.wav"][0] == "fitted"
    assert statuses["lib/Flute_G4.wav"][0] == "failed"
    assert "segments[0].duration_s: must be <= 60" in statuses["lib/Flute_G4.wav"][1]
    assert [zone.patch for zone in load_bank(build.bank_path).programs[0].zones] == ["lib/Flute_C4.json"]

    # A rejected patch reaching the saving step (from a worker or a cache) fails its entry the same way.
    entry = build.entries[0]
    document = json.loads((tmp_path / "bank" / entry.patch_file).read_text())
    document["operators"][0]["envelope"]["segments"][0][0] = 70.0
    assert settle(entry, FitOutcome("key", patch=document), "fitted", tmp_path / "bank")
    assert entry.status == "failed" and "must be <= 60" in entry.detail


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "tcp://192.0.2.1:8786"])  # refused; TEST-NET-1
def test_unreachable_dask_scheduler_is_one_line_within_the_timeout(small_library, tmp_path, address):
    pytest.importorskip("distributed")
    from wifm_synth.bank.executors import DASK_CONNECT_TIMEOUT_S

    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "bank", str(small_library), "-o",
                             str(tmp_path / "bank"), "--dask-scheduler", address],
                            capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"wifm: error: cannot connect to the Dask scheduler at {address} (")
    assert result.stderr.count("\n") == 1, result.stderr
    # the timeout plus start-up (imports, on a loaded machine), far from Dask's own 30 s + 60 s of closing
    assert elapsed < DASK_CONNECT_TIMEOUT_S + 15, elapsed
    assert not (tmp_path / "bank").exists()
