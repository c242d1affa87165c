"""What a report covers: the fitted notes of a patch or bank file, and where their source samples are."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from wifm_synth.errors import InputError
from wifm_synth.formats.bank_json import Bank, Program, Zone, load_instrument
from wifm_synth.voice.patch import Patch


@dataclass
class ReportNote:
    """One fitted patch to compare with its source sample; a bank's zones that share a patch share a note."""

    anchor: str  # HTML id of the note's section
    title: str
    patch: Patch
    patch_file: Path
    search_folders: list[Path]  # where a relative ``metadata.source`` is looked for, in order
    zones: list[tuple[Program, Zone]] = field(default_factory=list)

    @property
    def midi_note(self) -> int:
        """The key that reproduces the fitted sample: the engine plays the patch relative to its reference note."""
        return self.patch.pitch.reference_note

    @property
    def velocity(self) -> int:
        return self.patch.pitch.reference_velocity


@dataclass
class Instrument:
    """A loaded patch or bank file and the notes its report shows."""

    path: Path
    name: str
    bank: Bank | None
    notes: list[ReportNote]


def load_report_instrument(path: str | os.PathLike) -> Instrument:
    """Load a patch or bank (PatchError/InputError on bad input) and list its notes in program order."""
    path = Path(path)
    instrument = load_instrument(path)
    if isinstance(instrument, Patch):
        note = ReportNote(anchor="note-1", title=instrument.name, patch=instrument, patch_file=path,
                          search_folders=[path.parent])
        return Instrument(path=path, name=instrument.name, bank=None, notes=[note])
    notes: dict[str, ReportNote] = {}
    for program in instrument.programs:
        for zone in sorted(program.zones, key=lambda z: (z.vel_lo, z.key_lo)):
            if zone.patch not in notes:
                patch = instrument.patch_for(zone)
                patch_file = path.parent / zone.patch
                notes[zone.patch] = ReportNote(
                    anchor=f"note-{len(notes) + 1}", title=patch.name, patch=patch, patch_file=patch_file,
                    search_folders=list(dict.fromkeys([patch_file.parent, path.parent])),
                )
            notes[zone.patch].zones.append((program, zone))
    return Instrument(path=path, name=instrument.name, bank=instrument, notes=list(notes.values()))


def resolve_source(note: ReportNote) -> Path:
    """The note's source sample: ``metadata.source`` as written if absolute, else relative to the patch file,
    then to the bank's folder. Raises InputError saying what is missing."""
    source = note.patch.metadata.get("source")
    if not isinstance(source, str) or not source:
        raise InputError("the patch names no source sample (metadata.source)", note.patch_file)
    candidates = [Path(source)] if Path(source).is_absolute() else [folder / source for folder in note.search_folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()  # bank builders write paths like ../../samples/x.wav; show the real one
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise InputError(f"source sample {source!r} not found (looked for {looked})", note.patch_file)
