"""Fit quality on a folder of notes: each fitting method scored against the floor and limit references.

Usage: python tools/eval_fit.py NOTES_DIR [--json | --markdown] [--methods wifm-w1,wifm-w1-6op,...] [--workers 2] [--notes a,b]

Every note is fitted with each method, rendered through the engine at its key and reference velocity
(held until the target's release starts, or for its whole length), aligned to the target's onset and
scored with the metrics of ``wifm_synth.analysis.metrics`` by ``wifm_synth.fit.verify`` (as ``wifm report`` is). Next
to each metric stand the floor (a sine at f0 carrying the target's RMS envelope) and the limit (the
target resynthesised from its own measured harmonics); *position* says where the fit sits between
them on the log-spectral distance: 0 = floor, 1 = limit. Notes are found in the folder and its
subfolders; the key of each comes from a MANIFEST.tsv in the folder (``file`` and ``midi_note``
columns) or from its file name.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmark_info import machine_info

from wifm_synth.errors import WifmError
from wifm_synth.fit.fitter import FitSettings, fit_file
from wifm_synth.fit.verify import METRICS, verify_fit
from wifm_synth.library.naming import parse_sample_name

METHODS = {
    "wifm-w1": FitSettings(loss="w1"),
    "wifm-mse": FitSettings(loss="mse"),
    "seed": FitSettings(method="seed"),
    "wifm-w1-4op": FitSettings(loss="w1", ops=4),
    "wifm-w1-6op": FitSettings(loss="w1", ops=6),
    "wifm-sinkhorn-6op": FitSettings(loss="sinkhorn", ops=6),
    "wifm-w1-auto": FitSettings(loss="w1", ops="auto"),
}
# The multi-operator methods take seconds per note; they run when named.
DEFAULT_METHODS = ("wifm-w1", "wifm-mse", "seed")
AUDIO_SUFFIXES = {".wav", ".flac", ".aif", ".aiff", ".ogg"}
METRIC_KEYS = ("stft_db", "harmonic_db", "envelope_db", "f0_cents")


def note_paths(folder: Path, stems: str = "") -> list[Path]:
    """The audio files in the folder and its subfolders, only those named in ``stems`` (comma-separated file
    stems) when given."""
    wanted = {name for name in stems.split(",") if name}
    return sorted(path for path in folder.rglob("*")
                  if path.suffix.lower() in AUDIO_SUFFIXES and (not wanted or path.stem in wanted))


def note_keys(folder: Path) -> dict[str, int]:
    """MIDI key per file name from the folder's MANIFEST.tsv, if it has one."""
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        return {}
    with open(manifest, newline="") as handle:
        return {row["file"]: int(row["midi_note"]) for row in csv.DictReader(handle, delimiter="\t")}


def evaluate(path: Path, note: int | None, method: str) -> dict:
    """Fit ``path`` with ``method`` and score the render; a failure is reported in the row, not raised."""
    row: dict = {"note": path.name, "method": method}
    try:
        result = fit_file(path, note=note, settings=METHODS[method])
        pitch = result.patch.pitch
        verification = verify_fit(result.patch, path, midi_note=pitch.reference_note, velocity=pitch.reference_velocity)
    except WifmError as exc:
        row["error"] = str(exc)
        return row
    row.update(fit_seconds=round(result.seconds, 3), loss=float(result.loss), f0_hz=round(result.analysis.f0_hz, 3),
               ratios=[round(r, 4) for r in result.ratios])
    if not verification.scores:
        row["error"] = "render has no measurable pitch"
        return row
    for key, score in zip(METRIC_KEYS, verification.scores):
        row[key] = {"fit": round(score.fit, 3), "floor": round(score.floor, 3), "limit": round(score.limit, 3)}
    position = verification.quality
    row["position"] = None if position is None else round(position, 3)
    return row


def medians(rows: list[dict], methods: list[str]) -> dict[str, dict]:
    summary = {}
    for method in methods:
        scored = [row for row in rows if row["method"] == method and "error" not in row]
        entry: dict = {"notes": len(scored), "failed": sum(1 for r in rows if r["method"] == method and "error" in r)}
        if scored:
            for key in METRIC_KEYS:
                entry[key] = {part: round(statistics.median(row[key][part] for row in scored), 3)
                              for part in ("fit", "floor", "limit")}
            positions = [row["position"] for row in scored if row["position"] is not None]
            entry["position"] = round(statistics.median(positions), 3) if positions else None
            entry["beats_floor"] = sum(row["stft_db"]["fit"] < row["stft_db"]["floor"] for row in scored)
            entry["fit_seconds"] = round(statistics.median(row["fit_seconds"] for row in scored), 3)
        summary[method] = entry
    return summary


