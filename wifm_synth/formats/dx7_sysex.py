"""DX7 SysEx voice dumps: writing single voices and 32-voice cartridges, and reading .syx files leniently.

Message layout (``n`` is the MIDI channel 0..15; every byte between F0 and F7 is 7-bit)::

    single voice     F0 43 0n 00 01 1B  <155 unpacked bytes>        <checksum> F7   163 bytes
    32-voice bulk    F0 43 0n 09 20 00  <32 × 128 packed bytes>     <checksum> F7   4104 bytes

Byte 3 is the format (0 one voice, 9 thirty-two voices), bytes 4–5 the data byte count in two 7-bit
halves (01 1B = 155, 20 00 = 4096), and the checksum is ``(-sum(data bytes)) & 0x7F``. The voice
forms themselves (unpacked 155 bytes, packed 128 bytes, operator 6 first) are described in
``dx7_parameters``.

``read_syx`` accepts what real .syx files contain: any channel nibble, a bare 4096-byte cartridge
with no header, and files holding several SysEx messages (the first usable DX7 voice dump is read;
broken dumps before it are skipped). Problems a DX7 librarian would shrug off load with one warning
line each — a wrong checksum; stored values beyond the DX7's ranges, which read clamped but
re-export as stored; skipped broken dumps; dumps after the one read — and ``strict=True`` refuses
all but the last. A file with no usable DX7 voice dump (wrong size, truncated, data bytes above
0x7F, no dump at all) raises a one-line InputError naming the file and the first problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wifm_synth.checks import integer_in
from wifm_synth.errors import InputError, PatchError
from wifm_synth.formats.dx7_parameters import (
    SEVEN_BITS,
    VOICE_PACKED_SIZE,
    VOICE_UNPACKED_SIZE,
)
from wifm_synth.formats.dx7_voice import (
    Dx7Voice,
    pack_cartridge_voice,
    pack_voice,
    unpack_cartridge_voice,
    unpack_voice,
)

__all__ = [
    "CARTRIDGE_DATA_SIZE", "CARTRIDGE_MESSAGE_SIZE", "CARTRIDGE_VOICE_COUNT", "HEADER_SIZE",
    "SINGLE_MESSAGE_SIZE", "Dx7Read", "Dx7Voice", "cartridge_data", "checksum", "pack_cartridge_voice",
    "pack_voice", "read_syx", "read_syx_file", "unpack_cartridge_voice", "unpack_voice", "write_cartridge",
    "write_single",
]

SYSEX_START = 0xF0
SYSEX_END = 0xF7
DX7_MANUFACTURER_ID = 0x43  # the SysEx manufacturer byte of DX7 messages
FORMAT_SINGLE_VOICE = 0
FORMAT_CARTRIDGE = 9
CARTRIDGE_VOICE_COUNT = 32
CARTRIDGE_DATA_SIZE = CARTRIDGE_VOICE_COUNT * VOICE_PACKED_SIZE  # 4096
HEADER_SIZE = 6  # F0 43 0n format count-high count-low
FOOTER_SIZE = 2  # checksum F7
SINGLE_MESSAGE_SIZE = HEADER_SIZE + VOICE_UNPACKED_SIZE + FOOTER_SIZE  # 163
CARTRIDGE_MESSAGE_SIZE = HEADER_SIZE + CARTRIDGE_DATA_SIZE + FOOTER_SIZE  # 4104
_DATA_SIZE_BY_FORMAT = {FORMAT_SINGLE_VOICE: VOICE_UNPACKED_SIZE, FORMAT_CARTRIDGE: CARTRIDGE_DATA_SIZE}
_DUMP_NAME = {FORMAT_SINGLE_VOICE: "single-voice dump", FORMAT_CARTRIDGE: "32-voice dump"}
_HIGH_BIT_BYTE = re.compile(rb"[\x80-\xff]")
_MESSAGE_BOUNDARY = re.compile(rb"[\xf0\xf7]")
# One warning names at most this many clamped values; the rest are counted.
_MAX_LISTED_OUT_OF_RANGE = 8


def checksum(data: bytes) -> int:
    """The DX7 dump checksum: the 7-bit two's complement of the data bytes' sum."""
    return -sum(data) & SEVEN_BITS


def _message(format_number: int, data: bytes, channel: int) -> bytes:
    channel = integer_in(channel, "channel", 0, 15, error=PatchError)
    count = len(data)
    header = bytes((SYSEX_START, DX7_MANUFACTURER_ID, channel, format_number, count >> 7, count & SEVEN_BITS))
    return header + data + bytes((checksum(data), SYSEX_END))


def write_single(voice: Dx7Voice, channel: int = 0) -> bytes:
    """A 163-byte single-voice dump of ``voice`` on MIDI channel ``channel`` (0..15)."""
    return _message(FORMAT_SINGLE_VOICE, pack_voice(voice), channel)


def cartridge_data(voices: Sequence[Dx7Voice]) -> bytes:
    """The 4096 data bytes of a cartridge: exactly 32 voices, packed, voice 1 first."""
    voices = list(voices)
    if len(voices) != CARTRIDGE_VOICE_COUNT:
        raise PatchError(f"cartridge: must hold exactly {CARTRIDGE_VOICE_COUNT} voices, got {len(voices)}")
    return b"".join(pack_cartridge_voice(voice) for voice in voices)


def write_cartridge(voices: Sequence[Dx7Voice], channel: int = 0) -> bytes:
    """A 4104-byte 32-voice dump; pad with ``Dx7Voice.init_voice()`` to fill a short cartridge."""
    return _message(FORMAT_CARTRIDGE, cartridge_data(voices), channel)


@dataclass(frozen=True)
class Dx7Read:
    """What ``read_syx`` found: the voices (1 or 32) and one line per problem it let through."""

    source: str | None
    kind: str  # "single" or "cartridge"
    voices: tuple[Dx7Voice, ...]
    channel: int | None  # 0-based channel from the header; None for a headerless cartridge
    warnings: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [voice.name for voice in self.voices]


def _is_dump_header_start(data: bytes, position: int) -> bool:
    """Whether ``F0 43`` at ``position`` continues like a DX7 voice dump (sub-status 0, format 0 or 9)."""
    return (position + 3 < len(data) and data[position + 2] <= 0x0F
            and data[position + 3] in _DATA_SIZE_BY_FORMAT)


def _dump_positions(data: bytes, start: int = 0):
    """Positions of the messages that look like DX7 voice dumps, in file order."""
    marker = bytes((SYSEX_START, DX7_MANUFACTURER_ID))
    position = data.find(marker, start)
    while position >= 0:
        if _is_dump_header_start(data, position):
            yield position
        position = data.find(marker, position + 1)


def _is_complete_dump(data: bytes, position: int) -> bool:
    """Whether the dump header at ``position`` starts a whole dump: the right byte count, only 7-bit
    bytes, F7 where it belongs. A quick test, so that scanning past many broken headers stays linear;
    ``_dump_data`` says what is wrong with one."""
    size = _DATA_SIZE_BY_FORMAT[data[position + 3]]
    end = position + HEADER_SIZE + size + 1  # where the F7 belongs, after the data and the checksum
    return (end < len(data) and data[end] == SYSEX_END
            and data[position + 4] == size >> 7 and data[position + 5] == size & SEVEN_BITS
            and _HIGH_BIT_BYTE.search(data, position + HEADER_SIZE, end) is None)


def _refuse_high_bytes(data: bytes, first_offset: int, what: str, source) -> None:
    """InputError naming the first byte above 0x7F in ``data`` (at file offset ``first_offset``)."""
    high = _HIGH_BIT_BYTE.search(data)
    if high is not None:
        index, byte = high.start(), data[high.start()]
        raise InputError(f"{what}: byte 0x{byte:02X} at offset {first_offset + index} has the high bit "
                         "set (DX7 data bytes are 0x00..0x7F)", source)


def _dump_data(data: bytes, position: int, source) -> tuple[int, bytes, int, int]:
    """Check the dump whose F0 is at ``position``: (format, data bytes, stored checksum, end offset)."""
    format_number = data[position + 3]
    expected_size = _DATA_SIZE_BY_FORMAT[format_number]
    dump = f"{_DUMP_NAME[format_number]} at offset {position}"
    if position + HEADER_SIZE > len(data):
        raise InputError(f"truncated {dump}: the file ends inside its header", source)
    count_high, count_low = data[position + 4], data[position + 5]
    if count_high > SEVEN_BITS or count_low > SEVEN_BITS:
        raise InputError(f"truncated {dump}: the message ends inside its header", source)
    declared_size = count_high << 7 | count_low
    if declared_size != expected_size:
        raise InputError(f"{dump} declares {declared_size} data bytes; a DX7 {_DUMP_NAME[format_number]} "
                         f"holds {expected_size}", source)
    data_start = position + HEADER_SIZE
    checksum_offset = data_start + expected_size
    # Searched in place, not sliced first: a hostile file can hold a header every few bytes.
    status = _MESSAGE_BOUNDARY.search(data, data_start, checksum_offset + 1)  # F0 or F7 ends a message
    if status is not None:
        received = status.start() - data_start
        where = f"after {received} of {expected_size} data bytes" if received < expected_size else (
            "before its checksum")
        raise InputError(f"truncated {dump}: the message ends {where}", source)
    body = data[data_start:checksum_offset + 1]  # data bytes and checksum
    _refuse_high_bytes(body, data_start, dump, source)
    if len(body) < expected_size:
        raise InputError(f"truncated {dump}: the file ends after {len(body)} of {expected_size} data bytes",
                         source)
    if len(body) == expected_size:
        raise InputError(f"truncated {dump}: the file ends before the checksum", source)
    end_offset = checksum_offset + 1
    if end_offset >= len(data):
        raise InputError(f"truncated {dump}: the file ends before the closing F7", source)
    if data[end_offset] != SYSEX_END:
        found = data[end_offset]
        reason = "is longer than" if found <= SEVEN_BITS else f"has 0x{found:02X} instead of F7 after"
        raise InputError(f"{dump} {reason} its {expected_size} data bytes and checksum", source)
    return format_number, body[:expected_size], body[expected_size], end_offset + 1


def _unpack_cartridge(data: bytes) -> tuple[Dx7Voice, ...]:
    return tuple(unpack_cartridge_voice(data[start:start + VOICE_PACKED_SIZE])
                 for start in range(0, CARTRIDGE_DATA_SIZE, VOICE_PACKED_SIZE))


def _out_of_range_summary(voices: Sequence[Dx7Voice]) -> str | None:
    """One line listing the stored values beyond the DX7's ranges, or None when there are none."""
    listed, total = [], 0
    for number, voice in enumerate(voices, start=1):
        problems = voice.out_of_range()
        total += len(problems)
        room = _MAX_LISTED_OUT_OF_RANGE - sum(len(items) for _, items in listed)
        if problems and room > 0:
            name = f"'{voice.name.rstrip()}'"
            prefix = f"voice {number} {name}" if len(voices) > 1 else name
            listed.append((prefix, [str(problem) for problem in problems[:room]]))
    if not total:
        return None
    shown = "; ".join(f"{prefix}: {', '.join(items)}" for prefix, items in listed)
    more = total - sum(len(items) for _, items in listed)
    tail = f" (and {more} more)" if more else ""
    return f"{total} value(s) beyond the DX7's ranges: {shown}{tail}"


