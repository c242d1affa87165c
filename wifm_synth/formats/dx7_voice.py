"""A DX7 voice: its 155 parameters as stored, their in-range values, and its two byte forms.

``Dx7Voice`` keeps the stored values exactly as read (``raw``, in the unpacked order of
``dx7_parameters``: operator 6 first), plus the unused bits of the packed form, so that reading
and re-writing a dump gives back the same bytes even when a file holds values a DX7 would never
produce. What callers read through ``value``/``operator``/``voice_parameters`` is clamped to the
DX7's ranges; ``out_of_range`` lists what was clamped. Voices built or edited through this class
(``init_voice``, ``with_values``, ``with_operator``, ``with_name``) are checked strictly instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import gt
from typing import NamedTuple

from wifm_synth.checks import integer_in
from wifm_synth.errors import PatchError
from wifm_synth.formats.dx7_parameters import (
    ALL_PARAMETERS,
    NAME_LENGTH,
    NAME_UNPACKED_OFFSET,
    OPERATOR_COUNT,
    OPERATOR_PARAMETER_NAMES,
    PACKED_SPARE_MASKS,
    PARAMETER_BY_KEY,
    SEVEN_BITS,
    VOICE_PACKED_SIZE,
    VOICE_PARAMETER_NAMES,
    VOICE_UNPACKED_SIZE,
    PlacedParameter,
    pack_unpacked_bytes,
    unpack_packed_bytes,
)

_SPARE_BITS = int.from_bytes(PACKED_SPARE_MASKS, "big")
# Each unpacked byte's maximum, for a quick range check of a whole voice.
_MAXIMA = bytes(placed.parameter.maximum
                for placed in sorted(ALL_PARAMETERS, key=lambda placed: placed.unpacked_index))
# Shown for name codes that have no printable ASCII character (controls and 127).
NAME_PLACEHOLDER = "?"
_PRINTABLE_NAME_CODES = range(0x20, 0x7F)

# The DX7's INIT VOICE: a single sine (operator 1, algorithm 1) with square envelopes.
_INIT_OPERATOR = {
    "eg_rate_1": 99, "eg_rate_2": 99, "eg_rate_3": 99, "eg_rate_4": 99,
    "eg_level_1": 99, "eg_level_2": 99, "eg_level_3": 99, "eg_level_4": 0,
    "level_scaling_break_point": 0, "level_scaling_left_depth": 0, "level_scaling_right_depth": 0,
    "level_scaling_left_curve": 0, "level_scaling_right_curve": 0, "rate_scaling": 0,
    "amp_mod_sensitivity": 0, "key_velocity_sensitivity": 0, "output_level": 0,
    "oscillator_mode": 0, "frequency_coarse": 1, "frequency_fine": 0, "detune": 7,
}
_INIT_VOICE = {
    "pitch_eg_rate_1": 99, "pitch_eg_rate_2": 99, "pitch_eg_rate_3": 99, "pitch_eg_rate_4": 99,
    "pitch_eg_level_1": 50, "pitch_eg_level_2": 50, "pitch_eg_level_3": 50, "pitch_eg_level_4": 50,
    "algorithm": 0, "feedback": 0, "oscillator_key_sync": 1, "lfo_speed": 35, "lfo_delay": 0,
    "lfo_pitch_mod_depth": 0, "lfo_amp_mod_depth": 0, "lfo_key_sync": 1, "lfo_wave": 0,
    "pitch_mod_sensitivity": 3, "transpose": 24,
}
INIT_VOICE_NAME = "INIT VOICE"


class OutOfRange(NamedTuple):
    """A stored value above the DX7's range: it reads as ``maximum`` but is kept for re-export."""

    label: str  # "op2 detune", "lfo_wave"
    stored: int
    maximum: int

    def __str__(self) -> str:
        return f"{self.label} {self.stored} > {self.maximum}"


def _placed(name: str, operator: int | None) -> PlacedParameter:
    if operator is not None:
        integer_in(operator, "operator", 1, OPERATOR_COUNT, error=PatchError)
        operator = int(operator)
    placed = PARAMETER_BY_KEY.get((operator, name))
    if placed is None:
        where = f"operator parameter (one of {', '.join(OPERATOR_PARAMETER_NAMES)})" if operator else (
            f"voice parameter (one of {', '.join(VOICE_PARAMETER_NAMES)})")
        raise PatchError(f"{name!r}: not a DX7 {where}")
    return placed


