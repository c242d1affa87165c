"""Fuzz the DX7 SysEx reader: it must only ever return voices or raise a one-line InputError.

    python tools/fuzz_dx7.py --cases 20000 [--seed 1] [--failures-dir DIR]

Each case is random bytes, random bytes behind a DX7 dump header, or a valid single-voice or
32-voice dump (random voices, random channel, sometimes among other SysEx messages or followed by a
second dump) with a few mutations: bytes overwritten, bits flipped, a range cut out or inserted,
the file truncated. Every case is read leniently and strictly. A case fails when the reader raises
anything but InputError, raises an InputError of more than one line, or returns voices that do not
re-export and read back to the same voices. Prints JSON ``{"cases", "failures", "seconds", ...}``
(with how many lenient reads loaded, loaded with warnings, or were refused); failing inputs are
saved as ``DIR/case_<n>.syx`` with the error in ``case_<n>.txt``. Exit status 1 when any case failed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from pathlib import Path

from wifm_synth.errors import InputError
from wifm_synth.formats.dx7_parameters import (
    ALL_PARAMETERS,
    VOICE_PACKED_SIZE,
    VOICE_UNPACKED_SIZE,
)
from wifm_synth.formats.dx7_sysex import (
    CARTRIDGE_VOICE_COUNT,
    Dx7Voice,
    read_syx,
    write_cartridge,
    write_single,
)

# A SysEx message from another maker and a DX7 parameter change: what shares .syx files with dumps.
FOREIGN_MESSAGES = (bytes.fromhex("F0 41 10 42 12 40 00 7F 00 41 F7"), bytes.fromhex("F0 43 10 01 22 05 F7"))


def random_voice(rng: random.Random) -> Dx7Voice:
    """A voice in the DX7's ranges, or one of arbitrary 7-bit stored bytes (any spare bits too)."""
    choice = rng.random()
    if choice < 0.4:
        raw = bytearray(VOICE_UNPACKED_SIZE)
        for placed in ALL_PARAMETERS:
            raw[placed.unpacked_index] = rng.randint(0, placed.parameter.maximum)
        return Dx7Voice(bytes(raw))
    if choice < 0.7:
        return Dx7Voice.from_packed(bytes(rng.randrange(128) for _ in range(VOICE_PACKED_SIZE)))
    return Dx7Voice(bytes(rng.randrange(128) for _ in range(VOICE_UNPACKED_SIZE)))


def valid_dump(rng: random.Random) -> bytes:
    channel = rng.randrange(16)
    if rng.random() < 0.3:
        dump = write_single(random_voice(rng), channel)
    else:
        dump = write_cartridge([random_voice(rng) for _ in range(CARTRIDGE_VOICE_COUNT)], channel)
    if rng.random() < 0.2:
        dump = dump[6:-2]  # the bare data: a headerless cartridge (or 155 stray bytes)
    elif rng.random() < 0.3:
        dump = rng.choice(FOREIGN_MESSAGES) + dump + rng.choice(FOREIGN_MESSAGES)
    elif rng.random() < 0.3:
        # Two dumps: a mutation of the first exercises skipping a broken dump for a later usable one.
        dump += write_single(random_voice(rng), rng.randrange(16))
    return dump


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with 1–3 random edits."""
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not mutated:
            mutated.append(rng.randrange(256))
            continue
        position = rng.randrange(len(mutated))
        edit = rng.randrange(5)
        if edit == 0:
            mutated[position] = rng.randrange(256)
        elif edit == 1:
            mutated[position] ^= 1 << rng.randrange(8)
        elif edit == 2:
            del mutated[position:position + rng.randint(1, 200)]
        elif edit == 3:
            mutated[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del mutated[position:]
    return bytes(mutated)


def random_case(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
    if kind < 0.3:
        header = rng.choice((bytes.fromhex("F0 43 00 00 01 1B"), bytes.fromhex("F0 43 00 09 20 00")))
        return header + bytes(rng.randrange(128) for _ in range(rng.randrange(5000)))
    dump = valid_dump(rng)
    return dump if kind < 0.55 else mutate(dump, rng)


def check(data: bytes, outcomes: dict[str, int] | None = None) -> str | None:
    """None if the reader behaves on ``data``; else what went wrong. ``outcomes`` counts what the
    lenient read did: ``loaded``, ``loaded_with_warnings`` or ``refused``."""
    for strict in (False, True):
        try:
            read = read_syx(data, "case.syx", strict=strict)
        except InputError as error:
            if "\n" in str(error):
                return f"multi-line InputError (strict={strict}): {error!r}"
            if outcomes is not None and not strict:
                outcomes["refused"] += 1
            continue
        except Exception:  # noqa: BLE001 - anything but InputError is the failure being hunted
            return f"strict={strict}: {traceback.format_exc()}"
        if outcomes is not None and not strict:
            outcomes["loaded_with_warnings" if read.warnings else "loaded"] += 1
        try:
            if read.kind == "single":
                again = read_syx(write_single(read.voices[0], read.channel or 0)).voices
            else:
                again = read_syx(write_cartridge(read.voices, read.channel or 0)).voices
        except Exception:  # noqa: BLE001
            return f"re-export failed (strict={strict}): {traceback.format_exc()}"
        if again != read.voices:
            return f"re-export read back different voices (strict={strict})"
    return None


def run(cases: int, seed: int, failures_dir: Path) -> dict:
    rng = random.Random(seed)
    failures = 0
    outcomes = {"loaded": 0, "loaded_with_warnings": 0, "refused": 0}
    started = time.perf_counter()
    for case in range(cases):
        data = random_case(rng)
        problem = check(data, outcomes)
        if problem is not None:
            failures += 1
            failures_dir.mkdir(parents=True, exist_ok=True)
            (failures_dir / f"case_{case}.syx").write_bytes(data)
            (failures_dir / f"case_{case}.txt").write_text(problem)
    return {"cases": cases, "failures": failures, "seed": seed, **outcomes,
            "seconds": round(time.perf_counter() - started, 2),
            "failures_dir": str(failures_dir) if failures else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--failures-dir", type=Path, default=Path("fuzz_dx7_failures"))
    arguments = parser.parse_args(argv)
    report = run(arguments.cases, arguments.seed, arguments.failures_dir)
    print(json.dumps(report))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
