"""Exact vs numerical gradients in the multi-operator fit: the same fits, once with the exact W1 gradient and
once with finite differences in its place, timed and scored against the recordings.

Usage: python tools/gradient_fit.py NOTES_DIR [--ops 4|6] [--notes NAME,NAME] [--json]

The numerical variant replaces ``graph_fit.evaluate`` (the per-frame loss and its slopes w.r.t. every
operator level and the feedback) for the whole fit: one spectrum evaluation for the loss, then per
operator two more with that operator's level moved by ±STEP in every frame at once (frames are
independent, so one pair of evaluations gives that operator's slope in all frames) and two for the
feedback — 2(K + 1) + 1 evaluations where the exact gradient needs one. At a level within STEP of 0 the
difference is one-sided (forward), because the search ranks new operators by the one-sided slope at 0.
Each fit is rendered by the engine and scored as ``tools/eval_fit.py`` does; run with one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from benchmark_info import machine_info
from eval_fit import note_keys, note_paths

from wifm_synth.fit import graph_fit, multi_op
from wifm_synth.fit.fitter import FitSettings, fit_file
from wifm_synth.fit.loss import frame_losses
from wifm_synth.fit.verify import verify_fit
from wifm_synth.library.naming import parse_sample_name

STEP = 1e-6


def numerical_evaluate(cache, structure, levels, feedback, axis, amplitudes):
    """``graph_fit.evaluate`` with finite-difference slopes instead of the exact ones."""
    def losses(trial_levels, trial_feedback):
        magnitudes, _ = cache(structure, trial_levels, trial_feedback)
        return frame_losses("w1", axis, amplitudes, axis, magnitudes).loss

    levels = np.asarray(levels, dtype=np.float64)
    loss = losses(levels, feedback)
    gradient = np.empty_like(levels)
    for k in range(levels.shape[1]):
        up, down = levels.copy(), levels.copy()
        up[:, k] += STEP
        down[:, k] = np.maximum(levels[:, k] - STEP, 0.0)
        gradient[:, k] = (losses(up, feedback) - losses(down, feedback)) / (up[:, k] - down[:, k])
    if structure.feedback_operator is None:
        feedback_gradient = np.zeros(levels.shape[0])
    else:
        low = max(feedback - STEP, 0.0)
        feedback_gradient = (losses(levels, feedback + STEP) - losses(levels, low)) / (feedback + STEP - low)
    return loss, gradient, feedback_gradient


def _fit_and_score(path: Path, note: int | None, ops: int) -> dict:
    result = fit_file(path, note=note, settings=FitSettings(ops=ops))
    pitch = result.patch.pitch
    verification = verify_fit(result.patch, path, midi_note=pitch.reference_note, velocity=pitch.reference_velocity)
    return {"fit_seconds": round(result.seconds, 3), "stft_db": round(verification.scores[0].fit, 3),
            "position": round(verification.quality, 3), "structure": result.patch.metadata.get("structure", "pair")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes_dir", type=Path)
    parser.add_argument("--ops", type=int, choices=(4, 6), default=6)
    parser.add_argument("--notes", default="", help="comma-separated file stems (default: every note)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    paths = note_paths(args.notes_dir, args.notes)
    if not paths:
        parser.error(f"{args.notes_dir}: no matching audio files")
    keys = note_keys(args.notes_dir)
    exact_evaluate = graph_fit.evaluate
    rows = []
    for path in paths:
        note = keys.get(path.name, parse_sample_name(path.name).note)
        row = {"note": path.stem}
        for name, evaluate in (("exact", exact_evaluate), ("numerical", numerical_evaluate)):
            graph_fit.evaluate = multi_op.evaluate = evaluate
            try:
                row[name] = _fit_and_score(path, note, args.ops)
            finally:
                graph_fit.evaluate = multi_op.evaluate = exact_evaluate
        rows.append(row)
        if not args.json:
            print(f"{path.stem:24s} " + "  ".join(
                f"{name} {row[name]['fit_seconds']:7.2f} s {row[name]['stft_db']:6.2f} dB (pos. {row[name]['position']:.2f})"
                for name in ("exact", "numerical")), flush=True)
    summary = {name: {key: statistics.median(row[name][key] for row in rows) for key in ("fit_seconds", "stft_db",
                                                                                           "position")}
               for name in ("exact", "numerical")}
    if args.json:
        json.dump({"ops": args.ops, "rows": rows, "medians": summary, "machine": machine_info()}, sys.stdout, indent=2)
        print()
    else:
        print("median " + "  ".join(f"{name} {values['fit_seconds']:.2f} s {values['stft_db']:.2f} dB "
                                    f"(pos. {values['position']:.2f})" for name, values in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
