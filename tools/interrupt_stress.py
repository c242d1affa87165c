"""Ctrl-C at random moments of ``wifm render --midi``, many times: every run must end interrupted, quietly.

    python tools/interrupt_stress.py --trials 200 [--seed 1] [--max-delay 0.8]

Each trial starts ``wifm render PATCH --midi SONG -o OUT`` (a bundled patch; a dense ten-minute song
written for the run), waits until the process has loaded numpy, then sends SIGINT after a random delay
between 0 and ``--max-delay`` seconds: while Numba and llvmlite are imported, the engine is loaded or
compiled, or the song is rendered. The children get the default SIGINT even when this tool runs as a
background job (whose SIGINT the shell ignores). A trial fails when the
run does not end with status 130, prints more than one line or a traceback, or leaves its output or a
temporary file. Prints JSON ``{"trials", "failures", "statuses", "seconds", "failed": [...]}``; exit
status 1 when any trial failed. Run it beside other load (two busy loops, say): interruptions landing in
rare places are what it is for.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parent.parent
PATCH = ROOT / "patches" / "freepats" / "bank.json"
STARTUP_TIMEOUT_S = 60.0
END_TIMEOUT_S = 120.0


def dense_song(path: Path, notes: int = 3000) -> Path:
    """Ten minutes of four-note chords: seconds of rendering, so that every delay lands before the end."""
    track = mido.MidiTrack()
    for index in range(notes):
        for offset in (0, 4, 7, 11):
            track.append(mido.Message("note_on", note=48 + (index + offset) % 36, velocity=90, time=0))
        track.append(mido.Message("note_off", note=48 + index % 36, time=192))
    midi = mido.MidiFile(ticks_per_beat=96)
    midi.tracks.append(track)
    midi.save(path)
    return path


def wait_for_numpy(process: subprocess.Popen) -> None:
    """Until the process has loaded numpy (its machinery is importing); earlier, the interpreter itself is
    starting, and a Ctrl-C there is the interpreter's to report, before any line of wifm has run."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if "numpy" in Path(f"/proc/{process.pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.002)


def trial(song: Path, folder: Path, delay: float) -> tuple[int, str, list[str]]:
    """One interrupted render: (exit status, stderr, names left in ``folder`` besides the song)."""
    output = folder / "out.wav"
    process = subprocess.Popen([sys.executable, "-m", "wifm_synth", "render", str(PATCH), "--midi", str(song),
                                "-o", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT)
    wait_for_numpy(process)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=END_TIMEOUT_S)
    left = sorted(path.name for path in folder.iterdir() if path != song)
    return process.returncode, stderr, left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=0.8, help="seconds after numpy is loaded")
    args = parser.parse_args(argv)
    # a handler of our own, not an ignored SIGINT, is what children get at exec: their SIGINT is the default
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    statuses: collections.Counter[int] = collections.Counter()
    failed = []
    with tempfile.TemporaryDirectory(prefix="wifm-interrupt-stress-") as scratch:
        folder = Path(scratch)
        song = dense_song(folder / "song.mid")
        for number in range(args.trials):
            delay = rng.uniform(0.0, args.max_delay)
            status, stderr, left = trial(song, folder, delay)
            statuses[status] += 1
            lines = stderr.strip().splitlines()
            if status != 130 or len(lines) > 1 or "Traceback" in stderr or left:
                failed.append({"trial": number, "delay_s": round(delay, 3), "status": status,
                               "stderr": stderr[-2000:], "left": left})
                for name in left:
                    (folder / name).unlink(missing_ok=True)
    print(json.dumps({"trials": args.trials, "failures": len(failed), "statuses": dict(statuses),
                      "seconds": round(time.perf_counter() - started, 1), "failed": failed}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