def table(rows: list[dict], summary: dict[str, dict]) -> str:
    header = (f"{'note':<26} {'method':<9} {'stft dB fit/floor/limit':>24} {'pos':>6} {'harm dB':>8} "
              f"{'env dB':>7} {'f0 ¢':>6} {'fit s':>6}")
    lines = [header, "-" * len(header)]
    for row in rows:
        if "error" in row:
            lines.append(f"{row['note']:<26} {row['method']:<9} error: {row['error']}")
            continue
        lines.append(_table_line(row["note"], row["method"], row, row["position"], row["fit_seconds"]))
    lines.append("-" * len(header))
    for method, entry in summary.items():
        if entry["notes"]:
            lines.append(_table_line(f"median ({entry['notes']} notes)", method, entry, entry["position"],
                                     entry["fit_seconds"]))
    return "\n".join(lines)


def markdown(rows: list[dict], summary: dict[str, dict], methods: list[str]) -> str:
    """Per-note log-spectral distance (position) and harmonic-level error per method, then the medians."""
    def cell(values: dict | None, key: str, with_position: bool) -> str:
        if values is None or "error" in values:
            return "failed"
        text = f"{values[key]['fit']:.2f}"
        if with_position and values["position"] is not None:
            text += f" ({values['position']:.2f})"
        return text

    by_note: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_note.setdefault(row["note"], {})[row["method"]] = row
    header = ["note", "floor", "limit"] + [f"{m} dB (pos.)" for m in methods] + [f"harm. {m}" for m in methods]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for note, per_method in by_note.items():
        scored = next((r for r in per_method.values() if "error" not in r), None)
        references = ([f"{scored['stft_db']['floor']:.2f}", f"{scored['stft_db']['limit']:.2f}"]
                      if scored else ["-", "-"])
        cells = ([cell(per_method.get(m), "stft_db", True) for m in methods]
                 + [cell(per_method.get(m), "harmonic_db", False) for m in methods])
        lines.append("| " + " | ".join([Path(note).stem, *references, *cells]) + " |")
    first = summary[methods[0]]
    if first["notes"]:
        medians_row = ["**median**", f"{first['stft_db']['floor']:.2f}", f"{first['stft_db']['limit']:.2f}"]
        medians_row += [cell(summary[m] if summary[m]["notes"] else None, "stft_db", True) for m in methods]
        medians_row += [cell(summary[m] if summary[m]["notes"] else None, "harmonic_db", False) for m in methods]
        lines.append("| " + " | ".join(medians_row) + " |")
    return "\n".join(lines)


def _table_line(name: str, method: str, values: dict, position: float | None, seconds: float) -> str:
    stft = values["stft_db"]
    position_text = "-" if position is None else f"{position:.2f}"
    return (f"{name:<26} {method:<9} {stft['fit']:>8.2f}/{stft['floor']:>6.2f}/{stft['limit']:>6.2f} "
            f"{position_text:>6} {values['harmonic_db']['fit']:>8.2f} {values['envelope_db']['fit']:>7.2f} "
            f"{values['f0_cents']['fit']:>6.1f} {seconds:>6.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes_dir", type=Path)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    output.add_argument("--markdown", action="store_true", help="print a Markdown table for docs/RESULTS.md")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated (default {','.join(DEFAULT_METHODS)}): " + ", ".join(METHODS))
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--notes", default="", help="comma-separated file stems to fit (default: every note)")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.error(f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
    if not args.notes_dir.is_dir():
        parser.error(f"{args.notes_dir}: not a folder")
    paths = note_paths(args.notes_dir, args.notes)
    if not paths:
        parser.error(f"{args.notes_dir}: no audio files")
    keys = note_keys(args.notes_dir)
    jobs = [(path, keys.get(path.name, parse_sample_name(path.name).note), method)
            for path in paths for method in methods]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        rows = list(pool.map(evaluate, *zip(*jobs)))
    summary = medians(rows, methods)
    if args.json:
        json.dump({"notes_dir": str(args.notes_dir), "metrics": [f"{name} ({unit})" for name, unit in METRICS],
                   "rows": rows, "medians": summary, "wall_seconds": round(time.perf_counter() - started, 1),
                   "machine": machine_info()}, sys.stdout, indent=2)
        print()
    elif args.markdown:
        print(markdown(rows, summary, methods))
    else:
        print(table(rows, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
