"""Read a DX7 .syx file, write it back, and say whether the bytes survived.

    python tools/dx7_roundtrip.py CART.syx [--json] [--repeat N]

Reports whether the re-exported dump is byte-identical to the file (and, when not, which bytes
differ: a file whose stored checksum is wrong re-exports with the right one, so only the checksum
byte differs), whether a second round trip of the export is identical, the reader's warnings, the
import and export times (first run, and median of the N runs after it; target 50 ms each for 32
voices) and the voice names. Exit status 0 when the data bytes survived, 1 when they did not, 2 on a read error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from wifm_synth.errors import WifmError
from wifm_synth.formats.dx7_sysex import (
    HEADER_SIZE,
    read_syx,
    write_cartridge,
    write_single,
)

TARGET_MILLISECONDS = 50.0


def export(read) -> bytes:
    channel = read.channel or 0
    if read.kind == "single":
        return write_single(read.voices[0], channel)
    return write_cartridge(read.voices, channel)


def milliseconds(action, repeat: int) -> tuple[float, float]:
    """(first run, median of the ``repeat`` runs after it) of ``action``, in milliseconds."""
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return round(times[0], 3), round(statistics.median(times[1:]), 3)


def differing_offsets(before: bytes, after: bytes) -> list[int]:
    if len(before) != len(after):
        return list(range(min(len(before), len(after)), max(len(before), len(after))))
    return [offset for offset, (old, new) in enumerate(zip(before, after)) if old != new]


def roundtrip(path: Path, repeat: int) -> dict:
    original = path.read_bytes()
    read = read_syx(original, path)
    exported = export(read)
    headerless = read.channel is None
    # A headerless cartridge is compared as data: the export adds the SysEx header and footer.
    compared = exported[HEADER_SIZE:-2] if headerless else exported
    data_slice = slice(None) if headerless else slice(HEADER_SIZE, -2)
    second = export(read_syx(exported, "export"))
    first_import, import_median = milliseconds(lambda: read_syx(original, path), repeat)
    first_export, export_median = milliseconds(lambda: export(read), repeat)
    differing = differing_offsets(original, compared)
    return {
        "file": str(path),
        "kind": read.kind,
        "voices": len(read.voices),
        "channel": None if headerless else read.channel + 1,
        "byte_identical": compared == original,
        "differing_offsets": differing[:16],
        # The checksum byte sits just before the closing F7 of a dump with a header.
        "only_checksum_differs": not headerless and differing == [len(original) - 2],
        "data_identical": compared[data_slice] == original[data_slice],
        "second_roundtrip_identical": second == exported,
        "warnings": list(read.warnings),
        "import_ms": import_median,
        "export_ms": export_median,
        "first_import_ms": first_import,
        "first_export_ms": first_export,
        "repeat": repeat,
        "target_ms": TARGET_MILLISECONDS,
        "names": [voice.name for voice in read.voices],
    }


def describe(report: dict) -> str:
    yes_no = {True: "yes", False: "no"}
    channel = f"channel {report['channel']}" if report["channel"] else "no header"
    lines = [f"{report['file']}: {report['kind']} ({report['voices']} voice(s), {channel})"]
    lines += [f"warning: {warning}" for warning in report["warnings"]]
    identical = yes_no[report["byte_identical"]]
    if not report["byte_identical"]:
        identical += f" (bytes differ at offsets {report['differing_offsets']}"
        if report["only_checksum_differs"]:
            identical += ": only the checksum, which the file has wrong and the export writes right"
        identical += ")"
    lines += [
        f"re-export byte-identical: {identical}",
        f"data bytes identical: {yes_no[report['data_identical']]}",
        f"second round trip identical: {yes_no[report['second_roundtrip_identical']]}",
        (f"import {report['import_ms']:.2f} ms, export {report['export_ms']:.2f} ms (median of "
         f"{report['repeat']}; first run {report['first_import_ms']:.2f} ms and "
         f"{report['first_export_ms']:.2f} ms; target <= {report['target_ms']:.0f} ms each)"),
        "names: " + " | ".join(f"{number} {name.rstrip()}"
                               for number, name in enumerate(report["names"], start=1)),
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cartridge", type=Path)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of import and of export")
    arguments = parser.parse_args(argv)
    try:
        report = roundtrip(arguments.cartridge, max(arguments.repeat, 1))
    except (WifmError, OSError) as error:
        print(f"dx7_roundtrip: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if arguments.json else describe(report))
    return 0 if report["data_identical"] and report["second_roundtrip_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
