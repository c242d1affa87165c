"""Time ``wifm syx import`` and ``wifm syx export`` of a 32-voice cartridge (target: 50 ms each).

    python tools/bench_dx7_io.py [CART.syx] [--repeat 20]

Import is the whole command behind ``wifm syx import CART.syx -o BANK``: read and check the dump,
compile the 32 voices to patches, write ``bank.json`` and its 32 patch files. Export is the whole
``wifm syx export BANK/bank.json -o OUT.syx``: load the bank, turn each zone's patch back into a
DX7 voice (an imported voice is recognised and written back byte for byte), write the 4104-byte dump.
Each is also timed without the files (``in_memory``): import as ``wifm play CART.syx`` loads it (read,
check, compile the 32 voices into a bank), export as the voices → 4104 bytes. Without CART.syx a cartridge of 32 random voices in the DX7's ranges is made (seed 1), so the
benchmark needs nothing outside the repository. One warm-up run of each (Numba-free, but it loads
modules and fills caches), then ``--repeat`` timed runs; prints JSON with the median and maximum
milliseconds, and whether the export is byte-identical to the cartridge.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmark_info import machine_info

from wifm_synth.formats.dx7_bank import (
    bank_from_syx,
    export_command,
    import_command,
    instrument_patches,
)
from wifm_synth.formats.dx7_export import export_voice
from wifm_synth.formats.dx7_parameters import ALL_PARAMETERS, VOICE_UNPACKED_SIZE
from wifm_synth.formats.dx7_sysex import (
    CARTRIDGE_VOICE_COUNT,
    Dx7Voice,
    write_cartridge,
)

TARGET_MS = 50.0


def random_cartridge(seed: int) -> bytes:
    rng = random.Random(seed)
    voices = []
    for number in range(CARTRIDGE_VOICE_COUNT):
        raw = bytearray(VOICE_UNPACKED_SIZE)
        for placed in ALL_PARAMETERS:
            raw[placed.unpacked_index] = rng.randint(0, placed.parameter.maximum)
        voices.append(Dx7Voice(bytes(raw)).with_name(f"RANDOM {number:02d}"))
    return write_cartridge(voices)


def timed_ms(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cartridge", type=Path, nargs="?", help="a 32-voice .syx (default: 32 random voices)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_dx7_io.") as temporary:
        folder = Path(temporary)
        cartridge = args.cartridge
        if cartridge is None:
            cartridge = folder / "random.syx"
            cartridge.write_bytes(random_cartridge(1))
        bank = folder / "bank"
        exported = folder / "out.syx"
        import_ms, export_ms, memory_import_ms, memory_export_ms = [], [], [], []
        for run in range(args.repeat + 1):
            imported = timed_ms(lambda: import_command(cartridge, bank))
            written = timed_ms(lambda: export_command(bank / "bank.json", exported))
            started = time.perf_counter()
            loaded = bank_from_syx(cartridge)
            memory_imported = (time.perf_counter() - started) * 1000.0
            patches = [patch for _, patch in instrument_patches(loaded)]
            started = time.perf_counter()
            write_cartridge([export_voice(patch)[0] for patch in patches])
            memory_written = (time.perf_counter() - started) * 1000.0
            if run:  # run 0 is the warm-up
                import_ms.append(imported)
                export_ms.append(written)
                memory_import_ms.append(memory_imported)
                memory_export_ms.append(memory_written)
        identical = exported.read_bytes() == cartridge.read_bytes()
    print(json.dumps({
        "cartridge": str(args.cartridge) if args.cartridge else "32 random voices (seed 1)",
        "runs": args.repeat,
        "import_ms": {"median": round(statistics.median(import_ms), 2), "max": round(max(import_ms), 2)},
        "export_ms": {"median": round(statistics.median(export_ms), 2), "max": round(max(export_ms), 2)},
        "in_memory": {"import_ms": round(statistics.median(memory_import_ms), 2),
                      "export_ms": round(statistics.median(memory_export_ms), 2)},
        "target_ms": TARGET_MS,
        "export_identical": identical,
        "machine": machine_info(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
