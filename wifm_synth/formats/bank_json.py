"""Banks (docs/FORMATS.md): (bank, program, key range, velocity range) → patch.

A Bank holds the document's structure plus the patches it references, keyed by the zone's ``patch``
path (relative to the bank file), so a patch shared by several zones is loaded and compiled once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wifm_synth.errors import OutputError, PatchError
from wifm_synth.formats.atomic import atomic_write_files, read_json, readable_json
from wifm_synth.formats.fields import FieldReader, read_document
from wifm_synth.formats.inputs import is_existing_file
from wifm_synth.formats.patch_json import (
    PATCH_FORMAT,
    Patch,
    load_patch,
    patch_document_bytes,
    patch_from_dict,
)
from wifm_synth.library.zones import (
    KEY_RANGE,
    PLANE,
    VELOCITY_RANGE,
    ZoneSpan,
    first_gap,
    first_overlap,
)

BANK_FORMAT = "wifm-bank"
BANK_VERSION = 1
# A program's "fill": with "nearest" (the default) its zones cover every key and velocity, the builder having
# given uncovered cells to the nearest sample; with "silent" they may leave cells uncovered, which play nothing.
FILL_NEAREST = "nearest"
FILL_SILENT = "silent"
FILLS = (FILL_NEAREST, FILL_SILENT)


@dataclass
class Zone:
    patch: str  # path of the patch file, relative to the bank file
    root_key: int
    key_lo: int = KEY_RANGE[0]
    key_hi: int = KEY_RANGE[1]
    vel_lo: int = VELOCITY_RANGE[0]
    vel_hi: int = VELOCITY_RANGE[1]

    @classmethod
    def from_span(cls, span: ZoneSpan, patch: str) -> Zone:
        return cls(patch=patch, root_key=span.root_key, key_lo=span.key_lo, key_hi=span.key_hi,
                   vel_lo=span.vel_lo, vel_hi=span.vel_hi)

    def contains(self, key: int, velocity: int) -> bool:
        return self.key_lo <= key <= self.key_hi and self.vel_lo <= velocity <= self.vel_hi


@dataclass
class Program:
    program: int
    zones: list[Zone]
    bank: int = 0
    name: str = ""
    fill: str = FILL_NEAREST

    def zone_for(self, key: int, velocity: int) -> Zone:
        """The zone that plays ``key`` at ``velocity``; PatchError where a "silent" program has none."""
        for zone in self.zones:
            if zone.contains(key, velocity):
                return zone
        raise PatchError(f"program {self.bank}:{self.program} has no zone for key {key} velocity {velocity}")


@dataclass
class Bank:
    programs: list[Program]
    name: str = "untitled"
    drums: tuple[int, int] | None = None  # (bank, program) that plays MIDI channel 10, or silent
    patches: dict[str, Patch] = field(default_factory=dict)  # zone.patch → loaded Patch

    def program_for(self, bank: int, program: int) -> tuple[Program, bool]:
        """The program that plays (bank, program), and whether it is an exact match: the engine's rule,
        :func:`wifm_synth.engine.midi.resolve_program`."""
        # Imported here: the engine imports this module.
        from wifm_synth.engine.midi import resolve_program

        table, programs = self._program_table()
        row, exact = resolve_program(table, bank, program)
        return programs[row], bool(exact)

    def _program_table(self) -> tuple[np.ndarray, list[Program]]:
        """The engine's program table for these programs (zone columns left empty) and the program of each row."""
        from wifm_synth.engine.tables import PROGRAM_BANK, PROGRAM_NUMBER, PROGRAM_WIDTH

        programs = sorted(self.programs, key=lambda entry: (entry.bank, entry.program))
        table = np.zeros((len(programs), PROGRAM_WIDTH), dtype=np.int64)
        table[:, PROGRAM_BANK] = [entry.bank for entry in programs]
        table[:, PROGRAM_NUMBER] = [entry.program for entry in programs]
        return table, programs

    def drum_program(self) -> Program | None:
        if self.drums is None:
            return None
        return self.program_for(*self.drums)[0]

    def patch_for(self, zone: Zone) -> Patch:
        try:
            return self.patches[zone.patch]
        except KeyError:
            raise PatchError(f"patch {zone.patch!r} is not loaded (use load_bank)", self.name) from None

    def zone_entries(self) -> list[tuple[int, int, int, int, int, int, Patch]]:
        """Flat ``(bank, program, key_lo, key_hi, vel_lo, vel_hi, patch)`` rows for the engine's zone table."""
        return [
            (program.bank, program.program, zone.key_lo, zone.key_hi, zone.vel_lo, zone.vel_hi, self.patch_for(zone))
            for program in self.programs
            for zone in program.zones
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BANK_FORMAT,
            "version": BANK_VERSION,
            "name": self.name,
            "programs": [
                {
                    "bank": program.bank,
                    "program": program.program,
                    "name": program.name,
                    # Written only when silent, so that banks without gaps stay as they were.
                    **({"fill": program.fill} if program.fill != FILL_NEAREST else {}),
                    "zones": [
                        {"patch": zone.patch, "root_key": zone.root_key, "key_lo": zone.key_lo,
                         "key_hi": zone.key_hi, "vel_lo": zone.vel_lo, "vel_hi": zone.vel_hi}
                        for zone in program.zones
                    ],
                }
                for program in self.programs
            ],
            "drums": None if self.drums is None else {"bank": self.drums[0], "program": self.drums[1]},
        }


