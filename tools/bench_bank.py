"""`wifm bank` throughput: a 60-note sample folder converted with 1 and with 2 worker processes.

Usage: python tools/bench_bank.py [NOTES_DIR] [--json]
       python tools/bench_bank.py --sf2 FONT.sf2 [--presets LIST] [--jobs N] [--out DIR]
       python tools/bench_bank.py --sf2 FONT.sf2 --stages NOTES [--presets LIST]
NOTES_DIR is any folder of single-note recordings (default: the bundled samples/freepats). The benchmark
folder holds each of them at several levels named as velocity layers (``piano/piano_55_100.wav``,
``piano_55_80.wav``...), so every file is a distinct fit. Each conversion runs the real command (`python -m wifm_synth bank`) in
a fresh output folder, so both pay start-up; the shared Numba cache is warmed by a one-note run first.
Runs alternate between 1 and 2 workers; the best of each is reported, with CPU seconds and the load
average before each run, since other work on the machine slows the wall-clock figures.

With ``--sf2`` it converts a General MIDI SoundFont instead, as ``wifm bank`` does: by default its melodic
set and standard kit (``0-127,128:0``), every 6th key, one velocity, 2 operators, on ``--jobs`` processes,
once. It reports the wall time, the time per preset, and every preset's fitted, skipped (silent) and failed
notes with the reasons; for a subset (``--presets``) it extrapolates the wall time to the whole set.
``--stages NOTES`` instead times each stage of a note (FluidSynth render, fit, verification, drum fit) in
CPU seconds on one process, which other load on the machine changes least.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from benchmark_info import machine_info

from wifm_synth.formats.sf2 import DRUM_BANK
from wifm_synth.library.discover import AUDIO_SUFFIXES
from wifm_synth.library.naming import parse_sample_name

REPO = Path(__file__).resolve().parent.parent
BUNDLED_NOTES = REPO / "samples" / "freepats"
NOTE_COUNT = 60
# Velocity layers: name velocity → gain applied to the recording (about -3 dB per layer).
REPEATS = 3
LAYERS = {100: 1.0, 80: 0.71, 64: 0.5, 50: 0.35, 40: 0.25, 32: 0.18}


def source_notes(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)


def build_library(folder: Path, notes: list[Path]) -> int:
    """Write NOTE_COUNT files: every note at the first few levels, one subfolder per instrument."""
    layer_count = -(-NOTE_COUNT // len(notes))
    written = 0
    for velocity, gain in list(LAYERS.items())[:layer_count]:
        for note in notes:
            if written == NOTE_COUNT:
                return written
            audio, rate = soundfile.read(note)
            instrument, key = note.stem.rsplit("_", 2)[0], parse_sample_name(note.name).note
            # A name without a key keeps its stem (the key is detected) and gets an explicit velocity.
            name = f"{note.stem}_vel{velocity}" if key is None else f"{instrument}_{key}_{velocity}"
            target = folder / instrument / f"{name}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(target, audio * gain, rate, subtype="PCM_16")
            written += 1
    return written


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def convert(source: Path, out_dir: Path, jobs: int) -> dict:
    """One `wifm bank` run in a fresh output folder: wall and CPU seconds (its worker processes included)."""
    load = os.getloadavg()[0]
    cpu_before, started = children_cpu_seconds(), time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "bank", str(source), "-o", str(out_dir),
                             "--jobs", str(jobs), "--json"], capture_output=True, text=True, check=False)
    seconds, cpu_seconds = time.perf_counter() - started, children_cpu_seconds() - cpu_before
    if result.returncode != 0:
        raise RuntimeError(f"wifm bank --jobs {jobs} failed ({result.returncode}): {result.stderr.strip()}")
    summary = json.loads(result.stdout)
    fitted = summary["counts"]["fitted"]
    shutil.rmtree(out_dir)
    return {"jobs": jobs, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3), "fitted": fitted,
            "seconds_per_note": round(seconds / fitted, 4), "load_average_before": round(load, 2)}


def best_of(runs: list[dict]) -> dict:
    return min(runs, key=lambda run: run["seconds"])


GM_SET = "0-127,128:0"
GM_SET_PRESETS = 129
SF2_TARGET_SECONDS = 15 * 60


def bench_soundfont(font: Path, presets: str, jobs: int, out_dir: Path | None = None) -> dict:
    """One `wifm bank FONT.sf2` run: wall and CPU seconds, and per preset what was fitted and what failed.

    The bank is written to ``out_dir`` and kept when given (for a report or a song through it), else to a
    temporary folder; an existing ``out_dir`` is refused, so a resumed (cached) run is never timed."""
    if out_dir is not None and out_dir.exists():
        raise RuntimeError(f"{out_dir} exists: the benchmark converts into a new folder")
    with tempfile.TemporaryDirectory(prefix="wifm-bench-sf2-") as temp:
        bank_dir = out_dir if out_dir is not None else Path(temp) / "bank"
        load = os.getloadavg()[0]
        cpu_before, started = children_cpu_seconds(), time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "wifm_synth", "bank", str(font), "-o", str(bank_dir),
                                 "--presets", presets, "--keys", "6", "--velocities", "100", "--ops", "2",
                                 "--jobs", str(jobs), "--json"], capture_output=True, text=True, check=False)
        seconds, cpu_seconds = time.perf_counter() - started, children_cpu_seconds() - cpu_before
        load_after = os.getloadavg()[0]
    if result.returncode not in (0, 1):  # 1: some notes failed, which the report lists
        raise RuntimeError(f"wifm bank {font} failed ({result.returncode}): {result.stderr.strip()}")
    summary = json.loads(result.stdout)
    per_preset: dict[str, dict] = {}
    for row in summary["samples"]:
        name = row["sample"].rsplit(" ", 2)[0]  # "BANK:PROGRAM NAME KEY vVELOCITY" → "BANK:PROGRAM NAME"
        preset = per_preset.setdefault(name, {"preset": name, "fitted": 0, "skipped": 0, "failed": 0,
                                              "fit_seconds": 0.0, "failures": []})
        status = "fitted" if row["status"] == "cached" else row["status"]
        preset[status] = preset.get(status, 0) + 1
        preset["fit_seconds"] = round(preset["fit_seconds"] + (row["seconds"] or 0.0), 3)
        if row["status"] == "failed":
            preset["failures"].append(f"{row['sample']}: {row['detail']}")
    count = len(per_preset)
    return {
        "benchmark": "bank-sf2", "soundfont": font.name, "presets": presets, "preset_count": count, "jobs": jobs,
        "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1), "load_average_before": round(load, 2),
        "load_average_after": round(load_after, 2),
        "seconds_per_preset": round(seconds / count, 2) if count else None,
        "gm_set_seconds": round(seconds, 1) if presets == GM_SET else gm_set_estimate(per_preset, seconds),
        "gm_set_extrapolated": presets != GM_SET,
        # CPU time is what other load on the machine changes least: on 2 otherwise idle cores, about half of it.
        "gm_set_cpu_seconds": round(cpu_seconds, 1) if presets == GM_SET else gm_set_estimate(per_preset, cpu_seconds),
        "presets_failing_whole": [preset["preset"] for preset in per_preset.values() if not preset["fitted"]],
        "counts": summary["counts"], "per_preset": list(per_preset.values()),
        "targets": {"gm_set_seconds_max": SF2_TARGET_SECONDS}, "machine": machine_info(),
    }


def gm_set_estimate(per_preset: dict[str, dict], seconds: float) -> float | None:
    """The wall time of the whole GM set from a subset's, by notes: a kit has ~3 times a melodic preset's notes,
    so the subset's melodic notes per preset stand for 128 presets and its kit (if any) for the kit."""
    notes = {name: preset["fitted"] + preset["failed"] for name, preset in per_preset.items()}
    melodic = [count for name, count in notes.items() if not name.startswith(f"{DRUM_BANK}:")]
    kit = [count for name, count in notes.items() if name.startswith(f"{DRUM_BANK}:")]
    if not melodic or not sum(notes.values()):
        return None
    whole_set_notes = sum(melodic) / len(melodic) * (GM_SET_PRESETS - 1) + (kit[0] if kit else 0)
    return round(seconds * whole_set_notes / sum(notes.values()), 1)


