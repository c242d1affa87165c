"""What putting fitted feedback on the DX7's 0–7 grid costs: each note is fitted, and when the chosen patch
uses feedback, it is rendered again with the feedback the DX7 export would play (the closest step,
``formats.dx7_export.feedback_step``, at the operator's peak) and both renders are scored.

Usage: python tools/dx7_feedback_cost.py NOTES_DIR [--ops 4|6] [--notes NAME,NAME]

Prints per note the fitted feedback (rad), the step and what it plays (rad), and the log-spectral
distance (dB) and position of both renders; then the medians over the notes that use feedback.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

from eval_fit import note_keys, note_paths

from wifm_synth.fit.fitter import FitSettings, fit_file
from wifm_synth.fit.verify import verify_fit
from wifm_synth.formats import dx7_patch as dx7
from wifm_synth.formats.dx7_export import feedback_amplitude, feedback_step
from wifm_synth.library.naming import parse_sample_name


def _scored(patch, path):
    pitch = patch.pitch
    verification = verify_fit(patch, path, midi_note=pitch.reference_note, velocity=pitch.reference_velocity)
    return verification.scores[0].fit, verification.quality


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes_dir", type=Path)
    parser.add_argument("--ops", type=int, choices=(4, 6), default=6)
    parser.add_argument("--notes", default="", help="comma-separated file stems (default: every note)")
    args = parser.parse_args(argv)
    paths = note_paths(args.notes_dir, args.notes)
    if not paths:
        parser.error(f"{args.notes_dir}: no matching audio files")
    keys = note_keys(args.notes_dir)
    changes = []
    for path in paths:
        patch = fit_file(path, note=keys.get(path.name, parse_sample_name(path.name).note),
                         settings=FitSettings(ops=args.ops)).patch
        carriers = patch.topology.carriers
        looped = [index for index, operator in enumerate(patch.operators) if operator.feedback > 0.0]
        if not looped:
            print(f"{path.stem:24s} no feedback")
            continue
        index = looped[0]
        operator = patch.operators[index]
        step = feedback_step(operator, carriers[index])
        played = dx7.feedback_radians(step, feedback_amplitude(operator, carriers[index]))
        operators = list(patch.operators)
        operators[index] = dataclasses.replace(operator, feedback=played)
        fitted_db, fitted_position = _scored(patch, path)
        stepped_db, stepped_position = _scored(dataclasses.replace(patch, operators=operators), path)
        changes.append((stepped_db - fitted_db, stepped_position - fitted_position))
        print(f"{path.stem:24s} feedback {operator.feedback:.3f} rad → step {step} = {played:.3f} rad: "
              f"{fitted_db:.2f} dB (pos. {fitted_position:.3f}) → {stepped_db:.2f} dB (pos. {stepped_position:.3f})",
              flush=True)
    if changes:
        print(f"median change over {len(changes)} notes with feedback: {statistics.median(c[0] for c in changes):+.3f} dB, "
              f"position {statistics.median(c[1] for c in changes):+.3f}; worst {max(c[0] for c in changes):+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
