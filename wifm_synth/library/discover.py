"""Sample library → programs and their samples: audio discovery, folder layout, SFZ regions, one entry per sample.

A folder of audio files is one instrument, or one per name stem when the names start with several
(``violin_67_100.wav`` and ``flute_72_100.wav``: violin and flute); a folder of subfolders is one program
per subfolder (subfolders named only by a dynamic or velocity, such as ``ff/`` or ``vel64/``, are velocity
layers of one instrument instead). Keys and velocities come from the file names (:mod:`wifm_synth.library.naming`),
or for SFZ from the regions; samples whose name gives no key are pitch-detected by the fitter. Program
numbers come from General MIDI names when the match is obvious, else they are assigned in order.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

from wifm_synth.errors import InputError
from wifm_synth.formats.sfz import RegionSound, SfzRegion, read_sfz
from wifm_synth.library.naming import (
    gm_program_for,
    instrument_stem,
    layer_velocity,
    parse_sample_name,
)
from wifm_synth.library.zones import owner_grid

if TYPE_CHECKING:
    from wifm_synth.bank.executors import FitOutcome

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".mp3")
# Velocity layer of samples whose name gives none: the velocity the fitter takes as reference.
DEFAULT_VELOCITY = 100
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9#._-]+")


@dataclass
class SampleEntry:
    """One sample of one program, from planning to its row in the summary."""

    label: str  # the sample's path relative to SOURCE's folder
    path: Path
    patch_file: str  # relative to the bank folder
    note: int | None  # key from the name or the SFZ region; None = pitch-detected
    velocity: int | None  # velocity from the name; None = not given
    layer_velocity: int = DEFAULT_VELOCITY
    round_robin: int = 0
    regions: list[SfzRegion] = field(default_factory=list)
    tune_cents: int = 0  # the SFZ regions' tune, added to the fitted tuning when the patch is saved
    transpose: int = 0  # the SFZ regions' transpose (semitones), applied when the patch is saved
    sound: RegionSound | None = None  # how the SFZ regions play the sample; None for a folder's sample
    cache_key: str = ""
    status: str = "pending"  # fitted, cached, failed or skipped
    detail: str = ""
    outcome: FitOutcome | None = None

    @property
    def root_key(self) -> int:
        """The key the fitted patch sounds at (the name's or region's key, else the detected one)."""
        return int(self.outcome.patch["pitch"]["reference_note"])


@dataclass
class ProgramPlan:
    """One program of the bank: its instrument name, number, patch folder and samples."""

    name: str
    program: int
    folder: str  # sub-folder of the bank folder that holds this program's patches
    entries: list[SampleEntry]
    is_sfz: bool = False
    notices: list[str] = field(default_factory=list)  # one-line notes for the user, such as ignored SFZ opcodes
    bank: int = 0
    is_drums: bool = False  # a drum kit: one unpitched patch per key, played on MIDI channel 10


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def _audio_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*")
                  if path.is_file() and _is_audio(path)
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def _is_layer_folder(name: str) -> bool:
    info = parse_sample_name(name)
    return info.note is None and (info.velocity is not None or info.velocity_layer is not None)


def _folder_instruments(source: Path) -> list[tuple[str, Path, list[Path]]]:
    """``(instrument name, instrument folder, audio files)`` for each instrument in a sample folder."""
    try:
        children = sorted(child for child in source.iterdir() if not child.name.startswith("."))
    except PermissionError:
        raise InputError("permission denied", source) from None
    if not children:
        raise InputError("folder is empty", source)
    top_audio = [child for child in children if child.is_file() and _is_audio(child)]
    subfolders = [(child, _audio_under(child)) for child in children if child.is_dir()]
    subfolders = [(folder, files) for folder, files in subfolders if files]
    if subfolders and all(_is_layer_folder(folder.name) for folder, _ in subfolders):
        return [(source.name, source, sorted(top_audio + [f for _, files in subfolders for f in files]))]
    instruments = _instruments_by_name_stem(source, top_audio)
    instruments += [(folder.name, folder, files) for folder, files in subfolders]
    if not instruments:
        raise InputError(f"no audio files here (looked for {', '.join(AUDIO_SUFFIXES)})", source)
    return instruments


def _instruments_by_name_stem(folder: Path, files: list[Path]) -> list[tuple[str, Path, list[Path]]]:
    """A flat folder's files grouped into instruments by the name before their key (``violin_67_100.wav`` →
    violin); one instrument named after the folder when the names give one stem, or some give none."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(instrument_stem(path.name).lower(), []).append(path)
    if len(groups) < 2 or "" in groups:
        return [(folder.name, folder, files)] if files else []
    return [(instrument_stem(group[0].name), folder, group) for group in groups.values()]


