"""SoundFont 2 preset headers: which presets (bank, program, name) an ``.sf2`` file holds.

FluidSynth renders the notes (:mod:`wifm_synth.library.soundfont`), but its Python binding can only name a
preset whose bank and program are already known (``sfpreset_name``), and it reports a broken file on
stderr rather than as an error. So the file's RIFF outline and its ``phdr`` chunk (38 bytes a preset) are
read here: that lists every preset without probing all 16384 × 128 bank/program pairs, and rejects a file
that is not a SoundFont with one line before FluidSynth sees it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from wifm_synth.errors import InputError
from wifm_synth.formats.inputs import open_input

PRESET_HEADER_SIZE = 38
DRUM_BANK = 128  # General MIDI's percussion bank in SoundFonts
# The SoundFont limits: bank numbers are MIDI banks (14 bits), programs 7 bits.
MAX_BANK = 16383


@dataclass(frozen=True)
class Sf2Preset:
    """One preset of a SoundFont: the bank and program that select it, and its name."""

    bank: int
    program: int
    name: str

    @property
    def is_drum_kit(self) -> bool:
        return self.bank == DRUM_BANK


def _chunks(data: bytes, start: int, end: int, path: str) -> dict[str, tuple[int, int]]:
    """``{chunk id or LIST type: (data start, data end)}`` of the chunks in ``data[start:end]``."""
    found: dict[str, tuple[int, int]] = {}
    position = start
    while position + 8 <= end:
        chunk_id = data[position:position + 4].decode("latin-1")
        (size,) = struct.unpack_from("<I", data, position + 4)
        body_start, body_end = position + 8, position + 8 + size
        if body_end > end:
            raise InputError(f"not a valid SoundFont: chunk {chunk_id!r} runs past the end of the file", path)
        if chunk_id == "LIST" and size >= 4:
            found[data[body_start:body_start + 4].decode("latin-1")] = (body_start + 4, body_end)
        else:
            found[chunk_id] = (body_start, body_end)
        position = body_end + (size & 1)  # RIFF pads odd-sized chunks to an even length
    return found


def read_presets(path: str | os.PathLike) -> list[Sf2Preset]:
    """The presets of the SoundFont at ``path``, sorted by (bank, program); InputError for a file that is
    not a SoundFont 2 or has no presets."""
    path = os.fspath(path)
    with open_input(path, "a SoundFont") as stream:
        data = stream.read()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise InputError("not a SoundFont 2 file (no RIFF sfbk header)", path)
    (riff_size,) = struct.unpack_from("<I", data, 4)
    top = _chunks(data, 12, min(len(data), 8 + riff_size), path)
    missing = [name for name in ("INFO", "sdta", "pdta") if name not in top]
    if missing:
        raise InputError(f"not a valid SoundFont: no {', '.join(missing)} list", path)
    hydra = _chunks(data, *top["pdta"], path)
    if "phdr" not in hydra:
        raise InputError("not a valid SoundFont: no preset headers (phdr)", path)
    start, end = hydra["phdr"]
    count = (end - start) // PRESET_HEADER_SIZE - 1  # the last record only terminates the list
    if (end - start) % PRESET_HEADER_SIZE or count < 1:
        raise InputError("not a valid SoundFont: the preset headers (phdr) are truncated or empty", path)
    presets = {}
    for index in range(count):
        raw_name, program, bank = struct.unpack_from("<20sHH", data, start + index * PRESET_HEADER_SIZE)
        if program > 127 or bank > MAX_BANK:
            raise InputError(f"not a valid SoundFont: preset {index} has bank {bank} program {program}", path)
        name = raw_name.split(b"\0", 1)[0].decode("latin-1").strip() or f"preset {bank}:{program}"
        presets.setdefault((bank, program), Sf2Preset(bank, program, name))  # a duplicate is never selected
    return sorted(presets.values(), key=lambda preset: (preset.bank, preset.program))
