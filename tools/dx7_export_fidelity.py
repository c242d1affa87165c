"""Export fidelity: fitted patches exported as DX7 voices and played by msfa, against the fit's own render.

    python tools/dx7_export_fidelity.py MSFA_CHECKOUT NOTES_DIR PATCHES_DIR [--notes a.wav,b.wav]

For every note ``NAME.wav`` of NOTES_DIR (key from its MANIFEST.tsv ``midi_note`` column, held for its
``note_off_s``, the rest of the file as release) with a fitted patch ``PATCHES_DIR/NAME.json``:

- the patch is exported as ``wifm syx export --single`` does (``formats.dx7_export``), the voice is
  rendered by msfa (``dx7_reference``'s driver) and by this engine natively (the fit itself), at the
  note's key, velocity 100, 44.1 kHz;
- each render is scored against the note with ``dx7_reference.distance_db`` (the ROM1A fidelity
  distance); ``gap_db`` = msfa's distance − the native render's, and ``msfa_vs_native_db`` is the
  distance of msfa's render from the native one;
- where the loss comes from: the native patch with one aspect replaced by what the DX7 voice plays
  (the voice compiled back by ``dx7_patch``): envelopes, levels (output level, key velocity and
  level scaling), frequencies (ratios, detune, fixed, and the patch's tuning, which the export moves
  into the detunes), feedback, LFO; the distance of each from the
  native render, and of the whole compiled voice.

Prints JSON: per note, then the median of each figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from dx7_reference import RATE, build_driver, distance_db, reference_render

from wifm_synth.analysis.audio import load_audio
from wifm_synth.engine import render_note
from wifm_synth.formats.dx7_export import export_voice, place_on_algorithm
from wifm_synth.formats.dx7_patch import compile_voice
from wifm_synth.formats.dx7_sysex import (
    CARTRIDGE_VOICE_COUNT,
    Dx7Voice,
    write_cartridge,
)
from wifm_synth.formats.patch_json import load_patch

VELOCITY = 100
# Operator fields of each aspect a DX7 voice may play differently from the native patch.
ASPECTS = {
    "envelopes": ("envelope", "rate_scaling"),
    "levels": ("level", "velocity_sensitivity", "key_level_db_per_octave"),
    "frequencies": ("ratio", "fixed_hz", "detune_cents"),
    "feedback": ("feedback",),
}


def with_aspect(native, compiled, slots, fields):
    """The native patch with ``fields`` of each operator taken from the compiled DX7 voice."""
    operators = [replace(operator, **{field: getattr(compiled.operators[slots[index]], field) for field in fields})
                 for index, operator in enumerate(native.operators)]
    return replace(native, operators=operators)


def mono(audio: np.ndarray) -> np.ndarray:
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def manifest_notes(notes_dir: Path) -> dict[str, tuple[int, float]]:
    with open(notes_dir / "MANIFEST.tsv", newline="") as manifest:
        return {row["file"]: (int(row["midi_note"]), float(row["note_off_s"]))
                for row in csv.DictReader(manifest, delimiter="\t")}


def measure_note(binary: Path, folder: Path, note_path: Path, patch_path: Path, key: int, hold_s: float) -> dict:
    target, _ = load_audio(note_path, RATE)
    release_s = max(0.1, len(target) / RATE - hold_s)
    native = load_patch(patch_path)
    voice, losses = export_voice(native)
    cartridge = folder / "voice.syx"
    cartridge.write_bytes(write_cartridge([voice] + [Dx7Voice.init_voice()] * (CARTRIDGE_VOICE_COUNT - 1)))
    # The driver plays key + transpose − 24; the exported voice keeps transpose 24 (no shift).
    exported = reference_render(binary, cartridge, 0, key, folder, VELOCITY, hold_s, release_s)

    def render(patch):
        return mono(render_note(patch, key, velocity=VELOCITY, hold_s=hold_s, tail_s=release_s, sample_rate=RATE))

    native_render = render(native)
    compiled = compile_voice(voice)
    _, slots, _ = place_on_algorithm(native)
    result = {
        "note": note_path.name, "key": key, "voice": voice.name, "not_kept": losses,
        "native_db": round(distance_db(target, native_render)[0], 2),
        "msfa_export_db": round(distance_db(target, exported)[0], 2),
        "msfa_vs_native_db": round(distance_db(native_render, exported)[0], 2),
        "compiled_vs_native_db": round(distance_db(native_render, render(compiled))[0], 2),
        "msfa_vs_compiled_db": round(distance_db(render(compiled), exported)[0], 2),
    }
    result["gap_db"] = round(result["msfa_export_db"] - result["native_db"], 2)
    aspects = {}
    for name, fields in ASPECTS.items():
        hybrid = with_aspect(native, compiled, slots, fields)
        if name == "frequencies":  # the DX7 voice has no tuning: the export moves it into the detunes
            hybrid = replace(hybrid, pitch=replace(hybrid.pitch, tune_cents=compiled.pitch.tune_cents))
        aspects[name] = round(distance_db(native_render, render(hybrid))[0], 2)
    aspects["lfo"] = round(distance_db(native_render, render(replace(native, lfo=compiled.lfo)))[0], 2)
    result["aspect_vs_native_db"] = aspects
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("msfa_checkout", type=Path)
    parser.add_argument("notes_dir", type=Path, help="notes with a MANIFEST.tsv (file, midi_note, note_off_s)")
    parser.add_argument("patches_dir", type=Path, help="fitted patches, NAME.json for note NAME.wav")
    parser.add_argument("--notes", help="comma-separated note files to use (default: all with a patch)")
    args = parser.parse_args(argv)
    notes = manifest_notes(args.notes_dir)
    chosen = args.notes.split(",") if args.notes else sorted(notes)
    results = []
    with tempfile.TemporaryDirectory(prefix="dx7_export_fidelity.") as temporary:
        folder = Path(temporary)
        binary = build_driver(args.msfa_checkout, folder)
        for name in chosen:
            patch_path = args.patches_dir / (Path(name).stem + ".json")
            if name not in notes or not patch_path.is_file():
                continue
            key, hold_s = notes[name]
            results.append(measure_note(binary, folder, args.notes_dir / name, patch_path, key, hold_s))
    if not results:
        sys.exit("dx7_export_fidelity: error: no note has a fitted patch")

    def median(values):
        values = [value for value in values if value is not None]
        return round(float(np.median(values)), 2) if values else None

    summary = {name: median([entry[name] for entry in results])
               for name in ("native_db", "msfa_export_db", "gap_db", "msfa_vs_native_db", "compiled_vs_native_db",
                            "msfa_vs_compiled_db")}
    summary["aspect_vs_native_db"] = {name: median([entry["aspect_vs_native_db"][name] for entry in results])
                                      for name in results[0]["aspect_vs_native_db"]}
    print(json.dumps({"notes": results, "count": len(results), "median": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