def _check_tiling(fields: FieldReader, where: str, zones: list[Zone], fill: str) -> None:
    """Every (key, velocity) cell of a program must be covered by at most one zone, and by one unless the
    program's fill is silent."""
    overlap = first_overlap(zones)
    if overlap is not None:
        index, other, key, velocity = overlap
        fields.fail(f"{where}.zones[{index}]", f"overlaps zones[{other}] at key {key} velocity {velocity}")
    gap = first_gap(zones) if fill == FILL_NEAREST else None
    if gap is not None:
        fields.fail(f"{where}.zones", f"leave key {gap[0]} velocity {gap[1]} uncovered "
                                      f"(zones must tile {PLANE} unless the program's fill is \"silent\")")


def _zone_from(fields: FieldReader) -> Zone:
    if "patch" not in fields.document:
        fields.fail(fields.child("patch"), "is required")
    patch = fields.text("patch", None)
    if not patch or Path(patch).is_absolute():
        fields.fail(fields.child("patch"), "must be a path relative to the bank file")
    keys = {"low": KEY_RANGE[0], "high": KEY_RANGE[1], "integer": True}
    velocities = {"low": VELOCITY_RANGE[0], "high": VELOCITY_RANGE[1], "integer": True}
    key_lo = fields.number("key_lo", default=KEY_RANGE[0], **keys)
    key_hi = fields.number("key_hi", default=KEY_RANGE[1], **keys)
    vel_lo = fields.number("vel_lo", default=VELOCITY_RANGE[0], **velocities)
    vel_hi = fields.number("vel_hi", default=VELOCITY_RANGE[1], **velocities)
    if key_hi < key_lo:
        fields.fail(fields.child("key_hi"), "must be >= key_lo")
    if vel_hi < vel_lo:
        fields.fail(fields.child("vel_hi"), "must be >= vel_lo")
    return Zone(
        patch=patch,
        root_key=fields.number("root_key", **keys),
        key_lo=key_lo, key_hi=key_hi, vel_lo=vel_lo, vel_hi=vel_hi,
    )


def _program_from(fields: FieldReader) -> Program:
    zones = [_zone_from(zone) for zone in fields.objects("zones", 1, math.inf, "must have at least one zone")]
    fill = fields.text("fill", FILL_NEAREST)
    if fill not in FILLS:
        fields.fail(fields.child("fill"), f"must be one of {', '.join(map(repr, FILLS))}, got {fill!r}")
    _check_tiling(fields, fields.path, zones, fill)
    return Program(
        fill=fill,
        program=fields.number("program", low=0, high=127, integer=True),
        zones=zones,
        bank=fields.number("bank", default=0, low=0, high=16383, integer=True),
        name=fields.text("name", ""),
    )