def _safe_name(text: str) -> str:
    return _UNSAFE_FILE_CHARACTERS.sub("_", text).strip("._") or "sample"


def _unique(name: str, taken: set[str]) -> str:
    candidate, counter = name, 2
    while candidate.lower() in taken:
        candidate, counter = f"{name}-{counter}", counter + 1
    taken.add(candidate.lower())
    return candidate


def _entries_from_files(instrument_folder: Path, files: list[Path], program_folder: str) -> list[SampleEntry]:
    """Entries for one instrument's files; duplicates of a (key, velocity) pair keep the first round robin."""
    parsed = []
    for path in files:
        relative = path.relative_to(instrument_folder)
        info = parse_sample_name(path.name)
        velocity, layer = info.velocity, info.velocity_layer
        for folder in reversed(relative.parts[:-1]):  # a layer folder ("ff/", "v2/") gives the velocity
            if velocity is None and layer is None:
                folder_info = parse_sample_name(folder)
                velocity, layer = folder_info.velocity, folder_info.velocity_layer
        parsed.append((path, relative, info, velocity, layer))
    layer_count = max((layer for *_, layer in parsed if layer is not None), default=1)
    taken: set[str] = set()
    entries = []
    for path, relative, info, velocity, layer in parsed:
        if velocity is None and layer is not None:
            velocity = layer_velocity(layer, layer_count)
        stem = _safe_name("_".join(relative.with_suffix("").parts))
        entry = SampleEntry(
            label=str(Path(instrument_folder.name) / relative), path=path,
            patch_file=f"{program_folder}/{_unique(stem, taken)}.json", note=info.note, velocity=velocity,
            layer_velocity=velocity if velocity is not None else DEFAULT_VELOCITY, round_robin=info.round_robin or 0,
        )
        if info.ambiguity:
            entry.detail = f"{info.ambiguity} in the name; key detected from the audio"
        entries.append(entry)
    skip_duplicate_keys(entries, lambda entry: entry.note)
    return entries


def skip_duplicate_keys(entries: list[SampleEntry], key_of: Callable[[SampleEntry], int | None]) -> None:
    """Keep one sample per (velocity layer, key): the lowest round robin, then the first by name."""
    kept: dict[tuple[int, int], SampleEntry] = {}
    live = [entry for entry in entries if entry.status not in ("skipped", "failed") and key_of(entry) is not None]
    for entry in sorted(live, key=lambda entry: (entry.round_robin, entry.label)):
        slot = (entry.layer_velocity, key_of(entry))
        if slot in kept:
            entry.status = "skipped"
            entry.detail = f"same key {slot[1]} and velocity layer {slot[0]} as {kept[slot].label}"
        else:
            kept[slot] = entry


def _assign_program_numbers(names: list[str], requested: int | None) -> list[int]:
    if requested is not None:
        return [requested]
    numbers: list[int | None] = []
    for name in names:
        program = gm_program_for(name)
        numbers.append(program if program is not None and program not in numbers else None)
    free = (program for program in range(128) if program not in numbers)
    return [program if program is not None else next(free) for program in numbers]