def _checked_bytes(data, size: int, what: str) -> bytes:
    data = bytes(data)
    if len(data) != size:
        raise PatchError(f"{what}: must be {size} bytes, got {len(data)}")
    if max(data, default=0) > SEVEN_BITS:
        high = next(index for index, byte in enumerate(data) if byte > SEVEN_BITS)
        raise PatchError(f"{what}: byte {high} is 0x{data[high]:02X}, with the high bit set "
                         "(DX7 data bytes are 0x00..0x7F)")
    return data


def name_bytes_from_text(name: str) -> bytes:
    """A display name → the 10 stored codes: printable ASCII only, padded with spaces."""
    if not isinstance(name, str) or len(name) > NAME_LENGTH or any(
            ord(character) not in _PRINTABLE_NAME_CODES for character in name):
        raise PatchError(f"name: must be at most {NAME_LENGTH} printable ASCII characters, got {name!r}")
    return name.ljust(NAME_LENGTH).encode("ascii")


def name_text(codes: bytes) -> str:
    """The 10 stored name codes for display: unprintable codes shown as ``NAME_PLACEHOLDER``."""
    return "".join(chr(code) if code in _PRINTABLE_NAME_CODES else NAME_PLACEHOLDER for code in codes)


@dataclass(frozen=True)
class Dx7Voice:
    """One DX7 voice. ``raw`` is the 155-byte unpacked form as stored (operator 6 first);
    ``packed_spare_bits`` holds the bits of the 128-byte packed form that no parameter uses."""

    raw: bytes
    packed_spare_bits: bytes = bytes(VOICE_PACKED_SIZE)

    def __post_init__(self):
        object.__setattr__(self, "raw", _checked_bytes(self.raw, VOICE_UNPACKED_SIZE, "DX7 voice"))
        spare = _checked_bytes(self.packed_spare_bits, VOICE_PACKED_SIZE, "DX7 packed spare bits")
        if int.from_bytes(spare, "big") & ~_SPARE_BITS:
            raise PatchError("DX7 packed spare bits: set where a parameter is stored")
        object.__setattr__(self, "packed_spare_bits", spare)

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def init_voice(cls) -> Dx7Voice:
        """The DX7's INIT VOICE: algorithm 1, operator 1 at output level 99 and the others silent,
        every EG at rates 99 and levels 99/99/99/0, coarse 1, no detune, pitch EG flat at 50."""
        raw = bytearray(VOICE_UNPACKED_SIZE)
        for placed in ALL_PARAMETERS:
            name = placed.parameter.name
            if placed.operator is not None:
                raw[placed.unpacked_index] = _INIT_OPERATOR[name]
            elif name in _INIT_VOICE:
                raw[placed.unpacked_index] = _INIT_VOICE[name]
        raw[NAME_UNPACKED_OFFSET:NAME_UNPACKED_OFFSET + NAME_LENGTH] = name_bytes_from_text(INIT_VOICE_NAME)
        return cls(bytes(raw)).with_operator(1, output_level=99)

    @classmethod
    def from_packed(cls, packed: bytes) -> Dx7Voice:
        """A voice from its 128-byte cartridge form (values and spare bits kept as stored)."""
        raw, spare = unpack_packed_bytes(_checked_bytes(packed, VOICE_PACKED_SIZE, "packed DX7 voice"))
        return cls(raw, spare)

    def packed(self) -> bytes:
        """The 128-byte cartridge form; ``Dx7Voice.from_packed(b).packed() == b`` for any 7-bit ``b``."""
        return pack_unpacked_bytes(self.raw, self.packed_spare_bits)

    def _with_raw(self, changes: dict[int, int]) -> Dx7Voice:
        raw = bytearray(self.raw)
        for index, value in changes.items():
            raw[index] = value
        return Dx7Voice(bytes(raw), self.packed_spare_bits)

    def with_values(self, **values: int) -> Dx7Voice:
        """A copy with voice-wide parameters changed, each checked against the DX7's range."""
        return self._with_raw({_placed(name, None).unpacked_index: self._checked(name, None, value)
                               for name, value in values.items()})

    def with_operator(self, operator: int, **values: int) -> Dx7Voice:
        """A copy with parameters of DX7 operator ``operator`` (1..6) changed, each range-checked."""
        return self._with_raw({_placed(name, operator).unpacked_index: self._checked(name, operator, value)
                               for name, value in values.items()})

    def with_name(self, name: str) -> Dx7Voice:
        """A copy named ``name`` (at most 10 printable ASCII characters, padded with spaces)."""
        codes = name_bytes_from_text(name)
        return self._with_raw({NAME_UNPACKED_OFFSET + index: code for index, code in enumerate(codes)})

    @staticmethod
    def _checked(name: str, operator: int | None, value) -> int:
        placed = _placed(name, operator)
        if placed.parameter.name.startswith("name_"):
            raise PatchError(f"{name}: set the name with with_name")
        return integer_in(value, placed.label, 0, placed.parameter.maximum, error=PatchError)

    def clamped(self) -> Dx7Voice:
        """A copy whose stored values are all in the DX7's ranges and whose spare bits are clear."""
        return Dx7Voice(bytes(map(min, self.raw, _MAXIMA)))

    # --- reading --------------------------------------------------------------------------------

    def raw_value(self, name: str, operator: int | None = None) -> int:
        """A parameter exactly as stored, possibly above the DX7's range."""
        return self.raw[_placed(name, operator).unpacked_index]

    def value(self, name: str, operator: int | None = None) -> int:
        """A parameter as the DX7 reads it: clamped to its range."""
        placed = _placed(name, operator)
        return min(self.raw[placed.unpacked_index], placed.parameter.maximum)

    def operator(self, operator: int) -> dict[str, int]:
        """DX7 operator ``operator`` (1..6, front-panel numbering) as ``{parameter: value}``, clamped."""
        return {name: self.value(name, operator) for name in OPERATOR_PARAMETER_NAMES}

    def voice_parameters(self) -> dict[str, int]:
        """The voice-wide parameters (not the name) as ``{parameter: value}``, clamped."""
        return {name: self.value(name) for name in VOICE_PARAMETER_NAMES}

    @property
    def algorithm_number(self) -> int:
        """The algorithm as the DX7 shows it, 1..32 (stored as 0..31)."""
        return self.value("algorithm") + 1

    @property
    def name_bytes(self) -> bytes:
        """The 10 stored name codes, unchanged."""
        return self.raw[NAME_UNPACKED_OFFSET:NAME_UNPACKED_OFFSET + NAME_LENGTH]

    @property
    def name(self) -> str:
        """The name for display: unprintable codes replaced by ``NAME_PLACEHOLDER``, spaces kept."""
        return name_text(self.name_bytes)

    def out_of_range(self) -> list[OutOfRange]:
        """Stored values above the DX7's ranges, in storage order (operator 6 first)."""
        if not any(map(gt, self.raw, _MAXIMA)):
            return []
        return [OutOfRange(placed.label, self.raw[placed.unpacked_index], placed.parameter.maximum)
                for placed in ALL_PARAMETERS if self.raw[placed.unpacked_index] > placed.parameter.maximum]


def unpack_voice(data: bytes) -> Dx7Voice:
    """The 155-byte single-voice form → Dx7Voice (values kept as stored)."""
    return Dx7Voice(_checked_bytes(data, VOICE_UNPACKED_SIZE, "DX7 voice"))


def pack_voice(voice: Dx7Voice) -> bytes:
    """Dx7Voice → the 155-byte single-voice form (the stored values, so a read voice re-exports as read)."""
    return voice.raw


def unpack_cartridge_voice(data: bytes) -> Dx7Voice:
    """The 128-byte packed cartridge form → Dx7Voice (values and unused bits kept as stored)."""
    return Dx7Voice.from_packed(data)


def pack_cartridge_voice(voice: Dx7Voice) -> bytes:
    """Dx7Voice → the 128-byte packed cartridge form."""
    return voice.packed()