def profile_stages(font: Path, presets: str, notes: int) -> dict:
    """Where a SoundFont note's time goes, in CPU seconds on one process: FluidSynth's render (and its FLAC),
    the fit, and the fit's verification (the quality metrics stored with each patch); drum-kit notes, fitted
    unpitched and scored by the fit itself, separately. ``notes`` are spread evenly over the chosen presets."""
    from wifm_synth.bank.executors import quality_metrics
    from wifm_synth.errors import NoPitchError
    from wifm_synth.fit.drums import fit_drum_file
    from wifm_synth.fit.fitter import FitSettings, fit_file
    from wifm_synth.library.soundfont import (
        SAMPLE_RATE,
        SILENT_PEAK,
        NoteRenderer,
        plan_soundfont,
    )

    with tempfile.TemporaryDirectory(prefix="wifm-bench-stages-") as temp:
        plans = plan_soundfont(font, Path(temp), presets=presets, keys_every=6, velocities="100")
        entries = [entry for plan in plans for entry in plan.entries]
        chosen = entries[:: max(1, len(entries) // notes)][:notes]
        renderer, settings = NoteRenderer(font), FitSettings(ops=2)
        stages: dict[str, list[float]] = {"render": [], "fit": [], "verify": [], "drum_fit": []}
        warm = True  # the first note compiles (Numba) and is not counted
        for entry in [chosen[0], *chosen]:
            started = time.process_time()
            frames = renderer.render(entry.preset, entry.note, entry.velocity)
            path = Path(temp) / f"{entry.preset.bank}-{entry.preset.program}-{entry.note}.flac"
            soundfile.write(path, frames, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
            rendered = time.process_time()
            times = {"render": rendered - started}
            if np.abs(frames.astype(np.int32)).max() < SILENT_PEAK:  # left out by wifm bank too
                pass
            elif entry.preset.is_drum_kit:
                fit_drum_file(path, entry.note, velocity=entry.velocity)
                times["drum_fit"] = time.process_time() - rendered
            else:
                try:
                    patch = fit_file(path, note=entry.note, settings=settings).patch
                except NoPitchError:  # a sound effect: wifm bank fits it as a drum
                    fit_drum_file(path, entry.note, velocity=entry.velocity)
                    times["drum_fit"] = time.process_time() - rendered
                else:
                    fitted = time.process_time()
                    quality_metrics(patch, path)
                    times.update(fit=fitted - rendered, verify=time.process_time() - fitted)
            if not warm:
                for stage, seconds in times.items():
                    stages[stage].append(seconds)
            warm = False
        renderer.close()
    return {"benchmark": "bank-sf2-stages", "soundfont": font.name, "presets": presets, "notes": len(chosen),
            "cpu_seconds_per_note": {stage: round(sum(values) / len(values), 4) if values else None
                                     for stage, values in stages.items()},
            "notes_per_stage": {stage: len(values) for stage, values in stages.items()},
            "load_average": round(os.getloadavg()[0], 2), "machine": machine_info()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf2", type=Path, help="convert this General MIDI SoundFont instead of a notes folder")
    parser.add_argument("--presets", default=GM_SET, help=f"with --sf2: the presets to convert (default {GM_SET})")
    parser.add_argument("--jobs", type=int, default=2, help="with --sf2: worker processes (default 2)")
    parser.add_argument("--out", type=Path, help="with --sf2: write the bank to this new folder and keep it")
    parser.add_argument("--stages", type=int, metavar="NOTES",
                        help="with --sf2: instead of converting, time render, fit and verification of NOTES notes")
    parser.add_argument("notes_dir", nargs="?", type=Path, default=BUNDLED_NOTES,
                        help="any folder of single-note recordings (default: the bundled samples/freepats)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    args = parser.parse_args()
    if args.sf2 is not None and args.stages:
        print(json.dumps(profile_stages(args.sf2, args.presets, args.stages)))
        return 0
    if args.sf2 is not None:
        print(json.dumps(bench_soundfont(args.sf2, args.presets, args.jobs, args.out)))
        return 0
    notes = source_notes(args.notes_dir)
    if not notes:
        print(f"bench_bank: no audio files under {args.notes_dir}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wifm-bench-bank-") as temp:
        temp = Path(temp)
        count = build_library(temp / "library", notes)
        warm = temp / "warm"
        warm.mkdir()
        (warm / notes[0].name).write_bytes(notes[0].read_bytes())
        convert(warm, temp / "warm-bank", 1)
        # Alternate the configurations and keep each one's best run: other load on the machine only slows runs down.
        runs = [convert(temp / "library", temp / f"bank-{jobs}", jobs) for _ in range(REPEATS) for jobs in (1, 2)]
    serial, parallel = (best_of([run for run in runs if run["jobs"] == jobs]) for jobs in (1, 2))
    print(json.dumps({
        "benchmark": "bank",
        "notes": count,
        "source": str(args.notes_dir),
        "best": [serial, parallel],
        "speedup_2_workers": round(serial["seconds"] / parallel["seconds"], 3),
        "runs": runs,
        "targets": {"seconds_2_workers_max": 60.0, "speedup_min": 1.7},
        "machine": machine_info(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
