"""DX7 cartridges as banks: ``wifm syx import`` / ``export`` and ``.syx`` wherever an instrument is loaded.

A cartridge (or a single-voice dump) becomes a bank whose programs 0..31 are its voices in cartridge
order, each one zone over every key and velocity, each patch compiled by ``dx7_patch``. Exporting
goes the other way: one DX7 voice per zone, in program order, padded with INIT VOICE to 32.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from wifm_synth.errors import OutputError, PatchError
from wifm_synth.formats.atomic import atomic_write_bytes
from wifm_synth.formats.bank_json import Bank, Program, Zone, load_instrument, save_bank
from wifm_synth.formats.dx7_export import dx7_name as _dx7_name
from wifm_synth.formats.dx7_export import export_voice
from wifm_synth.formats.dx7_one_voice import one_voice
from wifm_synth.formats.dx7_patch import compile_losses, compile_voice
from wifm_synth.formats.dx7_sysex import (
    CARTRIDGE_VOICE_COUNT,
    Dx7Voice,
    read_syx_file,
    write_cartridge,
    write_single,
)
from wifm_synth.voice.patch import Patch

SYX_SUFFIX = ".syx"
LOSS_NOTE, LOSS_VELOCITY, LOSS_HOLD_S, LOSS_TAIL_S, LOSS_RATE = 60, 100, 1.0, 0.5, 44100


def is_syx(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == SYX_SUFFIX


def _file_stem(index: int, name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_") or "voice"
    return f"{index:02d}_{slug}"


def bank_from_syx(path: str | os.PathLike, strict: bool = False) -> Bank:
    """The bank of a .syx file's voices; each of the reader's warnings is one line on stderr."""
    return _bank_of(read_syx_file(path, strict=strict), path)


def _bank_of(read, path) -> Bank:
    for warning in read.warnings:
        print(f"wifm: warning: {os.fspath(path)}: {warning}", file=sys.stderr)
    programs, patches = [], {}
    for index, voice in enumerate(read.voices):
        relative = f"patches/{_file_stem(index, voice.name)}.json"
        patches[relative] = compile_voice(voice)
        programs.append(Program(program=index, zones=[Zone(patch=relative, root_key=60)], name=voice.name.strip()))
    return Bank(programs=programs, name=Path(path).stem, patches=patches)


def import_command(source: Path, output: Path, strict: bool = False) -> dict:
    """``wifm syx import``: write ``output/bank.json`` and its patches; returns the summary."""
    read = read_syx_file(source, strict=strict)
    bank = _bank_of(read, source)
    if output.exists() and not output.is_dir():
        raise OutputError("exists and is not a folder", output)
    if not output.parent.is_dir():
        raise OutputError("output folder does not exist", output.parent)
    output.mkdir(exist_ok=True)
    save_bank(bank, output / "bank.json", patches_checked=True)
    losses = {program.name: lost for program, voice in zip(bank.programs, read.voices, strict=True)
              if (lost := compile_losses(voice))}
    return {"bank": str(output / "bank.json"), "programs": len(bank.programs), "not_played": losses}


def instrument_patches(instrument: Patch | Bank) -> list[tuple[str, Patch]]:
    """(label, patch) of each voice an export writes: the patch, or each zone of each program in order."""
    if not isinstance(instrument, Bank):
        return [(instrument.name, instrument)]
    return [(f"program {program.bank}:{program.program} zone {index}", instrument.patch_for(zone))
            for program in sorted(instrument.programs, key=lambda entry: (entry.bank, entry.program))
            for index, zone in enumerate(program.zones)]


def export_loss_db(patch: Patch, voice: Dx7Voice, note: int = LOSS_NOTE) -> float:
    """Multi-resolution log-STFT distance between the patch's render and its DX7 version's at ``note``."""
    from wifm_synth.analysis.metrics import multires_log_stft_distance_db
    from wifm_synth.engine import render_note

    def render(instrument):
        return render_note(instrument, note, velocity=LOSS_VELOCITY, hold_s=LOSS_HOLD_S, tail_s=LOSS_TAIL_S,
                           sample_rate=LOSS_RATE)

    native, exported = render(patch), render(compile_voice(voice))
    if not np.any(native) and not np.any(exported):
        return 0.0
    return float(multires_log_stft_distance_db(native, exported, LOSS_RATE))


def export_command(instrument_path: Path, output: Path, single: bool = False, measure: bool = False,
                   one_voice: bool = False, program: int | None = None) -> dict:
    """``wifm syx export``: a 32-voice dump (or, with ``single``, a single-voice dump) of the instrument;
    with ``one_voice``, one voice for all zones of a program (``program``, default the first)."""
    instrument = load_instrument(instrument_path)
    if program is not None and not one_voice:
        raise PatchError("--program needs --one-voice", instrument_path)
    if one_voice:
        voices = []
        report = [_one_voice_entry(instrument, instrument_path, program, measure, voices)]
    else:
        voices, report = _voice_per_zone(instrument, instrument_path, single, measure)
    if single:
        data = write_single(voices[0])
    else:
        data = write_cartridge(voices + [Dx7Voice.init_voice()] * (CARTRIDGE_VOICE_COUNT - len(voices)))
    atomic_write_bytes(output, data)
    return {"output": str(output), "bytes": len(data), "voices": report}


def _voice_per_zone(instrument, instrument_path: Path, single: bool, measure: bool) -> tuple[list, list]:
    entries = instrument_patches(instrument)
    if single and len(entries) != 1:
        raise PatchError(f"--single needs exactly one voice; this has {len(entries)}", instrument_path)
    if len(entries) > CARTRIDGE_VOICE_COUNT:
        raise PatchError(f"a cartridge holds {CARTRIDGE_VOICE_COUNT} voices; this has {len(entries)} zones",
                         instrument_path)
    voices, report = [], []
    for label, patch in entries:
        voice, losses = export_voice(patch)
        voices.append(voice)
        entry = {"voice": voice.name, "from": label, "not_kept": losses}
        if measure:
            entry["loss_db"] = round(export_loss_db(patch, voice), 3)
        report.append(entry)
    return voices, report


def _one_voice_entry(instrument, instrument_path: Path, number: int | None, measure: bool, voices: list) -> dict:
    """Appends the program's one voice to ``voices``; its report entry lists each zone (and its loss)."""
    if not isinstance(instrument, Bank):
        instrument = Bank(programs=[Program(program=0, zones=[Zone(patch="patch", root_key=instrument.pitch.reference_note)],
                                            name=instrument.name)], name=instrument.name, patches={"patch": instrument})
    programs = sorted(instrument.programs, key=lambda entry: (entry.bank, entry.program))
    chosen = programs[0] if number is None else next((entry for entry in programs if entry.program == number), None)
    if chosen is None:
        raise PatchError(f"--program {number}: no such program in the bank", instrument_path)
    labels = [f"program {chosen.bank}:{chosen.program} zone {index}" for index in range(len(chosen.zones))]
    patches = [instrument.patch_for(zone) for zone in chosen.zones]
    voice, losses = one_voice(chosen, patches, labels, instrument_path)
    voice = voice.with_name(_dx7_name(chosen.name or voice.name))
    voices.append(voice)
    zones = []
    for label, zone, patch in zip(labels, chosen.zones, patches, strict=True):
        entry = {"from": label, "root_key": zone.root_key}
        if measure:
            entry["loss_db"] = round(export_loss_db(patch, voice, zone.root_key), 3)
        zones.append(entry)
    return {"voice": voice.name, "from": f"program {chosen.bank}:{chosen.program}", "not_kept": losses, "zones": zones}