def bank_from_dict(document: Any, source: str | os.PathLike | None = None) -> Bank:
    """Validate a bank document (without loading its patches); PatchError names ``source`` and the field path."""
    fields = read_document(document, source, "bank", BANK_FORMAT, BANK_VERSION)
    programs = []
    seen: dict[tuple[int, int], int] = {}
    for index, program_fields in enumerate(fields.objects("programs", 1, math.inf, "must have at least one program")):
        program = _program_from(program_fields)
        number = (program.bank, program.program)
        if number in seen:
            fields.fail(f"programs[{index}]", f"bank {number[0]} program {number[1]} repeats programs[{seen[number]}]")
        seen[number] = index
        programs.append(program)
    drums = None
    if document.get("drums") is not None:
        raw_drums = fields.sub("drums")
        drums = (raw_drums.number("bank", default=0, low=0, high=16383, integer=True),
                 raw_drums.number("program", low=0, high=127, integer=True))
        if drums not in seen:
            fields.fail("drums", f"bank {drums[0]} program {drums[1]} is not one of the programs")
    return Bank(programs=programs, name=fields.text("name", "untitled"), drums=drums)


def _patch_file(bank_path: Path, zone_patch: str) -> Path:
    return bank_path.parent / zone_patch


def _load_patches(bank: Bank, bank_path: Path) -> Bank:
    for program_index, program in enumerate(bank.programs):
        for zone_index, zone in enumerate(program.zones):
            if zone.patch in bank.patches:
                continue
            patch_path = _patch_file(bank_path, zone.patch)
            if not is_existing_file(patch_path):
                raise PatchError(f"programs[{program_index}].zones[{zone_index}].patch: "
                                 f"no such patch file {zone.patch!r} (looked for {patch_path})", bank_path)
            bank.patches[zone.patch] = load_patch(patch_path)
    return bank


def load_bank(path: str | os.PathLike) -> Bank:
    """Read and validate a bank file and load every patch it references (relative to the bank file)."""
    return _load_patches(bank_from_dict(read_json(path), path), Path(path))


def save_bank(bank: Bank, path: str | os.PathLike, patches_checked: bool = False) -> None:
    """Write the bank's loaded patches (beside it, at their relative paths), then the bank file; each atomically,
    synced together.

    A zone whose patch is not in ``bank.patches`` must already exist on disk, so the written bank
    never references a missing file. Each patch document is read back before writing unless
    ``patches_checked`` (patches just built by code whose output is already validated, a DX7 compile).
    """
    bank_path = Path(path)
    document = bank.to_dict()
    bank_from_dict(document, bank_path)  # refuse to write what we could not read back
    if not bank_path.parent.is_dir():  # patch folders are created below it, the bank's own folder is not
        raise OutputError("output folder does not exist", bank_path.parent)
    for program_index, program in enumerate(bank.programs):
        for zone_index, zone in enumerate(program.zones):
            if zone.patch not in bank.patches and not _patch_file(bank_path, zone.patch).is_file():
                raise PatchError(f"programs[{program_index}].zones[{zone_index}].patch: "
                                 f"{zone.patch!r} is neither loaded nor on disk", bank_path)
    files = {}
    for relative, patch in bank.patches.items():
        patch_path = _patch_file(bank_path, relative)
        try:
            patch_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder ({exc.strerror})", patch_path.parent) from None
        files[patch_path] = patch_document_bytes(patch, patch_path, check=not patches_checked)
    files[bank_path] = readable_json(document).encode()  # last: it references the patches
    atomic_write_files(files)


def load_instrument(path: str | os.PathLike, strict_syx: bool = False) -> Patch | Bank:
    """Load a patch or a bank, chosen by the file's ``"format"`` field; a .syx file is a bank of DX7 voices
    (``strict_syx``: refusing a wrong checksum or out-of-range values instead of warning)."""
    if Path(path).suffix.lower() == ".syx":
        # Imported here: dx7_bank imports this module.
        from wifm_synth.formats.dx7_bank import bank_from_syx

        return bank_from_syx(path, strict=strict_syx)
    document = read_json(path)
    file_format = document.get("format") if isinstance(document, dict) else None
    if file_format == PATCH_FORMAT:
        return patch_from_dict(document, path)
    if file_format == BANK_FORMAT:
        return _load_patches(bank_from_dict(document, path), Path(path))
    raise PatchError(f'format: must be "{PATCH_FORMAT}" or "{BANK_FORMAT}", got {file_format!r}', path)