def _plan_folder(source: Path, requested_program: int | None) -> list[ProgramPlan]:
    instruments = _folder_instruments(source)
    if len(instruments) > 128:
        raise InputError(f"has {len(instruments)} instruments; a bank holds at most 128 programs", source)
    if requested_program is not None and len(instruments) > 1:
        raise InputError(f"--program needs a single-instrument source; this folder has {len(instruments)} "
                         f"instruments ({', '.join(name for name, _, _ in instruments)})", source)
    numbers = _assign_program_numbers([name for name, _, _ in instruments], requested_program)
    taken: set[str] = set()
    plans = []
    for (name, folder, files), number in zip(instruments, numbers):
        program_folder = _unique(_safe_name(name), taken)
        plans.append(ProgramPlan(name=name, program=number, folder=program_folder,
                                 entries=_entries_from_files(folder, files, program_folder)))
    return plans


def _plan_sfz(source: Path, requested_program: int | None) -> tuple[ProgramPlan, list[str]]:
    instrument = read_sfz(source)
    # Where regions overlap (later round robins, layered samples) the first one plays; the first round robin
    # comes first.
    regions = sorted(instrument.regions, key=lambda region: region.seq_position)
    owning = set(np.unique(owner_grid(regions)).tolist())
    skipped = [f"{region.file or source}: line {region.line}: {region.sample.name} skipped (its keys and "
               f"velocities are covered by earlier regions)" for index, region in enumerate(regions) if index not in owning]
    program_folder = _safe_name(source.stem)
    by_sample: dict[tuple, SampleEntry] = {}
    taken: set[str] = set()
    for index, region in enumerate(regions):
        if index not in owning:
            continue
        sound = _whole_sample_as_none(region.sound, region.sample)
        slot = (region.sample, region.pitch_keycenter, region.tune_cents, region.transpose, sound)
        if slot not in by_sample:
            stem = _safe_name(region.sample.stem)
            label = os.path.relpath(region.sample, source.parent)
            by_sample[slot] = SampleEntry(label=label, path=region.sample, note=region.pitch_keycenter, velocity=None,
                                          patch_file=f"{program_folder}/{_unique(stem, taken)}.json",
                                          tune_cents=region.tune_cents, transpose=region.transpose, sound=sound)
        by_sample[slot].regions.append(region)
    program = requested_program if requested_program is not None else gm_program_for(source.stem)
    notice = instrument.ignored_notice()
    plan = ProgramPlan(name=source.stem, program=0 if program is None else program, folder=program_folder,
                       entries=list(by_sample.values()), is_sfz=True, notices=[notice] if notice else [])
    return plan, instrument.skipped + skipped


def _whole_sample_as_none(sound: RegionSound, sample: Path) -> RegionSound:
    """``sound`` with a range that covers the whole sample (``offset=0 end=LAST``) written as no range, so that
    it shares the fit of the whole sample."""
    if sound.frame_range is None or sound.frame_range[0] != 0:
        return sound
    try:
        frames = soundfile.info(str(sample)).frames
    except (soundfile.LibsndfileError, RuntimeError, OSError):
        return sound  # the fit job reports what is wrong with the file
    stop = sound.frame_range[1]
    return dataclasses.replace(sound, frame_range=None) if stop is None or stop >= frames else sound


def plan_bank(source: str | os.PathLike, program: int | None = None) -> tuple[list[ProgramPlan], list[str]]:
    """Programs and samples of a folder or SFZ file, in program order, and notes on SFZ regions left out.

    Samples that duplicate another's key and velocity layer are already marked "skipped".
    """
    source = Path(source)
    if not source.exists():
        raise InputError("no such file or folder", source)
    if source.is_dir():
        return sorted(_plan_folder(source, program), key=lambda plan: plan.program), []
    if source.suffix.lower() == ".sfz":
        plan, skipped_regions = _plan_sfz(source, program)
        return [plan], skipped_regions
    raise InputError("expected a folder of samples or an .sfz file", source)
