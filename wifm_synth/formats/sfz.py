"""A reader for SFZ as sample libraries write it: which sample plays which keys and velocities, and how.

Supported: ``#define`` and ``#include`` (:mod:`wifm_synth.formats.sfz_text`), ``<control>``
(``default_path``, ``note_offset``, ``octave_offset``), ``<global>``, ``<master>``, ``<group>`` and
``<region>`` with the usual inheritance, and the opcodes in ``USED_OPCODES``: the key and velocity
range, ``pitch_keycenter`` (the key at which the sample sounds at its own pitch), ``tune`` (cents) and
``transpose`` (semitones) pitch shifts, the sample range ``offset``/``end`` (frames, ``end`` inclusive),
``amp_veltrack``, ``ampeg_attack``, ``ampeg_release``, ``trigger`` and ``seq_position``. Other opcodes are
counted in :attr:`SfzInstrument.ignored_opcodes`. Keys are note names or MIDI numbers (C4 = 60); sample
paths, with spaces or backslashes, are relative to the root SFZ file's folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from wifm_synth.errors import InputError
from wifm_synth.formats.inputs import is_existing_file
from wifm_synth.formats.sfz_text import SourceLine, sfz_lines
from wifm_synth.library.naming import note_number

_SCOPES = ("control", "global", "master", "group", "region")
_IGNORED_HEADERS = ("curve", "effect", "midi", "sample")
_ITEM = re.compile(r"<(?P<header>[^>\s]*)>|(?P<opcode>[A-Za-z0-9_$]+)=")
USED_OPCODES = frozenset({
    "sample", "key", "lokey", "hikey", "lovel", "hivel", "pitch_keycenter", "tune", "transpose", "offset", "end",
    "amp_veltrack", "ampeg_attack", "ampeg_release", "trigger", "seq_position", "default_path", "note_offset",
    "octave_offset",
})
# SFZ's own default: a velocity-127 note is 40 dB louder than a velocity-1 note.
DEFAULT_AMP_VELTRACK = 100.0


@dataclass(frozen=True)
class RegionSound:
    """How a region plays its sample beyond key and pitch: the part of it, velocity tracking, envelope times.

    ``frame_range`` is (first frame, frame after the last), None for the whole sample; the envelope
    times are None when the SFZ does not give them.
    """

    frame_range: tuple[int, int | None] | None = None
    amp_veltrack: float = DEFAULT_AMP_VELTRACK
    attack_s: float | None = None
    release_s: float | None = None


@dataclass(frozen=True)
class SfzRegion:
    """One playable region. ``pitch_keycenter`` is None when the SFZ asks for the sample's own pitch;
    ``file`` is the included file that defines the region (None: the root SFZ file)."""

    sample: Path
    line: int
    key_lo: int = 0
    key_hi: int = 127
    vel_lo: int = 1
    vel_hi: int = 127
    pitch_keycenter: int | None = 60
    tune_cents: int = 0
    transpose: int = 0
    trigger: str = "attack"
    seq_position: int = 1
    sound: RegionSound = RegionSound()
    file: Path | None = None
    order: int = field(default=0, compare=False)  # position among the instrument's regions, includes spliced in


@dataclass(frozen=True)
class SfzInstrument:
    path: Path
    regions: list[SfzRegion]
    skipped: list[str]  # one-line notes about regions that have no recording to fit
    ignored_opcodes: Counter = field(default_factory=Counter)  # opcode → times it appears

    def ignored_notice(self) -> str | None:
        """``FILE: ignored opcodes: loop_mode ×12, …`` (most frequent first), or None when none were ignored."""
        if not self.ignored_opcodes:
            return None
        counts = sorted(self.ignored_opcodes.items(), key=lambda item: (-item[1], item[0]))
        return f"{self.path}: ignored opcodes: " + ", ".join(f"{name} ×{count}" for name, count in counts)


# An opcode's value and the line it was written on.
_Value = tuple[str, SourceLine]


def read_sfz(path: str | os.PathLike) -> SfzInstrument:
    """Parse ``path``; InputError names the SFZ file (or included file) and the line for syntax errors and
    missing samples."""
    sfz_path = Path(path)
    ignored: Counter = Counter()
    regions, skipped = [], []
    for where, opcodes in _parse_regions(sfz_lines(sfz_path), ignored):
        region = _region_from(opcodes, where, sfz_path)
        if isinstance(region, str):
            skipped.append(region)
        else:
            regions.append(dataclasses.replace(region, order=len(regions)))
    if not regions:
        raise InputError("has no <region> with a sample", sfz_path)
    return SfzInstrument(path=sfz_path, regions=regions, skipped=skipped, ignored_opcodes=ignored)


def _fail(where: SourceLine, problem: str):
    raise InputError(f"line {where.number}: {problem}", where.file)


def _parse_regions(lines: list[SourceLine], ignored: Counter) -> list[tuple[SourceLine, dict[str, _Value]]]:
    """Return ``(where, opcodes)`` per ``<region>``, with the opcodes it inherits from enclosing scopes;
    counts the opcodes that are not used in ``ignored``."""
    scopes: dict[str, dict[str, _Value]] = {scope: {} for scope in _SCOPES}
    current: str | None = None  # scope receiving opcodes; "" after a header whose opcodes are ignored
    regions = []  # (where, opcodes inherited at the header, the region's own opcodes)

    for where in lines:
        line = where.text
        items = list(_ITEM.finditer(line))
        leading = (line[: items[0].start()] if items else line).strip()
        if leading:
            problem = "unterminated <header>" if leading.startswith("<") else f"unexpected text {leading!r}"
            _fail(where, f"{problem} (expected <header> or opcode=value)")
        for index, item in enumerate(items):
            end = items[index + 1].start() if index + 1 < len(items) else len(line)
            value = line[item.end():end].strip()
            if "<" in value:
                _fail(where, f"unterminated <header> in {value!r}")
            header = item.group("header")
            if header is not None:
                if value:
                    _fail(where, f"unexpected text {value!r} after <{header}>")
                if header in _IGNORED_HEADERS:
                    current = ""
                    continue
                if header not in _SCOPES:
                    _fail(where, f"unknown header <{header}>")
                # A header starts its own scope afresh and closes every scope below it.
                for scope in _SCOPES[_SCOPES.index(header):]:
                    scopes[scope] = {}
                current = header
                if header == "region":
                    inherited = {k: v for scope in _SCOPES[:-1] for k, v in scopes[scope].items()}
                    regions.append((where, inherited, scopes["region"]))
                continue
            opcode = item.group("opcode")
            if current is None:
                _fail(where, f"opcode {opcode!r} before any <header>")
            if not value:
                _fail(where, f"opcode {opcode!r} has no value")
            if current and opcode in USED_OPCODES:
                scopes[current][opcode] = (value, where)
            else:
                ignored[opcode] += 1
    return [(where, {**inherited, **own}) for where, inherited, own in regions]


def _region_from(opcodes: dict[str, _Value], where: SourceLine, sfz_path: Path) -> SfzRegion | str:
    """The region, or a one-line note on why it has no recording to fit."""
    offset = 0
    for name, scale in (("note_offset", 1), ("octave_offset", 12)):
        if name in opcodes:
            offset += scale * _number(opcodes, name, -127, 127)

    def key(name: str, default: int | None) -> int | None:
        if name not in opcodes:
            return default
        value, at = opcodes[name]
        number = note_number(value)
        if number is None:
            if not re.fullmatch(r"-?\d+", value):
                _fail(at, f"{name}={value}: expected a MIDI key 0..127 or a note name such as c#4")
            number = int(value)
        number += offset
        if not 0 <= number <= 127:
            _fail(at, f"{name}={value}: key {number} is outside 0..127")
        return number

    location = f"{where.file}: line {where.number}"
    if "sample" not in opcodes:
        _fail(where, "<region> has no sample opcode")
    sample_text, sample_at = opcodes["sample"]
    if sample_text.startswith("*"):
        return f"{location}: {sample_text} is a built-in generator, not a recording; skipped"
    trigger = opcodes.get("trigger", ("attack",))[0]
    if trigger not in ("attack", "first", "legato"):
        return f"{location}: trigger={trigger} region skipped (only note-on samples are fitted)"
    default_path = opcodes.get("default_path", ("",))[0]
    sample = Path((default_path + sample_text).replace("\\", "/"))
    if not sample.is_absolute():
        sample = sfz_path.parent / sample
    if not is_existing_file(sample):
        _fail(sample_at, f"sample {sample_text!r} not found (looked for {sample})")

    single = key("key", None)
    key_lo = key("lokey", 0 if single is None else single)
    key_hi = key("hikey", 127 if single is None else single)
    if opcodes.get("pitch_keycenter", ("",))[0].lower() == "sample":
        keycenter = None
    else:
        keycenter = key("pitch_keycenter", 60 if single is None else single)
    # Velocity 0 is a note-off, so a range starting at 0 plays from velocity 1.
    vel_lo = max(1, _number(opcodes, "lovel", 0, 127, default=1))
    vel_hi = _number(opcodes, "hivel", 1, 127, default=127)
    for low, high, low_name, high_name in ((key_lo, key_hi, "lokey", "hikey"), (vel_lo, vel_hi, "lovel", "hivel")):
        if high < low:
            _fail(where, f"{high_name} {high} is below {low_name} {low}")
    return SfzRegion(sample=sample, line=where.number, key_lo=key_lo, key_hi=key_hi, vel_lo=vel_lo, vel_hi=vel_hi,
                     pitch_keycenter=keycenter, trigger=trigger,
                     tune_cents=_number(opcodes, "tune", -9600, 9600, default=0),
                     transpose=_number(opcodes, "transpose", -127, 127, default=0),
                     seq_position=_number(opcodes, "seq_position", 1, 100, default=1),
                     sound=_sound(opcodes), file=None if where.file == sfz_path else where.file)


def _sound(opcodes: dict[str, _Value]) -> RegionSound:
    first = _number(opcodes, "offset", 0, 2**32, default=0)
    last = _number(opcodes, "end", 0, 2**32, default=None)
    if last is not None and last < first:
        _fail(opcodes["end"][1], f"end={last} is before offset={first}")
    whole = first == 0 and last is None
    return RegionSound(
        frame_range=None if whole else (first, None if last is None else last + 1),
        amp_veltrack=_number(opcodes, "amp_veltrack", -100, 100, default=DEFAULT_AMP_VELTRACK, integer=False),
        attack_s=_number(opcodes, "ampeg_attack", 0, 100, default=None, integer=False),
        release_s=_number(opcodes, "ampeg_release", 0, 100, default=None, integer=False),
    )


def _number(opcodes: dict[str, _Value], name: str, low, high, default=None, integer: bool = True):
    if name not in opcodes:
        return default
    value, at = opcodes[name]
    pattern = r"-?\d+" if integer else r"-?(\d+\.?\d*|\.\d+)"
    if not re.fullmatch(pattern, value) or not low <= float(value) <= high:
        _fail(at, f"{name}={value}: expected {'an integer' if integer else 'a number'} {low}..{high}")
    return int(value) if integer else float(value)
