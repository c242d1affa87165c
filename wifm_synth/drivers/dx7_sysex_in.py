"""DX7 SysEx received while playing: voice dumps and parameter changes become patch loads.

The MIDI pump (``drivers/midi_in.py``) calls :func:`apply_sysex` for every SysEx message. Compiling a
voice is Python work, so it happens here, on the pump's thread; the audio thread only receives the
finished patch row through ``Synth.load_patch`` (the fenced command ring), so a sounding note goes on
and the next note plays the new voice.

- a single-voice dump on channel n replaces the patch of channel n's current program (every zone);
- a 32-voice dump replaces programs 0..31 of bank 0 (those the instrument has);
- a voice parameter change ``F0 43 1n gg pp dd F7`` changes one byte of channel n's current voice.

Which program a channel plays is read from the engine state the audio thread writes; one integer,
read without a lock, at worst one message late.
"""

from __future__ import annotations

from wifm_synth.engine.layout import CHANNEL_PROGRAM_ROW
from wifm_synth.engine.tables import (
    PROGRAM_BANK,
    PROGRAM_FIRST_ZONE,
    PROGRAM_NUMBER,
    PROGRAM_ZONE_COUNT,
    ZONE_PATCH,
)
from wifm_synth.errors import WifmError
from wifm_synth.formats.dx7_export import export_voice
from wifm_synth.formats.dx7_parameters import VOICE_UNPACKED_SIZE
from wifm_synth.formats.dx7_patch import compile_voice, stored_voice
from wifm_synth.formats.dx7_sysex import read_syx
from wifm_synth.formats.dx7_voice import Dx7Voice

SYSEX_START = 0xF0
DX7_MANUFACTURER_ID = 0x43
PARAMETER_CHANGE = 0x10  # high nibble of byte 2: a parameter change (0x00: a dump)
PARAMETER_CHANGE_SIZE = 7
VOICE_GROUP = 0  # parameter group of the voice parameters (bits 2..6 of byte 3)


def _program_patch_rows(compiled, program_row: int) -> list[int]:
    first = int(compiled.program_table[program_row, PROGRAM_FIRST_ZONE])
    count = int(compiled.program_table[program_row, PROGRAM_ZONE_COUNT])
    return sorted({int(compiled.zone_table[zone, ZONE_PATCH]) for zone in range(first, first + count)})


def _channel_rows(sink, channel: int) -> list[int]:
    program_row = int(sink.state.channel_ints[CHANNEL_PROGRAM_ROW, channel])
    return _program_patch_rows(sink.compiled, program_row) if program_row >= 0 else []


def _current_voice(patch) -> Dx7Voice:
    voice = stored_voice(patch)
    return voice if voice is not None else export_voice(patch)[0]


def patch_loads(sink, message: bytes) -> list[tuple[int, object]]:
    """(patch row, new patch) pairs that ``message`` asks for; empty for anything else."""
    if len(message) < 4 or message[0] != SYSEX_START or message[1] != DX7_MANUFACTURER_ID:
        return []
    channel = message[2] & 0x0F
    if message[2] & 0xF0 == PARAMETER_CHANGE:
        if len(message) != PARAMETER_CHANGE_SIZE or message[3] >> 2 != VOICE_GROUP:
            return []
        parameter = ((message[3] & 0x03) << 7) | message[4]
        if parameter >= VOICE_UNPACKED_SIZE:  # 155 is the operator on/off switch: not part of a voice
            return []
        loads = []
        for row in _channel_rows(sink, channel):
            voice = _current_voice(sink.compiled.patches[row])
            raw = bytearray(voice.raw)
            raw[parameter] = message[5] & 0x7F
            loads.append((row, compile_voice(Dx7Voice(bytes(raw), voice.packed_spare_bits))))
        return loads
    read = read_syx(message)
    if read.kind == "single":
        return [(row, compile_voice(read.voices[0])) for row in _channel_rows(sink, channel)]
    loads = []
    for program_row, (bank, number) in enumerate(sink.compiled.program_table[:, [PROGRAM_BANK, PROGRAM_NUMBER]]):
        if bank == 0 and number < len(read.voices):
            patch = compile_voice(read.voices[int(number)])
            loads += [(row, patch) for row in _program_patch_rows(sink.compiled, program_row)]
    return loads


def apply_sysex(sink, message, frame: int) -> str | None:
    """Load what a DX7 SysEx message asks for at ``frame``; returns a notice when it cannot be used."""
    if not hasattr(sink, "compiled"):
        return None
    try:
        for row, patch in patch_loads(sink, bytes(message)):
            sink.load_patch(row, patch, frame=frame)
    except WifmError as error:  # a broken dump, or the patch-load queue is full
        return f"SysEx ignored: {error.reason}"
    return None