def _first_usable_dump(data: bytes, source, strict: bool) -> tuple[str, int, tuple[Dx7Voice, ...], list[str]]:
    """(kind, channel, voices, warnings) of the first DX7 voice dump in ``data`` that is complete."""
    found, first_problem, skipped, warnings = None, None, 0, []
    for position in _dump_positions(data):
        if _is_complete_dump(data, position):
            found = _dump_data(data, position, source)
            break
        skipped += 1  # like a DX7 librarian, keep scanning for a usable dump
        if first_problem is None:
            try:
                _dump_data(data, position, source)
            except InputError as problem:  # always: the dump is incomplete; this names why
                first_problem = problem
            if strict:
                raise first_problem
    if found is None and first_problem is not None:
        raise first_problem
    if found is None:
        messages = data.count(SYSEX_START)
        if messages:
            raise InputError(f"no DX7 voice dump among {messages} SysEx message(s) (looked for "
                             "F0 43 0n 00 single-voice and F0 43 0n 09 32-voice dumps)", source)
        raise InputError(f"not a DX7 voice dump: no SysEx message, and {len(data)} bytes is not a bare "
                         f"{CARTRIDGE_DATA_SIZE}-byte cartridge", source)
    format_number, dump_data, stored_checksum, end = found
    if skipped:
        warnings.append(f"skipped {skipped} unusable DX7 voice dump(s) before offset {position} "
                        f"(first: {first_problem.reason})")
    expected_checksum = checksum(dump_data)
    if stored_checksum != expected_checksum:
        problem = (f"checksum mismatch in the {_DUMP_NAME[format_number]}: "
                   f"expected 0x{expected_checksum:02X}, found 0x{stored_checksum:02X}")
        if strict:
            raise InputError(f"{problem} (strict reading)", source)
        warnings.append(f"{problem}; loaded anyway")
    later_dumps = sum(1 for _ in _dump_positions(data, end))
    if later_dumps:
        warnings.append(f"{later_dumps} more DX7 voice dump(s) after offset {end} ignored; "
                        "read the first usable one")
    channel = data[position + 2]
    if format_number == FORMAT_SINGLE_VOICE:
        return "single", channel, (unpack_voice(dump_data),), warnings
    return "cartridge", channel, _unpack_cartridge(dump_data), warnings


