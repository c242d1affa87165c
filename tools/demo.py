"""`make demo`: fit the bundled samples into a bank, render each patch and the demo song, write the report.

Every step runs a real `wifm` command (the same code a user runs), so the demo doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from wifm_synth.cli import main as wifm

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "freepats"
SONG = REPO / "samples" / "demo.mid"


def run(*arguments: str) -> None:
    print("$ wifm " + " ".join(arguments), flush=True)
    started = time.perf_counter()
    status = wifm(list(arguments))
    if status != 0:
        sys.exit(f"demo: 'wifm {arguments[0]}' failed with status {status}")
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)


def audio_output_available() -> bool:
    try:
        import sounddevice

        return any(device["max_output_channels"] > 0 for device in sounddevice.query_devices())
    except (OSError, ImportError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    bank_dir = out / "bank"
    bank_file = bank_dir / "bank.json"

    run("bank", str(SAMPLES), "-o", str(bank_dir), "--name", "freepats-demo")

    # Each fitted patch rendered next to its patch file, at the key and velocity of its sample.
    for patch_file in sorted(bank_dir.rglob("*.json")):
        if patch_file == bank_file or ".cache" in patch_file.parts:
            continue
        pitch = json.loads(patch_file.read_text())["pitch"]
        run("render", str(patch_file), "--note", str(pitch["reference_note"]),
            "--velocity", str(pitch["reference_velocity"]), "-o", str(patch_file.with_suffix(".fit.wav")))

    run("render", str(bank_file), "--midi", str(SONG), "-o", str(out / "demo_song.wav"))
    run("report", str(bank_file), "-o", str(out / "report.html"))

    print(f"\nDemo output in {out}:")
    print(f"  bank        {bank_file}")
    print(f"  renders     {bank_dir}/*/*.fit.wav (beside each patch)")
    print(f"  song        {out / 'demo_song.wav'}")
    print(f"  report      {out / 'report.html'} (open in a browser)")
    if audio_output_available():
        print(f"\nPlay it live from a MIDI keyboard:  .venv/bin/wifm play {bank_file}")
    else:
        print("\nNo audio output device here; on a machine with a sound card, play it live with:")
        print(f"  .venv/bin/wifm play {bank_file}     (.venv/bin/wifm devices lists ports)")


if __name__ == "__main__":
    main()
