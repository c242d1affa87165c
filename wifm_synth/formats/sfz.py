"""A reader for the basic SFZ syntax: which sample plays which keys and velocities.

Supported: ``<control>`` (``default_path``, ``note_offset``, ``octave_offset``), ``<global>``, ``<master>``,
``<group>`` and ``<region>`` with the usual inheritance, the opcodes ``sample``, ``key``, ``lokey``,
``hikey``, ``lovel``, ``hivel``, ``pitch_keycenter``, ``tune`` (cents the region's sample is shifted by, which
the bank builder adds to the fitted patch's tuning), ``trigger`` and ``seq_position``. Other opcodes are
ignored, except that sample ranges ``offset``/``end`` and a non-zero ``transpose`` are refused: a fit of the
whole recording would sound wrong for them. Keys are note names or MIDI numbers (C4 = 60); ``//`` and
``/* */`` comments and sample paths with spaces or backslashes relative to the SFZ file are read.
``#define`` and ``#include`` are not supported.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from wifm_synth.errors import InputError
from wifm_synth.formats.inputs import open_input
from wifm_synth.library.naming import note_number

_SCOPES = ("control", "global", "master", "group", "region")
_IGNORED_HEADERS = ("curve", "effect", "midi", "sample")
_ITEM = re.compile(r"<(?P<header>[^>\s]*)>|(?P<opcode>[A-Za-z0-9_$]+)=")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class SfzRegion:
    """One playable region. ``pitch_keycenter`` is None when the SFZ asks for the sample's own pitch."""

    sample: Path
    line: int
    key_lo: int = 0
    key_hi: int = 127
    vel_lo: int = 1
    vel_hi: int = 127
    pitch_keycenter: int | None = 60
    tune_cents: int = 0
    trigger: str = "attack"
    seq_position: int = 1


@dataclass(frozen=True)
class SfzInstrument:
    path: Path
    regions: list[SfzRegion]
    skipped: list[str]  # one-line notes about regions that have no recording to fit


def read_sfz(path: str | os.PathLike) -> SfzInstrument:
    """Parse ``path``; InputError names the SFZ file and the line for syntax errors and missing samples."""
    sfz_path = Path(path)
    with open_input(sfz_path, "an .sfz file") as stream:
        raw = stream.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older SFZ files are often Windows-1252 text
    regions, skipped = [], []
    for line, opcodes in _parse_regions(text, sfz_path):
        region = _region_from(opcodes, line, sfz_path)
        if isinstance(region, str):
            skipped.append(region)
        else:
            regions.append(region)
    if not regions:
        raise InputError("has no <region> with a sample", sfz_path)
    return SfzInstrument(path=sfz_path, regions=regions, skipped=skipped)


def _strip_comments(text: str) -> str:
    # Keep the newlines of block comments so that line numbers stay right.
    text = _BLOCK_COMMENT.sub(lambda match: "\n" * match.group().count("\n"), text)
    return "\n".join(line.split("//", 1)[0] for line in text.split("\n"))


def _parse_regions(text: str, sfz_path: Path) -> list[tuple[int, dict[str, tuple[str, int]]]]:
    """Return ``(line, opcodes)`` per ``<region>``, with the opcodes it inherits from enclosing scopes.

    Each opcode value is kept with its line number, for error messages.
    """
    scopes: dict[str, dict[str, tuple[str, int]]] = {scope: {} for scope in _SCOPES}
    current: str | None = None  # scope receiving opcodes; "" after a header whose opcodes are ignored
    regions = []  # (line, opcodes inherited at the header, the region's own opcodes)

    def fail(line: int, problem: str):
        raise InputError(f"line {line}: {problem}", sfz_path)

    for line_number, line in enumerate(_strip_comments(text).split("\n"), start=1):
        if line.lstrip().startswith("#"):
            fail(line_number, f"{line.split()[0]} is not supported (expand macros and includes first)")
        items = list(_ITEM.finditer(line))
        leading = (line[: items[0].start()] if items else line).strip()
        if leading:
            problem = "unterminated <header>" if leading.startswith("<") else f"unexpected text {leading!r}"
            fail(line_number, f"{problem} (expected <header> or opcode=value)")
        for index, item in enumerate(items):
            end = items[index + 1].start() if index + 1 < len(items) else len(line)
            value = line[item.end():end].strip()
            if "<" in value:
                fail(line_number, f"unterminated <header> in {value!r}")
            header = item.group("header")
            if header is not None:
                if value:
                    fail(line_number, f"unexpected text {value!r} after <{header}>")
                if header in _IGNORED_HEADERS:
                    current = ""
                    continue
                if header not in _SCOPES:
                    fail(line_number, f"unknown header <{header}>")
                # A header starts its own scope afresh and closes every scope below it.
                for scope in _SCOPES[_SCOPES.index(header):]:
                    scopes[scope] = {}
                current = header
                if header == "region":
                    inherited = {k: v for scope in _SCOPES[:-1] for k, v in scopes[scope].items()}
                    regions.append((line_number, inherited, scopes["region"]))
                continue
            opcode = item.group("opcode")
            if current is None:
                fail(line_number, f"opcode {opcode!r} before any <header>")
            if not value:
                fail(line_number, f"opcode {opcode!r} has no value")
            if current:
                scopes[current][opcode] = (value, line_number)
    return [(line, {**inherited, **own}) for line, inherited, own in regions]