def read_syx(data: bytes, source: str | os.PathLike | None = None, strict: bool = False) -> Dx7Read:
    """The first usable DX7 voice dump in ``data`` (a .syx file's bytes), read leniently.

    ``source`` names the file in messages. With ``strict``, what would be a warning (wrong
    checksum, values beyond the DX7's ranges, a broken dump skipped) is an InputError instead."""
    data = bytes(data)
    if not data:
        raise InputError("empty file; expected a DX7 SysEx voice dump", source)
    if len(data) == CARTRIDGE_DATA_SIZE and data[0] != SYSEX_START:
        # A bare cartridge: the 32 packed voices with no SysEx header, as some librarians save them.
        _refuse_high_bytes(data, 0, "headerless 32-voice data", source)
        kind, channel, voices, warnings = "cartridge", None, _unpack_cartridge(data), []
    else:
        kind, channel, voices, warnings = _first_usable_dump(data, source, strict)
    out_of_range = _out_of_range_summary(voices)
    if out_of_range is not None:
        if strict:
            raise InputError(f"{out_of_range} (strict reading)", source)
        warnings.append(f"{out_of_range}; read clamped, kept as stored for re-export")
    return Dx7Read(os.fspath(source) if source is not None else None, kind, voices, channel, tuple(warnings))


def read_syx_file(path: str | os.PathLike, strict: bool = False) -> Dx7Read:
    """``read_syx`` of the file at ``path``; an unreadable file is an InputError too."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror or error}", path) from None
    return read_syx(data, path, strict)
