"""Analysis speed and accuracy on a folder of notes: time per note, f0 against the folder's MANIFEST.tsv, release.

Usage: python tools/bench_analysis.py [NOTES_DIR] [--repeats 5]    (default: the bundled samples/freepats)

Prints JSON: per note the best-of-N wall time after a warm-up call, the detected f0 and its error in
cents against the manifest's ``f0_est_hz`` (when the folder has a MANIFEST.tsv), the release start and
any warnings (the manifest's ``midi_note`` is passed as the note hint); then medians, maxima and the
machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np
from benchmark_info import machine_info

from wifm_synth.analysis import analyze

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_NOTES = REPO_ROOT / "samples" / "freepats"


def manifest_rows(folder: Path) -> dict[str, dict]:
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        return {}
    with open(manifest, newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def measure(path: Path, row: dict | None, repeats: int) -> dict:
    hint = int(row["midi_note"]) if row else None
    analyze(path, note_hint=hint)  # warm the file cache
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        analysis = analyze(path, note_hint=hint)
        seconds.append(time.perf_counter() - started)
    result = {"note": path.name, "seconds": round(min(seconds), 4),
              "audio_seconds": round(analysis.audio.size / analysis.sample_rate, 3),
              "f0_hz": round(analysis.f0_hz, 3), "partials": int(analysis.partial_hz.size),
              "release_start_s": analysis.release_start_s, "warnings": analysis.warnings}
    if row and row.get("f0_est_hz"):
        result["f0_error_cents"] = round(1200.0 * float(np.log2(analysis.f0_hz / float(row["f0_est_hz"]))), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes_dir", type=Path, nargs="?", default=BUNDLED_NOTES)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = manifest_rows(args.notes_dir)
    paths = sorted(p for p in args.notes_dir.rglob("*") if p.suffix.lower() in {".wav", ".flac", ".aiff", ".ogg"})
    notes = [measure(path, rows.get(path.name), max(1, args.repeats)) for path in paths]
    times = [n["seconds"] for n in notes]
    errors = [abs(n["f0_error_cents"]) for n in notes if "f0_error_cents" in n]
    summary = {"notes": len(notes), "median_seconds": statistics.median(times), "max_seconds": max(times),
               "releases_found": sum(n["release_start_s"] is not None for n in notes)}
    if errors:
        summary.update(median_abs_f0_error_cents=statistics.median(errors), max_abs_f0_error_cents=max(errors))
    print(json.dumps({"notes_dir": str(args.notes_dir), "per_note": notes, "summary": summary,
                      "machine": machine_info()}, indent=2))


if __name__ == "__main__":
    main()