def _region_from(opcodes: dict[str, tuple[str, int]], line: int, sfz_path: Path) -> SfzRegion | str:
    """The region, or a one-line note on why it has no recording to fit."""

    def fail(at_line: int, problem: str):
        raise InputError(f"line {at_line}: {problem}", sfz_path)

    offset = 0
    for name, scale in (("note_offset", 1), ("octave_offset", 12)):
        if name in opcodes:
            offset += scale * _integer(opcodes, name, -127, 127, fail)

    def key(name: str, default: int | None) -> int | None:
        if name not in opcodes:
            return default
        value, at_line = opcodes[name]
        number = note_number(value)
        if number is None:
            if not re.fullmatch(r"-?\d+", value):
                fail(at_line, f"{name}={value}: expected a MIDI key 0..127 or a note name such as c#4")
            number = int(value)
        number += offset
        if not 0 <= number <= 127:
            fail(at_line, f"{name}={value}: key {number} is outside 0..127")
        return number

    if "sample" not in opcodes:
        fail(line, "<region> has no sample opcode")
    sample_text, sample_line = opcodes["sample"]
    if sample_text.startswith("*"):
        return f"{sfz_path}: line {line}: {sample_text} is a built-in generator, not a recording; skipped"
    trigger = opcodes.get("trigger", ("attack", line))[0]
    if trigger not in ("attack", "first", "legato"):
        return f"{sfz_path}: line {line}: trigger={trigger} region skipped (only note-on samples are fitted)"
    default_path = opcodes.get("default_path", ("", line))[0]
    sample = Path((default_path + sample_text).replace("\\", "/"))
    if not sample.is_absolute():
        sample = sfz_path.parent / sample
    if not sample.is_file():
        fail(sample_line, f"sample {sample_text!r} not found (looked for {sample})")
    # The fit takes the whole recording: refuse regions that play part of it, or shift it by semitones.
    for name, problem in (("offset", "offset/end sample ranges are not supported (cut the sample into files)"),
                          ("end", "offset/end sample ranges are not supported (cut the sample into files)"),
                          ("transpose", "transpose pitch shifts are not supported")):
        if name in opcodes and (name == "end" or opcodes[name][0] not in ("0", "-0")):
            value, at_line = opcodes[name]
            fail(at_line, f"{name}={value}: {problem}")

    single = key("key", None)
    key_lo = key("lokey", 0 if single is None else single)
    key_hi = key("hikey", 127 if single is None else single)
    if opcodes.get("pitch_keycenter", ("",))[0].lower() == "sample":
        keycenter = None
    else:
        keycenter = key("pitch_keycenter", 60 if single is None else single)
    # Velocity 0 is a note-off, so a range starting at 0 plays from velocity 1.
    vel_lo = max(1, _integer(opcodes, "lovel", 0, 127, fail, default=1))
    vel_hi = _integer(opcodes, "hivel", 1, 127, fail, default=127)
    for low, high, low_name, high_name in ((key_lo, key_hi, "lokey", "hikey"), (vel_lo, vel_hi, "lovel", "hivel")):
        if high < low:
            fail(line, f"{high_name} {high} is below {low_name} {low}")
    return SfzRegion(sample=sample, line=line, key_lo=key_lo, key_hi=key_hi, vel_lo=vel_lo, vel_hi=vel_hi,
                     pitch_keycenter=keycenter, trigger=trigger,
                     tune_cents=_integer(opcodes, "tune", -9600, 9600, fail, default=0),
                     seq_position=_integer(opcodes, "seq_position", 1, 100, fail, default=1))


def _integer(opcodes, name, low, high, fail, default=None) -> int:
    if name not in opcodes:
        return default
    value, at_line = opcodes[name]
    if not re.fullmatch(r"-?\d+", value) or not low <= int(value) <= high:
        fail(at_line, f"{name}={value}: expected an integer {low}..{high}")
    return int(value)
