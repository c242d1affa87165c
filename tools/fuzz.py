"""Fuzz the file readers: each must return or raise a one-line WifmError, quickly, changing nothing.

    python tools/fuzz.py FORMAT --cases 10000 [--seed 1] [--failures-dir DIR]

FORMAT is audio, patch, bank, midi or sfz (DX7 SysEx: tools/fuzz_dx7.py). Each case is a valid file of
that format (every 50th unchanged) with tools/fuzz_dx7.py's byte edits (bytes overwritten, bits flipped,
ranges cut out or inserted, the file truncated) and, half the time, a splice of long digits or brackets.
A case fails when the reader raises anything but WifmError, a WifmError of more than one line, takes
longer than CASE_SECONDS, changes its input or leaves another file in the case's folder. Prints JSON
``{"format", "cases", "failures", "refused", "read", "seconds"}``; failing inputs are saved as
``DIR/case_<n><suffix>`` with the error in ``case_<n>.txt``. Exit status 1 when any case failed.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import soundfile

from wifm_synth.errors import WifmError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, as when run as a script
from fuzz_dx7 import mutate as byte_edits

REPO = Path(__file__).resolve().parent.parent
BANK_FOLDER = REPO / "tests" / "data" / "banks"
CASE_SECONDS = 20.0
SPLICES = (b"9" * 400, b"[" * 50, b"1e999", b"\\ud800", b"\xff\xff\xff\xff\x7f", b"\x00" * 8, b"key=", b"<region>")


def _seed_audio(rng: random.Random) -> tuple[bytes, str]:
    rate = rng.choice([8000, 22050, 48000])
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(rate // 10) / rate)
    stream = io.BytesIO()
    kind = rng.choice([("WAV", "PCM_16", ".wav"), ("WAV", "FLOAT", ".wav"), ("FLAC", "PCM_16", ".flac")])
    soundfile.write(stream, tone, rate, format=kind[0], subtype=kind[1])
    return stream.getvalue(), kind[2]


def _seed_midi(rng: random.Random) -> tuple[bytes, str]:
    events = b"".join(bytes([0, 0x90, 48 + rng.randrange(24), 64, 0x60, 0x80, 60, 0]) for _ in range(4))
    body = events + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(body)) + body, ".mid"


def _seed_sfz(_rng: random.Random) -> tuple[bytes, str]:
    return b"<group> lokey=40 hikey=80\n<region> sample=note.wav key=60 tune=5 volume=-3\n", ".sfz"


def _seed_patch(rng: random.Random) -> tuple[bytes, str]:
    return (BANK_FOLDER / "patches" / rng.choice(["fm_bass.json", "sine_pluck.json", "bright_pluck.json"])).read_bytes(), ".json"


def _seed_bank(_rng: random.Random) -> tuple[bytes, str]:
    return (BANK_FOLDER / "test_bank.json").read_bytes(), ".json"


def _read(kind: str, path: Path) -> None:
    if kind == "audio":
        from wifm_synth.analysis.audio import load_audio

        load_audio(path)
    elif kind == "midi":
        from wifm_synth.formats.smf import read_midi_file

        read_midi_file(path)
    elif kind == "sfz":
        from wifm_synth.formats.sfz import read_sfz

        read_sfz(path)
    else:
        from wifm_synth.formats.bank_json import load_instrument

        load_instrument(path)


SEEDS = {"audio": _seed_audio, "midi": _seed_midi, "sfz": _seed_sfz, "patch": _seed_patch, "bank": _seed_bank}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """The DX7 fuzzer's byte edits, then sometimes a splice of what text readers trip on."""
    mutated = bytearray(byte_edits(data, rng))
    if rng.random() < 0.5:
        position = rng.randrange(len(mutated) + 1)
        mutated[position:position] = rng.choice(SPLICES)
    return bytes(mutated)


class _CaseTimeout(Exception):
    pass


def _on_alarm(_signal, _frame):
    raise _CaseTimeout


def run_case(kind: str, case: int, seed: int = 1) -> tuple[str | None, bytes, str]:
    """Run one case: (failure reason or None, the input, its suffix). "refused"/"read" outcomes are counted
    by the caller from ``last_outcome``."""
    rng = random.Random(f"{kind}:{seed}:{case}")
    data, suffix = SEEDS[kind](rng)
    if case % 50:
        data = mutate(data, rng)
    folder = Path(tempfile.mkdtemp(prefix="wifm_fuzz_"))
    try:
        if kind == "bank":
            shutil.copytree(BANK_FOLDER / "patches", folder / "patches")
        if kind == "sfz":
            soundfile.write(folder / "note.wav", 0.5 * np.sin(np.arange(4800) / 10), 48000)
        path = folder / f"case{suffix}"
        path.write_bytes(data)
        before = sorted(item.name for item in folder.rglob("*"))
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        failure = None
        try:
            _read(kind, path)
            run_case.last_outcome = "read"
        except WifmError as error:
            run_case.last_outcome = "refused"
            if "\n" in str(error):
                failure = f"error of more than one line: {error!r}"
        except _CaseTimeout:
            failure = f"took longer than {CASE_SECONDS} s"
        except BaseException:  # noqa: BLE001 - every other exception is what the fuzzer looks for
            failure = traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if failure is None and path.read_bytes() != data:
            failure = "the input changed"
        if failure is None and sorted(item.name for item in folder.rglob("*")) != before:
            failure = "files appeared or vanished beside the input"
        return failure, data, suffix
    finally:
        shutil.rmtree(folder, ignore_errors=True)


run_case.last_outcome = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=sorted(SEEDS))
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--failures-dir", type=Path, default=Path("fuzz_failures"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = {"refused": 0, "read": 0}
    failures = 0
    for case in range(args.cases):
        failure, data, suffix = run_case(args.format, case, args.seed)
        if failure is None:
            counts[run_case.last_outcome] += 1
            continue
        failures += 1
        args.failures_dir.mkdir(parents=True, exist_ok=True)
        (args.failures_dir / f"case_{case}{suffix}").write_bytes(data)
        (args.failures_dir / f"case_{case}.txt").write_text(failure)
    print(json.dumps({"format": args.format, "cases": args.cases, "failures": failures, **counts,
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
