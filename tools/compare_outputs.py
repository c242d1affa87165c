"""Prove a refactor kept behaviour: record outputs of real ``wifm`` commands, then compare two recordings.

    python tools/compare_outputs.py record OUT_DIR [--notes NOTES_DIR]
    python tools/compare_outputs.py compare BEFORE_DIR AFTER_DIR [--json]

``record`` runs only the command line (so it works on any version of the code): the bundled bank's
patches rendered at their own notes, the demo song through the bundled bank, and ``wifm fit`` of every
note in NOTES_DIR (default: the bundled samples). ``compare`` reports, per file, the largest absolute
sample difference of the renders and the largest difference of any number in the fitted patches
(``metadata`` is left out: it holds dates and timings), and exits 1 when a file is missing on one side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
BUNDLED_BANK = REPO / "patches" / "freepats" / "bank.json"
SONG = REPO / "samples" / "demo.mid"
BUNDLED_NOTES = REPO / "samples" / "freepats"


def wifm(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "wifm_synth", *arguments], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)


def record(out: Path, notes: Path) -> None:
    renders, fits = out / "renders", out / "fits"
    renders.mkdir(parents=True, exist_ok=True)
    fits.mkdir(parents=True, exist_ok=True)
    for patch_file in sorted(BUNDLED_BANK.parent.rglob("*.json")):
        if patch_file == BUNDLED_BANK:
            continue
        pitch = json.loads(patch_file.read_text())["pitch"]
        name = "__".join(patch_file.relative_to(BUNDLED_BANK.parent).with_suffix("").parts)
        wifm("render", str(patch_file), "--note", str(pitch["reference_note"]), "--velocity",
             str(pitch["reference_velocity"]), "-o", str(renders / f"{name}.wav"))
    wifm("render", str(BUNDLED_BANK), "--midi", str(SONG), "-o", str(renders / "demo_song.wav"))
    for note in sorted(notes.rglob("*")):
        if note.suffix.lower() in (".wav", ".flac", ".ogg", ".aiff"):
            name = "__".join(note.relative_to(notes).with_suffix("").parts)
            wifm("fit", str(note), "-o", str(fits / f"{name}.json"))


def _numbers(document, path=""):
    """Every number in a JSON document, keyed by its field path (metadata left out)."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key != "metadata":
                yield from _numbers(value, f"{path}.{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _numbers(value, f"{path}[{index}]")
    elif isinstance(document, (int, float)) and not isinstance(document, bool):
        yield path, float(document)
    else:
        yield path, document


def compare(before: Path, after: Path) -> dict:
    result = {"renders": {}, "fits": {}, "missing": []}
    for kind in ("renders", "fits"):
        names = sorted({p.name for p in (before / kind).iterdir()} | {p.name for p in (after / kind).iterdir()})
        for name in names:
            old, new = before / kind / name, after / kind / name
            if not (old.exists() and new.exists()):
                result["missing"].append(f"{kind}/{name}")
                continue
            if kind == "renders":
                a, _ = soundfile.read(old, dtype="float64")
                b, _ = soundfile.read(new, dtype="float64")
                result[kind][name] = float(np.max(np.abs(a - b))) if a.shape == b.shape else "shape differs"
            else:
                a = dict(_numbers(json.loads(old.read_text())))
                b = dict(_numbers(json.loads(new.read_text())))
                if a.keys() != b.keys():
                    result[kind][name] = "fields differ"
                    continue
                worst = 0.0
                for key in a:
                    if isinstance(a[key], float) and isinstance(b[key], float):
                        worst = max(worst, abs(a[key] - b[key]))
                    elif a[key] != b[key]:
                        worst = float("inf")
                result[kind][name] = worst
    numeric = [v for kind in ("renders", "fits") for v in result[kind].values() if isinstance(v, float)]
    result["largest_difference"] = max(numeric) if numeric else 0.0
    result["identical"] = (not result["missing"] and len(numeric) == len(result["renders"]) + len(result["fits"])
                           and result["largest_difference"] == 0.0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--notes", type=Path, default=BUNDLED_NOTES)
    cmp_ = commands.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    cmp_.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.command == "record":
        record(args.out, args.notes)
        return
    result = compare(args.before, args.after)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for kind in ("renders", "fits"):
            for name, difference in result[kind].items():
                print(f"{kind}/{name}: {difference}")
        print(f"missing: {result['missing']}")
        print(f"largest difference: {result['largest_difference']:.3g}; identical: {result['identical']}")
    sys.exit(0 if not result["missing"] else 1)


if __name__ == "__main__":
    main()
